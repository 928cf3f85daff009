// SPDX-License-Identifier: MIT
/* The config's identity (cert, key, trust, CA enrollment) and roots[] name constraints. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/config.h"
#include "control/config_walk.h"

/* {"url": "https://...", "root": FILE} */
static int parse_endpoint(struct fg_conf_walk *w, const cJSON *obj, const char *path,
			  const char *const *keys, struct fg_ca_endpoint *ep)
{
	char jp[256];
	int ret;

	ret = fg_conf_check_keys(w, obj, path, keys);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "url", 1, &ep->url);
	if (!ret && strncmp(ep->url, "https://", 8))
		ret = fg_conf_fail(w->err, w->file, fg_conf_key_path(jp, sizeof(jp), path, "url"),
				   "expected an https:// URL, got \"%s\"", ep->url);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "root", 1, &ep->root);
	if (!ret)
		ret = fg_conf_resolve_path(w, &ep->root);
	if (!ret)
		ret = fg_conf_defer_readable(w, fg_conf_key_path(jp, sizeof(jp), path, "root"),
					     ep->root);
	return ret;
}

static int parse_ca_identity(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *obj)
{
	static const char *const keys[] = {"url", "root", "token_file", "subject", "sans", NULL};
	static const char *path = "$.identity.ca";
	struct fg_ca_identity *ca;
	int ret;

	ca = cfg->ca = calloc(1, sizeof(*cfg->ca));
	if (!ca)
		return -ENOMEM;
	ret = parse_endpoint(w, obj, path, keys, &ca->ca);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "subject", 1, &ca->subject);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "token_file", 0, &ca->token_file);
	if (!ret)
		ret = fg_conf_resolve_path(w, &ca->token_file);
	if (!ret)
		ret = fg_conf_get_str_array(w, obj, path, "sans", &ca->sans, &ca->n_sans);
	return ret;
}

/* Whether @path names a file right in directory @dir (as written: no link is followed). */
static int in_dir(const char *path, const char *dir)
{
	const char *slash = strrchr(path, '/');
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return slash && (size_t)(slash - path) == n && !strncmp(path, dir, n);
}

/*
 * identity.trust: a PEM file, or {"federation": [{"url","root"}...],
 * "refresh_s": N, "cache": PATH, "cache_max_age_s": N}.
 */
static int parse_trust(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *trust)
{
	static const char *const keys[] = {"federation", "refresh_s", "cache", "cache_max_age_s",
					   NULL};
	static const char *const ep_keys[] = {"url", "root", NULL};
	const cJSON *fed, *it;
	char jp[256];
	int ret, i = 0;

	if (!cJSON_IsObject(trust))
		return fg_conf_fail(w->err, w->file, "$.identity.trust",
				    "expected a file name or an object with \"federation\"");
	cfg->refresh_s = 300;
	ret = fg_conf_check_keys(w, trust, "$.identity.trust", keys);
	if (!ret)
		ret = fg_conf_get_int(w, trust, "$.identity.trust", "refresh_s", 1, 86400,
				      &cfg->refresh_s);
	cfg->trust_cache_max_age_s = FG_TRUST_CACHE_MAX_AGE_DEFAULT;
	if (!ret && cJSON_GetObjectItemCaseSensitive(trust, "cache"))
		ret = fg_conf_get_str(w, trust, "$.identity.trust", "cache", 1, &cfg->trust_cache);
	if (!ret)
		ret = fg_conf_get_int(w, trust, "$.identity.trust", "cache_max_age_s", 60,
				      FG_TRUST_CACHE_MAX_AGE_MAX, &cfg->trust_cache_max_age_s);
	if (!ret)
		ret = fg_conf_resolve_path(w, &cfg->trust_cache);
	if (!ret && cfg->trust_cache && in_dir(cfg->trust_cache, w->dir))
		ret = fg_conf_fail(w->err, w->file, "$.identity.trust.cache",
				   "must not be in the config file's directory (%s): the gateway "
				   "may write in the cache's directory",
				   w->dir);
	if (ret)
		return ret;
	fed = cJSON_GetObjectItemCaseSensitive(trust, "federation");
	if (!fed)
		return fg_conf_fail(w->err, w->file, "$.identity.trust.federation",
				    "missing required key");
	if (!cJSON_IsArray(fed) || cJSON_GetArraySize(fed) == 0)
		return fg_conf_fail(w->err, w->file, "$.identity.trust.federation",
				    "expected a non-empty array of {\"url\", \"root\"}");
	cfg->federation = calloc((size_t)cJSON_GetArraySize(fed), sizeof(*cfg->federation));
	if (!cfg->federation)
		return -ENOMEM;
	cJSON_ArrayForEach(it, fed)
	{
		snprintf(jp, sizeof(jp), "$.identity.trust.federation[%d]", i++);
		cfg->n_federation++;
		ret = parse_endpoint(w, it, jp, ep_keys, &cfg->federation[cfg->n_federation - 1]);
		if (ret)
			return ret;
	}
	return 0;
}

