/*
 * cluster.c - the deterministic in-test cluster (cluster.h). It plays the
 * application's part of the ready contract exactly as raft.h describes it:
 * send msgs_now (filling snapshot chunks), install a snapshot, persist
 * entries and hard state, send msgs, apply, then advance.
 */
#include "cluster.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rl_config cl_default_config(void)
{
	struct rl_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.election_ticks = 10;
	cfg.heartbeat_ticks = 1;
	cfg.seed = 42;
	cfg.pre_vote = true;
	cfg.check_quorum = true;
	return cfg;
}

static struct rl_conf_state boot_conf;

static void node_start(struct cluster *c, rl_id id)
{
	struct cl_node *x = &c->nodes[id];
	x->cfg.storage = &x->log.st;
	x->conf = x->log.snap.index > 0 ? x->log.snap.conf : boot_conf;
	x->cfg.hard_state = x->log.hs;
	x->cfg.applied = x->applied;
	int rc = rl_node_new(&x->cfg, &x->n);
	cr_assert_eq(rc, RL_OK, "rl_node_new(%llu): %s", (unsigned long long)id,
	    rl_strerror(rc));
	x->up = true;
}

void cl_init(struct cluster *c, size_t voters, size_t learners,
    const struct rl_config *tmpl)
{
	memset(c, 0, sizeof(*c));
	cr_assert(voters + learners <= CL_NODES_MAX);
	c->n = voters + learners;
	c->chunk_bytes = 64;
	memset(&boot_conf, 0, sizeof(boot_conf));
	for (size_t i = 1; i <= voters; i++)
		boot_conf.voters[boot_conf.voters_n++] = i;
	for (size_t i = voters + 1; i <= c->n; i++)
		boot_conf.learners[boot_conf.learners_n++] = i;
	for (rl_id id = 1; id <= c->n; id++) {
		struct cl_node *x = &c->nodes[id];
		x->id = id;
		memlog_init(&x->log);
		x->cfg = *tmpl;
		x->cfg.id = id;
		x->cfg.seed = tmpl->seed + id;
		x->cfg.bootstrap = boot_conf;
		node_start(c, id);
	}
}

rl_id cl_add_node(struct cluster *c)
{
	cr_assert(c->n < CL_NODES_MAX);
	rl_id id = ++c->n;
	struct cl_node *x = &c->nodes[id];
	memset(x, 0, sizeof(*x));
	x->id = id;
	memlog_init(&x->log);
	x->cfg = c->nodes[1].cfg;
	x->cfg.id = id;
	x->cfg.seed += id;
	x->cfg.bootstrap = boot_conf;
	node_start(c, id);
	return id;
}

static void msg_free(struct rl_msg *m)
{
	for (uint32_t k = 0; k < m->entries_n; k++)
		free(m->entries[k].data);
	free(m->entries);
	free((void *)m->snap_data);
}

void cl_free(struct cluster *c)
{
	for (rl_id id = 1; id <= c->n; id++) {
		struct cl_node *x = &c->nodes[id];
		rl_node_free(x->n);
		memlog_free(&x->log);
		free(x->app);
		free(x->stage);
	}
	for (size_t i = 0; i < c->q_n; i++)
		msg_free(&c->q[(c->q_head + i) % c->q_cap]);
	free(c->q);
	for (size_t i = 0; i < CL_APPLIED_MAX; i++)
		free(c->applied[i].data);
}

/* Deep copy into the queue (the ready's memory is gone after advance). */
static void enqueue(struct cluster *c, const struct rl_msg *m)
{
	if (c->q_n == c->q_cap) {
		size_t cap = c->q_cap ? c->q_cap * 2 : 64;
		struct rl_msg *v = calloc(cap, sizeof(*v));
		cr_assert(v != NULL);
		for (size_t i = 0; i < c->q_n; i++)
			v[i] = c->q[(c->q_head + i) % c->q_cap];
		free(c->q);
		c->q = v;
		c->q_cap = cap;
		c->q_head = 0;
	}
	struct rl_msg cp = *m;
	if (m->entries_n > 0) {
		cp.entries = calloc(m->entries_n, sizeof(*cp.entries));
		for (uint32_t k = 0; k < m->entries_n; k++) {
			cp.entries[k] = m->entries[k];
			cp.entries[k].data = NULL;
			if (m->entries[k].data_len > 0) {
				cp.entries[k].data = malloc(m->entries[k].data_len);
				memcpy(cp.entries[k].data, m->entries[k].data,
				    m->entries[k].data_len);
			}
		}
	}
	if (m->snap_len > 0) {
		uint8_t *d = malloc(m->snap_len);
		memcpy(d, m->snap_data, m->snap_len);
		cp.snap_data = d;
	}
	c->q[(c->q_head + c->q_n) % c->q_cap] = cp;
	c->q_n++;
}

