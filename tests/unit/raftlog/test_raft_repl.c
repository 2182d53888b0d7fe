/*
 * test_raft_repl.c - log replication: commit, repair of divergent logs with
 * conflict hints, the Figure 8 commitment rule, stale AppendEntries that must
 * not truncate, and flow control (in-flight messages/bytes, message size,
 * uncommitted proposal bytes).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* paper §5.3: entries proposed to the leader are replicated and applied in
 * the same order everywhere. */
Test(raft_repl, replicate_and_commit)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 5, 0, &cfg);
	cl_elect(&c, 1);
	char buf[32];
	for (int i = 0; i < 50; i++) {
		snprintf(buf, sizeof(buf), "e%02d", i);
		cr_assert_eq(cl_propose(&c, 1, buf), RL_OK);
	}
	cl_tick_all(&c, 2);
	cl_check_agree(&c);
	cr_assert_eq(c.nodes[5].applied, 51);
	cr_assert_eq(c.nodes[5].app_len, 150);
	cl_free(&c);
}

/* paper §5.3 + Figure 7, thesis §3.5: a deposed leader's divergent
 * uncommitted suffix is overwritten by the new leader, and the conflict
 * term/index hints repair it in a couple of round trips rather than one
 * per entry. */
Test(raft_repl, divergent_log_repaired_with_hints)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cr_assert_eq(cl_propose(&c, 1, "a"), RL_OK);
	cl_isolate(&c, 1, true);
	for (int i = 0; i < 40; i++)
		cr_assert_eq(cl_propose(&c, 1, "LOST"), RL_OK);
	cr_assert_eq(cl_status_of(&c, 1).last_index, 42);
	rl_id l = RL_NONE;
	for (int t = 0; t < 200 && l != 2 && l != 3; t++) {
		cl_tick_all(&c, 1);
		l = cl_leader(&c);
	}
	cr_assert(l == 2 || l == 3);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(cl_propose(&c, l, "b"), RL_OK);
	c.rejects_delivered = 0;
	cl_isolate(&c, 1, false);
	cl_tick_all(&c, 5);
	cr_assert_leq(c.rejects_delivered, 2, "%u rejections: hints not used",
	    c.rejects_delivered);
	cl_check_agree(&c);
	cr_assert_eq(c.nodes[1].app_len, 6, "divergent entries survived");
	cr_assert(memcmp(c.nodes[1].app, "abbbbb", 6) == 0);
	cl_free(&c);
}

/* thesis §3.5: the rejection carries the follower's term at the probed
 * index and the first index of that term (or its log length + 1). */
Test(raft_repl, conflict_hint_values)
{
	struct memlog ml;
	memlog_init(&ml);
	struct rl_entry e[5] = {
		{ 1, 1, 0, 0, NULL }, { 1, 2, 0, 0, NULL }, { 2, 3, 0, 0, NULL },
		{ 2, 4, 0, 0, NULL }, { 2, 5, 0, 0, NULL },
	};
	memlog_append(&ml, e, 5);
	ml.hs.term = 2;
	struct rl_config cfg = cl_default_config();
	cfg.id = 2;
	cfg.storage = &ml.st;
	cfg.hard_state = ml.hs;
	cfg.bootstrap.voters_n = 3;
	for (uint32_t i = 0; i < 3; i++)
		cfg.bootstrap.voters[i] = i + 1;
	struct rl_node *n;
	cr_assert_eq(rl_node_new(&cfg, &n), RL_OK);
	struct rl_msg m = { 0 };
	m.type = RL_MSG_APPEND;
	m.from = 1;
	m.to = 2;
	m.term = 3;
	m.index = 5;
	m.log_term = 3;
	cr_assert_eq(rl_step(n, &m), RL_OK);
	m.index = 9;
	cr_assert_eq(rl_step(n, &m), RL_OK);
	struct rl_ready rd;
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	cr_assert_eq(rd.msgs_n, 2);
	cr_assert(rd.msgs[0].reject && rd.msgs[1].reject);
	cr_assert_eq(rd.msgs[0].conflict_term, 2);
	cr_assert_eq(rd.msgs[0].reject_hint, 3);
	cr_assert_eq(rd.msgs[1].conflict_term, 0);
	cr_assert_eq(rd.msgs[1].reject_hint, 6);
	rl_advance(n, &rd);
	rl_node_free(n);
	memlog_free(&ml);
}

