/*
 * test_ctl.c - raftbusctl without a server: the command line becomes the
 * right request (or the right etcdctl error and exit code, with nothing
 * sent), etcdctl's txn text is read correctly, and replies print byte for
 * byte as etcdctl 3.4.23 printed them in the same situation (the expected
 * strings were captured from etcdctl against a real etcd).
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbctl.h"

TestSuite(ctl, .timeout = 30);

#define B(s) (s), strlen(s)

static int parse(struct rbctl_args *a, char *err, const char *env, int n, ...)
{
	char *argv[32] = { (char *)"raftbusctl" };
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	memset(a, 0, sizeof(*a));
	return rbctl_parse(n + 1, argv, env, a, err, 256);
}

static void assert_bytes(const uint8_t *p, size_t n, const char *want, size_t want_n)
{
	cr_assert_eq(n, want_n, "length %zu, want %zu", n, want_n);
	if (n)
		cr_assert_eq(memcmp(p, want, n), 0);
}

/* ---- parsing ---------------------------------------------------------- */

Test(ctl, put_parses_flags_anywhere)
{
	struct rbctl_args a;
	char err[256];
	cr_assert_eq(parse(&a, err, NULL, 6, "--prev-kv", "put", "k", "v", "--lease=1a", "-w=json"), 0, "%s", err);
	cr_assert_eq(a.cmd, RBCTL_CMD_PUT);
	cr_assert_eq(a.op.type, RB_OP_PUT);
	assert_bytes(a.op.u.put.key, a.op.u.put.key_len, B("k"));
	assert_bytes(a.op.u.put.value, a.op.u.put.value_len, B("v"));
	cr_assert_eq(a.op.u.put.lease, 0x1a);
	cr_assert(a.op.u.put.prev_kv);
	cr_assert_eq(a.out, RBCTL_OUT_JSON);
	cr_assert(!a.value_from_stdin);
	cr_assert_eq(a.endpoints_n, 1);
	cr_assert_str_eq(a.endpoints[0], RBCTL_ENDPOINT_DEFAULT);
	rbctl_args_free(&a);

	cr_assert_eq(parse(&a, err, NULL, 2, "put", "k"), 0);
	cr_assert(a.value_from_stdin);
	rbctl_args_free(&a);

	/* "--" lets a key start with a dash */
	cr_assert_eq(parse(&a, err, NULL, 4, "put", "--", "-k", "-v"), 0);
	assert_bytes(a.op.u.put.key, a.op.u.put.key_len, B("-k"));
	rbctl_args_free(&a);
}

Test(ctl, put_errors_match_etcdctl)
{
	struct rbctl_args a;
	char err[256];
	cr_assert_eq(parse(&a, err, NULL, 1, "put"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_str_eq(err, "put command needs 1 argument and input from stdin or 2 arguments");
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 4, "put", "k1", "x", "--ignore-value"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_str_eq(err, "put command needs only 1 argument when 'ignore-value' is set");
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 4, "put", "k", "v", "--lease=zz"), RBCTL_EXIT_BAD_ARGS);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 4, "put", "k", "v", "--prefix"), RBCTL_EXIT_ERROR);
	cr_assert_str_eq(err, "unknown flag: --prefix");
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 3, "get", "foo", "--bogus"), RBCTL_EXIT_ERROR);
	cr_assert_str_eq(err, "unknown flag: --bogus");
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 1, "bogus"), RBCTL_EXIT_ERROR);
	cr_assert_str_eq(err, "unknown command \"bogus\" for \"raftbusctl\"");
	rbctl_args_free(&a);
}

