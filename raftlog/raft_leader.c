/*
 * raft_leader.c - the leader: per-follower progress (probe / replicate /
 * snapshot, as etcd's progress tracker), pipelined AppendEntries with flow
 * control, fast log repair, commitment by quorum of current-term entries,
 * heartbeats with ReadIndex confirmation, CheckQuorum, leadership transfer
 * and chunked snapshot sending.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

/* Accounting overhead per uncommitted proposal, so that empty proposals
 * are bounded too. */
#define RL_ENTRY_OVERHEAD_BYTES 32u
/* Most leader log entries scanned backwards per rejection for the conflict
 * term; past this the follower's own hint is used (always safe). */
#define RL_BACKTRACK_SCAN_MAX 1024u
/* Heartbeat replies without match progress before a replicating follower
 * is re-probed (an append or its reply was lost). */
#define RL_STALL_HEARTBEATS_MAX 2u
/* Heartbeat intervals without a snapshot chunk reply before the chunk is
 * sent again (it or its reply was lost). */
#define RL_SNAPSHOT_RETRY_HEARTBEATS 3u

/* ---- progress ---------------------------------------------------------- */

struct rl_progress *rl_pr_get(struct rl_node *n, rl_id id)
{
	for (size_t i = 0; i < n->prs_n; i++)
		if (n->prs[i].id == id)
			return &n->prs[i];
	return NULL;
}

static void infl_reset(struct rl_progress *pr)
{
	pr->infl_start = 0;
	pr->infl_n = 0;
	pr->infl_bytes_sum = 0;
}

static bool infl_full(const struct rl_node *n, const struct rl_progress *pr)
{
	return pr->infl_n >= n->cfg.inflight_msgs_max ||
	    pr->infl_bytes_sum >= n->cfg.inflight_bytes_max;
}

static void infl_add(struct rl_node *n, struct rl_progress *pr, rl_index last,
    uint64_t bytes)
{
	uint32_t cap = n->cfg.inflight_msgs_max;
	assert(pr->infl_n < cap);
	uint32_t at = (pr->infl_start + pr->infl_n) % cap;
	pr->infl_idx[at] = last;
	pr->infl_bytes[at] = bytes;
	pr->infl_n++;
	pr->infl_bytes_sum += bytes;
}

/* Free in-flight appends whose last index is <= idx (acknowledged). */
static void infl_free_to(struct rl_node *n, struct rl_progress *pr,
    rl_index idx)
{
	uint32_t cap = n->cfg.inflight_msgs_max;
	while (pr->infl_n > 0 && pr->infl_idx[pr->infl_start] <= idx) {
		pr->infl_bytes_sum -= pr->infl_bytes[pr->infl_start];
		pr->infl_start = (pr->infl_start + 1) % cap;
		pr->infl_n--;
	}
}

static void infl_free_first(struct rl_node *n, struct rl_progress *pr)
{
	if (pr->infl_n > 0)
		infl_free_to(n, pr, pr->infl_idx[pr->infl_start]);
}

static void pr_become_probe(struct rl_progress *pr, rl_index next)
{
	pr->state = RL_PR_PROBE;
	pr->probe_sent = false;
	pr->next = next;
	pr->stall_hbs = 0;
	infl_reset(pr);
}

static void pr_become_replicate(struct rl_progress *pr)
{
	pr->state = RL_PR_REPLICATE;
	pr->next = pr->match + 1;
	pr->stall_hbs = 0;
	infl_reset(pr);
}

static bool pr_paused(const struct rl_node *n, const struct rl_progress *pr)
{
	switch (pr->state) {
	case RL_PR_PROBE: return pr->probe_sent;
	case RL_PR_REPLICATE: return infl_full(n, pr);
	default: return true;
	}
}

/* Self's match is what storage reported persisted (thesis §10.2.1). */
static rl_index self_persisted(const struct rl_node *n)
{
	return n->log.u.n > 0 ? n->log.u_off - 1 : rl_log_last(&n->log);
}

