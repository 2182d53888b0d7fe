/*
 * logstore.h - the durable Raft log of one member: an append-only
 * write-ahead log.
 *
 * Holds what Raft requires to survive a crash (Raft paper §5, Figure 2,
 * "persistent state on all servers"): the log entries, the hard state
 * (current term, vote, commit index), the metadata of the last snapshot
 * (index, term, membership) and the current membership. Everything lives in
 * segment files in one directory (format: top of logstore.c and wal.h);
 * each write is one checksummed record appended with one write and made
 * durable with ONE fdatasync, so that a batch of entries and the hard state
 * that goes with it become durable together.
 *
 * The Raft core decides what to write (which suffix conflicts, when to
 * compact); this store makes each write atomic and durable, and refuses
 * writes that would break a guarantee already persisted (voting twice in a
 * term, overwriting a committed entry, a hole in the log).
 *
 * Integrity: every entry carries a CRC-32C over its term, index, type, length
 * and data; every record carries one over all its bytes. A mismatch, or a
 * log that does not fit its hard state, makes open / the read fail with
 * RL_LOG_ERR_CORRUPT and a message naming the index and the problem. The
 * store never serves data it could not verify, and never quietly starts
 * empty when it finds a damaged log. The one thing open repairs is a torn
 * tail: the last record of the last segment, written only in part by a
 * save that a crash (power loss) interrupted before its fdatasync returned
 * - that save was never acknowledged. It is cut and zeroed. A record is
 * taken as torn only if a sector of it is still zero (unwritten) and no
 * valid record follows it; any other damage is RL_LOG_ERR_CORRUPT.
 * Limit: damage to the length field of the very last record that makes it
 * look torn cannot be told from a torn write, so that record is cut. After RL_LOG_ERR_CORRUPT or
 * RL_LOG_ERR_IO, and after any failed commit (disk full included: whether
 * the data reached the disk is then unknown), the handle is stopped: every
 * later call except the getters of cached state and close returns
 * RL_LOG_ERR_STOPPED, and rl_logstore_errmsg() keeps the first reason. The
 * member must stop and reopen (which re-checks the log); on corruption an
 * operator repairs or replaces the directory.
 *
 * Threads: a handle is not internally locked. One thread at a time may use
 * it (normally the broker's loop thread); it may move between threads.
 * Handles on different directories are independent. Two handles (in any
 * processes) on the same directory are refused with RL_LOG_ERR_BUSY.
 * Each handle owns one background thread, started by rl_logstore_open()
 * and joined by rl_logstore_close(), with all signals blocked: once the
 * segment taking appends is half full it prepares the next segment file
 * ("spare.wal.tmp" in the directory: allocated, zero-filled, fsync'd), so
 * that the save that rolls to a new segment does not spend ~0.1 s per
 * 64 MiB filling it. It never touches the log's
 * state and no call waits for it (close excepted: at most for one step of
 * the fill - 1 MiB of writeback - or the spare's fsync); a roll with no
 * spare ready fills the segment itself, as if there were no thread. Do
 * not use a handle in a child process after fork() (the thread is not
 * there).
 *
 * Values returned through pointers are copies unless stated otherwise; no
 * pointer into the module's buffers ever leaves it.
 *
 * Memory: the handle indexes every entry after the snapshot (about 32 bytes
 * each); compaction bounds it. Disk: see struct rl_logstore_options; add
 * at most one spare segment of map_size_bytes while a handle is open.
 */
#ifndef RL_LOGSTORE_H
#define RL_LOGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_types.h"

typedef struct rl_logstore rl_logstore;

struct rl_storage; /* raft.h: the core's storage read interface */

