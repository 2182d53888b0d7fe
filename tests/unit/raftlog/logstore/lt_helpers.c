/*
 * lt_helpers.c - see lt_helpers.h.
 */
#include "lt_helpers.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <dirent.h>
#include <fcntl.h>
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

static int lt_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted segment names of dir (names sort in sequence order: fixed-width
 * hex). Returns how many; *names malloc()ed, each name too. */
static size_t lt_seg_names(const char *dir, char ***names)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0, cap = 64;
	char **v = calloc(cap, sizeof(*v));

	cr_assert_not_null(d);
	cr_assert_not_null(v);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len < 4 || strcmp(de->d_name + len - 4, ".wal") != 0)
			continue;
		cr_assert_lt(n, cap, "too many segments for the helper");
		v[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(v, n, sizeof(*v), lt_cmp_str);
	*names = v;
	return n;
}

static void lt_free_names(char **v, size_t n)
{
	for (size_t k = 0; k < n; k++)
		free(v[k]);
	free(v);
}

size_t lt_seg_count(const char *dir)
{
	char **v;
	size_t n = lt_seg_names(dir, &v);

	lt_free_names(v, n);
	return n;
}

char *lt_seg_path(const char *dir, size_t k)
{
	char **v, *path;
	size_t n = lt_seg_names(dir, &v);

	cr_assert_lt(k, n, "no segment %zu in %s", k, dir);
	cr_assert_gt(asprintf(&path, "%s/%s", dir, v[k]), 0);
	lt_free_names(v, n);
	return path;
}

uint8_t *lt_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat sb;
	uint8_t *buf;

	cr_assert_geq(fd, 0, "open %s", path);
	cr_assert_eq(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(pread(fd, buf, (size_t)sb.st_size, 0), sb.st_size);
	close(fd);
	*len = (size_t)sb.st_size;
	return buf;
}

void lt_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	cr_assert_geq(fd, 0, "open %s", path);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

uint64_t lt_find_entry(const char *dir, rl_index i, rl_term t, char **path)
{
	uint8_t rec[RL_LOG_ENTRY_HEADER_BYTES + 300], data[300];
	uint32_t dlen = lt_data_len(i, t);
	size_t rlen, n = lt_seg_count(dir);

	lt_fill(data, dlen, i, t);
	rlen = lt_make_record(rec, i, t, RL_ENTRY_NORMAL, data, dlen);
	for (size_t k = n; k-- > 0;) {
		char *p = lt_seg_path(dir, k);
		size_t len;
		uint8_t *file = lt_read_file(p, &len);
		uint8_t *hit = memmem(file, len, rec, rlen);
		if (hit != NULL) {
			uint64_t off = (uint64_t)(hit - file);
			free(file);
			*path = p;
			return off;
		}
		free(file);
		free(p);
	}
	cr_assert_fail("entry %llu term %llu not found in %s",
		       (unsigned long long)i, (unsigned long long)t, dir);
	return 0;
}

void lt_flip(const char *path, uint64_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	cr_assert_geq(fd, 0, "open %s", path);
	cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
	b ^= mask;
	cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

void lt_append_raw_batch(const char *dir, rl_index first, size_t n, rl_term t)
{
	char *path = lt_seg_path(dir, lt_seg_count(dir) - 1);
	size_t len, pos, plen = 8;
	uint8_t *file = lt_read_file(path, &len), data[300];
	uint8_t *rec = calloc(1, 16 + n * (RL_LOG_ENTRY_HEADER_BYTES + 300) + 8);

	cr_assert_not_null(rec);
	/* After the last non-zero byte, 8-byte aligned: where the next
	 * record would go. */
	for (pos = len; pos > 0 && file[pos - 1] == 0; pos--)
		;
	pos = (pos + 7) & ~(size_t)7;
	rec[8] = 3; /* LS_REC_BATCH, no flags */
	lt_le(rec + 12, n, 4);
	for (size_t k = 0; k < n; k++) {
		uint32_t dlen = lt_data_len(first + k, t);
		lt_fill(data, dlen, first + k, t);
		plen += lt_make_record(rec + 8 + plen, first + k, t,
				       RL_ENTRY_NORMAL, data, dlen);
	}
	lt_le(rec, plen, 4);
	lt_le(rec + 4, rl_crc32c(0, rec + 8, plen), 4);
	cr_assert_leq(pos + 8 + plen, len);
	memcpy(file + pos, rec, 8 + plen);
	lt_write_file(path, file, len);
	free(rec);
	free(file);
	free(path);
}
