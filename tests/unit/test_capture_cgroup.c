/* SPDX-License-Identifier: MIT */
/*
 * cgroup capture's pure parts: the route map planned from $.routes (one
 * entry per distinct prefix, each holding the merged ports of every route
 * over it, so that one LPM lookup answers what fg_route_find would), the
 * targets taken from the "cgroup" tunnels' listeners, refused configs, and
 * the normalized 4-tuple key (bpf/tuple.h) both sides build. That the
 * programs load and capture is tests/test_capture_cgroup.py's job.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bpf/tuple-api.h"
#include "control/capture_cgroup.h"
#include "control/route.h"
#include "fedgate/err.h"
#include "fedgate/net.h"
#include "unit.h"
#include "unit_sa.h"

static struct fg_config cfg;
static struct fg_tunnel_conf tunnels[3];
static struct fg_route routes[4];
static struct fg_net nets[6];
static struct fg_port_range ports[40];

static struct fg_net net(const char *text, int prefix)
{
	struct fg_net n = { .family = strchr(text, ':') ? AF_INET6 : AF_INET,
			    .prefix = (uint8_t)prefix };

	CHECK_EQ(inet_pton(n.family, text, n.addr), 1);
	return n;
}

static void tunnel(size_t i, const char *name, enum fg_capture capture, const char *ip,
		   int port)
{
	struct fg_tunnel_conf *t = &tunnels[i];

	memset(t, 0, sizeof(*t));
	t->name = (char *)name;
	t->mode = FG_MODE_ORIGINATE;
	t->capture = capture;
	t->listen.sa = strchr(ip, ':') ? sa6(ip, (unsigned)port) : sa4(ip, (unsigned)port);
	if (i >= cfg.n_tunnels)
		cfg.n_tunnels = i + 1;
}

/*
 * 10.20.0.0/16 and fd20::/64 on 5432 and 8000-8100; 10.20.0.0/24 on 80 and
 * 8050-8200 (inside the first: its entry carries both routes' ports);
 * 10.30.0.5/32 on any port; one cgroup tunnel on [::]:15003.
 */
static void base(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.path = "t.json";
	cfg.capture.mark = 0x4647;
	nets[0] = net("10.20.0.0", 16);
	nets[1] = net("fd20::", 64);
	nets[2] = net("10.20.0.0", 24);
	nets[3] = net("10.30.0.5", 32);
	ports[0] = (struct fg_port_range){ 8000, 8100 };
	ports[1] = (struct fg_port_range){ 5432, 5432 };
	ports[2] = (struct fg_port_range){ 80, 80 };
	ports[3] = (struct fg_port_range){ 8050, 8200 };
	routes[0] = (struct fg_route){ .to = nets, .n_to = 2, .ports = ports, .n_ports = 2 };
	routes[1] = (struct fg_route){ .to = nets + 2, .n_to = 1, .ports = ports + 2, .n_ports = 2 };
	routes[2] = (struct fg_route){ .to = nets + 3, .n_to = 1 };
	cfg.routes = routes;
	cfg.n_routes = 3;
	cfg.tunnels = tunnels;
	tunnel(0, "plain", FG_CAPTURE_NONE, "127.0.0.1", 9000);
	tunnel(1, "local", FG_CAPTURE_CGROUP, "::", 15003);
}

static const struct fg_bpfcap_route *find(const struct fg_capcg_plan *p, int family,
					  const char *addr, int prefix)
{
	struct fg_net n = net(addr, prefix);
	struct fg_cap_key k = { .prefixlen = 32u + (unsigned)prefix,
				.family = family == AF_INET ? FG_AF_INET : FG_AF_INET6 };

	memcpy(k.addr, n.addr, family == AF_INET ? 4 : 16);
	for (size_t i = 0; i < p->n_routes; i++)
		if (!memcmp(&p->routes[i].key, &k, sizeof(k)))
			return &p->routes[i];
	return NULL;
}

