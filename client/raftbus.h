/*
 * raftbus.h - libraftbus, the blocking C client of a raftbus cluster.
 *
 * A client handle talks to one or more members over nng req/rep sockets
 * carrying msgpack (docs/protocol.md). It fails over between endpoints,
 * follows the "not leader" hint of a member, and bounds every call by the
 * command timeout. The same request/response structs describe the wire
 * messages: client/rb_wire.h encodes and decodes them for this library and
 * for the server.
 *
 * Threads: a handle is used by one thread at a time (it keeps one socket
 * per endpoint and the index of the preferred endpoint); use one handle per
 * thread, or serialise calls yourself. Different handles are independent.
 *
 * Ownership: every pointer passed IN is borrowed for the call only. Every
 * call returns its answer in a `struct rb_resp` owned by the caller, which
 * is released with ONE call to rb_resp_free() whatever the call returned;
 * all pointers inside it (keys, values, strings, arrays) stay valid until
 * then and no longer.
 *
 * Errors: calls return 0 or a negative enum rb_err, also stored in
 * resp->err, with resp->msg holding the message of that call (the server's
 * text, or a client-side explanation); rb_strerror() gives the generic text
 * of a code. Texts of server errors are etcd's.
 *
 * Retries (what is invisible to the caller):
 *   - "not leader" with a leader hint, "no leader", a member that cannot be
 *     reached or dialled: the request is retried on the hinted leader or the
 *     next endpoint, within the command timeout. Nothing was proposed in
 *     these cases, so retrying a write is safe.
 *   - A request that was sent but whose reply did not arrive (timeout, or
 *     the connection dropped while waiting): a read is retried on the next
 *     endpoint; a WRITE is not retried, and the call returns RB_ERR_TIMEOUT
 *     (timeout) or RB_ERR_UNAVAILABLE with a message saying the outcome is
 *     unknown: the write may or may not have been applied. Re-issue it only
 *     if it is idempotent for you, or read back first.
 */
#ifndef RB_RAFTBUS_H
#define RB_RAFTBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- domain integers ---------------------------------------------------- */

typedef int64_t rb_rev;      /* store revision */
typedef int64_t rb_lease_id; /* lease id; 0 = none */
typedef uint64_t rb_member_id;

/* ---- limits ------------------------------------------------------------- */

/* Largest request message (etcd's 1.5 MiB request limit plus framing);
 * requests above it are refused locally with RB_ERR_TOO_LARGE. */
#define RB_MSG_OVERHEAD_BYTES (512u * 1024u)
#define RB_MSG_BYTES_MAX (2u * 1024u * 1024u + RB_MSG_OVERHEAD_BYTES)
/* Largest reply message accepted (a big range). */
#define RB_REPLY_BYTES_MAX (256u * 1024u * 1024u)
/* Endpoints per client handle. */
#define RB_ENDPOINTS_MAX 64u
/* Longest endpoint URL. */
#define RB_URL_BYTES_MAX 512u
/* Default timeouts (etcdctl's). */
#define RB_DIAL_TIMEOUT_MS_DEFAULT 2000
#define RB_COMMAND_TIMEOUT_MS_DEFAULT 5000
/* Attempts of one call across endpoints and leader hints. */
#define RB_ATTEMPTS_MAX 16u
/* A client or watcher closed within this time of its first dial waits, up
 * to then, for its connections to finish their handshake: nng 1.5 leaks
 * the objects of a connection closed during its handshake (about 150
 * bytes each time). */
#define RB_DIAL_SETTLE_MS 100

/* ---- errors ------------------------------------------------------------- */

enum rb_err {
	RB_OK = 0,
	RB_ERR_NOT_LEADER = -1,       /* "etcdserver: not leader" (hint in resp) */
	RB_ERR_COMPACTED = -2,        /* "mvcc: required revision has been compacted" */
	RB_ERR_FUTURE_REV = -3,       /* "mvcc: required revision is a future revision" */
	RB_ERR_LEASE_NOT_FOUND = -4,  /* "etcdserver: requested lease not found" */
	RB_ERR_LEASE_EXISTS = -5,     /* "etcdserver: lease already exists" */
	RB_ERR_LEASE_TTL_TOO_LARGE = -6, /* "etcdserver: too large lease TTL" */
	RB_ERR_DUPLICATE_KEY = -7,    /* "etcdserver: duplicate key given in txn request" */
	RB_ERR_TOO_MANY_OPS = -8,     /* "etcdserver: too many operations in txn request" */
	RB_ERR_INVALID_TXN = -9,      /* other invalid txn (too deep, too many compares) */
	RB_ERR_KEY_NOT_FOUND = -10,   /* "etcdserver: key not found" */
	RB_ERR_EMPTY_KEY = -11,       /* "etcdserver: key is not provided" */
	RB_ERR_TOO_LARGE = -12,       /* "etcdserver: request is too large" */
	RB_ERR_NOSPACE = -13,         /* "etcdserver: mvcc: database space exceeded" */
	RB_ERR_TIMEOUT = -14,         /* "etcdserver: request timed out" */
	RB_ERR_NO_LEADER = -15,       /* "etcdserver: no leader" */
	RB_ERR_UNAVAILABLE = -16,     /* no endpoint reachable / connection failed */
	RB_ERR_BAD_REQUEST = -17,     /* malformed message, unknown op, wrong type */
	RB_ERR_INTERNAL = -18,        /* server-side failure */
	RB_ERR_INVALID = -19,         /* bad argument to a library call */
	RB_ERR_NOMEM = -20,           /* out of memory */
	RB_ERR_PROTOCOL = -21,        /* reply undecodable or of another version */
	RB_ERR_UNKNOWN = -22,         /* an error code this client does not know */
};
#define RB_ERR_MIN RB_ERR_UNKNOWN

/* Text for an rb_err (static; never NULL; unknown codes get a generic
 * text). Any thread. */
const char *rb_strerror(int err);

/* ---- requests ----------------------------------------------------------- */

/* Op codes: the numbers travel on the wire; never renumber. */
enum rb_op_type {
	RB_OP_NONE = 0,
	RB_OP_PUT = 1,
	RB_OP_RANGE = 2,
	RB_OP_DELETE_RANGE = 3,
	RB_OP_TXN = 4,
	RB_OP_COMPACT = 5,
	RB_OP_LEASE_GRANT = 6,
	RB_OP_LEASE_REVOKE = 7,
	RB_OP_LEASE_KEEPALIVE = 8,   /* one keep-alive round */
	RB_OP_LEASE_TIMETOLIVE = 9,
	RB_OP_LEASE_LEASES = 10,
	RB_OP_MEMBER_LIST = 11,
	RB_OP_ENDPOINT_STATUS = 12,
	RB_OP_HEALTH = 13,
	RB_OP_WATCH = 14,            /* one long poll of a watch stream */
	RB_OP_PUBLISH = 15,          /* append a message to a topic */
	/* 16..19: reserved (pub/sub) */
	/* 20..30: work queues (struct rb_queue_req / rb_queue_resp) */
	RB_OP_QUEUE_PUSH = 20,
	RB_OP_QUEUE_POP = 21,
	RB_OP_QUEUE_ACK = 22,
	RB_OP_QUEUE_NACK = 23,
	RB_OP_QUEUE_EXTEND = 24,
	RB_OP_QUEUE_STATS = 25,
	RB_OP_QUEUE_DLQ = 26,
	RB_OP_QUEUE_REDRIVE = 27,
	RB_OP_QUEUE_CONFIG = 28,
	RB_OP_QUEUE_PUSH_BATCH = 29,
	RB_OP_QUEUE_ACK_BATCH = 30,
	RB_OP_TYPE_COUNT             /* one past the last */
};

