// SPDX-License-Identifier: MIT
/*
 * The config's $.routes[] (where a captured connection goes: prefixes and
 * ports to a peer gateway and the rules its certificate must meet) and
 * $.capture (the mark and routing table `fedgate capture up` installs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/config.h"
#include "control/config_walk.h"
#include "fedgate/net.h"

static int parse_nets(struct fg_conf_walk *w, const cJSON *obj, const char *path,
		      struct fg_route *r)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, "to"), *it;
	const char *why;
	char jp[256];
	int i = 0;

	snprintf(jp, sizeof(jp), "%s.to", path);
	if (!arr)
		return fg_conf_fail(w->err, w->file, jp, "missing required key");
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return fg_conf_fail(w->err, w->file, jp,
				    "expected a non-empty array of prefixes such as "
				    "\"10.20.0.0/16\"");
	r->to = calloc((size_t)cJSON_GetArraySize(arr), sizeof(*r->to));
	if (!r->to)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		snprintf(jp, sizeof(jp), "%s.to[%d]", path, i++);
		if (!cJSON_IsString(it))
			return fg_conf_fail(w->err, w->file, jp,
					    "expected a string such as \"10.20.0.0/16\"");
		if (fg_net_parse(it->valuestring, &r->to[r->n_to], &why))
			return fg_conf_fail(w->err, w->file, jp, "\"%s\": %s", it->valuestring,
					    why);
		r->n_to++;
	}
	return 0;
}

/* "ports": optional; absent means every port. */
static int parse_ports(struct fg_conf_walk *w, const cJSON *obj, const char *path,
		       struct fg_route *r)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, "ports"), *it;
	const char *why;
	char jp[256];
	int i = 0;

	if (!arr)
		return 0;
	snprintf(jp, sizeof(jp), "%s.ports", path);
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return fg_conf_fail(w->err, w->file, jp,
				    "expected a non-empty array of ports such as \"5432\" or "
				    "\"8000-8100\"");
	r->ports = calloc((size_t)cJSON_GetArraySize(arr), sizeof(*r->ports));
	if (!r->ports)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		snprintf(jp, sizeof(jp), "%s.ports[%d]", path, i++);
		if (!cJSON_IsString(it))
			return fg_conf_fail(w->err, w->file, jp,
					    "expected a string such as \"5432\" or \"8000-8100\"");
		if (fg_port_range_parse(it->valuestring, &r->ports[r->n_ports], &why))
			return fg_conf_fail(w->err, w->file, jp, "\"%s\": %s", it->valuestring,
					    why);
		r->n_ports++;
	}
	return 0;
}

static int parse_route(struct fg_conf_walk *w, const cJSON *obj, const char *path,
		       struct fg_route *r)
{
	static const char *const keys[] = {"to", "ports", "peer", "server_name", "allow", NULL};
	const cJSON *peer;
	char jp[256];
	int ret;

	ret = fg_conf_check_keys(w, obj, path, keys);
	if (!ret)
		ret = parse_nets(w, obj, path, r);
	if (!ret)
		ret = parse_ports(w, obj, path, r);
	if (ret)
		return ret;
	fg_conf_key_path(jp, sizeof(jp), path, "peer");
	peer = cJSON_GetObjectItemCaseSensitive(obj, "peer");
	if (!peer)
		return fg_conf_fail(w->err, w->file, jp, "missing required key");
	if (!cJSON_IsString(peer))
		return fg_conf_fail(w->err, w->file, jp, "expected a string \"host:port\"");
	ret = fg_conf_defer_addr(w, jp, peer->valuestring, 0, &r->peer);
	if (!ret)
		ret = fg_conf_get_str(w, obj, path, "server_name", 1, &r->server_name);
	if (!ret)
		ret = fg_conf_parse_allow(w, obj, path, 0, &r->allow, &r->n_allow);
	return ret;
}

int fg_conf_parse_routes(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *arr)
{
	const cJSON *it;
	size_t n_capture = 0;
	char jp[64];
	int ret, i = 0;

	for (size_t j = 0; j < cfg->n_tunnels; j++)
		n_capture += cfg->tunnels[j].capture != FG_CAPTURE_NONE;
	if (!arr && !n_capture)
		return 0;
	if (!arr || !cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return fg_conf_fail(w->err, w->file, "$.routes",
				    arr ? "expected a non-empty array of routes"
					: "missing: a capture tunnel needs at least one route");
	cfg->routes = calloc((size_t)cJSON_GetArraySize(arr), sizeof(*cfg->routes));
	if (!cfg->routes)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		snprintf(jp, sizeof(jp), "$.routes[%d]", i++);
		cfg->n_routes++;
		ret = parse_route(w, it, jp, &cfg->routes[cfg->n_routes - 1]);
		if (ret)
			return ret;
	}
	return 0;
}

int fg_conf_parse_capture(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *obj)
{
	static const char *const keys[] = {"mark", "route_table", NULL};
	int mark = FG_CAPTURE_MARK_DEFAULT, table = FG_CAPTURE_TABLE_DEFAULT, ret = 0;

	if (obj)
		ret = fg_conf_check_keys(w, obj, "$.capture", keys);
	/* Table 0 is "unspec" and 253..255 are the kernel's default, main and local. */
	if (!ret && obj)
		ret = fg_conf_get_int(w, obj, "$.capture", "mark", 1, 0x7fffffff, &mark);
	if (!ret && obj)
		ret = fg_conf_get_int(w, obj, "$.capture", "route_table", 1, 0x7fffffff, &table);
	if (!ret && table >= 253 && table <= 255)
		ret = fg_conf_fail(w->err, w->file, "$.capture.route_table",
				   "%d is one of the kernel's own tables (default, main, local)",
				   table);
	cfg->capture.mark = (uint32_t)mark;
	cfg->capture.route_table = (uint32_t)table;
	return ret;
}
