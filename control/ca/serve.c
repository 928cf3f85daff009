// SPDX-License-Identifier: MIT
/*
 * The CA's HTTPS server: one epoll loop (fedgate/evloop.h: SIGINT and SIGTERM
 * arrive as events), non-blocking OpenSSL, HTTP/1.1 with Content-Length
 * bodies, one request per connection ("Connection: close"). Each connection
 * has a deadline (shorter for the TLS handshake than for the request) and
 * bounded buffers, and the table of connections is capped (serve_conns.c).
 * The loop sleeps until the next event or deadline. This file: the listener,
 * the server's own certificate, and the loop; serve.h says who does the rest.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <openssl/ssl.h>

#include "control/ca/ca.h"
#include "control/ca/serve.h"
#include "fedgate/addr.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/log.h"

#define SERVER_CERT_S (24 * 3600)
/*
 * The certificate's renewal is due by the wall clock, which a wait on the
 * monotonic one does not follow (a clock step, a suspended VM): the loop looks
 * at it at least this often.
 */
#define WALL_CHECK_MS 60000

/* Client certificates are optional and judged by /renew itself, with a clear answer. */
static int accept_any_cert(int ok, X509_STORE_CTX *xs)
{
	(void)ok;
	(void)xs;
	return 1;
}

/* A context with a fresh key and a certificate for the CA's dnsNames from its intermediate. */
static SSL_CTX *server_ctx(struct fg_ca *ca, struct fg_err *err)
{
	EVP_PKEY *key = fg_pki_keygen();
	GENERAL_NAMES *sans = fg_ca_sans((const char *const *)ca->dns, ca->n_dns, err);
	int64_t now = fg_wall_s();
	SSL_CTX *ctx = NULL;
	X509 *crt = NULL;

	if (!key || !sans)
		goto out;
	crt = fg_ca_issue_leaf(ca, ca->dns[0], sans, key, now - 60, now + SERVER_CERT_S, err);
	if (!crt)
		goto out;
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate(ctx, crt) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_add1_chain_cert(ctx, ca->intermediate) != 1) {
		fg_err_set(err, -EINVAL, "cannot set up the CA's TLS context");
		fg_err_ssl(err);
		SSL_CTX_free(ctx);
		ctx = NULL;
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_KTLS);
out:
	X509_free(crt);
	EVP_PKEY_free(key);
	GENERAL_NAMES_free(sans);
	return ctx;
}

static int listen_on(struct fg_ca *ca, const char *address_file, struct fg_err *err)
{
	struct fg_addr addr = { 0 };
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char text[300], host[INET6_ADDRSTRLEN], line[400];
	const char *why = NULL;
	unsigned port;
	int fd, one = 1, ret;

	/* step-ca writes ":443" for every address. */
	snprintf(text, sizeof(text), "%s%s", ca->address[0] == ':' ? "0.0.0.0" : "", ca->address);
	ret = fg_addr_parse(text, 1, &addr, &why);
	fg_addr_exit(&addr);
	if (ret)
		return fg_err_set(err, ret, "%s: $.address: bad address \"%s\": %s", ca->path,
				  ca->address, why ? why : strerror(-ret));
	fd = socket(addr.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fg_err_set(err, -errno, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&addr.sa, addr.len) || listen(fd, 512)) {
		ret = fg_err_set(err, -errno, "cannot listen on %s: %s", ca->address,
				 strerror(errno));
		close(fd);
		return ret;
	}
	getsockname(fd, (struct sockaddr *)&sa, &len);
	port = fg_addr_host(&sa, host, sizeof(host));
	fg_addr_text(&sa, line, sizeof(line));
	fg_info("CA: listening on %s (https://%s:%u)", line, ca->dns[0], port);
	strcat(line, "\n");
	if (address_file && fg_pki_write_file(address_file, line, strlen(line), 0644, err)) {
		close(fd);
		return -EIO;
	}
	return fd;
}

/* Renews the server certificate when it is due; open connections keep the old context. */
static void refresh_ctx(struct fg_ca_server *s)
{
	struct fg_err e = { 0 };
	SSL_CTX *fresh;

	if (fg_wall_s() < s->ctx_refresh)
		return;
	fresh = server_ctx(s->ca, &e);
	if (fresh) {
		SSL_CTX_free(s->ctx);
		s->ctx = fresh;
		s->ctx_refresh = fg_wall_s() + SERVER_CERT_S * 2 / 3;
		fg_info("CA: renewed the server certificate");
	} else {
		fg_warn("CA: cannot renew the server certificate: %s", e.msg);
		s->ctx_refresh = fg_wall_s() + 60;
	}
}

/* Milliseconds until the next deadline: a connection's or the certificate's. */
static int next_timeout(const struct fg_ca_server *s)
{
	int64_t t = WALL_CHECK_MS, conn = fg_ca_conns_next_deadline(s) - fg_mono_ms();
	int64_t cert = (s->ctx_refresh - fg_wall_s()) * 1000;

	if (conn < t)
		t = conn;
	if (cert < t)
		t = cert;
	return t < 0 ? 0 : (int)t;
}

/* Serves until a signal (0) or a failing epoll (-errno, @err set). */
static int run(struct fg_ca_server *s, struct fg_err *err)
{
	struct epoll_event evs[64];
	int stop = 0, n;

	while (!stop) {
		n = fg_evloop_wait(s->loop, evs, 64, next_timeout(s));
		if (n < 0)
			return fg_err_set(err, n, "epoll_wait: %s", strerror(-n));
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;

			if (tag == s->loop)
				stop |= fg_evloop_signal(s->loop) != 0;
			else if (tag == &s->lfd)
				fg_ca_conns_accept(s);
			else
				fg_ca_conns_step(s, tag);
		}
		fg_ca_conns_reap(s);
		fg_ca_conns_sweep(s);
		refresh_ctx(s);
	}
	fg_info("CA: stopping");
	return 0;
}

int fg_ca_serve(struct fg_ca *ca, const char *address_file, struct fg_err *err)
{
	static const int signals[] = { SIGINT, SIGTERM };
	struct fg_evloop loop = { .epfd = -1, .sigfd = -1 };
	struct fg_ca_server s = { .ca = ca, .loop = &loop, .lfd = -1 };
	int ret;

	signal(SIGPIPE, SIG_IGN);
	/* Blocked from the start: a signal during the setup stops the loop at once. */
	ret = fg_evloop_init(&loop, signals, 2, &loop);
	if (ret) {
		fg_err_set(err, ret, "epoll: %s", strerror(-ret));
		goto exit_loop;
	}
	/* Tokens used before a restart stay used. */
	ret = fg_ca_jti_open(ca->jti, ca->jti_path, fg_wall_s(), err);
	if (ret)
		goto exit_loop;
	s.ctx = server_ctx(ca, err);
	if (!s.ctx) {
		ret = -EINVAL;
		goto exit_loop;
	}
	s.ctx_refresh = fg_wall_s() + SERVER_CERT_S * 2 / 3;
	s.lfd = listen_on(ca, address_file, err);
	if (s.lfd < 0) {
		ret = s.lfd;
		goto free_ctx;
	}
	ret = fg_evloop_add(&loop, s.lfd, EPOLLIN, &s.lfd);
	if (ret) {
		fg_err_set(err, ret, "epoll: %s", strerror(-ret));
		goto close_listen;
	}
	ret = run(&s, err);
	fg_ca_conns_close_all(&s);
close_listen:
	close(s.lfd);
free_ctx:
	SSL_CTX_free(s.ctx);
exit_loop:
	fg_evloop_exit(&loop);
	return ret;
}
