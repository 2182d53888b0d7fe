/*
 * read.c - reading the MVCC state: keys alive at a revision (range, with
 * etcd 3.4's sort/filter/limit rules), lease lookups, and the helpers the
 * write path shares (span rules, history keys and records, validation).
 * Everything here works on any LMDB txn: the public read functions run on a
 * read txn, ops inside st_apply on the batch's write txn (so a range in a
 * txn sees the txn's earlier writes).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "st_internal.h"

int st_key_validate(const uint8_t *key, size_t key_len)
{
	if (key_len == 0)
		return ST_ERR_EMPTY_KEY;
	if (key == NULL)
		return ST_ERR_INVALID;
	if (key_len > ST_KEY_BYTES_MAX)
		return ST_ERR_KEY_TOO_LONG;
	return 0;
}

int st_range_end_validate(const uint8_t *end, size_t end_len)
{
	if (end_len > 0 && end == NULL)
		return ST_ERR_INVALID;
	if (end_len > ST_KEY_BYTES_MAX)
		return ST_ERR_KEY_TOO_LONG;
	return 0;
}

int st_span_make(const uint8_t *key, size_t key_len, const uint8_t *end,
	size_t end_len, struct st_span *span)
{
	int rc = st_key_validate(key, key_len);
	if (rc == 0)
		rc = st_range_end_validate(end, end_len);
	if (rc != 0)
		return rc;
	*span = (struct st_span){ .key = key, .key_len = key_len };
	if (end_len == 0) {
		span->single = true;
	} else if (!(end_len == 1 && end[0] == 0)) {
		span->end = end;
		span->end_len = end_len;
	}
	return 0;
}

bool st_span_has(const struct st_span *span, const uint8_t *k, size_t kl)
{
	int c = st_bytes_cmp(k, kl, span->key, span->key_len);
	if (span->single)
		return c == 0;
	if (c < 0)
		return false;
	return span->end == NULL || st_bytes_cmp(k, kl, span->end, span->end_len) < 0;
}

size_t st_hist_key(uint8_t *buf, const uint8_t *key, size_t key_len, st_rev rev,
	uint32_t sub)
{
	assert(key_len <= ST_KEY_BYTES_MAX);
	memcpy(buf, key, key_len);
	st_put_u64(buf + key_len, (uint64_t)rev);
	st_put_u32(buf + key_len + 8, sub);
	return key_len + ST_HIST_SUFFIX_BYTES;
}

st_rev st_meta_first_rev(const struct st_meta *meta)
{
	return (meta->flags & ST_META_F_COMPACTED) ? meta->compact : -1;
}

int st_rec_parse(const MDB_val *k, const MDB_val *v, struct st_rec *rec)
{
	const uint8_t *p = v->mv_data;
	if (k->mv_size <= ST_HIST_SUFFIX_BYTES || v->mv_size < ST_REC_HEADER_BYTES ||
	    p[0] > 1)
		return ST_ERR_CORRUPT;
	rec->key = k->mv_data;
	rec->key_len = k->mv_size - ST_HIST_SUFFIX_BYTES;
	rec->mod = (st_rev)st_get_u64(rec->key + rec->key_len);
	rec->type = p[0];
	rec->sub = st_get_u32(rec->key + rec->key_len + 8);
	if (st_get_u32(p + 1) != rec->sub)
		return ST_ERR_CORRUPT;
	rec->create = (st_rev)st_get_u64(p + 5);
	rec->version = (int64_t)st_get_u64(p + 13);
	rec->lease = (st_lease_id)st_get_u64(p + 21);
	rec->value = p + ST_REC_HEADER_BYTES;
	rec->value_len = v->mv_size - ST_REC_HEADER_BYTES;
	return 0;
}

/* Positions cur on the newest record of key before position (rev, sub). */
static int st_hist_seek_before(MDB_cursor *cur, const uint8_t *key,
	size_t key_len, st_rev rev, uint32_t sub, struct st_rec *rec)
{
	uint8_t buf[ST_HIST_KEY_BYTES_MAX];
	MDB_val k = { st_hist_key(buf, key, key_len, rev, sub), buf }, v;
	int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	else if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	if (rc == MDB_NOTFOUND)
		return ST_ERR_KEY_NOT_FOUND;
	if (rc != 0)
		return st_map_lmdb(rc, "hist seek");
	if ((rc = st_rec_parse(&k, &v, rec)) != 0)
		return rc;
	if (st_bytes_cmp(rec->key, rec->key_len, key, key_len) != 0)
		return ST_ERR_KEY_NOT_FOUND;
	return 0;
}

