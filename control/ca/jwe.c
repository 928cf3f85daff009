// SPDX-License-Identifier: MIT
/* PBES2 JWE decryption: the key from the password, the content key unwrapped, then AES-GCM. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "control/ca/b64url.h"
#include "control/ca/jwe.h"
#include "control/ca/jwk.h"

#define JWE_PARTS 5
#define GCM_IV_LEN 12
#define GCM_TAG_LEN 16

/* alg: the PBKDF2 hash and the key-wrap key's length; enc: the content key's length. */
static const struct {
	const char *name;
	const char *md;
	int kek_len;
} algs[] = {
    {"PBES2-HS256+A128KW", "SHA256", 16},
    {"PBES2-HS384+A192KW", "SHA384", 24},
    {"PBES2-HS512+A256KW", "SHA512", 32},
};

static const EVP_CIPHER *wrap_cipher(int len)
{
	return len == 16 ? EVP_aes_128_wrap() : len == 24 ? EVP_aes_192_wrap() : EVP_aes_256_wrap();
}

static const EVP_CIPHER *gcm_cipher(const char *enc, int *len)
{
	*len = !strcmp(enc, "A128GCM")	 ? 16
	       : !strcmp(enc, "A192GCM") ? 24
	       : !strcmp(enc, "A256GCM") ? 32
					 : 0;
	return *len == 16   ? EVP_aes_128_gcm()
	       : *len == 24 ? EVP_aes_192_gcm()
	       : *len == 32 ? EVP_aes_256_gcm()
			    : NULL;
}

/* RFC 3394 unwrap of @wrapped (@len bytes) under @kek into @cek (@cek_len bytes expected). */
static int unwrap(const EVP_CIPHER *c, const uint8_t *kek, const uint8_t *wrapped, size_t len,
		  uint8_t *cek, int cek_len)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0, ok;

	if (!ctx)
		return -ENOMEM;
	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	ok = len == (size_t)cek_len + 8 && EVP_DecryptInit_ex(ctx, c, NULL, kek, NULL) == 1 &&
	     EVP_DecryptUpdate(ctx, cek, &n, wrapped, (int)len) == 1 &&
	     EVP_DecryptFinal_ex(ctx, cek + n, &fin) == 1 && n + fin == cek_len;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EACCES;
}

/* AES-GCM open of @ct (@len bytes) with @aad; @out has room for @len bytes. */
static int gcm_open(const EVP_CIPHER *c, const uint8_t *cek, const uint8_t *iv, const char *aad,
		    const uint8_t *ct, size_t len, const uint8_t *tag, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0, ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DecryptInit_ex(ctx, c, NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_IV_LEN, NULL) == 1 &&
	     EVP_DecryptInit_ex(ctx, NULL, NULL, cek, iv) == 1 &&
	     EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
	     EVP_DecryptUpdate(ctx, out, &n, ct, (int)len) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN, (void *)tag) == 1 &&
	     EVP_DecryptFinal_ex(ctx, out + n, &fin) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EACCES;
}

int fg_jwe_decrypt(const char *jwe, const char *pw, size_t pw_len, uint8_t **out, size_t *out_len,
		   struct fg_err *err)
{
	const char *part[JWE_PARTS + 1], *alg_name, *enc_name;
	uint8_t *raw[JWE_PARTS] = {0}, *salt = NULL, *p2s_raw = NULL, kek[32], cek[32];
	size_t len[JWE_PARTS] = {0}, p2s_len, alg_len;
	const cJSON *alg, *enc, *p2c, *p2s;
	const EVP_CIPHER *gcm;
	cJSON *hdr = NULL;
	char *aad = NULL;
	int k = 0, cek_len, ret = -EINVAL;

