/*
 * logstore.c - the durable Raft log of one member as an append-only
 * write-ahead log (see logstore.h; the segment files are wal.c's).
 *
 * Every call that changes the log writes ONE record to the last segment
 * with one pwrite and makes it durable with ONE fdatasync (an LMDB commit
 * costs two: data pages, then the meta page). Records (payload[0] = type):
 *   LS_REC_CHECKPOINT  the whole state (hard state, snapshot meta, current
 *                      membership, last index and term); the first record
 *                      of every segment, so that older segments can be
 *                      deleted without losing the state they recorded
 *   LS_REC_BATCH       one rl_logstore_save(): flags, entry count, then
 *                      the snapshot meta (+ whether the log suffix after it
 *                      is kept), the hard state, the membership (each only
 *                      when written), then the entries, each a
 *                      RL_LOG_ENTRY_HEADER_BYTES header with its own
 *                      CRC-32C followed by its data:
 *                        [0,8) term [8,16) index [16,20) data_len [20] type
 *                        [21,24) zero [24,28) CRC-32C of [0,24) + data
 *                      A first entry at or below the last index truncates
 *                      the log from there (the suffix-truncation marker is
 *                      the entry itself); a snapshot that does not keep
 *                      the suffix drops the whole log.
 *   LS_REC_COMPACT     one rl_logstore_compact(): the new snapshot meta.
 * Integers are little-endian. Each record also has a CRC-32C over its
 * payload (wal.h), which is what makes a batch atomic: a record is applied
 * whole or, torn by a crash, not at all.
 *
 * Open replays every record, in order, into the cached state and an
 * in-memory index (index -> segment, offset, term, length) of the entries
 * after the snapshot; a save applies the record it just wrote with the
 * SAME function, so the state after a save is by construction what a
 * reopen rebuilds. Reads pread the entry and verify its CRC, except for
 * the entries saved last, which a small cache serves from memory (see
 * LS_CACHE_SLOTS).
 *
 * A new segment starts with a checkpoint (ls_roll); wal_create() takes it
 * from the spare that wal.c's thread prepared when it can, so the save
 * that rolls does not zero-fill a segment (wal.h, "The spare segment").
 *
 * Compaction writes LS_REC_COMPACT, then deletes every segment older than
 * the newest one whose checkpoint's last index is at or below the new
 * snapshot index: no entry still in the log lives in them, and replay
 * starts from that checkpoint. Entries the first checkpoint names but no
 * remaining record holds are marked unknown during replay; each must be
 * rewritten or compacted by the end of replay, else the log is corrupt.
 */
#include "logstore.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "raft.h"
#include "wal.h"

#define LS_REC_CHECKPOINT 2u
#define LS_REC_BATCH 3u
#define LS_REC_COMPACT 4u
/* LS_REC_BATCH flags (payload[1]). */
#define LS_BATCH_SNAP 0x01u
#define LS_BATCH_SNAP_KEEP 0x02u
#define LS_BATCH_HS 0x04u
#define LS_BATCH_CONF 0x08u
#define LS_BATCH_FLAGS_ALL 0x0fu

#define LS_CONF_BYTES (4u + 8u * RL_MEMBERS_MAX + 4u + 8u * RL_MEMBERS_MAX)
#define LS_HS_BYTES 24u
#define LS_SNAP_BYTES (16u + LS_CONF_BYTES)
/* type, flags/padding, entry count */
#define LS_REC_HDR_BYTES 8u
#define LS_STATE_BYTES (LS_HS_BYTES + 16u + LS_SNAP_BYTES + LS_CONF_BYTES)
#define LS_CHECKPOINT_BYTES (LS_REC_HDR_BYTES + LS_STATE_BYTES)
#define LS_COMPACT_BYTES (LS_REC_HDR_BYTES + LS_SNAP_BYTES)
/* Largest batch payload: everything, at the batch limits. */
#define LS_BATCH_PAYLOAD_MAX                                                 \
	((uint64_t)LS_REC_HDR_BYTES + LS_SNAP_BYTES + LS_HS_BYTES +            \
	 LS_CONF_BYTES +                                                       \
	 (uint64_t)RL_LOG_BATCH_ENTRIES_MAX * RL_LOG_ENTRY_HEADER_BYTES +      \
	 RL_LOG_BATCH_BYTES_MAX)
#define LS_ENTRY_CRC_OFFSET 24u
#define LS_LOCK_FILE "LOCK"
/* Smallest segment (map_size_bytes): room for a checkpoint and a few
 * batches. */
#define LS_SEGMENT_BYTES_MIN (256u * 1024u)
/* The write buffer is kept between saves up to this size. */
#define LS_WBUF_KEEP_BYTES (1024u * 1024u)
/* Slot of an entry that a deleted segment held (replay only). */
#define LS_SEQ_UNKNOWN UINT64_MAX

_Static_assert(RL_LOG_ENTRY_HEADER_BYTES == LS_ENTRY_CRC_OFFSET + 4u,
	       "entry header layout");
_Static_assert(RL_ENTRY_DATA_MAX <= RL_LOG_BATCH_BYTES_MAX,
	       "one maximal entry fits in a batch");
_Static_assert(LS_BATCH_PAYLOAD_MAX < UINT32_MAX,
	       "a batch record's length fits its 32-bit field");

/* The persisted state, mirrored in memory. */
struct ls_state {
	struct rl_hard_state hs;
	struct rl_snapshot_meta snap;
	struct rl_conf_state conf;
	rl_index last;     /* last index (snap.index if no entry follows) */
	rl_term last_term; /* term of last (snap.term if no entry follows) */
};

/* Where entry i lives. */
struct ls_slot {
	rl_term term;
	uint64_t seq; /* segment; LS_SEQ_UNKNOWN = not seen yet in replay */
	uint64_t off; /* file offset of its RL_LOG_ENTRY_HEADER_BYTES header */
	uint32_t data_len;
};

/* Entries (snap.index, last]: s[head + k] is index first + k. */
struct ls_index {
	struct ls_slot *s;
	size_t head, n, cap;
	rl_index first;
};

/* The entries written last, kept in memory: the Raft core reads what it
 * persisted moments ago (to apply it, or to send it to a follower a little
 * behind), and reading it back means a pread and a CRC per entry. A slot
 * holds index i at i % LS_CACHE_SLOTS and counts only if its index AND
 * term match the log's: by Raft's Log Matching property an entry with the
 * same index and term is the same entry, so a truncated or compacted
 * entry can never be served from a stale slot. Bounded: LS_CACHE_SLOTS x
 * LS_CACHE_ENTRY_BYTES_MAX; bigger entries are always read from disk. */
#define LS_CACHE_SLOTS 4096u
#define LS_CACHE_ENTRY_BYTES_MAX 4096u

struct ls_cache_slot {
	rl_index index;   /* 0 = empty */
	rl_term term;
	uint8_t type;
	uint32_t data_len;
	uint8_t *data;    /* malloc'ed, data_len bytes (NULL when 0) */
};

struct rl_logstore {
	struct ls_cache_slot *cache; /* LS_CACHE_SLOTS; NULL = no cache */
	struct wal wal;
	int lock_fd;
	void (*log_fn)(void *log_ctx, int err, const char *msg);
	void *log_ctx;
	struct ls_state st;
	struct ls_index idx;
	uint8_t *wbuf; /* record being written */
	size_t wbuf_cap;
	uint8_t *rbuf; /* entry read by rl_logstore_term() */
	size_t rbuf_cap;
	int stopped; /* 0, or the error that stopped the handle */
	char errmsg[RL_LOG_ERRMSG_MAX];
};

/* Decoded entry header. */
struct ls_entry_hdr {
	rl_term term;
	rl_index index;
	uint32_t data_len;
	uint8_t type;
	uint32_t crc;
};

/* ---- byte encoding ------------------------------------------------------ */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_conf(uint8_t *p, const struct rl_conf_state *c)
{
	put_le32(p, c->voters_n);
	for (int k = 0; k < RL_MEMBERS_MAX; k++)
		put_le64(p + 4 + 8 * k, k < (int)c->voters_n ? c->voters[k] : 0);
	p += 4 + 8 * RL_MEMBERS_MAX;
	put_le32(p, c->learners_n);
	for (int k = 0; k < RL_MEMBERS_MAX; k++)
		put_le64(p + 4 + 8 * k,
			 k < (int)c->learners_n ? c->learners[k] : 0);
}

static bool get_conf(const uint8_t *p, struct rl_conf_state *c)
{
	memset(c, 0, sizeof(*c));
	c->voters_n = get_le32(p);
	c->learners_n = get_le32(p + 4 + 8 * RL_MEMBERS_MAX);
	if (c->voters_n > RL_MEMBERS_MAX || c->learners_n > RL_MEMBERS_MAX)
		return false;
	for (uint32_t k = 0; k < c->voters_n; k++)
		c->voters[k] = get_le64(p + 4 + 8 * k);
	p += 4 + 8 * RL_MEMBERS_MAX;
	for (uint32_t k = 0; k < c->learners_n; k++)
		c->learners[k] = get_le64(p + 4 + 8 * k);
	return true;
}

