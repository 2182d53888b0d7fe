/*
 * rb_wire.c - encoding and decoding of raftbus client messages (msgpack;
 * the layout is documented in docs/protocol.md).
 *
 * Encoding uses msgpack-c's packer. Decoding uses a small bounds-checked
 * reader instead of msgpack-c's unpacker, because the unpacker allocates an
 * array's elements from its declared count before reading them (a 5-byte
 * message could ask for gigabytes). Here every count is checked against the
 * bytes left, so memory stays a small multiple of the message. Decoded byte
 * strings point into one private copy of the message; text fields are
 * copied NUL-terminated into the same arena.
 *
 * Forward compatibility: a decoder accepts body arrays LONGER than it
 * knows and skips the extra trailing elements, so a new field can be added
 * at the end of a body without a version bump. Fewer elements is an error.
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "rb_mem.h"
#include "rb_wire.h"

/* Nesting for skipping unknown trailing fields. */
#define RB_WIRE_SKIP_DEPTH_MAX 16u

_Static_assert(RB_OP_TYPE_COUNT == 31, "op codes are part of the wire format");
_Static_assert(RB_ERR_MIN == -22, "error codes are part of the wire format");

struct rb_wire_request {
	struct rb_mem *mem;
	uint64_t id;
	struct rb_op op;
};

/* ==== encoding ========================================================= */

struct enc {
	msgpack_packer pk;
	int err;                 /* first error; later packs are skipped */
};

static void e_fail(struct enc *e, int err)
{
	if (e->err == 0)
		e->err = err;
}

static void e_arr(struct enc *e, size_t n)
{
	if (e->err == 0 && msgpack_pack_array(&e->pk, n))
		e_fail(e, RB_ERR_NOMEM);
}

static void e_int(struct enc *e, int64_t v)
{
	if (e->err == 0 && msgpack_pack_int64(&e->pk, v))
		e_fail(e, RB_ERR_NOMEM);
}

static void e_uint(struct enc *e, uint64_t v)
{
	if (e->err == 0 && msgpack_pack_uint64(&e->pk, v))
		e_fail(e, RB_ERR_NOMEM);
}

static void e_bool(struct enc *e, bool v)
{
	if (e->err == 0 && (v ? msgpack_pack_true(&e->pk) : msgpack_pack_false(&e->pk)))
		e_fail(e, RB_ERR_NOMEM);
}

static void e_nil(struct enc *e)
{
	if (e->err == 0 && msgpack_pack_nil(&e->pk))
		e_fail(e, RB_ERR_NOMEM);
}

static void e_bin(struct enc *e, const uint8_t *p, size_t n)
{
	if (n && p == NULL)
		e_fail(e, RB_ERR_INVALID);
	if (e->err)
		return;
	if (msgpack_pack_bin(&e->pk, n) || (n && msgpack_pack_bin_body(&e->pk, p, n)))
		e_fail(e, RB_ERR_NOMEM);
}

static void e_str(struct enc *e, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n > RB_WIRE_TEXT_BYTES_MAX)
		n = RB_WIRE_TEXT_BYTES_MAX;   /* a text is informational: cut it */
	if (e->err)
		return;
	if (msgpack_pack_str(&e->pk, n) || (n && msgpack_pack_str_body(&e->pk, s, n)))
		e_fail(e, RB_ERR_NOMEM);
}

static void e_check_array(struct enc *e, const void *p, size_t n)
{
	if ((n && p == NULL) || n > RB_WIRE_ARRAY_MAX)
		e_fail(e, RB_ERR_INVALID);
}

static bool branch_op_ok(uint8_t t)
{
	return t == RB_OP_PUT || t == RB_OP_RANGE || t == RB_OP_DELETE_RANGE ||
		t == RB_OP_TXN;
}

static void e_op_body(struct enc *e, const struct rb_op *op, unsigned depth);

static void e_branch(struct enc *e, const struct rb_op *ops, size_t n, unsigned depth)
{
	e_check_array(e, ops, n);
	e_arr(e, n);
	for (size_t i = 0; e->err == 0 && i < n; i++) {
		if (!branch_op_ok(ops[i].type)) {
			e_fail(e, RB_ERR_INVALID);
			return;
		}
		e_arr(e, 2);
		e_uint(e, ops[i].type);
		e_op_body(e, &ops[i], depth);
	}
}

static void e_txn(struct enc *e, const struct rb_txn *t, unsigned depth)
{
	if (depth > RB_WIRE_TXN_DEPTH_MAX) {
		e_fail(e, RB_ERR_INVALID);
		return;
	}
	e_arr(e, 3);
	e_check_array(e, t->compares, t->compares_n);
	e_arr(e, t->compares_n);
	for (size_t i = 0; e->err == 0 && i < t->compares_n; i++) {
		const struct rb_compare *c = &t->compares[i];
		e_arr(e, 6);
		e_uint(e, c->target);
		e_uint(e, c->result);
		e_bin(e, c->key, c->key_len);
		e_bin(e, c->range_end, c->range_end_len);
		e_int(e, c->number);
		e_bin(e, c->value, c->value_len);
	}
	e_branch(e, t->success, t->success_n, depth + 1);
	e_branch(e, t->failure, t->failure_n, depth + 1);
}

static void e_range_req(struct enc *e, const struct rb_range *r)
{
	e_arr(e, 11);
	e_bin(e, r->key, r->key_len);
	e_bin(e, r->range_end, r->range_end_len);
	e_int(e, r->revision);
	e_int(e, r->limit);
	e_uint(e, r->sort_target);
	e_uint(e, r->sort_order);
	e_uint(e, (unsigned)r->keys_only | (unsigned)r->count_only << 1 |
		(unsigned)r->serializable << 2);
	e_int(e, r->min_mod_revision);
	e_int(e, r->max_mod_revision);
	e_int(e, r->min_create_revision);
	e_int(e, r->max_create_revision);
}

static void e_watch_req(struct enc *e, const struct rb_watch_req *w)
{
	e_check_array(e, w->watches, w->watches_n);
	e_arr(e, 3);
	e_arr(e, w->watches_n);
	for (size_t i = 0; e->err == 0 && i < w->watches_n; i++) {
		const struct rb_watch_spec *sp = &w->watches[i];
		e_arr(e, 5);
		e_bin(e, sp->key, sp->key_len);
		e_bin(e, sp->range_end, sp->range_end_len);
		e_int(e, sp->start_rev);
		e_uint(e, sp->start_sub);
		e_uint(e, (unsigned)sp->prev_kv | (unsigned)sp->no_put << 1 |
			(unsigned)sp->no_delete << 2);
	}
	e_int(e, w->wait_ms);
	e_uint(e, w->events_max);
}

static void e_publish(struct enc *e, const struct rb_publish *p)
{
	e_check_array(e, p->headers, p->headers_n);
	e_arr(e, 4);
	e_bin(e, p->topic, p->topic_len);
	e_bin(e, p->payload, p->payload_len);
	e_arr(e, p->headers_n);
	for (size_t i = 0; e->err == 0 && i < p->headers_n; i++) {
		e_arr(e, 2);
		e_bin(e, p->headers[i].key, p->headers[i].key_len);
		e_bin(e, p->headers[i].value, p->headers[i].value_len);
	}
	e_bin(e, p->msg_id, p->msg_id_len);
}

/* Work queues: the codec is in one section below (search "work queues"). */
static bool queue_op(uint8_t t)
{
	return t >= RB_OP_QUEUE_PUSH && t <= RB_OP_QUEUE_ACK_BATCH;
}
static void e_queue_req(struct enc *e, uint8_t op, const struct rb_queue_req *q);
static void e_queue_resp(struct enc *e, const struct rb_queue_resp *q);

