// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for control/ca/b64url.c. Any input is decoded; what
 * decodes must encode back to the very same text (one text per value), and
 * any input as bytes must encode and decode back to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/ca/b64url.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *dec = NULL, *back = NULL;
	size_t dlen = 0, blen = 0;
	char *enc;

	if (!fg_b64url_decode((const char *)data, size, &dec, &dlen)) {
		enc = fg_b64url_encode(dec, dlen);
		if (!enc || strlen(enc) != size || memcmp(enc, data, size))
			abort();
		free(enc);
		free(dec);
	}
	enc = fg_b64url_encode(data, size);
	if (!enc)
		return 0;
	if (fg_b64url_decode(enc, strlen(enc), &back, &blen) || blen != size ||
	    memcmp(back, data, size))
		abort();
	free(back);
	free(enc);
	return 0;
}
