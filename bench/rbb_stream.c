/*
 * rbb_stream.c - the readers of the watch and pubsub workloads: each one
 * a chain of watch polls (RB_OP_WATCH, docs/protocol.md "Watch polls") of
 * one prefix, as an actor of a flow (rbb_flow.c). A poll names the exact
 * position wanted (start_rev, start_sub), so the server keeps nothing per
 * reader and any member may serve it; the reader continues from each
 * reply's next_rev/next_sub.
 *
 * The readers of one connection share chains of polls, `per_poll`
 * readers to a chain and one watch per reader in each poll (a "poller", as
 * libraftbus's rb_watcher multiplexes its watches, clientv3 carries every
 * watch of a client on one gRPC stream and nats.go every subscription on
 * one connection): the server answers them in one reply. With per_poll 1
 * each reader has its own chain. A reply carries at most
 * RB_WATCH_EVENTS_MAX events in all, so a chain of many busy readers waits
 * for more round trips: the workloads default to RBB_READERS_PER_POLL.
 *
 * What is measured: every accepted event is recorded with its delivery
 * latency (receive time minus the send time stamped in the write). What is
 * checked, per reader: revisions only grow (a repeated revision is a
 * duplicate, a smaller one is out of order), every event is one of the
 * run's (stamp() accepts it), no more than `want` events, and at the end
 * the hash of the accepted revisions in arrival order equals the hash of
 * the revisions the writers were given, sorted: the same events, in
 * revision order, for every reader.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rbb.h"

/* Longest server-side wait of one poll; an empty reply is polled again.
 * Short enough that a stopped run is not held by it. */
#define RBB_STREAM_POLL_WAIT_MS 2000

struct rbb_reader {
	struct rbb_stream *s;
	struct rb_watch_spec spec;   /* start_rev/start_sub: next position */
	bool ready;                  /* the first (wait 0) poll answered */
	bool canceled;
	uint64_t got;
	rb_rev last_rev;
	uint64_t hash;
	uint64_t dups;               /* revision seen again */
	uint64_t disorder;           /* revision below the last one */
	uint64_t foreign;            /* not an event of the run */
	uint64_t extra;              /* beyond `want` */
};

/* Readers sharing one chain of polls (at most RB_WATCHES_PER_POLL_MAX). */
struct rbb_poller {
	struct rbb_stream *s;
	unsigned *readers;           /* indices in s->readers */
	unsigned readers_n;
	struct rb_watch_spec *specs; /* the poll in flight */
	unsigned *in_poll;           /* the reader of each of its watches */
	unsigned in_poll_n;
	bool ready;
};

struct rbb_stream {
	rbb_flow *f;
	struct rbb_stats *st;
	uint8_t *prefix;
	size_t prefix_len;
	uint8_t *end;
	size_t end_len;
	uint64_t want;
	rbb_stamp_fn stamp;
	struct rbb_reader *readers;
	unsigned readers_n;
	struct rbb_poller *pollers;  /* NULL: a chain per reader */
	unsigned pollers_n;
	unsigned actors_n;
	atomic_uint ready;
	atomic_uint_fast64_t delivered;
	atomic_uint_fast64_t last_ns;
	atomic_uint_fast64_t poll_errors;
	atomic_uint_fast64_t bad_replies;
};

static int reader_next(void *arg, struct rb_op *op)
{
	struct rbb_reader *r = arg;
	if (r->canceled || r->got >= r->s->want)
		return RBB_ACTOR_DONE;
	op->type = RB_OP_WATCH;
	op->u.watch.watches = &r->spec;
	op->u.watch.watches_n = 1;
	/* the first poll answers at once: the run's writes wait for it */
	op->u.watch.wait_ms = r->ready ? RBB_STREAM_POLL_WAIT_MS : 0;
	return 0;
}

