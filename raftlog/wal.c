/*
 * wal.c - the segment files of the log store's write-ahead log (see wal.h
 * for the file format). Knows records and files, not what the records
 * mean: that is logstore.c.
 *
 * Why segments are zero-filled at creation rather than only fallocate()d:
 * on ext4 and XFS the first write into a fallocated ("unwritten") extent
 * converts it, a metadata change that makes every fdatasync also commit
 * the journal. Writing the zeros once, off the per-save path, keeps each
 * save at one data-only flush.
 *
 * Why a spare segment thread (wal.h, "The spare segment"): the zero fill
 * itself takes about 0.1 s per 64 MiB. Done inside the save that rolls,
 * it is a latency spike for the whole cluster every seg_bytes of log; done
 * ahead by a thread, the roll costs one small write, one fdatasync, a
 * rename and a directory fsync. (STYLE.md keeps threads in the broker
 * shell; this one belongs to the log store because only the store knows
 * when a spare is needed, and callers never see it.) The thread shares
 * nothing with the caller's thread but struct wal_spare (under its
 * mutex), the directory descriptor and name (read only) and the spare
 * file, which one side at a time uses (the state says which).
 *
 * Why the spare's zeros are written back a piece at a time
 * (wal_spare_write_zeros()): one fsync of 64 MiB of dirty zeros at the end
 * would fill the device queue, and the saves' fdatasyncs would wait behind
 * it - the spike moved, not removed.
 */
#include "wal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"

#define WAL_FORMAT_VERSION 1u
#define WAL_MAGIC "rbuswal"
#define WAL_MAGIC_BYTES 8u
/* "%016llx-%016llx.wal" */
#define WAL_NAME_BYTES 37u
#define WAL_NAME_BUF_BYTES 64u
#define WAL_TMP_SUFFIX ".tmp"
/* Zero-filling a new segment writes this much per call. */
#define WAL_ZERO_CHUNK_BYTES (64u * 1024u)
/* Payload bytes of the segment header record. */
#define WAL_SEG_PAYLOAD_BYTES (WAL_SEGMENT_HEADER_BYTES - WAL_REC_HEADER_BYTES)

_Static_assert(sizeof(WAL_MAGIC) == WAL_MAGIC_BYTES, "magic is 8 bytes");
_Static_assert(WAL_SECTOR_BYTES % WAL_REC_ALIGN_BYTES == 0,
	       "an aligned record header never straddles a sector");
_Static_assert(WAL_SEGMENT_HEADER_BYTES % WAL_REC_ALIGN_BYTES == 0,
	       "records after the header are aligned");

static const uint8_t wal_zeros[WAL_ZERO_CHUNK_BYTES];

/* The seams of wal.h (process-wide). */
static atomic_uint_fast64_t wal_n_sync_fills, wal_n_spare_requests,
	wal_n_spare_fills, wal_n_spare_uses, wal_n_spare_failures;
static atomic_int wal_inject_errno;
static atomic_bool wal_hold, wal_early;
/* The spare thread writes its zeros back in pieces of this size (see
 * wal_spare_write_zeros()). */
#define WAL_SPARE_FLUSH_BYTES (1024u * 1024u)
/* How often a held spare thread looks at the hold and stop flags. */
#define WAL_HOLD_POLL_NS 1000000L

static void wal_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wal_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t wal_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t wal_get64(const uint8_t *p)
{
	return (uint64_t)wal_get32(p) | (uint64_t)wal_get32(p + 4) << 32;
}

__attribute__((format(printf, 3, 4)))
static int wal_err(struct wal *w, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->errmsg, sizeof(w->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

static int wal_errno_code(int e)
{
	if (e == ENOSPC || e == EDQUOT)
		return RL_LOG_ERR_NOSPACE;
	if (e == ENOMEM)
		return RL_LOG_ERR_NOMEM;
	return RL_LOG_ERR_IO;
}

static void wal_name(char *buf, uint64_t seq, rl_index first, bool tmp)
{
	snprintf(buf, WAL_NAME_BUF_BYTES, "%016llx-%016llx.wal%s",
		 (unsigned long long)seq, (unsigned long long)first,
		 tmp ? WAL_TMP_SUFFIX : "");
}

size_t wal_rec_bytes(size_t len)
{
	size_t n = WAL_REC_HEADER_BYTES + len;

	return (n + WAL_REC_ALIGN_BYTES - 1) & ~(size_t)(WAL_REC_ALIGN_BYTES - 1);
}

size_t wal_seal(uint8_t *rec, uint32_t len)
{
	size_t total = wal_rec_bytes(len);

	wal_put32(rec, len);
	wal_put32(rec + 4, rl_crc32c(0, rec + WAL_REC_HEADER_BYTES, len));
	memset(rec + WAL_REC_HEADER_BYTES + len, 0,
	       total - WAL_REC_HEADER_BYTES - len);
	return total;
}

/* ---- open ---------------------------------------------------------------- */

/* Parses "SSSS...-IIII....wal" strictly (16 lowercase hex digits each). */
static bool wal_parse_name(const char *name, uint64_t *seq, rl_index *first)
{
	char want[WAL_NAME_BUF_BYTES];
	unsigned long long s, f;

	if (strlen(name) != WAL_NAME_BYTES ||
	    sscanf(name, "%16llx-%16llx.wal", &s, &f) != 2)
		return false;
	wal_name(want, s, f, false);
	if (strcmp(want, name) != 0)
		return false;
	*seq = s;
	*first = f;
	return true;
}

static bool wal_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int wal_add_seg(struct wal *w, uint64_t seq, rl_index first, int fd,
		       uint64_t size)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 8;
		struct wal_seg *s = realloc(w->segs, cap * sizeof(*s));
		if (s == NULL)
			return wal_err(w, RL_LOG_ERR_NOMEM,
				       "no memory for %zu segments", cap);
		w->segs = s;
		w->cap = cap;
	}
	w->segs[w->n++] = (struct wal_seg){ .seq = seq, .first = first,
					    .fd = fd, .size = size };
	w->bytes += size;
	return 0;
}

