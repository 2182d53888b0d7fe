/*
 * rb_client.c - libraftbus's transport: one nng req0 socket per endpoint,
 * failover between endpoints, leader-hint following and the rules for when
 * a request may be sent again (see the top of raftbus.h).
 *
 * Every endpoint is dialled in the background (non-blocking nng dialers
 * that reconnect on their own) the first time the handle is used, so a dead
 * member costs nothing while another one is connected. A pipe notifier
 * counts live connections per endpoint and wakes the caller waiting for
 * one; when a connection drops while a request is in flight it cancels the
 * request, because nng's req0 would otherwise re-send it on the next
 * connection by itself, which could apply a write twice.
 */
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raftbus.h"
#include "rb_mem.h"
#include "rb_wire.h"

/* Pause before retrying after "no leader" (an election is under way). */
#define RB_NO_LEADER_BACKOFF_MS 100
#define RB_NO_LEADER_BACKOFF_MS_MAX 500
/* How long to wait for a connection to a hinted leader before asking any
 * member again: a hint can name a leader that just died, and the dialer
 * keeps connecting in the background meanwhile, so a short wait loses
 * nothing. */
#define RB_HINT_DIAL_MS 300
/* nng reconnect backoff of the background dialers. */
#define RB_RECONNECT_MIN_MS 50
#define RB_RECONNECT_MAX_MS 1000

struct rb_endpoint {
	char url[RB_URL_BYTES_MAX + 1];
	nng_socket sock;
	nng_ctx ctx;
	nng_aio *aio;
	bool open;               /* sock, ctx, aio exist and a dialer runs */
	int64_t dialled_ms;      /* when the dialer started */
	int pipes;               /* live connections (under c->mtx) */
	uint64_t pipe_losses;    /* connections dropped (under c->mtx) */
	bool in_flight;          /* a request waits on aio (under c->mtx) */
	struct rb_client *c;
};

struct rb_client {
	struct rb_endpoint eps[RB_ENDPOINTS_MAX];
	size_t eps_n;            /* endpoints in use (configured + hinted) */
	size_t configured_n;     /* the first configured_n came from the config */
	size_t cur;              /* preferred endpoint (last that answered) */
	int64_t dial_timeout_ms;
	int64_t command_timeout_ms;
	uint64_t next_req_id;
	pthread_mutex_t mtx;     /* pipes, pipe_losses, in_flight of every endpoint */
	pthread_cond_t cv;       /* signalled when a pipe comes up */
};

/* ---- small helpers ---------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Sets the call's error with a formatted message kept in resp's arena. */
static int set_err(struct rb_resp *resp, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rb_resp_fail_v(resp, err, rb_strerror(err), fmt, ap);
	va_end(ap);
	return err;
}

/* "host:port" means tcp://host:port, like etcdctl's endpoints. */
static int normalize_url(const char *in, char *out)
{
	int n;
	if (in == NULL || in[0] == '\0')
		return RB_ERR_INVALID;
	if (strstr(in, "://"))
		n = snprintf(out, RB_URL_BYTES_MAX + 1, "%s", in);
	else
		n = snprintf(out, RB_URL_BYTES_MAX + 1, "tcp://%s", in);
	if (n < 0 || n > (int)RB_URL_BYTES_MAX)
		return RB_ERR_INVALID;
	static const char *schemes[] = { "tcp", "tcp4", "tcp6", "ipc", "inproc",
		"abstract", "ws", "wss", "tls+tcp", "tls+tcp4", "tls+tcp6" };
	nng_url *u;
	if (nng_url_parse(&u, out) != 0)
		return RB_ERR_INVALID;
	bool known = false;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		known = known || strcmp(u->u_scheme, schemes[i]) == 0;
	nng_url_free(u);
	return known ? 0 : RB_ERR_INVALID;
}

