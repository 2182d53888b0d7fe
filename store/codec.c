/*
 * codec.c - the Raft log format of an op: msgpack, written with msgpack-c's
 * packer. Decoding uses a small bounds-checked reader instead of
 * msgpack-c's unpacker because the unpacker allocates an array's elements
 * from the declared count before reading them, so 5 hostile bytes could ask
 * for gigabytes; here every count is checked against the bytes left.
 *
 * Format (version 1): an op is the array [1, type, fields...]:
 *   NOOP          [1, 0]
 *   PUT           [1, 1, key, value, lease, flags(prev_kv|ignore_value<<1|
 *                  ignore_lease<<2|append_rev<<3)]
 *   RANGE         [1, 2, key, range_end, revision, limit, sort_target,
 *                  sort_order, flags(keys_only|count_only<<1), min_mod,
 *                  max_mod, min_create, max_create]
 *   DELETE_RANGE  [1, 3, key, range_end, flags(prev_kv)]
 *   TXN           [1, 4, [compare...], [op...], [op...]]
 *                 compare = [target, result, key, range_end, number, value]
 *   COMPACT       [1, 5, revision]
 *   LEASE_GRANT   [1, 6, id, ttl_s]
 *   LEASE_REVOKE  [1, 7, id]
 *   QUEUE         [1, 8, cmd, queue, now_ms, payload, delay_ms, dedup_id,
 *                  consumer, visibility_ms, max_n, receipt, max_deliveries]
 *                 (every field, whatever cmd reads), and for the batch
 *                 commands one more field, the items:
 *                   PUSH_BATCH  [[payload, delay_ms, dedup_id]...]
 *                   ACK_BATCH   [receipt...]
 *                 so entries of the other commands are as before batches
 *                 existed, and a batch without its items (or another
 *                 command with them) does not decode.
 * Byte strings are msgpack bin; integers any msgpack int.
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "st_internal.h"

#define ST_CODEC_VERSION 1

struct st_decoded {
	struct st_mem *mem;
	struct st_op op;
};

/* ---- encode ---------------------------------------------------------- */

static int st_pk_bytes(msgpack_packer *pk, const uint8_t *p, size_t n)
{
	if (n && p == NULL)
		return ST_ERR_INVALID;
	if (msgpack_pack_bin(pk, n) != 0 || (n && msgpack_pack_bin_body(pk, p, n) != 0))
		return ST_ERR_NOMEM;
	return 0;
}

static int st_pk_int(msgpack_packer *pk, int64_t v)
{
	return msgpack_pack_int64(pk, v) ? ST_ERR_NOMEM : 0;
}

static int st_enc_op(msgpack_packer *pk, const struct st_op *op, unsigned depth);

static int st_enc_txn(msgpack_packer *pk, const struct st_txn *t, unsigned depth)
{
	int rc = 0;
	if ((t->compares_n && !t->compares) || (t->success_n && !t->success) ||
	    (t->failure_n && !t->failure))
		return ST_ERR_INVALID;
	if (msgpack_pack_array(pk, t->compares_n))
		return ST_ERR_NOMEM;
	for (size_t i = 0; rc == 0 && i < t->compares_n; i++) {
		const struct st_compare *c = &t->compares[i];
		if (msgpack_pack_array(pk, 6))
			return ST_ERR_NOMEM;
		if ((rc = st_pk_int(pk, c->target)) || (rc = st_pk_int(pk, c->result)) ||
		    (rc = st_pk_bytes(pk, c->key, c->key_len)) ||
		    (rc = st_pk_bytes(pk, c->range_end, c->range_end_len)) ||
		    (rc = st_pk_int(pk, c->number)) ||
		    (rc = st_pk_bytes(pk, c->value, c->value_len)))
			return rc;
	}
	if (msgpack_pack_array(pk, t->success_n))
		return ST_ERR_NOMEM;
	for (size_t i = 0; rc == 0 && i < t->success_n; i++)
		rc = st_enc_op(pk, &t->success[i], depth);
	if (rc == 0 && msgpack_pack_array(pk, t->failure_n))
		return ST_ERR_NOMEM;
	for (size_t i = 0; rc == 0 && i < t->failure_n; i++)
		rc = st_enc_op(pk, &t->failure[i], depth);
	return rc;
}

