/*
 * bk_server.c - the server loop and the peer transport.
 *
 * One loop thread owns the Raft node, the log store and the store writer.
 * nng callback threads only put received messages in a bounded inbox and
 * write one byte to a pipe; the loop polls that pipe with a timeout equal to
 * the time left until the next tick. A turn of the loop: take everything in
 * the inbox (peer messages -> rl_step, client requests -> proposals/reads),
 * tick, issue one ReadIndex for every read that arrived, expire leases, then
 * handle ONE ready: so every proposal and every append received in a turn
 * shares one log write and one fsync (group commit). Reads are not run
 * here: the loop hands them to the reader pool (bk_reader.c) once they may
 * run, so a large read never delays a heartbeat, an append or an apply.
 *
 * Peer transport: every member listens with one pull0 socket on its peer
 * URL and keeps one push0 socket dialed (nng reconnects) to each other
 * member. Sends never block: when a peer's send buffer
 * (BK_PEER_SENDQ_MSGS_MAX messages) is full the message is dropped; Raft
 * retransmits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bk_int.h"

#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

int64_t bk_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bk_wake(struct bk_server *s)
{
	if (atomic_exchange(&s->wake_pending, true))
		return;   /* a byte is on its way: the loop will look */
	char c = 'w';
	ssize_t rc = write(s->wake_fd[1], &c, 1);
	(void)rc; /* a full pipe already wakes the loop */
}

void bk_server_stop(struct bk_server *s)
{
	char c = 'q';
	ssize_t rc = write(s->wake_fd[1], &c, 1);
	(void)rc;
}

/* ---- peer transport ----------------------------------------------------- */

static void peer_send_cb(void *arg);

static void peer_recv_cb(void *arg)
{
	struct bk_server *s = arg;
	int rv = nng_aio_result(s->peer_aio);
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv == 0) {
		nng_msg *msg = nng_aio_get_msg(s->peer_aio);
		if (bk_peer_inbox_put(s, msg))
			bk_wake(s);
		else
			nng_msg_free(msg);
	}
	nng_recv_aio(s->peer_in, s->peer_aio);
}

bool bk_peer_inbox_put(struct bk_server *s, nng_msg *msg)
{
	size_t len = nng_msg_len(msg);
	bool queued = false;
	pthread_mutex_lock(&s->mu);
	if (!s->stopping && s->peer_count < BK_PEER_INBOX_MAX &&
	    len <= BK_PEER_INBOX_BYTES_MAX - s->peer_bytes) {
		uint32_t at = (s->peer_head + s->peer_count) %
		    BK_PEER_INBOX_MAX;
		s->peer_inbox[at] = msg;
		s->peer_count++;
		s->peer_bytes += len;
		queued = true;
	}
	pthread_mutex_unlock(&s->mu);
	return queued;
}

int bk_listen_all(nng_socket sock, const char *urls)
{
	char buf[BK_URL_BYTES_MAX], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", urls);
	int rv = NNG_EINVAL;
	for (char *u = strtok_r(buf, ",", &save); u;
	    u = strtok_r(NULL, ",", &save))
		if ((rv = nng_listen(sock, u, NULL, 0)))
			return rv;
	return rv;
}

static int peer_open(struct bk_server *s)
{
	int rv = nng_pull0_open(&s->peer_in);
	if (rv == 0)
		rv = nng_socket_set_size(s->peer_in, NNG_OPT_RECVMAXSZ,
		    BK_PEER_MSG_BYTES_MAX);
	if (rv == 0)
		rv = bk_listen_all(s->peer_in, s->cfg.listen_peer_url);
	if (rv == 0)
		rv = nng_aio_alloc(&s->peer_aio, peer_recv_cb, s);
	if (rv) {
		bk_log(BK_LOG_ERROR, "listen on peer URL %s: %s",
		    s->cfg.listen_peer_url, nng_strerror(rv));
		return BK_ERR_NET;
	}
	for (uint32_t i = 0; i < s->cfg.members_n; i++) {
		struct bk_member *m = &s->cfg.members[i];
		if (m->id == s->cfg.member_id)
			continue;
		struct bk_peer *p = &s->peers[s->peers_n++];
		p->m = m;
		rv = nng_push0_open(&p->sock);
		if (rv == 0 && (rv = nng_aio_alloc(&p->aio, peer_send_cb, p)))
			nng_close(p->sock);
		if (rv == 0) {
			/* a full send buffer fails at once, as NONBLOCK */
			nng_aio_set_timeout(p->aio, NNG_DURATION_ZERO);
			pthread_mutex_init(&p->mu, NULL);
			p->open = true;
		}
		if (rv == 0)
			rv = nng_socket_set_int(p->sock, NNG_OPT_SENDBUF,
			    BK_PEER_SENDQ_MSGS_MAX);
		if (rv == 0)
			rv = nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT, 500);
		if (rv == 0)
			rv = nng_dial(p->sock, m->peer_url, NULL,
			    NNG_FLAG_NONBLOCK);
		if (rv) {
			bk_log(BK_LOG_ERROR, "dial peer %s at %s: %s", m->name,
			    m->peer_url, nng_strerror(rv));
			return BK_ERR_NET;
		}
	}
	nng_recv_aio(s->peer_in, s->peer_aio);
	return BK_OK;
}

