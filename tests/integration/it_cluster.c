/*
 * it_cluster.c - process-level tests of the raftbus server: real members on
 * loopback, driven through the rb_wire protocol. One executable, one
 * scenario per argv[1] (each registered as its own meson test):
 *
 *   flags      bad flag -> exit 2; --help/--version -> exit 0
 *   single     one member: every op, error replies, garbage, restart
 *   three      three members: writes and reads through any member
 *   five       the same with five members
 *   failover   kill -9 of the leader under continuous writes
 *   crashall   kill -9 of every member, restart: nothing acknowledged lost
 *   snapshot   a member that missed compacted entries catches up by snapshot
 *   quota      over --quota-backend-bytes: "space exceeded", reads work
 *   minority   a member cut off from the majority refuses writes and
 *              linearizable reads; serializable reads still work
 *   partition  peer traffic to one member blocked by a proxy: no write, no
 *              linearizable read there; the healed member does not disturb
 *              the leader; a cut leader is replaced
 *   readers    while big range reads run, writes stay fast and the leader
 *              keeps its term; a flood of reads beyond the server's read
 *              queue is answered or refused "too many requests"
 *   bigtxn     a committed txn whose reply has hundreds of parts (nested
 *              txns of ranges) is answered with its result, not an error
 *
 * Every loop is bounded in count and time; every process started is stopped
 * by PID, also on failure (it_util.c).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it_util.h"
#include "rb_wire.h"

#define S(x) (const uint8_t *)(x), strlen(x)

static int run_cmd(const char *const *argv)
{
	pid_t pid = fork();
	IT_CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_flags(void)
{
	const char *bin = getenv("RAFTBUS_BIN");
	IT_CHECK(bin, "RAFTBUS_BIN");
	const char *a1[] = { bin, "--no-such-flag", NULL };
	IT_CHECK(run_cmd(a1) == 2, "unknown flag must exit 2");
	const char *a2[] = { bin, "--heartbeat-interval", "abc", NULL };
	IT_CHECK(run_cmd(a2) == 2, "bad number must exit 2");
	const char *a3[] = { bin, "--initial-cluster-state", "maybe", NULL };
	IT_CHECK(run_cmd(a3) == 2, "bad state must exit 2");
	const char *a4[] = { bin, "--help", NULL };
	IT_CHECK(run_cmd(a4) == 0, "--help exits 0");
	const char *a5[] = { bin, "--version", NULL };
	IT_CHECK(run_cmd(a5) == 0, "--version exits 0");
	const char *a6[] = { bin, "--name", "x", "--initial-cluster",
	    "y=tcp://127.0.0.1:1", NULL };
	IT_CHECK(run_cmd(a6) == 2, "member not in the cluster must exit 2");
	/* "existing" with no data must not bootstrap a second cluster */
	char dir[] = "/tmp/rb-it-existing.XXXXXX";
	IT_CHECK(mkdtemp(dir), "mkdtemp");
	char data[sizeof(dir) + 8];
	snprintf(data, sizeof(data), "%s/m", dir);
	const char *a7[] = { bin, "--data-dir", data, "--initial-cluster-state",
	    "existing", NULL };
	int rc7 = run_cmd(a7);
	char rm[sizeof(dir) + 16];
	snprintf(rm, sizeof(rm), "rm -rf %s", dir);
	IT_CHECK(system(rm) == 0, "rm %s", dir);
	IT_CHECK(rc7 == 2, "existing with an empty data dir must exit 2, got %d",
	    rc7);
}

static int64_t deadline(int ms)
{
	return it_now_ms() + ms;
}

static struct rb_op range_op(const char *key, bool serializable)
{
	struct rb_op op = { .type = RB_OP_RANGE };
	op.u.range.key = (const uint8_t *)key;
	op.u.range.key_len = strlen(key);
	op.u.range.serializable = serializable;
	return op;
}

/* Value of key on url ("" if absent), linearizable unless serializable. */
static char *get(const char *url, const char *key, bool serializable)
{
	struct rb_op op = range_op(key, serializable);
	struct rb_resp resp;
	int rc = it_do(url, &op, &resp);
	IT_CHECK(rc == 0, "get %s on %s: %s", key, url, rb_strerror(rc));
	char *v = strdup("");
	if (resp.body.u.range.kvs_n == 1 && resp.body.u.range.kvs[0].value_len) {
		free(v);
		v = strndup((const char *)resp.body.u.range.kvs[0].value,
		    resp.body.u.range.kvs[0].value_len);
	}
	rb_resp_free(&resp);
	return v;
}

