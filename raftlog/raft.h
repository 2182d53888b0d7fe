/*
 * raft.h - the Raft consensus core of raftbus, as a pure state machine.
 *
 * The core performs no I/O: no sockets, threads, clocks, files or global
 * randomness. It is driven by inputs and hands back outputs, in the manner of
 * etcd-io/raft's RawNode:
 *
 *   inputs   rl_tick()            one logical clock tick (the shell decides
 *                                 how long a tick is)
 *            rl_step()            a message from a peer
 *            rl_propose()         a client proposal (leader only)
 *            rl_propose_conf_change(), rl_transfer_leadership(),
 *            rl_read_index(), rl_campaign()
 *            rl_advance()         "storage finished": the hard state and
 *                                 entries of a ready are persisted, its
 *                                 messages sent, its committed entries
 *                                 applied and its snapshot installed
 *            rl_snapshot_taken()  the application took a snapshot; the log
 *                                 prefix it covers may be dropped
 *   output   rl_ready()           one batch: hard state + entries to persist,
 *                                 messages to send, entries to apply, a
 *                                 snapshot to install, read states.
 *
 * THE READY CONTRACT (persist before send, thesis §3.8 / paper Figure 2):
 *   1. rl_ready(n, &rd).
 *   2. rd.msgs_now may be sent at once, in parallel with step 3. They are the
 *      leader's own AppendEntries/heartbeats/snapshot chunks/TimeoutNow, which
 *      depend on nothing unpersisted (thesis §10.2.1: the leader writes its
 *      log in parallel with replicating it).
 *   3. Persist, in this order and atomically per item: if rd.has_snapshot,
 *      install it (state machine from the staged bytes, log storage reset so
 *      that first_index = meta.index + 1 and term(meta.index) = meta.term);
 *      then rd.entries (first deleting every stored entry with index >=
 *      rd.entries[0].index: that is how a conflicting suffix is truncated,
 *      paper §5.3); then rd.hard_state if rd.has_hard_state. If rd.must_sync,
 *      make it durable (fsync) before step 4.
 *   4. Only then send rd.msgs: votes, append acknowledgements and every other
 *      message that promises something about persisted state. When a ready
 *      carries only the first ready_entries_max of the unstable entries,
 *      an acknowledgement covering the rest is held back and comes with
 *      the ready that persists them.
 *   5. Apply rd.committed (in order). rd.committed never contains an entry
 *      that is not yet in rd.entries-or-storage, but it MAY contain entries
 *      of this same ready's rd.entries: apply after step 3.
 *   6. Take rd.read_states (see rl_read_index()).
 *   7. rl_advance(n, &rd). This is the "persisted up to index N" input: N is
 *      the last index of rd.entries. The leader counts itself towards a
 *      commit quorum only for entries reported persisted here.
 *   rl_step()/rl_tick()/rl_propose()... may be called between rl_ready() and
 *   rl_advance(); rl_ready() may not be called again before rl_advance().
 *
 * OWNERSHIP: everything a ready points to (entries, messages, their entries
 * and data, read states) is owned by the node and valid until rl_advance()
 * for that ready (or rl_node_free()). The caller must not free it; it may
 * write the snapshot chunk fields of messages in rd.msgs_now (see SNAPSHOTS).
 *
 * THREADS: a node is not thread-safe; one thread at a time (the broker's raft
 * loop). The storage callbacks are called from within the node's functions,
 * on that thread.
 *
 * MEMBERSHIP: single-server changes (thesis §4.1). A configuration entry
 * takes effect on a member as soon as it is appended to its log (not when
 * committed) and is reverted if that entry is truncated. A leader accepts one
 * change at a time: a new one only once the previous one is committed and
 * once it has committed an entry of its own term (thesis §4.1 bug fix).
 * Non-voting learners receive the log and can be promoted (ADD_VOTER on a
 * learner). A leader removed from the configuration keeps leading until the
 * entry is committed and then steps down (thesis §4.2.2).
 *
 * SNAPSHOTS (thesis §5): the snapshot BYTES never pass through the core.
 *   - Taking: the application snapshots its state machine at some applied
 *     index, stores it, reports it with rl_snapshot_taken(), and may then
 *     drop log entries <= meta.index from its storage (storage.snapshot_meta
 *     must then return that meta and storage.first_index meta.index + 1).
 *   - Sending: for a follower that needs entries below storage.first_index,
 *     the leader puts RL_MSG_SNAPSHOT messages in rd.msgs_now carrying the
 *     snapshot meta (from storage.snapshot_meta) and snap_offset; snap_data
 *     is NULL and snap_len 0. The SENDING APPLICATION reads up to
 *     RL_SNAPSHOT_CHUNK_BYTES_MAX bytes of the snapshot identified by
 *     (meta.index, meta.term) at snap_offset, sets snap_data (owned by the
 *     application, valid until the send completes), snap_len, and snap_done =
 *     (snap_offset + snap_len == total size). If that snapshot is no longer
 *     available it drops the message; the leader retries on a later
 *     heartbeat with the current snapshot. One chunk per follower is in
 *     flight; the next is sent when the follower acknowledges it.
 *   - Receiving: the RECEIVING APPLICATION asks rl_snapshot_chunk_wanted()
 *     and, only if it returns true, writes snap_data (snap_len bytes) at
 *     snap_offset into a staging area keyed by (meta.index, meta.term)
 *     BEFORE rl_step() (a wanted chunk at offset 0 of a different snapshot
 *     restarts staging). The core accepts chunks strictly in order and
 *     acknowledges the next offset it expects. After the chunk with
 *     snap_done, the core reports rd.has_snapshot; the application installs
 *     it from staging (ready step 3). Staging EVERY chunk before rl_step()
 *     is not safe with a single staging area: a late offset-0 chunk of
 *     another snapshot that the core ignores (older term, or a snapshot it
 *     already holds) would wipe the one it is receiving. An application
 *     that stages without asking must keep one staging area per (index,
 *     term) until the core reports a newer snapshot installed.
 *
 * LINEARIZABLE READS: ReadIndex (thesis §6.4), no log write. The leader
 * queues the request, broadcasts a heartbeat carrying a new read round number
 * (rl_msg.seq), and answers once a quorum echoed a round >= the request's AND
 * it has committed an entry of its current term; the read index is its commit
 * index at that moment. A leader that steps down drops its queued reads (it
 * never answers them). Lease reads are not implemented.
 *
 * ELECTIONS: timeouts are randomized in [election_ticks, 2*election_ticks)
 * from the node's own seeded PRNG. Only a granted vote or a message from the
 * current leader resets a follower's election timer (paper §5.2); a vote
 * request with a higher term that is refused raises our term but does not
 * postpone our own election. With check_quorum, a member that heard from a
 * leader less than election_ticks ago ignores (pre)vote requests unless they
 * carry the transfer flag (thesis §4.2.3). Only voters campaign.
 *
 * JOINING MEMBERS: a member added later starts with empty storage and the
 * cluster's ORIGINAL bootstrap membership in rl_config.bootstrap (the
 * configuration entries it then receives build the current one), or with any
 * membership if it will receive a snapshot (the snapshot's membership
 * replaces it). The bootstrap membership is implicit at index 0 on every
 * member and must be identical on all of them.
 *
 * INJECTED BUGS (for the simulator only; never defined in normal builds):
 *   RL_BUG_COMMIT_PREV_TERM=1       the leader commits an index once a quorum
 *                                   stores it even if it is from an earlier
 *                                   term (the paper Figure 8 bug).
 *   RL_BUG_VOTE_BEFORE_PERSIST=1    a granted vote is never written to the
 *                                   ready's hard state (vote field stays
 *                                   RL_NONE / the previous value) and the vote
 *                                   response goes in rd.msgs_now; a node that
 *                                   crashes and restarts forgets it voted and
 *                                   can vote twice in one term (two leaders).
 *   RL_BUG_TRUNCATE_ON_STALE_APPEND=1  a follower truncates its log after the
 *                                   last entry of every non-empty
 *                                   AppendEntries even when all entries
 *                                   match, so a stale/reordered message cuts
 *                                   off acknowledged entries.
 */
