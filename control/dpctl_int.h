/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_DPCTL_INT_H
#define FEDGATE_CONTROL_DPCTL_INT_H

/*
 * What dpctl.c (the handoff queue) gives dpctl_life.c (the process, the
 * drain, the tick); it calls nothing of dpctl_life.c's. Not for other files:
 * theirs is control/dpctl.h.
 */
#include <stddef.h>
#include "control/dpctl-t.h"

/* @p ends without a tunnel: unlinked and freed, the client gets a reset, the log says why. */
void gw_dp_refuse(struct gw_dp *dp, struct dp_pend *p, const char *why);

/* Arms the timer while something waits (a handoff, a restart, a drain), else stops it. */
void gw_dp_set_tick(struct gw_dp *dp);

/* Sends what is unsent, in order, round robin over workers with room; a failed send is refused. */
void gw_dp_flush(struct gw_dp *dp);

/*
 * Reads what worker @i sent. 0, or -EPIPE: its socket is closed or broken, so
 * the data plane is down, @why (@len bytes) says how, and the caller takes it
 * down with nothing flushed.
 */
int gw_dp_sock_ready(struct gw_dp *dp, int i, char *why, size_t len);

#endif
