/*
 * rbctl_pubsub.c - raftbusctl's pub/sub commands (docs/pubsub.md):
 *   pub TOPIC [MESSAGE] [--header k=v]... [--id MSGID]
 *   sub TOPIC [--from earliest|latest|REV] [--group G] [--count N]
 *       [--commit auto|explicit]
 *   group list | group describe GROUP
 *   topic set TOPIC [--max-age DUR] [--max-msgs N] [--max-bytes B]
 *   topic get TOPIC | topic list
 * Every flag is checked before anything is dialled. `sub` with a group
 * commits after the batch it printed was flushed (at-least-once); with
 * --commit explicit it never commits (the position is left to tests or
 * to a later `sub`).
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rbctl.h"

/* How often `sub` wakes to notice an interrupt. */
#define RBCTL_SUB_TICK_MS 200
/* Groups / topics listed by `group list`, `group describe`, `topic list`. */
#define RBCTL_PUBSUB_LIST_MAX 10000
/* Longest key built here: a reserved prefix + a group + a topic. */
#define RBCTL_PUBSUB_KEY_BYTES_MAX 1024u

static volatile sig_atomic_t stop_sub;

static void on_signal(int sig)
{
	(void)sig;
	stop_sub = 1;
}


static void json_str(FILE *f, const uint8_t *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* A non-negative decimal; false when malformed. */
static bool parse_count(const char *v, int64_t *out)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno || x < 0)
		return false;
	*out = x;
	return true;
}

static int client_of(const struct rbctl_ext_parsed *p, rb_client **c)
{
	if (rbctl_ext_client(p, c) != 0)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "bad endpoint list");
	return RBCTL_EXIT_OK;
}

/* ---- pub ---------------------------------------------------------------- */

static const struct rbctl_ext_opt pub_opts[] = {
	{ "header", 0, RBCTL_EXT_MULTI },
	{ "id", 0, RBCTL_EXT_VALUE },
};

static int run_pub(const struct rbctl_ext_parsed *p);

const struct rbctl_ext_cmd rbctl_pub_cmd = {
	.name = "pub",
	.opts = pub_opts,
	.opts_n = sizeof(pub_opts) / sizeof(pub_opts[0]),
	.summary = "pub TOPIC [MESSAGE]\t\t\tPublishes a message on a topic",
	.usage = "NAME:\n\tpub - Publishes a message on a topic (stdin when MESSAGE is omitted)\n\n"
		"USAGE:\n\traftbusctl pub [options] <topic> [message]\n\n"
		"Prints the message's revision, and \"duplicate\" when a message with\n"
		"the same --id was already published within the dedup window.\n\n"
		"OPTIONS:\n"
		"      --header k=v\t\ta message header (repeatable, at most 64)\n"
		"      --id MSGID\t\tmessage id for idempotent publishing\n",
	.run = run_pub,
};

static int read_stdin(uint8_t **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	uint8_t *b = malloc(cap);
	while (b) {
		if (n == cap) {
			if (cap >= RBCTL_STDIN_BYTES_MAX) {
				free(b);
				return rbctl_fail(RBCTL_EXIT_ERROR, "message on stdin larger than %u bytes",
					RBCTL_STDIN_BYTES_MAX);
			}
			uint8_t *nb = realloc(b, cap * 2);
			if (!nb)
				break;
			b = nb;
			cap *= 2;
		}
		size_t got = fread(b + n, 1, cap - n, stdin);
		n += got;
		if (got == 0) {
			*buf = b;
			*len = n;
			return RBCTL_EXIT_OK;
		}
	}
	free(b);
	return rbctl_fail(RBCTL_EXIT_ERROR, "out of memory");
}

static int pub_headers(const struct rbctl_ext_parsed *p, struct rb_header_kv *h,
	size_t *n)
{
	size_t i = rbctl_ext_opt_index(&rbctl_pub_cmd, "header");
	*n = p->multi_n[i];
	if (*n > RB_MESSAGE_HEADERS_MAX)
		return rbctl_fail(RBCTL_EXIT_BAD_FEATURE, "too many headers (max %u)",
			RB_MESSAGE_HEADERS_MAX);
	for (size_t k = 0; k < *n; k++) {
		const char *v = p->multi[i][k], *eq = strchr(v, '=');
		if (!eq || eq == v)
			return rbctl_fail(RBCTL_EXIT_BAD_FEATURE,
				"invalid header \"%s\" (want --header key=value)", v);
		h[k] = (struct rb_header_kv){ .key = (const uint8_t *)v,
			.key_len = (size_t)(eq - v), .value = (const uint8_t *)eq + 1,
			.value_len = strlen(eq + 1) };
	}
	return RBCTL_EXIT_OK;
}

