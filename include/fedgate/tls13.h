/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_TLS13_H
#define FEDGATE_TLS13_H

#include <stddef.h>
#include <stdint.h>
#include "fedgate/keys-t.h"

/*
 * Sizes for @cipher: AEAD key length and hash (= secret) length.
 * Returns 0, or -EINVAL for a cipher fedgate does not carry.
 */
int fg_cipher_params(uint16_t cipher, size_t *key_len, size_t *secret_len);

/* "TLS_AES_128_GCM_SHA256" etc., or "unknown". */
const char *fg_cipher_name(uint16_t cipher);

/*
 * HKDF-Expand-Label (RFC 8446 7.1) with the hash of @cipher, through OpenSSL's
 * TLS13-KDF. @label is given without the "tls13 " prefix.
 * Returns 0 or -EINVAL / -EIO.
 */
int fg_tls13_expand_label(uint16_t cipher, const uint8_t *secret, const char *label,
			  const uint8_t *context, size_t context_len, uint8_t *out, size_t out_len);

/* Fills tk->key and tk->iv from tk->secret. Returns 0 or a negative errno. */
int fg_tls13_traffic_keys(uint16_t cipher, struct fg_traffic_keys *tk);

/*
 * Follows a KeyUpdate (RFC 8446 7.2): secret = Expand-Label(secret, "traffic upd"),
 * new key and iv, seq = 0. Returns 0 or a negative errno.
 */
int fg_tls13_key_update(uint16_t cipher, struct fg_traffic_keys *tk);

#endif
