/*
 * sim_node.c - drives one simulated member: the real core (raft.h) wrapped
 * in what a raftbus member puts around it, following the ready contract of
 * raft.h step by step, with the "disk" completing each write after a
 * simulated delay.
 *
 * Persistence model (what a crash can lose): a ready's snapshot, entries
 * and hard state are applied to the WRITTEN log at once and to the DURABLE
 * log only when the simulated write completes, all together - the LMDB log
 * store commits them in one transaction. Messages that promise persisted
 * state (rd.msgs) leave only then; rd.msgs_now leave at once (thesis
 * §10.2.1). A crash drops the core, the pending ready and the written log;
 * the member restarts from the durable log and its durable state machine.
 *
 * The state machine is an array of proposal ids by log index; its applied
 * index is durable together with it (as the store keeps the applied index
 * in the same LMDB transaction as the state).
 */
#include "sim_run.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void sim_tr(struct sim_run *r, uint16_t what, uint32_t node, uint32_t peer,
	    uint64_t a, uint64_t b, uint64_t c)
{
	struct sim_trace_rec rec = {
		.step = r->step, .at_us = r->now, .what = what,
		.node = (uint8_t)node, .peer = (uint8_t)peer,
		.a = a, .b = b, .c = c,
	};
	sim_trace_add(&r->tr, &rec);
}

/* ---- storage interface over the durable log ----------------------------- */

static int st_first(void *ctx, rl_index *out)
{
	const struct sim_node *n = ctx;
	*out = sim_memlog_first(&n->durable);
	return RL_OK;
}

static int st_last(void *ctx, rl_index *out)
{
	const struct sim_node *n = ctx;
	*out = sim_memlog_last(&n->durable);
	return RL_OK;
}

static int st_term(void *ctx, rl_index i, rl_term *out)
{
	const struct sim_node *n = ctx;
	if (i < n->durable.snap.index)
		return RL_ERR_COMPACTED;
	if (i > sim_memlog_last(&n->durable))
		return RL_ERR_UNAVAILABLE;
	bool ok = sim_memlog_term(&n->durable, i, out);
	assert(ok);
	(void)ok;
	return RL_OK;
}

static int st_entries(void *ctx, rl_index lo, rl_index hi, uint64_t bytes_max,
		      struct rl_entry *out, size_t out_max, size_t *out_n)
{
	const struct sim_node *n = ctx;
	*out_n = 0;
	if (lo < sim_memlog_first(&n->durable))
		return RL_ERR_COMPACTED;
	if (hi == 0 || hi - 1 > sim_memlog_last(&n->durable) || lo >= hi ||
	    out_max == 0)
		return hi > lo ? RL_ERR_UNAVAILABLE : RL_ERR_INVAL;
	uint64_t bytes = 0;
	for (rl_index i = lo; i < hi && *out_n < out_max; i++) {
		const struct rl_entry *e = sim_memlog_entry(&n->durable, i);
		if (*out_n > 0 && bytes + e->data_len > bytes_max)
			break;
		bytes += e->data_len;
		struct rl_entry *o = &out[(*out_n)++];
		*o = *e;
		o->data = NULL;
		if (e->data_len > 0) {
			o->data = malloc(e->data_len);
			if (!o->data) {
				(*out_n)--;
				for (size_t k = 0; k < *out_n; k++)
					free(out[k].data);
				*out_n = 0;
				return RL_ERR_NOMEM;
			}
			memcpy(o->data, e->data, e->data_len);
		}
	}
	return RL_OK;
}

static int st_snapshot_meta(void *ctx, struct rl_snapshot_meta *out)
{
	const struct sim_node *n = ctx;
	*out = n->durable.snap;
	return RL_OK;
}

/* ---- the state machine --------------------------------------------------- */

/* The member's term as far as the simulator knows it (the last observed,
 * or a newer one already handed out for persisting). */
static rl_term cur_term(const struct sim_node *n)
{
	return n->written.hs.term > n->term_seen ? n->written.hs.term
						 : n->term_seen;
}

