/*
 * raftsim.c - the seeded, deterministic cluster simulator of raftbus: N
 * members of the REAL Raft core (raftlog/raft.h) on a simulated network and
 * a virtual clock, under faults, with safety checkers after every step.
 *
 * This file holds the command line, the run loop (one event = one step),
 * the client workload (proposals, ReadIndex reads, membership changes,
 * snapshots, leadership transfers), the fault scheduler and the liveness
 * phase that ends every run. sim_node.c drives a member through the ready
 * contract; sim_check.c holds the ghost state the invariants are checked
 * against; sim_memlog.c is the in-memory log, a faithful model of the LMDB
 * log store's atomic save: anything not yet synced is lost on a crash.
 *
 * Every choice comes from one PRNG seeded by the seed: the same seed replays
 * the same run bit for bit (the summary's trace_hash proves it).
 */
#include "sim_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Spare member ids a run may add through membership changes. */
#define SIM_SPARES_MAX 4u
/* Liveness bound of the quiet phase, in longest election timeouts
 * (2 x SIM_ELECTION_TICKS ticks of the slowest possible clock). */
#define SIM_LIVENESS_TIMEOUTS 10u
#define SIM_ELECTION_TIMEOUT_MAX_US \
	(2ull * SIM_ELECTION_TICKS * SIM_TICK_US * SIM_DRIFT_PERCENT_MAX / 100)
/* Message faults, per million messages sent (fault phase only). */
#define SIM_DROP_PPM 30000u
#define SIM_DUP_PPM 20000u
#define SIM_LATE_PPM 50000u
/* Reads that got no answer within this long are abandoned by the client. */
#define SIM_READ_ABANDON_US 2000000ull
/* Steps of a --seeds sweep accepted on the command line. */
#define SIM_STEPS_MAX 100000000ull

static const char *const tr_names[] = {
	[TR_TICK] = "tick", [TR_SEND] = "send", [TR_DELIVER] = "deliver",
	[TR_LOST] = "lost", [TR_DUP] = "dup", [TR_WRITE] = "write-start",
	[TR_DURABLE] = "durable", [TR_APPLY] = "apply", [TR_ROLE] = "role",
	[TR_PROPOSE] = "propose", [TR_READ_START] = "read-start",
	[TR_READ_DONE] = "read-done", [TR_CRASH] = "CRASH",
	[TR_RESTART] = "RESTART", [TR_CUT] = "CUT", [TR_HEAL] = "HEAL",
	[TR_DRIFT] = "drift", [TR_CONF] = "conf-change",
	[TR_SNAP_TAKE] = "snapshot-take", [TR_SNAP_INSTALL] = "snapshot-install",
	[TR_ERROR] = "core-error", [TR_QUIET] = "QUIET",
	[TR_TRANSFER] = "transfer",
};

static const char *const msg_names[RL_MSG_TYPE_MAX + 1] = {
	"?", "APP", "APP_RESP", "VOTE", "VOTE_RESP", "PREVOTE", "PREVOTE_RESP",
	"HB", "HB_RESP", "SNAP", "SNAP_RESP", "TIMEOUT_NOW", "READ_IDX",
	"READ_IDX_RESP",
};

static const char *const role_names[] = { "follower", "pre-candidate",
					  "candidate", "leader" };

static const char *const fault_names[F_KIND_N] = {
	"drop", "dup", "late", "crash", "crash_mid_write", "partition",
	"one_way", "isolate", "heal", "drift", "leader_crash",
};

static const char *msg_name(uint64_t t)
{
	return t <= RL_MSG_TYPE_MAX ? msg_names[t] : "?";
}

static void format_rec(const struct sim_trace_rec *r, char *buf, size_t len)
{
	const char *name = r->what < sizeof(tr_names) / sizeof(tr_names[0]) &&
				   tr_names[r->what] ? tr_names[r->what] : "?";
	int n = snprintf(buf, len, "[step %6" PRIu64 " t=%9.3fms] %-16s m%u ",
			 r->step, (double)r->at_us / 1000.0, name,
			 r->node + 1u);
	if (n < 0 || (size_t)n >= len)
		return;
	buf += n;
	len -= (size_t)n;
	switch (r->what) {
	case TR_LOST:
		snprintf(buf, len, "-> m%u %s %s", r->peer, msg_name(r->a),
			 r->b ? "(at delivery: member down or link cut)"
			      : "(lost in the network)");
		break;
	case TR_SEND:
	case TR_DELIVER:
	case TR_DUP:
		snprintf(buf, len, "%s m%u %s term=%" PRIu64 " index=%" PRIu64,
			 r->what == TR_DELIVER ? "<-" : "->",
			 r->peer,
			 msg_name(r->a), r->b, r->c);
		break;
	case TR_ROLE:
		snprintf(buf, len, "%s term=%" PRIu64 " last=%" PRIu64
			 " leader=m%u", r->a < 4 ? role_names[r->a] : "?", r->b,
			 r->c, r->peer);
		break;
	default:
		snprintf(buf, len, "peer=m%u a=%" PRIu64 " b=%" PRIu64
			 " c=%" PRIu64, r->peer, r->a, r->b, r->c);
		break;
	}
}