static void check_kv_ops(struct it_cluster *c)
{
	const char *url = c->m[0].client_url;
	rb_rev r1, r2;
	IT_CHECK(it_put(c, "foo", "bar", &r1, deadline(10000)) == 0, "put");
	IT_CHECK(it_put(c, "foo", "baz", &r2, deadline(10000)) == 0, "put");
	IT_CHECK(r2 == r1 + 1, "revisions %lld then %lld", (long long)r1,
	    (long long)r2);
	char *v = get(url, "foo", false);
	IT_CHECK(!strcmp(v, "baz"), "got %s", v);
	free(v);
	/* txn: compare value, success put */
	struct rb_compare cmp = { .target = RB_CMP_VALUE,
	    .result = RB_CMP_EQUAL, .key = (const uint8_t *)"foo",
	    .key_len = 3, .value = (const uint8_t *)"baz", .value_len = 3 };
	struct rb_op put = { .type = RB_OP_PUT };
	put.u.put.key = (const uint8_t *)"txnkey";
	put.u.put.key_len = 6;
	put.u.put.value = (const uint8_t *)"yes";
	put.u.put.value_len = 3;
	struct rb_op txn = { .type = RB_OP_TXN };
	txn.u.txn.compares = &cmp;
	txn.u.txn.compares_n = 1;
	txn.u.txn.success = &put;
	txn.u.txn.success_n = 1;
	struct rb_resp resp;
	IT_CHECK(it_do_any(c, &txn, &resp, deadline(10000)) == 0, "txn");
	IT_CHECK(resp.body.u.txn.succeeded, "txn must succeed");
	rb_resp_free(&resp);
	/* linearizable: member 0 may be a follower that has not applied the
	 * txn yet, and a serializable read there may be stale (etcd's too) */
	v = get(url, "txnkey", false);
	IT_CHECK(!strcmp(v, "yes"), "txn put: %s", v);
	free(v);
	/* delete */
	struct rb_op del = { .type = RB_OP_DELETE_RANGE };
	del.u.delete_range.key = (const uint8_t *)"txnkey";
	del.u.delete_range.key_len = 6;
	IT_CHECK(it_do_any(c, &del, &resp, deadline(10000)) == 0, "del");
	IT_CHECK(resp.body.u.delete_range.deleted == 1, "deleted %lld",
	    (long long)resp.body.u.delete_range.deleted);
	rb_resp_free(&resp);
	/* compact, then a read below it is "compacted" */
	struct rb_op cop = { .type = RB_OP_COMPACT };
	cop.u.compact.revision = r2;
	IT_CHECK(it_do_any(c, &cop, &resp, deadline(10000)) == 0, "compact");
	rb_resp_free(&resp);
	struct rb_op old = range_op("foo", false);
	old.u.range.revision = r1;
	IT_CHECK(it_do(url, &old, &resp) == RB_ERR_COMPACTED, "compacted");
	IT_CHECK(resp.compact_revision == r2, "compact rev %lld",
	    (long long)resp.compact_revision);
	rb_resp_free(&resp);
	old.u.range.revision = r2 + 1000;
	IT_CHECK(it_do(url, &old, &resp) == RB_ERR_FUTURE_REV, "future");
	rb_resp_free(&resp);
}

static void check_leases(struct it_cluster *c)
{
	struct rb_op g = { .type = RB_OP_LEASE_GRANT };
	/* 3 s: grant, put, the reads and the first keep-alive must fit in
	 * one TTL, and a loaded machine can stall a request for a second */
	g.u.lease_grant.ttl_s = 3;
	struct rb_resp resp;
	IT_CHECK(it_do_any(c, &g, &resp, deadline(10000)) == 0, "grant");
	rb_lease_id id = resp.body.u.lease_grant.id;
	IT_CHECK(id != 0, "lease id");
	rb_resp_free(&resp);
	struct rb_op put = { .type = RB_OP_PUT };
	put.u.put.key = (const uint8_t *)"leased";
	put.u.put.key_len = 6;
	put.u.put.lease = id;
	IT_CHECK(it_do_any(c, &put, &resp, deadline(10000)) == 0, "put leased");
	rb_resp_free(&resp);
	struct rb_op ttl = { .type = RB_OP_LEASE_TIMETOLIVE };
	ttl.u.lease_ttl.id = id;
	ttl.u.lease_ttl.keys = true;
	IT_CHECK(it_do_any(c, &ttl, &resp, deadline(10000)) == 0, "ttl");
	IT_CHECK(resp.body.u.lease_ttl.keys_n == 1, "lease keys");
	IT_CHECK(resp.body.u.lease_ttl.ttl_s >= 0 &&
	    resp.body.u.lease_ttl.granted_ttl_s == 3, "ttl values");
	rb_resp_free(&resp);
	struct rb_op ls = { .type = RB_OP_LEASE_LEASES };
	IT_CHECK(it_do_any(c, &ls, &resp, deadline(10000)) == 0, "leases");
	IT_CHECK(resp.body.u.lease_leases.ids_n >= 1, "lease listed");
	rb_resp_free(&resp);
	/* keep-alive for a while, then let it expire: the key goes */
	struct rb_op ka = { .type = RB_OP_LEASE_KEEPALIVE };
	ka.u.lease_keepalive.id = id;
	for (int i = 0; i < 6; i++) {
		IT_CHECK(it_do_any(c, &ka, &resp, deadline(10000)) == 0,
		    "keepalive");
		rb_resp_free(&resp);
		it_sleep_ms(300);
	}
	char *v = get(c->m[0].client_url, "leased", false);
	IT_CHECK(v, "x");
	free(v);
	struct rb_op gl = range_op("leased", false);
	int64_t end = deadline(12000);
	long long n = 1;
	while (n && it_now_ms() < end) {
		IT_CHECK(it_do_any(c, &gl, &resp, deadline(3000)) == 0, "get");
		n = resp.body.u.range.count;
		rb_resp_free(&resp);
		it_sleep_ms(100);
	}
	IT_CHECK(n == 0, "leased key must be gone after expiry");
	IT_CHECK(it_do_any(c, &ka, &resp, deadline(10000)) ==
	    RB_ERR_LEASE_NOT_FOUND, "keepalive of an expired lease");
	rb_resp_free(&resp);
	/* revoke */
	IT_CHECK(it_do_any(c, &g, &resp, deadline(10000)) == 0, "grant 2");
	id = resp.body.u.lease_grant.id;
	rb_resp_free(&resp);
	struct rb_op rv = { .type = RB_OP_LEASE_REVOKE };
	rv.u.lease_revoke.id = id;
	IT_CHECK(it_do_any(c, &rv, &resp, deadline(10000)) == 0, "revoke");
	rb_resp_free(&resp);
	IT_CHECK(it_do_any(c, &rv, &resp, deadline(10000)) ==
	    RB_ERR_LEASE_NOT_FOUND, "second revoke");
	rb_resp_free(&resp);
}

