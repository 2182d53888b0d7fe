/*
 * test_mvcc.c - history: reads at past revisions, compaction (compacted and
 * future errors, latest versions kept, history dropped, tombstones gone),
 * the event history (order, prefixes, batching without splitting a
 * revision, resume, prev_kv) and keys with 0x00/0xff bytes that are
 * prefixes of each other.
 */
#include "st_test.h"

static struct tst t;

static void setup(void) { tst_open(&t); }
static void teardown(void) { tst_close(&t); }

TestSuite(mvcc, .init = setup, .fini = teardown, .timeout = 30);

static int range_at(const char *k, st_rev rev, struct st_result *res)
{
	struct st_range req = { .key = (const uint8_t *)k, .key_len = strlen(k),
		.revision = rev };
	return st_range(t.st, &req, res);
}

Test(mvcc, compaction_errors_and_retained_versions)
{
	struct st_result res;
	struct st_kv kv;
	tst_put(&t, "a", "1");  /* 2 */
	tst_put(&t, "a", "2");  /* 3 */
	tst_put(&t, "b", "1");  /* 4 */
	struct st_op d = op_del(B("b"), NULL, 0);
	cr_assert_eq(tst_do(&t, &d), 0); /* 5 */
	tst_put(&t, "a", "3");  /* 6 */
	struct st_op c = op_compact(7);
	cr_assert_eq(tst_apply(&t, &c, &res), ST_ERR_FUTURE_REV);
	cr_assert_str_eq(res.msg, "etcdserver: mvcc: required revision is a future revision");
	st_result_free(&res);
	c = op_compact(5);
	cr_assert_eq(tst_apply(&t, &c, &res), 0);
	cr_assert_eq(res.revision, 6, "compaction does not bump the revision");
	st_result_free(&res);
	struct st_status s;
	cr_assert_eq(st_status(t.st, &s), 0);
	cr_assert_eq(s.compact_revision, 5);
	/* compacting at or below the compact revision */
	cr_assert_eq(tst_apply(&t, &c, &res), ST_ERR_COMPACTED);
	cr_assert_eq(res.compact_revision, 5);
	st_result_free(&res);
	c = op_compact(3);
	cr_assert_eq(tst_do(&t, &c), ST_ERR_COMPACTED);
	/* reads below the compact revision fail, at it are served */
	cr_assert_eq(range_at("a", 4, &res), ST_ERR_COMPACTED);
	cr_assert_str_eq(res.msg, "etcdserver: mvcc: required revision has been compacted");
	cr_assert_eq(res.compact_revision, 5);
	st_result_free(&res);
	cr_assert(tst_get(&t, "a", 5, &kv, &res));
	cr_assert(val_is_s(&kv, "2"), "latest version <= compact rev kept");
	cr_assert_eq(kv.version, 2);
	cr_assert_eq(kv.create_revision, 2);
	st_result_free(&res);
	cr_assert_not(tst_get(&t, "b", 5, &kv, &res), "deleted key stays deleted");
	st_result_free(&res);
	cr_assert(tst_get(&t, "a", 6, &kv, &res));
	cr_assert(val_is_s(&kv, "3"));
	cr_assert_eq(kv.version, 3, "version survives compaction");
	st_result_free(&res);
	/* history below is gone: events from <= 5 are compacted, from 6 work */
	struct st_events_req er = { .key = B("\0"), .range_end = B("\0"), .from_rev = 5 };
	cr_assert_eq(st_events(t.st, &er, &res), ST_ERR_COMPACTED);
	st_result_free(&res);
	er.from_rev = 0; /* = compact + 1 */
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 1);
	cr_assert_eq(res.resp.u.events.events[0].kv.mod_revision, 6);
	st_result_free(&res);
	/* logical size shrank: only a@3 (kept), a@6 remain */
	cr_assert_eq(st_status(t.st, &s), 0);
	cr_assert_eq(s.logical_bytes, 2 * (1 + 1 + ST_RECORD_BYTES_OVERHEAD));
	cr_assert_eq(s.keys, 1);
	/* a second compaction drops the version the first one kept */
	c = op_compact(6);
	cr_assert_eq(tst_do(&t, &c), 0);
	cr_assert_eq(st_status(t.st, &s), 0);
	cr_assert_eq(s.logical_bytes, 1 + 1 + ST_RECORD_BYTES_OVERHEAD);
	cr_assert(tst_get(&t, "a", 6, &kv, &res));
	cr_assert(val_is_s(&kv, "3"));
	st_result_free(&res);
}

