/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_HANDOFF_H
#define FEDGATE_HANDOFF_H

#include <stddef.h>
#include <sys/socket.h>
#include "fedgate/handoff-t.h"

#define FG_HANDOFF_CMSG_SPACE CMSG_SPACE(2 * sizeof(int))

/* Sends @h with the two sockets over @sock (SOCK_SEQPACKET). Returns 0 or -errno. */
int fg_handoff_send(int sock, const struct fg_handoff *h, int plain_fd, int tls_fd);

/*
 * Checks the @len bytes of a received message in @h, with no I/O: the magic,
 * the lengths, a cipher fedgate carries, and NUL-terminated tunnel and peer.
 * @h must hold min(@len, sizeof(*@h)) readable bytes; nothing past @len is
 * read. Returns 0, or -EPROTO.
 */
int fg_handoff_check(const struct fg_handoff *h, size_t len);

/*
 * Checks a received message of @len bytes in @h with control data in @msg.
 * On success returns 0 with fds[0] = plain, fds[1] = TLS (now owned by the
 * caller). Returns -EPROTO for a malformed message; any fds that came with it
 * are closed.
 */
int fg_handoff_parse(const struct msghdr *msg, size_t len, const struct fg_handoff *h,
		     int fds[2]);

#endif
