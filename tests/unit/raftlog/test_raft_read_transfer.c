/*
 * test_raft_read_transfer.c - linearizable reads with ReadIndex (on the
 * leader, forwarded from a follower, never answered by a deposed leader) and
 * leadership transfer (TimeoutNow after catch-up, proposals refused during
 * the transfer, abort after an election timeout).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* thesis §6.4: the leader answers a read with its commit index after a
 * heartbeat round confirms it still leads, without writing to the log. */
Test(raft_read, read_index_on_leader)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cr_assert_eq(cl_propose(&c, 1, "w"), RL_OK);
	struct rl_status before = cl_status_of(&c, 1);
	unsigned hb = c.delivered[RL_MSG_HEARTBEAT_RESP];
	cr_assert_eq(rl_read_index(c.nodes[1].n, (const uint8_t *)"r1", 2,
	    NULL), RL_OK);
	cl_stabilize(&c);
	cr_assert_eq(c.nodes[1].reads_n, 1);
	cr_assert_eq(c.nodes[1].reads[0].index, before.hard_state.commit);
	cr_assert_eq(c.nodes[1].reads[0].ctx_len, 2);
	cr_assert(memcmp(c.nodes[1].reads[0].ctx, "r1", 2) == 0);
	cr_assert_gt(c.delivered[RL_MSG_HEARTBEAT_RESP], hb,
	    "leadership not confirmed by a heartbeat round");
	cr_assert_eq(cl_status_of(&c, 1).last_index, before.last_index,
	    "a read wrote to the log");
	cl_free(&c);
}

/* thesis §6.4: a follower forwards the read to the leader and gets back an
 * index at least the leader's commit index. */
Test(raft_read, read_index_forwarded_from_follower)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cr_assert_eq(cl_propose(&c, 1, "w"), RL_OK);
	rl_id lead = RL_NONE;
	cr_assert_eq(rl_read_index(c.nodes[3].n, (const uint8_t *)"f", 1,
	    &lead), RL_OK);
	cr_assert_eq(lead, 1);
	cl_stabilize(&c);
	cr_assert_eq(c.nodes[3].reads_n, 1);
	cr_assert_eq(c.nodes[3].reads[0].index,
	    cl_status_of(&c, 1).hard_state.commit);
	cl_free(&c);
}

/* Every read the leader takes between two readies (its own and those
 * followers forward) shares one heartbeat round: one heartbeat per
 * follower, not one per read. */
/* Three members, member 1 leading with an entry of its term committed
 * everywhere: reads can be released. */
static void settled_leader(struct cluster *c)
{
	struct rl_config cfg = cl_default_config();
	cl_init(c, 3, 0, &cfg);
	cl_elect(c, 1);
	cr_assert_eq(cl_propose(c, 1, "w"), RL_OK);
	cl_stabilize(c);
}

Test(raft_read, reads_between_readies_share_one_round)
{
	struct cluster c;
	settled_leader(&c);
	rl_index commit = cl_status_of(&c, 1).hard_state.commit;
	unsigned hb = c.delivered[RL_MSG_HEARTBEAT];
	unsigned resp = c.delivered[RL_MSG_READ_INDEX_RESP];
	struct rl_node *n = c.nodes[1].n;
	cr_assert_eq(rl_read_index(n, (const uint8_t *)"a", 1, NULL), RL_OK);
	cr_assert_eq(rl_read_index(n, (const uint8_t *)"b", 1, NULL), RL_OK);
	struct rl_msg fwd = cl_msg(RL_MSG_READ_INDEX, 3, 1,
	    cl_status_of(&c, 1).hard_state.term);
	fwd.ctx_len = 1;
	fwd.ctx[0] = 'c';
	cr_assert_eq(rl_step(n, &fwd), RL_OK);
	cl_stabilize(&c);
	cr_assert_eq(c.delivered[RL_MSG_HEARTBEAT] - hb, 2,
	    "%u heartbeats for three reads of one turn",
	    c.delivered[RL_MSG_HEARTBEAT] - hb);
	cr_assert_eq(c.nodes[1].reads_n, 2);
	cr_assert_eq(c.nodes[1].reads[0].index, commit);
	cr_assert_eq(c.nodes[1].reads[1].index, commit);
	cr_assert_eq(c.delivered[RL_MSG_READ_INDEX_RESP] - resp, 1,
	    "the forwarded read was not answered");
	cl_free(&c);
}

