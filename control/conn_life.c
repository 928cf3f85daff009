// SPDX-License-Identifier: MIT
/*
 * A gateway connection's life around its phases (conn.c): made with its
 * generation and deadline, the one fd it waits on, the refusal log line, the
 * mark on what it dials, and its end, when what it still holds is closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "control/admit.h"
#include "control/allow.h"
#include "control/conn.h"
#include "control/dest.h"
#include "control/gateway.h"
#include "control/hs_thread.h"
#include "control/identity.h"
#include "control/keys.h"
#include "control/linger.h"
#include "control/local_redirect.h"
#include "control/metrics.h"
#include "control/pool.h"
#include "control/sock.h"
#include "control/tls.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/heap.h"
#include "fedgate/log.h"

/*
 * Refusal lines a second at most: every refusal of a real peer is worth its
 * line, but a flood of broken or hostile clients (thousands a second) must
 * not fill the disk. Past the cap they are counted, and the count is logged
 * once a second (gw_conn_refuse_flush). The control loop is one thread.
 */
#define REFUSE_LINES_PER_S 100

static struct {
	int64_t window_ms;  /* start of the current second */
	unsigned int lines; /* logged in it */
	uint64_t held;	    /* refusals not logged since the last count */
} refuse_rl;

static void refuse_report_held(void)
{
	if (!refuse_rl.held)
		return;
	fg_warn("refused %llu more connection(s) without a line each (over %d refusals a second)",
		(unsigned long long)refuse_rl.held, REFUSE_LINES_PER_S);
	refuse_rl.held = 0;
}

/* Whether this refusal gets its line now (else it is counted). */
static int refuse_line_due(int64_t now)
{
	if (now - refuse_rl.window_ms >= 1000) {
		refuse_report_held();
		refuse_rl.window_ms = now;
		refuse_rl.lines = 0;
	}
	if (refuse_rl.lines < REFUSE_LINES_PER_S) {
		refuse_rl.lines++;
		return 1;
	}
	refuse_rl.held++;
	return 0;
}

void gw_conn_refuse_flush(int64_t now)
{
	if (now - refuse_rl.window_ms >= 1000)
		refuse_report_held();
}

/*
 * The metric's reason: the format up to its first ':' or conversion, never
 * what fills it (an address, a name); a bare "%s" is a reason built
 * elsewhere (verification, allow rules), whose start is as fixed.
 */
static void reason_of(const char *fmt, const char *text, char *out, size_t len)
{
	const char *src = strcmp(fmt, "%s") ? fmt : text;
	size_t n = strcspn(src, ":%(");

	while (n && src[n - 1] == ' ')
		n--;
	if (!strncmp(src, "allow[", 6))
		snprintf(out, len, "no allow rule admits the peer");
	else if (!n)
		snprintf(out, len, "other");
	else
		snprintf(out, len, "%.*s", (int)n, src);
}

/*
 * The one line a refusal gets: who, which root, from where, on which tunnel,
 * why (and its count in metrics.c). Only logs; returns STEP_DONE so that a
 * phase can end with it.
 */
enum gw_step gw_conn_refuse(const struct gw_conn *c, const struct fg_peer_id *who, const char *fmt,
			    ...)
{
	char reason[1024], desc[2048], why[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	/* A connection the pool dialed for itself refuses no one: a line, backed off (pool.c). */
	if (c->pool_role == GW_POOL_FILLER) {
		if (refuse_line_due(fg_mono_ms()))
			fg_warn("tunnel %s: pool: no connection to %s: %s", c->t->name, c->addr,
				reason);
		return GW_STEP_DONE;
	}
	reason_of(fmt, reason, why, sizeof(why));
	gw_metrics_refused(c->t->name, why);
	if (!refuse_line_due(fg_mono_ms()))
		return GW_STEP_DONE;
	if (who && (who->cn[0] || who->n_dns || who->n_uri)) {
		fg_peer_describe(who, desc, sizeof(desc));
		fg_warn("refused %s (issued by '%s', %sroot '%s') from %s on tunnel %s%s%s%s: %s",
			desc, who->issuer_cn, who->root_claimed ? "claimed " : "",
			who->root_cn[0] ? who->root_cn : "unknown", c->addr, c->t->name,
			c->flow[0] ? " (" : "", c->flow, c->flow[0] ? ")" : "", reason);
	} else {
		fg_warn("refused %s on tunnel %s%s%s%s: %s", c->addr, c->t->name,
			c->flow[0] ? " (" : "", c->flow, c->flow[0] ? ")" : "", reason);
	}
	return GW_STEP_DONE;
}

enum gw_step gw_conn_refuse_handshake(const struct gw_conn *c, int ret)
{
	char ebuf[256];

	if (ret == -ETIMEDOUT)
		return gw_conn_refuse(c, NULL, "handshake timed out after %d ms",
				      c->gen->cfg->handshake_timeout_ms);
	if (ret == -ENOMEM)
		return gw_conn_refuse(c, NULL, "out of memory");
	if (c->st.verify_error)
		return gw_conn_refuse(
		    c, c->st.failed, "certificate verification failed at depth %d: %s",
		    c->st.verify_depth, X509_verify_cert_error_string(c->st.verify_error));
	if (ret == -EPROTO) {
		/* The code, taken on the thread that ran it (its error queue), is formatted here. */
		if (c->hs.ssl_err)
			ERR_error_string_n(c->hs.ssl_err, ebuf, sizeof(ebuf));
		else
			snprintf(ebuf, sizeof(ebuf), "unknown TLS error");
		return gw_conn_refuse(c, NULL, "TLS handshake failed: %s", ebuf);
	}
	if (ret == -EPIPE)
		return gw_conn_refuse(c, NULL, "connection closed during the TLS handshake");
	return gw_conn_refuse(c, NULL, "handshake thread: %s", strerror(-ret));
}

/* Makes @fd, for @events, the one fd @c waits on. 0 or -errno. */
int gw_conn_watch(struct gw *gw, struct gw_conn *c, int fd, uint32_t events)
{
	/* Every phase that keeps @c waits here: where admission learns that it was authorized. */
	gw_admit_sync(gw, c);
	if (c->watch_fd == fd)
		return fg_evloop_mod(gw->loop, fd, events, &c->src);
	if (c->watch_fd >= 0)
		fg_evloop_del(gw->loop, c->watch_fd);
	c->watch_fd = fd;
	return fg_evloop_add(gw->loop, fd, events, &c->src);
}

/*
 * The mark on every socket fedgate dials when it captures: the capture rules
 * skip marked packets, so fedgate never catches its own connections.
 */
uint32_t gw_conn_mark(const struct gw_conn *c)
{
	const struct fg_config *cfg = c->gen->cfg;

	/*
	 * A transparent tunnel dials whatever its peers name, which another
	 * gateway's capture rules on this host may cover: marked too.
	 */
	for (size_t i = 0; i < cfg->n_tunnels; i++)
		if (cfg->tunnels[i].capture != FG_CAPTURE_NONE || cfg->tunnels[i].transparent)
			return cfg->capture.mark;
	return 0;
}

/* A connection on @t under the current generation, its deadline running. NULL if none. */
struct gw_conn *gw_conn_new(struct gw *gw, const struct fg_tunnel_conf *t)
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
	c->epoch = gw->reval_epoch;
	c->t = t;
	c->plain_fd = c->tls_fd = c->watch_fd = -1;
	c->legs_slot = -1;
	fg_heap_node_init(&c->deadline);
	if (fg_heap_push(&gw->deadlines, &c->deadline,
			 (uint64_t)fg_mono_ms() + (uint64_t)c->gen->cfg->handshake_timeout_ms)) {
		gw_gen_put(gw, c->gen);
		fg_tls_exit(&c->tls);
		free(c);
		return NULL;
	}
	gw->n_conns++;
	c->next = gw->conns;
	if (gw->conns)
		gw->conns->prev = c;
	gw->conns = c;
	return c;
}

