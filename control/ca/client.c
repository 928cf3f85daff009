// SPDX-License-Identifier: MIT
/* HTTPS client of a step-ca compatible CA, pinned to its root. Blocking, one deadline a request. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "control/ca/ca.h"
#include "control/ca/client.h"
#include "control/ca/jwt.h"
#include "fedgate/x509name.h"
#include "fedgate/clock.h"

#ifndef FEDGATE_VERSION
#define FEDGATE_VERSION "0.1.0"
#endif

#define MAX_RESPONSE (1 << 20)

int fg_ca_client_init(struct fg_ca_client *c, const char *ca_url, const char *root_file,
		      struct fg_err *err)
{
	STACK_OF(X509) *roots = NULL;
	X509_STORE *store;
	const char *rest;
	size_t n;
	int ret;

	memset(c, 0, sizeof(*c));
	c->timeout_ms = 15000;
	if (fg_url_parse(ca_url, c->host, sizeof(c->host), c->port, sizeof(c->port), &rest) ||
	    (*rest && *rest != '/'))
		return fg_err_set(err, -EINVAL,
				  "bad CA URL \"%.200s\": expected https://HOST[:PORT]", ca_url);
	c->url = strdup(ca_url);
	c->prefix = strdup(rest);
	if (!c->url || !c->prefix) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	for (n = strlen(c->prefix); n && c->prefix[n - 1] == '/'; n--)
		c->prefix[n - 1] = '\0';
	for (n = strlen(c->url); n && c->url[n - 1] == '/'; n--)
		c->url[n - 1] = '\0';
	roots = fg_pki_read_certs(root_file, err);
	if (!roots) {
		ret = -EINVAL;
		goto fail;
	}
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx || !SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION)) {
		ret = fg_err_set(err, -ENOMEM, "cannot make a TLS context");
		goto fail;
	}
	/* The pin: the root file is the only trust anchor (no system store). */
	store = SSL_CTX_get_cert_store(c->ctx);
	for (int i = 0; i < sk_X509_num(roots); i++) {
		if (!X509_STORE_add_cert(store, sk_X509_value(roots, i))) {
			ret = fg_err_set(err, -EINVAL, "%s: cannot use as a root", root_file);
			fg_err_ssl(err);
			goto fail;
		}
	}
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_clear_options(c->ctx, SSL_OP_ENABLE_KTLS);
	sk_X509_pop_free(roots, X509_free);
	return 0;
fail:
	sk_X509_pop_free(roots, X509_free);
	fg_ca_client_exit(c);
	return ret;
}

void fg_ca_client_exit(struct fg_ca_client *c)
{
	if (!c)
		return;
	free(c->url);
	free(c->prefix);
	SSL_CTX_free(c->ctx);
	memset(c, 0, sizeof(*c));
}

/*
 * Time: every request has one deadline, c->timeout_ms after it starts, that
 * bounds connect, the TLS handshake, sending and reading to the end together.
 * A per-recv timeout (SO_RCVTIMEO) would restart on every byte, so a server
 * trickling one byte a second could hold the caller (the gateway's CA worker)
 * for as long as it liked. The socket is non-blocking and every wait is a
 * poll() for the time left.
 */
/* Waits until @fd is ready for @events (or in error): 0, -ETIMEDOUT at @deadline, or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int64_t left = deadline - fg_mono_ms();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 0; /* POLLERR/POLLHUP too: the next call reports them */
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int timed_out(struct fg_ca_client *c, const char *step, struct fg_err *err)
{
	ERR_clear_error();
	return fg_err_set(err, -ETIMEDOUT,
			  "CA %s: %s timed out (a request may take at most %d ms in all)", c->url,
			  step, c->timeout_ms);
}

