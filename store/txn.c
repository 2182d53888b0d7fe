/*
 * txn.c - etcd v3 transactions: static checks (op budget, nesting, the
 * duplicate-key rule of etcd 3.4's checkIntervals), compare evaluation,
 * the checks etcd makes before applying (puts, then ranges, of the taken
 * path, against the state before the txn) and execution of the chosen
 * branches. All compares along the taken path are evaluated against the
 * state before the txn (etcd 3.4 compareToPath); the ops then run in order,
 * sharing one revision.
 */
#include <assert.h>
#include <string.h>

#include "st_internal.h"

/* Puts and delete spans a branch may write (etcd's checkIntervals sets).
 * An append_rev put is listed by its key with version 1: its key is not
 * known before apply, but two of them with one key resolve to the same
 * key, while a plain put of the same bytes does not collide with it. */
struct st_wset {
	struct st_kv *puts;      /* key/key_len, version = append_rev */
	size_t puts_n, puts_cap;
	struct st_span *dels;
	size_t dels_n, dels_cap;
};

static bool st_wset_has_put(const struct st_wset *s, const uint8_t *k, size_t kl,
	bool append)
{
	for (size_t i = 0; i < s->puts_n; i++)
		if (st_bytes_cmp(s->puts[i].key, s->puts[i].key_len, k, kl) == 0 &&
		    (s->puts[i].version != 0) == append)
			return true;
	return false;
}

static bool st_wset_in_dels(const struct st_wset *s, const uint8_t *k, size_t kl)
{
	for (size_t i = 0; i < s->dels_n; i++)
		if (st_span_has(&s->dels[i], k, kl))
			return true;
	return false;
}

static int st_wset_add_put(struct st_mem **m, struct st_wset *s, const uint8_t *k,
	size_t kl, bool append)
{
	int rc = st_mem_grow(m, (void **)&s->puts, &s->puts_cap, s->puts_n + 1,
		sizeof(*s->puts));
	if (rc == 0)
		s->puts[s->puts_n++] = (struct st_kv){ .key = k, .key_len = kl,
			.version = append };
	return rc;
}

static int st_wset_add_del(struct st_mem **m, struct st_wset *s,
	const struct st_span *span)
{
	int rc = st_mem_grow(m, (void **)&s->dels, &s->dels_cap, s->dels_n + 1,
		sizeof(*s->dels));
	if (rc == 0)
		s->dels[s->dels_n++] = *span;
	return rc;
}

static int st_check_intervals(struct st_mem **m, const struct st_op *ops,
	size_t n, struct st_wset *out);

/* Merges a nested txn's branches into the parent's sets (either branch may
 * run, so a key put in both branches of one nested txn is fine). */
static int st_check_child(struct st_mem **m, const struct st_txn *t,
	struct st_wset *s)
{
	struct st_wset then = { 0 }, els = { 0 };
	int rc = st_check_intervals(m, t->success, t->success_n, &then);
	if (rc == 0)
		rc = st_check_intervals(m, t->failure, t->failure_n, &els);
	for (size_t i = 0; rc == 0 && i < then.puts_n; i++) {
		const struct st_kv *p = &then.puts[i];
		if (st_wset_has_put(s, p->key, p->key_len, p->version) ||
		    st_wset_in_dels(s, p->key, p->key_len))
			return ST_ERR_DUPLICATE_KEY;
		rc = st_wset_add_put(m, s, p->key, p->key_len, p->version);
	}
	size_t before_else = s->puts_n;
	for (size_t i = 0; rc == 0 && i < els.puts_n; i++) {
		const struct st_kv *p = &els.puts[i];
		bool in_then = st_wset_has_put(&then, p->key, p->key_len, p->version);
		struct st_wset older = *s;
		older.puts_n = before_else;
		if ((st_wset_has_put(&older, p->key, p->key_len, p->version) && !in_then) ||
		    st_wset_in_dels(s, p->key, p->key_len))
			return ST_ERR_DUPLICATE_KEY;
		/* a set, as etcd's map: a key of both branches is listed once,
		 * or the grandparent would see it twice and call it a duplicate */
		if (!in_then)
			rc = st_wset_add_put(m, s, p->key, p->key_len, p->version);
	}
	for (size_t i = 0; rc == 0 && i < then.dels_n; i++)
		rc = st_wset_add_del(m, s, &then.dels[i]);
	for (size_t i = 0; rc == 0 && i < els.dels_n; i++)
		rc = st_wset_add_del(m, s, &els.dels[i]);
	return rc;
}

