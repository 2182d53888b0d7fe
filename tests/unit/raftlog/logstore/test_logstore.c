/*
 * test_logstore.c - behaviour of the log store that the Raft core and
 * the broker rely on: entries read back as written, hard state and snapshot
 * meta persisted, truncate+append atomic, compaction, snapshot install,
 * reopen gives the same state, bad writes refused with nothing changed.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_helpers.h"

TestSuite(logstore, .init = lt_setup, .fini = lt_teardown, .timeout = 20);

static struct rl_hard_state hs_of(rl_term t, rl_id v, rl_index c)
{
	return (struct rl_hard_state){ .term = t, .vote = v, .commit = c };
}

static void assert_hs(rl_logstore *ls, rl_term t, rl_id v, rl_index c)
{
	struct rl_hard_state hs;

	rl_logstore_hard_state(ls, &hs);
	cr_assert_eq(hs.term, t, "term %llu", (unsigned long long)hs.term);
	cr_assert_eq(hs.vote, v, "vote %llu", (unsigned long long)hs.vote);
	cr_assert_eq(hs.commit, c, "commit %llu",
		     (unsigned long long)hs.commit);
}

static rl_logstore *reopen(rl_logstore *ls)
{
	rl_logstore_close(ls);
	return lt_open(lt_dir);
}

Test(logstore, new_log_is_empty)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_snapshot_meta sm;
	rl_term t = 99;

	cr_assert_eq(rl_logstore_first_index(ls), 1);
	cr_assert_eq(rl_logstore_last_index(ls), 0);
	cr_assert_eq(rl_logstore_term(ls, 0, &t), 0);
	cr_assert_eq(t, 0);
	cr_assert_eq(rl_logstore_term(ls, 1, &t), RL_LOG_ERR_UNAVAILABLE);
	assert_hs(ls, 0, RL_NONE, 0);
	rl_logstore_snapshot_meta(ls, &sm);
	cr_assert_eq(sm.index, 0);
	cr_assert_eq(sm.term, 0);
	ls = reopen(ls);
	cr_assert_eq(rl_logstore_last_index(ls), 0);
	rl_logstore_close(ls);
}

Test(logstore, append_and_read_back)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(1, 1, 0);
	struct rl_entry *e = (void *)1;
	size_t n = 7;

	cr_assert_eq(lt_append(ls, 1, 20, 1, &hs), 0);
	cr_assert_eq(lt_append(ls, 21, 5, 1, NULL), 0);
	cr_assert_eq(rl_logstore_first_index(ls), 1);
	cr_assert_eq(rl_logstore_last_index(ls), 25);
	lt_assert_range_term(ls, 1, 25, 1);
	cr_assert_eq(rl_logstore_entries(ls, 5, 5, 0, &e, &n), 0);
	cr_assert_null(e);
	cr_assert_eq(n, 0);
	cr_assert_eq(rl_logstore_entries(ls, 0, 3, 0, &e, &n),
		     RL_LOG_ERR_COMPACTED);
	cr_assert_eq(rl_logstore_entries(ls, 20, 27, 0, &e, &n),
		     RL_LOG_ERR_UNAVAILABLE);
	cr_assert_eq(rl_logstore_entries(ls, 6, 5, 0, &e, &n),
		     RL_LOG_ERR_INVALID);
	cr_assert_null(e);
	rl_logstore_close(ls);
}

/* etcd's rule: stop before exceeding the byte budget, but always return
 * at least one entry so that a large entry cannot block replication. */
