/*
 * test_raft_review.c - scenario tests written during the adversarial review
 * of the Raft core: each one reproduces a bug found in review (and failed
 * before its fix) or pins a rule the review checked, citing the section.
 * Nodes are driven by hand on memlog storage so that the exact contents of
 * each ready can be inspected.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* Carry out one ready on ml (persist entries and hard state) and advance;
 * returns the highest APPEND_RESP index the ready lets us send and checks
 * that it never exceeds what is persisted once the ready is handled. */
static rl_index persist_check_acks(struct memlog *ml, struct rl_node *n)
{
	struct rl_ready rd;
	cl_hand_ready(ml, n, &rd);
	rl_index acked = 0;
	for (size_t i = 0; i < rd.msgs_now_n; i++)
		cr_assert_neq(rd.msgs_now[i].type, RL_MSG_APPEND_RESP,
		    "append ack sent before persisting");
	for (size_t i = 0; i < rd.msgs_n; i++) {
		const struct rl_msg *m = &rd.msgs[i];
		if (m->type != RL_MSG_APPEND_RESP || m->reject)
			continue;
		/* Figure 2: reply only after updating stable storage */
		cr_assert_leq(m->index, memlog_last(ml), "acked index %llu but "
		    "only %llu persisted", (unsigned long long)m->index,
		    (unsigned long long)memlog_last(ml));
		if (m->index > acked)
			acked = m->index;
	}
	rl_advance(n, &rd);
	return acked;
}

/* paper Figure 2 / thesis §3.8 (persist before responding): when a ready
 * persists only ready_entries_max of the unstable entries, the append
 * acknowledgements for the entries left for a later ready must wait for
 * that ready. Review bug 1: they went out with the first one. */
Test(raft_review, capped_ready_does_not_ack_unpersisted_entries)
{
	struct memlog ml;
	memlog_init(&ml);
	struct rl_config cfg = cl_default_config();
	cfg.ready_entries_max = 2;
	struct rl_node *n = cl_hand_node(&ml, 2, cfg);
	struct rl_entry e[6];
	for (int i = 0; i < 6; i++)
		e[i] = (struct rl_entry){ 1, (rl_index)i + 1, 0, 0, NULL };
	/* three pipelined appends of two entries arrive before one ready */
	for (uint32_t k = 0; k < 3; k++) {
		struct rl_msg m = cl_append_msg(1, 2 * k, k ? 1 : 0, e + 2 * k, 2, 0);
		cr_assert_eq(rl_step(n, &m), RL_OK);
	}
	/* a heartbeat reply promises nothing: it is not held back */
	struct rl_msg hb = cl_msg(RL_MSG_HEARTBEAT, 1, 2, 1);
	cr_assert_eq(rl_step(n, &hb), RL_OK);
	struct rl_ready rd;
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	cr_assert_eq(rd.entries_n, 2);
	bool hb_resp = false;
	for (size_t i = 0; i < rd.msgs_n; i++) {
		hb_resp |= rd.msgs[i].type == RL_MSG_HEARTBEAT_RESP;
		cr_assert(rd.msgs[i].type != RL_MSG_APPEND_RESP ||
		    rd.msgs[i].index <= 2, "acked index %llu with 2 persisted",
		    (unsigned long long)rd.msgs[i].index);
	}
	cr_assert(hb_resp, "heartbeat reply held back");
	memlog_append(&ml, rd.entries, rd.entries_n);
	if (rd.has_hard_state)
		ml.hs = rd.hard_state;
	rl_advance(n, &rd);
	rl_index acked = 0;
	for (int r = 0; r < 5 && rl_has_ready(n); r++) {
		rl_index a = persist_check_acks(&ml, n);
		if (a > acked)
			acked = a;
	}
	cr_assert_eq(memlog_last(&ml), 6);
	cr_assert_eq(acked, 6, "the acknowledgements were lost");
	rl_node_free(n);
	memlog_free(&ml);
}

