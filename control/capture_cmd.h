/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CAPTURE_CMD_H
#define FEDGATE_CAPTURE_CMD_H

#include <stdio.h>
#include "control/config-t.h"

/*
 * `fedgate capture up|down -c FILE`: installs (up) or removes (down) table
 * inet fedgate and the policy routing TPROXY needs, in this network
 * namespace; both idempotent. @argv[0] is "capture". Returns the exit status:
 * 0, FG_EXIT_CONFIG for a bad config or usage, 1 when the kernel refused
 * (without CAP_NET_ADMIN: "capture up needs root (CAP_NET_ADMIN)").
 */
int fg_capture_main(int argc, char **argv);

/*
 * For `fedgate check`: when @cfg has capture tunnels, prints to @out
 * "capture: ..." and, as a shell script, what `capture up` would do; else
 * nothing. A config `capture up` refuses (a capture tunnel on port 0) but
 * `run` takes gets a "capture: ..." line saying why. Returns 0, or 1 (out of
 * memory, printed on stderr).
 */
int fg_capture_print(const struct fg_config *cfg, FILE *out);

#endif
