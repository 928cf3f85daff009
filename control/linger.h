/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_LINGER_H
#define FEDGATE_CONTROL_LINGER_H

/*
 * A refused TLS socket's last moments (linger.c): its alert is already
 * written; the socket shuts its sending side and reads and discards what the
 * peer still sends, until EOF, an error or GW_LINGER_MS, then closes. A close
 * over unread bytes would be a reset that throws the alert away at a peer
 * that wrote before it read (a TLS 1.3 client's Certificate, Finished and
 * first request come in one flight).
 */

#include "control/gateway-t.h"

/* How long a refused socket is read from; how many may linger at once (more close at once). */
#define GW_LINGER_MS 500
#define GW_LINGER_MAX 256

struct fg_evloop;
struct gw_linger;

/* Lingering fds, registered in @loop with sources of kind SRC_LINGER. 0 or -ENOMEM. */
int gw_linger_new(struct gw_linger **out, struct fg_evloop *loop);
/* Closes every fd still lingering; NULL is fine. */
void gw_linger_free(struct gw_linger *l);

/*
 * Takes @fd (a connected TCP socket, not in @l's loop; -1 is ignored) and
 * closes it after its linger, or at once when it cannot linger: @l NULL,
 * GW_LINGER_MAX reached, not connected, or out of memory.
 */
void gw_linger_add(struct gw_linger *l, int fd);

/* @s (an SRC_LINGER source of @l) is readable: reads what is there; closes at EOF or error. */
void gw_linger_ready(struct gw_linger *l, struct gw_src *s);

/* Milliseconds to the first deadline (0 if past), -1 when nothing lingers. */
int gw_linger_timeout(const struct gw_linger *l);

/* Closes the fds whose linger is over. */
void gw_linger_expire(struct gw_linger *l);

/*
 * Out of file descriptors: the oldest lingering socket closes now (its
 * alert went out long ago). 0, or -ENOENT when none lingers.
 */
int gw_linger_drop_oldest(struct gw_linger *l);

#endif
