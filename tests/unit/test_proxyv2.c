/* SPDX-License-Identifier: MIT */
/*
 * The PROXY v2 header between gateways in transparent mode: what
 * fg_proxyv2_build() writes (control/proxyv2.c) and what fg_proxyv2_parse()
 * (control/proxyv2_parse.c) takes and refuses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include "control/proxyv2.h"
#include "fedgate/net.h"
#include "unit.h"
#include "unit_sa.h"

/* A raw header: signature, @ver_cmd, @fam, the length of @body, @body. */
static size_t raw(uint8_t *buf, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t n)
{
	memcpy(buf, FG_PP2_SIG, FG_PP2_SIG_LEN);
	buf[12] = ver_cmd;
	buf[13] = fam;
	buf[14] = (uint8_t)(n >> 8);
	buf[15] = (uint8_t)n;
	memcpy(buf + FG_PP2_HDR, body, n);
	return FG_PP2_HDR + n;
}

/* An IPv4 address block, 10.1.0.2:40000 -> 10.20.0.5:@dport, then @tlvs. */
static size_t v4_with(uint8_t *buf, unsigned dport, const uint8_t *tlvs, size_t n)
{
	uint8_t body[FG_PP2_MAX] = { 10, 1, 0, 2, 10, 20, 0, 5, 0x9c, 0x40 };

	body[10] = (uint8_t)(dport >> 8);
	body[11] = (uint8_t)dport;
	memcpy(body + 12, tlvs, n);
	return raw(buf, FG_PP2_VER_PROXY, FG_PP2_TCP4, body, 12 + n);
}

static ssize_t parse(const uint8_t *buf, size_t len)
{
	struct fg_pp2_addrs a;

	return fg_proxyv2_parse(buf, len, &a);
}

static void check_same(const struct sockaddr_storage *got, const struct sockaddr_storage *want)
{
	size_t n =
	    want->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);

	CHECK_EQ(got->ss_family, want->ss_family);
	CHECK_MEM(got, want, n);
}