/* One directory entry: a segment (added with fd -1), a leftover temporary
 * file (removed), a file of the LMDB format (refused), or ignored. */
static int wal_list_one(struct wal *w, const char *name)
{
	uint64_t seq;
	rl_index first;

	if (wal_has_suffix(name, ".wal" WAL_TMP_SUFFIX)) {
		/* A segment whose creation a crash interrupted, or the spare
		 * (WAL_SPARE_NAME) in any state: never named a segment, so
		 * never holding anything acknowledged. */
		if (unlinkat(w->dir_fd, name, 0) != 0)
			return wal_err(w, RL_LOG_ERR_IO, "remove %s/%s: %s",
				       w->dir, name, strerror(errno));
		return 0;
	}
	if (strcmp(name, "data.mdb") == 0)
		return wal_err(w, RL_LOG_ERR_VERSION,
			       "%s holds an LMDB log (data.mdb) of an earlier "
			       "raftbus; this build reads only WAL segments",
			       w->dir);
	if (!wal_has_suffix(name, ".wal"))
		return 0;
	if (!wal_parse_name(name, &seq, &first))
		return wal_err(w, RL_LOG_ERR_VERSION,
			       "%s/%s: not a segment name", w->dir, name);
	if (w->n >= WAL_SEGMENTS_MAX)
		return wal_err(w, RL_LOG_ERR_CORRUPT,
			       "more than %u segment files", WAL_SEGMENTS_MAX);
	return wal_add_seg(w, seq, first, -1, 0);
}

static int wal_cmp_seg(const void *a, const void *b)
{
	const struct wal_seg *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int wal_list(struct wal *w)
{
	DIR *d = opendir(w->dir);
	struct dirent *de;
	int err = 0;

	if (d == NULL)
		return wal_err(w, RL_LOG_ERR_IO, "open directory %s: %s",
			       w->dir, strerror(errno));
	while (err == 0 && (errno = 0, de = readdir(d)) != NULL)
		err = wal_list_one(w, de->d_name);
	if (err == 0 && errno != 0)
		err = wal_err(w, RL_LOG_ERR_IO, "read directory %s: %s",
			      w->dir, strerror(errno));
	closedir(d);
	if (err != 0)
		return err;
	if (w->n > 1)
		qsort(w->segs, w->n, sizeof(*w->segs), wal_cmp_seg);
	for (size_t k = 1; k < w->n; k++)
		if (w->segs[k].seq != w->segs[k - 1].seq + 1)
			return wal_err(w, RL_LOG_ERR_CORRUPT,
				       "segment %llu is missing (found %llu "
				       "then %llu)",
				       (unsigned long long)w->segs[k - 1].seq + 1,
				       (unsigned long long)w->segs[k - 1].seq,
				       (unsigned long long)w->segs[k].seq);
	return 0;
}

/* Checks segment k's header record against its name and file size. */
static int wal_check_header(struct wal *w, struct wal_seg *s,
			    const uint8_t *h, uint64_t file_size)
{
	char name[WAL_NAME_BUF_BYTES];
	const uint8_t *p = h + WAL_REC_HEADER_BYTES;

	wal_name(name, s->seq, s->first, false);
	if (wal_get32(h) != WAL_SEG_PAYLOAD_BYTES || p[0] != WAL_REC_SEGMENT ||
	    memcmp(p + 8, WAL_MAGIC, WAL_MAGIC_BYTES) != 0)
		return wal_err(w, RL_LOG_ERR_VERSION,
			       "%s/%s: not a raftbus log segment", w->dir,
			       name);
	if (wal_get32(p + 16) != WAL_FORMAT_VERSION)
		return wal_err(w, RL_LOG_ERR_VERSION,
			       "%s: log format version %u, this build reads %u",
			       name, wal_get32(p + 16), WAL_FORMAT_VERSION);
	if (wal_get32(h + 4) != rl_crc32c(0, p, WAL_SEG_PAYLOAD_BYTES))
		return wal_err(w, RL_LOG_ERR_CORRUPT,
			       "segment %s: header checksum mismatch", name);
	if (wal_get64(p + 24) != s->seq || wal_get64(p + 32) != s->first)
		return wal_err(w, RL_LOG_ERR_CORRUPT,
			       "segment %s: header names another segment "
			       "(renamed file?)", name);
	s->size = wal_get64(p + 40);
	if (s->size != file_size)
		return wal_err(w, RL_LOG_ERR_CORRUPT,
			       "segment %s truncated or extended: %llu bytes, "
			       "created with %llu", name,
			       (unsigned long long)file_size,
			       (unsigned long long)s->size);
	return 0;
}

static int wal_open_seg(struct wal *w, struct wal_seg *s)
{
	char name[WAL_NAME_BUF_BYTES];
	uint8_t h[WAL_SEGMENT_HEADER_BYTES];
	struct stat sb;
	ssize_t got;

	wal_name(name, s->seq, s->first, false);
	s->fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &sb) != 0)
		return wal_err(w, RL_LOG_ERR_IO, "open %s/%s: %s", w->dir,
			       name, strerror(errno));
	got = pread(s->fd, h, sizeof(h), 0);
	if (got < 0)
		return wal_err(w, RL_LOG_ERR_IO, "read %s/%s: %s", w->dir,
			       name, strerror(errno));
	if (got < (ssize_t)sizeof(h))
		return wal_err(w, RL_LOG_ERR_VERSION,
			       "%s/%s: not a raftbus log segment (%lld bytes)",
			       w->dir, name, (long long)got);
	return wal_check_header(w, s, h, (uint64_t)sb.st_size);
}