static bool pr_add(struct rl_node *n, rl_id id)
{
	assert(n->prs_n < RL_MEMBERS_MAX);
	struct rl_progress *pr = &n->prs[n->prs_n];
	memset(pr, 0, sizeof(*pr));
	pr->infl_idx = calloc(n->cfg.inflight_msgs_max, sizeof(rl_index));
	pr->infl_bytes = calloc(n->cfg.inflight_msgs_max, sizeof(uint64_t));
	if (pr->infl_idx == NULL || pr->infl_bytes == NULL) {
		free(pr->infl_idx);
		free(pr->infl_bytes);
		return false; /* retried at the next sync; no replication yet */
	}
	pr->id = id;
	pr->recent_active = true;
	pr_become_probe(pr, rl_log_last(&n->log) + 1);
	if (id == n->id) {
		pr->match = self_persisted(n);
		pr->state = RL_PR_REPLICATE;
	}
	n->prs_n++;
	return true;
}

void rl_prs_free(struct rl_node *n)
{
	for (size_t i = 0; i < n->prs_n; i++) {
		free(n->prs[i].infl_idx);
		free(n->prs[i].infl_bytes);
	}
	n->prs_n = 0;
}

/* Make the progress set follow the configuration (members added or removed
 * by a configuration entry take effect at once, thesis §4.1). */
void rl_prs_sync(struct rl_node *n)
{
	if (n->role != RL_LEADER)
		return;
	for (size_t i = 0; i < n->prs_n;) {
		if (rl_is_member(&n->conf, n->prs[i].id) || n->prs[i].id == n->id) {
			i++;
			continue;
		}
		free(n->prs[i].infl_idx);
		free(n->prs[i].infl_bytes);
		n->prs[i] = n->prs[--n->prs_n];
	}
	if (rl_pr_get(n, n->id) == NULL)
		(void)pr_add(n, n->id);
	const struct rl_conf_state *c = &n->conf;
	for (uint32_t i = 0; i < c->voters_n + c->learners_n; i++) {
		rl_id id = i < c->voters_n ? c->voters[i] :
		    c->learners[i - c->voters_n];
		if (rl_pr_get(n, id) == NULL)
			(void)pr_add(n, id);
	}
	if (n->transferee != RL_NONE && !rl_is_voter(c, n->transferee))
		n->transferee = RL_NONE;
}

/* ---- sending ----------------------------------------------------------- */

static void send_chunk(struct rl_node *n, struct rl_progress *pr)
{
	struct rl_msg m = { 0 };
	m.type = RL_MSG_SNAPSHOT;
	m.to = pr->id;
	m.snap = pr->snap;
	m.snap_offset = pr->snap_offset;
	m.commit = n->log.committed;
	pr->snap_idle_ticks = 0;
	rl_send(n, &m);
}

/* The follower needs entries we compacted: InstallSnapshot (thesis §5.2). */
static bool send_snapshot(struct rl_node *n, struct rl_progress *pr)
{
	struct rl_snapshot_meta sm;
	if (n->log.st->snapshot_meta(n->log.st->ctx, &sm) != RL_OK ||
	    sm.index == 0)
		return false;
	pr->state = RL_PR_SNAPSHOT;
	infl_reset(pr);
	pr->snap = sm;
	pr->snap_offset = 0;
	send_chunk(n, pr);
	return true;
}

/* One AppendEntries to pr if flow control allows (paper §5.3). */
static bool send_append(struct rl_node *n, struct rl_progress *pr,
    bool allow_empty)
{
	if (pr->id == n->id || pr_paused(n, pr))
		return false;
	rl_index prev = pr->next - 1;
	rl_term pt;
	int rc = rl_log_term(&n->log, prev, &pt);
	if (rc == RL_ERR_COMPACTED)
		return send_snapshot(n, pr);
	if (rc != RL_OK)
		return false;
	struct rl_ent_vec ev = { 0 };
	rc = rl_log_entries(&n->log, pr->next, rl_log_last(&n->log) + 1,
	    n->cfg.msg_bytes_max, n->cfg.ready_entries_max, &ev);
	if (rc != RL_OK) {
		rl_ent_vec_free(&ev);
		return rc == RL_ERR_COMPACTED ? send_snapshot(n, pr) : false;
	}
	if (ev.n == 0 && !allow_empty) {
		rl_ent_vec_free(&ev);
		return false;
	}
	struct rl_msg m = { 0 };
	m.type = RL_MSG_APPEND;
	m.to = pr->id;
	m.index = prev;
	m.log_term = pt;
	m.commit = n->log.committed;
	m.entries_n = (uint32_t)ev.n;
	m.entries = ev.n > 0 ? ev.v : NULL;
	if (ev.n == 0)
		free(ev.v);
	if (pr->state == RL_PR_PROBE) {
		pr->probe_sent = true;
	} else if (ev.n > 0) {
		rl_index last = ev.v[ev.n - 1].index;
		pr->next = last + 1; /* optimistic: pipelining */
		infl_add(n, pr, last, ev.bytes);
	}
	rl_send(n, &m);
	return true;
}