#ifndef RL_RAFT_H
#define RL_RAFT_H
/* API FROZEN */

#include "rl_types.h"

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

enum rl_err {
	RL_OK = 0,
	RL_ERR_NOT_LEADER = -1,      /* proposal/transfer on a non-leader;
	                                leader id in the out param if known */
	RL_ERR_PROPOSAL_DROPPED = -2,/* busy: uncommitted bytes over the limit */
	RL_ERR_TRANSFERRING = -3,    /* leadership transfer in progress */
	RL_ERR_CONF_PENDING = -4,    /* a membership change is not yet committed,
	                                or the leader has not committed in its
	                                term yet */
	RL_ERR_COMPACTED = -5,       /* storage: index below first_index */
	RL_ERR_UNAVAILABLE = -6,     /* storage: index above last_index / not
	                                there (also: snapshot not available) */
	RL_ERR_INVAL = -7,           /* bad argument (caller bug or bad input) */
	RL_ERR_NOMEM = -8,           /* allocation failed; node unchanged */
	RL_ERR_TOO_LARGE = -9,       /* entry data over RL_ENTRY_DATA_MAX, or
	                                read context over RL_READ_CTX_MAX */
	RL_ERR_READY_PENDING = -10,  /* rl_ready() before rl_advance() */
	RL_ERR_STORAGE = -11,        /* storage callback failed otherwise */
	RL_ERR_NOT_MEMBER = -12,     /* target/member not in the configuration */
};

