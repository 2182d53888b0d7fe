/*
 * test_etcd.c - the store's answers where a differential run against etcd
 * 3.4.23 (tests/etcd_diff/DIVERGENCES.txt) found the store answering
 * differently: compact(0), negative numbers, lease TTL/id ranges, txn op
 * budgets, the duplicate-key rule for "\0"-ended deletes, error texts, the
 * checks before a txn applies and two writes of one key in one revision.
 * Each test names the divergence (Dn) it pins down.
 */
#include "st_test.h"

static struct tst t;

static void setup(void) { tst_open(&t); }
static void teardown(void) { tst_close(&t); }

TestSuite(etcd, .init = setup, .fini = teardown, .timeout = 30);

static struct st_compare cmp_num(const char *k, uint8_t target, uint8_t result,
	int64_t n)
{
	return (struct st_compare){ .target = target, .result = result,
		.key = (const uint8_t *)k, .key_len = strlen(k), .number = n };
}

static struct st_op op_txn(const struct st_compare *c, size_t cn,
	const struct st_op *s, size_t sn, const struct st_op *f, size_t fn)
{
	struct st_op op = { .type = ST_OP_TXN };
	op.u.txn = (struct st_txn){ c, cn, s, sn, f, fn };
	return op;
}

static st_rev compact_rev(void)
{
	struct st_status s;
	cr_assert_eq(st_status(t.st, &s), 0);
	return s.compact_revision;
}

static struct st_op range_all(void)
{
	return op_range(B("\0"), B("\0"));
}

/* Applies a range op and returns its kvs_n and count. */
static int range_op(const struct st_op *op, size_t *kvs_n, int64_t *count)
{
	struct st_result res;
	int err = tst_apply(&t, op, &res);
	if (err == 0) {
		cr_assert_eq(res.resp.type, ST_RESP_RANGE);
		*kvs_n = res.resp.u.range.kvs_n;
		*count = res.resp.u.range.count;
	}
	st_result_free(&res);
	return err;
}

Test(etcd, d1_compact_zero_allowed_until_first_compaction)
{
	struct st_op c = op_compact(-1);
	cr_assert_eq(tst_do(&t, &c), ST_ERR_COMPACTED);
	c = op_compact(0);
	cr_assert_eq(tst_do(&t, &c), 0, "compact(0) on a fresh store");
	cr_assert_eq(compact_rev(), 0);
	cr_assert_eq(tst_do(&t, &c), ST_ERR_COMPACTED, "but only once");
	c = op_compact(1);
	cr_assert_eq(tst_do(&t, &c), 0);
	cr_assert_eq(compact_rev(), 1);
	cr_assert_eq(tst_do(&t, &c), ST_ERR_COMPACTED);
	cr_assert_eq(tst_rev(&t), 1);
}

Test(etcd, d1_compact_one_on_fresh_store)
{
	struct st_op c = op_compact(1);
	cr_assert_eq(tst_do(&t, &c), 0);
	c = op_compact(0);
	cr_assert_eq(tst_do(&t, &c), ST_ERR_COMPACTED);
}

Test(etcd, d2_negative_numbers_in_a_range)
{
	size_t n;
	int64_t count;
	tst_put(&t, "a", "1");
	tst_put(&t, "b", "2");
	struct st_op r = range_all();
	r.u.range.limit = -1;
	cr_assert_eq(range_op(&r, &n, &count), 0);
	cr_assert_eq(n, 2, "limit -1 = no limit");
	r = range_all();
	r.u.range.min_mod_revision = -1;
	r.u.range.min_create_revision = -4;
	cr_assert_eq(range_op(&r, &n, &count), 0);
	cr_assert_eq(n, 2, "a negative minimum filters nothing");
	r = range_all();
	r.u.range.max_mod_revision = -1;
	cr_assert_eq(range_op(&r, &n, &count), 0);
	cr_assert_eq(n, 0, "a negative maximum filters everything (mod > -1)");
	cr_assert_eq(count, 2);
	r = range_all();
	r.u.range.revision = -1;
	cr_assert_eq(range_op(&r, &n, &count), 0);
	cr_assert_eq(n, 2, "revision -1 = current");
	struct st_result res;
	struct st_range q = r.u.range;
	cr_assert_eq(st_range(t.st, &q, &res), 0);
	cr_assert_eq(res.resp.u.range.kvs_n, 2);
	st_result_free(&res);
}

