// SPDX-License-Identifier: MIT
/*
 * The config's tunnels[]: mode, addresses, and the allow rules that admit
 * peers (rules are shared with $.routes[], config_routes.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/config.h"
#include "control/config_walk.h"
#include "fedgate/handoff-t.h"
#include "fedgate/net.h"

#define FP_PREFIX_LEN (sizeof(FG_ROOT_SHA256_PREFIX) - 1)

static int parse_dest(const char *text, void *out, const char **why)
{
	return fg_dest_parse(text, out, why);
}

/* allow[].reach: where a transparent tunnel's peers admitted by this rule may connect. */
static const struct fg_conf_elem rule_reach = {
    .key = "reach",
    .size = sizeof(struct fg_dest),
    .plural = "destinations",
    .example = "\"10.20.0.0/24:80-443\"",
    .parse = parse_dest,
};

static int parse_rule(struct fg_conf_walk *w, const cJSON *obj, const char *path, int reach_ok,
		      struct fg_allow_rule *r)
{
	static const char *const keys[] = {"dns", "uri", "cn", "root", "reach", NULL};
	const cJSON *reach;
	char jp[320];
	int ret;

	ret = fg_conf_check_keys(w, obj, path, keys);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "dns", 0, &r->dns);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "uri", 0, &r->uri);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "cn", 0, &r->cn);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "root", 0, &r->root);
	if (!ret && r->root && !strncmp(r->root, FG_ROOT_SHA256_PREFIX, FP_PREFIX_LEN) &&
	    fg_conf_normalize_sha256(r->root + FP_PREFIX_LEN))
		ret = fg_conf_fail(w->err, w->file, fg_conf_key_path(jp, sizeof(jp), path, "root"),
				   "expected \"sha256:\" and a SHA-256 fingerprint (64 hex "
				   "digits)");
	if (!ret && !r->dns && !r->uri && !r->cn && !r->root)
		ret = fg_conf_fail(w->err, w->file, path,
				   "an allow rule needs at least one of dns, uri, cn, root");
	reach = ret ? NULL : cJSON_GetObjectItemCaseSensitive(obj, "reach");
	if (reach && !reach_ok)
		ret = fg_conf_fail(w->err, w->file, fg_conf_key_path(jp, sizeof(jp), path, "reach"),
				   "\"reach\" applies only to the allow rules of a "
				   "\"transparent\" terminate tunnel");
	if (reach && reach_ok) {
		void *v = NULL;

		ret = fg_conf_get_parsed_array(w, obj, path, &rule_reach, &v, &r->n_reach);
		r->reach = v;
	}
	return ret;
}

/* A "host:port" string; resolving it into @addr is left to the loader. */
static int parse_addr(struct fg_conf_walk *w, const cJSON *obj, const char *path, const char *key,
		      int passive, struct fg_addr *addr)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	char jp[256];

	snprintf(jp, sizeof(jp), "%s.%s", path, key);
	if (!it)
		return fg_conf_fail(w->err, w->file, jp, "missing required key");
	if (!cJSON_IsString(it))
		return fg_conf_fail(w->err, w->file, jp, "expected a string \"host:port\"");
	return fg_conf_defer_addr(w, jp, it->valuestring, passive, addr);
}

/* peer and server_name; no upstream, no proxy_protocol. */
static int parse_originate(struct fg_conf_walk *w, const cJSON *obj, const char *path,
			   struct fg_tunnel_conf *t)
{
	char jp[256];
	int ret;

	ret = parse_addr(w, obj, path, "peer", 0, &t->target);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "server_name", 1, &t->server_name);
	if (!ret && cJSON_GetObjectItemCaseSensitive(obj, "upstream"))
		ret = fg_conf_fail(w->err, w->file,
				   fg_conf_key_path(jp, sizeof(jp), path, "upstream"),
				   "\"upstream\" belongs to terminate tunnels; an "
				   "originate tunnel dials \"peer\"");
	if (!ret && cJSON_GetObjectItemCaseSensitive(obj, "proxy_protocol"))
		ret = fg_conf_fail(w->err, w->file,
				   fg_conf_key_path(jp, sizeof(jp), path, "proxy_protocol"),
				   "\"proxy_protocol\" applies to terminate tunnels only");
	return ret;
}

