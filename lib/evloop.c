// SPDX-License-Identifier: MIT
/* epoll plus signalfd: see evloop.h. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include "fedgate/clock.h"
#include "fedgate/evloop.h"

int fg_evloop_init(struct fg_evloop *l, const int *signals, int n, void *sig_tag)
{
	sigset_t mask;

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->sigfd = -1;
	if (l->epfd < 0)
		return -errno;
	sigemptyset(&mask);
	for (int i = 0; i < n; i++)
		sigaddset(&mask, signals[i]);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	l->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (l->sigfd < 0)
		return -errno;
	return fg_evloop_add(l, l->sigfd, EPOLLIN, sig_tag);
}

void fg_evloop_exit(struct fg_evloop *l)
{
	if (!l)
		return;
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->epfd >= 0)
		close(l->epfd);
	l->sigfd = l->epfd = -1;
}

static int ctl(struct fg_evloop *l, int op, int fd, uint32_t events, void *tag)
{
	struct epoll_event ev = {.events = events, .data.ptr = tag};

	return epoll_ctl(l->epfd, op, fd, &ev) ? -errno : 0;
}

int fg_evloop_add(struct fg_evloop *l, int fd, uint32_t events, void *tag)
{
	return ctl(l, EPOLL_CTL_ADD, fd, events, tag);
}

int fg_evloop_mod(struct fg_evloop *l, int fd, uint32_t events, void *tag)
{
	return ctl(l, EPOLL_CTL_MOD, fd, events, tag);
}

void fg_evloop_del(struct fg_evloop *l, int fd)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int fg_evloop_wait(struct fg_evloop *l, struct epoll_event *evs, int max, int timeout_ms)
{
	int n = epoll_wait(l->epfd, evs, max, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n;
}

int fg_evloop_signal(struct fg_evloop *l)
{
	struct signalfd_siginfo si;

	if (read(l->sigfd, &si, sizeof(si)) != sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

int fg_wait_fd(int fd, short events, int64_t deadline_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left;
	int n;

	do {
		left = deadline_ms - fg_mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}