int wal_open(struct wal *w, const char *dir)
{
	int err;

	w->dir_fd = -1;
	w->dir = strdup(dir);
	if (w->dir == NULL)
		return wal_err(w, RL_LOG_ERR_NOMEM, "out of memory");
	w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dir_fd < 0)
		return wal_err(w, RL_LOG_ERR_IO, "open directory %s: %s", dir,
			       strerror(errno));
	if ((err = wal_list(w)) != 0)
		return err;
	w->bytes = 0;
	for (size_t k = 0; k < w->n; k++) {
		if ((err = wal_open_seg(w, &w->segs[k])) != 0)
			return err;
		w->bytes += w->segs[k].size;
	}
	return 0;
}

static void wal_spare_stop(struct wal *w);

void wal_close(struct wal *w)
{
	wal_spare_stop(w);
	for (size_t k = 0; k < w->n; k++)
		if (w->segs[k].fd >= 0)
			close(w->segs[k].fd);
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	free(w->segs);
	free(w->dir);
	w->segs = NULL;
	w->dir = NULL;
	w->n = w->cap = 0;
	w->dir_fd = -1;
}

/* ---- scan ---------------------------------------------------------------- */

static bool wal_all_zero(const uint8_t *p, uint64_t n)
{
	/* memcmp against a static zero block runs at memory speed. */
	while (n > 0) {
		size_t k = n < WAL_ZERO_CHUNK_BYTES ? (size_t)n
						    : WAL_ZERO_CHUNK_BYTES;
		if (memcmp(p, wal_zeros, k) != 0)
			return false;
		p += k;
		n -= k;
	}
	return true;
}

/* Offset after the last non-zero byte of [from, size). */
static uint64_t wal_data_end(const uint8_t *p, uint64_t from, uint64_t size)
{
	uint64_t e = size;

	while (e > from && p[e - 1] == 0)
		e--;
	return e;
}

/* A complete, checksummed record starts at q and ends by lim. */
static bool wal_valid_at(const uint8_t *p, uint64_t q, uint64_t lim)
{
	uint32_t len = wal_get32(p + q);

	return len > 0 && len <= lim - q - WAL_REC_HEADER_BYTES &&
	       wal_get32(p + q + 4) ==
		       rl_crc32c(0, p + q + WAL_REC_HEADER_BYTES, len);
}

/* Some sector of the record [pos, rec_end) other than its first is still
 * all zero: evidence that the write did not reach the disk whole. The
 * record's piece of its last sector counts when it is at least
 * WAL_TORN_TAIL_MIN_BYTES long (a shorter run of zeros is too likely to be
 * data). */
static bool wal_has_zero_sector(const uint8_t *p, uint64_t pos,
				uint64_t rec_end)
{
	uint64_t s = pos - pos % WAL_SECTOR_BYTES + WAL_SECTOR_BYTES;

	for (; s < rec_end; s += WAL_SECTOR_BYTES) {
		uint64_t b = s + WAL_SECTOR_BYTES < rec_end ? s + WAL_SECTOR_BYTES
							    : rec_end;
		if ((b - s == WAL_SECTOR_BYTES || b - s >= WAL_TORN_TAIL_MIN_BYTES) &&
		    wal_all_zero(p + s, b - s))
			return true;
	}
	return false;
}

/*
 * The bytes from pos on do not start a valid record. They are the torn
 * tail of an interrupted write (power loss persists some sectors of a
 * write and not others, and unwritten sectors read as the zeros the
 * segment was filled with) when: the header's sector was not written
 * (zeros) or another sector of the record is still zero, and no complete
 * checksummed record follows (an acknowledged record after it would mean
 * damage, not a torn write). *span_end: the last non-zero byte + 1.
 */