/* A connected non-blocking socket, by @deadline, or -errno. */
static int dial(struct fg_ca_client *c, int64_t deadline, struct fg_err *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	int fd = -1, ret, e = ECONNREFUSED;

	ret = getaddrinfo(c->host, c->port, &hints, &res);
	if (ret)
		return fg_err_set(err, -EHOSTUNREACH, "CA %s: cannot resolve %s: %s", c->url,
				  c->host, gai_strerror(ret));
	/* Each address in turn while time is left: "localhost" may be ::1 then 127.0.0.1. */
	for (ai = res; ai && e != ETIMEDOUT; ai = ai->ai_next) {
		socklen_t sl = sizeof(e);

		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
			e = errno;
		} else {
			ret = wait_fd(fd, POLLOUT, deadline);
			if (ret)
				e = -ret;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl))
				e = errno;
			if (!e)
				break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		return fd;
	if (e == ETIMEDOUT)
		return timed_out(c, "connecting", err);
	return fg_err_set(err, -e, "CA %s: cannot connect: %s", c->url, strerror(e));
}

enum tls_op { TLS_CONNECT, TLS_WRITE, TLS_READ };

/*
 * One SSL_connect/SSL_write/SSL_read on the non-blocking @ssl over @fd,
 * polling for whatever OpenSSL wants (a read may need a write and the other
 * way round) until @deadline. Returns 0 with *@n the call's result (> 0),
 * -ETIMEDOUT, -errno of poll(), or -EIO with *@n the call's result (<= 0)
 * and *@sslerr its SSL_get_error() for the caller to judge. errno is 0
 * before each call, so that SSL_ERROR_SYSCALL with errno 0 means an EOF.
 */
static int tls_io(SSL *ssl, int fd, enum tls_op op, void *buf, int len, int64_t deadline, int *n,
		  int *sslerr)
{
	for (;;) {
		int r, e, ret;

		errno = 0;
		if (op == TLS_CONNECT)
			r = SSL_connect(ssl);
		else if (op == TLS_WRITE) /* retried with the same buffer, as OpenSSL requires */
			r = SSL_write(ssl, buf, len);
		else
			r = SSL_read(ssl, buf, len);
		*n = r;
		if (r > 0)
			return 0;
		e = SSL_get_error(ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			*sslerr = e;
			return -EIO;
		}
		ret = wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
		if (ret)
			return ret;
	}
}

/* @e: SSL_get_error() of the failed call. */
static int tls_fail(struct fg_ca_client *c, SSL *ssl, int e, const char *what,
		    struct fg_err *err)
{
	long v = SSL_get_verify_result(ssl);

	if (!strcmp(what, "handshake") && v != X509_V_OK) {
		ERR_clear_error();
		return fg_err_set(err, -EACCES,
				  "CA %s: its certificate does not verify against the pinned root: "
				  "%s",
				  c->url, X509_verify_cert_error_string(v));
	}
	if (e == SSL_ERROR_SYSCALL && errno) {
		int en = errno;

		ERR_clear_error();
		return fg_err_set(err, -EPROTO, "CA %s: TLS %s failed: %s", c->url, what,
				  strerror(en));
	}
	fg_err_set(err, -EPROTO, "CA %s: TLS %s failed", c->url, what);
	fg_err_ssl(err);
	return -EPROTO;
}

/* A failed tls_io() as the error: @what names the TLS call, @step what timed out. */
static int io_fail(struct fg_ca_client *c, SSL *ssl, int ret, int e, const char *what,
		   const char *step, struct fg_err *err)
{
	if (ret == -EIO)
		return tls_fail(c, ssl, e, what, err);
	if (ret == -ETIMEDOUT)
		return timed_out(c, step, err);
	return fg_err_set(err, ret, "CA %s: cannot wait for the socket: %s", c->url,
			  strerror(-ret));
}

enum { EOF_NONE, EOF_CLEAN, EOF_UNCLEAN }; /* close_notify seen, or a close without it */

#define MAX_CHUNK_LINE 256 /* a chunk-size line: hex digits, then extensions we ignore */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Walks a chunked body (RFC 9112 7.1) of @len bytes so far at @p. Returns 0
 * once the last chunk and the trailers are in, with @out_len data bytes (moved
 * to the front of @p when @decode), -EAGAIN while incomplete, -EPROTO with
 * @why when malformed. Sizes are hex digits only, bounded by MAX_RESPONSE.
 */
