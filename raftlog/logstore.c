/*
 * logstore.c - the durable Raft log of one member on LMDB (see logstore.h).
 *
 * Layout: one LMDB environment in the directory, two named databases.
 *   "entries": key = index as 8 bytes big-endian (so LMDB's byte order is
 *              index order and appends can use MDB_APPEND); value = a
 *              RL_LOG_ENTRY_HEADER_BYTES header then the data:
 *                [0,8) term  [8,16) index  [16,20) data_len  [20] type
 *                [21,24) zero  [24,28) CRC-32C of bytes [0,24) + data
 *              (integers little-endian). The index is stored although the
 *              key has it, so that a record written or moved under the wrong
 *              key is detected.
 *   "meta":    "version"  magic + format version
 *              "state"    hard state + the last index the log must reach
 *              "snapshot" snapshot meta
 *              "conf"     current membership
 *              each followed by a CRC-32C of its bytes.
 * The "last index" in "state" is what detects a log lost behind the
 * metadata's back (entries deleted or a database emptied): the entries must
 * end exactly there.
 *
 * Every write is one LMDB write transaction that also rewrites the three meta
 * records (they share a page, so this costs no extra I/O) and is committed
 * with LMDB's default durability: data pages, fsync, meta page, fsync. The
 * in-memory copy of the state (struct ls_state) is replaced only after the
 * commit succeeded, so a refused or failed write leaves the handle as it was.
 */
#include "logstore.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "raft.h"

#define LS_FORMAT_VERSION 1u
#define LS_MAGIC "rbuslog"         /* 7 chars + NUL = 8 bytes on disk */
#define LS_MAGIC_BYTES 8u
#define LS_VERSION_REC_BYTES (LS_MAGIC_BYTES + 4u)
#define LS_CONF_BYTES (4u + 8u * RL_MEMBERS_MAX + 4u + 8u * RL_MEMBERS_MAX)
#define LS_STATE_REC_BYTES (4u * 8u + 4u)
#define LS_SNAP_REC_BYTES (2u * 8u + LS_CONF_BYTES + 4u)
#define LS_CONF_REC_BYTES (LS_CONF_BYTES + 4u)
#define LS_ENTRY_CRC_OFFSET 24u
#define LS_KEY_BYTES 8u
#define LS_LOCK_FILE "LOCK"
/* Below this LMDB cannot even hold its own pages plus one batch header. */
#define LS_MAP_SIZE_MIN_BYTES (256u * 1024u)
/* A write that hits MDB_MAP_FULL is retried after doubling the map; this
 * bounds the retries of one call (2^16 x the minimum already exceeds any
 * batch). */
#define LS_WRITE_ATTEMPTS_MAX 16
/* Internal: a write step hit MDB_MAP_FULL; the driver grows and retries. */
#define LS_RETRY_MAP_FULL 1

_Static_assert(RL_LOG_ENTRY_HEADER_BYTES == LS_ENTRY_CRC_OFFSET + 4u,
	       "entry header layout");
_Static_assert(sizeof(LS_MAGIC) == LS_MAGIC_BYTES, "magic is 8 bytes");
_Static_assert(RL_ENTRY_DATA_MAX <= RL_LOG_BATCH_BYTES_MAX,
	       "one maximal entry fits in a batch");

/* The persisted state, mirrored in memory. */
struct ls_state {
	struct rl_hard_state hs;
	struct rl_snapshot_meta snap;
	struct rl_conf_state conf;
	rl_index last;     /* last index (snap.index if no entry follows) */
	rl_term last_term; /* term of last (snap.term if no entry follows) */
};

