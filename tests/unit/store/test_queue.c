/*
 * test_queue.c - work queues in the store (ST_OP_QUEUE, st_queue_stats,
 * st_queue_dlq) on a real store in a temp dir: FIFO, exclusive claims,
 * visibility expiry, stale receipts, nack with delay, dead letters and
 * redrive, dedup, limits and quota, codec, exactly-once apply,
 * snapshot/restore, events, and a seeded random sequence checked against a
 * small model of the queue (batch push and batch ack included; their own
 * edge cases are in test_queue_batch.c).
 */
#include "st_test.h"

static struct tst t;

static void setup(void) { tst_open(&t); }
static void teardown(void) { tst_close(&t); }

TestSuite(queue, .init = setup, .fini = teardown, .timeout = 60);

#define QN "jobs"
#define ID_LEN 25


/* Pushes; copies the id into id_out (ID_LEN + 1 bytes) if not NULL. */
static int q_push(const char *queue, const char *payload, int64_t now,
	int64_t delay, const char *dedup, char *id_out, bool *dup)
{
	struct st_op op = op_queue(ST_Q_PUSH, queue, now);
	struct st_result res;
	op.u.queue.payload = (const uint8_t *)payload;
	op.u.queue.payload_len = strlen(payload);
	op.u.queue.delay_ms = delay;
	if (dedup) {
		op.u.queue.dedup_id = (const uint8_t *)dedup;
		op.u.queue.dedup_id_len = strlen(dedup);
	}
	int err = tst_apply(&t, &op, &res);
	if (err == 0) {
		cr_assert_eq(res.resp.type, ST_RESP_QUEUE);
		cr_assert_eq(res.resp.u.queue.msgs_n, 1);
		cr_assert_eq(res.resp.u.queue.msgs[0].id_len, ID_LEN);
		if (id_out) {
			memcpy(id_out, res.resp.u.queue.msgs[0].id, ID_LEN);
			id_out[ID_LEN] = 0;
		}
		if (dup)
			*dup = res.resp.u.queue.duplicate;
	}
	st_result_free(&res);
	return err;
}

/* Pops into res (caller frees); returns the op error. */
static int q_pop(const char *queue, int64_t now, int64_t vis, uint32_t max_n,
	struct st_result *res)
{
	struct st_op op = op_queue(ST_Q_POP, queue, now);
	op.u.queue.visibility_ms = vis;
	op.u.queue.max_n = max_n;
	op.u.queue.consumer = (const uint8_t *)"worker";
	op.u.queue.consumer_len = sizeof("worker") - 1;
	return tst_apply(&t, &op, res);
}

static int q_receipt_op(uint8_t cmd, const char *queue, int64_t now,
	const uint8_t *rcpt, size_t rl, int64_t arg_ms)
{
	struct st_op op = op_queue(cmd, queue, now);
	op.u.queue.receipt = rcpt;
	op.u.queue.receipt_len = rl;
	op.u.queue.delay_ms = cmd == ST_Q_NACK ? arg_ms : 0;
	op.u.queue.visibility_ms = cmd == ST_Q_EXTEND ? arg_ms : 0;
	return tst_do(&t, &op);
}

static int q_expire(const char *queue, int64_t now, struct st_queue_resp *out)
{
	struct st_op op = op_queue(ST_Q_EXPIRE, queue, now);
	struct st_result res;
	int err = tst_apply(&t, &op, &res);
	if (out)
		*out = (struct st_queue_resp){ .expired_n = res.resp.u.queue.expired_n,
			.dead_lettered_n = res.resp.u.queue.dead_lettered_n,
			.more = res.resp.u.queue.more };
	st_result_free(&res);
	return err;
}

static struct st_queue_stats q_stats(const char *queue)
{
	struct st_queue_stats s;
	int rc = st_queue_stats(t.st, (const uint8_t *)queue, strlen(queue), &s);
	cr_assert_eq(rc, 0, "stats: %s", st_strerror(rc));
	return s;
}

static bool msg_payload_is(const struct st_queue_msg *m, const char *p)
{
	return m->payload_len == strlen(p) && memcmp(m->payload, p, m->payload_len) == 0;
}