static int chunked(char *p, size_t len, int decode, size_t *out_len, const char **why)
{
	size_t in = 0, out = 0;

	for (;;) {
		const char *eol = memmem(p + in, len - in, "\r\n", 2);
		size_t line, size = 0, i;
		int v;

		if (!eol) {
			if (len - in <= MAX_CHUNK_LINE)
				return -EAGAIN;
			*why = "chunk-size line too long";
			return -EPROTO;
		}
		line = (size_t)(eol - (p + in));
		for (i = 0; i < line && (v = hexval(p[in + i])) >= 0; i++) {
			size = size * 16 + (size_t)v;
			if (size > MAX_RESPONSE) {
				*why = "chunk larger than 1 MiB";
				return -EPROTO;
			}
		}
		/* At least one digit; after them only chunk extensions (";name=value"). */
		if (!i || line > MAX_CHUNK_LINE ||
		    (i < line && p[in + i + strspn(p + in + i, " \t")] != ';')) {
			*why = "bad chunk size";
			return -EPROTO;
		}
		in += line + 2;
		if (!size)
			break;
		if (len - in < size + 2)
			return -EAGAIN;
		if (p[in + size] != '\r' || p[in + size + 1] != '\n') {
			*why = "chunk not followed by CRLF";
			return -EPROTO;
		}
		if (decode)
			memmove(p + out, p + in, size);
		out += size;
		in += size + 2;
	}
	/* Trailer fields, ignored, up to an empty line. */
	for (;;) {
		const char *eol = memmem(p + in, len - in, "\r\n", 2);

		if (!eol)
			return -EAGAIN;
		if (eol == p + in)
			break;
		in = (size_t)(eol - p) + 2;
	}
	*out_len = out;
	return 0;
}

/* Trims spaces and tabs around [*v, *v + *n). */
static void trim_ows(const char **v, size_t *n)
{
	while (*n && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*n)--;
	}
	while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

/*
 * Parses "HTTP/1.x NNN ...\r\n headers \r\n\r\n body" in @buf: -EAGAIN while
 * incomplete, -EINPROGRESS for an interim (1xx) answer of @body_off bytes,
 * -EPROTO with @why when malformed. The body is framed by Transfer-Encoding:
 * chunked (decoded in place), else Content-Length (digits only), else by
 * the end of the connection, which must then be a clean TLS close.
 */
static int parse_response(char *buf, size_t len, int eof, int *status, size_t *body_off,
			  size_t *body_len, const char **why)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4), *p, *eol;
	size_t clen = 0, have = 0;
	int have_clen = 0, is_chunked = 0, ret;

	*why = "malformed HTTP response";
	if (!end)
		return eof || len >= MAX_RESPONSE ? -EPROTO : -EAGAIN;
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) || buf[8] != ' ' || !isdigit(buf[9]) ||
	    !isdigit(buf[10]) || !isdigit(buf[11]))
		return -EPROTO;
	*status = atoi(buf + 9);
	if (*status < 100 || *status > 599)
		return -EPROTO;
	*body_off = (size_t)(end - buf) + 4;
	if (*status < 200) /* an interim answer (100 Continue): the real one follows */
		return -EINPROGRESS;
	/* The status line ends at the first CRLF, at @end at the latest. */
	for (p = (const char *)memmem(buf, (size_t)(end - buf) + 2, "\r\n", 2) + 2; p < end + 2;
	     p = eol + 2) {
		const char *colon, *v;
		size_t n;

		eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p || strcspn(p, " \t:") < (size_t)(colon - p)) {
			*why = "malformed header line";
			return -EPROTO;
		}
		v = colon + 1;
		n = (size_t)(eol - v);
		trim_ows(&v, &n);
		if (colon - p == 14 && !strncasecmp(p, "Content-Length", 14)) {
			size_t val = 0;

			if (!n || n > 7 || strspn(v, "0123456789") < n) {
				*why = "bad Content-Length";
				return -EPROTO;
			}
			for (size_t i = 0; i < n; i++)
				val = val * 10 + (size_t)(v[i] - '0');
			if (have_clen && val != clen) {
				*why = "conflicting Content-Length headers";
				return -EPROTO;
			}
			clen = val;
			have_clen = 1;
		} else if (colon - p == 17 && !strncasecmp(p, "Transfer-Encoding", 17)) {
			if (n != 7 || strncasecmp(v, "chunked", 7) || is_chunked) {
				*why = "unsupported Transfer-Encoding (only \"chunked\")";
				return -EPROTO;
			}
			is_chunked = 1;
		}
	}
	have = len - *body_off;
	if (*status == 204 || *status == 304) {
		*body_len = 0;
		return 0;
	}
	if (is_chunked) { /* overrides any Content-Length (RFC 9112 6.3) */
		ret = chunked(buf + *body_off, have, 0, body_len, why);
		if (ret == -EAGAIN && eof) {
			*why = "the connection closed inside a chunked answer";
			return -EPROTO;
		}
		return ret ? ret : chunked(buf + *body_off, have, 1, body_len, why);
	}
	if (have_clen) {
		if (clen > MAX_RESPONSE) {
			*why = "answer larger than 1 MiB";
			return -EPROTO;
		}
		if (have < clen) {
			*why = "the connection closed before the end of the answer";
			return eof ? -EPROTO : -EAGAIN;
		}
		*body_len = clen;
		return 0;
	}
	if (!eof)
		return -EAGAIN;
	if (eof != EOF_CLEAN) {
		*why = "the answer has no length and the connection closed without close_notify";
		return -EPROTO;
	}
	*body_len = have;
	return 0;
}

