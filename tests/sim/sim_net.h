/*
 * sim_net.h - the simulated network of raftsim: deep copies of messages in
 * flight, and the link matrix that partitions cut.
 *
 * A message is copied when sent (the core owns a ready's memory only until
 * rl_advance) and freed when delivered or dropped. Whether a message is
 * lost, duplicated or late is decided by raftsim.c from its PRNG; this
 * module only stores. Links are directed, so a one-way partition is a
 * single cleared cell. Single-threaded.
 */
#ifndef SIM_NET_H
#define SIM_NET_H

#include "raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most member slots the simulator runs (initial members + spare ids for
 * membership changes); member id = slot + 1. */
#define SIM_NODES_MAX 16
_Static_assert(SIM_NODES_MAX <= RL_MEMBERS_MAX, "ids must fit a conf state");

struct sim_net {
	struct rl_msg *msgs;     /* slots; a free slot has type 0 */
	size_t cap;
	uint32_t *free_list;
	size_t free_n;
	size_t in_flight;
	/* link_up[from][to]: messages from slot from reach slot to. */
	bool link_up[SIM_NODES_MAX][SIM_NODES_MAX];
};

void sim_net_init(struct sim_net *net);
void sim_net_free(struct sim_net *net);
/* Stores a deep copy of m (entries, their data, snapshot chunk bytes) and
 * returns its slot. */
uint32_t sim_net_put(struct sim_net *net, const struct rl_msg *m);
/* The message in slot; borrowed until sim_net_release(slot). */
const struct rl_msg *sim_net_get(const struct sim_net *net, uint32_t slot);
void sim_net_release(struct sim_net *net, uint32_t slot);
/* Heals every link. */
void sim_net_heal(struct sim_net *net);
/* Number of directed links currently cut. */
uint32_t sim_net_cut_links(const struct sim_net *net);

#endif /* SIM_NET_H */
