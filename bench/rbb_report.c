/*
 * rbb_report.c - what raftbus-bench prints: the etcd-benchmark-like text
 * summary (with a histogram of bars and the latency distribution), the
 * one-line JSON record that the etcd and NATS load generators print too
 * (so one script compares them), the per-second CSV series, and the
 * progress line on stderr during a run.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rbb.h"

/* Bars of the text histogram (etcd prints 10, up to 40 marks wide). */
#define RBB_BARS 10u
#define RBB_BAR_WIDTH_MAX 40u
/* Progress: every second on a tty, else every RBB_PROGRESS_PIPE_S s; none
 * during the first RBB_PROGRESS_AFTER_S s. */
#define RBB_PROGRESS_AFTER_S 2.0
#define RBB_PROGRESS_PIPE_S 5.0

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double q_ms(const struct rbb_stats *st, double q)
{
	return ms(rbb_hist_quantile_ns(&st->all, q));
}

static double throughput(const struct rbb_stats *st)
{
	return st->duration_s > 0 ? (double)st->ok / st->duration_s : 0.0;
}

static void print_json(const struct rbb_run *run, const struct rbb_stats *st)
{
	printf("{\"system\":\"raftbus\",\"workload\":\"%s\",\"clients\":%u,"
	    "\"conns\":%u,\"total\":%llu,\"errors\":%llu,\"duration_s\":%.3f,"
	    "\"throughput\":%.1f,\"latency_ms\":{\"min\":%.3f,\"p50\":%.3f,"
	    "\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}}\n",
	    run->wl->name, run->clients, run->conns,
	    (unsigned long long)(st->ok + st->errors),
	    (unsigned long long)st->errors, st->duration_s, throughput(st),
	    ms(st->all.min_ns), q_ms(st, 0.5), q_ms(st, 0.9), q_ms(st, 0.99),
	    q_ms(st, 0.999), ms(st->all.max_ns));
}

/* etcd's "Response time histogram": RBB_BARS equal slices of
 * [fastest, slowest], each log bucket counted in the slice of its middle. */
static void print_bars(FILE *f, const struct rbb_stats *st)
{
	const struct rbb_hist *h = &st->all;
	uint64_t counts[RBB_BARS] = { 0 };
	double lo = (double)h->min_ns, span = (double)(h->max_ns - h->min_ns);
	for (size_t i = 0; i < RBB_HIST_BUCKETS; i++) {
		if (h->counts[i] == 0)
			continue;
		uint64_t blo, w;
		rbb_hist_bucket(i, &blo, &w);
		double mid = (double)blo + (double)(w - 1) / 2.0;
		size_t bar = span > 0 ? (size_t)((mid - lo) / span * RBB_BARS) : 0;
		if (mid < lo)
			bar = 0;
		if (bar >= RBB_BARS)
			bar = RBB_BARS - 1;
		counts[bar] += h->counts[i];
	}
	uint64_t top = 0;
	for (size_t b = 0; b < RBB_BARS; b++)
		if (counts[b] > top)
			top = counts[b];
	fprintf(f, "\nResponse time histogram (ms):\n");
	for (size_t b = 0; b < RBB_BARS; b++) {
		double upper = (lo + span * (double)(b + 1) / RBB_BARS) / 1e6;
		unsigned width = top ? (unsigned)(counts[b] * RBB_BAR_WIDTH_MAX /
		    top) : 0;
		fprintf(f, "  %10.3f [%llu]\t|", upper,
		    (unsigned long long)counts[b]);
		for (unsigned k = 0; k < width; k++)
			fputs("\xe2\x88\x8e", f);  /* U+220E, etcd's bar */
		fputc('\n', f);
	}
}