int fg_ca_request(struct fg_ca_client *c, const char *method, const char *path, const char *body,
		  X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *key, int *status, char **resp,
		  struct fg_err *err)
{
	size_t blen = body ? strlen(body) : 0, len = 0, off = 0, rlen = 0;
	char *req = NULL, *buf = NULL, hostport[300];
	int64_t deadline = fg_mono_ms() + (c->timeout_ms > 0 ? c->timeout_ms : 15000);
	unsigned char ip[16];
	SSL *ssl = NULL;
	BIO *bio;
	int fd, r, e = 0, ret, n;

	*resp = NULL;
	err->status = 0;
	fd = dial(c, deadline, err);
	if (fd < 0)
		return fd;
	ssl = SSL_new(c->ctx);
	bio = ssl ? BIO_new(BIO_s_socket()) : NULL;
	if (!bio) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	BIO_set_fd(bio, fd, BIO_NOCLOSE);
	SSL_set_bio(ssl, bio, bio);
	/* The CA's certificate must name the host of the URL: an IP SAN or a DNS SAN. */
	if (inet_pton(AF_INET, c->host, ip) == 1 || inet_pton(AF_INET6, c->host, ip) == 1) {
		r = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->host);
	} else {
		r = SSL_set_tlsext_host_name(ssl, c->host) && SSL_set1_host(ssl, c->host);
	}
	if (!r || (cert && (SSL_use_certificate(ssl, cert) != 1 ||
			    SSL_use_PrivateKey(ssl, key) != 1 || SSL_check_private_key(ssl) != 1))) {
		ret = fg_err_set(err, -EINVAL, "cannot set up the TLS client%s",
				 cert ? " certificate (does the key match it?)" : "");
		fg_err_ssl(err);
		goto out;
	}
	for (int i = 0; cert && chain && i < sk_X509_num(chain); i++)
		if (!SSL_add1_chain_cert(ssl, sk_X509_value(chain, i))) {
			ret = fg_err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	ret = tls_io(ssl, fd, TLS_CONNECT, NULL, 0, deadline, &r, &e);
	if (ret) {
		ret = io_fail(c, ssl, ret, e, "handshake", "the TLS handshake", err);
		goto out;
	}
	if (c->port[0] && strcmp(c->port, "443"))
		snprintf(hostport, sizeof(hostport), "%s%s%s:%s", strchr(c->host, ':') ? "[" : "",
			 c->host, strchr(c->host, ':') ? "]" : "", c->port);
	else
		snprintf(hostport, sizeof(hostport), "%s", c->host);
	n = asprintf(&req,
		     "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fedgate/" FEDGATE_VERSION
		     "\r\nAccept: application/json\r\n%sContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n%s",
		     method, c->prefix, path, hostport,
		     body ? "Content-Type: application/json\r\n" : "", blen, body ? body : "");
	if (n < 0) {
		req = NULL;
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (off = 0; off < (size_t)n; off += (size_t)r) {
		ret = tls_io(ssl, fd, TLS_WRITE, req + off, n - (int)off, deadline, &r, &e);
		if (ret) {
			ret = io_fail(c, ssl, ret, e, "write", "sending the request", err);
			goto out;
		}
	}
	buf = malloc(MAX_RESPONSE + 1);
	if (!buf) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		const char *why = NULL;
		size_t boff = 0;
		int eof = EOF_NONE;

		if (len >= MAX_RESPONSE) {
			ret = fg_err_set(err, -EPROTO, "CA %s: %s %s: answer larger than 1 MiB",
					 c->url, method, path);
			goto out;
		}
		ret = tls_io(ssl, fd, TLS_READ, buf + len, (int)(MAX_RESPONSE - len), deadline, &r,
			     &e);
		if (!ret) {
			len += (size_t)r;
		} else if (ret != -EIO) {
			ret = io_fail(c, ssl, ret, e, "read", "reading the answer", err);
			goto out;
		} else {
			/*
			 * A close without close_notify is an unclean end: OpenSSL 3
			 * reports it as SSL_R_UNEXPECTED_EOF_WHILE_READING (or a
			 * syscall error without errno). Any other TLS error is one.
			 */
			if (e == SSL_ERROR_ZERO_RETURN)
				eof = EOF_CLEAN;
			else if ((e == SSL_ERROR_SYSCALL && (errno == 0 || errno == ECONNRESET)) ||
				 (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) ==
								SSL_R_UNEXPECTED_EOF_WHILE_READING))
				eof = EOF_UNCLEAN;
			else {
				ret = io_fail(c, ssl, ret, e, "read", "reading the answer", err);
				goto out;
			}
		}
		ERR_clear_error();
		ret = parse_response(buf, len, eof, status, &boff, &rlen, &why);
		if (ret == -EINPROGRESS) {
			memmove(buf, buf + boff, len - boff);
			len -= boff;
			continue;
		}
		if (ret == -EAGAIN && !eof)
			continue;
		if (ret) {
			ret = fg_err_set(err, -EPROTO, "CA %s: %s %s: %s", c->url, method, path,
					 len ? why : "the connection closed without an answer");
			goto out;
		}
		memmove(buf, buf + boff, rlen);
		buf[rlen] = '\0';
		*resp = buf;
		buf = NULL;
		break;
	}
	SSL_shutdown(ssl);
	ret = 0;
