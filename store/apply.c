/*
 * apply.c - st_apply(): committed Raft entries applied in one LMDB write
 * transaction together with the applied index, and the write ops (put,
 * delete_range, compact, lease grant/revoke). Each op runs in a nested LMDB
 * txn so that an op that fails leaves no trace while the batch still
 * commits. Op types are dispatched through st_op_classes[]: a new op type
 * (queue, lock, election) is one more row there and one more codec case.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_internal.h"

bool st_err_is_fatal(int err)
{
	return err == ST_ERR_IO || err == ST_ERR_DISK_FULL || err == ST_ERR_NOMEM ||
		err == ST_ERR_CORRUPT || err == ST__ERR_MAP_FULL;
}

static int st_lkey_set(struct st_wctx *w, st_lease_id lease, const uint8_t *key,
	size_t kl, bool attach)
{
	uint8_t buf[8 + ST_KEY_BYTES_MAX];
	st_put_lease(buf, lease);
	memcpy(buf + 8, key, kl);
	MDB_val k = { 8 + kl, buf }, v = { 0, NULL };
	int rc = attach ? mdb_put(w->txn, w->st->dbi_lkeys, &k, &v, 0)
		: mdb_del(w->txn, w->st->dbi_lkeys, &k, NULL);
	if (rc == MDB_NOTFOUND)
		return ST_ERR_CORRUPT;
	return st_map_lmdb(rc, "lease keys");
}

/* Writes one history record at w->rev and its by-revision index entry. */
static int st_hist_write(struct st_wctx *w, uint8_t type, const uint8_t *key,
	size_t kl, st_rev create, int64_t version, st_lease_id lease,
	const uint8_t *value, size_t vl)
{
	uint8_t hk[ST_HIST_KEY_BYTES_MAX], rk[12];
	MDB_val k = { st_hist_key(hk, key, kl, w->rev, w->sub), hk };
	MDB_val v = { ST_REC_HEADER_BYTES + vl, NULL };
	int rc = mdb_put(w->txn, w->st->dbi_hist, &k, &v,
		MDB_RESERVE | MDB_NOOVERWRITE);
	if (rc != 0)
		return rc == MDB_KEYEXIST ? ST_ERR_CORRUPT : st_map_lmdb(rc, "hist put");
	uint8_t *p = v.mv_data;
	p[0] = type;
	st_put_u32(p + 1, w->sub);
	st_put_u64(p + 5, (uint64_t)create);
	st_put_u64(p + 13, (uint64_t)version);
	st_put_u64(p + 21, (uint64_t)lease);
	if (vl)
		memcpy(p + ST_REC_HEADER_BYTES, value, vl);
	st_put_u64(rk, (uint64_t)w->rev);
	st_put_u32(rk + 8, w->sub);
	MDB_val rkv = { 12, rk }, rvv = { kl, (void *)key };
	rc = mdb_put(w->txn, w->st->dbi_revs, &rkv, &rvv, MDB_NOOVERWRITE);
	if (rc != 0)
		return rc == MDB_KEYEXIST ? ST_ERR_CORRUPT : st_map_lmdb(rc, "revs put");
	w->meta->size += kl + vl + ST_RECORD_BYTES_OVERHEAD;
	w->sub++;
	return 0;
}

static int st_put_write(struct st_wctx *w, const struct st_put *req,
	const struct st_rec *prev, bool exists, st_lease_id lease,
	const uint8_t *value, size_t vl)
{
	st_lease_id old = exists ? prev->lease : 0;
	int rc = st_hist_write(w, ST_EVENT_PUT, req->key, req->key_len,
		exists ? prev->create : w->rev, exists ? prev->version + 1 : 1,
		lease, value, vl);
	if (rc != 0)
		return rc;
	if (!exists)
		w->meta->keys++;
	if (old != lease && old != 0 &&
	    (rc = st_lkey_set(w, old, req->key, req->key_len, false)) != 0)
		return rc;
	if (old != lease && lease != 0)
		rc = st_lkey_set(w, lease, req->key, req->key_len, true);
	return rc;
}

