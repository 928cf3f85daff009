// SPDX-License-Identifier: MIT
/*
 * A gateway connection's phases after its peer is authorized (conn.c runs
 * the ones before): the destination header inside TLS (transparent and
 * pooled connections: A writes it, B reads it and checks the peer may reach
 * the destination), the dial of the upstream or the destination when
 * terminating, and the PROXY v2 header; then the handoff (conn_handoff.c).
 * Ownership as in conn.c: each phase borrows its connection and returns
 * what comes next. Nothing here calls back into conn.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "control/alert.h"
#include "control/allow.h"
#include "control/conn.h"
#include "control/conn_pool.h"
#include "control/dest.h"
#include "control/gateway.h"
#include "control/local_redirect.h"
#include "control/proxyv2.h"
#include "control/sock.h"
#include "fedgate/addr.h"
#include "fedgate/evloop.h"
#include "fedgate/log.h"
#include "fedgate/net.h"

#define STEP_WAIT GW_STEP_WAIT
#define STEP_DONE GW_STEP_DONE

static enum gw_step send_proxy_header(struct gw *gw, struct gw_conn *c);

/*
 * A: the destination header and the application's first bytes, one record
 * right after our Finished, so B can dial at once: no round trip is added.
 * A write that cannot finish now is retried with the same bytes, as OpenSSL
 * requires.
 */
enum gw_step gw_conn_send_dest(struct gw *gw, struct gw_conn *c)
{
	ssize_t n;
	int ret, err;

	if (!c->hdr) {
		c->hdr = malloc(FG_DEST_FLIGHT_MAX);
		if (!c->hdr)
			return gw_conn_refuse(c, c->peer, "out of memory");
		n = fg_dest_flight(c->hdr, (struct sockaddr *)&c->app, (struct sockaddr *)&c->dst,
				   c->t->name, c->plain_fd, &c->app_len);
		if (n < 0)
			return gw_conn_refuse(c, c->peer, "destination header: %s",
					      strerror((int)-n));
		c->hdr_len = (size_t)n;
		gw_lr_read(c, c->app_len);
	}
	ERR_clear_error();
	ret = SSL_write(c->ssl, c->hdr, (int)c->hdr_len);
	if (ret > 0)
		return gw_conn_handoff(gw, c);
	err = SSL_get_error(c->ssl, ret);
	if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
		c->state = CONN_SEND_DEST;
		ret = gw_conn_watch(gw, c, c->tls_fd,
				    err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
		if (ret)
			return gw_conn_refuse(c, c->peer, "epoll: %s", strerror(-ret));
		return STEP_WAIT;
	}
	return gw_conn_refuse(c, c->peer, "peer gateway closed before the destination header");
}

/*
 * B: the header names the application and its destination; the peer may
 * reach only what a rule that admits it lists (none by default).
 */
enum gw_step gw_conn_recv_dest(struct gw *gw, struct gw_conn *c)
{
	char app[INET6_ADDRSTRLEN + 8], dst[INET6_ADDRSTRLEN + 8];
	struct fg_pp2_addrs h;
	int ret;

	if (!c->hdr) {
		c->hdr = malloc(FG_DEST_FLIGHT_MAX);
		if (!c->hdr)
			return gw_conn_refuse(c, c->peer, "out of memory");
		c->hdr_len = 0;
	}
	/* SSL_get_error() reads the thread's error queue: nothing older may be in it. */
	ERR_clear_error();
	ret = fg_dest_read_header(c->ssl, c->hdr, &c->hdr_len, &h);
	if (ret == -EAGAIN || ret == -EALREADY) {
		c->state = CONN_RECV_DEST;
		ret = gw_conn_watch(gw, c, c->tls_fd, ret == -EAGAIN ? EPOLLIN : EPOLLOUT);
		if (ret)
			return gw_conn_refuse(c, c->peer, "epoll: %s", strerror(-ret));
		return STEP_WAIT;
	}
	if (ret == -EPROTO) {
		fg_alert_send(c->ssl, &c->st, c->tls_fd, FG_ALERT_DECODE_ERROR);
		return gw_conn_refuse(c, c->peer,
				      "no valid PROXY v2 destination header (TCP over "
				      "IPv4 or IPv6) as the first bytes");
	}
	if (ret && c->pool_role == GW_POOL_WAITING) {
		/* Its originate closed it unused (pool.idle_s, or a change): no refusal. */
		fg_debug("tunnel %s: pooled connection from %s closed unused", c->t->name, c->addr);
		return STEP_DONE;
	}
	if (ret)
		return gw_conn_refuse(c, c->peer,
				      "connection closed before its destination header");
	if (gw_pool_unwait(gw, c))
		return gw_conn_refuse(c, c->peer, "out of memory");
	/* A pooled connection on a tunnel with one upstream: the header only said "go". */
	if (!c->t->transparent)
		return gw_conn_dial_upstream(gw, c);
	c->app = h.src;
	c->dst = h.dst;
	fg_addr_text(&c->app, app, sizeof(app));
	fg_addr_text(&c->dst, dst, sizeof(dst));
	snprintf(c->flow, sizeof(c->flow), "%s -> %s", app, dst);
	if (fg_allow_reach(c->t->allow, c->t->n_allow, c->peer, (struct sockaddr *)&c->dst)) {
		gw_conn_access_denied(c);
		return gw_conn_refuse(c, c->peer, "destination %s not in reach", dst);
	}
	return gw_conn_dial_upstream(gw, c);
}

