/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_JWE_H
#define FEDGATE_CA_JWE_H

/*
 * Password-encrypted JWEs (RFC 7516 compact form, RFC 7518 section 4.8:
 * PBES2-HS256+A128KW, -HS384+A192KW, -HS512+A256KW; content A128GCM, A192GCM
 * or A256GCM), as step keeps a JWK provisioner's private key in ca.json
 * ("encryptedKey": PBES2-HS256+A128KW, 100000 rounds, A256GCM). Pure: no I/O.
 */
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "fedgate/err.h"

/* Rounds above this are refused: each costs one HMAC, and the count comes from the file. */
#define FG_JWE_MAX_P2C 10000000

/*
 * Decrypts @jwe with the @pw_len bytes of @pw. @out gets a malloc'd copy of the
 * plaintext plus a NUL (the caller wipes it with OPENSSL_cleanse() and frees
 * it), @out_len its length. Returns 0, -EINVAL (not such a JWE: @err says
 * what), -EACCES (wrong password or altered: the key unwrap or the tag fails)
 * or -ENOMEM.
 */
int fg_jwe_decrypt(const char *jwe, const char *pw, size_t pw_len, uint8_t **out, size_t *out_len,
		   struct fg_err *err);

/*
 * The P-256 key pair of a JWE whose plaintext is a private JWK (step's
 * "encryptedKey"), or NULL with @err set (fg_jwe_decrypt(), fg_jwk_to_private()).
 */
EVP_PKEY *fg_jwe_private_jwk(const char *jwe, const char *pw, size_t pw_len, struct fg_err *err);

#endif
