/*
 * test_review_queue.c - review findings on store/queue.c: a queue's keys
 * are ordinary keys that any client may overwrite with plain puts, so
 * whatever those keys hold must come back as ST_ERR_QUEUE_INVALID from the
 * op that meets it, never as an assertion in apply (which would stop every
 * member on the same entry), and a damaged queue must not hold other
 * memory than the op's. Also: what one DLQ listing may load.
 */
#include "st_test.h"

static struct tst t;

static void setup(void) { tst_open(&t); }
static void teardown(void) { tst_close(&t); }

TestSuite(review_queue, .init = setup, .fini = teardown, .timeout = 60);

#define QN "jobs"
#define DEDUP_WINDOW_MS ST_QUEUE_DEDUP_WINDOW_MS

static struct st_op qop(uint8_t cmd, int64_t now_ms)
{
	return op_queue(cmd, QN, now_ms);
}

static int push_dedup(int64_t now, const char *dedup)
{
	struct st_op op = qop(ST_Q_PUSH, now);
	op.u.queue.payload = (const uint8_t *)"p";
	op.u.queue.payload_len = 1;
	op.u.queue.dedup_id = (const uint8_t *)dedup;
	op.u.queue.dedup_id_len = strlen(dedup);
	return tst_do(&t, &op);
}

/* Plants "<prefix>jobs/x/<t %020>/<tail of n bytes 'a'>" with a plain put. */
static void plant_x_key(int64_t when, size_t tail_n)
{
	uint8_t key[ST_KEY_BYTES_MAX];
	int n = snprintf((char *)key, sizeof(key), ST_QUEUE_PREFIX QN "/x/%020lld/",
		(long long)when);
	cr_assert(n > 0 && (size_t)n + tail_n <= ST_KEY_BYTES_MAX);
	memset(key + n, 'a', tail_n);
	struct st_op put = op_put(key, (size_t)n + tail_n, (const uint8_t *)"", 0);
	cr_assert_eq(tst_do(&t, &put), 0);
}

/* A dedup-index key whose dedup id is longer than any PUSH may give (a
 * plain put under the queue's prefix): the EXPIRE sweep that meets it
 * must report the damage. It used to build the dedup key from the tail
 * first and abort on the key-length assertion in q_key(). */
Test(review_queue, planted_long_dedup_index_key_is_an_error_not_an_abort)
{
	cr_assert_eq(push_dedup(1000, "d1"), 0);
	plant_x_key(1000, 300);
	struct st_op op = qop(ST_Q_EXPIRE, 1000 + DEDUP_WINDOW_MS + 1);
	cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID);
	/* nothing changed: the real dedup id is still remembered */
	struct st_queue_stats s;
	cr_assert_eq(st_queue_stats(t.st, (const uint8_t *)QN, strlen(QN), &s), 0);
	cr_assert_eq(s.ready, 1);
}

/* The longest tail that still fits a key after the prefix: same outcome. */
Test(review_queue, planted_longest_dedup_index_key_is_an_error)
{
	cr_assert_eq(push_dedup(1000, "d1"), 0);
	size_t room = ST_KEY_BYTES_MAX - (sizeof(ST_QUEUE_PREFIX QN "/x/") - 1) - 21;
	plant_x_key(1000, room);
	struct st_op op = qop(ST_Q_EXPIRE, 1000 + DEDUP_WINDOW_MS + 1);
	cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID);
}

/* An empty dedup id in the index is damage too (PUSH never writes one). */
Test(review_queue, planted_empty_dedup_index_key_is_an_error)
{
	cr_assert_eq(push_dedup(1000, "d1"), 0);
	plant_x_key(1000, 0);
	struct st_op op = qop(ST_Q_EXPIRE, 1000 + DEDUP_WINDOW_MS + 1);
	cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID);
}

/* A genuine sweep still forgets the id (the fix must not break it). */
Test(review_queue, dedup_sweep_still_forgets_old_ids)
{
	cr_assert_eq(push_dedup(1000, "d1"), 0);
	struct st_op op = qop(ST_Q_EXPIRE, 1000 + DEDUP_WINDOW_MS + 1);
	cr_assert_eq(tst_do(&t, &op), 0);
	struct st_queue_stats s;
	cr_assert_eq(st_queue_stats(t.st, (const uint8_t *)QN, strlen(QN), &s), 0);
	cr_assert_eq(s.next_due_ms, 0, "nothing due once the id is forgotten");
	cr_assert_eq(push_dedup(1000 + DEDUP_WINDOW_MS + 2, "d1"), 0);
	cr_assert_eq(st_queue_stats(t.st, (const uint8_t *)QN, strlen(QN), &s), 0);
	cr_assert_eq(s.ready, 2, "the id was forgotten: a new message");
}

/* Plants the queue's stats record: version 1 and nine big-endian u64
 * (ready, inflight, delayed, dead, seq_head, seq_tail, f_lo, d_lo, x_lo). */
static void plant_stats(const uint64_t f[9])
{
	uint8_t v[1 + 9 * 8];
	v[0] = 1;
	for (size_t i = 0; i < 9; i++)
		for (size_t b = 0; b < 8; b++)
			v[1 + 8 * i + b] = (uint8_t)(f[i] >> (56 - 8 * b));
	const char *k = ST_QUEUE_PREFIX QN "/stats";
	struct st_op put = op_put((const uint8_t *)k, strlen(k), v, sizeof(v));
	cr_assert_eq(tst_do(&t, &put), 0);
}

#define NONE ((uint64_t)INT64_MAX)

/* Ready positions past INT64_MAX: a push must not abort on the key's
 * "number >= 0" assertion, and the stats read (on the server's loop
 * thread) must not either. */
