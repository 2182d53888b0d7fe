/*
 * fuzz_peer.c - libFuzzer target: the members' decoder of peer messages
 * (bk_peer_decode: Raft messages and hellos), the bytes every peer
 * connection hands a member, behind their checksum. Every entry it accepts
 * lies inside the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input is the message without its checksum: the target seals it, so
 * that the field decoders behind the checksum check are what is fuzzed
 * (fuzz_seeds writes its peer seeds without the checksum likewise). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > BK_PEER_MSG_BYTES_MAX - BK_PEER_CRC_BYTES)
		return 0;
	size_t len = size + BK_PEER_CRC_BYTES;
	uint8_t *msg = malloc(len);
	if (!msg)
		return 0;
	if (size)
		memcpy(msg, data, size);
	bk_peer_seal(msg, len);
	struct bk_peer_decoded d;
	if (bk_peer_decode(msg, len, &d) == 0) {
		if (d.kind == BK_PEER_RAFT)
			for (size_t i = 0; i < d.msg.entries_n; i++) {
				const struct rl_entry *e = &d.msg.entries[i];
				if (e->data_len && (e->data < msg ||
				    e->data + e->data_len > msg + len))
					abort();   /* an entry outside the message */
			}
		bk_peer_decoded_free(&d);
	}
	free(msg);
	return 0;
}
