/*
 * bk_peer.c - the peer wire format: one struct rl_msg (or a member "hello")
 * per nng message, in a fixed little-endian binary layout.
 *
 *   u8 version (BK_PEER_WIRE_VERSION) | u8 kind | u64 cluster_id | body
 *   RAFT body: u8 type | u64 from,to,term,log_term,index,commit |
 *     u32 entries_n | u8 reject | u64 reject_hint, conflict_term |
 *     u64 snap.index, snap.term | u32 voters_n, u64 voters[] |
 *     u32 learners_n, u64 learners[] | u64 snap_offset | u32 snap_len |
 *     u8 snap_done | u64 seq | u8 transfer | u32 ctx_len, ctx[] |
 *     entries: (u64 term, u64 index, u8 type, u32 len, data[])* |
 *     snap_data[snap_len]
 *   HELLO body: u64 id | u16 len, name | u16 len, client_url
 *   then: u32 CRC-32C of every byte before it
 *
 * The checksum covers what TCP's 16-bit one does not: entries and snapshot
 * chunks damaged on the way (a bad NIC, a buggy proxy) are refused before
 * anything is decoded, and Raft sends them again. Every field is then
 * decoded through a bounds-checked cursor: garbage from the network gives
 * BK_ERR_DECODE, never an out-of-bounds read or an assert.
 */
#include <stdlib.h>
#include <string.h>

#include "bk.h"
#include "crc32c.h"

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static void w_bytes(struct wbuf *w, const void *src, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *p = realloc(w->p, cap);
		if (!p) {
			w->oom = true;
			return;
		}
		w->p = p;
		w->cap = cap;
	}
	if (n)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void w_u64(struct wbuf *w, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	w_bytes(w, b, 8);
}

static void w_u32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4];
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	w_bytes(w, b, 4);
}

static void w_u16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	w_bytes(w, b, 2);
}

static void w_u8(struct wbuf *w, uint8_t v)
{
	w_bytes(w, &v, 1);
}

void bk_peer_seal(uint8_t *msg, size_t len)
{
	if (len < BK_PEER_CRC_BYTES)
		return;
	size_t at = len - BK_PEER_CRC_BYTES;
	uint32_t crc = rl_crc32c(0, msg, at);
	for (size_t i = 0; i < BK_PEER_CRC_BYTES; i++)
		msg[at + i] = (uint8_t)(crc >> (8 * i));
}

static int w_finish(struct wbuf *w, uint8_t **out, size_t *out_len)
{
	w_u32(w, 0);   /* the checksum's place */
	if (!w->oom)
		bk_peer_seal(w->p, w->len);
	if (w->oom) {
		free(w->p);
		return BK_ERR_NOMEM;
	}
	if (w->len > BK_PEER_MSG_BYTES_MAX) {
		free(w->p);
		return BK_ERR_DECODE;
	}
	*out = w->p;
	*out_len = w->len;
	return BK_OK;
}

static void w_conf(struct wbuf *w, const struct rl_conf_state *c)
{
	w_u32(w, c->voters_n);
	for (uint32_t i = 0; i < c->voters_n && i < RL_MEMBERS_MAX; i++)
		w_u64(w, c->voters[i]);
	w_u32(w, c->learners_n);
	for (uint32_t i = 0; i < c->learners_n && i < RL_MEMBERS_MAX; i++)
		w_u64(w, c->learners[i]);
}

