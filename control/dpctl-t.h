/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_DPCTL_T_H
#define FEDGATE_CONTROL_DPCTL_T_H

/*
 * Private to the data plane's control (dpctl.c: the handoff queue;
 * dpctl_life.c: the process, the drain, the tick): the state both share.
 * Everyone else sees struct gw_dp only by name (control/dpctl.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "control/gateway-t.h"
#include "fedgate/dataplane-t.h"

struct fg_evloop;
struct fg_handoff;
struct fg_handoff_revoke;
struct gw_dptrack;

struct dp_pend {
	struct dp_pend *next;
	uint32_t id;
	int worker; /* -1 while unsent */
	int plain_fd, tls_fd;
	struct fg_handoff *h; /* until sent */
	int64_t since;	      /* queued, then sent: ms on fg_mono_ms() */
	char *accepted;
	char tunnel[64], peer[256];
	int legs_slot;	     /* the plain side's local redirect slot, -1: none */
	uint64_t legs_owner; /* its owner word when handed off (control/local_redirect.h) */
};

struct dp_sock {
	struct gw_src src; /* first: the loop's tag */
	int fd;		   /* -1 while the data plane is down */
	int want_out;	   /* EPOLLOUT registered: the socket was full */
	size_t n_tunnels;  /* as the worker last reported */
	size_t inflight;
	int drain_due; /* SIGTERM: its drain request is still to be sent */
	/* revocations to send (revalidate.c), in order, before any handoff */
	struct fg_handoff_revoke *revoke;
	size_t n_revoke, cap_revoke;
	int64_t heard; /* when it last sent anything (or started): ms on fg_mono_ms() */
};

struct gw_dp {
	struct fg_dp_opts opts;
	uint32_t drain_ms;
	struct fg_evloop *loop;
	pid_t pid;
	int64_t up_since, restart_at; /* restart_at 0: none pending */
	unsigned int backoff_ms, restarts;
	struct dp_sock w[FG_DP_WORKERS_MAX];
	int next_w;
	struct dp_pend *head, *tail;
	size_t n_pend;
	uint32_t next_id;
	struct gw_src timer_src;
	int timerfd;
	int tick_armed; /* the timer runs: armed once when work appears, never pushed back */
	int draining, done;
	int64_t kill_at;
	unsigned long n_refused;  /* handoffs the data plane did not take: for the log */
	struct gw_dptrack *track; /* queued and running tunnels, by id and name */
	int stale;		  /* a tunnel accepted under older rules runs now (gw_dp_stale) */
};

#endif
