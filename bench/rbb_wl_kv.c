/*
 * rbb_wl_kv.c - the key-value workloads of raftbus-bench, after etcd's
 * benchmark: `put`, `range` and `txn-put`. Keys are fixed-size decimal
 * strings of a number in [0, key-space-size), drawn from a seeded function
 * of the request's sequence number (or sequentially), so two runs with
 * the same --seed send the same keys; values are val-size seeded random
 * bytes, the same for every request (as etcd does).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbb.h"

/* ---- shared helpers ----------------------------------------------------- */

uint64_t rbb_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

unsigned rbb_key_digits(uint64_t num)
{
	unsigned d = 1;
	while (num >= 10) {
		num /= 10;
		d++;
	}
	return d;
}

void rbb_key_format(uint8_t *buf, size_t key_size, uint64_t num)
{
	for (size_t i = key_size; i > 0; i--) {
		buf[i - 1] = (uint8_t)('0' + num % 10);
		num /= 10;
	}
}

/* Flags shared by put and txn-put; the state structs start with this. */
struct kv_gen {
	unsigned key_size;
	unsigned val_size;
	uint64_t key_space;
	bool sequential;
	uint8_t *value;          /* val_size seeded bytes, from setup */
};

#define KV_GEN_FLAGS(type) \
	{ "--key-size", RBB_FLAG_UNSIGNED, offsetof(type, gen.key_size), 1, \
	  RBB_KEY_BYTES_MAX, "key size in bytes (default 8)", "B" }, \
	{ "--val-size", RBB_FLAG_UNSIGNED, offsetof(type, gen.val_size), 0, \
	  RBB_VALUE_BYTES_MAX, "value size in bytes (default 8)", "B" }, \
	{ "--key-space-size", RBB_FLAG_U64, offsetof(type, gen.key_space), 1, \
	  RBB_KEY_SPACE_MAX, "number of distinct keys (default 1)" }

static void kv_gen_defaults(struct kv_gen *g)
{
	g->key_size = 8;
	g->val_size = 8;
	g->key_space = 1;
}

static int kv_gen_validate(const struct kv_gen *g, const char *wl)
{
	unsigned need = rbb_key_digits(g->key_space - 1);
	if (need > g->key_size) {
		fprintf(stderr, "raftbus-bench %s: --key-size %u cannot hold "
		    "%llu distinct keys (needs %u bytes)\n", wl, g->key_size,
		    (unsigned long long)g->key_space, need);
		return -1;
	}
	return 0;
}

static int kv_gen_setup(struct kv_gen *g, uint64_t seed)
{
	g->value = malloc(g->val_size ? g->val_size : 1);
	if (g->value == NULL) {
		fprintf(stderr, "raftbus-bench: out of memory\n");
		return -1;
	}
	uint64_t x = rbb_mix64(seed);
	for (unsigned i = 0; i < g->val_size; i++) {
		if (i % 8 == 0)
			x = rbb_mix64(x);
		g->value[i] = (uint8_t)(x >> (8 * (i % 8)));
	}
	return 0;
}

static uint64_t kv_gen_key_num(const struct kv_gen *g, uint64_t seed,
    uint64_t n)
{
	if (g->sequential)
		return n % g->key_space;
	return rbb_mix64(rbb_mix64(seed) + n) % g->key_space;
}

/* ---- put ---------------------------------------------------------------- */

struct put_state {
	struct kv_gen gen;
};

static const struct rbb_flag put_flags[] = {
	KV_GEN_FLAGS(struct put_state),
	{ "--sequential-keys", RBB_FLAG_BOOL,
	  offsetof(struct put_state, gen.sequential), 0, 1,
	  "keys 0, 1, 2, ... instead of random ones" },
	{ NULL, 0, 0, 0, 0, NULL },
};

static void put_defaults(void *state)
{
	kv_gen_defaults(&((struct put_state *)state)->gen);
}

static int put_validate(struct rbb_run *run)
{
	return kv_gen_validate(&((struct put_state *)run->wl_state)->gen, "put");
}

static int put_next(struct rbb_run *run, const struct rbb_phase *ph,
    const struct rbb_req *req, struct rb_op *op)
{
	(void)ph;
	const struct kv_gen *g = &((struct put_state *)run->wl_state)->gen;
	uint8_t *key = req->scratch;
	rbb_key_format(key, g->key_size, kv_gen_key_num(g, run->seed, req->seq));
	op->type = RB_OP_PUT;
	op->u.put.key = key;
	op->u.put.key_len = g->key_size;
	op->u.put.value = g->value;
	op->u.put.value_len = g->val_size;
	return 0;
}

