// SPDX-License-Identifier: MIT
/*
 * The warm pool's connections (control/pool.h). Originate: fillers are
 * dialed here and run conn.c's phases like any connection; authorize()
 * parks them (gw_pool_park_conn); an application's connection takes one's
 * TLS side (gw_pool_take) and goes on from its destination header. An idle
 * one closes at its pool.idle_s, when the peer closes, and when trust, rules
 * or our identity changed since its handshake. Terminate: a pooled
 * connection waits for its first record under pool.idle_s (and pool.max),
 * not under the handshake deadline: it is authenticated and authorized, and
 * idle by design, not slow.
 *
 * Calls go conn.c -> conn_pool.c -> conn_life.c -> pool.c; this file never
 * calls conn.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "control/conn.h"
#include "control/conn_pool.h"
#include "control/gateway.h"
#include "control/identity.h"
#include "control/keys.h"
#include "control/pool.h"
#include "control/sock.h"
#include "control/tls.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/heap.h"
#include "fedgate/log.h"

#define SAY_EVERY_MS 60000

/* Moves @c's deadline to @ms from now. 0 or -ENOMEM (then it has none: the caller frees it). */
static int deadline_in(struct gw *gw, struct gw_conn *c, int64_t ms)
{
	fg_heap_remove(&gw->deadlines, &c->deadline);
	return fg_heap_push(&gw->deadlines, &c->deadline, (uint64_t)(fg_mono_ms() + ms));
}

/* A parked or waiting connection ends politely: close_notify, then conn_life.c's linger. */
static void say_goodbye(struct gw_conn *c)
{
	ERR_clear_error();
	if (c->ssl && SSL_is_init_finished(c->ssl))
		SSL_shutdown(c->ssl);
	ERR_clear_error();
}

/* Whether @c was handshaken under what new handshakes get now. */
static int current(const struct gw *gw, const struct gw_conn *c)
{
	return c->gen == gw->cur && c->epoch == gw->reval_epoch &&
	       c->tls.client == fg_ident_tls(gw->id)->client;
}

static const char *pool_peer(const struct gw_pool *p)
{
	return p->route ? p->route->peer.text : p->t->target.text;
}

/* Starts one filler for @p: the dial, then conn.c's phases from CONN_DIAL_PEER. */
static int start_filler(struct gw *gw, struct gw_pool *p)
{
	const struct fg_addr *to = p->route ? &p->route->peer : &p->t->target;
	struct gw_conn *c = gw_conn_new(gw, p->t);
	int ret;

	if (!c)
		return -ENOMEM;
	c->route = p->route;
	gw_pool_add_filler(p, c);
	snprintf(c->addr, sizeof(c->addr), "%s", pool_peer(p));
	ret = fg_sock_dial((const struct sockaddr *)&to->sa, to->len, gw_conn_mark(c), &c->tls_fd);
	if (!ret) {
		c->state = CONN_DIAL_PEER;
		ret = gw_conn_watch(gw, c, c->tls_fd, EPOLLOUT);
	}
	if (ret) {
		if (fg_mono_ms() - p->said_at >= SAY_EVERY_MS) {
			p->said_at = fg_mono_ms();
			fg_warn("tunnel %s: pool: cannot dial peer gateway %s: %s", p->t->name,
				pool_peer(p), strerror(-ret));
		}
		gw_conn_free(gw, c);
	}
	return ret;
}

/* Idle connections that no longer match what a new handshake would get are closed. */
static void sweep(struct gw *gw, struct gw_pool *p)
{
	struct gw_conn *c = p->ready, *next;
	unsigned int n = 0;

	for (; c; c = next) {
		next = c->pool_next;
		if (current(gw, c))
			continue;
		say_goodbye(c);
		gw_conn_free(gw, c);
		n++;
	}
	if (n)
		fg_info("tunnel %s: pool: %u idle connection(s) to %s closed: trust, rules or "
			"identity changed since their handshake",
			p->t->name, n, pool_peer(p));
}

/*
 * Idle ones close; fillers on their way close once handshaken
 * (gw_pool_park_conn). Returns how many idle ones closed.
 */