static bool conf_eq(const struct rl_conf_state *a, const struct rl_conf_state *b)
{
	if (a->voters_n != b->voters_n || a->learners_n != b->learners_n)
		return false;
	for (uint32_t k = 0; k < a->voters_n; k++)
		if (a->voters[k] != b->voters[k])
			return false;
	for (uint32_t k = 0; k < a->learners_n; k++)
		if (a->learners[k] != b->learners[k])
			return false;
	return true;
}

static bool state_eq(const struct ls_state *a, const struct ls_state *b)
{
	return a->hs.term == b->hs.term && a->hs.vote == b->hs.vote &&
	       a->hs.commit == b->hs.commit &&
	       a->snap.index == b->snap.index && a->snap.term == b->snap.term &&
	       conf_eq(&a->snap.conf, &b->snap.conf) &&
	       conf_eq(&a->conf, &b->conf) && a->last == b->last &&
	       a->last_term == b->last_term;
}

static void put_hs(uint8_t *p, const struct rl_hard_state *hs)
{
	put_le64(p, hs->term);
	put_le64(p + 8, hs->vote);
	put_le64(p + 16, hs->commit);
}

static void get_hs(const uint8_t *p, struct rl_hard_state *hs)
{
	hs->term = get_le64(p);
	hs->vote = get_le64(p + 8);
	hs->commit = get_le64(p + 16);
}

static void put_snap(uint8_t *p, const struct rl_snapshot_meta *s)
{
	put_le64(p, s->index);
	put_le64(p + 8, s->term);
	put_conf(p + 16, &s->conf);
}

static bool get_snap(const uint8_t *p, struct rl_snapshot_meta *s)
{
	s->index = get_le64(p);
	s->term = get_le64(p + 8);
	return get_conf(p + 16, &s->conf);
}

static void put_entry_hdr(uint8_t *p, const struct rl_entry *e)
{
	put_le64(p, e->term);
	put_le64(p + 8, e->index);
	put_le32(p + 16, e->data_len);
	p[20] = e->type;
	p[21] = p[22] = p[23] = 0;
}

static void get_entry_hdr(const uint8_t *p, struct ls_entry_hdr *h)
{
	h->term = get_le64(p);
	h->index = get_le64(p + 8);
	h->data_len = get_le32(p + 16);
	h->type = p[20];
	h->crc = get_le32(p + LS_ENTRY_CRC_OFFSET);
}

static uint32_t entry_crc(const uint8_t *hdr, const void *data, size_t len)
{
	return rl_crc32c(rl_crc32c(0, hdr, LS_ENTRY_CRC_OFFSET), data, len);
}

/* ---- errors ------------------------------------------------------------- */

/* Records why a call failed; CORRUPT and IO stop the handle because the
 * store can no longer vouch for what it would return or write. */
__attribute__((format(printf, 3, 4)))
static int ls_err(struct rl_logstore *ls, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ls->errmsg, sizeof(ls->errmsg), fmt, ap);
	va_end(ap);
	if (code == RL_LOG_ERR_CORRUPT || code == RL_LOG_ERR_IO)
		ls->stopped = code;
	if (ls->log_fn && (code == RL_LOG_ERR_CORRUPT ||
			   code == RL_LOG_ERR_IO || code == RL_LOG_ERR_NOSPACE))
		ls->log_fn(ls->log_ctx, code, ls->errmsg);
	return code;
}

/* A wal.c error: its message becomes ours. */
static int ls_wal_err(struct rl_logstore *ls, int code)
{
	return ls_err(ls, code, "%s", ls->wal.errmsg);
}

static int ls_check_running(struct rl_logstore *ls)
{
	if (ls->stopped == 0)
		return 0;
	/* Keep the original reason visible: it is what the operator needs. */
	return RL_LOG_ERR_STOPPED;
}

const char *rl_logstore_strerror(int err)
{
	switch (err) {
	case RL_LOG_OK: return "success";
	case RL_LOG_ERR_INVALID: return "invalid argument";
	case RL_LOG_ERR_TOO_LARGE: return "entry or batch too large";
	case RL_LOG_ERR_GAP: return "entries not contiguous with the log";
	case RL_LOG_ERR_COMPACTED: return "index compacted into a snapshot";
	case RL_LOG_ERR_UNAVAILABLE: return "index beyond the end of the log";
	case RL_LOG_ERR_SNAPSHOT_STALE: return "snapshot older than the current one";
	case RL_LOG_ERR_UNSAFE: return "write would break persisted Raft state";
	case RL_LOG_ERR_CORRUPT: return "log corrupt or inconsistent";
	case RL_LOG_ERR_IO: return "I/O error";
	case RL_LOG_ERR_NOSPACE: return "no space left for the log";
	case RL_LOG_ERR_NOMEM: return "out of memory";
	case RL_LOG_ERR_BUSY: return "log directory in use by another handle";
	case RL_LOG_ERR_VERSION: return "not a raftbus log or unsupported format";
	case RL_LOG_ERR_STOPPED: return "log store stopped after an earlier error";
	default: return "unknown error";
	}
}

const char *rl_logstore_errmsg(const rl_logstore *ls)
{
	return ls->errmsg;
}

/* ---- the in-memory index ------------------------------------------------ */

static struct ls_slot *idx_at(struct ls_index *x, rl_index i)
{
	assert(i >= x->first && i - x->first < x->n);
	return &x->s[x->head + (size_t)(i - x->first)];
}

/* Remembers the entries of a durable save (a failure to allocate only
 * leaves a slot empty). */
static void ls_cache_put(struct rl_logstore *ls, const struct rl_entry *e,
			 size_t n)
{
	if (ls->cache == NULL)
		return;
	for (size_t k = 0; k < n; k++) {
		struct ls_cache_slot *c = &ls->cache[e[k].index % LS_CACHE_SLOTS];
		free(c->data);
		*c = (struct ls_cache_slot){ 0 };
		if (e[k].data_len > LS_CACHE_ENTRY_BYTES_MAX)
			continue;
		uint8_t *d = e[k].data_len ? malloc(e[k].data_len) : NULL;
		if (e[k].data_len && d == NULL)
			continue;
		if (d)
			memcpy(d, e[k].data, e[k].data_len);
		*c = (struct ls_cache_slot){ .index = e[k].index,
			.term = e[k].term, .type = e[k].type,
			.data_len = e[k].data_len, .data = d };
	}
}

/* Entry i from the cache into *out (data malloc'ed): true, or false when
 * it is not there (or no memory) and must be read from disk. */
static bool ls_cache_get(struct rl_logstore *ls, rl_index i,
			 struct rl_entry *out)
{
	if (ls->cache == NULL)
		return false;
	const struct ls_slot *s = idx_at(&ls->idx, i);
	const struct ls_cache_slot *c = &ls->cache[i % LS_CACHE_SLOTS];
	if (c->index != i || c->term != s->term || c->data_len != s->data_len)
		return false;
	uint8_t *d = c->data_len ? malloc(c->data_len) : NULL;
	if (c->data_len && d == NULL)
		return false;
	if (d)
		memcpy(d, c->data, c->data_len);
	*out = (struct rl_entry){ .index = i, .term = c->term, .type = c->type,
		.data = d, .data_len = c->data_len };
	return true;
}

static void ls_cache_free(struct rl_logstore *ls)
{
	if (ls->cache == NULL)
		return;
	for (size_t k = 0; k < LS_CACHE_SLOTS; k++)
		free(ls->cache[k].data);
	free(ls->cache);
	ls->cache = NULL;
}

/* Makes room for extra more slots, so that applying a record that is
 * already durable cannot fail for memory. */
static int idx_reserve(struct rl_logstore *ls, size_t extra)
{
	struct ls_index *x = &ls->idx;
	size_t need = x->n + extra, cap;
	struct ls_slot *s;

	if (x->head > 0 && x->head + need > x->cap) {
		memmove(x->s, x->s + x->head, x->n * sizeof(*x->s));
		x->head = 0;
	}
	if (need <= x->cap)
		return 0;
	cap = x->cap ? x->cap : 1024;
	while (cap < need)
		cap *= 2;
	s = realloc(x->s, cap * sizeof(*s));
	if (s == NULL)
		return ls_err(ls, RL_LOG_ERR_NOMEM,
			      "no memory to index %zu entries", need);
	x->s = s;
	x->cap = cap;
	return 0;
}

static void idx_push(struct ls_index *x, const struct ls_slot *slot)
{
	assert(x->head + x->n < x->cap);
	x->s[x->head + x->n++] = *slot;
}

/* Drops entries >= i. */
static void idx_truncate(struct ls_index *x, rl_index i)
{
	assert(i >= x->first && i - x->first <= x->n);
	x->n = (size_t)(i - x->first);
}