/* An append_rev put (pub/sub) writes key + the revision being applied as
 * ST_APPEND_REV_DIGITS zero-padded digits, so that messages of a topic sort
 * by revision. Validation bounded key_len; buf holds ST_KEY_BYTES_MAX + 1. */
static const struct st_put *st_put_resolve(const struct st_wctx *w,
	const struct st_put *req, uint8_t *buf, struct st_put *out)
{
	assert(req->key_len + ST_APPEND_REV_DIGITS <= ST_KEY_BYTES_MAX);
	assert(w->rev >= 0);
	memcpy(buf, req->key, req->key_len);
	snprintf((char *)buf + req->key_len, ST_APPEND_REV_DIGITS + 1, "%020lld",
		(long long)w->rev);
	*out = *req;
	out->key = buf;
	out->key_len = req->key_len + ST_APPEND_REV_DIGITS;
	out->append_rev = false;
	return out;
}

int st_op_put(struct st_wctx *w, const struct st_put *req, struct st_put_resp *resp)
{
	struct st_rec prev;
	int err = 0;
	uint8_t append_key[ST_KEY_BYTES_MAX + 1];
	struct st_put resolved;
	if (req->append_rev)
		req = st_put_resolve(w, req, append_key, &resolved);
	uint64_t cost = req->key_len + req->value_len + ST_RECORD_BYTES_OVERHEAD;
	if (!w->in_txn && w->meta->size + cost > w->st->opts.quota_bytes)
		return ST_ERR_NOSPACE;
	int rc = st_hist_latest(w->st, w->txn, req->key, req->key_len, w->rev, &prev);
	if (rc != 0 && rc != ST_ERR_KEY_NOT_FOUND)
		return rc;
	bool exists = rc == 0 && prev.type == ST_EVENT_PUT;
	/* etcd 3.4 checks a put's lease before the key ignore_* needs (a txn
	 * checked both against the state before it, key first, in
	 * st_op_txn; a key missing here was deleted earlier in the txn). */
	if (!req->ignore_lease && req->lease != 0 &&
	    (rc = st_lease_exists(w->st, w->txn, req->lease)) != 0)
		return rc;
	if ((req->ignore_value || req->ignore_lease) && !exists)
		return ST_ERR_KEY_NOT_FOUND;
	st_lease_id lease = req->ignore_lease ? prev.lease : req->lease;
	memset(resp, 0, sizeof(*resp));
	if (req->prev_kv && exists) {
		resp->has_prev_kv = true;
		st_kv_from_rec(w->mem, &prev, false, &resp->prev_kv, &err);
		if (err != 0)
			return err;
	}
	/* prev points into LMDB pages that the write below may move. */
	uint8_t *old_value = NULL;
	if (req->ignore_value && prev.value_len > 0) {
		old_value = malloc(prev.value_len);
		if (old_value == NULL)
			return ST_ERR_NOMEM;
		memcpy(old_value, prev.value, prev.value_len);
	}
	rc = st_put_write(w, req, &prev, exists, lease,
		req->ignore_value ? old_value : req->value,
		req->ignore_value ? prev.value_len : req->value_len);
	free(old_value);
	return rc;
}

/* Writes a DELETE tombstone for a live key and detaches it from its lease. */
static int st_key_tombstone(struct st_wctx *w, const uint8_t *key, size_t kl,
	st_lease_id lease)
{
	int rc = st_hist_write(w, ST_EVENT_DELETE, key, kl, 0, 0, 0, NULL, 0);
	if (rc != 0)
		return rc;
	assert(w->meta->keys > 0);
	w->meta->keys--;
	return lease != 0 ? st_lkey_set(w, lease, key, kl, false) : 0;
}

struct st_del_ctx {
	struct st_mem **scratch, **mem;
	bool prev_kv;
	struct st_kv *keys;      /* key + lease, in scratch */
	size_t n, cap;
	struct st_kv *prev;      /* in the result */
	size_t prev_cap;
	int err;
};

