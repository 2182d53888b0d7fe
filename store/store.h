/*
 * store.h - raftbus's replicated state machine: an MVCC revisioned key-value
 * store with etcd v3 semantics (revisions, history, compaction, leases,
 * transactions) on one LMDB environment.
 *
 * The broker applies committed Raft entries with st_apply(); every member
 * that applies the same entries in the same order ends with the same state
 * and produced the same replies: nothing here reads a clock, draws a random
 * number or depends on LMDB's page layout (the quota is checked against a
 * logical size kept in the store's own metadata).
 *
 * Threads: one writer thread calls st_apply(), st_restore_file() and
 * st_close(); st_snapshot_*() runs on the writer or on one other thread. Read functions (st_range(), st_events(),
 * st_lease_list(), st_lease_ttl(), st_status(), st_queue_stats(),
 * st_queue_dlq()) may be called from any number
 * of threads at the same time as the writer; each runs on its own LMDB read
 * transaction and sees one committed state. st_restore_file() and st_close()
 * must not run concurrently with any other call.
 *
 * Ownership: every byte string passed IN (keys, values, ops) is borrowed for
 * the duration of the call only. Everything a call hands OUT lives in a
 * struct st_result owned by the caller, released with ONE call to
 * st_result_free(); pointers into it stay valid until then (they do not point
 * into LMDB memory).
 *
 * Errors: functions return 0 or a negative enum st_err; st_strerror() gives
 * the text (etcd's text where etcd has one). LMDB codes never leak out.
 */
#ifndef ST_STORE_H
#define ST_STORE_H
/* API FROZEN */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- domain integers ---------------------------------------------------- */

typedef int64_t st_rev;      /* store revision; an empty store is at 1 */
typedef int64_t st_lease_id; /* lease id; 0 = no lease */
typedef uint64_t st_index;   /* Raft log index of an applied entry */

/* ---- limits (all inclusive maxima) -------------------------------------- */

/* Longest key. LMDB's compiled key limit is 511 bytes and the history index
 * appends 8 bytes of revision to every key, so keys stay well inside it. */
#define ST_KEY_BYTES_MAX 480u
/* Default for st_options.value_bytes_max (etcd's 1.5 MiB request limit). */
#define ST_VALUE_BYTES_MAX_DEFAULT (1536u * 1024u)
/* Hard ceiling for st_options.value_bytes_max. */
#define ST_VALUE_BYTES_MAX_LIMIT (64u * 1024u * 1024u)
/* etcd's --max-txn-ops (etcd 3.4 checkTxnRequest): a txn's count is
 * max(compares, success ops, failure ops) and must be <= its budget, which
 * is ST_TXN_OPS_MAX for a top-level txn; a nested txn's budget is its
 * parent's budget minus the parent's count (so [range, txn{126 ops}] is
 * fine and [range, txn{127 ops}] is ST_ERR_TOO_MANY_OPS). */
#define ST_TXN_OPS_MAX 128u
/* Compares in one txn: the same limit (compares count against the budget
 * above); kept as a name for the API's sake. */
#define ST_TXN_COMPARES_MAX ST_TXN_OPS_MAX
/* Nesting depth of txns inside txns (a top-level txn is depth 1). */
#define ST_TXN_DEPTH_MAX 8u
/* Largest encoded op accepted by st_op_decode(). */
#define ST_OP_ENCODED_BYTES_MAX (80u * 1024u * 1024u)
/* Entries in one st_apply() call. */
#define ST_APPLY_ENTRIES_MAX 65536u
/* Default quota on the logical size (etcd's --quota-backend-bytes). */
#define ST_QUOTA_BYTES_DEFAULT (2ull * 1024u * 1024u * 1024u)
/* Default initial LMDB map size; grown by doubling on demand. */
#define ST_MAP_BYTES_DEFAULT (64ull * 1024u * 1024u)
/* Largest lease TTL (etcd's MaxLeaseTTL). */
#define ST_LEASE_TTL_S_MAX 9000000000ll
/* Default and maximum events per st_events() call. */
#define ST_EVENTS_MAX_DEFAULT 1000u
#define ST_EVENTS_MAX_LIMIT 100000u
/* Default bytes (keys + values + prev values) per st_events() call. */
#define ST_EVENTS_BYTES_MAX_DEFAULT (4u * 1024u * 1024u)
/* Keys returned by st_lease_ttl() with keys requested. */
#define ST_LEASE_KEYS_MAX 100000u

/* Logical size accounting (what the quota is checked against): every
 * retained history record (a PUT version or a DELETE tombstone) costs
 * key_len + value_len + ST_RECORD_BYTES_OVERHEAD; every lease costs
 * ST_LEASE_BYTES_OVERHEAD. A put is refused (ST_ERR_NOSPACE) when
 * size + its cost would exceed the quota. */
#define ST_RECORD_BYTES_OVERHEAD 48u
#define ST_LEASE_BYTES_OVERHEAD 32u

/* ---- errors ------------------------------------------------------------- */