/* Positions cur on the newest record of key with revision <= rev. */
static int st_hist_seek_latest(MDB_cursor *cur, const uint8_t *key,
	size_t key_len, st_rev rev, struct st_rec *rec)
{
	return st_hist_seek_before(cur, key, key_len, rev + 1, 0, rec);
}

int st_hist_before(st_store *st, MDB_txn *txn, const uint8_t *key,
	size_t key_len, st_rev rev, uint32_t sub, struct st_rec *rec)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->dbi_hist, &cur);
	if (rc != 0)
		return st_map_lmdb(rc, "cursor");
	rc = st_hist_seek_before(cur, key, key_len, rev, sub, rec);
	mdb_cursor_close(cur);
	return rc;
}

int st_hist_latest(st_store *st, MDB_txn *txn, const uint8_t *key,
	size_t key_len, st_rev rev, struct st_rec *rec)
{
	return st_hist_before(st, txn, key, key_len, rev + 1, 0, rec);
}

int st_hist_at(st_store *st, MDB_txn *txn, const uint8_t *key, size_t key_len,
	st_rev rev, uint32_t sub, struct st_rec *rec)
{
	uint8_t buf[ST_HIST_KEY_BYTES_MAX];
	MDB_val k = { st_hist_key(buf, key, key_len, rev, sub), buf }, v;
	int rc = mdb_get(txn, st->dbi_hist, &k, &v);
	if (rc == MDB_NOTFOUND)
		return ST_ERR_KEY_NOT_FOUND;
	if (rc != 0)
		return st_map_lmdb(rc, "hist get");
	if ((rc = st_rec_parse(&k, &v, rec)) != 0)
		return rc;
	/* mdb_get leaves k pointing at our stack buffer: point at the
	 * caller's copy of the same bytes instead. */
	rec->key = key;
	return 0;
}

/* Visits each distinct user key of the span with three seeks per key (first
 * record, newest <= rev, past the key's last record), so the cost follows
 * the number of keys, not the length of their history. */
static int st_walk_cur(st_store *st, MDB_cursor *cur, const struct st_span *span,
	st_rev rev, st_walk_fn *fn, void *ctx)
{
	uint8_t buf[ST_HIST_KEY_BYTES_MAX], kbuf[ST_KEY_BYTES_MAX];
	MDB_val k = { st_hist_key(buf, span->key, span->key_len, 0, 0), buf }, v;
	int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	(void)st;

	while (rc == 0) {
		struct st_rec rec;
		if (k.mv_size <= ST_HIST_SUFFIX_BYTES)
			return ST_ERR_CORRUPT;
		size_t kl = k.mv_size - ST_HIST_SUFFIX_BYTES;
		if (!st_span_has(span, k.mv_data, kl))
			return 0;
		memcpy(kbuf, k.mv_data, kl);
		rc = st_hist_seek_latest(cur, kbuf, kl, rev, &rec);
		if (rc == 0 && rec.type == ST_EVENT_PUT) {
			rc = fn(ctx, &rec);
			if (rc != 0)
				return rc > 0 ? 0 : rc;
		} else if (rc != 0 && rc != ST_ERR_KEY_NOT_FOUND) {
			return rc;
		}
		if (span->single)
			return 0;
		k.mv_size = st_hist_key(buf, kbuf, kl, -1, UINT32_MAX);
		k.mv_data = buf;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	return rc == MDB_NOTFOUND ? 0 : st_map_lmdb(rc, "walk");
}

int st_walk(st_store *st, MDB_txn *txn, const struct st_span *span, st_rev rev,
	st_walk_fn *fn, void *ctx)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->dbi_hist, &cur);
	if (rc != 0)
		return st_map_lmdb(rc, "cursor");
	if (span->end != NULL &&
	    st_bytes_cmp(span->end, span->end_len, span->key, span->key_len) <= 0)
		rc = 0; /* etcd: range_end <= key is an empty range */
	else
		rc = st_walk_cur(st, cur, span, rev, fn, ctx);
	mdb_cursor_close(cur);
	return rc;
}

