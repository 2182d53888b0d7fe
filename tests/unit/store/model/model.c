/*
 * model.c - the reference model of the store: etcd v3 semantics over a tiny
 * key alphabet, written from the semantics (etcd 3.4's apply.go and mvcc
 * rules as restated in store.h), kept deliberately naive: the history is one
 * array of events, a past state is rebuilt by replaying it.
 *
 * Transactions (etcd 3.4 apply.go): the shape (op budget, nesting, static
 * checks) and the duplicate-key rule come first; compares (nested ones
 * too) see the state before the txn; then every put of the taken path is
 * checked against that state (key for ignore_*, then lease), then every
 * range's revision; then the ops run, seeing the txn's earlier writes;
 * every write of the txn gets revision rev + 1; an error anywhere rolls
 * everything back.
 */
#include "model.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ---- PRNG and arena ----------------------------------------------------- */

uint64_t mrng_next(struct mrng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t mrng_below(struct mrng *r, uint64_t n)
{
	assert(n > 0);
	return mrng_next(r) % n;
}

bool mrng_pct(struct mrng *r, unsigned pct)
{
	return mrng_below(r, 100) < pct;
}

void arena_init(struct arena *a, size_t cap)
{
	a->buf = malloc(cap);
	assert(a->buf);
	a->used = 0;
	a->cap = cap;
}

void arena_reset(struct arena *a) { a->used = 0; }

void arena_fini(struct arena *a)
{
	free(a->buf);
	a->buf = NULL;
}

void *arena_alloc(struct arena *a, size_t n)
{
	size_t at = (a->used + 15u) & ~(size_t)15u;
	assert(at + n <= a->cap && "test arena too small");
	a->used = at + n;
	memset(a->buf + at, 0, n);
	return a->buf + at;
}

/* ---- keys ----------------------------------------------------------------- */

/* The longest key the store accepts, "k" repeated: sorts between "b/x"
 * and "\xff". */
static uint8_t m_long_key[ST_KEY_BYTES_MAX];

static const struct { const char *b; size_t n; } m_keys[M_KEYS_N] = {
	{ "\0", 1 }, { "a", 1 }, { "a\0", 2 }, { "a/", 2 }, { "a/b", 3 },
	{ "a/c", 3 }, { "ab", 2 }, { "b", 1 }, { "b/x", 3 },
	{ (const char *)m_long_key, ST_KEY_BYTES_MAX }, { "\xff", 1 },
	{ "\xff\xff", 2 },
};

const uint8_t *model_key(int idx, size_t *len)
{
	assert(idx >= 0 && idx < (int)M_KEYS_N);
	if (!m_long_key[0])
		memset(m_long_key, 'k', sizeof(m_long_key));
	*len = m_keys[idx].n;
	return (const uint8_t *)m_keys[idx].b;
}

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t n = an < bn ? an : bn;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return an < bn ? -1 : an > bn ? 1 : 0;
}

/* etcd range rules: empty end = one key, "\0" = from key, else [key, end). */
static bool in_span(int k, const uint8_t *key, size_t key_len,
	const uint8_t *end, size_t end_len)
{
	size_t n;
	const uint8_t *kb = model_key(k, &n);
	int c = bytes_cmp(kb, n, key, key_len);
	if (end_len == 0)
		return c == 0;
	if (c < 0)
		return false;
	if (end_len == 1 && end[0] == 0)
		return true;
	return bytes_cmp(kb, n, end, end_len) < 0;
}

/* ---- state ----------------------------------------------------------------- */

void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->rev = 1;
	m->value_bytes_max = ST_VALUE_BYTES_MAX_DEFAULT;
	m->recs_cap = 1024;
	m->recs = malloc(m->recs_cap * sizeof(*m->recs));
	assert(m->recs);
	for (int k = 0; k < (int)M_KEYS_N; k++) {
		size_t n1, n2;
		const uint8_t *a = model_key(k, &n1);
		if (k > 0) {
			const uint8_t *b = model_key(k - 1, &n2);
			assert(bytes_cmp(b, n2, a, n1) < 0);
		}
	}
}

void model_fini(struct model *m)
{
	free(m->recs);
	m->recs = NULL;
}

/* The key's newest record of a revision before rev (one key may be
 * written twice in one revision; both records share the older prev). */