static int pub_send(const struct rbctl_ext_parsed *p, const struct rb_publish *pb)
{
	rb_client *c;
	int rc = client_of(p, &c);
	if (rc)
		return rc;
	struct rb_resp r = { 0 };
	if (rb_publish(c, pb, &r) != 0) {
		rc = rbctl_fail(RBCTL_EXIT_ERROR, "%s", rbctl_error_text(&r));
	} else if (p->out == RBCTL_OUT_JSON) {
		printf("{\"revision\":%" PRId64 ",\"duplicate\":%s}\n",
			r.body.u.publish.revision,
			r.body.u.publish.duplicate ? "true" : "false");
	} else {
		printf("%" PRId64 "%s\n", r.body.u.publish.revision,
			r.body.u.publish.duplicate ? " duplicate" : "");
	}
	rb_resp_free(&r);
	rb_client_close(c);
	return rc;
}

static int run_pub(const struct rbctl_ext_parsed *p)
{
	struct rb_header_kv h[RBCTL_EXT_MULTI_MAX];
	size_t hn;
	if (p->rest)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "unexpected arguments after --");
	if (p->pos_n < 1 || p->pos_n > 2)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "pub needs TOPIC and at most one MESSAGE");
	if (!rb_topic_valid((const uint8_t *)p->pos[0], strlen(p->pos[0])))
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS,
			"the topic must have 1..%u bytes, end with '/' and have no segment starting with a digit (e.g. /orders/eu/)",
			RB_TOPIC_BYTES_MAX);
	int rc = pub_headers(p, h, &hn);
	if (rc)
		return rc;
	const char *id = rbctl_ext_val(p, &rbctl_pub_cmd, "id");
	if (id && *id == '\0')
		return rbctl_fail(RBCTL_EXIT_BAD_FEATURE, "--id must not be empty");
	struct rb_publish pb = { .topic = (const uint8_t *)p->pos[0],
		.topic_len = strlen(p->pos[0]), .headers = h, .headers_n = hn,
		.msg_id = (const uint8_t *)id, .msg_id_len = id ? strlen(id) : 0 };
	uint8_t *in = NULL;
	if (p->pos_n == 2) {
		pb.payload = (const uint8_t *)p->pos[1];
		pb.payload_len = strlen(p->pos[1]);
	} else if ((rc = read_stdin(&in, &pb.payload_len)) != 0) {
		return rc;
	} else {
		pb.payload = in;
	}
	rc = pub_send(p, &pb);
	free(in);
	return rc;
}

/* ---- sub ---------------------------------------------------------------- */

static const struct rbctl_ext_opt sub_opts[] = {
	{ "from", 0, RBCTL_EXT_VALUE },
	{ "group", 0, RBCTL_EXT_VALUE },
	{ "count", 0, RBCTL_EXT_VALUE },
	{ "commit", 0, RBCTL_EXT_VALUE },
};

static int run_sub(const struct rbctl_ext_parsed *p);

const struct rbctl_ext_cmd rbctl_sub_cmd = {
	.name = "sub",
	.opts = sub_opts,
	.opts_n = sizeof(sub_opts) / sizeof(sub_opts[0]),
	.summary = "sub TOPIC [--from ...] [--group G]\tStreams the messages of a topic",
	.usage = "NAME:\n\tsub - Streams the messages of a topic, one per line\n\n"
		"USAGE:\n\traftbusctl sub [options] <topic>\n\n"
		"OPTIONS:\n"
		"      --from earliest|latest|REV\twhere to start without a committed position (default earliest)\n"
		"      --group G\t\t\tconsumer group: resume after its committed position\n"
		"      --count N\t\t\texit after N messages (0 = never)\n"
		"      --commit auto|explicit\tauto: commit each batch after printing it (default);\n"
		"\t\t\t\texplicit: never commit from the CLI\n"
		"  -w json prints {\"revision\",\"key\",\"publish_time_ms\",\"headers\",\"payload\"} lines\n",
	.run = run_sub,
};

