/*
 * rbctl_ext.c - command-line parsing of raftbusctl's streaming commands
 * (watch, pub, sub, group, queue, lock, elect): the global flags shared
 * with the etcdctl-style commands, each command's own flags (the same
 * cobra-like syntax: `--name=value`, `--name value`, bare booleans, flags
 * before or after positionals) and, for commands that run a program,
 * everything after `--` kept verbatim.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rbctl.h"

const struct rbctl_ext_cmd *const rbctl_ext_cmds[] = {
	&rbctl_watch_cmd,
	&rbctl_pub_cmd,
	&rbctl_sub_cmd,
	&rbctl_group_cmd,
	&rbctl_topic_cmd,
	&rbctl_lock_cmd,
	&rbctl_elect_cmd,
	&rbctl_queue_cmd,
};
const size_t rbctl_ext_cmds_n = sizeof(rbctl_ext_cmds) / sizeof(rbctl_ext_cmds[0]);

enum glob { G_ENDPOINTS, G_WRITE_OUT, G_DIAL_TIMEOUT, G_COMMAND_TIMEOUT, G_HELP, G_COUNT };

static const struct rbctl_ext_opt globals[G_COUNT] = {
	[G_ENDPOINTS] = { "endpoints", 0, RBCTL_EXT_VALUE },
	[G_WRITE_OUT] = { "write-out", 'w', RBCTL_EXT_VALUE },
	[G_DIAL_TIMEOUT] = { "dial-timeout", 0, RBCTL_EXT_VALUE },
	[G_COMMAND_TIMEOUT] = { "command-timeout", 0, RBCTL_EXT_VALUE },
	[G_HELP] = { "help", 'h', RBCTL_EXT_BOOL },
};

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

static int find_opt(const struct rbctl_ext_opt *opts, size_t n, const char *name,
	size_t len, char short_name)
{
	for (size_t i = 0; i < n; i++) {
		if (short_name && opts[i].short_name == short_name)
			return (int)i;
		if (!short_name && strlen(opts[i].name) == len &&
		    strncmp(opts[i].name, name, len) == 0)
			return (int)i;
	}
	return -1;
}

/* Does argv[i] (a flag) consume the next argument as its value? */
static bool global_takes_value(const char *arg)
{
	const char *name = arg[1] == '-' ? arg + 2 : arg + 1;
	if (strchr(name, '='))
		return false;
	int id = arg[1] == '-' ? find_opt(globals, G_COUNT, name, strlen(name), 0) :
		(strlen(name) == 1 ? find_opt(globals, G_COUNT, NULL, 0, name[0]) : -1);
	return id >= 0 && globals[id].kind == RBCTL_EXT_VALUE;
}

const struct rbctl_ext_cmd *rbctl_ext_find(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			return NULL;
		if (a[0] == '-' && a[1] != '\0') {
			if (global_takes_value(a))
				i++;
			continue;
		}
		for (size_t k = 0; k < rbctl_ext_cmds_n; k++)
			if (strcmp(rbctl_ext_cmds[k]->name, a) == 0)
				return rbctl_ext_cmds[k];
		return NULL;
	}
	return NULL;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const f[] = { "0", "f", "F", "FALSE", "false", "False" };
	for (size_t i = 0; i < 6; i++) {
		if (strcmp(s, t[i]) == 0)
			return (*out = true);
		if (strcmp(s, f[i]) == 0)
			return !(*out = false);
	}
	return false;
}

/* Stores the value of one flag (global or the command's). */
static int set_opt(const struct rbctl_ext_opt *o, const char **slot,
	const char **multi, size_t *multi_n, const char *arg, const char *value,
	char *err, size_t errlen)
{
	if (o->kind == RBCTL_EXT_BOOL) {
		bool b;
		if (!parse_bool(value, &b))
			return fail(err, errlen, RBCTL_EXIT_ERROR,
				"invalid argument \"%s\" for \"%s\" flag: strconv.ParseBool: "
				"parsing \"%s\": invalid syntax", value, arg, value);
		*slot = b ? "true" : "false";
		return 0;
	}
	if (o->kind == RBCTL_EXT_MULTI) {
		if (*multi_n == RBCTL_EXT_MULTI_MAX)
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
				"too many %s flags (max %u)", arg, RBCTL_EXT_MULTI_MAX);
		multi[(*multi_n)++] = value;
	}
	*slot = value;
	return 0;
}

/* One "-x..." / "--name..." argument; may consume argv[*i + 1]. */
static int parse_flag(int argc, char **argv, int *i, const struct rbctl_ext_cmd *x,
	struct rbctl_ext_parsed *p, const char **gval, char *err, size_t errlen)
{
	const char *arg = argv[*i];
	bool is_long = arg[1] == '-';
	const char *name = is_long ? arg + 2 : arg + 1;
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	char sn = !is_long && len == 1 ? name[0] : 0;
	if (!is_long && len != 1)
		return fail(err, errlen, RBCTL_EXIT_ERROR, "unknown shorthand flag: %s", arg);
	const struct rbctl_ext_opt *o;
	const char **slot, **multi = NULL;
	size_t *multi_n = NULL;
	int id = find_opt(globals, G_COUNT, name, len, sn);
	if (id >= 0) {
		o = &globals[id];
		slot = &gval[id];
	} else {
		id = find_opt(x->opts, x->opts_n, name, len, sn);
		if (id < 0)
			return fail(err, errlen, RBCTL_EXIT_ERROR, "unknown %s: %s",
				is_long ? "flag" : "shorthand flag", arg);
		o = &x->opts[id];
		slot = &p->val[id];
		multi = p->multi[id];
		multi_n = &p->multi_n[id];
	}
	const char *value = "true";
	if (eq) {
		value = eq + 1;
	} else if (o->kind != RBCTL_EXT_BOOL) {
		if (*i + 1 >= argc)
			return fail(err, errlen, RBCTL_EXIT_ERROR, "flag needs an argument: %s", arg);
		value = argv[++*i];
	}
	return set_opt(o, slot, multi, multi_n, arg, value, err, errlen);
}