/* Key ranges follow etcd: range_end_len == 0 is the single key; range_end
 * "\0" (one zero byte) is every key >= key; otherwise [key, range_end).
 * rb_prefix_end() computes a prefix's range end. */

struct rb_put {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value;
	size_t value_len;
	rb_lease_id lease;
	bool prev_kv;
	bool ignore_value;
	bool ignore_lease;
};

/* Same numbers as etcd's RangeRequest enums. */
enum rb_sort_target {
	RB_SORT_KEY = 0, RB_SORT_VERSION = 1, RB_SORT_CREATE = 2,
	RB_SORT_MOD = 3, RB_SORT_VALUE = 4,
};
enum rb_sort_order { RB_SORT_NONE = 0, RB_SORT_ASCEND = 1, RB_SORT_DESCEND = 2 };

struct rb_range {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *range_end;
	size_t range_end_len;
	rb_rev revision;         /* 0 = current */
	int64_t limit;           /* 0 = no limit */
	uint8_t sort_target;     /* enum rb_sort_target */
	uint8_t sort_order;      /* enum rb_sort_order */
	bool keys_only;
	bool count_only;
	bool serializable;       /* served from the member's local state */
	rb_rev min_mod_revision;
	rb_rev max_mod_revision;
	rb_rev min_create_revision;
	rb_rev max_create_revision;
};

struct rb_delete_range {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *range_end;
	size_t range_end_len;
	bool prev_kv;
};

/* Same numbers as etcd's Compare enums. */
enum rb_cmp_target {
	RB_CMP_VERSION = 0, RB_CMP_CREATE = 1, RB_CMP_MOD = 2,
	RB_CMP_VALUE = 3, RB_CMP_LEASE = 4,
};
enum rb_cmp_result {
	RB_CMP_EQUAL = 0, RB_CMP_GREATER = 1, RB_CMP_LESS = 2, RB_CMP_NOT_EQUAL = 3,
};

struct rb_compare {
	uint8_t target;          /* enum rb_cmp_target */
	uint8_t result;          /* enum rb_cmp_result */
	const uint8_t *key;
	size_t key_len;
	const uint8_t *range_end;
	size_t range_end_len;
	int64_t number;          /* version / create / mod revision / lease */
	const uint8_t *value;    /* RB_CMP_VALUE */
	size_t value_len;
};

struct rb_op;

/* Branch ops may be PUT, RANGE, DELETE_RANGE and TXN (nested). */
struct rb_txn {
	const struct rb_compare *compares;
	size_t compares_n;
	const struct rb_op *success;
	size_t success_n;
	const struct rb_op *failure;
	size_t failure_n;
};

struct rb_compact {
	rb_rev revision;
	bool physical;           /* accepted, ignored: compaction is synchronous */
};

struct rb_lease_grant { int64_t ttl_s; rb_lease_id id; /* 0 = server picks */ };
struct rb_lease_id_req { rb_lease_id id; };   /* revoke, keepalive */
struct rb_lease_ttl_req { rb_lease_id id; bool keys; };

/* One watch of a poll: a key, a range or a prefix (range rules as above),
 * read from revision start_rev (>= 1; the library resolves "from now" to
 * the member's revision + 1 before its first poll). start_sub skips the
 * events of start_rev before that position within the revision: 0, or the
 * next_sub of a previous reply when a huge revision was split. */
struct rb_watch_spec {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *range_end;
	size_t range_end_len;
	rb_rev start_rev;
	uint32_t start_sub;
	bool prev_kv;
	bool no_put;             /* filter out PUT events */
	bool no_delete;          /* filter out DELETE events */
};

/* Watches polled per request. */
#define RB_WATCHES_PER_POLL_MAX 1024u
/* Longest wait of one poll; the server clamps larger values. */
#define RB_WATCH_WAIT_MS_MAX 60000
/* Events per poll reply (the server may return fewer; a revision is only
 * split when it alone is larger). */
#define RB_WATCH_EVENTS_MAX 1000u

/* One long poll (RB_OP_WATCH): answered as soon as any watch has events or
 * is cancelled, or after wait_ms with none (a progress reply: every watch
 * has seen everything up to header.revision). wait_ms 0 answers at once. */
struct rb_watch_req {
	const struct rb_watch_spec *watches;
	size_t watches_n;        /* 1..RB_WATCHES_PER_POLL_MAX */
	int64_t wait_ms;         /* 0..RB_WATCH_WAIT_MS_MAX */
	uint32_t events_max;     /* 0 = RB_WATCH_EVENTS_MAX */
};

/* A message to publish on a topic (RB_OP_PUBLISH). The server stores it
 * under the key `topic` + the 20-digit zero-padded revision that appends
 * it (docs/pubsub.md). msg_id (optional) makes the publish idempotent:
 * a second publish of the same id on the topic within the dedup window
 * returns the first one's revision and appends nothing. */
struct rb_header_kv {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value;
	size_t value_len;
};
struct rb_publish {
	const uint8_t *topic;    /* the topic prefix, e.g. "/orders/" */
	size_t topic_len;
	const uint8_t *payload;
	size_t payload_len;
	const struct rb_header_kv *headers;
	size_t headers_n;
	const uint8_t *msg_id;   /* NULL/0 = not idempotent */
	size_t msg_id_len;
};

/* ---- work queues: request and reply (RB_OP_QUEUE_*) ----------------------
 * A queue is named by a byte string (1..RB_QUEUE_NAME_BYTES_MAX). Every
 * queue op is one Raft entry applied by the store (docs/queues.md), except
 * STATS and DLQ, which read the leader's state. One request struct serves
 * every queue op; each op reads only the fields listed for it and the
 * others must be zero/NULL. */

/* Longest queue name, dedup id and consumer name (the server refuses
 * longer ones too). */
#define RB_QUEUE_NAME_BYTES_MAX 128u
#define RB_QUEUE_DEDUP_ID_BYTES_MAX 128u
#define RB_QUEUE_CONSUMER_BYTES_MAX 128u
/* Messages claimed by one pop / moved by one redrive. */
#define RB_QUEUE_POP_MAX 100u
/* Dead letters listed by one DLQ request. */
#define RB_QUEUE_DLQ_LIMIT_MAX 1000u
/* Longest server-side wait of one pop request (a longer wait_ms is
 * clamped); rb_queue_pop() splits longer waits into several requests. */