static size_t let_go(struct gw *gw, struct gw_pools *ps)
{
	size_t n = 0;

	for (size_t i = 0; i < ps->n; i++) {
		struct gw_pool *p = &ps->pool[i];

		while (p->ready) {
			say_goodbye(p->ready);
			gw_conn_free(gw, p->ready);
			n++;
		}
	}
	for (struct gw_conn *c = gw->conns; c; c = c->next)
		if (c->pool_role == GW_POOL_FILLER)
			c->pool = NULL;
	return n;
}

/* Frees @ps and lets its generation go. */
static void drop(struct gw *gw, struct gw_pools *ps)
{
	if (!ps)
		return;
	gw_gen_put(gw, ps->gen);
	gw_pools_free(ps);
}

/* Rebuilt for a new config: idle ones go, fillers on their way finish as orphans. */
static int follow_config(struct gw *gw)
{
	struct gw_pools *ps;
	int ret;

	if (gw->pools && gw->pools->gen == gw->cur)
		return 0;
	ret = gw_pools_new(&ps, gw->cur);
	if (ret)
		return ret;
	gw_gen_hold(gw);
	if (gw->pools) {
		size_t n = let_go(gw, gw->pools);

		ps->waiting = gw->pools->waiting;
		if (n)
			fg_info("pool: %zu idle connection(s) closed: the config was reloaded", n);
	}
	drop(gw, gw->pools);
	gw->pools = ps;
	return 0;
}

void gw_pool_tick(struct gw *gw)
{
	int64_t now = fg_mono_ms();

	if (gw->pools && now < gw->pools->next_ms)
		return;
	gw_pool_refresh(gw);
	if (gw->pools)
		gw->pools->next_ms = now + 1000;
}

void gw_pool_refresh(struct gw *gw)
{
	int64_t now = fg_mono_ms();

	if (gw->draining || gw->handed_over) {
		gw_pool_close(gw);
		return;
	}
	if (follow_config(gw)) {
		fg_error("pool: out of memory; connections are dialed as they come");
		return;
	}
	for (size_t i = 0; i < gw->pools->n; i++) {
		struct gw_pool *p = &gw->pools->pool[i];
		unsigned int want;

		sweep(gw, p);
		want = gw_pool_want(p, now);
		while (want-- && !start_filler(gw, p))
			;
	}
}

void gw_pool_close(struct gw *gw)
{
	struct gw_pools *ps = gw->pools;

	if (!ps || ps->closed)
		return;
	ps->closed = 1;
	let_go(gw, ps);
	/* Terminate: they carry nothing yet; their originates dial again, elsewhere. */
	while (ps->waiting) {
		say_goodbye(ps->waiting);
		gw_conn_free(gw, ps->waiting);
	}
}

void gw_pool_exit(struct gw *gw)
{
	gw_pool_close(gw);
	drop(gw, gw->pools);
	gw->pools = NULL;
}

enum gw_step gw_pool_park_conn(struct gw *gw, struct gw_conn *c)
{
	struct gw_pool *p = c->pool;
	int ret;

	if (!p || !gw->pools || gw->pools->closed) {
		say_goodbye(c);
		gw_pool_unlink(gw->pools, c, fg_mono_ms());
		return GW_STEP_DONE;
	}
	if (!fg_pool_agreed(c->ssl)) {
		/* An older fedgate, or a terminate tunnel without "pool": not for an hour. */
		fg_warn("tunnel %s: pool: peer gateway %s does not take pooled connections (its "
			"terminate tunnel has no \"pool\"); connections to it are dialed as they "
			"come for the next hour",
			p->t->name, pool_peer(p));
		say_goodbye(c);
		gw_pool_unlink(gw->pools, c, fg_mono_ms());
		p->retry_at = fg_mono_ms() + 3600 * 1000;
		return GW_STEP_DONE;
	}
	ret = deadline_in(gw, c, (int64_t)p->t->pool_idle_s * 1000);
	if (!ret) {
		c->state = CONN_POOLED;
		ret = gw_conn_watch(gw, c, c->tls_fd, EPOLLIN | EPOLLRDHUP);
	}
	if (ret)
		return gw_conn_refuse(c, c->peer, "pool: %s", strerror(-ret));
	gw_pool_park(c);
	fg_debug("tunnel %s: pool: a connection to %s is ready (%u idle)", p->t->name, pool_peer(p),
		 p->n_ready);
	return GW_STEP_WAIT;
}

