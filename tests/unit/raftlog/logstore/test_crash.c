/*
 * test_crash.c - a member killed at any moment (SIGKILL, mid-transaction
 * included) restarts with every batch that save() acknowledged, and with a
 * consistent log.
 *
 * A child process opens the log and runs a deterministic sequence of
 * operations (appends with hard state, truncate+append of the uncommitted
 * tail in a new term, compactions), writing the operation's number to a pipe
 * after each one returned success. The parent kills it a random delay
 * after its first report, replays the same sequence on an in-memory model
 * and requires the reopened log to equal the model after the last reported
 * operation, or after the one following it (which may have committed before
 * the child could report it) - nothing older, nothing else. Several rounds
 * continue the same log; the seed is logged (RL_CRASH_SEED=n replays the
 * operation sequence).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lt_helpers.h"

TestSuite(crash, .init = lt_setup, .fini = lt_teardown, .timeout = 60);

#define CRASH_ROUNDS 12
/* Operations one child runs at most (it is normally killed first). */
#define CRASH_OPS_MAX 1200u
/* Entries one append writes at most. */
#define CRASH_BATCH_MAX 16u
#define CRASH_INDEX_MAX (CRASH_ROUNDS * CRASH_OPS_MAX * CRASH_BATCH_MAX + 1)
/* The child is killed after a delay drawn in [min, min + span) us. */
#define CRASH_DELAY_MIN_US 3000u
#define CRASH_DELAY_SPAN_US 150000u
/* Longest wait for a child's first acknowledged operation. */
#define CRASH_FIRST_OP_TIMEOUT_MS 10000
/* Segment size of the child's log (the smallest allowed). */
#define CRASH_SEGMENT_BYTES (256u * 1024u)

enum op_kind { OP_SAVE, OP_COMPACT };

struct op {
	enum op_kind kind;
	rl_index first; /* OP_SAVE: first entry; OP_COMPACT: index */
	uint32_t n;
	rl_term term;
	struct rl_hard_state hs;
};

/* What determines the next operation: the same whether read from the
 * store (child) or kept by the model (parent). */
struct crash_pos {
	struct rl_hard_state hs;
	rl_index last;
	rl_index snap_index;
};

struct model {
	struct crash_pos pos;
	rl_term snap_term;
	rl_term *terms; /* terms[i] for i in (snap_index, last] */
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return x;
}

static void gen_op(const struct crash_pos *p, uint64_t seed, uint32_t j,
		   struct op *op)
{
	uint64_t r = mix(seed * 1000003u + j);
	rl_index commit = p->hs.commit;

	memset(op, 0, sizeof(*op));
	op->hs = p->hs;
	if (r % 23 == 0 && commit > p->snap_index) {
		op->kind = OP_COMPACT;
		op->first = commit - (r >> 40) % (commit - p->snap_index);
		return;
	}
	op->kind = OP_SAVE;
	if (p->hs.term == 0 || (r % 5 == 0 && p->last > commit)) {
		/* A new leader replaces the uncommitted tail (§5.3). */
		op->hs.term = p->hs.term + 1;
		op->hs.vote = 1 + (r >> 24) % 3;
		op->first = p->last > commit
				    ? commit + 1 + (r >> 8) % (p->last - commit)
				    : p->last + 1;
	} else {
		op->first = p->last + 1;
		rl_index c = commit + (r >> 20) % 6;
		op->hs.commit = c < p->last ? c : p->last;
	}
	op->term = op->hs.term;
	op->n = 1 + (uint32_t)((r >> 12) % CRASH_BATCH_MAX);
}

static void apply_op(struct model *m, const struct op *op)
{
	if (op->kind == OP_COMPACT) {
		m->snap_term = m->terms[op->first];
		m->pos.snap_index = op->first;
		return;
	}
	for (uint32_t k = 0; k < op->n; k++)
		m->terms[op->first + k] = op->term;
	m->pos.last = op->first + op->n - 1;
	m->pos.hs = op->hs;
}

static int exec_op(rl_logstore *ls, const struct op *op)
{
	if (op->kind == OP_COMPACT)
		return rl_logstore_compact(ls, op->first, NULL);
	return lt_append(ls, op->first, op->n, op->term, &op->hs);
}

static void read_pos(rl_logstore *ls, struct crash_pos *p)
{
	rl_logstore_hard_state(ls, &p->hs);
	p->last = rl_logstore_last_index(ls);
	p->snap_index = rl_logstore_first_index(ls) - 1;
}

