// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for lib/net.c: the input, as a C string, goes to each of the
 * three parsers. What parses keeps the types' promises (family, prefix in
 * range with no host bit, 1 <= lo <= hi), prints to a text that parses back to
 * the same prefix, and contains its own network address, in the same family
 * only (IPv4-mapped counting as IPv4).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/net.c"

/* @net's network address at @port, as AF_INET or AF_INET6, and IPv4-mapped (IPv6: the same). */
static void net_sockaddrs(const struct fg_net *net, uint16_t port, struct sockaddr_storage *plain,
			  struct sockaddr_storage *mapped)
{
	struct sockaddr_in *s4 = (void *)plain;
	struct sockaddr_in6 *s6 = (void *)plain, *m6 = (void *)mapped;

	memset(plain, 0, sizeof(*plain));
	memset(mapped, 0, sizeof(*mapped));
	if (net->family == AF_INET) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, net->addr, 4);
		m6->sin6_family = AF_INET6;
		m6->sin6_port = htons(port);
		m6->sin6_addr.s6_addr[10] = m6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&m6->sin6_addr.s6_addr[12], net->addr, 4);
	} else {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, net->addr, 16);
		*mapped = *plain;
	}
}

static void check_net(const struct fg_net *net)
{
	struct sockaddr_storage plain, mapped, v4 = { .ss_family = AF_INET };
	unsigned max = net->family == AF_INET ? 32 : 128;
	char text[64], again_text[64];
	struct fg_net again;
	const char *why = NULL;

	if ((net->family != AF_INET && net->family != AF_INET6) || net->prefix > max ||
	    !host_bits_clear(net->addr, max / 8, net->prefix))
		abort();
	if (net->family == AF_INET && memcmp(net->addr + 4, "\0\0\0\0\0\0\0\0\0\0\0\0", 12))
		abort();
	fg_net_text(net, text, sizeof(text));
	if (strlen(text) >= sizeof(text) - 1 || fg_net_parse(text, &again, &why) ||
	    again.family != net->family || again.prefix != net->prefix ||
	    memcmp(again.addr, net->addr, sizeof(again.addr)))
		abort();
	fg_net_text(&again, again_text, sizeof(again_text));
	if (strcmp(text, again_text))
		abort();
	net_sockaddrs(net, 1, &plain, &mapped);
	if (fg_net_contains(net, (struct sockaddr *)&plain) != 1 ||
	    fg_net_contains(net, (struct sockaddr *)&mapped) != 1)
		abort();
	/* never across families: 0.0.0.0 as AF_INET is outside any IPv6 prefix */
	if (net->family == AF_INET6 && fg_net_contains(net, (struct sockaddr *)&v4))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage plain, mapped;
	struct fg_port_range r;
	struct fg_dest d;
	struct fg_net n;
	const char *why;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	why = NULL;
	if (!fg_net_parse(s, &n, &why))
		check_net(&n);
	else if (!why)
		abort();
	why = NULL;
	if (!fg_port_range_parse(s, &r, &why)) {
		if (r.lo < 1 || r.lo > r.hi)
			abort();
	} else if (!why) {
		abort();
	}
	why = NULL;
	if (!fg_dest_parse(s, &d, &why)) {
		check_net(&d.net);
		if (d.ports.lo < 1 || d.ports.lo > d.ports.hi)
			abort();
		net_sockaddrs(&d.net, d.ports.hi, &plain, &mapped);
		if (!fg_port_in(&d.ports, (struct sockaddr *)&plain))
			abort();
		net_sockaddrs(&d.net, d.ports.lo - 1, &plain, &mapped);
		if (fg_port_in(&d.ports, (struct sockaddr *)&plain))
			abort();
	} else if (!why) {
		abort();
	}
	free(s);
	return 0;
}