/* depth: nesting of the txn this op would be (1 at top level). */
static void e_op_body(struct enc *e, const struct rb_op *op, unsigned depth)
{
	switch (op->type) {
	case RB_OP_PUT: {
		const struct rb_put *p = &op->u.put;
		e_arr(e, 4);
		e_bin(e, p->key, p->key_len);
		e_bin(e, p->value, p->value_len);
		e_int(e, p->lease);
		e_uint(e, (unsigned)p->prev_kv | (unsigned)p->ignore_value << 1 |
			(unsigned)p->ignore_lease << 2);
		return;
	}
	case RB_OP_RANGE:
		e_range_req(e, &op->u.range);
		return;
	case RB_OP_DELETE_RANGE: {
		const struct rb_delete_range *d = &op->u.delete_range;
		e_arr(e, 3);
		e_bin(e, d->key, d->key_len);
		e_bin(e, d->range_end, d->range_end_len);
		e_uint(e, d->prev_kv);
		return;
	}
	case RB_OP_TXN:
		e_txn(e, &op->u.txn, depth);
		return;
	case RB_OP_COMPACT:
		e_arr(e, 2);
		e_int(e, op->u.compact.revision);
		e_bool(e, op->u.compact.physical);
		return;
	case RB_OP_LEASE_GRANT:
		e_arr(e, 2);
		e_int(e, op->u.lease_grant.ttl_s);
		e_int(e, op->u.lease_grant.id);
		return;
	case RB_OP_LEASE_REVOKE:
	case RB_OP_LEASE_KEEPALIVE:
		e_arr(e, 1);
		e_int(e, op->type == RB_OP_LEASE_REVOKE ? op->u.lease_revoke.id :
			op->u.lease_keepalive.id);
		return;
	case RB_OP_LEASE_TIMETOLIVE:
		e_arr(e, 2);
		e_int(e, op->u.lease_ttl.id);
		e_bool(e, op->u.lease_ttl.keys);
		return;
	case RB_OP_LEASE_LEASES:
	case RB_OP_MEMBER_LIST:
	case RB_OP_ENDPOINT_STATUS:
	case RB_OP_HEALTH:
		e_arr(e, 0);
		return;
	case RB_OP_WATCH:
		e_watch_req(e, &op->u.watch);
		return;
	case RB_OP_PUBLISH:
		e_publish(e, &op->u.publish);
		return;
	default:
		if (queue_op(op->type)) {
			e_queue_req(e, op->type, &op->u.queue);
			return;
		}
		e_fail(e, RB_ERR_INVALID);
	}
}

/* Runs the packer into a fresh buffer and hands it over on success. */
static int e_finish(struct enc *e, msgpack_sbuffer *sb, uint8_t **buf_out,
	size_t *len_out)
{
	if (e->err) {
		msgpack_sbuffer_destroy(sb);
		return e->err;
	}
	*len_out = sb->size;   /* release() zeroes it */
	*buf_out = (uint8_t *)msgpack_sbuffer_release(sb);
	msgpack_sbuffer_destroy(sb);
	return 0;
}

/* Opens the packer on a fresh buffer and writes the envelope both message
 * kinds start with: [version, req_id, op, ...] of `fields` elements. */
static void e_start(struct enc *e, msgpack_sbuffer *sb, size_t fields,
	uint64_t req_id, uint8_t op)
{
	msgpack_sbuffer_init(sb);
	e->err = 0;
	msgpack_packer_init(&e->pk, sb, msgpack_sbuffer_write);
	e_arr(e, fields);
	e_uint(e, RB_WIRE_VERSION);
	e_uint(e, req_id);
	e_uint(e, op);
}

int rb_wire_encode_request(uint64_t req_id, const struct rb_op *op,
	uint8_t **buf_out, size_t *len_out)
{
	if (op == NULL || buf_out == NULL || len_out == NULL)
		return RB_ERR_INVALID;
	msgpack_sbuffer sb;
	struct enc e;
	e_start(&e, &sb, 4, req_id, op->type);
	e_op_body(&e, op, 1);
	return e_finish(&e, &sb, buf_out, len_out);
}

static void e_kv(struct enc *e, const struct rb_kv *kv)
{
	e_arr(e, 6);
	e_bin(e, kv->key, kv->key_len);
	e_bin(e, kv->value, kv->value_len);
	e_int(e, kv->create_revision);
	e_int(e, kv->mod_revision);
	e_int(e, kv->version);
	e_int(e, kv->lease);
}

static void e_kvs(struct enc *e, const struct rb_kv *kvs, size_t n)
{
	e_check_array(e, kvs, n);
	e_arr(e, n);
	for (size_t i = 0; e->err == 0 && i < n; i++)
		e_kv(e, &kvs[i]);
}

static void e_strs(struct enc *e, const char *const *s, size_t n)
{
	e_check_array(e, s, n);
	e_arr(e, n);
	for (size_t i = 0; e->err == 0 && i < n; i++)
		e_str(e, s[i]);
}

static void e_resp_body(struct enc *e, uint8_t op, const struct rb_op_resp *b,
	unsigned depth);

static void e_txn_resp(struct enc *e, const struct rb_txn_resp *t, unsigned depth)
{
	if (depth > RB_WIRE_TXN_DEPTH_MAX) {
		e_fail(e, RB_ERR_INVALID);
		return;
	}
	e_arr(e, 2);
	e_bool(e, t->succeeded);
	e_check_array(e, t->responses, t->responses_n);
	e_arr(e, t->responses_n);
	for (size_t i = 0; e->err == 0 && i < t->responses_n; i++) {
		const struct rb_op_resp *r = &t->responses[i];
		if (!branch_op_ok(r->type)) {
			e_fail(e, RB_ERR_INVALID);
			return;
		}
		e_arr(e, 2);
		e_uint(e, r->type);
		e_resp_body(e, r->type, r, depth + 1);
	}
}

static void e_member(struct enc *e, const struct rb_member *m)
{
	e_arr(e, 5);
	e_uint(e, m->id);
	e_str(e, m->name);
	e_strs(e, m->peer_urls, m->peer_urls_n);
	e_strs(e, m->client_urls, m->client_urls_n);
	e_bool(e, m->is_learner);
}

static void e_status(struct enc *e, const struct rb_status_resp *s)
{
	e_arr(e, 9);
	e_str(e, s->version);
	e_int(e, s->db_size);
	e_uint(e, s->leader);
	e_uint(e, s->raft_index);
	e_uint(e, s->raft_term);
	e_uint(e, s->raft_applied_index);
	e_strs(e, s->errors, s->errors_n);
	e_int(e, s->db_size_in_use);
	e_bool(e, s->is_learner);
}

static void e_lease_ttl(struct enc *e, const struct rb_lease_ttl_resp *l)
{
	e_arr(e, 4);
	e_int(e, l->id);
	e_int(e, l->ttl_s);
	e_int(e, l->granted_ttl_s);
	e_check_array(e, l->keys, l->keys_n);
	e_arr(e, l->keys_n);
	for (size_t i = 0; e->err == 0 && i < l->keys_n; i++)
		e_bin(e, l->keys[i].data, l->keys[i].len);
}

static void e_event(struct enc *e, const struct rb_event *ev)
{
	e_arr(e, 3);
	e_uint(e, ev->type);
	e_kv(e, &ev->kv);
	if (ev->has_prev_kv)
		e_kv(e, &ev->prev_kv);
	else
		e_nil(e);
}

static void e_watch_resp(struct enc *e, const struct rb_watch_resp *w)
{
	e_check_array(e, w->results, w->results_n);
	e_arr(e, 1);
	e_arr(e, w->results_n);
	for (size_t i = 0; e->err == 0 && i < w->results_n; i++) {
		const struct rb_watch_result *res = &w->results[i];
		e_check_array(e, res->events, res->events_n);
		e_arr(e, 6);
		e_arr(e, res->events_n);
		for (size_t k = 0; e->err == 0 && k < res->events_n; k++)
			e_event(e, &res->events[k]);
		e_int(e, res->next_rev);
		e_uint(e, res->next_sub);
		e_bool(e, res->canceled);
		e_int(e, res->err);
		e_int(e, res->compact_revision);
	}
}

