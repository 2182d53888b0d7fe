/*
 * it_util.c - see it_util.h. Every process started is recorded in a table;
 * an atexit handler kills what is still running, and every child gets
 * PR_SET_PDEATHSIG so that it dies with the harness even on SIGKILL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "it_util.h"
#include "rb_wire.h"

#define IT_PIDS_MAX 64
static pid_t pids[IT_PIDS_MAX];
static bool atexit_set;
static char cleanup_dir[256];
static struct it_cluster *current;   /* its logs are shown on failure */

static int rm_one(const char *p, const struct stat *sb, int flag,
    struct FTW *f)
{
	(void)sb; (void)flag; (void)f;
	return remove(p);
}

static void kill_all(void)
{
	for (int i = 0; i < IT_PIDS_MAX; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
			pids[i] = 0;
		}
	if (cleanup_dir[0] && !getenv("IT_KEEP"))
		nftw(cleanup_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The threads' stacks of a live process, to stderr, through gdb (when
 * the machine has it; bounded by IT_STACKS_TIMEOUT_S). What a member
 * stuck somewhere was doing is otherwise lost with it. IT_STACKS=0 skips. */
#define IT_STACKS_TIMEOUT_S "20"

static void dump_stacks(pid_t pid)
{
	const char *env = getenv("IT_STACKS");
	if ((env && !strcmp(env, "0")) || kill(pid, 0) != 0)
		return;
	char p[16];
	snprintf(p, sizeof(p), "%d", (int)pid);
	fprintf(stderr, "---- threads of member pid %s ----\n", p);
	fflush(stderr);
	pid_t g = fork();
	if (g == 0) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		dup2(2, 1);
		execlp("timeout", "timeout", IT_STACKS_TIMEOUT_S, "gdb", "-p", p,
		    "-batch", "-nx", "-ex", "thread apply all bt 12", (char *)NULL);
		_exit(127);
	}
	if (g > 0)
		waitpid(g, NULL, 0);
	fprintf(stderr, "---- end of threads of pid %s ----\n", p);
}

/* A failure shows the end of every member's log and the stacks of the
 * members still running: CI keeps no files. */
void it_fail(void)
{
	struct it_cluster *c = current;
	current = NULL;   /* a check failing in here must not recurse */
	if (c)
		for (int i = 0; i < c->n; i++) {
			it_log_tail(c, i, 15);
			if (c->m[i].pid)
				dump_stacks(c->m[i].pid);
		}
	exit(1);
}

int64_t it_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void it_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Ports handed out are drawn below the kernel's ephemeral range (32768
 * and up by default): a port the kernel picked for bind(0) can be picked
 * again, or taken by one of the members' outgoing connections, before the
 * member binds it. Each one is checked free with a bind and never handed
 * out twice by this process. */
#define IT_PORT_LO 20000
#define IT_PORT_HI 32000
#define IT_PORTS_GIVEN_MAX 512