static bool st_queue_is_batch(int64_t cmd)
{
	return cmd == ST_Q_PUSH_BATCH || cmd == ST_Q_ACK_BATCH;
}

static int st_enc_queue_items(msgpack_packer *pk, const struct st_queue_op *q)
{
	int rc = 0;
	bool push = q->cmd == ST_Q_PUSH_BATCH;
	size_t n = push ? q->pushes_n : q->receipts_n;
	if (n && (push ? (const void *)q->pushes : (const void *)q->receipts) == NULL)
		return ST_ERR_INVALID;
	if (msgpack_pack_array(pk, n))
		return ST_ERR_NOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!push) {
			rc = st_pk_bytes(pk, q->receipts[i].receipt, q->receipts[i].receipt_len);
			continue;
		}
		const struct st_queue_push_item *it = &q->pushes[i];
		if (msgpack_pack_array(pk, 3))
			return ST_ERR_NOMEM;
		if ((rc = st_pk_bytes(pk, it->payload, it->payload_len)) == 0 &&
		    (rc = st_pk_int(pk, it->delay_ms)) == 0)
			rc = st_pk_bytes(pk, it->dedup_id, it->dedup_id_len);
	}
	return rc;
}

static int st_enc_queue(msgpack_packer *pk, const struct st_queue_op *q)
{
	int rc;
	if ((rc = st_pk_int(pk, q->cmd)) || (rc = st_pk_bytes(pk, q->queue, q->queue_len)) ||
	    (rc = st_pk_int(pk, q->now_ms)) ||
	    (rc = st_pk_bytes(pk, q->payload, q->payload_len)) ||
	    (rc = st_pk_int(pk, q->delay_ms)) ||
	    (rc = st_pk_bytes(pk, q->dedup_id, q->dedup_id_len)) ||
	    (rc = st_pk_bytes(pk, q->consumer, q->consumer_len)) ||
	    (rc = st_pk_int(pk, q->visibility_ms)) || (rc = st_pk_int(pk, q->max_n)) ||
	    (rc = st_pk_bytes(pk, q->receipt, q->receipt_len)) ||
	    (rc = st_pk_int(pk, q->max_deliveries)))
		return rc;
	return st_queue_is_batch(q->cmd) ? st_enc_queue_items(pk, q) : 0;
}

static int st_enc_body(msgpack_packer *pk, const struct st_op *op, unsigned depth)
{
	int rc = 0;
	switch (op->type) {
	case ST_OP_NOOP:
		return 0;
	case ST_OP_PUT: {
		const struct st_put *p = &op->u.put;
		if ((rc = st_pk_bytes(pk, p->key, p->key_len)) ||
		    (rc = st_pk_bytes(pk, p->value, p->value_len)) ||
		    (rc = st_pk_int(pk, p->lease)))
			return rc;
		return st_pk_int(pk, p->prev_kv | p->ignore_value << 1 |
			p->ignore_lease << 2 | p->append_rev << 3);
	}
	case ST_OP_RANGE: {
		const struct st_range *r = &op->u.range;
		if ((rc = st_pk_bytes(pk, r->key, r->key_len)) ||
		    (rc = st_pk_bytes(pk, r->range_end, r->range_end_len)))
			return rc;
		const int64_t f[] = { r->revision, r->limit, r->sort_target, r->sort_order,
			r->keys_only | r->count_only << 1, r->min_mod_revision,
			r->max_mod_revision, r->min_create_revision, r->max_create_revision };
		for (size_t i = 0; rc == 0 && i < sizeof(f) / sizeof(f[0]); i++)
			rc = st_pk_int(pk, f[i]);
		return rc;
	}
	case ST_OP_DELETE_RANGE: {
		const struct st_delete_range *d = &op->u.delete_range;
		if ((rc = st_pk_bytes(pk, d->key, d->key_len)) ||
		    (rc = st_pk_bytes(pk, d->range_end, d->range_end_len)))
			return rc;
		return st_pk_int(pk, d->prev_kv);
	}
	case ST_OP_TXN:
		return st_enc_txn(pk, &op->u.txn, depth);
	case ST_OP_COMPACT:
		return st_pk_int(pk, op->u.compact.revision);
	case ST_OP_LEASE_GRANT:
		if ((rc = st_pk_int(pk, op->u.lease_grant.id)))
			return rc;
		return st_pk_int(pk, op->u.lease_grant.ttl_s);
	case ST_OP_LEASE_REVOKE:
		return st_pk_int(pk, op->u.lease_revoke.id);
	case ST_OP_QUEUE:
		return st_enc_queue(pk, &op->u.queue);
	default:
		return ST_ERR_UNKNOWN_OP;
	}
}

