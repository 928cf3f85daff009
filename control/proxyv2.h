/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_PROXYV2_H
#define FEDGATE_PROXYV2_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "control/peer-t.h"

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

#define FG_PP2_MAX 4096

/*
 * Builds a PROXY v2 "PROXY" header for a TCP connection from @src to @dst
 * (same family, IPv4 or IPv6) with the verified client's identity.
 * @sni may be NULL. Returns the header length, or -ENOBUFS / -EAFNOSUPPORT.
 */
ssize_t fg_proxyv2_build(uint8_t *buf, size_t cap, const struct sockaddr *src,
			 const struct sockaddr *dst, const struct fg_peer_id *peer,
			 const char *sni, const char *cipher, const char *tunnel);

#endif
