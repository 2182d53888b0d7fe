/*
 * bk.h - the raftbus server ("broker") internals: configuration, the peer
 * wire codec, the peer transport and the server loop.
 *
 * The broker is the only module that reads clocks, opens sockets and spawns
 * threads. The Raft core (raftlog/raft.h), the durable log
 * (raftlog/logstore.h) and the state machine (store/store.h) stay
 * deterministic; this shell feeds them ticks, peer messages and client
 * proposals, and carries their outputs to disk and to the network.
 *
 * Threads: ONE loop thread (bk_server_run) owns the Raft node, the log store
 * and the store writer. nng callback threads do no work of their own: they
 * push the received nng message into the loop's bounded inbox and wake it.
 * See docs/server.md for the whole picture.
 */
#ifndef BK_H
#define BK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* ---- errors ------------------------------------------------------------- */

enum bk_err {
	BK_OK = 0,
	BK_ERR_USAGE = -1,     /* bad flag / value: exit code 2 */
	BK_ERR_NOMEM = -2,
	BK_ERR_IO = -3,        /* disk, log store or store failure */
	BK_ERR_NET = -4,       /* socket could not be opened / listen failed */
	BK_ERR_DECODE = -5,    /* peer message malformed */
	BK_ERR_HELP = -6,      /* --help / --version printed: exit 0 */
};

/* Static text for a bk_err. Any thread. */
const char *bk_strerror(int err);

/* ---- limits ------------------------------------------------------------- */

#define BK_NAME_BYTES_MAX 64u        /* member name */
#define BK_URL_BYTES_MAX 256u        /* one URL */
#define BK_PATH_BYTES_MAX 1024u      /* data dir and files under it */
#define BK_MEMBERS_MAX RL_MEMBERS_MAX
/* Bytes of one peer message (an append carries RL_MSG_BYTES_MAX_DEFAULT of
 * entries but always at least one entry of up to the request limit; a
 * snapshot chunk is RL_SNAPSHOT_CHUNK_BYTES_MAX). */
#define BK_PEER_MSG_BYTES_MAX (16u * 1024u * 1024u)
/* Entries one decoded append may carry. */
#define BK_PEER_ENTRIES_MAX 65536u
/* Messages queued towards one peer before new ones are dropped (Raft
 * retransmits). */
#define BK_PEER_SENDQ_MSGS_MAX 512
/* Largest --max-request-bytes accepted: one request becomes one log entry,
 * which the Raft core limits to RL_ENTRY_DATA_MAX (encoding overhead kept
 * aside). */
#define BK_REQUEST_BYTES_LIMIT (RL_ENTRY_DATA_MAX - 64u * 1024u)

/* ---- configuration ------------------------------------------------------ */

struct bk_member {
	char name[BK_NAME_BYTES_MAX];
	char peer_url[BK_URL_BYTES_MAX];
	char client_url[BK_URL_BYTES_MAX]; /* "" until learned from the peer */
	rl_id id;
};

enum bk_log_level { BK_LOG_DEBUG = 0, BK_LOG_INFO, BK_LOG_WARN, BK_LOG_ERROR };

struct bk_config {
	char name[BK_NAME_BYTES_MAX];
	char data_dir[BK_PATH_BYTES_MAX];
	char listen_client_url[BK_URL_BYTES_MAX];
	char advertise_client_url[BK_URL_BYTES_MAX];
	char listen_peer_url[BK_URL_BYTES_MAX];
	char advertise_peer_url[BK_URL_BYTES_MAX];
	char initial_cluster[BK_MEMBERS_MAX * (BK_NAME_BYTES_MAX + BK_URL_BYTES_MAX)];
	bool cluster_existing;          /* --initial-cluster-state existing */
	uint32_t heartbeat_ms;
	uint32_t election_ms;
	uint64_t snapshot_count;
	uint64_t quota_bytes;
	uint32_t max_request_bytes;
	bool compaction_periodic;       /* else revision mode */
	uint64_t compaction_retention;  /* revisions, or hours ("1h", "30m") as ms */
	int log_level;                  /* enum bk_log_level */
	int64_t pubsub_dedup_window_ms; /* how long a publish msg_id is remembered */
	uint32_t max_queued_reads;      /* reads waiting for a reader; beyond, "too many requests" */
	/* Derived. */
	uint64_t cluster_id;
	rl_id member_id;
	struct bk_member members[BK_MEMBERS_MAX];
	uint32_t members_n;
};

/* Defaults (documented in docs/server.md). */
#define BK_CLIENT_URL_DEFAULT "tcp://127.0.0.1:5379"
#define BK_PEER_URL_DEFAULT "tcp://127.0.0.1:5380"
#define BK_HEARTBEAT_MS_DEFAULT 100u
#define BK_ELECTION_MS_DEFAULT 1000u
#define BK_SNAPSHOT_COUNT_DEFAULT 100000u
#define BK_MAX_REQUEST_BYTES_DEFAULT (1536u * 1024u)
#define BK_MAX_QUEUED_READS_DEFAULT 256u
/* Upper bound of --max-queued-reads (the reader queue's ring size). */
#define BK_READ_QUEUE_MAX 1024u
/* NATS JetStream's default duplicate window. */
#define BK_PUBSUB_DEDUP_WINDOW_MS_DEFAULT (2 * 60 * 1000)
#define BK_VERSION "0.1.0"

