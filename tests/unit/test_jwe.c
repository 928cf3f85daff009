/* SPDX-License-Identifier: MIT */
/*
 * PBES2 JWE tests (control/ca/jwe.c): three JWEs made by go.step.sm/crypto/jose (the
 * library step and step-ca use; tests/stepca/main.go's sources, p2c 1000 to stay quick) of
 * one private P-256 JWK, one per PBES2 and GCM size, and what must be refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "control/ca/b64url.h"
#include "control/ca/jwe.h"
#include "control/ca/jwk.h"
#include "unit.h"

#define PW "pw pw"
#define KID "vIR7wJjMloZcX_etXH4LCHDhKVOu-S6HenJtVi4mD-s"
#define PLAIN                                                                                      \
	"{\"use\":\"sig\",\"kty\":\"EC\",\"kid\":\"" KID "\",\"crv\":\"P-256\",\"alg\":\"ES256\"," \
	"\"x\":\"0E7bKjUDGsGQNc3nabyv7MoDrKXU2BJx9lCqNCZ-Dog\","                                   \
	"\"y\":\"etLmJhgBJYyGNuouCBwnGIR5T9bQBkpEv238SEzijvY\","                                   \
	"\"d\":\"vAKm2U4yK6TUJlN1oFHVWj7jEQeVtQNEuMdug93msGY\"}"

static const char HS256_A256GCM[] =
    "eyJhbGciOiJQQkVTMi1IUzI1NitBMTI4S1ciLCJjdHkiOiJqd2sranNvbiIsImVuYyI6IkEyNTZHQ00iLCJw"
    "MmMiOjEwMDAsInAycyI6Ik1ERXlNelExTmpjNE9XRmlZMlJsWmcifQ.kWsSh457iMgGsG8KoFcEVjjM9p9c1"
    "6aPRM47FTXqx1l0IgR4B7-GEw.15ZX-iSCcQ25dKBZ.qr6wbq5yYv_rIJFyWYrqb_Yw5gMMZTx_UZqfjNGhN"
    "jBFHCC4EiPyww_OMgeUyXy8YzO3WI-ZToSQYpOH25JqzJk3HZ_IauGftNJ_MJMFvPuG89_O2w7yHI1Rn8Iyy"
    "CH1IsqyVVCTodcvGrhDmxPWgeP_YRmBIIuy1g5QP5DH7S90-XIQXp9RIobMyIyAePKGPawIEr94iqIiNSbQ8"
    "PfohVTWogYTX6FKtgjx9-z8Blnb6gmL5APvv_KyJiHWHoGF4B0fbRJgwYFnKUzq3OinGIq2HPjeKqueyDUUd"
    "ENHQGurKKqcqRxk1tZP_FAhh34LlxuL7WcWMkoDHVXwajg.nmu6G0zxuxMBxwgog-KM3Q";

static const char HS384_A192GCM[] =
    "eyJhbGciOiJQQkVTMi1IUzM4NCtBMTkyS1ciLCJjdHkiOiJqd2sranNvbiIsImVuYyI6IkExOTJHQ00iLCJw"
    "MmMiOjEwMDAsInAycyI6Ik1ERXlNelExTmpjNE9XRmlZMlJsWmcifQ.WJtkMfC-U7yiyZYHMOj0a4E49EGKH"
    "wMcKkQl-TKFNCs.tM5ZUvkGLt-G7Xle.C7ftv29LaLO_uqvTLTY35E65ij4-1vRc2P_ll0ddLuiUAjMJ4j1l"
    "qvG4z8nn5JN-r2QaxCOfUsdeHvvCGIn2RIbiiCZUe6r15feUEc3SrstBl4DQ93jtZrJKdJOFn0TezSUK_vhq"
    "q_Uoz599riBI3kA1VwBLLfquHtPjZCtJ66sBCXyWyQc7XrP9Ko_RtHnfy6g_VcRYw6Mgaijq-QQs-pFYPSEx"
    "5zirc5_LwB0Bx5XEHDk83SSvEgXUb4ghbw1aBkYph1Xe0mPJRZtnMIvruw0XHKDhQgrzU2eXSKSbrQGIn-Yw"
    "YcTr9NQ2qxS3FG_Vipg0yUbgWmBhaNpNnug.rpj2wdTFTvRgd25fXecEmg";

static const char HS512_A128GCM[] =
    "eyJhbGciOiJQQkVTMi1IUzUxMitBMjU2S1ciLCJjdHkiOiJqd2sranNvbiIsImVuYyI6IkExMjhHQ00iLCJw"
    "MmMiOjEwMDAsInAycyI6Ik1ERXlNelExTmpjNE9XRmlZMlJsWmcifQ.D2LjDEKXXn77suGeTiD9YuO875rtG"
    "WPh.Obvs-aEQRNxh5_sx.WihgAigW1CoA00HzwIGlnRWliEyalG8tQSEkKWkTIGJ5or5bV46hM8b_ufFsYd6"
    "VdqJC7udm42L8jmFaXv4iHQokgRjO58WFtBnUMZPhYHgnDFU1QUKMy--GLeiKgNl2ihjlNLTrqdXW_EJjHdw"
    "9ab17cA6PxROvG6qdXDhvQ2TyufrW-y9t5BgGyogzHt8EkYBlYCaczgyKoBMZz6izHhJLHAlWDfvM0OqSoBb"
    "218U3SeMdxcVzb6E_3mqKuKEO4dClP2JsQ5odEuo4cRKpXiPJLpcUSRIIbD9WxPGaFLWkOkMkLGW5OQiVUfn"
    "bpNGrjPhaPgsuYjSFGHo7w7Q.ILDfBLEC2breFxOUxV3D5Q";

static const char *const vectors[] = {HS256_A256GCM, HS384_A192GCM, HS512_A128GCM};

/* fg_jwe_decrypt() of @jwe under @pw: its return, and @why_part in the error when it fails. */
static int decrypt(const char *jwe, const char *pw, const char *why_part)
{
	struct fg_err err = {0};
	uint8_t *out = (uint8_t *)"x";
	size_t len = 1;
	int ret = fg_jwe_decrypt(jwe, pw, strlen(pw), &out, &len, &err);

	if (!ret) {
		CHECK_EQ(len, strlen(PLAIN));
		CHECK(out && !strcmp((const char *)out, PLAIN));
		OPENSSL_cleanse(out, len);
		free(out);
		return 0;
	}
	CHECK(out == NULL && len == 0);
	CHECK(strstr(err.msg, why_part) != NULL);
	if (!strstr(err.msg, why_part))
		fprintf(stderr, "    error '%s', expected '%s'\n", err.msg, why_part);
	return ret;
}