/* Takes the leader's ready by hand: persists its hard state, keeps the
 * seq of its heartbeat round (0 = none) and whether a read state with ctx
 * `want` is in it, then advances. */
/* The seq of the heartbeat round rd sends (0 = none). */
static uint64_t round_seq(const struct rl_ready *rd)
{
	uint64_t seq = 0;
	for (size_t i = 0; i < rd->msgs_now_n; i++)
		if (rd->msgs_now[i].type == RL_MSG_HEARTBEAT)
			seq = rd->msgs_now[i].seq;
	return seq;
}

static uint64_t hand_ready(struct cluster *c, char want, bool *has_want)
{
	struct rl_node *n = c->nodes[1].n;
	struct rl_ready rd;
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	uint64_t seq = round_seq(&rd);
	*has_want = false;
	for (size_t i = 0; i < rd.read_states_n; i++)
		*has_want |= rd.read_states[i].ctx_len == 1 &&
		    rd.read_states[i].ctx[0] == (uint8_t)want;
	memlog_append(&c->nodes[1].log, rd.entries, rd.entries_n);
	if (rd.has_hard_state)
		c->nodes[1].log.hs = rd.hard_state;
	rl_advance(n, &rd);
	return seq;
}

static void ack_round(struct cluster *c, uint64_t seq)
{
	rl_term term = cl_status_of(c, 1).hard_state.term;
	for (rl_id f = 2; f <= 3; f++) {
		struct rl_msg m = cl_msg(RL_MSG_HEARTBEAT_RESP, f, 1, term);
		m.seq = seq;
		cr_assert_eq(rl_step(c->nodes[1].n, &m), RL_OK);
	}
}

/* thesis §6.4: a read taken after a heartbeat round was sent (here while
 * that ready was out) is not released by that round's acknowledgements,
 * only by a later round's. */
Test(raft_read, read_after_a_round_waits_for_the_next)
{
	struct cluster c;
	settled_leader(&c);
	struct rl_node *n = c.nodes[1].n;
	bool got;
	cr_assert_eq(rl_read_index(n, (const uint8_t *)"a", 1, NULL), RL_OK);
	struct rl_ready rd;
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	uint64_t seq_a = round_seq(&rd);
	cr_assert_gt(seq_a, 0, "no heartbeat round for read a");
	/* b arrives while a's ready is out */
	cr_assert_eq(rl_read_index(n, (const uint8_t *)"b", 1, NULL), RL_OK);
	if (rd.has_hard_state)
		c.nodes[1].log.hs = rd.hard_state;
	rl_advance(n, &rd);
	ack_round(&c, seq_a);
	uint64_t seq_b = hand_ready(&c, 'b', &got);
	cr_assert(!got, "read b released by the round sent before it");
	cr_assert_gt(seq_b, seq_a, "no new round for read b");
	ack_round(&c, seq_b);
	(void)hand_ready(&c, 'b', &got);
	cr_assert(got, "read b not released by its own round");
	cl_free(&c);
}

/* A tick's heartbeat round carries the newest read seq: it is the round a
 * pending read waits for, and the ready sends no second one. */