Test(ctl, get_builds_the_range_request)
{
	struct rbctl_args a;
	char err[256];
	cr_assert_eq(parse(&a, err, NULL, 10, "get", "ab", "--prefix", "--rev", "7",
		"--limit=3", "--keys-only", "--sort-by=modify", "--order=DESCEND",
		"--consistency=s"), 0, "%s", err);
	const struct rb_range *q = &a.op.u.range;
	cr_assert_eq(a.op.type, RB_OP_RANGE);
	assert_bytes(q->key, q->key_len, B("ab"));
	assert_bytes(q->range_end, q->range_end_len, B("ac"));
	cr_assert_eq(q->revision, 7);
	cr_assert_eq(q->limit, 3);
	cr_assert(q->keys_only && q->serializable && !q->count_only);
	cr_assert_eq(q->sort_target, RB_SORT_MOD);
	cr_assert_eq(q->sort_order, RB_SORT_DESCEND);
	rbctl_args_free(&a);

	/* from-key: range end "\0"; KEY END explicit */
	cr_assert_eq(parse(&a, err, NULL, 3, "get", "k", "--from-key"), 0);
	assert_bytes(a.op.u.range.range_end, a.op.u.range.range_end_len, "\0", 1);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 3, "get", "a", "z"), 0);
	assert_bytes(a.op.u.range.range_end, a.op.u.range.range_end_len, B("z"));
	cr_assert_eq(a.op.u.range.sort_order, RB_SORT_NONE);
	rbctl_args_free(&a);
	/* --prefix "" is every key */
	cr_assert_eq(parse(&a, err, NULL, 3, "get", "", "--prefix"), 0);
	assert_bytes(a.op.u.range.key, a.op.u.range.key_len, "\0", 1);
	assert_bytes(a.op.u.range.range_end, a.op.u.range.range_end_len, "\0", 1);
	rbctl_args_free(&a);
	/* KEY + ASCEND is no sort (clientv3.WithSort) */
	cr_assert_eq(parse(&a, err, NULL, 4, "get", "a", "--sort-by=KEY", "--order=ASCEND"), 0);
	cr_assert_eq(a.op.u.range.sort_order, RB_SORT_NONE);
	rbctl_args_free(&a);
}

Test(ctl, get_errors_match_etcdctl)
{
	struct rbctl_args a;
	char err[256];
	cr_assert_eq(parse(&a, err, NULL, 1, "get"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_str_eq(err, "get command needs one argument as key and an optional argument as range_end");
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 3, "get", "foo", "--sort-by=NOPE"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_str_eq(err, "bad sort target NOPE");
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 3, "get", "foo", "--consistency=x"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_str_eq(err, "unknown consistency flag \"x\"");
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 4, "-w", "yaml", "get", "foo"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_str_eq(err, "unsupported output format");
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 4, "get", "a", "--prefix", "--from-key"), RBCTL_EXIT_BAD_ARGS);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 4, "-w", "json", "get", "--print-value-only"),
		RBCTL_EXIT_BAD_ARGS);
	rbctl_args_free(&a);
}

Test(ctl, globals_endpoints_env_and_timeouts)
{
	struct rbctl_args a;
	char err[256];
	cr_assert_eq(parse(&a, err, "tcp://h1:1,h2:2", 5, "member", "list",
		"--dial-timeout=1m30s", "--command-timeout", "250ms"), 0, "%s", err);
	cr_assert_eq(a.cmd, RBCTL_CMD_MEMBER_LIST);
	cr_assert_eq(a.endpoints_n, 2);
	cr_assert_str_eq(a.endpoints[0], "tcp://h1:1");
	cr_assert_str_eq(a.endpoints[1], "h2:2");
	cr_assert_eq(a.dial_timeout_ms, 90000);
	cr_assert_eq(a.command_timeout_ms, 250);
	rbctl_args_free(&a);
	/* --endpoints wins over the environment */
	cr_assert_eq(parse(&a, err, "h9:9", 3, "--endpoints=a:1", "endpoint", "health"), 0);
	cr_assert_eq(a.endpoints_n, 1);
	cr_assert_str_eq(a.endpoints[0], "a:1");
	cr_assert_eq(a.op.type, RB_OP_HEALTH);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 3, "--dial-timeout=5x", "get", "k"), RBCTL_EXIT_ERROR);
	rbctl_args_free(&a);
	int64_t ms;
	cr_assert(rbctl_parse_duration_ms("2.5s", &ms) && ms == 2500);
	cr_assert(rbctl_parse_duration_ms("1h", &ms) && ms == 3600000);
	cr_assert(!rbctl_parse_duration_ms("5", &ms));
	cr_assert(!rbctl_parse_duration_ms("-1s", &ms));
}

