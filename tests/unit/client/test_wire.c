/*
 * test_wire.c - the client wire format (client/rb_wire.h): every request
 * and reply type survives encode -> decode -> encode byte for byte with its
 * fields intact; truncated, extended, mistyped, hostile and random input is
 * an error code, never a crash, an over-read (run under ASan) or a huge
 * allocation; newer peers' extra trailing fields are skipped.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "rb_wire.h"

TestSuite(wire, .timeout = 60);

#define B(s) (const uint8_t *)(s), strlen(s)

/* ---- helpers ---------------------------------------------------------- */

/* Every strict prefix and one byte of trailing garbage must be refused. */
static void check_cuts_request(const uint8_t *buf, size_t len)
{
	for (size_t cut = 0; cut < len; cut++) {
		rb_wire_request *x = NULL;
		int rc = rb_wire_decode_request(buf, cut, NULL, NULL, &x);
		cr_assert_eq(rc, RB_ERR_BAD_REQUEST, "prefix %zu of %zu: %d", cut, len, rc);
		cr_assert_null(x);
	}
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, buf, len);
	longer[len] = 0xc0;
	rb_wire_request *x = NULL;
	cr_assert_eq(rb_wire_decode_request(longer, len + 1, NULL, NULL, &x),
		RB_ERR_BAD_REQUEST);
	free(longer);
}

static rb_wire_request *req_roundtrip(const struct rb_op *op)
{
	uint8_t *buf, *buf2;
	size_t len, len2;
	rb_wire_request *d;
	uint64_t id = 0;
	uint8_t type = 0;
	cr_assert_eq(rb_wire_encode_request(0x1234567890abcdefull, op, &buf, &len), 0);
	cr_assert_eq(rb_wire_decode_request(buf, len, &id, &type, &d), 0,
		"decode op %d", op->type);
	cr_assert_eq(id, 0x1234567890abcdefull);
	cr_assert_eq(type, op->type);
	cr_assert_eq(rb_wire_request_id(d), id);
	cr_assert_eq(rb_wire_request_op(d)->type, op->type);
	cr_assert_eq(rb_wire_encode_request(id, rb_wire_request_op(d), &buf2, &len2), 0);
	cr_assert_eq(len, len2);
	cr_assert_eq(memcmp(buf, buf2, len), 0, "re-encoding differs for op %d", op->type);
	check_cuts_request(buf, len);
	free(buf);
	free(buf2);
	return d;
}

static void check_cuts_reply(const uint8_t *buf, size_t len)
{
	for (size_t cut = 0; cut < len; cut++) {
		struct rb_resp x = { 0 };
		int rc = rb_wire_decode_reply(buf, cut, NULL, NULL, &x);
		cr_assert_eq(rc, RB_ERR_PROTOCOL, "prefix %zu of %zu: %d", cut, len, rc);
		cr_assert_null(x.mem);
		rb_resp_free(&x);
	}
}

/* Encodes resp as the reply to op, decodes into *out, checks re-encoding
 * gives the same bytes. */
static void reply_roundtrip(uint8_t op, const struct rb_resp *resp, struct rb_resp *out)
{
	uint8_t *buf, *buf2;
	size_t len, len2;
	uint64_t id;
	uint8_t type;
	cr_assert_eq(rb_wire_encode_reply(77, op, resp, &buf, &len), 0, "encode reply %d", op);
	cr_assert_eq(rb_wire_decode_reply(buf, len, &id, &type, out), 0, "decode reply %d", op);
	cr_assert_eq(id, 77);
	cr_assert_eq(type, op);
	cr_assert_eq(out->err, resp->err);
	cr_assert_eq(out->header.cluster_id, resp->header.cluster_id);
	cr_assert_eq(out->header.member_id, resp->header.member_id);
	cr_assert_eq(out->header.revision, resp->header.revision);
	cr_assert_eq(out->header.raft_term, resp->header.raft_term);
	cr_assert_eq(rb_wire_encode_reply(77, op, out, &buf2, &len2), 0);
	cr_assert_eq(len, len2);
	cr_assert_eq(memcmp(buf, buf2, len), 0, "re-encoding differs for reply %d", op);
	check_cuts_reply(buf, len);
	free(buf);
	free(buf2);
}

static const struct rb_header hdr = {
	.cluster_id = 0xcdef0123456789abull, .member_id = UINT64_MAX,
	.revision = 42, .raft_term = 7 };

static void assert_bytes(const uint8_t *p, size_t n, const char *want)
{
	cr_assert_eq(n, strlen(want));
	if (n)
		cr_assert_eq(memcmp(p, want, n), 0);
}

/* ---- requests --------------------------------------------------------- */

Test(wire, put_request_roundtrip)
{
	struct rb_op op = { .type = RB_OP_PUT };
	op.u.put = (struct rb_put){ .key = B("foo"), .value = B("bar\0baz"),
		.lease = 0x694d77aa9f5e0b21, .prev_kv = true, .ignore_lease = true };
	op.u.put.value_len = 7;
	rb_wire_request *d = req_roundtrip(&op);
	const struct rb_put *p = &rb_wire_request_op(d)->u.put;
	assert_bytes(p->key, p->key_len, "foo");
	cr_assert_eq(p->value_len, 7);
	cr_assert_eq(memcmp(p->value, "bar\0baz", 7), 0);
	cr_assert_eq(p->lease, 0x694d77aa9f5e0b21);
	cr_assert(p->prev_kv && !p->ignore_value && p->ignore_lease);
	rb_wire_request_free(d);

	/* empty value stays empty */
	op.u.put.value = NULL;
	op.u.put.value_len = 0;
	d = req_roundtrip(&op);
	cr_assert_eq(rb_wire_request_op(d)->u.put.value_len, 0);
	rb_wire_request_free(d);
}

