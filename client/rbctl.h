/*
 * rbctl.h - the pieces of raftbusctl that do not talk to a server: command
 * line parsing, etcdctl's txn text format, and output formatting (etcdctl
 * 3.4's "simple" and "json" writers). raftbusctl.c wires them to
 * libraftbus; tests/unit/client/ tests them without a server.
 *
 * Threads: single-threaded CLI code; no function keeps global state.
 */
#ifndef RBCTL_H
#define RBCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "raftbus.h"

/* Exit codes, etcdctl's. */
#define RBCTL_EXIT_OK 0
#define RBCTL_EXIT_ERROR 1            /* request failed, unknown flag/command */
#define RBCTL_EXIT_BAD_CONNECTION 2   /* keep-alive lost */
#define RBCTL_EXIT_INVALID_INPUT 3    /* malformed txn text */
#define RBCTL_EXIT_BAD_FEATURE 4      /* bad flag value (-w, --sort-by, ...) */
#define RBCTL_EXIT_INTERRUPTED 5      /* watch cancelled by the server */
#define RBCTL_EXIT_BAD_ARGS 128       /* wrong number/shape of arguments */

/* Default endpoint (DESIGN.md: native clients on 5379). */
#define RBCTL_ENDPOINT_DEFAULT "127.0.0.1:5379"
/* Largest value read from stdin by `put KEY`. */
#define RBCTL_STDIN_BYTES_MAX (RB_MSG_BYTES_MAX)
/* Longest line of txn input. */
#define RBCTL_TXN_LINE_BYTES_MAX (64u * 1024u)
/* Compares/ops per txn section read from text (server limits apply after). */
#define RBCTL_TXN_ITEMS_MAX 1024u

enum rbctl_out { RBCTL_OUT_SIMPLE = 0, RBCTL_OUT_JSON = 1 };

enum rbctl_cmd {
	RBCTL_CMD_NONE = 0,
	RBCTL_CMD_HELP,          /* --help: print usage of help_topic, exit 0 */
	RBCTL_CMD_VERSION,
	RBCTL_CMD_PUT,
	RBCTL_CMD_GET,
	RBCTL_CMD_DEL,
	RBCTL_CMD_TXN,
	RBCTL_CMD_COMPACT,
	RBCTL_CMD_LEASE_GRANT,
	RBCTL_CMD_LEASE_REVOKE,
	RBCTL_CMD_LEASE_KEEPALIVE,
	RBCTL_CMD_LEASE_TIMETOLIVE,
	RBCTL_CMD_LEASE_LIST,
	RBCTL_CMD_MEMBER_LIST,
	RBCTL_CMD_ENDPOINT_STATUS,
	RBCTL_CMD_ENDPOINT_HEALTH,
};

/* A parsed command line. Pointers point into argv or into memory owned by
 * the struct (released by rbctl_args_free()). */
struct rbctl_args {
	enum rbctl_cmd cmd;
	const char *help_topic;          /* RBCTL_CMD_HELP: "" or a command name */
	const char *endpoints[RB_ENDPOINTS_MAX];
	size_t endpoints_n;
	int out;                         /* enum rbctl_out */
	int64_t dial_timeout_ms;
	int64_t command_timeout_ms;
	/* the request for put/get/del/compact/lease ops (keys borrowed) */
	struct rb_op op;
	bool value_from_stdin;           /* put KEY: read the value from stdin */
	bool print_value_only;
	bool keepalive_once;
	bool cluster;                    /* endpoint --cluster */
	bool interactive;                /* txn -i */
	char *owned[4];                  /* private: buffers to free */
};

/* Parses argv[1..argc) (argv[0] is the program). env_endpoints is the
 * value of RAFTBUSCTL_ENDPOINTS or NULL; --endpoints wins over it. Returns
 * RBCTL_EXIT_OK with *a filled, or an exit code with a one-line message in
 * err[0..errlen) (without "Error: "). a must be zeroed; release it with
 * rbctl_args_free() in both cases. argv must outlive *a. */
int rbctl_parse(int argc, char **argv, const char *env_endpoints,
	struct rbctl_args *a, char *err, size_t errlen);

