// SPDX-License-Identifier: MIT
/*
 * Which sources a config names, in the order they load: the identity's
 * (identity.ca, else the files) before the trust's (the trust file, else
 * federation). The files source also watches the trust file beside a CA.
 */
#include <stddef.h>

#include "control/ident_source.h"
#include "control/identity.h"

int fg_ident_new(struct fg_ident **out, const struct fg_config *cfg, struct fg_ident *old,
		 int offline, struct fg_err *err)
{
	const struct fg_ident_source_ops *ops[FG_IDENT_MAX_SOURCES];
	size_t n = 0;

	if (cfg->ca)
		ops[n++] = &fg_ident_ca_ops;
	if (!cfg->ca || cfg->trust_file)
		ops[n++] = &fg_ident_files_ops;
	if (!cfg->trust_file)
		ops[n++] = &fg_ident_federation_ops;
	return fg_ident_create(out, cfg, ops, n, old, offline, err);
}
