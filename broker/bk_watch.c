/*
 * bk_watch.c - watch long polls (RB_OP_WATCH).
 *
 * A poll names, for each of its watches, the exact position (revision and
 * place within it) it wants next. Everything delivered is read from the
 * store's event history by a reader thread, so delivery is ordered, has no
 * gap and no duplicate by construction, history and live events are the
 * same path (no boundary to race on), and a member that answers a resumed
 * poll answers it exactly as the dead one would have. The server keeps
 * nothing per watcher between polls: a slow subscriber costs one parked
 * request at most, and catches up from the history (or is told its start
 * was compacted).
 *
 * Life of a poll (all loop thread except where a reader is named):
 *   handle -> nothing readable yet (every position > revision): PARKED,
 *             with a deadline (its wait), in s->watch_parked
 *          -> readable: handed to the reader pool (bk_read.watch)
 *   reader -> events or a cancellation: encodes the reply ONCE and sends it
 *             to every poll of its group (see below); the poll is freed
 *          -> nothing matched but the revision moved: positions advanced,
 *             handed BACK to the loop (s->watch_back, under s->mu) to park
 *   turn   -> parked polls the revision reached go to the readers; those
 *             whose deadline passed are answered with their positions (a
 *             progress reply: nothing more up to the revision).
 *
 * Fan-out: when the revision moves, parked polls asking for the same thing
 * (one watch, same range, filters, position and limit: typically many
 * subscribers of one topic, all caught up) form a group served by one
 * reader job: the events are read and encoded once, and only the request id
 * differs per reply (rb_wire_reply_restamp).
 *
 * Bounds: BK_WATCH_POLLS_MAX polls exist at once (parked, queued or being
 * served), BK_WATCH_POLLS_PER_CONN_MAX of them from one client connection;
 * one more is answered "too many requests" and the client retries.
 * A reply takes no further watch once it holds events_max events or
 * BK_WATCH_REPLY_BYTES_MAX bytes, so it carries less than twice either,
 * whatever the number of watches (a revision is only split when it alone
 * is larger; for a caught-up range watch, read wide (BK_WATCH_NEAR_REVS),
 * "alone" counts every key's events of that revision).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bk_int.h"

struct bk_wpoll {
	struct bk_creq *r;
	uint32_t pipe;            /* the client connection it came on */
	rb_wire_request *wr;      /* owned: the decoded request */
	uint64_t req_id;
	size_t n;                 /* watches */
	st_rev *next_rev;         /* per watch: the next position wanted */
	uint32_t *next_sub;
	int64_t deadline_ms;
	uint32_t events_max;
	struct bk_wpoll *next;    /* parked / back list */
	struct bk_wpoll *group;   /* further polls served with this one */
};

static const struct rb_watch_req *req_of(const struct bk_wpoll *wp)
{
	return &rb_wire_request_op(wp->wr)->u.watch;
}

static void wpoll_free(struct bk_wpoll *wp)
{
	rb_wire_request_free(wp->wr);
	free(wp->next_rev);
	free(wp->next_sub);
	free(wp);
}

/* The smallest position of the poll: it can only find something once the
 * revision reaches it. */
static st_rev min_rev(const struct bk_wpoll *wp)
{
	st_rev m = wp->next_rev[0];
	for (size_t i = 1; i < wp->n; i++)
		if (wp->next_rev[i] < m)
			m = wp->next_rev[i];
	return m;
}

/* Under s->mu: the polls of connection pipe (NULL when it has none). */
static struct bk_conn_polls *conn_of(struct bk_server *s, uint32_t pipe)
{
	for (uint32_t i = 0; i < s->watch_conns_n; i++)
		if (s->watch_conns[i].pipe == pipe)
			return &s->watch_conns[i];
	return NULL;
}

/* Counts a new poll of connection pipe unless the member or that
 * connection has as many as it may; false = refused. */
static bool live_take(struct bk_server *s, uint32_t pipe)
{
	pthread_mutex_lock(&s->mu);
	struct bk_conn_polls *c = conn_of(s, pipe);
	bool ok = s->watch_live_n < BK_WATCH_POLLS_MAX &&
	    (!c || c->n < BK_WATCH_POLLS_PER_CONN_MAX);
	if (ok) {
		if (!c) {   /* fewer connections than polls: there is room */
			c = &s->watch_conns[s->watch_conns_n++];
			*c = (struct bk_conn_polls){ .pipe = pipe };
		}
		c->n++;
		s->watch_live_n++;
	}
	pthread_mutex_unlock(&s->mu);
	return ok;
}

