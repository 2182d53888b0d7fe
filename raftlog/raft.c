/*
 * raft.c - the Raft node: creation/restore, the step entry point with the
 * term rules, elections (PreVote, CheckQuorum lease) and the follower side of
 * replication and snapshots. Leader logic is in raft_leader.c, the log in
 * raft_log.c, ready/advance and membership in raft_ready.c.
 *
 * Rules cite Ongaro's thesis ("thesis §x") or the Raft paper ("paper §x",
 * "Figure 2").
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

const char *rl_strerror(int err)
{
	switch (err) {
	case RL_OK: return "ok";
	case RL_ERR_NOT_LEADER: return "not leader";
	case RL_ERR_PROPOSAL_DROPPED: return "proposal dropped: busy";
	case RL_ERR_TRANSFERRING: return "leadership transfer in progress";
	case RL_ERR_CONF_PENDING: return "membership change pending";
	case RL_ERR_COMPACTED: return "log compacted";
	case RL_ERR_UNAVAILABLE: return "log entry unavailable";
	case RL_ERR_INVAL: return "invalid argument";
	case RL_ERR_NOMEM: return "out of memory";
	case RL_ERR_TOO_LARGE: return "too large";
	case RL_ERR_READY_PENDING: return "previous ready not advanced";
	case RL_ERR_STORAGE: return "storage error";
	case RL_ERR_NOT_MEMBER: return "not a member";
	default: return "unknown error";
	}
}

/* ---- small helpers ----------------------------------------------------- */

/* splitmix64: the node's own PRNG, seeded from the config (no global
 * randomness, so a simulation replays from its seed). */
