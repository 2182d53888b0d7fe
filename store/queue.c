/*
 * queue.c - work queues as deterministic store ops (ST_OP_QUEUE) and their
 * reads (st_queue_stats, st_queue_dlq).
 *
 * A queue is ordinary MVCC keys under ST_QUEUE_PREFIX NAME "/" (layout in
 * store.h). Every write goes through st_op_put/st_op_delete, so history,
 * events, versions and the quota apply as for any key, and one queue op is
 * one revision. Time comes only from the op's now_ms. The batch commands
 * (PUSH_BATCH, ACK_BATCH) run the single command's steps once per item
 * inside that one op: a pushed batch is one entry and one revision, its
 * messages numbered by their index in it.
 *
 * Cost: a scan over an index prefix skips keys deleted since the last
 * compaction (the history keeps their tombstones), so the store never
 * scans from the start of an index. The ready queue is addressed by a
 * per-queue sequence whose live keys are exactly [seq_head, seq_tail) (pop
 * only takes the head), so POP and "oldest ready" are direct gets. For the
 * time-ordered indexes (f/, d/, x/) the stats record keeps the smallest
 * live time ("lo"): inserts lower it, and an op that removes the key at lo
 * rescans from lo once at its end. So stats are O(1) and scans start at
 * the first live key. Only dlq/ is scanned from its start (REDRIVE and
 * st_queue_dlq are rare administrative reads).
 *
 * Records are fixed big-endian binary with a version byte, parsed with
 * bounds checks: anyone may overwrite these keys with plain puts, so a
 * record that does not parse is ST_ERR_QUEUE_INVALID, never a crash.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_internal.h"

#define Q_PREFIX_BYTES (sizeof(ST_QUEUE_PREFIX) - 1)
#define Q_ID_BYTES 25u           /* %020lld "-" %04u */
#define Q_TIME_DIGITS 20u
#define Q_NONE INT64_MAX         /* an empty time index's "lo" */
#define Q_REC_VERSION 1u
#define Q_REC_HEADER_BYTES 34u
#define Q_STATS_VERSION 1u
#define Q_STATS_BYTES (1u + 9u * 8u)
#define Q_CONFIG_VERSION 1u
#define Q_CONFIG_BYTES 5u
/* Longest key: base + "dedup/" + dedup id (the x/ key is shorter). */
#define Q_BASE_BYTES_MAX (Q_PREFIX_BYTES + ST_QUEUE_NAME_BYTES_MAX + 1u)
#define Q_KEY_BYTES_MAX (Q_BASE_BYTES_MAX + 32u + ST_QUEUE_DEDUP_ID_BYTES_MAX)

_Static_assert(Q_KEY_BYTES_MAX <= ST_KEY_BYTES_MAX, "queue keys must fit the key limit");
_Static_assert(Q_REC_HEADER_BYTES + ST_QUEUE_CONSUMER_BYTES_MAX +
	ST_QUEUE_DEDUP_ID_BYTES_MAX <= ST_QUEUE_RECORD_BYTES_OVERHEAD_MAX,
	"record overhead bound");

enum q_state { Q_READY = 1, Q_DELAYED = 2, Q_INFLIGHT = 3, Q_DEAD = 4 };

struct q_stats {
	uint64_t ready, inflight, delayed, dead;
	uint64_t seq_head, seq_tail; /* live ready keys: [head, tail) */
	int64_t f_lo, d_lo, x_lo;    /* smallest live time per index, or Q_NONE */
};

/* A message record; pointers into `buf` (malloc'ed, owned). */
struct q_msg {
	uint8_t id[Q_ID_BYTES];
	uint8_t state;
	uint32_t count;
	int64_t enqueued_ms;
	int64_t due_ms;          /* visible_at (delayed) or deadline (in flight) */
	uint64_t seq;            /* ready position (ready) */
	const uint8_t *consumer, *dedup, *payload;
	size_t consumer_len, dedup_len, payload_len;
	uint8_t *buf;
};

/* One op being applied to one queue. */
struct q_ctx {
	struct st_wctx *w;
	const struct st_queue_op *op;
	uint8_t base[Q_BASE_BYTES_MAX];
	size_t base_len;
	struct q_stats s;
	uint32_t max_del;
	bool f_rescan, d_rescan, x_rescan; /* the key at lo was removed */
	struct st_queue_resp *resp;
};

/* ---- names, keys, encodings ---------------------------------------------- */

static int q_name_check(const uint8_t *name, size_t len)
{
	if (len == 0 || len > ST_QUEUE_NAME_BYTES_MAX || name == NULL)
		return ST_ERR_QUEUE_INVALID;
	for (size_t i = 0; i < len; i++)
		if (name[i] <= 0x20 || name[i] >= 0x7f || name[i] == '/')
			return ST_ERR_QUEUE_INVALID;
	return 0;
}

static size_t q_base(uint8_t *buf, const uint8_t *name, size_t len)
{
	memcpy(buf, ST_QUEUE_PREFIX, Q_PREFIX_BYTES);
	memcpy(buf + Q_PREFIX_BYTES, name, len);
	buf[Q_PREFIX_BYTES + len] = '/';
	return Q_PREFIX_BYTES + len + 1;
}

/* base || sub || [%020 number "/"] || tail; sub is a C string. */
static size_t q_key(uint8_t *buf, const uint8_t *base, size_t base_len,
	const char *sub, int64_t num, bool with_num, const uint8_t *tail,
	size_t tail_len)
{
	size_t n = base_len, sl = strlen(sub);
	assert(base_len + sl + Q_TIME_DIGITS + 1 + tail_len <= Q_KEY_BYTES_MAX);
	memcpy(buf, base, base_len);
	memcpy(buf + n, sub, sl);
	n += sl;
	if (with_num) {
		assert(num >= 0);
		char t[Q_TIME_DIGITS + 2];
		snprintf(t, sizeof(t), "%020lld/", (long long)num);
		memcpy(buf + n, t, Q_TIME_DIGITS + 1);
		n += Q_TIME_DIGITS + 1;
	}
	if (tail_len)
		memcpy(buf + n, tail, tail_len);
	return n + tail_len;
}

/* The ready key r/<seq %020> (no trailing slash). */
static size_t q_ready_key(uint8_t *buf, const struct q_ctx *c, uint64_t seq)
{
	return q_key(buf, c->base, c->base_len, "r/", (int64_t)seq, true, NULL, 0) - 1;
}

static int64_t q_get_i64(const uint8_t *p)
{
	return (int64_t)st_get_u64(p);
}

static void q_stats_encode(const struct q_stats *s, uint8_t *p)
{
	const uint64_t f[9] = { s->ready, s->inflight, s->delayed, s->dead,
		s->seq_head, s->seq_tail, (uint64_t)s->f_lo, (uint64_t)s->d_lo,
		(uint64_t)s->x_lo };
	p[0] = Q_STATS_VERSION;
	for (size_t i = 0; i < 9; i++)
		st_put_u64(p + 1 + 8 * i, f[i]);
}

