// SPDX-License-Identifier: MIT
/*
 * The control process hands established tunnels to the data plane: the socket
 * side, with the two fds (the message's bytes: handoff_check.c).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "fedgate/handoff.h"

int fg_handoff_send(int sock, const struct fg_handoff *h, int plain_fd, int tls_fd)
{
	union {
		char buf[FG_HANDOFF_CMSG_SPACE];
		struct cmsghdr align;
	} u;
	struct iovec iov = {
	    .iov_base = (void *)h,
	    .iov_len = offsetof(struct fg_handoff, preread) + h->preread_len,
	};
	struct msghdr msg = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = u.buf,
	    .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	int fds[2] = {plain_fd, tls_fd};
	ssize_t n;

	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == iov.iov_len ? 0 : -EMSGSIZE;
}

int fg_handoff_send_small(int sock, const void *msg, size_t len)
{
	ssize_t n;

	do
		n = send(sock, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

int fg_handoff_parse(const struct msghdr *msg, size_t len, const struct fg_handoff *h, int fds[2])
{
	struct cmsghdr *c;
	int got = 0, ret = 0;

	fds[0] = fds[1] = -1;
	for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (got < 2)
				fds[got] = fd;
			else
				close(fd);
			got++;
		}
	}
	/*
	 * A truncated control buffer: the fds did not fit, or (the buffer has
	 * room for more) the receiver is out of descriptors. Either way the
	 * tunnel cannot start, and the sender is told so, not left guessing.
	 */
	if (msg->msg_flags & MSG_CTRUNC)
		ret = -EMFILE;
	else if (got != 2 || (msg->msg_flags & MSG_TRUNC))
		ret = -EPROTO;
	else
		ret = fg_handoff_check(h, len);
	if (ret) {
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		fds[0] = fds[1] = -1;
	}
	return ret;
}