#define RB_QUEUE_WAIT_MS_MAX 60000
/* Longest visibility timeout (12 hours) and delay (one week). */
#define RB_QUEUE_VISIBILITY_MS_MAX (12ll * 3600 * 1000)
#define RB_QUEUE_DELAY_MS_MAX (7ll * 24 * 3600 * 1000)
/* Visibility timeout of a pop that gives 0. */
#define RB_QUEUE_VISIBILITY_MS_DEFAULT 30000
/* Largest max_deliveries of CONFIG. */
#define RB_QUEUE_DELIVERIES_MAX 1000u
/* Messages of one PUSH_BATCH, receipts of one ACK_BATCH. */
#define RB_QUEUE_BATCH_MAX 100u

/* One message of a PUSH_BATCH: the fields of a PUSH. */
struct rb_queue_push_item {
	const uint8_t *payload;
	size_t payload_len;
	int64_t delay_ms;             /* 0..RB_QUEUE_DELAY_MS_MAX */
	const uint8_t *dedup_id;      /* optional, as for PUSH */
	size_t dedup_id_len;
};

/* One receipt of an ACK_BATCH (the receipt of a popped message). */
struct rb_queue_receipt {
	const uint8_t *receipt;
	size_t receipt_len;
};

struct rb_queue_req {
	const uint8_t *queue;         /* every op */
	size_t queue_len;
	const uint8_t *payload;       /* PUSH */
	size_t payload_len;
	int64_t delay_ms;             /* PUSH, NACK: invisible for this long */
	const uint8_t *dedup_id;      /* PUSH: optional; a second push with the
	                                 same id within the dedup window returns
	                                 the first one's id (duplicate = true) */
	size_t dedup_id_len;
	const uint8_t *consumer;      /* POP: who claims (informational) */
	size_t consumer_len;
	int64_t visibility_ms;        /* POP (0 = default), EXTEND: the claim
	                                 lasts this long from now */
	uint32_t max_n;               /* POP: 1..RB_QUEUE_POP_MAX (0 = 1);
	                                 REDRIVE: how many (0 = RB_QUEUE_POP_MAX);
	                                 DLQ: how many listed (0 = 100) */
	int64_t wait_ms;              /* POP: long-poll wait when the queue is
	                                 empty, 0..RB_QUEUE_WAIT_MS_MAX */
	const uint8_t *receipt;       /* ACK, NACK, EXTEND: from the pop */
	size_t receipt_len;
	uint32_t max_deliveries;      /* CONFIG: 1..RB_QUEUE_DELIVERIES_MAX */
	const struct rb_queue_push_item *items;  /* PUSH_BATCH: the messages */
	size_t items_n;               /* PUSH_BATCH: 1..RB_QUEUE_BATCH_MAX */
	const struct rb_queue_receipt *receipts; /* ACK_BATCH */
	size_t receipts_n;            /* ACK_BATCH: 1..RB_QUEUE_BATCH_MAX */
};

/* A message as a pop, a push, a redrive or a DLQ listing returns it. */
struct rb_queue_msg {
	const uint8_t *id;            /* "<20-digit revision>-<4-digit index>" */
	size_t id_len;
	const uint8_t *payload;       /* POP, DLQ */
	size_t payload_len;
	uint32_t delivery_count;      /* deliveries so far (1 on the first pop) */
	const uint8_t *receipt;       /* POP: for ack/nack/extend */
	size_t receipt_len;
	int64_t enqueued_ms;          /* the leader's wall clock at the push
	                                 (0 for a duplicate push) */
	bool duplicate;               /* PUSH, PUSH_BATCH: the dedup id matched
	                                 an earlier push (id is that one's) */
};

/* The reply of every queue op. PUSH: msgs[0] is the message (its id), and
 * duplicate says a dedup id matched an earlier push. PUSH_BATCH: msgs[i]
 * answers items[i] (id, duplicate). POP: the claimed
 * messages (none when the queue stayed empty for the wait). REDRIVE: the
 * messages moved back. DLQ: the dead letters, oldest first. STATS: the
 * counters. ACK_BATCH: results. ACK/NACK/EXTEND/CONFIG: nothing. */
struct rb_queue_resp {
	struct rb_queue_msg *msgs;
	size_t msgs_n;
	bool duplicate;
	int *results;                 /* ACK_BATCH: results[i] answers
	                                 receipts[i]: 0 (acked) or
	                                 RB_ERR_KEY_NOT_FOUND (unknown or stale) */
	size_t results_n;
	uint64_t ready, inflight, delayed, dead;   /* STATS */
	int64_t oldest_ready_enqueued_ms;          /* STATS: 0 = none ready */
	int64_t oldest_ready_age_ms;   /* STATS: the serving member's clock
	                                  minus the above; 0 = none ready */
	uint32_t max_deliveries;                   /* STATS */
};

/* One request. Ops without a body (LEASE_LEASES, MEMBER_LIST,
 * ENDPOINT_STATUS, HEALTH) use no union member. */
struct rb_op {
	uint8_t type;            /* enum rb_op_type */
	union {
		struct rb_put put;
		struct rb_range range;
		struct rb_delete_range delete_range;
		struct rb_txn txn;
		struct rb_compact compact;
		struct rb_lease_grant lease_grant;
		struct rb_lease_id_req lease_revoke;
		struct rb_lease_id_req lease_keepalive;
		struct rb_lease_ttl_req lease_ttl;
		struct rb_watch_req watch;
		struct rb_publish publish;
		struct rb_queue_req queue;   /* RB_OP_QUEUE_* */
	} u;
};

/* ---- responses ---------------------------------------------------------- */

struct rb_bytes { const uint8_t *data; size_t len; };

struct rb_header {
	uint64_t cluster_id;
	rb_member_id member_id;
	rb_rev revision;
	uint64_t raft_term;
};

struct rb_kv {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value;
	size_t value_len;
	rb_rev create_revision;
	rb_rev mod_revision;
	int64_t version;
	rb_lease_id lease;
};

struct rb_put_resp { bool has_prev_kv; struct rb_kv prev_kv; };
struct rb_range_resp { struct rb_kv *kvs; size_t kvs_n; int64_t count; bool more; };
struct rb_delete_range_resp { int64_t deleted; struct rb_kv *prev_kvs; size_t prev_kvs_n; };
struct rb_op_resp;
struct rb_txn_resp {
	bool succeeded;
	struct rb_op_resp *responses;   /* one per op of the branch taken */
	size_t responses_n;
};
struct rb_lease_grant_resp { rb_lease_id id; int64_t ttl_s; };
struct rb_lease_keepalive_resp { rb_lease_id id; int64_t ttl_s; };
/* ttl_s is the remaining TTL, -1 when the lease does not exist (etcd). */
struct rb_lease_ttl_resp {
	rb_lease_id id;
	int64_t ttl_s;
	int64_t granted_ttl_s;
	struct rb_bytes *keys;   /* when asked */
	size_t keys_n;
};
struct rb_lease_leases_resp { rb_lease_id *ids; size_t ids_n; };
struct rb_member {
	rb_member_id id;
	const char *name;        /* "" while unstarted */
	const char **peer_urls;
	size_t peer_urls_n;
	const char **client_urls;
	size_t client_urls_n;
	bool is_learner;
};
struct rb_member_list_resp { struct rb_member *members; size_t members_n; };
struct rb_status_resp {
	const char *version;
	int64_t db_size;
	rb_member_id leader;
	uint64_t raft_index;
	uint64_t raft_term;
	uint64_t raft_applied_index;
	const char **errors;
	size_t errors_n;
	int64_t db_size_in_use;
	bool is_learner;
};
struct rb_health_resp { bool healthy; const char *reason; };

