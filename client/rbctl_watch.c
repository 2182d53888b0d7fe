/*
 * rbctl_watch.c - `raftbusctl watch`: streams the events of a key, a range
 * or a prefix as etcdctl 3.4 prints them, from now or replayed from a
 * revision, until interrupted or the server cancels the watch (compacted
 * revision: exit 5 as etcdctl). A member that dies is invisible: the
 * watcher resumes on another member from the next revision.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "rbctl.h"

/* How often the loop wakes to notice an interrupt. */
#define RBCTL_WATCH_TICK_MS 1000

static volatile sig_atomic_t stop_watch;

static void on_signal(int sig)
{
	(void)sig;
	stop_watch = 1;
}

static const struct rbctl_ext_opt watch_opts[] = {
	{ "prefix", 0, RBCTL_EXT_BOOL },
	{ "rev", 0, RBCTL_EXT_VALUE },
	{ "prev-kv", 0, RBCTL_EXT_BOOL },
	{ "progress-notify", 0, RBCTL_EXT_BOOL },
	{ "progress-interval", 0, RBCTL_EXT_VALUE },
	{ "no-put", 0, RBCTL_EXT_BOOL },
	{ "no-delete", 0, RBCTL_EXT_BOOL },
};

static int run_watch(const struct rbctl_ext_parsed *p);

const struct rbctl_ext_cmd rbctl_watch_cmd = {
	.name = "watch",
	.opts = watch_opts,
	.opts_n = sizeof(watch_opts) / sizeof(watch_opts[0]),
	.summary = "watch KEY [END] [--prefix]\t\tWatches events stream on keys or prefixes",
	.usage = "NAME:\n\twatch - Watches events stream on keys or prefixes\n\n"
		"USAGE:\n\traftbusctl watch [options] <key or prefix> [range_end]\n\n"
		"OPTIONS:\n"
		"      --prefix[=false]\t\tWatch on a prefix if prefix is set\n"
		"      --prev-kv[=false]\t\tget the previous key-value pair before the event happens\n"
		"      --rev=0\t\t\tRevision to start watching (replay history from it)\n"
		"      --progress-notify[=false]\tget periodic watch progress notifications\n"
		"      --progress-interval=10m\tinterval of progress notifications\n"
		"      --no-put[=false]\t\tdo not report PUT events\n"
		"      --no-delete[=false]\tdo not report DELETE events\n",
	.run = run_watch,
};


/* Fills o from the command line; the range end is written to end_buf. */
static int watch_opts_of(const struct rbctl_ext_parsed *p, struct rb_watch_opts *o,
	uint8_t *end_buf, int64_t *progress_ms)
{
	const struct rbctl_ext_cmd *x = &rbctl_watch_cmd;
	bool prefix = rbctl_ext_flag(p, x, "prefix");
	if (p->rest)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "exec-command is not supported");
	if (p->pos_n < 1 || p->pos_n > 2)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "bad number of arguments");
	if (prefix && p->pos_n == 2)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS,
			"unexpected range_end: --prefix already sets the range");
	*o = (struct rb_watch_opts){ .key = (const uint8_t *)p->pos[0],
		.key_len = strlen(p->pos[0]), .prev_kv = rbctl_ext_flag(p, x, "prev-kv"),
		.no_put = rbctl_ext_flag(p, x, "no-put"),
		.no_delete = rbctl_ext_flag(p, x, "no-delete"),
		.progress_notify = rbctl_ext_flag(p, x, "progress-notify") };
	if (o->key_len == 0 && !prefix)
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "key is not provided");
	if (prefix) {
		o->range_end = end_buf;
		o->range_end_len = rb_prefix_end(o->key, o->key_len, end_buf);
		if (o->key_len == 0) {   /* every key: from "\0" */
			static const uint8_t zero = 0;
			o->key = &zero;
			o->key_len = 1;
		}
	} else if (p->pos_n == 2) {
		o->range_end = (const uint8_t *)p->pos[1];
		o->range_end_len = strlen(p->pos[1]);
	}
	const char *rev = rbctl_ext_val(p, x, "rev");
	if (rev) {
		char *end;
		errno = 0;
		long long v = strtoll(rev, &end, 10);
		if (*rev == '\0' || *end != '\0' || errno) {
			fprintf(stderr, "Error: invalid argument \"%s\" for \"--rev\" flag: "
				"strconv.ParseInt: parsing \"%s\": invalid syntax\n", rev, rev);
			return RBCTL_EXIT_ERROR;
		}
		if (v < 0)
			return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "--rev must not be negative");
		o->start_rev = v;
	}
	const char *pi = rbctl_ext_val(p, x, "progress-interval");
	*progress_ms = 0;
	if (pi && (!rbctl_parse_duration_ms(pi, progress_ms) || *progress_ms <= 0)) {
		fprintf(stderr, "Error: invalid argument \"%s\" for \"--progress-interval\" "
			"flag: bad duration\n", pi);
		return RBCTL_EXIT_ERROR;
	}
	return 0;
}