Test(mvcc, compact_then_write_and_read_history)
{
	struct st_result res;
	struct st_kv kv;
	for (int i = 0; i < 50; i++) {
		char v[8];
		snprintf(v, sizeof(v), "%d", i);
		tst_put(&t, "x", v); /* revs 2..51 */
	}
	struct st_op c = op_compact(30);
	cr_assert_eq(tst_do(&t, &c), 0);
	cr_assert(tst_get(&t, "x", 30, &kv, &res));
	cr_assert(val_is_s(&kv, "28"));
	st_result_free(&res);
	cr_assert(tst_get(&t, "x", 40, &kv, &res));
	cr_assert(val_is_s(&kv, "38"));
	st_result_free(&res);
	struct st_events_req er = { .key = B("x"), .from_rev = 31 };
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 21);
	st_result_free(&res);
}

Test(mvcc, binary_keys_prefixes_of_each_other)
{
	struct st_result res;
	/* "a" < "a\0" < "a\0\0" < "a\x01" < "a\xff" < "b"; each written twice
	 * so that the history index holds (key, rev) pairs that would
	 * interleave under plain byte order of key||rev. */
	const struct { const char *k; size_t n; } keys[] = {
		{ "a\xff", 2 }, { "a", 1 }, { "a\0\0", 3 }, { "b", 1 },
		{ "a\0", 2 }, { "a\x01", 2 },
	};
	const size_t order[] = { 1, 4, 2, 5, 0, 3 };
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < 6; i++) {
			struct st_op p = op_put((const uint8_t *)keys[i].k, keys[i].n,
				B("v"));
			cr_assert_eq(tst_do(&t, &p), 0);
		}
	struct st_range req = { .key = B("a"), .range_end = B("b") };
	tst_range(&t, &req, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 5);
	for (size_t i = 0; i < 5; i++) {
		const struct st_kv *kv = &res.resp.u.range.kvs[i];
		cr_assert(kv_is(kv, (const uint8_t *)keys[order[i]].k, keys[order[i]].n),
			"position %zu", i);
		cr_assert_eq(kv->version, 2);
	}
	st_result_free(&res);
	/* the single key "a" must not pick up "a\0"'s history */
	req = (struct st_range){ .key = B("a"), .revision = 0 };
	tst_range(&t, &req, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 1);
	cr_assert_eq(res.resp.u.range.kvs[0].mod_revision, 9);
	st_result_free(&res);
	struct st_events_req er = { .key = B("a\0"), .from_rev = 1 };
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 2);
	cr_assert_eq(res.resp.u.events.events[0].kv.mod_revision, 6);
	cr_assert_eq(res.resp.u.events.events[1].kv.mod_revision, 12);
	st_result_free(&res);
	/* prefix "a\0": a\0 and a\0\0 */
	er = (struct st_events_req){ .key = B("a\0"), .range_end = B("a\x01"), .from_rev = 1 };
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 4);
	cr_assert_eq(res.resp.u.events.events[0].kv.mod_revision, 4);
	cr_assert_eq(res.resp.u.events.events[1].kv.mod_revision, 6);
	cr_assert_eq(res.resp.u.events.events[2].kv.mod_revision, 10);
	cr_assert_eq(res.resp.u.events.events[3].kv.mod_revision, 12);
	st_result_free(&res);
	/* delete of the prefix "a\xff".. to end */
	struct st_op d = op_del(B("a\xff"), B("\0"));
	struct st_result dr;
	cr_assert_eq(tst_apply(&t, &d, &dr), 0);
	cr_assert_eq(dr.resp.u.delete_range.deleted, 2);
	st_result_free(&dr);
}