enum rb_event_type { RB_EVENT_PUT = 0, RB_EVENT_DELETE = 1 };

/* A DELETE event's kv has key and mod_revision set, the rest 0; prev_kv is
 * the key before the event (when asked and it existed), as in etcd. */
struct rb_event {
	uint8_t type;            /* enum rb_event_type */
	struct rb_kv kv;
	bool has_prev_kv;
	struct rb_kv prev_kv;
};

/* The answer for one watch of a poll (results[i] answers watches[i]).
 * events are in revision order; all events of one revision are in the same
 * result unless that revision alone exceeded the reply limit. next_rev /
 * next_sub say where the watch continues. canceled with err
 * RB_ERR_COMPACTED (compact_revision set) when start_rev was compacted. */
struct rb_watch_result {
	int64_t watch_id;        /* libraftbus: the id rb_watch_add returned */
	struct rb_event *events;
	size_t events_n;
	rb_rev next_rev;
	uint32_t next_sub;
	bool canceled;
	int err;                 /* with canceled: the reason (an rb_err) */
	rb_rev compact_revision;
	bool progress;           /* libraftbus: a progress notification */
};
struct rb_watch_resp { struct rb_watch_result *results; size_t results_n; };
struct rb_publish_resp { rb_rev revision; bool duplicate; };

struct rb_op_resp {
	uint8_t type;            /* enum rb_op_type; RB_OP_NONE on error */
	union {
		struct rb_put_resp put;
		struct rb_range_resp range;
		struct rb_delete_range_resp delete_range;
		struct rb_txn_resp txn;
		struct rb_lease_grant_resp lease_grant;
		struct rb_lease_keepalive_resp lease_keepalive;
		struct rb_lease_ttl_resp lease_ttl;
		struct rb_lease_leases_resp lease_leases;
		struct rb_member_list_resp member_list;
		struct rb_status_resp status;
		struct rb_health_resp health;
		struct rb_watch_resp watch;
		struct rb_publish_resp publish;
		struct rb_queue_resp queue;  /* RB_OP_QUEUE_* */
	} u;
};

struct rb_mem;               /* private: the allocations behind a response */

/* The answer to one call. Zero-initialise before the first call or let the
 * call do it; release with rb_resp_free(). On a reply from a server the
 * header is filled even when err != 0. */
struct rb_resp {
	int err;                 /* 0 or enum rb_err */
	const char *msg;         /* "" when err == 0; else the call's message */
	rb_member_id leader_id;  /* with RB_ERR_NOT_LEADER: the hinted leader (0 = unknown) */
	const char *leader_url;  /* its client URL, or "" */
	rb_rev compact_revision; /* with RB_ERR_COMPACTED */
	struct rb_header header;
	struct rb_op_resp body;  /* valid when err == 0 */
	const char *endpoint;    /* URL of the member that answered, or "" */
	struct rb_mem *mem;      /* private */
};

/* Frees everything the response owns and zeroes it. NULL-safe; a no-op on a
 * zeroed response. Any thread. */
void rb_resp_free(struct rb_resp *resp);

/* ---- the client --------------------------------------------------------- */

typedef struct rb_client rb_client;

struct rb_config {
	const char *const *endpoints;   /* URLs like tcp://127.0.0.1:5379 (copied) */
	size_t endpoints_n;             /* 1..RB_ENDPOINTS_MAX */
	int64_t dial_timeout_ms;        /* <= 0: RB_DIAL_TIMEOUT_MS_DEFAULT */
	int64_t command_timeout_ms;     /* <= 0: RB_COMMAND_TIMEOUT_MS_DEFAULT */
};

/* Creates a handle. Nothing is dialled until the first call. Errors:
 * RB_ERR_INVALID (no endpoints, too many, a URL too long or not an nng
 * URL), RB_ERR_NOMEM. */
int rb_client_open(const struct rb_config *cfg, rb_client **out);

/* Closes every socket and frees the handle. NULL-safe. No call may be in
 * progress on it. Within RB_DIAL_SETTLE_MS of the first call it may wait,
 * that long at most, for connections being set up. */
void rb_client_close(rb_client *c);

/* Sends one request (any op type) with failover and leader-hint following
 * as described at the top, and fills *resp (which must be zeroed or
 * freed). Returns resp->err. Errors: every rb_err;
 * RB_ERR_INVALID for a malformed op (nothing sent); RB_ERR_TOO_LARGE when
 * the encoded request exceeds RB_MSG_BYTES_MAX (nothing sent). */
int rb_do(rb_client *c, const struct rb_op *op, struct rb_resp *resp);

/* Sends one request to the endpoint `url` only (it need not be one of the
 * handle's endpoints): no failover, no hint following. For endpoint status
 * and health of each member. Same errors as rb_do(). */
int rb_do_at(rb_client *c, const char *url, const struct rb_op *op,
	struct rb_resp *resp);

/* Conveniences over rb_do(); requests are borrowed, same errors. */
int rb_put(rb_client *c, const struct rb_put *req, struct rb_resp *resp);
int rb_range(rb_client *c, const struct rb_range *req, struct rb_resp *resp);
int rb_delete_range(rb_client *c, const struct rb_delete_range *req,
	struct rb_resp *resp);
int rb_txn(rb_client *c, const struct rb_txn *req, struct rb_resp *resp);
int rb_compact(rb_client *c, rb_rev revision, struct rb_resp *resp);
int rb_lease_grant(rb_client *c, int64_t ttl_s, rb_lease_id id,
	struct rb_resp *resp);
int rb_lease_revoke(rb_client *c, rb_lease_id id, struct rb_resp *resp);
/* One keep-alive round trip; resp->body.u.lease_keepalive.ttl_s is the
 * renewed TTL (0 with RB_ERR_LEASE_NOT_FOUND when the lease is gone). */
int rb_lease_keepalive_once(rb_client *c, rb_lease_id id, struct rb_resp *resp);
int rb_lease_timetolive(rb_client *c, rb_lease_id id, bool keys,
	struct rb_resp *resp);
int rb_lease_leases(rb_client *c, struct rb_resp *resp);
int rb_member_list(rb_client *c, struct rb_resp *resp);

/* The handle's command timeout (ms). */
int64_t rb_client_command_timeout_ms(const rb_client *c);

/* The number of endpoints and the i-th URL (borrowed from the handle). */
size_t rb_client_endpoints_n(const rb_client *c);
const char *rb_client_endpoint(const rb_client *c, size_t i);

/* Writes the etcd prefix range end of key into buf (at least key_len bytes,
 * or 1) and returns its length: the last byte below 0xff incremented and
 * trailing 0xff dropped; empty or all-0xff gives "\0" (every key). */
