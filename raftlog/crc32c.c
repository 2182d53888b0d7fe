/*
 * crc32c.c - table-driven CRC-32C, slice-by-8.
 *
 * Slice-by-8 consumes eight bytes per step with eight 256-entry tables: table
 * k maps a byte to its CRC contribution when followed by k zero bytes, so the
 * eight lookups of one step are independent and the loop is not serialised on
 * a single table lookup per byte. The tables are computed from the polynomial
 * on first use rather than pasted in, so there is nothing to mistype.
 *
 * On x86-64 with SSE4.2 the CPU's crc32 instruction computes the same
 * polynomial eight bytes per instruction, several times faster than the
 * tables; rl_crc32c() picks it at run time and the tables remain the
 * portable path (rl_crc32c_portable(), also the tests' reference).
 */
#include "crc32c.h"

#include <pthread.h>

/* Bit-reflected Castagnoli polynomial 0x1EDC6F41. */
#define CRC32C_POLY_REFLECTED 0x82F63B78u
#define CRC32C_SLICES 8

static uint32_t crc32c_table[CRC32C_SLICES][256];
static pthread_once_t crc32c_table_once = PTHREAD_ONCE_INIT;

static void crc32c_build_tables(void)
{
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b;
		for (int bit = 0; bit < 8; bit++)
			c = (c & 1u) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
		crc32c_table[0][b] = c;
	}
	/* table[k][b]: the CRC of byte b followed by k zero bytes. */
	for (int k = 1; k < CRC32C_SLICES; k++) {
		for (uint32_t b = 0; b < 256; b++) {
			uint32_t prev = crc32c_table[k - 1][b];
			crc32c_table[k][b] =
				(prev >> 8) ^ crc32c_table[0][prev & 0xffu];
		}
	}
}

static uint32_t crc32c_bytes(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xffu];
	return crc;
}

/* Reads 8 bytes as two little-endian words whatever the host order, so the
 * table indexing below is the same on every machine. */
static void load_le64(const uint8_t *p, uint32_t *lo, uint32_t *hi)
{
	*lo = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	      (uint32_t)p[3] << 24;
	*hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
	      (uint32_t)p[7] << 24;
}

uint32_t rl_crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (len == 0)
		return crc;
	pthread_once(&crc32c_table_once, crc32c_build_tables);
	crc = ~crc;
	while (len >= CRC32C_SLICES) {
		uint32_t lo, hi;
		load_le64(p, &lo, &hi);
		lo ^= crc;
		crc = crc32c_table[7][lo & 0xffu] ^
		      crc32c_table[6][(lo >> 8) & 0xffu] ^
		      crc32c_table[5][(lo >> 16) & 0xffu] ^
		      crc32c_table[4][lo >> 24] ^
		      crc32c_table[3][hi & 0xffu] ^
		      crc32c_table[2][(hi >> 8) & 0xffu] ^
		      crc32c_table[1][(hi >> 16) & 0xffu] ^
		      crc32c_table[0][hi >> 24];
		p += CRC32C_SLICES;
		len -= CRC32C_SLICES;
	}
	return ~crc32c_bytes(crc, p, len);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <string.h>

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = ~crc;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);   /* x86 is little-endian: as the tables */
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}

static int crc32c_has_hw = -1;   /* -1 unknown; benign race: same value */

uint32_t rl_crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (len == 0)
		return crc;
	int hw = __atomic_load_n(&crc32c_has_hw, __ATOMIC_RELAXED);
	if (hw < 0) {
		__builtin_cpu_init();
		hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
		__atomic_store_n(&crc32c_has_hw, hw, __ATOMIC_RELAXED);
	}
	return hw ? crc32c_hw(crc, buf, len) :
	    rl_crc32c_portable(crc, buf, len);
}
#else
uint32_t rl_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return rl_crc32c_portable(crc, buf, len);
}
#endif
