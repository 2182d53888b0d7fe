/*
 * run.c - drives one seed of the randomized model test: generate a batch of
 * ops, apply it to the store (and to a second store, to prove that members
 * applying the same entries agree), apply it to the model, compare every
 * reply, read randomly in between, compare everything periodically, and end
 * with snapshot -> restore into a fresh store that must equal the model.
 */
#define _XOPEN_SOURCE 700
#include "model.h"

#include <ftw.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Entries per st_apply batch in the random test. */
#define RUN_BATCH_ENTRIES_MAX 4u
/* Full comparison every this many steps. */
#define RUN_FULL_CHECK_EVERY 150

int model_tmpdir(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/tmp/%s-XXXXXX", tag);
	return mkdtemp(buf) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
	struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void model_rmdir(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t model_env_seed(uint64_t dflt, bool *set)
{
	const char *s = getenv("STORE_MODEL_SEED");
	*set = s && *s;
	return *set ? strtoull(s, NULL, 0) : dflt;
}

int model_env_steps(int dflt)
{
	const char *s = getenv("STORE_MODEL_STEPS");
	return s && *s ? atoi(s) : dflt;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct run {
	const struct run_cfg *cfg;
	st_store *st[3];         /* A, B (two_stores), C (restored) */
	char dir[3][64];
	struct model m;
	struct mrng r;
	struct arena a;
	struct check c;
	int step;
	struct st_entry ent[RUN_BATCH_ENTRIES_MAX];
	size_t ent_n;
};

static void report(struct run *u, char *why, size_t why_len)
{
	fprintf(stderr, "store model test FAILED: seed=%" PRIu64 " step=%d "
		"(replay: STORE_MODEL_SEED=%" PRIu64 " STORE_MODEL_STEPS=%d%s%s "
		"store-model)\n  %s\n  last batch applied, %zu entries:\n",
		u->cfg->seed, u->step, u->cfg->seed, u->cfg->steps,
		u->cfg->two_stores ? " STORE_MODEL_TWO=1" : "",
		u->cfg->snapshot ? " STORE_MODEL_SNAPSHOT=1" : "", u->c.why, u->ent_n);
	for (size_t i = 0; i < u->ent_n; i++) {
		fprintf(stderr, "  [%zu] index %" PRIu64 ": ", i, u->ent[i].index);
		dump_op(stderr, &u->ent[i].op, 4);
	}
	snprintf(why, why_len, "seed=%" PRIu64 " step=%d: %s", u->cfg->seed,
		u->step, u->c.why);
}

/* Ops of one batch are generated against a shadow of the model so each
 * sees its predecessors' effects (keeps "one reason to fail" true). */
static void gen_batch(struct run *u)
{
	struct model sh = u->m;
	sh.recs_cap = 64;
	sh.recs_n = 0;
	sh.recs = malloc(sh.recs_cap * sizeof(*sh.recs));
	size_t n = mrng_pct(&u->r, 25) ?
		1 + mrng_below(&u->r, RUN_BATCH_ENTRIES_MAX) : 1;
	u->ent_n = 0;
	for (size_t i = 0; i < n; i++) {
		struct st_entry *e = &u->ent[u->ent_n++];
		e->index = u->m.applied + u->ent_n;
		gen_op(&u->r, &sh, &u->a, &e->op);
		if (e->op.type == ST_OP_LEASE_GRANT && e->op.u.lease_grant.id == 0)
			break; /* its id is known only after the store picks it */
		struct m_resp junk;
		size_t mark = u->a.used;
		model_apply(&sh, &e->op, 0, &u->a, &junk);
		u->a.used = mark;
	}
	model_fini(&sh);
}

/* Store B gets the entries as a follower would: encoded to the Raft log
 * format and decoded again (st_op_encode/st_op_decode), batched the same
 * way or one entry per st_apply. */
static int apply_b(struct run *u, struct st_result *rb)
{
	struct st_entry ent[RUN_BATCH_ENTRIES_MAX];
	st_decoded *dec[RUN_BATCH_ENTRIES_MAX] = { 0 };
	int rc = 0;
	for (size_t i = 0; i < u->ent_n && !rc; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		ent[i] = u->ent[i];
		rc = st_op_encode(&u->ent[i].op, &buf, &len);
		if (rc == ST_ERR_TXN_TOO_DEEP || rc == ST_ERR_UNKNOWN_OP) {
			/* documented: such ops cannot be logged; st_apply must
			 * still refuse them the same way */
			rc = 0;
			continue;
		}
		if (!rc)
			rc = st_op_decode(buf, len, &dec[i]);
		free(buf);
		if (rc)
			snprintf(u->c.why, sizeof(u->c.why), "codec of entry %zu: %d "
				"(%s)", i, rc, st_strerror(rc));
		else
			ent[i].op = *st_decoded_op(dec[i]);
	}
	if (!rc && mrng_pct(&u->r, 50)) {
		rc = st_apply(u->st[1], ent, u->ent_n, rb);
	} else {
		for (size_t i = 0; i < u->ent_n && !rc; i++)
			rc = st_apply(u->st[1], &ent[i], 1, &rb[i]);
	}
	for (size_t i = 0; i < u->ent_n; i++)
		st_decoded_free(dec[i]);
	return rc;
}

static bool check_batch(struct run *u, const struct st_result *ra)
{
	for (size_t i = 0; i < u->ent_n; i++) {
		const struct st_op *op = &u->ent[i].op;
		st_lease_id auto_id = 0;
		if (op->type == ST_OP_LEASE_GRANT && op->u.lease_grant.id == 0 &&
			ra[i].err == 0) {
			auto_id = ra[i].resp.u.lease_grant.id;
			for (size_t l = 0; l < u->m.leases_n; l++)
				if (auto_id == u->m.leases[l].id)
					auto_id = -1;
			if (auto_id <= 0) {
				snprintf(u->c.why, sizeof(u->c.why), "lease grant id 0: "
					"store picked %" PRId64 " (zero, negative or in use)",
					ra[i].resp.u.lease_grant.id);
				u->c.failed = true;
				return false;
			}
		}
		struct m_resp exp;
		model_apply(&u->m, op, auto_id, &u->a, &exp);
		char what[64];
		snprintf(what, sizeof(what), "entry %zu (%s)", i,
			ra[i].applied ? "applied" : "NOT marked applied");
		if (!ra[i].applied) {
			snprintf(u->c.why, sizeof(u->c.why), "%s", what);
			u->c.failed = true;
			return false;
		}
		u->c.applying = true;
		bool ok = check_resp(&u->c, what, &ra[i], &exp, &u->m);
		u->c.applying = false;
		if (!ok)
			return false;
	}
	return true;
}

/* Close and reopen store A: everything (lease id counter, compact
 * revision, logical size) must survive; B keeps running, so a member that
 * restarted must still agree with one that did not. */
static bool reopen_a(struct run *u)
{
	struct st_options o;
	st_options_init(&o);
	o.no_sync = true;
	o.value_bytes_max = M_TEST_VALUE_BYTES_MAX;
	st_close(u->st[0]);
	u->st[0] = NULL;
	int rc = st_open(u->dir[0], &o, &u->st[0]);
	if (rc) {
		snprintf(u->c.why, sizeof(u->c.why), "reopen: %d (%s)", rc,
			st_strerror(rc));
		u->c.failed = true;
	}
	return rc == 0;
}

static bool run_step(struct run *u)
{
	if (mrng_pct(&u->r, 1) && !reopen_a(u))
		return false;
	struct st_result ra[RUN_BATCH_ENTRIES_MAX] = { 0 };
	struct st_result rb[RUN_BATCH_ENTRIES_MAX] = { 0 };
	arena_reset(&u->a);
	gen_batch(u);
	if (u->cfg->trace)
		for (size_t i = 0; i < u->ent_n; i++) {
			fprintf(stderr, "step %d [%zu]: ", u->step, i);
			dump_op(stderr, &u->ent[i].op, 2);
		}
	int rc = st_apply(u->st[0], u->ent, u->ent_n, ra);
	bool ok = rc == 0 || (snprintf(u->c.why, sizeof(u->c.why),
		"st_apply returned %d (%s)", rc, st_strerror(rc)), u->c.failed = true,
		false);
	if (ok && u->st[1]) {
		rc = apply_b(u, rb);
		if (rc) {
			if (!u->c.why[0])
				snprintf(u->c.why, sizeof(u->c.why), "store B: st_apply "
					"returned %d", rc);
			u->c.failed = true;
			ok = false;
		}
		for (size_t i = 0; ok && i < u->ent_n; i++)
			ok = check_same_result(&u->c, "A vs B", &ra[i], &rb[i]);
	}
	if (ok)
		ok = check_batch(u, ra);
	for (size_t i = 0; i < u->ent_n; i++) {
		st_result_free(&ra[i]);
		st_result_free(&rb[i]);
	}
	for (int i = 0; ok && i < 2; i++)
		if (mrng_pct(&u->r, 30))
			ok = check_random_read(&u->c, u->st[0], &u->m, &u->r, &u->a);
	if (ok && u->step % RUN_FULL_CHECK_EVERY == RUN_FULL_CHECK_EVERY - 1)
		ok = check_full(&u->c, u->st[0], &u->m, &u->r, false);
	return ok;
}

static int open_store(struct run *u, int i)
{
	struct st_options o;
	st_options_init(&o);
	o.no_sync = true; /* a crash of the OS is not what this test is about */
	o.value_bytes_max = M_TEST_VALUE_BYTES_MAX;
	if (model_tmpdir(u->dir[i], sizeof(u->dir[i]), "store-model"))
		return -1;
	return st_open(u->dir[i], &o, &u->st[i]);
}

/* Snapshot A, restore into fresh C: C must equal the model, then keep
 * applying the same entries to A and C with identical replies. */
static bool run_snapshot(struct run *u)
{
	char path[96];
	snprintf(path, sizeof(path), "%s/snap.bin", u->dir[2]);
	int rc = st_snapshot_file(u->st[0], path);
	if (!rc)
		rc = st_restore_file(u->st[2], path);
	if (rc) {
		snprintf(u->c.why, sizeof(u->c.why), "snapshot/restore: %d (%s)",
			rc, st_strerror(rc));
		u->c.failed = true;
		return false;
	}
	remove(path);
	if (!check_full(&u->c, u->st[2], &u->m, &u->r, true))
		return false;
	st_store *b = u->st[1];
	u->st[1] = u->st[2];
	bool ok = true;
	for (int i = 0; ok && i < 40; i++, u->step++)
		ok = run_step(u);
	u->st[1] = b;
	return ok && check_full(&u->c, u->st[2], &u->m, &u->r, false);
}

/* The logical contents of src's snapshot, restored into a fresh store,
 * equal the model (used on both members of the two-store mode). */
static bool snapshot_matches(struct run *u, st_store *src, const char *who)
{
	char dir[64], path[96];
	st_store *c = NULL;
	if (model_tmpdir(dir, sizeof(dir), "store-model"))
		return false;
	snprintf(path, sizeof(path), "%s/snap.bin", dir);
	int rc = st_snapshot_file(src, path);
	if (!rc)
		rc = st_open(dir, NULL, &c);
	if (!rc)
		rc = st_restore_file(c, path);
	bool ok = rc == 0;
	if (!ok) {
		snprintf(u->c.why, sizeof(u->c.why), "%s: snapshot/restore: %d (%s)",
			who, rc, st_strerror(rc));
		u->c.failed = true;
	} else {
		ok = check_full(&u->c, c, &u->m, &u->r, true);
	}
	st_close(c);
	model_rmdir(dir);
	return ok;
}

static bool run_all(struct run *u)
{
	double t0 = now_s();
	for (u->step = 0; u->step < u->cfg->steps; u->step++) {
		if (!run_step(u))
			return false;
		if (u->cfg->time_s_max > 0 && now_s() - t0 > u->cfg->time_s_max) {
			fprintf(stderr, "store model: seed %" PRIu64 " stopped after %d "
				"steps (time budget)\n", u->cfg->seed, u->step + 1);
			u->step++;
			break;
		}
	}
	u->ent_n = 0;
	if (!check_full(&u->c, u->st[0], &u->m, &u->r, true))
		return false;
	if (u->st[1] && (!check_full(&u->c, u->st[1], &u->m, &u->r, true) ||
		!snapshot_matches(u, u->st[0], "store A") ||
		!snapshot_matches(u, u->st[1], "store B")))
		return false;
	return !u->st[2] || run_snapshot(u);
}

int model_run(const struct run_cfg *cfg, char *why, size_t why_len)
{
	struct run *u = calloc(1, sizeof(*u));
	int rc = -1;
	u->cfg = cfg;
	u->r.s = cfg->seed;
	model_init(&u->m);
	u->m.value_bytes_max = M_TEST_VALUE_BYTES_MAX;
	arena_init(&u->a, 8u << 20);
	int n = cfg->snapshot ? 3 : cfg->two_stores ? 2 : 1;
	for (int i = 0; i < n; i++)
		if ((i == 1 && !cfg->two_stores) ? false : open_store(u, i) != 0) {
			snprintf(why, why_len, "cannot open store %d", i);
			goto out_close_stores;
		}
	if (run_all(u)) {
		rc = 0;
		if (cfg->verbose)
			fprintf(stderr, "seed %" PRIu64 ": applied %" PRIu64 " revision %"
				PRId64 " compact %" PRId64 " history %zu events, %zu keys, "
				"%zu leases\n", cfg->seed, u->m.applied, u->m.rev,
				u->m.compact, u->m.recs_n, model_live_keys(&u->m),
				u->m.leases_n);
	}
	else
		report(u, why, why_len);
out_close_stores:
	for (int i = 0; i < 3; i++) {
		st_close(u->st[i]);
		if (u->dir[i][0])
			model_rmdir(u->dir[i]);
	}
	arena_fini(&u->a);
	model_fini(&u->m);
	free(u);
	return rc;
}
