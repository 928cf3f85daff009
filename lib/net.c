// SPDX-License-Identifier: MIT
/*
 * Prefixes, port ranges and destinations of transparent mode (routes' "to" and
 * "ports", allow rules' "reach"), and the matching of a socket address against
 * them. Numeric only and strict: what does not read one way is refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fedgate/net.h"

/*
 * @n bytes of @s as a decimal number of 1 to 5 digits, no sign, no leading
 * zero (one way to write each value), at most @max. Returns 0 or -EINVAL.
 */
static int parse_uint(const char *s, size_t n, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* 1 if the 16 bytes at @a are an IPv4-mapped IPv6 address (::ffff:a.b.c.d); any alignment. */
static int is_v4mapped(const uint8_t *a)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(a, mapped, sizeof(mapped));
}

/*
 * The address bytes, family and port of @sa as matching sees them: an
 * IPv4-mapped AF_INET6 address is the AF_INET one. Returns the family, or 0
 * for another family (which matches nothing).
 */
static int sa_view(const struct sockaddr *sa, const uint8_t **addr, uint16_t *port_be)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;

		*addr = (const uint8_t *)&s->sin_addr;
		*port_be = s->sin_port;
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)sa;

		*addr = s->sin6_addr.s6_addr;
		*port_be = s->sin6_port;
		if (!is_v4mapped(*addr))
			return AF_INET6;
		*addr += 12;
		return AF_INET;
	}
	return 0;
}

/* 1 if the first @bits bits of @a and @b are equal. */
static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));

	if (memcmp(a, b, whole))
		return 0;
	return !rest || !((a[whole] ^ b[whole]) & mask);
}

/* 1 if no bit of @addr (@len bytes) past the first @bits is set. */
static int host_bits_clear(const uint8_t *addr, size_t len, unsigned bits)
{
	for (size_t i = 0; i < len; i++) {
		unsigned keep = bits > i * 8 ? bits - (unsigned)i * 8 : 0;

		if (keep < 8 && (addr[i] & (0xff >> keep)))
			return 0;
	}
	return 1;
}

int fg_net_parse(const char *text, struct fg_net *net, const char **why)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned max, prefix;
	struct fg_net n = { 0 };

	if (hlen == 0) {
		*why = "empty address";
		return -EINVAL;
	}
	if (hlen >= sizeof(host)) {
		*why = "address too long";
		return -EINVAL;
	}
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	n.family = memchr(host, ':', hlen) ? AF_INET6 : AF_INET;
	if (inet_pton(n.family, host, n.addr) != 1) {
		*why = "not a numeric IPv4 or IPv6 address";
		return -EINVAL;
	}
	max = n.family == AF_INET ? 32 : 128;
	prefix = max;
	if (slash && parse_uint(slash + 1, strlen(slash + 1), max, &prefix)) {
		*why = n.family == AF_INET ? "prefix length must be 0..32"
					   : "prefix length must be 0..128";
		return -EINVAL;
	}
	if (!host_bits_clear(n.addr, max / 8, prefix)) {
		*why = "host bits set past the prefix";
		return -EINVAL;
	}
	/* Matching sees a mapped address as IPv4, so such a prefix would never match. */
	if (n.family == AF_INET6 && prefix >= 96 && is_v4mapped(n.addr)) {
		*why = "IPv4-mapped prefix: write it as IPv4";
		return -EINVAL;
	}
	n.prefix = (uint8_t)prefix;
	*net = n;
	return 0;
}

int fg_port_range_parse(const char *text, struct fg_port_range *r, const char **why)
{
	const char *dash = strchr(text, '-');
	size_t llen = dash ? (size_t)(dash - text) : strlen(text);
	unsigned lo, hi;

	if (parse_uint(text, llen, 65535, &lo) || lo == 0) {
		*why = "port must be 1..65535";
		return -EINVAL;
	}
	hi = lo;
	if (dash && (parse_uint(dash + 1, strlen(dash + 1), 65535, &hi) || hi == 0)) {
		*why = "port must be 1..65535";
		return -EINVAL;
	}
	if (lo > hi) {
		*why = "port range runs backwards (lo > hi)";
		return -EINVAL;
	}
	r->lo = (uint16_t)lo;
	r->hi = (uint16_t)hi;
	return 0;
}

/* @n bytes of @s into @buf as a C string; -EINVAL when it does not fit. */
static int copy_part(char *buf, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}


int fg_dest_parse(const char *text, struct fg_dest *d, const char **why)
{
	struct fg_dest out = { .ports = { 1, 65535 } };
	char net[INET6_ADDRSTRLEN + 4]; /* "address/128" */
	const char *start = text, *ports = NULL, *colon = strchr(text, ':'), *rb;
	int bracketed = text[0] == '[';
	size_t nlen;

	if (bracketed) {
		rb = strchr(text, ']');
		if (!rb || (rb[1] && rb[1] != ':')) {
			*why = "expected \"[ipv6]\" or \"[ipv6/len]\", then \":ports\" or nothing";
			return -EINVAL;
		}
		start = text + 1;
		nlen = (size_t)(rb - start);
		ports = rb[1] ? rb + 2 : NULL;
	} else if (colon && strchr(colon + 1, ':')) {
		/* Bare IPv6: "fd20::5:80" might mean a port, so only "v6/len" reads one way. */
		const char *slash = strchr(text, '/');

		if (!slash || strchr(slash, ':')) {
			*why = "IPv6 needs brackets (\"[ipv6]:ports\") unless it is \"ipv6/len\"";
			return -EINVAL;
		}
		nlen = strlen(text);
	} else {
		nlen = colon ? (size_t)(colon - text) : strlen(text);
		ports = colon ? colon + 1 : NULL;
	}
	if (copy_part(net, sizeof(net), start, nlen)) {
		*why = "address too long";
		return -EINVAL;
	}
	if (fg_net_parse(net, &out.net, why))
		return -EINVAL;
	if (bracketed && out.net.family != AF_INET6) {
		*why = "brackets are for IPv6 only";
		return -EINVAL;
	}
	if (ports && fg_port_range_parse(ports, &out.ports, why))
		return -EINVAL;
	*d = out;
	return 0;
}

int fg_net_contains(const struct fg_net *net, const struct sockaddr *sa)
{
	const uint8_t *addr;
	uint16_t port;
	int family = sa_view(sa, &addr, &port);

	if (!family || family != net->family || net->prefix > (family == AF_INET ? 32 : 128))
		return 0;
	return prefix_equal(addr, net->addr, net->prefix);
}

int fg_port_in(const struct fg_port_range *r, const struct sockaddr *sa)
{
	const uint8_t *addr;
	uint16_t port;

	if (!sa_view(sa, &addr, &port))
		return 0;
	return ntohs(port) >= r->lo && ntohs(port) <= r->hi;
}

socklen_t fg_sockaddr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

void fg_sockaddr_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	const uint8_t *addr;
	uint16_t port;

	if (ss->ss_family != AF_INET6 || sa_view((struct sockaddr *)ss, &addr, &port) != AF_INET)
		return;
	sin.sin_port = port;
	memcpy(&sin.sin_addr, addr, 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &sin, sizeof(sin));
}

void fg_net_text(const struct fg_net *net, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if ((net->family != AF_INET && net->family != AF_INET6) ||
	    !inet_ntop(net->family, net->addr, host, sizeof(host)))
		snprintf(out, len, "?");
	else
		snprintf(out, len, "%s/%u", host, net->prefix);
}
