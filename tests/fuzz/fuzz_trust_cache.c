// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for control/trust_cache.c's pure parser: the input as a
 * whole file (almost always refused: its HMAC cannot match), and the input
 * as a cache's JSON signed with the fuzzer's own key, so the JSON walk is
 * reached. Whatever is accepted names only configured sources with PEM text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/trust_cache.c"

static struct fg_ca_endpoint eps[2] = {{"https://a.example:9000", NULL},
				       {"https://b.example:9000", NULL}};

static void check(const char *text, size_t len, EVP_PKEY *key)
{
	const struct fg_config cfg = {.federation = eps,
				      .n_federation = 2,
				      .trust_cache_max_age_s = FG_TRUST_CACHE_MAX_AGE_DEFAULT};
	char why[256], *pem[2];
	int64_t at[2];
	int ret =
	    fg_trust_cache_parse(text, len, key, &cfg, 1700000000000LL, pem, at, why, sizeof(why));

	if (ret && ret != -EINVAL && ret != -ENOENT && ret != -ESTALE && ret != -ENOMEM)
		abort();
	for (int i = 0; i < 2; i++) {
		if (ret && pem[i])
			abort();
		if (!ret && pem[i] && 1700000000 - at[i] / 1000 > FG_TRUST_CACHE_MAX_AGE_DEFAULT)
			abort();
		free(pem[i]);
	}
	if (ret && !why[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static EVP_PKEY *key;
	char hex[2 * SHA256_DIGEST_LENGTH + 1], *buf;
	size_t n;

	if (!key)
		key = EVP_EC_gen("P-256");
	buf = malloc(size + strlen(MAC_TAG) + sizeof(hex) + 1);
	if (!buf || !key) {
		free(buf);
		return 0;
	}
	memcpy(buf, data, size);
	check(buf, size, key);
	if (!mac_hex(key, buf, size, hex)) {
		n = size + (size_t)sprintf(buf + size, "%s%s\n", MAC_TAG, hex);
		check(buf, n, key);
	}
	free(buf);
	return 0;
}
