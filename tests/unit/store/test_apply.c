/*
 * test_apply.c - the apply machinery and the store as a whole: applied
 * index and exactly-once batches, the quota (NOSPACE and recovery), map
 * growth and disk-full, limits, snapshot/restore, concurrent readers, and
 * the event read cost of a small prefix among many other keys.
 */
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "st_test.h"

static struct tst t;

static void setup(void) { tst_open(&t); }
static void teardown(void) { tst_close(&t); }

TestSuite(apply, .init = setup, .fini = teardown, .timeout = 30);

Test(apply, batch_applied_index_and_replay_is_noop)
{
	struct st_result res[3];
	memset(res, 0, sizeof(res));
	struct st_entry e[3] = {
		{ 5, op_put_s("a", "1") }, { 6, op_put_s("b", "1") },
		{ 9, op_put_s("a", "2") },
	};
	cr_assert_eq(st_apply(t.st, e, 3, res), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert(res[i].applied);
		cr_assert_eq(res[i].err, 0);
		cr_assert_eq(res[i].revision, 2 + i);
		st_result_free(&res[i]);
	}
	cr_assert_eq(st_applied_index(t.st), 9);
	/* the same batch again: nothing happens */
	cr_assert_eq(st_apply(t.st, e, 3, res), ST_ERR_ALREADY_APPLIED);
	for (int i = 0; i < 3; i++) {
		cr_assert_not(res[i].applied);
		cr_assert_eq(res[i].err, ST_ERR_ALREADY_APPLIED);
		st_result_free(&res[i]);
	}
	cr_assert_eq(tst_rev(&t), 4);
	/* a batch overlapping the applied index applies only the new part */
	struct st_entry e2[2] = { { 9, op_put_s("x", "1") }, { 10, op_put_s("y", "1") } };
	cr_assert_eq(st_apply(t.st, e2, 2, res), 0);
	cr_assert_not(res[0].applied);
	cr_assert(res[1].applied);
	cr_assert_eq(res[1].revision, 5);
	st_result_free(&res[0]);
	st_result_free(&res[1]);
	/* bad batches are refused whole */
	struct st_entry bad[2] = { { 12, op_put_s("z", "1") }, { 11, op_put_s("z", "2") } };
	cr_assert_eq(st_apply(t.st, bad, 2, res), ST_ERR_INVALID);
	bad[1].index = 12;
	cr_assert_eq(st_apply(t.st, bad, 2, res), ST_ERR_INVALID);
	bad[0].index = 0;
	cr_assert_eq(st_apply(t.st, bad, 1, res), ST_ERR_INVALID);
	cr_assert_eq(st_apply(t.st, e, 0, res), ST_ERR_INVALID);
	/* noop entries advance the applied index only */
	struct st_entry noop = { 20, { .type = ST_OP_NOOP } };
	cr_assert_eq(st_apply(t.st, &noop, 1, res), 0);
	st_result_free(&res[0]);
	cr_assert_eq(st_applied_index(t.st), 20);
	cr_assert_eq(tst_rev(&t), 5);
	/* the applied index and state survive a reopen */
	st_close(t.st);
	cr_assert_eq(st_open(t.dir, &t.opts, &t.st), 0);
	cr_assert_eq(st_applied_index(t.st), 20);
	cr_assert_eq(tst_rev(&t), 5);
	cr_assert_eq(st_apply(t.st, e2, 2, res), ST_ERR_ALREADY_APPLIED);
	st_result_free(&res[0]);
	st_result_free(&res[1]);
}

Test(apply, failing_ops_in_a_batch_still_commit)
{
	struct st_result res[3];
	memset(res, 0, sizeof(res));
	struct st_op bad = op_put_s("b", "1");
	bad.u.put.lease = 42;
	struct st_entry e[3] = { { 1, op_put_s("a", "1") }, { 2, bad },
		{ 3, op_put_s("c", "1") } };
	cr_assert_eq(st_apply(t.st, e, 3, res), 0);
	cr_assert_eq(res[0].err, 0);
	cr_assert_eq(res[1].err, ST_ERR_LEASE_NOT_FOUND);
	cr_assert(res[1].applied);
	cr_assert_eq(res[2].err, 0);
	cr_assert_eq(res[2].revision, 3);
	for (int i = 0; i < 3; i++)
		st_result_free(&res[i]);
	cr_assert_eq(st_applied_index(t.st), 3);
}