Test(wire, range_request_roundtrip)
{
	struct rb_op op = { .type = RB_OP_RANGE };
	op.u.range = (struct rb_range){ .key = B("a"), .range_end = B("\x01\xff"),
		.revision = 9, .limit = -3, .sort_target = RB_SORT_VALUE,
		.sort_order = RB_SORT_DESCEND, .keys_only = true, .serializable = true,
		.min_mod_revision = 1, .max_mod_revision = INT64_MAX,
		.min_create_revision = INT64_MIN, .max_create_revision = -1 };
	rb_wire_request *d = req_roundtrip(&op);
	const struct rb_range *r = &rb_wire_request_op(d)->u.range;
	assert_bytes(r->key, r->key_len, "a");
	assert_bytes(r->range_end, r->range_end_len, "\x01\xff");
	cr_assert_eq(r->revision, 9);
	cr_assert_eq(r->limit, -3);
	cr_assert_eq(r->sort_target, RB_SORT_VALUE);
	cr_assert_eq(r->sort_order, RB_SORT_DESCEND);
	cr_assert(r->keys_only && !r->count_only && r->serializable);
	cr_assert_eq(r->max_mod_revision, INT64_MAX);
	cr_assert_eq(r->min_create_revision, INT64_MIN);
	cr_assert_eq(r->max_create_revision, -1);
	rb_wire_request_free(d);
}

Test(wire, delete_compact_lease_status_requests_roundtrip)
{
	struct rb_op op = { .type = RB_OP_DELETE_RANGE };
	op.u.delete_range = (struct rb_delete_range){ .key = B("k"),
		.range_end = B("\0"), .prev_kv = true };
	op.u.delete_range.range_end_len = 1;
	rb_wire_request *d = req_roundtrip(&op);
	cr_assert(rb_wire_request_op(d)->u.delete_range.prev_kv);
	cr_assert_eq(rb_wire_request_op(d)->u.delete_range.range_end_len, 1);
	cr_assert_eq(rb_wire_request_op(d)->u.delete_range.range_end[0], 0);
	rb_wire_request_free(d);

	op = (struct rb_op){ .type = RB_OP_COMPACT, .u.compact = { 123, true } };
	d = req_roundtrip(&op);
	cr_assert_eq(rb_wire_request_op(d)->u.compact.revision, 123);
	cr_assert(rb_wire_request_op(d)->u.compact.physical);
	rb_wire_request_free(d);

	op = (struct rb_op){ .type = RB_OP_LEASE_GRANT, .u.lease_grant = { 60, 99 } };
	d = req_roundtrip(&op);
	cr_assert_eq(rb_wire_request_op(d)->u.lease_grant.ttl_s, 60);
	cr_assert_eq(rb_wire_request_op(d)->u.lease_grant.id, 99);
	rb_wire_request_free(d);

	op = (struct rb_op){ .type = RB_OP_LEASE_REVOKE, .u.lease_revoke = { -5 } };
	d = req_roundtrip(&op);
	cr_assert_eq(rb_wire_request_op(d)->u.lease_revoke.id, -5);
	rb_wire_request_free(d);

	op = (struct rb_op){ .type = RB_OP_LEASE_KEEPALIVE, .u.lease_keepalive = { 7 } };
	d = req_roundtrip(&op);
	cr_assert_eq(rb_wire_request_op(d)->u.lease_keepalive.id, 7);
	rb_wire_request_free(d);

	op = (struct rb_op){ .type = RB_OP_LEASE_TIMETOLIVE, .u.lease_ttl = { 8, true } };
	d = req_roundtrip(&op);
	cr_assert_eq(rb_wire_request_op(d)->u.lease_ttl.id, 8);
	cr_assert(rb_wire_request_op(d)->u.lease_ttl.keys);
	rb_wire_request_free(d);

	const uint8_t bodyless[] = { RB_OP_LEASE_LEASES, RB_OP_MEMBER_LIST,
		RB_OP_ENDPOINT_STATUS, RB_OP_HEALTH };
	for (size_t i = 0; i < sizeof(bodyless); i++) {
		op = (struct rb_op){ .type = bodyless[i] };
		d = req_roundtrip(&op);
		rb_wire_request_free(d);
	}
}

/* A txn nested `depth` levels (top = 1) with a put in success. */
static void build_txn_chain(struct rb_op *ops, size_t depth, struct rb_compare *cmp)
{
	for (size_t i = 0; i < depth; i++) {
		ops[i].type = RB_OP_TXN;
		ops[i].u.txn = (struct rb_txn){ .compares = cmp, .compares_n = 1,
			.success = &ops[i + 1], .success_n = 1 };
	}
	ops[depth].type = RB_OP_PUT;
	ops[depth].u.put = (struct rb_put){ .key = B("deep"), .value = B("v") };
}