/* paper Figure 2 (commitIndex is volatile state) and raft.h's must_sync: a
 * ready that only raises the commit index need not be fsync'd, so after a
 * crash the persisted commit may lag what the application durably applied.
 * Applied entries were committed; restart must accept that and resume
 * after them. Review bug 2: rl_node_new refused with RL_ERR_INVAL. */
Test(raft_review, restart_with_applied_past_persisted_commit)
{
	struct memlog ml;
	memlog_init(&ml);
	struct rl_entry e[5];
	for (int i = 0; i < 5; i++)
		e[i] = (struct rl_entry){ 1, (rl_index)i + 1, 0, 0, NULL };
	memlog_append(&ml, e, 5);
	ml.hs = (struct rl_hard_state){ 1, 1, 2 };
	struct rl_config cfg = cl_default_config();
	cfg.applied = 4;
	struct rl_node *n = NULL;
	cfg = cl_hand_config(&ml, 2, cfg);
	int rc = rl_node_new(&cfg, &n);
	cr_assert_eq(rc, RL_OK, "restart refused: %s", rl_strerror(rc));
	struct rl_status st;
	rl_status(n, &st);
	cr_assert_eq(st.applied, 4);
	cr_assert_geq(st.hard_state.commit, 4);
	/* nothing already applied is handed out again */
	struct rl_ready rd;
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	for (size_t i = 0; i < rd.committed_n; i++)
		cr_assert_gt(rd.committed[i].index, 4);
	rl_advance(n, &rd);
	rl_node_free(n);
	/* applied beyond the stored log is still inconsistent input */
	cfg.applied = 6;
	cr_assert_eq(rl_node_new(&cfg, &n), RL_ERR_INVAL);
	memlog_free(&ml);
}

/* Drive one ready as the application would (persist, then advance) and
 * return a copy of the first message of type t it lets us send, if any. */
static bool ready_find(struct memlog *ml, struct rl_node *n, uint8_t t,
    struct rl_msg *out)
{
	if (!rl_has_ready(n))
		return false;
	struct rl_ready rd;
	cl_hand_ready(ml, n, &rd);
	bool found = false;
	for (size_t i = 0; !found && i < rd.msgs_now_n + rd.msgs_n; i++) {
		const struct rl_msg *m = i < rd.msgs_now_n ? &rd.msgs_now[i] :
		    &rd.msgs[i - rd.msgs_now_n];
		if (m->type == t) {
			*out = *m;
			out->entries = NULL;
			out->entries_n = 0;
			found = true;
		}
	}
	rl_advance(n, &rd);
	return found;
}

/* thesis §9.6: a pre-vote with a higher term never changes the receiver's
 * term or vote; a grant carries the request's term, a refusal the
 * receiver's own term. */
Test(raft_review, prevote_does_not_bump_term)
{
	struct memlog ml;
	memlog_init(&ml);
	struct rl_entry e[2] = { { 1, 1, 0, 0, NULL }, { 2, 2, 0, 0, NULL } };
	memlog_append(&ml, e, 2);
	ml.hs = (struct rl_hard_state){ 2, RL_NONE, 0 };
	struct rl_config cfg = cl_default_config();
	cfg.check_quorum = false;
	struct rl_node *n = cl_hand_node(&ml, 2, cfg);
	struct rl_msg pv = cl_msg(RL_MSG_PREVOTE, 3, 2, 5);
	pv.index = 1; /* log behind ours: refused */
	pv.log_term = 1;
	cr_assert_eq(rl_step(n, &pv), RL_OK);
	struct rl_msg r;
	cr_assert(ready_find(&ml, n, RL_MSG_PREVOTE_RESP, &r));
	cr_assert(r.reject);
	cr_assert_eq(r.term, 2);
	pv.index = 2;
	pv.log_term = 2; /* as up to date: granted */
	cr_assert_eq(rl_step(n, &pv), RL_OK);
	cr_assert(ready_find(&ml, n, RL_MSG_PREVOTE_RESP, &r));
	cr_assert(!r.reject);
	cr_assert_eq(r.term, 5);
	struct rl_status st;
	rl_status(n, &st);
	cr_assert_eq(st.hard_state.term, 2, "a pre-vote changed our term");
	cr_assert_eq(st.hard_state.vote, RL_NONE, "a pre-vote recorded a vote");
	cr_assert_eq(ml.hs.term, 2);
	rl_node_free(n);
	memlog_free(&ml);
}

