/*
 * rb_concurrency.c - libraftbus's locks, leader elections and sessions:
 * etcd's concurrency recipes (Mutex, Election, Session) rebuilt on the
 * plain KV API - txn, lease and watch - so the server needs nothing
 * special (docs/locks.md).
 *
 * A contender owns the key NAME/<lease hex>, bound to its lease; the
 * oldest key (lowest create revision) holds the lock or leads. A waiter
 * watches only the next older key for its deletion, and its own key too,
 * so that a lease lost while waiting ends the wait at once. The grant
 * itself is one linearizable read-only txn: "my key still has create
 * revision R, and no key under the prefix is older than R". Because a
 * lease's keys are deleted in the same revision as the lease, "my key
 * still exists" also proves that the lease was alive when the lock was
 * granted (etcd issue 11456).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raftbus.h"
#include "rb_mem.h"

/* Attempts of an idempotent write (create-or-read, compare-and-delete)
 * whose reply was lost. */
#define RB_CC_RETRIES_MAX 5u
/* Pause between such attempts and after a wait found no member. */
#define RB_CC_RETRY_PAUSE_MS 100

/* ---- small helpers ---------------------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

const char *rb_cc_strerror(int err)
{
	switch (err) {
	case RB_ERR_LOCK_LOST:
		return "raftbus: the lock key was lost (lease expired or key deleted) "
			"before it was granted";
	case RB_ERR_STALE_TOKEN:
		return "raftbus: fenced write refused: stale fencing token";
	case RB_ERR_NOT_ELECTED: return "election: not leader";
	case RB_ERR_NO_ELECTION_LEADER: return "election: no leader";
	case RB_ERR_CANCELED: return "context canceled";
	default: return rb_strerror(err);
	}
}

/* Sets the call's error and message, keeping what resp already holds (a
 * header from the server). */
static int cc_fail(struct rb_resp *resp, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rb_resp_fail_v(resp, err, rb_cc_strerror(err), fmt, ap);
	va_end(ap);
	return err;
}

/* Worth asking again: nothing answered or nobody leads right now. */
static bool transient(int rc)
{
	return rc == RB_ERR_UNAVAILABLE || rc == RB_ERR_TIMEOUT ||
		rc == RB_ERR_NO_LEADER || rc == RB_ERR_NOT_LEADER;
}

static bool cancelled(const struct rb_cc_wait *w)
{
	return w && w->cancel && *w->cancel;
}

static int64_t deadline_of(const struct rb_cc_wait *w)
{
	return w == NULL || w->timeout_ms < 0 ? INT64_MAX : mono_ms() + w->timeout_ms;
}

/* The time left until deadline as a timeout argument (-1 = forever, so
 * that nothing adds to INT64_MAX). */
static int64_t tick_of(int64_t deadline)
{
	if (deadline == INT64_MAX)
		return -1;
	int64_t left = deadline - mono_ms();
	return left > 0 ? left : 0;
}

/* NAME "/" <lease hex>, as etcd's fmt.Sprintf("%s/%x"). */
static int make_key(const uint8_t *name, size_t name_len, rb_lease_id lease,
	struct rb_cc_key *k)
{
	if (name == NULL || name_len == 0 || name_len > RB_CC_NAME_BYTES_MAX ||
	    lease == 0)
		return RB_ERR_INVALID;
	memset(k, 0, sizeof(*k));
	memcpy(k->key, name, name_len);
	int n = snprintf((char *)k->key + name_len, sizeof(k->key) - name_len,
		"/%" PRIx64, (uint64_t)lease);
	k->key_len = name_len + (size_t)n;
	k->lease = lease;
	return 0;
}

/* The prefix of the election or lock that owns key k: up to and with its
 * last '/'. */
static size_t prefix_len_of(const struct rb_cc_key *k)
{
	size_t n = k->key_len;
	while (n > 0 && k->key[n - 1] != '/')
		n--;
	return n;
}

static struct rb_compare create_is(const struct rb_cc_key *k)
{
	return (struct rb_compare){ .target = RB_CMP_CREATE, .result = RB_CMP_EQUAL,
		.key = k->key, .key_len = k->key_len, .number = k->token };
}

/* ---- taking a key ------------------------------------------------------ */