void st_kv_from_rec(struct st_mem **mem, const struct st_rec *rec,
	bool keys_only, struct st_kv *kv, int *err)
{
	memset(kv, 0, sizeof(*kv));
	kv->key = st_mem_dup(mem, rec->key, rec->key_len);
	kv->key_len = rec->key_len;
	if (kv->key == NULL)
		*err = ST_ERR_NOMEM;
	if (rec->type == ST_EVENT_DELETE) {
		kv->mod_revision = rec->mod;
		return;
	}
	if (!keys_only && rec->value_len > 0) {
		kv->value = st_mem_dup(mem, rec->value, rec->value_len);
		kv->value_len = rec->value_len;
		if (kv->value == NULL)
			*err = ST_ERR_NOMEM;
	}
	kv->create_revision = rec->create;
	kv->mod_revision = rec->mod;
	kv->version = rec->version;
	kv->lease = rec->lease;
}

int st_range_validate(const struct st_range *req)
{
	struct st_span span;
	int rc = st_span_make(req->key, req->key_len, req->range_end,
		req->range_end_len, &span);
	if (rc != 0)
		return rc;
	/* Negative revision/limit/filters are accepted as etcd does (see
	 * st_range_in_txn). */
	if (req->sort_target > ST_SORT_VALUE || req->sort_order > ST_SORT_DESCEND)
		return ST_ERR_INVALID;
	return 0;
}

struct st_range_ctx {
	struct st_mem **mem;
	const struct st_range *req;
	struct st_kv *kvs;
	size_t n, cap;
	size_t fetch_max;        /* 0 = all */
	int64_t count;
	int err;
};

static int st_range_visit(void *vctx, const struct st_rec *rec)
{
	struct st_range_ctx *c = vctx;
	c->count++;
	if (c->req->count_only || (c->fetch_max && c->n >= c->fetch_max))
		return 0;
	int rc = st_mem_grow(c->mem, (void **)&c->kvs, &c->cap, c->n + 1,
		sizeof(struct st_kv));
	if (rc != 0)
		return rc;
	/* etcd sorts by value before blanking values for keys_only. */
	bool keys_only = c->req->keys_only && c->req->sort_target != ST_SORT_VALUE;
	st_kv_from_rec(c->mem, rec, keys_only, &c->kvs[c->n], &c->err);
	c->n++;
	return c->err;
}

static bool st_kv_pruned(const struct st_range *r, const struct st_kv *kv)
{
	return (r->max_mod_revision && kv->mod_revision > r->max_mod_revision) ||
		(r->min_mod_revision && kv->mod_revision < r->min_mod_revision) ||
		(r->min_create_revision && kv->create_revision < r->min_create_revision) ||
		(r->max_create_revision && kv->create_revision > r->max_create_revision);
}

static int st_kv_cmp_target(const struct st_kv *a, const struct st_kv *b,
	uint8_t target)
{
	int64_t x, y;
	switch (target) {
	case ST_SORT_VERSION: x = a->version; y = b->version; break;
	case ST_SORT_CREATE: x = a->create_revision; y = b->create_revision; break;
	case ST_SORT_MOD: x = a->mod_revision; y = b->mod_revision; break;
	case ST_SORT_VALUE:
		return st_bytes_cmp(a->value, a->value_len, b->value, b->value_len);
	default:
		return st_bytes_cmp(a->key, a->key_len, b->key, b->key_len);
	}
	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Stable insertion-merge sort would do; a bottom-up merge sort keeps ties in
 * key order (the order they were fetched in) on every member. */
static int st_kvs_sort(struct st_mem **mem, struct st_kv *kvs, size_t n,
	uint8_t target, bool descend)
{
	if (n < 2)
		return 0;
	struct st_kv *tmp = st_mem_alloc(mem, n * sizeof(*tmp));
	if (tmp == NULL)
		return ST_ERR_NOMEM;
	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n;
			size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, o = lo;
			while (i < mid && j < hi) {
				int c = st_kv_cmp_target(&kvs[j], &kvs[i], target);
				bool take_j = descend ? c > 0 : c < 0;
				tmp[o++] = take_j ? kvs[j++] : kvs[i++];
			}
			while (i < mid)
				tmp[o++] = kvs[i++];
			while (j < hi)
				tmp[o++] = kvs[j++];
		}
		memcpy(kvs, tmp, n * sizeof(*kvs));
	}
	return 0;
}

