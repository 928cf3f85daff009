/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_TOKENS_T_H
#define FEDGATE_CA_TOKENS_T_H

#include <stdint.h>

#include "control/ca/sans-t.h"

#define FG_CA_JTI_LEN_MAX 256 /* the longest "jti" accepted */

struct fg_ca_provisioner;

/*
 * What a one-time token that passed fg_ca_token_check() grants. Zero it
 * before the check; fg_ca_token_exit() frees it whatever the check said.
 */
struct fg_ca_token {
	struct fg_ca_provisioner *prov; /* its signer: one of the CA's, not owned */
	char *sub;			/* "sub" */
	struct fg_ca_san_list sans;	/* "sans", or [sub] when it has none */
	struct stack_st_GENERAL_NAME *gens; /* the same as issued: as written, not lowercased */
	char *jti;			/* "jti" */
	int64_t exp;			/* "exp" */
};

#endif