Test(review_queue, planted_stats_with_huge_ready_position_is_an_error)
{
	const uint64_t huge = (uint64_t)INT64_MAX + 5;
	plant_stats((const uint64_t[9]){ 0, 0, 0, 0, huge, huge, NONE, NONE, NONE });
	struct st_queue_stats s;
	cr_assert_eq(st_queue_stats(t.st, (const uint8_t *)QN, strlen(QN), &s),
		ST_ERR_QUEUE_INVALID);
	struct st_op op = qop(ST_Q_PUSH, 1000);
	op.u.queue.payload = (const uint8_t *)"p";
	op.u.queue.payload_len = 1;
	cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID);
}

/* One ready message at a position just below INT64_MAX (head != tail):
 * the stats read looks the head up. */
Test(review_queue, planted_stats_with_negative_head_is_an_error)
{
	const uint64_t head = (uint64_t)INT64_MAX + 1;
	plant_stats((const uint64_t[9]){ 1, 0, 0, 0, head, head + 1, NONE, NONE,
		NONE });
	struct st_queue_stats s;
	cr_assert_eq(st_queue_stats(t.st, (const uint8_t *)QN, strlen(QN), &s),
		ST_ERR_QUEUE_INVALID);
	struct st_result res;
	struct st_op op = qop(ST_Q_POP, 1000);
	op.u.queue.visibility_ms = 10;
	op.u.queue.max_n = 1;
	cr_assert_eq(tst_apply(&t, &op, &res), ST_ERR_QUEUE_INVALID);
	st_result_free(&res);
}

/* Negative "smallest time" hints: a pop (promotes delayed), an expire
 * (in flight, dedup ids) would scan from a negative time. */
Test(review_queue, planted_stats_with_negative_time_hints_are_errors)
{
	const uint64_t neg = (uint64_t)-5;
	for (int which = 0; which < 3; which++) {
		uint64_t f[9] = { 0, 0, 0, 0, 7, 7, NONE, NONE, NONE };
		f[6 + which] = neg;
		plant_stats(f);
		struct st_result res;
		struct st_op op = qop(ST_Q_POP, 1000);
		op.u.queue.visibility_ms = 10;
		op.u.queue.max_n = 1;
		cr_assert_eq(tst_apply(&t, &op, &res), ST_ERR_QUEUE_INVALID,
			"hint %d", which);
		st_result_free(&res);
		op = qop(ST_Q_EXPIRE, 1000 + DEDUP_WINDOW_MS);
		cr_assert_eq(tst_do(&t, &op), ST_ERR_QUEUE_INVALID, "hint %d", which);
	}
}

/* What one DLQ listing may load: the read runs on the server's loop
 * thread and copies every payload it lists, so 1000 dead letters of the
 * largest payload would be 1.5 GB. It stops at about 16 MiB of payload
 * (at least one message) and says there is more. */
#define DLQ_MSGS 20
#define DLQ_PAYLOAD_BYTES (1024u * 1024u)
#define DLQ_READ_BYTES_MAX (16u * 1024u * 1024u)

Test(review_queue, dlq_listing_is_bounded_in_bytes)
{
	uint8_t *payload = malloc(DLQ_PAYLOAD_BYTES);
	cr_assert_not_null(payload);
	memset(payload, 'p', DLQ_PAYLOAD_BYTES);
	struct st_op op = qop(ST_Q_CONFIG, 0);
	op.u.queue.max_deliveries = 1;
	cr_assert_eq(tst_do(&t, &op), 0);
	for (int i = 0; i < DLQ_MSGS; i++) {
		op = qop(ST_Q_PUSH, 0);
		op.u.queue.payload = payload;
		op.u.queue.payload_len = DLQ_PAYLOAD_BYTES;
		cr_assert_eq(tst_do(&t, &op), 0);
	}
	free(payload);
	op = qop(ST_Q_POP, 0);
	op.u.queue.visibility_ms = 10;
	op.u.queue.max_n = DLQ_MSGS;
	cr_assert_eq(tst_do(&t, &op), 0);
	op = qop(ST_Q_EXPIRE, 100);
	cr_assert_eq(tst_do(&t, &op), 0);
	struct st_queue_stats s;
	cr_assert_eq(st_queue_stats(t.st, (const uint8_t *)QN, strlen(QN), &s), 0);
	cr_assert_eq(s.dead, DLQ_MSGS);
	struct st_result res;
	cr_assert_eq(st_queue_dlq(t.st, (const uint8_t *)QN, strlen(QN),
		ST_QUEUE_DLQ_LIMIT_MAX, &res), 0);
	const struct st_queue_resp *q = &res.resp.u.queue;
	size_t bytes = 0;
	for (size_t i = 0; i < q->msgs_n; i++) {
		cr_assert_eq(q->msgs[i].payload_len, DLQ_PAYLOAD_BYTES);
		cr_assert_eq(q->msgs[i].payload[DLQ_PAYLOAD_BYTES - 1], 'p');
		bytes += q->msgs[i].payload_len;
	}
	cr_assert_gt(q->msgs_n, 0);
	cr_assert_leq(bytes, DLQ_READ_BYTES_MAX + DLQ_PAYLOAD_BYTES,
		"%zu bytes of payload in one listing", bytes);
	cr_assert(q->more, "the listing says more dead letters exist");
	st_result_free(&res);
	/* a small limit still lists exactly that many */
	cr_assert_eq(st_queue_dlq(t.st, (const uint8_t *)QN, strlen(QN), 3, &res), 0);
	cr_assert_eq(res.resp.u.queue.msgs_n, 3);
	cr_assert(res.resp.u.queue.more);
	st_result_free(&res);
}
