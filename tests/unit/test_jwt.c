/* SPDX-License-Identifier: MIT */
/*
 * ES256 compact JWS tests (control/ca/jwt.c): the ES256 example of RFC 7515
 * appendix A.3 and step-ca-shaped one-time tokens signed by an independent
 * implementation (Python's cryptography, with the test key below), tokens
 * that must be refused (other algorithms, "crit", tampering, wrong keys,
 * malformed parts), and fg_jwt_sign() round trips.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include "control/ca/jwt.h"
#include "unit.h"

/* RFC 7515 A.3: the key, and the JWS it signed */
#define A3_JWK                                                                                     \
	"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","  \
	"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}"
#define A3_CLAIMS "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
#define A3_JWS                                                                                     \
	"eyJhbGciOiJFUzI1NiJ9." A3_CLAIMS                                                          \
	".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
/* RFC 7515 A.1: the same claims under HMAC SHA-256 */
#define A1_JWS                                                                                     \
	"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." A3_CLAIMS                                      \
	".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

/* The test provisioner: d = SHA-256("fedgate test_jwt provisioner"); its thumbprint. */
#define T_JWK                                                                                      \
	"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"Lod_GTfR-fgEXnPsXU2ymRTj05qFm7fQEhs5aZYrZE4\","  \
	"\"y\":\"BSuKG7Afmx0kT24Ybj6sPDS--Wb_OT-J5p-UTtNXw6U\"}"
#define T_KID "rWFETdaSWkY_6OD0UGQnmaJXROgso6LqXtPUox5d1Qs"
/* `step ca token gw.cloud.example --san ... `-shaped: header with kid and typ, claims in Go's order */
#define STEP_CLAIMS                                                                                \
	"eyJhdWQiOiJodHRwczovL2NhLmNsb3VkLmV4YW1wbGU6OTAwMC8xLjAvc2lnbiIsImV4cCI6MTc2NzMyMzM0NSwiaW" \
	"F0IjoxNzY3MzIzMDQ1LCJpc3MiOiJhZG1pbiIsImp0aSI6IjVjM2U4ZjBlMWIyYTRkNmY5YTdjM2IxZTBkMmY0YTZj" \
	"OGUwYjJkNGY2YThjMGUyYjRkNmY4YTBjMmU0YjZkOGYiLCJuYmYiOjE3NjczMjMwNDUsInNhbnMiOlsiZ3cuY2xvdW" \
	"QuZXhhbXBsZSIsIjEwLjAuMC43Iiwic3BpZmZlOi8vY2xvdWQuZXhhbXBsZS9ndyJdLCJzaGEiOiIzYjhjNmZkMmI1" \
	"ZTljMGExZjRkN2UyYjNjNmE5ZjBkMWU0YjdjMmE1ZjhkM2U2YjljMGExZjRkN2UyYjVjOGE5Iiwic3ViIjoiZ3cuY2" \
	"xvdWQuZXhhbXBsZSJ9"
#define STEP_JWS                                                                                   \
	"eyJhbGciOiJFUzI1NiIsImtpZCI6InJXRkVUZGFTV2tZXzZPRDBVR1FubWFKWFJPZ3NvNkxxWHRQVW94NWQxUXMiLC" \
	"J0eXAiOiJKV1QifQ." STEP_CLAIMS                                                            \
	".oga97L-q_jeZlw66IEsHcswsE6y_iholFdzXs1oj9G9kECET0fb1LSTHV1aeLIaUAhLpsk1bBrQQg80YKNzbEw"
#define STEP_NONE "eyJhbGciOiJub25lIn0." STEP_CLAIMS "."
/* {"alg":"ES256","crit":["exp"],"exp":1363284000}.{"iss":"joe"}, validly signed */
#define CRIT_JWS                                                                                   \
	"eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiZXhwIl0sImV4cCI6MTM2MzI4NDAwMH0.eyJpc3MiOiJqb2UifQ.wWy93X" \
	"sKuF5wI76GM8P2YML04JfGtxLfrKPgCkl_b5WEvNfWWLZbC33oJeweWIxcFk84zLQ6c4MUI8dVqpK8Mg"
