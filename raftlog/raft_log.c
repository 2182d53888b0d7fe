/*
 * raft_log.c - the Raft log as the core sees it: the persisted prefix read
 * through the application's rl_storage, plus the unstable tail the core holds
 * until rl_advance() reports it persisted, plus a received snapshot that is
 * not yet installed. All entry data handed out is a private copy so that the
 * caller's lifetime never depends on later truncations.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

int rl_ent_vec_push_copy(struct rl_ent_vec *ev, const struct rl_entry *e)
{
	if (ev->n == ev->cap) {
		size_t cap = ev->cap ? ev->cap * 2 : 8;
		struct rl_entry *v = realloc(ev->v, cap * sizeof(*v));
		if (v == NULL)
			return RL_ERR_NOMEM;
		ev->v = v;
		ev->cap = cap;
	}
	struct rl_entry c = *e;
	c.data = NULL;
	if (e->data_len > 0) {
		c.data = malloc(e->data_len);
		if (c.data == NULL)
			return RL_ERR_NOMEM;
		memcpy(c.data, e->data, e->data_len);
	}
	ev->v[ev->n++] = c;
	ev->bytes += e->data_len;
	return RL_OK;
}

void rl_entries_free(struct rl_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].data);
	free(v);
}

void rl_ent_vec_free(struct rl_ent_vec *ev)
{
	rl_entries_free(ev->v, ev->n);
	memset(ev, 0, sizeof(*ev));
}

void rl_msg_free_entries(struct rl_msg *m)
{
	rl_entries_free(m->entries, m->entries_n);
	m->entries = NULL;
	m->entries_n = 0;
}

void rl_msg_vec_free(struct rl_msg_vec *mv)
{
	for (size_t i = 0; i < mv->n; i++)
		rl_msg_free_entries(&mv->v[i]);
	free(mv->v);
	memset(mv, 0, sizeof(*mv));
}

int rl_log_init(struct rl_log *l, const struct rl_storage *st)
{
	memset(l, 0, sizeof(*l));
	l->st = st;
	rl_index last;
	int rc = st->last_index(st->ctx, &last);
	if (rc != RL_OK)
		return rc;
	l->u_off = last + 1;
	return RL_OK;
}

void rl_log_free(struct rl_log *l)
{
	rl_ent_vec_free(&l->u);
}

rl_index rl_log_last(const struct rl_log *l)
{
	if (l->u.n > 0 || l->has_snap)
		return l->u_off + l->u.n - 1;
	/* storage may still hold a suffix we truncated but have not yet had
	 * persisted; entries >= u_off are never read from it */
	return l->u_off - 1;
}

rl_index rl_log_first(const struct rl_log *l)
{
	if (l->has_snap)
		return l->snap.index + 1;
	rl_index f = 1;
	if (l->st->first_index(l->st->ctx, &f) != RL_OK)
		return 1;
	return f;
}

int rl_log_term(const struct rl_log *l, rl_index i, rl_term *out)
{
	if (i >= l->u_off) {
		if (i - l->u_off >= l->u.n)
			return RL_ERR_UNAVAILABLE;
		*out = l->u.v[i - l->u_off].term;
		return RL_OK;
	}
	if (l->has_snap) {
		if (i == l->snap.index) {
			*out = l->snap.term;
			return RL_OK;
		}
		return RL_ERR_COMPACTED;
	}
	/* storage answers term(first - 1) from its snapshot meta, and
	 * term(0) = 0 for a log that was never compacted */
	return l->st->term(l->st->ctx, i, out);
}

rl_term rl_log_term_or0(const struct rl_log *l, rl_index i)
{
	rl_term t = 0;
	if (rl_log_term(l, i, &t) != RL_OK)
		return 0;
	return t;
}

rl_term rl_log_last_term(const struct rl_log *l)
{
	return rl_log_term_or0(l, rl_log_last(l));
}

bool rl_log_match(const struct rl_log *l, rl_index i, rl_term t)
{
	rl_term have;
	if (rl_log_term(l, i, &have) != RL_OK)
		return false;
	return have == t;
}

/* Election restriction, paper §5.4.1: a candidate's log is at least as
 * up-to-date as ours if its last term is higher, or equal with an index at
 * least ours. */
bool rl_log_up_to_date(const struct rl_log *l, rl_index i, rl_term t)
{
	rl_term lt = rl_log_last_term(l);
	return t > lt || (t == lt && i >= rl_log_last(l));
}

/* Append copies of e[0..n) (consecutive indexes), truncating everything from
 * e[0].index on first. On RL_ERR_NOMEM the log is unchanged. */
int rl_log_append(struct rl_log *l, const struct rl_entry *e, size_t n)
{
	if (n == 0)
		return RL_OK;
	rl_index at = e[0].index;
	assert(at > l->committed);
	assert(at <= rl_log_last(l) + 1);
	struct rl_ent_vec add = { 0 };
	for (size_t k = 0; k < n; k++) {
		int rc = rl_ent_vec_push_copy(&add, &e[k]);
		if (rc != RL_OK) {
			rl_ent_vec_free(&add);
			return rc;
		}
	}
	size_t need = (at >= l->u_off ? at - l->u_off : 0) + n;
	if (need > l->u.cap) {
		struct rl_entry *v = realloc(l->u.v, need * sizeof(*v));
		if (v == NULL) {
			rl_ent_vec_free(&add);
			return RL_ERR_NOMEM;
		}
		l->u.v = v;
		l->u.cap = need;
	}
	/* paper §5.3 step 3: delete the conflicting entry and all after it */
	if (at <= l->u_off) {
		for (size_t k = 0; k < l->u.n; k++)
			free(l->u.v[k].data);
		l->u.n = 0;
		l->u.bytes = 0;
		l->u_off = at;
	} else {
		for (size_t k = at - l->u_off; k < l->u.n; k++) {
			l->u.bytes -= l->u.v[k].data_len;
			free(l->u.v[k].data);
		}
		l->u.n = at - l->u_off;
	}
	memcpy(l->u.v + l->u.n, add.v, n * sizeof(*add.v));
	l->u.n += n;
	l->u.bytes += add.bytes;
	free(add.v);
	return RL_OK;
}

