/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_REVALIDATE_H
#define FEDGATE_CONTROL_REVALIDATE_H

/*
 * Established tunnels checked again when trust or rules change
 * ($.tunnels[].revalidate, control/revalidate.c): those whose peer no longer
 * passes are closed, each with a log line naming what refused it.
 */
struct gw;

/*
 * Trust or rules changed (@what, for the log: "a config reload"): the rules'
 * epoch moves on and every running tunnel is checked against the current
 * config and trust bundle.
 */
void gw_revalidate_changed(struct gw *gw, const char *what);

/* Checks the running tunnels accepted under an older epoch than the current one. */
void gw_revalidate(struct gw *gw, const char *what);

/*
 * After the loop's events: a trust bundle that changed since the last pass
 * (a federation refresh, a trust file) starts one; tunnels that began to run
 * since and were accepted under older rules are checked.
 */
void gw_revalidate_poll(struct gw *gw);

#endif
