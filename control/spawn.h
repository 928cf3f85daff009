/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_SPAWN_H
#define FEDGATE_CONTROL_SPAWN_H

#include <sys/types.h>
#include "fedgate/dataplane-t.h"

/*
 * Starts the data plane as a fresh process image (`fedgate dataplane`), so it
 * never holds a copy of the private key. On success returns 0 with *@pid and
 * the control ends of @o->workers SOCK_SEQPACKET sockets in @socks.
 */
int fg_dataplane_spawn(const struct fg_dp_opts *o, pid_t *pid, int *socks);

#endif
