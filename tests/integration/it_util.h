/*
 * it_util.h - the process-level test harness: start real `raftbus` members
 * on free loopback ports in a temp dir, talk to them with the rb_wire codec
 * over nng req sockets, kill and restart them, and always stop every
 * process started (atexit + PDEATHSIG), also when a check fails.
 *
 * The raftbus binary is taken from $RAFTBUS_BIN (set by meson).
 */
#ifndef IT_UTIL_H
#define IT_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "raftbus.h"

#define IT_MEMBERS_MAX 5
#define IT_REQUEST_TIMEOUT_MS 3000

/* Fails the test (message to stderr, exit 1; atexit stops the members). */
#define IT_CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: CHECK FAILED: %s: ", __FILE__, \
		    __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fprintf(stderr, "\n"); \
		it_fail(); \
	} \
} while (0)

struct it_proxy;

struct it_member {
	char name[32];
	char client_url[64];
	char peer_url[64];      /* where the member listens for peers */
	char adv_peer_url[64];  /* what the cluster dials (= peer_url, or
	                           its proxy's URL) */
	struct it_proxy *proxy; /* NULL unless it_cluster_init_proxied */
	char data_dir[512];
	char log_path[512];
	pid_t pid;             /* 0 = not running */
};

struct it_cluster {
	char dir[256];
	int n;
	struct it_member m[IT_MEMBERS_MAX];
	char initial_cluster[1024];
	const char *extra[16];  /* extra flags for every member, NULL-ended */
	const char *heartbeat_ms;  /* default "50" */
	const char *election_ms;   /* default "500" */
	char lsan_supp[300];       /* members' LeakSanitizer suppressions
	                              file, "" = none */
};

void it_fail(void) __attribute__((noreturn));
/* A loopback TCP port nobody listens on right now. */
int it_free_port(void);
int64_t it_now_ms(void);
void it_sleep_ms(int ms);

/* Makes a temp dir and assigns ports for n members (not started). */
void it_cluster_init(struct it_cluster *c, int n);
/* Same, but every member's inbound peer traffic passes through a TCP
 * proxy in this process, which it_cut() can block (a one-way partition:
 * the member still sends, it receives nothing from its peers). Sanitizer
 * builds: the members' leak check then ignores peer messages
 * (peer_send_bytes) still held at exit by a send that a blocked proxy
 * never let finish: nng 1.5 does not free a message stuck in a TCP
 * connection it closes (IT_LSAN_STUCK_SEND). */
void it_cluster_init_proxied(struct it_cluster *c, int n);
void it_cut(struct it_cluster *c, int i, bool blocked);
/* Starts member i with the documented flags plus c->extra. */
void it_start(struct it_cluster *c, int i);
void it_start_all(struct it_cluster *c);
/* Sends sig and waits (at most 10 s, then SIGKILL) for the process to
 * end; returns its wait status. */
int it_kill(struct it_cluster *c, int i, int sig);
/* Stops every member with SIGTERM, checks each exited 0 and logged no
 * sanitizer report, and removes the temp dir. */
void it_cluster_done(struct it_cluster *c);

/* One request to url; fills *resp (caller frees with rb_resp_free).
 * Returns resp->err, or RB_ERR_UNAVAILABLE / RB_ERR_TIMEOUT on transport
 * failure. */
int it_do(const char *url, const struct rb_op *op, struct rb_resp *resp);
/* Sends raw bytes and returns the decoded reply (for garbage tests). */
int it_do_raw(const char *url, const void *buf, size_t len,
    struct rb_resp *resp);
/* Request to any member, following "not leader" hints and retrying until
 * deadline_ms (absolute). Returns the final error. */
int it_do_any(struct it_cluster *c, const struct rb_op *op,
    struct rb_resp *resp, int64_t deadline_ms);

/* Helpers on top. */
int it_put(struct it_cluster *c, const char *key, const char *val,
    rb_rev *rev_out, int64_t deadline_ms);
/* Index of the member that says it is the leader (via endpoint status),
 * waiting up to timeout_ms; -1 if none. */
int it_wait_leader(struct it_cluster *c, int timeout_ms);
/* The leader's index, waiting up to IT_LEADER_WAIT_MS; fails the test
 * ("no leader within N ms: WHAT") when there is none. */
#define IT_LEADER_WAIT_MS 10000
int it_leader(struct it_cluster *c, const char *what);
/* kill -9 of member i, down_ms of downtime, then a restart. */
void it_crash_restart(struct it_cluster *c, int i, int down_ms);
/* Full contents of a member (all keys, serializable) as a malloc'ed
 * "key=value\n..." string; NULL on error. */
char *it_dump(const char *url, bool serializable, rb_rev *rev_out);
/* Prints the last LINES lines of member I's log to stderr. */
void it_log_tail(struct it_cluster *c, int i, int lines);
/* Count of lines containing needle in member i's log. */
int it_log_count(struct it_cluster *c, int i, const char *needle);

/* The end of a passing scenario: every socket is closed, so nng is let
 * finish tearing them down (its reaper may still hold pipes and dialers,
 * which the leak checker would report), then "NAME: ok" is printed. */
void it_ok(const char *name);

#endif /* IT_UTIL_H */
