/*
 * store.c - the store's life cycle on one LMDB environment: open (named
 * databases, the history comparator), close, status, map growth support,
 * snapshots (a compacted copy of the environment) and restore from one.
 * LMDB codes are mapped to enum st_err here and in st_map_lmdb() only.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_internal.h"

#define ST_DBS_MAX 8u
#define ST_READERS_MAX 1024u
#define ST_COPY_CHUNK_BYTES (1u << 20)

void st_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t st_get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

void st_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint32_t st_get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
		((uint32_t)p[2] << 8) | p[3];
}

int st_bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c < 0 ? -1 : 1;
	return al < bl ? -1 : (al > bl ? 1 : 0);
}

void st_put_lease(uint8_t *p, st_lease_id id)
{
	st_put_u64(p, (uint64_t)id ^ (1ull << 63));
}

st_lease_id st_get_lease(const uint8_t *p)
{
	return (st_lease_id)(st_get_u64(p) ^ (1ull << 63));
}

int st_map_lmdb(int rc, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS: return 0;
	case MDB_MAP_FULL: return ST__ERR_MAP_FULL;
	case ENOSPC: case EDQUOT:
		fprintf(stderr, "store: %s: %s\n", what, mdb_strerror(rc));
		return ST_ERR_DISK_FULL;
	case ENOMEM: return ST_ERR_NOMEM;
	case MDB_CORRUPTED: case MDB_INVALID: case MDB_VERSION_MISMATCH:
	case MDB_PAGE_NOTFOUND: case MDB_INCOMPATIBLE:
		fprintf(stderr, "store: %s: %s\n", what, mdb_strerror(rc));
		return ST_ERR_CORRUPT;
	default:
		fprintf(stderr, "store: %s: %s\n", what, mdb_strerror(rc));
		return ST_ERR_IO;
	}
}

/* The history key is userkey || rev(8) || sub(4): order by user key bytes
 * (shorter first on a common prefix), then by revision and sub. Plain
 * memcmp would put "a" rev 9 after "a\0" rev 1, mixing keys that are
 * prefixes of others. */
static int st_hist_cmp(const MDB_val *a, const MDB_val *b)
{
	const size_t sfx = ST_HIST_SUFFIX_BYTES;
	assert(a->mv_size >= sfx && b->mv_size >= sfx);
	int c = st_bytes_cmp(a->mv_data, a->mv_size - sfx, b->mv_data,
		b->mv_size - sfx);
	if (c != 0)
		return c;
	return memcmp((const uint8_t *)a->mv_data + a->mv_size - sfx,
		(const uint8_t *)b->mv_data + b->mv_size - sfx, sfx);
}

int st_meta_read(st_store *st, MDB_txn *txn, struct st_meta *meta)
{
	MDB_val k = { 4, "meta" }, v;
	int rc = mdb_get(txn, st->dbi_meta, &k, &v);

	if (rc != 0)
		return rc == MDB_NOTFOUND ? ST_ERR_CORRUPT : st_map_lmdb(rc, "meta");
	if (v.mv_size != ST_META_BYTES)
		return ST_ERR_CORRUPT;
	uint64_t f[9];
	for (int i = 0; i < 9; i++)
		f[i] = st_get_u64((const uint8_t *)v.mv_data + 8 * i);
	*meta = (struct st_meta){ f[0], (st_rev)f[1], (st_rev)f[2], f[3], f[4],
		f[5], f[6], f[7], f[8] };
	if (meta->format != ST_FORMAT_VERSION || meta->rev < 1 ||
	    meta->compact < 0 || meta->compact > meta->rev)
		return ST_ERR_CORRUPT;
	return 0;
}

int st_meta_write(st_store *st, MDB_txn *txn, const struct st_meta *meta)
{
	uint8_t buf[ST_META_BYTES];
	const uint64_t f[9] = { meta->format, (uint64_t)meta->rev,
		(uint64_t)meta->compact, meta->applied, meta->size,
		meta->lease_next, meta->keys, meta->leases, meta->flags };
	for (int i = 0; i < 9; i++)
		st_put_u64(buf + 8 * i, f[i]);
	MDB_val k = { 4, "meta" }, v = { sizeof(buf), buf };
	return st_map_lmdb(mdb_put(txn, st->dbi_meta, &k, &v, 0), "meta write");
}

int st_read_begin(st_store *st, MDB_txn **txn)
{
	pthread_rwlock_rdlock(&st->resize_lock);
	int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
	if (rc != 0) {
		pthread_rwlock_unlock(&st->resize_lock);
		return st_map_lmdb(rc, "read txn");
	}
	return 0;
}

