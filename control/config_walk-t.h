/* SPDX-License-Identifier: MIT */
/* Internal to the config parser (control/config_*.c). */
#ifndef FEDGATE_CONFIG_WALK_T_H
#define FEDGATE_CONFIG_WALK_T_H

#include "control/config-t.h"

/* A walk over the config's JSON: the file and dir for messages and paths, where checks go. */
struct fg_conf_walk {
	const char *file;
	const char *dir;
	struct fg_err *err;
	struct fg_conf_checks *checks;
};

#endif
