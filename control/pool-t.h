/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_POOL_T_H
#define FEDGATE_POOL_T_H

#include <stddef.h>
#include <stdint.h>

struct fg_config;
struct gw_gen;
struct fg_route;
struct fg_tunnel_conf;
struct gw_conn;

/* What a connection is to the warm pool (struct gw_conn pool_role). */
enum gw_pool_role {
	GW_POOL_NONE,
	GW_POOL_FILLER,	 /* originate: dialed for a pool, not yet handshaken */
	GW_POOL_READY,	 /* originate: handshaken, idle, in its pool's ready list */
	GW_POOL_WAITING, /* terminate: a pooled connection before its first bytes */
};

/*
 * One originate pool: idle TLS connections to one peer, authorized as
 * @t (and @route, on a capture tunnel) of one config generation.
 */
struct gw_pool {
	const struct fg_tunnel_conf *t;
	const struct fg_route *route; /* NULL: not a capture tunnel */
	struct gw_conn *ready;	      /* newest first, linked by pool_next/pool_prev */
	unsigned int n_ready, n_filling;
	unsigned int fails; /* fillers lost in a row: the backoff's exponent */
	int64_t retry_at;   /* no new filler before, ms on fg_mono_ms() */
	int64_t said_at;    /* the last warning about this pool, for one a minute */
};

/*
 * Every pool of one config (control/pool.c), built for generation @gen,
 * which they hold (conn_pool.c): their tunnels and routes point into it.
 */
struct gw_pools {
	struct gw_gen *gen;
	struct gw_pool *pool;
	size_t n;
	int closed;	 /* draining or handed over: no more fillers */
	int64_t next_ms; /* gw_pool_tick's next refresh, ms on fg_mono_ms() */
	/* terminate: pooled connections waiting for their first bytes */
	struct gw_conn *waiting;
};

/*
 * A tunnel's pooled connections (every pool of it on a capture tunnel):
 * ready, being made, waiting (terminate); @held: those the pool holds that
 * are not handshakes (ready and waiting).
 */
struct gw_pool_count {
	size_t ready, filling, waiting, held;
};

#endif
