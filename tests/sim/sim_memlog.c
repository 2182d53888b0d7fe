/*
 * sim_memlog.c - in-memory Raft log for raftsim (see sim_memlog.h).
 */
#include "sim_memlog.h"

#include "sim_base.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void sim_memlog_init(struct sim_memlog *l)
{
	memset(l, 0, sizeof(*l));
}

static void free_entries_from(struct sim_memlog *l, size_t from)
{
	for (size_t i = from; i < l->n; i++)
		free(l->ents[i].data);
	l->n = from;
}

void sim_memlog_free(struct sim_memlog *l)
{
	free_entries_from(l, 0);
	free(l->ents);
	free(l->snap_data);
	memset(l, 0, sizeof(*l));
}

static uint8_t *dup_bytes(const uint8_t *p, uint32_t len)
{
	if (len == 0)
		return NULL;
	uint8_t *q = sim_xmalloc(len);
	memcpy(q, p, len);
	return q;
}

static void push_entry(struct sim_memlog *l, const struct rl_entry *e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->ents = sim_xrealloc(l->ents, l->cap * sizeof(*l->ents));
	}
	struct rl_entry *d = &l->ents[l->n++];
	*d = *e;
	d->data = dup_bytes(e->data, e->data_len);
}

void sim_memlog_copy(struct sim_memlog *dst, const struct sim_memlog *src)
{
	sim_memlog_free(dst);
	dst->hs = src->hs;
	dst->snap = src->snap;
	dst->snap_data = dup_bytes(src->snap_data, src->snap_len);
	dst->snap_len = src->snap_len;
	for (size_t i = 0; i < src->n; i++)
		push_entry(dst, &src->ents[i]);
}

rl_index sim_memlog_first(const struct sim_memlog *l)
{
	return l->snap.index + 1;
}

rl_index sim_memlog_last(const struct sim_memlog *l)
{
	return l->snap.index + l->n;
}

bool sim_memlog_term(const struct sim_memlog *l, rl_index idx, rl_term *term)
{
	if (idx == l->snap.index) {
		*term = l->snap.term;
		return true;
	}
	const struct rl_entry *e = sim_memlog_entry(l, idx);
	if (!e)
		return false;
	*term = e->term;
	return true;
}

const struct rl_entry *sim_memlog_entry(const struct sim_memlog *l,
					rl_index idx)
{
	if (idx <= l->snap.index || idx > sim_memlog_last(l))
		return NULL;
	const struct rl_entry *e = &l->ents[idx - l->snap.index - 1];
	assert(e->index == idx);
	return e;
}

bool sim_memlog_append(struct sim_memlog *l, const struct rl_entry *ents,
		       size_t n)
{
	size_t i = 0;
	while (i < n && ents[i].index <= l->snap.index)
		i++;
	if (i == n)
		return true;
	if (ents[i].index > sim_memlog_last(l) + 1)
		return false;
	/* The ready contract: every stored entry from the first new index on
	 * is deleted, then the batch is written (raft.h, step 3). */
	free_entries_from(l, ents[i].index - l->snap.index - 1);
	for (; i < n; i++) {
		assert(ents[i].index == sim_memlog_last(l) + 1);
		push_entry(l, &ents[i]);
	}
	return true;
}

/* Drops the entries at or below idx, keeping the rest in place. */
static void drop_prefix(struct sim_memlog *l, rl_index idx)
{
	if (idx <= l->snap.index)
		return;
	size_t k = idx - l->snap.index;
	if (k > l->n)
		k = l->n;
	for (size_t i = 0; i < k; i++)
		free(l->ents[i].data);
	memmove(l->ents, l->ents + k, (l->n - k) * sizeof(*l->ents));
	l->n -= k;
}

static void set_snapshot(struct sim_memlog *l,
			 const struct rl_snapshot_meta *meta,
			 const uint8_t *data, uint32_t len)
{
	free(l->snap_data);
	l->snap = *meta;
	l->snap_data = dup_bytes(data, len);
	l->snap_len = len;
}

void sim_memlog_install(struct sim_memlog *l,
			const struct rl_snapshot_meta *meta,
			const uint8_t *data, uint32_t len)
{
	rl_term have;
	bool keep = sim_memlog_term(l, meta->index, &have) &&
		    have == meta->term && meta->index >= l->snap.index;
	if (keep)
		drop_prefix(l, meta->index);
	else
		free_entries_from(l, 0);
	set_snapshot(l, meta, data, len);
}

void sim_memlog_compact(struct sim_memlog *l, rl_index idx,
			const struct rl_conf_state *conf,
			const uint8_t *data, uint32_t len)
{
	struct rl_snapshot_meta meta = { .index = idx, .conf = *conf };
	bool ok = sim_memlog_term(l, idx, &meta.term);
	assert(ok && idx >= l->snap.index);
	(void)ok;
	drop_prefix(l, idx);
	set_snapshot(l, &meta, data, len);
}
