/*
 * it_bench.c - write throughput and latency of a real cluster on loopback:
 * THREADS clients (one req socket each) put 64-byte values to the leader
 * for SECONDS, then the members are stopped and their logs report how many
 * entries each fsync'd log write carried (group commit).
 *
 *   it_bench [members] [threads] [seconds]      (defaults 3 16 3)
 *
 * Not part of the default suite (registered with -Dlong_tests=true).
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "it_util.h"
#include "rb_wire.h"

#define LAT_MAX 1000000

struct worker {
	pthread_t th;
	const char *url;
	int id;
	int64_t until;
	long ok, failed;
	int *lat_us;
	long lat_n;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	nng_socket s;
	if (nng_req0_open(&s) || nng_dial(s, w->url, NULL, 0))
		return NULL;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	char key[32], val[64];
	memset(val, 'x', sizeof(val));
	for (long i = 0; it_now_ms() < w->until; i++) {
		snprintf(key, sizeof(key), "bench/%d/%ld", w->id, i % 1000);
		struct rb_op op = { .type = RB_OP_PUT };
		op.u.put.key = (const uint8_t *)key;
		op.u.put.key_len = strlen(key);
		op.u.put.value = (const uint8_t *)val;
		op.u.put.value_len = sizeof(val);
		uint8_t *buf;
		size_t len;
		if (rb_wire_encode_request((uint64_t)i, &op, &buf, &len))
			break;
		int64_t t0 = it_now_ms();
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		int rv = nng_send(s, buf, len, 0);
		free(buf);
		void *rbuf;
		size_t rlen;
		if (rv == 0)
			rv = nng_recv(s, &rbuf, &rlen, NNG_FLAG_ALLOC);
		(void)t0;
		if (rv) {
			w->failed++;
			continue;
		}
		struct rb_resp resp;
		memset(&resp, 0, sizeof(resp));
		rv = rb_wire_decode_reply(rbuf, rlen, NULL, NULL, &resp);
		nng_free(rbuf, rlen);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (rv == 0 && resp.err == 0) {
			w->ok++;
			if (w->lat_n < LAT_MAX / 64)
				w->lat_us[w->lat_n++] = (int)((b.tv_sec -
				    a.tv_sec) * 1000000 + (b.tv_nsec -
				    a.tv_nsec) / 1000);
		} else {
			w->failed++;
		}
		rb_resp_free(&resp);
	}
	nng_close(s);
	return NULL;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int main(int argc, char **argv)
{
	int members = argc > 1 ? atoi(argv[1]) : 3;
	int threads = argc > 2 ? atoi(argv[2]) : 16;
	int seconds = argc > 3 ? atoi(argv[3]) : 3;
	IT_CHECK(members >= 1 && members <= IT_MEMBERS_MAX && threads >= 1 &&
	    threads <= 64 && seconds >= 1 && seconds <= 60, "arguments");
	signal(SIGPIPE, SIG_IGN);
	struct it_cluster c;
	it_cluster_init(&c, members);
	c.extra[0] = "--log-level";
	c.extra[1] = "info";
	it_start_all(&c);
	int leader = it_leader(&c, "a leader");
	struct worker *w = calloc((size_t)threads, sizeof(*w));
	int64_t until = it_now_ms() + seconds * 1000;
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){ .url = c.m[leader].client_url,
		    .id = i, .until = until };
		w[i].lat_us = malloc(sizeof(int) * (LAT_MAX / 64));
		pthread_create(&w[i].th, NULL, work, &w[i]);
	}
	long ok = 0, failed = 0, n = 0;
	int *all = malloc(sizeof(int) * (size_t)threads * (LAT_MAX / 64));
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].th, NULL);
		ok += w[i].ok;
		failed += w[i].failed;
		memcpy(all + n, w[i].lat_us, sizeof(int) * (size_t)w[i].lat_n);
		n += w[i].lat_n;
		free(w[i].lat_us);
	}
	qsort(all, (size_t)n, sizeof(int), cmp_int);
	printf("members %d, clients %d, %d s: %ld puts acknowledged (%.0f/s), "
	    "%ld failed; latency p50 %.2f ms, p99 %.2f ms\n", members,
	    threads, seconds, ok, (double)ok / seconds, failed,
	    n ? all[n / 2] / 1000.0 : 0, n ? all[n * 99 / 100] / 1000.0 : 0);
	free(all);
	free(w);
	for (int i = 0; i < members; i++)
		it_kill(&c, i, SIGTERM);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "grep -h 'stopped cleanly' %s/*.log",
	    c.dir);
	fflush(stdout);
	int rc = system(cmd);
	(void)rc;
	it_cluster_done(&c);
	return 0;
}