/* Static string for an rl_err code (or "unknown error"). Any thread. */
const char *rl_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Limits                                                                   */

/* Bytes of snapshot data in one RL_MSG_SNAPSHOT chunk. */
#define RL_SNAPSHOT_CHUNK_BYTES_MAX (1024u * 1024u)
/* Bytes of opaque request context in a read (ReadIndex) request. */
#define RL_READ_CTX_MAX 32u
/* Pending ReadIndex requests a node keeps (beyond: RL_ERR_PROPOSAL_DROPPED). */
#define RL_READS_PENDING_MAX 4096u
/* Defaults used when a config field is 0. */
#define RL_INFLIGHT_MSGS_MAX_DEFAULT 64u          /* appends per follower */
#define RL_INFLIGHT_BYTES_MAX_DEFAULT (32u << 20) /* bytes per follower */
#define RL_MSG_BYTES_MAX_DEFAULT (1u << 20)       /* entry bytes per append */
#define RL_UNCOMMITTED_BYTES_MAX_DEFAULT (64u << 20)
#define RL_READY_ENTRIES_MAX_DEFAULT 4096u   /* entries to persist / apply per
                                                ready, each */
#define RL_ELECTION_TICKS_DEFAULT 10u
#define RL_HEARTBEAT_TICKS_DEFAULT 1u
/* Hard cap on inflight_msgs_max (size of the per-follower ring). */
#define RL_INFLIGHT_MSGS_LIMIT 1024u

/* ------------------------------------------------------------------------ */
/* Storage read interface (implemented by logstore.c and test/sim logs)      */

/*
 * The core reads PERSISTED entries through this interface; entries not yet
 * reported persisted (rl_advance) are held by the core itself. The
 * application writes to the storage (ready step 3); the core only reads.
 *
 * Index space: the storage holds entries [first_index, last_index]; the
 * snapshot (or the empty log) covers everything below: snapshot_meta.index ==
 * first_index - 1, and term(first_index - 1) == snapshot_meta.term (term(0) ==
 * 0 for an empty log). An empty log after a snapshot has last_index ==
 * first_index - 1.
 *
 * Every callback returns RL_OK or a negative rl_err: RL_ERR_COMPACTED for an
 * index below first_index - 1 (for term) or below first_index (entries),
 * RL_ERR_UNAVAILABLE for an index above last_index, RL_ERR_NOMEM, or
 * RL_ERR_STORAGE for anything else (the core then does not use the value and
 * retries later; the storage should log the cause).
 */