/* etcd 3.4 etcdserver/apply.go Range, step by step. */
int st_range_in_txn(st_store *st, MDB_txn *txn, const struct st_meta *meta,
	const struct st_range *req, struct st_mem **mem, struct st_range_resp *out)
{
	struct st_span span;
	int rc = st_span_make(req->key, req->key_len, req->range_end,
		req->range_end_len, &span);
	if (rc != 0)
		return rc;
	st_rev rev = req->revision > 0 ? req->revision : meta->rev;
	if (rev > meta->rev)
		return ST_ERR_FUTURE_REV;
	if (rev < meta->compact)
		return ST_ERR_COMPACTED;
	bool fetch_all = req->sort_order != ST_SORT_NONE || req->min_mod_revision ||
		req->max_mod_revision || req->min_create_revision ||
		req->max_create_revision;
	struct st_range_ctx c = { .mem = mem, .req = req };
	if (!fetch_all && req->limit > 0)
		c.fetch_max = (size_t)req->limit + 1;
	rc = st_walk(st, txn, &span, rev, st_range_visit, &c);
	if (rc != 0)
		return rc;
	size_t n = 0;
	for (size_t i = 0; i < c.n; i++)
		if (!st_kv_pruned(req, &c.kvs[i]))
			c.kvs[n++] = c.kvs[i];
	uint8_t order = req->sort_order;
	if (req->sort_target != ST_SORT_KEY && order == ST_SORT_NONE)
		order = ST_SORT_ASCEND;
	if (order != ST_SORT_NONE &&
	    (rc = st_kvs_sort(mem, c.kvs, n, req->sort_target,
		order == ST_SORT_DESCEND)) != 0)
		return rc;
	memset(out, 0, sizeof(*out));
	if (req->limit > 0 && n > (size_t)req->limit) {
		n = (size_t)req->limit;
		out->more = true;
	}
	if (req->keys_only)
		for (size_t i = 0; i < n; i++) {
			c.kvs[i].value = NULL;
			c.kvs[i].value_len = 0;
		}
	out->kvs = n ? c.kvs : NULL;
	out->kvs_n = n;
	out->count = c.count;
	return 0;
}

int st_read_run(st_store *st, st_read_op_fn *fn, const void *arg,
	enum st_resp_type type, struct st_result *out)
{
	MDB_txn *txn;
	struct st_meta meta;
	memset(out, 0, sizeof(*out));
	int rc = st_read_begin(st, &txn);
	if (rc == 0) {
		rc = st_meta_read(st, txn, &meta);
		if (rc == 0) {
			out->revision = meta.rev;
			rc = fn(st, txn, &meta, arg, out);
		}
		st_read_end(st, txn);
	}
	if (rc != 0) {
		st_mem_free_all(&out->mem);
		memset(&out->resp, 0, sizeof(out->resp));
	} else {
		out->resp.type = (uint8_t)type;
	}
	st_result_set_err(out, rc);
	return rc;
}

static int st_range_op(st_store *st, MDB_txn *txn, const struct st_meta *meta,
	const void *arg, struct st_result *out)
{
	const struct st_range *req = arg;
	/* Validation comes after reading the header so that an error reply
	 * still carries the revision, like every other reply. */
	out->compact_revision = meta->compact;
	int rc = st_range_validate(req);
	if (rc != 0)
		return rc;
	return st_range_in_txn(st, txn, meta, req, &out->mem, &out->resp.u.range);
}

int st_range(st_store *st, const struct st_range *req, struct st_result *out)
{
	return st_read_run(st, st_range_op, req, ST_RESP_RANGE, out);
}

