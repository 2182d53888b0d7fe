/*
 * test_raft_elect.c - elections: randomized timeouts and split votes, PreVote
 * and CheckQuorum (a returning partitioned member does not depose a healthy
 * leader), the vote persistence contract, restart from persisted state and
 * proposals refused on non-leaders.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static rl_term term_of(struct cluster *c, rl_id id)
{
	struct rl_status st;
	cl_status(c, id, &st);
	return st.hard_state.term;
}

static uint8_t role_of(struct cluster *c, rl_id id)
{
	struct rl_status st;
	cl_status(c, id, &st);
	return st.role;
}

/* paper §5.2: randomized timeouts elect exactly one leader, which every
 * member then follows. */
Test(raft_elect, leader_elected_by_timeout)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	rl_id l = cl_wait_leader(&c);
	cl_tick_all(&c, 2);
	for (rl_id id = 1; id <= 3; id++) {
		struct rl_status st;
		cl_status(&c, id, &st);
		cr_assert_eq(st.leader, l);
		cr_assert_eq(st.role == RL_LEADER, id == l);
	}
	cr_assert_eq(cl_propose(&c, l, "x"), RL_OK);
	cl_check_agree(&c);
	cr_assert_eq(c.nodes[1].applied, 2); /* the leader's no-op + "x" */
	cl_free(&c);
}

/* paper §5.2: a split vote elects nobody in that term; randomized timeouts
 * resolve it in a later term. */
Test(raft_elect, split_vote_resolved_later)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cfg.pre_vote = false;
	cfg.check_quorum = false;
	cl_init(&c, 4, 0, &cfg);
	cl_cut(&c, 1, 4, true);
	cl_cut(&c, 2, 3, true);
	rl_campaign(c.nodes[1].n);
	rl_campaign(c.nodes[2].n);
	cl_stabilize(&c);
	cr_assert_eq(cl_leader(&c), RL_NONE, "4 members, 2 votes each: no "
	    "quorum");
	cr_assert_eq(role_of(&c, 1), RL_CANDIDATE);
	cr_assert_eq(role_of(&c, 2), RL_CANDIDATE);
	cr_assert_eq(term_of(&c, 1), 1);
	cl_cut(&c, 1, 4, false);
	cl_cut(&c, 2, 3, false);
	rl_id l = cl_wait_leader(&c);
	cr_assert_gt(term_of(&c, l), 1);
	cl_free(&c);
}

/* thesis §9.6 PreVote + §4.2.3: a member cut off for many election
 * timeouts does not raise its term, and on its return the leader stays. */
Test(raft_elect, prevote_partitioned_member_does_not_disrupt)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	rl_term t = term_of(&c, 1);
	cl_isolate(&c, 3, true);
	cl_tick_all(&c, 100);
	cr_assert_eq(term_of(&c, 3), t, "PreVote must not bump the term");
	cr_assert_neq(role_of(&c, 3), RL_LEADER);
	cl_isolate(&c, 3, false);
	cl_tick_all(&c, 30);
	cr_assert_eq(cl_leader(&c), 1);
	cr_assert_eq(term_of(&c, 1), t);
	cr_assert_eq(cl_propose(&c, 1, "after"), RL_OK);
	cl_check_agree(&c);
	cl_free(&c);
}

/* Without PreVote the same scenario deposes the leader: shows the above
 * test observes something PreVote changes. */
Test(raft_elect, without_prevote_returning_member_raises_term)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cfg.pre_vote = false;
	cfg.check_quorum = false;
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	rl_term t = term_of(&c, 1);
	cl_isolate(&c, 3, true);
	cl_tick_all(&c, 100);
	cr_assert_gt(term_of(&c, 3), t);
	cl_free(&c);
}

/* thesis §6.2 CheckQuorum: a leader that hears from no quorum for an
 * election timeout steps down; the majority side elects a new leader. */
Test(raft_elect, check_quorum_isolated_leader_steps_down)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cl_isolate(&c, 1, true);
	cl_tick_all(&c, 2 * cfg.election_ticks + 1);
	cr_assert_neq(role_of(&c, 1), RL_LEADER);
	rl_id l = cl_wait_leader(&c);
	cr_assert(l == 2 || l == 3);
	cr_assert_gt(term_of(&c, l), term_of(&c, 1));
	cl_free(&c);
}

/* thesis §4.2.3: a follower that heard from its leader within the minimum
 * election timeout ignores a RequestVote, even one with a higher term. */
