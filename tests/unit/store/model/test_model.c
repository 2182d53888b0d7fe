/*
 * test_model.c - Criterion entry points of the store's randomized model
 * test (see run.c). Default: a few seeds x a few thousand steps. Replay one
 * failure with STORE_MODEL_SEED=<seed> [STORE_MODEL_STEPS=<n>].
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <pthread.h>
#include <string.h>

#include "model.h"

/* Wall-clock budget per seed; the run stops early (passing) beyond it so
 * slow sanitizer builds stay within the suite's timeout. */
#define TEST_SEED_TIME_S_MAX 12.0

static void run_seed(uint64_t dflt_seed, int dflt_steps, bool two, bool snap)
{
	bool set;
	struct run_cfg cfg = {
		.seed = model_env_seed(dflt_seed, &set),
		.steps = model_env_steps(dflt_steps),
		.two_stores = two,
		.snapshot = snap,
		.trace = getenv("STORE_MODEL_TRACE") != NULL,
		.time_s_max = set ? 0 : TEST_SEED_TIME_S_MAX,
	};
	char why[4096];
	int rc = model_run(&cfg, why, sizeof(why));
	cr_assert_eq(rc, 0, "%s", why);
}

Test(store_model, seed_1) { run_seed(1, 3000, false, false); }
Test(store_model, seed_2) { run_seed(0x5eed0002, 3000, false, false); }
Test(store_model, seed_3) { run_seed(0xdecafbad, 3000, false, false); }
Test(store_model, seed_4) { run_seed(20261125, 3000, false, false); }

/* Two members applying the same entries (batched differently) must give
 * identical replies and identical contents. */
Test(store_model, two_stores_agree) { run_seed(42, 2500, true, false); }

/* Snapshot -> restore into a fresh store: same contents at every retained
 * revision, same history, leases and status; both then evolve identically. */
Test(store_model, snapshot_restore) { run_seed(7, 1500, false, true); }

/* ---- directed tests of what the random model leaves out ------------------ */

static st_store *open_tmp(char *dir, size_t len, const struct st_options *o)
{
	st_store *st = NULL;
	cr_assert_eq(model_tmpdir(dir, len, "store-model"), 0);
	int rc = st_open(dir, o, &st);
	cr_assert_eq(rc, 0, "st_open: %s", st_strerror(rc));
	return st;
}

static int apply_one(st_store *st, st_index idx, const struct st_op *op,
	struct st_result *res)
{
	struct st_entry e = { .index = idx, .op = *op };
	int rc = st_apply(st, &e, 1, res);
	cr_assert_eq(rc, 0, "st_apply(%" PRIu64 "): %s", idx, st_strerror(rc));
	cr_assert(res->applied);
	return res->err;
}

static struct st_status status_of(st_store *st)
{
	struct st_status s;
	cr_assert_eq(st_status(st, &s), 0);
	return s;
}

/* The quota refuses exactly the put that would cross it; reads, deletes
 * and compaction keep working and compaction makes room again. */
Test(store_model, quota_refuses_puts_then_compaction_frees)
{
	char dir[64];
	struct st_options o;
	st_options_init(&o);
	o.no_sync = true;
	o.quota_bytes = 2000;
	st_store *st = open_tmp(dir, sizeof(dir), &o);
	uint8_t val[50];
	memset(val, 'q', sizeof(val));
	char key[16];
	struct st_op put = { .type = ST_OP_PUT };
	put.u.put.key = (const uint8_t *)key;
	put.u.put.value = val;
	put.u.put.value_len = sizeof(val);
	st_index idx = 0;
	int refused = 0, stored = 0;
	for (int i = 0; i < 40; i++) {
		put.u.put.key_len = (size_t)snprintf(key, sizeof(key), "q/%03d", i);
		uint64_t cost = put.u.put.key_len + sizeof(val) + ST_RECORD_BYTES_OVERHEAD;
		struct st_status before = status_of(st);
		struct st_result res = { 0 };
		int err = apply_one(st, ++idx, &put, &res);
		bool fits = before.logical_bytes + cost <= o.quota_bytes;
		cr_assert_eq(err, fits ? 0 : ST_ERR_NOSPACE, "put %d: logical %" PRIu64
			" + %" PRIu64 " vs quota %" PRIu64 ": err %d", i,
			before.logical_bytes, cost, o.quota_bytes, err);
		struct st_status after = status_of(st);
		cr_assert_eq(after.logical_bytes, before.logical_bytes + (fits ? cost : 0));
		cr_assert_eq(after.applied_index, idx, "a refused put still counts as applied");
		cr_assert_eq(after.revision, before.revision + (fits ? 1 : 0));
		refused += !fits;
		stored += fits;
		st_result_free(&res);
	}
	cr_assert(refused > 0 && stored > 0);
	struct st_range all = { .key = (const uint8_t *)"q/", .key_len = 2,
		.range_end = (const uint8_t *)"q0", .range_end_len = 2, .count_only = true };
	struct st_result res = { 0 };
	cr_assert_eq(st_range(st, &all, &res), 0);
	cr_assert_eq(res.resp.u.range.count, stored, "reads are served at the quota");
	st_result_free(&res);
	struct st_op del = { .type = ST_OP_DELETE_RANGE };
	del.u.delete_range.key = all.key;
	del.u.delete_range.key_len = 2;
	del.u.delete_range.range_end = all.range_end;
	del.u.delete_range.range_end_len = 2;
	cr_assert_eq(apply_one(st, ++idx, &del, &res), 0, "delete at the quota");
	cr_assert_eq(res.resp.u.delete_range.deleted, stored);
	st_result_free(&res);
	struct st_op cmp = { .type = ST_OP_COMPACT };
	cmp.u.compact.revision = status_of(st).revision;
	cr_assert_eq(apply_one(st, ++idx, &cmp, &res), 0);
	st_result_free(&res);
	cr_assert_eq(status_of(st).logical_bytes, 0,
		"compacting away every version and tombstone frees everything");
	put.u.put.key_len = (size_t)snprintf(key, sizeof(key), "q/again");
	cr_assert_eq(apply_one(st, ++idx, &put, &res), 0, "room again after compaction");
	st_result_free(&res);
	st_close(st);
	model_rmdir(dir);
}

