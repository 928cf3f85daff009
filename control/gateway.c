// SPDX-License-Identifier: MIT
/*
 * The control process's event loop: listeners, dials and non-blocking
 * handshakes (many at once, each with a deadline), peer authorization, and the
 * handoff of each authorized tunnel to the data plane.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "control/allow.h"
#include "control/jobs.h"
#include "control/config.h"
#include "control/control.h"
#include "fedgate/handoff.h"
#include "control/identity.h"
#include "control/keys.h"
#include "fedgate/log.h"
#include "control/proxyv2.h"
#include "fedgate/record.h"
#include "control/roots.h"
#include "control/tls.h"
#include "fedgate/tls13.h"
#include "fedgate/clock.h"

enum src_kind { SRC_LISTENER, SRC_CONN, SRC_SIGNAL, SRC_DATAPLANE, SRC_TIMER, SRC_JOBS };

/* Every epoll registration points at one of these, first member of its owner. */
struct src {
	enum src_kind kind;
};

struct listener {
	struct src src;
	int fd;
	const struct fg_tunnel_conf *t;
};

enum conn_state { CONN_DIAL_PEER, CONN_HANDSHAKE, CONN_DIAL_UPSTREAM };

/*
 * One loaded config. A reload makes a new one current; the old one lives on
 * while connections that started under it (and point at its tunnels) do.
 */
struct gen {
	struct fg_config *cfg;
	int owned; /* the first one is the caller's */
	int refs;  /* connections + 1 while current */
	struct gen *next;
};

struct conn {
	struct src src;
	struct conn *prev, *next;
	/*
	 * Taken together when the connection is accepted: a SIGHUP before its
	 * handshake must not pair the new bundle with the old allow rules or
	 * the other way round.
	 */
	struct gen *gen;
	struct fg_tls tls;
	const struct fg_tunnel_conf *t;
	enum conn_state state;
	int plain_fd; /* originate: the app; terminate: the upstream (once dialed) */
	int tls_fd;
	int watch_fd; /* the fd registered in epoll, -1 if none */
	SSL *ssl;
	struct fg_tls_conn st;
	struct fg_peer_id peer;
	uint64_t deadline_ms;
	char addr[INET6_ADDRSTRLEN + 8]; /* the TLS peer, for logs */
};

struct control {
	int epfd;
	struct gen *cur, *retired;
	struct fg_ident *id;
	struct fg_jobq *id_jobs, *fed_jobs; /* enroll/renew; federation fetches */
	struct listener *listeners;
	size_t n_listeners;
	struct src sig_src, dp_src, timer_src, id_jobs_src, fed_jobs_src;
	int sigfd, timerfd;
	const int *dp_socks;
	int n_dp, next_dp;
	struct conn *conns;
	int fatal;
	int stop;
};

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		port = ntohs(s->sin_port);
		snprintf(out, len, "%s:%d", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		port = ntohs(s->sin6_port);
		snprintf(out, len, "[%s]:%d", host, port);
	} else {
		snprintf(out, len, "?");
	}
}

static int watch(struct control *ctl, struct conn *c, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = &c->src };

	if (c->watch_fd == fd)
		return epoll_ctl(ctl->epfd, EPOLL_CTL_MOD, fd, &ev) ? -errno : 0;
	if (c->watch_fd >= 0)
		epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, c->watch_fd, NULL);
	c->watch_fd = fd;
	return epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static void gen_free(struct gen *g)
{
	if (!g)
		return;
	if (g->owned) {
		fg_config_free(g->cfg);
		free(g->cfg);
	}
	free(g);
}

static void gen_put(struct control *ctl, struct gen *g)
{
	if (--g->refs > 0)
		return;
	for (struct gen **p = &ctl->retired; *p; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			break;
		}
	gen_free(g);
}

