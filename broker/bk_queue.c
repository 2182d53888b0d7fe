/*
 * bk_queue.c - work queues in the server (op codes 20..30; docs/queues.md).
 *
 * The store applies every queue command deterministically (store/queue.c);
 * what needs a clock or waiting lives here, on the loop thread, and only
 * on the leader (followers answer "not leader" with the hint, as writes):
 *
 *  - Time. A command's now_ms is the leader's wall clock when it proposes
 *    (CLOCK_REALTIME: comparable across a leader change on synchronised
 *    hosts), so claims, delays and expiry are replicated decisions.
 *  - Expiry. The store cannot requeue a claim on its own. The leader keeps
 *    a table of the queues it knows (touched since it became leader, or
 *    found by a scan of the `_rb/queue/` keys after winning an election),
 *    each with the time of its next due item (st_queue_stats' next_due_ms:
 *    an in-flight deadline, a delayed message or a dedup id to forget),
 *    and proposes ST_Q_EXPIRE for a queue once that time has passed. The
 *    time is re-read after each proposal on the queue is applied.
 *  - Long polls. A pop with a wait that finds nothing ready is parked
 *    (BK_QUEUE_PARKED_MAX) with nothing proposed. Each time the store
 *    revision moves, parked pops re-check their queue's ready count (one
 *    O(1) stats read) and only then propose, at most as many as there are
 *    ready messages; an idle queue costs no log entry at all. A claim that
 *    lost the race to another consumer comes back empty and is parked
 *    again until its wait ends, when it is answered with no message.
 *  - Reads. STATS and DLQ are linearizable: they wait for a ReadIndex
 *    round like a range read (bk_server.c), then are answered from the
 *    leader's applied state. A leader just elected, which may not have
 *    applied what the last one acknowledged, or one deposed without
 *    knowing it, therefore never answers from stale state.
 *  - Batches. PUSH_BATCH and ACK_BATCH are one proposal each, like the
 *    single commands; a pushed batch raises the ready count by its size,
 *    so the parked-pop turn proposes as many waiting pops as it can feed.
 *
 * State: one server per process (the raftbus binary), so the tables are
 * file-level; they hold no heap memory, and a parked request keeps only
 * its context (its raw message stays in the context, decoded again when
 * it is proposed, like every request waiting in the broker).
 */
#include <assert.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bk_int.h"

/* Pops waiting for a message at once (each holds a client context, of
 * which there are BK_CLIENT_CTX_MAX). Beyond: "too many requests". */
#define BK_QUEUE_PARKED_MAX 128u
/* Queues whose expiry the leader follows; an idle one (nothing due) is
 * forgotten to make room, and found again when touched. */
#define BK_QUEUE_TRACKED_MAX 4096u
/* Range reads per loop turn while a new leader looks for queues. */
#define BK_QUEUE_DISCOVER_PER_TURN_MAX 64u
/* EXPIRE proposals and stats refreshes per loop turn. */
#define BK_QUEUE_EXPIRES_PER_TURN_MAX 64u
#define BK_QUEUE_REFRESHES_PER_TURN_MAX 256u
/* A proposed EXPIRE not applied by then (lost in a leader change) is
 * proposed again. */
#define BK_QUEUE_EXPIRE_RETRY_MS BK_REQUEST_TIMEOUT_MS
/* An EXPIRE that left the queue's due time where it was (nothing it could
 * move: keys damaged by plain writes, or a batch of one millisecond) is
 * not proposed again for the same due time before this; otherwise such a
 * queue costs a log entry every turn, forever. */
#define BK_QUEUE_EXPIRE_STUCK_MS 1000
/* Dead letters listed when the request says 0. */
#define BK_QUEUE_DLQ_LIMIT_DEFAULT 100u
/* Payload bytes of one DLQ listing: 1000 dead letters of the largest
 * payload would make a reply of gigabytes; the listing stops early (at
 * least one message) and the client asks again after redriving. */
#define BK_QUEUE_DLQ_REPLY_BYTES_MAX (16u * 1024u * 1024u)

_Static_assert(RB_QUEUE_NAME_BYTES_MAX == ST_QUEUE_NAME_BYTES_MAX,
    "queue name limits of the wire and the store agree");