Test(ctl, lease_and_other_commands)
{
	struct rbctl_args a;
	char err[256];
	cr_assert_eq(parse(&a, err, NULL, 3, "lease", "grant", "60"), 0);
	cr_assert_eq(a.op.type, RB_OP_LEASE_GRANT);
	cr_assert_eq(a.op.u.lease_grant.ttl_s, 60);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 3, "lease", "revoke", "390da2134c0fbc0c"), 0);
	cr_assert_eq(a.op.u.lease_revoke.id, 0x390da2134c0fbc0c);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 4, "lease", "keep-alive", "--once", "ff"), 0);
	cr_assert(a.keepalive_once);
	cr_assert_eq(a.op.u.lease_keepalive.id, 0xff);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 4, "lease", "timetolive", "ff", "--keys"), 0);
	cr_assert(a.op.u.lease_ttl.keys);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 3, "lease", "revoke", "zz"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_str_eq(err, "bad lease ID arg (strconv.ParseInt: parsing \"zz\": invalid syntax), "
		"expecting ID in Hex");
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 2, "lease", "grant"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_str_eq(err, "lease grant command needs TTL argument");
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 2, "compact", "12"), 0);
	cr_assert_eq(a.op.u.compact.revision, 12);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 1, "compact"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_str_eq(err, "compaction command needs 1 argument");
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 4, "del", "k", "--prefix", "--prev-kv"), 0);
	assert_bytes(a.op.u.delete_range.range_end, a.op.u.delete_range.range_end_len, B("l"));
	cr_assert(a.op.u.delete_range.prev_kv);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 3, "endpoint", "status", "--cluster"), 0);
	cr_assert(a.cluster);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 2, "txn", "-i"), 0);
	cr_assert(a.interactive);
	rbctl_args_free(&a);
	cr_assert_eq(parse(&a, err, NULL, 2, "get", "--help"), 0);
	cr_assert_eq(a.cmd, RBCTL_CMD_HELP);
	cr_assert_str_eq(a.help_topic, "get");
	rbctl_args_free(&a);
}

/* ---- txn text --------------------------------------------------------- */

static int txn_from(const char *text, struct rb_txn *t, struct rb_mem **m, char *err)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	int rc = rbctl_txn_read(in, NULL, t, m, err, 256);
	fclose(in);
	return rc;
}

