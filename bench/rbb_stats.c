/*
 * rbb_stats.c - what raftbus-bench measures: an HDR-style latency
 * histogram (log buckets, fixed size, no allocation per request), success
 * and error counters, and the per-second series for -o csv. See rbb.h.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "rbb.h"

void rbb_hist_reset(struct rbb_hist *h)
{
	memset(h, 0, sizeof(*h));
}

/* Values below RBB_HIST_SUB get a bucket each; above, every power of two
 * [2^m, 2^(m+1)) is cut into RBB_HIST_SUB equal buckets. */
static size_t bucket_of(uint64_t ns)
{
	if (ns < RBB_HIST_SUB)
		return (size_t)ns;
	unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
	unsigned shift = msb - RBB_HIST_SUB_BITS;
	size_t sub = (size_t)(ns >> shift) - RBB_HIST_SUB;
	return RBB_HIST_SUB * (shift + 1u) + sub;
}

void rbb_hist_bucket(size_t i, uint64_t *lo_ns, uint64_t *width_ns)
{
	if (i < RBB_HIST_SUB) {
		*lo_ns = i;
		*width_ns = 1;
		return;
	}
	unsigned shift = (unsigned)(i / RBB_HIST_SUB) - 1u;
	uint64_t sub = i % RBB_HIST_SUB + RBB_HIST_SUB;
	*lo_ns = sub << shift;
	*width_ns = 1ull << shift;
}

void rbb_hist_record(struct rbb_hist *h, uint64_t ns)
{
	if (ns >= RBB_HIST_VALUE_NS_MAX)
		ns = RBB_HIST_VALUE_NS_MAX - 1;
	size_t b = bucket_of(ns);
	assert(b < RBB_HIST_BUCKETS);
	h->counts[b]++;
	if (h->n == 0 || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->n++;
	h->sum_ns += (double)ns;
	h->sumsq_ns += (double)ns * (double)ns;
}

uint64_t rbb_hist_quantile_ns(const struct rbb_hist *h, double q)
{
	if (h->n == 0)
		return 0;
	/* the rank of the q-quantile, 1-based: ceil(q * n), at least 1 */
	double r = q * (double)h->n;
	uint64_t rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > h->n)
		rank = h->n;
	uint64_t seen = 0;
	for (size_t i = 0; i < RBB_HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen < rank)
			continue;
		uint64_t lo, w;
		rbb_hist_bucket(i, &lo, &w);
		uint64_t mid = lo + w / 2;
		if (mid < h->min_ns)
			mid = h->min_ns;
		if (mid > h->max_ns)
			mid = h->max_ns;
		return mid;
	}
	return h->max_ns;
}

struct rbb_stats *rbb_stats_new(void)
{
	struct rbb_stats *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->rows = calloc(RBB_SERIES_SECONDS_MAX, sizeof(*st->rows));
	if (st->rows == NULL) {
		free(st);
		return NULL;
	}
	pthread_mutex_init(&st->mu, NULL);
	return st;
}

void rbb_stats_free(struct rbb_stats *st)
{
	if (st == NULL)
		return;
	pthread_mutex_destroy(&st->mu);
	free(st->rows);
	free(st);
}

void rbb_stats_record(struct rbb_stats *st, int err, uint64_t latency_ns)
{
	pthread_mutex_lock(&st->mu);
	if (err == 0) {
		st->ok++;
		rbb_hist_record(&st->all, latency_ns);
		rbb_hist_record(&st->sec, latency_ns);
	} else {
		/* codes outside rb_err are counted as UNKNOWN */
		int code = err < 0 && err >= RB_ERR_MIN ? -err : -RB_ERR_UNKNOWN;
		st->errors++;
		st->sec_errors++;
		st->err_by_code[code]++;
	}
	pthread_mutex_unlock(&st->mu);
}

void rbb_stats_roll(struct rbb_stats *st, uint64_t second)
{
	pthread_mutex_lock(&st->mu);
	while (st->seconds_rolled < second) {
		st->seconds_rolled++;
		if (st->rows_n < RBB_SERIES_SECONDS_MAX) {
			struct rbb_row *r = &st->rows[st->rows_n++];
			r->second = st->seconds_rolled;
			r->ops = st->sec.n;
			r->errors = st->sec_errors;
			r->p50_ms = (double)rbb_hist_quantile_ns(&st->sec, 0.5) / 1e6;
			r->p99_ms = (double)rbb_hist_quantile_ns(&st->sec, 0.99) / 1e6;
		} else {
			st->rows_dropped = true;
		}
		if (st->sec.n)
			rbb_hist_reset(&st->sec);
		st->sec_errors = 0;
	}
	pthread_mutex_unlock(&st->mu);
}

void rbb_stats_add_errors(struct rbb_stats *st, int err, uint64_t n)
{
	if (n == 0)
		return;
	int code = err < 0 && err >= RB_ERR_MIN ? -err : -RB_ERR_UNKNOWN;
	pthread_mutex_lock(&st->mu);
	st->errors += n;
	st->sec_errors += n;
	st->err_by_code[code] += n;
	pthread_mutex_unlock(&st->mu);
}