static void check_status(struct it_cluster *c)
{
	struct rb_resp resp;
	for (int i = 0; i < c->n; i++) {
		struct rb_op op = { .type = RB_OP_MEMBER_LIST };
		IT_CHECK(it_do(c->m[i].client_url, &op, &resp) == 0, "members");
		IT_CHECK((int)resp.body.u.member_list.members_n == c->n,
		    "member count");
		IT_CHECK(resp.header.cluster_id != 0, "cluster id");
		rb_resp_free(&resp);
		op.type = RB_OP_HEALTH;
		IT_CHECK(it_do(c->m[i].client_url, &op, &resp) == 0, "health");
		IT_CHECK(resp.body.u.health.healthy, "healthy");
		rb_resp_free(&resp);
		op.type = RB_OP_ENDPOINT_STATUS;
		IT_CHECK(it_do(c->m[i].client_url, &op, &resp) == 0, "status");
		IT_CHECK(resp.body.u.status.leader != 0 &&
		    resp.body.u.status.raft_index >= 1 &&
		    resp.body.u.status.raft_applied_index >= 1 &&
		    resp.body.u.status.db_size > 0, "status fields");
		rb_resp_free(&resp);
	}
}

/* Garbage, unknown ops and oversize values get error replies and the
 * member keeps serving. */
static void check_bad_input(struct it_cluster *c)
{
	const char *url = c->m[0].client_url;
	struct rb_resp resp;
	static const uint8_t garbage[] = { 0xc1, 0xff, 0x00, 0x93, 0x01 };
	IT_CHECK(it_do_raw(url, garbage, sizeof(garbage), &resp) ==
	    RB_ERR_BAD_REQUEST, "garbage: %s", rb_strerror(resp.err));
	rb_resp_free(&resp);
	/* a well-formed msgpack map that is not a request */
	static const uint8_t map[] = { 0x81, 0xa1, 'x', 0x01 };
	IT_CHECK(it_do_raw(url, map, sizeof(map), &resp) ==
	    RB_ERR_BAD_REQUEST, "map: %s", rb_strerror(resp.err));
	rb_resp_free(&resp);
	IT_CHECK(it_do_raw(url, "", 0, &resp) == RB_ERR_BAD_REQUEST, "empty");
	rb_resp_free(&resp);
	/* an oversize value (limit 1.5 MiB by default) */
	size_t big = 1700u * 1024u;
	char *v = malloc(big);
	memset(v, 'v', big);
	struct rb_op put = { .type = RB_OP_PUT };
	put.u.put.key = (const uint8_t *)"big";
	put.u.put.key_len = 3;
	put.u.put.value = (const uint8_t *)v;
	put.u.put.value_len = big;
	int rc = it_do_any(c, &put, &resp, deadline(10000));
	IT_CHECK(rc == RB_ERR_TOO_LARGE, "oversize: %s", rb_strerror(rc));
	rb_resp_free(&resp);
	free(v);
	/* an empty key */
	put.u.put.key_len = 0;
	put.u.put.value_len = 0;
	rc = it_do_any(c, &put, &resp, deadline(10000));
	IT_CHECK(rc == RB_ERR_EMPTY_KEY, "empty key: %s", rb_strerror(rc));
	rb_resp_free(&resp);
	/* still serving */
	IT_CHECK(it_put(c, "after-garbage", "ok", NULL, deadline(10000)) == 0,
	    "put after garbage");
	char *g = get(url, "after-garbage", false);
	IT_CHECK(!strcmp(g, "ok"), "served after garbage");
	free(g);
}

static void test_single(void)
{
	struct it_cluster c;
	it_cluster_init(&c, 1);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) == 0, "single member leads");
	check_kv_ops(&c);
	check_status(&c);
	check_bad_input(&c);
	check_leases(&c);
	rb_rev before;
	char *d1 = it_dump(c.m[0].client_url, false, &before);
	IT_CHECK(d1, "dump");
	/* clean restart resumes from the data dir; revisions continue */
	it_kill(&c, 0, SIGTERM);
	IT_CHECK(it_log_count(&c, 0, "stopped cleanly") == 1, "clean stop");
	it_start(&c, 0);
	IT_CHECK(it_wait_leader(&c, 10000) == 0, "leads after restart");
	rb_rev after;
	char *d2 = it_dump(c.m[0].client_url, false, &after);
	IT_CHECK(d2 && !strcmp(d1, d2), "same contents after restart");
	IT_CHECK(after == before, "same revision %lld %lld",
	    (long long)before, (long long)after);
	rb_rev r;
	IT_CHECK(it_put(&c, "next", "1", &r, deadline(10000)) == 0, "put");
	IT_CHECK(r == before + 1, "revision continues");
	free(d1);
	free(d2);
	it_cluster_done(&c);
}

