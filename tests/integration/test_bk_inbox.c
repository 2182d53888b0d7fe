/*
 * test_bk_inbox.c - the peer inbox (broker/bk_server.c) is bounded in bytes
 * as well as in messages: a peer (or anything that connects to the peer
 * port) sending messages of up to BK_PEER_MSG_BYTES_MAX while the loop is
 * busy cannot make the member hold 4096 of them.
 */
#include <stdlib.h>

#include <criterion/criterion.h>

#include "bk_int.h"

Test(bk_inbox, bounded_in_bytes)
{
	struct bk_server *s = calloc(1, sizeof(*s));
	cr_assert_not_null(s);
	pthread_mutex_init(&s->mu, NULL);
	const size_t msg_bytes = 4u * 1024u * 1024u;
	size_t accepted = 0;
	bool refused = false;
	/* bounded: stops one message past the limit even if nothing is
	 * refused, so a failing run allocates little more than the limit */
	for (uint32_t i = 0; i < BK_PEER_INBOX_MAX &&
	    accepted <= BK_PEER_INBOX_BYTES_MAX; i++) {
		nng_msg *m;
		cr_assert_eq(nng_msg_alloc(&m, msg_bytes), 0);
		if (!bk_peer_inbox_put(s, m)) {
			nng_msg_free(m);
			refused = true;
			break;
		}
		accepted += msg_bytes;
	}
	cr_assert(refused, "inbox took %zu bytes", accepted);
	cr_assert_leq(accepted, BK_PEER_INBOX_BYTES_MAX);
	cr_assert_eq(s->peer_bytes, accepted);
	/* small messages still fit once the loop took the big ones */
	while (s->peer_count) {
		s->peer_bytes -= nng_msg_len(s->peer_inbox[s->peer_head]);
		nng_msg_free(s->peer_inbox[s->peer_head]);
		s->peer_head = (s->peer_head + 1) % BK_PEER_INBOX_MAX;
		s->peer_count--;
	}
	cr_assert_eq(s->peer_bytes, 0);
	nng_msg *m;
	cr_assert_eq(nng_msg_alloc(&m, 100), 0);
	cr_assert(bk_peer_inbox_put(s, m));
	nng_msg_free(s->peer_inbox[s->peer_head]);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