size_t rb_prefix_end(const uint8_t *key, size_t key_len, uint8_t *buf);

/* Is this op a write (must not be re-sent after its reply was lost)? */
bool rb_op_is_write(const struct rb_op *op);

/* ---- watch streams ------------------------------------------------------- */

/* A watcher multiplexes many watches on one connection of its own (opened
 * from the client's configuration), served by long polls (RB_OP_WATCH). It
 * keeps, per watch, the next revision it wants; every poll asks for exactly
 * that, so events arrive in revision order with no gap and no duplicate,
 * across reconnects: when the serving member dies or stops answering, the
 * watcher polls another endpoint from the same position (the revision
 * numbering is the same on every member). A slow reader costs the server
 * nothing: it reads the event history when the watcher asks.
 *
 * Threads: one thread at a time per watcher; independent of the rb_client it
 * was opened from (which may be closed first). */
typedef struct rb_watcher rb_watcher;

/* What to watch. start_rev 0 = from now (the member's revision + 1 when the
 * watch is added); otherwise replay from start_rev. */
struct rb_watch_opts {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *range_end;     /* etcd range rules; see rb_prefix_end() */
	size_t range_end_len;
	rb_rev start_rev;
	bool prev_kv;
	bool no_put;
	bool no_delete;
	bool progress_notify;         /* periodic progress notifications */
};

/* Largest number of watches on one watcher. */
#define RB_WATCHER_WATCHES_MAX RB_WATCHES_PER_POLL_MAX
/* Default interval of progress notifications (etcd's default 10 min). */
#define RB_WATCH_PROGRESS_MS_DEFAULT 600000
/* Wait of one long poll. */
#define RB_WATCH_POLL_WAIT_MS 10000

/* Opens a watcher on c's endpoints (copied; c may be closed afterwards).
 * progress_ms: interval of progress notifications of watches that asked
 * for them (<= 0: RB_WATCH_PROGRESS_MS_DEFAULT). Errors: RB_ERR_NOMEM. */
int rb_watch_open(rb_client *c, int64_t progress_ms, rb_watcher **out);

/* Adds a watch; *id_out receives its id (>= 1). With start_rev 0 this
 * asks a member for its revision (so "from now" is a revision), which may
 * fail like any read. Errors: RB_ERR_INVALID (empty key, too many
 * watches, bad start_rev), RB_ERR_UNAVAILABLE, RB_ERR_TIMEOUT, ... */
int rb_watch_add(rb_watcher *w, const struct rb_watch_opts *o, int64_t *id_out);

/* Stops a watch (nothing more is reported for it). RB_ERR_INVALID when no
 * such watch. */
int rb_watch_cancel(rb_watcher *w, int64_t id);

/* Asks for a progress notification of every watch: the next rb_watch_next()
 * reports one (progress = true, header.revision) for each watch that is
 * caught up. */
void rb_watch_request_progress(rb_watcher *w);

/* Waits up to timeout_ms (< 0: forever) for something to report and fills
 * *resp (body.type RB_OP_WATCH, body.u.watch.results: one result per
 * watch with events, a cancellation or a progress notification; watch_id
 * set). Returns 0 with results_n == 0 on timeout. A cancelled watch is
 * removed. Member failures are retried on other endpoints within the
 * timeout; an error is returned only when no member answered for the
 * command timeout (the watch positions are kept: calling again resumes).
 * Release resp with rb_resp_free(). */
int rb_watch_next(rb_watcher *w, int64_t timeout_ms, struct rb_resp *resp);

/* The revision the watch continues from (next event wanted), or 0 when no
 * such watch. */
rb_rev rb_watch_position(const rb_watcher *w, int64_t id);

/* Number of watches open. */
size_t rb_watch_count(const rb_watcher *w);

/* Closes the watcher and its connections. NULL-safe. Within
 * RB_DIAL_SETTLE_MS of rb_watch_open it may wait, that long at most, for
 * connections being set up. */
void rb_watch_close(rb_watcher *w);

/* Publishes one message (RB_OP_PUBLISH); resp->body.u.publish.revision is
 * its revision (and position). Same errors as rb_do(). A publish with a
 * msg_id is safe to retry after an unknown outcome. */
int rb_publish(rb_client *c, const struct rb_publish *req, struct rb_resp *resp);

/* ---- work queues ---------------------------------------------------------
 * Thin calls over rb_do() with the RB_OP_QUEUE_* ops (docs/queues.md).
 * queue, consumer and dedup_id are NUL-terminated names; payloads and
 * receipts are byte strings (a receipt is the `receipt` of a popped
 * rb_queue_msg, used as given). Every call fills *resp as rb_do() does
 * (body.u.queue) and returns resp->err: RB_ERR_INVALID (nothing sent) for
 * a NULL or empty queue name, a name, id or consumer above its limit, a
 * negative delay, wait or visibility, or a count above its limit;
 * otherwise any error of rb_do(), plus, from the server:
 *   RB_ERR_KEY_NOT_FOUND  ack/nack/extend with a receipt that is unknown or
 *                         stale: the message was redelivered (its claim
 *                         expired), acked or dead-lettered since
 *   RB_ERR_BAD_REQUEST    a value the server refuses (its message says which)
 * Threads: as rb_do() (one thread at a time per client). */

/* Pushes one message; body.u.queue.msgs[0].id is its id. dedup_id (NULL =
 * none) makes the push idempotent within the server's dedup window, and
 * then it is retried after an unknown outcome like a read; without it a
 * push is a write that is never re-sent (see the top of this file). */
int rb_queue_push(rb_client *c, const char *queue, const void *payload,
	size_t len, int64_t delay_ms, const char *dedup_id, struct rb_resp *resp);

/* Claims up to max_n (1..RB_QUEUE_POP_MAX; 0 = 1) ready messages, FIFO,
 * for visibility_ms (0 = RB_QUEUE_VISIBILITY_MS_DEFAULT): until then no
 * other pop gets them; ack them before it ends. With wait_ms > 0 and
 * nothing ready, waits up to wait_ms for a message (a long poll; the
 * server is idle meanwhile) and returns as soon as one is claimed; waits
 * longer than the command timeout allows are split into several requests
 * so that each stays within it. msgs_n == 0 (not an error) when nothing
 * came. A pop is a write: after an unknown outcome it is not re-sent, and
 * whatever it claimed comes back after its visibility timeout. */
int rb_queue_pop(rb_client *c, const char *queue, const char *consumer,
	int64_t visibility_ms, uint32_t max_n, int64_t wait_ms, struct rb_resp *resp);

/* Acknowledges (deletes) a claimed message. */
int rb_queue_ack(rb_client *c, const char *queue, const uint8_t *receipt,
	size_t receipt_len, struct rb_resp *resp);
/* Gives a claimed message back: ready again after delay_ms (0 = at once).
 * Its delivery count stays (it was counted at the pop); a message that has
 * used up its deliveries goes to the dead-letter queue instead. */
int rb_queue_nack(rb_client *c, const char *queue, const uint8_t *receipt,
	size_t receipt_len, int64_t delay_ms, struct rb_resp *resp);
