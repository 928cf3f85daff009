// SPDX-License-Identifier: MIT
/* The admin listener and its connections: see admin.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/admin.h"
#include "control/ca/http.h"
#include "control/config.h"
#include "control/dpctl.h"
#include "control/gateway.h"
#include "control/identity-t.h"
#include "control/identity.h"
#include "control/metrics.h"
#include "control/pool.h"
#include "control/sock.h"
#include "control/status.h"
#include "fedgate/addr.h"
#include "fedgate/clock.h"
#include "fedgate/err-t.h"
#include "fedgate/evloop.h"
#include "fedgate/log.h"

#define ADMIN_CONNS 16
#define ADMIN_DEADLINE_MS 5000

struct admin_conn {
	struct gw_src src; /* first: the loop's tag */
	int fd;
	int64_t deadline;
	struct fg_http_req req;
	char in[FG_HTTP_MAX_HEAD];
	size_t in_len;
	char *out; /* the whole answer once the request is in */
	size_t out_len, out_off;
	int sent; /* the answer is out and our FIN sent: what still comes is read and dropped */
};

struct gw_admin {
	struct gw_src src; /* the listener's */
	struct gw *gw;
	int fd;
	int64_t started_ms; /* wall clock: the uptime in /status */
	struct admin_conn *conns[ADMIN_CONNS];
};

static int is_loopback(const struct sockaddr_storage *ss)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const struct sockaddr_in6 *s6 = (const void *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family != AF_INET6)
		return 0;
	if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
		return 1;
	return !memcmp(s6->sin6_addr.s6_addr, mapped, 12) && s6->sin6_addr.s6_addr[12] == 127;
}

static void conn_close(struct gw_admin *a, int i)
{
	struct admin_conn *c = a->conns[i];

	fg_evloop_del(a->gw->loop, c->fd);
	close(c->fd);
	free(c->out);
	free(c);
	a->conns[i] = NULL;
}

/* The answer: status line, headers, @body (@blen bytes). 0 or -ENOMEM. */
static int answer(struct admin_conn *c, int status, const char *ctype, const char *body,
		  size_t blen)
{
	const char *reason = status == 200   ? "OK"
			     : status == 404 ? "Not Found"
			     : status == 405 ? "Method Not Allowed"
			     : status == 431 ? "Request Header Fields Too Large"
			     : status == 500 ? "Internal Server Error"
					     : "Bad Request";
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, reason, ctype, blen);

	c->out = malloc((size_t)n + blen);
	if (!c->out)
		return -ENOMEM;
	memcpy(c->out, head, (size_t)n);
	memcpy(c->out + n, body, blen);
	c->out_len = (size_t)n + blen;
	c->out_off = 0;
	return 0;
}

