/*
 * fuzz_seeds.c - writes a few valid messages of each kind as the starting
 * corpus of the fuzz targets: DIR/request, DIR/reply, DIR/peer and
 * DIR/store_op (created). Usage: fuzz_seeds DIR
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bk.h"
#include "rb_wire.h"
#include "store.h"

#define B(s) (const uint8_t *)(s), strlen(s)

static const char *dir;

static void put_file(const char *kind, int n, const uint8_t *buf, size_t len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, kind);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/seed-%d", dir, kind, n);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void request(int n, const struct rb_op *op)
{
	uint8_t *buf;
	size_t len;
	if (rb_wire_encode_request((uint64_t)n + 1, op, &buf, &len))
		exit(1);
	put_file("request", n, buf, len);
	free(buf);
}

static void requests(void)
{
	struct rb_op put = { .type = RB_OP_PUT };
	put.u.put = (struct rb_put){ .key = B("/config/app/x"), .value = B("v"),
	    .prev_kv = true };
	request(0, &put);
	struct rb_op range = { .type = RB_OP_RANGE };
	range.u.range = (struct rb_range){ .key = B("/config/"),
	    .range_end = B("/config0"), .limit = 10, .serializable = true };
	request(1, &range);
	struct rb_compare cmp = { .target = RB_CMP_VALUE, .result = RB_CMP_EQUAL,
	    .key = B("k"), .value = B("v") };
	struct rb_txn txn = { .compares = &cmp, .compares_n = 1, .success = &put,
	    .success_n = 1, .failure = &range, .failure_n = 1 };
	struct rb_op t = { .type = RB_OP_TXN };
	t.u.txn = txn;
	request(2, &t);
	struct rb_watch_spec ws = { .key = B("/t/"), .range_end = B("/t0"),
	    .start_rev = 5, .prev_kv = true };
	struct rb_op w = { .type = RB_OP_WATCH };
	w.u.watch = (struct rb_watch_req){ .watches = &ws, .watches_n = 1,
	    .wait_ms = 100 };
	request(3, &w);
	struct rb_op g = { .type = RB_OP_LEASE_GRANT };
	g.u.lease_grant.ttl_s = 10;
	request(4, &g);
}

static void replies(void)
{
	struct rb_kv kv = { .key = B("k"), .value = B("v"), .create_revision = 2,
	    .mod_revision = 3, .version = 2 };
	struct rb_resp r = { .header = { .cluster_id = 1, .member_id = 2,
	    .revision = 3, .raft_term = 4 } };
	r.body.type = RB_OP_RANGE;
	r.body.u.range.kvs = &kv;
	r.body.u.range.kvs_n = 1;
	r.body.u.range.count = 1;
	uint8_t *buf;
	size_t len;
	if (rb_wire_encode_reply(7, RB_OP_RANGE, &r, &buf, &len))
		exit(1);
	put_file("reply", 0, buf, len);
	free(buf);
	struct rb_resp e = { .err = RB_ERR_COMPACTED, .msg = "compacted",
	    .compact_revision = 9 };
	if (rb_wire_encode_reply(8, RB_OP_RANGE, &e, &buf, &len))
		exit(1);
	put_file("reply", 1, buf, len);
	free(buf);
}

static void peers(void)
{
	uint8_t d1[] = "entry-one", d2[] = "entry-two";
	struct rl_entry ents[2] = {
		{ .term = 2, .index = 5, .data_len = sizeof(d1), .data = d1 },
		{ .term = 2, .index = 6, .data_len = sizeof(d2), .data = d2 },
	};
	struct rl_msg m = { .type = RL_MSG_APPEND, .from = 1, .to = 2, .term = 2,
	    .log_term = 1, .index = 4, .commit = 4, .entries_n = 2,
	    .entries = ents };
	uint8_t *buf;
	size_t len;
	/* without the checksum: fuzz_peer seals what it is given */
	if (bk_peer_encode_raft(42, &m, &buf, &len))
		exit(1);
	put_file("peer", 0, buf, len - BK_PEER_CRC_BYTES);
	free(buf);
	struct bk_hello h = { .id = 1 };
	strcpy(h.name, "m0");
	strcpy(h.client_url, "tcp://127.0.0.1:2379");
	if (bk_peer_encode_hello(42, &h, &buf, &len))
		exit(1);
	put_file("peer", 1, buf, len - BK_PEER_CRC_BYTES);
	free(buf);
}

static void store_ops(void)
{
	struct st_op put = { .type = ST_OP_PUT };
	put.u.put = (struct st_put){ .key = B("k"), .value = B("v") };
	struct st_op del = { .type = ST_OP_DELETE_RANGE };
	del.u.delete_range = (struct st_delete_range){ .key = B("a"),
	    .range_end = B("b") };
	const struct st_op *ops[] = { &put, &del };
	for (int i = 0; i < 2; i++) {
		uint8_t *buf;
		size_t len;
		if (st_op_encode(ops[i], &buf, &len))
			exit(1);
		put_file("store_op", i, buf, len);
		free(buf);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds DIR\n");
		return 2;
	}
	dir = argv[1];
	if (mkdir(dir, 0755) && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	requests();
	replies();
	peers();
	store_ops();
	return 0;
}