static int q_stats_decode(const uint8_t *p, size_t n, struct q_stats *s)
{
	if (n != Q_STATS_BYTES || p[0] != Q_STATS_VERSION)
		return ST_ERR_QUEUE_INVALID;
	uint64_t f[9];
	for (size_t i = 0; i < 9; i++)
		f[i] = st_get_u64(p + 1 + 8 * i);
	*s = (struct q_stats){ f[0], f[1], f[2], f[3], f[4], f[5], (int64_t)f[6],
		(int64_t)f[7], (int64_t)f[8] };
	if (s->seq_head > s->seq_tail || s->seq_tail - s->seq_head != s->ready)
		return ST_ERR_QUEUE_INVALID;
	/* plain writes may have put anything here: positions and times become
	 * key digits, which q_key() asserts are not negative */
	if (s->seq_tail > INT64_MAX || s->f_lo < 0 || s->d_lo < 0 || s->x_lo < 0)
		return ST_ERR_QUEUE_INVALID;
	return 0;
}

static const struct q_stats q_stats_empty = { .f_lo = Q_NONE, .d_lo = Q_NONE,
	.x_lo = Q_NONE };

/* Encodes m into a new malloc'ed buffer. */
static uint8_t *q_msg_encode(const struct q_msg *m, size_t *len)
{
	*len = Q_REC_HEADER_BYTES + m->consumer_len + m->dedup_len + m->payload_len;
	uint8_t *p = malloc(*len);
	if (p == NULL)
		return NULL;
	p[0] = Q_REC_VERSION;
	p[1] = m->state;
	st_put_u32(p + 2, m->count);
	st_put_u64(p + 6, (uint64_t)m->enqueued_ms);
	st_put_u64(p + 14, (uint64_t)m->due_ms);
	st_put_u64(p + 22, m->seq);
	p[30] = (uint8_t)(m->consumer_len >> 8);
	p[31] = (uint8_t)m->consumer_len;
	p[32] = (uint8_t)(m->dedup_len >> 8);
	p[33] = (uint8_t)m->dedup_len;
	uint8_t *q = p + Q_REC_HEADER_BYTES;
	if (m->consumer_len)
		memcpy(q, m->consumer, m->consumer_len);
	q += m->consumer_len;
	if (m->dedup_len)
		memcpy(q, m->dedup, m->dedup_len);
	q += m->dedup_len;
	if (m->payload_len)
		memcpy(q, m->payload, m->payload_len);
	return p;
}

/* Parses a record copied into buf (taken over by m on success). */
static int q_msg_decode(uint8_t *buf, size_t n, struct q_msg *m)
{
	if (n < Q_REC_HEADER_BYTES || buf[0] != Q_REC_VERSION || buf[1] < Q_READY ||
	    buf[1] > Q_DEAD)
		return ST_ERR_QUEUE_INVALID;
	m->state = buf[1];
	m->count = st_get_u32(buf + 2);
	m->enqueued_ms = q_get_i64(buf + 6);
	m->due_ms = q_get_i64(buf + 14);
	m->seq = st_get_u64(buf + 22);
	m->consumer_len = (size_t)buf[30] << 8 | buf[31];
	m->dedup_len = (size_t)buf[32] << 8 | buf[33];
	if (m->consumer_len > ST_QUEUE_CONSUMER_BYTES_MAX ||
	    m->dedup_len > ST_QUEUE_DEDUP_ID_BYTES_MAX ||
	    Q_REC_HEADER_BYTES + m->consumer_len + m->dedup_len > n ||
	    m->due_ms < 0 || m->due_ms > 2 * ST_QUEUE_NOW_MS_MAX)
		return ST_ERR_QUEUE_INVALID;
	m->consumer = buf + Q_REC_HEADER_BYTES;
	m->dedup = m->consumer + m->consumer_len;
	m->payload = m->dedup + m->dedup_len;
	m->payload_len = n - Q_REC_HEADER_BYTES - m->consumer_len - m->dedup_len;
	m->buf = buf;
	return 0;
}

static void q_msg_free(struct q_msg *m)
{
	free(m->buf);
	m->buf = NULL;
}

/* ---- key access (reads see this op's earlier writes) ------------------- */

/* Copies the live value of key into a new malloc'ed buffer (*out NULL and
 * ST_ERR_KEY_NOT_FOUND if the key is absent or deleted). */
static int q_get(st_store *st, MDB_txn *txn, st_rev rev, const uint8_t *key,
	size_t kl, uint8_t **out, size_t *len)
{
	struct st_rec rec;
	*out = NULL;
	*len = 0;
	int rc = st_hist_latest(st, txn, key, kl, rev, &rec);
	if (rc != 0)
		return rc;
	if (rec.type != ST_EVENT_PUT)
		return ST_ERR_KEY_NOT_FOUND;
	/* one spare byte: a zero-length value still gets a buffer */
	if ((*out = malloc(rec.value_len + 1)) == NULL)
		return ST_ERR_NOMEM;
	if (rec.value_len)
		memcpy(*out, rec.value, rec.value_len);
	*len = rec.value_len;
	return 0;
}

static int q_put(struct q_ctx *c, const uint8_t *key, size_t kl,
	const uint8_t *value, size_t vl)
{
	struct st_put_resp pr;
	struct st_put put = { .key = key, .key_len = kl, .value = value,
		.value_len = vl };
	return st_op_put(c->w, &put, &pr);
}

/* Deletes one key that the queue's own bookkeeping says is live. */
static int q_del(struct q_ctx *c, const uint8_t *key, size_t kl)
{
	struct st_delete_range_resp dr;
	struct st_delete_range del = { .key = key, .key_len = kl };
	int rc = st_op_delete(c->w, &del, &dr);
	if (rc == 0 && dr.deleted != 1)
		rc = ST_ERR_QUEUE_INVALID;
	return rc;
}

static int q_msg_key(uint8_t *buf, const struct q_ctx *c, const char *sub,
	const uint8_t *id)
{
	return (int)q_key(buf, c->base, c->base_len, sub, 0, false, id, Q_ID_BYTES);
}

/* Loads m/<id>. A missing message is ST_ERR_KEY_NOT_FOUND. */
static int q_msg_load(struct q_ctx *c, const uint8_t *id, struct q_msg *m)
{
	uint8_t key[Q_KEY_BYTES_MAX], *buf;
	size_t n, kl = (size_t)q_msg_key(key, c, "m/", id);
	memset(m, 0, sizeof(*m));
	int rc = q_get(c->w->st, c->w->txn, c->w->rev, key, kl, &buf, &n);
	if (rc != 0)
		return rc;
	if ((rc = q_msg_decode(buf, n, m)) != 0) {
		free(buf);
		return rc;
	}
	memcpy(m->id, id, Q_ID_BYTES);
	return 0;
}

/* Writes m under sub ("m/" or "dlq/") + its id. */
static int q_msg_store(struct q_ctx *c, const char *sub, const struct q_msg *m)
{
	uint8_t key[Q_KEY_BYTES_MAX];
	size_t vl, kl = (size_t)q_msg_key(key, c, sub, m->id);
	uint8_t *v = q_msg_encode(m, &vl);
	if (v == NULL)
		return ST_ERR_NOMEM;
	int rc = q_put(c, key, kl, v, vl);
	free(v);
	return rc;
}

/* ---- time-ordered indexes (f/, d/, x/) ----------------------------------- */

struct q_hit {
	int64_t t;
	uint8_t *tail;           /* after "<t>/" (an id or a dedup id), in scratch */
	size_t tail_len;
};

