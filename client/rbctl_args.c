/*
 * rbctl_args.c - raftbusctl's command line: etcdctl's commands, flags,
 * error messages and exit codes (checked against etcdctl 3.4.23), parsed
 * into a ready request before anything is sent.
 *
 * Flags may come before or after the command words, as with etcdctl's
 * cobra parser: `--name=value`, `--name value`, `-w json`, boolean flags
 * bare or `--flag=true|false`; `--` ends the flags (for keys starting with
 * '-'). A flag that the command does not have is "unknown flag" (exit 1).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rbctl.h"

#define RBCTL_POSITIONALS_MAX 8u

/* Which commands accept a flag (bit per enum rbctl_cmd). */
#define C(x) (1u << (x))
#define C_ALL 0xffffffffu

enum flag_id {
	F_ENDPOINTS, F_WRITE_OUT, F_DIAL_TIMEOUT, F_COMMAND_TIMEOUT, F_HELP,
	F_LEASE, F_PREV_KV, F_IGNORE_VALUE, F_IGNORE_LEASE, F_PREFIX, F_FROM_KEY,
	F_REV, F_LIMIT, F_KEYS_ONLY, F_COUNT_ONLY, F_PRINT_VALUE_ONLY, F_SORT_BY,
	F_ORDER, F_CONSISTENCY, F_ONCE, F_KEYS, F_CLUSTER, F_INTERACTIVE,
	F_PHYSICAL, F_COUNT
};

struct flag_def {
	const char *name;        /* long name without "--" */
	char short_name;         /* or 0 */
	bool takes_value;        /* false: boolean */
	uint32_t cmds;
};

static const struct flag_def flag_defs[F_COUNT] = {
	[F_ENDPOINTS] = { "endpoints", 0, true, C_ALL },
	[F_WRITE_OUT] = { "write-out", 'w', true, C_ALL },
	[F_DIAL_TIMEOUT] = { "dial-timeout", 0, true, C_ALL },
	[F_COMMAND_TIMEOUT] = { "command-timeout", 0, true, C_ALL },
	[F_HELP] = { "help", 'h', false, C_ALL },
	[F_LEASE] = { "lease", 0, true, C(RBCTL_CMD_PUT) },
	[F_PREV_KV] = { "prev-kv", 0, false, C(RBCTL_CMD_PUT) | C(RBCTL_CMD_DEL) },
	[F_IGNORE_VALUE] = { "ignore-value", 0, false, C(RBCTL_CMD_PUT) },
	[F_IGNORE_LEASE] = { "ignore-lease", 0, false, C(RBCTL_CMD_PUT) },
	[F_PREFIX] = { "prefix", 0, false, C(RBCTL_CMD_GET) | C(RBCTL_CMD_DEL) },
	[F_FROM_KEY] = { "from-key", 0, false, C(RBCTL_CMD_GET) | C(RBCTL_CMD_DEL) },
	[F_REV] = { "rev", 0, true, C(RBCTL_CMD_GET) },
	[F_LIMIT] = { "limit", 0, true, C(RBCTL_CMD_GET) },
	[F_KEYS_ONLY] = { "keys-only", 0, false, C(RBCTL_CMD_GET) },
	[F_COUNT_ONLY] = { "count-only", 0, false, C(RBCTL_CMD_GET) },
	[F_PRINT_VALUE_ONLY] = { "print-value-only", 0, false, C(RBCTL_CMD_GET) },
	[F_SORT_BY] = { "sort-by", 0, true, C(RBCTL_CMD_GET) },
	[F_ORDER] = { "order", 0, true, C(RBCTL_CMD_GET) },
	[F_CONSISTENCY] = { "consistency", 0, true, C(RBCTL_CMD_GET) },
	[F_ONCE] = { "once", 0, false, C(RBCTL_CMD_LEASE_KEEPALIVE) },
	[F_KEYS] = { "keys", 0, false, C(RBCTL_CMD_LEASE_TIMETOLIVE) },
	[F_CLUSTER] = { "cluster", 0, false,
		C(RBCTL_CMD_ENDPOINT_STATUS) | C(RBCTL_CMD_ENDPOINT_HEALTH) },
	[F_INTERACTIVE] = { "interactive", 'i', false, C(RBCTL_CMD_TXN) },
	[F_PHYSICAL] = { "physical", 0, false, C(RBCTL_CMD_COMPACT) },
};