static int st_check_intervals(struct st_mem **m, const struct st_op *ops,
	size_t n, struct st_wset *out)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct st_delete_range *d = &ops[i].u.delete_range;
		struct st_span span;
		if (ops[i].type != ST_OP_DELETE_RANGE)
			continue;
		rc = st_span_make(d->key, d->key_len, d->range_end, d->range_end_len, &span);
		/* etcd 3.4 builds the interval [key, "\0") for a range_end of
		 * "\0": it is empty, so such a delete never conflicts. */
		if (rc == 0 && (span.single || span.end != NULL))
			rc = st_wset_add_del(m, out, &span);
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (ops[i].type == ST_OP_TXN)
			rc = st_check_child(m, &ops[i].u.txn, out);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct st_put *p = &ops[i].u.put;
		if (ops[i].type != ST_OP_PUT)
			continue;
		if (st_wset_has_put(out, p->key, p->key_len, p->append_rev) ||
		    st_wset_in_dels(out, p->key, p->key_len))
			return ST_ERR_DUPLICATE_KEY;
		rc = st_wset_add_put(m, out, p->key, p->key_len, p->append_rev);
	}
	return rc;
}

static int st_compare_validate(const struct st_compare *c)
{
	struct st_span span;
	int rc = st_span_make(c->key, c->key_len, c->range_end, c->range_end_len, &span);
	if (rc != 0)
		return rc;
	if (c->target > ST_CMP_LEASE || c->result > ST_CMP_NOT_EQUAL ||
	    (c->value_len && c->value == NULL))
		return ST_ERR_INVALID;
	return 0;
}

static int st_txn_check_shape(st_store *st, const struct st_txn *t,
	unsigned depth, size_t budget);

static int st_branch_validate(st_store *st, const struct st_op *ops, size_t n,
	unsigned depth, size_t budget)
{
	if (n && ops == NULL)
		return ST_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		uint8_t t = ops[i].type;
		int rc;
		if (t != ST_OP_PUT && t != ST_OP_RANGE && t != ST_OP_DELETE_RANGE &&
		    t != ST_OP_TXN)
			return t >= ST_OP_TYPE_COUNT ? ST_ERR_UNKNOWN_OP : ST_ERR_INVALID;
		if (t == ST_OP_TXN)
			rc = st_txn_check_shape(st, &ops[i].u.txn, depth + 1, budget);
		else
			rc = st_op_validate(st, &ops[i], depth);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* etcd 3.4 checkTxnRequest: a txn's count is max(compares, success ops,
 * failure ops) and must be <= its budget; its nested txns get the budget
 * minus that count. Then compares, success ops and failure ops are
 * validated in that order. */
static int st_txn_check_shape(st_store *st, const struct st_txn *t,
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
	if (t->compares_n && t->compares == NULL)
		return ST_ERR_INVALID;
	for (size_t i = 0; i < t->compares_n; i++) {
		int rc = st_compare_validate(&t->compares[i]);
		if (rc != 0)
			return rc;
	}
	int rc = st_branch_validate(st, t->success, t->success_n, depth,
		budget - count);
	if (rc == 0)
		rc = st_branch_validate(st, t->failure, t->failure_n, depth,
			budget - count);
	return rc;
}

int st_txn_validate(st_store *st, const struct st_txn *t, unsigned depth)
{
	int rc = st_txn_check_shape(st, t, depth, ST_TXN_OPS_MAX);
	if (rc != 0 || depth != 1)
		return rc;
	/* The duplicate rule is checked once, from the top (it recurses). */
	struct st_mem *m = NULL;
	struct st_wset a = { 0 }, b = { 0 };
	rc = st_check_intervals(&m, t->success, t->success_n, &a);
	if (rc == 0)
		rc = st_check_intervals(&m, t->failure, t->failure_n, &b);
	st_mem_free_all(&m);
	return rc;
}

