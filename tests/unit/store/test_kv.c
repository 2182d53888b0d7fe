/*
 * test_kv.c - put / range / delete_range with etcd v3 semantics: revisions,
 * versions, range_end rules, count/more/limit, sort defaults, filters,
 * ignore_value/ignore_lease, deleting nothing, bad input changing nothing.
 */
#include "st_test.h"

static struct tst t;

static void setup(void) { tst_open(&t); }
static void teardown(void) { tst_close(&t); }

TestSuite(kv, .init = setup, .fini = teardown, .timeout = 20);

Test(kv, empty_store_is_revision_1_and_first_write_is_2)
{
	struct st_status s;
	cr_assert_eq(st_status(t.st, &s), 0);
	cr_assert_eq(s.revision, 1);
	cr_assert_eq(s.compact_revision, 0);
	cr_assert_eq(s.applied_index, 0);
	struct st_result res;
	struct st_op op = op_put_s("a", "1");
	cr_assert_eq(tst_apply(&t, &op, &res), 0);
	cr_assert_eq(res.revision, 2);
	st_result_free(&res);
	cr_assert_eq(tst_rev(&t), 2);
}

Test(kv, put_sets_create_mod_version)
{
	struct st_result res;
	struct st_kv kv;
	tst_put(&t, "a", "1");      /* rev 2 */
	tst_put(&t, "b", "x");      /* rev 3 */
	tst_put(&t, "a", "2");      /* rev 4 */
	cr_assert(tst_get(&t, "a", 0, &kv, &res));
	cr_assert(val_is_s(&kv, "2"));
	cr_assert_eq(kv.create_revision, 2);
	cr_assert_eq(kv.mod_revision, 4);
	cr_assert_eq(kv.version, 2);
	cr_assert_eq(kv.lease, 0);
	st_result_free(&res);
	/* delete then re-create: version restarts at 1, new create revision */
	struct st_op d = op_del(B("a"), NULL, 0);
	cr_assert_eq(tst_do(&t, &d), 0); /* rev 5 */
	cr_assert_not(tst_get(&t, "a", 0, &kv, &res));
	st_result_free(&res);
	tst_put(&t, "a", "3");      /* rev 6 */
	cr_assert(tst_get(&t, "a", 0, &kv, &res));
	cr_assert_eq(kv.create_revision, 6);
	cr_assert_eq(kv.version, 1);
	st_result_free(&res);
	/* history: at rev 4 the value was "2", at rev 5 gone, at rev 2 "1" */
	cr_assert(tst_get(&t, "a", 4, &kv, &res));
	cr_assert(val_is_s(&kv, "2"));
	st_result_free(&res);
	cr_assert_not(tst_get(&t, "a", 5, &kv, &res));
	st_result_free(&res);
	cr_assert(tst_get(&t, "a", 2, &kv, &res));
	cr_assert(val_is_s(&kv, "1"));
	cr_assert_eq(res.revision, 6, "header revision is the current one");
	st_result_free(&res);
}

Test(kv, put_prev_kv)
{
	struct st_result res;
	struct st_op op = op_put_s("k", "v1");
	op.u.put.prev_kv = true;
	cr_assert_eq(tst_apply(&t, &op, &res), 0);
	cr_assert_eq(res.resp.type, ST_RESP_PUT);
	cr_assert_not(res.resp.u.put.has_prev_kv);
	st_result_free(&res);
	op = op_put_s("k", "v2");
	op.u.put.prev_kv = true;
	cr_assert_eq(tst_apply(&t, &op, &res), 0);
	cr_assert(res.resp.u.put.has_prev_kv);
	cr_assert(val_is_s(&res.resp.u.put.prev_kv, "v1"));
	cr_assert_eq(res.resp.u.put.prev_kv.mod_revision, 2);
	st_result_free(&res);
}

