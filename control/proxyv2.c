// SPDX-License-Identifier: MIT
/* PROXY protocol v2 header (haproxy's proxy-protocol.txt, section 2.2) for the upstream. */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "control/proxyv2.h"

static const uint8_t pp2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				     0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

struct pp2_buf {
	uint8_t *p;
	size_t len, cap;
	int overflow;
};

static void put(struct pp2_buf *b, const void *data, size_t n)
{
	if (b->overflow || b->cap - b->len < n) {
		b->overflow = 1;
		return;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void put_tlv(struct pp2_buf *b, uint8_t type, const void *v, size_t n)
{
	uint8_t hdr[3] = { type, (uint8_t)(n >> 8), (uint8_t)n };

	if (n > 0xffff) {
		b->overflow = 1;
		return;
	}
	put(b, hdr, 3);
	put(b, v, n);
}

static void put_str_tlv(struct pp2_buf *b, uint8_t type, const char *s)
{
	if (s && s[0])
		put_tlv(b, type, s, strlen(s));
}

ssize_t fg_proxyv2_build(uint8_t *buf, size_t cap, const struct sockaddr *src,
			 const struct sockaddr *dst, const struct fg_peer_id *peer,
			 const char *sni, const char *cipher, const char *tunnel)
{
	struct pp2_buf b = { .p = buf, .cap = cap };
	size_t ssl_start, body_start;
	uint8_t fam, ssl_head[4] = { 0 };

	if (src->sa_family != dst->sa_family)
		return -EAFNOSUPPORT;
	put(&b, pp2_sig, sizeof(pp2_sig));
	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;

		fam = 0x11;
		put(&b, "\x21", 1);
		put(&b, &fam, 1);
		put(&b, "\0\0", 2); /* length, filled in below */
		body_start = b.len;
		put(&b, &s->sin_addr, 4);
		put(&b, &d->sin_addr, 4);
		put(&b, &s->sin_port, 2);
		put(&b, &d->sin_port, 2);
	} else if (src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;

		fam = 0x21;
		put(&b, "\x21", 1);
		put(&b, &fam, 1);
		put(&b, "\0\0", 2);
		body_start = b.len;
		put(&b, &s->sin6_addr, 16);
		put(&b, &d->sin6_addr, 16);
		put(&b, &s->sin6_port, 2);
		put(&b, &d->sin6_port, 2);
	} else {
		return -EAFNOSUPPORT;
	}

	put_str_tlv(&b, FG_PP2_TYPE_AUTHORITY, sni);
	/* PP2_TYPE_SSL: client flags, verify (0 = verified), then sub-TLVs. */
	ssl_start = b.len;
	put(&b, "\x20\0\0", 3);
	ssl_head[0] = FG_PP2_CLIENT_SSL | FG_PP2_CLIENT_CERT_CONN | FG_PP2_CLIENT_CERT_SESS;
	put(&b, ssl_head, 1);
	put(&b, "\0\0\0\0", 4);
	put_str_tlv(&b, FG_PP2_SUBTYPE_SSL_VERSION, "TLSv1.3");
	put_str_tlv(&b, FG_PP2_SUBTYPE_SSL_CN, peer->cn);
	put_str_tlv(&b, FG_PP2_SUBTYPE_SSL_CIPHER, cipher);
	if (!b.overflow) {
		size_t n = b.len - ssl_start - 3;

		buf[ssl_start + 1] = (uint8_t)(n >> 8);
		buf[ssl_start + 2] = (uint8_t)n;
	}
	for (size_t i = 0; i < peer->n_dns; i++)
		put_str_tlv(&b, FG_PP2_TYPE_FG_SAN_DNS, peer->dns[i]);
	for (size_t i = 0; i < peer->n_uri; i++)
		put_str_tlv(&b, FG_PP2_TYPE_FG_SAN_URI, peer->uri[i]);
	put_str_tlv(&b, FG_PP2_TYPE_FG_ROOT_CN, peer->root_cn);
	put_str_tlv(&b, FG_PP2_TYPE_FG_TUNNEL, tunnel);
	if (b.overflow || b.len - body_start > 0xffff)
		return -ENOBUFS;
	buf[14] = (uint8_t)((b.len - body_start) >> 8);
	buf[15] = (uint8_t)(b.len - body_start);
	return (ssize_t)b.len;
}