static int last_rec_before(const struct model *m, int key, st_rev rev)
{
	for (size_t i = m->recs_n; i > 0; i--)
		if (m->recs[i - 1].kv.key == key && m->recs[i - 1].rev < rev)
			return (int)(i - 1);
	return -1;
}

static void push_rec(struct model *m, st_rev rev, bool del,
	const struct m_kv *kv)
{
	if (m->recs_n == m->recs_cap) {
		m->recs_cap *= 2;
		m->recs = realloc(m->recs, m->recs_cap * sizeof(*m->recs));
		assert(m->recs);
	}
	struct m_rec *rec = &m->recs[m->recs_n];
	rec->rev = rev;
	rec->del = del;
	rec->prev = last_rec_before(m, kv->key, rev);
	rec->kv = *kv;
	m->recs_n++;
}

/* The state at revision rev, from the history alone (ignores records
 * above rev, such as a txn's pending writes). */
static void state_replay(const struct model *m, st_rev rev, struct m_state *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < m->recs_n && m->recs[i].rev <= rev; i++) {
		const struct m_rec *rec = &m->recs[i];
		s->live[rec->kv.key] = !rec->del;
		if (!rec->del)
			s->kv[rec->kv.key] = rec->kv;
	}
}

/* The state at revision rev (<= 0 or rev >= m->rev: current). */
static void state_at(const struct model *m, st_rev rev, struct m_state *s)
{
	if (rev <= 0 || rev >= m->rev)
		*s = m->cur;
	else
		state_replay(m, rev, s);
}

static bool lease_exists(const struct model *m, st_lease_id id)
{
	for (size_t i = 0; i < m->leases_n; i++)
		if (m->leases[i].id == id)
			return true;
	return false;
}

size_t model_live_keys(const struct model *m)
{
	size_t n = 0;
	for (int k = 0; k < (int)M_KEYS_N; k++)
		n += m->cur.live[k];
	return n;
}

/* A record survives compaction at c when it is above c, or it is the
 * newest record of its key at or below c and not a tombstone. */
uint64_t model_logical_bytes(const struct model *m)
{
	uint64_t total = (uint64_t)m->leases_n * ST_LEASE_BYTES_OVERHEAD;
	for (size_t i = 0; i < m->recs_n; i++) {
		const struct m_rec *rec = &m->recs[i];
		bool keep = rec->rev > m->compact;
		if (!keep && !rec->del) {
			keep = true;
			for (size_t j = i + 1; j < m->recs_n; j++)
				if (m->recs[j].kv.key == rec->kv.key) {
					keep = m->recs[j].rev > m->compact;
					break;
				}
		}
		if (keep) {
			size_t kl;
			model_key(rec->kv.key, &kl);
			total += kl + (rec->del ? 0 : rec->kv.val_len) +
				ST_RECORD_BYTES_OVERHEAD;
		}
	}
	return total;
}

/* ---- range ------------------------------------------------------------------ */

static int sort_cmp(const struct m_kv *x, const struct m_kv *y, uint8_t target)
{
	switch (target) {
	case ST_SORT_VERSION: return (x->version > y->version) - (x->version < y->version);
	case ST_SORT_CREATE: return (x->create > y->create) - (x->create < y->create);
	case ST_SORT_MOD: return (x->mod > y->mod) - (x->mod < y->mod);
	case ST_SORT_VALUE: return bytes_cmp(x->val, x->val_len, y->val, y->val_len);
	default: return (x->key > y->key) - (x->key < y->key);
	}
}

/* Stable insertion sort: ties keep key order (store.h). */
static void sort_kvs(struct m_kv *kvs, size_t n, uint8_t target, bool desc)
{
	for (size_t i = 1; i < n; i++) {
		struct m_kv t = kvs[i];
		size_t j = i;
		while (j > 0) {
			int c = sort_cmp(&t, &kvs[j - 1], target);
			if (desc ? c <= 0 : c >= 0)
				break;
			kvs[j] = kvs[j - 1];
			j--;
		}
		kvs[j] = t;
	}
}

static bool filtered_out(const struct st_range *r, const struct m_kv *kv)
{
	if (r->min_mod_revision && kv->mod < r->min_mod_revision)
		return true;
	if (r->max_mod_revision && kv->mod > r->max_mod_revision)
		return true;
	if (r->min_create_revision && kv->create < r->min_create_revision)
		return true;
	if (r->max_create_revision && kv->create > r->max_create_revision)
		return true;
	return false;
}

