/*
 * crc32c.h - CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78)
 * used by the log store to checksum every stored Raft entry.
 *
 * Why Castagnoli rather than the zlib CRC-32: it has a better Hamming
 * distance for the record sizes we store and is what iSCSI, ext4 and most
 * storage engines use, so its test vectors are well known.
 */
#ifndef RL_CRC32C_H
#define RL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extends a running CRC-32C with len bytes at buf and returns the new value.
 * Start with crc = 0; feeding a buffer in pieces gives the same result as
 * feeding it at once: rl_crc32c(rl_crc32c(0, a, n), b, m) == crc of a||b.
 * buf is only read (borrowed for the call); buf may be NULL when len is 0.
 * Any thread may call it (the tables are built once, thread-safely). Uses
 * the CPU's crc32 instruction where there is one (x86-64 SSE4.2).
 * Never fails.
 */
uint32_t rl_crc32c(uint32_t crc, const void *buf, size_t len);

/* The same function computed with tables only (no CPU instruction): what
 * rl_crc32c() does on CPUs without SSE4.2, and the tests' reference. */
uint32_t rl_crc32c_portable(uint32_t crc, const void *buf, size_t len);

#endif /* RL_CRC32C_H */