struct q_scan {
	struct st_mem **scratch;
	size_t prefix_len;       /* base + sub */
	int64_t until;           /* inclusive */
	size_t limit;
	struct q_hit *hits;
	size_t n, cap;
	bool more;               /* stopped at limit with a due key left */
};

static int q_scan_visit(void *vctx, const struct st_rec *rec)
{
	struct q_scan *s = vctx;
	const uint8_t *k = rec->key + s->prefix_len;
	size_t kl = rec->key_len - s->prefix_len;
	int64_t t = 0;
	if (rec->key_len < s->prefix_len + Q_TIME_DIGITS + 2 || k[Q_TIME_DIGITS] != '/')
		return ST_ERR_QUEUE_INVALID;
	for (size_t i = 0; i < Q_TIME_DIGITS; i++) {
		if (k[i] < '0' || k[i] > '9' || t > (INT64_MAX - 9) / 10)
			return ST_ERR_QUEUE_INVALID;
		t = t * 10 + (k[i] - '0');
	}
	if (t > s->until)
		return 1;
	if (s->n == s->limit) {
		s->more = true;
		return 1;
	}
	int rc = st_mem_grow(s->scratch, (void **)&s->hits, &s->cap, s->n + 1,
		sizeof(*s->hits));
	if (rc != 0)
		return rc;
	struct q_hit *h = &s->hits[s->n++];
	h->t = t;
	h->tail_len = kl - Q_TIME_DIGITS - 1;
	h->tail = st_mem_dup(s->scratch, k + Q_TIME_DIGITS + 1, h->tail_len);
	return h->tail == NULL ? ST_ERR_NOMEM : 0;
}

/* Live keys of index `sub` with times in [from, until], at most limit. */
static int q_scan(st_store *st, MDB_txn *txn, st_rev rev, const uint8_t *base,
	size_t base_len, const char *sub, int64_t from, struct q_scan *s)
{
	uint8_t key[Q_KEY_BYTES_MAX], end[Q_KEY_BYTES_MAX];
	size_t kl = q_key(key, base, base_len, sub, from, true, NULL, 0) - 1;
	size_t el = q_key(end, base, base_len, sub, 0, false, NULL, 0);
	end[el - 1]++;           /* "f/" -> "f0": just past the index */
	struct st_span span = { .key = key, .key_len = kl, .end = end, .end_len = el };
	s->prefix_len = base_len + strlen(sub);
	return st_walk(st, txn, &span, rev, q_scan_visit, s);
}

/* The first live time of index sub at or after lo, or Q_NONE. */
static int q_first_time(struct q_ctx *c, const char *sub, int64_t lo, int64_t *out)
{
	struct st_mem *scratch = NULL;
	struct q_scan s = { .scratch = &scratch, .until = INT64_MAX, .limit = 1 };
	*out = Q_NONE;
	if (lo == Q_NONE)
		return 0;
	int rc = q_scan(c->w->st, c->w->txn, c->w->rev, c->base, c->base_len, sub,
		lo, &s);
	if (rc == 0 && s.n == 1)
		*out = s.hits[0].t;
	st_mem_free_all(&scratch);
	return rc;
}

static void q_lo_insert(int64_t *lo, int64_t t)
{
	if (t < *lo)
		*lo = t;
}

/* lo is a lower bound of every live time; t < lo only if plain writes
 * damaged the queue's keys (the delete that follows then fails). */
static void q_lo_remove(int64_t lo, int64_t t, bool *rescan)
{
	if (t <= lo)
		*rescan = true;
}

/* Writes the index key sub/<t %020>/<tail> (value: v) or deletes it. */
static int q_index_set(struct q_ctx *c, const char *sub, int64_t t,
	const uint8_t *tail, size_t tail_len, bool on, const uint8_t *v, size_t vl)
{
	uint8_t key[Q_KEY_BYTES_MAX];
	size_t kl = q_key(key, c->base, c->base_len, sub, t, true, tail, tail_len);
	return on ? q_put(c, key, kl, v, vl) : q_del(c, key, kl);
}

/* ---- moves between states ------------------------------------------------ */

/* Takes m out of its current in-flight/delayed index (not ready: only POP
 * removes ready keys, at the head). */
static int q_unindex(struct q_ctx *c, const struct q_msg *m)
{
	if (m->state == Q_INFLIGHT) {
		q_lo_remove(c->s.f_lo, m->due_ms, &c->f_rescan);
		c->s.inflight--;
		return q_index_set(c, "f/", m->due_ms, m->id, Q_ID_BYTES, false, NULL, 0);
	}
	assert(m->state == Q_DELAYED);
	q_lo_remove(c->s.d_lo, m->due_ms, &c->d_rescan);
	c->s.delayed--;
	return q_index_set(c, "d/", m->due_ms, m->id, Q_ID_BYTES, false, NULL, 0);
}

/* Puts m into `state` (ready at the tail, delayed until due, in flight
 * until due) and writes its record. */
static int q_enter(struct q_ctx *c, struct q_msg *m, uint8_t state, int64_t due)
{
	int rc;
	uint8_t key[Q_KEY_BYTES_MAX];
	m->state = state;
	m->due_ms = state == Q_READY ? 0 : due;
	if (state == Q_READY) {
		m->seq = c->s.seq_tail++;
		c->s.ready++;
		size_t kl = q_ready_key(key, c, m->seq);
		rc = q_put(c, key, kl, m->id, Q_ID_BYTES);
	} else if (state == Q_DELAYED) {
		q_lo_insert(&c->s.d_lo, due);
		c->s.delayed++;
		rc = q_index_set(c, "d/", due, m->id, Q_ID_BYTES, true, NULL, 0);
	} else {
		assert(state == Q_INFLIGHT);
		q_lo_insert(&c->s.f_lo, due);
		c->s.inflight++;
		rc = q_index_set(c, "f/", due, m->id, Q_ID_BYTES, true, NULL, 0);
	}
	return rc != 0 ? rc : q_msg_store(c, "m/", m);
}

/* Moves m (already out of its index) to dlq/ in this same revision. */
static int q_dead_letter(struct q_ctx *c, struct q_msg *m)
{
	uint8_t key[Q_KEY_BYTES_MAX];
	size_t kl = (size_t)q_msg_key(key, c, "m/", m->id);
	int rc = q_del(c, key, kl);
	m->state = Q_DEAD;
	m->due_ms = 0;
	if (rc == 0)
		rc = q_msg_store(c, "dlq/", m);
	c->s.dead++;
	c->resp->dead_lettered_n++;
	return rc;
}

/* Back to ready or delayed after a failed delivery, or to dlq/ once it was
 * delivered max_deliveries times. m is out of its index already. */
static int q_requeue(struct q_ctx *c, struct q_msg *m, int64_t delay_ms)
{
	if (m->count >= c->max_del)
		return q_dead_letter(c, m);
	if (delay_ms > 0)
		return q_enter(c, m, Q_DELAYED, c->op->now_ms + delay_ms);
	return q_enter(c, m, Q_READY, 0);
}

/* ---- load and save the queue's state -------------------------------------- */

