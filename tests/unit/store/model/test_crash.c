/*
 * test_crash.c - crash-safety tests of store/: a child process applies
 * large batches of random ops in a loop and is killed with SIGKILL at a
 * random moment; the parent reopens the store and checks that it holds
 * exactly the state of the last committed batch (the applied index is in
 * the same LMDB transaction as the state, DESIGN.md), that re-applying
 * committed indexes changes nothing, and that a snapshot restores exactly.
 *
 * The op stream is a pure function of the seed (model-driven generator, no
 * store-chosen lease ids), so the parent regenerates it to know the model
 * state at any batch boundary.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model.h"

/* Kill/reopen rounds per test, and the wall-clock bound on all of them. */
#define CRASH_ROUNDS_MAX 20
#define CRASH_TIME_S_MAX 40.0
/* Entries per batch: large, so the kill often lands inside a commit. */
#define CRASH_BATCH_ENTRIES_MIN 64u
#define CRASH_BATCH_ENTRIES_MAX 512u
/* Batches one child may apply before it stops on its own. */
#define CRASH_CHILD_BATCHES_MAX 400
/* Child -> parent message flag: "about to apply the batch ending at". */
#define CRASH_MSG_START (1ull << 63)
/* How long the parent waits for the child's first committed batch. */
#define CRASH_FIRST_REPORT_TIMEOUT_MS 20000

/* ---- the deterministic op stream ---------------------------------------------- */

struct stream {
	struct model m;
	struct mrng r;
	struct arena a;
	struct st_entry *ent;
	size_t ent_n;
};

static void stream_init(struct stream *s, uint64_t seed)
{
	model_init(&s->m);
	s->m.no_auto_lease = true;
	s->r.s = seed;
	arena_init(&s->a, 32u << 20);
	s->ent = calloc(CRASH_BATCH_ENTRIES_MAX, sizeof(*s->ent));
	cr_assert(s->ent);
}

static void stream_fini(struct stream *s)
{
	free(s->ent);
	arena_fini(&s->a);
	model_fini(&s->m);
}

/* Generates the next batch and advances the model past it. */
static void stream_next(struct stream *s)
{
	arena_reset(&s->a);
	s->ent_n = CRASH_BATCH_ENTRIES_MIN + mrng_below(&s->r,
		CRASH_BATCH_ENTRIES_MAX - CRASH_BATCH_ENTRIES_MIN + 1);
	for (size_t i = 0; i < s->ent_n; i++) {
		struct m_resp junk;
		s->ent[i].index = s->m.applied + 1;
		gen_op(&s->r, &s->m, &s->a, &s->ent[i].op);
		model_apply(&s->m, &s->ent[i].op, 0, &s->a, &junk);
	}
}

/* Regenerates the stream up to the batch ending exactly at `applied`.
 * false if no batch ends there (a torn batch would be visible). */
static bool stream_to(struct stream *s, st_index applied)
{
	while (s->m.applied < applied)
		stream_next(s);
	return s->m.applied == applied;
}

static st_store *open_store(const char *dir)
{
	st_store *st = NULL;
	int rc = st_open(dir, NULL, &st);
	cr_assert_eq(rc, 0, "st_open(%s): %s", dir, st_strerror(rc));
	return st;
}

/* ---- the child: apply batches until killed ---------------------------------------- */

static void child_main(const char *dir, uint64_t seed, int fd)
{
	st_store *st = NULL;
	if (st_open(dir, NULL, &st) != 0)
		_exit(3);
	st_index applied = st_applied_index(st);
	struct stream s;
	stream_init(&s, seed);
	struct st_result *res = calloc(CRASH_BATCH_ENTRIES_MAX, sizeof(*res));
	for (int b = 0; b < CRASH_CHILD_BATCHES_MAX; ) {
		stream_next(&s);
		if (s.m.applied <= applied)
			continue; /* committed in an earlier life */
		uint64_t idx = s.m.applied | CRASH_MSG_START;
		if (write(fd, &idx, sizeof(idx)) != (ssize_t)sizeof(idx))
			_exit(5);
		if (st_apply(st, s.ent, s.ent_n, res) != 0)
			_exit(4);
		for (size_t i = 0; i < s.ent_n; i++)
			st_result_free(&res[i]);
		idx = s.m.applied;
		if (write(fd, &idx, sizeof(idx)) != (ssize_t)sizeof(idx))
			_exit(5);
		b++;
	}
	_exit(0);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Reads the child's messages; lower = last committed index reported,
 * *in_apply = whether the last message was "starting a batch". */
static st_index read_msgs(int fd, st_index lower, bool *in_apply)
{
	uint64_t idx;
	while (read(fd, &idx, sizeof(idx)) == (ssize_t)sizeof(idx)) {
		*in_apply = (idx & CRASH_MSG_START) != 0;
		if (*in_apply)
			continue;
		cr_assert_gt(idx, lower, "reported indexes must increase");
		lower = idx;
	}
	return lower;
}

/* Forks a child, waits for its first commit, then kills it a random moment
 * after it announced a batch (so the kill usually lands inside st_apply's
 * write transaction); returns the last index it reported committed. */
static st_index crash_round(const char *dir, uint64_t seed, struct mrng *r,
	st_index lower, int *kills_in_apply)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child_main(dir, seed, fds[1]);
	}
	close(fds[1]);
	struct pollfd p = { .fd = fds[0], .events = POLLIN };
	int pr = poll(&p, 1, CRASH_FIRST_REPORT_TIMEOUT_MS);
	sleep_ms((unsigned)mrng_below(r, 30));
	cr_assert_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	bool in_apply = false;
	for (int i = 0; i < 2000 && !in_apply; i++) {
		lower = read_msgs(fds[0], lower, &in_apply);
		if (!in_apply)
			sleep_ms(1);
	}
	struct timespec ts = { 0, (long)mrng_below(r, 1500) * 1000L };
	nanosleep(&ts, NULL);
	kill(pid, SIGKILL);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(pr > 0, "child made no commit in %d ms", CRASH_FIRST_REPORT_TIMEOUT_MS);
	cr_assert(WIFSIGNALED(status) || WEXITSTATUS(status) == 0,
		"child failed with exit code %d", WEXITSTATUS(status));
	lower = read_msgs(fds[0], lower, &in_apply);
	*kills_in_apply += in_apply;
	close(fds[0]);
	return lower;
}

