/*
 * bk_client.c - the client side of the server: a rep0 socket on the client
 * URL with BK_CLIENT_CTX_MAX contexts (one request in flight each), the
 * rb_wire request codec, and the mapping of requests to proposals, reads
 * and status answers.
 *
 * nng callback threads only move a received request into the loop's inbox
 * (no decoding); the loop decodes it. Writes, keep-alives, member lists and
 * error replies are encoded and sent from the loop thread. Reads (range,
 * lease time-to-live, lease list, status) are handed with their decoded
 * request to the reader pool (bk_reader.c), whose threads run the store
 * read and encode and send the reply (bk_client_serve_read): the reply path
 * below (encode, creq_send) therefore touches only the request and the
 * header values it is given, never the loop's state. A request is kept (as
 * its raw nng message) while it waits for commit or for its read index, and
 * decoded again to answer it: this keeps no decoded state alive across
 * turns.
 *
 * Writes on a member that is not the leader are answered "not leader" with
 * the leader's id and client URL (learned from the peers' hello messages);
 * libraftbus retries there invisibly. Linearizable reads work on every
 * member (ReadIndex forwarded to the leader by the Raft core).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bk_int.h"

#include <nng/protocol/reqrep0/rep.h>

/* ---- a tiny arena for conversions --------------------------------------- */

/* Every array a conversion allocates, freed at once. It grows: a valid
 * txn (nested txns, each level within its op budget) can need hundreds of
 * arrays, and running out would answer an applied write with an error. */
struct arena {
	void **ptrs;
	size_t n, cap;
	bool oom;
};

static void *arena_alloc(struct arena *a, size_t n, size_t size)
{
	if (n == 0)
		return NULL;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 32;
		void **ptrs = realloc(a->ptrs, cap * sizeof(*ptrs));
		if (!ptrs) {
			a->oom = true;
			return NULL;
		}
		a->ptrs = ptrs;
		a->cap = cap;
	}
	void *p = calloc(n, size);
	if (!p) {
		a->oom = true;
		return NULL;
	}
	a->ptrs[a->n++] = p;
	return p;
}

static void arena_free(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->ptrs[i]);
	free(a->ptrs);
	*a = (struct arena){ .n = 0 };
}

/* ---- rb_op -> st_op ----------------------------------------------------- */

static void conv_op(struct arena *a, const struct rb_op *in, struct st_op *out);

static void conv_ops(struct arena *a, const struct rb_op *in, size_t n,
    const struct st_op **out)
{
	struct st_op *ops = arena_alloc(a, n, sizeof(*ops));
	for (size_t i = 0; ops && i < n; i++)
		conv_op(a, &in[i], &ops[i]);
	*out = ops;
}

static void conv_txn(struct arena *a, const struct rb_txn *in,
    struct st_txn *out)
{
	struct st_compare *c = arena_alloc(a, in->compares_n, sizeof(*c));
	for (size_t i = 0; c && i < in->compares_n; i++) {
		const struct rb_compare *x = &in->compares[i];
		c[i] = (struct st_compare){ .target = x->target,
		    .result = x->result, .key = x->key, .key_len = x->key_len,
		    .range_end = x->range_end,
		    .range_end_len = x->range_end_len, .number = x->number,
		    .value = x->value, .value_len = x->value_len };
	}
	out->compares = c;
	out->compares_n = in->compares_n;
	conv_ops(a, in->success, in->success_n, &out->success);
	out->success_n = in->success_n;
	conv_ops(a, in->failure, in->failure_n, &out->failure);
	out->failure_n = in->failure_n;
}

static void conv_range(const struct rb_range *x, struct st_range *r)
{
	*r = (struct st_range){ .key = x->key, .key_len = x->key_len,
	    .range_end = x->range_end, .range_end_len = x->range_end_len,
	    .revision = x->revision, .limit = x->limit,
	    .sort_target = x->sort_target, .sort_order = x->sort_order,
	    .keys_only = x->keys_only, .count_only = x->count_only,
	    .min_mod_revision = x->min_mod_revision,
	    .max_mod_revision = x->max_mod_revision,
	    .min_create_revision = x->min_create_revision,
	    .max_create_revision = x->max_create_revision };
}

