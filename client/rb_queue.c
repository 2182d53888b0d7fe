/*
 * rb_queue.c - libraftbus's work-queue calls (raftbus.h, "work queues"):
 * argument checks, then one rb_do() per call with an RB_OP_QUEUE_* op.
 *
 * The one call that is more than that is a pop with a long wait: the
 * server parks it until a message is ready or the wait ends, but the
 * client bounds every request by its command timeout. Rather than widen
 * that bound for one call (and give up the timeout's meaning), a wait
 * longer than the timeout allows is split into several requests, each
 * waiting a slice that ends well before the timeout, until a message
 * comes or the whole wait is used up. The server spends nothing on a
 * parked pop, so the slices cost one small request each.
 *
 * The batch calls (push_batch, ack_batch) check every item as the single
 * calls check their arguments, so a bad item is refused before anything
 * is sent rather than failing the whole batch at the server.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "raftbus.h"

/* Part of the command timeout a pop's server-side wait leaves free for the
 * commit of the claim and the round trip. */
#define RB_QUEUE_WAIT_MARGIN_MS 1000
/* Shortest slice worth a request. */
#define RB_QUEUE_WAIT_SLICE_MS_MIN 100
/* Dead letters listed when the caller gives 0. */
#define RB_QUEUE_DLQ_LIMIT_DEFAULT 100u

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* A local refusal in the shape of a call's answer (message is static). */
static int refuse(struct rb_resp *resp, const char *why)
{
	memset(resp, 0, sizeof(*resp));
	resp->err = RB_ERR_INVALID;
	resp->msg = why;
	resp->leader_url = "";
	resp->endpoint = "";
	return RB_ERR_INVALID;
}

/* An optional name: NULL or "" = none; longer than max = refused. */
static bool name_ok(const char *s, size_t max, const uint8_t **p, size_t *n)
{
	*p = NULL;
	*n = 0;
	if (s == NULL || s[0] == '\0')
		return true;
	size_t len = strnlen(s, max + 1);
	if (len > max)
		return false;
	*p = (const uint8_t *)s;
	*n = len;
	return true;
}

/* Starts an op on queue; returns an error text or NULL. */
static const char *queue_op(struct rb_op *op, uint8_t type, const char *queue)
{
	memset(op, 0, sizeof(*op));
	op->type = type;
	if (queue == NULL || queue[0] == '\0')
		return "raftbus: queue name is empty";
	if (!name_ok(queue, RB_QUEUE_NAME_BYTES_MAX, &op->u.queue.queue,
	    &op->u.queue.queue_len))
		return "raftbus: queue name is too long";
	return NULL;
}

static int do_queue(rb_client *c, const struct rb_op *op, struct rb_resp *resp)
{
	if (resp == NULL)
		return RB_ERR_INVALID;
	if (c == NULL)
		return refuse(resp, "raftbus: NULL client");
	return rb_do(c, op, resp);
}

int rb_queue_push(rb_client *c, const char *queue, const void *payload,
	size_t len, int64_t delay_ms, const char *dedup_id, struct rb_resp *resp)
{
	struct rb_op op;
	const char *why = queue_op(&op, RB_OP_QUEUE_PUSH, queue);
	if (resp == NULL)
		return RB_ERR_INVALID;
	if (why)
		return refuse(resp, why);
	if (len && payload == NULL)
		return refuse(resp, "raftbus: NULL payload");
	if (delay_ms < 0 || delay_ms > RB_QUEUE_DELAY_MS_MAX)
		return refuse(resp, "raftbus: delay out of range");
	struct rb_queue_req *q = &op.u.queue;
	if (!name_ok(dedup_id, RB_QUEUE_DEDUP_ID_BYTES_MAX, &q->dedup_id,
	    &q->dedup_id_len))
		return refuse(resp, "raftbus: dedup id is too long");
	q->payload = payload;
	q->payload_len = len;
	q->delay_ms = delay_ms;
	return do_queue(c, &op, resp);
}

/* The longest server-side wait one pop request may ask for. */
static int64_t wait_slice_ms(rb_client *c)
{
	int64_t t = rb_client_command_timeout_ms(c);
	int64_t slice = t > 2 * RB_QUEUE_WAIT_MARGIN_MS ?
		t - RB_QUEUE_WAIT_MARGIN_MS : t / 2;
	if (slice > RB_QUEUE_WAIT_MS_MAX)
		slice = RB_QUEUE_WAIT_MS_MAX;
	return slice < RB_QUEUE_WAIT_SLICE_MS_MIN ? RB_QUEUE_WAIT_SLICE_MS_MIN : slice;
}

