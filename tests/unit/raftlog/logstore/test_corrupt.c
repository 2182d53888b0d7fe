/*
 * test_corrupt.c - a damaged or inconsistent log stops the member with
 * RL_LOG_ERR_CORRUPT and a message naming the index and the problem; it is
 * never served and never quietly replaced by an empty log.
 *
 * Each test writes a log through the API, closes it, damages it (through
 * LMDB directly, or by flipping a byte in the data file) and reopens.
 * The standard log: entries 1..10, terms 1 (1..4) and 2 (5..10), commit 6.
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

/* Opens and expects RL_LOG_ERR_CORRUPT with every fragment in the
 * message. */
static void assert_open_corrupt(const char *frag1, const char *frag2)
{
	char msg[RL_LOG_ERRMSG_MAX];
	rl_logstore *ls = (void *)1;
	int err = rl_logstore_open(lt_dir, NULL, &ls, msg, sizeof(msg));

	cr_assert_eq(err, RL_LOG_ERR_CORRUPT, "open gave %s (%s)",
		     rl_logstore_strerror(err), msg);
	cr_assert_null(ls);
	cr_assert(strstr(msg, frag1), "message '%s' lacks '%s'", msg, frag1);
	if (frag2 != NULL)
		cr_assert(strstr(msg, frag2), "message '%s' lacks '%s'", msg,
			  frag2);
}

static void flip_entry_byte(rl_index i, size_t off)
{
	struct lt_raw *r = lt_raw_open(lt_dir);
	uint8_t rec[512];
	size_t len = lt_raw_get_entry(r, i, rec, sizeof(rec));

	cr_assert_lt(off, len);
	rec[off] ^= 0x40;
	lt_raw_put_entry(r, i, rec, len);
	lt_raw_close(r);
}

/* Entries after the commit index are checked at open. */
Test(corrupt, flipped_data_byte_in_tail_fails_open)
{
	write_standard_log();
	flip_entry_byte(9, RL_LOG_ENTRY_HEADER_BYTES);
	assert_open_corrupt("index 9", "checksum mismatch");
}

Test(corrupt, flipped_term_byte_fails_open)
{
	write_standard_log();
	flip_entry_byte(8, 0); /* low byte of the term */
	assert_open_corrupt("index 8", "checksum");
}

/* Committed entries are not all checksummed at open (bounded open time);
 * every read verifies, and the handle stops at the first mismatch. */
Test(corrupt, flipped_committed_entry_fails_every_read_of_it)
{
	write_standard_log();
	flip_entry_byte(3, RL_LOG_ENTRY_HEADER_BYTES + 1);
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_entry *e = (void *)1;
	size_t n = 5;
	rl_term t;

	cr_assert_eq(rl_logstore_term(ls, 2, &t), 0);
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
	ls = lt_open(lt_dir);
	cr_assert_eq(rl_logstore_term(ls, 3, &t), RL_LOG_ERR_CORRUPT);
	cr_assert(strstr(rl_logstore_errmsg(ls), "index 3"), "%s",
		  rl_logstore_errmsg(ls));
	rl_logstore_close(ls);
}

/* Corruption "on the platter": find the entry's bytes in data.mdb by a
 * marker, flip one, reopen. */
Test(corrupt, flipped_byte_in_data_file_is_found)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = { .term = 1, .commit = 0 };
	uint8_t marker[64];
	struct rl_entry e = { .term = 1, .index = 1, .data_len = 64,
			      .data = marker };
	struct rl_logstore_batch b = { .entries = &e, .entries_n = 1,
				       .hard_state = &hs };
	char path[512];
	struct stat sb;

	for (int k = 0; k < 64; k++)
		marker[k] = (uint8_t)("raftbus-corruption-marker"[k % 25] + k);
	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	rl_logstore_close(ls);
	snprintf(path, sizeof(path), "%s/data.mdb", lt_dir);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	uint8_t *file = malloc((size_t)sb.st_size);
	cr_assert_not_null(file);
	cr_assert_eq(pread(fd, file, (size_t)sb.st_size, 0), sb.st_size);
	uint8_t *hit = memmem(file, (size_t)sb.st_size, marker, 64);
	cr_assert_not_null(hit, "marker not found in data.mdb");
	uint8_t flipped = hit[40] ^ 0x01;
	cr_assert_eq(pwrite(fd, &flipped, 1, (hit - file) + 40), 1);
	close(fd);
	free(file);
	assert_open_corrupt("index 1", "checksum mismatch");
}