static void conn_free(struct control *ctl, struct conn *c)
{
	if (c->watch_fd >= 0)
		epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, c->watch_fd, NULL);
	SSL_free(c->ssl);
	fg_tls_conn_exit(&c->st);
	if (c->plain_fd >= 0)
		close(c->plain_fd);
	if (c->tls_fd >= 0)
		close(c->tls_fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	gen_put(ctl, c->gen);
	fg_tls_exit(&c->tls);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

static struct conn *conn_new(struct control *ctl, const struct fg_tunnel_conf *t)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (fg_tls_share(&c->tls, fg_ident_tls(ctl->id))) {
		free(c);
		return NULL;
	}
	c->src.kind = SRC_CONN;
	c->gen = ctl->cur;
	c->gen->refs++;
	c->t = t;
	c->plain_fd = c->tls_fd = c->watch_fd = -1;
	c->deadline_ms = fg_mono_ms() + (uint64_t)c->gen->cfg->handshake_timeout_ms;
	c->next = ctl->conns;
	if (ctl->conns)
		ctl->conns->prev = c;
	ctl->conns = c;
	return c;
}

/* The one line a refusal gets: who, which root, from where, on which tunnel, why. */
static void refuse(struct control *ctl, struct conn *c, const struct fg_peer_id *who,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void refuse(struct control *ctl, struct conn *c, const struct fg_peer_id *who,
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
	conn_free(ctl, c);
}

/*
 * The handshake completed but the peer is not admitted: tell it with a fatal
 * access_denied alert under the new application key, then close.
 */
static void send_access_denied(struct conn *c)
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

static void handoff(struct control *ctl, struct conn *c)
{
	struct fg_handoff *h;
	char desc[2048];
	int ret, sock;

	h = calloc(1, sizeof(*h));
	if (!h) {
		refuse(ctl, c, &c->peer, "out of memory");
		return;
	}
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
		refuse(ctl, c, &c->peer, "more buffered plaintext than a handoff carries");
		goto wipe;
	}
	ret = fg_keys_export(c->ssl, &c->st, &h->keys);
	if (ret) {
		refuse(ctl, c, &c->peer, "cannot export session keys: %s", strerror(-ret));
		goto wipe;
	}
	snprintf(h->tunnel, sizeof(h->tunnel), "%s", c->t->name);
	fg_peer_describe(&c->peer, desc, sizeof(desc));
	snprintf(h->peer, sizeof(h->peer), "%s", c->peer.cn[0] ? c->peer.cn : c->addr);
	SSL_free(c->ssl);
	c->ssl = NULL;

	sock = ctl->dp_socks[ctl->next_dp];
	ctl->next_dp = (ctl->next_dp + 1) % ctl->n_dp;
	ret = fg_handoff_send(sock, h, c->plain_fd, c->tls_fd);
	if (ret) {
		fg_error("tunnel %s: handoff to the data plane failed: %s", c->t->name,
			 strerror(-ret));
		ctl->fatal = ret;
	} else {
		fg_info("accepted %s (issued by '%s') on tunnel %s: peer %s, %s, %s", c->peer.cn,
			c->peer.root_cn, c->t->name, c->addr, fg_cipher_name(h->keys.cipher),
			desc);
	}
	conn_free(ctl, c);
wipe:
	OPENSSL_cleanse(h, sizeof(*h));
	free(h);
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

static int dial_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return -errno;
	return -err;
}

