/*
 * sim_base.c - PRNG, event heap and trace ring for raftsim (see sim_base.h).
 */
#include "sim_base.h"

#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void sim_prng_seed(struct sim_prng *p, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		p->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t sim_prng_next(struct sim_prng *p)
{
	uint64_t *s = p->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t sim_prng_below(struct sim_prng *p, uint64_t n)
{
	/* Lemire's multiply-shift; the tiny bias is irrelevant for a fault mix
	 * and the result stays a pure function of the seed. */
	return (uint64_t)(((unsigned __int128)sim_prng_next(p) * n) >> 64);
}

uint64_t sim_prng_range(struct sim_prng *p, uint64_t lo, uint64_t hi)
{
	return lo + sim_prng_below(p, hi - lo + 1);
}

bool sim_prng_chance(struct sim_prng *p, uint32_t per_million)
{
	return sim_prng_below(p, 1000000) < per_million;
}

void *sim_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "raftsim: out of memory\n");
		abort();
	}
	return p;
}

void *sim_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) {
		fprintf(stderr, "raftsim: out of memory\n");
		abort();
	}
	return p;
}

void *sim_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		fprintf(stderr, "raftsim: out of memory\n");
		abort();
	}
	return q;
}

void sim_queue_init(struct sim_queue *q)
{
	memset(q, 0, sizeof(*q));
}

void sim_queue_free(struct sim_queue *q)
{
	free(q->ev);
	memset(q, 0, sizeof(*q));
}

static bool ev_before(const struct sim_event *a, const struct sim_event *b)
{
	if (a->at_us != b->at_us)
		return a->at_us < b->at_us;
	return a->seq < b->seq;
}

void sim_queue_push(struct sim_queue *q, struct sim_event ev)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 256;
		q->ev = sim_xrealloc(q->ev, q->cap * sizeof(*q->ev));
	}
	ev.seq = q->next_seq++;
	size_t i = q->n++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!ev_before(&ev, &q->ev[parent]))
			break;
		q->ev[i] = q->ev[parent];
		i = parent;
	}
	q->ev[i] = ev;
}

bool sim_queue_pop(struct sim_queue *q, struct sim_event *out)
{
	if (q->n == 0)
		return false;
	*out = q->ev[0];
	struct sim_event last = q->ev[--q->n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct sim_event *best = &last;
		if (l < q->n && ev_before(&q->ev[l], best)) {
			m = l;
			best = &q->ev[l];
		}
		if (r < q->n && ev_before(&q->ev[r], best))
			m = r;
		if (m == i)
			break;
		q->ev[i] = q->ev[m];
		i = m;
	}
	if (q->n > 0)
		q->ev[i] = last;
	return true;
}

void sim_trace_init(struct sim_trace *t, bool verbose, FILE *out,
		    void (*format)(const struct sim_trace_rec *, char *, size_t))
{
	memset(t, 0, sizeof(*t));
	t->hash = 0xcbf29ce484222325ull;
	t->verbose = verbose;
	t->out = out;
	t->format = format;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 0x100000001b3ull;
	}
	return h;
}

void sim_trace_add(struct sim_trace *t, const struct sim_trace_rec *r)
{
	t->ring[t->count % SIM_TRACE_TAIL_MAX] = *r;
	t->count++;
	uint64_t h = t->hash;
	h = fnv_u64(h, r->at_us);
	h = fnv_u64(h, ((uint64_t)r->what << 16) | ((uint64_t)r->node << 8) |
			       r->peer);
	h = fnv_u64(h, r->a);
	h = fnv_u64(h, r->b);
	h = fnv_u64(h, r->c);
	t->hash = h;
	if (t->verbose) {
		char line[SIM_TRACE_LINE_BYTES_MAX];
		t->format(r, line, sizeof(line));
		fprintf(t->out, "%s\n", line);
	}
}

void sim_trace_dump_tail(const struct sim_trace *t, FILE *out)
{
	uint64_t n = t->count < SIM_TRACE_TAIL_MAX ? t->count : SIM_TRACE_TAIL_MAX;
	char line[SIM_TRACE_LINE_BYTES_MAX];
	for (uint64_t i = t->count - n; i < t->count; i++) {
		t->format(&t->ring[i % SIM_TRACE_TAIL_MAX], line, sizeof(line));
		fprintf(out, "  %s\n", line);
	}
}
