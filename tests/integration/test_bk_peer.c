/*
 * test_bk_peer.c - the peer wire codec (broker/bk_peer.c): every rl_msg
 * field survives a round trip; any single bit flipped is caught by the
 * checksum; garbage behind a valid checksum (random bytes, bit flips,
 * lying counts) is refused with BK_ERR_DECODE, never a crash or an
 * over-read (run under ASan to see the latter).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bk.h"

static struct rl_msg sample(struct rl_entry *ents, uint8_t *snap)
{
	static uint8_t d1[] = "hello", d2[] = "world!";
	ents[0] = (struct rl_entry){ .term = 3, .index = 10, .type = 0,
	    .data_len = 5, .data = d1 };
	ents[1] = (struct rl_entry){ .term = 3, .index = 11, .type = 1,
	    .data_len = 6, .data = d2 };
	ents[2] = (struct rl_entry){ .term = 4, .index = 12 };
	struct rl_msg m = { .type = RL_MSG_APPEND, .from = 7, .to = 9,
	    .term = 4, .log_term = 2, .index = 9, .commit = 8,
	    .entries_n = 3, .entries = ents, .reject = true,
	    .reject_hint = 55, .conflict_term = 66, .snap_offset = 1234,
	    .snap_len = 4, .snap_data = snap, .snap_done = true,
	    .seq = 77, .transfer = true, .ctx_len = 3 };
	m.snap.index = 100;
	m.snap.term = 5;
	m.snap.conf.voters_n = 2;
	m.snap.conf.voters[0] = 7;
	m.snap.conf.voters[1] = 9;
	m.snap.conf.learners_n = 1;
	m.snap.conf.learners[0] = 11;
	memcpy(m.ctx, "abc", 3);
	return m;
}

/* The sample message encoded (cluster 1) into a malloc'ed *buf. */
static void encode_sample(uint8_t **buf, size_t *len)
{
	struct rl_entry ents[3];
	uint8_t snap[4] = { 1, 2, 3, 4 };
	struct rl_msg m = sample(ents, snap);
	cr_assert_eq(bk_peer_encode_raft(1, &m, buf, len), BK_OK);
}

Test(peer_codec, round_trip_keeps_every_field)
{
	struct rl_entry ents[3];
	uint8_t snap[4] = { 1, 2, 3, 4 };
	struct rl_msg m = sample(ents, snap);
	uint8_t *buf;
	size_t len;
	cr_assert_eq(bk_peer_encode_raft(0xabcdef, &m, &buf, &len), BK_OK);
	struct bk_peer_decoded d;
	cr_assert_eq(bk_peer_decode(buf, len, &d), BK_OK);
	cr_assert_eq(d.kind, BK_PEER_RAFT);
	cr_assert_eq(d.cluster_id, 0xabcdef);
	struct rl_msg *o = &d.msg;
	cr_assert_eq(o->type, m.type);
	cr_assert_eq(o->from, 7);
	cr_assert_eq(o->to, 9);
	cr_assert_eq(o->term, 4);
	cr_assert_eq(o->log_term, 2);
	cr_assert_eq(o->index, 9);
	cr_assert_eq(o->commit, 8);
	cr_assert(o->reject && o->transfer && o->snap_done);
	cr_assert_eq(o->reject_hint, 55);
	cr_assert_eq(o->conflict_term, 66);
	cr_assert_eq(o->snap.index, 100);
	cr_assert_eq(o->snap.term, 5);
	cr_assert_eq(o->snap.conf.voters_n, 2);
	cr_assert_eq(o->snap.conf.voters[1], 9);
	cr_assert_eq(o->snap.conf.learners_n, 1);
	cr_assert_eq(o->snap.conf.learners[0], 11);
	cr_assert_eq(o->snap_offset, 1234);
	cr_assert_eq(o->snap_len, 4);
	cr_assert_eq(memcmp(o->snap_data, snap, 4), 0);
	cr_assert_eq(o->seq, 77);
	cr_assert_eq(o->ctx_len, 3);
	cr_assert_eq(memcmp(o->ctx, "abc", 3), 0);
	cr_assert_eq(o->entries_n, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(o->entries[i].term, ents[i].term);
		cr_assert_eq(o->entries[i].index, ents[i].index);
		cr_assert_eq(o->entries[i].type, ents[i].type);
		cr_assert_eq(o->entries[i].data_len, ents[i].data_len);
		if (ents[i].data_len)
			cr_assert_eq(memcmp(o->entries[i].data, ents[i].data,
			    ents[i].data_len), 0);
	}
	bk_peer_decoded_free(&d);
	free(buf);
}

