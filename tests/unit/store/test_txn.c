/*
 * test_txn.c - etcd v3 transactions: every compare target and result,
 * compares on missing keys and on ranges, revision sharing, writes-nothing
 * txns, ranges seeing earlier writes, nested txns, the duplicate key rule,
 * op and compare limits, errors rolling back the whole txn.
 */
#include "st_test.h"

static struct tst t;

static void setup(void) { tst_open(&t); }
static void teardown(void) { tst_close(&t); }

TestSuite(txn, .init = setup, .fini = teardown, .timeout = 20);

static struct st_compare cmp_num(const char *k, uint8_t target, uint8_t result,
	int64_t n)
{
	return (struct st_compare){ .target = target, .result = result,
		.key = (const uint8_t *)k, .key_len = strlen(k), .number = n };
}

static struct st_compare cmp_val(const char *k, uint8_t result, const char *v)
{
	return (struct st_compare){ .target = ST_CMP_VALUE, .result = result,
		.key = (const uint8_t *)k, .key_len = strlen(k),
		.value = (const uint8_t *)v, .value_len = strlen(v) };
}

static struct st_op op_txn(const struct st_compare *c, size_t cn,
	const struct st_op *s, size_t sn, const struct st_op *f, size_t fn)
{
	struct st_op op = { .type = ST_OP_TXN };
	op.u.txn = (struct st_txn){ c, cn, s, sn, f, fn };
	return op;
}

/* Runs a txn with one compare and reports which branch ran. */
static bool holds(struct st_compare c)
{
	struct st_result res;
	struct st_op txn = op_txn(&c, 1, NULL, 0, NULL, 0);
	cr_assert_eq(tst_apply(&t, &txn, &res), 0);
	cr_assert_eq(res.resp.type, ST_RESP_TXN);
	bool ok = res.resp.u.txn.succeeded;
	st_result_free(&res);
	return ok;
}

Test(txn, compare_every_target_and_result)
{
	struct st_op g = op_grant(5, 30);
	cr_assert_eq(tst_do(&t, &g), 0);
	tst_put(&t, "k", "m");  /* rev 2: create 2 */
	struct st_op p = op_put_s("k", "m");
	p.u.put.lease = 5;
	cr_assert_eq(tst_do(&t, &p), 0); /* rev 3: version 2, mod 3, lease 5 */
	/* VERSION = 2 */
	cr_assert(holds(cmp_num("k", ST_CMP_VERSION, ST_CMP_EQUAL, 2)));
	cr_assert_not(holds(cmp_num("k", ST_CMP_VERSION, ST_CMP_EQUAL, 1)));
	cr_assert(holds(cmp_num("k", ST_CMP_VERSION, ST_CMP_GREATER, 1)));
	cr_assert_not(holds(cmp_num("k", ST_CMP_VERSION, ST_CMP_GREATER, 2)));
	cr_assert(holds(cmp_num("k", ST_CMP_VERSION, ST_CMP_LESS, 3)));
	cr_assert_not(holds(cmp_num("k", ST_CMP_VERSION, ST_CMP_LESS, 2)));
	cr_assert(holds(cmp_num("k", ST_CMP_VERSION, ST_CMP_NOT_EQUAL, 1)));
	cr_assert_not(holds(cmp_num("k", ST_CMP_VERSION, ST_CMP_NOT_EQUAL, 2)));
	/* CREATE = 2, MOD = 3, LEASE = 5 */
	cr_assert(holds(cmp_num("k", ST_CMP_CREATE, ST_CMP_EQUAL, 2)));
	cr_assert(holds(cmp_num("k", ST_CMP_CREATE, ST_CMP_LESS, 3)));
	cr_assert_not(holds(cmp_num("k", ST_CMP_CREATE, ST_CMP_GREATER, 2)));
	cr_assert(holds(cmp_num("k", ST_CMP_MOD, ST_CMP_EQUAL, 3)));
	cr_assert(holds(cmp_num("k", ST_CMP_MOD, ST_CMP_GREATER, 2)));
	cr_assert_not(holds(cmp_num("k", ST_CMP_MOD, ST_CMP_NOT_EQUAL, 3)));
	cr_assert(holds(cmp_num("k", ST_CMP_LEASE, ST_CMP_EQUAL, 5)));
	cr_assert(holds(cmp_num("k", ST_CMP_LEASE, ST_CMP_NOT_EQUAL, 0)));
	cr_assert_not(holds(cmp_num("k", ST_CMP_LEASE, ST_CMP_LESS, 5)));
	/* VALUE = "m" (bytewise) */
	cr_assert(holds(cmp_val("k", ST_CMP_EQUAL, "m")));
	cr_assert(holds(cmp_val("k", ST_CMP_GREATER, "a")));
	cr_assert(holds(cmp_val("k", ST_CMP_GREATER, "")));
	cr_assert(holds(cmp_val("k", ST_CMP_LESS, "m\x01")));
	cr_assert(holds(cmp_val("k", ST_CMP_NOT_EQUAL, "z")));
	cr_assert_not(holds(cmp_val("k", ST_CMP_LESS, "a")));
	/* a txn with no writes never bumped the revision */
	cr_assert_eq(tst_rev(&t), 3);
}