/* Accepts or rejects one event; returns true when accepted. */
static bool reader_event(struct rbb_reader *r, const struct rb_event *ev,
    uint64_t now)
{
	struct rbb_stream *s = r->s;
	rb_rev rev = ev->kv.mod_revision;
	if (rev <= r->last_rev) {
		if (rev == r->last_rev)
			r->dups++;
		else
			r->disorder++;
		return false;
	}
	r->last_rev = rev;
	uint64_t sent;
	if (ev->type != RB_EVENT_PUT || s->stamp(s->prefix, s->prefix_len, ev, &sent) != 0) {
		r->foreign++;
		return false;
	}
	if (r->got >= s->want) {
		r->extra++;
		return false;
	}
	r->got++;
	r->hash = rbb_mix64(r->hash ^ (uint64_t)rev);
	/* at least 1 ns: a latency of 0 would read as "not measured" */
	rbb_stats_record(s->st, 0, now > sent ? now - sent : 1);
	return true;
}

static void note_last(struct rbb_stream *s, uint64_t now)
{
	uint64_t prev = atomic_load(&s->last_ns);
	while (prev < now &&
	    !atomic_compare_exchange_weak(&s->last_ns, &prev, now))
		;
}

/* One reader's result in a poll reply. */
static void reader_result(struct rbb_reader *r,
    const struct rb_watch_result *res, uint64_t now)
{
	struct rbb_stream *s = r->s;
	if (!r->ready) {
		r->ready = true;
		atomic_fetch_add(&s->ready, 1);
	}
	if (res->canceled) {
		r->canceled = true;
		fprintf(stderr, "raftbus-bench: a reader's watch was cancelled: "
		    "%s\n", rb_strerror(res->err));
		return;
	}
	uint64_t accepted = 0;
	for (size_t i = 0; i < res->events_n; i++)
		accepted += reader_event(r, &res->events[i], now);
	if (accepted) {
		atomic_fetch_add(&s->delivered, accepted);
		note_last(s, now);
	}
	if (res->next_rev > 0) {
		r->spec.start_rev = res->next_rev;
		r->spec.start_sub = res->next_sub;
	}
}

/* A poll's outcome: 0 when its `n` results can be taken, else the backoff
 * (the positions are unchanged: the next poll asks again). */
static int poll_outcome(struct rbb_stream *s, int err,
    const struct rb_resp *resp, size_t n)
{
	if (err) {
		atomic_fetch_add(&s->poll_errors, 1);
		return RBB_ERROR_BACKOFF_MS;
	}
	if (resp->body.type != RB_OP_WATCH ||
	    resp->body.u.watch.results_n != n) {
		atomic_fetch_add(&s->bad_replies, 1);
		return RBB_ERROR_BACKOFF_MS;
	}
	return 0;
}

static int reader_reply(void *arg, int err, const struct rb_resp *resp)
{
	struct rbb_reader *r = arg;
	int rc = poll_outcome(r->s, err, resp, 1);
	if (rc == 0)
		reader_result(r, &resp->body.u.watch.results[0], rbb_now_ns());
	return rc;
}

static const struct rbb_actor_ops reader_ops = {
	.next = reader_next,
	.reply = reader_reply,
};

/* The next poll of a poller: one watch per reader still reading. */
static int poller_next(void *arg, struct rb_op *op)
{
	struct rbb_poller *p = arg;
	p->in_poll_n = 0;
	for (unsigned i = 0; i < p->readers_n; i++) {
		struct rbb_reader *r = &p->s->readers[p->readers[i]];
		if (r->canceled || r->got >= p->s->want)
			continue;
		p->specs[p->in_poll_n] = r->spec;
		p->in_poll[p->in_poll_n++] = p->readers[i];
	}
	if (p->in_poll_n == 0)
		return RBB_ACTOR_DONE;
	op->type = RB_OP_WATCH;
	op->u.watch.watches = p->specs;
	op->u.watch.watches_n = p->in_poll_n;
	op->u.watch.wait_ms = p->ready ? RBB_STREAM_POLL_WAIT_MS : 0;
	return 0;
}