/* etcd's text of a watch cancellation reason. */
static const char *cancel_text(int err)
{
	return err == RB_ERR_COMPACTED ?
		"etcdserver: mvcc: required revision has been compacted" : rb_strerror(err);
}

/* Prints what one rb_watch_next() returned; true when the watch ended. */
static bool print_results(const struct rbctl_ext_parsed *p, const struct rb_resp *r)
{
	const struct rb_watch_resp *wr = &r->body.u.watch;
	bool ended = false;
	for (size_t i = 0; i < wr->results_n; i++) {
		const struct rb_watch_result *res = &wr->results[i];
		if (!res->canceled || p->out == RBCTL_OUT_JSON)
			rbctl_print_watch(stdout, p->out, &r->header, res);
		if (res->canceled)
			fprintf(stderr, "watch was canceled (%s)\n", cancel_text(res->err));
		ended |= res->canceled;
	}
	fflush(stdout);
	return ended;
}

static int watch_loop(const struct rbctl_ext_parsed *p, rb_watcher *w)
{
	bool warned = false;
	while (!stop_watch) {
		struct rb_resp r = { 0 };
		int rc = rb_watch_next(w, RBCTL_WATCH_TICK_MS, &r);
		if (rc == 0) {
			warned = false;
			bool ended = print_results(p, &r);
			rb_resp_free(&r);
			if (ended)
				return rbctl_fail(RBCTL_EXIT_INTERRUPTED, "watch is canceled by the server");
			continue;
		}
		if (rc != RB_ERR_UNAVAILABLE && rc != RB_ERR_TIMEOUT) {
			int code = rbctl_fail(RBCTL_EXIT_ERROR, "%s", rbctl_error_text(&r));
			rb_resp_free(&r);
			return code;
		}
		/* as etcdctl: keep retrying while no member answers */
		if (!warned)
			fprintf(stderr, "watch: no member answered (%s); retrying\n",
				rbctl_error_text(&r));
		warned = true;
		rb_resp_free(&r);
	}
	return RBCTL_EXIT_OK;
}

static int run_watch(const struct rbctl_ext_parsed *p)
{
	struct rb_watch_opts o;
	uint8_t *end_buf = malloc(p->pos_n ? strlen(p->pos[0]) + 1 : 1);
	int64_t progress_ms;
	if (end_buf == NULL)
		return rbctl_fail(RBCTL_EXIT_ERROR, "out of memory");
	int rc = watch_opts_of(p, &o, end_buf, &progress_ms);
	if (rc) {
		free(end_buf);
		return rc;
	}
	rb_client *c = NULL;
	rb_watcher *w = NULL;
	int64_t id;
	if ((rc = rbctl_ext_client(p, &c)) != 0) {
		free(end_buf);
		return rbctl_fail(RBCTL_EXIT_BAD_ARGS, "bad endpoint list");
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rc = rb_watch_open(c, progress_ms, &w);
	if (rc == 0)
		rc = rb_watch_add(w, &o, &id);
	free(end_buf);
	if (rc == 0)
		rc = watch_loop(p, w);
	else
		rc = rbctl_fail(RBCTL_EXIT_ERROR, "%s", rb_strerror(rc));
	rb_watch_close(w);
	rb_client_close(c);
	return rc;
}
