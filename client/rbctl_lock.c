/*
 * rbctl_lock.c - `raftbusctl lock` and `raftbusctl elect`, etcdctl 3.4's
 * lock and elect commands over libraftbus's locks, elections and sessions
 * (docs/locks.md).
 *
 *   lock NAME                  takes the lock, prints the owner key (as
 *                              `get` prints it) and holds it until SIGINT or
 *                              SIGTERM, then unlocks
 *   lock NAME COMMAND ARGS...  runs COMMAND while holding the lock, with
 *                              ETCD_LOCK_KEY / ETCD_LOCK_REV (etcdctl's) and
 *                              RAFTBUS_LOCK_KEY / RAFTBUS_LOCK_TOKEN in its
 *                              environment; exits with COMMAND's status
 *   elect NAME PROPOSAL        campaigns, prints the leader key and value
 *                              once elected, holds until interrupted, resigns
 *   elect --listen NAME        prints every leader (key, value) as it changes
 *
 * The lease is kept alive by an rb_session (a thread with its own client).
 * When the session expires while the lock is held, the command (if any) is
 * sent SIGTERM - it no longer holds the lock - and raftbusctl exits 1 with
 * "session expired", where etcdctl would let the command run on.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rbctl.h"

/* How often the holding loops look at signals, the session and the child. */
#define RBCTL_LOCK_TICK_MS 100
/* Grace a command gets after SIGTERM when the lock was lost. */
#define RBCTL_LOCK_KILL_GRACE_MS 10000
/* Longest lease TTL accepted on the command line (etcd's max lease TTL). */
#define RBCTL_LOCK_TTL_S_MAX 9000000000LL

static volatile sig_atomic_t stop_sig;   /* the signal that asked to stop */

static void on_signal(int sig)
{
	stop_sig = sig;
}

static const struct rbctl_ext_opt lock_opts[] = {
	{ "ttl", 0, RBCTL_EXT_VALUE },
};

static const struct rbctl_ext_opt elect_opts[] = {
	{ "listen", 'l', RBCTL_EXT_BOOL },
	{ "ttl", 0, RBCTL_EXT_VALUE },
};

static int run_lock(const struct rbctl_ext_parsed *p);
static int run_elect(const struct rbctl_ext_parsed *p);

const struct rbctl_ext_cmd rbctl_lock_cmd = {
	.name = "lock",
	.opts = lock_opts,
	.opts_n = sizeof(lock_opts) / sizeof(lock_opts[0]),
	.summary = "lock <lockname> [exec-command arg1 arg2 ...]\tAcquires a named lock",
	.usage = "NAME:\n\tlock - Acquires a named lock\n\n"
		"USAGE:\n\traftbusctl lock <lockname> [exec-command arg1 arg2 ...] [flags]\n\n"
		"OPTIONS:\n"
		"  -h, --help[=false]\thelp for lock\n"
		"      --ttl=10\t\ttimeout for session\n\n"
		"Put `--` before a command that has flags of its own. The command gets\n"
		"ETCD_LOCK_KEY, ETCD_LOCK_REV, RAFTBUS_LOCK_KEY and RAFTBUS_LOCK_TOKEN\n"
		"(the fencing token) in its environment; raftbusctl exits with its status.\n",
	.run = run_lock,
};

const struct rbctl_ext_cmd rbctl_elect_cmd = {
	.name = "elect",
	.opts = elect_opts,
	.opts_n = sizeof(elect_opts) / sizeof(elect_opts[0]),
	.summary = "elect <election-name> [proposal]\tObserves and participates in leader election",
	.usage = "NAME:\n\telect - Observes and participates in leader election\n\n"
		"USAGE:\n\traftbusctl elect <election-name> [proposal] [flags]\n\n"
		"OPTIONS:\n"
		"  -h, --help[=false]\thelp for elect\n"
		"  -l, --listen[=false]\tobservation mode\n"
		"      --ttl=60\t\ttimeout for session (raftbusctl only)\n",
	.run = run_elect,
};


static void sleep_tick(void)
{
	struct timespec ts = { 0, RBCTL_LOCK_TICK_MS * 1000000L };
	nanosleep(&ts, NULL);
}

