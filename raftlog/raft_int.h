/*
 * raft_int.h - internal structures of the Raft core shared by raft.c (node,
 * elections, follower side), raft_leader.c (replication, progress, reads,
 * transfer), raft_log.c (the log: persisted via rl_storage + unstable tail)
 * and raft_ready.c (ready/advance, membership). Not a public header.
 */
#ifndef RL_RAFT_INT_H
#define RL_RAFT_INT_H

#include "raft.h"

/* ---- growable vectors -------------------------------------------------- */

struct rl_ent_vec {
	struct rl_entry *v;
	size_t n, cap;
	uint64_t bytes;
};

struct rl_msg_vec {
	struct rl_msg *v;
	size_t n, cap;
};

int rl_ent_vec_push_copy(struct rl_ent_vec *ev, const struct rl_entry *e);
void rl_ent_vec_free(struct rl_ent_vec *ev);
void rl_entries_free(struct rl_entry *v, size_t n);
void rl_msg_free_entries(struct rl_msg *m);
void rl_msg_vec_free(struct rl_msg_vec *mv);

/* ---- log --------------------------------------------------------------- */

/*
 * The log is the persisted part, read through rl_storage, followed by the
 * unstable part [u_off, u_off + u.n) kept here until rl_advance reports it
 * persisted. Entries >= u_off shadow whatever storage still holds there (a
 * truncation not yet written). A received snapshot not yet installed
 * (has_snap) covers everything <= snap.index.
 */
struct rl_log {
	const struct rl_storage *st;
	struct rl_ent_vec u;
	rl_index u_off;
	bool has_snap;
	struct rl_snapshot_meta snap;
	rl_index committed;
	rl_index applied;
};

int rl_log_init(struct rl_log *l, const struct rl_storage *st);
void rl_log_free(struct rl_log *l);
rl_index rl_log_last(const struct rl_log *l);
rl_index rl_log_first(const struct rl_log *l);
int rl_log_term(const struct rl_log *l, rl_index i, rl_term *out);
rl_term rl_log_term_or0(const struct rl_log *l, rl_index i);
rl_term rl_log_last_term(const struct rl_log *l);
bool rl_log_match(const struct rl_log *l, rl_index i, rl_term t);
bool rl_log_up_to_date(const struct rl_log *l, rl_index i, rl_term t);
int rl_log_append(struct rl_log *l, const struct rl_entry *e, size_t n);
rl_index rl_log_find_conflict(const struct rl_log *l, const struct rl_entry *e,
    size_t n);
int rl_log_entries(const struct rl_log *l, rl_index lo, rl_index hi,
    uint64_t bytes_max, size_t count_max, struct rl_ent_vec *out);
void rl_log_commit_to(struct rl_log *l, rl_index i);
void rl_log_stable_to(struct rl_log *l, rl_index i, rl_term t);
void rl_log_restore(struct rl_log *l, const struct rl_snapshot_meta *m);

/* ---- progress (leader's view of each member, etcd-style) --------------- */

enum rl_pr_state {
	RL_PR_PROBE = 0,     /* one append at a time until the match is found */
	RL_PR_REPLICATE = 1, /* pipelined, optimistic next */
	RL_PR_SNAPSHOT = 2,  /* sending a snapshot, appends paused */
};

struct rl_progress {
	rl_id id;
	rl_index match, next;
	uint8_t state;
	bool probe_sent;
	bool recent_active;
	/* ring of in-flight appends: last index and bytes of each */
	rl_index *infl_idx;
	uint64_t *infl_bytes;
	uint32_t infl_start, infl_n;
	uint64_t infl_bytes_sum;
	uint64_t read_ack_seq;
	uint32_t stall_hbs;   /* heartbeat replies without match progress */
	/* snapshot being sent */
	struct rl_snapshot_meta snap;
	uint64_t snap_offset;
	uint32_t snap_idle_ticks;
};

struct rl_conf_hist {
	rl_index index;
	struct rl_conf_state conf;
};

struct rl_pending_read {
	uint64_t seq;
	rl_id from;
	uint32_t ctx_len;
	uint8_t ctx[RL_READ_CTX_MAX];
};

