/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_JWT_H
#define FEDGATE_JWT_H

/*
 * Compact JWS with ES256 (RFC 7515/7518): ECDSA P-256 over SHA-256, the
 * signature as the raw 64-byte r||s, every part base64url without padding.
 * And the EC JWK (RFC 7517) with its RFC 7638 thumbprint, which step uses as
 * the token's "kid".
 */
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "control/ca/pki.h"

/* base64url without padding; malloc'd NUL-terminated text, or NULL. */
char *fg_b64url_encode(const uint8_t *data, size_t len);
/* Decodes base64url (no padding, no other characters); malloc'd, NUL-terminated. */
int fg_b64url_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);

/* Signs @claims into a compact token with header {"alg":"ES256","kid":@kid,"typ":"JWT"}. */
int fg_jwt_sign(EVP_PKEY *key, const char *kid, const cJSON *claims, char **token,
		struct fg_err *err);

/*
 * Splits and parses @token without checking the signature: @header and
 * @claims (each optional) are JSON objects the caller frees.
 */
int fg_jwt_decode(const char *token, cJSON **header, cJSON **claims, struct fg_err *err);

/*
 * Checks that @token is an ES256 JWS signed by @pub (header alg must be
 * "ES256", and a "crit" header is refused). Returns 0 or -EACCES with the
 * reason in @err. Claims are the caller's to check (see fg_jwt_decode()).
 */
int fg_jwt_verify(const char *token, EVP_PKEY *pub, struct fg_err *err);

/* The public JWK of an EC P-256 key: {"kty":"EC","crv":"P-256","x":..,"y":..}. */
cJSON *fg_jwk_public(EVP_PKEY *key);
/* A P-256 public key from a JWK object, or NULL with @err set. */
EVP_PKEY *fg_jwk_to_pkey(const cJSON *jwk, struct fg_err *err);
/* RFC 7638 thumbprint (base64url of SHA-256 of the canonical JWK): 43 characters. */
int fg_jwk_thumbprint(EVP_PKEY *key, char out[48]);

#endif
