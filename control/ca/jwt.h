/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_JWT_H
#define FEDGATE_JWT_H

/*
 * Compact JWS with ES256 (RFC 7515/7518): ECDSA P-256 over SHA-256, the
 * signature as the raw 64-byte r||s, every part base64url without padding
 * (b64url.h). The EC JWK and its thumbprint, step's "kid", are in jwk.h.
 * Pure: no I/O.
 */
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "control/ca/b64url.h"
#include "control/ca/jwk.h"
#include "fedgate/err.h"

/*
 * Signs @claims into a compact token with header {"alg":"ES256","kid":@kid,"typ":"JWT"}
 * (no "kid" when @kid is NULL). @token: malloc'd, the caller frees it.
 * Returns 0 or -errno with @err set.
 */
int fg_jwt_sign(EVP_PKEY *key, const char *kid, const cJSON *claims, char **token,
		struct fg_err *err);

/*
 * Splits and parses @token without checking the signature: @header and
 * @claims (each optional) are JSON objects the caller frees.
 * Returns 0 or -EINVAL with @err set.
 */
int fg_jwt_decode(const char *token, cJSON **header, cJSON **claims, struct fg_err *err);

/*
 * Checks that @token is an ES256 JWS signed by @pub (header alg must be
 * "ES256", and a "crit" header is refused). Returns 0 or -EACCES with the
 * reason in @err. Claims are the caller's to check (see fg_jwt_decode()).
 */
int fg_jwt_verify(const char *token, EVP_PKEY *pub, struct fg_err *err);

#endif
