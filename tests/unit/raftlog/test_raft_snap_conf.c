/*
 * test_raft_snap_conf.c - snapshots and log compaction (chunked
 * InstallSnapshot to a member that needs compacted entries) and single-server
 * membership changes (learners, promotion, removal of the leader, revert on
 * truncation).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* Leader-side compaction: the application snapshots its state at the
 * applied index, reports it, and drops the log prefix. */
static void take_snapshot(struct cluster *c, rl_id id)
{
	struct cl_node *x = &c->nodes[id];
	memlog_compact(&x->log, x->applied, &x->conf, x->app, x->app_len);
	cr_assert_eq(rl_snapshot_taken(x->n, &x->log.snap), RL_OK);
}

/* thesis §5.1-5.2: after compaction a member that needs compacted entries
 * gets the snapshot in bounded chunks, installs it (ready.has_snapshot) and
 * then follows the log from there. */
Test(raft_snap, chunked_install_to_lagging_member)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	c.chunk_bytes = 16;
	cl_elect(&c, 1);
	cl_crash(&c, 3);
	char buf[16];
	for (int i = 0; i < 20; i++) {
		snprintf(buf, sizeof(buf), "entry-%02d", i);
		cr_assert_eq(cl_propose(&c, 1, buf), RL_OK);
	}
	take_snapshot(&c, 1);
	take_snapshot(&c, 2);
	cr_assert_eq(cl_status_of(&c, 1).first_index, 22);
	/* member 3 comes back with an empty disk */
	memlog_free(&c.nodes[3].log);
	memlog_init(&c.nodes[3].log);
	cl_restart(&c, 3);
	cl_tick_all(&c, 10);
	cr_assert_geq(c.delivered[RL_MSG_SNAPSHOT], 160 / 16,
	    "snapshot of 160 bytes in %u chunks",
	    c.delivered[RL_MSG_SNAPSHOT]);
	cr_assert_eq(c.nodes[3].log.snap.index, 21);
	cl_check_agree(&c);
	cr_assert_eq(cl_propose(&c, 1, "after"), RL_OK);
	cl_tick_all(&c, 2);
	cl_check_agree(&c);
	cr_assert_eq(c.nodes[3].app_len, 165);
	/* member 3 can now lead with the snapshot as its log prefix */
	rl_transfer_leadership(c.nodes[1].n, 3, NULL);
	cl_stabilize(&c);
	cr_assert_eq(cl_leader(&c), 3);
	cl_free(&c);
}

/* The application can only report a snapshot of what it applied. */
Test(raft_snap, snapshot_taken_validation)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 1, 0, &cfg);
	cl_elect(&c, 1);
	cr_assert_eq(cl_propose(&c, 1, "a"), RL_OK);
	struct rl_snapshot_meta m = { 5, 1, cl_status_of(&c, 1).conf };
	cr_assert_eq(rl_snapshot_taken(c.nodes[1].n, &m), RL_ERR_INVAL);
	m.index = 2;
	m.term = 7;
	cr_assert_eq(rl_snapshot_taken(c.nodes[1].n, &m), RL_ERR_INVAL);
	m.term = 1;
	cr_assert_eq(rl_snapshot_taken(c.nodes[1].n, &m), RL_OK);
	cl_free(&c);
}

static int conf_change(struct cluster *c, rl_id leader, uint8_t type,
    rl_id node)
{
	struct rl_conf_change cc = { type, node };
	int rc = rl_propose_conf_change(c->nodes[leader].n, &cc, NULL, NULL);
	cl_stabilize(c);
	return rc;
}

/* thesis §4.1, §4.2.1: a learner receives the log but does not count
 * towards quorums; it can then be promoted to voter. */
Test(raft_conf, add_learner_then_promote)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cr_assert_eq(cl_propose(&c, 1, "a"), RL_OK);
	rl_id id = cl_add_node(&c);
	cr_assert_eq(conf_change(&c, 1, RL_CONF_ADD_LEARNER, id), RL_OK);
	cl_tick_all(&c, 3);
	cl_check_agree(&c);
	struct rl_status st = cl_status_of(&c, id);
	cr_assert_eq(st.conf.learners_n, 1);
	cr_assert_eq(st.conf.voters_n, 3);
	/* learner acks do not make a quorum: 1 + learner 4 of 3 voters */
	cl_cut(&c, 1, 2, true);
	cl_cut(&c, 1, 3, true);
	rl_index idx;
	cr_assert_eq(rl_propose(c.nodes[1].n, (const uint8_t *)"b", 1, NULL,
	    &idx), RL_OK);
	cl_stabilize(&c);
	cr_assert_eq(rl_match_index(c.nodes[1].n, id), idx);
	cr_assert_lt(cl_status_of(&c, 1).hard_state.commit, idx);
	cl_cut(&c, 1, 2, false);
	cl_cut(&c, 1, 3, false);
	cl_tick_all(&c, 2);
	cr_assert_geq(cl_status_of(&c, 1).hard_state.commit, idx);
	/* a learner never campaigns */
	cl_isolate(&c, id, true);
	cl_tick_all(&c, 40);
	cr_assert_eq(cl_status_of(&c, id).role, RL_FOLLOWER);
	cl_isolate(&c, id, false);
	cl_tick_all(&c, 2);
	cr_assert_eq(conf_change(&c, 1, RL_CONF_ADD_VOTER, id), RL_OK);
	cl_tick_all(&c, 2);
	st = cl_status_of(&c, id);
	cr_assert_eq(st.conf.voters_n, 4);
	cr_assert_eq(st.conf.learners_n, 0);
	cl_check_agree(&c);
	cl_free(&c);
}

