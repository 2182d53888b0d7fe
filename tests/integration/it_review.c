/*
 * it_review.c - review findings on the watch / pub/sub / queue server code,
 * each on one real member started for the scenario:
 *
 *   expirestorm  a queue whose stats say something is due that nothing
 *                in its index matches (its keys overwritten by plain
 *                writes) must not make the leader propose EXPIRE again
 *                and again: the log would grow by hundreds of entries a
 *                second with nothing to do.
 *   retention    retention of a topic of the longest allowed name
 *                (RB_TOPIC_BYTES_MAX) deletes old messages: the delete's
 *                range end must fit the key limit.
 *   badqueue     bad queue input gets a clear error and the member stays
 *                up; a raw pop with max_n 0 / visibility 0 takes the
 *                documented defaults (1 message, 30 s).
 *   watchbytes   a watch poll of many watches is bounded in bytes as a
 *                whole (about BK_WATCH_REPLY_BYTES_MAX = 4 MiB, plus one
 *                revision), not per watch, and polling on from the
 *                positions returned delivers every event once.
 *   watchnear    a poll of many caught-up watches over a prefix of many
 *                keys costs the events since their positions, not one
 *                seek per key of the prefix per watch (20 000 keys x 256
 *                watches took seconds of a reader per poll), and still
 *                delivers exactly the events of its range.
 *
 *   watchconn    one connection with more long polls than
 *                BK_WATCH_POLLS_PER_CONN_MAX (256) parked at once: the
 *                ones beyond are refused "too many requests", another
 *                connection's poll is still taken, and every parked one
 *                is answered by the next write.
 *
 * Usage: it_review expirestorm|retention|badqueue|watchbytes|watchnear|
 * watchconn (RAFTBUS_BIN set).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "it_util.h"
#include "rb_wire.h"

#define QN "jobs"

static void start_one(struct it_cluster *c)
{
	it_cluster_init(c, 1);
	it_start_all(c);
	IT_CHECK(it_wait_leader(c, 10000) == 0, "no leader");
}

static int put_raw(const char *url, const uint8_t *k, size_t kl,
    const uint8_t *v, size_t vl)
{
	struct rb_op op = { .type = RB_OP_PUT };
	op.u.put = (struct rb_put){ .key = k, .key_len = kl, .value = v,
	    .value_len = vl };
	struct rb_resp resp;
	int rc = it_do(url, &op, &resp);
	rb_resp_free(&resp);
	return rc;
}

static uint64_t raft_index(const char *url)
{
	struct rb_op op = { .type = RB_OP_ENDPOINT_STATUS };
	struct rb_resp resp;
	int rc = it_do(url, &op, &resp);
	IT_CHECK(rc == 0, "status: %d", rc);
	uint64_t ix = resp.body.u.status.raft_index;
	rb_resp_free(&resp);
	return ix;
}

static int queue_op(const char *url, uint8_t type, struct rb_queue_req q,
    struct rb_resp *resp)
{
	struct rb_op op = { .type = type };
	op.u.queue = q;
	return it_do(url, &op, resp);
}

static struct rb_queue_req qreq(const char *name)
{
	return (struct rb_queue_req){ .queue = (const uint8_t *)name,
	    .queue_len = strlen(name) };
}

static void test_expire_storm(void)
{
	struct it_cluster c;
	start_one(&c);
	const char *url = c.m[0].client_url;
	/* stats: version 1; ready..dead 0; seq 0/0; f_lo = 1 (something in
	 * flight due at time 1, which no f/ key backs); d_lo, x_lo none */
	uint8_t v[1 + 9 * 8] = { 1 };
	uint64_t f[9] = { 0, 0, 0, 0, 0, 0, 1, INT64_MAX, INT64_MAX };
	for (size_t i = 0; i < 9; i++)
		for (size_t b = 0; b < 8; b++)
			v[1 + 8 * i + b] = (uint8_t)(f[i] >> (56 - 8 * b));
	const char *k = "_rb/queue/" QN "/stats";
	IT_CHECK(put_raw(url, (const uint8_t *)k, strlen(k), v, sizeof(v)) == 0,
	    "plant stats");
	struct rb_queue_req q = qreq(QN);
	q.payload = (const uint8_t *)"x";
	q.payload_len = 1;
	struct rb_resp resp;
	int rc = queue_op(url, RB_OP_QUEUE_PUSH, q, &resp);
	rb_resp_free(&resp);
	IT_CHECK(rc == 0, "push: %d", rc);
	it_sleep_ms(500);   /* the leader re-reads the queue's due time */
	uint64_t a = raft_index(url);
	it_sleep_ms(2000);
	uint64_t b = raft_index(url);
	/* idle: a few entries at most (one EXPIRE try per retry interval) */
	IT_CHECK(b - a <= 10, "%llu log entries in 2 s of idle",
	    (unsigned long long)(b - a));
	/* the queue still works */
	q = qreq(QN);
	q.visibility_ms = 1000;
	q.max_n = 1;
	rc = queue_op(url, RB_OP_QUEUE_POP, q, &resp);
	IT_CHECK(rc == 0 && resp.body.u.queue.msgs_n == 1, "pop: %d", rc);
	rb_resp_free(&resp);
	it_cluster_done(&c);
}