/* {"typ":"JWT"}.{"iss":"joe"}, validly signed */
#define NOALG_JWS                                                                                  \
	"eyJ0eXAiOiJKV1QifQ.eyJpc3MiOiJqb2UifQ.6ygzOytH9FRHmOSlx3Rxt89WErlTZF6LAUEhNbroEcjeTzksoKSq-" \
	"BjYQ86ePhCQqWxpCD-fxI7MwxYu1hn58A"
/* {"alg":"ES256"}.[1,2], validly signed: claims that are not an object */
#define ARRAY_JWS                                                                                  \
	"eyJhbGciOiJFUzI1NiJ9.WzEsMl0.M4fdRX98wQ9Ps32rVknQ9l-2HpvctCeNViOKWgLI4mtSUQi_CvugG0-FjJUJD" \
	"SprKKCTOuGQltkLGrmZ63JkKA"

static EVP_PKEY *jwk_key(const char *json)
{
	cJSON *j = cJSON_Parse(json);
	EVP_PKEY *k = fg_jwk_to_pkey(j, NULL);

	cJSON_Delete(j);
	return k;
}

/* @token with its part @i (0 header, 1 claims) replaced by base64url(@json); static. */
static const char *swap_part(const char *token, int i, const char *json)
{
	static char out[4096];
	const char *d1 = strchr(token, '.'), *d2 = strchr(d1 + 1, '.');
	char *p = fg_b64url_encode((const uint8_t *)json, strlen(json));

	if (i == 0)
		snprintf(out, sizeof(out), "%s%s", p, d1);
	else
		snprintf(out, sizeof(out), "%.*s.%s%s", (int)(d1 - token), token, p, d2);
	free(p);
	return out;
}

/* fg_jwt_verify(@token, @key) must refuse with a message holding @why. */
static void expect_refused(const char *token, EVP_PKEY *key, const char *why)
{
	struct fg_err err = { 0 };
	int r = fg_jwt_verify(token, key, &err);

	CHECK_EQ(r, -EACCES);
	CHECK(strstr(err.msg, why) != NULL);
	if (r != -EACCES || !strstr(err.msg, why))
		fprintf(stderr, "    %.60s...: %d \"%s\", expected \"%s\"\n", token, r, err.msg, why);
	ERR_clear_error();
}

UNIT_TEST(rfc7515_a3_verifies_and_decodes)
{
	EVP_PKEY *k = jwk_key(A3_JWK);
	struct fg_err err = { 0 };
	cJSON *h = NULL, *c = NULL;

	CHECK(k != NULL);
	CHECK_EQ(fg_jwt_verify(A3_JWS, k, &err), 0);
	CHECK_EQ(fg_jwt_decode(A3_JWS, &h, &c, &err), 0);
	CHECK(cJSON_IsString(cJSON_GetObjectItem(h, "alg")) &&
	      !strcmp(cJSON_GetObjectItem(h, "alg")->valuestring, "ES256"));
	CHECK(!strcmp(cJSON_GetObjectItem(c, "iss")->valuestring, "joe"));
	CHECK_EQ(cJSON_GetObjectItem(c, "exp")->valuedouble, 1300819380);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(c, "http://example.com/is_root")));
	cJSON_Delete(h);
	cJSON_Delete(c);
	EVP_PKEY_free(k);
}