/* Creates the contender key unless this lease already has one (then
 * reads it): `if create(key) == 0 then put else get`. Idempotent, so a
 * lost reply is retried. Sets k->token; *existed says whether the key
 * was there; *old (into resp) is its kv then. */
static int create_or_get(rb_client *c, struct rb_cc_key *k, const uint8_t *value,
	size_t value_len, bool *existed, const struct rb_kv **old,
	struct rb_resp *resp)
{
	struct rb_compare cmp = create_is(k);
	cmp.number = 0;
	struct rb_op put = { .type = RB_OP_PUT };
	put.u.put = (struct rb_put){ .key = k->key, .key_len = k->key_len,
		.value = value, .value_len = value_len, .lease = k->lease };
	struct rb_op get = { .type = RB_OP_RANGE };
	get.u.range = (struct rb_range){ .key = k->key, .key_len = k->key_len };
	struct rb_txn txn = { .compares = &cmp, .compares_n = 1, .success = &put,
		.success_n = 1, .failure = &get, .failure_n = 1 };
	int rc = 0;
	for (unsigned i = 0; i < RB_CC_RETRIES_MAX; i++) {
		rb_resp_free(resp);
		rc = rb_txn(c, &txn, resp);
		if (!transient(rc))
			break;
		pause_ms(RB_CC_RETRY_PAUSE_MS);
	}
	if (rc)
		return rc;
	const struct rb_txn_resp *t = &resp->body.u.txn;
	*existed = !t->succeeded;
	if (t->succeeded) {
		k->token = resp->header.revision;
		return 0;
	}
	if (t->responses_n != 1 || t->responses[0].u.range.kvs_n != 1)
		return cc_fail(resp, RB_ERR_LOCK_LOST, "key %.*s vanished while it was "
			"being taken", (int)k->key_len, (const char *)k->key);
	*old = &t->responses[0].u.range.kvs[0];
	k->token = (*old)->create_revision;
	return 0;
}

/* ---- waiting for older keys to go -------------------------------------- */

/* One linearizable check: is key k still there with its token, and which
 * key under the prefix is the next older one? Returns 0 with *pred NULL
 * when k is the oldest (granted; k->revision set). */
static int check_turn(rb_client *c, struct rb_cc_key *k, const struct rb_kv **pred,
	struct rb_resp *resp)
{
	size_t plen = prefix_len_of(k);
	uint8_t end[RB_CC_KEY_BYTES_MAX];
	struct rb_compare cmp = create_is(k);
	struct rb_op older = { .type = RB_OP_RANGE };
	older.u.range = (struct rb_range){ .key = k->key, .key_len = plen,
		.range_end = end, .range_end_len = rb_prefix_end(k->key, plen, end),
		.limit = 1, .sort_target = RB_SORT_CREATE, .sort_order = RB_SORT_DESCEND,
		.keys_only = true, .max_create_revision = k->token - 1 };
	struct rb_txn txn = { .compares = &cmp, .compares_n = 1, .success = &older,
		.success_n = 1 };
	rb_resp_free(resp);
	int rc = rb_txn(c, &txn, resp);
	if (rc)
		return rc;
	const struct rb_txn_resp *t = &resp->body.u.txn;
	if (!t->succeeded)
		return cc_fail(resp, RB_ERR_LOCK_LOST, "%s: key %.*s is gone",
			rb_cc_strerror(RB_ERR_LOCK_LOST), (int)k->key_len,
			(const char *)k->key);
	if (t->responses_n != 1 || t->responses[0].type != RB_OP_RANGE)
		return cc_fail(resp, RB_ERR_PROTOCOL, "unexpected txn reply");
	const struct rb_range_resp *r = &t->responses[0].u.range;
	*pred = r->kvs_n ? &r->kvs[0] : NULL;
	if (*pred == NULL)
		k->revision = resp->header.revision;
	return 0;
}

/* Watches `pred` and k's own key for a DELETE from revision `from` and
 * returns 0 as soon as either happens (or a watch ends, e.g. compacted:
 * the caller checks again anyway). */