/* The raw command line split into flags and positionals. */
struct raw {
	const char *val[F_COUNT];        /* flag values ("true" for bare bools) */
	const char *spelled[F_COUNT];    /* as typed, for "unknown flag" */
	const char *pos[RBCTL_POSITIONALS_MAX];
	size_t pos_n;
};

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

static int find_flag(const char *name, size_t len, char short_name)
{
	for (int i = 0; i < F_COUNT; i++) {
		if (short_name && flag_defs[i].short_name == short_name)
			return i;
		if (!short_name && strlen(flag_defs[i].name) == len &&
		    strncmp(flag_defs[i].name, name, len) == 0)
			return i;
	}
	return -1;
}

/* One "-x..." or "--name..." argument; may consume argv[*i + 1]. */
static int split_flag(int argc, char **argv, int *i, struct raw *r, char *err,
	size_t errlen)
{
	const char *arg = argv[*i];
	const char *name = arg[1] == '-' ? arg + 2 : arg + 1;
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	int id = arg[1] == '-' ? find_flag(name, len, 0) :
		(len == 1 ? find_flag(NULL, 0, name[0]) : -1);
	if (id < 0)
		return fail(err, errlen, RBCTL_EXIT_ERROR, "unknown %s: %s",
			arg[1] == '-' ? "flag" : "shorthand flag", arg);
	r->spelled[id] = arg;
	if (eq) {
		r->val[id] = eq + 1;
	} else if (flag_defs[id].takes_value) {
		if (*i + 1 >= argc)
			return fail(err, errlen, RBCTL_EXIT_ERROR,
				"flag needs an argument: %s", arg);
		r->val[id] = argv[++*i];
	} else {
		r->val[id] = "true";
	}
	return 0;
}

static int split_argv(int argc, char **argv, struct raw *r, char *err, size_t errlen)
{
	bool flags_done = false;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!flags_done && strcmp(arg, "--") == 0) {
			flags_done = true;
			continue;
		}
		if (!flags_done && arg[0] == '-' && arg[1] != '\0') {
			int rc = split_flag(argc, argv, &i, r, err, errlen);
			if (rc)
				return rc;
			continue;
		}
		if (r->pos_n == RBCTL_POSITIONALS_MAX)
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS, "too many arguments");
		r->pos[r->pos_n++] = arg;
	}
	return 0;
}

struct cmd_word {
	const char *w1, *w2;
	enum rbctl_cmd cmd;
};

static const struct cmd_word cmd_words[] = {
	{ "put", NULL, RBCTL_CMD_PUT },
	{ "get", NULL, RBCTL_CMD_GET },
	{ "del", NULL, RBCTL_CMD_DEL },
	{ "txn", NULL, RBCTL_CMD_TXN },
	{ "compact", NULL, RBCTL_CMD_COMPACT },
	{ "version", NULL, RBCTL_CMD_VERSION },
	{ "lease", "grant", RBCTL_CMD_LEASE_GRANT },
	{ "lease", "revoke", RBCTL_CMD_LEASE_REVOKE },
	{ "lease", "keep-alive", RBCTL_CMD_LEASE_KEEPALIVE },
	{ "lease", "timetolive", RBCTL_CMD_LEASE_TIMETOLIVE },
	{ "lease", "list", RBCTL_CMD_LEASE_LIST },
	{ "member", "list", RBCTL_CMD_MEMBER_LIST },
	{ "endpoint", "status", RBCTL_CMD_ENDPOINT_STATUS },
	{ "endpoint", "health", RBCTL_CMD_ENDPOINT_HEALTH },
};

/* Finds the command from the first positionals and drops its words. */
static int find_cmd(struct raw *r, struct rbctl_args *a, char *err, size_t errlen)
{
	if (r->pos_n == 0) {
		a->cmd = RBCTL_CMD_HELP;
		a->help_topic = "";
		return 0;
	}
	bool group = false;
	for (size_t i = 0; i < sizeof(cmd_words) / sizeof(cmd_words[0]); i++) {
		const struct cmd_word *w = &cmd_words[i];
		if (strcmp(w->w1, r->pos[0]) != 0)
			continue;
		if (w->w2 == NULL) {
			a->cmd = w->cmd;
			a->help_topic = w->w1;
			memmove(r->pos, r->pos + 1, --r->pos_n * sizeof(r->pos[0]));
			return 0;
		}
		group = true;
		if (r->pos_n >= 2 && strcmp(w->w2, r->pos[1]) == 0) {
			a->cmd = w->cmd;
			a->help_topic = w->w1;
			r->pos_n -= 2;
			memmove(r->pos, r->pos + 2, r->pos_n * sizeof(r->pos[0]));
			return 0;
		}
	}
	if (group) {         /* "lease" alone or with an unknown word: its usage */
		a->cmd = RBCTL_CMD_HELP;
		a->help_topic = r->pos[0];
		if (r->pos_n >= 2)
			return fail(err, errlen, RBCTL_EXIT_ERROR,
				"unknown command \"%s\" for \"raftbusctl %s\"", r->pos[1], r->pos[0]);
		return 0;
	}
	if (strcmp(r->pos[0], "help") == 0) {
		a->cmd = RBCTL_CMD_HELP;
		a->help_topic = r->pos_n > 1 ? r->pos[1] : "";
		return 0;
	}
	return fail(err, errlen, RBCTL_EXIT_ERROR,
		"unknown command \"%s\" for \"raftbusctl\"", r->pos[0]);
}