/* First index of e[] whose term differs from ours (or that we lack); 0 if
 * every entry is already in the log. Matching entries are never truncated:
 * a stale or reordered AppendEntries must not cut off later entries. */
rl_index rl_log_find_conflict(const struct rl_log *l, const struct rl_entry *e,
    size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (!rl_log_match(l, e[k].index, e[k].term))
			return e[k].index;
	}
	return 0;
}

static int ent_vec_reserve(struct rl_ent_vec *ev, size_t more)
{
	if (ev->n + more <= ev->cap)
		return RL_OK;
	size_t cap = ev->cap ? ev->cap : 8;
	while (cap < ev->n + more)
		cap *= 2;
	struct rl_entry *v = realloc(ev->v, cap * sizeof(*v));
	if (v == NULL)
		return RL_ERR_NOMEM;
	ev->v = v;
	ev->cap = cap;
	return RL_OK;
}

/* Read [lo, hi) from storage straight into out, taking ownership of the
 * storage's malloc'd data (no copy). */
static int log_entries_storage(const struct rl_log *l, rl_index lo,
    rl_index hi, uint64_t bytes_max, size_t count_max, struct rl_ent_vec *out)
{
	size_t want = (size_t)(hi - lo);
	if (want > count_max)
		want = count_max;
	int rc = ent_vec_reserve(out, want);
	if (rc != RL_OK)
		return rc;
	struct rl_entry *dst = out->v + out->n;
	memset(dst, 0, want * sizeof(*dst));
	size_t got = 0;
	rc = l->st->entries(l->st->ctx, lo, lo + want, bytes_max, dst, want,
	    &got);
	if (rc == RL_OK && (got == 0 || got > want))
		rc = RL_ERR_STORAGE;
	for (size_t k = 0; rc == RL_OK && k < got; k++) {
		if (dst[k].index != lo + k)
			rc = RL_ERR_STORAGE;
	}
	if (rc != RL_OK) {
		for (size_t k = 0; k < want; k++)
			free(dst[k].data);
		return rc;
	}
	for (size_t k = 0; k < got; k++)
		out->bytes += dst[k].data_len;
	out->n += got;
	return RL_OK;
}

/* Copies of entries [lo, hi), at most count_max of them and, past the first,
 * at most bytes_max data bytes in total. Appended to out (caller frees). */
int rl_log_entries(const struct rl_log *l, rl_index lo, rl_index hi,
    uint64_t bytes_max, size_t count_max, struct rl_ent_vec *out)
{
	if (lo >= hi || count_max == 0)
		return RL_OK;
	if (lo < rl_log_first(l))
		return RL_ERR_COMPACTED;
	if (hi > rl_log_last(l) + 1)
		return RL_ERR_UNAVAILABLE;
	size_t start_n = out->n;
	uint64_t start_bytes = out->bytes;
	if (lo < l->u_off) {
		rl_index shi = hi < l->u_off ? hi : l->u_off;
		int rc = log_entries_storage(l, lo, shi, bytes_max, count_max, out);
		if (rc != RL_OK)
			return rc;
		if (out->n - start_n < shi - lo || out->bytes - start_bytes >= bytes_max)
			return RL_OK;
		lo = shi;
	}
	for (rl_index i = lo; i < hi && out->n - start_n < count_max; i++) {
		const struct rl_entry *e = &l->u.v[i - l->u_off];
		if (out->n > start_n &&
		    out->bytes - start_bytes + e->data_len > bytes_max)
			break;
		int rc = rl_ent_vec_push_copy(out, e);
		if (rc != RL_OK)
			return rc;
	}
	return RL_OK;
}

void rl_log_commit_to(struct rl_log *l, rl_index i)
{
	if (i <= l->committed)
		return;
	assert(i <= rl_log_last(l));
	l->committed = i;
}

/* Entries up to (i, t) are persisted: drop them from the unstable tail, but
 * only if (i, t) is still ours (a truncation may have replaced it since the
 * ready was handed out). */
void rl_log_stable_to(struct rl_log *l, rl_index i, rl_term t)
{
	if (i < l->u_off || i - l->u_off >= l->u.n)
		return;
	if (l->u.v[i - l->u_off].term != t)
		return;
	size_t drop = (size_t)(i - l->u_off + 1);
	for (size_t k = 0; k < drop; k++) {
		l->u.bytes -= l->u.v[k].data_len;
		free(l->u.v[k].data);
	}
	memmove(l->u.v, l->u.v + drop, (l->u.n - drop) * sizeof(*l->u.v));
	l->u.n -= drop;
	l->u_off = i + 1;
}

/* Replace the whole log by a received snapshot (thesis §5.2: discard the
 * log, the snapshot covers it). */
void rl_log_restore(struct rl_log *l, const struct rl_snapshot_meta *m)
{
	assert(m->index > l->committed);
	for (size_t k = 0; k < l->u.n; k++)
		free(l->u.v[k].data);
	l->u.n = 0;
	l->u.bytes = 0;
	l->u_off = m->index + 1;
	l->has_snap = true;
	l->snap = *m;
	l->committed = m->index;
}
