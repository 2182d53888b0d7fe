/*
 * test_codec.c - the Raft log format of ops: every op type round-trips
 * (decode(encode(op)) encodes to the same bytes and applies to the same
 * result), and truncated, random, mistyped or hostile input is an error
 * code, never a crash or a huge allocation.
 */
#include "st_test.h"

TestSuite(codec, .timeout = 30);

static void roundtrip(const struct st_op *op)
{
	uint8_t *buf, *buf2;
	size_t len, len2;
	st_decoded *d;
	cr_assert_eq(st_op_encode(op, &buf, &len), 0);
	cr_assert_eq(st_op_decode(buf, len, &d), 0, "decode type %d", op->type);
	cr_assert_eq(st_decoded_op(d)->type, op->type);
	cr_assert_eq(st_op_encode(st_decoded_op(d), &buf2, &len2), 0);
	cr_assert_eq(len, len2);
	cr_assert_eq(memcmp(buf, buf2, len), 0, "re-encoding differs for type %d", op->type);
	/* every strict prefix is refused */
	for (size_t cut = 0; cut < len; cut++) {
		st_decoded *x = NULL;
		int rc = st_op_decode(buf, cut, &x);
		cr_assert_lt(rc, 0, "prefix %zu of %zu accepted", cut, len);
		cr_assert_null(x);
	}
	/* trailing garbage is refused */
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, buf, len);
	longer[len] = 0;
	st_decoded *x = NULL;
	cr_assert_eq(st_op_decode(longer, len + 1, &x), ST_ERR_DECODE);
	free(longer);
	free(buf);
	free(buf2);
	st_decoded_free(d);
}

static struct st_op all_ops[8];
static struct st_compare cmps[2];
static struct st_op inner[2], branch_s[2], branch_f[1];

static void build_ops(void)
{
	all_ops[0] = (struct st_op){ .type = ST_OP_NOOP };
	all_ops[1] = op_put(B("k\0\xff"), B("value"));
	all_ops[1].u.put.lease = 77;
	all_ops[1].u.put.prev_kv = true;
	all_ops[1].u.put.ignore_lease = true;
	all_ops[2] = op_range(B("a"), B("\0"));
	all_ops[2].u.range = (struct st_range){ .key = B("a"), .range_end = B("z"),
		.revision = 5, .limit = 10, .sort_target = ST_SORT_MOD,
		.sort_order = ST_SORT_DESCEND, .keys_only = true, .count_only = false,
		.min_mod_revision = 1, .max_mod_revision = 1000,
		.min_create_revision = 2, .max_create_revision = 3 };
	all_ops[3] = op_del(B("d"), B("e"));
	all_ops[3].u.delete_range.prev_kv = true;
	cmps[0] = (struct st_compare){ ST_CMP_VALUE, ST_CMP_LESS, B("k"), B(""), 0, B("v") };
	cmps[1] = (struct st_compare){ ST_CMP_MOD, ST_CMP_GREATER, B("k"), B("l"), -4, NULL, 0 };
	inner[0] = op_put_s("i", "1");
	inner[1] = op_range(B("i"), NULL, 0);
	branch_s[0] = op_put_s("s", "1");
	branch_s[1] = (struct st_op){ .type = ST_OP_TXN };
	branch_s[1].u.txn = (struct st_txn){ cmps, 1, inner, 2, NULL, 0 };
	branch_f[0] = op_del(B("f"), NULL, 0);
	all_ops[4] = (struct st_op){ .type = ST_OP_TXN };
	all_ops[4].u.txn = (struct st_txn){ cmps, 2, branch_s, 2, branch_f, 1 };
	all_ops[5] = op_compact(123456789012LL);
	all_ops[6] = op_grant(0x7fffffffffffLL, 60);
	all_ops[7] = op_revoke(-1);
}

Test(codec, roundtrip_every_op_type)
{
	build_ops();
	for (size_t i = 0; i < 8; i++)
		roundtrip(&all_ops[i]);
	/* decoded fields are the originals */
	uint8_t *buf;
	size_t len;
	st_decoded *d;
	cr_assert_eq(st_op_encode(&all_ops[4], &buf, &len), 0);
	cr_assert_eq(st_op_decode(buf, len, &d), 0);
	const struct st_txn *tx = &st_decoded_op(d)->u.txn;
	cr_assert_eq(tx->compares_n, 2);
	cr_assert_eq(tx->compares[1].number, -4);
	cr_assert_eq(tx->compares[1].target, ST_CMP_MOD);
	cr_assert_eq(tx->success_n, 2);
	cr_assert_eq(tx->success[1].type, ST_OP_TXN);
	cr_assert_eq(tx->success[1].u.txn.success[0].u.put.value_len, 1);
	cr_assert_eq(tx->failure[0].type, ST_OP_DELETE_RANGE);
	free(buf);
	st_decoded_free(d);
	cr_assert_eq(st_op_encode(&all_ops[1], &buf, &len), 0);
	cr_assert_eq(st_op_decode(buf, len, &d), 0);
	const struct st_put *p = &st_decoded_op(d)->u.put;
	cr_assert_eq(p->key_len, 3);
	cr_assert_eq(memcmp(p->key, "k\0\xff", 3), 0);
	cr_assert_eq(p->lease, 77);
	cr_assert(p->prev_kv && p->ignore_lease && !p->ignore_value);
	free(buf);
	st_decoded_free(d);
}

