/*
 * test_queue_wire.c - the work-queue part of the client wire format
 * (RB_OP_QUEUE_*, client/rb_wire.c): every queue request and reply survives
 * encode -> decode -> encode byte for byte with its fields intact; cut,
 * mistyped, lying and random input is an error, never a crash or an
 * over-read (run under ASan); which queue ops the client may re-send; and
 * the library's argument checks, which refuse bad input before anything
 * is sent (no server needed). The batch ops (PUSH_BATCH, ACK_BATCH) carry
 * their items and per-item answers through the same checks.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "rb_wire.h"

TestSuite(queue_wire, .timeout = 60);

#define B(s) (const uint8_t *)(s), strlen(s)

static void assert_bytes(const uint8_t *p, size_t n, const char *want)
{
	cr_assert_eq(n, strlen(want), "length %zu, want %zu (%s)", n, strlen(want), want);
	if (n)
		cr_assert_eq(memcmp(p, want, n), 0, "bytes differ from %s", want);
}

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64: a fixed seed replays the same inputs */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A request with every field set (each op encodes the same body). */
static struct rb_op full_req(uint8_t type)
{
	struct rb_op op = { .type = type };
	op.u.queue = (struct rb_queue_req){ .queue = B("jobs"),
		.payload = B("payload\0with nul"), .delay_ms = 1500,
		.dedup_id = B("dedup-7"), .consumer = B("worker-3"),
		.visibility_ms = 30000, .max_n = 17, .wait_ms = 4000,
		.receipt = B("00000000000000000042-0000/3"), .max_deliveries = 9 };
	op.u.queue.payload_len = 16;   /* with the NUL byte inside */
	return op;
}

/* Encodes, decodes, re-encodes (same bytes); every strict prefix and one
 * trailing byte are refused. Returns the decoded request. */
static rb_wire_request *req_roundtrip(const struct rb_op *op)
{
	uint8_t *buf, *buf2;
	size_t len, len2;
	uint64_t id;
	uint8_t type;
	rb_wire_request *d;
	cr_assert_eq(rb_wire_encode_request(99, op, &buf, &len), 0, "encode op %d", op->type);
	cr_assert_eq(rb_wire_decode_request(buf, len, &id, &type, &d), 0, "decode op %d",
		op->type);
	cr_assert_eq(id, 99);
	cr_assert_eq(type, op->type);
	cr_assert_eq(rb_wire_encode_request(99, rb_wire_request_op(d), &buf2, &len2), 0);
	cr_assert_eq(len, len2);
	cr_assert_eq(memcmp(buf, buf2, len), 0, "re-encoding differs for op %d", op->type);
	for (size_t cut = 0; cut < len; cut++) {
		rb_wire_request *x = NULL;
		cr_assert_eq(rb_wire_decode_request(buf, cut, NULL, NULL, &x),
			RB_ERR_BAD_REQUEST, "prefix %zu of %zu", cut, len);
		cr_assert_null(x);
	}
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, buf, len);
	longer[len] = 0xc0;
	rb_wire_request *x = NULL;
	cr_assert_eq(rb_wire_decode_request(longer, len + 1, NULL, NULL, &x),
		RB_ERR_BAD_REQUEST);
	free(longer);
	free(buf);
	free(buf2);
	return d;
}

Test(queue_wire, every_queue_request_roundtrips_with_its_fields)
{
	for (uint8_t t = RB_OP_QUEUE_PUSH; t <= RB_OP_QUEUE_CONFIG; t++) {
		struct rb_op op = full_req(t);
		rb_wire_request *d = req_roundtrip(&op);
		const struct rb_queue_req *q = &rb_wire_request_op(d)->u.queue;
		assert_bytes(q->queue, q->queue_len, "jobs");
		cr_assert_eq(q->payload_len, 16);
		cr_assert_eq(memcmp(q->payload, "payload\0with nul", 16), 0);
		cr_assert_eq(q->delay_ms, 1500);
		assert_bytes(q->dedup_id, q->dedup_id_len, "dedup-7");
		assert_bytes(q->consumer, q->consumer_len, "worker-3");
		cr_assert_eq(q->visibility_ms, 30000);
		cr_assert_eq(q->max_n, 17);
		cr_assert_eq(q->wait_ms, 4000);
		assert_bytes(q->receipt, q->receipt_len, "00000000000000000042-0000/3");
		cr_assert_eq(q->max_deliveries, 9);
		rb_wire_request_free(d);
	}
}