static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* --ttl: whole seconds >= 1 (as etcdctl's int flag). */
static int parse_ttl(const char *v, int64_t dflt, int64_t *ttl_s)
{
	*ttl_s = dflt;
	if (v == NULL)
		return 0;
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno)
		return rbctl_fail(RBCTL_EXIT_ERROR, "invalid argument \"%s\" for \"--ttl\" flag: "
			"strconv.ParseInt: parsing \"%s\": invalid syntax", v, v);
	if (n < 1 || n > RBCTL_LOCK_TTL_S_MAX)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "--ttl must be between 1 and %lld seconds",
			RBCTL_LOCK_TTL_S_MAX);
	*ttl_s = n;
	return 0;
}

/* A client and a session with the given TTL; prints the error itself. */
static int open_session(const struct rbctl_ext_parsed *p, int64_t ttl_s,
	rb_client **c, rb_session **s)
{
	if (rbctl_ext_client(p, c) != 0)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "bad endpoint list");
	struct rb_resp r = { 0 };
	int rc = rb_session_open(*c, ttl_s, s, &r);
	if (rc) {
		int code = rbctl_fail(RBCTL_EXIT_ERROR, "%s", rbctl_error_text(&r));
		rb_resp_free(&r);
		rb_client_close(*c);
		*c = NULL;
		return code;
	}
	rb_resp_free(&r);
	return 0;
}

/* Prints a key as `etcdctl get` does (etcdctl's display.Get). */
static void print_kv(const struct rbctl_ext_parsed *p, const struct rb_header *h,
	const struct rb_kv *kv)
{
	struct rbctl_args a = { .cmd = RBCTL_CMD_GET, .out = p->out };
	struct rb_kv one = *kv;
	struct rb_resp r = { .msg = "", .header = *h };
	r.body.type = RB_OP_RANGE;
	r.body.u.range = (struct rb_range_resp){ .kvs = &one, .kvs_n = 1, .count = 1 };
	rbctl_print(stdout, &a, &r);
	fflush(stdout);
}

/* Reads the owned key back and prints it, as etcdctl does once it holds
 * the lock or leads. */
static int print_owned(const struct rbctl_ext_parsed *p, rb_client *c,
	const struct rb_cc_key *k, const char *lost)
{
	struct rb_range q = { .key = k->key, .key_len = k->key_len };
	struct rb_resp r = { 0 };
	int rc = rb_range(c, &q, &r);
	int code = 0;
	if (rc)
		code = rbctl_fail(RBCTL_EXIT_ERROR, "%s", rbctl_error_text(&r));
	else if (r.body.u.range.kvs_n != 1)
		code = rbctl_fail(RBCTL_EXIT_ERROR, "%s", lost);
	else
		print_kv(p, &r.header, &r.body.u.range.kvs[0]);
	rb_resp_free(&r);
	return code;
}

/* Holds until a signal (0) or the session's end (1). */
static int hold(rb_session *s)
{
	while (!stop_sig && !rb_session_expired(s))
		sleep_tick();
	return stop_sig ? 0 : 1;
}

/* Takes the lock, waiting until granted or interrupted. */
static int take_lock(rb_client *c, rb_session *s, const char *name,
	struct rb_cc_key *k)
{
	struct rb_cc_wait w = { .timeout_ms = -1, .cancel = &stop_sig };
	struct rb_resp r = { 0 };
	int rc = rb_lock(c, (const uint8_t *)name, strlen(name), rb_session_lease(s),
		&w, k, &r);
	int code = rc ? rbctl_fail(RBCTL_EXIT_ERROR, "%s", rbctl_error_text(&r)) : 0;
	rb_resp_free(&r);
	return code;
}

static void release(rb_client *c, const struct rb_cc_key *k, bool elect)
{
	struct rb_resp r = { 0 };
	int rc = elect ? rb_resign(c, k, &r) : rb_unlock(c, k, &r);
	if (rc)
		fprintf(stderr, "Error: %s\n", rbctl_error_text(&r));
	rb_resp_free(&r);
}

/* ---- lock with a command ----------------------------------------------- */

/* The environment entries of the command. */
static void lock_env(const struct rb_cc_key *k)
{
	char key[RB_CC_KEY_BYTES_MAX + 1], num[32];
	memcpy(key, k->key, k->key_len);
	key[k->key_len] = '\0';
	setenv("ETCD_LOCK_KEY", key, 1);
	setenv("RAFTBUS_LOCK_KEY", key, 1);
	snprintf(num, sizeof(num), "%" PRId64, k->revision);
	setenv("ETCD_LOCK_REV", num, 1);
	snprintf(num, sizeof(num), "%" PRId64, k->token);
	setenv("RAFTBUS_LOCK_TOKEN", num, 1);
}

