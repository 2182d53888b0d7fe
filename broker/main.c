/*
 * main.c - the `raftbus` server executable: parse the settings, open the
 * member, run the loop until SIGTERM/SIGINT, close cleanly.
 *
 * Exit codes: 0 clean stop (and --help/--version), 1 runtime failure
 * (storage, sockets), 2 bad usage.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bk.h"

extern char **environ;

static struct bk_server *running;

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		bk_server_stop(running);
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
	running = s;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rc = bk_server_run(s);
	running = NULL;
	bk_server_close(s);
	return rc ? 1 : 0;
}
