// SPDX-License-Identifier: MIT
/* ES256 compact JWS with OpenSSL 3's EVP APIs: see jwt.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "control/ca/jwt.h"
#include "fedgate/json_nul.h"

/* ".", the base64url text of a 64-byte ES256 signature (86 characters) and a NUL: 88, rounded. */
#define SIG_PART_MAX 90

/* DER ECDSA-Sig-Value <-> raw r||s, 32 bytes each for P-256. */
static int der_to_raw(const uint8_t *der, size_t len, uint8_t raw[64])
{
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &der, (long)len);
	const BIGNUM *r, *s;
	int ret = -EINVAL;

	if (!sig)
		return -EINVAL;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32)
		ret = 0;
	ECDSA_SIG_free(sig);
	return ret;
}

static int raw_to_der(const uint8_t raw[64], uint8_t **der, size_t *len)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
	int n, ret = -ENOMEM;

	*der = NULL;
	if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s))
		goto fail;
	r = s = NULL; /* owned by sig now */
	n = i2d_ECDSA_SIG(sig, der);
	if (n > 0) {
		*len = (size_t)n;
		ret = 0;
	}
fail:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return ret;
}

static char *b64_json(const cJSON *obj)
{
	char *text = cJSON_PrintUnformatted(obj), *out;

	if (!text)
		return NULL;
	out = fg_b64url_encode((const uint8_t *)text, strlen(text));
	cJSON_free(text);
	return out;
}

int fg_jwt_sign(EVP_PKEY *key, const char *kid, const cJSON *claims, char **token,
		struct fg_err *err)
{
	cJSON *hdr = cJSON_CreateObject();
	char *h64 = NULL, *c64 = NULL, *s64 = NULL, *input = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t der[80], raw[64];
	size_t der_len = sizeof(der), ilen;
	int ret = -ENOMEM;

	*token = NULL;
	if (!fg_jwk_is_p256(key)) {
		ret = fg_err_set(err, -EINVAL, "the provisioner key is not an EC P-256 key");
		goto out;
	}
	if (!hdr || !md || !cJSON_AddStringToObject(hdr, "alg", "ES256") ||
	    (kid && !cJSON_AddStringToObject(hdr, "kid", kid)) ||
	    !cJSON_AddStringToObject(hdr, "typ", "JWT"))
		goto out;
	h64 = b64_json(hdr);
	c64 = b64_json(claims);
	if (!h64 || !c64)
		goto out;
	ilen = strlen(h64) + 1 + strlen(c64);
	input = malloc(ilen + SIG_PART_MAX);
	if (!input)
		goto out;
	snprintf(input, ilen + 1, "%s.%s", h64, c64);
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, der, &der_len, (const uint8_t *)input, ilen) != 1 ||
	    der_to_raw(der, der_len, raw)) {
		ret = fg_err_set(err, -EINVAL, "cannot sign the token");
		fg_err_ssl(err);
		goto out;
	}
	s64 = fg_b64url_encode(raw, sizeof(raw));
	if (!s64)
		goto out;
	snprintf(input + ilen, SIG_PART_MAX, ".%s", s64);
	*token = input;
	input = NULL;
	ret = 0;
out:
	if (ret == -ENOMEM && err && !err->msg[0])
		fg_err_set(err, ret, "out of memory");
	free(input);
	free(h64);
	free(c64);
	free(s64);
	EVP_MD_CTX_free(md);
	cJSON_Delete(hdr);
	return ret;
}

/*
 * One part of a JWS as a JSON object into *@out. -EILSEQ with @nul_path (64
 * bytes) set where the JSON holds a NUL, which cJSON would cut a claim at
 * ("sub":"a\u0000b" read as "a"); -EINVAL for anything else.
 */
