/*
 * wal.h - PRIVATE to raftlog/logstore.c: the segment files of the log
 * store's write-ahead log. Not installed, not used by any other module.
 *
 * A log directory holds segment files named
 *     SSSSSSSSSSSSSSSS-IIIIIIIIIIIIIIII.wal
 * (sequence number, then the first entry index the segment may hold, both
 * 16 hex digits). Each file is created at its final size and zero-filled
 * before it gets its final name, so that appending to it never changes the
 * file's size or its block map: one fdatasync then flushes only data.
 *
 * A file is a sequence of records, each starting at an 8-byte aligned
 * offset:
 *     [0,4) payload length (little-endian; 0 = no more records)
 *     [4,8) CRC-32C of the payload
 *     [8, 8 + length) payload; payload[0] is the record type
 *     zero padding up to the next multiple of 8
 * The 8-byte header never straddles a 512-byte sector, so a write torn by
 * power loss leaves either no header (zeros) or a whole one. The first
 * record of every file is the segment header (WAL_REC_SEGMENT); what the
 * other records mean is logstore.c's business. After the last record the
 * file holds only zeros.
 *
 * The spare segment: filling a new segment with zeros takes about 0.1 s
 * per 64 MiB, too long for the save that happens to roll. So a background
 * thread (wal_spare_start() to wal_close()) prepares one file ahead,
 * WAL_SPARE_NAME, of seg_bytes: posix_fallocate'd, zero-filled and
 * fsync'd. A roll that fits in it writes the header and first record into
 * it, fdatasyncs, renames it to the segment's name and fsyncs the
 * directory (the same steps and durability as the synchronous path). The
 * next spare is asked for once the segment taking appends is
 * WAL_SPARE_START_PERCENT full, so that a log that never grows that far (a
 * short-lived test member, a quiet cluster) never writes one. A roll never
 * waits for the thread: with no spare ready (still filling, failed, or the
 * segment must be larger) it zero-fills a new file itself, as before. The
 * spare's name ends in WAL_TMP_SUFFIX, so open deletes a leftover one
 * whatever state a crash left it in: it never holds anything acknowledged
 * (a roll's record is acknowledged only after the rename and the directory
 * fsync). The spare is not counted in w->bytes (nor bytes_max): it is
 * prepared only while one more segment of seg_bytes fits under bytes_max,
 * i.e. it is the space the next roll would take anyway.
 *
 * Errors: every function returns 0 or a negative rl_log_err code and
 * leaves the reason in w->errmsg. One thread at a time per struct wal
 * (the spare thread touches only w->spare, under its mutex, the file
 * named WAL_SPARE_NAME, and reads w->dir and w->dir_fd).
 */
#ifndef RL_WAL_H
#define RL_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/uio.h>

#include "logstore.h"

#define WAL_REC_HEADER_BYTES 8u
#define WAL_REC_ALIGN_BYTES 8u
/* Record type of the segment header; logstore.c uses the others. */
#define WAL_REC_SEGMENT 1u
/* Bytes of the segment header record (header + payload, aligned). */
#define WAL_SEGMENT_HEADER_BYTES 56u
/* Bytes of one sector as far as torn-write detection is concerned. */
#define WAL_SECTOR_BYTES 512u
/* A zero run at the end of a damaged last record counts as an unwritten
 * sector only from this length on (see wal_is_torn()). */
#define WAL_TORN_TAIL_MIN_BYTES 32u
/* Segment sizes are rounded up to this (whole pages). */
#define WAL_SEGMENT_ALIGN_BYTES 4096u
/* Most segment files one log may hold. */
#define WAL_SEGMENTS_MAX 65536u
/* Name of the spare segment file (see the top). Ends in ".wal.tmp": the
 * open-time scan deletes it like any interrupted segment creation. */
#define WAL_SPARE_NAME "spare.wal.tmp"
/* The spare is asked for once the last segment is this full (percent of
 * its size): the remaining half of a 64 MiB segment takes far longer to
 * fill with records than the spare takes to prepare (~0.1-0.5 s). */
#define WAL_SPARE_START_PERCENT 50u

struct wal_seg {
	uint64_t seq;
	rl_index first;   /* first index the segment may hold (from name) */
	int fd;
	uint64_t size;    /* file size, fixed at creation */
	uint64_t end;     /* offset after the last valid record */
	rl_index cp_last; /* last index its checkpoint record names */
};

/* State of the spare segment; each value says who owns spare.fd. */
enum wal_spare_state {
	WAL_SPARE_IDLE,    /* none, none asked for */
	WAL_SPARE_WANTED,  /* asked for; the thread has not started it */
	WAL_SPARE_FILLING, /* the thread is writing it (thread owns the fd) */
	WAL_SPARE_READY,   /* filled and fsync'd: fd open, size bytes */
	WAL_SPARE_FAILED,  /* the last attempt failed: err, errmsg */
};

/* The background preparation of the spare segment. Every field below
 * `mu` is guarded by it. */
struct wal_spare {
	pthread_t thread;
	bool started;          /* thread running: wal_close() joins it */
	pthread_mutex_t mu;
	pthread_cond_t cv;     /* state became WANTED, or stop */
	enum wal_spare_state state;
	bool stop;             /* wal_close(): the thread ends */
	int fd;                /* READY: the spare; else -1 */
	uint64_t size;         /* WANTED..READY: the spare's size */
	int err;               /* FAILED: rl_log_err of the failure */
	char errmsg[RL_LOG_ERRMSG_MAX];
};