Test(ctl, txn_text_is_read_like_etcdctl)
{
	struct rb_txn t;
	struct rb_mem *m;
	char err[256];
	const char *text =
		"mod(\"u2\") > \"0\"\n"
		"version(\"u2\") = \"1\"\n"
		"c(\"u2\") != \"0\"\n"
		"value(\"a\\\"b\") < \"y\\n\"\n"
		"lease(\"k\") = \"1f\"\n"
		"\n"
		"del user1\n"
		"put u2 \"hello world\" --prev-kv\n"
		"get u --prefix --keys-only\n"
		"\n"
		"put user1 good\n"
		"\n";
	cr_assert_eq(txn_from(text, &t, &m, err), 0, "%s", err);
	cr_assert_eq(t.compares_n, 5);
	cr_assert_eq(t.compares[0].target, RB_CMP_MOD);
	cr_assert_eq(t.compares[0].result, RB_CMP_GREATER);
	cr_assert_eq(t.compares[1].target, RB_CMP_VERSION);
	cr_assert_eq(t.compares[1].number, 1);
	cr_assert_eq(t.compares[2].result, RB_CMP_NOT_EQUAL);
	cr_assert_eq(t.compares[3].target, RB_CMP_VALUE);
	assert_bytes(t.compares[3].key, t.compares[3].key_len, B("a\"b"));
	assert_bytes(t.compares[3].value, t.compares[3].value_len, B("y\n"));
	cr_assert_eq(t.compares[4].number, 0x1f);
	cr_assert_eq(t.success_n, 3);
	cr_assert_eq(t.success[0].type, RB_OP_DELETE_RANGE);
	cr_assert_eq(t.success[1].type, RB_OP_PUT);
	assert_bytes(t.success[1].u.put.value, t.success[1].u.put.value_len, B("hello world"));
	cr_assert(t.success[1].u.put.prev_kv);
	assert_bytes(t.success[2].u.range.range_end, t.success[2].u.range.range_end_len, B("v"));
	cr_assert(t.success[2].u.range.keys_only);
	cr_assert_eq(t.failure_n, 1);
	rbctl_txn_free(m);

	/* empty sections */
	cr_assert_eq(txn_from("\n\n\n", &t, &m, err), 0);
	cr_assert_eq(t.compares_n + t.success_n + t.failure_n, 0);
	rbctl_txn_free(m);
}

Test(ctl, txn_text_errors_match_etcdctl)
{
	struct rb_txn t;
	struct rb_mem *m;
	char err[256];
	/* the last section must end with a blank line */
	cr_assert_eq(txn_from("value(\"a\") = \"b\"\n\nput a b\n", &t, &m, err),
		RBCTL_EXIT_INVALID_INPUT);
	cr_assert_str_eq(err, "EOF");
	cr_assert_eq(txn_from("bogus\n\n\n\n", &t, &m, err), RBCTL_EXIT_INVALID_INPUT);
	cr_assert_str_eq(err, "malformed comparison: bogus");
	cr_assert_eq(txn_from("value(\"u2\")=\"y\"\n\n\n\n", &t, &m, err), RBCTL_EXIT_INVALID_INPUT);
	cr_assert_eq(txn_from("mod(\"u2\") > \"abc\"\n\n\n\n", &t, &m, err), RBCTL_EXIT_INVALID_INPUT);
	cr_assert_str_eq(err, "invalid txn compare request: mod(\"u2\") > \"abc\"");
	cr_assert_eq(txn_from("\n\nfoo bar\n\n\n", &t, &m, err), RBCTL_EXIT_INVALID_INPUT);
	cr_assert_str_eq(err, "invalid txn request: foo bar");
	/* a request line's own argument error, as etcdctl prints it */
	cr_assert_eq(txn_from("\n\nput x\n\n\n", &t, &m, err), RBCTL_EXIT_BAD_ARGS);
	cr_assert_str_eq(err, "put command needs 1 argument and input from stdin or 2 arguments");
	cr_assert_eq(txn_from("value(\"u2\") ~ \"x\"\n\n\n\n", &t, &m, err), RBCTL_EXIT_INVALID_INPUT);
	cr_assert_eq(txn_from("", &t, &m, err), RBCTL_EXIT_INVALID_INPUT);
	cr_assert_null(m);
}

Test(ctl, txn_interactive_prompts)
{
	struct rb_txn t;
	struct rb_mem *m;
	char err[256], *out = NULL;
	size_t out_len = 0;
	const char *text = "value(\"u2\") = \"x\"\n\nput u3 y\n\n\n";
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	FILE *p = open_memstream(&out, &out_len);
	cr_assert_eq(rbctl_txn_read(in, p, &t, &m, err, sizeof(err)), 0);
	fclose(p);
	fclose(in);
	cr_assert_str_eq(out, "compares:\nsuccess requests (get, put, del):\n"
		"failure requests (get, put, del):\n");
	free(out);
	rbctl_txn_free(m);
}

