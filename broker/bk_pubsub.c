/*
 * bk_pubsub.c - publish, the idempotent-publish dedup window and topic
 * retention (docs/pubsub.md), all on the loop thread.
 *
 * A publish becomes one store op, proposed by the leader: an append put
 * (st_put.append_rev: the key is the topic + the 20-digit revision of the
 * entry) whose value is the message envelope, built here with the
 * leader's wall clock so that apply stays deterministic. With a message id
 * it is one txn guarded by the dedup key "_rb/dedup/" + topic + "\0" + id:
 * when the key does not exist the message and the key are written
 * together (so the key's create revision IS the message's revision),
 * otherwise the key is read back and the reply says "duplicate" with the
 * first publish's revision. This lives in replicated state, so a retry
 * after a leader change is deduplicated too.
 *
 * The leader sweeps every BK_PUBSUB_SWEEP_MS, each sweep bounded: dedup
 * keys older than --pubsub-dedup-window are deleted (one txn of at most
 * BK_DEDUP_DELETES_MAX deletes), and for each topic with a retention
 * setting ("_rb/topic/" + topic) the oldest messages beyond max age, max
 * messages or max bytes are deleted with one delete_range, in the same
 * txn as the topic's retention floor ("_rb/topic-floor/" + topic = the
 * revision of the newest message removed), which subscribers check.
 * The sweeps read the store directly (st_range is safe beside the apply,
 * on its own read txn). A sweep repeated before the previous one applied
 * deletes nothing more; it at most rewrites the same floor.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bk_int.h"

/* Headers per published message (the envelope's limit). */
#define BK_PUBLISH_HEADERS_MAX RB_MESSAGE_HEADERS_MAX
/* How often the leader sweeps dedup keys and topic retention. */
#define BK_PUBSUB_SWEEP_MS 1000
/* Dedup keys examined per sweep, and deleted per sweep (one txn). */
#define BK_DEDUP_SCAN_MAX 1024u
#define BK_DEDUP_DELETES_MAX ST_TXN_OPS_MAX
/* Topics with a retention setting examined per sweep. */
#define BK_RETENTION_TOPICS_PER_SWEEP_MAX 64u
/* Messages one retention delete removes at most (bounds the LMDB txn). */
#define BK_RETENTION_DELETE_MSGS_MAX 10000u
/* Messages read per page while looking for age / bytes boundaries, and
 * pages per topic per sweep (max_bytes counts at most the newest
 * BK_RETENTION_SCAN_PAGE * BK_RETENTION_SCAN_PAGES_MAX messages). */
#define BK_RETENTION_SCAN_PAGE 256u
#define BK_RETENTION_SCAN_PAGES_MAX 16u
/* Longest retention setting value. */
#define BK_RETENTION_VALUE_BYTES_MAX 256u

#define PFX_LEN(p) (sizeof(p) - 1)

/* Sweep state. One server per process; kept here rather than in
 * bk_server so that pub/sub stays in this file; reset when another
 * server (a test) calls. */
static struct {
	const struct bk_server *s;
	int64_t next_sweep_ms;
	uint8_t dedup_cursor[ST_KEY_BYTES_MAX + 1];
	size_t dedup_cursor_n;
	uint8_t topic_cursor[ST_KEY_BYTES_MAX + 1];
	size_t topic_cursor_n;
} ps;