int fg_conf_parse_identity(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *id)
{
	static const char *const keys[] = {"cert", "key", "trust", "ca", NULL};
	const cJSON *ca, *trust;
	int ret;

	if (!id)
		return fg_conf_fail(w->err, w->file, "$.identity", "missing required key");
	ret = fg_conf_check_keys(w, id, "$.identity", keys);
	if (!ret)
		ret = fg_conf_get_str(w, id, "$.identity", "cert", 1, &cfg->cert_file);
	if (!ret)
		ret = fg_conf_get_str(w, id, "$.identity", "key", 1, &cfg->key_file);
	if (ret)
		return ret;
	trust = cJSON_GetObjectItemCaseSensitive(id, "trust");
	if (cJSON_IsString(trust) || !trust)
		ret = fg_conf_get_str(w, id, "$.identity", "trust", 1, &cfg->trust_file);
	else
		ret = parse_trust(w, cfg, trust);
	if (!ret)
		ret = fg_conf_resolve_path(w, &cfg->cert_file);
	if (!ret)
		ret = fg_conf_resolve_path(w, &cfg->key_file);
	if (!ret)
		ret = fg_conf_resolve_path(w, &cfg->trust_file);
	if (ret)
		return ret;
	ca = cJSON_GetObjectItemCaseSensitive(id, "ca");
	if (ca) {
		/* The CA writes cert and key: they need not exist yet. */
		ret = parse_ca_identity(w, cfg, ca);
	} else {
		ret = fg_conf_defer_readable(w, "$.identity.cert", cfg->cert_file);
		if (!ret)
			ret = fg_conf_defer_readable(w, "$.identity.key", cfg->key_file);
	}
	if (!ret && cfg->trust_file)
		ret = fg_conf_defer_readable(w, "$.identity.trust", cfg->trust_file);
	return ret;
}

/* roots[]: {"cn"|"sha256", "dns"?, "uri"?, "leaf_cn"?} */
static int parse_root_rule(struct fg_conf_walk *w, const cJSON *obj, const char *path,
			   struct fg_root_rule *r)
{
	static const char *const keys[] = {"cn", "sha256", "dns", "uri", "leaf_cn", NULL};
	char jp[256];
	int ret;

	ret = fg_conf_check_keys(w, obj, path, keys);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "cn", 0, &r->cn);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "sha256", 0, &r->sha256);
	if (!ret && r->sha256 && fg_conf_normalize_sha256(r->sha256))
		return fg_conf_fail(w->err, w->file,
				    fg_conf_key_path(jp, sizeof(jp), path, "sha256"),
				    "expected a SHA-256 fingerprint: 64 hex digits");
	if (!ret && !r->cn && !r->sha256)
		ret = fg_conf_fail(w->err, w->file, path,
				   "name the root with \"cn\" or \"sha256\" (or both)");
	if (!ret)
		ret = fg_conf_get_str_array(w, obj, path, "dns", &r->dns, &r->n_dns);
	if (!ret)
		ret = fg_conf_get_str_array(w, obj, path, "uri", &r->uri, &r->n_uri);
	if (!ret)
		ret = fg_conf_get_str_array(w, obj, path, "leaf_cn", &r->leaf_cn, &r->n_leaf_cn);
	if (!ret && !r->n_dns && !r->n_uri)
		ret = fg_conf_fail(w->err, w->file, path,
				   "a root rule needs \"dns\" or \"uri\" patterns: the names this "
				   "root may vouch for");
	return ret;
}

int fg_conf_parse_roots(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *arr)
{
	char jp[64];
	const cJSON *it;
	int ret, i = 0;

	if (!arr)
		return 0;
	if (!cJSON_IsArray(arr))
		return fg_conf_fail(w->err, w->file, "$.roots", "expected an array of root rules");
	cfg->root_rules = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*cfg->root_rules));
	if (!cfg->root_rules)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		struct fg_root_rule *r = &cfg->root_rules[cfg->n_root_rules];

		snprintf(jp, sizeof(jp), "$.roots[%d]", i++);
		cfg->n_root_rules++;
		ret = parse_root_rule(w, it, jp, r);
		if (ret)
			return ret;
		for (size_t j = 0; j + 1 < cfg->n_root_rules; j++) {
			const struct fg_root_rule *o = &cfg->root_rules[j];

			if ((r->cn && o->cn && !strcmp(r->cn, o->cn)) ||
			    (r->sha256 && o->sha256 && !strcmp(r->sha256, o->sha256)))
				return fg_conf_fail(w->err, w->file, jp,
						    "the same root as $.roots[%zu]: one rule "
						    "per root",
						    j);
		}
	}
	return 0;
}
