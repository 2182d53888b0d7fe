/*
 * fuzz_peer.c - libFuzzer target: the members' decoder of peer messages
 * (bk_peer_decode: Raft messages and hellos), the bytes every peer
 * connection hands a member. Every entry it accepts lies inside the input.
 */
#include <stdint.h>
#include <stdlib.h>

#include "bk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bk_peer_decoded d;
	if (bk_peer_decode(data, size, &d) != 0)
		return 0;
	if (d.kind == BK_PEER_RAFT)
		for (size_t i = 0; i < d.msg.entries_n; i++) {
			const struct rl_entry *e = &d.msg.entries[i];
			if (e->data_len && (e->data < data ||
			    e->data + e->data_len > data + size))
				abort();   /* an entry outside the message */
		}
	bk_peer_decoded_free(&d);
	return 0;
}
