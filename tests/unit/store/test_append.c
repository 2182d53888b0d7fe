/*
 * test_append.c - the pub/sub append put (st_put.append_rev): the key
 * written is key + the 20-digit revision of the entry, events carry the
 * full key, messages of a topic sort by revision, the key limit accounts
 * for the suffix, two appends of one key in one txn are a duplicate, the
 * dedup txn shape of the broker (create_revision == 0 guard), and the log
 * codec round trip (old entries decode with the flag clear).
 */
#include <stdio.h>

#include "st_test.h"

static struct tst t;

static void setup(void) { tst_open(&t); }
static void teardown(void) { tst_close(&t); }

TestSuite(append, .init = setup, .fini = teardown, .timeout = 20);

static struct st_op op_append(const char *topic, const char *v)
{
	struct st_op op = op_put_s(topic, v);
	op.u.put.append_rev = true;
	return op;
}

static void key_at(char *buf, size_t len, const char *topic, st_rev rev)
{
	snprintf(buf, len, "%s%020lld", topic, (long long)rev);
}

Test(append, key_is_topic_plus_padded_revision)
{
	tst_put(&t, "/other", "x");                 /* rev 2 */
	struct st_op a = op_append("/orders/", "m1");
	struct st_result res;
	cr_assert_eq(tst_apply(&t, &a, &res), 0);
	cr_assert_eq(res.revision, 3);
	st_result_free(&res);
	char key[64];
	key_at(key, sizeof(key), "/orders/", 3);
	cr_assert_str_eq(key, "/orders/00000000000000000003");
	struct st_kv kv;
	cr_assert(tst_get(&t, key, 0, &kv, &res), "appended key not found");
	cr_assert(val_is_s(&kv, "m1"));
	cr_assert_eq(kv.create_revision, 3);
	cr_assert_eq(kv.version, 1);
	st_result_free(&res);
	/* the bare topic key itself was not written */
	cr_assert_not(tst_get(&t, "/orders/", 0, &kv, &res));
	st_result_free(&res);
}

Test(append, events_carry_full_key_and_sort_by_revision)
{
	for (int i = 0; i < 12; i++) {
		struct st_op a = op_append("/t/", "v");
		cr_assert_eq(tst_do(&t, &a), 0);
	}
	struct st_events_req er = { .key = B("/t/"), .range_end = B("/t0"),
		.from_rev = 1 };
	struct st_result res = { 0 };
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	const struct st_events_resp *ev = &res.resp.u.events;
	cr_assert_eq(ev->events_n, 12);
	for (size_t i = 0; i < ev->events_n; i++) {
		char key[64];
		key_at(key, sizeof(key), "/t/", (st_rev)i + 2);
		cr_assert(kv_is_s(&ev->events[i].kv, key), "event %zu", i);
		cr_assert_eq(ev->events[i].kv.mod_revision, (st_rev)i + 2);
	}
	st_result_free(&res);
	/* key order = revision order across a decimal carry (9 -> 10) */
	struct st_range rq = { .key = B("/t/"), .range_end = B("/t0") };
	tst_range(&t, &rq, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 12);
	for (size_t i = 1; i < 12; i++)
		cr_assert_lt(res.resp.u.range.kvs[i - 1].mod_revision,
			res.resp.u.range.kvs[i].mod_revision);
	st_result_free(&res);
}

Test(append, key_limit_counts_the_suffix)
{
	char topic[ST_KEY_BYTES_MAX + 1];
	size_t ok_len = ST_KEY_BYTES_MAX - ST_APPEND_REV_DIGITS;
	memset(topic, 'a', sizeof(topic));
	topic[ok_len] = '\0';
	struct st_op a = op_append(topic, "v");
	cr_assert_eq(tst_do(&t, &a), 0);
	topic[ok_len] = 'a';
	topic[ok_len + 1] = '\0';
	a = op_append(topic, "v");
	cr_assert_eq(tst_do(&t, &a), ST_ERR_KEY_TOO_LONG);
	/* not with ignore_value: the resolved key cannot exist yet */
	a = op_append("/t/", "");
	a.u.put.ignore_value = true;
	cr_assert_eq(tst_do(&t, &a), ST_ERR_INVALID);
}