Test(txn, compare_missing_key_is_zero_value_false)
{
	cr_assert(holds(cmp_num("none", ST_CMP_VERSION, ST_CMP_EQUAL, 0)));
	cr_assert(holds(cmp_num("none", ST_CMP_CREATE, ST_CMP_EQUAL, 0)));
	cr_assert(holds(cmp_num("none", ST_CMP_MOD, ST_CMP_LESS, 1)));
	cr_assert(holds(cmp_num("none", ST_CMP_LEASE, ST_CMP_EQUAL, 0)));
	cr_assert_not(holds(cmp_val("none", ST_CMP_EQUAL, "")));
	cr_assert_not(holds(cmp_val("none", ST_CMP_NOT_EQUAL, "x")));
}

Test(txn, compare_on_range_needs_every_key)
{
	tst_put(&t, "p/a", "1");
	tst_put(&t, "p/b", "1");
	struct st_compare c = cmp_num("p/", ST_CMP_VERSION, ST_CMP_EQUAL, 1);
	c.range_end = (const uint8_t *)"p0";
	c.range_end_len = 2;
	cr_assert(holds(c));
	tst_put(&t, "p/b", "2");
	cr_assert_not(holds(c));
	c.result = ST_CMP_GREATER;
	c.number = 0;
	cr_assert(holds(c));
	/* empty range: zero values */
	c = cmp_num("q/", ST_CMP_VERSION, ST_CMP_EQUAL, 0);
	c.range_end = (const uint8_t *)"q0";
	c.range_end_len = 2;
	cr_assert(holds(c));
}

Test(txn, writes_share_one_revision_and_ranges_see_them)
{
	struct st_result res;
	tst_put(&t, "old", "x"); /* rev 2 */
	struct st_op ops[4] = { op_put_s("a", "1"), op_put_s("b", "2"),
		op_del(B("old"), NULL, 0), op_range(B("a"), B("c")) };
	struct st_op txn = op_txn(NULL, 0, ops, 4, NULL, 0);
	cr_assert_eq(tst_apply(&t, &txn, &res), 0);
	cr_assert(res.resp.u.txn.succeeded);
	cr_assert_eq(res.revision, 3);
	cr_assert_eq(res.resp.u.txn.responses_n, 4);
	struct st_op_resp *r = res.resp.u.txn.responses;
	cr_assert_eq(r[0].type, ST_RESP_PUT);
	cr_assert_eq(r[2].type, ST_RESP_DELETE_RANGE);
	cr_assert_eq(r[2].u.delete_range.deleted, 1);
	cr_assert_eq(r[3].type, ST_RESP_RANGE);
	cr_assert_eq(r[3].u.range.kvs_n, 2, "range sees the txn's puts");
	cr_assert_eq(r[3].u.range.kvs[0].mod_revision, 3);
	cr_assert_eq(r[3].u.range.kvs[1].mod_revision, 3);
	st_result_free(&res);
	cr_assert_eq(tst_rev(&t), 3);
	/* events of the txn are one revision in op order */
	struct st_events_req er = { .key = B("\0"), .range_end = B("\0"), .from_rev = 3 };
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 3);
	cr_assert(kv_is_s(&res.resp.u.events.events[0].kv, "a"));
	cr_assert(kv_is_s(&res.resp.u.events.events[1].kv, "b"));
	cr_assert_eq(res.resp.u.events.events[2].type, ST_EVENT_DELETE);
	st_result_free(&res);
}

