/* SPDX-License-Identifier: MIT */
/*
 * EC JWK tests (control/ca/jwk.c): the P-256 keys of RFC 7515 appendix A.3
 * and RFC 7517 appendix A.1, step's provisioner JWK shape in ca.json, RFC 7638
 * thumbprints (computed independently), and the JWKs that must be refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include "control/ca/jwk.h"
#include "unit.h"

#define A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A3_THUMB "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"
#define R7517_X "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"
#define R7517_Y "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
#define R7517_THUMB "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"

/* The key of JWK text @json, or NULL; @why gets the error. */
static EVP_PKEY *key_of(const char *json, struct fg_err *why)
{
	cJSON *j = cJSON_Parse(json);
	EVP_PKEY *k;

	memset(why, 0, sizeof(*why));
	k = fg_jwk_to_pkey(j, why);
	cJSON_Delete(j);
	return k;
}

static void expect_thumb(const char *json, const char *thumb)
{
	struct fg_err why;
	EVP_PKEY *k = key_of(json, &why);
	char tp[48] = "";

	CHECK(k != NULL);
	if (!k) {
		fprintf(stderr, "    %s: %s\n", json, why.msg);
		return;
	}
	CHECK(fg_jwk_is_p256(k));
	CHECK_EQ(fg_jwk_thumbprint(k, tp), 0);
	CHECK(!strcmp(tp, thumb));
	if (strcmp(tp, thumb))
		fprintf(stderr, "    thumbprint %s, expected %s\n", tp, thumb);
	EVP_PKEY_free(k);
}

static void expect_refused(const char *json, const char *why_part)
{
	struct fg_err why;
	EVP_PKEY *k = key_of(json, &why);

	CHECK(k == NULL);
	CHECK(strstr(why.msg, why_part) != NULL);
	if (k || !strstr(why.msg, why_part))
		fprintf(stderr, "    %s: \"%s\", expected \"%s\"\n", json, why.msg, why_part);
	EVP_PKEY_free(k);
	ERR_clear_error();
}

UNIT_TEST(rfc_keys_and_their_thumbprints)
{
	expect_thumb("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}",
		     A3_THUMB);
	/* RFC 7517 A.1, with "use" and "kid", which the thumbprint leaves out */
	expect_thumb("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" R7517_X "\",\"y\":\"" R7517_Y
		     "\",\"use\":\"enc\",\"kid\":\"1\"}",
		     R7517_THUMB);
	/* step's provisioner key in ca.json: members in another order, and "alg" */
	expect_thumb("{\"use\":\"sig\",\"kty\":\"EC\",\"kid\":\"" A3_THUMB "\",\"crv\":\"P-256\","
		     "\"alg\":\"ES256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}",
		     A3_THUMB);
}

UNIT_TEST(public_jwk_gives_back_the_members)
{
	struct fg_err why;
	EVP_PKEY *k = key_of("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
			     "\",\"d\":\"jpsQnnGQmL-YBIffH1136cLtJdKPc8JT3EbSRl6wk1s\"}",
			     &why);
	cJSON *pub = k ? fg_jwk_public(k) : NULL;
	char *text = pub ? cJSON_PrintUnformatted(pub) : NULL;

	CHECK(text != NULL);
	/* a private "d" member is never read, so never given out */
	if (text)
		CHECK(!strcmp(text, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
				    "\"}"));
	free(text);
	cJSON_Delete(pub);
	EVP_PKEY_free(k);
}

UNIT_TEST(fresh_keys_round_trip)
{
	for (int i = 0; i < 8; i++) {
		EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *back;
		cJSON *j = fg_jwk_public(k);
		char t1[48] = "", t2[48] = "";

		back = fg_jwk_to_pkey(j, NULL);
		CHECK(back != NULL);
		if (back) {
			CHECK_EQ(EVP_PKEY_eq(k, back), 1);
			CHECK_EQ(fg_jwk_thumbprint(k, t1), 0);
			CHECK_EQ(fg_jwk_thumbprint(back, t2), 0);
			CHECK(!strcmp(t1, t2) && strlen(t1) == 43);
		}
		EVP_PKEY_free(back);
		cJSON_Delete(j);
		EVP_PKEY_free(k);
	}
}

UNIT_TEST(other_keys_are_not_p256)
{
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char tp[48];

	CHECK(p384 && ed);
	CHECK(!fg_jwk_is_p256(p384));
	CHECK(!fg_jwk_is_p256(ed));
	CHECK(fg_jwk_public(p384) == NULL);
	CHECK(fg_jwk_public(ed) == NULL);
	CHECK_EQ(fg_jwk_thumbprint(p384, tp), -EINVAL);
	CHECK_EQ(fg_jwk_thumbprint(ed, tp), -EINVAL);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}

UNIT_TEST(bad_jwks_are_refused)
{
	const char *shape = "not an EC P-256 JWK";
	const char *coords = "32 bytes of base64url";

	expect_refused("{}", shape);
	expect_refused("[]", shape);
	expect_refused("{\"kty\":\"RSA\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}",
		       shape);
	expect_refused("{\"kty\":\"ec\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}",
		       shape);
	expect_refused("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}",
		       shape);
	expect_refused("{\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}", shape);
	expect_refused("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\"}", shape);
	expect_refused("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":1,\"y\":\"" A3_Y "\"}", shape);
	/* 31 bytes, padding, standard base64 */
	expect_refused("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9"
		       "uPHvRVA\",\"y\":\"" A3_Y "\"}",
		       coords);
	expect_refused("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "=\",\"y\":\"" A3_Y "\"}",
		       coords);
	expect_refused("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"x/FEzRu9m36HLN/"
		       "tue659LNpXW6pCyStikYjKIWI5a0\"}",
		       coords);
	/* y changed in its last byte: no longer on the curve */
	expect_refused("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"x_FEzRu9m36HLN_"
		       "tue659LNpXW6pCyStikYjKIWI5a4\"}",
		       "not a point on P-256");
	/* the point at x = y = 0 */
	expect_refused("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		       "AAAAAAAA\",\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
		       "not a point on P-256");
}

UNIT_MAIN("jwk", UNIT_CASE(rfc_keys_and_their_thumbprints),
	  UNIT_CASE(public_jwk_gives_back_the_members), UNIT_CASE(fresh_keys_round_trip),
	  UNIT_CASE(other_keys_are_not_p256), UNIT_CASE(bad_jwks_are_refused))