static struct rl_msg resp(rl_id from, rl_term term, rl_index idx)
{
	struct rl_msg m = cl_msg(RL_MSG_APPEND_RESP, from, 1, term);
	m.index = idx;
	return m;
}

/* paper §5.4.2 Figure 8, thesis §3.6.2: a leader must not commit an entry
 * of an earlier term by counting replicas; only once an entry of its own
 * term is on a quorum are both committed. */
Test(raft_repl, figure8_no_commit_of_previous_term_by_count)
{
	struct memlog ml;
	memlog_init(&ml);
	struct rl_entry e[2] = { { 1, 1, 0, 0, NULL }, { 2, 2, 0, 0, NULL } };
	memlog_append(&ml, e, 2);
	ml.hs = (struct rl_hard_state){ 3, RL_NONE, 1 };
	struct rl_config cfg = cl_default_config();
	cfg.pre_vote = false;
	cfg.applied = 1;
	struct rl_node *n = cl_hand_node(&ml, 1, cfg);
	rl_campaign(n);
	cl_hand_persist(&ml, n);
	struct rl_msg v = cl_msg(RL_MSG_VOTE_RESP, 2, 1, 4);
	cr_assert_eq(rl_step(n, &v), RL_OK);
	struct rl_status st;
	rl_status(n, &st);
	cr_assert_eq(st.role, RL_LEADER);
	cr_assert_eq(st.last_index, 3); /* the no-op of term 4 */
	cl_hand_persist(&ml, n);
	/* index 2 (term 2) is now on the leader and member 2: a quorum */
	struct rl_msg r = resp(2, 4, 2);
	cr_assert_eq(rl_step(n, &r), RL_OK);
	rl_status(n, &st);
	cr_assert_eq(st.hard_state.commit, 1, "committed a term-2 entry by "
	    "counting replicas (Figure 8)");
	r = resp(2, 4, 3);
	cr_assert_eq(rl_step(n, &r), RL_OK);
	rl_status(n, &st);
	cr_assert_eq(st.hard_state.commit, 3);
	rl_node_free(n);
	memlog_free(&ml);
}

/* paper §5.3 step 3: only a real conflict truncates. A stale or reordered
 * AppendEntries whose entries all match must not cut off later entries. */
Test(raft_repl, stale_append_does_not_truncate)
{
	struct memlog ml;
	memlog_init(&ml);
	struct rl_node *n = cl_hand_node(&ml, 2, cl_default_config());
	struct rl_entry e[5];
	for (int i = 0; i < 5; i++)
		e[i] = (struct rl_entry){ 1, (rl_index)i + 1, 0, 0, NULL };
	struct rl_msg m = cl_append_msg(1, 0, 0, e, 5, 0);
	cr_assert_eq(rl_step(n, &m), RL_OK);
	cl_hand_persist(&ml, n);
	m = cl_append_msg(1, 0, 0, e, 2, 0); /* an older, delayed copy */
	cr_assert_eq(rl_step(n, &m), RL_OK);
	struct rl_status st;
	rl_status(n, &st);
	cr_assert_eq(st.last_index, 5, "stale append truncated the log");
	if (rl_has_ready(n))
		cl_hand_persist(&ml, n);
	cr_assert_eq(memlog_last(&ml), 5);
	/* a real conflict (term 2 at index 3) truncates from there */
	struct rl_entry x = { 2, 3, 0, 0, NULL };
	m = cl_append_msg(2, 2, 1, &x, 1, 0);
	cr_assert_eq(rl_step(n, &m), RL_OK);
	cl_hand_persist(&ml, n);
	rl_status(n, &st);
	cr_assert_eq(st.last_index, 3);
	cr_assert_eq(memlog_last(&ml), 3);
	cr_assert_eq(ml.ents[2].term, 2);
	rl_node_free(n);
	memlog_free(&ml);
}

static unsigned fc_appends;
static uint64_t fc_msg_bytes_max;
static bool fc_oversize;

static bool fc_filter(struct cluster *c, const struct rl_msg *m)
{
	(void)c;
	if (m->type == RL_MSG_APPEND && m->to == 3 && m->entries_n > 0) {
		uint64_t b = 0;
		for (uint32_t k = 0; k < m->entries_n; k++)
			b += m->entries[k].data_len;
		if (m->entries_n > 1 && b > fc_msg_bytes_max)
			fc_oversize = true;
		fc_appends++;
	}
	/* member 3 receives but its acknowledgements are lost */
	return !(m->type == RL_MSG_APPEND_RESP && m->from == 3);
}

