/* SPDX-License-Identifier: MIT */
/*
 * Transparent mode's decisions, pure: which route a captured destination takes
 * (fg_route_find: longest prefix, ports, families, default deny) and which
 * destinations a peer may reach through a transparent tunnel (fg_allow_reach:
 * only what a rule that admits the peer lists; none by default).
 */
#include <errno.h>
#include <string.h>
#include "control/allow.h"
#include "control/config-t.h"
#include "control/route.h"
#include "fedgate/net.h"
#include "unit.h"
#include "unit_sa.h"

/* @host numeric IPv4, or IPv6 ("::ffff:a.b.c.d" mapped included), with @port, into @ss. */
static const struct sockaddr *sa(const char *host, unsigned port, struct sockaddr_storage *ss)
{
	*ss = strchr(host, ':') ? sa6(host, port) : sa4(host, port);
	return (const struct sockaddr *)ss;
}

static struct fg_net net(const char *text)
{
	struct fg_net n;
	const char *why = NULL;

	memset(&n, 0, sizeof(n));
	CHECK_EQ(fg_net_parse(text, &n, &why), 0);
	return n;
}

UNIT_TEST(route_longest_prefix_wins_whatever_the_order)
{
	struct fg_net wide[] = { net("10.0.0.0/8") }, narrow[] = { net("10.20.0.0/16") },
		      host[] = { net("10.20.0.5/32") };
	struct fg_route r[3] = { { .to = wide, .n_to = 1 },
				 { .to = host, .n_to = 1 },
				 { .to = narrow, .n_to = 1 } };
	struct sockaddr_storage ss;

	CHECK(fg_route_find(r, 3, sa("10.20.0.5", 5432, &ss)) == &r[1]);
	CHECK(fg_route_find(r, 3, sa("10.20.9.9", 80, &ss)) == &r[2]);
	CHECK(fg_route_find(r, 3, sa("10.99.0.1", 80, &ss)) == &r[0]);
	CHECK(fg_route_find(r, 3, sa("11.0.0.1", 80, &ss)) == NULL);
	CHECK(fg_route_find(r, 0, sa("10.20.0.5", 80, &ss)) == NULL);
}

UNIT_TEST(route_equal_prefixes_take_the_first)
{
	struct fg_net a[] = { net("10.20.0.0/16") }, b[] = { net("10.20.0.0/16") };
	struct fg_route r[2] = { { .to = a, .n_to = 1 }, { .to = b, .n_to = 1 } };
	struct sockaddr_storage ss;

	CHECK(fg_route_find(r, 2, sa("10.20.1.1", 1, &ss)) == &r[0]);
}

UNIT_TEST(route_ports_must_hold_the_port)
{
	struct fg_net n[] = { net("10.20.0.0/16") }, wide[] = { net("10.0.0.0/8") };
	struct fg_port_range pg[] = { { 5432, 5432 }, { 8000, 8100 } };
	struct fg_route r[2] = { { .to = n, .n_to = 1, .ports = pg, .n_ports = 2 },
				 { .to = wide, .n_to = 1 } };
	struct sockaddr_storage ss;

	CHECK(fg_route_find(r, 2, sa("10.20.0.5", 5432, &ss)) == &r[0]);
	CHECK(fg_route_find(r, 2, sa("10.20.0.5", 8100, &ss)) == &r[0]);
	/* the narrower route does not take port 22: the wider one (every port) does */
	CHECK(fg_route_find(r, 2, sa("10.20.0.5", 22, &ss)) == &r[1]);
	CHECK(fg_route_find(r, 1, sa("10.20.0.5", 8101, &ss)) == NULL);
}

UNIT_TEST(route_families_never_cross)
{
	struct fg_net v4[] = { net("0.0.0.0/0") }, v6[] = { net("fd20::/64") };
	struct fg_route r4 = { .to = v4, .n_to = 1 }, r6 = { .to = v6, .n_to = 1 };
	struct sockaddr_storage ss;

	CHECK(fg_route_find(&r4, 1, sa("fd20::7", 8080, &ss)) == NULL);
	CHECK(fg_route_find(&r6, 1, sa("fd20::7", 8080, &ss)) == &r6);
	CHECK(fg_route_find(&r6, 1, sa("10.20.0.5", 80, &ss)) == NULL);
	/* an IPv4-mapped destination (a dual-stack listener's) is IPv4 */
	CHECK(fg_route_find(&r4, 1, sa("::ffff:10.20.0.5", 80, &ss)) == &r4);
	CHECK(fg_route_find(&r6, 1, sa("::ffff:10.20.0.5", 80, &ss)) == NULL);
}

UNIT_TEST(route_one_route_many_prefixes)
{
	struct fg_net n[] = { net("10.20.0.0/16"), net("fd20::/64") };
	struct fg_route r = { .to = n, .n_to = 2 };
	struct sockaddr_storage ss;

	CHECK(fg_route_find(&r, 1, sa("10.20.3.4", 1, &ss)) == &r);
	CHECK(fg_route_find(&r, 1, sa("fd20::1234", 65535, &ss)) == &r);
	CHECK(fg_route_find(&r, 1, sa("fd21::1", 1, &ss)) == NULL);
}

