// SPDX-License-Identifier: MIT
/*
 * The CA's HTTPS server: one epoll loop, non-blocking OpenSSL, HTTP/1.1 with
 * Content-Length bodies, one request per connection ("Connection: close").
 * Each connection has a deadline (shorter for the TLS handshake than for
 * the request) and bounded buffers; connections are capped in all and per
 * source address, and a full table makes room by closing the oldest
 * connection still in its handshake, so idle or hostile sockets cannot lock
 * other clients out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "control/ca/ca.h"
#include "fedgate/addr.h"
#include "fedgate/log.h"
#include "fedgate/clock.h"

#define MAX_CONNS 256
#define MAX_CONNS_PER_SOURCE 16
#define HANDSHAKE_MS 5000 /* at most; and at most half the request timeout */
#define MAX_HEADER 16384
#define MAX_BODY 65536
#define DRAIN_MAX (1 << 20)
#define DRAIN_MS 2000
#define SERVER_CERT_S (24 * 3600)

enum conn_state { S_HANDSHAKE, S_READ, S_WRITE, S_DRAIN };

struct conn {
	int fd;
	SSL *ssl;
	enum conn_state st;
	uint32_t events; /* what epoll waits for */
	char in[MAX_HEADER + MAX_BODY + 1];
	size_t in_len;
	size_t hdr_end; /* 0 until the blank line is seen */
	size_t clen;
	int expect_continue, sent_continue;
	char *out;
	size_t out_len, out_off;
	int then_read; /* after this write, read again (100 Continue) */
	int then_drain;
	size_t drained;
	int64_t deadline;
	uint64_t seq; /* accept order: the lowest is the oldest */
	int dead;     /* evicted: closed, freed after the current batch of events */
	struct conn *next_dead;
	char host[INET6_ADDRSTRLEN]; /* the source address, for the per-source cap */
	char peer[64];
	char method[16], path[2048];
};

struct server {
	struct fg_ca *ca;
	SSL_CTX *ctx;
	int64_t ctx_refresh;
	int ep, lfd;
	struct conn *conns[MAX_CONNS];
	size_t n_conns;
	uint64_t seq;
	struct conn *dead; /* evicted, not yet freed: the epoll batch may still name them */
	int64_t full_logged;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

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
	int64_t now = (int64_t)time(NULL);
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

/* Takes @c out of the table and epoll, and closes its TLS session and socket. */
static void conn_detach(struct server *s, struct conn *c)
{
	for (size_t i = 0; i < s->n_conns; i++) {
		if (s->conns[i] == c) {
			s->conns[i] = s->conns[--s->n_conns];
			break;
		}
	}
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	SSL_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
}

/* Frees a detached @c, wiping what the client sent. */
static void conn_release(struct conn *c)
{
	free(c->out);
	OPENSSL_cleanse(c->in, c->in_len);
	free(c);
}

static void conn_close(struct server *s, struct conn *c)
{
	conn_detach(s, c);
	conn_release(c);
}

/* Like conn_close(), but @c stays allocated (marked dead) until reap(). */
static void conn_evict(struct server *s, struct conn *c)
{
	conn_detach(s, c);
	c->dead = 1;
	c->next_dead = s->dead;
	s->dead = c;
}

static void reap(struct server *s)
{
	while (s->dead) {
		struct conn *c = s->dead;

		s->dead = c->next_dead;
		conn_release(c);
	}
}

/* The connection accepted first among those still in the handshake (from @host if set). */
static struct conn *oldest_handshake(struct server *s, const char *host)
{
	struct conn *best = NULL;