/* Checks that need no state. Negative revision, limit and filters are
 * fine (etcd: revision <= 0 = current, limit <= 0 = none, a nonzero filter
 * fetches everything and prunes with a plain comparison). */
static int range_static(const struct st_range *r)
{
	if (r->key_len == 0)
		return ST_ERR_EMPTY_KEY;
	if (r->key_len > ST_KEY_BYTES_MAX || r->range_end_len > ST_KEY_BYTES_MAX)
		return ST_ERR_KEY_TOO_LONG;
	if (r->sort_target > ST_SORT_VALUE || r->sort_order > ST_SORT_DESCEND)
		return ST_ERR_INVALID;
	return 0;
}

/* A direct read (mvcc rangeKeys). */
static int range_check(const struct model *m, const struct st_range *r)
{
	int err = range_static(r);
	if (err)
		return err;
	if (r->revision > m->rev)
		return ST_ERR_FUTURE_REV;
	if (r->revision > 0 && r->revision < m->compact)
		return ST_ERR_COMPACTED;
	return 0;
}

/* etcd's compactMainRev. */
static st_rev first_rev(const struct model *m)
{
	return m->compacted_once ? m->compact : -1;
}

/* etcd 3.4 applierV3backend.Range over state s. */
static void range_on(const struct st_range *r, const struct m_state *s,
	struct arena *a, struct m_resp *out)
{
	bool all = r->sort_order != ST_SORT_NONE || r->min_mod_revision ||
		r->max_mod_revision || r->min_create_revision ||
		r->max_create_revision;
	int64_t fetch = all ? 0 : (r->limit > 0 ? r->limit + 1 : 0);
	out->type = ST_RESP_RANGE;
	out->kvs = arena_alloc(a, sizeof(struct m_kv) * M_KEYS_N);
	out->keys_only = r->keys_only;
	for (int k = 0; k < (int)M_KEYS_N; k++) {
		if (!s->live[k] || !in_span(k, r->key, r->key_len, r->range_end,
				r->range_end_len))
			continue;
		out->count++;
		if (r->count_only || (fetch && (int64_t)out->kvs_n == fetch))
			continue;
		out->kvs[out->kvs_n++] = s->kv[k];
	}
	size_t w = 0;
	for (size_t i = 0; i < out->kvs_n; i++)
		if (!filtered_out(r, &out->kvs[i]))
			out->kvs[w++] = out->kvs[i];
	out->kvs_n = w;
	uint8_t order = r->sort_order;
	if (r->sort_target != ST_SORT_KEY && order == ST_SORT_NONE)
		order = ST_SORT_ASCEND;
	if (order != ST_SORT_NONE)
		sort_kvs(out->kvs, out->kvs_n, r->sort_target,
			order == ST_SORT_DESCEND);
	if (r->limit > 0 && (int64_t)out->kvs_n > r->limit) {
		out->kvs_n = (size_t)r->limit;
		out->more = true;
	}
}

void model_range(struct model *m, const struct st_range *r, struct arena *a,
	struct m_resp *out)
{
	memset(out, 0, sizeof(*out));
	out->err = range_check(m, r);
	if (out->err)
		return;
	struct m_state s;
	state_at(m, r->revision, &s);
	range_on(r, &s, a, out);
}

/* ---- writes ------------------------------------------------------------------ */

struct wctx {                /* one write transaction in progress */
	struct model *m;
	st_rev rev;              /* revision the writes get */
	bool wrote;
	const struct m_state *pre; /* compares see this */
	struct arena *a;
};

static int key_index(const uint8_t *key, size_t len)
{
	for (int k = 0; k < (int)M_KEYS_N; k++) {
		size_t n;
		const uint8_t *kb = model_key(k, &n);
		if (bytes_cmp(kb, n, key, len) == 0)
			return k;
	}
	return -1;
}

static int put_static(const struct model *m, const struct st_put *p)
{
	if (p->key_len == 0)
		return ST_ERR_EMPTY_KEY;
	if (p->key_len > ST_KEY_BYTES_MAX)
		return ST_ERR_KEY_TOO_LONG;
	if (p->value_len > m->value_bytes_max)
		return ST_ERR_TOO_LARGE;
	if (p->ignore_value && p->value_len)
		return ST_ERR_VALUE_PROVIDED;
	if (p->ignore_lease && p->lease)
		return ST_ERR_LEASE_PROVIDED;
	return 0;
}