void st_read_end(st_store *st, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->resize_lock);
}

void st_options_init(struct st_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->quota_bytes = ST_QUOTA_BYTES_DEFAULT;
	opts->map_bytes = ST_MAP_BYTES_DEFAULT;
	opts->value_bytes_max = ST_VALUE_BYTES_MAX_DEFAULT;
	opts->map_bytes_max = 4 * ST_QUOTA_BYTES_DEFAULT + (1ull << 30);
}

static int st_opts_fill(const struct st_options *in, struct st_options *o)
{
	if (in != NULL)
		*o = *in;
	else
		memset(o, 0, sizeof(*o));
	if (o->quota_bytes == 0)
		o->quota_bytes = ST_QUOTA_BYTES_DEFAULT;
	if (o->map_bytes == 0)
		o->map_bytes = ST_MAP_BYTES_DEFAULT;
	if (o->map_bytes_max == 0)
		o->map_bytes_max = 4 * o->quota_bytes + (1ull << 30);
	if (o->value_bytes_max == 0)
		o->value_bytes_max = ST_VALUE_BYTES_MAX_DEFAULT;
	if (o->value_bytes_max > ST_VALUE_BYTES_MAX_LIMIT ||
	    o->map_bytes > o->map_bytes_max || o->map_bytes < (1u << 20))
		return ST_ERR_INVALID;
	return 0;
}

/* Opens the named databases, installs the comparator and creates the
 * metadata of a new store, in one write txn. */
static int st_dbs_open(st_store *st)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0)
		return st_map_lmdb(rc, "open txn");
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->dbi_meta)) ||
	    (rc = mdb_dbi_open(txn, "hist", MDB_CREATE, &st->dbi_hist)) ||
	    (rc = mdb_set_compare(txn, st->dbi_hist, st_hist_cmp)) ||
	    (rc = mdb_dbi_open(txn, "revs", MDB_CREATE, &st->dbi_revs)) ||
	    (rc = mdb_dbi_open(txn, "lease", MDB_CREATE, &st->dbi_lease)) ||
	    (rc = mdb_dbi_open(txn, "lkeys", MDB_CREATE, &st->dbi_lkeys))) {
		rc = st_map_lmdb(rc, "dbi open");
		goto out_abort_txn;
	}
	struct st_meta meta;
	rc = st_meta_read(st, txn, &meta);
	if (rc == ST_ERR_CORRUPT) {
		MDB_val k = { 4, "meta" }, v;
		if (mdb_get(txn, st->dbi_meta, &k, &v) == MDB_NOTFOUND) {
			meta = (struct st_meta){ .format = ST_FORMAT_VERSION,
				.rev = 1, .lease_next = 1 };
			rc = st_meta_write(st, txn, &meta);
		}
	}
	if (rc != 0)
		goto out_abort_txn;
	return st_map_lmdb(mdb_txn_commit(txn), "open commit");
out_abort_txn:
	mdb_txn_abort(txn);
	return rc;
}

static int st_env_open(st_store *st)
{
	unsigned flags = MDB_NOTLS | (st->opts.no_sync ? MDB_NOSYNC : 0);
	int rc = mdb_env_create(&st->env);
	if (rc != 0)
		return st_map_lmdb(rc, "env create");
	if ((rc = mdb_env_set_maxdbs(st->env, ST_DBS_MAX)) ||
	    (rc = mdb_env_set_maxreaders(st->env, ST_READERS_MAX)) ||
	    (rc = mdb_env_set_mapsize(st->env, st->map_bytes)) ||
	    (rc = mdb_env_open(st->env, st->dir, flags, 0600))) {
		rc = st_map_lmdb(rc, "env open");
		goto out_close_env;
	}
	MDB_envinfo info;
	mdb_env_info(st->env, &info);
	st->map_bytes = info.me_mapsize;
	rc = st_dbs_open(st);
	if (rc != 0)
		goto out_close_env;
	return 0;
out_close_env:
	mdb_env_close(st->env);
	st->env = NULL;
	return rc;
}

