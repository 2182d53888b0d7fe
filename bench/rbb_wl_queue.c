/*
 * rbb_wl_queue.c - the `queue` workload of raftbus-bench (as
 * bench/nats-load's queue against a JetStream work queue): N producers
 * push --total messages (RB_OP_QUEUE_PUSH, or RB_OP_QUEUE_PUSH_BATCH of
 * --push-batch messages per request) to one fresh queue through the
 * leader while M consumers pop (RB_OP_QUEUE_POP, up to --batch at a time,
 * long-polling when the queue is empty) and ack what they popped before
 * popping again: message by message (RB_OP_QUEUE_ACK) with --batch 1, else
 * the whole popped batch in one RB_OP_QUEUE_ACK_BATCH. docs/queues.md has
 * the semantics.
 *
 * Measured: acked messages per second (first push to last ack) and, per
 * message, push send time (stamped in the payload) to ack reply.
 * Checked: every pushed message is acked exactly once: a successful ack of
 * a message already acked is a duplicate; a message never acked is
 * missing (both errors). A failed ack (a stale receipt after the
 * visibility timeout) is not an error by itself: the message comes back
 * and is acked later.
 *
 * Payload: send time (8 bytes), the message's number (8 bytes), filler.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbb.h"

/* The payload carries the send time and the message's number. */
#define QUEUE_SIZE_BYTES_MIN 16u
/* Longest receipt kept ("<20 digits>-<4 digits>/<deliveries>" is ~31). */
#define QUEUE_RECEIPT_BYTES_MAX 64u
/* Server-side wait of a pop on an empty queue; a consumer pops again
 * after an empty reply. */
#define QUEUE_POP_WAIT_MS 1000
/* Room for "rbb-" + a nonce, and for a consumer's name. */
#define QUEUE_NAME_BYTES_MAX 64u
#define QUEUE_CONSUMER_BYTES_MAX 32u
/* Successful acks counted per message (the counter saturates). */
#define QUEUE_ACKS_COUNTED_MAX 255u

_Static_assert(RB_QUEUE_POP_MAX <= RB_QUEUE_BATCH_MAX,
    "a popped batch is acked in one ACK_BATCH");

struct held {
	uint64_t seq;
	uint64_t sent_ns;
	uint8_t receipt[QUEUE_RECEIPT_BYTES_MAX];
	size_t receipt_len;
};

struct queue_state;

/* One consumer: pops a batch, then acks its messages one by one (--batch
 * 1) or all at once. */
struct consumer {
	struct queue_state *q;
	char name[QUEUE_CONSUMER_BYTES_MAX];
	struct held *held;       /* batch */
	struct rb_queue_receipt *receipts; /* the ACK_BATCH in flight */
	unsigned held_n;
	unsigned held_i;         /* the next (or in-flight) ack */
	bool acking;             /* the request in flight is an ack */
};

struct queue_state {
	unsigned producers;
	unsigned consumers;
	unsigned size;
	unsigned batch;
	unsigned push_batch;
	char name[QUEUE_NAME_BYTES_MAX];
	size_t name_len;
	/* the run's, shared by the callbacks */
	struct rbb_stats *st;
	uint64_t total;
	atomic_uchar *acks;      /* successful acks per message (saturating) */
	struct consumer *cons;
	struct rbb_writers *producers_w;
	atomic_uint_fast64_t acked;      /* messages acked at least once */
	atomic_uint_fast64_t dup_acks;
	atomic_uint_fast64_t foreign;    /* popped, not one of the run's */
	atomic_uint_fast64_t ack_failed;
	atomic_uint_fast64_t pop_failed;
	atomic_int pop_err;              /* the first pop error */
	atomic_uint_fast64_t last_ns;
};