/* ---- output ----------------------------------------------------------- */

/* Prints r for the command line given and returns the text (free it). */
static char *render(struct rb_resp *r, int n, ...)
{
	char *argv[16] = { (char *)"raftbusctl" };
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	struct rbctl_args a = { 0 };
	char err[256];
	cr_assert_eq(rbctl_parse(n + 1, argv, NULL, &a, err, sizeof(err)), 0, "%s", err);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	rbctl_print(f, &a, r);
	fclose(f);
	rbctl_args_free(&a);
	return out;
}

#define HDR { 15118495548433857066ull, 13668033151171901709ull, 4, 2 }

static const struct rb_kv kv_foo = { (const uint8_t *)"foo", 3, (const uint8_t *)"bar", 3,
	2, 2, 1, 0 };

static void expect(char *got, const char *want)
{
	cr_assert_str_eq(got, want);
	free(got);
}

Test(ctl, put_and_get_output)
{
	struct rb_resp r = { .header = HDR, .body.type = RB_OP_PUT };
	expect(render(&r, 3, "put", "foo", "bar"), "OK\n");
	r.body.u.put.has_prev_kv = true;
	r.body.u.put.prev_kv = kv_foo;
	expect(render(&r, 4, "put", "foo", "bar", "--prev-kv"), "OK\nfoo\nbar\n");
	expect(render(&r, 6, "-w", "json", "put", "foo", "bar", "--prev-kv"),
		"{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"revision\":4,\"raft_term\":2},\"prev_kv\":{\"key\":\"Zm9v\",\"create_revision\":2,"
		"\"mod_revision\":2,\"version\":1,\"value\":\"YmFy\"}}\n");

	struct rb_kv kvs[2] = { kv_foo, { (const uint8_t *)"foo2", 4, NULL, 0, 3, 3, 1, 0 } };
	r = (struct rb_resp){ .header = HDR, .body.type = RB_OP_RANGE,
		.body.u.range = { kvs, 2, 2, false } };
	expect(render(&r, 3, "get", "f", "--prefix"), "foo\nbar\nfoo2\n\n");
	expect(render(&r, 4, "get", "f", "--prefix", "--print-value-only"), "bar\n\n");
	r.body.u.range.kvs_n = 1;
	r.body.u.range.more = true;
	expect(render(&r, 4, "-w", "json", "get", "f"),
		"{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"revision\":4,\"raft_term\":2},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":2,"
		"\"mod_revision\":2,\"version\":1,\"value\":\"YmFy\"}],\"more\":true,\"count\":2}\n");
	/* nothing found: header only, empty output in simple mode */
	r.body.u.range = (struct rb_range_resp){ 0 };
	expect(render(&r, 2, "get", "nothing"), "");
	expect(render(&r, 4, "-w", "json", "get", "nothing"),
		"{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"revision\":4,\"raft_term\":2}}\n");
	r.body.u.range.count = 7;
	expect(render(&r, 3, "get", "a", "--count-only"), "7\n");
}