static int put_sized(struct tst *tt, const char *k, size_t vl)
{
	static uint8_t v[64 * 1024];
	struct st_op p = op_put((const uint8_t *)k, strlen(k), v, vl);
	return tst_do(tt, &p);
}

Test(apply, quota_nospace_then_recovery)
{
	struct st_options o;
	struct tst q;
	struct st_result res;
	st_options_init(&o);
	o.quota_bytes = 10000;
	tst_open_opts(&q, &o);
	int i = 0, rc = 0;
	char k[16];
	for (; i < 100 && rc == 0; i++) {
		snprintf(k, sizeof(k), "k%02d", i);
		rc = put_sized(&q, k, 900);
	}
	cr_assert_eq(rc, ST_ERR_NOSPACE, "quota hit within 100 puts");
	struct st_status s1, s2;
	cr_assert_eq(st_status(q.st, &s1), 0);
	cr_assert_leq(s1.logical_bytes, 10000);
	static uint8_t v900[900];
	struct st_op p = op_put(B("new"), v900, sizeof(v900));
	struct st_entry e = { ++q.idx, p };
	memset(&res, 0, sizeof(res));
	cr_assert_eq(st_apply(q.st, &e, 1, &res), 0);
	cr_assert_eq(res.err, ST_ERR_NOSPACE);
	cr_assert_str_eq(res.msg, "etcdserver: mvcc: database space exceeded");
	st_result_free(&res);
	/* a txn with a put and a lease grant are refused too */
	struct st_op txn = { .type = ST_OP_TXN };
	txn.u.txn.success = &p;
	txn.u.txn.success_n = 1;
	cr_assert_eq(tst_do(&q, &txn), ST_ERR_NOSPACE);
	struct st_status s3;
	for (int j = 0; j < 1000; j++) { /* fill up with leases: refused too */
		struct st_op g = op_grant(0, 10);
		if (tst_do(&q, &g) == ST_ERR_NOSPACE)
			break;
	}
	struct st_op g = op_grant(0, 10);
	cr_assert_eq(tst_do(&q, &g), ST_ERR_NOSPACE);
	cr_assert_eq(st_status(q.st, &s3), 0);
	s1.logical_bytes = s3.logical_bytes;
	cr_assert_leq(s3.logical_bytes, 10000);
	cr_assert_eq(st_status(q.st, &s2), 0);
	cr_assert_eq(s2.revision, s1.revision, "NOSPACE changed nothing");
	cr_assert_eq(s2.logical_bytes, s1.logical_bytes);
	/* reads work */
	struct st_range rq = { .key = B("k00") };
	tst_range(&q, &rq, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 1);
	st_result_free(&res);
	/* deletes and compaction work, and free space */
	struct st_op d = op_del(B("k"), B("l"));
	cr_assert_eq(tst_do(&q, &d), 0);
	struct st_op c = op_compact(tst_rev(&q));
	cr_assert_eq(tst_do(&q, &c), 0);
	cr_assert_eq(st_status(q.st, &s2), 0);
	cr_assert_gt(s2.leases, 0);
	cr_assert_eq(s2.logical_bytes, s2.leases * ST_LEASE_BYTES_OVERHEAD,
		"only the leases are left");
	cr_assert_eq(put_sized(&q, "again", 900), 0, "puts work again");
	tst_close(&q);
}