Test(queue, push_pop_fifo_and_empty_pop)
{
	struct st_result res;
	char ids[3][ID_LEN + 1];
	const char *pl[3] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++)
		cr_assert_eq(q_push(QN, pl[i], 100, 0, NULL, ids[i], NULL), 0);
	/* the id is the push's revision, zero-padded */
	char want[ID_LEN + 1];
	snprintf(want, sizeof(want), "%020lld-0000", (long long)tst_rev(&t));
	cr_assert_str_eq(ids[2], want);
	struct st_queue_stats s = q_stats(QN);
	cr_assert_eq(s.ready, 3);
	cr_assert_eq(s.oldest_ready_enqueued_ms, 100);
	cr_assert_eq(q_pop(QN, 200, 1000, 2, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs_n, 2);
	for (int i = 0; i < 2; i++) {
		const struct st_queue_msg *m = &res.resp.u.queue.msgs[i];
		cr_assert(msg_payload_is(m, pl[i]));
		cr_assert_eq(memcmp(m->id, ids[i], ID_LEN), 0);
		cr_assert_eq(m->delivery_count, 1);
		cr_assert_eq(m->enqueued_ms, 100);
		cr_assert_gt(m->receipt_len, (size_t)ID_LEN);
	}
	st_result_free(&res);
	cr_assert_eq(q_pop(QN, 200, 1000, 5, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs_n, 1);
	cr_assert(msg_payload_is(&res.resp.u.queue.msgs[0], "c"));
	st_result_free(&res);
	/* an empty pop is not an error and writes nothing */
	st_rev before = tst_rev(&t);
	cr_assert_eq(q_pop(QN, 200, 1000, 5, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs_n, 0);
	st_result_free(&res);
	cr_assert_eq(tst_rev(&t), before);
	s = q_stats(QN);
	cr_assert_eq(s.ready, 0);
	cr_assert_eq(s.inflight, 3);
	cr_assert_eq(s.oldest_ready_enqueued_ms, 0);
	cr_assert_eq(s.next_due_ms, 1200);
	cr_assert_eq(s.max_deliveries, ST_QUEUE_DELIVERIES_DEFAULT);
}

Test(queue, claims_are_exclusive_while_in_flight)
{
	struct st_result res;
	char seen[40][ID_LEN];
	size_t n_seen = 0;
	for (int i = 0; i < 40; i++)
		cr_assert_eq(q_push(QN, "x", 10, 0, NULL, NULL, NULL), 0);
	for (int round = 0; round < 20 && n_seen < 40; round++) {
		cr_assert_eq(q_pop(QN, 20 + round, 60000, 1 + round % 4, &res), 0);
		for (size_t i = 0; i < res.resp.u.queue.msgs_n; i++) {
			const uint8_t *id = res.resp.u.queue.msgs[i].id;
			for (size_t j = 0; j < n_seen; j++)
				cr_assert_neq(memcmp(seen[j], id, ID_LEN), 0, "claimed twice");
			memcpy(seen[n_seen++], id, ID_LEN);
		}
		st_result_free(&res);
	}
	cr_assert_eq(n_seen, 40);
	cr_assert_eq(q_stats(QN).inflight, 40);
	/* before the deadline, EXPIRE hands nothing back */
	struct st_queue_resp er;
	cr_assert_eq(q_expire(QN, 60000, &er), 0);
	cr_assert_eq(er.expired_n, 0);
	cr_assert_eq(q_pop(QN, 60000, 1000, 10, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs_n, 0);
	st_result_free(&res);
}

Test(queue, visibility_expiry_requeues_and_counts_deliveries)
{
	struct st_result res;
	struct st_queue_resp er;
	cr_assert_eq(q_push(QN, "p", 0, 0, NULL, NULL, NULL), 0);
	cr_assert_eq(q_pop(QN, 1000, 500, 1, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs[0].delivery_count, 1);
	st_result_free(&res);
	cr_assert_eq(q_stats(QN).next_due_ms, 1500);
	st_rev before = tst_rev(&t);
	cr_assert_eq(q_expire(QN, 1499, &er), 0);
	cr_assert_eq(er.expired_n, 0);
	cr_assert_eq(tst_rev(&t), before, "nothing due: no write");
	cr_assert_eq(q_expire(QN, 1500, &er), 0);
	cr_assert_eq(er.expired_n, 1);
	cr_assert_eq(tst_rev(&t), before + 1);
	struct st_queue_stats s = q_stats(QN);
	cr_assert_eq(s.ready, 1);
	cr_assert_eq(s.inflight, 0);
	cr_assert_eq(s.next_due_ms, 0);
	for (uint32_t want = 2; want <= 3; want++) {
		cr_assert_eq(q_pop(QN, 2000 * want, 500, 1, &res), 0);
		cr_assert_eq(res.resp.u.queue.msgs_n, 1);
		cr_assert_eq(res.resp.u.queue.msgs[0].delivery_count, want);
		cr_assert(msg_payload_is(&res.resp.u.queue.msgs[0], "p"));
		st_result_free(&res);
		cr_assert_eq(q_expire(QN, 2000 * want + 500, &er), 0);
		cr_assert_eq(er.expired_n, 1);
	}
}

Test(queue, stale_receipt_after_redelivery_is_refused)
{
	struct st_result r1, r2;
	cr_assert_eq(q_push(QN, "p", 0, 0, NULL, NULL, NULL), 0);
	cr_assert_eq(q_pop(QN, 0, 100, 1, &r1), 0);
	cr_assert_eq(q_expire(QN, 100, NULL), 0);
	cr_assert_eq(q_pop(QN, 100, 100, 1, &r2), 0);
	const struct st_queue_msg *m1 = &r1.resp.u.queue.msgs[0];
	const struct st_queue_msg *m2 = &r2.resp.u.queue.msgs[0];
	cr_assert_eq(memcmp(m1->id, m2->id, ID_LEN), 0);
	st_rev before = tst_rev(&t);
	cr_assert_eq(q_receipt_op(ST_Q_ACK, QN, 150, m1->receipt, m1->receipt_len, 0),
		ST_ERR_QUEUE_RECEIPT);
	cr_assert_eq(q_receipt_op(ST_Q_EXTEND, QN, 150, m1->receipt, m1->receipt_len, 10),
		ST_ERR_QUEUE_RECEIPT);
	cr_assert_eq(q_receipt_op(ST_Q_NACK, QN, 150, m1->receipt, m1->receipt_len, 0),
		ST_ERR_QUEUE_RECEIPT);
	cr_assert_eq(tst_rev(&t), before);
	cr_assert_eq(q_receipt_op(ST_Q_ACK, QN, 150, m2->receipt, m2->receipt_len, 0), 0);
	cr_assert_eq(q_receipt_op(ST_Q_ACK, QN, 150, m2->receipt, m2->receipt_len, 0),
		ST_ERR_QUEUE_RECEIPT, "acked twice");
	cr_assert_eq(q_receipt_op(ST_Q_ACK, QN, 150, B("garbage"), 0), ST_ERR_QUEUE_RECEIPT);
	struct st_queue_stats s = q_stats(QN);
	cr_assert(s.ready == 0 && s.inflight == 0 && s.delayed == 0 && s.dead == 0);
	cr_assert_eq(s.next_due_ms, 0);
	/* ack deleted the message and its in-flight index */
	struct st_range rq = { .key = B(ST_QUEUE_PREFIX QN "/m/"),
		.range_end = B(ST_QUEUE_PREFIX QN "/m0"), .count_only = true };
	struct st_result rr;
	tst_range(&t, &rq, &rr);
	cr_assert_eq(rr.resp.u.range.count, 0);
	st_result_free(&rr);
	st_result_free(&r1);
	st_result_free(&r2);
}

Test(queue, nack_with_delay_and_extend)
{
	struct st_result res;
	cr_assert_eq(q_push(QN, "p", 0, 0, NULL, NULL, NULL), 0);
	cr_assert_eq(q_pop(QN, 100, 1000, 1, &res), 0);
	const struct st_queue_msg *m = &res.resp.u.queue.msgs[0];
	/* extend moves the deadline */
	cr_assert_eq(q_receipt_op(ST_Q_EXTEND, QN, 500, m->receipt, m->receipt_len, 5000), 0);
	cr_assert_eq(q_stats(QN).next_due_ms, 5500);
	struct st_queue_resp er;
	cr_assert_eq(q_expire(QN, 1100, &er), 0);
	cr_assert_eq(er.expired_n, 0, "extended: not expired at the old deadline");
	cr_assert_eq(q_receipt_op(ST_Q_NACK, QN, 600, m->receipt, m->receipt_len, 1000), 0);
	st_result_free(&res);
	struct st_queue_stats s = q_stats(QN);
	cr_assert_eq(s.delayed, 1);
	cr_assert_eq(s.inflight, 0);
	cr_assert_eq(s.next_due_ms, 1600);
	cr_assert_eq(q_pop(QN, 1599, 1000, 1, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs_n, 0, "not visible before the delay");
	st_result_free(&res);
	cr_assert_eq(q_pop(QN, 1600, 1000, 1, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs_n, 1);
	cr_assert_eq(res.resp.u.queue.msgs[0].delivery_count, 2);
	st_result_free(&res);
	/* a delayed push */
	cr_assert_eq(q_push(QN, "later", 2000, 300, NULL, NULL, NULL), 0);
	s = q_stats(QN);
	cr_assert_eq(s.delayed, 1);
	cr_assert_eq(s.next_due_ms, 2300);
	cr_assert_eq(q_expire(QN, 2300, &er), 0);
	cr_assert_eq(q_stats(QN).ready, 1, "EXPIRE promotes due delayed messages");
}

static void check_dlq(size_t want, const char *payload, uint32_t count)
{
	struct st_result res;
	cr_assert_eq(st_queue_dlq(t.st, B(QN), 10, &res), 0);
	cr_assert_eq(res.resp.type, ST_RESP_QUEUE);
	cr_assert_eq(res.resp.u.queue.msgs_n, want);
	if (want) {
		cr_assert(msg_payload_is(&res.resp.u.queue.msgs[0], payload));
		cr_assert_eq(res.resp.u.queue.msgs[0].delivery_count, count);
	}
	st_result_free(&res);
}

Test(queue, max_deliveries_dead_letter_in_one_revision_and_redrive)
{
	struct st_op cfg = op_queue(ST_Q_CONFIG, QN, 0);
	cfg.u.queue.max_deliveries = 2;
	cr_assert_eq(tst_do(&t, &cfg), 0);
	cr_assert_eq(q_stats(QN).max_deliveries, 2);
	cr_assert_eq(q_push(QN, "poison", 0, 0, NULL, NULL, NULL), 0);
	struct st_result res;
	struct st_queue_resp er;
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(q_pop(QN, 1000 * i, 10, 1, &res), 0);
		cr_assert_eq(res.resp.u.queue.msgs_n, 1);
		st_result_free(&res);
		st_rev before = tst_rev(&t);
		cr_assert_eq(q_expire(QN, 1000 * i + 10, &er), 0);
		cr_assert_eq(tst_rev(&t), before + 1, "one revision");
		cr_assert_eq(er.expired_n, i == 0 ? 1 : 0);
		cr_assert_eq(er.dead_lettered_n, i == 0 ? 0 : 1);
	}
	struct st_queue_stats s = q_stats(QN);
	cr_assert(s.ready == 0 && s.inflight == 0 && s.dead == 1);
	check_dlq(1, "poison", 2);
	/* the move is atomic: the dlq/ put and the m/ delete share a revision */
	st_rev rev = tst_rev(&t);
	struct st_events_req ereq = { .key = B(ST_QUEUE_PREFIX QN "/"),
		.range_end = B(ST_QUEUE_PREFIX QN "0"), .from_rev = rev };
	cr_assert_eq(st_events(t.st, &ereq, &res), 0);
	bool put_dlq = false, del_m = false;
	for (size_t i = 0; i < res.resp.u.events.events_n; i++) {
		const struct st_event *e = &res.resp.u.events.events[i];
		cr_assert_eq(e->kv.mod_revision, rev);
		const char *k = (const char *)e->kv.key + strlen(ST_QUEUE_PREFIX QN "/");
		put_dlq |= e->type == ST_EVENT_PUT && strncmp(k, "dlq/", 4) == 0;
		del_m |= e->type == ST_EVENT_DELETE && strncmp(k, "m/", 2) == 0;
	}
	cr_assert(put_dlq && del_m);
	st_result_free(&res);
	/* redrive: back to ready with a fresh delivery count */
	struct st_op rd = op_queue(ST_Q_REDRIVE, QN, 5000);
	rd.u.queue.max_n = 10;
	cr_assert_eq(tst_apply(&t, &rd, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs_n, 1);
	cr_assert(msg_payload_is(&res.resp.u.queue.msgs[0], "poison"));
	st_result_free(&res);
	check_dlq(0, NULL, 0);
	s = q_stats(QN);
	cr_assert(s.ready == 1 && s.dead == 0);
	cr_assert_eq(q_pop(QN, 6000, 10, 1, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs[0].delivery_count, 1);
	const struct st_queue_msg *m = &res.resp.u.queue.msgs[0];
	/* NACK of the last allowed delivery dead-letters too */
	cr_assert_eq(q_receipt_op(ST_Q_NACK, QN, 6001, m->receipt, m->receipt_len, 0), 0);
	st_result_free(&res);
	cr_assert_eq(q_pop(QN, 6002, 10, 1, &res), 0);
	m = &res.resp.u.queue.msgs[0];
	cr_assert_eq(m->delivery_count, 2);
	cr_assert_eq(q_receipt_op(ST_Q_NACK, QN, 6003, m->receipt, m->receipt_len, 0), 0);
	st_result_free(&res);
	s = q_stats(QN);
	cr_assert(s.ready == 0 && s.inflight == 0 && s.dead == 1);
	check_dlq(1, "poison", 2);
}

Test(queue, dedup_within_window)
{
	char id1[ID_LEN + 1], id2[ID_LEN + 1], id3[ID_LEN + 1];
	bool dup;
	cr_assert_eq(q_push(QN, "a", 1000, 0, "order-7", id1, &dup), 0);
	cr_assert_not(dup);
	st_rev before = tst_rev(&t);
	cr_assert_eq(q_push(QN, "a", 1000 + ST_QUEUE_DEDUP_WINDOW_MS - 1, 0,
		"order-7", id2, &dup), 0);
	cr_assert(dup);
	cr_assert_str_eq(id1, id2);
	cr_assert_eq(tst_rev(&t), before, "a duplicate writes nothing");
	cr_assert_eq(q_stats(QN).ready, 1);
	/* another dedup id is another message */
	cr_assert_eq(q_push(QN, "b", 2000, 0, "order-8", NULL, &dup), 0);
	cr_assert_not(dup);
	/* after the window the id is forgotten even before a sweep */
	cr_assert_eq(q_push(QN, "a", 1000 + ST_QUEUE_DEDUP_WINDOW_MS, 0,
		"order-7", id3, &dup), 0);
	cr_assert_not(dup);
	cr_assert_str_neq(id1, id3);
	cr_assert_eq(q_stats(QN).ready, 3);
	/* the sweep is due once the oldest dedup time leaves the window and
	 * removes only forgotten ids */
	int64_t due = q_stats(QN).next_due_ms;
	cr_assert_eq(due, 1000 + ST_QUEUE_DEDUP_WINDOW_MS);
	cr_assert_eq(q_expire(QN, 2000 + ST_QUEUE_DEDUP_WINDOW_MS, NULL), 0);
	struct st_range rq = { .key = B(ST_QUEUE_PREFIX QN "/dedup/"),
		.range_end = B(ST_QUEUE_PREFIX QN "/dedup0") };
	struct st_result rr;
	tst_range(&t, &rq, &rr);
	cr_assert_eq(rr.resp.u.range.kvs_n, 1, "order-8 swept, order-7 (re-pushed) kept");
	cr_assert(kv_is_s(&rr.resp.u.range.kvs[0], ST_QUEUE_PREFIX QN "/dedup/order-7"));
	st_result_free(&rr);
	cr_assert_eq(q_push(QN, "a", 2000 + ST_QUEUE_DEDUP_WINDOW_MS, 0, "order-7",
		NULL, &dup), 0);
	cr_assert(dup, "the re-pushed id is still within its own window");
	cr_assert_eq(q_stats(QN).next_due_ms, 1000 + 2 * ST_QUEUE_DEDUP_WINDOW_MS);
}

Test(queue, validation_and_limits)
{
	struct st_result res;
	struct st_op op = op_queue(ST_Q_PUSH, "", 0);
	cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID, "empty name");
	op = op_queue(ST_Q_PUSH, "a/b", 0);
	cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID, "slash in name");
	char longname[ST_QUEUE_NAME_BYTES_MAX + 2];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	op = op_queue(ST_Q_PUSH, longname, 0);
	cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID, "name too long");
	longname[ST_QUEUE_NAME_BYTES_MAX] = 0;
	op = op_queue(ST_Q_PUSH, longname, 0);
	cr_assert_eq(tst_do(&t, &op), 0, "longest name");
	op = op_queue(ST_Q_PUSH, QN, -1);
	cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID, "negative now");
	op = op_queue(ST_Q_PUSH, QN, 0);
	op.u.queue.delay_ms = ST_QUEUE_DELAY_MS_MAX + 1;
	cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID, "delay too long");
	op = op_queue(ST_Q_PUSH, QN, 0);
	size_t big = t.opts.value_bytes_max - ST_QUEUE_RECORD_BYTES_OVERHEAD_MAX + 1;
	uint8_t *payload = calloc(1, big);
	op.u.queue.payload = payload;
	op.u.queue.payload_len = big;
	cr_assert_eq(tst_do(&t, &op), ST_ERR_TOO_LARGE);
	op.u.queue.payload_len = big - 1;
	cr_assert_eq(tst_do(&t, &op), 0, "largest payload");
	free(payload);
	const uint32_t bad_n[] = { 0, ST_QUEUE_POP_MAX + 1 };
	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(q_pop(QN, 0, 100, bad_n[i], &res), ST_ERR_QUEUE_INVALID);
		st_result_free(&res);
	}
	cr_assert_eq(q_pop(QN, 0, 0, 1, &res), ST_ERR_QUEUE_INVALID, "visibility 0");
	st_result_free(&res);
	op = op_queue(ST_Q_CONFIG, QN, 0);
	cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID, "max_deliveries 0");
	op = op_queue(99, QN, 0);
	cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID, "unknown command");
	/* a queue op is not allowed inside a txn */
	struct st_op inner = op_queue(ST_Q_EXPIRE, QN, 0);
	struct st_op txn = { .type = ST_OP_TXN };
	txn.u.txn.success = &inner;
	txn.u.txn.success_n = 1;
	cr_assert_eq(tst_do(&t, &txn), ST_ERR_INVALID);
	/* a stats read of an unknown queue is all zero */
	struct st_queue_stats s = q_stats("never");
	cr_assert(s.ready == 0 && s.dead == 0 && s.next_due_ms == 0);
	cr_assert_eq(st_queue_stats(t.st, B("a/b"), &s), ST_ERR_QUEUE_INVALID);
}