static struct bk_peer *peer_by_id(struct bk_server *s, rl_id id)
{
	for (uint32_t i = 0; i < s->peers_n; i++)
		if (s->peers[i].m->id == id)
			return &s->peers[i];
	return NULL;
}

/* nng callback thread: the aio's send ended; starts the next queued one. */
static void peer_send_cb(void *arg)
{
	struct bk_peer *p = arg;
	if (nng_aio_result(p->aio)) {
		nng_msg *m = nng_aio_get_msg(p->aio);
		if (m)
			nng_msg_free(m);   /* not sent: Raft retransmits */
	}
	nng_aio_set_msg(p->aio, NULL);
	pthread_mutex_lock(&p->mu);
	if (p->closing || !p->outq_n) {
		p->busy = false;
		pthread_mutex_unlock(&p->mu);
		return;
	}
	nng_msg *next = p->outq[p->outq_head];
	p->outq_head = (p->outq_head + 1) % BK_PEER_OUTQ_MSGS_MAX;
	p->outq_n--;
	p->outq_bytes -= nng_msg_len(next);
	pthread_mutex_unlock(&p->mu);
	nng_aio_set_msg(p->aio, next);
	nng_send_aio(p->sock, p->aio);
}

static void peer_send_bytes(struct bk_peer *p, uint8_t *buf, size_t len)
{
	nng_msg *msg;
	if (nng_msg_alloc(&msg, 0) || nng_msg_append(msg, buf, len)) {
		free(buf);
		return;
	}
	free(buf);
	pthread_mutex_lock(&p->mu);
	if (p->closing || (p->busy && (p->outq_n == BK_PEER_OUTQ_MSGS_MAX ||
	    len > BK_PEER_OUTQ_BYTES_MAX - p->outq_bytes))) {
		pthread_mutex_unlock(&p->mu);
		nng_msg_free(msg);   /* stopping, or the peer is not keeping up */
		return;
	}
	if (p->busy) {
		p->outq[(p->outq_head + p->outq_n) % BK_PEER_OUTQ_MSGS_MAX] = msg;
		p->outq_n++;
		p->outq_bytes += len;
		pthread_mutex_unlock(&p->mu);
		return;
	}
	p->busy = true;
	pthread_mutex_unlock(&p->mu);
	nng_aio_set_msg(p->aio, msg);
	nng_send_aio(p->sock, p->aio);
}

/* Stops the peer's sends and closes its socket. */
static void peer_close(struct bk_peer *p)
{
	if (!p->open)
		return;
	pthread_mutex_lock(&p->mu);
	p->closing = true;
	pthread_mutex_unlock(&p->mu);
	nng_aio_stop(p->aio);
	/* a send the callback started as the aio stopped is refused without
	 * a callback: its message is still in the aio */
	nng_msg *left = nng_aio_get_msg(p->aio);
	if (left) {
		nng_aio_set_msg(p->aio, NULL);
		nng_msg_free(left);
	}
	while (p->outq_n) {
		p->outq_bytes -= nng_msg_len(p->outq[p->outq_head]);
		nng_msg_free(p->outq[p->outq_head]);
		p->outq_head = (p->outq_head + 1) % BK_PEER_OUTQ_MSGS_MAX;
		p->outq_n--;
	}
	nng_close(p->sock);
	nng_aio_free(p->aio);
	pthread_mutex_destroy(&p->mu);
	p->open = false;
}

void bk_peer_send(struct bk_server *s, struct rl_msg *m)
{
	struct bk_peer *p = peer_by_id(s, m->to);
	if (!p || !p->open)
		return;
	uint8_t *buf;
	size_t len;
	if (bk_peer_encode_raft(s->cfg.cluster_id, m, &buf, &len) == BK_OK)
		peer_send_bytes(p, buf, len);
}

