// SPDX-License-Identifier: MIT
/* `fedgate capture`'s plan: the nft script and the routing entries, from the config (pure). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "control/capture.h"
#include "control/config.h"
#include "fedgate/addr.h"
#include "fedgate/err.h"
#include "fedgate/net.h"

/* The listen port of capture tunnel @t, or -EINVAL (with @err) when it is 0 or unknown. */
static int listen_port(const struct fg_config *cfg, size_t i, struct fg_err *err)
{
	char host[INET6_ADDRSTRLEN], jpath[64];
	unsigned port = fg_addr_host(&cfg->tunnels[i].listen.sa, host, sizeof(host));

	if (port)
		return (int)port;
	snprintf(jpath, sizeof(jpath), "$.tunnels[%zu].listen", i);
	return fg_conf_fail(err, cfg->path, jpath,
			    "a \"capture\" tunnel needs a fixed port (nftables sends to it), not 0");
}

/* "80" or "443-445"; @r NULL: every port. */
static void port_text(const struct fg_port_range *r, char *out, size_t len)
{
	if (!r)
		snprintf(out, len, "1-65535");
	else if (r->lo == r->hi)
		snprintf(out, len, "%u", r->lo);
	else
		snprintf(out, len, "%u-%u", r->lo, r->hi);
}

/*
 * One rule per prefix and port range of every route, for the capture tunnel
 * listening on @port: TPROXY in prerouting, setting tproxy_mark for the ip
 * rule; REDIRECT in output, skipping mark, fedgate's own sockets (the two
 * marks: capture-t.h). One range per rule rather than an anonymous set,
 * which nft refuses when ranges overlap.
 */
static void put_rules(FILE *f, const struct fg_config *cfg, enum fg_capture kind, int port)
{
	char net[INET6_ADDRSTRLEN + 8], ports[16];

	for (size_t r = 0; r < cfg->n_routes; r++) {
		const struct fg_route *route = &cfg->routes[r];

		for (size_t p = 0; p < route->n_to; p++) {
			const char *ip = route->to[p].family == AF_INET6 ? "ip6" : "ip";

			fg_net_text(&route->to[p], net, sizeof(net));
			for (size_t i = 0; i < (route->n_ports ? route->n_ports : 1); i++) {
				port_text(route->n_ports ? &route->ports[i] : NULL, ports,
					  sizeof(ports));
				if (kind == FG_CAPTURE_TPROXY)
					fprintf(f,
						"\t\t%s daddr %s tcp dport %s meta mark set 0x%x "
						"tproxy %s to :%d accept\n",
						ip, net, ports, cfg->capture.tproxy_mark, ip, port);
				else
					fprintf(f,
						"\t\tmeta mark != 0x%x %s daddr %s tcp dport %s "
						"redirect to :%d\n",
						cfg->capture.mark, ip, net, ports, port);
			}
		}
	}
}

/* The chain for every @kind tunnel of @cfg, or nothing when it has none. */
static int put_chain(FILE *f, const struct fg_config *cfg, enum fg_capture kind, struct fg_err *err)
{
	int opened = 0, port;

	for (size_t i = 0; i < cfg->n_tunnels; i++) {
		if (cfg->tunnels[i].capture != kind)
			continue;
		port = listen_port(cfg, i, err);
		if (port < 0)
			return port;
		if (!opened++)
			fputs(kind == FG_CAPTURE_TPROXY
				      ? "\tchain prerouting {\n\t\ttype filter hook prerouting "
					"priority mangle; policy accept;\n"
				      : "\tchain output {\n\t\ttype nat hook output priority -100; "
					"policy accept;\n",
			      f);
		put_rules(f, cfg, kind, port);
	}
	if (opened)
		fputs("\t}\n", f);
	return 0;
}

/* "add table" then "delete table": one transaction that never fails on a missing table. */
static const char nft_reset[] = "add table " FG_CAPTURE_NFT_TABLE "\n"
				"delete table " FG_CAPTURE_NFT_TABLE "\n";

