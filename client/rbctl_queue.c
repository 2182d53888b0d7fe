/*
 * rbctl_queue.c - `raftbusctl queue ...`: the work-queue commands (push,
 * pop, ack, nack, extend, stats, dlq, redrive, config) over libraftbus's
 * rb_queue_* calls (docs/queues.md, docs/raftbusctl.md).
 *
 * Output is meant for scripts as much as for people: `push` prints the
 * message id alone (one line per message when several are pushed as one
 * batch); `ack` of several receipts prints one line per receipt; `pop`
 * and `dlq` print, per message, one header line of key=value fields and
 * then the payload on its own line; -w json prints one JSON object per
 * line instead (payloads as JSON strings).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "rbctl.h"

/* Payloads read from stdin. */
#define RBCTL_QUEUE_STDIN_BYTES_MAX RBCTL_STDIN_BYTES_MAX

static const struct rbctl_ext_opt queue_opts[] = {
	{ "delay", 0, RBCTL_EXT_VALUE },
	{ "id", 0, RBCTL_EXT_VALUE },
	{ "consumer", 0, RBCTL_EXT_VALUE },
	{ "visibility", 0, RBCTL_EXT_VALUE },
	{ "max", 0, RBCTL_EXT_VALUE },
	{ "wait", 0, RBCTL_EXT_VALUE },
	{ "limit", 0, RBCTL_EXT_VALUE },
	{ "max-deliveries", 0, RBCTL_EXT_VALUE },
};

static int run_queue(const struct rbctl_ext_parsed *p);

const struct rbctl_ext_cmd rbctl_queue_cmd = {
	.name = "queue",
	.opts = queue_opts,
	.opts_n = sizeof(queue_opts) / sizeof(queue_opts[0]),
	.summary = "queue push|pop|ack|nack|extend|stats|dlq|redrive|config QUEUE ...\t"
		"Work queues",
	.usage = "NAME:\n\tqueue - Work queues: push, claim (pop), ack, nack, dead letters\n\n"
		"USAGE:\n"
		"\traftbusctl queue push QUEUE [PAYLOAD...] [--delay DUR] [--id DEDUP]\n"
		"\t\t(payload from stdin when omitted; prints the message id; several\n"
		"\t\tpayloads (up to 100) are one batch: one id per line, in order)\n"
		"\traftbusctl queue pop QUEUE [--consumer NAME] [--visibility DUR] [--max N] "
		"[--wait DUR]\n"
		"\t\t(per message: \"id=ID deliveries=N receipt=R\", then the payload)\n"
		"\traftbusctl queue ack QUEUE RECEIPT [RECEIPT...]\n"
		"\t\t(several receipts (up to 100) are one batch: \"RECEIPT OK\" per\n"
		"\t\tacked receipt, an error per stale one; exit 1 if any failed)\n"
		"\traftbusctl queue nack QUEUE RECEIPT [--delay DUR]\n"
		"\traftbusctl queue extend QUEUE RECEIPT --visibility DUR\n"
		"\traftbusctl queue stats QUEUE\n"
		"\traftbusctl queue dlq QUEUE [--limit N]\n"
		"\traftbusctl queue redrive QUEUE [--max N]\n"
		"\traftbusctl queue config QUEUE --max-deliveries N\n\n"
		"OPTIONS:\n"
		"      --delay=0s\t\tpush/nack: not visible before this much time\n"
		"      --id=\"\"\t\tpush: dedup id (a repeat within the window is not queued again;\n"
		"\t\t\tone payload only)\n"
		"      --consumer=\"\"\tpop: name of the claimer\n"
		"      --visibility=30s\tpop/extend: how long the claim lasts\n"
		"      --max=1\t\tpop: messages to claim (up to 100); redrive: how many (100)\n"
		"      --wait=0s\t\tpop: wait this long for a message when the queue is empty\n"
		"      --limit=100\t\tdlq: dead letters to list (up to 1000)\n"
		"      --max-deliveries=N\tconfig: deliveries before a message is dead-lettered\n",
	.run = run_queue,
};

