/*
 * main.c - the `raftbus` server executable: parse the settings, open the
 * member, run the loop until SIGTERM/SIGINT, close cleanly.
 *
 * Exit codes: 0 clean stop (and --help/--version), 1 runtime failure
 * (storage, sockets), 2 bad usage.
 */
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bk.h"

extern char **environ;

/* The server a signal stops, and how many handlers are using it: the
 * handler may run on any thread, so main clears `running` and waits for
 * handlers in progress before it frees the server. */
static _Atomic(struct bk_server *) running;
static atomic_int in_handler;

static void on_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&in_handler, 1);
	struct bk_server *s = atomic_load(&running);
	if (s)
		bk_server_stop(s);
	atomic_fetch_sub(&in_handler, 1);
}

int main(int argc, char **argv)
{
	static struct bk_config cfg;
	char err[512] = "";
	int rc = bk_config_parse(&cfg, argc, argv, environ, err, sizeof(err),
	    stdout);
	if (rc == BK_ERR_HELP)
		return 0;
	if (rc) {
		fprintf(stderr, "raftbus: %s\n", err);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct bk_server *s;
	rc = bk_server_open(&cfg, &s);
	if (rc) {
		fprintf(stderr, "raftbus: cannot start: %s\n", bk_strerror(rc));
		return rc == BK_ERR_USAGE ? 2 : 1;   /* 2: a flag is wrong */
	}
	atomic_store(&running, s);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rc = bk_server_run(s);
	atomic_store(&running, NULL);
	while (atomic_load(&in_handler))
		sched_yield();
	bk_server_close(s, true);
	return rc ? 1 : 0;
}
