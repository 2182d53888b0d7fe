/*
 * test_spare.c - the spare segment (raftlog/wal.h, "The spare segment"):
 * a roll takes a segment that a background thread already zero-filled, so
 * the save that rolls does no fill on the caller's thread; without a ready
 * spare the roll fills one itself and never waits for the thread; a
 * background failure is logged and not fatal; the spare is not counted in
 * map_size_max_bytes and not prepared past it; a spare left by a crash in
 * any state is deleted at open and nothing acknowledged is lost.
 *
 * Fills are counted by wal.h's process-wide seams (wal_counts(), and
 * wal_test_spare_hold() / wal_test_spare_errno() to hold or fail the
 * thread), not timed: the assertions hold on a slow shared disk too.
 * Criterion runs each test in its own process, so seams set by one test
 * never reach another. The suite asks for spares early
 * (wal_test_spare_early()) so that a test can wait for one before a roll;
 * the last test checks the production rule (half-full segment).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lt_helpers.h"
#include "wal.h"

static void spare_setup(void)
{
	wal_test_spare_early(true);
	lt_setup();
}

TestSuite(spare, .init = spare_setup, .fini = lt_teardown, .timeout = 30);

#define SPARE_SEGMENT_BYTES (256u * 1024u)
/* Entries per save when filling segments (lt_append's limit). */
#define SPARE_BATCH 128u
/* Saves one fill_until_roll() makes at most (a 256 KiB segment takes
 * about 12). */
#define SPARE_SAVES_MAX 1000u
/* Longest wait for the spare thread (a 256 KiB fill takes milliseconds). */
#define SPARE_WAIT_MS 10000
#define SPARE_POLL_NS 1000000L

static struct rl_logstore_options spare_opts(void)
{
	return (struct rl_logstore_options){
		.map_size_bytes = SPARE_SEGMENT_BYTES };
}

static rl_logstore *open_with(const struct rl_logstore_options *o)
{
	char msg[RL_LOG_ERRMSG_MAX];
	rl_logstore *ls = NULL;
	int err = rl_logstore_open(lt_dir, o, &ls, msg, sizeof(msg));

	cr_assert_eq(err, 0, "open: %s (%s)", rl_logstore_strerror(err), msg);
	return ls;
}

static struct wal_counts counts(void)
{
	struct wal_counts c;

	wal_counts(&c);
	return c;
}

/* Waits (bounded) until the thread has finished `fills` spares in all. */
static void wait_spare_fills(uint64_t fills)
{
	struct timespec ts = { 0, SPARE_POLL_NS };

	for (int k = 0; k < SPARE_WAIT_MS && counts().spare_fills < fills; k++)
		nanosleep(&ts, NULL);
	cr_assert_geq(counts().spare_fills, fills,
		      "the spare thread did not finish spare %llu in %d ms",
		      (unsigned long long)fills, SPARE_WAIT_MS);
}

static void wait_spare_failures(uint64_t failures)
{
	struct timespec ts = { 0, SPARE_POLL_NS };

	for (int k = 0; k < SPARE_WAIT_MS && counts().spare_failures < failures;
	     k++)
		nanosleep(&ts, NULL);
	cr_assert_geq(counts().spare_failures, failures);
}

/*
 * Appends batches of term-1 entries from *next on until the log rolls to a
 * new segment (the save that rolls included), each batch committing the
 * entries before it. Returns the last index before the save that rolled;
 * *next moves past what was written.
 */
static rl_index fill_until_roll(rl_logstore *ls, rl_index *next)
{
	struct rl_hard_state hs = { .term = 1, .vote = 1 };
	uint64_t bytes = rl_logstore_map_size(ls);

	for (unsigned k = 0; k < SPARE_SAVES_MAX; k++) {
		rl_index before = *next - 1;
		/* Everything before the batch is committed: compactions may
		 * go up to there. */
		hs.commit = before;
		int err = lt_append(ls, *next, SPARE_BATCH, 1, &hs);
		cr_assert_eq(err, 0, "save at %llu: %s",
			     (unsigned long long)*next,
			     rl_logstore_errmsg(ls));
		*next += SPARE_BATCH;
		if (rl_logstore_map_size(ls) != bytes)
			return before;
	}
	cr_assert_fail("no roll after %u saves", SPARE_SAVES_MAX);
	return 0;
}