static int st_del_visit(void *vctx, const struct st_rec *rec)
{
	struct st_del_ctx *c = vctx;
	int rc = st_mem_grow(c->scratch, (void **)&c->keys, &c->cap, c->n + 1,
		sizeof(*c->keys));
	if (rc == 0 && c->prev_kv)
		rc = st_mem_grow(c->mem, (void **)&c->prev, &c->prev_cap, c->n + 1,
			sizeof(*c->prev));
	if (rc != 0)
		return rc;
	st_kv_from_rec(c->scratch, rec, true, &c->keys[c->n], &c->err);
	if (c->prev_kv)
		st_kv_from_rec(c->mem, rec, false, &c->prev[c->n], &c->err);
	c->n++;
	return c->err;
}

int st_op_delete(struct st_wctx *w, const struct st_delete_range *req,
	struct st_delete_range_resp *resp)
{
	struct st_span span;
	struct st_mem *scratch = NULL;
	struct st_del_ctx c = { .scratch = &scratch, .mem = w->mem,
		.prev_kv = req->prev_kv };
	int rc = st_span_make(req->key, req->key_len, req->range_end,
		req->range_end_len, &span);
	if (rc == 0)
		rc = st_walk(w->st, w->txn, &span, w->rev, st_del_visit, &c);
	for (size_t i = 0; rc == 0 && i < c.n; i++)
		rc = st_key_tombstone(w, c.keys[i].key, c.keys[i].key_len,
			c.keys[i].lease);
	st_mem_free_all(&scratch);
	if (rc != 0)
		return rc;
	memset(resp, 0, sizeof(*resp));
	resp->deleted = (int64_t)c.n;
	if (req->prev_kv && c.n > 0) {
		resp->prev_kvs = c.prev;
		resp->prev_kvs_n = c.n;
	}
	return 0;
}

static int st_hist_drop(struct st_wctx *w, const struct st_rec *rec)
{
	uint8_t hk[ST_HIST_KEY_BYTES_MAX], rk[12];
	uint64_t cost = rec->key_len + rec->value_len + ST_RECORD_BYTES_OVERHEAD;
	st_put_u64(rk, (uint64_t)rec->mod);
	st_put_u32(rk + 8, rec->sub);
	MDB_val r = { 12, rk }, k = { st_hist_key(hk, rec->key, rec->key_len,
		rec->mod, rec->sub), hk };
	int rc = mdb_del(w->txn, w->st->dbi_revs, &r, NULL);
	if (rc == 0)
		rc = mdb_del(w->txn, w->st->dbi_hist, &k, NULL);
	if (rc != 0)
		return rc == MDB_NOTFOUND ? ST_ERR_CORRUPT : st_map_lmdb(rc, "compact del");
	assert(w->meta->size >= cost);
	w->meta->size -= cost;
	return 0;
}

/* Compaction of one record (key, rev, sub) with old < rev <= to: drop the
 * key's record kept by the previous compaction (now superseded), drop this
 * one if a newer one <= to exists (also a later write of the same
 * revision) or it is a tombstone. */
static int st_compact_rec(struct st_wctx *w, const uint8_t *key, size_t kl,
	st_rev rev, uint32_t sub, st_rev old, st_rev to)
{
	struct st_rec rec;
	int rc = st_hist_before(w->st, w->txn, key, kl, rev, sub, &rec);
	if (rc == 0 && rec.mod <= old)
		rc = st_hist_drop(w, &rec);
	if (rc != 0 && rc != ST_ERR_KEY_NOT_FOUND)
		return rc;
	rc = st_hist_latest(w->st, w->txn, key, kl, to, &rec);
	if (rc != 0)
		return rc == ST_ERR_KEY_NOT_FOUND ? ST_ERR_CORRUPT : rc;
	bool superseded = rec.mod != rev || rec.sub != sub;
	if (superseded || rec.type == ST_EVENT_DELETE) {
		if (superseded &&
		    (rc = st_hist_at(w->st, w->txn, key, kl, rev, sub, &rec)) != 0)
			return rc == ST_ERR_KEY_NOT_FOUND ? ST_ERR_CORRUPT : rc;
		assert(rec.mod == rev && rec.sub == sub);
		return st_hist_drop(w, &rec);
	}
	return 0;
}