static int decode_part(const char *p, size_t len, cJSON **out, char *nul_path)
{
	uint8_t *raw;
	size_t n;
	int ret;

	*out = NULL;
	ret = fg_b64url_decode(p, len, &raw, &n);
	if (ret)
		return ret;
	if (fg_json_nul_find((const char *)raw, n, nul_path, 64, NULL)) {
		free(raw);
		return -EILSEQ;
	}
	*out = cJSON_ParseWithLength((const char *)raw, n);
	free(raw);
	if (!*out || !cJSON_IsObject(*out)) {
		cJSON_Delete(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

/* The two dots of a compact JWS "H.C.S" (exactly two); 0 or -EINVAL. */
static int jws_split(const char *token, const char **d1, const char **d2)
{
	*d1 = strchr(token, '.');
	*d2 = *d1 ? strchr(*d1 + 1, '.') : NULL;
	return *d2 && !strchr(*d2 + 1, '.') ? 0 : -EINVAL;
}

int fg_jwt_decode(const char *token, cJSON **header, cJSON **claims, struct fg_err *err)
{
	const char *d1, *d2;
	cJSON *h = NULL, *c = NULL;
	char nul[64];
	int ret;

	if (jws_split(token, &d1, &d2))
		return fg_err_set(err, -EINVAL, "the token is not a compact JWS (three parts)");
	ret = decode_part(token, (size_t)(d1 - token), &h, nul);
	if (ret == -EILSEQ)
		return fg_err_set(err, -EINVAL, "the token's header holds a NUL at %s", nul);
	if (ret)
		return fg_err_set(err, -EINVAL, "the token's header is not base64url JSON");
	ret = decode_part(d1 + 1, (size_t)(d2 - d1 - 1), &c, nul);
	if (ret) {
		cJSON_Delete(h);
		if (ret == -EILSEQ)
			return fg_err_set(err, -EINVAL, "the token's claims hold a NUL at %s", nul);
		return fg_err_set(err, -EINVAL, "the token's claims are not base64url JSON");
	}
	if (header)
		*header = h;
	else
		cJSON_Delete(h);
	if (claims)
		*claims = c;
	else
		cJSON_Delete(c);
	return 0;
}

int fg_jwt_verify(const char *token, EVP_PKEY *pub, struct fg_err *err)
{
	const char *d1, *d2;
	const cJSON *alg;
	cJSON *hdr = NULL;
	uint8_t *raw = NULL, *der = NULL;
	size_t raw_len = 0, der_len = 0;
	EVP_MD_CTX *md = NULL;
	int ret;

	ret = fg_jwt_decode(token, &hdr, NULL, err);
	if (ret)
		return -EACCES;
	(void)jws_split(token, &d1, &d2); /* three parts: fg_jwt_decode() checked */
	/*
	 * "crit" (RFC 7515 4.1.11) lists header extensions the verifier must
	 * understand or reject the token; fedgate understands none.
	 */
	if (cJSON_GetObjectItemCaseSensitive(hdr, "crit")) {
		ret = fg_err_set(err, -EACCES,
				 "the token's header has \"crit\" extensions, which fedgate does "
				 "not support");
		goto out;
	}
	alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
	if (!cJSON_IsString(alg) || strcmp(alg->valuestring, "ES256")) {
		ret = fg_err_set(err, -EACCES, "the token's algorithm is %s%s%s, not ES256",
				 cJSON_IsString(alg) ? "\"" : "",
				 cJSON_IsString(alg) ? alg->valuestring : "missing",
				 cJSON_IsString(alg) ? "\"" : "");
		goto out;
	}
	if (fg_b64url_decode(d2 + 1, strlen(d2 + 1), &raw, &raw_len) || raw_len != 64) {
		ret = fg_err_set(err, -EACCES,
				 "the token's signature is not a 64-byte ES256 signature");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (!md || raw_to_der(raw, &der, &der_len)) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) != 1 ||
	    EVP_DigestVerify(md, der, der_len, (const uint8_t *)token, (size_t)(d2 - token)) !=
		    1) {
		ERR_clear_error();
		ret = fg_err_set(err, -EACCES,
				 "the token's signature does not verify with the provisioner key");
		goto out;
	}
	ret = 0;
out:
	OPENSSL_free(der);
	free(raw);
	EVP_MD_CTX_free(md);
	cJSON_Delete(hdr);
	return ret;
}