/* Error codes returned by every function of this module (negative; 0 = ok). */
enum rl_log_err {
	RL_LOG_OK = 0,
	RL_LOG_ERR_INVALID = -1,     /* bad argument: NULL, index 0, bad type */
	RL_LOG_ERR_TOO_LARGE = -2,   /* entry or batch over its named maximum */
	RL_LOG_ERR_GAP = -3,         /* batch not contiguous, would leave a hole
	                              * or makes terms go down */
	RL_LOG_ERR_COMPACTED = -4,   /* index at or below the snapshot index */
	RL_LOG_ERR_UNAVAILABLE = -5, /* index beyond the last index */
	RL_LOG_ERR_SNAPSHOT_STALE = -6, /* snapshot not newer than the current */
	RL_LOG_ERR_UNSAFE = -7,      /* would break persisted Raft state: term
	                              * going down, a second vote in a term,
	                              * overwriting or un-committing a committed
	                              * entry, commit beyond the log */
	RL_LOG_ERR_CORRUPT = -8,     /* checksum mismatch or inconsistent log */
	RL_LOG_ERR_IO = -9,          /* the OS reported an I/O error */
	RL_LOG_ERR_NOSPACE = -10,    /* disk full or the segment files at
	                              * map_size_max_bytes */
	RL_LOG_ERR_NOMEM = -11,      /* out of memory */
	RL_LOG_ERR_BUSY = -12,       /* directory already open by another handle */
	RL_LOG_ERR_VERSION = -13,    /* not a raftbus log or another format */
	RL_LOG_ERR_STOPPED = -14,    /* an earlier CORRUPT or IO error or a
	                              * failed commit stopped this handle;
	                              * close and reopen */
};

/* Most entries one rl_logstore_save() may write. */
#define RL_LOG_BATCH_ENTRIES_MAX 8192u
/* Most data bytes (sum of data_len) one rl_logstore_save() may write (one
 * record; a record larger than the segment size gets a segment of its
 * own). */
#define RL_LOG_BATCH_BYTES_MAX (64u * 1024u * 1024u)
/* Bytes of the fixed header stored before each entry's data (with the
 * entry's CRC-32C). */
#define RL_LOG_ENTRY_HEADER_BYTES 28u
/* Longest message rl_logstore_errmsg() returns, including the NUL. */
#define RL_LOG_ERRMSG_MAX 256u
/* Defaults of struct rl_logstore_options (the names are from the LMDB
 * implementation this module had; the meaning is now the WAL's). */
#define RL_LOG_MAP_SIZE_DEFAULT_BYTES (64ull * 1024u * 1024u)
#define RL_LOG_MAP_SIZE_MAX_DEFAULT_BYTES (64ull * 1024u * 1024u * 1024u)

struct rl_logstore_options {
	/* Size of each new segment file (created at this size and
	 * zero-filled, so that appends never change the file size), and of
	 * the spare segment the background thread prepares (see Threads);
	 * 0 = RL_LOG_MAP_SIZE_DEFAULT_BYTES; at least 256 KiB (else
	 * RL_LOG_ERR_INVALID). Existing segments keep their size. */
	uint64_t map_size_bytes;
	/* Most bytes of segment files together: a save that needs a new
	 * segment past it fails with RL_LOG_ERR_NOSPACE, nothing written,
	 * handle usable (a compaction may pass it: it frees space).
	 * 0 = RL_LOG_MAP_SIZE_MAX_DEFAULT_BYTES. The spare segment is NOT
	 * counted: it is prepared only while one more segment of
	 * map_size_bytes fits under this bound (it is the space the next
	 * roll takes), so the segments reach exactly this bound as they
	 * would without it; disk use stays under map_size_max_bytes +
	 * map_size_bytes even when the bound is lowered at a reopen or a
	 * compaction passes it. */
	uint64_t map_size_max_bytes;
	/* Called (on the calling thread, inside the failing call) with every
	 * RL_LOG_ERR_CORRUPT / _IO / _NOSPACE error and its message, so that
	 * the cause reaches the member's log even when the error is mapped to
	 * a coarser code (e.g. by the rl_storage adapter). Also called, by
	 * the save or compaction that rolls to a new segment, with the
	 * failure of the background spare segment (_IO or _NOSPACE, message
	 * naming "spare.wal.tmp"): not an error of that call, which fills
	 * the segment itself and returns its own result. NULL = not called.
	 * msg is borrowed for the call. */
	void (*log_fn)(void *log_ctx, int err, const char *msg);
	void *log_ctx;
};

/* One atomic write. Parts are applied in this order, all in one record and
 * one fdatasync; if any part is refused nothing is written. */