static int64_t count_prefix(const char *url, const uint8_t *p, size_t n)
{
	uint8_t end[RB_TOPIC_BYTES_MAX];
	memcpy(end, p, n);
	end[n - 1]++;
	struct rb_op op = { .type = RB_OP_RANGE };
	op.u.range = (struct rb_range){ .key = p, .key_len = n, .range_end = end,
	    .range_end_len = n, .count_only = true };
	struct rb_resp resp;
	int rc = it_do(url, &op, &resp);
	IT_CHECK(rc == 0, "range: %d", rc);
	int64_t count = resp.body.u.range.count;
	rb_resp_free(&resp);
	return count;
}

static void test_retention(void)
{
	struct it_cluster c;
	start_one(&c);
	const char *url = c.m[0].client_url;
	uint8_t topic[RB_TOPIC_BYTES_MAX];
	memset(topic, 't', sizeof(topic));
	topic[sizeof(topic) - 1] = '/';
	for (int i = 0; i < 4; i++) {
		struct rb_op op = { .type = RB_OP_PUBLISH };
		op.u.publish = (struct rb_publish){ .topic = topic,
		    .topic_len = sizeof(topic), .payload = (const uint8_t *)"m",
		    .payload_len = 1 };
		struct rb_resp resp;
		int rc = it_do(url, &op, &resp);
		rb_resp_free(&resp);
		IT_CHECK(rc == 0, "publish %d: %d", i, rc);
	}
	/* one byte more is refused with a clear error */
	uint8_t longer[RB_TOPIC_BYTES_MAX + 1];
	memset(longer, 't', sizeof(longer));
	struct rb_op op = { .type = RB_OP_PUBLISH };
	op.u.publish = (struct rb_publish){ .topic = longer,
	    .topic_len = sizeof(longer), .payload = (const uint8_t *)"m",
	    .payload_len = 1 };
	struct rb_resp resp;
	int rc = it_do(url, &op, &resp);
	IT_CHECK(rc == RB_ERR_BAD_REQUEST && resp.msg, "long topic: %d", rc);
	rb_resp_free(&resp);
	IT_CHECK(count_prefix(url, topic, sizeof(topic)) == 4, "4 messages");
	uint8_t rk[sizeof(RB_PUBSUB_TOPIC_PREFIX) - 1 + sizeof(topic)];
	memcpy(rk, RB_PUBSUB_TOPIC_PREFIX, sizeof(RB_PUBSUB_TOPIC_PREFIX) - 1);
	memcpy(rk + sizeof(RB_PUBSUB_TOPIC_PREFIX) - 1, topic, sizeof(topic));
	const char *setting = "max_msgs=1";
	IT_CHECK(put_raw(url, rk, sizeof(rk), (const uint8_t *)setting,
	    strlen(setting)) == 0, "retention setting");
	int64_t deadline = it_now_ms() + 6000, n = 4;
	while (it_now_ms() < deadline && (n = count_prefix(url, topic,
	    sizeof(topic))) > 1)
		it_sleep_ms(200);
	IT_CHECK(n == 1, "retention kept %lld messages of a %u-byte topic",
	    (long long)n, RB_TOPIC_BYTES_MAX);
	it_cluster_done(&c);
}

