/*
 * gen.c - random op generator of the store's model test, and a printer that
 * makes a failing op readable.
 *
 * Ops draw keys from the model's tiny alphabet so they collide. Every op has
 * at most ONE reason to fail, so the expected error code does not depend on
 * the order in which the store checks things. Txns mostly avoid writing one
 * key twice anywhere in their tree; a few collisions are let through on
 * purpose (always for deletes whose range_end is "\0", which etcd's
 * duplicate check ignores, and sometimes for others: sibling nested txns
 * that put and then delete one key in one revision), and the model's own
 * copy of etcd's checkIntervals decides. Ops that fail inside a txn are
 * only generated where every reading of store.h agrees they run: the
 * success branch of a txn without compares.
 */
#include "model.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Prefixes worth watching; includes one whose end is "\0" (all 0xff). */
static const struct { const char *b; size_t n; } g_prefixes[] = {
	{ "a", 1 }, { "a/", 2 }, { "b", 1 }, { "\xff", 1 }, { "\0", 1 },
	{ "ab", 2 },
};
#define G_PREFIXES_N (sizeof(g_prefixes) / sizeof(g_prefixes[0]))

unsigned model_avoid(void)
{
	static int cached = -1;
	if (cached < 0) {
		const char *e = getenv("STORE_MODEL_AVOID");
		cached = e ? (int)strtoul(e, NULL, 0) : 0;
	}
	return (unsigned)cached;
}

static uint8_t *dup_bytes(struct arena *a, const void *b, size_t n)
{
	uint8_t *p = arena_alloc(a, n ? n : 1);
	memcpy(p, b, n);
	return p;
}

static size_t prefix_end(const uint8_t *k, size_t n, uint8_t *buf)
{
	for (size_t i = n; i > 0; i--)
		if (k[i - 1] < 0xff) {
			memcpy(buf, k, i - 1);
			buf[i - 1] = (uint8_t)(k[i - 1] + 1);
			return i;
		}
	buf[0] = 0;
	return 1;
}

static int rand_key(struct mrng *r) { return (int)mrng_below(r, M_KEYS_N); }

/* A random span: one key, a prefix, from-key, everything, or [k1, k2). */
static void gen_span(struct mrng *r, struct arena *a, const uint8_t **key,
	size_t *key_len, const uint8_t **end, size_t *end_len)
{
	unsigned p = (unsigned)mrng_below(r, 100);
	size_t n;
	const uint8_t *kb = model_key(rand_key(r), &n);
	*end = NULL;
	*end_len = 0;
	if (p < 40) {
		*key = dup_bytes(a, kb, n);
		*key_len = n;
	} else if (p < 65) {
		size_t i = mrng_below(r, G_PREFIXES_N);
		uint8_t *e = arena_alloc(a, g_prefixes[i].n + 1);
		*key = dup_bytes(a, g_prefixes[i].b, g_prefixes[i].n);
		*key_len = g_prefixes[i].n;
		*end_len = prefix_end(*key, *key_len, e);
		*end = e;
	} else if (p < 75) {
		*key = dup_bytes(a, kb, n);
		*key_len = n;
		*end = dup_bytes(a, "\0", 1);
		*end_len = 1;
	} else if (p < 80) {
		*key = dup_bytes(a, "\0", 1);
		*key_len = 1;
		*end = dup_bytes(a, "\0", 1);
		*end_len = 1;
	} else if (p < 95) {
		size_t n2;
		const uint8_t *kb2 = model_key(rand_key(r), &n2);
		*key = dup_bytes(a, kb, n);
		*key_len = n;
		*end = dup_bytes(a, kb2, n2);
		*end_len = n2;
	} else {
		*key = dup_bytes(a, "zz\0q", 4); /* never exists */
		*key_len = 4;
	}
}

static st_rev rand_rev(struct mrng *r, const struct model *m)
{
	st_rev lo = m->compact > 1 ? m->compact : 1;
	return lo + (st_rev)mrng_below(r, (uint64_t)(m->rev - lo + 1));
}