static bool parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcmp(s, "t") == 0 ||
	    strcmp(s, "TRUE") == 0 || strcmp(s, "True") == 0) {
		*out = true;
		return true;
	}
	if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0 || strcmp(s, "f") == 0 ||
	    strcmp(s, "FALSE") == 0 || strcmp(s, "False") == 0) {
		*out = false;
		return true;
	}
	return false;
}

static bool parse_i64(const char *s, int base, int64_t *out)
{
	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, base);
	if (errno || *end != '\0')
		return false;
	*out = v;
	return true;
}

bool rbctl_parse_duration_ms(const char *s, int64_t *ms)
{
	double total = 0;
	const char *p = s;
	if (s == NULL || *s == '\0')
		return false;
	if (strcmp(s, "0") == 0) {
		*ms = 0;
		return true;
	}
	while (*p) {
		char *end;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno || v < 0)
			return false;
		p = end;
		static const struct { const char *u; double ms; } units[] = {
			{ "ns", 1e-6 }, { "us", 1e-3 }, { "\xc2\xb5s", 1e-3 }, { "ms", 1 },
			{ "s", 1e3 }, { "m", 60e3 }, { "h", 3600e3 },
		};
		size_t best = 0, best_len = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].u);
			if (strncmp(p, units[i].u, n) == 0 && n > best_len) {
				best = i;
				best_len = n;
			}
		}
		if (best_len == 0)
			return false;
		total += v * units[best].ms;
		p += best_len;
	}
	if (total > 1e15)
		return false;
	*ms = (int64_t)total;
	return true;
}

/* Global flags: endpoints, output, timeouts. */
static int parse_globals(const struct raw *r, const char *env_endpoints,
	struct rbctl_args *a, char *err, size_t errlen)
{
	a->out = RBCTL_OUT_SIMPLE;
	a->dial_timeout_ms = RB_DIAL_TIMEOUT_MS_DEFAULT;
	a->command_timeout_ms = RB_COMMAND_TIMEOUT_MS_DEFAULT;
	const char *w = r->val[F_WRITE_OUT];
	if (w && strcmp(w, "json") == 0)
		a->out = RBCTL_OUT_JSON;
	else if (w && strcmp(w, "simple") != 0)
		return fail(err, errlen, RBCTL_EXIT_BAD_FEATURE, "unsupported output format");
	if (r->val[F_DIAL_TIMEOUT] &&
	    !rbctl_parse_duration_ms(r->val[F_DIAL_TIMEOUT], &a->dial_timeout_ms))
		return fail(err, errlen, RBCTL_EXIT_ERROR,
			"invalid argument \"%s\" for \"--dial-timeout\" flag: bad duration",
			r->val[F_DIAL_TIMEOUT]);
	if (r->val[F_COMMAND_TIMEOUT] &&
	    !rbctl_parse_duration_ms(r->val[F_COMMAND_TIMEOUT], &a->command_timeout_ms))
		return fail(err, errlen, RBCTL_EXIT_ERROR,
			"invalid argument \"%s\" for \"--command-timeout\" flag: bad duration",
			r->val[F_COMMAND_TIMEOUT]);
	const char *eps = r->val[F_ENDPOINTS] ? r->val[F_ENDPOINTS] :
		(env_endpoints && *env_endpoints ? env_endpoints : RBCTL_ENDPOINT_DEFAULT);
	char *copy = strdup(eps);
	if (copy == NULL)
		return fail(err, errlen, RBCTL_EXIT_ERROR, "out of memory");
	a->owned[0] = copy;
	for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*tok == '\0')
			continue;
		if (a->endpoints_n == RB_ENDPOINTS_MAX)
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS, "too many endpoints (max %u)",
				RB_ENDPOINTS_MAX);
		a->endpoints[a->endpoints_n++] = tok;
	}
	if (a->endpoints_n == 0)
		return fail(err, errlen, RBCTL_EXIT_BAD_ARGS, "no endpoints given");
	return 0;
}