/* thesis §6.4 step 1: a new leader answers a read only once an entry of its
 * own term is committed, and steps 2-3: only heartbeat replies to a round
 * sent after the read count towards its confirmation. */
Test(raft_review, read_index_waits_for_term_commit_and_new_round)
{
	struct memlog ml;
	memlog_init(&ml);
	struct rl_entry e[2] = { { 1, 1, 0, 0, NULL }, { 1, 2, 0, 0, NULL } };
	memlog_append(&ml, e, 2);
	ml.hs = (struct rl_hard_state){ 1, RL_NONE, 2 };
	struct rl_config cfg = cl_default_config();
	cfg.pre_vote = false;
	cfg.applied = 2;
	struct rl_node *n = cl_hand_node(&ml, 1, cfg);
	rl_campaign(n);
	struct rl_msg m;
	cr_assert(ready_find(&ml, n, RL_MSG_VOTE, &m));
	struct rl_msg v = cl_msg(RL_MSG_VOTE_RESP, 2, 1, 2);
	cr_assert_eq(rl_step(n, &v), RL_OK);
	struct rl_status st;
	rl_status(n, &st);
	cr_assert_eq(st.role, RL_LEADER);
	(void)ready_find(&ml, n, RL_MSG_APPEND, &m); /* persists the no-op */
	/* a heartbeat round before the read */
	rl_tick(n);
	struct rl_msg hb;
	cr_assert(ready_find(&ml, n, RL_MSG_HEARTBEAT, &hb));
	cr_assert_eq(rl_read_index(n, (const uint8_t *)"q", 1, NULL), RL_OK);
	struct rl_msg hr = cl_msg(RL_MSG_HEARTBEAT_RESP, 2, 1, 2);
	hr.seq = hb.seq; /* reply to the round sent BEFORE the read */
	cr_assert_eq(rl_step(n, &hr), RL_OK);
	struct rl_ready rd;
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	cr_assert_eq(rd.read_states_n, 0, "read confirmed by an older round");
	struct rl_msg round = { 0 };
	for (size_t i = 0; i < rd.msgs_now_n; i++)
		if (rd.msgs_now[i].type == RL_MSG_HEARTBEAT)
			round = rd.msgs_now[i];
	cr_assert_gt(round.seq, hb.seq, "the read started no new round");
	rl_advance(n, &rd);
	hr.seq = round.seq;
	cr_assert_eq(rl_step(n, &hr), RL_OK);
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	cr_assert_eq(rd.read_states_n, 0, "read answered before the leader "
	    "committed an entry of its term");
	rl_advance(n, &rd);
	/* member 2 stores the no-op (index 3, term 2): it commits */
	struct rl_msg ack = cl_msg(RL_MSG_APPEND_RESP, 2, 1, 2);
	ack.index = 3;
	cr_assert_eq(rl_step(n, &ack), RL_OK);
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	cr_assert_eq(rd.read_states_n, 1);
	cr_assert_eq(rd.read_states[0].index, 3);
	rl_advance(n, &rd);
	rl_node_free(n);
	memlog_free(&ml);
}

static struct rl_msg chunk(rl_id from, rl_term term, rl_index idx, rl_term t,
    uint64_t off, uint32_t len, bool done)
{
	static const uint8_t bytes[64];
	struct rl_msg m = cl_msg(RL_MSG_SNAPSHOT, from, 2, term);
	m.snap.index = idx;
	m.snap.term = t;
	m.snap.conf.voters_n = 3;
	for (uint32_t i = 0; i < 3; i++)
		m.snap.conf.voters[i] = i + 1;
	m.snap_offset = off;
	m.snap_len = len;
	m.snap_data = bytes;
	m.snap_done = done;
	return m;
}