struct rl_storage {
	void *ctx; /* passed back to every callback */
	int (*first_index)(void *ctx, rl_index *out);
	int (*last_index)(void *ctx, rl_index *out);
	/* Term of entry i, for i in [first_index - 1, last_index]. */
	int (*term)(void *ctx, rl_index i, rl_term *out);
	/*
	 * Entries [lo, hi) (hi exclusive, lo < hi) into out[0..out_max-1].
	 * Stops before the entry that would make the total data bytes exceed
	 * bytes_max, but always returns at least one entry. Sets *out_n.
	 * OWNERSHIP: each out[k].data is allocated by the storage with malloc()
	 * (NULL allowed when data_len is 0) and is owned by the caller, which
	 * releases it with free().
	 */
	int (*entries)(void *ctx, rl_index lo, rl_index hi, uint64_t bytes_max,
	    struct rl_entry *out, size_t out_max, size_t *out_n);
	/* Meta of the latest snapshot (index 0 and the bootstrap conf state
	 * with no snapshot: the core ignores conf when index is 0). */
	int (*snapshot_meta)(void *ctx, struct rl_snapshot_meta *out);
};

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */

enum rl_msg_type {
	RL_MSG_APPEND = 1,        /* AppendEntries (paper Figure 2) */
	RL_MSG_APPEND_RESP = 2,
	RL_MSG_VOTE = 3,          /* RequestVote */
	RL_MSG_VOTE_RESP = 4,
	RL_MSG_PREVOTE = 5,       /* PreVote (thesis §9.6); term = sender's + 1 */
	RL_MSG_PREVOTE_RESP = 6,
	RL_MSG_HEARTBEAT = 7,     /* empty append that carries no log position */
	RL_MSG_HEARTBEAT_RESP = 8,
	RL_MSG_SNAPSHOT = 9,      /* InstallSnapshot chunk (thesis §5.2) */
	RL_MSG_SNAPSHOT_RESP = 10,
	RL_MSG_TIMEOUT_NOW = 11,  /* leadership transfer (thesis §3.10) */
	RL_MSG_READ_INDEX = 12,   /* follower forwards a read to the leader */
	RL_MSG_READ_INDEX_RESP = 13,
};
#define RL_MSG_TYPE_MAX 13

/*
 * One peer message. Fields unused by a type are zero. A transport encodes
 * every field listed; all integers are fixed-width.
 *
 *  type         enum rl_msg_type
 *  from, to     member ids
 *  term         sender's current term (PREVOTE: the term it would campaign
 *               in; PREVOTE_RESP granted: the request's term)
 *  log_term,    APPEND: term and index of the entry preceding entries
 *  index          (paper's prevLogTerm/prevLogIndex); VOTE/PREVOTE: last log
 *                 term/index of the candidate; APPEND_RESP: accepted -> last
 *                 index now known to match, rejected -> the rejected prev
 *                 index; SNAPSHOT/RESP: unused (see snap)
 *               READ_INDEX_RESP: index = the read index
 *  commit       APPEND/HEARTBEAT: leader commit (heartbeat: capped at the
 *               follower's match)
 *  entries_n,   APPEND: the entries (data borrowed: in a ready, owned by the
 *  entries        node; in rl_step(), owned by the caller, copied by the core)
 *  reject       *_RESP: refused / vote not granted
 *  reject_hint  APPEND_RESP rejected: conflict index (first index of the
 *               follower's entries with conflict_term, or its last index + 1
 *               when its log is too short)
 *  conflict_term APPEND_RESP rejected: follower's term at the rejected index,
 *               0 if its log is too short (fast backtracking, paper §5.3)
 *  snap         SNAPSHOT, SNAPSHOT_RESP: which snapshot
 *  snap_offset  SNAPSHOT: byte offset of this chunk; SNAPSHOT_RESP: next
 *               offset the receiver expects (reject: the offset it wants)
 *  snap_len,    SNAPSHOT: chunk length and bytes (<= RL_SNAPSHOT_CHUNK_BYTES_
 *  snap_data      MAX), filled by the sending application (see SNAPSHOTS)
 *  snap_done    SNAPSHOT: last chunk; SNAPSHOT_RESP: whole snapshot received
 *  seq          HEARTBEAT/HEARTBEAT_RESP: leader's read-round number echoed
 *               back (ReadIndex leadership confirmation, thesis §6.4)
 *  transfer     VOTE/PREVOTE: campaign caused by TimeoutNow; bypasses the
 *               leader lease check (thesis §3.10, §4.2.3)
 *  ctx_len,ctx  READ_INDEX/READ_INDEX_RESP: the read request's context
 */
