/*
 * fuzz_request.c - libFuzzer target: the server's decoder of client
 * requests (rb_wire_decode_request), the bytes every client connection
 * hands a member. A request it accepts must encode again and decode to the
 * same op type and id (the codec's round trip).
 */
#include <stdint.h>
#include <stdlib.h>

#include "rb_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rb_wire_request *r = NULL;
	if (rb_wire_decode_request(data, size, NULL, NULL, &r) != 0)
		return 0;
	const struct rb_op *op = rb_wire_request_op(r);
	uint64_t id = rb_wire_request_id(r);
	uint8_t *buf = NULL;
	size_t len = 0;
	if (rb_wire_encode_request(id, op, &buf, &len) == 0) {
		rb_wire_request *again = NULL;
		uint64_t id2 = 0;
		uint8_t op2 = 0;
		if (rb_wire_decode_request(buf, len, &id2, &op2, &again) != 0 ||
		    id2 != id || op2 != op->type)
			abort();   /* what was accepted does not survive a round trip */
		rb_wire_request_free(again);
		free(buf);
	}
	rb_wire_request_free(r);
	return 0;
}