int bk_peer_encode_raft(uint64_t cluster_id, const struct rl_msg *m,
    uint8_t **out, size_t *out_len)
{
	struct wbuf w = { 0 };
	w_u8(&w, BK_PEER_WIRE_VERSION);
	w_u8(&w, BK_PEER_RAFT);
	w_u64(&w, cluster_id);
	w_u8(&w, m->type);
	w_u64(&w, m->from);
	w_u64(&w, m->to);
	w_u64(&w, m->term);
	w_u64(&w, m->log_term);
	w_u64(&w, m->index);
	w_u64(&w, m->commit);
	w_u32(&w, m->entries_n);
	w_u8(&w, m->reject);
	w_u64(&w, m->reject_hint);
	w_u64(&w, m->conflict_term);
	w_u64(&w, m->snap.index);
	w_u64(&w, m->snap.term);
	w_conf(&w, &m->snap.conf);
	w_u64(&w, m->snap_offset);
	w_u32(&w, m->snap_data ? m->snap_len : 0);
	w_u8(&w, m->snap_done);
	w_u64(&w, m->seq);
	w_u8(&w, m->transfer);
	uint32_t ctx_len = m->ctx_len > RL_READ_CTX_MAX ? RL_READ_CTX_MAX
	    : m->ctx_len;
	w_u32(&w, ctx_len);
	w_bytes(&w, m->ctx, ctx_len);
	for (uint32_t i = 0; i < m->entries_n; i++) {
		const struct rl_entry *e = &m->entries[i];
		w_u64(&w, e->term);
		w_u64(&w, e->index);
		w_u8(&w, e->type);
		w_u32(&w, e->data_len);
		w_bytes(&w, e->data, e->data_len);
	}
	if (m->snap_data)
		w_bytes(&w, m->snap_data, m->snap_len);
	return w_finish(&w, out, out_len);
}

int bk_peer_encode_hello(uint64_t cluster_id, const struct bk_hello *h,
    uint8_t **out, size_t *out_len)
{
	struct wbuf w = { 0 };
	w_u8(&w, BK_PEER_WIRE_VERSION);
	w_u8(&w, BK_PEER_HELLO);
	w_u64(&w, cluster_id);
	w_u64(&w, h->id);
	size_t n = strnlen(h->name, sizeof(h->name) - 1);
	w_u16(&w, (uint16_t)n);
	w_bytes(&w, h->name, n);
	n = strnlen(h->client_url, sizeof(h->client_url) - 1);
	w_u16(&w, (uint16_t)n);
	w_bytes(&w, h->client_url, n);
	return w_finish(&w, out, out_len);
}

/* ---- decoding ----------------------------------------------------------- */

