/*
 * it_lock.c - process-level tests of libraftbus's locks and elections
 * (client/rb_concurrency.c) and of `raftbusctl lock` / `elect`, against
 * real members on loopback. One scenario per argv[1]:
 *
 *   mutex  threads and child processes (some killed -9) take lock "L" and
 *          do a fenced increment of a counter, logging each increment in
 *          the store; a holder is killed -9 while holding; the Raft leader
 *          is killed -9 mid-run. Checks: every increment happened under a
 *          distinct grant (no slot written twice), fencing tokens strictly
 *          increase in grant order, the counter equals the number of
 *          successful fenced writes, every acknowledged write is in the
 *          log with its token, a killed holder's lease expiry releases the
 *          lock (and not before), and a stale token is refused.
 *   elect  campaigners (threads) proclaim and resign in turn while two
 *          observers (a thread, and `raftbusctl elect --listen`) follow;
 *          a `raftbusctl elect` leader is killed -9. Checks: at most one
 *          leader at a time, observers see exactly the elected sequence,
 *          resign and lease expiry hand over.
 *   cli    `raftbusctl lock`: output, environment, exit status of the
 *          command, exclusion against a library client, unlock on SIGTERM,
 *          release by lease expiry after kill -9, argument errors; and a
 *          waiter whose lease expires gets RB_ERR_LOCK_LOST.
 *
 * Child mode (re-executed by the scenarios): `it_lock worker EPS FILE MS`
 * and `it_lock holder EPS FILE`. Every loop is bounded in count and time;
 * every process started is stopped by PID.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it_util.h"
#include "raftbus.h"

#define S(x) (const uint8_t *)(x), strlen(x)

/* Lease TTL of the test sessions (the server's minimum for a 500 ms
 * election timeout is 1 s). */
#define TTL_S 2
/* The campaigners' sessions outlive the Raft leader kill of `elect` even
 * when the election and the first keep-alive after it are slow. */
#define CAMPAIGN_TTL_S 6
/* A lock or leadership freed by a killed holder's lease, not at once: the
 * holder renewed every TTL/3, so the lease ran out no sooner than 2/3 of
 * the TTL after the kill, less a renewal up to 500 ms late on a loaded
 * machine. A release when the connection closed would show a gap near 0,
 * a lease expired at less than 40 % of its TTL a gap below this. */
#define HANDOVER_GAP_MS_MIN (TTL_S * 1000 * 2 / 3 - 500)
#define HANDOVER_GAP_MS_MAX (TTL_S * 2000 + 1500)
#define LOCK_NAME "L"
#define ELECT_NAME "E"
#define WORKER_THREADS 3
#define WORKER_CHILDREN 2
#define MUTEX_RUN_MS 12000
/* Successful fenced writes recorded per worker. */
#define RECS_MAX 4096
#define CHILDREN_MAX 16
#define CAMPAIGNERS 3
#define ROUNDS 4
#define ELECTIONS_MAX 64
#define REPORTS_MAX 256
#define LINE_BYTES_MAX 256

/* ---- child processes ---------------------------------------------------- */

static pid_t children[CHILDREN_MAX];

static void kill_children(void)
{
	for (int i = 0; i < CHILDREN_MAX; i++)
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
}

/* Starts argv with stdout (and stderr) to out_path (NULL = inherit). */
static pid_t start_child(const char *const *argv, const char *out_path)
{
	static bool atexit_set;
	if (!atexit_set) {
		atexit(kill_children);
		atexit_set = true;
	}
	fflush(NULL);
	pid_t pid = fork();
	IT_CHECK(pid >= 0, "fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (out_path) {
			int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			dup2(fd, 1);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < CHILDREN_MAX; i++)
		if (children[i] == 0) {
			children[i] = pid;
			return pid;
		}
	IT_CHECK(0, "too many children");
	return -1;
}

/* Sends sig and waits (at most 10 s, then SIGKILL); returns the status. */
static int stop_child(pid_t pid, int sig)
{
	kill(pid, sig);
	int st = 0;
	int64_t end = it_now_ms() + 10000;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (it_now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			break;
		}
		it_sleep_ms(10);
	}
	for (int i = 0; i < CHILDREN_MAX; i++)
		if (children[i] == pid)
			children[i] = 0;
	return st;
}

/* Waits for a child to exit by itself within ms; its status. */
static int wait_child_exit(pid_t pid, int ms)
{
	int st = 0;
	int64_t end = it_now_ms() + ms;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		IT_CHECK(it_now_ms() < end, "child %d did not exit within %d ms",
		    (int)pid, ms);
		it_sleep_ms(10);
	}
	for (int i = 0; i < CHILDREN_MAX; i++)
		if (children[i] == pid)
			children[i] = 0;
	return st;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return strdup("");
	char *buf = calloc(1, 1 << 20);
	IT_CHECK(buf, "calloc");
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Waits until file path has at least `lines` lines; its text. */
static char *wait_lines(const char *path, int lines, int ms)
{
	int64_t end = it_now_ms() + ms;
	for (;;) {
		char *t = slurp(path);
		int n = 0;
		for (const char *p = t; *p; p++)
			n += *p == '\n';
		if (n >= lines)
			return t;
		free(t);
		IT_CHECK(it_now_ms() < end, "%s: %d lines not written in %d ms",
		    path, lines, ms);
		it_sleep_ms(20);
	}
}

/* ---- clients ------------------------------------------------------------ */

static void endpoints_of(struct it_cluster *c, char *buf, size_t len)
{
	size_t off = 0;
	for (int i = 0; i < c->n; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "",
		    c->m[i].client_url);
}