/* Checks flags against the command and boolean values. */
static int check_flags(const struct raw *r, enum rbctl_cmd cmd, char *err, size_t errlen)
{
	for (int i = 0; i < F_COUNT; i++) {
		if (r->val[i] == NULL)
			continue;
		if (!(flag_defs[i].cmds & C(cmd)))
			return fail(err, errlen, RBCTL_EXIT_ERROR, "unknown flag: %s", r->spelled[i]);
		bool b;
		if (!flag_defs[i].takes_value && !parse_bool(r->val[i], &b))
			return fail(err, errlen, RBCTL_EXIT_ERROR,
				"invalid argument \"%s\" for \"--%s\" flag: strconv.ParseBool: "
				"parsing \"%s\": invalid syntax", r->val[i], flag_defs[i].name, r->val[i]);
	}
	return 0;
}

static bool flag_on(const struct raw *r, enum flag_id id)
{
	bool b = false;
	return r->val[id] && parse_bool(r->val[id], &b) && b;
}

#define U8(s) ((const uint8_t *)(s))

/* Sets key/range_end from KEY [END] and --prefix/--from-key (etcdctl's
 * getRange / getDelOp rules and messages). */
static int key_range(const struct raw *r, struct rbctl_args *a, const char *what,
	const uint8_t **key, size_t *key_len, const uint8_t **end, size_t *end_len,
	char *err, size_t errlen)
{
	bool prefix = flag_on(r, F_PREFIX), from_key = flag_on(r, F_FROM_KEY);
	if (r->pos_n < 1 || r->pos_n > 2)
		return fail(err, errlen, RBCTL_EXIT_BAD_ARGS, "%s command needs one argument "
			"as key and an optional argument as range_end", what);
	if (prefix && from_key)
		return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
			"`--prefix` and `--from-key` cannot be set at the same time, choose one");
	*key = U8(r->pos[0]);
	*key_len = strlen(r->pos[0]);
	if (r->pos_n == 2) {
		if (prefix)
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
				"too many arguments, only accept one argument when `--prefix` is set.");
		*end = U8(r->pos[1]);
		*end_len = strlen(r->pos[1]);
	}
	if (from_key) {
		if (*key_len == 0) {   /* etcdctl: "" with --from-key = every key */
			*key = U8("\0");
			*key_len = 1;
		}
		*end = U8("\0");
		*end_len = 1;
	}
	if (prefix) {
		if (*key_len == 0) {
			*key = U8("\0");
			*key_len = 1;
			*end = U8("\0");
			*end_len = 1;
			return 0;
		}
		uint8_t *buf = malloc(*key_len);
		if (buf == NULL)
			return fail(err, errlen, RBCTL_EXIT_ERROR, "out of memory");
		a->owned[1] = (char *)buf;
		*end_len = rb_prefix_end(*key, *key_len, buf);
		*end = buf;
	}
	return 0;
}

static int parse_put(const struct raw *r, struct rbctl_args *a, char *err, size_t errlen)
{
	struct rb_put *p = &a->op.u.put;
	a->op.type = RB_OP_PUT;
	p->prev_kv = flag_on(r, F_PREV_KV);
	p->ignore_value = flag_on(r, F_IGNORE_VALUE);
	p->ignore_lease = flag_on(r, F_IGNORE_LEASE);
	if (p->ignore_value && r->pos_n != 1)
		return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
			"put command needs only 1 argument when 'ignore-value' is set");
	if (r->pos_n < 1 || r->pos_n > 2)
		return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
			"put command needs 1 argument and input from stdin or 2 arguments");
	/* an empty key goes to the server, which answers "key is not provided" */
	p->key = U8(r->pos[0]);
	p->key_len = strlen(r->pos[0]);
	if (r->pos_n == 2) {
		p->value = U8(r->pos[1]);
		p->value_len = strlen(r->pos[1]);
	} else if (!p->ignore_value) {
		a->value_from_stdin = true;
	}
	if (r->val[F_LEASE]) {
		if (!parse_i64(r->val[F_LEASE], 16, &p->lease))
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
				"bad lease ID (%s), expecting ID in Hex", r->val[F_LEASE]);
		if (p->ignore_lease && p->lease)
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
				"put command needs 0 lease ID when 'ignore-lease' is set");
	}
	return 0;
}

