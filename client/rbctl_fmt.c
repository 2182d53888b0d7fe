/*
 * rbctl_fmt.c - raftbusctl's output, byte for byte what etcdctl 3.4 prints
 * (checked against etcdctl 3.4.23): the "simple" lines and the "json"
 * objects, which are Go's encoding/json of the etcd protobuf structs: zero
 * fields omitted, int64/uint64 as JSON numbers, byte strings base64, '<',
 * '>' and '&' escaped as \u003c etc. Some commands' JSON is the clientv3
 * struct with the header flattened into it (lease grant, keep-alive,
 * timetolive, list), as etcdctl prints it.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "rbctl.h"

/* ---- JSON primitives -------------------------------------------------- */

static void j_str(FILE *f, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == '<' || c == '>' || c == '&')
			fprintf(f, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void j_cstr(FILE *f, const char *s)
{
	j_str(f, s ? s : "", s ? strlen(s) : 0);
}

static void j_b64(FILE *f, const uint8_t *p, size_t n)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	fputc('"', f);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		fputc(tbl[v >> 18 & 63], f);
		fputc(tbl[v >> 12 & 63], f);
		fputc(i + 1 < n ? tbl[v >> 6 & 63] : '=', f);
		fputc(i + 2 < n ? tbl[v & 63] : '=', f);
	}
	fputc('"', f);
}

/* A JSON object being written: tracks the comma. */
struct jobj {
	FILE *f;
	bool any;
};

static void j_key(struct jobj *o, const char *k)
{
	fprintf(o->f, "%s\"%s\":", o->any ? "," : "", k);
	o->any = true;
}

static void j_i64(struct jobj *o, const char *k, int64_t v, bool omit_zero)
{
	if (v == 0 && omit_zero)
		return;
	j_key(o, k);
	fprintf(o->f, "%" PRId64, v);
}

static void j_u64(struct jobj *o, const char *k, uint64_t v)
{
	if (v == 0)
		return;
	j_key(o, k);
	fprintf(o->f, "%" PRIu64, v);
}

static void j_true(struct jobj *o, const char *k, bool v)
{
	if (!v)
		return;
	j_key(o, k);
	fputs("true", o->f);
}

/* ResponseHeader's fields (also used flattened). */
static void j_header_fields(struct jobj *o, const struct rb_header *h)
{
	j_u64(o, "cluster_id", h->cluster_id);
	j_u64(o, "member_id", h->member_id);
	j_i64(o, "revision", h->revision, true);
	j_u64(o, "raft_term", h->raft_term);
}

static void j_header(struct jobj *o, const struct rb_header *h)
{
	j_key(o, "header");
	struct jobj ho = { o->f, false };
	fputc('{', o->f);
	j_header_fields(&ho, h);
	fputc('}', o->f);
}

static void j_kv(FILE *f, const struct rb_kv *kv)
{
	struct jobj o = { f, false };
	fputc('{', f);
	if (kv->key_len) {
		j_key(&o, "key");
		j_b64(f, kv->key, kv->key_len);
	}
	j_i64(&o, "create_revision", kv->create_revision, true);
	j_i64(&o, "mod_revision", kv->mod_revision, true);
	j_i64(&o, "version", kv->version, true);
	if (kv->value_len) {
		j_key(&o, "value");
		j_b64(f, kv->value, kv->value_len);
	}
	j_i64(&o, "lease", kv->lease, true);
	fputc('}', f);
}

static void j_kvs(struct jobj *o, const char *k, const struct rb_kv *kvs, size_t n)
{
	if (n == 0)
		return;
	j_key(o, k);
	fputc('[', o->f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', o->f);
		j_kv(o->f, &kvs[i]);
	}
	fputc(']', o->f);
}

/* The fields of Put/Range/DeleteRange/Txn responses after the header. */
static void j_op_fields(struct jobj *o, const struct rb_op_resp *b, rb_rev rev);