static const uint8_t st_op_fields[ST_OP_TYPE_COUNT] = {
	[ST_OP_NOOP] = 0, [ST_OP_PUT] = 4, [ST_OP_RANGE] = 11,
	[ST_OP_DELETE_RANGE] = 3, [ST_OP_TXN] = 3, [ST_OP_COMPACT] = 1,
	[ST_OP_LEASE_GRANT] = 2, [ST_OP_LEASE_REVOKE] = 1,
	[ST_OP_QUEUE] = 11,
};

static int st_enc_op(msgpack_packer *pk, const struct st_op *op, unsigned depth)
{
	if (op->type >= ST_OP_TYPE_COUNT)
		return ST_ERR_UNKNOWN_OP;
	if (op->type == ST_OP_TXN && depth + 1 > ST_TXN_DEPTH_MAX)
		return ST_ERR_TXN_TOO_DEEP;
	size_t fields = 2u + st_op_fields[op->type];
	if (op->type == ST_OP_QUEUE && st_queue_is_batch(op->u.queue.cmd))
		fields++;   /* the items */
	if (msgpack_pack_array(pk, fields) ||
	    st_pk_int(pk, ST_CODEC_VERSION) || st_pk_int(pk, op->type))
		return ST_ERR_NOMEM;
	return st_enc_body(pk, op, op->type == ST_OP_TXN ? depth + 1 : depth);
}

int st_op_encode(const struct st_op *op, uint8_t **buf_out, size_t *len_out)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	*buf_out = NULL;
	*len_out = 0;
	if (op == NULL)
		return ST_ERR_INVALID;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int rc = st_enc_op(&pk, op, 0);
	if (rc != 0) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	*len_out = sb.size;
	*buf_out = (uint8_t *)msgpack_sbuffer_release(&sb);
	if (*buf_out == NULL) {
		*buf_out = malloc(1); /* an op always encodes to >= 2 bytes */
		return *buf_out ? 0 : ST_ERR_NOMEM;
	}
	return 0;
}

/* ---- decode ---------------------------------------------------------- */

struct st_rd {
	const uint8_t *p;
	size_t n;
	struct st_mem **mem;
};

static int st_rd_take(struct st_rd *r, size_t k, const uint8_t **out)
{
	if (r->n < k)
		return ST_ERR_DECODE;
	*out = r->p;
	r->p += k;
	r->n -= k;
	return 0;
}

static uint64_t st_rd_be(const uint8_t *p, size_t k)
{
	uint64_t v = 0;
	for (size_t i = 0; i < k; i++)
		v = v << 8 | p[i];
	return v;
}

static int st_rd_int(struct st_rd *r, int64_t *v)
{
	const uint8_t *t, *b;
	if (st_rd_take(r, 1, &t))
		return ST_ERR_DECODE;
	uint8_t c = t[0];
	if (c <= 0x7f) { *v = c; return 0; }
	if (c >= 0xe0) { *v = (int8_t)c; return 0; }
	if (c >= 0xcc && c <= 0xcf) {
		size_t k = (size_t)1 << (c - 0xcc);
		if (st_rd_take(r, k, &b))
			return ST_ERR_DECODE;
		uint64_t u = st_rd_be(b, k);
		if (u > INT64_MAX)
			return ST_ERR_DECODE;
		*v = (int64_t)u;
		return 0;
	}
	if (c >= 0xd0 && c <= 0xd3) {
		size_t k = (size_t)1 << (c - 0xd0);
		if (st_rd_take(r, k, &b))
			return ST_ERR_DECODE;
		uint64_t u = st_rd_be(b, k);
		if (k < 8 && (u >> (8 * k - 1)) & 1)
			u |= ~(uint64_t)0 << (8 * k); /* sign-extend */
		*v = (int64_t)u;
		return 0;
	}
	return ST_ERR_DECODE;
}