Test(logstore, entries_respects_bytes_max_but_returns_one)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(1, 0, 0);
	uint8_t big[1000];
	struct rl_entry in[4];
	struct rl_logstore_batch b = { .entries = in, .entries_n = 4,
				       .hard_state = &hs };
	struct rl_entry *e;
	size_t n;

	memset(big, 0xab, sizeof(big));
	for (int k = 0; k < 4; k++)
		in[k] = (struct rl_entry){ .term = 1, .index = 1 + k,
					   .data_len = 100, .data = big };
	in[2].data_len = 1000;
	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	cr_assert_eq(rl_logstore_entries(ls, 1, 5, 250, &e, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(e[1].index, 2);
	free(e);
	cr_assert_eq(rl_logstore_entries(ls, 1, 5, 200, &e, &n), 0);
	cr_assert_eq(n, 2, "exactly at the budget is allowed");
	free(e);
	cr_assert_eq(rl_logstore_entries(ls, 3, 5, 10, &e, &n), 0);
	cr_assert_eq(n, 1, "one entry over the budget still comes back");
	cr_assert_eq(e[0].data_len, 1000);
	cr_assert_arr_eq(e[0].data, big, 1000);
	rl_logstore_entries_free(e);
	cr_assert_eq(rl_logstore_entries(ls, 1, 5, 0, &e, &n), 0);
	cr_assert_eq(n, 1);
	free(e);
	cr_assert_eq(rl_logstore_entries(ls, 1, 5, UINT64_MAX, &e, &n), 0);
	cr_assert_eq(n, 4);
	free(e);
	rl_logstore_close(ls);
}

Test(logstore, hard_state_round_trip)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(3, 2, 0);
	struct rl_logstore_batch b = { .hard_state = &hs };

	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	assert_hs(ls, 3, 2, 0);
	ls = reopen(ls);
	assert_hs(ls, 3, 2, 0);
	hs = hs_of(3, 2, 4);
	cr_assert_eq(lt_append(ls, 1, 6, 3, &hs), 0);
	ls = reopen(ls);
	assert_hs(ls, 3, 2, 4);
	hs = hs_of(7, RL_NONE, 5);
	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	ls = reopen(ls);
	assert_hs(ls, 7, RL_NONE, 5);
	rl_logstore_close(ls);
}

/* Paper Figure 2: currentTerm never decreases, votedFor is cast once per
 * term, commitIndex never goes back. The store refuses writes that would
 * break what is already on disk, and keeps what it had. */
Test(logstore, hard_state_never_goes_back_or_votes_twice)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(5, 0, 0);
	struct rl_logstore_batch b = { .hard_state = &hs };

	cr_assert_eq(lt_append(ls, 1, 4, 2, &hs), 0);
	hs = hs_of(5, 3, 2); /* first vote in term 5 */
	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	hs = hs_of(5, 4, 2);
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_UNSAFE);
	cr_assert(strstr(rl_logstore_errmsg(ls), "already voted for 3"),
		  "%s", rl_logstore_errmsg(ls));
	hs = hs_of(5, RL_NONE, 2);
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_UNSAFE);
	hs = hs_of(4, 3, 2);
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_UNSAFE);
	hs = hs_of(5, 3, 1);
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_UNSAFE);
	hs = hs_of(5, 3, 5); /* commit beyond last index 4 */
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_UNSAFE);
	assert_hs(ls, 5, 3, 2);
	ls = reopen(ls);
	assert_hs(ls, 5, 3, 2);
	hs = hs_of(6, 4, 4); /* a new term allows a new vote */
	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	assert_hs(ls, 6, 4, 4);
	/* Entries of a term above the stored term need that term first. */
	cr_assert_eq(lt_append(ls, 5, 1, 7, NULL), RL_LOG_ERR_UNSAFE);
	hs = hs_of(7, 0, 4);
	cr_assert_eq(lt_append(ls, 5, 1, 7, &hs), 0);
	rl_logstore_close(ls);
}

/* AppendEntries handling: a suffix after the last index just appends;
 * one starting inside the log replaces from exactly that index (§5.3). */
Test(logstore, save_after_last_appends_and_inside_truncates_from_there)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(1, 0, 3);
	rl_term want[12];

	cr_assert_eq(lt_append(ls, 1, 5, 1, &hs), 0);
	cr_assert_eq(lt_append(ls, 6, 5, 1, NULL), 0);
	lt_assert_range_term(ls, 1, 10, 1);
	hs = hs_of(2, 0, 3);
	cr_assert_eq(lt_append(ls, 6, 2, 2, &hs), 0);
	cr_assert_eq(rl_logstore_last_index(ls), 7);
	for (int k = 0; k < 7; k++)
		want[k] = k < 5 ? 1 : 2;
	lt_assert_entries(ls, 1, 7, want);
	rl_term t;
	cr_assert_eq(rl_logstore_term(ls, 8, &t), RL_LOG_ERR_UNAVAILABLE);
	ls = reopen(ls);
	cr_assert_eq(rl_logstore_last_index(ls), 7);
	lt_assert_entries(ls, 1, 7, want);
	/* Replacing only the last entry, and extending past the old end. */
	hs = hs_of(3, 0, 3);
	cr_assert_eq(lt_append(ls, 7, 5, 3, &hs), 0);
	for (int k = 6; k < 11; k++)
		want[k] = 3;
	lt_assert_entries(ls, 1, 11, want);
	rl_logstore_close(ls);
}

