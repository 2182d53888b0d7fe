/*
 * it_linear.c - the key-value operations are linearizable under faults
 * (../shared/RELIABILITY.md): a history checked by a Wing-Gong search.
 *
 * 3 members; LN_CLIENTS threads, each with its own libraftbus client, run
 * reads (linearizable, the default), puts and compare-and-swap txns on
 * LN_KEYS keys; half of each thread's reads go through a second client
 * that knows only one member (thread i: member i mod 3), so followers
 * answer reads too. All this while the leader is killed -9 and restarted, then paused
 * (SIGSTOP) past the election timeout and resumed, then a follower is
 * killed -9 and restarted. Every operation is recorded with its invoke and
 * completion times and its outcome: ok, or unknown (a write or txn whose
 * reply did not come may or may not have been applied: it may take effect
 * at any point after its invoke, or never). Failed reads tell nothing and
 * are dropped.
 *
 * The check (Wing & Gong's search with Lowe's memoisation, as porcupine
 * does): is there a total order of the operations of each key, consistent
 * with real time (an operation that completed before another was invoked
 * comes first), in which a register explains every result? Keys are
 * independent registers, so each key is checked alone (linearizability is
 * local). Written values are unique, so a read names the write it saw.
 *
 * The checker is shown to bite: a hand-made stale read is refused, and so
 * is the recorded history with one read made stale (it returns a value
 * overwritten by a write that completed before the read began).
 *
 * Usage: it_linear [soak SECONDS] (RAFTBUS_BIN set). One round of the
 * above; with soak, rounds on fresh keys (lin/ROUND/K) one after another
 * on the same cluster until SECONDS have passed (the long suite runs 600).
 * Loops and waits are bounded.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "it_util.h"
#include "raftbus.h"

#define LN_CLIENTS 5
#define LN_KEYS 3
#define LN_OPS_MAX 1000          /* per client */
#define LN_PAUSE_MS 10           /* between a client's operations, + 0..4 */
#define LN_RUN_MS 11000          /* the clients stop after this */
#define LN_CMD_TIMEOUT_MS 2000
#define LN_STATES_MAX 400000u    /* memoised search states per key */

enum ln_kind { LN_READ, LN_WRITE, LN_CAS };

/* One operation of the history. Values: 0 = the key is absent. */
struct ln_op {
	uint8_t kind;
	uint8_t key;
	bool known;              /* completed with a known result */
	int64_t arg;             /* write: value; cas: the new value */
	int64_t expect;          /* cas: the value compared */
	int64_t res;             /* read: value; cas: 1 = swapped */
	int64_t call_us, ret_us; /* ret_us = INT64_MAX when unknown */
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ==== the checker ======================================================== */

/* Applies op to register state s: false when op's result contradicts s. */
static bool ln_step(const struct ln_op *op, int64_t s, int64_t *out)
{
	switch (op->kind) {
	case LN_READ:
		*out = s;
		return op->res == s;
	case LN_WRITE:
		*out = op->arg;
		return true;
	default: {
		/* etcd: a value compare on an absent key fails */
		bool swap = s != 0 && s == op->expect;
		*out = swap ? op->arg : s;
		return !op->known || op->res == (int64_t)swap;
	}
	}
}

/* A call or return event in the doubly linked list the search lifts
 * operations out of (dancing links). */
struct ln_ev {
	int op;                  /* index into the key's ops */
	bool call;
	int64_t t;
	struct ln_ev *match;     /* call -> its return */
	struct ln_ev *prev, *next;
};

static int ev_cmp(const void *a, const void *b)
{
	const struct ln_ev *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return (int)y->call - (int)x->call;   /* calls first: concurrent */
}

/* Memo of (linearized set, state) already explored: open addressing,
 * doubled when half full, at most LN_STATES_MAX states. */
struct ln_memo {
	uint64_t *sets;          /* slot i: words [i * w, (i + 1) * w) */
	int64_t *state;
	bool *used;
	size_t cap, n, w;
};

static void memo_init(struct ln_memo *m, size_t cap, size_t w)
{
	*m = (struct ln_memo){ .cap = cap, .w = w ? w : 1 };
	m->sets = calloc(cap * m->w, sizeof(uint64_t));
	m->state = calloc(cap, sizeof(int64_t));
	m->used = calloc(cap, sizeof(bool));
	IT_CHECK(m->sets && m->state && m->used, "out of memory");
}

static void memo_free(struct ln_memo *m)
{
	free(m->sets);
	free(m->state);
	free(m->used);
}

static bool memo_add(struct ln_memo *m, const uint64_t *set, int64_t s);

static uint64_t memo_hash(const uint64_t *set, size_t w, int64_t s)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)s;
	for (size_t i = 0; i < w; i++)
		h = (h ^ set[i]) * 1099511628211ull;
	return h ^ (h >> 29);
}

