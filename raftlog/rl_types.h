/*
 * rl_types.h - the plain data types shared by the Raft core (raft.h) and its
 * durable log (logstore.h). No behaviour lives here.
 *
 * Ownership convention used by every raftlog API: an rl_entry's data is
 * borrowed unless a function says it transfers or copies it.
 */
#ifndef RL_TYPES_H
#define RL_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t rl_index; /* position in the Raft log, 1-based; 0 = none */
typedef uint64_t rl_term;  /* election term; 0 = before any election */
typedef uint64_t rl_id;    /* member id; 0 = none (RL_NONE) */

#define RL_NONE ((rl_id)0)

/* Most members a configuration may name (voters + learners). */
#define RL_MEMBERS_MAX 16
/* Largest payload of one log entry (a proposal). */
#define RL_ENTRY_DATA_MAX (4u * 1024u * 1024u)

enum rl_entry_type {
	RL_ENTRY_NORMAL = 0,      /* application data (may be empty: no-op) */
	RL_ENTRY_CONF_CHANGE = 1, /* membership change, payload per raft.h */
};

struct rl_entry {
	rl_term term;
	rl_index index;
	uint8_t type;       /* enum rl_entry_type */
	uint32_t data_len;
	uint8_t *data;      /* data_len bytes; ownership per function */
};

/* What must be durable before any message that depends on it is sent
 * (Raft paper Figure 2, "persistent state on all servers"). */
struct rl_hard_state {
	rl_term term;
	rl_id vote;
	rl_index commit;
};

/* A membership: voters and non-voting learners. */
struct rl_conf_state {
	uint32_t voters_n;
	rl_id voters[RL_MEMBERS_MAX];
	uint32_t learners_n;
	rl_id learners[RL_MEMBERS_MAX];
};

/* Describes a snapshot: the last entry it covers and the membership at that
 * point. The snapshot's bytes belong to the application. */
struct rl_snapshot_meta {
	rl_index index;
	rl_term term;
	struct rl_conf_state conf;
};

#endif /* RL_TYPES_H */
