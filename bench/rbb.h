/*
 * rbb.h - the internals of raftbus-bench, the load generator of raftbus
 * (modelled on etcd's `benchmark` tool), shared by its files:
 *
 *   raftbus_bench.c  command line, the workload table, main()
 *   rbb_engine.c     the async request engine: nng req0 sockets with one
 *                    context + aio per client, leader discovery, re-dial on
 *                    "not leader", rate limit
 *   rbb_stats.c      log-bucket latency histogram, counters, per-second rows
 *   rbb_report.c     text / csv / json reports and the progress line
 *   rbb_wl_*.c       one file per workload (a struct rbb_workload each)
 *
 * Adding a workload: write rbb_wl_NAME.c defining
 * `const struct rbb_workload rbb_wl_NAME`, declare it below, add it to the
 * table in raftbus_bench.c and the file to bench/meson.build.
 *
 * Threads: main() and the engine's control loop run on the main thread; a
 * workload's next() and check() run on nng's callback threads, several at
 * once, so they must only read run-lifetime state (or use their own locks).
 */
#ifndef RBB_H
#define RBB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftbus.h"

/* ---- limits ------------------------------------------------------------- */

/* Requests in flight (--clients) and req sockets (--conns). */
#define RBB_CLIENTS_MAX 100000u
#define RBB_CONNS_MAX 1024u
/* --endpoints entries. */
#define RBB_ENDPOINTS_MAX 64u
/* --total: requests of one run. */
#define RBB_TOTAL_MAX 1000000000000ull
/* --rate: requests per second over all clients (0 = unlimited). */
#define RBB_RATE_MAX 10000000ull
/* Key and value sizes; the server refuses keys above 480 bytes. */
#define RBB_KEY_BYTES_MAX 480u
#define RBB_VALUE_BYTES_MAX (1024u * 1024u)
#define RBB_KEY_SPACE_MAX 1000000000000ull
/* Puts per txn-put request (the server's limit on ops per txn). */
#define RBB_TXN_OPS_MAX 128u
/* One request's send + reply; a request slower than this is an error. */
#define RBB_REQUEST_TIMEOUT_MS 10000
/* Finding the leader before a run (and again after "no leader"). */
#define RBB_DISCOVER_TIMEOUT_MS 5000
/* A client pauses this long after "not leader"/"no leader"/a transport
 * error so that a leaderless cluster is not hammered with retries. */
#define RBB_ERROR_BACKOFF_MS 20
/* Rows of the per-second series kept for -o csv (one day). */
#define RBB_SERIES_SECONDS_MAX 86400u
/* Latencies above this are counted in the top bucket (about 18 minutes). */
#define RBB_HIST_VALUE_NS_MAX (1ull << 40)
/* 2^RBB_HIST_SUB_BITS buckets per power of two: a reported quantile is the
 * middle of its bucket, within 1/2^(RBB_HIST_SUB_BITS+1) = 0.4 % of every
 * value in it. */
#define RBB_HIST_SUB_BITS 7u
#define RBB_HIST_SUB (1u << RBB_HIST_SUB_BITS)
#define RBB_HIST_BUCKETS (RBB_HIST_SUB * (40u - RBB_HIST_SUB_BITS + 1u))

/* Error counts are kept per rb_err code (index = -code). */
#define RBB_ERR_CODES (-RB_ERR_MIN + 1)

/* ---- histogram and counters (rbb_stats.c) -------------------------------- */

/* HDR-style histogram of latencies in ns: fixed size, no allocation. */
struct rbb_hist {
	uint64_t n;
	uint64_t min_ns;
	uint64_t max_ns;
	double sum_ns;
	double sumsq_ns;
	uint64_t counts[RBB_HIST_BUCKETS];
};

/* One second of the per-second series. */
struct rbb_row {
	uint64_t second;         /* 1 = the first second of the run */
	uint64_t ops;            /* successful requests completed in it */
	uint64_t errors;
	double p50_ms;
	double p99_ms;
};

/* Everything measured in one run. Filled from callback threads under mu;
 * read by the main thread under mu, or freely once the run has ended. */
struct rbb_stats {
	pthread_mutex_t mu;
	struct rbb_hist all;     /* whole run */
	struct rbb_hist sec;     /* the second in progress */
	uint64_t ok;
	uint64_t errors;
	uint64_t sec_errors;
	uint64_t err_by_code[RBB_ERR_CODES];
	struct rbb_row *rows;    /* RBB_SERIES_SECONDS_MAX */
	size_t rows_n;
	bool rows_dropped;       /* the run outlived the series */
	uint64_t seconds_rolled;
	double duration_s;       /* set when the run ends */
};