/* Readers on other threads, concurrent with the writer, always see whole
 * txns (both keys of a txn written together) and never go back in time. */
#define READERS_N 2
#define READER_TXNS 400

struct reader_arg { st_store *st; volatile int *stop; char err[256]; };

/* READERS_N threads running one reader function against st. */
struct readers {
	volatile int stop;
	struct reader_arg ra[READERS_N];
	pthread_t th[READERS_N];
};

static void readers_start(struct readers *rs, st_store *st,
	void *(*fn)(void *))
{
	rs->stop = 0;
	for (int i = 0; i < READERS_N; i++) {
		rs->ra[i] = (struct reader_arg){ .st = st, .stop = &rs->stop };
		cr_assert_eq(pthread_create(&rs->th[i], NULL, fn, &rs->ra[i]), 0);
	}
}

/* Stops and joins the readers; each one's first error fails the test. */
static void readers_stop(struct readers *rs)
{
	rs->stop = 1;
	for (int i = 0; i < READERS_N; i++) {
		pthread_join(rs->th[i], NULL);
		cr_expect(rs->ra[i].err[0] == 0, "reader %d: %s", i,
			rs->ra[i].err);
	}
}

static void *reader_main(void *p)
{
	struct reader_arg *ra = p;
	st_rev last = 0;
	for (int i = 0; i < 200000 && !*ra->stop; i++) {
		struct st_range q = { .key = (const uint8_t *)"x", .key_len = 1,
			.range_end = (const uint8_t *)"z", .range_end_len = 1 };
		struct st_result res = { 0 };
		int rc = st_range(ra->st, &q, &res);
		const struct st_range_resp *r = &res.resp.u.range;
		if (rc)
			snprintf(ra->err, sizeof(ra->err), "st_range: %d", rc);
		else if (res.revision < last)
			snprintf(ra->err, sizeof(ra->err), "revision went back %" PRId64
				" -> %" PRId64, last, res.revision);
		else if (r->kvs_n == 1 || (r->kvs_n == 2 &&
			(r->kvs[0].mod_revision != r->kvs[1].mod_revision ||
			 r->kvs[0].value_len != r->kvs[1].value_len ||
			 memcmp(r->kvs[0].value, r->kvs[1].value, r->kvs[0].value_len))))
			snprintf(ra->err, sizeof(ra->err), "torn txn at revision %"
				PRId64, res.revision);
		last = res.revision;
		st_result_free(&res);
		if (ra->err[0])
			break;
	}
	return NULL;
}

Test(store_model, readers_see_whole_txns_concurrently)
{
	char dir[64];
	struct st_options o;
	st_options_init(&o);
	o.no_sync = true;
	st_store *st = open_tmp(dir, sizeof(dir), &o);
	struct readers rs;
	readers_start(&rs, st, reader_main);
	for (int i = 1; i <= READER_TXNS; i++) {
		char v[16];
		size_t vn = (size_t)snprintf(v, sizeof(v), "%d", i);
		struct st_op ops[2] = { { .type = ST_OP_PUT }, { .type = ST_OP_PUT } };
		ops[0].u.put = (struct st_put){ .key = (const uint8_t *)"x",
			.key_len = 1, .value = (const uint8_t *)v, .value_len = vn };
		ops[1].u.put = ops[0].u.put;
		ops[1].u.put.key = (const uint8_t *)"y";
		struct st_op txn = { .type = ST_OP_TXN };
		txn.u.txn.success = ops;
		txn.u.txn.success_n = 2;
		struct st_result res = { 0 };
		cr_assert_eq(apply_one(st, (st_index)i, &txn, &res), 0);
		st_result_free(&res);
	}
	readers_stop(&rs);
	st_close(st);
	model_rmdir(dir);
}