static char *spare_path(void)
{
	char *p;

	cr_assert_gt(asprintf(&p, "%s/%s", lt_dir, WAL_SPARE_NAME), 0);
	return p;
}

static bool spare_exists(void)
{
	char *p = spare_path();
	bool yes = access(p, F_OK) == 0;

	free(p);
	return yes;
}

/* The save that rolls while a spare is ready does no zero fill on the
 * caller's thread: it uses the spare; the next spare is then prepared. */
Test(spare, roll_with_a_spare_ready_does_not_fill_on_the_caller)
{
	struct rl_logstore_options o = spare_opts();
	rl_logstore *ls = open_with(&o);
	struct wal_counts c0;
	rl_index next = 1;

	/* A new log's first segment is filled at open, before the thread
	 * runs; the thread then prepares the first spare. */
	cr_assert_eq(counts().sync_fills, 1);
	wait_spare_fills(1);
	cr_assert(spare_exists());
	for (int roll = 1; roll <= 3; roll++) {
		c0 = counts();
		fill_until_roll(ls, &next);
		cr_assert_eq(counts().sync_fills, c0.sync_fills,
			     "roll %d filled a segment on the caller", roll);
		cr_assert_eq(counts().spare_uses, c0.spare_uses + 1);
		cr_assert_eq(lt_seg_count(lt_dir), (size_t)roll + 1);
		cr_assert_eq(rl_logstore_map_size(ls),
			     (uint64_t)(roll + 1) * SPARE_SEGMENT_BYTES,
			     "the spare is not counted in the map size");
		wait_spare_fills(c0.spare_fills + 1);
	}
	rl_logstore_close(ls);
	cr_assert_not(spare_exists(), "close deletes the spare");
	ls = open_with(&o);
	lt_assert_range_term(ls, 1, next - 1, 1);
	rl_logstore_close(ls);
}

/* With the thread still filling (held here) the roll fills a segment
 * itself instead of waiting; close ends a held thread without waiting for
 * the hold. Once the thread finishes, the next roll uses its spare. */
Test(spare, roll_without_a_ready_spare_fills_itself_and_does_not_wait)
{
	struct rl_logstore_options o = spare_opts();
	rl_logstore *ls;
	struct wal_counts c0;
	rl_index next = 1;

	wal_test_spare_hold(true);
	ls = open_with(&o);
	c0 = counts();
	fill_until_roll(ls, &next);
	cr_assert_eq(counts().sync_fills, c0.sync_fills + 1);
	cr_assert_eq(counts().spare_uses, 0);
	/* Still held: a second roll falls back again. */
	fill_until_roll(ls, &next);
	cr_assert_eq(counts().sync_fills, c0.sync_fills + 2);
	wal_test_spare_hold(false);
	wait_spare_fills(1);
	c0 = counts();
	fill_until_roll(ls, &next);
	cr_assert_eq(counts().sync_fills, c0.sync_fills);
	cr_assert_eq(counts().spare_uses, 1);
	/* close while the thread is held on the next spare: the test's
	 * timeout fails it if close waits for the hold. */
	wal_test_spare_hold(true);
	rl_logstore_close(ls);
	cr_assert_not(spare_exists(), "an unfinished spare is deleted");
	wal_test_spare_hold(false);
	ls = open_with(&o);
	lt_assert_range_term(ls, 1, next - 1, 1);
	rl_logstore_close(ls);
}

struct log_capture {
	int calls;
	int err;
	char msg[RL_LOG_ERRMSG_MAX];
};

