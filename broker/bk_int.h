/*
 * bk_int.h - the server's state shared by the files of broker/ (loop,
 * ready handling, client requests, the reader pool). Not a public
 * interface: everything here is touched by the loop thread only, except the
 * fields marked "mu" (guarded by bk_server.mu), the reader pool (struct
 * bk_readers, its own lock) and a request handed to the pool (owned by the
 * reader serving it until its reply is sent).
 */
#ifndef BK_INT_H
#define BK_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <nng/nng.h>

#include "bk.h"
#include "logstore.h"
#include "raftbus.h"
#include "rb_wire.h"
#include "store.h"

/* Watch polls that exist at once (parked, queued for a reader or being
 * served); one more is answered "too many requests". */
#define BK_WATCH_POLLS_MAX 1024u
/* Of those, the most from one client connection, so that one connection
 * cannot take them all; one more is answered "too many requests". */
#define BK_WATCH_POLLS_PER_CONN_MAX 256u
/* Bytes of events (keys, values, prev values) per watch reply, about. */
#define BK_WATCH_REPLY_BYTES_MAX (4u * 1024u * 1024u)
/* Client request contexts on the rep0 socket = most client requests in
 * flight at once (each further request waits in nng's queue): every watch
 * poll may hold one while it waits, and 512 more serve other requests. */
#define BK_CLIENT_CTX_MAX (BK_WATCH_POLLS_MAX + 512u)
/* Replies the loop sends itself per turn before it hands the rest to the
 * sender thread: a lone reply is not worth a thread hand-off. */
#define BK_REPLIES_INLINE_MAX 2u
/* Peer messages waiting for the loop; beyond, new ones are dropped. */
#define BK_PEER_INBOX_MAX 4096u
/* Bytes of peer messages waiting for the loop; beyond, new ones are
 * dropped. A leader keeps at most RL_INFLIGHT_BYTES_MAX_DEFAULT (32 MiB)
 * in flight to a follower: this leaves room for that and more, while
 * 4096 messages of BK_PEER_MSG_BYTES_MAX (64 GiB) could not be held. */
#define BK_PEER_INBOX_BYTES_MAX (256u * 1024u * 1024u)
/* Largest snapshot a member stages from a peer: as large as the store's own
 * map may grow (store.h: 4 x quota + headroom); a peer streaming in-order
 * chunks past it is dropped instead of filling the disk. */
#define BK_SNAPSHOT_HEADROOM_BYTES (1024ull * 1024u * 1024u)
/* The store is applied without an fsync per batch (its Raft log is the
 * durable record: a member that crashes re-applies the committed entries
 * after the store's last flushed applied index, or restores the log's
 * snapshot). A background thread flushes it this often, and it is flushed
 * before the log is compacted and at close. */
#define BK_STORE_SYNC_INTERVAL_MS 1000
/* A stop step still running after BK_CLOSE_SLOW_MS is logged; one running
 * for BK_CLOSE_STALL_MS once the storage is closed (everything durable)
 * ends the process instead of waiting on the network library (nng 1.5 can
 * hang in nng_close, nanomsg/nng#1543). Times count per step. */
#define BK_CLOSE_SLOW_MS 2000
/* A loop turn longer than this is logged (with the step it is in). */
#define BK_LOOP_STALL_MS 2000
#define BK_CLOSE_STALL_MS 6000
/* Proposals awaiting commit (slots keyed by log index; power of two). */
#define BK_PENDING_MAX 8192u
/* Client requests wait at most this long for commit / read index. */
#define BK_REQUEST_TIMEOUT_MS 5000
/* How often each member tells its peers its name and client URL. */
#define BK_HELLO_INTERVAL_MS 1000
/* Lease revokes the leader proposes per loop turn. */
#define BK_LEASE_REVOKES_PER_TURN_MAX 128u
/* Leases tracked for expiry. */
#define BK_LEASES_MAX 1000000u
/* Reader threads serving reads (range, lease time-to-live, lease list,
 * status) off the loop thread, each on its own LMDB read transaction. */
