/*
 * raftbusctl.c - the etcdctl-like command line client of raftbus: parses
 * the command line (rbctl_args.c), sends the request with libraftbus and
 * prints the reply as etcdctl 3.4 would (rbctl_fmt.c). Usage is in
 * docs/raftbusctl.md and `raftbusctl --help`.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rbctl.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int error_exit(int code, const char *msg)
{
	fprintf(stderr, "Error: %s\n", msg);
	return code;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Reads all of stdin (for `put KEY`) into a malloc'ed buffer. */
static int read_stdin(uint8_t **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return -1;
	for (;;) {
		if (n == cap) {
			if (cap >= RBCTL_STDIN_BYTES_MAX)
				goto out_free_buf;
			cap *= 2;
			uint8_t *nb = realloc(buf, cap);
			if (nb == NULL)
				goto out_free_buf;
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, stdin);
		if (got == 0)
			break;
		n += got;
	}
	*out = buf;
	*len = n;
	return 0;

out_free_buf:
	free(buf);
	return -1;
}

/* The endpoints to check: the configured ones, or every member's client
 * URLs with --cluster. *mem keeps the member list alive. */
static int target_endpoints(rb_client *c, const struct rbctl_args *a,
	const char **eps, size_t *n, struct rb_resp *mem)
{
	*n = 0;
	if (!a->cluster) {
		for (size_t i = 0; i < a->endpoints_n; i++)
			eps[(*n)++] = a->endpoints[i];
		return 0;
	}
	if (rb_member_list(c, mem) != 0)
		return error_exit(RBCTL_EXIT_ERROR, rbctl_error_text(mem));
	const struct rb_member_list_resp *ml = &mem->body.u.member_list;
	for (size_t i = 0; i < ml->members_n; i++)
		for (size_t k = 0; k < ml->members[i].client_urls_n && *n < RB_ENDPOINTS_MAX; k++)
			eps[(*n)++] = ml->members[i].client_urls[k];
	return 0;
}

static int cmd_endpoints(rb_client *c, const struct rbctl_args *a)
{
	const char *eps[RB_ENDPOINTS_MAX];
	size_t n;
	struct rb_resp members = { 0 };
	int rc = target_endpoints(c, a, eps, &n, &members);
	if (rc) {
		rb_resp_free(&members);
		return rc;
	}
	struct rb_resp resps[RB_ENDPOINTS_MAX];
	struct rbctl_health health[RB_ENDPOINTS_MAX];
	struct rb_op op = { .type = a->op.type };
	bool failed = false;
	memset(resps, 0, sizeof(resps));
	for (size_t i = 0; i < n; i++) {
		int64_t t0 = now_ns();
		int err = rb_do_at(c, eps[i], &op, &resps[i]);
		health[i] = (struct rbctl_health){ .endpoint = eps[i], .took_ns = now_ns() - t0 };
		if (err == 0 && op.type == RB_OP_HEALTH && !resps[i].body.u.health.healthy) {
			health[i].error = resps[i].body.u.health.reason;
			failed = true;
		} else if (err) {
			health[i].error = rbctl_error_text(&resps[i]);
			failed = true;
			if (op.type == RB_OP_ENDPOINT_STATUS)
				fprintf(stderr, "Failed to get the status of endpoint %s (%s)\n",
					eps[i], health[i].error);
		} else {
			health[i].healthy = true;
		}
	}
	if (op.type == RB_OP_HEALTH)
		rbctl_print_health(stdout, a->out, health, n);
	else
		rbctl_print_status(stdout, a->out, eps, resps, n);
	for (size_t i = 0; i < n; i++)
		rb_resp_free(&resps[i]);
	rb_resp_free(&members);
	if (failed && op.type == RB_OP_HEALTH)
		return error_exit(RBCTL_EXIT_ERROR, "unhealthy cluster");
	return failed ? RBCTL_EXIT_ERROR : RBCTL_EXIT_OK;
}

/* keep-alive without --once: renew every TTL/3 until the lease is gone or
 * the user interrupts. */
static int cmd_keepalive_loop(rb_client *c, const struct rbctl_args *a)
{
	rb_lease_id id = a->op.u.lease_keepalive.id;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!interrupted) {
		struct rb_resp r = { 0 };
		if (rb_do(c, &a->op, &r) != 0) {
			int err = r.err;
			const char *msg = rbctl_error_text(&r);
			if (err == RB_ERR_LEASE_NOT_FOUND) {
				if (a->out == RBCTL_OUT_SIMPLE)
					printf("lease %016" PRIx64 " expired or revoked.\n", (uint64_t)id);
				rb_resp_free(&r);
				return RBCTL_EXIT_OK;
			}
			int rc = error_exit(RBCTL_EXIT_BAD_CONNECTION, msg);
			rb_resp_free(&r);
			return rc;
		}
		rbctl_print(stdout, a, &r);
		fflush(stdout);
		int64_t ttl = r.body.u.lease_keepalive.ttl_s;
		rb_resp_free(&r);
		int64_t wait_ms = ttl > 3 ? ttl * 1000 / 3 : 1000;
		for (int64_t w = 0; w < wait_ms && !interrupted; w += 100)
			usleep(100 * 1000);
	}
	return RBCTL_EXIT_OK;
}

