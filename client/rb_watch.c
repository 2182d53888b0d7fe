/*
 * rb_watch.c - libraftbus's watch streams: many watches multiplexed on one
 * connection, served by long polls (RB_OP_WATCH, docs/protocol.md).
 *
 * The watcher holds, per watch, the next revision (and position within a
 * split revision) it wants, and every poll asks for exactly that. Nothing
 * the server keeps decides what is delivered, so delivery is ordered, with
 * no gap and no duplicate, whichever member answers: a poll is idempotent,
 * and nng's req0 re-sends it on another connection at once when the one it
 * waited on drops (a member killed), or after the resend time when a
 * member stops answering. The socket dials every endpoint in the
 * background and reconnects by itself.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raftbus.h"
#include "rb_mem.h"
#include "rb_wire.h"

/* How long a poll may go unanswered beyond its own wait before nng sends
 * it again (on whichever connection is up). */
#define RB_WATCH_RESEND_SLACK_MS 3000
/* nng reconnect backoff of the watcher's dialers. */
#define RB_WATCH_RECONNECT_MIN_MS 50
#define RB_WATCH_RECONNECT_MAX_MS 1000

struct watch {
	int64_t id;
	uint8_t *key;            /* malloc'ed key and range end */
	size_t key_len;
	uint8_t *range_end;
	size_t range_end_len;
	rb_rev next_rev;         /* next revision wanted */
	uint32_t next_sub;
	bool prev_kv, no_put, no_delete, progress_notify;
};

struct rb_watcher {
	nng_socket sock;
	nng_ctx ctx;
	nng_aio *aio;            /* no callback: waited on */
	struct watch *w;
	size_t n, cap;
	int64_t next_id;
	uint64_t next_req_id;
	int64_t command_timeout_ms;
	int64_t progress_ms;
	int64_t next_progress_ms;  /* when periodic notifications are due */
	bool progress_asked;
	atomic_int pipes;        /* live connections */
	size_t dials;            /* endpoints dialled */
	int64_t opened_ms;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int map_nng(int rv)
{
	return rv == NNG_ENOMEM ? RB_ERR_NOMEM :
		rv == NNG_ETIMEDOUT ? RB_ERR_TIMEOUT : RB_ERR_UNAVAILABLE;
}

/* Counts live connections. nng also reports the removal of a connection
 * that never got as far as ADD_POST: the count never goes below 0. */
static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	rb_watcher *w = arg;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_fetch_add(&w->pipes, 1);
		return;
	}
	int n = atomic_load(&w->pipes);
	while (n > 0 && !atomic_compare_exchange_weak(&w->pipes, &n, n - 1))
		;
}

int rb_watch_open(rb_client *c, int64_t progress_ms, rb_watcher **out)
{
	*out = NULL;
	rb_watcher *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return RB_ERR_NOMEM;
	w->next_id = 1;
	w->command_timeout_ms = rb_client_command_timeout_ms(c);
	w->progress_ms = progress_ms > 0 ? progress_ms : RB_WATCH_PROGRESS_MS_DEFAULT;
	w->next_progress_ms = mono_ms() + w->progress_ms;
	int rv = nng_req0_open(&w->sock);
	if (rv) {
		free(w);
		return map_nng(rv);
	}
	nng_socket_set_size(w->sock, NNG_OPT_RECVMAXSZ, RB_REPLY_BYTES_MAX);
	nng_socket_set_ms(w->sock, NNG_OPT_RECONNMINT, RB_WATCH_RECONNECT_MIN_MS);
	nng_socket_set_ms(w->sock, NNG_OPT_RECONNMAXT, RB_WATCH_RECONNECT_MAX_MS);
	if ((rv = nng_ctx_open(&w->ctx, w->sock)) != 0)
		goto out_close_sock;
	if ((rv = nng_aio_alloc(&w->aio, NULL, NULL)) != 0)
		goto out_close_sock;
	nng_pipe_notify(w->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, w);
	nng_pipe_notify(w->sock, NNG_PIPE_EV_REM_POST, pipe_cb, w);
	w->opened_ms = mono_ms();
	for (size_t i = 0; i < rb_client_endpoints_n(c); i++) {
		rv = nng_dial(w->sock, rb_client_endpoint(c, i), NULL, NNG_FLAG_NONBLOCK);
		if (rv)
			goto out_close_sock;
		w->dials++;
	}
	*out = w;
	return 0;
out_close_sock:
	nng_close(w->sock);
	nng_aio_free(w->aio);   /* NULL-safe */
	free(w);
	return map_nng(rv);
}