/* The granted TTL of lease id, in seconds. */
static int st_lease_granted(st_store *st, MDB_txn *txn, st_lease_id id,
	int64_t *ttl_s)
{
	uint8_t kb[8];
	st_put_lease(kb, id);
	MDB_val k = { 8, kb }, v;
	int rc = mdb_get(txn, st->dbi_lease, &k, &v);
	if (rc == MDB_NOTFOUND)
		return ST_ERR_LEASE_NOT_FOUND;
	if (rc != 0)
		return st_map_lmdb(rc, "lease get");
	if (v.mv_size != 8)
		return ST_ERR_CORRUPT;
	*ttl_s = (int64_t)st_get_u64(v.mv_data);
	return 0;
}

int st_lease_exists(st_store *st, MDB_txn *txn, st_lease_id id)
{
	int64_t ttl_s;
	return st_lease_granted(st, txn, id, &ttl_s);
}

static int st_lease_list_txn(st_store *st, MDB_txn *txn, struct st_result *out)
{
	struct st_lease_list_resp *r = &out->resp.u.lease_list;
	size_t cap = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, st->dbi_lease, &cur);
	if (rc != 0)
		return st_map_lmdb(rc, "cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		if (k.mv_size != 8 || v.mv_size != 8) {
			rc = ST_ERR_CORRUPT;
			break;
		}
		if ((rc = st_mem_grow(&out->mem, (void **)&r->leases, &cap,
			r->leases_n + 1, sizeof(*r->leases))) != 0)
			break;
		r->leases[r->leases_n++] = (struct st_lease_info){
			st_get_lease(k.mv_data),
			(int64_t)st_get_u64(v.mv_data) };
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : (rc > 0 ? st_map_lmdb(rc, "lease list") : rc);
}

static int st_lease_list_op(st_store *st, MDB_txn *txn,
	const struct st_meta *meta, const void *arg, struct st_result *out)
{
	(void)meta;
	(void)arg;
	return st_lease_list_txn(st, txn, out);
}

int st_lease_list(st_store *st, struct st_result *out)
{
	return st_read_run(st, st_lease_list_op, NULL, ST_RESP_LEASE_LIST, out);
}

static int st_lease_keys(st_store *st, MDB_txn *txn, st_lease_id id,
	struct st_result *out)
{
	struct st_lease_ttl_resp *r = &out->resp.u.lease_ttl;
	uint8_t kb[8];
	size_t cap = 0;
	MDB_cursor *cur;
	st_put_lease(kb, id);
	MDB_val k = { 8, kb }, v;
	int rc = mdb_cursor_open(txn, st->dbi_lkeys, &cur);
	if (rc != 0)
		return st_map_lmdb(rc, "cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size > 8 && memcmp(k.mv_data, kb, 8) == 0 &&
	       r->keys_n < ST_LEASE_KEYS_MAX) {
		if ((rc = st_mem_grow(&out->mem, (void **)&r->keys, &cap,
			r->keys_n + 1, sizeof(*r->keys))) != 0)
			break;
		struct st_kv *kv = &r->keys[r->keys_n++];
		memset(kv, 0, sizeof(*kv));
		kv->key_len = k.mv_size - 8;
		kv->key = st_mem_dup(&out->mem, (uint8_t *)k.mv_data + 8, kv->key_len);
		if (kv->key == NULL) {
			rc = ST_ERR_NOMEM;
			break;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : (rc > 0 ? st_map_lmdb(rc, "lease keys") : rc);
}

struct st_lease_ttl_arg {
	st_lease_id id;
	bool with_keys;
};

static int st_lease_ttl_op(st_store *st, MDB_txn *txn,
	const struct st_meta *meta, const void *arg, struct st_result *out)
{
	const struct st_lease_ttl_arg *a = arg;
	struct st_lease_ttl_resp *r = &out->resp.u.lease_ttl;
	(void)meta;
	int rc = st_lease_granted(st, txn, a->id, &r->granted_ttl_s);
	if (rc != 0)
		return rc;
	r->id = a->id;
	return a->with_keys ? st_lease_keys(st, txn, a->id, out) : 0;
}

int st_lease_ttl(st_store *st, st_lease_id id, bool with_keys,
	struct st_result *out)
{
	const struct st_lease_ttl_arg a = { id, with_keys };
	return st_read_run(st, st_lease_ttl_op, &a, ST_RESP_LEASE_TTL, out);
}
