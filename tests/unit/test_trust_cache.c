// SPDX-License-Identifier: MIT
/*
 * control/trust_cache.c: a cache saved by one gateway reads back whole; one
 * changed by a byte, signed by another key, older than its maximum age, or
 * naming other sources is refused, with a reason.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "control/config-t.h"
#include "control/trust_cache.h"
#include "fedgate/err-t.h"
#include "fedgate/file.h"
#include "unit.h"
#include "unit_x509.h"

static struct fg_ca_endpoint eps[2] = {{"https://a.example:9000", NULL},
				       {"https://b.example:9000", NULL}};

/* A self-signed certificate, as a root in a bundle. */
static X509 *root(EVP_PKEY *key, const char *cn)
{
	return unit_self_signed(key, cn);
}

/* Saves a cache of source a (one root) into @path; returns its text. */
static char *saved(struct fg_config *cfg, EVP_PKEY *key, const char *path, int64_t now, size_t *len)
{
	STACK_OF(X509) * bundles[2] = {sk_X509_new_null(), NULL};
	int64_t at[2] = {now - 5000, 0};
	struct fg_err err = {0}, ferr = {0};
	char *text = NULL;

	sk_X509_push(bundles[0], root(key, "Cache Root CA"));
	cfg->trust_cache = (char *)path;
	CHECK_EQ(fg_trust_cache_save(cfg, key, bundles, at, now, &err), 0);
	CHECK_EQ(fg_file_read(path, 1 << 20, &text, len, &ferr), 0);
	sk_X509_pop_free(bundles[0], X509_free);
	return text;
}

UNIT_TEST(save_and_parse)
{
	struct fg_config cfg = {.federation = eps, .n_federation = 2, .trust_cache_max_age_s = 600};
	EVP_PKEY *key = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	char path[] = "/tmp/fg-trust-cache-XXXXXX", why[256], *pem[2], *text;
	int64_t now = 1700000000000LL, at[2];
	size_t len;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	close(fd);
	text = saved(&cfg, key, path, now, &len);
	CHECK(text != NULL);
	if (!text)
		goto out;
	/* read back: source a with its root and time, b absent */
	CHECK_EQ(fg_trust_cache_parse(text, len, key, &cfg, now, pem, at, why, sizeof(why)), 0);
	CHECK(pem[0] && strstr(pem[0], "BEGIN CERTIFICATE"));
	CHECK(pem[1] == NULL);
	CHECK_EQ(at[0], now - 5000 - (now - 5000) % 1000);
	free(pem[0]);
	/* another gateway's key: refused */
	CHECK_EQ(fg_trust_cache_parse(text, len, other, &cfg, now, pem, at, why, sizeof(why)),
		 -EINVAL);
	CHECK(strstr(why, "hmac does not match") != NULL);
	/* older than cache_max_age_s */
	CHECK_EQ(
	    fg_trust_cache_parse(text, len, key, &cfg, now + 601000, pem, at, why, sizeof(why)),
	    -ESTALE);
	CHECK(pem[0] == NULL && strstr(why, "cache_max_age_s") != NULL);
	/* a config naming other sources finds nothing in it */
	cfg.federation = eps + 1;
	cfg.n_federation = 1;
	CHECK_EQ(fg_trust_cache_parse(text, len, key, &cfg, now, pem, at, why, sizeof(why)),
		 -ENOENT);
	cfg.federation = eps;
	cfg.n_federation = 2;
	/* one byte changed anywhere in the body: refused */
	for (size_t i = 0; i < len - 66; i += 7) {
		text[i] ^= 1;
		CHECK_EQ(fg_trust_cache_parse(text, len, key, &cfg, now, pem, at, why, sizeof(why)),
			 -EINVAL);
		text[i] ^= 1;
	}
	/* cut short, or without its hmac line */
	CHECK_EQ(fg_trust_cache_parse(text, len - 1, key, &cfg, now, pem, at, why, sizeof(why)),
		 -EINVAL);
	CHECK_EQ(fg_trust_cache_parse(text, len - 66, key, &cfg, now, pem, at, why, sizeof(why)),
		 -EINVAL);
	CHECK(strstr(why, "no hmac-sha256 line") != NULL);
	free(text);
out:
	unlink(path);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

UNIT_MAIN("trust_cache", UNIT_CASE(save_and_parse))
