// SPDX-License-Identifier: MIT
/*
 * conns: new-connection rate and idle connections through a tunnel.
 *
 *   conns rate HOST PORT SECONDS CONCURRENCY
 *   conns idle HOST PORT COUNT CONCURRENCY
 *
 * Every connection sends one byte and waits for it to come back from the echo
 * server behind the tunnel, so it counts only once the tunnel is up end to end
 * (for a TLS pair: after the full mutual handshake and the upstream connect).
 *
 * rate: keeps CONCURRENCY connections in flight for SECONDS; each closes after
 *       its round trip and is replaced. Prints
 *       {"completed": N, "errors": E, "seconds": S, "per_s": R}.
 * idle: opens COUNT connections (CONCURRENCY at a time) and keeps them open.
 *       Prints {"open": COUNT, "errors": E, "seconds": S} once all are up,
 *       then holds them until stdin reaches EOF. Exits 1 if too many fail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A connection that does not finish its round trip within this is an error. */
#define CONN_TIMEOUT_S 20.0

enum state { CONNECTING, WAITING };

struct conn {
	int fd;
	enum state state;
	double started;
};

struct run {
	struct sockaddr_in dst;
	int ep, idle;
	long want, in_flight, completed, errors;
	struct conn *slots;
	long n_slots;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Starts one non-blocking connect in slot @c. Returns 0 or -errno. */
static int conn_start(struct run *r, struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&r->dst, sizeof(r->dst)) && errno != EINPROGRESS)
		goto fail;
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev))
		goto fail;
	c->fd = fd;
	c->state = CONNECTING;
	c->started = now_s();
	r->in_flight++;
	return 0;
fail:
	one = -errno;
	close(fd);
	return one;
}

/* Ends slot @c's attempt: closes it (rate, or error) or keeps it open (idle). */
static void conn_end(struct run *r, struct conn *c, int ok)
{
	epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (!ok || !r->idle)
		close(c->fd);
	c->fd = -1;
	r->in_flight--;
	if (ok)
		r->completed++;
	else
		r->errors++;
}

/* Advances slot @c on an epoll event. */
static void conn_step(struct run *r, struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	socklen_t len = sizeof(int);
	char b = 'x';
	int err = 0;

	if (c->state == CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err ||
		    send(c->fd, &b, 1, MSG_NOSIGNAL) != 1 ||
		    epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev))
			return conn_end(r, c, 0);
		c->state = WAITING;
		return;
	}
	if (recv(c->fd, &b, 1, 0) != 1 || b != 'x')
		return conn_end(r, c, 0);
	conn_end(r, c, 1);
}

/* Fills free slots while more connections are wanted. */
static void refill(struct run *r, int more)
{
	for (long i = 0; more && i < r->n_slots; i++) {
		struct conn *c = &r->slots[i];

		if (c->fd >= 0)
			continue;
		if (r->idle && r->completed + r->in_flight >= r->want)
			return;
		if (conn_start(r, c))
			r->errors++;
	}
}

static void expire(struct run *r, double now)
{
	for (long i = 0; i < r->n_slots; i++)
		if (r->slots[i].fd >= 0 && now - r->slots[i].started > CONN_TIMEOUT_S)
			conn_end(r, &r->slots[i], 0);
}

static int loop(struct run *r, double deadline)
{
	struct epoll_event evs[256];

	refill(r, 1);
	for (;;) {
		double now = now_s();
		int n;

		if (now >= deadline)
			return r->idle ? -ETIMEDOUT : 0;
		if (r->idle && r->completed >= r->want)
			return 0;
		if (r->idle && r->errors > r->want / 10 + 10)
			return -ECONNREFUSED;
		n = epoll_wait(r->ep, evs, 256, 100);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int k = 0; k < n; k++)
			conn_step(r, evs[k].data.ptr);
		expire(r, now_s());
		refill(r, 1);
	}
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct run r = { .dst = { .sin_family = AF_INET }, .ep = -1 };
	double t0, amount;
	int ret;

	if (argc != 6 || (strcmp(argv[1], "rate") && strcmp(argv[1], "idle"))) {
		fprintf(stderr, "usage: conns rate HOST PORT SECONDS CONCURRENCY\n"
				"       conns idle HOST PORT COUNT CONCURRENCY\n");
		return 2;
	}
	r.idle = !strcmp(argv[1], "idle");
	amount = atof(argv[4]);
	r.n_slots = atol(argv[5]);
	r.dst.sin_port = htons(atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &r.dst.sin_addr) != 1 || amount <= 0 || r.n_slots < 1) {
		fprintf(stderr, "conns: bad address, amount or concurrency\n");
		return 2;
	}
	raise_nofile();
	r.want = r.idle ? (long)amount : 0;
	r.slots = calloc(r.n_slots, sizeof(*r.slots));
	r.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!r.slots || r.ep < 0) {
		fprintf(stderr, "conns: out of memory or epoll: %s\n", strerror(errno));
		return 1;
	}
	for (long i = 0; i < r.n_slots; i++)
		r.slots[i].fd = -1;
	t0 = now_s();
	ret = loop(&r, r.idle ? t0 + 600 : t0 + amount);
	if (ret) {
		fprintf(stderr, "conns: %ld of %ld up, %ld errors: %s\n", r.completed, r.want,
			r.errors, strerror(-ret));
		return 1;
	}
	if (!r.idle) {
		printf("{\"completed\": %ld, \"errors\": %ld, \"seconds\": %.3f, \"per_s\": %.1f}\n",
		       r.completed, r.errors, amount, r.completed / amount);
		return 0;
	}
	printf("{\"open\": %ld, \"errors\": %ld, \"seconds\": %.3f}\n", r.completed, r.errors,
	       now_s() - t0);
	fflush(stdout);
	/* Hold every connection until the driver has measured and closes our stdin. */
	while (getchar() != EOF)
		;
	return 0;
}