/* Extends a claim: it now lasts visibility_ms (> 0) from now. */
int rb_queue_extend(rb_client *c, const char *queue, const uint8_t *receipt,
	size_t receipt_len, int64_t visibility_ms, struct rb_resp *resp);
/* Counters of a queue (a read of the leader's state; an unknown queue has
 * all zero and max_deliveries the default). */
int rb_queue_stats(rb_client *c, const char *queue, struct rb_resp *resp);
/* Lists up to limit (0 = 100, at most RB_QUEUE_DLQ_LIMIT_MAX) dead letters,
 * oldest first (a read; the server stops early after 16 MiB of payloads,
 * returning at least one). */
int rb_queue_dlq(rb_client *c, const char *queue, uint32_t limit,
	struct rb_resp *resp);
/* Moves up to max_n (0 = RB_QUEUE_POP_MAX) dead letters back to ready;
 * msgs lists them. */
int rb_queue_redrive(rb_client *c, const char *queue, uint32_t max_n,
	struct rb_resp *resp);
/* Sets the queue's max deliveries (1..RB_QUEUE_DELIVERIES_MAX; default 5):
 * a message popped that many times without an ack is dead-lettered. */
int rb_queue_config(rb_client *c, const char *queue, uint32_t max_deliveries,
	struct rb_resp *resp);

/* Pushes items[0..n) (1..RB_QUEUE_BATCH_MAX; borrowed for the call) as one
 * Raft entry: one revision, all or nothing. On success
 * body.u.queue.msgs[i] answers items[i]: its id "<revision>-<i as 4
 * digits>", or, with duplicate set, the id of the earlier push with the
 * same dedup id (an earlier item of this batch counts). Errors besides
 * those above: RB_ERR_INVALID (n out of range, an item NULL payload with
 * a length, a negative or too long delay, a dedup id too long; nothing
 * sent), RB_ERR_TOO_LARGE (the payloads together, plus 512 bytes per
 * message, exceed the server's value limit, or the request exceeds
 * RB_MSG_BYTES_MAX), RB_ERR_NOSPACE: nothing of the batch was pushed. A
 * batch is a write: after an unknown outcome it is never re-sent, even
 * when every item has a dedup id (re-send it yourself then: the
 * duplicates get their first ids). */
int rb_queue_push_batch(rb_client *c, const char *queue,
	const struct rb_queue_push_item *items, size_t n, struct rb_resp *resp);

/* Acknowledges receipts[0..n) (1..RB_QUEUE_BATCH_MAX; borrowed) in one
 * Raft entry. Returns 0 when the request was applied, whatever the
 * receipts: body.u.queue.results[i] is 0 (acked) or RB_ERR_KEY_NOT_FOUND
 * (unknown or stale receipt: nothing changed for it); the good ones are
 * acked even if others are stale, and a batch of only stale receipts
 * changes nothing (no new revision). Errors: RB_ERR_INVALID (n out of
 * range, an empty receipt; nothing sent), and those of rb_do(). After an
 * unknown outcome it is not re-sent; sending it again is safe (an applied
 * ack then reads as stale). */
int rb_queue_ack_batch(rb_client *c, const char *queue,
	const struct rb_queue_receipt *receipts, size_t n, struct rb_resp *resp);

/* ---- pub/sub ------------------------------------------------------------- */

/* Topics, messages, consumer groups and retention (docs/pubsub.md). A
 * message of topic T is the key T + 20 zero-padded digits of the revision
 * that appended it; its value is the envelope
 * [1, publish_time_ms, [[header key, header value]...], payload] (msgpack).
 * Reserved key prefixes: "_rb/dedup/", "_rb/topic/", "_rb/topic-floor/",
 * "_rb/group/", "_rb/group-owner/". */

/* Headers per message. */
#define RB_MESSAGE_HEADERS_MAX 64u
/* Digits of the revision suffix of a message key. */
#define RB_MESSAGE_REV_DIGITS 20u
/* Envelope version written and understood. */
#define RB_MESSAGE_VERSION 1
/* Key prefixes of the pub/sub state. */
#define RB_PUBSUB_DEDUP_PREFIX "_rb/dedup/"
#define RB_PUBSUB_TOPIC_PREFIX "_rb/topic/"
#define RB_PUBSUB_FLOOR_PREFIX "_rb/topic-floor/"
#define RB_PUBSUB_GROUP_PREFIX "_rb/group/"
#define RB_PUBSUB_OWNER_PREFIX "_rb/group-owner/"
/* Longest topic: the store's key limit (480) minus the revision digits. */
#define RB_TOPIC_BYTES_MAX (480u - RB_MESSAGE_REV_DIGITS)
/* Longest consumer group name. */
#define RB_GROUP_BYTES_MAX 128u

/* A decoded message. Every pointer borrows from the rb_kv it was decoded
 * from (valid as long as that kv is). */
struct rb_message {
	rb_rev revision;         /* the message's revision (= its position) */
	const uint8_t *key;
	size_t key_len;
	int64_t publish_time_ms; /* the leader's wall clock (Unix ms) */
	struct rb_header_kv headers[RB_MESSAGE_HEADERS_MAX];
	size_t headers_n;
	const uint8_t *payload;
	size_t payload_len;
};

/* Encodes an envelope into a malloc'ed buffer (*out, *out_len; the caller
 * frees it). Any thread. Errors: RB_ERR_INVALID (headers_n >
 * RB_MESSAGE_HEADERS_MAX, NULL with a length), RB_ERR_NOMEM. */
int rb_message_encode(int64_t publish_time_ms, const struct rb_header_kv *headers,
	size_t headers_n, const uint8_t *payload, size_t payload_len,
	uint8_t **out, size_t *out_len);

/* Decodes the envelope in kv->value into *m (pointers into kv). The
 * revision is kv->mod_revision (a message is written once). Any thread.
 * Errors: RB_ERR_PROTOCOL (not an envelope of version 1: garbage, trailing
 * bytes, more than RB_MESSAGE_HEADERS_MAX headers). */
int rb_message_decode(const struct rb_kv *kv, struct rb_message *m);

/* Is key[0..key_len) a message key of topic: topic + exactly 20 digits? */
/* Is this a valid topic name: 1..RB_TOPIC_BYTES_MAX bytes, ending with
 * '/', and no path segment starting with a digit? Message keys are the
 * topic + 20 digits, so under these rules the keys [topic + "0",
 * topic + ":") are exactly the topic's messages: no other topic (not
 * "/orders2/" for "/orders", not a nested "/orders/7/") falls in that
 * range, and retention of one topic never deletes another's. Any thread. */
bool rb_topic_valid(const uint8_t *topic, size_t topic_len);

bool rb_message_key_of(const uint8_t *topic, size_t topic_len,
	const uint8_t *key, size_t key_len);

/* Where a subscription starts when it has no committed position. */
enum rb_sub_from {
	RB_SUB_FROM_EARLIEST = 0,  /* the oldest retained message */
	RB_SUB_FROM_LATEST = 1,    /* messages published from now on */
	RB_SUB_FROM_REVISION = 2,  /* from opts.from_rev */
};