static struct fg_dest dest(const char *text)
{
	struct fg_dest d;
	const char *why = NULL;

	memset(&d, 0, sizeof(d));
	CHECK_EQ(fg_dest_parse(text, &d, &why), 0);
	return d;
}

static void peer_dns(struct fg_peer_id *p, const char *dns)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->cn, sizeof(p->cn), "%s", dns);
	snprintf(p->dns[0], sizeof(p->dns[0]), "%s", dns);
	p->n_dns = 1;
}

UNIT_TEST(reach_only_what_the_admitting_rule_lists)
{
	struct fg_dest a_reach[] = { dest("10.20.0.5:5432"), dest("[fd20::7]:8080") };
	struct fg_dest b_reach[] = { dest("10.20.0.6:80") };
	struct fg_allow_rule rules[2] = {
		{ .dns = "gw-a.aws.test", .reach = a_reach, .n_reach = 2 },
		{ .dns = "gw-b.aws.test", .reach = b_reach, .n_reach = 1 },
	};
	struct fg_peer_id a, b, c;
	struct sockaddr_storage ss;

	peer_dns(&a, "gw-a.aws.test");
	peer_dns(&b, "gw-b.aws.test");
	peer_dns(&c, "gw-c.aws.test");
	CHECK_EQ(fg_allow_reach(rules, 2, &a, sa("10.20.0.5", 5432, &ss)), 0);
	CHECK_EQ(fg_allow_reach(rules, 2, &a, sa("fd20::7", 8080, &ss)), 0);
	CHECK_EQ(fg_allow_reach(rules, 2, &a, sa("10.20.0.5", 5433, &ss)), -EACCES);
	/* b's rule lists 10.20.0.6:80; a may not use it, b may */
	CHECK_EQ(fg_allow_reach(rules, 2, &a, sa("10.20.0.6", 80, &ss)), -EACCES);
	CHECK_EQ(fg_allow_reach(rules, 2, &b, sa("10.20.0.6", 80, &ss)), 0);
	CHECK_EQ(fg_allow_reach(rules, 2, &b, sa("10.20.0.5", 5432, &ss)), -EACCES);
	CHECK_EQ(fg_allow_reach(rules, 2, &c, sa("10.20.0.5", 5432, &ss)), -EACCES);
	CHECK_EQ(fg_allow_reach(rules, 2, &a, sa("::ffff:10.20.0.5", 5432, &ss)), 0);
}

UNIT_TEST(reach_none_listed_means_none)
{
	struct fg_allow_rule rule = { .dns = "gw-a.aws.test" };
	struct fg_peer_id a;
	struct sockaddr_storage ss;

	peer_dns(&a, "gw-a.aws.test");
	CHECK_EQ(fg_allow_reach(&rule, 1, &a, sa("10.20.0.5", 5432, &ss)), -EACCES);
	CHECK_EQ(fg_allow_reach(&rule, 0, &a, sa("10.20.0.5", 5432, &ss)), -EACCES);
}

UNIT_TEST(reach_prefix_and_port_range)
{
	struct fg_dest r[] = { dest("10.30.0.0/16"), dest("[fd30::/64]:1000-2000") };
	struct fg_allow_rule rule = { .dns = "gw-a.aws.test", .reach = r, .n_reach = 2 };
	struct fg_peer_id a;
	struct sockaddr_storage ss;

	peer_dns(&a, "gw-a.aws.test");
	CHECK_EQ(fg_allow_reach(&rule, 1, &a, sa("10.30.255.1", 1, &ss)), 0);
	CHECK_EQ(fg_allow_reach(&rule, 1, &a, sa("10.31.0.1", 1, &ss)), -EACCES);
	CHECK_EQ(fg_allow_reach(&rule, 1, &a, sa("fd30::9", 1000, &ss)), 0);
	CHECK_EQ(fg_allow_reach(&rule, 1, &a, sa("fd30::9", 2000, &ss)), 0);
	CHECK_EQ(fg_allow_reach(&rule, 1, &a, sa("fd30::9", 2001, &ss)), -EACCES);
	CHECK_EQ(fg_allow_reach(&rule, 1, &a, sa("fd30::9", 999, &ss)), -EACCES);
}

UNIT_MAIN("route", UNIT_CASE(route_longest_prefix_wins_whatever_the_order),
	  UNIT_CASE(route_equal_prefixes_take_the_first), UNIT_CASE(route_ports_must_hold_the_port),
	  UNIT_CASE(route_families_never_cross), UNIT_CASE(route_one_route_many_prefixes),
	  UNIT_CASE(reach_only_what_the_admitting_rule_lists),
	  UNIT_CASE(reach_none_listed_means_none), UNIT_CASE(reach_prefix_and_port_range))