enum st_err {
	ST_OK = 0,
	ST_ERR_INVALID = -1,          /* malformed request (bad enum value, NULL pointer, ...) */
	ST_ERR_EMPTY_KEY = -2,        /* "etcdserver: key is not provided" */
	ST_ERR_KEY_TOO_LONG = -3,     /* key longer than ST_KEY_BYTES_MAX */
	ST_ERR_TOO_LARGE = -4,        /* "etcdserver: request is too large" (value) */
	ST_ERR_KEY_NOT_FOUND = -5,    /* "etcdserver: key not found" (ignore_value/lease) */
	ST_ERR_LEASE_NOT_FOUND = -6,  /* "etcdserver: requested lease not found" */
	ST_ERR_LEASE_EXISTS = -7,     /* "etcdserver: lease already exists" */
	ST_ERR_LEASE_TTL_TOO_LARGE = -8, /* "etcdserver: too large lease TTL" */
	ST_ERR_COMPACTED = -9,        /* "etcdserver: mvcc: required revision has been compacted" */
	ST_ERR_FUTURE_REV = -10,      /* "etcdserver: mvcc: required revision is a future revision" */
	ST_ERR_TOO_MANY_OPS = -11,    /* "etcdserver: too many operations in txn request"
	                               * (ops or compares over the budget) */
	ST_ERR_DUPLICATE_KEY = -12,   /* "etcdserver: duplicate key given in txn request" */
	ST_ERR_NOSPACE = -13,         /* "etcdserver: mvcc: database space exceeded" */
	ST_ERR_UNKNOWN_OP = -14,      /* op type not known to this version */
	ST_ERR_DECODE = -15,          /* encoded op is garbage, truncated or mistyped */
	ST_ERR_ALREADY_APPLIED = -16, /* every entry's index was <= the applied index */
	ST_ERR_NOMEM = -17,           /* out of memory (nothing was committed) */
	ST_ERR_IO = -18,              /* I/O error from LMDB/the OS: stop the member */
	ST_ERR_DISK_FULL = -19,       /* ENOSPC or map cannot grow: stop the member */
	ST_ERR_CORRUPT = -20,         /* store or snapshot file is not a valid store */
	ST_ERR_TOO_MANY_COMPARES = -21, /* no longer returned (too many compares is
	                               * ST_ERR_TOO_MANY_OPS, as in etcd); kept so
	                               * that the numbers stay stable */
	ST_ERR_TXN_TOO_DEEP = -22,    /* txns nested deeper than ST_TXN_DEPTH_MAX */
	ST_ERR_VALUE_PROVIDED = -23,  /* "etcdserver: value is provided" (put
	                               * ignore_value with a value) */
	ST_ERR_LEASE_PROVIDED = -24,  /* "etcdserver: lease is provided" (put
	                               * ignore_lease with a lease) */
	ST_ERR_QUEUE_RECEIPT = -25,   /* queue receipt unknown or stale: the
	                               * message was redelivered, acked,
	                               * requeued or dead-lettered */
	ST_ERR_QUEUE_INVALID = -26,   /* bad queue request (name, visibility,
	                               * max_n, ...) or a queue whose keys were
	                               * overwritten by plain writes */
};

/* Text for an st_err (static storage; never NULL; unknown codes get a
 * generic text). Any thread. */
const char *st_strerror(int err);

/* ---- operations (input; all pointers borrowed for the call) ------------- */

/* Op types. Values are part of the Raft log format: never renumber; new op
 * types (queue/lock/election) take new numbers. */
enum st_op_type {
	ST_OP_NOOP = 0,          /* advances the applied index only */
	ST_OP_PUT = 1,
	ST_OP_RANGE = 2,         /* a read; allowed in st_apply (linearized) and txns */
	ST_OP_DELETE_RANGE = 3,
	ST_OP_TXN = 4,
	ST_OP_COMPACT = 5,
	ST_OP_LEASE_GRANT = 6,
	ST_OP_LEASE_REVOKE = 7,
	ST_OP_QUEUE = 8,         /* work queue command (struct st_queue_op) */
	ST_OP_TYPE_COUNT         /* one past the last; not an op */
};

/* Key ranges, everywhere (etcd rules):
 *   range_end_len == 0                 -> the single key `key`
 *   range_end == "\0" (one zero byte)  -> every key >= key
 *   otherwise                          -> keys in [key, range_end)
 * key "\0" with range_end "\0" therefore means every key. A prefix P is
 * key = P, range_end = P with its last byte + 1 (see st_prefix_end()).
 * A range_end <= key (other than "\0") is an empty range, as in etcd. */

/* A put outside a txn checks its lease (must exist unless 0) before the
 * key that ignore_* needs, like etcd 3.4's Put; inside a txn see st_txn. */
struct st_put {
	const uint8_t *key;
	size_t key_len;          /* 1..ST_KEY_BYTES_MAX */
	const uint8_t *value;
	size_t value_len;        /* 0..value_bytes_max */
	st_lease_id lease;       /* 0 = detach from any lease; any other id
	                          * (negative too) must name a granted lease */
	bool prev_kv;            /* return the previous kv */
	bool ignore_value;       /* keep the current value (key must exist);
	                          * with value_len > 0: ST_ERR_VALUE_PROVIDED */
	bool ignore_lease;       /* keep the current lease (key must exist);
	                          * with lease != 0: ST_ERR_LEASE_PROVIDED */
	bool append_rev;         /* pub/sub: the key written is `key` followed by
	                          * the revision being applied as 20 decimal
	                          * digits (ST_APPEND_REV_DIGITS, zero-padded);
	                          * key_len + 20 <= ST_KEY_BYTES_MAX (else
	                          * ST_ERR_KEY_TOO_LONG); not with ignore_*
	                          * (ST_ERR_INVALID). Events and prev_kv carry
	                          * the full key. Two append puts of one key in
	                          * one txn are ST_ERR_DUPLICATE_KEY. */
};
/* Digits an append_rev put adds to its key. */
#define ST_APPEND_REV_DIGITS 20u

enum st_sort_target {
	ST_SORT_KEY = 0, ST_SORT_VERSION = 1, ST_SORT_CREATE = 2,
	ST_SORT_MOD = 3, ST_SORT_VALUE = 4,
};
enum st_sort_order { ST_SORT_NONE = 0, ST_SORT_ASCEND = 1, ST_SORT_DESCEND = 2 };

/* etcd 3.4 apply.go semantics: if sort_order != NONE or any min/max filter is
 * nonzero, all keys are fetched, filtered, sorted, then cut to limit (more =
 * cut). Otherwise limit+1 keys are fetched in key order to compute `more`,
 * and if sort_target != KEY they are then sorted ascending. Ties in a sort
 * keep key order. count = keys in the range at that revision, ignoring limit
 * and the min/max filters. Negative numbers are accepted as etcd accepts
 * them: revision <= 0 reads the current revision (but see st_txn for a
 * negative revision inside a txn), limit <= 0 means no limit, and a nonzero
 * filter is a plain comparison (mod < min_mod_revision drops a kv, so a
 * negative minimum drops nothing; mod > max_mod_revision drops it, so a
 * negative maximum drops everything; the same for create). */