struct rb_sub_opts {
	int from;                  /* enum rb_sub_from */
	rb_rev from_rev;           /* with RB_SUB_FROM_REVISION; >= 1 */
	bool auto_commit;          /* commit the previous batch at each
	                            * rb_sub_next() (after it was processed) */
	int64_t owner_ttl_s;       /* group owner lease; <= 0: default */
};

/* Default TTL of a group owner's lease: a consumer killed -9 is replaced
 * after about this long. */
#define RB_SUB_OWNER_TTL_S_DEFAULT 3
/* How often a standby consumer retries taking over (ms). */
#define RB_SUB_STANDBY_RETRY_MS 250
/* How often the retention floor is re-read while streaming (ms). */
#define RB_SUB_FLOOR_REFRESH_MS 1000

typedef struct rb_sub rb_sub;

/* Messages of one rb_sub_next(), in revision order. Valid until the next
 * rb_sub_next() or rb_sub_close() on the same subscriber. */
struct rb_sub_batch {
	const struct rb_message *msgs;
	size_t msgs_n;
	bool standby;              /* group: another consumer owns the group */
};

/* Subscribes to topic. group NULL (or "") = no group: the position lives
 * in the subscriber only. With a group, the subscriber becomes the one
 * active consumer of (group, topic) when it can take the owner key (a
 * lease-backed key, kept alive by rb_sub_next), else it is a standby that
 * takes over when the owner's lease is gone; it then resumes from the
 * committed position + 1, or from opts->from when nothing was committed.
 * c is borrowed: it must stay open until rb_sub_close() and be used by one
 * thread at a time together with the subscriber. opts NULL = earliest,
 * explicit commits. A group consumer only takes ownership in rb_sub_next.
 * Errors: RB_ERR_INVALID (empty or too long topic or group, bad opts; or
 * a start position at or below the retention floor of the topic, with the
 * message "position N is behind the retention of topic T (earliest
 * retained: M); restart from earliest"), RB_ERR_COMPACTED (the start was
 * compacted), RB_ERR_NOMEM and every error of rb_do(). errbuf (may be
 * NULL) receives the message of a failure. */
int rb_sub_open(rb_client *c, const char *topic, const char *group,
	const struct rb_sub_opts *opts, rb_sub **out, char *errbuf, size_t errlen);

/* Waits up to timeout_ms (< 0: forever) for messages and fills *batch
 * (empty on timeout, and while standby). DELETE events and keys that are
 * not messages of the topic are skipped; so is a message whose value is
 * not an envelope. Errors: as rb_sub_open (behind retention, compacted:
 * the subscriber cannot continue; open a new one), or a member error after
 * the command timeout (the position is kept: call again). errbuf (may be
 * NULL) receives the message of a failure. */
int rb_sub_next(rb_sub *s, int64_t timeout_ms, struct rb_sub_batch *batch,
	char *errbuf, size_t errlen);

/* Commits `revision` as processed for the group (a no-op without a group):
 * a compare-and-swap that never moves the committed position backwards.
 * Errors: RB_ERR_INVALID (revision < 1), every error of rb_do(). */
int rb_sub_commit(rb_sub *s, rb_rev revision);

/* The revision the subscriber continues from (next message wanted; 0
 * while a group consumer has not started), the last revision returned
 * (0 = none), and the committed position as last written or read. */
rb_rev rb_sub_position(const rb_sub *s);
rb_rev rb_sub_last(const rb_sub *s);
rb_rev rb_sub_committed(const rb_sub *s);

/* Closes the subscriber and releases the group (revokes the owner lease so
 * that a standby takes over at once). Commits nothing. NULL-safe. */
void rb_sub_close(rb_sub *s);

/* Reads the committed position of (group, topic) into *rev (0 = none).
 * Errors: every error of rb_do(). */
int rb_group_committed(rb_client *c, const char *group, const char *topic,
	rb_rev *rev);

/* Reads the retention floor of topic into *floor (the revision of the
 * newest message removed by retention; 0 = none). Errors: every error of
 * rb_do(). */
int rb_topic_floor(rb_client *c, const char *topic, rb_rev *floor);

/* ---- locks and elections ------------------------------------------------ */

#include <signal.h>   /* sig_atomic_t */

/* etcd's concurrency recipes (docs/locks.md), built on txn + lease + watch
 * with no server support: a lock or an election NAME is the key prefix
 * NAME "/", each contender owns the key NAME "/" <lease id in hex> bound to
 * its lease, and the contender whose key has the lowest create revision
 * holds the lock / leads. A waiter watches only the next older key (no
 * thundering herd). The owner key's create revision is the fencing token:
 * it grows with every grant and a write fenced with it (rb_fenced_txn) is
 * refused once the key is gone. The prefix is NAME followed by "/", as in
 * etcd's NewMutex / NewElection, so the two interoperate key-wise.
 *
 * Errors: the calls below return 0, an rb_err, or one of these codes; the
 * message of the call is in resp->msg as everywhere (on success resp holds
 * the last reply, e.g. the grant check's, with its header). resp must be
 * zeroed or freed before the call and is released with rb_resp_free().
 * rb_cc_strerror() knows both sets. Threads: like rb_client (one thread at
 * a time per handle); sessions and observers as stated below. */
enum rb_cc_err {
	/* the owner key vanished (its lease expired or was revoked, or the
	 * key was deleted) before the lock / leadership was granted */
	RB_ERR_LOCK_LOST = -201,
	/* a fenced write was refused: the token is no longer the owner key's
	 * create revision (the lock was released, lost or re-taken) */
	RB_ERR_STALE_TOKEN = -202,
	/* proclaim / resign by a contender that is not the leader (etcd's
	 * "election: not leader") */
	RB_ERR_NOT_ELECTED = -203,
	/* rb_election_leader() of an election without a leader (etcd's
	 * "election: no leader") */
	RB_ERR_NO_ELECTION_LEADER = -204,
	/* the wait was cancelled through rb_cc_wait.cancel */
	RB_ERR_CANCELED = -205,
};

/* Text of an rb_cc_err or an rb_err (static, never NULL). Any thread. */
const char *rb_cc_strerror(int err);

/* Longest lock / election name; its owner key adds "/" and up to 16 hex
 * digits. */
#define RB_CC_NAME_BYTES_MAX 1024u
#define RB_CC_KEY_BYTES_MAX (RB_CC_NAME_BYTES_MAX + 17u)
/* Default lease TTLs of sessions: etcdctl lock's --ttl and etcd's
 * concurrency.NewSession (used by etcdctl elect). */
#define RB_LOCK_TTL_S_DEFAULT 10
#define RB_SESSION_TTL_S_DEFAULT 60

/* How long to wait for a lock or leadership: timeout_ms < 0 waits forever;
 * cancel, when set, is polled (every RB_CC_CANCEL_POLL_MS at most) and a
 * non-zero value stops the wait with RB_ERR_CANCELED; a signal handler may
 * set it. */
struct rb_cc_wait {
	int64_t timeout_ms;
	const volatile sig_atomic_t *cancel;
};
#define RB_CC_CANCEL_POLL_MS 200

