// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for control/proxyv2_parse.c: arbitrary bytes as what a
 * transparent terminate tunnel read first inside TLS, in a buffer of exactly
 * their size (ASan sees a read past it). An accepted header is no longer than
 * the input and as long as its length field says, holds one family with a
 * destination port, is -EAGAIN at every shorter prefix tried, and survives a
 * rebuild by fg_proxyv2_build() (A's header: no peer) and a second parse.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/proxyv2_parse.c"

static void check_rebuild(const struct fg_pp2_addrs *a)
{
	struct fg_pp2_addrs b;
	uint8_t out[FG_PP2_MAX];
	ssize_t n = fg_proxyv2_build(out, sizeof(out), (const struct sockaddr *)&a->src,
				     (const struct sockaddr *)&a->dst, NULL, NULL, NULL, a->tunnel);

	if (n <= FG_PP2_HDR || fg_proxyv2_parse(out, (size_t)n, &b) != n ||
	    b.src_len != a->src_len || b.dst_len != a->dst_len ||
	    memcmp(&b.src, &a->src, a->src_len) || memcmp(&b.dst, &a->dst, a->dst_len) ||
	    strcmp(b.tunnel, a->tunnel))
		abort();
}

static void check_accepted(const uint8_t *buf, size_t size, ssize_t r, const struct fg_pp2_addrs *a)
{
	struct fg_pp2_addrs p;
	int fam = a->src.ss_family;

	if ((size_t)r > size || (size_t)r != FG_PP2_HDR + ((size_t)buf[14] << 8 | buf[15]) ||
	    (size_t)r > FG_PP2_MAX || a->need != (size_t)r)
		abort();
	if ((fam != AF_INET && fam != AF_INET6) || a->dst.ss_family != fam ||
	    a->src_len !=
		(fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) ||
	    a->dst_len != a->src_len || strlen(a->tunnel) >= sizeof(a->tunnel))
		abort();
	if (((const struct sockaddr_in *)&a->dst)->sin_port == 0 && fam == AF_INET)
		abort();
	if (((const struct sockaddr_in6 *)&a->dst)->sin6_port == 0 && fam == AF_INET6)
		abort();
	if (fg_proxyv2_parse(buf, (size_t)r - 1, &p) != -EAGAIN || p.need != (size_t)r ||
	    fg_proxyv2_parse(buf, FG_PP2_HDR, &p) != -EAGAIN || p.need != (size_t)r ||
	    fg_proxyv2_parse(buf, FG_PP2_HDR - 1, &p) != -EAGAIN || p.need != FG_PP2_HDR)
		abort();
	check_rebuild(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fg_pp2_addrs a;
	uint8_t *buf = malloc(size ? size : 1);
	ssize_t r;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	r = fg_proxyv2_parse(buf, size, &a);
	if (r >= 0)
		check_accepted(buf, size, r, &a);
	else if (r == -EAGAIN && (a.need < FG_PP2_HDR || a.need > FG_PP2_MAX ||
				  (size >= FG_PP2_HDR && a.need <= size) ||
				  (size < FG_PP2_HDR && a.need != FG_PP2_HDR)))
		abort();
	else if (r != -EAGAIN && r != -EPROTO)
		abort();
	free(buf);
	return 0;
}