/* proxy_protocol: "v2" or "none" (the default). */
static int parse_proxy_protocol(struct fg_conf_walk *w, const cJSON *obj, const char *path,
				struct fg_tunnel_conf *t)
{
	char *pp = NULL, jp[256];
	int ret;

	ret = fg_conf_get_str(w, obj, path, "proxy_protocol", 0, &pp);
	if (!ret && pp) {
		snprintf(jp, sizeof(jp), "%s.proxy_protocol", path);
		if (!strcmp(pp, "v2"))
			t->proxy_v2 = 1;
		else if (strcmp(pp, "none"))
			ret = fg_conf_fail(w->err, w->file, jp,
					   "expected \"v2\" or \"none\", got \"%s\"", pp);
	}
	free(pp);
	return ret;
}

/* upstream and proxy_protocol; no peer, no server_name. */
static int parse_terminate(struct fg_conf_walk *w, const cJSON *obj, const char *path,
			   struct fg_tunnel_conf *t)
{
	char jp[256];
	int ret;

	ret = parse_addr(w, obj, path, "upstream", 0, &t->target);
	if (!ret && cJSON_GetObjectItemCaseSensitive(obj, "peer"))
		ret = fg_conf_fail(w->err, w->file, fg_conf_key_path(jp, sizeof(jp), path, "peer"),
				   "\"peer\" belongs to originate tunnels; a terminate "
				   "tunnel forwards to \"upstream\"");
	if (!ret)
		ret = parse_proxy_protocol(w, obj, path, t);
	if (!ret && cJSON_GetObjectItemCaseSensitive(obj, "server_name"))
		ret = fg_conf_fail(w->err, w->file,
				   fg_conf_key_path(jp, sizeof(jp), path, "server_name"),
				   "\"server_name\" applies to originate tunnels only");
	return ret;
}

int fg_conf_parse_allow(struct fg_conf_walk *w, const cJSON *obj, const char *path, int reach_ok,
			struct fg_allow_rule **rules, size_t *n)
{
	const cJSON *allow, *it;
	char jp[256];
	int ret, i = 0;

	snprintf(jp, sizeof(jp), "%s.allow", path);
	allow = cJSON_GetObjectItemCaseSensitive(obj, "allow");
	if (!allow)
		return fg_conf_fail(w->err, w->file, jp,
				    "missing required key (a tunnel admits no peer without rules)");
	if (!cJSON_IsArray(allow) || cJSON_GetArraySize(allow) == 0)
		return fg_conf_fail(w->err, w->file, jp, "expected a non-empty array of rules");
	*rules = calloc((size_t)cJSON_GetArraySize(allow), sizeof(**rules));
	if (!*rules)
		return -ENOMEM;
	cJSON_ArrayForEach(it, allow)
	{
		snprintf(jp, sizeof(jp), "%s.allow[%d]", path, i++);
		(*n)++;
		ret = parse_rule(w, it, jp, reach_ok, &(*rules)[*n - 1]);
		if (ret)
			return ret;
	}
	return 0;
}

/* No key of @keys (NULL-terminated) may be in @obj: each belongs elsewhere, as @why says. */
static int refuse_keys(struct fg_conf_walk *w, const cJSON *obj, const char *path,
		       const char *const *keys, const char *why)
{
	char jp[256];

	for (; *keys; keys++)
		if (cJSON_GetObjectItemCaseSensitive(obj, *keys))
			return fg_conf_fail(w->err, w->file,
					    fg_conf_key_path(jp, sizeof(jp), path, *keys),
					    "\"%s\" %s", *keys, why);
	return 0;
}

/* capture: a transparent originate tunnel, routed by $.routes; it has no peer of its own. */
static int parse_capture(struct fg_conf_walk *w, const cJSON *obj, const char *path,
			 struct fg_tunnel_conf *t)
{
	static const char *const own[] = {"peer",	    "server_name", "allow", "upstream",
					  "proxy_protocol", "transparent", NULL};
	char *cap = NULL, jp[256];
	int ret;