static void hello_send(struct bk_server *s)
{
	struct bk_hello h = { .id = s->cfg.member_id };
	strcpy(h.name, s->cfg.name);
	strcpy(h.client_url, s->cfg.advertise_client_url);
	for (uint32_t i = 0; i < s->peers_n; i++) {
		uint8_t *buf;
		size_t len;
		if (bk_peer_encode_hello(s->cfg.cluster_id, &h, &buf, &len) ==
		    BK_OK)
			peer_send_bytes(&s->peers[i], buf, len);
	}
}

static void peer_handle(struct bk_server *s, nng_msg *msg)
{
	struct bk_peer_decoded d;
	int rc = bk_peer_decode(nng_msg_body(msg), nng_msg_len(msg), &d);
	if (rc) {
		bk_log(BK_LOG_WARN, "dropped a malformed peer message (%zu "
		    "bytes)", nng_msg_len(msg));
		return;
	}
	if (d.cluster_id != s->cfg.cluster_id) {
		bk_log(BK_LOG_WARN, "dropped a peer message of cluster %016llx",
		    (unsigned long long)d.cluster_id);
		goto out_free;
	}
	if (d.kind == BK_PEER_HELLO) {
		struct bk_peer *p = peer_by_id(s, d.hello.id);
		if (p && strcmp(p->m->client_url, d.hello.client_url)) {
			strcpy(p->m->client_url, d.hello.client_url);
			bk_log(BK_LOG_INFO, "member %s serves clients at %s",
			    p->m->name, p->m->client_url);
		}
		goto out_free;
	}
	if (d.msg.to != s->cfg.member_id || !peer_by_id(s, d.msg.from))
		goto out_free;
	if (d.msg.type == RL_MSG_SNAPSHOT && !bk_snapshot_stage(s, &d.msg))
		goto out_free;
	rc = rl_step(s->node, &d.msg);
	if (rc)
		bk_log(BK_LOG_DEBUG, "step type %u from %016llx: %s",
		    d.msg.type, (unsigned long long)d.msg.from,
		    rl_strerror(rc));
out_free:
	bk_peer_decoded_free(&d);
}

/* ---- pending proposals -------------------------------------------------- */

int bk_pending_add(struct bk_server *s, struct bk_creq *r, rl_index index,
    rl_term term)
{
	struct bk_pending *p = &s->pending[index & (BK_PENDING_MAX - 1)];
	if (p->index) {
		/* A proposal BK_PENDING_MAX indexes older is still waiting:
		 * it can only be a stale one; give up on it. */
		if (p->req)
			bk_client_reply_error(s, p->req, RB_ERR_TIMEOUT, NULL);
		bk_pending_clear(s, p);
	}
	*p = (struct bk_pending){ .req = r, .index = index, .term = term,
	    .deadline_ms = s->now_ms + BK_REQUEST_TIMEOUT_MS };
	s->pending_n++;
	return BK_OK;
}

struct bk_pending *bk_pending_find(struct bk_server *s, rl_index index)
{
	struct bk_pending *p = &s->pending[index & (BK_PENDING_MAX - 1)];
	return p->index == index ? p : NULL;
}

void bk_pending_clear(struct bk_server *s, struct bk_pending *p)
{
	if (p->index)
		s->pending_n--;
	memset(p, 0, sizeof(*p));
}

int bk_propose_op(struct bk_server *s, struct bk_creq *r,
    const struct st_op *op)
{
	if (s->role != RL_LEADER)
		return s->leader ? RB_ERR_NOT_LEADER : RB_ERR_NO_LEADER;
	if (s->pending_n >= BK_PENDING_MAX / 2)
		return RB_ERR_TIMEOUT; /* too many requests in flight */
	uint8_t *buf;
	size_t len;
	int rc = st_op_encode(op, &buf, &len);
	if (rc)
		return rc == ST_ERR_NOMEM ? RB_ERR_NOMEM : RB_ERR_BAD_REQUEST;
	if (len > RL_ENTRY_DATA_MAX) {
		free(buf);
		return RB_ERR_TOO_LARGE;
	}
	rl_index index = 0;
	rl_id leader = RL_NONE;
	rc = rl_propose(s->node, buf, (uint32_t)len, &leader, &index);
	free(buf);
	switch (rc) {
	case RL_OK:
		return bk_pending_add(s, r, index, s->term);
	case RL_ERR_NOT_LEADER:
		return leader ? RB_ERR_NOT_LEADER : RB_ERR_NO_LEADER;
	case RL_ERR_TOO_LARGE:
		return RB_ERR_TOO_LARGE;
	case RL_ERR_NOMEM:
		return RB_ERR_NOMEM;
	default: /* dropped (busy) or transferring: retry later */
		return RB_ERR_TIMEOUT;
	}
}

