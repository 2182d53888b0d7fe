/*
 * test_queue_batch.c - the batch queue commands of the store (ST_Q_PUSH_BATCH,
 * ST_Q_ACK_BATCH) on a real store in a temp dir: ids and revision of a
 * batch, dedup inside a batch and across batches, stale receipts mixed
 * with good ones, an all-stale batch that moves no revision, limits
 * (count, bytes, fields), NOSPACE leaving nothing behind, and the codec of
 * both commands. The random model test in test_queue.c mixes them with
 * the other commands.
 */
#include "st_test.h"

static struct tst t;

static void setup(void) { tst_open(&t); }
static void teardown(void) { tst_close(&t); }

TestSuite(qbatch, .init = setup, .fini = teardown, .timeout = 60);

#define QN "jobs"
#define ID_LEN 25

static struct st_op qop(uint8_t cmd, int64_t now_ms)
{
	return op_queue(cmd, QN, now_ms);
}

static struct st_queue_push_item item(const char *payload, int64_t delay,
	const char *dedup)
{
	return (struct st_queue_push_item){ .payload = (const uint8_t *)payload,
		.payload_len = strlen(payload), .delay_ms = delay,
		.dedup_id = (const uint8_t *)dedup, .dedup_id_len = dedup ? strlen(dedup) : 0 };
}

static int push_batch(const struct st_queue_push_item *it, size_t n, int64_t now,
	struct st_result *res)
{
	struct st_op op = qop(ST_Q_PUSH_BATCH, now);
	op.u.queue.pushes = it;
	op.u.queue.pushes_n = n;
	return tst_apply(&t, &op, res);
}

static int ack_batch(const struct st_queue_receipt *r, size_t n, int64_t now,
	struct st_result *res)
{
	struct st_op op = qop(ST_Q_ACK_BATCH, now);
	op.u.queue.receipts = r;
	op.u.queue.receipts_n = n;
	return tst_apply(&t, &op, res);
}

static int pop(int64_t now, uint32_t max_n, struct st_result *res)
{
	struct st_op op = qop(ST_Q_POP, now);
	op.u.queue.visibility_ms = 1000;
	op.u.queue.max_n = max_n;
	return tst_apply(&t, &op, res);
}

static struct st_queue_stats stats(void)
{
	struct st_queue_stats s;
	cr_assert_eq(st_queue_stats(t.st, B(QN), &s), 0);
	return s;
}

static bool id_is(const struct st_queue_msg *m, st_rev rev, unsigned index)
{
	char want[64];   /* room for any revision and index */
	int n = snprintf(want, sizeof(want), "%020lld-%04u", (long long)rev, index);
	return n == ID_LEN && m->id_len == ID_LEN && memcmp(m->id, want, ID_LEN) == 0;
}

static bool same_id(const struct st_queue_msg *a, const struct st_queue_msg *b)
{
	return a->id_len == b->id_len && memcmp(a->id, b->id, a->id_len) == 0;
}

