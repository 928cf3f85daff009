// SPDX-License-Identifier: MIT
/*
 * Restarts and upgrades that drop nothing (takeover.h): the running gateway
 * listens on $.admin.socket; a new one started with `run --take-over`
 * connects there before it binds anything and receives every listening
 * socket (the tunnels' and the admin listener's) with SCM_RIGHTS, as
 * HAProxy's -x does. The sockets themselves never close, so connections in
 * their accept queues are the new process's to accept; the old one stops
 * accepting, lets its handshakes in progress finish and drains its tunnels.
 *
 * The wire, a SOCK_SEQPACKET socket (each message whole, its descriptors with
 * it): the new process sends "fedgate-takeover 1\n"; the old answers
 * with one message: "N\n" and N lines "NAME\n" (a tunnel's name, or "@admin"),
 * the N descriptors in the same order as its SCM_RIGHTS. Only a peer with the
 * gateway's own uid (or root) is answered; the socket is 0600.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/admin.h"
#include "control/config.h"
#include "control/gateway.h"
#include "control/takeover.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/log.h"

#define REQUEST "fedgate-takeover 1\n"
#define TAKEOVER_TIMEOUT_MS 5000

struct gw_takeover {
	struct gw_src src; /* first: the loop's tag */
	int fd;
};

static int unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, strlen(path));
	return 0;
}

int gw_takeover_new(struct gw_takeover **out, struct gw *gw)
{
	const char *path = gw->cur->cfg->admin_socket;
	struct sockaddr_un sun;
	struct gw_takeover *t;
	int ret;

	*out = NULL;
	if (!path)
		return 0;
	ret = unix_addr(path, &sun);
	if (ret)
		return ret;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->src.kind = SRC_TAKEOVER;
	t->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0) {
		ret = -errno;
		goto free_t;
	}
	/* A socket left by a gateway that is gone, or the one this one took over from. */
	unlink(path);
	if (bind(t->fd, (struct sockaddr *)&sun, sizeof(sun)) || chmod(path, 0600) ||
	    listen(t->fd, 4)) {
		ret = -errno;
		fg_error("admin: cannot listen on %s: %s", path, strerror(errno));
		goto close_fd;
	}
	ret = fg_evloop_add(gw->loop, t->fd, EPOLLIN, &t->src);
	if (ret)
		goto close_fd;
	fg_info(
	    "admin: takeover socket %s: `fedgate run --take-over` takes the listeners from here",
	    path);
	*out = t;
	return 0;
close_fd:
	close(t->fd);
free_t:
	free(t);
	return ret;
}

void gw_takeover_free(struct gw_takeover *t)
{
	if (!t)
		return;
	close(t->fd);
	free(t);
}

/* Sends @gw's listening sockets on @fd, as the wire says. 0 or -errno. */
static int hand_over(struct gw *gw, int fd, size_t *n_out)
{
	int fds[FG_TAKEOVER_MAX];
	char text[FG_TAKEOVER_MAX * 66 + 16];
	size_t n = 0, len = 0;
	struct msghdr msg = {0};
	struct iovec iov;
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} cm;
	struct cmsghdr *c;
	ssize_t sent;

	/* Names are at most 63 bytes (config_tunnels.c): each line fits its 66. */
	for (size_t i = 0; i < gw->n_listeners && n < FG_TAKEOVER_MAX; i++)
		if (gw->listeners[i].fd >= 0) {
			fds[n++] = gw->listeners[i].fd;
			len += (size_t)snprintf(text + len, sizeof(text) - len, "%.63s\n",
						gw->listeners[i].t->name);
		}
	if (gw_admin_fd(gw->admin) >= 0 && n < FG_TAKEOVER_MAX) {
		fds[n++] = gw_admin_fd(gw->admin);
		len += (size_t)snprintf(text + len, sizeof(text) - len, "@admin\n");
	}
	if (!n)
		return -ENOENT;
	/* The count goes first: the names follow it. */
	memmove(text + 16, text, len);
	snprintf(text, 16, "%15zu", n);
	text[15] = '\n';
	len += 16;
	iov.iov_base = text;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
	if (sent < 0)
		return -errno;
	*n_out = n;
	return (size_t)sent == len ? 0 : -EIO;
}

