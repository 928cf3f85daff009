/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_GATEWAY_H
#define FEDGATE_GATEWAY_H

/* Between the control loop's files (gateway-t.h says who calls whom). */
#include <sys/socket.h>
#include "control/gateway-t.h"

struct fg_job;

/*
 * conn.c: one connection, accept -> dial -> handshake -> authorize ->
 * PROXY v2 -> handoff. Each of these runs the phases an event allows and
 * frees the connections that end (refused, timed out, or handed off); a
 * connection it keeps waits on one fd, registered with &c->src.
 */

/* A listener is readable: accepts (a bounded batch off its backlog) and starts each. */
void gw_conn_accept(struct gw *gw, struct gw_listener *l);

/* The fd @c waits on is ready: runs its next phases. */
void gw_conn_ready(struct gw *gw, struct gw_conn *c);

/* The handshake threads posted outcomes (SRC_HANDSHAKES): each connection goes on. */
void gw_conn_handshakes_done(struct gw *gw);

/* Refuses every connection past its handshake deadline. */
void gw_conn_expire(struct gw *gw);

/* Milliseconds to the first deadline (0 if past), -1 when there is none. */
int gw_conn_timeout(const struct gw *gw);

/* Frees every connection (teardown). */
void gw_conn_free_all(struct gw *gw);


/*
 * reload.c: config generations. @gw->cur is the one new connections take;
 * a retired one lives until its last connection puts it.
 */

/* Makes @cfg (the caller's, not freed here) the first current generation. 0 or -ENOMEM. */
int gw_gen_init(struct gw *gw, struct fg_config *cfg);

/* The current generation, with one more reference for a connection. */
struct gw_gen *gw_gen_hold(struct gw *gw);

/* Drops a connection's reference; frees @g once nothing uses it. */
void gw_gen_put(struct gw *gw, struct gw_gen *g);

/* Frees every generation (teardown, after the connections). */
void gw_gen_exit(struct gw *gw);

/*
 * SIGHUP: loads the config file again, on gw->reload_jobs' thread (a file on
 * a hung mount stalls that thread, never the loop; each file gets 5 s).
 * A SIGHUP during a load asks for one more after it: the edit it announces
 * may have come after the load read the file.
 */
void gw_reload(struct gw *gw);

/*
 * The load's result (@j, freed here): what verifies becomes current for new
 * handshakes; otherwise the error is logged and the running config stays.
 */
void gw_reload_done(struct gw *gw, struct fg_job *j);

#endif
