/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_B64URL_H
#define FEDGATE_CA_B64URL_H

/*
 * base64url (RFC 4648 section 5) without padding, as JWS and JWK use it
 * (RFC 7515 section 2). Pure: no I/O.
 */
#include <stddef.h>
#include <stdint.h>

/* @len bytes as base64url without padding: malloc'd NUL-terminated text, or NULL. */
char *fg_b64url_encode(const uint8_t *data, size_t len);

/*
 * Decodes @len characters of base64url: no padding, no other characters, and
 * the unused low bits of the last character zero (one text per value).
 * @out gets a malloc'd buffer of @out_len bytes plus a NUL the caller frees.
 * Returns 0, -EINVAL (not base64url) or -ENOMEM.
 */
int fg_b64url_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);

#endif
