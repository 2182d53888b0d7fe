/*
 * it_pubsub.c - process-level tests of pub/sub (docs/pubsub.md) on real
 * members, through libraftbus and the raftbusctl CLI. One scenario per
 * argv[1], each its own meson test:
 *
 *   replay     10,000 messages published by concurrent clients; a
 *              subscriber from the earliest message gets exactly the
 *              acknowledged ones, in revision order; from a compacted
 *              revision it gets the compacted error
 *   dedup      a message id published twice (and again after the leader
 *              was killed -9) is appended once; after the dedup window it
 *              is a new message
 *   retention  max-msgs and max-age delete the oldest messages; a
 *              subscriber behind the retention gets the clear error;
 *              `sub --from earliest` starts at the first retained message
 *   group      consumers (`raftbusctl sub --group`) killed -9 and the
 *              leader killed -9 while a publisher runs: with commit after
 *              processing every acknowledged message is processed at least
 *              once, none skipped; a standby takes over; `group describe`
 *              shows the lag
 *
 * Every loop is bounded in count and time; every process started is
 * stopped by PID, also on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it_util.h"

#define CHILDREN_MAX 16
/* Messages of the replay scenario and its publishing threads. */
#define REPLAY_MSGS 10000
#define REPLAY_THREADS 16

static pid_t children[CHILDREN_MAX];

static void children_kill(void)
{
	for (int i = 0; i < CHILDREN_MAX; i++)
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
}

/* Starts raftbusctl with args (NULL-ended); stdout appended to out_path
 * (or /dev/null), stderr to err_path (or /dev/null). */
