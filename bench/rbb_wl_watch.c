/*
 * rbb_wl_watch.c - the `watch` workload of raftbus-bench (watch fan-out,
 * as etcd's `benchmark watch-latency` and bench/etcd-load's watch): N
 * watchers on one fresh prefix, each a chain of long polls on its own
 * context; once every watcher is polling, P putters make M puts under the
 * prefix through the leader, each value stamped with its send time.
 * Measured: events delivered per second (N*M over first put to last
 * delivery) and each event's delivery latency. Checked: every watcher got
 * the M puts' revisions, in order, once each (rbb_stream.c).
 *
 * Keys are PREFIX + 12 decimal digits of the put's number, so the prefix
 * ("/rbb/watch/<nonce>/") holds exactly the run's puts; it is deleted at
 * the end (best effort).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "rbb.h"

/* Digits of the put number in a key (RBB_FLOW_MESSAGES_MAX fits). */
#define WATCH_SEQ_DIGITS 12u
/* Room for "/rbb/watch/" + a nonce + "/". */
#define WATCH_PREFIX_BYTES_MAX 96u
/* The value carries the 8-byte send time. */
#define WATCH_VAL_BYTES_MIN 8u

_Static_assert(RBB_FLOW_MESSAGES_MAX <= 1000000000000ull,
    "put numbers must fit WATCH_SEQ_DIGITS digits");

struct watch_state {
	unsigned watchers;
	uint64_t put_total;
	unsigned val_size;
	unsigned putters;        /* 0 = --clients */
	unsigned per_poll;
	char prefix[WATCH_PREFIX_BYTES_MAX];
	size_t prefix_len;
};

static const struct rbb_flag watch_flags[] = {
	{ "--watchers", RBB_FLAG_UNSIGNED, offsetof(struct watch_state,
	  watchers), 1, RBB_CLIENTS_MAX, "watchers on the prefix (default 10)" },
	{ "--put-total", RBB_FLAG_U64, offsetof(struct watch_state,
	  put_total), 1, RBB_FLOW_MESSAGES_MAX,
	  "puts under the prefix (default 1000; --total is not used)" },
	{ "--val-size", RBB_FLAG_UNSIGNED, offsetof(struct watch_state,
	  val_size), WATCH_VAL_BYTES_MIN, RBB_VALUE_BYTES_MAX,
	  "value size in bytes, at least 8: the send time (default 8)", "B" },
	{ "--putters", RBB_FLAG_UNSIGNED, offsetof(struct watch_state,
	  putters), 1, RBB_CLIENTS_MAX,
	  "concurrent putters (default --clients)", "P" },
	{ "--per-poll", RBB_FLAG_UNSIGNED, offsetof(struct watch_state,
	  per_poll), 1, RB_WATCHES_PER_POLL_MAX, "watchers of a connection "
	  "sharing one chain of polls, as rb_watcher and clientv3 share a "
	  "stream; 1 = a chain each (default 10)", "N" },
	{ NULL, 0, 0, 0, 0, NULL },
};

static void watch_defaults(void *state)
{
	struct watch_state *w = state;
	w->watchers = 10;
	w->put_total = 1000;
	w->val_size = WATCH_VAL_BYTES_MIN;
}

static int watch_validate(struct rbb_run *run)
{
	if (run->rate) {
		fprintf(stderr, "raftbus-bench watch: --rate is not supported "
		    "(writers send as fast as they are answered)\n");
		return -1;
	}
	struct watch_state *w = run->wl_state;
	if (w->putters == 0)
		w->putters = run->clients;
	return 0;
}

static int watch_setup(struct rbb_run *run, struct rbb_phase *measured)
{
	(void)measured;
	struct watch_state *w = run->wl_state;
	char nonce[48];
	rbb_run_nonce(nonce, sizeof(nonce));
	int n = snprintf(w->prefix, sizeof(w->prefix), "/rbb/watch/%s/", nonce);
	w->prefix_len = (size_t)n;
	return 0;
}

/* buf: the key (prefix + digits), then the value. */
static void put_build(void *arg, uint64_t seq, uint8_t *buf, struct rb_op *op)
{
	const struct watch_state *w = arg;
	size_t key_len = w->prefix_len + WATCH_SEQ_DIGITS;
	memcpy(buf, w->prefix, w->prefix_len);
	rbb_key_format(buf + w->prefix_len, WATCH_SEQ_DIGITS, seq);
	uint8_t *value = buf + key_len;
	memset(value + 8, 'v', w->val_size - 8);
	rbb_stamp_put(value);
	op->type = RB_OP_PUT;
	op->u.put = (struct rb_put){ .key = buf, .key_len = key_len,
	    .value = value, .value_len = w->val_size };
}

/* A single put's revision is the header's (etcd's PutResponse too). */
static rb_rev put_revision(const struct rb_resp *resp)
{
	return resp->header.revision;
}

static const struct rbb_writer_ops put_ops = {
	.build = put_build,
	.revision = put_revision,
};

static int watch_stamp(const uint8_t *prefix, size_t prefix_len,
    const struct rb_event *ev, uint64_t *sent_ns)
{
	(void)prefix;
	const struct rb_kv *kv = &ev->kv;
	if (kv->key_len != prefix_len + WATCH_SEQ_DIGITS ||
	    kv->value_len < WATCH_VAL_BYTES_MIN)
		return RB_ERR_PROTOCOL;
	*sent_ns = rbb_stamp_get(kv->value);
	return 0;
}

static int watch_run(struct rbb_run *run, struct rbb_stats *st)
{
	struct watch_state *w = run->wl_state;
	struct rbb_fanout fo = {
		.prefix = (const uint8_t *)w->prefix,
		.prefix_len = w->prefix_len,
		.readers = w->watchers,
		.writers = w->putters,
		.total = w->put_total,
		.buf_bytes = w->prefix_len + WATCH_SEQ_DIGITS + w->val_size,
		.wops = &put_ops,
		.warg = w,
		.stamp = watch_stamp,
		.per_poll = w->per_poll,
	};
	return rbb_fanout_run(run, st, &fo);
}

/* The run's keys go: one revision, however many writes. */
static void watch_teardown(struct rbb_run *run)
{
	struct watch_state *w = run->wl_state;
	rbb_delete_prefix(run, (const uint8_t *)w->prefix, w->prefix_len);
}

const struct rbb_workload rbb_wl_watch = {
	.name = "watch",
	.args = "",
	.summary = "N watchers of one prefix, M puts under it (events "
	    "delivered/s, put-to-delivery latency)",
	.flags = watch_flags,
	.state_bytes = sizeof(struct watch_state),
	.defaults = watch_defaults,
	.validate = watch_validate,
	.setup = watch_setup,
	.teardown = watch_teardown,
	.run = watch_run,
	.unit = "events",
};