/* Sender application: fill a snapshot chunk from its stored snapshot. */
static bool fill_chunk(struct cluster *c, struct cl_node *x, struct rl_msg *m)
{
	if (m->snap.index != x->log.snap.index || m->snap.term != x->log.snap.term)
		return false;
	uint64_t left = x->log.snap_len - m->snap_offset;
	if (m->snap_offset > x->log.snap_len)
		return false;
	m->snap_len = (uint32_t)(left < c->chunk_bytes ? left : c->chunk_bytes);
	m->snap_data = x->log.snap_data + m->snap_offset;
	m->snap_done = m->snap_offset + m->snap_len == x->log.snap_len;
	return true;
}

static void record_apply(struct cluster *c, struct cl_node *x,
    const struct rl_entry *e)
{
	cr_assert_eq(e->index, x->applied + 1, "node %llu applies %llu after %llu",
	    (unsigned long long)x->id, (unsigned long long)e->index,
	    (unsigned long long)x->applied);
	x->applied = e->index;
	if (e->index < CL_APPLIED_MAX) {
		struct cl_applied *a = &c->applied[e->index];
		if (a->term == 0) {
			a->term = e->term;
			a->len = e->data_len;
			a->data = malloc(e->data_len + 1);
			if (e->data_len > 0)
				memcpy(a->data, e->data, e->data_len);
		} else {
			/* State Machine Safety (paper §5.4.3) */
			cr_assert_eq(a->term, e->term, "index %llu applied with "
			    "terms %llu and %llu", (unsigned long long)e->index,
			    (unsigned long long)a->term,
			    (unsigned long long)e->term);
			cr_assert_eq(a->len, e->data_len);
			cr_assert(a->len == 0 ||
			    memcmp(a->data, e->data, a->len) == 0);
		}
	}
	struct rl_conf_change cc;
	if (e->type == RL_ENTRY_CONF_CHANGE &&
	    rl_conf_change_decode(e->data, e->data_len, &cc) == RL_OK)
		(void)rl_conf_apply(&x->conf, &cc);
	if (e->type == RL_ENTRY_NORMAL && e->data_len > 0) {
		x->app = realloc(x->app, x->app_len + e->data_len);
		memcpy(x->app + x->app_len, e->data, e->data_len);
		x->app_len += e->data_len;
	}
}

static void install(struct cl_node *x, const struct rl_snapshot_meta *m)
{
	cr_assert_eq(x->stage_meta.index, m->index, "snapshot not staged");
	cr_assert_eq(x->stage_meta.term, m->term);
	memlog_install(&x->log, m, x->stage, x->stage_len);
	free(x->app);
	x->app = malloc(x->stage_len + 1);
	if (x->stage_len > 0)
		memcpy(x->app, x->stage, x->stage_len);
	x->app_len = x->stage_len;
	x->applied = m->index;
	x->conf = m->conf;
}

bool cl_process(struct cluster *c, rl_id id)
{
	struct cl_node *x = &c->nodes[id];
	if (!x->up || !rl_has_ready(x->n))
		return false;
	struct rl_ready rd;
	cr_assert_eq(rl_ready(x->n, &rd), RL_OK);
	for (size_t i = 0; i < rd.msgs_now_n; i++) {
		struct rl_msg *m = &rd.msgs_now[i];
		if (m->type == RL_MSG_SNAPSHOT && !fill_chunk(c, x, m))
			continue;
		enqueue(c, m);
	}
	if (c->crash_mid_pct && cl_rand(c) % 100 < c->crash_mid_pct) {
		cl_crash(c, id); /* the node frees the un-advanced ready */
		return true;
	}
	if (rd.has_snapshot)
		install(x, &rd.snapshot);
	memlog_append(&x->log, rd.entries, rd.entries_n);
	if (rd.has_hard_state)
		x->log.hs = rd.hard_state;
	for (size_t i = 0; i < rd.msgs_n; i++)
		enqueue(c, &rd.msgs[i]);
	for (size_t i = 0; i < rd.committed_n; i++)
		record_apply(c, x, &rd.committed[i]);
	for (size_t i = 0; i < rd.read_states_n && x->reads_n < CL_READS_MAX; i++)
		x->reads[x->reads_n++] = rd.read_states[i];
	if (rd.role == RL_LEADER) {
		struct rl_status st;
		rl_status(x->n, &st);
		rl_term t = st.hard_state.term;
		cr_assert(t < CL_TERMS_MAX);
		/* Election Safety (paper §5.2): one leader per term */
		cr_assert(c->leader_of_term[t] == RL_NONE ||
		    c->leader_of_term[t] == id, "two leaders in term %llu",
		    (unsigned long long)t);
		c->leader_of_term[t] = id;
	}
	rl_advance(x->n, &rd);
	return true;
}