static int wait_delete(rb_watcher *wt, const struct rb_kv *pred,
	const struct rb_cc_key *k, rb_rev from, const struct rb_cc_wait *w,
	int64_t deadline, struct rb_resp *resp)
{
	struct rb_watch_opts o = { .key = pred->key, .key_len = pred->key_len,
		.start_rev = from, .no_put = true };
	int64_t ids[2] = { 0, 0 };
	int rc = rb_watch_add(wt, &o, &ids[0]);
	o.key = k->key;
	o.key_len = k->key_len;
	if (rc == 0)
		rc = rb_watch_add(wt, &o, &ids[1]);
	while (rc == 0) {
		if (cancelled(w)) {
			rc = RB_ERR_CANCELED;
			break;
		}
		if (mono_ms() >= deadline) {
			rc = RB_ERR_TIMEOUT;
			break;
		}
		int64_t tick = tick_of(deadline);
		if (w && w->cancel && (tick < 0 || tick > RB_CC_CANCEL_POLL_MS))
			tick = RB_CC_CANCEL_POLL_MS;
		struct rb_resp r = { 0 };
		int wrc = rb_watch_next(wt, tick, &r);
		bool done = wrc == 0 && r.body.u.watch.results_n > 0;
		rb_resp_free(&r);
		if (done)
			break;
		if (wrc == 0)
			continue;
		if (!transient(wrc)) {
			rc = wrc;
			break;
		}
		/* no member answered for a command timeout: the watcher keeps
		 * its position, so asking again misses nothing */
		pause_ms(RB_CC_RETRY_PAUSE_MS);
	}
	for (size_t i = 0; i < 2; i++)
		if (ids[i])
			rb_watch_cancel(wt, ids[i]);   /* may be gone already */
	if (rc == RB_ERR_CANCELED || rc == RB_ERR_TIMEOUT)
		return cc_fail(resp, rc, "%s while waiting for %.*s to be released",
			rb_cc_strerror(rc), (int)pred->key_len, (const char *)pred->key);
	return rc ? cc_fail(resp, rc, "watch: %s", rb_cc_strerror(rc)) : 0;
}

/* Waits until k is the oldest key under its prefix (etcd's waitDeletes
 * followed by the grant check). */
static int wait_turn(rb_client *c, struct rb_cc_key *k, const struct rb_cc_wait *w,
	int64_t deadline, struct rb_resp *resp)
{
	rb_watcher *wt = NULL;
	int rc;
	for (;;) {
		const struct rb_kv *pred = NULL;
		rc = check_turn(c, k, &pred, resp);
		if (rc && transient(rc) && mono_ms() < deadline && !cancelled(w)) {
			pause_ms(RB_CC_RETRY_PAUSE_MS);
			continue;
		}
		if (rc || pred == NULL)
			break;
		if (wt == NULL && (rc = rb_watch_open(c, 0, &wt)) != 0)
			break;
		/* pred points into resp, which wait_delete only writes on error */
		struct rb_resp wr = { 0 };
		rc = wait_delete(wt, pred, k, resp->header.revision + 1, w, deadline, &wr);
		if (rc) {
			rb_resp_free(resp);
			*resp = wr;
			break;
		}
		rb_resp_free(&wr);
	}
	rb_watch_close(wt);
	return rc;
}

/* Deletes k if it still is k (compare on the create revision); retried
 * when the reply is lost since the compare makes it idempotent. */
static int delete_own(rb_client *c, const struct rb_cc_key *k, struct rb_resp *resp)
{
	if (k == NULL || k->key_len == 0 || k->token <= 0)
		return cc_fail(resp, RB_ERR_INVALID, "no key held");
	struct rb_compare cmp = create_is(k);
	struct rb_op del = { .type = RB_OP_DELETE_RANGE };
	del.u.delete_range = (struct rb_delete_range){ .key = k->key,
		.key_len = k->key_len };
	struct rb_txn txn = { .compares = &cmp, .compares_n = 1, .success = &del,
		.success_n = 1 };
	int rc = 0;
	for (unsigned i = 0; i < RB_CC_RETRIES_MAX; i++) {
		rb_resp_free(resp);
		rc = rb_txn(c, &txn, resp);
		if (!transient(rc))
			break;
		pause_ms(RB_CC_RETRY_PAUSE_MS);
	}
	return rc;
}