static void upper(const char *in, char *out, size_t len)
{
	size_t i = 0;
	for (; in[i] && i + 1 < len; i++)
		out[i] = (char)(in[i] >= 'a' && in[i] <= 'z' ? in[i] - 32 : in[i]);
	out[i] = '\0';
}

/* etcdctl's --order/--sort-by (case-insensitive); like clientv3.WithSort,
 * KEY+ASCEND is sent as no sort since keys come in that order anyway. */
static int parse_sort(const struct raw *r, struct rb_range *q, char *err, size_t errlen)
{
	char o[16] = "", t[16] = "";
	if (r->val[F_ORDER])
		upper(r->val[F_ORDER], o, sizeof(o));
	if (r->val[F_SORT_BY])
		upper(r->val[F_SORT_BY], t, sizeof(t));
	if (o[0] == '\0')
		q->sort_order = RB_SORT_NONE;
	else if (strcmp(o, "ASCEND") == 0)
		q->sort_order = RB_SORT_ASCEND;
	else if (strcmp(o, "DESCEND") == 0)
		q->sort_order = RB_SORT_DESCEND;
	else
		return fail(err, errlen, RBCTL_EXIT_BAD_FEATURE, "bad sort order %s",
			r->val[F_ORDER]);
	static const struct { const char *n; uint8_t v; } targets[] = {
		{ "", RB_SORT_KEY }, { "CREATE", RB_SORT_CREATE }, { "KEY", RB_SORT_KEY },
		{ "MODIFY", RB_SORT_MOD }, { "VALUE", RB_SORT_VALUE },
		{ "VERSION", RB_SORT_VERSION },
	};
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		if (strcmp(t, targets[i].n) == 0) {
			q->sort_target = targets[i].v;
			if (q->sort_target == RB_SORT_KEY && q->sort_order == RB_SORT_ASCEND)
				q->sort_order = RB_SORT_NONE;
			return 0;
		}
	}
	return fail(err, errlen, RBCTL_EXIT_BAD_FEATURE, "bad sort target %s",
		r->val[F_SORT_BY]);
}

static int parse_get(const struct raw *r, struct rbctl_args *a, char *err, size_t errlen)
{
	struct rb_range *q = &a->op.u.range;
	a->op.type = RB_OP_RANGE;
	int rc = key_range(r, a, "get", &q->key, &q->key_len, &q->range_end,
		&q->range_end_len, err, errlen);
	if (rc)
		return rc;
	const char *c = r->val[F_CONSISTENCY];
	if (c && strcmp(c, "s") == 0)
		q->serializable = true;
	else if (c && strcmp(c, "l") != 0)
		return fail(err, errlen, RBCTL_EXIT_BAD_FEATURE, "unknown consistency flag \"%s\"", c);
	if ((rc = parse_sort(r, q, err, errlen)))
		return rc;
	if (r->val[F_REV] && !parse_i64(r->val[F_REV], 10, &q->revision))
		return fail(err, errlen, RBCTL_EXIT_ERROR, "invalid argument \"%s\" for "
			"\"--rev\" flag: strconv.ParseInt: parsing \"%s\": invalid syntax",
			r->val[F_REV], r->val[F_REV]);
	if (r->val[F_LIMIT] && !parse_i64(r->val[F_LIMIT], 10, &q->limit))
		return fail(err, errlen, RBCTL_EXIT_ERROR, "invalid argument \"%s\" for "
			"\"--limit\" flag: strconv.ParseInt: parsing \"%s\": invalid syntax",
			r->val[F_LIMIT], r->val[F_LIMIT]);
	/* etcdctl clamps negative values to "none" client-side */
	if (q->revision < 0)
		q->revision = 0;
	if (q->limit < 0)
		q->limit = 0;
	q->keys_only = flag_on(r, F_KEYS_ONLY);
	q->count_only = flag_on(r, F_COUNT_ONLY);
	a->print_value_only = flag_on(r, F_PRINT_VALUE_ONLY);
	if (a->print_value_only && a->out != RBCTL_OUT_SIMPLE)
		return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
			"print-value-only is only for `--write-out=simple`");
	if (a->print_value_only && q->count_only)
		return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
			"`--print-value-only` and `--count-only` cannot be set at the same time");
	return 0;
}