/* Starts argv; an exec failure comes back through a close-on-exec pipe
 * as its errno. Returns the pid, or -1 with the message printed. */
static pid_t spawn(char **argv, const struct rb_cc_key *k)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		rbctl_fail(RBCTL_EXIT_ERROR, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		lock_env(k);
		execvp(argv[0], argv);
		int e = errno;
		ssize_t n = write(fds[1], &e, sizeof(e));
		(void)n;
		_exit(127);
	}
	close(fds[1]);
	int e = 0;
	ssize_t n = pid > 0 ? read(fds[0], &e, sizeof(e)) : 0;
	close(fds[0]);
	if (pid < 0 || n == (ssize_t)sizeof(e)) {
		if (pid > 0)
			waitpid(pid, NULL, 0);
		if (pid < 0)
			rbctl_fail(RBCTL_EXIT_ERROR, "fork: %s", strerror(errno));
		else if (e == ENOENT && strchr(argv[0], '/') == NULL)
			rbctl_fail(RBCTL_EXIT_ERROR, "exec: \"%s\": executable file not "
				"found in $PATH", argv[0]);
		else   /* Go's os/exec words it so */
			rbctl_fail(RBCTL_EXIT_ERROR, "fork/exec %s: %s", argv[0], strerror(e));
		return -1;
	}
	return pid;
}

/* Waits for the command, passing SIGINT/SIGTERM on to it; when the lock is
 * lost it stops the command. Returns its wait status, *lost set when the
 * session expired. */
static int wait_child(pid_t pid, rb_session *s, bool *lost)
{
	int st = 0, passed = 0;
	int64_t kill_at = -1, waited_ms = 0;
	*lost = false;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (stop_sig && passed != stop_sig) {
			passed = stop_sig;
			kill(pid, passed);
		}
		if (!*lost && rb_session_expired(s)) {
			*lost = true;
			fprintf(stderr, "Error: session expired: the lock is lost; "
				"stopping the command (SIGTERM)\n");
			kill(pid, SIGTERM);
			kill_at = waited_ms + RBCTL_LOCK_KILL_GRACE_MS;
		}
		if (kill_at >= 0 && waited_ms >= kill_at) {
			kill(pid, SIGKILL);
			kill_at = -1;
		}
		sleep_tick();
		waited_ms += RBCTL_LOCK_TICK_MS;
	}
	return st;
}

static int lock_exec(rb_client *c, rb_session *s, const struct rb_cc_key *k,
	char **argv)
{
	pid_t pid = spawn(argv, k);
	if (pid < 0) {
		release(c, k, false);
		return RBCTL_EXIT_ERROR;
	}
	bool lost;
	int st = wait_child(pid, s, &lost);
	if (lost)
		return RBCTL_EXIT_ERROR;
	release(c, k, false);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : RBCTL_EXIT_ERROR;
}

/* The command: positionals after the name, then everything after `--`. */
static char **command_argv(const struct rbctl_ext_parsed *p)
{
	size_t n = p->pos_n - 1 + (size_t)(p->rest ? p->rest_n : 0);
	if (n == 0)
		return NULL;
	char **argv = calloc(n + 1, sizeof(*argv));
	if (argv == NULL)
		return NULL;
	size_t k = 0;
	for (size_t i = 1; i < p->pos_n; i++)
		argv[k++] = (char *)p->pos[i];
	for (int i = 0; p->rest && i < p->rest_n; i++)
		argv[k++] = p->rest[i];
	return argv;
}

static int run_lock(const struct rbctl_ext_parsed *p)
{
	int64_t ttl_s;
	if (p->pos_n < 1 || p->pos[0][0] == '\0')
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS,
			"lock takes a lock name argument and an optional command to execute");
	int code = parse_ttl(rbctl_ext_val(p, &rbctl_lock_cmd, "ttl"),
		RB_LOCK_TTL_S_DEFAULT, &ttl_s);
	if (code)
		return code;
	char **argv = command_argv(p);
	if (argv == NULL && (p->pos_n > 1 || (p->rest && p->rest_n > 0)))
		return rbctl_fail(RBCTL_EXIT_ERROR, "out of memory");
	rb_client *c = NULL;
	rb_session *s = NULL;
	catch_signals();
	if ((code = open_session(p, ttl_s, &c, &s)) != 0)
		goto out_free_argv;
	struct rb_cc_key k;
	if ((code = take_lock(c, s, p->pos[0], &k)) != 0)
		goto out_close;
	if (argv) {
		code = lock_exec(c, s, &k, argv);
		goto out_close;
	}
	if ((code = print_owned(p, c, &k, "lock lost on init")) != 0)
		goto out_close;
	if (hold(s) != 0) {
		code = rbctl_fail(RBCTL_EXIT_ERROR, "session expired");
		goto out_close;
	}
	release(c, &k, false);