/* A replacement is one transaction: after a refused one (here: the new
 * entries would make the log's term go down at the junction) the old
 * suffix is intact, on disk and in the handle. */
Test(logstore, truncate_and_append_are_one_write)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(4, 0, 2);

	cr_assert_eq(lt_append(ls, 1, 3, 2, &hs), 0);
	cr_assert_eq(lt_append(ls, 4, 5, 4, NULL), 0);
	/* Starting at 5 with term 3 < term 4 of entry 4: refused whole. */
	cr_assert_eq(lt_append(ls, 5, 3, 3, NULL), RL_LOG_ERR_GAP);
	cr_assert(strstr(rl_logstore_errmsg(ls), "index 5"), "%s",
		  rl_logstore_errmsg(ls));
	cr_assert_eq(rl_logstore_last_index(ls), 8);
	ls = reopen(ls);
	cr_assert_eq(rl_logstore_last_index(ls), 8);
	lt_assert_range_term(ls, 4, 8, 4);
	rl_logstore_close(ls);
}

Test(logstore, never_overwrites_committed_entries)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(2, 0, 5);

	cr_assert_eq(lt_append(ls, 1, 8, 1, &hs), 0);
	cr_assert_eq(lt_append(ls, 5, 2, 2, NULL), RL_LOG_ERR_UNSAFE);
	cr_assert_eq(lt_append(ls, 1, 2, 2, NULL), RL_LOG_ERR_UNSAFE);
	cr_assert_eq(lt_append(ls, 6, 2, 2, NULL), 0);
	cr_assert_eq(rl_logstore_last_index(ls), 7);
	lt_assert_range_term(ls, 1, 5, 1);
	rl_logstore_close(ls);
}

static void assert_unchanged(rl_logstore *ls)
{
	cr_assert_eq(rl_logstore_last_index(ls), 5);
	assert_hs(ls, 1, 0, 2);
	lt_assert_range_term(ls, 1, 5, 1);
}

Test(logstore, bad_batches_are_refused_and_change_nothing)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(1, 0, 2);
	uint8_t small[8] = { 0 };
	struct rl_entry e[3];
	struct rl_logstore_batch b = { .entries = e, .entries_n = 3 };

	cr_assert_eq(lt_append(ls, 1, 5, 1, &hs), 0);
	for (int k = 0; k < 3; k++)
		e[k] = (struct rl_entry){ .term = 1, .index = 6 + k,
					  .data_len = 8, .data = small };
	e[2].index = 9; /* 6, 7, 9 */
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_GAP);
	assert_unchanged(ls);
	e[2].index = 8;
	e[1].term = 0;
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_INVALID);
	e[1].term = 1;
	e[1].type = 9;
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_INVALID);
	e[1].type = RL_ENTRY_CONF_CHANGE;
	e[1].data = NULL;
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_INVALID);
	e[1].data = small;
	e[1].data_len = RL_ENTRY_DATA_MAX + 1; /* refused before any read */
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_TOO_LARGE);
	cr_assert(strstr(rl_logstore_errmsg(ls), "entry 7"), "%s",
		  rl_logstore_errmsg(ls));
	e[1].data_len = 8;
	for (int k = 0; k < 3; k++)
		e[k].index += 1; /* starts at 7: leaves a hole at 6 */
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_GAP);
	b.entries_n = RL_LOG_BATCH_ENTRIES_MAX + 1;
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_TOO_LARGE);
	cr_assert_eq(rl_logstore_save(ls, NULL), RL_LOG_ERR_INVALID);
	assert_unchanged(ls);
	ls = reopen(ls);
	assert_unchanged(ls);
	/* The handle still works after refusals. */
	cr_assert_eq(lt_append(ls, 6, 1, 1, NULL), 0);
	rl_logstore_close(ls);
}