Test(wire, txn_request_roundtrip_nested)
{
	struct rb_compare cmps[2] = {
		{ .target = RB_CMP_VALUE, .result = RB_CMP_NOT_EQUAL, .key = B("x"),
		  .value = B("1") },
		{ .target = RB_CMP_MOD, .result = RB_CMP_LESS, .key = B("a"),
		  .range_end = B("b"), .number = 17 },
	};
	struct rb_op inner[2] = {
		{ .type = RB_OP_RANGE, .u.range = { .key = B("x") } },
		{ .type = RB_OP_DELETE_RANGE, .u.delete_range = { .key = B("y") } },
	};
	struct rb_op success[2] = {
		{ .type = RB_OP_PUT, .u.put = { .key = B("x"), .value = B("2") } },
		{ .type = RB_OP_TXN, .u.txn = { .failure = inner, .failure_n = 2 } },
	};
	struct rb_op op = { .type = RB_OP_TXN, .u.txn = { .compares = cmps,
		.compares_n = 2, .success = success, .success_n = 2,
		.failure = inner, .failure_n = 1 } };
	rb_wire_request *d = req_roundtrip(&op);
	const struct rb_txn *t = &rb_wire_request_op(d)->u.txn;
	cr_assert_eq(t->compares_n, 2);
	cr_assert_eq(t->compares[1].target, RB_CMP_MOD);
	cr_assert_eq(t->compares[1].result, RB_CMP_LESS);
	cr_assert_eq(t->compares[1].number, 17);
	assert_bytes(t->compares[1].range_end, t->compares[1].range_end_len, "b");
	assert_bytes(t->compares[0].value, t->compares[0].value_len, "1");
	cr_assert_eq(t->success_n, 2);
	cr_assert_eq(t->success[1].type, RB_OP_TXN);
	cr_assert_eq(t->success[1].u.txn.failure_n, 2);
	cr_assert_eq(t->success[1].u.txn.failure[1].type, RB_OP_DELETE_RANGE);
	cr_assert_eq(t->failure_n, 1);
	rb_wire_request_free(d);

	/* the deepest allowed nesting passes, one more is refused */
	struct rb_op chain[RB_WIRE_TXN_DEPTH_MAX + 2];
	build_txn_chain(chain, RB_WIRE_TXN_DEPTH_MAX, cmps);
	d = req_roundtrip(&chain[0]);
	rb_wire_request_free(d);
	build_txn_chain(chain, RB_WIRE_TXN_DEPTH_MAX + 1, cmps);
	uint8_t *buf;
	size_t len;
	cr_assert_eq(rb_wire_encode_request(1, &chain[0], &buf, &len), RB_ERR_INVALID);
}

Test(wire, encode_refuses_bad_shapes)
{
	uint8_t *buf = NULL;
	size_t len;
	struct rb_op op = { .type = RB_OP_TYPE_COUNT };
	cr_assert_eq(rb_wire_encode_request(1, &op, &buf, &len), RB_ERR_INVALID);
	op = (struct rb_op){ .type = RB_OP_PUT, .u.put = { .key = NULL, .key_len = 3 } };
	cr_assert_eq(rb_wire_encode_request(1, &op, &buf, &len), RB_ERR_INVALID);
	/* compact is not allowed inside a txn */
	struct rb_op bad = { .type = RB_OP_COMPACT };
	op = (struct rb_op){ .type = RB_OP_TXN, .u.txn = { .success = &bad, .success_n = 1 } };
	cr_assert_eq(rb_wire_encode_request(1, &op, &buf, &len), RB_ERR_INVALID);
	cr_assert_null(buf);
}

/* ---- replies ---------------------------------------------------------- */

static struct rb_kv kv_a = { .key = (const uint8_t *)"a", .key_len = 1,
	.value = (const uint8_t *)"1", .value_len = 1, .create_revision = 2,
	.mod_revision = 3, .version = 2, .lease = 0x694d77aa9f5e0b21 };
static struct rb_kv kv_b = { .key = (const uint8_t *)"b\xff", .key_len = 2,
	.create_revision = 4, .mod_revision = 4, .version = 1 };

Test(wire, kv_replies_roundtrip)
{
	struct rb_resp out = { 0 };
	struct rb_resp r = { .header = hdr, .body.type = RB_OP_PUT };
	r.body.u.put = (struct rb_put_resp){ .has_prev_kv = true, .prev_kv = kv_a };
	reply_roundtrip(RB_OP_PUT, &r, &out);
	cr_assert(out.body.u.put.has_prev_kv);
	cr_assert_eq(out.body.u.put.prev_kv.lease, kv_a.lease);
	cr_assert_str_eq(out.msg, "");
	rb_resp_free(&out);
	cr_assert_null(out.mem);

	r.body.u.put.has_prev_kv = false;
	reply_roundtrip(RB_OP_PUT, &r, &out);
	cr_assert(!out.body.u.put.has_prev_kv);
	rb_resp_free(&out);

	struct rb_kv kvs[2] = { kv_a, kv_b };
	r = (struct rb_resp){ .header = hdr, .body.type = RB_OP_RANGE };
	r.body.u.range = (struct rb_range_resp){ .kvs = kvs, .kvs_n = 2, .count = 5,
		.more = true };
	reply_roundtrip(RB_OP_RANGE, &r, &out);
	cr_assert_eq(out.body.u.range.kvs_n, 2);
	cr_assert_eq(out.body.u.range.count, 5);
	cr_assert(out.body.u.range.more);
	struct rb_kv *g = &out.body.u.range.kvs[1];
	assert_bytes(g->key, g->key_len, "b\xff");
	cr_assert_eq(g->value_len, 0);
	cr_assert_eq(g->create_revision, 4);
	cr_assert_eq(out.body.u.range.kvs[0].version, 2);
	rb_resp_free(&out);

	r = (struct rb_resp){ .header = hdr, .body.type = RB_OP_DELETE_RANGE };
	r.body.u.delete_range = (struct rb_delete_range_resp){ .deleted = 2,
		.prev_kvs = kvs, .prev_kvs_n = 2 };
	reply_roundtrip(RB_OP_DELETE_RANGE, &r, &out);
	cr_assert_eq(out.body.u.delete_range.deleted, 2);
	cr_assert_eq(out.body.u.delete_range.prev_kvs_n, 2);
	rb_resp_free(&out);
}