void gen_range(struct mrng *r, const struct model *m, struct arena *a,
	bool top, struct st_range *q)
{
	memset(q, 0, sizeof(*q));
	gen_span(r, a, &q->key, &q->key_len, &q->range_end, &q->range_end_len);
	if (mrng_pct(r, top ? 40 : 20)) /* past reads in txns too */
		q->revision = rand_rev(r, m);
	if (!top && mrng_pct(r, 2)) /* the txn's own new revision: future */
		q->revision = m->rev + 1;
	if (mrng_pct(r, 3)) /* etcd: <= 0 is current (compacted in a txn) */
		q->revision = -1 - (st_rev)mrng_below(r, 3);
	if (mrng_pct(r, 3))
		q->limit = -1;
	if (mrng_pct(r, 3))
		q->max_mod_revision = -1;
	if (mrng_pct(r, 3))
		q->min_create_revision = -2;
	if (mrng_pct(r, 40))
		q->limit = 1 + (int64_t)mrng_below(r, 4);
	if (mrng_pct(r, 40))
		q->sort_target = (uint8_t)mrng_below(r, 5);
	if (mrng_pct(r, 40))
		q->sort_order = (uint8_t)mrng_below(r, 3);
	if (mrng_pct(r, 15))
		q->min_mod_revision = rand_rev(r, m);
	if (mrng_pct(r, 15))
		q->max_mod_revision = rand_rev(r, m);
	if (mrng_pct(r, 15))
		q->min_create_revision = rand_rev(r, m);
	if (mrng_pct(r, 15))
		q->max_create_revision = rand_rev(r, m);
	q->keys_only = mrng_pct(r, 15);
	if (q->keys_only && q->sort_target == ST_SORT_VALUE &&
		(model_avoid() & M_AVOID_SORT_VALUE_KEYS_ONLY))
		q->keys_only = false;
	q->count_only = mrng_pct(r, 10);
	if (!top || !mrng_pct(r, 10))
		return;
	switch (mrng_below(r, 5)) { /* one reason to fail */
	case 0: q->key_len = 0; q->range_end_len = 0; break;
	case 1: q->limit = -1; break;
	case 2: q->revision = m->rev + 1 + (st_rev)mrng_below(r, 3); break;
	case 3: q->revision = m->compact > 1 ? m->compact - 1 : -1; break;
	default: q->sort_order = 7; break;
	}
}

static int rand_live_key(struct mrng *r, const struct model *m)
{
	int start = rand_key(r);
	for (int i = 0; i < (int)M_KEYS_N; i++) {
		int k = (start + i) % (int)M_KEYS_N;
		if (m->cur.live[k])
			return k;
	}
	return -1;
}

static st_lease_id rand_lease(struct mrng *r, const struct model *m)
{
	if (m->leases_n == 0)
		return 0;
	return m->leases[mrng_below(r, m->leases_n)].id;
}

static void gen_value(struct mrng *r, struct arena *a, struct st_put *p)
{
	size_t n = mrng_pct(r, 10) ? 0 : mrng_below(r, M_VAL_BYTES_MAX + 1);
	uint8_t *v = arena_alloc(a, n ? n : 1);
	for (size_t i = 0; i < n; i++) /* few distinct bytes: equal values */
		v[i] = (uint8_t)("xy\0\xff"[mrng_below(r, 4)]);
	p->value = v;
	p->value_len = n;
}

/* A valid put of key k (k must be allowed by the caller). */
static void gen_put_key(struct mrng *r, const struct model *m, struct arena *a,
	int k, struct st_put *p)
{
	size_t n;
	const uint8_t *kb = model_key(k, &n);
	memset(p, 0, sizeof(*p));
	p->key = dup_bytes(a, kb, n);
	p->key_len = n;
	p->prev_kv = mrng_pct(r, 50);
	if (m->cur.live[k] && mrng_pct(r, 12))
		p->ignore_value = true;
	else
		gen_value(r, a, p);
	if (m->cur.live[k] && mrng_pct(r, 12))
		p->ignore_lease = true;
	else if (mrng_pct(r, 35))
		p->lease = rand_lease(r, m);
}

/* Which keys a txn tree already writes (puts are alphabet keys); zdel: by
 * a delete whose range_end is "\0" (no conflict for etcd). */
struct wtrack { bool put[M_KEYS_N]; bool del[M_KEYS_N]; bool zdel[M_KEYS_N]; };