static void check_same_everywhere(struct it_cluster *c)
{
	/* Serializable dumps converge once followers applied everything
	 * (a member just restarted re-applies its log first: generous on a
	 * loaded 2-core machine). */
	char *ref = NULL;
	int64_t end = deadline(20000);
	for (;;) {
		bool same = true;
		free(ref);
		/* a member just restarted may not listen yet: retry */
		ref = it_dump(c->m[0].client_url, false, NULL);
		same = ref != NULL;
		for (int i = 1; i < c->n && same; i++) {
			char *d = it_dump(c->m[i].client_url, true, NULL);
			same = d && !strcmp(d, ref);
			free(d);
		}
		if (same)
			break;
		IT_CHECK(it_now_ms() < end, "members do not converge");
		it_sleep_ms(100);
	}
	free(ref);
}

static void test_members(int n)
{
	struct it_cluster c;
	it_cluster_init(&c, n);
	it_start_all(&c);
	int leader = it_leader(&c, "a leader");
	/* a write through a follower: "not leader" with the leader's URL */
	int f = (leader + 1) % n;
	struct rb_op put = { .type = RB_OP_PUT };
	put.u.put.key = (const uint8_t *)"k";
	put.u.put.key_len = 1;
	struct rb_resp resp;
	int64_t end = deadline(10000);
	int rc;
	/* right after the start a follower may not know the leader, or not
	 * yet its client URL (hello messages): wait for both */
	while (((rc = it_do(c.m[f].client_url, &put, &resp)) ==
	    RB_ERR_NO_LEADER || (rc == RB_ERR_NOT_LEADER &&
	    !resp.leader_url[0])) && it_now_ms() < end) {
		rb_resp_free(&resp);
		it_sleep_ms(100);
	}
	IT_CHECK(rc == RB_ERR_NOT_LEADER, "follower write: %s",
	    rb_strerror(rc));
	IT_CHECK(!strcmp(resp.leader_url, c.m[leader].client_url),
	    "leader hint %s", resp.leader_url);
	rb_resp_free(&resp);
	check_kv_ops(&c);
	/* every write is readable (linearizable) through every member */
	for (int i = 0; i < 30; i++) {
		char k[32], v[32];
		snprintf(k, sizeof(k), "key%02d", i);
		snprintf(v, sizeof(v), "val%d", i);
		IT_CHECK(it_put(&c, k, v, NULL, deadline(10000)) == 0, "put");
		char *g = get(c.m[i % n].client_url, k, false);
		IT_CHECK(!strcmp(g, v), "linearizable read on %d: %s", i % n,
		    g);
		free(g);
	}
	check_status(&c);
	check_leases(&c);
	check_same_everywhere(&c);
	it_cluster_done(&c);
}

/* Keys acknowledged by writers: key "w<i>" = "<i>". */
struct acked {
	int n;
	int max;
	bool *ok;
};

static void write_burst(struct it_cluster *c, struct acked *a, int count,
    int64_t until)
{
	for (int i = 0; i < count && it_now_ms() < until && a->n < a->max;
	    i++) {
		char k[32], v[32];
		snprintf(k, sizeof(k), "w%06d", a->n);
		snprintf(v, sizeof(v), "%d", a->n);
		if (it_put(c, k, v, NULL, it_now_ms() + 300) == 0)
			a->ok[a->n] = true;
		a->n++;
	}
}

static void check_acked(struct it_cluster *c, const struct acked *a)
{
	for (int m = 0; m < c->n; m++) {
		char *d = it_dump(c->m[m].client_url, true, NULL);
		IT_CHECK(d, "dump member %d", m);
		for (int i = 0; i < a->n; i++) {
			char line[64];
			snprintf(line, sizeof(line), "w%06d=%d\n", i, i);
			IT_CHECK(!a->ok[i] || strstr(d, line),
			    "acknowledged w%06d missing on member %d", i, m);
		}
		free(d);
	}
}

static void test_failover(void)
{
	struct it_cluster c;
	it_cluster_init(&c, 3);
	it_start_all(&c);
	int leader = it_leader(&c, "a leader");
	struct acked a = { .max = 100000 };
	a.ok = calloc((size_t)a.max, sizeof(bool));
	write_burst(&c, &a, 200, deadline(10000));
	it_kill(&c, leader, SIGKILL);
	int64_t killed = it_now_ms();
	int acked_before = 0;
	for (int i = 0; i < a.n; i++)
		acked_before += a.ok[i];
	/* continuous writes: a new leader takes them within a few election
	 * timeouts (500 ms each) */
	int64_t first_ok = 0;
	while (!first_ok && it_now_ms() < killed + 10000) {
		int was = a.n;
		write_burst(&c, &a, 1, deadline(10000));
		if (a.ok[was])
			first_ok = it_now_ms();
	}
	IT_CHECK(first_ok, "no write accepted after the leader died");
	fprintf(stderr, "failover: first write acknowledged %lld ms after "
	    "kill -9 of the leader\n", (long long)(first_ok - killed));
	IT_CHECK(first_ok - killed < 5000, "failover took %lld ms",
	    (long long)(first_ok - killed));
	write_burst(&c, &a, 200, deadline(10000));
	it_start(&c, leader);
	write_burst(&c, &a, 100, deadline(10000));
	check_same_everywhere(&c);
	check_acked(&c, &a);
	fprintf(stderr, "failover: %d writes acknowledged before the kill, %d "
	    "attempted in all\n", acked_before, a.n);
	free(a.ok);
	it_cluster_done(&c);
}