struct rbuf {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static const uint8_t *r_bytes(struct rbuf *r, size_t n)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

static uint64_t r_uint(struct rbuf *r, int bytes)
{
	const uint8_t *b = r_bytes(r, (size_t)bytes);
	uint64_t v = 0;
	for (int i = 0; b && i < bytes; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static bool r_bool(struct rbuf *r)
{
	uint64_t v = r_uint(r, 1);
	if (v > 1)
		r->bad = true;
	return v == 1;
}

static void r_conf(struct rbuf *r, struct rl_conf_state *c)
{
	c->voters_n = (uint32_t)r_uint(r, 4);
	if (c->voters_n > RL_MEMBERS_MAX) {
		r->bad = true;
		return;
	}
	for (uint32_t i = 0; i < c->voters_n; i++)
		c->voters[i] = r_uint(r, 8);
	c->learners_n = (uint32_t)r_uint(r, 4);
	if (c->learners_n > RL_MEMBERS_MAX) {
		r->bad = true;
		return;
	}
	for (uint32_t i = 0; i < c->learners_n; i++)
		c->learners[i] = r_uint(r, 8);
}

static void r_header(struct rbuf *r, struct rl_msg *m)
{
	m->type = (uint8_t)r_uint(r, 1);
	m->from = r_uint(r, 8);
	m->to = r_uint(r, 8);
	m->term = r_uint(r, 8);
	m->log_term = r_uint(r, 8);
	m->index = r_uint(r, 8);
	m->commit = r_uint(r, 8);
	m->entries_n = (uint32_t)r_uint(r, 4);
	m->reject = r_bool(r);
	m->reject_hint = r_uint(r, 8);
	m->conflict_term = r_uint(r, 8);
	m->snap.index = r_uint(r, 8);
	m->snap.term = r_uint(r, 8);
	r_conf(r, &m->snap.conf);
	m->snap_offset = r_uint(r, 8);
	m->snap_len = (uint32_t)r_uint(r, 4);
	m->snap_done = r_bool(r);
	m->seq = r_uint(r, 8);
	m->transfer = r_bool(r);
	m->ctx_len = (uint32_t)r_uint(r, 4);
	if (m->ctx_len > RL_READ_CTX_MAX || m->type == 0 ||
	    m->type > RL_MSG_TYPE_MAX || m->entries_n > BK_PEER_ENTRIES_MAX ||
	    m->snap_len > RL_SNAPSHOT_CHUNK_BYTES_MAX) {
		r->bad = true;
		return;
	}
	const uint8_t *ctx = r_bytes(r, m->ctx_len);
	if (ctx && m->ctx_len)
		memcpy(m->ctx, ctx, m->ctx_len);
}

static int decode_raft(struct rbuf *r, struct rl_msg *m)
{
	r_header(r, m);
	if (r->bad)
		return BK_ERR_DECODE;
	/* Each entry needs at least its 21-byte header: refuse a count the
	 * buffer cannot hold before allocating for it. */
	if ((uint64_t)m->entries_n * 21u > r->len - r->off)
		return BK_ERR_DECODE;
	if (m->entries_n) {
		m->entries = calloc(m->entries_n, sizeof(*m->entries));
		if (!m->entries)
			return BK_ERR_NOMEM;
	}
	for (uint32_t i = 0; i < m->entries_n && !r->bad; i++) {
		struct rl_entry *e = &m->entries[i];
		e->term = r_uint(r, 8);
		e->index = r_uint(r, 8);
		e->type = (uint8_t)r_uint(r, 1);
		e->data_len = (uint32_t)r_uint(r, 4);
		if (e->data_len > RL_ENTRY_DATA_MAX) {
			r->bad = true;
			break;
		}
		e->data = (uint8_t *)r_bytes(r, e->data_len);
		if (e->data_len == 0)
			e->data = NULL;
	}
	if (m->snap_len)
		m->snap_data = r_bytes(r, m->snap_len);
	if (r->bad || r->off != r->len) {
		free(m->entries);
		m->entries = NULL;
		return BK_ERR_DECODE;
	}
	return BK_OK;
}

static void r_str(struct rbuf *r, char *dst, size_t cap)
{
	size_t n = (size_t)r_uint(r, 2);
	const uint8_t *s = n < cap ? r_bytes(r, n) : NULL;
	if (!s) {
		r->bad = true;
		return;
	}
	if (memchr(s, 0, n)) {
		r->bad = true;
		return;
	}
	memcpy(dst, s, n);
	dst[n] = 0;
}

int bk_peer_decode(const uint8_t *buf, size_t len, struct bk_peer_decoded *out)
{
	memset(out, 0, sizeof(*out));
	if (!buf || len < BK_PEER_CRC_BYTES || len > BK_PEER_MSG_BYTES_MAX)
		return BK_ERR_DECODE;
	struct rbuf r = { .p = buf + len - BK_PEER_CRC_BYTES,
	    .len = BK_PEER_CRC_BYTES };
	if (r_uint(&r, 4) != rl_crc32c(0, buf, len - BK_PEER_CRC_BYTES))
		return BK_ERR_DECODE;
	r = (struct rbuf){ .p = buf, .len = len - BK_PEER_CRC_BYTES };
	if (r_uint(&r, 1) != BK_PEER_WIRE_VERSION)
		return BK_ERR_DECODE;
	out->kind = (uint8_t)r_uint(&r, 1);
	out->cluster_id = r_uint(&r, 8);
	if (r.bad)
		return BK_ERR_DECODE;
	if (out->kind == BK_PEER_RAFT)
		return decode_raft(&r, &out->msg);
	if (out->kind != BK_PEER_HELLO)
		return BK_ERR_DECODE;
	out->hello.id = r_uint(&r, 8);
	r_str(&r, out->hello.name, sizeof(out->hello.name));
	r_str(&r, out->hello.client_url, sizeof(out->hello.client_url));
	if (r.bad || r.off != r.len)
		return BK_ERR_DECODE;
	return BK_OK;
}

void bk_peer_decoded_free(struct bk_peer_decoded *d)
{
	if (!d)
		return;
	free(d->msg.entries);
	d->msg.entries = NULL;
}