/* ---- reads and timeouts ------------------------------------------------- */

/* One ReadIndex round for every read that arrived this turn. */
static void reads_issue(struct bk_server *s)
{
	if (!s->reads_new || s->now_ms < s->reads_retry_ms)
		return;
	uint64_t seq = ++s->read_seq;
	uint8_t ctx[8];
	for (int i = 0; i < 8; i++)
		ctx[i] = (uint8_t)(seq >> (8 * i));
	rl_id leader = RL_NONE;
	int rc = rl_read_index(s->node, ctx, sizeof(ctx), &leader);
	struct bk_creq *keep = NULL;
	while (s->reads_new) {
		struct bk_creq *r = s->reads_new;
		s->reads_new = r->next;
		/* No leader known (an election, or a member just started):
		 * wait up to one election timeout for one, retrying every
		 * tick, then answer "no leader". */
		if (rc && s->now_ms - (r->deadline_ms - BK_REQUEST_TIMEOUT_MS)
		    < (int64_t)s->cfg.election_ms) {
			r->next = keep;
			keep = r;
			continue;
		}
		if (rc) {
			bk_client_reply_error(s, r, rc == RL_ERR_NOT_LEADER ?
			    RB_ERR_NO_LEADER : RB_ERR_TIMEOUT, NULL);
			continue;
		}
		r->read_seq = seq;
		r->read_issued_ms = s->now_ms;
		r->next = s->reads_wait;
		s->reads_wait = r;
	}
	s->reads_new = keep;
	if (keep)
		s->reads_retry_ms = s->now_ms + s->cfg.heartbeat_ms;
}

/* Answers reads whose index is applied; re-issues rounds that got no
 * answer for two election timeouts (the leader may have changed and
 * dropped them); times out old ones. */
static void reads_progress(struct bk_server *s)
{
	struct bk_creq **pp = &s->reads_wait;
	while (*pp) {
		struct bk_creq *r = *pp;
		/* Unlinked BEFORE answering: once answered, r belongs to a
		 * reader or to nng, whose callback may reuse r->next. */
		if (r->read_ready && r->read_index <= s->applied) {
			*pp = r->next;
			bk_client_answer_read(s, r);
		} else if (s->now_ms >= r->deadline_ms) {
			*pp = r->next;
			bk_client_reply_error(s, r, RB_ERR_TIMEOUT, NULL);
		} else if (!r->read_ready && s->now_ms - r->read_issued_ms >=
		    2 * (int64_t)s->cfg.election_ms) {
			*pp = r->next;
			r->next = s->reads_new;
			s->reads_new = r;
		} else {
			pp = &r->next;
		}
	}
}

static void pending_sweep(struct bk_server *s)
{
	if (!s->pending_n)
		return;
	for (uint32_t i = 0; i < BK_PENDING_MAX; i++) {
		struct bk_pending *p = &s->pending[i];
		if (p->index && s->now_ms >= p->deadline_ms) {
			if (p->req)
				bk_client_reply_error(s, p->req,
				    RB_ERR_TIMEOUT, NULL);
			bk_pending_clear(s, p);
		}
	}
}

/* ---- the loop ----------------------------------------------------------- */

/* Waits for input or the next tick; returns false when asked to stop. */
static bool loop_wait(struct bk_server *s)
{
	int64_t wait = s->next_tick_ms - bk_now_ms();
	if (rl_has_ready(s->node) || (s->reads_new &&
	    s->reads_retry_ms <= bk_now_ms()))
		wait = 0;
	struct pollfd pfd = { .fd = s->wake_fd[0], .events = POLLIN };
	int rc = poll(&pfd, 1, wait < 0 ? 0 : (int)wait);
	bool stop = false;
	if (rc > 0) {
		char buf[256];
		ssize_t n;
		while ((n = read(s->wake_fd[0], buf, sizeof(buf))) > 0)
			if (memchr(buf, 'q', (size_t)n))
				stop = true;
	}
	/* after the pipe is drained and before the inputs are: whoever
	 * queues something after this writes a new byte */
	atomic_store(&s->wake_pending, false);
	s->sender.inline_n = 0;
	s->now_ms = bk_now_ms();
	return !stop;
}