/* ---- endpoints -------------------------------------------------------- */

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	struct rb_endpoint *ep = arg;
	struct rb_client *c = ep->c;
	pthread_mutex_lock(&c->mtx);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		ep->pipes++;
		pthread_cond_broadcast(&c->cv);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		if (ep->pipes > 0)
			ep->pipes--;
		ep->pipe_losses++;
		/* stop req0 from re-sending the request on the next pipe */
		if (ep->in_flight)
			nng_aio_cancel(ep->aio);
	}
	pthread_mutex_unlock(&c->mtx);
}

static void ep_close(struct rb_endpoint *ep)
{
	if (!ep->open)
		return;
	nng_aio_stop(ep->aio);
	nng_ctx_close(ep->ctx);
	nng_close(ep->sock);
	nng_aio_free(ep->aio);
	ep->open = false;
}

/* Opens the socket and starts a background dialer (returns at once). */
static int ep_open(struct rb_endpoint *ep, const char **why)
{
	int rv;
	if (ep->open)
		return 0;
	if ((rv = nng_req0_open(&ep->sock)) != 0)
		goto out_err;
	if ((rv = nng_aio_alloc(&ep->aio, NULL, NULL)) != 0)
		goto out_close_sock;
	if ((rv = nng_ctx_open(&ep->ctx, ep->sock)) != 0)
		goto out_free_aio;
	nng_socket_set_size(ep->sock, NNG_OPT_RECVMAXSZ, RB_REPLY_BYTES_MAX);
	nng_socket_set_ms(ep->sock, NNG_OPT_RECONNMINT, RB_RECONNECT_MIN_MS);
	nng_socket_set_ms(ep->sock, NNG_OPT_RECONNMAXT, RB_RECONNECT_MAX_MS);
	nng_ctx_set_ms(ep->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_pipe_notify(ep->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, ep);
	nng_pipe_notify(ep->sock, NNG_PIPE_EV_REM_POST, pipe_cb, ep);
	if ((rv = nng_dial(ep->sock, ep->url, NULL, NNG_FLAG_NONBLOCK)) != 0)
		goto out_close_ctx;
	ep->dialled_ms = now_ms();
	ep->open = true;
	return 0;

out_close_ctx:
	nng_ctx_close(ep->ctx);
out_free_aio:
	nng_aio_free(ep->aio);
out_close_sock:
	nng_close(ep->sock);
out_err:
	*why = nng_strerror(rv);
	return rv == NNG_ENOMEM ? RB_ERR_NOMEM : RB_ERR_UNAVAILABLE;
}

static struct rb_endpoint *find_or_add(rb_client *c, const char *url)
{
	char norm[RB_URL_BYTES_MAX + 1];
	if (normalize_url(url, norm) != 0)
		return NULL;
	for (size_t i = 0; i < c->eps_n; i++)
		if (strcmp(c->eps[i].url, norm) == 0)
			return &c->eps[i];
	if (c->eps_n == RB_ENDPOINTS_MAX)
		return NULL;
	struct rb_endpoint *ep = &c->eps[c->eps_n++];
	memset(ep, 0, sizeof(*ep));
	memcpy(ep->url, norm, sizeof(norm));
	ep->c = c;
	return ep;
}

/* Waits until `want` (or, if want is NULL, any endpoint) has a live
 * connection, at most until deadline. Returns the endpoint or NULL. The
 * preferred endpoint wins when several are up. */
static struct rb_endpoint *wait_connected(rb_client *c, struct rb_endpoint *want,
	int64_t deadline)
{
	struct rb_endpoint *got = NULL;
	pthread_mutex_lock(&c->mtx);
	for (;;) {
		if (want) {
			if (want->pipes > 0)
				got = want;
		} else {
			for (size_t k = 0; k < c->eps_n && !got; k++) {
				struct rb_endpoint *ep = &c->eps[(c->cur + k) % c->eps_n];
				if (ep->open && ep->pipes > 0)
					got = ep;
			}
		}
		int64_t left = deadline - now_ms();
		if (got || left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->cv, &c->mtx, &ts);
	}
	pthread_mutex_unlock(&c->mtx);
	return got;
}

/* ---- one exchange ----------------------------------------------------- */

enum xfer_outcome {
	XFER_REPLY,              /* resp holds the decoded reply */
	XFER_NOT_SENT,           /* nothing reached the server: safe to retry */
	XFER_LOST,               /* sent, connection dropped: outcome unknown */
	XFER_TIMEOUT,            /* sent, no reply before the deadline */
	XFER_FATAL,              /* resp holds a final error */
};

/* Marks a request in flight on ep (from before its send: a connection
 * lost from then on means the request may have left) and returns the loss
 * count to compare with at the end. */
static uint64_t flight_begin(struct rb_endpoint *ep)
{
	pthread_mutex_lock(&ep->c->mtx);
	uint64_t losses = ep->pipe_losses;
	ep->in_flight = true;
	pthread_mutex_unlock(&ep->c->mtx);
	return losses;
}

/* Ends the flight; true when a connection of ep dropped meanwhile. */
static bool flight_end(struct rb_endpoint *ep, uint64_t losses)
{
	pthread_mutex_lock(&ep->c->mtx);
	ep->in_flight = false;
	bool lost = ep->pipe_losses != losses;
	pthread_mutex_unlock(&ep->c->mtx);
	return lost;
}

static enum xfer_outcome xfer_wait(struct rb_endpoint *ep, int64_t deadline,
	uint64_t losses)
{
	int64_t left = deadline - now_ms();
	nng_aio_set_timeout(ep->aio, left > 0 ? (nng_duration)left : 1);
	nng_ctx_recv(ep->ctx, ep->aio);
	nng_aio_wait(ep->aio);
	bool lost = flight_end(ep, losses);
	int rv = nng_aio_result(ep->aio);
	if (rv == 0)
		return XFER_REPLY;
	if (rv == NNG_ETIMEDOUT && !lost)
		return XFER_TIMEOUT;
	return XFER_LOST;
}

/* Sends buf on ep and waits for the reply until deadline. */
static enum xfer_outcome xfer(struct rb_endpoint *ep, uint64_t id,
	const uint8_t *buf, size_t len, int64_t deadline, struct rb_resp *resp)
{
	nng_msg *msg;
	if (nng_msg_alloc(&msg, len) != 0) {
		set_err(resp, RB_ERR_NOMEM, "%s", rb_strerror(RB_ERR_NOMEM));
		return XFER_FATAL;
	}
	memcpy(nng_msg_body(msg), buf, len);
	int64_t left = deadline - now_ms();
	nng_aio_set_timeout(ep->aio, left > 0 ? (nng_duration)left : 1);
	nng_aio_set_msg(ep->aio, msg);
	uint64_t losses = flight_begin(ep);
	nng_ctx_send(ep->ctx, ep->aio);
	nng_aio_wait(ep->aio);
	if (nng_aio_result(ep->aio) != 0) {
		flight_end(ep, losses);
		nng_msg_free(msg);   /* still ours when the send failed */
		return XFER_NOT_SENT;
	}
	enum xfer_outcome o = xfer_wait(ep, deadline, losses);
	if (o != XFER_REPLY)
		return o;
	nng_msg *reply = nng_aio_get_msg(ep->aio);
	uint64_t rid;
	int rc = rb_wire_decode_reply(nng_msg_body(reply), nng_msg_len(reply), &rid,
		NULL, resp);
	nng_msg_free(reply);
	if (rc == 0 && rid != id) {
		rb_resp_free(resp);
		rc = RB_ERR_PROTOCOL;
	}
	if (rc != 0) {
		set_err(resp, rc, "%s: reply from %s", rb_strerror(rc), ep->url);
		return XFER_FATAL;
	}
	return XFER_REPLY;
}

/* ---- the retry loop ------------------------------------------------------ */

struct call {
	uint64_t id;
	uint8_t *buf;
	size_t len;
	bool write;
	int64_t deadline;
};

static void note_endpoint(struct rb_resp *resp, const struct rb_endpoint *ep)
{
	const char *u = resp->mem ? rb_mem_strndup(resp->mem, ep->url, strlen(ep->url)) : NULL;
	resp->endpoint = u ? u : "";
}

/* The next attempt without a hint starts after ep: a member that dropped
 * the connection may be dialled again at once (nng reconnects) and look
 * connected, and must not be the only one tried until the deadline. */
static void skip(rb_client *c, const struct rb_endpoint *ep)
{
	c->cur = (size_t)(ep - c->eps + 1) % c->eps_n;
}

/* One attempt on ep. Returns 1 when the caller should try again (nothing
 * final happened), 0 when resp holds the final answer. *next receives the
 * endpoint to try next (NULL = any). */
static int attempt(rb_client *c, struct rb_endpoint *ep, const struct call *k,
	unsigned n, struct rb_resp *resp, struct rb_endpoint **next)
{
	*next = NULL;
	enum xfer_outcome o = xfer(ep, k->id, k->buf, k->len, k->deadline, resp);
	switch (o) {
	case XFER_FATAL:
		return 0;
	case XFER_NOT_SENT:
		set_err(resp, RB_ERR_UNAVAILABLE, "could not send to %s", ep->url);
		skip(c, ep);
		return 1;
	case XFER_TIMEOUT:
		set_err(resp, RB_ERR_TIMEOUT, k->write ?
			"request to %s timed out: the write may or may not have been applied" :
			"request to %s timed out", ep->url);
		return 0;
	case XFER_LOST:
		if (!k->write) {
			set_err(resp, RB_ERR_UNAVAILABLE, "connection to %s lost", ep->url);
			skip(c, ep);
			return 1;
		}
		set_err(resp, RB_ERR_UNAVAILABLE, "connection to %s lost after the "
			"request was sent: the write may or may not have been applied", ep->url);
		return 0;
	case XFER_REPLY:
		break;
	}
	note_endpoint(resp, ep);
	if (resp->err == RB_ERR_NOT_LEADER && resp->leader_url[0]) {
		*next = find_or_add(c, resp->leader_url);
		if (*next && *next != ep)
			return 1;
		*next = NULL;
	}
	if (resp->err == RB_ERR_NOT_LEADER || resp->err == RB_ERR_NO_LEADER) {
		/* an election is under way: wait, doubling the pause from
		 * RB_NO_LEADER_BACKOFF_MS up to RB_NO_LEADER_BACKOFF_MS_MAX, so
		 * RB_ATTEMPTS_MAX attempts outlast a whole election (which can
		 * take two election timeouts), then try any member */
		int64_t pause = (int64_t)RB_NO_LEADER_BACKOFF_MS << (n < 3 ? n : 3);
		if (pause > RB_NO_LEADER_BACKOFF_MS_MAX)
			pause = RB_NO_LEADER_BACKOFF_MS_MAX;
		int64_t left = k->deadline - now_ms();
		sleep_ms(pause < left ? pause : left);
		skip(c, ep);
		return 1;
	}
	c->cur = (size_t)(ep - c->eps);
	return 0;
}

static void open_all(rb_client *c)
{
	for (size_t i = 0; i < c->eps_n; i++) {
		const char *why;
		(void)ep_open(&c->eps[i], &why);   /* a failed one is retried next call */
	}
}

/* Runs the call on `only` (no failover) or on any endpoint. */
static int run(rb_client *c, struct rb_endpoint *only, const struct call *k,
	struct rb_resp *resp)
{
	struct rb_endpoint *want = only;
	set_err(resp, RB_ERR_UNAVAILABLE, "no endpoint reachable");
	for (unsigned n = 0; n < RB_ATTEMPTS_MAX; n++) {
		int64_t left = k->deadline - now_ms();
		if (left <= 0)
			break;
		open_all(c);
		if (want && !want->open) {
			const char *why = "";
			int rc = ep_open(want, &why);
			if (rc)
				return set_err(resp, rc, "dial %s: %s", want->url, why);
		}
		int64_t dial_ms = c->dial_timeout_ms;
		if (want && !only && dial_ms > RB_HINT_DIAL_MS)
			dial_ms = RB_HINT_DIAL_MS;
		int64_t dial_end = now_ms() + dial_ms;
		struct rb_endpoint *ep = wait_connected(c, want,
			dial_end < k->deadline ? dial_end : k->deadline);
		if (ep == NULL && want && !only) {
			want = NULL;     /* the hinted leader is unreachable: any member */
			continue;
		}
		if (ep == NULL) {
			if (want)
				return set_err(resp, RB_ERR_UNAVAILABLE,
					"dial %s: no connection within the dial timeout", want->url);
			return set_err(resp, RB_ERR_UNAVAILABLE,
				"no endpoint reachable within the dial timeout (%s%s)",
				c->eps[0].url, c->eps_n > 1 ? ", ..." : "");
		}
		rb_resp_free(resp);
		struct rb_endpoint *next;
		if (attempt(c, ep, k, n, resp, &next) == 0)
			return resp->err;
		if (only)
			return resp->err;
		want = next;
	}
	if (resp->err == 0 || resp->err == RB_ERR_NOT_LEADER ||
	    resp->err == RB_ERR_NO_LEADER || resp->err == RB_ERR_UNAVAILABLE)
		return resp->err ? resp->err : set_err(resp, RB_ERR_TIMEOUT, "%s",
			rb_strerror(RB_ERR_TIMEOUT));
	return resp->err;
}

static int do_call(rb_client *c, const char *url, const struct rb_op *op,
	struct rb_resp *resp)
{
	if (resp == NULL)
		return RB_ERR_INVALID;
	memset(resp, 0, sizeof(*resp));
	resp->msg = "";
	resp->leader_url = "";
	resp->endpoint = "";
	if (c == NULL || op == NULL)
		return set_err(resp, RB_ERR_INVALID, "NULL client or request");
	struct call k = { .id = ++c->next_req_id };
	int rc = rb_wire_encode_request(k.id, op, &k.buf, &k.len);
	if (rc)
		return set_err(resp, rc, "%s: cannot encode the request", rb_strerror(rc));
	if (k.len > RB_MSG_BYTES_MAX) {
		free(k.buf);
		return set_err(resp, RB_ERR_TOO_LARGE, "%s (%zu bytes)",
			rb_strerror(RB_ERR_TOO_LARGE), k.len);
	}
	k.write = rb_op_is_write(op);
	k.deadline = now_ms() + c->command_timeout_ms;
	struct rb_endpoint *only = NULL;
	if (url) {
		only = find_or_add(c, url);
		if (only == NULL) {
			free(k.buf);
			return set_err(resp, RB_ERR_INVALID, "bad or too many endpoints: %s", url);
		}
	}
	rc = run(c, only, &k, resp);
	free(k.buf);
	return rc;
}

/* ---- public ----------------------------------------------------------- */

int rb_client_open(const struct rb_config *cfg, rb_client **out)
{
	if (out == NULL)
		return RB_ERR_INVALID;
	*out = NULL;
	if (cfg == NULL || cfg->endpoints == NULL || cfg->endpoints_n == 0 ||
	    cfg->endpoints_n > RB_ENDPOINTS_MAX)
		return RB_ERR_INVALID;
	rb_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return RB_ERR_NOMEM;
	for (size_t i = 0; i < cfg->endpoints_n; i++) {
		char norm[RB_URL_BYTES_MAX + 1];
		if (normalize_url(cfg->endpoints[i], norm) != 0) {
			free(c);
			return RB_ERR_INVALID;
		}
		(void)find_or_add(c, norm);   /* duplicates collapse */
	}
	c->configured_n = c->eps_n;
	c->dial_timeout_ms = cfg->dial_timeout_ms > 0 ? cfg->dial_timeout_ms :
		RB_DIAL_TIMEOUT_MS_DEFAULT;
	c->command_timeout_ms = cfg->command_timeout_ms > 0 ? cfg->command_timeout_ms :
		RB_COMMAND_TIMEOUT_MS_DEFAULT;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&c->mtx, NULL);
	open_all(c);   /* start every dial now: the first call finds them up */
	*out = c;
	return 0;
}

