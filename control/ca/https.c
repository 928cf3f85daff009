// SPDX-License-Identifier: MIT
/* HTTPS to a CA on libcurl (https.h): one easy handle and one connection a request. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "control/ca/http.h"
#include "control/ca/https.h"
#include "control/ca/pki.h"

#ifndef FEDGATE_VERSION
#define FEDGATE_VERSION "0.1.0"
#endif

#define MAX_RESPONSE (1 << 20)
#define DEFAULT_TIMEOUT_MS 15000

/*
 * curl_global_init() must run once before any handle and is not safe to race
 * with other curl calls on every build; the gateway's CA job thread and the
 * CLI both get here through fg_ca_client_init(), so it runs there, once.
 */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_ready = CURLE_FAILED_INIT;

static void curl_start(void)
{
	curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint32_t sock_mark; /* fg_ca_client_set_mark(); atomic */

void fg_ca_client_set_mark(uint32_t mark)
{
	__atomic_store_n(&sock_mark, mark, __ATOMIC_RELAXED);
}

/* libcurl's socket, before it connects: marked, or the request fails (never unmarked). */
static int on_socket(void *data, curl_socket_t fd, curlsocktype purpose)
{
	uint32_t mark = *(const uint32_t *)data;

	(void)purpose;
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)))
		return CURL_SOCKOPT_ERROR;
	return CURL_SOCKOPT_OK;
}

/*
 * Parses @ca_url into @c->base and @c->prefix: https://HOST[:PORT][/PATH] and
 * nothing else (no user, query or fragment; a port in 1..65535). 0, -EINVAL
 * or -ENOMEM.
 */
static int parse_url(struct fg_ca_client *c, const char *ca_url)
{
	static const CURLUPart refused[] = { CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS };
	char *port = NULL, *path = NULL, *part = NULL;
	int ret = -EINVAL;
	size_t n;

	if (strncasecmp(ca_url, "https://", 8))
		return -EINVAL;
	/* libcurl also takes one or three slashes, an empty port and a query: not a CA URL. */
	n = strcspn(ca_url + 8, "/");
	if (!n || ca_url[8 + n - 1] == ':' || strpbrk(ca_url, "?#"))
		return -EINVAL;
	c->base = curl_url();
	if (!c->base)
		return -ENOMEM;
	if (curl_url_set(c->base, CURLUPART_URL, ca_url, 0))
		goto out;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (curl_url_get(c->base, refused[i], &part, 0) == CURLUE_OK)
			goto out;
	}
	if (curl_url_get(c->base, CURLUPART_PORT, &port, 0) == CURLUE_OK && atoi(port) < 1)
		goto out;
	if (curl_url_get(c->base, CURLUPART_PATH, &path, 0))
		goto out;
	for (n = strlen(path); n && path[n - 1] == '/'; n--)
		;
	c->prefix = strndup(path, n);
	ret = c->prefix ? 0 : -ENOMEM;
out:
	curl_free(part);
	curl_free(port);
	curl_free(path);
	return ret;
}

int fg_ca_client_init(struct fg_ca_client *c, const char *ca_url, const char *root_file,
		      struct fg_err *err)
{
	STACK_OF(X509) *roots = NULL;
	size_t n;
	int ret;

	memset(c, 0, sizeof(*c));
	c->timeout_ms = DEFAULT_TIMEOUT_MS;
	pthread_once(&curl_once, curl_start);
	if (curl_ready != CURLE_OK)
		return fg_err_set(err, -ENOMEM, "cannot start libcurl: %s",
				  curl_easy_strerror(curl_ready));
	ret = parse_url(c, ca_url);
	if (ret) {
		if (ret == -EINVAL)
			fg_err_set(err, ret, "bad CA URL \"%.200s\": expected https://HOST[:PORT]",
				   ca_url);
		else
			fg_err_set(err, ret, "out of memory");
		goto fail;
	}
	c->url = strdup(ca_url);
	if (!c->url) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	for (n = strlen(c->url); n && c->url[n - 1] == '/'; n--)
		c->url[n - 1] = '\0';
	roots = fg_pki_read_certs(root_file, err);
	if (!roots) {
		ret = -EINVAL;
		goto fail;
	}
	c->pin = X509_STORE_new();
	if (!c->pin) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	for (int i = 0; i < sk_X509_num(roots); i++) {
		if (!X509_STORE_add_cert(c->pin, sk_X509_value(roots, i))) {
			ret = fg_err_set(err, -EINVAL, "%s: cannot use as a root", root_file);
			fg_err_ssl(err);
			goto fail;
		}
	}
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
	curl_url_cleanup(c->base);
	free(c->prefix);
	X509_STORE_free(c->pin);
	memset(c, 0, sizeof(*c));
}