#define BK_READERS 2u
/* Reads waiting for a reader: at most --max-queued-reads (default 256,
 * at most BK_READ_QUEUE_MAX in bk.h); beyond, a read is answered "too many
 * requests". Watch polls queue beside them (at most BK_WATCH_POLLS_MAX,
 * bounded by their own limit). */
#define BK_READ_RING_MAX (BK_READ_QUEUE_MAX + BK_WATCH_POLLS_MAX)
/* A read still queued this long after the loop handed it over is answered
 * "request timed out" instead of being served: shorter than a client's
 * command timeout (5 s), so a deep queue of slow reads gives clients an
 * answer, never silence. */
#define BK_READ_WAIT_MS_MAX 1500
/* Extra bytes of framing allowed over --max-request-bytes before a request
 * is refused as too large; nng drops the connection of anything over twice
 * that (NNG_OPT_RECVMAXSZ). */
#define BK_REQUEST_OVERHEAD_BYTES (64u * 1024u)

enum bk_creq_state {
	BK_CREQ_RECV = 0, /* nng_ctx_recv in progress (aio owned by nng) */
	BK_CREQ_LOOP,     /* handed to the loop */
	BK_CREQ_SEND,     /* nng_ctx_send in progress */
	BK_CREQ_READER,   /* handed to the reader pool: a reader replies */
};

/* One client request context (a rep0 nng_ctx and its aio). */
struct bk_creq {
	struct bk_server *s;
	nng_ctx ctx;
	nng_aio *aio;
	int state;                /* enum bk_creq_state */
	nng_msg *req;             /* the request while in the loop */
	struct bk_creq *next;     /* inbox / read list link */
	int64_t deadline_ms;
	uint64_t read_seq;        /* ReadIndex round it waits for; 0 = none */
	int64_t read_issued_ms;
	bool read_ready;
	rl_index read_index;
};

/* What a reader needs to answer one read. The loop fills it; everything the
 * reader must not take from the loop's state (term, revision, Raft status,
 * lease expiry) is a snapshot taken when the read was handed over. */
struct bk_read {
	struct bk_creq *r;        /* state BK_CREQ_READER: the reader's */
	rb_wire_request *wr;      /* decoded request (owned) */
	uint64_t req_id;
	uint64_t cluster_id, member_id;
	rl_term term;             /* loop's term at hand-over (reply header) */
	st_rev revision;          /* header revision if the read has none */
	int64_t lease_left_s;     /* lease TTL: seconds left; -1 = untracked */
	rl_id leader;             /* status: the loop's Raft view */
	rl_index raft_index;
	rl_term raft_term;
	rl_index applied;
	/* a watch poll (wr is then NULL): the poll, the server (only for
	 * its mu-guarded hand-back list and wake pipe) and the loop's clock */
	struct bk_wpoll *watch;
	struct bk_server *srv;
	int64_t now_ms;           /* the loop's clock at hand-over */
};

/* The reader pool (bk_reader.c). All fields under mu; the threads array is
 * written by the loop thread only before the readers start / after they
 * are joined. */
struct bk_readers {
	pthread_mutex_t mu;
	pthread_cond_t work;      /* a read queued, pause lifted, stopping */
	pthread_cond_t idle;      /* a reader finished its read */
	pthread_t threads[BK_READERS];
	uint32_t threads_n;
	bool inited;
	struct bk_read queue[BK_READ_RING_MAX];  /* ring */
	uint32_t head, count;
	uint32_t watch_count;     /* watch polls among count */
	uint32_t active;          /* reads being served right now */
	bool paused;              /* no new read starts (store restore) */
	bool stopping;
	uint64_t served_n;        /* reads answered by the pool */
	uint64_t refused_n;       /* reads refused: queue full */
};

struct bk_wpoll;              /* bk_watch.c */

struct bk_pending {
	struct bk_creq *req;      /* NULL = internal proposal (lease revoke) */
	rl_index index;
	rl_term term;
	int64_t deadline_ms;
};