/* Drops entries <= i; the index then starts at i + 1. */
static void idx_drop_prefix(struct ls_index *x, rl_index i)
{
	uint64_t k = i + 1 - x->first;

	assert(i + 1 >= x->first);
	if (k > x->n)
		k = x->n;
	x->head += (size_t)k;
	x->n -= (size_t)k;
	if (x->n == 0)
		x->head = 0;
	x->first = i + 1;
}

static void idx_reset(struct ls_index *x, rl_index first)
{
	x->head = x->n = 0;
	x->first = first;
}

/* Term of index i according to st, from memory (st is ls->st or a next
 * state computed from it: see ls_plan_*). */
static int ls_term_at(struct rl_logstore *ls, const struct ls_state *st,
		      rl_index i, rl_term *out)
{
	struct ls_slot *slot;

	if (i == st->snap.index) {
		*out = st->snap.term;
		return 0;
	}
	if (i < st->snap.index)
		return ls_err(ls, RL_LOG_ERR_COMPACTED,
			      "index %llu is compacted (snapshot index %llu)",
			      (unsigned long long)i,
			      (unsigned long long)st->snap.index);
	if (i > st->last)
		return ls_err(ls, RL_LOG_ERR_UNAVAILABLE,
			      "index %llu is beyond the last index %llu",
			      (unsigned long long)i,
			      (unsigned long long)st->last);
	if (i == st->last) {
		*out = st->last_term;
		return 0;
	}
	slot = idx_at(&ls->idx, i);
	assert(slot->seq != LS_SEQ_UNKNOWN);
	*out = slot->term;
	return 0;
}

/* ---- replay: applying one record to the state and the index ------------- */

__attribute__((format(printf, 3, 4)))
static int ls_corrupt(struct rl_logstore *ls, rl_index i, const char *fmt, ...)
{
	char what[RL_LOG_ERRMSG_MAX - 48];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return ls_err(ls, RL_LOG_ERR_CORRUPT, "log corrupt at index %llu: %s",
		      (unsigned long long)i, what);
}

/* Term of i if the index knows it (replay may not: see the top). */
static bool ls_known_term(struct rl_logstore *ls, rl_index i, rl_term *out)
{
	if (i == ls->st.snap.index || i == ls->st.last) {
		*out = i == ls->st.snap.index ? ls->st.snap.term
					      : ls->st.last_term;
		return true;
	}
	if (i < ls->st.snap.index || i > ls->st.last)
		return false;
	struct ls_slot *s = idx_at(&ls->idx, i);
	*out = s->term;
	return s->seq != LS_SEQ_UNKNOWN;
}

/* Snapshot part of a batch record (thesis §5: keep the suffix only if the
 * log holds the snapshot's last entry). */
static int ls_replay_snap(struct rl_logstore *ls, const uint8_t *p, bool keep)
{
	struct rl_snapshot_meta m;
	rl_term t;

	if (!get_snap(p, &m))
		return ls_corrupt(ls, ls->st.last, "snapshot membership over "
				  "%d members", RL_MEMBERS_MAX);
	if (m.index <= ls->st.snap.index)
		return ls_corrupt(ls, m.index, "snapshot not newer than the "
				  "snapshot at %llu",
				  (unsigned long long)ls->st.snap.index);
	if (keep && (m.index > ls->st.last ||
		     (ls_known_term(ls, m.index, &t) && t != m.term)))
		return ls_corrupt(ls, m.index, "snapshot keeps a log suffix "
				  "that does not hold its last entry");
	if (keep) {
		idx_drop_prefix(&ls->idx, m.index);
	} else {
		idx_reset(&ls->idx, m.index + 1);
		ls->st.last = m.index;
		ls->st.last_term = m.term;
	}
	ls->st.snap = m;
	ls->st.conf = m.conf;
	return 0;
}

/* Checks one entry of a record: its own CRC, place, type and term. want:
 * the index the entry must have (0 for a record's first entry, which may
 * go anywhere up to last + 1). */
static int ls_replay_check_entry(struct rl_logstore *ls,
				 const struct ls_entry_hdr *h,
				 const uint8_t *hdr, rl_index want)
{
	uint32_t crc = entry_crc(hdr, hdr + RL_LOG_ENTRY_HEADER_BYTES,
				 h->data_len);
	rl_term prev;

	if (crc != h->crc)
		return ls_corrupt(ls, h->index, "checksum mismatch (stored "
				  "0x%08x, computed 0x%08x)", h->crc, crc);
	if (h->index <= ls->st.snap.index)
		return ls_corrupt(ls, h->index, "entry at or below the "
				  "snapshot index %llu",
				  (unsigned long long)ls->st.snap.index);
	if ((want != 0 && h->index != want) || h->index > ls->st.last + 1)
		return ls_corrupt(ls, h->index, "gap, expected index %llu",
				  (unsigned long long)(want ? want
							    : ls->st.last + 1));
	if (h->type != RL_ENTRY_NORMAL && h->type != RL_ENTRY_CONF_CHANGE)
		return ls_corrupt(ls, h->index, "unknown entry type %u",
				  h->type);
	if (h->index <= ls->st.hs.commit)
		return ls_corrupt(ls, h->index, "overwrites a committed entry "
				  "(commit index %llu)",
				  (unsigned long long)ls->st.hs.commit);
	if (ls_known_term(ls, h->index - 1, &prev) && h->term < prev)
		return ls_corrupt(ls, h->index, "term %llu is lower than the "
				  "term %llu before it",
				  (unsigned long long)h->term,
				  (unsigned long long)prev);
	return 0;
}

/* Entries of a batch record: p points at the first entry header, end at
 * the end of the payload, off is p's file offset in segment seq. */
static int ls_replay_entries(struct rl_logstore *ls, const uint8_t *p,
			     const uint8_t *end, uint32_t n, uint64_t seq,
			     uint64_t off)
{
	struct ls_entry_hdr h;
	rl_index want = 0;
	int err;

	if ((err = idx_reserve(ls, n)) != 0)
		return err;
	for (uint32_t k = 0; k < n; k++) {
		if ((size_t)(end - p) < RL_LOG_ENTRY_HEADER_BYTES)
			return ls_corrupt(ls, ls->st.last + 1, "batch record "
					  "shorter than its %u entries", n);
		get_entry_hdr(p, &h);
		if (h.data_len > (size_t)(end - p) - RL_LOG_ENTRY_HEADER_BYTES)
			return ls_corrupt(ls, h.index, "data length %u past "
					  "the record", h.data_len);
		if ((err = ls_replay_check_entry(ls, &h, p, want)) != 0)
			return err;
		/* Entries from here on conflicted (§5.3): the record's
		 * first entry is also its suffix-truncation marker. */
		idx_truncate(&ls->idx, h.index);
		idx_push(&ls->idx, &(struct ls_slot){ .term = h.term,
			 .seq = seq, .off = off, .data_len = h.data_len });
		ls->st.last = h.index;
		ls->st.last_term = h.term;
		p += RL_LOG_ENTRY_HEADER_BYTES + h.data_len;
		off += RL_LOG_ENTRY_HEADER_BYTES + h.data_len;
		want = h.index + 1;
	}
	if (p != end)
		return ls_corrupt(ls, ls->st.last, "%zu bytes after the last "
				  "entry of a batch record", (size_t)(end - p));
	return 0;
}

/* The invariants every record must leave (they held when it was
 * written). */
static int ls_replay_check_state(struct rl_logstore *ls)
{
	const struct ls_state *st = &ls->st;

	if (st->hs.commit > st->last)
		return ls_err(ls, RL_LOG_ERR_CORRUPT, "log inconsistent: hard "
			      "state commit index %llu is beyond the last log "
			      "index %llu", (unsigned long long)st->hs.commit,
			      (unsigned long long)st->last);
	if (st->hs.commit < st->snap.index)
		return ls_err(ls, RL_LOG_ERR_CORRUPT, "log inconsistent: hard "
			      "state commit index %llu is below the snapshot "
			      "index %llu", (unsigned long long)st->hs.commit,
			      (unsigned long long)st->snap.index);
	if (st->last_term > st->hs.term)
		return ls_corrupt(ls, st->last, "term %llu is above the hard "
				  "state term %llu",
				  (unsigned long long)st->last_term,
				  (unsigned long long)st->hs.term);
	return 0;
}

/* Size of each optional part of a batch record, given its flags. */
static size_t ls_batch_fixed_bytes(uint8_t flags)
{
	return LS_REC_HDR_BYTES + (flags & LS_BATCH_SNAP ? LS_SNAP_BYTES : 0) +
	       (flags & LS_BATCH_HS ? LS_HS_BYTES : 0) +
	       (flags & LS_BATCH_CONF ? LS_CONF_BYTES : 0);
}

/* Applies a batch record (written by ls_encode_batch) in the order save()
 * applies a batch: snapshot, entries, hard state, membership. */