struct sub_args {
	const char *topic;
	const char *group;
	struct rb_sub_opts o;
	int64_t count;
	bool commit;
};

static int sub_args_of(const struct rbctl_ext_parsed *p, struct sub_args *a)
{
	const struct rbctl_ext_cmd *x = &rbctl_sub_cmd;
	memset(a, 0, sizeof(*a));
	if (p->rest || p->pos_n != 1)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "sub needs exactly one TOPIC");
	a->topic = p->pos[0];
	if (!rb_topic_valid((const uint8_t *)a->topic, strlen(a->topic)))
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS,
			"the topic must have 1..%u bytes, end with '/' and have no segment starting with a digit (e.g. /orders/eu/)",
			RB_TOPIC_BYTES_MAX);
	const char *from = rbctl_ext_val(p, x, "from");
	const char *commit = rbctl_ext_val(p, x, "commit");
	const char *count = rbctl_ext_val(p, x, "count");
	a->group = rbctl_ext_val(p, x, "group");
	a->commit = true;
	if (a->group && (*a->group == '\0' || strlen(a->group) > RB_GROUP_BYTES_MAX))
		return rbctl_fail(RBCTL_EXIT_BAD_FEATURE, "--group must have 1..%u bytes",
			RB_GROUP_BYTES_MAX);
	if (!from || !strcmp(from, "earliest"))
		a->o.from = RB_SUB_FROM_EARLIEST;
	else if (!strcmp(from, "latest"))
		a->o.from = RB_SUB_FROM_LATEST;
	else if (parse_count(from, &a->o.from_rev) && a->o.from_rev >= 1)
		a->o.from = RB_SUB_FROM_REVISION;
	else
		return rbctl_fail(RBCTL_EXIT_BAD_FEATURE, "invalid --from \"%s\" (want "
			"earliest, latest or a revision >= 1)", from);
	if (count && !parse_count(count, &a->count))
		return rbctl_fail(RBCTL_EXIT_BAD_FEATURE, "invalid --count \"%s\"", count);
	if (commit && strcmp(commit, "auto") && strcmp(commit, "explicit"))
		return rbctl_fail(RBCTL_EXIT_BAD_FEATURE, "invalid --commit \"%s\" (want "
			"auto or explicit)", commit);
	if (commit && !strcmp(commit, "explicit"))
		a->commit = false;
	return RBCTL_EXIT_OK;
}

static void print_message(int out, const struct rb_message *m)
{
	if (out != RBCTL_OUT_JSON) {
		fwrite(m->payload, 1, m->payload_len, stdout);
		fputc('\n', stdout);
		return;
	}
	printf("{\"revision\":%" PRId64 ",\"key\":", m->revision);
	json_str(stdout, m->key, m->key_len);
	printf(",\"publish_time_ms\":%" PRId64 ",\"headers\":{", m->publish_time_ms);
	for (size_t i = 0; i < m->headers_n; i++) {
		if (i)
			fputc(',', stdout);
		json_str(stdout, m->headers[i].key, m->headers[i].key_len);
		fputc(':', stdout);
		json_str(stdout, m->headers[i].value, m->headers[i].value_len);
	}
	fputs("},\"payload\":", stdout);
	json_str(stdout, m->payload, m->payload_len);
	fputs("}\n", stdout);
}

static int sub_error(int rc, const char *msg)
{
	return rbctl_fail(rc == RB_ERR_COMPACTED ? RBCTL_EXIT_INTERRUPTED : RBCTL_EXIT_ERROR,
		"%s", msg);
}