_Static_assert(RB_QUEUE_POP_MAX == ST_QUEUE_POP_MAX, "pop limits agree");
_Static_assert(RB_QUEUE_BATCH_MAX == ST_QUEUE_BATCH_MAX, "batch limits agree");
_Static_assert(ST_QUEUE_BATCH_MAX == 100, "the refusal text says 1..100");

struct parked {
	struct bk_creq *r;
	uint64_t req_id;
	int64_t until_ms;         /* loop clock (monotonic) */
	uint32_t max_n;
	uint8_t queue_len;
	uint8_t queue[ST_QUEUE_NAME_BYTES_MAX];
};

struct tracked {
	uint8_t len;              /* 0 = free slot */
	uint8_t name[ST_QUEUE_NAME_BYTES_MAX];
	int64_t next_due_ms;      /* wall clock; 0 = nothing due */
	rl_index refresh_at;      /* re-read stats once applied >= this; 0 = no */
	rl_index expire_index;    /* EXPIRE in flight at this index; 0 = none */
	int64_t expire_sent_ms;   /* loop clock */
	int64_t expired_due_ms;   /* next_due_ms the last EXPIRE was for */
};

static struct {
	const struct bk_server *owner;
	bool leader;              /* the tables belong to a leadership */
	struct parked parked[BK_QUEUE_PARKED_MAX];
	uint32_t parked_n;
	st_rev parked_rev;        /* revision the parked pops last checked */
	struct tracked tracked[BK_QUEUE_TRACKED_MAX];
	/* slots [0, tracked_n) have been used (they fill from 0 and are
	 * reused, never emptied): the per-turn scans stop there instead of
	 * touching the whole table every loop turn */
	uint32_t tracked_n;
	bool discovering;
	uint8_t cursor[ST_KEY_BYTES_MAX + 1];
	size_t cursor_len;
	bool full_warned;
} q;

/* The tables belong to one server; a new one (tests) starts afresh. */
static void own(const struct bk_server *s)
{
	if (q.owner != s) {
		memset(&q, 0, sizeof(q));
		q.owner = s;
	}
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Names as the store takes them: 1..ST_QUEUE_NAME_BYTES_MAX printable
 * ASCII bytes other than '/' (checked here too, for a clear early error on
 * reads that never reach the store's apply). */
static bool name_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > ST_QUEUE_NAME_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == '/')
			return false;
	return true;
}

/* The loop sleeps until the next tick; a byte on the wake pipe makes it
 * turn now (never 'q', which means stop). */
static void wake_loop(struct bk_server *s)
{
	char c = 'u';
	ssize_t n = write(s->wake_fd[1], &c, 1);
	(void)n;
}

static rl_index last_index(struct bk_server *s)
{
	struct rl_status st;
	rl_status(s->node, &st);
	return st.last_index;
}

/* ---- the table of known queues ------------------------------------------ */

static struct tracked *track_find(const uint8_t *name, size_t len)
{
	for (uint32_t i = 0; i < q.tracked_n; i++) {
		struct tracked *t = &q.tracked[i];
		if (t->len == len && memcmp(t->name, name, len) == 0)
			return t;
	}
	return NULL;
}

/* Finds or adds a queue; NULL (logged once) when every slot has work. */
static struct tracked *track(const uint8_t *name, size_t len)
{
	struct tracked *t = track_find(name, len), *idle = NULL;
	if (t)
		return t;
	for (uint32_t i = 0; i < BK_QUEUE_TRACKED_MAX && !t; i++) {
		struct tracked *x = &q.tracked[i];
		if (x->len == 0) {
			t = x;
			if (i >= q.tracked_n)
				q.tracked_n = i + 1;
		}
		else if (!idle && !x->next_due_ms && !x->refresh_at &&
		    !x->expire_index)
			idle = x;
	}
	if (!t)
		t = idle;
	if (!t) {
		if (!q.full_warned)
			bk_log(BK_LOG_WARN, "queue table full (%u queues with "
			    "due work): queue %.*s is not expired until one "
			    "drains", BK_QUEUE_TRACKED_MAX, (int)len, name);
		q.full_warned = true;
		return NULL;
	}
	*t = (struct tracked){ .len = (uint8_t)len };
	memcpy(t->name, name, len);
	return t;
}

