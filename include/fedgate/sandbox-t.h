/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_SANDBOX_T_H
#define FEDGATE_SANDBOX_T_H

/*
 * What the control process tells the data plane about its sandbox: two
 * variables in the environment it starts it with (control/run.c sets both,
 * dataplane/sandbox.c reads them before anything else can change them).
 */

/* "0": no seccomp filter ($.dataplane.seccomp false). Absent or anything else: the filter. */
#define FG_DP_ENV_SECCOMP "FEDGATE_DP_SECCOMP"
/* "UID:GID" ($.run_as): the data plane drops to them before it runs. Absent: it stays. */
#define FG_DP_ENV_RUN_AS "FEDGATE_DP_RUN_AS"
/*
 * Tests only: "1" makes the data plane call socket(2) right after its filter
 * is in, which the filter must answer with SIGSYS. It does nothing when the
 * filter is off, and nothing before it is in.
 */
#define FG_DP_ENV_SECCOMP_PROBE "FEDGATE_TEST_SECCOMP_PROBE"

#endif
