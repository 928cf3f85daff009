// SPDX-License-Identifier: MIT
/* EC P-256 JWKs with OpenSSL 3's param APIs: see jwk.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "control/ca/b64url.h"
#include "control/ca/jwk.h"

int fg_jwk_is_p256(EVP_PKEY *key)
{
	char group[32];

	return EVP_PKEY_is_a(key, "EC") &&
	       EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
					       sizeof(group), NULL) &&
	       (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"));
}

/* The uncompressed point 04||x||y of a P-256 key; 0 or -EINVAL. */
static int pub_point(EVP_PKEY *key, uint8_t pt[65])
{
	size_t n = 0;

	if (!fg_jwk_is_p256(key) ||
	    !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, 65, &n) ||
	    n != 65 || pt[0] != 4) {
		/* Our keys and JWK-built keys use the uncompressed form (OpenSSL's default). */
		ERR_clear_error();
		return -EINVAL;
	}
	return 0;
}

/* @x and @y: base64url of the point's coordinates (malloc'd), or -ENOMEM / -EINVAL. */
static int pub_coords(EVP_PKEY *key, char **x, char **y)
{
	uint8_t pt[65];

	*x = *y = NULL;
	if (pub_point(key, pt))
		return -EINVAL;
	*x = fg_b64url_encode(pt + 1, 32);
	*y = fg_b64url_encode(pt + 33, 32);
	if (*x && *y)
		return 0;
	free(*x);
	free(*y);
	*x = *y = NULL;
	return -ENOMEM;
}

cJSON *fg_jwk_public(EVP_PKEY *key)
{
	char *x, *y;
	cJSON *jwk;

	if (pub_coords(key, &x, &y))
		return NULL;
	jwk = cJSON_CreateObject();
	if (!jwk || !cJSON_AddStringToObject(jwk, "kty", "EC") ||
	    !cJSON_AddStringToObject(jwk, "crv", "P-256") ||
	    !cJSON_AddStringToObject(jwk, "x", x) || !cJSON_AddStringToObject(jwk, "y", y)) {
		cJSON_Delete(jwk);
		jwk = NULL;
	}
	free(x);
	free(y);
	return jwk;
}

/* @pt (04||x||y) as an EVP_PKEY, or NULL with @err set (not on the curve, or no memory). */
static EVP_PKEY *point_to_pkey(const uint8_t pt[65], struct fg_err *err)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if (!bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 65)) {
		fg_err_set(err, -ENOMEM, "out of memory");
		goto free_bld;
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		fg_err_set(err, -EINVAL, "the JWK is not a point on P-256");
		fg_err_ssl(err);
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
free_bld:
	OSSL_PARAM_BLD_free(bld);
	return key;
}

EVP_PKEY *fg_jwk_to_pkey(const cJSON *jwk, struct fg_err *err)
{
	const cJSON *kty = cJSON_GetObjectItemCaseSensitive(jwk, "kty");
	const cJSON *crv = cJSON_GetObjectItemCaseSensitive(jwk, "crv");
	const cJSON *jx = cJSON_GetObjectItemCaseSensitive(jwk, "x");
	const cJSON *jy = cJSON_GetObjectItemCaseSensitive(jwk, "y");
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
		goto free_xy;
	}
	pt[0] = 4;
	memcpy(pt + 1, x, 32);
	memcpy(pt + 33, y, 32);
	key = point_to_pkey(pt, err);
free_xy:
	free(x);
	free(y);
	return key;
}

EVP_PKEY *fg_jwk_to_private(const cJSON *jwk, struct fg_err *err)
{
	const cJSON *jd = cJSON_GetObjectItemCaseSensitive(jwk, "d");
	EVP_PKEY *pub = fg_jwk_to_pkey(jwk, err), *key = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	uint8_t *d = NULL, pt[65];
	size_t dl = 0, ptl = 0;
	BIGNUM *bn = NULL;

	if (!pub)
		return NULL;
	if (!cJSON_IsString(jd) ||
	    fg_b64url_decode(jd->valuestring, strlen(jd->valuestring), &d, &dl) || dl != 32) {
		fg_err_set(err, -EINVAL, "the JWK's d must be 32 bytes of base64url");
		goto out;
	}
	bn = BN_bin2bn(d, 32, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!bn || !bld ||
	    !EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &ptl) ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, ptl) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) != 1) {
		fg_err_set(err, -EINVAL, "the JWK is not a P-256 private key");
		goto out;
	}
	/* d must be the key of x and y: a token signed with it must verify with them. */
	check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	if (!check || EVP_PKEY_pairwise_check(check) != 1) {
		fg_err_set(err, -EINVAL, "the JWK's d is not the private key of its x and y");
		EVP_PKEY_free(key);
		key = NULL;
	}
out:
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(bn);
	if (d)
		OPENSSL_cleanse(d, dl);
	free(d);
	EVP_PKEY_free(pub);
	return key;
}

int fg_jwk_thumbprint(EVP_PKEY *key, char out[48])
{
	uint8_t md[32];
	char *x, *y, *b, canon[200];
	unsigned int n = 0;
	int ret;

	ret = pub_coords(key, &x, &y);
	if (ret)
		return ret;
	/* RFC 7638: required members only, lexicographic order, no whitespace. */
	snprintf(canon, sizeof(canon),
		 "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
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
