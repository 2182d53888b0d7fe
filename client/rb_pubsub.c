/*
 * rb_pubsub.c - libraftbus's pub/sub: publish, and subscribers built on a
 * watch stream of the topic's prefix (docs/pubsub.md).
 *
 * A subscriber keeps its position as the watcher does (the next revision
 * wanted), so delivery is in revision order, gap-free and without
 * duplicates across member failures. With a consumer group it also keeps
 * the group's committed position, a key written by compare-and-swap that
 * only moves forward, and holds the group's owner key on a lease (kept
 * alive from rb_sub_next) so that one consumer of (group, topic) is active
 * at a time, as in a Kafka group on a one-partition topic; a standby
 * takes over when the owner's lease is gone and resumes after the
 * committed position, so with commits after processing every message is
 * processed at least once.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "raftbus.h"

#define PFX_LEN(p) (sizeof(p) - 1)
/* Longest key this file builds: a reserved prefix + group + topic. */
#define RB_SUB_KEY_BYTES_MAX (32u + RB_GROUP_BYTES_MAX + RB_TOPIC_BYTES_MAX)
/* Width of a committed position / floor value. */
#define RB_SUB_POS_DIGITS 20

struct rb_sub {
	rb_client *c;
	uint8_t *topic;
	size_t topic_n;
	uint8_t *topic_end;
	size_t topic_end_n;
	bool grouped;
	uint8_t gkey[RB_SUB_KEY_BYTES_MAX];   /* committed position */
	size_t gkey_n;
	uint8_t okey[RB_SUB_KEY_BYTES_MAX];   /* owner */
	size_t okey_n;
	uint8_t fkey[RB_SUB_KEY_BYTES_MAX];   /* retention floor */
	size_t fkey_n;
	struct rb_sub_opts o;
	rb_watcher *w;
	int64_t wid;
	bool started;            /* the watch exists */
	bool broken;             /* compacted / behind retention: no more */
	rb_rev position, last, committed, to_commit;
	rb_lease_id lease;
	bool owner;
	int64_t next_keepalive_ms;
	int64_t next_floor_ms;
	struct rb_resp batch_resp;
	struct rb_message *msgs;
	size_t msgs_cap;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static int err_set(char *buf, size_t len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int err_set(char *buf, size_t len, int rc, const char *fmt, ...)
{
	if (buf && len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int rb_publish(rb_client *c, const struct rb_publish *req, struct rb_resp *resp)
{
	struct rb_op op = { .type = RB_OP_PUBLISH };
	op.u.publish = *req;
	return rb_do(c, &op, resp);
}

/* ---- small reads and writes --------------------------------------------- */

static size_t key_join(uint8_t *out, const char *pfx, const char *a, size_t an,
	const uint8_t *b, size_t bn)
{
	size_t n = strlen(pfx);
	memcpy(out, pfx, n);
	memcpy(out + n, a, an);
	n += an;
	if (b) {
		out[n++] = 0;
		memcpy(out + n, b, bn);
		n += bn;
	}
	return n;
}

/* Reads a decimal value at key: *v = 0 when absent. */
static int read_number(rb_client *c, const uint8_t *key, size_t key_n, int64_t *v)
{
	struct rb_range rq = { .key = key, .key_len = key_n };
	struct rb_resp r = { 0 };
	int rc = rb_range(c, &rq, &r);
	*v = 0;
	if (rc == 0 && r.body.u.range.kvs_n == 1) {
		const struct rb_kv *kv = &r.body.u.range.kvs[0];
		char buf[32];
		size_t n = kv->value_len < sizeof(buf) - 1 ? kv->value_len : sizeof(buf) - 1;
		memcpy(buf, kv->value, n);
		buf[n] = 0;
		*v = strtoll(buf, NULL, 10);
	}
	rb_resp_free(&r);
	return rc;
}

int rb_group_committed(rb_client *c, const char *group, const char *topic,
	rb_rev *rev)
{
	uint8_t k[RB_SUB_KEY_BYTES_MAX];
	size_t gn = strlen(group), tn = strlen(topic);
	if (gn == 0 || gn > RB_GROUP_BYTES_MAX || tn == 0 || tn > RB_TOPIC_BYTES_MAX)
		return RB_ERR_INVALID;
	size_t n = key_join(k, RB_PUBSUB_GROUP_PREFIX, group, gn,
		(const uint8_t *)topic, tn);
	return read_number(c, k, n, rev);
}

int rb_topic_floor(rb_client *c, const char *topic, rb_rev *floor)
{
	uint8_t k[RB_SUB_KEY_BYTES_MAX];
	size_t tn = strlen(topic);
	if (tn == 0 || tn > RB_TOPIC_BYTES_MAX)
		return RB_ERR_INVALID;
	size_t n = key_join(k, RB_PUBSUB_FLOOR_PREFIX, topic, tn, NULL, 0);
	return read_number(c, k, n, floor);
}

/* ---- commit ------------------------------------------------------------- */

/* One txn: value < new (zero-padded, so bytewise = numeric) -> put; else
 * if the key does not exist -> put. Never moves the position back. */
int rb_sub_commit(rb_sub *s, rb_rev revision)
{
	if (revision < 1)
		return RB_ERR_INVALID;
	if (!s->grouped || revision <= s->committed)
		return RB_OK;
	char val[RB_SUB_POS_DIGITS + 1];
	snprintf(val, sizeof(val), "%020lld", (long long)revision);
	struct rb_op put = { .type = RB_OP_PUT };
	put.u.put = (struct rb_put){ .key = s->gkey, .key_len = s->gkey_n,
		.value = (const uint8_t *)val, .value_len = RB_SUB_POS_DIGITS };
	struct rb_compare older = { .target = RB_CMP_VALUE, .result = RB_CMP_LESS,
		.key = s->gkey, .key_len = s->gkey_n, .value = (const uint8_t *)val,
		.value_len = RB_SUB_POS_DIGITS };
	struct rb_compare absent = { .target = RB_CMP_CREATE,
		.result = RB_CMP_EQUAL, .key = s->gkey, .key_len = s->gkey_n };
	struct rb_op inner = { .type = RB_OP_TXN };
	inner.u.txn = (struct rb_txn){ &absent, 1, &put, 1, NULL, 0 };
	struct rb_txn outer = { &older, 1, &put, 1, &inner, 1 };
	struct rb_resp r = { 0 };
	int rc = rb_txn(s->c, &outer, &r);
	rb_resp_free(&r);
	if (rc)
		return rc;
	/* either it moved forward, or someone had committed further */
	s->committed = revision;
	return RB_OK;
}

/* ---- start position ----------------------------------------------------- */

/* The revision of the oldest message of the topic, or the next revision
 * when the topic has none. */
static int earliest(rb_sub *s, rb_rev *out)
{
	uint8_t lo[RB_SUB_KEY_BYTES_MAX], hi[RB_SUB_KEY_BYTES_MAX];
	memcpy(lo, s->topic, s->topic_n);
	memcpy(hi, s->topic, s->topic_n);
	lo[s->topic_n] = '0';
	hi[s->topic_n] = '9' + 1;
	struct rb_range rq = { .key = lo, .key_len = s->topic_n + 1,
		.range_end = hi, .range_end_len = s->topic_n + 1, .limit = 1 };
	struct rb_resp r = { 0 };
	int rc = rb_range(s->c, &rq, &r);
	if (rc == 0)
		*out = r.body.u.range.kvs_n ? r.body.u.range.kvs[0].mod_revision :
			r.header.revision + 1;
	rb_resp_free(&r);
	return rc;
}

static int behind_retention(const rb_sub *s, rb_rev pos, rb_rev floor, char *eb,
	size_t el)
{
	return err_set(eb, el, RB_ERR_INVALID, "position %lld is behind the "
		"retention of topic %.*s (earliest retained: %lld); restart from "
		"earliest", (long long)pos, (int)s->topic_n, (const char *)s->topic,
		(long long)floor + 1);
}

/* Resolves where to start and adds the watch. */
static int start(rb_sub *s, char *eb, size_t el)
{
	rb_rev pos = 0, floor = 0;
	int rc = 0;
	if (s->grouped && (rc = read_number(s->c, s->gkey, s->gkey_n, &s->committed)))
		return err_set(eb, el, rc, "reading the committed position: %s",
			rb_strerror(rc));
	if (s->committed > 0)
		pos = s->committed + 1;
	else if (s->o.from == RB_SUB_FROM_REVISION)
		pos = s->o.from_rev;
	else if (s->o.from == RB_SUB_FROM_EARLIEST && (rc = earliest(s, &pos)))
		return err_set(eb, el, rc, "finding the earliest message: %s",
			rb_strerror(rc));
	if ((rc = read_number(s->c, s->fkey, s->fkey_n, &floor)))
		return err_set(eb, el, rc, "reading the retention floor: %s",
			rb_strerror(rc));
	if (pos > 0 && pos <= floor)
		return behind_retention(s, pos, floor, eb, el);
	struct rb_watch_opts wo = { .key = s->topic, .key_len = s->topic_n,
		.range_end = s->topic_end, .range_end_len = s->topic_end_n,
		.start_rev = pos, .no_delete = true };
	if ((rc = rb_watch_add(s->w, &wo, &s->wid)))
		return err_set(eb, el, rc, "starting the watch: %s", rb_strerror(rc));
	s->started = true;
	s->position = rb_watch_position(s->w, s->wid);
	s->next_floor_ms = mono_ms() + RB_SUB_FLOOR_REFRESH_MS;
	return RB_OK;
}

/* ---- group ownership ---------------------------------------------------- */

static int64_t keepalive_every_ms(const rb_sub *s)
{
	return s->o.owner_ttl_s * 1000 / 3;
}

/* Tries once to become the group's active consumer. */
static int try_own(rb_sub *s, char *eb, size_t el)
{
	struct rb_resp r = { 0 };
	int rc;
	if (s->lease == 0) {
		if ((rc = rb_lease_grant(s->c, s->o.owner_ttl_s, 0, &r)) == 0)
			s->lease = r.body.u.lease_grant.id;
		rb_resp_free(&r);
		if (rc)
			return err_set(eb, el, rc, "granting the owner lease: %s",
				rb_strerror(rc));
		s->next_keepalive_ms = mono_ms() + keepalive_every_ms(s);
	}
	char who[96];
	char host[64] = "?";
	gethostname(host, sizeof(host) - 1);
	int wn = snprintf(who, sizeof(who), "%s:%ld lease %llx", host,
		(long)getpid(), (unsigned long long)s->lease);
	struct rb_compare free_ = { .target = RB_CMP_CREATE, .result = RB_CMP_EQUAL,
		.key = s->okey, .key_len = s->okey_n };
	struct rb_op put = { .type = RB_OP_PUT };
	put.u.put = (struct rb_put){ .key = s->okey, .key_len = s->okey_n,
		.value = (const uint8_t *)who, .value_len = (size_t)wn,
		.lease = s->lease };
	struct rb_txn t = { &free_, 1, &put, 1, NULL, 0 };
	rc = rb_txn(s->c, &t, &r);
	bool won = rc == 0 && r.body.u.txn.succeeded;
	rb_resp_free(&r);
	if (rc == RB_ERR_LEASE_NOT_FOUND) {   /* our lease expired meanwhile */
		s->lease = 0;
		return RB_OK;
	}
	if (rc)
		return err_set(eb, el, rc, "taking the group: %s", rb_strerror(rc));
	if (!won)
		return RB_OK;
	s->owner = true;
	return start(s, eb, el);
}

/* Keeps the owner lease alive; a lease found gone means another consumer
 * may own the group now: stop and go back to standby (what was delivered
 * but not committed will be delivered again). */
static void keepalive(rb_sub *s)
{
	int64_t now = mono_ms();
	if (s->lease == 0 || now < s->next_keepalive_ms)
		return;
	struct rb_resp r = { 0 };
	int rc = rb_lease_keepalive_once(s->c, s->lease, &r);
	rb_resp_free(&r);
	if (rc == 0) {
		s->next_keepalive_ms = now + keepalive_every_ms(s);
		return;
	}
	if (rc != RB_ERR_LEASE_NOT_FOUND)
		return;              /* no member answered: try again soon */
	s->lease = 0;
	if (s->owner && s->started)
		rb_watch_cancel(s->w, s->wid);
	s->owner = false;
	s->started = false;
	s->to_commit = 0;
}

/* ---- open / next / close ------------------------------------------------ */

static int sub_keys(rb_sub *s, const char *topic, const char *group)
{
	size_t tn = strlen(topic), gn = group ? strlen(group) : 0;
	if (!rb_topic_valid((const uint8_t *)topic, tn) || gn > RB_GROUP_BYTES_MAX)
		return RB_ERR_INVALID;
	s->topic = malloc(tn);
	s->topic_end = malloc(tn);
	if (!s->topic || !s->topic_end)
		return RB_ERR_NOMEM;
	memcpy(s->topic, topic, tn);
	s->topic_n = tn;
	s->topic_end_n = rb_prefix_end(s->topic, tn, s->topic_end);
	s->fkey_n = key_join(s->fkey, RB_PUBSUB_FLOOR_PREFIX, topic, tn, NULL, 0);
	s->grouped = gn > 0;
	if (s->grouped) {
		s->gkey_n = key_join(s->gkey, RB_PUBSUB_GROUP_PREFIX, group, gn,
			s->topic, tn);
		s->okey_n = key_join(s->okey, RB_PUBSUB_OWNER_PREFIX, group, gn,
			s->topic, tn);
	}
	return RB_OK;
}

int rb_sub_open(rb_client *c, const char *topic, const char *group,
	const struct rb_sub_opts *opts, rb_sub **out, char *eb, size_t el)
{
	*out = NULL;
	if (!c || !topic)
		return err_set(eb, el, RB_ERR_INVALID, "no client or topic");
	if (opts && (opts->from < RB_SUB_FROM_EARLIEST ||
	    opts->from > RB_SUB_FROM_REVISION ||
	    (opts->from == RB_SUB_FROM_REVISION && opts->from_rev < 1)))
		return err_set(eb, el, RB_ERR_INVALID, "bad start position");
	rb_sub *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(eb, el, RB_ERR_NOMEM, "out of memory");
	s->c = c;
	if (opts)
		s->o = *opts;
	if (s->o.owner_ttl_s <= 0)
		s->o.owner_ttl_s = RB_SUB_OWNER_TTL_S_DEFAULT;
	int rc = sub_keys(s, topic, group);
	if (rc) {
		rb_sub_close(s);
		return err_set(eb, el, rc, rc == RB_ERR_NOMEM ? "out of memory" :
			"the topic must have 1..%u bytes, end with '/' and have no "
			"segment starting with a digit; the group at most %u bytes",
			RB_TOPIC_BYTES_MAX, RB_GROUP_BYTES_MAX);
	}
	if ((rc = rb_watch_open(c, 0, &s->w)) == 0)
		rc = s->grouped ? try_own(s, eb, el) : start(s, eb, el);
	else
		err_set(eb, el, rc, "opening the watcher: %s", rb_strerror(rc));
	if (rc) {
		rb_sub_close(s);
		return rc;
	}
	*out = s;
	return RB_OK;
}

static int grow_msgs(rb_sub *s, size_t n)
{
	if (n <= s->msgs_cap)
		return RB_OK;
	struct rb_message *m = realloc(s->msgs, n * sizeof(*m));
	if (!m)
		return RB_ERR_NOMEM;
	s->msgs = m;
	s->msgs_cap = n;
	return RB_OK;
}

/* Turns one watch reply into messages; a cancelled watch is an error. */
static int take_events(rb_sub *s, struct rb_sub_batch *b, char *eb, size_t el)
{
	const struct rb_watch_resp *wr = &s->batch_resp.body.u.watch;
	size_t total = 0, n = 0;
	for (size_t i = 0; i < wr->results_n; i++)
		total += wr->results[i].events_n;
	if (grow_msgs(s, total))
		return err_set(eb, el, RB_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < wr->results_n; i++) {
		const struct rb_watch_result *res = &wr->results[i];
		if (res->canceled) {
			s->broken = true;
			if (res->err == RB_ERR_COMPACTED)
				return err_set(eb, el, RB_ERR_COMPACTED, "position %lld "
					"of topic %.*s was compacted (compact revision "
					"%lld); restart from earliest",
					(long long)s->position, (int)s->topic_n,
					(const char *)s->topic,
					(long long)res->compact_revision);
			return err_set(eb, el, res->err ? res->err : RB_ERR_INTERNAL,
				"the subscription was cancelled: %s",
				rb_strerror(res->err));
		}
		for (size_t k = 0; k < res->events_n; k++) {
			const struct rb_event *ev = &res->events[k];
			if (ev->type != RB_EVENT_PUT ||
			    !rb_message_key_of(s->topic, s->topic_n, ev->kv.key,
			    ev->kv.key_len) ||
			    rb_message_decode(&ev->kv, &s->msgs[n]) != 0)
				continue;
			n++;
		}
	}
	b->msgs = s->msgs;
	b->msgs_n = n;
	s->position = rb_watch_position(s->w, s->wid);
	if (n) {
		s->last = s->msgs[n - 1].revision;
		s->to_commit = s->last;
	}
	return RB_OK;
}

/* Re-reads the floor now and then: a position the retention passed is an
 * error even while its messages are still in the event history. */
static int floor_check(rb_sub *s, char *eb, size_t el)
{
	if (mono_ms() < s->next_floor_ms)
		return RB_OK;
	rb_rev floor;
	if (read_number(s->c, s->fkey, s->fkey_n, &floor) != 0)
		return RB_OK;        /* no member: the watch will say so */
	s->next_floor_ms = mono_ms() + RB_SUB_FLOOR_REFRESH_MS;
	if (s->position > 0 && s->position <= floor) {
		s->broken = true;
		return behind_retention(s, s->position, floor, eb, el);
	}
	return RB_OK;
}

/* Waits while standby; RB_OK with !s->started = still standby. */
static int standby_turn(rb_sub *s, int64_t deadline, struct rb_sub_batch *b,
	char *eb, size_t el)
{
	int rc = try_own(s, eb, el);
	if (rc || s->started)
		return rc;
	b->standby = true;
	int64_t left = deadline - mono_ms();
	sleep_ms(left < RB_SUB_STANDBY_RETRY_MS ? (left > 0 ? left : 0) :
		RB_SUB_STANDBY_RETRY_MS);
	return RB_OK;
}

int rb_sub_next(rb_sub *s, int64_t timeout_ms, struct rb_sub_batch *b,
	char *eb, size_t el)
{
	memset(b, 0, sizeof(*b));
	rb_resp_free(&s->batch_resp);
	if (s->broken)
		return err_set(eb, el, RB_ERR_INVALID, "the subscription ended");
	int rc;
	if (s->o.auto_commit && s->to_commit > s->committed &&
	    (rc = rb_sub_commit(s, s->to_commit)) != 0)
		return err_set(eb, el, rc, "commit: %s", rb_strerror(rc));
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : mono_ms() + timeout_ms;
	do {
		if (s->grouped) {
			keepalive(s);
			if (!s->started) {
				if ((rc = standby_turn(s, deadline, b, eb, el)))
					return rc;
				if (!s->started)
					continue;
				b->standby = false;
			}
		}
		if ((rc = floor_check(s, eb, el)))
			return rc;
		int64_t wait = deadline == INT64_MAX ? RB_SUB_FLOOR_REFRESH_MS :
			deadline - mono_ms();
		if (wait > RB_SUB_FLOOR_REFRESH_MS)
			wait = RB_SUB_FLOOR_REFRESH_MS;
		if (s->grouped && wait > keepalive_every_ms(s))
			wait = keepalive_every_ms(s);
		rc = rb_watch_next(s->w, wait < 0 ? 0 : wait, &s->batch_resp);
		if (rc)
			return err_set(eb, el, rc, "%s", s->batch_resp.msg ?
				s->batch_resp.msg : rb_strerror(rc));
		if ((rc = take_events(s, b, eb, el)) || b->msgs_n)
			return rc;
		rb_resp_free(&s->batch_resp);
	} while (mono_ms() < deadline);
	return RB_OK;
}

rb_rev rb_sub_position(const rb_sub *s) { return s->started ? s->position : 0; }
rb_rev rb_sub_last(const rb_sub *s) { return s->last; }
rb_rev rb_sub_committed(const rb_sub *s) { return s->committed; }

void rb_sub_close(rb_sub *s)
{
	if (!s)
		return;
	if (s->lease) {          /* hand the group over at once */
		struct rb_resp r = { 0 };
		rb_lease_revoke(s->c, s->lease, &r);
		rb_resp_free(&r);
	}
	rb_watch_close(s->w);
	rb_resp_free(&s->batch_resp);
	free(s->msgs);
	free(s->topic);
	free(s->topic_end);
	free(s);
}