static void conv_op(struct arena *a, const struct rb_op *in, struct st_op *out)
{
	memset(out, 0, sizeof(*out));
	switch (in->type) {
	case RB_OP_PUT: {
		const struct rb_put *x = &in->u.put;
		out->type = ST_OP_PUT;
		out->u.put = (struct st_put){ .key = x->key,
		    .key_len = x->key_len, .value = x->value,
		    .value_len = x->value_len, .lease = x->lease,
		    .prev_kv = x->prev_kv, .ignore_value = x->ignore_value,
		    .ignore_lease = x->ignore_lease };
		break;
	}
	case RB_OP_RANGE:
		out->type = ST_OP_RANGE;
		conv_range(&in->u.range, &out->u.range);
		break;
	case RB_OP_DELETE_RANGE: {
		const struct rb_delete_range *x = &in->u.delete_range;
		out->type = ST_OP_DELETE_RANGE;
		out->u.delete_range = (struct st_delete_range){ .key = x->key,
		    .key_len = x->key_len, .range_end = x->range_end,
		    .range_end_len = x->range_end_len, .prev_kv = x->prev_kv };
		break;
	}
	case RB_OP_TXN:
		out->type = ST_OP_TXN;
		conv_txn(a, &in->u.txn, &out->u.txn);
		break;
	case RB_OP_COMPACT:
		out->type = ST_OP_COMPACT;
		out->u.compact.revision = in->u.compact.revision;
		break;
	case RB_OP_LEASE_GRANT:
		out->type = ST_OP_LEASE_GRANT;
		out->u.lease_grant.id = in->u.lease_grant.id;
		out->u.lease_grant.ttl_s = in->u.lease_grant.ttl_s;
		break;
	case RB_OP_LEASE_REVOKE:
		out->type = ST_OP_LEASE_REVOKE;
		out->u.lease_revoke.id = in->u.lease_revoke.id;
		break;
	default:
		out->type = ST_OP_TYPE_COUNT; /* refused by the store */
	}
}

/* ---- st_result -> rb_resp ----------------------------------------------- */

static int map_err(int st)
{
	switch (st) {
	case ST_ERR_EMPTY_KEY: return RB_ERR_EMPTY_KEY;
	case ST_ERR_TOO_LARGE: return RB_ERR_TOO_LARGE;
	case ST_ERR_KEY_NOT_FOUND: return RB_ERR_KEY_NOT_FOUND;
	case ST_ERR_LEASE_NOT_FOUND: return RB_ERR_LEASE_NOT_FOUND;
	case ST_ERR_LEASE_EXISTS: return RB_ERR_LEASE_EXISTS;
	case ST_ERR_LEASE_TTL_TOO_LARGE: return RB_ERR_LEASE_TTL_TOO_LARGE;
	case ST_ERR_COMPACTED: return RB_ERR_COMPACTED;
	case ST_ERR_FUTURE_REV: return RB_ERR_FUTURE_REV;
	case ST_ERR_TOO_MANY_OPS: return RB_ERR_TOO_MANY_OPS;
	case ST_ERR_DUPLICATE_KEY: return RB_ERR_DUPLICATE_KEY;
	case ST_ERR_NOSPACE: return RB_ERR_NOSPACE;
	case ST_ERR_TXN_TOO_DEEP: return RB_ERR_INVALID_TXN;
	case ST_ERR_NOMEM:
	case ST_ERR_IO:
	case ST_ERR_DISK_FULL:
	case ST_ERR_CORRUPT: return RB_ERR_INTERNAL;
	default:
		/* every other store error is the request's fault (invalid,
		 * key too long, unknown op, value/lease provided, ...): the
		 * store's etcd text goes with it */
		return RB_ERR_BAD_REQUEST;
	}
}

static void conv_kv(const struct st_kv *in, struct rb_kv *out)
{
	*out = (struct rb_kv){ .key = in->key, .key_len = in->key_len,
	    .value = in->value, .value_len = in->value_len,
	    .create_revision = in->create_revision,
	    .mod_revision = in->mod_revision, .version = in->version,
	    .lease = in->lease };
}

static struct rb_kv *conv_kvs(struct arena *a, const struct st_kv *in,
    size_t n)
{
	struct rb_kv *kvs = arena_alloc(a, n, sizeof(*kvs));
	for (size_t i = 0; kvs && i < n; i++)
		conv_kv(&in[i], &kvs[i]);
	return kvs;
}