Test(queue, plain_writes_into_queue_keys_give_errors_not_crashes)
{
	struct st_result res;
	cr_assert_eq(q_push(QN, "p", 0, 0, NULL, NULL, NULL), 0);
	tst_put(&t, ST_QUEUE_PREFIX QN "/stats", "junk");
	struct st_queue_stats s;
	cr_assert_eq(st_queue_stats(t.st, B(QN), &s), ST_ERR_QUEUE_INVALID);
	cr_assert_eq(q_pop(QN, 0, 10, 1, &res), ST_ERR_QUEUE_INVALID);
	st_result_free(&res);
	/* another queue: a damaged message record */
	char id[ID_LEN + 1], key[128];
	cr_assert_eq(q_push("q2", "p", 0, 0, NULL, id, NULL), 0);
	snprintf(key, sizeof(key), ST_QUEUE_PREFIX "q2/m/%s", id);
	tst_put(&t, key, "");
	cr_assert_eq(q_pop("q2", 0, 10, 1, &res), ST_ERR_QUEUE_INVALID);
	st_result_free(&res);
}

Test(queue, expire_is_bounded_per_op)
{
	struct st_result res;
	const size_t n = ST_QUEUE_EXPIRE_BATCH_MAX + 44;
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(q_push(QN, "m", 0, 0, NULL, NULL, NULL), 0);
	for (size_t got = 0; got < n;) {
		cr_assert_eq(q_pop(QN, 0, 10, ST_QUEUE_POP_MAX, &res), 0);
		cr_assert_gt(res.resp.u.queue.msgs_n, 0);
		got += res.resp.u.queue.msgs_n;
		st_result_free(&res);
	}
	struct st_queue_resp er;
	cr_assert_eq(q_expire(QN, 10, &er), 0);
	cr_assert_eq(er.expired_n, ST_QUEUE_EXPIRE_BATCH_MAX);
	cr_assert(er.more);
	cr_assert_eq(q_stats(QN).next_due_ms, 10, "still due: propose again");
	cr_assert_eq(q_expire(QN, 10, &er), 0);
	cr_assert_eq(er.expired_n, 44);
	cr_assert_not(er.more);
	struct st_queue_stats s = q_stats(QN);
	cr_assert_eq(s.ready, n);
	cr_assert_eq(s.next_due_ms, 0);
}