Test(wire, txn_reply_roundtrip)
{
	struct rb_kv kvs[1] = { kv_a };
	struct rb_op_resp inner[1] = { { .type = RB_OP_RANGE,
		.u.range = { .kvs = kvs, .kvs_n = 1, .count = 1 } } };
	struct rb_op_resp rs[3] = {
		{ .type = RB_OP_PUT },
		{ .type = RB_OP_DELETE_RANGE, .u.delete_range = { .deleted = 1 } },
		{ .type = RB_OP_TXN, .u.txn = { .succeeded = false, .responses = inner,
		  .responses_n = 1 } },
	};
	struct rb_resp r = { .header = hdr, .body.type = RB_OP_TXN };
	r.body.u.txn = (struct rb_txn_resp){ .succeeded = true, .responses = rs,
		.responses_n = 3 };
	struct rb_resp out = { 0 };
	reply_roundtrip(RB_OP_TXN, &r, &out);
	const struct rb_txn_resp *t = &out.body.u.txn;
	cr_assert(t->succeeded);
	cr_assert_eq(t->responses_n, 3);
	cr_assert_eq(t->responses[1].u.delete_range.deleted, 1);
	cr_assert(!t->responses[2].u.txn.succeeded);
	cr_assert_eq(t->responses[2].u.txn.responses[0].u.range.kvs[0].mod_revision, 3);
	rb_resp_free(&out);
}

Test(wire, lease_replies_roundtrip)
{
	struct rb_resp out = { 0 };
	struct rb_resp r = { .header = hdr, .body.type = RB_OP_LEASE_GRANT,
		.body.u.lease_grant = { 0x1122, 30 } };
	reply_roundtrip(RB_OP_LEASE_GRANT, &r, &out);
	cr_assert_eq(out.body.u.lease_grant.id, 0x1122);
	cr_assert_eq(out.body.u.lease_grant.ttl_s, 30);
	rb_resp_free(&out);

	r = (struct rb_resp){ .header = hdr, .body.type = RB_OP_LEASE_KEEPALIVE,
		.body.u.lease_keepalive = { 5, 60 } };
	reply_roundtrip(RB_OP_LEASE_KEEPALIVE, &r, &out);
	cr_assert_eq(out.body.u.lease_keepalive.ttl_s, 60);
	rb_resp_free(&out);

	struct rb_bytes keys[2] = { { (const uint8_t *)"k1", 2 }, { (const uint8_t *)"k2", 2 } };
	r = (struct rb_resp){ .header = hdr, .body.type = RB_OP_LEASE_TIMETOLIVE,
		.body.u.lease_ttl = { 9, -1, 100, keys, 2 } };
	reply_roundtrip(RB_OP_LEASE_TIMETOLIVE, &r, &out);
	cr_assert_eq(out.body.u.lease_ttl.ttl_s, -1);
	cr_assert_eq(out.body.u.lease_ttl.granted_ttl_s, 100);
	assert_bytes(out.body.u.lease_ttl.keys[1].data, out.body.u.lease_ttl.keys[1].len, "k2");
	rb_resp_free(&out);

	rb_lease_id ids[3] = { 1, 2, INT64_MAX };
	r = (struct rb_resp){ .header = hdr, .body.type = RB_OP_LEASE_LEASES,
		.body.u.lease_leases = { ids, 3 } };
	reply_roundtrip(RB_OP_LEASE_LEASES, &r, &out);
	cr_assert_eq(out.body.u.lease_leases.ids_n, 3);
	cr_assert_eq(out.body.u.lease_leases.ids[2], INT64_MAX);
	rb_resp_free(&out);
}

Test(wire, cluster_replies_roundtrip)
{
	struct rb_resp out = { 0 };
	struct rb_resp r;
	const char *peers[] = { "tcp://127.0.0.1:5380" };
	const char *clients[] = { "tcp://127.0.0.1:5379", "ipc:///tmp/x" };
	struct rb_member ms[2] = {
		{ 0x8e9e05c52164694d, "n1", peers, 1, clients, 2, false },
		{ 2, "", peers, 1, NULL, 0, true },
	};
	r = (struct rb_resp){ .header = hdr, .body.type = RB_OP_MEMBER_LIST,
		.body.u.member_list = { ms, 2 } };
	reply_roundtrip(RB_OP_MEMBER_LIST, &r, &out);
	struct rb_member *m = out.body.u.member_list.members;
	cr_assert_eq(m[0].id, 0x8e9e05c52164694d);
	cr_assert_str_eq(m[0].name, "n1");
	cr_assert_str_eq(m[0].client_urls[1], "ipc:///tmp/x");
	cr_assert_str_eq(m[1].name, "");
	cr_assert(m[1].is_learner);
	rb_resp_free(&out);

	const char *errs[] = { "alarm: NOSPACE" };
	r = (struct rb_resp){ .header = hdr, .body.type = RB_OP_ENDPOINT_STATUS };
	r.body.u.status = (struct rb_status_resp){ "0.1.0", 20480, 3, 100, 7, 99,
		errs, 1, 16384, false };
	reply_roundtrip(RB_OP_ENDPOINT_STATUS, &r, &out);
	cr_assert_str_eq(out.body.u.status.version, "0.1.0");
	cr_assert_eq(out.body.u.status.raft_applied_index, 99);
	cr_assert_str_eq(out.body.u.status.errors[0], "alarm: NOSPACE");
	cr_assert_eq(out.body.u.status.db_size_in_use, 16384);
	rb_resp_free(&out);

	r = (struct rb_resp){ .header = hdr, .body.type = RB_OP_HEALTH,
		.body.u.health = { true, "" } };
	reply_roundtrip(RB_OP_HEALTH, &r, &out);
	cr_assert(out.body.u.health.healthy);
	rb_resp_free(&out);

	r = (struct rb_resp){ .header = hdr, .body.type = RB_OP_COMPACT };
	reply_roundtrip(RB_OP_COMPACT, &r, &out);
	rb_resp_free(&out);
	/* a body-less op may leave body.type NONE */
	r = (struct rb_resp){ .header = hdr };
	reply_roundtrip(RB_OP_LEASE_REVOKE, &r, &out);
	cr_assert_eq(out.body.type, RB_OP_LEASE_REVOKE);
	rb_resp_free(&out);
}

