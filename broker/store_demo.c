/*
 * store_demo.c - a guided tour of the replicated state machine (store/),
 * run by `./dev.sh demo` until the raftbus server exists.
 *
 * It applies entries the way a member applies committed Raft entries (each
 * with its log index) and prints what a user of etcd would see: puts with
 * revisions, a compare-and-swap transaction, a prefix read, a topic replayed
 * from a past revision (the basis of watch and pub/sub), compaction, and a
 * lease revoke that deletes its keys in one revision.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

#define S(str) (const uint8_t *)(str), strlen(str)

static st_index next_index = 1;

/* Applies one op as the next Raft entry; exits on a member-stopping error. */
static void apply(st_store *st, const struct st_op *op, struct st_result *res)
{
	struct st_entry e = { .index = next_index++, .op = *op };
	int rc = st_apply(st, &e, 1, res);
	if (rc < 0) {
		fprintf(stderr, "store-demo: apply: %s\n", st_strerror(rc));
		exit(1);
	}
}

static void put(st_store *st, const char *key, const char *value, st_lease_id lease)
{
	struct st_op op = { .type = ST_OP_PUT };
	op.u.put = (struct st_put){ .key = (const uint8_t *)key,
		.key_len = strlen(key), .value = (const uint8_t *)value,
		.value_len = strlen(value), .lease = lease };
	struct st_result res = { 0 };
	apply(st, &op, &res);
	printf("put %-22s %-12s -> revision %lld%s%s\n", key, value,
		(long long)res.revision, res.err ? "  error: " : "",
		res.err ? res.msg : "");
	st_result_free(&res);
}

static void print_kvs(const struct st_kv *kvs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("  %.*s = %.*s  (create %lld, mod %lld, version %lld)\n",
			(int)kvs[i].key_len, (const char *)kvs[i].key,
			(int)kvs[i].value_len, (const char *)kvs[i].value,
			(long long)kvs[i].create_revision,
			(long long)kvs[i].mod_revision, (long long)kvs[i].version);
}

static void get_prefix(st_store *st, const char *prefix, st_rev rev)
{
	uint8_t end[ST_KEY_BYTES_MAX];
	size_t end_len = st_prefix_end(S(prefix), end);
	struct st_range req = { .key = (const uint8_t *)prefix,
		.key_len = strlen(prefix), .range_end = end,
		.range_end_len = end_len, .revision = rev };
	struct st_result res = { 0 };
	st_range(st, &req, &res);
	if (res.err)
		printf("get --prefix %s --rev %lld: %s (compact revision %lld)\n",
			prefix, (long long)rev, res.msg,
			(long long)res.compact_revision);
	else {
		printf("get --prefix %s --rev %lld: %lld keys\n", prefix,
			(long long)rev, (long long)res.resp.u.range.count);
		print_kvs(res.resp.u.range.kvs, res.resp.u.range.kvs_n);
	}
	st_result_free(&res);
}

static void replay(st_store *st, const char *prefix, st_rev from)
{
	uint8_t end[ST_KEY_BYTES_MAX];
	size_t end_len = st_prefix_end(S(prefix), end);
	struct st_events_req req = { .key = (const uint8_t *)prefix,
		.key_len = strlen(prefix), .range_end = end,
		.range_end_len = end_len, .from_rev = from, .prev_kv = true };
	struct st_result res = { 0 };
	st_events(st, &req, &res);
	printf("replay %s from revision %lld:\n", prefix, (long long)from);
	if (res.err)
		printf("  %s (compact revision %lld)\n", res.msg,
			(long long)res.compact_revision);
	for (size_t i = 0; !res.err && i < res.resp.u.events.events_n; i++) {
		const struct st_event *ev = &res.resp.u.events.events[i];
		printf("  rev %lld %-6s %.*s %.*s\n",
			(long long)ev->kv.mod_revision,
			ev->type == ST_EVENT_PUT ? "PUT" : "DELETE",
			(int)ev->kv.key_len, (const char *)ev->kv.key,
			(int)ev->kv.value_len, (const char *)ev->kv.value);
	}
	st_result_free(&res);
}

static void txn_cas(st_store *st, const char *key, int64_t expect_version,
	const char *value)
{
	struct st_compare cmp = { .target = ST_CMP_VERSION,
		.result = ST_CMP_EQUAL, .key = (const uint8_t *)key,
		.key_len = strlen(key), .number = expect_version };
	struct st_op then = { .type = ST_OP_PUT };
	then.u.put = (struct st_put){ .key = (const uint8_t *)key,
		.key_len = strlen(key), .value = (const uint8_t *)value,
		.value_len = strlen(value) };
	struct st_op op = { .type = ST_OP_TXN };
	op.u.txn = (struct st_txn){ .compares = &cmp, .compares_n = 1,
		.success = &then, .success_n = 1 };
	struct st_result res = { 0 };
	apply(st, &op, &res);
	printf("txn: if version(%s) == %lld then put %s -> %s, revision %lld\n",
		key, (long long)expect_version, value,
		res.resp.u.txn.succeeded ? "SUCCESS" : "FAILURE",
		(long long)res.revision);
	st_result_free(&res);
}

static void simple(st_store *st, struct st_op *op, const char *what)
{
	struct st_result res = { 0 };
	apply(st, op, &res);
	printf("%s -> revision %lld%s%s\n", what, (long long)res.revision,
		res.err ? "  error: " : "", res.err ? res.msg : "");
	st_result_free(&res);
}

int main(void)
{
	char dir[] = "/tmp/raftbus-demo-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("store-demo: mkdtemp");
		return 1;
	}
	st_store *st;
	int rc = st_open(dir, NULL, &st);
	if (rc < 0) {
		fprintf(stderr, "store-demo: open %s: %s\n", dir, st_strerror(rc));
		return 1;
	}
	printf("== store in %s (empty store: revision 1)\n", dir);
	put(st, "/config/app/color", "blue", 0);
	put(st, "/config/app/size", "10", 0);
	put(st, "/topics/orders/0001", "order-1", 0);
	put(st, "/topics/orders/0002", "order-2", 0);
	put(st, "/config/app/color", "green", 0);
	txn_cas(st, "/config/app/color", 2, "red");
	txn_cas(st, "/config/app/color", 1, "black");
	get_prefix(st, "/config/app/", 0);
	get_prefix(st, "/config/app/", 2);
	replay(st, "/topics/orders/", 1);

	struct st_op op = { .type = ST_OP_LEASE_GRANT };
	op.u.lease_grant = (struct st_lease_grant){ .id = 0x1234, .ttl_s = 60 };
	simple(st, &op, "lease grant 1234 TTL(60s)");
	put(st, "/services/web/1", "10.0.0.1:80", 0x1234);
	op = (struct st_op){ .type = ST_OP_LEASE_REVOKE };
	op.u.lease_revoke.id = 0x1234;
	simple(st, &op, "lease revoke 1234 (deletes /services/web/1)");
	replay(st, "/services/", 1);

	op = (struct st_op){ .type = ST_OP_COMPACT };
	op.u.compact.revision = 5;
	simple(st, &op, "compact 5");
	get_prefix(st, "/config/app/", 2);
	replay(st, "/topics/orders/", 1);
	put(st, "/topics/orders/0003", "order-3", 0);
	replay(st, "/topics/orders/", 6);

	struct st_status status;
	if (st_status(st, &status) == 0)
		printf("== revision %lld, compact revision %lld, applied index %llu, "
			"%llu keys\n", (long long)status.revision,
			(long long)status.compact_revision,
			(unsigned long long)status.applied_index,
			(unsigned long long)status.keys);
	st_close(st);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