static int st_rd_range(struct st_rd *r, int64_t lo, int64_t hi, int64_t *v)
{
	int rc = st_rd_int(r, v);
	return rc ? rc : (*v < lo || *v > hi ? ST_ERR_DECODE : 0);
}

static int st_rd_array(struct st_rd *r, size_t *count)
{
	const uint8_t *t, *b;
	if (st_rd_take(r, 1, &t))
		return ST_ERR_DECODE;
	if ((t[0] & 0xf0) == 0x90) {
		*count = t[0] & 0x0f;
	} else if (t[0] == 0xdc || t[0] == 0xdd) {
		size_t k = t[0] == 0xdc ? 2 : 4;
		if (st_rd_take(r, k, &b))
			return ST_ERR_DECODE;
		*count = (size_t)st_rd_be(b, k);
	} else {
		return ST_ERR_DECODE;
	}
	/* every element takes at least one byte */
	return *count > r->n ? ST_ERR_DECODE : 0;
}

static int st_rd_bytes(struct st_rd *r, const uint8_t **out, size_t *len)
{
	const uint8_t *t, *b, *body;
	size_t k = 0, n;
	if (st_rd_take(r, 1, &t))
		return ST_ERR_DECODE;
	if (t[0] >= 0xa0 && t[0] <= 0xbf) {
		n = t[0] & 0x1f;
	} else if (t[0] >= 0xc4 && t[0] <= 0xc6) {
		k = (size_t)1 << (t[0] - 0xc4);
	} else if (t[0] >= 0xd9 && t[0] <= 0xdb) {
		k = (size_t)1 << (t[0] - 0xd9);
	} else if (t[0] == 0xc0) {
		*out = NULL;
		*len = 0;
		return 0;
	} else {
		return ST_ERR_DECODE;
	}
	if (k) {
		if (st_rd_take(r, k, &b))
			return ST_ERR_DECODE;
		n = (size_t)st_rd_be(b, k);
	}
	if (st_rd_take(r, n, &body))
		return ST_ERR_DECODE;
	*len = n;
	*out = NULL;
	if (n && (*out = st_mem_dup(r->mem, body, n)) == NULL)
		return ST_ERR_NOMEM;
	return 0;
}

static int st_dec_op(struct st_rd *r, struct st_op *op, unsigned depth);

static int st_dec_ops(struct st_rd *r, const struct st_op **ops, size_t *n,
	unsigned depth)
{
	int rc = st_rd_array(r, n);
	if (rc != 0)
		return rc;
	struct st_op *v = NULL;
	if (*n && (v = st_mem_alloc(r->mem, *n * sizeof(*v))) == NULL)
		return ST_ERR_NOMEM;
	for (size_t i = 0; rc == 0 && i < *n; i++)
		rc = st_dec_op(r, &v[i], depth);
	*ops = v;
	return rc;
}

static int st_dec_compare(struct st_rd *r, struct st_compare *c)
{
	size_t n;
	int64_t t, res;
	int rc = st_rd_array(r, &n);
	if (rc == 0 && n != 6)
		rc = ST_ERR_DECODE;
	if (rc || (rc = st_rd_range(r, 0, 255, &t)) || (rc = st_rd_range(r, 0, 255, &res)) ||
	    (rc = st_rd_bytes(r, &c->key, &c->key_len)) ||
	    (rc = st_rd_bytes(r, &c->range_end, &c->range_end_len)) ||
	    (rc = st_rd_int(r, &c->number)) ||
	    (rc = st_rd_bytes(r, &c->value, &c->value_len)))
		return rc;
	c->target = (uint8_t)t;
	c->result = (uint8_t)res;
	return 0;
}

static int st_dec_txn(struct st_rd *r, struct st_txn *t, unsigned depth)
{
	size_t n;
	int rc = st_rd_array(r, &n);
	if (rc != 0)
		return rc;
	struct st_compare *c = NULL;
	if (n && (c = st_mem_alloc(r->mem, n * sizeof(*c))) == NULL)
		return ST_ERR_NOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = st_dec_compare(r, &c[i]);
	t->compares = c;
	t->compares_n = n;
	if (rc == 0)
		rc = st_dec_ops(r, &t->success, &t->success_n, depth);
	if (rc == 0)
		rc = st_dec_ops(r, &t->failure, &t->failure_n, depth);
	return rc;
}

