/*
 * memlog.c - in-memory rl_storage for the Raft core unit tests (memlog.h).
 */
#include "memlog.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static int ml_first(void *ctx, rl_index *out)
{
	struct memlog *l = ctx;
	*out = l->snap.index + 1;
	return RL_OK;
}

static int ml_last(void *ctx, rl_index *out)
{
	*out = memlog_last(ctx);
	return RL_OK;
}

static int ml_term(void *ctx, rl_index i, rl_term *out)
{
	struct memlog *l = ctx;
	if (i < l->snap.index)
		return RL_ERR_COMPACTED;
	if (i == l->snap.index) {
		*out = l->snap.term;
		return RL_OK;
	}
	if (i > memlog_last(l))
		return RL_ERR_UNAVAILABLE;
	*out = l->ents[i - l->snap.index - 1].term;
	return RL_OK;
}

static int ml_entries(void *ctx, rl_index lo, rl_index hi, uint64_t bytes_max,
    struct rl_entry *out, size_t out_max, size_t *out_n)
{
	struct memlog *l = ctx;
	l->entries_calls++;
	if (lo <= l->snap.index)
		return RL_ERR_COMPACTED;
	if (hi > memlog_last(l) + 1)
		return RL_ERR_UNAVAILABLE;
	uint64_t bytes = 0;
	size_t k = 0;
	for (rl_index i = lo; i < hi && k < out_max; i++) {
		const struct rl_entry *e = &l->ents[i - l->snap.index - 1];
		if (k > 0 && bytes + e->data_len > bytes_max)
			break;
		bytes += e->data_len;
		out[k] = *e;
		out[k].data = NULL;
		if (e->data_len > 0) {
			out[k].data = malloc(e->data_len);
			if (out[k].data == NULL)
				return RL_ERR_NOMEM;
			memcpy(out[k].data, e->data, e->data_len);
		}
		k++;
	}
	*out_n = k;
	return RL_OK;
}

static int ml_snapshot_meta(void *ctx, struct rl_snapshot_meta *out)
{
	struct memlog *l = ctx;
	*out = l->snap;
	return RL_OK;
}

void memlog_init(struct memlog *l)
{
	memset(l, 0, sizeof(*l));
	l->st.ctx = l;
	l->st.first_index = ml_first;
	l->st.last_index = ml_last;
	l->st.term = ml_term;
	l->st.entries = ml_entries;
	l->st.snapshot_meta = ml_snapshot_meta;
}

static void drop_from(struct memlog *l, size_t k)
{
	for (size_t j = k; j < l->n; j++)
		free(l->ents[j].data);
	l->n = k;
}

void memlog_free(struct memlog *l)
{
	drop_from(l, 0);
	free(l->ents);
	free(l->snap_data);
	memset(l, 0, sizeof(*l));
}

rl_index memlog_last(const struct memlog *l)
{
	return l->snap.index + l->n;
}

void memlog_append(struct memlog *l, const struct rl_entry *e, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (e[k].index <= l->snap.index)
			continue;
		size_t pos = (size_t)(e[k].index - l->snap.index - 1);
		assert(pos <= l->n); /* no gaps */
		drop_from(l, pos);
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 16;
			l->ents = realloc(l->ents, l->cap * sizeof(*l->ents));
			assert(l->ents != NULL);
		}
		struct rl_entry c = e[k];
		c.data = NULL;
		if (c.data_len > 0) {
			c.data = malloc(c.data_len);
			assert(c.data != NULL);
			memcpy(c.data, e[k].data, c.data_len);
		}
		l->ents[l->n++] = c;
	}
}

static void set_snap(struct memlog *l, const struct rl_snapshot_meta *m,
    const uint8_t *data, uint32_t len)
{
	free(l->snap_data);
	l->snap_data = NULL;
	if (len > 0) {
		l->snap_data = malloc(len);
		assert(l->snap_data != NULL);
		memcpy(l->snap_data, data, len);
	}
	l->snap_len = len;
	l->snap = *m;
}

void memlog_install(struct memlog *l, const struct rl_snapshot_meta *m,
    const uint8_t *data, uint32_t len)
{
	drop_from(l, 0);
	set_snap(l, m, data, len);
}

void memlog_compact(struct memlog *l, rl_index idx,
    const struct rl_conf_state *conf, const uint8_t *data, uint32_t len)
{
	assert(idx > l->snap.index && idx <= memlog_last(l));
	size_t drop = (size_t)(idx - l->snap.index);
	struct rl_snapshot_meta m = { idx, l->ents[drop - 1].term, *conf };
	for (size_t j = 0; j < drop; j++)
		free(l->ents[j].data);
	memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof(*l->ents));
	l->n -= drop;
	set_snap(l, &m, data, len);
}
