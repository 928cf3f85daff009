/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_ADMIN_H
#define FEDGATE_CONTROL_ADMIN_H

/*
 * The admin listener ($.admin.listen): plain HTTP/1.1, one request per
 * connection, on the control loop. GET /metrics answers the Prometheus text
 * (control/metrics.h); anything else is 404, 405 or 400. It is for loopback
 * and a scraper: at most ADMIN_CONNS connections at once (more are closed at
 * accept), a request head of at most 16 KiB, 5 s from accept to the whole
 * request, and a connection is closed once its answer is written.
 */
#include <stdint.h>
#include <stdio.h>

struct gw;
struct gw_admin;
struct gw_src;

/*
 * Binds $.admin.listen when the config has one (*@out NULL when not), or
 * takes @handed (a listening socket a predecessor handed over, takeover.h;
 * -1: none) when it is bound to that address, and adds "@admin ADDR" to
 * @ports (may be NULL). @handed is taken either way. 0, or -errno with the
 * reason logged.
 */
int gw_admin_new(struct gw_admin **out, struct gw *gw, FILE *ports, int handed);

/* Its listening socket (for a takeover), or -1. Accepts NULL. */
int gw_admin_fd(const struct gw_admin *a);

/* A successor serves the address now: no more accepts here. Accepts NULL. */
void gw_admin_close_listener(struct gw_admin *a);
/* Closes the listener and every connection. Accepts NULL. */
void gw_admin_free(struct gw_admin *a);
/* An event on one of its sources (SRC_ADMIN): the listener or a connection. */
void gw_admin_ready(struct gw_admin *a, struct gw_src *s);
/* From the loop's tick: connections past their deadline are closed. Accepts NULL. */
void gw_admin_tick(struct gw_admin *a, int64_t now_ms);

#endif