Test(ctl, del_txn_compact_output)
{
	struct rb_kv prev = { (const uint8_t *)"foo2", 4, (const uint8_t *)"baz", 3, 3, 3, 1, 0 };
	struct rb_resp r = { .header = { 15118495548433857066ull, 13668033151171901709ull, 6, 2 },
		.body.type = RB_OP_DELETE_RANGE, .body.u.delete_range = { 1, &prev, 1 } };
	expect(render(&r, 3, "del", "foo2", "--prev-kv"), "1\nfoo2\nbaz\n");
	expect(render(&r, 5, "-w", "json", "del", "foo2", "--prev-kv"),
		"{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"revision\":6,\"raft_term\":2},\"deleted\":1,\"prev_kvs\":[{\"key\":\"Zm9vMg==\","
		"\"create_revision\":3,\"mod_revision\":3,\"version\":1,\"value\":\"YmF6\"}]}\n");
	r.body.u.delete_range = (struct rb_delete_range_resp){ 0 };
	expect(render(&r, 2, "del", "nothing"), "0\n");

	/* etcdctl: SUCCESS, then a blank line before each response */
	struct rb_kv u2 = { (const uint8_t *)"u2", 2, (const uint8_t *)"x", 1, 17, 17, 1, 0 };
	struct rb_op_resp rs[3] = {
		{ .type = RB_OP_DELETE_RANGE, .u.delete_range = { 1, NULL, 0 } },
		{ .type = RB_OP_PUT },
		{ .type = RB_OP_RANGE, .u.range = { &u2, 1, 1, false } },
	};
	r = (struct rb_resp){ .header = { 15118495548433857066ull, 13668033151171901709ull, 20, 2 },
		.body.type = RB_OP_TXN, .body.u.txn = { true, rs, 3 } };
	expect(render(&r, 1, "txn"), "SUCCESS\n\n1\n\nOK\n\nu2\nx\n");
	r.body.u.txn = (struct rb_txn_resp){ true, &rs[2], 1 };
	expect(render(&r, 3, "-w", "json", "txn"),
		"{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"revision\":20,\"raft_term\":2},\"succeeded\":true,\"responses\":[{\"Response\":"
		"{\"ResponseRange\":{\"header\":{\"revision\":20},\"kvs\":[{\"key\":\"dTI=\","
		"\"create_revision\":17,\"mod_revision\":17,\"version\":1,\"value\":\"eA==\"}],"
		"\"count\":1}}}]}\n");
	r.body.u.txn = (struct rb_txn_resp){ false, NULL, 0 };
	expect(render(&r, 1, "txn"), "FAILURE\n");

	r = (struct rb_resp){ .header = HDR, .body.type = RB_OP_COMPACT };
	expect(render(&r, 2, "compact", "2"), "compacted revision 2\n");
	expect(render(&r, 4, "-w", "json", "compact", "3"), "compacted revision 3\n");
}