Test(kv, ignore_value_and_ignore_lease)
{
	struct st_result res;
	struct st_kv kv;
	struct st_op op = op_put(B("k"), NULL, 0);
	op.u.put.ignore_value = true;
	cr_assert_eq(tst_apply(&t, &op, &res), ST_ERR_KEY_NOT_FOUND);
	cr_assert_str_eq(res.msg, "etcdserver: key not found");
	cr_assert_eq(res.revision, 1);
	st_result_free(&res);
	op.u.put.ignore_value = false;
	op.u.put.ignore_lease = true;
	cr_assert_eq(tst_do(&t, &op), ST_ERR_KEY_NOT_FOUND);
	cr_assert_eq(tst_rev(&t), 1, "failed ops do not bump the revision");

	struct st_op g = op_grant(7, 60);
	cr_assert_eq(tst_do(&t, &g), 0);
	op = op_put_s("k", "orig");
	op.u.put.lease = 7;
	cr_assert_eq(tst_do(&t, &op), 0);
	/* ignore_value keeps the value, takes the new lease (0 = detach) */
	op = op_put(B("k"), NULL, 0);
	op.u.put.ignore_value = true;
	cr_assert_eq(tst_do(&t, &op), 0);
	cr_assert(tst_get(&t, "k", 0, &kv, &res));
	cr_assert(val_is_s(&kv, "orig"));
	cr_assert_eq(kv.lease, 0);
	cr_assert_eq(kv.version, 2);
	st_result_free(&res);
	/* ignore_lease keeps the lease */
	op = op_put_s("k", "leased");
	op.u.put.lease = 7;
	cr_assert_eq(tst_do(&t, &op), 0);
	op = op_put_s("k", "new");
	op.u.put.ignore_lease = true;
	cr_assert_eq(tst_do(&t, &op), 0);
	cr_assert(tst_get(&t, "k", 0, &kv, &res));
	cr_assert(val_is_s(&kv, "new"));
	cr_assert_eq(kv.lease, 7);
	st_result_free(&res);
	/* a value together with ignore_value is refused, as in etcd */
	op = op_put_s("k", "x");
	op.u.put.ignore_value = true;
	cr_assert_eq(tst_apply(&t, &op, &res), ST_ERR_VALUE_PROVIDED);
	cr_assert_str_eq(res.msg, "etcdserver: value is provided");
	st_result_free(&res);
	op = op_put_s("k", "x");
	op.u.put.ignore_lease = true;
	op.u.put.lease = 7;
	cr_assert_eq(tst_apply(&t, &op, &res), ST_ERR_LEASE_PROVIDED);
	cr_assert_str_eq(res.msg, "etcdserver: lease is provided");
	st_result_free(&res);
}

Test(kv, put_unknown_lease_fails_and_changes_nothing)
{
	struct st_result res;
	struct st_op op = op_put_s("k", "v");
	op.u.put.lease = 12345;
	cr_assert_eq(tst_apply(&t, &op, &res), ST_ERR_LEASE_NOT_FOUND);
	cr_assert_str_eq(res.msg, "etcdserver: requested lease not found");
	st_result_free(&res);
	cr_assert_eq(tst_rev(&t), 1);
	cr_assert_eq(st_applied_index(t.st), 1, "the failing entry still counts as applied");
}

static void put_keys(void)
{
	const char *keys[] = { "a", "a/1", "a/2", "a/3", "b", "c" };
	for (size_t i = 0; i < 6; i++)
		tst_put(&t, keys[i], keys[i]);
}

static size_t range_n(const uint8_t *k, size_t kl, const uint8_t *e, size_t el,
	int64_t *count)
{
	struct st_result res;
	struct st_range req = { .key = k, .key_len = kl, .range_end = e,
		.range_end_len = el };
	tst_range(&t, &req, &res);
	size_t n = res.resp.u.range.kvs_n;
	if (count)
		*count = res.resp.u.range.count;
	st_result_free(&res);
	return n;
}

Test(kv, range_end_rules)
{
	int64_t count;
	put_keys();
	cr_assert_eq(range_n(B("a"), NULL, 0, NULL), 1, "empty range_end: one key");
	cr_assert_eq(range_n(B("a/"), B("a0"), &count), 3, "prefix a/");
	cr_assert_eq(count, 3);
	cr_assert_eq(range_n(B("a/2"), B("\0"), NULL), 4, "\\0: every key >= key");
	cr_assert_eq(range_n(B("\0"), B("\0"), NULL), 6, "\\0,\\0: all keys");
	cr_assert_eq(range_n(B("b"), B("a"), NULL), 0, "range_end < key: empty");
	cr_assert_eq(range_n(B("zz"), NULL, 0, NULL), 0, "missing key");
	uint8_t end[8];
	size_t el = st_prefix_end(B("a"), end);
	cr_assert_eq(range_n(B("a"), end, el, NULL), 4);
	el = st_prefix_end(B("\xff\xff"), end);
	cr_assert_eq(el, 1);
	cr_assert_eq(end[0], 0);
}

Test(kv, count_ignores_limit_and_more_flag)
{
	struct st_result res;
	put_keys();
	struct st_range req = { .key = B("\0"), .range_end = B("\0"), .limit = 2 };
	req.key_len = 1;
	tst_range(&t, &req, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 2);
	cr_assert_eq(res.resp.u.range.count, 6);
	cr_assert(res.resp.u.range.more);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "a"));
	cr_assert(kv_is_s(&res.resp.u.range.kvs[1], "a/1"));
	st_result_free(&res);
	req.limit = 6;
	tst_range(&t, &req, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 6);
	cr_assert_not(res.resp.u.range.more);
	st_result_free(&res);
	req.limit = 0;
	req.count_only = true;
	tst_range(&t, &req, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 0);
	cr_assert_eq(res.resp.u.range.count, 6);
	st_result_free(&res);
	req.count_only = false;
	req.keys_only = true;
	tst_range(&t, &req, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 6);
	cr_assert_eq(res.resp.u.range.kvs[0].value_len, 0);
	cr_assert_eq(res.resp.u.range.kvs[0].mod_revision, 2);
	st_result_free(&res);
}

