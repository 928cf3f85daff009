// SPDX-License-Identifier: MIT
/*
 * The PROXY v2 header (haproxy's proxy-protocol.txt, section 2.2) a
 * transparent terminate tunnel reads first inside TLS: who the application is
 * and where it wanted to go. Pure; what a tunnel cannot act on is refused.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "control/proxyv2.h"
#include "fedgate/net.h"

/* 1 if @ss is 0.0.0.0 or ::, which connect() takes for this host. */
static int unspecified(const struct sockaddr_storage *ss)
{
	static const uint8_t zero[16];

	if (ss->ss_family == AF_INET)
		return !memcmp(&((const struct sockaddr_in *)ss)->sin_addr, zero, 4);
	return !memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, zero, 16);
}

/* @alen bytes of address (4 or 16) then the port at @port, into @ss. */
static void put_sa(struct sockaddr_storage *ss, const uint8_t *addr, size_t alen,
		   const uint8_t *port)
{
	memset(ss, 0, sizeof(*ss));
	if (alen == 4) {
		struct sockaddr_in *s = (void *)ss;

		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, addr, 4);
		memcpy(&s->sin_port, port, 2);
	} else {
		struct sockaddr_in6 *s = (void *)ss;

		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, addr, 16);
		memcpy(&s->sin6_port, port, 2);
	}
	fg_sockaddr_unmap(ss);
}

/*
 * The address block at @p (@alen bytes per address: 4 or 16). A destination
 * needs a port and an address to dial; both ends are one family once mapped
 * addresses are IPv4. Returns 0 or -EPROTO.
 */
static int read_addrs(const uint8_t *p, size_t alen, struct fg_pp2_addrs *out)
{
	const uint8_t *ports = p + 2 * alen;

	put_sa(&out->src, p, alen, ports);
	put_sa(&out->dst, p + alen, alen, ports + 2);
	out->src_len = fg_sockaddr_len(&out->src);
	out->dst_len = fg_sockaddr_len(&out->dst);
	if ((ports[2] == 0 && ports[3] == 0) || out->src.ss_family != out->dst.ss_family ||
	    unspecified(&out->dst))
		return -EPROTO;
	return 0;
}

/* 1 if the @n bytes at @s are printable ASCII. */
static int printable(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/*
 * The TLVs in the @n bytes at @p: each whole, at most one tunnel name
 * (printable, shorter than FG_PP2_TUNNEL_MAX), the others skipped.
 * Returns 0 or -EPROTO.
 */
static int read_tlvs(const uint8_t *p, size_t n, struct fg_pp2_addrs *out)
{
	int seen_tunnel = 0;

	while (n) {
		size_t vlen;

		if (n < 3)
			return -EPROTO;
		vlen = (size_t)p[1] << 8 | p[2];
		if (vlen > n - 3)
			return -EPROTO;
		if (p[0] == FG_PP2_TYPE_FG_TUNNEL) {
			if (seen_tunnel || vlen >= sizeof(out->tunnel) || !printable(p + 3, vlen))
				return -EPROTO;
			memcpy(out->tunnel, p + 3, vlen);
			out->tunnel[vlen] = '\0';
			seen_tunnel = 1;
		}
		p += 3 + vlen;
		n -= 3 + vlen;
	}
	return 0;
}

/*
 * What the first FG_PP2_HDR bytes (@len of them so far) allow: -EPROTO as
 * soon as a byte is wrong, else the whole header's length once the length
 * field is in, else 0.
 */
static ssize_t read_head(const uint8_t *buf, size_t len, size_t *alen)
{
	size_t total;

	if (memcmp(buf, FG_PP2_SIG, len < FG_PP2_SIG_LEN ? len : FG_PP2_SIG_LEN))
		return -EPROTO;
	if (len > 12 && buf[12] != FG_PP2_VER_PROXY) /* LOCAL has no destination */
		return -EPROTO;
	if (len > 13 && buf[13] != FG_PP2_TCP4 && buf[13] != FG_PP2_TCP6)
		return -EPROTO;
	if (len < FG_PP2_HDR)
		return 0;
	*alen = buf[13] == FG_PP2_TCP4 ? 4 : 16;
	total = FG_PP2_HDR + ((size_t)buf[14] << 8 | buf[15]);
	if (total > FG_PP2_MAX || total - FG_PP2_HDR < 2 * *alen + 4)
		return -EPROTO;
	return (ssize_t)total;
}

ssize_t fg_proxyv2_parse(const uint8_t *buf, size_t len, struct fg_pp2_addrs *out)
{
	size_t alen = 0;
	ssize_t total = len ? read_head(buf, len, &alen) : 0;

	memset(out, 0, sizeof(*out));
	if (total < 0)
		return -EPROTO;
	out->need = total ? (size_t)total : FG_PP2_HDR;
	if (!total || len < (size_t)total)
		return -EAGAIN;
	if (read_addrs(buf + FG_PP2_HDR, alen, out) ||
	    read_tlvs(buf + FG_PP2_HDR + 2 * alen + 4, (size_t)total - FG_PP2_HDR - 2 * alen - 4,
		      out)) {
		memset(out, 0, sizeof(*out));
		return -EPROTO;
	}
	return total;
}