static void e_resp_body(struct enc *e, uint8_t op, const struct rb_op_resp *b,
	unsigned depth)
{
	switch (op) {
	case RB_OP_PUT:
		e_arr(e, 1);
		if (b->u.put.has_prev_kv)
			e_kv(e, &b->u.put.prev_kv);
		else
			e_nil(e);
		return;
	case RB_OP_RANGE:
		e_arr(e, 3);
		e_kvs(e, b->u.range.kvs, b->u.range.kvs_n);
		e_int(e, b->u.range.count);
		e_bool(e, b->u.range.more);
		return;
	case RB_OP_DELETE_RANGE:
		e_arr(e, 2);
		e_int(e, b->u.delete_range.deleted);
		e_kvs(e, b->u.delete_range.prev_kvs, b->u.delete_range.prev_kvs_n);
		return;
	case RB_OP_TXN:
		e_txn_resp(e, &b->u.txn, depth);
		return;
	case RB_OP_LEASE_GRANT:
	case RB_OP_LEASE_KEEPALIVE:
		e_arr(e, 2);
		/* both structs are {id, ttl_s} */
		e_int(e, op == RB_OP_LEASE_GRANT ? b->u.lease_grant.id : b->u.lease_keepalive.id);
		e_int(e, op == RB_OP_LEASE_GRANT ? b->u.lease_grant.ttl_s :
			b->u.lease_keepalive.ttl_s);
		return;
	case RB_OP_LEASE_TIMETOLIVE:
		e_lease_ttl(e, &b->u.lease_ttl);
		return;
	case RB_OP_LEASE_LEASES:
		e_arr(e, 1);
		e_check_array(e, b->u.lease_leases.ids, b->u.lease_leases.ids_n);
		e_arr(e, b->u.lease_leases.ids_n);
		for (size_t i = 0; e->err == 0 && i < b->u.lease_leases.ids_n; i++)
			e_int(e, b->u.lease_leases.ids[i]);
		return;
	case RB_OP_MEMBER_LIST:
		e_arr(e, 1);
		e_check_array(e, b->u.member_list.members, b->u.member_list.members_n);
		e_arr(e, b->u.member_list.members_n);
		for (size_t i = 0; e->err == 0 && i < b->u.member_list.members_n; i++)
			e_member(e, &b->u.member_list.members[i]);
		return;
	case RB_OP_ENDPOINT_STATUS:
		e_status(e, &b->u.status);
		return;
	case RB_OP_HEALTH:
		e_arr(e, 2);
		e_bool(e, b->u.health.healthy);
		e_str(e, b->u.health.reason);
		return;
	case RB_OP_COMPACT:
	case RB_OP_LEASE_REVOKE:
		e_arr(e, 0);
		return;
	case RB_OP_WATCH:
		e_watch_resp(e, &b->u.watch);
		return;
	case RB_OP_PUBLISH:
		e_arr(e, 2);
		e_int(e, b->u.publish.revision);
		e_bool(e, b->u.publish.duplicate);
		return;
	default:
		if (queue_op(op)) {
			e_queue_resp(e, &b->u.queue);
			return;
		}
		e_fail(e, RB_ERR_INVALID);
	}
}

static void e_header(struct enc *e, const struct rb_header *h)
{
	e_arr(e, 4);
	e_uint(e, h->cluster_id);
	e_uint(e, h->member_id);
	e_int(e, h->revision);
	e_uint(e, h->raft_term);
}

int rb_wire_encode_reply(uint64_t req_id, uint8_t op, const struct rb_resp *resp,
	uint8_t **buf_out, size_t *len_out)
{
	if (resp == NULL || buf_out == NULL || len_out == NULL)
		return RB_ERR_INVALID;
	if (resp->err > 0 || resp->err < RB_ERR_MIN)
		return RB_ERR_INVALID;
	/* an error reply may answer an op we could not even decode */
	if (resp->err == 0 && (op == RB_OP_NONE || op >= RB_OP_TYPE_COUNT ||
	    (resp->body.type != op && resp->body.type != RB_OP_NONE)))
		return RB_ERR_INVALID;
	msgpack_sbuffer sb;
	struct enc e;
	e_start(&e, &sb, 6, req_id, op);
	e_header(&e, &resp->header);
	if (resp->err) {
		e_arr(&e, 5);
		e_int(&e, resp->err);
		e_str(&e, resp->msg ? resp->msg : rb_strerror(resp->err));
		e_uint(&e, resp->leader_id);
		e_str(&e, resp->leader_url);
		e_int(&e, resp->compact_revision);
		e_nil(&e);
	} else {
		e_nil(&e);
		e_resp_body(&e, op, &resp->body, 1);
	}
	return e_finish(&e, &sb, buf_out, len_out);
}

/* ==== decoding ========================================================= */

/* The reader fails with RB_ERR_BAD_REQUEST for any malformed input; reply
 * decoding maps it to RB_ERR_PROTOCOL at the end. */
struct rd {
	const uint8_t *p;
	const uint8_t *end;
	struct rb_mem *mem;
	int err;
};

static int r_fail(struct rd *r, int err)
{
	if (r->err == 0)
		r->err = err;
	return r->err;
}

#define R_BAD(r) r_fail((r), RB_ERR_BAD_REQUEST)

static size_t r_left(const struct rd *r)
{
	return (size_t)(r->end - r->p);
}

/* Reads an n-byte big-endian unsigned integer. */
static int r_be(struct rd *r, size_t n, uint64_t *v)
{
	if (r->err)
		return r->err;
	if (r_left(r) < n)
		return R_BAD(r);
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++)
		x = x << 8 | r->p[i];
	r->p += n;
	*v = x;
	return 0;
}

static int r_byte(struct rd *r, uint8_t *b)
{
	if (r->err)
		return r->err;
	if (r_left(r) < 1)
		return R_BAD(r);
	*b = *r->p++;
	return 0;
}

/* Every element of an array takes at least one byte: a count above the
 * bytes left is a lie, refused before anything is allocated. */
static int r_array(struct rd *r, size_t *n)
{
	uint8_t b;
	uint64_t v;
	if (r_byte(r, &b))
		return r->err;
	if ((b & 0xf0) == 0x90)
		v = b & 0x0f;
	else if (b == 0xdc) {
		if (r_be(r, 2, &v))
			return r->err;
	} else if (b == 0xdd) {
		if (r_be(r, 4, &v))
			return r->err;
	} else
		return R_BAD(r);
	if (v > r_left(r) || v > RB_WIRE_ARRAY_MAX)
		return R_BAD(r);
	*n = (size_t)v;
	return 0;
}

/* An array of at least `min` elements; *extra receives how many trailing
 * elements the caller must skip with r_skip_n(). */
static int r_body(struct rd *r, size_t min, size_t *extra)
{
	size_t n;
	*extra = 0;
	if (r_array(r, &n))
		return r->err;
	if (n < min)
		return R_BAD(r);
	*extra = n - min;
	return 0;
}

static bool r_nil(struct rd *r)
{
	if (r->err == 0 && r_left(r) >= 1 && *r->p == 0xc0) {
		r->p++;
		return true;
	}
	return false;
}

/* Any msgpack integer as int64 (a uint64 above INT64_MAX is refused). */
static int r_int(struct rd *r, int64_t *out)
{
	uint8_t b;
	uint64_t v;
	if (r_byte(r, &b))
		return r->err;
	if (b <= 0x7f) {
		*out = b;
		return 0;
	}
	if (b >= 0xe0) {
		*out = (int8_t)b;
		return 0;
	}
	if (b >= 0xcc && b <= 0xcf) {
		if (r_be(r, (size_t)1 << (b - 0xcc), &v))
			return r->err;
		if (v > INT64_MAX)
			return R_BAD(r);
		*out = (int64_t)v;
		return 0;
	}
	if (b >= 0xd0 && b <= 0xd3) {
		size_t n = (size_t)1 << (b - 0xd0);
		if (r_be(r, n, &v))
			return r->err;
		/* sign-extend from n bytes */
		if (n < 8 && (v >> (n * 8 - 1)) & 1)
			v |= ~(uint64_t)0 << (n * 8);
		*out = (int64_t)v;
		return 0;
	}
	return R_BAD(r);
}

