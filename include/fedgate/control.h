/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_H
#define FEDGATE_CONTROL_H

#include "fedgate/config-t.h"
#include "fedgate/tls-t.h"

/*
 * Runs the control process of `fedgate run` until SIGINT/SIGTERM: binds the
 * tunnels' listeners, writes "NAME HOST:PORT" lines to @ports_file (if not
 * NULL) once all are bound, and hands each authorized connection to one of the
 * @n_dp data plane sockets. Returns 0 after a clean stop, a negative errno on
 * a fatal error (the data plane died, a listener could not be bound).
 */
int fg_control_run(const struct fg_config *cfg, struct fg_tls *tls, const int *dp_socks,
		   int n_dp, const char *ports_file);

#endif