/* An owned contender key: the lock held, or the campaign won. */
struct rb_cc_key {
	uint8_t key[RB_CC_KEY_BYTES_MAX];   /* NAME "/" <lease hex> */
	size_t key_len;
	rb_rev token;            /* the key's create revision (fencing token) */
	rb_rev revision;         /* store revision when granted (etcdctl's
	                            ETCD_LOCK_REV) */
	rb_lease_id lease;
};

/* Takes the lock `name` for `lease` (which must exist; the caller keeps it
 * alive, e.g. with an rb_session): creates the owner key if this lease has
 * none yet (a lease that already owns it takes it again, as in etcd), waits
 * for every older key to go, then checks in one txn that its key is still
 * there with the same create revision (so its lease was alive at the grant
 * - etcd issue 11456). On success *out describes the lock. On any failure
 * after the key was created (timeout, cancel, no member answering) the key
 * is deleted (best effort) so nobody waits behind it.
 * Errors: RB_ERR_INVALID (empty or too long name, lease 0), every rb_do()
 * error (RB_ERR_LEASE_NOT_FOUND for a dead lease), RB_ERR_LOCK_LOST,
 * RB_ERR_TIMEOUT (not granted within w->timeout_ms; w NULL = forever),
 * RB_ERR_CANCELED. Member failures while waiting are retried on other
 * members until the timeout. Uses one extra connection (a watcher) while
 * waiting. */
int rb_lock(rb_client *c, const uint8_t *name, size_t name_len,
	rb_lease_id lease, const struct rb_cc_wait *w, struct rb_cc_key *out,
	struct rb_resp *resp);

/* Releases the lock: deletes the owner key (k->key). Releasing a lock
 * already lost is not an error (the key is simply absent). Errors: those
 * of rb_do(). */
int rb_unlock(rb_client *c, const struct rb_cc_key *k, struct rb_resp *resp);

/* Runs `ops` (borrowed; PUT, RANGE, DELETE_RANGE, TXN) as one txn only
 * while the owner key `key` still has create revision `token`:
 * `if create_revision(key) == token then ops`. *resp is the txn's reply
 * (body.u.txn.responses answer ops). Errors: RB_ERR_STALE_TOKEN when the
 * compare failed (nothing was written), RB_ERR_INVALID (no ops, token <=
 * 0), every rb_do() error (a timeout leaves the outcome unknown, as for any
 * write). */
int rb_fenced_txn(rb_client *c, const uint8_t *key, size_t key_len,
	rb_rev token, const struct rb_op *ops, size_t ops_n, struct rb_resp *resp);
/* rb_fenced_txn() of one put. */
int rb_fenced_put(rb_client *c, const struct rb_cc_key *k,
	const struct rb_put *put, struct rb_resp *resp);

/* Campaigns for leadership of election `name` with `value` (borrowed):
 * the same waiting and grant check as rb_lock(); the owner key holds the
 * value (an existing key of the same lease gets the new value, as etcd's
 * Campaign does). Errors: those of rb_lock(). */
int rb_campaign(rb_client *c, const uint8_t *name, size_t name_len,
	rb_lease_id lease, const uint8_t *value, size_t value_len,
	const struct rb_cc_wait *w, struct rb_cc_key *out, struct rb_resp *resp);

/* The leader replaces its value (observers see the change). Errors:
 * RB_ERR_NOT_ELECTED when k no longer leads (key gone or re-created),
 * those of rb_do(). */
int rb_proclaim(rb_client *c, const struct rb_cc_key *k, const uint8_t *value,
	size_t value_len, struct rb_resp *resp);

/* Gives up leadership: deletes the key if it still is k's (compare on the
 * create revision). Resigning a leadership already lost is not an error.
 * Errors: those of rb_do(). */
int rb_resign(rb_client *c, const struct rb_cc_key *k, struct rb_resp *resp);

/* The current leader of election `name`: *leader points into resp (valid
 * until rb_resp_free) at the oldest key under the prefix. Errors:
 * RB_ERR_NO_ELECTION_LEADER, RB_ERR_INVALID, those of rb_do(). */
int rb_election_leader(rb_client *c, const uint8_t *name, size_t name_len,
	const struct rb_kv **leader, struct rb_resp *resp);

/* A stream of the leaders of one election, in order, each reported once
 * when it takes over and again whenever it proclaims (etcd's Observe). It
 * runs on a watcher of the election prefix plus a client of its own, both
 * opened from c's endpoints (c may be closed afterwards). Threads: one
 * thread at a time per observer. */
typedef struct rb_observer rb_observer;

/* What rb_observe_next() reports: the leader's key (key, value,
 * create_revision = its token, mod_revision, lease) in observer-owned
 * memory valid until the next rb_observe_next() or rb_observe_close(). */
struct rb_leader_event {
	struct rb_kv kv;
	rb_rev revision;         /* store revision at which it was leader */
};

/* Opens an observer; the first rb_observe_next() reports the current
 * leader if there is one. Errors: RB_ERR_INVALID, RB_ERR_NOMEM, those of
 * rb_do() (one range and one watch are set up here). */
int rb_observe_open(rb_client *c, const uint8_t *name, size_t name_len,
	rb_observer **out);

/* Waits up to timeout_ms (< 0: forever) for the next leader or proclaimed
 * value. Returns 0 with *got true and *ev filled, 0 with *got false on
 * timeout, or an error: RB_ERR_COMPACTED (the history it needed is gone;
 * reopen), RB_ERR_UNAVAILABLE / RB_ERR_TIMEOUT when no member answered for
 * the command timeout (calling again resumes where it stopped). */
int rb_observe_next(rb_observer *o, int64_t timeout_ms, bool *got,
	struct rb_leader_event *ev);

/* Closes the observer. NULL-safe. */
void rb_observe_close(rb_observer *o);

/* A session: a lease kept alive by a thread of its own (its own client,
 * one rb_lease_keepalive_once() every TTL/3), like etcd's
 * concurrency.Session. It expires when the server says the lease is gone
 * or when no renewal succeeded for a whole TTL (then the lease may have
 * expired: the holder must assume so). */
typedef struct rb_session rb_session;

/* Grants a lease of ttl_s seconds (<= 0: RB_SESSION_TTL_S_DEFAULT) on c
 * and starts keeping it alive. Errors: RB_ERR_NOMEM, those of
 * rb_lease_grant() (message in resp). */
int rb_session_open(rb_client *c, int64_t ttl_s, rb_session **out,
	struct rb_resp *resp);

rb_lease_id rb_session_lease(const rb_session *s);
/* The TTL the server granted (seconds). */
int64_t rb_session_ttl_s(const rb_session *s);

/* Has the session expired? Any thread. */
bool rb_session_expired(const rb_session *s);

/* Stops the keep-alives and, unless expired, revokes the lease (deleting
 * every key bound to it: locks held are released). NULL-safe. */
void rb_session_close(rb_session *s);

/* Stops the keep-alives without revoking: the lease runs out by its TTL
 * (what a crashed holder looks like). NULL-safe. */
void rb_session_abandon(rb_session *s);

#endif /* RB_RAFTBUS_H */