struct rl_msg {
	uint8_t type;
	rl_id from;
	rl_id to;
	rl_term term;
	rl_term log_term;
	rl_index index;
	rl_index commit;
	uint32_t entries_n;
	struct rl_entry *entries;
	bool reject;
	rl_index reject_hint;
	rl_term conflict_term;
	struct rl_snapshot_meta snap;
	uint64_t snap_offset;
	uint32_t snap_len;
	const uint8_t *snap_data;
	bool snap_done;
	uint64_t seq;
	bool transfer;
	uint32_t ctx_len;
	uint8_t ctx[RL_READ_CTX_MAX];
};

/* ------------------------------------------------------------------------ */
/* Membership changes (single-server, thesis §4.1)                          */

enum rl_conf_change_type {
	RL_CONF_ADD_VOTER = 1,   /* add a voter, or promote a learner */
	RL_CONF_ADD_LEARNER = 2, /* add a non-voting learner */
	RL_CONF_REMOVE = 3,      /* remove a voter or learner */
};

struct rl_conf_change {
	uint8_t type; /* enum rl_conf_change_type */
	rl_id node;
};

/* Size of a RL_ENTRY_CONF_CHANGE entry's data: 1 byte type, 8 bytes node id
 * little-endian. */
#define RL_CONF_CHANGE_BYTES 9u

/* Decode a RL_ENTRY_CONF_CHANGE entry's data. RL_ERR_INVAL if malformed.
 * Any thread. */
int rl_conf_change_decode(const uint8_t *data, uint32_t data_len,
    struct rl_conf_change *out);
/* Encode into buf (RL_CONF_CHANGE_BYTES). Any thread. */
void rl_conf_change_encode(const struct rl_conf_change *cc,
    uint8_t buf[RL_CONF_CHANGE_BYTES]);
/* Apply cc to conf in place. RL_ERR_INVAL if it changes nothing or is not
 * allowed (removing the last voter), RL_ERR_TOO_LARGE when RL_MEMBERS_MAX
 * would be exceeded. Any thread. */
int rl_conf_apply(struct rl_conf_state *conf, const struct rl_conf_change *cc);

/* ------------------------------------------------------------------------ */
/* Node                                                                     */

struct rl_node; /* opaque */

struct rl_config {
	rl_id id;                /* this member; != RL_NONE */
	/* Membership used only when storage is empty (last_index 0 and no
	 * snapshot): the bootstrap configuration. */
	struct rl_conf_state bootstrap;
	/* Persisted state to restart from (zero for a fresh member). The log
	 * and snapshot meta are read from storage. */
	struct rl_hard_state hard_state;
	/* Last index the application has applied (its state machine already
	 * reflects entries <= applied); >= snapshot index. 0 = snapshot index.
	 * May exceed hard_state.commit (a commit-only hard state need not be
	 * synced, see must_sync): applied entries count as committed. */
	rl_index applied;
	const struct rl_storage *storage; /* borrowed; must outlive the node */
	uint32_t election_ticks;  /* 0 -> default; randomized in [e, 2e) */
	uint32_t heartbeat_ticks; /* 0 -> default; < election_ticks */
	uint64_t seed;            /* election jitter PRNG seed (with id) */
	bool pre_vote;            /* thesis §9.6 */
	bool check_quorum;        /* thesis §6.2 + lease on votes §4.2.3 */
	uint32_t inflight_msgs_max;   /* appends in flight per follower */
	uint64_t inflight_bytes_max;  /* entry bytes in flight per follower */
	uint64_t msg_bytes_max;       /* entry bytes per append message */
	uint64_t uncommitted_bytes_max; /* leader: proposed, not committed */
	uint32_t ready_entries_max;   /* entries per ready (persist, apply) */
};