_Static_assert(RB_QUEUE_BATCH_MAX == 100, "the refusal texts say 100");

static int fail(int code, const char *fmt, const char *arg)
{
	fputs("Error: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return code;
}

/* ---- flag values ------------------------------------------------------ */

/* A duration flag; *ms stays when absent. */
static int dur_flag(const struct rbctl_ext_parsed *p, const char *name, int64_t *ms)
{
	const char *v = rbctl_ext_val(p, &rbctl_queue_cmd, name);
	if (v == NULL)
		return 0;
	if (!rbctl_parse_duration_ms(v, ms)) {
		fprintf(stderr, "Error: invalid argument \"%s\" for \"--%s\" flag: "
			"bad duration\n", v, name);
		return RBCTL_EXIT_BAD_FEATURE;
	}
	return 0;
}

/* A count flag in 0..max; *n stays when absent. */
static int count_flag(const struct rbctl_ext_parsed *p, const char *name,
	uint32_t max, uint32_t *n)
{
	const char *v = rbctl_ext_val(p, &rbctl_queue_cmd, name);
	if (v == NULL)
		return 0;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (*v == '\0' || *v == '-' || *end != '\0' || errno || x > max) {
		fprintf(stderr, "Error: invalid argument \"%s\" for \"--%s\" flag: "
			"want an integer in 0..%" PRIu32 "\n", v, name, max);
		return RBCTL_EXIT_BAD_FEATURE;
	}
	*n = (uint32_t)x;
	return 0;
}

/* Flags that the sub-command does not use are refused, not ignored. */
static int only_flags(const struct rbctl_ext_parsed *p, const char *sub,
	const char *const *allowed)
{
	for (size_t i = 0; i < rbctl_queue_cmd.opts_n; i++) {
		if (p->val[i] == NULL)
			continue;
		bool ok = false;
		for (size_t k = 0; allowed[k]; k++)
			ok |= strcmp(allowed[k], queue_opts[i].name) == 0;
		if (!ok) {
			fprintf(stderr, "Error: flag --%s does not apply to queue %s\n",
				queue_opts[i].name, sub);
			return RBCTL_EXIT_BAD_ARGS;
		}
	}
	return 0;
}

static int read_stdin(uint8_t **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n, stdin);
		if (n < cap)
			break;
		if (cap >= RBCTL_QUEUE_STDIN_BYTES_MAX) {
			free(buf);
			return -1;
		}
		uint8_t *b = realloc(buf, cap * 2);
		if (b == NULL)
			free(buf);
		buf = b;
		cap *= 2;
	}
	if (buf == NULL || ferror(stdin)) {
		free(buf);
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* ---- output ------------------------------------------------------------ */

static void json_str(FILE *f, const uint8_t *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&')
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void print_msg(FILE *f, int out, const struct rb_queue_msg *m)
{
	if (out == RBCTL_OUT_JSON) {
		fputs("{\"id\":", f);
		json_str(f, m->id, m->id_len);
		fprintf(f, ",\"delivery_count\":%" PRIu32, m->delivery_count);
		if (m->receipt_len) {
			fputs(",\"receipt\":", f);
			json_str(f, m->receipt, m->receipt_len);
		}
		fprintf(f, ",\"enqueued_ms\":%" PRId64 ",\"payload\":", m->enqueued_ms);
		json_str(f, m->payload, m->payload_len);
		fputs("}\n", f);
		return;
	}
	fprintf(f, "id=%.*s deliveries=%" PRIu32, (int)m->id_len, (const char *)m->id,
		m->delivery_count);
	if (m->receipt_len)
		fprintf(f, " receipt=%.*s", (int)m->receipt_len, (const char *)m->receipt);
	fputc('\n', f);
	if (m->payload_len)
		fwrite(m->payload, 1, m->payload_len, f);
	fputc('\n', f);
}

static void print_stats(FILE *f, int out, const struct rb_queue_resp *q)
{
	if (out == RBCTL_OUT_JSON) {
		fprintf(f, "{\"ready\":%" PRIu64 ",\"inflight\":%" PRIu64 ",\"delayed\":%"
			PRIu64 ",\"dead\":%" PRIu64 ",\"oldest_ready_enqueued_ms\":%" PRId64
			",\"oldest_ready_age_ms\":%" PRId64 ",\"max_deliveries\":%" PRIu32 "}\n",
			q->ready, q->inflight, q->delayed, q->dead,
			q->oldest_ready_enqueued_ms, q->oldest_ready_age_ms, q->max_deliveries);
		return;
	}
	char age[64] = "-";
	if (q->oldest_ready_enqueued_ms)
		rbctl_format_duration(q->oldest_ready_age_ms * 1000000, age, sizeof(age));
	fprintf(f, "ready: %" PRIu64 "\nin flight: %" PRIu64 "\ndelayed: %" PRIu64
		"\ndead-lettered: %" PRIu64 "\noldest ready age: %s\nmax deliveries: %"
		PRIu32 "\n", q->ready, q->inflight, q->delayed, q->dead, age,
		q->max_deliveries);
}

/* ---- sub-commands ------------------------------------------------------ */

struct qctx {
	const struct rbctl_ext_parsed *p;
	const char *sub;
	const char *queue;
	rb_client *c;
	struct rb_resp r;
};

/* push QUEUE P1 P2 ...: one PUSH_BATCH, one id per line in order. */
static int cmd_push_batch(struct qctx *q, int64_t delay)
{
	struct rb_queue_push_item items[RB_QUEUE_BATCH_MAX];
	size_t n = q->p->pos_n - 2;
	if (n > RB_QUEUE_BATCH_MAX)
		return fail(RBCTL_EXIT_BAD_ARGS, "%s",
			"queue push takes at most 100 payloads at once");
	if (rbctl_ext_val(q->p, &rbctl_queue_cmd, "id"))
		return fail(RBCTL_EXIT_BAD_ARGS, "%s",
			"--id applies to one payload; push several without it");
	for (size_t i = 0; i < n; i++)
		items[i] = (struct rb_queue_push_item){
			.payload = (const uint8_t *)q->p->pos[2 + i],
			.payload_len = strlen(q->p->pos[2 + i]), .delay_ms = delay };
	int rc = rb_queue_push_batch(q->c, q->queue, items, n, &q->r);
	if (rc)
		return rc;
	const struct rb_queue_resp *qr = &q->r.body.u.queue;
	if (qr->msgs_n != n)
		return fail(RBCTL_EXIT_ERROR, "%s", "the server returned a wrong number of ids");
	for (size_t i = 0; i < n; i++) {
		const struct rb_queue_msg *m = &qr->msgs[i];
		if (q->p->out == RBCTL_OUT_JSON) {
			fputs("{\"id\":", stdout);
			json_str(stdout, m->id, m->id_len);
			printf(",\"duplicate\":%s}\n", m->duplicate ? "true" : "false");
		} else {
			printf("%.*s\n", (int)m->id_len, (const char *)m->id);
		}
	}
	return 0;
}

static int cmd_push(struct qctx *q)
{
	static const char *const ok[] = { "delay", "id", NULL };
	int64_t delay = 0;
	int rc = only_flags(q->p, q->sub, ok);
	if (rc || (rc = dur_flag(q->p, "delay", &delay)))
		return rc;
	if (q->p->pos_n > 3)
		return cmd_push_batch(q, delay);
	uint8_t *buf = NULL;
	size_t len = 0;
	if (q->p->pos_n == 3) {
		buf = (uint8_t *)strdup(q->p->pos[2]);
		len = buf ? strlen(q->p->pos[2]) : 0;
	} else if (read_stdin(&buf, &len) != 0) {
		return fail(RBCTL_EXIT_BAD_ARGS, "%s", "cannot read the payload from stdin");
	}
	if (buf == NULL)
		return fail(RBCTL_EXIT_ERROR, "%s", "out of memory");
	rc = rb_queue_push(q->c, q->queue, buf, len, delay,
		rbctl_ext_val(q->p, &rbctl_queue_cmd, "id"), &q->r);
	free(buf);
	if (rc)
		return rc;
	const struct rb_queue_resp *qr = &q->r.body.u.queue;
	if (qr->msgs_n < 1)
		return fail(RBCTL_EXIT_ERROR, "%s", "the server returned no message id");
	if (q->p->out == RBCTL_OUT_JSON) {
		fputs("{\"id\":", stdout);
		json_str(stdout, qr->msgs[0].id, qr->msgs[0].id_len);
		printf(",\"duplicate\":%s}\n", qr->duplicate ? "true" : "false");
	} else {
		printf("%.*s\n", (int)qr->msgs[0].id_len, (const char *)qr->msgs[0].id);
		if (qr->duplicate)
			fprintf(stderr, "duplicate: an earlier push with this id was kept\n");
	}
	return 0;
}

static int cmd_pop(struct qctx *q)
{
	static const char *const ok[] = { "consumer", "visibility", "max", "wait", NULL };
	int64_t vis = 0, wait = 0;
	uint32_t max = 1;
	int rc = only_flags(q->p, q->sub, ok);
	if (rc || (rc = dur_flag(q->p, "visibility", &vis)) ||
	    (rc = dur_flag(q->p, "wait", &wait)) ||
	    (rc = count_flag(q->p, "max", RB_QUEUE_POP_MAX, &max)))
		return rc;
	if (q->p->pos_n != 2)
		return fail(RBCTL_EXIT_BAD_ARGS, "%s", "queue pop takes one argument: QUEUE");
	if (vis == 0 && rbctl_ext_val(q->p, &rbctl_queue_cmd, "visibility"))
		return fail(RBCTL_EXIT_BAD_FEATURE, "%s", "--visibility must be positive");
	if (max == 0)
		return fail(RBCTL_EXIT_BAD_FEATURE, "%s", "--max must be at least 1");
	rc = rb_queue_pop(q->c, q->queue, rbctl_ext_val(q->p, &rbctl_queue_cmd,
		"consumer"), vis, max, wait, &q->r);
	if (rc)
		return rc;
	for (size_t i = 0; i < q->r.body.u.queue.msgs_n; i++)
		print_msg(stdout, q->p->out, &q->r.body.u.queue.msgs[i]);
	return 0;
}

/* What a stale receipt of a batch says (the server's text for a single
 * ack; a batch's per-receipt results carry codes only). */
static const char *receipt_err_text(int err)
{
	if (err == RB_ERR_KEY_NOT_FOUND)
		return "raftbus: queue receipt is unknown or stale (the message was "
			"redelivered, acked or dead-lettered)";
	return rb_strerror(err);
}

/* ack QUEUE R1 R2 ...: one ACK_BATCH; a line per receipt; exit 1 (after
 * every line) when any receipt failed. */
static int cmd_ack_batch(struct qctx *q)
{
	struct rb_queue_receipt rs[RB_QUEUE_BATCH_MAX];
	size_t n = q->p->pos_n - 2;
	if (n > RB_QUEUE_BATCH_MAX)
		return fail(RBCTL_EXIT_BAD_ARGS, "%s",
			"queue ack takes at most 100 receipts at once");
	for (size_t i = 0; i < n; i++)
		rs[i] = (struct rb_queue_receipt){ (const uint8_t *)q->p->pos[2 + i],
			strlen(q->p->pos[2 + i]) };
	int rc = rb_queue_ack_batch(q->c, q->queue, rs, n, &q->r);
	if (rc)
		return rc;
	const struct rb_queue_resp *qr = &q->r.body.u.queue;
	if (qr->results_n != n)
		return fail(RBCTL_EXIT_ERROR, "%s", "the server returned a wrong number of results");
	size_t failed = 0;
	for (size_t i = 0; i < n; i++) {
		const char *r = q->p->pos[2 + i];
		int err = qr->results[i];
		failed += err != 0;
		if (q->p->out == RBCTL_OUT_JSON) {
			fputs("{\"receipt\":", stdout);
			json_str(stdout, (const uint8_t *)r, strlen(r));
			if (err == 0) {
				puts(",\"acked\":true}");
				continue;
			}
			fputs(",\"acked\":false,\"error\":", stdout);
			const char *t = receipt_err_text(err);
			json_str(stdout, (const uint8_t *)t, strlen(t));
			puts("}");
		} else if (err == 0) {
			printf("%s OK\n", r);
		} else {
			fprintf(stderr, "Error: %s: %s\n", r, receipt_err_text(err));
		}
	}
	return failed ? RBCTL_EXIT_ERROR : 0;
}

/* ack, nack, extend. */
static int cmd_receipt(struct qctx *q)
{
	bool nack = strcmp(q->sub, "nack") == 0, ext = strcmp(q->sub, "extend") == 0;
	static const char *const ok_ack[] = { NULL };
	static const char *const ok_nack[] = { "delay", NULL };
	static const char *const ok_ext[] = { "visibility", NULL };
	int64_t delay = 0, vis = 0;
	int rc = only_flags(q->p, q->sub, nack ? ok_nack : ext ? ok_ext : ok_ack);
	if (rc || (rc = dur_flag(q->p, "delay", &delay)) ||
	    (rc = dur_flag(q->p, "visibility", &vis)))
		return rc;
	if (q->p->pos_n > 3 && !nack && !ext)
		return cmd_ack_batch(q);
	if (q->p->pos_n != 3)
		return fail(RBCTL_EXIT_BAD_ARGS, nack || ext ?
			"queue %s takes two arguments: QUEUE RECEIPT" :
			"queue %s takes QUEUE and one or more RECEIPTs", q->sub);
	if (ext && vis <= 0)
		return fail(rbctl_ext_val(q->p, &rbctl_queue_cmd, "visibility") ?
			RBCTL_EXIT_BAD_FEATURE : RBCTL_EXIT_BAD_ARGS, "%s",
			"queue extend needs --visibility DUR > 0");
	const uint8_t *rcpt = (const uint8_t *)q->p->pos[2];
	size_t rlen = strlen(q->p->pos[2]);
	if (nack)
		rc = rb_queue_nack(q->c, q->queue, rcpt, rlen, delay, &q->r);
	else if (ext)
		rc = rb_queue_extend(q->c, q->queue, rcpt, rlen, vis, &q->r);
	else
		rc = rb_queue_ack(q->c, q->queue, rcpt, rlen, &q->r);
	if (rc == 0)
		puts("OK");
	return rc;
}

static int cmd_stats(struct qctx *q)
{
	static const char *const ok[] = { NULL };
	int rc = only_flags(q->p, q->sub, ok);
	if (rc)
		return rc;
	if (q->p->pos_n != 2)
		return fail(RBCTL_EXIT_BAD_ARGS, "%s", "queue stats takes one argument: QUEUE");
	if ((rc = rb_queue_stats(q->c, q->queue, &q->r)) == 0)
		print_stats(stdout, q->p->out, &q->r.body.u.queue);
	return rc;
}

static int cmd_dlq(struct qctx *q)
{
	static const char *const ok[] = { "limit", NULL };
	uint32_t limit = 0;
	int rc = only_flags(q->p, q->sub, ok);
	if (rc || (rc = count_flag(q->p, "limit", RB_QUEUE_DLQ_LIMIT_MAX, &limit)))
		return rc;
	if (q->p->pos_n != 2)
		return fail(RBCTL_EXIT_BAD_ARGS, "%s", "queue dlq takes one argument: QUEUE");
	if ((rc = rb_queue_dlq(q->c, q->queue, limit, &q->r)) != 0)
		return rc;
	for (size_t i = 0; i < q->r.body.u.queue.msgs_n; i++)
		print_msg(stdout, q->p->out, &q->r.body.u.queue.msgs[i]);
	return 0;
}

static int cmd_redrive(struct qctx *q)
{
	static const char *const ok[] = { "max", NULL };
	uint32_t max = 0;
	int rc = only_flags(q->p, q->sub, ok);
	if (rc || (rc = count_flag(q->p, "max", RB_QUEUE_POP_MAX, &max)))
		return rc;
	if (q->p->pos_n != 2)
		return fail(RBCTL_EXIT_BAD_ARGS, "%s", "queue redrive takes one argument: QUEUE");
	if ((rc = rb_queue_redrive(q->c, q->queue, max, &q->r)) != 0)
		return rc;
	const struct rb_queue_resp *qr = &q->r.body.u.queue;
	if (q->p->out == RBCTL_OUT_JSON) {
		printf("{\"moved\":%zu,\"ids\":[", qr->msgs_n);
		for (size_t i = 0; i < qr->msgs_n; i++) {
			if (i)
				putchar(',');
			json_str(stdout, qr->msgs[i].id, qr->msgs[i].id_len);
		}
		puts("]}");
		return 0;
	}
	for (size_t i = 0; i < qr->msgs_n; i++)
		printf("%.*s\n", (int)qr->msgs[i].id_len, (const char *)qr->msgs[i].id);
	fprintf(stderr, "%zu dead letter%s moved back to ready\n", qr->msgs_n,
		qr->msgs_n == 1 ? "" : "s");
	return 0;
}

static int cmd_config(struct qctx *q)
{
	static const char *const ok[] = { "max-deliveries", NULL };
	uint32_t md = 0;
	int rc = only_flags(q->p, q->sub, ok);
	if (rc || (rc = count_flag(q->p, "max-deliveries", RB_QUEUE_DELIVERIES_MAX, &md)))
		return rc;
	if (q->p->pos_n != 2)
		return fail(RBCTL_EXIT_BAD_ARGS, "%s", "queue config takes one argument: QUEUE");
	if (md == 0)
		return fail(rbctl_ext_val(q->p, &rbctl_queue_cmd, "max-deliveries") ?
			RBCTL_EXIT_BAD_FEATURE : RBCTL_EXIT_BAD_ARGS, "%s",
			"queue config needs --max-deliveries N (1..1000)");
	if ((rc = rb_queue_config(q->c, q->queue, md, &q->r)) == 0)
		puts("OK");
	return rc;
}

static const struct {
	const char *name;
	int (*run)(struct qctx *q);
} subs[] = {
	{ "push", cmd_push }, { "pop", cmd_pop }, { "ack", cmd_receipt },
	{ "nack", cmd_receipt }, { "extend", cmd_receipt }, { "stats", cmd_stats },
	{ "dlq", cmd_dlq }, { "redrive", cmd_redrive }, { "config", cmd_config },
};

static int run_queue(const struct rbctl_ext_parsed *p)
{
	if (p->rest)
		return fail(RBCTL_EXIT_BAD_ARGS, "%s", "unexpected arguments after --");
	if (p->pos_n < 1)
		return fail(RBCTL_EXIT_BAD_ARGS, "%s", "queue needs a sub-command: "
			"push|pop|ack|nack|extend|stats|dlq|redrive|config");
	int (*run)(struct qctx *q) = NULL;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(subs[i].name, p->pos[0]) == 0)
			run = subs[i].run;
	if (run == NULL)
		return fail(RBCTL_EXIT_BAD_ARGS, "unknown queue sub-command \"%s\"", p->pos[0]);
	if (p->pos_n < 2 || p->pos[1][0] == '\0')
		return fail(RBCTL_EXIT_BAD_ARGS, "queue %s needs a QUEUE name", p->pos[0]);
	struct qctx q = { .p = p, .sub = p->pos[0], .queue = p->pos[1] };
	if (rbctl_ext_client(p, &q.c) != 0)
		return fail(RBCTL_EXIT_BAD_ARGS, "%s", "bad endpoint list");
	int rc = run(&q);
	if (rc < 0) {
		/* an rb_err from the call: the server's (or the library's) own
		 * message says more than the generic etcd text of the code,
		 * e.g. why a receipt was refused */
		fprintf(stderr, "Error: %s\n", q.r.msg && *q.r.msg ? q.r.msg :
			rbctl_error_text(&q.r));
		rc = RBCTL_EXIT_ERROR;
	}
	rb_resp_free(&q.r);
	rb_client_close(q.c);
	return rc;
}
