/*
 * sim_net.c - message store and link matrix of raftsim (see sim_net.h).
 */
#include "sim_net.h"

#include "sim_base.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void sim_net_init(struct sim_net *net)
{
	memset(net, 0, sizeof(*net));
	sim_net_heal(net);
}

static void free_copy(struct rl_msg *m)
{
	for (uint32_t i = 0; i < m->entries_n; i++)
		free(m->entries[i].data);
	free(m->entries);
	free((void *)m->snap_data);
	memset(m, 0, sizeof(*m));
}

void sim_net_free(struct sim_net *net)
{
	for (size_t i = 0; i < net->cap; i++)
		if (net->msgs[i].type != 0)
			free_copy(&net->msgs[i]);
	free(net->msgs);
	free(net->free_list);
	memset(net, 0, sizeof(*net));
}

static uint32_t take_slot(struct sim_net *net)
{
	if (net->free_n == 0) {
		size_t ncap = net->cap ? net->cap * 2 : 256;
		net->msgs = sim_xrealloc(net->msgs, ncap * sizeof(*net->msgs));
		memset(net->msgs + net->cap, 0,
		       (ncap - net->cap) * sizeof(*net->msgs));
		net->free_list = sim_xrealloc(net->free_list,
					      ncap * sizeof(*net->free_list));
		/* push in reverse so that low slots are reused first */
		for (size_t i = ncap; i > net->cap; i--)
			net->free_list[net->free_n++] = (uint32_t)(i - 1);
		net->cap = ncap;
	}
	return net->free_list[--net->free_n];
}

uint32_t sim_net_put(struct sim_net *net, const struct rl_msg *m)
{
	assert(m->type != 0);
	uint32_t slot = take_slot(net);
	struct rl_msg *c = &net->msgs[slot];
	*c = *m;
	c->entries = NULL;
	c->snap_data = NULL;
	if (m->entries_n > 0) {
		c->entries = sim_xmalloc(m->entries_n * sizeof(*c->entries));
		for (uint32_t i = 0; i < m->entries_n; i++) {
			c->entries[i] = m->entries[i];
			c->entries[i].data = NULL;
			if (m->entries[i].data_len > 0) {
				c->entries[i].data =
					sim_xmalloc(m->entries[i].data_len);
				memcpy(c->entries[i].data, m->entries[i].data,
				       m->entries[i].data_len);
			}
		}
	}
	if (m->snap_len > 0) {
		uint8_t *d = sim_xmalloc(m->snap_len);
		memcpy(d, m->snap_data, m->snap_len);
		c->snap_data = d;
	}
	net->in_flight++;
	return slot;
}

const struct rl_msg *sim_net_get(const struct sim_net *net, uint32_t slot)
{
	assert(slot < net->cap && net->msgs[slot].type != 0);
	return &net->msgs[slot];
}

void sim_net_release(struct sim_net *net, uint32_t slot)
{
	assert(slot < net->cap && net->msgs[slot].type != 0);
	free_copy(&net->msgs[slot]);
	net->free_list[net->free_n++] = slot;
	net->in_flight--;
}

void sim_net_heal(struct sim_net *net)
{
	for (int i = 0; i < SIM_NODES_MAX; i++)
		for (int j = 0; j < SIM_NODES_MAX; j++)
			net->link_up[i][j] = true;
}

uint32_t sim_net_cut_links(const struct sim_net *net)
{
	uint32_t n = 0;
	for (int i = 0; i < SIM_NODES_MAX; i++)
		for (int j = 0; j < SIM_NODES_MAX; j++)
			n += !net->link_up[i][j];
	return n;
}