Test(wire, error_replies_carry_hint_and_compact_revision)
{
	struct rb_resp out = { 0 };
	struct rb_resp r = { .header = hdr, .err = RB_ERR_NOT_LEADER,
		.msg = "etcdserver: not leader", .leader_id = 3,
		.leader_url = "tcp://127.0.0.1:6379" };
	reply_roundtrip(RB_OP_PUT, &r, &out);
	cr_assert_eq(out.err, RB_ERR_NOT_LEADER);
	cr_assert_str_eq(out.msg, "etcdserver: not leader");
	cr_assert_eq(out.leader_id, 3);
	cr_assert_str_eq(out.leader_url, "tcp://127.0.0.1:6379");
	rb_resp_free(&out);

	r = (struct rb_resp){ .header = hdr, .err = RB_ERR_COMPACTED,
		.compact_revision = 12 };
	reply_roundtrip(RB_OP_RANGE, &r, &out);
	cr_assert_eq(out.err, RB_ERR_COMPACTED);
	cr_assert_eq(out.compact_revision, 12);
	cr_assert_str_eq(out.msg, "mvcc: required revision has been compacted");
	cr_assert_str_eq(out.leader_url, "");
	rb_resp_free(&out);

	/* an error to an undecodable request (op NONE) is encodable */
	r = (struct rb_resp){ .err = RB_ERR_BAD_REQUEST, .msg = "bad" };
	reply_roundtrip(RB_OP_NONE, &r, &out);
	cr_assert_eq(out.err, RB_ERR_BAD_REQUEST);
	rb_resp_free(&out);

	uint8_t *buf;
	size_t len;
	r.err = RB_ERR_MIN - 1;
	cr_assert_eq(rb_wire_encode_reply(1, RB_OP_PUT, &r, &buf, &len), RB_ERR_INVALID);
	r.err = 0;
	r.body.type = RB_OP_RANGE;
	cr_assert_eq(rb_wire_encode_reply(1, RB_OP_PUT, &r, &buf, &len), RB_ERR_INVALID);
}

/* ---- hostile input ---------------------------------------------------- */

Test(wire, version_and_envelope_errors_still_report_id_and_op)
{
	/* [2, 99, 1, [..]]: version 2 */
	const uint8_t v2[] = { 0x94, 0x02, 0x63, 0x01, 0x94, 0xc4, 0x01, 'k',
		0xc4, 0x00, 0x00, 0x00 };
	rb_wire_request *d = NULL;
	uint64_t id;
	uint8_t op;
	cr_assert_eq(rb_wire_decode_request(v2, sizeof(v2), &id, &op, &d), RB_ERR_BAD_REQUEST);
	cr_assert_null(d);
	cr_assert_eq(id, 99);
	cr_assert_eq(op, RB_OP_PUT);
	/* the same with version 1 decodes */
	uint8_t v1[sizeof(v2)];
	memcpy(v1, v2, sizeof(v2));
	v1[1] = 0x01;
	cr_assert_eq(rb_wire_decode_request(v1, sizeof(v1), &id, &op, &d), 0);
	rb_wire_request_free(d);
	/* unknown op 200 */
	const uint8_t unk[] = { 0x94, 0x01, 0x05, 0xcc, 200, 0x90 };
	cr_assert_eq(rb_wire_decode_request(unk, sizeof(unk), &id, &op, &d), RB_ERR_BAD_REQUEST);
	cr_assert_eq(id, 5);
	cr_assert_eq(op, 200);
	/* wrong type: key as an integer */
	const uint8_t wt[] = { 0x94, 0x01, 0x05, 0x01, 0x94, 0x01, 0xc4, 0x00, 0x00, 0x00 };
	cr_assert_eq(rb_wire_decode_request(wt, sizeof(wt), NULL, NULL, &d), RB_ERR_BAD_REQUEST);
	/* unknown flag bits */
	const uint8_t fl[] = { 0x94, 0x01, 0x05, 0x01, 0x94, 0xc4, 0x01, 'k', 0xc4, 0x00, 0x00, 0x08 };
	cr_assert_eq(rb_wire_decode_request(fl, sizeof(fl), NULL, NULL, &d), RB_ERR_BAD_REQUEST);
	/* not an array at all; empty input */
	const uint8_t m[] = { 0x80 };
	cr_assert_eq(rb_wire_decode_request(m, 1, NULL, NULL, &d), RB_ERR_BAD_REQUEST);
	cr_assert_eq(rb_wire_decode_request(m, 0, NULL, NULL, &d), RB_ERR_BAD_REQUEST);
}