struct st_range {
	const uint8_t *key;
	size_t key_len;          /* 1..ST_KEY_BYTES_MAX */
	const uint8_t *range_end;
	size_t range_end_len;    /* 0..ST_KEY_BYTES_MAX */
	st_rev revision;         /* <= 0 = current */
	int64_t limit;           /* <= 0 = no limit */
	uint8_t sort_target;     /* enum st_sort_target (else ST_ERR_INVALID) */
	uint8_t sort_order;      /* enum st_sort_order (else ST_ERR_INVALID) */
	bool keys_only;          /* values returned empty */
	bool count_only;         /* no kvs, only count */
	st_rev min_mod_revision; /* 0 = no filter */
	st_rev max_mod_revision;
	st_rev min_create_revision;
	st_rev max_create_revision;
};

struct st_delete_range {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *range_end;
	size_t range_end_len;
	bool prev_kv;            /* return the deleted kvs */
};

enum st_cmp_target {
	ST_CMP_VERSION = 0, ST_CMP_CREATE = 1, ST_CMP_MOD = 2,
	ST_CMP_VALUE = 3, ST_CMP_LEASE = 4,
};
enum st_cmp_result {
	ST_CMP_EQUAL = 0, ST_CMP_GREATER = 1, ST_CMP_LESS = 2, ST_CMP_NOT_EQUAL = 3,
};

/* A compare holds when EVERY key of its range satisfies it. If the range has
 * no key, VERSION/CREATE/MOD/LEASE compare against 0 and VALUE is false.
 * Compares are evaluated against the state before the txn (nested txns'
 * compares too, like etcd 3.4's compareToPath). */
struct st_compare {
	uint8_t target;          /* enum st_cmp_target */
	uint8_t result;          /* enum st_cmp_result */
	const uint8_t *key;
	size_t key_len;
	const uint8_t *range_end;
	size_t range_end_len;
	int64_t number;          /* version / create / mod revision / lease id */
	const uint8_t *value;    /* for ST_CMP_VALUE (bytewise compare) */
	size_t value_len;
};

struct st_op;

/* A txn: if all compares hold, run `success`, else `failure`. Allowed ops:
 * PUT, RANGE, DELETE_RANGE, TXN. Steps, in etcd 3.4's order (the first
 * error fails the whole txn with nothing changed):
 *  1. Shape: the op budget (ST_TXN_OPS_MAX), nesting (ST_TXN_DEPTH_MAX),
 *     then compares, success ops and failure ops are validated in order.
 *  2. Duplicate keys (etcd's checkIntervals), per branch, nested txns
 *     included: ST_ERR_DUPLICATE_KEY when a put names a key already put on
 *     the same path (the two branches of one nested txn are exclusive), or
 *     a key inside a delete of its own level or of an EARLIER sibling
 *     nested txn. A delete whose range_end is "\0" never conflicts (etcd
 *     builds the empty interval [key, "\0") for it), and a nested txn's
 *     put is never compared with a LATER sibling's delete; so one key can
 *     be written more than once in one txn (see below).
 *  3. Compares along the taken path, all against the state before the txn.
 *  4. Every put of the taken path, in order, against the state before the
 *     txn: the key must exist if ignore_* is set (ST_ERR_KEY_NOT_FOUND),
 *     then the lease must exist (ST_ERR_LEASE_NOT_FOUND).
 *  5. Every range of the taken path, in order: revision 0 is fine; else
 *     revision > the revision before the txn is ST_ERR_FUTURE_REV, and
 *     revision < etcd's compactMainRev (the compact revision, or -1 before
 *     the first compaction: see st_compact) is ST_ERR_COMPACTED, so a
 *     negative revision fails once the store was ever compacted.
 *  6. The ops run in order; a range with revision 0 sees the txn's earlier
 *     writes. All writes share one revision; a txn that writes nothing does
 *     not bump it. A put with ignore_* of a key that an earlier "\0"-ended
 *     delete of the same txn removed fails here with ST_ERR_KEY_NOT_FOUND
 *     and nothing changed (etcd 3.4.23 itself panics on that txn).
 * A key written more than once in one revision (put then delete, delete
 * then put) gives one event per write, in op order (st_events), and its
 * state at that revision is its last write. */
struct st_txn {
	const struct st_compare *compares;
	size_t compares_n;       /* 0..ST_TXN_COMPARES_MAX */
	const struct st_op *success;
	size_t success_n;        /* 0..ST_TXN_OPS_MAX */
	const struct st_op *failure;
	size_t failure_n;        /* 0..ST_TXN_OPS_MAX */
};

/* Drop history below `revision`. Keeps, per key, the newest version at or
 * below `revision` unless it is a tombstone. Errors: ST_ERR_COMPACTED when
 * revision <= etcd's compactMainRev, which is -1 until the first successful
 * compaction and the compact revision after it (so on a never-compacted
 * store compact(0) succeeds once, changing nothing but that, and
 * compact(-1) is ST_ERR_COMPACTED); ST_ERR_FUTURE_REV when above the
 * current revision. Does not bump the revision. The whole compaction is
 * one LMDB transaction: compacting hundreds of thousands of records at
 * once can exceed LMDB's dirty-page limit (ST_ERR_IO); compact in steps. */
struct st_compact { st_rev revision; };

/* id 0 = choose one: the smallest unused id >= a counter kept in the store
 * (deterministic; always > 0); any other id, negative ones too, is used as
 * given. ttl_s <= ST_LEASE_TTL_S_MAX (else ST_ERR_LEASE_TTL_TOO_LARGE); any
 * smaller value, 0 and negative included, is accepted and recorded as
 * given: etcd's server raises a TTL below its minimum (2 s with default
 * election settings) BEFORE proposing, so the broker must do that too
 * before it builds this op. The store keeps the granted TTL only: expiry is
 * decided outside and applied as a revoke. */
