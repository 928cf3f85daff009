// SPDX-License-Identifier: MIT
/*
 * identity.trust.cache: the federation sources' last good bundles on disk,
 * so that a gateway restarted while every CA is down starts with them
 * (trust_cache.h). The file is JSON, then one line "hmac-sha256 HEX": an
 * HMAC over the JSON's bytes under a key derived from the gateway's own
 * private key, so a file someone else wrote (or a torn one) is refused, and
 * only the gateway that holds the key could have written it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "control/ca/files.h"
#include "control/config.h"
#include "control/trust_cache.h"
#include "fedgate/err-t.h"
#include "fedgate/err.h"
#include "fedgate/file.h"

#define MAC_TAG "\nhmac-sha256 "
#define CACHE_MAX (4u << 20) /* a bundle file larger than this is not one fedgate wrote */

/* The MAC key: SHA-256 of a label and @key's DER. 0 or -EINVAL (no key) / -ENOMEM. */
static int mac_key(EVP_PKEY *key, uint8_t out[SHA256_DIGEST_LENGTH])
{
	static const char label[] = "fedgate trust cache v1";
	unsigned char *der = NULL;
	EVP_MD_CTX *md;
	int n, ret = -ENOMEM;

	if (!key)
		return -EINVAL;
	n = i2d_PrivateKey(key, &der);
	if (n <= 0)
		return -EINVAL;
	md = EVP_MD_CTX_new();
	if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(md, label, sizeof(label)) && EVP_DigestUpdate(md, der, (size_t)n) &&
	    EVP_DigestFinal_ex(md, out, NULL))
		ret = 0;
	EVP_MD_CTX_free(md);
	OPENSSL_clear_free(der, (size_t)n);
	return ret;
}