/* Uncounts the polls of the group that starts at wp. */
static void live_give(struct bk_server *s, const struct bk_wpoll *wp)
{
	pthread_mutex_lock(&s->mu);
	for (; wp; wp = wp->group) {
		struct bk_conn_polls *c = conn_of(s, wp->pipe);
		if (c && --c->n == 0)
			*c = s->watch_conns[--s->watch_conns_n];
		s->watch_live_n--;
	}
	pthread_mutex_unlock(&s->mu);
}

/* ---- replies (loop thread or reader) ------------------------------------ */

/* The reply header a poll gets: from the loop or the read's snapshot. */
struct whdr {
	uint64_t cluster_id, member_id;
	st_rev revision;
	rl_term term;
};

/* Sends the encoded reply buf to wp and every poll of its group, each
 * with its own request id, and frees them all. */
static void send_group(struct bk_server *s, struct bk_wpoll *wp,
    const uint8_t *buf, size_t len)
{
	live_give(s, wp);
	while (wp) {
		struct bk_wpoll *g = wp->group;
		uint8_t *out = NULL;
		size_t out_len = 0;
		if (buf && rb_wire_reply_restamp(buf, len, wp->req_id, &out,
		    &out_len))
			out = NULL;
		bk_creq_send(wp->r, out, out_len);   /* NULL: client times out */
		wpoll_free(wp);
		wp = g;
	}
}

/* Encodes a reply of `n` results (no error) for wp's group and sends it. */
static void reply_results(struct bk_server *s, struct bk_wpoll *wp,
    const struct whdr *h, struct rb_watch_result *res, size_t n)
{
	struct rb_resp resp = { 0 };
	resp.header = (struct rb_header){ .cluster_id = h->cluster_id,
	    .member_id = h->member_id, .revision = h->revision,
	    .raft_term = h->term };
	resp.body.type = RB_OP_WATCH;
	resp.body.u.watch.results = res;
	resp.body.u.watch.results_n = n;
	uint8_t *buf = NULL;
	size_t len = 0;
	if (rb_wire_encode_reply(0, RB_OP_WATCH, &resp, &buf, &len)) {
		bk_log(BK_LOG_WARN, "cannot encode a watch reply");
		buf = NULL;
	}
	send_group(s, wp, buf, len);
	free(buf);
}

/* A reply with no events: every watch at its position (progress). */
static void reply_progress(struct bk_server *s, struct bk_wpoll *wp,
    const struct whdr *h)
{
	struct rb_watch_result *res = calloc(wp->n, sizeof(*res));
	if (res == NULL) {
		send_group(s, wp, NULL, 0);
		return;
	}
	for (size_t i = 0; i < wp->n; i++) {
		res[i].next_rev = wp->next_rev[i];
		res[i].next_sub = wp->next_sub[i];
	}
	reply_results(s, wp, h, res, wp->n);
	free(res);
}

static struct whdr loop_whdr(const struct bk_server *s)
{
	return (struct whdr){ s->cfg.cluster_id, s->cfg.member_id, s->revision,
	    s->term };
}

/* ---- the loop ----------------------------------------------------------- */

static bool spec_valid(const struct rb_watch_spec *sp)
{
	return sp->key_len >= 1 && sp->key_len <= ST_KEY_BYTES_MAX &&
	    sp->range_end_len <= ST_KEY_BYTES_MAX && sp->start_rev >= 0;
}

