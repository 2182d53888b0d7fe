/*
 * bk_config.c - the server's settings: etcd-style flags, the same settings
 * from RAFTBUS_* environment variables (flags win), defaults, and the
 * member/cluster ids derived from them (deterministic, like etcd's, so that
 * every member computes the same ids from the same --initial-cluster).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk.h"

int bk_log_level = BK_LOG_INFO;

void bk_log(int level, const char *fmt, ...)
{
	static const char *tag[] = { "debug", "info", "warn", "error" };
	if (level < bk_log_level)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "raftbus %s: %s\n", tag[level & 3], line);
}

const char *bk_strerror(int err)
{
	switch (err) {
	case BK_OK: return "ok";
	case BK_ERR_USAGE: return "bad usage";
	case BK_ERR_NOMEM: return "out of memory";
	case BK_ERR_IO: return "storage failure";
	case BK_ERR_NET: return "network setup failure";
	case BK_ERR_DECODE: return "malformed peer message";
	case BK_ERR_HELP: return "help printed";
	}
	return "unknown error";
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

rl_id bk_member_id(const char *name, const char *peer_url)
{
	uint64_t h = fnv1a(0xcbf29ce484222325ull, name);
	h = fnv1a(fnv1a(h, "\x1f"), peer_url);
	return h ? h : 1;
}

uint64_t bk_cluster_id(const char *initial_cluster)
{
	uint64_t h = fnv1a(0x84222325cbf29ce4ull, "raftbus-cluster:");
	h = fnv1a(h, initial_cluster);
	return h ? h : 1;
}

/* The settings, in one table: flag name, env name, where it goes. */
enum opt_kind { O_STR, O_U32, O_U64, O_STATE, O_MODE, O_LEVEL, O_RETENTION,
    O_DURATION };
struct opt {
	const char *flag;
	const char *env;
	enum opt_kind kind;
	size_t off;
	size_t size;
	const char *help;
};
#define OFF(f) offsetof(struct bk_config, f), sizeof(((struct bk_config *)0)->f)
static const struct opt opts[] = {
	{ "name", "RAFTBUS_NAME", O_STR, OFF(name), "member name (default \"default\")" },
	{ "data-dir", "RAFTBUS_DATA_DIR", O_STR, OFF(data_dir), "data directory (default ./NAME.raftbus)" },
	{ "listen-client-urls", "RAFTBUS_LISTEN_CLIENT_URLS", O_STR, OFF(listen_client_url), "client URL to listen on (default " BK_CLIENT_URL_DEFAULT ")" },
	{ "advertise-client-urls", "RAFTBUS_ADVERTISE_CLIENT_URLS", O_STR, OFF(advertise_client_url), "client URL told to peers/clients (default: the listen URL)" },
	{ "listen-peer-urls", "RAFTBUS_LISTEN_PEER_URLS", O_STR, OFF(listen_peer_url), "peer URL to listen on (default " BK_PEER_URL_DEFAULT ")" },
	{ "initial-advertise-peer-urls", "RAFTBUS_INITIAL_ADVERTISE_PEER_URLS", O_STR, OFF(advertise_peer_url), "peer URL of this member in --initial-cluster (default: the listen URL)" },
	{ "initial-cluster", "RAFTBUS_INITIAL_CLUSTER", O_STR, OFF(initial_cluster), "NAME=PEER_URL,... (default NAME=advertise peer URL)" },
	{ "initial-cluster-state", "RAFTBUS_INITIAL_CLUSTER_STATE", O_STATE, 0, 0, "new|existing (default new)" },
	{ "heartbeat-interval", "RAFTBUS_HEARTBEAT_INTERVAL", O_U32, OFF(heartbeat_ms), "ms between heartbeats = one Raft tick (default 100)" },
	{ "election-timeout", "RAFTBUS_ELECTION_TIMEOUT", O_U32, OFF(election_ms), "election timeout in ms (default 1000)" },
	{ "snapshot-count", "RAFTBUS_SNAPSHOT_COUNT", O_U64, OFF(snapshot_count), "applied entries between snapshots (default 100000, as etcd)" },
	{ "quota-backend-bytes", "RAFTBUS_QUOTA_BACKEND_BYTES", O_U64, OFF(quota_bytes), "store size quota in bytes (default 2 GiB)" },
	{ "max-request-bytes", "RAFTBUS_MAX_REQUEST_BYTES", O_U32, OFF(max_request_bytes), "largest client request in bytes (default 1572864)" },
	{ "auto-compaction-mode", "RAFTBUS_AUTO_COMPACTION_MODE", O_MODE, 0, 0, "revision|periodic (default periodic)" },
	{ "auto-compaction-retention", "RAFTBUS_AUTO_COMPACTION_RETENTION", O_RETENTION, 0, 0, "revisions to keep, or a period (1h, 30m, 10s; plain number = hours); 0 = off (default)" },
	{ "log-level", "RAFTBUS_LOG_LEVEL", O_LEVEL, 0, 0, "debug|info|warn|error (default info)" },
	{ "max-queued-reads", "RAFTBUS_MAX_QUEUED_READS", O_U32, OFF(max_queued_reads), "reads waiting for a reader thread; beyond, \"too many requests\" (1..1024, default 256)" },
	{ "pubsub-dedup-window", "RAFTBUS_PUBSUB_DEDUP_WINDOW", O_DURATION, OFF(pubsub_dedup_window_ms), "how long a publish message id is remembered for deduplication (Go duration; default 2m)" },
};
#define OPTS_N (sizeof(opts) / sizeof(opts[0]))