void rbctl_args_free(struct rbctl_args *a);

/* Usage text of a command ("" or NULL = global). */
void rbctl_usage(FILE *f, const char *topic);

/* Parses a Go-style duration ("5s", "500ms", "1m30s", "2.5s") into
 * milliseconds. Returns false on a malformed or negative duration. */
bool rbctl_parse_duration_ms(const char *s, int64_t *ms);

/* ---- txn text (etcdctl's format) -------------------------------------- */

struct rb_mem;

/* Reads compares, a blank line, success ops, a blank line, failure ops, a
 * blank line from `in` (with prompts on `prompt` when non-NULL, as
 * `etcdctl txn -i`). On success *txn points into *mem_out (free with
 * rbctl_txn_free()). Returns RBCTL_EXIT_OK, or an exit code with a message
 * in err: RBCTL_EXIT_INVALID_INPUT ("EOF", "malformed comparison: ...",
 * "invalid txn request: ..."), or, as etcdctl, the code and message of a
 * get/put/del line's own argument error (e.g. RBCTL_EXIT_BAD_ARGS). */
int rbctl_txn_read(FILE *in, FILE *prompt, struct rb_txn *txn,
	struct rb_mem **mem_out, char *err, size_t errlen);

void rbctl_txn_free(struct rb_mem *mem);

/* ---- output ----------------------------------------------------------- */

/* Prints a successful response of args->cmd in args->out format, as
 * etcdctl 3.4 does. */
void rbctl_print(FILE *f, const struct rbctl_args *args, const struct rb_resp *r);

/* One endpoint's health check. */
struct rbctl_health {
	const char *endpoint;
	bool healthy;
	int64_t took_ns;
	const char *error;       /* when !healthy */
};

/* Health lines / JSON array of all checks. */
void rbctl_print_health(FILE *f, int out, const struct rbctl_health *h, size_t n);

/* Status lines / JSON array for the endpoints that answered (resps[i]->err
 * == 0); the others are skipped (the caller reported them). */
void rbctl_print_status(FILE *f, int out, const char *const *endpoints,
	const struct rb_resp *resps, size_t n);

/* One watch result as etcdctl prints a watch response: simple = for each
 * event its type line, prev kv (if any) and kv; json = one line per
 * result. A progress notification prints "progress notify: REV". */
void rbctl_print_watch(FILE *f, int out, const struct rb_header *h,
	const struct rb_watch_result *res);

/* Go's time.Duration.String() of ns ("1.939533ms", "5.000369456s"). */
void rbctl_format_duration(int64_t ns, char *buf, size_t len);

/* go-humanize's Bytes(): "20 kB", "1.2 MB", "9 B". */
void rbctl_humanize_bytes(uint64_t n, char *buf, size_t len);

/* The message etcdctl would print after "Error: " for a failed response. */
const char *rbctl_error_text(const struct rb_resp *r);

/* ---- streaming commands (rbctl_ext.c) ---------------------------------- */

/* Commands that run for a while or have their own sub-commands (watch,
 * pub, sub, group, queue, lock, elect) parse their own flags with
 * rbctl_ext_parse() and run with their own client; raftbusctl.c hands them
 * argv before the etcdctl-style parser sees it. */

/* Flags and positionals of one streaming command. */
#define RBCTL_EXT_OPTS_MAX 24u
#define RBCTL_EXT_POS_MAX 64u
/* Values of one repeatable flag (--header k=v). */
#define RBCTL_EXT_MULTI_MAX 64u

enum rbctl_ext_kind { RBCTL_EXT_BOOL = 0, RBCTL_EXT_VALUE, RBCTL_EXT_MULTI };

struct rbctl_ext_opt {
	const char *name;        /* long name without "--" */
	char short_name;         /* or 0 */
	int kind;                /* enum rbctl_ext_kind */
};