static int q_load(st_store *st, MDB_txn *txn, st_rev rev, const uint8_t *base,
	size_t base_len, struct q_stats *s, uint32_t *max_del)
{
	uint8_t key[Q_KEY_BYTES_MAX], *v;
	size_t vl, kl = q_key(key, base, base_len, "stats", 0, false, NULL, 0);
	int rc = q_get(st, txn, rev, key, kl, &v, &vl);
	*s = q_stats_empty;
	if (rc == 0)
		rc = q_stats_decode(v, vl, s);
	free(v);
	if (rc != 0 && rc != ST_ERR_KEY_NOT_FOUND)
		return rc;
	*max_del = ST_QUEUE_DELIVERIES_DEFAULT;
	kl = q_key(key, base, base_len, "config", 0, false, NULL, 0);
	rc = q_get(st, txn, rev, key, kl, &v, &vl);
	if (rc == 0) {
		if (vl != Q_CONFIG_BYTES || v[0] != Q_CONFIG_VERSION)
			rc = ST_ERR_QUEUE_INVALID;
		else
			*max_del = st_get_u32(v + 1);
		if (rc == 0 && (*max_del == 0 || *max_del > ST_QUEUE_DELIVERIES_MAX))
			rc = ST_ERR_QUEUE_INVALID;
	}
	free(v);
	return rc == ST_ERR_KEY_NOT_FOUND ? 0 : rc;
}

/* Settles the lo hints, then writes stats if this op wrote anything. */
static int q_save(struct q_ctx *c, uint32_t sub_before)
{
	int rc = 0;
	if (c->f_rescan)
		rc = q_first_time(c, "f/", c->s.f_lo, &c->s.f_lo);
	if (rc == 0 && c->d_rescan)
		rc = q_first_time(c, "d/", c->s.d_lo, &c->s.d_lo);
	if (rc == 0 && c->x_rescan)
		rc = q_first_time(c, "x/", c->s.x_lo, &c->s.x_lo);
	if (rc != 0 || c->w->sub == sub_before)
		return rc;
	uint8_t key[Q_KEY_BYTES_MAX], v[Q_STATS_BYTES];
	size_t kl = q_key(key, c->base, c->base_len, "stats", 0, false, NULL, 0);
	q_stats_encode(&c->s, v);
	return q_put(c, key, kl, v, sizeof(v));
}

/* ---- commands ------------------------------------------------------------- */

/* <rev %020>-<index %04>: index is the message's place in its entry. */
static void q_make_id(uint8_t *id, st_rev rev, uint32_t index)
{
	char t[Q_ID_BYTES + 1];
	assert(index < ST_QUEUE_BATCH_MAX && ST_QUEUE_BATCH_MAX <= 10000);
	snprintf(t, sizeof(t), "%020lld-%04u", (long long)rev, (unsigned)index);
	memcpy(id, t, Q_ID_BYTES);
}

static int q_resp_msgs(struct q_ctx *c, size_t n)
{
	c->resp->msgs = st_mem_alloc(c->w->mem, n * sizeof(*c->resp->msgs));
	if (c->resp->msgs == NULL)
		return ST_ERR_NOMEM;
	memset(c->resp->msgs, 0, n * sizeof(*c->resp->msgs));
	return 0;
}

/* Appends m to the response (id, payload, count, enqueued; receipt if
 * asked). */
static int q_resp_add(struct q_ctx *c, const struct q_msg *m, bool payload,
	bool receipt)
{
	struct st_queue_msg *o = &c->resp->msgs[c->resp->msgs_n++];
	o->id = st_mem_dup(c->w->mem, m->id, Q_ID_BYTES);
	o->id_len = Q_ID_BYTES;
	o->delivery_count = m->count;
	o->enqueued_ms = m->enqueued_ms;
	if (payload && m->payload_len) {
		o->payload = st_mem_dup(c->w->mem, m->payload, m->payload_len);
		o->payload_len = m->payload_len;
		if (o->payload == NULL)
			return ST_ERR_NOMEM;
	}
	if (receipt) {
		char r[ST_QUEUE_RECEIPT_BYTES_MAX];
		int n = snprintf(r, sizeof(r), "%.*s/%u", (int)Q_ID_BYTES,
			(const char *)m->id, m->count);
		assert(n > 0 && (size_t)n < sizeof(r));
		o->receipt = st_mem_dup(c->w->mem, r, (size_t)n);
		o->receipt_len = (size_t)n;
		if (o->receipt == NULL)
			return ST_ERR_NOMEM;
	}
	return o->id == NULL ? ST_ERR_NOMEM : 0;
}

/* A dedup id recorded within the window (by an earlier op or an earlier
 * item of this batch: reads see this op's writes): *dup = true and the
 * first push's id in first_id. */
static int q_dedup_find(struct q_ctx *c, const struct st_queue_push_item *it,
	bool *dup, uint8_t *first_id)
{
	uint8_t key[Q_KEY_BYTES_MAX], *v;
	size_t vl, kl = q_key(key, c->base, c->base_len, "dedup/", 0, false,
		it->dedup_id, it->dedup_id_len);
	*dup = false;
	int rc = q_get(c->w->st, c->w->txn, c->w->rev, key, kl, &v, &vl);
	if (rc == ST_ERR_KEY_NOT_FOUND)
		return 0;
	if (rc == 0 && vl != 8 + Q_ID_BYTES)
		rc = ST_ERR_QUEUE_INVALID;
	if (rc == 0 && c->op->now_ms - q_get_i64(v) < ST_QUEUE_DEDUP_WINDOW_MS) {
		memcpy(first_id, v + 8, Q_ID_BYTES);
		*dup = true;
	}
	free(v);
	return rc;
}

static int q_dedup_record(struct q_ctx *c, const struct st_queue_push_item *it,
	const uint8_t *id)
{
	int64_t now = c->op->now_ms;
	uint8_t key[Q_KEY_BYTES_MAX], v[8 + Q_ID_BYTES];
	size_t kl = q_key(key, c->base, c->base_len, "dedup/", 0, false,
		it->dedup_id, it->dedup_id_len);
	st_put_u64(v, (uint64_t)now);
	memcpy(v + 8, id, Q_ID_BYTES);
	int rc = q_put(c, key, kl, v, sizeof(v));
	if (rc != 0)
		return rc;
	q_lo_insert(&c->s.x_lo, now);
	return q_index_set(c, "x/", now, it->dedup_id, it->dedup_id_len, true,
		NULL, 0);
}

/* Pushes one message as message `index` of this entry (or finds it a
 * duplicate) and appends its answer to resp->msgs (allocated by the
 * caller for every item). */
static int q_push_item(struct q_ctx *c, const struct st_queue_push_item *it,
	uint32_t index)
{
	bool dup = false;
	struct q_msg m = { .enqueued_ms = c->op->now_ms, .payload = it->payload,
		.payload_len = it->payload_len, .dedup = it->dedup_id,
		.dedup_len = it->dedup_id_len };
	int rc = it->dedup_id_len ? q_dedup_find(c, it, &dup, m.id) : 0;
	if (rc == 0 && dup) {
		m.enqueued_ms = 0;   /* not known without reading the first push */
		if ((rc = q_resp_add(c, &m, false, false)) == 0)
			c->resp->msgs[c->resp->msgs_n - 1].duplicate = true;
		return rc;
	}
	if (rc != 0)
		return rc;
	q_make_id(m.id, c->w->rev, index);
	if (it->delay_ms > 0)
		rc = q_enter(c, &m, Q_DELAYED, c->op->now_ms + it->delay_ms);
	else
		rc = q_enter(c, &m, Q_READY, 0);
	if (rc == 0 && it->dedup_id_len)
		rc = q_dedup_record(c, it, m.id);
	return rc == 0 ? q_resp_add(c, &m, false, false) : rc;
}

