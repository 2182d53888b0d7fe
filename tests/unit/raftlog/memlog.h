/*
 * memlog.h - an in-memory implementation of the Raft core's storage read
 * interface (struct rl_storage, raftlog/raft.h) for the core's unit tests:
 * one member's persisted log, snapshot meta + bytes and hard state, which
 * survive a simulated restart of the node. Single-threaded.
 */
#ifndef TEST_MEMLOG_H
#define TEST_MEMLOG_H

#include "raft.h"

struct memlog {
	struct rl_hard_state hs;
	struct rl_snapshot_meta snap; /* index 0: none */
	uint8_t *snap_data;           /* owned */
	uint32_t snap_len;
	struct rl_entry *ents;        /* ents[k].index == snap.index + 1 + k */
	size_t n, cap;
	struct rl_storage st;         /* callbacks bound to this memlog */
	unsigned entries_calls;       /* how often the core read entries */
};

void memlog_init(struct memlog *l);
void memlog_free(struct memlog *l);
/* Persist entries (copied), first deleting stored entries >= e[0].index
 * (the ready contract). Entries at or below the snapshot are skipped. */
void memlog_append(struct memlog *l, const struct rl_entry *e, size_t n);
/* Install a received snapshot: the whole log is replaced by it. */
void memlog_install(struct memlog *l, const struct rl_snapshot_meta *m,
    const uint8_t *data, uint32_t len);
/* Compaction after the application took a snapshot at idx (<= last). */
void memlog_compact(struct memlog *l, rl_index idx,
    const struct rl_conf_state *conf, const uint8_t *data, uint32_t len);
rl_index memlog_last(const struct memlog *l);

#endif /* TEST_MEMLOG_H */
