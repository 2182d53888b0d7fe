/*
 * lt_helpers.c - see lt_helpers.h.
 */
#include "lt_helpers.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"

char *lt_tmpdir(void)
{
	char *dir = strdup("/tmp/rl-logstore-test-XXXXXX");

	cr_assert_not_null(dir);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp failed");
	return dir;
}

static int lt_rm_one(const char *path, const struct stat *sb, int flag,
		     struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void lt_rmdir(char *dir)
{
	if (dir == NULL)
		return;
	nftw(dir, lt_rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

char *lt_dir;

void lt_setup(void)
{
	lt_dir = lt_tmpdir();
}

void lt_teardown(void)
{
	lt_rmdir(lt_dir);
	lt_dir = NULL;
}

/* A small mixing function: payloads depend on both index and term, so an
 * entry rewritten with another term has other bytes and another length. */
static uint64_t lt_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

uint32_t lt_data_len(rl_index i, rl_term t)
{
	/* Every 7th entry is empty (a no-op), the others 1..300 bytes. */
	if (i % 7 == 0)
		return 0;
	return 1 + (uint32_t)(lt_mix(i * 1000003u + t) % 300u);
}

void lt_fill(uint8_t *buf, uint32_t len, rl_index i, rl_term t)
{
	uint64_t x = lt_mix(i ^ (t << 40));

	for (uint32_t k = 0; k < len; k++) {
		if (k % 8 == 0)
			x = lt_mix(x + k);
		buf[k] = (uint8_t)(x >> (8 * (k % 8)));
	}
}

rl_logstore *lt_open(const char *dir)
{
	char msg[RL_LOG_ERRMSG_MAX];
	rl_logstore *ls = NULL;
	int err = rl_logstore_open(dir, NULL, &ls, msg, sizeof(msg));

	cr_assert_eq(err, 0, "open %s: %s (%s)", dir,
		     rl_logstore_strerror(err), msg);
	cr_assert_not_null(ls);
	return ls;
}

int lt_append(rl_logstore *ls, rl_index first, size_t n, rl_term t,
	      const struct rl_hard_state *hs)
{
	static uint8_t bufs[LT_BATCH_MAX][300];
	struct rl_entry e[LT_BATCH_MAX];
	struct rl_logstore_batch b = { .entries = e, .entries_n = n,
				       .hard_state = hs };

	cr_assert_leq(n, LT_BATCH_MAX);
	for (size_t k = 0; k < n; k++) {
		rl_index i = first + k;
		e[k] = (struct rl_entry){ .term = t, .index = i,
					  .type = RL_ENTRY_NORMAL,
					  .data_len = lt_data_len(i, t),
					  .data = bufs[k] };
		lt_fill(bufs[k], e[k].data_len, i, t);
	}
	return rl_logstore_save(ls, &b);
}

void lt_assert_entries(rl_logstore *ls, rl_index lo, rl_index hi,
		       const rl_term *terms)
{
	struct rl_entry *e = NULL;
	uint8_t want[300];
	size_t n = 0;
	int err = rl_logstore_entries(ls, lo, hi + 1, UINT64_MAX, &e, &n);

	cr_assert_eq(err, 0, "entries(%llu, %llu): %s (%s)",
		     (unsigned long long)lo, (unsigned long long)hi + 1,
		     rl_logstore_strerror(err), rl_logstore_errmsg(ls));
	cr_assert_eq(n, hi - lo + 1, "got %zu entries", n);
	for (size_t k = 0; k < n; k++) {
		rl_index i = lo + k;
		rl_term t = terms[k], got_t = 0;
		uint32_t len = lt_data_len(i, t);
		cr_assert_eq(e[k].index, i);
		cr_assert_eq(e[k].term, t, "index %llu: term %llu, want %llu",
			     (unsigned long long)i,
			     (unsigned long long)e[k].term,
			     (unsigned long long)t);
		cr_assert_eq(e[k].type, RL_ENTRY_NORMAL);
		cr_assert_eq(e[k].data_len, len, "index %llu length",
			     (unsigned long long)i);
		lt_fill(want, len, i, t);
		if (len > 0)
			cr_assert_arr_eq(e[k].data, want, len,
					 "index %llu data differs",
					 (unsigned long long)i);
		cr_assert_eq(rl_logstore_term(ls, i, &got_t), 0);
		cr_assert_eq(got_t, t);
	}
	free(e);
}

void lt_assert_range_term(rl_logstore *ls, rl_index lo, rl_index hi,
			  rl_term t)
{
	size_t n = hi - lo + 1;
	rl_term *terms = calloc(n, sizeof(*terms));

	cr_assert_not_null(terms);
	for (size_t k = 0; k < n; k++)
		terms[k] = t;
	lt_assert_entries(ls, lo, hi, terms);
	free(terms);
}

struct lt_raw {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi entries;
	MDB_dbi meta;
};

struct lt_raw *lt_raw_open(const char *dir)
{
	struct lt_raw *r = calloc(1, sizeof(*r));

	cr_assert_not_null(r);
	cr_assert_eq(mdb_env_create(&r->env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(r->env, 2), 0);
	cr_assert_eq(mdb_env_open(r->env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
	cr_assert_eq(mdb_dbi_open(r->txn, "entries", 0, &r->entries), 0);
	cr_assert_eq(mdb_dbi_open(r->txn, "meta", 0, &r->meta), 0);
	return r;
}

static void lt_key(uint8_t kb[8], rl_index i)
{
	for (int b = 0; b < 8; b++)
		kb[b] = (uint8_t)(i >> (56 - 8 * b));
}

void lt_raw_put_entry(struct lt_raw *r, rl_index i, const void *val,
		      size_t len)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v = { len, (void *)val };

	lt_key(kb, i);
	cr_assert_eq(mdb_put(r->txn, r->entries, &k, &v, 0), 0);
}

size_t lt_raw_get_entry(struct lt_raw *r, rl_index i, void *buf, size_t cap)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;

	lt_key(kb, i);
	cr_assert_eq(mdb_get(r->txn, r->entries, &k, &v), 0);
	cr_assert_leq(v.mv_size, cap);
	memcpy(buf, v.mv_data, v.mv_size);
	return v.mv_size;
}

void lt_raw_del_entry(struct lt_raw *r, rl_index i)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb };

	lt_key(kb, i);
	cr_assert_eq(mdb_del(r->txn, r->entries, &k, NULL), 0);
}

void lt_raw_drop_entries(struct lt_raw *r)
{
	cr_assert_eq(mdb_drop(r->txn, r->entries, 0), 0);
}

void lt_raw_flip_meta(struct lt_raw *r, const char *name, size_t off)
{
	MDB_val k = { strlen(name), (void *)name }, v;
	uint8_t buf[512];

	cr_assert_eq(mdb_get(r->txn, r->meta, &k, &v), 0);
	cr_assert_lt(off, v.mv_size);
	cr_assert_leq(v.mv_size, sizeof(buf));
	memcpy(buf, v.mv_data, v.mv_size);
	buf[off] ^= 0x01;
	v.mv_data = buf;
	cr_assert_eq(mdb_put(r->txn, r->meta, &k, &v, 0), 0);
}

void lt_raw_del_meta(struct lt_raw *r, const char *name)
{
	MDB_val k = { strlen(name), (void *)name };

	cr_assert_eq(mdb_del(r->txn, r->meta, &k, NULL), 0);
}

void lt_raw_close(struct lt_raw *r)
{
	cr_assert_eq(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
	free(r);
}

static void lt_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int b = 0; b < bytes; b++)
		p[b] = (uint8_t)(v >> (8 * b));
}

size_t lt_make_record(uint8_t *buf, rl_index i, rl_term t, uint8_t type,
		      const void *data, uint32_t len)
{
	/* Layout documented at the top of raftlog/logstore.c. */
	lt_le(buf, t, 8);
	lt_le(buf + 8, i, 8);
	lt_le(buf + 16, len, 4);
	buf[20] = type;
	buf[21] = buf[22] = buf[23] = 0;
	memcpy(buf + RL_LOG_ENTRY_HEADER_BYTES, data, len);
	lt_le(buf + 24, rl_crc32c(rl_crc32c(0, buf, 24), data, len), 4);
	return RL_LOG_ENTRY_HEADER_BYTES + len;
}
