/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_DEST_H
#define FEDGATE_DEST_H

/*
 * Transparent mode's destination: where a captured connection was going (A),
 * and carrying it to the far gateway as a PROXY v2 header, the first bytes
 * inside TLS (A writes it, B reads it).
 */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <openssl/ssl.h>
#include "control/config-t.h"
#include "control/proxyv2-t.h"

/* What one record holds: the header and the application's first bytes leave together. */
#define FG_DEST_FLIGHT_MAX 16384

/*
 * Where the connection accepted as @fd was going: getsockname() under TPROXY
 * (the socket took the destination's address), SO_ORIGINAL_DST (or
 * IP6T_SO_ORIGINAL_DST) under REDIRECT, the cgroup capture programs' map
 * under "cgroup" (taken out: asked once per connection). IPv4-mapped
 * addresses come back as AF_INET. Returns 0, or -errno (-ENOENT: REDIRECT
 * found no NAT entry, or the cgroup programs none: the connection was not
 * captured).
 */
int fg_dest_original(int fd, enum fg_capture how, struct sockaddr_storage *dst);

/* The application's address on @fd (getpeername), IPv4-mapped as AF_INET. 0 or -errno. */
int fg_dest_source(int fd, struct sockaddr_storage *src);

/*
 * Fills @buf (FG_DEST_FLIGHT_MAX bytes) with what A writes first: the PROXY v2
 * header for @src -> @dst with @tunnel's name, then what the application had
 * already sent on @plain_fd (read without waiting; none is fine), counted in
 * *@app_len. Returns the whole length, or -errno.
 */
ssize_t fg_dest_flight(uint8_t *buf, const struct sockaddr *src, const struct sockaddr *dst,
		       const char *tunnel, int plain_fd, size_t *app_len);

/*
 * B: reads the header from @ssl into @buf (FG_PP2_MAX bytes or more), *@have bytes of
 * it so far, never past its end: what follows stays in OpenSSL, for the
 * handoff. Returns 0 with @out filled; -EAGAIN (OpenSSL wants to read) or
 * -EALREADY (it wants to write): call again when ready; -EPROTO: not a
 * header a transparent tunnel takes; -ECONNRESET: the peer closed first.
 */
int fg_dest_read_header(SSL *ssl, uint8_t *buf, size_t *have, struct fg_pp2_addrs *out);

#endif