Test(logstore, batch_over_bytes_max_is_refused)
{
	rl_logstore *ls = lt_open(lt_dir);
	size_t n = RL_LOG_BATCH_BYTES_MAX / RL_ENTRY_DATA_MAX + 1;
	struct rl_entry *e = calloc(n, sizeof(*e));
	uint8_t *big = calloc(1, RL_ENTRY_DATA_MAX);
	struct rl_hard_state hs = hs_of(1, 0, 0);
	struct rl_logstore_batch b = { .entries = e, .entries_n = n,
				       .hard_state = &hs };

	cr_assert(e && big);
	for (size_t k = 0; k < n; k++)
		e[k] = (struct rl_entry){ .term = 1, .index = 1 + k,
					  .data_len = RL_ENTRY_DATA_MAX,
					  .data = big };
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_TOO_LARGE);
	cr_assert_eq(rl_logstore_last_index(ls), 0);
	/* One maximal entry is fine. */
	b.entries_n = 1;
	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	struct rl_entry *out;
	size_t got;
	cr_assert_eq(rl_logstore_entries(ls, 1, 2, 0, &out, &got), 0);
	cr_assert_eq(got, 1);
	cr_assert_eq(out[0].data_len, RL_ENTRY_DATA_MAX);
	free(out);
	free(big);
	free(e);
	rl_logstore_close(ls);
}

Test(logstore, compaction_keeps_term_of_compacted_index)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(3, 0, 8);
	struct rl_conf_state conf = { .voters_n = 3, .voters = { 1, 2, 3 } };
	struct rl_logstore_batch b = { .conf = &conf };
	struct rl_snapshot_meta sm;
	struct rl_entry *e;
	size_t n;
	rl_term t;

	cr_assert_eq(lt_append(ls, 1, 4, 2, &hs), RL_LOG_ERR_UNSAFE);
	hs = hs_of(3, 0, 0);
	cr_assert_eq(lt_append(ls, 1, 4, 2, &hs), 0);
	hs = hs_of(3, 0, 8);
	cr_assert_eq(lt_append(ls, 5, 6, 3, &hs), 0);
	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	cr_assert_eq(rl_logstore_compact(ls, 4, NULL), 0);
	cr_assert_eq(rl_logstore_first_index(ls), 5);
	cr_assert_eq(rl_logstore_last_index(ls), 10);
	cr_assert_eq(rl_logstore_term(ls, 4, &t), 0);
	cr_assert_eq(t, 2, "term of the compacted index from snapshot meta");
	cr_assert_eq(rl_logstore_term(ls, 3, &t), RL_LOG_ERR_COMPACTED);
	cr_assert_eq(rl_logstore_entries(ls, 4, 6, 0, &e, &n),
		     RL_LOG_ERR_COMPACTED);
	rl_logstore_snapshot_meta(ls, &sm);
	cr_assert_eq(sm.index, 4);
	cr_assert_eq(sm.term, 2);
	cr_assert_eq(sm.conf.voters_n, 3);
	cr_assert_eq(sm.conf.voters[2], 3);
	cr_assert_eq(rl_logstore_compact(ls, 9, NULL), RL_LOG_ERR_UNSAFE);
	cr_assert_eq(rl_logstore_compact(ls, 4, NULL), RL_LOG_ERR_COMPACTED);
	ls = reopen(ls);
	cr_assert_eq(rl_logstore_first_index(ls), 5);
	cr_assert_eq(rl_logstore_term(ls, 4, &t), 0);
	cr_assert_eq(t, 2);
	lt_assert_range_term(ls, 5, 10, 3);
	/* Compacting to the end leaves an empty log that continues. */
	hs = hs_of(3, 0, 10);
	cr_assert_eq(rl_logstore_save(ls, &(struct rl_logstore_batch){
						  .hard_state = &hs }), 0);
	cr_assert_eq(rl_logstore_compact(ls, 10, NULL), 0);
	cr_assert_eq(rl_logstore_first_index(ls), 11);
	cr_assert_eq(rl_logstore_last_index(ls), 10);
	cr_assert_eq(rl_logstore_term(ls, 10, &t), 0);
	cr_assert_eq(t, 3);
	cr_assert_eq(lt_append(ls, 10, 1, 3, NULL), RL_LOG_ERR_COMPACTED);
	ls = reopen(ls);
	cr_assert_eq(lt_append(ls, 11, 2, 3, NULL), 0);
	lt_assert_range_term(ls, 11, 12, 3);
	rl_logstore_close(ls);
}