struct rl_logstore {
	MDB_env *env;
	MDB_dbi dbi_entries;
	MDB_dbi dbi_meta;
	int lock_fd;
	uint64_t map_size_bytes;
	uint64_t map_size_max_bytes;
	void (*log_fn)(void *log_ctx, int err, const char *msg);
	void *log_ctx;
	struct ls_state st;
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

static void put_key(uint8_t key[LS_KEY_BYTES], rl_index i)
{
	for (int b = 0; b < 8; b++)
		key[b] = (uint8_t)(i >> (56 - 8 * b));
}

static rl_index get_key(const uint8_t key[LS_KEY_BYTES])
{
	rl_index i = 0;
	for (int b = 0; b < 8; b++)
		i = i << 8 | key[b];
	return i;
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

static int ls_map_mdb(int rc)
{
	switch (rc) {
	case MDB_MAP_FULL:
	case ENOSPC:
	case EDQUOT:
		return RL_LOG_ERR_NOSPACE;
	case ENOMEM:
		return RL_LOG_ERR_NOMEM;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
		return RL_LOG_ERR_CORRUPT;
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return RL_LOG_ERR_VERSION;
	case MDB_TXN_FULL:
	case MDB_BAD_VALSIZE:
		return RL_LOG_ERR_TOO_LARGE;
	case EAGAIN:
		return RL_LOG_ERR_BUSY;
	default:
		return RL_LOG_ERR_IO;
	}
}

/* LMDB codes stop here: mapped, with LMDB's text kept in the message. */
static int ls_mdb_err(struct rl_logstore *ls, int rc, const char *what)
{
	return ls_err(ls, ls_map_mdb(rc), "%s: %s", what, mdb_strerror(rc));
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

/* ---- metadata records --------------------------------------------------- */

static int ls_put(struct rl_logstore *ls, MDB_txn *txn, MDB_dbi dbi,
		  MDB_val *key, MDB_val *val, unsigned flags, const char *what)
{
	int rc = mdb_put(txn, dbi, key, val, flags);

	if (rc == MDB_MAP_FULL)
		return LS_RETRY_MAP_FULL;
	if (rc != 0)
		return ls_mdb_err(ls, rc, what);
	return 0;
}

static int ls_put_meta(struct rl_logstore *ls, MDB_txn *txn, const char *name,
		       uint8_t *rec, size_t len)
{
	MDB_val key = { strlen(name), (void *)name };
	MDB_val val = { len, rec };

	/* The record's last 4 bytes hold the CRC of the rest. */
	put_le32(rec + len - 4, rl_crc32c(0, rec, len - 4));
	return ls_put(ls, txn, ls->dbi_meta, &key, &val, 0, "write metadata");
}

/* Rewrites every meta record from st (they share one page: no extra I/O). */
static int ls_put_state(struct rl_logstore *ls, MDB_txn *txn,
			const struct ls_state *st)
{
	uint8_t state[LS_STATE_REC_BYTES];
	uint8_t snap[LS_SNAP_REC_BYTES];
	uint8_t conf[LS_CONF_REC_BYTES];
	int err;

	put_le64(state, st->hs.term);
	put_le64(state + 8, st->hs.vote);
	put_le64(state + 16, st->hs.commit);
	put_le64(state + 24, st->last);
	put_le64(snap, st->snap.index);
	put_le64(snap + 8, st->snap.term);
	put_conf(snap + 16, &st->snap.conf);
	put_conf(conf, &st->conf);
	err = ls_put_meta(ls, txn, "state", state, sizeof(state));
	if (err == 0)
		err = ls_put_meta(ls, txn, "snapshot", snap, sizeof(snap));
	if (err == 0)
		err = ls_put_meta(ls, txn, "conf", conf, sizeof(conf));
	return err;
}

/* Fetches meta record name into a verified view of exactly len bytes. */
static int ls_get_meta(struct rl_logstore *ls, MDB_txn *txn, const char *name,
		       size_t len, const uint8_t **out)
{
	MDB_val key = { strlen(name), (void *)name };
	MDB_val val;
	int rc = mdb_get(txn, ls->dbi_meta, &key, &val);

	if (rc == MDB_NOTFOUND)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "metadata record '%s' is missing", name);
	if (rc != 0)
		return ls_mdb_err(ls, rc, "read metadata");
	if (val.mv_size != len)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "metadata record '%s' has %zu bytes, expected %zu",
			      name, val.mv_size, len);
	*out = val.mv_data;
	if (get_le32(*out + len - 4) != rl_crc32c(0, *out, len - 4))
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "metadata record '%s': checksum mismatch", name);
	return 0;
}

/* Loads the meta records into *st (last_term is set by the log check). */
static int ls_load_state(struct rl_logstore *ls, MDB_txn *txn,
			 struct ls_state *st)
{
	const uint8_t *state, *snap, *conf;
	int err;

	if ((err = ls_get_meta(ls, txn, "state", LS_STATE_REC_BYTES, &state)) ||
	    (err = ls_get_meta(ls, txn, "snapshot", LS_SNAP_REC_BYTES, &snap)) ||
	    (err = ls_get_meta(ls, txn, "conf", LS_CONF_REC_BYTES, &conf)))
		return err;
	st->hs.term = get_le64(state);
	st->hs.vote = get_le64(state + 8);
	st->hs.commit = get_le64(state + 16);
	st->last = get_le64(state + 24);
	st->snap.index = get_le64(snap);
	st->snap.term = get_le64(snap + 8);
	if (!get_conf(snap + 16, &st->snap.conf) || !get_conf(conf, &st->conf))
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "metadata: membership over %d members",
			      RL_MEMBERS_MAX);
	st->last_term = st->snap.term;
	return 0;
}

/* ---- entries ------------------------------------------------------------ */

/*
 * Checks the record stored under key index i: size, stored index = key,
 * known type, and (if with_crc) the checksum. On success *h is its header.
 */
static int ls_check_entry(struct rl_logstore *ls, rl_index i,
			  const MDB_val *val, bool with_crc,
			  struct ls_entry_hdr *h)
{
	const uint8_t *p = val->mv_data;
	uint32_t crc;

	if (val->mv_size < RL_LOG_ENTRY_HEADER_BYTES)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "log corrupt at index %llu: record of %zu bytes "
			      "is shorter than its header",
			      (unsigned long long)i, val->mv_size);
	get_entry_hdr(p, h);
	if (h->index != i)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "log corrupt at index %llu: stored index %llu "
			      "does not match its key",
			      (unsigned long long)i,
			      (unsigned long long)h->index);
	if (val->mv_size - RL_LOG_ENTRY_HEADER_BYTES != h->data_len)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "log corrupt at index %llu: data length %u does "
			      "not match the record size %zu",
			      (unsigned long long)i, h->data_len, val->mv_size);
	if (with_crc) {
		crc = entry_crc(p, p + RL_LOG_ENTRY_HEADER_BYTES, h->data_len);
		if (crc != h->crc)
			return ls_err(ls, RL_LOG_ERR_CORRUPT,
				      "log corrupt at index %llu: checksum "
				      "mismatch (stored 0x%08x, computed 0x%08x)",
				      (unsigned long long)i, h->crc, crc);
	}
	if (h->type != RL_ENTRY_NORMAL && h->type != RL_ENTRY_CONF_CHANGE)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "log corrupt at index %llu: unknown entry type %u",
			      (unsigned long long)i, h->type);
	return 0;
}