/* thesis §4.1: one change at a time; a second change before the first is
 * committed is refused. Invalid changes are refused too. */
Test(raft_conf, one_change_at_a_time)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	struct rl_conf_change a = { RL_CONF_ADD_LEARNER, 4 };
	struct rl_conf_change b = { RL_CONF_ADD_LEARNER, 5 };
	struct rl_node *n = c.nodes[1].n;
	cr_assert_eq(rl_propose_conf_change(n, &a, NULL, NULL), RL_OK);
	cr_assert_eq(rl_propose_conf_change(n, &b, NULL, NULL),
	    RL_ERR_CONF_PENDING);
	cl_stabilize(&c);
	cr_assert_eq(rl_propose_conf_change(n, &a, NULL, NULL), RL_ERR_INVAL);
	struct rl_conf_change r = { RL_CONF_REMOVE, 9 };
	cr_assert_eq(rl_propose_conf_change(n, &r, NULL, NULL), RL_ERR_INVAL);
	cr_assert_eq(rl_propose_conf_change(n, &b, NULL, NULL), RL_OK);
	cl_free(&c);
}

/* thesis §4.2.2: a leader that removes itself keeps leading until the
 * change commits, then steps down; the rest elect a leader among
 * themselves. */
Test(raft_conf, remove_leader)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cr_assert_eq(conf_change(&c, 1, RL_CONF_REMOVE, 1), RL_OK);
	cl_tick_all(&c, 1);
	cr_assert_neq(cl_status_of(&c, 1).role, RL_LEADER);
	cl_crash(&c, 1);
	rl_id l = cl_wait_leader(&c);
	cr_assert(l == 2 || l == 3);
	struct rl_status st = cl_status_of(&c, l);
	cr_assert_eq(st.conf.voters_n, 2);
	cr_assert_eq(cl_propose(&c, l, "two"), RL_OK);
	cl_check_agree(&c);
	cl_free(&c);
}

/* thesis §4.1: a configuration entry takes effect when appended, before it
 * commits, and is reverted if it is truncated away. */
Test(raft_conf, revert_on_truncation)
{
	struct memlog ml;
	memlog_init(&ml);
	struct rl_config cfg = cl_default_config();
	cfg.id = 2;
	cfg.storage = &ml.st;
	cfg.bootstrap.voters_n = 3;
	for (uint32_t i = 0; i < 3; i++)
		cfg.bootstrap.voters[i] = i + 1;
	struct rl_node *n;
	cr_assert_eq(rl_node_new(&cfg, &n), RL_OK);
	uint8_t buf[RL_CONF_CHANGE_BYTES];
	struct rl_conf_change cc = { RL_CONF_ADD_LEARNER, 9 };
	rl_conf_change_encode(&cc, buf);
	struct rl_entry e[2] = {
		{ 1, 1, RL_ENTRY_NORMAL, 0, NULL },
		{ 1, 2, RL_ENTRY_CONF_CHANGE, RL_CONF_CHANGE_BYTES, buf },
	};
	struct rl_msg m = { 0 };
	m.type = RL_MSG_APPEND;
	m.from = 1;
	m.to = 2;
	m.term = 1;
	m.entries = e;
	m.entries_n = 2;
	m.commit = 1;
	cr_assert_eq(rl_step(n, &m), RL_OK);
	struct rl_status st;
	rl_status(n, &st);
	cr_assert_eq(st.conf.learners_n, 1, "not in effect when appended");
	cr_assert_eq(st.conf.learners[0], 9);
	struct rl_entry x = { 2, 2, RL_ENTRY_NORMAL, 0, NULL };
	m.term = 2;
	m.from = 3;
	m.index = 1;
	m.log_term = 1;
	m.entries = &x;
	m.entries_n = 1;
	cr_assert_eq(rl_step(n, &m), RL_OK);
	rl_status(n, &st);
	cr_assert_eq(st.conf.learners_n, 0, "not reverted on truncation");
	cr_assert_eq(st.last_index, 2);
	rl_node_free(n);
	memlog_free(&ml);
}
