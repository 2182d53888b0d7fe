/*
 * raft_ready.c - the output side of the core (ready / advance: what to
 * persist, send, apply) and membership bookkeeping (single-server changes
 * that take effect when appended and revert when truncated, thesis §4.1).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

/* Batch size when scanning the stored log for configuration entries at
 * restart. */
#define RL_RESTORE_BATCH_BYTES_MAX (4u << 20)
#define RL_RESTORE_BATCH_ENTRIES_MAX 1024u

/* ---- membership encoding ----------------------------------------------- */

void rl_conf_change_encode(const struct rl_conf_change *cc,
    uint8_t buf[RL_CONF_CHANGE_BYTES])
{
	buf[0] = cc->type;
	for (int i = 0; i < 8; i++)
		buf[1 + i] = (uint8_t)(cc->node >> (8 * i));
}

int rl_conf_change_decode(const uint8_t *data, uint32_t data_len,
    struct rl_conf_change *out)
{
	if (data == NULL || data_len != RL_CONF_CHANGE_BYTES)
		return RL_ERR_INVAL;
	out->type = data[0];
	out->node = 0;
	for (int i = 0; i < 8; i++)
		out->node |= (rl_id)data[1 + i] << (8 * i);
	if (out->node == RL_NONE || out->type < RL_CONF_ADD_VOTER ||
	    out->type > RL_CONF_REMOVE)
		return RL_ERR_INVAL;
	return RL_OK;
}

static bool id_remove(rl_id *v, uint32_t *n, rl_id id)
{
	for (uint32_t i = 0; i < *n; i++) {
		if (v[i] == id) {
			v[i] = v[--*n];
			return true;
		}
	}
	return false;
}

int rl_conf_apply(struct rl_conf_state *c, const struct rl_conf_change *cc)
{
	if (cc->node == RL_NONE)
		return RL_ERR_INVAL;
	bool voter = rl_is_voter(c, cc->node);
	bool member = rl_is_member(c, cc->node);
	switch (cc->type) {
	case RL_CONF_ADD_VOTER:
		if (voter)
			return RL_ERR_INVAL;
		if (!member && c->voters_n + c->learners_n >= RL_MEMBERS_MAX)
			return RL_ERR_TOO_LARGE;
		(void)id_remove(c->learners, &c->learners_n, cc->node);
		c->voters[c->voters_n++] = cc->node;
		return RL_OK;
	case RL_CONF_ADD_LEARNER:
		if (member)
			return RL_ERR_INVAL; /* demotion is not supported */
		if (c->voters_n + c->learners_n >= RL_MEMBERS_MAX)
			return RL_ERR_TOO_LARGE;
		c->learners[c->learners_n++] = cc->node;
		return RL_OK;
	case RL_CONF_REMOVE:
		if (!member || (voter && c->voters_n == 1))
			return RL_ERR_INVAL;
		if (!id_remove(c->voters, &c->voters_n, cc->node))
			(void)id_remove(c->learners, &c->learners_n, cc->node);
		return RL_OK;
	default:
		return RL_ERR_INVAL;
	}
}

/* ---- membership history -------------------------------------------------- */

void rl_conf_reset(struct rl_node *n, const struct rl_conf_state *c)
{
	n->base_conf = *c;
	n->conf = *c;
	n->hist_n = 0;
	rl_prs_sync(n);
}

int rl_conf_reserve(struct rl_node *n, const struct rl_entry *e, size_t k)
{
	size_t confs = 0;
	for (size_t i = 0; i < k; i++)
		confs += e[i].type == RL_ENTRY_CONF_CHANGE;
	if (n->hist_n + confs <= n->hist_cap)
		return RL_OK;
	size_t cap = n->hist_cap ? n->hist_cap : 4;
	while (cap < n->hist_n + confs)
		cap *= 2;
	struct rl_conf_hist *v = realloc(n->hist, cap * sizeof(*v));
	if (v == NULL)
		return RL_ERR_NOMEM;
	n->hist = v;
	n->hist_cap = cap;
	return RL_OK;
}

/* Configuration entries apply when appended (thesis §4.1); entries from
 * e[0].index on replaced what was there, so changes they held revert.
 * Capacity was reserved by rl_conf_reserve. Invalid changes are ignored the
 * same way on every member. */
int rl_conf_on_append(struct rl_node *n, const struct rl_entry *e, size_t k)
{
	if (k == 0)
		return RL_OK;
	while (n->hist_n > 0 && n->hist[n->hist_n - 1].index >= e[0].index)
		n->hist_n--;
	n->conf = n->hist_n > 0 ? n->hist[n->hist_n - 1].conf : n->base_conf;
	for (size_t i = 0; i < k; i++) {
		struct rl_conf_change cc;
		if (e[i].type != RL_ENTRY_CONF_CHANGE ||
		    rl_conf_change_decode(e[i].data, e[i].data_len, &cc) != RL_OK)
			continue;
		struct rl_conf_state c = n->conf;
		if (rl_conf_apply(&c, &cc) != RL_OK)
			continue;
		assert(n->hist_n < n->hist_cap);
		n->hist[n->hist_n].index = e[i].index;
		n->hist[n->hist_n].conf = c;
		n->hist_n++;
		n->conf = c;
	}
	rl_prs_sync(n);
	return RL_OK;
}