/* ---- helpers --------------------------------------------------------------- */

static void put_u64le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void push_event(struct sim_run *r, uint8_t kind, uint32_t node,
		       sim_time_us after_us)
{
	struct sim_event ev = { .at_us = r->now + after_us, .kind = kind,
				.node = (uint8_t)node,
				.gen = r->node[node].gen };
	sim_queue_push(&r->q, ev);
}

/* A random running member, or -1. */
static int pick_up(struct sim_run *r)
{
	uint32_t cand[SIM_NODES_MAX], n = 0;
	for (uint32_t i = 0; i < r->nodes_n; i++)
		if (r->node[i].exists && r->node[i].up)
			cand[n++] = i;
	return n ? (int)cand[sim_prng_below(&r->rng, n)] : -1;
}

/* The running member that is leader in the highest term, or -1. */
static int find_leader(struct sim_run *r)
{
	int best = -1;
	rl_term best_term = 0;
	for (uint32_t i = 0; i < r->nodes_n; i++) {
		struct sim_node *n = &r->node[i];
		if (n->up && n->role == RL_LEADER && n->term_seen >= best_term) {
			best = (int)i;
			best_term = n->term_seen;
		}
	}
	return best;
}

static void create_node(struct sim_run *r, uint32_t i)
{
	struct sim_node *n = &r->node[i];
	if (n->exists)
		return;
	n->id = i + 1;
	n->exists = true;
	n->tick_us = SIM_TICK_US *
		     sim_prng_range(&r->rng, SIM_DRIFT_PERCENT_MIN,
				    SIM_DRIFT_PERCENT_MAX) / 100;
	sim_memlog_init(&n->durable);
	sim_memlog_init(&n->written);
	/* the state machine's membership as of index 0: the initial voters
	 * (a member added later replays the changes on top of it) */
	n->conf.voters_n = r->p.members;
	for (uint32_t k = 0; k < r->p.members; k++)
		n->conf.voters[k] = k + 1;
	sim_node_start(r, i);
}

/* ---- workload ------------------------------------------------------------- */

/* Proposes a fresh id on member i; a client told "not leader" follows the
 * hint once. The proposal is acknowledged when that leader applies it. */
static void client_propose(struct sim_run *r, int i, bool quiet_marker)
{
	if (i < 0 || r->props_n == SIM_PROPOSALS_MAX)
		return;
	struct sim_node *n = &r->node[i];
	rl_id leader = RL_NONE;
	uint8_t data[8];
	uint64_t id = ++r->next_proposal_id;
	put_u64le(data, id);
	rl_index idx = 0;
	int rc = rl_propose(n->core, data, sizeof(data), &leader, &idx);
	if (rc == RL_ERR_NOT_LEADER && leader != RL_NONE &&
	    leader <= r->nodes_n && r->node[leader - 1].up) {
		i = (int)leader - 1;   /* the client follows the hint once */
		n = &r->node[i];
		rc = rl_propose(n->core, data, sizeof(data), &leader, &idx);
	}
	if (rc != RL_OK)
		return;
	r->props[r->props_n++] = (struct sim_proposal){
		.id = id, .node = (uint8_t)i, .gen = n->gen, .index = idx };
	r->st.proposals++;
	sim_tr(r, TR_PROPOSE, (uint32_t)i, quiet_marker, id, idx, 0);
	sim_node_drive(r, (uint32_t)i);
}

/* Starts a linearizable read on member i (a follower forwards it). */
static void client_read(struct sim_run *r, int i)
{
	for (uint32_t k = 0; k < r->reads_n;) {
		if (r->reads[k].start_us + SIM_READ_ABANDON_US < r->now)
			r->reads[k] = r->reads[--r->reads_n];
		else
			k++;
	}
	if (i < 0 || r->reads_n == SIM_READS_MAX)
		return;
	struct sim_node *n = &r->node[i];
	if (r->p.inject == SIM_INJECT_STALE_READ) {
		/* the harness bug: a serializable read passed off as a
		 * linearizable one */
		r->reads[r->reads_n++] = (struct sim_read){
			.id = ++r->next_read_id, .node = (uint8_t)i,
			.gen = n->gen, .start_us = r->now,
			.min_index = r->ack_max_index, .indexed = true,
			.read_index = 0 };
		sim_node_drive(r, (uint32_t)i);
		return;
	}
	uint8_t ctx[8];
	uint64_t id = ++r->next_read_id;
	put_u64le(ctx, id);
	rl_id leader;
	if (rl_read_index(n->core, ctx, sizeof(ctx), &leader) != RL_OK)
		return;
	r->reads[r->reads_n++] = (struct sim_read){
		.id = id, .node = (uint8_t)i, .gen = n->gen,
		.start_us = r->now, .min_index = r->ack_max_index };
	sim_tr(r, TR_READ_START, (uint32_t)i, 0, id, r->ack_max_index, 0);
	sim_node_drive(r, (uint32_t)i);
}