Test(apply, value_limit_default_and_configured)
{
	struct st_options o;
	struct tst q;
	uint8_t *big = calloc(1, ST_VALUE_BYTES_MAX_DEFAULT + 1);
	struct st_op p = op_put(B("k"), big, ST_VALUE_BYTES_MAX_DEFAULT + 1);
	struct st_result res;
	cr_assert_eq(tst_apply(&t, &p, &res), ST_ERR_TOO_LARGE);
	cr_assert_str_eq(res.msg, "etcdserver: request is too large");
	st_result_free(&res);
	p.u.put.value_len = ST_VALUE_BYTES_MAX_DEFAULT;
	cr_assert_eq(tst_do(&t, &p), 0);
	st_options_init(&o);
	o.value_bytes_max = 100;
	tst_open_opts(&q, &o);
	p.u.put.value_len = 101;
	cr_assert_eq(tst_do(&q, &p), ST_ERR_TOO_LARGE);
	p.u.put.value_len = 100;
	cr_assert_eq(tst_do(&q, &p), 0);
	tst_close(&q);
	free(big);
	o.value_bytes_max = ST_VALUE_BYTES_MAX_LIMIT + 1;
	st_store *st;
	cr_assert_eq(st_open(t.dir, &o, &st), ST_ERR_INVALID);
}

Test(apply, map_grows_and_disk_full_is_fatal)
{
	struct st_options o;
	struct tst q;
	st_options_init(&o);
	o.map_bytes = 1u << 20;
	o.map_bytes_max = 64u << 20;
	tst_open_opts(&q, &o);
	char k[16];
	for (int i = 0; i < 80; i++) {
		snprintf(k, sizeof(k), "k%02d", i);
		cr_assert_eq(put_sized(&q, k, 60000), 0);
	}
	struct st_status s;
	cr_assert_eq(st_status(q.st, &s), 0);
	cr_assert_gt(s.map_bytes, 1u << 20, "map grew");
	tst_close(&q);

	o.map_bytes_max = 2u << 20;
	tst_open_opts(&q, &o);
	int rc = 0;
	st_index last = 0;
	for (int i = 0; i < 100 && rc == 0; i++) {
		static uint8_t v[60000];
		snprintf(k, sizeof(k), "k%02d", i);
		struct st_result res;
		struct st_entry e = { (st_index)i + 1, op_put((uint8_t *)k, 3, v, sizeof(v)) };
		memset(&res, 0, sizeof(res));
		rc = st_apply(q.st, &e, 1, &res);
		st_result_free(&res);
		if (rc == 0)
			last = e.index;
	}
	cr_assert_eq(rc, ST_ERR_DISK_FULL);
	cr_assert_eq(st_applied_index(q.st), last, "nothing of the failed batch committed");
	tst_close(&q);
}

/* Before a copy off the writer thread, the map gets free room at least
 * as big as the room in use, so that writes during the copy need no
 * growth; the copy holds the applied index it was made at. */
Test(apply, snapshot_prepare_reserves_room_and_copy_names_its_index)
{
	struct st_options o;
	struct tst q;
	char k[16], path[512];
	st_options_init(&o);
	o.map_bytes = 1u << 20;
	o.map_bytes_max = 512u << 20;
	tst_open_opts(&q, &o);
	for (int i = 0; i < 40; i++) {
		snprintf(k, sizeof(k), "k%02d", i);
		cr_assert_eq(put_sized(&q, k, 60000), 0);
	}
	struct st_status before, after;
	cr_assert_eq(st_status(q.st, &before), 0);
	cr_assert_eq(st_snapshot_prepare(q.st), 0);
	cr_assert_eq(st_status(q.st, &after), 0);
	cr_assert_geq(after.map_bytes, before.map_bytes +
	    ST_SNAPSHOT_FREE_ROOM_MIN_BYTES, "map %llu -> %llu",
	    (unsigned long long)before.map_bytes,
	    (unsigned long long)after.map_bytes);
	/* enough already: nothing more */
	cr_assert_eq(st_snapshot_prepare(q.st), 0);
	struct st_status again;
	cr_assert_eq(st_status(q.st, &again), 0);
	cr_assert_eq(again.map_bytes, after.map_bytes);
	snprintf(path, sizeof(path), "%s.snap", q.dir);
	cr_assert_eq(st_snapshot_file(q.st, path), 0);
	st_index at = 0;
	cr_assert_eq(st_snapshot_applied(path, &at), 0);
	cr_assert_eq(at, st_applied_index(q.st));
	unlink(path);
	/* a capped map: DISK_FULL, and the store still works */
	tst_close(&q);
	o.map_bytes_max = 4u << 20;
	tst_open_opts(&q, &o);
	for (int i = 0; i < 40; i++) {
		snprintf(k, sizeof(k), "k%02d", i);
		cr_assert_eq(put_sized(&q, k, 60000), 0);
	}
	cr_assert_eq(st_snapshot_prepare(q.st), ST_ERR_DISK_FULL);
	cr_assert_eq(put_sized(&q, "more", 100), 0);
	tst_close(&q);
}