Test(wire, newer_peers_trailing_fields_are_skipped)
{
	/* put body with 2 extra fields: a map and a nested array */
	const uint8_t ext[] = { 0x95, 0x01, 0x05, 0x01,
		0x96, 0xc4, 0x01, 'k', 0xc4, 0x01, 'v', 0x00, 0x01,
		0x81, 0xa1, 'x', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0,
		0x92, 0x91, 0xc0, 0xd6, 0x01, 1, 2, 3, 4,
		0xa3, 'n', 'e', 'w' };
	rb_wire_request *d = NULL;
	cr_assert_eq(rb_wire_decode_request(ext, sizeof(ext), NULL, NULL, &d), 0);
	const struct rb_put *p = &rb_wire_request_op(d)->u.put;
	assert_bytes(p->key, p->key_len, "k");
	assert_bytes(p->value, p->value_len, "v");
	cr_assert(p->prev_kv);
	rb_wire_request_free(d);
}

Test(wire, lying_counts_and_lengths_are_refused_cheaply)
{
	rb_wire_request *d = NULL;
	struct rb_resp out = { 0 };
	/* array32 of 4 billion elements */
	const uint8_t a[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01 };
	cr_assert_eq(rb_wire_decode_request(a, sizeof(a), NULL, NULL, &d), RB_ERR_BAD_REQUEST);
	cr_assert_eq(rb_wire_decode_reply(a, sizeof(a), NULL, NULL, &out), RB_ERR_PROTOCOL);
	/* a put whose key claims 4 GiB */
	const uint8_t k[] = { 0x94, 0x01, 0x05, 0x01, 0x94, 0xc6, 0xff, 0xff, 0xff, 0xff, 'k' };
	cr_assert_eq(rb_wire_decode_request(k, sizeof(k), NULL, NULL, &d), RB_ERR_BAD_REQUEST);
	/* a txn whose compares array claims 65535 entries in 20 bytes */
	const uint8_t t[] = { 0x94, 0x01, 0x05, 0x04, 0x93, 0xdc, 0xff, 0xff, 0x90, 0x90 };
	cr_assert_eq(rb_wire_decode_request(t, sizeof(t), NULL, NULL, &d), RB_ERR_BAD_REQUEST);
	/* a uint64 above INT64_MAX where an int64 is expected (lease) */
	const uint8_t big[] = { 0x94, 0x01, 0x05, 0x01, 0x94, 0xc4, 0x01, 'k', 0xc4, 0x00,
		0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x00 };
	cr_assert_eq(rb_wire_decode_request(big, sizeof(big), NULL, NULL, &d), RB_ERR_BAD_REQUEST);
	/* deeply nested arrays in a skipped trailing field */
	uint8_t deep[64 + 16] = { 0x95, 0x01, 0x05, 0x0a, 0x90 };
	size_t n = 5;
	for (int i = 0; i < 64; i++)
		deep[n++] = 0x91;
	deep[n++] = 0xc0;
	cr_assert_eq(rb_wire_decode_request(deep, n, NULL, NULL, &d), RB_ERR_BAD_REQUEST);
	cr_assert_null(d);
}

Test(wire, request_over_the_message_limit_is_refused)
{
	size_t len = RB_MSG_BYTES_MAX + 1;
	uint8_t *buf = calloc(1, len);
	rb_wire_request *d = NULL;
	cr_assert_eq(rb_wire_decode_request(buf, len, NULL, NULL, &d), RB_ERR_BAD_REQUEST);
	free(buf);
}

/* xorshift64*: the seed is printed on failure so that any run replays. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Feeds mutated valid messages and random bytes to both decoders. Whatever
 * decodes must re-encode (so decoded structs are well formed). */
static void fuzz_one(const uint8_t *buf, size_t len, uint64_t seed)
{
	rb_wire_request *d = NULL;
	if (rb_wire_decode_request(buf, len, NULL, NULL, &d) == 0) {
		uint8_t *re;
		size_t rlen;
		cr_assert_eq(rb_wire_encode_request(1, rb_wire_request_op(d), &re, &rlen), 0,
			"seed %llu: decoded request does not re-encode",
			(unsigned long long)seed);
		free(re);
		rb_wire_request_free(d);
	}
	struct rb_resp out = { 0 };
	uint8_t op;
	if (rb_wire_decode_reply(buf, len, NULL, &op, &out) == 0) {
		uint8_t *re;
		size_t rlen;
		int rc = rb_wire_encode_reply(1, op, &out, &re, &rlen);
		cr_assert(rc == 0 || (out.err == 0 && op == RB_OP_NONE) ||
			(out.err == 0 && op >= RB_OP_TYPE_COUNT),
			"seed %llu: decoded reply does not re-encode (%d)",
			(unsigned long long)seed, rc);
		if (rc == 0)
			free(re);
	}
	rb_resp_free(&out);
}