static int poller_reply(void *arg, int err, const struct rb_resp *resp)
{
	struct rbb_poller *p = arg;
	int rc = poll_outcome(p->s, err, resp, p->in_poll_n);
	if (rc)
		return rc;
	p->ready = true;
	uint64_t now = rbb_now_ns();
	for (unsigned k = 0; k < p->in_poll_n; k++)
		reader_result(&p->s->readers[p->in_poll[k]],
		    &resp->body.u.watch.results[k], now);
	return 0;
}

static const struct rbb_actor_ops poller_ops = {
	.next = poller_next,
	.reply = poller_reply,
};

/* Readers i, i + socks_n, ... of socket first_sock + i share pollers of
 * at most per_poll watches. Returns 0, -1 out of memory, or -2 when the
 * flow refused an actor (it said why). */
static int pollers_new(struct rbb_stream *s, int first_sock,
    unsigned socks_n, unsigned per_poll)
{
	unsigned per_sock = (s->readers_n + socks_n - 1) / socks_n;
	unsigned chains = (per_sock + per_poll - 1) / per_poll;
	s->pollers = calloc((size_t)socks_n * chains, sizeof(*s->pollers));
	if (s->pollers == NULL)
		return -1;
	for (unsigned sk = 0; sk < socks_n; sk++) {
		for (unsigned c = 0; c < chains; c++) {
			struct rbb_poller *p = &s->pollers[s->pollers_n++];
			p->s = s;   /* counted first: rbb_stream_free frees it */
			p->readers = calloc(per_poll, sizeof(*p->readers));
			p->in_poll = calloc(per_poll, sizeof(*p->in_poll));
			p->specs = calloc(per_poll, sizeof(*p->specs));
			if (!p->readers || !p->in_poll || !p->specs)
				return -1;
			for (unsigned i = sk + c * per_poll *
			    socks_n; i < s->readers_n &&
			    p->readers_n < per_poll; i += socks_n)
				p->readers[p->readers_n++] = i;
			if (p->readers_n && rbb_flow_actor(s->f,
			    first_sock + (int)sk, &poller_ops, p) < 0)
				return -2;
			s->actors_n += p->readers_n > 0;
		}
	}
	return 0;
}

struct rbb_stream *rbb_stream_new(rbb_flow *f, struct rbb_stats *st,
    const uint8_t *prefix, size_t prefix_len, rb_rev start_rev,
    uint64_t want, unsigned readers_n, int first_sock, unsigned socks_n,
    unsigned per_poll, rbb_stamp_fn stamp)
{
	bool poll_per_reader = per_poll <= 1;
	if (per_poll > RB_WATCHES_PER_POLL_MAX)
		per_poll = RB_WATCHES_PER_POLL_MAX;
	struct rbb_stream *s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto out_nomem;
	s->f = f;
	s->st = st;
	s->want = want;
	s->stamp = stamp;
	s->prefix = malloc(prefix_len);
	s->end = malloc(prefix_len);
	s->readers = calloc(readers_n, sizeof(*s->readers));
	if (!s->prefix || !s->end || !s->readers)
		goto out_free;
	memcpy(s->prefix, prefix, prefix_len);
	s->prefix_len = prefix_len;
	s->end_len = rb_prefix_end(prefix, prefix_len, s->end);
	s->readers_n = readers_n;
	for (unsigned i = 0; i < readers_n; i++) {
		struct rbb_reader *r = &s->readers[i];
		r->s = s;
		r->spec = (struct rb_watch_spec){ .key = s->prefix,
		    .key_len = s->prefix_len, .range_end = s->end,
		    .range_end_len = s->end_len, .start_rev = start_rev,
		    .no_delete = true };
		if (!poll_per_reader)
			continue;
		int sock = first_sock + (int)(i % socks_n);
		if (rbb_flow_actor(f, sock, &reader_ops, r) < 0) {
			rbb_stream_free(s);
			return NULL;
		}
		s->actors_n++;
	}
	int rc = poll_per_reader ? 0 :
	    pollers_new(s, first_sock, socks_n, per_poll);
	if (rc) {
		rbb_stream_free(s);
		if (rc == -1)
			goto out_nomem;
		return NULL;
	}
	return s;
out_free:
	rbb_stream_free(s);
out_nomem:
	fprintf(stderr, "raftbus-bench: out of memory\n");
	return NULL;
}

