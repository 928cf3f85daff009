/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_LANDLOCK_H
#define FEDGATE_CONTROL_LANDLOCK_H

#include "control/config-t.h"

/*
 * Confines this process (and what it starts later) with Landlock to the
 * files it needs once it serves: the config's directory and the identity's
 * files (read; the identity's directories writable with identity.ca, where
 * renewal writes), the resolver's and OpenSSL's files, the libraries, and
 * @exe (read and execute: a data plane started again). Returns 0 (with a
 * kernel without Landlock too, after one log line), or -errno: the process
 * must not serve then.
 */
int fg_landlock_enter(const struct fg_config *cfg, const char *exe);

#endif