static void print_text(FILE *f, const struct rbb_run *run,
    const struct rbb_stats *st)
{
	const struct rbb_hist *h = &st->all;
	double mean = h->n ? h->sum_ns / (double)h->n : 0;
	double var = h->n ? h->sumsq_ns / (double)h->n - mean * mean : 0;
	fprintf(f, "raftbus-bench %s: %u clients over %u connections\n\n"
	    "Summary:\n", run->wl->name, run->clients, run->conns);
	const char *unit = run->wl->unit ? run->wl->unit : "requests";
	fprintf(f, "  Total:\t%llu %s, %llu errors, in %.4f secs.\n",
	    (unsigned long long)(st->ok + st->errors), unit,
	    (unsigned long long)st->errors, st->duration_s);
	fprintf(f, "  Slowest:\t%.4f ms.\n  Fastest:\t%.4f ms.\n"
	    "  Average:\t%.4f ms.\n  Stddev:\t%.4f ms.\n"
	    "  Requests/sec:\t%.1f\n", ms(h->max_ns), ms(h->min_ns), mean / 1e6,
	    (var > 0 ? sqrt(var) : 0) / 1e6, throughput(st));
	if (h->n)
		print_bars(f, st);
	static const double qs[] = { 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99,
	    0.999 };
	fprintf(f, "\nLatency distribution:\n");
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		fprintf(f, "  %g%% in %.4f ms.\n", qs[i] * 100, q_ms(st, qs[i]));
	if (st->errors) {
		fprintf(f, "\nError distribution:\n");
		for (int c = 1; c < RBB_ERR_CODES; c++)
			if (st->err_by_code[c])
				fprintf(f, "  [%llu]\t%s\n",
				    (unsigned long long)st->err_by_code[c],
				    rb_strerror(-c));
	}
}

static int print_csv(const struct rbb_run *run, const struct rbb_stats *st)
{
	FILE *f = stdout;
	if (run->csv_path && !(f = fopen(run->csv_path, "w"))) {
		fprintf(stderr, "raftbus-bench: %s: %s\n", run->csv_path,
		    strerror(errno));
		return -1;
	}
	fprintf(f, "second,ops,errors,p50_ms,p99_ms\n");
	for (size_t i = 0; i < st->rows_n; i++) {
		const struct rbb_row *r = &st->rows[i];
		fprintf(f, "%llu,%llu,%llu,%.3f,%.3f\n",
		    (unsigned long long)r->second, (unsigned long long)r->ops,
		    (unsigned long long)r->errors, r->p50_ms, r->p99_ms);
	}
	if (st->rows_dropped)
		fprintf(stderr, "raftbus-bench: the series keeps the first %u "
		    "seconds only\n", RBB_SERIES_SECONDS_MAX);
	if (f != stdout && fclose(f) != 0) {
		fprintf(stderr, "raftbus-bench: %s: %s\n", run->csv_path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int rbb_report(const struct rbb_run *run, const struct rbb_stats *st)
{
	switch (run->output) {
	case RBB_OUT_JSON:
		print_json(run, st);
		break;
	case RBB_OUT_CSV:
		/* series on stdout: the summary goes to stderr to keep the
		 * csv clean */
		print_text(run->csv_path ? stdout : stderr, run, st);
		if (print_csv(run, st))
			return -1;
		break;
	case RBB_OUT_TEXT:
		print_text(stdout, run, st);
		break;
	}
	return fflush(stdout) == 0 ? 0 : -1;
}

void rbb_progress(const struct rbb_run *run, struct rbb_stats *st,
    uint64_t done, uint64_t total, double elapsed_s, bool final)
{
	static double last_s;
	static bool printed;
	bool tty = isatty(STDERR_FILENO);
	if (!run->progress)
		return;
	if (final) {
		if (printed && tty)
			fputs("\r\033[K", stderr);
		printed = false;
		last_s = 0;
		return;
	}
	double every = tty ? 1.0 : RBB_PROGRESS_PIPE_S;
	if (elapsed_s < RBB_PROGRESS_AFTER_S || elapsed_s - last_s < every)
		return;
	last_s = elapsed_s;
	pthread_mutex_lock(&st->mu);
	uint64_t errors = st->errors, ok = st->ok;
	double p99 = q_ms(st, 0.99);
	pthread_mutex_unlock(&st->mu);
	fprintf(stderr, "%s%s: %llu/%llu (%.0f%%) %.0f req/s, %llu errors, "
	    "p99 %.3f ms, %.0f s%s", tty ? "\r\033[K" : "", run->wl->name,
	    (unsigned long long)done, (unsigned long long)total,
	    total ? 100.0 * (double)done / (double)total : 0.0,
	    (double)ok / elapsed_s, (unsigned long long)errors, p99, elapsed_s,
	    tty ? "" : "\n");
	printed = true;
}
