// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for control/ca/jwk.c: the input is parsed as JSON and read
 * as a JWK. A key that comes out must give back its own x and y as a public
 * JWK, and have a 43-character thumbprint.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>

#include "control/ca/jwk.c"

static int same_member(const cJSON *a, const cJSON *b, const char *name)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, name);
	const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, name);

	return cJSON_IsString(x) && cJSON_IsString(y) && !strcmp(x->valuestring, y->valuestring);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fg_err err = { 0 };
	cJSON *in = cJSON_ParseWithLength((const char *)data, size), *pub;
	EVP_PKEY *key;
	char tp[48];

	key = fg_jwk_to_pkey(in, &err);
	if (key) {
		pub = fg_jwk_public(key);
		if (!pub || !same_member(in, pub, "x") || !same_member(in, pub, "y") ||
		    fg_jwk_thumbprint(key, tp) || strlen(tp) != 43)
			abort();
		cJSON_Delete(pub);
		EVP_PKEY_free(key);
	} else if (!err.msg[0]) {
		abort(); /* a refusal always says why */
	}
	cJSON_Delete(in);
	ERR_clear_error();
	return 0;
}
