// SPDX-License-Identifier: MIT
/* PROXY protocol v2 header (haproxy's proxy-protocol.txt, section 2.2) for the upstream. */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "control/proxyv2.h"
#include "fedgate/net.h"

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

/* The verified client's identity: AUTHORITY, SSL with its sub-TLVs, SANs, root CN. */
static void put_identity(struct pp2_buf *b, const struct fg_peer_id *peer, const char *sni,
			 const char *cipher)
{
	uint8_t ssl_head[4] = { 0 };
	size_t ssl_start;

	put_str_tlv(b, FG_PP2_TYPE_AUTHORITY, sni);
	/* PP2_TYPE_SSL: client flags, verify (0 = verified), then sub-TLVs. */
	ssl_start = b->len;
	put(b, "\x20\0\0", 3);
	ssl_head[0] = FG_PP2_CLIENT_SSL | FG_PP2_CLIENT_CERT_CONN | FG_PP2_CLIENT_CERT_SESS;
	put(b, ssl_head, 1);
	put(b, "\0\0\0\0", 4);
	put_str_tlv(b, FG_PP2_SUBTYPE_SSL_VERSION, "TLSv1.3");
	put_str_tlv(b, FG_PP2_SUBTYPE_SSL_CN, peer->cn);
	put_str_tlv(b, FG_PP2_SUBTYPE_SSL_CIPHER, cipher);
	if (!b->overflow) {
		size_t n = b->len - ssl_start - 3;

		b->p[ssl_start + 1] = (uint8_t)(n >> 8);
		b->p[ssl_start + 2] = (uint8_t)n;
	}
	for (size_t i = 0; i < peer->n_dns; i++)
		put_str_tlv(b, FG_PP2_TYPE_FG_SAN_DNS, peer->dns[i]);
	for (size_t i = 0; i < peer->n_uri; i++)
		put_str_tlv(b, FG_PP2_TYPE_FG_SAN_URI, peer->uri[i]);
	put_str_tlv(b, FG_PP2_TYPE_FG_ROOT_CN, peer->root_cn);
}

/* @sa into @ss with an IPv4-mapped address made IPv4; -EAFNOSUPPORT for another family. */
static int copy_unmapped(struct sockaddr_storage *ss, const struct sockaddr *sa)
{
	memset(ss, 0, sizeof(*ss));
	if (sa->sa_family == AF_INET)
		memcpy(ss, sa, sizeof(struct sockaddr_in));
	else if (sa->sa_family == AF_INET6)
		memcpy(ss, sa, sizeof(struct sockaddr_in6));
	else
		return -EAFNOSUPPORT;
	fg_sockaddr_unmap(ss);
	return 0;
}

/* Where @ss (AF_INET or AF_INET6) keeps its address and port; returns the address's size. */
static size_t sa_parts(const struct sockaddr_storage *ss, const void **addr, const void **port)
{
	const struct sockaddr_in6 *s6 = (const void *)ss;
	const struct sockaddr_in *s4 = (const void *)ss;

	if (ss->ss_family == AF_INET) {
		*addr = &s4->sin_addr;
		*port = &s4->sin_port;
		return 4;
	}
	*addr = &s6->sin6_addr;
	*port = &s6->sin6_port;
	return 16;
}

ssize_t fg_proxyv2_build(uint8_t *buf, size_t cap, const struct sockaddr *src,
			 const struct sockaddr *dst, const struct fg_peer_id *peer,
			 const char *sni, const char *cipher, const char *tunnel)
{
	struct pp2_buf b = { .p = buf, .cap = cap };
	struct sockaddr_storage s, d;
	const void *s_addr, *s_port, *d_addr, *d_port;
	uint8_t head[4] = { FG_PP2_VER_PROXY, FG_PP2_TCP4 }; /* length filled in below */
	size_t alen, body_start;

	if (copy_unmapped(&s, src) || copy_unmapped(&d, dst) || s.ss_family != d.ss_family)
		return -EAFNOSUPPORT;
	alen = sa_parts(&s, &s_addr, &s_port);
	sa_parts(&d, &d_addr, &d_port);
	if (alen == 16)
		head[1] = FG_PP2_TCP6;
	put(&b, FG_PP2_SIG, FG_PP2_SIG_LEN);
	put(&b, head, 4);
	body_start = b.len;
	put(&b, s_addr, alen);
	put(&b, d_addr, alen);
	put(&b, s_port, 2);
	put(&b, d_port, 2);
	if (peer)
		put_identity(&b, peer, sni, cipher);
	put_str_tlv(&b, FG_PP2_TYPE_FG_TUNNEL, tunnel);
	if (b.overflow || b.len - body_start > 0xffff)
		return -ENOBUFS;
	buf[14] = (uint8_t)((b.len - body_start) >> 8);
	buf[15] = (uint8_t)(b.len - body_start);
	return (ssize_t)b.len;
}
