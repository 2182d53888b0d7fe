/*
 * ed_etcd.c - start, talk to and stop a local etcd for the differential
 * test (see ed_etcd.h). The HTTP side is deliberately tiny: HTTP/1.0, one
 * connection per request, the body read until the server closes, so there
 * is no chunked encoding or keep-alive to handle.
 */
#include "ed_etcd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool ed_etcd_in_path(void)
{
	const char *path = getenv("PATH");
	char dir[4096];
	while (path && *path) {
		size_t n = strcspn(path, ":");
		if (n > 0 && n < sizeof(dir) - 8) {
			snprintf(dir, sizeof(dir), "%.*s/etcd", (int)n, path);
			if (access(dir, X_OK) == 0)
				return true;
		}
		path += n + (path[n] == ':');
	}
	return false;
}

/* Binds port 0 on loopback to learn a free port. Two calls may in theory
 * race with other processes; etcd then fails to start and we report it. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int port = -1;
	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
	struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

void ed_etcd_print_log(const struct ed_etcd *e)
{
	char path[512], line[1024];
	snprintf(path, sizeof(path), "%s/etcd.log", e->dir);
	FILE *f = fopen(path, "r");
	for (int i = 0; f && i < ED_ETCD_LOG_LINES_MAX && fgets(line, sizeof(line), f); i++)
		fprintf(stderr, "  etcd.log: %s", line);
	if (f)
		fclose(f);
}

static bool spawn_etcd(struct ed_etcd *e)
{
	char data[300], log[300], curl[64], purl[64], cluster[96];
	snprintf(data, sizeof(data), "%s/data", e->dir);
	snprintf(log, sizeof(log), "%s/etcd.log", e->dir);
	snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", e->client_port);
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", e->peer_port);
	snprintf(cluster, sizeof(cluster), "diff=%s", purl);
	char *argv[] = { "etcd", "--name", "diff", "--data-dir", data,
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		"--initial-cluster", cluster, "--log-level", "error", NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log,
		O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	/* etcd reads every ETCD_* variable as a flag: hide ours from it. */
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 1, sizeof(*env));
	size_t m = 0;
	for (size_t i = 0; env && i < n; i++)
		if (strncmp(environ[i], "ETCD", 4) != 0)
			env[m++] = environ[i];
	int rc = env ? posix_spawnp(&e->pid, "etcd", &fa, NULL, argv, env)
		: ENOMEM;
	free(env);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "etcd_diff: cannot spawn etcd: %s\n", strerror(rc));
		e->pid = 0;
		return false;
	}
	return true;
}

bool ed_etcd_start(struct ed_etcd *e)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "%s/etcd_diff.XXXXXX", base);
	if (!mkdtemp(e->dir)) {
		perror("etcd_diff: mkdtemp");
		e->dir[0] = '\0';
		return false;
	}
	e->client_port = free_port();
	/* bind(0) may hand out the same port twice */
	for (int i = 0; i < 100 && (e->peer_port = free_port()) ==
	    e->client_port; i++)
		;
	if (e->client_port <= 0 || e->peer_port <= 0 ||
		e->client_port == e->peer_port || !spawn_etcd(e))
		goto out_stop;
	int64_t deadline = now_ms() + ED_ETCD_START_TIMEOUT_MS;
	while (now_ms() < deadline) {
		int status = 0;
		if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
			fprintf(stderr, "etcd_diff: etcd exited during start\n");
			e->pid = 0;
			goto out_stop;
		}
		struct ed_json *j = NULL;
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET,
			.sin_port = htons((uint16_t)e->client_port) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		bool up = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		if (fd >= 0)
			close(fd);
		if (up) {
			int st = 0;
			j = ed_etcd_post(e, "/v3/kv/range", "{\"key\":\"AA==\"}", &st);
		}
		if (j && ed_json_get(j, "header")) {
			ed_json_free(j);
			return true;
		}
		ed_json_free(j);
		usleep(50 * 1000);
	}
	fprintf(stderr, "etcd_diff: etcd did not answer within %d ms\n",
		ED_ETCD_START_TIMEOUT_MS);