	ret = fg_conf_get_str(w, obj, path, "capture", 1, &cap);
	if (ret)
		return ret;
	if (!strcmp(cap, "tproxy"))
		t->capture = FG_CAPTURE_TPROXY;
	else if (!strcmp(cap, "redirect"))
		t->capture = FG_CAPTURE_REDIRECT;
	else if (!strcmp(cap, "cgroup"))
		t->capture = FG_CAPTURE_CGROUP;
	else
		ret = fg_conf_fail(
		    w->err, w->file, fg_conf_key_path(jp, sizeof(jp), path, "capture"),
		    "expected \"tproxy\" or \"redirect\" (or \"cgroup\"), got \"%s\"", cap);
	free(cap);
	if (!ret)
		ret = refuse_keys(w, obj, path, own,
				  "does not apply to a capture tunnel: it dials the peer of the "
				  "route ($.routes) its connection's destination matches");
	return ret;
}

/* transparent: a terminate tunnel that dials the destination its peer names. */
static int parse_transparent(struct fg_conf_walk *w, const cJSON *obj, const char *path,
			     struct fg_tunnel_conf *t)
{
	static const char *const own[] = {"upstream", "peer", "server_name", NULL};
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "transparent");
	char jp[256];
	int ret;

	if (!cJSON_IsBool(it))
		return fg_conf_fail(w->err, w->file,
				    fg_conf_key_path(jp, sizeof(jp), path, "transparent"),
				    "expected true or false");
	if (!cJSON_IsTrue(it))
		return 0;
	if (t->mode != FG_MODE_TERMINATE)
		return fg_conf_fail(w->err, w->file,
				    fg_conf_key_path(jp, sizeof(jp), path, "transparent"),
				    "applies to terminate tunnels only (an originate tunnel is "
				    "made transparent by \"capture\")");
	t->transparent = 1;
	ret = refuse_keys(w, obj, path, own,
			  "does not apply to a transparent tunnel: it dials the destination "
			  "its peer names, if allow[].reach admits it");
	if (!ret)
		ret = parse_proxy_protocol(w, obj, path, t);
	return ret;
}

/*
 * pool: on an originate tunnel {"size", "idle_s"}, on a terminate tunnel
 * {"idle_s", "max"}. An originate's idle_s must stay under its peer's, so
 * that the originate closes first: the defaults do (30 against 60).
 */
static int parse_pool(struct fg_conf_walk *w, const cJSON *obj, const char *path,
		      struct fg_tunnel_conf *t)
{
	static const char *const orig_keys[] = {"size", "idle_s", NULL};
	static const char *const term_keys[] = {"idle_s", "max", NULL};
	const cJSON *pool = cJSON_GetObjectItemCaseSensitive(obj, "pool");
	int orig = t->mode == FG_MODE_ORIGINATE, ret;
	char jp[256], kp[272];

	if (!pool)
		return 0;
	fg_conf_key_path(jp, sizeof(jp), path, "pool");
	if (!cJSON_IsObject(pool))
		return fg_conf_fail(w->err, w->file, jp,
				    orig ? "expected an object {\"size\": N, \"idle_s\": S}"
					 : "expected an object {\"idle_s\": S, \"max\": N}");
	ret = fg_conf_check_keys(w, pool, jp, orig ? orig_keys : term_keys);
	if (ret)
		return ret;
	t->pool_idle_s = orig ? FG_POOL_IDLE_ORIGINATE_S : FG_POOL_IDLE_TERMINATE_S;
	ret = fg_conf_get_int(w, pool, jp, "idle_s", 1, FG_POOL_IDLE_MAX_S, &t->pool_idle_s);
	if (ret)
		return ret;
	if (!orig) {
		t->pool_max = FG_POOL_MAX_DEFAULT;
		return fg_conf_get_int(w, pool, jp, "max", 1, FG_LIMIT_TUNNELS_MAX, &t->pool_max);
	}
	if (!cJSON_GetObjectItemCaseSensitive(pool, "size"))
		return fg_conf_fail(w->err, w->file, fg_conf_key_path(kp, sizeof(kp), jp, "size"),
				    "missing required key (how many idle connections to keep)");
	return fg_conf_get_int(w, pool, jp, "size", 1, FG_POOL_SIZE_MAX, &t->pool_size);
}