static bool span_hits_put(const struct wtrack *t, const struct st_delete_range *d)
{
	for (int k = 0; k < (int)M_KEYS_N; k++) {
		size_t n;
		const uint8_t *kb = model_key(k, &n);
		if (!t->put[k])
			continue;
		bool hit;
		int c1 = memcmp(kb, d->key, n < d->key_len ? n : d->key_len);
		if (c1 == 0)
			c1 = (n > d->key_len) - (n < d->key_len);
		if (d->range_end_len == 0)
			hit = c1 == 0;
		else if (c1 < 0)
			hit = false;
		else if (d->range_end_len == 1 && d->range_end[0] == 0)
			hit = true;
		else {
			int c2 = memcmp(kb, d->range_end,
				n < d->range_end_len ? n : d->range_end_len);
			if (c2 == 0)
				c2 = (n > d->range_end_len) - (n < d->range_end_len);
			hit = c2 < 0;
		}
		if (hit)
			return true;
	}
	return false;
}

static void mark_del(struct wtrack *t, const struct st_delete_range *d)
{
	bool zero_end = d->range_end_len == 1 && d->range_end[0] == 0;
	for (int k = 0; k < (int)M_KEYS_N; k++) {
		struct wtrack one = { 0 };
		one.put[k] = true;
		if (span_hits_put(&one, d))
			*(zero_end ? &t->zdel[k] : &t->del[k]) = true;
	}
}

static void gen_txn(struct mrng *r, const struct model *m, struct arena *a,
	unsigned depth, struct wtrack *t, struct st_txn *x);

/* One op of a txn branch; false if no collision-free op was found. */
static bool gen_txn_op(struct mrng *r, const struct model *m, struct arena *a,
	unsigned depth, struct wtrack *t, struct st_op *op)
{
	memset(op, 0, sizeof(*op));
	for (int tries = 0; tries < 8; tries++) {
		unsigned p = (unsigned)mrng_below(r, 100);
		if (p < 40) {
			int k = rand_key(r);
			if ((t->put[k] || t->del[k]) && !mrng_pct(r, 5))
				continue;
			/* re-creating a key a "\0" delete removed: often */
			if (t->zdel[k] && !mrng_pct(r, 50))
				continue;
			op->type = ST_OP_PUT;
			gen_put_key(r, m, a, k, &op->u.put);
			t->put[k] = true;
			return true;
		} else if (p < 65) {
			op->type = ST_OP_RANGE;
			gen_range(r, m, a, false, &op->u.range);
			return true;
		} else if (p < 85) {
			struct st_delete_range *d = &op->u.delete_range;
			gen_span(r, a, &d->key, &d->key_len, &d->range_end,
				&d->range_end_len);
			d->prev_kv = mrng_pct(r, 50);
			bool zero_end = d->range_end_len == 1 && d->range_end[0] == 0;
			if (span_hits_put(t, d) && !zero_end && !mrng_pct(r, 5))
				continue;
			op->type = ST_OP_DELETE_RANGE;
			mark_del(t, d);
			return true;
		} else if (depth < 3) {
			op->type = ST_OP_TXN;
			gen_txn(r, m, a, depth + 1, t, &op->u.txn);
			return true;
		}
	}
	return false;
}

static void gen_compare(struct mrng *r, const struct model *m, struct arena *a,
	struct st_compare *c)
{
	memset(c, 0, sizeof(*c));
	c->target = (uint8_t)mrng_below(r, 5);
	c->result = (uint8_t)mrng_below(r, 4);
	if (mrng_pct(r, 75)) {
		size_t n;
		const uint8_t *kb = model_key(rand_key(r), &n);
		c->key = dup_bytes(a, kb, n);
		c->key_len = n;
	} else {
		gen_span(r, a, &c->key, &c->key_len, &c->range_end,
			&c->range_end_len);
	}
	int k = rand_live_key(r, m);
	const struct m_kv *kv = k >= 0 && mrng_pct(r, 60) ? &m->cur.kv[k] : NULL;
	switch (c->target) {
	case ST_CMP_VERSION: c->number = kv ? kv->version : (int64_t)mrng_below(r, 4); break;
	case ST_CMP_CREATE: c->number = kv ? kv->create : rand_rev(r, m); break;
	case ST_CMP_MOD: c->number = kv ? kv->mod : rand_rev(r, m) - (mrng_pct(r, 20) ? 1 : 0); break;
	case ST_CMP_LEASE: c->number = kv ? kv->lease : rand_lease(r, m); break;
	default:
		if (kv) {
			c->value = dup_bytes(a, kv->val, kv->val_len);
			c->value_len = kv->val_len;
		} else {
			struct st_put tmp;
			gen_value(r, a, &tmp);
			c->value = tmp.value;
			c->value_len = tmp.value_len;
		}
	}
}

