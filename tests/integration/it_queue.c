/*
 * it_queue.c - work queues end to end: real raftbus members, libraftbus's
 * rb_queue_* calls and the raftbusctl CLI (docs/queues.md).
 *
 *   work  producers (threads, dedup ids) and consumers (child processes of
 *         this program, killed -9 while they hold claims), the leader
 *         killed -9 mid-run and restarted. Every consumer logs each claim
 *         (message id, delivery count, receipt, send and receive times)
 *         and each ack; in the end every acknowledged push was acked, the
 *         queue is empty, no message was acked twice or claimed again
 *         after an ack, and no claim began before the previous claim of
 *         the same message could have expired.
 *   dlq   a poison message (always nacked) and a claim left to expire
 *         reach the dead-letter queue after max deliveries, exactly then;
 *         redrive moves them back; stale receipts are refused; extend
 *         keeps a claim.
 *   wait  a pop with a wait returns as soon as a push lands, costs the
 *         server no log entry while it waits, ends empty after its wait,
 *         spans several requests when the command timeout is short, and
 *         one push wakes one of several waiting pops.
 *   failover  a claim made under one leader is expired by the next one,
 *         which finds the queue by itself.
 *   cli   raftbusctl queue push/pop/ack/stats/dlq and its errors, and
 *         push/ack of several messages/receipts at once.
 *   batch producers pushing batches (rb_queue_push_batch) and consumers
 *         acking what they popped in one rb_queue_ack_batch, on 3 members
 *         with the leader killed -9 mid-run and restarted: every
 *         acknowledged push is acked exactly once, nothing is lost, and a
 *         batch's ids are one revision with indexes 0000.. in order.
 *
 * Usage: it_queue work|dlq|wait|failover|cli|batch (RAFTBUS_BIN,
 * RAFTBUSCTL_BIN set by meson); `it_queue consumer ...` is the child
 * consumer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it_util.h"
#include "raftbus.h"

/* work: sizes and times (the whole scenario stays well under 60 s) */
/* Longest time from a push to the return of the pop it woke, or from
 * the end of a pop's wait to its return: well under every wait used. */
#define WAKE_MS_MAX 2000
#define WQ_PRODUCERS 2
#define WQ_PER_PRODUCER 120
#define WQ_PUSH_PAUSE_MS 40
#define WQ_CONSUMERS 3
#define WQ_VISIBILITY_MS 1500
#define WQ_KILL_EVERY_MS 1300
#define WQ_DRAIN_MS 30000
#define WQ_CLAIMS_MAX 20000
#define WQ_LINE_BYTES 256
/* batch: 2 producers x 12 batches of 10 over ~4 s, 2 consumers acking
 * batches; the leader is killed at 1.5 s and back 1.5 s later */
#define BQ_PRODUCERS 2
#define BQ_BATCHES 12
#define BQ_BATCH_N 10
#define BQ_MSGS (BQ_PRODUCERS * BQ_BATCHES * BQ_BATCH_N)
#define BQ_PUSH_PAUSE_MS 300
#define BQ_CONSUMERS 2
#define BQ_VISIBILITY_MS 1000
/* a consumer "works" this long on a popped batch before acking it, so
 * that the kill finds claims held, and the election after it outlasts
 * some of them: their acks come back stale, mixed with good ones */
#define BQ_WORK_MS 300
#define BQ_KILL_AT_MS 1500
#define BQ_DOWN_MS 1500
#define BQ_DRAIN_MS 20000
/* raftbusctl's exit codes for bad arguments and bad flag values
 * (client/rbctl.h) */
#define RBCTL_EXIT_BAD_ARGS_IT 128
#define RBCTL_EXIT_BAD_FEATURE_IT 4

static int64_t mono_ms(void)
{
	return it_now_ms();
}

static void endpoints_of(struct it_cluster *c, const char **eps)
{
	for (int i = 0; i < c->n; i++)
		eps[i] = c->m[i].client_url;
}

static rb_client *client_for(struct it_cluster *c, int64_t command_timeout_ms)
{
	const char *eps[IT_MEMBERS_MAX];
	endpoints_of(c, eps);
	struct rb_config cfg = { .endpoints = eps, .endpoints_n = (size_t)c->n,
		.dial_timeout_ms = 1000, .command_timeout_ms = command_timeout_ms };
	rb_client *cl = NULL;
	IT_CHECK(rb_client_open(&cfg, &cl) == 0, "client open");
	return cl;
}

static void start_cluster(struct it_cluster *c, int n)
{
	it_cluster_init(c, n);
	it_start_all(c);
	IT_CHECK(it_wait_leader(c, 10000) >= 0, "no leader");
}

/* Retries a call while the cluster has no leader (elections). */
#define RETRY(call, resp, deadline) ({ \
	int rc_; \
	for (;;) { \
		rc_ = (call); \
		if (rc_ == 0 || mono_ms() > (deadline) || (rc_ != RB_ERR_NO_LEADER && \
		    rc_ != RB_ERR_NOT_LEADER && rc_ != RB_ERR_UNAVAILABLE && \
		    rc_ != RB_ERR_TIMEOUT)) \
			break; \
		rb_resp_free(resp); \
		it_sleep_ms(100); \
	} \
	rc_; })

static void stats_of(rb_client *cl, const char *queue, struct rb_queue_resp *out)
{
	struct rb_resp r = { 0 };
	int rc = RETRY(rb_queue_stats(cl, queue, &r), &r, mono_ms() + 10000);
	IT_CHECK(rc == 0, "stats %s: %s", queue, r.msg);
	*out = r.body.u.queue;
	out->msgs = NULL;
	out->msgs_n = 0;
	rb_resp_free(&r);
}

static uint64_t applied_index(const char *url)
{
	struct rb_op op = { .type = RB_OP_ENDPOINT_STATUS };
	struct rb_resp r;
	IT_CHECK(it_do(url, &op, &r) == 0, "status of %s", url);
	uint64_t a = r.body.u.status.raft_applied_index;
	rb_resp_free(&r);
	return a;
}

/* ==== work: the consumer child ========================================= */

static volatile sig_atomic_t consumer_stop;

static void on_term(int sig)
{
	(void)sig;
	consumer_stop = 1;
}

static void log_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void log_line(int fd, const char *fmt, ...)
{
	char buf[WQ_LINE_BYTES];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* one write per line on an O_APPEND file: lines never interleave */
	if (n > 0 && write(fd, buf, (size_t)n) != n)
		_exit(3);
}

/* argv: consumer QUEUE NAME LOGFILE ENDPOINT... Claims, "processes" (a
 * short sleep) and acks until SIGTERM; every claim and ack is logged. */
