/*
 * sim_run.h - one raftsim run: the simulated members around the real Raft
 * core, and the state shared by the node driver (sim_node.c) and the
 * scheduler, workload and fault injector (raftsim.c).
 *
 * A member here is the core (rl_node) plus what a real raftbus member
 * wraps around it: the durable log (sim_memlog, models the LMDB log store),
 * the replicated state machine and the "disk" that completes writes after a
 * delay. Single-threaded: one run owns everything it points to.
 */
#ifndef SIM_RUN_H
#define SIM_RUN_H

#include "raft.h"
#include "sim_base.h"
#include "sim_check.h"
#include "sim_memlog.h"
#include "sim_net.h"

#include <stdbool.h>
#include <stdint.h>

/* Core timing: one election timeout is [10, 20) ticks of a member's clock. */
#define SIM_ELECTION_TICKS 10u
#define SIM_HEARTBEAT_TICKS 1u
/* Nominal tick length; each member's clock drifts around it. */
#define SIM_TICK_US 10000u
/* A member's tick length stays within [MIN, MAX] percent of nominal. */
#define SIM_DRIFT_PERCENT_MIN 70u
#define SIM_DRIFT_PERCENT_MAX 140u
/* Reactive faults (per million): a member that just became leader, or a
 * leader whose commit index just moved, is crashed 0-3 ms later. Leaders
 * dying with uncommitted tails are what Figure 8 is made of. */
#define SIM_NEW_LEADER_CRASH_PPM 150000u
#define SIM_COMMIT_CRASH_PPM 20000u
/* ... and a leader's first commit in its term: the moment a leader that
 * inherited entries of earlier terms decides they are committed. */
#define SIM_FIRST_COMMIT_CRASH_PPM 300000u
/* A member that just became leader is isolated at once, keeping the entry
 * of its term that nobody else got (per million). */
#define SIM_NEW_LEADER_ISOLATE_PPM 100000u
/* Snapshot bytes per InstallSnapshot chunk: small, so that a snapshot of a
 * few hundred entries takes several chunks. */
#define SIM_SNAP_CHUNK_BYTES_MAX 256u
/* Reads and proposals a run keeps track of at once. */
#define SIM_READS_MAX 256u
#define SIM_PROPOSALS_MAX 1024u

/* Kinds of trace records (struct sim_trace_rec.what). */
enum sim_tr_kind {
	TR_TICK = 1, TR_SEND, TR_DELIVER, TR_LOST, TR_DUP, TR_WRITE, TR_DURABLE,
	TR_APPLY, TR_ROLE, TR_PROPOSE, TR_READ_START, TR_READ_DONE, TR_CRASH,
	TR_RESTART, TR_CUT, TR_HEAL, TR_DRIFT, TR_CONF, TR_SNAP_TAKE,
	TR_SNAP_INSTALL, TR_ERROR, TR_QUIET, TR_TRANSFER,
};

/* Faults injected, by kind (the summary prints them). */
enum sim_fault_kind {
	F_DROP, F_DUP, F_LATE, F_CRASH, F_CRASH_MID_WRITE, F_PARTITION,
	F_ONE_WAY, F_ISOLATE, F_HEAL, F_DRIFT, F_LEADER_CRASH, F_KIND_N,
};

/* Snapshots a receiving member stages at once: a stale duplicate chunk at
 * offset 0 of an older snapshot must not wipe the one being received (see
 * CORE_BUGS.txt, "snapshot staging"). */
#define SIM_STAGE_SLOTS 4
#define SIM_STAGE_SLOTS_DEFAULT 1

struct sim_stage {
	rl_index index;        /* which snapshot (index 0: slot free) */
	rl_term term;
	uint8_t *buf;
	uint32_t len, cap;
	uint64_t used;         /* last write, for least-recently-used reuse */
};

struct sim_node {
	rl_id id;
	bool exists;           /* created (initial member or added spare) */
	bool up;               /* running (not crashed) */
	uint32_t gen;          /* incarnation: bumps on crash */
	struct rl_node *core;
	struct rl_storage storage;
	struct sim_memlog durable;   /* survives crashes */
	struct sim_memlog written;   /* durable + writes in flight */
	sim_time_us tick_us;
	/* the ready being persisted (core-owned until rl_advance) */
	bool pending;
	struct rl_ready rd;
	sim_time_us disk_free_at;    /* writes complete in order */
	uint8_t *pend_snap;          /* staged snapshot bytes for rd */
	uint32_t pend_snap_len;
	/* replicated state machine (durable, like the store's LMDB): ids[i]
	 * is the proposal id applied at log index i (0: no-op / conf) */
	uint64_t *ids;
	size_t ids_cap;
	rl_index applied;
	struct rl_conf_state conf;
	/* snapshot staging of the receiving side (volatile) */
	struct sim_stage stage[SIM_STAGE_SLOTS];
	uint64_t stage_clock;
	/* observations of this incarnation */
	rl_index commit_seen;
	rl_index commit_recorded;
	rl_index applied_seen;
	rl_term term_seen;
	uint8_t role;
	rl_term term_before;         /* term and role at the observation */
	uint8_t role_before;         /* before the last one */
	rl_term leader_checked_term;
	rl_term first_commit_term;   /* term of its last commit as leader */
	/* ghost: the last vote this member granted (any incarnation) */
	rl_term vote_term;
	rl_id vote_for;
	/* ghost: highest index acknowledged (APPEND_RESP) in ack_term */
	rl_term ack_term;
	rl_index ack_index;
};