int it_free_port(void)
{
	static int given[IT_PORTS_GIVEN_MAX];
	static int given_n, given_at;
	static uint64_t rnd;
	if (!rnd)
		rnd = ((uint64_t)getpid() << 32) ^ (uint64_t)it_now_ms() ^
		    0x9E3779B97F4A7C15ull;
	for (int tries = 0; tries < 10000; tries++) {
		rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
		int port = IT_PORT_LO + (int)((rnd >> 33) %
		    (IT_PORT_HI - IT_PORT_LO));
		bool dup = false;
		for (int i = 0; i < given_n && !dup; i++)
			dup = given[i] == port;
		if (dup)
			continue;
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		IT_CHECK(fd >= 0, "socket");
		struct sockaddr_in a = { .sin_family = AF_INET,
		    .sin_port = htons((uint16_t)port),
		    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (!ok)
			continue;
		given[given_at++ % IT_PORTS_GIVEN_MAX] = port;
		if (given_n < IT_PORTS_GIVEN_MAX)
			given_n++;
		return port;
	}
	IT_CHECK(false, "no free loopback port in %d..%d", IT_PORT_LO,
	    IT_PORT_HI);
	return -1;
}

void it_cluster_init(struct it_cluster *c, int n)
{
	memset(c, 0, sizeof(*c));
	if (!atexit_set) {
		atexit(kill_all);
		atexit_set = true;
	}
	snprintf(c->dir, sizeof(c->dir), "/tmp/raftbus-it-XXXXXX");
	IT_CHECK(mkdtemp(c->dir), "mkdtemp");
	snprintf(cleanup_dir, sizeof(cleanup_dir), "%s", c->dir);
	current = c;
	c->n = n;
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		struct it_member *m = &c->m[i];
		snprintf(m->name, sizeof(m->name), "m%d", i);
		int cport = it_free_port(), pport = it_free_port();
		snprintf(m->client_url, sizeof(m->client_url),
		    "tcp://127.0.0.1:%d", cport);
		snprintf(m->peer_url, sizeof(m->peer_url),
		    "tcp://127.0.0.1:%d", pport);
		char dir[256];
		memcpy(dir, c->dir, sizeof(dir));
		snprintf(m->data_dir, sizeof(m->data_dir), "%s/m%d.raftbus",
		    dir, i);
		snprintf(m->log_path, sizeof(m->log_path), "%s/m%d.log", dir,
		    i);
		memcpy(m->adv_peer_url, m->peer_url, sizeof(m->peer_url));
		off += (size_t)snprintf(c->initial_cluster + off,
		    sizeof(c->initial_cluster) - off, "%s%s=%s", i ? "," : "",
		    m->name, m->adv_peer_url);
	}
}

static void record_pid(pid_t pid)
{
	for (int i = 0; i < IT_PIDS_MAX; i++)
		if (pids[i] == 0) {
			pids[i] = pid;
			return;
		}
	IT_CHECK(0, "too many processes");
}

static void forget_pid(pid_t pid)
{
	for (int i = 0; i < IT_PIDS_MAX; i++)
		if (pids[i] == pid)
			pids[i] = 0;
}