static void take_inbox(struct bk_server *s)
{
	nng_msg *msgs[256];
	for (;;) {
		uint32_t n = 0;
		struct bk_creq *reqs;
		pthread_mutex_lock(&s->mu);
		while (n < 256 && s->peer_count) {
			msgs[n] = s->peer_inbox[s->peer_head];
			s->peer_bytes -= nng_msg_len(msgs[n++]);
			s->peer_head = (s->peer_head + 1) % BK_PEER_INBOX_MAX;
			s->peer_count--;
		}
		reqs = s->client_head;
		s->client_head = s->client_tail = NULL;
		pthread_mutex_unlock(&s->mu);
		for (uint32_t i = 0; i < n; i++) {
			peer_handle(s, msgs[i]);
			nng_msg_free(msgs[i]);
		}
		while (reqs) {
			struct bk_creq *r = reqs;
			reqs = r->next;
			r->next = NULL;
			bk_client_handle(s, r);
		}
		if (n < 256)
			return;
	}
}

static void loop_timers(struct bk_server *s)
{
	/* Ticks from the monotonic clock; after a long stall, catch up by
	 * at most one election timeout worth of ticks. */
	uint32_t ticks = 0;
	while (s->now_ms >= s->next_tick_ms &&
	    ticks <= s->cfg.election_ms / s->cfg.heartbeat_ms) {
		rl_tick(s->node);
		s->next_tick_ms += s->cfg.heartbeat_ms;
		ticks++;
	}
	if (s->now_ms >= s->next_tick_ms)
		s->next_tick_ms = s->now_ms + s->cfg.heartbeat_ms;
	if (s->now_ms >= s->next_hello_ms) {
		hello_send(s);
		s->next_hello_ms = s->now_ms + BK_HELLO_INTERVAL_MS;
	}
	if (s->now_ms >= s->next_sweep_ms) {
		pending_sweep(s);
		s->next_sweep_ms = s->now_ms + s->cfg.heartbeat_ms;
	}
}

/* Periodic/revision auto-compaction (leader only, proposed like a client
 * compact). */
static void auto_compact(struct bk_server *s)
{
	uint64_t keep = s->cfg.compaction_retention;
	if (!keep || s->role != RL_LEADER || s->now_ms < s->next_compact_ms)
		return;
	st_rev target;
	if (s->cfg.compaction_periodic) {
		/* Compact to the revision seen one retention period ago. */
		target = s->compact_last_rev;
		s->compact_last_rev = s->revision;
		s->next_compact_ms = s->now_ms + (int64_t)keep;
	} else {
		target = s->revision - (st_rev)keep;
		s->next_compact_ms = s->now_ms + 5 * 60 * 1000;
	}
	struct st_status stt;
	if (target <= 1 || st_status(s->st, &stt) ||
	    target <= stt.compact_revision)
		return;
	struct st_op op = { .type = ST_OP_COMPACT };
	op.u.compact.revision = target;
	if (bk_propose_op(s, NULL, &op) == 0)
		bk_log(BK_LOG_INFO, "auto-compaction to revision %lld",
		    (long long)target);
}

#define STEP(s, what) bk_loop_step(s, what)

int bk_server_run(struct bk_server *s)
{
	s->now_ms = bk_now_ms();
	s->next_tick_ms = s->now_ms + s->cfg.heartbeat_ms;
	s->next_compact_ms = s->now_ms + (s->cfg.compaction_periodic ?
	    (int64_t)s->cfg.compaction_retention : 5 * 60 * 1000);
	bk_log(BK_LOG_INFO, "member %s (%016llx) of cluster %016llx serving "
	    "clients on %s, peers on %s", s->cfg.name,
	    (unsigned long long)s->cfg.member_id,
	    (unsigned long long)s->cfg.cluster_id, s->cfg.listen_client_url,
	    s->cfg.listen_peer_url);
	for (;;) {
		STEP(s, "waiting");
		if (s->failed || !loop_wait(s))
			break;
		atomic_fetch_add(&s->loop_turns, 1);
		STEP(s, "taking requests and peer messages");
		take_inbox(s);
		STEP(s, "timers");
		loop_timers(s);
		reads_issue(s);
		bk_lease_expire(s);
		STEP(s, "pub/sub and queue timers");
		bk_pubsub_tick(s);
		bk_queue_tick(s);
		auto_compact(s);
		STEP(s, "persisting, sending and applying");
		if (rl_has_ready(s->node) && bk_ready_handle(s))
			break;
		STEP(s, "reads and watches");
		reads_progress(s);
		bk_watch_turn(s);
		STEP(s, "snapshot");
		if (bk_snapshot_maybe(s))
			break;
	}
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_mutex_unlock(&s->mu);
	if (s->failed) {
		bk_log(BK_LOG_ERROR, "storage failed; stopping");
		return BK_ERR_IO;
	}
	bk_log(BK_LOG_INFO, "stopped cleanly at applied index %llu "
	    "(%llu log writes carried %llu entries)",
	    (unsigned long long)s->applied, (unsigned long long)s->saves_n,
	    (unsigned long long)s->saved_entries_n);
	return BK_OK;
}