static void conv_resp(struct arena *a, const struct st_op_resp *in,
    struct rb_op_resp *out)
{
	memset(out, 0, sizeof(*out));
	out->type = in->type;
	switch (in->type) {
	case ST_RESP_PUT:
		out->u.put.has_prev_kv = in->u.put.has_prev_kv;
		conv_kv(&in->u.put.prev_kv, &out->u.put.prev_kv);
		break;
	case ST_RESP_RANGE:
		out->u.range.kvs = conv_kvs(a, in->u.range.kvs,
		    in->u.range.kvs_n);
		out->u.range.kvs_n = in->u.range.kvs_n;
		out->u.range.count = in->u.range.count;
		out->u.range.more = in->u.range.more;
		break;
	case ST_RESP_DELETE_RANGE:
		out->u.delete_range.deleted = in->u.delete_range.deleted;
		out->u.delete_range.prev_kvs = conv_kvs(a,
		    in->u.delete_range.prev_kvs, in->u.delete_range.prev_kvs_n);
		out->u.delete_range.prev_kvs_n = in->u.delete_range.prev_kvs_n;
		break;
	case ST_RESP_TXN: {
		const struct st_txn_resp *t = &in->u.txn;
		struct rb_op_resp *rs = arena_alloc(a, t->responses_n,
		    sizeof(*rs));
		for (size_t i = 0; rs && i < t->responses_n; i++)
			conv_resp(a, &t->responses[i], &rs[i]);
		out->u.txn.succeeded = t->succeeded;
		out->u.txn.responses = rs;
		out->u.txn.responses_n = t->responses_n;
		break;
	}
	case ST_RESP_LEASE_GRANT:
		out->u.lease_grant.id = in->u.lease_grant.id;
		out->u.lease_grant.ttl_s = in->u.lease_grant.ttl_s;
		break;
	case ST_RESP_COMPACT:
	case ST_RESP_LEASE_REVOKE:
		break;
	default:
		out->type = RB_OP_NONE;
	}
}

/* ---- sending replies ---------------------------------------------------- */

/* The reply sender's thread: nng_ctx_send for the replies the loop made. */
static void *sender_main(void *arg)
{
	struct bk_server *s = arg;
	struct bk_sender *q = &s->sender;
	struct bk_creq *batch[BK_CLIENT_CTX_MAX];
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->n && !q->stop)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->stop)
			break;
		uint32_t n = 0;
		while (q->n) {
			batch[n++] = q->ring[q->head];
			q->head = (q->head + 1) % BK_CLIENT_CTX_MAX;
			q->n--;
		}
		pthread_mutex_unlock(&q->mu);
		for (uint32_t i = 0; i < n; i++)
			nng_ctx_send(batch[i]->ctx, batch[i]->aio);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* Loop thread: hands r (its aio holding the reply) to the sender. */