static bool wal_is_torn(const uint8_t *p, uint64_t pos, uint64_t size,
			uint64_t *span_end)
{
	uint64_t end = wal_data_end(p, pos, size);
	uint32_t len = wal_get32(p + pos);

	*span_end = end;
	/* A header whose length runs past the file cannot be a torn write:
	 * the 8-byte header is written whole or not at all. */
	if (len > size - pos - WAL_REC_HEADER_BYTES)
		return false;
	if (len != 0 &&
	    !wal_has_zero_sector(p, pos, pos + WAL_REC_HEADER_BYTES + len))
		return false;
	for (uint64_t q = pos + WAL_REC_ALIGN_BYTES;
	     q + WAL_REC_HEADER_BYTES <= end; q += WAL_REC_ALIGN_BYTES)
		if (wal_valid_at(p, q, end))
			return false;
	return true;
}

/* Zeroes the torn tail [pos, end) of the last segment, durably, so that
 * the next append starts on zeros. */
static int wal_cut_tail(struct wal *w, struct wal_seg *s, uint64_t pos,
			uint64_t end)
{
	while (pos < end) {
		size_t k = end - pos < WAL_ZERO_CHUNK_BYTES ? (size_t)(end - pos)
							    : WAL_ZERO_CHUNK_BYTES;
		ssize_t n = pwrite(s->fd, wal_zeros, k, (off_t)pos);
		if (n <= 0)
			return wal_err(w, RL_LOG_ERR_IO,
				       "zero the torn tail of segment %llu: %s",
				       (unsigned long long)s->seq,
				       n < 0 ? strerror(errno) : "short write");
		pos += (uint64_t)n;
	}
	if (fdatasync(s->fd) != 0)
		return wal_err(w, RL_LOG_ERR_IO, "sync segment %llu: %s",
			       (unsigned long long)s->seq, strerror(errno));
	return 0;
}

/* The bytes at pos do not parse: a torn tail of the last segment is cut,
 * anything else is corruption. */
static int wal_bad_at(struct wal *w, size_t k, const uint8_t *p, uint64_t pos,
		      const char *what)
{
	struct wal_seg *s = &w->segs[k];
	uint64_t end;

	if (k == w->n - 1 && wal_is_torn(p, pos, s->size, &end)) {
		s->end = pos;
		return wal_cut_tail(w, s, pos, end);
	}
	return wal_err(w, RL_LOG_ERR_CORRUPT,
		       "log corrupt in segment %llu at offset %llu: %s",
		       (unsigned long long)s->seq, (unsigned long long)pos,
		       what);
}

static int wal_scan_map(struct wal *w, size_t k, const uint8_t *p,
			wal_rec_fn fn, void *arg)
{
	struct wal_seg *s = &w->segs[k];
	uint64_t pos = WAL_SEGMENT_HEADER_BYTES;
	int err;

	while (pos + WAL_REC_HEADER_BYTES <= s->size) {
		uint32_t len = wal_get32(p + pos);
		const uint8_t *pl = p + pos + WAL_REC_HEADER_BYTES;
		if (len == 0)
			break;
		if (len > s->size - pos - WAL_REC_HEADER_BYTES)
			return wal_bad_at(w, k, p, pos,
					  "record length runs past the end");
		if (wal_get32(p + pos + 4) != rl_crc32c(0, pl, len)) {
			uint64_t end;
			if (k == w->n - 1 && wal_is_torn(p, pos, s->size, &end))
				return wal_bad_at(w, k, p, pos, "");
			err = fn(arg, k, pos == WAL_SEGMENT_HEADER_BYTES, pl,
				 len, pos + WAL_REC_HEADER_BYTES, false);
			if (err != 0)
				return err;
			return wal_bad_at(w, k, p, pos, "checksum mismatch");
		}
		err = fn(arg, k, pos == WAL_SEGMENT_HEADER_BYTES, pl, len,
			 pos + WAL_REC_HEADER_BYTES, true);
		if (err != 0)
			return err;
		pos += wal_rec_bytes(len);
	}
	s->end = pos < s->size ? pos : s->size;
	if (!wal_all_zero(p + s->end, s->size - s->end))
		return wal_bad_at(w, k, p, s->end,
				  "non-zero bytes after the last record");
	return 0;
}

int wal_scan(struct wal *w, size_t k, wal_rec_fn fn, void *arg)
{
	struct wal_seg *s = &w->segs[k];
	void *map;
	int err;

	assert(k < w->n && s->size >= WAL_SEGMENT_HEADER_BYTES);
	map = mmap(NULL, (size_t)s->size, PROT_READ, MAP_SHARED, s->fd, 0);
	if (map == MAP_FAILED)
		return wal_err(w, wal_errno_code(errno), "map segment %llu: %s",
			       (unsigned long long)s->seq, strerror(errno));
	err = wal_scan_map(w, k, map, fn, arg);
	munmap(map, (size_t)s->size);
	return err;
}

/* ---- create / append / read / remove ------------------------------------- */