static int ls_replay_batch(struct rl_logstore *ls, const uint8_t *p,
			   uint32_t len, uint64_t seq, uint64_t off)
{
	uint8_t flags = p[1];
	uint32_t n = get_le32(p + 4);
	size_t fixed = ls_batch_fixed_bytes(flags);
	const uint8_t *q = p + LS_REC_HDR_BYTES, *hs = NULL, *conf = NULL;
	struct rl_conf_state c;
	int err;

	if ((flags & ~LS_BATCH_FLAGS_ALL) != 0 || len < fixed)
		return ls_corrupt(ls, ls->st.last, "malformed batch record");
	if (flags & LS_BATCH_SNAP) {
		err = ls_replay_snap(ls, q, flags & LS_BATCH_SNAP_KEEP);
		if (err != 0)
			return err;
		q += LS_SNAP_BYTES;
	}
	if (flags & LS_BATCH_HS) {
		hs = q;
		q += LS_HS_BYTES;
	}
	if (flags & LS_BATCH_CONF) {
		conf = q;
		q += LS_CONF_BYTES;
	}
	err = ls_replay_entries(ls, q, p + len, n, seq, off + fixed);
	if (err != 0)
		return err;
	if (hs != NULL)
		get_hs(hs, &ls->st.hs);
	if (conf != NULL && !get_conf(conf, &c))
		return ls_corrupt(ls, ls->st.last, "membership over %d "
				  "members", RL_MEMBERS_MAX);
	if (conf != NULL)
		ls->st.conf = c;
	if (ls->st.hs.commit < ls->st.snap.index)
		ls->st.hs.commit = ls->st.snap.index;
	return ls_replay_check_state(ls);
}

static int ls_replay_compact(struct rl_logstore *ls, const uint8_t *p,
			     uint32_t len)
{
	struct rl_snapshot_meta m;
	rl_term t;

	if (len != LS_COMPACT_BYTES || !get_snap(p + LS_REC_HDR_BYTES, &m))
		return ls_corrupt(ls, ls->st.snap.index,
				  "malformed compaction record");
	if (m.index <= ls->st.snap.index || m.index > ls->st.hs.commit ||
	    (ls_known_term(ls, m.index, &t) && t != m.term))
		return ls_corrupt(ls, m.index, "compaction record does not fit "
				  "the log (snapshot %llu, commit %llu)",
				  (unsigned long long)ls->st.snap.index,
				  (unsigned long long)ls->st.hs.commit);
	idx_drop_prefix(&ls->idx, m.index);
	ls->st.snap = m;
	return ls_replay_check_state(ls);
}

static void ls_encode_state(uint8_t *p, const struct ls_state *st)
{
	put_hs(p, &st->hs);
	put_le64(p + LS_HS_BYTES, st->last);
	put_le64(p + LS_HS_BYTES + 8, st->last_term);
	put_snap(p + LS_HS_BYTES + 16, &st->snap);
	put_conf(p + LS_HS_BYTES + 16 + LS_SNAP_BYTES, &st->conf);
}

static bool ls_decode_state(const uint8_t *p, struct ls_state *st)
{
	get_hs(p, &st->hs);
	st->last = get_le64(p + LS_HS_BYTES);
	st->last_term = get_le64(p + LS_HS_BYTES + 8);
	return get_snap(p + LS_HS_BYTES + 16, &st->snap) &&
	       get_conf(p + LS_HS_BYTES + 16 + LS_SNAP_BYTES, &st->conf) &&
	       st->last >= st->snap.index;
}

/* The first record of a segment. The oldest segment's checkpoint is where
 * replay starts; each later one must equal the state replayed so far. */
static int ls_replay_checkpoint(struct rl_logstore *ls, size_t seg_k,
				const uint8_t *p, uint32_t len)
{
	struct ls_state cp;
	int err;

	if (len != LS_CHECKPOINT_BYTES || !ls_decode_state(p + LS_REC_HDR_BYTES,
							   &cp))
		return ls_err(ls, RL_LOG_ERR_CORRUPT, "log corrupt: segment "
			      "%llu: malformed checkpoint record",
			      (unsigned long long)ls->wal.segs[seg_k].seq);
	ls->wal.segs[seg_k].cp_last = cp.last;
	if (seg_k > 0) {
		if (!state_eq(&cp, &ls->st))
			return ls_err(ls, RL_LOG_ERR_CORRUPT, "log corrupt: "
				      "segment %llu starts at last index %llu "
				      "but the segments before it end at %llu "
				      "(or another state): a segment is "
				      "missing or damaged",
				      (unsigned long long)ls->wal.segs[seg_k].seq,
				      (unsigned long long)cp.last,
				      (unsigned long long)ls->st.last);
		return 0;
	}
	ls->st = cp;
	idx_reset(&ls->idx, cp.snap.index + 1);
	if ((err = idx_reserve(ls, (size_t)(cp.last - cp.snap.index))) != 0)
		return err;
	for (rl_index i = cp.snap.index + 1; i <= cp.last; i++)
		idx_push(&ls->idx, &(struct ls_slot){ .seq = LS_SEQ_UNKNOWN });
	return ls_replay_check_state(ls);
}

/* A record whose CRC failed: name the damaged entry if one is. */
static int ls_diagnose(struct rl_logstore *ls, const uint8_t *p, uint32_t len)
{
	size_t fixed = ls_batch_fixed_bytes(p[1]);
	const uint8_t *q = p + fixed, *end = p + len;
	struct ls_entry_hdr h;

	if (p[0] != LS_REC_BATCH || len < fixed)
		return 0;
	for (uint32_t k = 0; k < get_le32(p + 4); k++) {
		if ((size_t)(end - q) < RL_LOG_ENTRY_HEADER_BYTES)
			return 0;
		get_entry_hdr(q, &h);
		if (h.data_len > (size_t)(end - q) - RL_LOG_ENTRY_HEADER_BYTES)
			return 0;
		uint32_t crc = entry_crc(q, q + RL_LOG_ENTRY_HEADER_BYTES,
					 h.data_len);
		if (crc != h.crc)
			return ls_corrupt(ls, h.index, "checksum mismatch "
					  "(stored 0x%08x, computed 0x%08x)",
					  h.crc, crc);
		q += RL_LOG_ENTRY_HEADER_BYTES + h.data_len;
	}
	return 0;
}

/* wal_rec_fn: applies one record. Also used by save and compact on the
 * record they just wrote. */
static int ls_replay_rec(void *arg, size_t seg_k, bool first,
			 const uint8_t *p, uint32_t len, uint64_t off,
			 bool crc_ok)
{
	struct rl_logstore *ls = arg;
	uint64_t seq = ls->wal.segs[seg_k].seq;

	if (!crc_ok)
		return ls_diagnose(ls, p, len);
	if (len < LS_REC_HDR_BYTES || first != (p[0] == LS_REC_CHECKPOINT))
		return ls_err(ls, RL_LOG_ERR_CORRUPT, "log corrupt: segment "
			      "%llu offset %llu: unexpected record type %u",
			      (unsigned long long)seq,
			      (unsigned long long)off, p[0]);
	switch (p[0]) {
	case LS_REC_CHECKPOINT:
		return ls_replay_checkpoint(ls, seg_k, p, len);
	case LS_REC_BATCH:
		return ls_replay_batch(ls, p, len, seq, off);
	case LS_REC_COMPACT:
		return ls_replay_compact(ls, p, len);
	default:
		return ls_err(ls, RL_LOG_ERR_CORRUPT, "log corrupt: segment "
			      "%llu offset %llu: unknown record type %u",
			      (unsigned long long)seq,
			      (unsigned long long)off, p[0]);
	}
}

/* ---- writing a record ---------------------------------------------------- */

static int ls_wbuf(struct rl_logstore *ls, size_t len)
{
	uint8_t *p;

	if (len <= ls->wbuf_cap)
		return 0;
	p = realloc(ls->wbuf, len);
	if (p == NULL)
		return ls_err(ls, RL_LOG_ERR_NOMEM,
			      "no memory for a record of %zu bytes", len);
	ls->wbuf = p;
	ls->wbuf_cap = len;
	return 0;
}

static void ls_wbuf_trim(struct rl_logstore *ls)
{
	if (ls->wbuf_cap > LS_WBUF_KEEP_BYTES) {
		free(ls->wbuf);
		ls->wbuf = NULL;
		ls->wbuf_cap = 0;
	}
}

/* The spare segment could not be used (wal.h): not an error of this
 * call, but the cause (disk full, I/O error) must reach the member's
 * log. */
static void ls_log_note(struct rl_logstore *ls)
{
	if (ls->wal.note_err != 0 && ls->log_fn != NULL)
		ls->log_fn(ls->log_ctx, ls->wal.note_err, ls->wal.note);
	ls->wal.note_err = 0;
}