void rbb_hist_reset(struct rbb_hist *h);
void rbb_hist_record(struct rbb_hist *h, uint64_t ns);
/* The q-quantile (0 < q <= 1) in ns: the middle of the bucket holding it,
 * clamped to [min, max]; 0 for an empty histogram. */
uint64_t rbb_hist_quantile_ns(const struct rbb_hist *h, double q);
/* Lower bound and width in ns of bucket i (for the text histogram). */
void rbb_hist_bucket(size_t i, uint64_t *lo_ns, uint64_t *width_ns);

/* Allocates zeroed stats (NULL when out of memory); free with
 * rbb_stats_free(). */
struct rbb_stats *rbb_stats_new(void);
void rbb_stats_free(struct rbb_stats *st);
/* Counts one finished request: err 0 with its latency, or an rb_err.
 * Any thread. */
void rbb_stats_record(struct rbb_stats *st, int err, uint64_t latency_ns);
/* Closes every second up to `second` (1-based) into the series. Main
 * thread. */
void rbb_stats_roll(struct rbb_stats *st, uint64_t second);
/* Counts n failures of code err (an rb_err) at once, e.g. the events a
 * reader never got. Any thread. */
void rbb_stats_add_errors(struct rbb_stats *st, int err, uint64_t n);

/* ---- the run ------------------------------------------------------------ */

enum rbb_output { RBB_OUT_TEXT, RBB_OUT_CSV, RBB_OUT_JSON };

struct rbb_workload;

/* The whole configuration of one invocation. */
struct rbb_run {
	const char *endpoints[RBB_ENDPOINTS_MAX];  /* into endpoints_buf */
	size_t endpoints_n;
	char *endpoints_buf;
	unsigned conns;
	unsigned clients;
	enum rbb_output output;
	const char *csv_path;    /* NULL = stdout */
	uint64_t seed;
	uint64_t total;          /* requests of the measured phase */
	uint64_t rate;           /* requests/s, 0 = unlimited */
	const struct rbb_workload *wl;
	void *wl_state;          /* wl->state_bytes, zeroed, then defaults */
	char leader_url[RB_URL_BYTES_MAX];  /* "" until discovered */
	bool progress;           /* print the progress line on stderr */
};

/* ---- workloads ---------------------------------------------------------- */

/* One request the engine asks a workload to make or to check. */
struct rbb_req {
	uint64_t seq;            /* 0 .. total-1 within the phase */
	unsigned slot;           /* 0 .. clients-1: the client making it */
	void *scratch;           /* the slot's own phase->scratch_bytes bytes */
};

enum rbb_route {
	RBB_ROUTE_LEADER,        /* every conn dials the leader */
	RBB_ROUTE_ANY,           /* conn i dials endpoint i mod endpoints_n */
};

/* A batch of requests run by the engine. next() fills *op for req; the
 * pointers in op must stay valid until next() is called again for the same
 * slot (use req->scratch or run-lifetime memory). check() looks at a reply
 * with err == 0 and returns 0 or the rb_err to count (NULL = accept all).
 * Both run on nng threads (see the top of the file). */
struct rbb_phase {
	const char *name;
	enum rbb_route route;
	size_t scratch_bytes;
	void *arg;               /* for the phase's own use */
	int (*next)(struct rbb_run *run, const struct rbb_phase *ph,
	    const struct rbb_req *req, struct rb_op *op);
	int (*check)(struct rbb_run *run, const struct rbb_phase *ph,
	    const struct rbb_req *req, const struct rb_resp *resp);
};

enum rbb_flag_kind {
	RBB_FLAG_U64,            /* uint64_t, decimal, within [min, max] */
	RBB_FLAG_UNSIGNED,       /* unsigned, decimal, within [min, max] */
	RBB_FLAG_BOOL,           /* bool set to true; takes no value */
	RBB_FLAG_STR,            /* const char * borrowed from argv */
};

/* A workload flag: `offset` is into the workload's state struct. A table
 * ends with a NULL name. */
struct rbb_flag {
	const char *name;        /* with the dashes: "--key-size" */
	enum rbb_flag_kind kind;
	size_t offset;
	uint64_t min;
	uint64_t max;
	const char *help;
	const char *meta;        /* value's name in --help (NULL: N or X) */
};

/* A workload: one table entry. parse_arg() takes positional arguments
 * (NULL = none allowed); validate() checks flag combinations after parsing
 * and prints its own message. setup() may run phases of its own (e.g.
 * grant leases) and fills the measured phase. teardown() undoes setup
 * (best effort). Every hook returns 0 or -1 after printing why. */