/* One request in flight: what the callbacks need and what they found. */
struct request {
	const struct fg_ca_client *c;
	X509 *cert; /* the TLS client certificate, NULL: none */
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
	char *body; /* the answer so far, NUL-terminated */
	size_t len;
	int chunked, have_length;
	size_t length;
	int tcp_up;	  /* on_ssl_ctx() ran: the TCP connection is up */
	int close_notify; /* the server ended TLS cleanly */
	const char *why;  /* a refusal of on_header() or on_body() */
	int setup_ret;	  /* on_ssl_ctx()'s failure (-errno), its message in @err */
	uint32_t mark;	  /* SO_MARK for the socket (fg_ca_client_set_mark), 0: none */
	struct fg_err *err;
};

/*
 * OpenSSL's trace of the records read and written: notes the server's
 * close_notify, which libcurl does not tell apart from a cut connection.
 */
static void on_tls_msg(int write_p, int version, int content_type, const void *buf, size_t len,
		       SSL *ssl, void *arg)
{
	const unsigned char *alert = buf;
	struct request *r = arg;

	(void)version;
	(void)ssl;
	if (!write_p && content_type == SSL3_RT_ALERT && len == 2 &&
	    alert[1] == SSL_AD_CLOSE_NOTIFY)
		r->close_notify = 1;
}

/*
 * libcurl's SSL_CTX, before the handshake: the pin replaces whatever store it
 * holds, and the client certificate and key go in from memory (never a file).
 */
static CURLcode on_ssl_ctx(CURL *h, void *ssl_ctx, void *arg)
{
	struct request *r = arg;
	SSL_CTX *ctx = ssl_ctx;

	(void)h;
	r->tcp_up = 1; /* libcurl starts TLS once TCP is connected */
	SSL_CTX_set1_cert_store(ctx, r->c->pin);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_KTLS);
	SSL_CTX_set_msg_callback(ctx, on_tls_msg);
	SSL_CTX_set_msg_callback_arg(ctx, r);
	/* libcurl would log the session keys to $SSLKEYLOGFILE, exposing the one-time token. */
	SSL_CTX_set_keylog_callback(ctx, NULL);
	if (!r->cert)
		return CURLE_OK;
	if (SSL_CTX_use_certificate(ctx, r->cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, r->key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		r->setup_ret = fg_err_set(r->err, -EINVAL,
					  "cannot set up the TLS client certificate (does the key match it?)");
		fg_err_ssl(r->err);
		return CURLE_SSL_CERTPROBLEM;
	}
	for (int i = 0; r->chain && i < sk_X509_num(r->chain); i++) {
		if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(r->chain, i))) {
			r->setup_ret = fg_err_set(r->err, -ENOMEM, "out of memory");
			return CURLE_OUT_OF_MEMORY;
		}
	}
	return CURLE_OK;
}

/*
 * The framing headers, split and read by the CA server's own parser (http.h) and
 * held to what the server accepts (deny on
 * doubt; libcurl reads "5x" as 5 and passes unknown transfer codings
 * through): Content-Length is 1 to 7 digits and one value, Transfer-Encoding
 * is "chunked" once. A status line starts a new answer (after a 1xx).
 */
static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	struct request *r = arg;
	size_t len = size * n;
	struct fg_http_field f;
	unsigned long long val = 0;
	const char *why;

	if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
		r->chunked = r->have_length = 0;
		return len;
	}
	/* libcurl hands each line with its CRLF; the blank line ends the head */
	if (len >= 2 && line[len - 2] == '\r' && line[len - 1] == '\n')
		len -= 2;
	if (!len)
		return size * n;
	if (fg_http_field_split(line, len, &f, &why)) {
		r->why = why;
	} else if (fg_http_field_is(&f, "Content-Length")) {
		if (f.value_len > 7 || fg_http_length(f.value, f.value_len, &val))
			r->why = "bad Content-Length";
		else if (r->have_length && val != r->length)
			r->why = "conflicting Content-Length headers";
		else
			r->length = (size_t)val;
		r->have_length = 1;
	} else if (fg_http_field_is(&f, "Transfer-Encoding")) {
		if (f.value_len != 7 || strncasecmp(f.value, "chunked", 7) || r->chunked)
			r->why = "unsupported Transfer-Encoding (only \"chunked\")";
		r->chunked = 1;
	}
	return r->why ? 0 : size * n;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct request *r = arg;
	size_t len = size * n;
	char *grown;

	if (len >= MAX_RESPONSE - r->len) {
		r->why = "answer larger than 1 MiB";
		return 0;
	}
	grown = realloc(r->body, r->len + len + 1);
	if (!grown) {
		r->why = "out of memory";
		return 0;
	}
	r->body = grown;
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