static void test_crashall(void)
{
	struct it_cluster c;
	it_cluster_init(&c, 3);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "a leader");
	struct acked a = { .max = 100000 };
	a.ok = calloc((size_t)a.max, sizeof(bool));
	write_burst(&c, &a, 300, deadline(10000));
	rb_rev rev;
	char *d = it_dump(c.m[0].client_url, false, &rev);
	free(d);
	for (int i = 0; i < 3; i++)
		it_kill(&c, i, SIGKILL);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "a leader after restart");
	check_same_everywhere(&c);
	check_acked(&c, &a);
	rb_rev r2;
	IT_CHECK(it_put(&c, "after", "crash", &r2, deadline(10000)) == 0, "put");
	IT_CHECK(r2 == rev + 1, "revision continues: %lld after %lld",
	    (long long)r2, (long long)rev);
	free(a.ok);
	it_cluster_done(&c);
}

static void test_snapshot(void)
{
	struct it_cluster c;
	it_cluster_init(&c, 3);
	c.extra[0] = "--snapshot-count";
	c.extra[1] = "50";
	it_start_all(&c);
	int leader = it_leader(&c, "a leader");
	int f = (leader + 1) % 3;
	it_kill(&c, f, SIGKILL);
	struct acked a = { .max = 100000 };
	a.ok = calloc((size_t)a.max, sizeof(bool));
	write_burst(&c, &a, 300, deadline(20000));
	int other = 3 - leader - f;
	IT_CHECK(it_log_count(&c, other, "log compacted") >= 1 ||
	    it_log_count(&c, leader, "log compacted") >= 1,
	    "the log was compacted");
	it_start(&c, f);
	check_same_everywhere(&c);
	check_acked(&c, &a);
	IT_CHECK(it_log_count(&c, f, "installed snapshot") >= 1,
	    "the restarted member caught up by snapshot");
	/* and it keeps up afterwards */
	write_burst(&c, &a, 50, deadline(10000));
	check_same_everywhere(&c);
	/* every member restarts from its own snapshots and compacted log */
	for (int i = 0; i < 3; i++)
		it_kill(&c, i, SIGKILL);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "a leader after restart");
	write_burst(&c, &a, 20, deadline(10000));
	check_same_everywhere(&c);
	check_acked(&c, &a);
	free(a.ok);
	it_cluster_done(&c);
}

/* Over --quota-backend-bytes writes get "database space exceeded", reads
 * and deletes still work, and the member keeps serving. */
static void test_quota(void)
{
	struct it_cluster c;
	it_cluster_init(&c, 1);
	c.extra[0] = "--quota-backend-bytes";
	c.extra[1] = "20000";
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) == 0, "leader");
	char val[1000];
	memset(val, 'q', sizeof(val) - 1);
	val[sizeof(val) - 1] = 0;
	int rc = 0, i;
	for (i = 0; i < 100 && rc == 0; i++) {
		char k[32];
		snprintf(k, sizeof(k), "q%03d", i);
		rc = it_put(&c, k, val, NULL, deadline(10000));
	}
	IT_CHECK(rc == RB_ERR_NOSPACE, "quota: %s after %d puts",
	    rb_strerror(rc), i);
	char *v = get(c.m[0].client_url, "q000", false);
	IT_CHECK(!strcmp(v, val), "reads still served over the quota");
	free(v);
	struct rb_op del = { .type = RB_OP_DELETE_RANGE };
	del.u.delete_range.key = (const uint8_t *)"q000";
	del.u.delete_range.key_len = 4;
	struct rb_resp resp;
	IT_CHECK(it_do_any(&c, &del, &resp, deadline(10000)) == 0,
	    "deletes still served over the quota");
	rb_resp_free(&resp);
	it_cluster_done(&c);
}

/* A member cut off from the majority (the two others paused with SIGSTOP)
 * accepts no write and serves no linearizable read, but still serves
 * serializable reads; when the others resume the cluster works again. */
static void test_minority(void)
{
	struct it_cluster c;
	it_cluster_init(&c, 3);
	it_start_all(&c);
	int leader = it_leader(&c, "a leader");
	IT_CHECK(it_put(&c, "before", "cut", NULL, deadline(10000)) == 0, "put");
	int alone = leader; /* the hardest case: the old leader is alone */
	for (int i = 0; i < 3; i++)
		if (i != alone)
			kill(c.m[i].pid, SIGSTOP);
	it_sleep_ms(1500); /* three election timeouts: check-quorum acts */
	const char *url = c.m[alone].client_url;
	struct rb_op put = { .type = RB_OP_PUT };
	put.u.put.key = (const uint8_t *)"during";
	put.u.put.key_len = 6;
	struct rb_resp resp;
	int rc = it_do(url, &put, &resp);
	rb_resp_free(&resp);
	IT_CHECK(rc != 0, "a minority accepted a write");
	struct rb_op rd = range_op("before", false);
	rc = it_do(url, &rd, &resp);
	rb_resp_free(&resp);
	IT_CHECK(rc != 0, "a minority served a linearizable read");
	char *v = get(url, "before", true);
	IT_CHECK(!strcmp(v, "cut"), "serializable read on the minority: %s",
	    v);
	free(v);
	for (int i = 0; i < 3; i++)
		if (i != alone)
			kill(c.m[i].pid, SIGCONT);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "a leader after healing");
	IT_CHECK(it_put(&c, "after", "heal", NULL, deadline(10000)) == 0,
	    "put after healing");
	check_same_everywhere(&c);
	it_cluster_done(&c);
}