/* Adds (set, s); false when it was there already. */
static bool memo_add(struct ln_memo *m, const uint64_t *set, int64_t s)
{
	if (m->n + 1 > m->cap / 2) {
		IT_CHECK(m->n < LN_STATES_MAX, "linearizability search: more "
		    "than %u states", LN_STATES_MAX);
		struct ln_memo big;
		memo_init(&big, 2 * m->cap, m->w);
		for (size_t i = 0; i < m->cap; i++)
			if (m->used[i])
				memo_add(&big, &m->sets[i * m->w], m->state[i]);
		memo_free(m);
		*m = big;
	}
	size_t i = memo_hash(set, m->w, s) & (m->cap - 1);
	for (;; i = (i + 1) & (m->cap - 1)) {
		if (!m->used[i])
			break;
		if (m->state[i] == s && !memcmp(&m->sets[i * m->w], set,
		    m->w * sizeof(uint64_t)))
			return false;
	}
	m->used[i] = true;
	m->state[i] = s;
	memcpy(&m->sets[i * m->w], set, m->w * sizeof(uint64_t));
	m->n++;
	return true;
}

static void lift(struct ln_ev *e)
{
	e->prev->next = e->next;
	if (e->next)
		e->next->prev = e->prev;
	struct ln_ev *r = e->match;
	r->prev->next = r->next;
	if (r->next)
		r->next->prev = r->prev;
}

static void unlift(struct ln_ev *e)
{
	struct ln_ev *r = e->match;
	r->prev->next = r;
	if (r->next)
		r->next->prev = r;
	e->prev->next = e;
	if (e->next)
		e->next->prev = e;
}

/* Is the history ops[0..n) of one register (initially absent)
 * linearizable? *states_out: search states explored. */
static bool ln_check(const struct ln_op *ops, size_t n, size_t *states_out)
{
	struct ln_ev *ev = calloc(2 * n + 1, sizeof(*ev));
	IT_CHECK(ev, "out of memory");
	struct ln_ev *head = &ev[2 * n];   /* sentinel */
	for (size_t i = 0; i < n; i++) {
		ev[2 * i] = (struct ln_ev){ .op = (int)i, .call = true,
		    .t = ops[i].call_us };
		ev[2 * i + 1] = (struct ln_ev){ .op = (int)i, .call = false,
		    .t = ops[i].ret_us };
	}
	qsort(ev, 2 * n, sizeof(*ev), ev_cmp);
	struct ln_ev **ret_of = calloc(n ? n : 1, sizeof(*ret_of));
	IT_CHECK(ret_of, "out of memory");
	for (size_t i = 0; i < 2 * n; i++)
		if (!ev[i].call)
			ret_of[ev[i].op] = &ev[i];
	struct ln_ev *prev = head;
	for (size_t i = 0; i < 2 * n; i++) {
		if (ev[i].call)
			ev[i].match = ret_of[ev[i].op];
		ev[i].prev = prev;
		prev->next = &ev[i];
		prev = &ev[i];
	}
	prev->next = NULL;
	struct ln_memo m;
	memo_init(&m, 4096, (n + 63) / 64);
	uint64_t *set = calloc(m.w, sizeof(uint64_t));
	struct { struct ln_ev *e; int64_t state; } *stack =
	    calloc(n ? n : 1, sizeof(*stack));
	IT_CHECK(set && stack, "out of memory");
	size_t depth = 0;
	int64_t state = 0;
	bool ok = true;
	struct ln_ev *e = head->next;
	while (head->next) {
		if (e->call) {
			int64_t next;
			const struct ln_op *op = &ops[e->op];
			if (ln_step(op, state, &next)) {
				set[e->op / 64] |= 1ull << (e->op % 64);
				if (memo_add(&m, set, next)) {
					stack[depth].e = e;
					stack[depth++].state = state;
					state = next;
					lift(e);
					e = head->next;
					continue;
				}
				set[e->op / 64] &= ~(1ull << (e->op % 64));
			}
			e = e->next;
		} else {
			/* an operation returned before any order explained it:
			 * take back the last choice */
			if (depth == 0) {
				ok = false;
				break;
			}
			struct ln_ev *top = stack[--depth].e;
			state = stack[depth].state;
			set[top->op / 64] &= ~(1ull << (top->op % 64));
			unlift(top);
			e = top->next;
		}
	}
	*states_out = m.n;
	free(stack);
	free(set);
	memo_free(&m);
	free(ret_of);
	free(ev);
	return ok;
}