/* Puts `n` keys "m/<i>" with 1 KiB values, `per` per st_apply, from index
 * *idx + 1; returns the first st_apply error (0 if none). */
static int fill(st_store *st, st_index *idx, int n, int per)
{
	static uint8_t val[1024];
	struct st_entry ent[64];
	struct st_result res[64];
	char keys[64][16];
	cr_assert(per <= 64);
	for (int i = 0; i < n; i += per) {
		memset(res, 0, sizeof(res));
		for (int j = 0; j < per; j++) {
			ent[j] = (struct st_entry){ .index = *idx + 1 + (st_index)j };
			ent[j].op.type = ST_OP_PUT;
			ent[j].op.u.put.key = (const uint8_t *)keys[j];
			ent[j].op.u.put.key_len = (size_t)snprintf(keys[j], sizeof(keys[j]),
				"m/%06d", (int)*idx + j);
			ent[j].op.u.put.value = val;
			ent[j].op.u.put.value_len = sizeof(val);
		}
		int rc = st_apply(st, ent, (size_t)per, res);
		for (int j = 0; j < per; j++) {
			if (rc == 0)
				cr_assert_eq(res[j].err, 0, "put: %s", st_strerror(res[j].err));
			st_result_free(&res[j]);
		}
		if (rc)
			return rc;
		*idx += (st_index)per;
	}
	return 0;
}

/* MDB_MAP_FULL is handled inside: the map grows and the batch commits; at
 * map_bytes_max the batch fails with DISK_FULL and nothing of it commits. */
Test(store_model, map_grows_then_disk_full_commits_nothing)
{
	char dir[64];
	struct st_options o;
	st_options_init(&o);
	o.no_sync = true;
	o.map_bytes = 1u << 20;
	o.map_bytes_max = 8u << 20;
	st_store *st = open_tmp(dir, sizeof(dir), &o);
	st_index idx = 0;
	cr_assert_eq(fill(st, &idx, 2048, 64), 0, "2 MiB of values must fit by growing");
	struct st_status s = status_of(st);
	cr_assert_gt(s.map_bytes, o.map_bytes, "the map grew");
	cr_assert_eq(s.keys, 2048);
	int rc = fill(st, &idx, 64 * 400, 64);
	cr_assert_eq(rc, ST_ERR_DISK_FULL, "past map_bytes_max: %d (%s)", rc,
		st_strerror(rc));
	struct st_status full = status_of(st);
	cr_assert_eq(full.applied_index, idx, "the failed batch left no trace");
	cr_assert_eq(full.keys, idx, "keys == entries applied (one put each)");
	cr_assert_eq(full.revision, (st_rev)idx + 1);
	st_close(st);
	model_rmdir(dir);
}

static void *grow_reader_main(void *p)
{
	struct reader_arg *ra = p;
	int64_t last_count = 0;
	st_rev last_rev = 0;
	for (int i = 0; i < 1000000 && !*ra->stop; i++) {
		struct st_range q = { .key = (const uint8_t *)"m/", .key_len = 2,
			.range_end = (const uint8_t *)"m0", .range_end_len = 2,
			.limit = 3 };
		struct st_result res = { 0 };
		int rc = st_range(ra->st, &q, &res);
		if (rc)
			snprintf(ra->err, sizeof(ra->err), "st_range: %d", rc);
		else if (res.revision < last_rev || res.resp.u.range.count < last_count)
			snprintf(ra->err, sizeof(ra->err), "went back: rev %" PRId64
				" -> %" PRId64 ", count %" PRId64 " -> %" PRId64, last_rev,
				res.revision, last_count, res.resp.u.range.count);
		else if (res.resp.u.range.count != res.revision - 1)
			snprintf(ra->err, sizeof(ra->err), "count %" PRId64 " at rev %"
				PRId64, res.resp.u.range.count, res.revision);
		last_rev = res.revision;
		last_count = res.resp.u.range.count;
		st_result_free(&res);
		if (ra->err[0])
			break;
	}
	return NULL;
}

/* Readers keep reading while the writer grows the map under them. */
Test(store_model, readers_during_map_growth)
{
	char dir[64];
	struct st_options o;
	st_options_init(&o);
	o.no_sync = true;
	o.map_bytes = 1u << 20;
	st_store *st = open_tmp(dir, sizeof(dir), &o);
	struct readers rs;
	readers_start(&rs, st, grow_reader_main);
	st_index idx = 0;
	int rc = fill(st, &idx, 8192, 1); /* one put per txn: many growth points */
	readers_stop(&rs);
	cr_assert_eq(rc, 0, "fill: %s", st_strerror(rc));
	cr_assert_gt(status_of(st).map_bytes, o.map_bytes);
	st_close(st);
	model_rmdir(dir);
}
