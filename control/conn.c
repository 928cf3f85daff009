// SPDX-License-Identifier: MIT
/*
 * One gateway connection, in the order it runs: accept, dial (the peer
 * gateway when originating), the non-blocking TLS handshake, authorization of
 * the verified peer, dial (the upstream when terminating), the PROXY v2 header,
 * and the handoff of both sockets and the session keys to the data plane.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "control/allow.h"
#include "control/gateway.h"
#include "control/identity.h"
#include "control/keys.h"
#include "control/proxyv2.h"
#include "control/roots.h"
#include "control/tls.h"
#include "fedgate/addr.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/handoff.h"
#include "fedgate/log.h"
#include "fedgate/record.h"
#include "fedgate/tls13.h"

enum step { STEP_WAIT, STEP_DONE };

/* The phases, in the order they run. */
static enum step dial_peer(struct gw *gw, struct gw_conn *c);
static enum step peer_dialed(struct gw *gw, struct gw_conn *c);
static enum step start_handshake(struct gw *gw, struct gw_conn *c);
static enum step handshake(struct gw *gw, struct gw_conn *c);
static enum step authorize(struct gw *gw, struct gw_conn *c);
static enum step dial_upstream(struct gw *gw, struct gw_conn *c);
static enum step upstream_dialed(struct gw *gw, struct gw_conn *c);
static enum step send_proxy_header(struct gw *gw, struct gw_conn *c);
static enum step handoff(struct gw *gw, struct gw_conn *c);

/* What the phases share. */
static enum step log_refusal(const struct gw_conn *c, const struct fg_peer_id *who,
			     const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void send_access_denied(struct gw_conn *c);
static int watch(struct gw *gw, struct gw_conn *c, int fd, uint32_t events);
static int dial(const struct fg_addr *to, int *fd_out);
static int dial_result(int fd);
static struct gw_conn *conn_new(struct gw *gw, const struct fg_tunnel_conf *t);
static void conn_free(struct gw *gw, struct gw_conn *c);

void gw_conn_accept(struct gw *gw, struct gw_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct gw_conn *c;
	enum step next;
	int fd, one = 1;

	fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != ECONNABORTED)
			fg_warn("tunnel %s: accept: %s", l->t->name, strerror(errno));
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(gw, l->t);
	if (!c) {
		close(fd);
		return;
	}
	if (l->t->mode == FG_MODE_TERMINATE) {
		c->tls_fd = fd;
		fg_addr_text(&ss, c->addr, sizeof(c->addr));
		next = start_handshake(gw, c);
	} else {
		c->plain_fd = fd;
		snprintf(c->addr, sizeof(c->addr), "%s", l->t->target.text);
		next = dial_peer(gw, c);
	}
	if (next == STEP_DONE)
		conn_free(gw, c);
}

void gw_conn_ready(struct gw *gw, struct gw_conn *c)
{
	enum step next = STEP_DONE;

	switch (c->state) {
	case CONN_DIAL_PEER:
		next = peer_dialed(gw, c);
		break;
	case CONN_HANDSHAKE:
		next = handshake(gw, c);
		break;
	case CONN_DIAL_UPSTREAM:
		next = upstream_dialed(gw, c);
		break;
	}
	if (next == STEP_DONE)
		conn_free(gw, c);
}

void gw_conn_expire(struct gw *gw)
{
	uint64_t now = fg_mono_ms();
	struct gw_conn *c = gw->conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->deadline_ms > now)
			continue;
		log_refusal(c, NULL, "handshake timed out after %d ms",
			    c->gen->cfg->handshake_timeout_ms);
		conn_free(gw, c);
	}
}

/* Originate: the app is accepted; only now does the peer gateway see a connection. */
static enum step dial_peer(struct gw *gw, struct gw_conn *c)
{
	int ret = dial(&c->t->target, &c->tls_fd);

	if (!ret) {
		c->state = CONN_DIAL_PEER;
		ret = watch(gw, c, c->tls_fd, EPOLLOUT);
	}
	if (ret)
		return log_refusal(c, NULL, "cannot dial peer gateway: %s", strerror(-ret));
	return STEP_WAIT;
}