/* The child: never returns into Criterion. */
static void run_child(const char *path, uint64_t seed, int fd)
{
	char msg[RL_LOG_ERRMSG_MAX];
	rl_logstore *ls;
	struct crash_pos p;
	struct op op;

	/* Small segments: kills also land in segment creation and in the
	 * deletion of segments after a compaction. */
	struct rl_logstore_options o = { .map_size_bytes = CRASH_SEGMENT_BYTES };

	if (rl_logstore_open(path, &o, &ls, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "child open: %s\n", msg);
		_exit(2);
	}
	read_pos(ls, &p);
	for (uint32_t j = 0; j < CRASH_OPS_MAX; j++) {
		gen_op(&p, seed, j, &op);
		int err = exec_op(ls, &op);
		if (err != 0) {
			fprintf(stderr, "child op %u: %s\n", j,
				rl_logstore_errmsg(ls));
			_exit(3);
		}
		read_pos(ls, &p);
		if (write(fd, &j, sizeof(j)) != (ssize_t)sizeof(j))
			_exit(4);
	}
	rl_logstore_close(ls);
	_exit(0);
}

/* True if the store holds exactly the model's state; *why says what
 * differs otherwise. */
static bool store_equals(rl_logstore *ls, const struct model *m,
			 char *why, size_t why_len)
{
	struct rl_hard_state hs;
	struct rl_entry *e = NULL;
	uint8_t want[300];
	size_t n = 0;
	rl_term t;

	rl_logstore_hard_state(ls, &hs);
	if (hs.term != m->pos.hs.term || hs.vote != m->pos.hs.vote ||
	    hs.commit != m->pos.hs.commit ||
	    rl_logstore_last_index(ls) != m->pos.last ||
	    rl_logstore_first_index(ls) != m->pos.snap_index + 1) {
		snprintf(why, why_len, "state: term %llu vote %llu commit %llu "
			 "first %llu last %llu", (unsigned long long)hs.term,
			 (unsigned long long)hs.vote,
			 (unsigned long long)hs.commit,
			 (unsigned long long)rl_logstore_first_index(ls),
			 (unsigned long long)rl_logstore_last_index(ls));
		return false;
	}
	cr_assert_eq(rl_logstore_term(ls, m->pos.snap_index, &t), 0);
	if (t != m->snap_term) {
		snprintf(why, why_len, "snapshot term %llu",
			 (unsigned long long)t);
		return false;
	}
	if (m->pos.last == m->pos.snap_index)
		return true;
	int err = rl_logstore_entries(ls, m->pos.snap_index + 1,
				      m->pos.last + 1, UINT64_MAX, &e, &n);
	cr_assert_eq(err, 0, "entries: %s", rl_logstore_errmsg(ls));
	bool same = n == m->pos.last - m->pos.snap_index;
	for (size_t k = 0; same && k < n; k++) {
		rl_index i = m->pos.snap_index + 1 + k;
		rl_term mt = m->terms[i];
		uint32_t len = lt_data_len(i, mt);
		lt_fill(want, len, i, mt);
		same = e[k].index == i && e[k].term == mt &&
		       e[k].data_len == len &&
		       (len == 0 || memcmp(e[k].data, want, len) == 0);
		if (!same)
			snprintf(why, why_len, "entry %llu differs",
				 (unsigned long long)i);
	}
	free(e);
	return same;
}

static void model_copy(struct model *dst, const struct model *src)
{
	rl_term *terms = dst->terms;

	memcpy(terms, src->terms, sizeof(rl_term) * CRASH_INDEX_MAX);
	*dst = *src;
	dst->terms = terms;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000u),
			       (long)(us % 1000000u) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Runs one child, kills it, returns how many operations it reported. */