uint64_t wal_room(const struct wal *w)
{
	const struct wal_seg *s;

	if (w->n == 0)
		return 0;
	s = &w->segs[w->n - 1];
	return s->size - s->end;
}

static int wal_write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* The segment header record of segment seq (WAL_SEGMENT_HEADER_BYTES). */
static void wal_make_header(uint8_t *h, uint64_t seq, rl_index first,
			    uint64_t size)
{
	uint8_t *p = h + WAL_REC_HEADER_BYTES;

	memset(h, 0, WAL_SEGMENT_HEADER_BYTES);
	p[0] = WAL_REC_SEGMENT;
	memcpy(p + 8, WAL_MAGIC, WAL_MAGIC_BYTES);
	wal_put32(p + 16, WAL_FORMAT_VERSION);
	wal_put64(p + 24, seq);
	wal_put64(p + 32, first);
	wal_put64(p + 40, size);
	wal_seal(h, WAL_SEG_PAYLOAD_BYTES);
}

/* Header and first record at the start of a segment file. Returns 0 or
 * an errno value. */
static int wal_write_start(int fd, uint64_t seq, rl_index first,
			   uint64_t size, const uint8_t *first_rec,
			   size_t first_len)
{
	uint8_t h[WAL_SEGMENT_HEADER_BYTES];
	int e;

	wal_make_header(h, seq, first, size);
	if ((e = wal_write_all(fd, h, sizeof(h), 0)) != 0)
		return e;
	return wal_write_all(fd, first_rec, first_len, sizeof(h));
}

/* Zeros over [from, size). Returns 0 or an errno value. */
static int wal_write_zeros(int fd, uint64_t from, uint64_t size)
{
	for (uint64_t off = from; off < size;) {
		size_t k = size - off < WAL_ZERO_CHUNK_BYTES ? (size_t)(size - off)
							     : WAL_ZERO_CHUNK_BYTES;
		int e = wal_write_all(fd, wal_zeros, k, off);
		if (e != 0)
			return e;
		off += k;
	}
	return 0;
}

/* The synchronous path: allocation, header, first record, zeros to size;
 * then fsync (the size and block map are new). Returns 0 or an errno. */
static int wal_fill_new(int fd, uint64_t seq, rl_index first, uint64_t size,
			const uint8_t *first_rec, size_t first_len)
{
	int e;

	atomic_fetch_add(&wal_n_sync_fills, 1);
	if ((e = posix_fallocate(fd, 0, (off_t)size)) != 0 ||
	    (e = wal_write_start(fd, seq, first, size, first_rec,
				 first_len)) != 0 ||
	    (e = wal_write_zeros(fd, WAL_SEGMENT_HEADER_BYTES + first_len,
				 size)) != 0)
		return e;
	return fsync(fd) != 0 ? errno : 0;
}

/* The end of preparing a new file `name` (open as fd): on success (e == 0)
 * hands fd out; on failure closes and deletes it. Returns e. */
static int wal_keep_or_drop(struct wal *w, int fd, const char *name, int e,
			    int *fd_out)
{
	if (e != 0) {
		close(fd);
		unlinkat(w->dir_fd, name, 0);
		return e;
	}
	*fd_out = fd;
	return 0;
}

/* The synchronous path of wal_create(): a new file filled here, renamed
 * into place. *fd_out: its descriptor. Returns 0 or an errno value (the
 * file is gone again). */
