/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_STATUS_CMD_H
#define FEDGATE_CONTROL_STATUS_CMD_H

/*
 * `fedgate status (-c FILE | --admin HOST:PORT) [--json]`: GET /status from
 * a running gateway's admin listener (the config's admin.listen, or the
 * address given), printed as lines or, with --json, as the JSON it answered.
 * @argv[0] is "status". Returns the exit status: 0; FG_EXIT_CONFIG (2) for
 * usage or a config without admin.listen; 1 when the gateway does not answer
 * (within 5 s) or answers something else.
 */
int fg_status_main(int argc, char **argv);

#endif