/* What the programs decide for @dst: the longest entry holding it, then its ports. */
static int bpf_says(const struct fg_capcg_plan *p, const struct sockaddr_storage *dst)
{
	const struct fg_bpfcap_route *best = NULL;
	struct sockaddr_storage d = *dst;
	const uint8_t *a;
	int fam, bits;
	uint16_t port;

	fg_sockaddr_unmap(&d);
	fam = d.ss_family == AF_INET ? FG_AF_INET : FG_AF_INET6;
	if (d.ss_family == AF_INET) {
		a = (const uint8_t *)&((struct sockaddr_in *)&d)->sin_addr;
		port = ntohs(((struct sockaddr_in *)&d)->sin_port);
	} else {
		a = ((struct sockaddr_in6 *)&d)->sin6_addr.s6_addr;
		port = ntohs(((struct sockaddr_in6 *)&d)->sin6_port);
	}
	for (size_t i = 0; i < p->n_routes; i++) {
		const struct fg_cap_key *k = &p->routes[i].key;
		const uint8_t *ka = (const uint8_t *)k->addr;

		if ((int)k->family != fam)
			continue;
		bits = (int)k->prefixlen - 32;
		int ok = 1;

		for (int b = 0; b < bits && ok; b++)
			ok = ((a[b / 8] ^ ka[b / 8]) & (0x80 >> (b % 8))) == 0;
		if (ok && (!best || k->prefixlen > best->key.prefixlen))
			best = &p->routes[i];
	}
	if (!best)
		return 0;
	if (!best->ports.n)
		return 1;
	for (unsigned i = 0; i < best->ports.n; i++)
		if (port >= best->ports.r[i].lo && port <= best->ports.r[i].hi)
			return 1;
	return 0;
}

UNIT_TEST(one_entry_per_prefix_ports_merged)
{
	struct fg_capcg_plan p;
	struct fg_err err = { 0 };
	const struct fg_bpfcap_route *e;

	base();
	CHECK_EQ(fg_capcg_plan(&cfg, &p, &err), 0);
	CHECK_EQ(p.n_tunnels, 1);
	CHECK_EQ(p.n_routes, 4);
	e = find(&p, AF_INET, "10.20.0.0", 16);
	CHECK(e != NULL);
	if (e) {
		CHECK_EQ(e->ports.n, 2); /* sorted by start */
		CHECK_EQ(e->ports.r[0].lo, 5432);
		CHECK_EQ(e->ports.r[1].lo, 8000);
		CHECK_EQ(e->ports.r[1].hi, 8100);
	}
	/* the /24 holds its own ports and the /16's, merged: 80, 5432, 8000-8200 */
	e = find(&p, AF_INET, "10.20.0.0", 24);
	CHECK(e != NULL);
	if (e) {
		CHECK_EQ(e->ports.n, 3);
		CHECK_EQ(e->ports.r[0].lo, 80);
		CHECK_EQ(e->ports.r[0].hi, 80);
		CHECK_EQ(e->ports.r[1].lo, 5432);
		CHECK_EQ(e->ports.r[2].lo, 8000);
		CHECK_EQ(e->ports.r[2].hi, 8200);
	}
	e = find(&p, AF_INET6, "fd20::", 64);
	CHECK(e != NULL && e->ports.n == 2);
	e = find(&p, AF_INET, "10.30.0.5", 32);
	CHECK(e != NULL && e->ports.n == 0); /* any port */
	CHECK_EQ(p.conf.mark, 0x4647);
	fg_capcg_plan_exit(&p);
	CHECK(p.routes == NULL && p.n_routes == 0);
	fg_capcg_plan_exit(NULL);
}