/* Term and leader id as member i reports them (0 on error). */
static void status_of(struct it_cluster *c, int i, uint64_t *term,
    uint64_t *leader)
{
	struct rb_op op = { .type = RB_OP_ENDPOINT_STATUS };
	struct rb_resp resp;
	*term = *leader = 0;
	if (it_do(c->m[i].client_url, &op, &resp) == 0) {
		*term = resp.body.u.status.raft_term;
		*leader = resp.body.u.status.leader;
	}
	rb_resp_free(&resp);
}

/* A follower whose peer traffic is cut (it receives nothing) serves no
 * linearizable read and accepts no write; it keeps trying to campaign, and
 * when the cut heals the leader is not disturbed (PreVote + CheckQuorum:
 * same leader, same term). Then the leader itself is cut: the others elect
 * a new leader, the old one answers neither writes nor linearizable reads,
 * and rejoins as a follower. */
static void test_partition(void)
{
	struct it_cluster c;
	it_cluster_init_proxied(&c, 3);
	/* etcd's default timing: "the leader is not disturbed" must not be
	 * confused with an election caused by a loaded test machine */
	c.heartbeat_ms = "100";
	c.election_ms = "1000";
	it_start_all(&c);
	int leader = it_leader(&c, "a leader");
	IT_CHECK(it_put(&c, "k0", "v0", NULL, deadline(10000)) == 0, "put");
	uint64_t term0, lid0;
	status_of(&c, leader, &term0, &lid0);
	int f = (leader + 1) % 3;
	it_cut(&c, f, true);
	it_sleep_ms(3000); /* three election timeouts */
	struct rb_op put = { .type = RB_OP_PUT };
	put.u.put.key = (const uint8_t *)"k1";
	put.u.put.key_len = 2;
	struct rb_resp resp;
	IT_CHECK(it_do(c.m[f].client_url, &put, &resp) != 0,
	    "a cut-off follower accepted a write");
	rb_resp_free(&resp);
	struct rb_op rd = range_op("k0", false);
	IT_CHECK(it_do(c.m[f].client_url, &rd, &resp) != 0,
	    "a cut-off follower served a linearizable read");
	rb_resp_free(&resp);
	IT_CHECK(it_put(&c, "k2", "v2", NULL, deadline(10000)) == 0,
	    "the majority keeps accepting writes");
	it_cut(&c, f, false);
	it_sleep_ms(2000);
	uint64_t term1, lid1;
	status_of(&c, leader, &term1, &lid1);
	IT_CHECK(term1 == term0 && lid1 == lid0, "leader disturbed by a "
	    "healed member: term %llu -> %llu", (unsigned long long)term0,
	    (unsigned long long)term1);
	check_same_everywhere(&c);
	/* now cut the leader */
	it_cut(&c, leader, true);
	int64_t end = deadline(15000);
	int nl = -1;
	while (nl < 0 && it_now_ms() < end) {
		for (int i = 0; i < 3; i++) {
			uint64_t t, l;
			if (i == leader)
				continue;
			status_of(&c, i, &t, &l);
			if (t > term0 && l && l != lid0)
				nl = i;
		}
		it_sleep_ms(100);
	}
	IT_CHECK(nl >= 0, "no new leader while the old one is cut off");
	it_sleep_ms(1500);
	IT_CHECK(it_do(c.m[leader].client_url, &put, &resp) != 0,
	    "a cut-off old leader accepted a write");
	rb_resp_free(&resp);
	IT_CHECK(it_do(c.m[leader].client_url, &rd, &resp) != 0,
	    "a cut-off old leader served a linearizable read");
	rb_resp_free(&resp);
	it_cut(&c, leader, false);
	IT_CHECK(it_put(&c, "k3", "v3", NULL, deadline(10000)) == 0, "put");
	check_same_everywhere(&c);
	it_cluster_done(&c);
}

/* ---- readers: large reads do not stall Raft ----------------------------- */

/* The data set: RD_KEYS keys "r/NNNNNN" of RD_VALUE_BYTES bytes. */
#define RD_KEYS 50000
#define RD_VALUE_BYTES 100
/* Puts per loading txn (the store's limit, etcd's default). */
#define RD_TXN_OPS 128
/* Client threads running full-range reads while writes are measured. */
#define RD_READ_THREADS 6
#define RD_WRITE_MS 5000
/* Generous bound on one write's latency while big reads run. */
#define RD_WRITE_LATENCY_MS_MAX 1000
/* Concurrent reads in the flood: more than the server's read queue (the
 * members run with --max-queued-reads RD_QUEUED_READS) plus its readers
 * (BK_READERS 2). */
#define RD_QUEUED_READS "64"
#define RD_FLOOD_THREADS 96
#define RD_FLOOD_LIMIT 10000

struct rd_shared {
	const char *url;
	_Atomic bool stop;
	_Atomic int reads_ok;
	_Atomic int reads_bad;
	_Atomic int64_t read_ms_max;
	pthread_barrier_t go;
	_Atomic int flood_ok;
	_Atomic int flood_refused;
	_Atomic int flood_other;
};

