// SPDX-License-Identifier: MIT
/*
 * Refused TLS sockets, between their alert and their close (see linger.h).
 * Each one is an epoll source of its own and a node in this module's heap of
 * deadlines; the loop waits no longer than the first of them. The count is
 * bounded: past GW_LINGER_MAX a refused socket closes at once, as before, so
 * a flood of refusals never holds more than that many descriptors here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/linger.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/heap.h"
#include "fedgate/log.h"

/* Bytes read and dropped per event: a peer that keeps writing cannot hold the loop. */
#define DRAIN_PER_EVENT 65536

struct lingerer {
	struct gw_src src; /* first: the loop's tag points here */
	int fd;
	struct fg_heap_node deadline; /* key: when it closes, ms on fg_mono_ms() */
};

struct gw_linger {
	struct fg_evloop *loop;
	struct fg_heap deadlines; /* every lingerer's; the heap is also the list of them */
	int said_full;		  /* the cap was logged since the count was last below it */
};

static struct lingerer *of_node(struct fg_heap_node *n)
{
	return (struct lingerer *)((char *)n - offsetof(struct lingerer, deadline));
}

int gw_linger_new(struct gw_linger **out, struct fg_evloop *loop)
{
	struct gw_linger *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->loop = loop;
	fg_heap_init(&l->deadlines);
	*out = l;
	return 0;
}

/* Ends one linger: out of the loop and the heap, closed, freed. */
static void done(struct gw_linger *l, struct lingerer *g)
{
	fg_evloop_del(l->loop, g->fd);
	fg_heap_remove(&l->deadlines, &g->deadline);
	close(g->fd);
	free(g);
}

void gw_linger_free(struct gw_linger *l)
{
	if (!l)
		return;
	while (l->deadlines.n)
		done(l, of_node(l->deadlines.v[0]));
	fg_heap_exit(&l->deadlines);
	free(l);
}

void gw_linger_add(struct gw_linger *l, int fd)
{
	struct lingerer *g = NULL;

	if (fd < 0)
		return;
	if (!l)
		goto close_fd;
	if (l->deadlines.n >= GW_LINGER_MAX) {
		if (!l->said_full)
			fg_info("%d refused connections are lingering: more close at once",
				GW_LINGER_MAX);
		l->said_full = 1;
		goto close_fd;
	}
	/* Our FIN follows the alert: the peer reads both, then its own writes are drained. */
	if (shutdown(fd, SHUT_WR))
		goto close_fd; /* never connected, or reset already: nothing to wait for */
	g = calloc(1, sizeof(*g));
	if (!g)
		goto close_fd;
	g->src.kind = SRC_LINGER;
	g->fd = fd;
	fg_heap_node_init(&g->deadline);
	if (fg_heap_push(&l->deadlines, &g->deadline, (uint64_t)fg_mono_ms() + GW_LINGER_MS))
		goto free_g;
	if (fg_evloop_add(l->loop, fd, EPOLLIN | EPOLLRDHUP, &g->src))
		goto unheap;
	return;

unheap:
	fg_heap_remove(&l->deadlines, &g->deadline);
free_g:
	free(g);
close_fd:
	close(fd);
}

void gw_linger_ready(struct gw_linger *l, struct gw_src *s)
{
	struct lingerer *g = (struct lingerer *)s;
	char buf[16384];

	for (size_t n = 0; n < DRAIN_PER_EVENT; n += sizeof(buf)) {
		ssize_t r = recv(g->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			done(l, g); /* EOF: the peer is done; or it reset: nothing more to read */
			break;
		}
	}
	/* Level-triggered: what is left comes back at the next wait. */
}

int gw_linger_timeout(const struct gw_linger *l)
{
	const struct fg_heap_node *first = l ? fg_heap_min(&l->deadlines) : NULL;
	uint64_t now = (uint64_t)fg_mono_ms();

	if (!first)
		return -1;
	return first->key <= now ? 0 : (int)(first->key - now);
}

void gw_linger_expire(struct gw_linger *l)
{
	uint64_t now = (uint64_t)fg_mono_ms();
	struct fg_heap_node *n;

	if (!l)
		return;
	while ((n = fg_heap_min(&l->deadlines)) && n->key <= now)
		done(l, of_node(n));
	if (l->deadlines.n < GW_LINGER_MAX)
		l->said_full = 0;
}

int gw_linger_drop_oldest(struct gw_linger *l)
{
	struct fg_heap_node *first = l ? fg_heap_min(&l->deadlines) : NULL;

	if (!first)
		return -ENOENT;
	done(l, of_node(first));
	return 0;
}