static void j_txn_fields(struct jobj *o, const struct rb_txn_resp *t, rb_rev rev)
{
	j_true(o, "succeeded", t->succeeded);
	if (t->responses_n == 0)
		return;
	static const char *names[] = { [RB_OP_PUT] = "ResponsePut",
		[RB_OP_RANGE] = "ResponseRange", [RB_OP_DELETE_RANGE] = "ResponseDeleteRange",
		[RB_OP_TXN] = "ResponseTxn" };
	j_key(o, "responses");
	fputc('[', o->f);
	for (size_t i = 0; i < t->responses_n; i++) {
		const struct rb_op_resp *r = &t->responses[i];
		if (r->type < RB_OP_PUT || r->type > RB_OP_TXN)
			continue;
		fprintf(o->f, "%s{\"Response\":{\"%s\":{", i ? "," : "", names[r->type]);
		/* etcd gives each op response a header holding only the revision */
		struct jobj io = { o->f, false };
		struct rb_header h = { .revision = rev };
		j_header(&io, &h);
		j_op_fields(&io, r, rev);
		fputs("}}}", o->f);
	}
	fputc(']', o->f);
}

static void j_op_fields(struct jobj *o, const struct rb_op_resp *b, rb_rev rev)
{
	switch (b->type) {
	case RB_OP_PUT:
		if (b->u.put.has_prev_kv) {
			j_key(o, "prev_kv");
			j_kv(o->f, &b->u.put.prev_kv);
		}
		return;
	case RB_OP_RANGE:
		j_kvs(o, "kvs", b->u.range.kvs, b->u.range.kvs_n);
		j_true(o, "more", b->u.range.more);
		j_i64(o, "count", b->u.range.count, true);
		return;
	case RB_OP_DELETE_RANGE:
		j_i64(o, "deleted", b->u.delete_range.deleted, true);
		j_kvs(o, "prev_kvs", b->u.delete_range.prev_kvs, b->u.delete_range.prev_kvs_n);
		return;
	case RB_OP_TXN:
		j_txn_fields(o, &b->u.txn, rev);
		return;
	default:
		return;
	}
}

/* ---- JSON per command ------------------------------------------------- */

static void json_lease(FILE *f, const struct rbctl_args *a, const struct rb_resp *r)
{
	struct jobj o = { f, false };
	const struct rb_op_resp *b = &r->body;
	fputc('{', f);
	if (a->cmd == RBCTL_CMD_LEASE_REVOKE) {
		j_header(&o, &r->header);
		fputs("}\n", f);
		return;
	}
	j_header_fields(&o, &r->header);
	switch (a->cmd) {
	case RBCTL_CMD_LEASE_GRANT:
		j_i64(&o, "ID", b->u.lease_grant.id, false);
		j_i64(&o, "TTL", b->u.lease_grant.ttl_s, false);
		j_key(&o, "Error");
		fputs("\"\"", f);
		break;
	case RBCTL_CMD_LEASE_KEEPALIVE:
		j_i64(&o, "ID", b->u.lease_keepalive.id, false);
		j_i64(&o, "TTL", b->u.lease_keepalive.ttl_s, false);
		break;
	case RBCTL_CMD_LEASE_TIMETOLIVE: {
		const struct rb_lease_ttl_resp *l = &b->u.lease_ttl;
		j_i64(&o, "id", l->id, false);
		j_i64(&o, "ttl", l->ttl_s, false);
		j_i64(&o, "granted-ttl", l->granted_ttl_s, false);
		j_key(&o, "keys");
		if (l->keys_n == 0)
			fputs("null", f);
		for (size_t i = 0; i < l->keys_n; i++) {
			fputc(i ? ',' : '[', f);
			j_b64(f, l->keys[i].data, l->keys[i].len);
		}
		if (l->keys_n)
			fputc(']', f);
		break;
	}
	default: {     /* list */
		const struct rb_lease_leases_resp *l = &b->u.lease_leases;
		j_key(&o, "leases");
		fputc('[', f);
		for (size_t i = 0; i < l->ids_n; i++)
			fprintf(f, "%s{\"id\":%" PRId64 "}", i ? "," : "", l->ids[i]);
		fputc(']', f);
		break;
	}
	}
	fputs("}\n", f);
}