Test(raft_read, tick_round_serves_pending_reads)
{
	struct cluster c;
	settled_leader(&c);
	struct rl_node *n = c.nodes[1].n;
	cr_assert_eq(rl_read_index(n, (const uint8_t *)"t", 1, NULL), RL_OK);
	struct rl_config cfg = cl_default_config();
	for (unsigned i = 0; i < cfg.heartbeat_ticks; i++)
		rl_tick(n);
	struct rl_ready rd;
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	size_t hb = 0;
	for (size_t i = 0; i < rd.msgs_now_n; i++)
		hb += rd.msgs_now[i].type == RL_MSG_HEARTBEAT;
	cr_assert_eq(hb, 2, "%zu heartbeats: one round per follower expected", hb);
	uint64_t seq = round_seq(&rd);
	if (rd.has_hard_state)
		c.nodes[1].log.hs = rd.hard_state;
	rl_advance(n, &rd);
	ack_round(&c, seq);
	bool got;
	(void)hand_ready(&c, 't', &got);
	cr_assert(got, "the tick's round did not release the read");
	cl_free(&c);
}

/* thesis §6.4: a leader cut off from the majority must not answer a read
 * (the majority may have elected a new leader and committed writes). */
Test(raft_read, deposed_leader_does_not_answer)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cl_isolate(&c, 1, true);
	cr_assert_eq(rl_read_index(c.nodes[1].n, (const uint8_t *)"s", 1,
	    NULL), RL_OK);
	cl_tick_all(&c, 4 * cfg.election_ticks);
	rl_id l = cl_leader(&c);
	cr_assert(l == 2 || l == 3);
	cr_assert_eq(cl_propose(&c, l, "new"), RL_OK);
	cl_isolate(&c, 1, false);
	cl_tick_all(&c, 5);
	cr_assert_eq(c.nodes[1].reads_n, 0, "deposed leader answered a read");
	cl_free(&c);
}

/* thesis §3.10: the leader brings the target up to date, sends it
 * TimeoutNow, and the target wins the election in the next term. */
Test(raft_transfer, transfer_to_lagging_member)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	rl_term t = cl_status_of(&c, 1).hard_state.term;
	cl_isolate(&c, 3, true);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(cl_propose(&c, 1, "x"), RL_OK);
	cl_isolate(&c, 3, false);
	cr_assert_eq(rl_transfer_leadership(c.nodes[1].n, 3, NULL), RL_OK);
	cl_stabilize(&c);
	cr_assert_eq(cl_leader(&c), 3);
	cr_assert_eq(cl_status_of(&c, 3).hard_state.term, t + 1);
	cr_assert_eq(cl_propose(&c, 3, "y"), RL_OK);
	cl_tick_all(&c, 2);
	cl_check_agree(&c);
	cr_assert_eq(c.nodes[1].app_len, 11);
	cl_free(&c);
}

/* thesis §3.10: during a transfer the leader refuses proposals; if the
 * target does not take over within an election timeout the transfer is
 * aborted and proposals are accepted again. */
Test(raft_transfer, refuses_proposals_then_aborts)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cl_isolate(&c, 3, true);
	struct rl_node *n = c.nodes[1].n;
	cr_assert_eq(rl_transfer_leadership(n, 3, NULL), RL_OK);
	cr_assert_eq(rl_propose(n, (const uint8_t *)"x", 1, NULL, NULL),
	    RL_ERR_TRANSFERRING);
	cl_tick_all(&c, cfg.election_ticks);
	cr_assert_eq(cl_leader(&c), 1);
	cr_assert_eq(cl_status_of(&c, 1).transferee, RL_NONE);
	cr_assert_eq(cl_propose(&c, 1, "x"), RL_OK);
	cr_assert_eq(rl_transfer_leadership(n, 1, NULL), RL_ERR_INVAL);
	cr_assert_eq(rl_transfer_leadership(n, 7, NULL), RL_ERR_NOT_MEMBER);
	rl_id lead = RL_NONE;
	cr_assert_eq(rl_transfer_leadership(c.nodes[2].n, 3, &lead),
	    RL_ERR_NOT_LEADER);
	cr_assert_eq(lead, 1);
	cl_free(&c);
}