Test(wire, fuzz_mutations_and_random_bytes)
{
	const uint64_t seed0 = 0x5eed0001;
	uint64_t s = seed0;
	/* corpus: one request and one reply of several types */
	struct rb_compare cmp = { .target = RB_CMP_VALUE, .key = B("x"), .value = B("1") };
	struct rb_op put = { .type = RB_OP_PUT, .u.put = { .key = B("key"), .value = B("value") } };
	struct rb_op txn = { .type = RB_OP_TXN, .u.txn = { .compares = &cmp,
		.compares_n = 1, .success = &put, .success_n = 1 } };
	struct rb_op rng = { .type = RB_OP_RANGE, .u.range = { .key = B("a"), .range_end = B("z") } };
	struct rb_kv kvs[2] = { kv_a, kv_b };
	struct rb_resp rr = { .header = hdr, .body.type = RB_OP_RANGE,
		.body.u.range = { kvs, 2, 2, false } };
	const char *urls[] = { "tcp://127.0.0.1:1" };
	struct rb_member m = { 1, "n", urls, 1, urls, 1, false };
	struct rb_resp mr = { .header = hdr, .body.type = RB_OP_MEMBER_LIST,
		.body.u.member_list = { &m, 1 } };
	uint8_t *corpus[5];
	size_t clen[5];
	cr_assert_eq(rb_wire_encode_request(1, &put, &corpus[0], &clen[0]), 0);
	cr_assert_eq(rb_wire_encode_request(2, &txn, &corpus[1], &clen[1]), 0);
	cr_assert_eq(rb_wire_encode_request(3, &rng, &corpus[2], &clen[2]), 0);
	cr_assert_eq(rb_wire_encode_reply(4, RB_OP_RANGE, &rr, &corpus[3], &clen[3]), 0);
	cr_assert_eq(rb_wire_encode_reply(5, RB_OP_MEMBER_LIST, &mr, &corpus[4], &clen[4]), 0);

	uint8_t buf[512];
	for (int iter = 0; iter < 100000; iter++) {
		uint64_t seed = s;
		size_t c = rng_next(&s) % 5;
		size_t len = clen[c];
		memcpy(buf, corpus[c], len);
		unsigned flips = 1 + rng_next(&s) % 4;
		for (unsigned f = 0; f < flips; f++)
			buf[rng_next(&s) % len] = (uint8_t)rng_next(&s);
		if (rng_next(&s) % 4 == 0)
			len = rng_next(&s) % (len + 1);
		fuzz_one(buf, len, seed);
	}
	for (int iter = 0; iter < 20000; iter++) {
		uint64_t seed = s;
		size_t len = rng_next(&s) % sizeof(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rng_next(&s);
		/* start most of them as a plausible envelope */
		if (len >= 4 && iter % 2) {
			buf[0] = 0x94 + (iter % 3);
			buf[1] = 0x01;
		}
		fuzz_one(buf, len, seed);
	}
	for (int i = 0; i < 5; i++)
		free(corpus[i]);
}

Test(wire, prefix_end_and_write_classification)
{
	uint8_t buf[8];
	size_t n = rb_prefix_end(B("ab"), buf);
	assert_bytes(buf, n, "ac");
	n = rb_prefix_end((const uint8_t *)"a\xff\xff", 3, buf);
	assert_bytes(buf, n, "b");
	n = rb_prefix_end((const uint8_t *)"\xff", 1, buf);
	cr_assert_eq(n, 1);
	cr_assert_eq(buf[0], 0);
	n = rb_prefix_end(NULL, 0, buf);
	cr_assert_eq(n, 1);
	cr_assert_eq(buf[0], 0);

	struct rb_op get = { .type = RB_OP_RANGE };
	struct rb_op put = { .type = RB_OP_PUT };
	struct rb_op ro_txn = { .type = RB_OP_TXN, .u.txn = { .success = &get, .success_n = 1 } };
	struct rb_op rw_txn = { .type = RB_OP_TXN, .u.txn = { .success = &get,
		.success_n = 1, .failure = &put, .failure_n = 1 } };
	cr_assert(!rb_op_is_write(&get));
	cr_assert(rb_op_is_write(&put));
	cr_assert(!rb_op_is_write(&ro_txn));
	cr_assert(rb_op_is_write(&rw_txn));
	struct rb_op c = { .type = RB_OP_COMPACT };
	cr_assert(rb_op_is_write(&c));
	cr_assert_str_eq(rb_strerror(RB_ERR_COMPACTED),
		"mvcc: required revision has been compacted");
	cr_assert_str_eq(rb_strerror(RB_ERR_TOO_LARGE), "etcdserver: request is too large");
	cr_assert_not_null(rb_strerror(12345));
}

/* ---- watch polls and publish (ops 14, 15) ------------------------------ */

Test(wire, watch_request_and_reply_roundtrip)
{
	struct rb_watch_spec specs[2] = {
		{ .key = B("/t/"), .range_end = B("/t0"), .start_rev = 7, .start_sub = 3,
		  .prev_kv = true, .no_delete = true },
		{ .key = B("k"), .start_rev = 0, .no_put = true },
	};
	struct rb_op op = { .type = RB_OP_WATCH, .u.watch = { .watches = specs,
		.watches_n = 2, .wait_ms = 10000, .events_max = 500 } };
	rb_wire_request *d = req_roundtrip(&op);
	const struct rb_watch_req *w = &rb_wire_request_op(d)->u.watch;
	cr_assert_eq(w->watches_n, 2);
	cr_assert_eq(w->wait_ms, 10000);
	cr_assert_eq(w->events_max, 500);
	assert_bytes(w->watches[0].range_end, w->watches[0].range_end_len, "/t0");
	cr_assert_eq(w->watches[0].start_rev, 7);
	cr_assert_eq(w->watches[0].start_sub, 3);
	cr_assert(w->watches[0].prev_kv && w->watches[0].no_delete && !w->watches[0].no_put);
	cr_assert(w->watches[1].no_put && !w->watches[1].prev_kv);
	rb_wire_request_free(d);

	struct rb_event evs[2] = {
		{ .type = RB_EVENT_PUT, .kv = kv_a, .has_prev_kv = true, .prev_kv = kv_b },
		{ .type = RB_EVENT_DELETE, .kv = { .key = B("a"), .mod_revision = 9 } },
	};
	struct rb_watch_result res[2] = {
		{ .events = evs, .events_n = 2, .next_rev = 10, .next_sub = 0 },
		{ .canceled = true, .err = RB_ERR_COMPACTED, .compact_revision = 5, .next_rev = 3 },
	};
	struct rb_resp resp = { .header = hdr, .body.type = RB_OP_WATCH,
		.body.u.watch = { res, 2 } };
	struct rb_resp out = { 0 };
	reply_roundtrip(RB_OP_WATCH, &resp, &out);
	const struct rb_watch_resp *o = &out.body.u.watch;
	cr_assert_eq(o->results_n, 2);
	cr_assert_eq(o->results[0].events_n, 2);
	cr_assert(o->results[0].events[0].has_prev_kv);
	assert_bytes(o->results[0].events[0].prev_kv.key, o->results[0].events[0].prev_kv.key_len, "b\xff");
	cr_assert_eq(o->results[0].events[1].type, RB_EVENT_DELETE);
	cr_assert_eq(o->results[0].events[1].kv.mod_revision, 9);
	cr_assert_eq(o->results[0].next_rev, 10);
	cr_assert(o->results[1].canceled);
	cr_assert_eq(o->results[1].err, RB_ERR_COMPACTED);
	cr_assert_eq(o->results[1].compact_revision, 5);
	rb_resp_free(&out);
}

Test(wire, publish_request_and_reply_roundtrip)
{
	struct rb_header_kv h[2] = { { B("k1"), B("v1") }, { B("trace"), B("") } };
	struct rb_op op = { .type = RB_OP_PUBLISH, .u.publish = { .topic = B("/orders/"),
		.payload = B("hello"), .headers = h, .headers_n = 2, .msg_id = B("id-1") } };
	rb_wire_request *d = req_roundtrip(&op);
	const struct rb_publish *p = &rb_wire_request_op(d)->u.publish;
	assert_bytes(p->topic, p->topic_len, "/orders/");
	assert_bytes(p->payload, p->payload_len, "hello");
	cr_assert_eq(p->headers_n, 2);
	assert_bytes(p->headers[1].key, p->headers[1].key_len, "trace");
	assert_bytes(p->msg_id, p->msg_id_len, "id-1");
	cr_assert_not(rb_op_is_write(rb_wire_request_op(d)), "an id makes a publish retryable");
	rb_wire_request_free(d);
	op.u.publish.msg_id = NULL;
	op.u.publish.msg_id_len = 0;
	cr_assert(rb_op_is_write(&op));

	struct rb_resp resp = { .header = hdr, .body.type = RB_OP_PUBLISH,
		.body.u.publish = { .revision = 1234, .duplicate = true } };
	struct rb_resp out = { 0 };
	reply_roundtrip(RB_OP_PUBLISH, &resp, &out);
	cr_assert_eq(out.body.u.publish.revision, 1234);
	cr_assert(out.body.u.publish.duplicate);
	rb_resp_free(&out);
}

Test(wire, reply_restamp_changes_only_the_request_id)
{
	struct rb_watch_result res = { .next_rev = 5 };
	struct rb_resp resp = { .header = hdr, .body.type = RB_OP_WATCH,
		.body.u.watch = { &res, 1 } };
	uint8_t *buf, *out;
	size_t len, out_len;
	cr_assert_eq(rb_wire_encode_reply(0, RB_OP_WATCH, &resp, &buf, &len), 0);
	const uint64_t ids[] = { 1, 127, 128, 65536, UINT64_MAX };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		cr_assert_eq(rb_wire_reply_restamp(buf, len, ids[i], &out, &out_len), 0);
		struct rb_resp d = { 0 };
		uint64_t id;
		uint8_t type;
		cr_assert_eq(rb_wire_decode_reply(out, out_len, &id, &type, &d), 0);
		cr_assert_eq(id, ids[i]);
		cr_assert_eq(type, RB_OP_WATCH);
		cr_assert_eq(d.body.u.watch.results[0].next_rev, 5);
		uint8_t *direct;
		size_t dlen;
		cr_assert_eq(rb_wire_encode_reply(ids[i], RB_OP_WATCH, &resp, &direct, &dlen), 0);
		cr_assert_eq(dlen, out_len);
		cr_assert_eq(memcmp(direct, out, dlen), 0);
		free(direct);
		free(out);
		rb_resp_free(&d);
	}
	cr_assert_eq(rb_wire_reply_restamp(buf, 2, 9, &out, &out_len), RB_ERR_INVALID);
	free(buf);
}

