/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_DATAPLANE_H
#define FEDGATE_DATAPLANE_H

#include <sys/types.h>
#include "fedgate/config-t.h"

/* Data plane workers read their handoff socket at fd FG_DP_FD_BASE + worker index. */
#define FG_DP_FD_BASE 3

/* Which backend the data plane gives each tunnel. */
enum fg_dp_backend {
	FG_DP_USERSPACE,   /* fedgate's record layer */
	FG_DP_KERNEL,	   /* kTLS; a socket that takes no key falls back to userspace */
	FG_DP_KERNEL_ONLY, /* kTLS or the tunnel is closed (offload "kernel") */
};

/*
 * Starts the data plane as a fresh process image (`fedgate dataplane`), so it
 * never holds a copy of the private key. On success returns 0 with *@pid and
 * the control ends of @workers SOCK_SEQPACKET sockets in @socks.
 */
int fg_dataplane_spawn(int workers, enum fg_dp_backend backend, pid_t *pid, int *socks);

/* `fedgate dataplane --workers N --backend B`: runs the workers; returns the exit status. */
int fg_dataplane_main(int argc, char **argv);

#endif
