// SPDX-License-Identifier: MIT
/* The gateway's JSON configuration: every key checked, every error located. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <ctype.h>
#include <cjson/cJSON.h>

#include "control/config.h"
#include "fedgate/addr.h"
#include "fedgate/dataplane-t.h"
#include "fedgate/err.h"
#include "fedgate/keys-t.h"

#define MAX_CONFIG_BYTES (1 << 20)

int fg_conf_fail(struct fg_err *err, const char *file, const char *jpath, const char *fmt,
		 ...)
{
	char what[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return fg_err_set(err, -EINVAL, "%s: %s: %s", file, jpath, what);
}

uint16_t fg_cipher_from_name(const char *name)
{
	static const struct {
		const char *short_name, *iana;
		uint16_t id;
	} map[] = {
		{ "AES-128-GCM", "TLS_AES_128_GCM_SHA256", FG_AES_128_GCM },
		{ "AES-256-GCM", "TLS_AES_256_GCM_SHA384", FG_AES_256_GCM },
		{ "CHACHA20-POLY1305", "TLS_CHACHA20_POLY1305_SHA256", FG_CHACHA20_POLY1305 },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcasecmp(name, map[i].short_name) || !strcasecmp(name, map[i].iana))
			return map[i].id;
	return 0;
}

const char *fg_offload_name(enum fg_offload o)
{
	switch (o) {
	case FG_OFFLOAD_AUTO:
		return "auto";
	case FG_OFFLOAD_KERNEL:
		return "kernel";
	case FG_OFFLOAD_USERSPACE:
		return "userspace";
	}
	return "?";
}

/* A walk over one JSON object: @file and the JSON path for messages. */
struct walk {
	const char *file;
	struct fg_err *err;
};

static int check_keys(struct walk *w, const cJSON *obj, const char *path,
		      const char *const *allowed)
{
	char jp[256];
	const cJSON *it;

	if (!cJSON_IsObject(obj))
		return fg_conf_fail(w->err, w->file, path, "expected an object");
	cJSON_ArrayForEach(it, obj)
	{
		int ok = 0;

		for (const char *const *a = allowed; *a; a++)
			ok |= !strcmp(it->string, *a);
		snprintf(jp, sizeof(jp), "%s.%s", path, it->string);
		if (!ok)
			return fg_conf_fail(w->err, w->file, jp, "unknown key");
		/* JSON tools disagree on which duplicate wins: refuse the doubt. */
		for (const cJSON *prev = obj->child; prev != it; prev = prev->next)
			if (!strcmp(prev->string, it->string))
				return fg_conf_fail(w->err, w->file, jp, "key given twice");
	}
	return 0;
}

/* Copies string member @key; a missing member is an error only if @required. */
static int get_str(struct walk *w, const cJSON *obj, const char *path, const char *key,
		   int required, char **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	char jp[256];

	snprintf(jp, sizeof(jp), "%s.%s", path, key);
	if (!it) {
		if (required)
			return fg_conf_fail(w->err, w->file, jp, "missing required key");
		return 0;
	}
	if (!cJSON_IsString(it))
		return fg_conf_fail(w->err, w->file, jp, "expected a string");
	if (!it->valuestring[0])
		return fg_conf_fail(w->err, w->file, jp, "must not be empty");
	*out = strdup(it->valuestring);
	return *out ? 0 : -ENOMEM;
}

static int get_int(struct walk *w, const cJSON *obj, const char *path, const char *key, int lo,
		   int hi, int *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	char jp[256];

	if (!it)
		return 0;
	snprintf(jp, sizeof(jp), "%s.%s", path, key);
	if (!cJSON_IsNumber(it))
		return fg_conf_fail(w->err, w->file, jp, "expected an integer");
	if (!(it->valuedouble >= lo && it->valuedouble <= hi))
		return fg_conf_fail(w->err, w->file, jp, "must be between %d and %d", lo, hi);
	if (it->valuedouble != (double)(int)it->valuedouble)
		return fg_conf_fail(w->err, w->file, jp, "expected an integer");
	*out = (int)it->valuedouble;
	return 0;
}

