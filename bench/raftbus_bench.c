/*
 * raftbus_bench.c - raftbus-bench, the load generator of raftbus, after
 * etcd's `benchmark` tool:
 *
 *   raftbus-bench [--endpoints URL,...] [--conns N] [--clients N]
 *       [-o text|csv|json] [--csv-file PATH] [--seed N] WORKLOAD [flags]
 *
 * This file holds the command line, the table of workloads and main(); the
 * engine, statistics, reports and workloads live in the rbb_*.c files
 * (rbb.h says which does what). Every flag is checked: anything wrong
 * prints a message and the usage on stderr and exits 2.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbb.h"

#define RBB_ENDPOINT_DEFAULT "tcp://127.0.0.1:5379"
#define RBB_TOTAL_DEFAULT 10000u

/* The workloads, in the order --help lists them. */
static const struct rbb_workload *const workloads[] = {
	&rbb_wl_put,
	&rbb_wl_range,
	&rbb_wl_txn_put,
	&rbb_wl_lease_keepalive,
	&rbb_wl_watch,
	&rbb_wl_pubsub,
	&rbb_wl_queue,
};
#define WORKLOADS_N (sizeof(workloads) / sizeof(workloads[0]))

/* Flags every workload takes; offsets into struct rbb_run. */
static const struct rbb_flag common_flags[] = {
	{ "--total", RBB_FLAG_U64, offsetof(struct rbb_run, total), 1,
	  RBB_TOTAL_MAX, "requests to send (default 10000)" },
	{ "--rate", RBB_FLAG_U64, offsetof(struct rbb_run, rate), 0,
	  RBB_RATE_MAX, "at most R requests/s over all clients (0 = no limit)",
	  "R" },
	{ NULL, 0, 0, 0, 0, NULL },
};

/* Global flags; --endpoints and -o are decoded by hand (global_flag). */
static const struct rbb_flag global_flags[] = {
	{ "--endpoints", RBB_FLAG_STR, 0, 0, 0,
	  "members to talk to, comma-separated (default "
	  RBB_ENDPOINT_DEFAULT ")", "URL,..." },
	{ "--conns", RBB_FLAG_UNSIGNED, offsetof(struct rbb_run, conns), 1,
	  RBB_CONNS_MAX, "req sockets, at most --clients (default 1)" },
	{ "--clients", RBB_FLAG_UNSIGNED, offsetof(struct rbb_run, clients), 1,
	  RBB_CLIENTS_MAX, "requests in flight (default 1)" },
	{ "--output", RBB_FLAG_STR, 0, 0, 0,
	  "(or -o) text (default), json (one line) or csv (per-second "
	  "series on stdout, summary on stderr)", "FMT" },
	{ "--csv-file", RBB_FLAG_STR, offsetof(struct rbb_run, csv_path), 0, 0,
	  "with -o csv: write the series here, the summary to stdout",
	  "PATH" },
	{ "--seed", RBB_FLAG_U64, offsetof(struct rbb_run, seed), 0,
	  UINT64_MAX, "seed of keys and values (default 1)" },
	{ NULL, 0, 0, 0, 0, NULL },
};

static void print_flags(FILE *f, const struct rbb_flag *fl, const char *indent)
{
	for (; fl->name; fl++) {
		const char *meta = fl->kind == RBB_FLAG_BOOL ? "" :
		    fl->meta ? fl->meta : fl->kind == RBB_FLAG_STR ? "X" : "N";
		int w = fprintf(f, "%s%s%s%s", indent, fl->name,
		    meta[0] ? " " : "", meta);
		fprintf(f, "%*s %s\n", w < 28 ? 28 - w : 0, "", fl->help);
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: raftbus-bench [global flags] WORKLOAD [args] "
	    "[workload flags]\n\n"
	    "Load generator for a raftbus cluster (modelled on etcd's "
	    "benchmark tool).\n\nglobal flags:\n");
	print_flags(f, global_flags, "  ");
	fprintf(f, "  --help                     this text\n\nworkloads:\n");
	for (size_t i = 0; i < WORKLOADS_N; i++) {
		const struct rbb_workload *wl = workloads[i];
		fprintf(f, "  %s%s%s [flags]: %s\n", wl->name,
		    wl->args[0] ? " " : "", wl->args, wl->summary);
		print_flags(f, common_flags, "    ");
		print_flags(f, wl->flags, "    ");
	}
	fprintf(f, "\nWrites and keep-alives go to the leader (found via "
	    "endpoint status; followed on\n\"not leader\"); for ranges, "
	    "connection i dials endpoint i mod the number of\nendpoints. "
	    "Clients are spread round robin over the connections.\n"
	    "watch, pubsub and queue: watchers and subscribers use --conns "
	    "sockets dialled\nround robin over the endpoints; putters, "
	    "publishers, producers and consumers\nuse up to --conns sockets "
	    "each to the leader (a leader change is not followed:\nfailed "
	    "requests are reported). Their --clients is the default of "
	    "--putters and\nthe \"clients\" of the report is the number of "
	    "writers.\n"
	    "Exit status: 0 when the run completed (failed requests are "
	    "reported), 1 when\nit could not run, 2 on a bad command line.\n");
}

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("raftbus-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n\n", stderr);
	va_end(ap);
	return -1;
}