/* The programs' yes or no equals fg_route_find's, wherever a route is or is not. */
UNIT_TEST(same_answer_as_route_find)
{
	static const char *const v4[] = { "10.20.0.1", "10.20.1.1", "10.20.255.9", "10.21.0.1",
					  "10.30.0.5", "10.30.0.6", "::ffff:10.20.0.9" };
	static const unsigned pv[] = { 1, 80, 81, 5432, 7999, 8000, 8100, 8101, 8200, 8201, 65535 };
	struct fg_capcg_plan p;
	struct fg_err err = { 0 };
	struct sockaddr_storage ss;

	base();
	CHECK_EQ(fg_capcg_plan(&cfg, &p, &err), 0);
	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++)
		for (size_t j = 0; j < sizeof(pv) / sizeof(pv[0]); j++) {
			ss = strchr(v4[i], ':') ? sa6(v4[i], pv[j]) : sa4(v4[i], pv[j]);
			int want = fg_route_find(cfg.routes, cfg.n_routes,
						 (struct sockaddr *)&ss) != NULL;
			if (bpf_says(&p, &ss) != want)
				fprintf(stderr, "    %s port %u: bpf %d, route_find %d\n", v4[i],
					pv[j], !want, want);
			CHECK_EQ(bpf_says(&p, &ss), want);
		}
	ss = sa6("fd20::7", 8080);
	CHECK_EQ(bpf_says(&p, &ss), 1);
	ss = sa6("fd21::7", 8080);
	CHECK_EQ(bpf_says(&p, &ss), 0);
	fg_capcg_plan_exit(&p);
}

UNIT_TEST(targets_from_listeners)
{
	struct fg_capcg_plan p;
	struct fg_err err = { 0 };
	uint8_t loop6[16] = { [15] = 1 }, a6[16];

	/* [::]: dual-stack, IPv4 to 127.0.0.1, IPv6 to ::1 */
	base();
	CHECK_EQ(fg_capcg_plan(&cfg, &p, &err), 0);
	CHECK(p.t4 == &tunnels[1] && p.t6 == &tunnels[1]);
	CHECK_EQ(p.conf.has4, 1);
	CHECK_EQ(p.conf.has6, 1);
	CHECK_EQ(p.conf.ip4, htonl(INADDR_LOOPBACK));
	CHECK_MEM(p.conf.ip6, loop6, 16);
	CHECK_EQ(p.conf.port4, htons(15003));
	CHECK_EQ(p.conf.port6, htons(15003));
	fg_capcg_plan_exit(&p);

	/* 0.0.0.0 then fd00::1: each family its own tunnel, the wildcard to loopback */
	base();
	tunnel(1, "v4", FG_CAPTURE_CGROUP, "0.0.0.0", 15004);
	tunnel(2, "v6", FG_CAPTURE_CGROUP, "fd00::1", 15005);
	CHECK_EQ(fg_capcg_plan(&cfg, &p, &err), 0);
	CHECK_EQ(p.n_tunnels, 2);
	CHECK(p.t4 == &tunnels[1] && p.t6 == &tunnels[2]);
	CHECK_EQ(p.conf.ip4, htonl(INADDR_LOOPBACK));
	CHECK_EQ(p.conf.port4, htons(15004));
	inet_pton(AF_INET6, "fd00::1", a6);
	CHECK_MEM(p.conf.ip6, a6, 16);
	CHECK_EQ(p.conf.port6, htons(15005));
	fg_capcg_plan_exit(&p);

	/* 127.0.0.1 only: IPv6 is not captured, and the description says so */
	base();
	tunnel(1, "v4", FG_CAPTURE_CGROUP, "127.0.0.1", 15003);
	CHECK_EQ(fg_capcg_plan(&cfg, &p, &err), 0);
	CHECK(p.t4 == &tunnels[1] && p.t6 == NULL);
	CHECK_EQ(p.conf.has6, 0);
	char line[512];

	fg_capcg_describe(&p, "/sys/fs/cgroup/x", line, sizeof(line));
	CHECK(strstr(line, "cgroup /sys/fs/cgroup/x") != NULL);
	CHECK(strstr(line, "IPv4 to tunnel v4 at 127.0.0.1:15003") != NULL);
	CHECK(strstr(line, "IPv6: not captured") != NULL);
	fg_capcg_plan_exit(&p);
}

UNIT_TEST(no_cgroup_tunnel_plans_nothing)
{
	struct fg_capcg_plan p;
	struct fg_err err = { 0 };

	base();
	tunnels[1].capture = FG_CAPTURE_REDIRECT;
	CHECK_EQ(fg_capcg_plan(&cfg, &p, &err), 0);
	CHECK_EQ(p.n_tunnels, 0);
	CHECK_EQ(p.n_routes, 0);
	CHECK(p.routes == NULL);
}