Test(ctl, lease_output)
{
	struct rb_resp r = { .header = HDR, .body.type = RB_OP_LEASE_GRANT,
		.body.u.lease_grant = { 0x390da2134c0fbc0c, 60 } };
	expect(render(&r, 3, "lease", "grant", "60"), "lease 390da2134c0fbc0c granted with TTL(60s)\n");
	r.body.u.lease_grant.id = 4111120238623308814;
	expect(render(&r, 5, "-w", "json", "lease", "grant", "60"),
		"{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"revision\":4,\"raft_term\":2,\"ID\":4111120238623308814,\"TTL\":60,\"Error\":\"\"}\n");
	r = (struct rb_resp){ .header = HDR, .body.type = RB_OP_LEASE_REVOKE };
	expect(render(&r, 3, "lease", "revoke", "390da2134c0fbc0c"), "lease 390da2134c0fbc0c revoked\n");

	struct rb_bytes keys[2] = { { (const uint8_t *)"k1", 2 }, { (const uint8_t *)"k2", 2 } };
	r = (struct rb_resp){ .header = { 15118495548433857066ull, 13668033151171901709ull, 8, 2 },
		.body.type = RB_OP_LEASE_TIMETOLIVE,
		.body.u.lease_ttl = { 0x390da2134c0fbc19, 99, 100, keys, 2 } };
	expect(render(&r, 3, "lease", "timetolive", "390da2134c0fbc19"),
		"lease 390da2134c0fbc19 granted with TTL(100s), remaining(99s)\n");
	expect(render(&r, 4, "lease", "timetolive", "390da2134c0fbc19", "--keys"),
		"lease 390da2134c0fbc19 granted with TTL(100s), remaining(99s), attached keys([k1 k2])\n");
	expect(render(&r, 6, "-w", "json", "lease", "timetolive", "390da2134c0fbc19", "--keys"),
		"{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"revision\":8,\"raft_term\":2,\"id\":4111120238623308825,\"ttl\":99,"
		"\"granted-ttl\":100,\"keys\":[\"azE=\",\"azI=\"]}\n");
	r.body.u.lease_ttl = (struct rb_lease_ttl_resp){ 0x123, -1, 0, NULL, 0 };
	expect(render(&r, 3, "lease", "timetolive", "123"), "lease 0000000000000123 already expired\n");
	expect(render(&r, 5, "-w", "json", "lease", "timetolive", "123"),
		"{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"revision\":8,\"raft_term\":2,\"id\":291,\"ttl\":-1,\"granted-ttl\":0,\"keys\":null}\n");

	r = (struct rb_resp){ .header = { 15118495548433857066ull, 13668033151171901709ull, 8, 2 },
		.body.type = RB_OP_LEASE_KEEPALIVE,
		.body.u.lease_keepalive = { 0x390da2134c0fbc19, 100 } };
	expect(render(&r, 4, "lease", "keep-alive", "--once", "390da2134c0fbc19"),
		"lease 390da2134c0fbc19 keepalived with TTL(100)\n");
	expect(render(&r, 6, "-w", "json", "lease", "keep-alive", "--once", "390da2134c0fbc19"),
		"{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"revision\":8,\"raft_term\":2,\"ID\":4111120238623308825,\"TTL\":100}\n");

	rb_lease_id ids[2] = { 4111120238623308812, 4111120238623308814 };
	r = (struct rb_resp){ .header = HDR, .body.type = RB_OP_LEASE_LEASES,
		.body.u.lease_leases = { ids, 2 } };
	expect(render(&r, 2, "lease", "list"), "found 2 leases\n390da2134c0fbc0c\n390da2134c0fbc0e\n");
	expect(render(&r, 4, "-w", "json", "lease", "list"),
		"{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"revision\":4,\"raft_term\":2,\"leases\":[{\"id\":4111120238623308812},"
		"{\"id\":4111120238623308814}]}\n");
	/* etcd answers an empty list, not null */
	r.body.u.lease_leases.ids_n = 0;
	expect(render(&r, 2, "lease", "list"), "found 0 leases\n");
	expect(render(&r, 4, "-w", "json", "lease", "list"),
		"{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"revision\":4,\"raft_term\":2,\"leases\":[]}\n");
}