Test(queue_wire, empty_fields_and_extreme_numbers_roundtrip)
{
	struct rb_op op = { .type = RB_OP_QUEUE_POP };
	op.u.queue = (struct rb_queue_req){ .queue = B("q"), .delay_ms = INT64_MIN,
		.visibility_ms = INT64_MAX, .max_n = UINT32_MAX, .wait_ms = -1,
		.max_deliveries = UINT32_MAX };
	rb_wire_request *d = req_roundtrip(&op);
	const struct rb_queue_req *q = &rb_wire_request_op(d)->u.queue;
	cr_assert_null(q->payload);
	cr_assert_eq(q->payload_len, 0);
	cr_assert_null(q->receipt);
	cr_assert_eq(q->delay_ms, INT64_MIN);
	cr_assert_eq(q->visibility_ms, INT64_MAX);
	cr_assert_eq(q->max_n, UINT32_MAX);
	cr_assert_eq(q->wait_ms, -1);
	cr_assert_eq(q->max_deliveries, UINT32_MAX);
	rb_wire_request_free(d);
}

/* Encodes resp as the reply to op, decodes it into *out and checks that
 * re-encoding gives the same bytes and that every cut is refused. */
static void reply_roundtrip(uint8_t op, const struct rb_resp *resp, struct rb_resp *out)
{
	uint8_t *buf, *buf2;
	size_t len, len2;
	uint64_t id;
	uint8_t type;
	cr_assert_eq(rb_wire_encode_reply(5, op, resp, &buf, &len), 0, "encode reply %d", op);
	cr_assert_eq(rb_wire_decode_reply(buf, len, &id, &type, out), 0);
	cr_assert_eq(id, 5);
	cr_assert_eq(type, op);
	cr_assert_eq(rb_wire_encode_reply(5, op, out, &buf2, &len2), 0);
	cr_assert_eq(len, len2);
	cr_assert_eq(memcmp(buf, buf2, len), 0);
	for (size_t cut = 0; cut < len; cut++) {
		struct rb_resp x = { 0 };
		cr_assert_eq(rb_wire_decode_reply(buf, cut, NULL, NULL, &x), RB_ERR_PROTOCOL,
			"prefix %zu of %zu", cut, len);
		rb_resp_free(&x);
	}
	free(buf);
	free(buf2);
}

Test(queue_wire, pop_reply_keeps_every_message_field)
{
	struct rb_queue_msg ms[2] = {
		{ .id = B("00000000000000000007-0000"), .payload = B("first"),
		  .delivery_count = 1, .receipt = B("00000000000000000007-0000/1"),
		  .enqueued_ms = 1795628084707 },
		{ .id = B("00000000000000000009-0000"), .payload = NULL, .payload_len = 0,
		  .delivery_count = UINT32_MAX, .receipt = B("r"), .enqueued_ms = -5 },
	};
	struct rb_resp resp = { .header = { 1, 2, 3, 4 } };
	resp.body.type = RB_OP_QUEUE_POP;
	resp.body.u.queue.msgs = ms;
	resp.body.u.queue.msgs_n = 2;
	struct rb_resp out = { 0 };
	reply_roundtrip(RB_OP_QUEUE_POP, &resp, &out);
	const struct rb_queue_resp *q = &out.body.u.queue;
	cr_assert_eq(out.body.type, RB_OP_QUEUE_POP);
	cr_assert_eq(out.header.revision, 3);
	cr_assert_eq(q->msgs_n, 2);
	assert_bytes(q->msgs[0].id, q->msgs[0].id_len, "00000000000000000007-0000");
	assert_bytes(q->msgs[0].payload, q->msgs[0].payload_len, "first");
	assert_bytes(q->msgs[0].receipt, q->msgs[0].receipt_len,
		"00000000000000000007-0000/1");
	cr_assert_eq(q->msgs[0].delivery_count, 1);
	cr_assert_eq(q->msgs[0].enqueued_ms, 1795628084707);
	cr_assert_eq(q->msgs[1].payload_len, 0);
	cr_assert_eq(q->msgs[1].delivery_count, UINT32_MAX);
	cr_assert_eq(q->msgs[1].enqueued_ms, -5);
	cr_assert_not(q->duplicate);
	rb_resp_free(&out);
}

