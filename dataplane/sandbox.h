/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_DATAPLANE_SANDBOX_H
#define FEDGATE_DATAPLANE_SANDBOX_H

/*
 * The data plane's sandbox, as the control process set it (fedgate/sandbox-t.h).
 * Each returns 0, or -errno with the reason logged: the data plane must not
 * run then.
 */

/* $.run_as: drops to the user the control process named, if it named one. */
int dp_sandbox_drop(void);

/* $.dataplane.seccomp: installs the filter on every thread. Call once all workers run. */
int dp_sandbox_seccomp(void);

/* ---- seccomp.c ---- */

/* Sets no_new_privs and installs the filter on all threads. 0 or -errno. */
int dp_seccomp_install(void);

#endif