struct retention {
	int64_t max_age_ms;      /* 0 = no limit */
	int64_t max_msgs;
	int64_t max_bytes;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int map_st_err(int err)
{
	switch (err) {
	case ST_ERR_NOSPACE: return RB_ERR_NOSPACE;
	case ST_ERR_TOO_LARGE: return RB_ERR_TOO_LARGE;
	case ST_ERR_NOMEM: case ST_ERR_IO: case ST_ERR_DISK_FULL:
	case ST_ERR_CORRUPT: return RB_ERR_INTERNAL;
	default: return RB_ERR_BAD_REQUEST;
	}
}

/* ---- publish ------------------------------------------------------------ */

static int publish_validate(const struct bk_server *s, const struct rb_publish *p,
    char *why, size_t len)
{
	size_t bytes = p->payload_len;
	if (p->topic_len == 0) {
		snprintf(why, len, "publish: the topic is empty");
		return RB_ERR_EMPTY_KEY;
	}
	if (!rb_topic_valid(p->topic, p->topic_len)) {
		/* the topic's message keys must be a range of their own:
		 * "/orders" would also cover "/orders2/...", and a nested
		 * "/orders/7/" would sort among "/orders/"'s messages */
		snprintf(why, len, "publish: a topic must end with '/' and no "
		    "segment of it may start with a digit (e.g. /orders/eu/)");
		return RB_ERR_BAD_REQUEST;
	}
	if (p->topic_len > ST_KEY_BYTES_MAX - ST_APPEND_REV_DIGITS) {
		snprintf(why, len, "publish: topic longer than %u bytes",
		    ST_KEY_BYTES_MAX - ST_APPEND_REV_DIGITS);
		return RB_ERR_BAD_REQUEST;
	}
	if (p->msg_id_len && PFX_LEN(RB_PUBSUB_DEDUP_PREFIX) + p->topic_len + 1 +
	    p->msg_id_len > ST_KEY_BYTES_MAX) {
		snprintf(why, len, "publish: topic + message id longer than %zu bytes",
		    (size_t)ST_KEY_BYTES_MAX - PFX_LEN(RB_PUBSUB_DEDUP_PREFIX) - 1);
		return RB_ERR_BAD_REQUEST;
	}
	if (p->headers_n > BK_PUBLISH_HEADERS_MAX) {
		snprintf(why, len, "publish: more than %u headers",
		    BK_PUBLISH_HEADERS_MAX);
		return RB_ERR_BAD_REQUEST;
	}
	for (size_t i = 0; i < p->headers_n; i++)
		bytes += p->headers[i].key_len + p->headers[i].value_len;
	if (bytes > s->cfg.max_request_bytes) {
		snprintf(why, len, "etcdserver: request is too large");
		return RB_ERR_TOO_LARGE;
	}
	return RB_OK;
}

/* Proposes the publish: a bare append, or the dedup txn. */
static int publish_propose(struct bk_server *s, struct bk_creq *r,
    const struct rb_publish *p, const uint8_t *env, size_t env_len, int64_t now)
{
	struct st_op put = { .type = ST_OP_PUT };
	put.u.put = (struct st_put){ .key = p->topic, .key_len = p->topic_len,
	    .value = env, .value_len = env_len, .append_rev = true };
	if (p->msg_id_len == 0)
		return bk_propose_op(s, r, &put);
	uint8_t dk[ST_KEY_BYTES_MAX];
	size_t n = PFX_LEN(RB_PUBSUB_DEDUP_PREFIX);
	memcpy(dk, RB_PUBSUB_DEDUP_PREFIX, n);
	memcpy(dk + n, p->topic, p->topic_len);
	n += p->topic_len;
	dk[n++] = 0;
	memcpy(dk + n, p->msg_id, p->msg_id_len);
	n += p->msg_id_len;
	char when[24];
	int wl = snprintf(when, sizeof(when), "%" PRId64, now);
	struct st_compare fresh = { .target = ST_CMP_CREATE,
	    .result = ST_CMP_EQUAL, .key = dk, .key_len = n, .number = 0 };
	struct st_op ok[2] = { put, { .type = ST_OP_PUT } };
	ok[1].u.put = (struct st_put){ .key = dk, .key_len = n,
	    .value = (const uint8_t *)when, .value_len = (size_t)wl };
	struct st_op dup = { .type = ST_OP_RANGE };
	dup.u.range.key = dk;
	dup.u.range.key_len = n;
	struct st_op txn = { .type = ST_OP_TXN };
	txn.u.txn = (struct st_txn){ &fresh, 1, ok, 2, &dup, 1 };
	return bk_propose_op(s, r, &txn);
}

void bk_publish_handle(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct rb_op *op)
{
	const struct rb_publish *p = &op->u.publish;
	char why[160];
	if (s->role != RL_LEADER) {
		bk_client_reply_err(s, r, id, op->type, s->leader ?
		    RB_ERR_NOT_LEADER : RB_ERR_NO_LEADER, NULL, 0);
		return;
	}
	int rc = publish_validate(s, p, why, sizeof(why));
	if (rc) {
		bk_client_reply_err(s, r, id, op->type, rc, why, 0);
		return;
	}
	int64_t now = wall_ms();
	uint8_t *env;
	size_t env_len;
	rc = rb_message_encode(now, p->headers, p->headers_n, p->payload,
	    p->payload_len, &env, &env_len);
	if (rc == 0) {
		rc = publish_propose(s, r, p, env, env_len, now);
		free(env);
	}
	if (rc)
		bk_client_reply_err(s, r, id, op->type, rc, rc == RB_ERR_TIMEOUT ?
		    "etcdserver: too many requests" : NULL, 0);
}

void bk_publish_reply(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct st_result *res)
{
	if (res->err) {
		bk_client_reply_err(s, r, id, RB_OP_PUBLISH, map_st_err(res->err),
		    res->msg, 0);
		return;
	}
	struct rb_resp resp = { 0 };
	resp.body.type = RB_OP_PUBLISH;
	resp.body.u.publish.revision = res->revision;
	const struct st_op_resp *o = &res->resp;
	if (o->type == ST_RESP_TXN && !o->u.txn.succeeded) {
		/* the dedup key exists: its create revision is the message's */
		const struct st_range_resp *rr = &o->u.txn.responses[0].u.range;
		assert(o->u.txn.responses_n == 1 && rr->kvs_n == 1);
		resp.body.u.publish.revision = rr->kvs[0].create_revision;
		resp.body.u.publish.duplicate = true;
	}
	bk_client_send(s, r, id, RB_OP_PUBLISH, &resp, res->revision);
}

/* ---- dedup window ------------------------------------------------------- */

static int64_t parse_i64(const uint8_t *v, size_t n, bool *ok)
{
	char buf[24];
	*ok = n > 0 && n < sizeof(buf);
	if (!*ok)
		return 0;
	memcpy(buf, v, n);
	buf[n] = 0;
	char *end;
	long long x = strtoll(buf, &end, 10);
	*ok = *end == 0;
	return x;
}

/* Range of keys [from, end) with values; limit n. */
static int scan(struct bk_server *s, const uint8_t *from, size_t from_n,
    const uint8_t *end, size_t end_n, int64_t limit, bool keys_only,
    bool descend, struct st_result *res)
{
	struct st_range rq = { .key = from, .key_len = from_n, .range_end = end,
	    .range_end_len = end_n, .limit = limit, .keys_only = keys_only };
	if (descend) {
		rq.sort_target = ST_SORT_KEY;
		rq.sort_order = ST_SORT_DESCEND;
	}
	memset(res, 0, sizeof(*res));
	int rc = st_range(s->st, &rq, res);
	if (rc)
		bk_log(BK_LOG_WARN, "pubsub sweep: range: %s", st_strerror(rc));
	return rc;
}

/* Remembers where the next sweep continues: after the last key read, or
 * from the start when the scan reached the end. */
static void cursor_set(uint8_t *cur, size_t *cur_n, const struct st_range_resp *rr,
    size_t upto)
{
	*cur_n = 0;
	if (upto == 0 || (!rr->more && upto == rr->kvs_n))
		return;
	const struct st_kv *kv = &rr->kvs[upto - 1];
	if (kv->key_len + 1 > ST_KEY_BYTES_MAX)
		return;
	memcpy(cur, kv->key, kv->key_len);
	cur[kv->key_len] = 0;      /* the next key after it */
	*cur_n = kv->key_len + 1;
}

static void dedup_sweep(struct bk_server *s, int64_t now)
{
	static const uint8_t pfx[] = RB_PUBSUB_DEDUP_PREFIX;
	uint8_t end[sizeof(pfx)];
	size_t end_n = st_prefix_end(pfx, PFX_LEN(RB_PUBSUB_DEDUP_PREFIX), end);
	struct st_result res;
	if (scan(s, ps.dedup_cursor_n ? ps.dedup_cursor : pfx, ps.dedup_cursor_n ?
	    ps.dedup_cursor_n : PFX_LEN(RB_PUBSUB_DEDUP_PREFIX), end, end_n,
	    BK_DEDUP_SCAN_MAX, false, false, &res))
		goto out_free;
	const struct st_range_resp *rr = &res.resp.u.range;
	struct st_op dels[BK_DEDUP_DELETES_MAX];
	size_t n = 0, i;
	for (i = 0; i < rr->kvs_n && n < BK_DEDUP_DELETES_MAX; i++) {
		bool ok;
		int64_t t = parse_i64(rr->kvs[i].value, rr->kvs[i].value_len, &ok);
		if (ok && now - t < s->cfg.pubsub_dedup_window_ms)
			continue;
		dels[n] = (struct st_op){ .type = ST_OP_DELETE_RANGE };
		dels[n].u.delete_range.key = rr->kvs[i].key;
		dels[n].u.delete_range.key_len = rr->kvs[i].key_len;
		n++;
	}
	cursor_set(ps.dedup_cursor, &ps.dedup_cursor_n, rr, i);
	if (n) {
		struct st_op txn = { .type = ST_OP_TXN };
		txn.u.txn = (struct st_txn){ NULL, 0, dels, n, NULL, 0 };
		if (bk_propose_op(s, NULL, &txn) == 0)
			bk_log(BK_LOG_DEBUG, "pubsub: %zu dedup keys expired", n);
	}
out_free:
	st_result_free(&res);
}

/* ---- retention ---------------------------------------------------------- */

/* "max_age_ms=N;max_msgs=N;max_bytes=N" (any subset, any order). */
static bool retention_parse(const uint8_t *v, size_t n, struct retention *rt)
{
	char buf[BK_RETENTION_VALUE_BYTES_MAX + 1];
	memset(rt, 0, sizeof(*rt));
	if (n > BK_RETENTION_VALUE_BYTES_MAX)
		return false;
	memcpy(buf, v, n);
	buf[n] = 0;
	char *save = NULL;
	for (char *f = strtok_r(buf, ";", &save); f; f = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(f, '=');
		if (!eq)
			return false;
		*eq = 0;
		bool ok;
		int64_t x = parse_i64((const uint8_t *)eq + 1, strlen(eq + 1), &ok);
		if (!ok || x < 0)
			return false;
		if (!strcmp(f, "max_age_ms"))
			rt->max_age_ms = x;
		else if (!strcmp(f, "max_msgs"))
			rt->max_msgs = x;
		else if (!strcmp(f, "max_bytes"))
			rt->max_bytes = x;
		else
			return false;
	}
	return true;
}

struct topic_scan {
	const uint8_t *topic;
	size_t topic_n;
	/* the topic's message keys, topic + 20 digits, are [start, end):
	 * start = topic + 20 zeros, end = topic + ':' (the byte after '9');
	 * no other topic's key is in it (rb_topic_valid) */
	uint8_t start[ST_KEY_BYTES_MAX];
	size_t start_n;
	uint8_t end[ST_KEY_BYTES_MAX];
	size_t end_n;
	st_rev boundary;         /* delete messages <= this */
};

static st_rev msg_rev(const struct topic_scan *t, const struct st_kv *kv)
{
	if (!rb_message_key_of(t->topic, t->topic_n, kv->key, kv->key_len))
		return 0;
	return kv->mod_revision;
}

static void by_count(struct bk_server *s, struct topic_scan *t, int64_t max_msgs)
{
	struct st_result res;
	struct st_range rq = { .key = t->start, .key_len = t->start_n,
	    .range_end = t->end, .range_end_len = t->end_n, .count_only = true };
	memset(&res, 0, sizeof(res));
	int64_t count = st_range(s->st, &rq, &res) ? 0 : res.resp.u.range.count;
	st_result_free(&res);
	if (count <= max_msgs)
		return;
	int64_t excess = count - max_msgs;
	if (excess > BK_RETENTION_DELETE_MSGS_MAX)
		excess = BK_RETENTION_DELETE_MSGS_MAX;
	if (scan(s, t->start, t->start_n, t->end, t->end_n, excess, true, false,
	    &res) == 0 && res.resp.u.range.kvs_n > 0) {
		const struct st_range_resp *rr = &res.resp.u.range;
		st_rev b = msg_rev(t, &rr->kvs[rr->kvs_n - 1]);
		if (b > t->boundary)
			t->boundary = b;
	}
	st_result_free(&res);
}

static void by_age(struct bk_server *s, struct topic_scan *t, int64_t cutoff_ms)
{
	struct st_result res;
	if (scan(s, t->start, t->start_n, t->end, t->end_n, BK_RETENTION_SCAN_PAGE,
	    false, false, &res) == 0) {
		const struct st_range_resp *rr = &res.resp.u.range;
		for (size_t i = 0; i < rr->kvs_n; i++) {
			struct rb_kv kv = { .key = rr->kvs[i].key,
			    .key_len = rr->kvs[i].key_len, .value = rr->kvs[i].value,
			    .value_len = rr->kvs[i].value_len,
			    .mod_revision = rr->kvs[i].mod_revision };
			struct rb_message m;
			st_rev rev = msg_rev(t, &rr->kvs[i]);
			if (!rev)
				continue;       /* not a message of the topic */
			if (rb_message_decode(&kv, &m) || m.publish_time_ms >= cutoff_ms)
				break;
			if (rev > t->boundary)
				t->boundary = rev;
		}
	}
	st_result_free(&res);
}

/* Newest first, adding up value bytes; the first message that does not fit
 * and everything older goes. */
static void by_bytes(struct bk_server *s, struct topic_scan *t, int64_t max_bytes)
{
	uint8_t upto[ST_KEY_BYTES_MAX];
	size_t upto_n = t->end_n;
	int64_t total = 0;
	memcpy(upto, t->end, t->end_n);
	for (unsigned page = 0; page < BK_RETENTION_SCAN_PAGES_MAX; page++) {
		struct st_result res;
		if (scan(s, t->start, t->start_n, upto, upto_n, BK_RETENTION_SCAN_PAGE,
		    false, true, &res)) {
			st_result_free(&res);
			return;
		}
		const struct st_range_resp *rr = &res.resp.u.range;
		for (size_t i = 0; i < rr->kvs_n; i++) {
			total += (int64_t)rr->kvs[i].value_len;
			st_rev rev = msg_rev(t, &rr->kvs[i]);
			if (total > max_bytes && rev) {
				if (rev > t->boundary)
					t->boundary = rev;
				st_result_free(&res);
				return;
			}
		}
		bool last = rr->kvs_n < BK_RETENTION_SCAN_PAGE;
		if (!last) {     /* the next page ends before the oldest read */
			const struct st_kv *kv = &rr->kvs[rr->kvs_n - 1];
			memcpy(upto, kv->key, kv->key_len);
			upto_n = kv->key_len;
		}
		st_result_free(&res);
		if (last)
			return;
	}
}

static st_rev floor_of(struct bk_server *s, const uint8_t *fk, size_t fk_n)
{
	struct st_result res;
	st_rev f = 0;
	if (scan(s, fk, fk_n, NULL, 0, 1, false, false, &res) == 0 &&
	    res.resp.u.range.kvs_n == 1) {
		bool ok;
		const struct st_kv *kv = &res.resp.u.range.kvs[0];
		f = parse_i64(kv->value, kv->value_len, &ok);
	}
	st_result_free(&res);
	return f;
}

/* Deletes messages <= boundary and records the floor, in one txn. */
static void retention_apply(struct bk_server *s, const struct topic_scan *t)
{
	uint8_t fk[PFX_LEN(RB_PUBSUB_FLOOR_PREFIX) + ST_KEY_BYTES_MAX];
	size_t fk_n = PFX_LEN(RB_PUBSUB_FLOOR_PREFIX);
	memcpy(fk, RB_PUBSUB_FLOOR_PREFIX, fk_n);
	memcpy(fk + fk_n, t->topic, t->topic_n);
	fk_n += t->topic_n;
	if (fk_n > ST_KEY_BYTES_MAX || floor_of(s, fk, fk_n) >= t->boundary)
		return;
	/* range end: the key of revision boundary + 1, which no longer than a
	 * message key fits the key limit for the longest topic (the boundary
	 * key + "\0" would be one byte over) */
	char digits[ST_APPEND_REV_DIGITS + 1];
	uint8_t last[ST_KEY_BYTES_MAX];
	snprintf(digits, sizeof(digits), "%020lld", (long long)t->boundary + 1);
	memcpy(last, t->topic, t->topic_n);
	memcpy(last + t->topic_n, digits, ST_APPEND_REV_DIGITS);
	size_t last_n = t->topic_n + ST_APPEND_REV_DIGITS;
	char val[24];
	int vl = snprintf(val, sizeof(val), "%020lld", (long long)t->boundary);
	struct st_op ops[2] = { { .type = ST_OP_DELETE_RANGE }, { .type = ST_OP_PUT } };
	ops[0].u.delete_range = (struct st_delete_range){ .key = t->start,
	    .key_len = t->start_n, .range_end = last, .range_end_len = last_n };
	ops[1].u.put = (struct st_put){ .key = fk, .key_len = fk_n,
	    .value = (const uint8_t *)val, .value_len = (size_t)vl };
	struct st_op txn = { .type = ST_OP_TXN };
	txn.u.txn = (struct st_txn){ NULL, 0, ops, 2, NULL, 0 };
	if (bk_propose_op(s, NULL, &txn) == 0)
		bk_log(BK_LOG_DEBUG, "pubsub: retention of %.*s up to revision %lld",
		    (int)t->topic_n, (const char *)t->topic, (long long)t->boundary);
}

static void retention_topic(struct bk_server *s, const uint8_t *topic,
    size_t topic_n, const struct retention *rt, int64_t now)
{
	struct topic_scan t = { .topic = topic, .topic_n = topic_n };
	if (topic_n == 0 || topic_n > ST_KEY_BYTES_MAX - ST_APPEND_REV_DIGITS)
		return;
	if (!rb_topic_valid(topic, topic_n))
		return;   /* not a topic (publish refuses such names) */
	memcpy(t.start, topic, topic_n);
	memset(t.start + topic_n, '0', ST_APPEND_REV_DIGITS);
	t.start_n = topic_n + ST_APPEND_REV_DIGITS;
	memcpy(t.end, topic, topic_n);
	t.end[topic_n] = ':';
	t.end_n = topic_n + 1;
	if (rt->max_msgs > 0)
		by_count(s, &t, rt->max_msgs);
	if (rt->max_age_ms > 0)
		by_age(s, &t, now - rt->max_age_ms);
	if (rt->max_bytes > 0)
		by_bytes(s, &t, rt->max_bytes);
	if (t.boundary > 0)
		retention_apply(s, &t);
}

static void retention_sweep(struct bk_server *s, int64_t now)
{
	static const uint8_t pfx[] = RB_PUBSUB_TOPIC_PREFIX;
	const size_t pn = PFX_LEN(RB_PUBSUB_TOPIC_PREFIX);
	uint8_t end[sizeof(pfx)];
	size_t end_n = st_prefix_end(pfx, pn, end);
	struct st_result res;
	if (scan(s, ps.topic_cursor_n ? ps.topic_cursor : pfx, ps.topic_cursor_n ?
	    ps.topic_cursor_n : pn, end, end_n, BK_RETENTION_TOPICS_PER_SWEEP_MAX,
	    false, false, &res) == 0) {
		const struct st_range_resp *rr = &res.resp.u.range;
		for (size_t i = 0; i < rr->kvs_n; i++) {
			struct retention rt;
			const struct st_kv *kv = &rr->kvs[i];
			if (!retention_parse(kv->value, kv->value_len, &rt)) {
				bk_log(BK_LOG_WARN, "pubsub: bad retention setting %.*s",
				    (int)kv->key_len, (const char *)kv->key);
				continue;
			}
			retention_topic(s, kv->key + pn, kv->key_len - pn, &rt, now);
		}
		cursor_set(ps.topic_cursor, &ps.topic_cursor_n, rr, rr->kvs_n);
	}
	st_result_free(&res);
}

void bk_pubsub_tick(struct bk_server *s)
{
	if (ps.s != s) {
		memset(&ps, 0, sizeof(ps));
		ps.s = s;
	}
	if (s->role != RL_LEADER || s->now_ms < ps.next_sweep_ms)
		return;
	ps.next_sweep_ms = s->now_ms + BK_PUBSUB_SWEEP_MS;
	int64_t now = wall_ms();
	dedup_sweep(s, now);
	retention_sweep(s, now);
}