/* The step a timed-out transfer was at, from libcurl's timers (0 until reached). */
static const char *step(const struct request *r, CURL *h)
{
	curl_off_t dns = 0, tcp = 0, tls = 0, first = 0;
	long sent = 0;

	curl_easy_getinfo(h, CURLINFO_NAMELOOKUP_TIME_T, &dns);
	curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &tcp);
	curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &tls);
	curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &first);
	curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
	if (!dns)
		return "resolving the name";
	if (!tcp && !r->tcp_up)
		return "connecting";
	if (!tls)
		return "the TLS handshake";
	return first || sent ? "reading the answer" : "sending the request";
}

/* A failed curl_easy_perform() as the error; @detail is libcurl's own message. */
static int transfer_fail(struct request *r, CURL *h, CURLcode res, const char *method,
			 const char *path, const char *detail, struct fg_err *err)
{
	const struct fg_ca_client *c = r->c;
	long verify = X509_V_OK, os_errno = 0;

	if (r->setup_ret)
		return r->setup_ret;
	if (r->why)
		return fg_err_set(err, -EPROTO, "CA %s: %s %s: %s", c->url, method, path, r->why);
	switch (res) {
	case CURLE_OPERATION_TIMEDOUT:
		return fg_err_set(err, -ETIMEDOUT,
				  "CA %s: %s timed out (a request may take at most %d ms in all)",
				  c->url, step(r, h), c->timeout_ms);
	case CURLE_COULDNT_RESOLVE_HOST:
		return fg_err_set(err, -EHOSTUNREACH, "CA %s: cannot resolve its host: %s", c->url,
				  detail);
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
		os_errno = os_errno > 0 ? os_errno : ECONNREFUSED;
		return fg_err_set(err, -(int)os_errno, "CA %s: cannot connect: %s", c->url,
				  strerror((int)os_errno));
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
		/*
		 * X509_V_ERR_UNSPECIFIED is libcurl's "not verified (yet)": the
		 * handshake failed before verification, or libcurl's own name
		 * check failed after it (then @detail says so).
		 */
		curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &verify);
		if (verify == X509_V_ERR_UNSPECIFIED)
			verify = X509_V_OK;
		if (res == CURLE_SSL_CONNECT_ERROR && verify == X509_V_OK)
			return fg_err_set(err, -EPROTO, "CA %s: TLS handshake failed: %s", c->url,
					  detail);
		return fg_err_set(err, -EACCES,
				  "CA %s: its certificate does not verify against the pinned root: %s",
				  c->url,
				  verify != X509_V_OK ? X509_verify_cert_error_string(verify) : detail);
	case CURLE_SEND_ERROR:
		return fg_err_set(err, -EPROTO, "CA %s: TLS write failed: %s", c->url, detail);
	case CURLE_RECV_ERROR:
		/* libcurl's chunked decoder reports through this code too, naming it. */
		if (r->chunked && strstr(detail, "chunk"))
			return fg_err_set(err, -EPROTO,
					  "CA %s: %s %s: bad chunk size or framing (%s)", c->url,
					  method, path, detail);
		return fg_err_set(err, -EPROTO, "CA %s: TLS read failed: %s", c->url, detail);
	case CURLE_GOT_NOTHING:
		return fg_err_set(err, -EPROTO, "CA %s: %s %s: the connection closed without an answer",
				  c->url, method, path);
	case CURLE_PARTIAL_FILE:
		return fg_err_set(
		    err, -EPROTO, "CA %s: %s %s: the connection closed %s", c->url, method, path,
		    r->chunked ? "inside a chunked answer" : "before the end of the answer");
	case CURLE_FILESIZE_EXCEEDED:
		return fg_err_set(err, -EPROTO, "CA %s: %s %s: answer larger than 1 MiB", c->url,
				  method, path);
	case CURLE_OUT_OF_MEMORY:
		return fg_err_set(err, -ENOMEM, "out of memory");
	default:
		return fg_err_set(err, -EPROTO, "CA %s: %s %s: %s", c->url, method, path, detail);
	}
}

