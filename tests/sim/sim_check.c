/*
 * sim_check.c - the ghost state and safety checks of raftsim (see
 * sim_check.h for the invariants).
 */
#include "sim_check.h"

#include "sim_base.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sim_lm_slot {
	rl_index index;      /* 0: empty slot */
	rl_term term;
	uint64_t hash;
	rl_term prev_term;
	rl_id first_seen;    /* member that first held it, for the report */
};

void sim_check_init(struct sim_check *c)
{
	memset(c, 0, sizeof(*c));
}

void sim_check_free(struct sim_check *c)
{
	free(c->leader_of_term);
	free(c->lm);
	free(c->committed);
	memset(c, 0, sizeof(*c));
}

uint64_t sim_entry_hash(const struct rl_entry *e)
{
	uint64_t h = 0xcbf29ce484222325ull ^ e->type;
	h *= 0x100000001b3ull;
	for (uint32_t i = 0; i < e->data_len; i++) {
		h ^= e->data[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void sim_check_fail(struct sim_check *c, int verdict, const char *invariant,
		    const char *fmt, ...)
{
	if (c->failed)
		return;
	c->failed = true;
	c->verdict = verdict;
	const char *label = verdict == SIM_SAFETY     ? "SAFETY VIOLATION"
			    : verdict == SIM_LIVENESS ? "LIVENESS VIOLATION"
						      : "CORE CONTRACT ERROR";
	int n = snprintf(c->msg, sizeof(c->msg), "%s [%s]: ", label,
			 invariant);
	if (n < 0 || (size_t)n >= sizeof(c->msg))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg + n, sizeof(c->msg) - (size_t)n, fmt, ap);
	va_end(ap);
}

static void grow_zeroed(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need < *cap)
		return;
	size_t ncap = *cap ? *cap : 64;
	while (ncap <= need)
		ncap *= 2;
	*p = sim_xrealloc(*p, ncap * elem);
	memset((char *)*p + *cap * elem, 0, (ncap - *cap) * elem);
	*cap = ncap;
}

bool sim_check_leader(struct sim_check *c, rl_term term, rl_id id)
{
	grow_zeroed((void **)&c->leader_of_term, &c->terms_cap, term,
		    sizeof(*c->leader_of_term));
	rl_id had = c->leader_of_term[term];
	if (had == RL_NONE) {
		c->leader_of_term[term] = id;
		return true;
	}
	if (had == id)
		return true;
	sim_check_fail(c, SIM_SAFETY, "election safety",
		       "members %" PRIu64 " and %" PRIu64
		       " are both leader of term %" PRIu64,
		       had, id, term);
	return false;
}

static uint64_t lm_slot_of(rl_index idx, rl_term term, size_t cap)
{
	uint64_t h = idx * 0x9e3779b97f4a7c15ull ^ term * 0xc2b2ae3d27d4eb4full;
	h ^= h >> 29;
	return h & (cap - 1);
}

static void lm_grow(struct sim_check *c)
{
	size_t ncap = c->lm_cap ? c->lm_cap * 2 : 4096;
	struct sim_lm_slot *n = sim_xcalloc(ncap, sizeof(*n));
	for (size_t i = 0; i < c->lm_cap; i++) {
		struct sim_lm_slot *s = &c->lm[i];
		if (s->index == 0)
			continue;
		uint64_t j = lm_slot_of(s->index, s->term, ncap);
		while (n[j].index != 0)
			j = (j + 1) & (ncap - 1);
		n[j] = *s;
	}
	free(c->lm);
	c->lm = n;
	c->lm_cap = ncap;
}

bool sim_check_log_entry(struct sim_check *c, rl_id id,
			 const struct rl_entry *e, rl_term prev_term)
{
	if (c->lm_n * 2 >= c->lm_cap)
		lm_grow(c);
	uint64_t h = sim_entry_hash(e);
	uint64_t j = lm_slot_of(e->index, e->term, c->lm_cap);
	while (c->lm[j].index != 0) {
		struct sim_lm_slot *s = &c->lm[j];
		if (s->index == e->index && s->term == e->term) {
			if (s->hash == h && s->prev_term == prev_term)
				return true;
			sim_check_fail(c, SIM_SAFETY, "log matching",
				       "index %" PRIu64 " term %" PRIu64
				       ": member %" PRIu64
				       " holds payload %016" PRIx64
				       " after term %" PRIu64
				       ", member %" PRIu64
				       " held %016" PRIx64 " after term %" PRIu64,
				       e->index, e->term, id, h, prev_term,
				       s->first_seen, s->hash, s->prev_term);
			return false;
		}
		j = (j + 1) & (c->lm_cap - 1);
	}
	c->lm[j] = (struct sim_lm_slot){ e->index, e->term, h, prev_term, id };
	c->lm_n++;
	return true;
}

bool sim_check_committed(struct sim_check *c, rl_id id, rl_index idx,
			 rl_term term, uint64_t hash, rl_term cur_term,
			 const char *how)
{
	grow_zeroed((void **)&c->committed, &c->committed_cap, idx,
		    sizeof(*c->committed));
	struct sim_committed *k = &c->committed[idx];
	if (k->term == 0) {
		k->term = term;
		k->hash = hash;
		k->known_in = cur_term;
		if (idx > c->committed_max)
			c->committed_max = idx;
		return true;
	}
	if (k->term == term && k->hash == hash) {
		if (cur_term < k->known_in)
			k->known_in = cur_term;
		return true;
	}
	sim_check_fail(c, SIM_SAFETY, "state machine safety",
		       "member %" PRIu64 " %s index %" PRIu64 " as term %" PRIu64
		       " payload %016" PRIx64 " but it was committed as term %"
		       PRIu64 " payload %016" PRIx64,
		       id, how, idx, term, hash, k->term, k->hash);
	return false;
}

bool sim_check_leader_log(struct sim_check *c, rl_id id, rl_term term,
			  bool (*term_at)(void *ctx, rl_index idx,
					  rl_term *t),
			  void *ctx)
{
	for (rl_index i = c->committed_max; i >= 1; i--) {
		const struct sim_committed *k = &c->committed[i];
		/* Figure 3: committed in a given term => in the logs of the
		 * leaders of all HIGHER terms; a leader checked late may lag
		 * behind commits of later terms */
		if (k->term == 0 || k->known_in >= term)
			continue;
		rl_term t;
		if (!term_at(ctx, i, &t))
			return true;   /* compacted: covered by its snapshot */
		/* One match is enough: log matching (checked on every append)
		 * makes the prefix below it identical. */
		if (t == k->term)
			return true;
		sim_check_fail(c, SIM_SAFETY, "leader completeness",
			       "member %" PRIu64 " leader of term %" PRIu64
			       " has term %" PRIu64 " at index %" PRIu64
			       " (0: no entry) but the entry of term %" PRIu64
			       " there was committed by term %" PRIu64,
			       id, term, t, i, k->term, k->known_in);
		return false;
	}
	return true;
}