/* The common part of rb_lock() and rb_campaign(). */
static int take(rb_client *c, const uint8_t *name, size_t name_len,
	rb_lease_id lease, const uint8_t *value, size_t value_len, bool proclaim,
	const struct rb_cc_wait *w, struct rb_cc_key *out, struct rb_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	int64_t deadline = deadline_of(w);
	struct rb_cc_key k;
	if (c == NULL || out == NULL || make_key(name, name_len, lease, &k) != 0)
		return cc_fail(resp, RB_ERR_INVALID, "%s: name empty or longer than %u "
			"bytes, or lease 0", rb_strerror(RB_ERR_INVALID), RB_CC_NAME_BYTES_MAX);
	bool existed = false;
	const struct rb_kv *old = NULL;
	int rc = create_or_get(c, &k, value, value_len, &existed, &old, resp);
	if (rc)
		return rc;
	if (existed && proclaim && (old->value_len != value_len ||
	    (value_len && memcmp(old->value, value, value_len) != 0))) {
		if ((rc = rb_proclaim(c, &k, value, value_len, resp)) != 0) {
			struct rb_resp dr = { 0 };
			delete_own(c, &k, &dr);
			rb_resp_free(&dr);
			return rc;
		}
	}
	rc = wait_turn(c, &k, w, deadline, resp);
	if (rc != 0 && rc != RB_ERR_LOCK_LOST) {
		/* nobody must wait behind a key nobody will use (etcd deletes
		 * it on cancel; a caller that gave up for any reason is the
		 * same) */
		struct rb_resp dr = { 0 };
		delete_own(c, &k, &dr);
		rb_resp_free(&dr);
	}
	if (rc == 0)
		*out = k;
	return rc;
}

int rb_lock(rb_client *c, const uint8_t *name, size_t name_len,
	rb_lease_id lease, const struct rb_cc_wait *w, struct rb_cc_key *out,
	struct rb_resp *resp)
{
	return take(c, name, name_len, lease, NULL, 0, false, w, out, resp);
}

int rb_campaign(rb_client *c, const uint8_t *name, size_t name_len,
	rb_lease_id lease, const uint8_t *value, size_t value_len,
	const struct rb_cc_wait *w, struct rb_cc_key *out, struct rb_resp *resp)
{
	return take(c, name, name_len, lease, value, value_len, true, w, out, resp);
}

int rb_unlock(rb_client *c, const struct rb_cc_key *k, struct rb_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	return delete_own(c, k, resp);
}

int rb_resign(rb_client *c, const struct rb_cc_key *k, struct rb_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	return delete_own(c, k, resp);
}

/* ---- fenced writes, proclaim, leader ----------------------------------- */

int rb_fenced_txn(rb_client *c, const uint8_t *key, size_t key_len,
	rb_rev token, const struct rb_op *ops, size_t ops_n, struct rb_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	if (key == NULL || key_len == 0 || token <= 0 || ops == NULL || ops_n == 0)
		return cc_fail(resp, RB_ERR_INVALID, "%s: fenced txn needs a key, a "
			"token > 0 and ops", rb_strerror(RB_ERR_INVALID));
	struct rb_compare cmp = { .target = RB_CMP_CREATE, .result = RB_CMP_EQUAL,
		.key = key, .key_len = key_len, .number = token };
	struct rb_txn txn = { .compares = &cmp, .compares_n = 1, .success = ops,
		.success_n = ops_n };
	int rc = rb_txn(c, &txn, resp);
	if (rc)
		return rc;
	if (!resp->body.u.txn.succeeded)
		return cc_fail(resp, RB_ERR_STALE_TOKEN, "%s: %.*s no longer has "
			"create revision %" PRId64, rb_cc_strerror(RB_ERR_STALE_TOKEN),
			(int)key_len, (const char *)key, token);
	return 0;
}

int rb_fenced_put(rb_client *c, const struct rb_cc_key *k,
	const struct rb_put *put, struct rb_resp *resp)
{
	if (k == NULL || put == NULL) {
		memset(resp, 0, sizeof(*resp));
		return cc_fail(resp, RB_ERR_INVALID, "%s", rb_strerror(RB_ERR_INVALID));
	}
	struct rb_op op = { .type = RB_OP_PUT, .u.put = *put };
	return rb_fenced_txn(c, k->key, k->key_len, k->token, &op, 1, resp);
}

