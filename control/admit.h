/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_ADMIT_H
#define FEDGATE_ADMIT_H

/*
 * Admission of connections under load (README "Under load from the
 * internet"): how many unauthenticated connections terminate tunnels hold
 * ($.limits, and what RLIMIT_NOFILE leaves), from which source, and what
 * happens when accept4 runs out of file descriptors.
 *
 * A connection is pending from accept on a terminate tunnel until it waits
 * in a phase past authorization. At any limit the oldest pending connection
 * is shed (closed with a reset, no log line of its own): first those still
 * silent, then those handshaking, so that a flood of idle sockets makes room
 * for a real client instead of locking it out. Originate tunnels take local
 * applications: they are never counted or shed. Established tunnels live in
 * the data plane and are out of reach here.
 *
 * Established tunnels are capped by count ($.limits.tunnels, and
 * $.tunnels[].max_tunnels per tunnel name): a new connection of a tunnel at
 * its cap is refused right after accept, before a byte is read or the peer
 * dialed, and again at its handoff (what handshook meanwhile). The tunnels
 * running are never touched.
 *
 * Every shed, every refusal at a cap and every failed accept is counted, and
 * logged at most once a second per reason with its count.
 */
#include <sys/socket.h>
#include "control/gateway-t.h"

/* The admission state into @gw->admit, the fd reserve open. 0 or -errno. */
int gw_admit_new(struct gw *gw);
/* After the last connection is freed; accepts NULL (@gw->admit). */
void gw_admit_free(struct gw *gw);

/*
 * Before a terminate tunnel's new connection from @ss is made: the pending
 * connection to shed so that it fits (of that source at its cap, else of
 * all), counted as shed; NULL once it fits. The caller closes and frees each
 * (gw_conn_free), which takes it off the counts, and asks again.
 */
struct gw_conn *gw_admit_victim(struct gw *gw, const struct sockaddr_storage *ss);

/*
 * Whether a new tunnel of @t fits under its max_tunnels and the current
 * $.limits.tunnels, counting what the data plane runs or is being handed
 * (gw_dp_tunnels): 0, or -EUSERS (counted and logged once a second) for the
 * caller to close the connection with a reset.
 */
int gw_admit_tunnel(struct gw *gw, const struct fg_tunnel_conf *t);

/* accept4 ran out of fds: the oldest pending connection of all, counted as shed; NULL if none. */
struct gw_conn *gw_admit_victim_fds(struct gw *gw);

/* Counts @c (made, its tls_fd set) as pending from @ss. 0, or -ENOMEM: refuse it. */
int gw_admit_join(struct gw *gw, struct gw_conn *c, const struct sockaddr_storage *ss);

/* @c waits in c->state now (gw_conn_watch): moves it between lists, or out once authorized. */
void gw_admit_sync(struct gw *gw, struct gw_conn *c);

/* @c is being freed: no longer counted. */
void gw_admit_leave(struct gw *gw, struct gw_conn *c);

/*
 * accept4 on @l failed with @err (and no victim was left to shed): counted
 * and logged once a second. A lack of fds or memory pauses @l for a short
 * back-off instead of spinning on it; out of fds, what waits in its backlog
 * is first accepted and closed with a reset through the reserve fd (a
 * bounded number).
 */
void gw_admit_accept_failed(struct gw *gw, struct gw_listener *l, int err);

/* Milliseconds until a paused listener resumes (0 if due), -1 when none is paused. */
int gw_admit_timeout(const struct gw *gw);

/* Resumes the listeners whose back-off is over. */
void gw_admit_resume(struct gw *gw);

/* The one-second tick: the counts held back are logged, the fd limit read again. */
void gw_admit_tick(struct gw *gw);

#endif