/* @v with its part @part (0..4) replaced by @with. */
static char *with_part(const char *v, int part, const char *with)
{
	char *s = malloc(strlen(v) + strlen(with) + 1), *p = s;
	const char *q = v;

	for (int i = 0; i < 5; i++) {
		size_t n = strcspn(q, ".");

		if (i)
			*p++ = '.';
		memcpy(p, i == part ? with : q, i == part ? strlen(with) : n);
		p += i == part ? strlen(with) : n;
		q += n + (q[n] == '.');
	}
	*p = '\0';
	return s;
}

UNIT_TEST(go_jose_vectors_decrypt_to_the_jwk_and_its_key)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		struct fg_err err = {0};
		EVP_PKEY *key;
		char kid[48] = "";

		CHECK_EQ(decrypt(vectors[i], PW, ""), 0);
		key = fg_jwe_private_jwk(vectors[i], PW, strlen(PW), &err);
		CHECK(key != NULL);
		CHECK(key && !fg_jwk_thumbprint(key, kid) && !strcmp(kid, KID));
		EVP_PKEY_free(key);
	}
}

UNIT_TEST(a_wrong_password_or_an_altered_part_is_refused)
{
	const char *wrong = "cannot decrypt the JWE: wrong password, or it was altered";
	char *v;

	CHECK_EQ(decrypt(HS256_A256GCM, "pw pW", wrong), -EACCES);
	CHECK_EQ(decrypt(HS256_A256GCM, "", wrong), -EACCES);
	/* the wrapped key, the IV, the ciphertext, the tag: each one character changed */
	for (int part = 1; part < 5; part++) {
		const char *q = HS256_A256GCM;
		char piece[600];
		size_t n;

		for (int i = 0; i < part; i++)
			q += strcspn(q, ".") + 1;
		n = strcspn(q, ".");
		snprintf(piece, sizeof(piece), "%.*s", (int)n, q);
		piece[2] = piece[2] == 'A' ? 'B' : 'A';
		v = with_part(HS256_A256GCM, part, piece);
		CHECK_EQ(decrypt(v, PW, wrong), -EACCES);
		free(v);
	}
}

UNIT_TEST(headers_fedgate_does_not_read_are_refused_before_any_work)
{
	static const struct {
		const char *header, *why;
	} bad[] = {
	    /* p2c 10^8: refused, not computed */
	    {"{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\",\"p2c\":100000000,"
	     "\"p2s\":\"MDEyMzQ1Njc4OWFiY2RlZg\"}",
	     "JWE p2c must be 1000..10000000"},
	    {"{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\",\"p2c\":999,"
	     "\"p2s\":\"MDEyMzQ1Njc4OWFiY2RlZg\"}",
	     "JWE p2c must be 1000..10000000"},
	    {"{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"p2c\":1000,\"p2s\":"
	     "\"MDEyMzQ1Njc4OWFiY2RlZg\"}",
	     "JWE alg dir, enc A256GCM: only PBES2"},
	    {"{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A128CBC-HS256\",\"p2c\":1000,"
	     "\"p2s\":\"MDEyMzQ1Njc4OWFiY2RlZg\"}",
	     "only PBES2"},
	    {"{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\",\"p2c\":1000}",
	     "needs alg, enc, p2c and p2s"},
	    {"{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\",\"p2c\":1000,\"zip\":\"DEF\","
	     "\"p2s\":\"MDEyMzQ1Njc4OWFiY2RlZg\"}",
	     "no zip"},
	    {"{\"alg\":\"PBES2-HS256+A128KW\",\"enc\":\"A256GCM\",\"p2c\":1000,\"p2s\":\"MDEy\"}",
	     "p2s must be at least 8 bytes"},
	    {"not json", "needs alg, enc, p2c and p2s"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *h = fg_b64url_encode((const uint8_t *)bad[i].header, strlen(bad[i].header));
		char *v = with_part(HS256_A256GCM, 0, h);

		CHECK_EQ(decrypt(v, PW, bad[i].why), -EINVAL);
		free(v);
		free(h);
	}
	CHECK_EQ(decrypt("a.b.c.d", PW, "five parts"), -EINVAL);
	CHECK_EQ(decrypt("a.b.c.d.e.f", PW, "five parts"), -EINVAL);
	CHECK_EQ(decrypt("", PW, "five parts"), -EINVAL);
	CHECK_EQ(decrypt("e30.AA.AA.AA.A+A", PW, "not base64url"), -EINVAL);
}

UNIT_MAIN("jwe", UNIT_CASE(go_jose_vectors_decrypt_to_the_jwk_and_its_key),
	  UNIT_CASE(a_wrong_password_or_an_altered_part_is_refused),
	  UNIT_CASE(headers_fedgate_does_not_read_are_refused_before_any_work))
