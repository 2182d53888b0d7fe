/*
 * test_corrupt.c - a damaged or inconsistent write-ahead log stops the
 * member with RL_LOG_ERR_CORRUPT and a message naming the index and the
 * problem; it is never served and never quietly replaced by an empty or
 * shorter log. Only a torn tail (the last write, interrupted before its
 * fdatasync returned) is cut, and that loses only the unacknowledged save.
 *
 * Each test writes a log through the API, damages its segment files
 * directly and reopens. The standard log: entries 1..10, terms 1 (1..4) and
 * 2 (5..10), commit 6, written by two saves (two records).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lt_helpers.h"

TestSuite(corrupt, .init = lt_setup, .fini = lt_teardown, .timeout = 20);

static void write_standard_log(void)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = { .term = 2, .vote = 1, .commit = 0 };

	cr_assert_eq(lt_append(ls, 1, 4, 1, &hs), 0);
	hs.commit = 6;
	cr_assert_eq(lt_append(ls, 5, 6, 2, &hs), 0);
	rl_logstore_close(ls);
}

/* Opens and expects err with every fragment in the message. */
static void assert_open_fails(int want, const char *frag1, const char *frag2)
{
	char msg[RL_LOG_ERRMSG_MAX];
	rl_logstore *ls = (void *)1;
	int err = rl_logstore_open(lt_dir, NULL, &ls, msg, sizeof(msg));

	cr_assert_eq(err, want, "open gave %s (%s)", rl_logstore_strerror(err),
		     msg);
	cr_assert_null(ls);
	cr_assert(strstr(msg, frag1), "message '%s' lacks '%s'", msg, frag1);
	if (frag2 != NULL)
		cr_assert(strstr(msg, frag2), "message '%s' lacks '%s'", msg,
			  frag2);
}

static void assert_open_corrupt(const char *frag1, const char *frag2)
{
	assert_open_fails(RL_LOG_ERR_CORRUPT, frag1, frag2);
}

static void flip_entry_byte(rl_index i, rl_term t, size_t off)
{
	char *path;
	uint64_t at = lt_find_entry(lt_dir, i, t, &path);

	lt_flip(path, at + off, 0x40);
	free(path);
}

/* A bit flip in the last record is not a torn write (every sector of it
 * was written): corruption, not a silently shortened log. */
Test(corrupt, flipped_data_byte_in_last_record_fails_open)
{
	write_standard_log();
	flip_entry_byte(9, 2, RL_LOG_ENTRY_HEADER_BYTES);
	assert_open_corrupt("index 9", "checksum mismatch");
}

Test(corrupt, flipped_term_byte_fails_open)
{
	write_standard_log();
	flip_entry_byte(8, 2, 0); /* low byte of the term */
	assert_open_corrupt("index 8", "checksum");
}

/* Open verifies every record, committed ones included. */
Test(corrupt, flipped_committed_entry_fails_open)
{
	write_standard_log();
	flip_entry_byte(3, 1, RL_LOG_ENTRY_HEADER_BYTES + 1);
	assert_open_corrupt("index 3", "checksum mismatch");
}

/* Damage after open (the disk returns other bytes than were written):
 * every read verifies, and the handle stops at the first mismatch. */
Test(corrupt, damage_under_an_open_handle_fails_the_read_and_stops)
{
	write_standard_log();
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_entry *e = (void *)1;
	size_t n = 5;
	rl_term t;

	flip_entry_byte(3, 1, RL_LOG_ENTRY_HEADER_BYTES + 1);
	cr_assert_eq(rl_logstore_term(ls, 2, &t), 0);
	cr_assert_eq(t, 1);
	cr_assert_eq(rl_logstore_entries(ls, 1, 11, UINT64_MAX, &e, &n),
		     RL_LOG_ERR_CORRUPT);
	cr_assert_null(e);
	cr_assert_eq(n, 0);
	cr_assert(strstr(rl_logstore_errmsg(ls), "index 3"), "%s",
		  rl_logstore_errmsg(ls));
	/* Stopped: nothing more is served or written. */
	cr_assert_eq(rl_logstore_term(ls, 2, &t), RL_LOG_ERR_STOPPED);
	cr_assert_eq(lt_append(ls, 11, 1, 2, NULL), RL_LOG_ERR_STOPPED);
	rl_logstore_close(ls);
	assert_open_corrupt("index 3", "checksum");
}