static enum step peer_dialed(struct gw *gw, struct gw_conn *c)
{
	int ret = dial_result(c->tls_fd);

	if (ret)
		return log_refusal(c, NULL, "peer gateway unreachable: %s", strerror(-ret));
	return start_handshake(gw, c);
}

static enum step start_handshake(struct gw *gw, struct gw_conn *c)
{
	int is_server = c->t->mode == FG_MODE_TERMINATE;

	c->ssl = fg_tls_conn_new(&c->tls, is_server, c->tls_fd, c->t->server_name, &c->st);
	if (!c->ssl)
		return log_refusal(c, NULL, "cannot create TLS session");
	c->state = CONN_HANDSHAKE;
	return handshake(gw, c);
}

static enum step handshake(struct gw *gw, struct gw_conn *c)
{
	char ebuf[256];
	int ret, err;

	ERR_clear_error();
	ret = SSL_do_handshake(c->ssl);
	if (ret == 1)
		return authorize(gw, c);
	err = SSL_get_error(c->ssl, ret);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		ret = watch(gw, c, c->tls_fd, err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
		if (ret)
			return log_refusal(c, NULL, "epoll: %s", strerror(-ret));
		return STEP_WAIT;
	}
	if (c->st.verify_error)
		return log_refusal(c, &c->st.failed,
				   "certificate verification failed at depth %d: %s",
				   c->st.verify_depth,
				   X509_verify_cert_error_string(c->st.verify_error));
	if (err == SSL_ERROR_SSL)
		return log_refusal(c, NULL, "TLS handshake failed: %s",
				   fg_tls_error(ebuf, sizeof(ebuf)));
	return log_refusal(c, NULL, "connection closed during the TLS handshake");
}

/*
 * The chain verified in the handshake; now the generation the connection
 * started under decides whether its root may vouch for these names and
 * whether the tunnel admits them.
 */
static enum step authorize(struct gw *gw, struct gw_conn *c)
{
	const struct fg_config *cfg = c->gen->cfg;
	STACK_OF(X509) *chain;
	char why[1024];

	if (fg_tls_peer(c->ssl, &c->peer))
		return log_refusal(c, NULL, "peer certificate not verified");
	chain = SSL_get0_verified_chain(c->ssl);
	if (fg_roots_check(cfg->root_rules, cfg->n_root_rules,
			   sk_X509_value(chain, sk_X509_num(chain) - 1), &c->peer, why,
			   sizeof(why))) {
		send_access_denied(c);
		return log_refusal(c, &c->peer, "name constraints: %s", why);
	}
	if (fg_allow_check(c->t->allow, c->t->n_allow, &c->peer, why, sizeof(why))) {
		send_access_denied(c);
		return log_refusal(c, &c->peer, "%s", why);
	}
	if (c->t->mode == FG_MODE_ORIGINATE)
		return handoff(gw, c);
	return dial_upstream(gw, c);
}

/* Terminate: only an authorized peer makes the upstream see a connection. */
static enum step dial_upstream(struct gw *gw, struct gw_conn *c)
{
	int ret = dial(&c->t->target, &c->plain_fd);

	if (ret)
		return log_refusal(c, &c->peer, "upstream %s: %s", c->t->target.text,
				   strerror(-ret));
	c->state = CONN_DIAL_UPSTREAM;
	ret = watch(gw, c, c->plain_fd, EPOLLOUT);
	if (ret)
		return log_refusal(c, &c->peer, "epoll: %s", strerror(-ret));
	return STEP_WAIT;
}

static enum step upstream_dialed(struct gw *gw, struct gw_conn *c)
{
	int ret = dial_result(c->plain_fd);

	if (ret)
		return log_refusal(c, &c->peer, "upstream %s unreachable: %s", c->t->target.text,
				   strerror(-ret));
	if (c->t->proxy_v2)
		return send_proxy_header(gw, c);
	return handoff(gw, c);
}