/* Something was proposed on the queue: re-read its due time once the
 * proposal (the last entry of the log) is applied. */
static void track_touch(struct bk_server *s, const uint8_t *name, size_t len)
{
	struct tracked *t = track(name, len);
	if (t)
		t->refresh_at = last_index(s);
}

/* ---- replies ------------------------------------------------------------ */

static int map_err(int st, const char **msg)
{
	switch (st) {
	case ST_ERR_QUEUE_RECEIPT:
		*msg = "raftbus: queue receipt is unknown or stale (the message "
		    "was redelivered, acked or dead-lettered)";
		return RB_ERR_KEY_NOT_FOUND;
	case ST_ERR_TOO_LARGE: return RB_ERR_TOO_LARGE;
	case ST_ERR_NOSPACE: return RB_ERR_NOSPACE;
	case ST_ERR_NOMEM:
	case ST_ERR_IO:
	case ST_ERR_DISK_FULL:
	case ST_ERR_CORRUPT: return RB_ERR_INTERNAL;
	default: return RB_ERR_BAD_REQUEST;   /* the store's text says why */
	}
}

static void reply_st_err(struct bk_server *s, struct bk_creq *r, uint64_t id,
    uint8_t op, int st_err)
{
	const char *msg = st_strerror(st_err);
	int err = map_err(st_err, &msg);
	bk_client_reply_err(s, r, id, op, err, msg, 0);
}

/* st_queue_msg and rb_queue_msg have the same fields; msgs is borrowed
 * from the result until the reply is encoded. */
static void send_msgs(struct bk_server *s, struct bk_creq *r, uint64_t id,
    uint8_t op, const struct st_queue_resp *qr, st_rev rev)
{
	struct rb_queue_msg ms[ST_QUEUE_DLQ_LIMIT_MAX];
	size_t n = qr->msgs_n < ST_QUEUE_DLQ_LIMIT_MAX ? qr->msgs_n :
	    ST_QUEUE_DLQ_LIMIT_MAX;
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		const struct st_queue_msg *m = &qr->msgs[i];
		/* claims (POP) are never cut: they would stay claimed unseen */
		bytes += m->payload_len;
		if (op == RB_OP_QUEUE_DLQ && i > 0 &&
		    bytes > BK_QUEUE_DLQ_REPLY_BYTES_MAX) {
			n = i;
			break;
		}
		ms[i] = (struct rb_queue_msg){ .id = m->id, .id_len = m->id_len,
		    .payload = m->payload, .payload_len = m->payload_len,
		    .delivery_count = m->delivery_count, .receipt = m->receipt,
		    .receipt_len = m->receipt_len, .enqueued_ms = m->enqueued_ms,
		    .duplicate = m->duplicate };
	}
	struct rb_resp resp = { 0 };
	resp.body.type = op;
	resp.body.u.queue.msgs = n ? ms : NULL;
	resp.body.u.queue.msgs_n = n;
	resp.body.u.queue.duplicate = qr->duplicate;
	bk_client_send(s, r, id, op, &resp, rev);
}

/* ACK_BATCH: one result per receipt, the store's codes as the client's. */
static void send_acks(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct st_queue_resp *qr, st_rev rev)
{
	int res[ST_QUEUE_BATCH_MAX];
	size_t n = qr->acks_n;
	assert(n <= ST_QUEUE_BATCH_MAX);
	for (size_t i = 0; i < n; i++) {
		const char *msg = NULL;
		res[i] = qr->acks[i] ? map_err(qr->acks[i], &msg) : 0;
	}
	struct rb_resp resp = { 0 };
	resp.body.type = RB_OP_QUEUE_ACK_BATCH;
	resp.body.u.queue.results = n ? res : NULL;
	resp.body.u.queue.results_n = n;
	bk_client_send(s, r, id, RB_OP_QUEUE_ACK_BATCH, &resp, rev);
}

static void send_empty_pop(struct bk_server *s, struct bk_creq *r, uint64_t id)
{
	struct rb_resp resp = { 0 };
	resp.body.type = RB_OP_QUEUE_POP;
	bk_client_send(s, r, id, RB_OP_QUEUE_POP, &resp, 0);
}

/* ---- reads -------------------------------------------------------------- */

