// SPDX-License-Identifier: MIT
/*
 * One connection of the CA server: see serve.h. Non-blocking OpenSSL, one
 * state at a time (handshake, read the request, write the answer, drain),
 * each run until OpenSSL wants the socket; what it wants is what epoll waits
 * for next.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "control/ca/ca.h"
#include "control/ca/http.h"
#include "control/ca/serve.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/log.h"

#define DRAIN_MAX (1 << 20)

struct fg_ca_conn *fg_ca_conn_new(SSL_CTX *ctx, int fd, const char *host, unsigned port,
				  int64_t deadline)
{
	struct fg_ca_conn *c = calloc(1, sizeof(*c));
	BIO *bio;

	if (!c)
		return NULL;
	c->fd = fd;
	c->deadline = deadline;
	fg_http_req_init(&c->http);
	snprintf(c->host, sizeof(c->host), "%s", host);
	snprintf(c->peer, sizeof(c->peer), "%s:%u", host, port);
	c->ssl = SSL_new(ctx);
	/* A plain socket BIO: SSL_set_fd() in OpenSSL 3.0 may try TCP_ULP "tls". */
	bio = c->ssl ? BIO_new(BIO_s_socket()) : NULL;
	if (!bio)
		goto free_ssl;
	BIO_set_fd(bio, fd, BIO_NOCLOSE);
	SSL_set_bio(c->ssl, bio, bio);
	SSL_set_accept_state(c->ssl);
	c->events = EPOLLIN;
	return c;
free_ssl:
	SSL_free(c->ssl);
	free(c);
	return NULL;
}

void fg_ca_conn_shut(struct fg_ca_conn *c)
{
	SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void fg_ca_conn_free(struct fg_ca_conn *c)
{
	if (!c)
		return;
	fg_ca_conn_shut(c);
	free(c->out);
	OPENSSL_cleanse(c->in, c->in_len);
	free(c);
}

static int want(struct fg_ca_server *s, struct fg_ca_conn *c, uint32_t ev)
{
	if (c->events == ev)
		return 0;
	c->events = ev;
	return fg_evloop_mod(s->loop, c->fd, ev, c);
}

/* Hands the complete request to the CA and queues its answer. 0 or -ENOMEM. */
static int answer(struct fg_ca_server *s, struct fg_ca_conn *c)
{
	struct fg_ca_request req = {
		.method = c->http.method,
		.path = c->http.path,
		.body = c->in + c->http.head_len,
		.body_len = c->http.body_len,
		.client = SSL_get0_peer_certificate(c->ssl),
		.client_chain = SSL_get_peer_cert_chain(c->ssl),
	};
	const char *ctype;
	char *body = NULL;
	int status, ret;

	ret = fg_ca_handle(s->ca, &req, &status, &body, &ctype);
	if (ret)
		return fg_ca_reply_error(c, 500, "out of memory");
	if (status >= 400)
		fg_warn("CA: %s %s from %s: %s", c->http.method, c->http.path, c->peer, body);
	else
		fg_info("CA: %s %s from %s: %d", c->http.method, c->http.path, c->peer, status);
	ret = fg_ca_reply(c, status, ctype, body, 0);
	free(body);
	return ret;
}

/* Called with new bytes in c->in. Returns 0 (the state changes once there is an answer) or <0. */
static int on_input(struct fg_ca_server *s, struct fg_ca_conn *c)
{
	struct fg_err err = { 0 };
	int ret = fg_http_req_parse(&c->http, c->in, c->in_len, &err);

	if (ret == -EAGAIN) {
		if (c->http.head_len && c->http.expect_continue && !c->sent_continue) {
			c->sent_continue = 1;
			return fg_ca_reply_continue(c);
		}
		return 0;
	}
	if (ret)
		return fg_ca_reply_error(c, err.status, err.msg);
	return answer(s, c);
}

/* After the last byte of an answer: read on, drain, or done (1). */
static int written(struct fg_ca_conn *c)
{
	if (c->then_read) {
		c->st = FG_CA_READ;
		return 0;
	}
	SSL_shutdown(c->ssl); /* close_notify; the reply is complete */
	if (!c->then_drain)
		return 1;
	/* Reading what the client still sends lets it see the reply, not RST. */
	c->st = FG_CA_DRAIN;
	c->deadline = fg_mono_ms() + FG_CA_DRAIN_MS;
	return 0;
}

/*
 * One OpenSSL call for @c's state, and what follows from its bytes. Returns
 * the call's result (> 0: go on, unless *@done says @c is finished).
 */
static int io(struct fg_ca_server *s, struct fg_ca_conn *c, int *done)
{
	char scratch[4096];
	int r = 0;

	switch (c->st) {
	case FG_CA_HANDSHAKE:
		r = SSL_do_handshake(c->ssl);
		if (r == 1) {
			c->st = FG_CA_READ;
			c->deadline = fg_mono_ms() + s->ca->request_timeout_ms;
		}
		break;
	case FG_CA_READ:
		r = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof(c->in) - c->in_len));
		if (r > 0) {
			c->in_len += (size_t)r;
			*done = on_input(s, c) < 0;
		}
		break;
	case FG_CA_WRITE:
		r = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
		if (r > 0) {
			c->out_off += (size_t)r;
			if (c->out_off == c->out_len)
				*done = written(c);
		}
		break;
	case FG_CA_DRAIN:
		r = SSL_read(c->ssl, scratch, sizeof(scratch));
		if (r > 0) {
			c->drained += (size_t)r;
			*done = c->drained > DRAIN_MAX;
		}
		break;
	}
	return r;
}

int fg_ca_conn_step(struct fg_ca_server *s, struct fg_ca_conn *c)
{
	int r, e, done = 0;

	do
		r = io(s, c, &done);
	while (r > 0 && !done);
	if (done)
		goto close;
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		if (!want(s, c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT))
			return 0;
		goto close;
	}
	if (c->st == FG_CA_HANDSHAKE) {
		char ebuf[256];
		unsigned long ee = ERR_peek_error();

		ERR_error_string_n(ee, ebuf, sizeof(ebuf));
		fg_info("CA: TLS handshake with %s failed: %s", c->peer,
			ee ? ebuf : "connection closed");
	}
close:
	ERR_clear_error();
	return 1;
}