static int parse_u64(const char *v, uint64_t *out)
{
	if (!*v || !isdigit((unsigned char)*v))
		return -1;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || *end)
		return -1;
	*out = x;
	return 0;
}

/* Retention: "N" (hours in periodic mode, revisions in revision mode, fixed
 * later), or N followed by h/m/s. Stored as ms when a unit is given. */
static int parse_retention(struct bk_config *cfg, const char *v, bool *unit)
{
	char num[32];
	size_t n = strlen(v);
	*unit = false;
	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, v, n + 1);
	uint64_t mul = 1;
	char last = num[n - 1];
	if (last == 'h' || last == 'm' || last == 's') {
		mul = last == 'h' ? 3600000u : last == 'm' ? 60000u : 1000u;
		num[n - 1] = 0;
		*unit = true;
	}
	uint64_t x;
	if (parse_u64(num, &x) || x > UINT64_MAX / mul)
		return -1;
	cfg->compaction_retention = x * mul;
	return 0;
}

/* A Go duration without sign ("2m", "1m30s", "500ms", "0s") into ms. */
static int parse_duration_ms(const char *v, int64_t *out)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "ms", 1 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 } };
	int64_t total = 0;
	if (!*v)
		return -1;
	while (*v) {
		if (!isdigit((unsigned char)*v))
			return -1;
		char *end;
		errno = 0;
		long long x = strtoll(v, &end, 10);
		size_t u = 0;
		while (u < 4 && strncmp(end, units[u].unit, strlen(units[u].unit)))
			u++;
		if (errno || u == 4 || x > INT64_MAX / units[u].ms / 2)
			return -1;
		total += x * units[u].ms;
		if (total > INT64_MAX / 2)
			return -1;
		v = end + strlen(units[u].unit);
	}
	*out = total;
	return 0;
}

static int set_opt(struct bk_config *cfg, const struct opt *o, const char *v,
    bool *ret_unit, char *err, size_t err_len)
{
	uint64_t x;
	char *field = (char *)cfg + o->off;
	switch (o->kind) {
	case O_STR:
		if (strlen(v) >= o->size)
			goto bad;
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case O_U32:
		if (parse_u64(v, &x) || x == 0 || x > UINT32_MAX)
			goto bad;
		*(uint32_t *)(void *)field = (uint32_t)x;
		return 0;
	case O_U64:
		if (parse_u64(v, &x) || x == 0)
			goto bad;
		*(uint64_t *)(void *)field = x;
		return 0;
	case O_STATE:
		if (strcmp(v, "new") && strcmp(v, "existing"))
			goto bad;
		cfg->cluster_existing = !strcmp(v, "existing");
		return 0;
	case O_MODE:
		if (strcmp(v, "revision") && strcmp(v, "periodic"))
			goto bad;
		cfg->compaction_periodic = !strcmp(v, "periodic");
		return 0;
	case O_LEVEL: {
		static const char *lv[] = { "debug", "info", "warn", "error" };
		for (int i = 0; i < 4; i++)
			if (!strcmp(v, lv[i])) {
				cfg->log_level = i;
				return 0;
			}
		goto bad;
	}
	case O_RETENTION:
		if (parse_retention(cfg, v, ret_unit))
			goto bad;
		return 0;
	case O_DURATION:
		if (parse_duration_ms(v, (int64_t *)(void *)field))
			goto bad;
		return 0;
	}
bad:
	snprintf(err, err_len, "invalid value \"%s\" for --%s (%s)", v,
	    o->flag, o->help);
	return BK_ERR_USAGE;
}

