/*
 * rbb_wl_pubsub.c - the `pubsub` workload of raftbus-bench (as
 * bench/nats-load's pubsub against JetStream): M subscribers of one fresh
 * topic, each a chain of watch polls of the topic prefix (what a
 * libraftbus subscriber is, docs/pubsub.md); once every subscriber is
 * polling, N publishers publish K messages (RB_OP_PUBLISH) through the
 * leader. The payload starts with the publisher's send time.
 * Measured: messages delivered per second over all subscribers (M*K over
 * first publish to last delivery) and each delivery's latency. Checked:
 * every subscriber got the K messages' revisions, in order, once each.
 *
 * The topic ("/rbb/topic/<nonce>/") holds only the run's messages; it is
 * deleted at the end (best effort).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "rbb.h"

/* Room for "/rbb/topic/" + a nonce + "/". */
#define PUBSUB_TOPIC_BYTES_MAX 96u
/* The payload carries the 8-byte send time. */
#define PUBSUB_SIZE_BYTES_MIN 8u

struct pubsub_state {
	unsigned publishers;
	unsigned subscribers;
	unsigned size;
	unsigned per_poll;
	char topic[PUBSUB_TOPIC_BYTES_MAX];
	size_t topic_len;
};

static const struct rbb_flag pubsub_flags[] = {
	{ "--publishers", RBB_FLAG_UNSIGNED, offsetof(struct pubsub_state,
	  publishers), 1, RBB_CLIENTS_MAX, "publishers (default 1)" },
	{ "--subscribers", RBB_FLAG_UNSIGNED, offsetof(struct pubsub_state,
	  subscribers), 1, RBB_CLIENTS_MAX,
	  "subscribers, each gets every message (default 1)" },
	{ "--size", RBB_FLAG_UNSIGNED, offsetof(struct pubsub_state, size),
	  PUBSUB_SIZE_BYTES_MIN, RBB_VALUE_BYTES_MAX,
	  "payload bytes, at least 8: the send time (default 128)", "B" },
	{ "--per-poll", RBB_FLAG_UNSIGNED, offsetof(struct pubsub_state,
	  per_poll), 1, RB_WATCHES_PER_POLL_MAX, "subscribers of a "
	  "connection sharing one chain of polls, as nats.go's share a "
	  "connection; 1 = a chain each (default 10)", "N" },
	{ NULL, 0, 0, 0, 0, NULL },
};

static void pubsub_defaults(void *state)
{
	struct pubsub_state *p = state;
	p->publishers = 1;
	p->subscribers = 1;
	p->size = 128;
}

static int pubsub_validate(struct rbb_run *run)
{
	if (run->rate) {
		fprintf(stderr, "raftbus-bench pubsub: --rate is not supported "
		    "(writers send as fast as they are answered)\n");
		return -1;
	}
	if (run->total > RBB_FLOW_MESSAGES_MAX) {
		fprintf(stderr, "raftbus-bench pubsub: --total may be at most "
		    "%llu\n", (unsigned long long)RBB_FLOW_MESSAGES_MAX);
		return -1;
	}
	return 0;
}

static int pubsub_setup(struct rbb_run *run, struct rbb_phase *measured)
{
	(void)measured;
	struct pubsub_state *p = run->wl_state;
	char nonce[48];
	rbb_run_nonce(nonce, sizeof(nonce));
	int n = snprintf(p->topic, sizeof(p->topic), "/rbb/topic/r%s/", nonce);
	p->topic_len = (size_t)n;
	return 0;
}

static void publish_build(void *arg, uint64_t seq, uint8_t *buf,
    struct rb_op *op)
{
	(void)seq;
	const struct pubsub_state *p = arg;
	memset(buf + 8, 'm', p->size - 8);
	rbb_stamp_put(buf);
	op->type = RB_OP_PUBLISH;
	op->u.publish = (struct rb_publish){
	    .topic = (const uint8_t *)p->topic, .topic_len = p->topic_len,
	    .payload = buf, .payload_len = p->size };
}

static rb_rev publish_revision(const struct rb_resp *resp)
{
	return resp->body.type == RB_OP_PUBLISH ?
	    resp->body.u.publish.revision : 0;
}

static const struct rbb_writer_ops publish_ops = {
	.build = publish_build,
	.revision = publish_revision,
};

/* Only topic + 20 digits holding an envelope are messages. */
static int pubsub_stamp(const uint8_t *prefix, size_t prefix_len,
    const struct rb_event *ev, uint64_t *sent_ns)
{
	struct rb_message m;
	if (!rb_message_key_of(prefix, prefix_len, ev->kv.key,
	    ev->kv.key_len) || rb_message_decode(&ev->kv, &m) != 0 ||
	    m.payload_len < PUBSUB_SIZE_BYTES_MIN)
		return RB_ERR_PROTOCOL;
	*sent_ns = rbb_stamp_get(m.payload);
	return 0;
}

static int pubsub_run(struct rbb_run *run, struct rbb_stats *st)
{
	struct pubsub_state *p = run->wl_state;
	struct rbb_fanout fo = {
		.prefix = (const uint8_t *)p->topic,
		.prefix_len = p->topic_len,
		.readers = p->subscribers,
		.writers = p->publishers,
		.total = run->total,
		.buf_bytes = p->size,
		.wops = &publish_ops,
		.warg = p,
		.stamp = pubsub_stamp,
		.per_poll = p->per_poll,
	};
	return rbb_fanout_run(run, st, &fo);
}

/* The run's keys go: one revision, however many writes. */
static void pubsub_teardown(struct rbb_run *run)
{
	struct pubsub_state *p = run->wl_state;
	rbb_delete_prefix(run, (const uint8_t *)p->topic, p->topic_len);
}

const struct rbb_workload rbb_wl_pubsub = {
	.name = "pubsub",
	.args = "",
	.summary = "N publishers, M subscribers of one topic, --total "
	    "messages (deliveries/s, publish-to-delivery latency)",
	.flags = pubsub_flags,
	.state_bytes = sizeof(struct pubsub_state),
	.total_default = 10000,
	.defaults = pubsub_defaults,
	.validate = pubsub_validate,
	.setup = pubsub_setup,
	.teardown = pubsub_teardown,
	.run = pubsub_run,
	.unit = "messages",
};
