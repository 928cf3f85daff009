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
#include <openssl/x509.h>

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

/*
 * conn_dest.c: the phases after authorization. A: the destination header
 * (and the application's first bytes) written, then the handoff. B: the
 * header read (a transparent or a pooled connection), the upstream dialed
 * (gw_conn_upstream_dialed once it is writable), the PROXY v2 header, then
 * the handoff. Each returns what comes next, as conn.c's phases do.
 */
enum gw_step gw_conn_send_dest(struct gw *gw, struct gw_conn *c);
enum gw_step gw_conn_recv_dest(struct gw *gw, struct gw_conn *c);
enum gw_step gw_conn_dial_upstream(struct gw *gw, struct gw_conn *c);
enum gw_step gw_conn_upstream_dialed(struct gw *gw, struct gw_conn *c);

/* The handshake completed but the peer is not admitted: a fatal access_denied. */
void gw_conn_access_denied(struct gw_conn *c);

/*
 * Resumption's part (conn_resume.c). How long an originating connection
 * waits for its peer's NewSessionTicket, at most (the handshake deadline
 * bounds it too): about a round trip after our Finished; the application's
 * bytes wait in its socket meanwhile.
 */
#define GW_TICKET_WAIT_MS 1000

/* Before the handshake, @c->ssl made: asks for a ticket or offers a session. 0 or -ENOMEM. */
int gw_resume_start(struct gw_conn *c);

/*
 * The verified chain of @c's peer (leaf first, anchor last; the caller
 * frees it): a full handshake's, or for a resumed one, the one its full
 * handshake verified, checked again for the time and this side's name
 * (conn_resume.c says why that is enough). 0, -EACCES with @why, or -ENOMEM.
 */
int gw_resume_verified(struct gw_conn *c, STACK_OF(X509) * *chain, char *why, size_t len);

/* Terminate, resumed: the chain the peer sent in the full handshake (@c's); else NULL. */
STACK_OF(X509) * gw_resume_sent(struct gw_conn *c);

/* 1 when @c (originate, authorized) should read its ticket before its handoff. */
int gw_resume_ticket_due(struct gw_conn *c);

/* The wait for the ticket: its deadline set, then restored (@timed_out: none came). */
void gw_resume_wait_begin(struct gw *gw, struct gw_conn *c);
void gw_resume_wait_end(struct gw *gw, struct gw_conn *c, int timed_out);

/*
 * Reads what the peer sent: 0 once the ticket is filed or the peer's first
 * bytes came (kept in @c->early), -EAGAIN when nothing yet, -EPIPE (closed),
 * -ENOBUFS or -ENOMEM.
 */
int gw_resume_read_ticket(struct gw_conn *c);

#endif