	*out = NULL;
	*out_len = 0;
	part[0] = jwe;
	for (int i = 1; i <= JWE_PARTS; i++) {
		const char *dot = strchr(part[i - 1], '.');

		part[i] = dot ? dot + 1 : part[i - 1] + strlen(part[i - 1]) + 1;
		if (!dot && i < JWE_PARTS)
			return fg_err_set(err, -EINVAL, "not a compact JWE (five parts)");
		if (dot && i == JWE_PARTS)
			return fg_err_set(err, -EINVAL, "not a compact JWE (five parts)");
	}
	for (int i = 0; i < JWE_PARTS; i++)
		if (fg_b64url_decode(part[i], (size_t)(part[i + 1] - part[i] - 1), &raw[i],
				     &len[i])) {
			fg_err_set(err, -EINVAL, "JWE part %d is not base64url", i + 1);
			goto out;
		}
	hdr = cJSON_ParseWithLength((const char *)raw[0], len[0]);
	alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
	enc = cJSON_GetObjectItemCaseSensitive(hdr, "enc");
	p2c = cJSON_GetObjectItemCaseSensitive(hdr, "p2c");
	p2s = cJSON_GetObjectItemCaseSensitive(hdr, "p2s");
	if (!cJSON_IsString(alg) || !cJSON_IsString(enc) || !cJSON_IsNumber(p2c) ||
	    !cJSON_IsString(p2s) || cJSON_GetObjectItemCaseSensitive(hdr, "zip") ||
	    cJSON_GetObjectItemCaseSensitive(hdr, "crit")) {
		fg_err_set(err, -EINVAL,
			   "the JWE header needs alg, enc, p2c and p2s (and no zip "
			   "or crit)");
		goto out;
	}
	alg_name = alg->valuestring;
	enc_name = enc->valuestring;
	while (k < (int)(sizeof(algs) / sizeof(algs[0])) && strcmp(algs[k].name, alg_name))
		k++;
	gcm = gcm_cipher(enc_name, &cek_len);
	if (k == (int)(sizeof(algs) / sizeof(algs[0])) || !gcm) {
		fg_err_set(err, -EINVAL,
			   "JWE alg %.40s, enc %.40s: only PBES2 with A*KW, and "
			   "A*GCM, are read",
			   alg_name, enc_name);
		goto out;
	}
	if (p2c->valuedouble < 1000 || p2c->valuedouble > FG_JWE_MAX_P2C ||
	    p2c->valuedouble != (double)p2c->valueint || len[2] != GCM_IV_LEN ||
	    len[4] != GCM_TAG_LEN) {
		fg_err_set(err, -EINVAL, "JWE p2c must be 1000..%d, the IV 12 bytes, the tag 16",
			   FG_JWE_MAX_P2C);
		goto out;
	}
	/* RFC 7518 section 4.8.1.1: the salt is the alg, a zero byte, then p2s. */
	alg_len = strlen(alg_name);
	if (fg_b64url_decode(p2s->valuestring, strlen(p2s->valuestring), &p2s_raw, &p2s_len) ||
	    p2s_len < 8) {
		fg_err_set(err, -EINVAL, "JWE p2s must be at least 8 bytes of base64url");
		goto out;
	}
	salt = malloc(alg_len + 1 + p2s_len);
	aad = strndup(part[0], (size_t)(part[1] - part[0] - 1));
	*out = malloc(len[3] + 1);
	if (!salt || !aad || !*out) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	memcpy(salt, alg_name, alg_len + 1);
	memcpy(salt + alg_len + 1, p2s_raw, p2s_len);
	if (PKCS5_PBKDF2_HMAC(pw, (int)pw_len, salt, (int)(alg_len + 1 + p2s_len), p2c->valueint,
			      EVP_get_digestbyname(algs[k].md), algs[k].kek_len, kek) != 1) {
		ret = fg_err_set(err, -ENOMEM, "cannot derive the key-wrap key");
		goto out;
	}
	ret = unwrap(wrap_cipher(algs[k].kek_len), kek, raw[1], len[1], cek, cek_len);
	ret = ret ?: gcm_open(gcm, cek, raw[2], aad, raw[3], len[3], raw[4], *out);
	if (ret) {
		fg_err_set(err, ret,
			   ret == -EACCES ? "cannot decrypt the JWE: wrong password, or "
					    "it was altered"
					  : "out of memory");
		goto out;
	}
	(*out)[len[3]] = '\0';
	*out_len = len[3];
out:
	if (ret && *out) {
		OPENSSL_cleanse(*out, len[3]);
		free(*out);
		*out = NULL;
	}
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(cek, sizeof(cek));
	for (int i = 0; i < JWE_PARTS; i++)
		free(raw[i]);
	free(p2s_raw);
	free(salt);
	free(aad);
	cJSON_Delete(hdr);
	return ret;
}

EVP_PKEY *fg_jwe_private_jwk(const char *jwe, const char *pw, size_t pw_len, struct fg_err *err)
{
	EVP_PKEY *key = NULL;
	uint8_t *plain;
	size_t len;
	cJSON *jwk;

	if (fg_jwe_decrypt(jwe, pw, pw_len, &plain, &len, err))
		return NULL;
	jwk = cJSON_ParseWithLength((const char *)plain, len);
	if (jwk)
		key = fg_jwk_to_private(jwk, err);
	else
		fg_err_set(err, -EINVAL, "the decrypted JWE is not a JSON JWK");
	/* cJSON has copies of "d" in its strings: wipe them before they are freed. */
	for (cJSON *it = jwk ? jwk->child : NULL; it; it = it->next)
		if (cJSON_IsString(it))
			OPENSSL_cleanse(it->valuestring, strlen(it->valuestring));
	cJSON_Delete(jwk);
	OPENSSL_cleanse(plain, len);
	free(plain);
	return key;
}