static int parse_lease_id(const struct raw *r, const char *what, rb_lease_id *id,
	char *err, size_t errlen)
{
	if (r->pos_n != 1)
		return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
			"lease %s command needs lease ID as argument", what);
	if (!parse_i64(r->pos[0], 16, id))
		return fail(err, errlen, RBCTL_EXIT_BAD_ARGS, "bad lease ID arg (strconv.ParseInt: "
			"parsing \"%s\": invalid syntax), expecting ID in Hex", r->pos[0]);
	return 0;
}

static int parse_lease(const struct raw *r, struct rbctl_args *a, char *err, size_t errlen)
{
	switch (a->cmd) {
	case RBCTL_CMD_LEASE_GRANT:
		a->op.type = RB_OP_LEASE_GRANT;
		if (r->pos_n != 1)
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
				"lease grant command needs TTL argument");
		if (!parse_i64(r->pos[0], 10, &a->op.u.lease_grant.ttl_s))
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS, "bad TTL (strconv.ParseInt: "
				"parsing \"%s\": invalid syntax)", r->pos[0]);
		return 0;
	case RBCTL_CMD_LEASE_REVOKE:
		a->op.type = RB_OP_LEASE_REVOKE;
		if (r->pos_n != 1)
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS,
				"lease revoke command needs 1 argument");
		return parse_lease_id(r, "revoke", &a->op.u.lease_revoke.id, err, errlen);
	case RBCTL_CMD_LEASE_KEEPALIVE:
		a->op.type = RB_OP_LEASE_KEEPALIVE;
		a->keepalive_once = flag_on(r, F_ONCE);
		return parse_lease_id(r, "keep-alive", &a->op.u.lease_keepalive.id, err, errlen);
	case RBCTL_CMD_LEASE_TIMETOLIVE:
		a->op.type = RB_OP_LEASE_TIMETOLIVE;
		a->op.u.lease_ttl.keys = flag_on(r, F_KEYS);
		return parse_lease_id(r, "timetolive", &a->op.u.lease_ttl.id, err, errlen);
	default:
		a->op.type = RB_OP_LEASE_LEASES;
		return 0;
	}
}

/* Per-command positional arguments and flags into a->op. */
static int parse_cmd(const struct raw *r, struct rbctl_args *a, char *err, size_t errlen)
{
	switch (a->cmd) {
	case RBCTL_CMD_PUT:
		return parse_put(r, a, err, errlen);
	case RBCTL_CMD_GET:
		return parse_get(r, a, err, errlen);
	case RBCTL_CMD_DEL: {
		struct rb_delete_range *d = &a->op.u.delete_range;
		a->op.type = RB_OP_DELETE_RANGE;
		d->prev_kv = flag_on(r, F_PREV_KV);
		return key_range(r, a, "del", &d->key, &d->key_len, &d->range_end,
			&d->range_end_len, err, errlen);
	}
	case RBCTL_CMD_TXN:
		a->op.type = RB_OP_TXN;
		a->interactive = flag_on(r, F_INTERACTIVE);
		if (r->pos_n)
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS, "txn command does not accept argument");
		return 0;
	case RBCTL_CMD_COMPACT:
		a->op.type = RB_OP_COMPACT;
		a->op.u.compact.physical = flag_on(r, F_PHYSICAL);
		if (r->pos_n != 1)
			return fail(err, errlen, RBCTL_EXIT_BAD_ARGS, "compaction command needs 1 argument");
		if (!parse_i64(r->pos[0], 10, &a->op.u.compact.revision))
			return fail(err, errlen, RBCTL_EXIT_ERROR, "strconv.ParseInt: parsing \"%s\": "
				"invalid syntax", r->pos[0]);
		return 0;
	case RBCTL_CMD_LEASE_GRANT:
	case RBCTL_CMD_LEASE_REVOKE:
	case RBCTL_CMD_LEASE_KEEPALIVE:
	case RBCTL_CMD_LEASE_TIMETOLIVE:
	case RBCTL_CMD_LEASE_LIST:
		return parse_lease(r, a, err, errlen);
	case RBCTL_CMD_MEMBER_LIST:
		a->op.type = RB_OP_MEMBER_LIST;
		return 0;
	case RBCTL_CMD_ENDPOINT_STATUS:
	case RBCTL_CMD_ENDPOINT_HEALTH:
		a->op.type = a->cmd == RBCTL_CMD_ENDPOINT_STATUS ? RB_OP_ENDPOINT_STATUS :
			RB_OP_HEALTH;
		a->cluster = flag_on(r, F_CLUSTER);
		return 0;
	default:
		return 0;
	}
}

