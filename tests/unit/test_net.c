/* SPDX-License-Identifier: MIT */
/*
 * Prefixes, port ranges and destinations of transparent mode (lib/net.c), and
 * the matching of socket addresses against them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include "fedgate/net.h"
#include "unit.h"
#include "unit_sa.h"

/* @text parses and prints back as @canon. */
#define NET_OK(text, canon)                                                                        \
	do {                                                                                       \
		struct fg_net _n;                                                                  \
		const char *_why = NULL;                                                           \
		char _t[64] = "";                                                                  \
		int _ret = fg_net_parse((text), &_n, &_why);                                       \
		if (!_ret)                                                                         \
			fg_net_text(&_n, _t, sizeof(_t));                                          \
		if (_ret || strcmp(_t, (canon))) {                                                 \
			fprintf(stderr, "    %s:%d: fg_net_parse(\"%s\") == %d (%s) \"%s\"\n",     \
				__FILE__, __LINE__, (text), _ret, _why ? _why : "", _t);           \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

/* @text is refused with a reason that contains @reason. */
#define NET_BAD(text, reason)                                                                      \
	do {                                                                                       \
		struct fg_net _n;                                                                  \
		const char *_why = NULL;                                                           \
		int _ret = fg_net_parse((text), &_n, &_why);                                       \
		if (_ret != -EINVAL || !_why || !strstr(_why, (reason))) {                         \
			fprintf(stderr, "    %s:%d: fg_net_parse(\"%s\") == %d (%s)\n", __FILE__,  \
				__LINE__, (text), _ret, _why ? _why : "(null)");                   \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define PORTS_OK(text, elo, ehi)                                                                   \
	do {                                                                                       \
		struct fg_port_range _r = { 0, 0 };                                                \
		const char *_why = NULL;                                                           \
		int _ret = fg_port_range_parse((text), &_r, &_why);                                \
		if (_ret || _r.lo != (elo) || _r.hi != (ehi)) {                                    \
			fprintf(stderr,                                                            \
				"    %s:%d: fg_port_range_parse(\"%s\") == %d (%s) %u-%u\n",       \
				__FILE__, __LINE__, (text), _ret, _why ? _why : "", _r.lo, _r.hi); \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define PORTS_BAD(text)                                                                            \
	do {                                                                                       \
		struct fg_port_range _r;                                                           \
		const char *_why = NULL;                                                           \
		int _ret = fg_port_range_parse((text), &_r, &_why);                                \
		if (_ret != -EINVAL || !_why) {                                                    \
			fprintf(stderr, "    %s:%d: fg_port_range_parse(\"%s\") == %d\n",          \
				__FILE__, __LINE__, (text), _ret);                                 \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

/* @text parses to the prefix @canon and ports @elo-@ehi. */
#define DEST_OK(text, canon, elo, ehi)                                                             \
	do {                                                                                       \
		struct fg_dest _d;                                                                 \
		const char *_why = NULL;                                                           \
		char _t[64] = "";                                                                  \
		int _ret = fg_dest_parse((text), &_d, &_why);                                      \
		if (!_ret)                                                                         \
			fg_net_text(&_d.net, _t, sizeof(_t));                                      \
		if (_ret || strcmp(_t, (canon)) || _d.ports.lo != (elo) || _d.ports.hi != (ehi)) { \
			fprintf(stderr, "    %s:%d: fg_dest_parse(\"%s\") == %d (%s) \"%s\"\n",    \
				__FILE__, __LINE__, (text), _ret, _why ? _why : "", _t);           \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define DEST_BAD(text)                                                                             \
	do {                                                                                       \
		struct fg_dest _d;                                                                 \
		const char *_why = NULL;                                                           \
		int _ret = fg_dest_parse((text), &_d, &_why);                                      \
		if (_ret != -EINVAL || !_why) {                                                    \
			fprintf(stderr, "    %s:%d: fg_dest_parse(\"%s\") == %d\n", __FILE__,      \
				__LINE__, (text), _ret);                                           \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

static int contains(const char *net, struct sockaddr_storage ss)
{
	struct fg_net n;
	const char *why;

	CHECK_EQ(fg_net_parse(net, &n, &why), 0);
	return fg_net_contains(&n, (struct sockaddr *)&ss);
}

UNIT_TEST(prefixes_parse_and_print_canonically)
{
	NET_OK("10.20.0.0/16", "10.20.0.0/16");
	NET_OK("10.20.0.5", "10.20.0.5/32");
	NET_OK("10.20.0.5/32", "10.20.0.5/32");
	NET_OK("0.0.0.0/0", "0.0.0.0/0");
	NET_OK("10.20.0.128/25", "10.20.0.128/25");
	NET_OK("fd20::/64", "fd20::/64");
	NET_OK("FD20:0:0:0::/64", "fd20::/64");
	NET_OK("fd20::5", "fd20::5/128");
	NET_OK("::/0", "::/0");
	NET_OK("2001:db8:1::1/128", "2001:db8:1::1/128");
	NET_OK("fd20::8000/113", "fd20::8000/113");
}

UNIT_TEST(prefixes_are_strict)
{
	NET_BAD("10.20.0.1/16", "host bits set past the prefix");
	NET_BAD("10.20.0.0/8", "host bits set past the prefix");
	NET_BAD("10.20.0.129/25", "host bits set past the prefix");
	NET_BAD("fd20::1/64", "host bits set past the prefix");
	NET_BAD("fd21::/15", "host bits set past the prefix");
	NET_BAD("0.0.0.1/0", "host bits set past the prefix");
	NET_BAD("10.0.0.0/33", "0..32");
	NET_BAD("fd20::/129", "0..128");
	NET_BAD("10.0.0.0/", "0..32");
	NET_BAD("10.0.0.0/-1", "0..32");
	NET_BAD("10.0.0.0/+8", "0..32");
	NET_BAD("10.0.0.0/08", "0..32");
	NET_BAD("10.0.0.0/8 ", "0..32");
	NET_BAD("10.0.0.0/8/8", "0..32");
	NET_BAD("10.0.0.0/99999999999", "0..32");
	NET_BAD("", "empty");
	NET_BAD("/8", "empty");
	NET_BAD("10.0.0", "numeric");
	NET_BAD("10.0.0.0.0", "numeric");
	NET_BAD("010.0.0.0", "numeric");
	NET_BAD(" 10.0.0.0", "numeric");
	NET_BAD("10.0.0.0 ", "numeric");
	NET_BAD("localhost", "numeric");
	NET_BAD("fe80::1%eth0", "numeric");
	NET_BAD("[fd20::]/64", "numeric");
	NET_BAD("10.20.0.0/16:80", "0..32");
	NET_BAD("1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb/64", "too long");
	NET_BAD("::ffff:10.20.0.0/112", "IPv4-mapped");
	NET_BAD("::ffff:10.20.0.5", "IPv4-mapped");
}

UNIT_TEST(port_ranges)
{
	PORTS_OK("5432", 5432, 5432);
	PORTS_OK("1-65535", 1, 65535);
	PORTS_OK("80-443", 80, 443);
	PORTS_OK("443-443", 443, 443);
	PORTS_OK("65535", 65535, 65535);
	PORTS_BAD("");
	PORTS_BAD("0");
	PORTS_BAD("0-80");
	PORTS_BAD("65536");
	PORTS_BAD("1-65536");
	PORTS_BAD("100000");
	PORTS_BAD("443-80");
	PORTS_BAD("80-");
	PORTS_BAD("-80");
	PORTS_BAD("80-90-100");
	PORTS_BAD("080");
	PORTS_BAD("+80");
	PORTS_BAD("80 ");
	PORTS_BAD(" 80");
	PORTS_BAD("8a");
	PORTS_BAD("http");
}

UNIT_TEST(destinations)
{
	DEST_OK("10.20.0.0/24", "10.20.0.0/24", 1, 65535);
	DEST_OK("10.20.0.0/24:80-443", "10.20.0.0/24", 80, 443);
	DEST_OK("10.20.0.5:5432", "10.20.0.5/32", 5432, 5432);
	DEST_OK("10.20.0.5/32:5432", "10.20.0.5/32", 5432, 5432);
	DEST_OK("10.20.0.6", "10.20.0.6/32", 1, 65535);
	DEST_OK("[fd20::/64]:443", "fd20::/64", 443, 443);
	DEST_OK("[fd20::5]", "fd20::5/128", 1, 65535);
	DEST_OK("[fd20::7]:8080", "fd20::7/128", 8080, 8080);
	DEST_OK("[fd20::/64]", "fd20::/64", 1, 65535);
	DEST_OK("fd20::/64", "fd20::/64", 1, 65535);
	DEST_OK("::/0", "::/0", 1, 65535);
	DEST_OK("[::]:1-1024", "::/128", 1, 1024);
}

UNIT_TEST(destinations_are_strict)
{
	DEST_BAD("");
	DEST_BAD(":80");
	DEST_BAD("10.20.0.1/16");
	DEST_BAD("10.20.0.1/16:80");
	DEST_BAD("10.20.0.0/24:");
	DEST_BAD("10.20.0.0/24:0");
	DEST_BAD("10.20.0.0/24:65536");
	DEST_BAD("10.20.0.0/24:443-80");
	DEST_BAD("10.20.0.0/24:80x");
	DEST_BAD("10.20.0.0/24:80:90");
	DEST_BAD("10.20.0.0/33");
	DEST_BAD("10.20.0.5 ");
	DEST_BAD("host.example:80");
	DEST_BAD("fd20::5"); /* bare IPv6 with no length: "fd20::5:80" would read the same */
	DEST_BAD("fd20::5:80");
	DEST_BAD("fd20::/64:443"); /* a port needs brackets */
	DEST_BAD("fd20::1/64");
	DEST_BAD("[fd20::5");
	DEST_BAD("[fd20::5]80");
	DEST_BAD("[fd20::5]:");
	DEST_BAD("[fd20::5]:0");
	DEST_BAD("[fd20::5]:80]");
	DEST_BAD("[fd20::5]]");
	DEST_BAD("[]");
	DEST_BAD("[]:80");
	DEST_BAD("[10.20.0.5]:80"); /* brackets are for IPv6 */
	DEST_BAD("[10.20.0.0/24]");
	DEST_BAD("[fd20::1/64]:80");
	DEST_BAD("[fd20::/129]");
	DEST_BAD("[[fd20::5]]:80");
}

UNIT_TEST(contains_by_family_and_prefix)
{
	CHECK_EQ(contains("10.20.0.0/16", sa4("10.20.0.5", 1)), 1);
	CHECK_EQ(contains("10.20.0.0/16", sa4("10.20.255.255", 1)), 1);
	CHECK_EQ(contains("10.20.0.0/16", sa4("10.21.0.0", 1)), 0);
	CHECK_EQ(contains("10.20.0.128/25", sa4("10.20.0.127", 1)), 0);
	CHECK_EQ(contains("10.20.0.128/25", sa4("10.20.0.128", 1)), 1);
	CHECK_EQ(contains("10.20.0.5", sa4("10.20.0.5", 1)), 1);
	CHECK_EQ(contains("10.20.0.5", sa4("10.20.0.4", 1)), 0);
	CHECK_EQ(contains("0.0.0.0/0", sa4("192.0.2.1", 1)), 1);
	CHECK_EQ(contains("fd20::/64", sa6("fd20::7", 1)), 1);
	CHECK_EQ(contains("fd20::/64", sa6("fd20:0:0:1::7", 1)), 0);
	CHECK_EQ(contains("fd20::8000/113", sa6("fd20::ffff", 1)), 1);
	CHECK_EQ(contains("fd20::8000/113", sa6("fd20::7fff", 1)), 0);
	CHECK_EQ(contains("fd20::7", sa6("fd20::7", 1)), 1);
	/* an IPv4-mapped IPv6 socket address is IPv4 */
	CHECK_EQ(contains("10.20.0.0/16", sa6("::ffff:10.20.0.5", 1)), 1);
	CHECK_EQ(contains("10.20.0.0/16", sa6("::ffff:10.21.0.5", 1)), 0);
	/* never across families */
	CHECK_EQ(contains("::/0", sa4("10.20.0.5", 1)), 0);
	CHECK_EQ(contains("::/0", sa6("::ffff:10.20.0.5", 1)), 0);
	CHECK_EQ(contains("0.0.0.0/0", sa6("fd20::7", 1)), 0);
	CHECK_EQ(contains("0.0.0.0/0", sa6("::a14:5", 1)), 0); /* IPv4-compatible is IPv6 */
	CHECK_EQ(contains("::/0", sa6("::1", 1)), 1);
}

UNIT_TEST(contains_refuses_what_it_cannot_read)
{
	struct sockaddr_storage ss = { 0 };
	struct fg_net n = { .family = AF_INET, .prefix = 33 };
	const char *why;

	ss.ss_family = AF_UNIX;
	CHECK_EQ(fg_net_parse("0.0.0.0/0", &n, &why), 0);
	CHECK_EQ(fg_net_contains(&n, (struct sockaddr *)&ss), 0);
	ss = sa4("10.0.0.1", 1);
	n.prefix = 33; /* never made by the parser: deny */
	CHECK_EQ(fg_net_contains(&n, (struct sockaddr *)&ss), 0);
	n.family = AF_UNIX;
	n.prefix = 0;
	CHECK_EQ(fg_net_contains(&n, (struct sockaddr *)&ss), 0);
}

UNIT_TEST(ports_in)
{
	struct fg_port_range r = { 80, 443 };
	struct sockaddr_storage ss = { 0 };

	CHECK_EQ(fg_port_in(&r, (struct sockaddr *)&(struct sockaddr_storage){ 0 }), 0);
	ss = sa4("10.0.0.1", 80);
	CHECK_EQ(fg_port_in(&r, (struct sockaddr *)&ss), 1);
	ss = sa4("10.0.0.1", 443);
	CHECK_EQ(fg_port_in(&r, (struct sockaddr *)&ss), 1);
	ss = sa4("10.0.0.1", 79);
	CHECK_EQ(fg_port_in(&r, (struct sockaddr *)&ss), 0);
	ss = sa4("10.0.0.1", 444);
	CHECK_EQ(fg_port_in(&r, (struct sockaddr *)&ss), 0);
	ss = sa6("fd20::7", 8080);
	CHECK_EQ(fg_port_in(&r, (struct sockaddr *)&ss), 0);
	ss = sa6("::ffff:10.0.0.1", 100);
	CHECK_EQ(fg_port_in(&r, (struct sockaddr *)&ss), 1);
	ss.ss_family = AF_UNIX;
	CHECK_EQ(fg_port_in(&r, (struct sockaddr *)&ss), 0);
}

UNIT_TEST(unmap)
{
	struct sockaddr_storage ss = sa6("::ffff:10.20.0.5", 5432), want = sa4("10.20.0.5", 5432);

	fg_sockaddr_unmap(&ss);
	CHECK_EQ(ss.ss_family, AF_INET);
	CHECK_MEM(&ss, &want, sizeof(ss));
	/* AF_INET stays, true IPv6 stays, IPv4-compatible stays */
	fg_sockaddr_unmap(&ss);
	CHECK_MEM(&ss, &want, sizeof(ss));
	ss = sa6("fd20::7", 80);
	want = ss;
	fg_sockaddr_unmap(&ss);
	CHECK_MEM(&ss, &want, sizeof(ss));
	ss = sa6("::a14:5", 80);
	want = ss;
	fg_sockaddr_unmap(&ss);
	CHECK_MEM(&ss, &want, sizeof(ss));
}

UNIT_TEST(text_fits_or_truncates)
{
	struct fg_net n;
	const char *why;
	char small[6], big[64];

	CHECK_EQ(fg_net_parse("10.20.0.0/16", &n, &why), 0);
	fg_net_text(&n, small, sizeof(small));
	CHECK(strcmp(small, "10.20") == 0);
	n.family = AF_UNIX;
	fg_net_text(&n, big, sizeof(big));
	CHECK(strcmp(big, "?") == 0);
}

UNIT_MAIN("net", UNIT_CASE(prefixes_parse_and_print_canonically), UNIT_CASE(prefixes_are_strict),
	  UNIT_CASE(port_ranges), UNIT_CASE(destinations), UNIT_CASE(destinations_are_strict),
	  UNIT_CASE(contains_by_family_and_prefix), UNIT_CASE(contains_refuses_what_it_cannot_read),
	  UNIT_CASE(ports_in), UNIT_CASE(unmap), UNIT_CASE(text_fits_or_truncates))