static int st_dec_put(struct st_rd *r, struct st_put *p)
{
	int64_t flags;
	int rc;
	if ((rc = st_rd_bytes(r, &p->key, &p->key_len)) ||
	    (rc = st_rd_bytes(r, &p->value, &p->value_len)) ||
	    (rc = st_rd_int(r, &p->lease)) || (rc = st_rd_range(r, 0, 15, &flags)))
		return rc;
	p->prev_kv = flags & 1;
	p->ignore_value = flags & 2;
	p->ignore_lease = flags & 4;
	p->append_rev = flags & 8;   /* entries written before it: bit clear */
	return 0;
}

static int st_dec_range(struct st_rd *r, struct st_range *q)
{
	int64_t st, so, fl;
	int rc;
	if ((rc = st_rd_bytes(r, &q->key, &q->key_len)) ||
	    (rc = st_rd_bytes(r, &q->range_end, &q->range_end_len)) ||
	    (rc = st_rd_int(r, &q->revision)) || (rc = st_rd_int(r, &q->limit)) ||
	    (rc = st_rd_range(r, 0, 255, &st)) || (rc = st_rd_range(r, 0, 255, &so)) ||
	    (rc = st_rd_range(r, 0, 3, &fl)) || (rc = st_rd_int(r, &q->min_mod_revision)) ||
	    (rc = st_rd_int(r, &q->max_mod_revision)) ||
	    (rc = st_rd_int(r, &q->min_create_revision)) ||
	    (rc = st_rd_int(r, &q->max_create_revision)))
		return rc;
	q->sort_target = (uint8_t)st;
	q->sort_order = (uint8_t)so;
	q->keys_only = fl & 1;
	q->count_only = fl & 2;
	return 0;
}

static int st_dec_push_item(struct st_rd *r, struct st_queue_push_item *it)
{
	size_t n;
	int rc = st_rd_array(r, &n);
	if (rc == 0 && n != 3)
		rc = ST_ERR_DECODE;
	if (rc || (rc = st_rd_bytes(r, &it->payload, &it->payload_len)) ||
	    (rc = st_rd_int(r, &it->delay_ms)))
		return rc;
	return st_rd_bytes(r, &it->dedup_id, &it->dedup_id_len);
}

/* The items of a batch command; the count is bounded by the bytes left
 * (st_rd_array), the limit is st_apply's business. */
static int st_dec_queue_items(struct st_rd *r, struct st_queue_op *q)
{
	size_t n;
	int rc = st_rd_array(r, &n);
	if (rc != 0 || n == 0)
		return rc;
	if (q->cmd == ST_Q_PUSH_BATCH) {
		struct st_queue_push_item *v = st_mem_alloc(r->mem, n * sizeof(*v));
		if (v == NULL)
			return ST_ERR_NOMEM;
		for (size_t i = 0; rc == 0 && i < n; i++)
			rc = st_dec_push_item(r, &v[i]);
		q->pushes = v;
		q->pushes_n = n;
		return rc;
	}
	struct st_queue_receipt *v = st_mem_alloc(r->mem, n * sizeof(*v));
	if (v == NULL)
		return ST_ERR_NOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = st_rd_bytes(r, &v[i].receipt, &v[i].receipt_len);
	q->receipts = v;
	q->receipts_n = n;
	return rc;
}