out:
	ERR_clear_error();
	free(buf);
	free(req);
	SSL_free(ssl);
	close(fd);
	return ret;
}

/* Turns a non-@want answer into an error that carries the CA's own message. */
static int answer_status(struct fg_ca_client *c, const char *what, int status, int want,
			 const char *resp, struct fg_err *err)
{
	cJSON *o;
	const cJSON *m;

	if (status == want)
		return 0;
	o = cJSON_Parse(resp);
	m = cJSON_GetObjectItemCaseSensitive(o, "message");
	fg_err_set(err, -EACCES, "CA %s: %s: %d %s", c->url, what, status,
		   cJSON_IsString(m) ? m->valuestring : "(no message)");
	err->status = status;
	cJSON_Delete(o);
	return -EACCES;
}

/* The certificates of a {"crts":[...]} or {"certChain":[...]} answer as one checked PEM text. */
static int pem_list(struct fg_ca_client *c, const char *what, const char *resp, const char *key,
		    const char *fallback1, const char *fallback2, char **out,
		    struct fg_err *err)
{
	cJSON *o = cJSON_Parse(resp);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, key), *it;
	const char *parts[2] = { NULL, NULL };
	size_t total = 1, used = 0, n = 0;
	char *text = NULL;
	int ret = -EPROTO;

	if (cJSON_IsArray(list)) {
		cJSON_ArrayForEach(it, list)
		{
			if (!cJSON_IsString(it))
				goto bad;
			total += strlen(it->valuestring) + 1;
			n++;
		}
	} else if (fallback1) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, fallback1);
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, fallback2);

		if (!cJSON_IsString(a) || !cJSON_IsString(b))
			goto bad;
		parts[0] = a->valuestring;
		parts[1] = b->valuestring;
		total += strlen(parts[0]) + strlen(parts[1]) + 2;
		n = 2;
	}
	if (!n)
		goto bad;
	text = malloc(total);
	if (!text) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	text[0] = '\0';