static int consumer_main(int argc, char **argv)
{
	const char *queue = argv[2], *name = argv[3];
	signal(SIGTERM, on_term);
	int fd = open(argv[4], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		return 2;
	struct rb_config cfg = { .endpoints = (const char *const *)argv + 5,
		.endpoints_n = (size_t)(argc - 5), .dial_timeout_ms = 1000,
		.command_timeout_ms = 3000 };
	rb_client *cl;
	if (rb_client_open(&cfg, &cl))
		return 2;
	unsigned seed = (unsigned)getpid();
	while (!consumer_stop) {
		struct rb_resp r = { 0 };
		int64_t t0 = mono_ms();
		int rc = rb_queue_pop(cl, queue, name, WQ_VISIBILITY_MS, 3, 800, &r);
		int64_t t1 = mono_ms();
		if (rc) {
			rb_resp_free(&r);
			usleep(50 * 1000);
			continue;
		}
		for (size_t i = 0; i < r.body.u.queue.msgs_n; i++) {
			const struct rb_queue_msg *m = &r.body.u.queue.msgs[i];
			log_line(fd, "C %s %.*s %" PRIu32 " %.*s %" PRId64 " %" PRId64 "\n",
				name, (int)m->id_len, m->id, m->delivery_count,
				(int)m->receipt_len, m->receipt, t0, t1);
		}
		for (size_t i = 0; i < r.body.u.queue.msgs_n; i++) {
			const struct rb_queue_msg *m = &r.body.u.queue.msgs[i];
			/* "processing": long enough that kills land in it */
			usleep((useconds_t)(20 + rand_r(&seed) % 40) * 1000);
			struct rb_resp a = { 0 };
			int64_t s0 = mono_ms();
			/* logged before sending: a kill between the ack's success
			 * and its result line must not look like a lost message */
			log_line(fd, "S %s %.*s\n", name, (int)m->id_len, m->id);
			int arc = rb_queue_ack(cl, queue, m->receipt, m->receipt_len, &a);
			log_line(fd, "A %s %.*s %" PRIu32 " %.*s %" PRId64 " %" PRId64 " %d\n",
				name, (int)m->id_len, m->id, m->delivery_count,
				(int)m->receipt_len, m->receipt, s0, mono_ms(), arc);
			rb_resp_free(&a);
		}
		rb_resp_free(&r);
	}
	rb_client_close(cl);
	close(fd);
	return 0;
}

/* ==== work: the harness ================================================= */

struct consumer {
	pid_t pid;
	char name[32];
};

static pid_t children[64];

static void kill_children(void)
{
	for (int i = 0; i < 64; i++)
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
}

static void child_forget(pid_t pid)
{
	for (int i = 0; i < 64; i++)
		if (children[i] == pid)
			children[i] = 0;
}

static pid_t spawn_consumer(struct it_cluster *c, const char *queue, const char *name,
	const char *log_path)
{
	const char *argv[16];
	int k = 0;
	argv[k++] = "/proc/self/exe";
	argv[k++] = "consumer";
	argv[k++] = queue;
	argv[k++] = name;
	argv[k++] = log_path;
	for (int i = 0; i < c->n; i++)
		argv[k++] = c->m[i].client_url;
	argv[k] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	IT_CHECK(pid >= 0, "fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 64; i++)
		if (children[i] == 0) {
			children[i] = pid;
			break;
		}
	return pid;
}

struct producer {
	struct it_cluster *c;
	int index;
	char ids[WQ_PER_PRODUCER][32];   /* message id of each acknowledged push */
	int failed;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	rb_client *cl = client_for(p->c, 3000);
	for (int i = 0; i < WQ_PER_PRODUCER; i++) {
		char payload[64];
		snprintf(payload, sizeof(payload), "m-%d-%d", p->index, i);
		struct rb_resp r = { 0 };
		/* a dedup id makes retrying after an unknown outcome safe */
		int rc = RETRY(rb_queue_push(cl, "jobs", payload, strlen(payload), 0,
			payload, &r), &r, mono_ms() + 15000);
		if (rc || r.body.u.queue.msgs_n != 1) {
			p->failed++;
		} else {
			const struct rb_queue_msg *m = &r.body.u.queue.msgs[0];
			snprintf(p->ids[i], sizeof(p->ids[i]), "%.*s", (int)m->id_len, m->id);
		}
		rb_resp_free(&r);
		it_sleep_ms(WQ_PUSH_PAUSE_MS);
	}
	rb_client_close(cl);
	return NULL;
}

struct claim {
	char id[32];
	uint32_t dc;
	int64_t t_send, t_recv;
	bool acked;              /* an ack of this claim succeeded */
};

struct wlog {
	struct claim *claims;
	size_t claims_n;
	/* acks per message id: ok, unknown outcome */
	char (*ack_ids)[32];
	int *ack_rc;
	size_t acks_n;
	/* acks sent (their outcome may never have been logged) */
	char (*sent_ids)[32];
	size_t sent_n;
};

static struct claim *claim_find(struct wlog *w, const char *id, uint32_t dc)
{
	for (size_t i = 0; i < w->claims_n; i++)
		if (w->claims[i].dc == dc && strcmp(w->claims[i].id, id) == 0)
			return &w->claims[i];
	return NULL;
}

static void read_log(const char *path, struct wlog *w)
{
	FILE *f = fopen(path, "r");
	IT_CHECK(f, "open %s", path);
	char line[WQ_LINE_BYTES], who[32], id[32], rcpt[64];
	while (fgets(line, sizeof(line), f)) {
		uint32_t dc;
		int64_t a, b;
		int rc;
		if (sscanf(line, "C %31s %31s %" SCNu32 " %63s %" SCNd64 " %" SCNd64, who, id,
		    &dc, rcpt, &a, &b) == 6) {
			IT_CHECK(w->claims_n < WQ_CLAIMS_MAX, "too many claims");
			IT_CHECK(claim_find(w, id, dc) == NULL,
				"message %s delivery %u claimed twice", id, dc);
			struct claim *cl = &w->claims[w->claims_n++];
			snprintf(cl->id, sizeof(cl->id), "%s", id);
			cl->dc = dc;
			cl->t_send = a;
			cl->t_recv = b;
		} else if (sscanf(line, "S %31s %31s", who, id) == 2) {
			IT_CHECK(w->sent_n < WQ_CLAIMS_MAX, "too many acks");
			snprintf(w->sent_ids[w->sent_n++], 32, "%s", id);
		} else if (sscanf(line, "A %31s %31s %" SCNu32 " %63s %" SCNd64 " %" SCNd64 " %d",
		    who, id, &dc, rcpt, &a, &b, &rc) == 7) {
			IT_CHECK(w->acks_n < WQ_CLAIMS_MAX, "too many acks");
			snprintf(w->ack_ids[w->acks_n], 32, "%s", id);
			w->ack_rc[w->acks_n++] = rc;
			struct claim *cl = claim_find(w, id, dc);
			if (rc == 0 && cl)
				cl->acked = true;
		}
	}
	fclose(f);
}

static int cmp_claim(const void *x, const void *y)
{
	const struct claim *a = x, *b = y;
	int c = strcmp(a->id, b->id);
	return c ? c : (a->dc > b->dc) - (a->dc < b->dc);
}

/* The claim log against the rules: per message, claims in delivery order;
 * a claim begins only after the previous one could have expired (its
 * request was sent before the leader stamped its deadline), and nothing
 * claims a message again after a successful ack of it. */
static void check_claims(struct wlog *w)
{
	qsort(w->claims, w->claims_n, sizeof(w->claims[0]), cmp_claim);
	for (size_t i = 1; i < w->claims_n; i++) {
		const struct claim *p = &w->claims[i - 1], *n = &w->claims[i];
		if (strcmp(p->id, n->id))
			continue;
		IT_CHECK(!p->acked, "message %s claimed again (delivery %u) after "
			"delivery %u was acked", n->id, n->dc, p->dc);
		/* the ms clocks round: 2 ms of slack */
		IT_CHECK(n->t_recv + 2 >= p->t_send + WQ_VISIBILITY_MS,
			"message %s held twice: delivery %u claimed at %" PRId64
			" before delivery %u (sent %" PRId64 ") could expire", n->id,
			n->dc, n->t_recv, p->dc, p->t_send);
	}
}

/* Every acknowledged push was acked, at most once successfully: an ack
 * that succeeded, or one of unknown outcome (a timeout, or the consumer
 * killed before it logged the result) while the queue ended empty with no
 * dead letter, so that some ack of it must have been applied. */
static void check_acks(struct wlog *w, struct producer *ps)
{
	for (int p = 0; p < WQ_PRODUCERS; p++)
		for (int i = 0; i < WQ_PER_PRODUCER; i++) {
			const char *id = ps[p].ids[i];
			int ok = 0, maybe = 0, sent = 0, results = 0;
			for (size_t k = 0; k < w->sent_n; k++)
				sent += strcmp(w->sent_ids[k], id) == 0;
			for (size_t k = 0; k < w->acks_n; k++) {
				if (strcmp(w->ack_ids[k], id))
					continue;
				results++;
				ok += w->ack_rc[k] == 0;
				maybe += w->ack_rc[k] == RB_ERR_TIMEOUT ||
					w->ack_rc[k] == RB_ERR_UNAVAILABLE;
			}
			/* acks whose consumer died before logging the result */
			maybe += sent - results;
			IT_CHECK(ok <= 1, "message %s acked %d times", id, ok);
			IT_CHECK(ok + maybe >= 1, "message %s (m-%d-%d) was never acked",
				id, p, i);
		}
}

/* Kills a random consumer with SIGKILL and starts a new one. */
static void churn_consumer(struct it_cluster *c, struct consumer *cs, int *gen,
	const char *log_path, unsigned *seed)
{
	int k = (int)(rand_r(seed) % WQ_CONSUMERS);
	kill(cs[k].pid, SIGKILL);
	waitpid(cs[k].pid, NULL, 0);
	child_forget(cs[k].pid);
	snprintf(cs[k].name, sizeof(cs[k].name), "c%d", (*gen)++);
	cs[k].pid = spawn_consumer(c, "jobs", cs[k].name, log_path);
}

static void wait_drained(rb_client *cl)
{
	int64_t end = mono_ms() + WQ_DRAIN_MS;
	struct rb_queue_resp st;
	for (;;) {
		stats_of(cl, "jobs", &st);
		if (st.ready + st.inflight + st.delayed == 0)
			break;
		IT_CHECK(mono_ms() < end, "queue not drained: ready %" PRIu64 " in flight %"
			PRIu64 " delayed %" PRIu64, st.ready, st.inflight, st.delayed);
		it_sleep_ms(200);
	}
	IT_CHECK(st.dead == 0, "%" PRIu64 " messages dead-lettered", st.dead);
}

static void run_churn(struct it_cluster *c, struct consumer *cs, const char *log_path,
	struct producer *ps, pthread_t *th)
{
	unsigned seed = 12345;
	int gen = WQ_CONSUMERS;
	int64_t start = mono_ms(), leader_back = 0;
	int dead_leader = -1;
	bool producing = true, joined[WQ_PRODUCERS] = { false };
	for (unsigned turn = 0; producing || mono_ms() - start < 6000; turn++) {
		it_sleep_ms(WQ_KILL_EVERY_MS / 2);
		if (dead_leader < 0 && !leader_back && mono_ms() - start > 2500) {
			dead_leader = it_wait_leader(c, 5000);
			IT_CHECK(dead_leader >= 0, "no leader to kill");
			it_kill(c, dead_leader, SIGKILL);
			leader_back = mono_ms() + 1500;
			fprintf(stderr, "work: killed leader m%d\n", dead_leader);
		}
		if (dead_leader >= 0 && mono_ms() >= leader_back) {
			it_start(c, dead_leader);
			dead_leader = -1;
		}
		if (turn % 2)
			churn_consumer(c, cs, &gen, log_path, &seed);
		producing = false;
		for (int p = 0; p < WQ_PRODUCERS; p++) {
			if (!joined[p])
				joined[p] = pthread_tryjoin_np(th[p], NULL) == 0;
			producing |= !joined[p];
		}
	}
	for (int p = 0; p < WQ_PRODUCERS; p++)
		IT_CHECK(ps[p].failed == 0, "producer %d: %d pushes failed", p,
			ps[p].failed);
	if (dead_leader >= 0)
		it_start(c, dead_leader);
}

static void test_work(void)
{
	struct it_cluster c;
	start_cluster(&c, 3);
	atexit(kill_children);
	char log_path[512];
	snprintf(log_path, sizeof(log_path), "%s/claims.log", c.dir);
	rb_client *cl = client_for(&c, 3000);
	struct rb_resp r = { 0 };
	/* killed consumers cost deliveries: keep dead-lettering out of this */
	IT_CHECK(RETRY(rb_queue_config(cl, "jobs", 50, &r), &r, mono_ms() + 10000) == 0,
		"config: %s", r.msg);
	rb_resp_free(&r);
	struct consumer cs[WQ_CONSUMERS];
	for (int i = 0; i < WQ_CONSUMERS; i++) {
		snprintf(cs[i].name, sizeof(cs[i].name), "c%d", i);
		cs[i].pid = spawn_consumer(&c, "jobs", cs[i].name, log_path);
	}
	static struct producer ps[WQ_PRODUCERS];
	pthread_t th[WQ_PRODUCERS];
	for (int p = 0; p < WQ_PRODUCERS; p++) {
		ps[p] = (struct producer){ .c = &c, .index = p };
		pthread_create(&th[p], NULL, producer_main, &ps[p]);
	}
	run_churn(&c, cs, log_path, ps, th);
	wait_drained(cl);
	for (int i = 0; i < WQ_CONSUMERS; i++) {
		kill(cs[i].pid, SIGTERM);
		int st;
		waitpid(cs[i].pid, &st, 0);
		child_forget(cs[i].pid);
		/* a consumer started just before (churn) may get the SIGTERM
		 * before it set its handler (slow under ASan): it had logged
		 * nothing then, so that death is as good as a clean exit */
		bool early_term = WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM;
		IT_CHECK(early_term || (WIFEXITED(st) && WEXITSTATUS(st) == 0),
			"consumer %s exit %d", cs[i].name, st);
	}
	struct wlog w = { .claims = calloc(WQ_CLAIMS_MAX, sizeof(struct claim)),
		.ack_ids = calloc(WQ_CLAIMS_MAX, 32),
		.ack_rc = calloc(WQ_CLAIMS_MAX, sizeof(int)),
		.sent_ids = calloc(WQ_CLAIMS_MAX, 32) };
	IT_CHECK(w.claims && w.ack_ids && w.ack_rc && w.sent_ids, "oom");
	read_log(log_path, &w);
	check_claims(&w);
	check_acks(&w, ps);
	size_t redelivered = 0;
	for (size_t i = 0; i < w.claims_n; i++)
		redelivered += w.claims[i].dc > 1;
	fprintf(stderr, "work: %d pushed, %zu claims (%zu redeliveries), %zu acks\n",
		WQ_PRODUCERS * WQ_PER_PRODUCER, w.claims_n, redelivered, w.acks_n);
	IT_CHECK(redelivered > 0, "the kills should have caused redeliveries");
	free(w.claims);
	free(w.ack_ids);
	free(w.ack_rc);
	free(w.sent_ids);
	rb_client_close(cl);
	it_cluster_done(&c);
}

/* ==== dlq =============================================================== */

static void pop_one(rb_client *cl, const char *queue, int64_t vis_ms,
	struct rb_resp *r, const char *want_payload, uint32_t want_dc)
{
	IT_CHECK(rb_queue_pop(cl, queue, "t", vis_ms, 1, 3000, r) == 0, "pop: %s", r->msg);
	IT_CHECK(r->body.u.queue.msgs_n == 1, "pop of %s found nothing", want_payload);
	const struct rb_queue_msg *m = &r->body.u.queue.msgs[0];
	IT_CHECK(m->payload_len == strlen(want_payload) &&
		memcmp(m->payload, want_payload, m->payload_len) == 0,
		"popped %.*s, want %s", (int)m->payload_len, m->payload, want_payload);
	IT_CHECK(m->delivery_count == want_dc, "%s: delivery %u, want %u", want_payload,
		m->delivery_count, want_dc);
}

static void dlq_after_redrive(rb_client *cl);

static void test_dlq(void)
{
	struct it_cluster c;
	start_cluster(&c, 1);
	rb_client *cl = client_for(&c, 5000);
	struct rb_resp r = { 0 };
	IT_CHECK(rb_queue_config(cl, "pq", 3, &r) == 0, "config: %s", r.msg);
	rb_resp_free(&r);
	IT_CHECK(rb_queue_push(cl, "pq", "poison", 6, 0, NULL, &r) == 0, "push");
	rb_resp_free(&r);
	/* always nacked: delivered exactly max_deliveries times */
	for (uint32_t d = 1; d <= 3; d++) {
		pop_one(cl, "pq", 10000, &r, "poison", d);
		const struct rb_queue_msg *m = &r.body.u.queue.msgs[0];
		struct rb_resp n = { 0 };
		IT_CHECK(rb_queue_nack(cl, "pq", m->receipt, m->receipt_len, 0, &n) == 0,
			"nack: %s", n.msg);
		rb_resp_free(&n);
		rb_resp_free(&r);
	}
	IT_CHECK(rb_queue_pop(cl, "pq", "t", 1000, 1, 0, &r) == 0 &&
		r.body.u.queue.msgs_n == 0, "a dead letter was delivered again");
	rb_resp_free(&r);
	/* a claim left to expire three times is dead-lettered by the leader */
	IT_CHECK(rb_queue_push(cl, "pq", "sleepy", 6, 0, NULL, &r) == 0, "push");
	rb_resp_free(&r);
	for (uint32_t d = 1; d <= 3; d++) {
		pop_one(cl, "pq", 300, &r, "sleepy", d);
		rb_resp_free(&r);
	}
	int64_t end = mono_ms() + 5000;
	struct rb_queue_resp st;
	do {
		it_sleep_ms(100);
		stats_of(cl, "pq", &st);
	} while (st.dead < 2 && mono_ms() < end);
	IT_CHECK(st.dead == 2 && st.ready == 0 && st.inflight == 0,
		"dead %" PRIu64 " ready %" PRIu64 " in flight %" PRIu64, st.dead,
		st.ready, st.inflight);
	IT_CHECK(rb_queue_dlq(cl, "pq", 0, &r) == 0 && r.body.u.queue.msgs_n == 2, "dlq");
	IT_CHECK(r.body.u.queue.msgs[0].payload_len == 6 &&
		memcmp(r.body.u.queue.msgs[0].payload, "poison", 6) == 0 &&
		r.body.u.queue.msgs[0].delivery_count == 3, "first dead letter");
	rb_resp_free(&r);
	IT_CHECK(rb_queue_redrive(cl, "pq", 0, &r) == 0 && r.body.u.queue.msgs_n == 2,
		"redrive");
	rb_resp_free(&r);
	stats_of(cl, "pq", &st);
	IT_CHECK(st.dead == 0 && st.ready == 2, "after redrive: dead %" PRIu64
		" ready %" PRIu64, st.dead, st.ready);
	dlq_after_redrive(cl);
	rb_client_close(cl);
	it_cluster_done(&c);
}

/* Redriven messages start their deliveries over; extend keeps a claim;
 * a stale receipt is refused with a clear message. */
static void dlq_after_redrive(rb_client *cl)
{
	struct rb_resp r = { 0 };
	pop_one(cl, "pq", 1500, &r, "poison", 1);
	struct rb_queue_msg m = r.body.u.queue.msgs[0];
	char receipt[64];
	snprintf(receipt, sizeof(receipt), "%.*s", (int)m.receipt_len, m.receipt);
	struct rb_resp e = { 0 };
	IT_CHECK(rb_queue_extend(cl, "pq", m.receipt, m.receipt_len, 6000, &e) == 0,
		"extend: %s", e.msg);
	rb_resp_free(&e);
	it_sleep_ms(2000);   /* past the first visibility, inside the extended one */
	pop_one(cl, "pq", 300, &e, "sleepy", 1);
	rb_resp_free(&e);
	IT_CHECK(rb_queue_ack(cl, "pq", (const uint8_t *)receipt, strlen(receipt), &e) == 0,
		"ack of an extended claim: %s", e.msg);
	rb_resp_free(&e);
	IT_CHECK(rb_queue_ack(cl, "pq", (const uint8_t *)receipt, strlen(receipt), &e) ==
		RB_ERR_KEY_NOT_FOUND, "second ack: %d", e.err);
	IT_CHECK(strstr(e.msg, "receipt"), "message: %s", e.msg);
	rb_resp_free(&e);
	rb_resp_free(&r);
}

/* ==== wait ============================================================== */

struct waiter {
	rb_client *cl;
	int64_t wait_ms;
	int64_t done_ms;
	size_t got;
	int rc;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct rb_resp r = { 0 };
	w->rc = rb_queue_pop(w->cl, "w", "waiter", 5000, 1, w->wait_ms, &r);
	w->done_ms = mono_ms();
	w->got = r.body.u.queue.msgs_n;
	if (w->got) {
		/* done with it: it must not come back in a later step */
		struct rb_resp a = { 0 };
		const struct rb_queue_msg *m = &r.body.u.queue.msgs[0];
		if (rb_queue_ack(w->cl, "w", m->receipt, m->receipt_len, &a))
			w->rc = a.err;
		rb_resp_free(&a);
	}
	rb_resp_free(&r);
	return NULL;
}

static void push_w(rb_client *cl)
{
	struct rb_resp r = { 0 };
	IT_CHECK(rb_queue_push(cl, "w", "x", 1, 0, NULL, &r) == 0, "push: %s", r.msg);
	rb_resp_free(&r);
}

static void wait_herd(struct it_cluster *c, rb_client *cl);

static void test_wait(void)
{
	struct it_cluster c;
	start_cluster(&c, 1);
	const char *url = c.m[0].client_url;
	rb_client *cl = client_for(&c, 10000);
	struct rb_queue_resp st;
	stats_of(cl, "w", &st);   /* the cluster answers queue ops */
	/* one long request: parked on the server, no entry while it waits */
	struct waiter w = { .cl = client_for(&c, 10000), .wait_ms = 8000 };
	pthread_t t;
	pthread_create(&t, NULL, waiter_main, &w);
	it_sleep_ms(300);
	uint64_t a1 = applied_index(url);
	it_sleep_ms(1500);
	uint64_t a2 = applied_index(url);
	IT_CHECK(a1 == a2, "the log grew from %" PRIu64 " to %" PRIu64 " while a pop waited",
		a1, a2);
	int64_t pushed = mono_ms();
	push_w(cl);
	pthread_join(t, NULL);
	IT_CHECK(w.rc == 0 && w.got == 1, "waiting pop: rc %d, %zu messages", w.rc, w.got);
	int64_t lat = w.done_ms - pushed;
	fprintf(stderr, "wait: pop returned %" PRId64 " ms after the push (wait 8000 ms)\n",
		lat);
	/* far below the 8 s wait: the push woke the pop (2 commits here; a
	 * loaded machine can take a second or more over them) */
	IT_CHECK(lat < WAKE_MS_MAX, "pop returned %" PRId64 " ms after the push",
		lat);
	/* nothing comes: empty after the wait */
	int64_t t0 = mono_ms();
	struct waiter e = { .cl = w.cl, .wait_ms = 700 };
	waiter_main(&e);
	IT_CHECK(e.rc == 0 && e.got == 0, "empty wait: rc %d got %zu", e.rc, e.got);
	IT_CHECK(e.done_ms - t0 >= 650 && e.done_ms - t0 < 700 + WAKE_MS_MAX,
		"empty wait took %" PRId64, e.done_ms - t0);
	rb_client_close(w.cl);
	/* a short command timeout: the wait spans several requests */
	struct waiter s = { .cl = client_for(&c, 1500), .wait_ms = 4000 };
	t0 = mono_ms();
	waiter_main(&s);
	IT_CHECK(s.rc == 0 && s.got == 0 && s.done_ms - t0 >= 3900 &&
		s.done_ms - t0 < 4000 + WAKE_MS_MAX, "sliced empty wait: rc %d, %" PRId64 " ms", s.rc,
		s.done_ms - t0);
	s.wait_ms = 6000;
	pthread_create(&t, NULL, waiter_main, &s);
	it_sleep_ms(2500);
	pushed = mono_ms();
	push_w(cl);
	pthread_join(t, NULL);
	IT_CHECK(s.rc == 0 && s.got == 1 && s.done_ms - pushed < WAKE_MS_MAX,
		"sliced wait: rc %d got %zu after %" PRId64 " ms", s.rc, s.got,
		s.done_ms - pushed);
	rb_client_close(s.cl);
	wait_herd(&c, cl);
	rb_client_close(cl);
	it_cluster_done(&c);
}

/* Three waiting pops, one push: one claim proposed, one message. */
static void wait_herd(struct it_cluster *c, rb_client *cl)
{
	const char *url = c->m[0].client_url;
	struct waiter ws[3];
	pthread_t ts[3];
	for (int i = 0; i < 3; i++) {
		ws[i] = (struct waiter){ .cl = client_for(c, 10000), .wait_ms = 1500 };
		pthread_create(&ts[i], NULL, waiter_main, &ws[i]);
	}
	it_sleep_ms(400);
	uint64_t a1 = applied_index(url);
	push_w(cl);
	size_t got = 0;
	for (int i = 0; i < 3; i++) {
		pthread_join(ts[i], NULL);
		IT_CHECK(ws[i].rc == 0, "waiter %d: %d", i, ws[i].rc);
		got += ws[i].got;
		rb_client_close(ws[i].cl);
	}
	uint64_t a2 = applied_index(url);
	IT_CHECK(got == 1, "%zu messages for one push", got);
	/* push, one pop, its ack: not a pop per waiter */
	IT_CHECK(a2 - a1 <= 3, "one push cost %" PRIu64 " entries", a2 - a1);
}

/* ==== failover ========================================================== */

/* A claim made under one leader expires under the next one, although
 * nothing touches its queue after the change (stats are reads): the new
 * leader finds the queue by scanning the queue keys. */
static void test_failover(void)
{
	struct it_cluster c;
	start_cluster(&c, 3);
	rb_client *cl = client_for(&c, 3000);
	struct rb_resp r = { 0 };
	IT_CHECK(RETRY(rb_queue_push(cl, "fq", "m", 1, 0, "only", &r), &r,
		mono_ms() + 10000) == 0, "push: %s", r.msg);
	rb_resp_free(&r);
	IT_CHECK(rb_queue_pop(cl, "fq", "t", 1500, 1, 0, &r) == 0 &&
		r.body.u.queue.msgs_n == 1, "pop: %s", r.msg);
	rb_resp_free(&r);
	int old = it_wait_leader(&c, 5000);
	IT_CHECK(old >= 0, "no leader");
	it_kill(&c, old, SIGKILL);
	int64_t t0 = mono_ms();
	struct rb_queue_resp st;
	do {
		it_sleep_ms(100);
		stats_of(cl, "fq", &st);
	} while (st.ready == 0 && mono_ms() - t0 < 10000);
	IT_CHECK(st.ready == 1 && st.inflight == 0, "claim not expired by the new leader: "
		"ready %" PRIu64 " in flight %" PRIu64, st.ready, st.inflight);
	fprintf(stderr, "failover: claim requeued %" PRId64 " ms after the leader died\n",
		mono_ms() - t0);
	IT_CHECK(rb_queue_pop(cl, "fq", "t", 1500, 1, 0, &r) == 0 &&
		r.body.u.queue.msgs_n == 1 && r.body.u.queue.msgs[0].delivery_count == 2,
		"redelivery after failover");
	rb_resp_free(&r);
	rb_client_close(cl);
	it_cluster_done(&c);
}

/* ==== cli =============================================================== */

/* Runs raftbusctl with args (a shell word list) and input; returns the exit
 * code and the output (stdout then stderr) in out. */
/* ==== batch ============================================================= */

struct bq_producer {
	struct it_cluster *c;
	int index;
	char ids[BQ_BATCHES * BQ_BATCH_N][32];  /* of each acknowledged push */
	int failed;
};

/* Pushes BQ_BATCHES batches; every message has a dedup id, so a batch
 * whose outcome is unknown (the leader was killed under it) is sent again
 * by the test (libraftbus never re-sends a batch): the messages it had
 * pushed come back as duplicates with their first ids. */
static void *bq_producer_main(void *arg)
{
	struct bq_producer *p = arg;
	rb_client *cl = client_for(p->c, 3000);
	for (int b = 0; b < BQ_BATCHES; b++) {
		char pay[BQ_BATCH_N][32], dd[BQ_BATCH_N][32];
		struct rb_queue_push_item it[BQ_BATCH_N];
		for (int i = 0; i < BQ_BATCH_N; i++) {
			snprintf(pay[i], sizeof(pay[i]), "b-%d-%d-%d", p->index, b, i);
			snprintf(dd[i], sizeof(dd[i]), "dd-%d-%d-%d", p->index, b, i);
			it[i] = (struct rb_queue_push_item){ .payload = (const uint8_t *)pay[i],
				.payload_len = strlen(pay[i]), .dedup_id = (const uint8_t *)dd[i],
				.dedup_id_len = strlen(dd[i]) };
		}
		struct rb_resp r = { 0 };
		int rc = RETRY(rb_queue_push_batch(cl, "bq", it, BQ_BATCH_N, &r), &r,
			mono_ms() + 15000);
		if (rc || r.body.u.queue.msgs_n != BQ_BATCH_N) {
			p->failed++;
		} else {
			for (int i = 0; i < BQ_BATCH_N; i++) {
				const struct rb_queue_msg *m = &r.body.u.queue.msgs[i];
				char suffix[8];
				snprintf(suffix, sizeof(suffix), "-%04d", i);
				IT_CHECK(m->id_len == 25 && memcmp(m->id + 20, suffix, 5) == 0,
					"item %d of a batch got id %.*s", i, (int)m->id_len, m->id);
				IT_CHECK(memcmp(m->id, r.body.u.queue.msgs[0].id, 20) == 0,
					"a batch's ids share its revision");
				snprintf(p->ids[b * BQ_BATCH_N + i], 32, "%.*s", (int)m->id_len, m->id);
			}
		}
		rb_resp_free(&r);
		it_sleep_ms(BQ_PUSH_PAUSE_MS);
	}
	rb_client_close(cl);
	return NULL;
}

/* What the consumers saw, shared under a lock: per message id, the
 * successful acks and the acks of unknown outcome. */
struct bq_seen {
	pthread_mutex_t mu;
	char (*ids)[32];
	unsigned char *ok, *maybe;
	size_t n;
	bool stop;
};

static size_t bq_slot(struct bq_seen *s, const uint8_t *id, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->ids[i]) == len && memcmp(s->ids[i], id, len) == 0)
			return i;
	IT_CHECK(s->n < 4 * BQ_MSGS, "more message ids than pushed");
	snprintf(s->ids[s->n], 32, "%.*s", (int)len, id);
	return s->n++;
}