static int publish_to(const char *url, const char *topic)
{
	struct rb_op op = { .type = RB_OP_PUBLISH };
	op.u.publish = (struct rb_publish){ .topic = (const uint8_t *)topic,
	    .topic_len = strlen(topic), .payload = (const uint8_t *)"m",
	    .payload_len = 1 };
	struct rb_resp resp;
	int rc = it_do(url, &op, &resp);
	rb_resp_free(&resp);
	return rc;
}

/* Retention of a topic deletes its own messages only: not those of a
 * topic it is a string prefix of, nor of a nested topic. A topic that
 * does not end with '/' is refused. */
static void test_nested(void)
{
	struct it_cluster c;
	start_one(&c);
	const char *url = c.m[0].client_url;
	IT_CHECK(publish_to(url, "/t") == RB_ERR_BAD_REQUEST,
	    "a topic without a trailing '/' is refused");
	IT_CHECK(publish_to(url, "/t/1/") == RB_ERR_BAD_REQUEST,
	    "a segment starting with a digit is refused");
	const char *topics[] = { "/t/", "/t/x0/", "/t/-/", "/t0/" };
	for (int k = 0; k < 4; k++)
		for (int i = 0; i < 3; i++)
			IT_CHECK(publish_to(url, topics[k]) == 0, "publish %s", topics[k]);
	const char rk[] = RB_PUBSUB_TOPIC_PREFIX "/t/";
	const char *setting = "max_msgs=1";
	IT_CHECK(put_raw(url, (const uint8_t *)rk, sizeof(rk) - 1,
	    (const uint8_t *)setting, strlen(setting)) == 0, "retention setting");
	const uint8_t from[] = "/t/0", to[] = "/t/:";
	int64_t deadline = it_now_ms() + 6000, n = 3;
	while (it_now_ms() < deadline) {
		struct rb_op op = { .type = RB_OP_RANGE };
		op.u.range = (struct rb_range){ .key = from, .key_len = sizeof(from) - 1,
		    .range_end = to, .range_end_len = sizeof(to) - 1, .count_only = true };
		struct rb_resp resp;
		IT_CHECK(it_do(url, &op, &resp) == 0, "range");
		n = resp.body.u.range.count;
		rb_resp_free(&resp);
		if (n == 1)
			break;
		it_sleep_ms(200);
	}
	IT_CHECK(n == 1, "retention kept %lld messages of /t/", (long long)n);
	for (int k = 1; k < 4; k++)
		IT_CHECK(count_prefix(url, (const uint8_t *)topics[k],
		    strlen(topics[k])) == 3, "%s lost messages to /t/'s retention",
		    topics[k]);
	it_cluster_done(&c);
}

static void expect_bad(const char *url, uint8_t type, struct rb_queue_req q,
    const char *what)
{
	struct rb_resp resp;
	int rc = queue_op(url, type, q, &resp);
	IT_CHECK(rc == RB_ERR_BAD_REQUEST || rc == RB_ERR_KEY_NOT_FOUND,
	    "%s: %d", what, rc);
	IT_CHECK(resp.msg != NULL && resp.msg[0], "%s: no message", what);
	rb_resp_free(&resp);
}