UNIT_TEST(step_token_verifies_and_decodes)
{
	EVP_PKEY *k = jwk_key(T_JWK);
	struct fg_err err = { 0 };
	cJSON *h = NULL, *c = NULL, *sans;
	char kid[48] = "";

	CHECK(k != NULL);
	CHECK_EQ(fg_jwk_thumbprint(k, kid), 0);
	CHECK(!strcmp(kid, T_KID));
	CHECK_EQ(fg_jwt_verify(STEP_JWS, k, &err), 0);
	CHECK_EQ(fg_jwt_decode(STEP_JWS, &h, &c, &err), 0);
	CHECK(!strcmp(cJSON_GetObjectItem(h, "kid")->valuestring, T_KID));
	CHECK(!strcmp(cJSON_GetObjectItem(h, "typ")->valuestring, "JWT"));
	CHECK(!strcmp(cJSON_GetObjectItem(c, "aud")->valuestring,
		      "https://ca.cloud.example:9000/1.0/sign"));
	CHECK(!strcmp(cJSON_GetObjectItem(c, "sub")->valuestring, "gw.cloud.example"));
	CHECK_EQ(cJSON_GetObjectItem(c, "nbf")->valuedouble, 1767323045);
	sans = cJSON_GetObjectItem(c, "sans");
	CHECK_EQ(cJSON_GetArraySize(sans), 3);
	CHECK(!strcmp(cJSON_GetArrayItem(sans, 2)->valuestring, "spiffe://cloud.example/gw"));
	cJSON_Delete(h);
	cJSON_Delete(c);
	/* either part alone */
	CHECK_EQ(fg_jwt_decode(STEP_JWS, NULL, &c, &err), 0);
	cJSON_Delete(c);
	CHECK_EQ(fg_jwt_decode(STEP_JWS, &h, NULL, &err), 0);
	cJSON_Delete(h);
	EVP_PKEY_free(k);
}

UNIT_TEST(other_algorithms_and_crit_are_refused)
{
	EVP_PKEY *k = jwk_key(T_JWK), *a3 = jwk_key(A3_JWK);

	expect_refused(A1_JWS, a3, "algorithm is \"HS256\"");
	expect_refused(STEP_NONE, k, "algorithm is \"none\"");
	expect_refused(NOALG_JWS, k, "algorithm is missing");
	expect_refused(CRIT_JWS, k, "\"crit\"");
	EVP_PKEY_free(k);
	EVP_PKEY_free(a3);
}

UNIT_TEST(tampered_and_misdirected_tokens_are_refused)
{
	EVP_PKEY *k = jwk_key(T_JWK), *a3 = jwk_key(A3_JWK);
	char t[sizeof(STEP_JWS)];
	size_t dot2 = strrchr(STEP_JWS, '.') - STEP_JWS;

	/* the right token, the wrong provisioner key */
	expect_refused(STEP_JWS, a3, "does not verify");
	expect_refused(A3_JWS, k, "does not verify");
	/* the claims decoded, changed and encoded again; the header swapped for a shorter one */
	expect_refused(swap_part(STEP_JWS, 1, "{\"aud\":\"https://ca.cloud.example:9000/1.0/sign\","
					    "\"exp\":1767323345,\"iss\":\"admin\",\"jti\":\"x\","
					    "\"sub\":\"evil.example\"}"),
		       k, "does not verify");
	expect_refused(swap_part(STEP_JWS, 0, "{\"alg\":\"ES256\"}"), k, "does not verify");
	/* one signature character changed */
	memcpy(t, STEP_JWS, sizeof(t));
	t[dot2 + 5] = t[dot2 + 5] == 'A' ? 'B' : 'A';
	expect_refused(t, k, "does not verify");
	/* the signature cut short, or grown */
	memcpy(t, STEP_JWS, sizeof(t));
	t[sizeof(t) - 4] = '\0';
	expect_refused(t, k, "not a 64-byte ES256 signature");
	expect_refused(STEP_JWS "AAAA", k, "not a 64-byte ES256 signature");
	/* no signature at all, and r = s = 0 */
	expect_refused("eyJhbGciOiJFUzI1NiJ9." A3_CLAIMS ".", a3, "not a 64-byte");
	expect_refused("eyJhbGciOiJFUzI1NiJ9." A3_CLAIMS
		       ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		       "AAAAAAAA",
		       a3, "does not verify");
	EVP_PKEY_free(k);
	EVP_PKEY_free(a3);
}