struct bk_lease {
	st_lease_id id;
	int64_t ttl_s;
	int64_t expiry_ms;
	int64_t revoke_sent_ms;   /* 0 = none in flight */
};

/* Messages (and their bytes) to one peer waiting for its send aio
 * (bk_server.c). */
#define BK_PEER_OUTQ_MSGS_MAX 256
#define BK_PEER_OUTQ_BYTES_MAX (64u * 1024u * 1024u)

struct bk_peer {
	struct bk_member *m;      /* in cfg.members */
	nng_socket sock;          /* push0 dialed to its peer URL */
	bool open;
	/* Sends are asynchronous: the loop never waits on nng (nng_sendmsg
	 * allocates an aio, draws a random id and waits on a condition
	 * variable for every message). One aio; the messages behind it
	 * queue here, and a full queue drops (Raft retransmits). */
	nng_aio *aio;
	pthread_mutex_t mu;
	nng_msg *outq[BK_PEER_OUTQ_MSGS_MAX];  /* mu: ring */
	uint32_t outq_head, outq_n;            /* mu */
	size_t outq_bytes;                     /* mu: bodies in the ring */
	bool busy;                             /* mu: the aio is in use */
	bool closing;                          /* mu */
};

struct bk_server {
	struct bk_config cfg;
	rl_logstore *ls;
	struct rl_storage storage;
	st_store *st;
	struct rl_node *node;
	struct rl_conf_state bootstrap;
	char snap_dir[BK_PATH_BYTES_MAX + 16];
	uint64_t snapshot_bytes_max;   /* staging limit, set at open */

	/* Sockets and the inbox (mu guards the inbox and `stopping`). */
	nng_socket peer_in;       /* pull0 on the listen peer URL */
	nng_aio *peer_aio;
	struct bk_peer peers[BK_MEMBERS_MAX];
	uint32_t peers_n;
	nng_socket client_sock;   /* rep0 on the listen client URL */
	struct bk_creq *creqs[BK_CLIENT_CTX_MAX];
	uint32_t creqs_n;
	pthread_mutex_t mu;
	nng_msg *peer_inbox[BK_PEER_INBOX_MAX];   /* mu: ring */
	uint32_t peer_head, peer_count;           /* mu */
	size_t peer_bytes;                        /* mu: bodies in the ring */
	struct bk_creq *client_head, *client_tail; /* mu */
	bool stopping;                            /* mu */
	int wake_fd[2];           /* pipe: a byte wakes the loop */
	/* Set by whoever writes the wake byte, cleared by the loop before it
	 * drains its inputs: one byte (one syscall, one wake-up) per turn,
	 * not one per message. */
	atomic_bool wake_pending;
	pthread_t loop_thread;    /* the opener's: bk_server_run runs there */
	/* What the loop is doing and how many turns it made: the store
	 * flusher reports a loop stuck for BK_LOOP_STALL_MS or more. */
	_Atomic(const char *) loop_step;
	atomic_uint_fast64_t loop_turns;
	/* The reply sender: the loop hands replies to it, so that the socket
	 * writes and the wake-ups of nng's threads do not run on the loop
	 * (bk_client.c). One slot per client context: never full. */
	struct bk_sender {
		pthread_mutex_t mu;
		pthread_cond_t cv;
		pthread_t thread;
		bool started;
		bool stop;                               /* mu */
		struct bk_creq *ring[BK_CLIENT_CTX_MAX]; /* mu */
		uint32_t head, n;                        /* mu */
		uint32_t inline_n;  /* loop: replies sent inline this turn */
	} sender;
	/* The newest hard state whose only change, the commit index, was not
	 * written: Raft does not need it durable (must_sync), and a restart
	 * counts what the store applied as committed. Written with the next
	 * save, before a log compaction and at stop. */
	struct rl_hard_state hs_unsaved;
	bool hs_unsaved_set;