/* The upstream's address for log lines: the configured one, or the destination. */
static const char *upstream_text(const struct gw_conn *c, char *buf, size_t len)
{
	if (!c->t->transparent)
		return c->t->target.text;
	fg_addr_text(&c->dst, buf, len);
	return buf;
}

/*
 * Terminate: only an authorized peer makes the upstream see a connection. A
 * destination that does not answer resets the tunnel, as a failed connect
 * over a VPN would.
 */
enum gw_step gw_conn_dial_upstream(struct gw *gw, struct gw_conn *c)
{
	const struct sockaddr *to = (const struct sockaddr *)&c->t->target.sa;
	socklen_t len = c->t->target.len;
	char buf[INET6_ADDRSTRLEN + 8];
	int ret;

	if (c->t->transparent) {
		to = (const struct sockaddr *)&c->dst;
		len = fg_sockaddr_len(&c->dst);
		c->reset_tls = 1;
	}
	ret = fg_sock_dial_with(to, len, gw_conn_mark(c), gw_lr_expect, c, &c->plain_fd);
	if (ret)
		return gw_conn_refuse(c, c->peer, "upstream %s: %s",
				      upstream_text(c, buf, sizeof(buf)), strerror(-ret));
	c->state = CONN_DIAL_UPSTREAM;
	ret = gw_conn_watch(gw, c, c->plain_fd, EPOLLOUT);
	if (ret)
		return gw_conn_refuse(c, c->peer, "epoll: %s", strerror(-ret));
	return STEP_WAIT;
}

enum gw_step gw_conn_upstream_dialed(struct gw *gw, struct gw_conn *c)
{
	char buf[INET6_ADDRSTRLEN + 8];
	int ret = fg_sock_dial_result(c->plain_fd);

	if (ret)
		return gw_conn_refuse(c, c->peer, "upstream %s unreachable: %s",
				      upstream_text(c, buf, sizeof(buf)), strerror(-ret));
	gw_lr_claim(c, c->plain_fd);
	if (c->t->proxy_v2)
		return send_proxy_header(gw, c);
	return gw_conn_handoff(gw, c);
}

static enum gw_step send_proxy_header(struct gw *gw, struct gw_conn *c)
{
	struct sockaddr_storage src, dst;
	socklen_t sl = sizeof(src), dl = sizeof(dst);
	uint8_t buf[FG_PP2_MAX];
	char up[INET6_ADDRSTRLEN + 8];
	const char *sni;
	ssize_t n;

	/* Transparent: the service sees the application, not the gateway in front of it. */
	if (c->t->transparent) {
		src = c->app;
		dst = c->dst;
	} else if (getpeername(c->tls_fd, (struct sockaddr *)&src, &sl) ||
		   getsockname(c->tls_fd, (struct sockaddr *)&dst, &dl)) {
		return gw_conn_refuse(c, c->peer, "getpeername: %s", strerror(errno));
	}
	sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
	n = fg_proxyv2_build(buf, sizeof(buf), (struct sockaddr *)&src, (struct sockaddr *)&dst,
			     c->peer, sni, SSL_get_cipher_name(c->ssl), c->t->name);
	if (n < 0)
		return gw_conn_refuse(c, c->peer, "cannot build PROXY v2 header: %s",
				      strerror((int)-n));
	/* A fresh connection's send buffer always takes a few KiB at once. */
	if (send(c->plain_fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
		return gw_conn_refuse(c, c->peer, "upstream %s: cannot send PROXY header: %s",
				      upstream_text(c, up, sizeof(up)), strerror(errno));
	return gw_conn_handoff(gw, c);
}

void gw_conn_access_denied(struct gw_conn *c)
{
	fg_alert_send(c->ssl, &c->st, c->tls_fd, FG_ALERT_ACCESS_DENIED);
}