/* Committed configurations can never revert: fold them into the base. */
void rl_conf_on_commit(struct rl_node *n)
{
	size_t k = 0;
	while (k < n->hist_n && n->hist[k].index <= n->log.committed) {
		n->base_conf = n->hist[k].conf;
		k++;
	}
	if (k > 0) {
		memmove(n->hist, n->hist + k, (n->hist_n - k) * sizeof(*n->hist));
		n->hist_n -= k;
	}
}

/* Rebuild the membership from the configuration entries stored after the
 * snapshot (restart). */
int rl_conf_restore(struct rl_node *n)
{
	rl_index lo = rl_log_first(&n->log);
	rl_index hi = rl_log_last(&n->log) + 1;
	while (lo < hi) {
		struct rl_ent_vec ev = { 0 };
		int rc = rl_log_entries(&n->log, lo, hi,
		    RL_RESTORE_BATCH_BYTES_MAX,
		    RL_RESTORE_BATCH_ENTRIES_MAX, &ev);
		if (rc == RL_OK && ev.n == 0)
			rc = RL_ERR_STORAGE;
		if (rc == RL_OK)
			rc = rl_conf_reserve(n, ev.v, ev.n);
		if (rc != RL_OK) {
			rl_ent_vec_free(&ev);
			return rc;
		}
		(void)rl_conf_on_append(n, ev.v, ev.n);
		lo += ev.n;
		rl_ent_vec_free(&ev);
	}
	rl_conf_on_commit(n);
	return RL_OK;
}

/* ---- ready / advance ------------------------------------------------------ */

static rl_index apply_lo(const struct rl_node *n)
{
	rl_index lo = n->log.applied;
	if (n->log.has_snap && n->log.snap.index > lo)
		lo = n->log.snap.index;
	return lo + 1;
}

static struct rl_hard_state cur_hs(const struct rl_node *n, rl_index durable)
{
	struct rl_hard_state hs = { n->term, n->vote, n->log.committed };
	/* never persist a commit index beyond the entries persisted with it */
	if (hs.commit > durable)
		hs.commit = durable;
#if defined(RL_BUG_VOTE_BEFORE_PERSIST) && RL_BUG_VOTE_BEFORE_PERSIST
	if (hs.vote != n->id)
		hs.vote = RL_NONE; /* injected bug: the granted vote is lost */
#endif
	return hs;
}

static bool hs_equal(const struct rl_hard_state *a,
    const struct rl_hard_state *b)
{
	return a->term == b->term && a->vote == b->vote && a->commit == b->commit;
}

bool rl_has_ready(const struct rl_node *n)
{
	if (n->rd_pending)
		return false;
	if (n->out_now.n > 0 || n->out_later.n > 0 || n->rs_n > 0 ||
	    ((n->bcast_pending || n->read_round_pending) &&
	    n->role == RL_LEADER) ||
	    n->log.u.n > 0 || (n->log.has_snap && !n->snap_reported))
		return true;
	struct rl_hard_state hs = cur_hs(n, rl_log_last(&n->log));
	if (!hs_equal(&hs, &n->prev_hs))
		return true;
	return n->log.committed >= apply_lo(n);
}

void rl_ready_free(struct rl_ready *rd)
{
	rl_entries_free(rd->entries, rd->entries_n);
	rl_entries_free(rd->committed, rd->committed_n);
	struct rl_msg_vec a = { rd->msgs_now, rd->msgs_now_n, rd->msgs_now_n };
	struct rl_msg_vec b = { rd->msgs, rd->msgs_n, rd->msgs_n };
	rl_msg_vec_free(&a);
	rl_msg_vec_free(&b);
	free(rd->read_states);
	memset(rd, 0, sizeof(*rd));
}

static int ready_entries(struct rl_node *n, struct rl_ready *rd)
{
	struct rl_ent_vec ev = { 0 };
	size_t k = n->log.u.n;
	if (k > n->cfg.ready_entries_max)
		k = n->cfg.ready_entries_max;
	for (size_t i = 0; i < k; i++) {
		int rc = rl_ent_vec_push_copy(&ev, &n->log.u.v[i]);
		if (rc != RL_OK) {
			rl_ent_vec_free(&ev);
			return rc;
		}
	}
	rd->entries = ev.v;
	rd->entries_n = ev.n;
	/* entries up to here are durable once this ready is handled */
	rl_index durable = n->log.u_off - 1 + k;
	rl_index hi = n->log.committed < durable ? n->log.committed : durable;
	rl_index lo = apply_lo(n);
	if (hi < lo)
		return RL_OK;
	struct rl_ent_vec cv = { 0 };
	int rc = rl_log_entries(&n->log, lo, hi + 1, UINT64_MAX,
	    n->cfg.ready_entries_max, &cv);
	if (rc != RL_OK) {
		rl_ent_vec_free(&cv);
		return rc;
	}
	rd->committed = cv.v;
	rd->committed_n = cv.n;
	return RL_OK;
}