static int sub_loop(const struct rbctl_ext_parsed *p, const struct sub_args *a,
	rb_sub *s)
{
	char err[512];
	int64_t printed = 0;
	bool said_standby = false;
	while (!stop_sub) {
		struct rb_sub_batch b;
		int rc = rb_sub_next(s, RBCTL_SUB_TICK_MS, &b, err, sizeof(err));
		if (rc == RB_ERR_UNAVAILABLE || rc == RB_ERR_TIMEOUT || rc == RB_ERR_NO_LEADER)
			continue;    /* as watch: keep trying while no member answers */
		if (rc)
			return sub_error(rc, err);
		if (b.standby && !said_standby)
			fprintf(stderr, "waiting: group %s of %s has another active "
				"consumer\n", a->group, a->topic);
		said_standby |= b.standby;
		size_t n = b.msgs_n;
		if (a->count > 0 && (int64_t)n > a->count - printed)
			n = (size_t)(a->count - printed);
		for (size_t i = 0; i < n; i++)
			print_message(p->out, &b.msgs[i]);
		fflush(stdout);
		printed += (int64_t)n;
		/* processed (printed and flushed): now it may be committed */
		if (n && a->commit && a->group &&
		    (rc = rb_sub_commit(s, b.msgs[n - 1].revision)) != 0)
			return rbctl_fail(RBCTL_EXIT_ERROR, "commit: %s", rb_strerror(rc));
		if (a->count > 0 && printed >= a->count)
			break;
	}
	return RBCTL_EXIT_OK;
}

static int run_sub(const struct rbctl_ext_parsed *p)
{
	struct sub_args a;
	int rc = sub_args_of(p, &a);
	if (rc)
		return rc;
	rb_client *c;
	if ((rc = client_of(p, &c)))
		return rc;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rb_sub *s;
	char err[512];
	rc = rb_sub_open(c, a.topic, a.group, &a.o, &s, err, sizeof(err));
	if (rc)
		rc = sub_error(rc, err);
	else
		rc = sub_loop(p, &a, s);
	rb_sub_close(s);
	rb_client_close(c);
	return rc;
}

/* ---- shared listing ----------------------------------------------------- */

/* Range of a prefix (keys with values), into *r. */
static int list_prefix(rb_client *c, const uint8_t *pfx, size_t n, int64_t limit,
	struct rb_resp *r)
{
	uint8_t end[RBCTL_PUBSUB_KEY_BYTES_MAX];
	struct rb_range rq = { .key = pfx, .key_len = n, .range_end = end,
		.range_end_len = rb_prefix_end(pfx, n, end), .limit = limit };
	return rb_range(c, &rq, r);
}

/* The newest message revision of a topic (0 = none). */
static int newest_of(rb_client *c, const uint8_t *topic, size_t n, rb_rev *out)
{
	uint8_t lo[RBCTL_PUBSUB_KEY_BYTES_MAX], hi[RBCTL_PUBSUB_KEY_BYTES_MAX];
	if (n + 1 > sizeof(lo))
		return RB_ERR_INVALID;
	memcpy(lo, topic, n);
	memcpy(hi, topic, n);
	lo[n] = '0';
	hi[n] = '9' + 1;
	struct rb_range rq = { .key = lo, .key_len = n + 1, .range_end = hi,
		.range_end_len = n + 1, .limit = 1, .sort_target = RB_SORT_KEY,
		.sort_order = RB_SORT_DESCEND };
	struct rb_resp r = { 0 };
	int rc = rb_range(c, &rq, &r);
	*out = rc == 0 && r.body.u.range.kvs_n ? r.body.u.range.kvs[0].mod_revision : 0;
	rb_resp_free(&r);
	return rc;
}

static int64_t kv_number(const struct rb_kv *kv)
{
	char buf[32];
	size_t n = kv->value_len < sizeof(buf) - 1 ? kv->value_len : sizeof(buf) - 1;
	memcpy(buf, kv->value, n);
	buf[n] = 0;
	return strtoll(buf, NULL, 10);
}

/* ---- group -------------------------------------------------------------- */

static int run_group(const struct rbctl_ext_parsed *p);

const struct rbctl_ext_cmd rbctl_group_cmd = {
	.name = "group",
	.opts = NULL,
	.opts_n = 0,
	.summary = "group list|describe GROUP\t\tShows consumer groups, positions and lag",
	.usage = "NAME:\n\tgroup - Shows consumer groups\n\n"
		"USAGE:\n\traftbusctl group list\n\traftbusctl group describe <group>\n\n"
		"list prints GROUP TOPIC COMMITTED per line; describe prints, per topic of\n"
		"the group, TOPIC COMMITTED NEWEST LAG (lag = newest revision in the\n"
		"topic - committed position, in revisions).\n",
	.run = run_group,
};