/* Bytes of puts the larger branch may write (recursively): the txn's cost
 * for the quota check. */
static uint64_t st_ops_put_cost(const struct st_op *ops, size_t n)
{
	uint64_t cost = 0;
	for (size_t i = 0; i < n; i++)
		cost += st_op_put_cost(&ops[i]);
	return cost;
}

uint64_t st_op_put_cost(const struct st_op *op)
{
	if (op->type == ST_OP_PUT)
		return op->u.put.key_len + op->u.put.value_len + ST_RECORD_BYTES_OVERHEAD +
			(op->u.put.append_rev ? ST_APPEND_REV_DIGITS : 0);
	if (op->type != ST_OP_TXN)
		return 0;
	uint64_t a = st_ops_put_cost(op->u.txn.success, op->u.txn.success_n);
	uint64_t b = st_ops_put_cost(op->u.txn.failure, op->u.txn.failure_n);
	return a > b ? a : b;
}

/* ---- compares ------------------------------------------------------------ */

struct st_cmp_ctx {
	const struct st_compare *c;
	bool any;
	bool ok;
};

static bool st_compare_kv(const struct st_compare *c, const struct st_rec *r)
{
	int x;
	if (c->target == ST_CMP_VALUE) {
		x = st_bytes_cmp(r->value, r->value_len, c->value, c->value_len);
	} else {
		int64_t v = c->target == ST_CMP_VERSION ? r->version
			: c->target == ST_CMP_CREATE ? r->create
			: c->target == ST_CMP_MOD ? r->mod : r->lease;
		x = v < c->number ? -1 : (v > c->number ? 1 : 0);
	}
	switch (c->result) {
	case ST_CMP_EQUAL: return x == 0;
	case ST_CMP_GREATER: return x > 0;
	case ST_CMP_LESS: return x < 0;
	default: return x != 0;
	}
}

static int st_cmp_visit(void *vctx, const struct st_rec *rec)
{
	struct st_cmp_ctx *c = vctx;
	c->any = true;
	c->ok = st_compare_kv(c->c, rec);
	return c->ok ? 0 : 1;
}

static int st_compare_eval(struct st_wctx *w, const struct st_compare *c, bool *ok)
{
	struct st_span span;
	struct st_cmp_ctx ctx = { c, false, true };
	int rc = st_span_make(c->key, c->key_len, c->range_end, c->range_end_len, &span);
	if (rc == 0)
		rc = st_walk(w->st, w->txn, &span, w->meta->rev, st_cmp_visit, &ctx);
	if (rc != 0)
		return rc;
	if (!ctx.any) {
		struct st_rec zero = { 0 };
		*ok = c->target != ST_CMP_VALUE && st_compare_kv(c, &zero);
	} else {
		*ok = ctx.ok;
	}
	return 0;
}

struct st_path {
	bool *v;
	size_t n, cap, pos;
	struct st_mem *m;
};

/* Decides every txn on the path that will run, in execution order. */
static int st_path_build(struct st_wctx *w, const struct st_txn *t, struct st_path *p)
{
	bool ok = true;
	for (size_t i = 0; ok && i < t->compares_n; i++) {
		int rc = st_compare_eval(w, &t->compares[i], &ok);
		if (rc != 0)
			return rc;
	}
	int rc = st_mem_grow(&p->m, (void **)&p->v, &p->cap, p->n + 1, sizeof(bool));
	if (rc != 0)
		return rc;
	p->v[p->n++] = ok;
	const struct st_op *ops = ok ? t->success : t->failure;
	size_t n = ok ? t->success_n : t->failure_n;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (ops[i].type == ST_OP_TXN)
			rc = st_path_build(w, &ops[i].u.txn, p);
	return rc;
}

/* etcd 3.4 checkRequestPut, against the state before the txn: a key that
 * ignore_* needs must exist, then the lease must exist. */
