/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_DATAPLANE_T_H
#define FEDGATE_DATAPLANE_T_H

/*
 * What the control process tells the data plane at start: `fedgate dataplane`'s
 * command line (control/spawn.c writes it, dataplane/main.c reads it).
 */

/*
 * Data plane workers read their handoff socket at fd FG_DP_FD_BASE + worker
 * index. With the local redirect on, the slot array's map fd follows them
 * (FG_DP_FD_BASE + workers) and the command line says `--legs-fd N`.
 */
#define FG_DP_FD_BASE 3

/* Which backend the data plane gives each tunnel. */
enum fg_dp_backend {
	FG_DP_USERSPACE,   /* fedgate's record layer */
	FG_DP_KERNEL,	   /* kTLS; a socket that takes no key falls back to userspace */
	FG_DP_KERNEL_ONLY, /* kTLS or the tunnel is closed (offload "kernel") */
};

/* The one cap on data plane workers: config, spawn and the data plane all check it. */
#define FG_DP_WORKERS_MAX 64

/* How the data plane runs. */
struct fg_dp_opts {
	int workers; /* 1..FG_DP_WORKERS_MAX */
	enum fg_dp_backend backend;
	int splice_tx; /* kTLS TX by splice through a pipe instead of send from a buffer */
	int legs_fd;   /* the local redirect's slot array (map fd), or -1 */
};

#endif