/* Reads and fully verifies entry i, which st says is in the log. *val
 * points into LMDB memory, valid until txn ends. */
static int ls_get_entry(struct rl_logstore *ls, MDB_txn *txn, rl_index i,
			MDB_val *val, struct ls_entry_hdr *h)
{
	uint8_t kb[LS_KEY_BYTES];
	MDB_val key = { sizeof(kb), kb };
	int rc;

	put_key(kb, i);
	rc = mdb_get(txn, ls->dbi_entries, &key, val);
	if (rc == MDB_NOTFOUND)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "log corrupt at index %llu: entry missing "
			      "(log holds %llu..%llu)",
			      (unsigned long long)i,
			      (unsigned long long)ls->st.snap.index + 1,
			      (unsigned long long)ls->st.last);
	if (rc != 0)
		return ls_mdb_err(ls, rc, "read entry");
	return ls_check_entry(ls, i, val, true, h);
}

/* Term of index i according to st (which may be a not yet committed next
 * state inside a write transaction). */
static int ls_term_at(struct rl_logstore *ls, MDB_txn *txn,
		      const struct ls_state *st, rl_index i, rl_term *out)
{
	struct ls_entry_hdr h;
	MDB_val val;
	int err;

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
	if ((err = ls_get_entry(ls, txn, i, &val, &h)) != 0)
		return err;
	*out = h.term;
	return 0;
}

/* Stores e under its index; the caller guarantees it sorts after every
 * stored key, which MDB_APPEND checks and exploits. */
static int ls_put_entry(struct rl_logstore *ls, MDB_txn *txn,
			const struct rl_entry *e)
{
	uint8_t kb[LS_KEY_BYTES];
	MDB_val key = { sizeof(kb), kb };
	MDB_val val = { RL_LOG_ENTRY_HEADER_BYTES + (size_t)e->data_len, NULL };
	uint8_t *p;
	int err;

	put_key(kb, e->index);
	err = ls_put(ls, txn, ls->dbi_entries, &key, &val,
		     MDB_APPEND | MDB_RESERVE, "append entry");
	if (err != 0)
		return err;
	p = val.mv_data;
	put_entry_hdr(p, e);
	if (e->data_len > 0)
		memcpy(p + RL_LOG_ENTRY_HEADER_BYTES, e->data, e->data_len);
	put_le32(p + LS_ENTRY_CRC_OFFSET,
		 entry_crc(p, e->data, e->data_len));
	return 0;
}

/* Deletes every entry with index >= from (suffix) or <= to (prefix),
 * one end at a time: each step is a cursor jump to the end, so no cursor
 * position survives a delete. */
static int ls_delete_end(struct rl_logstore *ls, MDB_txn *txn, bool suffix,
			 rl_index bound)
{
	MDB_cursor *cur;
	MDB_val key, val;
	int rc = mdb_cursor_open(txn, ls->dbi_entries, &cur);

	if (rc != 0)
		return ls_mdb_err(ls, rc, "open cursor");
	for (;;) {
		rc = mdb_cursor_get(cur, &key, &val,
				    suffix ? MDB_LAST : MDB_FIRST);
		if (rc != 0)
			break;
		if (key.mv_size != LS_KEY_BYTES) {
			mdb_cursor_close(cur);
			return ls_err(ls, RL_LOG_ERR_CORRUPT,
				      "log corrupt: key of %zu bytes",
				      key.mv_size);
		}
		rl_index i = get_key(key.mv_data);
		if (suffix ? i < bound : i > bound)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND || rc == 0)
		return 0;
	if (rc == MDB_MAP_FULL)
		return LS_RETRY_MAP_FULL;
	return ls_mdb_err(ls, rc, "delete entries");
}

/* ---- the write driver --------------------------------------------------- */

/* One write step: validates against and updates *next (a copy of ls->st)
 * and writes through txn. Returns 0, an rl_log_err, or LS_RETRY_MAP_FULL. */
typedef int (*ls_write_fn)(struct rl_logstore *ls, MDB_txn *txn,
			   struct ls_state *next, const void *arg);

static int ls_update_map_size(struct rl_logstore *ls)
{
	MDB_envinfo info;
	int rc = mdb_env_info(ls->env, &info);

	if (rc != 0)
		return ls_mdb_err(ls, rc, "read LMDB environment info");
	ls->map_size_bytes = info.me_mapsize;
	return 0;
}

/* Doubles the map (no transaction of ours is open here, as LMDB requires). */
static int ls_grow_map(struct rl_logstore *ls)
{
	uint64_t size = ls->map_size_bytes * 2;
	int rc;

	if (ls->map_size_bytes >= ls->map_size_max_bytes)
		return ls_err(ls, RL_LOG_ERR_NOSPACE,
			      "log map full at %llu bytes (map_size_max_bytes)",
			      (unsigned long long)ls->map_size_bytes);
	if (size > ls->map_size_max_bytes)
		size = ls->map_size_max_bytes;
	rc = mdb_env_set_mapsize(ls->env, (size_t)size);
	if (rc != 0)
		return ls_mdb_err(ls, rc, "grow the LMDB map");
	return ls_update_map_size(ls);
}

