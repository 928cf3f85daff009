/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONN_H
#define FEDGATE_CONN_H

/*
 * Internal to a gateway connection: what its phases (conn.c, and its last,
 * conn_handoff.c) share, kept in conn_life.c, which calls none of them.
 */
#include <stdint.h>
#include <sys/socket.h>
#include "control/gateway-t.h"
#include "control/peer-t.h"

/* What a phase returns: it waits on its fd, or the connection is done (refused or handed off). */
enum gw_step { GW_STEP_WAIT, GW_STEP_DONE };

/* A connection on @t under the current generation, its deadline running. NULL if none. */
struct gw_conn *gw_conn_new(struct gw *gw, const struct fg_tunnel_conf *t);

/*
 * Closes what @c still holds and wipes it. Sockets still here were refused: an
 * application is told with a reset, as a failed connect over a VPN would.
 */
void gw_conn_free(struct gw *gw, struct gw_conn *c);

/*
 * Admission (admit.c) at a limit: before a terminate tunnel's connection from
 * @ss is made, the oldest pending ones are shed (closed with a reset, freed,
 * no log line of their own) until it fits.
 */
void gw_conn_make_room(struct gw *gw, const struct sockaddr_storage *ss);

/*
 * Sheds @c: a reset, no log line (admission's victims). One a handshake
 * thread owns is asked back and leaves admission's count at once; it is
 * shed when it comes back (gw_conn_handshakes_done).
 */
void gw_conn_shed(struct gw *gw, struct gw_conn *c);

/* accept4 ran out of fds: sheds the oldest pending connection. 0, or -ENOENT if none. */
int gw_conn_shed_oldest(struct gw *gw);

/* Makes @fd, for @events, the one fd @c waits on. 0 or -errno. */
int gw_conn_watch(struct gw *gw, struct gw_conn *c, int fd, uint32_t events);

/* The SO_MARK for what @c dials (0: none). */
uint32_t gw_conn_mark(const struct gw_conn *c);

/*
 * The one line a refusal gets: who (@who may be NULL), which root, from where,
 * on which tunnel, which flow, why. Only logs; returns GW_STEP_DONE so that a
 * phase can end with it.
 */
enum gw_step gw_conn_refuse(const struct gw_conn *c, const struct fg_peer_id *who, const char *fmt,
			    ...) __attribute__((format(printf, 3, 4)));

/*
 * The refusal line of a handshake that failed with @ret (gw_hs_step's, or a
 * handshake thread's outcome: hs_thread.h). Returns GW_STEP_DONE.
 */
enum gw_step gw_conn_refuse_handshake(const struct gw_conn *c, int ret);

/*
 * Over 100 refusals a second, the rest get no line of their own: this logs
 * how many there were, once their second is over (from the loop's tick).
 */
void gw_conn_refuse_flush(int64_t now_ms);

/*
 * The last phase (conn_handoff.c): hands @c's sockets and session keys to the
 * data plane's queue, or refuses. Always GW_STEP_DONE: the caller frees @c.
 */
enum gw_step gw_conn_handoff(struct gw *gw, struct gw_conn *c);

#endif
