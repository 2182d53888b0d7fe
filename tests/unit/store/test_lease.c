/*
 * test_lease.c - leases: grant (explicit and deterministic auto ids,
 * duplicates, TTL limits), attach/move/detach on put, revoke deleting all
 * attached keys in one revision with DELETE events, list and TTL lookup.
 */
#include "st_test.h"

static struct tst t;

static void setup(void) { tst_open(&t); }
static void teardown(void) { tst_close(&t); }

TestSuite(lease, .init = setup, .fini = teardown, .timeout = 20);

static st_lease_id grant(st_lease_id id, int64_t ttl)
{
	struct st_result res;
	struct st_op g = op_grant(id, ttl);
	cr_assert_eq(tst_apply(&t, &g, &res), 0);
	cr_assert_eq(res.resp.type, ST_RESP_LEASE_GRANT);
	cr_assert_eq(res.resp.u.lease_grant.ttl_s, ttl);
	st_lease_id got = res.resp.u.lease_grant.id;
	st_result_free(&res);
	return got;
}

static void put_leased(const char *k, st_lease_id lease)
{
	struct st_op p = op_put_s(k, "v");
	p.u.put.lease = lease;
	cr_assert_eq(tst_do(&t, &p), 0);
}

static size_t ttl_keys(st_lease_id id)
{
	struct st_result res;
	cr_assert_eq(st_lease_ttl(t.st, id, true, &res), 0);
	size_t n = res.resp.u.lease_ttl.keys_n;
	st_result_free(&res);
	return n;
}

Test(lease, grant_ids_and_errors)
{
	struct st_result res;
	cr_assert_eq(grant(100, 10), 100);
	st_lease_id a = grant(0, 5), b = grant(0, 5);
	cr_assert_neq(a, 0);
	cr_assert_neq(b, 0);
	cr_assert_neq(a, b);
	cr_assert_neq(a, 100);
	struct st_op g = op_grant(100, 10);
	cr_assert_eq(tst_apply(&t, &g, &res), ST_ERR_LEASE_EXISTS);
	cr_assert_str_eq(res.msg, "etcdserver: lease already exists");
	st_result_free(&res);
	g = op_grant(0, ST_LEASE_TTL_S_MAX + 1);
	cr_assert_eq(tst_do(&t, &g), ST_ERR_LEASE_TTL_TOO_LARGE);
	cr_assert_eq(tst_rev(&t), 1, "grants do not bump the revision");
	/* auto ids skip explicitly used ones and are the same on a second
	 * store given the same ops (determinism) */
	struct tst t2;
	tst_open(&t2);
	struct st_op ops[3] = { op_grant(100, 10), op_grant(0, 5), op_grant(0, 5) };
	st_lease_id ids[3];
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(tst_apply(&t2, &ops[i], &res), 0);
		ids[i] = res.resp.u.lease_grant.id;
		st_result_free(&res);
	}
	cr_assert_eq(ids[1], a);
	cr_assert_eq(ids[2], b);
	tst_close(&t2);
	/* list is ascending by id */
	cr_assert_eq(st_lease_list(t.st, &res), 0);
	cr_assert_eq(res.resp.type, ST_RESP_LEASE_LIST);
	cr_assert_eq(res.resp.u.lease_list.leases_n, 3);
	cr_assert_lt(res.resp.u.lease_list.leases[0].id, res.resp.u.lease_list.leases[1].id);
	cr_assert_eq(res.resp.u.lease_list.leases[2].id, 100);
	cr_assert_eq(res.resp.u.lease_list.leases[2].ttl_s, 10);
	st_result_free(&res);
}

Test(lease, attach_move_detach_and_ttl)
{
	struct st_result res;
	grant(1, 30);
	grant(2, 60);
	put_leased("a", 1);
	put_leased("b", 1);
	cr_assert_eq(ttl_keys(1), 2);
	cr_assert_eq(st_lease_ttl(t.st, 1, true, &res), 0);
	cr_assert_eq(res.resp.u.lease_ttl.granted_ttl_s, 30);
	cr_assert(kv_is_s(&res.resp.u.lease_ttl.keys[0], "a"));
	st_result_free(&res);
	put_leased("a", 2);           /* move */
	cr_assert_eq(ttl_keys(1), 1);
	cr_assert_eq(ttl_keys(2), 1);
	put_leased("b", 0);           /* detach */
	cr_assert_eq(ttl_keys(1), 0);
	cr_assert_eq(st_lease_ttl(t.st, 1, false, &res), 0);
	cr_assert_eq(res.resp.u.lease_ttl.keys_n, 0);
	st_result_free(&res);
	cr_assert_eq(st_lease_ttl(t.st, 77, true, &res), ST_ERR_LEASE_NOT_FOUND);
	cr_assert_str_eq(res.msg, "etcdserver: requested lease not found");
	st_result_free(&res);
	/* deleting a key detaches it */
	struct st_op d = op_del(B("a"), NULL, 0);
	cr_assert_eq(tst_do(&t, &d), 0);
	cr_assert_eq(ttl_keys(2), 0);
}

Test(lease, revoke_deletes_keys_in_one_revision)
{
	struct st_result res;
	grant(9, 10);
	put_leased("x/1", 9);  /* 2 */
	put_leased("x/2", 9);  /* 3 */
	tst_put(&t, "keep", "v"); /* 4 */
	put_leased("x/3", 9);  /* 5 */
	struct st_op r = op_revoke(9);
	cr_assert_eq(tst_apply(&t, &r, &res), 0);
	cr_assert_eq(res.resp.type, ST_RESP_LEASE_REVOKE);
	cr_assert_eq(res.revision, 6);
	st_result_free(&res);
	struct st_range q = { .key = B("\0"), .range_end = B("\0") };
	tst_range(&t, &q, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 1);
	cr_assert(kv_is_s(&res.resp.u.range.kvs[0], "keep"));
	st_result_free(&res);
	struct st_events_req er = { .key = B("\0"), .range_end = B("\0"), .from_rev = 6 };
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	cr_assert_eq(res.resp.u.events.events_n, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(res.resp.u.events.events[i].type, ST_EVENT_DELETE);
		cr_assert_eq(res.resp.u.events.events[i].kv.mod_revision, 6);
	}
	cr_assert(kv_is_s(&res.resp.u.events.events[2].kv, "x/3"));
	st_result_free(&res);
	cr_assert_eq(st_lease_ttl(t.st, 9, false, &res), ST_ERR_LEASE_NOT_FOUND);
	st_result_free(&res);
	cr_assert_eq(tst_do(&t, &r), ST_ERR_LEASE_NOT_FOUND, "revoke twice");
	/* a lease without keys: revoke does not bump */
	grant(10, 10);
	r = op_revoke(10);
	cr_assert_eq(tst_do(&t, &r), 0);
	cr_assert_eq(tst_rev(&t), 6);
	/* a revoked lease cannot be attached */
	struct st_op p = op_put_s("z", "1");
	p.u.put.lease = 10;
	cr_assert_eq(tst_do(&t, &p), ST_ERR_LEASE_NOT_FOUND);
	struct st_status s;
	cr_assert_eq(st_status(t.st, &s), 0);
	cr_assert_eq(s.leases, 0);
	cr_assert_eq(s.keys, 1);
}