static void serve_stats(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct rb_queue_req *rq)
{
	struct st_queue_stats st;
	int rc = st_queue_stats(s->st, rq->queue, rq->queue_len, &st);
	if (rc) {
		reply_st_err(s, r, id, RB_OP_QUEUE_STATS, rc);
		return;
	}
	struct rb_resp resp = { 0 };
	struct rb_queue_resp *o = &resp.body.u.queue;
	resp.body.type = RB_OP_QUEUE_STATS;
	o->ready = st.ready;
	o->inflight = st.inflight;
	o->delayed = st.delayed;
	o->dead = st.dead;
	o->oldest_ready_enqueued_ms = st.oldest_ready_enqueued_ms;
	if (st.oldest_ready_enqueued_ms) {
		int64_t age = wall_ms() - st.oldest_ready_enqueued_ms;
		o->oldest_ready_age_ms = age > 0 ? age : 0;
	}
	o->max_deliveries = st.max_deliveries;
	bk_client_send(s, r, id, RB_OP_QUEUE_STATS, &resp, st.revision);
}

static void serve_dlq(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct rb_queue_req *rq)
{
	size_t limit = rq->max_n ? rq->max_n : BK_QUEUE_DLQ_LIMIT_DEFAULT;
	if (limit > ST_QUEUE_DLQ_LIMIT_MAX)
		limit = ST_QUEUE_DLQ_LIMIT_MAX;
	struct st_result res = { 0 };
	int rc = st_queue_dlq(s->st, rq->queue, rq->queue_len, limit, &res);
	if (rc)
		reply_st_err(s, r, id, RB_OP_QUEUE_DLQ, rc);
	else
		send_msgs(s, r, id, RB_OP_QUEUE_DLQ, &res.resp.u.queue,
		    res.revision);
	st_result_free(&res);
}

void bk_queue_serve_read(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct rb_op *op)
{
	own(s);
	if (op->type == RB_OP_QUEUE_STATS)
		serve_stats(s, r, id, &op->u.queue);
	else
		serve_dlq(s, r, id, &op->u.queue);
}

/* ---- proposals ---------------------------------------------------------- */

static uint8_t st_cmd(uint8_t op)
{
	switch (op) {
	case RB_OP_QUEUE_PUSH: return ST_Q_PUSH;
	case RB_OP_QUEUE_POP: return ST_Q_POP;
	case RB_OP_QUEUE_ACK: return ST_Q_ACK;
	case RB_OP_QUEUE_NACK: return ST_Q_NACK;
	case RB_OP_QUEUE_EXTEND: return ST_Q_EXTEND;
	case RB_OP_QUEUE_REDRIVE: return ST_Q_REDRIVE;
	case RB_OP_QUEUE_CONFIG: return ST_Q_CONFIG;
	case RB_OP_QUEUE_PUSH_BATCH: return ST_Q_PUSH_BATCH;
	case RB_OP_QUEUE_ACK_BATCH: return ST_Q_ACK_BATCH;
	default: return 0;
	}
}

/* The items of a batch op in the store's shape, in the caller's arrays
 * (the proposal encodes them before they go); bk_queue_handle() refused
 * counts above ST_QUEUE_BATCH_MAX, and other ops decode none. */
static void batch_items(const struct rb_op *op, struct st_queue_op *sq,
    struct st_queue_push_item *items, struct st_queue_receipt *receipts)
{
	const struct rb_queue_req *rq = &op->u.queue;
	assert(rq->items_n <= ST_QUEUE_BATCH_MAX &&
	    rq->receipts_n <= ST_QUEUE_BATCH_MAX);
	if (op->type == RB_OP_QUEUE_PUSH_BATCH) {
		for (size_t i = 0; i < rq->items_n; i++)
			items[i] = (struct st_queue_push_item){
			    .payload = rq->items[i].payload,
			    .payload_len = rq->items[i].payload_len,
			    .delay_ms = rq->items[i].delay_ms,
			    .dedup_id = rq->items[i].dedup_id,
			    .dedup_id_len = rq->items[i].dedup_id_len };
		sq->pushes = items;
		sq->pushes_n = rq->items_n;
	} else if (op->type == RB_OP_QUEUE_ACK_BATCH) {
		for (size_t i = 0; i < rq->receipts_n; i++)
			receipts[i] = (struct st_queue_receipt){
			    .receipt = rq->receipts[i].receipt,
			    .receipt_len = rq->receipts[i].receipt_len };
		sq->receipts = receipts;
		sq->receipts_n = rq->receipts_n;
	}
}