Test(codec, decoded_ops_apply_like_originals)
{
	struct tst a, b;
	tst_open(&a);
	tst_open(&b);
	build_ops();
	struct st_op seq[] = { op_put_s("k", "v"), all_ops[1], all_ops[3],
		all_ops[4], all_ops[2], op_grant(5, 10), op_compact(2), op_revoke(5) };
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		uint8_t *buf;
		size_t len;
		st_decoded *d;
		struct st_result r1, r2;
		cr_assert_eq(st_op_encode(&seq[i], &buf, &len), 0);
		cr_assert_eq(st_op_decode(buf, len, &d), 0);
		int e1 = tst_apply(&a, &seq[i], &r1);
		int e2 = tst_apply(&b, st_decoded_op(d), &r2);
		cr_assert_eq(e1, e2, "op %zu", i);
		cr_assert_eq(r1.revision, r2.revision);
		cr_assert_eq(r1.resp.type, r2.resp.type);
		st_result_free(&r1);
		st_result_free(&r2);
		st_decoded_free(d);
		free(buf);
	}
	cr_assert_eq(tst_rev(&a), tst_rev(&b));
	tst_close(&a);
	tst_close(&b);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

Test(codec, garbage_never_crashes)
{
	uint8_t buf[256];
	int ok = 0;
	for (int i = 0; i < 20000; i++) {
		size_t len = 1 + rng() % sizeof(buf);
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rng();
		if (i % 2 == 0) { /* plausible header to get deeper */
			buf[0] = 0x90 | (uint8_t)(rng() % 16);
			buf[1] = 1;
			if (len > 2)
				buf[2] = (uint8_t)(rng() % 9);
		}
		st_decoded *d = NULL;
		int rc = st_op_decode(buf, len, &d);
		if (rc == 0) {
			ok++;
			cr_assert_not_null(st_decoded_op(d));
		} else {
			cr_assert(rc == ST_ERR_DECODE || rc == ST_ERR_UNKNOWN_OP ||
				rc == ST_ERR_TXN_TOO_DEEP, "rc %d", rc);
		}
		st_decoded_free(d);
	}
	cr_log_info("%d of 20000 random inputs decoded\n", ok);
	/* mutations of a valid encoding */
	build_ops();
	uint8_t *enc;
	size_t len;
	cr_assert_eq(st_op_encode(&all_ops[4], &enc, &len), 0);
	for (int i = 0; i < 20000; i++) {
		uint8_t *m = malloc(len);
		memcpy(m, enc, len);
		for (int k = 0; k < 3; k++)
			m[rng() % len] = (uint8_t)rng();
		st_decoded *d = NULL;
		int rc = st_op_decode(m, len, &d);
		cr_assert(rc <= 0);
		st_decoded_free(d);
		free(m);
	}
	free(enc);
}

Test(codec, hostile_and_mistyped_input)
{
	st_decoded *d = NULL;
	/* array32 claiming 4 billion elements */
	const uint8_t huge[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01 };
	cr_assert_eq(st_op_decode(huge, sizeof(huge), &d), ST_ERR_DECODE);
	/* put whose key claims 4 GiB */
	const uint8_t bigbin[] = { 0x96, 0x01, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff };
	cr_assert_eq(st_op_decode(bigbin, sizeof(bigbin), &d), ST_ERR_DECODE);
	/* wrong version, unknown type, wrong arity, wrong field type */
	const uint8_t ver[] = { 0x92, 0x02, 0x00 };
	cr_assert_eq(st_op_decode(ver, sizeof(ver), &d), ST_ERR_DECODE);
	const uint8_t unk[] = { 0x92, 0x01, 0x63 };
	cr_assert_eq(st_op_decode(unk, sizeof(unk), &d), ST_ERR_UNKNOWN_OP);
	const uint8_t arity[] = { 0x94, 0x01, 0x05, 0x01, 0x02 };
	cr_assert_eq(st_op_decode(arity, sizeof(arity), &d), ST_ERR_DECODE);
	const uint8_t mistyped[] = { 0x93, 0x01, 0x05, 0xc4, 0x00 };
	cr_assert_eq(st_op_decode(mistyped, sizeof(mistyped), &d), ST_ERR_DECODE);
	const uint8_t uint64_big[] = { 0x93, 0x01, 0x05, 0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0 };
	cr_assert_eq(st_op_decode(uint64_big, sizeof(uint64_big), &d), ST_ERR_DECODE);
	cr_assert_eq(st_op_decode(NULL, 0, &d), ST_ERR_DECODE);
	cr_assert_null(d);
	/* nesting beyond ST_TXN_DEPTH_MAX: encode refuses, decode refuses */
	struct st_op nest[ST_TXN_DEPTH_MAX + 2];
	nest[0] = op_put_s("x", "y");
	for (size_t i = 1; i < ST_TXN_DEPTH_MAX + 2; i++) {
		nest[i] = (struct st_op){ .type = ST_OP_TXN };
		nest[i].u.txn.success = &nest[i - 1];
		nest[i].u.txn.success_n = 1;
	}
	uint8_t *buf;
	size_t len;
	cr_assert_eq(st_op_encode(&nest[ST_TXN_DEPTH_MAX], &buf, &len), 0);
	cr_assert_eq(st_op_decode(buf, len, &d), 0);
	st_decoded_free(d);
	free(buf);
	cr_assert_eq(st_op_encode(&nest[ST_TXN_DEPTH_MAX + 1], &buf, &len),
		ST_ERR_TXN_TOO_DEEP);
	struct st_op bad = { .type = 200 };
	cr_assert_eq(st_op_encode(&bad, &buf, &len), ST_ERR_UNKNOWN_OP);
}