/*
 * Moves the TLS side of @from (out of its pool) into @to, whose plain side
 * is the application: the handshake, the keys' state and the verified peer.
 */
static void move_tls(struct gw *gw, struct gw_conn *from, struct gw_conn *to)
{
	fg_evloop_del(gw->loop, from->watch_fd);
	from->watch_fd = -1;
	to->tls_fd = from->tls_fd;
	from->tls_fd = -1;
	to->ssl = from->ssl;
	from->ssl = NULL;
	to->st = from->st;
	memset(&from->st, 0, sizeof(from->st));
	/* Same slot, new address: OpenSSL's callbacks now fill @to's state. */
	fg_keys_bind(to->ssl, &to->st);
	to->peer = from->peer;
	from->peer = NULL;
	to->epoch = from->epoch;
	snprintf(to->addr, sizeof(to->addr), "%s", from->addr);
}

int gw_pool_take(struct gw *gw, struct gw_conn *c)
{
	struct gw_pool *p;
	struct gw_conn *r;

	if (!gw->pools || gw->pools->closed || follow_config(gw))
		return 0;
	p = gw_pools_find(gw->pools, c->t, c->route);
	if (!p)
		return 0;
	while ((r = gw_pool_pop(p))) {
		if (current(gw, r))
			break;
		say_goodbye(r);
		gw_conn_free(gw, r);
	}
	if (!r)
		return 0;
	move_tls(gw, r, c);
	gw_conn_free(gw, r);
	gw_pool_refresh(gw);
	return 1;
}

enum gw_step gw_pool_readable(struct gw *gw, struct gw_conn *c)
{
	uint8_t b;
	int n, err;

	(void)gw;
	/* Tickets and key updates are taken; data before our header, or an end, closes it. */
	ERR_clear_error();
	n = SSL_read(c->ssl, &b, 1);
	err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
	if (err == SSL_ERROR_WANT_READ)
		return GW_STEP_WAIT;
	ERR_clear_error();
	if (n > 0)
		return gw_conn_refuse(c, c->peer, "pool: the peer sent data on an idle connection");
	fg_debug("tunnel %s: pool: %s closed an idle connection", c->t->name, c->addr);
	return GW_STEP_DONE;
}

void gw_pool_expired(struct gw *gw, struct gw_conn *c)
{
	(void)gw;
	if (c->pool_role == GW_POOL_WAITING)
		fg_info("tunnel %s: pooled connection from %s carried nothing for %d s "
			"(pool.idle_s): closed",
			c->t->name, c->addr, c->t->pool_idle_s);
	else
		fg_debug("tunnel %s: pool: an idle connection to %s closed after %d s", c->t->name,
			 c->addr, c->t->pool_idle_s);
	say_goodbye(c);
}

int gw_pool_wait_conn(struct gw *gw, struct gw_conn *c)
{
	int ret;

	/* Built once here if need be, never rebuilt: that would close others mid-batch. */
	if (!gw->pools && follow_config(gw))
		return -ENOMEM;
	if (gw_pool_count(gw->pools, c->t->name).waiting >= (size_t)c->t->pool_max)
		return -EUSERS;
	ret = deadline_in(gw, c, (int64_t)c->t->pool_idle_s * 1000);
	if (ret)
		return ret;
	gw_pool_wait(gw->pools, c);
	return 0;
}

int gw_pool_unwait(struct gw *gw, struct gw_conn *c)
{
	if (c->pool_role != GW_POOL_WAITING)
		return 0;
	gw_pool_unlink(gw->pools, c, fg_mono_ms());
	return deadline_in(gw, c, c->gen->cfg->handshake_timeout_ms);
}