int rb_proclaim(rb_client *c, const struct rb_cc_key *k, const uint8_t *value,
	size_t value_len, struct rb_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	if (k == NULL || k->key_len == 0 || k->token <= 0)
		return cc_fail(resp, RB_ERR_INVALID, "no campaign key");
	struct rb_op put = { .type = RB_OP_PUT };
	put.u.put = (struct rb_put){ .key = k->key, .key_len = k->key_len,
		.value = value, .value_len = value_len, .lease = k->lease };
	int rc = rb_fenced_txn(c, k->key, k->key_len, k->token, &put, 1, resp);
	if (rc == RB_ERR_STALE_TOKEN)
		rc = cc_fail(resp, RB_ERR_NOT_ELECTED, "%s",
			rb_cc_strerror(RB_ERR_NOT_ELECTED));
	return rc;
}

/* The oldest key under prefix name "/" at revision rev (0 = now). */
static int oldest(rb_client *c, const uint8_t *name, size_t name_len, rb_rev rev,
	const struct rb_kv **leader, struct rb_resp *resp)
{
	uint8_t pfx[RB_CC_NAME_BYTES_MAX + 1], end[RB_CC_NAME_BYTES_MAX + 1];
	memcpy(pfx, name, name_len);
	pfx[name_len] = '/';
	struct rb_range r = { .key = pfx, .key_len = name_len + 1, .range_end = end,
		.range_end_len = rb_prefix_end(pfx, name_len + 1, end), .revision = rev,
		.limit = 1, .sort_target = RB_SORT_CREATE, .sort_order = RB_SORT_ASCEND };
	int rc = rb_range(c, &r, resp);
	*leader = rc == 0 && resp->body.u.range.kvs_n ? &resp->body.u.range.kvs[0] : NULL;
	return rc;
}

int rb_election_leader(rb_client *c, const uint8_t *name, size_t name_len,
	const struct rb_kv **leader, struct rb_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	*leader = NULL;
	if (name == NULL || name_len == 0 || name_len > RB_CC_NAME_BYTES_MAX)
		return cc_fail(resp, RB_ERR_INVALID, "%s: bad election name",
			rb_strerror(RB_ERR_INVALID));
	int rc = oldest(c, name, name_len, 0, leader, resp);
	if (rc == 0 && *leader == NULL)
		rc = cc_fail(resp, RB_ERR_NO_ELECTION_LEADER, "%s",
			rb_cc_strerror(RB_ERR_NO_ELECTION_LEADER));
	return rc;
}

/* ---- observing an election --------------------------------------------- */

/* An owned copy of a leader key. */
struct owned_leader {
	uint8_t *key;
	size_t key_len;
	uint8_t *value;
	size_t value_len;
	rb_rev create_revision, mod_revision, revision;
	int64_t version;
	rb_lease_id lease;
};

struct rb_observer {
	rb_client *c;            /* own client for ranges at a revision */
	rb_watcher *w;
	uint8_t name[RB_CC_NAME_BYTES_MAX];
	size_t name_len;
	bool has_leader;
	struct owned_leader cur;     /* the current leader, when has_leader */
	struct owned_leader *queue;  /* reports not yet returned */
	size_t queue_n, queue_head, queue_cap;
	struct owned_leader given;   /* the last one returned (owned) */
	struct rb_resp batch;        /* watch events being applied */
	bool has_batch;
	size_t batch_res, batch_ev;  /* the next event of batch to apply */
};

static void owned_free(struct owned_leader *l)
{
	free(l->key);
	free(l->value);
	memset(l, 0, sizeof(*l));
}

static int owned_copy(struct owned_leader *dst, const struct rb_kv *kv, rb_rev rev)
{
	struct owned_leader l = { .key_len = kv->key_len, .value_len = kv->value_len,
		.create_revision = kv->create_revision, .mod_revision = kv->mod_revision,
		.version = kv->version, .lease = kv->lease, .revision = rev };
	l.key = malloc(kv->key_len ? kv->key_len : 1);
	l.value = malloc(kv->value_len ? kv->value_len : 1);
	if (l.key == NULL || l.value == NULL) {
		owned_free(&l);
		return RB_ERR_NOMEM;
	}
	if (kv->key_len)
		memcpy(l.key, kv->key, kv->key_len);
	if (kv->value_len)
		memcpy(l.value, kv->value, kv->value_len);
	*dst = l;
	return 0;
}

