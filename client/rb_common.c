/*
 * rb_common.c - what both the codec and the client need: the arena behind
 * responses, rb_resp_free(), error texts and small key helpers. Part of the
 * rb_wire static library that the server links too.
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raftbus.h"
#include "rb_mem.h"

#include <stdio.h>

/* Blocks hold small objects back to back; a large object gets its own
 * block so that one big value never wastes a chunk. */
#define RB_MEM_CHUNK_BYTES (16u * 1024u)
#define RB_MEM_ALLOC_BYTES_MAX (SIZE_MAX / 4)

struct rb_mem_blk {
	struct rb_mem_blk *next;
	size_t used;
	size_t cap;
	alignas(max_align_t) unsigned char data[];
};

struct rb_mem {
	struct rb_mem_blk *head;
};

struct rb_mem *rb_mem_new(void)
{
	return calloc(1, sizeof(struct rb_mem));
}

void *rb_mem_alloc(struct rb_mem *m, size_t n)
{
	const size_t align = alignof(max_align_t);
	if (n > RB_MEM_ALLOC_BYTES_MAX)
		return NULL;
	size_t need = (n + align - 1) / align * align;
	if (need == 0)
		need = align;
	struct rb_mem_blk *b = m->head;
	if (b == NULL || b->cap - b->used < need) {
		size_t cap = need > RB_MEM_CHUNK_BYTES ? need : RB_MEM_CHUNK_BYTES;
		b = malloc(sizeof(*b) + cap);
		if (b == NULL)
			return NULL;
		b->used = 0;
		b->cap = cap;
		/* keep the partly filled head in front when the new block is a
		 * one-off big allocation */
		if (m->head && cap == need && need > RB_MEM_CHUNK_BYTES) {
			b->next = m->head->next;
			m->head->next = b;
		} else {
			b->next = m->head;
			m->head = b;
		}
	}
	void *p = b->data + b->used;
	b->used += need;
	memset(p, 0, n);
	return p;
}

char *rb_mem_strndup(struct rb_mem *m, const char *s, size_t n)
{
	char *p = rb_mem_alloc(m, n + 1);
	if (p == NULL)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void rb_mem_free(struct rb_mem *m)
{
	if (m == NULL)
		return;
	struct rb_mem_blk *b = m->head;
	while (b) {
		struct rb_mem_blk *next = b->next;
		free(b);
		b = next;
	}
	free(m);
}

void rb_resp_free(struct rb_resp *resp)
{
	if (resp == NULL)
		return;
	rb_mem_free(resp->mem);
	memset(resp, 0, sizeof(*resp));
}

const char *rb_strerror(int err)
{
	switch (err) {
	case RB_OK: return "success";
	case RB_ERR_NOT_LEADER: return "etcdserver: not leader";
	case RB_ERR_COMPACTED: return "mvcc: required revision has been compacted";
	case RB_ERR_FUTURE_REV: return "mvcc: required revision is a future revision";
	case RB_ERR_LEASE_NOT_FOUND: return "etcdserver: requested lease not found";
	case RB_ERR_LEASE_EXISTS: return "etcdserver: lease already exists";
	case RB_ERR_LEASE_TTL_TOO_LARGE: return "etcdserver: too large lease TTL";
	case RB_ERR_DUPLICATE_KEY: return "etcdserver: duplicate key given in txn request";
	case RB_ERR_TOO_MANY_OPS: return "etcdserver: too many operations in txn request";
	case RB_ERR_INVALID_TXN: return "etcdserver: invalid txn request";
	case RB_ERR_KEY_NOT_FOUND: return "etcdserver: key not found";
	case RB_ERR_EMPTY_KEY: return "etcdserver: key is not provided";
	case RB_ERR_TOO_LARGE: return "etcdserver: request is too large";
	case RB_ERR_NOSPACE: return "etcdserver: mvcc: database space exceeded";
	case RB_ERR_TIMEOUT: return "etcdserver: request timed out";
	case RB_ERR_NO_LEADER: return "etcdserver: no leader";
	case RB_ERR_UNAVAILABLE: return "raftbus: no endpoint available";
	case RB_ERR_BAD_REQUEST: return "raftbus: bad request";
	case RB_ERR_INTERNAL: return "raftbus: internal server error";
	case RB_ERR_INVALID: return "raftbus: invalid argument";
	case RB_ERR_NOMEM: return "raftbus: out of memory";
	case RB_ERR_PROTOCOL: return "raftbus: malformed reply or protocol version mismatch";
	case RB_ERR_UNKNOWN: return "raftbus: unknown error";
	default: return "raftbus: unknown error code";
	}
}

size_t rb_prefix_end(const uint8_t *key, size_t key_len, uint8_t *buf)
{
	size_t n = key_len;
	while (n > 0 && key[n - 1] == 0xff)
		n--;
	if (n == 0) {
		buf[0] = 0;
		return 1;
	}
	memcpy(buf, key, n);
	buf[n - 1]++;
	return n;
}

bool rb_op_is_write(const struct rb_op *op)
{
	switch (op->type) {
	case RB_OP_RANGE:
	case RB_OP_LEASE_TIMETOLIVE:
	case RB_OP_LEASE_LEASES:
	case RB_OP_MEMBER_LIST:
	case RB_OP_ENDPOINT_STATUS:
	case RB_OP_HEALTH:
		return false;
	case RB_OP_LEASE_KEEPALIVE:
		/* renewing twice is harmless: the TTL is reset, not added */
		return false;
	case RB_OP_WATCH:
		return false;
	case RB_OP_PUBLISH:
		/* with an id the server deduplicates a second publish */
		return op->u.publish.msg_id_len == 0;
	case RB_OP_QUEUE_STATS:
	case RB_OP_QUEUE_DLQ:
		return false;
	case RB_OP_QUEUE_PUSH:
		/* with a dedup id the server answers a second push with the
		 * first one's id */
		return op->u.queue.dedup_id_len == 0;
	case RB_OP_TXN: {
		/* a txn of only ranges (recursively) changes nothing */
		const struct rb_txn *t = &op->u.txn;
		for (size_t i = 0; i < t->success_n; i++)
			if (rb_op_is_write(&t->success[i]))
				return true;
		for (size_t i = 0; i < t->failure_n; i++)
			if (rb_op_is_write(&t->failure[i]))
				return true;
		return false;
	}
	default:
		return true;
	}
}

int rb_resp_fail_v(struct rb_resp *resp, int err, const char *fallback,
	const char *fmt, va_list ap)
{
	char buf[1024];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	resp->err = err;
	resp->msg = fallback;
	if (resp->mem == NULL)
		resp->mem = rb_mem_new();
	if (resp->mem) {
		char *m = rb_mem_strndup(resp->mem, buf, strlen(buf));
		if (m)
			resp->msg = m;
	}
	if (resp->leader_url == NULL)
		resp->leader_url = "";
	if (resp->endpoint == NULL)
		resp->endpoint = "";
	return err;
}