static struct rl_snapshot_meta snap_of(rl_index i, rl_term t)
{
	return (struct rl_snapshot_meta){
		.index = i, .term = t,
		.conf = { .voters_n = 2, .voters = { 1, 2 },
			  .learners_n = 1, .learners = { 9 } } };
}

/* Snapshot past the log's end: the log is replaced by the snapshot. */
Test(logstore, snapshot_past_end_drops_log)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(1, 0, 2);
	struct rl_snapshot_meta sm = snap_of(20, 3), got;
	struct rl_conf_state conf;
	struct rl_logstore_batch b = { .snapshot = &sm, .hard_state = &hs };
	rl_term t;

	cr_assert_eq(lt_append(ls, 1, 5, 1, &hs), 0);
	hs = hs_of(4, 0, 20);
	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	cr_assert_eq(rl_logstore_first_index(ls), 21);
	cr_assert_eq(rl_logstore_last_index(ls), 20);
	cr_assert_eq(rl_logstore_term(ls, 20, &t), 0);
	cr_assert_eq(t, 3);
	cr_assert_eq(rl_logstore_term(ls, 5, &t), RL_LOG_ERR_COMPACTED);
	ls = reopen(ls);
	cr_assert_eq(rl_logstore_first_index(ls), 21);
	cr_assert_eq(rl_logstore_last_index(ls), 20);
	assert_hs(ls, 4, 0, 20);
	rl_logstore_snapshot_meta(ls, &got);
	cr_assert_eq(got.index, 20);
	cr_assert_eq(got.term, 3);
	cr_assert_eq(got.conf.learners_n, 1);
	cr_assert_eq(got.conf.learners[0], 9);
	rl_logstore_conf_state(ls, &conf);
	cr_assert_eq(conf.voters_n, 2, "snapshot membership is current");
	cr_assert_eq(lt_append(ls, 21, 3, 4, NULL), 0);
	lt_assert_range_term(ls, 21, 23, 4);
	rl_logstore_close(ls);
}

/* The log holds the snapshot's last entry: only the prefix goes, and the
 * commit index moves up to the snapshot (it holds committed state only). */
Test(logstore, snapshot_matching_log_keeps_suffix)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(2, 0, 0);
	struct rl_snapshot_meta sm = snap_of(7, 2);
	struct rl_logstore_batch b = { .snapshot = &sm };

	cr_assert_eq(lt_append(ls, 1, 5, 1, &hs), 0);
	cr_assert_eq(lt_append(ls, 6, 5, 2, NULL), 0);
	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	cr_assert_eq(rl_logstore_first_index(ls), 8);
	cr_assert_eq(rl_logstore_last_index(ls), 10);
	assert_hs(ls, 2, 0, 7);
	ls = reopen(ls);
	lt_assert_range_term(ls, 8, 10, 2);
	assert_hs(ls, 2, 0, 7);
	rl_logstore_close(ls);
}

Test(logstore, snapshot_contradicting_log_replaces_it)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(1, 0, 2);
	struct rl_snapshot_meta sm = snap_of(7, 3);
	struct rl_logstore_batch b = { .snapshot = &sm, .hard_state = &hs };
	rl_term t;

	cr_assert_eq(lt_append(ls, 1, 10, 1, &hs), 0);
	hs = hs_of(3, 0, 7);
	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	cr_assert_eq(rl_logstore_last_index(ls), 7);
	cr_assert_eq(rl_logstore_term(ls, 7, &t), 0);
	cr_assert_eq(t, 3);
	cr_assert_eq(rl_logstore_term(ls, 8, &t), RL_LOG_ERR_UNAVAILABLE);
	ls = reopen(ls);
	cr_assert_eq(rl_logstore_last_index(ls), 7);
	rl_logstore_close(ls);
}

Test(logstore, snapshot_stale_or_contradicting_commit_refused)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(2, 0, 6);
	struct rl_snapshot_meta sm = snap_of(5, 2);
	struct rl_logstore_batch b = { .snapshot = &sm };

	cr_assert_eq(lt_append(ls, 1, 8, 2, &hs), 0);
	cr_assert_eq(rl_logstore_compact(ls, 5, NULL), 0);
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_SNAPSHOT_STALE);
	sm = snap_of(3, 2);
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_SNAPSHOT_STALE);
	sm = snap_of(6, 1); /* index 6 is committed with term 2 */
	cr_assert_eq(rl_logstore_save(ls, &b), RL_LOG_ERR_UNSAFE);
	cr_assert_eq(rl_logstore_first_index(ls), 6);
	cr_assert_eq(rl_logstore_last_index(ls), 8);
	rl_logstore_close(ls);
}