/* Does m promise that entries past durable are on stable storage? */
static bool promises_past(const struct rl_msg *m, rl_index durable)
{
	if (m->type == RL_MSG_APPEND_RESP)
		return !m->reject && m->index > durable;
	if (m->type == RL_MSG_SNAPSHOT_RESP)
		return m->snap_done && m->snap.index > durable;
	return false;
}

/*
 * Hand out the messages that wait for persistence. When the ready carries
 * only the first ready_entries_max unstable entries, an acknowledgement may
 * cover entries it does not persist (Figure 2: respond only after updating
 * stable storage): such messages stay queued for the ready that persists
 * them; the others (votes, whose hard state is in this ready, heartbeat
 * replies, rejections, forwarded reads) go now. If memory is short every
 * message stays queued, which is only slower.
 */
static void ready_msgs(struct rl_node *n, struct rl_ready *rd,
    rl_index durable)
{
	struct rl_msg_vec *q = &n->out_later;
	size_t keep = 0;
	/* uncapped, every ack is covered (one naming entries a truncation
	 * removed since is stale, as it would be in flight); holding it would
	 * report a ready forever */
	for (size_t i = 0; rd->entries_n < n->log.u.n && i < q->n; i++)
		keep += promises_past(&q->v[i], durable);
	if (keep == 0) {
		rd->msgs = q->v;
		rd->msgs_n = q->n;
		memset(q, 0, sizeof(*q));
		return;
	}
	if (keep == q->n)
		return;
	struct rl_msg *out = malloc((q->n - keep) * sizeof(*out));
	if (out == NULL)
		return;
	size_t k = 0, w = 0;
	for (size_t i = 0; i < q->n; i++) {
		if (promises_past(&q->v[i], durable))
			q->v[w++] = q->v[i];
		else
			out[k++] = q->v[i];
	}
	q->n = w;
	rd->msgs = out;
	rd->msgs_n = k;
}

int rl_ready(struct rl_node *n, struct rl_ready *rd)
{
	if (n->rd_pending)
		return RL_ERR_READY_PENDING; /* rd left as it is */
	memset(rd, 0, sizeof(*rd));
	rl_bcast_flush(n);
	int rc = ready_entries(n, rd);
	if (rc != RL_OK) {
		rl_ready_free(rd);
		return rc;
	}
	rl_index durable = n->log.u_off - 1 + rd->entries_n;
	struct rl_hard_state hs = cur_hs(n, durable);
	/* Figure 2: the persisted term and commit index never go back */
	assert(hs.term >= n->prev_hs.term);
	assert(hs.commit >= n->prev_hs.commit);
	rd->has_hard_state = !hs_equal(&hs, &n->prev_hs);
	rd->hard_state = hs;
	if (n->log.has_snap && !n->snap_reported) {
		rd->has_snapshot = true;
		rd->snapshot = n->log.snap;
		n->snap_reported = true;
	}
	rd->must_sync = rd->entries_n > 0 || rd->has_snapshot ||
	    hs.term != n->prev_hs.term || hs.vote != n->prev_hs.vote;
	rd->msgs_now = n->out_now.v;
	rd->msgs_now_n = n->out_now.n;
	memset(&n->out_now, 0, sizeof(n->out_now));
	ready_msgs(n, rd, durable);
	rd->read_states = n->rs;
	rd->read_states_n = n->rs_n;
	n->rs = NULL;
	n->rs_n = n->rs_cap = 0;
	rd->role = n->role;
	rd->leader = n->lead;
	n->rd_out = *rd;
	n->rd_pending = true;
	return RL_OK;
}

void rl_advance(struct rl_node *n, struct rl_ready *rd)
{
	if (!n->rd_pending)
		return;
	struct rl_ready *o = &n->rd_out;
	if (o->has_snapshot && n->log.has_snap &&
	    n->log.snap.index == o->snapshot.index &&
	    n->log.snap.term == o->snapshot.term) {
		n->log.has_snap = false; /* installed: storage now starts there */
		if (o->snapshot.index > n->log.applied)
			n->log.applied = o->snapshot.index;
	}
	if (o->has_hard_state) {
		assert(o->hard_state.term >= n->prev_hs.term);
		n->prev_hs = o->hard_state;
	}
	if (o->committed_n > 0) {
		rl_index a = o->committed[o->committed_n - 1].index;
		assert(a <= n->log.committed); /* applied never passes commit */
		if (a > n->log.applied)
			n->log.applied = a;
	}
	if (o->entries_n > 0) {
		const struct rl_entry *last = &o->entries[o->entries_n - 1];
		rl_log_stable_to(&n->log, last->index, last->term);
		/* the leader never truncates its own log: all before u_off is
		 * durable now (thesis §10.2.1: only now does it count itself) */
		if (n->role == RL_LEADER)
			rl_leader_self_persisted(n, n->log.u_off - 1);
	}
	rl_ready_free(o);
	n->rd_pending = false;
	if (rd != NULL)
		memset(rd, 0, sizeof(*rd));
}