static pid_t ctl_start(const char *const *args, const char *out_path,
    const char *err_path)
{
	const char *bin = getenv("RAFTBUSCTL_BIN");
	IT_CHECK(bin, "RAFTBUSCTL_BIN not set");
	const char *argv[32];
	int k = 0;
	argv[k++] = bin;
	for (int i = 0; args[i] && k < 31; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	IT_CHECK(pid >= 0, "fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int o = open(out_path ? out_path : "/dev/null",
		    O_WRONLY | O_CREAT | O_APPEND, 0644);
		int e = open(err_path ? err_path : "/dev/null",
		    O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(o, 1);
		dup2(e, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < CHILDREN_MAX; i++)
		if (children[i] == 0) {
			children[i] = pid;
			return pid;
		}
	kill(pid, SIGKILL);
	IT_CHECK(0, "too many children");
	return -1;
}

/* Waits for a child (at most timeout_ms, then SIGKILL); its exit code, or
 * -1 when it was killed. */
static int ctl_wait(pid_t pid, int timeout_ms)
{
	int st = 0;
	int64_t end = it_now_ms() + timeout_ms;
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
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A sanitizer report in a child's stderr fails the test. */
static void no_sanitizer(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		IT_CHECK(!strstr(line, "Sanitizer") && !strstr(line, "runtime error"),
		    "sanitizer report in %s: %s", path, line);
	fclose(f);
}

/* Runs raftbusctl to the end; its stdout (malloc'ed) and exit code. */
static char *ctl_run(const char *const *args, int *code, const char *dir)
{
	char out[600], err[600];
	snprintf(out, sizeof(out), "%s/ctl.out", dir);
	snprintf(err, sizeof(err), "%s/ctl.err", dir);
	unlink(out);
	unlink(err);
	*code = ctl_wait(ctl_start(args, out, err), 20000);
	no_sanitizer(err);
	FILE *f = fopen(out, "r");
	IT_CHECK(f, "open %s", out);
	char *buf = calloc(1, 1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static rb_client *client_of(struct it_cluster *c)
{
	const char *eps[IT_MEMBERS_MAX];
	for (int i = 0; i < c->n; i++)
		eps[i] = c->m[i].client_url;
	struct rb_config cfg = { .endpoints = eps, .endpoints_n = (size_t)c->n,
	    .dial_timeout_ms = 1000, .command_timeout_ms = 5000 };
	rb_client *cl;
	IT_CHECK(rb_client_open(&cfg, &cl) == 0, "client open");
	return cl;
}

static char *endpoints_arg(struct it_cluster *c, char *buf, size_t len)
{
	size_t off = 0;
	for (int i = 0; i < c->n; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "",
		    c->m[i].client_url);
	return buf;
}

/* Publishes until acknowledged (msg_id makes the retry safe). */
static struct rb_publish_resp publish(rb_client *cl, const char *topic,
    const char *payload, const char *id, int64_t deadline_ms)
{
	struct rb_publish p = { .topic = (const uint8_t *)topic,
	    .topic_len = strlen(topic), .payload = (const uint8_t *)payload,
	    .payload_len = strlen(payload), .msg_id = (const uint8_t *)id,
	    .msg_id_len = id ? strlen(id) : 0 };
	for (;;) {
		struct rb_resp r = { 0 };
		int rc = rb_publish(cl, &p, &r);
		struct rb_publish_resp out = r.body.u.publish;
		rb_resp_free(&r);
		if (rc == 0)
			return out;
		IT_CHECK(id != NULL && it_now_ms() < deadline_ms,
		    "publish %s: %s", payload, rb_strerror(rc));
		it_sleep_ms(50);
	}
}

static int64_t topic_count(rb_client *cl, const char *topic)
{
	uint8_t end[256];
	struct rb_range rq = { .key = (const uint8_t *)topic,
	    .key_len = strlen(topic), .range_end = end,
	    .range_end_len = rb_prefix_end((const uint8_t *)topic, strlen(topic),
	    end), .count_only = true };
	struct rb_resp r = { 0 };
	IT_CHECK(rb_range(cl, &rq, &r) == 0, "count %s", topic);
	int64_t n = r.body.u.range.count;
	rb_resp_free(&r);
	return n;
}

/* ---- replay ------------------------------------------------------------- */

struct replay_pub {
	struct it_cluster *c;
	int first, n;
	rb_rev *revs;            /* revs[i] of message first + i */
};

static void *replay_publisher(void *arg)
{
	struct replay_pub *rp = arg;
	rb_client *cl = client_of(rp->c);
	char payload[32];
	for (int i = 0; i < rp->n; i++) {
		snprintf(payload, sizeof(payload), "m%d", rp->first + i);
		struct rb_publish_resp pr = publish(cl, "/replay/", payload, NULL,
		    it_now_ms() + 10000);
		rp->revs[rp->first + i] = pr.revision;
	}
	rb_client_close(cl);
	return NULL;
}

/* Reads the whole topic with a subscriber; checks it against revs. */
static void replay_check(rb_client *cl, const rb_rev *revs)
{
	rb_sub *s;
	char err[256];
	IT_CHECK(rb_sub_open(cl, "/replay/", NULL, NULL, &s, err, sizeof(err)) == 0,
	    "sub open: %s", err);
	int got = 0;
	rb_rev prev = 0;
	int64_t end = it_now_ms() + 20000;
	while (got < REPLAY_MSGS && it_now_ms() < end) {
		struct rb_sub_batch b;
		IT_CHECK(rb_sub_next(s, 1000, &b, err, sizeof(err)) == 0, "next: %s",
		    err);
		for (size_t i = 0; i < b.msgs_n; i++, got++) {
			const struct rb_message *m = &b.msgs[i];
			IT_CHECK(m->revision > prev, "order: %lld after %lld",
			    (long long)m->revision, (long long)prev);
			prev = m->revision;
			char pl[32] = "";  /* the payload is not NUL-terminated */
			memcpy(pl, m->payload, m->payload_len < 31 ? m->payload_len : 31);
			int idx = atoi(pl + 1);
			IT_CHECK(idx >= 0 && idx < REPLAY_MSGS && revs[idx] == m->revision,
			    "message %.*s at %lld", (int)m->payload_len,
			    (const char *)m->payload, (long long)m->revision);
		}
	}
	IT_CHECK(got == REPLAY_MSGS, "replayed %d of %d", got, REPLAY_MSGS);
	struct rb_sub_batch b;
	IT_CHECK(rb_sub_next(s, 300, &b, err, sizeof(err)) == 0 && b.msgs_n == 0,
	    "a message beyond the published ones");
	rb_sub_close(s);
}

static void test_replay(void)
{
	struct it_cluster c;
	it_cluster_init(&c, 3);
	fprintf(stderr, "members in %s\n", c.dir);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "no leader");
	static rb_rev revs[REPLAY_MSGS];
	pthread_t th[REPLAY_THREADS];
	struct replay_pub rp[REPLAY_THREADS];
	int64_t t0 = it_now_ms();
	for (int i = 0; i < REPLAY_THREADS; i++) {
		rp[i] = (struct replay_pub){ &c, i * (REPLAY_MSGS / REPLAY_THREADS),
		    REPLAY_MSGS / REPLAY_THREADS, revs };
		pthread_create(&th[i], NULL, replay_publisher, &rp[i]);
	}
	for (int i = 0; i < REPLAY_THREADS; i++)
		pthread_join(th[i], NULL);
	int64_t t1 = it_now_ms();
	fprintf(stderr, "replay: published %d messages in %lld ms\n", REPLAY_MSGS,
	    (long long)(t1 - t0));
	rb_client *cl = client_of(&c);
	replay_check(cl, revs);
	fprintf(stderr, "replay: subscribed to %d messages in %lld ms\n",
	    REPLAY_MSGS, (long long)(it_now_ms() - t1));
	/* compact into the middle: a start below is the compacted error */
	struct rb_resp r = { 0 };
	/* revs[] is in message order, not revision order (several
	 * publishers): compact between the lowest and the highest */
	rb_rev lo = revs[0], hi = revs[0];
	for (int i = 1; i < REPLAY_MSGS; i++) {
		lo = revs[i] < lo ? revs[i] : lo;
		hi = revs[i] > hi ? revs[i] : hi;
	}
	IT_CHECK(rb_compact(cl, lo + (hi - lo) / 2, &r) == 0, "compact");
	rb_resp_free(&r);
	struct rb_sub_opts o = { .from = RB_SUB_FROM_REVISION, .from_rev = lo };
	char err[256] = "";
	int rc = 0;
	/* the compaction is applied by each member in its own time: a
	 * follower that has not applied it yet still serves that history */
	for (int64_t end = it_now_ms() + 10000; it_now_ms() < end;) {
		rb_sub *s;
		err[0] = 0;
		rc = rb_sub_open(cl, "/replay/", NULL, &o, &s, err, sizeof(err));
		if (rc == 0) {
			struct rb_sub_batch b;
			rc = rb_sub_next(s, 3000, &b, err, sizeof(err));
			rb_sub_close(s);
		}
		if (rc == RB_ERR_COMPACTED)
			break;
		it_sleep_ms(200);
	}
	IT_CHECK(rc == RB_ERR_COMPACTED && strstr(err, "compacted"),
	    "from a compacted revision: %d %s", rc, err);
	rb_client_close(cl);
	it_cluster_done(&c);
}

/* ---- dedup -------------------------------------------------------------- */

/* The server refuses a malformed --pubsub-dedup-window (exit 2). */
static void dedup_flag_refused(void)
{
	const char *bin = getenv("RAFTBUS_BIN");
	IT_CHECK(bin, "RAFTBUS_BIN not set");
	pid_t pid = fork();
	IT_CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(bin, bin, "--pubsub-dedup-window", "2x", (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	IT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2, "bad window: status %d", st);
}

static void test_dedup(void)
{
	struct it_cluster c;
	dedup_flag_refused();
	it_cluster_init(&c, 3);
	c.extra[0] = "--pubsub-dedup-window";
	c.extra[1] = "4s";
	fprintf(stderr, "members in %s\n", c.dir);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "no leader");
	rb_client *cl = client_of(&c);
	int64_t deadline = it_now_ms() + 20000;
	struct rb_publish_resp a = publish(cl, "/d/", "first", "id-1", deadline);
	struct rb_publish_resp b = publish(cl, "/d/", "second", "id-1", deadline);
	IT_CHECK(!a.duplicate && b.duplicate && a.revision == b.revision,
	    "dup: %lld/%d %lld/%d", (long long)a.revision, a.duplicate,
	    (long long)b.revision, b.duplicate);
	/* the same id on another topic is another message */
	struct rb_publish_resp o = publish(cl, "/d2/", "x", "id-1", deadline);
	IT_CHECK(!o.duplicate, "id on another topic");
	/* the leader dies; the retry goes to the new leader */
	int leader = it_wait_leader(&c, 5000);
	struct rb_publish_resp k = publish(cl, "/d/", "before-kill", "id-2", deadline);
	it_kill(&c, leader, SIGKILL);
	struct rb_publish_resp k2 = publish(cl, "/d/", "retry", "id-2", deadline);
	IT_CHECK(k2.duplicate && k2.revision == k.revision,
	    "retry after kill: %lld/%d vs %lld", (long long)k2.revision,
	    k2.duplicate, (long long)k.revision);
	IT_CHECK(topic_count(cl, "/d/") == 2, "messages on /d/: %lld",
	    (long long)topic_count(cl, "/d/"));
	it_start(&c, leader);
	/* past the window (4 s + a sweep) the id is forgotten */
	int64_t end = it_now_ms() + 12000;
	bool fresh = false;
	it_sleep_ms(4000);
	while (!fresh && it_now_ms() < end) {
		uint8_t dk[64] = "_rb/dedup//d/";
		memcpy(dk + 13, "\0id-1", 5);
		struct rb_range rq = { .key = dk, .key_len = 18, .count_only = true };
		struct rb_resp r = { 0 };
		IT_CHECK(rb_range(cl, &rq, &r) == 0, "range dedup key");
		fresh = r.body.u.range.count == 0;
		rb_resp_free(&r);
		it_sleep_ms(200);
	}
	IT_CHECK(fresh, "dedup key of id-1 still there after the window");
	struct rb_publish_resp again = publish(cl, "/d/", "third", "id-1", deadline);
	IT_CHECK(!again.duplicate && again.revision > a.revision, "after window");
	rb_client_close(cl);
	it_cluster_done(&c);
}

/* ---- retention ---------------------------------------------------------- */

static bool wait_count(rb_client *cl, const char *topic, int64_t want, int ms)
{
	int64_t end = it_now_ms() + ms;
	while (it_now_ms() < end) {
		if (topic_count(cl, topic) == want)
			return true;
		it_sleep_ms(100);
	}
	return false;
}

static void test_retention(void)
{
	struct it_cluster c;
	char eps[512];
	it_cluster_init(&c, 1);
	fprintf(stderr, "members in %s\n", c.dir);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "no leader");
	endpoints_arg(&c, eps, sizeof(eps));
	rb_client *cl = client_of(&c);
	int code;
	const char *set[] = { "--endpoints", eps, "topic", "set", "/r/", "--max-msgs",
	    "5", NULL };
	free(ctl_run(set, &code, c.dir));
	IT_CHECK(code == 0, "topic set: %d", code);
	rb_rev revs[20];
	char p[16];
	for (int i = 0; i < 20; i++) {
		snprintf(p, sizeof(p), "r%d", i);
		revs[i] = publish(cl, "/r/", p, NULL, 0).revision;
	}
	IT_CHECK(wait_count(cl, "/r/", 5, 5000), "max-msgs: %lld left",
	    (long long)topic_count(cl, "/r/"));
	rb_rev floor;
	IT_CHECK(rb_topic_floor(cl, "/r/", &floor) == 0 && floor == revs[14],
	    "floor %lld, want %lld", (long long)floor, (long long)revs[14]);
	/* a subscriber behind the retention: the clear error */
	struct rb_sub_opts o = { .from = RB_SUB_FROM_REVISION, .from_rev = revs[3] };
	rb_sub *s;
	char err[256] = "";
	IT_CHECK(rb_sub_open(cl, "/r/", NULL, &o, &s, err, sizeof(err)) ==
	    RB_ERR_INVALID && strstr(err, "behind the retention") &&
	    strstr(err, "restart from earliest"), "behind: %s", err);
	/* the CLI says so too; --from earliest prints the 5 retained */
	char from[24];
	snprintf(from, sizeof(from), "%lld", (long long)revs[3]);
	const char *behind[] = { "--endpoints", eps, "sub", "/r/", "--from", from,
	    "--count", "1", NULL };
	free(ctl_run(behind, &code, c.dir));
	IT_CHECK(code == 1, "sub behind retention: exit %d", code);
	const char *earliest[] = { "--endpoints", eps, "sub", "/r/", "--from",
	    "earliest", "--count", "5", NULL };
	char *out = ctl_run(earliest, &code, c.dir);
	IT_CHECK(code == 0 && !strcmp(out, "r15\nr16\nr17\nr18\nr19\n"),
	    "earliest: %d [%s]", code, out);
	free(out);
	/* max-age: everything older than 1 s goes (set after the publishes,
	 * which may take longer than that on a loaded machine) */
	for (int i = 0; i < 3; i++)
		publish(cl, "/a/", "old", NULL, 0);
	IT_CHECK(topic_count(cl, "/a/") == 3, "age: published");
	const char *age[] = { "--endpoints", eps, "topic", "set", "/a/", "--max-age",
	    "1s", NULL };
	free(ctl_run(age, &code, c.dir));
	IT_CHECK(code == 0, "topic set age");
	IT_CHECK(wait_count(cl, "/a/", 0, 6000), "max-age: %lld left",
	    (long long)topic_count(cl, "/a/"));
	/* max-bytes: values (envelope + 100-byte payload, ~115 bytes) beyond
	 * 350 bytes go, newest kept */
	const char *bytes[] = { "--endpoints", eps, "topic", "set", "/b/",
	    "--max-bytes", "350", NULL };
	char big[101];
	memset(big, 'x', 100);
	big[100] = 0;
	for (int i = 0; i < 10; i++)
		publish(cl, "/b/", big, NULL, 0);
	free(ctl_run(bytes, &code, c.dir));
	IT_CHECK(code == 0, "topic set bytes");
	IT_CHECK(wait_count(cl, "/b/", 3, 6000), "max-bytes: %lld left",
	    (long long)topic_count(cl, "/b/"));
	const char *get[] = { "--endpoints", eps, "topic", "get", "/a/", NULL };
	out = ctl_run(get, &code, c.dir);
	IT_CHECK(code == 0 && strstr(out, "max_age_ms=1000") && !strstr(out, "floor=0"),
	    "topic get: %s", out);
	free(out);
	rb_client_close(cl);
	it_cluster_done(&c);
}

/* ---- consumer group ----------------------------------------------------- */

#define GROUP_MSGS 400

struct group_pub {
	struct it_cluster *c;
	rb_rev revs[GROUP_MSGS];
	volatile int done;       /* messages acknowledged */
};

static void *group_publisher(void *arg)
{
	struct group_pub *gp = arg;
	rb_client *cl = client_of(gp->c);
	char payload[32], id[32];
	for (int i = 0; i < GROUP_MSGS; i++) {
		snprintf(payload, sizeof(payload), "g%d", i);
		snprintf(id, sizeof(id), "gid-%d", i);
		gp->revs[i] = publish(cl, "/g/", payload, id, it_now_ms() + 20000).revision;
		__atomic_store_n(&gp->done, i + 1, __ATOMIC_SEQ_CST);
		it_sleep_ms(20);
	}
	rb_client_close(cl);
	return NULL;
}

static pid_t consumer(const char *eps, const char *out, const char *errp)
{
	const char *args[] = { "--endpoints", eps, "sub", "/g/", "--group", "G",
	    "-w", "json", NULL };
	return ctl_start(args, out, errp);
}

/* Marks every revision printed in a consumer's JSON output. */
static void processed(const char *path, const struct group_pub *gp, bool *seen)
{
	FILE *f = fopen(path, "r");
	char line[512];
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		const char *r = strstr(line, "\"revision\":");
		if (!r)
			continue;      /* a line cut by kill -9 */
		long long rev = atoll(r + 11);
		for (int i = 0; i < GROUP_MSGS; i++)
			if (gp->revs[i] == rev)
				seen[i] = true;
	}
	fclose(f);
}

static int file_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, ch;
	if (!f)
		return 0;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static rb_rev committed(rb_client *cl)
{
	rb_rev r = 0;
	rb_group_committed(cl, "G", "/g/", &r);
	return r;
}

static void wait_published(struct group_pub *gp, int n)
{
	int64_t end = it_now_ms() + 30000;
	while (__atomic_load_n(&gp->done, __ATOMIC_SEQ_CST) < n && it_now_ms() < end)
		it_sleep_ms(20);
	IT_CHECK(gp->done >= n, "publisher stuck at %d", gp->done);
}

static void group_check_lag(struct it_cluster *c, rb_client *cl, const char *eps)
{
	rb_rev pos = committed(cl);
	rb_rev last = 0;
	for (int i = 0; i < 3; i++)
		last = publish(cl, "/g/", "late", NULL, 0).revision;
	const char *desc[] = { "--endpoints", eps, "group", "describe", "G", NULL };
	int code;
	char *out = ctl_run(desc, &code, c->dir);
	char want[128];
	snprintf(want, sizeof(want), "/g/\t%lld\t%lld\t%lld\n", (long long)pos,
	    (long long)last, (long long)(last - pos));
	IT_CHECK(code == 0 && strstr(out, want), "describe: %d [%s] want [%s]",
	    code, out, want);
	free(out);
}

static void test_group(void)
{
	struct it_cluster c;
	char eps[512], outs[4][600], errp[600];
	it_cluster_init(&c, 3);
	fprintf(stderr, "members in %s\n", c.dir);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "no leader");
	endpoints_arg(&c, eps, sizeof(eps));
	snprintf(errp, sizeof(errp), "%s/consumers.err", c.dir);
	for (int i = 0; i < 4; i++)
		snprintf(outs[i], sizeof(outs[i]), "%s/consumer%d.out", c.dir, i);
	static struct group_pub gp;
	gp.c = &c;
	pthread_t th;
	pthread_create(&th, NULL, group_publisher, &gp);
	rb_client *cl = client_of(&c);
	/* consumer 0 active, consumer 1 standby */
	pid_t c0 = consumer(eps, outs[0], errp);
	it_sleep_ms(300);
	pid_t c1 = consumer(eps, outs[1], errp);
	wait_published(&gp, GROUP_MSGS / 4);
	kill(c0, SIGKILL);
	ctl_wait(c0, 5000);
	/* the standby takes over once the dead owner's lease expired */
	int64_t end = it_now_ms() + 15000;
	while (file_lines(outs[1]) == 0 && it_now_ms() < end)
		it_sleep_ms(50);
	IT_CHECK(file_lines(outs[1]) > 0, "the standby never took over");
	wait_published(&gp, GROUP_MSGS / 2);
	int leader = it_wait_leader(&c, 5000);
	IT_CHECK(leader >= 0, "no leader");
	it_kill(&c, leader, SIGKILL);
	wait_published(&gp, 3 * GROUP_MSGS / 4);
	it_start(&c, leader);
	kill(c1, SIGKILL);
	ctl_wait(c1, 5000);
	pid_t c2 = consumer(eps, outs[2], errp);
	pthread_join(th, NULL);
	rb_rev last = gp.revs[GROUP_MSGS - 1];
	end = it_now_ms() + 20000;
	while (committed(cl) < last && it_now_ms() < end)
		it_sleep_ms(100);
	IT_CHECK(committed(cl) >= last, "committed %lld < last %lld",
	    (long long)committed(cl), (long long)last);
	kill(c2, SIGTERM);
	IT_CHECK(ctl_wait(c2, 5000) == 0, "consumer 2 exit");
	static bool seen[GROUP_MSGS];
	for (int i = 0; i < 3; i++) {
		bool mine[GROUP_MSGS] = { false }, any = false;
		processed(outs[i], &gp, mine);
		for (int k = 0; k < GROUP_MSGS; k++) {
			any |= mine[k];
			seen[k] |= mine[k];
		}
		/* 0 ran first, 1 took over from standby, 2 resumed the rest */
		IT_CHECK(any, "consumer %d processed nothing", i);
	}
	for (int i = 0; i < GROUP_MSGS; i++)
		IT_CHECK(seen[i], "message g%d (revision %lld) never processed", i,
		    (long long)gp.revs[i]);
	no_sanitizer(errp);
	group_check_lag(&c, cl, eps);
	rb_client_close(cl);
	it_cluster_done(&c);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IONBF, 0);
	atexit(children_kill);
	if (argc != 2) {
		fprintf(stderr, "usage: it_pubsub replay|dedup|retention|group\n");
		return 2;
	}
	const char *t = argv[1];
	if (!strcmp(t, "replay"))
		test_replay();
	else if (!strcmp(t, "dedup"))
		test_dedup();
	else if (!strcmp(t, "retention"))
		test_retention();
	else if (!strcmp(t, "group"))
		test_group();
	else
		return 2;
	it_ok(t);
	return 0;
}