/* Proposes the queue command of request r (decoded op). On failure the
 * request is answered here. Returns 0 when proposed. */
static int propose(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct rb_op *op)
{
	const struct rb_queue_req *rq = &op->u.queue;
	/* the wire's zeros mean the defaults raftbus.h documents; the store
	 * takes explicit values only */
	uint32_t max_n = rq->max_n;
	int64_t vis_ms = rq->visibility_ms;
	if (op->type == RB_OP_QUEUE_POP && max_n == 0)
		max_n = 1;
	else if (op->type == RB_OP_QUEUE_REDRIVE && max_n == 0)
		max_n = RB_QUEUE_POP_MAX;
	if (op->type == RB_OP_QUEUE_POP && vis_ms == 0)
		vis_ms = RB_QUEUE_VISIBILITY_MS_DEFAULT;
	struct st_op sop = { .type = ST_OP_QUEUE };
	sop.u.queue = (struct st_queue_op){ .cmd = st_cmd(op->type),
	    .queue = rq->queue, .queue_len = rq->queue_len,
	    .now_ms = wall_ms(), .payload = rq->payload,
	    .payload_len = rq->payload_len, .delay_ms = rq->delay_ms,
	    .dedup_id = rq->dedup_id, .dedup_id_len = rq->dedup_id_len,
	    .consumer = rq->consumer, .consumer_len = rq->consumer_len,
	    .visibility_ms = vis_ms, .max_n = max_n,
	    .receipt = rq->receipt, .receipt_len = rq->receipt_len,
	    .max_deliveries = rq->max_deliveries };
	struct st_queue_push_item items[ST_QUEUE_BATCH_MAX];
	struct st_queue_receipt receipts[ST_QUEUE_BATCH_MAX];
	batch_items(op, &sop.u.queue, items, receipts);
	int rc = bk_propose_op(s, r, &sop);
	if (rc) {
		bk_client_reply_err(s, r, id, op->type, rc, rc == RB_ERR_TIMEOUT ?
		    "etcdserver: too many requests" : NULL, 0);
		return rc;
	}
	track_touch(s, rq->queue, rq->queue_len);
	return 0;
}

static bool park(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct rb_queue_req *rq)
{
	if (q.parked_n == BK_QUEUE_PARKED_MAX)
		return false;
	struct parked *p = &q.parked[q.parked_n++];
	*p = (struct parked){ .r = r, .req_id = id, .until_ms = r->deadline_ms,
	    .max_n = rq->max_n ? rq->max_n : 1,
	    .queue_len = (uint8_t)rq->queue_len };
	memcpy(p->queue, rq->queue, rq->queue_len);
	/* its queue must be followed for expiry and delayed messages, or a
	 * due message would never become ready for it */
	struct tracked *t = track(rq->queue, rq->queue_len);
	if (t && !t->refresh_at && !t->next_due_ms)
		t->refresh_at = s->applied ? s->applied : 1;
	return true;
}

/* A pop with a wait: claim now if something is ready, else park. */
static void handle_pop_wait(struct bk_server *s, struct bk_creq *r,
    uint64_t id, const struct rb_op *op)
{
	const struct rb_queue_req *rq = &op->u.queue;
	int64_t wait = rq->wait_ms < RB_QUEUE_WAIT_MS_MAX ? rq->wait_ms :
	    RB_QUEUE_WAIT_MS_MAX;
	r->deadline_ms = s->now_ms + wait;   /* the end of the wait */
	struct st_queue_stats st;
	int rc = st_queue_stats(s->st, rq->queue, rq->queue_len, &st);
	if (rc) {
		reply_st_err(s, r, id, op->type, rc);
		return;
	}
	/* a pop also makes due delayed messages ready before it claims */
	bool due = st.delayed > 0 && st.next_due_ms && st.next_due_ms <= wall_ms();
	if (st.ready > 0 || due) {
		propose(s, r, id, op);
		return;
	}
	if (!park(s, r, id, rq))
		bk_client_reply_err(s, r, id, op->type, RB_ERR_TIMEOUT,
		    "etcdserver: too many requests (waiting pops)", 0);
}