Test(qbatch, one_revision_ids_by_index_fifo_and_delay)
{
	struct st_queue_push_item it[4] = { item("a", 0, NULL), item("b", 0, NULL),
		item("late", 500, NULL), item("c", 0, NULL) };
	struct st_result res;
	st_rev before = tst_rev(&t);
	cr_assert_eq(push_batch(it, 4, 100, &res), 0);
	cr_assert_eq(res.revision, before + 1, "a batch is one revision");
	cr_assert_eq(res.resp.u.queue.msgs_n, 4);
	for (unsigned i = 0; i < 4; i++) {
		cr_assert(id_is(&res.resp.u.queue.msgs[i], before + 1, i), "id of item %u", i);
		cr_assert_not(res.resp.u.queue.msgs[i].duplicate);
	}
	st_result_free(&res);
	struct st_queue_stats s = stats();
	cr_assert(s.ready == 3 && s.delayed == 1);
	cr_assert_eq(pop(200, 10, &res), 0);
	const char *want[] = { "a", "b", "c" };
	cr_assert_eq(res.resp.u.queue.msgs_n, 3, "the delayed item is not due");
	for (size_t i = 0; i < 3; i++) {
		const struct st_queue_msg *m = &res.resp.u.queue.msgs[i];
		cr_assert(m->payload_len == 1 && memcmp(m->payload, want[i], 1) == 0);
	}
	st_result_free(&res);
	cr_assert_eq(pop(600, 10, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs_n, 1);
	cr_assert(id_is(&res.resp.u.queue.msgs[0], before + 1, 2));
	st_result_free(&res);
}

Test(qbatch, dedup_inside_a_batch_and_across_batches)
{
	struct st_queue_push_item it[4] = { item("a", 0, "x"), item("b", 0, NULL),
		item("a again", 0, "x"), item("d", 0, "y") };
	struct st_result r1, r2;
	cr_assert_eq(push_batch(it, 4, 1000, &r1), 0);
	const struct st_queue_msg *m = r1.resp.u.queue.msgs;
	cr_assert_not(m[0].duplicate);
	cr_assert(m[2].duplicate, "second use of x in the batch");
	cr_assert(same_id(&m[2], &m[0]), "answered with the first item's id");
	cr_assert_not(m[3].duplicate);
	cr_assert_eq(stats().ready, 3);
	/* a later batch: y is a duplicate of item 3 of the first batch */
	struct st_queue_push_item it2[2] = { item("d2", 0, "y"), item("e", 0, "z") };
	cr_assert_eq(push_batch(it2, 2, 2000, &r2), 0);
	cr_assert(r2.resp.u.queue.msgs[0].duplicate);
	cr_assert(same_id(&r2.resp.u.queue.msgs[0], &m[3]));
	cr_assert_not(r2.resp.u.queue.msgs[1].duplicate);
	cr_assert(id_is(&r2.resp.u.queue.msgs[1], r2.revision, 1),
		"a new message keeps its item index even after a duplicate");
	cr_assert_eq(stats().ready, 4);
	st_result_free(&r1);
	st_result_free(&r2);
	/* a batch of duplicates only writes nothing and moves no revision */
	st_rev before = tst_rev(&t);
	struct st_queue_push_item it3[2] = { item("a", 0, "x"), item("e", 0, "z") };
	cr_assert_eq(push_batch(it3, 2, 3000, &r1), 0);
	cr_assert(r1.resp.u.queue.msgs[0].duplicate && r1.resp.u.queue.msgs[1].duplicate);
	cr_assert_eq(r1.revision, before);
	st_result_free(&r1);
	cr_assert_eq(stats().ready, 4);
}

Test(qbatch, stale_receipts_mixed_with_good_ones)
{
	struct st_queue_push_item it[3] = { item("a", 0, NULL), item("b", 0, NULL),
		item("c", 0, NULL) };
	struct st_result res, pr, ar;
	cr_assert_eq(push_batch(it, 3, 0, &res), 0);
	st_result_free(&res);
	cr_assert_eq(pop(10, 3, &pr), 0);
	cr_assert_eq(pr.resp.u.queue.msgs_n, 3);
	const struct st_queue_msg *m = pr.resp.u.queue.msgs;
	char wrong_count[ST_QUEUE_RECEIPT_BYTES_MAX];
	int wl = snprintf(wrong_count, sizeof(wrong_count), "%.*s/7", ID_LEN,
		(const char *)m[2].id);
	struct st_queue_receipt r[5] = {
		{ m[0].receipt, m[0].receipt_len },
		{ (const uint8_t *)"nonsense", 8 },
		{ m[1].receipt, m[1].receipt_len },
		{ m[0].receipt, m[0].receipt_len },      /* repeated: stale now */
		{ (const uint8_t *)wrong_count, (size_t)wl },
	};
	st_rev before = tst_rev(&t);
	cr_assert_eq(ack_batch(r, 5, 20, &ar), 0, "stale receipts do not fail the op");
	const int want[5] = { 0, ST_ERR_QUEUE_RECEIPT, 0, ST_ERR_QUEUE_RECEIPT,
		ST_ERR_QUEUE_RECEIPT };
	cr_assert_eq(ar.resp.u.queue.acks_n, 5);
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(ar.resp.u.queue.acks[i], want[i], "receipt %zu", i);
	cr_assert_eq(ar.resp.u.queue.acked_n, 2);
	cr_assert_eq(ar.revision, before + 1);
	st_result_free(&ar);
	struct st_queue_stats s = stats();
	cr_assert(s.inflight == 1 && s.ready == 0, "c is still claimed");
	/* the claim of c expires: its old receipt is stale, alone in a batch */
	struct st_op ex = qop(ST_Q_EXPIRE, 2000);
	cr_assert_eq(tst_do(&t, &ex), 0);
	struct st_queue_receipt old = { m[2].receipt, m[2].receipt_len };
	before = tst_rev(&t);
	cr_assert_eq(ack_batch(&old, 1, 2001, &ar), 0);
	cr_assert_eq(ar.resp.u.queue.acks[0], ST_ERR_QUEUE_RECEIPT);
	cr_assert_eq(ar.resp.u.queue.acked_n, 0);
	cr_assert_eq(ar.revision, before, "nothing acked: no revision");
	cr_assert_eq(tst_rev(&t), before);
	st_result_free(&ar);
	cr_assert_eq(stats().ready, 1);
	st_result_free(&pr);
}

Test(qbatch, limits_and_all_or_nothing_validation)
{
	static struct st_queue_push_item many[ST_QUEUE_BATCH_MAX + 1];
	static struct st_queue_receipt rs[ST_QUEUE_BATCH_MAX + 1];
	for (size_t i = 0; i <= ST_QUEUE_BATCH_MAX; i++) {
		many[i] = item("m", 0, NULL);
		rs[i] = (struct st_queue_receipt){ (const uint8_t *)"r", 1 };
	}
	struct st_result res;
	st_rev before = tst_rev(&t);
	cr_assert_eq(push_batch(many, 0, 0, &res), ST_ERR_QUEUE_INVALID);
	st_result_free(&res);
	cr_assert_eq(push_batch(many, ST_QUEUE_BATCH_MAX + 1, 0, &res), ST_ERR_QUEUE_INVALID);
	st_result_free(&res);
	cr_assert_eq(ack_batch(rs, 0, 0, &res), ST_ERR_QUEUE_INVALID);
	st_result_free(&res);
	cr_assert_eq(ack_batch(rs, ST_QUEUE_BATCH_MAX + 1, 0, &res), ST_ERR_QUEUE_INVALID);
	st_result_free(&res);
	char longr[ST_QUEUE_RECEIPT_BYTES_MAX + 1];
	memset(longr, '1', sizeof(longr));
	rs[3] = (struct st_queue_receipt){ (const uint8_t *)longr, sizeof(longr) };
	cr_assert_eq(ack_batch(rs, 5, 0, &res), ST_ERR_QUEUE_INVALID, "receipt too long");
	st_result_free(&res);
	/* one bad item refuses the batch: the good items before it too */
	char longd[ST_QUEUE_DEDUP_ID_BYTES_MAX + 2];
	memset(longd, 'd', sizeof(longd) - 1);
	longd[sizeof(longd) - 1] = 0;
	many[5] = item("m", 0, longd);
	cr_assert_eq(push_batch(many, 10, 0, &res), ST_ERR_QUEUE_INVALID, "dedup id too long");
	st_result_free(&res);
	many[5] = item("m", -1, NULL);
	cr_assert_eq(push_batch(many, 10, 0, &res), ST_ERR_QUEUE_INVALID, "negative delay");
	st_result_free(&res);
	many[5] = item("m", ST_QUEUE_DELAY_MS_MAX + 1, NULL);
	cr_assert_eq(push_batch(many, 10, 0, &res), ST_ERR_QUEUE_INVALID, "delay too long");
	st_result_free(&res);
	many[5] = (struct st_queue_push_item){ .payload = NULL, .payload_len = 3 };
	cr_assert_eq(push_batch(many, 10, 0, &res), ST_ERR_INVALID, "NULL payload");
	st_result_free(&res);
	many[5] = item("m", 0, NULL);
	cr_assert_eq(tst_rev(&t), before, "refused batches changed nothing");
	cr_assert_eq(stats().ready, 0);
	cr_assert_eq(push_batch(many, ST_QUEUE_BATCH_MAX, 0, &res), 0, "the largest batch");
	cr_assert(id_is(&res.resp.u.queue.msgs[ST_QUEUE_BATCH_MAX - 1], res.revision,
		ST_QUEUE_BATCH_MAX - 1));
	st_result_free(&res);
	cr_assert_eq(stats().ready, ST_QUEUE_BATCH_MAX);
}

Test(qbatch, the_whole_batch_must_fit_one_push)
{
	/* two payloads that each fit a push but not together */
	size_t each = (t.opts.value_bytes_max - 2 * ST_QUEUE_RECORD_BYTES_OVERHEAD_MAX) / 2;
	uint8_t *p = calloc(1, each + 1);
	struct st_queue_push_item it[2] = {
		{ .payload = p, .payload_len = each },
		{ .payload = p, .payload_len = each + 1 },
	};
	struct st_result res;
	cr_assert_eq(push_batch(it, 2, 0, &res), ST_ERR_TOO_LARGE);
	st_result_free(&res);
	it[1].payload_len = each;
	cr_assert_eq(push_batch(it, 2, 0, &res), 0, "exactly at the limit");
	st_result_free(&res);
	free(p);
	cr_assert_eq(stats().ready, 2);
}

Test(qbatch, nospace_leaves_nothing_of_the_batch)
{
	tst_close(&t);
	struct st_options o;
	st_options_init(&o);
	o.quota_bytes = 64 * 1024;
	tst_open_opts(&t, &o);
	static char payload[1024];
	memset(payload, 'p', sizeof(payload) - 1);
	struct st_queue_push_item it[10];
	for (size_t i = 0; i < 10; i++)
		it[i] = item(payload, 0, NULL);
	struct st_result res;
	int err = 0;
	size_t pushed = 0;
	for (int i = 0; i < 100 && (err = push_batch(it, 10, 0, &res)) == 0; i++) {
		st_result_free(&res);
		pushed += 10;
	}
	cr_assert_eq(err, ST_ERR_NOSPACE);
	cr_assert_null(res.resp.u.queue.msgs, "no answer on error");
	st_result_free(&res);
	cr_assert_gt(pushed, 0);
	st_rev before = tst_rev(&t);
	cr_assert_eq(stats().ready, pushed, "the refused batch left nothing");
	/* consumers still drain over the quota, in batches */
	cr_assert_eq(pop(0, 10, &res), 0);
	struct st_queue_receipt r[10];
	for (size_t i = 0; i < res.resp.u.queue.msgs_n; i++)
		r[i] = (struct st_queue_receipt){ res.resp.u.queue.msgs[i].receipt,
			res.resp.u.queue.msgs[i].receipt_len };
	struct st_result ar;
	cr_assert_eq(ack_batch(r, res.resp.u.queue.msgs_n, 1, &ar), 0);
	cr_assert_eq(ar.resp.u.queue.acked_n, 10);
	cr_assert_eq(ar.revision, before + 2);
	st_result_free(&ar);
	st_result_free(&res);
	cr_assert_eq(stats().ready, pushed - 10);
}

static void roundtrip(const struct st_op *op, st_decoded **d, uint8_t **buf,
	size_t *len)
{
	cr_assert_eq(st_op_encode(op, buf, len), 0);
	cr_assert_eq(st_op_decode(*buf, *len, d), 0);
	for (size_t cut = 1; cut < *len; cut++) {
		st_decoded *x;
		cr_assert_eq(st_op_decode(*buf, cut, &x), ST_ERR_DECODE, "cut %zu", cut);
	}
}

Test(qbatch, codec_round_trip_and_format)
{
	struct st_queue_push_item it[2] = { item("p0", 5, "d0"), item("", 0, NULL) };
	struct st_op op = qop(ST_Q_PUSH_BATCH, 42);
	op.u.queue.pushes = it;
	op.u.queue.pushes_n = 2;
	st_decoded *d;
	uint8_t *buf;
	size_t len;
	roundtrip(&op, &d, &buf, &len);
	const struct st_queue_op *q = &st_decoded_op(d)->u.queue;
	cr_assert(q->cmd == ST_Q_PUSH_BATCH && q->now_ms == 42 && q->pushes_n == 2);
	cr_assert(q->pushes[0].payload_len == 2 && memcmp(q->pushes[0].payload, "p0", 2) == 0);
	cr_assert_eq(q->pushes[0].delay_ms, 5);
	cr_assert(q->pushes[0].dedup_id_len == 2 && memcmp(q->pushes[0].dedup_id, "d0", 2) == 0);
	cr_assert(q->pushes[1].payload_len == 0 && q->pushes[1].dedup_id_len == 0);
	cr_assert_eq(q->receipts_n, 0);
	st_decoded_free(d);
	/* the batch's items are the last field: without it the entry is
	 * garbage (array of 13 = an entry of another command) */
	cr_assert_eq(buf[0], 0x9e, "fixarray of 14");
	buf[0] = 0x9d;
	cr_assert_eq(st_op_decode(buf, len, &d), ST_ERR_DECODE);
	free(buf);

	struct st_queue_receipt r[3] = { { B("r0") }, { B("") }, { B("r2") } };
	op = qop(ST_Q_ACK_BATCH, 7);
	op.u.queue.receipts = r;
	op.u.queue.receipts_n = 3;
	roundtrip(&op, &d, &buf, &len);
	q = &st_decoded_op(d)->u.queue;
	cr_assert(q->cmd == ST_Q_ACK_BATCH && q->receipts_n == 3 && q->pushes_n == 0);
	cr_assert(q->receipts[2].receipt_len == 2 && memcmp(q->receipts[2].receipt, "r2", 2) == 0);
	cr_assert_eq(q->receipts[1].receipt_len, 0);
	st_decoded_free(d);
	free(buf);

	/* another command does not carry items, and its entry is unchanged
	 * by them (13 elements: version, type, 11 fields) */
	op = qop(ST_Q_ACK, 7);
	op.u.queue.receipts = r;
	op.u.queue.receipts_n = 3;
	cr_assert_eq(st_op_encode(&op, &buf, &len), 0);
	cr_assert_eq(buf[0], 0x9d);
	uint8_t *more = malloc(len + 1);
	memcpy(more, buf, len);
	more[0] = 0x9e;          /* claim one more field ... */
	more[len] = 0x90;        /* ... an empty item list */
	cr_assert_eq(st_op_decode(more, len + 1, &d), ST_ERR_DECODE);
	free(more);
	free(buf);
}

Test(qbatch, random_flips_of_a_batch_entry_never_crash)
{
	struct st_queue_push_item it[3] = { item("aa", 1, "x"), item("b", 0, NULL),
		item("ccc", 0, "yy") };
	struct st_op op = qop(ST_Q_PUSH_BATCH, 42);
	op.u.queue.pushes = it;
	op.u.queue.pushes_n = 3;
	uint8_t *buf;
	size_t len;
	cr_assert_eq(st_op_encode(&op, &buf, &len), 0);
	srand(11);
	for (int i = 0; i < 3000; i++) {
		uint8_t *m = malloc(len);
		memcpy(m, buf, len);
		m[rand() % len] = (uint8_t)rand();
		st_decoded *d;
		if (st_op_decode(m, len, &d) == 0) {
			/* whatever decodes also applies without a crash */
			struct st_result res;
			tst_apply(&t, st_decoded_op(d), &res);
			st_result_free(&res);
			st_decoded_free(d);
		}
		free(m);
	}
	free(buf);
}