Test(raft_elect, lease_ignores_vote_requests)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cl_tick_all(&c, 1);
	rl_term t = term_of(&c, 2);
	struct rl_status st;
	cl_status(&c, 2, &st);
	struct rl_msg m = { 0 };
	m.type = RL_MSG_VOTE;
	m.from = 3;
	m.to = 2;
	m.term = t + 5;
	m.index = st.last_index + 10;
	m.log_term = t + 4;
	cr_assert_eq(rl_step(c.nodes[2].n, &m), RL_OK);
	cl_status(&c, 2, &st);
	cr_assert_eq(st.hard_state.term, t);
	cr_assert_eq(st.hard_state.vote, c.nodes[2].log.hs.vote);
	cr_assert_eq(st.leader, 1);
	cl_free(&c);
}

static struct rl_msg vote_req(rl_id from, rl_term term)
{
	return cl_msg(RL_MSG_VOTE, from, 2, term);
}

/* Figure 2 / thesis §3.8: a vote is granted only with the term and vote in
 * the same ready's hard state (must_sync), and the reply is in rd.msgs, to
 * be sent after persisting. A restart from what was persisted never votes
 * twice in a term. */
Test(raft_elect, vote_persist_contract)
{
	struct memlog ml;
	memlog_init(&ml);
	struct rl_node *n;
	n = cl_hand_node(&ml, 2, cl_default_config());
	struct rl_msg m = vote_req(1, 1);
	cr_assert_eq(rl_step(n, &m), RL_OK);
	struct rl_ready rd;
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	cr_assert(rd.has_hard_state && rd.must_sync);
	cr_assert_eq(rd.hard_state.term, 1);
	cr_assert_eq(rd.hard_state.vote, 1, "granted vote not in hard state");
	cr_assert_eq(rd.msgs_now_n, 0, "vote reply must wait for persistence");
	cr_assert_eq(rd.msgs_n, 1);
	cr_assert_eq(rd.msgs[0].type, RL_MSG_VOTE_RESP);
	cr_assert_not(rd.msgs[0].reject);
	/* persist, send, advance, then crash and restart */
	ml.hs = rd.hard_state;
	rl_advance(n, &rd);
	rl_node_free(n);
	n = cl_hand_node(&ml, 2, cl_default_config());
	m = vote_req(3, 1);
	cr_assert_eq(rl_step(n, &m), RL_OK);
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	cr_assert_eq(rd.msgs_n + rd.msgs_now_n, 1);
	struct rl_msg *r = rd.msgs_n ? &rd.msgs[0] : &rd.msgs_now[0];
	cr_assert_eq(r->type, RL_MSG_VOTE_RESP);
	cr_assert(r->reject, "voted twice in term 1 after restart");
	rl_advance(n, &rd);
	rl_node_free(n);
	memlog_free(&ml);
}

/* Figure 2: a restarted member keeps its term, vote and log, and the
 * cluster carries on without losing committed entries. */
Test(raft_elect, restart_from_persisted_state)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(cl_propose(&c, 1, "abc"), RL_OK);
	struct rl_status before, after;
	cl_status(&c, 3, &before);
	cl_crash(&c, 3);
	cl_restart(&c, 3);
	cl_status(&c, 3, &after);
	cr_assert_eq(after.hard_state.term, before.hard_state.term);
	cr_assert_eq(after.hard_state.vote, before.hard_state.vote);
	cr_assert_eq(after.last_index, before.last_index);
	cl_tick_all(&c, 3);
	cl_check_agree(&c);
	cl_crash(&c, 1);
	cl_restart(&c, 1);
	rl_id l = cl_wait_leader(&c);
	cr_assert_eq(cl_propose(&c, l, "more"), RL_OK);
	cl_tick_all(&c, 3);
	cl_check_agree(&c);
	cr_assert_eq(c.nodes[2].app_len, 34);
	cl_free(&c);
}

/* A proposal on a follower is refused with the leader's id so the client
 * can redirect; with no known leader the id is RL_NONE. */
Test(raft_elect, propose_on_follower_not_leader)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	rl_id lead = 99;
	cr_assert_eq(rl_propose(c.nodes[2].n, (const uint8_t *)"x", 1, &lead,
	    NULL), RL_ERR_NOT_LEADER);
	cr_assert_eq(lead, RL_NONE);
	cl_elect(&c, 1);
	cr_assert_eq(rl_propose(c.nodes[2].n, (const uint8_t *)"x", 1, &lead,
	    NULL), RL_ERR_NOT_LEADER);
	cr_assert_eq(lead, 1);
	rl_index idx = 0;
	cr_assert_eq(rl_propose(c.nodes[1].n, (const uint8_t *)"x", 1, &lead,
	    &idx), RL_OK);
	cr_assert_eq(idx, 2);
	cr_assert_str_eq(rl_strerror(RL_ERR_NOT_LEADER), "not leader");
	cl_free(&c);
}