static rb_client *open_client(const char *eps_csv)
{
	char tmp[1024];
	snprintf(tmp, sizeof(tmp), "%s", eps_csv);
	const char *eps[IT_MEMBERS_MAX];
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(tmp, ",", &save);
	    t && n < IT_MEMBERS_MAX; t = strtok_r(NULL, ",", &save))
		eps[n++] = t;
	struct rb_config cfg = { .endpoints = eps, .endpoints_n = n,
	    .command_timeout_ms = 3000 };
	rb_client *c = NULL;
	IT_CHECK(rb_client_open(&cfg, &c) == 0, "rb_client_open %s", eps_csv);
	return c;
}

static rb_session *open_session_ttl(rb_client *c, int64_t ttl_s)
{
	rb_session *s = NULL;
	int64_t end = it_now_ms() + 10000;
	for (;;) {
		struct rb_resp r = { 0 };
		int rc = rb_session_open(c, ttl_s, &s, &r);
		rb_resp_free(&r);
		if (rc == 0)
			return s;
		IT_CHECK(it_now_ms() < end, "session: %s", rb_cc_strerror(rc));
		it_sleep_ms(100);
	}
}

static rb_session *open_session(rb_client *c)
{
	return open_session_ttl(c, TTL_S);
}

/* Value of key as an integer (0 when absent); -1 when the read failed. */
static int64_t read_int(rb_client *c, const char *key)
{
	struct rb_range q = { .key = S(key) };
	struct rb_resp r = { 0 };
	int64_t v = -1;
	if (rb_range(c, &q, &r) == 0) {
		v = 0;
		if (r.body.u.range.kvs_n == 1) {
			char buf[32] = { 0 };
			size_t n = r.body.u.range.kvs[0].value_len;
			memcpy(buf, r.body.u.range.kvs[0].value, n < 31 ? n : 31);
			v = strtoll(buf, NULL, 10);
		}
	}
	rb_resp_free(&r);
	return v;
}

/* ---- the fenced increment (threads and child workers) -------------------- */

struct rec {
	int64_t slot;            /* the counter value written */
	rb_rev token;
	int64_t granted_ms;      /* CLOCK_MONOTONIC ms when the lock came */
};

struct worker {
	char eps[1024];
	char name[32];
	int64_t until_ms;
	FILE *out;               /* child workers: one line per success */
	struct rec recs[RECS_MAX];
	int recs_n;
	int stale, unknown, lock_errors;
};

/* Reads the counter and writes counter+1 and log/<counter+1> = token,
 * fenced by the lock. Returns the rb_fenced_txn() result. */
static int fenced_increment(rb_client *c, const struct rb_cc_key *k,
    const char *who, int64_t *slot)
{
	int64_t v = read_int(c, "counter");
	if (v < 0)
		return RB_ERR_UNAVAILABLE;
	*slot = v + 1;
	char cnt[32], logk[32], logv[64];
	snprintf(cnt, sizeof(cnt), "%" PRId64, *slot);
	snprintf(logk, sizeof(logk), "log/%08" PRId64, *slot);
	snprintf(logv, sizeof(logv), "%" PRId64 " %s", k->token, who);
	struct rb_op ops[2] = { { .type = RB_OP_PUT }, { .type = RB_OP_PUT } };
	ops[0].u.put = (struct rb_put){ .key = S("counter"), .value = S(cnt) };
	ops[1].u.put = (struct rb_put){ .key = S(logk), .value = S(logv) };
	struct rb_resp r = { 0 };
	int rc = rb_fenced_txn(c, k->key, k->key_len, k->token, ops, 2, &r);
	rb_resp_free(&r);
	return rc;
}

/* One lock / fenced increment / unlock round. */
static void worker_round(struct worker *w, rb_client *c, rb_session **s)
{
	if (rb_session_expired(*s)) {
		rb_session_close(*s);
		*s = open_session(c);
	}
	struct rb_cc_wait wait = { .timeout_ms = 8000 };
	struct rb_cc_key k;
	struct rb_resp r = { 0 };
	int rc = rb_lock(c, S(LOCK_NAME), rb_session_lease(*s), &wait, &k, &r);
	rb_resp_free(&r);
	if (rc) {
		w->lock_errors++;
		it_sleep_ms(50);
		return;
	}
	int64_t granted = it_now_ms(), slot = 0;
	rc = fenced_increment(c, &k, w->name, &slot);
	if (rc == 0 && w->recs_n < RECS_MAX) {
		w->recs[w->recs_n++] = (struct rec){ slot, k.token, granted };
		if (w->out) {
			fprintf(w->out, "ok %" PRId64 " %" PRId64 " %" PRId64 "\n", slot,
			    k.token, granted);
			fflush(w->out);
		}
	} else if (rc == RB_ERR_STALE_TOKEN) {
		w->stale++;
	} else if (rc) {
		w->unknown++;
		if (w->out) {
			fprintf(w->out, "unknown\n");
			fflush(w->out);
		}
	}
	it_sleep_ms(rand() % 10);   /* hold it a little */
	rb_unlock(c, &k, &r);
	rb_resp_free(&r);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	rb_client *c = open_client(w->eps);
	rb_session *s = open_session(c);
	for (int i = 0; i < 100000 && it_now_ms() < w->until_ms; i++)
		worker_round(w, c, &s);
	rb_session_close(s);
	rb_client_close(c);
	return NULL;
}