/* One committed-position key: _rb/group/ GROUP \0 TOPIC. */
static bool split_group_key(const struct rb_kv *kv, const uint8_t **g, size_t *gn,
	const uint8_t **t, size_t *tn)
{
	size_t pn = strlen(RB_PUBSUB_GROUP_PREFIX);
	if (kv->key_len <= pn)
		return false;
	*g = kv->key + pn;
	const uint8_t *z = memchr(*g, 0, kv->key_len - pn);
	if (!z)
		return false;
	*gn = (size_t)(z - *g);
	*t = z + 1;
	*tn = kv->key_len - pn - *gn - 1;
	return true;
}

static void group_row(int out, bool first, const uint8_t *g, size_t gn,
	const uint8_t *t, size_t tn, rb_rev committed, rb_rev newest, bool describe)
{
	rb_rev lag = newest > committed ? newest - committed : 0;
	if (out == RBCTL_OUT_JSON) {
		fputs(first ? "" : ",", stdout);
		fputs("{\"group\":", stdout);
		json_str(stdout, g, gn);
		fputs(",\"topic\":", stdout);
		json_str(stdout, t, tn);
		printf(",\"committed\":%" PRId64, committed);
		if (describe)
			printf(",\"newest\":%" PRId64 ",\"lag\":%" PRId64, newest, lag);
		fputc('}', stdout);
		return;
	}
	if (!describe)
		printf("%.*s\t", (int)gn, (const char *)g);
	printf("%.*s\t%" PRId64, (int)tn, (const char *)t, committed);
	if (describe)
		printf("\t%" PRId64 "\t%" PRId64, newest, lag);
	fputc('\n', stdout);
}

static int group_print(rb_client *c, int out, const struct rb_resp *r, bool describe)
{
	const struct rb_range_resp *rr = &r->body.u.range;
	if (out == RBCTL_OUT_JSON)
		fputc('[', stdout);
	else
		printf(describe ? "TOPIC\tCOMMITTED\tNEWEST\tLAG\n" : "GROUP\tTOPIC\tCOMMITTED\n");
	bool first = true;
	for (size_t i = 0; i < rr->kvs_n; i++) {
		const uint8_t *g, *t;
		size_t gn, tn;
		rb_rev newest = 0;
		if (!split_group_key(&rr->kvs[i], &g, &gn, &t, &tn))
			continue;
		int rc = describe ? newest_of(c, t, tn, &newest) : 0;
		if (rc) {
			if (out == RBCTL_OUT_JSON)
				fputs("]\n", stdout);
			return rbctl_fail(RBCTL_EXIT_ERROR, "%s", rb_strerror(rc));
		}
		group_row(out, first, g, gn, t, tn, kv_number(&rr->kvs[i]), newest,
			describe);
		first = false;
	}
	if (out == RBCTL_OUT_JSON)
		fputs("]\n", stdout);
	return RBCTL_EXIT_OK;
}

static int run_group(const struct rbctl_ext_parsed *p)
{
	bool list = p->pos_n == 1 && !strcmp(p->pos[0], "list");
	bool describe = p->pos_n == 2 && !strcmp(p->pos[0], "describe");
	if (p->rest || (!list && !describe))
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "usage: group list | group describe GROUP");
	uint8_t pfx[RBCTL_PUBSUB_KEY_BYTES_MAX];
	size_t n = strlen(RB_PUBSUB_GROUP_PREFIX);
	memcpy(pfx, RB_PUBSUB_GROUP_PREFIX, n);
	if (describe) {
		size_t gn = strlen(p->pos[1]);
		if (gn == 0 || gn > RB_GROUP_BYTES_MAX)
			return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "the group must have 1..%u bytes",
				RB_GROUP_BYTES_MAX);
		memcpy(pfx + n, p->pos[1], gn);
		n += gn;
		pfx[n++] = 0;
	}
	rb_client *c;
	int rc = client_of(p, &c);
	if (rc)
		return rc;
	struct rb_resp r = { 0 };
	if (list_prefix(c, pfx, n, RBCTL_PUBSUB_LIST_MAX, &r) != 0)
		rc = rbctl_fail(RBCTL_EXIT_ERROR, "%s", rbctl_error_text(&r));
	else if (describe && r.body.u.range.kvs_n == 0)
		rc = rbctl_fail(RBCTL_EXIT_ERROR, "group %s has no committed position", p->pos[1]);
	else
		rc = group_print(c, p->out, &r, describe);
	rb_resp_free(&r);
	rb_client_close(c);
	return rc;
}