static const struct st_op *gen_branch(struct mrng *r, const struct model *m,
	struct arena *a, unsigned depth, struct wtrack *t, size_t *n_out)
{
	size_t n = mrng_below(r, depth == 1 ? 5 : 3);
	struct st_op *ops = arena_alloc(a, sizeof(*ops) * (n ? n : 1));
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (gen_txn_op(r, m, a, depth, t, &ops[w]))
			w++;
	*n_out = w;
	return ops;
}

static void gen_txn(struct mrng *r, const struct model *m, struct arena *a,
	unsigned depth, struct wtrack *t, struct st_txn *x)
{
	size_t nc = mrng_below(r, 4);
	struct st_compare *cs = arena_alloc(a, sizeof(*cs) * (nc ? nc : 1));
	for (size_t i = 0; i < nc; i++)
		gen_compare(r, m, a, &cs[i]);
	memset(x, 0, sizeof(*x));
	x->compares = cs;
	x->compares_n = nc;
	x->success = gen_branch(r, m, a, depth, t, &x->success_n);
	x->failure = gen_branch(r, m, a, depth, t, &x->failure_n);
}

/* A flat branch with one key written twice. */
static void gen_dup_branch(struct mrng *r, const struct model *m,
	struct arena *a, struct st_op *ops)
{
	int k = rand_key(r);
	size_t n;
	const uint8_t *kb = model_key(k, &n);
	unsigned kind = (unsigned)mrng_below(r, 3);
	memset(ops, 0, 2 * sizeof(*ops));
	ops[0].type = ops[1].type = ST_OP_PUT;
	gen_put_key(r, m, a, k, &ops[0].u.put);
	gen_put_key(r, m, a, k, &ops[1].u.put);
	if (kind == 0)
		return;
	struct st_op *d = &ops[kind == 1 ? 0 : 1];
	memset(d, 0, sizeof(*d));
	d->type = ST_OP_DELETE_RANGE;
	d->u.delete_range.key = dup_bytes(a, kb, n);
	d->u.delete_range.key_len = n;
	if (mrng_pct(r, 50)) {
		d->u.delete_range.range_end = dup_bytes(a, "\0", 1);
		d->u.delete_range.range_end_len = 1;
	}
}

/* A txn refused for its shape (checked before anything runs): the same
 * duplicate write in both branches, too many ops, too many compares, or
 * nesting one level too deep. */
static void gen_shape_txn(struct mrng *r, const struct model *m,
	struct arena *a, unsigned kind, struct st_txn *x)
{
	if (kind == 0) {
		struct st_op *ops = arena_alloc(a, sizeof(*ops) * 4);
		gen_dup_branch(r, m, a, ops);
		gen_dup_branch(r, m, a, ops + 2);
		x->success = ops;
		x->success_n = 2;
		x->failure = ops + 2;
		x->failure_n = 2;
		if (mrng_pct(r, 50)) {
			x->compares = arena_alloc(a, sizeof(struct st_compare));
			x->compares_n = 1;
			gen_compare(r, m, a, (struct st_compare *)x->compares);
		}
	} else if (kind == 1) { /* more ops than allowed in the failure branch,
				 * or in a nested txn (etcd: budget 128 minus the
				 * parent's count) */
		size_t n = ST_TXN_OPS_MAX + 1;
		struct st_op *ops = arena_alloc(a, sizeof(*ops) * n);
		for (size_t i = 0; i < n; i++) {
			ops[i].type = ST_OP_RANGE;
			gen_range(r, m, a, false, &ops[i].u.range);
		}
		x->failure = ops;
		x->failure_n = n;
		if (mrng_pct(r, 50)) {
			struct st_op *outer = arena_alloc(a, sizeof(*outer) * 2);
			outer[0] = ops[0];
			outer[1].type = ST_OP_TXN;
			outer[1].u.txn.success = ops + 1;
			outer[1].u.txn.success_n = ST_TXN_OPS_MAX - 1;
			x->failure = outer;
			x->failure_n = 2;
		}
	} else if (kind == 2) {
		size_t n = ST_TXN_COMPARES_MAX + 1;
		struct st_compare *cs = arena_alloc(a, sizeof(*cs) * n);
		for (size_t i = 0; i < n; i++)
			gen_compare(r, m, a, &cs[i]);
		x->compares = cs;
		x->compares_n = n;
	} else {
		struct st_txn *cur = x;
		for (unsigned d = 1; d < ST_TXN_DEPTH_MAX + 1; d++) {
			struct st_op *op = arena_alloc(a, sizeof(*op));
			op->type = ST_OP_TXN;
			cur->success = op;
			cur->success_n = 1;
			cur = &op->u.txn;
		}
	}
}