static int check_type(const struct rb_resp *resp, uint8_t type)
{
	return resp->body.type == type ? 0 : RB_ERR_PROTOCOL;
}

static int put_check(struct rbb_run *run, const struct rbb_phase *ph,
    const struct rbb_req *req, const struct rb_resp *resp)
{
	(void)run; (void)ph; (void)req;
	return check_type(resp, RB_OP_PUT);
}

static int put_setup(struct rbb_run *run, struct rbb_phase *measured)
{
	struct put_state *p = run->wl_state;
	if (kv_gen_setup(&p->gen, run->seed))
		return -1;
	*measured = (struct rbb_phase){ .name = "put",
	    .route = RBB_ROUTE_LEADER, .scratch_bytes = p->gen.key_size,
	    .next = put_next, .check = put_check };
	return 0;
}

static void put_teardown(struct rbb_run *run)
{
	free(((struct put_state *)run->wl_state)->gen.value);
}

const struct rbb_workload rbb_wl_put = {
	.name = "put",
	.args = "",
	.summary = "put keys to the leader",
	.flags = put_flags,
	.state_bytes = sizeof(struct put_state),
	.total_default = 10000,
	.defaults = put_defaults,
	.validate = put_validate,
	.setup = put_setup,
	.teardown = put_teardown,
};

/* ---- range -------------------------------------------------------------- */

struct range_state {
	const char *key;
	const char *end;         /* NULL: the single key */
	const char *consistency; /* "l" or "s" */
};

static const struct rbb_flag range_flags[] = {
	{ "--consistency", RBB_FLAG_STR,
	  offsetof(struct range_state, consistency), 0, 0,
	  "l (linearizable, default) or s (serializable)", "l|s" },
	{ NULL, 0, 0, 0, 0, NULL },
};

static void range_defaults(void *state)
{
	((struct range_state *)state)->consistency = "l";
}

static int range_arg(struct rbb_run *run, unsigned index, const char *arg)
{
	struct range_state *r = run->wl_state;
	if (index == 0 && arg[0] == 0) {
		fprintf(stderr, "raftbus-bench range: KEY must not be empty\n");
		return -1;
	}
	if (index == 0)
		r->key = arg;
	else if (index == 1)
		r->end = arg;
	else {
		fprintf(stderr, "raftbus-bench range: unexpected argument "
		    "'%s' (usage: range KEY [END])\n", arg);
		return -1;
	}
	return 0;
}

static int range_validate(struct rbb_run *run)
{
	struct range_state *r = run->wl_state;
	if (r->key == NULL) {
		fprintf(stderr, "raftbus-bench range: KEY is required\n");
		return -1;
	}
	if (strcmp(r->consistency, "l") != 0 &&
	    strcmp(r->consistency, "s") != 0) {
		fprintf(stderr, "raftbus-bench range: --consistency must be "
		    "l or s, not '%s'\n", r->consistency);
		return -1;
	}
	if (strlen(r->key) > RBB_KEY_BYTES_MAX ||
	    (r->end && strlen(r->end) > RBB_KEY_BYTES_MAX)) {
		fprintf(stderr, "raftbus-bench range: KEY and END are at most "
		    "%u bytes\n", RBB_KEY_BYTES_MAX);
		return -1;
	}
	return 0;
}

static int range_next(struct rbb_run *run, const struct rbb_phase *ph,
    const struct rbb_req *req, struct rb_op *op)
{
	(void)ph; (void)req;
	const struct range_state *r = run->wl_state;
	op->type = RB_OP_RANGE;
	op->u.range.key = (const uint8_t *)r->key;
	op->u.range.key_len = strlen(r->key);
	if (r->end) {
		op->u.range.range_end = (const uint8_t *)r->end;
		op->u.range.range_end_len = strlen(r->end);
	}
	op->u.range.serializable = r->consistency[0] == 's';
	return 0;
}

static int range_check(struct rbb_run *run, const struct rbb_phase *ph,
    const struct rbb_req *req, const struct rb_resp *resp)
{
	(void)run; (void)ph; (void)req;
	return check_type(resp, RB_OP_RANGE);
}

static int range_setup(struct rbb_run *run, struct rbb_phase *measured)
{
	(void)run;
	/* followers serve both kinds: linearizable ones via ReadIndex */
	*measured = (struct rbb_phase){ .name = "range",
	    .route = RBB_ROUTE_ANY, .next = range_next, .check = range_check };
	return 0;
}

