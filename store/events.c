/*
 * events.c - reading the event history (what watch/replay deliver): the
 * PUT/DELETE events of a key range from a revision on, in revision order, in
 * bounded batches that do not split a revision.
 *
 * A whole-keyspace read walks the by-revision index. Any narrower range
 * walks the by-key history index (userkey, rev) of the keys inside the range
 * only and merges them by revision, so a topic's 10 events are found
 * without touching the millions of other keys' history. Each key
 * contributes at most want = events_max + 1 candidates, and candidates above
 * the want-th smallest revision are pruned as we go, which keeps memory
 * bounded by the batch, not by the history.
 */
#include <stdlib.h>
#include <string.h>

#include "st_internal.h"

struct st_cand {
	st_rev rev;
	uint32_t sub;
	const uint8_t *key;      /* in the scratch arena */
	size_t key_len;
};

struct st_cands {
	struct st_mem *scratch;  /* keys and the array; freed after the call */
	struct st_cand *v;
	size_t n, cap;
	size_t want;
};

static int st_cand_cmp(const void *a, const void *b)
{
	const struct st_cand *x = a, *y = b;
	if (x->rev != y->rev)
		return x->rev < y->rev ? -1 : 1;
	return x->sub < y->sub ? -1 : (x->sub > y->sub ? 1 : 0);
}

static int st_cand_add(struct st_cands *c, st_rev rev, uint32_t sub,
	const uint8_t *key, size_t key_len)
{
	int rc = st_mem_grow(&c->scratch, (void **)&c->v, &c->cap, c->n + 1,
		sizeof(*c->v));
	if (rc != 0)
		return rc;
	c->v[c->n++] = (struct st_cand){ rev, sub, key, key_len };
	return 0;
}

/* Keeps only candidates up to the want-th smallest revision; returns the
 * cutoff revision (events above it cannot be in this batch). */
static st_rev st_cands_prune(struct st_cands *c)
{
	qsort(c->v, c->n, sizeof(*c->v), st_cand_cmp);
	/* The batch emits at most want - 1 events and peeks at the want-th to
	 * say where to continue, so nothing after it is ever needed (even
	 * ties in its revision: that revision would be cut there anyway). */
	c->n = c->want;
	return c->v[c->want - 1].rev;
}

/* Adds the events of one key (the cursor's current key) from from_rev on. */
static int st_cands_of_key(MDB_cursor *cur, struct st_cands *c, const uint8_t *key,
	size_t kl, st_rev from_rev, uint32_t from_sub, st_rev *cutoff)
{
	uint8_t buf[ST_HIST_KEY_BYTES_MAX];
	MDB_val k = { st_hist_key(buf, key, kl, from_rev, 0), buf }, v;
	const uint8_t *kcopy = NULL;
	size_t taken = 0;
	int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);

	while (rc == 0 && taken < c->want) {
		struct st_rec rec;
		if ((rc = st_rec_parse(&k, &v, &rec)) != 0)
			return rc;
		if (st_bytes_cmp(rec.key, rec.key_len, key, kl) != 0 || rec.mod > *cutoff)
			return 0;
		if (!(rec.mod == from_rev && rec.sub < from_sub)) {
			if (kcopy == NULL && (kcopy = st_mem_dup(&c->scratch, key, kl)) == NULL)
				return ST_ERR_NOMEM;
			if ((rc = st_cand_add(c, rec.mod, rec.sub, kcopy, kl)) != 0)
				return rc;
			taken++;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (c->n >= 2 * c->want)
		*cutoff = st_cands_prune(c);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : st_map_lmdb(rc, "events key");
}

static int st_cands_by_key(st_store *st, MDB_txn *txn, const struct st_span *span,
	st_rev from_rev, uint32_t from_sub, struct st_cands *c)
{
	uint8_t buf[ST_HIST_KEY_BYTES_MAX], kbuf[ST_KEY_BYTES_MAX];
	st_rev cutoff = INT64_MAX;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->dbi_hist, &cur);
	if (rc != 0)
		return st_map_lmdb(rc, "cursor");
	MDB_val k = { st_hist_key(buf, span->key, span->key_len, 0, 0), buf }, v;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0) {
		size_t kl = k.mv_size - ST_HIST_SUFFIX_BYTES;
		if (k.mv_size <= ST_HIST_SUFFIX_BYTES) {
			rc = ST_ERR_CORRUPT;
			break;
		}
		if (!st_span_has(span, k.mv_data, kl))
			break;
		memcpy(kbuf, k.mv_data, kl);
		rc = st_cands_of_key(cur, c, kbuf, kl, from_rev, from_sub, &cutoff);
		if (rc != 0 || span->single)
			break;
		k.mv_size = st_hist_key(buf, kbuf, kl, -1, UINT32_MAX);
		k.mv_data = buf;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc == 0 && c->n > c->want)
		st_cands_prune(c);
	else if (rc == 0 && c->n > 1)
		qsort(c->v, c->n, sizeof(*c->v), st_cand_cmp);
	return rc > 0 ? st_map_lmdb(rc, "events") : rc;
}