struct rl_uncommitted {
	rl_index index;
	uint64_t bytes;
};

struct rl_node {
	struct rl_config cfg;
	rl_id id;
	struct rl_log log;
	rl_term term;
	rl_id vote;
	rl_id lead;
	uint8_t role;
	uint64_t rng;
	uint32_t election_elapsed, heartbeat_elapsed, rand_timeout;

	/* membership: base (committed) + uncommitted history (thesis §4.1) */
	struct rl_conf_state conf;
	struct rl_conf_state base_conf;
	struct rl_conf_hist *hist;
	size_t hist_n, hist_cap;

	/* elections */
	rl_id votes_id[RL_MEMBERS_MAX];
	bool votes_granted[RL_MEMBERS_MAX];
	size_t votes_n;

	/* leader */
	struct rl_progress prs[RL_MEMBERS_MAX];
	size_t prs_n;
	struct rl_uncommitted *unc;
	size_t unc_n, unc_cap;
	uint64_t unc_bytes;
	rl_id transferee;
	bool bcast_pending;   /* appends to send at the next ready (batching) */
	/* a heartbeat round for the reads registered since the last one, to
	 * send at the next ready: every read of a turn (the leader's own and
	 * those followers forwarded) shares one round */
	bool read_round_pending;
	struct rl_pending_read *reads;
	size_t reads_n, reads_cap;
	uint64_t read_seq;

	/* follower: snapshot being received */
	bool snap_rx;
	struct rl_snapshot_meta snap_rx_meta;
	uint64_t snap_rx_offset;

	/* outputs pending the next ready */
	struct rl_msg_vec out_now, out_later;
	struct rl_read_state *rs;
	size_t rs_n, rs_cap;
	struct rl_hard_state prev_hs;
	bool snap_reported;

	/* the ready handed out and not yet advanced (node-owned copy) */
	bool rd_pending;
	struct rl_ready rd_out;
};

/* raft.c */
void rl_send(struct rl_node *n, struct rl_msg *m);
void rl_become_follower(struct rl_node *n, rl_term term, rl_id lead);
bool rl_is_voter(const struct rl_conf_state *c, rl_id id);
bool rl_is_member(const struct rl_conf_state *c, rl_id id);
size_t rl_quorum(const struct rl_node *n);
int rl_append_entries(struct rl_node *n, const struct rl_entry *e, size_t k);
bool rl_committed_in_term(const struct rl_node *n);
void rl_add_read_state(struct rl_node *n, rl_index index, const uint8_t *ctx,
    uint32_t ctx_len);

/* raft_leader.c */
void rl_become_leader(struct rl_node *n);
void rl_leader_tick(struct rl_node *n);
int rl_leader_step(struct rl_node *n, const struct rl_msg *m);
void rl_bcast_append(struct rl_node *n);
void rl_bcast_flush(struct rl_node *n);
void rl_bcast_heartbeat(struct rl_node *n);
bool rl_maybe_commit(struct rl_node *n);
void rl_prs_sync(struct rl_node *n);
void rl_prs_free(struct rl_node *n);
struct rl_progress *rl_pr_get(struct rl_node *n, rl_id id);
int rl_leader_read(struct rl_node *n, rl_id from, const uint8_t *ctx,
    uint32_t ctx_len);
void rl_reads_release(struct rl_node *n);
void rl_leader_self_persisted(struct rl_node *n, rl_index i);
int rl_leader_append(struct rl_node *n, uint8_t type, const uint8_t *data,
    uint32_t data_len, rl_index *index_out);

/* raft_ready.c */
void rl_ready_free(struct rl_ready *rd);
int rl_conf_on_append(struct rl_node *n, const struct rl_entry *e, size_t k);
int rl_conf_reserve(struct rl_node *n, const struct rl_entry *e, size_t k);
void rl_conf_on_commit(struct rl_node *n);
void rl_conf_reset(struct rl_node *n, const struct rl_conf_state *c);
int rl_conf_restore(struct rl_node *n);

#endif /* RL_RAFT_INT_H */