/* The checker on hand-made histories: it accepts what it must and refuses
 * a stale read. */
static void ln_selftest(void)
{
	const int64_t U = INT64_MAX;
	struct ln_op h[] = {
		{ .kind = LN_WRITE, .known = true, .arg = 1, .call_us = 0, .ret_us = 10 },
		{ .kind = LN_WRITE, .known = true, .arg = 2, .call_us = 20, .ret_us = 30 },
		{ .kind = LN_READ, .known = true, .res = 2, .call_us = 40, .ret_us = 50 },
		/* concurrent with the write of 3: either value */
		{ .kind = LN_WRITE, .known = false, .arg = 3, .call_us = 60, .ret_us = U },
		{ .kind = LN_READ, .known = true, .res = 2, .call_us = 70, .ret_us = 80 },
		{ .kind = LN_READ, .known = true, .res = 3, .call_us = 90, .ret_us = 95 },
		{ .kind = LN_CAS, .known = true, .expect = 3, .arg = 4, .res = 1,
		  .call_us = 100, .ret_us = 110 },
		{ .kind = LN_CAS, .known = true, .expect = 3, .arg = 5, .res = 0,
		  .call_us = 120, .ret_us = 130 },
		{ .kind = LN_READ, .known = true, .res = 4, .call_us = 140, .ret_us = 150 },
	};
	size_t n = sizeof(h) / sizeof(h[0]), states;
	IT_CHECK(ln_check(h, n, &states), "self-test: a linearizable history "
	    "refused");
	h[2].res = 1;   /* the write of 2 completed before the read began */
	IT_CHECK(!ln_check(h, n, &states), "self-test: a stale read accepted");
	h[2].res = 2;
	h[8].res = 3;   /* after the swap 3 -> 4 completed: goes back */
	IT_CHECK(!ln_check(h, n, &states), "self-test: a read going back "
	    "accepted");
	h[8].res = 4;
	h[7].res = 1;   /* a second swap from 3 after the first one */
	IT_CHECK(!ln_check(h, n, &states), "self-test: a double swap accepted");
}

/* ==== the run ============================================================ */

struct ln_client {
	struct it_cluster *c;
	int id;
	int64_t end_ms;
	atomic_bool *stop;
	struct ln_op ops[LN_OPS_MAX];
	size_t n;
	int64_t last_read[LN_KEYS];
	int unknown;
};

/* The round under way: its keys are its own, so rounds are separate
 * histories on one cluster. */
static int ln_round;

static void key_name(char *out, size_t len, int k)
{
	snprintf(out, len, "lin/%d/%d", ln_round, k);
}

static int64_t value_of(const struct rb_resp *r)
{
	if (r->body.u.range.kvs_n == 0)
		return 0;
	const struct rb_kv *kv = &r->body.u.range.kvs[0];
	char buf[32];
	size_t len = kv->value_len < sizeof(buf) - 1 ? kv->value_len :
	    sizeof(buf) - 1;
	memcpy(buf, kv->value, len);
	buf[len] = 0;
	return strtoll(buf, NULL, 10);
}