struct sim_read {
	uint64_t id;
	uint8_t node;
	uint32_t gen;
	sim_time_us start_us;
	rl_index min_index;    /* highest acknowledged write before start */
	bool indexed;          /* the read state has arrived */
	rl_index read_index;   /* from the read state: answer once applied */
};

struct sim_proposal {
	uint64_t id;
	uint8_t node;
	uint32_t gen;
	rl_index index;
};

struct sim_ack {
	uint64_t id;
	rl_index index;
};

struct sim_stats {
	uint64_t steps, quiet_steps, elections, commits, acked, reads;
	uint64_t proposals, conf_changes, snapshots, installs, transfers;
	uint64_t faults[F_KIND_N];
	sim_time_us virtual_us;
};

struct sim_params {
	uint32_t members;      /* initial voters: 3 or 5 */
	uint64_t steps;        /* events of the faulty phase */
	bool verbose;
	/* check only outcomes: turn off the protocol-rule checks (one vote
	 * per term, acknowledged entry kept, leader commits own term only) */
	bool outcomes_only;
	/* snapshot staging slots per member, 1..SIM_STAGE_SLOTS (default 1:
	 * raft.h's rule, staging only what rl_snapshot_chunk_wanted() takes) */
	uint32_t stage_slots;
	/* harness bugs injected on purpose, to prove the checkers bite where
	 * no core bug reaches: enum sim_inject */
	uint32_t inject;
};

enum sim_inject {
	SIM_INJECT_NONE = 0,
	SIM_INJECT_STALE_READ,      /* answer reads from local state at once */
	SIM_INJECT_SEND_EARLY,      /* send rd.msgs before the write is durable */
};

struct sim_run {
	struct sim_params p;
	uint64_t seed;
	struct sim_prng rng;
	struct sim_queue q;
	struct sim_net net;
	struct sim_check chk;
	struct sim_trace tr;
	sim_time_us now;
	uint64_t step;
	bool quiet;            /* faults stopped, network healed */
	uint32_t nodes_n;      /* slots in use: members + spares */
	uint32_t next_spare;   /* next slot to add as a new member */
	struct sim_node node[SIM_NODES_MAX];
	uint64_t next_proposal_id, next_read_id;
	struct sim_proposal props[SIM_PROPOSALS_MAX];
	uint32_t props_n;
	struct sim_ack *acks;
	size_t acks_n, acks_cap;
	rl_index ack_max_index;
	uint64_t marker_id;          /* quiet phase: the liveness proposal */
	rl_index marker_acked_index; /* 0 until it is acknowledged */
	struct sim_read reads[SIM_READS_MAX];
	uint32_t reads_n;
	uint32_t msg_drop_ppm, msg_dup_ppm, msg_late_ppm;
	struct sim_stats st;
};

/* ---- sim_node.c: driving one member ------------------------------------- */

/* Adds a trace record at the current step and time. */
void sim_tr(struct sim_run *r, uint16_t what, uint32_t node, uint32_t peer,
	    uint64_t a, uint64_t b, uint64_t c);
/* Creates (or re-creates after a crash) the core of slot i from its durable
 * log and state machine. Every member, added ones too, gets the initial
 * voters as bootstrap membership (used by the core only while its storage
 * is empty), and starts ticking. */
void sim_node_start(struct sim_run *r, uint32_t i);
/* Crash: the core and every write not yet durable are lost. */
void sim_node_crash(struct sim_run *r, uint32_t i);
/* Frees everything slot n owns (core, logs, state machine, staging). */
void sim_node_free(struct sim_node *n);
/* Feeds one delivered message to slot i (stages snapshot chunks first). */
void sim_node_deliver(struct sim_run *r, uint32_t i, const struct rl_msg *m);
/* The write of slot i's pending ready completes (event gen must match). */
void sim_node_persisted(struct sim_run *r, uint32_t i);
/* Hands out readies until one must wait for the disk, then observes the
 * member and runs the per-step checks. Call after every input. */
void sim_node_drive(struct sim_run *r, uint32_t i);
/* Sends a message into the network, with the fault mix applied. */
void sim_send(struct sim_run *r, const struct rl_msg *m);
/* The application takes a snapshot at its applied index and compacts. */
void sim_node_snapshot(struct sim_run *r, uint32_t i);

#endif /* SIM_RUN_H */