/* Makes @p relative to the config's directory unless absolute; frees the old string. */
static int resolve_path(struct fg_config *cfg, char **p)
{
	char *abs;

	if (!*p || (*p)[0] == '/')
		return 0;
	if (asprintf(&abs, "%s/%s", cfg->dir, *p) < 0)
		return -ENOMEM;
	free(*p);
	*p = abs;
	return 0;
}

static int check_readable(struct walk *w, const char *jpath, const char *file)
{
	FILE *f = fopen(file, "r");

	if (!f)
		return fg_conf_fail(w->err, w->file, jpath, "cannot read %s: %s", file,
				    strerror(errno));
	fclose(f);
	return 0;
}

static const char *key_path(char *buf, size_t len, const char *path, const char *key)
{
	snprintf(buf, len, "%s.%s", path, key);
	return buf;
}

/* Copies an optional non-empty array of non-empty strings. */
static int get_str_array(struct walk *w, const cJSON *obj, const char *path, const char *key,
			 char ***out, size_t *n)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key), *it;
	char jp[256];
	int i = 0;

	if (!arr)
		return 0;
	snprintf(jp, sizeof(jp), "%s.%s", path, key);
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return fg_conf_fail(w->err, w->file, jp, "expected a non-empty array of strings");
	*out = calloc((size_t)cJSON_GetArraySize(arr), sizeof(**out));
	if (!*out)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		snprintf(jp, sizeof(jp), "%s.%s[%d]", path, key, i++);
		if (!cJSON_IsString(it) || !it->valuestring[0])
			return fg_conf_fail(w->err, w->file, jp, "expected a non-empty string");
		(*out)[*n] = strdup(it->valuestring);
		if (!(*out)[*n])
			return -ENOMEM;
		(*n)++;
	}
	return 0;
}

static void free_str_array(char **a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(a[i]);
	free(a);
}

/* {"url": "https://...", "root": FILE} */
static int parse_endpoint(struct walk *w, struct fg_config *cfg, const cJSON *obj,
			  const char *path, const char *const *keys, struct fg_ca_endpoint *ep)
{
	char jp[256];
	int ret;

	ret = check_keys(w, obj, path, keys);
	if (!ret)
		ret = get_str(w, obj, path, "url", 1, &ep->url);
	if (!ret && strncmp(ep->url, "https://", 8))
		ret = fg_conf_fail(w->err, w->file, key_path(jp, sizeof(jp), path, "url"),
				   "expected an https:// URL, got \"%s\"", ep->url);
	if (!ret)
		ret = get_str(w, obj, path, "root", 1, &ep->root);
	if (!ret)
		ret = resolve_path(cfg, &ep->root);
	if (!ret)
		ret = check_readable(w, key_path(jp, sizeof(jp), path, "root"), ep->root);
	return ret;
}

static int parse_ca_identity(struct walk *w, struct fg_config *cfg, const cJSON *obj)
{
	static const char *const keys[] = { "url", "root", "token_file", "subject", "sans", NULL };
	static const char *path = "$.identity.ca";
	struct fg_ca_identity *ca;
	int ret;

	ca = cfg->ca = calloc(1, sizeof(*cfg->ca));
	if (!ca)
		return -ENOMEM;
	ret = parse_endpoint(w, cfg, obj, path, keys, &ca->ca);
	if (!ret)
		ret = get_str(w, obj, path, "subject", 1, &ca->subject);
	if (!ret)
		ret = get_str(w, obj, path, "token_file", 0, &ca->token_file);
	if (!ret)
		ret = resolve_path(cfg, &ca->token_file);
	if (!ret)
		ret = get_str_array(w, obj, path, "sans", &ca->sans, &ca->n_sans);
	return ret;
}