static void print_help(FILE *out)
{
	fprintf(out, "usage: raftbus [flags]\n\nA replicated, revisioned "
	    "key-value store (etcd v3 semantics) over Raft.\n"
	    "Every flag may also be given as the environment variable shown "
	    "(flags win).\n\n");
	for (size_t i = 0; i < OPTS_N; i++)
		fprintf(out, "  --%-29s %s\n  %-31s [%s]\n", opts[i].flag,
		    opts[i].help, "", opts[i].env);
	fprintf(out, "  --%-29s %s\n  --%-29s %s\n", "help", "this text",
	    "version", "print the version");
}

static const struct opt *find_flag(const char *name, size_t len)
{
	for (size_t i = 0; i < OPTS_N; i++)
		if (strlen(opts[i].flag) == len &&
		    !strncmp(opts[i].flag, name, len))
			return &opts[i];
	return NULL;
}

/* Flags over env: apply env first, then argv. */
static int parse_sources(struct bk_config *cfg, int argc, char **argv,
    char **envp, bool *ret_unit, char *err, size_t err_len, FILE *out)
{
	for (size_t i = 0; i < OPTS_N && envp; i++)
		for (char **e = envp; *e; e++) {
			size_t n = strlen(opts[i].env);
			if (!strncmp(*e, opts[i].env, n) && (*e)[n] == '=' &&
			    set_opt(cfg, &opts[i], *e + n + 1, ret_unit, err,
			    err_len))
				return BK_ERR_USAGE;
		}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			print_help(out);
			return BK_ERR_HELP;
		}
		if (!strcmp(a, "--version")) {
			fprintf(out, "raftbus version %s\n", BK_VERSION);
			return BK_ERR_HELP;
		}
		if (strncmp(a, "--", 2)) {
			snprintf(err, err_len, "unexpected argument \"%s\" "
			    "(see --help)", a);
			return BK_ERR_USAGE;
		}
		const char *eq = strchr(a + 2, '=');
		size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		const struct opt *o = find_flag(a + 2, nlen);
		if (!o) {
			snprintf(err, err_len, "unknown flag \"%.*s\" (see "
			    "--help)", (int)(nlen + 2), a);
			return BK_ERR_USAGE;
		}
		const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!v) {
			snprintf(err, err_len, "flag --%s needs a value",
			    o->flag);
			return BK_ERR_USAGE;
		}
		if (set_opt(cfg, o, v, ret_unit, err, err_len))
			return BK_ERR_USAGE;
	}
	return BK_OK;
}

/* --initial-cluster "a=tcp://..,b=tcp://.." into cfg->members. */
static int parse_cluster(struct bk_config *cfg, char *err, size_t err_len)
{
	char buf[sizeof(cfg->initial_cluster)];
	memcpy(buf, cfg->initial_cluster, sizeof(buf));
	cfg->members_n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok || !eq[1] ||
		    (size_t)(eq - tok) >= BK_NAME_BYTES_MAX ||
		    strlen(eq + 1) >= BK_URL_BYTES_MAX ||
		    cfg->members_n >= BK_MEMBERS_MAX)
			goto bad;
		struct bk_member *m = &cfg->members[cfg->members_n++];
		memset(m, 0, sizeof(*m));
		memcpy(m->name, tok, (size_t)(eq - tok));
		strcpy(m->peer_url, eq + 1);
		m->id = bk_member_id(m->name, m->peer_url);
		for (uint32_t k = 0; k + 1 < cfg->members_n; k++)
			if (cfg->members[k].id == m->id ||
			    !strcmp(cfg->members[k].name, m->name))
				goto bad;
	}
	for (uint32_t k = 0; k < cfg->members_n; k++)
		if (!strcmp(cfg->members[k].name, cfg->name)) {
			if (strcmp(cfg->members[k].peer_url,
			    cfg->advertise_peer_url)) {
				snprintf(err, err_len, "--initial-cluster gives "
				    "%s the peer URL %s but "
				    "--initial-advertise-peer-urls is %s",
				    cfg->name, cfg->members[k].peer_url,
				    cfg->advertise_peer_url);
				return BK_ERR_USAGE;
			}
			cfg->member_id = cfg->members[k].id;
			strcpy(cfg->members[k].client_url,
			    cfg->advertise_client_url);
			return BK_OK;
		}
	snprintf(err, err_len, "--initial-cluster does not name this member "
	    "(--name %s)", cfg->name);
	return BK_ERR_USAGE;
