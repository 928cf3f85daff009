// SPDX-License-Identifier: MIT
/*
 * The gateway's JSON configuration, parsed without I/O: every key checked,
 * every error located. What needs the file system or the resolver is left to
 * fg_config_load() as a list of checks (control/config.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control/config.h"
#include "control/config_walk.h"
#include "fedgate/addr.h"
#include "fedgate/dataplane-t.h"
#include "fedgate/json_nul.h"
#include "fedgate/keys-t.h"

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

static int parse_version(struct fg_conf_walk *w, const cJSON *tls, const char *key)
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

/* tls.groups: the key exchanges offered, in preference order (README "TLS policy"). */
static int parse_groups(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *tls)
{
	static const char *const known[] = {"X25519", "P-256", "P-384", "P-521", "X448"};
	const cJSON *groups = cJSON_GetObjectItemCaseSensitive(tls, "groups"), *it;
	int i = 0, seen = 0;
	char jp[64];

	if (!groups)
		return 0;
	if (!cJSON_IsArray(groups) || cJSON_GetArraySize(groups) == 0)
		return fg_conf_fail(w->err, w->file, "$.tls.groups",
				    "expected a non-empty array of group names");
	cfg->groups[0] = '\0';
	cJSON_ArrayForEach(it, groups)
	{
		size_t k = 0;

		snprintf(jp, sizeof(jp), "$.tls.groups[%d]", i++);
		if (!cJSON_IsString(it))
			return fg_conf_fail(w->err, w->file, jp, "expected a string");
		while (k < sizeof(known) / sizeof(known[0]) &&
		       strcasecmp(it->valuestring, known[k]))
			k++;
		if (!strncasecmp(it->valuestring, "ffdhe", 5))
			return fg_conf_fail(w->err, w->file, jp,
					    "finite-field groups are not offered (slow, and no "
					    "stronger than P-384); use X25519, P-256, P-384, P-521 "
					    "or X448");
		if (k == sizeof(known) / sizeof(known[0]))
			return fg_conf_fail(w->err, w->file, jp,
					    "unknown group (use X25519, P-256, P-384, P-521 or "
					    "X448)");
		if (seen & (1 << k))
			return fg_conf_fail(w->err, w->file, jp, "listed twice");
		seen |= 1 << k;
		/* Five names of at most six characters: always fits in FG_TLS_GROUPS_MAX. */
		snprintf(cfg->groups + strlen(cfg->groups),
			 sizeof(cfg->groups) - strlen(cfg->groups), "%s%s",
			 cfg->groups[0] ? ":" : "", known[k]);
	}
	return 0;
}