Test(append, two_appends_of_one_topic_in_a_txn_are_duplicates)
{
	struct st_op ops[2] = { op_append("/t/", "a"), op_append("/t/", "b") };
	struct st_op txn = { .type = ST_OP_TXN };
	txn.u.txn = (struct st_txn){ NULL, 0, ops, 2, NULL, 0 };
	st_rev before = tst_rev(&t);
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_DUPLICATE_KEY);
	cr_assert_eq(tst_rev(&t), before);
	/* an append and a plain put of the topic's bytes do not collide, nor
	 * appends to two topics */
	struct st_op ops2[3] = { op_append("/t/", "a"), op_put_s("/t/", "p"),
		op_append("/u/", "b") };
	txn.u.txn = (struct st_txn){ NULL, 0, ops2, 3, NULL, 0 };
	cr_assert_eq(tst_do(&t, &txn), 0);
	struct st_range rq = { .key = B("/t/"), .range_end = B("/v") };
	struct st_result res;
	tst_range(&t, &rq, &res);
	cr_assert_eq(res.resp.u.range.kvs_n, 3);
	st_result_free(&res);
}

/* The broker's idempotent publish: append + dedup key only when the dedup
 * key does not exist; else read the dedup key (its create revision is the
 * first publish's revision). */
static bool publish_once(const char *dedup, st_rev *rev_out)
{
	struct st_compare c = { .target = ST_CMP_CREATE, .result = ST_CMP_EQUAL,
		.key = (const uint8_t *)dedup, .key_len = strlen(dedup), .number = 0 };
	struct st_op ok[2] = { op_append("/t/", "m"), op_put_s(dedup, "123") };
	struct st_op fail[1] = { op_range((const uint8_t *)dedup, strlen(dedup),
		NULL, 0) };
	struct st_op txn = { .type = ST_OP_TXN };
	txn.u.txn = (struct st_txn){ &c, 1, ok, 2, fail, 1 };
	struct st_result res;
	cr_assert_eq(tst_apply(&t, &txn, &res), 0);
	bool fresh = res.resp.u.txn.succeeded;
	if (fresh) {
		*rev_out = res.revision;
	} else {
		const struct st_range_resp *rr = &res.resp.u.txn.responses[0].u.range;
		cr_assert_eq(rr->kvs_n, 1);
		*rev_out = rr->kvs[0].create_revision;
	}
	st_result_free(&res);
	return fresh;
}

Test(append, dedup_txn_appends_once)
{
	st_rev r1, r2, r3;
	cr_assert(publish_once("_rb/dedup/id1", &r1));
	cr_assert_not(publish_once("_rb/dedup/id1", &r2));
	cr_assert_eq(r1, r2);
	cr_assert(publish_once("_rb/dedup/id2", &r3));
	cr_assert_gt(r3, r1);
	struct st_range rq = { .key = B("/t/"), .range_end = B("/t0"),
		.count_only = true };
	struct st_result res;
	tst_range(&t, &rq, &res);
	cr_assert_eq(res.resp.u.range.count, 2);
	st_result_free(&res);
}

Test(append, codec_round_trip_and_old_format)
{
	struct st_op a = op_append("/t/", "v");
	uint8_t *buf;
	size_t len;
	cr_assert_eq(st_op_encode(&a, &buf, &len), 0);
	st_decoded *d;
	cr_assert_eq(st_op_decode(buf, len, &d), 0);
	cr_assert(st_decoded_op(d)->u.put.append_rev);
	st_decoded_free(d);
	free(buf);
	struct st_op p = op_put_s("/t/", "v");
	p.u.put.prev_kv = true;
	cr_assert_eq(st_op_encode(&p, &buf, &len), 0);
	/* an entry from before append_rev: flags 1 (prev_kv) is the last
	 * byte; it must decode with the flag clear */
	cr_assert_eq(buf[len - 1], 1);
	cr_assert_eq(st_op_decode(buf, len, &d), 0);
	cr_assert_not(st_decoded_op(d)->u.put.append_rev);
	cr_assert(st_decoded_op(d)->u.put.prev_kv);
	st_decoded_free(d);
	/* flag bits beyond the known ones are refused */
	buf[len - 1] = 16;
	cr_assert_eq(st_op_decode(buf, len, &d), ST_ERR_DECODE);
	free(buf);
}
