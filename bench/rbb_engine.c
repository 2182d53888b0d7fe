/*
 * rbb_engine.c - the request engine of raftbus-bench. --conns nng req0
 * sockets; --clients "slots", each one nng context + one aio on a socket
 * (round robin), each keeping exactly one request in flight. Everything is
 * driven by aio callbacks on nng's own threads: a reply's callback records
 * it and sends the slot's next request. No thread per client, so 10^5
 * requests in flight cost 10^5 small structs, not 10^5 stacks.
 *
 * The main thread only watches: every RBB_TICK_MS it closes seconds of
 * the series, prints progress, and re-dials when a reply said "not leader"
 * (callbacks must not close dialers: that can wait on the callback's own
 * pipe). Writes go to the leader found before the run (rbb_find_leader).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "rb_wire.h"
#include "rbb.h"

/* How often the main thread wakes during a run. */
#define RBB_TICK_MS 100
/* Least time between two leader look-ups after "no leader". */
#define RBB_REDISCOVER_INTERVAL_MS 500

enum slot_state { SLOT_IDLE, SLOT_RATE_WAIT, SLOT_BACKOFF, SLOT_SEND, SLOT_RECV };

struct rbb_engine;

struct rbb_slot {
	struct rbb_engine *e;
	unsigned index;
	nng_ctx ctx;
	bool ctx_open;
	nng_aio *aio;
	enum slot_state state;
	uint64_t seq;
	uint64_t t0_ns;
	nng_msg *msg;            /* built, waiting for the rate limit */
	void *scratch;
};

struct rbb_conn {
	nng_socket sock;
	bool open;
	nng_dialer dialer;
};

struct rbb_engine {
	struct rbb_run *run;
	const struct rbb_phase *ph;
	struct rbb_stats *st;    /* NULL: not measured */
	struct rbb_stats *own_st;/* errors of an unmeasured phase */
	uint64_t total;
	atomic_uint_fast64_t issued;
	atomic_uint_fast64_t finished;
	struct rbb_conn *conns;
	unsigned conns_n;
	struct rbb_slot *slots;
	unsigned slots_n;
	pthread_mutex_t mu;      /* below */
	pthread_cond_t cv;
	unsigned active;         /* slots still issuing */
	uint64_t rate_next_ns;   /* token bucket: when the next token is due */
	uint64_t rate_interval_ns;
	uint64_t rate_burst_ns;
	bool redial;             /* hint_url is a new leader to dial */
	bool rediscover;         /* leader unknown: ask the endpoints */
	uint64_t rediscover_since_ns; /* when it was first asked for */
	char hint_url[RB_URL_BYTES_MAX];
};

static void slot_issue(struct rbb_slot *s);

uint64_t rbb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int transport_err(int nng_rv)
{
	return nng_rv == NNG_ETIMEDOUT ? RB_ERR_TIMEOUT : RB_ERR_UNAVAILABLE;
}

/* ---- one slot ----------------------------------------------------------- */

