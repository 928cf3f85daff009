/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_HS_THREAD_T_H
#define FEDGATE_HS_THREAD_T_H

/*
 * What the handshake threads (control/hs_thread.c) keep in each connection
 * (struct gw_conn). While @worker is set, a thread owns the connection's SSL
 * object, its TLS fd, its fg_tls_conn and its deadline node; the loop touches
 * none of them, nor frees the connection, until it takes it back
 * (gw_hs_take).
 */
#include <stdint.h>

struct gw_conn;

struct gw_hs_slot {
	struct gw_conn *next;  /* on a thread's inbox, or the done queue */
	struct gw_conn *cnext; /* on a thread's list of cancels */
	struct gw_conn *onext; /* on a thread's list of those it posts back at the end of a round */
	int worker;	       /* the owning thread + 1; 0: the loop's. Written by the loop only */
	int ret; /* the outcome posted back (gw_hs_step's, or -ETIMEDOUT, -ECANCELED) */
	unsigned long ssl_err; /* -EPROTO: ERR_get_error() of the thread that ran it, 0 if none */
	/* under the owning thread's lock: */
	int posted; /* the thread has posted it back (its outcome is on the done queue) */
	int cancel; /* the loop asked for it back: it is shed on its return */
	/* the owning thread's alone: */
	int registered; /* its fd is in the thread's epoll */
	int leaving;	/* posted back at the end of this round: no more steps (0 at submit) */
};

#endif
