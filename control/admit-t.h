/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_ADMIT_T_H
#define FEDGATE_ADMIT_T_H

/*
 * What admit.c keeps in each connection (struct gw_conn): an unauthenticated
 * terminate connection is on two lists in the order it got where it is, all
 * of them and those from its source, so that the oldest one is found in O(1)
 * wherever a limit is reached.
 */
#include <stddef.h>

struct gw_source;

struct gw_pend_link {
	struct gw_pend_link *prev, *next;
};

/* A circular list around its own head; empty when head.next == &head. */
struct gw_pend_list {
	struct gw_pend_link head;
};

/*
 * Which list: silent (no whole ClientHello record yet) or in its TLS
 * handshake. A flood of silent sockets is shed before any connection that
 * is handshaking, which is what a real client is doing.
 */
enum gw_pend_tier { GW_PEND_NONE = -1, GW_PEND_HELLO = 0, GW_PEND_HANDSHAKE = 1, GW_PEND_TIERS };

struct gw_pend {
	struct gw_pend_link all;  /* on the gateway's list of @tier */
	struct gw_pend_link src;  /* on @source's list of @tier */
	struct gw_source *source; /* NULL: not counted (originate, or authorized) */
	int tier;		  /* enum gw_pend_tier while @source is set */
};

#endif