static void slot_done(struct rbb_slot *s)
{
	struct rbb_engine *e = s->e;
	s->state = SLOT_IDLE;
	pthread_mutex_lock(&e->mu);
	if (--e->active == 0)
		pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

/* Builds the request of s->seq into s->msg. Returns 0 or an rb_err. */
static int slot_build(struct rbb_slot *s)
{
	struct rbb_engine *e = s->e;
	struct rbb_req req = { .seq = s->seq, .slot = s->index,
	    .scratch = s->scratch };
	struct rb_op op;
	memset(&op, 0, sizeof(op));
	int err = e->ph->next(e->run, e->ph, &req, &op);
	if (err)
		return err;
	uint8_t *buf;
	size_t len;
	err = rb_wire_encode_request(s->seq + 1, &op, &buf, &len);
	if (err)
		return err;
	if (len > RB_MSG_BYTES_MAX) {
		free(buf);
		return RB_ERR_TOO_LARGE;
	}
	int rv = nng_msg_alloc(&s->msg, 0);
	if (rv == 0 && (rv = nng_msg_append(s->msg, buf, len)) != 0) {
		nng_msg_free(s->msg);
		s->msg = NULL;
	}
	free(buf);
	return rv ? RB_ERR_NOMEM : 0;
}

static void slot_send(struct rbb_slot *s)
{
	s->state = SLOT_SEND;
	s->t0_ns = rbb_now_ns();
	nng_aio_set_msg(s->aio, s->msg);
	s->msg = NULL;
	nng_aio_set_timeout(s->aio, RBB_REQUEST_TIMEOUT_MS);
	nng_ctx_send(s->ctx, s->aio);
}

/* Token bucket over all slots: ms to wait before sending (0 = now). */
static nng_duration rate_wait_ms(struct rbb_engine *e)
{
	if (e->rate_interval_ns == 0)
		return 0;
	uint64_t now = rbb_now_ns();
	pthread_mutex_lock(&e->mu);
	uint64_t t = e->rate_next_ns;
	/* an idle bucket holds at most rate_burst_ns worth of tokens */
	if (now > e->rate_burst_ns && t < now - e->rate_burst_ns)
		t = now - e->rate_burst_ns;
	e->rate_next_ns = t + e->rate_interval_ns;
	pthread_mutex_unlock(&e->mu);
	if (t <= now)
		return 0;
	return (nng_duration)((t - now + 999999) / 1000000);
}

/* Takes the next sequence number and sends (or waits for a token). Loops
 * rather than recursing when a request cannot even be built. */
static void slot_issue(struct rbb_slot *s)
{
	struct rbb_engine *e = s->e;
	for (;;) {
		uint64_t seq = atomic_fetch_add(&e->issued, 1);
		if (seq >= e->total) {
			slot_done(s);
			return;
		}
		s->seq = seq;
		int err = slot_build(s);
		if (err) {
			rbb_stats_record(e->st ? e->st : e->own_st, err, 0);
			atomic_fetch_add(&e->finished, 1);
			continue;
		}
		nng_duration wait = rate_wait_ms(e);
		if (wait > 0) {
			s->state = SLOT_RATE_WAIT;
			nng_sleep_aio(wait, s->aio);
			return;
		}
		slot_send(s);
		return;
	}
}

/* A reply or error says the leader moved: let the main thread re-dial. */
static void note_leader_error(struct rbb_engine *e, int err,
    const char *hint)
{
	if (e->ph->route != RBB_ROUTE_LEADER)
		return;
	pthread_mutex_lock(&e->mu);
	if (err == RB_ERR_NOT_LEADER && hint && hint[0] &&
	    strlen(hint) < sizeof(e->hint_url)) {
		if (strcmp(hint, e->run->leader_url) != 0) {
			snprintf(e->hint_url, sizeof(e->hint_url), "%s", hint);
			e->redial = true;
		}
	} else if (!e->rediscover) {
		e->rediscover = true;
		e->rediscover_since_ns = rbb_now_ns();
	}
	pthread_mutex_unlock(&e->mu);
}

static bool is_leader_error(int err)
{
	return err == RB_ERR_NOT_LEADER || err == RB_ERR_NO_LEADER ||
	    err == RB_ERR_UNAVAILABLE || err == RB_ERR_TIMEOUT;
}

/* Decodes and checks a reply; returns 0 or the rb_err to count. */
static int slot_check_reply(struct rbb_slot *s, nng_msg *m)
{
	struct rbb_engine *e = s->e;
	struct rb_resp resp;
	memset(&resp, 0, sizeof(resp));
	uint64_t req_id = 0;
	int err = rb_wire_decode_reply(nng_msg_body(m), nng_msg_len(m),
	    &req_id, NULL, &resp);
	if (err == 0 && req_id != s->seq + 1)
		err = RB_ERR_PROTOCOL;
	if (err == 0)
		err = resp.err;
	if (err == 0 && e->ph->check) {
		struct rbb_req req = { .seq = s->seq, .slot = s->index,
		    .scratch = s->scratch };
		err = e->ph->check(e->run, e->ph, &req, &resp);
	}
	if (is_leader_error(err))
		note_leader_error(e, err, resp.leader_url);
	rb_resp_free(&resp);
	return err;
}

static void slot_finish(struct rbb_slot *s, int err, uint64_t latency_ns)
{
	struct rbb_engine *e = s->e;
	rbb_stats_record(e->st ? e->st : e->own_st, err, latency_ns);
	atomic_fetch_add(&e->finished, 1);
	if (err && is_leader_error(err)) {
		s->state = SLOT_BACKOFF;
		nng_sleep_aio(RBB_ERROR_BACKOFF_MS, s->aio);
		return;
	}
	slot_issue(s);
}

static void slot_cb(void *arg)
{
	struct rbb_slot *s = arg;
	int rv = nng_aio_result(s->aio);
	switch (s->state) {
	case SLOT_RATE_WAIT:
		slot_send(s);
		return;
	case SLOT_BACKOFF:
		slot_issue(s);
		return;
	case SLOT_SEND:
		if (rv) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			note_leader_error(s->e, transport_err(rv), NULL);
			slot_finish(s, transport_err(rv), 0);
			return;
		}
		s->state = SLOT_RECV;
		nng_aio_set_timeout(s->aio, RBB_REQUEST_TIMEOUT_MS);
		nng_ctx_recv(s->ctx, s->aio);
		return;
	case SLOT_RECV: {
		if (rv) {
			note_leader_error(s->e, transport_err(rv), NULL);
			slot_finish(s, transport_err(rv), 0);
			return;
		}
		uint64_t t1 = rbb_now_ns();
		nng_msg *m = nng_aio_get_msg(s->aio);
		/* nng 1.5.2 can end a receive with success and no message
		 * after an earlier request timed out (rbb_flow.c) */
		if (m == NULL) {
			note_leader_error(s->e, RB_ERR_UNAVAILABLE, NULL);
			slot_finish(s, RB_ERR_UNAVAILABLE, 0);
			return;
		}
		int err = slot_check_reply(s, m);
		nng_msg_free(m);
		slot_finish(s, err, t1 - s->t0_ns);
		return;
	}
	case SLOT_IDLE:
		return;
	}
}