static int q_push(struct q_ctx *c)
{
	const struct st_queue_op *op = c->op;
	const struct st_queue_push_item it = { .payload = op->payload,
		.payload_len = op->payload_len, .delay_ms = op->delay_ms,
		.dedup_id = op->dedup_id, .dedup_id_len = op->dedup_id_len };
	int rc = q_resp_msgs(c, 1);
	if (rc == 0)
		rc = q_push_item(c, &it, 0);
	if (rc == 0)
		c->resp->duplicate = c->resp->msgs[0].duplicate;
	return rc;
}

/* Items in order, all in this one revision; any error undoes the whole
 * batch (the op runs in a nested txn). */
static int q_push_batch(struct q_ctx *c)
{
	const struct st_queue_op *op = c->op;
	int rc = q_resp_msgs(c, op->pushes_n);
	for (size_t i = 0; rc == 0 && i < op->pushes_n; i++)
		rc = q_push_item(c, &op->pushes[i], (uint32_t)i);
	return rc;
}

/* Loads the message a time index entry (d/ or f/) names and checks that
 * the record agrees with it: in `state`, due at the entry's time. Anything
 * else (a key planted by a plain put, a damaged record) is
 * ST_ERR_QUEUE_INVALID. */
static int q_load_due(struct q_ctx *c, const struct q_hit *h, int state,
	struct q_msg *m)
{
	memset(m, 0, sizeof(*m));   /* the caller frees it whatever happens */
	if (h->tail_len != Q_ID_BYTES)
		return ST_ERR_QUEUE_INVALID;
	int rc = q_msg_load(c, h->tail, m);
	if (rc == ST_ERR_KEY_NOT_FOUND || (rc == 0 && (m->state != state ||
	    m->due_ms != h->t)))
		rc = ST_ERR_QUEUE_INVALID;
	return rc;
}

/* Promotes delayed messages due by now, at most *budget; *more if some
 * were left. */
static int q_promote(struct q_ctx *c, size_t *budget, bool *more)
{
	struct st_mem *scratch = NULL;
	struct q_scan s = { .scratch = &scratch, .until = c->op->now_ms,
		.limit = *budget };
	int rc = 0;
	if (c->s.d_lo != Q_NONE && c->s.d_lo <= c->op->now_ms)
		rc = q_scan(c->w->st, c->w->txn, c->w->rev, c->base, c->base_len,
			"d/", c->s.d_lo, &s);
	for (size_t i = 0; rc == 0 && i < s.n; i++) {
		struct q_msg m;
		rc = q_load_due(c, &s.hits[i], Q_DELAYED, &m);
		if (rc == 0 && (rc = q_unindex(c, &m)) == 0)
			rc = q_enter(c, &m, Q_READY, 0);
		q_msg_free(&m);
	}
	*budget -= s.n;
	*more = *more || s.more;
	st_mem_free_all(&scratch);
	return rc;
}

/* Claims the message at the head of the ready queue (or dead-letters it
 * if it was delivered max_deliveries times already, after a CONFIG). */
static int q_claim_head(struct q_ctx *c)
{
	uint8_t key[Q_KEY_BYTES_MAX], *id;
	size_t idl, kl = q_ready_key(key, c, c->s.seq_head);
	struct q_msg m;
	int rc = q_get(c->w->st, c->w->txn, c->w->rev, key, kl, &id, &idl);
	if (rc == 0 && idl != Q_ID_BYTES)
		rc = ST_ERR_QUEUE_INVALID;
	if (rc == 0)
		rc = q_del(c, key, kl);
	if (rc == 0)
		rc = q_msg_load(c, id, &m);
	free(id);
	if (rc == 0 && m.state != Q_READY) {
		q_msg_free(&m);
		rc = ST_ERR_QUEUE_INVALID;
	}
	if (rc != 0)
		return rc == ST_ERR_KEY_NOT_FOUND ? ST_ERR_QUEUE_INVALID : rc;
	c->s.seq_head++;
	c->s.ready--;
	if (m.count >= c->max_del) {
		rc = q_dead_letter(c, &m);
	} else {
		m.count++;
		m.consumer = c->op->consumer;
		m.consumer_len = c->op->consumer_len;
		rc = q_enter(c, &m, Q_INFLIGHT, c->op->now_ms + c->op->visibility_ms);
		if (rc == 0)
			rc = q_resp_add(c, &m, true, true);
	}
	q_msg_free(&m);
	return rc;
}

static int q_pop(struct q_ctx *c)
{
	size_t budget = ST_QUEUE_EXPIRE_BATCH_MAX;
	bool more = false;
	int rc = q_promote(c, &budget, &more);
	if (rc == 0)
		rc = q_resp_msgs(c, c->op->max_n);
	/* Dead-lettering at the head does not count toward max_n but is
	 * bounded by the batch budget. */
	for (size_t steps = 0; rc == 0 && c->resp->msgs_n < c->op->max_n &&
	     c->s.seq_head < c->s.seq_tail && steps < ST_QUEUE_EXPIRE_BATCH_MAX;
	     steps++)
		rc = q_claim_head(c);
	return rc;
}

/* Parses a receipt "<id>/<count>" and loads the message it names, which
 * must be in flight with that delivery count. */
static int q_receipt_load(struct q_ctx *c, const uint8_t *r, size_t n,
	struct q_msg *m)
{
	uint64_t count = 0;
	if (n < Q_ID_BYTES + 2 || n > Q_ID_BYTES + 11 || r[Q_ID_BYTES] != '/')
		return ST_ERR_QUEUE_RECEIPT;
	for (size_t i = Q_ID_BYTES + 1; i < n; i++) {
		if (r[i] < '0' || r[i] > '9')
			return ST_ERR_QUEUE_RECEIPT;
		count = count * 10 + (r[i] - '0');
	}
	int rc = q_msg_load(c, r, m);
	if (rc == ST_ERR_KEY_NOT_FOUND)
		return ST_ERR_QUEUE_RECEIPT;
	if (rc == 0 && (m->state != Q_INFLIGHT || m->count != count)) {
		q_msg_free(m);
		return ST_ERR_QUEUE_RECEIPT;
	}
	return rc;
}

static int q_ack_receipt(struct q_ctx *c, const uint8_t *receipt, size_t len)
{
	struct q_msg m;
	uint8_t key[Q_KEY_BYTES_MAX];
	int rc = q_receipt_load(c, receipt, len, &m);
	if (rc != 0)
		return rc;
	if ((rc = q_unindex(c, &m)) == 0) {
		size_t kl = (size_t)q_msg_key(key, c, "m/", m.id);
		rc = q_del(c, key, kl);
	}
	q_msg_free(&m);
	return rc;
}

static int q_ack(struct q_ctx *c)
{
	return q_ack_receipt(c, c->op->receipt, c->op->receipt_len);
}