int st_compact_run(struct st_wctx *w, st_rev to)
{
	uint8_t rk[12], kbuf[ST_KEY_BYTES_MAX];
	st_rev old = w->meta->compact;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(w->txn, w->st->dbi_revs, &cur);
	if (rc != 0)
		return st_map_lmdb(rc, "cursor");
	st_put_u64(rk, (uint64_t)old + 1);
	st_put_u32(rk + 8, 0);
	for (;;) {
		MDB_val k = { 12, rk }, v;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0)
			break;
		if (k.mv_size != 12 || v.mv_size == 0 || v.mv_size > ST_KEY_BYTES_MAX) {
			rc = ST_ERR_CORRUPT;
			break;
		}
		st_rev rev = (st_rev)st_get_u64(k.mv_data);
		uint32_t sub = st_get_u32((uint8_t *)k.mv_data + 8);
		if (rev > to)
			break;
		size_t kl = v.mv_size;
		memcpy(kbuf, v.mv_data, kl);
		if ((rc = st_compact_rec(w, kbuf, kl, rev, sub, old, to)) != 0)
			break;
		/* Deletes may have moved the cursor: seek past (rev, sub). */
		st_put_u64(rk, (uint64_t)rev);
		st_put_u32(rk + 8, sub + 1);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc == 0) {
		w->meta->compact = to;
		w->meta->flags |= ST_META_F_COMPACTED;
	}
	return rc > 0 ? st_map_lmdb(rc, "compact") : rc;
}

/* ---- the op table -------------------------------------------------------- */

static int st_v_none(st_store *st, const struct st_op *op, unsigned depth)
{
	(void)st, (void)op, (void)depth;
	return 0;
}

static int st_v_put(st_store *st, const struct st_op *op, unsigned depth)
{
	const struct st_put *p = &op->u.put;
	(void)depth;
	int rc = st_key_validate(p->key, p->key_len);
	if (rc != 0)
		return rc;
	if (p->append_rev && p->key_len + ST_APPEND_REV_DIGITS > ST_KEY_BYTES_MAX)
		return ST_ERR_KEY_TOO_LONG;
	if (p->append_rev && (p->ignore_value || p->ignore_lease))
		return ST_ERR_INVALID;
	if (p->value_len > st->opts.value_bytes_max)
		return ST_ERR_TOO_LARGE;
	if (p->value_len && p->value == NULL)
		return ST_ERR_INVALID;
	if (p->ignore_value && p->value_len)
		return ST_ERR_VALUE_PROVIDED;
	if (p->ignore_lease && p->lease)
		return ST_ERR_LEASE_PROVIDED;
	return 0;
}

static int st_v_range(st_store *st, const struct st_op *op, unsigned depth)
{
	(void)st, (void)depth;
	return st_range_validate(&op->u.range);
}

static int st_v_delete(st_store *st, const struct st_op *op, unsigned depth)
{
	struct st_span span;
	const struct st_delete_range *d = &op->u.delete_range;
	(void)st, (void)depth;
	return st_span_make(d->key, d->key_len, d->range_end, d->range_end_len, &span);
}

static int st_v_txn(st_store *st, const struct st_op *op, unsigned depth)
{
	return st_txn_validate(st, &op->u.txn, depth + 1);
}

static int st_v_grant(st_store *st, const struct st_op *op, unsigned depth)
{
	(void)st, (void)depth;
	return op->u.lease_grant.ttl_s > ST_LEASE_TTL_S_MAX ?
		ST_ERR_LEASE_TTL_TOO_LARGE : 0;
}

static int st_x_none(struct st_wctx *w, const struct st_op *op, struct st_op_resp *r)
{
	(void)w, (void)op, (void)r;
	return 0;
}

static int st_x_put(struct st_wctx *w, const struct st_op *op, struct st_op_resp *r)
{
	r->type = ST_RESP_PUT;
	return st_op_put(w, &op->u.put, &r->u.put);
}