static void send_proxy_header(struct control *ctl, struct conn *c)
{
	struct sockaddr_storage src, dst;
	socklen_t sl = sizeof(src), dl = sizeof(dst);
	uint8_t buf[FG_PP2_MAX];
	const char *sni;
	ssize_t n;

	if (getpeername(c->tls_fd, (struct sockaddr *)&src, &sl) ||
	    getsockname(c->tls_fd, (struct sockaddr *)&dst, &dl)) {
		refuse(ctl, c, &c->peer, "getpeername: %s", strerror(errno));
		return;
	}
	sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
	n = fg_proxyv2_build(buf, sizeof(buf), (struct sockaddr *)&src, (struct sockaddr *)&dst,
			     &c->peer, sni, SSL_get_cipher_name(c->ssl), c->t->name);
	if (n < 0) {
		refuse(ctl, c, &c->peer, "cannot build PROXY v2 header: %s", strerror((int)-n));
		return;
	}
	/* A fresh connection's send buffer always takes a few KiB at once. */
	if (send(c->plain_fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
		refuse(ctl, c, &c->peer, "upstream %s: cannot send PROXY header: %s",
		       c->t->target.text, strerror(errno));
		return;
	}
	handoff(ctl, c);
}

static void handle_dial_upstream(struct control *ctl, struct conn *c)
{
	int ret = dial_result(c->plain_fd);

	if (ret) {
		refuse(ctl, c, &c->peer, "upstream %s unreachable: %s", c->t->target.text,
		       strerror(-ret));
		return;
	}
	if (c->t->proxy_v2)
		send_proxy_header(ctl, c);
	else
		handoff(ctl, c);
}

static void handshake_done(struct control *ctl, struct conn *c)
{
	const struct fg_config *cfg = c->gen->cfg;
	STACK_OF(X509) *chain;
	char why[1024];
	int ret;

	if (fg_tls_peer(c->ssl, &c->peer)) {
		refuse(ctl, c, NULL, "peer certificate not verified");
		return;
	}
	/* It chains; now, may its root vouch for these names? */
	chain = SSL_get0_verified_chain(c->ssl);
	if (fg_roots_check(cfg->root_rules, cfg->n_root_rules,
			   sk_X509_value(chain, sk_X509_num(chain) - 1), &c->peer, why,
			   sizeof(why))) {
		send_access_denied(c);
		refuse(ctl, c, &c->peer, "name constraints: %s", why);
		return;
	}
	if (fg_allow_check(c->t->allow, c->t->n_allow, &c->peer, why, sizeof(why))) {
		send_access_denied(c);
		refuse(ctl, c, &c->peer, "%s", why);
		return;
	}
	if (c->t->mode == FG_MODE_ORIGINATE) {
		handoff(ctl, c);
		return;
	}
	/* Only an authorized peer makes the upstream see a connection. */
	ret = dial(&c->t->target, &c->plain_fd);
	if (ret) {
		refuse(ctl, c, &c->peer, "upstream %s: %s", c->t->target.text, strerror(-ret));
		return;
	}
	c->state = CONN_DIAL_UPSTREAM;
	ret = watch(ctl, c, c->plain_fd, EPOLLOUT);
	if (ret)
		refuse(ctl, c, &c->peer, "epoll: %s", strerror(-ret));
}

static void handle_handshake(struct control *ctl, struct conn *c)
{
	char ebuf[256];
	int ret, err;

	ERR_clear_error();
	ret = SSL_do_handshake(c->ssl);
	if (ret == 1) {
		handshake_done(ctl, c);
		return;
	}
	err = SSL_get_error(c->ssl, ret);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		ret = watch(ctl, c, c->tls_fd, err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
		if (ret)
			refuse(ctl, c, NULL, "epoll: %s", strerror(-ret));
		return;
	}
	if (c->st.verify_error) {
		refuse(ctl, c, &c->st.failed, "certificate verification failed at depth %d: %s",
		       c->st.verify_depth, X509_verify_cert_error_string(c->st.verify_error));
		return;
	}
	if (err == SSL_ERROR_SSL)
		refuse(ctl, c, NULL, "TLS handshake failed: %s", fg_tls_error(ebuf, sizeof(ebuf)));
	else
		refuse(ctl, c, NULL, "connection closed during the TLS handshake");
}

static void start_handshake(struct control *ctl, struct conn *c)
{
	int is_server = c->t->mode == FG_MODE_TERMINATE;

	c->ssl = fg_tls_conn_new(&c->tls, is_server, c->tls_fd, c->t->server_name, &c->st);
	if (!c->ssl) {
		refuse(ctl, c, NULL, "cannot create TLS session");
		return;
	}
	c->state = CONN_HANDSHAKE;
	handle_handshake(ctl, c);
}

static void handle_dial_peer(struct control *ctl, struct conn *c)
{
	int ret = dial_result(c->tls_fd);

	if (ret) {
		refuse(ctl, c, NULL, "peer gateway unreachable: %s", strerror(-ret));
		return;
	}
	start_handshake(ctl, c);
}

static void handle_conn(struct control *ctl, struct conn *c)
{
	switch (c->state) {
	case CONN_DIAL_PEER:
		handle_dial_peer(ctl, c);
		break;
	case CONN_HANDSHAKE:
		handle_handshake(ctl, c);
		break;
	case CONN_DIAL_UPSTREAM:
		handle_dial_upstream(ctl, c);
		break;
	}
}

static void handle_accept(struct control *ctl, struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct conn *c;
	int fd, ret, one = 1;

	fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != ECONNABORTED)
			fg_warn("tunnel %s: accept: %s", l->t->name, strerror(errno));
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(ctl, l->t);
	if (!c) {
		close(fd);
		return;
	}
	if (l->t->mode == FG_MODE_TERMINATE) {
		c->tls_fd = fd;
		addr_text(&ss, c->addr, sizeof(c->addr));
		start_handshake(ctl, c);
		return;
	}
	c->plain_fd = fd;
	snprintf(c->addr, sizeof(c->addr), "%s", l->t->target.text);
	ret = dial(&l->t->target, &c->tls_fd);
	if (!ret) {
		c->state = CONN_DIAL_PEER;
		ret = watch(ctl, c, c->tls_fd, EPOLLOUT);
	}
	if (ret)
		refuse(ctl, c, NULL, "cannot dial peer gateway: %s", strerror(-ret));
}