/* Runs op (kind, key and values set) and records its outcome. */
static void ln_run_op(rb_client *cl, struct ln_client *lc, struct ln_op *op)
{
	char key[32], val[32], exp[32];
	key_name(key, sizeof(key), op->key);
	struct rb_resp r = { 0 };
	int rc;
	op->call_us = now_us();
	if (op->kind == LN_READ) {
		struct rb_range q = { .key = (const uint8_t *)key,
		    .key_len = strlen(key) };
		rc = rb_range(cl, &q, &r);
		op->res = rc == 0 ? value_of(&r) : 0;
	} else if (op->kind == LN_WRITE) {
		snprintf(val, sizeof(val), "%" PRId64, op->arg);
		struct rb_put p = { .key = (const uint8_t *)key,
		    .key_len = strlen(key), .value = (const uint8_t *)val,
		    .value_len = strlen(val) };
		rc = rb_put(cl, &p, &r);
	} else {
		snprintf(val, sizeof(val), "%" PRId64, op->arg);
		snprintf(exp, sizeof(exp), "%" PRId64, op->expect);
		struct rb_compare cmp = { .target = RB_CMP_VALUE,
		    .result = RB_CMP_EQUAL, .key = (const uint8_t *)key,
		    .key_len = strlen(key), .value = (const uint8_t *)exp,
		    .value_len = strlen(exp) };
		struct rb_op put = { .type = RB_OP_PUT };
		put.u.put = (struct rb_put){ .key = (const uint8_t *)key,
		    .key_len = strlen(key), .value = (const uint8_t *)val,
		    .value_len = strlen(val) };
		struct rb_txn tx = { .compares = &cmp, .compares_n = 1,
		    .success = &put, .success_n = 1 };
		rc = rb_txn(cl, &tx, &r);
		op->res = rc == 0 && r.body.u.txn.succeeded;
	}
	op->ret_us = now_us();
	op->known = rc == 0;
	if (!op->known)
		op->ret_us = INT64_MAX;
	if (op->kind == LN_READ && rc == 0)
		lc->last_read[op->key] = op->res;
	rb_resp_free(&r);
}

static void *ln_client_main(void *arg)
{
	struct ln_client *lc = arg;
	const char *eps[IT_MEMBERS_MAX];
	for (int i = 0; i < lc->c->n; i++)
		eps[i] = lc->c->m[i].client_url;
	struct rb_config cfg = { .endpoints = eps,
	    .endpoints_n = (size_t)lc->c->n,
	    .command_timeout_ms = LN_CMD_TIMEOUT_MS };
	rb_client *cl = NULL, *pin = NULL;
	IT_CHECK(rb_client_open(&cfg, &cl) == 0, "rb_client_open");
	cfg.endpoints = &eps[lc->id % lc->c->n];
	cfg.endpoints_n = 1;
	IT_CHECK(rb_client_open(&cfg, &pin) == 0, "rb_client_open");
	uint32_t seed = 7919u * (uint32_t)(lc->id + 1);
	int64_t seq = 0;
	while (lc->n < LN_OPS_MAX && !atomic_load(lc->stop) &&
	    it_now_ms() < lc->end_ms) {
		seed = seed * 1103515245u + 12345u;
		uint32_t x = seed >> 8;
		struct ln_op op = { .key = (uint8_t)(x % LN_KEYS) };
		uint32_t pick = (x / LN_KEYS) % 10;
		/* unique values: client id in the high digits */
		int64_t v = (int64_t)(lc->id + 1) * 1000000 + ++seq;
		if (pick < 4)
			op.kind = LN_READ;
		else if (pick < 8 || lc->last_read[op.key] == 0)
			op = (struct ln_op){ .kind = LN_WRITE, .key = op.key,
			    .arg = v };
		else
			op = (struct ln_op){ .kind = LN_CAS, .key = op.key,
			    .arg = v, .expect = lc->last_read[op.key] };
		ln_run_op(op.kind == LN_READ && (x >> 12) % 2 ? pin : cl, lc,
		    &op);
		if (op.kind == LN_READ && !op.known)
			continue;   /* a failed read tells nothing */
		lc->unknown += !op.known;
		lc->ops[lc->n++] = op;
		it_sleep_ms(LN_PAUSE_MS + (int)(x % 5));
	}
	rb_client_close(pin);
	rb_client_close(cl);
	return NULL;
}

/* The faults, in order, while the clients run. */
static void ln_faults(struct it_cluster *c)
{
	it_sleep_ms(1500);
	int leader = it_leader(c, "a leader");
	fprintf(stderr, "linear: crashing the leader m%d\n", leader);
	it_crash_restart(c, leader, 1500);
	it_sleep_ms(1500);
	leader = it_leader(c, "a leader");
	kill(c->m[leader].pid, SIGSTOP);
	fprintf(stderr, "linear: paused the leader m%d\n", leader);
	it_sleep_ms(1500);   /* three election timeouts */
	kill(c->m[leader].pid, SIGCONT);
	it_sleep_ms(1500);
	leader = it_leader(c, "a leader");
	int f = (leader + 1) % c->n;
	fprintf(stderr, "linear: crashing the follower m%d\n", f);
	it_crash_restart(c, f, 1000);
}

/* Makes one read of the history stale: it returns a value that a write
 * completed before the read began had already overwritten, with that
 * write itself completed after the overwritten one. Returns false when
 * the history has no such triple. */