/* @h set up for one request to @u, its headers @hdrs, its answer into @r: 0, or 1 on failure. */
static int set_options(CURL *h, CURLU *u, struct curl_slist *hdrs, const char *method,
		       const char *body, struct request *r, char *errbuf)
{
	long ms = r->c->timeout_ms > 0 ? r->c->timeout_ms : DEFAULT_TIMEOUT_MS;
	int res;

	res = curl_easy_setopt(h, CURLOPT_CURLU, u) ||
	      curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) ||
	      curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
	      curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") ||
	      curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https") ||
	      curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) ||
	      /* the CA itself, never a proxy from the environment */
	      curl_easy_setopt(h, CURLOPT_PROXY, "") ||
	      curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) ||
	      curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L) ||
	      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms) ||
	      curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms) ||
	      curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) ||
	      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) ||
	      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) ||
	      /* only the self-signed root is an anchor, never a certificate beside it */
	      curl_easy_setopt(h, CURLOPT_SSL_OPTIONS, (long)CURLSSLOPT_NO_PARTIALCHAIN) ||
	      /* no CA file or directory of libcurl's own: on_ssl_ctx() sets the pin */
	      curl_easy_setopt(h, CURLOPT_CAINFO, NULL) ||
	      curl_easy_setopt(h, CURLOPT_CAPATH, NULL) ||
	      curl_easy_setopt(h, CURLOPT_CA_CACHE_TIMEOUT, 0L) ||
	      curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L) ||
	      curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) ||
	      curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, r) ||
	      curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) ||
	      curl_easy_setopt(h, CURLOPT_HEADERDATA, r) ||
	      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) ||
	      curl_easy_setopt(h, CURLOPT_WRITEDATA, r) ||
	      curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_RESPONSE - 1) ||
	      curl_easy_setopt(h, CURLOPT_USERAGENT, "fedgate/" FEDGATE_VERSION) ||
	      curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	r->mark = __atomic_load_n(&sock_mark, __ATOMIC_RELAXED);
	if (!res && r->mark)
		res = curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, on_socket) ||
		      curl_easy_setopt(h, CURLOPT_SOCKOPTDATA, &r->mark);
	if (res || !strcmp(method, "GET"))
		return res;
	return curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0)) ||
	       curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "") ||
	       (strcmp(method, "POST") && curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method));
}

int fg_ca_request(struct fg_ca_client *c, const char *method, const char *path, const char *body,
		  X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *key, int *status, char **resp,
		  struct fg_err *err)
{
	struct request r = { .c = c, .cert = cert, .chain = chain, .key = key, .err = err };
	/* "Expect:" and an empty "Content-Type:" drop libcurl's own defaults. */
	const char *const lines[] = { "Accept: application/json",
				      body ? "Content-Type: application/json" : "Content-Type:",
				      "Expect:", "Connection: close" };
	char errbuf[CURL_ERROR_SIZE] = "", *full = NULL;
	struct curl_slist *hdrs = NULL, *h1;
	sigset_t all, old;
	CURLU *u = NULL;
	CURL *h = NULL;
	CURLcode res;
	long code = 0;
	int ret;

	*resp = NULL;
	err->status = 0;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		h1 = curl_slist_append(hdrs, lines[i]);
		if (!h1) {
			ret = fg_err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		hdrs = h1;
	}
	u = curl_url_dup(c->base);
	h = curl_easy_init();
	if (!u || !h || asprintf(&full, "%s%s", c->prefix, path) < 0) {
		full = NULL;
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (curl_url_set(u, CURLUPART_PATH, full, 0) ||
	    set_options(h, u, hdrs, method, body, &r, errbuf)) {
		ret = fg_err_set(err, -EINVAL, "CA %s: cannot set up %s %s with libcurl", c->url,
				 method, path);
		goto out;
	}
	/*
	 * libcurl resolves names on a thread of its own, which may outlive the
	 * request: it must start with every signal blocked, or a SIGTERM or
	 * SIGHUP meant for the control loop's signalfd could land on it and kill
	 * the process with the default action.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	res = curl_easy_perform(h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (res) {
		ret = transfer_fail(&r, h, res, method, path,
				    errbuf[0] ? errbuf : curl_easy_strerror(res), err);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	/* A cut connection must not pass for the end of an answer that has no length. */
	if (!r.have_length && !r.chunked && code != 204 && code != 304 && !r.close_notify) {
		ret = fg_err_set(err, -EPROTO,
				 "CA %s: %s %s: the answer has no length and the connection closed "
				 "without close_notify",
				 c->url, method, path);
		goto out;
	}
	*status = (int)code;
	*resp = r.body ? r.body : strdup("");
	ret = *resp ? 0 : fg_err_set(err, -ENOMEM, "out of memory");
	if (*resp == r.body)
		r.body = NULL;
out:
	ERR_clear_error();
	free(r.body);
	free(full);
	curl_easy_cleanup(h);
	curl_url_cleanup(u);
	curl_slist_free_all(hdrs);
	return ret;
}
