// SPDX-License-Identifier: MIT
/*
 * legsrelay: one side of the plain-relay+redirect floor of `make bench` (bench/README.md).
 *
 * A TCP relay without TLS whose local legs go through fedgate's own local redirect
 * (bpf/legs.bpf.c, loaded with the loader the control process uses, bpf/legs-api.h), where
 * fedgate itself is the reader: on the originate side the accepted socket (the app's bytes),
 * on the terminate side the upstream socket (the service's bytes). The other directions and
 * the leg between the two relays (fedgate's TLS leg) stay TCP. Per read it counts what it
 * consumed in the slot and closes a reader as the data plane does (fedgate/legs.h), so the
 * budget and the close semantics are fedgate's.
 *
 *   legsrelay originate|terminate PORT:TO [PORT:TO...]   listen on 127.0.0.1:PORT, relay to
 *                                                        127.0.0.1:TO, until SIGTERM/SIGINT
 *   legsrelay probe                                      load and attach, then exit
 *
 * A thread per direction of each connection, 128 KiB reads (socat -b 131072, as plain-relay).
 * Exit: 0; 2 with "legsrelay: why" on stderr when the programs cannot be loaded or attached.
 * At exit stderr gets the redirect's global counters ("legs: bytes=N msgs=N tcp_bytes=N ...").
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bpf/legs-api.h"
#include "fedgate/legs.h"

#define BUF_LEN (128 * 1024)
#define MAX_LISTEN 16

static struct fg_legs *legs;
static int originate;

struct listener {
	pthread_t th;
	int fd;
	uint16_t to;
};

/* One relayed connection: @app the accepted socket, @up the dialed one. */
struct conn {
	int app, up;
	struct fg_legs_slot *slot; /* the reader's slot: @app (originate) or @up (terminate) */
	int live;		   /* directions still running; the last one closes both */
	pthread_mutex_t lock;
};

/* One direction @from -> @to; @slot counts what @from (a reader) consumed. */
struct pump {
	pthread_t th;
	struct conn *c;
	int from, to;
	struct fg_legs_slot *slot;
};

static void conn_close(struct conn *c)
{
	int reader = originate ? c->app : c->up;

	if (c->slot)
		fg_legs_close_reader(c->slot, reader);
	else
		close(reader);
	close(originate ? c->up : c->app);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void *pump_main(void *arg)
{
	struct pump *p = arg;
	struct conn *c = p->c;
	char *buf = malloc(BUF_LEN);
	int last;

	/* Signals are blocked in every thread (main() waits for them): no EINTR here. */
	for (ssize_t n = 1; buf && n > 0;) {
		n = read(p->from, buf, BUF_LEN);
		if (n > 0 && p->slot)
			fg_legs_consumed(p->slot, (uint64_t)n);
		for (ssize_t off = 0; n > 0 && off < n;) {
			ssize_t w = send(p->to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

			if (w < 0) {
				n = -1;
				break;
			}
			off += w;
		}
	}
	/* EOF or an error: pass the half-close on; the other direction may go on. */
	shutdown(p->to, SHUT_WR);
	free(buf);
	pthread_mutex_lock(&c->lock);
	last = --c->live == 0;
	pthread_mutex_unlock(&c->lock);
	if (last)
		conn_close(c);
	free(p);
	return NULL;
}

static int dial(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint64_t cookie = 0;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The terminate side's plaintext upstream: announced before connect, as fedgate does. */
	if (!originate && fg_legs_expect(legs, fd, &cookie))
		cookie = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fg_legs_unexpect(legs, cookie);
		close(fd);
		return -1;
	}
	return fd;
}

static int start_pump(struct conn *c, int from, int to, struct fg_legs_slot *slot)
{
	struct pump *p = calloc(1, sizeof(*p));
	pthread_attr_t attr;
	int ret;

	if (!p)
		return -ENOMEM;
	*p = (struct pump){ .c = c, .from = from, .to = to, .slot = slot };
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	ret = -pthread_create(&p->th, &attr, pump_main, p);
	pthread_attr_destroy(&attr);
	if (ret)
		free(p);
	return ret;
}

static void relay(int app, uint16_t to)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1, slot = -1;

	if (!c)
		goto close_app;
	c->app = app;
	c->up = dial(to);
	if (c->up < 0)
		goto free_conn;
	setsockopt(app, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* -ENOENT: this connection is not redirected (no slot): it relays over TCP. */
	if (!fg_legs_claim(legs, originate ? app : c->up, &slot))
		c->slot = fg_legs_slot(legs, slot);
	pthread_mutex_init(&c->lock, NULL);
	c->live = 2;
	if (start_pump(c, app, c->up, originate ? c->slot : NULL)) {
		c->live = 0;
		conn_close(c);
		return;
	}
	if (start_pump(c, c->up, app, originate ? NULL : c->slot)) {
		int last;

		/* Ends the running direction; whichever of us ends last closes the connection. */
		shutdown(app, SHUT_RDWR);
		shutdown(c->up, SHUT_RDWR);
		pthread_mutex_lock(&c->lock);
		last = --c->live == 0;
		pthread_mutex_unlock(&c->lock);
		if (last)
			conn_close(c);
	}
	return;

free_conn:
	free(c);
close_app:
	close(app);
}

static void *listener_main(void *arg)
{
	struct listener *l = arg;

	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0)
			relay(fd, l->to);
		else if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE)
			break;
	}
	return NULL;
}