static void capture_log(void *ctx, int err, const char *msg)
{
	struct log_capture *c = ctx;

	c->calls++;
	c->err = err;
	snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

/* A spare that fails in the background (disk full here) is not an error of
 * any call: the next roll fills a segment itself, succeeds, and logs the
 * cause through log_fn; the handle stays usable, the partial spare is
 * gone, and once the disk has room again spares are used again. */
Test(spare, background_failure_falls_back_and_is_logged)
{
	struct log_capture cap = { 0 };
	struct rl_logstore_options o = spare_opts();
	rl_logstore *ls;
	struct wal_counts c0;
	rl_index next = 1;

	o.log_fn = capture_log;
	o.log_ctx = &cap;
	wal_test_spare_errno(ENOSPC);
	ls = open_with(&o);
	wait_spare_failures(1);
	cr_assert_not(spare_exists(), "a failed spare is deleted");
	cr_assert_eq(cap.calls, 0, "reported only by the roll that needs it");
	/* The disk has room again; the failure is reported by the next roll,
	 * which also asks for a new spare. */
	wal_test_spare_errno(0);
	c0 = counts();
	fill_until_roll(ls, &next);
	cr_assert_eq(counts().sync_fills, c0.sync_fills + 1);
	cr_assert_eq(cap.calls, 1);
	cr_assert_eq(cap.err, RL_LOG_ERR_NOSPACE);
	cr_assert(strstr(cap.msg, WAL_SPARE_NAME) &&
		  strstr(cap.msg, "not fatal"), "%s", cap.msg);
	wait_spare_fills(1);
	c0 = counts();
	fill_until_roll(ls, &next);
	cr_assert_eq(counts().sync_fills, c0.sync_fills);
	cr_assert_eq(counts().spare_uses, 1);
	cr_assert_eq(cap.calls, 1);
	lt_assert_range_term(ls, 1, next - 1, 1);
	rl_logstore_close(ls);
}

/* The spare is not counted in map_size_max_bytes or
 * rl_logstore_map_size(): it is prepared only while one more segment fits
 * under the bound, so the log fills exactly the segments it did without a
 * spare and then fails with RL_LOG_ERR_NOSPACE as before; a compaction
 * that frees segments brings the spare back. */
Test(spare, spare_is_not_counted_and_not_prepared_past_the_bound)
{
	struct rl_logstore_options o = spare_opts();
	struct rl_hard_state hs = { .term = 1, .vote = 1 };
	rl_logstore *ls;
	rl_index next = 1;
	uint64_t fills = 1;
	int err = 0;

	o.map_size_max_bytes = 4 * SPARE_SEGMENT_BYTES;
	ls = open_with(&o);
	for (size_t segs = 2; segs <= 4; segs++) {
		wait_spare_fills(fills++);
		cr_assert(spare_exists());
		cr_assert_eq(rl_logstore_map_size(ls),
			     (segs - 1) * SPARE_SEGMENT_BYTES);
		fill_until_roll(ls, &next);
		cr_assert_eq(lt_seg_count(lt_dir), segs);
	}
	/* Four segments: a fifth would pass the bound, so no spare. */
	cr_assert_eq(counts().spare_uses, 3);
	cr_assert_not(spare_exists(), "a spare past the bound was prepared");
	for (unsigned k = 0; k < SPARE_SAVES_MAX && err == 0; k++) {
		hs.commit = next - 1;
		err = lt_append(ls, next, SPARE_BATCH, 1, &hs);
		if (err == 0)
			next += SPARE_BATCH;
	}
	cr_assert_eq(err, RL_LOG_ERR_NOSPACE, "%s", rl_logstore_strerror(err));
	cr_assert_eq(rl_logstore_map_size(ls), 4 * SPARE_SEGMENT_BYTES);
	cr_assert_not(spare_exists());
	/* Compaction frees segments: the spare comes back. */
	rl_logstore_hard_state(ls, &hs);
	cr_assert_eq(rl_logstore_compact(ls, hs.commit, NULL), 0, "%s",
		     rl_logstore_errmsg(ls));
	cr_assert_lt(lt_seg_count(lt_dir), 4);
	wait_spare_fills(fills);
	cr_assert(spare_exists());
	rl_logstore_close(ls);
}

/* ---- crash consistency --------------------------------------------------- */

/* What a crash may leave as WAL_SPARE_NAME. */
enum leftover {
	LEFT_EMPTY,        /* created, nothing allocated yet */
	LEFT_HALF_FILLED,  /* allocated, zeros written part way */
	LEFT_READY,        /* filled and fsync'd, never used */
	LEFT_GARBAGE,      /* full size, contents of a reused disk block */
	LEFT_USED,         /* header + checkpoint written, rename lost */
	LEFT_N
};

static void write_leftover(enum leftover kind, const uint8_t *seg0_start,
			   size_t start_len)
{
	char *p = spare_path();
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	uint8_t *buf = calloc(1, SPARE_SEGMENT_BYTES);
	size_t len = SPARE_SEGMENT_BYTES;

	cr_assert_geq(fd, 0);
	cr_assert_not_null(buf);
	if (kind == LEFT_EMPTY)
		len = 0;
	if (kind == LEFT_HALF_FILLED)
		len = SPARE_SEGMENT_BYTES / 2 + 4096;
	if (kind == LEFT_GARBAGE)
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)(k * 131 + 7);
	if (kind == LEFT_USED)
		memcpy(buf, seg0_start, start_len);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	if (kind == LEFT_HALF_FILLED)
		cr_assert_eq(ftruncate(fd, SPARE_SEGMENT_BYTES), 0);
	close(fd);
	free(buf);
	free(p);
}