/* Checks the request and builds its poll; NULL after replying an error. */
static struct bk_wpoll *wpoll_new(struct bk_server *s, struct bk_creq *r,
    uint64_t id, rb_wire_request *wr, bool *now)
{
	const struct rb_watch_req *q = &rb_wire_request_op(wr)->u.watch;
	const char *bad = NULL;
	if (q->watches_n == 0 || q->watches_n > RB_WATCHES_PER_POLL_MAX)
		bad = "a watch poll needs 1..1024 watches";
	else if (q->wait_ms < 0 || q->events_max > RB_WATCH_EVENTS_MAX)
		bad = "bad watch wait or event limit";
	for (size_t i = 0; !bad && i < q->watches_n; i++)
		if (!spec_valid(&q->watches[i]))
			bad = q->watches[i].key_len == 0 ?
			    "etcdserver: key is not provided" :
			    "bad watch key, range end or start revision";
	if (bad) {
		bk_client_reply_err(s, r, id, RB_OP_WATCH, RB_ERR_BAD_REQUEST,
		    bad, 0);
		return NULL;
	}
	struct bk_wpoll *wp = calloc(1, sizeof(*wp));
	if (wp) {
		wp->next_rev = calloc(q->watches_n, sizeof(*wp->next_rev));
		wp->next_sub = calloc(q->watches_n, sizeof(*wp->next_sub));
	}
	if (!wp || !wp->next_rev || !wp->next_sub) {
		if (wp) {
			free(wp->next_rev);
			free(wp->next_sub);
			free(wp);
		}
		bk_client_reply_err(s, r, id, RB_OP_WATCH, RB_ERR_INTERNAL,
		    "out of memory", 0);
		return NULL;
	}
	wp->r = r;
	nng_pipe p = nng_msg_get_pipe(r->req);
	wp->pipe = nng_pipe_id(p) > 0 ? (uint32_t)nng_pipe_id(p) : 0;
	wp->wr = wr;
	wp->req_id = id;
	wp->n = q->watches_n;
	wp->events_max = q->events_max ? q->events_max : RB_WATCH_EVENTS_MAX;
	int64_t wait = q->wait_ms > RB_WATCH_WAIT_MS_MAX ? RB_WATCH_WAIT_MS_MAX :
	    q->wait_ms;
	wp->deadline_ms = s->now_ms + wait;
	*now = wait == 0;
	for (size_t i = 0; i < wp->n; i++) {
		/* start 0 = from now: answered at once with the position */
		wp->next_rev[i] = q->watches[i].start_rev ?
		    q->watches[i].start_rev : s->revision + 1;
		wp->next_sub[i] = q->watches[i].start_rev ?
		    q->watches[i].start_sub : 0;
		*now |= q->watches[i].start_rev == 0;
	}
	return wp;
}

/* Hands wp (and its group) to a reader; false = the pool is full. */
static bool wpoll_submit(struct bk_server *s, struct bk_wpoll *wp)
{
	struct bk_read rd = { .r = wp->r, .wr = NULL, .req_id = wp->req_id,
	    .cluster_id = s->cfg.cluster_id, .member_id = s->cfg.member_id,
	    .term = s->term, .revision = s->revision, .lease_left_s = -1,
	    .applied = s->applied, .watch = wp, .srv = s,
	    .now_ms = s->now_ms };
	return bk_reader_submit(s, &rd);
}

bool bk_watch_handle(struct bk_server *s, struct bk_creq *r, uint64_t id,
    rb_wire_request *wr)
{
	bool now = false;
	struct bk_wpoll *wp = wpoll_new(s, r, id, wr, &now);
	if (wp == NULL)
		return false;
	if (!live_take(s, wp->pipe)) {
		wp->wr = NULL;   /* the caller frees it */
		wpoll_free(wp);
		bk_client_reply_err(s, r, id, RB_OP_WATCH, RB_ERR_TIMEOUT,
		    "etcdserver: too many requests", 0);
		return false;
	}
	if (min_rev(wp) <= s->revision && wpoll_submit(s, wp))
		return true;
	if (now) {
		struct whdr h = loop_whdr(s);
		reply_progress(s, wp, &h);
		return true;
	}
	wp->next = s->watch_parked;
	s->watch_parked = wp;
	if (wp->deadline_ms < s->watch_next_deadline_ms)
		s->watch_next_deadline_ms = wp->deadline_ms;
	return true;
}

/* Two watches asking for the same events: same range and filters (their
 * positions are compared by the callers). */
static bool same_spec(const struct rb_watch_spec *x,
    const struct rb_watch_spec *y)
{
	return x->key_len == y->key_len && x->range_end_len == y->range_end_len &&
	    x->prev_kv == y->prev_kv && x->no_put == y->no_put &&
	    x->no_delete == y->no_delete &&
	    memcmp(x->key, y->key, x->key_len) == 0 &&
	    (x->range_end_len == 0 ||
	    memcmp(x->range_end, y->range_end, x->range_end_len) == 0);
}