struct st_lease_grant { st_lease_id id; int64_t ttl_s; };

/* Deletes every key attached to the lease in ONE revision (none: no bump),
 * then the lease. Any id; one not granted is ST_ERR_LEASE_NOT_FOUND. */
struct st_lease_revoke { st_lease_id id; };

/* ---- work queues (ops) -------------------------------------------------
 * A queue is a set of ordinary MVCC keys under ST_QUEUE_PREFIX + NAME + "/"
 * (read, watched and replayed like any key; every write goes through the
 * normal put/delete path, so history, events, versions and the quota
 * apply). One queue op is one entry and one revision, whatever it moves.
 *   m/<id>                    message record (binary, see queue.c)
 *   r/<seq %020>              ready queue -> <id>; seq is a per-queue
 *                             counter: pop takes the lowest seq (FIFO by
 *                             push; a requeued message goes to the back)
 *   d/<visible_at_ms %020>/<id>  delayed (not visible before that time)
 *   f/<deadline_ms %020>/<id>    in flight, by visibility deadline
 *   dlq/<id>                  dead letter (the full record)
 *   dedup/<dedup id>          -> <id> and push time (within the window)
 *   x/<pushed_ms %020>/<dedup id>  dedup expiry index (swept by EXPIRE)
 *   stats                     counters and index hints (binary)
 *   config                    max_deliveries (binary)
 * <id> = the push's revision as 20 zero-padded digits + "-" + the index
 * of the message within the entry as 4 digits ("-0000" for PUSH; item i
 * of a PUSH_BATCH is "-%04u" i).
 * Time comes only from the op's now_ms (the leader's clock at proposal).
 * Names are 1..ST_QUEUE_NAME_BYTES_MAX bytes of 0x21..0x7e except '/'. */
#define ST_QUEUE_PREFIX "_rb/queue/"
#define ST_QUEUE_NAME_BYTES_MAX 128u
#define ST_QUEUE_POP_MAX 100u                /* messages per POP / REDRIVE */
#define ST_QUEUE_EXPIRE_BATCH_MAX 256u       /* items one EXPIRE processes */
#define ST_QUEUE_DELIVERIES_MAX 1000u
#define ST_QUEUE_DELIVERIES_DEFAULT 5u
#define ST_QUEUE_VISIBILITY_MS_MAX (12ll * 3600 * 1000)
#define ST_QUEUE_DELAY_MS_MAX (7ll * 24 * 3600 * 1000)
#define ST_QUEUE_DEDUP_WINDOW_MS (5ll * 60 * 1000)
#define ST_QUEUE_DEDUP_ID_BYTES_MAX 128u
#define ST_QUEUE_CONSUMER_BYTES_MAX 128u
#define ST_QUEUE_RECEIPT_BYTES_MAX 64u
/* now_ms must be in 0..this (year 9999), so time sums cannot overflow. */
#define ST_QUEUE_NOW_MS_MAX 253402300799999ll
/* A payload may take value_bytes_max minus this (the record's header,
 * consumer and dedup id). */
#define ST_QUEUE_RECORD_BYTES_OVERHEAD_MAX 512u
/* Dead letters per st_queue_dlq() call. */
#define ST_QUEUE_DLQ_LIMIT_MAX 1000u
/* Messages per PUSH_BATCH and receipts per ACK_BATCH (SQS allows 10; one
 * entry of 100 small messages is still well under the request limit). */
#define ST_QUEUE_BATCH_MAX 100u

/* Never renumber (Raft log format). */
enum st_queue_cmd {
	ST_Q_PUSH = 1,           /* -> msgs[0].id; duplicate if dedup id seen */
	ST_Q_POP = 2,            /* promotes due delayed messages, then claims
	                          * up to max_n ready ones (0 = empty queue) */
	ST_Q_ACK = 3,            /* deletes the message */
	ST_Q_NACK = 4,           /* back to ready (or delayed by delay_ms);
	                          * dead-lettered if delivered max times */
	ST_Q_EXTEND = 5,         /* new deadline now + visibility_ms */
	ST_Q_EXPIRE = 6,         /* leader: requeue in-flight past deadline
	                          * (dead-letter those delivered max times),
	                          * promote due delayed, sweep old dedup ids;
	                          * at most ST_QUEUE_EXPIRE_BATCH_MAX items */
	ST_Q_REDRIVE = 7,        /* up to max_n dead letters back to ready
	                          * (delivery count reset to 0) */
	ST_Q_CONFIG = 8,         /* set max_deliveries */
	ST_Q_PUSH_BATCH = 9,     /* pushes[0..pushes_n) in one revision ->
	                          * msgs[i] answers pushes[i] (its id, or the
	                          * first push's id with duplicate set) */
	ST_Q_ACK_BATCH = 10,     /* acks receipts[0..receipts_n) -> acks[i]:
	                          * 0 or ST_ERR_QUEUE_RECEIPT per receipt */
};
/* One message of a PUSH_BATCH (the fields of a PUSH). */
struct st_queue_push_item {
	const uint8_t *payload;
	size_t payload_len;
	int64_t delay_ms;        /* 0..ST_QUEUE_DELAY_MS_MAX */
	const uint8_t *dedup_id; /* 0..ST_QUEUE_DEDUP_ID_BYTES_MAX; empty = none */
	size_t dedup_id_len;
};
/* One receipt of an ACK_BATCH. */
struct st_queue_receipt {
	const uint8_t *receipt;  /* 0..ST_QUEUE_RECEIPT_BYTES_MAX bytes */
	size_t receipt_len;
};