/* identity.trust: a PEM file, or {"federation": [{"url","root"}...], "refresh_s": N}. */
static int parse_trust(struct walk *w, struct fg_config *cfg, const cJSON *trust)
{
	static const char *const keys[] = { "federation", "refresh_s", NULL };
	static const char *const ep_keys[] = { "url", "root", NULL };
	const cJSON *fed, *it;
	char jp[256];
	int ret, i = 0;

	if (!cJSON_IsObject(trust))
		return fg_conf_fail(w->err, w->file, "$.identity.trust",
				    "expected a file name or an object with \"federation\"");
	cfg->refresh_s = 300;
	ret = check_keys(w, trust, "$.identity.trust", keys);
	if (!ret)
		ret = get_int(w, trust, "$.identity.trust", "refresh_s", 1, 86400, &cfg->refresh_s);
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
		ret = parse_endpoint(w, cfg, it, jp, ep_keys,
				     &cfg->federation[cfg->n_federation - 1]);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_identity(struct walk *w, struct fg_config *cfg, const cJSON *id)
{
	static const char *const keys[] = { "cert", "key", "trust", "ca", NULL };
	const cJSON *ca, *trust;
	int ret;

	if (!id)
		return fg_conf_fail(w->err, w->file, "$.identity", "missing required key");
	ret = check_keys(w, id, "$.identity", keys);
	if (!ret)
		ret = get_str(w, id, "$.identity", "cert", 1, &cfg->cert_file);
	if (!ret)
		ret = get_str(w, id, "$.identity", "key", 1, &cfg->key_file);
	if (ret)
		return ret;
	trust = cJSON_GetObjectItemCaseSensitive(id, "trust");
	if (cJSON_IsString(trust) || !trust)
		ret = get_str(w, id, "$.identity", "trust", 1, &cfg->trust_file);
	else
		ret = parse_trust(w, cfg, trust);
	if (!ret)
		ret = resolve_path(cfg, &cfg->cert_file);
	if (!ret)
		ret = resolve_path(cfg, &cfg->key_file);
	if (!ret)
		ret = resolve_path(cfg, &cfg->trust_file);
	if (ret)
		return ret;
	ca = cJSON_GetObjectItemCaseSensitive(id, "ca");
	if (ca) {
		/* The CA writes cert and key: they need not exist yet. */
		ret = parse_ca_identity(w, cfg, ca);
	} else {
		ret = check_readable(w, "$.identity.cert", cfg->cert_file);
		if (!ret)
			ret = check_readable(w, "$.identity.key", cfg->key_file);
	}
	if (!ret && cfg->trust_file)
		ret = check_readable(w, "$.identity.trust", cfg->trust_file);
	return ret;
}

/*
 * A fingerprint as "AB:CD:..." (openssl x509 -fingerprint) or plain hex,
 * rewritten in place as plain lowercase hex. -EINVAL unless 64 hex digits.
 */
#define FP_PREFIX_LEN (sizeof(FG_ROOT_SHA256_PREFIX) - 1)

static int normalize_sha256(char *fp)
{
	size_t n = 0;

	for (const char *p = fp; *p; p++) {
		if (*p == ':')
			continue;
		if (!strchr("0123456789abcdefABCDEF", *p) || n >= 64)
			return -EINVAL;
		fp[n++] = (char)tolower((unsigned char)*p);
	}
	if (n != 64)
		return -EINVAL;
	fp[n] = '\0';
	return 0;
}

/* roots[]: {"cn"|"sha256", "dns"?, "uri"?, "leaf_cn"?} */
static int parse_root_rule(struct walk *w, const cJSON *obj, const char *path,
			   struct fg_root_rule *r)
{
	static const char *const keys[] = { "cn", "sha256", "dns", "uri", "leaf_cn", NULL };
	char jp[256];
	int ret;

	ret = check_keys(w, obj, path, keys);
	if (!ret)
		ret = get_str(w, obj, path, "cn", 0, &r->cn);
	if (!ret)
		ret = get_str(w, obj, path, "sha256", 0, &r->sha256);
	if (!ret && r->sha256 && normalize_sha256(r->sha256))
		return fg_conf_fail(w->err, w->file, key_path(jp, sizeof(jp), path, "sha256"),
				    "expected a SHA-256 fingerprint: 64 hex digits");
	if (!ret && !r->cn && !r->sha256)
		ret = fg_conf_fail(w->err, w->file, path,
				   "name the root with \"cn\" or \"sha256\" (or both)");
	if (!ret)
		ret = get_str_array(w, obj, path, "dns", &r->dns, &r->n_dns);
	if (!ret)
		ret = get_str_array(w, obj, path, "uri", &r->uri, &r->n_uri);
	if (!ret)
		ret = get_str_array(w, obj, path, "leaf_cn", &r->leaf_cn, &r->n_leaf_cn);
	if (!ret && !r->n_dns && !r->n_uri)
		ret = fg_conf_fail(w->err, w->file, path,
				   "a root rule needs \"dns\" or \"uri\" patterns: the names this "
				   "root may vouch for");
	return ret;
}

static int parse_roots(struct walk *w, struct fg_config *cfg, const cJSON *arr)
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

static int parse_version(struct walk *w, const cJSON *tls, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(tls, key);
	char jp[64];

	if (!it)
		return 0;
	snprintf(jp, sizeof(jp), "$.tls.%s", key);
	if (!cJSON_IsString(it))
		return fg_conf_fail(w->err, w->file, jp, "expected a string such as \"1.3\"");
	if (strcmp(it->valuestring, "1.3") && strcasecmp(it->valuestring, "TLSv1.3"))
		return fg_conf_fail(w->err, w->file, jp,
				    "TLS 1.3 only: \"%s\" is not supported (fedgate hands TLS 1.3 "
				    "record keys to the data plane; use \"1.3\")",
				    it->valuestring);
	return 0;
}

static int parse_tls(struct walk *w, struct fg_config *cfg, const cJSON *tls)
{
	static const char *const keys[] = { "min_version", "max_version", "ciphers",
					    "handshake_timeout_ms", NULL };
	const cJSON *ciphers, *it;
	char jp[64];
	int ret, i = 0;

	cfg->handshake_timeout_ms = 10000;
	cfg->ciphers[0] = FG_AES_128_GCM;
	cfg->ciphers[1] = FG_AES_256_GCM;
	cfg->ciphers[2] = FG_CHACHA20_POLY1305;
	cfg->n_ciphers = 3;
	if (!tls)
		return 0;
	ret = check_keys(w, tls, "$.tls", keys);
	if (!ret)
		ret = parse_version(w, tls, "min_version");
	if (!ret)
		ret = parse_version(w, tls, "max_version");
	if (!ret)
		ret = get_int(w, tls, "$.tls", "handshake_timeout_ms", 100, 600000,
			      &cfg->handshake_timeout_ms);
	if (ret)
		return ret;
	ciphers = cJSON_GetObjectItemCaseSensitive(tls, "ciphers");
	if (!ciphers)
		return 0;
	if (!cJSON_IsArray(ciphers) || cJSON_GetArraySize(ciphers) == 0)
		return fg_conf_fail(w->err, w->file, "$.tls.ciphers",
				    "expected a non-empty array of cipher names");
	cfg->n_ciphers = 0;
	cJSON_ArrayForEach(it, ciphers)
	{
		uint16_t c;

		snprintf(jp, sizeof(jp), "$.tls.ciphers[%d]", i++);
		if (!cJSON_IsString(it))
			return fg_conf_fail(w->err, w->file, jp, "expected a string");
		c = fg_cipher_from_name(it->valuestring);
		if (!c)
			return fg_conf_fail(w->err, w->file, jp,
					    "unknown cipher (use AES-128-GCM, AES-256-GCM or "
					    "CHACHA20-POLY1305)");
		for (size_t j = 0; j < cfg->n_ciphers; j++)
			if (cfg->ciphers[j] == c)
				return fg_conf_fail(w->err, w->file, jp, "listed twice");
		cfg->ciphers[cfg->n_ciphers++] = c;
	}
	return 0;
}

static int parse_dataplane(struct walk *w, struct fg_config *cfg, const cJSON *dp)
{
	static const char *const keys[] = { "workers", "offload", "kernel_tx", NULL };
	char *offload = NULL, *ktx = NULL;
	int ret;

	cfg->workers = 1;
	cfg->offload = FG_OFFLOAD_AUTO;
	if (!dp)
		return 0;
	ret = check_keys(w, dp, "$.dataplane", keys);
	if (!ret)
		ret = get_int(w, dp, "$.dataplane", "workers", 1, FG_DP_WORKERS_MAX, &cfg->workers);
	if (!ret)
		ret = get_str(w, dp, "$.dataplane", "kernel_tx", 0, &ktx);
	if (!ret && ktx) {
		if (!strcmp(ktx, "splice"))
			cfg->kernel_tx_splice = 1;
		else if (strcmp(ktx, "copy"))
			ret = fg_conf_fail(w->err, w->file, "$.dataplane.kernel_tx",
					   "expected \"copy\" or \"splice\", got \"%s\"", ktx);
	}
	if (!ret)
		ret = get_str(w, dp, "$.dataplane", "offload", 0, &offload);
	if (ret || !offload)
		goto out;
	if (!strcmp(offload, "auto"))
		cfg->offload = FG_OFFLOAD_AUTO;
	else if (!strcmp(offload, "kernel"))
		cfg->offload = FG_OFFLOAD_KERNEL;
	else if (!strcmp(offload, "userspace"))
		cfg->offload = FG_OFFLOAD_USERSPACE;
	else
		ret = fg_conf_fail(w->err, w->file, "$.dataplane.offload",
				   "expected \"auto\", \"kernel\" or \"userspace\", got \"%s\"",
				   offload);
out:
	free(ktx);
	free(offload);
	return ret;
}

static int parse_rule(struct walk *w, const cJSON *obj, const char *path, struct fg_allow_rule *r)
{
	static const char *const keys[] = { "dns", "uri", "cn", "root", NULL };
	char jp[320];
	int ret;

	ret = check_keys(w, obj, path, keys);
	if (!ret)
		ret = get_str(w, obj, path, "dns", 0, &r->dns);
	if (!ret)
		ret = get_str(w, obj, path, "uri", 0, &r->uri);
	if (!ret)
		ret = get_str(w, obj, path, "cn", 0, &r->cn);
	if (!ret)
		ret = get_str(w, obj, path, "root", 0, &r->root);
	if (!ret && r->root && !strncmp(r->root, FG_ROOT_SHA256_PREFIX, FP_PREFIX_LEN) &&
	    normalize_sha256(r->root + FP_PREFIX_LEN))
		ret = fg_conf_fail(w->err, w->file, key_path(jp, sizeof(jp), path, "root"),
				   "expected \"sha256:\" and a SHA-256 fingerprint (64 hex "
				   "digits)");
	if (!ret && !r->dns && !r->uri && !r->cn && !r->root)
		ret = fg_conf_fail(w->err, w->file, path,
				   "an allow rule needs at least one of dns, uri, cn, root");
	return ret;
}

static int parse_addr(struct walk *w, const cJSON *obj, const char *path, const char *key,
		      int passive, struct fg_addr *addr)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	const char *why = NULL;
	char jp[256];
	int ret;

	snprintf(jp, sizeof(jp), "%s.%s", path, key);
	if (!it)
		return fg_conf_fail(w->err, w->file, jp, "missing required key");
	if (!cJSON_IsString(it))
		return fg_conf_fail(w->err, w->file, jp, "expected a string \"host:port\"");
	ret = fg_addr_parse(it->valuestring, passive, addr, &why);
	if (ret == -EINVAL)
		return fg_conf_fail(w->err, w->file, jp, "bad address \"%s\": %s", it->valuestring,
				    why);
	return ret;
}