void gw_takeover_ready(struct gw_takeover *t, struct gw *gw)
{
	int64_t deadline = fg_mono_ms() + TAKEOVER_TIMEOUT_MS;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	char req[sizeof(REQUEST)];
	size_t got = 0, n = 0;
	int fd, ret = 0;

	fd = accept4(t->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		fg_warn("admin: takeover refused to pid %d (uid %d): not this gateway's user",
			(int)cred.pid, (int)cred.uid);
		goto close_fd;
	}
	/* A local process of our own user, and a few bytes: waited for, at most 5 s. */
	while (got < sizeof(REQUEST) - 1 && !(ret = fg_wait_fd(fd, POLLIN, deadline))) {
		ssize_t r = recv(fd, req + got, sizeof(REQUEST) - 1 - got, MSG_DONTWAIT);

		if (r <= 0 && !(r < 0 && (errno == EAGAIN || errno == EINTR))) {
			ret = r ? -errno : -ECONNRESET;
			break;
		}
		if (r > 0)
			got += (size_t)r;
	}
	if (!ret && memcmp(req, REQUEST, sizeof(REQUEST) - 1))
		ret = -EPROTO;
	if (!ret && gw->draining)
		ret = -ESHUTDOWN;
	if (!ret)
		ret = hand_over(gw, fd, &n);
	if (ret) {
		fg_warn("admin: takeover by pid %d failed: %s; still serving", (int)cred.pid,
			strerror(-ret));
		goto close_fd;
	}
	fg_info("admin: handed %zu listening socket(s) to pid %d: no more accepts here; "
		"handshakes in progress finish, then the tunnels drain",
		n, (int)cred.pid);
	gw->handed_over = 1;
close_fd:
	close(fd);
}

int gw_takeover_fetch(const char *path, struct gw_handed *h, char *why, size_t wlen)
{
	int64_t deadline = fg_mono_ms() + TAKEOVER_TIMEOUT_MS;
	char text[FG_TAKEOVER_MAX * 66 + 16], *p, *nl;
	union {
		char buf[CMSG_SPACE(FG_TAKEOVER_MAX * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct msghdr msg = {0};
	struct sockaddr_un sun;
	struct cmsghdr *c;
	struct iovec iov;
	size_t count;
	ssize_t n;
	int fd, ret;

	memset(h, 0, sizeof(*h));
	ret = unix_addr(path, &sun);
	if (ret) {
		snprintf(why, wlen, "path too long");
		return ret;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    send(fd, REQUEST, sizeof(REQUEST) - 1, MSG_NOSIGNAL) != sizeof(REQUEST) - 1) {
		ret = -errno;
		snprintf(why, wlen, "%s", strerror(errno));
		goto close_fd;
	}
	ret = fg_wait_fd(fd, POLLIN, deadline);
	if (ret) {
		snprintf(why, wlen, "no answer within 5 s");
		goto close_fd;
	}
	iov.iov_base = text;
	iov.iov_len = sizeof(text) - 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		h->n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		memcpy(h->fd, CMSG_DATA(c), h->n * sizeof(int));
	}
	ret = -EPROTO;
	if (n <= 0 || (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || !h->n) {
		snprintf(
		    why, wlen, "%s",
		    n < 0 ? strerror(errno)
		    : n == 0
			? "it closed without an answer (it is draining, or refused us: see its log)"
			: "its answer carried no socket (or was cut short)");
		goto fail;
	}
	text[n] = '\0';
	if (sscanf(text, "%zu", &count) != 1 || count != h->n || n < 16 || text[15] != '\n') {
		snprintf(why, wlen, "its answer names %s sockets than it carried", "other");
		goto fail;
	}
	p = text + 16;
	for (size_t i = 0; i < h->n; i++, p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl || (size_t)(nl - p) >= sizeof(h->name[i])) {
			snprintf(why, wlen, "its answer is malformed");
			goto fail;
		}
		memcpy(h->name[i], p, (size_t)(nl - p));
		h->name[i][nl - p] = '\0';
	}
	ret = 0;
	goto close_fd;
fail:
	gw_handed_exit(h);
close_fd:
	close(fd);
	return ret;
}

int gw_handed_take(struct gw_handed *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->fd[i] >= 0 && !strcmp(h->name[i], name)) {
			int fd = h->fd[i];

			h->fd[i] = -1;
			return fd;
		}
	return -1;
}

void gw_handed_exit(struct gw_handed *h)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->fd[i] < 0)
			continue;
		fg_warn("takeover: the listener of %s is not in this config: closed (what was "
			"queued there is reset)",
			h->name[i]);
		close(h->fd[i]);
		h->fd[i] = -1;
	}
	h->n = 0;
}