Test(ctl, member_status_health_output)
{
	const char *peers[] = { "http://127.0.0.1:23801" };
	const char *clients[] = { "http://127.0.0.1:23791" };
	struct rb_member m = { 13668033151171901709ull, "h7", peers, 1, clients, 1, false };
	struct rb_resp r = { .header = { 15118495548433857066ull, 13668033151171901709ull, 0, 2 },
		.body.type = RB_OP_MEMBER_LIST, .body.u.member_list = { &m, 1 } };
	expect(render(&r, 2, "member", "list"),
		"bdae9bbc11dd390d, started, h7, http://127.0.0.1:23801, http://127.0.0.1:23791, false\n");
	expect(render(&r, 4, "-w", "json", "member", "list"),
		"{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,"
		"\"raft_term\":2},\"members\":[{\"ID\":13668033151171901709,\"name\":\"h7\","
		"\"peerURLs\":[\"http://127.0.0.1:23801\"],\"clientURLs\":[\"http://127.0.0.1:23791\"]}]}\n");

	struct rb_resp st = { .header = { 15118495548433857066ull, 13668033151171901709ull, 6, 2 },
		.body.type = RB_OP_ENDPOINT_STATUS };
	st.body.u.status = (struct rb_status_resp){ "3.4.23", 20480, 13668033151171901709ull,
		15, 2, 15, NULL, 0, 16384, false };
	const char *eps[1] = { "127.0.0.1:23791" };
	char *out = NULL;
	size_t len;
	FILE *f = open_memstream(&out, &len);
	rbctl_print_status(f, RBCTL_OUT_SIMPLE, eps, &st, 1);
	rbctl_print_status(f, RBCTL_OUT_JSON, eps, &st, 1);
	fclose(f);
	expect(out, "127.0.0.1:23791, bdae9bbc11dd390d, 3.4.23, 20 kB, true, false, 2, 15, 15, \n"
		"[{\"Endpoint\":\"127.0.0.1:23791\",\"Status\":{\"header\":{\"cluster_id\":"
		"15118495548433857066,\"member_id\":13668033151171901709,\"revision\":6,"
		"\"raft_term\":2},\"version\":\"3.4.23\",\"dbSize\":20480,\"leader\":"
		"13668033151171901709,\"raftIndex\":15,\"raftTerm\":2,\"raftAppliedIndex\":15,"
		"\"dbSizeInUse\":16384}}]\n");

	struct rbctl_health h[2] = {
		{ "127.0.0.1:23791", true, 1939533, NULL },
		{ "127.0.0.1:1", false, 5000369456, "context deadline exceeded" },
	};
	f = open_memstream(&out, &len);
	rbctl_print_health(f, RBCTL_OUT_SIMPLE, h, 2);
	rbctl_print_health(f, RBCTL_OUT_JSON, h, 2);
	fclose(f);
	expect(out, "127.0.0.1:23791 is healthy: successfully committed proposal: took = 1.939533ms\n"
		"127.0.0.1:1 is unhealthy: failed to commit proposal: context deadline exceeded\n"
		"[{\"endpoint\":\"127.0.0.1:23791\",\"health\":true,\"took\":\"1.939533ms\"},"
		"{\"endpoint\":\"127.0.0.1:1\",\"health\":false,\"took\":\"5.000369456s\","
		"\"error\":\"context deadline exceeded\"}]\n");
}

Test(ctl, go_number_formats)
{
	char b[64];
	rbctl_format_duration(1531300, b, sizeof(b));
	cr_assert_str_eq(b, "1.5313ms");
	rbctl_format_duration(850000, b, sizeof(b));
	cr_assert_str_eq(b, "850\xc2\xb5s");
	rbctl_format_duration(999, b, sizeof(b));
	cr_assert_str_eq(b, "999ns");
	rbctl_format_duration(2000000000, b, sizeof(b));
	cr_assert_str_eq(b, "2s");
	rbctl_format_duration(90500000000, b, sizeof(b));
	cr_assert_str_eq(b, "1m30.5s");
	rbctl_format_duration(0, b, sizeof(b));
	cr_assert_str_eq(b, "0s");
	rbctl_humanize_bytes(20480, b, sizeof(b));
	cr_assert_str_eq(b, "20 kB");
	rbctl_humanize_bytes(9, b, sizeof(b));
	cr_assert_str_eq(b, "9 B");
	rbctl_humanize_bytes(1234567, b, sizeof(b));
	cr_assert_str_eq(b, "1.2 MB");
	rbctl_humanize_bytes(2147483648ull, b, sizeof(b));
	cr_assert_str_eq(b, "2.1 GB");
}

Test(ctl, error_texts_are_etcdctls)
{
	struct rb_resp r = { .err = RB_ERR_COMPACTED, .msg = "mvcc: required revision has been compacted" };
	cr_assert_str_eq(rbctl_error_text(&r), "etcdserver: mvcc: required revision has been compacted");
	r = (struct rb_resp){ .err = RB_ERR_LEASE_NOT_FOUND, .msg = "something else" };
	cr_assert_str_eq(rbctl_error_text(&r), "etcdserver: requested lease not found");
	r = (struct rb_resp){ .err = RB_ERR_BAD_REQUEST, .msg = "unknown op 99" };
	cr_assert_str_eq(rbctl_error_text(&r), "unknown op 99");
}