static int child_worker(const char *eps, const char *path, const char *ms)
{
	static struct worker w;
	snprintf(w.eps, sizeof(w.eps), "%s", eps);
	snprintf(w.name, sizeof(w.name), "pid%d", (int)getpid());
	w.until_ms = it_now_ms() + atoi(ms);
	w.out = fopen(path, "w");
	IT_CHECK(w.out, "open %s", path);
	worker_main(&w);
	fclose(w.out);
	return 0;
}

/* Takes the lock and holds it until killed, keeping its lease alive. */
static int child_holder(const char *eps, const char *path)
{
	rb_client *c = open_client(eps);
	rb_session *s = open_session(c);
	struct rb_cc_wait wait = { .timeout_ms = 20000 };
	struct rb_cc_key k;
	struct rb_resp r = { 0 };
	int rc = rb_lock(c, S(LOCK_NAME), rb_session_lease(s), &wait, &k, &r);
	IT_CHECK(rc == 0, "holder lock: %s", r.msg);
	rb_resp_free(&r);
	FILE *f = fopen(path, "w");
	IT_CHECK(f, "open %s", path);
	fprintf(f, "held %.*s %" PRId64 " %" PRId64 "\n", (int)k.key_len,
	    (const char *)k.key, k.token, it_now_ms());
	fclose(f);
	for (int i = 0; i < 600; i++)
		it_sleep_ms(100);   /* killed long before */
	return 0;
}

/* ---- mutex -------------------------------------------------------------- */

/* Every successful fenced write that some client saw acknowledged. */
struct acked {
	struct rec recs[RECS_MAX * 4];
	int n;
};

static void add_acked(struct acked *a, const struct rec *r)
{
	IT_CHECK(a->n < (int)(sizeof(a->recs) / sizeof(a->recs[0])), "too many");
	a->recs[a->n++] = *r;
}

/* Parses a child worker's "ok SLOT TOKEN MS" and "unknown" lines. */
static int read_worker_file(const char *path, struct acked *a, int *unknown)
{
	char *t = slurp(path);
	int n = 0;
	for (char *save = NULL, *line = strtok_r(t, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		struct rec r;
		if (sscanf(line, "ok %" SCNd64 " %" SCNd64 " %" SCNd64, &r.slot,
		    &r.token, &r.granted_ms) == 3) {
			add_acked(a, &r);
			n++;
		}
		*unknown += strcmp(line, "unknown") == 0;
	}
	free(t);
	return n;
}

/* The store's log: slot i (1-based) -> token. Checks the counter equals
 * the number of slots, every slot was written once, and tokens strictly
 * increase with the slot (= in grant order). */
static int64_t check_log(rb_client *c, rb_rev **tokens_out)
{
	int64_t counter = read_int(c, "counter");
	IT_CHECK(counter >= 0, "read counter");
	uint8_t end[8];
	struct rb_range q = { .key = S("log/"), .range_end = end,
	    .range_end_len = rb_prefix_end(S("log/"), end) };
	struct rb_resp r = { 0 };
	IT_CHECK(rb_range(c, &q, &r) == 0, "range log/: %s", r.msg);
	const struct rb_range_resp *rr = &r.body.u.range;
	IT_CHECK((int64_t)rr->kvs_n == counter, "counter %" PRId64 " but %zu "
	    "fenced writes logged", counter, rr->kvs_n);
	rb_rev *tok = calloc((size_t)counter + 1, sizeof(*tok));
	IT_CHECK(tok, "calloc");
	for (size_t i = 0; i < rr->kvs_n; i++) {
		const struct rb_kv *kv = &rr->kvs[i];
		char key[32] = { 0 }, val[64] = { 0 };
		memcpy(key, kv->key, kv->key_len < 31 ? kv->key_len : 31);
		memcpy(val, kv->value, kv->value_len < 63 ? kv->value_len : 63);
		int64_t slot = strtoll(key + 4, NULL, 10);
		IT_CHECK(slot == (int64_t)i + 1, "log slot %s out of place", key);
		IT_CHECK(kv->version == 1, "slot %s written %" PRId64 " times: two "
		    "clients held the lock at once (%s)", key, kv->version, val);
		tok[i + 1] = strtoll(val, NULL, 10);
		IT_CHECK(i == 0 || tok[i + 1] > tok[i], "token of slot %zu (%" PRId64
		    ") not above the previous one (%" PRId64 ")", i + 1, tok[i + 1],
		    tok[i]);
	}
	rb_resp_free(&r);
	*tokens_out = tok;
	return counter;
}

static void self_exe(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	IT_CHECK(n > 0, "readlink /proc/self/exe");
	buf[n] = '\0';
}

/* What the holder child did before it was killed -9. */
struct holder {
	char key[LINE_BYTES_MAX];
	rb_rev token;
	int64_t held_ms, killed_ms;
};

/* A holder child takes the lock, holds it 300 ms and is killed -9. */
static void kill_holder(const char *eps, const char *dir, const char *exe,
    struct holder *h)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/holder.out", dir);
	const char *argv[] = { exe, "holder", eps, path, NULL };
	pid_t pid = start_child(argv, NULL);
	char *t = wait_lines(path, 1, 20000);
	IT_CHECK(sscanf(t, "held %255s %" SCNd64 " %" SCNd64, h->key, &h->token,
	    &h->held_ms) == 3, "holder output: %s", t);
	free(t);
	it_sleep_ms(300);
	stop_child(pid, SIGKILL);
	h->killed_ms = it_now_ms();
}

/* Nobody got the lock while the holder had it; somebody got it once the
 * holder's lease ran out (after its last renewal, at most TTL/3 before the
 * kill, plus the TTL). */