static int st_x_range(struct st_wctx *w, const struct st_op *op, struct st_op_resp *r)
{
	/* Inside a txn a range sees the txn's earlier writes at w->rev. */
	struct st_meta view = *w->meta;
	if (w->sub > 0)
		view.rev = w->rev;
	r->type = ST_RESP_RANGE;
	return st_range_in_txn(w->st, w->txn, &view, &op->u.range, w->mem, &r->u.range);
}

static int st_x_delete(struct st_wctx *w, const struct st_op *op, struct st_op_resp *r)
{
	r->type = ST_RESP_DELETE_RANGE;
	return st_op_delete(w, &op->u.delete_range, &r->u.delete_range);
}

static int st_x_txn(struct st_wctx *w, const struct st_op *op, struct st_op_resp *r)
{
	r->type = ST_RESP_TXN;
	return st_op_txn(w, &op->u.txn, &r->u.txn);
}

static int st_x_compact(struct st_wctx *w, const struct st_op *op, struct st_op_resp *r)
{
	st_rev rev = op->u.compact.revision;
	r->type = ST_RESP_COMPACT;
	/* etcd: allowed down to compact(0) until the first compaction. */
	if (rev <= st_meta_first_rev(w->meta))
		return ST_ERR_COMPACTED;
	if (rev > w->meta->rev)
		return ST_ERR_FUTURE_REV;
	if (rev <= w->meta->compact) {
		/* compact(0) on a never-compacted store: nothing to drop */
		w->meta->flags |= ST_META_F_COMPACTED;
		return 0;
	}
	return st_compact_run(w, rev);
}

static int st_x_grant(struct st_wctx *w, const struct st_op *op, struct st_op_resp *r)
{
	struct st_lease_grant g = op->u.lease_grant;
	uint8_t kb[8], vb[8];
	if (w->meta->size + ST_LEASE_BYTES_OVERHEAD > w->st->opts.quota_bytes)
		return ST_ERR_NOSPACE;
	int rc;
	if (g.id == 0) {
		g.id = w->meta->lease_next > 0 ? (st_lease_id)w->meta->lease_next : 1;
		while ((rc = st_lease_exists(w->st, w->txn, g.id)) == 0)
			g.id = g.id == INT64_MAX ? 1 : g.id + 1;
		w->meta->lease_next = g.id == INT64_MAX ? 1 : (uint64_t)g.id + 1;
	} else {
		rc = st_lease_exists(w->st, w->txn, g.id);
		if (rc == 0)
			return ST_ERR_LEASE_EXISTS;
	}
	if (rc != ST_ERR_LEASE_NOT_FOUND)
		return rc;
	st_put_lease(kb, g.id);
	st_put_u64(vb, (uint64_t)g.ttl_s);
	MDB_val k = { 8, kb }, v = { 8, vb };
	if ((rc = mdb_put(w->txn, w->st->dbi_lease, &k, &v, 0)) != 0)
		return st_map_lmdb(rc, "lease put");
	w->meta->leases++;
	w->meta->size += ST_LEASE_BYTES_OVERHEAD;
	r->type = ST_RESP_LEASE_GRANT;
	r->u.lease_grant = (struct st_lease_grant_resp){ g.id, g.ttl_s };
	return 0;
}

/* Collects the lease's keys first: deleting while walking lkeys would move
 * the cursor under us. */