static void receive_chunk(struct cl_node *x, const struct rl_msg *m)
{
	if (m->snap.index != x->stage_meta.index ||
	    m->snap.term != x->stage_meta.term) {
		if (m->snap_offset != 0)
			return;
		x->stage_meta = m->snap;
		x->stage_len = 0;
	}
	uint64_t end = m->snap_offset + m->snap_len;
	if (end > x->stage_len) {
		x->stage = realloc(x->stage, end);
		x->stage_len = (uint32_t)end;
	}
	if (m->snap_len > 0)
		memcpy(x->stage + m->snap_offset, m->snap_data, m->snap_len);
}

/* Handle readies until no node has one (advance can produce more). */
static void process_all(struct cluster *c)
{
	for (unsigned round = 0; round < 100; round++) {
		bool any = false;
		for (rl_id id = 1; id <= c->n; id++)
			any |= cl_process(c, id);
		if (!any)
			return;
	}
	cr_assert_fail("readies never run out");
}

bool cl_deliver_one(struct cluster *c)
{
	process_all(c);
	if (c->q_n == 0)
		return false;
	if (c->reorder_pct && c->q_n > 1 && cl_rand(c) % 100 < c->reorder_pct) {
		size_t j = (c->q_head + 1 + cl_rand(c) % (c->q_n - 1)) % c->q_cap;
		struct rl_msg t = c->q[j];
		c->q[j] = c->q[c->q_head];
		c->q[c->q_head] = t;
	}
	if (c->dup_pct && cl_rand(c) % 100 < c->dup_pct) {
		struct rl_msg dup = c->q[c->q_head]; /* enqueue may move c->q */
		enqueue(c, &dup);
	}
	struct rl_msg m = c->q[c->q_head];
	c->q_head = (c->q_head + 1) % c->q_cap;
	c->q_n--;
	struct cl_node *x = m.to <= c->n ? &c->nodes[m.to] : NULL;
	bool drop = x == NULL || !x->up || c->cut[m.from][m.to] ||
	    (c->drop_pct && cl_rand(c) % 100 < c->drop_pct) ||
	    (c->filter != NULL && !c->filter(c, &m));
	if (getenv("CL_TRACE") != NULL)
		fprintf(stderr, "%s %llu->%llu type %u term %llu idx %llu lt %llu "
		    "commit %llu n %u rej %d hint %llu\n", drop ? "DROP" : "MSG ",
		    (unsigned long long)m.from, (unsigned long long)m.to, m.type,
		    (unsigned long long)m.term, (unsigned long long)m.index,
		    (unsigned long long)m.log_term, (unsigned long long)m.commit,
		    m.entries_n, m.reject, (unsigned long long)m.reject_hint);
	if (!drop) {
		c->delivered[m.type]++;
		if (m.type == RL_MSG_APPEND_RESP && m.reject)
			c->rejects_delivered++;
		/* stage only what the core will take (raft.h SNAPSHOTS) */
		if (m.type == RL_MSG_SNAPSHOT &&
		    rl_snapshot_chunk_wanted(x->n, &m))
			receive_chunk(x, &m);
		int rc = rl_step(x->n, &m);
		cr_assert_eq(rc, RL_OK, "step: %s", rl_strerror(rc));
		cl_process(c, m.to);
	}
	msg_free(&m);
	return true;
}

void cl_drop_queue(struct cluster *c)
{
	while (c->q_n > 0) {
		msg_free(&c->q[c->q_head]);
		c->q_head = (c->q_head + 1) % c->q_cap;
		c->q_n--;
	}
}

void cl_stabilize(struct cluster *c)
{
	for (unsigned k = 0; k < CL_STEPS_MAX; k++) {
		if (!cl_deliver_one(c))
			return;
	}
	cr_assert_fail("cluster did not stabilize");
}

void cl_tick_all(struct cluster *c, unsigned times)
{
	for (unsigned t = 0; t < times; t++) {
		for (rl_id id = 1; id <= c->n; id++)
			if (c->nodes[id].up)
				rl_tick(c->nodes[id].n);
		cl_stabilize(c);
	}
}