	for (size_t i = 0; i < s->n_conns; i++) {
		struct conn *c = s->conns[i];

		if (c->st == S_HANDSHAKE && (!host || !strcmp(c->host, host)) &&
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
static int make_room(struct server *s, const char *host)
{
	size_t same = 0;
	struct conn *victim = NULL;
	const char *why = NULL;

	for (size_t i = 0; i < s->n_conns; i++)
		same += !strcmp(s->conns[i]->host, host);
	if (same >= MAX_CONNS_PER_SOURCE) {
		victim = oldest_handshake(s, host);
		why = "connections from one address";
	} else if (s->n_conns == MAX_CONNS) {
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
	conn_evict(s, victim);
	return 0;
}

static int want(struct server *s, struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (c->events == ev)
		return 0;
	c->events = ev;
	return epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &e) ? -errno : 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

/* Queues the response; the connection ends after it (draining what the client still sends). */
static int respond(struct conn *c, int status, const char *ctype, const char *body, int drain)
{
	size_t blen = strlen(body);
	int head = !strcmp(c->method, "HEAD");
	char *out;
	int n;

	n = asprintf(&out,
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
		     status, reason(status), ctype, blen, head ? "" : body);
	if (n < 0)
		return -ENOMEM;
	free(c->out);
	c->out = out;
	c->out_len = (size_t)n;
	c->out_off = 0;
	c->then_read = 0;
	c->then_drain = drain;
	c->st = S_WRITE;
	return 0;
}

static int respond_error(struct conn *c, int status, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	char *body = NULL;
	int ret = -ENOMEM;

	fg_warn("CA: %s %s from %s: %d %s", c->method[0] ? c->method : "-",
		c->path[0] ? c->path : "-", c->peer, status, msg);
	if (o && cJSON_AddNumberToObject(o, "status", status) &&
	    cJSON_AddStringToObject(o, "message", msg))
		body = cJSON_PrintUnformatted(o);
	if (body)
		ret = respond(c, status, "application/json", body, 1);
	cJSON_free(body);
	cJSON_Delete(o);
	return ret;
}

/*
 * Header names compare case-insensitively; @line is "Name: value" without
 * CRLF, NUL-terminated, its name already checked to be a token. Returns the
 * value without the whitespace around it (trailing OWS cut in place), or NULL.
 */
static const char *header_value(char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	char *v, *end = line + len;

	if (len <= n || strncasecmp(line, name, n) || line[n] != ':')
		return NULL;
	for (v = line + n + 1; *v == ' ' || *v == '\t'; v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return v;
}

/* RFC 9110 5.6.2 tchar: what a header name is made of (no whitespace, no separators). */
static int is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/*
 * Parses the request line and headers in c->in[0..c->hdr_end). Returns 0,
 * or an HTTP status with @msg naming the problem.
 */
static int parse_head(struct conn *c, const char **msg)
{
	char *p = c->in, *end = c->in + c->hdr_end - 2, *eol, *sp1, *sp2;
	int have_len = 0;

	eol = memmem(p, (size_t)(end - p), "\r\n", 2);
	sp1 = eol ? memchr(p, ' ', (size_t)(eol - p)) : NULL;
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp2 || (size_t)(sp1 - p) >= sizeof(c->method) || sp1 == p ||
	    (size_t)(sp2 - sp1 - 1) >= sizeof(c->path) || sp1[1] != '/' ||
	    (eol - sp2 - 1 != 8 || (strncmp(sp2 + 1, "HTTP/1.1", 8) &&
				     strncmp(sp2 + 1, "HTTP/1.0", 8)))) {
		*msg = "bad request line: expected 'METHOD /path HTTP/1.1'";
		return 400;
	}
	memcpy(c->method, p, (size_t)(sp1 - p));
	c->method[sp1 - p] = '\0';
	memcpy(c->path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	c->path[sp2 - sp1 - 1] = '\0';
	for (char *q = c->method; *q; q++)
		if (*q < 'A' || *q > 'Z')
			goto bad_line;
	for (char *q = c->path; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f || *q == '"' || *q == '\\')
			goto bad_line;
	for (p = eol + 2; p < end; p = eol + 2) {
		const char *v;
		size_t len, name_len;

		eol = memmem(p, (size_t)(end - p + 2), "\r\n", 2);
		len = (size_t)(eol - p);
		if (memchr(p, 0, len) || !memchr(p, ':', len)) {
			*msg = "malformed header line";
			return 400;
		}
		/*
		 * "Name : value" must be refused, not skipped (RFC 9112 5.1): a proxy
		 * in front might take it for the header it resembles.
		 */
		for (name_len = 0; p[name_len] != ':'; name_len++)
			if (!is_tchar((unsigned char)p[name_len]))
				break;
		if (!name_len || p[name_len] != ':') {
			*msg = p[name_len] == ' ' || p[name_len] == '\t'
				   ? "whitespace between a header name and its colon"
				   : "malformed header name";
			return 400;
		}
		*eol = '\0';
		if ((v = header_value(p, len, "Content-Length"))) {
			char *e;
			unsigned long long n;

			errno = 0;
			n = strtoull(v, &e, 10);
			if (!*v || strspn(v, "0123456789") != strlen(v) || errno ||
			    (have_len && n != c->clen)) {
				*msg = "bad Content-Length";
				return 400;
			}
			if (n > MAX_BODY) {
				*msg = "body too large: at most 65536 bytes";
				return 413;
			}
			c->clen = (size_t)n;
			have_len = 1;
		} else if ((v = header_value(p, len, "Transfer-Encoding"))) {
			*msg = "Transfer-Encoding is not supported: send a Content-Length body";
			return 411;
		} else if ((v = header_value(p, len, "Expect"))) {
			c->expect_continue = !strcasecmp(v, "100-continue");
		}
	}
	return 0;
bad_line:
	c->method[0] = c->path[0] = '\0';
	*msg = "bad request line: expected 'METHOD /path HTTP/1.1'";
	return 400;
}

/* Called with new bytes in c->in. Returns 0 when more is needed; the state changes otherwise. */
static int on_input(struct server *s, struct conn *c)
{
	struct fg_ca_request req = { 0 };
	const char *msg, *ctype;
	char *body = NULL;
	int status, ret;

	if (!c->hdr_end) {
		char *blank = memmem(c->in, c->in_len, "\r\n\r\n", 4);

		if (!blank) {
			if (c->in_len >= MAX_HEADER)
				return respond_error(c, 431, "request head larger than 16384 bytes");
			return 0;
		}
		c->hdr_end = (size_t)(blank - c->in) + 4;
		if (c->hdr_end > MAX_HEADER)
			return respond_error(c, 431, "request head larger than 16384 bytes");
		status = parse_head(c, &msg);
		if (status)
			return respond_error(c, status, msg);
	}
	if (c->in_len < c->hdr_end + c->clen) {
		if (c->expect_continue && !c->sent_continue) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

			c->sent_continue = 1;
			free(c->out);
			c->out = strdup(cont);
			if (!c->out)
				return -ENOMEM;
			c->out_len = sizeof(cont) - 1;
			c->out_off = 0;
			c->then_read = 1;
			c->st = S_WRITE;
		}
		return 0;
	}
	req.method = c->method;
	req.path = c->path;
	req.body = c->in + c->hdr_end;
	req.body_len = c->clen;
	req.client = SSL_get0_peer_certificate(c->ssl);
	req.client_chain = SSL_get_peer_cert_chain(c->ssl);
	ret = fg_ca_handle(s->ca, &req, &status, &body, &ctype);
	if (ret)
		return respond_error(c, 500, "out of memory");
	if (status >= 400)
		fg_warn("CA: %s %s from %s: %s", c->method, c->path, c->peer, body);
	else
		fg_info("CA: %s %s from %s: %d", c->method, c->path, c->peer, status);
	ret = respond(c, status, ctype, body, 0);
	free(body);
	return ret;
}

/* Runs @c as far as it goes without blocking; closes it when it is done or broken. */
static void conn_step(struct server *s, struct conn *c)
{
	char scratch[4096];
	int r = 0, e;

	if (c->dead)
		return;
	for (;;) {
		switch (c->st) {
		case S_HANDSHAKE:
			r = SSL_do_handshake(c->ssl);
			if (r == 1) {
				c->st = S_READ;
				c->deadline = fg_mono_ms() + s->ca->request_timeout_ms;
				continue;
			}
			break;
		case S_READ:
			r = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof(c->in) - 1 - c->in_len));
			if (r > 0) {
				c->in_len += (size_t)r;
				if (on_input(s, c) < 0)
					goto close;
				continue;
			}
			break;
		case S_WRITE:
			r = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
			if (r > 0) {
				c->out_off += (size_t)r;
				if (c->out_off < c->out_len)
					continue;
				if (c->then_read) {
					c->st = S_READ;
					continue;
				}
				SSL_shutdown(c->ssl); /* close_notify; the reply is complete */
				if (!c->then_drain)
					goto close;
				/* Reading what the client still sends lets it see the reply, not RST. */
				c->st = S_DRAIN;
				c->deadline = fg_mono_ms() + DRAIN_MS;
				continue;
			}
			break;
		case S_DRAIN:
			r = SSL_read(c->ssl, scratch, sizeof(scratch));
			if (r > 0) {
				c->drained += (size_t)r;
				if (c->drained > DRAIN_MAX)
					goto close;
				continue;
			}
			break;
		}
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ) {
			if (want(s, c, EPOLLIN))
				goto close;
			return;
		}
		if (e == SSL_ERROR_WANT_WRITE) {
			if (want(s, c, EPOLLOUT))
				goto close;
			return;
		}
		if (c->st == S_HANDSHAKE) {
			char ebuf[256];
			unsigned long ee = ERR_peek_error();

			ERR_error_string_n(ee, ebuf, sizeof(ebuf));
			fg_info("CA: TLS handshake with %s failed: %s", c->peer,
				ee ? ebuf : "connection closed");
		}
		goto close;
	}
close:
	ERR_clear_error();
	conn_close(s, c);
}

static void on_accept(struct server *s)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char host[INET6_ADDRSTRLEN] = "?";
	struct epoll_event ev;
	struct conn *c;
	BIO *bio;
	int fd, hs_ms;