Test(queue, over_quota_push_refused_but_consumers_drain)
{
	tst_close(&t);
	struct st_options o;
	st_options_init(&o);
	o.quota_bytes = 64 * 1024;
	tst_open_opts(&t, &o);
	char payload[1024];
	memset(payload, 'p', sizeof(payload) - 1);
	payload[sizeof(payload) - 1] = 0;
	int err = 0;
	size_t pushed = 0;
	for (; pushed < 1000 && (err = q_push(QN, payload, 0, 0, NULL, NULL, NULL)) == 0;)
		pushed++;
	cr_assert_eq(err, ST_ERR_NOSPACE);
	cr_assert_gt(pushed, 10);
	cr_assert_eq(q_stats(QN).ready, pushed, "a refused push left nothing");
	struct st_result res;
	for (size_t i = 0; i < pushed; i++) {
		cr_assert_eq(q_pop(QN, 0, 100, 1, &res), 0, "pop over quota");
		cr_assert_eq(res.resp.u.queue.msgs_n, 1);
		const struct st_queue_msg *m = &res.resp.u.queue.msgs[0];
		cr_assert_eq(q_receipt_op(ST_Q_ACK, QN, 1, m->receipt, m->receipt_len, 0), 0);
		st_result_free(&res);
	}
	struct st_queue_stats s = q_stats(QN);
	cr_assert(s.ready == 0 && s.inflight == 0);
}

