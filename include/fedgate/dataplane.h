/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_DATAPLANE_H
#define FEDGATE_DATAPLANE_H

#include <sys/types.h>
#include "fedgate/config-t.h"

/* Data plane workers read their handoff socket at fd FG_DP_FD_BASE + worker index. */
#define FG_DP_FD_BASE 3

/*
 * Starts the data plane as a fresh process image (`fedgate dataplane`), so it
 * never holds a copy of the private key. On success returns 0 with *@pid and
 * the control ends of @workers SOCK_SEQPACKET sockets in @socks.
 */
int fg_dataplane_spawn(int workers, enum fg_offload offload, pid_t *pid, int *socks);

/* `fedgate dataplane --workers N`: runs the workers; returns the exit status. */
int fg_dataplane_main(int argc, char **argv);

/*
 * Probes kernel TLS once: TCP_ULP "tls" on an established loopback socket.
 * Returns 0 when the kernel accepts it, else a negative errno (-ENOENT: no tls
 * module) with a human explanation in @why.
 */
int fg_ktls_probe(const char **why);

#endif