Test(peer_codec, hello_round_trip)
{
	struct bk_hello h = { .id = 42 };
	strcpy(h.name, "m1");
	strcpy(h.client_url, "tcp://127.0.0.1:5379");
	uint8_t *buf;
	size_t len;
	cr_assert_eq(bk_peer_encode_hello(1, &h, &buf, &len), BK_OK);
	struct bk_peer_decoded d;
	cr_assert_eq(bk_peer_decode(buf, len, &d), BK_OK);
	cr_assert_eq(d.kind, BK_PEER_HELLO);
	cr_assert_eq(d.hello.id, 42);
	cr_assert_str_eq(d.hello.name, "m1");
	cr_assert_str_eq(d.hello.client_url, "tcp://127.0.0.1:5379");
	free(buf);
}

Test(peer_codec, every_truncation_is_refused)
{
	uint8_t *buf;
	size_t len;
	encode_sample(&buf, &len);
	for (size_t n = 0; n < len; n++) {
		/* exact-size copy so that ASan catches any over-read */
		uint8_t *cut = malloc(n ? n : 1);
		memcpy(cut, buf, n);
		struct bk_peer_decoded d;
		cr_assert_eq(bk_peer_decode(cut, n, &d), BK_ERR_DECODE,
		    "truncated at %zu of %zu accepted", n, len);
		free(cut);
	}
	/* trailing bytes too */
	uint8_t *more = malloc(len + 1);
	memcpy(more, buf, len);
	more[len] = 0;
	struct bk_peer_decoded d;
	cr_assert_eq(bk_peer_decode(more, len + 1, &d), BK_ERR_DECODE);
	free(more);
	free(buf);
}

Test(peer_codec, every_single_bit_flip_is_refused)
{
	uint8_t *buf;
	size_t len;
	encode_sample(&buf, &len);
	for (size_t bit = 0; bit < 8 * len; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct bk_peer_decoded d;
		cr_assert_eq(bk_peer_decode(buf, len, &d), BK_ERR_DECODE,
		    "bit %zu of %zu flipped and accepted", bit, 8 * len);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	free(buf);
}

/* Damage that keeps a valid checksum (as if made before it was computed)
 * reaches the field decoders: they refuse it or decode within limits. */
Test(peer_codec, bit_flips_and_random_bytes_never_crash)
{
	uint8_t *buf;
	size_t len;
	encode_sample(&buf, &len);
	uint64_t seed = 12345;
	int accepted = 0;
	for (int iter = 0; iter < 20000; iter++) {
		uint8_t *c = malloc(len);
		memcpy(c, buf, len);
		for (int k = 0; k < 1 + iter % 4; k++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			c[(seed >> 33) % len] ^= (uint8_t)(1u << ((seed >> 20) & 7));
		}
		bk_peer_seal(c, len);
		struct bk_peer_decoded d;
		int rc = bk_peer_decode(c, len, &d);
		cr_assert(rc == BK_OK || rc == BK_ERR_DECODE);
		if (rc == BK_OK) {
			accepted++;
			cr_assert_leq(d.msg.entries_n, BK_PEER_ENTRIES_MAX);
			cr_assert_leq(d.msg.ctx_len, RL_READ_CTX_MAX);
			bk_peer_decoded_free(&d);
		}
		free(c);
	}
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = (size_t)(iter % 300);
		uint8_t *c = malloc(n ? n : 1);
		for (size_t i = 0; i < n; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			c[i] = (uint8_t)(seed >> 56);
		}
		if (n > 1 && iter % 2) {
			c[0] = BK_PEER_WIRE_VERSION;
			c[1] = BK_PEER_RAFT;
		}
		if (iter % 4 < 2)
			bk_peer_seal(c, n);
		struct bk_peer_decoded d;
		int rc = bk_peer_decode(c, n, &d);
		cr_assert(rc == BK_OK || rc == BK_ERR_DECODE);
		if (rc == BK_OK)
			bk_peer_decoded_free(&d);
		free(c);
	}
	free(buf);
	(void)accepted;
}

Test(peer_codec, lying_entry_count_is_refused_without_allocating_it)
{
	struct rl_msg m = { .type = RL_MSG_APPEND, .from = 1, .to = 2 };
	uint8_t *buf;
	size_t len;
	cr_assert_eq(bk_peer_encode_raft(1, &m, &buf, &len), BK_OK);
	/* entries_n sits after version, kind, cluster id, type and 6 u64 */
	size_t at = 1 + 1 + 8 + 1 + 6 * 8;
	buf[at] = 0xff;
	buf[at + 1] = 0xff;
	bk_peer_seal(buf, len);
	struct bk_peer_decoded d;
	cr_assert_eq(bk_peer_decode(buf, len, &d), BK_ERR_DECODE);
	buf[at] = 0;
	buf[at + 1] = 0;
	buf[0] = 99; /* another version */
	bk_peer_seal(buf, len);
	cr_assert_eq(bk_peer_decode(buf, len, &d), BK_ERR_DECODE);
	free(buf);
}
