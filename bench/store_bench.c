/*
 * store_bench.c - micro-benchmark of store/ on its own (no Raft, no
 * network): how fast the state machine applies and reads, with LMDB's real
 * fsync on every commit (never MDB_NOSYNC). Prints one line per workload:
 *
 *   fdatasync 4KiB     ms      the disk's floor right now, for reference
 *   put batch=1        ops/s   one put per st_apply: one txn + fsync each
 *   put batch=16/128/1024      puts per second, one st_apply per batch
 *   range key          ops/s   st_range of one key among --keys keys
 *   range prefix=100   ops/s   st_range of a 100-key prefix
 *   events prefix      us/read st_events of a 10-event topic hidden among
 *                              1,000,000 other events (--quick: 100,000)
 *
 * Usage: store-bench [--keys N] [--value-size B] [--dir PATH] [--quick]
 * Without --dir it works in a temp dir under /tmp and removes it.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

/* Largest --value-size and --keys accepted. */
#define BENCH_VALUE_BYTES_MAX (1u << 20)
#define BENCH_KEYS_MAX 10000000u
/* Entries per st_apply when loading background data. */
#define BENCH_LOAD_BATCH_ENTRIES 1024u
/* Value size of the background events of the event-read workload. */
#define BENCH_BG_VALUE_BYTES 32u

struct bench {
	st_store *st;
	char dir[256];
	bool own_dir;
	size_t keys;
	size_t value_size;
	bool quick;
	uint8_t *value;
	st_index index;          /* last applied Raft index */
	struct st_entry *ent;    /* BENCH_LOAD_BATCH_ENTRIES */
	struct st_result *res;
	char (*keybuf)[32];
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "store-bench: %s: %s\n", what, st_strerror(rc));
	exit(1);
}

/* Applies n puts (keys[i], value of len vlen) in one st_apply. */
static void apply_puts(struct bench *b, size_t n, size_t vlen)
{
	for (size_t i = 0; i < n; i++) {
		struct st_entry *e = &b->ent[i];
		memset(e, 0, sizeof(*e));
		e->index = ++b->index;
		e->op.type = ST_OP_PUT;
		e->op.u.put.key = (const uint8_t *)b->keybuf[i];
		e->op.u.put.key_len = strlen(b->keybuf[i]);
		e->op.u.put.value = b->value;
		e->op.u.put.value_len = vlen;
	}
	int rc = st_apply(b->st, b->ent, n, b->res);
	if (rc)
		die("st_apply", rc);
	for (size_t i = 0; i < n; i++) {
		if (b->res[i].err)
			die("put", b->res[i].err);
		st_result_free(&b->res[i]);
	}
}

static void bench_puts(struct bench *b, size_t batch, size_t total)
{
	size_t done = 0, seq = 0;
	double t0 = now_s();
	while (done < total) {
		size_t n = total - done < batch ? total - done : batch;
		for (size_t i = 0; i < n; i++, seq++)
			snprintf(b->keybuf[i], sizeof(b->keybuf[i]), "put%zu/%08zu",
				batch, seq % b->keys);
		apply_puts(b, n, b->value_size);
		done += n;
	}
	double dt = now_s() - t0;
	printf("put batch=%-5zu %10.0f ops/s   (%zu puts, %.2f s, %zu-byte values, fsync per batch)\n",
		batch, (double)total / dt, total, dt, b->value_size);
	fflush(stdout);
}

static void load_keys(struct bench *b, const char *fmt, size_t n, size_t vlen)
{
	for (size_t done = 0; done < n; ) {
		size_t k = n - done < BENCH_LOAD_BATCH_ENTRIES ? n - done :
			BENCH_LOAD_BATCH_ENTRIES;
		for (size_t i = 0; i < k; i++)
			snprintf(b->keybuf[i], sizeof(b->keybuf[i]), fmt, done + i);
		apply_puts(b, k, vlen);
		done += k;
	}
}

static void bench_range_key(struct bench *b, size_t iters)
{
	load_keys(b, "rk/%08zu", b->keys, b->value_size);
	uint64_t x = 88172645463325252ull;
	double t0 = now_s();
	for (size_t i = 0; i < iters; i++) {
		char key[32];
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int n = snprintf(key, sizeof(key), "rk/%08zu", (size_t)(x % b->keys));
		struct st_range q = { .key = (const uint8_t *)key, .key_len = (size_t)n };
		struct st_result res = { 0 };
		int rc = st_range(b->st, &q, &res);
		if (rc || res.resp.u.range.kvs_n != 1)
			die("range key", rc ? rc : ST_ERR_CORRUPT);
		st_result_free(&res);
	}
	double dt = now_s() - t0;
	printf("range key      %10.0f ops/s   (%zu reads among %zu keys)\n",
		(double)iters / dt, iters, b->keys);
	fflush(stdout);
}

static void bench_range_prefix(struct bench *b, size_t iters)
{
	load_keys(b, "rp/%04zu", 100, b->value_size);
	struct st_range q = { .key = (const uint8_t *)"rp/", .key_len = 3,
		.range_end = (const uint8_t *)"rp0", .range_end_len = 3 };
	double t0 = now_s();
	for (size_t i = 0; i < iters; i++) {
		struct st_result res = { 0 };
		int rc = st_range(b->st, &q, &res);
		if (rc || res.resp.u.range.kvs_n != 100)
			die("range prefix", rc ? rc : ST_ERR_CORRUPT);
		st_result_free(&res);
	}
	double dt = now_s() - t0;
	printf("range prefix=100 %8.0f ops/s   (%.0f keys/s)\n",
		(double)iters / dt, 100.0 * (double)iters / dt);
	fflush(stdout);
}