static int st_cands_by_rev(st_store *st, MDB_txn *txn, st_rev from_rev,
	uint32_t from_sub, struct st_cands *c)
{
	uint8_t kb[12];
	MDB_cursor *cur;
	st_put_u64(kb, (uint64_t)from_rev);
	st_put_u32(kb + 8, from_sub);
	MDB_val k = { 12, kb }, v;
	int rc = mdb_cursor_open(txn, st->dbi_revs, &cur);
	if (rc != 0)
		return st_map_lmdb(rc, "cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && c->n < c->want) {
		if (k.mv_size != 12 || v.mv_size == 0 || v.mv_size > ST_KEY_BYTES_MAX) {
			rc = ST_ERR_CORRUPT;
			break;
		}
		uint8_t *key = st_mem_dup(&c->scratch, v.mv_data, v.mv_size);
		if (key == NULL) {
			rc = ST_ERR_NOMEM;
			break;
		}
		rc = st_cand_add(c, (st_rev)st_get_u64(k.mv_data),
			st_get_u32((uint8_t *)k.mv_data + 8), key, v.mv_size);
		if (rc == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	return rc > 0 ? st_map_lmdb(rc, "events rev") : rc;
}

/* Turns a candidate into an event (with prev_kv if asked). */
static int st_event_make(st_store *st, MDB_txn *txn, const struct st_cand *c,
	bool prev, struct st_mem **mem, struct st_event *ev, size_t *bytes)
{
	struct st_rec rec;
	int err = 0;
	int rc = st_hist_at(st, txn, c->key, c->key_len, c->rev, c->sub, &rec);
	if (rc != 0)
		return rc == ST_ERR_KEY_NOT_FOUND ? ST_ERR_CORRUPT : rc;
	memset(ev, 0, sizeof(*ev));
	ev->type = rec.type;
	st_kv_from_rec(mem, &rec, false, &ev->kv, &err);
	*bytes = rec.key_len + rec.value_len;
	/* etcd's watch: prev_kv is the key at rev - 1 (so two writes of one
	 * key in one revision share it), and a PUT that creates the key has
	 * none, even when the txn deleted a live key first. */
	bool creates = rec.type == ST_EVENT_PUT && rec.create == rec.mod;
	if (prev && c->rev > 1 && !creates) {
		rc = st_hist_latest(st, txn, c->key, c->key_len, c->rev - 1, &rec);
		if (rc == 0 && rec.type == ST_EVENT_PUT) {
			ev->has_prev_kv = true;
			st_kv_from_rec(mem, &rec, false, &ev->prev_kv, &err);
			*bytes += rec.key_len + rec.value_len;
		} else if (rc != 0 && rc != ST_ERR_KEY_NOT_FOUND) {
			return rc;
		}
	}
	return err;
}

/* Emits candidates within the limits without splitting a revision unless
 * the batch's first revision alone is over a limit. */
static int st_events_emit(st_store *st, MDB_txn *txn, const struct st_events_req *req,
	const struct st_cands *c, struct st_result *out, st_rev cur_rev)
{
	struct st_events_resp *r = &out->resp.u.events;
	size_t emax = req->events_max ? req->events_max : ST_EVENTS_MAX_DEFAULT;
	size_t bmax = req->bytes_max ? req->bytes_max : ST_EVENTS_BYTES_MAX_DEFAULT;
	size_t i = 0, bytes = 0, cap = 0;

	for (; i < c->n; i++) {
		struct st_event ev;
		size_t eb = 0;
		int rc = st_event_make(st, txn, &c->v[i], req->prev_kv, &out->mem, &ev, &eb);
		if (rc != 0)
			return rc;
		if (i > 0 && (i == emax || bytes + eb > bmax))
			break;
		if ((rc = st_mem_grow(&out->mem, (void **)&r->events, &cap, i + 1,
			sizeof(ev))) != 0)
			return rc;
		r->events[i] = ev;
		bytes += eb;
	}
	r->events_n = i;
	if (i == c->n) {
		r->next_rev = cur_rev + 1;
		return 0;
	}
	r->more = true;
	r->next_rev = c->v[i].rev;
	r->next_sub = c->v[i].sub;
	if (c->v[i - 1].rev == c->v[i].rev) {
		size_t j = i - 1;
		while (j > 0 && c->v[j - 1].rev == c->v[i].rev)
			j--;
		if (j > 0) {
			r->events_n = j;
			r->next_sub = c->v[j].sub;
		} else {
			r->split_revision = true;
		}
	}
	if (r->events_n == 0)
		r->events = NULL;
	return 0;
}

static int st_events_validate(const struct st_events_req *req, struct st_span *span)
{
	int rc = st_span_make(req->key, req->key_len, req->range_end,
		req->range_end_len, span);
	if (rc != 0)
		return rc;
	if (req->from_rev < 0 || req->events_max > ST_EVENTS_MAX_LIMIT)
		return ST_ERR_INVALID;
	return 0;
}

static int st_events_op(st_store *st, MDB_txn *txn, const struct st_meta *meta,
	const void *arg, struct st_result *out)
{
	const struct st_events_req *req = arg;
	struct st_span span_v, *span = &span_v;
	int rc;
	out->compact_revision = meta->compact;
	if ((rc = st_events_validate(req, span)) != 0)
		return rc;
	st_rev from = req->from_rev ? req->from_rev : meta->compact + 1;
	if (from <= meta->compact)
		return ST_ERR_COMPACTED;
	if (from > meta->rev + 1)
		return ST_ERR_FUTURE_REV;
	struct st_cands c = { .want = (req->events_max ? req->events_max
		: ST_EVENTS_MAX_DEFAULT) + 1 };
	bool all = span->end == NULL && !span->single && span->key_len == 1 &&
		span->key[0] == 0;
	if (all)
		rc = st_cands_by_rev(st, txn, from, req->from_sub, &c);
	else if (span->end != NULL &&
		 st_bytes_cmp(span->end, span->end_len, span->key, span->key_len) <= 0)
		rc = 0; /* empty range, as in etcd */
	else
		rc = st_cands_by_key(st, txn, span, from, req->from_sub, &c);
	if (rc == 0)
		rc = st_events_emit(st, txn, req, &c, out, meta->rev);
	st_mem_free_all(&c.scratch);
	return rc;
}

int st_events(st_store *st, const struct st_events_req *req,
	struct st_result *out)
{
	return st_read_run(st, st_events_op, req, ST_RESP_EVENTS, out);
}
