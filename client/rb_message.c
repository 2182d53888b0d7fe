/*
 * rb_message.c - the pub/sub message envelope (docs/pubsub.md), shared by
 * the server, which writes it when it appends a message, and libraftbus,
 * which reads it for subscribers:
 *   [1, publish_time_ms, [[header key, header value]...], payload]
 * with byte strings as msgpack bin. Decoding is a small bounds-checked
 * reader (a value under a topic may be anything a client put there), and
 * allocates nothing: the headers land in the fixed array of rb_message.
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "raftbus.h"

static int pk_bin(msgpack_packer *pk, const uint8_t *p, size_t n)
{
	if (msgpack_pack_bin(pk, n) != 0)
		return -1;
	return n ? msgpack_pack_bin_body(pk, p, n) : 0;
}

int rb_message_encode(int64_t publish_time_ms, const struct rb_header_kv *headers,
	size_t headers_n, const uint8_t *payload, size_t payload_len,
	uint8_t **out, size_t *out_len)
{
	if (headers_n > RB_MESSAGE_HEADERS_MAX || (headers_n && !headers) ||
	    (payload_len && !payload))
		return RB_ERR_INVALID;
	for (size_t i = 0; i < headers_n; i++)
		if ((headers[i].key_len && !headers[i].key) ||
		    (headers[i].value_len && !headers[i].value))
			return RB_ERR_INVALID;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int bad = msgpack_pack_array(&pk, 4) ||
		msgpack_pack_int(&pk, RB_MESSAGE_VERSION) ||
		msgpack_pack_int64(&pk, publish_time_ms) ||
		msgpack_pack_array(&pk, headers_n);
	for (size_t i = 0; !bad && i < headers_n; i++)
		bad = msgpack_pack_array(&pk, 2) ||
			pk_bin(&pk, headers[i].key, headers[i].key_len) ||
			pk_bin(&pk, headers[i].value, headers[i].value_len);
	if (!bad)
		bad = pk_bin(&pk, payload, payload_len);
	if (bad) {
		msgpack_sbuffer_destroy(&sb);
		return RB_ERR_NOMEM;
	}
	*out = (uint8_t *)sb.data;    /* sbuffer memory is malloc'ed */
	*out_len = sb.size;
	if (*out == NULL) {           /* cannot happen: 4 bytes at least */
		*out = malloc(1);
		if (*out == NULL)
			return RB_ERR_NOMEM;
	}
	return RB_OK;
}

/* ---- decode ------------------------------------------------------------- */

struct mrd {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Takes n bytes; NULL (and bad) when fewer are left. */
static const uint8_t *take(struct mrd *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *q = r->p;
	r->p += n;
	return q;
}

static size_t rd_array(struct mrd *r)
{
	const uint8_t *t = take(r, 1);
	if (!t)
		return 0;
	if ((*t & 0xf0) == 0x90)
		return *t & 0x0f;
	unsigned n = *t == 0xdc ? 2 : *t == 0xdd ? 4 : 0;
	const uint8_t *q = n ? take(r, n) : NULL;
	if (!q) {
		r->bad = true;
		return 0;
	}
	return (size_t)be(q, n);
}

static int64_t rd_int(struct mrd *r)
{
	const uint8_t *t = take(r, 1);
	if (!t)
		return 0;
	if (*t <= 0x7f)
		return *t;
	if (*t >= 0xe0)
		return (int8_t)*t;
	static const unsigned sizes[8] = { 1, 2, 4, 8, 1, 2, 4, 8 };
	if (*t < 0xcc || *t > 0xd3) {
		r->bad = true;
		return 0;
	}
	unsigned k = *t - 0xcc, n = sizes[k];
	const uint8_t *q = take(r, n);
	if (!q)
		return 0;
	uint64_t v = be(q, n);
	if (k < 4)                   /* unsigned: must fit int64 */
		return v > INT64_MAX ? (r->bad = true, 0) : (int64_t)v;
	if (n < 8 && (v >> (n * 8 - 1)) & 1)   /* sign-extend */
		v |= ~0ull << (n * 8);
	return (int64_t)v;
}

/* bin (or str, for leniency) */
static const uint8_t *rd_bytes(struct mrd *r, size_t *len)
{
	const uint8_t *t = take(r, 1);
	*len = 0;
	if (!t)
		return NULL;
	unsigned n;
	if ((*t & 0xe0) == 0xa0) {
		*len = *t & 0x1f;
		n = 0;
	} else if (*t == 0xc4 || *t == 0xd9) {
		n = 1;
	} else if (*t == 0xc5 || *t == 0xda) {
		n = 2;
	} else if (*t == 0xc6 || *t == 0xdb) {
		n = 4;
	} else {
		r->bad = true;
		return NULL;
	}
	if (n) {
		const uint8_t *q = take(r, n);
		if (!q)
			return NULL;
		*len = (size_t)be(q, n);
	}
	return take(r, *len);
}

int rb_message_decode(const struct rb_kv *kv, struct rb_message *m)
{
	struct mrd r = { .p = kv->value, .end = kv->value + kv->value_len };
	memset(m, 0, sizeof(*m));
	if (kv->value == NULL || rd_array(&r) != 4 || r.bad ||
	    rd_int(&r) != RB_MESSAGE_VERSION || r.bad)
		return RB_ERR_PROTOCOL;
	m->publish_time_ms = rd_int(&r);
	size_t n = rd_array(&r);
	if (r.bad || n > RB_MESSAGE_HEADERS_MAX)
		return RB_ERR_PROTOCOL;
	for (size_t i = 0; i < n && !r.bad; i++) {
		struct rb_header_kv *h = &m->headers[i];
		if (rd_array(&r) != 2)
			r.bad = true;
		h->key = rd_bytes(&r, &h->key_len);
		h->value = rd_bytes(&r, &h->value_len);
	}
	m->headers_n = n;
	m->payload = rd_bytes(&r, &m->payload_len);
	if (r.bad || r.p != r.end) {
		memset(m, 0, sizeof(*m));
		return RB_ERR_PROTOCOL;
	}
	m->revision = kv->mod_revision;
	m->key = kv->key;
	m->key_len = kv->key_len;
	return RB_OK;
}

bool rb_message_key_of(const uint8_t *topic, size_t topic_len,
	const uint8_t *key, size_t key_len)
{
	if (key_len != topic_len + RB_MESSAGE_REV_DIGITS ||
	    memcmp(key, topic, topic_len) != 0)
		return false;
	for (size_t i = topic_len; i < key_len; i++)
		if (key[i] < '0' || key[i] > '9')
			return false;
	return true;
}

bool rb_topic_valid(const uint8_t *topic, size_t topic_len)
{
	if (topic == NULL || topic_len == 0 || topic_len > RB_TOPIC_BYTES_MAX ||
	    topic[topic_len - 1] != '/')
		return false;
	for (size_t i = 0; i < topic_len; i++)
		if ((i == 0 || topic[i - 1] == '/') && topic[i] >= '0' &&
		    topic[i] <= '9')
			return false;
	return true;
}
