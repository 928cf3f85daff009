// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for control/ca/jwt.c: the input, as a C string, is decoded
 * as a compact JWS and verified against a fixed P-256 key (the test key of
 * tests/unit/test_jwt.c, which signed the step-shaped seed). A token that
 * verifies must also decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>

#include "control/ca/jwt.c"

#define T_JWK                                                                                      \
	"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"Lod_GTfR-fgEXnPsXU2ymRTj05qFm7fQEhs5aZYrZE4\","  \
	"\"y\":\"BSuKG7Afmx0kT24Ybj6sPDS--Wb_OT-J5p-UTtNXw6U\"}"

static EVP_PKEY *key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	cJSON *jwk = cJSON_Parse(T_JWK);

	(void)argc;
	(void)argv;
	key = fg_jwk_to_pkey(jwk, NULL);
	cJSON_Delete(jwk);
	if (!key)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fg_err err = { 0 };
	char *tok = malloc(size + 1);
	cJSON *h = NULL, *c = NULL;
	int decoded, verified;

	if (!tok)
		return 0;
	memcpy(tok, data, size);
	tok[size] = '\0';
	decoded = !fg_jwt_decode(tok, &h, &c, &err);
	if (decoded && (!cJSON_IsObject(h) || !cJSON_IsObject(c)))
		abort();
	cJSON_Delete(h);
	cJSON_Delete(c);
	verified = !fg_jwt_verify(tok, key, &err);
	if (verified && !decoded)
		abort();
	free(tok);
	ERR_clear_error();
	return 0;
}