/* Send as much as flow control allows (bounded by the in-flight window). */
static void send_all(struct rl_node *n, struct rl_progress *pr)
{
	for (uint32_t k = 0; k <= n->cfg.inflight_msgs_max; k++)
		if (!send_append(n, pr, false))
			return;
}

/* Appends to every follower are sent when the next ready is built, so that
 * all proposals made since the previous ready travel in one message per
 * follower (batching); flow control still applies per follower. */
void rl_bcast_append(struct rl_node *n)
{
	if (n->role == RL_LEADER)
		n->bcast_pending = true;
}

void rl_bcast_flush(struct rl_node *n)
{
	if (n->read_round_pending && n->role == RL_LEADER)
		rl_bcast_heartbeat(n);
	n->read_round_pending = false;
	if (!n->bcast_pending)
		return;
	n->bcast_pending = false;
	if (n->role != RL_LEADER)
		return;
	for (size_t i = 0; i < n->prs_n; i++)
		if (n->prs[i].id != n->id)
			(void)send_append(n, &n->prs[i], true);
}

void rl_bcast_heartbeat(struct rl_node *n)
{
	/* it carries the newest read seq: it is the round every read taken
	 * so far waits for */
	n->read_round_pending = false;
	for (size_t i = 0; i < n->prs_n; i++) {
		struct rl_progress *pr = &n->prs[i];
		if (pr->id == n->id)
			continue;
		struct rl_msg m = { 0 };
		m.type = RL_MSG_HEARTBEAT;
		m.to = pr->id;
		/* never tell a follower to commit beyond what it matches */
		m.commit = pr->match < n->log.committed ? pr->match :
		    n->log.committed;
		m.seq = n->read_seq;
		rl_send(n, &m);
	}
}

/* ---- commitment -------------------------------------------------------- */

static int cmp_desc(const void *a, const void *b)
{
	rl_index x = *(const rl_index *)a, y = *(const rl_index *)b;
	return x < y ? 1 : (x > y ? -1 : 0);
}

static void on_commit(struct rl_node *n)
{
	size_t k = 0;
	while (k < n->unc_n && n->unc[k].index <= n->log.committed) {
		n->unc_bytes -= n->unc[k].bytes;
		k++;
	}
	if (k > 0) {
		memmove(n->unc, n->unc + k, (n->unc_n - k) * sizeof(*n->unc));
		n->unc_n -= k;
	}
	rl_conf_on_commit(n);
	/* thesis §4.2.2: a leader removed from the configuration steps down
	 * once the entry that removed it is committed */
	if (!rl_is_voter(&n->conf, n->id) && n->hist_n == 0) {
		rl_become_follower(n, n->term, RL_NONE);
		return;
	}
	rl_reads_release(n);
}

/*
 * Advance the commit index to the highest index stored on a quorum of
 * voters, but only if that entry is of the current term: paper §5.4.2 /
 * Figure 8, thesis §3.6.2 (older entries commit indirectly).
 */
bool rl_maybe_commit(struct rl_node *n)
{
	rl_index m[RL_MEMBERS_MAX];
	size_t k = 0;
	for (uint32_t i = 0; i < n->conf.voters_n; i++) {
		struct rl_progress *pr = rl_pr_get(n, n->conf.voters[i]);
		m[k++] = pr != NULL ? pr->match : 0;
	}
	if (k == 0)
		return false;
	qsort(m, k, sizeof(m[0]), cmp_desc);
	rl_index mci = m[rl_quorum(n) - 1];
	if (mci <= n->log.committed)
		return false;
#if !(defined(RL_BUG_COMMIT_PREV_TERM) && RL_BUG_COMMIT_PREV_TERM)
	if (rl_log_term_or0(&n->log, mci) != n->term)
		return false;
#endif
	rl_log_commit_to(&n->log, mci);
	on_commit(n);
	return true;
}