/* ---- topic -------------------------------------------------------------- */

static const struct rbctl_ext_opt topic_opts[] = {
	{ "max-age", 0, RBCTL_EXT_VALUE },
	{ "max-msgs", 0, RBCTL_EXT_VALUE },
	{ "max-bytes", 0, RBCTL_EXT_VALUE },
};

static int run_topic(const struct rbctl_ext_parsed *p);

const struct rbctl_ext_cmd rbctl_topic_cmd = {
	.name = "topic",
	.opts = topic_opts,
	.opts_n = sizeof(topic_opts) / sizeof(topic_opts[0]),
	.summary = "topic set|get|list\t\t\tTopic retention settings",
	.usage = "NAME:\n\ttopic - Retention of topics\n\n"
		"USAGE:\n\traftbusctl topic set <topic> [--max-age DUR] [--max-msgs N] [--max-bytes B]\n"
		"\traftbusctl topic get <topic>\n\traftbusctl topic list\n\n"
		"The leader deletes a topic's oldest messages beyond any limit given\n"
		"(checked about every second). `set` replaces the whole setting; a\n"
		"limit of 0 means none.\n\n"
		"OPTIONS:\n"
		"      --max-age DUR\t\tmessages older than this go (Go duration: 90s, 1h)\n"
		"      --max-msgs N\t\tkeep at most N messages\n"
		"      --max-bytes B\t\tkeep at most B bytes of message values\n",
	.run = run_topic,
};

static int topic_setting(const struct rbctl_ext_parsed *p, char *val, size_t len)
{
	const struct rbctl_ext_cmd *x = &rbctl_topic_cmd;
	const char *age = rbctl_ext_val(p, x, "max-age");
	const char *msgs = rbctl_ext_val(p, x, "max-msgs");
	const char *bytes = rbctl_ext_val(p, x, "max-bytes");
	int64_t a = 0, m = 0, b = 0;
	if (!age && !msgs && !bytes)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "topic set needs --max-age, --max-msgs "
			"or --max-bytes");
	if (age && !rbctl_parse_duration_ms(age, &a))
		return rbctl_fail(RBCTL_EXIT_BAD_FEATURE, "invalid --max-age \"%s\"", age);
	if (msgs && !parse_count(msgs, &m))
		return rbctl_fail(RBCTL_EXIT_BAD_FEATURE, "invalid --max-msgs \"%s\"", msgs);
	if (bytes && !parse_count(bytes, &b))
		return rbctl_fail(RBCTL_EXIT_BAD_FEATURE, "invalid --max-bytes \"%s\"", bytes);
	snprintf(val, len, "max_age_ms=%" PRId64 ";max_msgs=%" PRId64 ";max_bytes=%"
		PRId64, a, m, b);
	return RBCTL_EXIT_OK;
}

static int topic_get(rb_client *c, int out, const char *topic, const uint8_t *key,
	size_t kn)
{
	struct rb_range rq = { .key = key, .key_len = kn };
	struct rb_resp r = { 0 };
	rb_rev floor = 0;
	int rc = rb_range(c, &rq, &r);
	if (rc == 0)
		rc = rb_topic_floor(c, topic, &floor);
	if (rc) {
		rc = rbctl_fail(RBCTL_EXIT_ERROR, "%s", rbctl_error_text(&r));
	} else {
		const struct rb_range_resp *rr = &r.body.u.range;
		const char *v = rr->kvs_n ? (const char *)rr->kvs[0].value : "";
		int vn = rr->kvs_n ? (int)rr->kvs[0].value_len : 0;
		if (out == RBCTL_OUT_JSON) {
			fputs("{\"topic\":", stdout);
			json_str(stdout, (const uint8_t *)topic, strlen(topic));
			fputs(",\"retention\":", stdout);
			json_str(stdout, (const uint8_t *)v, (size_t)vn);
			printf(",\"floor\":%" PRId64 "}\n", floor);
		} else {
			printf("%s\t%.*s\tfloor=%" PRId64 "\n", topic, vn, v, floor);
		}
	}
	rb_resp_free(&r);
	return rc;
}

