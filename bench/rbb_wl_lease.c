/*
 * rbb_wl_lease.c - the `lease-keepalive` workload of raftbus-bench: before
 * the measured run every client is granted a lease of its own (a setup
 * phase through the same engine, so 10^5 grants are pipelined too); then
 * each client sends keep-alive rounds for its lease to the leader. The
 * leases are revoked at the end (best effort; they expire anyway).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "rbb.h"

/* Longest --ttl in seconds (a year). */
#define RBB_LEASE_TTL_S_MAX (365ull * 24 * 3600)

struct lease_state {
	uint64_t ttl_s;
	rb_lease_id *leases;     /* one per client, by slot */
	unsigned leases_n;
};

static const struct rbb_flag lease_flags[] = {
	{ "--ttl", RBB_FLAG_U64, offsetof(struct lease_state, ttl_s), 1,
	  RBB_LEASE_TTL_S_MAX, "TTL of the granted leases in s (default 60)", "S" },
	{ NULL, 0, 0, 0, 0, NULL },
};

static void lease_defaults(void *state)
{
	((struct lease_state *)state)->ttl_s = 60;
}

static int grant_next(struct rbb_run *run, const struct rbb_phase *ph,
    const struct rbb_req *req, struct rb_op *op)
{
	(void)ph; (void)req;
	op->type = RB_OP_LEASE_GRANT;
	op->u.lease_grant.ttl_s = (int64_t)((struct lease_state *)
	    run->wl_state)->ttl_s;
	return 0;
}

/* Grant number seq belongs to client seq (the phase runs `clients`
 * grants): each seq is checked exactly once, so no lock is needed. */
static int grant_check(struct rbb_run *run, const struct rbb_phase *ph,
    const struct rbb_req *req, const struct rb_resp *resp)
{
	(void)ph;
	struct lease_state *l = run->wl_state;
	if (resp->body.type != RB_OP_LEASE_GRANT ||
	    resp->body.u.lease_grant.id == 0 || req->seq >= l->leases_n)
		return RB_ERR_PROTOCOL;
	l->leases[req->seq] = resp->body.u.lease_grant.id;
	return 0;
}

static int id_next(struct rbb_run *run, const struct rbb_phase *ph,
    const struct rbb_req *req, struct rb_op *op)
{
	const struct lease_state *l = run->wl_state;
	/* keep-alives: client `slot` renews its own lease; revokes: one
	 * per lease */
	bool keepalive = ph->arg != NULL;
	uint64_t i = keepalive ? req->slot : req->seq;
	if (i >= l->leases_n || l->leases[i] == 0)
		return RB_ERR_INVALID;
	op->type = keepalive ? RB_OP_LEASE_KEEPALIVE : RB_OP_LEASE_REVOKE;
	if (keepalive)
		op->u.lease_keepalive.id = l->leases[i];
	else
		op->u.lease_revoke.id = l->leases[i];
	return 0;
}

static int keepalive_check(struct rbb_run *run, const struct rbb_phase *ph,
    const struct rbb_req *req, const struct rb_resp *resp)
{
	(void)run; (void)ph; (void)req;
	if (resp->body.type != RB_OP_LEASE_KEEPALIVE ||
	    resp->body.u.lease_keepalive.ttl_s <= 0)
		return RB_ERR_PROTOCOL;
	return 0;
}

static int lease_setup(struct rbb_run *run, struct rbb_phase *measured)
{
	struct lease_state *l = run->wl_state;
	l->leases = calloc(run->clients, sizeof(*l->leases));
	if (l->leases == NULL) {
		fprintf(stderr, "raftbus-bench: out of memory\n");
		return -1;
	}
	l->leases_n = run->clients;
	static const struct rbb_phase grant = { .name = "lease grant",
	    .route = RBB_ROUTE_LEADER, .next = grant_next,
	    .check = grant_check };
	if (rbb_engine_run(run, &grant, run->clients, NULL))
		return -1;
	/* any non-NULL arg marks the keep-alive phase */
	*measured = (struct rbb_phase){ .name = "lease-keepalive",
	    .route = RBB_ROUTE_LEADER, .arg = l, .next = id_next,
	    .check = keepalive_check };
	return 0;
}

static void lease_teardown(struct rbb_run *run)
{
	struct lease_state *l = run->wl_state;
	if (l->leases) {
		static const struct rbb_phase revoke = { .name = "lease revoke",
		    .route = RBB_ROUTE_LEADER, .next = id_next };
		unsigned granted = 0;
		for (unsigned i = 0; i < l->leases_n; i++)
			granted += l->leases[i] != 0;
		/* only when every grant succeeded: the phase maps seq to lease */
		if (granted == l->leases_n)
			(void)rbb_engine_run(run, &revoke, l->leases_n, NULL);
	}
	free(l->leases);
	l->leases = NULL;
}

const struct rbb_workload rbb_wl_lease_keepalive = {
	.name = "lease-keepalive",
	.args = "",
	.summary = "grant one lease per client, then keep-alive rounds",
	.flags = lease_flags,
	.state_bytes = sizeof(struct lease_state),
	.total_default = 10000,
	.defaults = lease_defaults,
	.setup = lease_setup,
	.teardown = lease_teardown,
};