static void j_strs(struct jobj *o, const char *k, const char *const *s, size_t n)
{
	if (n == 0)
		return;
	j_key(o, k);
	for (size_t i = 0; i < n; i++) {
		fputc(i ? ',' : '[', o->f);
		j_cstr(o->f, s[i]);
	}
	fputc(']', o->f);
}

static void json_members(FILE *f, const struct rb_resp *r)
{
	struct jobj o = { f, false };
	const struct rb_member_list_resp *ml = &r->body.u.member_list;
	fputc('{', f);
	j_header(&o, &r->header);
	if (ml->members_n)
		j_key(&o, "members");
	for (size_t i = 0; i < ml->members_n; i++) {
		const struct rb_member *m = &ml->members[i];
		struct jobj mo = { f, false };
		fputs(i ? ",{" : "[{", f);
		j_u64(&mo, "ID", m->id);
		if (m->name && *m->name) {
			j_key(&mo, "name");
			j_cstr(f, m->name);
		}
		j_strs(&mo, "peerURLs", m->peer_urls, m->peer_urls_n);
		j_strs(&mo, "clientURLs", m->client_urls, m->client_urls_n);
		j_true(&mo, "isLearner", m->is_learner);
		fputc('}', f);
	}
	if (ml->members_n)
		fputc(']', f);
	fputs("}\n", f);
}

static void print_json(FILE *f, const struct rbctl_args *a, const struct rb_resp *r)
{
	switch (a->cmd) {
	case RBCTL_CMD_PUT:
	case RBCTL_CMD_GET:
	case RBCTL_CMD_DEL:
	case RBCTL_CMD_TXN: {
		struct jobj o = { f, false };
		fputc('{', f);
		j_header(&o, &r->header);
		j_op_fields(&o, &r->body, r->header.revision);
		fputs("}\n", f);
		return;
	}
	case RBCTL_CMD_COMPACT:
		/* etcdctl prints its simple line even with -w json */
		fprintf(f, "compacted revision %" PRId64 "\n", a->op.u.compact.revision);
		return;
	case RBCTL_CMD_MEMBER_LIST:
		json_members(f, r);
		return;
	default:
		json_lease(f, a, r);
		return;
	}
}

/* ---- simple ----------------------------------------------------------- */

/* fwrite of a byte string that may be NULL/0 (decoded empty strings). */
static void s_bytes(FILE *f, const uint8_t *p, size_t n)
{
	if (n)
		fwrite(p, 1, n, f);
}

static void s_kv(FILE *f, const struct rb_kv *kv, bool value_only)
{
	if (!value_only) {
		s_bytes(f, kv->key, kv->key_len);
		fputc('\n', f);
	}
	s_bytes(f, kv->value, kv->value_len);
	fputc('\n', f);
}

static void s_op(FILE *f, const struct rb_op_resp *b, bool value_only, bool count_only)
{
	switch (b->type) {
	case RB_OP_PUT:
		fputs("OK\n", f);
		if (b->u.put.has_prev_kv)
			s_kv(f, &b->u.put.prev_kv, false);
		return;
	case RB_OP_RANGE:
		if (count_only) {
			fprintf(f, "%" PRId64 "\n", b->u.range.count);
			return;
		}
		for (size_t i = 0; i < b->u.range.kvs_n; i++)
			s_kv(f, &b->u.range.kvs[i], value_only);
		return;
	case RB_OP_DELETE_RANGE:
		fprintf(f, "%" PRId64 "\n", b->u.delete_range.deleted);
		for (size_t i = 0; i < b->u.delete_range.prev_kvs_n; i++)
			s_kv(f, &b->u.delete_range.prev_kvs[i], false);
		return;
	case RB_OP_TXN:
		fputs(b->u.txn.succeeded ? "SUCCESS\n" : "FAILURE\n", f);
		for (size_t i = 0; i < b->u.txn.responses_n; i++) {
			fputc('\n', f);
			s_op(f, &b->u.txn.responses[i], false, false);
		}
		return;
	default:
		return;
	}
}