/* fields: the op's array length minus [version, type]. */
static int st_dec_queue(struct st_rd *r, struct st_queue_op *q, size_t fields)
{
	int64_t cmd, max_n, max_del;
	int rc;
	if ((rc = st_rd_range(r, 0, 255, &cmd)) ||
	    (rc = st_rd_bytes(r, &q->queue, &q->queue_len)) ||
	    (rc = st_rd_int(r, &q->now_ms)) ||
	    (rc = st_rd_bytes(r, &q->payload, &q->payload_len)) ||
	    (rc = st_rd_int(r, &q->delay_ms)) ||
	    (rc = st_rd_bytes(r, &q->dedup_id, &q->dedup_id_len)) ||
	    (rc = st_rd_bytes(r, &q->consumer, &q->consumer_len)) ||
	    (rc = st_rd_int(r, &q->visibility_ms)) ||
	    (rc = st_rd_range(r, 0, UINT32_MAX, &max_n)) ||
	    (rc = st_rd_bytes(r, &q->receipt, &q->receipt_len)) ||
	    (rc = st_rd_range(r, 0, UINT32_MAX, &max_del)))
		return rc;
	q->cmd = (uint8_t)cmd;
	q->max_n = (uint32_t)max_n;
	q->max_deliveries = (uint32_t)max_del;
	bool batch = st_queue_is_batch(cmd);
	if (fields != st_op_fields[ST_OP_QUEUE] + (batch ? 1u : 0u))
		return ST_ERR_DECODE;
	return batch ? st_dec_queue_items(r, q) : 0;
}

static int st_dec_body(struct st_rd *r, struct st_op *op, size_t fields,
	unsigned depth)
{
	int64_t f;
	int rc;
	switch (op->type) {
	case ST_OP_NOOP: return 0;
	case ST_OP_PUT: return st_dec_put(r, &op->u.put);
	case ST_OP_RANGE: return st_dec_range(r, &op->u.range);
	case ST_OP_DELETE_RANGE: {
		struct st_delete_range *d = &op->u.delete_range;
		if ((rc = st_rd_bytes(r, &d->key, &d->key_len)) ||
		    (rc = st_rd_bytes(r, &d->range_end, &d->range_end_len)) ||
		    (rc = st_rd_range(r, 0, 1, &f)))
			return rc;
		d->prev_kv = f;
		return 0;
	}
	case ST_OP_TXN: return st_dec_txn(r, &op->u.txn, depth);
	case ST_OP_COMPACT: return st_rd_int(r, &op->u.compact.revision);
	case ST_OP_LEASE_GRANT:
		if ((rc = st_rd_int(r, &op->u.lease_grant.id)))
			return rc;
		return st_rd_int(r, &op->u.lease_grant.ttl_s);
	case ST_OP_LEASE_REVOKE: return st_rd_int(r, &op->u.lease_revoke.id);
	case ST_OP_QUEUE: return st_dec_queue(r, &op->u.queue, fields);
	default: return ST_ERR_UNKNOWN_OP;
	}
}

static int st_dec_op(struct st_rd *r, struct st_op *op, unsigned depth)
{
	size_t n;
	int64_t ver, type;
	int rc = st_rd_array(r, &n);
	memset(op, 0, sizeof(*op));
	if (rc || n < 2 || (rc = st_rd_int(r, &ver)) || (rc = st_rd_int(r, &type)))
		return rc ? rc : ST_ERR_DECODE;
	if (ver != ST_CODEC_VERSION)
		return ST_ERR_DECODE;
	if (type < 0 || type >= ST_OP_TYPE_COUNT)
		return ST_ERR_UNKNOWN_OP;
	op->type = (uint8_t)type;
	/* a queue op's batch items are one optional field: st_dec_queue
	 * checks the count against its command */
	bool queue = type == ST_OP_QUEUE;
	if (n != 2u + st_op_fields[type] && !(queue && n == 3u + st_op_fields[type]))
		return ST_ERR_DECODE;
	if (type == ST_OP_TXN && ++depth > ST_TXN_DEPTH_MAX)
		return ST_ERR_TXN_TOO_DEEP;
	return st_dec_body(r, op, n - 2u, depth);
}

int st_op_decode(const uint8_t *buf, size_t len, st_decoded **out)
{
	*out = NULL;
	if (buf == NULL || len == 0 || len > ST_OP_ENCODED_BYTES_MAX)
		return ST_ERR_DECODE;
	st_decoded *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return ST_ERR_NOMEM;
	struct st_rd r = { buf, len, &d->mem };
	int rc = st_dec_op(&r, &d->op, 0);
	if (rc == 0 && r.n != 0)
		rc = ST_ERR_DECODE; /* trailing bytes */
	if (rc != 0) {
		st_decoded_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

const struct st_op *st_decoded_op(const st_decoded *d)
{
	return &d->op;
}

void st_decoded_free(st_decoded *d)
{
	if (d == NULL)
		return;
	st_mem_free_all(&d->mem);
	free(d);
}