void rb_watch_close(rb_watcher *w)
{
	if (w == NULL)
		return;
	/* RB_DIAL_SETTLE_MS: let fresh connections finish their handshake */
	while ((size_t)atomic_load(&w->pipes) < w->dials &&
	    mono_ms() - w->opened_ms < RB_DIAL_SETTLE_MS) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	nng_close(w->sock);
	nng_aio_free(w->aio);
	for (size_t i = 0; i < w->n; i++) {
		free(w->w[i].key);
		free(w->w[i].range_end);
	}
	free(w->w);
	free(w);
}

size_t rb_watch_count(const rb_watcher *w)
{
	return w->n;
}

static struct watch *find(const rb_watcher *w, int64_t id)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->w[i].id == id)
			return &w->w[i];
	return NULL;
}

rb_rev rb_watch_position(const rb_watcher *w, int64_t id)
{
	const struct watch *x = find(w, id);
	return x ? x->next_rev : 0;
}

static void drop(rb_watcher *w, struct watch *x)
{
	free(x->key);
	free(x->range_end);
	size_t i = (size_t)(x - w->w);
	memmove(&w->w[i], &w->w[i + 1], (w->n - i - 1) * sizeof(*x));
	w->n--;
}

int rb_watch_cancel(rb_watcher *w, int64_t id)
{
	struct watch *x = find(w, id);
	if (x == NULL)
		return RB_ERR_INVALID;
	drop(w, x);
	return 0;
}

void rb_watch_request_progress(rb_watcher *w)
{
	w->progress_asked = true;
}

/* Sends one poll of watches [0, n) of `ws` and waits for its reply, re-sent
 * by nng as needed, for at most wait_ms + the command timeout. */
static int poll_once(rb_watcher *w, const struct watch *ws, size_t n,
	int64_t wait_ms, struct rb_resp *resp)
{
	struct rb_watch_spec *specs = calloc(n ? n : 1, sizeof(*specs));
	if (specs == NULL)
		return RB_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		specs[i] = (struct rb_watch_spec){ .key = ws[i].key,
			.key_len = ws[i].key_len, .range_end = ws[i].range_end,
			.range_end_len = ws[i].range_end_len,
			.start_rev = ws[i].next_rev, .start_sub = ws[i].next_sub,
			.prev_kv = ws[i].prev_kv, .no_put = ws[i].no_put,
			.no_delete = ws[i].no_delete };
	struct rb_op op = { .type = RB_OP_WATCH };
	op.u.watch = (struct rb_watch_req){ .watches = specs, .watches_n = n,
		.wait_ms = wait_ms };
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t req_id = ++w->next_req_id;
	int rc = rb_wire_encode_request(req_id, &op, &buf, &len);
	free(specs);
	if (rc)
		return rc;
	nng_msg *msg = NULL;
	int rv = nng_msg_alloc(&msg, 0);
	if (rv == 0)
		rv = nng_msg_append(msg, buf, len);
	free(buf);
	nng_ctx_set_ms(w->ctx, NNG_OPT_REQ_RESENDTIME,
		(nng_duration)(wait_ms + RB_WATCH_RESEND_SLACK_MS));
	if (rv == 0) {
		nng_aio_set_msg(w->aio, msg);
		nng_aio_set_timeout(w->aio, (nng_duration)w->command_timeout_ms);
		nng_ctx_send(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		if ((rv = nng_aio_result(w->aio)) != 0)
			nng_msg_free(msg);   /* not taken by nng */
	}
	if (rv)
		return map_nng(rv);
	/* a late reply to an earlier poll of this context is dropped by
	 * req0 (it matches ids), so whatever arrives answers this poll */
	nng_aio_set_timeout(w->aio, (nng_duration)(wait_ms + w->command_timeout_ms));
	nng_ctx_recv(w->ctx, w->aio);
	nng_aio_wait(w->aio);
	if ((rv = nng_aio_result(w->aio)) != 0)
		return map_nng(rv);
	msg = nng_aio_get_msg(w->aio);
	uint64_t got_id;
	uint8_t got_op;
	rb_resp_free(resp);
	rc = rb_wire_decode_reply(nng_msg_body(msg), nng_msg_len(msg), &got_id,
		&got_op, resp);
	nng_msg_free(msg);
	if (rc == 0 && (got_id != req_id || got_op != RB_OP_WATCH))
		rc = RB_ERR_PROTOCOL;
	if (rc == 0 && resp->err == 0 && resp->body.u.watch.results_n != n)
		rc = RB_ERR_PROTOCOL;
	if (rc)
		return rc;
	return resp->err;
}

int rb_watch_add(rb_watcher *w, const struct rb_watch_opts *o, int64_t *id_out)
{
	if (o == NULL || o->key_len == 0 || o->start_rev < 0 ||
	    w->n == RB_WATCHER_WATCHES_MAX)
		return RB_ERR_INVALID;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 4;
		struct watch *nw = realloc(w->w, cap * sizeof(*nw));
		if (nw == NULL)
			return RB_ERR_NOMEM;
		w->w = nw;
		w->cap = cap;
	}
	struct watch x = { .id = w->next_id, .key_len = o->key_len,
		.range_end_len = o->range_end_len, .next_rev = o->start_rev,
		.prev_kv = o->prev_kv, .no_put = o->no_put, .no_delete = o->no_delete,
		.progress_notify = o->progress_notify };
	x.key = malloc(o->key_len);
	x.range_end = malloc(o->range_end_len ? o->range_end_len : 1);
	if (x.key == NULL || x.range_end == NULL) {
		free(x.key);
		free(x.range_end);
		return RB_ERR_NOMEM;
	}
	memcpy(x.key, o->key, o->key_len);
	if (o->range_end_len)
		memcpy(x.range_end, o->range_end, o->range_end_len);
	if (x.next_rev == 0) {
		/* "from now": the server answers start 0 with its revision + 1 */
		struct rb_resp r = { 0 };
		int rc = poll_once(w, &x, 1, 0, &r);
		if (rc == 0)
			x.next_rev = r.body.u.watch.results[0].next_rev;
		rb_resp_free(&r);
		if (rc) {
			free(x.key);
			free(x.range_end);
			return rc;
		}
	}
	w->w[w->n++] = x;
	*id_out = w->next_id++;
	return 0;
}