/* Makes kv the current leader and queues a report of it. */
static int set_leader(rb_observer *o, const struct rb_kv *kv, rb_rev rev)
{
	if (o->queue_n == o->queue_cap) {
		size_t cap = o->queue_cap ? 2 * o->queue_cap : 8;
		struct owned_leader *q = realloc(o->queue, cap * sizeof(*q));
		if (q == NULL)
			return RB_ERR_NOMEM;
		o->queue = q;
		o->queue_cap = cap;
	}
	owned_free(&o->cur);
	o->has_leader = false;
	int rc = owned_copy(&o->cur, kv, rev);
	if (rc == 0)
		rc = owned_copy(&o->queue[o->queue_n], kv, rev);
	if (rc)
		return rc;
	o->queue_n++;
	o->has_leader = true;
	return 0;
}

/* The leader's key was deleted at revision rev: the new leader is the
 * oldest key at that revision (or, if that is compacted, now). */
static int leader_gone(rb_observer *o, rb_rev rev)
{
	struct rb_resp r = { 0 };
	const struct rb_kv *l = NULL;
	int rc = oldest(o->c, o->name, o->name_len, rev, &l, &r);
	if (rc == RB_ERR_COMPACTED) {
		rb_resp_free(&r);
		rc = oldest(o->c, o->name, o->name_len, 0, &l, &r);
	}
	if (rc == 0) {
		/* only now: a failed read leaves the event to be applied again */
		owned_free(&o->cur);
		o->has_leader = false;
		if (l)
			rc = set_leader(o, l, r.header.revision < rev ?
				r.header.revision : rev);
	}
	rb_resp_free(&r);
	return rc;
}

static bool same_key(const struct owned_leader *l, const struct rb_kv *kv)
{
	return l->key_len == kv->key_len && memcmp(l->key, kv->key, kv->key_len) == 0;
}

/* Applies one watch event to the leader state. */
static int observe_event(rb_observer *o, const struct rb_event *ev)
{
	if (!o->has_leader) {
		/* no key existed, so the first one created leads */
		if (ev->type == RB_EVENT_PUT)
			return set_leader(o, &ev->kv, ev->kv.mod_revision);
		return 0;
	}
	if (!same_key(&o->cur, &ev->kv))
		return 0;
	if (ev->type == RB_EVENT_PUT) {
		/* a put the range that found this leader already saw */
		if (ev->kv.mod_revision <= o->cur.mod_revision)
			return 0;
		return set_leader(o, &ev->kv, ev->kv.mod_revision);   /* proclaimed */
	}
	return leader_gone(o, ev->kv.mod_revision);
}

int rb_observe_open(rb_client *c, const uint8_t *name, size_t name_len,
	rb_observer **out)
{
	*out = NULL;
	if (c == NULL || name == NULL || name_len == 0 || name_len > RB_CC_NAME_BYTES_MAX)
		return RB_ERR_INVALID;
	rb_observer *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return RB_ERR_NOMEM;
	memcpy(o->name, name, name_len);
	o->name_len = name_len;
	const char *eps[RB_ENDPOINTS_MAX];
	struct rb_config cfg = { .endpoints = eps,
		.endpoints_n = rb_client_endpoints_n(c),
		.command_timeout_ms = rb_client_command_timeout_ms(c) };
	for (size_t i = 0; i < cfg.endpoints_n; i++)
		eps[i] = rb_client_endpoint(c, i);
	int rc = rb_client_open(&cfg, &o->c);
	struct rb_resp r = { 0 };
	const struct rb_kv *l = NULL;
	if (rc == 0)
		rc = oldest(o->c, name, name_len, 0, &l, &r);
	if (rc == 0 && l)
		rc = set_leader(o, l, r.header.revision);
	if (rc == 0)
		rc = rb_watch_open(c, 0, &o->w);
	uint8_t pfx[RB_CC_NAME_BYTES_MAX + 1], end[RB_CC_NAME_BYTES_MAX + 1];
	memcpy(pfx, name, name_len);
	pfx[name_len] = '/';
	struct rb_watch_opts wo = { .key = pfx, .key_len = name_len + 1,
		.range_end = end, .range_end_len = rb_prefix_end(pfx, name_len + 1, end),
		.start_rev = r.header.revision + 1 };
	int64_t id;
	if (rc == 0)
		rc = rb_watch_add(o->w, &wo, &id);
	rb_resp_free(&r);
	if (rc) {
		rb_observe_close(o);
		return rc;
	}
	*out = o;
	return 0;
}