void it_start(struct it_cluster *c, int i)
{
	struct it_member *m = &c->m[i];
	const char *bin = getenv("RAFTBUS_BIN");
	IT_CHECK(bin, "RAFTBUS_BIN not set");
	const char *argv[64];
	int k = 0;
	argv[k++] = bin;
	argv[k++] = "--name"; argv[k++] = m->name;
	argv[k++] = "--data-dir"; argv[k++] = m->data_dir;
	argv[k++] = "--listen-client-urls"; argv[k++] = m->client_url;
	argv[k++] = "--listen-peer-urls"; argv[k++] = m->peer_url;
	argv[k++] = "--initial-advertise-peer-urls";
	argv[k++] = m->adv_peer_url;
	argv[k++] = "--initial-cluster"; argv[k++] = c->initial_cluster;
	argv[k++] = "--heartbeat-interval";
	argv[k++] = c->heartbeat_ms ? c->heartbeat_ms : "50";
	argv[k++] = "--election-timeout";
	argv[k++] = c->election_ms ? c->election_ms : "500";
	for (int e = 0; c->extra[e] && k < 62; e++)
		argv[k++] = c->extra[e];
	argv[k] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	IT_CHECK(pid >= 0, "fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		FILE *f = freopen(m->log_path, "a", stderr);
		(void)f;
		if (c->lsan_supp[0]) {
			char opts[1024];
			const char *old = getenv("LSAN_OPTIONS");
			snprintf(opts, sizeof(opts), "%s%ssuppressions=%s",
			    old ? old : "", old && old[0] ? ":" : "",
			    c->lsan_supp);
			setenv("LSAN_OPTIONS", opts, 1);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	m->pid = pid;
	record_pid(pid);
}

int it_leader(struct it_cluster *c, const char *what)
{
	int leader = it_wait_leader(c, IT_LEADER_WAIT_MS);
	IT_CHECK(leader >= 0, "no leader within %d ms: %s", IT_LEADER_WAIT_MS, what);
	return leader;
}

void it_crash_restart(struct it_cluster *c, int i, int down_ms)
{
	it_kill(c, i, SIGKILL);
	it_sleep_ms(down_ms);
	it_start(c, i);
}

void it_start_all(struct it_cluster *c)
{
	for (int i = 0; i < c->n; i++)
		it_start(c, i);
}

int it_kill(struct it_cluster *c, int i, int sig)
{
	struct it_member *m = &c->m[i];
	if (!m->pid)
		return 0;
	kill(m->pid, sig);
	/* longer than the server's own stop watchdog (BK_CLOSE_STALL_MS) */
	int64_t end = it_now_ms() + 15000;
	int st = 0;
	while (waitpid(m->pid, &st, WNOHANG) == 0) {
		if (it_now_ms() > end) {
			dump_stacks(m->pid);
			kill(m->pid, SIGKILL);
			waitpid(m->pid, &st, 0);
			break;
		}
		it_sleep_ms(10);
	}
	forget_pid(m->pid);
	m->pid = 0;
	return st;
}

void it_cluster_done(struct it_cluster *c)
{
	for (int i = 0; i < c->n; i++)
		if (c->m[i].proxy)
			it_cut(c, i, true);
	for (int i = 0; i < c->n; i++) {
		bool ran = c->m[i].pid != 0;
		int st = it_kill(c, i, SIGTERM);
		IT_CHECK(!ran || (WIFEXITED(st) && WEXITSTATUS(st) == 0),
		    "member %d did not stop cleanly on SIGTERM (status %d)",
		    i, st);
		/* sanitizer builds: any report in a member's log fails */
		IT_CHECK(it_log_count(c, i, "Sanitizer") == 0 &&
		    it_log_count(c, i, "runtime error") == 0,
		    "sanitizer report in %s", c->m[i].log_path);
	}
	if (!getenv("IT_KEEP"))
		nftw(c->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	cleanup_dir[0] = 0;
	current = NULL;
}

/* ---- requests ----------------------------------------------------------- */

/* atomic: it_do may be called from several test threads at once */
static _Atomic uint64_t next_req_id = 1;

static int roundtrip(const char *url, const void *buf, size_t len,
    struct rb_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	nng_socket s;
	int rv = nng_req0_open(&s);
	if (rv)
		return resp->err = RB_ERR_UNAVAILABLE;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, IT_REQUEST_TIMEOUT_MS);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, IT_REQUEST_TIMEOUT_MS);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 0);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0);
	int err = RB_ERR_UNAVAILABLE;
	if (nng_dial(s, url, NULL, 0))
		goto out_close;
	if (nng_send(s, (void *)buf, len, 0))
		goto out_close;
	void *rbuf;
	size_t rlen;
	rv = nng_recv(s, &rbuf, &rlen, NNG_FLAG_ALLOC);
	if (rv) {
		err = rv == NNG_ETIMEDOUT ? RB_ERR_TIMEOUT : RB_ERR_UNAVAILABLE;
		goto out_close;
	}
	rv = rb_wire_decode_reply(rbuf, rlen, NULL, NULL, resp);
	nng_free(rbuf, rlen);
	err = rv ? rv : resp->err;
out_close:
	nng_close(s);
	resp->err = err;
	return err;
}

int it_do_raw(const char *url, const void *buf, size_t len,
    struct rb_resp *resp)
{
	return roundtrip(url, buf, len, resp);
}

int it_do(const char *url, const struct rb_op *op, struct rb_resp *resp)
{
	uint8_t *buf;
	size_t len;
	int rc = rb_wire_encode_request(next_req_id++, op, &buf, &len);
	if (rc) {
		memset(resp, 0, sizeof(*resp));
		return resp->err = rc;
	}
	rc = roundtrip(url, buf, len, resp);
	free(buf);
	return rc;
}

static int member_by_url(struct it_cluster *c, const char *url)
{
	for (int i = 0; url && i < c->n; i++)
		if (!strcmp(c->m[i].client_url, url))
			return i;
	return -1;
}

int it_do_any(struct it_cluster *c, const struct rb_op *op,
    struct rb_resp *resp, int64_t deadline_ms)
{
	int i = 0;
	for (int attempt = 0;; attempt++) {
		if (!c->m[i].pid)
			i = (i + 1) % c->n;
		int rc = it_do(c->m[i].client_url, op, resp);
		if (rc == RB_OK || (rc != RB_ERR_NOT_LEADER &&
		    rc != RB_ERR_NO_LEADER && rc != RB_ERR_UNAVAILABLE &&
		    rc != RB_ERR_TIMEOUT))
			return rc;
		if (it_now_ms() > deadline_ms)
			return rc;
		int hint = rc == RB_ERR_NOT_LEADER ?
		    member_by_url(c, resp->leader_url) : -1;
		rb_resp_free(resp);
		if (hint >= 0 && c->m[hint].pid && hint != i)
			i = hint;
		else {
			i = (i + 1) % c->n;
			it_sleep_ms(50);
		}
	}
}

