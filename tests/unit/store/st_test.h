/*
 * st_test.h - helpers shared by the store's Criterion tests: a store in a
 * fresh temp dir, one-op apply with an auto-incremented Raft index, and op
 * builders. Header-only (static inline) so each test file is one executable.
 */
#ifndef ST_TEST_H
#define ST_TEST_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

/* A byte string literal that may contain NUL: pointer and length. */
#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

struct tst {
	char dir[64];
	st_store *st;
	st_index idx;
	struct st_options opts;
};

static inline int tst_rm_one(const char *p, const struct stat *sb, int flag,
	struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

static inline void tst_rm_rf(const char *dir)
{
	nftw(dir, tst_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void tst_open_opts(struct tst *t, const struct st_options *o)
{
	memset(t, 0, sizeof(*t));
	strcpy(t->dir, "/tmp/st-test-XXXXXX");
	cr_assert_not_null(mkdtemp(t->dir));
	st_options_init(&t->opts);
	if (o)
		t->opts = *o;
	t->opts.no_sync = true;
	cr_assert_eq(st_open(t->dir, &t->opts, &t->st), 0);
}

static inline void tst_open(struct tst *t)
{
	tst_open_opts(t, NULL);
}

static inline void tst_close(struct tst *t)
{
	st_close(t->st);
	t->st = NULL;
	tst_rm_rf(t->dir);
}

/* Applies one op at the next index; returns the op's error (0 = ok). */
static inline int tst_apply(struct tst *t, const struct st_op *op,
	struct st_result *res)
{
	struct st_entry e = { .index = ++t->idx, .op = *op };
	memset(res, 0, sizeof(*res));
	int rc = st_apply(t->st, &e, 1, res);
	cr_assert_eq(rc, 0, "st_apply failed: %d %s", rc, st_strerror(rc));
	cr_assert(res->applied);
	return res->err;
}

/* Applies and frees; returns the op's error. */
static inline int tst_do(struct tst *t, const struct st_op *op)
{
	struct st_result res;
	int err = tst_apply(t, op, &res);
	st_result_free(&res);
	return err;
}

static inline st_rev tst_rev(struct tst *t)
{
	struct st_status s;
	cr_assert_eq(st_status(t->st, &s), 0);
	return s.revision;
}

static inline struct st_op op_put(const uint8_t *k, size_t kl, const uint8_t *v,
	size_t vl)
{
	struct st_op op = { .type = ST_OP_PUT };
	op.u.put.key = k;
	op.u.put.key_len = kl;
	op.u.put.value = v;
	op.u.put.value_len = vl;
	return op;
}

static inline struct st_op op_put_s(const char *k, const char *v)
{
	return op_put((const uint8_t *)k, strlen(k), (const uint8_t *)v, strlen(v));
}

static inline struct st_op op_del(const uint8_t *k, size_t kl, const uint8_t *e,
	size_t el)
{
	struct st_op op = { .type = ST_OP_DELETE_RANGE };
	op.u.delete_range = (struct st_delete_range){ k, kl, e, el, false };
	return op;
}

static inline struct st_op op_range(const uint8_t *k, size_t kl, const uint8_t *e,
	size_t el)
{
	struct st_op op = { .type = ST_OP_RANGE };
	op.u.range.key = k;
	op.u.range.key_len = kl;
	op.u.range.range_end = e;
	op.u.range.range_end_len = el;
	return op;
}

static inline struct st_op op_compact(st_rev rev)
{
	struct st_op op = { .type = ST_OP_COMPACT };
	op.u.compact.revision = rev;
	return op;
}

static inline struct st_op op_grant(st_lease_id id, int64_t ttl)
{
	struct st_op op = { .type = ST_OP_LEASE_GRANT };
	op.u.lease_grant = (struct st_lease_grant){ id, ttl };
	return op;
}

static inline struct st_op op_revoke(st_lease_id id)
{
	struct st_op op = { .type = ST_OP_LEASE_REVOKE };
	op.u.lease_revoke.id = id;
	return op;
}

/* A queue op on queue `queue` at time now_ms; the caller fills the rest. */
static inline struct st_op op_queue(uint8_t cmd, const char *queue,
	int64_t now_ms)
{
	struct st_op op = { .type = ST_OP_QUEUE };
	op.u.queue.cmd = cmd;
	op.u.queue.queue = (const uint8_t *)queue;
	op.u.queue.queue_len = strlen(queue);
	op.u.queue.now_ms = now_ms;
	return op;
}

static inline void tst_put(struct tst *t, const char *k, const char *v)
{
	struct st_op op = op_put_s(k, v);
	cr_assert_eq(tst_do(t, &op), 0, "put %s", k);
}

/* Reads with st_range (a read txn); asserts success. */
static inline void tst_range(struct tst *t, const struct st_range *req,
	struct st_result *res)
{
	int rc = st_range(t->st, req, res);
	cr_assert_eq(rc, 0, "range: %s", st_strerror(rc));
	cr_assert_eq(res->resp.type, ST_RESP_RANGE);
}

static inline bool kv_is(const struct st_kv *kv, const uint8_t *k, size_t kl)
{
	return kv->key_len == kl && memcmp(kv->key, k, kl) == 0;
}

static inline bool kv_is_s(const struct st_kv *kv, const char *k)
{
	return kv_is(kv, (const uint8_t *)k, strlen(k));
}

static inline bool val_is_s(const struct st_kv *kv, const char *v)
{
	return kv->value_len == strlen(v) && memcmp(kv->value, v, kv->value_len) == 0;
}

/* Gets one key at a revision (0 = current); returns false if absent. */
static inline bool tst_get(struct tst *t, const char *k, st_rev rev,
	struct st_kv *out, struct st_result *res)
{
	struct st_range req = { .key = (const uint8_t *)k, .key_len = strlen(k),
		.revision = rev };
	tst_range(t, &req, res);
	if (res->resp.u.range.kvs_n == 0)
		return false;
	*out = res->resp.u.range.kvs[0];
	return true;
}

#endif
