/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_PROXYV2_T_H
#define FEDGATE_PROXYV2_T_H

#include <stddef.h>
#include <sys/socket.h>

/* PROXY protocol v2 TLV types (the standard ones, then fedgate's custom range). */
#define FG_PP2_TYPE_AUTHORITY 0x02
#define FG_PP2_TYPE_SSL 0x20
#define FG_PP2_SUBTYPE_SSL_VERSION 0x21
#define FG_PP2_SUBTYPE_SSL_CN 0x22
#define FG_PP2_SUBTYPE_SSL_CIPHER 0x23
#define FG_PP2_CLIENT_SSL 0x01
#define FG_PP2_CLIENT_CERT_CONN 0x02
#define FG_PP2_CLIENT_CERT_SESS 0x04
#define FG_PP2_TYPE_FG_SAN_DNS 0xE0 /* one TLV per DNS SAN of the client cert */
#define FG_PP2_TYPE_FG_SAN_URI 0xE1 /* one TLV per URI SAN */
#define FG_PP2_TYPE_FG_ROOT_CN 0xE2 /* CN of the root the client cert chains to */
#define FG_PP2_TYPE_FG_TUNNEL 0xE3  /* name of the fedgate tunnel */

/* The first 12 bytes of every v2 header. */
#define FG_PP2_SIG "\r\n\r\n\0\r\nQUIT\n"
#define FG_PP2_SIG_LEN 12
#define FG_PP2_VER_PROXY 0x21 /* version 2, command PROXY */
#define FG_PP2_TCP4 0x11
#define FG_PP2_TCP6 0x21

#define FG_PP2_HDR 16	/* signature, version/command, family, length */
#define FG_PP2_MAX 4096 /* the most a header may take, FG_PP2_HDR included */
#define FG_PP2_TUNNEL_MAX 64

/*
 * What a received PROXY v2 header says (fg_proxyv2_parse()). @src is the
 * application's address, @dst the destination it dialed: AF_INET or AF_INET6
 * (an IPv4-mapped address is given as AF_INET), ports in network order, their
 * lengths in @src_len and @dst_len. @need is how many bytes the whole header
 * takes, once at least FG_PP2_HDR of them are known. @tunnel is the
 * FG_PP2_TYPE_FG_TUNNEL value (the sender's tunnel name), empty when absent.
 */
struct fg_pp2_addrs {
	struct sockaddr_storage src, dst;
	socklen_t src_len, dst_len;
	size_t need;
	char tunnel[FG_PP2_TUNNEL_MAX];
};

#endif
