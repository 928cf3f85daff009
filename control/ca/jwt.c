// SPDX-License-Identifier: MIT
/* ES256 JWTs and EC JWKs with OpenSSL 3's EVP and param APIs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "control/ca/jwt.h"

/* ".", the base64url text of a 64-byte ES256 signature (86 characters) and a NUL: 88, rounded. */
#define SIG_PART_MAX 90

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

	if (len % 4 == 1)
		return -EINVAL;
	buf = malloc(len / 4 * 3 + 3);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = b64val(text[i]);

		if (v < 0) {
			free(buf);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero: one encoding per value, no tampering room. */
	if (bits && (acc & ((1u << bits) - 1))) {
		free(buf);
		return -EINVAL;
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return 0;
}

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

static int is_p256(EVP_PKEY *key)
{
	char group[32];

	return EVP_PKEY_is_a(key, "EC") &&
	       EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
					       sizeof(group), NULL) &&
	       (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"));
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
	if (!is_p256(key)) {
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

static int decode_part(const char *p, size_t len, cJSON **out)
{
	uint8_t *raw;
	size_t n;
	int ret;

	ret = fg_b64url_decode(p, len, &raw, &n);
	if (ret)
		return ret;
	*out = cJSON_ParseWithLength((const char *)raw, n);
	free(raw);
	if (!*out || !cJSON_IsObject(*out)) {
		cJSON_Delete(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

int fg_jwt_decode(const char *token, cJSON **header, cJSON **claims, struct fg_err *err)
{
	const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	cJSON *h = NULL, *c = NULL;

	if (!d1 || !d2 || strchr(d2 + 1, '.'))
		return fg_err_set(err, -EINVAL, "the token is not a compact JWS (three parts)");
	if (decode_part(token, (size_t)(d1 - token), &h))
		return fg_err_set(err, -EINVAL, "the token's header is not base64url JSON");
	if (decode_part(d1 + 1, (size_t)(d2 - d1 - 1), &c)) {
		cJSON_Delete(h);
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
	const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	const cJSON *alg;
	cJSON *hdr = NULL;
	uint8_t *raw = NULL, *der = NULL;
	size_t raw_len = 0, der_len = 0;
	EVP_MD_CTX *md = NULL;
	int ret;

	ret = fg_jwt_decode(token, &hdr, NULL, err);
	if (ret)
		return -EACCES;
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

/* The uncompressed point 04||x||y of a P-256 key. */
static int pub_point(EVP_PKEY *key, uint8_t pt[65])
{
	size_t n = 0;

	if (!is_p256(key) ||
	    !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, 65, &n) ||
	    n != 65 || pt[0] != 4) {
		/* Our keys and JWK-built keys use the uncompressed form (OpenSSL's default). */
		ERR_clear_error();
		return -EINVAL;
	}
	return 0;
}

cJSON *fg_jwk_public(EVP_PKEY *key)
{
	uint8_t pt[65];
	char *x = NULL, *y = NULL;
	cJSON *jwk = NULL;

	if (pub_point(key, pt))
		return NULL;
	x = fg_b64url_encode(pt + 1, 32);
	y = fg_b64url_encode(pt + 33, 32);
	jwk = cJSON_CreateObject();
	if (!x || !y || !jwk || !cJSON_AddStringToObject(jwk, "kty", "EC") ||
	    !cJSON_AddStringToObject(jwk, "crv", "P-256") || !cJSON_AddStringToObject(jwk, "x", x) ||
	    !cJSON_AddStringToObject(jwk, "y", y)) {
		cJSON_Delete(jwk);
		jwk = NULL;
	}
	free(x);
	free(y);
	return jwk;
}

EVP_PKEY *fg_jwk_to_pkey(const cJSON *jwk, struct fg_err *err)
{
	const cJSON *kty = cJSON_GetObjectItemCaseSensitive(jwk, "kty");
	const cJSON *crv = cJSON_GetObjectItemCaseSensitive(jwk, "crv");
	const cJSON *jx = cJSON_GetObjectItemCaseSensitive(jwk, "x");
	const cJSON *jy = cJSON_GetObjectItemCaseSensitive(jwk, "y");
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	uint8_t *x = NULL, *y = NULL, pt[65];
	size_t xl = 0, yl = 0;

	if (!cJSON_IsString(kty) || strcmp(kty->valuestring, "EC") || !cJSON_IsString(crv) ||
	    strcmp(crv->valuestring, "P-256") || !cJSON_IsString(jx) || !cJSON_IsString(jy)) {
		fg_err_set(err, -EINVAL, "the key is not an EC P-256 JWK (kty, crv, x, y)");
		return NULL;
	}
	if (fg_b64url_decode(jx->valuestring, strlen(jx->valuestring), &x, &xl) || xl != 32 ||
	    fg_b64url_decode(jy->valuestring, strlen(jy->valuestring), &y, &yl) || yl != 32) {
		fg_err_set(err, -EINVAL, "the JWK's x and y must be 32 bytes of base64url each");
		goto out;
	}
	pt[0] = 4;
	memcpy(pt + 1, x, 32);
	memcpy(pt + 33, y, 32);
	bld = OSSL_PARAM_BLD_new();
	if (!bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)))
		goto oom;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		fg_err_set(err, -EINVAL, "the JWK is not a point on P-256");
		fg_err_ssl(err);
		goto out;
	}
	goto out;
oom:
	fg_err_set(err, -ENOMEM, "out of memory");
out:
	free(x);
	free(y);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

int fg_jwk_thumbprint(EVP_PKEY *key, char out[48])
{
	uint8_t pt[65], md[32];
	char *x, *y, *b, canon[200];
	unsigned int n = 0;

	if (pub_point(key, pt))
		return -EINVAL;
	x = fg_b64url_encode(pt + 1, 32);
	y = fg_b64url_encode(pt + 33, 32);
	if (!x || !y) {
		free(x);
		free(y);
		return -ENOMEM;
	}
	/* RFC 7638: required members only, lexicographic order, no whitespace. */
	snprintf(canon, sizeof(canon), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
		 x, y);
	free(x);
	free(y);
	if (!EVP_Digest(canon, strlen(canon), md, &n, EVP_sha256(), NULL))
		return -EINVAL;
	b = fg_b64url_encode(md, n);
	if (!b)
		return -ENOMEM;
	snprintf(out, 48, "%s", b);
	free(b);
	return 0;
}