int it_put(struct it_cluster *c, const char *key, const char *val,
    rb_rev *rev_out, int64_t deadline_ms)
{
	struct rb_op op = { .type = RB_OP_PUT };
	op.u.put.key = (const uint8_t *)key;
	op.u.put.key_len = strlen(key);
	op.u.put.value = (const uint8_t *)val;
	op.u.put.value_len = strlen(val);
	struct rb_resp resp;
	int rc = it_do_any(c, &op, &resp, deadline_ms);
	if (rev_out)
		*rev_out = resp.header.revision;
	rb_resp_free(&resp);
	return rc;
}

int it_wait_leader(struct it_cluster *c, int timeout_ms)
{
	int64_t end = it_now_ms() + timeout_ms;
	while (it_now_ms() < end) {
		for (int i = 0; i < c->n; i++) {
			if (!c->m[i].pid)
				continue;
			struct rb_op op = { .type = RB_OP_ENDPOINT_STATUS };
			struct rb_resp resp;
			int rc = it_do(c->m[i].client_url, &op, &resp);
			bool me = rc == 0 && resp.body.u.status.leader ==
			    resp.header.member_id && resp.header.member_id;
			rb_resp_free(&resp);
			if (me)
				return i;
		}
		it_sleep_ms(50);
	}
	return -1;
}

char *it_dump(const char *url, bool serializable, rb_rev *rev_out)
{
	static const uint8_t zero = 0;
	struct rb_op op = { .type = RB_OP_RANGE };
	op.u.range.key = &zero;
	op.u.range.key_len = 1;
	op.u.range.range_end = &zero;
	op.u.range.range_end_len = 1;
	op.u.range.serializable = serializable;
	struct rb_resp resp;
	if (it_do(url, &op, &resp)) {
		rb_resp_free(&resp);
		return NULL;
	}
	size_t cap = 64, len = 0;
	const struct rb_range_resp *r = &resp.body.u.range;
	for (size_t i = 0; i < r->kvs_n; i++)
		cap += r->kvs[i].key_len + r->kvs[i].value_len + 2;
	char *out = malloc(cap);
	for (size_t i = 0; out && i < r->kvs_n; i++) {
		memcpy(out + len, r->kvs[i].key, r->kvs[i].key_len);
		len += r->kvs[i].key_len;
		out[len++] = '=';
		if (r->kvs[i].value_len)   /* an empty value may be NULL */
			memcpy(out + len, r->kvs[i].value, r->kvs[i].value_len);
		len += r->kvs[i].value_len;
		out[len++] = '\n';
	}
	if (out)
		out[len] = 0;
	if (rev_out)
		*rev_out = resp.header.revision;
	rb_resp_free(&resp);
	return out;
}

void it_log_tail(struct it_cluster *c, int i, int lines)
{
	FILE *f = fopen(c->m[i].log_path, "r");
	if (!f)
		return;
	enum { KEEP = 64 };
	static char ring[KEEP][512];
	int n = 0;
	while (fgets(ring[n % KEEP], sizeof(ring[0]), f))
		n++;
	fclose(f);
	if (lines > KEEP)
		lines = KEEP;
	int from = n > lines ? n - lines : 0;
	fprintf(stderr, "---- last %d lines of %s ----\n", n - from,
	    c->m[i].log_path);
	for (int k = from; k < n; k++)
		fputs(ring[k % KEEP], stderr);
	fprintf(stderr, "---- end of %s ----\n", c->m[i].log_path);
}

int it_log_count(struct it_cluster *c, int i, const char *needle)
{
	FILE *f = fopen(c->m[i].log_path, "r");
	if (!f)
		return 0;
	char line[2048];
	int n = 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

void it_ok(const char *name)
{
	nng_fini();
	fprintf(stderr, "%s: ok\n", name);
}