static int parse_tls(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *tls)
{
	static const char *const keys[] = { "min_version", "max_version", "ciphers",
					    "handshake_timeout_ms", "groups", "verify_depth",
					    "verify_cache", "ec_legacy_decode", "handshake_threads", NULL };
	const cJSON *ciphers, *it;
	char jp[64];
	int ret, i = 0;

	cfg->handshake_timeout_ms = 10000;
	cfg->ciphers[0] = FG_AES_128_GCM;
	cfg->ciphers[1] = FG_AES_256_GCM;
	cfg->ciphers[2] = FG_CHACHA20_POLY1305;
	cfg->n_ciphers = 3;
	snprintf(cfg->groups, sizeof(cfg->groups), "X25519:P-256:P-384");
	cfg->verify_depth = 8;
	cfg->verify_cache = 64;
	cfg->ec_legacy_decode = 1;
	cfg->handshake_threads = -1;
	if (!tls)
		return 0;
	ret = fg_conf_check_keys(w, tls, "$.tls", keys);
	if (!ret)
		ret = parse_version(w, tls, "min_version");
	if (!ret)
		ret = parse_version(w, tls, "max_version");
	if (!ret)
		ret = fg_conf_get_int(w, tls, "$.tls", "handshake_timeout_ms", 100, 600000,
				      &cfg->handshake_timeout_ms);
	if (!ret)
		ret = parse_groups(w, cfg, tls);
	if (!ret)
		ret = fg_conf_get_int(w, tls, "$.tls", "verify_depth", 0, FG_TLS_VERIFY_DEPTH_MAX,
				      &cfg->verify_depth);
	if (!ret)
		ret = fg_conf_get_int(w, tls, "$.tls", "verify_cache", 0, FG_TLS_VERIFY_CACHE_MAX,
				      &cfg->verify_cache);
	if (!ret)
		ret = fg_conf_get_bool(w, tls, "$.tls", "ec_legacy_decode", &cfg->ec_legacy_decode);
	if (!ret)
		ret = fg_conf_get_int(w, tls, "$.tls", "handshake_threads", 0, 64,
				      &cfg->handshake_threads);
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

/* $.dataplane.local_redirect and its budget and cgroup. */
static int parse_local_redirect(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *dp)
{
	char *on = NULL;
	int ret;

	ret = fg_conf_get_str(w, dp, "$.dataplane", "local_redirect", 0, &on);
	if (!ret && on) {
		if (!strcmp(on, "on"))
			cfg->local_redirect = 1;
		else if (strcmp(on, "off"))
			ret = fg_conf_fail(w->err, w->file, "$.dataplane.local_redirect",
					   "expected \"off\" or \"on\", got \"%s\"", on);
	}
	if (!ret)
		ret = fg_conf_get_int(w, dp, "$.dataplane", "local_redirect_budget",
				      FG_LEGS_BUDGET_MIN, FG_LEGS_BUDGET_MAX,
				      &cfg->local_redirect_budget);
	if (!ret)
		ret = fg_conf_get_str(w, dp, "$.dataplane", "local_redirect_cgroup", 0,
				      &cfg->local_redirect_cgroup);
	free(on);
	return ret;
}

static int parse_dataplane(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *dp)
{
	static const char *const keys[] = { "workers",		     "offload",
					     "kernel_tx",	     "local_redirect",
					     "local_redirect_budget", "local_redirect_cgroup",
					     "drain_timeout_s",	     "seccomp",
					     NULL };
	char *offload = NULL, *ktx = NULL;
	int ret;

	cfg->workers = 1;
	cfg->drain_timeout_s = 5;
	cfg->offload = FG_OFFLOAD_AUTO;
	cfg->local_redirect_budget = FG_LEGS_BUDGET_DEFAULT;
	if (!dp)
		return 0;
	ret = fg_conf_check_keys(w, dp, "$.dataplane", keys);
	if (!ret)
		ret = parse_local_redirect(w, cfg, dp);
	if (!ret)
		ret = fg_conf_get_int(w, dp, "$.dataplane", "workers", 1, FG_DP_WORKERS_MAX,
				      &cfg->workers);
	if (!ret)
		ret = fg_conf_get_int(w, dp, "$.dataplane", "drain_timeout_s", 0, 3600,
				      &cfg->drain_timeout_s);
	if (!ret)
		ret = fg_conf_get_str(w, dp, "$.dataplane", "kernel_tx", 0, &ktx);
	if (!ret && ktx) {
		if (!strcmp(ktx, "splice"))
			cfg->kernel_tx_splice = 1;
		else if (strcmp(ktx, "copy"))
			ret = fg_conf_fail(w->err, w->file, "$.dataplane.kernel_tx",
					   "expected \"copy\" or \"splice\", got \"%s\"", ktx);
	}
	if (!ret)
		ret = fg_conf_get_str(w, dp, "$.dataplane", "offload", 0, &offload);
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

/* Line and column of @end in @text, as the messages have always counted. */
static void text_pos(const char *text, const char *end, int *line, int *col)
{
	*line = 1, *col = 1;
	for (const char *p = text; end && p < end; p++, (*col)++)
		if (*p == '\n')
			(*line)++, *col = 0;
}

static int syntax_error(struct fg_conf_walk *w, const char *text, const char *end)
{
	int line, col;

	text_pos(text, end, &line, &col);
	return fg_conf_fail(w->err, w->file, "$", "JSON syntax error at line %d, column %d", line,
			    col);
}

/*
 * cJSON would end a string at a NUL in it ("t\u0000evil" reads as tunnel
 * "t"): the text is refused before it is parsed, at the NUL's JSON path.
 */
static int nul_error(struct fg_conf_walk *w, const char *text, size_t len)
{
	char jp[FG_CONF_JPATH_MAX];
	size_t at;
	int line, col;

	if (!fg_json_nul_find(text, len, jp, sizeof(jp), &at))
		return 0;
	text_pos(text, text + at, &line, &col);
	return fg_conf_fail(w->err, w->file, jp, "%s at line %d, column %d: %s",
			    text[at] ? "\\u0000 (a NUL character)" : "a NUL byte", line, col,
			    "not allowed, it would cut the text short there");
}

int fg_config_parse(const char *buf, size_t len, const char *file, const char *dir,
		    struct fg_config *cfg, struct fg_conf_checks *checks, struct fg_err *err)
{
	static const char *const keys[] = { "identity", "tls",	   "dataplane", "tunnels",
					    "roots",	"routes",  "capture",	"dns",
					    "limits",	"run_as",  "sandbox",	"admin",
					    NULL };
	struct fg_conf_walk w = { .file = file, .dir = dir, .err = err, .checks = checks };
	const char *parse_end = NULL;
	cJSON *root = NULL;
	char *text;
	int ret;

	/* cJSON wants the text NUL-terminated; a NUL inside is refused first (nul_error). */
	text = malloc(len + 1);
	if (!text) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(text, buf, len);
	text[len] = '\0';
	ret = nul_error(&w, text, len);
	if (ret)
		goto free_text;
	root = cJSON_ParseWithOpts(text, &parse_end, 1);
	if (!root) {
		ret = syntax_error(&w, text, parse_end);
		goto free_text;
	}
	cfg->path = strdup(file);
	cfg->dir = strdup(dir);
	if (!cfg->path || !cfg->dir) {
		ret = -ENOMEM;
		goto free_json;
	}
	ret = fg_conf_check_keys(&w, root, "$", keys);
	if (!ret)
		ret = fg_conf_parse_identity(&w, cfg,
					     cJSON_GetObjectItemCaseSensitive(root, "identity"));
	if (!ret)
		ret = parse_tls(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "tls"));
	if (!ret)
		ret = parse_dataplane(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "dataplane"));
	if (!ret)
		ret = fg_conf_parse_tunnels(&w, cfg,
					    cJSON_GetObjectItemCaseSensitive(root, "tunnels"));
	if (!ret)
		ret = fg_conf_parse_routes(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "routes"));
	if (!ret)
		ret = fg_conf_parse_capture(&w, cfg,
					    cJSON_GetObjectItemCaseSensitive(root, "capture"));
	if (!ret)
		ret = fg_conf_parse_roots(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "roots"));
	if (!ret)
		ret = fg_conf_parse_dns(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "dns"));
	if (!ret)
		ret = fg_conf_parse_limits(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "limits"));
	if (!ret)
		ret = fg_conf_parse_sandbox(&w, cfg, root);
	if (!ret)
		ret = fg_conf_parse_admin(&w, cfg, cJSON_GetObjectItemCaseSensitive(root, "admin"));