	/* Loop state. */
	int64_t now_ms;
	int64_t next_tick_ms;
	int64_t next_hello_ms;
	int64_t next_sweep_ms;
	uint8_t role;
	rl_id leader;
	rl_term term;
	rl_index applied;
	rl_term applied_term;
	st_rev revision;          /* store revision after the last apply */
	struct bk_pending pending[BK_PENDING_MAX];
	uint32_t pending_n;
	struct bk_creq *reads_new;  /* linearizable reads not yet issued */
	struct bk_creq *reads_wait; /* issued, waiting for index / apply */
	uint64_t read_seq;
	int64_t reads_retry_ms;     /* no leader: next ReadIndex attempt */
	struct bk_lease *leases;
	size_t leases_n, leases_cap;
	/* Snapshots: the newest file (not yet the log's snapshot) and the
	 * index of the last one taken. */
	rl_index snap_next_index;
	rl_term snap_next_term;
	rl_index snap_last_index;
	/* The snapshot being copied off the loop (bk_ready.c). */
	struct bk_snapper {
		pthread_t thread;
		bool running;             /* loop */
		atomic_bool done;         /* set by the thread when it ends */
		int rc;                   /* the thread's st_snapshot_file result */
		char tmp[BK_PATH_BYTES_MAX + 128];
	} snapper;
	int64_t next_compact_ms;
	st_rev compact_last_rev;
	struct bk_readers readers;
	bool failed;              /* storage failed: stop the member */
	/* The store flusher thread (BK_STORE_SYNC_INTERVAL_MS). */
	pthread_t syncer;
	bool syncer_started;
	pthread_mutex_t sync_mu;  /* held by each sync and by st_restore_file */
	pthread_cond_t sync_cv;
	bool sync_stop;           /* sync_mu */
	/* Watch polls (bk_watch.c). */
	struct bk_wpoll *watch_parked;  /* waiting for a revision or deadline */
	struct bk_wpoll *watch_back;    /* mu: handed back by readers */
	uint32_t watch_live_n;          /* mu: polls that exist */
	/* mu: polls that exist per client connection (nng pipe id), the
	 * connections with any first; at most one per poll */
	struct bk_conn_polls { uint32_t pipe, n; } watch_conns[BK_WATCH_POLLS_MAX];
	uint32_t watch_conns_n;
	st_rev watch_scan_rev;          /* revision at the last scan */
	int64_t watch_next_deadline_ms; /* earliest parked deadline */
	uint64_t saves_n;         /* log saves (fsyncs) with entries */
	uint64_t saved_entries_n; /* entries they wrote: group commit ratio */
};

int64_t bk_now_ms(void);
/* Loop thread: writes (fsync'd) the commit index persist() left unsaved,
 * if any. BK_OK or BK_ERR_IO (logged). */
int bk_hard_state_flush(struct bk_server *s);
/* Loop thread: names what the loop does now (for the stall report). */
static inline void bk_loop_step(struct bk_server *s, const char *what)
{
	atomic_store_explicit(&s->loop_step, what, memory_order_relaxed);
}
/* Any thread: makes the loop turn (at most one wake byte in flight). */
void bk_wake(struct bk_server *s);
/* nng callback thread: puts a received peer message in the loop's inbox
 * (which then owns it). false = inbox full (BK_PEER_INBOX_MAX messages or
 * BK_PEER_INBOX_BYTES_MAX bytes) or stopping: the caller keeps msg. */
bool bk_peer_inbox_put(struct bk_server *s, nng_msg *msg);
/* Listens on every URL of a comma-separated list; 0 or an nng error. */
int bk_listen_all(nng_socket sock, const char *urls);

/* bk_ready.c: handle one rl_ready (persist, send, apply, snapshot). Returns
 * BK_OK or BK_ERR_IO (member must stop). */
int bk_ready_handle(struct bk_server *s);
/* Starts a snapshot copy on its own thread when snapshot_count entries
 * were applied since the last; when a copy has ended, names it after the
 * index it holds and compacts the log to the previous one. BK_OK or
 * BK_ERR_IO (member must stop). */
