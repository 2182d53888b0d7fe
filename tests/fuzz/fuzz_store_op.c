/*
 * fuzz_store_op.c - libFuzzer target: the store's decoder of log entries
 * (st_op_decode), the bytes a follower applies from its leader's log. An
 * op it accepts must encode again.
 */
#include <stdint.h>
#include <stdlib.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	st_decoded *d = NULL;
	if (st_op_decode(data, size, &d) != 0)
		return 0;
	uint8_t *buf = NULL;
	size_t len = 0;
	if (st_op_encode(st_decoded_op(d), &buf, &len) == 0) {
		st_decoded *again = NULL;
		if (st_op_decode(buf, len, &again) != 0)
			abort();   /* what was accepted does not survive a round trip */
		st_decoded_free(again);
		free(buf);
	}
	st_decoded_free(d);
	return 0;
}
