/*
 * rbb_flow.c - flows: the part of raftbus-bench that runs actors, clients
 * with a chain of their own (a watcher's position, a consumer's claimed
 * messages), for the watch, pubsub and queue workloads. rbb_engine.c does
 * the same for interchangeable request slots; this is its sibling, not a
 * replacement: an actor decides its next request from its last reply.
 *
 * Each actor owns one nng context (on one of the flow's req sockets) and
 * one aio, and keeps exactly one request in flight. Everything runs in aio
 * callbacks on nng's threads; the main thread sleeps in rbb_flow_wait(),
 * rolling the per-second series and printing progress, until the
 * workload's goal is met, every actor is done, or the run stalls.
 *
 * Stopping: `stopping` is raised first, so that a callback running at that
 * moment issues nothing new; then every context is closed (which fails
 * what is in flight, long polls included) and every aio stopped (which
 * waits for its callback).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "rb_wire.h"
#include "rbb.h"

/* How often the main thread wakes during a flow. */
#define RBB_FLOW_TICK_MS 100
/* Sockets of one flow. */
#define RBB_FLOW_SOCKETS_MAX (2u * RBB_CONNS_MAX)

enum actor_state { ACTOR_IDLE, ACTOR_BACKOFF, ACTOR_SEND, ACTOR_RECV,
	ACTOR_DONE };

struct rbb_actor {
	rbb_flow *f;
	const struct rbb_actor_ops *ops;
	void *arg;
	nng_ctx ctx;
	bool ctx_open;
	nng_aio *aio;
	enum actor_state state;
	uint64_t req_id;
	nng_duration timeout_ms;
};

struct rbb_flow {
	struct rbb_run *run;
	struct rbb_stats *st;
	nng_socket socks[RBB_FLOW_SOCKETS_MAX];
	unsigned socks_n;
	struct rbb_actor **actors;  /* each allocated alone: aios point at it */
	unsigned actors_n;
	unsigned actors_cap;
	atomic_bool stopping;
	atomic_uint_fast64_t touches;
	pthread_mutex_t mu;      /* below */
	pthread_cond_t cv;
	unsigned active;         /* actors started and not done */
};

static void actor_issue(struct rbb_actor *a);

/* ---- one actor ---------------------------------------------------------- */