static void test_bad_queue(void)
{
	struct it_cluster c;
	start_one(&c);
	const char *url = c.m[0].client_url;
	struct rb_queue_req q = qreq("a/b");
	expect_bad(url, RB_OP_QUEUE_PUSH, q, "name with '/'");
	q = qreq("");
	expect_bad(url, RB_OP_QUEUE_STATS, q, "empty name");
	q = qreq(QN);
	q.receipt = (const uint8_t *)"garbage";
	q.receipt_len = 7;
	expect_bad(url, RB_OP_QUEUE_ACK, q, "garbage receipt");
	q = qreq(QN);
	q.wait_ms = -1;
	q.visibility_ms = 10;
	q.max_n = 1;
	expect_bad(url, RB_OP_QUEUE_POP, q, "negative wait");
	q = qreq(QN);
	q.delay_ms = -5;
	expect_bad(url, RB_OP_QUEUE_PUSH, q, "negative delay");
	/* the documented defaults of a raw request */
	q = qreq(QN);
	q.payload = (const uint8_t *)"p";
	q.payload_len = 1;
	struct rb_resp resp;
	IT_CHECK(queue_op(url, RB_OP_QUEUE_PUSH, q, &resp) == 0, "push");
	rb_resp_free(&resp);
	q = qreq(QN);
	int rc = queue_op(url, RB_OP_QUEUE_POP, q, &resp);
	IT_CHECK(rc == 0 && resp.body.u.queue.msgs_n == 1,
	    "pop with max_n 0, visibility 0: %d %s", rc, resp.msg ? resp.msg : "");
	rb_resp_free(&resp);
	q = qreq(QN);
	rc = queue_op(url, RB_OP_QUEUE_REDRIVE, q, &resp);
	IT_CHECK(rc == 0, "redrive with max_n 0: %d %s", rc,
	    resp.msg ? resp.msg : "");
	rb_resp_free(&resp);
	it_cluster_done(&c);
}

#define WB_KEYS 8
#define WB_VALUE_BYTES (1024u * 1024u)
#define WB_REPLY_BYTES_MAX (4u * 1024u * 1024u)   /* the server's bound */

static void test_watch_bytes(void)
{
	struct it_cluster c;
	start_one(&c);
	const char *url = c.m[0].client_url;
	uint8_t *val = malloc(WB_VALUE_BYTES);
	IT_CHECK(val != NULL, "oom");
	memset(val, 'v', WB_VALUE_BYTES);
	char keys[WB_KEYS][8];
	struct rb_watch_spec specs[WB_KEYS];
	for (int i = 0; i < WB_KEYS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "wb%d", i);
		IT_CHECK(put_raw(url, (const uint8_t *)keys[i], strlen(keys[i]), val,
		    WB_VALUE_BYTES) == 0, "put %d", i);
		specs[i] = (struct rb_watch_spec){ .key = (const uint8_t *)keys[i],
		    .key_len = strlen(keys[i]), .start_rev = 1 };
	}
	free(val);
	size_t seen = 0;
	for (int poll = 0; poll < 2 * WB_KEYS && seen < WB_KEYS; poll++) {
		struct rb_op op = { .type = RB_OP_WATCH };
		op.u.watch = (struct rb_watch_req){ .watches = specs,
		    .watches_n = WB_KEYS, .wait_ms = 0 };
		struct rb_resp resp;
		int rc = it_do(url, &op, &resp);
		IT_CHECK(rc == 0 && resp.body.u.watch.results_n == WB_KEYS,
		    "poll %d: %d", poll, rc);
		size_t bytes = 0;
		for (int i = 0; i < WB_KEYS; i++) {
			const struct rb_watch_result *r = &resp.body.u.watch.results[i];
			IT_CHECK(!r->canceled, "watch %d canceled", i);
			for (size_t e = 0; e < r->events_n; e++)
				bytes += r->events[e].kv.value_len;
			seen += r->events_n;
			specs[i].start_rev = r->next_rev;
			specs[i].start_sub = r->next_sub;
		}
		rb_resp_free(&resp);
		IT_CHECK(bytes > 0, "poll %d made no progress", poll);
		IT_CHECK(bytes <= WB_REPLY_BYTES_MAX + WB_VALUE_BYTES,
		    "poll %d: one reply carried %zu bytes of events", poll, bytes);
	}
	IT_CHECK(seen == WB_KEYS, "%zu of %d events delivered", seen, WB_KEYS);
	it_cluster_done(&c);
}

