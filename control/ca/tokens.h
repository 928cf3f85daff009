/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_TOKENS_H
#define FEDGATE_CA_TOKENS_H

/* One-time tokens of JWK provisioners, as step-ca checks them for /sign. */
#include <stdint.h>

#include "control/ca/ca.h"
#include "control/ca/tokens-t.h"

/*
 * Checks @ott at @now like step-ca's JWK provisioner: a provisioner's ES256
 * signature, "aud" this CA's sign URL, "exp" (at most
 * FG_CA_TOKEN_MAX_LIFETIME_S ahead) and "nbf" with FG_CA_TOKEN_LEEWAY_S,
 * "sub", "sha" (our root), "sans" and "jti". Fills @tok. The token is not
 * spent: fg_ca_token_spend() does that once the request is known to be
 * issuable, so no token is lost to a refusal of the CSR or to a failure that
 * is not the token's. Returns 0 or -errno with the answer (status) in @err.
 */
int fg_ca_token_check(struct fg_ca *ca, const char *ott, int64_t now, struct fg_ca_token *tok,
		      struct fg_err *err);

/*
 * Spends @tok: from here on it is never good again, even if issuing fails.
 * Returns 0 or -EACCES with the answer in @err (401 if used before, 503 when
 * too many tokens are live, 500 when it cannot be recorded).
 */
int fg_ca_token_spend(struct fg_ca *ca, const struct fg_ca_token *tok, int64_t now,
		      struct fg_err *err);

/* Frees what @tok holds (may be NULL) and zeroes it. */
void fg_ca_token_exit(struct fg_ca_token *tok);

#endif
