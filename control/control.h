/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_H
#define FEDGATE_CONTROL_H

struct fg_config;
struct fg_ident;
struct gw_dp;

/*
 * Runs the control process of `fedgate run` until SIGINT, or SIGTERM and the
 * data plane's drain: binds the tunnels' listeners, writes "NAME HOST:PORT"
 * lines to @ports_file (if not NULL) once all are bound, and hands each
 * authorized connection to the data plane @dp (restarted if it dies). Renewals, refreshes and file reloads run on its
 * timer; SIGHUP reloads the config file. Takes @id (made from @cfg, which
 * stays the caller's and must outlive the call) and frees it. Returns 0 after
 * a clean stop, a negative errno on a fatal error (a listener could not be
 * bound). A data plane that dies is restarted, not fatal. With @take_over
 * the listeners come from the gateway at $.admin.socket (takeover.h), which
 * then drains; one that does not answer is fatal.
 */
int fg_control_run(struct fg_config *cfg, struct fg_ident *id, struct gw_dp *dp,
		   const char *ports_file, int take_over);

#endif