static const struct rbb_flag queue_flags[] = {
	{ "--producers", RBB_FLAG_UNSIGNED, offsetof(struct queue_state,
	  producers), 1, RBB_CLIENTS_MAX, "producers (default 1)" },
	{ "--consumers", RBB_FLAG_UNSIGNED, offsetof(struct queue_state,
	  consumers), 1, RBB_CLIENTS_MAX, "consumers (default 1)" },
	{ "--size", RBB_FLAG_UNSIGNED, offsetof(struct queue_state, size),
	  QUEUE_SIZE_BYTES_MIN, RBB_VALUE_BYTES_MAX, "payload bytes, at least "
	  "16: send time and number (default 128)", "B" },
	{ "--batch", RBB_FLAG_UNSIGNED, offsetof(struct queue_state, batch),
	  1, RB_QUEUE_POP_MAX, "messages claimed per pop (default 1); above 1 "
	  "a consumer acks each popped batch in one ACK_BATCH" },
	{ "--push-batch", RBB_FLAG_UNSIGNED, offsetof(struct queue_state,
	  push_batch), 1, RB_QUEUE_BATCH_MAX, "messages per push request "
	  "(PUSH_BATCH above 1; --total must be a multiple; default 1)", "P" },
	{ NULL, 0, 0, 0, 0, NULL },
};

static void queue_defaults(void *state)
{
	struct queue_state *q = state;
	q->producers = 1;
	q->consumers = 1;
	q->size = 128;
	q->batch = 1;
	q->push_batch = 1;
}

static int queue_validate(struct rbb_run *run)
{
	if (run->rate) {
		fprintf(stderr, "raftbus-bench queue: --rate is not supported "
		    "(writers send as fast as they are answered)\n");
		return -1;
	}
	const struct queue_state *q = run->wl_state;
	if (run->total % q->push_batch) {
		fprintf(stderr, "raftbus-bench queue: --total must be a multiple "
		    "of --push-batch\n");
		return -1;
	}
	if (run->total > RBB_FLOW_MESSAGES_MAX) {
		fprintf(stderr, "raftbus-bench queue: --total may be at most "
		    "%llu\n", (unsigned long long)RBB_FLOW_MESSAGES_MAX);
		return -1;
	}
	return 0;
}

static int queue_setup(struct rbb_run *run, struct rbb_phase *measured)
{
	(void)measured;
	struct queue_state *q = run->wl_state;
	char nonce[48];
	rbb_run_nonce(nonce, sizeof(nonce));
	int n = snprintf(q->name, sizeof(q->name), "rbb-%s", nonce);
	q->name_len = (size_t)n;
	return 0;
}

/* ---- producers ---------------------------------------------------------- */

/* A message's payload: send time, number, filler. */
static void payload_build(const struct queue_state *q, uint64_t seq,
    uint8_t *buf)
{
	memset(buf + 16, 'q', q->size - 16);
	for (unsigned i = 0; i < 8; i++)
		buf[8 + i] = (uint8_t)(seq >> (8 * i));
	rbb_stamp_put(buf);
}

/* A producer's scratch: the items of a batch, then their payloads (the
 * items first: the buffer is malloc-aligned). */
static size_t push_buf_bytes(const struct queue_state *q)
{
	if (q->push_batch == 1)
		return q->size;
	size_t n = q->push_batch * (sizeof(struct rb_queue_push_item) + q->size);
	/* writers' buffers are cut from one block: keep each one aligned */
	return (n + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) *
	    _Alignof(max_align_t);
}

/* Write number seq is messages [seq * P, seq * P + P) (validate made
 * --total a multiple of P). */
static void push_build(void *arg, uint64_t seq, uint8_t *buf,
    struct rb_op *op)
{
	const struct queue_state *q = arg;
	op->u.queue = (struct rb_queue_req){
	    .queue = (const uint8_t *)q->name, .queue_len = q->name_len };
	if (q->push_batch == 1) {
		payload_build(q, seq, buf);
		op->type = RB_OP_QUEUE_PUSH;
		op->u.queue.payload = buf;
		op->u.queue.payload_len = q->size;
		return;
	}
	struct rb_queue_push_item *items = (struct rb_queue_push_item *)buf;
	uint8_t *p = buf + q->push_batch * sizeof(*items);
	for (unsigned i = 0; i < q->push_batch; i++, p += q->size) {
		payload_build(q, seq * q->push_batch + i, p);
		items[i] = (struct rb_queue_push_item){ .payload = p,
		    .payload_len = q->size };
	}
	op->type = RB_OP_QUEUE_PUSH_BATCH;
	op->u.queue.items = items;
	op->u.queue.items_n = q->push_batch;
}

/* Needs the push's type and message count, which batch and single
 * pushes both answer with msgs (one per message). */