struct rbb_workload {
	const char *name;
	const char *args;        /* positional arguments for usage, or "" */
	const char *summary;
	const struct rbb_flag *flags;
	size_t state_bytes;
	uint64_t total_default;
	void (*defaults)(void *state);
	int (*parse_arg)(struct rbb_run *run, unsigned index, const char *arg);
	int (*validate)(struct rbb_run *run);
	int (*setup)(struct rbb_run *run, struct rbb_phase *measured);
	void (*teardown)(struct rbb_run *run);
	/* NULL for request workloads: main() runs the measured phase with
	 * the engine. Otherwise the workload runs its own measured part after
	 * setup (rbb_flow.c) and fills st, duration_s included. Returns 0 or
	 * -1 after printing why it could not run. Main thread. */
	int (*run)(struct rbb_run *run, struct rbb_stats *st);
	/* What the report counts ("events", "messages"); NULL = "requests". */
	const char *unit;
};

extern const struct rbb_workload rbb_wl_put;
extern const struct rbb_workload rbb_wl_range;
extern const struct rbb_workload rbb_wl_txn_put;
extern const struct rbb_workload rbb_wl_lease_keepalive;
extern const struct rbb_workload rbb_wl_watch;
extern const struct rbb_workload rbb_wl_pubsub;
extern const struct rbb_workload rbb_wl_queue;

/* Key `num` as a key_size-byte decimal string, zero-padded on the left
 * (the caller checked that it fits: rbb_key_digits(space-1) <= key_size). */
void rbb_key_format(uint8_t *buf, size_t key_size, uint64_t num);
unsigned rbb_key_digits(uint64_t num);
/* splitmix64: a well-mixed 64-bit function of x (seeded key choice). */
uint64_t rbb_mix64(uint64_t x);

/* ---- engine (rbb_engine.c) ---------------------------------------------- */

/* Runs `total` requests of phase ph with run->clients in flight over
 * run->conns sockets, recording into st when st is not NULL (with the
 * progress line and the per-second series). Blocks until every request has
 * finished. Returns 0 (even when requests failed: they are counted), or -1
 * after printing why the run could not start (no leader, dial failed, out
 * of memory). Main thread. */
int rbb_engine_run(struct rbb_run *run, const struct rbb_phase *ph,
    uint64_t total, struct rbb_stats *st);

/* Finds the leader's client URL into run->leader_url by asking every
 * endpoint for its status (and the leader's member list entry), retrying
 * for up to timeout_ms. Returns 0 or -1 (message printed when loud). */
int rbb_find_leader(struct rbb_run *run, int timeout_ms, bool loud);

/* One blocking request to url with its own socket; fills *resp (free it
 * with rb_resp_free()). Returns resp->err, RB_ERR_UNAVAILABLE or
 * RB_ERR_TIMEOUT on transport failure. Any thread. */
int rbb_call(const char *url, const struct rb_op *op, struct rb_resp *resp,
    int timeout_ms);

uint64_t rbb_now_ns(void);

/* ---- flows (rbb_flow.c) -------------------------------------------------
 * The engine above keeps `clients` interchangeable slots busy with a fixed
 * number of requests. Watchers, subscribers and consumers are not
 * interchangeable: each follows its own chain (a watch position, the
 * messages it claimed). A flow runs such "actors": each has one nng
 * context on one of the flow's req sockets and one request in flight,
 * built by its next() and handed to its reply(), both on nng threads (one
 * call at a time per actor, so an actor's own state needs no lock).
 * Leader changes are not followed: a failed request is the actor's to
 * count and retry. */

/* Messages of one watch, pubsub or queue run (--put-total, --total): the
 * checks keep a few bytes per message. */
#define RBB_FLOW_MESSAGES_MAX 10000000ull
/* A run in which nothing was delivered, acked or written for this long
 * ends; what is missing then is counted as errors (etcd-load waits 30 s
 * after its last put). */
#define RBB_FLOW_STALL_MS 30000
/* Readers must all have answered their first poll within this long. */
#define RBB_FLOW_READY_TIMEOUT_MS 10000
/* next() returns this when the actor has nothing more to do. */
#define RBB_ACTOR_DONE 1

typedef struct rbb_flow rbb_flow;