/* Which fields each command reads (others are ignored, not encoded):
 *   all      queue, now_ms (0..ST_QUEUE_NOW_MS_MAX)
 *   PUSH     payload, delay_ms (0..ST_QUEUE_DELAY_MS_MAX), dedup_id
 *            (0..ST_QUEUE_DEDUP_ID_BYTES_MAX; empty = none)
 *   POP      consumer (0..ST_QUEUE_CONSUMER_BYTES_MAX), visibility_ms
 *            (1..ST_QUEUE_VISIBILITY_MS_MAX), max_n (1..ST_QUEUE_POP_MAX)
 *   ACK      receipt
 *   NACK     receipt, delay_ms
 *   EXTEND   receipt, visibility_ms
 *   EXPIRE   nothing else
 *   REDRIVE  max_n (1..ST_QUEUE_POP_MAX)
 *   CONFIG   max_deliveries (1..ST_QUEUE_DELIVERIES_MAX)
 *   PUSH_BATCH  pushes, pushes_n (1..ST_QUEUE_BATCH_MAX), each item as a
 *            PUSH; the payloads plus ST_QUEUE_RECORD_BYTES_OVERHEAD_MAX
 *            per item must fit value_bytes_max (ST_ERR_TOO_LARGE), so a
 *            batch entry is never larger than the largest single push
 *   ACK_BATCH   receipts, receipts_n (1..ST_QUEUE_BATCH_MAX)
 * Errors in the result: ST_ERR_QUEUE_INVALID (bad field, or queue keys
 * damaged by plain writes), ST_ERR_TOO_LARGE (payload over value_bytes_max
 * - ST_QUEUE_RECORD_BYTES_OVERHEAD_MAX), ST_ERR_QUEUE_RECEIPT (ACK, NACK,
 * EXTEND), ST_ERR_NOSPACE (PUSH, PUSH_BATCH, REDRIVE, CONFIG only: the
 * other commands drain a queue and are allowed over the quota). A failed
 * op changes nothing: a PUSH_BATCH is all or nothing.
 * Batches, message by message in order:
 *   PUSH_BATCH  dedup applies per item, also between items of the batch:
 *            an item whose dedup id an earlier item of the same batch
 *            used is a duplicate of that item (its id, duplicate set).
 *   ACK_BATCH   a receipt that is unknown or stale (also one repeated
 *            within the batch) gets acks[i] = ST_ERR_QUEUE_RECEIPT and the
 *            others are acked anyway (as SQS DeleteMessageBatch); the op
 *            itself succeeds, and when no receipt was good it writes
 *            nothing and the revision does not move. */
struct st_queue_op {
	uint8_t cmd;             /* enum st_queue_cmd */
	const uint8_t *queue;
	size_t queue_len;
	int64_t now_ms;
	const uint8_t *payload;
	size_t payload_len;
	int64_t delay_ms;
	const uint8_t *dedup_id;
	size_t dedup_id_len;
	const uint8_t *consumer;
	size_t consumer_len;
	int64_t visibility_ms;
	uint32_t max_n;
	const uint8_t *receipt;
	size_t receipt_len;
	uint32_t max_deliveries;
	const struct st_queue_push_item *pushes; /* PUSH_BATCH */
	size_t pushes_n;
	const struct st_queue_receipt *receipts; /* ACK_BATCH */
	size_t receipts_n;
};

/* The tagged union applied by st_apply() and carried in Raft entries. */
struct st_op {
	uint8_t type;            /* enum st_op_type */
	union {
		struct st_put put;
		struct st_range range;
		struct st_delete_range delete_range;
		struct st_txn txn;
		struct st_compact compact;
		struct st_lease_grant lease_grant;
		struct st_lease_revoke lease_revoke;
		struct st_queue_op queue;
	} u;
};

/* Errors an op can give in its st_result (besides the fatal ST_ERR_IO,
 * ST_ERR_DISK_FULL, ST_ERR_NOMEM, ST_ERR_CORRUPT that abort the batch):
 *   any op        ST_ERR_UNKNOWN_OP, ST_ERR_INVALID, ST_ERR_EMPTY_KEY,
 *                 ST_ERR_KEY_TOO_LONG (validation, nothing touched)
 *   PUT           ST_ERR_TOO_LARGE, ST_ERR_VALUE_PROVIDED,
 *                 ST_ERR_LEASE_PROVIDED, ST_ERR_NOSPACE,
 *                 ST_ERR_LEASE_NOT_FOUND, then ST_ERR_KEY_NOT_FOUND (ignore_*)
 *   RANGE         ST_ERR_COMPACTED, ST_ERR_FUTURE_REV
 *   DELETE_RANGE  none
 *   TXN           ST_ERR_TOO_MANY_OPS, ST_ERR_TXN_TOO_DEEP,
 *                 ST_ERR_DUPLICATE_KEY, ST_ERR_NOSPACE (if it contains a
 *                 put), and any error of its ops in the order st_txn
 *                 gives (the whole txn then changes nothing)
 *   COMPACT       ST_ERR_COMPACTED, ST_ERR_FUTURE_REV
 *   LEASE_GRANT   ST_ERR_LEASE_EXISTS, ST_ERR_LEASE_TTL_TOO_LARGE,
 *                 ST_ERR_NOSPACE
 *   LEASE_REVOKE  ST_ERR_LEASE_NOT_FOUND
 *   QUEUE         see struct st_queue_op
 * Compact, lease and queue ops are not allowed inside a txn (ST_ERR_INVALID). */

/* One committed Raft entry to apply. */
struct st_entry {
	st_index index;          /* > 0; strictly increasing within a batch */
	struct st_op op;         /* borrowed */
};

/* ---- results (output; owned by the st_result) --------------------------- */

struct st_kv {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value;    /* NULL when value_len == 0 or keys_only */
	size_t value_len;
	st_rev create_revision;
	st_rev mod_revision;
	int64_t version;
	st_lease_id lease;
};

struct st_put_resp { bool has_prev_kv; struct st_kv prev_kv; };

struct st_range_resp {
	struct st_kv *kvs;
	size_t kvs_n;
	int64_t count;
	bool more;
};

struct st_delete_range_resp {
	int64_t deleted;
	struct st_kv *prev_kvs;  /* filled when prev_kv was asked */
	size_t prev_kvs_n;
};