/* Single-server changes through a cycle that keeps the voters within
 * [members, members + 1]: add a spare as learner, promote it, remove a
 * random voter (maybe the leader itself). */
static void client_conf_change(struct sim_run *r)
{
	int li = find_leader(r);
	if (li < 0)
		return;
	struct sim_node *l = &r->node[li];
	struct rl_status s;
	rl_status(l->core, &s);
	struct rl_conf_change cc = { 0 };
	if (s.conf.learners_n > 0) {
		cc.type = RL_CONF_ADD_VOTER;
		cc.node = s.conf.learners[0];
	} else if (s.conf.voters_n > r->p.members) {
		cc.type = RL_CONF_REMOVE;
		cc.node = s.conf.voters[sim_prng_below(&r->rng,
						       s.conf.voters_n)];
	} else if (r->next_spare < r->nodes_n) {
		cc.type = RL_CONF_ADD_LEARNER;
		cc.node = r->next_spare + 1;
		create_node(r, r->next_spare);
	} else {
		return;
	}
	rl_id leader;
	rl_index idx = 0;
	if (rl_propose_conf_change(l->core, &cc, &leader, &idx) != RL_OK)
		return;
	if (cc.type == RL_CONF_ADD_LEARNER)
		r->next_spare++;
	r->st.conf_changes++;
	sim_tr(r, TR_CONF, (uint32_t)li, (uint32_t)cc.node, cc.type, idx, 0);
	sim_node_drive(r, (uint32_t)li);
}

static void client_transfer(struct sim_run *r)
{
	int li = find_leader(r);
	if (li < 0)
		return;
	struct rl_status s;
	rl_status(r->node[li].core, &s);
	rl_id target = s.conf.voters[sim_prng_below(&r->rng, s.conf.voters_n)];
	rl_id leader;
	if (target == s.id ||
	    rl_transfer_leadership(r->node[li].core, target, &leader) != RL_OK)
		return;
	r->st.transfers++;
	sim_tr(r, TR_TRANSFER, (uint32_t)li, (uint32_t)target, 0, 0, 0);
	sim_node_drive(r, (uint32_t)li);
}

static void on_client(struct sim_run *r)
{
	uint64_t k = sim_prng_below(&r->rng, 100);
	if (k < 55)
		client_propose(r, pick_up(r), false);
	else if (k < 82)
		client_read(r, pick_up(r));
	else if (k < 90) {
		int i = pick_up(r);
		if (i >= 0)
			sim_node_snapshot(r, (uint32_t)i);
	} else if (k < 97)
		client_conf_change(r);
	else
		client_transfer(r);
	push_event(r, SIM_EV_CLIENT, 0, sim_prng_range(&r->rng, 500, 4000));
}

/* ---- faults ----------------------------------------------------------------- */

static void crash_member(struct sim_run *r, uint32_t i, uint32_t kind)
{
	bool mid_write = r->node[i].pending;
	sim_node_crash(r, i);
	r->st.faults[mid_write && kind == F_CRASH ? F_CRASH_MID_WRITE : kind]++;
	sim_time_us down = sim_prng_range(&r->rng, 1000, 300000);
	sim_tr(r, TR_CRASH, i, 0, mid_write, down, kind);
	push_event(r, SIM_EV_RESTART, i, down);
}

static uint32_t members_up(const struct sim_run *r)
{
	uint32_t up = 0;
	for (uint32_t i = 0; i < r->nodes_n; i++)
		up += r->node[i].up;
	return up;
}

static void fault_crash(struct sim_run *r)
{
	uint32_t mid[SIM_NODES_MAX], mid_n = 0;
	for (uint32_t i = 0; i < r->nodes_n; i++)
		if (r->node[i].up && r->node[i].pending)
			mid[mid_n++] = i;
	if (members_up(r) < 2)
		return;
	/* half the crashes hit a member whose write is in flight: the window
	 * where "answered before persisted" bugs show; else the leader or
	 * anyone */
	int i;
	if (mid_n > 0 && sim_prng_chance(&r->rng, 500000))
		i = (int)mid[sim_prng_below(&r->rng, mid_n)];
	else if ((i = find_leader(r)) < 0 || sim_prng_chance(&r->rng, 500000))
		i = pick_up(r);
	crash_member(r, (uint32_t)i, F_CRASH);
}