UNIT_TEST(refused_configs)
{
	struct fg_capcg_plan p;
	struct fg_err err = { 0 };

	base();
	tunnel(1, "local", FG_CAPTURE_CGROUP, "127.0.0.1", 0);
	CHECK_EQ(fg_capcg_plan(&cfg, &p, &err), -EINVAL);
	CHECK(strstr(err.msg, "$.tunnels[1].listen") != NULL);
	CHECK(p.routes == NULL && p.n_tunnels == 0);

	/* 17 separate ranges over one prefix: more than an entry holds */
	base();
	for (int i = 0; i < 17; i++)
		ports[i] = (struct fg_port_range){ (uint16_t)(100 + 10 * i), (uint16_t)(101 + 10 * i) };
	routes[0].ports = ports;
	routes[0].n_ports = 17;
	routes[1].n_ports = 0; /* the /24: any port, which a wider entry must not inherit */
	CHECK_EQ(fg_capcg_plan(&cfg, &p, &err), -EINVAL);
	CHECK(strstr(err.msg, "10.20.0.0/16") != NULL);
	CHECK(p.routes == NULL);

	/* ... but adjacent and overlapping ones merge into few */
	for (int i = 0; i < 17; i++)
		ports[i] = (struct fg_port_range){ (uint16_t)(100 + 10 * i), (uint16_t)(110 + 10 * i) };
	CHECK_EQ(fg_capcg_plan(&cfg, &p, &err), 0);
	const struct fg_bpfcap_route *e = find(&p, AF_INET, "10.20.0.0", 16);

	CHECK(e && e->ports.n == 1 && e->ports.r[0].lo == 100 && e->ports.r[0].hi == 270);
	e = find(&p, AF_INET, "10.20.0.0", 24);
	CHECK(e && e->ports.n == 0);
	fg_capcg_plan_exit(&p);
}

/* bpf/tuple.h: IPv4 and IPv4-mapped IPv6 give one key; IPv6 keeps all words. */
UNIT_TEST(tuple_normal_form)
{
	struct sockaddr_storage l4 = sa4("127.0.0.1", 40000), r4 = sa4("127.0.0.1", 15003);
	struct sockaddr_storage l6m = sa6("::ffff:127.0.0.1", 40000);
	struct sockaddr_storage r6m = sa6("::ffff:127.0.0.1", 15003);
	struct sockaddr_storage l6 = sa6("::1", 40000), r6 = sa6("::1", 15003);
	struct fg_tuple a, b, c, s;

	CHECK_EQ(fg_tuple_from((struct sockaddr *)&l4, (struct sockaddr *)&r4, &a), 0);
	CHECK_EQ(fg_tuple_from((struct sockaddr *)&l6m, (struct sockaddr *)&r6m, &b), 0);
	CHECK_MEM(&a, &b, sizeof(a));
	CHECK_EQ(a.family, FG_AF_INET);
	CHECK_EQ(a.lip[0], htonl(INADDR_LOOPBACK));
	CHECK_EQ(a.lip[1] | a.lip[2] | a.lip[3] | a.rip[1] | a.rip[2] | a.rip[3], 0);
	CHECK_EQ(a.lport, 40000);
	CHECK_EQ(a.rport, 15003);
	CHECK_EQ(fg_tuple_from((struct sockaddr *)&l6, (struct sockaddr *)&r6, &c), 0);
	CHECK_EQ(c.family, FG_AF_INET6);
	CHECK_EQ(c.lip[3], htonl(1));
	fg_tuple_swap(&a, &s);
	CHECK_EQ(s.lport, 15003);
	CHECK_EQ(s.rport, 40000);
	CHECK_EQ(fg_tuple_from((struct sockaddr *)&l4, (struct sockaddr *)&r6, &a), -EAFNOSUPPORT);
}

UNIT_MAIN("capture_cgroup", UNIT_CASE(one_entry_per_prefix_ports_merged),
	  UNIT_CASE(same_answer_as_route_find), UNIT_CASE(targets_from_listeners),
	  UNIT_CASE(no_cgroup_tunnel_plans_nothing), UNIT_CASE(refused_configs),
	  UNIT_CASE(tuple_normal_form))