static int st_x_revoke(struct st_wctx *w, const struct st_op *op, struct st_op_resp *r)
{
	st_lease_id id = op->u.lease_revoke.id;
	struct st_result keys;
	int rc = st_lease_exists(w->st, w->txn, id);
	if (rc != 0)
		return rc;
	memset(&keys, 0, sizeof(keys));
	uint8_t kb[8];
	st_put_lease(kb, id);
	MDB_cursor *cur;
	if ((rc = mdb_cursor_open(w->txn, w->st->dbi_lkeys, &cur)) != 0)
		return st_map_lmdb(rc, "cursor");
	MDB_val k = { 8, kb }, v;
	struct st_kv *ks = NULL;
	size_t n = 0, cap = 0;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size > 8 && memcmp(k.mv_data, kb, 8) == 0) {
		if ((rc = st_mem_grow(&keys.mem, (void **)&ks, &cap, n + 1, sizeof(*ks))) != 0)
			break;
		ks[n].key_len = k.mv_size - 8;
		ks[n].key = st_mem_dup(&keys.mem, (uint8_t *)k.mv_data + 8, ks[n].key_len);
		if (ks[n++].key == NULL)
			rc = ST_ERR_NOMEM;
		else
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : (rc > 0 ? st_map_lmdb(rc, "revoke") : rc);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = st_key_tombstone(w, ks[i].key, ks[i].key_len, id);
	st_result_free(&keys);
	k = (MDB_val){ 8, kb };
	if (rc == 0 && (rc = st_map_lmdb(mdb_del(w->txn, w->st->dbi_lease, &k, NULL),
		"lease del")) == 0) {
		w->meta->leases--;
		w->meta->size -= ST_LEASE_BYTES_OVERHEAD;
		r->type = ST_RESP_LEASE_REVOKE;
	}
	return rc;
}

/* `nested`: the op may fail after it has written (a txn whose third put
 * names a missing lease), so it runs in a nested LMDB txn that is aborted
 * on error. The other ops check everything before their first write, so
 * they run directly in the batch txn: a nested txn costs LMDB a 2 MiB
 * dirty-list allocation, too much for every put. */
struct st_op_class {
	int (*validate)(st_store *st, const struct st_op *op, unsigned depth);
	int (*exec)(struct st_wctx *w, const struct st_op *op, struct st_op_resp *r);
	bool nested;
};

static const struct st_op_class st_op_classes[ST_OP_TYPE_COUNT] = {
	[ST_OP_NOOP] = { st_v_none, st_x_none, false },
	[ST_OP_PUT] = { st_v_put, st_x_put, false },
	[ST_OP_RANGE] = { st_v_range, st_x_range, false },
	[ST_OP_DELETE_RANGE] = { st_v_delete, st_x_delete, false },
	[ST_OP_TXN] = { st_v_txn, st_x_txn, true },
	[ST_OP_COMPACT] = { st_v_none, st_x_compact, false },
	[ST_OP_LEASE_GRANT] = { st_v_grant, st_x_grant, false },
	[ST_OP_LEASE_REVOKE] = { st_v_none, st_x_revoke, false },
	[ST_OP_QUEUE] = { st_queue_validate, st_queue_exec, true },
};

int st_op_validate(st_store *st, const struct st_op *op, unsigned depth)
{
	if (op->type >= ST_OP_TYPE_COUNT)
		return ST_ERR_UNKNOWN_OP;
	return st_op_classes[op->type].validate(st, op, depth);
}

int st_exec_op(struct st_wctx *w, const struct st_op *op, struct st_op_resp *resp)
{
	assert(op->type < ST_OP_TYPE_COUNT);
	memset(resp, 0, sizeof(*resp));
	return st_op_classes[op->type].exec(w, op, resp);
}

/* ---- the batch ----------------------------------------------------------- */

/* Runs one op in a nested txn; returns only fatal errors, the op's own error
 * goes to res. */
static int st_apply_one(st_store *st, MDB_txn *parent, struct st_meta *meta,
	const struct st_op *op, struct st_result *res)
{
	MDB_txn *child;
	struct st_meta saved = *meta;
	int rc = st_op_validate(st, op, 0);
	bool nested = rc == 0 && st_op_classes[op->type].nested;
	if (rc == 0) {
		child = parent;
		if (nested && (rc = mdb_txn_begin(st->env, parent, 0, &child)) != 0)
			return st_map_lmdb(rc, "child txn");
		struct st_wctx w = { st, child, meta, meta->rev + 1, 0, &res->mem, false };
		rc = st_exec_op(&w, op, &res->resp);
		/* Without a nested txn an op error must come before any write. */
		assert(nested || rc == 0 || st_err_is_fatal(rc) || w.sub == 0);
		if (rc == 0 && w.sub > 0)
			meta->rev = w.rev;
		if (nested && rc == 0)
			rc = st_map_lmdb(mdb_txn_commit(child), "child commit");
		else if (nested)
			mdb_txn_abort(child);
	}
	if (rc != 0) {
		*meta = saved;
		st_mem_free_all(&res->mem);
		memset(&res->resp, 0, sizeof(res->resp));
	}
	res->revision = meta->rev;
	res->compact_revision = meta->compact;
	st_result_set_err(res, rc);
	return st_err_is_fatal(rc) ? rc : 0;
}