static void fault_partition(struct sim_run *r, uint64_t kind)
{
	uint32_t n = r->nodes_n;
	if (kind == F_PARTITION) {
		bool side[SIM_NODES_MAX];
		for (uint32_t i = 0; i < n; i++)
			side[i] = sim_prng_below(&r->rng, 2);
		for (uint32_t i = 0; i < n; i++)
			for (uint32_t j = 0; j < n; j++)
				if (side[i] != side[j])
					r->net.link_up[i][j] = false;
	} else if (kind == F_ISOLATE) {
		/* mostly the leader: it keeps taking proposals it cannot
		 * commit, the uncommitted tails Figure 8 is made of */
		int li = find_leader(r);
		uint32_t a = li >= 0 && sim_prng_chance(&r->rng, 700000)
				     ? (uint32_t)li
				     : (uint32_t)sim_prng_below(&r->rng, n);
		for (uint32_t j = 0; j < n; j++)
			r->net.link_up[a][j] = r->net.link_up[j][a] = a == j;
	} else {
		/* one way: a's messages to b are lost, b's reach a */
		uint32_t a = (uint32_t)sim_prng_below(&r->rng, r->p.members);
		uint32_t b = (uint32_t)sim_prng_below(&r->rng, n);
		if (a != b)
			r->net.link_up[a][b] = false;
	}
	r->st.faults[kind]++;
	sim_tr(r, TR_CUT, 0, 0, kind, sim_net_cut_links(&r->net), 0);
}

static void on_fault(struct sim_run *r)
{
	uint64_t k = sim_prng_below(&r->rng, 100);
	if (k < 24)
		fault_crash(r);
	else if (k < 38)
		fault_partition(r, F_PARTITION);
	else if (k < 50)
		fault_partition(r, F_ONE_WAY);
	else if (k < 60)
		fault_partition(r, F_ISOLATE);
	else if (k < 82) {
		sim_net_heal(&r->net);
		r->st.faults[F_HEAL]++;
		sim_tr(r, TR_HEAL, 0, 0, 0, 0, 0);
	} else {
		uint32_t i = (uint32_t)sim_prng_below(&r->rng, r->nodes_n);
		r->node[i].tick_us = SIM_TICK_US *
				     sim_prng_range(&r->rng,
						    SIM_DRIFT_PERCENT_MIN,
						    SIM_DRIFT_PERCENT_MAX) / 100;
		r->st.faults[F_DRIFT]++;
		sim_tr(r, TR_DRIFT, i, 0, r->node[i].tick_us, 0, 0);
	}
	push_event(r, SIM_EV_FAULT, 0, sim_prng_range(&r->rng, 3000, 30000));
}

/* ---- the event loop ----------------------------------------------------------- */

static void on_deliver(struct sim_run *r, uint32_t slot)
{
	const struct rl_msg *m = sim_net_get(&r->net, slot);
	uint32_t from = (uint32_t)m->from - 1, to = (uint32_t)m->to - 1;
	struct sim_node *n = &r->node[to];
	if (!n->exists || !n->up || !r->net.link_up[from][to])
		sim_tr(r, TR_LOST, from, (uint32_t)m->to, m->type, 1, 0);
	else
		sim_node_deliver(r, to, m);
	sim_net_release(&r->net, slot);
}

static void dispatch(struct sim_run *r, const struct sim_event *ev)
{
	struct sim_node *n = &r->node[ev->node];
	switch (ev->kind) {
	case SIM_EV_TICK:
		if (!n->up || ev->gen != n->gen)
			return;
		sim_tr(r, TR_TICK, ev->node, 0, n->tick_us, 0, 0);
		rl_tick(n->core);
		sim_node_drive(r, ev->node);
		push_event(r, SIM_EV_TICK, ev->node, n->tick_us);
		return;
	case SIM_EV_DELIVER:
		on_deliver(r, (uint32_t)ev->arg);
		return;
	case SIM_EV_PERSISTED:
		if (n->up && ev->gen == n->gen)
			sim_node_persisted(r, ev->node);
		return;
	case SIM_EV_RESTART:
		if (n->up || ev->gen != n->gen)
			return;
		sim_tr(r, TR_RESTART, ev->node, 0, n->durable.hs.term,
		       sim_memlog_last(&n->durable), n->applied);
		sim_node_start(r, ev->node);
		return;
	case SIM_EV_CLIENT:
		if (!r->quiet)
			on_client(r);
		return;
	case SIM_EV_FAULT:
		if (!r->quiet)
			on_fault(r);
		return;
	case SIM_EV_CRASH:
		if (!r->quiet && n->up && ev->gen == n->gen && members_up(r) > 1)
			crash_member(r, ev->node, F_LEADER_CRASH);
		return;
	}
}

/* One step: the next event in virtual time. False when nothing is left. */
static bool step_once(struct sim_run *r)
{
	struct sim_event ev;
	if (!sim_queue_pop(&r->q, &ev))
		return false;
	r->now = ev.at_us;
	r->step++;
	dispatch(r, &ev);
	return true;
}

/* ---- the quiet phase: liveness and no acknowledged write lost ------------------ */

/* Every member of the leader's configuration is up and has applied both
 * the marker and every acknowledged write. */