static void expire(struct control *ctl)
{
	uint64_t now = fg_mono_ms();
	struct conn *c = ctl->conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->deadline_ms <= now)
			refuse(ctl, c, NULL, "handshake timed out after %d ms",
			       c->gen->cfg->handshake_timeout_ms);
	}
}

static int next_timeout(struct control *ctl)
{
	uint64_t now = fg_mono_ms(), first = UINT64_MAX;

	for (struct conn *c = ctl->conns; c; c = c->next)
		if (c->deadline_ms < first)
			first = c->deadline_ms;
	if (first == UINT64_MAX)
		return -1;
	return first <= now ? 0 : (int)(first - now);
}

/* What a reload cannot change in a running process: the listeners and the data plane. */
static int reload_compatible(const struct fg_config *a, const struct fg_config *b,
			     struct fg_err *err)
{
	char jp[64];

	if (a->n_tunnels != b->n_tunnels)
		return fg_conf_fail(err, b->path, "$.tunnels",
				    "%zu tunnels instead of %zu: adding or removing tunnels "
				    "needs a restart",
				    b->n_tunnels, a->n_tunnels);
	for (size_t i = 0; i < a->n_tunnels; i++) {
		const struct fg_tunnel_conf *x = &a->tunnels[i], *y = &b->tunnels[i];

		snprintf(jp, sizeof(jp), "$.tunnels[%zu]", i);
		if (strcmp(x->name, y->name) || x->mode != y->mode ||
		    strcmp(x->listen.text, y->listen.text))
			return fg_conf_fail(err, b->path, jp,
					    "name, mode or listen changed (was %s, %s): "
					    "listeners change only on restart",
					    x->name, x->listen.text);
	}
	if (a->workers != b->workers || a->offload != b->offload ||
	    a->kernel_tx_splice != b->kernel_tx_splice)
		return fg_conf_fail(err, b->path, "$.dataplane",
				    "the data plane settings change only on restart");
	return 0;
}

/*
 * SIGHUP: the whole config again. Everything that verifies applies to new
 * handshakes; established tunnels and handshakes in flight keep what they
 * have. A config that fails leaves the running one, with its error logged.
 */
static void reload(struct control *ctl)
{
	struct fg_err err = { 0 };
	struct fg_ident *id = NULL;
	struct fg_config *cfg;
	struct gen *g;
	int ret;

	cfg = calloc(1, sizeof(*cfg));
	g = calloc(1, sizeof(*g));
	if (!cfg || !g) {
		fg_error("SIGHUP: out of memory; the running config stays");
		free(cfg);
		free(g);
		return;
	}
	fg_info("SIGHUP: reloading %s", ctl->cur->cfg->path);
	ret = fg_config_load(ctl->cur->cfg->path, cfg, &err);
	if (!ret)
		ret = reload_compatible(ctl->cur->cfg, cfg, &err);
	if (!ret)
		ret = fg_ident_new(&id, cfg, ctl->id, 0, &err);
	if (ret) {
		fg_error("config not reloaded: %s; the running config stays",
			 err.msg[0] ? err.msg : strerror(-ret));
		fg_config_free(cfg);
		free(cfg);
		free(g);
		return;
	}
	g->cfg = cfg;
	g->owned = 1;
	g->refs = 1;
	for (size_t i = 0; i < ctl->n_listeners; i++)
		ctl->listeners[i].t = &cfg->tunnels[i];
	fg_ident_attach(id, ctl->id_jobs, ctl->fed_jobs);
	fg_ident_free(ctl->id);
	ctl->id = id;
	ctl->cur->next = ctl->retired;
	ctl->retired = ctl->cur;
	gen_put(ctl, ctl->cur);
	ctl->cur = g;
	fg_info("config reloaded: %zu tunnel(s), %d root(s) in the trust bundle, %zu root rule(s)",
		cfg->n_tunnels, fg_ident_tls(id)->n_roots, cfg->n_root_rules);
}