/* A message handed out by POP, PUSH (id only), REDRIVE (id, payload) and
 * st_queue_dlq (everything but receipt). */
struct st_queue_msg {
	const uint8_t *id;
	size_t id_len;
	const uint8_t *payload;
	size_t payload_len;
	uint32_t delivery_count; /* 1 on the first pop */
	const uint8_t *receipt;  /* POP: "<id>/<delivery_count>" for ack/nack/extend */
	size_t receipt_len;
	int64_t enqueued_ms;
	bool duplicate;          /* PUSH, PUSH_BATCH: the dedup id was seen;
	                          * id is the first push's id */
};

struct st_queue_resp {
	struct st_queue_msg *msgs; /* POP: claimed; PUSH: the id; PUSH_BATCH:
	                            * one per item, in order; REDRIVE: moved;
	                            * st_queue_dlq: the dead letters */
	size_t msgs_n;
	bool duplicate;          /* PUSH: the dedup id was seen within the
	                          * window; msgs[0].id is the first push's id */
	int *acks;               /* ACK_BATCH: one per receipt, in order: 0
	                          * (acked) or ST_ERR_QUEUE_RECEIPT */
	size_t acks_n;
	uint32_t acked_n;        /* ACK_BATCH: receipts acked */
	uint32_t expired_n;      /* EXPIRE: in-flight messages requeued */
	uint32_t dead_lettered_n; /* EXPIRE, NACK, POP: moved to dlq/ */
	bool more;               /* EXPIRE: batch full, propose again;
	                          * st_queue_dlq: more dead letters */
};

struct st_op_resp;
struct st_txn_resp {
	bool succeeded;
	struct st_op_resp *responses; /* one per op of the branch taken */
	size_t responses_n;
};

struct st_lease_grant_resp { st_lease_id id; int64_t ttl_s; };

enum st_event_type { ST_EVENT_PUT = 0, ST_EVENT_DELETE = 1 };

/* A DELETE event's kv has key and mod_revision (the delete's revision) set,
 * everything else 0. prev_kv (if asked) is, as in etcd's watch, the key's
 * version at mod_revision - 1: two writes of one key in one revision both
 * get the version from before that revision, and a PUT that creates the
 * key (create_revision == mod_revision) has none, even when the same txn
 * deleted a live version of it first. */
struct st_event {
	uint8_t type;            /* enum st_event_type */
	struct st_kv kv;
	bool has_prev_kv;
	struct st_kv prev_kv;
};

struct st_events_resp {
	struct st_event *events; /* in (revision, order within revision) order */
	size_t events_n;
	/* Where to continue: pass next_rev/next_sub as from_rev/from_sub. If
	 * `more` is false there were no further events up to `revision`. */
	st_rev next_rev;
	uint32_t next_sub;
	bool more;
	/* true when the batch stops inside one revision: that revision alone
	 * exceeded events_max/bytes_max, so it is split and continues at
	 * (next_rev, next_sub). Otherwise a revision is never split. */
	bool split_revision;
};

struct st_lease_info { st_lease_id id; int64_t ttl_s; };

struct st_lease_list_resp {
	struct st_lease_info *leases; /* ascending (signed) id */
	size_t leases_n;
};

struct st_lease_ttl_resp {
	st_lease_id id;
	int64_t granted_ttl_s;
	struct st_kv *keys;      /* key/key_len only; ascending; if asked */
	size_t keys_n;
};

enum st_resp_type {
	ST_RESP_NONE = 0,        /* same numbers as enum st_op_type up to 7 */
	ST_RESP_PUT = ST_OP_PUT,
	ST_RESP_RANGE = ST_OP_RANGE,
	ST_RESP_DELETE_RANGE = ST_OP_DELETE_RANGE,
	ST_RESP_TXN = ST_OP_TXN,
	ST_RESP_COMPACT = ST_OP_COMPACT,
	ST_RESP_LEASE_GRANT = ST_OP_LEASE_GRANT,
	ST_RESP_LEASE_REVOKE = ST_OP_LEASE_REVOKE,
	ST_RESP_QUEUE = ST_OP_QUEUE,
	ST_RESP_EVENTS = 100,
	ST_RESP_LEASE_LIST = 101,
	ST_RESP_LEASE_TTL = 102,
};

struct st_op_resp {
	uint8_t type;            /* enum st_resp_type; NONE on error */
	union {
		struct st_put_resp put;
		struct st_range_resp range;
		struct st_delete_range_resp delete_range;
		struct st_txn_resp txn;
		struct st_lease_grant_resp lease_grant;
		struct st_events_resp events;
		struct st_lease_list_resp lease_list;
		struct st_lease_ttl_resp lease_ttl;
		struct st_queue_resp queue;
	} u;
};

struct st_mem;               /* private: the allocations of one result */

/* The outcome of one op or read. Zero-initialise before first use or let
 * the producing call do it; always release with st_result_free(), whatever
 * the call returned (it is a no-op on a zeroed result). */
struct st_result {
	int err;                 /* 0 or enum st_err */
	const char *msg;         /* st_strerror(err), static */
	bool applied;            /* st_apply: false if the entry's index was <= the applied index */
	st_rev revision;         /* store revision after the op / of the read */
	st_rev compact_revision; /* set with ST_ERR_COMPACTED (and on reads) */
	struct st_op_resp resp;  /* valid when err == 0 */
	struct st_mem *mem;      /* private */
};

/* Frees everything the result owns and zeroes it. NULL-safe. Any thread. */
void st_result_free(struct st_result *res);

/* ---- the store ---------------------------------------------------------- */

typedef struct st_store st_store;

