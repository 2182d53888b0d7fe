/*
 * st_internal.h - what the store's source files share and nobody else sees:
 * the store handle, the on-disk record layouts, the result arena and the
 * write context that carries one batch's LMDB transaction and metadata.
 *
 * On-disk layout (named LMDB databases, all integers big-endian):
 *   meta   "meta" -> struct st_meta as 9 x u64
 *   hist   userkey || rev(8) || sub(4) -> rec: type(1) sub(4) create(8)
 *                                version(8) lease(8) value...   (custom
 *                                comparator: user key first, then revision,
 *                                then sub)
 *   revs   rev(8) || sub(4)   -> userkey (the by-revision index)
 *   lease  lid(8)             -> ttl_s(8)
 *   lkeys  lid(8) || userkey  -> "" (keys attached to a lease)
 * `sub` is the position of a write within its revision (etcd's sub-revision):
 * one key may be written more than once in one revision (sibling nested txns
 * put and then delete it), and every write is its own history record. `lid`
 * is a lease id with its sign bit flipped, so that the ids (negative ones are
 * allowed, as in etcd) sort in numeric order. A key's current state is its
 * newest hist record; a DELETE record is a tombstone. Nothing physical (page
 * usage, map size) enters the state.
 */
#ifndef ST_INTERNAL_H
#define ST_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>

#include "store.h"

#define ST_FORMAT_VERSION 2u
#define ST_REC_HEADER_BYTES 29u
#define ST_HIST_KEY_BYTES_MAX (ST_KEY_BYTES_MAX + 12u)
/* Bytes a hist key adds to the user key: rev(8) || sub(4). */
#define ST_HIST_SUFFIX_BYTES 12u
/* Internal only: MDB_MAP_FULL seen; st_apply grows the map and retries. */
#define ST__ERR_MAP_FULL (-1000)

_Static_assert(ST_HIST_KEY_BYTES_MAX <= 511, "hist key must fit LMDB's key limit");
_Static_assert(8 + ST_KEY_BYTES_MAX <= 511, "lkeys key must fit LMDB's key limit");

struct st_meta {
	uint64_t format;
	st_rev rev;
	st_rev compact;
	st_index applied;
	uint64_t size;
	uint64_t lease_next;
	uint64_t keys;
	uint64_t leases;
	uint64_t flags;          /* ST_META_F_* */
};
/* A compaction has succeeded at least once (etcd's compactMainRev is then
 * `compact`; before it, it is -1, so compact(0) is still allowed). */
#define ST_META_F_COMPACTED 1u
#define ST_META_BYTES (9u * 8u)

struct st_store {
	MDB_env *env;
	MDB_dbi dbi_meta, dbi_hist, dbi_revs, dbi_lease, dbi_lkeys;
	char *dir;
	struct st_options opts;
	uint64_t map_bytes;
	/* Readers hold it shared while their read txn is open; growing the map
	 * takes it exclusively because mdb_env_set_mapsize requires that no
	 * transaction of this process is active. */
	pthread_rwlock_t resize_lock;
};

/* One history record as parsed from LMDB (pointers into LMDB memory: valid
 * until the next write in the txn or its end). */
struct st_rec {
	uint8_t type;            /* enum st_event_type */
	uint32_t sub;
	st_rev create;
	st_rev mod;              /* the record's revision */
	int64_t version;
	st_lease_id lease;
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value;
	size_t value_len;
};

/* Byte range bounds resolved from etcd's key/range_end rules. */
struct st_span {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *end;      /* NULL: no upper bound (range_end "\0") */
	size_t end_len;
	bool single;             /* only `key` */
};

/* The context of one op being applied. */
struct st_wctx {
	st_store *st;
	MDB_txn *txn;
	struct st_meta *meta;
	st_rev rev;              /* revision this op's writes get (meta->rev + 1) */
	uint32_t sub;            /* events written at rev so far */
	struct st_mem **mem;     /* the result's arena */
	bool in_txn;             /* inside a txn: quota was checked by the txn */
};

/* ---- mem.c ---- */
void *st_mem_alloc(struct st_mem **mem, size_t n);
void *st_mem_dup(struct st_mem **mem, const void *p, size_t n);
void st_mem_free_all(struct st_mem **mem);
/* Grows an arena array to hold at least `want` elements (amortised). */
int st_mem_grow(struct st_mem **mem, void **arr, size_t *cap, size_t want,
	size_t elem_bytes);
void st_result_set_err(struct st_result *res, int err);