/*
 * Fills *cfg from argv (flags) over env (RAFTBUS_* variables; envp may be
 * NULL = none) over the defaults, then derives member/cluster ids. On
 * BK_ERR_USAGE a one-line reason is in err[0..err_len). BK_ERR_HELP when
 * --help or --version was given (text written to `out`). Any thread.
 */
int bk_config_parse(struct bk_config *cfg, int argc, char **argv,
    char **envp, char *err, size_t err_len, void *out /* FILE * */);

/* Member id of (name, peer_url) and the cluster id of an initial-cluster
 * string: FNV-1a 64 (never 0). Deterministic across members. Any thread. */
rl_id bk_member_id(const char *name, const char *peer_url);
uint64_t bk_cluster_id(const char *initial_cluster);

/* ---- logging ------------------------------------------------------------ */

extern int bk_log_level;
/* printf-style line to stderr with a level tag, if level >= bk_log_level.
 * Any thread. */
void bk_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- peer wire codec ---------------------------------------------------- */

/* Fixed little-endian binary layout, version byte first (see bk_peer.c). */
#define BK_PEER_WIRE_VERSION 2u
/* The CRC-32C that ends every peer message (bk_peer.c). */
#define BK_PEER_CRC_BYTES 4u
enum bk_peer_kind {
	BK_PEER_RAFT = 1,   /* one struct rl_msg */
	BK_PEER_HELLO = 2,  /* member info: id, name, client URL */
};

struct bk_hello {
	rl_id id;
	char name[BK_NAME_BYTES_MAX];
	char client_url[BK_URL_BYTES_MAX];
};

/* A decoded peer message. For BK_PEER_RAFT, msg.entries[i].data and
 * msg.snap_data point into the buffer that was decoded (borrowed: valid
 * while that buffer is); msg.entries is malloc'ed and released with
 * bk_peer_decoded_free(). */
struct bk_peer_decoded {
	uint8_t kind;
	uint64_t cluster_id;
	struct rl_msg msg;
	struct bk_hello hello;
};

/* Encodes m into a malloc'ed buffer (*out, *out_len; caller frees).
 * BK_ERR_NOMEM, BK_ERR_DECODE (message over BK_PEER_MSG_BYTES_MAX). */
int bk_peer_encode_raft(uint64_t cluster_id, const struct rl_msg *m,
    uint8_t **out, size_t *out_len);
int bk_peer_encode_hello(uint64_t cluster_id, const struct bk_hello *h,
    uint8_t **out, size_t *out_len);
/* Decodes buf[0..len) (borrowed, see struct bk_peer_decoded). Never crashes
 * on garbage: BK_ERR_DECODE (bad checksum, bad version, truncated, counts
 * over limits, trailing bytes, unknown kind), BK_ERR_NOMEM. Any thread. */
int bk_peer_decode(const uint8_t *buf, size_t len, struct bk_peer_decoded *out);
/* Writes the checksum that ends msg[0..len) (its last BK_PEER_CRC_BYTES)
 * over the bytes before it; len < BK_PEER_CRC_BYTES: nothing. The encoders
 * end with it; tests and the fuzz target seal what they change. */
void bk_peer_seal(uint8_t *msg, size_t len);
void bk_peer_decoded_free(struct bk_peer_decoded *d);

/* ---- server ------------------------------------------------------------- */

struct bk_server;

/* Opens the data dir (log store, store, snapshots), the Raft node and the
 * sockets. Errors: BK_ERR_IO, BK_ERR_NET, BK_ERR_NOMEM (logged). Main
 * thread. cfg is copied. */
int bk_server_open(const struct bk_config *cfg, struct bk_server **out);
/* Runs the loop until bk_server_stop(), on the thread that called
 * bk_server_open() (the loop's replies go through the sender thread only
 * from there). Returns BK_OK on a clean stop, BK_ERR_IO if storage failed
 * (the member must stop). */
int bk_server_run(struct bk_server *s);
/* Asks the loop to stop (async-signal-safe: writes one byte to a pipe). */
void bk_server_stop(struct bk_server *s);
/* Closes sockets (no callback runs after), stores and frees. Main thread,
 * after bk_server_run returned. NULL-safe. With `last` (the process's last
 * use of nng, as in the raftbus executable) nng_fini() runs as the final
 * step, under the stop watchdog: nng frees closed sockets, and messages
 * still queued for an unreachable peer, on its own threads. */
void bk_server_close(struct bk_server *s, bool last);

#endif /* BK_H */