/* A stale receipt is that receipt's outcome, not the op's: the good ones
 * are acked anyway. A receipt given twice is stale the second time (the
 * first ack deleted the message in this same revision). */
static int q_ack_batch(struct q_ctx *c)
{
	const struct st_queue_op *op = c->op;
	struct st_queue_resp *r = c->resp;
	r->acks = st_mem_alloc(c->w->mem, op->receipts_n * sizeof(*r->acks));
	if (r->acks == NULL)
		return ST_ERR_NOMEM;
	for (size_t i = 0; i < op->receipts_n; i++) {
		const struct st_queue_receipt *q = &op->receipts[i];
		int rc = q_ack_receipt(c, q->receipt, q->receipt_len);
		if (rc != 0 && rc != ST_ERR_QUEUE_RECEIPT)
			return rc;
		r->acks[r->acks_n++] = rc;
		r->acked_n += rc == 0;
	}
	return 0;
}

static int q_nack(struct q_ctx *c)
{
	struct q_msg m;
	int rc = q_receipt_load(c, c->op->receipt, c->op->receipt_len, &m);
	if (rc != 0)
		return rc;
	if ((rc = q_unindex(c, &m)) == 0)
		rc = q_requeue(c, &m, c->op->delay_ms);
	q_msg_free(&m);
	return rc;
}

static int q_extend(struct q_ctx *c)
{
	struct q_msg m;
	int rc = q_receipt_load(c, c->op->receipt, c->op->receipt_len, &m);
	if (rc != 0)
		return rc;
	if ((rc = q_unindex(c, &m)) == 0)
		rc = q_enter(c, &m, Q_INFLIGHT, c->op->now_ms + c->op->visibility_ms);
	q_msg_free(&m);
	return rc;
}

/* Requeues (or dead-letters) in-flight messages past their deadline. */
static int q_expire_inflight(struct q_ctx *c, size_t *budget, bool *more)
{
	struct st_mem *scratch = NULL;
	struct q_scan s = { .scratch = &scratch, .until = c->op->now_ms,
		.limit = *budget };
	int rc = 0;
	if (c->s.f_lo != Q_NONE && c->s.f_lo <= c->op->now_ms)
		rc = q_scan(c->w->st, c->w->txn, c->w->rev, c->base, c->base_len,
			"f/", c->s.f_lo, &s);
	for (size_t i = 0; rc == 0 && i < s.n; i++) {
		struct q_msg m;
		rc = q_load_due(c, &s.hits[i], Q_INFLIGHT, &m);
		if (rc == 0 && (rc = q_unindex(c, &m)) == 0) {
			bool dead = m.count >= c->max_del;
			rc = q_requeue(c, &m, 0);
			if (!dead)
				c->resp->expired_n++;
		}
		q_msg_free(&m);
	}
	*budget -= s.n;
	*more = *more || s.more;
	st_mem_free_all(&scratch);
	return rc;
}

/* Forgets dedup ids older than the window. A dedup key re-recorded after
 * its window (before this sweep) has a newer time: only its old x/ key
 * goes. */
static int q_sweep_dedup(struct q_ctx *c, size_t *budget, bool *more)
{
	struct st_mem *scratch = NULL;
	struct q_scan s = { .scratch = &scratch,
		.until = c->op->now_ms - ST_QUEUE_DEDUP_WINDOW_MS, .limit = *budget };
	int rc = 0;
	if (c->s.x_lo != Q_NONE && c->s.x_lo <= s.until)
		rc = q_scan(c->w->st, c->w->txn, c->w->rev, c->base, c->base_len,
			"x/", c->s.x_lo, &s);
	for (size_t i = 0; rc == 0 && i < s.n; i++) {
		const struct q_hit *h = &s.hits[i];
		uint8_t key[Q_KEY_BYTES_MAX], *v = NULL;
		size_t vl, kl;
		/* the index key may be a plain write: check its dedup id before
		 * it is used to build a key (q_key asserts the key fits) */
		if (h->tail_len == 0 || h->tail_len > ST_QUEUE_DEDUP_ID_BYTES_MAX) {
			rc = ST_ERR_QUEUE_INVALID;
			break;
		}
		kl = q_key(key, c->base, c->base_len, "dedup/", 0, false, h->tail,
			h->tail_len);
		rc = q_get(c->w->st, c->w->txn, c->w->rev, key, kl, &v, &vl);
		if (rc == 0 && vl == 8 + Q_ID_BYTES && q_get_i64(v) == h->t)
			rc = q_del(c, key, kl);
		if (rc == ST_ERR_KEY_NOT_FOUND)
			rc = 0;
		free(v);
		q_lo_remove(c->s.x_lo, h->t, &c->x_rescan);
		if (rc == 0)
			rc = q_index_set(c, "x/", h->t, h->tail, h->tail_len, false,
				NULL, 0);
	}
	*budget -= s.n;
	*more = *more || s.more;
	st_mem_free_all(&scratch);
	return rc;
}

static int q_expire(struct q_ctx *c)
{
	size_t budget = ST_QUEUE_EXPIRE_BATCH_MAX;
	bool more = false;
	int rc = q_expire_inflight(c, &budget, &more);
	if (rc == 0)
		rc = q_promote(c, &budget, &more);
	if (rc == 0)
		rc = q_sweep_dedup(c, &budget, &more);
	c->resp->more = more;
	return rc;
}

/* Dead letters back to ready (oldest id first) with a fresh delivery
 * count. */
static int q_redrive(struct q_ctx *c)
{
	uint8_t start[Q_KEY_BYTES_MAX], end[Q_KEY_BYTES_MAX];
	struct st_result dl = { 0 };
	size_t sl = q_key(start, c->base, c->base_len, "dlq/", 0, false, NULL, 0);
	memcpy(end, start, sl);
	end[sl - 1]++;
	struct st_range rq = { .key = start, .key_len = sl, .range_end = end,
		.range_end_len = sl, .limit = c->op->max_n };
	struct st_meta view = *c->w->meta;
	if (c->w->sub > 0)
		view.rev = c->w->rev;
	int rc = st_range_in_txn(c->w->st, c->w->txn, &view, &rq, &dl.mem,
		&dl.resp.u.range);
	if (rc == 0)
		rc = q_resp_msgs(c, dl.resp.u.range.kvs_n);
	for (size_t i = 0; rc == 0 && i < dl.resp.u.range.kvs_n; i++) {
		const struct st_kv *kv = &dl.resp.u.range.kvs[i];
		struct q_msg m;
		uint8_t *buf = malloc(kv->value_len + 1);
		if (buf == NULL) {
			rc = ST_ERR_NOMEM;
			break;
		}
		if (kv->value_len)
			memcpy(buf, kv->value, kv->value_len);
		if (kv->key_len != sl + Q_ID_BYTES ||
		    q_msg_decode(buf, kv->value_len, &m) != 0 || m.state != Q_DEAD) {
			free(buf);
			rc = ST_ERR_QUEUE_INVALID;
			break;
		}
		memcpy(m.id, kv->key + sl, Q_ID_BYTES);
		if ((rc = q_del(c, kv->key, kv->key_len)) == 0) {
			c->s.dead--;
			m.count = 0;
			if ((rc = q_enter(c, &m, Q_READY, 0)) == 0)
				rc = q_resp_add(c, &m, true, false);
		}
		q_msg_free(&m);
	}
	st_result_free(&dl);
	return rc;
}