int bk_snapshot_maybe(struct bk_server *s);
/* Waits for a snapshot copy in progress and throws it away (before a
 * store restore and at stop). */
void bk_snapshot_abort(struct bk_server *s);
/* Startup: forget stale snapshot files, find the newest one kept. */
int bk_snapshot_scan(struct bk_server *s);
/* A received RL_MSG_SNAPSHOT chunk, before rl_step: writes it into the
 * staging file if the core will take it (rl_snapshot_chunk_wanted), else
 * leaves the file alone. false = it could not be written (logged): drop
 * the message instead of stepping it, the leader resends the chunk. */
bool bk_snapshot_stage(struct bk_server *s, const struct rl_msg *m);
/* Startup, before the node is built: a crash between installing a
 * received snapshot in the log and restoring the store leaves the store
 * behind the log's snapshot; restores it from the snapshot file (or the
 * staging file not yet renamed). BK_OK or BK_ERR_IO. */
int bk_snapshot_recover(struct bk_server *s);
/* Path of snapshot (index, term) in buf. */
void bk_snapshot_path(const struct bk_server *s, rl_index index, rl_term term,
    bool staging, char *buf, size_t len);
/* Send one Raft message to its peer (drops it when the queue is full). */
void bk_peer_send(struct bk_server *s, struct rl_msg *m);

/* bk_lease.c: the leader's lease expiry table. */
void bk_lease_set(struct bk_server *s, st_lease_id id, int64_t ttl_s);
void bk_lease_remove(struct bk_server *s, st_lease_id id);
struct bk_lease *bk_lease_find(struct bk_server *s, st_lease_id id);
/* Every lease gets a full TTL from now (new leader; etcd's promote). */
void bk_lease_renew_all(struct bk_server *s);
/* Reload from the store (startup, after a snapshot install). */
int bk_lease_reload(struct bk_server *s);
/* Leader: propose revokes for expired leases. */
void bk_lease_expire(struct bk_server *s);
/* etcd's minimum TTL: ceil(1.5 x election timeout) in seconds. */
int64_t bk_lease_min_ttl_s(const struct bk_server *s);

/* bk_client.c: client socket and request handling. */
int bk_client_open(struct bk_server *s);
void bk_client_close(struct bk_server *s);
/* A request the loop took from the inbox. */
void bk_client_handle(struct bk_server *s, struct bk_creq *r);
/* An applied entry that a client proposed: reply with its result. */
void bk_client_reply_applied(struct bk_server *s, struct bk_creq *r,
    const struct st_op *op, const struct st_result *res);
/* Reply with an error (code rb_err, msg may be NULL). */
void bk_client_reply_error(struct bk_server *s, struct bk_creq *r, int err,
    const char *msg);
/* Answer a linearizable read now (its read index is applied): hands it to
 * the reader pool, or answers "too many requests" when the pool is full. */
void bk_client_answer_read(struct bk_server *s, struct bk_creq *r);
/* READER thread: runs the store read of rd on its own LMDB read
 * transaction, encodes the reply and sends it on rd->r's nng context, then
 * frees rd->wr. Touches only rd, rd->r (the reader's until the send is
 * started; nng's after) and st: never the loop's state. */
void bk_client_serve_read(st_store *st, struct bk_read *rd);

/* bk_reader.c: the reader pool. Every function is called by the loop
 * thread (or by open/close, which run when the loop does not). */
/* Starts BK_READERS threads. BK_OK or BK_ERR_NOMEM (none left running). */
int bk_reader_start(struct bk_server *s);
/* Queues a read; on true the pool owns *rd (rd->r, rd->wr) and a reader
 * replies. false = queue full (counted) or stopping: the caller keeps
 * ownership and answers the request itself. */
bool bk_reader_submit(struct bk_server *s, const struct bk_read *rd);
/* Waits until no read is in progress and keeps new ones from starting,
 * for st_restore_file (which must not run beside any read). Queued reads
 * stay queued. */
