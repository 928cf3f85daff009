/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_H
#define FEDGATE_CONTROL_H

struct fg_config;
struct fg_ident;

/*
 * Runs the control process of `fedgate run` until SIGINT/SIGTERM: binds the
 * tunnels' listeners, writes "NAME HOST:PORT" lines to @ports_file (if not
 * NULL) once all are bound, and hands each authorized connection to one of the
 * @n_dp data plane sockets. Renewals, refreshes and file reloads run on its
 * timer; SIGHUP reloads the config file. Takes @id (made from @cfg, which
 * stays the caller's and must outlive the call) and frees it. Returns 0 after
 * a clean stop, a negative errno on a fatal error (the data plane died, a
 * listener could not be bound).
 */
int fg_control_run(struct fg_config *cfg, struct fg_ident *id, const int *dp_socks, int n_dp,
		   const char *ports_file);

#endif