static int topic_list(rb_client *c, int out)
{
	size_t pn = strlen(RB_PUBSUB_TOPIC_PREFIX);
	struct rb_resp r = { 0 };
	int rc = list_prefix(c, (const uint8_t *)RB_PUBSUB_TOPIC_PREFIX, pn,
		RBCTL_PUBSUB_LIST_MAX, &r);
	if (rc) {
		rc = rbctl_fail(RBCTL_EXIT_ERROR, "%s", rbctl_error_text(&r));
		rb_resp_free(&r);
		return rc;
	}
	const struct rb_range_resp *rr = &r.body.u.range;
	if (out == RBCTL_OUT_JSON)
		fputc('[', stdout);
	for (size_t i = 0; i < rr->kvs_n; i++) {
		const struct rb_kv *kv = &rr->kvs[i];
		if (out == RBCTL_OUT_JSON) {
			fputs(i ? ",{\"topic\":" : "{\"topic\":", stdout);
			json_str(stdout, kv->key + pn, kv->key_len - pn);
			fputs(",\"retention\":", stdout);
			json_str(stdout, kv->value, kv->value_len);
			fputc('}', stdout);
		} else {
			printf("%.*s\t%.*s\n", (int)(kv->key_len - pn),
				(const char *)kv->key + pn, (int)kv->value_len,
				(const char *)kv->value);
		}
	}
	if (out == RBCTL_OUT_JSON)
		fputs("]\n", stdout);
	rb_resp_free(&r);
	return RBCTL_EXIT_OK;
}

static int topic_do(const struct rbctl_ext_parsed *p, const char *verb,
	const char *val)
{
	rb_client *c;
	int rc = client_of(p, &c);
	if (rc)
		return rc;
	uint8_t key[RBCTL_PUBSUB_KEY_BYTES_MAX];
	size_t kn = strlen(RB_PUBSUB_TOPIC_PREFIX);
	memcpy(key, RB_PUBSUB_TOPIC_PREFIX, kn);
	if (p->pos_n == 2) {
		memcpy(key + kn, p->pos[1], strlen(p->pos[1]));
		kn += strlen(p->pos[1]);
	}
	if (!strcmp(verb, "set")) {
		struct rb_put put = { .key = key, .key_len = kn,
			.value = (const uint8_t *)val, .value_len = strlen(val) };
		struct rb_resp r = { 0 };
		if (rb_put(c, &put, &r) != 0)
			rc = rbctl_fail(RBCTL_EXIT_ERROR, "%s", rbctl_error_text(&r));
		else
			printf("OK\n");
		rb_resp_free(&r);
	} else if (!strcmp(verb, "get")) {
		rc = topic_get(c, p->out, p->pos[1], key, kn);
	} else {
		rc = topic_list(c, p->out);
	}
	rb_client_close(c);
	return rc;
}

static int run_topic(const struct rbctl_ext_parsed *p)
{
	const char *verb = p->pos_n ? p->pos[0] : "";
	bool one = !strcmp(verb, "set") || !strcmp(verb, "get");
	if (p->rest || (!one && strcmp(verb, "list")) ||
	    (one && p->pos_n != 2) || (!one && p->pos_n != 1))
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS,
			"usage: topic set TOPIC [flags] | topic get TOPIC | topic list");
	if (one && !rb_topic_valid((const uint8_t *)p->pos[1], strlen(p->pos[1])))
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS,
			"the topic must have 1..%u bytes, end with '/' and have no segment starting with a digit (e.g. /orders/eu/)",
			RB_TOPIC_BYTES_MAX);
	char val[160] = "";
	const struct rbctl_ext_cmd *x = &rbctl_topic_cmd;
	bool flags = rbctl_ext_val(p, x, "max-age") || rbctl_ext_val(p, x, "max-msgs") ||
		rbctl_ext_val(p, x, "max-bytes");
	if (strcmp(verb, "set") && flags)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "--max-* flags go with topic set only");
	if (!strcmp(verb, "set")) {
		int rc = topic_setting(p, val, sizeof(val));
		if (rc)
			return rc;
	}
	return topic_do(p, verb, val);
}
