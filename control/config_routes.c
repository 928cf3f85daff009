// SPDX-License-Identifier: MIT
/*
 * The config's $.routes[] (where a captured connection goes: prefixes and
 * ports to a peer gateway and the rules its certificate must meet) and
 * $.capture (the two marks and the routing table `fedgate capture up` installs),
 * and $.dns (how often the peers' and upstreams' names are re-resolved).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/config.h"
#include "control/config_walk.h"
#include "fedgate/net.h"

static int parse_net(const char *text, void *out, const char **why)
{
	return fg_net_parse(text, out, why);
}

static int parse_port_range(const char *text, void *out, const char **why)
{
	return fg_port_range_parse(text, out, why);
}

static const struct fg_conf_elem route_to = {
    .key = "to",
    .required = 1,
    .size = sizeof(struct fg_net),
    .plural = "prefixes",
    .example = "\"10.20.0.0/16\"",
    .parse = parse_net,
};

/* "ports": optional; absent means every port. */
static const struct fg_conf_elem route_ports = {
    .key = "ports",
    .size = sizeof(struct fg_port_range),
    .plural = "ports",
    .example = "\"5432\" or \"8000-8100\"",
    .parse = parse_port_range,
};

static int parse_route(struct fg_conf_walk *w, const cJSON *obj, const char *path,
		       struct fg_route *r)
{
	static const char *const keys[] = {"to", "ports", "peer", "server_name", "allow", NULL};
	void *to = NULL, *ports = NULL;
	const cJSON *peer;
	char jp[256];
	int ret;

	ret = fg_conf_check_keys(w, obj, path, keys);
	if (!ret) {
		ret = fg_conf_get_parsed_array(w, obj, path, &route_to, &to, &r->n_to);
		r->to = to;
	}
	if (!ret) {
		ret = fg_conf_get_parsed_array(w, obj, path, &route_ports, &ports, &r->n_ports);
		r->ports = ports;
	}
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

/*
 * $.capture.cgroup: required by a "cgroup" capture tunnel; fg_config_load
 * checks it is a cgroup v2 directory. A cgroup without such a tunnel is inert.
 */
static int parse_cgroup(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *obj)
{
	size_t n = 0;
	int ret = 0;

	for (size_t j = 0; j < cfg->n_tunnels; j++)
		n += cfg->tunnels[j].capture == FG_CAPTURE_CGROUP;
	if (obj)
		ret = fg_conf_get_str(w, obj, "$.capture", "cgroup", 0, &cfg->capture.cgroup);
	if (ret)
		return ret;
	if (!cfg->capture.cgroup && n)
		return fg_conf_fail(w->err, w->file, "$.capture.cgroup",
				    "missing: a \"cgroup\" capture tunnel needs the cgroup whose "
				    "connections it captures");
	return 0;
}

int fg_conf_parse_capture(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *obj)
{
	static const char *const keys[] = {"mark", "tproxy_mark", "route_table", "cgroup", NULL};
	int mark = FG_CAPTURE_MARK_DEFAULT, tproxy_mark = FG_CAPTURE_TPROXY_MARK_DEFAULT;
	int table = FG_CAPTURE_TABLE_DEFAULT, ret = 0;

	if (obj)
		ret = fg_conf_check_keys(w, obj, "$.capture", keys);
	/* Table 0 is "unspec" and 253..255 are the kernel's default, main and local. */
	if (!ret && obj)
		ret = fg_conf_get_int(w, obj, "$.capture", "mark", 1, 0x7fffffff, &mark);
	if (!ret && obj)
		ret = fg_conf_get_int(w, obj, "$.capture", "tproxy_mark", 1, 0x7fffffff,
				      &tproxy_mark);
	if (!ret && obj)
		ret = fg_conf_get_int(w, obj, "$.capture", "route_table", 1, 0x7fffffff, &table);
	/* Equal, fedgate's own packets would match the TPROXY rule's ip rule (config-t.h). */
	if (!ret && tproxy_mark == mark)
		ret = fg_conf_fail(w->err, w->file, "$.capture.tproxy_mark",
				   "must differ from $.capture.mark (both are %d): fedgate's own "
				   "sockets would be routed into lo",
				   mark);
	if (!ret && table >= 253 && table <= 255)
		ret = fg_conf_fail(w->err, w->file, "$.capture.route_table",
				   "%d is one of the kernel's own tables (default, main, local)",
				   table);
	cfg->capture.mark = (uint32_t)mark;
	cfg->capture.tproxy_mark = (uint32_t)tproxy_mark;
	cfg->capture.route_table = (uint32_t)table;
	if (!ret)
		ret = parse_cgroup(w, cfg, obj);
	return ret;
}

/* One day at most: a longer interval is as good as never, and 0 says that. */
#define DNS_REFRESH_MAX_S 86400

int fg_conf_parse_dns(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *obj)
{
	static const char *const keys[] = {"refresh_s", NULL};
	int ret;

	cfg->dns_refresh_s = FG_DNS_REFRESH_DEFAULT_S;
	if (!obj)
		return 0;
	ret = fg_conf_check_keys(w, obj, "$.dns", keys);
	if (!ret)
		ret = fg_conf_get_int(w, obj, "$.dns", "refresh_s", 0, DNS_REFRESH_MAX_S,
				      &cfg->dns_refresh_s);
	return ret;
}