static bool converged(struct sim_run *r, int *leader_out)
{
	int li = find_leader(r);
	*leader_out = li;
	if (li < 0 || r->marker_acked_index == 0)
		return false;
	rl_index need = r->marker_acked_index > r->ack_max_index
				? r->marker_acked_index : r->ack_max_index;
	struct rl_status s;
	rl_status(r->node[li].core, &s);
	const rl_id *ids[2] = { s.conf.voters, s.conf.learners };
	uint32_t cnt[2] = { s.conf.voters_n, s.conf.learners_n };
	for (int g = 0; g < 2; g++) {
		for (uint32_t k = 0; k < cnt[g]; k++) {
			rl_id id = ids[g][k];
			if (id == 0 || id > r->nodes_n)
				return false;
			const struct sim_node *n = &r->node[id - 1];
			if (!n->up || n->applied < need)
				return false;
		}
	}
	return true;
}

static void check_acks_everywhere(struct sim_run *r, int li)
{
	struct rl_status s;
	rl_status(r->node[li].core, &s);
	for (uint32_t k = 0; k < s.conf.voters_n + s.conf.learners_n; k++) {
		rl_id id = k < s.conf.voters_n
				   ? s.conf.voters[k]
				   : s.conf.learners[k - s.conf.voters_n];
		const struct sim_node *n = &r->node[id - 1];
		for (size_t a = 0; a < r->acks_n; a++) {
			const struct sim_ack *ack = &r->acks[a];
			uint64_t have = ack->index < n->ids_cap
						? n->ids[ack->index] : 0;
			if (have == ack->id)
				continue;
			sim_check_fail(&r->chk, SIM_SAFETY, "acknowledged write kept",
				       "proposal %" PRIu64 " acknowledged at "
				       "index %" PRIu64 " is missing on member %"
				       PRIu64 " (holds %" PRIu64 ")",
				       ack->id, ack->index, id, have);
			return;
		}
	}
}

static void quiet_phase(struct sim_run *r)
{
	r->quiet = true;
	sim_net_heal(&r->net);
	sim_tr(r, TR_QUIET, 0, 0, 0, 0, 0);
	for (uint32_t i = 0; i < r->nodes_n; i++) {
		if (r->node[i].exists && !r->node[i].up) {
			sim_tr(r, TR_RESTART, i, 0, 0, 0, 0);
			sim_node_start(r, i);
		}
	}
	sim_time_us deadline = r->now + SIM_LIVENESS_TIMEOUTS *
					       SIM_ELECTION_TIMEOUT_MAX_US;
	sim_time_us start = r->now, next_try = r->now;
	int li = -1;
	while (!r->chk.failed && r->now <= deadline) {
		if (converged(r, &li)) {
			check_acks_everywhere(r, li);
			return;
		}
		if (r->marker_acked_index == 0 && r->now >= next_try &&
		    li >= 0) {
			r->marker_id = r->next_proposal_id + 1;
			client_propose(r, li, true);
			next_try = r->now + 50000;
		}
		if (!step_once(r))
			break;
		r->st.quiet_steps++;
	}
	if (r->chk.failed)
		return;
	sim_check_fail(&r->chk, SIM_LIVENESS, "liveness",
		       "%.1f ms after the network healed and crashes stopped "
		       "(bound %u election timeouts = %.1f ms): leader %d, "
		       "marker proposal %s, acknowledged up to index %" PRIu64,
		       (double)(r->now - start) / 1000.0, SIM_LIVENESS_TIMEOUTS,
		       (double)SIM_LIVENESS_TIMEOUTS *
			       SIM_ELECTION_TIMEOUT_MAX_US / 1000.0,
		       li >= 0 ? li + 1 : -1,
		       r->marker_acked_index ? "committed" : "not committed",
		       r->ack_max_index);
}

/* ---- one seed ---------------------------------------------------------------- */

static void run_free(struct sim_run *r)
{
	for (uint32_t i = 0; i < SIM_NODES_MAX; i++)
		sim_node_free(&r->node[i]);
	sim_net_free(&r->net);
	sim_queue_free(&r->q);
	sim_check_free(&r->chk);
	free(r->acks);
}