/* A put as it runs (top level: etcd checks the lease, then the key; in a
 * txn both were checked before, so only a key deleted earlier in the txn
 * can fail here, where etcd 3.4 itself panics). */
static int put_check(const struct model *m, const struct st_put *p)
{
	int err = put_static(m, p);
	if (err)
		return err;
	if (p->lease && !lease_exists(m, p->lease))
		return ST_ERR_LEASE_NOT_FOUND;
	int k = key_index(p->key, p->key_len);
	assert(k >= 0 && "generator only puts alphabet keys");
	if ((p->ignore_value || p->ignore_lease) && !m->cur.live[k])
		return ST_ERR_KEY_NOT_FOUND;
	return 0;
}

static int do_put(struct wctx *w, const struct st_put *p, struct m_resp *out)
{
	struct model *m = w->m;
	int err = put_check(m, p);
	if (err)
		return err;
	int k = key_index(p->key, p->key_len);
	struct m_kv kv = { .key = k };
	out->type = ST_RESP_PUT;
	if (m->cur.live[k]) {
		const struct m_kv *old = &m->cur.kv[k];
		if (p->prev_kv) {
			out->has_prev = true;
			out->prev = *old;
		}
		kv = *old;
		kv.version++;
	} else {
		kv.create = w->rev;
		kv.version = 1;
	}
	kv.mod = w->rev;
	if (!p->ignore_value) {
		assert(p->value_len <= M_VAL_BYTES_MAX);
		memcpy(kv.val, p->value, p->value_len);
		kv.val_len = (uint16_t)p->value_len;
	}
	if (!p->ignore_lease)
		kv.lease = p->lease;
	m->cur.live[k] = true;
	m->cur.kv[k] = kv;
	push_rec(m, w->rev, false, &kv);
	w->wrote = true;
	return 0;
}

static void del_key(struct wctx *w, int k)
{
	struct m_kv tomb = { .key = k, .mod = w->rev };
	w->m->cur.live[k] = false;
	push_rec(w->m, w->rev, true, &tomb);
	w->wrote = true;
}

static int do_delete(struct wctx *w, const struct st_delete_range *d,
	struct m_resp *out)
{
	if (d->key_len == 0)
		return ST_ERR_EMPTY_KEY;
	if (d->key_len > ST_KEY_BYTES_MAX || d->range_end_len > ST_KEY_BYTES_MAX)
		return ST_ERR_KEY_TOO_LONG;
	out->type = ST_RESP_DELETE_RANGE;
	out->kvs = arena_alloc(w->a, sizeof(struct m_kv) * M_KEYS_N);
	for (int k = 0; k < (int)M_KEYS_N; k++) {
		if (!w->m->cur.live[k] || !in_span(k, d->key, d->key_len,
				d->range_end, d->range_end_len))
			continue;
		if (d->prev_kv)
			out->kvs[out->kvs_n++] = w->m->cur.kv[k];
		out->deleted++;
		del_key(w, k);
	}
	return 0;
}

/* ---- txn ------------------------------------------------------------------------ */

static int cmp_num(int64_t x, int64_t y)
{
	return (x > y) - (x < y);
}

static bool cmp_holds(int c, uint8_t result)
{
	switch (result) {
	case ST_CMP_EQUAL: return c == 0;
	case ST_CMP_GREATER: return c > 0;
	case ST_CMP_LESS: return c < 0;
	default: return c != 0;
	}
}

static bool cmp_kv(const struct st_compare *c, const struct m_kv *kv)
{
	int r;
	switch (c->target) {
	case ST_CMP_VERSION: r = cmp_num(kv->version, c->number); break;
	case ST_CMP_CREATE: r = cmp_num(kv->create, c->number); break;
	case ST_CMP_MOD: r = cmp_num(kv->mod, c->number); break;
	case ST_CMP_LEASE: r = cmp_num(kv->lease, c->number); break;
	default: r = bytes_cmp(kv->val, kv->val_len, c->value, c->value_len);
	}
	return cmp_holds(r, c->result);
}