struct rbb_actor_ops {
	/* Fills *op (zeroed) with the actor's next request; its pointers
	 * must stay valid until the reply. Returns 0 to send it,
	 * RBB_ACTOR_DONE, or an rb_err (the actor is done; next() counts
	 * it where it matters). The request may wait on the server for
	 * op->u.watch.wait_ms (WATCH) or op->u.queue.wait_ms (QUEUE_POP) on
	 * top of RBB_REQUEST_TIMEOUT_MS. */
	int (*next)(void *actor, struct rb_op *op);
	/* The outcome: err 0 with the decoded reply, or an rb_err (resp is
	 * then the server's error reply, or NULL after a transport error).
	 * resp is borrowed for the call. Returns ms to wait before the next
	 * request (0 = at once). */
	int (*reply)(void *actor, int err, const struct rb_resp *resp);
};

/* What a flow waits for: count() reaching target(), both called by the
 * main thread while the actors run. target() may shrink once the writes
 * are over (the events of failed writes will not come). */
struct rbb_flow_goal {
	uint64_t (*count)(void *arg);
	uint64_t (*target)(void *arg);
	void *arg;
};

/* A flow recording into st (the workload records; the flow rolls the
 * series and prints progress). Returns 0 or -1 (out of memory, printed). */
int rbb_flow_new(struct rbb_run *run, struct rbb_stats *st, rbb_flow **out);
/* Opens a req socket dialling url; returns its index (>= 0) or -1
 * (printed). */
int rbb_flow_socket(rbb_flow *f, const char *url);
/* Adds an actor with its own context on socket `sock`; ops and arg are
 * borrowed until rbb_flow_free(). Returns its index or -1 (printed). */
int rbb_flow_actor(rbb_flow *f, int sock, const struct rbb_actor_ops *ops,
    void *arg);
/* Sends the first requests of actors [first, first + n). Main thread. */
void rbb_flow_start(rbb_flow *f, unsigned first, unsigned n);
/* Something useful happened (a write acknowledged): not a stall. Any
 * thread. */
void rbb_flow_touch(rbb_flow *f);
/* Waits, rolling the series and printing progress from start_ns, until
 * goal->count() reaches goal->target(), every actor is done, or nothing
 * happened for RBB_FLOW_STALL_MS; then stops every actor (requests in
 * flight are cancelled). Returns true when the goal was reached. Main
 * thread; once per flow. */
bool rbb_flow_wait(rbb_flow *f, uint64_t start_ns,
    const struct rbb_flow_goal *goal);
/* Stops and frees everything. NULL-safe. Main thread. */
void rbb_flow_free(rbb_flow *f);

/* ---- streams (rbb_stream.c): readers of a prefix for watch and pubsub ---
 * Each reader is a chain of watch polls (RB_OP_WATCH) of the prefix from
 * start_rev, continuing from each reply's next_rev/next_sub. Every event
 * it accepts is recorded in st with its delivery latency (now minus the
 * send time that stamp() recovers from it). A reader checks that
 * revisions only grow (no duplicate, nothing out of order) and keeps a
 * hash of the revisions it accepted, compared at the end with the hash
 * of the revisions the writers were given: equal means every reader got
 * exactly the writes, in the same order. */

struct rbb_stream;

/* The send time (rbb_now_ns() clock) recovered from an event of the
 * stream's prefix; 0 or an rb_err for an event that is not one of the
 * run's. Any thread. */
typedef int (*rbb_stamp_fn)(const uint8_t *prefix, size_t prefix_len,
    const struct rb_event *ev, uint64_t *sent_ns);

/* Readers of one connection sharing a chain of watch polls, by default
 * (--per-poll): a reply's RB_WATCH_EVENTS_MAX events go a long way with
 * 10 busy readers, not with 100. */
#define RBB_READERS_PER_POLL 10u

/* Creates the stream's n readers, spread round robin over the flow's
 * sockets first_sock .. first_sock + socks_n - 1: the readers of a socket
 * share chains of polls of per_poll watches each (one actor of f per
 * chain; at most RB_WATCHES_PER_POLL_MAX), or with per_poll 1 each reader
 * is an actor with its own chain. prefix is copied; want = events each
 * reader must get. Returns NULL (printed) when out of memory. */
struct rbb_stream *rbb_stream_new(rbb_flow *f, struct rbb_stats *st,
    const uint8_t *prefix, size_t prefix_len, rb_rev start_rev,
    uint64_t want, unsigned readers_n, int first_sock, unsigned socks_n,
    unsigned per_poll, rbb_stamp_fn stamp);
/* The actors rbb_stream_new added to the flow (to start them). */
unsigned rbb_stream_actors(const struct rbb_stream *s);
/* Readers whose first poll (wait 0) was answered. Any thread. */
unsigned rbb_stream_ready(const struct rbb_stream *s);
/* Events accepted by all readers (for rbb_flow_goal). */
uint64_t rbb_stream_count(void *stream);
/* rbb_now_ns() of the latest accepted event (0 = none). */
uint64_t rbb_stream_last_ns(const struct rbb_stream *s);
/* After rbb_flow_wait(): compares the readers with the writers' revs
 * (written_n of them, in any order; NULL when some writes failed: then
 * only counts and order are checked), counts missing events and
 * anomalies as errors in st and prints a line per kind of problem on
 * stderr. Returns the number of errors added. Main thread. */