/* Same request, same position: may share one read and one encoding. */
static bool same_poll(const struct bk_wpoll *a, const struct bk_wpoll *b)
{
	return a->n == 1 && b->n == 1 && a->next_rev[0] == b->next_rev[0] &&
	    a->next_sub[0] == b->next_sub[0] &&
	    a->events_max == b->events_max &&
	    same_spec(&req_of(a)->watches[0], &req_of(b)->watches[0]);
}

/* The smallest position of all parked polls (INT64_MAX if none). */
static st_rev min_rev_parked(const struct bk_server *s)
{
	st_rev m = INT64_MAX;
	for (const struct bk_wpoll *wp = s->watch_parked; wp; wp = wp->next)
		if (min_rev(wp) < m)
			m = min_rev(wp);
	return m;
}

/* Takes the polls readers handed back and puts them with the parked. */
static void take_back(struct bk_server *s)
{
	pthread_mutex_lock(&s->mu);
	struct bk_wpoll *back = s->watch_back;
	s->watch_back = NULL;
	pthread_mutex_unlock(&s->mu);
	while (back) {
		struct bk_wpoll *nx = back->next;
		back->next = s->watch_parked;
		s->watch_parked = back;
		back = nx;
	}
}

/* Groups the readable polls of `ready` and submits each group; a group
 * the pool cannot take goes back to the parked list (next turn). */
static void submit_ready(struct bk_server *s, struct bk_wpoll *ready)
{
	while (ready) {
		struct bk_wpoll *lead = ready;
		ready = ready->next;
		struct bk_wpoll **tail = &lead->group, **pp = &ready;
		while (*pp) {
			struct bk_wpoll *c = *pp;
			if (same_poll(lead, c)) {
				*pp = c->next;
				c->next = NULL;
				*tail = c;
				tail = &c->group;
			} else {
				pp = &c->next;
			}
		}
		if (wpoll_submit(s, lead))
			continue;
		/* pool full: ungroup and park again */
		while (lead) {
			struct bk_wpoll *g = lead->group;
			lead->group = NULL;
			lead->next = s->watch_parked;
			s->watch_parked = lead;
			lead = g;
		}
	}
}

void bk_watch_turn(struct bk_server *s)
{
	pthread_mutex_lock(&s->mu);
	bool back = s->watch_back != NULL;
	pthread_mutex_unlock(&s->mu);
	/* the parked list only changes state when the revision moves, a
	 * deadline passes or polls come back: skip the scan otherwise */
	if (!back && s->revision == s->watch_scan_rev &&
	    s->now_ms < s->watch_next_deadline_ms)
		return;
	take_back(s);
	struct bk_wpoll *ready = NULL, **pp = &s->watch_parked;
	struct whdr h = loop_whdr(s);
	int64_t next_deadline = INT64_MAX;
	while (*pp) {
		struct bk_wpoll *wp = *pp;
		if (min_rev(wp) <= s->revision) {
			*pp = wp->next;
			wp->next = ready;
			ready = wp;
		} else if (wp->deadline_ms <= s->now_ms) {
			*pp = wp->next;
			wp->next = NULL;
			reply_progress(s, wp, &h);
		} else {
			if (wp->deadline_ms < next_deadline)
				next_deadline = wp->deadline_ms;
			pp = &wp->next;
		}
	}
	submit_ready(s, ready);
	s->watch_scan_rev = s->revision;
	/* polls the pool could not take were parked again: look next turn */
	s->watch_next_deadline_ms = s->watch_parked != NULL &&
	    min_rev_parked(s) <= s->revision ? s->now_ms : next_deadline;
}

void bk_watch_close(struct bk_server *s)
{
	take_back(s);
	while (s->watch_parked) {
		struct bk_wpoll *wp = s->watch_parked;
		s->watch_parked = wp->next;
		wpoll_free(wp);   /* its request stays with the context */
	}
}

void bk_watch_dropped(struct bk_wpoll *wp)
{
	while (wp) {
		struct bk_wpoll *g = wp->group;
		wpoll_free(wp);
		wp = g;
	}
}

/* ---- the reader --------------------------------------------------------- */

/* A watch this close to the read's revision reads through the store's
 * by-revision index (every key, filtered here): that costs the few events
 * since its position, where the store's by-key walk of a range costs one
 * seek per key in the range (about 100 ms for a topic of 100 000
 * messages), paid again at every revision a caught-up subscriber waits
 * for. Further behind, the by-key walk skips other keys' history. */
#define BK_WATCH_NEAR_REVS 64

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

/* The store's range rules (a range, since single keys never read wide):
 * [key, range_end), or every key >= key for a range end of "\0". */