Test(etcd, d2_negative_revision_in_a_txn_after_any_compaction)
{
	tst_put(&t, "a", "1");
	struct st_op r[1] = { range_all() };
	r[0].u.range.revision = -1;
	struct st_op txn = op_txn(NULL, 0, r, 1, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), 0, "never compacted: -1 is current");
	struct st_op c = op_compact(0);
	cr_assert_eq(tst_do(&t, &c), 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_COMPACTED,
		"etcd's txn check: -1 < compactMainRev 0");
	size_t n;
	int64_t count;
	cr_assert_eq(range_op(&r[0], &n, &count), 0, "outside a txn: current");
	cr_assert_eq(n, 1);
}

Test(etcd, d3_d4_lease_ttl_and_id_ranges)
{
	struct st_result res;
	struct st_op g = op_grant(5, 0);
	cr_assert_eq(tst_apply(&t, &g, &res), 0);
	cr_assert_eq(res.resp.u.lease_grant.ttl_s, 0, "recorded as given");
	st_result_free(&res);
	g = op_grant(6, -5);
	cr_assert_eq(tst_do(&t, &g), 0);
	g = op_grant(-7, 3600);
	cr_assert_eq(tst_apply(&t, &g, &res), 0);
	cr_assert_eq(res.resp.u.lease_grant.id, -7);
	st_result_free(&res);
	struct st_op p = op_put_s("k", "v");
	p.u.put.lease = -7;
	cr_assert_eq(tst_do(&t, &p), 0);
	cr_assert_eq(st_lease_list(t.st, &res), 0);
	struct st_lease_list_resp *l = &res.resp.u.lease_list;
	cr_assert_eq(l->leases_n, 3);
	cr_assert_eq(l->leases[0].id, -7, "ascending: negative ids first");
	cr_assert_eq(l->leases[1].id, 5);
	cr_assert_eq(l->leases[2].id, 6);
	cr_assert_eq(l->leases[2].ttl_s, -5);
	st_result_free(&res);
	cr_assert_eq(st_lease_ttl(t.st, -7, true, &res), 0);
	cr_assert_eq(res.resp.u.lease_ttl.keys_n, 1);
	st_result_free(&res);
	struct st_op v = op_revoke(-7);
	cr_assert_eq(tst_do(&t, &v), 0);
	cr_assert_eq(tst_rev(&t), 3, "the revoke deleted k");
	v = op_revoke(5);
	cr_assert_eq(tst_do(&t, &v), 0);
	v = op_revoke(0);
	cr_assert_eq(tst_do(&t, &v), ST_ERR_LEASE_NOT_FOUND);
	g = op_grant(0, 10);
	cr_assert_eq(tst_apply(&t, &g, &res), 0);
	cr_assert_gt(res.resp.u.lease_grant.id, 0, "0 still means: choose one");
	st_result_free(&res);
}

Test(etcd, d5_d6_txn_op_budget)
{
	static struct st_op ranges[ST_TXN_OPS_MAX];
	static struct st_compare cmps[ST_TXN_OPS_MAX + 1];
	struct st_result res;
	for (size_t i = 0; i < ST_TXN_OPS_MAX; i++)
		ranges[i] = op_range(B("a"), NULL, 0);
	for (size_t i = 0; i <= ST_TXN_OPS_MAX; i++)
		cmps[i] = cmp_num("a", ST_CMP_VERSION, ST_CMP_EQUAL, 0);
	struct st_op one[1] = { op_range(B("a"), NULL, 0) };
	struct st_op txn = op_txn(cmps, ST_TXN_OPS_MAX + 1, one, 1, NULL, 0);
	cr_assert_eq(tst_apply(&t, &txn, &res), ST_ERR_TOO_MANY_OPS);
	cr_assert_str_eq(res.msg, "etcdserver: too many operations in txn request");
	st_result_free(&res);
	/* [range, txn{127 ranges}]: the nested txn may use 128 - 2 ops */
	struct st_op outer[2] = { op_range(B("a"), NULL, 0),
		op_txn(NULL, 0, ranges, 127, NULL, 0) };
	txn = op_txn(NULL, 0, outer, 2, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_TOO_MANY_OPS);
	outer[1] = op_txn(NULL, 0, ranges, 126, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), 0);
	/* 100 compares: the nested txn may use 28 */
	struct st_op nest[1] = { op_txn(NULL, 0, ranges, 29, NULL, 0) };
	txn = op_txn(cmps, 100, nest, 1, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_TOO_MANY_OPS);
	nest[0] = op_txn(NULL, 0, ranges, 28, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), 0);
	/* a nested txn's own compares count against its budget too */
	nest[0] = op_txn(cmps, 29, NULL, 0, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_TOO_MANY_OPS);
}