Test(wire, watch_poll_over_the_watch_limit_is_refused_by_the_decoder)
{
	struct rb_watch_spec *sp = calloc(RB_WATCHES_PER_POLL_MAX + 1, sizeof(*sp));
	for (size_t i = 0; i <= RB_WATCHES_PER_POLL_MAX; i++)
		sp[i] = (struct rb_watch_spec){ .key = B("k"), .start_rev = 1 };
	struct rb_op op = { .type = RB_OP_WATCH, .u.watch = { .watches = sp,
		.watches_n = RB_WATCHES_PER_POLL_MAX + 1 } };
	uint8_t *buf;
	size_t len;
	cr_assert_eq(rb_wire_encode_request(1, &op, &buf, &len), 0);
	rb_wire_request *d = NULL;
	cr_assert_eq(rb_wire_decode_request(buf, len, NULL, NULL, &d), RB_ERR_BAD_REQUEST);
	cr_assert_null(d);
	free(buf);
	op.u.watch.watches_n = RB_WATCHES_PER_POLL_MAX;
	cr_assert_eq(rb_wire_encode_request(1, &op, &buf, &len), 0);
	cr_assert_eq(rb_wire_decode_request(buf, len, NULL, NULL, &d), 0);
	rb_wire_request_free(d);
	free(buf);
	free(sp);
}