#define APPEND(s)                                                                                  \
	do {                                                                                       \
		size_t l_ = strlen(s);                                                             \
		memcpy(text + used, s, l_);                                                        \
		used += l_;                                                                        \
		if (l_ && text[used - 1] != '\n')                                                  \
			text[used++] = '\n';                                                       \
		text[used] = '\0';                                                                 \
	} while (0)
	if (parts[0]) {
		APPEND(parts[0]);
		APPEND(parts[1]);
	} else {
		cJSON_ArrayForEach(it, list)
		APPEND(it->valuestring);
	}
#undef APPEND
	{
		struct fg_err e = { 0 };
		STACK_OF(X509) *sk = fg_pki_certs_from_pem(text, used, &e);

		if (!sk || (size_t)sk_X509_num(sk) != n) {
			sk_X509_pop_free(sk, X509_free);
			goto bad;
		}
		sk_X509_pop_free(sk, X509_free);
	}
	*out = text;
	text = NULL;
	ret = 0;
	goto out;
bad:
	ret = fg_err_set(err, -EPROTO, "CA %s: %s: the answer has no valid \"%s\" certificates",
			 c->url, what, key);
out:
	free(text);
	cJSON_Delete(o);
	return ret;
}

/* @chain's leaf must hold @key's public half. */
static int check_leaf_key(struct fg_ca_client *c, const char *chain, EVP_PKEY *key,
			  struct fg_err *err)
{
	struct fg_err e = { 0 };
	STACK_OF(X509) *sk = fg_pki_certs_from_pem(chain, strlen(chain), &e);
	int ok = sk && X509_check_private_key(sk_X509_value(sk, 0), key) == 1;

	ERR_clear_error();
	sk_X509_pop_free(sk, X509_free);
	return ok ? 0
		  : fg_err_set(err, -EPROTO, "CA %s: the certificate returned is not for our key",
			       c->url);
}

int fg_ca_sign(struct fg_ca_client *c, const char *csr_pem, const char *ott,
	       const char *not_before, const char *not_after, EVP_PKEY *key, char **chain_pem,
	       struct fg_err *err)
{
	cJSON *o = cJSON_CreateObject();
	char *body = NULL, *resp = NULL;
	int status = 0, ret;

	*chain_pem = NULL;
	if (!o || !cJSON_AddStringToObject(o, "csr", csr_pem) ||
	    !cJSON_AddStringToObject(o, "ott", ott) ||
	    (not_before && !cJSON_AddStringToObject(o, "notBefore", not_before)) ||
	    (not_after && !cJSON_AddStringToObject(o, "notAfter", not_after)) ||
	    !(body = cJSON_PrintUnformatted(o))) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	ret = fg_ca_request(c, "POST", "/1.0/sign", body, NULL, NULL, NULL, &status, &resp, err);
	if (!ret)
		ret = answer_status(c, "POST /1.0/sign", status, 201, resp, err);
	if (!ret)
		ret = pem_list(c, "POST /1.0/sign", resp, "certChain", "crt", "ca", chain_pem, err);
	if (!ret && key && check_leaf_key(c, *chain_pem, key, err)) {
		free(*chain_pem);
		*chain_pem = NULL;
		ret = -EPROTO;
	}
out:
	free(resp);
	cJSON_free(body);
	cJSON_Delete(o);
	return ret;
}

