/*
 * test_raft_random.c - seeded random fault runs over the in-test cluster:
 * message loss, duplication and reordering, partitions, crashes/restarts and
 * log compaction, while the harness checks Election Safety and State
 * Machine Safety (paper §5.2, §5.4.3, Figure 3) on every ready. After the
 * faults stop, the cluster must elect a leader and converge (liveness).
 * A failure prints its seed; the run replays exactly from it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define RANDOM_SEEDS 300
#define RANDOM_TICKS 300

/* Snapshots here carry the applied data so installs rebuild the app. */
static void compact_with_data(struct cluster *c, rl_id a)
{
	struct cl_node *x = &c->nodes[a];
	if (!x->up || x->applied < x->log.snap.index + 5)
		return;
	memlog_compact(&x->log, x->applied, &x->conf, x->app, x->app_len);
	cr_assert_eq(rl_snapshot_taken(x->n, &x->log.snap), RL_OK);
}

static void random_fault(struct cluster *c)
{
	uint64_t r = cl_rand(c) % 100;
	rl_id a = 1 + cl_rand(c) % c->n;
	rl_id b = 1 + cl_rand(c) % c->n;
	if (r < 15 && c->nodes[a].up)
		cl_crash(c, a);
	else if (r < 40 && !c->nodes[a].up)
		cl_restart(c, a);
	else if (r < 60 && a != b)
		cl_cut(c, a, b, true);
	else if (r < 80)
		memset(c->cut, 0, sizeof(c->cut));
}

static bool is_member(const struct rl_conf_state *cs, rl_id id)
{
	for (uint32_t i = 0; i < cs->voters_n; i++)
		if (cs->voters[i] == id)
			return true;
	for (uint32_t i = 0; i < cs->learners_n; i++)
		if (cs->learners[i] == id)
			return true;
	return false;
}

/* A leader exists and every member of its configuration applied as much. */
static bool converged(struct cluster *c)
{
	rl_id l = cl_leader(c);
	if (l == RL_NONE)
		return false;
	struct rl_status st;
	cl_status(c, l, &st);
	for (rl_id id = 1; id <= c->n; id++)
		if (is_member(&st.conf, id) &&
		    c->nodes[id].applied != c->nodes[l].applied)
			return false;
	return true;
}

/* Members removed for good take no further part (they get no log). */
static void stop_non_members(struct cluster *c)
{
	rl_id l = cl_leader(c);
	struct rl_status st;
	cl_status(c, l, &st);
	for (rl_id id = 1; id <= c->n; id++)
		if (!is_member(&st.conf, id) && c->nodes[id].up)
			cl_crash(c, id);
}

/* RAFT_RANDOM_DEBUG=1: print each member's state before the final check. */
static void dump(struct cluster *c)
{
	rl_id l = cl_leader(c);
	for (rl_id id = 1; id <= c->n; id++) {
		struct rl_status st;
		cl_status(c, id, &st);
		fprintf(stderr, "node %llu role %u term %llu commit %llu applied "
		    "%llu last %llu first %llu leader %llu match %llu\n",
		    (unsigned long long)id, st.role,
		    (unsigned long long)st.hard_state.term,
		    (unsigned long long)st.hard_state.commit,
		    (unsigned long long)c->nodes[id].applied,
		    (unsigned long long)st.last_index,
		    (unsigned long long)st.first_index,
		    (unsigned long long)l,
		    (unsigned long long)(l ? rl_match_index(c->nodes[l].n, id) : 0));
	}
}


#define RANDOM_READS_MAX 4096

static unsigned long stat_snapshots, stat_rejects, stat_applied, stat_reads,
    stat_confs;

/* Per run: reads issued, and for each the highest index known applied
 * anywhere when it was issued (a write acknowledged before the read
 * started is at or below it, so the read index must be >= it). */
struct run_state {
	uint64_t seed;
	unsigned proposed;
	uint64_t reads_n;
	rl_index read_floor[RANDOM_READS_MAX];
	unsigned reads_done;
};

static rl_index max_applied(struct cluster *c)
{
	rl_index m = 0;
	for (rl_id id = 1; id <= c->n; id++)
		if (c->nodes[id].applied > m)
			m = c->nodes[id].applied;
	return m;
}

/* thesis §6.4 linearizability of ReadIndex: check every answered read. */
static void drain_reads(struct cluster *c, struct run_state *s)
{
	for (rl_id id = 1; id <= c->n; id++) {
		struct cl_node *x = &c->nodes[id];
		for (size_t k = 0; k < x->reads_n; k++) {
			uint64_t seq;
			cr_assert_eq(x->reads[k].ctx_len, sizeof(seq));
			memcpy(&seq, x->reads[k].ctx, sizeof(seq));
			cr_assert_lt(seq, s->reads_n);
			cr_assert_geq(x->reads[k].index, s->read_floor[seq],
			    "seed %llu: stale read (index %llu < %llu)",
			    (unsigned long long)s->seed,
			    (unsigned long long)x->reads[k].index,
			    (unsigned long long)s->read_floor[seq]);
			s->reads_done++;
		}
		x->reads_n = 0;
	}
}

static void random_read(struct cluster *c, struct run_state *s, rl_id a)
{
	if (!c->nodes[a].up || s->reads_n >= RANDOM_READS_MAX)
		return;
	uint64_t seq = s->reads_n;
	if (rl_read_index(c->nodes[a].n, (const uint8_t *)&seq, sizeof(seq),
	    NULL) == RL_OK)
		s->read_floor[s->reads_n++] = max_applied(c);
}