/*
 * Create a node from cfg, restoring from cfg->hard_state + storage (term,
 * vote, commit, log, snapshot meta, membership = snapshot's conf then the
 * conf-change entries in the log after it). The node starts as follower.
 * Returns RL_OK and *out, or RL_ERR_INVAL (bad config, or hard state
 * inconsistent with storage: commit or applied beyond the stored log),
 * RL_ERR_NOMEM, or a storage error. cfg is
 * copied.
 */
int rl_node_new(const struct rl_config *cfg, struct rl_node **out);
/* Free the node and everything it owns (including an un-advanced ready). */
void rl_node_free(struct rl_node *n);

/* One logical tick (election and heartbeat timers count ticks). */
void rl_tick(struct rl_node *n);

/*
 * Process a message from a peer. m and its entries/data are borrowed for the
 * call only. Messages for another member, of an unknown type or from an old
 * term are ignored (RL_OK). Returns RL_ERR_INVAL for malformed input (e.g.
 * entries out of sequence, entry over RL_ENTRY_DATA_MAX, snap_len over the
 * chunk size), RL_ERR_NOMEM, or a storage error; the node is then unchanged
 * as far as the protocol is concerned.
 */
int rl_step(struct rl_node *n, const struct rl_msg *m);

/*
 * For a RL_MSG_SNAPSHOT chunk: true iff rl_step(n, m) called next would take
 * this chunk's bytes (the next chunk of the snapshot being received, or the
 * first chunk of a new one), so the application should stage them (see
 * SNAPSHOTS). False for any other message, a chunk the core would ignore
 * (old term, out of order, a snapshot it already holds) or malformed input.
 * Does not change the node. Same thread as rl_step(). Added in review.
 */
bool rl_snapshot_chunk_wanted(const struct rl_node *n, const struct rl_msg *m);

/*
 * Propose application data (copied). On the leader: appended to its log as a
 * RL_ENTRY_NORMAL entry; *index_out (may be NULL) gets its index.
 * Errors: RL_ERR_NOT_LEADER (*leader_out = leader id or RL_NONE; leader_out
 * may be NULL), RL_ERR_TRANSFERRING, RL_ERR_PROPOSAL_DROPPED (uncommitted
 * bytes over uncommitted_bytes_max), RL_ERR_TOO_LARGE, RL_ERR_NOMEM.
 */
int rl_propose(struct rl_node *n, const uint8_t *data, uint32_t data_len,
    rl_id *leader_out, rl_index *index_out);

/*
 * Propose a membership change (leader only). Same errors as rl_propose plus
 * RL_ERR_CONF_PENDING and RL_ERR_INVAL (change does nothing / not allowed).
 */
int rl_propose_conf_change(struct rl_node *n, const struct rl_conf_change *cc,
    rl_id *leader_out, rl_index *index_out);

/*
 * Linearizable read (ReadIndex, thesis §6.4). ctx (<= RL_READ_CTX_MAX bytes,
 * copied) identifies the request. Later, a ready's read_states has an entry
 * with this ctx and an index: the application answers the read once its
 * applied index >= that index. A follower forwards the request to the leader.
 * The leader confirms its leadership with one heartbeat round sent with the
 * next ready: every read it takes until then (its own and forwarded ones)
 * shares that round. If leadership is lost meanwhile, the request is silently dropped: the
 * caller retries after its own timeout. Errors: RL_ERR_NOT_LEADER (no leader
 * known; *leader_out = RL_NONE), RL_ERR_TOO_LARGE, RL_ERR_PROPOSAL_DROPPED
 * (over RL_READS_PENDING_MAX), RL_ERR_NOMEM.
 */
int rl_read_index(struct rl_node *n, const uint8_t *ctx, uint32_t ctx_len,
    rl_id *leader_out);