free_json:
	cJSON_Delete(root);
free_text:
	free(text);
out:
	return ret;
}

static void free_allow(struct fg_allow_rule *rules, size_t n)
{
	for (size_t j = 0; j < n; j++) {
		free(rules[j].dns);
		free(rules[j].uri);
		free(rules[j].cn);
		free(rules[j].root);
		free(rules[j].reach);
	}
	free(rules);
}

void fg_config_free(struct fg_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_tunnels; i++) {
		struct fg_tunnel_conf *t = &cfg->tunnels[i];

		free_allow(t->allow, t->n_allow);
		free(t->name);
		fg_addr_exit(&t->listen);
		fg_addr_exit(&t->target);
		free(t->server_name);
	}
	free(cfg->tunnels);
	for (size_t i = 0; i < cfg->n_routes; i++) {
		struct fg_route *r = &cfg->routes[i];

		free(r->to);
		free(r->ports);
		fg_addr_exit(&r->peer);
		free(r->server_name);
		free_allow(r->allow, r->n_allow);
	}
	free(cfg->routes);
	fg_addr_exit(&cfg->admin_listen);
	free(cfg->admin_socket);
	free(cfg->capture.cgroup);
	free(cfg->path);
	free(cfg->dir);
	free(cfg->cert_file);
	free(cfg->key_file);
	free(cfg->trust_file);
	free(cfg->trust_cache);
	free(cfg->local_redirect_cgroup);
	if (cfg->ca) {
		free(cfg->ca->ca.url);
		free(cfg->ca->ca.root);
		free(cfg->ca->token_file);
		free(cfg->ca->subject);
		fg_conf_free_str_array(cfg->ca->sans, cfg->ca->n_sans);
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
		fg_conf_free_str_array(r->dns, r->n_dns);
		fg_conf_free_str_array(r->uri, r->n_uri);
		fg_conf_free_str_array(r->leaf_cn, r->n_leaf_cn);
	}
	free(cfg->root_rules);
	memset(cfg, 0, sizeof(*cfg));
}