static rb_rev push_revision(const struct rb_resp *resp)
{
	uint8_t t = resp->body.type;
	size_t n = resp->body.u.queue.msgs_n;
	if (!(t == RB_OP_QUEUE_PUSH && n == 1) &&
	    !(t == RB_OP_QUEUE_PUSH_BATCH && n >= 1))
		return 0;
	return resp->header.revision > 0 ? resp->header.revision : 1;
}

static const struct rbb_writer_ops push_ops = {
	.build = push_build,
	.revision = push_revision,
};

/* ---- consumers ---------------------------------------------------------- */

static int consumer_next(void *arg, struct rb_op *op)
{
	struct consumer *c = arg;
	struct queue_state *q = c->q;
	op->type = RB_OP_QUEUE_POP;
	op->u.queue.queue = (const uint8_t *)q->name;
	op->u.queue.queue_len = q->name_len;
	c->acking = c->held_i < c->held_n;
	if (c->acking && q->batch > 1) {
		for (unsigned i = 0; i < c->held_n; i++)
			c->receipts[i] = (struct rb_queue_receipt){
			    c->held[i].receipt, c->held[i].receipt_len };
		op->type = RB_OP_QUEUE_ACK_BATCH;
		op->u.queue.receipts = c->receipts;
		op->u.queue.receipts_n = c->held_n;
		return 0;
	}
	if (c->acking) {
		const struct held *h = &c->held[c->held_i];
		op->type = RB_OP_QUEUE_ACK;
		op->u.queue.receipt = h->receipt;
		op->u.queue.receipt_len = h->receipt_len;
		return 0;
	}
	if (atomic_load(&q->acked) >= q->total)
		return RBB_ACTOR_DONE;
	op->u.queue.consumer = (const uint8_t *)c->name;
	op->u.queue.consumer_len = strlen(c->name);
	op->u.queue.max_n = q->batch;
	op->u.queue.wait_ms = QUEUE_POP_WAIT_MS;
	/* explicit: the server refuses 0 on the wire (only libraftbus maps
	 * it to the default that raftbus.h documents) */
	op->u.queue.visibility_ms = RB_QUEUE_VISIBILITY_MS_DEFAULT;
	return 0;
}

/* Keeps the claimed messages that can be acked. */
static void consumer_popped(struct consumer *c, const struct rb_queue_resp *r)
{
	struct queue_state *q = c->q;
	c->held_n = c->held_i = 0;
	for (size_t i = 0; i < r->msgs_n; i++) {
		const struct rb_queue_msg *m = &r->msgs[i];
		uint64_t seq = 0;
		for (unsigned b = 0; m->payload_len >= QUEUE_SIZE_BYTES_MIN &&
		    b < 8; b++)
			seq |= (uint64_t)m->payload[8 + b] << (8 * b);
		if (c->held_n == q->batch ||
		    m->payload_len < QUEUE_SIZE_BYTES_MIN || seq >= q->total ||
		    m->receipt_len == 0 ||
		    m->receipt_len > QUEUE_RECEIPT_BYTES_MAX) {
			atomic_fetch_add(&q->foreign, 1);
			continue;
		}
		struct held *h = &c->held[c->held_n++];
		h->seq = seq;
		h->sent_ns = rbb_stamp_get(m->payload);
		memcpy(h->receipt, m->receipt, m->receipt_len);
		h->receipt_len = m->receipt_len;
	}
}

static void consumer_acked(struct consumer *c, const struct held *h)
{
	struct queue_state *q = c->q;
	uint64_t now = rbb_now_ns();
	unsigned char prev = atomic_load(&q->acks[h->seq]);
	while (prev < QUEUE_ACKS_COUNTED_MAX &&
	    !atomic_compare_exchange_weak(&q->acks[h->seq], &prev,
	    (unsigned char)(prev + 1)))
		;
	if (prev > 0) {
		atomic_fetch_add(&q->dup_acks, 1);
		return;
	}
	rbb_stats_record(q->st, 0, now > h->sent_ns ? now - h->sent_ns : 1);
	uint64_t last = atomic_load(&q->last_ns);
	while (last < now &&
	    !atomic_compare_exchange_weak(&q->last_ns, &last, now))
		;
	atomic_fetch_add(&q->acked, 1);
}