static int listen_on(struct listener *l, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, ret;

	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -errno;
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(l->fd, 4096))
		return -errno;
	/* Only originate listeners: the terminate side's is fedgate's TLS listener. */
	ret = originate ? fg_legs_listen(legs, l->fd) : 0;
	if (ret)
		return ret;
	return -pthread_create(&l->th, NULL, listener_main, l);
}

static void print_stats(void)
{
	static const char *const names[FG_LEGS_ST_N] = {
		"bytes", "msgs", "tcp_bytes", "over_budget", "sticky", "no_slot", "pairs"
	};
	uint64_t st[FG_LEGS_ST_N];

	if (fg_legs_stats(legs, st))
		return;
	fprintf(stderr, "legs:");
	for (int i = 0; i < FG_LEGS_ST_N; i++)
		fprintf(stderr, " %s=%llu", names[i], (unsigned long long)st[i]);
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	static struct listener ls[MAX_LISTEN];
	char cg[256];
	const char *why = "";
	sigset_t sigs;
	int sig, n = 0, ret;

	if (argc < 2 || (strcmp(argv[1], "probe") && (argc < 3 || argc - 2 > MAX_LISTEN))) {
		fprintf(stderr, "usage: legsrelay originate|terminate PORT:TO [PORT:TO...] | probe\n");
		return 2;
	}
	originate = !strcmp(argv[1], "originate");
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	ret = fg_legs_new(&legs, NULL, FG_LEGS_BUDGET_DEFAULT, 1, cg, sizeof(cg), &why);
	if (ret) {
		fprintf(stderr, "legsrelay: %s (%s)\n", why, strerror(-ret));
		return 2;
	}
	fprintf(stderr, "legsrelay: %s, attached to %s\n", argv[1], cg);
	if (!strcmp(argv[1], "probe"))
		goto stats;
	for (int i = 2; i < argc; i++, n++) {
		unsigned int port, to;

		if (sscanf(argv[i], "%u:%u", &port, &to) != 2 || port > 65535 || to > 65535) {
			fprintf(stderr, "legsrelay: bad PORT:TO %s\n", argv[i]);
			ret = 2;
			goto stats;
		}
		ls[n].to = (uint16_t)to;
		ret = listen_on(&ls[n], (uint16_t)port);
		if (ret) {
			fprintf(stderr, "legsrelay: listen on %u: %s\n", port, strerror(-ret));
			ret = 2;
			goto stats;
		}
	}
	sigwait(&sigs, &sig);
	ret = 0;
stats:
	print_stats();
	/*
	 * Relay threads may still run and store into the slots: the legs (programs, links, maps
	 * and their mapping of the slots) go with the process, as do those threads (open
	 * connections die with it, like socat's children), never before them.
	 */
	return ret;
}