bool bk_queue_handle(struct bk_server *s, struct bk_creq *r, uint64_t id,
    rb_wire_request *wr)
{
	const struct rb_op *op = rb_wire_request_op(wr);
	const struct rb_queue_req *rq = &op->u.queue;
	own(s);
	if (op->type < RB_OP_QUEUE_PUSH || op->type > RB_OP_QUEUE_ACK_BATCH) {
		bk_client_reply_err(s, r, id, op->type, RB_ERR_BAD_REQUEST,
		    "raftbus: unknown queue op", 0);
		return false;
	}
	/* checked before anything else: propose() copies the items into
	 * arrays of this size */
	size_t items_n = op->type == RB_OP_QUEUE_PUSH_BATCH ? rq->items_n :
	    op->type == RB_OP_QUEUE_ACK_BATCH ? rq->receipts_n : 1;
	if (items_n < 1 || items_n > ST_QUEUE_BATCH_MAX) {
		bk_client_reply_err(s, r, id, op->type, RB_ERR_BAD_REQUEST,
		    "raftbus: a queue batch takes 1..100 items", 0);
		return false;
	}
	if (s->role != RL_LEADER) {
		bk_client_reply_err(s, r, id, op->type, s->leader ?
		    RB_ERR_NOT_LEADER : RB_ERR_NO_LEADER, NULL, 0);
		return false;
	}
	if (!name_ok(rq->queue, rq->queue_len)) {
		bk_client_reply_err(s, r, id, op->type, RB_ERR_BAD_REQUEST,
		    "raftbus: queue name must be 1..128 printable ASCII bytes "
		    "without '/'", 0);
		return false;
	}
	if (op->type == RB_OP_QUEUE_STATS || op->type == RB_OP_QUEUE_DLQ) {
		r->next = s->reads_new;   /* bk_queue_serve_read once read */
		s->reads_new = r;
	} else if (op->type == RB_OP_QUEUE_POP && rq->wait_ms < 0)
		bk_client_reply_err(s, r, id, op->type, RB_ERR_BAD_REQUEST,
		    "raftbus: negative pop wait", 0);
	else if (op->type == RB_OP_QUEUE_POP && rq->wait_ms > 0)
		handle_pop_wait(s, r, id, op);
	else
		propose(s, r, id, op);
	return false;
}

/* ---- applied results ---------------------------------------------------- */

/* Wakes the parked pops of a queue that may have a message now. */
static void maybe_ready(struct bk_server *s, uint8_t op)
{
	if (q.parked_n && (op == RB_OP_QUEUE_PUSH || op == RB_OP_QUEUE_NACK ||
	    op == RB_OP_QUEUE_REDRIVE || op == RB_OP_QUEUE_PUSH_BATCH))
		wake_loop(s);
}

void bk_queue_reply(struct bk_server *s, struct bk_creq *r, uint64_t id,
    uint8_t op, const struct st_result *res)
{
	uint64_t rid = 0;
	uint8_t rop = RB_OP_NONE;
	rb_wire_request *wr = NULL;
	own(s);
	if (r->req)
		rb_wire_decode_request(nng_msg_body(r->req),
		    nng_msg_len(r->req), &rid, &rop, &wr);
	const struct rb_op *o = wr ? rb_wire_request_op(wr) : NULL;
	if (o && o->type >= RB_OP_QUEUE_PUSH && o->type <= RB_OP_QUEUE_ACK_BATCH)
		track_touch(s, o->u.queue.queue, o->u.queue.queue_len);
	if (res->err) {
		reply_st_err(s, r, id, op, res->err);
	} else if (op == RB_OP_QUEUE_POP && res->resp.u.queue.msgs_n == 0 &&
	    o && o->u.queue.wait_ms > 0 && s->now_ms < r->deadline_ms &&
	    s->role == RL_LEADER && park(s, r, id, &o->u.queue)) {
		/* another consumer took what was ready: wait on */
	} else if (op == RB_OP_QUEUE_ACK_BATCH) {
		send_acks(s, r, id, &res->resp.u.queue, res->revision);
	} else {
		send_msgs(s, r, id, op, &res->resp.u.queue, res->revision);
		maybe_ready(s, op);
	}
	rb_wire_request_free(wr);
}