static void s_lease(FILE *f, const struct rbctl_args *a, const struct rb_resp *r)
{
	const struct rb_op_resp *b = &r->body;
	switch (a->cmd) {
	case RBCTL_CMD_LEASE_GRANT:
		fprintf(f, "lease %016" PRIx64 " granted with TTL(%" PRId64 "s)\n",
			(uint64_t)b->u.lease_grant.id, b->u.lease_grant.ttl_s);
		return;
	case RBCTL_CMD_LEASE_REVOKE:
		fprintf(f, "lease %016" PRIx64 " revoked\n", (uint64_t)a->op.u.lease_revoke.id);
		return;
	case RBCTL_CMD_LEASE_KEEPALIVE:
		fprintf(f, "lease %016" PRIx64 " keepalived with TTL(%" PRId64 ")\n",
			(uint64_t)b->u.lease_keepalive.id, b->u.lease_keepalive.ttl_s);
		return;
	case RBCTL_CMD_LEASE_TIMETOLIVE: {
		const struct rb_lease_ttl_resp *l = &b->u.lease_ttl;
		if (l->ttl_s == -1) {
			fprintf(f, "lease %016" PRIx64 " already expired\n", (uint64_t)l->id);
			return;
		}
		fprintf(f, "lease %016" PRIx64 " granted with TTL(%" PRId64 "s), remaining(%"
			PRId64 "s)", (uint64_t)l->id, l->granted_ttl_s, l->ttl_s);
		if (a->op.u.lease_ttl.keys) {
			fputs(", attached keys([", f);
			for (size_t i = 0; i < l->keys_n; i++) {
				if (i)
					fputc(' ', f);
				s_bytes(f, l->keys[i].data, l->keys[i].len);
			}
			fputs("])", f);
		}
		fputc('\n', f);
		return;
	}
	default:
		fprintf(f, "found %zu leases\n", b->u.lease_leases.ids_n);
		for (size_t i = 0; i < b->u.lease_leases.ids_n; i++)
			fprintf(f, "%016" PRIx64 "\n", (uint64_t)b->u.lease_leases.ids[i]);
		return;
	}
}

static void s_join(FILE *f, const char *const *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? "," : "", s[i]);
}

void rbctl_print(FILE *f, const struct rbctl_args *a, const struct rb_resp *r)
{
	if (a->out == RBCTL_OUT_JSON) {
		print_json(f, a, r);
		return;
	}
	switch (a->cmd) {
	case RBCTL_CMD_PUT:
	case RBCTL_CMD_GET:
	case RBCTL_CMD_DEL:
	case RBCTL_CMD_TXN:
		s_op(f, &r->body, a->print_value_only,
			a->cmd == RBCTL_CMD_GET && a->op.u.range.count_only);
		return;
	case RBCTL_CMD_COMPACT:
		fprintf(f, "compacted revision %" PRId64 "\n", a->op.u.compact.revision);
		return;
	case RBCTL_CMD_MEMBER_LIST:
		for (size_t i = 0; i < r->body.u.member_list.members_n; i++) {
			const struct rb_member *m = &r->body.u.member_list.members[i];
			bool started = m->name && *m->name;
			fprintf(f, "%" PRIx64 ", %s, %s, ", m->id, started ? "started" : "unstarted",
				m->name ? m->name : "");
			s_join(f, m->peer_urls, m->peer_urls_n);
			fputs(", ", f);
			s_join(f, m->client_urls, m->client_urls_n);
			fprintf(f, ", %s\n", m->is_learner ? "true" : "false");
		}
		return;
	default:
		s_lease(f, a, r);
		return;
	}
}

/* ---- endpoint status and health -------------------------------------- */