static void check_holder(const struct holder *h, const struct acked *a)
{
	int64_t first = INT64_MAX;
	for (int i = 0; i < a->n; i++) {
		const struct rec *r = &a->recs[i];
		IT_CHECK(r->granted_ms < h->held_ms || r->granted_ms > h->killed_ms,
		    "slot %" PRId64 " granted while the holder held the lock",
		    r->slot);
		if (r->granted_ms > h->killed_ms && r->granted_ms < first)
			first = r->granted_ms;
	}
	IT_CHECK(first != INT64_MAX, "nobody got the lock after the holder died");
	int64_t gap = first - h->killed_ms;
	fprintf(stderr, "mutex: lock granted again %" PRId64 " ms after kill -9 "
	    "of its holder (lease TTL %d s)\n", gap, TTL_S);
	IT_CHECK(gap >= HANDOVER_GAP_MS_MIN,
	    "released %" PRId64 " ms after the kill: before the lease expired", gap);
	IT_CHECK(gap <= HANDOVER_GAP_MS_MAX, "released only after %" PRId64
	    " ms", gap);
}

static void start_workers(struct worker *w, pthread_t *th, pid_t *kids,
    const char *eps, const char *dir, const char *exe)
{
	for (int i = 0; i < WORKER_THREADS; i++) {
		snprintf(w[i].eps, sizeof(w[i].eps), "%s", eps);
		snprintf(w[i].name, sizeof(w[i].name), "thread%d", i);
		w[i].until_ms = it_now_ms() + MUTEX_RUN_MS;
		IT_CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0,
		    "pthread_create");
	}
	char ms[16];
	snprintf(ms, sizeof(ms), "%d", MUTEX_RUN_MS);
	for (int i = 0; i < WORKER_CHILDREN; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/worker%d.out", dir, i);
		const char *argv[] = { exe, "worker", eps, path, ms, NULL };
		kids[i] = start_child(argv, NULL);
	}
}

/* A stale token is refused: the dead holder's, and one of a lock taken
 * and released; nothing is written. */
static void check_stale(rb_client *c, const struct holder *h)
{
	int64_t before = read_int(c, "counter");
	struct rb_cc_key k = { .token = h->token };
	k.key_len = strlen(h->key);
	memcpy(k.key, h->key, k.key_len);
	struct rb_put put = { .key = S("counter"), .value = S("-1") };
	struct rb_resp r = { 0 };
	int rc = rb_fenced_put(c, &k, &put, &r);
	IT_CHECK(rc == RB_ERR_STALE_TOKEN, "dead holder's token: %s", r.msg);
	rb_resp_free(&r);
	rb_session *s = open_session(c);
	struct rb_cc_wait wait = { .timeout_ms = 10000 };
	IT_CHECK(rb_lock(c, S(LOCK_NAME), rb_session_lease(s), &wait, &k, &r) == 0,
	    "lock: %s", r.msg);
	rb_resp_free(&r);
	IT_CHECK(k.token > h->token, "token %" PRId64 " after %" PRId64, k.token,
	    h->token);
	IT_CHECK(rb_unlock(c, &k, &r) == 0, "unlock: %s", r.msg);
	rb_resp_free(&r);
	rc = rb_fenced_put(c, &k, &put, &r);
	IT_CHECK(rc == RB_ERR_STALE_TOKEN, "released lock's token: %d %s", rc, r.msg);
	rb_resp_free(&r);
	IT_CHECK(read_int(c, "counter") == before, "a refused write changed the "
	    "counter");
	rb_session_close(s);
}

/* What the workers reported. */
struct totals {
	int stale, unknown, lock_errors;
	int per_child[WORKER_CHILDREN];
};

static void collect(const struct worker *w, const char *dir, struct acked *a,
    struct totals *t)
{
	for (int i = 0; i < WORKER_THREADS; i++) {
		for (int j = 0; j < w[i].recs_n; j++)
			add_acked(a, &w[i].recs[j]);
		t->stale += w[i].stale;
		t->unknown += w[i].unknown;
		t->lock_errors += w[i].lock_errors;
	}
	for (int i = 0; i < WORKER_CHILDREN; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/worker%d.out", dir, i);
		t->per_child[i] = read_worker_file(path, a, &t->unknown);
	}
}

/* Every acknowledged write is in the store's log with its token; the
 * counter counts them all. */
static void check_acked(rb_client *cl, const struct acked *a,
    const struct totals *t, int64_t leader_killed)
{
	rb_rev *tok;
	int64_t counter = check_log(cl, &tok);
	int after_failover = 0;
	for (int i = 0; i < a->n; i++) {
		const struct rec *r = &a->recs[i];
		IT_CHECK(r->slot >= 1 && r->slot <= counter && tok[r->slot] == r->token,
		    "acknowledged write of slot %" PRId64 " (token %" PRId64 ") not in "
		    "the log", r->slot, r->token);
		after_failover += r->granted_ms > leader_killed;
	}
	free(tok);
	fprintf(stderr, "mutex: %" PRId64 " fenced increments (%d acknowledged, "
	    "%d outcome unknown, %d stale, %d lock errors; children %d and %d "
	    "(killed)); %d after the leader kill\n", counter, a->n, t->unknown,
	    t->stale, t->lock_errors, t->per_child[1], t->per_child[0],
	    after_failover);
	IT_CHECK(counter >= 30, "only %" PRId64 " increments", counter);
	IT_CHECK(t->per_child[1] > 0, "child worker made no progress");
	IT_CHECK(after_failover > 0, "no lock granted after the leader died");
	/* the child killed -9 may have died between a write and its line */
	IT_CHECK(counter - a->n <= t->unknown + 1, "%" PRId64 " writes nobody saw",
	    counter - a->n);
}