/*
 * Closes what @c still holds and wipes it. Sockets still here were refused: an
 * application is told with a reset, as a failed connect over a VPN would.
 */
void gw_conn_free(struct gw *gw, struct gw_conn *c)
{
	int is_term = c->t->mode == FG_MODE_TERMINATE;

	/* A thread owns it: freeing it here would pull it from under that thread. */
	if (gw_hs_owned(c))
		abort();
	gw_admit_leave(gw, c);
	gw_pool_unlink(gw->pools, c, fg_mono_ms());
	if (c->watch_fd >= 0)
		fg_evloop_del(gw->loop, c->watch_fd);
	fg_heap_remove(&gw->deadlines, &c->deadline);
	SSL_free(c->ssl);
	fg_tls_conn_exit(&c->st);
	gw_lr_free(c);
	if (is_term && c->plain_fd >= 0)
		close(c->plain_fd);
	else
		fg_sock_close_reset(c->plain_fd);
	/* Not closed at once: the peer may be writing, and a reset would lose our alert. */
	if (c->reset_tls)
		fg_sock_close_reset(c->tls_fd);
	else
		gw_linger_add(gw->linger, c->tls_fd);
	if (c->peer)
		OPENSSL_cleanse(c->peer, sizeof(*c->peer));
	free(c->peer);
	if (c->hdr)
		OPENSSL_cleanse(c->hdr, FG_DEST_FLIGHT_MAX);
	free(c->hdr);
	free(c->early);
	if (c->prev)
		c->prev->next = c->next;
	else
		gw->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	gw->n_conns--;
	gw_gen_put(gw, c->gen);
	fg_tls_exit(&c->tls);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

/* A reset: it said nothing worth a goodbye, and no alert is owed before a handshake. */
void gw_conn_shed(struct gw *gw, struct gw_conn *c)
{
	if (gw_hs_owned(c)) {
		gw_admit_leave(gw, c);
		gw_hs_cancel(gw, c);
		return;
	}
	if (c->watch_fd >= 0)
		fg_evloop_del(gw->loop, c->watch_fd);
	c->watch_fd = -1;
	fg_sock_close_reset(c->tls_fd);
	c->tls_fd = -1;
	gw_conn_free(gw, c);
}

void gw_conn_make_room(struct gw *gw, const struct sockaddr_storage *ss)
{
	struct gw_conn *v;

	while ((v = gw_admit_victim(gw, ss)))
		gw_conn_shed(gw, v);
}

int gw_conn_shed_oldest(struct gw *gw)
{
	struct gw_conn *v = gw_admit_victim_fds(gw);

	if (!v)
		return -ENOENT;
	gw_conn_shed(gw, v);
	return 0;
}

void gw_conn_free_all(struct gw *gw)
{
	struct gw_conn *c;
	int ret;

	/* The threads' connections first come back: none may be freed while one owns it. */
	gw_hs_stop(gw->hs);
	while ((c = gw_hs_take(gw, &ret)))
		;
	while (gw->conns)
		gw_conn_free(gw, gw->conns);
}

int gw_conn_timeout(const struct gw *gw)
{
	const struct fg_heap_node *first = fg_heap_min(&gw->deadlines);
	uint64_t now = (uint64_t)fg_mono_ms();

	if (!first)
		return -1;
	return first->key <= now ? 0 : (int)(first->key - now);
}