static bool compare_holds(const struct m_state *s, const struct st_compare *c)
{
	bool any = false;
	for (int k = 0; k < (int)M_KEYS_N; k++) {
		if (!s->live[k] || !in_span(k, c->key, c->key_len, c->range_end,
				c->range_end_len))
			continue;
		any = true;
		if (!cmp_kv(c, &s->kv[k]))
			return false;
	}
	if (any)
		return true;
	if (c->target == ST_CMP_VALUE)
		return false;
	struct m_kv zero = { 0 };
	return cmp_kv(c, &zero);
}

static bool txn_holds(const struct m_state *pre, const struct st_txn *t)
{
	for (size_t i = 0; i < t->compares_n; i++)
		if (!compare_holds(pre, &t->compares[i]))
			return false;
	return true;
}

static int do_op(struct wctx *w, const struct st_op *op, struct m_resp *out);

static int do_txn(struct wctx *w, const struct st_txn *t, struct m_resp *out)
{
	bool ok = txn_holds(w->pre, t);
	const struct st_op *ops = ok ? t->success : t->failure;
	size_t n = ok ? t->success_n : t->failure_n;
	out->type = ST_RESP_TXN;
	out->succeeded = ok;
	out->subs = arena_alloc(w->a, sizeof(struct m_resp) * (n ? n : 1));
	out->subs_n = n;
	for (size_t i = 0; i < n; i++) {
		int err = do_op(w, &ops[i], &out->subs[i]);
		if (err)
			return err;
	}
	return 0;
}

static int do_op(struct wctx *w, const struct st_op *op, struct m_resp *out)
{
	switch (op->type) {
	case ST_OP_PUT:
		return do_put(w, &op->u.put, out);
	case ST_OP_DELETE_RANGE:
		return do_delete(w, &op->u.delete_range, out);
	case ST_OP_TXN:
		return do_txn(w, &op->u.txn, out);
	case ST_OP_RANGE: {
		/* revisions were checked before the txn ran (txn_precheck) */
		const struct st_range *r = &op->u.range;
		struct m_state s;
		if (r->revision <= 0 || r->revision >= w->rev)
			s = w->m->cur; /* includes the txn's earlier writes */
		else
			state_replay(w->m, r->revision, &s);
		range_on(r, &s, w->a, out);
		return 0;
	}
	default:
		assert(!"generator makes no other ops in txns");
		return ST_ERR_INVALID;
	}
}

/* ---- checks before a txn runs ------------------------------------------------ */

static int txn_shape(const struct model *m, const struct st_txn *t,
	unsigned depth, size_t budget);

static int ops_shape(const struct model *m, const struct st_op *ops, size_t n,
	unsigned depth, size_t budget)
{
	for (size_t i = 0; i < n; i++) {
		int err = 0;
		const struct st_delete_range *d = &ops[i].u.delete_range;
		switch (ops[i].type) {
		case ST_OP_TXN:
			err = txn_shape(m, &ops[i].u.txn, depth + 1, budget);
			break;
		case ST_OP_PUT:
			err = put_static(m, &ops[i].u.put);
			break;
		case ST_OP_RANGE:
			err = range_static(&ops[i].u.range);
			break;
		default:
			if (d->key_len == 0)
				err = ST_ERR_EMPTY_KEY;
			else if (d->key_len > ST_KEY_BYTES_MAX ||
				d->range_end_len > ST_KEY_BYTES_MAX)
				err = ST_ERR_KEY_TOO_LONG;
		}
		if (err)
			return err;
	}
	return 0;
}

/* etcd checkTxnRequest: count = max(compares, success, failure) must fit
 * the budget (128 at the top); nested txns get budget - count. */
static int txn_shape(const struct model *m, const struct st_txn *t,
	unsigned depth, size_t budget)
{
	if (depth > ST_TXN_DEPTH_MAX)
		return ST_ERR_TXN_TOO_DEEP;
	size_t count = t->compares_n;
	if (t->success_n > count)
		count = t->success_n;
	if (t->failure_n > count)
		count = t->failure_n;
	if (count > budget)
		return ST_ERR_TOO_MANY_OPS;
	int err = ops_shape(m, t->success, t->success_n, depth, budget - count);
	return err ? err : ops_shape(m, t->failure, t->failure_n, depth,
		budget - count);
}