/* After reopen: re-applying the last committed batch is a no-op; a batch
 * mixing one old entry with the next batch applies only the new ones. */
static void check_reapply(st_store *st, uint64_t seed, st_index applied)
{
	if (applied == 0)
		return;
	struct stream s;
	stream_init(&s, seed);
	cr_assert(stream_to(&s, applied));
	struct st_status before, after;
	cr_assert_eq(st_status(st, &before), 0);
	struct st_result *res = calloc(CRASH_BATCH_ENTRIES_MAX + 1, sizeof(*res));
	int rc = st_apply(st, s.ent, s.ent_n, res);
	cr_assert_eq(rc, ST_ERR_ALREADY_APPLIED, "re-apply gave %d", rc);
	for (size_t i = 0; i < s.ent_n; i++) {
		cr_assert(!res[i].applied && res[i].err == ST_ERR_ALREADY_APPLIED,
			"entry %zu of a re-applied batch: applied=%d err=%d", i,
			res[i].applied, res[i].err);
		st_result_free(&res[i]);
	}
	cr_assert_eq(st_status(st, &after), 0);
	cr_assert(after.revision == before.revision &&
		after.applied_index == before.applied_index &&
		after.logical_bytes == before.logical_bytes &&
		after.keys == before.keys && after.leases == before.leases,
		"re-applying committed entries changed the store");
	struct check c = { 0 };
	cr_assert(check_full(&c, st, &s.m, &s.r, false), "%s", c.why);
	free(res);
	stream_fini(&s);
}

Test(store_crash, sigkill_mid_batch_keeps_last_commit, .timeout = 170)
{
	bool set;
	uint64_t seed = model_env_seed(0xc0ffee, &set);
	char dir[64];
	cr_assert_eq(model_tmpdir(dir, sizeof(dir), "store-crash"), 0);
	struct mrng r = { seed ^ 0xabcdef };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	st_index lower = 0;
	int rounds = 0, unreported = 0, in_apply = 0;
	for (; rounds < CRASH_ROUNDS_MAX; rounds++) {
		lower = crash_round(dir, seed, &r, lower, &in_apply);
		st_store *st = open_store(dir);
		st_index applied = st_applied_index(st);
		struct stream s;
		stream_init(&s, seed);
		cr_assert(stream_to(&s, lower));
		st_index in_flight = s.m.applied;
		if (applied != lower) { /* committed, killed before reporting */
			stream_next(&s);
			in_flight = s.m.applied;
			unreported++;
		}
		cr_assert(applied == lower || applied == in_flight,
			"seed %" PRIu64 " round %d: applied index %" PRIu64 ", child "
			"committed %" PRIu64 ", in flight %" PRIu64, seed, rounds,
			applied, lower, in_flight);
		struct check c = { 0 };
		cr_assert(check_full(&c, st, &s.m, &s.r, false),
			"seed %" PRIu64 " round %d (applied %" PRIu64 "): %s", seed,
			rounds, applied, c.why);
		stream_fini(&s);
		check_reapply(st, seed, applied);
		lower = applied;
		st_close(st);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((double)(t1.tv_sec - t0.tv_sec) > CRASH_TIME_S_MAX)
			break;
	}
	cr_log_info("crash test: %d rounds, applied index %" PRIu64 ", %d kills "
		"inside st_apply, %d of them after the commit", rounds, lower,
		in_apply, unreported);
	/* the kill must have hit an apply in progress at least once, or this
	 * test proved nothing about torn transactions */
	cr_assert_gt(in_apply, 0, "no kill landed inside st_apply");
	model_rmdir(dir);
}