static void handle_timer(struct control *ctl)
{
	uint64_t n;

	if (read(ctl->timerfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		fg_debug("timerfd: %s", strerror(errno));
	fg_ident_tick(ctl->id);
}

static void handle_jobs(struct control *ctl, struct fg_jobq *w)
{
	struct fg_job *j;

	while ((j = fg_jobq_take(w)))
		fg_ident_job_done(ctl->id, j);
}

static void handle_signal(struct control *ctl)
{
	struct signalfd_siginfo si;

	if (read(ctl->sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGCHLD) {
		fg_error("the data plane process exited; stopping");
		ctl->fatal = -ECHILD;
		return;
	}
	if (si.ssi_signo == SIGHUP) {
		reload(ctl);
		return;
	}
	fg_info("%s: stopping", strsignal((int)si.ssi_signo));
	ctl->stop = 1;
}

static int listen_on(struct control *ctl, struct listener *l, FILE *ports)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->src };
	char bound[INET6_ADDRSTRLEN + 8];
	int one = 1, ret;

	l->src.kind = SRC_LISTENER;
	l->fd = socket(l->t->listen.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -errno;
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, (const struct sockaddr *)&l->t->listen.sa, l->t->listen.len) ||
	    listen(l->fd, 1024) || getsockname(l->fd, (struct sockaddr *)&ss, &sl)) {
		ret = -errno;
		fg_error("tunnel %s: cannot listen on %s: %s", l->t->name, l->t->listen.text,
			 strerror(errno));
		return ret;
	}
	if (epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, l->fd, &ev))
		return -errno;
	addr_text(&ss, bound, sizeof(bound));
	fg_info("tunnel %s (%s) listening on %s, %s %s", l->t->name,
		l->t->mode == FG_MODE_ORIGINATE ? "originate" : "terminate", bound,
		l->t->mode == FG_MODE_ORIGINATE ? "peer" : "upstream", l->t->target.text);
	if (ports)
		fprintf(ports, "%s %s\n", l->t->name, bound);
	return 0;
}

static int write_ports(struct control *ctl, const char *ports_file)
{
	char tmp[4096];
	FILE *f = NULL;
	int ret = 0;

	if (ports_file) {
		snprintf(tmp, sizeof(tmp), "%s.tmp", ports_file);
		f = fopen(tmp, "w");
		if (!f) {
			fg_error("cannot write %s: %s", tmp, strerror(errno));
			return -errno;
		}
	}
	for (size_t i = 0; i < ctl->n_listeners && !ret; i++)
		ret = listen_on(ctl, &ctl->listeners[i], f);
	if (f) {
		if (fclose(f) && !ret)
			ret = -errno;
		if (!ret && rename(tmp, ports_file))
			ret = -errno;
	}
	return ret;
}

