// SPDX-License-Identifier: MIT
/*
 * One gateway connection, in the order it runs: accept (a capture tunnel
 * finds the route for the application's destination), dial (the peer gateway
 * when originating), the non-blocking TLS handshake, authorization of the
 * verified peer, the destination header inside TLS (transparent tunnels: A
 * writes it, B reads it and checks the peer may reach it), dial (the upstream
 * or the destination when terminating), the PROXY v2 header, and the handoff
 * of both sockets and the session keys to the data plane (the last phase, in
 * conn_handoff.c).
 *
 * Ownership: a phase borrows its connection and returns what comes next,
 * STEP_WAIT (it waits on its fd) or STEP_DONE (refused or handed off). Only
 * the entry points that loop.c calls (gw_conn_accept, gw_conn_ready,
 * gw_conn_expire) free connections, and only on STEP_DONE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "control/admit.h"
#include "control/allow.h"
#include "control/conn.h"
#include "control/conn_pool.h"
#include "control/dest.h"
#include "control/gateway.h"
#include "control/hs_thread.h"
#include "control/identity.h"
#include "control/linger.h"
#include "control/pool.h"
#include "control/local_redirect.h"
#include "control/roots.h"
#include "control/route.h"
#include "control/sock.h"
#include "control/tls.h"
#include "fedgate/addr.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/heap.h"
#include "fedgate/log.h"
#include "fedgate/net.h"
#include "fedgate/record.h"
#include "fedgate/tls13.h"

/* Each phase returns what comes next (control/conn.h). */
#define STEP_WAIT GW_STEP_WAIT
#define STEP_DONE GW_STEP_DONE

/* The phases, in the order they run. */
static enum gw_step await_hello(struct gw *gw, struct gw_conn *c);
static enum gw_step route_app(struct gw *gw, struct gw_conn *c);
static enum gw_step dial_peer(struct gw *gw, struct gw_conn *c);
static enum gw_step peer_dialed(struct gw *gw, struct gw_conn *c);
static enum gw_step start_handshake(struct gw *gw, struct gw_conn *c, int on_loop);
static enum gw_step handshake(struct gw *gw, struct gw_conn *c);
static enum gw_step authorize(struct gw *gw, struct gw_conn *c);
static enum gw_step await_ticket(struct gw *gw, struct gw_conn *c);
static enum gw_step authorized(struct gw *gw, struct gw_conn *c);
static enum gw_step pooled(struct gw *gw, struct gw_conn *c);

/* Accepts per listener and loop round, at most: a backlog drains, other events still run. */
#define ACCEPT_BATCH 32

/*
 * One connection off @l's backlog, admitted (admit.c: room is made by
 * shedding the oldest unauthenticated ones) and started. Returns 0, or 1
 * when the backlog is empty or @l paused.
 */
static int accept_one(struct gw *gw, struct gw_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct gw_conn *c;
	enum gw_step next;
	int fd, err, one = 1, retried = 0;

again:
	fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 1;
		if (errno == ECONNABORTED || errno == EINTR)
			return 0;
		err = errno;
		/* A lingering refusal goes first: cheaper than a handshake that may succeed. */
		if ((err == EMFILE || err == ENFILE) && !retried++ &&
		    (!gw_linger_drop_oldest(gw->linger) || !gw_conn_shed_oldest(gw))) {
			sl = sizeof(ss);
			goto again;
		}
		gw_admit_accept_failed(gw, l, err);
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* At a tunnel cap: a reset before the ClientHello is read (admit.h). */
	if (l->t->mode == FG_MODE_TERMINATE && gw_admit_tunnel(gw, l->t)) {
		fg_sock_close_reset(fd);
		return 0;
	}
	if (l->t->mode == FG_MODE_TERMINATE)
		gw_conn_make_room(gw, &ss);
	c = gw_conn_new(gw, l->t);
	if (!c) {
		close(fd);
		return 0;
	}
	if (l->t->mode == FG_MODE_ORIGINATE)
		gw_lr_claim(c, fd);
	/* ... and before the peer is dialed; freeing resets the application's socket. */
	if (l->t->mode == FG_MODE_ORIGINATE && gw_admit_tunnel(gw, l->t)) {
		c->plain_fd = fd;
		gw_conn_free(gw, c);
		return 0;
	}
	if (l->t->mode == FG_MODE_TERMINATE) {
		c->tls_fd = fd;
		fg_addr_text(&ss, c->addr, sizeof(c->addr));
		if (gw_admit_join(gw, c, &ss))
			next = gw_conn_refuse(c, NULL, "out of memory");
		else
			next = await_hello(gw, c);
	} else if (l->t->capture) {
		c->plain_fd = fd;
		next = route_app(gw, c);
	} else {
		c->plain_fd = fd;
		snprintf(c->addr, sizeof(c->addr), "%s", l->t->target.text);
		next = gw_pool_take(gw, c) ? pooled(gw, c) : dial_peer(gw, c);
	}
	if (next == STEP_DONE)
		gw_conn_free(gw, c);
	return 0;
}