Test(mvcc, events_order_prev_kv_and_delete_events)
{
	struct st_result res;
	tst_put(&t, "t/a", "1");   /* 2 */
	tst_put(&t, "other", "x"); /* 3 */
	tst_put(&t, "t/a", "2");   /* 4 */
	struct st_op d = op_del(B("t/a"), NULL, 0);
	cr_assert_eq(tst_do(&t, &d), 0); /* 5 */
	tst_put(&t, "t/b", "3");   /* 6 */
	struct st_events_req er = { .key = B("t/"), .range_end = B("t0"),
		.from_rev = 1, .prev_kv = true };
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	struct st_events_resp *e = &res.resp.u.events;
	cr_assert_eq(e->events_n, 4);
	cr_assert_not(e->more);
	cr_assert_eq(e->next_rev, 7);
	cr_assert_eq(e->events[0].type, ST_EVENT_PUT);
	cr_assert_not(e->events[0].has_prev_kv);
	cr_assert_eq(e->events[1].kv.version, 2);
	cr_assert(e->events[1].has_prev_kv);
	cr_assert(val_is_s(&e->events[1].prev_kv, "1"));
	cr_assert_eq(e->events[2].type, ST_EVENT_DELETE);
	cr_assert(kv_is_s(&e->events[2].kv, "t/a"));
	cr_assert_eq(e->events[2].kv.mod_revision, 5);
	cr_assert_eq(e->events[2].kv.version, 0);
	cr_assert(val_is_s(&e->events[2].prev_kv, "2"));
	cr_assert_eq(e->events[3].kv.mod_revision, 6);
	st_result_free(&res);
	/* from a later revision; future revision errors */
	er.from_rev = 5;
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 2);
	st_result_free(&res);
	er.from_rev = 7;
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 0);
	st_result_free(&res);
	er.from_rev = 8;
	cr_assert_eq(st_events(t.st, &er, &res), ST_ERR_FUTURE_REV);
	st_result_free(&res);
	er.from_rev = -1;
	cr_assert_eq(st_events(t.st, &er, &res), ST_ERR_INVALID);
	st_result_free(&res);
}

/* Reads all events of a range in batches and checks they are in order,
 * complete and that no batch ends inside a revision. */
static size_t read_all_batches(const uint8_t *k, size_t kl, const uint8_t *e,
	size_t el, size_t emax, size_t *batches, st_rev *revs)
{
	struct st_events_req er = { .key = k, .key_len = kl, .range_end = e,
		.range_end_len = el, .from_rev = 1, .events_max = emax };
	size_t total = 0;
	*batches = 0;
	for (int guard = 0; guard < 10000; guard++) {
		struct st_result res;
		cr_assert_eq(st_events(t.st, &er, &res), 0);
		struct st_events_resp *r = &res.resp.u.events;
		cr_assert_leq(r->events_n, emax);
		for (size_t i = 0; i < r->events_n; i++)
			revs[total++] = r->events[i].kv.mod_revision;
		if (r->more && !r->split_revision && r->events_n > 0)
			cr_assert_neq(r->events[r->events_n - 1].kv.mod_revision,
				r->next_rev, "batch split a revision");
		bool more = r->more;
		er.from_rev = r->next_rev;
		er.from_sub = r->next_sub;
		(*batches)++;
		st_result_free(&res);
		if (!more)
			return total;
	}
	cr_assert_fail("too many batches");
	return 0;
}