/* ---- sockets and slots -------------------------------------------------- */

static int conn_open(struct rbb_conn *c, const char *url)
{
	int rv = nng_req0_open(&c->sock);
	if (rv) {
		fprintf(stderr, "raftbus-bench: socket: %s\n", nng_strerror(rv));
		return -1;
	}
	c->open = true;
	/* no resend: a lost reply is an error of this request, never a
	 * second copy of a write */
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, RB_REPLY_BYTES_MAX);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 1000);
	rv = nng_dial(c->sock, url, &c->dialer, 0);
	if (rv) {
		fprintf(stderr, "raftbus-bench: dial %s: %s\n", url,
		    nng_strerror(rv));
		return -1;
	}
	return 0;
}

static void engine_close(struct rbb_engine *e)
{
	for (unsigned i = 0; e->slots && i < e->slots_n; i++) {
		struct rbb_slot *s = &e->slots[i];
		if (s->aio) {
			nng_aio_stop(s->aio);
			nng_aio_free(s->aio);
		}
		if (s->msg)
			nng_msg_free(s->msg);
		if (s->ctx_open)
			nng_ctx_close(s->ctx);
		free(s->scratch);
	}
	for (unsigned i = 0; e->conns && i < e->conns_n; i++)
		if (e->conns[i].open)
			nng_close(e->conns[i].sock);
	free(e->slots);
	free(e->conns);
	rbb_stats_free(e->own_st);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
}

static const char *conn_url(const struct rbb_engine *e, unsigned i)
{
	if (e->ph->route == RBB_ROUTE_LEADER)
		return e->run->leader_url;
	return e->run->endpoints[i % e->run->endpoints_n];
}

static int engine_open(struct rbb_engine *e)
{
	struct rbb_run *run = e->run;
	e->conns_n = run->conns;
	e->slots_n = run->clients;
	e->conns = calloc(e->conns_n, sizeof(*e->conns));
	e->slots = calloc(e->slots_n, sizeof(*e->slots));
	e->own_st = e->st ? NULL : rbb_stats_new();
	if (!e->conns || !e->slots || (!e->st && !e->own_st)) {
		fprintf(stderr, "raftbus-bench: out of memory\n");
		return -1;
	}
	for (unsigned i = 0; i < e->conns_n; i++)
		if (conn_open(&e->conns[i], conn_url(e, i)))
			return -1;
	for (unsigned i = 0; i < e->slots_n; i++) {
		struct rbb_slot *s = &e->slots[i];
		s->e = e;
		s->index = i;
		int rv = nng_ctx_open(&s->ctx, e->conns[i % e->conns_n].sock);
		if (rv == 0) {
			s->ctx_open = true;
			rv = nng_aio_alloc(&s->aio, slot_cb, s);
		}
		if (rv) {
			fprintf(stderr, "raftbus-bench: client %u: %s\n", i,
			    nng_strerror(rv));
			return -1;
		}
		if (e->ph->scratch_bytes &&
		    !(s->scratch = malloc(e->ph->scratch_bytes))) {
			fprintf(stderr, "raftbus-bench: out of memory\n");
			return -1;
		}
	}
	return 0;
}