static int answer_text(struct admin_conn *c, int status, const char *msg)
{
	return answer(c, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* /metrics: what the gateway's modules say now, rendered by metrics.c. 0 or -ENOMEM. */
static int render(struct gw *gw, char **body, size_t *len)
{
	const struct fg_config *cfg = gw->cur->cfg;
	struct gw_metrics_now now = {
	    .backend = gw_dp_backend_name(gw->dp),
	    .local_redirect = cfg->local_redirect,
	    .restarts = gw_dp_restarts(gw->dp),
	    .handshakes = gw->n_conns - gw_pool_count(gw->pools, NULL).held,
	    .n_open = cfg->n_tunnels,
	    .leaf = gw->id->id.leaf,
	    .n_roots = fg_ident_tls(gw->id)->n_roots,
	    .roots_expiry = (long long)fg_ident_roots_expiry(gw->id),
	};
	size_t n = cfg->n_tunnels ? cfg->n_tunnels : 1;
	size_t *open = calloc(n, sizeof(*open));
	uint64_t(*bytes)[2] = calloc(n, sizeof(*bytes));
	struct gw_pool_count *pool = calloc(n, sizeof(*pool));
	int ret = -ENOMEM;

	if (!open || !bytes || !pool)
		goto free_counts;
	for (size_t i = 0; i < cfg->n_tunnels; i++) {
		open[i] = gw_dp_tunnels(gw->dp, cfg->tunnels[i].name);
		gw_dp_bytes(gw->dp, cfg->tunnels[i].name, &bytes[i][0], &bytes[i][1]);
		pool[i] = gw_pool_count(gw->pools, cfg->tunnels[i].name);
	}
	now.open = open;
	now.bytes = (const uint64_t(*)[2])bytes;
	now.pool = pool;
	ret = gw_metrics_render(&now, body, len);
free_counts:
	free(pool);
	free(bytes);
	free(open);
	return ret;
}

/* Whether @path is @page, with or without a query. */
static int is_page(const char *path, const char *page)
{
	size_t n = strlen(page);

	return !strncmp(path, page, n) && (!path[n] || path[n] == '?');
}

/* The request is in (or refused, @status): what it gets. 0 or -ENOMEM. */
static int respond(struct gw_admin *a, struct admin_conn *c, int status, const char *why)
{
	char *body = NULL;
	size_t len = 0;
	int ret, status_page;

	if (status)
		return answer_text(c, status, why);
	if (strcmp(c->req.method, "GET") && strcmp(c->req.method, "HEAD"))
		return answer_text(c, 405, "only GET /metrics and GET /status here\n");
	if (c->req.body_len)
		return answer_text(c, 400, "a GET has no body\n");
	status_page = is_page(c->req.path, "/status");
	if (!status_page && !is_page(c->req.path, "/metrics"))
		return answer_text(c, 404,
				   "not found: GET /metrics and GET /status are what is here\n");
	if (status_page ? gw_status_render(a->gw, a->started_ms, &body, &len)
			: render(a->gw, &body, &len))
		return answer_text(c, 500, "out of memory\n");
	ret = answer(c, 200,
		     status_page ? "application/json" : "text/plain; version=0.0.4; charset=utf-8",
		     body, len);
	if (!ret && !strcmp(c->req.method, "HEAD"))
		c->out_len -= len;
	free(body);
	return ret;
}

/* Reads what came; once the request is whole (or refused), the answer is due. 1: close now. */
static int conn_read(struct gw_admin *a, struct admin_conn *c)
{
	struct fg_err err = {0};
	ssize_t n;
	int ret;

	while (!c->out && c->in_len < sizeof(c->in)) {
		n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : 1;
		if (n == 0)
			return 1; /* gone before its request was whole */
		c->in_len += (size_t)n;
		ret = fg_http_req_parse(&c->req, c->in, c->in_len, &err);
		if (ret == -EAGAIN)
			continue;
		return respond(a, c, ret ? (err.status ? err.status : 400) : 0,
			       err.msg[0] ? err.msg : "bad request\n")
			   ? 1
			   : 0;
	}
	if (!c->out) /* a head longer than the buffer: the parser's own limit is this size */
		return answer_text(c, 431, "request head too large\n") ? 1 : 0;
	return 0;
}

/*
 * Writes what the socket takes; once all is out, our FIN. 1: failed, close.
 * A close over bytes the client sent and we did not read (a head too long, a
 * body) would be a reset that can destroy the answer before it is read, so
 * the connection stays until the client's own FIN (or the deadline).
 */
static int conn_write(struct gw_admin *a, struct admin_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return 1;
			fg_evloop_mod(a->gw->loop, c->fd, EPOLLOUT, &c->src);
			return 0;
		}
		c->out_off += (size_t)n;
	}
	shutdown(c->fd, SHUT_WR);
	c->sent = 1;
	fg_evloop_mod(a->gw->loop, c->fd, EPOLLIN | EPOLLRDHUP, &c->src);
	return 0;
}

/* After the answer: reads and drops until the client's EOF. 1: it came (or an error). */
static int conn_drop(struct admin_conn *c)
{
	char sink[4096];

	for (;;) {
		ssize_t n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (n > 0)
			continue;
		return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
	}
}

static void conn_step(struct gw_admin *a, int i)
{
	struct admin_conn *c = a->conns[i];
	int done = 0;

	if (c->sent)
		done = conn_drop(c);
	else if (!c->out)
		done = conn_read(a, c);
	if (!done && !c->sent && c->out)
		done = conn_write(a, c);
	if (done)
		conn_close(a, i);
}