static int setup(struct control *ctl, const char *ports_file)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct itimerspec every = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	sigset_t mask;
	int ret;

	ctl->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ctl->epfd < 0)
		return -errno;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	ctl->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (ctl->sigfd < 0)
		return -errno;
	ctl->sig_src.kind = SRC_SIGNAL;
	ev.data.ptr = &ctl->sig_src;
	if (epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, ctl->sigfd, &ev))
		return -errno;
	/* One tick a second: file polls, renewals and refreshes that are due. */
	ctl->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ctl->timerfd < 0 || timerfd_settime(ctl->timerfd, 0, &every, NULL))
		return -errno;
	ctl->timer_src.kind = SRC_TIMER;
	ev.data.ptr = &ctl->timer_src;
	if (epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, ctl->timerfd, &ev))
		return -errno;
	ret = fg_jobq_new(&ctl->id_jobs);
	if (!ret)
		ret = fg_jobq_new(&ctl->fed_jobs);
	if (ret)
		return ret;
	fg_ident_attach(ctl->id, ctl->id_jobs, ctl->fed_jobs);
	ctl->id_jobs_src.kind = SRC_JOBS;
	ev.data.ptr = &ctl->id_jobs_src;
	if (epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, fg_jobq_fd(ctl->id_jobs), &ev))
		return -errno;
	ctl->fed_jobs_src.kind = SRC_JOBS;
	ev.data.ptr = &ctl->fed_jobs_src;
	if (epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, fg_jobq_fd(ctl->fed_jobs), &ev))
		return -errno;
	ctl->dp_src.kind = SRC_DATAPLANE;
	for (int i = 0; i < ctl->n_dp; i++) {
		struct epoll_event dev = { .events = EPOLLRDHUP, .data.ptr = &ctl->dp_src };

		if (epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, ctl->dp_socks[i], &dev))
			return -errno;
	}
	ctl->n_listeners = ctl->cur->cfg->n_tunnels;
	ctl->listeners = calloc(ctl->n_listeners, sizeof(*ctl->listeners));
	if (!ctl->listeners)
		return -ENOMEM;
	for (size_t i = 0; i < ctl->n_listeners; i++) {
		ctl->listeners[i].fd = -1;
		ctl->listeners[i].t = &ctl->cur->cfg->tunnels[i];
	}
	ret = write_ports(ctl, ports_file);
	return ret;
}

static void teardown(struct control *ctl)
{
	while (ctl->conns)
		conn_free(ctl, ctl->conns);
	for (size_t i = 0; i < ctl->n_listeners; i++)
		if (ctl->listeners[i].fd >= 0)
			close(ctl->listeners[i].fd);
	free(ctl->listeners);
	/* A CA request in flight gets a short grace; the process does not wait on the CA. */
	fg_jobq_free(ctl->id_jobs);
	fg_jobq_free(ctl->fed_jobs);
	fg_ident_free(ctl->id);
	while (ctl->retired) {
		struct gen *g = ctl->retired;

		ctl->retired = g->next;
		gen_free(g);
	}
	gen_free(ctl->cur);
	if (ctl->timerfd >= 0)
		close(ctl->timerfd);
	if (ctl->sigfd >= 0)
		close(ctl->sigfd);
	if (ctl->epfd >= 0)
		close(ctl->epfd);
}

int fg_control_run(struct fg_config *cfg, struct fg_ident *id, const int *dp_socks, int n_dp,
		   const char *ports_file)
{
	struct control ctl = { .epfd = -1, .sigfd = -1, .timerfd = -1, .id = id,
			       .dp_socks = dp_socks, .n_dp = n_dp };
	struct epoll_event evs[64];
	int ret;

	ctl.cur = calloc(1, sizeof(*ctl.cur));
	if (!ctl.cur) {
		fg_ident_free(id);
		return -ENOMEM;
	}
	ctl.cur->cfg = cfg;
	ctl.cur->refs = 1;
	ret = setup(&ctl, ports_file);
	if (ret)
		goto out;
	while (!ctl.stop && !ctl.fatal) {
		int n = epoll_wait(ctl.epfd, evs, 64, next_timeout(&ctl));

		if (n < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		/*
		 * A conn watches one fd at a time, so it appears at most once per
		 * batch, and only its own handler frees it.
		 */
		for (int i = 0; i < n && !ctl.fatal; i++) {
			struct src *s = evs[i].data.ptr;

			switch (s->kind) {
			case SRC_LISTENER:
				handle_accept(&ctl, (struct listener *)s);
				break;
			case SRC_CONN:
				handle_conn(&ctl, (struct conn *)s);
				break;
			case SRC_SIGNAL:
				handle_signal(&ctl);
				break;
			case SRC_TIMER:
				handle_timer(&ctl);
				break;
			case SRC_JOBS:
				handle_jobs(&ctl, s == &ctl.id_jobs_src ? ctl.id_jobs
									   : ctl.fed_jobs);
				break;
			case SRC_DATAPLANE:
				fg_error("the data plane closed its handoff socket; stopping");
				ctl.fatal = -EPIPE;
				break;
			}
		}
		expire(&ctl);
	}
	ret = ctl.fatal;
out:
	teardown(&ctl);
	return ret;
}
