/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_TRUST_CACHE_H
#define FEDGATE_CONTROL_TRUST_CACHE_H

/*
 * identity.trust.cache (control/trust_cache.c): each federation source's last
 * good bundle, saved after every good answer and read at start only when no
 * CA answers, so that a restart during an outage of every CA keeps the trust
 * it had instead of exiting 2. The file carries an HMAC under a key derived
 * from the gateway's private key and the time it was saved; one older than
 * identity.trust.cache_max_age_s, or whose HMAC does not match, is not used.
 */
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

struct fg_config;
struct fg_err;

/*
 * Saves @bundles (cfg->n_federation slots, NULL: none), each got good at wall
 * clock @at_ms[i], signed with @key, at @now_ms, into cfg->trust_cache (a new
 * file renamed over it, 0600). 0, or -errno with @err set.
 */
int fg_trust_cache_save(const struct fg_config *cfg, EVP_PKEY *key, STACK_OF(X509) * *bundles,
			const int64_t *at_ms, int64_t now_ms, struct fg_err *err);

/*
 * Pure: checks the @len bytes at @text (a file fg_trust_cache_save() wrote)
 * against @key and, at @now_ms, cfg->trust_cache_max_age_s, and gives each
 * configured federation source found in it its bundle as PEM text in @pem[i]
 * (malloc'd, the caller frees; NULL: none, or older than the maximum age)
 * with @at_ms[i]. Returns 0 (at least one found); -ENOENT (none of these
 * sources), -ESTALE (all too old), -EINVAL or -ENOMEM with @why (@wlen bytes)
 * saying why, @pem all NULL.
 */
int fg_trust_cache_parse(const char *text, size_t len, EVP_PKEY *key, const struct fg_config *cfg,
			 int64_t now_ms, char **pem, int64_t *at_ms, char *why, size_t wlen);

/* Reads cfg->trust_cache and parses it as fg_trust_cache_parse(). */
int fg_trust_cache_read(const struct fg_config *cfg, EVP_PKEY *key, int64_t now_ms, char **pem,
			int64_t *at_ms, char *why, size_t wlen);

#endif