/* ---- the leader's turn -------------------------------------------------- */

/* Proposes the pop of parked request i (removed from the list either
 * way: proposed, or answered with the error). */
static void parked_propose(struct bk_server *s, uint32_t i)
{
	struct parked p = q.parked[i];
	/* keep FIFO order of the rest: shift instead of swapping */
	memmove(&q.parked[i], &q.parked[i + 1],
	    (q.parked_n - i - 1) * sizeof(q.parked[0]));
	q.parked_n--;
	uint64_t rid;
	uint8_t rop;
	rb_wire_request *wr = NULL;
	if (!p.r->req || rb_wire_decode_request(nng_msg_body(p.r->req),
	    nng_msg_len(p.r->req), &rid, &rop, &wr)) {
		bk_client_reply_err(s, p.r, p.req_id, RB_OP_QUEUE_POP,
		    RB_ERR_INTERNAL, NULL, 0);
		return;
	}
	propose(s, p.r, p.req_id, rb_wire_request_op(wr));
	rb_wire_request_free(wr);
}

/* Answers pops whose wait ended; once the revision moved, proposes the
 * pops that now find something ready, in arrival order, as many as there
 * are ready messages per queue. */
static void parked_turn(struct bk_server *s)
{
	for (uint32_t i = 0; i < q.parked_n;) {
		if (s->now_ms >= q.parked[i].until_ms) {
			send_empty_pop(s, q.parked[i].r, q.parked[i].req_id);
			memmove(&q.parked[i], &q.parked[i + 1],
			    (q.parked_n - i - 1) * sizeof(q.parked[0]));
			q.parked_n--;
		} else {
			i++;
		}
	}
	if (q.parked_n == 0 || s->revision == q.parked_rev)
		return;
	q.parked_rev = s->revision;
	/* ready messages per queue not yet promised to a proposed pop (the
	 * names are copied: proposing shifts the list) */
	struct { uint8_t len; uint8_t name[ST_QUEUE_NAME_BYTES_MAX];
	    int64_t budget; } seen[BK_QUEUE_PARKED_MAX];
	uint32_t seen_n = 0;
	for (uint32_t i = 0; i < q.parked_n;) {
		struct parked *p = &q.parked[i];
		uint32_t k = 0;
		while (k < seen_n && !(seen[k].len == p->queue_len &&
		    memcmp(seen[k].name, p->queue, p->queue_len) == 0))
			k++;
		if (k == seen_n) {
			struct st_queue_stats st;
			seen[k].len = p->queue_len;
			memcpy(seen[k].name, p->queue, p->queue_len);
			seen[k].budget = st_queue_stats(s->st, p->queue,
			    p->queue_len, &st) ? 0 : (int64_t)st.ready;
			seen_n++;
		}
		if (seen[k].budget <= 0) {
			i++;
			continue;
		}
		seen[k].budget -= p->max_n;
		parked_propose(s, i);
	}
}

/* ---- expiry -------------------------------------------------------------- */

static void refresh_due(struct bk_server *s)
{
	uint32_t done = 0;
	for (uint32_t i = 0; i < q.tracked_n &&
	    done < BK_QUEUE_REFRESHES_PER_TURN_MAX; i++) {
		struct tracked *t = &q.tracked[i];
		if (!t->len)
			continue;
		if (t->expire_index && (s->applied >= t->expire_index ||
		    s->now_ms - t->expire_sent_ms > BK_QUEUE_EXPIRE_RETRY_MS))
			t->expire_index = 0;
		if (!t->refresh_at || s->applied < t->refresh_at)
			continue;
		struct st_queue_stats st;
		if (st_queue_stats(s->st, t->name, t->len, &st) == 0)
			t->next_due_ms = st.next_due_ms;
		t->refresh_at = 0;
		done++;
	}
}