void rl_leader_self_persisted(struct rl_node *n, rl_index i)
{
	struct rl_progress *pr = rl_pr_get(n, n->id);
	if (pr == NULL)
		return;
	rl_index last = rl_log_last(&n->log);
	if (i > last)
		i = last;
	if (i > pr->match)
		pr->match = i;
	if (rl_maybe_commit(n) && n->role == RL_LEADER)
		rl_bcast_append(n);
}

/* ---- becoming leader, proposing ---------------------------------------- */

static int append_one(struct rl_node *n, uint8_t type, const uint8_t *data,
    uint32_t len, rl_index *index_out)
{
	if (n->unc_n == n->unc_cap) {
		size_t cap = n->unc_cap ? n->unc_cap * 2 : 16;
		struct rl_uncommitted *v = realloc(n->unc, cap * sizeof(*v));
		if (v == NULL)
			return RL_ERR_NOMEM;
		n->unc = v;
		n->unc_cap = cap;
	}
	struct rl_entry e = { 0 };
	e.term = n->term;
	e.index = rl_log_last(&n->log) + 1;
	e.type = type;
	e.data_len = len;
	e.data = (uint8_t *)data;
	int rc = rl_append_entries(n, &e, 1);
	if (rc != RL_OK)
		return rc;
	uint64_t b = (uint64_t)len + RL_ENTRY_OVERHEAD_BYTES;
	n->unc[n->unc_n].index = e.index;
	n->unc[n->unc_n].bytes = b;
	n->unc_n++;
	n->unc_bytes += b;
	if (index_out != NULL)
		*index_out = e.index;
	if (n->role == RL_LEADER)
		rl_bcast_append(n);
	return RL_OK;
}

int rl_leader_append(struct rl_node *n, uint8_t type, const uint8_t *data,
    uint32_t data_len, rl_index *index_out)
{
	assert(n->role == RL_LEADER);
	/* thesis §3.10: no proposals while handing leadership over */
	if (n->transferee != RL_NONE)
		return RL_ERR_TRANSFERRING;
	uint64_t b = (uint64_t)data_len + RL_ENTRY_OVERHEAD_BYTES;
	if (n->unc_bytes > 0 && n->unc_bytes + b > n->cfg.uncommitted_bytes_max)
		return RL_ERR_PROPOSAL_DROPPED;
	return append_one(n, type, data, data_len, index_out);
}

void rl_become_leader(struct rl_node *n)
{
	assert(n->role == RL_CANDIDATE);
	n->role = RL_LEADER;
	n->lead = n->id;
	rl_prs_free(n);
	rl_prs_sync(n);
	/* thesis §6.4 / paper §8: an empty entry of the new term lets the
	 * leader learn which entries are committed */
	if (append_one(n, RL_ENTRY_NORMAL, NULL, 0, NULL) != RL_OK)
		rl_bcast_append(n); /* still assert leadership */
}

/* ---- responses ----------------------------------------------------------- */

/* Where to probe next after a rejection: skip the follower's whole
 * conflicting term (paper §5.3, thesis §3.5 optimization). */
static rl_index backtrack(const struct rl_node *n, const struct rl_msg *m)
{
	if (m->conflict_term == 0)
		return m->reject_hint;
	rl_index i = m->index;
	rl_index last = rl_log_last(&n->log);
	if (i > last)
		i = last;
	for (uint32_t k = 0; i > 0 && k < RL_BACKTRACK_SCAN_MAX; k++) {
		rl_term t;
		if (rl_log_term(&n->log, i, &t) != RL_OK)
			return m->reject_hint;
		if (t == m->conflict_term)
			return i + 1; /* we share that term: resume after it */
		if (t < m->conflict_term)
			break;
		i--;
	}
	return m->reject_hint;
}

static void maybe_timeout_now(struct rl_node *n, struct rl_progress *pr)
{
	if (pr->id != n->transferee || pr->match != rl_log_last(&n->log))
		return;
	struct rl_msg m = { 0 };
	m.type = RL_MSG_TIMEOUT_NOW;
	m.to = pr->id;
	rl_send(n, &m);
}

