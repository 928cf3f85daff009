// SPDX-License-Identifier: MIT
/*
 * The CA server's connection table: see serve.h. Connections are capped in
 * all and per source address, and a full table makes room by closing the
 * oldest connection still in its handshake, so idle or hostile sockets cannot
 * lock other clients out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control/ca/ca.h"
#include "control/ca/serve.h"
#include "fedgate/addr.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/log.h"

#define MAX_CONNS_PER_SOURCE 16
#define HANDSHAKE_MS 5000 /* at most; and at most half the request timeout */

/* Takes @c out of the table and epoll, and closes its TLS session and socket. */
static void detach(struct fg_ca_server *s, struct fg_ca_conn *c)
{
	for (size_t i = 0; i < s->n_conns; i++) {
		if (s->conns[i] == c) {
			s->conns[i] = s->conns[--s->n_conns];
			break;
		}
	}
	fg_evloop_del(s->loop, c->fd);
	fg_ca_conn_shut(c);
}

static void conn_close(struct fg_ca_server *s, struct fg_ca_conn *c)
{
	detach(s, c);
	fg_ca_conn_free(c);
}

/* Like conn_close(), but @c stays allocated (marked dead) until fg_ca_conns_reap(). */
static void evict(struct fg_ca_server *s, struct fg_ca_conn *c)
{
	detach(s, c);
	c->dead = 1;
	c->next_dead = s->dead;
	s->dead = c;
}

void fg_ca_conns_reap(struct fg_ca_server *s)
{
	while (s->dead) {
		struct fg_ca_conn *c = s->dead;

		s->dead = c->next_dead;
		fg_ca_conn_free(c);
	}
}

/* The connection accepted first among those still in the handshake (from @host if set). */
static struct fg_ca_conn *oldest_handshake(struct fg_ca_server *s, const char *host)
{
	struct fg_ca_conn *best = NULL;

	for (size_t i = 0; i < s->n_conns; i++) {
		struct fg_ca_conn *c = s->conns[i];

		if (c->st == FG_CA_HANDSHAKE && (!host || !strcmp(c->host, host)) &&
		    (!best || c->seq < best->seq))
			best = c;
	}
	return best;
}

/*
 * Makes room for a connection from @host: past its per-source cap or a full
 * table, the oldest connection still in its handshake (of @host, or of anyone
 * when the table is full) goes. Returns 0, or -EBUSY when every candidate is
 * past its handshake (the new one is then refused).
 */
static int make_room(struct fg_ca_server *s, const char *host)
{
	size_t same = 0;
	struct fg_ca_conn *victim = NULL;
	const char *why = NULL;

	for (size_t i = 0; i < s->n_conns; i++)
		same += !strcmp(s->conns[i]->host, host);
	if (same >= MAX_CONNS_PER_SOURCE) {
		victim = oldest_handshake(s, host);
		why = "connections from one address";
	} else if (s->n_conns == FG_CA_MAX_CONNS) {
		victim = oldest_handshake(s, NULL);
		why = "connections";
	} else {
		return 0;
	}
	if (fg_mono_ms() - s->full_logged > 1000) {
		fg_warn("CA: %zu %s open (%s): %s",
			same >= MAX_CONNS_PER_SOURCE ? same : s->n_conns, why, host,
			victim ? "closing the oldest one still in its TLS handshake"
			       : "refusing new ones");
		s->full_logged = fg_mono_ms();
	}
	if (!victim)
		return -EBUSY;
	evict(s, victim);
	return 0;
}

void fg_ca_conns_step(struct fg_ca_server *s, struct fg_ca_conn *c)
{
	if (!c->dead && fg_ca_conn_step(s, c))
		conn_close(s, c);
}

/* Takes the accepted @fd from @sa into the table, or closes it. */
static void admit(struct fg_ca_server *s, int fd, const struct sockaddr_storage *sa)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port = fg_addr_host(sa, host, sizeof(host));
	struct fg_ca_conn *c = NULL;
	int hs_ms;

	if (make_room(s, host))
		goto close_fd;
	/* A handshake is a few round trips: idle sockets should not hold a slot for long. */
	hs_ms = s->ca->request_timeout_ms / 2;
	c = fg_ca_conn_new(s->ctx, fd, host, port,
			   fg_mono_ms() + (hs_ms < HANDSHAKE_MS ? hs_ms : HANDSHAKE_MS));
	if (!c)
		goto close_fd;
	c->seq = s->seq++;
	if (fg_evloop_add(s->loop, fd, c->events, c))
		goto free_conn;
	s->conns[s->n_conns++] = c;
	fg_ca_conns_step(s, c);
	return;
free_conn:
	fg_ca_conn_free(c); /* closes @fd */
	return;
close_fd:
	close(fd);
}

void fg_ca_conns_accept(struct fg_ca_server *s)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		int fd;

		fd = accept4(s->lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		admit(s, fd, &sa);
	}
}

void fg_ca_conns_sweep(struct fg_ca_server *s)
{
	int64_t now = fg_mono_ms();

	for (size_t i = 0; i < s->n_conns;) {
		struct fg_ca_conn *c = s->conns[i];

		if (now < c->deadline) {
			i++;
			continue;
		}
		if (c->st == FG_CA_READ) {
			c->deadline = now + FG_CA_DRAIN_MS;
			if (fg_ca_reply_error(c, 408, "request not received in time") == 0) {
				fg_ca_conns_step(s, c);
				/* it may have been closed: look at slot i again either way */
				continue;
			}
		}
		if (c->st == FG_CA_HANDSHAKE)
			fg_info("CA: %s: TLS handshake timed out", c->peer);
		conn_close(s, c);
	}
}

int64_t fg_ca_conns_next_deadline(const struct fg_ca_server *s)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; i < s->n_conns; i++)
		if (s->conns[i]->deadline < next)
			next = s->conns[i]->deadline;
	return next;
}

void fg_ca_conns_close_all(struct fg_ca_server *s)
{
	while (s->n_conns)
		conn_close(s, s->conns[0]);
	fg_ca_conns_reap(s);
}
