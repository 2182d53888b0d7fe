/*
 * test_crc32c.c - CRC-32C known answers (RFC 3720 appendix B.4 vectors and
 * the common "123456789" check value) and incremental use.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "crc32c.h"

Test(crc32c, check_value)
{
	cr_assert_eq(rl_crc32c(0, "123456789", 9), 0xE3069283u);
}

Test(crc32c, thirty_two_zero_bytes)
{
	uint8_t z[32] = { 0 };

	cr_assert_eq(rl_crc32c(0, z, sizeof(z)), 0x8A9136AAu);
}

Test(crc32c, rfc3720_vectors)
{
	uint8_t ones[32], inc[32], dec[32];

	memset(ones, 0xff, sizeof(ones));
	for (int k = 0; k < 32; k++) {
		inc[k] = (uint8_t)k;
		dec[k] = (uint8_t)(31 - k);
	}
	cr_assert_eq(rl_crc32c(0, ones, 32), 0x62A8AB43u);
	cr_assert_eq(rl_crc32c(0, inc, 32), 0x46DD794Eu);
	cr_assert_eq(rl_crc32c(0, dec, 32), 0x113FDB5Cu);
}

Test(crc32c, empty_is_identity)
{
	cr_assert_eq(rl_crc32c(0, NULL, 0), 0u);
	cr_assert_eq(rl_crc32c(0x12345678u, NULL, 0), 0x12345678u);
}

/* Pieces of any alignment and length give the crc of the whole: the
 * store checksums header and data separately. */
Test(crc32c, incremental_equals_whole)
{
	uint8_t buf[1000];

	for (size_t k = 0; k < sizeof(buf); k++)
		buf[k] = (uint8_t)(k * 31u + 7u);
	uint32_t whole = rl_crc32c(0, buf, sizeof(buf));
	for (size_t cut = 0; cut <= sizeof(buf); cut += 13) {
		uint32_t c = rl_crc32c(0, buf, cut);
		c = rl_crc32c(c, buf + cut, sizeof(buf) - cut);
		cr_assert_eq(c, whole, "cut at %zu", cut);
	}
	/* Unaligned starts give the same as a byte-at-a-time reference. */
	for (size_t off = 1; off < 9; off++) {
		uint32_t c = 0;
		for (size_t k = off; k < sizeof(buf); k++)
			c = rl_crc32c(c, buf + k, 1);
		cr_assert_eq(rl_crc32c(0, buf + off, sizeof(buf) - off), c);
	}
}

Test(crc32c, detects_single_bit_flip)
{
	uint8_t buf[256] = { 0 };
	uint32_t base = rl_crc32c(0, buf, sizeof(buf));

	for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert_neq(rl_crc32c(0, buf, sizeof(buf)), base);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

/* The instruction path (where the CPU has one) and the tables agree on
 * every length, alignment and running value. */
Test(crc32c, hardware_matches_tables)
{
	uint8_t buf[600];
	uint32_t x = 0x9E3779B9u;

	for (size_t k = 0; k < sizeof(buf); k++) {
		x = x * 1103515245u + 12345u;
		buf[k] = (uint8_t)(x >> 24);
	}
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len + off <= sizeof(buf); len += 7) {
			uint32_t seed = (uint32_t)(len * 2654435761u);
			cr_assert_eq(rl_crc32c(seed, buf + off, len),
			    rl_crc32c_portable(seed, buf + off, len),
			    "off %zu len %zu", off, len);
		}
}