/* The whole script of `up` into plan->nft. */
static int build_nft(const struct fg_config *cfg, struct fg_capture_plan *plan, struct fg_err *err)
{
	size_t size;
	FILE *f = open_memstream(&plan->nft, &size);
	int ret;

	if (!f)
		return fg_err_set(err, -ENOMEM, "capture: out of memory");
	fputs(nft_reset, f);
	fputs("table " FG_CAPTURE_NFT_TABLE " {\n", f);
	ret = put_chain(f, cfg, FG_CAPTURE_TPROXY, err);
	if (!ret)
		ret = put_chain(f, cfg, FG_CAPTURE_REDIRECT, err);
	fputs("}\n", f);
	if (fclose(f) && !ret)
		ret = fg_err_set(err, -ENOMEM, "capture: out of memory");
	return ret;
}

/* 1 if some route has a prefix of @family. */
static int routes_use(const struct fg_config *cfg, int family)
{
	for (size_t r = 0; r < cfg->n_routes; r++)
		for (size_t p = 0; p < cfg->routes[r].n_to; p++)
			if (cfg->routes[r].to[p].family == family)
				return 1;
	return 0;
}

/*
 * The two entries of @family, in the order they are added, both @present or
 * both absent: the route, then the rule that points at it. No rule matches
 * capture.mark: fedgate's own packets are routed as the host's (capture-t.h).
 * The plan is zeroed (fg_capture_plan_up/_down's contract): what is not set stays 0.
 */
static void put_rt(struct fg_capture_plan *plan, const struct fg_config *cfg, int family,
		   int present)
{
	struct fg_rt_entry *route = &plan->rt[plan->n_rt++], *rule = &plan->rt[plan->n_rt++];

	route->kind = FG_RT_ROUTE;
	rule->kind = FG_RT_RULE;
	rule->fwmark = cfg->capture.tproxy_mark;
	rule->priority = FG_CAPTURE_PRIO_CAPTURE;
	route->table = rule->table = cfg->capture.route_table;
	route->family = rule->family = family;
	route->present = rule->present = present;
}

/* The capture tunnels of @cfg, which both plans count. */
static void count_tunnels(const struct fg_config *cfg, struct fg_capture_plan *plan)
{
	for (size_t i = 0; i < cfg->n_tunnels; i++) {
		plan->n_tproxy += cfg->tunnels[i].capture == FG_CAPTURE_TPROXY;
		plan->n_redirect += cfg->tunnels[i].capture == FG_CAPTURE_REDIRECT;
		plan->n_cgroup += cfg->tunnels[i].capture == FG_CAPTURE_CGROUP;
	}
}

int fg_capture_plan_up(const struct fg_config *cfg, struct fg_capture_plan *plan,
		       struct fg_err *err)
{
	int ret;

	count_tunnels(cfg, plan);
	ret = build_nft(cfg, plan, err);
	if (ret) {
		fg_capture_plan_exit(plan);
		return ret;
	}
	put_rt(plan, cfg, AF_INET, plan->n_tproxy && routes_use(cfg, AF_INET));
	put_rt(plan, cfg, AF_INET6, plan->n_tproxy && routes_use(cfg, AF_INET6));
	return 0;
}

int fg_capture_plan_down(const struct fg_config *cfg, struct fg_capture_plan *plan,
			 struct fg_err *err)
{
	count_tunnels(cfg, plan);
	plan->nft = strdup(nft_reset);
	if (!plan->nft) {
		fg_capture_plan_exit(plan);
		return fg_err_set(err, -ENOMEM, "capture: out of memory");
	}
	put_rt(plan, cfg, AF_INET, 0);
	put_rt(plan, cfg, AF_INET6, 0);
	return 0;
}

void fg_capture_plan_exit(struct fg_capture_plan *plan)
{
	if (!plan)
		return;
	free(plan->nft);
	memset(plan, 0, sizeof(*plan));
}

void fg_rt_entry_text(const struct fg_rt_entry *e, int add, char *out, size_t len)
{
	const char *ip = e->family == AF_INET6 ? "ip -6" : "ip", *verb = add ? "add" : "del";

	if (e->kind == FG_RT_ROUTE)
		snprintf(out, len, "%s route %s local %s dev lo table %u", ip, verb,
			 e->family == AF_INET6 ? "::/0" : "0.0.0.0/0", e->table);
	else
		snprintf(out, len, "%s rule %s fwmark 0x%x lookup %u priority %u", ip, verb,
			 e->fwmark, e->table, e->priority);
}