/* A decimal number without sign, spaces or suffix, within [min, max]. */
static int parse_num(const char *name, const char *s, uint64_t min,
    uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (*s == 0)
		return bad("%s needs a number", name);
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return bad("%s: '%s' is not a number", name, s);
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return bad("%s: '%s' is too large", name, s);
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return bad("%s must be between %llu and %llu, not %s", name,
		    (unsigned long long)min, (unsigned long long)max, s);
	*out = v;
	return 0;
}

static int set_flag(void *base, const struct rbb_flag *fl, const char *value)
{
	uint64_t v;
	char *p = (char *)base + fl->offset;
	switch (fl->kind) {
	case RBB_FLAG_BOOL:
		*(bool *)p = true;
		return 0;
	case RBB_FLAG_STR:
		*(const char **)p = value;
		return 0;
	case RBB_FLAG_U64:
		if (parse_num(fl->name, value, fl->min, fl->max, &v))
			return -1;
		*(uint64_t *)p = v;
		return 0;
	case RBB_FLAG_UNSIGNED:
		if (parse_num(fl->name, value, fl->min, fl->max, &v))
			return -1;
		*(unsigned *)p = (unsigned)v;
		return 0;
	}
	return -1;
}

static int parse_endpoints(struct rbb_run *run, const char *list)
{
	free(run->endpoints_buf);
	run->endpoints_n = 0;
	if ((run->endpoints_buf = strdup(list)) == NULL)
		return bad("out of memory");
	char *save = NULL;
	for (char *url = strtok_r(run->endpoints_buf, ",", &save); url;
	    url = strtok_r(NULL, ",", &save)) {
		if (run->endpoints_n == RBB_ENDPOINTS_MAX)
			return bad("--endpoints: at most %u URLs",
			    RBB_ENDPOINTS_MAX);
		if (strlen(url) >= RB_URL_BYTES_MAX || !strstr(url, "://"))
			return bad("--endpoints: '%s' is not a URL like "
			    RBB_ENDPOINT_DEFAULT, url);
		run->endpoints[run->endpoints_n++] = url;
	}
	if (run->endpoints_n == 0)
		return bad("--endpoints needs at least one URL");
	return 0;
}

static int set_global(struct rbb_run *run, const struct rbb_flag *fl,
    const char *value)
{
	if (strcmp(fl->name, "--endpoints") == 0)
		return parse_endpoints(run, value);
	if (strcmp(fl->name, "--output") != 0)
		return set_flag(run, fl, value);
	if (strcmp(value, "text") == 0)
		run->output = RBB_OUT_TEXT;
	else if (strcmp(value, "csv") == 0)
		run->output = RBB_OUT_CSV;
	else if (strcmp(value, "json") == 0)
		run->output = RBB_OUT_JSON;
	else
		return bad("-o must be text, csv or json, not '%s'", value);
	return 0;
}

static const struct rbb_flag *find_flag(const struct rbb_flag *fl,
    const char *name, size_t len)
{
	for (; fl && fl->name; fl++)
		if (strlen(fl->name) == len && strncmp(fl->name, name, len) == 0)
			return fl;
	return NULL;
}

static int choose_workload(struct rbb_run *run, const char *name)
{
	for (size_t i = 0; i < WORKLOADS_N; i++) {
		if (strcmp(workloads[i]->name, name) != 0)
			continue;
		run->wl = workloads[i];
		run->wl_state = calloc(1, run->wl->state_bytes);
		if (run->wl_state == NULL)
			return bad("out of memory");
		if (run->wl->defaults)
			run->wl->defaults(run->wl_state);
		return 0;
	}
	return bad("unknown workload '%s'", name);
}