static void handle_append_reject(struct rl_node *n, struct rl_progress *pr,
    const struct rl_msg *m)
{
	if (pr->state == RL_PR_SNAPSHOT)
		return;
	/* we never sent a prev index past our log: bogus input, which would
	 * otherwise leave next where no append can be built (paper §5.3) */
	if (m->index > rl_log_last(&n->log))
		return;
	if (pr->state == RL_PR_REPLICATE && m->index <= pr->match)
		return; /* stale */
	if (pr->state == RL_PR_PROBE && m->index != pr->next - 1)
		return; /* stale */
	rl_index next = backtrack(n, m);
	if (next > m->index)
		next = m->index;
	if (next < pr->match + 1)
		next = pr->match + 1;
	pr_become_probe(pr, next);
	send_append(n, pr, true);
}

static void handle_append_resp(struct rl_node *n, struct rl_progress *pr,
    const struct rl_msg *m)
{
	if (m->reject) {
		handle_append_reject(n, pr, m);
		return;
	}
	if (m->index > rl_log_last(&n->log))
		return; /* bogus */
	bool updated = m->index > pr->match;
	if (updated) {
		pr->match = m->index;
		pr->stall_hbs = 0;
	}
	if (pr->next < m->index + 1)
		pr->next = m->index + 1;
	infl_free_to(n, pr, m->index);
	if (pr->state == RL_PR_PROBE ||
	    (pr->state == RL_PR_SNAPSHOT && pr->match >= pr->snap.index))
		pr_become_replicate(pr);
	if (updated && rl_maybe_commit(n)) {
		if (n->role != RL_LEADER)
			return;
		rl_bcast_append(n);
	}
	send_all(n, pr);
	maybe_timeout_now(n, pr);
}

static void handle_heartbeat_resp(struct rl_node *n, struct rl_progress *pr,
    const struct rl_msg *m)
{
	pr->probe_sent = false;
	if (m->seq > pr->read_ack_seq)
		pr->read_ack_seq = m->seq;
	if (pr->match < rl_log_last(&n->log) && pr->state == RL_PR_REPLICATE) {
		/* an append or its reply may be lost: free the window, and
		 * re-probe if nothing progresses */
		if (infl_full(n, pr))
			infl_free_first(n, pr);
		if (pr->infl_n == 0 || ++pr->stall_hbs > RL_STALL_HEARTBEATS_MAX)
			pr_become_probe(pr, pr->match + 1);
	}
	if (pr->match < rl_log_last(&n->log))
		send_append(n, pr, true);
	rl_reads_release(n);
}

static void handle_snapshot_resp(struct rl_node *n, struct rl_progress *pr,
    const struct rl_msg *m)
{
	if (pr->state != RL_PR_SNAPSHOT || m->snap.index != pr->snap.index ||
	    m->snap.term != pr->snap.term)
		return;
	pr->snap_idle_ticks = 0;
	if (m->snap_done) {
		if (pr->snap.index > pr->match)
			pr->match = pr->snap.index;
		pr_become_probe(pr, pr->match + 1);
		if (rl_maybe_commit(n) && n->role == RL_LEADER)
			rl_bcast_append(n);
		else
			send_append(n, pr, true);
		return;
	}
	if (m->reject || m->snap_offset > pr->snap_offset) {
		pr->snap_offset = m->snap_offset;
		send_chunk(n, pr);
	}
}

int rl_leader_step(struct rl_node *n, const struct rl_msg *m)
{
	struct rl_progress *pr = rl_pr_get(n, m->from);
	if (pr == NULL)
		return RL_OK; /* not a member (any more) */
	switch (m->type) {
	case RL_MSG_APPEND_RESP:
		pr->recent_active = true;
		handle_append_resp(n, pr, m);
		break;
	case RL_MSG_HEARTBEAT_RESP:
		pr->recent_active = true;
		handle_heartbeat_resp(n, pr, m);
		break;
	case RL_MSG_SNAPSHOT_RESP:
		pr->recent_active = true;
		handle_snapshot_resp(n, pr, m);
		break;
	case RL_MSG_READ_INDEX:
		(void)rl_leader_read(n, m->from, m->ctx, m->ctx_len);
		break;
	default:
		break;
	}
	return RL_OK;
}

/* ---- ticks --------------------------------------------------------------- */

/* thesis §6.2: step down if a quorum was not heard from in an election
 * timeout, so clients find the real leader and reads stay safe. */
static bool check_quorum(struct rl_node *n)
{
	size_t active = 0;
	for (size_t i = 0; i < n->prs_n; i++) {
		struct rl_progress *pr = &n->prs[i];
		if (rl_is_voter(&n->conf, pr->id) &&
		    (pr->id == n->id || pr->recent_active))
			active++;
		if (pr->id != n->id)
			pr->recent_active = false;
	}
	return active >= rl_quorum(n);
}