void gw_conn_accept(struct gw *gw, struct gw_listener *l)
{
	for (int i = 0; i < ACCEPT_BATCH && !gw->fatal && !l->paused_until; i++)
		if (accept_one(gw, l))
			break;
}

void gw_conn_ready(struct gw *gw, struct gw_conn *c)
{
	enum gw_step next = STEP_DONE;

	switch (c->state) {
	case CONN_HELLO:
		next = await_hello(gw, c);
		break;
	case CONN_DIAL_PEER:
		next = peer_dialed(gw, c);
		break;
	case CONN_HANDSHAKE:
		next = handshake(gw, c);
		break;
	case CONN_SEND_DEST:
		next = gw_conn_send_dest(gw, c);
		break;
	case CONN_RECV_DEST:
		next = gw_conn_recv_dest(gw, c);
		break;
	case CONN_DIAL_UPSTREAM:
		next = gw_conn_upstream_dialed(gw, c);
		break;
	case CONN_POOLED:
		next = gw_pool_readable(gw, c);
		break;
	case CONN_TICKET:
		next = await_ticket(gw, c);
		break;
	}
	if (next == STEP_DONE)
		gw_conn_free(gw, c);
}

void gw_conn_expire(struct gw *gw)
{
	uint64_t now = (uint64_t)fg_mono_ms();
	struct fg_heap_node *n;

	/* Only the connections that are due: a flood of thousands is not walked. */
	while ((n = fg_heap_min(&gw->deadlines)) && n->key <= now) {
		struct gw_conn *c =
		    (struct gw_conn *)((char *)n - offsetof(struct gw_conn, deadline));

		/* No ticket in time: the connection goes on without one. */
		if (c->state == CONN_TICKET && c->ticket_restore > now) {
			gw_resume_wait_end(gw, c, 1);
			if (authorized(gw, c) == STEP_DONE)
				gw_conn_free(gw, c);
			continue;
		}
		if (c->state == CONN_POOLED || c->pool_role == GW_POOL_WAITING)
			gw_pool_expired(gw, c);
		else
			gw_conn_refuse(c, NULL, "handshake timed out after %d ms",
				       c->gen->cfg->handshake_timeout_ms);
		gw_conn_free(gw, c);
	}
}

/*
 * Terminate: an unauthenticated client costs no TLS session (tens of KiB in
 * OpenSSL) until the first record of its ClientHello is whole in the socket,
 * so a flood of silent or one-byte-a-second sockets holds only its
 * connection. Anything that is not a handshake record, an overlong one, or a
 * socket the client has closed or reset goes to OpenSSL at once, which reads
 * it and reports (or alerts) as for any client. Edge-triggered: a partial
 * record that stays in the socket must not wake the loop again and again.
 */
static enum gw_step await_hello(struct gw *gw, struct gw_conn *c)
{
	uint8_t h[FG_TLS_HDR];
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	int avail = 0, ret;
	size_t rec_len;
	ssize_t n = recv(c->tls_fd, h, sizeof(h), MSG_PEEK);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		goto wait;
	/* What OpenSSL refuses at its first read stays here: garbage waits for no thread. */
	if (n <= 0 || ioctl(c->tls_fd, FIONREAD, &avail) || h[0] != FG_CT_HANDSHAKE ||
	    getsockopt(c->tls_fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) ||
	    ti.tcpi_state != TCP_ESTABLISHED)
		return start_handshake(gw, c, 1);
	rec_len = (size_t)h[3] << 8 | h[4];
	if (n == (ssize_t)sizeof(h) && rec_len > FG_TLS_MAX_PLAIN)
		return start_handshake(gw, c, 1);
	if (n == (ssize_t)sizeof(h) && (size_t)avail >= sizeof(h) + rec_len)
		return start_handshake(gw, c, 0);
wait:
	c->state = CONN_HELLO;
	ret = gw_conn_watch(gw, c, c->tls_fd, EPOLLIN | EPOLLRDHUP | EPOLLET);
	if (ret)
		return gw_conn_refuse(c, NULL, "epoll: %s", strerror(-ret));
	return STEP_WAIT;
}

/*
 * A capture tunnel: the application dialed some address; the route for it
 * names the peer gateway. No route: refused (default deny), with a reset.
 */