/* The reply of an ACK_BATCH: one result per held message; a stale one is
 * a failed ack (its message comes back), as for single acks. */
static void consumer_batch_acked(struct consumer *c, int err,
    const struct rb_resp *resp)
{
	struct queue_state *q = c->q;
	unsigned n = c->held_n;
	c->held_i = c->held_n;
	if (err || resp->body.type != RB_OP_QUEUE_ACK_BATCH ||
	    resp->body.u.queue.results_n != n) {
		atomic_fetch_add(&q->ack_failed, n);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		if (resp->body.u.queue.results[i])
			atomic_fetch_add(&q->ack_failed, 1);
		else
			consumer_acked(c, &c->held[i]);
	}
}

static int consumer_reply(void *arg, int err, const struct rb_resp *resp)
{
	struct consumer *c = arg;
	struct queue_state *q = c->q;
	if (c->acking && q->batch > 1) {
		consumer_batch_acked(c, err, resp);
		return 0;
	}
	if (c->acking) {
		const struct held *h = &c->held[c->held_i++];
		if (err) {
			atomic_fetch_add(&q->ack_failed, 1);
			return 0;
		}
		consumer_acked(c, h);
		return 0;
	}
	if (err || resp->body.type != RB_OP_QUEUE_POP) {
		int none = 0;
		atomic_compare_exchange_strong(&q->pop_err, &none,
		    err ? err : RB_ERR_PROTOCOL);
		atomic_fetch_add(&q->pop_failed, 1);
		return RBB_ERROR_BACKOFF_MS;
	}
	consumer_popped(c, &resp->body.u.queue);
	return 0;
}

static const struct rbb_actor_ops consumer_ops = {
	.next = consumer_next,
	.reply = consumer_reply,
};

/* ---- the run ------------------------------------------------------------ */

static uint64_t queue_count(void *arg)
{
	struct queue_state *q = arg;
	return atomic_load(&q->acked);
}

/* Every push is acked; once the pushes are over, only the successful
 * ones count (a failed one is not re-sent; a failed batch is all of its
 * messages). */
static uint64_t queue_target(void *arg)
{
	struct queue_state *q = arg;
	uint64_t ops = q->total / q->push_batch;
	if (rbb_writers_answered(q->producers_w) < ops)
		return q->total;
	return q->total - rbb_writers_failed(q->producers_w, NULL) * q->push_batch;
}

/* Opens n sockets to the leader; returns the first one's index or -1. */
static int leader_socks(rbb_flow *f, struct rbb_run *run, unsigned n)
{
	int first = -1;
	for (unsigned i = 0; i < n; i++) {
		int s = rbb_flow_socket(f, run->leader_url);
		if (s < 0)
			return -1;
		if (i == 0)
			first = s;
	}
	return first;
}

static int add_consumers(rbb_flow *f, struct queue_state *q, int first_sock,
    unsigned socks_n)
{
	q->cons = calloc(q->consumers, sizeof(*q->cons));
	if (q->cons == NULL)
		goto out_nomem;
	for (unsigned i = 0; i < q->consumers; i++) {
		struct consumer *c = &q->cons[i];
		c->q = q;
		snprintf(c->name, sizeof(c->name), "rbb-%u", i);
		if ((c->held = calloc(q->batch, sizeof(*c->held))) == NULL ||
		    (c->receipts = calloc(q->batch, sizeof(*c->receipts))) == NULL)
			goto out_nomem;
		if (rbb_flow_actor(f, first_sock + (int)(i % socks_n),
		    &consumer_ops, c) < 0)
			return -1;
	}
	return 0;
out_nomem:
	fprintf(stderr, "raftbus-bench: out of memory\n");
	return -1;
}

