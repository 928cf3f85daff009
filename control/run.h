/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_RUN_H
#define FEDGATE_RUN_H

/* Exit status of `run` and `check` for a bad config or bad arguments. */
#define FG_EXIT_CONFIG 2

/*
 * `fedgate run -c FILE [--ports-file FILE]`: loads the config and the
 * identity, starts the data plane and runs the control loop until a signal.
 * @argv[0] is "run". Returns the exit status: 0 after a clean stop, 1 on a
 * fatal error, FG_EXIT_CONFIG for a bad config or usage.
 */
int fg_run_main(int argc, char **argv);

/*
 * `fedgate check -c FILE`: the same verdict as `run` on this machine (config,
 * certificates, key, offload) without contacting a CA, then what `capture up`
 * would install. @argv[0] is "check". Returns 0, or FG_EXIT_CONFIG with the
 * problem printed (1: out of memory).
 */
int fg_check_main(int argc, char **argv);

#endif