/* etcd 3.4 checkIntervals over the alphabet (puts only name alphabet keys,
 * so membership of alphabet keys decides every overlap). A delete whose
 * range_end is "\0" is the empty interval [key, "\0") there: it never
 * conflicts. */
struct ivs { bool put[M_KEYS_N]; bool del[M_KEYS_N]; };

static int check_intervals(const struct st_op *ops, size_t n, struct ivs *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		const struct st_delete_range *d = &ops[i].u.delete_range;
		if (ops[i].type != ST_OP_DELETE_RANGE ||
			(d->range_end_len == 1 && d->range_end[0] == 0))
			continue;
		for (int k = 0; k < (int)M_KEYS_N; k++)
			if (in_span(k, d->key, d->key_len, d->range_end,
					d->range_end_len))
				out->del[k] = true;
	}
	for (size_t i = 0; i < n; i++) {
		struct ivs th, el;
		if (ops[i].type != ST_OP_TXN)
			continue;
		const struct st_txn *t = &ops[i].u.txn;
		int err = check_intervals(t->success, t->success_n, &th);
		if (!err)
			err = check_intervals(t->failure, t->failure_n, &el);
		if (err)
			return err;
		for (int k = 0; k < (int)M_KEYS_N; k++) {
			if (th.put[k] && (out->put[k] || out->del[k]))
				return ST_ERR_DUPLICATE_KEY;
			out->put[k] |= th.put[k];
		}
		for (int k = 0; k < (int)M_KEYS_N; k++) {
			if (el.put[k] && ((out->put[k] && !th.put[k]) || out->del[k]))
				return ST_ERR_DUPLICATE_KEY;
			out->put[k] |= el.put[k];
		}
		for (int k = 0; k < (int)M_KEYS_N; k++)
			out->del[k] |= th.del[k] || el.del[k];
	}
	for (size_t i = 0; i < n; i++) {
		if (ops[i].type != ST_OP_PUT)
			continue;
		int k = key_index(ops[i].u.put.key, ops[i].u.put.key_len);
		assert(k >= 0);
		if (out->put[k] || out->del[k])
			return ST_ERR_DUPLICATE_KEY;
		out->put[k] = true;
	}
	return 0;
}

/* etcd 3.4 checkRequests over the taken path, against the state before the
 * txn: puts (key for ignore_*, then lease) when `puts`, else the ranges'
 * revisions (0 = fine; else within [compactMainRev, rev before the txn]). */
static int txn_precheck(const struct model *m, const struct m_state *pre,
	const struct st_txn *t, bool puts)
{
	bool ok = txn_holds(pre, t);
	const struct st_op *ops = ok ? t->success : t->failure;
	size_t n = ok ? t->success_n : t->failure_n;
	for (size_t i = 0; i < n; i++) {
		int err = 0;
		if (ops[i].type == ST_OP_TXN) {
			err = txn_precheck(m, pre, &ops[i].u.txn, puts);
		} else if (puts && ops[i].type == ST_OP_PUT) {
			const struct st_put *p = &ops[i].u.put;
			int k = key_index(p->key, p->key_len);
			if ((p->ignore_value || p->ignore_lease) && !pre->live[k])
				err = ST_ERR_KEY_NOT_FOUND;
			else if (p->lease && !lease_exists(m, p->lease))
				err = ST_ERR_LEASE_NOT_FOUND;
		} else if (!puts && ops[i].type == ST_OP_RANGE) {
			st_rev rev = ops[i].u.range.revision;
			if (rev != 0 && rev > m->rev)
				err = ST_ERR_FUTURE_REV;
			else if (rev != 0 && rev < first_rev(m))
				err = ST_ERR_COMPACTED;
		}
		if (err)
			return err;
	}
	return 0;
}

static int txn_check(const struct model *m, const struct m_state *pre,
	const struct st_txn *t)
{
	struct ivs a, b;
	int err = txn_shape(m, t, 1, ST_TXN_OPS_MAX);
	if (!err)
		err = check_intervals(t->success, t->success_n, &a);
	if (!err)
		err = check_intervals(t->failure, t->failure_n, &b);
	if (!err)
		err = txn_precheck(m, pre, t, true);
	if (!err)
		err = txn_precheck(m, pre, t, false);
	return err;
}

/* ---- top level ------------------------------------------------------------------ */

