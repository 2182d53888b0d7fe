/*
 * cluster.h - a deterministic in-test cluster for the Raft core's scenario
 * tests: N nodes on memlog storage, one FIFO message queue the test
 * controls (cut links, crash/restart nodes, drop or inject messages), the
 * ready contract carried out exactly as raft.h says, and safety checks on
 * every applied entry (all members apply the same entry at an index) and
 * every leader (at most one per term). CL_TRACE=1 in the environment
 * prints every delivered or dropped message.
 */
#ifndef TEST_CLUSTER_H
#define TEST_CLUSTER_H

#include "memlog.h"

#define CL_NODES_MAX 8
#define CL_TERMS_MAX 4096
#define CL_APPLIED_MAX 8192
#define CL_READS_MAX 64
#define CL_STEPS_MAX 200000u /* bound on deliveries per cl_stabilize */

struct cl_node {
	rl_id id;
	bool up;
	struct rl_node *n;
	struct rl_config cfg;
	struct memlog log;
	/* the state machine: concatenation of applied normal entry data */
	uint8_t *app;
	uint32_t app_len;
	rl_index applied;
	/* membership as of the applied index (snapshot metadata needs it) */
	struct rl_conf_state conf;
	/* snapshot staging (receiver side) */
	struct rl_snapshot_meta stage_meta;
	uint8_t *stage;
	uint32_t stage_len;
	struct rl_read_state reads[CL_READS_MAX];
	size_t reads_n;
};

struct cl_applied {
	rl_term term;
	uint32_t len;
	uint8_t *data;
};

struct cluster {
	size_t n;
	struct cl_node nodes[CL_NODES_MAX + 1]; /* by id, 1..n */
	struct rl_msg *q;
	size_t q_head, q_n, q_cap;
	bool cut[CL_NODES_MAX + 1][CL_NODES_MAX + 1];
	rl_id leader_of_term[CL_TERMS_MAX];
	struct cl_applied applied[CL_APPLIED_MAX];
	uint32_t chunk_bytes;   /* snapshot chunk size the sender app uses */
	/* counters by message type, delivered (not dropped) */
	unsigned delivered[RL_MSG_TYPE_MAX + 1];
	unsigned rejects_delivered; /* APPEND_RESP with reject */
	/* random network faults (percent per delivered message), seeded */
	uint64_t rng;
	unsigned drop_pct, dup_pct, reorder_pct;
	/* percent of readies after whose msgs_now the node crashes before
	 * persisting anything (thesis §10.2.1 parallel leader write) */
	unsigned crash_mid_pct;
	/* optional filter: return false to drop a message */
	bool (*filter)(struct cluster *c, const struct rl_msg *m);
};

/* Config template used for every node (id/storage/bootstrap filled in). */
struct rl_config cl_default_config(void);

/* voters: ids 1..voters; learners: ids voters+1..voters+learners. */
void cl_init(struct cluster *c, size_t voters, size_t learners,
    const struct rl_config *tmpl);
void cl_free(struct cluster *c);
/* Add (and start) a node id = ++c->n with the cluster's bootstrap conf. */
rl_id cl_add_node(struct cluster *c);

/* Handle one ready of node id (if any); returns whether there was one. */
bool cl_process(struct cluster *c, rl_id id);
/* Process readies and deliver messages until quiet (bounded). */
void cl_stabilize(struct cluster *c);
/* Tick every up node once, then stabilize. */
void cl_tick_all(struct cluster *c, unsigned times);
/* Deliver exactly the first queued message (after processing readies). */
bool cl_deliver_one(struct cluster *c);
void cl_drop_queue(struct cluster *c);

/* Deterministic PRNG of the cluster (splitmix64). */
uint64_t cl_rand(struct cluster *c);
void cl_cut(struct cluster *c, rl_id a, rl_id b, bool cut);
void cl_isolate(struct cluster *c, rl_id a, bool cut);
void cl_crash(struct cluster *c, rl_id id);
void cl_restart(struct cluster *c, rl_id id);

/* The up leader with the highest term, or RL_NONE. */
rl_id cl_leader(struct cluster *c);
/* Tick until a leader exists (bounded); returns it. */
rl_id cl_wait_leader(struct cluster *c);
/* Campaign id and stabilize; asserts it won. */
void cl_elect(struct cluster *c, rl_id id);
int cl_propose(struct cluster *c, rl_id id, const char *s);
void cl_status(struct cluster *c, rl_id id, struct rl_status *st);
/* Assert all up nodes' logs agree up to their commit and apps are equal. */
void cl_check_agree(struct cluster *c);
/* rl_status of node id, returned by value for use in expressions. */
struct rl_status cl_status_of(struct cluster *c, rl_id id);

/*
 * Single nodes driven by hand (outside struct cluster), for tests that
 * inspect each ready: the node is member id of the voters {1, 2, 3}.
 */
#define CL_HAND_VOTERS 3
/* tmpl with id, storage and hard state from ml and the bootstrap voters
 * filled in; every other field is kept. */
struct rl_config cl_hand_config(struct memlog *ml, rl_id id,
    struct rl_config tmpl);
/* A new node of cl_hand_config(ml, id, tmpl); asserts it starts. Free with
 * rl_node_free() before memlog_free(ml). */
struct rl_node *cl_hand_node(struct memlog *ml, rl_id id, struct rl_config tmpl);
/* Takes n's next ready into rd and persists its entries and hard state on
 * ml; the caller inspects rd, then calls rl_advance(n, rd). */
void cl_hand_ready(struct memlog *ml, struct rl_node *n, struct rl_ready *rd);
/* cl_hand_ready, then advance at once (the messages are dropped). */
void cl_hand_persist(struct memlog *ml, struct rl_node *n);
/* A message of type from -> to at term, every other field zero. */
struct rl_msg cl_msg(uint8_t type, rl_id from, rl_id to, rl_term term);
/* APPEND from 1 to 2: entries e[0..k) after (prev, prev_term). e is
 * borrowed by the message. */
struct rl_msg cl_append_msg(rl_term term, rl_index prev, rl_term prev_term,
    struct rl_entry *e, uint32_t k, rl_index commit);

#endif /* TEST_CLUSTER_H */
