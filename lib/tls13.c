// SPDX-License-Identifier: MIT
/* TLS 1.3 key schedule pieces the data plane needs after the handshake. */
#include <errno.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "fedgate/tls13.h"

int fg_cipher_params(uint16_t cipher, size_t *key_len, size_t *secret_len)
{
	size_t k, s;

	switch (cipher) {
	case FG_AES_128_GCM:
		k = 16;
		s = 32;
		break;
	case FG_AES_256_GCM:
		k = 32;
		s = 48;
		break;
	case FG_CHACHA20_POLY1305:
		k = 32;
		s = 32;
		break;
	default:
		return -EINVAL;
	}
	if (key_len)
		*key_len = k;
	if (secret_len)
		*secret_len = s;
	return 0;
}

const char *fg_cipher_name(uint16_t cipher)
{
	switch (cipher) {
	case FG_AES_128_GCM:
		return "TLS_AES_128_GCM_SHA256";
	case FG_AES_256_GCM:
		return "TLS_AES_256_GCM_SHA384";
	case FG_CHACHA20_POLY1305:
		return "TLS_CHACHA20_POLY1305_SHA256";
	}
	return "unknown";
}

int fg_tls13_expand_label(uint16_t cipher, const uint8_t *secret, const char *label,
			  const uint8_t *context, size_t context_len, uint8_t *out, size_t out_len)
{
	static const char prefix[] = "tls13 ";
	size_t secret_len;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[7], *p = params;
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf = NULL;
	int ret;

	ret = fg_cipher_params(cipher, NULL, &secret_len);
	if (ret)
		return ret;

	kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", NULL);
	if (!kdf) {
		ret = -EIO;
		goto out;
	}
	kctx = EVP_KDF_CTX_new(kdf);
	if (!kctx) {
		ret = -ENOMEM;
		goto free_kdf;
	}
	*p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						secret_len == 48 ? "SHA384" : "SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, (void *)prefix,
						 sizeof(prefix) - 1);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, (void *)label,
						 strlen(label));
	/* OpenSSL 3.0 fails the derive on a NULL context, even with length 0. */
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA,
						 context ? (void *)context : (void *)"", context_len);
	*p = OSSL_PARAM_construct_end();
	ret = EVP_KDF_derive(kctx, out, out_len, params) == 1 ? 0 : -EIO;

	EVP_KDF_CTX_free(kctx);
free_kdf:
	EVP_KDF_free(kdf);
out:
	return ret;
}

int fg_tls13_traffic_keys(uint16_t cipher, struct fg_traffic_keys *tk)
{
	size_t key_len;
	int ret;

	ret = fg_cipher_params(cipher, &key_len, NULL);
	if (ret)
		return ret;
	ret = fg_tls13_expand_label(cipher, tk->secret, "key", NULL, 0, tk->key, key_len);
	if (ret)
		return ret;
	return fg_tls13_expand_label(cipher, tk->secret, "iv", NULL, 0, tk->iv, FG_IV_LEN);
}

int fg_tls13_key_update(uint16_t cipher, struct fg_traffic_keys *tk)
{
	struct fg_traffic_keys next = { 0 };
	size_t secret_len;
	int ret;

	ret = fg_cipher_params(cipher, NULL, &secret_len);
	if (ret)
		return ret;
	/* All or nothing: @tk changes only when every derivation worked. */
	ret = fg_tls13_expand_label(cipher, tk->secret, "traffic upd", NULL, 0, next.secret,
				    secret_len);
	if (!ret)
		ret = fg_tls13_traffic_keys(cipher, &next);
	if (!ret)
		*tk = next;
	OPENSSL_cleanse(&next, sizeof(next));
	return ret;
}