/* Old entries in front of new ones: the old are skipped, the new applied. */
Test(store_crash, mixed_old_and_new_entries)
{
	char dir[64];
	cr_assert_eq(model_tmpdir(dir, sizeof(dir), "store-crash"), 0);
	st_store *st = open_store(dir);
	struct stream s;
	stream_init(&s, 99);
	struct st_result *res = calloc(CRASH_BATCH_ENTRIES_MAX + 1, sizeof(*res));
	stream_next(&s);
	cr_assert_eq(st_apply(st, s.ent, s.ent_n, res), 0);
	for (size_t i = 0; i < s.ent_n; i++)
		st_result_free(&res[i]);
	struct st_entry last = s.ent[s.ent_n - 1];
	/* keep the old entry's op memory alive: generate into a fresh arena */
	struct arena keep = s.a;
	arena_init(&s.a, 32u << 20);
	stream_next(&s);
	struct st_entry *mix = calloc(s.ent_n + 1, sizeof(*mix));
	mix[0] = last;
	memcpy(mix + 1, s.ent, s.ent_n * sizeof(*mix));
	cr_assert_eq(st_apply(st, mix, s.ent_n + 1, res), 0);
	cr_assert(!res[0].applied && res[0].err == ST_ERR_ALREADY_APPLIED);
	for (size_t i = 1; i <= s.ent_n; i++)
		cr_assert(res[i].applied, "new entry %zu not applied", i);
	for (size_t i = 0; i <= s.ent_n; i++)
		st_result_free(&res[i]);
	struct check c = { 0 };
	cr_assert(check_full(&c, st, &s.m, &s.r, true), "%s", c.why);
	cr_assert_eq(st_apply(st, mix, 0, res), ST_ERR_INVALID);
	free(mix);
	free(res);
	arena_fini(&keep);
	stream_fini(&s);
	st_close(st);
	model_rmdir(dir);
}

/* Copies the first 1/div of file src into dst. */
static void copy_prefix(const char *src, const char *dst, int div)
{
	int in = open(src, O_RDONLY), out = open(dst, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	cr_assert(in >= 0 && out >= 0);
	off_t size = lseek(in, 0, SEEK_END), done = 0, want = size / div;
	char buf[65536];
	while (done < want) {
		size_t n = (size_t)(want - done) < sizeof(buf) ? (size_t)(want - done) : sizeof(buf);
		ssize_t r = pread(in, buf, n, done);
		cr_assert(r > 0);
		cr_assert_eq(write(out, buf, (size_t)r), r);
		done += r;
	}
	close(in);
	close(out);
}

/* A corrupt snapshot is refused and leaves the store as it was; a good one
 * replaces contents that differed. */
Test(store_crash, restore_checks_snapshot_first)
{
	char d1[64], d2[64], snap[128];
	cr_assert_eq(model_tmpdir(d1, sizeof(d1), "store-crash"), 0);
	cr_assert_eq(model_tmpdir(d2, sizeof(d2), "store-crash"), 0);
	st_store *a = open_store(d1), *b = open_store(d2);
	struct stream sa, sb;
	stream_init(&sa, 5);
	stream_init(&sb, 6);
	struct st_result *res = calloc(CRASH_BATCH_ENTRIES_MAX, sizeof(*res));
	for (int i = 0; i < 3; i++) {
		stream_next(&sa);
		cr_assert_eq(st_apply(a, sa.ent, sa.ent_n, res), 0);
		for (size_t j = 0; j < sa.ent_n; j++)
			st_result_free(&res[j]);
		stream_next(&sb);
		cr_assert_eq(st_apply(b, sb.ent, sb.ent_n, res), 0);
		for (size_t j = 0; j < sb.ent_n; j++)
			st_result_free(&res[j]);
	}
	snprintf(snap, sizeof(snap), "%s/garbage.snap", d1);
	int fd = open(snap, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	cr_assert(fd >= 0);
	static const char junk[8192] = "this is not an LMDB file";
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	cr_assert_eq(st_restore_file(b, snap), ST_ERR_CORRUPT);
	struct check c = { 0 };
	cr_assert(check_full(&c, b, &sb.m, &sb.r, false), "after refused restore: %s",
		c.why);
	snprintf(snap, sizeof(snap), "%s/good.snap", d1);
	cr_assert_eq(st_snapshot_file(a, snap), 0);
	/* a torn copy (half of a good snapshot) is refused too */
	char torn[160];
	snprintf(torn, sizeof(torn), "%s/torn.snap", d1);
	copy_prefix(snap, torn, 2);
	int rc = st_restore_file(b, torn);
	cr_assert_eq(rc, ST_ERR_CORRUPT, "torn snapshot: %d (%s)", rc,
		st_strerror(rc));
	cr_assert(check_full(&c, b, &sb.m, &sb.r, false),
		"after refused torn restore: %s", c.why);
	cr_assert_eq(st_restore_file(b, snap), 0);
	cr_assert(check_full(&c, b, &sa.m, &sa.r, true), "after restore: %s", c.why);
	free(res);
	stream_fini(&sa);
	stream_fini(&sb);
	st_close(a);
	st_close(b);
	model_rmdir(d1);
	model_rmdir(d2);
}
