/*
 * model.h - shared harness of the store's randomized model test and its
 * crash-safety tests: a seeded PRNG, a small in-memory reference model of
 * etcd v3 semantics (written from the semantics, not from store/), an op
 * generator over a tiny key alphabet so that operations collide, and
 * checkers that compare the store's replies and contents with the model.
 *
 * Everything is single-threaded and deterministic for a given seed: a
 * failure prints the seed, the step and the op so it replays exactly.
 */
#ifndef ST_MODEL_H
#define ST_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

/* ---- PRNG (splitmix64: explicit state, reproducible) ------------------ */

struct mrng { uint64_t s; };

uint64_t mrng_next(struct mrng *r);
/* Uniform in [0, n); n > 0. */
uint64_t mrng_below(struct mrng *r, uint64_t n);
/* true with probability pct/100. */
bool mrng_pct(struct mrng *r, unsigned pct);

/* ---- bump arena for generated ops and expected replies ---------------- */

struct arena { uint8_t *buf; size_t used; size_t cap; };

void arena_init(struct arena *a, size_t cap);
void arena_reset(struct arena *a);
void arena_fini(struct arena *a);
void *arena_alloc(struct arena *a, size_t n);

/* ---- the reference model ---------------------------------------------- */

/* Keys of the alphabet, in ascending byte order. */
#define M_KEYS_N 12u
/* Longest value the generator writes. */
#define M_VAL_BYTES_MAX 32u
/* value_bytes_max the random test opens its stores with (> M_VAL_BYTES_MAX
 * so that TOO_LARGE is cheap to provoke). */
#define M_TEST_VALUE_BYTES_MAX 40u
/* Leases alive at once in the model (the generator stays below). */
#define M_LEASES_MAX 16u

struct m_kv {
	int key;                 /* index into the alphabet */
	uint8_t val[M_VAL_BYTES_MAX];
	uint16_t val_len;
	st_rev create, mod;
	int64_t version;
	st_lease_id lease;
};

struct m_rec {               /* one event of the history */
	st_rev rev;
	bool del;
	int prev;                /* index of the key's newest record of an
	                          * EARLIER revision (what prev_kv shows), -1 */
	struct m_kv kv;          /* put: the new kv; delete: key and mod */
};

struct m_lease { st_lease_id id; int64_t ttl_s; };

struct m_state { bool live[M_KEYS_N]; struct m_kv kv[M_KEYS_N]; };

struct model {
	st_rev rev;
	st_rev compact;
	bool compacted_once;     /* etcd's compactMainRev is -1 until then */
	st_index applied;
	struct m_state cur;
	struct m_rec *recs;
	size_t recs_n, recs_cap;
	struct m_lease leases[M_LEASES_MAX];
	size_t leases_n;
	bool no_auto_lease;      /* generator: never grant id 0 */
	size_t value_bytes_max;  /* the store's st_options.value_bytes_max */
};

/* Expected reply of one op / read. */
struct m_resp {
	int err;
	uint8_t type;            /* enum st_resp_type */
	bool has_prev;           /* put */
	struct m_kv prev;
	struct m_kv *kvs;        /* range kvs / delete prev kvs */
	size_t kvs_n;
	int64_t count;
	bool more;
	bool keys_only;
	int64_t deleted;
	bool succeeded;          /* txn */
	struct m_resp *subs;
	size_t subs_n;
	st_lease_id lease_id;    /* lease grant */
	int64_t ttl_s;
};

void model_init(struct model *m);
void model_fini(struct model *m);
const uint8_t *model_key(int idx, size_t *len);

/* Applies one op (top level of an st_entry) to the model. auto_id is the
 * id the store picked for a lease grant with id 0 (0 if unknown). */
void model_apply(struct model *m, const struct st_op *op, st_lease_id auto_id,
	struct arena *a, struct m_resp *out);
/* A direct read (st_range). */
void model_range(struct model *m, const struct st_range *r, struct arena *a,
	struct m_resp *out);
/* The logical size store.h's quota accounting gives the model state. */
uint64_t model_logical_bytes(const struct model *m);
size_t model_live_keys(const struct model *m);

/* ---- generator --------------------------------------------------------- */

/* Known store bugs the generator can steer around while hunting for more
 * (env STORE_MODEL_AVOID, a bit mask; default 0 = avoid nothing). */
#define M_AVOID_SORT_VALUE_KEYS_ONLY 0x1u
unsigned model_avoid(void);

void gen_op(struct mrng *r, const struct model *m, struct arena *a,
	struct st_op *op);
void gen_range(struct mrng *r, const struct model *m, struct arena *a,
	bool top, struct st_range *out);
void dump_op(FILE *f, const struct st_op *op, int indent);

/* ---- checkers ----------------------------------------------------------- */

/* Why the first mismatch happened (empty while all is well). */
struct check {
	char why[2048];
	bool failed;
	bool applying;           /* checking st_apply results (not reads) */
};

bool check_resp(struct check *c, const char *what, const struct st_result *got,
	const struct m_resp *exp, const struct model *m);
bool check_same_result(struct check *c, const char *what,
	const struct st_result *x, const struct st_result *y);
/* Full comparison: contents now and at every retained revision sampled,
 * the whole event history, leases and status. */
bool check_full(struct check *c, st_store *st, const struct model *m,
	struct mrng *r, bool all_revs);
/* Events of one span via st_events() paging vs the model. */
bool check_events(struct check *c, st_store *st, const struct model *m,
	const uint8_t *key, size_t key_len, const uint8_t *end, size_t end_len,
	st_rev from_rev, size_t events_max, size_t bytes_max, bool prev_kv);
/* A random read (range, events, lease list/ttl) compared with the model. */
bool check_random_read(struct check *c, st_store *st, struct model *m,
	struct mrng *r, struct arena *a);

/* ---- runner ------------------------------------------------------------- */

struct run_cfg {
	uint64_t seed;
	int steps;
	bool two_stores;         /* apply to two stores, compare replies */
	bool snapshot;           /* end with snapshot -> restore checks */
	bool trace;              /* print every op */
	bool verbose;            /* print a summary at the end */
	double time_s_max;       /* stop early (not a failure) after this */
};

/* Temp dir helpers (mkdtemp under /tmp; recursive remove). */
int model_tmpdir(char *buf, size_t len, const char *tag);
void model_rmdir(const char *dir);

/* Runs one seed. 0 = every step matched; -1 = mismatch (why says seed,
 * step, op and the difference; also printed to stderr). */
int model_run(const struct run_cfg *cfg, char *why, size_t why_len);

/* Default seeds/steps, overridable by STORE_MODEL_SEED / STORE_MODEL_STEPS. */
uint64_t model_env_seed(uint64_t dflt, bool *set);
int model_env_steps(int dflt);

#endif /* ST_MODEL_H */