/* Number of DELETE and PUT events of key k from revision `from`. */
static size_t events_of(const char *k, st_rev from, struct st_result *res)
{
	struct st_events_req req = { .key = (const uint8_t *)k,
		.key_len = strlen(k), .from_rev = from, .prev_kv = true };
	cr_assert_eq(st_events(t.st, &req, res), 0);
	return res->resp.u.events.events_n;
}

Test(etcd, d7_zero_ended_delete_escapes_duplicate_check)
{
	struct st_result res;
	struct st_kv kv;
	tst_put(&t, "b", "1");
	tst_put(&t, "zz1", "old");                  /* 3 */
	struct st_op ops[2] = { op_del(B("a"), B("\0")), op_put_s("zz1", "new") };
	struct st_op txn = op_txn(NULL, 0, ops, 2, NULL, 0);
	cr_assert_eq(tst_apply(&t, &txn, &res), 0); /* 4 */
	cr_assert_eq(res.resp.u.txn.responses[0].u.delete_range.deleted, 2);
	st_result_free(&res);
	cr_assert(tst_get(&t, "zz1", 0, &kv, &res));
	cr_assert(val_is_s(&kv, "new"));
	cr_assert_eq(kv.create_revision, 4, "re-created after its delete");
	cr_assert_eq(kv.version, 1);
	st_result_free(&res);
	cr_assert_not(tst_get(&t, "b", 0, &kv, &res));
	st_result_free(&res);
	/* put then delete through a "\0" end: the delete removes it again */
	struct st_op ops2[2] = { op_put_s("zz3", "x"), op_del(B("zz"), B("\0")) };
	txn = op_txn(NULL, 0, ops2, 2, NULL, 0);
	cr_assert_eq(tst_apply(&t, &txn, &res), 0); /* 5 */
	cr_assert_eq(res.resp.u.txn.responses[1].u.delete_range.deleted, 2);
	st_result_free(&res);
	cr_assert_eq(events_of("zz3", 5, &res), 2, "P and D of zz3 at 5");
	st_result_free(&res);
	/* ordinary ranges still conflict */
	struct st_op ops3[2] = { op_del(B("a"), B("zz")), op_put_s("b", "x") };
	txn = op_txn(NULL, 0, ops3, 2, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_DUPLICATE_KEY);
	cr_assert_eq(tst_rev(&t), 5);
}

Test(etcd, d7_where_etcd_panics_the_store_answers_an_error)
{
	struct st_result res;
	struct st_kv kv;
	tst_put(&t, "e", "1");                      /* 2 */
	struct st_op il = op_put_s("e", "2");
	il.u.put.ignore_lease = true;
	struct st_op ops[3] = { op_del(B("a"), B("\0")), op_del(B("a"), B("b")), il };
	struct st_op txn = op_txn(NULL, 0, NULL, 0, ops, 3);
	cr_assert_eq(tst_do(&t, &txn), 0, "no compare: success branch (empty)");
	txn = op_txn(NULL, 0, ops, 3, NULL, 0);
	cr_assert_eq(tst_apply(&t, &txn, &res), ST_ERR_KEY_NOT_FOUND);
	cr_assert_eq(res.revision, 2);
	st_result_free(&res);
	cr_assert_eq(tst_rev(&t), 2, "nothing changed");
	cr_assert(tst_get(&t, "e", 0, &kv, &res));
	cr_assert(val_is_s(&kv, "1"));
	st_result_free(&res);
	cr_assert_eq(events_of("e", 0, &res), 1, "no trace in the history");
	st_result_free(&res);
	struct st_status s;
	cr_assert_eq(st_status(t.st, &s), 0);
	cr_assert_eq(s.keys, 1);
}

Test(etcd, d8_error_texts)
{
	cr_assert_str_eq(st_strerror(ST_ERR_COMPACTED),
		"etcdserver: mvcc: required revision has been compacted");
	cr_assert_str_eq(st_strerror(ST_ERR_FUTURE_REV),
		"etcdserver: mvcc: required revision is a future revision");
	cr_assert_str_eq(st_strerror(ST_ERR_VALUE_PROVIDED),
		"etcdserver: value is provided");
	cr_assert_str_eq(st_strerror(ST_ERR_LEASE_PROVIDED),
		"etcdserver: lease is provided");
	cr_assert_eq(ST_ERR_TXN_TOO_DEEP, -22, "numbers stay stable");
}

