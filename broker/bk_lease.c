/*
 * bk_lease.c - lease expiry, decided by the leader from its monotonic clock
 * and replicated as a revoke entry (the store itself keeps only the granted
 * TTL: time never enters the state machine).
 *
 * Every member keeps the table (filled on apply of grants, emptied on apply
 * of revokes) so that a new leader has it at once; only the leader acts on
 * it, and on becoming leader it gives every lease a full TTL from now, as
 * etcd's lessor Promote() does, so that a leader change never expires a
 * lease early.
 */
#include <stdlib.h>
#include <string.h>

#include "bk_int.h"

int64_t bk_lease_min_ttl_s(const struct bk_server *s)
{
	/* ceil(1.5 * election timeout), in whole seconds */
	return ((int64_t)s->cfg.election_ms * 3 + 1999) / 2000;
}

struct bk_lease *bk_lease_find(struct bk_server *s, st_lease_id id)
{
	for (size_t i = 0; i < s->leases_n; i++)
		if (s->leases[i].id == id)
			return &s->leases[i];
	return NULL;
}

void bk_lease_set(struct bk_server *s, st_lease_id id, int64_t ttl_s)
{
	struct bk_lease *l = bk_lease_find(s, id);
	if (!l) {
		if (s->leases_n == s->leases_cap) {
			/* doubling stops AT the limit, not at the last power
			 * of two below it */
			size_t cap = s->leases_cap ? s->leases_cap * 2 : 64;
			if (cap > BK_LEASES_MAX)
				cap = BK_LEASES_MAX;
			struct bk_lease *n;
			if (cap <= s->leases_cap ||
			    !(n = realloc(s->leases, cap * sizeof(*n)))) {
				bk_log(BK_LOG_WARN, "lease table full: lease "
				    "%llx will not expire", (long long)id);
				return;
			}
			s->leases = n;
			s->leases_cap = cap;
		}
		l = &s->leases[s->leases_n++];
	}
	*l = (struct bk_lease){ .id = id, .ttl_s = ttl_s,
	    .expiry_ms = bk_now_ms() + ttl_s * 1000 };
}

void bk_lease_remove(struct bk_server *s, st_lease_id id)
{
	struct bk_lease *l = bk_lease_find(s, id);
	if (l)
		*l = s->leases[--s->leases_n];
}

void bk_lease_renew_all(struct bk_server *s)
{
	int64_t now = bk_now_ms();
	for (size_t i = 0; i < s->leases_n; i++) {
		s->leases[i].expiry_ms = now + s->leases[i].ttl_s * 1000;
		s->leases[i].revoke_sent_ms = 0;
	}
}

int bk_lease_reload(struct bk_server *s)
{
	struct st_result res = { 0 };
	int rc = st_lease_list(s->st, &res);
	if (rc) {
		bk_log(BK_LOG_ERROR, "lease list: %s", st_strerror(rc));
		st_result_free(&res);
		return BK_ERR_IO;
	}
	s->leases_n = 0;
	const struct st_lease_list_resp *ll = &res.resp.u.lease_list;
	for (size_t i = 0; i < ll->leases_n; i++)
		bk_lease_set(s, ll->leases[i].id, ll->leases[i].ttl_s);
	st_result_free(&res);
	return BK_OK;
}

void bk_lease_expire(struct bk_server *s)
{
	if (s->role != RL_LEADER)
		return;
	uint32_t sent = 0;
	int64_t now = s->now_ms;
	for (size_t i = 0; i < s->leases_n &&
	    sent < BK_LEASE_REVOKES_PER_TURN_MAX; i++) {
		struct bk_lease *l = &s->leases[i];
		if (l->expiry_ms > now || (l->revoke_sent_ms &&
		    now - l->revoke_sent_ms < (int64_t)s->cfg.election_ms))
			continue;
		struct st_op op = { .type = ST_OP_LEASE_REVOKE };
		op.u.lease_revoke.id = l->id;
		if (bk_propose_op(s, NULL, &op) != 0)
			return;
		l->revoke_sent_ms = now;
		sent++;
		bk_log(BK_LOG_DEBUG, "lease %llx expired: revoking",
		    (long long)l->id);
	}
}