void rbctl_print_health(FILE *f, int out, const struct rbctl_health *h, size_t n)
{
	char took[64];
	if (out == RBCTL_OUT_JSON) {
		fputc('[', f);
		for (size_t i = 0; i < n; i++) {
			rbctl_format_duration(h[i].took_ns, took, sizeof(took));
			fputs(i ? ",{\"endpoint\":" : "{\"endpoint\":", f);
			j_cstr(f, h[i].endpoint);
			fprintf(f, ",\"health\":%s,\"took\":", h[i].healthy ? "true" : "false");
			j_cstr(f, took);
			if (!h[i].healthy) {
				fputs(",\"error\":", f);
				j_cstr(f, h[i].error);
			}
			fputc('}', f);
		}
		fputs("]\n", f);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		rbctl_format_duration(h[i].took_ns, took, sizeof(took));
		if (h[i].healthy)
			fprintf(f, "%s is healthy: successfully committed proposal: took = %s\n",
				h[i].endpoint, took);
		else
			fprintf(f, "%s is unhealthy: failed to commit proposal: %s\n",
				h[i].endpoint, h[i].error ? h[i].error : "");
	}
}

static void json_status(FILE *f, const char *ep, const struct rb_resp *r, bool first)
{
	const struct rb_status_resp *s = &r->body.u.status;
	fputs(first ? "{\"Endpoint\":" : ",{\"Endpoint\":", f);
	j_cstr(f, ep);
	fputs(",\"Status\":{", f);
	struct jobj o = { f, false };
	j_header(&o, &r->header);
	if (s->version && *s->version) {
		j_key(&o, "version");
		j_cstr(f, s->version);
	}
	j_i64(&o, "dbSize", s->db_size, true);
	j_u64(&o, "leader", s->leader);
	j_u64(&o, "raftIndex", s->raft_index);
	j_u64(&o, "raftTerm", s->raft_term);
	j_u64(&o, "raftAppliedIndex", s->raft_applied_index);
	j_strs(&o, "errors", s->errors, s->errors_n);
	j_i64(&o, "dbSizeInUse", s->db_size_in_use, true);
	j_true(&o, "isLearner", s->is_learner);
	fputs("}}", f);
}

void rbctl_print_status(FILE *f, int out, const char *const *endpoints,
	const struct rb_resp *resps, size_t n)
{
	bool first = true;
	if (out == RBCTL_OUT_JSON)
		fputc('[', f);
	for (size_t i = 0; i < n; i++) {
		const struct rb_resp *r = &resps[i];
		if (r->err)
			continue;
		if (out == RBCTL_OUT_JSON) {
			json_status(f, endpoints[i], r, first);
			first = false;
			continue;
		}
		const struct rb_status_resp *s = &r->body.u.status;
		char size[32];
		rbctl_humanize_bytes((uint64_t)(s->db_size > 0 ? s->db_size : 0), size, sizeof(size));
		fprintf(f, "%s, %" PRIx64 ", %s, %s, %s, %s, %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", ",
			endpoints[i], r->header.member_id, s->version ? s->version : "", size,
			s->leader == r->header.member_id ? "true" : "false",
			s->is_learner ? "true" : "false", s->raft_term, s->raft_index,
			s->raft_applied_index);
		for (size_t k = 0; k < s->errors_n; k++)
			fprintf(f, "%s%s", k ? ", " : "", s->errors[k]);
		fputc('\n', f);
	}
	if (out == RBCTL_OUT_JSON)
		fputs("]\n", f);
}

/* ---- number formats --------------------------------------------------- */

/* Go's fmtFrac: v/10^prec with trailing zeros of the fraction dropped. */
static void dur_frac(char *buf, size_t len, uint64_t v, int prec, const char *unit)
{
	uint64_t p10 = 1;
	for (int i = 0; i < prec; i++)
		p10 *= 10;
	uint64_t ip = v / p10, fp = v % p10;
	if (fp == 0) {
		snprintf(buf, len, "%" PRIu64 "%s", ip, unit);
		return;
	}
	char frac[24];
	snprintf(frac, sizeof(frac), "%0*" PRIu64, prec, fp);
	size_t n = strlen(frac);
	while (n > 0 && frac[n - 1] == '0')
		frac[--n] = '\0';
	snprintf(buf, len, "%" PRIu64 ".%s%s", ip, frac, unit);
}