Test(queue, codec_round_trip_and_garbage)
{
	struct st_op op = op_queue(ST_Q_POP, QN, 123456789);
	op.u.queue.payload = (const uint8_t *)"pl";
	op.u.queue.payload_len = sizeof("pl") - 1;
	op.u.queue.delay_ms = 77;
	op.u.queue.dedup_id = (const uint8_t *)"dd";
	op.u.queue.dedup_id_len = sizeof("dd") - 1;
	op.u.queue.consumer = (const uint8_t *)"c1";
	op.u.queue.consumer_len = sizeof("c1") - 1;
	op.u.queue.visibility_ms = 3000;
	op.u.queue.max_n = 42;
	op.u.queue.receipt = (const uint8_t *)"rc";
	op.u.queue.receipt_len = sizeof("rc") - 1;
	op.u.queue.max_deliveries = 9;
	uint8_t *buf;
	size_t len;
	cr_assert_eq(st_op_encode(&op, &buf, &len), 0);
	st_decoded *d;
	cr_assert_eq(st_op_decode(buf, len, &d), 0);
	const struct st_op *o = st_decoded_op(d);
	const struct st_queue_op *q = &o->u.queue;
	cr_assert_eq(o->type, ST_OP_QUEUE);
	cr_assert_eq(q->cmd, ST_Q_POP);
	cr_assert(q->queue_len == 4 && memcmp(q->queue, QN, 4) == 0);
	cr_assert_eq(q->now_ms, 123456789);
	cr_assert(q->payload_len == 2 && memcmp(q->payload, "pl", 2) == 0);
	cr_assert_eq(q->delay_ms, 77);
	cr_assert(q->dedup_id_len == 2 && memcmp(q->dedup_id, "dd", 2) == 0);
	cr_assert(q->consumer_len == 2 && memcmp(q->consumer, "c1", 2) == 0);
	cr_assert_eq(q->visibility_ms, 3000);
	cr_assert_eq(q->max_n, 42);
	cr_assert(q->receipt_len == 2 && memcmp(q->receipt, "rc", 2) == 0);
	cr_assert_eq(q->max_deliveries, 9);
	st_decoded_free(d);
	/* every truncation and a trailing byte are refused */
	for (size_t cut = 1; cut < len; cut++)
		cr_assert_eq(st_op_decode(buf, cut, &d), ST_ERR_DECODE, "cut %zu", cut);
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, buf, len);
	longer[len] = 0;
	cr_assert_eq(st_op_decode(longer, len + 1, &d), ST_ERR_DECODE);
	/* a mistyped field: the cmd (4th byte: array, version, type, cmd) as bin */
	memcpy(longer, buf, len);
	cr_assert_eq(longer[3], ST_Q_POP);
	longer[3] = 0xc4;
	cr_assert_eq(st_op_decode(longer, len, &d), ST_ERR_DECODE);
	free(longer);
	/* random flips never crash; whatever decodes re-encodes */
	srand(7);
	for (int i = 0; i < 2000; i++) {
		uint8_t *m = malloc(len);
		memcpy(m, buf, len);
		m[rand() % len] = (uint8_t)rand();
		if (st_op_decode(m, len, &d) == 0) {
			uint8_t *b2;
			size_t l2;
			cr_assert_eq(st_op_encode(st_decoded_op(d), &b2, &l2), 0);
			free(b2);
			st_decoded_free(d);
		}
		free(m);
	}
	free(buf);
}

