// SPDX-License-Identifier: MIT
/* cgroup capture's plan: the route map and the targets, from the config (pure): see the .h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/capture_cgroup.h"
#include "fedgate/addr.h"
#include "fedgate/err.h"
#include "fedgate/net.h"

static const uint8_t any6[16], loop6[16] = {[15] = 1};

/* @t's listener as targets (capture_opts in loop.c makes "[::]" dual-stack). */
static void take_target(struct fg_capcg_plan *p, const struct fg_tunnel_conf *t)
{
	const struct sockaddr_storage *ss = &t->listen.sa;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		if (p->t4)
			return;
		p->t4 = t;
		p->conf.has4 = 1;
		p->conf.ip4 = in->sin_addr.s_addr ? in->sin_addr.s_addr : htonl(INADDR_LOOPBACK);
		p->conf.port4 = in->sin_port;
		return;
	}
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	int any = !memcmp(&in6->sin6_addr, any6, 16);

	if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) || any) {
		if (!p->t4) {
			p->t4 = t;
			p->conf.has4 = 1;
			memcpy(&p->conf.ip4, &in6->sin6_addr.s6_addr[12], 4);
			if (any)
				p->conf.ip4 = htonl(INADDR_LOOPBACK);
			p->conf.port4 = in6->sin6_port;
		}
		if (!any)
			return;
	}
	if (p->t6)
		return;
	p->t6 = t;
	p->conf.has6 = 1;
	memcpy(p->conf.ip6, any ? loop6 : in6->sin6_addr.s6_addr, 16);
	p->conf.port6 = in6->sin6_port;
}

static int port_of(const struct fg_tunnel_conf *t)
{
	const struct sockaddr_storage *ss = &t->listen.sa;

	return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
					: ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int targets(const struct fg_config *cfg, struct fg_capcg_plan *p, struct fg_err *err)
{
	for (size_t i = 0; i < cfg->n_tunnels; i++) {
		const struct fg_tunnel_conf *t = &cfg->tunnels[i];

		if (t->capture != FG_CAPTURE_CGROUP)
			continue;
		p->n_tunnels++;
		if (port_of(t) == 0)
			return fg_err_set(err, -EINVAL,
					  "%s: $.tunnels[%zu].listen: a \"cgroup\" capture tunnel "
					  "needs a fixed port (connects are sent to it), not 0",
					  cfg->path, i);
		take_target(p, t);
	}
	return 0;
}

/* @net's address as a socket address, to ask fg_net_contains whether a wider prefix holds it. */
static struct sockaddr_storage net_sa(const struct fg_net *net)
{
	struct sockaddr_storage ss = {0};

	if (net->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, net->addr, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, net->addr, 16);
	}
	return ss;
}

static int by_lo(const void *a, const void *b)
{
	const struct fg_port_range *x = a, *y = b;

	return (int)x->lo - (int)y->lo;
}

/* True if route @r has a prefix holding @net (same family, no longer, containing it). */
static int holds(const struct fg_route *r, const struct fg_net *net)
{
	struct sockaddr_storage ss = net_sa(net);

	for (size_t j = 0; j < r->n_to; j++)
		if (r->to[j].family == net->family && r->to[j].prefix <= net->prefix &&
		    fg_net_contains(&r->to[j], (const struct sockaddr *)&ss))
			return 1;
	return 0;
}

/*
 * The ports over @net: every route holding it adds its ranges (none: any
 * port), merged. -E2BIG if more than FG_CAP_PORT_RANGES remain, -ENOMEM.
 */
static int ports_over(const struct fg_config *cfg, const struct fg_net *net,
		      struct fg_cap_ports *out)
{
	struct fg_port_range *v = NULL;
	size_t n = 0, cap = 0, m = 0;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const struct fg_route *r = &cfg->routes[i];

		if (!holds(r, net))
			continue;
		if (!r->n_ports)
			goto out; /* any port: n 0 */
		if (n + r->n_ports > cap) {
			struct fg_port_range *nv;

			cap = 2 * (n + r->n_ports);
			nv = reallocarray(v, cap, sizeof(*v));
			if (!nv) {
				ret = -ENOMEM;
				goto out;
			}
			v = nv;
		}
		memcpy(v + n, r->ports, r->n_ports * sizeof(*v));
		n += r->n_ports;
	}
	if (n)
		qsort(v, n, sizeof(*v), by_lo);
	for (size_t i = 0; i < n; i++) {
		if (m && v[i].lo <= (uint32_t)out->r[m - 1].hi + 1) {
			if (v[i].hi > out->r[m - 1].hi)
				out->r[m - 1].hi = v[i].hi;
			continue;
		}
		if (m == FG_CAP_PORT_RANGES) {
			ret = -E2BIG;
			goto out;
		}
		out->r[m].lo = v[i].lo;
		out->r[m].hi = v[i].hi;
		m++;
	}
	out->n = (__u32)m;