static enum gw_step route_app(struct gw *gw, struct gw_conn *c)
{
	const struct fg_config *cfg = c->gen->cfg;
	char app[INET6_ADDRSTRLEN + 8], dst[INET6_ADDRSTRLEN + 8];
	int ret;

	ret = fg_dest_source(c->plain_fd, &c->app);
	if (!ret)
		ret = fg_dest_original(c->plain_fd, c->t->capture, &c->dst);
	fg_addr_text(&c->app, app, sizeof(app));
	snprintf(c->addr, sizeof(c->addr), "%s", app);
	if (ret)
		return gw_conn_refuse(c, NULL, "no original destination (%s): was it captured?",
				      strerror(-ret));
	fg_addr_text(&c->dst, dst, sizeof(dst));
	snprintf(c->flow, sizeof(c->flow), "%s -> %s", app, dst);
	c->route = fg_route_find(cfg->routes, cfg->n_routes, (struct sockaddr *)&c->dst);
	if (!c->route)
		return gw_conn_refuse(c, NULL, "no route to %s", dst);
	snprintf(c->addr, sizeof(c->addr), "%s", c->route->peer.text);
	if (gw_pool_take(gw, c))
		return gw_conn_send_dest(gw, c);
	return dial_peer(gw, c);
}

/*
 * Originate, not capturing: @c took a pooled connection. The terminate side
 * waits for a destination header before it dials its upstream (pool.h):
 * this one names the application and the address it reached us at.
 */
static enum gw_step pooled(struct gw *gw, struct gw_conn *c)
{
	socklen_t len = sizeof(c->dst);
	int ret = fg_dest_source(c->plain_fd, &c->app);

	if (!ret && getsockname(c->plain_fd, (struct sockaddr *)&c->dst, &len))
		ret = -errno;
	if (ret)
		return gw_conn_refuse(c, c->peer, "application socket: %s", strerror(-ret));
	fg_sockaddr_unmap(&c->dst);
	return gw_conn_send_dest(gw, c);
}

/* Originate: the app is accepted; only now does the peer gateway see a connection. */
static enum gw_step dial_peer(struct gw *gw, struct gw_conn *c)
{
	const struct fg_addr *to = c->route ? &c->route->peer : &c->t->target;
	int ret =
	    fg_sock_dial((const struct sockaddr *)&to->sa, to->len, gw_conn_mark(c), &c->tls_fd);

	if (!ret) {
		c->state = CONN_DIAL_PEER;
		ret = gw_conn_watch(gw, c, c->tls_fd, EPOLLOUT);
	}
	if (ret)
		return gw_conn_refuse(c, NULL, "cannot dial peer gateway: %s", strerror(-ret));
	return STEP_WAIT;
}

static enum gw_step peer_dialed(struct gw *gw, struct gw_conn *c)
{
	int ret = fg_sock_dial_result(c->tls_fd);

	if (ret)
		return gw_conn_refuse(c, NULL, "peer gateway unreachable: %s", strerror(-ret));
	return start_handshake(gw, c, 0);
}

/* @on_loop: run it here (it fails at once), never on a handshake thread. */
static enum gw_step start_handshake(struct gw *gw, struct gw_conn *c, int on_loop)
{
	int is_server = c->t->mode == FG_MODE_TERMINATE;
	const char *sni = c->route ? c->route->server_name : c->t->server_name;

	c->st.pool_ok = is_server && c->t->pool_max > 0;
	c->ssl = fg_tls_conn_new(&c->tls, is_server, c->tls_fd, sni, &c->st);
	if (!c->ssl || gw_resume_start(c))
		return gw_conn_refuse(c, NULL, "cannot create TLS session");
	if (c->pool_role == GW_POOL_FILLER && fg_pool_offer(c->ssl))
		return gw_conn_refuse(c, NULL, "out of memory");
	c->state = CONN_HANDSHAKE;
	/* On a handshake thread if any: gw_conn_handshakes_done() takes the outcome. */
	if (!on_loop && !gw_hs_submit(gw, c))
		return STEP_WAIT;
	return handshake(gw, c);
}

static enum gw_step handshake(struct gw *gw, struct gw_conn *c)
{
	uint32_t events = 0;
	int ret = gw_hs_step(c, &events);

	if (ret == -EAGAIN) {
		ret = gw_conn_watch(gw, c, c->tls_fd, events);
		if (ret)
			return gw_conn_refuse(c, NULL, "epoll: %s", strerror(-ret));
		return STEP_WAIT;
	}
	return ret ? gw_conn_refuse_handshake(c, ret) : authorize(gw, c);
}