/*
 * Leadership transfer to target (thesis §3.10): the leader stops accepting
 * proposals, brings target up to date, then sends it TimeoutNow. Aborts
 * after an election timeout. Errors: RL_ERR_NOT_LEADER, RL_ERR_NOT_MEMBER
 * (target not a voter), RL_ERR_INVAL (target is self), RL_ERR_NOMEM (the
 * leader could not allocate the target's progress; retry later).
 */
int rl_transfer_leadership(struct rl_node *n, rl_id target,
    rl_id *leader_out);

/* Start an election now (with PreVote if configured). No-op for a leader or
 * a non-voter. */
void rl_campaign(struct rl_node *n);

/*
 * The application took a snapshot covering entries <= meta->index (term
 * meta->term, membership meta->conf as of that index). After RL_OK the
 * application may drop entries <= meta->index from storage. Errors:
 * RL_ERR_INVAL if meta->index > applied index or its term does not match the
 * log, RL_ERR_COMPACTED if older than the current snapshot.
 */
int rl_snapshot_taken(struct rl_node *n, const struct rl_snapshot_meta *meta);

/* ------------------------------------------------------------------------ */
/* Ready / advance                                                          */

struct rl_read_state {
	rl_index index;   /* answer once applied >= index */
	uint32_t ctx_len;
	uint8_t ctx[RL_READ_CTX_MAX];
};

enum rl_role {
	RL_FOLLOWER = 0,
	RL_PRE_CANDIDATE = 1,
	RL_CANDIDATE = 2,
	RL_LEADER = 3,
};

struct rl_ready {
	bool has_hard_state;           /* hard_state changed: persist it */
	struct rl_hard_state hard_state;
	struct rl_entry *entries;      /* to persist (see contract step 3) */
	size_t entries_n;
	bool must_sync;                /* fsync before sending msgs */
	struct rl_msg *msgs_now;       /* may be sent before persisting */
	size_t msgs_now_n;
	struct rl_msg *msgs;           /* send only after persisting */
	size_t msgs_n;
	struct rl_entry *committed;    /* to apply, in order */
	size_t committed_n;
	bool has_snapshot;             /* install before persisting entries */
	struct rl_snapshot_meta snapshot;
	struct rl_read_state *read_states;
	size_t read_states_n;
	/* Soft state, informational (not persisted). */
	uint8_t role;                  /* enum rl_role */
	rl_id leader;
};

/* True if rl_ready() would return anything to do. */
bool rl_has_ready(const struct rl_node *n);

/*
 * Fill *rd with the next batch (possibly empty). Everything it points to is
 * owned by the node until rl_advance(n, rd). RL_ERR_READY_PENDING if the
 * previous ready was not advanced (*rd untouched); RL_ERR_NOMEM or a storage
 * error (nothing is handed out then; retry later). Leader appends for
 * proposals made since the last ready are built here, one batch per
 * follower (batching).
 */
int rl_ready(struct rl_node *n, struct rl_ready *rd);

/*
 * Report that rd was fully handled per the contract above (snapshot
 * installed, entries and hard state persisted, messages sent or given to
 * the transport, committed entries applied). Releases rd's memory; rd is
 * zeroed (rd may be NULL: the node kept its own copy of what it handed out).
 * No-op if no ready is pending.
 */
void rl_advance(struct rl_node *n, struct rl_ready *rd);

/* ------------------------------------------------------------------------ */
/* Status                                                                   */

struct rl_status {
	rl_id id;
	uint8_t role;       /* enum rl_role */
	rl_id leader;
	struct rl_hard_state hard_state; /* current (maybe not yet persisted) */
	rl_index applied;
	rl_index last_index;
	rl_index first_index; /* first entry still in the log */
	struct rl_conf_state conf;
	rl_id transferee;   /* leadership transfer target, or RL_NONE */
};

/* Snapshot of the node's state for metrics and tests. */
void rl_status(const struct rl_node *n, struct rl_status *out);

/* Leader only: match index of member id (0 if unknown or not leader). For
 * tests and metrics. */
rl_index rl_match_index(const struct rl_node *n, rl_id id);

#endif /* RL_RAFT_H */