/* ---- open / close ------------------------------------------------------- */

static int mkdir_p(const char *path)
{
	char buf[BK_PATH_BYTES_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(buf, 0700) && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(buf, 0700) && errno != EEXIST ? -1 : 0;
}

static void logstore_log(void *ctx, int err, const char *msg)
{
	(void)ctx;
	bk_log(BK_LOG_ERROR, "log store: %s: %s", rl_logstore_strerror(err),
	    msg);
}

static int open_storage(struct bk_server *s)
{
	char path[BK_PATH_BYTES_MAX + 16], err[RL_LOG_ERRMSG_MAX];
	snprintf(s->snap_dir, sizeof(s->snap_dir), "%s/snap", s->cfg.data_dir);
	snprintf(path, sizeof(path), "%s/log", s->cfg.data_dir);
	if (mkdir_p(path) || mkdir_p(s->snap_dir)) {
		bk_log(BK_LOG_ERROR, "create %s: %s", path, strerror(errno));
		return BK_ERR_IO;
	}
	struct rl_logstore_options lo = { .log_fn = logstore_log };
	int rc = rl_logstore_open(path, &lo, &s->ls, err, sizeof(err));
	if (rc) {
		bk_log(BK_LOG_ERROR, "open log %s: %s: %s", path,
		    rl_logstore_strerror(rc), err);
		return BK_ERR_IO;
	}
	snprintf(path, sizeof(path), "%s/store", s->cfg.data_dir);
	struct st_options so;
	st_options_init(&so);
	so.quota_bytes = s->cfg.quota_bytes;
	so.value_bytes_max = s->cfg.max_request_bytes;
	so.no_sync = true;   /* the Raft log is the durable record */
	s->snapshot_bytes_max = 4 * (so.quota_bytes ? so.quota_bytes :
	    ST_QUOTA_BYTES_DEFAULT) + BK_SNAPSHOT_HEADROOM_BYTES;
	if (mkdir_p(path) || (rc = st_open(path, &so, &s->st))) {
		bk_log(BK_LOG_ERROR, "open store %s: %s", path,
		    rc ? st_strerror(rc) : strerror(errno));
		return BK_ERR_IO;
	}
	rl_logstore_storage(s->ls, &s->storage);
	return BK_OK;
}

/* --initial-cluster-state existing names a member of a running cluster
 * (etcd): it must not bootstrap a new one. raftbus has no runtime member
 * add yet, so such a member can only restart from its own data dir; with
 * an empty one it refuses to start instead of forming a second cluster. */
static int check_cluster_state(struct bk_server *s)
{
	struct rl_snapshot_meta meta;
	rl_logstore_snapshot_meta(s->ls, &meta);
	if (!s->cfg.cluster_existing || rl_logstore_last_index(s->ls) > 0 ||
	    meta.index > 0)
		return BK_OK;
	bk_log(BK_LOG_ERROR, "--initial-cluster-state existing: the data dir "
	    "holds no Raft log, and joining a running cluster needs a runtime "
	    "member add, which raftbus does not have yet; restart the member "
	    "with its own data dir, or bootstrap with "
	    "--initial-cluster-state new");
	return BK_ERR_USAGE;
}

static int open_node(struct bk_server *s)
{
	int err = check_cluster_state(s);
	if (err)
		return err;
	for (uint32_t i = 0; i < s->cfg.members_n; i++)
		s->bootstrap.voters[s->bootstrap.voters_n++] =
		    s->cfg.members[i].id;
	s->applied = st_applied_index(s->st);
	struct st_status stt;
	if (st_status(s->st, &stt) == 0)
		s->revision = stt.revision;
	s->compact_last_rev = s->revision;
	struct rl_config rc = {
		.id = s->cfg.member_id,
		.bootstrap = s->bootstrap,
		.applied = s->applied,
		.storage = &s->storage,
		.election_ticks = s->cfg.election_ms / s->cfg.heartbeat_ms,
		.heartbeat_ticks = 1,
		.seed = s->cfg.member_id ^ (uint64_t)bk_now_ms() ^
		    ((uint64_t)getpid() << 32),
		.pre_vote = true,
		.check_quorum = true,
	};
	rl_logstore_hard_state(s->ls, &rc.hard_state);
	err = rl_node_new(&rc, &s->node);
	if (err) {
		bk_log(BK_LOG_ERROR, "raft node: %s", rl_strerror(err));
		return BK_ERR_IO;
	}
	s->term = rc.hard_state.term;
	return bk_lease_reload(s);
}

/* Flushes the store every BK_STORE_SYNC_INTERVAL_MS so that a crash
 * re-applies little of the log; a failure stops the member. Each sync runs
 * under sync_mu, which a snapshot install also takes. */
struct loop_stall {
	uint64_t turns;        /* loop turns at the last look */
	int64_t since_ms;      /* when they last moved */
	bool told;             /* this stall was logged */
};

/* A loop that has not turned for BK_LOOP_STALL_MS stops everything the
 * member does: say so once per stall, with the step it is in. */
static void loop_stall_check(struct bk_server *s, struct loop_stall *ls)
{
	uint64_t turns = atomic_load(&s->loop_turns);
	int64_t now = bk_now_ms();
	const char *step = atomic_load_explicit(&s->loop_step,
	    memory_order_relaxed);
	if (turns != ls->turns || (step && !strcmp(step, "waiting"))) {
		if (ls->told)
			bk_log(BK_LOG_WARN, "the loop turns again after %lld ms",
			    (long long)(now - ls->since_ms));
		*ls = (struct loop_stall){ .turns = turns, .since_ms = now };
		return;
	}
	if (!ls->told && now - ls->since_ms >= BK_LOOP_STALL_MS) {
		bk_log(BK_LOG_WARN, "the loop has not turned for %lld ms: %s",
		    (long long)(now - ls->since_ms), step ? step : "?");
		ls->told = true;
	}
}

static void *syncer_main(void *arg)
{
	struct bk_server *s = arg;
	struct loop_stall stall = { .since_ms = bk_now_ms() };
	pthread_mutex_lock(&s->sync_mu);
	while (!s->sync_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += BK_STORE_SYNC_INTERVAL_MS / 1000;
		ts.tv_nsec += (BK_STORE_SYNC_INTERVAL_MS % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->sync_cv, &s->sync_mu, &ts);
		if (s->sync_stop)
			break;
		/* sync_mu stays held: a snapshot install (st_restore_file)
		 * takes it to replace the store's environment */
		if (st_sync(s->st)) {
			bk_log(BK_LOG_ERROR, "store sync failed; stopping");
			bk_server_stop(s);
		}
		loop_stall_check(s, &stall);
	}
	pthread_mutex_unlock(&s->sync_mu);
	return NULL;
}

static int syncer_start(struct bk_server *s)
{
	if (pthread_create(&s->syncer, NULL, syncer_main, s))
		return BK_ERR_NOMEM;
	s->syncer_started = true;
	return BK_OK;
}

static void syncer_stop(struct bk_server *s)
{
	if (!s->syncer_started)
		return;
	pthread_mutex_lock(&s->sync_mu);
	s->sync_stop = true;
	pthread_cond_signal(&s->sync_cv);
	pthread_mutex_unlock(&s->sync_mu);
	pthread_join(s->syncer, NULL);
	s->syncer_started = false;
}

int bk_server_open(const struct bk_config *cfg, struct bk_server **out)
{
	struct bk_server *s = calloc(1, sizeof(*s));
	if (!s)
		return BK_ERR_NOMEM;
	s->cfg = *cfg;
	/* before any thread starts: the loop runs on the opener's thread */
	s->loop_thread = pthread_self();
	s->wake_fd[0] = s->wake_fd[1] = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->sync_mu, NULL);
	pthread_cond_init(&s->sync_cv, NULL);
	int rc = BK_ERR_IO;
	if (pipe2(s->wake_fd, O_NONBLOCK | O_CLOEXEC))
		goto out_close;
	if ((rc = open_storage(s)) || (rc = bk_snapshot_recover(s)))
		goto out_close;
	if ((rc = open_node(s)) || (rc = bk_snapshot_scan(s)) ||
	    (rc = peer_open(s)) || (rc = bk_client_open(s)) ||
	    (rc = bk_reader_start(s)) || (rc = syncer_start(s)))
		goto out_close;
	*out = s;
	return BK_OK;
out_close:
	bk_server_close(s, false);
	return rc;
}