/* One "--name[=value]" at argv[*i]; consumes its value. 1 = --help. */
static int parse_flag(struct rbb_run *run, int argc, char **argv, int *i)
{
	const char *arg = argv[*i];
	if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
		return 1;
	const char *name = strcmp(arg, "-o") == 0 ? "--output" : arg;
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct rbb_flag *fl = find_flag(global_flags, name, len);
	bool global = fl != NULL;
	void *base = run;
	if (!fl)
		fl = find_flag(common_flags, name, len);
	if (!fl && run->wl && (fl = find_flag(run->wl->flags, name, len)))
		base = run->wl_state;
	if (!fl)
		return run->wl ? bad("unknown flag '%.*s' for %s", (int)len,
		    name, run->wl->name) : bad("unknown flag '%.*s' (workload "
		    "flags come after the WORKLOAD)", (int)len, name);
	if (fl->kind == RBB_FLAG_BOOL)
		return eq ? bad("%s takes no value", fl->name) :
		    set_flag(base, fl, NULL);
	const char *value = eq ? eq + 1 : NULL;
	if (!value && *i + 1 >= argc)
		return bad("%s needs a value", fl->name);
	if (!value)
		value = argv[++*i];
	if (global)
		return set_global(run, fl, value);
	return set_flag(base, fl, value);
}

/* Returns 0, 1 for --help, or -1 (message printed). */
static int parse_args(struct rbb_run *run, int argc, char **argv)
{
	unsigned positional = 0;
	bool flags_over = false;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!flags_over && strcmp(arg, "--") == 0) {
			flags_over = true;
			continue;
		}
		if (!flags_over && arg[0] == '-' && arg[1] != 0) {
			int rc = parse_flag(run, argc, argv, &i);
			if (rc)
				return rc;
		} else if (run->wl == NULL) {
			if (choose_workload(run, arg))
				return -1;
		} else if (run->wl->parse_arg == NULL) {
			return bad("%s takes no argument ('%s')", run->wl->name,
			    arg);
		} else if (run->wl->parse_arg(run, positional++, arg)) {
			fputc('\n', stderr);
			return -1;
		}
	}
	if (run->wl == NULL)
		return bad("a WORKLOAD is required");
	if (run->endpoints_n == 0 && parse_endpoints(run, RBB_ENDPOINT_DEFAULT))
		return -1;
	if (run->conns > run->clients)
		return bad("--conns (%u) may not exceed --clients (%u)",
		    run->conns, run->clients);
	if (run->csv_path && run->output != RBB_OUT_CSV)
		return bad("--csv-file needs -o csv");
	if (run->total == 0)
		run->total = run->wl->total_default ? run->wl->total_default :
		    RBB_TOTAL_DEFAULT;
	if (run->wl->validate && run->wl->validate(run)) {
		fputc('\n', stderr);
		return -1;
	}
	return 0;
}

static void run_free(struct rbb_run *run)
{
	free(run->wl_state);
	free(run->endpoints_buf);
}

int main(int argc, char **argv)
{
	struct rbb_run run;
	memset(&run, 0, sizeof(run));
	run.conns = 1;
	run.clients = 1;
	run.seed = 1;
	run.progress = true;
	int rc = parse_args(&run, argc, argv);
	if (rc) {
		usage(rc > 0 ? stdout : stderr);
		run_free(&run);
		return rc > 0 ? 0 : 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct rbb_stats *st = rbb_stats_new();
	struct rbb_phase measured;
	memset(&measured, 0, sizeof(measured));
	rc = 1;
	if (st == NULL) {
		fprintf(stderr, "raftbus-bench: out of memory\n");
		goto out_free;
	}
	if (run.wl->setup(&run, &measured))
		goto out_teardown;
	if (run.wl->run ? run.wl->run(&run, st) :
	    rbb_engine_run(&run, &measured, run.total, st))
		goto out_teardown;
	if (rbb_report(&run, st) == 0)
		rc = 0;
out_teardown:
	if (run.wl->teardown)
		run.wl->teardown(&run);
out_free:
	rbb_stats_free(st);
	run_free(&run);
	return rc;
}