static void sender_put(struct bk_server *s, struct bk_creq *r)
{
	struct bk_sender *q = &s->sender;
	pthread_mutex_lock(&q->mu);
	/* each context has at most one reply in flight: never full */
	assert(q->n < BK_CLIENT_CTX_MAX);
	q->ring[(q->head + q->n) % BK_CLIENT_CTX_MAX] = r;
	if (q->n++ == 0)
		pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static int sender_start(struct bk_server *s)
{
	struct bk_sender *q = &s->sender;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (pthread_create(&q->thread, NULL, sender_main, s)) {
		pthread_cond_destroy(&q->cv);
		pthread_mutex_destroy(&q->mu);
		return BK_ERR_NOMEM;
	}
	q->started = true;
	return BK_OK;
}

/* Stops the sender; replies it had not sent are dropped (their clients
 * see the connection close, as for requests in flight at stop). */
static void sender_stop(struct bk_server *s)
{
	struct bk_sender *q = &s->sender;
	if (!q->started)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	while (q->n) {
		struct bk_creq *r = q->ring[q->head];
		nng_msg *m = nng_aio_get_msg(r->aio);
		nng_aio_set_msg(r->aio, NULL);
		if (m)
			nng_msg_free(m);
		q->head = (q->head + 1) % BK_CLIENT_CTX_MAX;
		q->n--;
	}
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	q->started = false;
}

/* Any thread; touches only r (the caller's until it is handed to nng or
 * to the sender). The loop sends the first BK_REPLIES_INLINE_MAX replies
 * of a turn itself and hands the rest to the sender thread; a reader sends
 * its own (it is off the loop already). */
void bk_creq_send(struct bk_creq *r, uint8_t *buf, size_t len)
{
	nng_msg *msg = NULL;
	if (r->req) {
		nng_msg_free(r->req);
		r->req = NULL;
	}
	if (!buf || nng_msg_alloc(&msg, 0) || nng_msg_append(msg, buf, len)) {
		free(buf);
		if (msg)
			nng_msg_free(msg);
		/* cannot answer: take the next request; the client times
		 * out */
		r->state = BK_CREQ_RECV;
		nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	free(buf);
	r->state = BK_CREQ_SEND;
	nng_aio_set_msg(r->aio, msg);
	struct bk_server *s = r->s;
	if (s->sender.started && pthread_equal(pthread_self(), s->loop_thread) &&
	    s->sender.inline_n++ >= BK_REPLIES_INLINE_MAX)
		sender_put(s, r);
	else
		nng_ctx_send(r->ctx, r->aio);
}

/* Values for a reply header: from the loop's state (loop_hdr) or from the
 * snapshot a read carries to its reader (read_hdr). */
struct hdr {
	uint64_t cluster_id, member_id;
	st_rev revision;          /* when the reply has no revision of its own */
	rl_term term;
};

static struct hdr loop_hdr(const struct bk_server *s)
{
	return (struct hdr){ .cluster_id = s->cfg.cluster_id,
	    .member_id = s->cfg.member_id, .revision = s->revision,
	    .term = s->term };
}

static struct hdr read_hdr(const struct bk_read *rd)
{
	return (struct hdr){ .cluster_id = rd->cluster_id,
	    .member_id = rd->member_id, .revision = rd->revision,
	    .term = rd->term };
}

static void fill_header(const struct hdr *h, struct rb_resp *resp,
    st_rev revision)
{
	resp->header.cluster_id = h->cluster_id;
	resp->header.member_id = h->member_id;
	resp->header.revision = revision ? revision : h->revision;
	resp->header.raft_term = h->term;
}

/* Any thread (see creq_send). */
static void send_resp(struct bk_creq *r, const struct hdr *h, uint64_t req_id,
    uint8_t op, struct rb_resp *resp, st_rev revision)
{
	fill_header(h, resp, revision);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = rb_wire_encode_reply(req_id, op, resp, &buf, &len);
	if (rc) {
		bk_log(BK_LOG_WARN, "encode reply to op %u: %s", op,
		    rb_strerror(rc));
		struct rb_resp e = { .err = RB_ERR_INTERNAL,
		    .msg = "cannot encode the reply" };
		fill_header(h, &e, revision);
		buf = NULL;
		if (rb_wire_encode_reply(req_id, op, &e, &buf, &len))
			buf = NULL;
	}
	bk_creq_send(r, buf, len);
}

/* Loop thread: a reply with the loop's header. */
void bk_client_send(struct bk_server *s, struct bk_creq *r, uint64_t req_id,
    uint8_t op, struct rb_resp *resp, st_rev revision)
{
	struct hdr h = loop_hdr(s);
	send_resp(r, &h, req_id, op, resp, revision);
}

static const char *leader_url(struct bk_server *s)
{
	for (uint32_t i = 0; i < s->cfg.members_n; i++)
		if (s->cfg.members[i].id == s->leader)
			return s->cfg.members[i].client_url;
	return "";
}

/* Any thread: an error reply without a leader hint. */
static void send_err(struct bk_creq *r, const struct hdr *h, uint64_t req_id,
    uint8_t op, int err, const char *msg, st_rev compact_rev)
{
	struct rb_resp resp = { .err = err, .msg = msg,
	    .compact_revision = compact_rev };
	send_resp(r, h, req_id, op, &resp, 0);
}

/* Loop thread: an error reply; "not leader" carries the hint. */
void bk_client_reply_err(struct bk_server *s, struct bk_creq *r, uint64_t req_id,
    uint8_t op, int err, const char *msg, st_rev compact_rev)
{
	struct rb_resp resp = { .err = err, .msg = msg,
	    .compact_revision = compact_rev };
	if (err == RB_ERR_NOT_LEADER) {
		resp.leader_id = s->leader;
		resp.leader_url = leader_url(s);
	}
	bk_client_send(s, r, req_id, op, &resp, 0);
}

/* The request's id and op from its raw message (decoding again). */
static rb_wire_request *redecode(struct bk_creq *r, uint64_t *id, uint8_t *op)
{
	rb_wire_request *wr = NULL;
	*id = 0;
	*op = RB_OP_NONE;
	if (r->req)
		rb_wire_decode_request(nng_msg_body(r->req),
		    nng_msg_len(r->req), id, op, &wr);
	return wr;
}

void bk_client_reply_error(struct bk_server *s, struct bk_creq *r, int err,
    const char *msg)
{
	uint64_t id;
	uint8_t op;
	rb_wire_request_free(redecode(r, &id, &op));
	bk_client_reply_err(s, r, id, op, err, msg, 0);
}

/* Any thread. */
static void reply_result(struct bk_creq *r, const struct hdr *h, uint64_t id,
    uint8_t op, const struct st_result *res)
{
	if (res->err) {
		send_err(r, h, id, op, map_err(res->err), res->msg,
		    res->compact_revision);
		return;
	}
	struct arena a = { .n = 0 };
	struct rb_resp resp = { 0 };
	conv_resp(&a, &res->resp, &resp.body);
	if (a.oom)
		send_err(r, h, id, op, RB_ERR_INTERNAL, "out of memory", 0);
	else
		send_resp(r, h, id, op, &resp, res->revision);
	arena_free(&a);
}

void bk_client_reply_applied(struct bk_server *s, struct bk_creq *r,
    const struct st_op *op, const struct st_result *res)
{
	(void)op;
	uint64_t id;
	uint8_t rop;
	rb_wire_request_free(redecode(r, &id, &rop));
	if (rop == RB_OP_PUBLISH) {
		bk_publish_reply(s, r, id, res);
		return;
	}
	if (BK_QUEUE_OP(rop)) {
		bk_queue_reply(s, r, id, rop, res);
		return;
	}
	struct hdr h = loop_hdr(s);
	reply_result(r, &h, id, rop, res);
}

/* ---- reads: handed over by the loop, served by a reader ----------------- */

/* Loop thread: hands a read to the pool (which then owns r and wr), or
 * answers "too many requests" when its queue is full. The snapshot of the
 * loop's state the reader needs is taken here. */
static void read_submit(struct bk_server *s, struct bk_creq *r, uint64_t id,
    rb_wire_request *wr)
{
	const struct rb_op *op = rb_wire_request_op(wr);
	struct bk_read rd = { .r = r, .wr = wr, .req_id = id,
	    .cluster_id = s->cfg.cluster_id, .member_id = s->cfg.member_id,
	    .term = s->term, .revision = s->revision, .lease_left_s = -1,
	    .applied = s->applied, .now_ms = bk_now_ms() };
	if (op->type == RB_OP_LEASE_TIMETOLIVE) {
		struct bk_lease *l = bk_lease_find(s, op->u.lease_ttl.id);
		if (l) {
			int64_t left = (l->expiry_ms - s->now_ms + 999) / 1000;
			rd.lease_left_s = left < 0 ? 0 : left;
		}
	}
	if (op->type == RB_OP_ENDPOINT_STATUS || op->type == RB_OP_HEALTH) {
		struct rl_status rs;
		rl_status(s->node, &rs);
		rd.leader = rs.leader;
		rd.raft_index = rs.last_index;
		rd.raft_term = rs.hard_state.term;
	}
	if (bk_reader_submit(s, &rd))
		return;
	uint8_t type = op->type;
	rb_wire_request_free(wr);
	bk_client_reply_err(s, r, id, type, RB_ERR_TIMEOUT,
	    "etcdserver: too many requests", 0);
}

static void serve_range(st_store *st, struct bk_read *rd,
    const struct rb_op *op)
{
	struct hdr h = read_hdr(rd);
	struct st_range q;
	conv_range(&op->u.range, &q);
	struct st_result res = { 0 };
	st_range(st, &q, &res);
	reply_result(rd->r, &h, rd->req_id, op->type, &res);
	st_result_free(&res);
}

void bk_client_answer_read(struct bk_server *s, struct bk_creq *r)
{
	uint64_t id;
	uint8_t opt;
	rb_wire_request *wr = redecode(r, &id, &opt);
	if (!wr) {
		bk_client_reply_err(s, r, id, opt, RB_ERR_BAD_REQUEST, NULL, 0);
		return;
	}
	if (BK_QUEUE_OP(opt)) {
		bk_queue_serve_read(s, r, id, rb_wire_request_op(wr));
		rb_wire_request_free(wr);
		return;
	}
	read_submit(s, r, id, wr);
}

static void serve_lease_ttl(st_store *st, struct bk_read *rd,
    const struct rb_op *op)
{
	struct hdr h = read_hdr(rd);
	struct st_result res = { 0 };
	const struct rb_lease_ttl_req *q = &op->u.lease_ttl;
	struct rb_resp resp = { 0 };
	resp.body.type = RB_OP_LEASE_TIMETOLIVE;
	resp.body.u.lease_ttl.id = q->id;
	if (st_lease_ttl(st, q->id, q->keys, &res)) {
		/* etcd answers a missing lease with TTL -1, not an error */
		resp.body.u.lease_ttl.ttl_s = -1;
		send_resp(rd->r, &h, rd->req_id, op->type, &resp, 0);
		st_result_free(&res);
		return;
	}
	const struct st_lease_ttl_resp *t = &res.resp.u.lease_ttl;
	struct arena a = { .n = 0 };
	struct rb_bytes *keys = arena_alloc(&a, t->keys_n, sizeof(*keys));
	for (size_t i = 0; keys && i < t->keys_n; i++)
		keys[i] = (struct rb_bytes){ t->keys[i].key, t->keys[i].key_len };
	resp.body.u.lease_ttl.ttl_s = rd->lease_left_s >= 0 ?
	    rd->lease_left_s : t->granted_ttl_s;
	resp.body.u.lease_ttl.granted_ttl_s = t->granted_ttl_s;
	resp.body.u.lease_ttl.keys = keys;
	resp.body.u.lease_ttl.keys_n = keys ? t->keys_n : 0;
	send_resp(rd->r, &h, rd->req_id, op->type, &resp, 0);
	arena_free(&a);
	st_result_free(&res);
}

static void serve_leases(st_store *st, struct bk_read *rd,
    const struct rb_op *op)
{
	struct hdr h = read_hdr(rd);
	struct st_result res = { 0 };
	if (st_lease_list(st, &res)) {
		send_err(rd->r, &h, rd->req_id, op->type, map_err(res.err),
		    res.msg, 0);
		st_result_free(&res);
		return;
	}
	const struct st_lease_list_resp *ll = &res.resp.u.lease_list;
	struct arena a = { .n = 0 };
	rb_lease_id *ids = arena_alloc(&a, ll->leases_n, sizeof(*ids));
	for (size_t i = 0; ids && i < ll->leases_n; i++)
		ids[i] = ll->leases[i].id;
	struct rb_resp resp = { 0 };
	resp.body.type = RB_OP_LEASE_LEASES;
	resp.body.u.lease_leases.ids = ids;
	resp.body.u.lease_leases.ids_n = ids ? ll->leases_n : 0;
	send_resp(rd->r, &h, rd->req_id, op->type, &resp, res.revision);
	arena_free(&a);
	st_result_free(&res);
}

static void serve_status(st_store *st, struct bk_read *rd,
    const struct rb_op *op)
{
	struct hdr h = read_hdr(rd);
	struct st_status stt = { 0 };
	st_status(st, &stt);
	struct rb_resp resp = { 0 };
	resp.body.type = op->type;
	if (op->type == RB_OP_HEALTH) {
		resp.body.u.health.healthy = rd->leader != RL_NONE;
		resp.body.u.health.reason = rd->leader ? "" : "no leader";
	} else {
		struct rb_status_resp *sr = &resp.body.u.status;
		sr->version = BK_VERSION;
		sr->db_size = (int64_t)stt.map_bytes;
		sr->db_size_in_use = (int64_t)stt.logical_bytes;
		sr->leader = rd->leader;
		sr->raft_index = rd->raft_index;
		sr->raft_term = rd->raft_term;
		sr->raft_applied_index = rd->applied;
	}
	send_resp(rd->r, &h, rd->req_id, op->type, &resp, stt.revision);
}

void bk_client_serve_read(st_store *st, struct bk_read *rd)
{
	if (rd->watch) {
		bk_watch_serve(st, rd);
		return;
	}
	const struct rb_op *op = rb_wire_request_op(rd->wr);
	if (bk_now_ms() - rd->now_ms > BK_READ_WAIT_MS_MAX) {
		struct hdr h = read_hdr(rd);
		send_err(rd->r, &h, rd->req_id, op->type, RB_ERR_TIMEOUT,
		    "etcdserver: request timed out", 0);
		rb_wire_request_free(rd->wr);
		rd->wr = NULL;
		return;
	}
	switch (op->type) {
	case RB_OP_RANGE:
		serve_range(st, rd, op);
		break;
	case RB_OP_LEASE_TIMETOLIVE:
		serve_lease_ttl(st, rd, op);
		break;
	case RB_OP_LEASE_LEASES:
		serve_leases(st, rd, op);
		break;
	default:
		assert(op->type == RB_OP_ENDPOINT_STATUS ||
		    op->type == RB_OP_HEALTH);
		serve_status(st, rd, op);
	}
	rb_wire_request_free(rd->wr);
	rd->wr = NULL;
}

/* ---- serving requests on the loop --------------------------------------- */

static void serve_keepalive(struct bk_server *s, struct bk_creq *r,
    uint64_t id, const struct rb_op *op)
{
	struct bk_lease *l = bk_lease_find(s, op->u.lease_keepalive.id);
	/* an expired lease is being revoked: too late to renew it */
	if (!l || l->expiry_ms <= s->now_ms) {
		bk_client_reply_err(s, r, id, op->type, RB_ERR_LEASE_NOT_FOUND, NULL, 0);
		return;
	}
	l->expiry_ms = s->now_ms + l->ttl_s * 1000;
	l->revoke_sent_ms = 0;
	struct rb_resp resp = { 0 };
	resp.body.type = RB_OP_LEASE_KEEPALIVE;
	resp.body.u.lease_keepalive.id = l->id;
	resp.body.u.lease_keepalive.ttl_s = l->ttl_s;
	bk_client_send(s, r, id, op->type, &resp, 0);
}

/* The member list stays on the loop: client URLs change with hellos. */
static void serve_members(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct rb_op *op)
{
	struct rb_member ms[BK_MEMBERS_MAX];
	const char *purls[BK_MEMBERS_MAX], *curls[BK_MEMBERS_MAX];
	for (uint32_t i = 0; i < s->cfg.members_n; i++) {
		struct bk_member *m = &s->cfg.members[i];
		purls[i] = m->peer_url;
		curls[i] = m->client_url;
		ms[i] = (struct rb_member){ .id = m->id, .name = m->name,
		    .peer_urls = &purls[i], .peer_urls_n = 1,
		    .client_urls = &curls[i],
		    .client_urls_n = m->client_url[0] ? 1 : 0 };
	}
	struct rb_resp resp = { 0 };
	resp.body.type = RB_OP_MEMBER_LIST;
	resp.body.u.member_list.members = ms;
	resp.body.u.member_list.members_n = s->cfg.members_n;
	bk_client_send(s, r, id, op->type, &resp, 0);
}

/* Writes: converted to a store op and proposed. */
static void serve_write(struct bk_server *s, struct bk_creq *r, uint64_t id,
    const struct rb_op *op)
{
	struct arena a = { .n = 0 };
	struct st_op sop;
	conv_op(&a, op, &sop);
	if (sop.type == ST_OP_LEASE_GRANT &&
	    sop.u.lease_grant.ttl_s < bk_lease_min_ttl_s(s))
		sop.u.lease_grant.ttl_s = bk_lease_min_ttl_s(s);
	int rc = a.oom ? RB_ERR_INTERNAL : bk_propose_op(s, r, &sop);
	arena_free(&a);
	if (rc)
		bk_client_reply_err(s, r, id, op->type, rc, rc == RB_ERR_TIMEOUT ?
		    "etcdserver: too many requests" : NULL, 0);
}

/* Answers, proposes or queues the request; returns true when it kept wr
 * (handed to the reader pool with r). */
static bool dispatch(struct bk_server *s, struct bk_creq *r, uint64_t id,
    rb_wire_request *wr)
{
	const struct rb_op *op = rb_wire_request_op(wr);
	int nl = s->leader ? RB_ERR_NOT_LEADER : RB_ERR_NO_LEADER;
	switch (op->type) {
	case RB_OP_RANGE:
		if (op->u.range.serializable) {
			read_submit(s, r, id, wr);
			return true;
		}
		r->next = s->reads_new;
		s->reads_new = r;
		return false;
	case RB_OP_LEASE_KEEPALIVE:
	case RB_OP_LEASE_TIMETOLIVE:
		if (s->role != RL_LEADER) {
			bk_client_reply_err(s, r, id, op->type, nl, NULL, 0);
			return false;
		}
		if (op->type == RB_OP_LEASE_KEEPALIVE) {
			serve_keepalive(s, r, id, op);
			return false;
		}
		read_submit(s, r, id, wr);
		return true;
	case RB_OP_LEASE_LEASES:
	case RB_OP_ENDPOINT_STATUS:
	case RB_OP_HEALTH:
		read_submit(s, r, id, wr);
		return true;
	case RB_OP_MEMBER_LIST:
		serve_members(s, r, id, op);
		return false;
	case RB_OP_WATCH:
		return bk_watch_handle(s, r, id, wr);
	case RB_OP_PUBLISH:
		bk_publish_handle(s, r, id, op);
		return false;
	default:
		if (BK_QUEUE_OP(op->type))
			return bk_queue_handle(s, r, id, wr);
		serve_write(s, r, id, op);
		return false;
	}
}

void bk_client_handle(struct bk_server *s, struct bk_creq *r)
{
	r->deadline_ms = s->now_ms + BK_REQUEST_TIMEOUT_MS;
	r->read_seq = 0;
	r->read_ready = false;
	uint64_t id;
	uint8_t op;
	rb_wire_request *wr = redecode(r, &id, &op);
	if (nng_msg_len(r->req) > (size_t)s->cfg.max_request_bytes +
	    BK_REQUEST_OVERHEAD_BYTES) {
		rb_wire_request_free(wr);
		bk_client_reply_err(s, r, id, op, RB_ERR_TOO_LARGE, NULL, 0);
		return;
	}
	if (!wr) {
		bk_client_reply_err(s, r, id, op, RB_ERR_BAD_REQUEST,
		    "malformed request", 0);
		return;
	}
	if (!dispatch(s, r, id, wr))
		rb_wire_request_free(wr);
}

/* ---- the socket --------------------------------------------------------- */

static void creq_cb(void *arg)
{
	struct bk_creq *r = arg;
	struct bk_server *s = r->s;
	int rv = nng_aio_result(r->aio);
	if (r->state == BK_CREQ_SEND) {
		if (rv) {
			nng_msg *m = nng_aio_get_msg(r->aio);
			if (m)
				nng_msg_free(m);
		}
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		r->state = BK_CREQ_RECV;
		nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv) {
		nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	pthread_mutex_lock(&s->mu);
	if (s->stopping) {
		pthread_mutex_unlock(&s->mu);
		nng_msg_free(nng_aio_get_msg(r->aio));
		return;
	}
	r->req = nng_aio_get_msg(r->aio);
	r->state = BK_CREQ_LOOP;
	r->next = NULL;
	if (s->client_tail)
		s->client_tail->next = r;
	else
		s->client_head = r;
	s->client_tail = r;
	pthread_mutex_unlock(&s->mu);
	bk_wake(s);
}

int bk_client_open(struct bk_server *s)
{
	size_t maxsz = 2 * ((size_t)s->cfg.max_request_bytes +
	    BK_REQUEST_OVERHEAD_BYTES);
	int rv = nng_rep0_open(&s->client_sock);
	if (rv == 0)
		rv = nng_socket_set_size(s->client_sock, NNG_OPT_RECVMAXSZ,
		    maxsz);
	if (rv == 0)
		rv = bk_listen_all(s->client_sock, s->cfg.listen_client_url);
	if (rv) {
		bk_log(BK_LOG_ERROR, "listen on client URL %s: %s",
		    s->cfg.listen_client_url, nng_strerror(rv));
		return BK_ERR_NET;
	}
	if (sender_start(s))
		return BK_ERR_NOMEM;
	for (uint32_t i = 0; i < BK_CLIENT_CTX_MAX; i++) {
		struct bk_creq *r = calloc(1, sizeof(*r));
		if (!r)
			return BK_ERR_NOMEM;
		r->s = s;
		if ((rv = nng_aio_alloc(&r->aio, creq_cb, r))) {
			free(r);
			return BK_ERR_NOMEM;
		}
		if ((rv = nng_ctx_open(&r->ctx, s->client_sock))) {
			nng_aio_free(r->aio);
			free(r);
			return BK_ERR_NET;
		}
		s->creqs[s->creqs_n++] = r;
		nng_ctx_recv(r->ctx, r->aio);
	}
	return BK_OK;
}

void bk_client_close(struct bk_server *s)
{
	sender_stop(s);
	for (uint32_t i = 0; i < s->creqs_n; i++)
		nng_aio_stop(s->creqs[i]->aio);
	for (uint32_t i = 0; i < s->creqs_n; i++) {
		struct bk_creq *r = s->creqs[i];
		nng_ctx_close(r->ctx);
		if (r->req)
			nng_msg_free(r->req);
		nng_aio_free(r->aio);
		free(r);
	}
	s->creqs_n = 0;
	if (nng_socket_id(s->client_sock) > 0)
		nng_close(s->client_sock);
}