static int parse_tunnel(struct walk *w, const cJSON *obj, const char *path,
			struct fg_tunnel_conf *t)
{
	static const char *const keys[] = { "name",	   "mode",	     "listen", "peer",
					    "upstream",	   "server_name",    "allow",  "proxy_protocol",
					    NULL };
	char *mode = NULL, *pp = NULL, jp[256];
	const cJSON *allow, *it;
	int ret, i = 0;

	ret = check_keys(w, obj, path, keys);
	if (!ret)
		ret = get_str(w, obj, path, "name", 1, &t->name);
	if (!ret)
		ret = get_str(w, obj, path, "mode", 1, &mode);
	if (ret)
		goto out;
	snprintf(jp, sizeof(jp), "%s.mode", path);
	if (!strcmp(mode, "originate"))
		t->mode = FG_MODE_ORIGINATE;
	else if (!strcmp(mode, "terminate"))
		t->mode = FG_MODE_TERMINATE;
	else {
		ret = fg_conf_fail(w->err, w->file, jp,
				   "expected \"originate\" or \"terminate\", got \"%s\"", mode);
		goto out;
	}
	ret = parse_addr(w, obj, path, "listen", 1, &t->listen);
	if (ret)
		goto out;
	if (t->mode == FG_MODE_ORIGINATE) {
		ret = parse_addr(w, obj, path, "peer", 0, &t->target);
		if (!ret)
			ret = get_str(w, obj, path, "server_name", 1, &t->server_name);
		if (!ret && cJSON_GetObjectItemCaseSensitive(obj, "upstream"))
			ret = fg_conf_fail(w->err, w->file, key_path(jp, sizeof(jp), path, "upstream"),
					   "\"upstream\" belongs to terminate tunnels; an "
					   "originate tunnel dials \"peer\"");
		if (!ret && cJSON_GetObjectItemCaseSensitive(obj, "proxy_protocol"))
			ret = fg_conf_fail(w->err, w->file,
					   key_path(jp, sizeof(jp), path, "proxy_protocol"),
					   "\"proxy_protocol\" applies to terminate tunnels only");
	} else {
		ret = parse_addr(w, obj, path, "upstream", 0, &t->target);
		if (!ret && cJSON_GetObjectItemCaseSensitive(obj, "peer"))
			ret = fg_conf_fail(w->err, w->file, key_path(jp, sizeof(jp), path, "peer"),
					   "\"peer\" belongs to originate tunnels; a terminate "
					   "tunnel forwards to \"upstream\"");
		if (!ret)
			ret = get_str(w, obj, path, "proxy_protocol", 0, &pp);
		if (!ret && pp) {
			snprintf(jp, sizeof(jp), "%s.proxy_protocol", path);
			if (!strcmp(pp, "v2"))
				t->proxy_v2 = 1;
			else if (strcmp(pp, "none"))
				ret = fg_conf_fail(w->err, w->file, jp,
						   "expected \"v2\" or \"none\", got \"%s\"", pp);
		}
		if (!ret && cJSON_GetObjectItemCaseSensitive(obj, "server_name"))
			ret = fg_conf_fail(w->err, w->file,
					   key_path(jp, sizeof(jp), path, "server_name"),
					   "\"server_name\" applies to originate tunnels only");
	}
	if (ret)
		goto out;

