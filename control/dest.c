// SPDX-License-Identifier: MIT
/* Transparent mode's destination, found and carried: see dest.h. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "control/capture_bpf.h"
#include "control/dest.h"
#include "control/proxyv2.h"
#include "fedgate/net.h"

/*
 * <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h> define
 * these, but they clash with glibc's <netinet/in.h>; the values are ABI.
 */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

int fg_dest_original(int fd, enum fg_capture how, struct sockaddr_storage *dst)
{
	socklen_t len = sizeof(*dst);
	struct sockaddr_storage self;
	socklen_t self_len = sizeof(self);

	memset(dst, 0, sizeof(*dst));
	if (how == FG_CAPTURE_CGROUP)
		return fg_capbpf_original(fd, dst);
	if (how == FG_CAPTURE_TPROXY) {
		if (getsockname(fd, (struct sockaddr *)dst, &len))
			return -errno;
		fg_sockaddr_unmap(dst);
		return 0;
	}
	if (getsockname(fd, (struct sockaddr *)&self, &self_len))
		return -errno;
	fg_sockaddr_unmap(&self);
	/* An IPv4 (or IPv4-mapped) connection has an IPv4 NAT entry, an IPv6 one an IPv6 entry. */
	if (self.ss_family == AF_INET) {
		len = sizeof(struct sockaddr_in);
		if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, dst, &len))
			return -errno;
	} else {
		len = sizeof(struct sockaddr_in6);
		if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, dst, &len))
			return -errno;
	}
	return 0;
}

int fg_dest_source(int fd, struct sockaddr_storage *src)
{
	socklen_t len = sizeof(*src);

	memset(src, 0, sizeof(*src));
	if (getpeername(fd, (struct sockaddr *)src, &len))
		return -errno;
	fg_sockaddr_unmap(src);
	return 0;
}

ssize_t fg_dest_flight(uint8_t *buf, const struct sockaddr *src, const struct sockaddr *dst,
		       const char *tunnel, int plain_fd, size_t *app_len)
{
	ssize_t hl, n;

	hl = fg_proxyv2_build(buf, FG_PP2_MAX, src, dst, NULL, NULL, NULL, tunnel);
	if (hl < 0)
		return hl;
	n = recv(plain_fd, buf + hl, FG_DEST_FLIGHT_MAX - (size_t)hl, MSG_DONTWAIT);
	if (n < 0 && errno != EAGAIN)
		return -errno;
	*app_len = n > 0 ? (size_t)n : 0;
	return hl + (n > 0 ? n : 0);
}

int fg_dest_read_header(SSL *ssl, uint8_t *buf, size_t *have, struct fg_pp2_addrs *out)
{
	size_t need = 16; /* the fixed part, which holds the length */
	ssize_t got;
	int n, err;

	for (;;) {
		got = fg_proxyv2_parse(buf, *have, out);
		if (got > 0)
			return 0;
		if (got != -EAGAIN)
			return -EPROTO;
		if (*have >= 16)
			need = out->need;
		if (need > FG_PP2_MAX || need <= *have)
			return -EPROTO;
		n = SSL_read(ssl, buf + *have, (int)(need - *have));
		if (n > 0) {
			*have += (size_t)n;
			continue;
		}
		err = SSL_get_error(ssl, n);
		if (err == SSL_ERROR_WANT_READ)
			return -EAGAIN;
		if (err == SSL_ERROR_WANT_WRITE)
			return -EALREADY;
		return -ECONNRESET;
	}
}
