/*
 * sim_check.h - the safety checkers of raftsim: a ghost record of what the
 * cluster has decided so far, against which every observation of every
 * member is compared as soon as it is made.
 *
 * Invariants (Raft paper §5.2-5.4 and Figure 3, plus client-visible ones):
 *  - election safety: at most one leader per term;
 *  - log matching: two logs holding an entry with the same index and term
 *    hold identical entries up to it. Checked incrementally: the pair
 *    (index, term) must always name the same payload and the same term at
 *    index - 1, which by induction gives identical prefixes;
 *  - leader completeness: every committed entry is in the log of every
 *    leader of a later term;
 *  - state machine safety: no two members apply different entries at one
 *    index, and a committed index never changes its entry;
 *  - monotonic commit/applied (enforced by the runner, reported here);
 *  - no acknowledged write lost, linearizable reads (runner + here).
 * Every check returns false after recording a one-line description; the
 * first violation sticks. Single-threaded.
 */
#ifndef SIM_CHECK_H
#define SIM_CHECK_H

#include "rl_types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest violation description, bytes including the NUL. */
#define SIM_CHECK_MSG_BYTES_MAX 512

struct sim_lm_slot;   /* log-matching hash table slot (sim_check.c) */

struct sim_committed {
	rl_term term;        /* 0: not known committed yet */
	uint64_t hash;       /* payload hash */
	/* lowest current term of a member seen knowing it committed: it was
	 * committed in this term or earlier */
	rl_term known_in;
};

struct sim_check {
	rl_id *leader_of_term;       /* indexed by term; RL_NONE if none seen */
	size_t terms_cap;
	struct sim_lm_slot *lm;      /* (index, term) -> payload, prev term */
	size_t lm_n, lm_cap;
	struct sim_committed *committed;   /* indexed by log index */
	size_t committed_cap;
	rl_index committed_max;      /* highest index known committed */
	bool failed;
	int verdict;                 /* enum sim_verdict of the failure */
	char msg[SIM_CHECK_MSG_BYTES_MAX];
};

void sim_check_init(struct sim_check *c);
void sim_check_free(struct sim_check *c);

/* Hash of an entry's type and payload, as the checkers compare them. */
uint64_t sim_entry_hash(const struct rl_entry *e);

/* What kind of failure a run ended with; printed as the report's label. */
enum sim_verdict {
	SIM_SAFETY = 1,     /* "SAFETY VIOLATION": an invariant broke */
	SIM_LIVENESS,       /* "LIVENESS VIOLATION": no progress in bound */
	SIM_CONTRACT,       /* "CORE CONTRACT ERROR": an API call failed or a
	                     * ready broke the raft.h contract */
};

/* Records a failure (printf-style message); the first one sticks. */
void sim_check_fail(struct sim_check *c, int verdict, const char *invariant,
		    const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Member id is leader in term. */
bool sim_check_leader(struct sim_check *c, rl_term term, rl_id id);
/* Member id's log holds e, preceded by an entry of term prev_term (0 if
 * e is the first entry ever). */
bool sim_check_log_entry(struct sim_check *c, rl_id id,
			 const struct rl_entry *e, rl_term prev_term);
/* Member id, in its term cur_term, knows that entry (idx, term, hash) is
 * committed. Both commit observations and applications go through here
 * (state machine safety). */
bool sim_check_committed(struct sim_check *c, rl_id id, rl_index idx,
			 rl_term term, uint64_t hash, rl_term cur_term,
			 const char *how);
/* Leader completeness for member id, leader of term: every entry known
 * committed in an earlier term (known_in < term) is in its log. term_at
 * answers the term of its log at an index: false only if compacted away
 * (covered by a snapshot); an index beyond the log's end answers 0. */
bool sim_check_leader_log(struct sim_check *c, rl_id id, rl_term term,
			  bool (*term_at)(void *ctx, rl_index idx,
					  rl_term *t),
			  void *ctx);

#endif /* SIM_CHECK_H */