static bool ln_make_stale(struct ln_op *ops, size_t n)
{
	for (size_t r = 0; r < n; r++) {
		if (ops[r].kind != LN_READ)
			continue;
		for (size_t w2 = 0; w2 < n; w2++) {
			if (ops[w2].kind != LN_WRITE || !ops[w2].known ||
			    ops[w2].ret_us >= ops[r].call_us)
				continue;
			for (size_t w1 = 0; w1 < n; w1++)
				if (ops[w1].kind == LN_WRITE && ops[w1].known &&
				    ops[w1].ret_us < ops[w2].call_us &&
				    ops[w1].arg != ops[r].res) {
					ops[r].res = ops[w1].arg;
					return true;
				}
		}
	}
	return false;
}

/* One round: the clients under the faults, then the check of each key.
 * Returns the operations recorded. */
static int ln_round_run(struct it_cluster *c)
{
	static struct ln_client lc[LN_CLIENTS];
	atomic_bool stop = false;
	pthread_t th[LN_CLIENTS];
	int64_t end = it_now_ms() + LN_RUN_MS;
	for (int i = 0; i < LN_CLIENTS; i++) {
		lc[i] = (struct ln_client){ .c = c, .id = i, .end_ms = end,
		    .stop = &stop };
		IT_CHECK(pthread_create(&th[i], NULL, ln_client_main, &lc[i]) == 0,
		    "thread");
	}
	ln_faults(c);
	it_sleep_ms(1000);
	atomic_store(&stop, true);
	for (int i = 0; i < LN_CLIENTS; i++)
		pthread_join(th[i], NULL);
	IT_CHECK(it_wait_leader(c, 10000) >= 0, "a leader at the end");
	static struct ln_op key_ops[LN_CLIENTS * LN_OPS_MAX];
	int total = 0, unknown = 0, mutated = 0;
	for (int k = 0; k < LN_KEYS; k++) {
		size_t n = 0;
		for (int i = 0; i < LN_CLIENTS; i++) {
			if (k == 0)
				unknown += lc[i].unknown;
			for (size_t j = 0; j < lc[i].n; j++)
				if (lc[i].ops[j].key == k)
					key_ops[n++] = lc[i].ops[j];
		}
		total += (int)n;
		size_t states;
		bool ok = ln_check(key_ops, n, &states);
		fprintf(stderr, "linear: key lin/%d/%d: %zu operations, %zu "
		    "search states: %s\n", ln_round, k, n, states, ok ?
		    "linearizable" : "NOT linearizable");
		IT_CHECK(ok, "the history of key lin/%d/%d is not linearizable",
		    ln_round, k);
		if (ln_make_stale(key_ops, n)) {
			IT_CHECK(!ln_check(key_ops, n, &states), "key lin/%d/%d: "
			    "a read made stale was accepted", ln_round, k);
			mutated++;
		}
	}
	IT_CHECK(total >= 300, "only %d operations recorded", total);
	IT_CHECK(mutated > 0, "no history had a read to make stale");
	fprintf(stderr, "linear: round %d: %d operations (%d of unknown "
	    "outcome) by %d clients under kill -9 of the leader, a paused "
	    "leader and kill -9 of a follower: linearizable; %d histories with "
	    "a stale read refused\n", ln_round, total, unknown, LN_CLIENTS,
	    mutated);
	return total;
}

/* One round, or rounds until soak_s seconds have passed. */
static void test_linear(int64_t soak_s)
{
	ln_selftest();
	struct it_cluster c;
	it_cluster_init(&c, 3);
	it_start_all(&c);
	IT_CHECK(it_wait_leader(&c, 10000) >= 0, "a leader");
	int64_t end = it_now_ms() + soak_s * 1000;
	long long total = 0;
	do {
		total += ln_round_run(&c);
		ln_round++;
	} while (it_now_ms() < end);
	if (soak_s)
		fprintf(stderr, "linear: soak of %lld s: %d rounds, %lld "
		    "operations, every history linearizable\n",
		    (long long)soak_s, ln_round, total);
	it_cluster_done(&c);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IONBF, 0);
	int64_t soak_s = 0;
	if (argc == 3 && !strcmp(argv[1], "soak"))
		soak_s = strtoll(argv[2], NULL, 10);
	if (!(argc == 1 || (argc == 3 && soak_s > 0))) {
		fprintf(stderr, "usage: it_linear [soak SECONDS] (RAFTBUS_BIN "
		    "set)\n");
		return 2;
	}
	test_linear(soak_s);
	it_ok("linear");
	return 0;
}