int rb_queue_pop(rb_client *c, const char *queue, const char *consumer,
	int64_t visibility_ms, uint32_t max_n, int64_t wait_ms, struct rb_resp *resp)
{
	struct rb_op op;
	const char *why = queue_op(&op, RB_OP_QUEUE_POP, queue);
	if (resp == NULL)
		return RB_ERR_INVALID;
	if (why)
		return refuse(resp, why);
	struct rb_queue_req *q = &op.u.queue;
	if (!name_ok(consumer, RB_QUEUE_CONSUMER_BYTES_MAX, &q->consumer,
	    &q->consumer_len))
		return refuse(resp, "raftbus: consumer name is too long");
	if (visibility_ms < 0 || visibility_ms > RB_QUEUE_VISIBILITY_MS_MAX)
		return refuse(resp, "raftbus: visibility timeout out of range");
	if (max_n > RB_QUEUE_POP_MAX)
		return refuse(resp, "raftbus: too many messages asked of one pop");
	if (wait_ms < 0)
		return refuse(resp, "raftbus: negative wait");
	if (c == NULL)
		return refuse(resp, "raftbus: NULL client");
	q->visibility_ms = visibility_ms ? visibility_ms : RB_QUEUE_VISIBILITY_MS_DEFAULT;
	q->max_n = max_n ? max_n : 1;
	int64_t end = mono_ms() + wait_ms;
	int64_t slice = wait_slice_ms(c);
	for (;;) {
		int64_t start = mono_ms(), left = end - start;
		q->wait_ms = left <= 0 ? 0 : (left < slice ? left : slice);
		int rc = rb_do(c, &op, resp);
		if (rc || resp->body.u.queue.msgs_n || q->wait_ms == 0 ||
		    end - mono_ms() < RB_QUEUE_WAIT_SLICE_MS_MIN)
			return rc;
		rb_resp_free(resp);
		/* a server that answered long before the wait it was given
		 * (one that does not hold pops) must not turn this into a
		 * busy poll */
		if (mono_ms() - start < q->wait_ms / 2)
			sleep_ms(RB_QUEUE_WAIT_SLICE_MS_MIN);
	}
}

/* ACK, NACK and EXTEND: a receipt and one time. */
static int receipt_op(uint8_t type, const char *queue,
	const uint8_t *receipt, size_t receipt_len, struct rb_resp *resp,
	struct rb_op *op)
{
	const char *why = queue_op(op, type, queue);
	if (resp == NULL)
		return RB_ERR_INVALID;
	if (why)
		return refuse(resp, why);
	if (receipt == NULL || receipt_len == 0)
		return refuse(resp, "raftbus: receipt is empty");
	op->u.queue.receipt = receipt;
	op->u.queue.receipt_len = receipt_len;
	return 0;
}

int rb_queue_ack(rb_client *c, const char *queue, const uint8_t *receipt,
	size_t receipt_len, struct rb_resp *resp)
{
	struct rb_op op;
	int rc = receipt_op(RB_OP_QUEUE_ACK, queue, receipt, receipt_len, resp, &op);
	return rc ? rc : do_queue(c, &op, resp);
}

int rb_queue_nack(rb_client *c, const char *queue, const uint8_t *receipt,
	size_t receipt_len, int64_t delay_ms, struct rb_resp *resp)
{
	struct rb_op op;
	int rc = receipt_op(RB_OP_QUEUE_NACK, queue, receipt, receipt_len, resp, &op);
	if (rc)
		return rc;
	if (delay_ms < 0 || delay_ms > RB_QUEUE_DELAY_MS_MAX)
		return refuse(resp, "raftbus: delay out of range");
	op.u.queue.delay_ms = delay_ms;
	return do_queue(c, &op, resp);
}

int rb_queue_extend(rb_client *c, const char *queue, const uint8_t *receipt,
	size_t receipt_len, int64_t visibility_ms, struct rb_resp *resp)
{
	struct rb_op op;
	int rc = receipt_op(RB_OP_QUEUE_EXTEND, queue, receipt, receipt_len, resp,
		&op);
	if (rc)
		return rc;
	if (visibility_ms <= 0 || visibility_ms > RB_QUEUE_VISIBILITY_MS_MAX)
		return refuse(resp, "raftbus: visibility timeout out of range");
	op.u.queue.visibility_ms = visibility_ms;
	return do_queue(c, &op, resp);
}