static void report_failure(const struct sim_run *r)
{
	printf("raftsim: seed %" PRIu64 " FAILED at step %" PRIu64
	       " (virtual time %.3f ms, %s phase)\n  %s\n",
	       r->seed, r->step, (double)r->now / 1000.0,
	       r->quiet ? "quiet" : "fault", r->chk.msg);
	for (uint32_t i = 0; i < r->nodes_n; i++) {
		const struct sim_node *n = &r->node[i];
		if (!n->exists)
			continue;
		printf("  m%u: %s", i + 1, n->up ? "up" : "down");
		if (n->up) {
			struct rl_status s;
			rl_status(n->core, &s);
			printf(" %s term=%" PRIu64 " vote=%" PRIu64 " commit=%"
			       PRIu64 " applied=%" PRIu64 " first=%" PRIu64
			       " last=%" PRIu64 " voters=",
			       role_names[s.role < 4 ? s.role : 0],
			       s.hard_state.term, s.hard_state.vote,
			       s.hard_state.commit, s.applied, s.first_index,
			       s.last_index);
			for (uint32_t k = 0; k < s.conf.voters_n; k++)
				printf("%s%" PRIu64, k ? "," : "",
				       s.conf.voters[k]);
			printf(" learners=");
			for (uint32_t k = 0; k < s.conf.learners_n; k++)
				printf("%s%" PRIu64, k ? "," : "",
				       s.conf.learners[k]);
		}
		printf(" | durable: term=%" PRIu64 " vote=%" PRIu64 " commit=%"
		       PRIu64 " snap=%" PRIu64 "/%" PRIu64 " last=%" PRIu64
		       " app_applied=%" PRIu64 "\n", n->durable.hs.term,
		       n->durable.hs.vote, n->durable.hs.commit,
		       n->durable.snap.index, n->durable.snap.term,
		       sim_memlog_last(&n->durable), n->applied);
	}
	printf("trace tail (last %u events):\n", SIM_TRACE_TAIL_MAX);
	sim_trace_dump_tail(&r->tr, stdout);
	printf("replay: raftsim --seed %" PRIu64 " --members %u --steps %" PRIu64
	       "%s%s%s --stage-slots %u --verbose\n", r->seed, r->p.members,
	       r->p.steps, r->p.outcomes_only ? " --outcomes-only" : "",
	       r->p.inject ? " --inject " : "",
	       r->p.inject == SIM_INJECT_STALE_READ ? "stale-read"
	       : r->p.inject == SIM_INJECT_SEND_EARLY ? "send-before-persist"
						       : "",
	       r->p.stage_slots);
}

/* Runs one seed; adds its figures to *total. Returns false on a violation. */
static bool run_seed(const struct sim_params *p, uint64_t seed,
		     struct sim_stats *total, uint64_t *hash)
{
	struct sim_run *r = sim_xcalloc(1, sizeof(*r));
	r->p = *p;
	r->seed = seed;
	sim_prng_seed(&r->rng, seed);
	sim_queue_init(&r->q);
	sim_net_init(&r->net);
	sim_check_init(&r->chk);
	sim_trace_init(&r->tr, p->verbose, stdout, format_rec);
	r->nodes_n = p->members + SIM_SPARES_MAX;
	r->next_spare = p->members;
	r->msg_drop_ppm = SIM_DROP_PPM;
	r->msg_dup_ppm = SIM_DUP_PPM;
	r->msg_late_ppm = SIM_LATE_PPM;
	for (uint32_t i = 0; i < p->members; i++)
		create_node(r, i);
	push_event(r, SIM_EV_CLIENT, 0, sim_prng_range(&r->rng, 500, 4000));
	push_event(r, SIM_EV_FAULT, 0, sim_prng_range(&r->rng, 3000, 30000));
	while (r->step < p->steps && !r->chk.failed && step_once(r))
		;
	r->st.steps = r->step;
	if (!r->chk.failed)
		quiet_phase(r);
	r->st.steps = r->step - r->st.quiet_steps;
	r->st.commits = r->chk.committed_max;
	r->st.virtual_us = r->now;
	bool ok = !r->chk.failed;
	if (!ok)
		report_failure(r);
	uint64_t *t = (uint64_t *)total;
	const uint64_t *s = (const uint64_t *)&r->st;
	for (size_t k = 0; k < sizeof(r->st) / sizeof(uint64_t); k++)
		t[k] += s[k];
	*hash = (*hash ^ r->tr.hash) * 0x100000001b3ull;
	run_free(r);
	free(r);
	return ok;
}
_Static_assert(sizeof(struct sim_stats) % sizeof(uint64_t) == 0,
	       "sim_stats is summed as an array of uint64_t");

/* ---- command line ------------------------------------------------------------- */