	for (;;) {
		len = sizeof(sa);
		fd = accept4(s->lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		snprintf(host, sizeof(host), "?");
		if (sa.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host,
				  sizeof(host));
		else if (sa.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, host,
				  sizeof(host));
		if (make_room(s, host)) {
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->seq = s->seq++;
		snprintf(c->host, sizeof(c->host), "%s", host);
		snprintf(c->peer, sizeof(c->peer), "%s:%u", host,
			 ntohs(((struct sockaddr_in *)&sa)->sin_port));
		/* A handshake is a few round trips: idle sockets should not hold a slot for long. */
		hs_ms = s->ca->request_timeout_ms / 2;
		c->deadline = fg_mono_ms() + (hs_ms < HANDSHAKE_MS ? hs_ms : HANDSHAKE_MS);
		c->ssl = SSL_new(s->ctx);
		/* A plain socket BIO: SSL_set_fd() in OpenSSL 3.0 may try TCP_ULP "tls". */
		bio = c->ssl ? BIO_new(BIO_s_socket()) : NULL;
		if (!bio) {
			SSL_free(c->ssl);
			close(fd);
			free(c);
			continue;
		}
		BIO_set_fd(bio, fd, BIO_NOCLOSE);
		SSL_set_bio(c->ssl, bio, bio);
		SSL_set_accept_state(c->ssl);
		c->events = EPOLLIN;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev)) {
			SSL_free(c->ssl);
			close(fd);
			free(c);
			continue;
		}
		s->conns[s->n_conns++] = c;
		conn_step(s, c);
	}
}

/* Ends connections past their deadline: a 408 if the request never completed. */
static void sweep(struct server *s)
{
	int64_t now = fg_mono_ms();

	for (size_t i = 0; i < s->n_conns;) {
		struct conn *c = s->conns[i];

		if (now < c->deadline) {
			i++;
			continue;
		}
		if (c->st == S_READ) {
			c->deadline = now + DRAIN_MS;
			if (respond_error(c, 408, "request not received in time") == 0) {
				conn_step(s, c);
				/* conn_step may have closed it: look at slot i again either way */
				continue;
			}
		}
		if (c->st == S_HANDSHAKE)
			fg_info("CA: %s: TLS handshake timed out", c->peer);
		conn_close(s, c);
	}
}

static int listen_on(struct fg_ca *ca, const char *address_file, struct fg_err *err)
{
	struct fg_addr addr = { 0 };
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char text[300], host[INET6_ADDRSTRLEN], line[400];
	const char *why = NULL;
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
	if (sa.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, host, sizeof(host));
		snprintf(line, sizeof(line), "[%s]:%u\n", host,
			 ntohs(((struct sockaddr_in6 *)&sa)->sin6_port));
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host, sizeof(host));
		snprintf(line, sizeof(line), "%s:%u\n", host,
			 ntohs(((struct sockaddr_in *)&sa)->sin_port));
	}
	line[strcspn(line, "\n")] = '\0';
	fg_info("CA: listening on %s (https://%s%s)", line, ca->dns[0], strchr(line, ':'));
	strcat(line, "\n");
	if (address_file && fg_pki_write_file(address_file, line, strlen(line), 0644, err)) {
		close(fd);
		return -EIO;
	}
	return fd;
}