static void actor_done(struct rbb_actor *a)
{
	rbb_flow *f = a->f;
	a->state = ACTOR_DONE;
	pthread_mutex_lock(&f->mu);
	if (--f->active == 0)
		pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* How long the server may hold this request before answering. */
static nng_duration op_wait_ms(const struct rb_op *op)
{
	int64_t w = 0;
	if (op->type == RB_OP_WATCH)
		w = op->u.watch.wait_ms;
	else if (op->type == RB_OP_QUEUE_POP)
		w = op->u.queue.wait_ms;
	return (nng_duration)(w > 0 ? w : 0);
}

/* Encodes op into a new message *out. Returns 0 or an rb_err. */
static int actor_encode(struct rbb_actor *a, const struct rb_op *op,
    nng_msg **out)
{
	uint8_t *buf;
	size_t len;
	int err = rb_wire_encode_request(++a->req_id, op, &buf, &len);
	if (err)
		return err;
	if (len > RB_MSG_BYTES_MAX) {
		free(buf);
		return RB_ERR_TOO_LARGE;
	}
	int rv = nng_msg_alloc(out, 0);
	if (rv == 0 && (rv = nng_msg_append(*out, buf, len)) != 0)
		nng_msg_free(*out);
	free(buf);
	return rv ? RB_ERR_NOMEM : 0;
}

/* Asks the actor for its next request and sends it; a request that cannot
 * be built ends the actor (it is counted by the workload's next()). */
static void actor_issue(struct rbb_actor *a)
{
	if (atomic_load(&a->f->stopping)) {
		actor_done(a);
		return;
	}
	struct rb_op op;
	memset(&op, 0, sizeof(op));
	int rc = a->ops->next(a->arg, &op);
	nng_msg *m = NULL;
	if (rc == 0 && (rc = actor_encode(a, &op, &m)) != 0)
		(void)a->ops->reply(a->arg, rc, NULL);
	if (rc) {
		actor_done(a);
		return;
	}
	a->timeout_ms = RBB_REQUEST_TIMEOUT_MS + op_wait_ms(&op);
	a->state = ACTOR_SEND;
	nng_aio_set_msg(a->aio, m);
	nng_aio_set_timeout(a->aio, a->timeout_ms);
	nng_ctx_send(a->ctx, a->aio);
}

static int transport_err(int nng_rv)
{
	return nng_rv == NNG_ETIMEDOUT ? RB_ERR_TIMEOUT : RB_ERR_UNAVAILABLE;
}

/* Hands a reply (or a transport error, m == NULL) to the actor, then
 * issues its next request, after its back-off if it asked for one. */
static void actor_finish(struct rbb_actor *a, int err, nng_msg *m)
{
	struct rb_resp resp;
	memset(&resp, 0, sizeof(resp));
	const struct rb_resp *rp = NULL;
	if (m) {
		uint64_t id = 0;
		err = rb_wire_decode_reply(nng_msg_body(m), nng_msg_len(m), &id,
		    NULL, &resp);
		if (err == 0 && id != a->req_id)
			err = RB_ERR_PROTOCOL;
		if (err == 0) {
			err = resp.err;   /* the server's answer, error or not */
			rp = &resp;
		}
	}
	/* a request cancelled by the stop is nobody's failure */
	if (m == NULL && atomic_load(&a->f->stopping)) {
		actor_done(a);
		return;
	}
	int backoff_ms = a->ops->reply(a->arg, err, rp);
	rb_resp_free(&resp);
	if (backoff_ms > 0 && !atomic_load(&a->f->stopping)) {
		a->state = ACTOR_BACKOFF;
		nng_sleep_aio(backoff_ms, a->aio);
		return;
	}
	actor_issue(a);
}

static void actor_cb(void *arg)
{
	struct rbb_actor *a = arg;
	int rv = nng_aio_result(a->aio);
	switch (a->state) {
	case ACTOR_BACKOFF:
		actor_issue(a);
		return;
	case ACTOR_SEND:
		if (rv) {
			nng_msg_free(nng_aio_get_msg(a->aio));
			actor_finish(a, transport_err(rv), NULL);
			return;
		}
		a->state = ACTOR_RECV;
		nng_aio_set_timeout(a->aio, a->timeout_ms);
		nng_ctx_recv(a->ctx, a->aio);
		return;
	case ACTOR_RECV: {
		if (rv) {
			actor_finish(a, transport_err(rv), NULL);
			return;
		}
		nng_msg *m = nng_aio_get_msg(a->aio);
		/* Seen with nng 1.5.2 after a request timed out on a member
		 * that stopped answering (SIGSTOP): a later receive completes
		 * with success and no message. Nothing arrived: a transport
		 * failure of this request (the next send resets the
		 * context's state machine). */
		if (m == NULL) {
			actor_finish(a, RB_ERR_UNAVAILABLE, NULL);
			return;
		}
		actor_finish(a, 0, m);
		nng_msg_free(m);
		return;
	}
	case ACTOR_IDLE:
	case ACTOR_DONE:
		return;
	}
}

/* ---- the flow ----------------------------------------------------------- */

int rbb_flow_new(struct rbb_run *run, struct rbb_stats *st, rbb_flow **out)
{
	rbb_flow *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		fprintf(stderr, "raftbus-bench: out of memory\n");
		return -1;
	}
	f->run = run;
	f->st = st;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	*out = f;
	return 0;
}