/* thesis §4.1: one random single-server change (add learner, promote,
 * remove), and thesis §3.10 transfers, on the current leader. */
static void random_admin(struct cluster *c, rl_id l, rl_id a, bool transfer)
{
	struct rl_status st;
	cl_status(c, l, &st);
	if (transfer) {
		(void)rl_transfer_leadership(c->nodes[l].n, a, NULL);
		return;
	}
	struct rl_conf_change cc = { RL_CONF_ADD_LEARNER, a };
	bool voter = false, learner = false;
	for (uint32_t i = 0; i < st.conf.voters_n; i++)
		voter |= st.conf.voters[i] == a;
	for (uint32_t i = 0; i < st.conf.learners_n; i++)
		learner |= st.conf.learners[i] == a;
	if (voter && st.conf.voters_n <= 3)
		return;
	if (voter)
		cc.type = RL_CONF_REMOVE;
	else if (learner)
		cc.type = RL_CONF_ADD_VOTER;
	if (rl_propose_conf_change(c->nodes[l].n, &cc, NULL, NULL) == RL_OK)
		stat_confs++;
}

static void chaos_tick(struct cluster *c, struct run_state *s)
{
	uint64_t r = cl_rand(c) % 100;
	rl_id a = 1 + cl_rand(c) % c->n;
	if (r < 10)
		random_fault(c);
	else if (r < 13)
		compact_with_data(c, a);
	else if (r < 18)
		random_read(c, s, a);
	rl_id l = cl_leader(c);
	if (l != RL_NONE) {
		if (r >= 18 && r < 21)
			random_admin(c, l, a, r == 20);
		char buf[32];
		snprintf(buf, sizeof(buf), "s%llu-%u;",
		    (unsigned long long)s->seed, s->proposed);
		if (rl_propose(c->nodes[l].n, (const uint8_t *)buf,
		    (uint32_t)strlen(buf), NULL, NULL) == RL_OK)
			s->proposed++;
	}
	cl_tick_all(c, 1);
	drain_reads(c, s);
}

/* Stop the faults, restart everyone, and require convergence of the
 * members of the final configuration (liveness). */
static void heal_and_check(struct cluster *c, struct run_state *s)
{
	c->drop_pct = c->dup_pct = c->reorder_pct = c->crash_mid_pct = 0;
	memset(c->cut, 0, sizeof(c->cut));
	for (rl_id id = 1; id <= c->n; id++)
		if (!c->nodes[id].up)
			cl_restart(c, id);
	rl_id l = cl_wait_leader(c);
	int rc = RL_ERR_TRANSFERRING;
	for (int k = 0; k < 100 && rc != RL_OK; k++) {
		l = cl_wait_leader(c);
		rc = cl_propose(c, l, "final");
		if (rc != RL_OK)
			cl_tick_all(c, 1);
	}
	cr_assert_eq(rc, RL_OK, "seed %llu", (unsigned long long)s->seed);
	for (int k = 0; k < 200 && !converged(c); k++)
		cl_tick_all(c, 1);
	stop_non_members(c);
	for (int k = 0; k < 200 && !converged(c); k++)
		cl_tick_all(c, 1);
	drain_reads(c, s);
	if (getenv("RAFT_RANDOM_DEBUG") != NULL)
		dump(c);
	cl_check_agree(c);
}

static void run(uint64_t seed)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cfg.seed = seed;
	cfg.inflight_msgs_max = 1 + seed % 8;
	cfg.msg_bytes_max = 64;
	cfg.pre_vote = seed % 4 != 0;
	cfg.check_quorum = seed % 3 != 0;
	cl_init(&c, 3 + seed % 3, seed % 2, &cfg);
	c.rng = seed * 7919 + 1;
	c.chunk_bytes = 8 + seed % 32;
	c.drop_pct = 5;
	c.dup_pct = 3;
	c.reorder_pct = 20;
	c.crash_mid_pct = 1;
	struct run_state *s = calloc(1, sizeof(*s));
	s->seed = seed;
	for (unsigned t = 0; t < RANDOM_TICKS; t++)
		chaos_tick(&c, s);
	heal_and_check(&c, s);
	stat_snapshots += c.delivered[RL_MSG_SNAPSHOT];
	stat_rejects += c.rejects_delivered;
	stat_applied += c.nodes[cl_leader(&c)].applied;
	stat_reads += s->reads_done;
	free(s);
	cl_free(&c);
}

Test(raft_random, faults_keep_safety_and_converge, .timeout = 550)
{
	/* RAFT_RANDOM_SEEDS=n runs a longer soak by hand */
	const char *env = getenv("RAFT_RANDOM_SEEDS");
	uint64_t seeds = env != NULL ? strtoull(env, NULL, 10) : RANDOM_SEEDS;
	const char *first = getenv("RAFT_RANDOM_FIRST");
	for (uint64_t seed = first ? strtoull(first, NULL, 10) : 1;
	    seed <= seeds; seed++) {
		cr_log_info("seed %llu", (unsigned long long)seed);
		run(seed);
	}
	cr_log_info("snapshot chunks %lu, append rejections %lu, entries "
	    "applied %lu, reads answered %lu, membership changes %lu",
	    stat_snapshots, stat_rejects, stat_applied, stat_reads, stat_confs);
	/* the faults must actually exercise repair and snapshots */
	cr_assert_gt(stat_snapshots, 0);
	cr_assert_gt(stat_rejects, 0);
	cr_assert_gt(stat_reads, 0);
	cr_assert_gt(stat_confs, 0);
}
