/*
 * ed_etcd.h - a throwaway etcd server for the differential test: find free
 * loopback ports, start `etcd` from PATH on a temp data dir, wait until it
 * answers, POST JSON to its gateway over a plain HTTP/1.0 socket, stop it by
 * PID and remove its directory. Single-threaded test code.
 */
#ifndef ED_ETCD_H
#define ED_ETCD_H

#include <stdbool.h>
#include <sys/types.h>

#include "ed_json.h"

/* Bounds on waiting for etcd (start, each request, stop). */
#define ED_ETCD_START_TIMEOUT_MS 15000
#define ED_ETCD_REQUEST_TIMEOUT_MS 10000
#define ED_ETCD_STOP_TIMEOUT_MS 5000
/* Largest response body accepted. */
#define ED_ETCD_RESPONSE_BYTES_MAX (8u * 1024u * 1024u)

struct ed_etcd {
	pid_t pid;
	int client_port;
	int peer_port;
	char dir[256];       /* temp dir holding data/ and etcd.log */
};

/* True when an executable `etcd` is found in PATH. */
bool ed_etcd_in_path(void);

/* Starts etcd and waits (bounded) until its gateway answers. On failure
 * prints why (and etcd's log) to stderr, cleans up and returns false. */
bool ed_etcd_start(struct ed_etcd *e);

/* Stops etcd (SIGTERM, then SIGKILL after ED_ETCD_STOP_TIMEOUT_MS), reaps
 * it and removes its directory. Safe on a stopped or never started one. */
void ed_etcd_stop(struct ed_etcd *e);

/* Prints the first ED_ETCD_LOG_LINES_MAX lines of etcd's log to stderr. */
#define ED_ETCD_LOG_LINES_MAX 60
void ed_etcd_print_log(const struct ed_etcd *e);

/* POSTs body (JSON text) to path, e.g. "/v3/kv/put". Returns the parsed
 * response (caller frees with ed_json_free) or NULL on a transport or parse
 * failure (printed to stderr). *http_status receives the status code. */
struct ed_json *ed_etcd_post(const struct ed_etcd *e, const char *path,
	const char *body, int *http_status);

/* Opens a streaming POST (the gateway's /v3/watch): sends the request and
 * returns the connected socket (caller closes it), or -1. */
int ed_etcd_stream_open(const struct ed_etcd *e, const char *path,
	const char *body);

/* Appends whatever arrives on fd within idle_ms to out. Returns the number
 * of bytes appended, 0 on idle timeout or when the server closed, -1 on
 * error. */
long ed_etcd_stream_read(int fd, struct ed_buf *out, int idle_ms);

#endif /* ED_ETCD_H */