Test(queue_wire, stats_and_push_replies_roundtrip)
{
	struct rb_resp resp = { .header = { 9, 9, 9, 9 } };
	resp.body.type = RB_OP_QUEUE_STATS;
	resp.body.u.queue = (struct rb_queue_resp){ .ready = 3, .inflight = UINT64_MAX,
		.delayed = 1, .dead = 2, .oldest_ready_enqueued_ms = 1000,
		.oldest_ready_age_ms = 250, .max_deliveries = 5 };
	struct rb_resp out = { 0 };
	reply_roundtrip(RB_OP_QUEUE_STATS, &resp, &out);
	const struct rb_queue_resp *q = &out.body.u.queue;
	cr_assert_eq(q->ready, 3);
	cr_assert_eq(q->inflight, UINT64_MAX);
	cr_assert_eq(q->delayed, 1);
	cr_assert_eq(q->dead, 2);
	cr_assert_eq(q->oldest_ready_enqueued_ms, 1000);
	cr_assert_eq(q->oldest_ready_age_ms, 250);
	cr_assert_eq(q->max_deliveries, 5);
	cr_assert_eq(q->msgs_n, 0);
	rb_resp_free(&out);

	struct rb_queue_msg m = { .id = B("00000000000000000002-0000") };
	resp.body.type = RB_OP_QUEUE_PUSH;
	resp.body.u.queue = (struct rb_queue_resp){ .msgs = &m, .msgs_n = 1,
		.duplicate = true };
	reply_roundtrip(RB_OP_QUEUE_PUSH, &resp, &out);
	cr_assert(out.body.u.queue.duplicate);
	assert_bytes(out.body.u.queue.msgs[0].id, out.body.u.queue.msgs[0].id_len,
		"00000000000000000002-0000");
	rb_resp_free(&out);

	/* a receipt error travels with its message */
	struct rb_resp e = { .err = RB_ERR_KEY_NOT_FOUND, .msg = "receipt is stale" };
	reply_roundtrip(RB_OP_QUEUE_ACK, &e, &out);
	cr_assert_eq(out.err, RB_ERR_KEY_NOT_FOUND);
	cr_assert_str_eq(out.msg, "receipt is stale");
	rb_resp_free(&out);
}

Test(queue_wire, wrong_types_short_bodies_and_lying_counts_are_refused)
{
	/* [1, id, 20, body] with a body of 9 fields (one short) */
	static const uint8_t short_body[] = { 0x94, 0x01, 0x01, 0x14,
		0x99, 0xc4, 0x01, 'q', 0xc4, 0x00, 0x00, 0xc4, 0x00, 0xc4, 0x00,
		0x00, 0x00, 0x00, 0xc4, 0x00 };
	rb_wire_request *x = NULL;
	uint64_t id;
	uint8_t op;
	cr_assert_eq(rb_wire_decode_request(short_body, sizeof(short_body), &id, &op, &x),
		RB_ERR_BAD_REQUEST);
	cr_assert_null(x);
	cr_assert_eq(op, RB_OP_QUEUE_PUSH, "the op is still reported for the error reply");
	/* the queue name as an integer instead of bytes */
	struct rb_op good = full_req(RB_OP_QUEUE_PUSH);
	uint8_t *buf;
	size_t len;
	cr_assert_eq(rb_wire_encode_request(1, &good, &buf, &len), 0);
	cr_assert_eq(buf[4], 0x9a, "body is a 10-array");
	uint8_t *bad = malloc(len);
	memcpy(bad, buf, len);
	bad[5] = 0x05;   /* bin8 tag -> positive fixint: then "jobs" is garbage */
	cr_assert_eq(rb_wire_decode_request(bad, len, NULL, NULL, &x), RB_ERR_BAD_REQUEST);
	/* a max_n above 32 bits */
	static const uint8_t big_n[] = { 0x94, 0x01, 0x01, 0x15,
		0x9a, 0xc4, 0x01, 'q', 0xc4, 0x00, 0x00, 0xc4, 0x00, 0xc4, 0x00,
		0x00, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0x00, 0xc4, 0x00, 0x00 };
	cr_assert_eq(rb_wire_decode_request(big_n, sizeof(big_n), NULL, NULL, &x),
		RB_ERR_BAD_REQUEST);
	/* a pop reply claiming a billion messages in a few bytes */
	static const uint8_t lie[] = { 0x96, 0x01, 0x05, 0x15, 0x94, 0, 0, 0, 0, 0xc0,
		0x99, 0xdd, 0x3b, 0x9a, 0xca, 0x00, 0xc2 };
	struct rb_resp r = { 0 };
	cr_assert_eq(rb_wire_decode_reply(lie, sizeof(lie), NULL, NULL, &r), RB_ERR_PROTOCOL);
	cr_assert_null(r.mem);
	/* op 31 is not a queue op (yet): refused */
	struct rb_op none = good;
	none.type = RB_OP_TYPE_COUNT;
	uint8_t *nb;
	size_t nl;
	cr_assert_eq(rb_wire_encode_request(1, &none, &nb, &nl), RB_ERR_INVALID);
	free(bad);
	free(buf);
}