/* A non-negative integer up to UINT64_MAX. */
static int r_uint(struct rd *r, uint64_t *out)
{
	if (r->err)
		return r->err;
	if (r_left(r) >= 1 && *r->p == 0xcf) {
		r->p++;
		return r_be(r, 8, out);
	}
	int64_t v;
	if (r_int(r, &v))
		return r->err;
	if (v < 0)
		return R_BAD(r);
	*out = (uint64_t)v;
	return 0;
}

/* An unsigned integer in [0, max]. */
static int r_small(struct rd *r, uint64_t max, uint64_t *out)
{
	if (r_uint(r, out))
		return r->err;
	return *out > max ? R_BAD(r) : 0;
}

static int r_bool(struct rd *r, bool *out)
{
	uint8_t b;
	if (r_byte(r, &b))
		return r->err;
	if (b != 0xc2 && b != 0xc3)
		return R_BAD(r);
	*out = b == 0xc3;
	return 0;
}

/* bin or str: a pointer into the message copy (never NULL, may be empty). */
static int r_raw(struct rd *r, const uint8_t **p, size_t *n)
{
	uint8_t b;
	uint64_t len;
	if (r_byte(r, &b))
		return r->err;
	if ((b & 0xe0) == 0xa0)
		len = b & 0x1f;
	else if (b == 0xc4 || b == 0xd9) {
		if (r_be(r, 1, &len))
			return r->err;
	} else if (b == 0xc5 || b == 0xda) {
		if (r_be(r, 2, &len))
			return r->err;
	} else if (b == 0xc6 || b == 0xdb) {
		if (r_be(r, 4, &len))
			return r->err;
	} else
		return R_BAD(r);
	if (len > r_left(r))
		return R_BAD(r);
	*p = r->p;
	*n = (size_t)len;
	r->p += len;
	return 0;
}

/* Byte strings: empty ones come out as NULL/0, like the encoder's input. */
static int r_bin(struct rd *r, const uint8_t **p, size_t *n)
{
	if (r_raw(r, p, n))
		return r->err;
	if (*n == 0)
		*p = NULL;
	return 0;
}

/* Text: copied NUL-terminated into the arena; never NULL. */
static int r_str(struct rd *r, const char **out)
{
	const uint8_t *p;
	size_t n;
	if (r_raw(r, &p, &n))
		return r->err;
	if (n > RB_WIRE_TEXT_BYTES_MAX)
		return R_BAD(r);
	char *s = rb_mem_strndup(r->mem, (const char *)p, n);
	if (s == NULL)
		return r_fail(r, RB_ERR_NOMEM);
	*out = s;
	return 0;
}

static void *r_alloc(struct rd *r, size_t n, size_t size)
{
	if (r->err)
		return NULL;
	void *p = rb_mem_alloc(r->mem, n * size);  /* n <= RB_WIRE_ARRAY_MAX: no overflow */
	if (p == NULL)
		r_fail(r, RB_ERR_NOMEM);
	return p;
}

/* Skips one object of any type (for unknown trailing fields). */
static int r_skip(struct rd *r, unsigned depth)
{
	uint8_t b;
	uint64_t n = 0;
	if (depth > RB_WIRE_SKIP_DEPTH_MAX)
		return R_BAD(r);
	if (r_left(r) < 1)
		return R_BAD(r);
	b = *r->p;
	if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3)) {
		r->p++;
		return 0;
	}
	if ((b >= 0xcc && b <= 0xd3)) {
		int64_t i;
		uint64_t u;
		return b == 0xcf ? r_uint(r, &u) : r_int(r, &i);
	}
	if ((b & 0xe0) == 0xa0 || (b >= 0xc4 && b <= 0xc6) || (b >= 0xd9 && b <= 0xdb)) {
		const uint8_t *p;
		size_t len;
		return r_raw(r, &p, &len);
	}
	if (b == 0xca || b == 0xcb) {         /* float32 / float64 */
		r->p++;
		return r_be(r, b == 0xca ? 4 : 8, &n);
	}
	if (b >= 0xd4 && b <= 0xd8) {          /* fixext: type byte + 1..16 */
		r->p++;
		size_t len = (size_t)1 << (b - 0xd4);
		if (r_left(r) < 1 + len)
			return R_BAD(r);
		r->p += 1 + len;
		return 0;
	}
	if (b >= 0xc7 && b <= 0xc9) {          /* ext 8/16/32 */
		r->p++;
		if (r_be(r, (size_t)1 << (b - 0xc7), &n))
			return r->err;
		if (r_left(r) < 1 || n > r_left(r) - 1)
			return R_BAD(r);
		r->p += 1 + n;
		return 0;
	}
	size_t elems;
	if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) {   /* map */
		r->p++;
		if ((b & 0xf0) == 0x80)
			n = b & 0x0f;
		else if (r_be(r, b == 0xde ? 2 : 4, &n))
			return r->err;
		if (n > r_left(r) / 2)
			return R_BAD(r);
		elems = (size_t)n * 2;
	} else if (r_array(r, &elems))
		return r->err;
	for (size_t i = 0; i < elems && r->err == 0; i++)
		r_skip(r, depth + 1);
	return r->err;
}

static int r_skip_n(struct rd *r, size_t n)
{
	for (size_t i = 0; i < n && r->err == 0; i++)
		r_skip(r, 1);
	return r->err;
}

/* ---- request bodies --------------------------------------------------- */

static int r_op_body(struct rd *r, struct rb_op *op, unsigned depth);

static int r_put(struct rd *r, struct rb_put *p)
{
	size_t extra;
	uint64_t flags;
	if (r_body(r, 4, &extra) || r_bin(r, &p->key, &p->key_len) ||
	    r_bin(r, &p->value, &p->value_len) || r_int(r, &p->lease) ||
	    r_small(r, 7, &flags))
		return r->err;
	p->prev_kv = flags & 1;
	p->ignore_value = flags & 2;
	p->ignore_lease = flags & 4;
	return r_skip_n(r, extra);
}

static int r_range(struct rd *r, struct rb_range *q)
{
	size_t extra;
	uint64_t st, so, flags;
	if (r_body(r, 11, &extra) || r_bin(r, &q->key, &q->key_len) ||
	    r_bin(r, &q->range_end, &q->range_end_len) || r_int(r, &q->revision) ||
	    r_int(r, &q->limit) || r_small(r, RB_SORT_VALUE, &st) ||
	    r_small(r, RB_SORT_DESCEND, &so) || r_small(r, 7, &flags) ||
	    r_int(r, &q->min_mod_revision) || r_int(r, &q->max_mod_revision) ||
	    r_int(r, &q->min_create_revision) || r_int(r, &q->max_create_revision))
		return r->err;
	q->sort_target = (uint8_t)st;
	q->sort_order = (uint8_t)so;
	q->keys_only = flags & 1;
	q->count_only = flags & 2;
	q->serializable = flags & 4;
	return r_skip_n(r, extra);
}

static int r_delete(struct rd *r, struct rb_delete_range *d)
{
	size_t extra;
	uint64_t flags;
	if (r_body(r, 3, &extra) || r_bin(r, &d->key, &d->key_len) ||
	    r_bin(r, &d->range_end, &d->range_end_len) || r_small(r, 1, &flags))
		return r->err;
	d->prev_kv = flags & 1;
	return r_skip_n(r, extra);
}