/* A txn that must fail as a whole: for its shape, or because an op fails;
 * the failing op sits in the success branch of a compare-free txn, after
 * some valid ops. */
static void gen_bad_txn(struct mrng *r, const struct model *m, struct arena *a,
	struct st_txn *x)
{
	struct wtrack t = { 0 };
	memset(x, 0, sizeof(*x));
	unsigned kind = (unsigned)mrng_below(r, 7);
	if (kind < 4) {
		gen_shape_txn(r, m, a, kind, x);
		return;
	}
	size_t n_ok = mrng_below(r, 3);
	struct st_op *ops = arena_alloc(a, sizeof(*ops) * (n_ok + 1));
	for (size_t i = 0; i < n_ok; i++)
		if (!gen_txn_op(r, m, a, 3, &t, &ops[i]))
			ops[i].type = ST_OP_RANGE, gen_range(r, m, a, false, &ops[i].u.range);
	struct st_op *bad = &ops[n_ok];
	x->success = ops;
	x->success_n = n_ok + 1;
	if (kind == 4) { /* lease not found */
		int k;
		for (k = 0; k < (int)M_KEYS_N && (t.put[k] || t.del[k]); k++)
			;
		bad->type = ST_OP_PUT;
		gen_put_key(r, m, a, k < (int)M_KEYS_N ? k : 0, &bad->u.put);
		bad->u.put.ignore_lease = false;
		bad->u.put.lease = 1000000 + (st_lease_id)mrng_below(r, 5);
		if (k == (int)M_KEYS_N) /* every key written: make it non-dup */
			x->success_n = 1, ops[0] = *bad;
		return;
	}
	bad->type = ST_OP_RANGE;
	gen_range(r, m, a, false, &bad->u.range);
	if (kind == 5)
		bad->u.range.revision = m->rev + 1 + (st_rev)mrng_below(r, 5);
	else if (m->compacted_once) /* below compactMainRev */
		bad->u.range.revision = m->compact > 1 ? m->compact - 1 : -1;
	else
		bad->u.range.limit = -1; /* fine: the txn runs */
}

static void gen_put_top(struct mrng *r, const struct model *m, struct arena *a,
	struct st_put *p)
{
	gen_put_key(r, m, a, rand_key(r), p);
	if (!mrng_pct(r, 8))
		return;
	switch (mrng_below(r, 5)) { /* one reason to fail */
	case 0:
		p->key_len = 0;
		break;
	case 4:
		if (m->value_bytes_max < 1024 && !p->ignore_value) {
			size_t n = m->value_bytes_max + 1;
			uint8_t *v = arena_alloc(a, n);
			memset(v, 'L', n);
			p->value = v;
			p->value_len = n;
		}
		break;
	case 1:
		p->ignore_lease = false;
		p->lease = 1000000 + (st_lease_id)mrng_below(r, 5);
		break;
	case 2: {
		uint8_t *k = arena_alloc(a, ST_KEY_BYTES_MAX + 1);
		memset(k, 'a', ST_KEY_BYTES_MAX + 1);
		p->key = k;
		p->key_len = ST_KEY_BYTES_MAX + 1;
		break;
	}
	default: { /* ignore_value on a key that does not exist */
		int k = rand_key(r);
		if (m->cur.live[k])
			break;
		size_t n;
		const uint8_t *kb = model_key(k, &n);
		p->key = dup_bytes(a, kb, n);
		p->key_len = n;
		p->ignore_value = true;
		p->value_len = 0;
		p->ignore_lease = false;
		p->lease = 0;
		break;
	}
	}
}

