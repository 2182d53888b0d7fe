/*
 * test_rbb_stats.c - unit tests of what raftbus-bench reports without a
 * server: the log-bucket histogram keeps every quantile within 1 % of the
 * exact one over the whole range of latencies, the per-second series adds
 * up, errors are counted per code, and keys have the documented shape.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "rbb.h"

#define SAMPLES_N 200000u

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The exact q-quantile as the histogram defines it: rank ceil(q * n). */
static uint64_t exact(const uint64_t *sorted, size_t n, double q)
{
	size_t rank = (size_t)(q * (double)n);
	if ((double)rank < q * (double)n)
		rank++;
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

Test(hist, quantiles_within_one_percent_from_ns_to_minutes)
{
	static struct rbb_hist h;
	uint64_t *v = malloc(SAMPLES_N * sizeof(*v));
	cr_assert(v);
	rbb_hist_reset(&h);
	/* log-uniform between 100 ns and ~100 s, fixed seed */
	uint64_t x = 7;
	for (size_t i = 0; i < SAMPLES_N; i++) {
		x = rbb_mix64(x);
		double e = 2.0 + 9.0 * (double)(x >> 11) / (double)(1ull << 53);
		v[i] = (uint64_t)pow(10.0, e);
		rbb_hist_record(&h, v[i]);
	}
	qsort(v, SAMPLES_N, sizeof(*v), cmp_u64);
	static const double qs[] = { 0.001, 0.1, 0.25, 0.5, 0.9, 0.99, 0.999,
	    0.9999, 1.0 };
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		double want = (double)exact(v, SAMPLES_N, qs[i]);
		double got = (double)rbb_hist_quantile_ns(&h, qs[i]);
		cr_expect(got >= want * 0.99 && got <= want * 1.01,
		    "q %g: got %.0f, exact %.0f", qs[i], got, want);
	}
	cr_expect_eq(h.min_ns, v[0]);
	cr_expect_eq(h.max_ns, v[SAMPLES_N - 1]);
	cr_expect_eq(h.n, SAMPLES_N);
	free(v);
}

Test(hist, empty_single_and_clamped)
{
	static struct rbb_hist h;
	rbb_hist_reset(&h);
	cr_expect_eq(rbb_hist_quantile_ns(&h, 0.5), 0);
	rbb_hist_record(&h, 1234567);
	/* one value: every quantile is that value exactly (clamped) */
	cr_expect_eq(rbb_hist_quantile_ns(&h, 0.5), 1234567);
	cr_expect_eq(rbb_hist_quantile_ns(&h, 1.0), 1234567);
	/* beyond the top bucket: counted, not out of bounds */
	rbb_hist_record(&h, UINT64_MAX);
	cr_expect_eq(h.n, 2);
	cr_expect_eq(h.max_ns, RBB_HIST_VALUE_NS_MAX - 1);
	/* small values have exact buckets */
	rbb_hist_reset(&h);
	for (uint64_t i = 0; i < 100; i++)
		rbb_hist_record(&h, i);
	cr_expect_eq(rbb_hist_quantile_ns(&h, 0.5), 49);
}

Test(stats, series_adds_up_and_errors_by_code)
{
	struct rbb_stats *st = rbb_stats_new();
	cr_assert(st);
	for (int i = 0; i < 10; i++)
		rbb_stats_record(st, 0, 1000000);   /* 1 ms */
	rbb_stats_record(st, RB_ERR_NOT_LEADER, 0);
	rbb_stats_roll(st, 1);
	for (int i = 0; i < 5; i++)
		rbb_stats_record(st, 0, 3000000);   /* 3 ms */
	rbb_stats_record(st, RB_ERR_TIMEOUT, 0);
	rbb_stats_record(st, -9999, 0);         /* not an rb_err */
	rbb_stats_roll(st, 3);                   /* second 3 is empty */
	cr_assert_eq(st->rows_n, 3);
	cr_expect_eq(st->rows[0].ops, 10);
	cr_expect_eq(st->rows[0].errors, 1);
	cr_expect(st->rows[0].p50_ms > 0.99 && st->rows[0].p50_ms < 1.01);
	cr_expect_eq(st->rows[1].ops, 5);
	cr_expect_eq(st->rows[1].errors, 2);
	cr_expect(st->rows[1].p99_ms > 2.97 && st->rows[1].p99_ms < 3.03);
	cr_expect_eq(st->rows[2].second, 3);
	cr_expect_eq(st->rows[2].ops, 0);
	cr_expect_eq(st->ok, 15);
	cr_expect_eq(st->errors, 3);
	cr_expect_eq(st->err_by_code[-RB_ERR_NOT_LEADER], 1);
	cr_expect_eq(st->err_by_code[-RB_ERR_TIMEOUT], 1);
	cr_expect_eq(st->err_by_code[-RB_ERR_UNKNOWN], 1);
	cr_expect_eq(st->all.n, 15);
	rbb_stats_free(st);
}

Test(keys, fixed_size_decimal)
{
	uint8_t buf[8];
	rbb_key_format(buf, sizeof(buf), 42);
	cr_expect(memcmp(buf, "00000042", 8) == 0);
	rbb_key_format(buf, 3, 999);
	cr_expect(memcmp(buf, "999", 3) == 0);
	cr_expect_eq(rbb_key_digits(0), 1);
	cr_expect_eq(rbb_key_digits(9), 1);
	cr_expect_eq(rbb_key_digits(10), 2);
	cr_expect_eq(rbb_key_digits(999999), 6);
	cr_expect_eq(rbb_key_digits(UINT64_MAX), 20);
	/* seeded: same input, same output; different inputs differ */
	cr_expect_eq(rbb_mix64(1), rbb_mix64(1));
	cr_expect_neq(rbb_mix64(1), rbb_mix64(2));
}
