/*
 * test_bk_lease.c - the leader's lease expiry table (broker/bk_lease.c)
 * tracks up to BK_LEASES_MAX leases, as documented: a lease beyond what
 * the table holds would never expire.
 */
#include <stdlib.h>

#include <criterion/criterion.h>

#include "bk_int.h"

Test(bk_lease, table_grows_to_its_documented_limit)
{
	struct bk_server *s = calloc(1, sizeof(*s));
	cr_assert_not_null(s);
	/* a table at the last power-of-two capacity below the limit, full:
	 * filled directly, as one bk_lease_set per lease would take a while */
	size_t n = 64;
	while (n * 2 <= BK_LEASES_MAX)
		n *= 2;
	s->leases = calloc(n, sizeof(*s->leases));
	cr_assert_not_null(s->leases);
	for (size_t i = 0; i < n; i++)
		s->leases[i] = (struct bk_lease){ .id = (st_lease_id)i + 1,
		    .ttl_s = 60 };
	s->leases_n = s->leases_cap = n;
	bk_lease_set(s, (st_lease_id)n + 1, 60);
	cr_assert_eq(s->leases_n, n + 1, "lease %zu not tracked", n + 1);
	cr_assert_not_null(bk_lease_find(s, (st_lease_id)n + 1));
	cr_assert_leq(s->leases_cap, BK_LEASES_MAX);
	/* filled up to the limit, one more is refused, not tracked */
	for (size_t i = s->leases_n; i < BK_LEASES_MAX; i++)
		s->leases[i] = (struct bk_lease){ .id = (st_lease_id)i + 1 };
	s->leases_n = BK_LEASES_MAX;
	bk_lease_set(s, (st_lease_id)BK_LEASES_MAX + 1, 60);
	cr_assert_eq(s->leases_n, BK_LEASES_MAX);
	free(s->leases);
	free(s);
}