/* Starts a new segment whose checkpoint is the current state. */
static int ls_roll(struct rl_logstore *ls, size_t room_bytes, bool over_max)
{
	uint8_t cp[WAL_REC_HEADER_BYTES + LS_CHECKPOINT_BYTES + WAL_REC_ALIGN_BYTES];
	uint8_t *p = cp + WAL_REC_HEADER_BYTES;
	size_t len;
	int err;

	memset(p, 0, LS_REC_HDR_BYTES);
	p[0] = LS_REC_CHECKPOINT;
	ls_encode_state(p + LS_REC_HDR_BYTES, &ls->st);
	len = wal_seal(cp, LS_CHECKPOINT_BYTES);
	/* NOSPACE: nothing was created and the handle stays usable; any
	 * other failure stops it (ls_err). */
	err = wal_create(&ls->wal, ls->st.last + 1, cp, len, room_bytes,
			 ls->st.last, over_max);
	ls_log_note(ls);
	return err != 0 ? ls_wal_err(ls, err) : 0;
}

/*
 * Writes the sealed record in ls->wbuf (len bytes) durably, then applies
 * it to the state with the replay code. A failed write or sync stops the
 * handle: whether the data reached the disk is then unknown, and retrying
 * on a descriptor whose fsync failed can report success for data that was
 * lost.
 */
static int ls_commit_rec(struct rl_logstore *ls, size_t len,
			 const struct ls_state *want, bool over_max)
{
	uint64_t off;
	int err;

	if (wal_room(&ls->wal) < len &&
	    (err = ls_roll(ls, len, over_max)) != 0)
		return err;
	err = wal_append(&ls->wal, ls->wbuf, len, &off);
	if (err != 0) {
		ls->stopped = err;
		return ls_wal_err(ls, err);
	}
	err = ls_replay_rec(ls, ls->wal.n - 1, false,
			    ls->wbuf + WAL_REC_HEADER_BYTES,
			    get_le32(ls->wbuf), off + WAL_REC_HEADER_BYTES,
			    true);
	/* The record passed save()'s checks: replaying it cannot fail and
	 * must land on the state save() computed. */
	assert(err == 0 && state_eq(&ls->st, want));
	(void)want;
	return err;
}

/* ---- open / close ------------------------------------------------------- */

static int ls_lock_dir(struct rl_logstore *ls, const char *dir)
{
	char path[4096];
	int n;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return ls_err(ls, RL_LOG_ERR_IO, "create directory %s: %s",
			      dir, strerror(errno));
	n = snprintf(path, sizeof(path), "%s/%s", dir, LS_LOCK_FILE);
	if (n < 0 || (size_t)n >= sizeof(path))
		return ls_err(ls, RL_LOG_ERR_INVALID, "directory path too long");
	ls->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ls->lock_fd < 0)
		return ls_err(ls, RL_LOG_ERR_IO, "open %s: %s", path,
			      strerror(errno));
	/* Two Raft members on one log must never be: one handle holds this
	 * lock for its lifetime. */
	if (flock(ls->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			return ls_err(ls, RL_LOG_ERR_BUSY,
				      "log directory %s is already open", dir);
		return ls_err(ls, RL_LOG_ERR_IO, "lock %s: %s", path,
			      strerror(errno));
	}
	return 0;
}

static int ls_set_options(struct rl_logstore *ls,
			  const struct rl_logstore_options *opts)
{
	uint64_t seg = RL_LOG_MAP_SIZE_DEFAULT_BYTES;
	uint64_t max = RL_LOG_MAP_SIZE_MAX_DEFAULT_BYTES;

	if (opts != NULL) {
		if (opts->map_size_bytes != 0)
			seg = opts->map_size_bytes;
		if (opts->map_size_max_bytes != 0)
			max = opts->map_size_max_bytes;
		ls->log_fn = opts->log_fn;
		ls->log_ctx = opts->log_ctx;
	}
	ls->wal.seg_bytes = seg;
	ls->wal.bytes_max = max;
	if (seg < LS_SEGMENT_BYTES_MIN || seg > max || seg > SIZE_MAX)
		return ls_err(ls, RL_LOG_ERR_INVALID,
			      "segment size (map_size_bytes) must be in [%u, "
			      "map_size_max_bytes]", LS_SEGMENT_BYTES_MIN);
	return 0;
}

/* Every entry the log holds must have been found in a segment. */
static int ls_check_complete(struct rl_logstore *ls)
{
	for (rl_index i = ls->st.snap.index + 1; i <= ls->st.last; i++)
		if (idx_at(&ls->idx, i)->seq == LS_SEQ_UNKNOWN)
			return ls_corrupt(ls, i, "entry missing (log holds "
					  "%llu..%llu; its segment was "
					  "deleted?)",
					  (unsigned long long)ls->st.snap.index + 1,
					  (unsigned long long)ls->st.last);
	return 0;
}

/* Opens the segments and replays them; a new log gets its first one. */
static int ls_load(struct rl_logstore *ls, const char *dir)
{
	int err;

	if ((err = wal_open(&ls->wal, dir)) != 0)
		return ls_wal_err(ls, err);
	if (ls->wal.n == 0) {
		memset(&ls->st, 0, sizeof(ls->st));
		idx_reset(&ls->idx, 1);
		return ls_roll(ls, 0, false);
	}
	for (size_t k = 0; k < ls->wal.n; k++) {
		ls->errmsg[0] = '\0';
		err = wal_scan(&ls->wal, k, ls_replay_rec, ls);
		if (err != 0)
			return ls->errmsg[0] ? err : ls_wal_err(ls, err);
	}
	return ls_check_complete(ls);
}

int rl_logstore_open(const char *dir, const struct rl_logstore_options *opts,
		     rl_logstore **out, char *errmsg, size_t errmsg_len)
{
	struct rl_logstore *ls;
	int err;

	if (out != NULL)
		*out = NULL;
	if (errmsg != NULL && errmsg_len > 0)
		errmsg[0] = '\0';
	if (dir == NULL || out == NULL) {
		if (errmsg != NULL && errmsg_len > 0)
			snprintf(errmsg, errmsg_len, "dir and out are required");
		return RL_LOG_ERR_INVALID;
	}
	ls = calloc(1, sizeof(*ls));
	if (ls == NULL) {
		if (errmsg != NULL && errmsg_len > 0)
			snprintf(errmsg, errmsg_len, "out of memory");
		return RL_LOG_ERR_NOMEM;
	}
	ls->lock_fd = -1;
	ls->wal.dir_fd = -1;
	/* without it (no memory) every read goes to disk */
	ls->cache = calloc(LS_CACHE_SLOTS, sizeof(*ls->cache));
	if ((err = ls_set_options(ls, opts)) != 0 ||
	    (err = ls_lock_dir(ls, dir)) != 0 ||
	    (err = ls_load(ls, dir)) != 0)
		goto out_close;
	/* After the replay: until here the log is only read (and the first
	 * segment of a new log is filled synchronously). */
	if ((err = wal_spare_start(&ls->wal)) != 0) {
		err = ls_wal_err(ls, err);
		goto out_close;
	}
	*out = ls;
	return 0;
out_close:
	if (errmsg != NULL && errmsg_len > 0)
		snprintf(errmsg, errmsg_len, "%s: %s", dir, ls->errmsg);
	rl_logstore_close(ls);
	return err;
}

void rl_logstore_close(rl_logstore *ls)
{
	if (ls == NULL)
		return;
	wal_close(&ls->wal);
	/* Closing the descriptor releases the directory lock. */
	if (ls->lock_fd >= 0)
		close(ls->lock_fd);
	free(ls->idx.s);
	free(ls->wbuf);
	free(ls->rbuf);
	ls_cache_free(ls);
	free(ls);
}

/* ---- save: checks ------------------------------------------------------- */

static bool conf_valid(const struct rl_conf_state *c)
{
	return c->voters_n <= RL_MEMBERS_MAX && c->learners_n <= RL_MEMBERS_MAX;
}