/* What a follower does on InstallSnapshot followed by new entries, all in
 * one ready: one batch. */
Test(logstore, snapshot_entries_and_hard_state_in_one_batch)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(5, 2, 22);
	struct rl_snapshot_meta sm = snap_of(20, 4);
	struct rl_entry e[3];
	uint8_t buf[3][300];
	struct rl_logstore_batch b = { .snapshot = &sm, .entries = e,
				       .entries_n = 3, .hard_state = &hs };

	for (int k = 0; k < 3; k++) {
		e[k] = (struct rl_entry){ .term = 5, .index = 21 + k,
					  .data_len = lt_data_len(21 + k, 5),
					  .data = buf[k] };
		lt_fill(buf[k], e[k].data_len, 21 + k, 5);
	}
	cr_assert_eq(rl_logstore_save(ls, &b), 0);
	ls = reopen(ls);
	cr_assert_eq(rl_logstore_first_index(ls), 21);
	lt_assert_range_term(ls, 21, 23, 5);
	assert_hs(ls, 5, 2, 22);
	rl_logstore_close(ls);
}

Test(logstore, reopen_gives_identical_state)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = hs_of(2, 1, 30);
	struct rl_conf_state conf = { .voters_n = 1, .voters = { 7 } }, c2;
	struct rl_snapshot_meta s1, s2;
	struct rl_entry *a, *b;
	size_t na, nb;

	struct rl_hard_state hs0 = hs_of(2, 1, 0);

	for (int r = 0; r < 10; r++)
		cr_assert_eq(lt_append(ls, 1 + 10 * r, 10, 2,
				       r == 0 ? &hs0 : r == 9 ? &hs : NULL),
			     0, "%s", rl_logstore_errmsg(ls));
	cr_assert_eq(rl_logstore_save(ls, &(struct rl_logstore_batch){
						  .conf = &conf }), 0);
	cr_assert_eq(rl_logstore_compact(ls, 12, NULL), 0);
	rl_logstore_snapshot_meta(ls, &s1);
	cr_assert_eq(rl_logstore_entries(ls, 13, 101, UINT64_MAX, &a, &na), 0);
	ls = reopen(ls);
	cr_assert_eq(rl_logstore_first_index(ls), 13);
	cr_assert_eq(rl_logstore_last_index(ls), 100);
	assert_hs(ls, 2, 1, 30);
	rl_logstore_snapshot_meta(ls, &s2);
	cr_assert_eq(s2.index, s1.index);
	cr_assert_eq(s2.term, s1.term);
	cr_assert_eq(s2.conf.voters_n, 1);
	cr_assert_eq(s2.conf.voters[0], 7);
	rl_logstore_conf_state(ls, &c2);
	cr_assert_eq(c2.voters_n, 1);
	cr_assert_eq(c2.voters[0], 7);
	cr_assert_eq(rl_logstore_entries(ls, 13, 101, UINT64_MAX, &b, &nb), 0);
	cr_assert_eq(na, nb);
	for (size_t k = 0; k < na; k++) {
		cr_assert_eq(a[k].index, b[k].index);
		cr_assert_eq(a[k].term, b[k].term);
		cr_assert_eq(a[k].data_len, b[k].data_len);
		if (a[k].data_len)
			cr_assert_arr_eq(a[k].data, b[k].data, a[k].data_len);
	}
	free(a);
	free(b);
	rl_logstore_close(ls);
}

/* map_size_bytes is the segment size: the log rolls to new segments as
 * it grows, up to map_size_max_bytes of segment files; then a save fails
 * with RL_LOG_ERR_NOSPACE, writes nothing and leaves the handle usable;
 * compaction deletes the segments it no longer needs. */