static void gen_lease_op(struct mrng *r, const struct model *m,
	struct st_op *op)
{
	bool grant = m->leases_n == 0 ||
		(m->leases_n < M_LEASES_MAX - 2 && mrng_pct(r, 55));
	if (grant) {
		op->type = ST_OP_LEASE_GRANT;
		op->u.lease_grant.ttl_s = 1 + (int64_t)mrng_below(r, 1000);
		if (mrng_pct(r, 5)) /* etcd's server raises these; the store keeps them */
			op->u.lease_grant.ttl_s = -(int64_t)mrng_below(r, 3);
		if (m->no_auto_lease || mrng_pct(r, 60))
			op->u.lease_grant.id = 1 + (st_lease_id)mrng_below(r, 24);
		if (mrng_pct(r, 10))
			op->u.lease_grant.id = -1 - (st_lease_id)mrng_below(r, 8);
		if (mrng_pct(r, 5)) {
			op->u.lease_grant.id = 5000000 + (st_lease_id)mrng_below(r, 100);
			op->u.lease_grant.ttl_s = ST_LEASE_TTL_S_MAX + 1;
		}
		return;
	}
	op->type = ST_OP_LEASE_REVOKE;
	op->u.lease_revoke.id = mrng_pct(r, 85) ? rand_lease(r, m) :
		2000000 + (st_lease_id)mrng_below(r, 5);
}

static void gen_compact(struct mrng *r, const struct model *m, struct st_op *op)
{
	op->type = ST_OP_COMPACT;
	unsigned p = (unsigned)mrng_below(r, 10);
	/* valid ones keep a window of 10..130 revisions so that reads of the
	 * past and compacted errors both stay frequent */
	st_rev keep = m->rev - 10 - (st_rev)mrng_below(r, 120);
	if (p < 7 && keep > m->compact)
		op->u.compact.revision = keep;
	else if (p < 8 && m->compact < m->rev)
		op->u.compact.revision = m->rev; /* everything */
	else if (p < 9 && m->compact > 0)
		op->u.compact.revision = 1 + (st_rev)mrng_below(r,
			(uint64_t)m->compact);
	else if (p < 9) /* etcd: allowed once before the first compaction */
		op->u.compact.revision = mrng_pct(r, 70) ? 0 : -1;
	else
		op->u.compact.revision = m->rev + 1 + (st_rev)mrng_below(r, 3);
}

void gen_op(struct mrng *r, const struct model *m, struct arena *a,
	struct st_op *op)
{
	memset(op, 0, sizeof(*op));
	unsigned p = (unsigned)mrng_below(r, 100);
	if (p < 30) {
		op->type = ST_OP_PUT;
		gen_put_top(r, m, a, &op->u.put);
	} else if (p < 42) {
		struct st_delete_range *d = &op->u.delete_range;
		op->type = ST_OP_DELETE_RANGE;
		gen_span(r, a, &d->key, &d->key_len, &d->range_end,
			&d->range_end_len);
		d->prev_kv = mrng_pct(r, 50);
		if (mrng_pct(r, 3))
			d->key_len = 0, d->range_end_len = 0;
	} else if (p < 70) {
		struct wtrack t = { 0 };
		op->type = ST_OP_TXN;
		if (mrng_pct(r, 12))
			gen_bad_txn(r, m, a, &op->u.txn);
		else
			gen_txn(r, m, a, 1, &t, &op->u.txn);
	} else if (p < 78) {
		op->type = ST_OP_RANGE;
		gen_range(r, m, a, true, &op->u.range);
	} else if (p < 80) {
		gen_compact(r, m, op);
	} else if (p < 97) {
		gen_lease_op(r, m, op);
	} else if (p < 99) {
		op->type = ST_OP_NOOP;
	} else {
		op->type = (uint8_t)(ST_OP_TYPE_COUNT + mrng_below(r, 100));
	}
}