Test(mvcc, events_batches_never_split_a_revision)
{
	/* revisions with 1, 3, 1, 3 ... events (txn of 3 puts) */
	static char keys[80][8];
	st_rev revs[200];
	size_t batches, n = 0;
	for (int i = 0; i < 20; i++) {
		snprintf(keys[n], 8, "p/%02d", i);
		struct st_op p = op_put_s(keys[n++], "v");
		cr_assert_eq(tst_do(&t, &p), 0);
		struct st_op ops[3];
		for (int j = 0; j < 3; j++) {
			snprintf(keys[n], 8, "p/%02d%c", i, 'a' + j);
			ops[j] = op_put_s(keys[n++], "w");
		}
		struct st_op txn = { .type = ST_OP_TXN };
		txn.u.txn.success = ops;
		txn.u.txn.success_n = 3;
		cr_assert_eq(tst_do(&t, &txn), 0);
		tst_put(&t, "q/unrelated", "z");
	}
	/* by-key path (prefix) and by-revision path (all keys) */
	size_t got = read_all_batches(B("p/"), B("p0"), 4, &batches, revs);
	cr_assert_eq(got, 80);
	for (size_t i = 1; i < got; i++)
		cr_assert_leq(revs[i - 1], revs[i]);
	cr_assert_geq(batches, 20);
	got = read_all_batches(B("\0"), B("\0"), 5, &batches, revs);
	cr_assert_eq(got, 100);
	for (size_t i = 1; i < got; i++)
		cr_assert_leq(revs[i - 1], revs[i]);
	/* events_max 2 < a 3-event revision: that revision is split */
	struct st_events_req er = { .key = B("p/"), .range_end = B("p0"),
		.from_rev = 3, .events_max = 2 };
	struct st_result res;
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 2);
	cr_assert(res.resp.u.events.split_revision);
	cr_assert_eq(res.resp.u.events.next_rev, 3);
	er.from_sub = res.resp.u.events.next_sub;
	st_result_free(&res);
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 2);
	cr_assert(kv_is_s(&res.resp.u.events.events[0].kv, "p/00c"));
	cr_assert_eq(res.resp.u.events.events[1].kv.mod_revision, 5);
	st_result_free(&res);
	/* the byte limit also cuts at a revision boundary */
	er = (struct st_events_req){ .key = B("p/"), .range_end = B("p0"),
		.from_rev = 1, .bytes_max = 12 };
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 1);
	cr_assert(res.resp.u.events.more);
	cr_assert_eq(res.resp.u.events.next_rev, 3);
	st_result_free(&res);
}

Test(mvcc, range_at_past_revisions_counts_that_revision)
{
	struct st_result res;
	tst_put(&t, "r/1", "a");   /* 2 */
	tst_put(&t, "r/2", "b");   /* 3 */
	struct st_op d = op_del(B("r/1"), NULL, 0);
	cr_assert_eq(tst_do(&t, &d), 0); /* 4 */
	tst_put(&t, "r/3", "c");   /* 5 */
	tst_put(&t, "r/1", "d");   /* 6 */
	const int64_t want[] = { 0, 0, 1, 2, 1, 2, 3 };
	for (st_rev rev = 1; rev <= 6; rev++) {
		struct st_range q = { .key = B("r/"), .range_end = B("r0"),
			.revision = rev, .limit = 1 };
		cr_assert_eq(st_range(t.st, &q, &res), 0);
		cr_assert_eq(res.resp.u.range.count, want[rev], "rev %ld", (long)rev);
		cr_assert_eq(res.resp.u.range.more, want[rev] > 1);
		st_result_free(&res);
	}
	struct st_kv kv;
	cr_assert(tst_get(&t, "r/1", 6, &kv, &res));
	cr_assert_eq(kv.create_revision, 6);
	cr_assert_eq(kv.version, 1);
	st_result_free(&res);
	cr_assert(tst_get(&t, "r/1", 3, &kv, &res));
	cr_assert_eq(kv.create_revision, 2);
	st_result_free(&res);
	/* prev_kv of an event whose previous version was compacted away */
	struct st_op c = op_compact(5);
	cr_assert_eq(tst_do(&t, &c), 0);
	struct st_events_req er = { .key = B("r/1"), .from_rev = 6, .prev_kv = true };
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 1);
	cr_assert_not(res.resp.u.events.events[0].has_prev_kv, "it was deleted at 4");
	st_result_free(&res);
	er = (struct st_events_req){ .key = B("r/2"), .from_rev = 6, .prev_kv = true };
	tst_put(&t, "r/2", "e");   /* 7 */
	er.from_rev = 7;
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 1);
	cr_assert(res.resp.u.events.events[0].has_prev_kv, "kept by compaction");
	cr_assert(val_is_s(&res.resp.u.events.events[0].prev_kv, "b"));
	st_result_free(&res);
}