/* Watches a close: logs a step that is slow, and ends the process when
 * the network teardown stalls after the storage is closed. Times count
 * from the start of the current step. */
struct close_watch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const char *step;      /* mu */
	int64_t step_ms;       /* mu: when the step began */
	bool storage_closed;   /* mu */
	bool done;             /* mu */
};

static void close_watch_nap(struct close_watch *cw)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 50 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&cw->cv, &cw->mu, &ts);
}

static void *close_watch_main(void *arg)
{
	struct close_watch *cw = arg;
	const char *told_slow = NULL, *told_stall = NULL;
	pthread_mutex_lock(&cw->mu);
	while (!cw->done) {
		close_watch_nap(cw);
		int64_t in_step = bk_now_ms() - cw->step_ms;
		if (cw->done || in_step < BK_CLOSE_SLOW_MS)
			continue;
		if (told_slow != cw->step) {
			bk_log(BK_LOG_WARN, "stopping is slow: %s", cw->step);
			told_slow = cw->step;
		}
		if (in_step < BK_CLOSE_STALL_MS)
			continue;
		if (cw->storage_closed) {
			bk_log(BK_LOG_WARN, "stopping stalled in the network "
			    "library (%s); the storage is closed, exiting",
			    cw->step);
			_exit(0);
		}
		if (told_stall != cw->step) {
			bk_log(BK_LOG_ERROR, "stopping stalled: %s", cw->step);
			told_stall = cw->step;
		}
	}
	pthread_mutex_unlock(&cw->mu);
	return NULL;
}