const struct rbb_workload rbb_wl_range = {
	.name = "range",
	.args = "KEY [END]",
	.summary = "get KEY (or [KEY, END)) from every endpoint in turn",
	.flags = range_flags,
	.state_bytes = sizeof(struct range_state),
	.total_default = 10000,
	.defaults = range_defaults,
	.parse_arg = range_arg,
	.validate = range_validate,
	.setup = range_setup,
};

/* ---- txn-put ------------------------------------------------------------ */

struct txn_state {
	struct kv_gen gen;
	unsigned txn_ops;
};

static const struct rbb_flag txn_flags[] = {
	KV_GEN_FLAGS(struct txn_state),
	{ "--txn-ops", RBB_FLAG_UNSIGNED, offsetof(struct txn_state, txn_ops),
	  1, RBB_TXN_OPS_MAX, "puts per txn (default 1)" },
	{ NULL, 0, 0, 0, 0, NULL },
};

static void txn_defaults(void *state)
{
	struct txn_state *t = state;
	kv_gen_defaults(&t->gen);
	t->gen.sequential = true;    /* distinct keys within one txn */
	t->txn_ops = 1;
}

static int txn_validate(struct rbb_run *run)
{
	struct txn_state *t = run->wl_state;
	if (kv_gen_validate(&t->gen, "txn-put"))
		return -1;
	if (t->gen.key_space < t->txn_ops) {
		fprintf(stderr, "raftbus-bench txn-put: --key-space-size %llu "
		    "is smaller than --txn-ops %u: a txn may not put one key "
		    "twice\n", (unsigned long long)t->gen.key_space, t->txn_ops);
		return -1;
	}
	return 0;
}

/* The scratch holds txn_ops ops, then txn_ops keys. */
static int txn_next(struct rbb_run *run, const struct rbb_phase *ph,
    const struct rbb_req *req, struct rb_op *op)
{
	(void)ph;
	const struct txn_state *t = run->wl_state;
	struct rb_op *ops = req->scratch;
	uint8_t *keys = (uint8_t *)(ops + t->txn_ops);
	for (unsigned j = 0; j < t->txn_ops; j++) {
		uint8_t *key = keys + (size_t)j * t->gen.key_size;
		rbb_key_format(key, t->gen.key_size,
		    (req->seq * t->txn_ops + j) % t->gen.key_space);
		memset(&ops[j], 0, sizeof(ops[j]));
		ops[j].type = RB_OP_PUT;
		ops[j].u.put.key = key;
		ops[j].u.put.key_len = t->gen.key_size;
		ops[j].u.put.value = t->gen.value;
		ops[j].u.put.value_len = t->gen.val_size;
	}
	op->type = RB_OP_TXN;
	op->u.txn.success = ops;
	op->u.txn.success_n = t->txn_ops;
	return 0;
}

static int txn_check(struct rbb_run *run, const struct rbb_phase *ph,
    const struct rbb_req *req, const struct rb_resp *resp)
{
	(void)ph; (void)req;
	const struct txn_state *t = run->wl_state;
	if (resp->body.type != RB_OP_TXN || !resp->body.u.txn.succeeded ||
	    resp->body.u.txn.responses_n != t->txn_ops)
		return RB_ERR_PROTOCOL;
	return 0;
}

static int txn_setup(struct rbb_run *run, struct rbb_phase *measured)
{
	struct txn_state *t = run->wl_state;
	if (kv_gen_setup(&t->gen, run->seed))
		return -1;
	*measured = (struct rbb_phase){ .name = "txn-put",
	    .route = RBB_ROUTE_LEADER,
	    .scratch_bytes = t->txn_ops * (sizeof(struct rb_op) +
	        t->gen.key_size),
	    .next = txn_next, .check = txn_check };
	return 0;
}

static void txn_teardown(struct rbb_run *run)
{
	free(((struct txn_state *)run->wl_state)->gen.value);
}

const struct rbb_workload rbb_wl_txn_put = {
	.name = "txn-put",
	.args = "",
	.summary = "txns of --txn-ops puts each, keys in sequence",
	.flags = txn_flags,
	.state_bytes = sizeof(struct txn_state),
	.total_default = 10000,
	.defaults = txn_defaults,
	.validate = txn_validate,
	.setup = txn_setup,
	.teardown = txn_teardown,
};