static const struct rb_queue_push_item batch_items[3] = {
	{ .payload = (const uint8_t *)"one", .payload_len = 3, .delay_ms = 0 },
	{ .payload = NULL, .payload_len = 0, .delay_ms = 2500,
	  .dedup_id = (const uint8_t *)"d-2", .dedup_id_len = 3 },
	{ .payload = (const uint8_t *)"x\0y", .payload_len = 3, .delay_ms = INT64_MAX,
	  .dedup_id = (const uint8_t *)"d-3", .dedup_id_len = 3 },
};
static const struct rb_queue_receipt batch_receipts[2] = {
	{ (const uint8_t *)"00000000000000000042-0001/1", 27 },
	{ (const uint8_t *)"junk", 4 },
};

static struct rb_op batch_req(uint8_t type)
{
	struct rb_op op = { .type = type };
	op.u.queue.queue = (const uint8_t *)"jobs";
	op.u.queue.queue_len = 4;
	if (type == RB_OP_QUEUE_PUSH_BATCH) {
		op.u.queue.items = batch_items;
		op.u.queue.items_n = 3;
	} else {
		op.u.queue.receipts = batch_receipts;
		op.u.queue.receipts_n = 2;
	}
	return op;
}

Test(queue_wire, batch_requests_roundtrip_with_their_items)
{
	struct rb_op op = batch_req(RB_OP_QUEUE_PUSH_BATCH);
	rb_wire_request *d = req_roundtrip(&op);
	const struct rb_queue_req *q = &rb_wire_request_op(d)->u.queue;
	assert_bytes(q->queue, q->queue_len, "jobs");
	cr_assert_eq(q->items_n, 3);
	cr_assert_eq(q->receipts_n, 0);
	for (size_t i = 0; i < 3; i++) {
		const struct rb_queue_push_item *a = &q->items[i], *b = &batch_items[i];
		cr_assert_eq(a->payload_len, b->payload_len, "item %zu", i);
		cr_assert(a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
		cr_assert_eq(a->delay_ms, b->delay_ms);
		cr_assert_eq(a->dedup_id_len, b->dedup_id_len);
		cr_assert(a->dedup_id_len == 0 ||
			memcmp(a->dedup_id, b->dedup_id, a->dedup_id_len) == 0);
	}
	rb_wire_request_free(d);

	op = batch_req(RB_OP_QUEUE_ACK_BATCH);
	d = req_roundtrip(&op);
	q = &rb_wire_request_op(d)->u.queue;
	cr_assert_eq(q->receipts_n, 2);
	cr_assert_eq(q->items_n, 0);
	assert_bytes(q->receipts[0].receipt, q->receipts[0].receipt_len,
		"00000000000000000042-0001/1");
	assert_bytes(q->receipts[1].receipt, q->receipts[1].receipt_len, "junk");
	rb_wire_request_free(d);

	/* a batch request of the single ops' shape (no items field) is
	 * refused, as is an item of the wrong shape */
	op = batch_req(RB_OP_QUEUE_ACK_BATCH);
	op.type = RB_OP_QUEUE_ACK;
	uint8_t *buf;
	size_t len;
	rb_wire_request *x = NULL;
	uint8_t type;
	cr_assert_eq(rb_wire_encode_request(1, &op, &buf, &len), 0);
	cr_assert_eq(buf[3], RB_OP_QUEUE_ACK);
	buf[3] = RB_OP_QUEUE_ACK_BATCH;
	cr_assert_eq(rb_wire_decode_request(buf, len, NULL, &type, &x), RB_ERR_BAD_REQUEST);
	cr_assert_eq(type, RB_OP_QUEUE_ACK_BATCH, "still reported for the error reply");
	free(buf);
	op = batch_req(RB_OP_QUEUE_PUSH_BATCH);
	cr_assert_eq(rb_wire_encode_request(1, &op, &buf, &len), 0);
	cr_assert_eq(buf[len - 20], 0x93, "the last item: a 3-array tag, then 5 + 9 + 5 bytes");
	buf[len - 20] = 0x92;
	cr_assert_eq(rb_wire_decode_request(buf, len, NULL, NULL, &x), RB_ERR_BAD_REQUEST);
	free(buf);
	/* NULL items with a count: refused at encoding */
	op.u.queue.items = NULL;
	cr_assert_eq(rb_wire_encode_request(1, &op, &buf, &len), RB_ERR_INVALID);
}

Test(queue_wire, batch_replies_keep_duplicates_and_results)
{
	struct rb_queue_msg ms[2] = {
		{ .id = B("00000000000000000011-0000") },
		{ .id = B("00000000000000000003-0002"), .duplicate = true },
	};
	struct rb_resp resp = { .header = { 1, 2, 11, 4 } };
	resp.body.type = RB_OP_QUEUE_PUSH_BATCH;
	resp.body.u.queue.msgs = ms;
	resp.body.u.queue.msgs_n = 2;
	struct rb_resp out = { 0 };
	reply_roundtrip(RB_OP_QUEUE_PUSH_BATCH, &resp, &out);
	cr_assert_eq(out.body.u.queue.msgs_n, 2);
	cr_assert_not(out.body.u.queue.msgs[0].duplicate);
	cr_assert(out.body.u.queue.msgs[1].duplicate);
	assert_bytes(out.body.u.queue.msgs[1].id, out.body.u.queue.msgs[1].id_len,
		"00000000000000000003-0002");
	rb_resp_free(&out);

	int results[3] = { 0, RB_ERR_KEY_NOT_FOUND, 0 };
	resp.body = (struct rb_op_resp){ .type = RB_OP_QUEUE_ACK_BATCH };
	resp.body.u.queue.results = results;
	resp.body.u.queue.results_n = 3;
	reply_roundtrip(RB_OP_QUEUE_ACK_BATCH, &resp, &out);
	cr_assert_eq(out.body.u.queue.results_n, 3);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(out.body.u.queue.results[i], results[i], "result %zu", i);
	rb_resp_free(&out);

	/* a code this client does not know is RB_ERR_UNKNOWN, not a crash */
	results[1] = -1000;
	uint8_t *buf;
	size_t len;
	cr_assert_eq(rb_wire_encode_reply(5, RB_OP_QUEUE_ACK_BATCH, &resp, &buf, &len), 0);
	cr_assert_eq(rb_wire_decode_reply(buf, len, NULL, NULL, &out), 0);
	cr_assert_eq(out.body.u.queue.results[1], RB_ERR_UNKNOWN);
	rb_resp_free(&out);
	free(buf);
}

Test(queue_wire, random_mutations_never_crash)
{
	uint64_t s = 0x9e11e5eedull;
	struct rb_op op = full_req(RB_OP_QUEUE_POP);
	struct rb_queue_msg m = { .id = B("00000000000000000007-0000"), .payload = B("p"),
		.delivery_count = 2, .receipt = B("00000000000000000007-0000/2") };
	struct rb_resp rr = { 0 };
	rr.body.type = RB_OP_QUEUE_POP;
	rr.body.u.queue.msgs = &m;
	rr.body.u.queue.msgs_n = 1;
	uint8_t *corpus[5];
	size_t clen[5];
	cr_assert_eq(rb_wire_encode_request(1, &op, &corpus[0], &clen[0]), 0);
	cr_assert_eq(rb_wire_encode_reply(1, RB_OP_QUEUE_POP, &rr, &corpus[1], &clen[1]), 0);
	struct rb_op pb = batch_req(RB_OP_QUEUE_PUSH_BATCH);
	struct rb_op ab = batch_req(RB_OP_QUEUE_ACK_BATCH);
	cr_assert_eq(rb_wire_encode_request(1, &pb, &corpus[2], &clen[2]), 0);
	cr_assert_eq(rb_wire_encode_request(1, &ab, &corpus[3], &clen[3]), 0);
	int results[2] = { 0, RB_ERR_KEY_NOT_FOUND };
	struct rb_resp ar = { 0 };
	ar.body.type = RB_OP_QUEUE_ACK_BATCH;
	ar.body.u.queue.results = results;
	ar.body.u.queue.results_n = 2;
	cr_assert_eq(rb_wire_encode_reply(1, RB_OP_QUEUE_ACK_BATCH, &ar, &corpus[4],
		&clen[4]), 0);
	uint8_t buf[256];
	for (int iter = 0; iter < 50000; iter++) {
		size_t c = rng_next(&s) % 5, len = clen[c];
		cr_assert(len <= sizeof(buf));
		memcpy(buf, corpus[c], len);
		unsigned flips = 1 + rng_next(&s) % 4;
		for (unsigned f = 0; f < flips; f++)
			buf[rng_next(&s) % len] = (uint8_t)rng_next(&s);
		if (rng_next(&s) % 4 == 0)
			len = rng_next(&s) % (len + 1);
		rb_wire_request *x = NULL;
		int rc = rb_wire_decode_request(buf, len, NULL, NULL, &x);
		cr_assert(rc == 0 || rc == RB_ERR_BAD_REQUEST, "iteration %d: %d", iter, rc);
		if (rc == 0) {
			/* whatever decodes must encode again */
			uint8_t *again;
			size_t alen;
			cr_assert_eq(rb_wire_encode_request(1, rb_wire_request_op(x), &again,
				&alen), 0, "iteration %d", iter);
			free(again);
		}
		rb_wire_request_free(x);
		struct rb_resp r = { 0 };
		rc = rb_wire_decode_reply(buf, len, NULL, NULL, &r);
		cr_assert(rc == 0 || rc == RB_ERR_PROTOCOL, "iteration %d: %d", iter, rc);
		rb_resp_free(&r);
	}
	for (size_t c = 0; c < 5; c++)
		free(corpus[c]);
}

Test(queue_wire, which_queue_ops_may_be_resent)
{
	struct rb_op op = { .type = RB_OP_QUEUE_PUSH };
	op.u.queue.queue = (const uint8_t *)"q";
	op.u.queue.queue_len = 1;
	cr_assert(rb_op_is_write(&op), "a push without dedup id is never re-sent");
	op.u.queue.dedup_id = (const uint8_t *)"d";
	op.u.queue.dedup_id_len = 1;
	cr_assert_not(rb_op_is_write(&op), "a push with a dedup id is idempotent");
	static const uint8_t writes[] = { RB_OP_QUEUE_POP, RB_OP_QUEUE_ACK,
		RB_OP_QUEUE_NACK, RB_OP_QUEUE_EXTEND, RB_OP_QUEUE_REDRIVE,
		RB_OP_QUEUE_CONFIG, RB_OP_QUEUE_PUSH_BATCH, RB_OP_QUEUE_ACK_BATCH };
	for (size_t i = 0; i < sizeof(writes); i++) {
		struct rb_op w = { .type = writes[i] };
		cr_assert(rb_op_is_write(&w), "op %d is a write", writes[i]);
	}
	struct rb_op r1 = { .type = RB_OP_QUEUE_STATS }, r2 = { .type = RB_OP_QUEUE_DLQ };
	cr_assert_not(rb_op_is_write(&r1));
	cr_assert_not(rb_op_is_write(&r2));
}

/* The library refuses bad arguments itself: RB_ERR_INVALID with a message,
 * before dialling (the endpoint below has no server; a call that reached
 * the network would wait for the dial timeout and fail otherwise). */
Test(queue_wire, library_refuses_bad_arguments_without_sending)
{
	const char *eps[] = { "tcp://127.0.0.1:9" };
	struct rb_config cfg = { .endpoints = eps, .endpoints_n = 1,
		.dial_timeout_ms = 5000, .command_timeout_ms = 5000 };
	rb_client *c;
	cr_assert_eq(rb_client_open(&cfg, &c), 0);
	char long_name[RB_QUEUE_NAME_BYTES_MAX + 2];
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	static const uint8_t rc[] = "r/1";
	struct rb_resp r = { 0 };
#define REFUSED(call) do { \
		cr_assert_eq((call), RB_ERR_INVALID, "%s", #call); \
		cr_assert_eq(r.err, RB_ERR_INVALID); \
		cr_assert(r.msg && r.msg[0], "a message says why: %s", #call); \
		rb_resp_free(&r); \
	} while (0)
	REFUSED(rb_queue_push(c, "", "p", 1, 0, NULL, &r));
	REFUSED(rb_queue_push(c, NULL, "p", 1, 0, NULL, &r));
	REFUSED(rb_queue_push(c, long_name, "p", 1, 0, NULL, &r));
	REFUSED(rb_queue_push(c, "q", "p", 1, -1, NULL, &r));
	REFUSED(rb_queue_push(c, "q", NULL, 3, 0, NULL, &r));
	REFUSED(rb_queue_push(c, "q", "p", 1, 0, long_name, &r));
	REFUSED(rb_queue_pop(c, "q", long_name, 1000, 1, 0, &r));
	REFUSED(rb_queue_pop(c, "q", "w", -1, 1, 0, &r));
	REFUSED(rb_queue_pop(c, "q", "w", 1000, RB_QUEUE_POP_MAX + 1, 0, &r));
	REFUSED(rb_queue_pop(c, "q", "w", 1000, 1, -5, &r));
	REFUSED(rb_queue_ack(c, "q", NULL, 0, &r));
	REFUSED(rb_queue_nack(c, "q", rc, 3, -1, &r));
	REFUSED(rb_queue_extend(c, "q", rc, 3, 0, &r));
	REFUSED(rb_queue_dlq(c, "q", RB_QUEUE_DLQ_LIMIT_MAX + 1, &r));
	REFUSED(rb_queue_redrive(c, "q", RB_QUEUE_POP_MAX + 1, &r));
	REFUSED(rb_queue_config(c, "q", 0, &r));
	REFUSED(rb_queue_config(c, "q", RB_QUEUE_DELIVERIES_MAX + 1, &r));
	REFUSED(rb_queue_stats(c, "", &r));
	/* batches: the count, then every item as the single call checks it */
	static struct rb_queue_push_item items[RB_QUEUE_BATCH_MAX + 1];
	static struct rb_queue_receipt rcpts[RB_QUEUE_BATCH_MAX + 1];
	for (size_t i = 0; i <= RB_QUEUE_BATCH_MAX; i++) {
		items[i] = (struct rb_queue_push_item){ .payload = rc, .payload_len = 1 };
		rcpts[i] = (struct rb_queue_receipt){ rc, 3 };
	}
	REFUSED(rb_queue_push_batch(c, "q", items, 0, &r));
	REFUSED(rb_queue_push_batch(c, "q", items, RB_QUEUE_BATCH_MAX + 1, &r));
	REFUSED(rb_queue_push_batch(c, "q", NULL, 3, &r));
	REFUSED(rb_queue_push_batch(c, "", items, 3, &r));
	items[2].delay_ms = -1;
	REFUSED(rb_queue_push_batch(c, "q", items, 3, &r));
	items[2].delay_ms = RB_QUEUE_DELAY_MS_MAX + 1;
	REFUSED(rb_queue_push_batch(c, "q", items, 3, &r));
	items[2] = (struct rb_queue_push_item){ .payload = NULL, .payload_len = 2 };
	REFUSED(rb_queue_push_batch(c, "q", items, 3, &r));
	items[2] = (struct rb_queue_push_item){ .dedup_id = (const uint8_t *)long_name,
		.dedup_id_len = RB_QUEUE_DEDUP_ID_BYTES_MAX + 1 };
	REFUSED(rb_queue_push_batch(c, "q", items, 3, &r));
	REFUSED(rb_queue_ack_batch(c, "q", rcpts, 0, &r));
	REFUSED(rb_queue_ack_batch(c, "q", rcpts, RB_QUEUE_BATCH_MAX + 1, &r));
	REFUSED(rb_queue_ack_batch(c, "q", NULL, 1, &r));
	rcpts[1].receipt_len = 0;
	REFUSED(rb_queue_ack_batch(c, "q", rcpts, 2, &r));
#undef REFUSED
	rb_client_close(c);
}