/* ---- the control loop (main thread) ------------------------------------- */

/* Points every conn at run->leader_url (a new dialer; the old one closes
 * with its pipe, failing the requests still on it: they are counted). */
static void redial_all(struct rbb_engine *e)
{
	for (unsigned i = 0; i < e->conns_n; i++) {
		struct rbb_conn *c = &e->conns[i];
		nng_dialer_close(c->dialer);
		int rv = nng_dial(c->sock, e->run->leader_url, &c->dialer,
		    NNG_FLAG_NONBLOCK);
		if (rv)
			fprintf(stderr, "raftbus-bench: dial %s: %s\n",
			    e->run->leader_url, nng_strerror(rv));
	}
}

static void follow_leader(struct rbb_engine *e, uint64_t *last_discover_ns)
{
	uint64_t now = rbb_now_ns();
	char hint[RB_URL_BYTES_MAX];
	pthread_mutex_lock(&e->mu);
	bool redial = e->redial;
	/* a look-up waits for its interval; the flag stays up meanwhile */
	bool rediscover = e->rediscover && now - *last_discover_ns >=
	    RBB_REDISCOVER_INTERVAL_MS * 1000000ull;
	memcpy(hint, e->hint_url, sizeof(hint));
	e->redial = false;
	if (rediscover)
		e->rediscover = false;
	pthread_mutex_unlock(&e->mu);
	struct rbb_run *run = e->run;
	if (redial && strcmp(hint, run->leader_url) != 0) {
		memcpy(run->leader_url, hint, sizeof(run->leader_url));
		redial_all(e);
		return;
	}
	if (!rediscover)
		return;
	*last_discover_ns = now;
	char old[RB_URL_BYTES_MAX];
	memcpy(old, run->leader_url, sizeof(old));
	bool found = rbb_find_leader(run, RBB_TICK_MS * 5, false) == 0;
	if (found && strcmp(old, run->leader_url) != 0) {
		redial_all(e);
		return;
	}
	/* No leader yet, or the followers still name the old one: ask
	 * again for a while even if no further request fails (they may
	 * all be waiting on a dead leader's socket). */
	pthread_mutex_lock(&e->mu);
	if (now - e->rediscover_since_ns <
	    RBB_DISCOVER_TIMEOUT_MS * 1000000ull)
		e->rediscover = true;
	pthread_mutex_unlock(&e->mu);
}

static void control_loop(struct rbb_engine *e, uint64_t start_ns)
{
	uint64_t last_discover_ns = 0;
	for (;;) {
		pthread_mutex_lock(&e->mu);
		if (e->active > 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += RBB_TICK_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&e->cv, &e->mu, &ts);
		}
		bool over = e->active == 0;
		pthread_mutex_unlock(&e->mu);
		if (over)
			return;
		double elapsed = (double)(rbb_now_ns() - start_ns) / 1e9;
		if (e->st) {
			rbb_stats_roll(e->st, (uint64_t)elapsed);
			rbb_progress(e->run, e->st, atomic_load(&e->finished),
			    e->total, elapsed, false);
		}
		if (e->ph->route == RBB_ROUTE_LEADER)
			follow_leader(e, &last_discover_ns);
	}
}

int rbb_engine_run(struct rbb_run *run, const struct rbb_phase *ph,
    uint64_t total, struct rbb_stats *st)
{
	if (ph->route == RBB_ROUTE_LEADER && run->leader_url[0] == 0 &&
	    rbb_find_leader(run, RBB_DISCOVER_TIMEOUT_MS, true))
		return -1;
	struct rbb_engine e;
	memset(&e, 0, sizeof(e));
	e.run = run;
	e.ph = ph;
	e.st = st;
	e.total = total;
	pthread_mutex_init(&e.mu, NULL);
	pthread_cond_init(&e.cv, NULL);
	int rc = -1;
	if (engine_open(&e))
		goto out_close;
	if (run->rate && st) {
		e.rate_interval_ns = 1000000000ull / run->rate;
		if (e.rate_interval_ns == 0)
			e.rate_interval_ns = 1;
		e.rate_burst_ns = 10000000ull;  /* 10 ms of tokens */
	}
	uint64_t start_ns = rbb_now_ns();
	e.rate_next_ns = start_ns;
	e.active = e.slots_n;
	for (unsigned i = 0; i < e.slots_n; i++)
		slot_issue(&e.slots[i]);
	control_loop(&e, start_ns);
	double elapsed = (double)(rbb_now_ns() - start_ns) / 1e9;
	if (st) {
		st->duration_s = elapsed;
		/* the last, partial second is a row too */
		uint64_t secs = (uint64_t)elapsed;
		rbb_stats_roll(st, (double)secs < elapsed ? secs + 1 : secs);
		rbb_progress(run, st, e.total, e.total, elapsed, true);
	} else if (e.own_st->errors) {
		fprintf(stderr, "raftbus-bench: %s: %llu of %llu requests "
		    "failed\n", ph->name, (unsigned long long)e.own_st->errors,
		    (unsigned long long)total);
		goto out_close;
	}
	rc = 0;
out_close:
	engine_close(&e);
	return rc;
}