/*
 * Runs fn in one write transaction and commits it (LMDB fsyncs on commit).
 * On MDB_MAP_FULL the transaction is dropped, the map grown and fn re-run
 * from the unchanged state. ls->st becomes the new state only once the
 * commit succeeded. A failed commit stops the handle: whether the data
 * reached the disk is then unknown, and retrying on a descriptor whose
 * fsync failed can report success for data that was lost.
 */
static int ls_write(struct rl_logstore *ls, ls_write_fn fn, const void *arg)
{
	for (int attempt = 0; attempt < LS_WRITE_ATTEMPTS_MAX; attempt++) {
		struct ls_state next = ls->st;
		MDB_txn *txn;
		int err, rc = mdb_txn_begin(ls->env, NULL, 0, &txn);

		if (rc == MDB_MAP_RESIZED) {
			/* Another process grew the map: adopt its size. */
			rc = mdb_env_set_mapsize(ls->env, 0);
			if (rc != 0)
				return ls_mdb_err(ls, rc, "adopt map size");
			if ((err = ls_update_map_size(ls)) != 0)
				return err;
			continue;
		}
		if (rc != 0)
			return ls_mdb_err(ls, rc, "begin write transaction");
		err = fn(ls, txn, &next, arg);
		if (err != 0) {
			mdb_txn_abort(txn);
			if (err != LS_RETRY_MAP_FULL)
				return err;
		} else {
			rc = mdb_txn_commit(txn);
			if (rc == 0) {
				ls->st = next;
				return 0;
			}
			if (rc != MDB_MAP_FULL) {
				err = ls_mdb_err(ls, rc, "commit");
				ls->stopped = err;
				return err;
			}
		}
		if ((err = ls_grow_map(ls)) != 0)
			return err;
	}
	return ls_err(ls, RL_LOG_ERR_NOSPACE,
		      "log map still full after %d growths",
		      LS_WRITE_ATTEMPTS_MAX);
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
	/* LMDB lets several processes share an environment; two Raft members
	 * on one log must never, so one handle holds this lock. */
	if (flock(ls->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			return ls_err(ls, RL_LOG_ERR_BUSY,
				      "log directory %s is already open", dir);
		return ls_err(ls, RL_LOG_ERR_IO, "lock %s: %s", path,
			      strerror(errno));
	}
	return 0;
}

static int ls_env_open(struct rl_logstore *ls, const char *dir)
{
	int dead, rc = mdb_env_create(&ls->env);

	if (rc != 0) {
		ls->env = NULL;
		return ls_mdb_err(ls, rc, "create LMDB environment");
	}
	if ((rc = mdb_env_set_maxdbs(ls->env, 2)) != 0 ||
	    (rc = mdb_env_set_mapsize(ls->env, (size_t)ls->map_size_bytes)))
		return ls_mdb_err(ls, rc, "configure LMDB environment");
	/* Default flags on purpose: never MDB_NOSYNC / MDB_NOMETASYNC, so a
	 * commit is durable when it returns. MDB_NOTLS lets the handle move
	 * between threads. */
	rc = mdb_env_open(ls->env, dir, MDB_NOTLS, 0600);
	if (rc != 0)
		return ls_mdb_err(ls, rc, "open LMDB environment");
	/* Free reader slots of processes that died (a killed member). */
	rc = mdb_reader_check(ls->env, &dead);
	if (rc != 0)
		return ls_mdb_err(ls, rc, "check LMDB readers");
	return ls_update_map_size(ls);
}

static int ls_check_version(struct rl_logstore *ls, const MDB_val *val)
{
	const uint8_t *p = val->mv_data;

	if (val->mv_size != LS_VERSION_REC_BYTES ||
	    memcmp(p, LS_MAGIC, LS_MAGIC_BYTES) != 0)
		return ls_err(ls, RL_LOG_ERR_VERSION,
			      "not a raftbus log (bad version record)");
	if (get_le32(p + LS_MAGIC_BYTES) != LS_FORMAT_VERSION)
		return ls_err(ls, RL_LOG_ERR_VERSION,
			      "log format version %u, this build reads %u",
			      get_le32(p + LS_MAGIC_BYTES), LS_FORMAT_VERSION);
	return 0;
}

/* A new log: both databases must be empty, else metadata was lost and
 * starting empty would forget acknowledged entries. */
static int ls_init_fresh(struct rl_logstore *ls, MDB_txn *txn,
			 struct ls_state *next)
{
	uint8_t ver[LS_VERSION_REC_BYTES];
	MDB_val key = { strlen("version"), "version" };
	MDB_val val = { sizeof(ver), ver };
	MDB_stat se, sm;
	int rc, err;

	if ((rc = mdb_stat(txn, ls->dbi_entries, &se)) != 0 ||
	    (rc = mdb_stat(txn, ls->dbi_meta, &sm)) != 0)
		return ls_mdb_err(ls, rc, "stat databases");
	if (se.ms_entries != 0 || sm.ms_entries != 0)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "log metadata missing but the log holds %zu "
			      "entries and %zu records",
			      se.ms_entries, sm.ms_entries);
	memcpy(ver, LS_MAGIC, LS_MAGIC_BYTES);
	put_le32(ver + LS_MAGIC_BYTES, LS_FORMAT_VERSION);
	if ((err = ls_put(ls, txn, ls->dbi_meta, &key, &val, 0,
			  "write version")) != 0)
		return err;
	memset(next, 0, sizeof(*next));
	return ls_put_state(ls, txn, next);
}

