/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CAPTURE_BPF_H
#define FEDGATE_CAPTURE_BPF_H

/*
 * The gateway's cgroup capture: bpf/capture.bpf.c loaded and attached by
 * `run` at start (before the data plane starts and the listeners open: an
 * application then meets a refused connect, never an uncaptured one) and
 * detached at exit. One gateway per process, so the loaded programs are
 * this module's; nothing is pinned, and a killed gateway's links go with it.
 */
#include <stdio.h>
#include <sys/socket.h>
#include "control/config-t.h"

/*
 * With a "cgroup" capture tunnel in @cfg: plans, loads and attaches, and
 * logs what (fg_capcg_describe). Without one: 0, nothing loaded. Returns 0;
 * FG_EXIT_CONFIG with the reason printed when the config cannot be captured
 * (a port 0 listener, too many port ranges) or the kernel or the process's
 * privileges refuse: never a gateway that silently captures nothing.
 */
int fg_capbpf_start(const struct fg_config *cfg);

/* Detaches and unloads what fg_capbpf_start loaded; harmless when nothing is. */
void fg_capbpf_stop(void);

/*
 * fg_dest_original's cgroup case: the destination the application on
 * accepted @fd dialed, taken from the programs' map. 0; -ENOENT (not
 * captured by this gateway, or nothing loaded); another negative errno.
 */
int fg_capbpf_original(int fd, struct sockaddr_storage *dst);

/*
 * `fedgate check`: with a "cgroup" capture tunnel, one line to @out on what
 * would be attached where, and whether this kernel and process can load the
 * programs (loaded and unloaded again, attached nowhere). 0, or
 * FG_EXIT_CONFIG with the reason printed when `run` would refuse.
 */
int fg_capbpf_print(const struct fg_config *cfg, FILE *out);

#endif