int fg_ca_csr(EVP_PKEY *key, const char *subject, const char *const *sans, size_t n_sans,
	      char **csr_pem, struct fg_err *err)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	GENERAL_NAMES *gens = NULL;
	X509_EXTENSION *ext = NULL;
	X509_NAME *name;
	BIO *mem = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int ret = -EINVAL;

	*csr_pem = NULL;
	if (!req || !exts || !mem)
		goto fail;
	name = X509_REQ_get_subject_name(req);
	/* A subject too long for a CN (a SPIFFE ID, say) is carried by the SANs alone. */
	if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    ((fg_pki_cn_fits(subject) || !n_sans) &&
	     !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
					 (const unsigned char *)subject, -1, -1, 0)) ||
	    !X509_REQ_set_pubkey(req, key))
		goto fail;
	if (n_sans) {
		gens = fg_ca_sans(sans, n_sans, err);
		if (!gens)
			goto out;
		ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
		if (!ext || !sk_X509_EXTENSION_push(exts, ext) ||
		    !X509_REQ_add_extensions(req, exts))
			goto fail;
		ext = NULL; /* owned by exts */
	}
	if (!X509_REQ_sign(req, key, EVP_sha256()) || !PEM_write_bio_X509_REQ(mem, req))
		goto fail;
	len = BIO_get_mem_data(mem, &data);
	*csr_pem = strndup(data, (size_t)len);
	ret = *csr_pem ? 0 : fg_err_set(err, -ENOMEM, "out of memory");
	goto out;
fail:
	ret = fg_err_set(err, -EINVAL, "cannot make the certificate request for '%.200s'",
			 subject);
	fg_err_ssl(err);
out:
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_REQ_free(req);
	BIO_free(mem);
	return ret;
}

int fg_ca_enroll(struct fg_ca_client *c, const char *subject, const char *const *sans,
		 size_t n_sans, const char *ott, const char *not_before, const char *not_after,
		 char **key_out, char **chain_pem, struct fg_err *err)
{
	const char *names[64];
	cJSON *claims = NULL;
	const cJSON *list, *it;
	EVP_PKEY *key = NULL;
	char *csr = NULL;
	int ret;

	*key_out = *chain_pem = NULL;
	if (!sans) {
		/* As `step ca certificate`: the SANs the token carries (else the subject). */
		ret = fg_jwt_decode(ott, NULL, &claims, err);
		if (ret)
			return fg_err_set(err, ret, "the token is not a JWT: %s", err->msg);
		list = cJSON_GetObjectItemCaseSensitive(claims, "sans");
		n_sans = 0;
		cJSON_ArrayForEach(it, list)
		{
			if (cJSON_IsString(it) && n_sans < 64)
				names[n_sans++] = it->valuestring;
		}
		if (!n_sans)
			names[n_sans++] = subject;
		sans = names;
	}
	key = fg_pki_keygen();
	if (!key) {
		ret = fg_err_set(err, -ENOMEM, "cannot generate a key");
		goto out;
	}
	ret = fg_ca_csr(key, subject, sans, n_sans, &csr, err);
	if (!ret)
		ret = fg_ca_sign(c, csr, ott, not_before, not_after, key, chain_pem, err);
	if (!ret) {
		*key_out = fg_pki_key_pem(key);
		if (!*key_out) {
			free(*chain_pem);
			*chain_pem = NULL;
			ret = fg_err_set(err, -ENOMEM, "out of memory");
		}
	}
out:
	free(csr);
	EVP_PKEY_free(key);
	cJSON_Delete(claims);
	return ret;
}

int fg_ca_renew(struct fg_ca_client *c, const char *chain_pem, EVP_PKEY *key, char **new_chain,
		struct fg_err *err)
{
	STACK_OF(X509) *sk = fg_pki_certs_from_pem(chain_pem, strlen(chain_pem), err);
	X509 *leaf;
	char *resp = NULL;
	int status = 0, ret;

