/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_JWK_H
#define FEDGATE_CA_JWK_H

/*
 * EC P-256 public keys (and private ones, as step's "encryptedKey" holds
 * them) as JWKs (RFC 7517, RFC 7518 section 6.2) and their
 * RFC 7638 thumbprint, which step uses as a token's "kid". Pure: no I/O.
 */
#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "fedgate/err.h"

/* 1 if @key is an EC key on P-256, else 0. */
int fg_jwk_is_p256(EVP_PKEY *key);

/* The public JWK of an EC P-256 key: {"kty":"EC","crv":"P-256","x":..,"y":..}; NULL if not one. */
cJSON *fg_jwk_public(EVP_PKEY *key);

/*
 * A P-256 public key from a JWK object (kty "EC", crv "P-256", x and y of 32
 * bytes each, a point on the curve), or NULL with @err set. Other members are
 * ignored. The caller frees the key.
 */
EVP_PKEY *fg_jwk_to_pkey(const cJSON *jwk, struct fg_err *err);

/*
 * A P-256 key pair from a private JWK (fg_jwk_to_pkey()'s members and "d", 32
 * bytes), checked to be one pair; or NULL with @err set. The caller frees it.
 */
EVP_PKEY *fg_jwk_to_private(const cJSON *jwk, struct fg_err *err);

/* RFC 7638 thumbprint (base64url of SHA-256 of the canonical JWK): 43 characters. 0 or -errno. */
int fg_jwk_thumbprint(EVP_PKEY *key, char out[48]);

#endif
