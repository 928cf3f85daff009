/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_TAKEOVER_H
#define FEDGATE_CONTROL_TAKEOVER_H

/*
 * Listening sockets passed from a running gateway to its successor over
 * $.admin.socket (control/takeover.c; README "Upgrades that drop nothing").
 */
#include <stddef.h>

struct gw;
struct gw_takeover;

/* Listening sockets at most in one takeover (SCM_RIGHTS carries 253). */
#define FG_TAKEOVER_MAX 250

/* What a takeover received: @n sockets, each with the tunnel name it served ("@admin"). */
struct gw_handed {
	size_t n;
	int fd[FG_TAKEOVER_MAX]; /* -1 once taken */
	char name[FG_TAKEOVER_MAX][65];
};

/*
 * The takeover socket at $.admin.socket (none configured: 0, *@out NULL):
 * replaces whatever is at the path, mode 0600, registered in @gw's loop as
 * SRC_TAKEOVER. 0 or -errno (logged).
 */
int gw_takeover_new(struct gw_takeover **out, struct gw *gw);
/* NULL is fine. */
void gw_takeover_free(struct gw_takeover *t);

/*
 * A successor connected: if it is of our uid (or root) and asks rightly, it
 * gets every listening socket and @gw->handed_over is set (the loop stops
 * accepting, lets handshakes finish, then drains). Waits at most 5 s for
 * its request. Logged either way.
 */
void gw_takeover_ready(struct gw_takeover *t, struct gw *gw);

/*
 * The successor's side: asks the gateway at @path for its listening sockets.
 * 0 with @h filled; -errno with @why (@wlen bytes) saying why and nothing held.
 */
int gw_takeover_fetch(const char *path, struct gw_handed *h, char *why, size_t wlen);

/* The socket handed for @name (taken: the caller owns it now), or -1. */
int gw_handed_take(struct gw_handed *h, const char *name);

/* Closes what was handed and not taken (a tunnel the new config lacks), logged. */
void gw_handed_exit(struct gw_handed *h);

#endif