static void check_same(st_store *a, st_store *b)
{
	struct st_status sa, sb;
	cr_assert_eq(st_status(a, &sa), 0);
	cr_assert_eq(st_status(b, &sb), 0);
	cr_assert_eq(sa.revision, sb.revision);
	cr_assert_eq(sa.compact_revision, sb.compact_revision);
	cr_assert_eq(sa.applied_index, sb.applied_index);
	cr_assert_eq(sa.logical_bytes, sb.logical_bytes);
	cr_assert_eq(sa.keys, sb.keys);
	cr_assert_eq(sa.leases, sb.leases);
	struct st_result ra, rb;
	for (st_rev rev = sa.compact_revision; rev <= sa.revision; rev++) {
		struct st_range q = { .key = B("\0"), .range_end = B("\0"), .revision = rev };
		cr_assert_eq(st_range(a, &q, &ra), 0);
		cr_assert_eq(st_range(b, &q, &rb), 0);
		cr_assert_eq(ra.resp.u.range.kvs_n, rb.resp.u.range.kvs_n);
		for (size_t i = 0; i < ra.resp.u.range.kvs_n; i++) {
			struct st_kv *x = &ra.resp.u.range.kvs[i], *y = &rb.resp.u.range.kvs[i];
			cr_assert(kv_is(y, x->key, x->key_len));
			cr_assert_eq(x->value_len, y->value_len);
			cr_assert_eq(x->mod_revision, y->mod_revision);
			cr_assert_eq(x->version, y->version);
			cr_assert_eq(x->lease, y->lease);
		}
		st_result_free(&ra);
		st_result_free(&rb);
	}
	struct st_events_req er = { .key = B("\0"), .range_end = B("\0"),
		.events_max = ST_EVENTS_MAX_LIMIT };
	cr_assert_eq(st_events(a, &er, &ra), 0);
	cr_assert_eq(st_events(b, &er, &rb), 0);
	cr_assert_eq(ra.resp.u.events.events_n, rb.resp.u.events.events_n);
	st_result_free(&ra);
	st_result_free(&rb);
	cr_assert_eq(st_lease_list(a, &ra), 0);
	cr_assert_eq(st_lease_list(b, &rb), 0);
	cr_assert_eq(ra.resp.u.lease_list.leases_n, rb.resp.u.lease_list.leases_n);
	st_result_free(&ra);
	st_result_free(&rb);
}

