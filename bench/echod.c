// SPDX-License-Identifier: MIT
/*
 * echod: the sink behind every contender in `make bench`.
 *
 *   echod [--http] [--bind ADDR] PORT
 *
 * Echo mode returns every byte it reads (ping-pong, handshake and idle-tunnel
 * runs). HTTP mode answers each request head ("\r\n\r\n") with one small
 * keep-alive response (wrk runs). One epoll thread, non-blocking sockets,
 * TCP_NODELAY, level-triggered: a connection whose peer does not read keeps
 * its unsent bytes and stops being read until they are gone. PORT 0 lets the
 * kernel choose; the bound port is printed on stdout as "PORT\n" once the
 * socket listens. Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)

static const char http_reply[] = "HTTP/1.1 200 OK\r\n"
				 "Content-Type: text/plain\r\n"
				 "Content-Length: 13\r\n"
				 "\r\n"
				 "Hello, world\n";

/* Per connection: bytes still owed to the peer, and the HTTP parse state. */
struct conn {
	int fd;
	char *pending;
	size_t len, off, cap;
	int crlf; /* how many bytes of "\r\n\r\n" the stream ended with */
};

static int http_mode;

static int die(const char *what)
{
	fprintf(stderr, "echod: %s: %s\n", what, strerror(errno));
	return 1;
}

static void conn_free(struct conn *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c->pending);
	free(c);
}

/* Appends @n bytes to what @c owes its peer. Returns 0 or -ENOMEM. */
static int conn_queue(struct conn *c, const char *p, size_t n)
{
	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		char *q;

		while (cap < c->len + n)
			cap *= 2;
		q = realloc(c->pending, cap);
		if (!q)
			return -ENOMEM;
		c->pending = q;
		c->cap = cap;
	}
	memcpy(c->pending + c->len, p, n);
	c->len += n;
	return 0;
}

/* Writes what is pending. Returns 1 if all of it went, 0 if some is left, -errno. */
static int conn_flush(struct conn *c)
{
	while (c->off < c->len) {
		ssize_t n = send(c->fd, c->pending + c->off, c->len - c->off, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -errno;
		c->off += n;
	}
	return 1;
}

/* Counts complete request heads in @p, carrying a split "\r\n\r\n" across reads. */
static int http_requests(struct conn *c, const char *p, size_t n)
{
	static const char end[] = "\r\n\r\n";
	int count = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == end[c->crlf])
			c->crlf++;
		else
			c->crlf = p[i] == '\r';
		if (c->crlf == 4) {
			count++;
			c->crlf = 0;
		}
	}
	return count;
}

/* Reads once and queues the answer. Returns 0, or -1 when the connection is done. */
static int conn_read(struct conn *c, char *buf)
{
	ssize_t n = recv(c->fd, buf, BUF_SIZE, 0);

	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0)
		return -1;
	if (!http_mode)
		return conn_queue(c, buf, n) ? -1 : 0;
	for (int k = http_requests(c, buf, n); k > 0; k--)
		if (conn_queue(c, http_reply, sizeof(http_reply) - 1))
			return -1;
	return 0;
}

static int listen_on(const char *addr, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t len = sizeof(sin);
	int one = 1, fd;

	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "echod: bad IPv4 address \"%s\"\n", addr);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return die("socket"), -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len)) {
		die("bind/listen");
		close(fd);
		return -1;
	}
	printf("%d\n", ntohs(sin.sin_port));
	fflush(stdout);
	return fd;
}

static void accept_all(int ep, int lfd)
{
	int one = 1;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct conn *c;

		if (fd < 0)
			return; /* EAGAIN, or EMFILE: the backlog keeps them */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
			conn_free(c);
	}
}

/* Reads, answers, and switches between EPOLLIN and EPOLLOUT for backpressure. */
static void serve(int ep, struct conn *c, char *buf)
{
	struct epoll_event ev = { .data.ptr = c };
	int ret;

	if (c->off == c->len && conn_read(c, buf))
		goto drop;
	ret = conn_flush(c);
	if (ret < 0)
		goto drop;
	ev.events = ret ? EPOLLIN : EPOLLOUT;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev))
		goto drop;
	return;
drop:
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	conn_free(c);
}

int main(int argc, char **argv)
{
	struct epoll_event evs[256], ev = { .events = EPOLLIN };
	const char *addr = "127.0.0.1";
	static char buf[BUF_SIZE];
	int i, lfd, ep;

	for (i = 1; i < argc - 1; i++) {
		if (!strcmp(argv[i], "--http"))
			http_mode = 1;
		else if (!strcmp(argv[i], "--bind") && i + 2 < argc)
			addr = argv[++i];
		else
			break;
	}
	if (i != argc - 1) {
		fprintf(stderr, "usage: echod [--http] [--bind ADDR] PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(addr, atoi(argv[i]));
	if (lfd < 0)
		return 1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.ptr = NULL;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
		return die("epoll");
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return die("epoll_wait");
		for (int k = 0; k < n; k++) {
			if (!evs[k].data.ptr)
				accept_all(ep, lfd);
			else
				serve(ep, evs[k].data.ptr, buf);
		}
	}
}