void rbctl_format_duration(int64_t ns, char *buf, size_t len)
{
	bool neg = ns < 0;
	uint64_t u = neg ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
	char tmp[64];
	if (u == 0) {
		snprintf(buf, len, "0s");
		return;
	}
	if (u < 1000) {
		snprintf(tmp, sizeof(tmp), "%" PRIu64 "ns", u);
	} else if (u < 1000000) {
		dur_frac(tmp, sizeof(tmp), u, 3, "\xc2\xb5s");
	} else if (u < 1000000000) {
		dur_frac(tmp, sizeof(tmp), u, 6, "ms");
	} else {
		/* seconds and above: [Nh][Nm]S.frac s */
		uint64_t s = u / 1000000000, frac = u % 1000000000;
		char sec[40];
		dur_frac(sec, sizeof(sec), (s % 60) * 1000000000 + frac, 9, "s");
		if (s >= 3600)
			snprintf(tmp, sizeof(tmp), "%" PRIu64 "h%" PRIu64 "m%s", s / 3600,
				s / 60 % 60, sec);
		else if (s >= 60)
			snprintf(tmp, sizeof(tmp), "%" PRIu64 "m%s", s / 60, sec);
		else
			snprintf(tmp, sizeof(tmp), "%s", sec);
	}
	snprintf(buf, len, "%s%s", neg ? "-" : "", tmp);
}

void rbctl_humanize_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *units[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB" };
	if (n < 10) {
		snprintf(buf, len, "%" PRIu64 " B", n);
		return;
	}
	double e = floor(log((double)n) / log(1000.0));
	if (e > 6)
		e = 6;
	double val = floor((double)n / pow(1000.0, e) * 10 + 0.5) / 10;
	snprintf(buf, len, val < 10 ? "%.1f %s" : "%.0f %s", val, units[(int)e]);
}

const char *rbctl_error_text(const struct rb_resp *r)
{
	/* etcd's gRPC layer prefixes the store's mvcc texts */
	switch (r->err) {
	case RB_ERR_COMPACTED:
		return "etcdserver: mvcc: required revision has been compacted";
	case RB_ERR_FUTURE_REV:
		return "etcdserver: mvcc: required revision is a future revision";
	default:
		break;
	}
	if (r->err < 0 && r->err >= RB_ERR_NO_LEADER)
		return rb_strerror(r->err);
	return r->msg && *r->msg ? r->msg : rb_strerror(r->err);
}

/* ---- watch ------------------------------------------------------------ */

static void j_event(FILE *f, const struct rb_event *ev)
{
	struct jobj o = { f, false };
	fputc('{', f);
	j_i64(&o, "type", ev->type, true);
	j_key(&o, "kv");
	j_kv(f, &ev->kv);
	if (ev->has_prev_kv) {
		j_key(&o, "prev_kv");
		j_kv(f, &ev->prev_kv);
	}
	fputc('}', f);
}

void rbctl_print_watch(FILE *f, int out, const struct rb_header *h,
	const struct rb_watch_result *res)
{
	if (out == RBCTL_OUT_JSON) {
		struct rb_header hh = *h;
		if (res->canceled)
			hh.revision = 0;   /* etcd's cancel response has none */
		struct jobj o = { f, false };
		fputc('{', f);
		j_key(&o, "Header");
		struct jobj ho = { f, false };
		fputc('{', f);
		j_header_fields(&ho, &hh);
		fputs("},\"Events\":[", f);
		for (size_t i = 0; i < res->events_n; i++) {
			if (i)
				fputc(',', f);
			j_event(f, &res->events[i]);
		}
		fprintf(f, "],\"CompactRevision\":%" PRId64 ",\"Canceled\":%s,\"Created\":false}\n",
			res->compact_revision, res->canceled ? "true" : "false");
		return;
	}
	if (res->progress)
		fprintf(f, "progress notify: %" PRId64 "\n", h->revision);
	for (size_t i = 0; i < res->events_n; i++) {
		const struct rb_event *ev = &res->events[i];
		fputs(ev->type == RB_EVENT_DELETE ? "DELETE\n" : "PUT\n", f);
		if (ev->has_prev_kv)
			s_kv(f, &ev->prev_kv, false);
		s_kv(f, &ev->kv, false);
	}
}