/* ---- printing ---------------------------------------------------------------- */

static void dump_bytes(FILE *f, const uint8_t *b, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n && i < 64; i++) {
		if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\')
			fputc(b[i], f);
		else
			fprintf(f, "\\x%02x", b[i]);
	}
	fputs(n > 64 ? "...\"" : "\"", f);
}

static void dump_span(FILE *f, const uint8_t *k, size_t kn, const uint8_t *e,
	size_t en)
{
	dump_bytes(f, k, kn);
	if (en) {
		fputs("..", f);
		dump_bytes(f, e, en);
	}
}

static void dump_txn(FILE *f, const struct st_txn *t, int indent)
{
	fprintf(f, "TXN compares=%zu\n", t->compares_n);
	for (size_t i = 0; i < t->compares_n && i < 8; i++) {
		const struct st_compare *c = &t->compares[i];
		fprintf(f, "%*s cmp target=%u result=%u ", indent, "", c->target,
			c->result);
		dump_span(f, c->key, c->key_len, c->range_end, c->range_end_len);
		fprintf(f, " number=%" PRId64 " value=", c->number);
		dump_bytes(f, c->value, c->value_len);
		fputc('\n', f);
	}
	for (size_t i = 0; i < t->success_n && i < 8; i++) {
		fprintf(f, "%*s then[%zu] ", indent, "", i);
		dump_op(f, &t->success[i], indent + 2);
	}
	for (size_t i = 0; i < t->failure_n && i < 8; i++) {
		fprintf(f, "%*s else[%zu] ", indent, "", i);
		dump_op(f, &t->failure[i], indent + 2);
	}
	if (t->success_n > 8 || t->failure_n > 8)
		fprintf(f, "%*s (then %zu ops, else %zu ops)\n", indent, "",
			t->success_n, t->failure_n);
}

static void dump_range(FILE *f, const struct st_range *q)
{
	fputs("RANGE ", f);
	dump_span(f, q->key, q->key_len, q->range_end, q->range_end_len);
	fprintf(f, " rev=%" PRId64 " limit=%" PRId64 " sort=%u/%u keys_only=%d"
		" count_only=%d mod=[%" PRId64 ",%" PRId64 "] create=[%" PRId64
		",%" PRId64 "]\n", q->revision, q->limit, q->sort_target,
		q->sort_order, q->keys_only, q->count_only, q->min_mod_revision,
		q->max_mod_revision, q->min_create_revision,
		q->max_create_revision);
}

void dump_op(FILE *f, const struct st_op *op, int indent)
{
	switch (op->type) {
	case ST_OP_PUT: {
		const struct st_put *p = &op->u.put;
		fputs("PUT ", f);
		dump_bytes(f, p->key, p->key_len);
		fputs(" = ", f);
		dump_bytes(f, p->value, p->value_len);
		fprintf(f, " lease=%" PRId64 " prev_kv=%d ignore_value=%d"
			" ignore_lease=%d\n", p->lease, p->prev_kv, p->ignore_value,
			p->ignore_lease);
		break;
	}
	case ST_OP_RANGE:
		dump_range(f, &op->u.range);
		break;
	case ST_OP_DELETE_RANGE:
		fputs("DELETE ", f);
		dump_span(f, op->u.delete_range.key, op->u.delete_range.key_len,
			op->u.delete_range.range_end,
			op->u.delete_range.range_end_len);
		fprintf(f, " prev_kv=%d\n", op->u.delete_range.prev_kv);
		break;
	case ST_OP_TXN:
		dump_txn(f, &op->u.txn, indent);
		break;
	case ST_OP_COMPACT:
		fprintf(f, "COMPACT %" PRId64 "\n", op->u.compact.revision);
		break;
	case ST_OP_LEASE_GRANT:
		fprintf(f, "LEASE_GRANT id=%" PRId64 " ttl=%" PRId64 "\n",
			op->u.lease_grant.id, op->u.lease_grant.ttl_s);
		break;
	case ST_OP_LEASE_REVOKE:
		fprintf(f, "LEASE_REVOKE id=%" PRId64 "\n", op->u.lease_revoke.id);
		break;
	default:
		fprintf(f, "NOOP (type %u)\n", op->type);
	}
}