static const char usage_text[] =
"usage: raftsim [--seeds N] [--start S] [--seed S] [--members 3|5]\n"
"               [--steps K] [--verbose] [--outcomes-only]\n"
"               [--stage-slots N] [--inject BUG] [--help]\n"
"\n"
"Runs N members of the real raftbus Raft core (raftlog/raft*.c) on a\n"
"simulated network and a virtual clock, seeded and deterministic: the same\n"
"seed replays the same run bit for bit.\n"
"\n"
"  --seeds N     run seeds S .. S+N-1 (default 1); stop at the first failure\n"
"  --start S     first seed (default 1)\n"
"  --seed S      run the one seed S (same as --start S --seeds 1)\n"
"  --members M   initial voters, 3 or 5 (default 3); up to %u spare ids are\n"
"                added and removed by membership changes\n"
"  --steps K     steps of the fault phase per seed (default 2000); the\n"
"                quiet phase that follows is counted apart (quiet_steps)\n"
"  --verbose     print every event of every step (use with --seed)\n"
"  --outcomes-only  turn off the protocol-rule checks (one vote per term,\n"
"                acknowledged entry kept, leader commits own term only) and\n"
"                check outcomes only: shows whether a bug leads to a\n"
"                visible failure, not just to a broken rule\n"
"  --stage-slots N  snapshots a receiver stages at once (1..%u, default %u);\n"
"                chunks are staged only when rl_snapshot_chunk_wanted()\n"
"                says the core takes them, so one slot is enough\n"
"  --inject BUG  break the HARNESS on purpose, to show the checkers bite\n"
"                where no injected core bug reaches: 'stale-read' answers a\n"
"                read from the member's local state at once (no ReadIndex);\n"
"                'send-before-persist' sends every message of a ready\n"
"                before its write is durable\n"
"\n"
"A STEP is one event taken from the virtual-time queue: a member's clock\n"
"tick, a message delivery, a disk write completing, a restart, a targeted\n"
"crash, a client action (propose, linearizable read, membership change,\n"
"snapshot + log compaction, leadership transfer) or a fault decision.\n"
"\n"
"Model: election timeout [%u, %u) ticks, heartbeat %u tick, tick %u us\n"
"nominal; each member's tick length drifts within %u..%u%% of it, so no\n"
"two clocks agree. PreVote and CheckQuorum are on. Messages take 0.1-1.5 ms;\n"
"faults: loss %.1f%%, duplication %.1f%%, late delivery (5-40 ms, i.e.\n"
"reordering) %.1f%% of messages; partitions (two random sides), one-way\n"
"link cuts, isolation of one member (mostly the leader), healing; crashes\n"
"(half of them while a write is in flight) with restart 1-300 ms later\n"
"from persisted state; reactive crashes of a member 0-3 ms after it became\n"
"leader (%.0f%%), after its first commit as leader of a term (%.0f%%) or a\n"
"later one (%.0f%%); isolation of a member the moment it becomes leader\n"
"(%.0f%%); clock drift changes. Membership: add a learner,\n"
"promote it, remove a voter (maybe the leader); snapshots are sent in\n"
"chunks of %u bytes.\n"
"\n"
"Persistence: the in-memory log is a faithful model of the LMDB log\n"
"store: a ready's snapshot, entries and hard state are saved together,\n"
"atomically, when its write completes 0.1-3 ms after it starts (writes\n"
"complete in order). Anything not yet synced is lost on a crash.\n"
"Messages that promise persisted state leave only after the write; the\n"
"state machine (a list of proposal ids, its snapshot the serialized list)\n"
"keeps its applied index with its state, as the store does.\n"
"\n"
"Checked after every step (each violation names its invariant):\n"
"  election safety        at most one leader per term\n"
"  log matching           same index+term => identical entries up to it\n"
"  leader completeness    every committed entry is in every later leader's\n"
"                         log\n"
"  state machine safety   no two members apply different entries at an\n"
"                         index; a committed index never changes its entry\n"
"  committed entry kept   no member deletes an entry known committed\n"
"  term/commit/applied index monotonic  on a member, never going back\n"
"                         within one life; after a restart never below the\n"
"                         persisted term and commit and the applied index\n"
"                         kept with the state machine\n"
"  persisted state monotonic  the durable term and commit never go down,\n"
"                         the durable vote never changes within a term\n"
"  snapshot integrity     an installed snapshot holds the state it names\n"
"  acknowledged write kept  a proposal acknowledged to its client (applied\n"
"                         at its index by the leader that accepted it) is\n"
"                         in every member's state at the end of the run\n"
"  linearizable read      a ReadIndex read sees every write acknowledged\n"
"                         before the read began\n"
"  protocol rules (off with --outcomes-only):\n"
"    one vote per term    a member never grants two votes in one term,\n"
"                         across crashes (Figure 2, votedFor)\n"
"    acknowledged entry kept  a follower never drops an entry it\n"
"                         acknowledged, within that term (Figure 2)\n"
"    leader commits own term only  a leader's commit index only moves onto\n"
"                         an entry of its own term (section 5.4.2, Fig. 8)\n"
"  liveness               after the fault phase comes a QUIET phase: the\n"
"                         network heals, crashed members restart, faults\n"
"                         stop (clocks still drift); within %u election\n"
"                         timeouts of the slowest clock (%.0f ms virtual) a\n"
"                         leader must commit a new proposal and every\n"
"                         member of its configuration apply it and every\n"
"                         acknowledged write\n"
"\n"
"Output: one summary line on success (exit 0): seeds, steps, elections,\n"
"commits (highest committed index, summed), acknowledged proposals, reads\n"
"served, faults by kind and trace_hash (a hash of every traced event: the\n"
"same arguments must print the same hash). On a failure: the seed,\n"
"'SAFETY VIOLATION [invariant]', 'LIVENESS VIOLATION [liveness]' or\n"
"'CORE CONTRACT ERROR [...]' (an API call failed or a ready broke the\n"
"raft.h contract), each member's state, the last %u events and the command\n"
"that replays it (exit 1). Usage errors exit 2.\n";