Test(queue, reapplying_an_entry_is_a_noop)
{
	struct st_op op = op_queue(ST_Q_PUSH, QN, 5);
	op.u.queue.payload = (const uint8_t *)"once";
	op.u.queue.payload_len = sizeof("once") - 1;
	struct st_entry e = { .index = 10, .op = op };
	struct st_result res = { 0 };
	cr_assert_eq(st_apply(t.st, &e, 1, &res), 0);
	cr_assert_eq(res.err, 0);
	st_result_free(&res);
	st_rev rev = tst_rev(&t);
	cr_assert_eq(st_apply(t.st, &e, 1, &res), ST_ERR_ALREADY_APPLIED);
	cr_assert_not(res.applied);
	st_result_free(&res);
	cr_assert_eq(tst_rev(&t), rev);
	cr_assert_eq(q_stats(QN).ready, 1);
}

Test(queue, snapshot_restore_keeps_queue_state)
{
	struct st_result res;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(q_push(QN, "s", 10, 0, NULL, NULL, NULL), 0);
	cr_assert_eq(q_push(QN, "d", 10, 1000, NULL, NULL, NULL), 0);
	cr_assert_eq(q_pop(QN, 20, 500, 1, &res), 0);
	struct st_queue_stats before = q_stats(QN);
	char path[128];
	snprintf(path, sizeof(path), "%s.snap", t.dir);
	cr_assert_eq(st_snapshot_file(t.st, path), 0);
	const struct st_queue_msg *m = &res.resp.u.queue.msgs[0];
	cr_assert_eq(q_receipt_op(ST_Q_ACK, QN, 30, m->receipt, m->receipt_len, 0), 0);
	cr_assert_eq(q_push(QN, "after", 40, 0, NULL, NULL, NULL), 0);
	cr_assert_eq(st_restore_file(t.st, path), 0);
	unlink(path);
	struct st_queue_stats after = q_stats(QN);
	cr_assert(before.ready == after.ready && before.inflight == after.inflight &&
		before.delayed == after.delayed && before.next_due_ms == after.next_due_ms &&
		before.revision == after.revision);
	t.idx = st_applied_index(t.st);
	/* the receipt handed out before the snapshot is valid again */
	cr_assert_eq(q_receipt_op(ST_Q_ACK, QN, 30, m->receipt, m->receipt_len, 0), 0);
	st_result_free(&res);
	cr_assert_eq(q_stats(QN).inflight, 0);
}

Test(queue, events_of_a_queue_op_are_visible)
{
	struct st_result res;
	cr_assert_eq(q_push(QN, "ev", 0, 0, NULL, NULL, NULL), 0);
	cr_assert_eq(q_pop(QN, 0, 100, 1, &res), 0);
	st_result_free(&res);
	st_rev rev = tst_rev(&t);
	struct st_events_req er = { .key = B(ST_QUEUE_PREFIX QN "/"),
		.range_end = B(ST_QUEUE_PREFIX QN "0"), .from_rev = rev, .prev_kv = true };
	cr_assert_eq(st_events(t.st, &er, &res), 0);
	/* pop: delete r/, put f/, put m/, put stats, all in one revision */
	const struct st_events_resp *ev = &res.resp.u.events;
	cr_assert_eq(ev->events_n, 4);
	const char *want[] = { "r/", "f/", "m/", "stats" };
	const uint8_t types[] = { ST_EVENT_DELETE, ST_EVENT_PUT, ST_EVENT_PUT, ST_EVENT_PUT };
	for (size_t i = 0; i < 4; i++) {
		const struct st_event *e = &ev->events[i];
		const char *k = (const char *)e->kv.key + strlen(ST_QUEUE_PREFIX QN "/");
		cr_assert_eq(strncmp(k, want[i], strlen(want[i])), 0, "event %zu", i);
		cr_assert_eq(e->type, types[i]);
		cr_assert_eq(e->kv.mod_revision, rev);
	}
	cr_assert_eq(ev->events[2].kv.version, 2, "m/ was written by push, then pop");
	st_result_free(&res);
}

/* ---- random sequence against a model ------------------------------------ */

enum { M_READY = 1, M_DELAYED, M_INFLIGHT, M_DEAD, M_GONE };
#define MODEL_MSGS_MAX 4096

struct mmsg {
	char id[ID_LEN + 1];
	int state;
	uint32_t count;
	int64_t due, enq;
	uint64_t seq;
};

struct model {
	struct mmsg m[MODEL_MSGS_MAX];
	size_t n;
	uint64_t tail;
	uint32_t max_del;
};

static struct mmsg *mdl_pick(struct model *md, int state, bool by_seq, int64_t until)
{
	struct mmsg *best = NULL;
	for (size_t i = 0; i < md->n; i++) {
		struct mmsg *x = &md->m[i];
		if (x->state != state || (!by_seq && x->due > until))
			continue;
		if (best == NULL || (by_seq ? x->seq < best->seq :
		    (x->due < best->due || (x->due == best->due &&
		    strcmp(x->id, best->id) < 0))))
			best = x;
	}
	return best;
}

static void mdl_ready(struct model *md, struct mmsg *x)
{
	x->state = M_READY;
	x->seq = md->tail++;
}

static void mdl_requeue(struct model *md, struct mmsg *x, int64_t now, int64_t delay)
{
	if (x->count >= md->max_del) {
		x->state = M_DEAD;
	} else if (delay > 0) {
		x->state = M_DELAYED;
		x->due = now + delay;
	} else {
		mdl_ready(md, x);
	}
}