static int st_precheck_put(struct st_wctx *w, const struct st_put *p)
{
	if (p->ignore_value || p->ignore_lease) {
		struct st_rec rec;
		int rc = st_hist_latest(w->st, w->txn, p->key, p->key_len,
			w->meta->rev, &rec);
		if (rc == ST_ERR_KEY_NOT_FOUND || (rc == 0 && rec.type != ST_EVENT_PUT))
			return ST_ERR_KEY_NOT_FOUND;
		if (rc != 0)
			return rc;
	}
	return p->lease != 0 ? st_lease_exists(w->st, w->txn, p->lease) : 0;
}

/* etcd 3.4 checkRequestRange: revision 0 reads the txn's own view; any
 * other must lie in [compactMainRev, revision before the txn] (so a
 * negative one is "compacted" once the store was ever compacted). */
static int st_precheck_range(const struct st_wctx *w, const struct st_range *r)
{
	if (r->revision == 0)
		return 0;
	if (r->revision > w->meta->rev)
		return ST_ERR_FUTURE_REV;
	if (r->revision < st_meta_first_rev(w->meta))
		return ST_ERR_COMPACTED;
	return 0;
}

/* One pass of etcd's checkRequests over the taken path (pos walks the
 * path like st_txn_exec does): puts when `puts`, else ranges. */
static int st_precheck(struct st_wctx *w, const struct st_txn *t,
	const struct st_path *p, size_t *pos, bool puts)
{
	assert(*pos < p->n);
	bool ok = p->v[(*pos)++];
	const struct st_op *ops = ok ? t->success : t->failure;
	size_t n = ok ? t->success_n : t->failure_n;
	for (size_t i = 0; i < n; i++) {
		int rc = 0;
		if (ops[i].type == ST_OP_TXN)
			rc = st_precheck(w, &ops[i].u.txn, p, pos, puts);
		else if (puts && ops[i].type == ST_OP_PUT)
			rc = st_precheck_put(w, &ops[i].u.put);
		else if (!puts && ops[i].type == ST_OP_RANGE)
			rc = st_precheck_range(w, &ops[i].u.range);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int st_txn_exec(struct st_wctx *w, const struct st_txn *t,
	struct st_path *p, struct st_txn_resp *resp)
{
	assert(p->pos < p->n);
	bool ok = p->v[p->pos++];
	const struct st_op *ops = ok ? t->success : t->failure;
	size_t n = ok ? t->success_n : t->failure_n;
	memset(resp, 0, sizeof(*resp));
	resp->succeeded = ok;
	if (n == 0)
		return 0;
	resp->responses = st_mem_alloc(w->mem, n * sizeof(*resp->responses));
	if (resp->responses == NULL)
		return ST_ERR_NOMEM;
	resp->responses_n = n;
	for (size_t i = 0; i < n; i++) {
		struct st_op_resp *r = &resp->responses[i];
		int rc;
		if (ops[i].type == ST_OP_TXN) {
			memset(r, 0, sizeof(*r));
			r->type = ST_RESP_TXN;
			rc = st_txn_exec(w, &ops[i].u.txn, p, &r->u.txn);
		} else {
			rc = st_exec_op(w, &ops[i], r);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

int st_op_txn(struct st_wctx *w, const struct st_txn *req, struct st_txn_resp *resp)
{
	struct st_op whole = { .type = ST_OP_TXN, .u.txn = *req };
	uint64_t cost = st_op_put_cost(&whole);
	if (cost > 0 && w->meta->size + cost > w->st->opts.quota_bytes)
		return ST_ERR_NOSPACE;
	struct st_path p = { 0 };
	size_t pos_puts = 0, pos_ranges = 0;
	int rc = st_path_build(w, req, &p);
	if (rc == 0)
		rc = st_precheck(w, req, &p, &pos_puts, true);
	if (rc == 0)
		rc = st_precheck(w, req, &p, &pos_ranges, false);
	/* Checked before the first write; an op can still fail while running
	 * (ignore_* on a key deleted earlier in the txn, where etcd 3.4
	 * panics): the caller's nested LMDB txn then drops every write. */
	if (rc == 0) {
		w->in_txn = true;
		rc = st_txn_exec(w, req, &p, resp);
		w->in_txn = false;
	}
	st_mem_free_all(&p.m);
	return rc;
}