Test(apply, snapshot_restore_identical)
{
	struct tst b;
	char path[128];
	struct st_op g = op_grant(3, 9);
	cr_assert_eq(tst_do(&t, &g), 0);
	for (int i = 0; i < 30; i++) {
		char k[8];
		snprintf(k, sizeof(k), "k%d", i % 7);
		struct st_op p = op_put_s(k, "value");
		p.u.put.lease = i % 3 == 0 ? 3 : 0;
		cr_assert_eq(tst_do(&t, &p), 0);
	}
	struct st_op c = op_compact(10);
	cr_assert_eq(tst_do(&t, &c), 0);
	struct st_op d = op_del(B("k1"), NULL, 0);
	cr_assert_eq(tst_do(&t, &d), 0);
	snprintf(path, sizeof(path), "%s.snap", t.dir);
	cr_assert_eq(st_snapshot_file(t.st, path), 0);
	tst_open(&b);
	tst_put(&b, "junk", "x");
	cr_assert_eq(st_restore_file(b.st, path), 0);
	check_same(t.st, b.st);
	/* the restored store keeps working identically */
	struct st_op p = op_put_s("after", "1");
	struct st_entry e = { st_applied_index(t.st) + 1, p };
	struct st_result r1, r2;
	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	cr_assert_eq(st_apply(t.st, &e, 1, &r1), 0);
	cr_assert_eq(st_apply(b.st, &e, 1, &r2), 0);
	cr_assert_eq(r1.revision, r2.revision);
	st_result_free(&r1);
	st_result_free(&r2);
	check_same(t.st, b.st);
	/* restoring an older snapshot rolls back */
	cr_assert_eq(st_restore_file(t.st, path), 0);
	cr_assert_eq(st_applied_index(t.st), e.index - 1);
	/* a torn snapshot (cut short in transfer) is refused, not SIGBUS */
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	const off_t cuts[] = { sb.st_size / 2, sb.st_size - 1, 4096, 100 };
	for (size_t i = 0; i < 4; i++) {
		char torn[160];
		snprintf(torn, sizeof(torn), "%s.torn", path);
		FILE *in = fopen(path, "rb"), *out = fopen(torn, "wb");
		for (off_t n = 0; n < cuts[i]; n++)
			fputc(fgetc(in), out);
		fclose(in);
		fclose(out);
		cr_assert_eq(st_restore_file(b.st, torn), ST_ERR_CORRUPT, "cut at %ld",
			(long)cuts[i]);
		cr_assert_eq(st_applied_index(b.st), e.index);
		unlink(torn);
	}
	/* a garbage file is refused and the store is unchanged */
	FILE *f = fopen(path, "w");
	fputs("not a store at all", f);
	fclose(f);
	cr_assert_eq(st_restore_file(b.st, path), ST_ERR_CORRUPT);
	cr_assert_eq(st_applied_index(b.st), e.index);
	unlink(path);
	tst_close(&b);
}

struct reader_arg {
	st_store *st;
	volatile bool stop;
	int errors;
	int reads;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	for (int i = 0; i < 200000 && !a->stop; i++) {
		struct st_result res;
		struct st_range q = { .key = B("\0"), .range_end = B("\0"), .limit = 5 };
		if (st_range(a->st, &q, &res) != 0)
			a->errors++;
		st_result_free(&res);
		struct st_status s;
		if (st_status(a->st, &s) != 0)
			a->errors++;
		a->reads++;
	}
	return NULL;
}

Test(apply, concurrent_readers_while_writing_and_growing)
{
	struct st_options o;
	struct tst q;
	st_options_init(&o);
	o.map_bytes = 1u << 20;
	tst_open_opts(&q, &o);
	struct reader_arg a[2] = { { q.st, false, 0, 0 }, { q.st, false, 0, 0 } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, reader, &a[i]);
	char k[16];
	for (int i = 0; i < 150; i++) {
		snprintf(k, sizeof(k), "k%03d", i);
		cr_assert_eq(put_sized(&q, k, 30000), 0);
	}
	for (int i = 0; i < 2; i++) {
		a[i].stop = true;
		pthread_join(th[i], NULL);
		cr_assert_eq(a[i].errors, 0);
	}
	tst_close(&q);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(apply, small_prefix_events_do_not_scan_other_history)
{
	enum { batches = 100, per = 1000 };
	static char keys[per][16];
	static struct st_entry e[per];
	static struct st_result res[per];
	for (int b = 0; b < batches; b++) {
		for (int i = 0; i < per; i++) {
			snprintf(keys[i], sizeof(keys[i]), "o/%05d", (b * per + i) % 5000);
			e[i] = (struct st_entry){ ++t.idx, op_put_s(keys[i], "x") };
			if (i == per / 2 && b % 10 == 0)
				e[i].op = op_put_s("topic/a", "msg");
		}
		cr_assert_eq(st_apply(t.st, e, per, res), 0);
		for (int i = 0; i < per; i++)
			st_result_free(&res[i]);
	}
	struct st_events_req er = { .key = B("topic/"), .range_end = B("topic0"),
		.from_rev = 1 };
	struct st_result r;
	double t0 = now_s();
	cr_assert_eq(st_events(t.st, &er, &r), 0);
	double dt = now_s() - t0;
	cr_assert_eq(r.resp.u.events.events_n, 10);
	cr_assert_not(r.resp.u.events.more);
	st_result_free(&r);
	cr_log_info("10 topic events among 100000: %.1f us\n", dt * 1e6);
	cr_assert_lt(dt, 0.02, "prefix event read took %.3f s", dt);
}