static void usage(FILE *out)
{
	fprintf(out, usage_text, SIM_SPARES_MAX, SIM_STAGE_SLOTS,
		SIM_STAGE_SLOTS_DEFAULT, SIM_ELECTION_TICKS, 2 * SIM_ELECTION_TICKS,
		SIM_HEARTBEAT_TICKS, SIM_TICK_US, SIM_DRIFT_PERCENT_MIN,
		SIM_DRIFT_PERCENT_MAX, SIM_DROP_PPM / 10000.0,
		SIM_DUP_PPM / 10000.0, SIM_LATE_PPM / 10000.0,
		SIM_NEW_LEADER_CRASH_PPM / 10000.0,
		SIM_FIRST_COMMIT_CRASH_PPM / 10000.0,
		SIM_COMMIT_CRASH_PPM / 10000.0,
		SIM_NEW_LEADER_ISOLATE_PPM / 10000.0, SIM_SNAP_CHUNK_BYTES_MAX,
		SIM_LIVENESS_TIMEOUTS,
		(double)SIM_LIVENESS_TIMEOUTS * SIM_ELECTION_TIMEOUT_MAX_US /
			1000.0,
		SIM_TRACE_TAIL_MAX);
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	if (!s || !*s)
		return false;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv, struct sim_params *p,
		      uint64_t *start, uint64_t *seeds)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t x;
		bool ok = true;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--verbose")) {
			p->verbose = true;
			continue;
		} else if (!strcmp(a, "--outcomes-only")) {
			p->outcomes_only = true;
			continue;
		} else if (!strcmp(a, "--seeds")) {
			ok = parse_u64(v, 1, UINT32_MAX, seeds);
		} else if (!strcmp(a, "--start")) {
			ok = parse_u64(v, 0, UINT64_MAX, start);
		} else if (!strcmp(a, "--seed")) {
			ok = parse_u64(v, 0, UINT64_MAX, start);
			*seeds = 1;
		} else if (!strcmp(a, "--members")) {
			ok = parse_u64(v, 3, 5, &x) && (x == 3 || x == 5);
			p->members = (uint32_t)x;
		} else if (!strcmp(a, "--stage-slots")) {
			ok = parse_u64(v, 1, SIM_STAGE_SLOTS, &x);
			p->stage_slots = (uint32_t)x;
		} else if (!strcmp(a, "--inject")) {
			ok = v && (!strcmp(v, "stale-read") ||
				   !strcmp(v, "send-before-persist"));
			p->inject = ok && !strcmp(v, "stale-read")
					    ? SIM_INJECT_STALE_READ
					    : SIM_INJECT_SEND_EARLY;
		} else if (!strcmp(a, "--steps")) {
			ok = parse_u64(v, 1, SIM_STEPS_MAX, &p->steps);
		} else {
			ok = false;
		}
		if (!ok) {
			fprintf(stderr, "raftsim: bad argument '%s%s%s'\n", a,
				v ? " " : "", v ? v : "");
			usage(stderr);
			return -1;
		}
		i++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sim_params p = { .members = 3, .steps = 2000,
				.stage_slots = SIM_STAGE_SLOTS_DEFAULT };
	uint64_t start = 1, seeds = 1;
	if (parse_args(argc, argv, &p, &start, &seeds) != 0)
		return 2;
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	struct sim_stats t = { 0 };
	uint64_t hash = 0xcbf29ce484222325ull;
	for (uint64_t s = start; s - start < seeds; s++) {
		if (!run_seed(&p, s, &t, &hash)) {
			fflush(stdout);
			return 1;
		}
	}
	printf("raftsim: ok seeds=%" PRIu64 " (from %" PRIu64 ") members=%u "
	       "steps=%" PRIu64 " quiet_steps=%" PRIu64 " elections=%" PRIu64
	       " commits=%" PRIu64 " acked=%" PRIu64 " reads=%" PRIu64
	       " proposals=%" PRIu64 " conf_changes=%" PRIu64
	       " snapshots=%" PRIu64 " installs=%" PRIu64 " transfers=%" PRIu64
	       " virtual=%.1fs faults:",
	       seeds, start, p.members, t.steps, t.quiet_steps, t.elections,
	       t.commits, t.acked, t.reads, t.proposals, t.conf_changes,
	       t.snapshots, t.installs, t.transfers,
	       (double)t.virtual_us / 1e6);
	for (int k = 0; k < F_KIND_N; k++)
		printf(" %s=%" PRIu64, fault_names[k], t.faults[k]);
	printf(" trace_hash=%016" PRIx64 "\n", hash);
	return 0;
}