static int st_apply_try(st_store *st, const struct st_entry *entries, size_t n,
	struct st_result *results)
{
	MDB_txn *txn;
	struct st_meta meta;
	bool any = false;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0)
		return st_map_lmdb(rc, "write txn");
	if ((rc = st_meta_read(st, txn, &meta)) != 0)
		goto out_abort_txn;
	for (size_t i = 0; i < n; i++) {
		struct st_result *res = &results[i];
		if (entries[i].index <= meta.applied) {
			res->revision = meta.rev;
			res->compact_revision = meta.compact;
			st_result_set_err(res, ST_ERR_ALREADY_APPLIED);
			continue;
		}
		if ((rc = st_apply_one(st, txn, &meta, &entries[i].op, res)) != 0)
			goto out_abort_txn;
		meta.applied = entries[i].index;
		res->applied = true;
		any = true;
	}
	if (!any) {
		mdb_txn_abort(txn);
		return ST_ERR_ALREADY_APPLIED;
	}
	if ((rc = st_meta_write(st, txn, &meta)) != 0)
		goto out_abort_txn;
	return st_map_lmdb(mdb_txn_commit(txn), "commit");
out_abort_txn:
	mdb_txn_abort(txn);
	return rc;
}

/* Doubles the map (up to map_bytes_max). Excludes readers: LMDB requires
 * that no transaction of this process is active. */
static int st_map_grow(st_store *st)
{
	if (st->map_bytes >= st->opts.map_bytes_max)
		return ST_ERR_DISK_FULL;
	uint64_t size = st->map_bytes * 2;
	if (size > st->opts.map_bytes_max)
		size = st->opts.map_bytes_max;
	pthread_rwlock_wrlock(&st->resize_lock);
	int rc = mdb_env_set_mapsize(st->env, size);
	if (rc == 0)
		st->map_bytes = size; /* st_status reads it under the lock */
	pthread_rwlock_unlock(&st->resize_lock);
	if (rc != 0)
		return st_map_lmdb(rc, "grow map") == ST__ERR_MAP_FULL ? ST_ERR_DISK_FULL
			: st_map_lmdb(rc, "grow map");
	return 0;
}

int st_snapshot_prepare(st_store *st)
{
	MDB_envinfo info;
	MDB_stat stat;
	if (mdb_env_info(st->env, &info) != 0 || mdb_env_stat(st->env, &stat))
		return ST_ERR_IO;
	uint64_t used = ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
	uint64_t want = used > ST_SNAPSHOT_FREE_ROOM_MIN_BYTES ? used :
	    ST_SNAPSHOT_FREE_ROOM_MIN_BYTES;
	while (st->map_bytes - used < want) {
		int rc = st_map_grow(st);   /* DISK_FULL at map_bytes_max */
		if (rc != 0)
			return rc;
	}
	return 0;
}

int st_apply(st_store *st, const struct st_entry *entries, size_t n,
	struct st_result *results)
{
	if (n == 0 || n > ST_APPLY_ENTRIES_MAX || entries == NULL || results == NULL)
		return ST_ERR_INVALID;
	for (size_t i = 0; i < n; i++)
		if (entries[i].index == 0 || (i > 0 && entries[i].index <= entries[i - 1].index))
			return ST_ERR_INVALID;
	for (;;) {
		for (size_t i = 0; i < n; i++)
			st_result_free(&results[i]);
		int rc = st_apply_try(st, entries, n, results);
		if (rc == ST__ERR_MAP_FULL) {
			rc = st_map_grow(st);
			if (rc == 0)
				continue;
		}
		if (rc != 0 && rc != ST_ERR_ALREADY_APPLIED)
			for (size_t i = 0; i < n; i++)
				st_result_free(&results[i]);
		return rc;
	}
}