int rbctl_parse(int argc, char **argv, const char *env_endpoints,
	struct rbctl_args *a, char *err, size_t errlen)
{
	struct raw r;
	memset(&r, 0, sizeof(r));
	err[0] = '\0';
	int rc = split_argv(argc, argv, &r, err, errlen);
	if (rc)
		return rc;
	if ((rc = find_cmd(&r, a, err, errlen)))
		return rc;
	if (flag_on(&r, F_HELP)) {
		a->cmd = RBCTL_CMD_HELP;
		return 0;
	}
	if (a->cmd == RBCTL_CMD_HELP)
		return 0;
	if ((rc = check_flags(&r, a->cmd, err, errlen)))
		return rc;
	if ((rc = parse_globals(&r, env_endpoints, a, err, errlen)))
		return rc;
	return parse_cmd(&r, a, err, errlen);
}

void rbctl_args_free(struct rbctl_args *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < sizeof(a->owned) / sizeof(a->owned[0]); i++)
		free(a->owned[i]);
	memset(a, 0, sizeof(*a));
}

/* ---- usage ------------------------------------------------------------ */

static const char usage_global[] =
	"NAME:\n"
	"\traftbusctl - a simple command line client for raftbus (etcdctl-like)\n\n"
	"USAGE:\n"
	"\traftbusctl [global options] <command> [options] [arguments...]\n\n"
	"COMMANDS:\n"
	"\tput KEY [VALUE]\t\t\tPuts the given key into the store (VALUE from stdin when omitted)\n"
	"\tget KEY [END]\t\t\tGets the key or a range of keys\n"
	"\tdel KEY [END]\t\t\tRemoves the specified key or range of keys [key, range_end)\n"
	"\ttxn [-i]\t\t\tTxn processes all the requests in one transaction (read from stdin)\n"
	"\tcompact REV\t\t\tCompacts the event history in raftbus\n"
	"\tlease grant TTL\t\t\tCreates leases\n"
	"\tlease revoke ID\t\t\tRevokes leases\n"
	"\tlease timetolive ID [--keys]\tGet lease information\n"
	"\tlease list\t\t\tList all active leases\n"
	"\tlease keep-alive ID [--once]\tKeeps leases alive (renew)\n"
	"\tmember list\t\t\tLists all members in the cluster\n"
	"\tendpoint status [--cluster]\tPrints out the status of endpoints\n"
	"\tendpoint health [--cluster]\tChecks the healthiness of endpoints\n"
	"\tversion\t\t\t\tPrints the version of raftbusctl\n"
	"\thelp [COMMAND]\t\t\tHelp about any command\n";

static const char usage_global_options[] =
	"\nGLOBAL OPTIONS:\n"
	"      --command-timeout=5s\t\ttimeout for short running command (excluding dial timeout)\n"
	"      --dial-timeout=2s\t\t\tdial timeout for client connections\n"
	"      --endpoints=[" RBCTL_ENDPOINT_DEFAULT "]\tcomma-separated endpoints (tcp://HOST:PORT,\n"
	"\t\t\t\t\tipc://PATH or HOST:PORT); default from $RAFTBUSCTL_ENDPOINTS\n"
	"  -h, --help[=false]\t\t\thelp for raftbusctl or a command\n"
	"  -w, --write-out=\"simple\"\t\tset the output format (simple, json)\n\n"
	"EXIT CODES:\n"
	"\t0 ok, 1 request failed or unknown flag/command, 2 keep-alive lost,\n"
	"\t3 malformed txn input, 4 bad flag value, 128 bad arguments\n";

struct cmd_help { const char *topic; const char *text; };