struct rl_logstore_batch {
	/* Snapshot to install (NULL = none). Must be newer than the current
	 * snapshot (else RL_LOG_ERR_SNAPSHOT_STALE). If the log holds an entry
	 * at snapshot->index with snapshot->term, entries up to it are dropped
	 * and later ones kept; otherwise the whole log is dropped and the log
	 * continues at snapshot->index + 1. The commit index is raised to
	 * snapshot->index if lower (a snapshot holds only committed state) and
	 * the current membership becomes snapshot->conf. */
	const struct rl_snapshot_meta *snapshot;
	/* Entries to append, contiguous indexes, terms not going down
	 * (entries_n 0 = none). If entries[0].index <= last index, entries
	 * from entries[0].index on are dropped first: the caller (the Raft
	 * core) has decided they conflict. entries[0].index must be in
	 * [first index, last index + 1]. Data is copied; the array and data
	 * stay the caller's. */
	const struct rl_entry *entries;
	size_t entries_n;
	/* Hard state to store (NULL = unchanged). Its commit may cover the
	 * entries of this same batch. */
	const struct rl_hard_state *hard_state;
	/* Current membership to store (NULL = unchanged). */
	const struct rl_conf_state *conf;
};

/*
 * Opens (creating if needed, mode 0700/0600) the log in directory dir and
 * checks it: every segment (name, sequence without gaps, size as created,
 * header), the checksum of every record and of every entry, the structure
 * of the whole index sequence (no gap, terms never going down, nothing at
 * or below the snapshot index, no committed entry overwritten, every entry
 * present), the hard state against the log after every record (commit
 * within [snapshot index, last index], the last term not above the hard
 * state term) and each segment's starting checkpoint against the segments
 * before it. A torn tail is cut (see the top). Open reads every segment
 * once: its time grows with the log length, which compaction bounds. A
 * directory holding an LMDB log of an earlier build (data.mdb) is refused
 * with RL_LOG_ERR_VERSION. A leftover spare segment ("spare.wal.tmp", in
 * whatever state a crash left it) is deleted: it never holds anything a
 * save acknowledged. Then starts the background thread (see Threads).
 * Files of other names are ignored unless they
 * end in ".wal" (RL_LOG_ERR_VERSION if not a segment name) or ".wal.tmp"
 * (deleted).
 * opts may be NULL (defaults). On success *out is a new handle, owned by the
 * caller, released with rl_logstore_close(). On failure *out is NULL and, if
 * errmsg is not NULL, a NUL-terminated reason (naming the index for
 * corruption) is written to errmsg[0..errmsg_len).
 * Any thread. Errors: RL_LOG_ERR_INVALID, _CORRUPT, _IO, _NOSPACE, _NOMEM
 * (also: the background thread could not be started), _BUSY, _VERSION.
 */
int rl_logstore_open(const char *dir, const struct rl_logstore_options *opts,
		     rl_logstore **out, char *errmsg, size_t errmsg_len);

/* Closes the handle and frees it; NULL is a no-op. Everything that save()
 * returned success for is already durable, so close does no I/O that
 * matters for durability. Stops and joins the background thread and
 * deletes the spare segment (see Threads). */
void rl_logstore_close(rl_logstore *ls);

/*
 * Writes batch b atomically (see struct rl_logstore_batch) and fsyncs it.
 * Success means it is durable: a crash at any later moment leaves it in
 * what rl_logstore_open() returns. On any error nothing is changed, on disk
 * or in the handle; the reason is in rl_logstore_errmsg().
 * Refused (nothing written): RL_LOG_ERR_INVALID (NULL, index or term 0,
 * unknown entry type, data NULL with data_len > 0, membership counts over
 * RL_MEMBERS_MAX), _TOO_LARGE (data_len > RL_ENTRY_DATA_MAX, more than
 * RL_LOG_BATCH_ENTRIES_MAX entries or RL_LOG_BATCH_BYTES_MAX bytes), _GAP
 * (indexes not contiguous, first index past last + 1, terms going down,
 * within the batch or against the entry before it), _COMPACTED (entries at
 * or below the snapshot index), _SNAPSHOT_STALE, _UNSAFE (hard state term
 * lower than stored, a different vote in the same term once one is
 * recorded, commit lower than stored or beyond the resulting last index,
 * truncating at or below the stored commit index, a last entry whose term is
 * above the resulting hard state term, a snapshot at or below the commit
 * index that contradicts the log).
 * Failed: _CORRUPT, _IO (handle stopped), _NOSPACE (segment files at
 * map_size_max_bytes or no disk space for a new segment: nothing written,
 * handle usable; disk full at the write or sync: handle stopped), _NOMEM,
 * _STOPPED.
 */
int rl_logstore_save(rl_logstore *ls, const struct rl_logstore_batch *b);