struct st_options {
	uint64_t quota_bytes;      /* logical size quota; 0 = ST_QUOTA_BYTES_DEFAULT */
	uint64_t map_bytes;        /* initial LMDB map size; 0 = ST_MAP_BYTES_DEFAULT */
	uint64_t map_bytes_max;    /* growth ceiling; 0 = 4 * quota + 1 GiB */
	uint32_t value_bytes_max;  /* 0 = ST_VALUE_BYTES_MAX_DEFAULT; <= ST_VALUE_BYTES_MAX_LIMIT */
	bool no_sync;              /* MDB_NOSYNC: commits are not flushed to disk
	                            * until st_sync(); for a caller that keeps
	                            * its own durable record to re-apply from
	                            * (the broker's Raft log) */
};

/* Fills *opts with the defaults (all zero = defaults). */
void st_options_init(struct st_options *opts);

/* Opens (creating if needed) the store in directory `dir` (which must exist).
 * `opts` may be NULL for defaults; it is copied. A new store is at revision
 * 1, compact revision 0, applied index 0.
 * Errors: ST_ERR_INVALID (bad options), ST_ERR_CORRUPT (not a store of this
 * format), ST_ERR_IO, ST_ERR_NOMEM. Writer thread. */
int st_open(const char *dir, const struct st_options *opts, st_store **out);

/* Closes the store. No other call may be in progress. NULL-safe. A store
 * opened with no_sync is flushed first. */
void st_close(st_store *st);

/* Flushes every committed transaction to disk (fdatasync of the map; a
 * no-op cost for a store opened without no_sync). Errors: ST_ERR_IO. Any
 * thread, beside the writer and readers, but never during
 * st_restore_file() (which replaces the environment). */
int st_sync(st_store *st);

/* Applies entries[0..n) in ONE LMDB write transaction that also records the
 * last entry's index as the applied index; results[i] receives entries[i]'s
 * outcome (caller provides n zeroed or freed st_result; free each after).
 *
 * An entry whose index is <= the applied index (recorded or earlier in the
 * batch) is skipped: results[i].applied = false, err =
 * ST_ERR_ALREADY_APPLIED, nothing changes. An op that fails (bad input,
 * lease not found, NOSPACE, ...) gives an error in results[i] and changes
 * nothing, but the entry counts as applied: the batch still commits and the
 * applied index advances.
 *
 * Returns 0 when the batch committed; ST_ERR_ALREADY_APPLIED when every
 * entry was skipped (nothing written); ST_ERR_INVALID when n == 0, n >
 * ST_APPLY_ENTRIES_MAX, an index is 0 or indexes are not increasing
 * (nothing applied). ST_ERR_IO / ST_ERR_DISK_FULL / ST_ERR_NOMEM /
 * ST_ERR_CORRUPT: nothing
 * committed, results are freed; the member must stop (or retry later).
 * The map is grown and the batch retried on MDB_MAP_FULL transparently.
 * Writer thread only. */
int st_apply(st_store *st, const struct st_entry *entries, size_t n,
	struct st_result *results);

/* Reads a range at req->revision (<= 0 = current). Errors (also in out->err):
 * ST_ERR_COMPACTED (revision < compact revision; out->compact_revision
 * says which), ST_ERR_FUTURE_REV, ST_ERR_INVALID, ST_ERR_EMPTY_KEY,
 * ST_ERR_KEY_TOO_LONG, ST_ERR_IO, ST_ERR_NOMEM. Any thread. */
int st_range(st_store *st, const struct st_range *req, struct st_result *out);

/* Event history request. */
struct st_events_req {
	const uint8_t *key;      /* range rules as for st_range */
	size_t key_len;
	const uint8_t *range_end;
	size_t range_end_len;
	st_rev from_rev;         /* first revision wanted; 0 = compact revision + 1 */
	uint32_t from_sub;       /* skip events of from_rev whose position within
	                          * that revision is < from_sub; 0 normally, else
	                          * the next_sub of a previous batch */
	size_t events_max;       /* 0 = ST_EVENTS_MAX_DEFAULT; <= ST_EVENTS_MAX_LIMIT */
	size_t bytes_max;        /* 0 = ST_EVENTS_BYTES_MAX_DEFAULT */
	bool prev_kv;            /* fill prev_kv */
};

/* Reads the events (PUT/DELETE) of keys in the range with revision >=
 * from_rev, in revision order, at most events_max/bytes_max per call
 * (never splitting a revision unless it alone exceeds a limit, then
 * split_revision is set). A small range is read through the by-key history
 * index, so its cost does not depend on other keys' history. Errors:
 * ST_ERR_COMPACTED when from_rev <= compact revision (out->compact_revision
 * set), ST_ERR_FUTURE_REV when from_rev > revision + 1, ST_ERR_INVALID
 * (from_rev < 0, events_max too large), ST_ERR_EMPTY_KEY,
 * ST_ERR_KEY_TOO_LONG, ST_ERR_IO, ST_ERR_NOMEM. Any thread.
 *
 * Deliberate difference from etcd 3.4: etcd replays a watch that starts AT
 * the compact revision (only start_revision < compact revision is
 * cancelled), but compaction may already have removed events of that very
 * revision (a delete tombstone at exactly the compact revision is dropped),
 * so such a replay can be silently incomplete. The store refuses from_rev
 * <= compact revision with ST_ERR_COMPACTED instead; the broker's watch
 * answers that with "cancelled, compacted" (the project's watch contract:
 * a start at or below the compact revision is cancelled with compacted). */
int st_events(st_store *st, const struct st_events_req *req,
	struct st_result *out);

/* Lists all leases (ascending id, negative ids first), response type
 * ST_RESP_LEASE_LIST.
 * Errors: ST_ERR_IO, ST_ERR_NOMEM. Any thread. */
int st_lease_list(st_store *st, struct st_result *out);

/* Looks up one lease: granted TTL and (if with_keys) its attached keys,
 * response type ST_RESP_LEASE_TTL. Errors: ST_ERR_LEASE_NOT_FOUND,
 * ST_ERR_IO, ST_ERR_NOMEM. Any thread. */
int st_lease_ttl(st_store *st, st_lease_id id, bool with_keys,
	struct st_result *out);

