/*
 * check.c - compares what the store answers with what the reference model
 * expects: replies of applied ops, direct reads, the event history (paged
 * through st_events), leases and status. The first difference is written
 * into a struct check; the runner adds the seed, the step and the op.
 */
#include "model.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

static bool fail(struct check *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool fail(struct check *c, const char *fmt, ...)
{
	if (c->failed)
		return false;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	c->failed = true;
	return false;
}

#define EXPECT_EQ(c, what, field, got, exp) \
	((int64_t)(got) == (int64_t)(exp) ? true : \
	 fail((c), "%s: %s = %" PRId64 ", expected %" PRId64, (what), (field), \
		(int64_t)(got), (int64_t)(exp)))

static bool check_kv(struct check *c, const char *what, const struct st_kv *g,
	const struct m_kv *e, bool keys_only)
{
	size_t kl;
	const uint8_t *kb = model_key(e->key, &kl);
	if (g->key_len != kl || memcmp(g->key, kb, kl) != 0)
		return fail(c, "%s: kv key differs (got %zu bytes, expected key #%d)",
			what, g->key_len, e->key);
	size_t vl = keys_only ? 0 : e->val_len;
	if (g->value_len != vl || (vl && memcmp(g->value, e->val, vl) != 0))
		return fail(c, "%s: value of key #%d differs (got %zu bytes, "
			"expected %zu)", what, e->key, g->value_len, vl);
	return EXPECT_EQ(c, what, "create_revision", g->create_revision, e->create) &&
		EXPECT_EQ(c, what, "mod_revision", g->mod_revision, e->mod) &&
		EXPECT_EQ(c, what, "version", g->version, e->version) &&
		EXPECT_EQ(c, what, "lease", g->lease, e->lease);
}

static bool check_kvs(struct check *c, const char *what, const struct st_kv *g,
	size_t gn, const struct m_kv *e, size_t en, bool keys_only)
{
	if (!EXPECT_EQ(c, what, "kvs count", gn, en))
		return false;
	for (size_t i = 0; i < gn; i++) {
		char w[256];
		snprintf(w, sizeof(w), "%s kvs[%zu]", what, i);
		if (!check_kv(c, w, &g[i], &e[i], keys_only))
			return false;
	}
	return true;
}

static bool check_op_resp(struct check *c, const char *what,
	const struct st_op_resp *g, const struct m_resp *e)
{
	if (!EXPECT_EQ(c, what, "resp type", g->type, e->type))
		return false;
	switch (e->type) {
	case ST_RESP_PUT:
		if (!EXPECT_EQ(c, what, "has_prev_kv", g->u.put.has_prev_kv, e->has_prev))
			return false;
		return !e->has_prev || check_kv(c, what, &g->u.put.prev_kv, &e->prev, false);
	case ST_RESP_RANGE:
		return EXPECT_EQ(c, what, "count", g->u.range.count, e->count) &&
			EXPECT_EQ(c, what, "more", g->u.range.more, e->more) &&
			check_kvs(c, what, g->u.range.kvs, g->u.range.kvs_n, e->kvs,
				e->kvs_n, e->keys_only);
	case ST_RESP_DELETE_RANGE:
		return EXPECT_EQ(c, what, "deleted", g->u.delete_range.deleted, e->deleted) &&
			check_kvs(c, what, g->u.delete_range.prev_kvs,
				g->u.delete_range.prev_kvs_n, e->kvs, e->kvs_n, false);
	case ST_RESP_TXN:
		if (!EXPECT_EQ(c, what, "succeeded", g->u.txn.succeeded, e->succeeded) ||
			!EXPECT_EQ(c, what, "responses_n", g->u.txn.responses_n, e->subs_n))
			return false;
		for (size_t i = 0; i < e->subs_n; i++) {
			char w[256];
			snprintf(w, sizeof(w), "%s/%s[%zu]", what,
				e->succeeded ? "then" : "else", i);
			if (!check_op_resp(c, w, &g->u.txn.responses[i], &e->subs[i]))
				return false;
		}
		return true;
	case ST_RESP_LEASE_GRANT:
		return EXPECT_EQ(c, what, "lease id", g->u.lease_grant.id, e->lease_id) &&
			EXPECT_EQ(c, what, "ttl", g->u.lease_grant.ttl_s, e->ttl_s);
	default:
		return true;
	}
}

bool check_resp(struct check *c, const char *what, const struct st_result *got,
	const struct m_resp *exp, const struct model *m)
{
	if (got->err != exp->err)
		return fail(c, "%s: err = %d (%s), expected %d (%s)", what, got->err,
			st_strerror(got->err), exp->err, st_strerror(exp->err));
	if (got->err && (!got->msg || strcmp(got->msg, st_strerror(got->err))))
		return fail(c, "%s: msg is not st_strerror(err)", what);
	/* "store revision after the op": an applied op that failed leaves it
	 * unchanged (a rejected direct read may report 0: nothing was read) */
	if ((!got->err || c->applying) &&
		!EXPECT_EQ(c, what, "revision", got->revision, m->rev))
		return false;
	if (got->err == ST_ERR_COMPACTED)
		return EXPECT_EQ(c, what, "compact_revision", got->compact_revision,
			m->compact);
	if (got->err)
		return true;
	return check_op_resp(c, what, &got->resp, exp);
}

/* ---- store vs store ---------------------------------------------------------- */

static bool same_kv(const struct st_kv *x, const struct st_kv *y)
{
	return x->key_len == y->key_len && !memcmp(x->key, y->key, x->key_len) &&
		x->value_len == y->value_len &&
		(!x->value_len || !memcmp(x->value, y->value, x->value_len)) &&
		x->create_revision == y->create_revision &&
		x->mod_revision == y->mod_revision && x->version == y->version &&
		x->lease == y->lease;
}

static bool same_kvs(const struct st_kv *x, size_t xn, const struct st_kv *y,
	size_t yn)
{
	if (xn != yn)
		return false;
	for (size_t i = 0; i < xn; i++)
		if (!same_kv(&x[i], &y[i]))
			return false;
	return true;
}

static bool same_op_resp(const struct st_op_resp *x, const struct st_op_resp *y)
{
	if (x->type != y->type)
		return false;
	switch (x->type) {
	case ST_RESP_PUT:
		return x->u.put.has_prev_kv == y->u.put.has_prev_kv &&
			(!x->u.put.has_prev_kv || same_kv(&x->u.put.prev_kv, &y->u.put.prev_kv));
	case ST_RESP_RANGE:
		return x->u.range.count == y->u.range.count &&
			x->u.range.more == y->u.range.more &&
			same_kvs(x->u.range.kvs, x->u.range.kvs_n, y->u.range.kvs,
				y->u.range.kvs_n);
	case ST_RESP_DELETE_RANGE:
		return x->u.delete_range.deleted == y->u.delete_range.deleted &&
			same_kvs(x->u.delete_range.prev_kvs, x->u.delete_range.prev_kvs_n,
				y->u.delete_range.prev_kvs, y->u.delete_range.prev_kvs_n);
	case ST_RESP_TXN:
		if (x->u.txn.succeeded != y->u.txn.succeeded ||
			x->u.txn.responses_n != y->u.txn.responses_n)
			return false;
		for (size_t i = 0; i < x->u.txn.responses_n; i++)
			if (!same_op_resp(&x->u.txn.responses[i], &y->u.txn.responses[i]))
				return false;
		return true;
	case ST_RESP_LEASE_GRANT:
		return x->u.lease_grant.id == y->u.lease_grant.id &&
			x->u.lease_grant.ttl_s == y->u.lease_grant.ttl_s;
	default:
		return true;
	}
}

bool check_same_result(struct check *c, const char *what,
	const struct st_result *x, const struct st_result *y)
{
	if (x->err != y->err || x->revision != y->revision ||
		x->applied != y->applied ||
		(x->err == ST_ERR_COMPACTED &&
			x->compact_revision != y->compact_revision))
		return fail(c, "%s: stores differ: err %d/%d revision %" PRId64
			"/%" PRId64 " applied %d/%d", what, x->err, y->err, x->revision,
			y->revision, x->applied, y->applied);
	if (!x->err && !same_op_resp(&x->resp, &y->resp))
		return fail(c, "%s: stores' replies differ", what);
	return true;
}

/* ---- events ------------------------------------------------------------------------ */

static bool rec_in_span(const struct m_rec *rec, const uint8_t *key,
	size_t key_len, const uint8_t *end, size_t end_len)
{
	size_t n;
	const uint8_t *kb = model_key(rec->kv.key, &n);
	size_t m1 = n < key_len ? n : key_len;
	int c1 = m1 ? memcmp(kb, key, m1) : 0;
	if (c1 == 0)
		c1 = (n > key_len) - (n < key_len);
	if (end_len == 0)
		return c1 == 0;
	if (c1 < 0)
		return false;
	if (end_len == 1 && end[0] == 0)
		return true;
	size_t m2 = n < end_len ? n : end_len;
	int c2 = m2 ? memcmp(kb, end, m2) : 0;
	if (c2 == 0)
		c2 = (n > end_len) - (n < end_len);
	return c2 < 0;
}

static bool check_event(struct check *c, const char *what,
	const struct st_event *ev, const struct model *m, const struct m_rec *rec,
	bool prev_kv)
{
	if (!EXPECT_EQ(c, what, "event type", ev->type,
			rec->del ? ST_EVENT_DELETE : ST_EVENT_PUT))
		return false;
	if (!check_kv(c, what, &ev->kv, &rec->kv, false))
		return false;
	/* etcd's watch: prev_kv is the key at rev - 1, and a PUT that creates
	 * the key has none */
	const struct m_rec *prev = rec->prev >= 0 ? &m->recs[rec->prev] : NULL;
	bool creates = !rec->del && rec->kv.create == rec->kv.mod;
	bool has_prev = prev_kv && prev && !prev->del && !creates;
	if (!EXPECT_EQ(c, what, "event has_prev_kv", ev->has_prev_kv, has_prev))
		return false;
	return !has_prev || check_kv(c, what, &ev->prev_kv, &prev->kv, false);
}

static int events_expect_err(const struct model *m, st_rev from_rev)
{
	if (from_rev != 0 && from_rev <= m->compact)
		return ST_ERR_COMPACTED;
	if (from_rev > m->rev + 1)
		return ST_ERR_FUTURE_REV;
	return 0;
}

/* Checks one page's shape; returns false on a violation. */
static bool check_page(struct check *c, const struct st_events_resp *p,
	size_t events_max)
{
	if (p->events_n > (events_max ? events_max : ST_EVENTS_MAX_DEFAULT))
		return fail(c, "events: page of %zu events > events_max %zu",
			p->events_n, events_max);
	if (p->more && p->events_n == 0)
		return fail(c, "events: empty page with more = true");
	if (!p->events_n || !p->more)
		return true;
	st_rev last = p->events[p->events_n - 1].kv.mod_revision;
	/* next_sub is a position within next_rev among ALL its events, so it
	 * may be > 0 at a revision boundary of a key-range read. */
	if (p->split_revision ? (p->next_sub == 0 || p->next_rev != last) :
		p->next_rev <= last)
		return fail(c, "events: bad continuation split=%d next=(%" PRId64
			",%u) last rev %" PRId64, p->split_revision, p->next_rev,
			p->next_sub, last);
	return true;
}

static bool events_pages(struct check *c, st_store *st, const struct model *m,
	struct st_events_req *rq, bool prev_kv);

bool check_events(struct check *c, st_store *st, const struct model *m,
	const uint8_t *key, size_t key_len, const uint8_t *end, size_t end_len,
	st_rev from_rev, size_t events_max, size_t bytes_max, bool prev_kv)
{
	struct st_events_req req = { .key = key, .key_len = key_len,
		.range_end = end, .range_end_len = end_len, .from_rev = from_rev,
		.events_max = events_max, .bytes_max = bytes_max, .prev_kv = prev_kv };
	bool ok_all = events_pages(c, st, m, &req, prev_kv);
	if (!ok_all) {
		size_t l = strlen(c->why);
		snprintf(c->why + l, sizeof(c->why) - l, " [st_events key len %zu "
			"end len %zu (end[0]=%d) from_rev %" PRId64 " events_max %zu "
			"bytes_max %zu prev_kv %d]", key_len, end_len,
			end_len ? end[0] : -1, from_rev, events_max, bytes_max, prev_kv);
	}
	return ok_all;
}

static bool events_pages(struct check *c, st_store *st, const struct model *m,
	struct st_events_req *rq, bool prev_kv)
{
	struct st_events_req req = *rq;
	const uint8_t *key = req.key, *end = req.range_end;
	size_t key_len = req.key_len, end_len = req.range_end_len;
	st_rev from_rev = req.from_rev;
	size_t events_max = req.events_max;
	int exp_err = events_expect_err(m, from_rev);
	st_rev eff = from_rev ? from_rev : m->compact + 1;
	size_t pos = 0;
	while (pos < m->recs_n && m->recs[pos].rev < eff)
		pos++;
	for (size_t page = 0; page < m->recs_n + 4; page++) {
		struct st_result res = { 0 };
		int rc = st_events(st, &req, &res);
		char what[128];
		snprintf(what, sizeof(what), "st_events(from %" PRId64 ", page %zu)",
			req.from_rev, page);
		bool ok = EXPECT_EQ(c, what, "return code", rc, res.err) &&
			EXPECT_EQ(c, what, "err", res.err, exp_err);
		if (ok && exp_err == ST_ERR_COMPACTED)
			ok = EXPECT_EQ(c, what, "compact_revision", res.compact_revision,
				m->compact);
		if (!ok || exp_err) {
			st_result_free(&res);
			return ok;
		}
		const struct st_events_resp *p = &res.resp.u.events;
		ok = EXPECT_EQ(c, what, "resp type", res.resp.type, ST_RESP_EVENTS) &&
			EXPECT_EQ(c, what, "revision", res.revision, m->rev) &&
			EXPECT_EQ(c, what, "compact_revision", res.compact_revision,
				m->compact) &&
			check_page(c, p, events_max);
		for (size_t i = 0; ok && i < p->events_n; i++) {
			while (pos < m->recs_n && !rec_in_span(&m->recs[pos], key,
					key_len, end, end_len))
				pos++;
			if (pos == m->recs_n) {
				ok = fail(c, "%s: more events than the model has", what);
				break;
			}
			char w[320];
			snprintf(w, sizeof(w), "%s event[%zu] (model rev %" PRId64 ")",
				what, i, m->recs[pos].rev);
			ok = check_event(c, w, &p->events[i], m, &m->recs[pos], prev_kv);
			pos++;
		}
		bool more = p->more;
		req.from_rev = p->next_rev;
		req.from_sub = p->next_sub;
		st_result_free(&res);
		if (!ok)
			return false;
		if (!more)
			break;
	}
	while (pos < m->recs_n && !rec_in_span(&m->recs[pos], key, key_len, end,
			end_len))
		pos++;
	if (pos != m->recs_n)
		return fail(c, "st_events(from %" PRId64 "): missing events from "
			"model rev %" PRId64, from_rev, m->recs[pos].rev);
	return true;
}

/* ---- leases, status, contents ------------------------------------------------ */

static bool check_leases(struct check *c, st_store *st, const struct model *m)
{
	struct st_result res = { 0 };
	int rc = st_lease_list(st, &res);
	bool ok = EXPECT_EQ(c, "st_lease_list", "rc", rc, 0) &&
		EXPECT_EQ(c, "st_lease_list", "n", res.resp.u.lease_list.leases_n,
			m->leases_n);
	for (size_t i = 0; ok && i < m->leases_n; i++)
		ok = EXPECT_EQ(c, "st_lease_list", "id",
				res.resp.u.lease_list.leases[i].id, m->leases[i].id) &&
			EXPECT_EQ(c, "st_lease_list", "ttl",
				res.resp.u.lease_list.leases[i].ttl_s, m->leases[i].ttl_s);
	st_result_free(&res);
	for (size_t i = 0; ok && i < m->leases_n; i++) {
		st_lease_id id = m->leases[i].id;
		rc = st_lease_ttl(st, id, true, &res);
		const struct st_lease_ttl_resp *t = &res.resp.u.lease_ttl;
		ok = EXPECT_EQ(c, "st_lease_ttl", "rc", rc, 0) &&
			EXPECT_EQ(c, "st_lease_ttl", "id", t->id, id) &&
			EXPECT_EQ(c, "st_lease_ttl", "granted", t->granted_ttl_s,
				m->leases[i].ttl_s);
		size_t j = 0;
		for (int k = 0; ok && k < (int)M_KEYS_N; k++) {
			if (!m->cur.live[k] || m->cur.kv[k].lease != id)
				continue;
			size_t kl;
			const uint8_t *kb = model_key(k, &kl);
			if (j >= t->keys_n || t->keys[j].key_len != kl ||
				memcmp(t->keys[j].key, kb, kl))
				ok = fail(c, "st_lease_ttl(%" PRId64 "): key %zu should be "
					"key #%d", id, j, k);
			j++;
		}
		if (ok)
			ok = EXPECT_EQ(c, "st_lease_ttl", "keys_n", t->keys_n, j);
		st_result_free(&res);
	}
	return ok;
}

static bool check_status(struct check *c, st_store *st, const struct model *m)
{
	struct st_status s;
	int rc = st_status(st, &s);
	return EXPECT_EQ(c, "st_status", "rc", rc, 0) &&
		EXPECT_EQ(c, "st_status", "revision", s.revision, m->rev) &&
		EXPECT_EQ(c, "st_status", "compact_revision", s.compact_revision,
			m->compact) &&
		EXPECT_EQ(c, "st_status", "applied_index", s.applied_index, m->applied) &&
		EXPECT_EQ(c, "st_status", "keys", s.keys, model_live_keys(m)) &&
		EXPECT_EQ(c, "st_status", "leases", s.leases, m->leases_n) &&
		EXPECT_EQ(c, "st_status", "logical_bytes", s.logical_bytes,
			model_logical_bytes(m)) &&
		EXPECT_EQ(c, "st_applied_index", "value", st_applied_index(st),
			m->applied);
}

static bool check_range_at(struct check *c, st_store *st, struct model *m,
	const struct st_range *q, struct arena *a, const char *what)
{
	struct st_result res = { 0 };
	struct m_resp exp;
	size_t mark = a->used;
	model_range(m, q, a, &exp);
	int rc = st_range(st, q, &res);
	bool ok = EXPECT_EQ(c, what, "return code", rc, res.err) &&
		check_resp(c, what, &res, &exp, m);
	if (ok && !res.err)
		ok = EXPECT_EQ(c, what, "compact_revision on a read",
			res.compact_revision, m->compact);
	st_result_free(&res);
	a->used = mark;
	return ok;
}

bool check_full(struct check *c, st_store *st, const struct model *cm,
	struct mrng *r, bool all_revs)
{
	struct model *m = (struct model *)cm; /* model_range does not change it */
	struct arena a;
	arena_init(&a, 1 << 16);
	bool ok = check_status(c, st, m) && check_leases(c, st, m);
	struct st_range q = { .key = (const uint8_t *)"\0", .key_len = 1,
		.range_end = (const uint8_t *)"\0", .range_end_len = 1 };
	st_rev lo = m->compact > 1 ? m->compact : 1;
	for (st_rev rev = m->rev; ok && rev >= lo; rev--) {
		if (!all_revs && rev != m->rev && rev != lo && !mrng_pct(r, 3))
			continue;
		char what[96];
		snprintf(what, sizeof(what), "full range at rev %" PRId64, rev);
		q.revision = rev == m->rev ? 0 : rev;
		ok = check_range_at(c, st, m, &q, &a, what);
	}
	if (ok)
		ok = check_events(c, st, m, q.key, 1, q.range_end, 1, 0, 0, 0, true);
	if (ok)
		ok = check_events(c, st, m, q.key, 1, q.range_end, 1, 0, 7, 0, false);
	arena_fini(&a);
	return ok;
}

/* Appends the op's printed form to the failure text. */
static void append_op(struct check *c, const struct st_op *op)
{
	size_t l = strlen(c->why);
	FILE *f = fmemopen(c->why + l, sizeof(c->why) - l, "w");
	if (!f)
		return;
	fputs(" [request: ", f);
	dump_op(f, op, 2);
	fputs("]", f);
	fclose(f);
}

bool check_random_read(struct check *c, st_store *st, struct model *m,
	struct mrng *r, struct arena *a)
{
	unsigned p = (unsigned)mrng_below(r, 100);
	if (p < 50) {
		struct st_op op = { .type = ST_OP_RANGE };
		gen_range(r, m, a, true, &op.u.range);
		bool ok = check_range_at(c, st, m, &op.u.range, a, "st_range");
		if (!ok)
			append_op(c, &op);
		return ok;
	}
	if (p < 85) {
		struct st_range q; /* only for its span */
		gen_range(r, m, a, false, &q);
		st_rev lo = m->compact > 2 ? m->compact - 2 : 0;
		st_rev from = lo + (st_rev)mrng_below(r, (uint64_t)(m->rev + 3 - lo));
		static const size_t maxes[] = { 0, 1, 2, 3, 5, 1000 };
		static const size_t bytes[] = { 0, 0, 0, 1, 40, 200 };
		return check_events(c, st, m, q.key, q.key_len, q.range_end,
			q.range_end_len, from, maxes[mrng_below(r, 6)],
			bytes[mrng_below(r, 6)], mrng_pct(r, 50));
	}
	if (p < 92)
		return check_leases(c, st, m);
	st_lease_id id = 1000000 + (st_lease_id)mrng_below(r, 3);
	struct st_result res = { 0 };
	int rc = st_lease_ttl(st, id, false, &res);
	bool ok = EXPECT_EQ(c, "st_lease_ttl(unknown)", "rc", rc,
		ST_ERR_LEASE_NOT_FOUND) &&
		EXPECT_EQ(c, "st_lease_ttl(unknown)", "err", res.err,
			ST_ERR_LEASE_NOT_FOUND);
	st_result_free(&res);
	return ok;
}