/* Checks of the batch that need no stored state. */
static int ls_check_entries_arg(struct rl_logstore *ls,
				const struct rl_entry *e, size_t n)
{
	uint64_t bytes = 0;

	if (n > RL_LOG_BATCH_ENTRIES_MAX)
		return ls_err(ls, RL_LOG_ERR_TOO_LARGE,
			      "batch of %zu entries (max %u)", n,
			      RL_LOG_BATCH_ENTRIES_MAX);
	if (e == NULL)
		return ls_err(ls, RL_LOG_ERR_INVALID, "entries is NULL");
	for (size_t k = 0; k < n; k++) {
		unsigned long long i = e[k].index;
		if (i == 0 || e[k].term == 0)
			return ls_err(ls, RL_LOG_ERR_INVALID,
				      "batch entry %zu: index and term must "
				      "be >= 1", k);
		if (e[k].type != RL_ENTRY_NORMAL &&
		    e[k].type != RL_ENTRY_CONF_CHANGE)
			return ls_err(ls, RL_LOG_ERR_INVALID,
				      "entry %llu: unknown type %u", i,
				      e[k].type);
		if (e[k].data_len > RL_ENTRY_DATA_MAX)
			return ls_err(ls, RL_LOG_ERR_TOO_LARGE,
				      "entry %llu: %u data bytes (max %u)", i,
				      e[k].data_len, RL_ENTRY_DATA_MAX);
		if (e[k].data == NULL && e[k].data_len > 0)
			return ls_err(ls, RL_LOG_ERR_INVALID,
				      "entry %llu: data is NULL", i);
		if (k > 0 && e[k].index != e[k - 1].index + 1)
			return ls_err(ls, RL_LOG_ERR_GAP,
				      "batch not contiguous: index %llu "
				      "follows %llu", i,
				      (unsigned long long)e[k - 1].index);
		if (k > 0 && e[k].term < e[k - 1].term)
			return ls_err(ls, RL_LOG_ERR_GAP,
				      "batch terms go down at index %llu", i);
		bytes += e[k].data_len;
	}
	if (bytes > RL_LOG_BATCH_BYTES_MAX)
		return ls_err(ls, RL_LOG_ERR_TOO_LARGE,
			      "batch of %llu data bytes (max %u)",
			      (unsigned long long)bytes, RL_LOG_BATCH_BYTES_MAX);
	return 0;
}

static int ls_check_batch_arg(struct rl_logstore *ls,
			      const struct rl_logstore_batch *b)
{
	if (b == NULL)
		return ls_err(ls, RL_LOG_ERR_INVALID, "batch is NULL");
	if (b->snapshot != NULL &&
	    (b->snapshot->index == 0 || b->snapshot->term == 0 ||
	     !conf_valid(&b->snapshot->conf)))
		return ls_err(ls, RL_LOG_ERR_INVALID,
			      "snapshot: index and term must be >= 1, at most "
			      "%d voters and %d learners",
			      RL_MEMBERS_MAX, RL_MEMBERS_MAX);
	if (b->conf != NULL && !conf_valid(b->conf))
		return ls_err(ls, RL_LOG_ERR_INVALID,
			      "conf: at most %d voters and %d learners",
			      RL_MEMBERS_MAX, RL_MEMBERS_MAX);
	if (b->entries_n > 0)
		return ls_check_entries_arg(ls, b->entries, b->entries_n);
	return 0;
}

/* What a batch will do, decided before anything is written. */
struct ls_plan {
	struct ls_state next;
	bool keep_suffix; /* snapshot: the log after it stays */
	bool write_hs;
};

/* Snapshot install (thesis §5): keep the suffix only if the log holds the
 * snapshot's last entry; otherwise the log is replaced by the snapshot. */
static int ls_plan_snapshot(struct rl_logstore *ls, struct ls_plan *p,
			    const struct rl_snapshot_meta *snap)
{
	struct ls_state *next = &p->next;
	rl_term t;
	int err;

	if (snap->index <= next->snap.index)
		return ls_err(ls, RL_LOG_ERR_SNAPSHOT_STALE,
			      "snapshot at index %llu is not newer than the "
			      "current snapshot at %llu",
			      (unsigned long long)snap->index,
			      (unsigned long long)next->snap.index);
	p->keep_suffix = false;
	if (snap->index <= next->last) {
		if ((err = ls_term_at(ls, next, snap->index, &t)) != 0)
			return err;
		p->keep_suffix = t == snap->term;
		if (!p->keep_suffix && snap->index <= next->hs.commit)
			return ls_err(ls, RL_LOG_ERR_UNSAFE,
				      "snapshot (index %llu, term %llu) "
				      "contradicts committed entry of term %llu",
				      (unsigned long long)snap->index,
				      (unsigned long long)snap->term,
				      (unsigned long long)t);
	}
	next->snap = *snap;
	next->conf = snap->conf;
	if (!p->keep_suffix) {
		next->last = snap->index;
		next->last_term = snap->term;
	}
	return 0;
}

/* Append with truncation of a conflicting suffix (paper §5.3: the caller
 * found the conflict; here the truncate and the append are one write). */
static int ls_plan_entries(struct rl_logstore *ls, struct ls_state *next,
			   const struct rl_entry *e, size_t n)
{
	unsigned long long first = e[0].index;
	rl_term prev_term;
	int err;

	if (first <= next->snap.index)
		return ls_err(ls, RL_LOG_ERR_COMPACTED,
			      "batch starts at index %llu, at or below the "
			      "snapshot index %llu", first,
			      (unsigned long long)next->snap.index);
	if (first > next->last + 1)
		return ls_err(ls, RL_LOG_ERR_GAP,
			      "batch starts at index %llu but the log ends at "
			      "%llu", first, (unsigned long long)next->last);
	if (first <= next->hs.commit)
		return ls_err(ls, RL_LOG_ERR_UNSAFE,
			      "batch at index %llu would overwrite committed "
			      "entries (commit index %llu)", first,
			      (unsigned long long)next->hs.commit);
	if ((err = ls_term_at(ls, next, first - 1, &prev_term)) != 0)
		return err;
	if (e[0].term < prev_term)
		return ls_err(ls, RL_LOG_ERR_GAP,
			      "term goes down at index %llu: %llu after %llu",
			      first, (unsigned long long)e[0].term,
			      (unsigned long long)prev_term);
	next->last = e[n - 1].index;
	next->last_term = e[n - 1].term;
	return 0;
}

/* The hard state may only move forward (paper Figure 2: currentTerm only
 * grows, votedFor is set once per term, commitIndex never goes back). */
static int ls_plan_hard_state(struct rl_logstore *ls, struct ls_state *next,
			      const struct rl_hard_state *hs)
{
	const struct rl_hard_state *cur = &ls->st.hs;

	if (hs->term < cur->term)
		return ls_err(ls, RL_LOG_ERR_UNSAFE,
			      "hard state term %llu is lower than the stored "
			      "term %llu", (unsigned long long)hs->term,
			      (unsigned long long)cur->term);
	if (hs->term == cur->term && cur->vote != RL_NONE &&
	    hs->vote != cur->vote)
		return ls_err(ls, RL_LOG_ERR_UNSAFE,
			      "term %llu: already voted for %llu, refusing to "
			      "record a vote for %llu",
			      (unsigned long long)hs->term,
			      (unsigned long long)cur->vote,
			      (unsigned long long)hs->vote);
	if (hs->commit < cur->commit)
		return ls_err(ls, RL_LOG_ERR_UNSAFE,
			      "commit index would go back from %llu to %llu",
			      (unsigned long long)cur->commit,
			      (unsigned long long)hs->commit);
	next->hs = *hs;
	return 0;
}

/* Invariants of the state a batch leaves, checked before it is written. */
static int ls_plan_check_next(struct rl_logstore *ls, struct ls_state *next)
{
	/* A snapshot holds only committed state. */
	if (next->hs.commit < next->snap.index)
		next->hs.commit = next->snap.index;
	if (next->hs.commit > next->last)
		return ls_err(ls, RL_LOG_ERR_UNSAFE,
			      "commit index %llu is beyond the last index %llu",
			      (unsigned long long)next->hs.commit,
			      (unsigned long long)next->last);
	if (next->last_term > next->hs.term)
		return ls_err(ls, RL_LOG_ERR_UNSAFE,
			      "log term %llu at index %llu is above the hard "
			      "state term %llu (persist the term first or in "
			      "the same batch)",
			      (unsigned long long)next->last_term,
			      (unsigned long long)next->last,
			      (unsigned long long)next->hs.term);
	return 0;
}

static int ls_plan_batch(struct rl_logstore *ls, struct ls_plan *p,
			 const struct rl_logstore_batch *b)
{
	int err;

	p->next = ls->st;
	if (b->snapshot != NULL &&
	    (err = ls_plan_snapshot(ls, p, b->snapshot)) != 0)
		return err;
	if (b->entries_n > 0 &&
	    (err = ls_plan_entries(ls, &p->next, b->entries, b->entries_n)))
		return err;
	if (b->hard_state != NULL &&
	    (err = ls_plan_hard_state(ls, &p->next, b->hard_state)) != 0)
		return err;
	if (b->conf != NULL)
		p->next.conf = *b->conf;
	if ((err = ls_plan_check_next(ls, &p->next)) != 0)
		return err;
	/* The hard state is written when it changes (a snapshot may raise
	 * the commit index); replay starts from the stored one. */
	p->write_hs = p->next.hs.term != ls->st.hs.term ||
		      p->next.hs.vote != ls->st.hs.vote ||
		      p->next.hs.commit != ls->st.hs.commit;
	return 0;
}

/* ---- save: the record ---------------------------------------------------- */

