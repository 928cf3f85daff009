/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_PRIVDROP_H
#define FEDGATE_CONTROL_PRIVDROP_H

#include "control/config-t.h"

/*
 * `fedgate run`, before the data plane starts: resolves $.run_as (an
 * unknown user, or run_as with a tunnel that needs root while it serves,
 * is a config error: printed, FG_EXIT_CONFIG) and tells the data plane its
 * sandbox through its environment (fedgate/sandbox-t.h). Returns 0 or
 * FG_EXIT_CONFIG.
 */
int fg_sandbox_prepare(const struct fg_config *cfg);

/*
 * The control process, once its listeners are bound and before it starts
 * any thread (Landlock binds only the calling thread and those it creates
 * later): Landlock ($.sandbox.landlock), then the drop to $.run_as.
 * Returns 0, or -errno with the reason logged: it must not serve then.
 */
int fg_sandbox_enter(const struct fg_config *cfg);

#endif