static void rd_load(struct it_cluster *c)
{
	static char keys[RD_TXN_OPS][16];
	char val[RD_VALUE_BYTES];
	memset(val, 'v', sizeof(val));
	struct rb_op puts[RD_TXN_OPS];
	for (int base = 0; base < RD_KEYS; base += RD_TXN_OPS) {
		int n = RD_KEYS - base < RD_TXN_OPS ? RD_KEYS - base : RD_TXN_OPS;
		for (int i = 0; i < n; i++) {
			snprintf(keys[i], sizeof(keys[i]), "r/%06d", base + i);
			puts[i] = (struct rb_op){ .type = RB_OP_PUT };
			puts[i].u.put.key = (const uint8_t *)keys[i];
			puts[i].u.put.key_len = strlen(keys[i]);
			puts[i].u.put.value = (const uint8_t *)val;
			puts[i].u.put.value_len = sizeof(val);
		}
		struct rb_op txn = { .type = RB_OP_TXN };
		txn.u.txn.success = puts;
		txn.u.txn.success_n = (size_t)n;
		struct rb_resp resp;
		int rc = it_do_any(c, &txn, &resp, deadline(10000));
		rb_resp_free(&resp);
		IT_CHECK(rc == 0, "load txn at %d: %s", base, rb_strerror(rc));
	}
}

static struct rb_op rd_range(bool serializable, int64_t limit)
{
	struct rb_op op = range_op("r/", serializable);
	op.u.range.range_end = (const uint8_t *)"r0";
	op.u.range.range_end_len = 2;
	op.u.range.limit = limit;
	return op;
}

