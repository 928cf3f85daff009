/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONN_POOL_H
#define FEDGATE_CONN_POOL_H

/* The warm pool's connections: see conn_pool.c (bookkeeping: pool.h). */
#include "control/conn.h"

/*
 * After each take, and from gw_pool_tick: the pools follow the current config,
 * idle connections that trust, rules or identity outdated close, and
 * fillers start where there is room (not while backing off, draining or
 * handed over).
 */
void gw_pool_refresh(struct gw *gw);

/*
 * gw_pool_refresh once a second, from the loop after its batch of events
 * (an idle connection it closes may have had an event in the batch).
 */
void gw_pool_tick(struct gw *gw);

/* Every idle connection closes; fillers on their way close once handshaken. */
void gw_pool_close(struct gw *gw);

/* gw_pool_close, then the pools are freed (the loop's teardown). */
void gw_pool_exit(struct gw *gw);

/*
 * authorize() of a filler: into its pool, waiting on its socket, until
 * taken, idle too long, or closed by the peer. STEP_DONE when it has no
 * pool any more or the peer did not agree to pooling.
 */
enum gw_step gw_pool_park_conn(struct gw *gw, struct gw_conn *c);

/*
 * Originate: @c, an application's connection (routed on a capture tunnel),
 * takes the TLS side of a ready connection of its pool and refills it.
 * 1 when taken (go on with the destination header), 0 when none was ready.
 */
int gw_pool_take(struct gw *gw, struct gw_conn *c);

/* A parked connection's socket is readable. STEP_WAIT, or STEP_DONE to free it. */
enum gw_step gw_pool_readable(struct gw *gw, struct gw_conn *c);

/* A parked or waiting connection's deadline: its line and close_notify; the caller frees it. */
void gw_pool_expired(struct gw *gw, struct gw_conn *c);

/*
 * Terminate: authorized @c agreed to pooling: it waits for its first record
 * under pool.idle_s. 0, -EUSERS (pool.max connections wait already), or
 * -ENOMEM.
 */
int gw_pool_wait_conn(struct gw *gw, struct gw_conn *c);

/* Its first record came: the handshake deadline again, for the dial. 0 or -ENOMEM. */
int gw_pool_unwait(struct gw *gw, struct gw_conn *c);

#endif
