/*
 * sim_memlog.h - the simulator's in-memory Raft log: one member's hard
 * state, log entries and latest snapshot, held in memory.
 *
 * Each simulated member owns two of these: the DURABLE log (what survives a
 * crash) and the WRITTEN log (durable + writes still in flight). A ready's
 * hard state and entries are saved together, atomically, when its write
 * completes - the same unit the LMDB log store commits in one transaction -
 * so a crash between write start and completion loses the whole write and
 * never half of it. The core reads only the durable log through its storage
 * interface. Single-threaded.
 */
#ifndef SIM_MEMLOG_H
#define SIM_MEMLOG_H

#include "rl_types.h"

#include <stdbool.h>
#include <stddef.h>

struct sim_memlog {
	struct rl_hard_state hs;
	struct rl_snapshot_meta snap;   /* index 0: no snapshot */
	uint8_t *snap_data;             /* owned */
	uint32_t snap_len;
	struct rl_entry *ents;          /* ents[i].index == snap.index + 1 + i */
	size_t n;
	size_t cap;
};

void sim_memlog_init(struct sim_memlog *l);
void sim_memlog_free(struct sim_memlog *l);
/* Replaces *dst with a deep copy of *src (dst must be initialised). */
void sim_memlog_copy(struct sim_memlog *dst, const struct sim_memlog *src);

/* First index still held as an entry (snap.index + 1). */
rl_index sim_memlog_first(const struct sim_memlog *l);
/* Last index covered by the log or its snapshot. */
rl_index sim_memlog_last(const struct sim_memlog *l);
/* Term of the entry at idx (or of the snapshot if idx == snap.index).
 * Returns false when idx is compacted away or beyond the end. */
bool sim_memlog_term(const struct sim_memlog *l, rl_index idx, rl_term *term);
/* Entry at idx, borrowed until the log is next modified; NULL if absent. */
const struct rl_entry *sim_memlog_entry(const struct sim_memlog *l,
					rl_index idx);

/* Appends entries (data copied), first deleting every stored entry from
 * the first new index on, as the ready contract of raft.h says (that is how
 * a conflicting suffix is truncated, paper §5.3). Entries at or
 * below the snapshot are skipped. Returns false (log unchanged) if the
 * first entry would leave a gap after the current last index. */
bool sim_memlog_append(struct sim_memlog *l, const struct rl_entry *ents,
		       size_t n);
/* Installs a snapshot (data copied): entries it covers are dropped; if the
 * log holds the snapshot's last entry with the same term, later entries are
 * kept (Raft Figure 13 step 6), else the whole log is discarded. */
void sim_memlog_install(struct sim_memlog *l,
			const struct rl_snapshot_meta *meta,
			const uint8_t *data, uint32_t len);
/* Log compaction: records a snapshot at idx (which must be held in the log)
 * with the given membership and data, and drops entries up to idx. */
void sim_memlog_compact(struct sim_memlog *l, rl_index idx,
			const struct rl_conf_state *conf,
			const uint8_t *data, uint32_t len);

#endif /* SIM_MEMLOG_H */