static int wal_create_sync(struct wal *w, uint64_t seq, rl_index first,
			   uint64_t size, const uint8_t *first_rec,
			   size_t first_len, int *fd_out)
{
	char tmp[WAL_NAME_BUF_BYTES], name[WAL_NAME_BUF_BYTES];
	int fd, e;

	wal_name(tmp, seq, first, true);
	wal_name(name, seq, first, false);
	fd = openat(w->dir_fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	e = wal_fill_new(fd, seq, first, size, first_rec, first_len);
	if (e == 0 && renameat(w->dir_fd, tmp, w->dir_fd, name) != 0)
		e = errno;
	return wal_keep_or_drop(w, fd, tmp, e, fd_out);
}

/* Takes the spare if it is ready and exactly size bytes (segments are
 * never shorter than seg_bytes, the spare's size). Returns its fd or -1.
 * A background failure is passed on as a note. */
static int wal_spare_take(struct wal *w, uint64_t size)
{
	struct wal_spare *sp = &w->spare;
	int fd = -1;

	if (!sp->started)
		return -1;
	pthread_mutex_lock(&sp->mu);
	if (sp->state == WAL_SPARE_READY && sp->size == size) {
		fd = sp->fd;
		sp->fd = -1;
		sp->state = WAL_SPARE_IDLE;
	} else if (sp->state == WAL_SPARE_FAILED) {
		w->note_err = sp->err;
		_Static_assert(sizeof(w->note) == sizeof(sp->errmsg),
			       "the note is the thread's message");
		memcpy(w->note, sp->errmsg, sizeof(w->note));
		sp->state = WAL_SPARE_IDLE;
	}
	pthread_mutex_unlock(&sp->mu);
	return fd;
}

/* The spare path of wal_create(): header and first record into the ready
 * spare (its size and blocks are durable, so fdatasync suffices), then
 * the rename. Returns 0 or an errno value; on failure the spare is closed
 * and deleted. */
static int wal_create_from_spare(struct wal *w, int fd, uint64_t seq,
				 rl_index first, uint64_t size,
				 const uint8_t *first_rec, size_t first_len)
{
	char name[WAL_NAME_BUF_BYTES];
	int e;

	wal_name(name, seq, first, false);
	e = wal_write_start(fd, seq, first, size, first_rec, first_len);
	if (e == 0 && fdatasync(fd) != 0)
		e = errno;
	if (e == 0 && renameat(w->dir_fd, WAL_SPARE_NAME, w->dir_fd, name) != 0)
		e = errno;
	if (e != 0) {
		close(fd);
		unlinkat(w->dir_fd, WAL_SPARE_NAME, 0);
		w->note_err = wal_errno_code(e);
		snprintf(w->note, sizeof(w->note), "use the spare segment as "
			 "%s/%s: %s (the roll filled a segment itself)",
			 w->dir, name, strerror(e));
		return e;
	}
	atomic_fetch_add(&wal_n_spare_uses, 1);
	return 0;
}

static void wal_spare_kick(struct wal *w);

/* Offset in s from which on a spare is wanted. */
static uint64_t wal_spare_start_bytes(const struct wal_seg *s)
{
	if (atomic_load(&wal_early))
		return 0;
	return s->size / 100u * WAL_SPARE_START_PERCENT;
}

int wal_create(struct wal *w, rl_index first, const uint8_t *first_rec,
	       size_t first_len, uint64_t room_bytes, rl_index cp_last,
	       bool over_max)
{
	char name[WAL_NAME_BUF_BYTES];
	uint64_t seq = w->n > 0 ? w->segs[w->n - 1].seq + 1 : 0;
	uint64_t size = WAL_SEGMENT_HEADER_BYTES + first_len + room_bytes;
	int fd, e, err;

	size = (size + WAL_SEGMENT_ALIGN_BYTES - 1) &
	       ~(uint64_t)(WAL_SEGMENT_ALIGN_BYTES - 1);
	if (size < w->seg_bytes)
		size = w->seg_bytes;
	if (w->n >= WAL_SEGMENTS_MAX ||
	    (!over_max && w->bytes + size > w->bytes_max))
		return wal_err(w, RL_LOG_ERR_NOSPACE,
			       "log full: %llu bytes in %zu segments, a new "
			       "segment of %llu bytes would pass "
			       "map_size_max_bytes %llu",
			       (unsigned long long)w->bytes, w->n,
			       (unsigned long long)size,
			       (unsigned long long)w->bytes_max);
	/* Room in the array first: nothing may fail after the rename. */
	if ((err = wal_add_seg(w, seq, first, -1, size)) != 0)
		return err;
	w->n--;
	w->bytes -= size;
	wal_name(name, seq, first, false);
	fd = wal_spare_take(w, size);
	e = fd < 0 ? ENOENT
		   : wal_create_from_spare(w, fd, seq, first, size, first_rec,
					   first_len);
	if (e != 0)
		e = wal_create_sync(w, seq, first, size, first_rec, first_len,
				    &fd);
	if (e != 0)
		return wal_err(w, wal_errno_code(e), "create segment %s/%s: %s",
			       w->dir, name, strerror(e));
	wal_add_seg(w, seq, first, fd, size);
	w->segs[w->n - 1].end = WAL_SEGMENT_HEADER_BYTES + first_len;
	w->segs[w->n - 1].cp_last = cp_last;
	if (fsync(w->dir_fd) != 0)
		return wal_err(w, RL_LOG_ERR_IO, "sync directory %s: %s",
			       w->dir, strerror(errno));
	wal_spare_kick(w);
	return 0;
}

int wal_append(struct wal *w, const uint8_t *rec, size_t len, uint64_t *off)
{
	struct wal_seg *s = &w->segs[w->n - 1];
	int e;

	assert(w->n > 0 && len <= s->size - s->end);
	if ((e = wal_write_all(s->fd, rec, len, s->end)) != 0)
		return wal_err(w, wal_errno_code(e),
			       "write segment %llu: %s",
			       (unsigned long long)s->seq, strerror(e));
	/* Data only: the segment's size and blocks were fixed (and synced)
	 * when it was created. */
	if (fdatasync(s->fd) != 0)
		return wal_err(w, wal_errno_code(errno),
			       "sync segment %llu: %s",
			       (unsigned long long)s->seq, strerror(errno));
	*off = s->end;
	s->end += len;
	if (s->end - len < wal_spare_start_bytes(s) &&
	    s->end >= wal_spare_start_bytes(s))
		wal_spare_kick(w);
	return 0;
}

int wal_read(struct wal *w, uint64_t seq, uint64_t off,
	     const struct iovec *iov, int iov_n)
{
	const struct wal_seg *s;

	if (w->n == 0 || seq < w->segs[0].seq || seq > w->segs[w->n - 1].seq)
		return wal_err(w, RL_LOG_ERR_CORRUPT,
			       "segment %llu is gone", (unsigned long long)seq);
	s = &w->segs[seq - w->segs[0].seq];
	for (int k = 0; k < iov_n; k++) {
		uint8_t *p = iov[k].iov_base;
		size_t len = iov[k].iov_len;
		while (len > 0) {
			ssize_t n = pread(s->fd, p, len, (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return wal_err(w, RL_LOG_ERR_IO,
					       "read segment %llu at %llu: %s",
					       (unsigned long long)seq,
					       (unsigned long long)off,
					       n < 0 ? strerror(errno)
						     : "end of file");
			p += n;
			len -= (size_t)n;
			off += (uint64_t)n;
		}
	}
	return 0;
}

int wal_remove_before(struct wal *w, size_t k)
{
	char name[WAL_NAME_BUF_BYTES];
	size_t done = 0;
	int err = 0;

	assert(k < w->n);
	for (; done < k; done++) {
		struct wal_seg *s = &w->segs[done];
		wal_name(name, s->seq, s->first, false);
		if (unlinkat(w->dir_fd, name, 0) != 0) {
			err = wal_err(w, RL_LOG_ERR_IO, "remove %s/%s: %s",
				      w->dir, name, strerror(errno));
			break;
		}
		close(s->fd);
		w->bytes -= s->size;
	}
	memmove(w->segs, w->segs + done, (w->n - done) * sizeof(*w->segs));
	w->n -= done;
	if (done > 0 && fsync(w->dir_fd) != 0 && err == 0)
		err = wal_err(w, RL_LOG_ERR_IO, "sync directory %s: %s",
			      w->dir, strerror(errno));
	if (done > 0)
		wal_spare_kick(w);
	return err;
}

/* ---- the spare segment thread -------------------------------------------- */

/* Asked by the thread between chunks: wal_close() wants it to end. */
static bool wal_spare_stopping(struct wal *w)
{
	bool stop;

	pthread_mutex_lock(&w->spare.mu);
	stop = w->spare.stop;
	pthread_mutex_unlock(&w->spare.mu);
	return stop;
}

static void wal_spare_wait_hold(struct wal *w)
{
	struct timespec ts = { 0, WAL_HOLD_POLL_NS };

	while (atomic_load(&wal_hold) && !wal_spare_stopping(w))
		nanosleep(&ts, NULL);
}

/*
 * The spare's zeros, written back WAL_SPARE_FLUSH_BYTES at a time (each
 * piece waited for before the next is queued): the device then never holds
 * more than that much of the spare in its queue, so a save's fdatasync is
 * not stuck behind tens of MiB of zeros, and the final fsync has little
 * left to write. Asks wal_spare_stopping() between pieces. Returns 0 or
 * an errno value (ECANCELED when stopped).
 */
static int wal_spare_write_zeros(struct wal *w, int fd, uint64_t size)
{
	for (uint64_t off = 0, end; off < size; off = end) {
		end = size - off < WAL_SPARE_FLUSH_BYTES ? size
						      : off + WAL_SPARE_FLUSH_BYTES;
		int e = wal_write_zeros(fd, off, end);
		if (e != 0)
			return e;
		if (sync_file_range(fd, (off_t)off, (off_t)(end - off),
				    SYNC_FILE_RANGE_WAIT_BEFORE |
					    SYNC_FILE_RANGE_WRITE |
					    SYNC_FILE_RANGE_WAIT_AFTER) != 0)
			return errno;
		if (wal_spare_stopping(w))
			return ECANCELED;
	}
	return 0;
}

/* Creates the spare file and makes it a segment in all but its first
 * bytes and its name: allocated, zero-filled, fsync'd. Returns 0 and
 * *fd_out, or an errno value (ECANCELED when stopped) with the file
 * deleted again. */
static int wal_spare_fill(struct wal *w, uint64_t size, int *fd_out)
{
	int fd, e;

	fd = openat(w->dir_fd, WAL_SPARE_NAME,
		    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	if ((e = posix_fallocate(fd, 0, (off_t)size)) == 0 &&
	    (e = atomic_load(&wal_inject_errno)) == 0 &&
	    (e = wal_spare_write_zeros(w, fd, size)) == 0) {
		wal_spare_wait_hold(w);
		if (wal_spare_stopping(w))
			e = ECANCELED;
		else if (fsync(fd) != 0)
			e = errno;
	}
	return wal_keep_or_drop(w, fd, WAL_SPARE_NAME, e, fd_out);
}

/* The outcome of one preparation; called with the mutex held. */
static void wal_spare_done(struct wal *w, int e, int fd)
{
	struct wal_spare *sp = &w->spare;
	char buf[128];

	if (e == 0) {
		/* Also when stopping: wal_close() deletes a ready spare. */
		sp->state = WAL_SPARE_READY;
		sp->fd = fd;
		atomic_fetch_add(&wal_n_spare_fills, 1);
	} else if (e == ECANCELED) {
		sp->state = WAL_SPARE_IDLE;
	} else {
		sp->state = WAL_SPARE_FAILED;
		sp->err = wal_errno_code(e);
		snprintf(sp->errmsg, sizeof(sp->errmsg), "prepare the spare "
			 "segment %s/%s in the background: %s (not fatal: the "
			 "next roll fills a segment itself)", w->dir,
			 WAL_SPARE_NAME, strerror_r(e, buf, sizeof(buf)));
		atomic_fetch_add(&wal_n_spare_failures, 1);
	}
}

static void *wal_spare_main(void *arg)
{
	struct wal *w = arg;
	struct wal_spare *sp = &w->spare;

	pthread_mutex_lock(&sp->mu);
	while (!sp->stop) {
		if (sp->state != WAL_SPARE_WANTED) {
			pthread_cond_wait(&sp->cv, &sp->mu);
			continue;
		}
		uint64_t size = sp->size;
		int fd = -1, e;
		sp->state = WAL_SPARE_FILLING;
		pthread_mutex_unlock(&sp->mu);
		e = wal_spare_fill(w, size, &fd);
		pthread_mutex_lock(&sp->mu);
		wal_spare_done(w, e, fd);
	}
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

/* Asks for a spare when there is none (a failed one is asked again only
 * by the next roll, after wal_spare_take() passed its note on), the last
 * segment is WAL_SPARE_START_PERCENT full and one more segment of
 * seg_bytes fits under bytes_max. */
static void wal_spare_kick(struct wal *w)
{
	struct wal_spare *sp = &w->spare;
	bool fits = w->n < WAL_SEGMENTS_MAX && w->bytes <= w->bytes_max &&
		    w->seg_bytes <= w->bytes_max - w->bytes;

	if (!sp->started || !fits || w->n == 0 ||
	    w->segs[w->n - 1].end < wal_spare_start_bytes(&w->segs[w->n - 1]))
		return;
	pthread_mutex_lock(&sp->mu);
	if (!sp->stop && sp->state == WAL_SPARE_IDLE) {
		sp->state = WAL_SPARE_WANTED;
		sp->size = w->seg_bytes;
		atomic_fetch_add(&wal_n_spare_requests, 1);
		pthread_cond_signal(&sp->cv);
	}
	pthread_mutex_unlock(&sp->mu);
}

int wal_spare_start(struct wal *w)
{
	struct wal_spare *sp = &w->spare;
	sigset_t all, old;
	int e;

	assert(!sp->started && w->dir_fd >= 0);
	/* Open must treat a leftover spare as an interrupted creation. */
	assert(wal_has_suffix(WAL_SPARE_NAME, ".wal" WAL_TMP_SUFFIX));
	sp->fd = -1;
	sp->state = WAL_SPARE_IDLE;
	sp->stop = false;
	if ((e = pthread_mutex_init(&sp->mu, NULL)) != 0)
		return wal_err(w, RL_LOG_ERR_NOMEM, "spare segment mutex: %s",
			       strerror(e));
	if ((e = pthread_cond_init(&sp->cv, NULL)) != 0) {
		pthread_mutex_destroy(&sp->mu);
		return wal_err(w, RL_LOG_ERR_NOMEM, "spare segment condition: "
			       "%s", strerror(e));
	}
	/* Process signals belong to the application's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&sp->thread, NULL, wal_spare_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		pthread_cond_destroy(&sp->cv);
		pthread_mutex_destroy(&sp->mu);
		return wal_err(w, RL_LOG_ERR_NOMEM, "start the spare segment "
			       "thread: %s", strerror(e));
	}
	pthread_setname_np(sp->thread, "rl-wal-spare");
	sp->started = true;
	wal_spare_kick(w);
	return 0;
}

/* Ends the thread; a spare it finished is deleted (open would delete it
 * anyway, and a closed log should not hold a stray 64 MiB file). */
static void wal_spare_stop(struct wal *w)
{
	struct wal_spare *sp = &w->spare;

	if (!sp->started)
		return;
	pthread_mutex_lock(&sp->mu);
	sp->stop = true;
	pthread_cond_broadcast(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	pthread_join(sp->thread, NULL);
	if (sp->state == WAL_SPARE_READY) {
		close(sp->fd);
		unlinkat(w->dir_fd, WAL_SPARE_NAME, 0);
	}
	pthread_cond_destroy(&sp->cv);
	pthread_mutex_destroy(&sp->mu);
	sp->started = false;
	sp->fd = -1;
	sp->state = WAL_SPARE_IDLE;
}

/* ---- test and benchmark seams ------------------------------------------- */

void wal_counts(struct wal_counts *out)
{
	out->sync_fills = atomic_load(&wal_n_sync_fills);
	out->spare_requests = atomic_load(&wal_n_spare_requests);
	out->spare_fills = atomic_load(&wal_n_spare_fills);
	out->spare_uses = atomic_load(&wal_n_spare_uses);
	out->spare_failures = atomic_load(&wal_n_spare_failures);
}

void wal_test_spare_errno(int e)
{
	atomic_store(&wal_inject_errno, e);
}

void wal_test_spare_hold(bool hold)
{
	atomic_store(&wal_hold, hold);
}

void wal_test_spare_early(bool early)
{
	atomic_store(&wal_early, early);
}