	snprintf(jp, sizeof(jp), "%s.allow", path);
	allow = cJSON_GetObjectItemCaseSensitive(obj, "allow");
	if (!allow) {
		ret = fg_conf_fail(w->err, w->file, jp,
				   "missing required key (a tunnel admits no peer without rules)");
		goto out;
	}
	if (!cJSON_IsArray(allow) || cJSON_GetArraySize(allow) == 0) {
		ret = fg_conf_fail(w->err, w->file, jp, "expected a non-empty array of rules");
		goto out;
	}
	t->allow = calloc((size_t)cJSON_GetArraySize(allow), sizeof(*t->allow));
	if (!t->allow) {
		ret = -ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(it, allow)
	{
		snprintf(jp, sizeof(jp), "%s.allow[%d]", path, i++);
		t->n_allow++;
		ret = parse_rule(w, it, jp, &t->allow[t->n_allow - 1]);
		if (ret)
			goto out;
	}
out:
	free(mode);
	free(pp);
	return ret;
}

static int parse_tunnels(struct walk *w, struct fg_config *cfg, const cJSON *arr)
{
	char jp[64];
	const cJSON *it;
	int ret = 0, i = 0;

	if (!arr)
		return fg_conf_fail(w->err, w->file, "$.tunnels", "missing required key");
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return fg_conf_fail(w->err, w->file, "$.tunnels",
				    "expected a non-empty array of tunnels");
	cfg->tunnels = calloc((size_t)cJSON_GetArraySize(arr), sizeof(*cfg->tunnels));
	if (!cfg->tunnels)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		snprintf(jp, sizeof(jp), "$.tunnels[%d]", i++);
		cfg->n_tunnels++;
		ret = parse_tunnel(w, it, jp, &cfg->tunnels[cfg->n_tunnels - 1]);
		if (ret)
			return ret;
		for (size_t j = 0; j + 1 < cfg->n_tunnels; j++)
			if (!strcmp(cfg->tunnels[j].name, cfg->tunnels[cfg->n_tunnels - 1].name))
				return fg_conf_fail(w->err, w->file, jp,
						    "tunnel name \"%s\" is used twice",
						    cfg->tunnels[j].name);
	}
	return 0;
}