out:
	free(v);
	return ret;
}

static int seen(const struct fg_capcg_plan *p, const struct fg_cap_key *k)
{
	for (size_t i = 0; i < p->n_routes; i++)
		if (!memcmp(&p->routes[i].key, k, sizeof(*k)))
			return 1;
	return 0;
}

static int add_prefix(const struct fg_config *cfg, struct fg_capcg_plan *p,
		      const struct fg_net *net, struct fg_err *err)
{
	struct fg_bpfcap_route *e = &p->routes[p->n_routes];
	char text[64];
	int ret;

	memset(e, 0, sizeof(*e));
	e->key.family = net->family == AF_INET ? FG_AF_INET : FG_AF_INET6;
	e->key.prefixlen = 32u + net->prefix;
	memcpy(e->key.addr, net->addr, net->family == AF_INET ? 4 : 16);
	if (seen(p, &e->key))
		return 0;
	ret = ports_over(cfg, net, &e->ports);
	if (ret == -E2BIG) {
		fg_net_text(net, text, sizeof(text));
		return fg_err_set(err, -EINVAL,
				  "%s: $.routes: the routes over %s have more than %d separate "
				  "port ranges, more than cgroup capture holds per prefix",
				  cfg->path, text, FG_CAP_PORT_RANGES);
	}
	if (ret)
		return fg_err_set(err, ret, "cgroup capture: out of memory");
	p->n_routes++;
	return 0;
}

int fg_capcg_plan(const struct fg_config *cfg, struct fg_capcg_plan *plan, struct fg_err *err)
{
	size_t total = 0;
	int ret;

	memset(plan, 0, sizeof(*plan));
	plan->conf.mark = cfg->capture.mark;
	ret = targets(cfg, plan, err);
	if (ret || !plan->n_tunnels)
		goto out;
	for (size_t i = 0; i < cfg->n_routes; i++)
		total += cfg->routes[i].n_to;
	plan->routes = calloc(total ? total : 1, sizeof(*plan->routes));
	if (!plan->routes) {
		ret = fg_err_set(err, -ENOMEM, "cgroup capture: out of memory");
		goto out;
	}
	for (size_t i = 0; i < cfg->n_routes && !ret; i++)
		for (size_t j = 0; j < cfg->routes[i].n_to && !ret; j++)
			ret = add_prefix(cfg, plan, &cfg->routes[i].to[j], err);
out:
	if (ret)
		fg_capcg_plan_exit(plan);
	return ret;
}

void fg_capcg_plan_exit(struct fg_capcg_plan *plan)
{
	if (!plan)
		return;
	free(plan->routes);
	memset(plan, 0, sizeof(*plan));
}

/* " for IPv4" etc., or why that family is not captured. */
static void target_text(const struct fg_tunnel_conf *t, int v6, const struct fg_cap_conf *c,
			char *out, size_t len)
{
	struct sockaddr_storage ss = {0};
	char a[INET6_ADDRSTRLEN + 8];

	if (!t) {
		snprintf(out, len, "IPv%d: not captured (no \"cgroup\" tunnel listens on IPv%d%s)",
			 v6 ? 6 : 4, v6 ? 6 : 4, v6 ? "" : " or [::]");
		return;
	}
	if (v6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, c->ip6, 16);
		in6->sin6_port = c->port6;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = c->ip4;
		in->sin_port = c->port4;
	}
	fg_addr_text(&ss, a, sizeof(a));
	snprintf(out, len, "IPv%d to tunnel %s at %s", v6 ? 6 : 4, t->name, a);
}

void fg_capcg_describe(const struct fg_capcg_plan *plan, const char *cgroup, char *out, size_t len)
{
	char t4[160], t6[160];

	target_text(plan->t4, 0, &plan->conf, t4, sizeof(t4));
	target_text(plan->t6, 1, &plan->conf, t6, sizeof(t6));
	snprintf(out, len,
		 "cgroup capture: TCP connects from processes in cgroup %s to %zu prefix(es) "
		 "of $.routes go %s; %s (sockets marked 0x%x, fedgate's own, are never "
		 "captured)",
		 cgroup, plan->n_routes, t4, t6, plan->conf.mark);
}