/* 10 topic events spread among `others` events of other keys. */
static void load_topic(struct bench *b, size_t others)
{
	size_t per = others / 10;
	for (int t = 0; t < 10; t++) {
		load_keys(b, "bg/%08zu", per, BENCH_BG_VALUE_BYTES);
		snprintf(b->keybuf[0], sizeof(b->keybuf[0]), "topic/%02d", t);
		apply_puts(b, 1, b->value_size);
	}
}

static void bench_events(struct bench *b, size_t others, size_t iters)
{
	double t0 = now_s();
	load_topic(b, others);
	double tl = now_s() - t0;
	struct st_events_req q = { .key = (const uint8_t *)"topic/", .key_len = 6,
		.range_end = (const uint8_t *)"topic0", .range_end_len = 6 };
	t0 = now_s();
	for (size_t i = 0; i < iters; i++) {
		struct st_result res = { 0 };
		int rc = st_events(b->st, &q, &res);
		if (rc || res.resp.u.events.events_n != 10)
			die("events", rc ? rc : ST_ERR_CORRUPT);
		st_result_free(&res);
	}
	double dt = now_s() - t0;
	printf("events prefix  %10.1f us/read (10 events among %zu others, from "
		"rev 0; %.0f reads/s; load %.1f s)\n", dt * 1e6 / (double)iters,
		others, (double)iters / dt, tl);
	fflush(stdout);
}

/* The physical floor on this disk right now: one 4 KiB write + fdatasync.
 * Printed first so that put figures can be read against it. */
static void bench_fsync_floor(const struct bench *b, int iters)
{
	char path[300], blk[4096];
	snprintf(path, sizeof(path), "%s/fsync-probe", b->dir);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0)
		return;
	memset(blk, 'f', sizeof(blk));
	double t0 = now_s();
	for (int i = 0; i < iters; i++)
		if (pwrite(fd, blk, sizeof(blk), (off_t)(i % 16) * 4096) < 0 ||
			fdatasync(fd) != 0)
			break;
	double dt = now_s() - t0;
	close(fd);
	unlink(path);
	printf("fdatasync 4KiB %10.3f ms      (disk floor now, %d writes)\n",
		dt * 1e3 / iters, iters);
}

static int rm_one(const char *p, const struct stat *sb, int f, struct FTW *w)
{
	(void)sb, (void)f, (void)w;
	return remove(p);
}

static void usage(void)
{
	fprintf(stderr, "usage: store-bench [--keys N] [--value-size B] "
		"[--dir PATH] [--quick]\n");
	exit(2);
}

static void parse_args(struct bench *b, int argc, char **argv)
{
	b->keys = 100000;
	b->value_size = 256;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			b->quick = true;
		else if (!strcmp(argv[i], "--keys") && i + 1 < argc)
			b->keys = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--value-size") && i + 1 < argc)
			b->value_size = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			snprintf(b->dir, sizeof(b->dir), "%s", argv[++i]);
		else
			usage();
	}
	if (b->keys < 1 || b->keys > BENCH_KEYS_MAX ||
		b->value_size > BENCH_VALUE_BYTES_MAX)
		usage();
	if (b->quick && b->keys > 10000)
		b->keys = 10000;
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	parse_args(&b, argc, argv);
	if (!b.dir[0]) {
		snprintf(b.dir, sizeof(b.dir), "/tmp/store-bench-XXXXXX");
		if (!mkdtemp(b.dir))
			return perror("mkdtemp"), 1;
		b.own_dir = true;
	} else if (mkdir(b.dir, 0700) != 0 && errno != EEXIST) {
		perror(b.dir);
		return 1;
	}
	b.value = malloc(b.value_size ? b.value_size : 1);
	memset(b.value, 'v', b.value_size);
	b.ent = calloc(BENCH_LOAD_BATCH_ENTRIES, sizeof(*b.ent));
	b.res = calloc(BENCH_LOAD_BATCH_ENTRIES, sizeof(*b.res));
	b.keybuf = calloc(BENCH_LOAD_BATCH_ENTRIES, sizeof(*b.keybuf));
	int rc = st_open(b.dir, NULL, &b.st);
	if (rc)
		die("st_open", rc);
	b.index = st_applied_index(b.st); /* --dir may hold an earlier run */
	printf("store-bench: dir %s, %zu keys, %zu-byte values%s\n", b.dir, b.keys,
		b.value_size, b.quick ? ", quick" : "");
	bench_fsync_floor(&b, b.quick ? 50 : 200);
	bench_puts(&b, 1, b.quick ? 300 : 2000);
	bench_puts(&b, 16, b.quick ? 4000 : 32000);
	bench_puts(&b, 128, b.quick ? 20000 : 128000);
	bench_puts(&b, 1024, b.quick ? 50000 : 512000);
	bench_range_key(&b, b.quick ? 50000 : 500000);
	bench_range_prefix(&b, b.quick ? 5000 : 50000);
	bench_events(&b, b.quick ? 100000 : 1000000, b.quick ? 10000 : 100000);
	st_close(b.st);
	if (b.own_dir)
		nftw(b.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(b.value);
	free(b.ent);
	free(b.res);
	free(b.keybuf);
	return 0;
}