/* Polls the watch once (up to tick_ms) and applies what it returned. */
/* Applies the events of the batch in hand, from where the last call
 * stopped: an event whose range failed is applied again next time, since
 * the watcher has already moved past it. */
static int observe_apply(rb_observer *o)
{
	const struct rb_watch_resp *wr = &o->batch.body.u.watch;
	for (; o->batch_res < wr->results_n; o->batch_res++, o->batch_ev = 0) {
		const struct rb_watch_result *res = &wr->results[o->batch_res];
		if (res->canceled)
			return res->err ? res->err : RB_ERR_COMPACTED;
		for (; o->batch_ev < res->events_n; o->batch_ev++) {
			int rc = observe_event(o, &res->events[o->batch_ev]);
			if (rc)
				return rc;
		}
	}
	rb_resp_free(&o->batch);
	o->has_batch = false;
	return 0;
}

/* Polls the watch once (up to tick_ms) unless a batch is still in hand,
 * and applies what it returned. */
static int observe_poll(rb_observer *o, int64_t tick_ms)
{
	if (!o->has_batch) {
		int rc = rb_watch_next(o->w, tick_ms, &o->batch);
		if (rc) {
			rb_resp_free(&o->batch);
			return rc;
		}
		o->has_batch = true;
		o->batch_res = o->batch_ev = 0;
	}
	return observe_apply(o);
}

int rb_observe_next(rb_observer *o, int64_t timeout_ms, bool *got,
	struct rb_leader_event *ev)
{
	*got = false;
	owned_free(&o->given);
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : mono_ms() + timeout_ms;
	while (o->queue_head == o->queue_n) {
		o->queue_head = o->queue_n = 0;
		if (rb_watch_count(o->w) == 0)
			return RB_ERR_COMPACTED;   /* the watch ended */
		if (mono_ms() >= deadline)
			return 0;
		int rc = observe_poll(o, tick_of(deadline));
		if (rc)
			return rc;
	}
	o->given = o->queue[o->queue_head];
	memset(&o->queue[o->queue_head++], 0, sizeof(o->given));
	const struct owned_leader *l = &o->given;
	ev->kv = (struct rb_kv){ .key = l->key, .key_len = l->key_len,
		.value = l->value, .value_len = l->value_len,
		.create_revision = l->create_revision, .mod_revision = l->mod_revision,
		.version = l->version, .lease = l->lease };
	ev->revision = l->revision;
	*got = true;
	return 0;
}

void rb_observe_close(rb_observer *o)
{
	if (o == NULL)
		return;
	rb_watch_close(o->w);
	rb_client_close(o->c);
	for (size_t i = o->queue_head; o->queue && i < o->queue_n; i++)
		owned_free(&o->queue[i]);
	free(o->queue);
	owned_free(&o->cur);
	owned_free(&o->given);
	rb_resp_free(&o->batch);
	free(o);
}

/* ---- sessions ---------------------------------------------------------- */

struct rb_session {
	rb_client *c;            /* the keep-alive thread's own client */
	rb_lease_id lease;
	int64_t ttl_s;
	pthread_t thread;
	pthread_mutex_t mtx;
	pthread_cond_t cv;       /* wakes the thread to stop */
	bool stop;               /* under mtx */
	atomic_bool expired;
};

/* Waits up to ms on the session's condition; true when asked to stop. */
static bool session_sleep(rb_session *s, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mtx);
	while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mtx, &ts) != ETIMEDOUT)
		;
	bool stop = s->stop;
	pthread_mutex_unlock(&s->mtx);
	return stop;
}