struct rbctl_ext_parsed {
	/* globals */
	const char *endpoints[RB_ENDPOINTS_MAX];
	size_t endpoints_n;
	int out;                 /* enum rbctl_out */
	int64_t dial_timeout_ms;
	int64_t command_timeout_ms;
	bool help;
	/* the command's own flags: val[i] for opts[i] (NULL when absent,
	 * "true"/"false" for booleans); multi[i][...] for RBCTL_EXT_MULTI */
	const char *val[RBCTL_EXT_OPTS_MAX];
	const char *multi[RBCTL_EXT_OPTS_MAX][RBCTL_EXT_MULTI_MAX];
	size_t multi_n[RBCTL_EXT_OPTS_MAX];
	/* positionals after the command word(s) */
	const char *pos[RBCTL_EXT_POS_MAX];
	size_t pos_n;
	/* `--` seen, and the arguments after it (lock/elect COMMAND ARGS) */
	char **rest;
	int rest_n;
	char *owned;             /* private */
};

/* A streaming command: run() gets the parsed command line. */
struct rbctl_ext_cmd {
	const char *name;        /* first command word */
	const struct rbctl_ext_opt *opts;
	size_t opts_n;
	const char *usage;       /* full help text of the command */
	const char *summary;     /* one line for the global usage */
	int (*run)(const struct rbctl_ext_parsed *p);
};

/* The streaming command named by the first word of argv that is not a
 * global flag, or NULL (then the etcdctl-style parser handles argv). */
const struct rbctl_ext_cmd *rbctl_ext_find(int argc, char **argv);

/* Parses argv[1..argc) for command x: global flags, x's flags anywhere
 * (before `--`), positionals (x's name first, dropped); after `--` with
 * stop_at_dashdash the rest is kept in p->rest. Returns RBCTL_EXIT_OK or an
 * exit code with the message in err. p must be zeroed; release it with
 * rbctl_ext_free(). */
int rbctl_ext_parse(int argc, char **argv, const char *env_endpoints,
	const struct rbctl_ext_cmd *x, struct rbctl_ext_parsed *p, char *err,
	size_t errlen);
void rbctl_ext_free(struct rbctl_ext_parsed *p);

/* Index of flag `name` in x's opts, for p->val / p->multi (asserts it
 * exists: a programming error otherwise). */
size_t rbctl_ext_opt_index(const struct rbctl_ext_cmd *x, const char *name);
/* The value of a flag or NULL. */
const char *rbctl_ext_val(const struct rbctl_ext_parsed *p,
	const struct rbctl_ext_cmd *x, const char *name);
/* A boolean flag: true when given bare or =true. */
bool rbctl_ext_flag(const struct rbctl_ext_parsed *p,
	const struct rbctl_ext_cmd *x, const char *name);

/* Prints "Error: " + the formatted message + newline on stderr and returns
 * code (the streaming commands' way to fail). */
int rbctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens a client on p's endpoints and timeouts. RB_OK or an rb_err. */
int rbctl_ext_client(const struct rbctl_ext_parsed *p, rb_client **out);

/* The table of streaming commands (rbctl_ext.c) and the prints of the
 * global usage. */
extern const struct rbctl_ext_cmd *const rbctl_ext_cmds[];
extern const size_t rbctl_ext_cmds_n;
void rbctl_ext_usage_lines(FILE *f);

/* The commands, one file each. */
extern const struct rbctl_ext_cmd rbctl_watch_cmd;      /* rbctl_watch.c */
extern const struct rbctl_ext_cmd rbctl_pub_cmd;        /* rbctl_pubsub.c */
extern const struct rbctl_ext_cmd rbctl_sub_cmd;        /* rbctl_pubsub.c */
extern const struct rbctl_ext_cmd rbctl_group_cmd;      /* rbctl_pubsub.c */
extern const struct rbctl_ext_cmd rbctl_topic_cmd;      /* rbctl_pubsub.c */
extern const struct rbctl_ext_cmd rbctl_lock_cmd;       /* rbctl_lock.c */
extern const struct rbctl_ext_cmd rbctl_elect_cmd;      /* rbctl_lock.c */
extern const struct rbctl_ext_cmd rbctl_queue_cmd;      /* rbctl_queue.c */

#endif /* RBCTL_H */