static uint32_t run_round(const char *path, uint64_t seed, uint64_t delay_us,
			  bool *killed)
{
	uint32_t j, reported = 0;
	int fds[2], status;
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		run_child(path, seed, fds[1]);
	}
	close(fds[1]);
	/* Kill only after the first acknowledged operation, so that a slow
	 * (loaded) machine still exercises crashes between saves. */
	struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
	if (poll(&pfd, 1, CRASH_FIRST_OP_TIMEOUT_MS) == 1 &&
	    read(fds[0], &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		cr_assert_eq(j, 0);
		reported = 1;
	}
	sleep_us(delay_us);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	*killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
	if (WIFEXITED(status))
		cr_assert_eq(WEXITSTATUS(status), 0, "child failed (%d)",
			     WEXITSTATUS(status));
	/* The child is gone: read() ends at EOF. CRASH_OPS_MAX reports fit in
	 * a pipe buffer, so the child never blocked on it. */
	while (read(fds[0], &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		cr_assert_eq(j, reported, "reports out of order");
		reported++;
	}
	close(fds[0]);
	return reported;
}

Test(crash, killed_member_keeps_every_acknowledged_batch)
{
	/* RL_CRASH_SEED replays an operation sequence (kill moments stay
	 * timing-dependent). */
	const char *env = getenv("RL_CRASH_SEED");
	uint64_t base = env ? strtoull(env, NULL, 10)
			    : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	struct model m = { 0 }, next = { 0 };
	uint32_t total = 0, kills = 0, newer = 0;
	char why[160];

	_Static_assert(CRASH_OPS_MAX * sizeof(uint32_t) <= 4096 * 4,
		       "reports fit in a pipe buffer");
	cr_log_info("crash test seed %llu", (unsigned long long)base);
	m.terms = calloc(CRASH_INDEX_MAX, sizeof(rl_term));
	next.terms = calloc(CRASH_INDEX_MAX, sizeof(rl_term));
	cr_assert(m.terms && next.terms);
	for (int round = 0; round < CRASH_ROUNDS; round++) {
		uint64_t seed = base + (uint64_t)round;
		uint64_t delay = CRASH_DELAY_MIN_US +
				 mix(seed) % CRASH_DELAY_SPAN_US;
		bool killed;
		uint32_t k = run_round(lt_dir, seed, delay, &killed);
		struct op op;

		total += k;
		kills += killed;
		for (uint32_t j = 0; j < k; j++) {
			gen_op(&m.pos, seed, j, &op);
			apply_op(&m, &op);
		}
		model_copy(&next, &m);
		gen_op(&next.pos, seed, k, &op);
		apply_op(&next, &op);

		rl_logstore *ls = lt_open(lt_dir); /* fails on corruption */
		if (!store_equals(ls, &m, why, sizeof(why))) {
			char why2[160];
			cr_assert(k < CRASH_OPS_MAX &&
					  store_equals(ls, &next, why2,
						       sizeof(why2)),
				  "seed %llu round %d: after %u reported ops "
				  "the log matches neither op %u (%s) nor op "
				  "%u (%s)", (unsigned long long)base, round,
				  k, k, why, k + 1, why2);
			model_copy(&m, &next);
			newer++;
		}
		rl_logstore_close(ls);
	}
	cr_log_info("crash test: %u ops acknowledged over %d rounds, %u "
		    "kills, %u rounds found the unreported next op", total,
		    CRASH_ROUNDS, kills, newer);
	cr_assert_geq(kills, CRASH_ROUNDS / 2, "the child was rarely killed");
	cr_assert_geq(total, CRASH_ROUNDS, "a child made no progress");
	free(m.terms);
	free(next.terms);
}

/* ---- power loss: torn writes --------------------------------------------
 * A power loss during a save (after its pwrite, before its fdatasync
 * returned) can leave any subset of the record's sectors on disk; unwritten
 * sectors read as the zeros the segment was filled with. Such a save was
 * never acknowledged: open must cut it (and zero it, so later appends
 * start clean) and return the log as it was before it - nothing older.
 * The images are built from the segment file before and after one save. */

#define TORN_SECTOR_BYTES 512u
/* Matches WAL_TORN_TAIL_MIN_BYTES (raftlog/wal.h): a shorter zero run at
 * the record's end is not taken as a lost sector. */
#define TORN_TAIL_MIN_BYTES 32u

struct torn_fixture {
	char *path;     /* the segment */
	uint8_t *before, *after;
	size_t len;
	size_t s, e;    /* the second save's record: [s, e) */
};

/* Entries 1..4 (term 1), then the save that is torn: 5..24 (term 2), so
 * that its record spans several sectors. */
static void torn_setup(struct torn_fixture *f)
{
	struct rl_hard_state hs = { .term = 2, .vote = 1, .commit = 2 };
	rl_logstore *ls = lt_open(lt_dir);
	size_t len2;

	cr_assert_eq(lt_append(ls, 1, 4, 1, &hs), 0);
	f->path = lt_seg_path(lt_dir, 0);
	f->before = lt_read_file(f->path, &f->len);
	hs.commit = 10;
	cr_assert_eq(lt_append(ls, 5, 20, 2, &hs), 0);
	f->after = lt_read_file(f->path, &len2);
	rl_logstore_close(ls);
	cr_assert_eq(len2, f->len);
	for (f->s = 0; f->s < f->len && f->before[f->s] == f->after[f->s];)
		f->s++;
	for (f->e = f->len; f->e > f->s && f->before[f->e - 1] == f->after[f->e - 1];)
		f->e--;
	cr_assert_gt(f->e - f->s, 3 * TORN_SECTOR_BYTES, "record too small");
}

static void torn_teardown(struct torn_fixture *f)
{
	free(f->path);
	free(f->before);
	free(f->after);
}

/* Opens the image, expects the log before the torn save, and that open
 * zeroed the torn bytes; then appends and reopens. */
static void assert_cut(struct torn_fixture *f, const uint8_t *image,
		       const char *what)
{
	rl_term t1[4] = { 1, 1, 1, 1 };
	struct rl_hard_state hs;
	size_t len;

	lt_write_file(f->path, image, f->len);
	rl_logstore *ls = lt_open(lt_dir);
	cr_assert_eq(rl_logstore_last_index(ls), 4, "%s", what);
	rl_logstore_hard_state(ls, &hs);
	cr_assert_eq(hs.commit, 2, "%s", what);
	lt_assert_entries(ls, 1, 4, t1);
	rl_logstore_close(ls);
	uint8_t *now = lt_read_file(f->path, &len);
	cr_assert_eq(memcmp(now, f->before, f->len), 0,
		     "%s: the torn bytes were not zeroed", what);
	free(now);
	ls = lt_open(lt_dir);
	hs.commit = 3;
	cr_assert_eq(lt_append(ls, 5, 2, 3, &(struct rl_hard_state){
				       .term = 3, .vote = 2, .commit = 3 }),
		     0, "%s", rl_logstore_errmsg(ls));
	rl_logstore_close(ls);
	ls = lt_open(lt_dir);
	cr_assert_eq(rl_logstore_last_index(ls), 6, "%s", what);
	lt_assert_range_term(ls, 5, 6, 3);
	rl_logstore_close(ls);
}

/* Only a prefix of the record's sectors reached the disk. */
Test(crash, torn_prefix_of_a_save_is_cut)
{
	struct torn_fixture f;
	char what[64];
	int cases = 0;

	torn_setup(&f);
	uint8_t *image = malloc(f.len);
	cr_assert_not_null(image);
	/* Cut points: the record's start (nothing written) and each sector
	 * boundary inside it. */
	for (size_t c = f.s; c < f.e;
	     c = (c / TORN_SECTOR_BYTES + 1) * TORN_SECTOR_BYTES) {
		size_t rest = f.e - c;
		if (c != f.s && rest < TORN_SECTOR_BYTES &&
		    rest < TORN_TAIL_MIN_BYTES)
			continue;
		memcpy(image, f.before, f.len);
		memcpy(image + f.s, f.after + f.s, c - f.s);
		snprintf(what, sizeof(what), "prefix of %zu bytes", c - f.s);
		assert_cut(&f, image, what);
		cases++;
	}
	cr_assert_geq(cases, 3);
	free(image);
	torn_teardown(&f);
}

/* Sectors reach the disk out of order: a middle one is missing. */
Test(crash, torn_save_with_a_missing_middle_sector_is_cut)
{
	struct torn_fixture f;

	torn_setup(&f);
	uint8_t *image = malloc(f.len);
	cr_assert_not_null(image);
	size_t hole = (f.s / TORN_SECTOR_BYTES + 1) * TORN_SECTOR_BYTES;
	memcpy(image, f.after, f.len);
	memset(image + hole, 0, TORN_SECTOR_BYTES);
	assert_cut(&f, image, "middle sector missing");
	/* Header sector missing, later ones written. */
	memcpy(image, f.after, f.len);
	memset(image + f.s, 0, hole - f.s);
	assert_cut(&f, image, "first sector missing");
	free(image);
	torn_teardown(&f);
}

/* The whole record reached the disk although fdatasync did not return:
 * the save is kept (it may be acknowledged by then or not; both are
 * allowed, nothing else). */
Test(crash, complete_unsynced_save_is_kept)
{
	struct torn_fixture f;

	torn_setup(&f);
	lt_write_file(f.path, f.after, f.len);
	rl_logstore *ls = lt_open(lt_dir);
	cr_assert_eq(rl_logstore_last_index(ls), 24);
	lt_assert_range_term(ls, 5, 24, 2);
	rl_logstore_close(ls);
	torn_teardown(&f);
}

/* A torn record followed by a complete one cannot be a torn write (only the
 * last write can be torn): corruption, never cut. */
Test(crash, damaged_record_before_a_valid_one_is_corrupt)
{
	struct torn_fixture f;
	char msg[RL_LOG_ERRMSG_MAX];
	rl_logstore *ls;

	torn_setup(&f);
	ls = lt_open(lt_dir);
	cr_assert_eq(lt_append(ls, 25, 2, 2, NULL), 0);
	rl_logstore_close(ls);
	size_t len;
	uint8_t *image = lt_read_file(f.path, &len);
	size_t hole = (f.s / TORN_SECTOR_BYTES + 1) * TORN_SECTOR_BYTES;
	memset(image + hole, 0, TORN_SECTOR_BYTES);
	lt_write_file(f.path, image, len);
	cr_assert_eq(rl_logstore_open(lt_dir, NULL, &ls, msg, sizeof(msg)),
		     RL_LOG_ERR_CORRUPT, "%s", msg);
	free(image);
	torn_teardown(&f);
}