struct m_undo { struct m_state cur; size_t recs_n; };

static void apply_write(struct model *m, const struct st_op *op,
	struct arena *a, struct m_resp *out)
{
	struct m_state pre = m->cur;
	struct m_undo undo = { m->cur, m->recs_n };
	struct wctx w = { .m = m, .rev = m->rev + 1, .pre = &pre, .a = a };
	int err = 0;
	if (op->type == ST_OP_TXN)
		err = txn_check(m, &pre, &op->u.txn);
	if (!err)
		err = do_op(&w, op, out);
	if (err) {
		m->cur = undo.cur;
		m->recs_n = undo.recs_n;
		memset(out, 0, sizeof(*out));
		out->err = err;
		return;
	}
	if (w.wrote)
		m->rev++;
}

/* etcd: rev <= compactMainRev (-1 before the first compaction, so
 * compact(0) is allowed once) is compacted. */
static void apply_compact(struct model *m, st_rev rev, struct m_resp *out)
{
	if (rev <= first_rev(m))
		out->err = ST_ERR_COMPACTED;
	else if (rev > m->rev)
		out->err = ST_ERR_FUTURE_REV;
	else {
		if (rev > m->compact)
			m->compact = rev;
		m->compacted_once = true;
		out->type = ST_RESP_COMPACT;
	}
}

static void apply_grant(struct model *m, const struct st_lease_grant *g,
	st_lease_id auto_id, struct m_resp *out)
{
	st_lease_id id = g->id ? g->id : auto_id;
	/* any id (0 = choose), any TTL up to the maximum, recorded as given */
	if (g->ttl_s > ST_LEASE_TTL_S_MAX)
		out->err = ST_ERR_LEASE_TTL_TOO_LARGE;
	else if (g->id && lease_exists(m, g->id))
		out->err = ST_ERR_LEASE_EXISTS;
	if (out->err)
		return;
	assert(id != 0 && !lease_exists(m, id) && m->leases_n < M_LEASES_MAX);
	size_t i = m->leases_n;
	while (i > 0 && m->leases[i - 1].id > id) {
		m->leases[i] = m->leases[i - 1];
		i--;
	}
	m->leases[i].id = id;
	m->leases[i].ttl_s = g->ttl_s;
	m->leases_n++;
	out->type = ST_RESP_LEASE_GRANT;
	out->lease_id = id;
	out->ttl_s = g->ttl_s;
}

/* Revoke deletes the lease's keys in key order in one revision. */
static void apply_revoke(struct model *m, st_lease_id id, struct arena *a,
	struct m_resp *out)
{
	size_t i;
	for (i = 0; i < m->leases_n && m->leases[i].id != id; i++)
		;
	if (i == m->leases_n) {
		out->err = ST_ERR_LEASE_NOT_FOUND;
		return;
	}
	struct wctx w = { .m = m, .rev = m->rev + 1, .a = a };
	for (int k = 0; k < (int)M_KEYS_N; k++)
		if (m->cur.live[k] && m->cur.kv[k].lease == id)
			del_key(&w, k);
	if (w.wrote)
		m->rev++;
	memmove(&m->leases[i], &m->leases[i + 1],
		(m->leases_n - i - 1) * sizeof(m->leases[0]));
	m->leases_n--;
	out->type = ST_RESP_LEASE_REVOKE;
}

void model_apply(struct model *m, const struct st_op *op, st_lease_id auto_id,
	struct arena *a, struct m_resp *out)
{
	memset(out, 0, sizeof(*out));
	m->applied++;
	switch (op->type) {
	case ST_OP_NOOP:
		out->type = ST_RESP_NONE;
		return;
	case ST_OP_RANGE:
		model_range(m, &op->u.range, a, out);
		return;
	case ST_OP_PUT:
	case ST_OP_DELETE_RANGE:
	case ST_OP_TXN:
		apply_write(m, op, a, out);
		return;
	case ST_OP_COMPACT:
		apply_compact(m, op->u.compact.revision, out);
		return;
	case ST_OP_LEASE_GRANT:
		apply_grant(m, &op->u.lease_grant, auto_id, out);
		return;
	case ST_OP_LEASE_REVOKE:
		apply_revoke(m, op->u.lease_revoke.id, a, out);
		return;
	default:
		out->err = ST_ERR_UNKNOWN_OP;
	}
}