static int q_config(struct q_ctx *c)
{
	uint8_t key[Q_KEY_BYTES_MAX], v[Q_CONFIG_BYTES];
	size_t kl = q_key(key, c->base, c->base_len, "config", 0, false, NULL, 0);
	v[0] = Q_CONFIG_VERSION;
	st_put_u32(v + 1, c->op->max_deliveries);
	c->max_del = c->op->max_deliveries;
	return q_put(c, key, kl, v, sizeof(v));
}

/* ---- the op class --------------------------------------------------------- */

static bool q_bytes_ok(const uint8_t *p, size_t n, size_t max)
{
	return n <= max && (n == 0 || p != NULL);
}

/* The checks of one PUSH, for PUSH and each PUSH_BATCH item. */
static int q_push_item_validate(const struct st_queue_push_item *it)
{
	if (it->payload_len && it->payload == NULL)
		return ST_ERR_INVALID;
	bool delay_ok = it->delay_ms >= 0 && it->delay_ms <= ST_QUEUE_DELAY_MS_MAX;
	return delay_ok && q_bytes_ok(it->dedup_id, it->dedup_id_len,
		ST_QUEUE_DEDUP_ID_BYTES_MAX) ? 0 : ST_ERR_QUEUE_INVALID;
}

/* The whole batch must fit what one push may carry (value_bytes_max with
 * the record overhead per message), so one entry stays within the request
 * limit whatever the count. */
static int q_push_batch_validate(st_store *st, const struct st_queue_op *q)
{
	if (q->pushes_n < 1 || q->pushes_n > ST_QUEUE_BATCH_MAX || q->pushes == NULL)
		return ST_ERR_QUEUE_INVALID;
	uint64_t bytes = 0;
	for (size_t i = 0; i < q->pushes_n; i++) {
		const struct st_queue_push_item *it = &q->pushes[i];
		int rc = q_push_item_validate(it);
		if (rc != 0)
			return rc;
		if (it->payload_len > st->opts.value_bytes_max)
			return ST_ERR_TOO_LARGE;
		bytes += it->payload_len + ST_QUEUE_RECORD_BYTES_OVERHEAD_MAX;
	}
	return bytes > st->opts.value_bytes_max ? ST_ERR_TOO_LARGE : 0;
}

static int q_ack_batch_validate(const struct st_queue_op *q)
{
	if (q->receipts_n < 1 || q->receipts_n > ST_QUEUE_BATCH_MAX ||
	    q->receipts == NULL)
		return ST_ERR_QUEUE_INVALID;
	for (size_t i = 0; i < q->receipts_n; i++)
		if (!q_bytes_ok(q->receipts[i].receipt, q->receipts[i].receipt_len,
		    ST_QUEUE_RECEIPT_BYTES_MAX))
			return ST_ERR_QUEUE_INVALID;
	return 0;
}

int st_queue_validate(st_store *st, const struct st_op *op, unsigned depth)
{
	const struct st_queue_op *q = &op->u.queue;
	(void)depth;
	if (q_name_check(q->queue, q->queue_len) != 0 || q->now_ms < 0 ||
	    q->now_ms > ST_QUEUE_NOW_MS_MAX)
		return ST_ERR_QUEUE_INVALID;
	bool delay_ok = q->delay_ms >= 0 && q->delay_ms <= ST_QUEUE_DELAY_MS_MAX;
	bool vis_ok = q->visibility_ms >= 1 && q->visibility_ms <= ST_QUEUE_VISIBILITY_MS_MAX;
	bool receipt_ok = q_bytes_ok(q->receipt, q->receipt_len, ST_QUEUE_RECEIPT_BYTES_MAX);
	switch (q->cmd) {
	case ST_Q_PUSH:
		if (q->payload_len && q->payload == NULL)
			return ST_ERR_INVALID;
		if (q->payload_len + ST_QUEUE_RECORD_BYTES_OVERHEAD_MAX >
		    st->opts.value_bytes_max)
			return ST_ERR_TOO_LARGE;
		return delay_ok && q_bytes_ok(q->dedup_id, q->dedup_id_len,
			ST_QUEUE_DEDUP_ID_BYTES_MAX) ? 0 : ST_ERR_QUEUE_INVALID;
	case ST_Q_PUSH_BATCH:
		return q_push_batch_validate(st, q);
	case ST_Q_ACK_BATCH:
		return q_ack_batch_validate(q);
	case ST_Q_POP:
		return vis_ok && q->max_n >= 1 && q->max_n <= ST_QUEUE_POP_MAX &&
			q_bytes_ok(q->consumer, q->consumer_len,
			ST_QUEUE_CONSUMER_BYTES_MAX) ? 0 : ST_ERR_QUEUE_INVALID;
	case ST_Q_ACK:
		return receipt_ok ? 0 : ST_ERR_QUEUE_INVALID;
	case ST_Q_NACK:
		return receipt_ok && delay_ok ? 0 : ST_ERR_QUEUE_INVALID;
	case ST_Q_EXTEND:
		return receipt_ok && vis_ok ? 0 : ST_ERR_QUEUE_INVALID;
	case ST_Q_EXPIRE:
		return 0;
	case ST_Q_REDRIVE:
		return q->max_n >= 1 && q->max_n <= ST_QUEUE_POP_MAX ? 0
			: ST_ERR_QUEUE_INVALID;
	case ST_Q_CONFIG:
		return q->max_deliveries >= 1 &&
			q->max_deliveries <= ST_QUEUE_DELIVERIES_MAX ? 0 : ST_ERR_QUEUE_INVALID;
	default:
		return ST_ERR_QUEUE_INVALID;
	}
}

static int (*const q_cmds[])(struct q_ctx *c) = {
	[ST_Q_PUSH] = q_push, [ST_Q_POP] = q_pop, [ST_Q_ACK] = q_ack,
	[ST_Q_NACK] = q_nack, [ST_Q_EXTEND] = q_extend, [ST_Q_EXPIRE] = q_expire,
	[ST_Q_REDRIVE] = q_redrive, [ST_Q_CONFIG] = q_config,
	[ST_Q_PUSH_BATCH] = q_push_batch, [ST_Q_ACK_BATCH] = q_ack_batch,
};

int st_queue_exec(struct st_wctx *w, const struct st_op *op, struct st_op_resp *r)
{
	const struct st_queue_op *q = &op->u.queue;
	struct q_ctx c = { .w = w, .op = q, .resp = &r->u.queue };
	assert(q->cmd >= ST_Q_PUSH && q->cmd <= ST_Q_ACK_BATCH);
	r->type = ST_RESP_QUEUE;
	c.base_len = q_base(c.base, q->queue, q->queue_len);
	int rc = q_load(w->st, w->txn, w->rev, c.base, c.base_len, &c.s, &c.max_del);
	if (rc != 0)
		return rc;
	/* Only commands that add data answer to the quota: a store over its
	 * quota must still let consumers pop, ack and expire to drain it. */
	bool saved_in_txn = w->in_txn;
	bool grows = q->cmd == ST_Q_PUSH || q->cmd == ST_Q_PUSH_BATCH ||
		q->cmd == ST_Q_REDRIVE || q->cmd == ST_Q_CONFIG;
	w->in_txn = !grows;
	uint32_t sub_before = w->sub;
	rc = q_cmds[q->cmd](&c);
	if (rc == 0)
		rc = q_save(&c, sub_before);
	w->in_txn = saved_in_txn;
	return rc;
}