static size_t mdl_promote(struct model *md, int64_t now, size_t budget)
{
	size_t k = 0;
	struct mmsg *x;
	while (k < budget && (x = mdl_pick(md, M_DELAYED, false, now)) != NULL) {
		mdl_ready(md, x);
		k++;
	}
	return k;
}

static struct mmsg *mdl_find(struct model *md, const uint8_t *id)
{
	for (size_t i = 0; i < md->n; i++)
		if (memcmp(md->m[i].id, id, ID_LEN) == 0)
			return &md->m[i];
	return NULL;
}

static void mdl_check_stats(struct model *md)
{
	uint64_t c[6] = { 0 };
	int64_t due = INT64_MAX, oldest = 0;
	for (size_t i = 0; i < md->n; i++) {
		c[md->m[i].state]++;
		if ((md->m[i].state == M_DELAYED || md->m[i].state == M_INFLIGHT) &&
		    md->m[i].due < due)
			due = md->m[i].due;
	}
	struct mmsg *head = mdl_pick(md, M_READY, true, 0);
	if (head)
		oldest = head->enq;
	struct st_queue_stats s = q_stats(QN);
	cr_assert_eq(s.ready, c[M_READY]);
	cr_assert_eq(s.delayed, c[M_DELAYED]);
	cr_assert_eq(s.inflight, c[M_INFLIGHT]);
	cr_assert_eq(s.dead, c[M_DEAD]);
	cr_assert_eq(s.next_due_ms, due == INT64_MAX ? 0 : due);
	cr_assert_eq(s.oldest_ready_enqueued_ms, oldest);
	cr_assert_eq(s.max_deliveries, md->max_del);
}

struct rcpt { char s[ST_QUEUE_RECEIPT_BYTES_MAX]; size_t n; };
#define RCPTS_KEPT 64

static void mdl_pop(struct model *md, int64_t now, struct rcpt *rc, size_t *rc_n)
{
	uint32_t max_n = 1 + (uint32_t)(rand() % 5);
	int64_t vis = 1 + rand() % 1000;
	struct st_result res;
	cr_assert_eq(q_pop(QN, now, vis, max_n, &res), 0);
	mdl_promote(md, now, ST_QUEUE_EXPIRE_BATCH_MAX);
	size_t got = 0;
	struct mmsg *x;
	for (size_t steps = 0; got < max_n && steps < ST_QUEUE_EXPIRE_BATCH_MAX &&
	     (x = mdl_pick(md, M_READY, true, 0)) != NULL; steps++) {
		if (x->count >= md->max_del) {
			x->state = M_DEAD;
			continue;
		}
		x->count++;
		x->state = M_INFLIGHT;
		x->due = now + vis;
		cr_assert_lt(got, res.resp.u.queue.msgs_n);
		const struct st_queue_msg *m = &res.resp.u.queue.msgs[got++];
		cr_assert_eq(memcmp(m->id, x->id, ID_LEN), 0, "FIFO order");
		cr_assert_eq(m->delivery_count, x->count);
		struct rcpt *r = &rc[(*rc_n)++ % RCPTS_KEPT];
		memcpy(r->s, m->receipt, m->receipt_len);
		r->n = m->receipt_len;
	}
	cr_assert_eq(res.resp.u.queue.msgs_n, got);
	st_result_free(&res);
}

static void mdl_receipt_cmd(struct model *md, int64_t now, const struct rcpt *r,
	uint8_t cmd)
{
	struct mmsg *x = mdl_find(md, (const uint8_t *)r->s);
	cr_assert_not_null(x);
	char want[ST_QUEUE_RECEIPT_BYTES_MAX];
	snprintf(want, sizeof(want), "%s/%u", x->id, x->count);
	bool valid = x->state == M_INFLIGHT && strlen(want) == r->n &&
		memcmp(want, r->s, r->n) == 0;
	int64_t arg = cmd == ST_Q_EXTEND ? 1 + rand() % 1000 : (rand() % 2) * (rand() % 500);
	int err = q_receipt_op(cmd, QN, now, (const uint8_t *)r->s, r->n, arg);
	cr_assert_eq(err, valid ? 0 : ST_ERR_QUEUE_RECEIPT, "cmd %d valid %d", cmd, valid);
	if (!valid)
		return;
	if (cmd == ST_Q_ACK)
		x->state = M_GONE;
	else if (cmd == ST_Q_NACK)
		mdl_requeue(md, x, now, arg);
	else
		x->due = now + arg;
}