static void snapshot_retry(struct rl_node *n)
{
	for (size_t i = 0; i < n->prs_n; i++) {
		struct rl_progress *pr = &n->prs[i];
		if (pr->state != RL_PR_SNAPSHOT)
			continue;
		if (++pr->snap_idle_ticks <=
		    RL_SNAPSHOT_RETRY_HEARTBEATS * n->cfg.heartbeat_ticks)
			continue;
		struct rl_snapshot_meta sm;
		if (n->log.st->snapshot_meta(n->log.st->ctx, &sm) == RL_OK &&
		    sm.index != pr->snap.index) {
			pr->snap = sm; /* a newer snapshot replaced it */
			pr->snap_offset = 0;
		}
		send_chunk(n, pr);
	}
}

void rl_leader_tick(struct rl_node *n)
{
	n->election_elapsed++;
	n->heartbeat_elapsed++;
	if (n->election_elapsed >= n->cfg.election_ticks) {
		n->election_elapsed = 0;
		if (n->cfg.check_quorum && !check_quorum(n)) {
			rl_become_follower(n, n->term, RL_NONE);
			return;
		}
		n->transferee = RL_NONE; /* thesis §3.10: abort the transfer */
	}
	snapshot_retry(n);
	if (n->heartbeat_elapsed >= n->cfg.heartbeat_ticks) {
		n->heartbeat_elapsed = 0;
		rl_bcast_heartbeat(n);
	}
}

/* ---- ReadIndex (thesis §6.4) ---------------------------------------------- */

int rl_leader_read(struct rl_node *n, rl_id from, const uint8_t *ctx,
    uint32_t ctx_len)
{
	if (n->reads_n >= RL_READS_PENDING_MAX)
		return RL_ERR_PROPOSAL_DROPPED;
	if (n->reads_n == n->reads_cap) {
		size_t cap = n->reads_cap ? n->reads_cap * 2 : 16;
		struct rl_pending_read *v = realloc(n->reads, cap * sizeof(*v));
		if (v == NULL)
			return RL_ERR_NOMEM;
		n->reads = v;
		n->reads_cap = cap;
	}
	struct rl_pending_read *r = &n->reads[n->reads_n++];
	memset(r, 0, sizeof(*r));
	r->seq = ++n->read_seq;
	r->from = from;
	r->ctx_len = ctx_len;
	if (ctx_len > 0)
		memcpy(r->ctx, ctx, ctx_len);
	/* confirm leadership with a heartbeat round carrying this seq (or a
	 * later one): sent at the next ready, shared by every read until then */
	if (rl_quorum(n) > 1)
		n->read_round_pending = true;
	rl_reads_release(n);
	return RL_OK;
}

static size_t read_acks(struct rl_node *n, uint64_t seq)
{
	size_t acks = 0;
	for (uint32_t i = 0; i < n->conf.voters_n; i++) {
		rl_id id = n->conf.voters[i];
		struct rl_progress *pr = rl_pr_get(n, id);
		if (id == n->id || (pr != NULL && pr->read_ack_seq >= seq))
			acks++;
	}
	return acks;
}

/* Answer reads whose heartbeat round reached a quorum, once the leader has
 * committed an entry of its own term (so its commit index is current). */
void rl_reads_release(struct rl_node *n)
{
	if (n->role != RL_LEADER || n->reads_n == 0 || !rl_committed_in_term(n))
		return;
	size_t k = 0;
	for (; k < n->reads_n; k++) {
		struct rl_pending_read *r = &n->reads[k];
		if (read_acks(n, r->seq) < rl_quorum(n))
			break;
		if (r->from == n->id) {
			rl_add_read_state(n, n->log.committed, r->ctx, r->ctx_len);
			continue;
		}
		struct rl_msg m = { 0 };
		m.type = RL_MSG_READ_INDEX_RESP;
		m.to = r->from;
		m.index = n->log.committed;
		m.ctx_len = r->ctx_len;
		memcpy(m.ctx, r->ctx, r->ctx_len);
		rl_send(n, &m);
	}
	memmove(n->reads, n->reads + k, (n->reads_n - k) * sizeof(*n->reads));
	n->reads_n -= k;
}