/* ---- reads ---------------------------------------------------------------- */

static int q_oldest_ready(st_store *st, MDB_txn *txn, st_rev rev,
	const struct q_ctx *c, int64_t *out)
{
	uint8_t key[Q_KEY_BYTES_MAX], *id, *v;
	size_t idl, vl, kl = q_ready_key(key, c, c->s.seq_head);
	struct q_msg m;
	*out = 0;
	if (c->s.seq_head == c->s.seq_tail)
		return 0;
	int rc = q_get(st, txn, rev, key, kl, &id, &idl);
	if (rc == 0 && idl != Q_ID_BYTES)
		rc = ST_ERR_QUEUE_INVALID;
	if (rc == 0) {
		kl = (size_t)q_msg_key(key, c, "m/", id);
		rc = q_get(st, txn, rev, key, kl, &v, &vl);
		if (rc == 0 && (rc = q_msg_decode(v, vl, &m)) != 0)
			free(v);
		if (rc == 0) {
			*out = m.enqueued_ms;
			q_msg_free(&m);
		}
	}
	free(id);
	return rc == ST_ERR_KEY_NOT_FOUND ? ST_ERR_QUEUE_INVALID : rc;
}

static int64_t q_min_due(const struct q_stats *s)
{
	int64_t due = s->f_lo < s->d_lo ? s->f_lo : s->d_lo;
	if (s->x_lo != Q_NONE && s->x_lo + ST_QUEUE_DEDUP_WINDOW_MS < due)
		due = s->x_lo + ST_QUEUE_DEDUP_WINDOW_MS;
	return due == Q_NONE ? 0 : (due < 1 ? 1 : due);
}

int st_queue_stats(st_store *st, const uint8_t *queue, size_t queue_len,
	struct st_queue_stats *out)
{
	MDB_txn *txn;
	struct st_meta meta;
	struct q_ctx c = { 0 };
	memset(out, 0, sizeof(*out));
	if (q_name_check(queue, queue_len) != 0)
		return ST_ERR_QUEUE_INVALID;
	c.base_len = q_base(c.base, queue, queue_len);
	int rc = st_read_begin(st, &txn);
	if (rc != 0)
		return rc;
	if ((rc = st_meta_read(st, txn, &meta)) == 0)
		rc = q_load(st, txn, meta.rev, c.base, c.base_len, &c.s, &c.max_del);
	if (rc == 0)
		rc = q_oldest_ready(st, txn, meta.rev, &c, &out->oldest_ready_enqueued_ms);
	st_read_end(st, txn);
	if (rc != 0)
		return rc;
	out->ready = c.s.ready;
	out->inflight = c.s.inflight;
	out->delayed = c.s.delayed;
	out->dead = c.s.dead;
	out->next_due_ms = q_min_due(&c.s);
	out->max_deliveries = c.max_del;
	out->revision = meta.rev;
	return 0;
}

struct q_dlq_arg {
	const uint8_t *queue;
	size_t queue_len, limit;
};

/* Payload bytes one st_queue_dlq() call copies: the listing stops after
 * the message that reaches it (at least one) with more = true, so a
 * listing of the largest payloads is not gigabytes of one reader's memory. */
#define Q_DLQ_READ_BYTES_MAX (16u * 1024u * 1024u)

/* Decodes dead letter `key` (read from this txn) into *o, its id and
 * payload copied into the result's arena. */
static int q_dlq_msg(st_store *st, MDB_txn *txn, st_rev rev, const uint8_t *key,
	size_t kl, size_t sl, struct st_mem **mem, struct st_queue_msg *o)
{
	uint8_t *buf;
	size_t n;
	struct q_msg m;
	if (kl != sl + Q_ID_BYTES)
		return ST_ERR_QUEUE_INVALID;
	int rc = q_get(st, txn, rev, key, kl, &buf, &n);
	if (rc != 0)
		return rc == ST_ERR_KEY_NOT_FOUND ? ST_ERR_QUEUE_INVALID : rc;
	if (q_msg_decode(buf, n, &m) != 0) {
		free(buf);
		return ST_ERR_QUEUE_INVALID;
	}
	*o = (struct st_queue_msg){ .id = key + sl, .id_len = Q_ID_BYTES,
		.payload_len = m.payload_len, .delivery_count = m.count,
		.enqueued_ms = m.enqueued_ms };
	if (m.payload_len && (o->payload = st_mem_dup(mem, m.payload,
	    m.payload_len)) == NULL)
		rc = ST_ERR_NOMEM;
	q_msg_free(&m);
	return rc;
}

static int q_dlq_read(st_store *st, MDB_txn *txn, const struct st_meta *meta,
	const void *varg, struct st_result *out)
{
	const struct q_dlq_arg *a = varg;
	uint8_t base[Q_BASE_BYTES_MAX], start[Q_KEY_BYTES_MAX], end[Q_KEY_BYTES_MAX];
	struct st_range_resp rr;
	size_t bl = q_base(base, a->queue, a->queue_len);
	size_t sl = q_key(start, base, bl, "dlq/", 0, false, NULL, 0);
	memcpy(end, start, sl);
	end[sl - 1]++;
	/* keys first: values are read one by one within the byte budget */
	struct st_range rq = { .key = start, .key_len = sl, .range_end = end,
		.range_end_len = sl, .limit = (int64_t)a->limit, .keys_only = true };
	int rc = st_range_in_txn(st, txn, meta, &rq, &out->mem, &rr);
	struct st_queue_resp *q = &out->resp.u.queue;
	if (rc == 0 && rr.kvs_n &&
	    (q->msgs = st_mem_alloc(&out->mem, rr.kvs_n * sizeof(*q->msgs))) == NULL)
		rc = ST_ERR_NOMEM;
	size_t i, bytes = 0;
	for (i = 0; rc == 0 && i < rr.kvs_n && bytes < Q_DLQ_READ_BYTES_MAX; i++) {
		rc = q_dlq_msg(st, txn, meta->rev, rr.kvs[i].key, rr.kvs[i].key_len,
			sl, &out->mem, &q->msgs[i]);
		if (rc == 0)
			bytes += q->msgs[i].payload_len;
	}
	q->msgs_n = rc == 0 ? i : 0;
	q->more = rr.more || i < rr.kvs_n;
	return rc;
}

int st_queue_dlq(st_store *st, const uint8_t *queue, size_t queue_len,
	size_t limit, struct st_result *out)
{
	struct q_dlq_arg a = { queue, queue_len, limit };
	if (q_name_check(queue, queue_len) != 0 || limit == 0 ||
	    limit > ST_QUEUE_DLQ_LIMIT_MAX) {
		memset(out, 0, sizeof(*out));
		st_result_set_err(out, ST_ERR_QUEUE_INVALID);
		return ST_ERR_QUEUE_INVALID;
	}
	return st_read_run(st, q_dlq_read, &a, ST_RESP_QUEUE, out);
}