struct bq_consumer {
	struct it_cluster *c;
	struct bq_seen *seen;
	char name[16];
	size_t acked, stale, unknown;
};

static void bq_record(struct bq_consumer *k, const struct rb_queue_resp *popped,
	int rc, const struct rb_resp *a)
{
	struct bq_seen *s = k->seen;
	bool unknown = rc == RB_ERR_TIMEOUT || rc == RB_ERR_UNAVAILABLE;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < popped->msgs_n; i++) {
		const struct rb_queue_msg *m = &popped->msgs[i];
		size_t slot = bq_slot(s, m->id, m->id_len);
		if (rc == 0 && a->body.u.queue.results[i] == 0) {
			s->ok[slot]++;
			k->acked++;
		} else if (rc == 0) {
			IT_CHECK(a->body.u.queue.results[i] == RB_ERR_KEY_NOT_FOUND,
				"ack result %d", a->body.u.queue.results[i]);
			k->stale++;
		} else if (unknown) {
			s->maybe[slot]++;
			k->unknown++;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

/* Pops up to BQ_BATCH_N, acks them all in one request. */
static void *bq_consumer_main(void *arg)
{
	struct bq_consumer *k = arg;
	rb_client *cl = client_for(k->c, 3000);
	for (;;) {
		pthread_mutex_lock(&k->seen->mu);
		bool stop = k->seen->stop;
		pthread_mutex_unlock(&k->seen->mu);
		if (stop)
			break;
		struct rb_resp r = { 0 };
		int rc = rb_queue_pop(cl, "bq", k->name, BQ_VISIBILITY_MS, BQ_BATCH_N, 500, &r);
		const struct rb_queue_resp *q = &r.body.u.queue;
		if (rc || q->msgs_n == 0) {
			rb_resp_free(&r);
			if (rc)
				it_sleep_ms(50);
			continue;
		}
		it_sleep_ms(BQ_WORK_MS);
		struct rb_queue_receipt rs[BQ_BATCH_N];
		for (size_t i = 0; i < q->msgs_n; i++)
			rs[i] = (struct rb_queue_receipt){ q->msgs[i].receipt,
				q->msgs[i].receipt_len };
		struct rb_resp a = { 0 };
		int arc = rb_queue_ack_batch(cl, "bq", rs, q->msgs_n, &a);
		IT_CHECK(arc != 0 || a.body.u.queue.results_n == q->msgs_n,
			"%zu results for %zu receipts", a.body.u.queue.results_n, q->msgs_n);
		bq_record(k, q, arc, &a);
		rb_resp_free(&a);
		rb_resp_free(&r);
	}
	rb_client_close(cl);
	return NULL;
}

/* Kills the leader at BQ_KILL_AT_MS and restarts it BQ_DOWN_MS later,
 * while the producers run. */
static void bq_kill_leader(struct it_cluster *c, pthread_t *th)
{
	int64_t start = mono_ms();
	int dead = -1;
	bool restarted = false;
	while (!restarted || mono_ms() - start < BQ_KILL_AT_MS + BQ_DOWN_MS) {
		it_sleep_ms(100);
		if (dead < 0 && !restarted && mono_ms() - start >= BQ_KILL_AT_MS) {
			dead = it_wait_leader(c, 5000);
			IT_CHECK(dead >= 0, "no leader to kill");
			it_kill(c, dead, SIGKILL);
			fprintf(stderr, "batch: killed leader m%d\n", dead);
		}
		if (dead >= 0 && mono_ms() - start >= BQ_KILL_AT_MS + BQ_DOWN_MS) {
			it_start(c, dead);
			dead = -1;
			restarted = true;
		}
	}
	for (int p = 0; p < BQ_PRODUCERS; p++)
		pthread_join(th[p], NULL);
}

static void bq_check(const struct bq_seen *s, const struct bq_producer *ps)
{
	size_t oks = 0;
	for (size_t i = 0; i < s->n; i++) {
		IT_CHECK(s->ok[i] <= 1, "message %s acked %u times", s->ids[i], s->ok[i]);
		oks += s->ok[i];
	}
	for (int p = 0; p < BQ_PRODUCERS; p++) {
		IT_CHECK(ps[p].failed == 0, "producer %d: %d batches failed", p, ps[p].failed);
		for (int i = 0; i < BQ_BATCHES * BQ_BATCH_N; i++) {
			const char *id = ps[p].ids[i];
			size_t k = 0;
			while (k < s->n && strcmp(s->ids[k], id))
				k++;
			IT_CHECK(k < s->n, "message %s (producer %d, #%d) never popped", id, p, i);
			IT_CHECK(s->ok[k] + s->maybe[k] >= 1, "message %s never acked", id);
		}
	}
	fprintf(stderr, "batch: %d pushed, %zu ids popped, %zu acked by a known "
		"success\n", BQ_MSGS, s->n, oks);
}

static void test_batch(void)
{
	struct it_cluster c;
	start_cluster(&c, 3);
	rb_client *cl = client_for(&c, 3000);
	struct rb_resp r = { 0 };
	/* redeliveries after the kill must not dead-letter anything */
	IT_CHECK(RETRY(rb_queue_config(cl, "bq", 50, &r), &r, mono_ms() + 10000) == 0,
		"config: %s", r.msg);
	rb_resp_free(&r);
	static struct bq_seen seen;
	seen = (struct bq_seen){ .ids = calloc(4 * BQ_MSGS, 32),
		.ok = calloc(4 * BQ_MSGS, 1), .maybe = calloc(4 * BQ_MSGS, 1) };
	IT_CHECK(seen.ids && seen.ok && seen.maybe, "oom");
	pthread_mutex_init(&seen.mu, NULL);
	static struct bq_consumer ks[BQ_CONSUMERS];
	pthread_t kt[BQ_CONSUMERS], pt[BQ_PRODUCERS];
	for (int i = 0; i < BQ_CONSUMERS; i++) {
		ks[i] = (struct bq_consumer){ .c = &c, .seen = &seen };
		snprintf(ks[i].name, sizeof(ks[i].name), "k%d", i);
		pthread_create(&kt[i], NULL, bq_consumer_main, &ks[i]);
	}
	static struct bq_producer ps[BQ_PRODUCERS];
	for (int p = 0; p < BQ_PRODUCERS; p++) {
		ps[p] = (struct bq_producer){ .c = &c, .index = p };
		pthread_create(&pt[p], NULL, bq_producer_main, &ps[p]);
	}
	bq_kill_leader(&c, pt);
	/* drained: nothing ready, claimed or delayed, nothing dead */
	int64_t end = mono_ms() + BQ_DRAIN_MS;
	struct rb_queue_resp st;
	for (;;) {
		stats_of(cl, "bq", &st);
		if (st.ready + st.inflight + st.delayed == 0)
			break;
		IT_CHECK(mono_ms() < end, "queue not drained: ready %" PRIu64 " in flight %"
			PRIu64, st.ready, st.inflight);
		it_sleep_ms(200);
	}
	IT_CHECK(st.dead == 0, "%" PRIu64 " messages dead-lettered", st.dead);
	pthread_mutex_lock(&seen.mu);
	seen.stop = true;
	pthread_mutex_unlock(&seen.mu);
	for (int i = 0; i < BQ_CONSUMERS; i++)
		pthread_join(kt[i], NULL);
	bq_check(&seen, ps);
	for (int i = 0; i < BQ_CONSUMERS; i++)
		fprintf(stderr, "batch: consumer %s: %zu acked, %zu stale, %zu unknown\n",
			ks[i].name, ks[i].acked, ks[i].stale, ks[i].unknown);
	rb_client_close(cl);
	free(seen.ids);
	free(seen.ok);
	free(seen.maybe);
	it_cluster_done(&c);
}

static int ctl(struct it_cluster *c, const char *args, const char *input, char *out,
	size_t outlen)
{
	const char *bin = getenv("RAFTBUSCTL_BIN");
	IT_CHECK(bin, "RAFTBUSCTL_BIN not set");
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "%s%s%s | %s --endpoints %s %s 2>&1",
		input ? "printf '%s' '" : "true", input ? input : "", input ? "'" : "",
		bin, c->m[0].client_url, args);
	FILE *p = popen(cmd, "r");
	IT_CHECK(p, "popen");
	size_t n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* push of several payloads (one batch: one id per line, one revision)
 * and ack of several receipts (a line per receipt, exit 1 if any failed) */
static void cli_batch(struct it_cluster *c)
{
	char out[4096], ids[3][64], args[512];
	IT_CHECK(ctl(c, "queue push cb one two three", NULL, out, sizeof(out)) == 0,
		"%s", out);
	IT_CHECK(sscanf(out, "%63s %63s %63s", ids[0], ids[1], ids[2]) == 3, "push: %s", out);
	for (int i = 0; i < 3; i++) {
		char suffix[8];
		snprintf(suffix, sizeof(suffix), "-%04d", i);
		IT_CHECK(strlen(ids[i]) == 25 && strcmp(ids[i] + 20, suffix) == 0 &&
			memcmp(ids[i], ids[0], 20) == 0, "batch ids: %s", out);
	}
	IT_CHECK(ctl(c, "queue push cb a b --id x", NULL, out, sizeof(out)) ==
		RBCTL_EXIT_BAD_ARGS_IT && strstr(out, "--id"), "--id with two: %s", out);
	IT_CHECK(ctl(c, "queue pop cb --max 2 -w json", NULL, out, sizeof(out)) == 0 &&
		strstr(out, "\"payload\":\"one\"") && strstr(out, "\"payload\":\"two\""),
		"pop: %s", out);
	snprintf(args, sizeof(args), "queue ack cb %s/1 %s/1 %s/1", ids[0], ids[2], ids[1]);
	IT_CHECK(ctl(c, args, NULL, out, sizeof(out)) == 1, "ack with a stale one: %s", out);
	char want[256];
	snprintf(want, sizeof(want), "%s/1 OK\n", ids[0]);
	IT_CHECK(strstr(out, want), "first receipt acked: %s", out);
	snprintf(want, sizeof(want), "%s/1 OK\n", ids[1]);
	IT_CHECK(strstr(out, want), "third receipt acked: %s", out);
	snprintf(want, sizeof(want), "Error: %s/1: raftbus: queue receipt is unknown", ids[2]);
	IT_CHECK(strstr(out, want), "second receipt (never popped) refused: %s", out);
	IT_CHECK(ctl(c, "queue stats cb -w json", NULL, out, sizeof(out)) == 0 &&
		strstr(out, "\"ready\":1,\"inflight\":0"), "stats: %s", out);
}

static void test_cli(void)
{
	struct it_cluster c;
	start_cluster(&c, 1);
	char out[4096], id[64], receipt[128];
	IT_CHECK(ctl(&c, "queue push cq hello", NULL, out, sizeof(out)) == 0, "%s", out);
	IT_CHECK(sscanf(out, "%63s", id) == 1 && strlen(id) == 25, "push printed %s", out);
	IT_CHECK(ctl(&c, "queue push cq", "from stdin", out, sizeof(out)) == 0, "%s", out);
	IT_CHECK(ctl(&c, "queue pop cq --visibility 30s --consumer me", NULL, out,
		sizeof(out)) == 0, "%s", out);
	char want[128];
	snprintf(want, sizeof(want), "id=%s deliveries=1 receipt=%s/1\nhello\n", id, id);
	IT_CHECK(strcmp(out, want) == 0, "pop printed [%s], want [%s]", out, want);
	snprintf(receipt, sizeof(receipt), "%s/1", id);
	char args[256];
	snprintf(args, sizeof(args), "queue ack cq %s", receipt);
	IT_CHECK(ctl(&c, args, NULL, out, sizeof(out)) == 0 && strcmp(out, "OK\n") == 0,
		"ack: %s", out);
	IT_CHECK(ctl(&c, args, NULL, out, sizeof(out)) == 1 && strstr(out, "receipt"),
		"stale ack: %s", out);
	IT_CHECK(ctl(&c, "queue pop cq -w json", NULL, out, sizeof(out)) == 0 &&
		strstr(out, "\"payload\":\"from stdin\"") && strstr(out, "\"delivery_count\":1"),
		"json pop: %s", out);
	IT_CHECK(ctl(&c, "queue stats cq -w json", NULL, out, sizeof(out)) == 0 &&
		strstr(out, "\"ready\":0,\"inflight\":1"), "stats: %s", out);
	IT_CHECK(ctl(&c, "queue stats cq", NULL, out, sizeof(out)) == 0 &&
		strstr(out, "in flight: 1\n"), "stats: %s", out);
	IT_CHECK(ctl(&c, "queue config cq --max-deliveries 2", NULL, out, sizeof(out)) == 0,
		"config: %s", out);
	IT_CHECK(ctl(&c, "queue dlq cq", NULL, out, sizeof(out)) == 0 && out[0] == '\0',
		"empty dlq printed %s", out);
	IT_CHECK(ctl(&c, "queue frob cq", NULL, out, sizeof(out)) == RBCTL_EXIT_BAD_ARGS_IT,
		"unknown sub-command: %s", out);
	IT_CHECK(ctl(&c, "queue pop cq --max 0", NULL, out, sizeof(out)) ==
		RBCTL_EXIT_BAD_FEATURE_IT, "--max 0: %s", out);
	IT_CHECK(ctl(&c, "queue pop cq --delay 1s", NULL, out, sizeof(out)) ==
		RBCTL_EXIT_BAD_ARGS_IT && strstr(out, "--delay"), "pop --delay: %s", out);
	IT_CHECK(ctl(&c, "queue pop cq --wait soon", NULL, out, sizeof(out)) ==
		RBCTL_EXIT_BAD_FEATURE_IT, "bad duration: %s", out);
	IT_CHECK(ctl(&c, "queue config cq", NULL, out, sizeof(out)) ==
		RBCTL_EXIT_BAD_ARGS_IT, "config without a value: %s", out);
	IT_CHECK(ctl(&c, "queue pop bad/name", NULL, out, sizeof(out)) == 1 &&
		strstr(out, "queue name"), "bad name: %s", out);
	cli_batch(&c);
	it_cluster_done(&c);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IONBF, 0);
	if (argc >= 6 && !strcmp(argv[1], "consumer"))
		return consumer_main(argc, argv);
	if (argc != 2) {
		fprintf(stderr, "usage: it_queue work|dlq|wait|failover|cli|batch\n");
		return 2;
	}
	const char *t = argv[1];
	if (!strcmp(t, "work"))
		test_work();
	else if (!strcmp(t, "dlq"))
		test_dlq();
	else if (!strcmp(t, "wait"))
		test_wait();
	else if (!strcmp(t, "cli"))
		test_cli();
	else if (!strcmp(t, "failover"))
		test_failover();
	else if (!strcmp(t, "batch"))
		test_batch();
	else
		return 2;
	it_ok(t);
	return 0;
}