/* Write step of open: opens the databases, then loads or creates the meta
 * records (a transaction that changed nothing commits without I/O). */
static int ls_open_fn(struct rl_logstore *ls, MDB_txn *txn,
		      struct ls_state *next, const void *arg)
{
	MDB_val key = { strlen("version"), "version" };
	MDB_val val;
	int rc, err;

	(void)arg;
	if ((rc = mdb_dbi_open(txn, "entries", MDB_CREATE,
			       &ls->dbi_entries)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ls->dbi_meta)) != 0)
		return rc == MDB_MAP_FULL ? LS_RETRY_MAP_FULL
					  : ls_mdb_err(ls, rc, "open databases");
	rc = mdb_get(txn, ls->dbi_meta, &key, &val);
	if (rc == MDB_NOTFOUND)
		return ls_init_fresh(ls, txn, next);
	if (rc != 0)
		return ls_mdb_err(ls, rc, "read version");
	if ((err = ls_check_version(ls, &val)) != 0)
		return err;
	return ls_load_state(ls, txn, next);
}

/* Walks the whole index sequence once: keys, stored indexes, terms; the
 * checksum only from the commit index on (older entries were verified when
 * written and are verified again whenever read). */
static int ls_walk_entries(struct rl_logstore *ls, MDB_cursor *cur,
			   rl_index *last_out, rl_term *term_out)
{
	const struct ls_state *st = &ls->st;
	rl_index prev = st->snap.index;
	rl_term prev_term = st->snap.term;
	struct ls_entry_hdr h;
	MDB_val key, val;
	int err, rc;

	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != LS_KEY_BYTES)
			return ls_err(ls, RL_LOG_ERR_CORRUPT,
				      "log corrupt after index %llu: key of "
				      "%zu bytes", (unsigned long long)prev,
				      key.mv_size);
		rl_index i = get_key(key.mv_data);
		if (i <= st->snap.index)
			return ls_err(ls, RL_LOG_ERR_CORRUPT,
				      "log corrupt at index %llu: entry at or "
				      "below the snapshot index %llu",
				      (unsigned long long)i,
				      (unsigned long long)st->snap.index);
		if (i != prev + 1)
			return ls_err(ls, RL_LOG_ERR_CORRUPT,
				      "log corrupt at index %llu: gap, expected "
				      "index %llu", (unsigned long long)i,
				      (unsigned long long)prev + 1);
		err = ls_check_entry(ls, i, &val, i >= st->hs.commit, &h);
		if (err != 0)
			return err;
		if (h.term < prev_term)
			return ls_err(ls, RL_LOG_ERR_CORRUPT,
				      "log corrupt at index %llu: term %llu is "
				      "lower than the term %llu before it",
				      (unsigned long long)i,
				      (unsigned long long)h.term,
				      (unsigned long long)prev_term);
		prev = i;
		prev_term = h.term;
	}
	if (rc != MDB_NOTFOUND)
		return ls_mdb_err(ls, rc, "scan the log");
	*last_out = prev;
	*term_out = prev_term;
	return 0;
}

/* The log found on disk must be the one the metadata describes. */
static int ls_check_bounds(struct rl_logstore *ls, rl_index last,
			   rl_term last_term)
{
	const struct ls_state *st = &ls->st;

	if (st->hs.commit > last)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "log inconsistent: hard state commit index %llu "
			      "is beyond the last log index %llu",
			      (unsigned long long)st->hs.commit,
			      (unsigned long long)last);
	if (st->hs.commit < st->snap.index)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "log inconsistent: hard state commit index %llu "
			      "is below the snapshot index %llu",
			      (unsigned long long)st->hs.commit,
			      (unsigned long long)st->snap.index);
	if (last < st->last)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "log corrupt at index %llu: entries %llu..%llu "
			      "are missing (metadata records last index %llu)",
			      (unsigned long long)last + 1,
			      (unsigned long long)last + 1,
			      (unsigned long long)st->last,
			      (unsigned long long)st->last);
	if (last > st->last)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "log corrupt at index %llu: entry past the "
			      "recorded last index %llu",
			      (unsigned long long)st->last + 1,
			      (unsigned long long)st->last);
	if (last_term > st->hs.term)
		return ls_err(ls, RL_LOG_ERR_CORRUPT,
			      "log inconsistent at index %llu: term %llu is "
			      "above the hard state term %llu",
			      (unsigned long long)last,
			      (unsigned long long)last_term,
			      (unsigned long long)st->hs.term);
	return 0;
}

static int ls_verify_log(struct rl_logstore *ls)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	rl_index last = 0;
	rl_term last_term = 0;
	int err, rc = mdb_txn_begin(ls->env, NULL, MDB_RDONLY, &txn);

	if (rc != 0)
		return ls_mdb_err(ls, rc, "begin read transaction");
	rc = mdb_cursor_open(txn, ls->dbi_entries, &cur);
	if (rc != 0) {
		err = ls_mdb_err(ls, rc, "open cursor");
		goto out_abort_txn;
	}
	err = ls_walk_entries(ls, cur, &last, &last_term);
	mdb_cursor_close(cur);
	if (err == 0)
		err = ls_check_bounds(ls, last, last_term);
	if (err == 0)
		ls->st.last_term = last_term;
