/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_PROXYV2_H
#define FEDGATE_PROXYV2_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <stdint.h>
#include "control/peer-t.h"
#include "control/proxyv2-t.h"

/*
 * Builds a PROXY v2 "PROXY" header for a TCP connection from @src to @dst
 * (same family, IPv4 or IPv6; an IPv4-mapped address counts as IPv4, and when
 * both are IPv4 the header says TCP over IPv4) with the verified client's
 * identity (@peer, @sni, @cipher) and @tunnel's name. @peer NULL: the header
 * gateway A sends gateway B inside TLS, the addresses and the tunnel name only
 * (@sni and @cipher are not used). @sni, @cipher and @tunnel may be NULL.
 * Returns the header length, or -ENOBUFS / -EAFNOSUPPORT.
 */
ssize_t fg_proxyv2_build(uint8_t *buf, size_t cap, const struct sockaddr *src,
			 const struct sockaddr *dst, const struct fg_peer_id *peer,
			 const char *sni, const char *cipher, const char *tunnel);

/*
 * Reads the PROXY v2 header at the start of @buf (@len bytes so far), as a
 * transparent terminate tunnel receives it: command PROXY over TCP4 or TCP6,
 * a destination port, at most FG_PP2_MAX bytes, well-formed TLVs. Pure.
 * Returns the header's length (what follows it is payload) with @out filled;
 * -EAGAIN when @buf is a valid but incomplete start (@out->need then says how
 * many bytes the header takes: FG_PP2_HDR until those are in); -EPROTO for
 * anything else.
 */
ssize_t fg_proxyv2_parse(const uint8_t *buf, size_t len, struct fg_pp2_addrs *out);

#endif
