/*
 * lt_helpers.h - shared helpers of the log store unit tests: temporary
 * directories, deterministic entry contents, and assertions that compare a
 * store with what a test expects.
 */
#ifndef LT_HELPERS_H
#define LT_HELPERS_H

#include <stdint.h>

#include "logstore.h"

/* Largest entry the helpers build (they use a stack buffer per entry). */
#define LT_DATA_MAX 4096u
/* Most entries one helper call writes. */
#define LT_BATCH_MAX 256u

/* Creates a fresh directory under /tmp; returns a malloc()ed path. */
char *lt_tmpdir(void);
/* Removes dir and its files, frees the path. */
void lt_rmdir(char *dir);

/* The per-test directory of the shared fixture: lt_setup() creates it,
 * lt_teardown() removes it (Criterion runs .fini even after a failed
 * assertion, so no directory is left behind). NULL outside a test. */
extern char *lt_dir;
void lt_setup(void);
void lt_teardown(void);

/* Length and bytes of the deterministic payload of entry (i, t): a reader
 * can tell whether an entry is exactly the one written. */
uint32_t lt_data_len(rl_index i, rl_term t);
void lt_fill(uint8_t *buf, uint32_t len, rl_index i, rl_term t);

/* Opens dir with default options, asserting success. */
rl_logstore *lt_open(const char *dir);

/*
 * Saves entries [first, first + n) of term t with lt_fill() payloads and,
 * if hs is not NULL, the hard state, in one batch. Returns save()'s result.
 */
int lt_append(rl_logstore *ls, rl_index first, size_t n, rl_term t,
	      const struct rl_hard_state *hs);

/* Asserts that entries [lo, hi] are present with the given terms (terms[k]
 * for index lo + k) and their lt_fill() payloads. */
void lt_assert_entries(rl_logstore *ls, rl_index lo, rl_index hi,
		       const rl_term *terms);

/* Asserts every entry in [first, last] has term t and lt_fill() data. */
void lt_assert_range_term(rl_logstore *ls, rl_index lo, rl_index hi,
			  rl_term t);

/* Raw access to the segment files for corruption tests (the layout is
 * documented at the top of raftlog/logstore.c and in raftlog/wal.h). */
/* Number of segment files (*.wal) in dir. */
size_t lt_seg_count(const char *dir);
/* Path of the k-th segment of dir in sequence order (malloc()ed). */
char *lt_seg_path(const char *dir, size_t k);
/* Whole file into a malloc()ed buffer; *len its size. */
uint8_t *lt_read_file(const char *path, size_t *len);
/* Replaces the file's content by buf (same or other size). */
void lt_write_file(const char *path, const void *buf, size_t len);
/* Finds the stored entry (i, t) with its lt_fill() payload in the
 * segments of dir; returns the file offset of its header and sets *path
 * (malloc()ed) to its segment. Asserts it is found. */
uint64_t lt_find_entry(const char *dir, rl_index i, rl_term t, char **path);
/* XORs the byte at off of path with mask. */
void lt_flip(const char *path, uint64_t off, uint8_t mask);
/* Appends a well-formed, checksummed batch record holding entries
 * [first, first + n) of term t (lt_fill() payloads) after the last record
 * of dir's last segment: only what it says is wrong, not its checksums. */
void lt_append_raw_batch(const char *dir, rl_index first, size_t n, rl_term t);

/* Builds a valid stored entry record (header with CRC-32C, then data) as
 * logstore.c lays it out; returns its length. buf must hold
 * RL_LOG_ENTRY_HEADER_BYTES + len bytes. */
size_t lt_make_record(uint8_t *buf, rl_index i, rl_term t, uint8_t type,
		      const void *data, uint32_t len);

#endif /* LT_HELPERS_H */