/* Full-range reads, alternately linearizable and serializable. */
static void *rd_reader(void *arg)
{
	struct rd_shared *sh = arg;
	for (int i = 0; !sh->stop && i < 100000; i++) {
		struct rb_op op = rd_range(i % 2, 0);
		struct rb_resp resp;
		int64_t t0 = it_now_ms();
		int rc = it_do(sh->url, &op, &resp);
		int64_t ms = it_now_ms() - t0;
		if (rc == 0 && resp.body.u.range.kvs_n == RD_KEYS)
			sh->reads_ok++;
		else
			sh->reads_bad++;
		if (ms > sh->read_ms_max)
			sh->read_ms_max = ms;
		rb_resp_free(&resp);
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

struct rd_writes_stats {
	int n, failed, first_err;
	int64_t p50_ms, p99_ms, max_ms;
};

/* Writes to the leader for RD_WRITE_MS while the readers run, measuring
 * each one's latency. */
static void rd_writes(struct it_cluster *c, int leader,
    struct rd_writes_stats *ws)
{
	static int64_t lat[100000];
	int n = 0;
	memset(ws, 0, sizeof(*ws));
	int64_t end = deadline(RD_WRITE_MS);
	while (it_now_ms() < end && n < 100000) {
		char k[32];
		snprintf(k, sizeof(k), "w/%06d", n);
		struct rb_op put = { .type = RB_OP_PUT };
		put.u.put.key = (const uint8_t *)k;
		put.u.put.key_len = strlen(k);
		put.u.put.value = (const uint8_t *)"x";
		put.u.put.value_len = 1;
		struct rb_resp resp;
		int64_t t0 = it_now_ms();
		int rc = it_do(c->m[leader].client_url, &put, &resp);
		lat[n++] = it_now_ms() - t0;
		rb_resp_free(&resp);
		if (rc && !ws->failed++)
			ws->first_err = rc;
	}
	qsort(lat, (size_t)n, sizeof(lat[0]), cmp_i64);
	ws->n = n;
	ws->p50_ms = lat[n / 2];
	ws->p99_ms = lat[n * 99 / 100];
	ws->max_ms = lat[n - 1];
}

/* One read per thread, all released at once: each gets its answer or
 * "too many requests", never silence. */
static void *rd_flooder(void *arg)
{
	struct rd_shared *sh = arg;
	pthread_barrier_wait(&sh->go);
	struct rb_op op = rd_range(false, RD_FLOOD_LIMIT);
	struct rb_resp resp;
	int rc = it_do(sh->url, &op, &resp);
	if (rc == 0 && resp.body.u.range.kvs_n == RD_FLOOD_LIMIT)
		sh->flood_ok++;
	else if (rc == RB_ERR_TIMEOUT && resp.msg &&
	    (strstr(resp.msg, "too many requests") ||
	    strstr(resp.msg, "request timed out")))
		sh->flood_refused++;
	else {
		sh->flood_other++;
		fprintf(stderr, "readers: flood read: %s (%s)\n", rb_strerror(rc),
		    resp.msg ? resp.msg : "");
	}
	rb_resp_free(&resp);
	return NULL;
}

static void rd_flood(struct rd_shared *sh)
{
	pthread_t th[RD_FLOOD_THREADS];
	pthread_barrier_init(&sh->go, NULL, RD_FLOOD_THREADS);
	for (int i = 0; i < RD_FLOOD_THREADS; i++)
		IT_CHECK(pthread_create(&th[i], NULL, rd_flooder, sh) == 0,
		    "thread");
	for (int i = 0; i < RD_FLOOD_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&sh->go);
	fprintf(stderr, "readers: flood of %d reads: %d answered, %d refused "
	    "(too many requests or request timed out), %d other\n", RD_FLOOD_THREADS,
	    (int)sh->flood_ok, (int)sh->flood_refused, (int)sh->flood_other);
	IT_CHECK(sh->flood_other == 0, "%d reads got neither an answer nor "
	    "\"too many requests\" / \"request timed out\"",
	    (int)sh->flood_other);
	IT_CHECK(sh->flood_ok > 0, "no read of the flood was answered");
	/* more reads at once than the queue holds: the bound must show */
	IT_CHECK(sh->flood_refused > 0, "no read of the flood was refused");
}

/* Big range reads run on the reader threads, not on the loop: writes stay
 * fast and the leader keeps its term while they run; a flood of reads
 * beyond the read queue is answered or refused, never left hanging. */
static void test_readers(void)
{
	struct it_cluster c;
	it_cluster_init(&c, 3);
	c.extra[0] = "--max-queued-reads";
	c.extra[1] = RD_QUEUED_READS;
	it_start_all(&c);
	int leader = it_leader(&c, "a leader");
	rd_load(&c);
	leader = it_leader(&c, "a leader after loading");
	uint64_t term0, lid0, term1, lid1;
	status_of(&c, leader, &term0, &lid0);
	IT_CHECK(term0 && lid0, "status of the leader");
	static struct rd_shared sh;
	sh.url = c.m[leader].client_url;
	pthread_t th[RD_READ_THREADS];
	for (int i = 0; i < RD_READ_THREADS; i++)
		IT_CHECK(pthread_create(&th[i], NULL, rd_reader, &sh) == 0,
		    "thread");
	struct rd_writes_stats ws;
	rd_writes(&c, leader, &ws);
	sh.stop = true;
	for (int i = 0; i < RD_READ_THREADS; i++)
		pthread_join(th[i], NULL);
	status_of(&c, leader, &term1, &lid1);
	fprintf(stderr, "readers: %d writes in %d ms beside %d full reads of "
	    "%d keys (longest read %lld ms): latency p50 %lld p99 %lld max "
	    "%lld ms, %d failed; leader term %llu -> %llu\n", ws.n,
	    RD_WRITE_MS, (int)sh.reads_ok, RD_KEYS,
	    (long long)sh.read_ms_max, (long long)ws.p50_ms,
	    (long long)ws.p99_ms, (long long)ws.max_ms, ws.failed,
	    (unsigned long long)term0, (unsigned long long)term1);
	IT_CHECK(term1 == term0 && lid1 == lid0, "leadership lost during big "
	    "reads");
	IT_CHECK(ws.failed == 0, "writes failed during big reads, first: %s",
	    rb_strerror(ws.first_err));
	IT_CHECK(ws.n >= 10, "only %d writes in %d ms", ws.n, RD_WRITE_MS);
	IT_CHECK(ws.max_ms < RD_WRITE_LATENCY_MS_MAX, "a write took %lld ms "
	    "while big reads ran", (long long)ws.max_ms);
	IT_CHECK(sh.reads_ok > 0 && sh.reads_bad == 0, "big reads: %d ok, "
	    "%d failed", (int)sh.reads_ok, (int)sh.reads_bad);
	rd_flood(&sh);
	status_of(&c, leader, &term1, &lid1);
	IT_CHECK(term1 == term0 && lid1 == lid0, "leadership lost during the "
	    "flood");
	it_cluster_done(&c);
}

/* A valid txn (64 nested txns of 3 ranges each: within etcd's op budget,
 * which counts per nesting level) commits; its reply must carry the
 * result, not "internal error", or the client would retry a write that
 * was applied. */
static void test_bigtxn(void)
{
	struct it_cluster c;
	it_cluster_init(&c, 1);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) == 0, "leader");
	IT_CHECK(it_put(&c, "k", "v", NULL, deadline(10000)) == 0, "put");
	enum { OUTER = 64, INNER = 3 };
	static struct rb_op ranges[INNER], inner[OUTER];
	for (int i = 0; i < INNER; i++) {
		ranges[i].type = RB_OP_RANGE;
		ranges[i].u.range.key = (const uint8_t *)"k";
		ranges[i].u.range.key_len = 1;
	}
	for (int i = 0; i < OUTER; i++) {
		inner[i].type = RB_OP_TXN;
		inner[i].u.txn.success = ranges;
		inner[i].u.txn.success_n = INNER;
	}
	struct rb_op txn = { .type = RB_OP_TXN };
	txn.u.txn.success = inner;
	txn.u.txn.success_n = OUTER;
	struct rb_resp resp;
	int rc = it_do_any(&c, &txn, &resp, deadline(10000));
	IT_CHECK(rc == 0, "big txn: %s (%s)", rb_strerror(rc),
	    resp.msg ? resp.msg : "");
	IT_CHECK(resp.body.u.txn.succeeded &&
	    resp.body.u.txn.responses_n == OUTER, "big txn: %zu responses",
	    resp.body.u.txn.responses_n);
	const struct rb_op_resp *last = &resp.body.u.txn.responses[OUTER - 1];
	IT_CHECK(last->u.txn.responses_n == INNER &&
	    last->u.txn.responses[INNER - 1].u.range.kvs_n == 1,
	    "big txn: nested range results");
	rb_resp_free(&resp);
	it_cluster_done(&c);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IONBF, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: it_cluster flags|single|three|five|"
		    "failover|crashall|snapshot|quota|minority|partition|"
		    "readers|bigtxn\n");
		return 2;
	}
	const char *t = argv[1];
	if (!strcmp(t, "flags"))
		test_flags();
	else if (!strcmp(t, "single"))
		test_single();
	else if (!strcmp(t, "three"))
		test_members(3);
	else if (!strcmp(t, "five"))
		test_members(5);
	else if (!strcmp(t, "failover"))
		test_failover();
	else if (!strcmp(t, "readers"))
		test_readers();
	else if (!strcmp(t, "crashall"))
		test_crashall();
	else if (!strcmp(t, "snapshot"))
		test_snapshot();
	else if (!strcmp(t, "minority"))
		test_minority();
	else if (!strcmp(t, "quota"))
		test_quota();
	else if (!strcmp(t, "partition"))
		test_partition();
	else if (!strcmp(t, "bigtxn"))
		test_bigtxn();
	else
		return 2;
	it_ok(t);
	return 0;
}