uint64_t cl_rand(struct cluster *c)
{
	uint64_t z = (c->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void cl_cut(struct cluster *c, rl_id a, rl_id b, bool cut)
{
	c->cut[a][b] = cut;
	c->cut[b][a] = cut;
}

void cl_isolate(struct cluster *c, rl_id a, bool cut)
{
	for (rl_id b = 1; b <= CL_NODES_MAX; b++)
		if (b != a)
			cl_cut(c, a, b, cut);
}

void cl_crash(struct cluster *c, rl_id id)
{
	struct cl_node *x = &c->nodes[id];
	rl_node_free(x->n);
	x->n = NULL;
	x->up = false;
	/* the state machine is volatile: rebuilt from snapshot + log */
	free(x->app);
	x->app = NULL;
	x->app_len = 0;
	x->applied = x->log.snap.index;
	if (x->log.snap_len > 0) {
		x->app = malloc(x->log.snap_len);
		memcpy(x->app, x->log.snap_data, x->log.snap_len);
		x->app_len = x->log.snap_len;
	}
}

void cl_restart(struct cluster *c, rl_id id)
{
	node_start(c, id);
}

void cl_status(struct cluster *c, rl_id id, struct rl_status *st)
{
	rl_status(c->nodes[id].n, st);
}

struct rl_status cl_status_of(struct cluster *c, rl_id id)
{
	struct rl_status st;
	cl_status(c, id, &st);
	return st;
}

struct rl_config cl_hand_config(struct memlog *ml, rl_id id,
    struct rl_config tmpl)
{
	tmpl.id = id;
	tmpl.storage = &ml->st;
	tmpl.hard_state = ml->hs;
	tmpl.bootstrap.voters_n = CL_HAND_VOTERS;
	for (uint32_t i = 0; i < CL_HAND_VOTERS; i++)
		tmpl.bootstrap.voters[i] = i + 1;
	return tmpl;
}

struct rl_node *cl_hand_node(struct memlog *ml, rl_id id, struct rl_config tmpl)
{
	struct rl_config cfg = cl_hand_config(ml, id, tmpl);
	struct rl_node *n;
	cr_assert_eq(rl_node_new(&cfg, &n), RL_OK);
	return n;
}

void cl_hand_ready(struct memlog *ml, struct rl_node *n, struct rl_ready *rd)
{
	cr_assert_eq(rl_ready(n, rd), RL_OK);
	memlog_append(ml, rd->entries, rd->entries_n);
	if (rd->has_hard_state)
		ml->hs = rd->hard_state;
}

void cl_hand_persist(struct memlog *ml, struct rl_node *n)
{
	struct rl_ready rd;
	cl_hand_ready(ml, n, &rd);
	rl_advance(n, &rd);
}

struct rl_msg cl_msg(uint8_t type, rl_id from, rl_id to, rl_term term)
{
	struct rl_msg m = { 0 };
	m.type = type;
	m.from = from;
	m.to = to;
	m.term = term;
	return m;
}

struct rl_msg cl_append_msg(rl_term term, rl_index prev, rl_term prev_term,
    struct rl_entry *e, uint32_t k, rl_index commit)
{
	struct rl_msg m = cl_msg(RL_MSG_APPEND, 1, 2, term);
	m.index = prev;
	m.log_term = prev_term;
	m.entries = e;
	m.entries_n = k;
	m.commit = commit;
	return m;
}

rl_id cl_leader(struct cluster *c)
{
	rl_id best = RL_NONE;
	rl_term bt = 0;
	for (rl_id id = 1; id <= c->n; id++) {
		if (!c->nodes[id].up)
			continue;
		struct rl_status st;
		rl_status(c->nodes[id].n, &st);
		if (st.role == RL_LEADER && st.hard_state.term >= bt) {
			best = id;
			bt = st.hard_state.term;
		}
	}
	return best;
}

rl_id cl_wait_leader(struct cluster *c)
{
	for (unsigned t = 0; t < 500; t++) {
		rl_id l = cl_leader(c);
		if (l != RL_NONE)
			return l;
		cl_tick_all(c, 1);
	}
	cr_assert_fail("no leader elected");
	return RL_NONE;
}

void cl_elect(struct cluster *c, rl_id id)
{
	rl_campaign(c->nodes[id].n);
	cl_stabilize(c);
	cr_assert_eq(cl_leader(c), id, "node %llu did not win",
	    (unsigned long long)id);
}

int cl_propose(struct cluster *c, rl_id id, const char *s)
{
	int rc = rl_propose(c->nodes[id].n, (const uint8_t *)s,
	    (uint32_t)strlen(s), NULL, NULL);
	cl_stabilize(c);
	return rc;
}

void cl_check_agree(struct cluster *c)
{
	struct cl_node *ref = NULL;
	for (rl_id id = 1; id <= c->n; id++) {
		struct cl_node *x = &c->nodes[id];
		if (!x->up)
			continue;
		if (ref == NULL) {
			ref = x;
			continue;
		}
		cr_assert_eq(x->applied, ref->applied, "node %llu applied %llu, "
		    "node %llu applied %llu", (unsigned long long)x->id,
		    (unsigned long long)x->applied, (unsigned long long)ref->id,
		    (unsigned long long)ref->applied);
		cr_assert_eq(x->app_len, ref->app_len);
		cr_assert(x->app_len == 0 ||
		    memcmp(x->app, ref->app, x->app_len) == 0);
	}
}