static unsigned run_flow(uint32_t msgs_max, uint64_t bytes_max)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cfg.inflight_msgs_max = msgs_max;
	cfg.inflight_bytes_max = bytes_max;
	cfg.msg_bytes_max = 100;
	fc_msg_bytes_max = 100;
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	fc_appends = 0;
	fc_oversize = false;
	c.filter = fc_filter;
	char buf[51];
	memset(buf, 'p', 50);
	buf[50] = 0;
	for (int i = 0; i < 40; i++)
		cr_assert_eq(cl_propose(&c, 1, buf), RL_OK);
	cr_assert_not(fc_oversize, "an append exceeded msg_bytes_max");
	cr_assert_eq(c.nodes[2].applied, 41, "member 2 keeps committing");
	unsigned n = fc_appends;
	cl_free(&c);
	return n;
}

/* etcd-style progress (probe/replicate) and named limits: appends to a
 * follower that does not acknowledge stop at inflight_msgs_max messages or
 * inflight_bytes_max bytes; each append holds <= msg_bytes_max bytes. The
 * window allowing several appends before any reply is the pipelining. */
Test(raft_repl, flow_control_inflight_limits)
{
	unsigned by_msgs = run_flow(4, 1u << 20);
	cr_assert_eq(by_msgs, 4, "in flight by count: %u", by_msgs);
	unsigned by_bytes = run_flow(64, 100);
	cr_assert_eq(by_bytes, 2, "in flight by bytes: %u", by_bytes);
}

/* Limit on uncommitted proposal bytes: beyond it proposals are refused
 * with RL_ERR_PROPOSAL_DROPPED; once entries commit, proposals flow again. */
Test(raft_repl, uncommitted_bytes_limit)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cfg.uncommitted_bytes_max = 1000;
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cl_isolate(&c, 1, true);
	char buf[51];
	memset(buf, 'u', 50);
	buf[50] = 0;
	int accepted = 0, rc = RL_OK;
	for (int i = 0; i < 100 && rc == RL_OK; i++) {
		rc = cl_propose(&c, 1, buf);
		accepted += rc == RL_OK;
	}
	cr_assert_eq(rc, RL_ERR_PROPOSAL_DROPPED);
	cr_assert(accepted >= 10 && accepted <= 13, "accepted %d", accepted);
	cl_isolate(&c, 1, false);
	cl_tick_all(&c, 3);
	cr_assert_eq(cl_propose(&c, 1, buf), RL_OK);
	cl_free(&c);
}

/* Batching (DESIGN "group-commit"): proposals made between two readies
 * travel to each follower in one AppendEntries and are persisted by the
 * leader in one ready. */
Test(raft_repl, proposals_between_readies_are_batched)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(rl_propose(c.nodes[1].n, (const uint8_t *)"b", 1,
		    NULL, NULL), RL_OK);
	struct rl_ready rd;
	cr_assert_eq(rl_ready(c.nodes[1].n, &rd), RL_OK);
	cr_assert_eq(rd.entries_n, 50);
	cr_assert_eq(rd.msgs_now_n, 2, "one append per follower");
	cr_assert_eq(rd.msgs_now[0].entries_n, 50);
	cr_assert_eq(rd.msgs_now[1].entries_n, 50);
	/* carry out the ready by hand: persist, then advance */
	memlog_append(&c.nodes[1].log, rd.entries, rd.entries_n);
	rl_advance(c.nodes[1].n, &rd);
	cl_free(&c);
}

/* thesis §10.2.1: the leader sends its new entries (rd.msgs_now) in
 * parallel with writing them, and counts itself towards the commit quorum
 * only once storage reports them persisted (rl_advance). */
Test(raft_repl, leader_parallel_write_commit)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cl_init(&c, 3, 0, &cfg);
	cl_elect(&c, 1);
	cl_cut(&c, 1, 3, true);
	rl_index idx;
	struct rl_node *n = c.nodes[1].n;
	cr_assert_eq(rl_propose(n, (const uint8_t *)"p", 1, NULL, &idx), RL_OK);
	struct rl_ready rd;
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	cr_assert_eq(rd.entries_n, 1);
	/* send the append to member 2 before the leader's write is done */
	size_t sent = 0;
	for (size_t i = 0; i < rd.msgs_now_n; i++) {
		if (rd.msgs_now[i].to != 2 || rd.msgs_now[i].type != RL_MSG_APPEND)
			continue;
		cr_assert_eq(rl_step(c.nodes[2].n, &rd.msgs_now[i]), RL_OK);
		sent++;
	}
	cr_assert_eq(sent, 1, "the leader's append is not in msgs_now");
	cl_stabilize(&c); /* member 2 persists and acknowledges */
	cr_assert_eq(rl_match_index(n, 2), idx);
	struct rl_status st;
	rl_status(n, &st);
	cr_assert_lt(st.hard_state.commit, idx, "leader counted an entry it "
	    "has not persisted");
	memlog_append(&c.nodes[1].log, rd.entries, rd.entries_n);
	rl_advance(n, &rd);
	rl_status(n, &st);
	cr_assert_eq(st.hard_state.commit, idx);
	cl_free(&c);
}