int rbb_flow_socket(rbb_flow *f, const char *url)
{
	if (f->socks_n == RBB_FLOW_SOCKETS_MAX) {
		fprintf(stderr, "raftbus-bench: more than %u sockets\n",
		    RBB_FLOW_SOCKETS_MAX);
		return -1;
	}
	nng_socket *s = &f->socks[f->socks_n];
	int rv = nng_req0_open(s);
	if (rv) {
		fprintf(stderr, "raftbus-bench: socket: %s\n", nng_strerror(rv));
		return -1;
	}
	f->socks_n++;
	/* no resend: a lost reply is an error of its request, never a
	 * second copy of a write */
	nng_socket_set_ms(*s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, RB_REPLY_BYTES_MAX);
	nng_socket_set_ms(*s, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(*s, NNG_OPT_RECONNMAXT, 1000);
	rv = nng_dial(*s, url, NULL, 0);
	if (rv) {
		fprintf(stderr, "raftbus-bench: dial %s: %s\n", url,
		    nng_strerror(rv));
		return -1;
	}
	return (int)(f->socks_n - 1);
}

int rbb_flow_actor(rbb_flow *f, int sock, const struct rbb_actor_ops *ops,
    void *arg)
{
	if (sock < 0 || (unsigned)sock >= f->socks_n ||
	    f->actors_n == RBB_CLIENTS_MAX) {
		fprintf(stderr, "raftbus-bench: too many actors\n");
		return -1;
	}
	if (f->actors_n == f->actors_cap) {
		unsigned cap = f->actors_cap ? 2 * f->actors_cap : 64;
		struct rbb_actor **n = realloc(f->actors, cap * sizeof(*n));
		if (n == NULL) {
			fprintf(stderr, "raftbus-bench: out of memory\n");
			return -1;
		}
		f->actors = n;
		f->actors_cap = cap;
	}
	struct rbb_actor *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		fprintf(stderr, "raftbus-bench: out of memory\n");
		return -1;
	}
	f->actors[f->actors_n] = a;
	a->f = f;
	a->ops = ops;
	a->arg = arg;
	f->actors_n++;
	int rv = nng_ctx_open(&a->ctx, f->socks[sock]);
	if (rv == 0) {
		a->ctx_open = true;
		rv = nng_aio_alloc(&a->aio, actor_cb, a);
	}
	if (rv) {
		fprintf(stderr, "raftbus-bench: actor %u: %s\n", f->actors_n - 1,
		    nng_strerror(rv));
		return -1;
	}
	return (int)(f->actors_n - 1);
}

void rbb_flow_start(rbb_flow *f, unsigned first, unsigned n)
{
	if (first > f->actors_n || n > f->actors_n - first)
		return;
	pthread_mutex_lock(&f->mu);
	f->active += n;
	pthread_mutex_unlock(&f->mu);
	for (unsigned i = first; i < first + n; i++)
		actor_issue(f->actors[i]);
}

void rbb_flow_touch(rbb_flow *f)
{
	atomic_fetch_add(&f->touches, 1);
}

/* Sleeps up to one tick or until every actor is done; true = all done. */
static bool flow_tick(rbb_flow *f)
{
	pthread_mutex_lock(&f->mu);
	if (f->active > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += RBB_FLOW_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	}
	bool over = f->active == 0;
	pthread_mutex_unlock(&f->mu);
	return over;
}

/* Cancels what is in flight and waits for every callback. */
static void flow_stop(rbb_flow *f)
{
	atomic_store(&f->stopping, true);
	for (unsigned i = 0; i < f->actors_n; i++) {
		struct rbb_actor *a = f->actors[i];
		if (a->ctx_open) {
			nng_ctx_close(a->ctx);
			a->ctx_open = false;
		}
	}
	for (unsigned i = 0; i < f->actors_n; i++)
		if (f->actors[i]->aio)
			nng_aio_stop(f->actors[i]->aio);
}