/* ---- blocking requests and leader discovery ----------------------------- */

static _Atomic uint64_t call_req_id = 1;

int rbb_call(const char *url, const struct rb_op *op, struct rb_resp *resp,
    int timeout_ms)
{
	memset(resp, 0, sizeof(*resp));
	uint64_t id = atomic_fetch_add(&call_req_id, 1);
	uint8_t *buf;
	size_t len;
	int err = rb_wire_encode_request(id, op, &buf, &len);
	if (err)
		return resp->err = err;
	nng_socket s;
	err = RB_ERR_UNAVAILABLE;
	if (nng_req0_open(&s))
		goto out_free;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, RB_REPLY_BYTES_MAX);
	if (nng_dial(s, url, NULL, 0) || nng_send(s, buf, len, 0))
		goto out_close;
	void *rbuf;
	size_t rlen;
	int rv = nng_recv(s, &rbuf, &rlen, NNG_FLAG_ALLOC);
	if (rv) {
		err = transport_err(rv);
		goto out_close;
	}
	rv = rb_wire_decode_reply(rbuf, rlen, NULL, NULL, resp);
	nng_free(rbuf, rlen);
	err = rv ? rv : resp->err;
out_close:
	nng_close(s);
out_free:
	free(buf);
	return resp->err = err;
}

/* The client URL of member `id` from the member list at `url`. */
static int member_url(const char *url, rb_member_id id, char *out,
    size_t cap, int timeout_ms)
{
	struct rb_op op = { .type = RB_OP_MEMBER_LIST };
	struct rb_resp resp;
	int rc = -1;
	if (rbb_call(url, &op, &resp, timeout_ms) == 0) {
		const struct rb_member_list_resp *ml = &resp.body.u.member_list;
		for (size_t i = 0; i < ml->members_n; i++) {
			const struct rb_member *m = &ml->members[i];
			if (m->id == id && m->client_urls_n > 0 &&
			    strlen(m->client_urls[0]) < cap) {
				snprintf(out, cap, "%s", m->client_urls[0]);
				rc = 0;
			}
		}
	}
	rb_resp_free(&resp);
	return rc;
}

/* One pass over the endpoints; 0 when the leader's URL was found. */
static int find_leader_once(struct rbb_run *run, int timeout_ms)
{
	rb_member_id leader = 0;
	const char *asked = NULL;
	for (size_t i = 0; i < run->endpoints_n; i++) {
		struct rb_op op = { .type = RB_OP_ENDPOINT_STATUS };
		struct rb_resp resp;
		int err = rbb_call(run->endpoints[i], &op, &resp, timeout_ms);
		rb_member_id l = err ? 0 : resp.body.u.status.leader;
		bool self = l != 0 && resp.header.member_id == l;
		rb_resp_free(&resp);
		if (self) {
			snprintf(run->leader_url, sizeof(run->leader_url), "%s",
			    run->endpoints[i]);
			return 0;
		}
		if (l != 0 && leader == 0) {
			leader = l;
			asked = run->endpoints[i];
		}
	}
	if (leader == 0)
		return -1;
	return member_url(asked, leader, run->leader_url,
	    sizeof(run->leader_url), timeout_ms);
}

int rbb_find_leader(struct rbb_run *run, int timeout_ms, bool loud)
{
	uint64_t end = rbb_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int per_call_ms = timeout_ms < 2000 ? timeout_ms : 2000;
	for (;;) {
		if (find_leader_once(run, per_call_ms) == 0)
			return 0;
		if (rbb_now_ns() >= end)
			break;
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (loud)
		fprintf(stderr, "raftbus-bench: no leader found at %s%s within "
		    "%d ms\n", run->endpoints[0], run->endpoints_n > 1 ?
		    " (and the other endpoints)" : "", timeout_ms);
	return -1;
}