int fg_ca_serve(struct fg_ca *ca, const char *address_file, struct fg_err *err)
{
	struct server s = { .ca = ca, .ep = -1, .lfd = -1 };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, evs[64];
	struct sigaction sa = { .sa_handler = on_signal };
	int ret = 0, n;

	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Tokens used before a restart stay used. */
	ret = fg_ca_jti_open(ca->jti, ca->jti_path, (int64_t)time(NULL), err);
	if (ret)
		return ret;
	s.ctx = server_ctx(ca, err);
	if (!s.ctx)
		return -EINVAL;
	s.ctx_refresh = (int64_t)time(NULL) + SERVER_CERT_S * 2 / 3;
	s.lfd = listen_on(ca, address_file, err);
	if (s.lfd < 0) {
		ret = s.lfd;
		goto free_ctx;
	}
	s.ep = epoll_create1(EPOLL_CLOEXEC);
	if (s.ep < 0 || epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &ev)) {
		ret = fg_err_set(err, -errno, "epoll: %s", strerror(errno));
		goto close_listen;
	}
	while (!stop_flag) {
		n = epoll_wait(s.ep, evs, 64, 200);
		if (n < 0 && errno != EINTR) {
			ret = fg_err_set(err, -errno, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr)
				on_accept(&s);
			else
				conn_step(&s, evs[i].data.ptr);
		}
		reap(&s);
		sweep(&s);
		if ((int64_t)time(NULL) >= s.ctx_refresh) {
			struct fg_err e = { 0 };
			SSL_CTX *fresh = server_ctx(ca, &e);

			/* Open connections keep their reference to the old context. */
			if (fresh) {
				SSL_CTX_free(s.ctx);
				s.ctx = fresh;
				s.ctx_refresh = (int64_t)time(NULL) + SERVER_CERT_S * 2 / 3;
				fg_info("CA: renewed the server certificate");
			} else {
				fg_warn("CA: cannot renew the server certificate: %s", e.msg);
				s.ctx_refresh = (int64_t)time(NULL) + 60;
			}
		}
	}
	if (stop_flag)
		fg_info("CA: stopping");
	while (s.n_conns)
		conn_close(&s, s.conns[0]);
	reap(&s);
close_listen:
	if (s.ep >= 0)
		close(s.ep);
	close(s.lfd);
free_ctx:
	SSL_CTX_free(s.ctx);
	return ret;
}