static size_t ls_batch_payload_bytes(const struct ls_plan *p,
				     const struct rl_logstore_batch *b,
				     uint8_t *flags)
{
	size_t len;

	*flags = (b->snapshot ? LS_BATCH_SNAP : 0) |
		 (b->snapshot && p->keep_suffix ? LS_BATCH_SNAP_KEEP : 0) |
		 (p->write_hs ? LS_BATCH_HS : 0) |
		 (b->conf ? LS_BATCH_CONF : 0);
	len = ls_batch_fixed_bytes(*flags);
	for (size_t k = 0; k < b->entries_n; k++)
		len += RL_LOG_ENTRY_HEADER_BYTES + b->entries[k].data_len;
	return len;
}

/* Lays out the batch record in ls->wbuf (see the top of the file) and
 * seals it; returns its length, 0 on no memory. */
static size_t ls_encode_batch(struct rl_logstore *ls, const struct ls_plan *p,
			      const struct rl_logstore_batch *b)
{
	uint8_t flags;
	size_t len = ls_batch_payload_bytes(p, b, &flags);
	uint8_t *q, *rec;

	assert(len <= LS_BATCH_PAYLOAD_MAX);
	if (ls_wbuf(ls, wal_rec_bytes(len)) != 0)
		return 0;
	rec = ls->wbuf;
	q = rec + WAL_REC_HEADER_BYTES;
	memset(q, 0, LS_REC_HDR_BYTES);
	q[0] = LS_REC_BATCH;
	q[1] = flags;
	put_le32(q + 4, (uint32_t)b->entries_n);
	q += LS_REC_HDR_BYTES;
	if (b->snapshot != NULL) {
		put_snap(q, b->snapshot);
		q += LS_SNAP_BYTES;
	}
	if (p->write_hs) {
		put_hs(q, &p->next.hs);
		q += LS_HS_BYTES;
	}
	if (b->conf != NULL) {
		put_conf(q, b->conf);
		q += LS_CONF_BYTES;
	}
	for (size_t k = 0; k < b->entries_n; k++) {
		const struct rl_entry *e = &b->entries[k];
		put_entry_hdr(q, e);
		if (e->data_len > 0)
			memcpy(q + RL_LOG_ENTRY_HEADER_BYTES, e->data,
			       e->data_len);
		put_le32(q + LS_ENTRY_CRC_OFFSET,
			 entry_crc(q, e->data, e->data_len));
		q += RL_LOG_ENTRY_HEADER_BYTES + e->data_len;
	}
	assert((size_t)(q - rec - WAL_REC_HEADER_BYTES) == len);
	return wal_seal(rec, (uint32_t)len);
}

/* Copies of the caller's structs with the unused membership slots zeroed,
 * so that the state compares equal to what replay decodes. */
static void ls_norm_conf(struct rl_conf_state *c)
{
	for (uint32_t k = c->voters_n; k < RL_MEMBERS_MAX; k++)
		c->voters[k] = 0;
	for (uint32_t k = c->learners_n; k < RL_MEMBERS_MAX; k++)
		c->learners[k] = 0;
}

int rl_logstore_save(rl_logstore *ls, const struct rl_logstore_batch *b)
{
	struct ls_plan p;
	size_t len;
	int err;

	if ((err = ls_check_running(ls)) != 0)
		return err;
	ls->errmsg[0] = '\0';
	if ((err = ls_check_batch_arg(ls, b)) != 0 ||
	    (err = ls_plan_batch(ls, &p, b)) != 0)
		return err;
	ls_norm_conf(&p.next.conf);
	ls_norm_conf(&p.next.snap.conf);
	if (b->snapshot == NULL && b->entries_n == 0 && !p.write_hs &&
	    b->conf == NULL)
		return 0; /* nothing changes: already durable */
	if ((err = idx_reserve(ls, b->entries_n)) != 0)
		return err;
	if ((len = ls_encode_batch(ls, &p, b)) == 0)
		return RL_LOG_ERR_NOMEM;
	err = ls_commit_rec(ls, len, &p.next, false);
	ls_wbuf_trim(ls);
	if (err == 0)
		ls_cache_put(ls, b->entries, b->entries_n);
	return err;
}

/* ---- compaction --------------------------------------------------------- */

/* Deletes the segments that no longer hold anything replay needs (see the
 * top of the file). A failure only leaves files behind: logged, and the
 * next compaction tries again. */
static void ls_remove_old_segments(struct rl_logstore *ls)
{
	size_t k = 0;

	for (size_t j = 1; j < ls->wal.n; j++)
		if (ls->wal.segs[j].cp_last <= ls->st.snap.index)
			k = j;
	if (k > 0 && wal_remove_before(&ls->wal, k) != 0 && ls->log_fn)
		ls->log_fn(ls->log_ctx, RL_LOG_ERR_IO, ls->wal.errmsg);
}

static int ls_plan_compact(struct rl_logstore *ls, rl_index index,
			   const struct rl_conf_state *conf,
			   struct ls_state *next)
{
	rl_term term;
	int err;

	*next = ls->st;
	if (index <= next->snap.index)
		return ls_err(ls, RL_LOG_ERR_COMPACTED,
			      "index %llu is already compacted (snapshot index "
			      "%llu)", (unsigned long long)index,
			      (unsigned long long)next->snap.index);
	if (index > next->hs.commit)
		return ls_err(ls, RL_LOG_ERR_UNSAFE,
			      "cannot compact up to %llu: beyond the commit "
			      "index %llu", (unsigned long long)index,
			      (unsigned long long)next->hs.commit);
	if ((err = ls_term_at(ls, next, index, &term)) != 0)
		return err;
	next->snap.index = index;
	next->snap.term = term;
	next->snap.conf = conf != NULL ? *conf : next->conf;
	ls_norm_conf(&next->snap.conf);
	return 0;
}

int rl_logstore_compact(rl_logstore *ls, rl_index index,
			const struct rl_conf_state *conf)
{
	struct ls_state next;
	uint8_t *q;
	int err;

	if ((err = ls_check_running(ls)) != 0)
		return err;
	ls->errmsg[0] = '\0';
	if (conf != NULL && !conf_valid(conf))
		return ls_err(ls, RL_LOG_ERR_INVALID,
			      "conf: at most %d voters and %d learners",
			      RL_MEMBERS_MAX, RL_MEMBERS_MAX);
	if ((err = ls_plan_compact(ls, index, conf, &next)) != 0 ||
	    (err = ls_wbuf(ls, wal_rec_bytes(LS_COMPACT_BYTES))) != 0)
		return err;
	q = ls->wbuf + WAL_REC_HEADER_BYTES;
	memset(q, 0, LS_REC_HDR_BYTES);
	q[0] = LS_REC_COMPACT;
	put_snap(q + LS_REC_HDR_BYTES, &next.snap);
	/* A compaction frees space: it may pass map_size_max_bytes. */
	err = ls_commit_rec(ls, wal_seal(ls->wbuf, LS_COMPACT_BYTES), &next,
			    true);
	if (err == 0)
		ls_remove_old_segments(ls);
	return err;
}

/* ---- reads -------------------------------------------------------------- */

rl_index rl_logstore_first_index(const rl_logstore *ls)
{
	return ls->st.snap.index + 1;
}

rl_index rl_logstore_last_index(const rl_logstore *ls)
{
	return ls->st.last;
}

void rl_logstore_hard_state(const rl_logstore *ls, struct rl_hard_state *out)
{
	*out = ls->st.hs;
}

void rl_logstore_snapshot_meta(const rl_logstore *ls,
			       struct rl_snapshot_meta *out)
{
	*out = ls->st.snap;
}

void rl_logstore_conf_state(const rl_logstore *ls, struct rl_conf_state *out)
{
	*out = ls->st.conf;
}

uint64_t rl_logstore_map_size(const rl_logstore *ls)
{
	return ls->wal.bytes;
}

/* Reads entry i (in the log) into hdr and data (its data_len bytes, from
 * the index) and verifies it against its CRC and the index. */
static int ls_read_entry(struct rl_logstore *ls, rl_index i, uint8_t *hdr,
			 uint8_t *data, struct ls_entry_hdr *h)
{
	const struct ls_slot *s = idx_at(&ls->idx, i);
	struct iovec iov[2] = { { hdr, RL_LOG_ENTRY_HEADER_BYTES },
				{ data, s->data_len } };
	uint32_t crc;
	int err;

	err = wal_read(&ls->wal, s->seq, s->off, iov, s->data_len ? 2 : 1);
	if (err != 0)
		return err == RL_LOG_ERR_CORRUPT
			       ? ls_corrupt(ls, i, "%s", ls->wal.errmsg)
			       : ls_wal_err(ls, err);
	get_entry_hdr(hdr, h);
	if (h->index != i || h->data_len != s->data_len || h->term != s->term)
		return ls_corrupt(ls, i, "the record read back is entry %llu "
				  "term %llu (%u bytes), not the one indexed",
				  (unsigned long long)h->index,
				  (unsigned long long)h->term, h->data_len);
	crc = entry_crc(hdr, data, h->data_len);
	if (crc != h->crc)
		return ls_corrupt(ls, i, "checksum mismatch (stored 0x%08x, "
				  "computed 0x%08x)", h->crc, crc);
	if (h->type != RL_ENTRY_NORMAL && h->type != RL_ENTRY_CONF_CHANGE)
		return ls_corrupt(ls, i, "unknown entry type %u", h->type);
	return 0;
}