int st_open(const char *dir, const struct st_options *opts, st_store **out)
{
	*out = NULL;
	if (dir == NULL)
		return ST_ERR_INVALID;
	st_store *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return ST_ERR_NOMEM;
	int rc = st_opts_fill(opts, &st->opts);
	if (rc != 0)
		goto out_free_st;
	st->map_bytes = st->opts.map_bytes;
	st->dir = strdup(dir);
	if (st->dir == NULL) {
		rc = ST_ERR_NOMEM;
		goto out_free_st;
	}
	/* Writer preference: a steady stream of readers must not starve the
	 * map growth that the writer thread is waiting for. */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
		PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = pthread_rwlock_init(&st->resize_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (rc != 0) {
		rc = ST_ERR_NOMEM;
		goto out_free_dir;
	}
	rc = st_env_open(st);
	if (rc != 0)
		goto out_destroy_lock;
	*out = st;
	return 0;
out_destroy_lock:
	pthread_rwlock_destroy(&st->resize_lock);
out_free_dir:
	free(st->dir);
out_free_st:
	free(st);
	return rc;
}

int st_sync(st_store *st)
{
	int rc = mdb_env_sync(st->env, 1);
	return rc ? st_map_lmdb(rc, "sync") : 0;
}

void st_close(st_store *st)
{
	if (st == NULL)
		return;
	if (st->env != NULL && st->opts.no_sync)
		(void)st_sync(st);   /* nothing to do about a failure here */
	if (st->env != NULL)
		mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->resize_lock);
	free(st->dir);
	free(st);
}

int st_status(st_store *st, struct st_status *out)
{
	MDB_txn *txn;
	struct st_meta meta;
	int rc = st_read_begin(st, &txn);

	memset(out, 0, sizeof(*out));
	if (rc != 0)
		return rc;
	rc = st_meta_read(st, txn, &meta);
	if (rc == 0) {
		out->revision = meta.rev;
		out->compact_revision = meta.compact;
		out->applied_index = meta.applied;
		out->logical_bytes = meta.size;
		out->keys = meta.keys;
		out->leases = meta.leases;
	}
	out->quota_bytes = st->opts.quota_bytes;
	out->map_bytes = st->map_bytes;
	st_read_end(st, txn);
	return rc;
}

st_index st_applied_index(st_store *st)
{
	struct st_status s;
	return st_status(st, &s) == 0 ? s.applied_index : 0;
}

int st_snapshot_fd(st_store *st, int fd)
{
	pthread_rwlock_rdlock(&st->resize_lock);
	int rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
	pthread_rwlock_unlock(&st->resize_lock);
	if (rc == 0 && fsync(fd) != 0)
		rc = errno;
	return st_map_lmdb(rc, "snapshot");
}

int st_snapshot_file(st_store *st, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return st_map_lmdb(errno, "snapshot open");
	int rc = st_snapshot_fd(st, fd);
	if (close(fd) != 0 && rc == 0)
		rc = st_map_lmdb(errno, "snapshot close");
	return rc;
}

/* LMDB's on-disk meta page (mdb.c, MDB_DATA_VERSION 1): after the 16-byte
 * page header come magic(4) version(4) address(8) mapsize(8), the free DB
 * record (48 bytes; its first 4 bytes hold the page size), the main DB
 * record (48), last_pg(8) and txnid(8). Only the fields needed to learn how
 * long the file must be are read. */
#define ST_LMDB_MAGIC 0xBEEFC0DEu
#define ST_LMDB_META_OFF 16u
#define ST_LMDB_META_BYTES 136u

static uint64_t st_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t st_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		(uint32_t)p[3] << 24;
}

/* Reads one meta page; returns the bytes the file needs, or 0 if invalid. */
static uint64_t st_lmdb_meta_need(int fd, uint64_t off, uint64_t *txnid,
	uint32_t *psize)
{
	uint8_t m[ST_LMDB_META_BYTES];
	if (pread(fd, m, sizeof(m), (off_t)(off + ST_LMDB_META_OFF)) != (ssize_t)sizeof(m))
		return 0;
	uint32_t ps = st_le32(m + 24);
	if (st_le32(m) != ST_LMDB_MAGIC || st_le32(m + 4) != 1 || ps < 512 ||
	    ps > 65536 || (ps & (ps - 1)) != 0)
		return 0;
	uint64_t last = st_le64(m + 120);
	if (last > UINT64_MAX / ps - 1)
		return 0;
	*txnid = st_le64(m + 128);
	*psize = ps;
	return (last + 1) * ps;
}

/* LMDB maps a file with the length its meta page promises; reading past
 * the real end of a torn snapshot would be SIGBUS. So check the length
 * with plain reads before LMDB sees the file. */