static void test_mutex(void)
{
	struct it_cluster c;
	it_cluster_init(&c, 3);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "a leader");
	char eps[1024], exe[512];
	endpoints_of(&c, eps, sizeof(eps));
	self_exe(exe, sizeof(exe));
	static struct worker w[WORKER_THREADS];
	pthread_t th[WORKER_THREADS];
	pid_t kids[WORKER_CHILDREN];
	int64_t t0 = it_now_ms();
	start_workers(w, th, kids, eps, c.dir, exe);
	it_sleep_ms(1000);
	struct holder h;
	kill_holder(eps, c.dir, exe, &h);
	while (it_now_ms() < t0 + 5000)
		it_sleep_ms(50);
	stop_child(kids[0], SIGKILL);
	it_sleep_ms(1000);
	int leader = it_leader(&c, "a leader");
	it_kill(&c, leader, SIGKILL);
	int64_t leader_killed = it_now_ms();
	it_sleep_ms(2500);
	it_start(&c, leader);
	for (int i = 0; i < WORKER_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 1; i < WORKER_CHILDREN; i++) {
		int st = wait_child_exit(kids[i], 15000);
		IT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %d: status %d",
		    i, st);
	}
	static struct acked a;
	struct totals t = { 0 };
	collect(w, c.dir, &a, &t);
	rb_client *cl = open_client(eps);
	check_acked(cl, &a, &t, leader_killed);
	check_holder(&h, &a);
	check_stale(cl, &h);
	rb_client_close(cl);
	it_cluster_done(&c);
}

/* ---- elect -------------------------------------------------------------- */

struct leader_rec {
	char key[LINE_BYTES_MAX];
	char value[LINE_BYTES_MAX];
	rb_rev token;            /* create revision; 0 = not known */
	int64_t at_ms;
};

struct elect_shared {
	char eps[1024];
	atomic_int leaders;      /* campaigners that believe they lead */
	atomic_int violations;
	atomic_int errors;
	pthread_mutex_t mtx;
	struct leader_rec elected[ELECTIONS_MAX];   /* in election order */
	int elected_n;
};

struct campaigner {
	struct elect_shared *sh;
	int id, rounds;
	const char *value;       /* fixed value and no proclaim, or NULL */
};

struct observer {
	struct elect_shared *sh;
	atomic_bool stop;
	struct leader_rec reps[REPORTS_MAX];
	atomic_int n;
};