static const struct cmd_help cmd_helps[] = {
	{ "put", "USAGE:\n\traftbusctl put [options] <key> <value> (<value> can also be given from stdin)\n\n"
	  "OPTIONS:\n"
	  "      --ignore-lease[=false]\tupdates the key using its current lease\n"
	  "      --ignore-value[=false]\tupdates the key using its current value\n"
	  "      --lease=\"0\"\t\tlease ID (in hexadecimal) to attach to the key\n"
	  "      --prev-kv[=false]\t\treturn the previous key-value pair before modification\n" },
	{ "get", "USAGE:\n\traftbusctl get [options] <key> [range_end]\n\n"
	  "OPTIONS:\n"
	  "      --consistency=\"l\"\t\tLinearizable(l) or Serializable(s)\n"
	  "      --count-only[=false]\tGet only the count\n"
	  "      --from-key[=false]\tGet keys that are greater than or equal to the given key using byte compare\n"
	  "      --keys-only[=false]\tGet only the keys\n"
	  "      --limit=0\t\t\tMaximum number of results\n"
	  "      --order=\"\"\t\tOrder of results; ASCEND or DESCEND (ASCEND by default)\n"
	  "      --prefix[=false]\t\tGet keys with matching prefix\n"
	  "      --print-value-only[=false]\tOnly write values when using the \"simple\" output format\n"
	  "      --rev=0\t\t\tSpecify the kv revision\n"
	  "      --sort-by=\"\"\t\tSort target; CREATE, KEY, MODIFY, VALUE, or VERSION\n" },
	{ "del", "USAGE:\n\traftbusctl del [options] <key> [range_end]\n\n"
	  "OPTIONS:\n"
	  "      --from-key[=false]\tdelete keys that are greater than or equal to the given key using byte compare\n"
	  "      --prefix[=false]\t\tdelete keys with matching prefix\n"
	  "      --prev-kv[=false]\t\treturn deleted key-value pairs\n" },
	{ "txn", "USAGE:\n\traftbusctl txn [options] < input\n\n"
	  "Reads, from stdin, compares, a blank line, success requests, a blank line,\n"
	  "failure requests and a blank line, etcdctl's format:\n"
	  "\tmod(\"key1\") > \"0\"\t\t(targets: ver|version, c|create, m|mod, val|value, lease (hex))\n"
	  "\tvalue(\"key2\") = \"v\"\t\t(operators: = != < >)\n\n"
	  "\tput key1 \"new value\"\t(get/put/del with their flags)\n\n"
	  "\tget key1\n\n"
	  "OPTIONS:\n"
	  "  -i, --interactive[=false]\tInput transaction in interactive mode (prompts)\n" },
	{ "compact", "USAGE:\n\traftbusctl compact [options] <revision>\n\n"
	  "OPTIONS:\n"
	  "      --physical[=false]\taccepted for etcdctl compatibility; compaction is always synchronous\n" },
	{ "lease", "USAGE:\n\traftbusctl lease <subcommand> [flags]\n\n"
	  "COMMANDS:\n"
	  "\tgrant <ttl>\t\t\tCreates a lease with the TTL in seconds\n"
	  "\tkeep-alive [--once] <leaseID>\tKeeps the lease alive (renews it every TTL/3; once: one round)\n"
	  "\tlist\t\t\t\tList all active leases\n"
	  "\trevoke <leaseID>\t\tRevokes a lease (and deletes its keys)\n"
	  "\ttimetolive [--keys] <leaseID>\tGet lease information (remaining TTL, keys)\n"
	  "Lease IDs are hexadecimal.\n" },
	{ "member", "USAGE:\n\traftbusctl member list\n\n\tLists all members in the cluster:\n"
	  "\tID, status, name, peer addrs, client addrs, is learner\n" },
	{ "endpoint", "USAGE:\n\traftbusctl endpoint <status|health> [--cluster]\n\n"
	  "\tstatus: endpoint, ID, version, db size, is leader, is learner, raft term,\n"
	  "\t        raft index, raft applied index, errors\n"
	  "\thealth: whether each endpoint commits a proposal, and how long it took\n\n"
	  "OPTIONS:\n"
	  "      --cluster[=false]\tuse all endpoints from the cluster member list\n" },
	{ "version", "USAGE:\n\traftbusctl version\n" },
};

void rbctl_usage(FILE *f, const char *topic)
{
	if (topic && *topic) {
		for (size_t i = 0; i < sizeof(cmd_helps) / sizeof(cmd_helps[0]); i++) {
			if (strcmp(cmd_helps[i].topic, topic) == 0) {
				fputs(cmd_helps[i].text, f);
				fputs("\nGLOBAL OPTIONS: see raftbusctl --help\n", f);
				return;
			}
		}
		for (size_t i = 0; i < rbctl_ext_cmds_n; i++) {
			if (strcmp(rbctl_ext_cmds[i]->name, topic) == 0) {
				fputs(rbctl_ext_cmds[i]->usage, f);
				fputs("\nGLOBAL OPTIONS: see raftbusctl --help\n", f);
				return;
			}
		}
	}
	fputs(usage_global, f);
	rbctl_ext_usage_lines(f);
	fputs(usage_global_options, f);
}