static int st_snapshot_check_size(const char *path)
{
	struct stat sb;
	uint64_t tx0 = 0, tx1 = 0, need0, need1 = 0;
	uint32_t ps = 0, ps1 = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return st_map_lmdb(errno, "check open");
	int rc = fstat(fd, &sb) != 0 ? st_map_lmdb(errno, "check stat") : 0;
	if (rc == 0) {
		need0 = st_lmdb_meta_need(fd, 0, &tx0, &ps);
		if (need0 != 0)
			need1 = st_lmdb_meta_need(fd, ps, &tx1, &ps1);
		uint64_t need = need1 != 0 && tx1 > tx0 ? need1 : need0;
		if (need0 == 0 || (need1 != 0 && ps1 != ps) ||
		    (uint64_t)sb.st_size < need || (uint64_t)sb.st_size < 2ull * ps)
			rc = ST_ERR_CORRUPT;
	}
	close(fd);
	return rc;
}

/* Opens the snapshot read-only and checks it holds a store of our format;
 * *applied (if not NULL) gets the applied index it records. */
static int st_snapshot_check(const char *path, st_index *applied)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc = st_snapshot_check_size(path);
	if (rc != 0)
		return rc;
	rc = mdb_env_create(&env);
	if (rc != 0)
		return st_map_lmdb(rc, "check env");
	mdb_env_set_maxdbs(env, ST_DBS_MAX);
	rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600);
	if (rc != 0) {
		rc = (rc == ENOENT || rc == EACCES) ? st_map_lmdb(rc, "check open")
			: ST_ERR_CORRUPT;
		goto out_close_env;
	}
	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc != 0) {
		rc = ST_ERR_CORRUPT;
		goto out_close_env;
	}
	const char *names[] = { "hist", "revs", "lease", "lkeys", "meta" };
	for (size_t i = 0; i < 5 && rc == 0; i++)
		rc = mdb_dbi_open(txn, names[i], 0, &dbi) ? ST_ERR_CORRUPT : 0;
	if (rc == 0) {
		MDB_val k = { 4, "meta" }, v;
		if (mdb_get(txn, dbi, &k, &v) != 0 || v.mv_size != ST_META_BYTES ||
		    st_get_u64(v.mv_data) != ST_FORMAT_VERSION)
			rc = ST_ERR_CORRUPT;
		else if (applied)   /* st_meta_write: the fourth field */
			*applied = st_get_u64((const uint8_t *)v.mv_data + 24);
	}
	mdb_txn_abort(txn);
out_close_env:
	mdb_env_close(env);
	return rc;
}

static int st_file_copy(const char *from, const char *to)
{
	int rc = 0;
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return st_map_lmdb(errno, "restore open");
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = st_map_lmdb(errno, "restore create");
		goto out_close_in;
	}
	char *buf = malloc(ST_COPY_CHUNK_BYTES);
	if (buf == NULL) {
		rc = ST_ERR_NOMEM;
		goto out_close_out;
	}
	for (;;) {
		ssize_t n = read(in, buf, ST_COPY_CHUNK_BYTES);
		if (n == 0)
			break;
		if (n < 0 || write(out, buf, (size_t)n) != n) {
			rc = st_map_lmdb(errno ? errno : EIO, "restore copy");
			break;
		}
	}
	if (rc == 0 && fsync(out) != 0)
		rc = st_map_lmdb(errno, "restore fsync");
	free(buf);
out_close_out:
	if (close(out) != 0 && rc == 0)
		rc = st_map_lmdb(errno, "restore close");
out_close_in:
	close(in);
	return rc;
}

int st_snapshot_applied(const char *path, st_index *applied)
{
	*applied = 0;
	return st_snapshot_check(path, applied);
}

int st_restore_file(st_store *st, const char *path)
{
	int rc = st_snapshot_check(path, NULL);
	if (rc != 0)
		return rc;
	size_t dl = strlen(st->dir) + 32;
	char *tmp = malloc(dl), *data = malloc(dl);
	if (tmp == NULL || data == NULL) {
		rc = ST_ERR_NOMEM;
		goto out_free_names;
	}
	snprintf(tmp, dl, "%s/data.mdb.restore", st->dir);
	snprintf(data, dl, "%s/data.mdb", st->dir);
	rc = st_file_copy(path, tmp);
	if (rc != 0) {
		unlink(tmp);
		goto out_free_names;
	}
	mdb_env_close(st->env);
	st->env = NULL;
	if (rename(tmp, data) != 0) {
		rc = st_map_lmdb(errno, "restore rename");
		unlink(tmp);
	} else {
		/* make the rename itself durable */
		int dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) != 0)
			rc = st_map_lmdb(errno, "restore dir fsync");
		if (dfd >= 0)
			close(dfd);
	}
	st->map_bytes = st->opts.map_bytes;
	int rc2 = st_env_open(st);
	if (rc == 0)
		rc = rc2;
out_free_names:
	free(tmp);
	free(data);
	return rc;
}