Test(etcd, d9_txn_range_checked_against_revision_before_txn)
{
	tst_put(&t, "a", "1");                      /* 2 */
	struct st_op ops[2] = { op_put_s("a", "2"), op_range(B("a"), NULL, 0) };
	ops[1].u.range.revision = 3;
	struct st_op txn = op_txn(NULL, 0, ops, 2, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_FUTURE_REV);
	cr_assert_eq(tst_rev(&t), 2, "nothing applied");
	ops[1].u.range.revision = 2;                /* before the txn: fine */
	struct st_result res;
	cr_assert_eq(tst_apply(&t, &txn, &res), 0);
	struct st_range_resp *r = &res.resp.u.txn.responses[1].u.range;
	cr_assert_eq(r->kvs_n, 1);
	cr_assert_eq(r->kvs[0].mod_revision, 2, "reads revision 2, not the txn's");
	st_result_free(&res);
}

Test(etcd, d11_put_checks_lease_before_key)
{
	struct st_op p = op_put(B("missing"), NULL, 0);
	p.u.put.ignore_value = true;
	p.u.put.lease = 777;
	cr_assert_eq(tst_do(&t, &p), ST_ERR_LEASE_NOT_FOUND);
	/* inside a txn etcd's checkRequestPut checks the key first */
	struct st_op txn = op_txn(NULL, 0, &p, 1, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_KEY_NOT_FOUND);
}

Test(etcd, d12_txn_checks_puts_before_ranges)
{
	tst_put(&t, "a", "1");
	tst_put(&t, "a", "2");
	tst_put(&t, "a", "3");                      /* 4 */
	struct st_op c = op_compact(3);
	cr_assert_eq(tst_do(&t, &c), 0);
	struct st_op old = op_range(B("a"), NULL, 0);
	old.u.range.revision = 2;
	struct st_op il = op_put_s("nokey", "");
	il.u.put.ignore_lease = true;
	struct st_op inner[1] = { il };
	struct st_op ops[3] = { old, op_txn(NULL, 0, inner, 1, NULL, 0),
		op_put_s("b", "x") };
	struct st_op txn = op_txn(NULL, 0, ops, 3, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_KEY_NOT_FOUND,
		"a nested put's check comes before the range's");
	txn = op_txn(NULL, 0, ops, 1, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_COMPACTED);
	old.u.range.revision = 3;
	txn = op_txn(NULL, 0, &old, 1, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), 0, "at the compact revision: fine");
	cr_assert_eq(tst_rev(&t), 4);
}

/* txn [txn{put K}, put "a/1", txn{delete K}]: both writes of K share one
 * revision; both events must stay in the history. */
static void put_then_delete_in_one_rev(const char *k)
{
	struct st_op ip[1] = { op_put_s(k, "x") };
	struct st_op id[1] = { op_del((const uint8_t *)k, strlen(k), NULL, 0) };
	struct st_op ops[3] = { op_txn(NULL, 0, NULL, 0, ip, 1),
		op_put_s("a/1", "v"), op_txn(NULL, 0, NULL, 0, id, 1) };
	struct st_compare no = cmp_num("nokey", ST_CMP_VERSION, ST_CMP_GREATER, 0);
	ops[0].u.txn.compares = &no;
	ops[0].u.txn.compares_n = 1;
	ops[2].u.txn.compares = &no;
	ops[2].u.txn.compares_n = 1;
	struct st_op txn = op_txn(NULL, 0, ops, 3, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), 0);
}