static int r_compare(struct rd *r, struct rb_compare *c)
{
	size_t extra;
	uint64_t t, res;
	if (r_body(r, 6, &extra) || r_small(r, RB_CMP_LEASE, &t) ||
	    r_small(r, RB_CMP_NOT_EQUAL, &res) || r_bin(r, &c->key, &c->key_len) ||
	    r_bin(r, &c->range_end, &c->range_end_len) || r_int(r, &c->number) ||
	    r_bin(r, &c->value, &c->value_len))
		return r->err;
	c->target = (uint8_t)t;
	c->result = (uint8_t)res;
	return r_skip_n(r, extra);
}

static int r_branch(struct rd *r, const struct rb_op **out, size_t *out_n,
	unsigned depth)
{
	size_t n;
	if (r_array(r, &n))
		return r->err;
	struct rb_op *ops = r_alloc(r, n, sizeof(*ops));
	if (ops == NULL)
		return r->err;
	for (size_t i = 0; i < n; i++) {
		size_t extra;
		uint64_t type;
		if (r_body(r, 2, &extra) || r_small(r, 255, &type))
			return r->err;
		if (!branch_op_ok((uint8_t)type))
			return R_BAD(r);
		ops[i].type = (uint8_t)type;
		if (r_op_body(r, &ops[i], depth) || r_skip_n(r, extra))
			return r->err;
	}
	*out = ops;
	*out_n = n;
	return 0;
}

static int r_txn(struct rd *r, struct rb_txn *t, unsigned depth)
{
	size_t extra, n;
	if (depth > RB_WIRE_TXN_DEPTH_MAX)
		return R_BAD(r);
	if (r_body(r, 3, &extra) || r_array(r, &n))
		return r->err;
	struct rb_compare *cs = r_alloc(r, n, sizeof(*cs));
	for (size_t i = 0; cs && i < n; i++)
		if (r_compare(r, &cs[i]))
			return r->err;
	t->compares = cs;
	t->compares_n = n;
	if (r_branch(r, &t->success, &t->success_n, depth + 1) ||
	    r_branch(r, &t->failure, &t->failure_n, depth + 1))
		return r->err;
	return r_skip_n(r, extra);
}

/* An op body whose expected element count is fixed: reads the ints. */
static int r_ints_body(struct rd *r, size_t n, int64_t *a, bool *flag)
{
	size_t extra;
	if (r_body(r, n + (flag != NULL), &extra))
		return r->err;
	for (size_t i = 0; i < n; i++)
		if (r_int(r, &a[i]))
			return r->err;
	if (flag && r_bool(r, flag))
		return r->err;
	return r_skip_n(r, extra);
}

static int r_watch_spec(struct rd *r, struct rb_watch_spec *sp)
{
	size_t extra;
	uint64_t sub, flags;
	if (r_body(r, 5, &extra) || r_bin(r, &sp->key, &sp->key_len) ||
	    r_bin(r, &sp->range_end, &sp->range_end_len) ||
	    r_int(r, &sp->start_rev) || r_small(r, UINT32_MAX, &sub) ||
	    r_small(r, 7, &flags))
		return r->err;
	sp->start_sub = (uint32_t)sub;
	sp->prev_kv = flags & 1;
	sp->no_put = flags & 2;
	sp->no_delete = flags & 4;
	return r_skip_n(r, extra);
}

static int r_watch_req(struct rd *r, struct rb_watch_req *w)
{
	size_t extra, n;
	uint64_t emax;
	if (r_body(r, 3, &extra) || r_array(r, &n))
		return r->err;
	/* a poll's own limit, before allocating for it */
	if (n > RB_WATCHES_PER_POLL_MAX)
		return R_BAD(r);
	struct rb_watch_spec *sp = r_alloc(r, n, sizeof(*sp));
	for (size_t i = 0; sp && i < n; i++)
		if (r_watch_spec(r, &sp[i]))
			return r->err;
	w->watches = sp;
	w->watches_n = n;
	if (r_int(r, &w->wait_ms) || r_small(r, UINT32_MAX, &emax))
		return r->err;
	w->events_max = (uint32_t)emax;
	return r_skip_n(r, extra);
}

static int r_publish(struct rd *r, struct rb_publish *p)
{
	size_t extra, n;
	if (r_body(r, 4, &extra) || r_bin(r, &p->topic, &p->topic_len) ||
	    r_bin(r, &p->payload, &p->payload_len) || r_array(r, &n))
		return r->err;
	struct rb_header_kv *h = r_alloc(r, n, sizeof(*h));
	for (size_t i = 0; h && i < n; i++) {
		size_t hx;
		if (r_body(r, 2, &hx) || r_bin(r, &h[i].key, &h[i].key_len) ||
		    r_bin(r, &h[i].value, &h[i].value_len) || r_skip_n(r, hx))
			return r->err;
	}
	p->headers = h;
	p->headers_n = n;
	if (r_bin(r, &p->msg_id, &p->msg_id_len))
		return r->err;
	return r_skip_n(r, extra);
}

/* ==== work queues (RB_OP_QUEUE_*): codec ============================== */

/* The items of a batch: PUSH_BATCH [[payload, delay_ms, dedup_id]...],
 * ACK_BATCH [receipt...]. */
static void e_queue_items(struct enc *e, uint8_t op, const struct rb_queue_req *q)
{
	bool push = op == RB_OP_QUEUE_PUSH_BATCH;
	size_t n = push ? q->items_n : q->receipts_n;
	e_check_array(e, push ? (const void *)q->items : (const void *)q->receipts, n);
	e_arr(e, n);
	for (size_t i = 0; e->err == 0 && i < n; i++) {
		if (!push) {
			e_bin(e, q->receipts[i].receipt, q->receipts[i].receipt_len);
			continue;
		}
		const struct rb_queue_push_item *it = &q->items[i];
		e_arr(e, 3);
		e_bin(e, it->payload, it->payload_len);
		e_int(e, it->delay_ms);
		e_bin(e, it->dedup_id, it->dedup_id_len);
	}
}

/* Every queue op has the same body (unused fields are zero/empty):
 * [queue, payload, delay_ms, dedup_id, consumer, visibility_ms, max_n,
 *  wait_ms, receipt, max_deliveries], and the batch ops one more field,
 * their items (e_queue_items). */
static void e_queue_req(struct enc *e, uint8_t op, const struct rb_queue_req *q)
{
	bool batch = op == RB_OP_QUEUE_PUSH_BATCH || op == RB_OP_QUEUE_ACK_BATCH;
	e_arr(e, batch ? 11 : 10);
	e_bin(e, q->queue, q->queue_len);
	e_bin(e, q->payload, q->payload_len);
	e_int(e, q->delay_ms);
	e_bin(e, q->dedup_id, q->dedup_id_len);
	e_bin(e, q->consumer, q->consumer_len);
	e_int(e, q->visibility_ms);
	e_uint(e, q->max_n);
	e_int(e, q->wait_ms);
	e_bin(e, q->receipt, q->receipt_len);
	e_uint(e, q->max_deliveries);
	if (batch)
		e_queue_items(e, op, q);
}

/* [msgs: [[id, payload, delivery_count, receipt, enqueued_ms,
 *  duplicate]...], duplicate, ready, inflight, delayed, dead,
 *  oldest_ready_enqueued_ms, oldest_ready_age_ms, max_deliveries,
 *  results: [int...]] (a message's duplicate and the results were added
 *  at the end of their arrays: older decoders skip them) */
static void e_queue_resp(struct enc *e, const struct rb_queue_resp *q)
{
	e_check_array(e, q->msgs, q->msgs_n);
	e_check_array(e, q->results, q->results_n);
	e_arr(e, 10);
	e_arr(e, q->msgs_n);
	for (size_t i = 0; e->err == 0 && i < q->msgs_n; i++) {
		const struct rb_queue_msg *m = &q->msgs[i];
		e_arr(e, 6);
		e_bin(e, m->id, m->id_len);
		e_bin(e, m->payload, m->payload_len);
		e_uint(e, m->delivery_count);
		e_bin(e, m->receipt, m->receipt_len);
		e_int(e, m->enqueued_ms);
		e_bool(e, m->duplicate);
	}
	e_bool(e, q->duplicate);
	e_uint(e, q->ready);
	e_uint(e, q->inflight);
	e_uint(e, q->delayed);
	e_uint(e, q->dead);
	e_int(e, q->oldest_ready_enqueued_ms);
	e_int(e, q->oldest_ready_age_ms);
	e_uint(e, q->max_deliveries);
	e_arr(e, q->results_n);
	for (size_t i = 0; e->err == 0 && i < q->results_n; i++)
		e_int(e, q->results[i]);
}