static void round_trip(struct sockaddr_storage src, struct sockaddr_storage dst,
		       const struct fg_peer_id *peer, const char *tunnel, uint8_t fam)
{
	struct fg_pp2_addrs a;
	uint8_t buf[FG_PP2_MAX];
	ssize_t n =
	    fg_proxyv2_build(buf, sizeof(buf), (struct sockaddr *)&src, (struct sockaddr *)&dst,
			     peer, "sni.test", "TLS_AES_128_GCM_SHA256", tunnel);

	CHECK(n > FG_PP2_HDR);
	if (n <= FG_PP2_HDR)
		return;
	CHECK_EQ(buf[13], fam);
	CHECK_EQ(fg_proxyv2_parse(buf, (size_t)n, &a), n);
	CHECK_EQ(a.need, n);
	fg_sockaddr_unmap(&src);
	fg_sockaddr_unmap(&dst);
	check_same(&a.src, &src);
	check_same(&a.dst, &dst);
	CHECK_EQ(a.src_len,
		 fam == FG_PP2_TCP4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	CHECK_EQ(a.dst_len, a.src_len);
	CHECK(strcmp(a.tunnel, tunnel ? tunnel : "") == 0);
}

UNIT_TEST(round_trips)
{
	struct fg_peer_id peer = {
		.cn = "gw-a", .root_cn = "Root", .n_dns = 1, .dns = { "a.test" }
	};

	round_trip(sa4("10.1.0.2", 40000), sa4("10.20.0.5", 5432), NULL, "router", FG_PP2_TCP4);
	round_trip(sa6("fd01::2", 1), sa6("fd20::7", 8080), NULL, "local", FG_PP2_TCP6);
	round_trip(sa4("10.1.0.2", 40000), sa4("10.20.0.5", 5432), NULL, NULL, FG_PP2_TCP4);
	/* the identity TLVs of a terminate tunnel's header are skipped */
	round_trip(sa4("127.0.0.1", 3), sa4("127.0.0.1", 4), &peer, "from-k8s", FG_PP2_TCP4);
	round_trip(sa6("::1", 3), sa6("::1", 4), &peer, "from-k8s", FG_PP2_TCP6);
	/* IPv4-mapped addresses go as IPv4, on either side */
	round_trip(sa6("::ffff:10.1.0.2", 9), sa6("::ffff:10.20.0.5", 80), NULL, "r", FG_PP2_TCP4);
	round_trip(sa4("10.1.0.2", 9), sa6("::ffff:10.20.0.5", 80), NULL, "r", FG_PP2_TCP4);
	round_trip(sa6("::ffff:10.1.0.2", 9), sa4("10.20.0.5", 80), &peer, "r", FG_PP2_TCP4);
}

UNIT_TEST(build_without_peer_sends_the_tunnel_name_only)
{
	struct sockaddr_storage s = sa4("10.1.0.2", 40000), d = sa4("10.20.0.5", 5432);
	uint8_t buf[64], want[64];
	size_t n = v4_with(want, 5432, (const uint8_t *)"\xE3\x00\x06router", 9);

	CHECK_EQ(fg_proxyv2_build(buf, sizeof(buf), (struct sockaddr *)&s, (struct sockaddr *)&d,
				  NULL, "ignored", "ignored", "router"),
		 n);
	CHECK_MEM(buf, want, n);
	CHECK_EQ(fg_proxyv2_build(buf, n - 1, (struct sockaddr *)&s, (struct sockaddr *)&d, NULL,
				  NULL, NULL, "router"),
		 -ENOBUFS);
}

UNIT_TEST(build_refuses_mixed_families)
{
	struct sockaddr_storage v4 = sa4("10.1.0.2", 1), v6 = sa6("fd20::7", 2);
	struct sockaddr_storage m = sa6("::ffff:10.1.0.2", 3), un = { .ss_family = AF_UNIX };
	uint8_t buf[256];

	CHECK_EQ(fg_proxyv2_build(buf, sizeof(buf), (struct sockaddr *)&v4, (struct sockaddr *)&v6,
				  NULL, NULL, NULL, "t"),
		 -EAFNOSUPPORT);
	CHECK_EQ(fg_proxyv2_build(buf, sizeof(buf), (struct sockaddr *)&m, (struct sockaddr *)&v6,
				  NULL, NULL, NULL, "t"),
		 -EAFNOSUPPORT);
	CHECK_EQ(fg_proxyv2_build(buf, sizeof(buf), (struct sockaddr *)&un, (struct sockaddr *)&un,
				  NULL, NULL, NULL, "t"),
		 -EAFNOSUPPORT);
}

UNIT_TEST(every_incomplete_prefix_asks_for_more)
{
	struct sockaddr_storage s = sa6("fd01::2", 1), d = sa6("fd20::7", 8080);
	struct fg_pp2_addrs a;
	uint8_t buf[256];
	ssize_t n = fg_proxyv2_build(buf, sizeof(buf), (struct sockaddr *)&s, (struct sockaddr *)&d,
				     NULL, NULL, NULL, "router");

	CHECK(n > FG_PP2_HDR);
	for (ssize_t i = 0; i < n; i++) {
		CHECK_EQ(fg_proxyv2_parse(buf, (size_t)i, &a), -EAGAIN);
		CHECK_EQ(a.need, i < FG_PP2_HDR ? FG_PP2_HDR : n);
	}
	CHECK_EQ(fg_proxyv2_parse(buf, (size_t)n, &a), n);
}

UNIT_TEST(payload_after_the_header_is_left_alone)
{
	struct sockaddr_storage s = sa4("10.1.0.2", 1), d = sa4("10.20.0.5", 80);
	struct fg_pp2_addrs a;
	uint8_t buf[256];
	ssize_t n = fg_proxyv2_build(buf, sizeof(buf), (struct sockaddr *)&s, (struct sockaddr *)&d,
				     NULL, NULL, NULL, "router");

	CHECK(n > 0 && n < 200);
	memcpy(buf + n, "GET / HTTP/1.1\r\n\r\n\xE3\x00", 20);
	CHECK_EQ(fg_proxyv2_parse(buf, (size_t)n + 20, &a), n);
	CHECK(strcmp(a.tunnel, "router") == 0);
}

UNIT_TEST(refuses_what_is_not_a_v2_proxy_header)
{
	uint8_t ok[64], buf[64];
	size_t n = v4_with(ok, 80, (const uint8_t *)"", 0);
	static const uint8_t bad_ver_cmd[] = { 0x20, 0x11, 0x31, 0x22, 0x2f, 0x01, 0x00 };
	static const uint8_t bad_fam[] = { 0x00, 0x12, 0x22, 0x31, 0x32, 0x10, 0x20, 0x13, 0x41 };

	CHECK_EQ(parse(ok, n), (ssize_t)n);
	/* each byte of the signature, as soon as it is wrong */
	for (size_t i = 0; i < FG_PP2_SIG_LEN; i++) {
		memcpy(buf, ok, n);
		buf[i] ^= 0x01;
		CHECK_EQ(parse(buf, i + 1), -EPROTO);
		CHECK_EQ(parse(buf, n), -EPROTO);
	}
	CHECK_EQ(parse((const uint8_t *)"PROXY TCP4 ", 11), -EPROTO); /* v1 */
	for (size_t i = 0; i < sizeof(bad_ver_cmd); i++) {
		memcpy(buf, ok, n);
		buf[12] = bad_ver_cmd[i]; /* LOCAL, version 1 or 3, other commands */
		CHECK_EQ(parse(buf, 13), -EPROTO);
		CHECK_EQ(parse(buf, n), -EPROTO);
	}
	for (size_t i = 0; i < sizeof(bad_fam); i++) {
		memcpy(buf, ok, n);
		buf[13] = bad_fam[i]; /* UNSPEC, UDP, UNIX, other transports */
		CHECK_EQ(parse(buf, 14), -EPROTO);
		CHECK_EQ(parse(buf, n), -EPROTO);
	}
}

UNIT_TEST(refuses_bad_lengths)
{
	static uint8_t buf[FG_PP2_MAX + 64], body[FG_PP2_MAX];
	size_t n;

	/* address blocks shorter than the family needs */
	n = raw(buf, FG_PP2_VER_PROXY, FG_PP2_TCP4, body, 11);
	CHECK_EQ(parse(buf, FG_PP2_HDR), -EPROTO);
	CHECK_EQ(parse(buf, n), -EPROTO);
	n = raw(buf, FG_PP2_VER_PROXY, FG_PP2_TCP6, body, 35);
	CHECK_EQ(parse(buf, FG_PP2_HDR), -EPROTO);
	n = raw(buf, FG_PP2_VER_PROXY, FG_PP2_TCP6, body, 12); /* an IPv4 block under TCP6 */
	CHECK_EQ(parse(buf, n), -EPROTO);
	n = raw(buf, FG_PP2_VER_PROXY, FG_PP2_TCP4, body, 0);
	CHECK_EQ(parse(buf, n), -EPROTO);
	/* FG_PP2_MAX in all is the most; one more is refused from the length field on */
	memset(body, 0, sizeof(body));
	body[7] = 5;	 /* dst 0.0.0.5 */
	body[11] = 80;	 /* dst port 80 */
	body[12] = 0x04; /* one PP2_TYPE_NOOP TLV filling the rest */
	body[13] = (uint8_t)((FG_PP2_MAX - FG_PP2_HDR - 15) >> 8);
	body[14] = (uint8_t)(FG_PP2_MAX - FG_PP2_HDR - 15);
	n = raw(buf, FG_PP2_VER_PROXY, FG_PP2_TCP4, body, FG_PP2_MAX - FG_PP2_HDR);
	CHECK_EQ(n, FG_PP2_MAX);
	CHECK_EQ(parse(buf, n), FG_PP2_MAX);
	buf[15]++;
	buf[FG_PP2_MAX] = 0;
	CHECK_EQ(parse(buf, FG_PP2_HDR), -EPROTO);
	CHECK_EQ(parse(buf, FG_PP2_MAX + 1), -EPROTO);
	buf[14] = buf[15] = 0xff;
	CHECK_EQ(parse(buf, FG_PP2_HDR), -EPROTO);
}

UNIT_TEST(refuses_unusable_addresses)
{
	uint8_t buf[128], body[64] = { 0 };
	size_t n;

	n = v4_with(buf, 0, (const uint8_t *)"", 0);
	CHECK_EQ(parse(buf, n), -EPROTO); /* destination port 0 */
	n = v4_with(buf, 1, (const uint8_t *)"", 0);
	CHECK_EQ(parse(buf, n), n);
	memset(buf + FG_PP2_HDR + 4, 0, 4); /* destination 0.0.0.0: this host */
	CHECK_EQ(parse(buf, n), -EPROTO);
	body[33] = 1;  /* src :: port 1 ... */
	body[35] = 80; /* ... dst :: port 80 */
	n = raw(buf, FG_PP2_VER_PROXY, FG_PP2_TCP6, body, 36);
	CHECK_EQ(parse(buf, n), -EPROTO);
	body[31] = 1; /* dst ::1 */
	CHECK_EQ(parse(buf, raw(buf, FG_PP2_VER_PROXY, FG_PP2_TCP6, body, 36)), 52);
	/* an IPv4-mapped source with a true IPv6 destination is no TCP connection */
	body[10] = body[11] = 0xff;
	body[15] = 1;
	CHECK_EQ(parse(buf, raw(buf, FG_PP2_VER_PROXY, FG_PP2_TCP6, body, 36)), -EPROTO);
}

UNIT_TEST(mapped_addresses_in_tcp6_are_given_as_ipv4)
{
	uint8_t buf[128], body[36] = { 0 };
	struct sockaddr_storage s = sa4("10.1.0.2", 1), d = sa4("10.20.0.5", 80);
	struct fg_pp2_addrs a;

	body[10] = body[11] = body[26] = body[27] = 0xff;
	memcpy(body + 12, "\x0a\x01\x00\x02", 4);
	memcpy(body + 28, "\x0a\x14\x00\x05", 4);
	body[33] = 1;
	body[35] = 80;
	CHECK_EQ(fg_proxyv2_parse(buf, raw(buf, FG_PP2_VER_PROXY, FG_PP2_TCP6, body, 36), &a), 52);
	check_same(&a.src, &s);
	check_same(&a.dst, &d);
	CHECK_EQ(a.dst_len, sizeof(struct sockaddr_in));
}

#define TLVS(s) (const uint8_t *)(s), sizeof(s) - 1

UNIT_TEST(tlvs)
{
	struct fg_pp2_addrs a;
	uint8_t buf[256];
	char name[80];
	size_t n;

	/* unknown ones are skipped, before and after the tunnel name */
	n = v4_with(buf, 80, TLVS("\x04\x00\x02zz\xE3\x00\x03r 1\xF0\x00\x00"));
	CHECK_EQ(fg_proxyv2_parse(buf, n, &a), n);
	CHECK(strcmp(a.tunnel, "r 1") == 0);
	n = v4_with(buf, 80, TLVS("\xE3\x00\x00"));
	CHECK_EQ(fg_proxyv2_parse(buf, n, &a), n);
	CHECK(strcmp(a.tunnel, "") == 0);
	/* a TLV running past the end, or a piece of one */
	CHECK_EQ(parse(buf, v4_with(buf, 80, TLVS("\xE3\x00\x04r 1"))), -EPROTO);
	CHECK_EQ(parse(buf, v4_with(buf, 80, TLVS("\x04\x00\x01"))), -EPROTO);
	CHECK_EQ(parse(buf, v4_with(buf, 80, TLVS("\x04\x00"))), -EPROTO);
	CHECK_EQ(parse(buf, v4_with(buf, 80, TLVS("\x04"))), -EPROTO);
	CHECK_EQ(parse(buf, v4_with(buf, 80, TLVS("\xE3\x00\x01r\x04"))), -EPROTO);
	/* a tunnel name that is not printable ASCII, twice, or too long */
	CHECK_EQ(parse(buf, v4_with(buf, 80, TLVS("\xE3\x00\x02r\n"))), -EPROTO);
	CHECK_EQ(parse(buf, v4_with(buf, 80, TLVS("\xE3\x00\x02r\x7f"))), -EPROTO);
	CHECK_EQ(parse(buf, v4_with(buf, 80, TLVS("\xE3\x00\x02r\xc3"))), -EPROTO);
	CHECK_EQ(parse(buf, v4_with(buf, 80, TLVS("\xE3\x00\x02r\x00"))), -EPROTO);
	CHECK_EQ(parse(buf, v4_with(buf, 80, TLVS("\xE3\x00\x01r\xE3\x00\x01r"))), -EPROTO);
	memset(name, 'n', sizeof(name));
	memcpy(name, "\xE3\x00\x3f", 3);
	n = v4_with(buf, 80, (const uint8_t *)name, 3 + FG_PP2_TUNNEL_MAX - 1);
	CHECK_EQ(fg_proxyv2_parse(buf, n, &a), n);
	CHECK_EQ(strlen(a.tunnel), FG_PP2_TUNNEL_MAX - 1);
	name[2] = FG_PP2_TUNNEL_MAX;
	CHECK_EQ(parse(buf, v4_with(buf, 80, (const uint8_t *)name, 3 + FG_PP2_TUNNEL_MAX)),
		 -EPROTO);
}

UNIT_TEST(a_refusal_leaves_nothing_behind)
{
	struct fg_pp2_addrs a;
	uint8_t buf[64];
	size_t n = v4_with(buf, 80, TLVS("\xE3\x00\x01r\x04"));

	memset(&a, 0x5a, sizeof(a));
	CHECK_EQ(fg_proxyv2_parse(buf, n, &a), -EPROTO);
	CHECK_EQ(a.src.ss_family, 0);
	CHECK_EQ(a.dst.ss_family, 0);
	CHECK_EQ(a.need, 0);
	CHECK_EQ(a.tunnel[0], 0);
}

UNIT_MAIN("proxyv2", UNIT_CASE(round_trips),
	  UNIT_CASE(build_without_peer_sends_the_tunnel_name_only),
	  UNIT_CASE(build_refuses_mixed_families), UNIT_CASE(every_incomplete_prefix_asks_for_more),
	  UNIT_CASE(payload_after_the_header_is_left_alone),
	  UNIT_CASE(refuses_what_is_not_a_v2_proxy_header), UNIT_CASE(refuses_bad_lengths),
	  UNIT_CASE(refuses_unusable_addresses),
	  UNIT_CASE(mapped_addresses_in_tcp6_are_given_as_ipv4), UNIT_CASE(tlvs),
	  UNIT_CASE(a_refusal_leaves_nothing_behind))