uint64_t rbb_stream_check(struct rbb_stream *s, rb_rev *revs,
    uint64_t written_n);
void rbb_stream_free(struct rbb_stream *s);

/* A whole fan-out run (watch, pubsub): `readers` readers of prefix from
 * the leader's revision + 1, on min(--conns, readers) sockets dialled
 * round robin over the endpoints; once every reader answered its first
 * poll, `writers` writers (min(--conns, writers) sockets to the leader)
 * make `total` writes under the prefix. Throughput: events delivered over
 * first write to last delivery; errors: missing events and anomalies
 * (rbb_stream_check). */
struct rbb_fanout {
	const uint8_t *prefix;
	size_t prefix_len;
	unsigned readers;
	unsigned writers;
	uint64_t total;
	size_t buf_bytes;        /* each writer's scratch */
	const struct rbb_writer_ops *wops;
	void *warg;
	rbb_stamp_fn stamp;
	unsigned per_poll;       /* see rbb_stream_new; 0 = RBB_READERS_PER_POLL */
};

/* Runs it and fills st (duration_s included); sets run->clients to the
 * number of writers for the report. Returns 0, or -1 (printed) when it
 * could not run. Main thread. */
int rbb_fanout_run(struct rbb_run *run, struct rbb_stats *st,
    const struct rbb_fanout *fo);

/* ---- writers (rbb_flow.c): the puts, publishes or pushes of a flow ----
 * n actors sharing one counter of `total` writes, each sent once (a write
 * whose outcome is unknown is never re-sent: it could be applied twice). */

struct rbb_writers;

struct rbb_writer_ops {
	/* Fills *op for write number seq (0 .. total-1); buf is the
	 * writer's own buf_bytes bytes, valid until the reply. Any thread. */
	void (*build)(void *arg, uint64_t seq, uint8_t *buf, struct rb_op *op);
	/* The revision a successful reply gave the write (> 0). */
	rb_rev (*revision)(const struct rb_resp *resp);
};

/* Adds n writer actors to f on sockets first_sock .. first_sock +
 * socks_n - 1 (round robin). ops and arg are borrowed until
 * rbb_writers_free(). Returns NULL (printed) when out of memory. */
struct rbb_writers *rbb_writers_new(rbb_flow *f, unsigned n, int first_sock,
    unsigned socks_n, uint64_t total, size_t buf_bytes,
    const struct rbb_writer_ops *ops, void *arg);
/* The revision of each write by seq (0: failed or not sent). Read it
 * after rbb_flow_wait(). */
rb_rev *rbb_writers_revs(struct rbb_writers *w);
/* Writes answered so far, successful or not (total = all are over). */
uint64_t rbb_writers_answered(const struct rbb_writers *w);
/* Writes that failed, and the first error seen (0 = none). */
uint64_t rbb_writers_failed(const struct rbb_writers *w, int *first_err);
void rbb_writers_free(struct rbb_writers *w);

/* ---- helpers of the flow workloads ------------------------------------- */

/* Writes the send-time stamp (now) into buf[0..8) and returns it. */
uint64_t rbb_stamp_put(uint8_t *buf);
uint64_t rbb_stamp_get(const uint8_t *buf);
/* A run-unique name part: hex of the wall clock in ns and the pid. */
void rbb_run_nonce(char *buf, size_t cap);
/* Deletes every key under prefix at the leader (best effort: the run's
 * keys, after it). */
void rbb_delete_prefix(struct rbb_run *run, const uint8_t *prefix,
    size_t prefix_len);
/* The store revision at the leader (header of an ENDPOINT_STATUS);
 * -1 (printed) when it cannot be asked. */
int rbb_leader_revision(struct rbb_run *run, rb_rev *out);

/* ---- reports (rbb_report.c) --------------------------------------------- */

/* Writes the final report in run->output format. Returns 0, or -1 when
 * the csv file cannot be written (message printed). */
int rbb_report(const struct rbb_run *run, const struct rbb_stats *st);
/* The progress line (stderr) during a run; `done` = requests finished.
 * final = the run ended: clear a tty line. Main thread. */
void rbb_progress(const struct rbb_run *run, struct rbb_stats *st,
    uint64_t done, uint64_t total, double elapsed_s, bool final);

#endif /* RBB_H */