/* HMAC-SHA256 of @len bytes at @p under @key, as lowercase hex into @hex. 0 or -errno. */
static int mac_hex(EVP_PKEY *key, const char *p, size_t len, char hex[2 * SHA256_DIGEST_LENGTH + 1])
{
	uint8_t k[SHA256_DIGEST_LENGTH], mac[SHA256_DIGEST_LENGTH];
	unsigned int mlen = 0;
	int ret = mac_key(key, k);

	if (!ret && !HMAC(EVP_sha256(), k, sizeof(k), (const unsigned char *)p, len, mac, &mlen))
		ret = -ENOMEM;
	OPENSSL_cleanse(k, sizeof(k));
	for (unsigned int i = 0; !ret && i < mlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	return ret;
}

/* @sk as PEM text (malloc'd), or NULL. */
static char *pem_of(STACK_OF(X509) * sk)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;
	int ok = b != NULL;

	for (int i = 0; ok && i < sk_X509_num(sk); i++)
		ok = PEM_write_bio_X509(b, sk_X509_value(sk, i));
	if (ok) {
		n = BIO_get_mem_data(b, &data);
		out = malloc((size_t)n + 1);
		if (out) {
			memcpy(out, data, (size_t)n);
			out[n] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

int fg_trust_cache_save(const struct fg_config *cfg, EVP_PKEY *key, STACK_OF(X509) * *bundles,
			const int64_t *at_ms, int64_t now_ms, struct fg_err *err)
{
	cJSON *o = cJSON_CreateObject(), *list;
	char hex[2 * SHA256_DIGEST_LENGTH + 1], *body = NULL, *file = NULL;
	size_t blen, flen;
	int ok, ret = -ENOMEM;

	list = o ? cJSON_AddArrayToObject(o, "sources") : NULL;
	ok = list && cJSON_AddNumberToObject(o, "version", 1) &&
	     cJSON_AddNumberToObject(o, "saved", (double)(now_ms / 1000));
	for (size_t i = 0; ok && i < cfg->n_federation; i++) {
		cJSON *e;
		char *pem;

		if (!bundles[i] || !sk_X509_num(bundles[i]))
			continue;
		pem = pem_of(bundles[i]);
		e = cJSON_CreateObject();
		ok = pem && e && cJSON_AddStringToObject(e, "url", cfg->federation[i].url) &&
		     cJSON_AddNumberToObject(e, "at", (double)(at_ms[i] / 1000)) &&
		     cJSON_AddStringToObject(e, "pem", pem) && cJSON_AddItemToArray(list, e);
		if (!ok)
			cJSON_Delete(e);
		free(pem);
	}
	body = ok ? cJSON_PrintUnformatted(o) : NULL;
	if (!body)
		goto out;
	blen = strlen(body);
	ret = mac_hex(key, body, blen, hex);
	if (ret) {
		fg_err_set(err, ret, "no key to sign it with");
		goto out;
	}
	flen = blen + strlen(MAC_TAG) + strlen(hex) + 1;
	file = malloc(flen + 1);
	if (!file) {
		ret = -ENOMEM;
		goto out;
	}
	snprintf(file, flen + 1, "%s%s%s\n", body, MAC_TAG, hex);
	ret = fg_pki_write_file(cfg->trust_cache, file, flen, 0600, err);
out:
	if (ret == -ENOMEM && !err->msg[0])
		fg_err_set(err, ret, "out of memory");
	free(file);
	free(body);
	cJSON_Delete(o);
	return ret;
}

/* @n as whole seconds since the epoch into *@out: 1, or 0 when it is not one (then unused). */
static int unix_time(const cJSON *n, int64_t *out)
{
	double v = cJSON_IsNumber(n) ? n->valuedouble : -1;

	/* Up to 2^40 s (some 35,000 years): a double holds it exactly, and int64_t with room. */
	if (!(v >= 0 && v <= 1099511627776.0) || v != (double)(int64_t)v)
		return 0;
	*out = (int64_t)v;
	return 1;
}

int fg_trust_cache_parse(const char *text, size_t len, EVP_PKEY *key, const struct fg_config *cfg,
			 int64_t now_ms, char **pem, int64_t *at_ms, char *why, size_t wlen)
{
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	const char *tag = NULL, *p;
	const cJSON *e, *v;
	cJSON *o = NULL;
	int ret = -EINVAL, found = 0, stale = 0;

	for (size_t i = 0; i < cfg->n_federation; i++) {
		pem[i] = NULL;
		at_ms[i] = 0;
	}
	/* The last tag: a PEM or URL cannot hold a newline, JSON escapes it. */
	for (p = text; (p = memmem(p, len - (size_t)(p - text), MAC_TAG, strlen(MAC_TAG))); p++)
		tag = p;
	if (!tag) {
		snprintf(why, wlen, "no hmac-sha256 line: not a trust cache fedgate wrote");
		return -EINVAL;
	}
	p = tag + strlen(MAC_TAG);
	if (len - (size_t)(p - text) != 2 * SHA256_DIGEST_LENGTH + 1 || text[len - 1] != '\n') {
		snprintf(why, wlen, "its hmac-sha256 line is malformed");
		return -EINVAL;
	}
	if (mac_hex(key, text, (size_t)(tag - text), hex)) {
		snprintf(why, wlen, "no key to check its hmac with");
		return -EINVAL;
	}
	if (CRYPTO_memcmp(hex, p, 2 * SHA256_DIGEST_LENGTH)) {
		snprintf(why, wlen,
			 "its hmac does not match: written by another key (a new enrollment?) "
			 "or changed since");
		return -EINVAL;
	}
	o = cJSON_ParseWithLength(text, (size_t)(tag - text));
	v = cJSON_GetObjectItemCaseSensitive(o, "saved");
	if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "version")) ||
	    cJSON_GetObjectItemCaseSensitive(o, "version")->valuedouble != 1 ||
	    !cJSON_IsNumber(v)) {
		snprintf(why, wlen, "not a version 1 trust cache");
		goto out;
	}
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "sources"))
	{
		const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "url"));
		const char *text_pem =
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "pem"));
		int64_t at = 0;
		int at_ok = unix_time(cJSON_GetObjectItemCaseSensitive(e, "at"), &at);

		for (size_t i = 0; url && text_pem && at_ok && i < cfg->n_federation; i++) {
			if (pem[i] || strcmp(url, cfg->federation[i].url))
				continue;
			/* Its age is the bundle's own: saving others' news does not renew it. */
			if (now_ms / 1000 - at > cfg->trust_cache_max_age_s) {
				stale++;
				continue;
			}
			pem[i] = strdup(text_pem);
			if (!pem[i]) {
				ret = -ENOMEM;
				snprintf(why, wlen, "out of memory");
				goto out;
			}
			at_ms[i] = at * 1000;
			found++;
		}
	}
	ret = 0;
	if (!found && stale) {
		snprintf(why, wlen, "its bundles are older than cache_max_age_s (%d s)",
			 cfg->trust_cache_max_age_s);
		ret = -ESTALE;
	} else if (!found) {
		snprintf(why, wlen, "it holds no bundle of the configured federation sources");
		ret = -ENOENT;
	}
out:
	cJSON_Delete(o);
	if (ret)
		for (size_t i = 0; i < cfg->n_federation; i++) {
			free(pem[i]);
			pem[i] = NULL;
		}
	return ret;
}

int fg_trust_cache_read(const struct fg_config *cfg, EVP_PKEY *key, int64_t now_ms, char **pem,
			int64_t *at_ms, char *why, size_t wlen)
{
	struct fg_err ferr = {0};
	char *text = NULL;
	size_t len = 0;
	int ret = fg_file_read(cfg->trust_cache, CACHE_MAX, &text, &len, &ferr);

	if (ret) {
		snprintf(why, wlen, "%s", ret == -ENOENT ? "none saved yet" : ferr.msg);
		return ret;
	}
	ret = fg_trust_cache_parse(text, len, key, cfg, now_ms, pem, at_ms, why, wlen);
	free(text);
	return ret;
}