static int r_queue_push_item(struct rd *r, struct rb_queue_push_item *it)
{
	size_t extra;
	if (r_body(r, 3, &extra) || r_bin(r, &it->payload, &it->payload_len) ||
	    r_int(r, &it->delay_ms) || r_bin(r, &it->dedup_id, &it->dedup_id_len))
		return r->err;
	return r_skip_n(r, extra);
}

/* The items of a batch op (counts bounded by the bytes left; the batch
 * limit is the server's business). */
static int r_queue_items(struct rd *r, uint8_t op, struct rb_queue_req *q)
{
	size_t n;
	if (r_array(r, &n))
		return r->err;
	if (op == RB_OP_QUEUE_PUSH_BATCH) {
		struct rb_queue_push_item *v = r_alloc(r, n, sizeof(*v));
		for (size_t i = 0; v && i < n; i++)
			if (r_queue_push_item(r, &v[i]))
				return r->err;
		q->items = v;
		q->items_n = v ? n : 0;
		return r->err;
	}
	struct rb_queue_receipt *v = r_alloc(r, n, sizeof(*v));
	for (size_t i = 0; v && i < n; i++)
		if (r_bin(r, &v[i].receipt, &v[i].receipt_len))
			return r->err;
	q->receipts = v;
	q->receipts_n = v ? n : 0;
	return r->err;
}

/* Counts are 32-bit on the wire; times are int64 (their ranges are the
 * server's business). */
static int r_queue_req(struct rd *r, uint8_t op, struct rb_queue_req *q)
{
	size_t extra;
	uint64_t max_n, max_del;
	bool batch = op == RB_OP_QUEUE_PUSH_BATCH || op == RB_OP_QUEUE_ACK_BATCH;
	if (r_body(r, batch ? 11 : 10, &extra) || r_bin(r, &q->queue, &q->queue_len) ||
	    r_bin(r, &q->payload, &q->payload_len) || r_int(r, &q->delay_ms) ||
	    r_bin(r, &q->dedup_id, &q->dedup_id_len) ||
	    r_bin(r, &q->consumer, &q->consumer_len) ||
	    r_int(r, &q->visibility_ms) || r_small(r, UINT32_MAX, &max_n) ||
	    r_int(r, &q->wait_ms) || r_bin(r, &q->receipt, &q->receipt_len) ||
	    r_small(r, UINT32_MAX, &max_del))
		return r->err;
	q->max_n = (uint32_t)max_n;
	q->max_deliveries = (uint32_t)max_del;
	if (batch && r_queue_items(r, op, q))
		return r->err;
	return r_skip_n(r, extra);
}

static int r_queue_msg(struct rd *r, struct rb_queue_msg *m)
{
	size_t extra;
	uint64_t dc;
	if (r_body(r, 5, &extra) || r_bin(r, &m->id, &m->id_len) ||
	    r_bin(r, &m->payload, &m->payload_len) ||
	    r_small(r, UINT32_MAX, &dc) || r_bin(r, &m->receipt, &m->receipt_len) ||
	    r_int(r, &m->enqueued_ms))
		return r->err;
	m->delivery_count = (uint32_t)dc;
	if (extra > 0) {         /* duplicate: absent from older servers */
		if (r_bool(r, &m->duplicate))
			return r->err;
		extra--;
	}
	return r_skip_n(r, extra);
}

static int r_queue_resp(struct rd *r, struct rb_queue_resp *q)
{
	size_t extra, n;
	uint64_t max_del;
	if (r_body(r, 9, &extra) || r_array(r, &n))
		return r->err;
	struct rb_queue_msg *ms = r_alloc(r, n, sizeof(*ms));
	for (size_t i = 0; ms && i < n; i++)
		if (r_queue_msg(r, &ms[i]))
			return r->err;
	q->msgs = ms;
	q->msgs_n = n;
	if (r_bool(r, &q->duplicate) || r_uint(r, &q->ready) ||
	    r_uint(r, &q->inflight) || r_uint(r, &q->delayed) ||
	    r_uint(r, &q->dead) || r_int(r, &q->oldest_ready_enqueued_ms) ||
	    r_int(r, &q->oldest_ready_age_ms) || r_small(r, UINT32_MAX, &max_del))
		return r->err;
	q->max_deliveries = (uint32_t)max_del;
	if (extra > 0) {         /* results: absent from older servers */
		if (r_array(r, &n))
			return r->err;
		int *v = r_alloc(r, n, sizeof(*v));
		for (size_t i = 0; v && i < n; i++) {
			int64_t x;
			if (r_int(r, &x))
				return r->err;
			/* an rb_err, as the reply's own code: unknown ones are
			 * RB_ERR_UNKNOWN */
			v[i] = x > 0 || x < RB_ERR_MIN ? RB_ERR_UNKNOWN : (int)x;
		}
		q->results = v;
		q->results_n = v ? n : 0;
		if (r->err)
			return r->err;
		extra--;
	}
	return r_skip_n(r, extra);
}

/* ==== end of work queues ============================================== */

static int r_op_body(struct rd *r, struct rb_op *op, unsigned depth)
{
	int64_t a[2];
	switch (op->type) {
	case RB_OP_PUT: return r_put(r, &op->u.put);
	case RB_OP_RANGE: return r_range(r, &op->u.range);
	case RB_OP_DELETE_RANGE: return r_delete(r, &op->u.delete_range);
	case RB_OP_TXN: return r_txn(r, &op->u.txn, depth);
	case RB_OP_COMPACT:
		if (r_ints_body(r, 1, a, &op->u.compact.physical))
			return r->err;
		op->u.compact.revision = a[0];
		return 0;
	case RB_OP_LEASE_GRANT:
		if (r_ints_body(r, 2, a, NULL))
			return r->err;
		op->u.lease_grant.ttl_s = a[0];
		op->u.lease_grant.id = a[1];
		return 0;
	case RB_OP_LEASE_REVOKE:
	case RB_OP_LEASE_KEEPALIVE:
		if (r_ints_body(r, 1, a, NULL))
			return r->err;
		/* both union members are {id} */
		op->u.lease_revoke.id = a[0];
		return 0;
	case RB_OP_LEASE_TIMETOLIVE:
		if (r_ints_body(r, 1, a, &op->u.lease_ttl.keys))
			return r->err;
		op->u.lease_ttl.id = a[0];
		return 0;
	case RB_OP_LEASE_LEASES:
	case RB_OP_MEMBER_LIST:
	case RB_OP_ENDPOINT_STATUS:
	case RB_OP_HEALTH:
		return r_ints_body(r, 0, a, NULL);
	case RB_OP_WATCH:
		return r_watch_req(r, &op->u.watch);
	case RB_OP_PUBLISH:
		return r_publish(r, &op->u.publish);
	default:
		if (queue_op(op->type))
			return r_queue_req(r, op->type, &op->u.queue);
		return R_BAD(r);
	}
}

/* Envelope: [version, req_id, op, ...]; reads the first three. */
static int r_envelope(struct rd *r, size_t min, size_t *extra, uint64_t *id,
	uint8_t *op, uint64_t *version)
{
	uint64_t o;
	if (r_body(r, min, extra) || r_uint(r, version) || r_uint(r, id) ||
	    r_small(r, 255, &o))
		return r->err;
	*op = (uint8_t)o;
	return 0;
}

