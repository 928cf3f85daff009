// SPDX-License-Identifier: MIT
/* base64url without padding (RFC 4648 section 5): see b64url.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control/ca/b64url.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *fg_b64url_encode(const uint8_t *data, size_t len)
{
	char *out = malloc(len / 3 * 4 + 5), *p = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];

		*p++ = b64url[v >> 18 & 63];
		*p++ = b64url[v >> 12 & 63];
		*p++ = b64url[v >> 6 & 63];
		*p++ = b64url[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)data[i] << 16;

		*p++ = b64url[v >> 18 & 63];
		*p++ = b64url[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;

		*p++ = b64url[v >> 18 & 63];
		*p++ = b64url[v >> 12 & 63];
		*p++ = b64url[v >> 6 & 63];
	}
	*p = '\0';
	return out;
}

/* The 6-bit value of @c, or -1 for anything outside the alphabet (NUL included). */
static int b64val(char c)
{
	const char *p = c ? strchr(b64url, c) : NULL;

	return p ? (int)(p - b64url) : -1;
}

int fg_b64url_decode(const char *text, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *buf;
	uint32_t acc = 0;
	size_t n = 0;
	int bits = 0;

	/* One character left over carries 6 bits: not even one byte. */
	if (len % 4 == 1)
		return -EINVAL;
	buf = malloc(len / 4 * 3 + 3);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = b64val(text[i]);

		if (v < 0)
			goto invalid;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero: one encoding per value, no tampering room. */
	if (bits && (acc & ((1u << bits) - 1)))
		goto invalid;
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return 0;
invalid:
	free(buf);
	return -EINVAL;
}