int rb_queue_stats(rb_client *c, const char *queue, struct rb_resp *resp)
{
	struct rb_op op;
	const char *why = queue_op(&op, RB_OP_QUEUE_STATS, queue);
	if (resp == NULL)
		return RB_ERR_INVALID;
	return why ? refuse(resp, why) : do_queue(c, &op, resp);
}

int rb_queue_dlq(rb_client *c, const char *queue, uint32_t limit,
	struct rb_resp *resp)
{
	struct rb_op op;
	const char *why = queue_op(&op, RB_OP_QUEUE_DLQ, queue);
	if (resp == NULL)
		return RB_ERR_INVALID;
	if (why)
		return refuse(resp, why);
	if (limit > RB_QUEUE_DLQ_LIMIT_MAX)
		return refuse(resp, "raftbus: dead-letter limit too large");
	op.u.queue.max_n = limit ? limit : RB_QUEUE_DLQ_LIMIT_DEFAULT;
	return do_queue(c, &op, resp);
}

int rb_queue_redrive(rb_client *c, const char *queue, uint32_t max_n,
	struct rb_resp *resp)
{
	struct rb_op op;
	const char *why = queue_op(&op, RB_OP_QUEUE_REDRIVE, queue);
	if (resp == NULL)
		return RB_ERR_INVALID;
	if (why)
		return refuse(resp, why);
	if (max_n > RB_QUEUE_POP_MAX)
		return refuse(resp, "raftbus: too many messages asked of one redrive");
	op.u.queue.max_n = max_n ? max_n : RB_QUEUE_POP_MAX;
	return do_queue(c, &op, resp);
}

int rb_queue_config(rb_client *c, const char *queue, uint32_t max_deliveries,
	struct rb_resp *resp)
{
	struct rb_op op;
	const char *why = queue_op(&op, RB_OP_QUEUE_CONFIG, queue);
	if (resp == NULL)
		return RB_ERR_INVALID;
	if (why)
		return refuse(resp, why);
	if (max_deliveries < 1 || max_deliveries > RB_QUEUE_DELIVERIES_MAX)
		return refuse(resp, "raftbus: max deliveries out of range");
	op.u.queue.max_deliveries = max_deliveries;
	return do_queue(c, &op, resp);
}

_Static_assert(RB_QUEUE_BATCH_MAX == 100, "the refusal texts below say 1..100");

/* The checks of one item, as rb_queue_push() makes them for its arguments. */
static const char *push_item_check(const struct rb_queue_push_item *it)
{
	if (it->payload_len && it->payload == NULL)
		return "raftbus: NULL payload";
	if (it->delay_ms < 0 || it->delay_ms > RB_QUEUE_DELAY_MS_MAX)
		return "raftbus: delay out of range";
	if (it->dedup_id_len > RB_QUEUE_DEDUP_ID_BYTES_MAX)
		return "raftbus: dedup id is too long";
	if (it->dedup_id_len && it->dedup_id == NULL)
		return "raftbus: NULL dedup id";
	return NULL;
}

int rb_queue_push_batch(rb_client *c, const char *queue,
	const struct rb_queue_push_item *items, size_t n, struct rb_resp *resp)
{
	struct rb_op op;
	const char *why = queue_op(&op, RB_OP_QUEUE_PUSH_BATCH, queue);
	if (resp == NULL)
		return RB_ERR_INVALID;
	if (why)
		return refuse(resp, why);
	if (n == 0 || n > RB_QUEUE_BATCH_MAX || items == NULL)
		return refuse(resp, "raftbus: a push batch takes 1..100 messages");
	for (size_t i = 0; i < n; i++)
		if ((why = push_item_check(&items[i])) != NULL)
			return refuse(resp, why);
	op.u.queue.items = items;
	op.u.queue.items_n = n;
	return do_queue(c, &op, resp);
}

int rb_queue_ack_batch(rb_client *c, const char *queue,
	const struct rb_queue_receipt *receipts, size_t n, struct rb_resp *resp)
{
	struct rb_op op;
	const char *why = queue_op(&op, RB_OP_QUEUE_ACK_BATCH, queue);
	if (resp == NULL)
		return RB_ERR_INVALID;
	if (why)
		return refuse(resp, why);
	if (n == 0 || n > RB_QUEUE_BATCH_MAX || receipts == NULL)
		return refuse(resp, "raftbus: an ack batch takes 1..100 receipts");
	for (size_t i = 0; i < n; i++)
		if (receipts[i].receipt == NULL || receipts[i].receipt_len == 0)
			return refuse(resp, "raftbus: receipt is empty");
	op.u.queue.receipts = receipts;
	op.u.queue.receipts_n = n;
	return do_queue(c, &op, resp);
}