#define WN_KEYS 20000
#define WN_TXN_OPS 128
#define WN_WATCHES 256
#define WN_POLL_MS_MAX 1000

static int64_t wn_poll(const char *url, struct rb_watch_spec *specs,
    rb_rev from, size_t *events_out, rb_rev *next_out)
{
	for (int i = 0; i < WN_WATCHES; i++)
		specs[i] = (struct rb_watch_spec){ .key = (const uint8_t *)"p/",
		    .key_len = 2, .range_end = (const uint8_t *)"p0",
		    .range_end_len = 2, .start_rev = from };
	struct rb_op op = { .type = RB_OP_WATCH };
	op.u.watch = (struct rb_watch_req){ .watches = specs,
	    .watches_n = WN_WATCHES, .wait_ms = 0, .events_max = 0 };
	struct rb_resp resp;
	int64_t t0 = it_now_ms();
	int rc = it_do(url, &op, &resp);
	int64_t dt = it_now_ms() - t0;
	IT_CHECK(rc == 0 && resp.body.u.watch.results_n == WN_WATCHES,
	    "poll: %d", rc);
	const struct rb_watch_result *r = &resp.body.u.watch.results[0];
	*events_out = r->events_n;
	*next_out = r->next_rev;
	for (size_t e = 0; e < r->events_n; e++)
		IT_CHECK(r->events[e].kv.key_len >= 2 &&
		    !memcmp(r->events[e].kv.key, "p/", 2), "event outside the range");
	rb_resp_free(&resp);
	return dt;
}

static void test_watch_near(void)
{
	struct it_cluster c;
	start_one(&c);
	const char *url = c.m[0].client_url;
	static char keys[WN_TXN_OPS][24];
	struct rb_op ops[WN_TXN_OPS];
	for (int b = 0; b < WN_KEYS; b += WN_TXN_OPS) {
		for (int i = 0; i < WN_TXN_OPS; i++) {
			snprintf(keys[i], sizeof(keys[i]), "p/%08d", b + i);
			ops[i] = (struct rb_op){ .type = RB_OP_PUT };
			ops[i].u.put = (struct rb_put){ .key = (const uint8_t *)keys[i],
			    .key_len = strlen(keys[i]), .value = (const uint8_t *)"v",
			    .value_len = 1 };
		}
		struct rb_op txn = { .type = RB_OP_TXN };
		txn.u.txn = (struct rb_txn){ .success = ops,
		    .success_n = WN_TXN_OPS };
		struct rb_resp resp;
		int rc = it_do(url, &txn, &resp);
		rb_resp_free(&resp);
		IT_CHECK(rc == 0, "txn at %d: %d", b, rc);
	}
	/* the newest revision is outside the prefix: every watch reads */
	rb_rev rev;
	IT_CHECK(it_put(&c, "q", "v", &rev, it_now_ms() + 5000) == 0, "put q");
	static struct rb_watch_spec specs[WN_WATCHES];
	size_t n;
	rb_rev next;
	int64_t dt = wn_poll(url, specs, rev, &n, &next);
	IT_CHECK(n == 0 && next == rev + 1, "%zu events, next %lld", n,
	    (long long)next);
	IT_CHECK(dt < WN_POLL_MS_MAX, "a caught-up poll of %d watches over %d "
	    "keys took %lld ms", WN_WATCHES, WN_KEYS, (long long)dt);
	/* one more write in the range: exactly that event, from near */
	rb_rev rev2;
	IT_CHECK(it_put(&c, "p/new", "v", &rev2, it_now_ms() + 5000) == 0, "put");
	dt = wn_poll(url, specs, rev + 1, &n, &next);
	IT_CHECK(n == 1 && next == rev2 + 1, "%zu events, next %lld", n,
	    (long long)next);
	fprintf(stderr, "caught-up poll of %d watches over %d keys: %lld ms\n",
	    WN_WATCHES, WN_KEYS, (long long)dt);
	it_cluster_done(&c);
}

