/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_HANDOFF_H
#define FEDGATE_HANDOFF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "fedgate/handoff-t.h"

#define FG_HANDOFF_CMSG_SPACE CMSG_SPACE(2 * sizeof(int))

/*
 * Sends @h with the two sockets over @sock (SOCK_SEQPACKET), never waiting:
 * returns 0, -EAGAIN when the socket has no room now, or another -errno.
 */
int fg_handoff_send(int sock, const struct fg_handoff *h, int plain_fd, int tls_fd);

/* Sends one fixed-size message of @len bytes (an ack, a drain) without waiting. 0 or -errno. */
int fg_handoff_send_small(int sock, const void *msg, size_t len);

/*
 * Checks the @len bytes of a received message in @h, with no I/O: the magic,
 * the lengths, a cipher fedgate carries, and NUL-terminated tunnel and peer.
 * @h must hold min(@len, sizeof(*@h)) readable bytes; nothing past @len is
 * read. Returns 0, or -EPROTO.
 */
int fg_handoff_check(const struct fg_handoff *h, size_t len);

/*
 * The id of a received handoff whose bytes are a header at least (with or
 * without its fds), so that even a refused one can be answered; 0 when the
 * bytes are not a handoff. Pure.
 */
uint32_t fg_handoff_id(const struct fg_handoff *h, size_t len);

/* @len bytes in @buf as an ack: 0 with *@ack filled, or -EPROTO. Pure. */
int fg_handoff_ack_check(const void *buf, size_t len, struct fg_handoff_ack *ack);

/*
 * @len bytes in @buf as a close report or a bytes tally (@c->magic says
 * which): 0 with *@c filled (its first @c->n tallies, each id nonzero), or
 * -EPROTO. Pure.
 */
int fg_handoff_closed_check(const void *buf, size_t len, struct fg_handoff_closed *c);

/* @len bytes in @buf as a drain request: 0 with *@d filled, or -EPROTO. Pure. */
int fg_handoff_drain_check(const void *buf, size_t len, struct fg_handoff_drain *d);

/* @len bytes in @buf as a revocation: 0 with *@r filled (id nonzero), or -EPROTO. Pure. */
int fg_handoff_revoke_check(const void *buf, size_t len, struct fg_handoff_revoke *r);

/*
 * Checks a received message of @len bytes in @h with control data in @msg.
 * On success returns 0 with fds[0] = plain, fds[1] = TLS (now owned by the
 * caller). Returns -EMFILE when the kernel could not pass the fds
 * (MSG_CTRUNC: the receiver is out of file descriptors, or its control buffer
 * too small), -EPROTO for any other malformed message; any fds that came with
 * it are closed.
 */
int fg_handoff_parse(const struct msghdr *msg, size_t len, const struct fg_handoff *h,
		     int fds[2]);

#endif