/*
 * Drops entries <= index after the application took a snapshot at index
 * (its state machine has applied it). The snapshot meta becomes {index,
 * term of the entry at index, conf}; conf NULL = the stored current
 * membership. term(index) keeps answering from the snapshot meta.
 * Atomic and fsync'd like save(); then deletes the segment files that hold
 * nothing still needed (a failure to delete is only logged via log_fn). Errors: RL_LOG_ERR_COMPACTED (index <=
 * snapshot index), _UNSAFE (index > commit index), _INVALID, _CORRUPT, _IO,
 * _NOSPACE, _NOMEM, _STOPPED.
 */
int rl_logstore_compact(rl_logstore *ls, rl_index index,
			const struct rl_conf_state *conf);

/* Index of the first entry still held = snapshot index + 1 (1 when there
 * never was a snapshot). Cached: no I/O, never fails. */
rl_index rl_logstore_first_index(const rl_logstore *ls);

/* Index of the last entry, or the snapshot index when no entry follows it
 * (0 for an empty log). Cached: no I/O, never fails. */
rl_index rl_logstore_last_index(const rl_logstore *ls);

/* Copies the stored hard state, snapshot meta, or current membership (all
 * zero in a new log) into *out. Cached: no I/O, never fail. */
void rl_logstore_hard_state(const rl_logstore *ls, struct rl_hard_state *out);
void rl_logstore_snapshot_meta(const rl_logstore *ls,
			       struct rl_snapshot_meta *out);
void rl_logstore_conf_state(const rl_logstore *ls, struct rl_conf_state *out);

/*
 * Stores in *out the term of entry i; for i = snapshot index, the snapshot's
 * term (0 for i = 0 in a log that never had a snapshot). The entry's
 * checksum is verified. Errors: RL_LOG_ERR_COMPACTED (i < snapshot index),
 * _UNAVAILABLE (i > last index), _INVALID (out NULL), _CORRUPT (handle
 * stopped; message names the index), _IO, _STOPPED.
 */
int rl_logstore_term(rl_logstore *ls, rl_index i, rl_term *out);

/*
 * Reads entries [lo, hi) in order, stopping before the entry that would
 * make the total data bytes (sum of data_len) exceed bytes_max, but always
 * returning at least one entry when lo < hi, however large (as etcd does:
 * progress over limits; the same rule as struct rl_storage in raft.h).
 * Every entry's checksum is verified before it is returned.
 * On success *out is ONE heap block holding the *n_out entries and their
 * data (each data points inside the block, NULL when data_len is 0); the
 * caller frees it with free() (or rl_logstore_entries_free()). lo == hi
 * gives *out NULL, *n_out 0.
 * Errors: RL_LOG_ERR_COMPACTED (lo < first index), _UNAVAILABLE (hi > last
 * index + 1), _INVALID (lo > hi, NULL out pointers), _CORRUPT, _IO, _NOMEM,
 * _STOPPED; *out NULL and *n_out 0 on error.
 */
int rl_logstore_entries(rl_logstore *ls, rl_index lo, rl_index hi,
			uint64_t bytes_max, struct rl_entry **out,
			size_t *n_out);

/* Frees a block returned by rl_logstore_entries(); NULL is a no-op. */
void rl_logstore_entries_free(struct rl_entry *entries);

/*
 * Fills *out with the storage read interface of raft.h (struct rl_storage)
 * backed by ls (out->ctx = ls), for rl_config.storage. ls is borrowed and must
 * outlive every node using *out. The callbacks follow raft.h: entries()
 * mallocs each entry's data (caller frees), errors map to RL_ERR_COMPACTED,
 * RL_ERR_UNAVAILABLE, RL_ERR_NOMEM or RL_ERR_STORAGE (the detail is in
 * rl_logstore_errmsg() and goes to options.log_fn). Same thread rules as
 * every other call on ls. Never fails.
 */
void rl_logstore_storage(rl_logstore *ls, struct rl_storage *out);

/* Bytes of the segment files (grows by whole segments, shrinks on
 * compaction); the spare segment is not counted. No I/O. */
uint64_t rl_logstore_map_size(const rl_logstore *ls);

/* Detail of the last failed call on ls (including the index and problem
 * for RL_LOG_ERR_CORRUPT, the OS reason for I/O errors); "" if none.
 * Valid until the next call on ls. */
const char *rl_logstore_errmsg(const rl_logstore *ls);

/* Static English text for an rl_log_err code; never NULL. */
const char *rl_logstore_strerror(int err);

#endif /* RL_LOGSTORE_H */