	*new_chain = NULL;
	if (!sk)
		return fg_err_set(err, -EINVAL, "the certificate to renew: %s", err->msg);
	leaf = sk_X509_shift(sk);
	ret = fg_ca_request(c, "POST", "/1.0/renew", NULL, leaf, sk, key, &status, &resp, err);
	if (!ret)
		ret = answer_status(c, "POST /1.0/renew", status, 201, resp, err);
	if (!ret)
		ret = pem_list(c, "POST /1.0/renew", resp, "certChain", "crt", "ca", new_chain,
			       err);
	if (!ret && check_leaf_key(c, *new_chain, key, err)) {
		free(*new_chain);
		*new_chain = NULL;
		ret = -EPROTO;
	}
	free(resp);
	X509_free(leaf);
	sk_X509_pop_free(sk, X509_free);
	return ret;
}

static int get_crts(struct fg_ca_client *c, const char *path, char **bundle,
		    struct fg_err *err)
{
	char what[64], *resp = NULL;
	int status = 0, ret;

	*bundle = NULL;
	snprintf(what, sizeof(what), "GET %s", path);
	ret = fg_ca_request(c, "GET", path, NULL, NULL, NULL, NULL, &status, &resp, err);
	/* step-ca answers 201 here; a 200 is taken too. */
	if (!ret && status == 200)
		status = 201;
	if (!ret)
		ret = answer_status(c, what, status, 201, resp, err);
	if (!ret)
		ret = pem_list(c, what, resp, "crts", NULL, NULL, bundle, err);
	free(resp);
	return ret;
}

int fg_ca_federation(struct fg_ca_client *c, char **bundle_pem, struct fg_err *err)
{
	return get_crts(c, "/federation", bundle_pem, err);
}

int fg_ca_roots(struct fg_ca_client *c, char **bundle_pem, struct fg_err *err)
{
	return get_crts(c, "/roots", bundle_pem, err);
}

int fg_ca_token(const struct fg_ca_token_req *r, char **token, struct fg_err *err)
{
	STACK_OF(X509) *roots = NULL;
	cJSON *claims = cJSON_CreateObject(), *sans;
	unsigned char rnd[32];
	char fp[65], kid[48], jti[65], aud[1100];
	int64_t now = (int64_t)time(NULL);
	size_t ul = strlen(r->ca_url);
	int ret;

	*token = NULL;
	if (!claims) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	roots = fg_pki_read_certs(r->root_file, err);
	if (!roots) {
		ret = -EINVAL;
		goto out;
	}
	if (fg_x509_sha256(sk_X509_value(roots, 0), fp) || fg_jwk_thumbprint(r->key, kid) ||
	    RAND_bytes(rnd, sizeof(rnd)) != 1) {
		ret = fg_err_set(err, -EINVAL, "the provisioner key is not an EC P-256 key");
		goto out;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
	while (ul && r->ca_url[ul - 1] == '/')
		ul--;
	snprintf(aud, sizeof(aud), "%.*s/1.0/sign", (int)ul, r->ca_url);
	sans = cJSON_AddArrayToObject(claims, "sans");
	for (size_t i = 0; sans && i < r->n_sans; i++)
		cJSON_AddItemToArray(sans, cJSON_CreateString(r->sans[i]));
	if (sans && !r->n_sans)
		cJSON_AddItemToArray(sans, cJSON_CreateString(r->subject));
	if (!sans || !cJSON_AddStringToObject(claims, "aud", aud) ||
	    !cJSON_AddNumberToObject(claims, "exp",
				     (double)(now + (r->lifetime_s ? r->lifetime_s : 300))) ||
	    !cJSON_AddNumberToObject(claims, "iat", (double)now) ||
	    !cJSON_AddStringToObject(claims, "iss", r->provisioner) ||
	    !cJSON_AddStringToObject(claims, "jti", jti) ||
	    !cJSON_AddNumberToObject(claims, "nbf", (double)now) ||
	    !cJSON_AddStringToObject(claims, "sha", fp) ||
	    !cJSON_AddStringToObject(claims, "sub", r->subject)) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	ret = fg_jwt_sign(r->key, kid, claims, token, err);
out:
	sk_X509_pop_free(roots, X509_free);
	cJSON_Delete(claims);
	return ret;
}