out_stop:
	ed_etcd_print_log(e);
	ed_etcd_stop(e);
	return false;
}

void ed_etcd_stop(struct ed_etcd *e)
{
	if (e->pid > 0) {
		int status;
		kill(e->pid, SIGTERM);
		int64_t deadline = now_ms() + ED_ETCD_STOP_TIMEOUT_MS;
		while (waitpid(e->pid, &status, WNOHANG) == 0) {
			if (now_ms() > deadline) {
				kill(e->pid, SIGKILL);
				waitpid(e->pid, &status, 0);
				break;
			}
			usleep(10 * 1000);
		}
		e->pid = 0;
	}
	if (e->dir[0]) {
		nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		e->dir[0] = '\0';
	}
}

static bool send_all(int fd, const char *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			return false;
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno != EINTR && errno != EAGAIN)
			return false;
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		}
	}
	return true;
}

static bool recv_all(int fd, struct ed_buf *out, int64_t deadline)
{
	char chunk[16384];
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			return false;
		ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
		if (r == 0)
			return true;
		if (r < 0 && errno != EINTR && errno != EAGAIN)
			return false;
		if (r > 0)
			ed_buf_add(out, chunk, (size_t)r);
		if (out->len > ED_ETCD_RESPONSE_BYTES_MAX)
			return false;
	}
}

int ed_etcd_stream_open(const struct ed_etcd *e, const char *path,
	const char *body)
{
	int64_t deadline = now_ms() + ED_ETCD_REQUEST_TIMEOUT_MS;
	struct ed_buf req;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)e->client_port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	ed_buf_init(&req);
	ed_buf_printf(&req, "POST %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n"
		"Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		path, e->client_port, strlen(body), body);
	bool ok = send_all(fd, req.p, req.len, deadline);
	ed_buf_free(&req);
	if (!ok) {
		close(fd);
		return -1;
	}
	return fd;
}

long ed_etcd_stream_read(int fd, struct ed_buf *out, int idle_ms)
{
	char chunk[16384];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int rc = poll(&pfd, 1, idle_ms);
	if (rc == 0)
		return 0;
	if (rc < 0)
		return errno == EINTR ? 0 : -1;
	ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
	if (r < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (out->len + (size_t)r > ED_ETCD_RESPONSE_BYTES_MAX)
		return -1;
	ed_buf_add(out, chunk, (size_t)r);
	return (long)r;
}

static bool http_exchange(const struct ed_etcd *e, const char *path,
	const char *body, struct ed_buf *resp)
{
	int64_t deadline = now_ms() + ED_ETCD_REQUEST_TIMEOUT_MS;
	int fd = ed_etcd_stream_open(e, path, body);
	if (fd < 0)
		return false;
	bool ok = recv_all(fd, resp, deadline);
	close(fd);
	return ok;
}

struct ed_json *ed_etcd_post(const struct ed_etcd *e, const char *path,
	const char *body, int *http_status)
{
	struct ed_buf resp;
	struct ed_json *j = NULL;
	ed_buf_init(&resp);
	*http_status = 0;
	if (!http_exchange(e, path, body, &resp)) {
		fprintf(stderr, "etcd_diff: POST %s failed (transport)\n", path);
		goto out_free_resp;
	}
	const char *sep = strstr(resp.p, "\r\n\r\n");
	if (!sep || sscanf(resp.p, "HTTP/%*s %d", http_status) != 1) {
		fprintf(stderr, "etcd_diff: POST %s: bad HTTP response\n", path);
		goto out_free_resp;
	}
	sep += 4;
	j = ed_json_parse(sep, resp.len - (size_t)(sep - resp.p));
	if (!j)
		fprintf(stderr, "etcd_diff: POST %s: bad JSON: %.300s\n", path, sep);
out_free_resp:
	ed_buf_free(&resp);
	return j;
}
