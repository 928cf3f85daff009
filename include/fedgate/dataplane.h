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

/* How the data plane runs; the command line of `fedgate dataplane` carries it. */
struct fg_dp_opts {
	int workers; /* 1..64 */
	enum fg_dp_backend backend;
	int splice_tx; /* kTLS TX by splice through a pipe instead of send from a buffer */
};

/*
 * Starts the data plane as a fresh process image (`fedgate dataplane`), so it
 * never holds a copy of the private key. On success returns 0 with *@pid and
 * the control ends of @o->workers SOCK_SEQPACKET sockets in @socks.
 */
int fg_dataplane_spawn(const struct fg_dp_opts *o, pid_t *pid, int *socks);

/*
 * `fedgate dataplane --workers N --backend B [--kernel-tx copy|splice]`: runs
 * the workers; returns the exit status.
 */
int fg_dataplane_main(int argc, char **argv);

#endif
