/*
 * fuzz_reply.c - libFuzzer target: libraftbus's decoder of replies
 * (rb_wire_decode_reply), the bytes a client takes from any member.
 */
#include <stdint.h>
#include <string.h>

#include "rb_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rb_resp resp;
	memset(&resp, 0, sizeof(resp));
	uint64_t id;
	uint8_t op;
	(void)rb_wire_decode_reply(data, size, &id, &op, &resp);
	rb_resp_free(&resp);
	return 0;
}