static void copy_str(char *dst, const uint8_t *src, size_t n)
{
	n = n < LINE_BYTES_MAX - 1 ? n : LINE_BYTES_MAX - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool transient(int rc)
{
	return rc == RB_ERR_UNAVAILABLE || rc == RB_ERR_TIMEOUT ||
	    rc == RB_ERR_NO_LEADER || rc == RB_ERR_NOT_LEADER;
}

/* Wins one election, proclaims (unless a fixed value), leads 100 ms,
 * resigns. */
static void campaign_round(struct campaigner *cp, rb_client *c, rb_session *s,
    int round)
{
	struct elect_shared *sh = cp->sh;
	char v[64];
	snprintf(v, sizeof(v), "w%d-%d", cp->id, round);
	const char *val = cp->value ? cp->value : v;
	struct rb_cc_wait wait = { .timeout_ms = 20000 };
	struct rb_cc_key k;
	struct rb_resp r = { 0 };
	int rc = rb_campaign(c, S(ELECT_NAME), rb_session_lease(s), S(val), &wait,
	    &k, &r);
	IT_CHECK(rc == 0, "campaign %s: %s", val, r.msg);
	rb_resp_free(&r);
	if (atomic_fetch_add(&sh->leaders, 1) != 0)
		atomic_fetch_add(&sh->violations, 1);
	pthread_mutex_lock(&sh->mtx);
	IT_CHECK(sh->elected_n < ELECTIONS_MAX, "too many elections");
	struct leader_rec *e = &sh->elected[sh->elected_n++];
	copy_str(e->key, k.key, k.key_len);
	snprintf(e->value, sizeof(e->value), "%s", val);
	e->token = k.token;
	e->at_ms = it_now_ms();
	pthread_mutex_unlock(&sh->mtx);
	if (cp->value == NULL) {
		snprintf(v + strlen(v), sizeof(v) - strlen(v), "-p");
		for (int i = 0; i < 5 && (rc = rb_proclaim(c, &k, S(v), &r)) != 0 &&
		    transient(rc); i++)
			rb_resp_free(&r);
		IT_CHECK(rc == 0, "proclaim: %s", r.msg);
		rb_resp_free(&r);
	}
	it_sleep_ms(100);
	atomic_fetch_sub(&sh->leaders, 1);
	IT_CHECK(rb_resign(c, &k, &r) == 0, "resign: %s", r.msg);
	rb_resp_free(&r);
}

static void *campaigner_main(void *arg)
{
	struct campaigner *cp = arg;
	rb_client *c = open_client(cp->sh->eps);
	rb_session *s = open_session_ttl(c, CAMPAIGN_TTL_S);
	for (int i = 0; i < cp->rounds; i++) {
		campaign_round(cp, c, s, i);
		it_sleep_ms(10 + rand() % 20);
	}
	IT_CHECK(!rb_session_expired(s), "campaigner %d: session expired", cp->id);
	rb_session_close(s);
	rb_client_close(c);
	return NULL;
}

static void *observer_main(void *arg)
{
	struct observer *o = arg;
	rb_client *c = open_client(o->sh->eps);
	rb_observer *ob = NULL;
	int rc = RB_ERR_UNAVAILABLE;
	for (int i = 0; i < 50 && transient(rc); i++)
		rc = rb_observe_open(c, S(ELECT_NAME), &ob);
	IT_CHECK(rc == 0, "observe: %s", rb_cc_strerror(rc));
	for (int i = 0; i < 100000 && !atomic_load(&o->stop); i++) {
		bool got = false;
		struct rb_leader_event ev;
		rc = rb_observe_next(ob, 200, &got, &ev);
		IT_CHECK(rc == 0 || transient(rc), "observe: %s", rb_cc_strerror(rc));
		if (!got)
			continue;
		int n = atomic_load(&o->n);
		IT_CHECK(n < REPORTS_MAX, "too many reports");
		copy_str(o->reps[n].key, ev.kv.key, ev.kv.key_len);
		copy_str(o->reps[n].value, ev.kv.value, ev.kv.value_len);
		o->reps[n].token = ev.kv.create_revision;
		o->reps[n].at_ms = it_now_ms();
		atomic_store(&o->n, n + 1);
	}
	rb_observe_close(ob);
	rb_client_close(c);
	return NULL;
}

/* Drops consecutive duplicates (a proclaim re-sent after a lost reply is
 * reported twice, as in etcd). */
static int dedup(struct leader_rec *r, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		if (k == 0 || strcmp(r[i].key, r[k - 1].key) != 0 ||
		    strcmp(r[i].value, r[k - 1].value) != 0)
			r[k++] = r[i];
	return k;
}

/* The expected reports: each thread election and its proclaim, then the
 * CLI leader, then the one elected after the CLI leader was killed. */
static int expected_reports(const struct elect_shared *sh, const char *cli_key,
    struct leader_rec *out)
{
	int n = 0;
	for (int i = 0; i < sh->elected_n; i++) {
		const struct leader_rec *e = &sh->elected[i];
		out[n++] = *e;
		if (i == sh->elected_n - 1)
			break;   /* the last one ("after-kill") proclaims nothing */
		out[n] = *e;
		snprintf(out[n].value, sizeof(out[n].value), "%s-p", e->value);
		n++;
		if (i == sh->elected_n - 2) {   /* the CLI leader came in between */
			snprintf(out[n].key, sizeof(out[n].key), "%s", cli_key);
			snprintf(out[n].value, sizeof(out[n].value), "cli");
			out[n++].token = 0;
		}
	}
	return n;
}

static void check_reports(const char *who, struct leader_rec *got, int got_n,
    const struct leader_rec *want, int want_n)
{
	got_n = dedup(got, got_n);
	for (int i = 0; i < want_n && i < got_n; i++) {
		IT_CHECK(!strcmp(got[i].key, want[i].key) &&
		    !strcmp(got[i].value, want[i].value), "%s: report %d is %s=%s, "
		    "expected %s=%s", who, i, got[i].key, got[i].value, want[i].key,
		    want[i].value);
		IT_CHECK(!want[i].token || !got[i].token ||
		    got[i].token == want[i].token, "%s: report %d: token", who, i);
		IT_CHECK(i == 0 || !got[i].token || got[i].token >= got[i - 1].token,
		    "%s: leader create revisions go back", who);
	}
	IT_CHECK(got_n == want_n, "%s: %d leader reports, expected %d", who, got_n,
	    want_n);
}

/* `raftbusctl elect --listen` output: key and value lines. */
static int parse_listen(const char *path, struct leader_rec *out)
{
	char *t = slurp(path);
	int n = 0;
	char *save = NULL;
	for (char *k = strtok_r(t, "\n", &save); k && n < REPORTS_MAX;
	    k = strtok_r(NULL, "\n", &save)) {
		char *v = strtok_r(NULL, "\n", &save);
		IT_CHECK(v, "elect --listen: key %s without a value", k);
		snprintf(out[n].key, sizeof(out[n].key), "%s", k);
		snprintf(out[n].value, sizeof(out[n].value), "%s", v);
		out[n++].token = 0;
	}
	free(t);
	return n;
}

/* A `raftbusctl elect` leader is killed -9: the waiting campaigner is
 * elected once its lease expires. Returns the CLI leader's key. */
static void cli_leader_dies(struct elect_shared *sh, const char *ctl,
    const char *dir, char *cli_key)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/elect.out", dir);
	const char *argv[] = { ctl, "--endpoints", sh->eps, "elect", "--ttl", "2",
	    ELECT_NAME, "cli", NULL };
	pid_t pid = start_child(argv, path);
	char *t = wait_lines(path, 2, 15000);
	IT_CHECK(sscanf(t, "%255s", cli_key) == 1, "elect output: %s", t);
	IT_CHECK(strstr(t, "\ncli\n"), "elect printed %s", t);
	free(t);
	struct campaigner cp = { .sh = sh, .id = 9, .rounds = 1,
	    .value = "after-kill" };
	pthread_t th;
	IT_CHECK(pthread_create(&th, NULL, campaigner_main, &cp) == 0, "thread");
	it_sleep_ms(300);
	stop_child(pid, SIGKILL);
	int64_t killed = it_now_ms();
	pthread_join(th, NULL);
	int64_t gap = sh->elected[sh->elected_n - 1].at_ms - killed;
	fprintf(stderr, "elect: new leader %" PRId64 " ms after kill -9 of the "
	    "raftbusctl leader (lease TTL %d s)\n", gap, TTL_S);
	IT_CHECK(gap >= HANDOVER_GAP_MS_MIN && gap <= HANDOVER_GAP_MS_MAX,
	    "hand-over after %" PRId64 " ms", gap);
}