UNIT_TEST(malformed_tokens_are_refused)
{
	static const char *const bad[] = {
		"",
		".",
		"..",
		"...",
		"eyJhbGciOiJFUzI1NiJ9",
		"eyJhbGciOiJFUzI1NiJ9." A3_CLAIMS,
		A3_JWS ".",
		A3_JWS ".AAAA",
		"eyJhbGciOiJFUzI1NiJ9=." A3_CLAIMS ".AAAA", /* padding */
		"e30.." /* {} header, empty claims */,
		"W10.e30.", /* [] header */
		"bnVsbA.e30.", /* null header */
		"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2Ui.", /* {"iss":"joe" cut short */
	};
	EVP_PKEY *a3 = jwk_key(A3_JWK);
	struct fg_err err;
	cJSON *h, *c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		h = c = (cJSON *)"untouched";
		memset(&err, 0, sizeof(err));
		CHECK_EQ(fg_jwt_decode(bad[i], &h, &c, &err), -EINVAL);
		CHECK(err.msg[0] && !strcmp((char *)h, "untouched") && !strcmp((char *)c, "untouched"));
		expect_refused(bad[i], a3, "the token");
	}
	memset(&err, 0, sizeof(err));
	CHECK_EQ(fg_jwt_decode(ARRAY_JWS, NULL, NULL, &err), -EINVAL);
	CHECK(strstr(err.msg, "claims") != NULL);
	EVP_PKEY_free(a3);
}

UNIT_TEST(sign_round_trips_in_steps_shape)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	cJSON *claims = cJSON_Parse("{\"aud\":\"https://ca.example/1.0/sign\",\"exp\":1767323345,"
				    "\"iss\":\"admin\",\"jti\":\"x\",\"sans\":[\"a.example\"],"
				    "\"sub\":\"a.example\"}");
	struct fg_err err = { 0 };
	char *tok = NULL, *text;
	cJSON *h = NULL, *c = NULL;

	CHECK_EQ(fg_jwt_sign(k, "kid-1", claims, &tok, &err), 0);
	CHECK(tok && strchr(tok, '.'));
	CHECK_EQ(fg_jwt_verify(tok, k, &err), 0);
	expect_refused(tok, other, "does not verify");
	CHECK_EQ(fg_jwt_decode(tok, &h, &c, &err), 0);
	text = h ? cJSON_PrintUnformatted(h) : NULL;
	CHECK(text && !strcmp(text, "{\"alg\":\"ES256\",\"kid\":\"kid-1\",\"typ\":\"JWT\"}"));
	free(text);
	CHECK(cJSON_Compare(c, claims, 1));
	cJSON_Delete(h);
	cJSON_Delete(c);
	free(tok);
	/* no kid */
	CHECK_EQ(fg_jwt_sign(k, NULL, claims, &tok, &err), 0);
	CHECK_EQ(fg_jwt_decode(tok, &h, NULL, &err), 0);
	CHECK(cJSON_GetObjectItem(h, "kid") == NULL);
	CHECK_EQ(fg_jwt_verify(tok, k, &err), 0);
	cJSON_Delete(h);
	free(tok);
	cJSON_Delete(claims);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k);
}

UNIT_TEST(sign_refuses_keys_that_are_not_p256)
{
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	cJSON *claims = cJSON_CreateObject();
	struct fg_err err = { 0 };
	char *tok = (char *)"untouched";

	CHECK_EQ(fg_jwt_sign(p384, "k", claims, &tok, &err), -EINVAL);
	CHECK(tok == NULL && strstr(err.msg, "not an EC P-256 key"));
	CHECK_EQ(fg_jwt_sign(ed, "k", claims, &tok, &err), -EINVAL);
	CHECK(tok == NULL);
	cJSON_Delete(claims);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}

UNIT_MAIN("jwt", UNIT_CASE(rfc7515_a3_verifies_and_decodes), UNIT_CASE(step_token_verifies_and_decodes),
	  UNIT_CASE(other_algorithms_and_crit_are_refused),
	  UNIT_CASE(tampered_and_misdirected_tokens_are_refused),
	  UNIT_CASE(malformed_tokens_are_refused), UNIT_CASE(sign_round_trips_in_steps_shape),
	  UNIT_CASE(sign_refuses_keys_that_are_not_p256))