bad:
	snprintf(err, err_len, "invalid --initial-cluster \"%s\" (want "
	    "NAME=PEER_URL,... with unique names, at most %u members)",
	    cfg->initial_cluster, BK_MEMBERS_MAX);
	return BK_ERR_USAGE;
}

static void set_defaults(struct bk_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->name, "default");
	strcpy(cfg->listen_client_url, BK_CLIENT_URL_DEFAULT);
	strcpy(cfg->listen_peer_url, BK_PEER_URL_DEFAULT);
	cfg->heartbeat_ms = BK_HEARTBEAT_MS_DEFAULT;
	cfg->election_ms = BK_ELECTION_MS_DEFAULT;
	cfg->snapshot_count = BK_SNAPSHOT_COUNT_DEFAULT;
	cfg->max_request_bytes = BK_MAX_REQUEST_BYTES_DEFAULT;
	cfg->max_queued_reads = BK_MAX_QUEUED_READS_DEFAULT;
	cfg->compaction_periodic = true;
	cfg->log_level = BK_LOG_INFO;
	cfg->pubsub_dedup_window_ms = BK_PUBSUB_DEDUP_WINDOW_MS_DEFAULT;
}

int bk_config_parse(struct bk_config *cfg, int argc, char **argv,
    char **envp, char *err, size_t err_len, void *out)
{
	bool ret_unit = false;
	set_defaults(cfg);
	int rc = parse_sources(cfg, argc, argv, envp, &ret_unit, err, err_len,
	    out ? (FILE *)out : stdout);
	if (rc)
		return rc;
	/* A unitless periodic retention is hours, as in etcd. */
	if (cfg->compaction_periodic && !ret_unit)
		cfg->compaction_retention *= 3600000u;
	if (!cfg->data_dir[0])
		snprintf(cfg->data_dir, sizeof(cfg->data_dir), "./%s.raftbus",
		    cfg->name);
	if (!cfg->advertise_client_url[0])
		strcpy(cfg->advertise_client_url, cfg->listen_client_url);
	if (!cfg->advertise_peer_url[0])
		strcpy(cfg->advertise_peer_url, cfg->listen_peer_url);
	/* Several URLs may be listened on; the first is the one advertised. */
	cfg->advertise_client_url[strcspn(cfg->advertise_client_url, ",")] = 0;
	cfg->advertise_peer_url[strcspn(cfg->advertise_peer_url, ",")] = 0;
	if (!cfg->initial_cluster[0])
		snprintf(cfg->initial_cluster, sizeof(cfg->initial_cluster),
		    "%s=%s", cfg->name, cfg->advertise_peer_url);
	if (cfg->election_ms < 2 * cfg->heartbeat_ms) {
		snprintf(err, err_len, "--election-timeout (%u ms) must be at "
		    "least twice --heartbeat-interval (%u ms)",
		    cfg->election_ms, cfg->heartbeat_ms);
		return BK_ERR_USAGE;
	}
	if (cfg->max_queued_reads < 1 || cfg->max_queued_reads > BK_READ_QUEUE_MAX) {
		snprintf(err, err_len, "--max-queued-reads must be 1..%u",
		    BK_READ_QUEUE_MAX);
		return BK_ERR_USAGE;
	}
	if (cfg->max_request_bytes > BK_REQUEST_BYTES_LIMIT) {
		snprintf(err, err_len, "--max-request-bytes over %u",
		    BK_REQUEST_BYTES_LIMIT);
		return BK_ERR_USAGE;
	}
	cfg->cluster_id = bk_cluster_id(cfg->initial_cluster);
	bk_log_level = cfg->log_level;
	return parse_cluster(cfg, err, err_len);
}