out_abort_txn:
	mdb_txn_abort(txn);
	return err;
}

static int ls_set_options(struct rl_logstore *ls,
			  const struct rl_logstore_options *opts)
{
	ls->map_size_bytes = RL_LOG_MAP_SIZE_DEFAULT_BYTES;
	ls->map_size_max_bytes = RL_LOG_MAP_SIZE_MAX_DEFAULT_BYTES;
	if (opts == NULL)
		return 0;
	if (opts->map_size_bytes != 0)
		ls->map_size_bytes = opts->map_size_bytes;
	if (opts->map_size_max_bytes != 0)
		ls->map_size_max_bytes = opts->map_size_max_bytes;
	ls->log_fn = opts->log_fn;
	ls->log_ctx = opts->log_ctx;
	if (ls->map_size_bytes < LS_MAP_SIZE_MIN_BYTES ||
	    ls->map_size_bytes > ls->map_size_max_bytes ||
	    ls->map_size_max_bytes > SIZE_MAX)
		return ls_err(ls, RL_LOG_ERR_INVALID,
			      "map size must be in [%u, map_size_max_bytes]",
			      LS_MAP_SIZE_MIN_BYTES);
	return 0;
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
	if ((err = ls_set_options(ls, opts)) != 0 ||
	    (err = ls_lock_dir(ls, dir)) != 0 ||
	    (err = ls_env_open(ls, dir)) != 0 ||
	    (err = ls_write(ls, ls_open_fn, NULL)) != 0 ||
	    (err = ls_verify_log(ls)) != 0)
		goto out_close;
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
	if (ls->env != NULL)
		mdb_env_close(ls->env);
	/* Closing the descriptor releases the directory lock. */
	if (ls->lock_fd >= 0)
		close(ls->lock_fd);
	free(ls);
}

/* ---- save --------------------------------------------------------------- */

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

/* Snapshot install (thesis §5): keep the suffix only if the log holds the
 * snapshot's last entry; otherwise the log is replaced by the snapshot. */
static int ls_apply_snapshot(struct rl_logstore *ls, MDB_txn *txn,
			     struct ls_state *next,
			     const struct rl_snapshot_meta *snap)
{
	bool keep_suffix = false;
	rl_term t;
	int err;

	if (snap->index <= next->snap.index)
		return ls_err(ls, RL_LOG_ERR_SNAPSHOT_STALE,
			      "snapshot at index %llu is not newer than the "
			      "current snapshot at %llu",
			      (unsigned long long)snap->index,
			      (unsigned long long)next->snap.index);
	if (snap->index <= next->last) {
		if ((err = ls_term_at(ls, txn, next, snap->index, &t)) != 0)
			return err;
		keep_suffix = t == snap->term;
		if (!keep_suffix && snap->index <= next->hs.commit)
			return ls_err(ls, RL_LOG_ERR_UNSAFE,
				      "snapshot (index %llu, term %llu) "
				      "contradicts committed entry of term %llu",
				      (unsigned long long)snap->index,
				      (unsigned long long)snap->term,
				      (unsigned long long)t);
	}
	err = keep_suffix ? ls_delete_end(ls, txn, false, snap->index)
			  : ls_delete_end(ls, txn, true, 0);
	if (err != 0)
		return err;
	next->snap = *snap;
	next->conf = snap->conf;
	if (!keep_suffix) {
		next->last = snap->index;
		next->last_term = snap->term;
	}
	return 0;
}

/* Append with truncation of a conflicting suffix (paper §5.3: the caller
 * found the conflict; here the truncate and the append are one write). */
static int ls_apply_entries(struct rl_logstore *ls, MDB_txn *txn,
			    struct ls_state *next, const struct rl_entry *e,
			    size_t n)
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
	if ((err = ls_term_at(ls, txn, next, first - 1, &prev_term)) != 0)
		return err;
	if (e[0].term < prev_term)
		return ls_err(ls, RL_LOG_ERR_GAP,
			      "term goes down at index %llu: %llu after %llu",
			      first, (unsigned long long)e[0].term,
			      (unsigned long long)prev_term);
	if (first <= next->last &&
	    (err = ls_delete_end(ls, txn, true, first)) != 0)
		return err;
	for (size_t k = 0; k < n; k++)
		if ((err = ls_put_entry(ls, txn, &e[k])) != 0)
			return err;
	next->last = e[n - 1].index;
	next->last_term = e[n - 1].term;
	return 0;
}

/* The hard state may only move forward (paper Figure 2: currentTerm only
 * grows, votedFor is set once per term, commitIndex never goes back). */