/* Reads the whole file; returns 0 or -errno with @err set. */
static int slurp(const char *path, char **out, struct fg_err *err)
{
	struct stat st;
	FILE *f;
	char *buf = NULL;
	int ret = 0;

	f = fopen(path, "r");
	if (!f) {
		ret = -errno;
		fg_conf_fail(err, path, "$", "cannot open: %s", strerror(errno));
		goto out;
	}
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > MAX_CONFIG_BYTES) {
		ret = fg_conf_fail(err, path, "$", "not a regular file of at most 1 MiB");
		goto close_file;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto close_file;
	}
	if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		ret = fg_conf_fail(err, path, "$", "read error");
		free(buf);
		goto close_file;
	}
	buf[st.st_size] = '\0';
	*out = buf;
close_file:
	fclose(f);
out:
	return ret;
}

int fg_config_load(const char *path, struct fg_config *cfg, struct fg_err *err)
{
	static const char *const keys[] = { "identity", "tls", "dataplane", "tunnels", "roots",
					    NULL };
	struct walk w = { .file = path, .err = err };
	const char *parse_end = NULL;
	cJSON *root = NULL;
	char *text = NULL, *slash;
	int ret;

	ret = slurp(path, &text, err);
	if (ret)
		goto out;
	root = cJSON_ParseWithOpts(text, &parse_end, 1);
	if (!root) {
		int line = 1, col = 1;

		for (const char *p = text; parse_end && p < parse_end; p++, col++)
			if (*p == '\n')
				line++, col = 0;
		ret = fg_conf_fail(err, path, "$", "JSON syntax error at line %d, column %d", line,
				   col);
		goto free_text;
	}
	cfg->path = strdup(path);
	cfg->dir = strdup(path);
	if (!cfg->path || !cfg->dir) {
		ret = -ENOMEM;
		goto free_json;
	}
	slash = strrchr(cfg->dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(cfg->dir, ".");

	ret = check_keys(&w, root, "$", keys);
	if (!ret)
		ret = parse_identity(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "identity"));
	if (!ret)
		ret = parse_tls(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "tls"));
	if (!ret)
		ret = parse_dataplane(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "dataplane"));
	if (!ret)
		ret = parse_tunnels(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "tunnels"));
	if (!ret)
		ret = parse_roots(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "roots"));