static void accept_ready(struct gw_admin *a)
{
	for (int k = 0; k < ADMIN_CONNS; k++) {
		struct admin_conn *c;
		int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), i;

		if (fd < 0)
			return;
		for (i = 0; i < ADMIN_CONNS && a->conns[i]; i++)
			;
		c = i < ADMIN_CONNS ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			close(fd); /* full: a scraper retries */
			continue;
		}
		c->src.kind = SRC_ADMIN;
		c->fd = fd;
		c->deadline = fg_mono_ms() + ADMIN_DEADLINE_MS;
		fg_http_req_init(&c->req);
		if (fg_evloop_add(a->gw->loop, fd, EPOLLIN, &c->src)) {
			close(fd);
			free(c);
			continue;
		}
		a->conns[i] = c;
	}
}

void gw_admin_ready(struct gw_admin *a, struct gw_src *s)
{
	if (s == &a->src) {
		accept_ready(a);
		return;
	}
	for (int i = 0; i < ADMIN_CONNS; i++)
		if (a->conns[i] && &a->conns[i]->src == s) {
			conn_step(a, i);
			return;
		}
}

void gw_admin_tick(struct gw_admin *a, int64_t now)
{
	if (!a)
		return;
	for (int i = 0; i < ADMIN_CONNS; i++)
		if (a->conns[i] && now >= a->conns[i]->deadline)
			conn_close(a, i);
}

int gw_admin_fd(const struct gw_admin *a)
{
	return a ? a->fd : -1;
}

void gw_admin_close_listener(struct gw_admin *a)
{
	if (!a || a->fd < 0)
		return;
	fg_evloop_del(a->gw->loop, a->fd);
	close(a->fd);
	a->fd = -1;
}

int gw_admin_new(struct gw_admin **out, struct gw *gw, FILE *ports, int handed)
{
	const struct fg_addr *at = &gw->cur->cfg->admin_listen;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char bound[INET6_ADDRSTRLEN + 8];
	struct gw_admin *a;
	int one = 1, ret;

	*out = NULL;
	if (!gw->cur->cfg->has_admin || (handed >= 0 && !fg_sock_listening_at(handed, at))) {
		if (handed >= 0)
			close(handed);
		handed = -1;
	}
	if (!gw->cur->cfg->has_admin)
		return 0;
	a = calloc(1, sizeof(*a));
	if (!a) {
		if (handed >= 0)
			close(handed);
		return -ENOMEM;
	}
	a->gw = gw;
	a->started_ms = fg_wall_ms();
	a->src.kind = SRC_ADMIN;
	a->fd = handed >= 0
		    ? handed
		    : socket(at->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->fd < 0) {
		ret = -errno;
		goto fail;
	}
	setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if ((handed < 0 &&
	     (bind(a->fd, (const struct sockaddr *)&at->sa, at->len) || listen(a->fd, 64))) ||
	    getsockname(a->fd, (struct sockaddr *)&ss, &sl)) {
		ret = -errno;
		fg_error("admin: cannot listen on %s: %s", at->text, strerror(errno));
		goto fail;
	}
	ret = fg_evloop_add(gw->loop, a->fd, EPOLLIN, &a->src);
	if (ret)
		goto fail;
	fg_addr_text(&ss, bound, sizeof(bound));
	fg_info("admin: listening on %s: GET /metrics, GET /status%s", bound,
		is_loopback(&ss) ? ""
				 : " (not a loopback address: anyone who reaches it "
				   "reads the gateway's counters and status)");
	if (ports)
		fprintf(ports, "@admin %s\n", bound);
	*out = a;
	return 0;
fail:
	if (a->fd >= 0)
		close(a->fd);
	free(a);
	return ret;
}

void gw_admin_free(struct gw_admin *a)
{
	if (!a)
		return;
	for (int i = 0; i < ADMIN_CONNS; i++)
		if (a->conns[i])
			conn_close(a, i);
	gw_admin_close_listener(a);
	free(a);
}
