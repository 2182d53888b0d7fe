/*
 * test_node.c - the Raft core (raft.h) running on the log store, as the
 * broker will run it: every ready is persisted with one rl_logstore_save()
 * (snapshot, entries, hard state) before rl_advance(). A single-voter
 * member elects itself, commits proposals, is restarted from disk (hard
 * state from the store, log through the rl_storage adapter) and continues
 * in a later term. Checks that the store accepts what the core produces and
 * that the core restarts from what the store returns.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "lt_helpers.h"
#include "raft.h"

/* Readies handled per drain at most: a single member settles far sooner. */
#define NODE_READIES_MAX 1000

TestSuite(node, .init = lt_setup, .fini = lt_teardown, .timeout = 30);

struct member {
	rl_logstore *ls;
	struct rl_storage storage;
	struct rl_node *n;
	rl_index applied;
	uint32_t applied_data; /* committed normal entries with data */
};

static void member_start(struct member *m)
{
	struct rl_config cfg = { .id = 1, .seed = 42 };

	m->ls = lt_open(lt_dir);
	rl_logstore_storage(m->ls, &m->storage);
	rl_logstore_hard_state(m->ls, &cfg.hard_state);
	cfg.bootstrap.voters_n = 1;
	cfg.bootstrap.voters[0] = 1;
	cfg.storage = &m->storage;
	/* Nothing is applied to a state machine here; restart applies from
	 * the snapshot again, as an application without one would. */
	cfg.applied = 0;
	m->applied = rl_logstore_first_index(m->ls) - 1;
	int err = rl_node_new(&cfg, &m->n);
	cr_assert_eq(err, RL_OK, "rl_node_new: %s", rl_strerror(err));
}

static void member_stop(struct member *m)
{
	rl_node_free(m->n);
	rl_logstore_close(m->ls);
	memset(m, 0, sizeof(*m));
}

/* Ready contract steps 3, 5, 7 (no peers to send to). */
static void drain(struct member *m)
{
	struct rl_ready rd;

	for (int k = 0; k < NODE_READIES_MAX && rl_has_ready(m->n); k++) {
		cr_assert_eq(rl_ready(m->n, &rd), RL_OK);
		struct rl_logstore_batch b = {
			.snapshot = rd.has_snapshot ? &rd.snapshot : NULL,
			.entries = rd.entries,
			.entries_n = rd.entries_n,
			.hard_state = rd.has_hard_state ? &rd.hard_state : NULL,
		};
		if (b.snapshot || b.entries_n > 0 || b.hard_state) {
			int err = rl_logstore_save(m->ls, &b);
			cr_assert_eq(err, 0, "save: %s (%s)",
				     rl_logstore_strerror(err),
				     rl_logstore_errmsg(m->ls));
		}
		for (size_t c = 0; c < rd.committed_n; c++) {
			cr_assert_eq(rd.committed[c].index, m->applied + 1,
				     "applied out of order");
			m->applied = rd.committed[c].index;
			if (rd.committed[c].type == RL_ENTRY_NORMAL &&
			    rd.committed[c].data_len > 0)
				m->applied_data++;
		}
		rl_advance(m->n, &rd);
	}
	cr_assert(!rl_has_ready(m->n), "ready loop did not settle");
}

static void elect(struct member *m)
{
	struct rl_status st;

	rl_campaign(m->n);
	drain(m);
	rl_status(m->n, &st);
	cr_assert_eq(st.role, RL_LEADER, "single voter did not become leader");
}

static void propose_n(struct member *m, int count, int tag)
{
	char buf[32];

	for (int k = 0; k < count; k++) {
		int len = snprintf(buf, sizeof(buf), "op-%d-%d", tag, k);
		int err = rl_propose(m->n, (const uint8_t *)buf, (uint32_t)len,
				     NULL, NULL);
		cr_assert_eq(err, RL_OK, "propose: %s", rl_strerror(err));
		drain(m);
	}
}

Test(node, single_member_commits_restarts_and_continues)
{
	struct member m = { 0 };
	struct rl_hard_state hs1, hs2;
	struct rl_status st;
	rl_index last1;

	member_start(&m);
	elect(&m);
	propose_n(&m, 20, 1);
	cr_assert_eq(m.applied_data, 20);
	rl_logstore_hard_state(m.ls, &hs1);
	last1 = rl_logstore_last_index(m.ls);
	cr_assert_geq(hs1.term, 1);
	cr_assert_eq(hs1.vote, 1, "the vote for itself is on disk");
	cr_assert_eq(hs1.commit, last1, "everything proposed is committed");
	member_stop(&m);

	member_start(&m);
	rl_status(m.n, &st);
	cr_assert_eq(st.hard_state.term, hs1.term);
	cr_assert_eq(st.hard_state.commit, hs1.commit);
	cr_assert_eq(st.last_index, last1, "the core sees the stored log");
	elect(&m);
	propose_n(&m, 5, 2);
	rl_logstore_hard_state(m.ls, &hs2);
	cr_assert_gt(hs2.term, hs1.term);
	cr_assert_gt(rl_logstore_last_index(m.ls), last1 + 5 - 1);
	cr_assert_eq(hs2.commit, rl_logstore_last_index(m.ls));
	member_stop(&m);
}

/* Compaction after a snapshot: the restarted core reads first_index and
 * the snapshot meta from the store and continues after them. */
Test(node, restart_after_compaction)
{
	struct member m = { 0 };
	struct rl_snapshot_meta sm;
	struct rl_status st;

	member_start(&m);
	elect(&m);
	propose_n(&m, 10, 1);
	rl_index upto = m.applied - 2;
	struct rl_conf_state conf = { .voters_n = 1, .voters = { 1 } };
	sm = (struct rl_snapshot_meta){ .index = upto, .conf = conf };
	cr_assert_eq(rl_logstore_term(m.ls, upto, &sm.term), 0);
	cr_assert_eq(rl_snapshot_taken(m.n, &sm), RL_OK);
	cr_assert_eq(rl_logstore_compact(m.ls, upto, &conf), 0);
	drain(&m);
	propose_n(&m, 3, 2);
	rl_index last = rl_logstore_last_index(m.ls);
	member_stop(&m);

	member_start(&m);
	rl_status(m.n, &st);
	cr_assert_eq(st.first_index, upto + 1);
	cr_assert_eq(st.last_index, last);
	elect(&m);
	propose_n(&m, 3, 3);
	cr_assert_eq(rl_logstore_first_index(m.ls), upto + 1);
	member_stop(&m);
}