static bool spec_has(const struct rb_watch_spec *sp, const uint8_t *k, size_t kl)
{
	if (bytes_cmp(k, kl, sp->key, sp->key_len) < 0)
		return false;
	if (sp->range_end_len == 1 && sp->range_end[0] == 0)
		return true;
	return bytes_cmp(k, kl, sp->range_end, sp->range_end_len) < 0;
}

static bool read_wide(const struct rb_watch_spec *sp, st_rev next_rev,
    st_rev revision)
{
	return sp->range_end_len > 0 && revision - next_rev < BK_WATCH_NEAR_REVS;
}

/* One watch's read: appends its result to res and adds the bytes read to
 * *bytes; returns the events read (filtered or not) so the caller can stop
 * when the reply is full. */
static size_t read_watch(st_store *st, const struct rb_watch_spec *sp,
    st_rev *next_rev, uint32_t *next_sub, size_t events_max, size_t bytes_max,
    bool wide, struct rb_watch_result *res, struct st_result *sres,
    size_t *bytes)
{
	static const uint8_t every_key[1] = { 0 };
	struct st_events_req q = { .key = sp->key, .key_len = sp->key_len,
	    .range_end = sp->range_end, .range_end_len = sp->range_end_len,
	    .from_rev = *next_rev, .from_sub = *next_sub,
	    .events_max = events_max, .bytes_max = bytes_max,
	    .prev_kv = sp->prev_kv };
	if (wide) {   /* positions are global: filtering keeps them exact */
		q.key = q.range_end = every_key;
		q.key_len = q.range_end_len = 1;
	}
	res->next_rev = *next_rev;
	res->next_sub = *next_sub;
	int rc = st_events(st, &q, sres);
	if (rc == ST_ERR_FUTURE_REV)
		return 0;   /* nothing yet */
	if (rc) {
		res->canceled = true;
		res->err = rc == ST_ERR_COMPACTED ? RB_ERR_COMPACTED :
		    rc == ST_ERR_KEY_TOO_LONG || rc == ST_ERR_INVALID ||
		    rc == ST_ERR_EMPTY_KEY ? RB_ERR_BAD_REQUEST : RB_ERR_INTERNAL;
		res->compact_revision = sres->compact_revision;
		return 0;
	}
	const struct st_events_resp *er = &sres->resp.u.events;
	for (size_t i = 0; i < er->events_n; i++) {
		const struct st_event *e = &er->events[i];
		*bytes += e->kv.key_len + e->kv.value_len;
		if (e->has_prev_kv)
			*bytes += e->prev_kv.key_len + e->prev_kv.value_len;
	}
	if (er->more) {
		*next_rev = er->next_rev;
		*next_sub = er->next_sub;
	} else if (sres->revision + 1 > *next_rev) {
		*next_rev = sres->revision + 1;
		*next_sub = 0;
	}
	res->next_rev = *next_rev;
	res->next_sub = *next_sub;
	return er->events_n;
}

static void conv_kv(const struct st_kv *in, struct rb_kv *out)
{
	*out = (struct rb_kv){ .key = in->key, .key_len = in->key_len,
	    .value = in->value, .value_len = in->value_len,
	    .create_revision = in->create_revision,
	    .mod_revision = in->mod_revision, .version = in->version,
	    .lease = in->lease };
}

/* The events of sres that pass the watch's filters, into res (borrowing
 * sres's memory). false = out of memory. */
static bool fill_events(const struct rb_watch_spec *sp, bool wide,
    const struct st_result *sres, struct rb_watch_result *res)
{
	const struct st_events_resp *er = &sres->resp.u.events;
	if (res->canceled || sres->err || er->events_n == 0)
		return true;
	res->events = calloc(er->events_n, sizeof(*res->events));
	if (res->events == NULL)
		return false;
	for (size_t i = 0; i < er->events_n; i++) {
		const struct st_event *e = &er->events[i];
		bool del = e->type == ST_EVENT_DELETE;
		if ((del && sp->no_delete) || (!del && sp->no_put))
			continue;
		if (wide && !spec_has(sp, e->kv.key, e->kv.key_len))
			continue;
		struct rb_event *o = &res->events[res->events_n++];
		o->type = del ? RB_EVENT_DELETE : RB_EVENT_PUT;
		conv_kv(&e->kv, &o->kv);
		o->has_prev_kv = e->has_prev_kv;
		if (e->has_prev_kv)
			conv_kv(&e->prev_kv, &o->prev_kv);
	}
	return true;
}