unsigned rbb_stream_actors(const struct rbb_stream *s)
{
	return s->actors_n;
}

unsigned rbb_stream_ready(const struct rbb_stream *s)
{
	return atomic_load(&s->ready);
}

uint64_t rbb_stream_count(void *stream)
{
	struct rbb_stream *s = stream;
	return atomic_load(&s->delivered);
}

uint64_t rbb_stream_last_ns(const struct rbb_stream *s)
{
	return atomic_load(&s->last_ns);
}

static int cmp_rev(const void *a, const void *b)
{
	rb_rev x = *(const rb_rev *)a, y = *(const rb_rev *)b;
	return x < y ? -1 : x > y;
}

/* Prints one kind of problem when there is any. */
static void report_problem(uint64_t n, const char *what)
{
	if (n)
		fprintf(stderr, "raftbus-bench: %llu %s\n",
		    (unsigned long long)n, what);
}

uint64_t rbb_stream_check(struct rbb_stream *s, rb_rev *revs,
    uint64_t written_n)
{
	uint64_t expect = 0;
	if (revs) {
		qsort(revs, written_n, sizeof(*revs), cmp_rev);
		for (uint64_t i = 0; i < written_n; i++)
			expect = rbb_mix64(expect ^ (uint64_t)revs[i]);
	}
	uint64_t missing = 0, dups = 0, disorder = 0, foreign = 0, extra = 0;
	uint64_t mismatch = 0, canceled = 0;
	for (unsigned i = 0; i < s->readers_n; i++) {
		const struct rbb_reader *r = &s->readers[i];
		missing += s->want - r->got;
		dups += r->dups;
		disorder += r->disorder;
		foreign += r->foreign;
		extra += r->extra;
		canceled += r->canceled;
		if (revs && r->got == s->want && r->hash != expect)
			mismatch++;
	}
	report_problem(missing, "events expected by readers never arrived");
	report_problem(dups, "events were delivered twice to a reader");
	report_problem(disorder, "events arrived out of revision order");
	report_problem(foreign, "events were not the run's writes");
	report_problem(extra, "events arrived beyond those written");
	report_problem(canceled, "readers' watches were cancelled");
	report_problem(mismatch, "readers got every event count right but "
	    "not the written revisions in order");
	report_problem(atomic_load(&s->poll_errors),
	    "polls failed (retried from the same position; not errors of "
	    "the run unless events went missing)");
	report_problem(atomic_load(&s->bad_replies),
	    "poll replies were malformed");
	uint64_t anomalies = dups + disorder + foreign + extra + mismatch +
	    canceled + atomic_load(&s->bad_replies);
	rbb_stats_add_errors(s->st, RB_ERR_TIMEOUT, missing);
	rbb_stats_add_errors(s->st, RB_ERR_PROTOCOL, anomalies);
	return missing + anomalies;
}

void rbb_stream_free(struct rbb_stream *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->pollers_n; i++) {
		free(s->pollers[i].readers);
		free(s->pollers[i].in_poll);
		free(s->pollers[i].specs);
	}
	free(s->pollers);
	free(s->prefix);
	free(s->end);
	free(s->readers);
	free(s);
}

/* ---- a whole fan-out run ------------------------------------------------ */

/* Opens n sockets to url (to_leader) or round robin over the endpoints;
 * returns the first one's index or -1. */
static int open_socks(rbb_flow *f, struct rbb_run *run, unsigned n,
    bool to_leader)
{
	int first = -1;
	for (unsigned i = 0; i < n; i++) {
		const char *url = to_leader ? run->leader_url :
		    run->endpoints[i % run->endpoints_n];
		int s = rbb_flow_socket(f, url);
		if (s < 0)
			return -1;
		if (i == 0)
			first = s;
	}
	return first;
}