int rl_logstore_term(rl_logstore *ls, rl_index i, rl_term *out)
{
	uint8_t hdr[RL_LOG_ENTRY_HEADER_BYTES];
	struct ls_entry_hdr h;
	size_t len;
	int err;

	if ((err = ls_check_running(ls)) != 0)
		return err;
	ls->errmsg[0] = '\0';
	if (out == NULL)
		return ls_err(ls, RL_LOG_ERR_INVALID, "out is NULL");
	/* Answers from the cached state need no read. */
	if (i <= ls->st.snap.index || i >= ls->st.last)
		return ls_term_at(ls, &ls->st, i, out);
	len = idx_at(&ls->idx, i)->data_len;
	if (len > ls->rbuf_cap) {
		uint8_t *p = realloc(ls->rbuf, len);
		if (p == NULL)
			return ls_err(ls, RL_LOG_ERR_NOMEM, "no memory to read "
				      "entry %llu", (unsigned long long)i);
		ls->rbuf = p;
		ls->rbuf_cap = len;
	}
	if ((err = ls_read_entry(ls, i, hdr, ls->rbuf, &h)) != 0)
		return err;
	*out = h.term;
	return 0;
}

static int ls_check_range(struct rl_logstore *ls, rl_index lo, rl_index hi)
{
	if (lo > hi)
		return ls_err(ls, RL_LOG_ERR_INVALID,
			      "range [%llu, %llu) is reversed",
			      (unsigned long long)lo, (unsigned long long)hi);
	if (lo < rl_logstore_first_index(ls))
		return ls_err(ls, RL_LOG_ERR_COMPACTED,
			      "index %llu is compacted (first index %llu)",
			      (unsigned long long)lo,
			      (unsigned long long)rl_logstore_first_index(ls));
	if (hi > ls->st.last + 1)
		return ls_err(ls, RL_LOG_ERR_UNAVAILABLE,
			      "range end %llu is beyond the last index %llu",
			      (unsigned long long)hi,
			      (unsigned long long)ls->st.last);
	return 0;
}

/* How many entries from lo (< hi, at most n_max) fit bytes_max (at least
 * one), and their data bytes: from the index, before any read. */
static size_t ls_range_count(struct rl_logstore *ls, rl_index lo, rl_index hi,
			     uint64_t bytes_max, size_t n_max,
			     uint64_t *data_bytes)
{
	uint64_t bytes = 0;
	size_t n = 0;

	for (rl_index i = lo; i < hi && n < n_max; i++, n++) {
		uint32_t len = idx_at(&ls->idx, i)->data_len;
		if (n > 0 && (bytes > bytes_max || len > bytes_max - bytes))
			break;
		bytes += len;
	}
	*data_bytes = bytes;
	return n;
}

static void ls_fill_entry(struct rl_entry *e, const struct ls_entry_hdr *h,
			  uint8_t *data)
{
	e->term = h->term;
	e->index = h->index;
	e->type = h->type;
	e->data_len = h->data_len;
	e->data = h->data_len > 0 ? data : NULL;
}

int rl_logstore_entries(rl_logstore *ls, rl_index lo, rl_index hi,
			uint64_t bytes_max, struct rl_entry **out,
			size_t *n_out)
{
	uint8_t hdr[RL_LOG_ENTRY_HEADER_BYTES];
	struct ls_entry_hdr h;
	uint64_t data_bytes;
	struct rl_entry *block;
	uint8_t *data;
	size_t n;
	int err;

	if (out != NULL)
		*out = NULL;
	if (n_out != NULL)
		*n_out = 0;
	if ((err = ls_check_running(ls)) != 0)
		return err;
	ls->errmsg[0] = '\0';
	if (out == NULL || n_out == NULL)
		return ls_err(ls, RL_LOG_ERR_INVALID, "out pointers are NULL");
	if ((err = ls_check_range(ls, lo, hi)) != 0 || lo == hi)
		return err;
	n = ls_range_count(ls, lo, hi, bytes_max, SIZE_MAX, &data_bytes);
	if (n > (SIZE_MAX - data_bytes) / sizeof(struct rl_entry))
		return ls_err(ls, RL_LOG_ERR_NOMEM, "read of %zu entries", n);
	block = malloc(n * sizeof(*block) + (size_t)data_bytes);
	if (block == NULL)
		return ls_err(ls, RL_LOG_ERR_NOMEM,
			      "no memory for %zu entries, %llu bytes", n,
			      (unsigned long long)data_bytes);
	data = (uint8_t *)(block + n);
	for (size_t k = 0; k < n; k++) {
		if ((err = ls_read_entry(ls, lo + k, hdr, data, &h)) != 0) {
			free(block);
			return err;
		}
		ls_fill_entry(&block[k], &h, data);
		data += h.data_len;
	}
	*out = block;
	*n_out = n;
	return 0;
}

void rl_logstore_entries_free(struct rl_entry *entries)
{
	free(entries);
}

/* ---- the raft.h storage adapter ----------------------------------------- */

static int ls_to_rl_err(int err)
{
	switch (err) {
	case RL_LOG_OK: return RL_OK;
	case RL_LOG_ERR_COMPACTED: return RL_ERR_COMPACTED;
	case RL_LOG_ERR_UNAVAILABLE: return RL_ERR_UNAVAILABLE;
	case RL_LOG_ERR_NOMEM: return RL_ERR_NOMEM;
	case RL_LOG_ERR_INVALID: return RL_ERR_INVAL;
	default: return RL_ERR_STORAGE;
	}
}

static int ls_storage_first_index(void *ctx, rl_index *out)
{
	*out = rl_logstore_first_index(ctx);
	return RL_OK;
}

static int ls_storage_last_index(void *ctx, rl_index *out)
{
	*out = rl_logstore_last_index(ctx);
	return RL_OK;
}

static int ls_storage_term(void *ctx, rl_index i, rl_term *out)
{
	return ls_to_rl_err(rl_logstore_term(ctx, i, out));
}

static int ls_storage_snapshot_meta(void *ctx, struct rl_snapshot_meta *out)
{
	rl_logstore_snapshot_meta(ctx, out);
	return RL_OK;
}

/* raft.h wants each entry's data in its own malloc()ed buffer. */
static int ls_read_each(struct rl_logstore *ls, rl_index lo, size_t n,
			struct rl_entry *out)
{
	uint8_t hdr[RL_LOG_ENTRY_HEADER_BYTES];
	struct ls_entry_hdr h;
	int err;

	for (size_t k = 0; k < n; k++) {
		if (ls_cache_get(ls, lo + k, &out[k]))
			continue;
		uint32_t len = idx_at(&ls->idx, lo + k)->data_len;
		uint8_t *data = len > 0 ? malloc(len) : NULL;
		if (len > 0 && data == NULL)
			err = ls_err(ls, RL_LOG_ERR_NOMEM,
				     "no memory for entry %llu (%u bytes)",
				     (unsigned long long)(lo + k), len);
		else
			err = ls_read_entry(ls, lo + k, hdr, data, &h);
		if (err != 0) {
			free(data);
			for (size_t j = 0; j < k; j++)
				free(out[j].data);
			return err;
		}
		ls_fill_entry(&out[k], &h, data);
	}
	return 0;
}

static int ls_storage_entries(void *ctx, rl_index lo, rl_index hi,
			      uint64_t bytes_max, struct rl_entry *out,
			      size_t out_max, size_t *out_n)
{
	struct rl_logstore *ls = ctx;
	uint64_t data_bytes;
	size_t n;
	int err;

	*out_n = 0;
	if ((err = ls_check_running(ls)) != 0)
		return ls_to_rl_err(err);
	ls->errmsg[0] = '\0';
	if ((err = ls_check_range(ls, lo, hi)) != 0 || lo == hi)
		return ls_to_rl_err(err);
	if (out == NULL || out_max == 0)
		return ls_to_rl_err(ls_err(ls, RL_LOG_ERR_INVALID,
					   "no room for entries"));
	n = ls_range_count(ls, lo, hi, bytes_max, out_max, &data_bytes);
	if ((err = ls_read_each(ls, lo, n, out)) != 0)
		return ls_to_rl_err(err);
	*out_n = n;
	return RL_OK;
}

void rl_logstore_storage(rl_logstore *ls, struct rl_storage *out)
{
	memset(out, 0, sizeof(*out));
	out->ctx = ls;
	out->first_index = ls_storage_first_index;
	out->last_index = ls_storage_last_index;
	out->term = ls_storage_term;
	out->entries = ls_storage_entries;
	out->snapshot_meta = ls_storage_snapshot_meta;
}
