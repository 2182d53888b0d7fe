/*
 * mem.c - the arena behind every st_result (so a result is freed with one
 * call), error texts and small helpers shared by the store's files.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "st_internal.h"

/* Results are built in blocks so that freeing a response of thousands of
 * kvs is one walk of a short list. */
#define ST_MEM_BLOCK_BYTES (16u * 1024u)

struct st_mem {
	struct st_mem *next;
	size_t used;
	size_t cap;
	alignas(max_align_t) unsigned char data[];
};

void *st_mem_alloc(struct st_mem **mem, size_t n)
{
	const size_t align = alignof(max_align_t);
	size_t need = (n + align - 1) / align * align;
	struct st_mem *b = *mem;

	if (need == 0)
		need = align;
	if (b == NULL || b->cap - b->used < need) {
		size_t cap = need > ST_MEM_BLOCK_BYTES ? need : ST_MEM_BLOCK_BYTES;
		struct st_mem *nb = malloc(sizeof(*nb) + cap);

		if (nb == NULL)
			return NULL;
		nb->cap = cap;
		nb->used = 0;
		/* A big one-off block goes behind the current one so the
		 * current block's free space stays usable. */
		if (b != NULL && cap == need && b->cap - b->used > 256) {
			nb->next = b->next;
			b->next = nb;
			nb->used = need;
			return nb->data;
		}
		nb->next = b;
		*mem = nb;
		b = nb;
	}
	void *p = b->data + b->used;
	b->used += need;
	return p;
}

void *st_mem_dup(struct st_mem **mem, const void *p, size_t n)
{
	if (n == 0)
		return NULL;
	void *q = st_mem_alloc(mem, n);
	if (q != NULL)
		memcpy(q, p, n);
	return q;
}

void st_mem_free_all(struct st_mem **mem)
{
	struct st_mem *b = *mem;

	while (b != NULL) {
		struct st_mem *next = b->next;
		free(b);
		b = next;
	}
	*mem = NULL;
}

int st_mem_grow(struct st_mem **mem, void **arr, size_t *cap, size_t want,
	size_t elem_bytes)
{
	if (want <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	while (ncap < want)
		ncap *= 2;
	void *n = st_mem_alloc(mem, ncap * elem_bytes);
	if (n == NULL)
		return ST_ERR_NOMEM;
	if (*cap)
		memcpy(n, *arr, *cap * elem_bytes);
	*arr = n;
	*cap = ncap;
	return 0;
}

void st_result_free(struct st_result *res)
{
	if (res == NULL)
		return;
	st_mem_free_all(&res->mem);
	memset(res, 0, sizeof(*res));
}

void st_result_set_err(struct st_result *res, int err)
{
	res->err = err;
	res->msg = st_strerror(err);
}

const char *st_strerror(int err)
{
	switch (err) {
	case ST_OK: return "ok";
	case ST_ERR_INVALID: return "raftbus: invalid request";
	case ST_ERR_EMPTY_KEY: return "etcdserver: key is not provided";
	case ST_ERR_KEY_TOO_LONG: return "raftbus: key is too long";
	case ST_ERR_TOO_LARGE: return "etcdserver: request is too large";
	case ST_ERR_KEY_NOT_FOUND: return "etcdserver: key not found";
	case ST_ERR_LEASE_NOT_FOUND: return "etcdserver: requested lease not found";
	case ST_ERR_LEASE_EXISTS: return "etcdserver: lease already exists";
	case ST_ERR_LEASE_TTL_TOO_LARGE: return "etcdserver: too large lease TTL";
	case ST_ERR_COMPACTED: return "etcdserver: mvcc: required revision has been compacted";
	case ST_ERR_FUTURE_REV: return "etcdserver: mvcc: required revision is a future revision";
	case ST_ERR_TOO_MANY_OPS: return "etcdserver: too many operations in txn request";
	case ST_ERR_DUPLICATE_KEY: return "etcdserver: duplicate key given in txn request";
	case ST_ERR_NOSPACE: return "etcdserver: mvcc: database space exceeded";
	case ST_ERR_UNKNOWN_OP: return "raftbus: unknown operation type";
	case ST_ERR_DECODE: return "raftbus: malformed encoded operation";
	case ST_ERR_ALREADY_APPLIED: return "raftbus: entry already applied";
	case ST_ERR_NOMEM: return "raftbus: out of memory";
	case ST_ERR_IO: return "raftbus: store I/O error";
	case ST_ERR_DISK_FULL: return "raftbus: store disk full";
	case ST_ERR_CORRUPT: return "raftbus: store data is corrupt";
	case ST_ERR_TOO_MANY_COMPARES: return "raftbus: too many compares in txn request";
	case ST_ERR_TXN_TOO_DEEP: return "raftbus: txn nested too deep";
	case ST_ERR_VALUE_PROVIDED: return "etcdserver: value is provided";
	case ST_ERR_LEASE_PROVIDED: return "etcdserver: lease is provided";
	case ST_ERR_QUEUE_RECEIPT: return "raftbus: queue receipt is unknown or stale";
	case ST_ERR_QUEUE_INVALID: return "raftbus: invalid queue request";
	default: return "raftbus: unknown store error";
	}
}

size_t st_prefix_end(const uint8_t *key, size_t key_len, uint8_t *buf)
{
	size_t n = key_len;

	while (n > 0 && key[n - 1] == 0xff)
		n--;
	if (n == 0) {
		buf[0] = 0;
		return 1;
	}
	memmove(buf, key, n);
	buf[n - 1]++;
	return n;
}