/* Waits, until RB_DIAL_SETTLE_MS after its dial at most, for each endpoint
 * dialled that recently to be connected (see RB_DIAL_SETTLE_MS). */
static void settle_dials(rb_client *c)
{
	pthread_mutex_lock(&c->mtx);
	for (size_t i = 0; i < c->eps_n; i++) {
		const struct rb_endpoint *ep = &c->eps[i];
		while (ep->open && ep->pipes == 0) {
			int64_t left = ep->dialled_ms + RB_DIAL_SETTLE_MS - now_ms();
			if (left <= 0)
				break;
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += left * 1000000;
			ts.tv_sec += ts.tv_nsec / 1000000000;
			ts.tv_nsec %= 1000000000;
			pthread_cond_timedwait(&c->cv, &c->mtx, &ts);
		}
	}
	pthread_mutex_unlock(&c->mtx);
}

void rb_client_close(rb_client *c)
{
	if (c == NULL)
		return;
	settle_dials(c);
	for (size_t i = 0; i < c->eps_n; i++)
		ep_close(&c->eps[i]);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

size_t rb_client_endpoints_n(const rb_client *c)
{
	return c->configured_n;
}

const char *rb_client_endpoint(const rb_client *c, size_t i)
{
	return i < c->eps_n ? c->eps[i].url : NULL;
}

int rb_do(rb_client *c, const struct rb_op *op, struct rb_resp *resp)
{
	return do_call(c, NULL, op, resp);
}

int rb_do_at(rb_client *c, const char *url, const struct rb_op *op,
	struct rb_resp *resp)
{
	if (url == NULL)
		return do_call(NULL, NULL, op, resp);
	return do_call(c, url, op, resp);
}

int rb_put(rb_client *c, const struct rb_put *req, struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_PUT };
	if (req)
		op.u.put = *req;
	return do_call(req ? c : NULL, NULL, &op, resp);
}