static int parse_globals(const char **gval, const char *env_endpoints,
	struct rbctl_ext_parsed *p, char *err, size_t errlen)
{
	p->out = RBCTL_OUT_SIMPLE;
	p->dial_timeout_ms = RB_DIAL_TIMEOUT_MS_DEFAULT;
	p->command_timeout_ms = RB_COMMAND_TIMEOUT_MS_DEFAULT;
	p->help = gval[G_HELP] && strcmp(gval[G_HELP], "true") == 0;
	const char *w = gval[G_WRITE_OUT];
	if (w && strcmp(w, "json") == 0)
		p->out = RBCTL_OUT_JSON;
	else if (w && strcmp(w, "simple") != 0)
		return fail(err, errlen, RBCTL_EXIT_BAD_FEATURE, "unsupported output format");
	const char *dt = gval[G_DIAL_TIMEOUT], *ct = gval[G_COMMAND_TIMEOUT];
	if (dt && !rbctl_parse_duration_ms(dt, &p->dial_timeout_ms))
		return fail(err, errlen, RBCTL_EXIT_ERROR,
			"invalid argument \"%s\" for \"--dial-timeout\" flag: bad duration", dt);
	if (ct && !rbctl_parse_duration_ms(ct, &p->command_timeout_ms))
		return fail(err, errlen, RBCTL_EXIT_ERROR,
			"invalid argument \"%s\" for \"--command-timeout\" flag: bad duration", ct);
	const char *eps = gval[G_ENDPOINTS] ? gval[G_ENDPOINTS] :
		(env_endpoints && *env_endpoints ? env_endpoints : RBCTL_ENDPOINT_DEFAULT);
	p->owned = strdup(eps);
	if (p->owned == NULL)
		return fail(err, errlen, RBCTL_EXIT_ERROR, "out of memory");
	for (char *save = NULL, *tok = strtok_r(p->owned, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*tok == '\0')
			continue;
		if (p->endpoints_n == RB_ENDPOINTS_MAX)
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS, "too many endpoints (max %u)",
				RB_ENDPOINTS_MAX);
		p->endpoints[p->endpoints_n++] = tok;
	}
	if (p->endpoints_n == 0)
		return fail(err, errlen, RBCTL_EXIT_BAD_ARGS, "no endpoints given");
	return 0;
}

int rbctl_ext_parse(int argc, char **argv, const char *env_endpoints,
	const struct rbctl_ext_cmd *x, struct rbctl_ext_parsed *p, char *err,
	size_t errlen)
{
	assert(x->opts_n <= RBCTL_EXT_OPTS_MAX);
	const char *gval[G_COUNT] = { 0 };
	bool named = false;
	err[0] = '\0';
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			p->rest = argv + i + 1;
			p->rest_n = argc - i - 1;
			break;
		}
		if (a[0] == '-' && a[1] != '\0') {
			int rc = parse_flag(argc, argv, &i, x, p, gval, err, errlen);
			if (rc)
				return rc;
			continue;
		}
		if (!named && strcmp(a, x->name) == 0) {
			named = true;
			continue;
		}
		if (p->pos_n == RBCTL_EXT_POS_MAX)
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS, "too many arguments");
		p->pos[p->pos_n++] = a;
	}
	return parse_globals(gval, env_endpoints, p, err, errlen);
}

void rbctl_ext_free(struct rbctl_ext_parsed *p)
{
	if (p == NULL)
		return;
	free(p->owned);
	memset(p, 0, sizeof(*p));
}

size_t rbctl_ext_opt_index(const struct rbctl_ext_cmd *x, const char *name)
{
	int id = find_opt(x->opts, x->opts_n, name, strlen(name), 0);
	assert(id >= 0);
	return (size_t)id;
}

const char *rbctl_ext_val(const struct rbctl_ext_parsed *p,
	const struct rbctl_ext_cmd *x, const char *name)
{
	return p->val[rbctl_ext_opt_index(x, name)];
}

bool rbctl_ext_flag(const struct rbctl_ext_parsed *p,
	const struct rbctl_ext_cmd *x, const char *name)
{
	const char *v = rbctl_ext_val(p, x, name);
	return v && strcmp(v, "true") == 0;
}

int rbctl_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("Error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return code;
}

int rbctl_ext_client(const struct rbctl_ext_parsed *p, rb_client **out)
{
	struct rb_config cfg = { .endpoints = p->endpoints, .endpoints_n = p->endpoints_n,
		.dial_timeout_ms = p->dial_timeout_ms,
		.command_timeout_ms = p->command_timeout_ms };
	return rb_client_open(&cfg, out);
}

void rbctl_ext_usage_lines(FILE *f)
{
	for (size_t i = 0; i < rbctl_ext_cmds_n; i++)
		fprintf(f, "\t%s\n", rbctl_ext_cmds[i]->summary);
}