/* Counts what went wrong into st and says it on stderr. */
static void queue_check(struct queue_state *q, struct rbb_writers *w)
{
	int first_err;
	uint64_t failed = rbb_writers_failed(w, &first_err) * q->push_batch;
	uint64_t missing = q->total - atomic_load(&q->acked);
	uint64_t dups = atomic_load(&q->dup_acks);
	uint64_t foreign = atomic_load(&q->foreign);
	if (failed)
		fprintf(stderr, "raftbus-bench: %llu of %llu pushes failed "
		    "(first: %s)\n", (unsigned long long)failed,
		    (unsigned long long)q->total, rb_strerror(first_err));
	if (missing)
		fprintf(stderr, "raftbus-bench: %llu messages were never "
		    "acked\n", (unsigned long long)missing);
	if (dups)
		fprintf(stderr, "raftbus-bench: %llu messages were acked "
		    "more than once\n", (unsigned long long)dups);
	if (foreign)
		fprintf(stderr, "raftbus-bench: %llu popped messages were not "
		    "the run's\n", (unsigned long long)foreign);
	if (atomic_load(&q->ack_failed) || atomic_load(&q->pop_failed))
		fprintf(stderr, "raftbus-bench: %llu acks and %llu pops failed "
		    "(a failed ack's message is delivered again; first pop "
		    "error: %s)\n",
		    (unsigned long long)atomic_load(&q->ack_failed),
		    (unsigned long long)atomic_load(&q->pop_failed),
		    atomic_load(&q->pop_err) ?
		    rb_strerror(atomic_load(&q->pop_err)) : "none");
	rbb_stats_add_errors(q->st, RB_ERR_TIMEOUT, missing);
	rbb_stats_add_errors(q->st, RB_ERR_PROTOCOL, dups + foreign);
}

/* Consumers first (they park on the empty queue), then the producers;
 * the clock starts with the first push. */
static int queue_run(struct rbb_run *run, struct rbb_stats *st)
{
	struct queue_state *q = run->wl_state;
	q->st = st;
	q->total = run->total;
	if (run->leader_url[0] == 0 &&
	    rbb_find_leader(run, RBB_DISCOVER_TIMEOUT_MS, true))
		return -1;
	rbb_flow *f;
	if (rbb_flow_new(run, st, &f))
		return -1;
	int rc = -1;
	struct rbb_writers *w = NULL;
	unsigned csocks = q->consumers < run->conns ? q->consumers : run->conns;
	unsigned psocks = q->producers < run->conns ? q->producers : run->conns;
	int cfirst = leader_socks(f, run, csocks);
	int pfirst = cfirst < 0 ? -1 : leader_socks(f, run, psocks);
	q->acks = calloc(q->total, sizeof(*q->acks));
	if (pfirst < 0 || q->acks == NULL ||
	    add_consumers(f, q, cfirst, csocks))
		goto out_free;
	w = rbb_writers_new(f, q->producers, pfirst, psocks,
	    q->total / q->push_batch, push_buf_bytes(q), &push_ops, q);
	if (w == NULL)
		goto out_free;
	rbb_flow_start(f, 0, q->consumers);
	uint64_t start = rbb_now_ns();
	rbb_flow_start(f, q->consumers, q->producers);
	q->producers_w = w;
	struct rbb_flow_goal goal = { .count = queue_count,
	    .target = queue_target, .arg = q };
	(void)rbb_flow_wait(f, start, &goal);
	queue_check(q, w);
	uint64_t last = atomic_load(&q->last_ns);
	st->duration_s = (double)((last > start ? last : rbb_now_ns()) -
	    start) / 1e9;
	run->clients = q->producers;
	rc = 0;
out_free:
	rbb_flow_free(f);
	rbb_writers_free(w);
	return rc;
}

static void queue_teardown(struct rbb_run *run)
{
	struct queue_state *q = run->wl_state;
	for (unsigned i = 0; q->cons && i < q->consumers; i++) {
		free(q->cons[i].held);
		free(q->cons[i].receipts);
	}
	free(q->cons);
	free(q->acks);
	q->cons = NULL;
	q->acks = NULL;
}

const struct rbb_workload rbb_wl_queue = {
	.name = "queue",
	.args = "",
	.summary = "N producers push --total messages (--push-batch per "
	    "request), M consumers pop --batch and ack them (acked/s, "
	    "push-to-ack latency)",
	.flags = queue_flags,
	.state_bytes = sizeof(struct queue_state),
	.total_default = 10000,
	.defaults = queue_defaults,
	.validate = queue_validate,
	.setup = queue_setup,
	.teardown = queue_teardown,
	.run = queue_run,
	.unit = "messages",
};