/* The spare, if there is one now, is the thread's new one: zeros so far,
 * none of the leftover's bytes. */
static void assert_no_leftover_bytes(void)
{
	char *p = spare_path();
	size_t len;
	uint8_t *buf;

	if (access(p, F_OK) != 0) {
		free(p);
		return;
	}
	buf = lt_read_file(p, &len);
	for (size_t k = 0; k < len; k++)
		cr_assert_eq(buf[k], 0, "leftover byte at %zu of the spare", k);
	free(buf);
	free(p);
}

/* A spare left by a crash in any state is deleted at open: it never holds
 * an acknowledged record. The log opens with everything acknowledged and
 * keeps working (and rolling). */
Test(spare, leftover_spare_in_any_state_is_deleted_at_open)
{
	struct rl_logstore_options o = spare_opts();
	rl_logstore *ls = open_with(&o);
	rl_index next = 1, last;
	uint8_t *seg0;
	char *path;
	size_t len;

	fill_until_roll(ls, &next);
	last = next - 1;
	rl_logstore_close(ls);
	path = lt_seg_path(lt_dir, 0);
	seg0 = lt_read_file(path, &len);
	free(path);
	for (int kind = 0; kind < LEFT_N; kind++) {
		write_leftover(kind, seg0, 4096);
		wal_test_spare_hold(true);
		ls = open_with(&o);
		assert_no_leftover_bytes();
		wal_test_spare_hold(false);
		cr_assert_eq(rl_logstore_last_index(ls), last, "leftover %d",
			     kind);
		lt_assert_range_term(ls, 1, last, 1);
		rl_logstore_close(ls);
		cr_assert_not(spare_exists(), "leftover %d", kind);
		cr_assert_eq(lt_seg_count(lt_dir), 2, "leftover %d", kind);
	}
	free(seg0);
	ls = open_with(&o);
	fill_until_roll(ls, &next);
	lt_assert_range_term(ls, 1, next - 1, 1);
	rl_logstore_close(ls);
}

/* Offset after the first record (the checkpoint) of a segment file. */
static size_t after_checkpoint(const uint8_t *file)
{
	uint32_t plen = (uint32_t)file[56] | (uint32_t)file[57] << 8 |
			(uint32_t)file[58] << 16 | (uint32_t)file[59] << 24;

	return WAL_SEGMENT_HEADER_BYTES +
	       ((WAL_REC_HEADER_BYTES + plen + 7) & ~(size_t)7);
}