/* Builds the request (stdin value, txn text) and sends it. */
static int cmd_request(rb_client *c, struct rbctl_args *a)
{
	uint8_t *value = NULL;
	struct rb_mem *txn_mem = NULL;
	char err[512];
	int rc = RBCTL_EXIT_OK;
	if (a->value_from_stdin) {
		size_t len = 0;
		if (read_stdin(&value, &len) != 0)
			return error_exit(RBCTL_EXIT_BAD_ARGS, "cannot read the value from stdin");
		if (len == 0) {
			free(value);
			return error_exit(RBCTL_EXIT_BAD_ARGS,
				"put command needs 1 argument and input from stdin or 2 arguments");
		}
		a->op.u.put.value = value;
		a->op.u.put.value_len = len;
	}
	if (a->cmd == RBCTL_CMD_TXN &&
	    (rc = rbctl_txn_read(stdin, a->interactive ? stdout : NULL, &a->op.u.txn,
		&txn_mem, err, sizeof(err))) != 0)
		return error_exit(rc, err);
	if (a->cmd == RBCTL_CMD_LEASE_KEEPALIVE && !a->keepalive_once)
		return cmd_keepalive_loop(c, a);
	struct rb_resp r = { 0 };
	if (rb_do(c, &a->op, &r) != 0) {
		if (a->cmd == RBCTL_CMD_LEASE_REVOKE) {
			snprintf(err, sizeof(err), "failed to revoke lease (%s)", rbctl_error_text(&r));
			rc = error_exit(RBCTL_EXIT_ERROR, err);
		} else {
			rc = error_exit(a->cmd == RBCTL_CMD_LEASE_KEEPALIVE ?
				RBCTL_EXIT_BAD_CONNECTION : RBCTL_EXIT_ERROR, rbctl_error_text(&r));
		}
	} else {
		rbctl_print(stdout, a, &r);
	}
	rb_resp_free(&r);
	rbctl_txn_free(txn_mem);
	free(value);
	return rc;
}

/* A streaming command (watch, pub, sub, ...): its own parser and loop. */
static int run_ext(const struct rbctl_ext_cmd *x, int argc, char **argv)
{
	struct rbctl_ext_parsed p;
	char err[512];
	memset(&p, 0, sizeof(p));
	int rc = rbctl_ext_parse(argc, argv, getenv("RAFTBUSCTL_ENDPOINTS"), x, &p, err,
		sizeof(err));
	if (rc == 0 && p.help)
		rbctl_usage(stdout, x->name);
	else if (rc == 0)
		rc = x->run(&p);
	else
		fprintf(stderr, "Error: %s\n", err);
	rbctl_ext_free(&p);
	return rc;
}

int main(int argc, char **argv)
{
	const struct rbctl_ext_cmd *x = rbctl_ext_find(argc, argv);
	if (x)
		return run_ext(x, argc, argv);
	struct rbctl_args a = { 0 };
	char err[512];
	int rc = rbctl_parse(argc, argv, getenv("RAFTBUSCTL_ENDPOINTS"), &a, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "Error: %s\n", err);
		if (strncmp(err, "unknown command", 15) == 0)
			fprintf(stderr, "Run 'raftbusctl --help' for usage.\n");
		rbctl_args_free(&a);
		return rc;
	}
	if (a.cmd == RBCTL_CMD_HELP || a.cmd == RBCTL_CMD_VERSION) {
		if (a.cmd == RBCTL_CMD_VERSION)
			printf("raftbusctl version: 0.1.0\nAPI version: %u\n", 1u);
		else
			rbctl_usage(stdout, a.help_topic);
		rbctl_args_free(&a);
		return RBCTL_EXIT_OK;
	}
	struct rb_config cfg = { .endpoints = a.endpoints, .endpoints_n = a.endpoints_n,
		.dial_timeout_ms = a.dial_timeout_ms, .command_timeout_ms = a.command_timeout_ms };
	rb_client *c;
	if ((rc = rb_client_open(&cfg, &c)) != 0) {
		snprintf(err, sizeof(err), "%s: bad endpoint list", rb_strerror(rc));
		rbctl_args_free(&a);
		return error_exit(RBCTL_EXIT_BAD_ARGS, err);
	}
	if (a.cmd == RBCTL_CMD_ENDPOINT_STATUS || a.cmd == RBCTL_CMD_ENDPOINT_HEALTH)
		rc = cmd_endpoints(c, &a);
	else
		rc = cmd_request(c, &a);
	rb_client_close(c);
	rbctl_args_free(&a);
	return rc;
}
