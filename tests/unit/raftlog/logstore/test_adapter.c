/*
 * test_adapter.c - the log store seen through raft.h's struct rl_storage,
 * the interface the Raft core reads persisted log state with: index space
 * (first_index - 1 = snapshot index, term(first_index - 1) = snapshot term),
 * error codes, and entries() ownership (each data malloc()ed, caller frees).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_helpers.h"
#include "raft.h"

TestSuite(adapter, .init = lt_setup, .fini = lt_teardown, .timeout = 20);

Test(adapter, empty_log)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_storage s;
	struct rl_snapshot_meta sm;
	rl_index i;
	rl_term t = 5;

	rl_logstore_storage(ls, &s);
	cr_assert_eq(s.ctx, ls);
	cr_assert_eq(s.first_index(s.ctx, &i), RL_OK);
	cr_assert_eq(i, 1);
	cr_assert_eq(s.last_index(s.ctx, &i), RL_OK);
	cr_assert_eq(i, 0);
	cr_assert_eq(s.term(s.ctx, 0, &t), RL_OK);
	cr_assert_eq(t, 0);
	cr_assert_eq(s.term(s.ctx, 1, &t), RL_ERR_UNAVAILABLE);
	cr_assert_eq(s.snapshot_meta(s.ctx, &sm), RL_OK);
	cr_assert_eq(sm.index, 0);
	rl_logstore_close(ls);
}

/* Entries 1..10 (term 1 to 4, term 2 after), compacted up to 4. */
static rl_logstore *compacted_log(struct rl_storage *s)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_hard_state hs = { .term = 2, .commit = 0 };

	cr_assert_eq(lt_append(ls, 1, 4, 1, &hs), 0);
	hs.commit = 8;
	cr_assert_eq(lt_append(ls, 5, 6, 2, &hs), 0);
	cr_assert_eq(rl_logstore_compact(ls, 4, NULL), 0);
	rl_logstore_storage(ls, s);
	return ls;
}

Test(adapter, index_space_after_compaction)
{
	struct rl_storage s;
	rl_logstore *ls = compacted_log(&s);
	struct rl_snapshot_meta sm;
	rl_index first, last;
	rl_term t;

	cr_assert_eq(s.first_index(s.ctx, &first), RL_OK);
	cr_assert_eq(s.last_index(s.ctx, &last), RL_OK);
	cr_assert_eq(s.snapshot_meta(s.ctx, &sm), RL_OK);
	cr_assert_eq(first, 5);
	cr_assert_eq(last, 10);
	cr_assert_eq(sm.index, first - 1);
	cr_assert_eq(s.term(s.ctx, first - 1, &t), RL_OK);
	cr_assert_eq(t, sm.term);
	cr_assert_eq(t, 1);
	cr_assert_eq(s.term(s.ctx, 7, &t), RL_OK);
	cr_assert_eq(t, 2);
	cr_assert_eq(s.term(s.ctx, 3, &t), RL_ERR_COMPACTED);
	cr_assert_eq(s.term(s.ctx, 11, &t), RL_ERR_UNAVAILABLE);
	rl_logstore_close(ls);
}

static void free_entries(struct rl_entry *e, size_t n)
{
	for (size_t k = 0; k < n; k++)
		free(e[k].data);
}

Test(adapter, entries_are_caller_owned_and_limited)
{
	struct rl_storage s;
	rl_logstore *ls = compacted_log(&s);
	struct rl_entry out[16];
	uint8_t want[300];
	size_t n = 99;

	cr_assert_eq(s.entries(s.ctx, 5, 11, UINT64_MAX, out, 16, &n), RL_OK);
	cr_assert_eq(n, 6);
	for (size_t k = 0; k < n; k++) {
		rl_index i = 5 + k;
		uint32_t len = lt_data_len(i, 2);
		cr_assert_eq(out[k].index, i);
		cr_assert_eq(out[k].term, 2);
		cr_assert_eq(out[k].data_len, len);
		lt_fill(want, len, i, 2);
		if (len == 0)
			cr_assert_null(out[k].data, "index %zu", (size_t)i);
		else
			cr_assert_arr_eq(out[k].data, want, len);
	}
	/* The data outlives the store: it is the caller's. */
	rl_logstore_close(ls);
	cr_assert_eq(out[0].data_len, lt_data_len(5, 2));
	free_entries(out, n);
}

Test(adapter, entries_limits_and_errors)
{
	struct rl_storage s;
	rl_logstore *ls = compacted_log(&s);
	struct rl_entry out[16];
	size_t n;

	cr_assert_eq(s.entries(s.ctx, 5, 11, UINT64_MAX, out, 3, &n), RL_OK);
	cr_assert_eq(n, 3, "out_max bounds the count");
	free_entries(out, n);
	cr_assert_eq(s.entries(s.ctx, 5, 11, 0, out, 16, &n), RL_OK);
	cr_assert_eq(n, 1, "at least one entry even over bytes_max");
	free_entries(out, n);
	uint64_t two = (uint64_t)lt_data_len(5, 2) + lt_data_len(6, 2);
	cr_assert_eq(lt_data_len(7, 2), 0); /* 7 is an empty entry */
	cr_assert_gt(lt_data_len(8, 2), 0);
	cr_assert_eq(s.entries(s.ctx, 5, 11, two, out, 16, &n), RL_OK);
	cr_assert_eq(n, 3, "bytes_max counts data bytes: 5, 6 and empty 7");
	free_entries(out, n);
	cr_assert_eq(s.entries(s.ctx, 5, 11, two - 1, out, 16, &n), RL_OK);
	cr_assert_eq(n, 1);
	free_entries(out, n);
	cr_assert_eq(s.entries(s.ctx, 4, 11, UINT64_MAX, out, 16, &n),
		     RL_ERR_COMPACTED);
	cr_assert_eq(s.entries(s.ctx, 5, 12, UINT64_MAX, out, 16, &n),
		     RL_ERR_UNAVAILABLE);
	cr_assert_eq(n, 0);
	rl_logstore_close(ls);
}