free_json:
	cJSON_Delete(root);
free_text:
	free(text);
out:
	if (ret)
		fg_config_free(cfg);
	return ret;
}

void fg_config_free(struct fg_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_tunnels; i++) {
		struct fg_tunnel_conf *t = &cfg->tunnels[i];

		for (size_t j = 0; j < t->n_allow; j++) {
			free(t->allow[j].dns);
			free(t->allow[j].uri);
			free(t->allow[j].cn);
			free(t->allow[j].root);
		}
		free(t->allow);
		free(t->name);
		fg_addr_exit(&t->listen);
		fg_addr_exit(&t->target);
		free(t->server_name);
	}
	free(cfg->tunnels);
	free(cfg->path);
	free(cfg->dir);
	free(cfg->cert_file);
	free(cfg->key_file);
	free(cfg->trust_file);
	if (cfg->ca) {
		free(cfg->ca->ca.url);
		free(cfg->ca->ca.root);
		free(cfg->ca->token_file);
		free(cfg->ca->subject);
		free_str_array(cfg->ca->sans, cfg->ca->n_sans);
		free(cfg->ca);
	}
	for (size_t i = 0; i < cfg->n_federation; i++) {
		free(cfg->federation[i].url);
		free(cfg->federation[i].root);
	}
	free(cfg->federation);
	for (size_t i = 0; i < cfg->n_root_rules; i++) {
		struct fg_root_rule *r = &cfg->root_rules[i];

		free(r->cn);
		free(r->sha256);
		free_str_array(r->dns, r->n_dns);
		free_str_array(r->uri, r->n_uri);
		free_str_array(r->leaf_cn, r->n_leaf_cn);
	}
	free(cfg->root_rules);
	memset(cfg, 0, sizeof(*cfg));
}