void gw_conn_handshakes_done(struct gw *gw)
{
	struct gw_conn *c;
	int ret;

	while ((c = gw_hs_take(gw, &ret))) {
		/* Asked back by admission: shed as it would have been on the loop. */
		if (ret == -ECANCELED)
			gw_conn_shed(gw, c);
		else if ((ret ? gw_conn_refuse_handshake(c, ret) : authorize(gw, c)) == STEP_DONE)
			gw_conn_free(gw, c);
	}
}

/*
 * The chain verified in the handshake; now the generation the connection
 * started under decides whether its root may vouch for these names and
 * whether the tunnel admits them.
 */
static enum gw_step authorize(struct gw *gw, struct gw_conn *c)
{
	const struct fg_config *cfg = c->gen->cfg;
	const struct fg_allow_rule *allow = c->route ? c->route->allow : c->t->allow;
	size_t n_allow = c->route ? c->route->n_allow : c->t->n_allow;
	STACK_OF(X509) *chain = NULL;
	char why[1024];
	int ret;

	/* Allocated only now: a pending handshake must stay small (about 17 KiB of names). */
	c->peer = calloc(1, sizeof(*c->peer));
	if (!c->peer)
		return gw_conn_refuse(c, NULL, "out of memory");
	/* Resumed: the peer the session kept, checked against today's rules as if new. */
	ret = gw_resume_verified(c, &chain, why, sizeof(why));
	if (ret == -ENOMEM)
		return gw_conn_refuse(c, NULL, "out of memory");
	if (ret || fg_tls_peer_of(SSL_get0_peer_certificate(c->ssl), chain, c->peer)) {
		sk_X509_pop_free(chain, X509_free);
		gw_conn_access_denied(c);
		return gw_conn_refuse(c, NULL, "%s", ret ? why : "peer certificate not verified");
	}
	ret =
	    fg_roots_check(cfg->root_rules, cfg->n_root_rules,
			   sk_X509_value(chain, sk_X509_num(chain) - 1), c->peer, why, sizeof(why));
	sk_X509_pop_free(chain, X509_free);
	if (ret) {
		gw_conn_access_denied(c);
		return gw_conn_refuse(c, c->peer, "name constraints: %s", why);
	}
	if (fg_allow_check(allow, n_allow, c->peer, why, sizeof(why))) {
		gw_conn_access_denied(c);
		return gw_conn_refuse(c, c->peer, "%s", why);
	}
	/* Idle in its pool, it reads its tickets there (gw_pool_readable): no wait here. */
	if (c->pool_role == GW_POOL_FILLER)
		return gw_pool_park_conn(gw, c);
	if (gw_resume_ticket_due(c)) {
		gw_resume_wait_begin(gw, c);
		return await_ticket(gw, c);
	}
	return authorized(gw, c);
}

/*
 * Originate, resumption on, no ticket for this peer yet: its
 * NewSessionTicket comes about a round trip after our Finished and is read
 * here, as the data plane would skip it. The wait is bounded (expired in
 * gw_conn_expire); what else the peer sends goes to the application first.
 */
static enum gw_step await_ticket(struct gw *gw, struct gw_conn *c)
{
	int ret = gw_resume_read_ticket(c);

	c->state = CONN_TICKET;
	if (ret == -EAGAIN) {
		ret = gw_conn_watch(gw, c, c->tls_fd, EPOLLIN);
		if (ret)
			return gw_conn_refuse(c, c->peer, "epoll: %s", strerror(-ret));
		return STEP_WAIT;
	}
	gw_resume_wait_end(gw, c, 0);
	if (ret)
		return gw_conn_refuse(c, c->peer, "while reading its session ticket: %s",
				      ret == -EPIPE ? "peer gateway closed" : strerror(-ret));
	return authorized(gw, c);
}

/* The peer is admitted: what comes next on this side. */
static enum gw_step authorized(struct gw *gw, struct gw_conn *c)
{
	if (c->route)
		return gw_conn_send_dest(gw, c);
	if (c->t->mode == FG_MODE_ORIGINATE)
		return gw_conn_handoff(gw, c);
	if (fg_pool_agreed(c->ssl)) {
		int ret = gw_pool_wait_conn(gw, c);

		if (ret == -EUSERS)
			return gw_conn_refuse(c, c->peer,
					      "pool.max: %d pooled connections wait already",
					      c->t->pool_max);
		if (ret)
			return gw_conn_refuse(c, c->peer, "out of memory");
		return gw_conn_recv_dest(gw, c);
	}
	if (c->t->transparent)
		return gw_conn_recv_dest(gw, c);
	return gw_conn_dial_upstream(gw, c);
}