/* A private copy of the message that decoded pointers point into. */
static int r_start(struct rd *r, const uint8_t *buf, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->mem = rb_mem_new();
	if (r->mem == NULL)
		return RB_ERR_NOMEM;
	uint8_t *copy = rb_mem_alloc(r->mem, len);
	if (copy == NULL) {
		rb_mem_free(r->mem);
		r->mem = NULL;
		return RB_ERR_NOMEM;
	}
	if (len)
		memcpy(copy, buf, len);
	r->p = copy;
	r->end = copy + len;
	return 0;
}

/* What both decoders do before reading: clear the optional outputs (so a
 * caller sees no stale id or op on failure) and refuse bad arguments. */
static int r_args(const uint8_t *buf, size_t len, uint64_t *req_id_out,
	uint8_t *op_out, const void *out)
{
	if (req_id_out)
		*req_id_out = 0;
	if (op_out)
		*op_out = RB_OP_NONE;
	if (out == NULL || (buf == NULL && len))
		return RB_ERR_INVALID;
	return 0;
}

int rb_wire_decode_request(const uint8_t *buf, size_t len,
	uint64_t *req_id_out, uint8_t *op_out, rb_wire_request **out)
{
	struct rd r;
	uint64_t id = 0, version = 0;
	uint8_t op = RB_OP_NONE;
	size_t extra = 0;
	int rc = r_args(buf, len, req_id_out, op_out, out);
	if (rc)
		return rc;
	*out = NULL;
	if (len > RB_MSG_BYTES_MAX)
		return RB_ERR_BAD_REQUEST;
	rc = r_start(&r, buf, len);
	if (rc)
		return rc;
	if (r_envelope(&r, 4, &extra, &id, &op, &version) == 0) {
		if (req_id_out)
			*req_id_out = id;
		if (op_out)
			*op_out = op;
	}
	struct rb_wire_request *req = r_alloc(&r, 1, sizeof(*req));
	if (r.err == 0 && version != RB_WIRE_VERSION)
		R_BAD(&r);
	if (r.err == 0) {
		req->op.type = op;
		r_op_body(&r, &req->op, 1);
		r_skip_n(&r, extra);
	}
	if (r.err == 0 && r.p != r.end)
		R_BAD(&r);
	if (r.err) {
		rc = r.err;
		rb_mem_free(r.mem);
		return rc;
	}
	req->mem = r.mem;
	req->id = id;
	*out = req;
	return 0;
}

uint64_t rb_wire_request_id(const rb_wire_request *r)
{
	return r->id;
}

const struct rb_op *rb_wire_request_op(const rb_wire_request *r)
{
	return &r->op;
}

void rb_wire_request_free(rb_wire_request *r)
{
	if (r)
		rb_mem_free(r->mem);  /* r itself lives in its arena */
}

/* ---- reply bodies ----------------------------------------------------- */

static int r_kv(struct rd *r, struct rb_kv *kv)
{
	size_t extra;
	if (r_body(r, 6, &extra) || r_bin(r, &kv->key, &kv->key_len) ||
	    r_bin(r, &kv->value, &kv->value_len) || r_int(r, &kv->create_revision) ||
	    r_int(r, &kv->mod_revision) || r_int(r, &kv->version) ||
	    r_int(r, &kv->lease))
		return r->err;
	return r_skip_n(r, extra);
}

static int r_kvs(struct rd *r, struct rb_kv **out, size_t *out_n)
{
	size_t n;
	if (r_array(r, &n))
		return r->err;
	struct rb_kv *kvs = r_alloc(r, n, sizeof(*kvs));
	for (size_t i = 0; kvs && i < n; i++)
		if (r_kv(r, &kvs[i]))
			return r->err;
	*out = kvs;
	*out_n = n;
	return r->err;
}

static int r_strs(struct rd *r, const char ***out, size_t *out_n)
{
	size_t n;
	if (r_array(r, &n))
		return r->err;
	const char **s = r_alloc(r, n, sizeof(*s));
	for (size_t i = 0; s && i < n; i++)
		if (r_str(r, &s[i]))
			return r->err;
	*out = s;
	*out_n = n;
	return r->err;
}

static int r_resp_body(struct rd *r, uint8_t op, struct rb_op_resp *b,
	unsigned depth);

static int r_txn_resp(struct rd *r, struct rb_txn_resp *t, unsigned depth)
{
	size_t extra, n;
	if (depth > RB_WIRE_TXN_DEPTH_MAX)
		return R_BAD(r);
	if (r_body(r, 2, &extra) || r_bool(r, &t->succeeded) || r_array(r, &n))
		return r->err;
	struct rb_op_resp *rs = r_alloc(r, n, sizeof(*rs));
	for (size_t i = 0; rs && i < n; i++) {
		size_t ex;
		uint64_t type;
		if (r_body(r, 2, &ex) || r_small(r, 255, &type))
			return r->err;
		if (!branch_op_ok((uint8_t)type))
			return R_BAD(r);
		rs[i].type = (uint8_t)type;
		if (r_resp_body(r, rs[i].type, &rs[i], depth + 1) || r_skip_n(r, ex))
			return r->err;
	}
	t->responses = rs;
	t->responses_n = n;
	return r_skip_n(r, extra);
}

static int r_member(struct rd *r, struct rb_member *m)
{
	size_t extra;
	if (r_body(r, 5, &extra) || r_uint(r, &m->id) || r_str(r, &m->name) ||
	    r_strs(r, &m->peer_urls, &m->peer_urls_n) ||
	    r_strs(r, &m->client_urls, &m->client_urls_n) || r_bool(r, &m->is_learner))
		return r->err;
	return r_skip_n(r, extra);
}

static int r_status(struct rd *r, struct rb_status_resp *s)
{
	size_t extra;
	if (r_body(r, 9, &extra) || r_str(r, &s->version) || r_int(r, &s->db_size) ||
	    r_uint(r, &s->leader) || r_uint(r, &s->raft_index) ||
	    r_uint(r, &s->raft_term) || r_uint(r, &s->raft_applied_index) ||
	    r_strs(r, &s->errors, &s->errors_n) || r_int(r, &s->db_size_in_use) ||
	    r_bool(r, &s->is_learner))
		return r->err;
	return r_skip_n(r, extra);
}

static int r_lease_ttl(struct rd *r, struct rb_lease_ttl_resp *l)
{
	size_t extra, n;
	if (r_body(r, 4, &extra) || r_int(r, &l->id) || r_int(r, &l->ttl_s) ||
	    r_int(r, &l->granted_ttl_s) || r_array(r, &n))
		return r->err;
	struct rb_bytes *keys = r_alloc(r, n, sizeof(*keys));
	for (size_t i = 0; keys && i < n; i++)
		if (r_bin(r, &keys[i].data, &keys[i].len))
			return r->err;
	l->keys = keys;
	l->keys_n = n;
	return r_skip_n(r, extra);
}

static int r_list_body(struct rd *r, uint8_t op, struct rb_op_resp *b)
{
	size_t extra, n;
	if (r_body(r, 1, &extra) || r_array(r, &n))
		return r->err;
	if (op == RB_OP_LEASE_LEASES) {
		rb_lease_id *ids = r_alloc(r, n, sizeof(*ids));
		for (size_t i = 0; ids && i < n; i++)
			if (r_int(r, &ids[i]))
				return r->err;
		b->u.lease_leases.ids = ids;
		b->u.lease_leases.ids_n = n;
	} else {
		struct rb_member *ms = r_alloc(r, n, sizeof(*ms));
		for (size_t i = 0; ms && i < n; i++)
			if (r_member(r, &ms[i]))
				return r->err;
		b->u.member_list.members = ms;
		b->u.member_list.members_n = n;
	}
	return r_skip_n(r, extra);
}

static int r_event(struct rd *r, struct rb_event *ev)
{
	size_t extra;
	uint64_t type;
	if (r_body(r, 3, &extra) || r_small(r, RB_EVENT_DELETE, &type) ||
	    r_kv(r, &ev->kv))
		return r->err;
	ev->type = (uint8_t)type;
	if (!r_nil(r)) {
		ev->has_prev_kv = true;
		if (r_kv(r, &ev->prev_kv))
			return r->err;
	}
	return r_skip_n(r, extra);
}

