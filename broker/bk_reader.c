/*
 * bk_reader.c - the reader pool: BK_READERS threads that serve reads (range,
 * lease time-to-live, lease list, status) so that a large read does not
 * stall the loop thread, and with it Raft heartbeats, appends and applies.
 *
 * The loop decides WHEN a read may run (serializable: at once;
 * linearizable: once its ReadIndex is applied) and hands it over with
 * bk_reader_submit(); a reader runs it on its own LMDB read transaction
 * (store.h allows reads on any thread beside the writer), encodes the reply
 * and sends it on the request's nng context (bk_client_serve_read()).
 *
 * Ownership: a queued or running read (its struct bk_creq and decoded
 * request) belongs to the pool; the loop does not touch it again. The
 * reader starts the nng send, after which the context belongs to nng, whose
 * callback starts the next receive, as for replies sent by the loop. The
 * pool keeps its own counters under its own lock: no broker bookkeeping is
 * done by a reader.
 *
 * Bounds: --max-queued-reads reads wait; one more is refused (the loop
 * answers "too many requests"). st_restore_file() must run alone, so the
 * loop pauses the pool around it (bk_reader_pause/resume). Shutdown: reads
 * in progress finish, queued ones are dropped, threads are joined before
 * the client contexts and the store are closed.
 */
#include <assert.h>
#include <stdlib.h>

#include "bk_int.h"

static void *reader_main(void *arg)
{
	struct bk_server *s = arg;
	struct bk_readers *rs = &s->readers;
	pthread_mutex_lock(&rs->mu);
	for (;;) {
		while (!rs->stopping && (rs->paused || rs->count == 0))
			pthread_cond_wait(&rs->work, &rs->mu);
		if (rs->stopping)
			break;
		struct bk_read rd = rs->queue[rs->head];
		rs->head = (rs->head + 1) % BK_READ_RING_MAX;
		rs->count--;
		if (rd.watch)
			rs->watch_count--;
		rs->active++;
		pthread_mutex_unlock(&rs->mu);
		/* s->st is the same handle for the server's life; a restore
		 * (which changes what is behind it) waits for active == 0 */
		bk_client_serve_read(s->st, &rd);
		pthread_mutex_lock(&rs->mu);
		rs->active--;
		rs->served_n++;
		if (rs->active == 0)
			pthread_cond_broadcast(&rs->idle);
	}
	pthread_mutex_unlock(&rs->mu);
	return NULL;
}

int bk_reader_start(struct bk_server *s)
{
	struct bk_readers *rs = &s->readers;
	assert(!rs->inited);
	pthread_mutex_init(&rs->mu, NULL);
	pthread_cond_init(&rs->work, NULL);
	pthread_cond_init(&rs->idle, NULL);
	rs->inited = true;
	for (uint32_t i = 0; i < BK_READERS; i++) {
		if (pthread_create(&rs->threads[i], NULL, reader_main, s)) {
			bk_log(BK_LOG_ERROR, "cannot start reader thread %u", i);
			bk_reader_stop(s);
			return BK_ERR_NOMEM;
		}
		rs->threads_n++;
	}
	return BK_OK;
}

bool bk_reader_submit(struct bk_server *s, const struct bk_read *rd)
{
	struct bk_readers *rs = &s->readers;
	bool queued = false;
	pthread_mutex_lock(&rs->mu);
	/* plain reads are limited to --max-queued-reads; watch polls have their
	 * own limit, so the ring always has room for them */
	bool room = rd->watch ? rs->count < BK_READ_RING_MAX :
	    rs->count - rs->watch_count < s->cfg.max_queued_reads;
	if (!rs->stopping && room) {
		rs->queue[(rs->head + rs->count) % BK_READ_RING_MAX] = *rd;
		rs->count++;
		if (rd->watch)
			rs->watch_count++;
		rd->r->state = BK_CREQ_READER;
		queued = true;
		pthread_cond_signal(&rs->work);
	} else if (!rs->stopping) {
		rs->refused_n++;
	}
	pthread_mutex_unlock(&rs->mu);
	return queued;
}

void bk_reader_pause(struct bk_server *s)
{
	struct bk_readers *rs = &s->readers;
	pthread_mutex_lock(&rs->mu);
	assert(!rs->paused);
	rs->paused = true;
	while (rs->active)
		pthread_cond_wait(&rs->idle, &rs->mu);
	pthread_mutex_unlock(&rs->mu);
}

void bk_reader_resume(struct bk_server *s)
{
	struct bk_readers *rs = &s->readers;
	pthread_mutex_lock(&rs->mu);
	assert(rs->paused);
	rs->paused = false;
	pthread_cond_broadcast(&rs->work);
	pthread_mutex_unlock(&rs->mu);
}

void bk_reader_stop(struct bk_server *s)
{
	struct bk_readers *rs = &s->readers;
	if (!rs->inited)
		return;
	pthread_mutex_lock(&rs->mu);
	rs->stopping = true;
	pthread_cond_broadcast(&rs->work);
	pthread_mutex_unlock(&rs->mu);
	for (uint32_t i = 0; i < rs->threads_n; i++)
		pthread_join(rs->threads[i], NULL);
	rs->threads_n = 0;
	/* No reader is left: the queue is the loop's again. The dropped
	 * requests keep their raw message in r->req (bk_client_close frees
	 * it); their clients see the connection close, as for writes in
	 * flight at shutdown. */
	uint32_t dropped = rs->count;
	while (rs->count) {
		struct bk_read *rd = &rs->queue[rs->head];
		rb_wire_request_free(rd->wr);
		if (rd->watch)
			bk_watch_dropped(rd->watch);
		rd->r->state = BK_CREQ_LOOP;
		rs->head = (rs->head + 1) % BK_READ_RING_MAX;
		rs->count--;
	}
	bk_log(BK_LOG_INFO, "readers: %llu reads served, %llu refused (queue "
	    "full), %u dropped at stop", (unsigned long long)rs->served_n,
	    (unsigned long long)rs->refused_n, dropped);
	pthread_cond_destroy(&rs->idle);
	pthread_cond_destroy(&rs->work);
	pthread_mutex_destroy(&rs->mu);
	rs->inited = false;
}
