/*
 * bench_roll.c - latency of rl_logstore_save() across segment rolls.
 *
 * Appends batches of 256-byte entries (one save each, each fdatasync'd)
 * until the log has rolled to a new segment a given number of times, and
 * prints the max, p99, p99.9 and median save latency, plus the slowest
 * save that rolled and the slowest save while the spare segment thread
 * was filling (wal.h's counters tell when it finishes). Registered with
 * meson as a benchmark, not a test:
 *     meson test -C BUILD --benchmark logstore_roll_bench
 * or run it by hand:
 *     bench_roll [rolls [segment_mib [entries_per_save [dir]]]]
 * Defaults: 4 rolls, 64 MiB segments, 16 entries per save, a fresh
 * directory under /tmp (removed at the end).
 */
#include <errno.h>
#include <stdbool.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "logstore.h"
#include "wal.h"

#define BENCH_ENTRY_DATA_BYTES 256u
/* Most saves one run makes, whatever the arguments (bounds the time and
 * the latency array). */
#define BENCH_SAVES_MAX 2000000u
#define BENCH_ENTRIES_PER_SAVE_MAX 1024u
/* After the first save the spare segment's background thread gets this
 * long before the clock starts (a steady-state server has had time). */
#define BENCH_WARMUP_NS 500000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u),
			       (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

struct bench {
	rl_logstore *ls;
	struct rl_entry e[BENCH_ENTRIES_PER_SAVE_MAX];
	uint8_t data[BENCH_ENTRY_DATA_BYTES];
	unsigned per_save;
	rl_index next;
};

static int bench_save(struct bench *b)
{
	struct rl_hard_state hs = { .term = 1, .vote = 1, .commit = b->next - 1 };
	struct rl_logstore_batch batch = { .entries = b->e,
					   .entries_n = b->per_save,
					   .hard_state = &hs };

	for (unsigned k = 0; k < b->per_save; k++)
		b->e[k] = (struct rl_entry){ .term = 1, .index = b->next + k,
					     .type = RL_ENTRY_NORMAL,
					     .data_len = BENCH_ENTRY_DATA_BYTES,
					     .data = b->data };
	b->next += b->per_save;
	return rl_logstore_save(b->ls, &batch);
}

static uint64_t spare_fills(void)
{
	struct wal_counts c;

	wal_counts(&c);
	return c.spare_fills;
}

struct maxima {
	uint64_t roll_ns;    /* slowest save that rolled */
	uint64_t filling_ns; /* slowest other save while a spare was filled */
	uint64_t other_ns;   /* slowest of the rest */
};

static void report(uint64_t *lat, size_t n, const struct maxima *m,
		   unsigned rolls, double wall_s)
{
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("saves %zu, rolls %u, wall %.1f s\n", n, rolls, wall_s);
	printf("save latency us: p50 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n",
	       lat[n / 2] / 1e3, lat[n * 99 / 100] / 1e3,
	       lat[n * 999 / 1000] / 1e3, lat[n - 1] / 1e3);
	printf("slowest save: that rolled %.0f us, while the spare thread "
	       "filled %.0f us, otherwise %.0f us\n", m->roll_ns / 1e3,
	       m->filling_ns / 1e3, m->other_ns / 1e3);
}

static void note_max(uint64_t *max, uint64_t v)
{
	if (v > *max)
		*max = v;
}

int main(int argc, char **argv)
{
	unsigned rolls = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
	uint64_t seg_mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 64;
	unsigned per_save = argc > 3 ? (unsigned)atoi(argv[3]) : 16;
	char tmpl[] = "/tmp/rl-bench-roll-XXXXXX", msg[RL_LOG_ERRMSG_MAX];
	const char *dir = argc > 4 ? argv[4] : mkdtemp(tmpl);
	struct rl_logstore_options o = { .map_size_bytes = seg_mib << 20 };
	static struct bench b;
	uint64_t *lat = malloc(BENCH_SAVES_MAX * sizeof(*lat));
	struct maxima m = { 0 };
	uint64_t t0, fills;
	bool filling = false;
	unsigned done = 0;
	size_t n = 0;
	int err;

	if (dir == NULL || lat == NULL || per_save == 0 ||
	    per_save > BENCH_ENTRIES_PER_SAVE_MAX) {
		fprintf(stderr, "bench_roll: bad arguments or no memory\n");
		return 2;
	}
	if ((err = rl_logstore_open(dir, &o, &b.ls, msg, sizeof(msg))) != 0) {
		fprintf(stderr, "open: %s\n", msg);
		return 1;
	}
	memset(b.data, 0xab, sizeof(b.data));
	b.per_save = per_save;
	b.next = 1;
	err = bench_save(&b);
	sleep_ns(BENCH_WARMUP_NS);
	t0 = now_ns();
	fills = spare_fills();
	while (err == 0 && done < rolls && n < BENCH_SAVES_MAX) {
		uint64_t before = rl_logstore_map_size(b.ls), s = now_ns();
		err = bench_save(&b);
		lat[n] = now_ns() - s;
		if (spare_fills() != fills) {
			fills = spare_fills();
			filling = false;
		}
		if (rl_logstore_map_size(b.ls) != before) {
			done++;
			note_max(&m.roll_ns, lat[n]);
			filling = true;
		} else {
			note_max(filling ? &m.filling_ns : &m.other_ns, lat[n]);
		}
		n++;
	}
	if (err != 0)
		fprintf(stderr, "save: %s\n", rl_logstore_errmsg(b.ls));
	else if (n > 0)
		report(lat, n, &m, done, (now_ns() - t0) / 1e9);
	rl_logstore_close(b.ls);
	if (argc <= 4)
		nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(lat);
	return err != 0;
}