out_close:
	rb_session_close(s);
	rb_client_close(c);
out_free_argv:
	free(argv);
	return code;
}

/* ---- elect --------------------------------------------------------------- */

static int observe(const struct rbctl_ext_parsed *p, rb_client *c)
{
	rb_observer *o = NULL;
	const char *name = p->pos[0];
	int rc = rb_observe_open(c, (const uint8_t *)name, strlen(name), &o);
	bool warned = false;
	while (rc == 0 || rc == RB_ERR_UNAVAILABLE || rc == RB_ERR_TIMEOUT) {
		if (stop_sig)
			break;
		if (o == NULL)   /* no member answered the set-up: try again */
			rc = rb_observe_open(c, (const uint8_t *)name, strlen(name), &o);
		if (o == NULL) {
			sleep_tick();
			continue;
		}
		bool got = false;
		struct rb_leader_event ev;
		rc = rb_observe_next(o, RBCTL_LOCK_TICK_MS * 2, &got, &ev);
		if (rc && !warned)
			fprintf(stderr, "elect: no member answered (%s); retrying\n",
				rb_cc_strerror(rc));
		warned = rc != 0;
		if (got) {
			struct rb_header h = { .revision = ev.revision };
			print_kv(p, &h, &ev.kv);
		}
	}
	rb_observe_close(o);
	if (rc && !stop_sig)
		return rbctl_fail(RBCTL_EXIT_ERROR, "%s", rb_cc_strerror(rc));
	return RBCTL_EXIT_OK;
}

static int campaign(const struct rbctl_ext_parsed *p, rb_client *c, rb_session *s)
{
	const char *name = p->pos[0], *prop = p->pos[1];
	struct rb_cc_wait w = { .timeout_ms = -1, .cancel = &stop_sig };
	struct rb_cc_key k;
	struct rb_resp r = { 0 };
	int rc = rb_campaign(c, (const uint8_t *)name, strlen(name), rb_session_lease(s),
		(const uint8_t *)prop, strlen(prop), &w, &k, &r);
	int code = rc ? rbctl_fail(RBCTL_EXIT_ERROR, "%s", rbctl_error_text(&r)) : 0;
	rb_resp_free(&r);
	if (code)
		return code;
	if ((code = print_owned(p, c, &k, "election lost on init")) != 0)
		return code;
	if (hold(s) != 0)
		return rbctl_fail(RBCTL_EXIT_ERROR, "elect: session expired");
	release(c, &k, true);
	return RBCTL_EXIT_OK;
}

static int run_elect(const struct rbctl_ext_parsed *p)
{
	const struct rbctl_ext_cmd *x = &rbctl_elect_cmd;
	bool listen = rbctl_ext_flag(p, x, "listen");
	if (p->rest || p->pos_n < 1 || p->pos_n > 2)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "elect takes one election name argument "
			"and an optional proposal argument");
	if (!listen && p->pos_n != 2)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "no proposal argument but -l not set");
	if (p->pos[0][0] == '\0')
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "election name is empty");
	int64_t ttl_s;
	int code = parse_ttl(rbctl_ext_val(p, x, "ttl"), RB_SESSION_TTL_S_DEFAULT, &ttl_s);
	if (code)
		return code;
	catch_signals();
	rb_client *c = NULL;
	if (listen) {
		if (rbctl_ext_client(p, &c) != 0)
			return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "bad endpoint list");
		code = observe(p, c);
		rb_client_close(c);
		return code;
	}
	rb_session *s = NULL;
	if ((code = open_session(p, ttl_s, &c, &s)) != 0)
		return code;
	code = campaign(p, c, s);
	rb_session_close(s);
	rb_client_close(c);
	return code;
}