/* Hands a poll that found nothing back to the loop to wait. */
static void hand_back(struct bk_server *s, struct bk_wpoll *wp)
{
	/* a group shares one watch and one position: the lead's moved */
	for (struct bk_wpoll *g = wp->group; g; g = g->group) {
		g->next_rev[0] = wp->next_rev[0];
		g->next_sub[0] = wp->next_sub[0];
	}
	pthread_mutex_lock(&s->mu);
	while (wp) {
		struct bk_wpoll *g = wp->group;
		wp->group = NULL;
		wp->next = s->watch_back;
		s->watch_back = wp;
		wp = g;
	}
	pthread_mutex_unlock(&s->mu);
	bk_wake(s);
}

void bk_watch_serve(st_store *st, struct bk_read *rd)
{
	struct bk_wpoll *wp = rd->watch;
	struct bk_server *s = rd->srv;
	const struct rb_watch_req *q = req_of(wp);
	struct rb_watch_result *res = calloc(wp->n, sizeof(*res));
	struct st_result *sres = calloc(wp->n, sizeof(*sres));
	bool *shared = calloc(wp->n, sizeof(*shared));
	bool any = false, oom = !res || !sres || !shared;
	size_t total = 0, bytes = 0;
	st_rev read_rev = rd->revision;
	/* the last watch read, where it started and what it added: a run
	 * of watches identical to it share its read (their events point
	 * into its st_result, freed once) */
	size_t lead = SIZE_MAX, lead_events = 0, lead_bytes = 0;
	st_rev lead_rev = 0;
	uint32_t lead_sub = 0;
	for (size_t i = 0; !oom && i < wp->n; i++) {
		/* a full reply (in events or bytes: the bytes limit is the
		 * reply's, so 1024 watches cannot make it 1024 times larger)
		 * leaves the other watches where they are (never a partial
		 * revision because of another watch's events) */
		if (total >= wp->events_max || bytes >= BK_WATCH_REPLY_BYTES_MAX) {
			res[i].next_rev = wp->next_rev[i];
			res[i].next_sub = wp->next_sub[i];
			continue;
		}
		/* the many subscribers of one topic that one connection
		 * multiplexes (rb_watcher, raftbus-bench): same spec, same
		 * position as the lead had before its read */
		if (lead != SIZE_MAX && wp->next_rev[i] == lead_rev &&
		    wp->next_sub[i] == lead_sub &&
		    same_spec(&q->watches[i], &q->watches[lead])) {
			res[i] = res[lead];
			shared[i] = true;
			wp->next_rev[i] = wp->next_rev[lead];
			wp->next_sub[i] = wp->next_sub[lead];
			total += lead_events;
			bytes += lead_bytes;
			any |= res[i].canceled || res[i].events_n > 0;
			continue;
		}
		bool wide = read_wide(&q->watches[i], wp->next_rev[i],
		    rd->revision);
		lead = i;
		lead_rev = wp->next_rev[i];
		lead_sub = wp->next_sub[i];
		size_t bytes_before = bytes;
		lead_events = read_watch(st, &q->watches[i], &wp->next_rev[i],
		    &wp->next_sub[i], wp->events_max, BK_WATCH_REPLY_BYTES_MAX,
		    wide, &res[i], &sres[i], &bytes);
		lead_bytes = bytes - bytes_before;
		total += lead_events;
		if (sres[i].revision > read_rev)
			read_rev = sres[i].revision;
		oom |= !fill_events(&q->watches[i], wide, &sres[i], &res[i]);
		any |= res[i].canceled || res[i].events_n > 0;
	}
	struct whdr h = { rd->cluster_id, rd->member_id, read_rev, rd->term };
	size_t n = wp->n;   /* wp is freed once answered */
	if (oom)
		send_group(s, wp, NULL, 0);
	else if (any || wp->deadline_ms <= rd->now_ms)
		reply_results(s, wp, &h, res, n);
	else
		hand_back(s, wp);   /* positions moved past unrelated history */
	for (size_t i = 0; res && i < n; i++)
		if (!shared || !shared[i])
			free(res[i].events);
	for (size_t i = 0; sres && i < n; i++)
		st_result_free(&sres[i]);
	free(res);
	free(sres);
	free(shared);
}