bool rbb_flow_wait(rbb_flow *f, uint64_t start_ns,
    const struct rbb_flow_goal *goal)
{
	uint64_t last_mark = UINT64_MAX, last_change_ns = rbb_now_ns();
	bool reached = false;
	for (;;) {
		bool all_done = flow_tick(f);
		uint64_t now = rbb_now_ns();
		uint64_t count = goal->count(goal->arg);
		uint64_t target = goal->target(goal->arg);
		double elapsed = (double)(now - start_ns) / 1e9;
		rbb_stats_roll(f->st, (uint64_t)elapsed);
		rbb_progress(f->run, f->st, count, target, elapsed, false);
		reached = count >= target;
		if (reached || all_done)
			break;
		uint64_t mark = count + atomic_load(&f->touches);
		if (mark != last_mark) {
			last_mark = mark;
			last_change_ns = now;
		} else if (now - last_change_ns >=
		    RBB_FLOW_STALL_MS * 1000000ull) {
			fprintf(stderr, "raftbus-bench: %s: nothing happened "
			    "for %d s; stopping\n", f->run->wl->name,
			    RBB_FLOW_STALL_MS / 1000);
			break;
		}
	}
	flow_stop(f);
	double elapsed = (double)(rbb_now_ns() - start_ns) / 1e9;
	uint64_t secs = (uint64_t)elapsed;
	/* the last, partial second is a row too */
	rbb_stats_roll(f->st, (double)secs < elapsed ? secs + 1 : secs);
	rbb_progress(f->run, f->st, 0, 0, elapsed, true);
	return reached;
}

void rbb_flow_free(rbb_flow *f)
{
	if (f == NULL)
		return;
	flow_stop(f);
	for (unsigned i = 0; i < f->actors_n; i++) {
		if (f->actors[i]->aio)
			nng_aio_free(f->actors[i]->aio);
		free(f->actors[i]);
	}
	for (unsigned i = 0; i < f->socks_n; i++)
		nng_close(f->socks[i]);
	free(f->actors);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

/* ---- writers ------------------------------------------------------------ */

struct rbb_writer {
	struct rbb_writers *w;
	uint64_t seq;            /* of the request in flight */
	uint8_t *buf;
};

struct rbb_writers {
	rbb_flow *f;
	const struct rbb_writer_ops *ops;
	void *arg;
	uint64_t total;
	struct rbb_writer *each;
	uint8_t *bufs;
	rb_rev *revs;            /* by seq; written once each, by its writer */
	atomic_uint_fast64_t next_seq;
	atomic_uint_fast64_t failed;
	atomic_uint_fast64_t answered;
	atomic_int first_err;
};

static int writer_next(void *arg, struct rb_op *op)
{
	struct rbb_writer *wr = arg;
	struct rbb_writers *w = wr->w;
	uint64_t seq = atomic_fetch_add(&w->next_seq, 1);
	if (seq >= w->total)
		return RBB_ACTOR_DONE;
	wr->seq = seq;
	w->ops->build(w->arg, seq, wr->buf, op);
	return 0;
}

static int writer_reply(void *arg, int err, const struct rb_resp *resp)
{
	struct rbb_writer *wr = arg;
	struct rbb_writers *w = wr->w;
	rb_rev rev = err == 0 ? w->ops->revision(resp) : 0;
	if (rev > 0) {
		/* only a success is progress: writes failing one by one
		 * after their timeout must not keep a dead run alive */
		rbb_flow_touch(w->f);
		w->revs[wr->seq] = rev;
	} else {
		int none = 0;
		atomic_compare_exchange_strong(&w->first_err, &none,
		    err ? err : RB_ERR_PROTOCOL);
		atomic_fetch_add(&w->failed, 1);
	}
	/* after revs[] and failed: a reader of answered sees both */
	atomic_fetch_add(&w->answered, 1);
	return rev > 0 || err == 0 ? 0 : RBB_ERROR_BACKOFF_MS;
}

static const struct rbb_actor_ops writer_ops = {
	.next = writer_next,
	.reply = writer_reply,
};

struct rbb_writers *rbb_writers_new(rbb_flow *f, unsigned n, int first_sock,
    unsigned socks_n, uint64_t total, size_t buf_bytes,
    const struct rbb_writer_ops *ops, void *arg)
{
	struct rbb_writers *w = calloc(1, sizeof(*w));
	if (w == NULL)
		goto out_nomem;
	w->f = f;
	w->ops = ops;
	w->arg = arg;
	w->total = total;
	w->each = calloc(n, sizeof(*w->each));
	w->bufs = malloc((size_t)n * (buf_bytes ? buf_bytes : 1));
	w->revs = calloc(total, sizeof(*w->revs));
	if (!w->each || !w->bufs || !w->revs)
		goto out_free;
	for (unsigned i = 0; i < n; i++) {
		w->each[i].w = w;
		w->each[i].buf = w->bufs + (size_t)i * buf_bytes;
		if (rbb_flow_actor(f, first_sock + (int)(i % socks_n),
		    &writer_ops, &w->each[i]) < 0) {
			rbb_writers_free(w);
			return NULL;
		}
	}
	return w;
out_free:
	rbb_writers_free(w);
out_nomem:
	fprintf(stderr, "raftbus-bench: out of memory\n");
	return NULL;
}

rb_rev *rbb_writers_revs(struct rbb_writers *w)
{
	return w->revs;
}

uint64_t rbb_writers_answered(const struct rbb_writers *w)
{
	return atomic_load(&w->answered);
}

uint64_t rbb_writers_failed(const struct rbb_writers *w, int *first_err)
{
	if (first_err)
		*first_err = atomic_load(&w->first_err);
	return atomic_load(&w->failed);
}

void rbb_writers_free(struct rbb_writers *w)
{
	if (w == NULL)
		return;
	free(w->each);
	free(w->bufs);
	free(w->revs);
	free(w);
}

/* ---- helpers of the flow workloads -------------------------------------- */

uint64_t rbb_stamp_put(uint8_t *buf)
{
	uint64_t now = rbb_now_ns();
	for (unsigned i = 0; i < 8; i++)
		buf[i] = (uint8_t)(now >> (8 * i));
	return now;
}

uint64_t rbb_stamp_get(const uint8_t *buf)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)buf[i] << (8 * i);
	return v;
}