static uint64_t rng_next(struct rl_node *n)
{
	uint64_t z = (n->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Randomized election timeout in [e, 2e) (paper §5.2 / thesis §3.4). */
static void reset_timeout(struct rl_node *n)
{
	uint32_t e = n->cfg.election_ticks;
	n->election_elapsed = 0;
	n->heartbeat_elapsed = 0;
	n->rand_timeout = e + (uint32_t)(rng_next(n) % e);
}

bool rl_is_voter(const struct rl_conf_state *c, rl_id id)
{
	for (uint32_t i = 0; i < c->voters_n; i++)
		if (c->voters[i] == id)
			return true;
	return false;
}

bool rl_is_member(const struct rl_conf_state *c, rl_id id)
{
	if (rl_is_voter(c, id))
		return true;
	for (uint32_t i = 0; i < c->learners_n; i++)
		if (c->learners[i] == id)
			return true;
	return false;
}

size_t rl_quorum(const struct rl_node *n)
{
	return n->conf.voters_n / 2 + 1;
}

static bool out_push(struct rl_msg_vec *mv, const struct rl_msg *m)
{
	if (mv->n == mv->cap) {
		size_t cap = mv->cap ? mv->cap * 2 : 8;
		struct rl_msg *v = realloc(mv->v, cap * sizeof(*v));
		if (v == NULL)
			return false;
		mv->v = v;
		mv->cap = cap;
	}
	mv->v[mv->n++] = *m;
	return true;
}

/*
 * Queue m for the next ready; m's entries (if any) become the node's. The
 * leader's replication traffic may go out before the ready is persisted
 * (thesis §10.2.1); everything else waits for persistence (Figure 2: respond
 * only after updating stable storage). If memory runs out the message is
 * dropped, which Raft tolerates like any lost message.
 */
void rl_send(struct rl_node *n, struct rl_msg *m)
{
	m->from = n->id;
	if (m->type != RL_MSG_PREVOTE && m->type != RL_MSG_PREVOTE_RESP &&
	    m->type != RL_MSG_VOTE_RESP)
		m->term = n->term;
	bool now = false;
	if (n->role == RL_LEADER) {
		now = m->type == RL_MSG_APPEND || m->type == RL_MSG_HEARTBEAT ||
		    m->type == RL_MSG_SNAPSHOT || m->type == RL_MSG_TIMEOUT_NOW ||
		    m->type == RL_MSG_READ_INDEX_RESP;
	}
#if defined(RL_BUG_VOTE_BEFORE_PERSIST) && RL_BUG_VOTE_BEFORE_PERSIST
	if (m->type == RL_MSG_VOTE_RESP)
		now = true;
#endif
	if (!out_push(now ? &n->out_now : &n->out_later, m))
		rl_msg_free_entries(m);
}

void rl_add_read_state(struct rl_node *n, rl_index index, const uint8_t *ctx,
    uint32_t ctx_len)
{
	if (n->rs_n == n->rs_cap) {
		size_t cap = n->rs_cap ? n->rs_cap * 2 : 8;
		struct rl_read_state *v = realloc(n->rs, cap * sizeof(*v));
		if (v == NULL)
			return; /* dropped: the client retries after its timeout */
		n->rs = v;
		n->rs_cap = cap;
	}
	struct rl_read_state *r = &n->rs[n->rs_n++];
	memset(r, 0, sizeof(*r));
	r->index = index;
	r->ctx_len = ctx_len;
	if (ctx_len > 0)
		memcpy(r->ctx, ctx, ctx_len);
}

/* ---- role changes ------------------------------------------------------ */

static void reset_role(struct rl_node *n)
{
	rl_prs_free(n);
	n->unc_n = 0;
	n->unc_bytes = 0;
	n->transferee = RL_NONE;
	n->bcast_pending = false;
	n->read_round_pending = false;
	n->reads_n = 0; /* a deposed leader never answers its reads (§6.4) */
	n->votes_n = 0;
	reset_timeout(n);
}

void rl_become_follower(struct rl_node *n, rl_term term, rl_id lead)
{
	assert(term >= n->term); /* terms never decrease (Figure 2) */
	if (term > n->term) {
		n->term = term;
		n->vote = RL_NONE;
	}
	n->role = RL_FOLLOWER;
	n->lead = lead;
	reset_role(n);
}

static void record_vote(struct rl_node *n, rl_id from, bool granted)
{
	for (size_t i = 0; i < n->votes_n; i++)
		if (n->votes_id[i] == from)
			return; /* first answer counts */
	if (n->votes_n == RL_MEMBERS_MAX)
		return;
	n->votes_id[n->votes_n] = from;
	n->votes_granted[n->votes_n] = granted;
	n->votes_n++;
}

/* Count votes among current voters: returns +1 won, -1 lost, 0 pending. */
static int tally(const struct rl_node *n)
{
	size_t yes = 0, no = 0;
	for (size_t i = 0; i < n->votes_n; i++) {
		if (!rl_is_voter(&n->conf, n->votes_id[i]))
			continue;
		if (n->votes_granted[i])
			yes++;
		else
			no++;
	}
	if (yes >= rl_quorum(n))
		return 1;
	if (no >= rl_quorum(n))
		return -1;
	return 0;
}

/* Start a (pre-)election. PreVote (thesis §9.6) asks for votes for term+1
 * without changing our term so a partitioned member cannot inflate terms. */
static void campaign(struct rl_node *n, bool pre, bool transfer)
{
	if (!rl_is_voter(&n->conf, n->id) || n->log.has_snap)
		return;
	rl_term t;
	if (pre) {
		n->role = RL_PRE_CANDIDATE;
		n->lead = RL_NONE;
		reset_role(n);
		t = n->term + 1;
	} else {
		rl_become_follower(n, n->term + 1, RL_NONE);
		n->role = RL_CANDIDATE;
		n->vote = n->id; /* Figure 2: vote for self */
		t = n->term;
	}
	record_vote(n, n->id, true);
	if (tally(n) == 1) {
		if (pre)
			campaign(n, false, transfer);
		else
			rl_become_leader(n);
		return;
	}
	for (uint32_t i = 0; i < n->conf.voters_n; i++) {
		rl_id to = n->conf.voters[i];
		if (to == n->id)
			continue;
		struct rl_msg m = { 0 };
		m.type = pre ? RL_MSG_PREVOTE : RL_MSG_VOTE;
		m.to = to;
		m.term = t;
		m.index = rl_log_last(&n->log);
		m.log_term = rl_log_last_term(&n->log);
		m.transfer = transfer;
		rl_send(n, &m);
	}
}

void rl_campaign(struct rl_node *n)
{
	if (n->role == RL_LEADER)
		return;
	campaign(n, n->cfg.pre_vote, false);
}

void rl_tick(struct rl_node *n)
{
	if (n->role == RL_LEADER) {
		rl_leader_tick(n);
		return;
	}
	n->election_elapsed++;
	if (n->election_elapsed >= n->rand_timeout &&
	    rl_is_voter(&n->conf, n->id)) {
		n->election_elapsed = 0;
		campaign(n, n->cfg.pre_vote, false);
	}
}

/* ---- votes (paper §5.2, §5.4.1; thesis §9.6) --------------------------- */

static void handle_vote(struct rl_node *n, const struct rl_msg *m)
{
	bool pre = m->type == RL_MSG_PREVOTE;
	bool can = n->vote == m->from ||
	    (n->vote == RL_NONE && n->lead == RL_NONE) ||
	    (pre && m->term > n->term);
	struct rl_msg r = { 0 };
	r.type = pre ? RL_MSG_PREVOTE_RESP : RL_MSG_VOTE_RESP;
	r.to = m->from;
	if (can && rl_log_up_to_date(&n->log, m->index, m->log_term)) {
		r.term = m->term;
		if (!pre) {
			n->election_elapsed = 0;
			n->vote = m->from;
		}
	} else {
		r.term = n->term;
		r.reject = true;
	}
	rl_send(n, &r);
}

static void handle_vote_resp(struct rl_node *n, const struct rl_msg *m)
{
	bool pre = m->type == RL_MSG_PREVOTE_RESP;
	if ((pre && n->role != RL_PRE_CANDIDATE) ||
	    (!pre && n->role != RL_CANDIDATE))
		return;
	/* a grant from an earlier pre-vote round carries the wrong term */
	if (pre && !m->reject && m->term != n->term + 1)
		return;
	record_vote(n, m->from, !m->reject);
	int res = tally(n);
	if (res == 1) {
		if (pre)
			campaign(n, false, false);
		else
			rl_become_leader(n);
	} else if (res == -1) {
		rl_become_follower(n, n->term, RL_NONE);
	}
}

/* ---- follower side ----------------------------------------------------- */

/* Conflict hint for fast backtracking (paper §5.3 "optimization", thesis
 * §3.5): the follower's term at the rejected index and the first index it
 * holds with that term, so the leader can skip a whole term per round trip. */
static void reject_hint(struct rl_node *n, rl_index idx, struct rl_msg *r)
{
	rl_index last = rl_log_last(&n->log);
	if (idx > last) {
		r->reject_hint = last + 1;
		r->conflict_term = 0;
		return;
	}
	rl_term ct = rl_log_term_or0(&n->log, idx);
	rl_index h = idx;
	rl_index floor = n->log.committed + 1;
	while (h > floor && rl_log_term_or0(&n->log, h - 1) == ct)
		h--;
	r->reject_hint = h;
	r->conflict_term = ct;
}

int rl_append_entries(struct rl_node *n, const struct rl_entry *e,
    size_t k)
{
	int rc = rl_conf_reserve(n, e, k);
	if (rc != RL_OK)
		return rc;
	rc = rl_log_append(&n->log, e, k);
	if (rc != RL_OK)
		return rc;
	return rl_conf_on_append(n, e, k);
}

static int check_entries(const struct rl_msg *m)
{
	for (uint32_t k = 0; k < m->entries_n; k++) {
		const struct rl_entry *e = &m->entries[k];
		if (e->index != m->index + 1 + k || e->data_len > RL_ENTRY_DATA_MAX ||
		    e->term > m->term || (e->data_len > 0 && e->data == NULL))
			return RL_ERR_INVAL;
		if (e->term < (k ? m->entries[k - 1].term : m->log_term))
			return RL_ERR_INVAL;
	}
	return RL_OK;
}

/* AppendEntries receiver, Figure 2 / paper §5.3. */
static int handle_append(struct rl_node *n, const struct rl_msg *m)
{
	int rc = check_entries(m);
	if (rc != RL_OK)
		return rc;
	struct rl_msg r = { 0 };
	r.type = RL_MSG_APPEND_RESP;
	r.to = m->from;
	if (m->index < n->log.committed) {
		r.index = n->log.committed; /* already have up to commit */
		rl_send(n, &r);
		return RL_OK;
	}
	if (!rl_log_match(&n->log, m->index, m->log_term)) {
		r.reject = true;
		r.index = m->index;
		reject_hint(n, m->index, &r);
		rl_send(n, &r);
		return RL_OK;
	}
	rl_index last_new = m->index + m->entries_n;
	rl_index c = rl_log_find_conflict(&n->log, m->entries, m->entries_n);
#if defined(RL_BUG_TRUNCATE_ON_STALE_APPEND) && RL_BUG_TRUNCATE_ON_STALE_APPEND
	if (c == 0 && m->entries_n > 0 && m->entries[0].index > n->log.committed)
		c = m->entries[0].index;
#endif
	if (c != 0) {
		/* a committed entry can never conflict (Leader Completeness,
		 * paper §5.4); a message claiming so is bad input */
		if (c <= n->log.committed)
			return RL_ERR_INVAL;
		rc = rl_append_entries(n, m->entries + (c - m->index - 1),
		    (size_t)(last_new - c + 1));
		if (rc != RL_OK)
			return rc;
	}
	rl_index commit = m->commit < last_new ? m->commit : last_new;
	rl_log_commit_to(&n->log, commit);
	rl_conf_on_commit(n);
	r.index = last_new;
	rl_send(n, &r);
	return RL_OK;
}

static void handle_heartbeat(struct rl_node *n, const struct rl_msg *m)
{
	rl_index last = rl_log_last(&n->log);
	rl_log_commit_to(&n->log, m->commit < last ? m->commit : last);
	rl_conf_on_commit(n);
	struct rl_msg r = { 0 };
	r.type = RL_MSG_HEARTBEAT_RESP;
	r.to = m->from;
	r.seq = m->seq;
	rl_send(n, &r);
}

static bool conf_valid(const struct rl_conf_state *c)
{
	return c->voters_n >= 1 && c->voters_n <= RL_MEMBERS_MAX &&
	    c->learners_n <= RL_MEMBERS_MAX &&
	    c->voters_n + c->learners_n <= RL_MEMBERS_MAX;
}

/* Accept one InstallSnapshot chunk (thesis §5.2); returns whether done. */
static bool snapshot_chunk(struct rl_node *n, const struct rl_msg *m,
    struct rl_msg *r)
{
	bool same = n->snap_rx && n->snap_rx_meta.index == m->snap.index &&
	    n->snap_rx_meta.term == m->snap.term;
	if (!same) {
		if (m->snap_offset != 0) {
			r->reject = true;
			r->snap_offset = 0;
			return false;
		}
		n->snap_rx = true;
		n->snap_rx_meta = m->snap;
		n->snap_rx_offset = 0;
	}
	if (m->snap_offset != n->snap_rx_offset) {
		r->reject = m->snap_offset > n->snap_rx_offset;
		r->snap_offset = n->snap_rx_offset;
		return false;
	}
	n->snap_rx_offset += m->snap_len;
	r->snap_offset = n->snap_rx_offset;
	return m->snap_done;
}

static bool snapshot_valid(const struct rl_msg *m)
{
	return m->snap_len <= RL_SNAPSHOT_CHUNK_BYTES_MAX &&
	    conf_valid(&m->snap.conf) && m->snap.index > 0 &&
	    m->snap.term <= m->term;
}

/* We already hold everything the snapshot covers. */
static bool snapshot_held(const struct rl_node *n, const struct rl_msg *m)
{
	return m->snap.index <= n->log.committed ||
	    rl_log_match(&n->log, m->snap.index, m->snap.term);
}

static int handle_snapshot(struct rl_node *n, const struct rl_msg *m)
{
	if (!snapshot_valid(m))
		return RL_ERR_INVAL;
	struct rl_msg r = { 0 };
	r.type = RL_MSG_SNAPSHOT_RESP;
	r.to = m->from;
	r.snap = m->snap;
	if (snapshot_held(n, m)) {
		/* we already hold what it covers: fast-forward the commit */
		rl_log_commit_to(&n->log, m->snap.index);
		rl_conf_on_commit(n);
		n->snap_rx = false;
		r.snap_done = true;
		rl_send(n, &r);
		return RL_OK;
	}
	if (snapshot_chunk(n, m, &r)) {
		rl_log_restore(&n->log, &m->snap);
		rl_conf_reset(n, &m->snap.conf);
		n->snap_rx = false;
		n->snap_reported = false;
		r.snap_done = true;
	}
	rl_send(n, &r);
	return RL_OK;
}

/* Mirrors rl_step() -> step_term() -> handle_snapshot() ->
 * snapshot_chunk() without changing anything: the application stages only
 * the bytes the core will take (raft.h SNAPSHOTS). */
bool rl_snapshot_chunk_wanted(const struct rl_node *n, const struct rl_msg *m)
{
	if (m == NULL || m->type != RL_MSG_SNAPSHOT || m->to != n->id ||
	    m->from == RL_NONE || m->from == n->id || m->entries_n > 0 ||
	    m->ctx_len > RL_READ_CTX_MAX || m->term < n->term)
		return false;
	if (m->term == n->term && n->role == RL_LEADER)
		return false; /* a leader ignores chunks of its own term */
	if (!snapshot_valid(m) || snapshot_held(n, m))
		return false;
	bool same = n->snap_rx && n->snap_rx_meta.index == m->snap.index &&
	    n->snap_rx_meta.term == m->snap.term;
	if (!same)
		return m->snap_offset == 0;
	return m->snap_offset == n->snap_rx_offset;
}

static int follower_step(struct rl_node *n, const struct rl_msg *m)
{
	switch (m->type) {
	case RL_MSG_APPEND:
	case RL_MSG_HEARTBEAT:
	case RL_MSG_SNAPSHOT:
		if (n->role != RL_FOLLOWER)
			rl_become_follower(n, m->term, m->from);
		n->election_elapsed = 0;
		n->lead = m->from;
		if (m->type == RL_MSG_APPEND)
			return handle_append(n, m);
		if (m->type == RL_MSG_SNAPSHOT)
			return handle_snapshot(n, m);
		handle_heartbeat(n, m);
		return RL_OK;
	case RL_MSG_VOTE_RESP:
	case RL_MSG_PREVOTE_RESP:
		handle_vote_resp(n, m);
		return RL_OK;
	case RL_MSG_TIMEOUT_NOW:
		/* thesis §3.10: start an election at once, no PreVote */
		if (n->role == RL_FOLLOWER)
			campaign(n, false, true);
		return RL_OK;
	case RL_MSG_READ_INDEX_RESP:
		if (m->ctx_len <= RL_READ_CTX_MAX)
			rl_add_read_state(n, m->index, m->ctx, m->ctx_len);
		return RL_OK;
	default:
		return RL_OK;
	}
}

/* Term rules (Figure 2 "all servers", thesis §4.2.3, §9.6). Returns false if
 * m must be ignored. */
static bool step_term(struct rl_node *n, const struct rl_msg *m)
{
	bool vote_req = m->type == RL_MSG_VOTE || m->type == RL_MSG_PREVOTE;
	if (m->term > n->term) {
		/* thesis §4.2.3: a member that heard from a leader within the
		 * minimum election timeout ignores vote requests */
		if (vote_req && !m->transfer && n->cfg.check_quorum &&
		    n->lead != RL_NONE &&
		    n->election_elapsed < n->cfg.election_ticks)
			return false;
		if (m->type == RL_MSG_PREVOTE ||
		    (m->type == RL_MSG_PREVOTE_RESP && !m->reject))
			return true; /* PreVote never changes terms */
		bool from_leader = m->type == RL_MSG_APPEND ||
		    m->type == RL_MSG_HEARTBEAT || m->type == RL_MSG_SNAPSHOT;
		uint32_t elapsed = n->election_elapsed;
		rl_become_follower(n, m->term, from_leader ? m->from : RL_NONE);
		/* paper §5.2: only a granted vote or the leader resets the
		 * election timer; a candidate with a stale log must not keep
		 * postponing everyone else's election */
		if (vote_req)
			n->election_elapsed = elapsed;
		return true;
	}
	if (m->term < n->term) {
		/* tell a stale leader or pre-candidate about the newer term so
		 * it steps down (it could otherwise never learn of it when our
		 * votes are withheld by the lease) */
		struct rl_msg r = { 0 };
		r.to = m->from;
		if ((n->cfg.check_quorum || n->cfg.pre_vote) &&
		    (m->type == RL_MSG_APPEND || m->type == RL_MSG_HEARTBEAT)) {
			r.type = RL_MSG_APPEND_RESP;
			rl_send(n, &r);
		} else if (m->type == RL_MSG_PREVOTE) {
			r.type = RL_MSG_PREVOTE_RESP;
			r.term = n->term;
			r.reject = true;
			rl_send(n, &r);
		}
		return false;
	}
	return true;
}

int rl_step(struct rl_node *n, const struct rl_msg *m)
{
	if (m == NULL || m->to != n->id || m->from == RL_NONE ||
	    m->from == n->id || m->type == 0 || m->type > RL_MSG_TYPE_MAX)
		return RL_OK;
	if (m->entries_n > 0 && (m->type != RL_MSG_APPEND || m->entries == NULL))
		return RL_ERR_INVAL;
	if (m->ctx_len > RL_READ_CTX_MAX)
		return RL_ERR_INVAL;
	if (!step_term(n, m))
		return RL_OK;
	if (m->type == RL_MSG_VOTE || m->type == RL_MSG_PREVOTE) {
		handle_vote(n, m);
		return RL_OK;
	}
	if (n->role == RL_LEADER)
		return rl_leader_step(n, m);
	return follower_step(n, m);
}

/* ---- proposals and other inputs ---------------------------------------- */

static int not_leader(const struct rl_node *n, rl_id *leader_out)
{
	if (leader_out != NULL)
		*leader_out = n->lead;
	return RL_ERR_NOT_LEADER;
}

int rl_propose(struct rl_node *n, const uint8_t *data, uint32_t data_len,
    rl_id *leader_out, rl_index *index_out)
{
	if (n->role != RL_LEADER)
		return not_leader(n, leader_out);
	if (leader_out != NULL)
		*leader_out = n->id;
	if (data_len > RL_ENTRY_DATA_MAX)
		return RL_ERR_TOO_LARGE;
	if (data_len > 0 && data == NULL)
		return RL_ERR_INVAL;
	return rl_leader_append(n, RL_ENTRY_NORMAL, data, data_len, index_out);
}

bool rl_committed_in_term(const struct rl_node *n)
{
	return rl_log_term_or0(&n->log, n->log.committed) == n->term;
}

int rl_propose_conf_change(struct rl_node *n, const struct rl_conf_change *cc,
    rl_id *leader_out, rl_index *index_out)
{
	if (n->role != RL_LEADER)
		return not_leader(n, leader_out);
	if (leader_out != NULL)
		*leader_out = n->id;
	/* thesis §4.1: one change at a time, and only after the leader has
	 * committed an entry of its term (the single-server bug fix) */
	if (n->hist_n > 0 || !rl_committed_in_term(n))
		return RL_ERR_CONF_PENDING;
	struct rl_conf_state c = n->conf;
	int rc = rl_conf_apply(&c, cc);
	if (rc != RL_OK)
		return rc;
	uint8_t buf[RL_CONF_CHANGE_BYTES];
	rl_conf_change_encode(cc, buf);
	return rl_leader_append(n, RL_ENTRY_CONF_CHANGE, buf, sizeof(buf),
	    index_out);
}

int rl_read_index(struct rl_node *n, const uint8_t *ctx, uint32_t ctx_len,
    rl_id *leader_out)
{
	if (ctx_len > RL_READ_CTX_MAX)
		return RL_ERR_TOO_LARGE;
	if (ctx_len > 0 && ctx == NULL)
		return RL_ERR_INVAL;
	if (n->role == RL_LEADER)
		return rl_leader_read(n, n->id, ctx, ctx_len);
	if (n->lead == RL_NONE || n->role != RL_FOLLOWER)
		return not_leader(n, leader_out);
	if (leader_out != NULL)
		*leader_out = n->lead;
	struct rl_msg m = { 0 };
	m.type = RL_MSG_READ_INDEX;
	m.to = n->lead;
	m.ctx_len = ctx_len;
	if (ctx_len > 0)
		memcpy(m.ctx, ctx, ctx_len);
	rl_send(n, &m);
	return RL_OK;
}

int rl_transfer_leadership(struct rl_node *n, rl_id target, rl_id *leader_out)
{
	if (n->role != RL_LEADER)
		return not_leader(n, leader_out);
	if (leader_out != NULL)
		*leader_out = n->id;
	if (target == n->id)
		return RL_ERR_INVAL;
	if (!rl_is_voter(&n->conf, target))
		return RL_ERR_NOT_MEMBER;
	if (n->transferee == target)
		return RL_OK;
	struct rl_progress *pr = rl_pr_get(n, target);
	if (pr == NULL)
		return RL_ERR_NOMEM; /* its progress could not be allocated */
	n->transferee = target;
	n->election_elapsed = 0; /* abort after one election timeout */
	if (pr->match == rl_log_last(&n->log)) {
		struct rl_msg m = { 0 };
		m.type = RL_MSG_TIMEOUT_NOW;
		m.to = target;
		rl_send(n, &m);
	} else {
		rl_bcast_append(n);
	}
	return RL_OK;
}

int rl_snapshot_taken(struct rl_node *n, const struct rl_snapshot_meta *meta)
{
	struct rl_snapshot_meta cur;
	int rc = n->log.st->snapshot_meta(n->log.st->ctx, &cur);
	if (rc != RL_OK)
		return rc;
	if (meta->index < cur.index)
		return RL_ERR_COMPACTED;
	if (meta->index > n->log.applied || !conf_valid(&meta->conf) ||
	    !rl_log_match(&n->log, meta->index, meta->term))
		return RL_ERR_INVAL;
	/* the core reads snapshots back through storage.snapshot_meta; nothing
	 * to keep here beyond the validation */
	return RL_OK;
}

/* ---- creation ---------------------------------------------------------- */

static int config_check(const struct rl_config *c)
{
	if (c->id == RL_NONE || c->storage == NULL)
		return RL_ERR_INVAL;
	const struct rl_storage *s = c->storage;
	if (!s->first_index || !s->last_index || !s->term || !s->entries ||
	    !s->snapshot_meta)
		return RL_ERR_INVAL;
	if (c->heartbeat_ticks >= c->election_ticks)
		return RL_ERR_INVAL;
	if (c->inflight_msgs_max > RL_INFLIGHT_MSGS_LIMIT)
		return RL_ERR_INVAL;
	return RL_OK;
}

static void config_defaults(struct rl_config *c)
{
	if (c->election_ticks == 0)
		c->election_ticks = RL_ELECTION_TICKS_DEFAULT;
	if (c->heartbeat_ticks == 0)
		c->heartbeat_ticks = RL_HEARTBEAT_TICKS_DEFAULT;
	if (c->inflight_msgs_max == 0)
		c->inflight_msgs_max = RL_INFLIGHT_MSGS_MAX_DEFAULT;
	if (c->inflight_bytes_max == 0)
		c->inflight_bytes_max = RL_INFLIGHT_BYTES_MAX_DEFAULT;
	if (c->msg_bytes_max == 0)
		c->msg_bytes_max = RL_MSG_BYTES_MAX_DEFAULT;
	if (c->uncommitted_bytes_max == 0)
		c->uncommitted_bytes_max = RL_UNCOMMITTED_BYTES_MAX_DEFAULT;
	if (c->ready_entries_max == 0)
		c->ready_entries_max = RL_READY_ENTRIES_MAX_DEFAULT;
}

/* Restore term/vote/commit and the log from what was persisted: a restarted
 * member never votes twice in a term nor forgets an acknowledged entry
 * (Figure 2 persistent state). */
static int restore(struct rl_node *n)
{
	const struct rl_storage *s = n->cfg.storage;
	int rc = rl_log_init(&n->log, s);
	if (rc != RL_OK)
		return rc;
	struct rl_snapshot_meta sm;
	rc = s->snapshot_meta(s->ctx, &sm);
	if (rc != RL_OK)
		return rc;
	const struct rl_hard_state *hs = &n->cfg.hard_state;
	rl_index last = rl_log_last(&n->log);
	if (hs->commit > last || sm.index > last)
		return RL_ERR_INVAL;
	n->term = hs->term;
	n->vote = hs->vote;
	n->log.committed = hs->commit > sm.index ? hs->commit : sm.index;
	n->log.applied = n->cfg.applied > sm.index ? n->cfg.applied : sm.index;
	if (n->log.applied > last)
		return RL_ERR_INVAL;
	/* commitIndex is volatile (Figure 2) and a commit-only hard state is
	 * not synced (must_sync): only committed entries are ever applied, so
	 * what the application applied is committed */
	if (n->log.applied > n->log.committed)
		n->log.committed = n->log.applied;
	if (sm.index > 0 && !conf_valid(&sm.conf))
		return RL_ERR_INVAL;
	rl_conf_reset(n, sm.index > 0 ? &sm.conf : &n->cfg.bootstrap);
	n->prev_hs = *hs;
	n->snap_reported = true;
	return rl_conf_restore(n);
}

int rl_node_new(const struct rl_config *cfg, struct rl_node **out)
{
	struct rl_config c = *cfg;
	config_defaults(&c);
	int rc = config_check(&c);
	if (rc != RL_OK)
		return rc;
	struct rl_node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return RL_ERR_NOMEM;
	n->cfg = c;
	n->id = c.id;
	n->rng = c.seed ^ (c.id * 0xd1b54a32d192ed03ull);
	rc = restore(n);
	if (rc != RL_OK) {
		rl_node_free(n);
		return rc;
	}
	n->role = RL_FOLLOWER;
	reset_timeout(n);
	*out = n;
	return RL_OK;
}

void rl_node_free(struct rl_node *n)
{
	if (n == NULL)
		return;
	rl_prs_free(n);
	if (n->rd_pending)
		rl_ready_free(&n->rd_out);
	rl_log_free(&n->log);
	rl_msg_vec_free(&n->out_now);
	rl_msg_vec_free(&n->out_later);
	free(n->hist);
	free(n->unc);
	free(n->reads);
	free(n->rs);
	free(n);
}

void rl_status(const struct rl_node *n, struct rl_status *out)
{
	memset(out, 0, sizeof(*out));
	out->id = n->id;
	out->role = n->role;
	out->leader = n->lead;
	out->hard_state.term = n->term;
	out->hard_state.vote = n->vote;
	out->hard_state.commit = n->log.committed;
	out->applied = n->log.applied;
	out->last_index = rl_log_last(&n->log);
	out->first_index = rl_log_first(&n->log);
	out->conf = n->conf;
	out->transferee = n->transferee;
}

rl_index rl_match_index(const struct rl_node *n, rl_id id)
{
	if (n->role != RL_LEADER)
		return 0;
	for (size_t i = 0; i < n->prs_n; i++)
		if (n->prs[i].id == id)
			return n->prs[i].match;
	return 0;
}
