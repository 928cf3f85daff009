/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_NOFILE_H
#define FEDGATE_CONTROL_NOFILE_H

#include "control/config-t.h"

/*
 * `fedgate run`, before the data plane starts (it inherits the limit): sets
 * the RLIMIT_NOFILE soft limit to $.limits.open_files, or to the hard limit
 * when the file names none. The soft limit of 1024 that shells and systemd
 * hand out exists for select(), which fedgate never calls, and it is 2 fds a
 * tunnel in the data plane (4 with kernel_tx splice): 1024 runs out at a few
 * hundred tunnels. A value above the hard limit raises that too where the
 * process may (CAP_SYS_RESOURCE), else it is an error: run must not serve
 * with less than the file asks for. Logs what it set. Returns 0, or
 * FG_EXIT_CONFIG with the reason logged.
 */
int fg_nofile_apply(const struct fg_config *cfg);

#endif