void rbb_run_nonce(char *buf, size_t cap)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, cap, "%llx-%x", (unsigned long long)ts.tv_sec *
	    1000000000ull + (unsigned long long)ts.tv_nsec,
	    (unsigned)getpid());
}

int rbb_leader_revision(struct rbb_run *run, rb_rev *out)
{
	if (run->leader_url[0] == 0 &&
	    rbb_find_leader(run, RBB_DISCOVER_TIMEOUT_MS, true))
		return -1;
	struct rb_op op = { .type = RB_OP_ENDPOINT_STATUS };
	struct rb_resp resp;
	int err = rbb_call(run->leader_url, &op, &resp,
	    RBB_REQUEST_TIMEOUT_MS);
	*out = resp.header.revision;
	rb_resp_free(&resp);
	if (err) {
		fprintf(stderr, "raftbus-bench: status of %s: %s\n",
		    run->leader_url, rb_strerror(err));
		return -1;
	}
	return 0;
}

void rbb_delete_prefix(struct rbb_run *run, const uint8_t *prefix,
    size_t prefix_len)
{
	uint8_t *end = malloc(prefix_len ? prefix_len : 1);
	if (end == NULL || prefix_len == 0 || run->leader_url[0] == 0) {
		free(end);
		return;
	}
	struct rb_op op = { .type = RB_OP_DELETE_RANGE };
	op.u.delete_range = (struct rb_delete_range){ .key = prefix,
	    .key_len = prefix_len, .range_end = end,
	    .range_end_len = rb_prefix_end(prefix, prefix_len, end) };
	struct rb_resp resp;
	(void)rbb_call(run->leader_url, &op, &resp, RBB_REQUEST_TIMEOUT_MS);
	rb_resp_free(&resp);
	free(end);
}
