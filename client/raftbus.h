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
 * progress on it. */
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

/* The number of endpoints and the i-th URL (borrowed from the handle). */
size_t rb_client_endpoints_n(const rb_client *c);
const char *rb_client_endpoint(const rb_client *c, size_t i);

/* Writes the etcd prefix range end of key into buf (at least key_len bytes,
 * or 1) and returns its length: the last byte below 0xff incremented and
 * trailing 0xff dropped; empty or all-0xff gives "\0" (every key). */
size_t rb_prefix_end(const uint8_t *key, size_t key_len, uint8_t *buf);

/* Is this op a write (must not be re-sent after its reply was lost)? */
bool rb_op_is_write(const struct rb_op *op);

#endif /* RB_RAFTBUS_H */