Test(etcd, d14_two_writes_of_one_key_in_one_revision_keep_both_events)
{
	struct st_result res;
	struct st_kv kv;
	put_then_delete_in_one_rev("\xff");         /* 2 */
	cr_assert_eq(events_of("\xff", 0, &res), 2);
	struct st_event *ev = res.resp.u.events.events;
	cr_assert_eq(ev[0].type, ST_EVENT_PUT);
	cr_assert_eq(ev[0].kv.mod_revision, 2);
	cr_assert_eq(ev[0].kv.version, 1);
	cr_assert_not(ev[0].has_prev_kv);
	cr_assert_eq(ev[1].type, ST_EVENT_DELETE);
	cr_assert_eq(ev[1].kv.mod_revision, 2);
	cr_assert_not(ev[1].has_prev_kv, "prev_kv is the key before the txn");
	st_result_free(&res);
	/* a key that existed: both events carry the pre-txn version */
	tst_put(&t, "d/1", "old");                  /* 3 */
	put_then_delete_in_one_rev("d/1");          /* 4 */
	cr_assert_eq(events_of("d/1", 4, &res), 2);
	ev = res.resp.u.events.events;
	cr_assert_eq(ev[0].type, ST_EVENT_PUT);
	cr_assert_eq(ev[0].kv.version, 2);
	cr_assert_eq(ev[0].kv.create_revision, 3);
	cr_assert(ev[0].has_prev_kv);
	cr_assert(val_is_s(&ev[0].prev_kv, "old"));
	cr_assert(ev[1].has_prev_kv);
	cr_assert(val_is_s(&ev[1].prev_kv, "old"));
	st_result_free(&res);
	/* the whole-keyspace history has them too, in op order */
	struct st_events_req all = { .key = B("\0"), .range_end = B("\0") };
	all.key_len = 1;
	all.range_end_len = 1;
	cr_assert_eq(st_events(t.st, &all, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 7);
	ev = res.resp.u.events.events;
	cr_assert(kv_is_s(&ev[4].kv, "d/1") && ev[4].type == ST_EVENT_PUT);
	cr_assert(kv_is_s(&ev[5].kv, "a/1"));
	cr_assert(kv_is_s(&ev[6].kv, "d/1") && ev[6].type == ST_EVENT_DELETE);
	st_result_free(&res);
	/* the state at that revision is the last write */
	cr_assert_not(tst_get(&t, "d/1", 4, &kv, &res));
	st_result_free(&res);
	cr_assert(tst_get(&t, "d/1", 3, &kv, &res));
	st_result_free(&res);
}

Test(etcd, d14_compaction_of_a_key_written_twice_in_one_revision)
{
	struct st_result res;
	struct st_kv kv;
	struct st_status s;
	tst_put(&t, "d/1", "old");                  /* 2 */
	put_then_delete_in_one_rev("d/1");          /* 3 */
	tst_put(&t, "k", "1");                      /* 4 */
	/* delete through "\0" then re-put: the last write is a put */
	struct st_op ops[2] = { op_del(B("k"), B("\0")), op_put_s("k", "2") };
	struct st_op txn = op_txn(NULL, 0, ops, 2, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), 0);         /* 5 */
	cr_assert_eq(events_of("k", 5, &res), 2);
	struct st_event *ev = res.resp.u.events.events;
	cr_assert_eq(ev[0].type, ST_EVENT_DELETE);
	cr_assert(ev[0].has_prev_kv);
	cr_assert_eq(ev[1].type, ST_EVENT_PUT);
	cr_assert_eq(ev[1].kv.version, 1);
	cr_assert_not(ev[1].has_prev_kv, "a creating put has no prev_kv (etcd)");
	st_result_free(&res);
	struct st_op c = op_compact(3);
	cr_assert_eq(tst_do(&t, &c), 0);
	cr_assert_not(tst_get(&t, "d/1", 3, &kv, &res), "deleted at 3");
	st_result_free(&res);
	c = op_compact(5);
	cr_assert_eq(tst_do(&t, &c), 0);
	cr_assert(tst_get(&t, "k", 5, &kv, &res));
	cr_assert(val_is_s(&kv, "2"));
	cr_assert_eq(kv.create_revision, 5);
	st_result_free(&res);
	/* only k@5 (put) and a/1@3 survive: the logical size says so */
	cr_assert_eq(st_status(t.st, &s), 0);
	cr_assert_eq(s.logical_bytes, (1 + 1 + ST_RECORD_BYTES_OVERHEAD) +
		(3 + 1 + ST_RECORD_BYTES_OVERHEAD));
	cr_assert_eq(s.keys, 2);
	struct st_events_req all = { .key = B("\0"), .range_end = B("\0"),
		.from_rev = 6 };
	all.key_len = 1;
	all.range_end_len = 1;
	cr_assert_eq(st_events(t.st, &all, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 0);
	st_result_free(&res);
}

/* Found by the model test after D7: a nested txn putting one key in both
 * branches, itself nested, was a false duplicate (the key was listed twice
 * in the set handed to the grandparent). etcd 3.4.23 accepts it. */
Test(etcd, nested_both_branch_put_is_not_a_duplicate_two_levels_up)
{
	struct st_op s1[1] = { op_put_s("a", "1") }, f1[1] = { op_put_s("a", "2") };
	struct st_op mid[1] = { op_txn(NULL, 0, s1, 1, f1, 1) };
	struct st_op top[1] = { op_txn(NULL, 0, mid, 1, NULL, 0) };
	struct st_op txn = op_txn(NULL, 0, top, 1, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), 0);
	cr_assert_eq(tst_rev(&t), 2);
	struct st_op top2[2] = { top[0], op_put_s("a", "3") };
	txn = op_txn(NULL, 0, top2, 2, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_DUPLICATE_KEY, "a real duplicate");
}