static void wait_reports(struct observer *o, int want, int ms)
{
	int64_t end = it_now_ms() + ms;
	while (atomic_load(&o->n) < want && it_now_ms() < end)
		it_sleep_ms(20);
}

static void test_elect(void)
{
	const char *ctl = getenv("RAFTBUSCTL_BIN");
	IT_CHECK(ctl, "RAFTBUSCTL_BIN not set");
	struct it_cluster c;
	it_cluster_init(&c, 3);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "a leader");
	static struct elect_shared sh;
	pthread_mutex_init(&sh.mtx, NULL);
	endpoints_of(&c, sh.eps, sizeof(sh.eps));
	static struct observer ob = { .sh = &sh };
	pthread_t oth, th[CAMPAIGNERS];
	IT_CHECK(pthread_create(&oth, NULL, observer_main, &ob) == 0, "thread");
	char listen_path[512];
	snprintf(listen_path, sizeof(listen_path), "%s/listen.out", c.dir);
	const char *largv[] = { ctl, "--endpoints", sh.eps, "elect", "-l",
	    ELECT_NAME, NULL };
	pid_t listener = start_child(largv, listen_path);
	it_sleep_ms(500);   /* both observers set up */
	static struct campaigner cp[CAMPAIGNERS];
	for (int i = 0; i < CAMPAIGNERS; i++) {
		cp[i] = (struct campaigner){ .sh = &sh, .id = i, .rounds = ROUNDS };
		IT_CHECK(pthread_create(&th[i], NULL, campaigner_main, &cp[i]) == 0,
		    "thread");
	}
	it_sleep_ms(700);
	int leader = it_leader(&c, "a leader");
	it_kill(&c, leader, SIGKILL);
	for (int i = 0; i < CAMPAIGNERS; i++)
		pthread_join(th[i], NULL);
	it_start(&c, leader);
	char cli_key[LINE_BYTES_MAX];
	cli_leader_dies(&sh, ctl, c.dir, cli_key);
	static struct leader_rec want[REPORTS_MAX], got[REPORTS_MAX];
	int want_n = expected_reports(&sh, cli_key, want);
	wait_reports(&ob, want_n, 10000);
	free(wait_lines(listen_path, 2 * want_n, 10000));   /* key + value */
	atomic_store(&ob.stop, true);
	pthread_join(oth, NULL);
	int st = stop_child(listener, SIGTERM);
	IT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "elect -l status %d", st);
	IT_CHECK(atomic_load(&sh.violations) == 0, "%d times two leaders at once",
	    atomic_load(&sh.violations));
	check_reports("observer", ob.reps, atomic_load(&ob.n), want, want_n);
	int got_n = parse_listen(listen_path, got);
	check_reports("elect --listen", got, got_n, want, want_n);
	fprintf(stderr, "elect: %d elections, %d leader reports seen by each "
	    "observer; Raft leader killed during the campaigns\n", sh.elected_n,
	    want_n);
	it_cluster_done(&c);
}

/* ---- cli ---------------------------------------------------------------- */

static int run_ctl(const char *const *argv, const char *out_path)
{
	pid_t pid = start_child(argv, out_path);
	return wait_child_exit(pid, 20000);
}

/* Is the lock free right now? (a library client gets it within ms) */
static bool lock_free(rb_client *c, rb_session *s, int ms)
{
	struct rb_cc_wait wait = { .timeout_ms = ms };
	struct rb_cc_key k;
	struct rb_resp r = { 0 };
	int rc = rb_lock(c, S(LOCK_NAME), rb_session_lease(s), &wait, &k, &r);
	rb_resp_free(&r);
	IT_CHECK(rc == 0 || rc == RB_ERR_TIMEOUT, "lock: %s", rb_cc_strerror(rc));
	if (rc == 0) {
		IT_CHECK(rb_unlock(c, &k, &r) == 0, "unlock");
		rb_resp_free(&r);
	}
	return rc == 0;
}

/* lock NAME -- COMMAND: environment, exit status, unlocked afterwards. */
static void cli_exec(const char *ctl, const char *eps, const char *dir,
    rb_client *c)
{
	char out[512];
	snprintf(out, sizeof(out), "%s/exec.out", dir);
	const char *argv[] = { ctl, "--endpoints", eps, "lock", LOCK_NAME, "--",
	    "sh", "-c", "echo $RAFTBUS_LOCK_KEY $RAFTBUS_LOCK_TOKEN $ETCD_LOCK_KEY "
	    "$ETCD_LOCK_REV; exit 7", NULL };
	int st = run_ctl(argv, out);
	IT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "lock -- cmd: status %d", st);
	char *t = slurp(out);
	char key[LINE_BYTES_MAX], ekey[LINE_BYTES_MAX];
	int64_t token, rev;
	IT_CHECK(sscanf(t, "%255s %" SCNd64 " %255s %" SCNd64, key, &token, ekey,
	    &rev) == 4, "command saw: %s", t);
	free(t);
	IT_CHECK(!strncmp(key, LOCK_NAME "/", 2) && !strcmp(key, ekey),
	    "lock keys %s %s", key, ekey);
	IT_CHECK(token > 0 && rev >= token, "token %" PRId64 " rev %" PRId64,
	    token, rev);
	struct rb_range q = { .key = S(key) };
	struct rb_resp r = { 0 };
	IT_CHECK(rb_range(c, &q, &r) == 0 && r.body.u.range.kvs_n == 0,
	    "%s still there after the command", key);
	rb_resp_free(&r);
	const char *sig[] = { ctl, "--endpoints", eps, "lock", LOCK_NAME, "--",
	    "sh", "-c", "kill -9 $$", NULL };
	st = run_ctl(sig, NULL);
	IT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGKILL,
	    "command killed: status %d", st);
	const char *noexec[] = { ctl, "--endpoints", eps, "lock", LOCK_NAME,
	    "/nonexistent/cmd", NULL };
	st = run_ctl(noexec, NULL);
	IT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "missing cmd: status %d",
	    st);
	const char *noname[] = { ctl, "--endpoints", eps, "lock", NULL };
	st = run_ctl(noname, NULL);
	IT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 128, "no name: status %d", st);
	const char *badttl[] = { ctl, "--endpoints", eps, "lock", "--ttl", "x",
	    LOCK_NAME, NULL };
	st = run_ctl(badttl, NULL);
	IT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "bad ttl: status %d", st);
}