Test(kv, count_ignores_min_max_filters)
{
	struct st_result res;
	put_keys(); /* a=2, a/1=3, a/2=4, a/3=5, b=6, c=7 */
	struct st_range req = { .key = B("\0"), .range_end = B("\0"),
		.min_mod_revision = 4, .max_mod_revision = 6 };
	req.key_len = 1;
	tst_range(&t, &req, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 3);
	cr_assert_eq(res.resp.u.range.count, 6);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "a/2"));
	st_result_free(&res);
	/* filter + limit: fetch all, filter, then cut (more set) */
	req.limit = 2;
	tst_range(&t, &req, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 2);
	cr_assert(res.resp.u.range.more);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[1], "a/3"));
	st_result_free(&res);
	req = (struct st_range){ .key = B("\0"), .range_end = B("\0"),
		.min_create_revision = 3, .max_create_revision = 3 };
	req.key_len = 1;
	tst_range(&t, &req, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 1);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "a/1"));
	st_result_free(&res);
}

Test(kv, sort_orders_and_defaults)
{
	struct st_result res;
	tst_put(&t, "x", "3"); /* mod 2 */
	tst_put(&t, "y", "1"); /* mod 3 */
	tst_put(&t, "z", "2"); /* mod 4 */
	tst_put(&t, "x", "4"); /* x mod 5, version 2 */
	struct st_range req = { .key = B("\0"), .range_end = B("\0"),
		.sort_target = ST_SORT_VALUE, .sort_order = ST_SORT_DESCEND };
	req.key_len = 1;
	tst_range(&t, &req, &res);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "x"));
	cr_assert(kv_is_s(&res.resp.u.range.kvs[1], "z"));
	cr_assert(kv_is_s(&res.resp.u.range.kvs[2], "y"));
	st_result_free(&res);
	/* target MOD with order NONE defaults to ASCEND */
	req.sort_target = ST_SORT_MOD;
	req.sort_order = ST_SORT_NONE;
	tst_range(&t, &req, &res);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "y"));
	cr_assert(kv_is_s(&res.resp.u.range.kvs[1], "z"));
	cr_assert(kv_is_s(&res.resp.u.range.kvs[2], "x"));
	st_result_free(&res);
	/* ...but with a limit and order NONE, etcd fetches limit+1 in key
	 * order first, then sorts: x,y are fetched (+z for more), sorted by
	 * mod: y(3), z(4), x(5) -> cut to 2 = y, z. */
	req.limit = 2;
	tst_range(&t, &req, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 2);
	cr_assert(res.resp.u.range.more);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "y"));
	cr_assert(kv_is_s(&res.resp.u.range.kvs[1], "z"));
	st_result_free(&res);
	req.limit = 1; /* fetch x,y -> sorted y,x -> y */
	tst_range(&t, &req, &res);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "y"));
	st_result_free(&res);
	/* KEY DESCEND; VERSION ASCEND ties keep key order; CREATE DESCEND */
	req = (struct st_range){ .key = B("\0"), .range_end = B("\0"),
		.sort_target = ST_SORT_KEY, .sort_order = ST_SORT_DESCEND };
	req.key_len = 1;
	tst_range(&t, &req, &res);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "z"));
	cr_assert(kv_is_s(&res.resp.u.range.kvs[2], "x"));
	st_result_free(&res);
	req.sort_target = ST_SORT_VERSION;
	req.sort_order = ST_SORT_DESCEND;
	tst_range(&t, &req, &res);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "x"));
	cr_assert(kv_is_s(&res.resp.u.range.kvs[1], "y"));
	st_result_free(&res);
	req.sort_target = ST_SORT_CREATE;
	tst_range(&t, &req, &res);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "z"));
	cr_assert(kv_is_s(&res.resp.u.range.kvs[2], "x"));
	st_result_free(&res);
	/* keys_only still sorts by the values (etcd blanks them afterwards) */
	req.sort_target = ST_SORT_VALUE;
	req.sort_order = ST_SORT_ASCEND;
	req.keys_only = true;
	tst_range(&t, &req, &res);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "y"));
	cr_assert(kv_is_s(&res.resp.u.range.kvs[1], "z"));
	cr_assert(kv_is_s(&res.resp.u.range.kvs[2], "x"));
	cr_assert_eq(res.resp.u.range.kvs[0].value_len, 0);
	st_result_free(&res);
}

