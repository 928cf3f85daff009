/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_SOCK_H
#define FEDGATE_SOCK_H

/* The control process's TCP sockets: dialing without blocking, and closing with a reset. */
#include <stdint.h>
#include <sys/socket.h>
#include "fedgate/addr-t.h"

/*
 * Starts a non-blocking connect to @to (@len bytes) with TCP_NODELAY and, if
 * @mark is not 0, SO_MARK @mark (so fedgate's capture rules never catch
 * fedgate's own connections). Returns 0 with the socket in *@fd_out (the
 * connect may be in progress: wait for EPOLLOUT, then fg_sock_dial_result), or
 * -errno. A mark that cannot be set (no CAP_NET_ADMIN) fails the dial: an
 * unmarked socket could loop through the capture rules.
 */
int fg_sock_dial(const struct sockaddr *to, socklen_t len, uint32_t mark, int *fd_out);

/* fg_sock_dial, with @before(fd, @arg) run just before the connect (its error fails the dial). */
int fg_sock_dial_with(const struct sockaddr *to, socklen_t len, uint32_t mark,
		      int (*before)(int fd, void *arg), void *arg, int *fd_out);

/*
 * Whether @fd is a listening TCP socket bound to @at's address and port (any
 * port when @at's is 0): a socket a predecessor handed over (takeover.h) is
 * used only for the listener the config still names. 1 or 0.
 */
int fg_sock_listening_at(int fd, const struct fg_addr *at);

/* How the connect on @fd ended, once it is writable: 0 or -errno. */
int fg_sock_dial_result(int fd);

/*
 * Closes @fd so that its peer sees a connection reset, not a clean end: what a
 * refused or broken stream must look like to an application. Accepts -1.
 */
void fg_sock_close_reset(int fd);

#endif