/* Renews the lease every TTL/3; a failed round is retried sooner. The
 * session expires when the lease is gone or when nothing was renewed for a
 * whole TTL (it may have expired on the server by then). */
static void *session_main(void *arg)
{
	rb_session *s = arg;
	int64_t period_ms = s->ttl_s * 1000 / 3;
	int64_t last_ok = mono_ms();
	int64_t wait_ms = period_ms;
	while (!session_sleep(s, wait_ms)) {
		struct rb_resp r = { 0 };
		int rc = rb_lease_keepalive_once(s->c, s->lease, &r);
		bool gone = rc == RB_ERR_LEASE_NOT_FOUND ||
			(rc == 0 && r.body.u.lease_keepalive.ttl_s <= 0);
		rb_resp_free(&r);
		int64_t now = mono_ms();
		if (rc == 0 && !gone)
			last_ok = now;
		if (gone || now - last_ok >= s->ttl_s * 1000) {
			atomic_store(&s->expired, true);
			break;
		}
		wait_ms = rc == 0 ? period_ms : period_ms / 4 + 1;
	}
	return NULL;
}

int rb_session_open(rb_client *c, int64_t ttl_s, rb_session **out,
	struct rb_resp *resp)
{
	*out = NULL;
	memset(resp, 0, sizeof(*resp));
	if (c == NULL)
		return cc_fail(resp, RB_ERR_INVALID, "NULL client");
	int rc = rb_lease_grant(c, ttl_s > 0 ? ttl_s : RB_SESSION_TTL_S_DEFAULT, 0, resp);
	if (rc)
		return rc;
	rb_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto out_revoke;
	s->lease = resp->body.u.lease_grant.id;
	s->ttl_s = resp->body.u.lease_grant.ttl_s > 0 ? resp->body.u.lease_grant.ttl_s : 1;
	atomic_init(&s->expired, false);
	const char *eps[RB_ENDPOINTS_MAX];
	int64_t call_ms = rb_client_command_timeout_ms(c);
	if (call_ms > s->ttl_s * 1000 / 3)
		call_ms = s->ttl_s * 1000 / 3;   /* a round must end before the next */
	struct rb_config cfg = { .endpoints = eps, .endpoints_n = rb_client_endpoints_n(c),
		.command_timeout_ms = call_ms > 0 ? call_ms : 1 };
	for (size_t i = 0; i < cfg.endpoints_n; i++)
		eps[i] = rb_client_endpoint(c, i);
	if (rb_client_open(&cfg, &s->c) != 0)
		goto out_free;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&s->mtx, NULL);
	if (pthread_create(&s->thread, NULL, session_main, s) != 0)
		goto out_destroy;
	*out = s;
	return 0;
out_destroy:
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	rb_client_close(s->c);
out_free:
	free(s);
out_revoke: {
	rb_lease_id id = resp->body.u.lease_grant.id;
	struct rb_resp rr = { 0 };
	rb_lease_revoke(c, id, &rr);
	rb_resp_free(&rr);
	rb_resp_free(resp);
	return cc_fail(resp, RB_ERR_NOMEM, "%s", rb_strerror(RB_ERR_NOMEM));
	}
}

rb_lease_id rb_session_lease(const rb_session *s)
{
	return s->lease;
}

int64_t rb_session_ttl_s(const rb_session *s)
{
	return s->ttl_s;
}

bool rb_session_expired(const rb_session *s)
{
	return atomic_load(&s->expired);
}

static void session_stop(rb_session *s)
{
	pthread_mutex_lock(&s->mtx);
	s->stop = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mtx);
	pthread_join(s->thread, NULL);
}

static void session_free(rb_session *s)
{
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	rb_client_close(s->c);
	free(s);
}

void rb_session_close(rb_session *s)
{
	if (s == NULL)
		return;
	session_stop(s);
	if (!rb_session_expired(s)) {
		struct rb_resp r = { 0 };
		rb_lease_revoke(s->c, s->lease, &r);
		rb_resp_free(&r);
	}
	session_free(s);
}

void rb_session_abandon(rb_session *s)
{
	if (s == NULL)
		return;
	session_stop(s);
	session_free(s);
}