struct st_status {
	st_rev revision;
	st_rev compact_revision;
	st_index applied_index;
	uint64_t logical_bytes;  /* what the quota is checked against */
	uint64_t quota_bytes;
	uint64_t map_bytes;      /* current LMDB map size (physical; differs per member) */
	uint64_t keys;           /* live keys at the current revision */
	uint64_t leases;
};

/* Fills *out from one read transaction. Errors: ST_ERR_IO. Any thread. */
int st_status(st_store *st, struct st_status *out);

/* ---- work queues (reads) ------------------------------------------------ */

struct st_queue_stats {
	uint64_t ready, inflight, delayed, dead;
	int64_t oldest_ready_enqueued_ms; /* enqueue time of the next message
	                                   * POP takes; 0 = none ready */
	int64_t next_due_ms;     /* earliest in-flight deadline, delayed visible
	                          * time or dedup id expiry: when the leader
	                          * should propose EXPIRE; 0 = nothing due */
	uint32_t max_deliveries;
	st_rev revision;         /* store revision the stats were read at */
};

/* Reads one queue's counters in one read txn: O(1) (three key lookups). A
 * queue never pushed to reads as all zero with the default max_deliveries.
 * Errors: ST_ERR_QUEUE_INVALID (bad name or damaged stats), ST_ERR_IO,
 * ST_ERR_NOMEM. Any thread. */
int st_queue_stats(st_store *st, const uint8_t *queue, size_t queue_len,
	struct st_queue_stats *out);

/* Dead letters of a queue, up to limit (1..ST_QUEUE_DLQ_LIMIT_MAX) in id
 * order, as resp.u.queue.msgs (type ST_RESP_QUEUE; more = more exist). Cost
 * grows with dead letters redriven since the last compaction. Errors:
 * ST_ERR_QUEUE_INVALID, ST_ERR_IO, ST_ERR_NOMEM. Any thread. */
int st_queue_dlq(st_store *st, const uint8_t *queue, size_t queue_len,
	size_t limit, struct st_result *out);

/* The applied index (shortcut of st_status). Returns 0 on error. Any thread. */
st_index st_applied_index(st_store *st);

/* Writes a compacted, consistent copy of the whole store to `fd` (which must
 * be open for writing, at offset 0 of an empty file; not closed). On the
 * writer thread between st_apply() calls, the copy is exactly the state at
 * st_applied_index(). On another thread (at most one at a time, never
 * beside st_restore_file() or st_close()) it is the committed state at
 * some applied index, which st_snapshot_applied() reads back; meanwhile a
 * writer that must grow the map waits for the copy to end. Errors:
 * ST_ERR_IO, ST_ERR_DISK_FULL. */
int st_snapshot_fd(st_store *st, int fd);

/* Same into a new file at `path` (created or truncated, fsync'd). */
int st_snapshot_file(st_store *st, const char *path);

/* Writer thread, before st_snapshot_*() runs on another thread: grows the
 * map until its free room is at least the room in use (and at least
 * ST_SNAPSHOT_FREE_ROOM_MIN_BYTES), within map_bytes_max. A copy pins every
 * page it reads, so the writes made meanwhile take new pages; with this
 * room they rarely need a map growth, which would wait for the copy.
 * Errors: ST_ERR_DISK_FULL (at map_bytes_max: the copy may still run),
 * ST_ERR_IO. */
#define ST_SNAPSHOT_FREE_ROOM_MIN_BYTES (64ull * 1024u * 1024u)
int st_snapshot_prepare(st_store *st);

/* Checks the snapshot file at `path` as st_restore_file() does and sets
 * *applied to the applied index it holds. Any thread. Errors:
 * ST_ERR_CORRUPT, ST_ERR_IO. */
int st_snapshot_applied(const char *path, st_index *applied);

/* Replaces the store's whole contents with the snapshot file at `path`
 * (made by st_snapshot_*), then reopens: contents, revisions, history,
 * leases and applied index become the snapshot's. The snapshot is checked
 * first; on ST_ERR_CORRUPT the store is unchanged. Nothing else may run on
 * the store meanwhile. Errors: ST_ERR_CORRUPT, ST_ERR_IO, ST_ERR_NOMEM (after
 * an I/O error the handle may be unusable; close it). */
int st_restore_file(st_store *st, const char *path);

/* ---- helpers and codec -------------------------------------------------- */

/* Writes the etcd prefix range end of key (last byte < 0xff incremented,
 * trailing 0xff dropped; all-0xff or empty gives "\0") into buf (at least
 * key_len bytes, or 1) and returns its length. Any thread. */
size_t st_prefix_end(const uint8_t *key, size_t key_len, uint8_t *buf);

/* Encodes an op (msgpack; stable format, versioned) into a malloc'ed buffer
 * *buf_out of *len_out bytes that the caller frees with free(). The op is
 * not validated beyond its shape (st_apply validates). Errors: ST_ERR_UNKNOWN_OP,
 * ST_ERR_TXN_TOO_DEEP, ST_ERR_INVALID (NULL pointer with nonzero length),
 * ST_ERR_NOMEM. Any thread. */
int st_op_encode(const struct st_op *op, uint8_t **buf_out, size_t *len_out);

/* A decoded op and the memory behind its pointers. */
typedef struct st_decoded st_decoded;

/* Decodes buf[0..len) (borrowed; not referenced after return) into a new
 * st_decoded. Never crashes on garbage: truncated, random, wrongly typed or
 * trailing bytes give ST_ERR_DECODE; an unknown op type gives
 * ST_ERR_UNKNOWN_OP; too deep nesting ST_ERR_TXN_TOO_DEEP; ST_ERR_NOMEM.
 * Any thread. */
int st_op_decode(const uint8_t *buf, size_t len, st_decoded **out);

/* The op inside d; valid until st_decoded_free(d). */
const struct st_op *st_decoded_op(const st_decoded *d);

/* NULL-safe. */
void st_decoded_free(st_decoded *d);

#endif /* ST_STORE_H */