/* Waits until every reader answered its first poll. */
static int wait_ready(const struct rbb_stream *s, unsigned n)
{
	uint64_t end = rbb_now_ns() + RBB_FLOW_READY_TIMEOUT_MS * 1000000ull;
	while (rbb_stream_ready(s) < n) {
		if (rbb_now_ns() > end) {
			fprintf(stderr, "raftbus-bench: only %u of %u readers "
			    "answered within %d ms\n", rbb_stream_ready(s), n,
			    RBB_FLOW_READY_TIMEOUT_MS);
			return -1;
		}
		struct timespec ts = { 0, 5 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return 0;
}

static unsigned min_u(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

struct fanout_goal {
	struct rbb_stream *s;
	struct rbb_writers *w;
	uint64_t total;
	unsigned readers;
};

static uint64_t fanout_count(void *arg)
{
	return rbb_stream_count(((struct fanout_goal *)arg)->s);
}

/* Every reader gets every write; once the writes are over, only the
 * successful ones count (a failed one is not re-sent). */
static uint64_t fanout_target(void *arg)
{
	const struct fanout_goal *g = arg;
	uint64_t writes = g->total;
	if (rbb_writers_answered(g->w) == g->total)
		writes -= rbb_writers_failed(g->w, NULL);
	return writes * g->readers;
}

int rbb_fanout_run(struct rbb_run *run, struct rbb_stats *st,
    const struct rbb_fanout *fo)
{
	rb_rev rev;
	if (rbb_leader_revision(run, &rev))
		return -1;
	rbb_flow *f;
	if (rbb_flow_new(run, st, &f))
		return -1;
	int rc = -1;
	struct rbb_stream *s = NULL;
	struct rbb_writers *w = NULL;
	unsigned rsocks = min_u(run->conns, fo->readers);
	unsigned wsocks = min_u(run->conns, fo->writers);
	int rfirst = open_socks(f, run, rsocks, false);
	int wfirst = rfirst < 0 ? -1 : open_socks(f, run, wsocks, true);
	if (wfirst < 0)
		goto out_free;
	s = rbb_stream_new(f, st, fo->prefix, fo->prefix_len, rev + 1,
	    fo->total, fo->readers, rfirst, rsocks,
	    fo->per_poll ? fo->per_poll : RBB_READERS_PER_POLL, fo->stamp);
	if (s)
		w = rbb_writers_new(f, fo->writers, wfirst, wsocks, fo->total,
		    fo->buf_bytes, fo->wops, fo->warg);
	if (!w)
		goto out_free;
	unsigned actors = rbb_stream_actors(s);
	rbb_flow_start(f, 0, actors);
	if (wait_ready(s, fo->readers))
		goto out_free;
	uint64_t start = rbb_now_ns();
	rbb_flow_start(f, actors, fo->writers);
	struct fanout_goal fg = { .s = s, .w = w, .total = fo->total,
	    .readers = fo->readers };
	struct rbb_flow_goal goal = { .count = fanout_count,
	    .target = fanout_target, .arg = &fg };
	(void)rbb_flow_wait(f, start, &goal);
	int first_err;
	uint64_t failed = rbb_writers_failed(w, &first_err);
	if (failed)
		fprintf(stderr, "raftbus-bench: %llu of %llu writes failed "
		    "(first: %s)\n", (unsigned long long)failed,
		    (unsigned long long)fo->total, rb_strerror(first_err));
	rbb_stream_check(s, failed ? NULL : rbb_writers_revs(w), fo->total);
	uint64_t last = rbb_stream_last_ns(s);
	st->duration_s = (double)((last > start ? last : rbb_now_ns()) -
	    start) / 1e9;
	run->clients = fo->writers;
	rc = 0;
out_free:
	rbb_flow_free(f);
	rbb_writers_free(w);
	rbb_stream_free(s);
	return rc;
}