static int parse_tunnel(struct fg_conf_walk *w, const cJSON *obj, const char *path,
			struct fg_tunnel_conf *t)
{
	static const char *const keys[] = {"name",	  "mode",	    "listen",
					   "peer",	  "upstream",	    "server_name",
					   "allow",	  "proxy_protocol", "capture",
					   "transparent", "idle_timeout_s", "max_tunnels",
					   "revalidate",  "resumption",	    "resumption_lifetime_s",
					   "pool",	  NULL};
	char *mode = NULL, jp[256];
	int ret;

	ret = fg_conf_check_keys(w, obj, path, keys);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "name", 1, &t->name);
	/* The data plane, /metrics, /status and a takeover know a tunnel by these bytes. */
	if (!ret && strlen(t->name) >= sizeof(((struct fg_handoff *)0)->tunnel))
		ret = fg_conf_fail(w->err, w->file, fg_conf_key_path(jp, sizeof(jp), path, "name"),
				   "longer than %zu bytes",
				   sizeof(((struct fg_handoff *)0)->tunnel) - 1);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "mode", 1, &mode);
	if (ret)
		goto out;
	snprintf(jp, sizeof(jp), "%s.mode", path);
	if (!strcmp(mode, "originate")) {
		t->mode = FG_MODE_ORIGINATE;
	} else if (!strcmp(mode, "terminate")) {
		t->mode = FG_MODE_TERMINATE;
	} else {
		ret = fg_conf_fail(w->err, w->file, jp,
				   "expected \"originate\" or \"terminate\", got \"%s\"", mode);
		goto out;
	}
	ret = parse_addr(w, obj, path, "listen", 1, &t->listen);
	if (!ret)
		ret = fg_conf_get_int(w, obj, path, "idle_timeout_s", 0, (int)FG_HANDOFF_IDLE_MAX_S,
				      &t->idle_timeout_s);
	if (!ret)
		ret = fg_conf_get_int(w, obj, path, "max_tunnels", 0, FG_LIMIT_TUNNELS_MAX,
				      &t->max_tunnels);
	t->revalidate = 1;
	if (!ret)
		ret = fg_conf_get_bool(w, obj, path, "revalidate", &t->revalidate);
	if (!ret)
		ret = fg_conf_get_bool(w, obj, path, "resumption", &t->resumption);
	t->resumption_lifetime_s = FG_RESUMPTION_LIFETIME_DEFAULT_S;
	if (!ret)
		ret = fg_conf_get_int(w, obj, path, "resumption_lifetime_s", 1,
				      FG_RESUMPTION_LIFETIME_MAX_S, &t->resumption_lifetime_s);
	if (!ret)
		ret = parse_pool(w, obj, path, t);
	if (ret)
		goto out;
	if (cJSON_GetObjectItemCaseSensitive(obj, "capture")) {
		if (t->mode == FG_MODE_ORIGINATE)
			ret = parse_capture(w, obj, path, t);
		else
			ret = fg_conf_fail(w->err, w->file,
					   fg_conf_key_path(jp, sizeof(jp), path, "capture"),
					   "applies to originate tunnels only (a terminate tunnel "
					   "is made transparent by \"transparent\": true)");
		goto out;
	}
	if (cJSON_GetObjectItemCaseSensitive(obj, "transparent"))
		ret = parse_transparent(w, obj, path, t);
	if (!ret && !t->transparent)
		ret = t->mode == FG_MODE_ORIGINATE ? parse_originate(w, obj, path, t)
						   : parse_terminate(w, obj, path, t);
	if (!ret)
		ret = fg_conf_parse_allow(w, obj, path, t->transparent, &t->allow, &t->n_allow);
out:
	free(mode);
	return ret;
}

int fg_conf_parse_tunnels(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *arr)
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