static void app_reserve(struct sim_node *n, rl_index idx)
{
	if (idx < n->ids_cap)
		return;
	size_t ncap = n->ids_cap ? n->ids_cap : 256;
	while (ncap <= idx)
		ncap *= 2;
	n->ids = sim_xrealloc(n->ids, ncap * sizeof(*n->ids));
	memset(n->ids + n->ids_cap, 0, (ncap - n->ids_cap) * sizeof(*n->ids));
	n->ids_cap = ncap;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Snapshot data: u64 applied index, then the ids of indexes 1..applied. */
static uint8_t *app_serialize(const struct sim_node *n, uint32_t *len)
{
	*len = (uint32_t)(8 * (n->applied + 1));
	uint8_t *d = sim_xmalloc(*len);
	put_u64(d, n->applied);
	for (rl_index i = 1; i <= n->applied; i++)
		put_u64(d + 8 * i, i < n->ids_cap ? n->ids[i] : 0);
	return d;
}

static bool app_restore(struct sim_run *r, struct sim_node *n,
			const struct rl_snapshot_meta *meta,
			const uint8_t *d, uint32_t len)
{
	if (len < 8 || get_u64(d) != meta->index ||
	    len != 8 * (meta->index + 1)) {
		sim_check_fail(&r->chk, SIM_SAFETY, "snapshot integrity",
			       "member %" PRIu64 " installs snapshot %" PRIu64
			       "/%" PRIu64 " of %u bytes that does not hold "
			       "its state", n->id, meta->index, meta->term, len);
		return false;
	}
	if (meta->index < n->applied) {
		sim_check_fail(&r->chk, SIM_SAFETY, "applied index monotonic",
			       "member %" PRIu64 " installs snapshot at %"
			       PRIu64 " below its applied index %" PRIu64,
			       n->id, meta->index, n->applied);
		return false;
	}
	app_reserve(n, meta->index);
	for (rl_index i = 1; i <= meta->index; i++)
		n->ids[i] = get_u64(d + 8 * i);
	n->applied = meta->index;
	n->conf = meta->conf;
	return true;
}

/* Acknowledges a proposal when the member that accepted it applies it at
 * the index it was given (the client's reply). */
static void ack_proposals(struct sim_run *r, uint32_t i, rl_index idx,
			  uint64_t id_applied)
{
	struct sim_node *n = &r->node[i];
	for (uint32_t k = 0; k < r->props_n;) {
		struct sim_proposal *p = &r->props[k];
		bool mine = p->node == i && p->gen == n->gen;
		if (!mine || p->index > idx) {
			k++;
			continue;
		}
		if (p->index == idx && p->id == id_applied) {
			if (r->acks_n == r->acks_cap) {
				r->acks_cap = r->acks_cap ? 2 * r->acks_cap : 256;
				r->acks = sim_xrealloc(r->acks, r->acks_cap *
							       sizeof(*r->acks));
			}
			r->acks[r->acks_n++] = (struct sim_ack){ p->id, idx };
			if (idx > r->ack_max_index)
				r->ack_max_index = idx;
			r->st.acked++;
			if (p->id == r->marker_id)
				r->marker_acked_index = idx;
		}
		*p = r->props[--r->props_n];
	}
}

static void apply_entry(struct sim_run *r, uint32_t i, const struct rl_entry *e)
{
	struct sim_node *n = &r->node[i];
	if (e->index != n->applied + 1) {
		sim_check_fail(&r->chk, SIM_SAFETY, "applied index monotonic",
			       "member %" PRIu64 " applies index %" PRIu64
			       " after %" PRIu64 " (skip or double apply)",
			       n->id, e->index, n->applied);
		return;
	}
	if (!sim_check_committed(&r->chk, n->id, e->index, e->term,
				 sim_entry_hash(e), cur_term(n), "applied"))
		return;
	app_reserve(n, e->index);
	uint64_t id = 0;
	if (e->type == RL_ENTRY_NORMAL && e->data_len == 8)
		id = get_u64(e->data);
	if (e->type == RL_ENTRY_CONF_CHANGE) {
		struct rl_conf_change cc;
		if (rl_conf_change_decode(e->data, e->data_len, &cc) == RL_OK)
			(void)rl_conf_apply(&n->conf, &cc);
	}
	n->ids[e->index] = id;
	n->applied = e->index;
	sim_tr(r, TR_APPLY, i, 0, e->index, e->term, id);
	ack_proposals(r, i, e->index, id);
}

/* Answers the reads of member i whose read index it has now applied; a
 * linearizable read must see every write acknowledged before it began. */
static void serve_reads(struct sim_run *r, uint32_t i)
{
	struct sim_node *n = &r->node[i];
	for (uint32_t k = 0; k < r->reads_n;) {
		struct sim_read *rd = &r->reads[k];
		if (rd->node != i || rd->gen != n->gen || !rd->indexed ||
		    n->applied < rd->read_index) {
			k++;
			continue;
		}
		if (n->applied < rd->min_index)
			sim_check_fail(&r->chk, SIM_SAFETY, "linearizable read",
				       "read %" PRIu64 " on member %" PRIu64
				       " (read index %" PRIu64 ") returned the "
				       "state at index %" PRIu64 " but a write "
				       "acknowledged before it began is at %"
				       PRIu64, rd->id, n->id, rd->read_index,
				       n->applied, rd->min_index);
		sim_tr(r, TR_READ_DONE, i, 0, rd->id, rd->read_index, n->applied);
		r->st.reads++;
		*rd = r->reads[--r->reads_n];
	}
}

static void take_read_states(struct sim_run *r, uint32_t i,
			     const struct rl_ready *rd)
{
	for (size_t k = 0; k < rd->read_states_n; k++) {
		const struct rl_read_state *rs = &rd->read_states[k];
		if (rs->ctx_len != 8)
			continue;
		uint64_t id = get_u64(rs->ctx);
		for (uint32_t j = 0; j < r->reads_n; j++) {
			struct sim_read *q = &r->reads[j];
			if (q->id == id && q->node == i && !q->indexed) {
				q->indexed = true;
				q->read_index = rs->index;
			}
		}
	}
}

/* ---- network output ------------------------------------------------------ */

static void schedule_delivery(struct sim_run *r, uint32_t slot, bool late)
{
	sim_time_us d = late ? sim_prng_range(&r->rng, 5000, 40000)
			     : sim_prng_range(&r->rng, 100, 1500);
	struct sim_event ev = { .at_us = r->now + d, .kind = SIM_EV_DELIVER,
				.arg = slot };
	sim_queue_push(&r->q, ev);
}

/* Ghost check on every granted vote: one vote per member per term (paper
 * Figure 2, votedFor), across crashes. */
static void check_vote(struct sim_run *r, const struct rl_msg *m)
{
	if (m->type != RL_MSG_VOTE_RESP || m->reject || r->p.outcomes_only)
		return;
	struct sim_node *n = &r->node[m->from - 1];
	if (m->term > n->vote_term) {
		n->vote_term = m->term;
		n->vote_for = m->to;
		return;
	}
	if (m->term == n->vote_term && m->to == n->vote_for)
		return;
	sim_check_fail(&r->chk, SIM_SAFETY, "one vote per term",
		       "member %" PRIu64 " grants its vote in term %" PRIu64
		       " to %" PRIu64 " after voting for %" PRIu64
		       " in term %" PRIu64,
		       m->from, m->term, m->to, n->vote_for, n->vote_term);
}

/* The log position a trace line shows for m (snapshots: which one). */
static uint64_t tr_index(const struct rl_msg *m)
{
	bool snap = m->type == RL_MSG_SNAPSHOT ||
		    m->type == RL_MSG_SNAPSHOT_RESP;
	return snap ? m->snap.index : m->index;
}

/* Ghost record of what a follower promised its leader: the entries up to
 * an accepted APPEND_RESP's index are in its log. */
static void note_ack(struct sim_run *r, const struct rl_msg *m)
{
	if (m->type != RL_MSG_APPEND_RESP || m->reject)
		return;
	struct sim_node *n = &r->node[m->from - 1];
	if (m->term > n->ack_term) {
		n->ack_term = m->term;
		n->ack_index = m->index;
	} else if (m->term == n->ack_term && m->index > n->ack_index) {
		n->ack_index = m->index;
	}
}

void sim_send(struct sim_run *r, const struct rl_msg *m)
{
	check_vote(r, m);
	note_ack(r, m);
	if (m->to == RL_NONE || m->to > r->nodes_n)
		return;
	sim_tr(r, TR_SEND, (uint32_t)m->from - 1, (uint32_t)m->to, m->type,
	       m->term, tr_index(m));
	if (!r->quiet && sim_prng_chance(&r->rng, r->msg_drop_ppm)) {
		r->st.faults[F_DROP]++;
		sim_tr(r, TR_LOST, (uint32_t)m->from - 1, (uint32_t)m->to, m->type,
		       0, 0);
		return;
	}
	bool late = !r->quiet && sim_prng_chance(&r->rng, r->msg_late_ppm);
	r->st.faults[F_LATE] += late;
	schedule_delivery(r, sim_net_put(&r->net, m), late);
	if (!r->quiet && sim_prng_chance(&r->rng, r->msg_dup_ppm)) {
		r->st.faults[F_DUP]++;
		sim_tr(r, TR_DUP, (uint32_t)m->from - 1, (uint32_t)m->to, m->type,
		       0, 0);
		schedule_delivery(r, sim_net_put(&r->net, m),
				  sim_prng_chance(&r->rng, 500000));
	}
}

/* The sending application's part of InstallSnapshot: fill the chunk from
 * the durable snapshot, or drop the message if that snapshot is gone. */
static void send_with_chunk(struct sim_run *r, struct sim_node *n,
			    const struct rl_msg *m)
{
	if (m->type != RL_MSG_SNAPSHOT || m->snap_data != NULL) {
		sim_send(r, m);
		return;
	}
	const struct sim_memlog *l = &n->durable;
	if (l->snap.index != m->snap.index || l->snap.term != m->snap.term ||
	    m->snap_offset > l->snap_len)
		return;
	struct rl_msg c = *m;
	uint64_t left = l->snap_len - m->snap_offset;
	c.snap_len = (uint32_t)(left < SIM_SNAP_CHUNK_BYTES_MAX
					? left : SIM_SNAP_CHUNK_BYTES_MAX);
	c.snap_data = l->snap_data + m->snap_offset;
	c.snap_done = m->snap_offset + c.snap_len == l->snap_len;
	sim_send(r, &c);
}

/* The staged bytes of one snapshot, or NULL. */
static struct sim_stage *stage_find(struct sim_node *n, rl_index index,
				     rl_term term)
{
	for (int k = 0; k < SIM_STAGE_SLOTS; k++)
		if (n->stage[k].index == index && n->stage[k].term == term &&
		    index != 0)
			return &n->stage[k];
	return NULL;
}

/* ---- the ready contract --------------------------------------------------- */

/* Log matching on every entry written, and no committed entry truncated. */
/* The first index in [first, top] whose entry in n's written log the ready
 * rd drops or changes (the ready deletes every entry from its first index
 * on, then writes its own); 0 if none. With committed_only, only entries
 * the checker knows committed count. */
static rl_index first_dropped(const struct sim_run *r, const struct sim_node *n,
			      const struct rl_ready *rd, rl_index top,
			      bool committed_only)
{
	rl_index first = rd->entries[0].index;
	rl_index end = rd->entries[rd->entries_n - 1].index;
	if (top > sim_memlog_last(&n->written))
		top = sim_memlog_last(&n->written);
	for (rl_index idx = first; idx <= top; idx++) {
		rl_term had;
		if (idx <= n->written.snap.index ||
		    !sim_memlog_term(&n->written, idx, &had))
			continue;
		if (committed_only && r->chk.committed[idx].term != had)
			continue;
		if (idx <= end && rd->entries[idx - first].term == had)
			continue;
		return idx;
	}
	return 0;
}

/* What a ready may delete: a committed entry never (entries are truncated
 * only on a conflict, Figure 2, and a committed entry never conflicts,
 * §5.4); an entry the member acknowledged, never within the term it
 * acknowledged it in (its leader's log only grows). */
static bool check_kept(struct sim_run *r, struct sim_node *n,
		       const struct rl_ready *rd)
{
	rl_index first = rd->entries[0].index;
	rl_index end = rd->entries[rd->entries_n - 1].index;
	rl_index idx = first_dropped(r, n, rd, r->chk.committed_max, true);
	if (idx) {
		sim_check_fail(&r->chk, SIM_SAFETY, "committed entry kept",
			       "member %" PRIu64 " rewrites its log from "
			       "index %" PRIu64 " to %" PRIu64 ", dropping "
			       "committed index %" PRIu64, n->id, first, end,
			       idx);
		return false;
	}
	rl_term cur = rd->has_hard_state ? rd->hard_state.term
					 : n->written.hs.term;
	if (cur != n->ack_term || r->p.outcomes_only)
		return true;
	idx = first_dropped(r, n, rd, n->ack_index, false);
	if (idx) {
		sim_check_fail(&r->chk, SIM_SAFETY, "acknowledged entry kept",
			       "member %" PRIu64 " rewrites its log from "
			       "index %" PRIu64 " to %" PRIu64 " in term %"
			       PRIu64 ", dropping index %" PRIu64
			       " it acknowledged up to %" PRIu64, n->id,
			       first, end, cur, idx, n->ack_index);
		return false;
	}
	return true;
}

/* Checks a ready's entries against the written log before they go in. */
static bool check_written(struct sim_run *r, struct sim_node *n,
			  const struct rl_ready *rd)
{
	if (rd->entries_n == 0)
		return true;
	for (size_t k = 1; k < rd->entries_n; k++) {
		if (rd->entries[k].index != rd->entries[k - 1].index + 1) {
			sim_check_fail(&r->chk, SIM_CONTRACT, "ready contract",
				       "member %" PRIu64 " hands out "
				       "non-contiguous entries", n->id);
			return false;
		}
	}
	if (!check_kept(r, n, rd))
		return false;
	rl_index first = rd->entries[0].index;
	rl_term prev = 0;
	bool have_prev = first == 1 ||
			 sim_memlog_term(&n->written, first - 1, &prev);
	for (size_t k = 0; k < rd->entries_n; k++) {
		const struct rl_entry *e = &rd->entries[k];
		if (have_prev &&
		    !sim_check_log_entry(&r->chk, n->id, e, prev))
			return false;
		prev = e->term;
		have_prev = true;
	}
	return true;
}

static bool begin_write(struct sim_run *r, uint32_t i)
{
	struct sim_node *n = &r->node[i];
	const struct rl_ready *rd = &n->rd;
	if (rd->has_snapshot) {
		const struct sim_stage *st =
			stage_find(n, rd->snapshot.index, rd->snapshot.term);
		if (!st) {
			sim_check_fail(&r->chk, SIM_CONTRACT, "ready contract",
				       "member %" PRIu64 " asks to install "
				       "snapshot %" PRIu64 "/%" PRIu64
				       " that was never fully received", n->id,
				       rd->snapshot.index, rd->snapshot.term);
			return false;
		}
		n->pend_snap_len = st->len;
		n->pend_snap = sim_xmalloc(st->len);
		memcpy(n->pend_snap, st->buf, st->len);
		sim_memlog_install(&n->written, &rd->snapshot, n->pend_snap,
				   n->pend_snap_len);
		sim_tr(r, TR_SNAP_INSTALL, i, 0, rd->snapshot.index,
		       rd->snapshot.term, n->pend_snap_len);
		r->st.installs++;
	}
	if (!check_written(r, n, rd))
		return false;
	if (!sim_memlog_append(&n->written, rd->entries, rd->entries_n)) {
		sim_check_fail(&r->chk, SIM_CONTRACT, "ready contract",
			       "member %" PRIu64 " writes index %" PRIu64
			       " past its last index %" PRIu64, n->id,
			       rd->entries[0].index,
			       sim_memlog_last(&n->written));
		return false;
	}
	if (rd->has_hard_state)
		n->written.hs = rd->hard_state;
	return true;
}

static bool durable_hard_state(struct sim_run *r, struct sim_node *n,
			       const struct rl_hard_state *hs)
{
	const struct rl_hard_state *old = &n->durable.hs;
	const char *what = NULL;
	if (hs->term < old->term)
		what = "term goes down";
	else if (hs->term == old->term && old->vote != RL_NONE &&
		 hs->vote != old->vote)
		what = "vote changes within a term";
	else if (hs->commit < old->commit)
		what = "commit index goes down";
	if (what) {
		sim_check_fail(&r->chk, SIM_SAFETY, "persisted state monotonic",
			       "member %" PRIu64 ": %s (term %" PRIu64 "->%"
			       PRIu64 " vote %" PRIu64 "->%" PRIu64
			       " commit %" PRIu64 "->%" PRIu64 ")", n->id,
			       what, old->term, hs->term, old->vote, hs->vote,
			       old->commit, hs->commit);
		return false;
	}
	n->durable.hs = *hs;
	return true;
}

/* Steps 3-7 of the ready contract, once the disk is done. */
static void complete_ready(struct sim_run *r, uint32_t i)
{
	struct sim_node *n = &r->node[i];
	struct rl_ready *rd = &n->rd;
	if (rd->has_snapshot) {
		sim_memlog_install(&n->durable, &rd->snapshot, n->pend_snap,
				   n->pend_snap_len);
		if (!app_restore(r, n, &rd->snapshot, n->pend_snap,
				 n->pend_snap_len))
			return;
	}
	bool ok = sim_memlog_append(&n->durable, rd->entries, rd->entries_n);
	assert(ok);
	(void)ok;
	if (rd->has_hard_state && !durable_hard_state(r, n, &rd->hard_state))
		return;
	if (rd->entries_n || rd->has_hard_state || rd->has_snapshot)
		sim_tr(r, TR_DURABLE, i, 0, sim_memlog_last(&n->durable),
		       n->durable.hs.term, n->durable.hs.commit);
	for (size_t k = 0; k < rd->msgs_n &&
			   r->p.inject != SIM_INJECT_SEND_EARLY; k++)
		send_with_chunk(r, n, &rd->msgs[k]);
	for (size_t k = 0; k < rd->committed_n && !r->chk.failed; k++)
		apply_entry(r, i, &rd->committed[k]);
	take_read_states(r, i, rd);
	serve_reads(r, i);
	free(n->pend_snap);
	n->pend_snap = NULL;
	n->pend_snap_len = 0;
	rl_advance(n->core, rd);
	n->pending = false;
}

static void handle_ready(struct sim_run *r, uint32_t i)
{
	struct sim_node *n = &r->node[i];
	const struct rl_ready *rd = &n->rd;
	for (size_t k = 0; k < rd->msgs_now_n; k++)
		send_with_chunk(r, n, &rd->msgs_now[k]);
	for (size_t k = 0; k < rd->msgs_n &&
			   r->p.inject == SIM_INJECT_SEND_EARLY; k++)
		send_with_chunk(r, n, &rd->msgs[k]);
	if (!begin_write(r, i))
		return;
	n->pending = true;
	if (!rd->entries_n && !rd->has_hard_state && !rd->has_snapshot) {
		complete_ready(r, i);
		return;
	}
	/* the disk completes writes in order, each after 0.1-3 ms */
	sim_time_us start = n->disk_free_at > r->now ? n->disk_free_at : r->now;
	n->disk_free_at = start + sim_prng_range(&r->rng, 100, 3000);
	sim_tr(r, TR_WRITE, i, 0, rd->entries_n ? rd->entries[0].index : 0,
	       rd->entries_n, rd->has_hard_state ? rd->hard_state.term : 0);
	struct sim_event ev = { .at_us = n->disk_free_at,
				.kind = SIM_EV_PERSISTED, .node = (uint8_t)i,
				.gen = n->gen };
	sim_queue_push(&r->q, ev);
}

void sim_node_persisted(struct sim_run *r, uint32_t i)
{
	struct sim_node *n = &r->node[i];
	assert(n->up && n->pending);
	complete_ready(r, i);
	sim_node_drive(r, i);
}

/* ---- inputs --------------------------------------------------------------- */

static void core_error(struct sim_run *r, uint32_t i, const char *call, int rc)
{
	sim_tr(r, TR_ERROR, i, 0, (uint64_t)(int64_t)rc, 0, 0);
	sim_check_fail(&r->chk, SIM_CONTRACT, "core error",
		       "member %" PRIu64 ": %s returned %d (%s)", r->node[i].id,
		       call, rc, rl_strerror(rc));
}

/* The receiving application's part of InstallSnapshot (raft.h,
 * SNAPSHOTS): stage a chunk before the core sees it, and only if
 * rl_snapshot_chunk_wanted() says the core will take it. Staging is keyed
 * by snapshot in `slots` slots (default 1, the broker's way); an offset-0
 * chunk of another snapshot takes the least recently written slot. */
static void stage_chunk(struct sim_node *n, const struct rl_msg *m,
			uint32_t slots)
{
	struct sim_stage *st = stage_find(n, m->snap.index, m->snap.term);
	if (!st) {
		if (m->snap_offset != 0)
			return;
		st = &n->stage[0];
		for (uint32_t k = 1; k < slots; k++)
			if (n->stage[k].used < st->used)
				st = &n->stage[k];
		st->index = m->snap.index;
		st->term = m->snap.term;
		st->len = 0;
	}
	st->used = ++n->stage_clock;
	uint64_t end = m->snap_offset + m->snap_len;
	if (m->snap_offset > st->len)
		return;   /* a gap: the core refuses it anyway */
	if (end > st->cap) {
		st->cap = (uint32_t)(end * 2);
		st->buf = sim_xrealloc(st->buf, st->cap);
	}
	memcpy(st->buf + m->snap_offset, m->snap_data, m->snap_len);
	if (end > st->len)
		st->len = (uint32_t)end;
}

void sim_node_deliver(struct sim_run *r, uint32_t i, const struct rl_msg *m)
{
	struct sim_node *n = &r->node[i];
	sim_tr(r, TR_DELIVER, i, (uint32_t)m->from, m->type, m->term,
	       tr_index(m));
	if (m->type == RL_MSG_SNAPSHOT && m->snap_len > 0 &&
	    rl_snapshot_chunk_wanted(n->core, m))
		stage_chunk(n, m, r->p.stage_slots);
	int rc = rl_step(n->core, m);
	if (rc != RL_OK)
		core_error(r, i, "rl_step", rc);
	sim_node_drive(r, i);
}

void sim_node_start(struct sim_run *r, uint32_t i)
{
	struct sim_node *n = &r->node[i];
	assert(n->exists && !n->up);
	n->storage = (struct rl_storage){
		.ctx = n, .first_index = st_first, .last_index = st_last,
		.term = st_term, .entries = st_entries,
		.snapshot_meta = st_snapshot_meta,
	};
	struct rl_config cfg = {
		.id = n->id,
		.hard_state = n->durable.hs,
		.applied = n->applied,
		.storage = &n->storage,
		.election_ticks = SIM_ELECTION_TICKS,
		.heartbeat_ticks = SIM_HEARTBEAT_TICKS,
		.seed = sim_prng_next(&r->rng),
		.pre_vote = true,
		.check_quorum = true,
		/* small limits, so that appends are split and pipelined and
		 * a ready holds only part of a backlog */
		.inflight_msgs_max = 4,
		.msg_bytes_max = 16,
		.ready_entries_max = 16,
	};
	/* the membership as of index 0 (used only while storage is empty),
	 * for every member, like etcd's --initial-cluster: the bootstrap is
	 * not a log entry, so a member added later replays the changes on
	 * top of it */
	cfg.bootstrap.voters_n = r->p.members;
	for (uint32_t k = 0; k < r->p.members; k++)
		cfg.bootstrap.voters[k] = k + 1;
	int rc = rl_node_new(&cfg, &n->core);
	if (rc != RL_OK) {
		core_error(r, i, "rl_node_new", rc);
		return;
	}
	n->up = true;
	n->pending = false;
	n->disk_free_at = r->now;
	n->commit_seen = n->durable.hs.commit;
	n->commit_recorded = n->durable.snap.index;
	n->applied_seen = n->applied;
	n->role = RL_FOLLOWER;
	n->term_seen = n->durable.hs.term;
	n->leader_checked_term = 0;
	for (int k = 0; k < SIM_STAGE_SLOTS; k++) {
		n->stage[k].index = 0;
		n->stage[k].term = 0;
		n->stage[k].len = 0;
	}
	struct sim_event ev = { .at_us = r->now + sim_prng_below(&r->rng,
								 n->tick_us),
				.kind = SIM_EV_TICK, .node = (uint8_t)i,
				.gen = n->gen };
	sim_queue_push(&r->q, ev);
	sim_node_drive(r, i);
}

void sim_node_crash(struct sim_run *r, uint32_t i)
{
	struct sim_node *n = &r->node[i];
	assert(n->up);
	rl_node_free(n->core);
	n->core = NULL;
	n->up = false;
	n->pending = false;
	n->gen++;
	free(n->pend_snap);
	n->pend_snap = NULL;
	n->pend_snap_len = 0;
	sim_memlog_copy(&n->written, &n->durable);
	/* the crashed incarnation's clients see no answer */
	for (uint32_t k = 0; k < r->props_n;)
		if (r->props[k].node == i)
			r->props[k] = r->props[--r->props_n];
		else
			k++;
	for (uint32_t k = 0; k < r->reads_n;)
		if (r->reads[k].node == i)
			r->reads[k] = r->reads[--r->reads_n];
		else
			k++;
}

void sim_node_free(struct sim_node *n)
{
	if (n->core)
		rl_node_free(n->core);
	sim_memlog_free(&n->durable);
	sim_memlog_free(&n->written);
	free(n->pend_snap);
	free(n->ids);
	for (int k = 0; k < SIM_STAGE_SLOTS; k++)
		free(n->stage[k].buf);
	memset(n, 0, sizeof(*n));
}

void sim_node_snapshot(struct sim_run *r, uint32_t i)
{
	struct sim_node *n = &r->node[i];
	if (!n->up || n->pending || n->applied <= n->durable.snap.index)
		return;
	uint32_t len;
	uint8_t *data = app_serialize(n, &len);
	rl_index idx = n->applied;
	struct rl_snapshot_meta meta = { .index = idx, .conf = n->conf };
	bool ok = sim_memlog_term(&n->durable, idx, &meta.term);
	assert(ok);
	(void)ok;
	int rc = rl_snapshot_taken(n->core, &meta);
	if (rc != RL_OK) {
		free(data);
		core_error(r, i, "rl_snapshot_taken", rc);
		return;
	}
	sim_memlog_compact(&n->durable, idx, &meta.conf, data, len);
	sim_memlog_compact(&n->written, idx, &meta.conf, data, len);
	free(data);
	sim_tr(r, TR_SNAP_TAKE, i, 0, idx, meta.term, len);
	r->st.snapshots++;
	sim_node_drive(r, i);
}

/* ---- observation and per-step checks ------------------------------------- */

static bool term_at_written(void *ctx, rl_index idx, rl_term *t)
{
	const struct sim_node *n = ctx;
	if (idx <= n->written.snap.index)
		return false;
	if (!sim_memlog_term(&n->written, idx, t))
		*t = 0;
	return true;
}

/* Records the entries member i knows committed. Only while no write is in
 * flight: then the written log is exactly the core's log. */
static void record_commits(struct sim_run *r, struct sim_node *n)
{
	while (n->commit_recorded < n->commit_seen && !r->chk.failed) {
		rl_index idx = n->commit_recorded + 1;
		if (idx <= n->written.snap.index) {
			n->commit_recorded = n->written.snap.index;
			continue;
		}
		const struct rl_entry *e = sim_memlog_entry(&n->written, idx);
		if (!e)
			break;
		sim_check_committed(&r->chk, n->id, idx, e->term,
				    sim_entry_hash(e), cur_term(n),
				    "has committed");
		n->commit_recorded = idx;
	}
}

/* Schedules a targeted crash of member i's current incarnation. */
static void maybe_crash_soon(struct sim_run *r, uint32_t i, uint32_t ppm)
{
	if (r->quiet || !sim_prng_chance(&r->rng, ppm))
		return;
	struct sim_event ev = { .at_us = r->now + sim_prng_below(&r->rng, 3000),
				.kind = SIM_EV_CRASH, .node = (uint8_t)i,
				.gen = r->node[i].gen };
	sim_queue_push(&r->q, ev);
}

/* Cuts a new leader off at once, both ways: it keeps the entry of its term
 * it just wrote (its no-op) while nobody else gets it. */
static void maybe_isolate(struct sim_run *r, uint32_t i)
{
	if (r->quiet || !sim_prng_chance(&r->rng, SIM_NEW_LEADER_ISOLATE_PPM))
		return;
	for (uint32_t j = 0; j < SIM_NODES_MAX; j++)
		r->net.link_up[i][j] = r->net.link_up[j][i] = i == j;
	r->st.faults[F_ISOLATE]++;
	sim_tr(r, TR_CUT, i, 0, F_ISOLATE, sim_net_cut_links(&r->net), 1);
}

/* Raft §5.4.2: a leader commits by counting replicas only entries of its
 * own term; earlier ones are committed with them (Figure 8). So whenever a
 * leader's commit index moves, it lands on an entry of the leader's term. */
static void check_leader_commit(struct sim_run *r, struct sim_node *n,
				rl_index commit, rl_term term)
{
	rl_term t;
	if (!sim_memlog_term(&n->written, commit, &t) || t == term)
		return;
	sim_check_fail(&r->chk, SIM_SAFETY, "leader commits own term only",
		       "leader %" PRIu64 " of term %" PRIu64 " moves its commit "
		       "index to %" PRIu64 ", an entry of term %" PRIu64
		       " (counting replicas of an earlier term, Figure 8)",
		       n->id, term, commit, t);
}

static void observe(struct sim_run *r, uint32_t i)
{
	struct sim_node *n = &r->node[i];
	struct rl_status s;
	rl_status(n->core, &s);
	if (s.role != n->role || s.hard_state.term != n->term_seen) {
		sim_tr(r, TR_ROLE, i, (uint32_t)s.leader, s.role,
		       s.hard_state.term, s.last_index);
		if (s.role == RL_LEADER) {
			r->st.elections++;
			maybe_crash_soon(r, i, SIM_NEW_LEADER_CRASH_PPM);
			maybe_isolate(r, i);
		}
	}
	if (s.hard_state.term < n->term_seen)
		sim_check_fail(&r->chk, SIM_SAFETY, "term monotonic",
			       "member %" PRIu64 " term %" PRIu64 " -> %" PRIu64,
			       n->id, n->term_seen, s.hard_state.term);
	n->role_before = n->role;
	n->term_before = n->term_seen;
	n->role = s.role;
	n->term_seen = s.hard_state.term;
	if (s.role == RL_LEADER)
		sim_check_leader(&r->chk, s.hard_state.term, n->id);
	if (s.hard_state.commit < n->commit_seen)
		sim_check_fail(&r->chk, SIM_SAFETY, "commit index monotonic",
			       "member %" PRIu64 " commit %" PRIu64 " -> %" PRIu64
			       " (at restart: the persisted commit)",
			       n->id, n->commit_seen, s.hard_state.commit);
	if (s.role == RL_LEADER && s.hard_state.commit > n->commit_seen) {
		bool first = n->first_commit_term != s.hard_state.term;
		n->first_commit_term = s.hard_state.term;
		maybe_crash_soon(r, i, first ? SIM_FIRST_COMMIT_CRASH_PPM
					     : SIM_COMMIT_CRASH_PPM);
		if (n->role_before == RL_LEADER && !r->p.outcomes_only &&
		    s.hard_state.term == n->term_before)
			check_leader_commit(r, n, s.hard_state.commit,
					    s.hard_state.term);
	}
	n->commit_seen = s.hard_state.commit;
	if (s.applied < n->applied_seen)
		sim_check_fail(&r->chk, SIM_SAFETY, "applied index monotonic",
			       "member %" PRIu64 " applied %" PRIu64 " -> %" PRIu64,
			       n->id, n->applied_seen, s.applied);
	n->applied_seen = s.applied;
	/* A leader's commit index covers only entries it persisted, so its
	 * written log holds them even while a write is in flight; record them
	 * at once (a leader that dies right after committing must not take
	 * its commits out of the checker's sight). */
	if (s.role == RL_LEADER)
		record_commits(r, n);
	if (n->pending)
		return;
	record_commits(r, n);
	if (s.role == RL_LEADER && n->leader_checked_term != s.hard_state.term) {
		n->leader_checked_term = s.hard_state.term;
		sim_check_leader_log(&r->chk, n->id, s.hard_state.term,
				     term_at_written, n);
	}
}

void sim_node_drive(struct sim_run *r, uint32_t i)
{
	struct sim_node *n = &r->node[i];
	while (n->up && !n->pending && !r->chk.failed &&
	       rl_has_ready(n->core)) {
		int rc = rl_ready(n->core, &n->rd);
		if (rc != RL_OK) {
			core_error(r, i, "rl_ready", rc);
			return;
		}
		handle_ready(r, i);
	}
	if (n->up && !r->chk.failed)
		observe(r, i);
}
