/*
 * sim_base.h - the deterministic plumbing of raftsim: a seeded PRNG, the
 * virtual-time event queue and the bounded trace of recent events.
 *
 * Nothing here reads a clock or touches the OS: the same seed gives the
 * same sequence of events, bit for bit, which is what makes a failing seed
 * replayable (TigerBeetle VOPR, FoundationDB simulation). Single-threaded;
 * every function may be called only from the simulator's one thread.
 */
#ifndef SIM_BASE_H
#define SIM_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- PRNG: xoshiro256** seeded through splitmix64 ------------------------ */

struct sim_prng {
	uint64_t s[4];
};

/* Seeds the generator; any seed (including 0) gives a usable state. */
void sim_prng_seed(struct sim_prng *p, uint64_t seed);
/* Next 64 uniformly distributed bits. */
uint64_t sim_prng_next(struct sim_prng *p);
/* Uniform integer in [0, n); n must be > 0. */
uint64_t sim_prng_below(struct sim_prng *p, uint64_t n);
/* Uniform integer in [lo, hi]; lo <= hi. */
uint64_t sim_prng_range(struct sim_prng *p, uint64_t lo, uint64_t hi);
/* True with probability per_million / 1,000,000. */
bool sim_prng_chance(struct sim_prng *p, uint32_t per_million);

/* ---- virtual time and the event queue ------------------------------------ */

/* Virtual time in microseconds since the start of a run. */
typedef uint64_t sim_time_us;

enum sim_ev_kind {
	SIM_EV_TICK = 1,     /* a member's logical clock ticks */
	SIM_EV_DELIVER,      /* a message arrives at its destination */
	SIM_EV_PERSISTED,    /* a member's asynchronous log write completes */
	SIM_EV_RESTART,      /* a crashed member comes back */
	SIM_EV_CLIENT,       /* the workload acts (propose, read, conf, snap) */
	SIM_EV_FAULT,        /* the fault scheduler acts */
	SIM_EV_CRASH,        /* a targeted crash of one member incarnation */
};

struct sim_event {
	sim_time_us at_us;
	uint64_t seq;        /* tie-break: FIFO among equal times */
	uint8_t kind;        /* enum sim_ev_kind */
	uint8_t node;        /* member slot the event concerns */
	uint32_t gen;        /* the member's incarnation when scheduled */
	uint64_t arg;        /* kind-specific: message slot, write id, ... */
};

/* A binary min-heap ordered by (at_us, seq). Grows on demand. */
struct sim_queue {
	struct sim_event *ev;
	size_t n;
	size_t cap;
	uint64_t next_seq;
};

void sim_queue_init(struct sim_queue *q);
void sim_queue_free(struct sim_queue *q);
/* Adds an event; assigns its seq. Aborts on out of memory (simulator). */
void sim_queue_push(struct sim_queue *q, struct sim_event ev);
/* Removes the earliest event into *out; false if the queue is empty. */
bool sim_queue_pop(struct sim_queue *q, struct sim_event *out);

/* ---- trace: bounded ring of recent events, plus a running hash ----------- */

/* How many recent events a failure report shows. */
#define SIM_TRACE_TAIL_MAX 64
/* Longest formatted trace line, bytes including the NUL. */
#define SIM_TRACE_LINE_BYTES_MAX 200

/* Events are kept as fixed records and formatted only when printed, so
 * tracing costs a few stores per event (the ring is hot in every step). */
struct sim_trace_rec {
	uint64_t step;
	sim_time_us at_us;
	uint16_t what;       /* enum sim_tr_kind in raftsim.c */
	uint8_t node;
	uint8_t peer;
	uint64_t a, b, c;
};

struct sim_trace {
	struct sim_trace_rec ring[SIM_TRACE_TAIL_MAX];
	uint64_t count;      /* records ever added */
	uint64_t hash;       /* FNV-1a over every record: determinism check */
	bool verbose;        /* print every record as it is added */
	FILE *out;
	/* formats one record into buf (callback so the kinds stay in raftsim.c) */
	void (*format)(const struct sim_trace_rec *r, char *buf, size_t len);
};

void sim_trace_init(struct sim_trace *t, bool verbose, FILE *out,
		    void (*format)(const struct sim_trace_rec *, char *, size_t));
void sim_trace_add(struct sim_trace *t, const struct sim_trace_rec *r);
/* Prints the last SIM_TRACE_TAIL_MAX records, oldest first. */
void sim_trace_dump_tail(const struct sim_trace *t, FILE *out);

/* Calls abort() after printing msg: the simulator has no recovery from
 * running out of memory and must not hide it. */
void *sim_xmalloc(size_t n);
void *sim_xcalloc(size_t n, size_t size);
void *sim_xrealloc(void *p, size_t n);

#endif /* SIM_BASE_H */