Test(logstore, segments_roll_up_to_their_bound_and_compaction_frees_them)
{
	struct rl_logstore_options o = { .map_size_bytes = 256 * 1024,
					 .map_size_max_bytes = 64u << 20 };
	struct rl_hard_state hs = hs_of(1, 0, 0);
	uint8_t *data = calloc(1, 64 * 1024);
	struct rl_entry e = { .term = 1, .data_len = 64 * 1024, .data = data };
	struct rl_logstore_batch b = { .entries = &e, .entries_n = 1,
				       .hard_state = &hs };
	rl_logstore *ls;
	char msg[RL_LOG_ERRMSG_MAX];
	int err = 0;

	cr_assert_eq(rl_logstore_open(lt_dir, &o, &ls, msg, sizeof(msg)), 0,
		     "%s", msg);
	for (rl_index i = 1; i <= 64; i++) {
		e.index = i;
		data[0] = (uint8_t)i;
		hs.commit = i - 1;
		cr_assert_eq(rl_logstore_save(ls, &b), 0, "%s",
			     rl_logstore_errmsg(ls));
	}
	cr_assert_gt(rl_logstore_map_size(ls), 4u << 20);
	cr_assert_geq(lt_seg_count(lt_dir), 16);
	rl_logstore_close(ls);
	/* A lower bound than what is stored: writes fail cleanly. */
	o.map_size_max_bytes = 5u << 20;
	cr_assert_eq(rl_logstore_open(lt_dir, &o, &ls, msg, sizeof(msg)), 0,
		     "%s", msg);
	for (rl_index i = 65; i <= 200 && err == 0; i++) {
		e.index = i;
		data[0] = (uint8_t)i;
		hs.commit = i - 1;
		err = rl_logstore_save(ls, &b);
		if (err == 0)
			cr_assert_eq(rl_logstore_last_index(ls), i);
	}
	cr_assert_eq(err, RL_LOG_ERR_NOSPACE, "%s", rl_logstore_strerror(err));
	cr_assert(strstr(rl_logstore_errmsg(ls), "map_size_max_bytes"), "%s",
		  rl_logstore_errmsg(ls));
	rl_index last = rl_logstore_last_index(ls);
	/* Not stopped: reads and a compaction still work, and the
	 * compaction makes room again. */
	struct rl_entry *out;
	size_t n;
	cr_assert_eq(rl_logstore_entries(ls, 64, 65, 0, &out, &n), 0);
	cr_assert_eq(out[0].data[0], 64);
	free(out);
	size_t segs = lt_seg_count(lt_dir);
	uint64_t bytes = rl_logstore_map_size(ls);
	cr_assert_eq(rl_logstore_compact(ls, last - 1, NULL), 0, "%s",
		     rl_logstore_errmsg(ls));
	cr_assert_lt(lt_seg_count(lt_dir), segs);
	cr_assert_lt(rl_logstore_map_size(ls), bytes);
	e.index = last + 1;
	data[0] = (uint8_t)(last + 1);
	hs.commit = last;
	cr_assert_eq(rl_logstore_save(ls, &b), 0, "%s", rl_logstore_errmsg(ls));
	rl_logstore_close(ls);
	ls = lt_open(lt_dir);
	cr_assert_eq(rl_logstore_first_index(ls), last);
	cr_assert_eq(rl_logstore_last_index(ls), last + 1);
	cr_assert_eq(rl_logstore_entries(ls, last, last + 2, UINT64_MAX, &out,
					 &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(out[0].data[0], (uint8_t)last);
	cr_assert_eq(out[1].data[0], (uint8_t)(last + 1));
	free(out);
	rl_logstore_close(ls);
	free(data);
}

Test(logstore, second_handle_on_same_directory_is_refused)
{
	rl_logstore *ls = lt_open(lt_dir), *ls2 = NULL;
	char msg[RL_LOG_ERRMSG_MAX];

	cr_assert_eq(rl_logstore_open(lt_dir, NULL, &ls2, msg, sizeof(msg)),
		     RL_LOG_ERR_BUSY);
	cr_assert_null(ls2);
	cr_assert(strstr(msg, "already open"), "%s", msg);
	rl_logstore_close(ls);
	ls = lt_open(lt_dir);
	rl_logstore_close(ls);
}

Test(logstore, open_rejects_bad_arguments_and_foreign_files)
{
	struct rl_logstore_options o = { .map_size_bytes = 1024 };
	rl_logstore *ls = (void *)1;
	char msg[RL_LOG_ERRMSG_MAX], path[512];
	uint8_t junk[8192];
	FILE *f;

	cr_assert_eq(rl_logstore_open(NULL, NULL, &ls, msg, sizeof(msg)),
		     RL_LOG_ERR_INVALID);
	cr_assert_eq(rl_logstore_open(lt_dir, &o, &ls, msg, sizeof(msg)),
		     RL_LOG_ERR_INVALID);
	cr_assert_null(ls);
	snprintf(path, sizeof(path), "%s/data.mdb", lt_dir);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	memset(junk, 0x5a, sizeof(junk));
	cr_assert_eq(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	fclose(f);
	/* A log of the LMDB format (earlier builds) is refused, not read as
	 * an empty log. */
	cr_assert_eq(rl_logstore_open(lt_dir, NULL, &ls, msg, sizeof(msg)),
		     RL_LOG_ERR_VERSION, "%s", msg);
	cr_assert_null(ls);
	cr_assert(strstr(msg, "LMDB"), "%s", msg);
}

Test(logstore, strerror_names_every_code)
{
	for (int c = RL_LOG_ERR_STOPPED; c <= RL_LOG_OK; c++) {
		const char *s = rl_logstore_strerror(c);
		cr_assert_not_null(s);
		cr_assert_str_neq(s, "unknown error", "code %d", c);
		for (int d = c + 1; d <= RL_LOG_OK; d++)
			cr_assert_str_neq(s, rl_logstore_strerror(d));
	}
	cr_assert_str_eq(rl_logstore_strerror(-1000), "unknown error");
	cr_assert_str_eq(rl_logstore_strerror(5), "unknown error");
}

/* OS errors come back as this module's codes with the OS reason, never as
 * raw errno or LMDB values. */
Test(logstore, os_errors_are_mapped)
{
	char file[512], msg[RL_LOG_ERRMSG_MAX];
	rl_logstore *ls = (void *)1;
	FILE *f;

	snprintf(file, sizeof(file), "%s/not-a-dir", lt_dir);
	f = fopen(file, "w");
	cr_assert_not_null(f);
	fclose(f);
	int err = rl_logstore_open(file, NULL, &ls, msg, sizeof(msg));
	cr_assert_eq(err, RL_LOG_ERR_IO, "%d %s", err, msg);
	cr_assert_null(ls);
	cr_assert(strstr(msg, "Not a directory"), "%s", msg);
}

/* A batch larger than the segment size gets a segment of its own (the
 * segment size is a target, not a limit on batches). */
Test(logstore, batch_larger_than_a_segment_is_written_whole)
{
	struct rl_logstore_options o = { .map_size_bytes = 256 * 1024 };
	struct rl_hard_state hs = hs_of(1, 0, 0);
	uint32_t big = RL_ENTRY_DATA_MAX;
	uint8_t *data = malloc(big);
	struct rl_entry e[2] = {
		{ .term = 1, .index = 1, .data_len = big, .data = data },
		{ .term = 1, .index = 2, .data_len = 10, .data = data },
	};
	struct rl_logstore_batch b = { .entries = e, .entries_n = 2,
				       .hard_state = &hs };
	char msg[RL_LOG_ERRMSG_MAX];
	struct rl_entry *out;
	rl_logstore *ls;
	size_t n;

	cr_assert_not_null(data);
	for (uint32_t k = 0; k < big; k++)
		data[k] = (uint8_t)(k * 7 + (k >> 12));
	cr_assert_eq(rl_logstore_open(lt_dir, &o, &ls, msg, sizeof(msg)), 0,
		     "%s", msg);
	cr_assert_eq(rl_logstore_save(ls, &b), 0, "%s", rl_logstore_errmsg(ls));
	cr_assert_eq(lt_seg_count(lt_dir), 2);
	rl_logstore_close(ls);
	ls = lt_open(lt_dir);
	cr_assert_eq(rl_logstore_entries(ls, 1, 3, UINT64_MAX, &out, &n), 0,
		     "%s", rl_logstore_errmsg(ls));
	cr_assert_eq(n, 2);
	cr_assert_eq(out[0].data_len, big);
	cr_assert_arr_eq(out[0].data, data, big);
	cr_assert_arr_eq(out[1].data, data, 10);
	free(out);
	rl_logstore_close(ls);
	free(data);
}