static int r_watch_result(struct rd *r, struct rb_watch_result *res)
{
	size_t extra, n;
	uint64_t sub;
	int64_t err;
	if (r_body(r, 6, &extra) || r_array(r, &n))
		return r->err;
	struct rb_event *evs = r_alloc(r, n, sizeof(*evs));
	for (size_t i = 0; evs && i < n; i++)
		if (r_event(r, &evs[i]))
			return r->err;
	res->events = evs;
	res->events_n = n;
	if (r_int(r, &res->next_rev) || r_small(r, UINT32_MAX, &sub) ||
	    r_bool(r, &res->canceled) || r_int(r, &err) ||
	    r_int(r, &res->compact_revision))
		return r->err;
	if (err > 0 || err < RB_ERR_MIN)
		err = RB_ERR_UNKNOWN;
	res->err = (int)err;
	res->next_sub = (uint32_t)sub;
	return r_skip_n(r, extra);
}

static int r_watch_resp(struct rd *r, struct rb_watch_resp *w)
{
	size_t extra, n;
	if (r_body(r, 1, &extra) || r_array(r, &n))
		return r->err;
	struct rb_watch_result *res = r_alloc(r, n, sizeof(*res));
	for (size_t i = 0; res && i < n; i++)
		if (r_watch_result(r, &res[i]))
			return r->err;
	w->results = res;
	w->results_n = n;
	return r_skip_n(r, extra);
}

static int r_resp_body(struct rd *r, uint8_t op, struct rb_op_resp *b,
	unsigned depth)
{
	size_t extra;
	int64_t a[2];
	b->type = op;
	switch (op) {
	case RB_OP_PUT:
		if (r_body(r, 1, &extra))
			return r->err;
		if (!r_nil(r)) {
			b->u.put.has_prev_kv = true;
			if (r_kv(r, &b->u.put.prev_kv))
				return r->err;
		}
		return r_skip_n(r, extra);
	case RB_OP_RANGE:
		if (r_body(r, 3, &extra) ||
		    r_kvs(r, &b->u.range.kvs, &b->u.range.kvs_n) ||
		    r_int(r, &b->u.range.count) || r_bool(r, &b->u.range.more))
			return r->err;
		return r_skip_n(r, extra);
	case RB_OP_DELETE_RANGE:
		if (r_body(r, 2, &extra) || r_int(r, &b->u.delete_range.deleted) ||
		    r_kvs(r, &b->u.delete_range.prev_kvs, &b->u.delete_range.prev_kvs_n))
			return r->err;
		return r_skip_n(r, extra);
	case RB_OP_TXN:
		return r_txn_resp(r, &b->u.txn, depth);
	case RB_OP_LEASE_GRANT:
	case RB_OP_LEASE_KEEPALIVE:
		if (r_ints_body(r, 2, a, NULL))
			return r->err;
		if (op == RB_OP_LEASE_GRANT)
			b->u.lease_grant = (struct rb_lease_grant_resp){ a[0], a[1] };
		else
			b->u.lease_keepalive = (struct rb_lease_keepalive_resp){ a[0], a[1] };
		return 0;
	case RB_OP_LEASE_TIMETOLIVE:
		return r_lease_ttl(r, &b->u.lease_ttl);
	case RB_OP_LEASE_LEASES:
	case RB_OP_MEMBER_LIST:
		return r_list_body(r, op, b);
	case RB_OP_ENDPOINT_STATUS:
		return r_status(r, &b->u.status);
	case RB_OP_HEALTH:
		if (r_body(r, 2, &extra) || r_bool(r, &b->u.health.healthy) ||
		    r_str(r, &b->u.health.reason))
			return r->err;
		return r_skip_n(r, extra);
	case RB_OP_COMPACT:
	case RB_OP_LEASE_REVOKE:
		return r_ints_body(r, 0, a, NULL);
	case RB_OP_WATCH:
		return r_watch_resp(r, &b->u.watch);
	case RB_OP_PUBLISH:
		if (r_ints_body(r, 1, a, &b->u.publish.duplicate))
			return r->err;
		b->u.publish.revision = a[0];
		return 0;
	default:
		if (queue_op(op))
			return r_queue_resp(r, &b->u.queue);
		return R_BAD(r);
	}
}

static int r_header(struct rd *r, struct rb_header *h)
{
	size_t extra;
	if (r_body(r, 4, &extra) || r_uint(r, &h->cluster_id) ||
	    r_uint(r, &h->member_id) || r_int(r, &h->revision) ||
	    r_uint(r, &h->raft_term))
		return r->err;
	return r_skip_n(r, extra);
}

static int r_error(struct rd *r, struct rb_resp *out)
{
	size_t extra;
	int64_t code;
	if (r_body(r, 5, &extra) || r_int(r, &code) || r_str(r, &out->msg) ||
	    r_uint(r, &out->leader_id) || r_str(r, &out->leader_url) ||
	    r_int(r, &out->compact_revision))
		return r->err;
	if (code >= 0)
		return R_BAD(r);
	out->err = code < RB_ERR_MIN ? RB_ERR_UNKNOWN : (int)code;
	return r_skip_n(r, extra);
}

int rb_wire_decode_reply(const uint8_t *buf, size_t len, uint64_t *req_id_out,
	uint8_t *op_out, struct rb_resp *out)
{
	struct rd r;
	uint64_t id = 0, version = 0;
	uint8_t op = RB_OP_NONE;
	size_t extra = 0;
	int rc = r_args(buf, len, req_id_out, op_out, out);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	rc = r_start(&r, buf, len);
	if (rc)
		return rc;
	out->msg = "";
	out->leader_url = "";
	out->endpoint = "";
	if (r_envelope(&r, 6, &extra, &id, &op, &version) == 0 &&
	    version != RB_WIRE_VERSION)
		R_BAD(&r);
	if (r_header(&r, &out->header) == 0 && !r_nil(&r))
		r_error(&r, out);
	if (r.err == 0 && out->err == 0)
		r_resp_body(&r, op, &out->body, 1);
	else if (r.err == 0 && !r_nil(&r))
		R_BAD(&r);
	r_skip_n(&r, extra);
	if (r.err == 0 && r.p != r.end)
		R_BAD(&r);
	if (r.err) {
		rc = r.err == RB_ERR_BAD_REQUEST ? RB_ERR_PROTOCOL : r.err;
		rb_mem_free(r.mem);
		memset(out, 0, sizeof(*out));
		return rc;
	}
	out->mem = r.mem;
	if (req_id_out)
		*req_id_out = id;
	if (op_out)
		*op_out = op;
	return 0;
}

int rb_wire_reply_restamp(const uint8_t *buf, size_t len, uint64_t req_id,
	uint8_t **buf_out, size_t *len_out)
{
	if (buf == NULL || buf_out == NULL || len_out == NULL)
		return RB_ERR_INVALID;
	struct rd r = { .p = buf, .end = buf + len };
	size_t n;
	uint64_t version, old_id;
	if (r_array(&r, &n) || n < 6 || r_uint(&r, &version) || r_uint(&r, &old_id))
		return RB_ERR_INVALID;
	size_t head = (size_t)(r.p - buf);   /* through the old req_id */
	msgpack_sbuffer sb;
	struct enc e;
	msgpack_sbuffer_init(&sb);
	e.err = 0;
	msgpack_packer_init(&e.pk, &sb, msgpack_sbuffer_write);
	e_arr(&e, n);
	e_uint(&e, version);
	e_uint(&e, req_id);
	if (e.err == 0 && msgpack_sbuffer_write(&sb, (const char *)r.p, len - head))
		e_fail(&e, RB_ERR_NOMEM);
	return e_finish(&e, &sb, buf_out, len_out);
}
