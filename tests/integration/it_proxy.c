/*
 * it_proxy.c - a loopback TCP proxy per member for partition tests: every
 * peer connection towards member i goes through proxy i, one thread that
 * polls the listening socket and its connections. it_cut(i, true) closes
 * every connection and refuses new ones, so member i stops receiving from
 * its peers (it still sends: a one-way cut, the case PreVote exists for).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "it_util.h"

#define PROXY_CONNS_MAX 32

struct it_proxy {
	int lfd;
	int target_port;
	atomic_bool blocked;
	atomic_bool stop;
	int a[PROXY_CONNS_MAX], b[PROXY_CONNS_MAX]; /* client, target */
	int n;
	pthread_t th;
};

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	IT_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    listen(fd, 16) == 0, "proxy listen on %d", port);
	return fd;
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void drop(struct it_proxy *p, int k)
{
	close(p->a[k]);
	close(p->b[k]);
	p->n--;
	p->a[k] = p->a[p->n];
	p->b[k] = p->b[p->n];
}

static void accept_one(struct it_proxy *p)
{
	int fd = accept(p->lfd, NULL, NULL);
	if (fd < 0)
		return;
	int t = atomic_load(&p->blocked) || p->n == PROXY_CONNS_MAX ? -1 :
	    connect_to(p->target_port);
	if (t < 0) {
		close(fd);
		return;
	}
	p->a[p->n] = fd;
	p->b[p->n] = t;
	p->n++;
}

/* Copies what is readable on from to to; false when the pair is done. */
static bool pump(int from, int to)
{
	char buf[65536];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n <= 0)
		return false;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));
		if (w <= 0)
			return false;
		off += w;
	}
	return true;
}

static void *proxy_main(void *arg)
{
	struct it_proxy *p = arg;
	while (!atomic_load(&p->stop)) {
		if (atomic_load(&p->blocked))
			while (p->n)
				drop(p, 0);
		struct pollfd pf[1 + 2 * PROXY_CONNS_MAX];
		pf[0] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
		for (int k = 0; k < p->n; k++) {
			pf[1 + 2 * k] = (struct pollfd){ .fd = p->a[k],
			    .events = POLLIN };
			pf[2 + 2 * k] = (struct pollfd){ .fd = p->b[k],
			    .events = POLLIN };
		}
		int nfds = 1 + 2 * p->n;
		if (poll(pf, (nfds_t)nfds, 20) <= 0)
			continue;
		for (int k = p->n - 1; k >= 0; k--) {
			short ra = pf[1 + 2 * k].revents;
			short rb = pf[2 + 2 * k].revents;
			bool ok = true;
			if (ra & (POLLIN | POLLHUP | POLLERR))
				ok = pump(p->a[k], p->b[k]);
			if (ok && (rb & (POLLIN | POLLHUP | POLLERR)))
				ok = pump(p->b[k], p->a[k]);
			if (!ok)
				drop(p, k);
		}
		if (pf[0].revents & POLLIN)
			accept_one(p);
	}
	while (p->n)
		drop(p, 0);
	close(p->lfd);
	return NULL;
}

/* What a member's leak check ignores in a proxied cluster (it_util.h). */
#define IT_LSAN_STUCK_SEND "leak:peer_send_bytes\n"

void it_cluster_init_proxied(struct it_cluster *c, int n)
{
	it_cluster_init(c, n);
	snprintf(c->lsan_supp, sizeof(c->lsan_supp), "%s/lsan.supp", c->dir);
	FILE *f = fopen(c->lsan_supp, "w");
	IT_CHECK(f && fputs(IT_LSAN_STUCK_SEND, f) >= 0 && fclose(f) == 0,
	    "write %s", c->lsan_supp);
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		struct it_member *m = &c->m[i];
		struct it_proxy *p = calloc(1, sizeof(*p));
		int port = it_free_port();
		p->lfd = listen_on(port);
		p->target_port = atoi(strrchr(m->peer_url, ':') + 1);
		IT_CHECK(pthread_create(&p->th, NULL, proxy_main, p) == 0,
		    "proxy thread");
		m->proxy = p;
		snprintf(m->adv_peer_url, sizeof(m->adv_peer_url),
		    "tcp://127.0.0.1:%d", port);
		off += (size_t)snprintf(c->initial_cluster + off,
		    sizeof(c->initial_cluster) - off, "%s%s=%s", i ? "," : "",
		    m->name, m->adv_peer_url);
	}
}

void it_cut(struct it_cluster *c, int i, bool blocked)
{
	IT_CHECK(c->m[i].proxy, "member %d has no proxy", i);
	atomic_store(&c->m[i].proxy->blocked, blocked);
}