static void expire_due(struct bk_server *s)
{
	int64_t now = wall_ms();
	uint32_t sent = 0;
	for (uint32_t i = 0; i < q.tracked_n &&
	    sent < BK_QUEUE_EXPIRES_PER_TURN_MAX; i++) {
		struct tracked *t = &q.tracked[i];
		if (!t->len || t->expire_index || t->refresh_at ||
		    !t->next_due_ms || t->next_due_ms > now)
			continue;
		if (t->next_due_ms == t->expired_due_ms &&
		    s->now_ms - t->expire_sent_ms < BK_QUEUE_EXPIRE_STUCK_MS)
			continue;
		struct st_op op = { .type = ST_OP_QUEUE };
		op.u.queue = (struct st_queue_op){ .cmd = ST_Q_EXPIRE,
		    .queue = t->name, .queue_len = t->len, .now_ms = now };
		if (bk_propose_op(s, NULL, &op) != 0)
			return;   /* busy or deposed: next turn */
		t->expire_index = t->refresh_at = last_index(s);
		t->expire_sent_ms = s->now_ms;
		t->expired_due_ms = t->next_due_ms;
		sent++;
	}
}

/* A new leader does not know which queues have claims to expire: it walks
 * the queue keys, one range read of one key per queue (skipping past the
 * queue's own keys), a bounded number per turn. */
static void discover(struct bk_server *s)
{
	static const uint8_t prefix_end[] = "_rb/queue0";   /* '/' + 1 */
	for (uint32_t n = 0; q.discovering &&
	    n < BK_QUEUE_DISCOVER_PER_TURN_MAX; n++) {
		struct st_range rg = { .key = q.cursor, .key_len = q.cursor_len,
		    .range_end = prefix_end, .range_end_len = sizeof(prefix_end) - 1,
		    .limit = 1, .keys_only = true };
		struct st_result res = { 0 };
		size_t pl = sizeof(ST_QUEUE_PREFIX) - 1;
		if (st_range(s->st, &rg, &res) || res.resp.u.range.kvs_n == 0) {
			q.discovering = false;
			st_result_free(&res);
			break;
		}
		const struct st_kv *kv = &res.resp.u.range.kvs[0];
		const uint8_t *name = kv->key + pl;
		const uint8_t *slash = memchr(name, '/', kv->key_len - pl);
		size_t len = slash ? (size_t)(slash - name) : kv->key_len - pl;
		if (name_ok(name, len)) {
			struct tracked *t = track(name, len);
			if (t && !t->refresh_at)
				t->refresh_at = s->applied ? s->applied : 1;
			/* next: the first key after "<prefix><name>/..." */
			memcpy(q.cursor + pl, name, len);
			q.cursor[pl + len] = '/' + 1;
			q.cursor_len = pl + len + 1;
		} else {
			/* a plain key under the prefix: the key after it */
			memcpy(q.cursor, kv->key, kv->key_len);
			q.cursor[kv->key_len] = 0;
			q.cursor_len = kv->key_len + 1;
		}
		st_result_free(&res);
	}
}

/* Leadership lost: parked pops go to the new leader (nothing of theirs
 * was proposed, so the client resends safely); the tables start over. */
static void step_down(struct bk_server *s)
{
	int err = s->leader ? RB_ERR_NOT_LEADER : RB_ERR_NO_LEADER;
	for (uint32_t i = 0; i < q.parked_n; i++)
		bk_client_reply_err(s, q.parked[i].r, q.parked[i].req_id,
		    RB_OP_QUEUE_POP, err, NULL, 0);
	q.parked_n = 0;
	memset(q.tracked, 0, sizeof(q.tracked));
	q.tracked_n = 0;
	q.discovering = false;
	q.leader = false;
}

static void step_up(void)
{
	memset(q.tracked, 0, sizeof(q.tracked));
	q.tracked_n = 0;
	memcpy(q.cursor, ST_QUEUE_PREFIX, sizeof(ST_QUEUE_PREFIX) - 1);
	q.cursor_len = sizeof(ST_QUEUE_PREFIX) - 1;
	q.discovering = true;
	q.full_warned = false;
	q.leader = true;
}

void bk_queue_tick(struct bk_server *s)
{
	own(s);
	if (s->role != RL_LEADER) {
		if (q.leader || q.parked_n)
			step_down(s);
		return;
	}
	if (!q.leader)
		step_up();
	discover(s);
	refresh_due(s);
	expire_due(s);
	parked_turn(s);
}