/* ---- enc (store.c) ---- */
void st_put_u64(uint8_t *p, uint64_t v);
uint64_t st_get_u64(const uint8_t *p);
void st_put_u32(uint8_t *p, uint32_t v);
uint32_t st_get_u32(const uint8_t *p);
int st_map_lmdb(int rc, const char *what);
int st_meta_read(st_store *st, MDB_txn *txn, struct st_meta *meta);
int st_meta_write(st_store *st, MDB_txn *txn, const struct st_meta *meta);
int st_read_begin(st_store *st, MDB_txn **txn);
void st_read_end(st_store *st, MDB_txn *txn);
int st_bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);
/* Lease ids as LMDB key bytes (sign bit flipped: numeric order). */
void st_put_lease(uint8_t *p, st_lease_id id);
st_lease_id st_get_lease(const uint8_t *p);

/* ---- read.c ---- */
int st_span_make(const uint8_t *key, size_t key_len, const uint8_t *end,
	size_t end_len, struct st_span *span);
bool st_span_has(const struct st_span *span, const uint8_t *k, size_t kl);
size_t st_hist_key(uint8_t *buf, const uint8_t *key, size_t key_len, st_rev rev,
	uint32_t sub);
int st_rec_parse(const MDB_val *k, const MDB_val *v, struct st_rec *rec);
/* Newest record of key with revision <= rev (PUT or DELETE; the last write
 * of that revision); ST_ERR_KEY_NOT_FOUND if none. */
int st_hist_latest(st_store *st, MDB_txn *txn, const uint8_t *key,
	size_t key_len, st_rev rev, struct st_rec *rec);
/* Newest record of key strictly before position (rev, sub). */
int st_hist_before(st_store *st, MDB_txn *txn, const uint8_t *key,
	size_t key_len, st_rev rev, uint32_t sub, struct st_rec *rec);
/* The record of key at exactly (rev, sub); ST_ERR_KEY_NOT_FOUND if none. */
int st_hist_at(st_store *st, MDB_txn *txn, const uint8_t *key, size_t key_len,
	st_rev rev, uint32_t sub, struct st_rec *rec);
/* etcd's compactMainRev: -1 until the first compaction. */
st_rev st_meta_first_rev(const struct st_meta *meta);
typedef int st_walk_fn(void *ctx, const struct st_rec *rec);
/* Calls fn for each key in span alive at rev, in key order; fn returns 0 to
 * continue, 1 to stop, < 0 for an error. */
int st_walk(st_store *st, MDB_txn *txn, const struct st_span *span, st_rev rev,
	st_walk_fn *fn, void *ctx);
void st_kv_from_rec(struct st_mem **mem, const struct st_rec *rec,
	bool keys_only, struct st_kv *kv, int *err);
int st_range_validate(const struct st_range *req);
/* One public read op, run by st_read_run on its read txn after the header
 * revision is set; fills out->resp.u and allocates in out->mem. */
typedef int st_read_op_fn(st_store *st, MDB_txn *txn, const struct st_meta *meta,
	const void *arg, struct st_result *out);
/* The frame every public read shares: read txn, meta, out->revision, then
 * fn; on error the arena is freed and resp zeroed, on success resp.type is
 * set; the error is recorded with st_result_set_err and returned. */
int st_read_run(st_store *st, st_read_op_fn *fn, const void *arg,
	enum st_resp_type type, struct st_result *out);
int st_range_in_txn(st_store *st, MDB_txn *txn, const struct st_meta *meta,
	const struct st_range *req, struct st_mem **mem, struct st_range_resp *out);
int st_key_validate(const uint8_t *key, size_t key_len);
int st_range_end_validate(const uint8_t *end, size_t end_len);
int st_lease_exists(st_store *st, MDB_txn *txn, st_lease_id id);

/* ---- apply.c / txn.c ---- */
int st_op_validate(st_store *st, const struct st_op *op, unsigned depth);
int st_exec_op(struct st_wctx *w, const struct st_op *op, struct st_op_resp *resp);
int st_op_put(struct st_wctx *w, const struct st_put *req, struct st_put_resp *resp);
int st_op_delete(struct st_wctx *w, const struct st_delete_range *req,
	struct st_delete_range_resp *resp);
int st_op_txn(struct st_wctx *w, const struct st_txn *req, struct st_txn_resp *resp);
int st_txn_validate(st_store *st, const struct st_txn *txn, unsigned depth);
uint64_t st_op_put_cost(const struct st_op *op);
int st_compact_run(struct st_wctx *w, st_rev rev);
bool st_err_is_fatal(int err);

/* ---- queue.c ---- */
/* Row of st_op_classes for ST_OP_QUEUE; runs in a nested LMDB txn (an op
 * may fail after its first write, e.g. NOSPACE on a later put). */
int st_queue_validate(st_store *st, const struct st_op *op, unsigned depth);
int st_queue_exec(struct st_wctx *w, const struct st_op *op, struct st_op_resp *r);

#endif /* ST_INTERNAL_H */