/* STYLE: bad input from the network is an error, never a crash. */
Test(raft_repl, malformed_messages_are_errors)
{
	struct memlog ml;
	memlog_init(&ml);
	struct rl_node *n = cl_hand_node(&ml, 2, cl_default_config());
	struct rl_entry e[2] = { { 1, 1, 0, 0, NULL }, { 1, 3, 0, 0, NULL } };
	struct rl_msg m = cl_append_msg(1, 0, 0, e, 2, 0); /* gap: 1 then 3 */
	cr_assert_eq(rl_step(n, &m), RL_ERR_INVAL);
	e[1].index = 2;
	e[1].term = 5; /* entry newer than the message's term */
	cr_assert_eq(rl_step(n, &m), RL_ERR_INVAL);
	e[1].term = 1;
	m.commit = 2;
	cr_assert_eq(rl_step(n, &m), RL_OK);
	cl_hand_persist(&ml, n);
	/* a (stale) append below the commit index changes nothing */
	struct rl_entry x = { 2, 2, 0, 0, NULL };
	m = cl_append_msg(2, 1, 1, &x, 1, 0);
	cr_assert_eq(rl_step(n, &m), RL_OK);
	cr_assert_eq(ml.ents[1].term, 1);
	struct rl_msg s = { 0 };
	s.type = RL_MSG_SNAPSHOT;
	s.from = 1;
	s.to = 2;
	s.term = 2;
	s.snap.index = 9;
	s.snap.term = 2;
	s.snap.conf.voters_n = 1;
	s.snap.conf.voters[0] = 1;
	s.snap_len = RL_SNAPSHOT_CHUNK_BYTES_MAX + 1;
	cr_assert_eq(rl_step(n, &s), RL_ERR_INVAL);
	s.snap_len = 0;
	s.snap.conf.voters_n = RL_MEMBERS_MAX + 1;
	cr_assert_eq(rl_step(n, &s), RL_ERR_INVAL);
	struct rl_msg r = { 0 };
	r.type = RL_MSG_READ_INDEX_RESP;
	r.from = 1;
	r.to = 2;
	r.term = 2;
	r.ctx_len = RL_READ_CTX_MAX + 1;
	cr_assert_eq(rl_step(n, &r), RL_ERR_INVAL);
	r.type = 77; /* unknown types are ignored */
	r.ctx_len = 0;
	cr_assert_eq(rl_step(n, &r), RL_OK);
	struct rl_status st;
	rl_status(n, &st);
	cr_assert_eq(st.last_index, 2);
	cr_assert_eq(st.hard_state.commit, 2);
	rl_node_free(n);
	memlog_free(&ml);
}

/* Named limit ready_entries_max: a ready hands out at most that many
 * entries to persist and to apply; the rest follow in the next readies. */
Test(raft_repl, ready_entries_max)
{
	struct cluster c;
	struct rl_config cfg = cl_default_config();
	cfg.ready_entries_max = 8;
	cl_init(&c, 1, 0, &cfg);
	cl_elect(&c, 1);
	struct rl_node *n = c.nodes[1].n;
	for (int i = 0; i < 20; i++)
		cr_assert_eq(rl_propose(n, (const uint8_t *)"q", 1, NULL, NULL),
		    RL_OK);
	struct rl_ready rd;
	cr_assert_eq(rl_ready(n, &rd), RL_OK);
	cr_assert_eq(rd.entries_n, 8);
	struct rl_ready again;
	cr_assert_eq(rl_ready(n, &again), RL_ERR_READY_PENDING);
	memlog_append(&c.nodes[1].log, rd.entries, rd.entries_n);
	rl_advance(n, &rd);
	cl_stabilize(&c);
	cr_assert_eq(c.nodes[1].applied, 21); /* no-op + 20 */
	cr_assert_eq(c.nodes[1].app_len, 20);
	cl_free(&c);
}