Test(kv, delete_range_counts_and_prev_kv)
{
	struct st_result res;
	put_keys();
	st_rev rev = tst_rev(&t);
	struct st_op d = op_del(B("a/"), B("a0"));
	d.u.delete_range.prev_kv = true;
	cr_assert_eq(tst_apply(&t, &d, &res), 0);
	cr_assert_eq(res.resp.u.delete_range.deleted, 3);
	cr_assert_eq(res.resp.u.delete_range.prev_kvs_n, 3);
	cr_assert(val_is_s(&res.resp.u.delete_range.prev_kvs[2], "a/3"));
	cr_assert_eq(res.revision, rev + 1, "one revision for the whole delete");
	st_result_free(&res);
	cr_assert_eq(range_n(B("\0"), B("\0"), NULL), 3);
}

Test(kv, delete_of_nothing_does_not_bump_revision)
{
	struct st_result res;
	tst_put(&t, "a", "1");
	struct st_op d = op_del(B("nope"), NULL, 0);
	cr_assert_eq(tst_apply(&t, &d, &res), 0);
	cr_assert_eq(res.resp.u.delete_range.deleted, 0);
	cr_assert_eq(res.revision, 2);
	st_result_free(&res);
	cr_assert_eq(tst_rev(&t), 2);
	/* deleting an already deleted key: nothing either */
	d = op_del(B("a"), NULL, 0);
	cr_assert_eq(tst_do(&t, &d), 0);
	cr_assert_eq(tst_rev(&t), 3);
	cr_assert_eq(tst_do(&t, &d), 0);
	cr_assert_eq(tst_rev(&t), 3);
}

Test(kv, range_in_apply_is_a_read)
{
	struct st_result res;
	tst_put(&t, "a", "1");
	struct st_op r = op_range(B("a"), NULL, 0);
	cr_assert_eq(tst_apply(&t, &r, &res), 0);
	cr_assert_eq(res.resp.type, ST_RESP_RANGE);
	cr_assert_eq(res.resp.u.range.kvs_n, 1);
	cr_assert_eq(res.revision, 2);
	st_result_free(&res);
	cr_assert_eq(tst_rev(&t), 2);
}

Test(kv, bad_input_errors_change_nothing)
{
	struct st_result res;
	static uint8_t big[ST_KEY_BYTES_MAX + 1];
	tst_put(&t, "a", "1");
	struct st_op op = op_put(NULL, 0, B("v"));
	cr_assert_eq(tst_apply(&t, &op, &res), ST_ERR_EMPTY_KEY);
	cr_assert_str_eq(res.msg, "etcdserver: key is not provided");
	st_result_free(&res);
	op = op_put(big, sizeof(big), B("v"));
	cr_assert_eq(tst_do(&t, &op), ST_ERR_KEY_TOO_LONG);
	op = op_put(big, ST_KEY_BYTES_MAX, B("v"));
	cr_assert_eq(tst_do(&t, &op), 0, "a key of exactly the limit is fine");
	struct st_op r = op_range(B("a"), NULL, 0);
	r.u.range.sort_order = 9;
	cr_assert_eq(tst_do(&t, &r), ST_ERR_INVALID);
	struct st_op u = { .type = 99 };
	cr_assert_eq(tst_apply(&t, &u, &res), ST_ERR_UNKNOWN_OP);
	cr_assert_not_null(res.msg);
	st_result_free(&res);
	struct st_op d = op_del(B(""), NULL, 0);
	cr_assert_eq(tst_do(&t, &d), ST_ERR_EMPTY_KEY);
	cr_assert_eq(tst_rev(&t), 3, "only the two good puts moved the revision");
	cr_assert_eq(st_applied_index(t.st), t.idx);
	cr_assert_str_eq(st_strerror(-12345), "raftbus: unknown store error");
}

Test(kv, reads_on_range_validate_and_future)
{
	struct st_result res;
	tst_put(&t, "a", "1");
	struct st_range req = { .key = B("a"), .revision = 3 };
	req.key_len = 1;
	cr_assert_eq(st_range(t.st, &req, &res), ST_ERR_FUTURE_REV);
	cr_assert_eq(res.err, ST_ERR_FUTURE_REV);
	cr_assert_str_eq(res.msg, "etcdserver: mvcc: required revision is a future revision");
	st_result_free(&res);
	req.key_len = 0;
	cr_assert_eq(st_range(t.st, &req, &res), ST_ERR_EMPTY_KEY);
	cr_assert_eq(res.revision, 2, "error replies carry the header revision");
	st_result_free(&res);
}
