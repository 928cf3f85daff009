/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_POOL_H
#define FEDGATE_POOL_H

/*
 * The warm pool's bookkeeping and its mark on the wire; the connections in
 * it are conn_pool.c's. An originate tunnel with $.tunnels[].pool keeps that
 * many handshaken, authorized TLS connections to its peer (one pool per
 * route on a capture tunnel), so an application's connection is paired with
 * one at once and its first bytes leave in the first flight. A pooled
 * connection offers the ALPN protocol "fedgate-pool/1"; a terminate tunnel
 * with a pool selects it, and then waits up to its pool.idle_s for the
 * first record, the destination header (control/dest.h) that the originate
 * writes when it pairs the connection: no connection upstream before it.
 * Nothing here calls the connection code: calls go conn*.c -> pool.c.
 */
#include <stdint.h>
#include <openssl/ssl.h>
#include "control/pool-t.h"

#define FG_POOL_ALPN "fedgate-pool/1"

/*
 * The pools @gen's tunnels ask for, all empty, in *@out; @gen is the
 * caller's to hold for them. 0 or -ENOMEM.
 */
int gw_pools_new(struct gw_pools **out, struct gw_gen *gen);

/* Frees @ps (NULL is fine); its ready lists must be empty, its fillers let go (gw_pool_orphan). */
void gw_pools_free(struct gw_pools *ps);

/* The pool for @t (and @route), or NULL. */
struct gw_pool *gw_pools_find(struct gw_pools *ps, const struct fg_tunnel_conf *t,
			      const struct fg_route *route);

/* How many fillers @p should start now: room left, unless backing off. */
unsigned int gw_pool_want(const struct gw_pool *p, int64_t now_ms);

/* @c, a filler, counted in @p until it is parked or let go. */
void gw_pool_add_filler(struct gw_pool *p, struct gw_conn *c);

/* Filler @c handshook: into @c->pool's ready list. */
void gw_pool_park(struct gw_conn *c);

/* @p's newest ready connection, out of the pool (role none), or NULL. */
struct gw_conn *gw_pool_pop(struct gw_pool *p);

/* Terminate: @c waits for its first bytes, on @ps's waiting list. */
void gw_pool_wait(struct gw_pools *ps, struct gw_conn *c);

/* Tunnel @name's pooled connections (struct gw_pool_count); NULL @name: every tunnel's. */
struct gw_pool_count gw_pool_count(const struct gw_pools *ps, const char *name);

/*
 * @c leaves whatever list it is on (every role; none is a no-op). A filler
 * that leaves unparked failed: its pool backs off, 1 s doubling to 60 s.
 */
void gw_pool_unlink(struct gw_pools *ps, struct gw_conn *c, int64_t now_ms);

/* The wire: the client offers FG_POOL_ALPN; 0, or -ENOMEM. */
int fg_pool_offer(SSL *ssl);

/*
 * The server's ALPN choice: FG_POOL_ALPN when offered and the connection's
 * fg_tls_conn allows it (pool_ok), else none, as without the callback.
 */
void fg_pool_ctx(SSL_CTX *ctx);

/* 1 when @ssl's handshake agreed on FG_POOL_ALPN. */
int fg_pool_agreed(const SSL *ssl);

#endif