void bk_reader_pause(struct bk_server *s);
void bk_reader_resume(struct bk_server *s);
/* Stops the pool: reads in progress finish and reply, queued ones are
 * dropped unanswered (their requests stay with the context, freed by
 * bk_client_close), the threads are joined. Idempotent; no-op if never
 * started. Must run before bk_client_close and st_close. */
void bk_reader_stop(struct bk_server *s);

/* Loop thread: a reply with the loop's header (revision 0 = the loop's). */
void bk_client_send(struct bk_server *s, struct bk_creq *r, uint64_t req_id,
    uint8_t op, struct rb_resp *resp, st_rev revision);
/* Loop thread: an error reply (msg NULL = rb_strerror); "not leader"
 * carries the leader hint. */
void bk_client_reply_err(struct bk_server *s, struct bk_creq *r,
    uint64_t req_id, uint8_t op, int err, const char *msg, st_rev compact_rev);

/* bk_watch.c: watch long polls. */
/* A RB_OP_WATCH request: answered now, handed to the reader pool, or
 * parked until the revision moves or its wait ends. Returns true when it
 * kept wr. */
bool bk_watch_handle(struct bk_server *s, struct bk_creq *r, uint64_t id,
    rb_wire_request *wr);
/* READER thread: reads the events of a poll and replies, or hands a poll
 * that found nothing back to the loop to wait (see bk_watch.c). */
void bk_watch_serve(st_store *st, struct bk_read *rd);
/* Loop thread, every turn: wakes parked polls the revision passed, answers
 * those whose wait ended, re-parks the ones readers handed back. */
void bk_watch_turn(struct bk_server *s);
/* Loop thread, at stop: answers nothing more, frees every parked poll. */
void bk_watch_close(struct bk_server *s);
/* A queued watch read the pool dropped at stop: frees it (and its group). */
void bk_watch_dropped(struct bk_wpoll *wp);
/* Any thread owning r: sends buf[0..len) (malloc'ed, taken; NULL = no
 * reply, the client times out) as r's reply. */
void bk_creq_send(struct bk_creq *r, uint8_t *buf, size_t len);

/* bk_pubsub.c: publish, dedup window and topic retention. */
/* A RB_OP_PUBLISH request (leader: proposed as one txn). */
void bk_publish_handle(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct rb_op *op);
/* The applied result of a publish's txn: the publish reply. */
void bk_publish_reply(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct st_result *res);
/* Loop thread, every turn (acts when leader and due): retention and dedup
 * window sweeps, proposed as deletes. */
void bk_pubsub_tick(struct bk_server *s);

/* bk_queue.c: work queues (op codes RB_OP_QUEUE_PUSH..RB_OP_QUEUE_ACK_BATCH). */
#define BK_QUEUE_OP(t) \
    ((t) >= RB_OP_QUEUE_PUSH && (t) <= RB_OP_QUEUE_ACK_BATCH)
/* A queue request; returns true when it kept wr. */
bool bk_queue_handle(struct bk_server *s, struct bk_creq *r, uint64_t id,
    rb_wire_request *wr);
/* Loop thread: a queue read (STATS, DLQ) whose ReadIndex is applied. */
void bk_queue_serve_read(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct rb_op *op);
/* The applied result of a queue op proposed for request r. */
void bk_queue_reply(struct bk_server *s, struct bk_creq *r, uint64_t id,
    uint8_t op, const struct st_result *res);
/* Loop thread, every turn: visibility expiry, delayed messages, parked
 * pops (acts when leader and due). */
void bk_queue_tick(struct bk_server *s);

/* Pending proposals (bk_server.c). */
int bk_pending_add(struct bk_server *s, struct bk_creq *r, rl_index index,
    rl_term term);
struct bk_pending *bk_pending_find(struct bk_server *s, rl_index index);
void bk_pending_clear(struct bk_server *s, struct bk_pending *p);
/* Proposes an encoded op; on success the request waits for apply (r may be
 * NULL). Returns an rb_err for the reply on failure. */
int bk_propose_op(struct bk_server *s, struct bk_creq *r,
    const struct st_op *op);

#endif /* BK_INT_H */