/* Applies a poll's reply to the watches it asked for (snapshot `asked`
 * of ids) and keeps in resp only the results to report: events,
 * cancellations, and progress of every caught-up watch when one was
 * requested or of the progress_notify ones when the interval passed. */
static void absorb(rb_watcher *w, const int64_t *asked, struct rb_resp *resp,
	bool requested, bool periodic)
{
	struct rb_watch_resp *wr = &resp->body.u.watch;
	size_t kept = 0;
	for (size_t i = 0; i < wr->results_n; i++) {
		struct rb_watch_result res = wr->results[i];
		struct watch *x = find(w, asked[i]);
		if (x == NULL)
			continue;   /* cancelled meanwhile */
		res.watch_id = x->id;
		res.progress = false;
		if (res.canceled) {
			drop(w, x);
		} else {
			/* the server never moves a watch backwards; a reply
			 * that would is from a confused member: ignore it */
			if (res.next_rev < x->next_rev)
				continue;
			x->next_rev = res.next_rev;
			x->next_sub = res.next_sub;
			if (res.events_n == 0) {
				/* asked for: every watch; periodic: those
				 * that want it */
				if (!requested && !(periodic && x->progress_notify))
					continue;
				res.progress = true;
			}
		}
		wr->results[kept++] = res;
	}
	wr->results_n = kept;
}

int rb_watch_next(rb_watcher *w, int64_t timeout_ms, struct rb_resp *resp)
{
	int64_t start = mono_ms();
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : start + timeout_ms;
	int64_t last_ok = start;
	int rc = 0;
	rb_resp_free(resp);
	for (;;) {
		int64_t now = mono_ms();
		if (w->n == 0 || now >= deadline)
			break;
		bool asked = w->progress_asked;
		bool periodic = now >= w->next_progress_ms;
		int64_t wait = asked || periodic ? 0 : RB_WATCH_POLL_WAIT_MS;
		if (wait > deadline - now)
			wait = deadline - now;
		if (wait > w->next_progress_ms - now && !periodic)
			wait = w->next_progress_ms - now;
		int64_t *ids = malloc(w->n * sizeof(*ids));
		if (ids == NULL)
			return RB_ERR_NOMEM;
		for (size_t i = 0; i < w->n; i++)
			ids[i] = w->w[i].id;
		rc = poll_once(w, w->w, w->n, wait, resp);
		if (rc == 0) {
			last_ok = mono_ms();
			if (asked)
				w->progress_asked = false;
			if (periodic)
				w->next_progress_ms = last_ok + w->progress_ms;
			absorb(w, ids, resp, asked, periodic);
			free(ids);
			if (resp->body.u.watch.results_n > 0)
				return 0;
			rb_resp_free(resp);
			continue;
		}
		free(ids);
		if (resp->err != 0 && resp->err != RB_ERR_TIMEOUT)
			return rc;   /* the server refused the poll itself */
		rb_resp_free(resp);
		/* no member answered: keep trying within the command timeout,
		 * positions are unchanged so nothing is lost */
		if (mono_ms() - last_ok >= w->command_timeout_ms)
			break;
		struct timespec ts = { 0, 50 * 1000000 };
		nanosleep(&ts, NULL);
	}
	resp->body.type = RB_OP_WATCH;
	resp->err = rc;
	resp->msg = rc ? rb_strerror(rc) : "";
	return rc;
}