static void close_step(struct close_watch *cw, const char *step,
    bool storage_closed)
{
	pthread_mutex_lock(&cw->mu);
	cw->step = step;
	cw->step_ms = bk_now_ms();
	cw->storage_closed = storage_closed;
	pthread_mutex_unlock(&cw->mu);
}

/* The storage is flushed and closed before the sockets: a stop that hangs
 * in the network library has nothing left to lose. */
void bk_server_close(struct bk_server *s, bool last)
{
	if (!s)
		return;
	struct close_watch cw = { .step = "stopping the readers",
	    .step_ms = bk_now_ms() };
	pthread_mutex_init(&cw.mu, NULL);
	pthread_cond_init(&cw.cv, NULL);
	pthread_t watcher;
	bool watching = pthread_create(&watcher, NULL, close_watch_main,
	    &cw) == 0;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_mutex_unlock(&s->mu);
	/* readers reply on client contexts and read the store */
	bk_reader_stop(s);
	bk_watch_close(s);
	close_step(&cw, "waiting for a snapshot copy", false);
	bk_snapshot_abort(s);
	close_step(&cw, "stopping the store flusher", false);
	syncer_stop(s);
	close_step(&cw, "closing the storage", false);
	if (s->ls && bk_hard_state_flush(s))
		bk_log(BK_LOG_WARN, "the commit index was not saved; a restart "
		    "takes it from the store");
	rl_node_free(s->node);
	s->node = NULL;
	st_close(s->st);   /* flushes the store */
	s->st = NULL;
	rl_logstore_close(s->ls);
	s->ls = NULL;
	close_step(&cw, "closing the client socket", true);
	bk_client_close(s);
	close_step(&cw, "closing the peer sockets", true);
	if (s->peer_aio) {
		nng_aio_stop(s->peer_aio);
		nng_close(s->peer_in);
		nng_aio_free(s->peer_aio);
	}
	for (uint32_t i = 0; i < s->peers_n; i++)
		peer_close(&s->peers[i]);
	while (s->peer_count) {
		s->peer_bytes -= nng_msg_len(s->peer_inbox[s->peer_head]);
		nng_msg_free(s->peer_inbox[s->peer_head]);
		s->peer_head = (s->peer_head + 1) % BK_PEER_INBOX_MAX;
		s->peer_count--;
	}
	free(s->leases);
	if (s->wake_fd[0] >= 0) {
		close(s->wake_fd[0]);
		close(s->wake_fd[1]);
	}
	pthread_cond_destroy(&s->sync_cv);
	pthread_mutex_destroy(&s->sync_mu);
	pthread_mutex_destroy(&s->mu);
	free(s);
	if (last) {
		/* nng frees closed sockets (and the messages still queued for
		 * an unreachable peer) on its own threads: wait for them */
		close_step(&cw, "finishing the network library", true);
		nng_fini();
	}
	pthread_mutex_lock(&cw.mu);
	cw.done = true;
	pthread_cond_signal(&cw.cv);
	pthread_mutex_unlock(&cw.mu);
	if (watching)
		pthread_join(watcher, NULL);
	pthread_cond_destroy(&cw.cv);
	pthread_mutex_destroy(&cw.mu);
}