Test(txn, failure_branch_and_no_write_no_bump)
{
	struct st_result res;
	struct st_compare c = cmp_num("k", ST_CMP_VERSION, ST_CMP_GREATER, 0);
	struct st_op s[1] = { op_put_s("then", "1") };
	struct st_op f[2] = { op_put_s("else", "1"), op_range(B("else"), NULL, 0) };
	struct st_op txn = op_txn(&c, 1, s, 1, f, 2);
	cr_assert_eq(tst_apply(&t, &txn, &res), 0);
	cr_assert_not(res.resp.u.txn.succeeded);
	cr_assert_eq(res.resp.u.txn.responses_n, 2);
	cr_assert_eq(res.resp.u.txn.responses[1].u.range.kvs_n, 1);
	st_result_free(&res);
	cr_assert_eq(tst_rev(&t), 2);
	/* a txn that only deletes nothing does not bump the revision */
	struct st_op d[1] = { op_del(B("ghost"), NULL, 0) };
	txn = op_txn(NULL, 0, d, 1, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), 0);
	cr_assert_eq(tst_rev(&t), 2);
}

Test(txn, nested_txn)
{
	struct st_result res;
	tst_put(&t, "k", "v"); /* rev 2 */
	struct st_compare ic = cmp_val("k", ST_CMP_EQUAL, "v");
	struct st_op inner_s[1] = { op_put_s("inner", "yes") };
	struct st_op inner_f[1] = { op_put_s("inner", "no") };
	struct st_op outer_s[2] = { op_put_s("k", "changed"),
		op_txn(&ic, 1, inner_s, 1, inner_f, 1) };
	struct st_op txn = op_txn(NULL, 0, outer_s, 2, NULL, 0);
	cr_assert_eq(tst_apply(&t, &txn, &res), 0);
	struct st_op_resp *r = res.resp.u.txn.responses;
	cr_assert_eq(r[1].type, ST_RESP_TXN);
	/* nested compares see the state before the txn (etcd 3.4) */
	cr_assert(r[1].u.txn.succeeded);
	cr_assert_eq(r[1].u.txn.responses_n, 1);
	st_result_free(&res);
	struct st_kv kv;
	cr_assert(tst_get(&t, "inner", 0, &kv, &res));
	cr_assert(val_is_s(&kv, "yes"));
	cr_assert_eq(kv.mod_revision, 3, "nested writes share the revision");
	st_result_free(&res);
	cr_assert_eq(tst_rev(&t), 3);
}

Test(txn, duplicate_keys_rejected)
{
	struct st_result res;
	struct st_op two_puts[2] = { op_put_s("a", "1"), op_put_s("a", "2") };
	struct st_op txn = op_txn(NULL, 0, two_puts, 2, NULL, 0);
	cr_assert_eq(tst_apply(&t, &txn, &res), ST_ERR_DUPLICATE_KEY);
	cr_assert_str_eq(res.msg, "etcdserver: duplicate key given in txn request");
	st_result_free(&res);
	struct st_op put_del[2] = { op_put_s("a/x", "1"), op_del(B("a/"), B("a0")) };
	txn = op_txn(NULL, 0, put_del, 2, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_DUPLICATE_KEY);
	/* same key in success and failure is fine (only one runs) */
	struct st_op s[1] = { op_put_s("a", "1") }, f[1] = { op_put_s("a", "2") };
	txn = op_txn(NULL, 0, s, 1, f, 1);
	cr_assert_eq(tst_do(&t, &txn), 0);
	/* across a nested txn in the same branch */
	struct st_op inner[1] = { op_put_s("b", "1") };
	struct st_op outer[2] = { op_put_s("b", "2"), op_txn(NULL, 0, inner, 1, NULL, 0) };
	txn = op_txn(NULL, 0, outer, 2, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_DUPLICATE_KEY);
	/* nested delete covering the parent's put */
	struct st_op idel[1] = { op_del(B("c"), B("e")) };
	struct st_op outer2[2] = { op_put_s("d", "2"), op_txn(NULL, 0, NULL, 0, idel, 1) };
	txn = op_txn(NULL, 0, outer2, 2, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_DUPLICATE_KEY);
	/* a nested txn putting one key in both of its branches is fine */
	struct st_op ns[1] = { op_put_s("e", "1") }, nf[1] = { op_put_s("e", "2") };
	struct st_op outer3[1] = { op_txn(NULL, 0, ns, 1, nf, 1) };
	txn = op_txn(NULL, 0, outer3, 1, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), 0);
	/* two overlapping deletes are allowed */
	struct st_op dd[2] = { op_del(B("a"), B("z")), op_del(B("b"), NULL, 0) };
	txn = op_txn(NULL, 0, dd, 2, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), 0);
	cr_assert_eq(tst_rev(&t), 4, "rejected txns changed nothing");
}