/*
 * A crash in a roll from the spare, after its header and checkpoint were
 * fdatasync'd, before the directory fsync: on disk either the rename
 * persisted (a new segment holding only its checkpoint) or it did not (the
 * same bytes still named as the spare). The save that rolled was not
 * acknowledged. Both reopen with every acknowledged entry, and the log
 * continues.
 */
Test(spare, crash_between_rename_and_directory_sync_loses_nothing)
{
	struct rl_logstore_options o = spare_opts();
	for (int renamed = 0; renamed <= 1; renamed++) {
		uint64_t fills = counts().spare_fills;
		rl_logstore *ls = open_with(&o);
		rl_index next = rl_logstore_last_index(ls) + 1, acked;
		size_t segs = lt_seg_count(lt_dir), len;
		char *path, *sp = spare_path();
		uint64_t uses = counts().spare_uses;
		uint8_t *file;

		wait_spare_fills(fills + 1);
		acked = fill_until_roll(ls, &next);
		cr_assert_eq(counts().spare_uses, uses + 1);
		rl_logstore_close(ls);
		/* Undo the batch the rolling save appended after the
		 * checkpoint: it was not yet written at the crash. */
		path = lt_seg_path(lt_dir, segs);
		file = lt_read_file(path, &len);
		size_t cut = after_checkpoint(file);
		memset(file + cut, 0, len - cut);
		lt_write_file(path, file, len);
		if (!renamed)
			cr_assert_eq(rename(path, sp), 0);
		ls = open_with(&o);
		cr_assert_eq(rl_logstore_last_index(ls), acked);
		lt_assert_range_term(ls, 1, acked, 1);
		cr_assert_eq(lt_seg_count(lt_dir), renamed ? segs + 1 : segs);
		next = acked + 1;
		fill_until_roll(ls, &next);
		lt_assert_range_term(ls, 1, next - 1, 1);
		rl_logstore_close(ls);
		free(file);
		free(path);
		free(sp);
	}
}

/* Without the test seam a spare is asked for only once the segment taking
 * appends is WAL_SPARE_START_PERCENT full: a log that stays small never
 * writes one; one that grows has it ready well before its roll. */
Test(spare, spare_is_asked_for_once_the_segment_is_half_full)
{
	struct rl_logstore_options o = spare_opts();
	struct rl_hard_state hs = { .term = 1, .vote = 1 };
	rl_logstore *ls;
	rl_index next = 1;
	uint64_t bytes;

	wal_test_spare_early(false);
	ls = open_with(&o);
	bytes = rl_logstore_map_size(ls);
	/* Small saves: each moves the segment's end by well under 1%. */
	for (unsigned k = 0; k < SPARE_SAVES_MAX && counts().spare_requests == 0;
	     k++) {
		cr_assert_eq(lt_append(ls, next, 8, 1, &hs), 0, "%s",
			     rl_logstore_errmsg(ls));
		next += 8;
	}
	cr_assert_eq(counts().spare_requests, 1);
	cr_assert_eq(rl_logstore_map_size(ls), bytes, "rolled before asking");
	/* At least half the segment was written before the request. */
	size_t len;
	char *path = lt_seg_path(lt_dir, 0);
	uint8_t *file = lt_read_file(path, &len);
	size_t used = len;
	while (used > 0 && file[used - 1] == 0)
		used--;
	cr_assert_geq(used * 100, (size_t)SPARE_SEGMENT_BYTES *
		      WAL_SPARE_START_PERCENT - 100u * 2048u,
		      "asked at %zu bytes", used);
	free(file);
	free(path);
	wait_spare_fills(1);
	fill_until_roll(ls, &next);
	cr_assert_eq(counts().spare_uses, 1);
	cr_assert_eq(counts().sync_fills, 1, "only the first segment, at open");
	/* The new segment is nearly empty: no request yet. */
	cr_assert_eq(counts().spare_requests, 1);
	rl_logstore_close(ls);
	ls = open_with(&o);
	lt_assert_range_term(ls, 1, next - 1, 1);
	rl_logstore_close(ls);
}
