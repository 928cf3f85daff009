// SPDX-License-Identifier: MIT
/* The control process's TCP sockets: see sock.h. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/sock.h"

int fg_sock_dial(const struct sockaddr *to, socklen_t len, uint32_t mark, int *fd_out)
{
	return fg_sock_dial_with(to, len, mark, NULL, NULL, fd_out);
}

int fg_sock_dial_with(const struct sockaddr *to, socklen_t len, uint32_t mark,
		      int (*before)(int fd, void *arg), void *arg, int *fd_out)
{
	int fd, one = 1, ret;

	fd = socket(to->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark))) {
		ret = -errno;
		goto close_fd;
	}
	if (before) {
		ret = before(fd, arg);
		if (ret)
			goto close_fd;
	}
	if (connect(fd, to, len) && errno != EINPROGRESS) {
		ret = -errno;
		goto close_fd;
	}
	*fd_out = fd;
	return 0;

close_fd:
	close(fd);
	return ret;
}

int fg_sock_dial_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return -errno;
	return -err;
}

void fg_sock_close_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (fd < 0)
		return;
	/* Linger 0: close() sends RST and drops what is queued, in either direction. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

int fg_sock_listening_at(int fd, const struct fg_addr *at)
{
	const struct sockaddr_in *a4 = (const void *)&at->sa, *b4;
	const struct sockaddr_in6 *a6 = (const void *)&at->sa, *b6;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss), il = sizeof(int);
	int on = 0, type = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &il) || !on ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &il) || type != SOCK_STREAM ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) || ss.ss_family != at->sa.ss_family)
		return 0;
	b4 = (const void *)&ss;
	b6 = (const void *)&ss;
	if (ss.ss_family == AF_INET)
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr &&
		       (!a4->sin_port || a4->sin_port == b4->sin_port);
	if (ss.ss_family == AF_INET6)
		return !memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) &&
		       (!a6->sin6_port || a6->sin6_port == b6->sin6_port);
	return 0;
}