Test(txn, op_and_compare_limits)
{
	static struct st_op ops[ST_TXN_OPS_MAX + 1];
	static char keys[ST_TXN_OPS_MAX + 1][8];
	static struct st_compare cmps[ST_TXN_COMPARES_MAX + 1];
	struct st_result res;
	for (size_t i = 0; i <= ST_TXN_OPS_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%03zu", i);
		ops[i] = op_put_s(keys[i], "v");
	}
	struct st_op txn = op_txn(NULL, 0, ops, ST_TXN_OPS_MAX + 1, NULL, 0);
	cr_assert_eq(tst_apply(&t, &txn, &res), ST_ERR_TOO_MANY_OPS);
	cr_assert_str_eq(res.msg, "etcdserver: too many operations in txn request");
	st_result_free(&res);
	txn = op_txn(NULL, 0, NULL, 0, ops, ST_TXN_OPS_MAX + 1);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_TOO_MANY_OPS, "the failure branch counts too");
	txn = op_txn(NULL, 0, ops, ST_TXN_OPS_MAX, NULL, 0);
	cr_assert_eq(tst_apply(&t, &txn, &res), 0);
	cr_assert_eq(res.revision, 2);
	st_result_free(&res);
	for (size_t i = 0; i <= ST_TXN_COMPARES_MAX; i++)
		cmps[i] = cmp_num("k000", ST_CMP_VERSION, ST_CMP_EQUAL, 1);
	txn = op_txn(cmps, ST_TXN_COMPARES_MAX + 1, NULL, 0, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_TOO_MANY_OPS,
		"compares count against the same limit, as in etcd");
	txn = op_txn(cmps, ST_TXN_COMPARES_MAX, NULL, 0, NULL, 0);
	cr_assert(holds(cmps[0]));
	cr_assert_eq(tst_do(&t, &txn), 0);
	/* nesting deeper than ST_TXN_DEPTH_MAX */
	struct st_op nest[ST_TXN_DEPTH_MAX + 1];
	nest[0] = op_put_s("deep", "1");
	for (size_t i = 1; i <= ST_TXN_DEPTH_MAX; i++)
		nest[i] = op_txn(NULL, 0, &nest[i - 1], 1, NULL, 0);
	cr_assert_eq(tst_do(&t, &nest[ST_TXN_DEPTH_MAX]), 0);
	struct st_op deeper = op_txn(NULL, 0, &nest[ST_TXN_DEPTH_MAX], 1, NULL, 0);
	cr_assert_eq(tst_do(&t, &deeper), ST_ERR_TXN_TOO_DEEP);
	/* compact and lease ops are not allowed inside a txn */
	struct st_op c[1] = { op_compact(1) };
	txn = op_txn(NULL, 0, c, 1, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_INVALID);
}

Test(txn, op_error_rolls_back_whole_txn)
{
	struct st_result res;
	struct st_op bad = op_put_s("b", "2");
	bad.u.put.lease = 999;
	struct st_op ops[2] = { op_put_s("a", "1"), bad };
	struct st_op txn = op_txn(NULL, 0, ops, 2, NULL, 0);
	cr_assert_eq(tst_apply(&t, &txn, &res), ST_ERR_LEASE_NOT_FOUND);
	cr_assert_eq(res.revision, 1);
	st_result_free(&res);
	struct st_kv kv;
	cr_assert_not(tst_get(&t, "a", 0, &kv, &res));
	st_result_free(&res);
	cr_assert_eq(tst_rev(&t), 1);
	struct st_op iv = op_put_s("c", "");
	iv.u.put.ignore_value = true;
	struct st_op ops2[2] = { op_put_s("a", "1"), iv };
	txn = op_txn(NULL, 0, ops2, 2, NULL, 0);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_KEY_NOT_FOUND);
	cr_assert_eq(tst_rev(&t), 1);
}