Test(corrupt, commit_beyond_last_index_fails_open)
{
	write_standard_log();
	struct lt_raw *r = lt_raw_open(lt_dir);
	for (rl_index i = 5; i <= 10; i++)
		lt_raw_del_entry(r, i); /* lost writes: log ends at 4 */
	lt_raw_close(r);
	assert_open_corrupt("commit index 6 is beyond the last log index 4",
			    NULL);
}

Test(corrupt, missing_uncommitted_tail_fails_open)
{
	write_standard_log();
	struct lt_raw *r = lt_raw_open(lt_dir);
	lt_raw_del_entry(r, 10);
	lt_raw_del_entry(r, 9);
	lt_raw_close(r);
	assert_open_corrupt("index 9", "missing");
}

/* The whole log gone behind the metadata's back: never "rejoin empty". */
Test(corrupt, missing_log_fails_open)
{
	write_standard_log();
	struct lt_raw *r = lt_raw_open(lt_dir);
	lt_raw_drop_entries(r);
	lt_raw_close(r);
	assert_open_corrupt("commit index 6", "last log index 0");
}

Test(corrupt, gap_in_committed_entries_fails_open)
{
	write_standard_log();
	struct lt_raw *r = lt_raw_open(lt_dir);
	lt_raw_del_entry(r, 4);
	lt_raw_close(r);
	assert_open_corrupt("index 5", "gap");
}

Test(corrupt, record_under_wrong_key_fails_open)
{
	write_standard_log();
	struct lt_raw *r = lt_raw_open(lt_dir);
	uint8_t rec[512];
	size_t len = lt_raw_get_entry(r, 2, rec, sizeof(rec));
	lt_raw_put_entry(r, 3, rec, len); /* a valid record, wrong place */
	lt_raw_close(r);
	assert_open_corrupt("index 3", "stored index 2");
}

/* Stores a valid record (right CRC and stored index) of entry i, term t,
 * straight into the closed store's LMDB: only its place in the log is
 * wrong, so open must find it by the log's rules, not by a checksum. */
static void put_valid_record(rl_index i, rl_term t)
{
	struct lt_raw *r = lt_raw_open(lt_dir);
	uint8_t rec[64], data[4] = { 1, 2, 3, 4 };
	size_t len = lt_make_record(rec, i, t, RL_ENTRY_NORMAL, data, 4);
	lt_raw_put_entry(r, i, rec, len);
	lt_raw_close(r);
}

Test(corrupt, term_going_down_fails_open)
{
	write_standard_log();
	/* A well-formed, checksummed record of term 1 after term 2. */
	put_valid_record(6, 1);
	assert_open_corrupt("index 6", "term 1 is lower than the term 2");
}

Test(corrupt, entry_below_snapshot_fails_open)
{
	write_standard_log();
	rl_logstore *ls = lt_open(lt_dir);
	cr_assert_eq(rl_logstore_compact(ls, 5, NULL), 0);
	rl_logstore_close(ls);
	put_valid_record(3, 1);
	assert_open_corrupt("index 3", "at or below the snapshot index 5");
}

Test(corrupt, damaged_hard_state_record_fails_open)
{
	write_standard_log();
	struct lt_raw *r = lt_raw_open(lt_dir);
	lt_raw_flip_meta(r, "state", 8); /* the vote */
	lt_raw_close(r);
	assert_open_corrupt("'state'", "checksum");
}

Test(corrupt, lost_metadata_with_entries_fails_open)
{
	write_standard_log();
	struct lt_raw *r = lt_raw_open(lt_dir);
	lt_raw_del_meta(r, "version");
	lt_raw_del_meta(r, "state");
	lt_raw_del_meta(r, "snapshot");
	lt_raw_del_meta(r, "conf");
	lt_raw_close(r);
	assert_open_corrupt("metadata missing", "10 entries");
}

Test(corrupt, lost_snapshot_record_fails_open)
{
	write_standard_log();
	struct lt_raw *r = lt_raw_open(lt_dir);
	lt_raw_del_meta(r, "snapshot");
	lt_raw_close(r);
	assert_open_corrupt("'snapshot'", "missing");
}