/* lock NAME: prints the key, excludes others, SIGTERM unlocks; kill -9
 * leaves the lock to the lease TTL. */
static void cli_hold(const char *ctl, const char *eps, const char *dir,
    rb_client *c, rb_session *s)
{
	char out[512];
	snprintf(out, sizeof(out), "%s/hold.out", dir);
	const char *argv[] = { ctl, "--endpoints", eps, "lock", "--ttl", "2",
	    LOCK_NAME, NULL };
	pid_t pid = start_child(argv, out);
	char *t = wait_lines(out, 2, 10000);
	IT_CHECK(!strncmp(t, LOCK_NAME "/", 2) && strstr(t, "\n\n") &&
	    strlen(strstr(t, "\n\n")) == 2, "lock printed \"%s\"", t);
	free(t);
	IT_CHECK(!lock_free(c, s, 500), "lock held by raftbusctl was taken");
	int st = stop_child(pid, SIGTERM);
	IT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: status %d", st);
	IT_CHECK(lock_free(c, s, 1000), "lock not released on SIGTERM");
	snprintf(out, sizeof(out), "%s/hold2.out", dir);
	pid = start_child(argv, out);
	free(wait_lines(out, 2, 10000));
	stop_child(pid, SIGKILL);
	int64_t killed = it_now_ms();
	IT_CHECK(!lock_free(c, s, 200), "released at once by kill -9");
	IT_CHECK(lock_free(c, s, 6000), "lock not released by lease expiry");
	fprintf(stderr, "cli: lock of a raftbusctl killed -9 free after %" PRId64
	    " ms (--ttl 2)\n", it_now_ms() - killed);
}

/* A waiter whose lease expires while it waits is told so at once
 * (RB_ERR_LOCK_LOST) instead of waiting on or being granted a lock its
 * dead lease cannot hold (etcd issue 11456). */
static void check_lost_while_waiting(rb_client *c, rb_session *s)
{
	struct rb_cc_wait wait = { .timeout_ms = 10000 };
	struct rb_cc_key held, k;
	struct rb_resp r = { 0 };
	IT_CHECK(rb_lock(c, S(LOCK_NAME), rb_session_lease(s), &wait, &held, &r) == 0,
	    "lock: %s", r.msg);
	rb_resp_free(&r);
	IT_CHECK(rb_lease_grant(c, TTL_S, 0, &r) == 0, "grant: %s", r.msg);
	rb_lease_id doomed = r.body.u.lease_grant.id;
	rb_resp_free(&r);
	int64_t t0 = it_now_ms();
	int rc = rb_lock(c, S(LOCK_NAME), doomed, &wait, &k, &r);
	int64_t took = it_now_ms() - t0;
	IT_CHECK(rc == RB_ERR_LOCK_LOST, "waiter with an expired lease: %d %s",
	    rc, r.msg);
	rb_resp_free(&r);
	IT_CHECK(took < TTL_S * 1000 + 2500, "noticed only after %" PRId64 " ms",
	    took);
	fprintf(stderr, "cli: a waiter's lease expiry ended its wait after %"
	    PRId64 " ms\n", took);
	IT_CHECK(rb_unlock(c, &held, &r) == 0, "unlock: %s", r.msg);
	rb_resp_free(&r);
}

static void test_cli(void)
{
	const char *ctl = getenv("RAFTBUSCTL_BIN");
	IT_CHECK(ctl, "RAFTBUSCTL_BIN not set");
	struct it_cluster c;
	it_cluster_init(&c, 1);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "a leader");
	char eps[1024];
	endpoints_of(&c, eps, sizeof(eps));
	rb_client *cl = open_client(eps);
	rb_session *s = open_session(cl);
	cli_exec(ctl, eps, c.dir, cl);
	cli_hold(ctl, eps, c.dir, cl, s);
	check_lost_while_waiting(cl, s);
	rb_session_close(s);
	rb_client_close(cl);
	it_cluster_done(&c);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IONBF, 0);
	srand((unsigned)getpid());
	if (argc == 5 && !strcmp(argv[1], "worker"))
		return child_worker(argv[2], argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "holder"))
		return child_holder(argv[2], argv[3]);
	if (argc != 2) {
		fprintf(stderr, "usage: it_lock mutex|elect|cli\n");
		return 2;
	}
	if (!strcmp(argv[1], "mutex"))
		test_mutex();
	else if (!strcmp(argv[1], "elect"))
		test_elect();
	else if (!strcmp(argv[1], "cli"))
		test_cli();
	else
		return 2;
	it_ok(argv[1]);
	return 0;
}