static int ls_apply_hard_state(struct rl_logstore *ls, struct ls_state *next,
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
static int ls_check_next(struct rl_logstore *ls, struct ls_state *next)
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

static int ls_save_fn(struct rl_logstore *ls, MDB_txn *txn,
		      struct ls_state *next, const void *arg)
{
	const struct rl_logstore_batch *b = arg;
	int err;

	if (b->snapshot != NULL &&
	    (err = ls_apply_snapshot(ls, txn, next, b->snapshot)) != 0)
		return err;
	if (b->entries_n > 0 &&
	    (err = ls_apply_entries(ls, txn, next, b->entries,
				    b->entries_n)) != 0)
		return err;
	if (b->hard_state != NULL &&
	    (err = ls_apply_hard_state(ls, next, b->hard_state)) != 0)
		return err;
	if (b->conf != NULL)
		next->conf = *b->conf;
	if ((err = ls_check_next(ls, next)) != 0)
		return err;
	return ls_put_state(ls, txn, next);
}

int rl_logstore_save(rl_logstore *ls, const struct rl_logstore_batch *b)
{
	int err;

	if ((err = ls_check_running(ls)) != 0)
		return err;
	ls->errmsg[0] = '\0';
	if ((err = ls_check_batch_arg(ls, b)) != 0)
		return err;
	return ls_write(ls, ls_save_fn, b);
}

/* ---- compaction --------------------------------------------------------- */

struct ls_compact_arg {
	rl_index index;
	const struct rl_conf_state *conf;
};

static int ls_compact_fn(struct rl_logstore *ls, MDB_txn *txn,
			 struct ls_state *next, const void *arg)
{
	const struct ls_compact_arg *a = arg;
	rl_term term;
	int err;

	if (a->index <= next->snap.index)
		return ls_err(ls, RL_LOG_ERR_COMPACTED,
			      "index %llu is already compacted (snapshot index "
			      "%llu)", (unsigned long long)a->index,
			      (unsigned long long)next->snap.index);
	if (a->index > next->hs.commit)
		return ls_err(ls, RL_LOG_ERR_UNSAFE,
			      "cannot compact up to %llu: beyond the commit "
			      "index %llu", (unsigned long long)a->index,
			      (unsigned long long)next->hs.commit);
	if ((err = ls_term_at(ls, txn, next, a->index, &term)) != 0 ||
	    (err = ls_delete_end(ls, txn, false, a->index)) != 0)
		return err;
	next->snap.index = a->index;
	next->snap.term = term;
	next->snap.conf = a->conf != NULL ? *a->conf : next->conf;
	return ls_put_state(ls, txn, next);
}

int rl_logstore_compact(rl_logstore *ls, rl_index index,
			const struct rl_conf_state *conf)
{
	struct ls_compact_arg a = { index, conf };
	int err;

	if ((err = ls_check_running(ls)) != 0)
		return err;
	ls->errmsg[0] = '\0';
	if (conf != NULL && !conf_valid(conf))
		return ls_err(ls, RL_LOG_ERR_INVALID,
			      "conf: at most %d voters and %d learners",
			      RL_MEMBERS_MAX, RL_MEMBERS_MAX);
	return ls_write(ls, ls_compact_fn, &a);
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
	return ls->map_size_bytes;
}

static int ls_begin_read(struct rl_logstore *ls, MDB_txn **txn)
{
	int rc = mdb_txn_begin(ls->env, NULL, MDB_RDONLY, txn);

	if (rc != 0)
		return ls_mdb_err(ls, rc, "begin read transaction");
	return 0;
}

int rl_logstore_term(rl_logstore *ls, rl_index i, rl_term *out)
{
	MDB_txn *txn;
	int err;

	if ((err = ls_check_running(ls)) != 0)
		return err;
	ls->errmsg[0] = '\0';
	if (out == NULL)
		return ls_err(ls, RL_LOG_ERR_INVALID, "out is NULL");
	/* Answers from the cached state need no transaction. */
	if (i <= ls->st.snap.index || i >= ls->st.last)
		return ls_term_at(ls, NULL, &ls->st, i, out);
	if ((err = ls_begin_read(ls, &txn)) != 0)
		return err;
	err = ls_term_at(ls, txn, &ls->st, i, out);
	mdb_txn_abort(txn);
	return err;
}

/* Called for each entry read, in index order; data points into LMDB memory
 * valid only during the call. Returns 0 or an rl_log_err. */
typedef int (*ls_visit_fn)(void *arg, size_t k, const struct ls_entry_hdr *h,
			   const uint8_t *data);

/*
 * Visits verified entries lo, lo+1, ... < hi, at most n_max, stopping before
 * the entry that would take the data bytes over bytes_max (never before the
 * first). The range must already be known to lie in [first, last].
 */
static int ls_read_range(struct rl_logstore *ls, MDB_txn *txn, rl_index lo,
			 rl_index hi, uint64_t bytes_max, size_t n_max,
			 ls_visit_fn visit, void *arg, size_t *n_out)
{
	uint8_t kb[LS_KEY_BYTES];
	MDB_val key = { sizeof(kb), kb }, val;
	struct ls_entry_hdr h;
	MDB_cursor *cur;
	uint64_t bytes = 0;
	size_t n = 0;
	int err = 0, rc = mdb_cursor_open(txn, ls->dbi_entries, &cur);

	if (rc != 0)
		return ls_mdb_err(ls, rc, "open cursor");
	put_key(kb, lo);
	for (rl_index i = lo; i < hi && n < n_max; i++) {
		rc = mdb_cursor_get(cur, &key, &val,
				    i == lo ? MDB_SET_KEY : MDB_NEXT);
		if (rc == 0 && (key.mv_size != LS_KEY_BYTES ||
				get_key(key.mv_data) != i))
			rc = MDB_NOTFOUND;
		if (rc == MDB_NOTFOUND) {
			err = ls_err(ls, RL_LOG_ERR_CORRUPT,
				     "log corrupt at index %llu: entry missing",
				     (unsigned long long)i);
			break;
		}
		if (rc != 0) {
			err = ls_mdb_err(ls, rc, "read entries");
			break;
		}
		if ((err = ls_check_entry(ls, i, &val, true, &h)) != 0)
			break;
		if (n > 0 && (bytes > bytes_max ||
			      h.data_len > bytes_max - bytes))
			break;
		bytes += h.data_len;
		err = visit(arg, n, &h,
			    (const uint8_t *)val.mv_data +
				    RL_LOG_ENTRY_HEADER_BYTES);
		if (err != 0)
			break;
		n++;
	}
	mdb_cursor_close(cur);
	*n_out = n;
	return err;
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

/* First pass of rl_logstore_entries(): sizes only. */
static int ls_visit_size(void *arg, size_t k, const struct ls_entry_hdr *h,
			 const uint8_t *data)
{
	uint64_t *data_bytes = arg;

	(void)k;
	(void)data;
	*data_bytes += h->data_len;
	return 0;
}

struct ls_copy_block {
	struct rl_entry *entries;
	uint8_t *data; /* next free byte after the entry array */
};

static int ls_visit_copy_block(void *arg, size_t k,
			       const struct ls_entry_hdr *h,
			       const uint8_t *data)
{
	struct ls_copy_block *c = arg;
	struct rl_entry *e = &c->entries[k];

	e->term = h->term;
	e->index = h->index;
	e->type = h->type;
	e->data_len = h->data_len;
	e->data = NULL;
	if (h->data_len > 0) {
		e->data = c->data;
		memcpy(c->data, data, h->data_len);
		c->data += h->data_len;
	}
	return 0;
}

/* Both passes run in one read transaction, so they see the same entries. */
static int ls_entries_in(struct rl_logstore *ls, MDB_txn *txn, rl_index lo,
			 rl_index hi, uint64_t bytes_max,
			 struct rl_entry **out, size_t *n_out)
{
	struct ls_copy_block c;
	uint64_t data_bytes = 0;
	size_t n, n2;
	int err;

	err = ls_read_range(ls, txn, lo, hi, bytes_max, SIZE_MAX,
			    ls_visit_size, &data_bytes, &n);
	if (err != 0)
		return err;
	if (n > (SIZE_MAX - data_bytes) / sizeof(struct rl_entry))
		return ls_err(ls, RL_LOG_ERR_NOMEM, "read of %zu entries", n);
	c.entries = malloc(n * sizeof(struct rl_entry) + (size_t)data_bytes);
	if (c.entries == NULL)
		return ls_err(ls, RL_LOG_ERR_NOMEM,
			      "no memory for %zu entries, %llu bytes", n,
			      (unsigned long long)data_bytes);
	c.data = (uint8_t *)(c.entries + n);
	err = ls_read_range(ls, txn, lo, hi, bytes_max, n, ls_visit_copy_block,
			    &c, &n2);
	if (err != 0) {
		free(c.entries);
		return err;
	}
	assert(n2 == n);
	*out = c.entries;
	*n_out = n;
	return 0;
}

int rl_logstore_entries(rl_logstore *ls, rl_index lo, rl_index hi,
			uint64_t bytes_max, struct rl_entry **out,
			size_t *n_out)
{
	MDB_txn *txn;
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
	if ((err = ls_begin_read(ls, &txn)) != 0)
		return err;
	err = ls_entries_in(ls, txn, lo, hi, bytes_max, out, n_out);
	mdb_txn_abort(txn);
	return err;
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

struct ls_copy_each {
	struct rl_logstore *ls;
	struct rl_entry *out;
};

/* raft.h wants each entry's data in its own malloc()ed buffer. */
static int ls_visit_copy_each(void *arg, size_t k,
			      const struct ls_entry_hdr *h,
			      const uint8_t *data)
{
	struct ls_copy_each *c = arg;
	struct rl_entry *e = &c->out[k];

	e->term = h->term;
	e->index = h->index;
	e->type = h->type;
	e->data_len = h->data_len;
	e->data = NULL;
	if (h->data_len == 0)
		return 0;
	e->data = malloc(h->data_len);
	if (e->data == NULL)
		return ls_err(c->ls, RL_LOG_ERR_NOMEM,
			      "no memory for entry %llu (%u bytes)",
			      (unsigned long long)h->index, h->data_len);
	memcpy(e->data, data, h->data_len);
	return 0;
}

static int ls_storage_entries(void *ctx, rl_index lo, rl_index hi,
			      uint64_t bytes_max, struct rl_entry *out,
			      size_t out_max, size_t *out_n)
{
	struct rl_logstore *ls = ctx;
	struct ls_copy_each c = { ls, out };
	MDB_txn *txn;
	size_t n = 0;
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
	if ((err = ls_begin_read(ls, &txn)) != 0)
		return ls_to_rl_err(err);
	err = ls_read_range(ls, txn, lo, hi, bytes_max, out_max,
			    ls_visit_copy_each, &c, &n);
	mdb_txn_abort(txn);
	if (err != 0) {
		/* Entry n may hold a failed allocation: data NULL. */
		for (size_t k = 0; k < n; k++)
			free(out[k].data);
		return ls_to_rl_err(err);
	}
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