/* ---- watchconn ---------------------------------------------------------- */

#define WC_CONN_MAX 256          /* BK_WATCH_POLLS_PER_CONN_MAX */
#define WC_POLLS (WC_CONN_MAX + 44)
#define WC_WAIT_MS 20000

/* One long poll of key "wc" from `from` on its own context of sock. */
struct wc_poll {
	nng_ctx ctx;
	nng_aio *aio;
	atomic_bool receiving;   /* the send is done, the reply awaited */
	atomic_bool replied;
};

static void wc_cb(void *arg)
{
	struct wc_poll *p = arg;
	if (atomic_load(&p->receiving))
		atomic_store(&p->replied, true);
}

static void wc_send(nng_socket sock, struct wc_poll *p, uint64_t id,
    rb_rev from, int64_t wait_ms)
{
	struct rb_watch_spec spec = { .key = (const uint8_t *)"wc", .key_len = 2,
	    .start_rev = from };
	struct rb_op op = { .type = RB_OP_WATCH };
	op.u.watch = (struct rb_watch_req){ .watches = &spec, .watches_n = 1,
	    .wait_ms = wait_ms };
	uint8_t *buf;
	size_t len;
	IT_CHECK(rb_wire_encode_request(id, &op, &buf, &len) == 0, "encode");
	nng_msg *m;
	IT_CHECK(nng_msg_alloc(&m, len) == 0, "msg");
	memcpy(nng_msg_body(m), buf, len);
	free(buf);
	IT_CHECK(nng_ctx_open(&p->ctx, sock) == 0 &&
	    nng_aio_alloc(&p->aio, wc_cb, p) == 0, "ctx");
	nng_ctx_set_ms(p->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_aio_set_msg(p->aio, m);
	nng_aio_set_timeout(p->aio, 5000);
	nng_ctx_send(p->ctx, p->aio);
	nng_aio_wait(p->aio);
	IT_CHECK(nng_aio_result(p->aio) == 0, "send poll %llu",
	    (unsigned long long)id);
	nng_aio_set_timeout(p->aio, WC_WAIT_MS + 10000);
	atomic_store(&p->receiving, true);
	nng_ctx_recv(p->ctx, p->aio);
}

/* The poll's reply once it came (0 = not yet), decoded into resp. */
static int wc_reply(struct wc_poll *p, struct rb_resp *resp)
{
	if (!atomic_load(&p->replied))
		return 0;
	IT_CHECK(nng_aio_result(p->aio) == 0, "poll reply: %s",
	    nng_strerror(nng_aio_result(p->aio)));
	nng_msg *m = nng_aio_get_msg(p->aio);
	memset(resp, 0, sizeof(*resp));
	int rc = rb_wire_decode_reply(nng_msg_body(m), nng_msg_len(m), NULL,
	    NULL, resp);
	nng_msg_free(m);
	IT_CHECK(rc == 0, "decode reply");
	return 1;
}

static nng_socket wc_socket(const char *url)
{
	nng_socket s;
	IT_CHECK(nng_req0_open(&s) == 0 && nng_dial(s, url, NULL, 0) == 0,
	    "dial %s", url);
	return s;
}

static void test_watch_conn(void)
{
	struct it_cluster c;
	start_one(&c);
	const char *url = c.m[0].client_url;
	IT_CHECK(put_raw(url, (const uint8_t *)"wc", 2, (const uint8_t *)"0",
	    1) == 0, "put");
	struct rb_op cur = { .type = RB_OP_RANGE };
	cur.u.range = (struct rb_range){ .key = (const uint8_t *)"wc",
	    .key_len = 2 };
	struct rb_resp resp;
	IT_CHECK(it_do(url, &cur, &resp) == 0, "range");
	rb_rev next = resp.header.revision + 1;
	rb_resp_free(&resp);
	nng_socket a = wc_socket(url);
	static struct wc_poll polls[WC_POLLS];
	for (int i = 0; i < WC_POLLS; i++)
		wc_send(a, &polls[i], (uint64_t)i + 1, next, WC_WAIT_MS);
	/* the refusals come at once, the rest stay parked */
	int refused = 0, early = 0;
	int64_t end = it_now_ms() + 10000;
	static bool done[WC_POLLS];
	while (refused < WC_POLLS - WC_CONN_MAX && it_now_ms() < end) {
		for (int i = 0; i < WC_POLLS; i++) {
			if (done[i] || !wc_reply(&polls[i], &resp))
				continue;
			done[i] = true;
			if (resp.err == RB_ERR_TIMEOUT && resp.msg &&
			    strstr(resp.msg, "too many requests"))
				refused++;
			else
				early++;
			rb_resp_free(&resp);
		}
		it_sleep_ms(20);
	}
	IT_CHECK(refused == WC_POLLS - WC_CONN_MAX && early == 0, "%d polls "
	    "refused, %d answered early, of %d on one connection", refused,
	    early, WC_POLLS);
	/* another connection still gets its poll taken and answered */
	nng_socket b = wc_socket(url);
	static struct wc_poll other;
	wc_send(b, &other, 1, next - 1, 0);
	end = it_now_ms() + 10000;
	int got;
	while (!(got = wc_reply(&other, &resp)) && it_now_ms() < end)
		it_sleep_ms(10);
	IT_CHECK(got, "the other connection's poll got no answer");
	IT_CHECK(resp.err == 0 && resp.body.u.watch.results_n == 1 &&
	    resp.body.u.watch.results[0].events_n == 1, "the other "
	    "connection's poll: %d %s", resp.err, resp.msg ? resp.msg : "");
	rb_resp_free(&resp);
	/* one write answers every parked poll with its event */
	IT_CHECK(put_raw(url, (const uint8_t *)"wc", 2, (const uint8_t *)"1",
	    1) == 0, "put");
	int events = 0;
	end = it_now_ms() + 10000;
	while (events < WC_CONN_MAX && it_now_ms() < end) {
		for (int i = 0; i < WC_POLLS; i++) {
			if (done[i] || !wc_reply(&polls[i], &resp))
				continue;
			done[i] = true;
			IT_CHECK(resp.err == 0 && resp.body.u.watch.results_n == 1 &&
			    resp.body.u.watch.results[0].events_n == 1,
			    "parked poll %d: %d %s", i, resp.err,
			    resp.msg ? resp.msg : "");
			events++;
			rb_resp_free(&resp);
		}
		it_sleep_ms(20);
	}
	IT_CHECK(events == WC_CONN_MAX, "%d of %d parked polls answered by the "
	    "write", events, WC_CONN_MAX);
	fprintf(stderr, "watchconn: %d polls on one connection: %d parked, %d "
	    "refused; another connection served\n", WC_POLLS, WC_CONN_MAX,
	    refused);
	for (int i = 0; i < WC_POLLS; i++) {
		nng_aio_free(polls[i].aio);
		nng_ctx_close(polls[i].ctx);
	}
	nng_aio_free(other.aio);
	nng_ctx_close(other.ctx);
	nng_close(a);
	nng_close(b);
	it_cluster_done(&c);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IONBF, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: it_review expirestorm|retention|badqueue|"
		    "watchbytes|watchnear|watchconn\n");
		return 2;
	}
	if (!strcmp(argv[1], "expirestorm"))
		test_expire_storm();
	else if (!strcmp(argv[1], "nested"))
		test_nested();
	else if (!strcmp(argv[1], "retention"))
		test_retention();
	else if (!strcmp(argv[1], "badqueue"))
		test_bad_queue();
	else if (!strcmp(argv[1], "watchbytes"))
		test_watch_bytes();
	else if (!strcmp(argv[1], "watchnear"))
		test_watch_near();
	else if (!strcmp(argv[1], "watchconn"))
		test_watch_conn();
	else
		return 2;
	it_ok(argv[1]);
	return 0;
}