/* PUSH_BATCH of 1..8 messages: ids are <rev>-<index>, in push order. */
static void mdl_push_batch(struct model *md, int64_t now)
{
	struct st_queue_push_item it[8];
	size_t n = 1 + (size_t)(rand() % 8);
	if (md->n + n > MODEL_MSGS_MAX)
		return;
	for (size_t i = 0; i < n; i++)
		it[i] = (struct st_queue_push_item){ .payload = (const uint8_t *)"b",
			.payload_len = 1, .delay_ms = rand() % 4 == 0 ? 1 + rand() % 500 : 0 };
	struct st_op op = op_queue(ST_Q_PUSH_BATCH, QN, now);
	op.u.queue.pushes = it;
	op.u.queue.pushes_n = n;
	struct st_result res;
	cr_assert_eq(tst_apply(&t, &op, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs_n, n);
	for (size_t i = 0; i < n; i++) {
		struct mmsg *x = &md->m[md->n++];
		const struct st_queue_msg *m = &res.resp.u.queue.msgs[i];
		char want[64];   /* room for any revision: no truncation warning */
		snprintf(want, sizeof(want), "%020lld-%04u", (long long)res.revision,
			(unsigned)i);
		cr_assert(strlen(want) == ID_LEN);
		cr_assert(m->id_len == ID_LEN && memcmp(m->id, want, ID_LEN) == 0);
		cr_assert_not(m->duplicate);
		memcpy(x->id, want, ID_LEN + 1);
		x->enq = now;
		x->count = 0;
		if (it[i].delay_ms) {
			x->state = M_DELAYED;
			x->due = now + it[i].delay_ms;
		} else {
			mdl_ready(md, x);
		}
	}
	st_result_free(&res);
}

/* ACK_BATCH of 1..6 kept receipts (repeats possible): each is acked or
 * stale as the model says, in order; no good one = no new revision. */
static void mdl_ack_batch(struct model *md, int64_t now, const struct rcpt *rc,
	size_t kept)
{
	struct st_queue_receipt r[6];
	size_t n = 1 + (size_t)(rand() % 6);
	for (size_t i = 0; i < n; i++) {
		const struct rcpt *p = &rc[(size_t)rand() % kept];
		r[i] = (struct st_queue_receipt){ (const uint8_t *)p->s, p->n };
	}
	st_rev before = tst_rev(&t);
	struct st_op op = op_queue(ST_Q_ACK_BATCH, QN, now);
	op.u.queue.receipts = r;
	op.u.queue.receipts_n = n;
	struct st_result res;
	cr_assert_eq(tst_apply(&t, &op, &res), 0);
	cr_assert_eq(res.resp.u.queue.acks_n, n);
	uint32_t acked = 0;
	for (size_t i = 0; i < n; i++) {
		struct mmsg *x = mdl_find(md, r[i].receipt);
		cr_assert_not_null(x);
		char want[ST_QUEUE_RECEIPT_BYTES_MAX];
		snprintf(want, sizeof(want), "%s/%u", x->id, x->count);
		bool valid = x->state == M_INFLIGHT && strlen(want) == r[i].receipt_len &&
			memcmp(want, r[i].receipt, r[i].receipt_len) == 0;
		cr_assert_eq(res.resp.u.queue.acks[i], valid ? 0 : ST_ERR_QUEUE_RECEIPT,
			"receipt %zu valid %d", i, valid);
		if (valid) {
			x->state = M_GONE;
			acked++;
		}
	}
	cr_assert_eq(res.resp.u.queue.acked_n, acked);
	cr_assert_eq(res.revision, acked ? before + 1 : before);
	st_result_free(&res);
}

static void mdl_expire(struct model *md, int64_t now)
{
	struct st_queue_resp er;
	cr_assert_eq(q_expire(QN, now, &er), 0);
	size_t budget = ST_QUEUE_EXPIRE_BATCH_MAX, expired = 0;
	struct mmsg *x;
	while (budget > 0 && (x = mdl_pick(md, M_INFLIGHT, false, now)) != NULL) {
		budget--;
		expired += x->count < md->max_del;
		mdl_requeue(md, x, now, 0);
	}
	mdl_promote(md, now, budget);
	cr_assert_eq(er.expired_n, expired);
}

static void mdl_redrive(struct model *md)
{
	uint32_t max_n = 1 + (uint32_t)(rand() % 3);
	struct st_op op = op_queue(ST_Q_REDRIVE, QN, 0);
	struct st_result res;
	op.u.queue.max_n = max_n;
	cr_assert_eq(tst_apply(&t, &op, &res), 0);
	size_t k = 0;
	for (; k < max_n; k++) {
		struct mmsg *best = NULL;
		for (size_t i = 0; i < md->n; i++)
			if (md->m[i].state == M_DEAD &&
			    (best == NULL || strcmp(md->m[i].id, best->id) < 0))
				best = &md->m[i];
		if (best == NULL)
			break;
		cr_assert_eq(memcmp(res.resp.u.queue.msgs[k].id, best->id, ID_LEN), 0);
		best->count = 0;
		mdl_ready(md, best);
	}
	cr_assert_eq(res.resp.u.queue.msgs_n, k);
	st_result_free(&res);
}

static void run_model(unsigned seed, size_t ops)
{
	static struct model md;
	struct rcpt rc[RCPTS_KEPT];
	size_t rc_n = 0;
	int64_t now = 1000;
	memset(&md, 0, sizeof(md));
	md.max_del = ST_QUEUE_DELIVERIES_DEFAULT;
	srand(seed);
	for (size_t i = 0; i < ops; i++) {
		now += rand() % 200;
		int r = rand() % 100;
		if (r >= 22 && r < 30) {
			mdl_push_batch(&md, now);
		} else if (r < 22 && md.n < MODEL_MSGS_MAX) {
			int64_t delay = rand() % 3 == 0 ? 1 + rand() % 500 : 0;
			struct mmsg *x = &md.m[md.n++];
			cr_assert_eq(q_push(QN, "m", now, delay, NULL, x->id, NULL), 0);
			x->enq = now;
			x->count = 0;
			if (delay) {
				x->state = M_DELAYED;
				x->due = now + delay;
			} else {
				mdl_ready(&md, x);
			}
		} else if (r < 55) {
			mdl_pop(&md, now, rc, &rc_n);
		} else if (r >= 64 && r < 70 && rc_n > 0) {
			mdl_ack_batch(&md, now, rc, rc_n < RCPTS_KEPT ? rc_n : RCPTS_KEPT);
		} else if (r < 85 && rc_n > 0) {
			const struct rcpt *p = &rc[(size_t)rand() % (rc_n < RCPTS_KEPT ? rc_n : RCPTS_KEPT)];
			mdl_receipt_cmd(&md, now, p, r < 70 ? ST_Q_ACK : r < 80 ? ST_Q_NACK : ST_Q_EXTEND);
		} else if (r < 95) {
			mdl_expire(&md, now);
		} else if (r < 98) {
			mdl_redrive(&md);
		} else {
			struct st_op op = op_queue(ST_Q_CONFIG, QN, now);
			op.u.queue.max_deliveries = 1 + (uint32_t)(rand() % 5);
			cr_assert_eq(tst_do(&t, &op), 0);
			md.max_del = op.u.queue.max_deliveries;
		}
		mdl_check_stats(&md);
	}
}

Test(queue, random_ops_match_model_seed_1) { run_model(1, 3000); }
Test(queue, random_ops_match_model_seed_2) { run_model(2, 3000); }
Test(queue, random_ops_match_model_seed_3) { run_model(3, 3000); }