struct wal {
	char *dir;
	int dir_fd;
	struct wal_seg *segs; /* oldest first; segs[n - 1] takes appends */
	size_t n, cap;
	uint64_t seg_bytes;   /* size of new segments */
	uint64_t bytes_max;   /* most bytes of all segment files together */
	uint64_t bytes;       /* bytes of all segment files together */
	char errmsg[RL_LOG_ERRMSG_MAX];
	/* Set by wal_create() when the spare could not be used (it failed in
	 * the background, or using it failed) although the roll itself
	 * succeeded or failed on its own: the caller logs it and clears
	 * note_err. Not an error of the call. */
	int note_err;
	char note[RL_LOG_ERRMSG_MAX];
	struct wal_spare spare;
};

/*
 * Called for each record of a segment, in file order. payload is borrowed
 * for the call; off is the payload's file offset. first is true for the
 * record right after the segment header. Returns 0 or an rl_log_err, which
 * ends the scan (the callback has set its own message). crc_ok false: the
 * record's checksum failed and it is not a torn tail; the callback may
 * name what is damaged (return RL_LOG_ERR_CORRUPT with a message) or
 * return 0 to let wal_scan() report the record.
 */
typedef int (*wal_rec_fn)(void *arg, size_t seg_k, bool first,
			  const uint8_t *payload, uint32_t len, uint64_t off,
			  bool crc_ok);

/* Opens the segments of dir (which must exist): removes leftover
 * temporary files, checks names, sequence, sizes and headers. Records are
 * not read. *w must be zeroed first. RL_LOG_ERR_VERSION if a file is not a
 * segment of this format. */
int wal_open(struct wal *w, const char *dir);

/* Starts the spare segment thread (after wal_open() and the replay) and
 * asks for the first spare if the last segment is already
 * WAL_SPARE_START_PERCENT full. Signals are blocked in the thread. Until it is
 * called every roll is synchronous. RL_LOG_ERR_NOMEM if the thread cannot
 * be created (nothing to undo but wal_close()). */
int wal_spare_start(struct wal *w);

/* Reads every record of segment k, calling fn; sets segs[k].end. A torn
 * record at the end of the LAST segment (an interrupted write) is zeroed
 * and fdatasync'd; anything else that does not parse is
 * RL_LOG_ERR_CORRUPT. */
int wal_scan(struct wal *w, size_t k, wal_rec_fn fn, void *arg);

/* Fills the header of the record rec whose payload (already written at
 * rec + WAL_REC_HEADER_BYTES) has len bytes, zeroes the padding, and
 * returns the record's total length. rec must have room for the
 * padding. */
size_t wal_seal(uint8_t *rec, uint32_t len);

/* Record length for a payload of len bytes. */
size_t wal_rec_bytes(size_t len);

/*
 * Creates segment seq n (the next one), able to hold first_rec (a sealed
 * record of first_len bytes, normally the checkpoint) plus room_bytes
 * more, writes the header and first_rec, makes it durable (file and
 * directory) and makes it the segment that takes appends. Uses the spare
 * when it is ready and the segment fits in it, else fills a new file on
 * the calling thread; never waits for the spare thread.
 * RL_LOG_ERR_NOSPACE (nothing changed, handle usable) if bytes_max (unless
 * over_max: a compaction, which frees space, may pass it) or the disk has
 * no room; _IO otherwise. May set w->note_err (see struct wal).
 */
int wal_create(struct wal *w, rl_index first, const uint8_t *first_rec,
	       size_t first_len, uint64_t room_bytes, rl_index cp_last,
	       bool over_max);

/* Room left for records in the last segment. */
uint64_t wal_room(const struct wal *w);

/* Writes rec (len bytes, sealed) after the last record of the last
 * segment, then fdatasync. *off is where it went. On error the caller
 * must stop using w for writes (the data may or may not be on disk).
 * Asks for a spare when the segment becomes WAL_SPARE_START_PERCENT
 * full. */
int wal_append(struct wal *w, const uint8_t *rec, size_t len, uint64_t *off);

/* Reads exactly the iovecs' bytes at off of segment seq. */
int wal_read(struct wal *w, uint64_t seq, uint64_t off,
	     const struct iovec *iov, int iov_n);

/* Deletes segments [0, k) (oldest first) and syncs the directory; then
 * asks for a spare if none is there and the freed space makes room (and
 * the last segment is WAL_SPARE_START_PERCENT full). */
int wal_remove_before(struct wal *w, size_t k);

/* Stops and joins the spare thread (an unfinished spare is abandoned and
 * deleted by it; a ready one is deleted here), closes the files and frees;
 * the struct may be reused after zeroing. The only call that waits for
 * the spare thread: at most for one step of its fill (one write-back of
 * WAL_SPARE_FLUSH_BYTES, wal.c) or the spare's fsync. */
void wal_close(struct wal *w);

/* ---- test and benchmark seams (process-wide, not for production use) ---- */

/* How many segment files this process zero-filled on the caller's thread
 * (wal_create()'s synchronous path), how many spares were asked for, how
 * many the thread finished, were used, or failed. Monotonic; reads are
 * atomic. */
struct wal_counts {
	uint64_t sync_fills;
	uint64_t spare_requests;
	uint64_t spare_fills;
	uint64_t spare_uses;
	uint64_t spare_failures;
};
void wal_counts(struct wal_counts *out);

/* From now on the spare thread fails each preparation with errno e after
 * creating and allocating the file (0 = no more failures). */
void wal_test_spare_errno(int e);

/* While held, the spare thread does not finish a preparation: it waits
 * after the fill, before fsync (wal_close() still ends it). */
void wal_test_spare_hold(bool hold);

/* early: the spare is asked for as soon as a segment exists (as if
 * WAL_SPARE_START_PERCENT were 0), so that a test can have it ready
 * before any roll. */
void wal_test_spare_early(bool early);

#endif /* RL_WAL_H */