/* The hard state is checksummed with its record. */
Test(corrupt, damaged_hard_state_fails_open)
{
	uint8_t hs[24] = { 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
			   6, 0, 0, 0, 0, 0, 0, 0 };
	size_t len;

	write_standard_log();
	char *path = lt_seg_path(lt_dir, 0);
	uint8_t *file = lt_read_file(path, &len);
	uint8_t *hit = memmem(file, len, hs, sizeof(hs));
	cr_assert_not_null(hit, "hard state {2, 1, 6} not found");
	lt_flip(path, (uint64_t)(hit - file) + 8, 0x02); /* the vote */
	free(file);
	free(path);
	assert_open_corrupt("segment 0", "checksum mismatch");
}

/* A segment cut short (a copy that stopped, a truncate): the file is
 * smaller than it was created, whatever records survive. */
Test(corrupt, truncated_segment_fails_open)
{
	size_t len;

	write_standard_log();
	char *path = lt_seg_path(lt_dir, 0);
	uint8_t *file = lt_read_file(path, &len);
	lt_write_file(path, file, len / 2);
	free(file);
	free(path);
	assert_open_corrupt("truncated", NULL);
}

/* Log with small segments: entries 1..n of term 1 in batches of 16, commit
 * following, so that it spans several segments. */
static void write_long_log(rl_index n)
{
	struct rl_logstore_options o = { .map_size_bytes = 256 * 1024 };
	struct rl_hard_state hs = { .term = 1, .vote = 1 };
	char msg[RL_LOG_ERRMSG_MAX];
	rl_logstore *ls;

	cr_assert_eq(rl_logstore_open(lt_dir, &o, &ls, msg, sizeof(msg)), 0,
		     "%s", msg);
	for (rl_index i = 1; i <= n; i += 16) {
		hs.commit = i - 1;
		cr_assert_eq(lt_append(ls, i, 16, 1, &hs), 0, "%s",
			     rl_logstore_errmsg(ls));
	}
	rl_logstore_close(ls);
}

Test(corrupt, missing_middle_segment_fails_open)
{
	write_long_log(16 * 400);
	cr_assert_geq(lt_seg_count(lt_dir), 3);
	char *path = lt_seg_path(lt_dir, 1);
	cr_assert_eq(unlink(path), 0);
	free(path);
	assert_open_corrupt("segment 1 is missing", NULL);
}

/* The oldest segment deleted behind the store's back while it still held
 * live entries: never "rejoin with a shorter log". */
Test(corrupt, missing_first_segment_fails_open)
{
	write_long_log(16 * 200);
	char *path = lt_seg_path(lt_dir, 0);
	cr_assert_eq(unlink(path), 0);
	free(path);
	assert_open_corrupt("index 1:", "entry missing");
}

/* Well-formed, checksummed records that break the log's rules: open
 * checks the log's structure, not only checksums. */
Test(corrupt, term_going_down_fails_open)
{
	write_standard_log();
	lt_append_raw_batch(lt_dir, 11, 1, 1);
	assert_open_corrupt("index 11", "term 1 is lower than the term 2");
}

Test(corrupt, gap_fails_open)
{
	write_standard_log();
	lt_append_raw_batch(lt_dir, 13, 1, 2);
	assert_open_corrupt("index 13", "gap");
}

Test(corrupt, overwriting_committed_entry_fails_open)
{
	write_standard_log();
	lt_append_raw_batch(lt_dir, 5, 1, 2);
	assert_open_corrupt("index 5", "committed");
}

Test(corrupt, entry_above_hard_state_term_fails_open)
{
	write_standard_log();
	lt_append_raw_batch(lt_dir, 11, 1, 3);
	assert_open_corrupt("index 11", "above the hard state term 2");
}

Test(corrupt, foreign_segment_is_a_version_error)
{
	char path[512];
	uint8_t junk[4096];

	write_standard_log();
	snprintf(path, sizeof(path), "%s/0000000000000001-0000000000000001.wal",
		 lt_dir);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	memset(junk, 0x5a, sizeof(junk));
	cr_assert_eq(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	fclose(f);
	assert_open_fails(RL_LOG_ERR_VERSION, "not a raftbus log segment", NULL);
}