struct log_capture {
	int calls;
	int err;
	char msg[RL_LOG_ERRMSG_MAX];
};

static void capture(void *ctx, int err, const char *msg)
{
	struct log_capture *c = ctx;

	c->calls++;
	c->err = err;
	snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

/* A checksum failure reaches the core as RL_ERR_STORAGE (it then stops
 * using the value), and its cause reaches the member's log. */
Test(adapter, corruption_is_a_storage_error_and_is_logged)
{
	struct rl_storage s;
	rl_logstore *ls = compacted_log(&s);
	struct log_capture cap = { 0 };
	struct rl_logstore_options o = { .log_fn = capture, .log_ctx = &cap };
	char msg[RL_LOG_ERRMSG_MAX];
	struct rl_entry out[16];
	size_t n;
	rl_term t;

	rl_logstore_close(ls);
	cr_assert_eq(rl_logstore_open(lt_dir, &o, &ls, msg, sizeof(msg)), 0,
		     "%s", msg);
	/* Damage under the open handle: the read finds it. */
	char *path;
	uint64_t off = lt_find_entry(lt_dir, 6, 2, &path);
	lt_flip(path, off + RL_LOG_ENTRY_HEADER_BYTES - 1, 0xff);
	free(path);
	rl_logstore_storage(ls, &s);
	cr_assert_eq(s.entries(s.ctx, 5, 11, UINT64_MAX, out, 16, &n),
		     RL_ERR_STORAGE);
	cr_assert_eq(n, 0);
	cr_assert_eq(cap.calls, 1);
	cr_assert_eq(cap.err, RL_LOG_ERR_CORRUPT);
	cr_assert(strstr(cap.msg, "index 6"), "%s", cap.msg);
	cr_assert_eq(s.term(s.ctx, 5, &t), RL_ERR_STORAGE, "stopped");
	rl_logstore_close(ls);
}

/* The entries just written are served from memory (the core reads them
 * back to apply them): after a conflicting suffix is overwritten with a
 * new term, after wrapping the cache and after a compaction, what
 * entries() returns is always the log's current entry, byte for byte. */
Test(adapter, recent_entries_follow_truncation_and_wrap)
{
	rl_logstore *ls = lt_open(lt_dir);
	struct rl_storage s;
	struct rl_entry out[LT_BATCH_MAX];
	size_t n;

	struct rl_hard_state h1 = { .term = 1 }, h2 = { .term = 2 },
	    h3 = { .term = 3 };
	rl_logstore_storage(ls, &s);
	cr_assert_eq(lt_append(ls, 1, 10, 1, &h1), 0);
	/* entries 6..8 replaced by term 2 (a new leader's) */
	cr_assert_eq(lt_append(ls, 6, 3, 2, &h2), 0);
	rl_term terms[] = { 1, 1, 1, 1, 1, 2, 2, 2 };
	lt_assert_entries(ls, 1, 8, terms);
	cr_assert_eq(s.entries(s.ctx, 6, 9, UINT64_MAX, out, LT_BATCH_MAX,
	    &n), RL_OK);
	cr_assert_eq(n, 3);
	for (size_t k = 0; k < n; k++) {
		uint8_t want[400];
		cr_assert_eq(out[k].term, 2);
		cr_assert_eq(out[k].data_len, lt_data_len(6 + k, 2));
		lt_fill(want, out[k].data_len, 6 + k, 2);
		cr_assert(out[k].data_len == 0 ||
		    memcmp(out[k].data, want, out[k].data_len) == 0);
		free(out[k].data);
	}
	/* more than the cache holds: the oldest come back from disk */
	rl_index last = 8;
	while (last < 9000) {
		size_t k = 9000 - last < LT_BATCH_MAX ? 9000 - last : LT_BATCH_MAX;
		cr_assert_eq(lt_append(ls, last + 1, k, 3, &h3), 0);
		last += k;
	}
	lt_assert_range_term(ls, 9, 9000, 3);
	lt_assert_entries(ls, 1, 8, terms);
	struct rl_hard_state hs = { .term = 3, .commit = 9000 };
	cr_assert_eq(lt_append(ls, 9001, 1, 3, &hs), 0);
	cr_assert_eq(rl_logstore_compact(ls, 8990, NULL), 0);
	lt_assert_range_term(ls, 8991, 9001, 3);
	rl_logstore_close(ls);
	/* and the same after a restart (nothing in memory) */
	ls = lt_open(lt_dir);
	lt_assert_range_term(ls, 8991, 9001, 3);
	rl_logstore_close(ls);
}