int rb_range(rb_client *c, const struct rb_range *req, struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_RANGE };
	if (req)
		op.u.range = *req;
	return do_call(req ? c : NULL, NULL, &op, resp);
}

int rb_delete_range(rb_client *c, const struct rb_delete_range *req,
	struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_DELETE_RANGE };
	if (req)
		op.u.delete_range = *req;
	return do_call(req ? c : NULL, NULL, &op, resp);
}

int rb_txn(rb_client *c, const struct rb_txn *req, struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_TXN };
	if (req)
		op.u.txn = *req;
	return do_call(req ? c : NULL, NULL, &op, resp);
}

int rb_compact(rb_client *c, rb_rev revision, struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_COMPACT, .u.compact = { revision, false } };
	return do_call(c, NULL, &op, resp);
}

int rb_lease_grant(rb_client *c, int64_t ttl_s, rb_lease_id id, struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_LEASE_GRANT, .u.lease_grant = { ttl_s, id } };
	return do_call(c, NULL, &op, resp);
}

int rb_lease_revoke(rb_client *c, rb_lease_id id, struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_LEASE_REVOKE, .u.lease_revoke = { id } };
	return do_call(c, NULL, &op, resp);
}

int rb_lease_keepalive_once(rb_client *c, rb_lease_id id, struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_LEASE_KEEPALIVE, .u.lease_keepalive = { id } };
	return do_call(c, NULL, &op, resp);
}

int rb_lease_timetolive(rb_client *c, rb_lease_id id, bool keys, struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_LEASE_TIMETOLIVE, .u.lease_ttl = { id, keys } };
	return do_call(c, NULL, &op, resp);
}

int rb_lease_leases(rb_client *c, struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_LEASE_LEASES };
	return do_call(c, NULL, &op, resp);
}

int64_t rb_client_command_timeout_ms(const rb_client *c)
{
	return c->command_timeout_ms;
}

int rb_member_list(rb_client *c, struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_MEMBER_LIST };
	return do_call(c, NULL, &op, resp);
}