/* thesis §5.2 chunked InstallSnapshot. Review bug 3 (raftsim CORE_BUGS.txt
 * item 1): raft.h told the receiver to stage every chunk before rl_step(),
 * so a late offset-0 chunk of another snapshot that the core ignores wiped
 * the staging of the snapshot being received, and the core then reported
 * that snapshot complete. rl_snapshot_chunk_wanted() tells the application
 * exactly which chunks the core takes. */
Test(raft_review, snapshot_chunk_wanted_matches_core)
{
	struct memlog ml;
	memlog_init(&ml);
	ml.hs = (struct rl_hard_state){ 9, RL_NONE, 0 };
	struct rl_node *n = cl_hand_node(&ml, 2, cl_default_config());
	struct rl_msg m = chunk(1, 9, 57, 7, 0, 4, false);
	cr_assert(rl_snapshot_chunk_wanted(n, &m));
	cr_assert_eq(rl_step(n, &m), RL_OK);
	/* a deposed leader's late first chunk of another snapshot */
	m = chunk(3, 8, 58, 8, 0, 4, false);
	cr_assert_not(rl_snapshot_chunk_wanted(n, &m), "stale chunk wanted");
	cr_assert_eq(rl_step(n, &m), RL_OK);
	/* out of order, then a duplicate of the first chunk */
	m = chunk(1, 9, 57, 7, 8, 4, true);
	cr_assert_not(rl_snapshot_chunk_wanted(n, &m));
	m = chunk(1, 9, 57, 7, 0, 4, false);
	cr_assert_not(rl_snapshot_chunk_wanted(n, &m));
	/* not a snapshot chunk at all */
	struct rl_msg hb = cl_msg(RL_MSG_HEARTBEAT, 1, 2, 9);
	cr_assert_not(rl_snapshot_chunk_wanted(n, &hb));
	/* the next chunk in order completes snapshot 57 (not 58) */
	m = chunk(1, 9, 57, 7, 4, 4, true);
	cr_assert(rl_snapshot_chunk_wanted(n, &m));
	cr_assert_eq(rl_step(n, &m), RL_OK);
	struct rl_ready rd;
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	cr_assert(rd.has_snapshot);
	cr_assert_eq(rd.snapshot.index, 57);
	memlog_install(&ml, &rd.snapshot, (const uint8_t *)"abcdefgh", 8);
	rl_advance(n, &rd);
	/* a duplicate of a snapshot we hold is acknowledged, not staged */
	m = chunk(1, 9, 57, 7, 0, 4, false);
	cr_assert_not(rl_snapshot_chunk_wanted(n, &m));
	rl_node_free(n);
	memlog_free(&ml);
}

/* STYLE.md "bad input from the network is an error reply, never a crash"
 * and paper §5.3 liveness: a rejection naming an index past the leader's
 * log (a corrupt or forged message) must not leave that follower's
 * progress probing from beyond the log, where no append can ever be built.
 * Review bug 4: the follower was never sent another append. */
Test(raft_review, bogus_reject_does_not_wedge_follower)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cr_assert_eq(cl_propose(&c, 1, "a"), RL_OK);
	struct rl_status st;
	cl_status(&c, 1, &st);
	struct rl_msg r = cl_msg(RL_MSG_APPEND_RESP, 2, 1, st.hard_state.term);
	r.reject = true;
	r.index = 1000;
	r.reject_hint = 1000;
	cr_assert_eq(rl_step(c.nodes[1].n, &r), RL_OK);
	cl_stabilize(&c);
	cr_assert_eq(cl_propose(&c, 1, "b"), RL_OK);
	cl_tick_all(&c, 5);
	cl_status(&c, 1, &st);
	cr_assert_eq(rl_match_index(c.nodes[1].n, 2), st.last_index,
	    "follower 2 no longer replicated");
	cl_check_agree(&c);
	cl_free(&c);
}