static enum step send_proxy_header(struct gw *gw, struct gw_conn *c)
{
	struct sockaddr_storage src, dst;
	socklen_t sl = sizeof(src), dl = sizeof(dst);
	uint8_t buf[FG_PP2_MAX];
	const char *sni;
	ssize_t n;

	if (getpeername(c->tls_fd, (struct sockaddr *)&src, &sl) ||
	    getsockname(c->tls_fd, (struct sockaddr *)&dst, &dl))
		return log_refusal(c, &c->peer, "getpeername: %s", strerror(errno));
	sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
	n = fg_proxyv2_build(buf, sizeof(buf), (struct sockaddr *)&src, (struct sockaddr *)&dst,
			     &c->peer, sni, SSL_get_cipher_name(c->ssl), c->t->name);
	if (n < 0)
		return log_refusal(c, &c->peer, "cannot build PROXY v2 header: %s",
				   strerror((int)-n));
	/* A fresh connection's send buffer always takes a few KiB at once. */
	if (send(c->plain_fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
		return log_refusal(c, &c->peer, "upstream %s: cannot send PROXY header: %s",
				   c->t->target.text, strerror(errno));
	return handoff(gw, c);
}

/*
 * The last phase, whatever happens: both sockets and the session keys go to
 * the next data plane worker (a failure to send stops the gateway: the data
 * plane is gone), and the connection is done here.
 */
static enum step handoff(struct gw *gw, struct gw_conn *c)
{
	struct fg_handoff *h;
	char desc[2048];
	int ret, sock;

	h = calloc(1, sizeof(*h));
	if (!h)
		return log_refusal(c, &c->peer, "out of memory");
	h->magic = FG_HANDOFF_MAGIC;
	/* Plaintext OpenSSL already decrypted must reach the plain side first. */
	while (SSL_pending(c->ssl) > 0 && h->preread_len < FG_HANDOFF_PREREAD_MAX) {
		int n = SSL_read(c->ssl, h->preread + h->preread_len,
				 (int)(FG_HANDOFF_PREREAD_MAX - h->preread_len));

		if (n <= 0)
			break;
		h->preread_len += (uint32_t)n;
	}
	if (SSL_pending(c->ssl) > 0) {
		log_refusal(c, &c->peer, "more buffered plaintext than a handoff carries");
		goto wipe;
	}
	ret = fg_keys_export(c->ssl, &c->st, &h->keys);
	if (ret) {
		log_refusal(c, &c->peer, "cannot export session keys: %s", strerror(-ret));
		goto wipe;
	}
	snprintf(h->tunnel, sizeof(h->tunnel), "%s", c->t->name);
	fg_peer_describe(&c->peer, desc, sizeof(desc));
	snprintf(h->peer, sizeof(h->peer), "%s", c->peer.cn[0] ? c->peer.cn : c->addr);
	SSL_free(c->ssl);
	c->ssl = NULL;

	sock = gw->dp_socks[gw->next_dp];
	gw->next_dp = (gw->next_dp + 1) % gw->n_dp;
	ret = fg_handoff_send(sock, h, c->plain_fd, c->tls_fd);
	if (ret) {
		fg_error("tunnel %s: handoff to the data plane failed: %s", c->t->name,
			 strerror(-ret));
		gw->fatal = ret;
	} else {
		fg_info("accepted %s (issued by '%s') on tunnel %s: peer %s, %s, %s", c->peer.cn,
			c->peer.root_cn, c->t->name, c->addr, fg_cipher_name(h->keys.cipher),
			desc);
	}
wipe:
	OPENSSL_cleanse(h, sizeof(*h));
	free(h);
	return STEP_DONE;
}

/*
 * The one line a refusal gets: who, which root, from where, on which tunnel,
 * why. Only logs; returns STEP_DONE so that a phase can end with it.
 */
static enum step log_refusal(const struct gw_conn *c, const struct fg_peer_id *who,
			     const char *fmt, ...)
{
	char reason[1024], desc[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (who && (who->cn[0] || who->n_dns || who->n_uri)) {
		fg_peer_describe(who, desc, sizeof(desc));
		fg_warn("refused %s (issued by '%s') from %s on tunnel %s: %s", desc,
			who->root_cn[0] ? who->root_cn : "unknown root", c->addr, c->t->name,
			reason);
	} else {
		fg_warn("refused %s on tunnel %s: %s", c->addr, c->t->name, reason);
	}
	return STEP_DONE;
}

/*
 * The handshake completed but the peer is not admitted: tell it with a fatal
 * access_denied alert under the new application key (best effort, never
 * blocking). The caller still logs the refusal.
 */
static void send_access_denied(struct gw_conn *c)
{
	static const uint8_t alert[2] = { 2, 49 };
	uint8_t rec[64];
	struct fg_session_keys keys;
	struct fg_record_dir tx = { 0 };
	ssize_t n;

	if (fg_keys_export(c->ssl, &c->st, &keys))
		return;
	if (!fg_record_init(&tx, keys.cipher, &keys.tx, 1)) {
		n = fg_record_seal(&tx, FG_CT_ALERT, alert, sizeof(alert), rec, sizeof(rec));
		if (n > 0 && send(c->tls_fd, rec, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			fg_debug("access_denied alert not sent: %s", strerror(errno));
	}
	fg_record_exit(&tx);
	OPENSSL_cleanse(&keys, sizeof(keys));
}

/* Makes @fd, for @events, the one fd @c waits on. 0 or -errno. */
static int watch(struct gw *gw, struct gw_conn *c, int fd, uint32_t events)
{
	if (c->watch_fd == fd)
		return fg_evloop_mod(gw->loop, fd, events, &c->src);
	if (c->watch_fd >= 0)
		fg_evloop_del(gw->loop, c->watch_fd);
	c->watch_fd = fd;
	return fg_evloop_add(gw->loop, fd, events, &c->src);
}

/* Starts a non-blocking connect; returns 0 (maybe in progress) or -errno. */
static int dial(const struct fg_addr *to, int *fd_out)
{
	int fd, one = 1;

	fd = socket(to->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&to->sa, to->len) && errno != EINPROGRESS) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	*fd_out = fd;
	return 0;
}

/* How the connect on @fd ended, once it is writable: 0 or -errno. */
static int dial_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return -errno;
	return -err;
}

/* A connection on @t under the current generation, its deadline running. NULL if none. */
static struct gw_conn *conn_new(struct gw *gw, const struct fg_tunnel_conf *t)
{
	struct gw_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (fg_tls_share(&c->tls, fg_ident_tls(gw->id))) {
		free(c);
		return NULL;
	}
	c->src.kind = SRC_CONN;
	c->gen = gw_gen_hold(gw);
	c->t = t;
	c->plain_fd = c->tls_fd = c->watch_fd = -1;
	c->deadline_ms = fg_mono_ms() + (uint64_t)c->gen->cfg->handshake_timeout_ms;
	c->next = gw->conns;
	if (gw->conns)
		gw->conns->prev = c;
	gw->conns = c;
	return c;
}

/* Closes what @c still holds (after a handoff: the control process's copies) and wipes it. */
static void conn_free(struct gw *gw, struct gw_conn *c)
{
	if (c->watch_fd >= 0)
		fg_evloop_del(gw->loop, c->watch_fd);
	SSL_free(c->ssl);
	fg_tls_conn_exit(&c->st);
	if (c->plain_fd >= 0)
		close(c->plain_fd);
	if (c->tls_fd >= 0)
		close(c->tls_fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		gw->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	gw_gen_put(gw, c->gen);
	fg_tls_exit(&c->tls);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

void gw_conn_free_all(struct gw *gw)
{
	while (gw->conns)
		conn_free(gw, gw->conns);
}

int gw_conn_timeout(const struct gw *gw)
{
	uint64_t now = fg_mono_ms(), first = UINT64_MAX;

	for (const struct gw_conn *c = gw->conns; c; c = c->next)
		if (c->deadline_ms < first)
			first = c->deadline_ms;
	if (first == UINT64_MAX)
		return -1;
	return first <= now ? 0 : (int)(first - now);
}
