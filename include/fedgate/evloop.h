/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_EVLOOP_H
#define FEDGATE_EVLOOP_H

#include <stdint.h>
#include <sys/epoll.h>

/*
 * The one event-loop shape of fedgate's processes: an epoll set, and the
 * signals the process handles blocked and read from a signalfd in that set,
 * so a signal is an event like any other (never a handler racing the loop).
 * Every registration carries a caller pointer; the signalfd's is @sig_tag.
 */
struct fg_evloop {
	int epfd;
	int sigfd;
};

/*
 * Creates the epoll set and blocks the @n signals of @signals, delivering
 * them through a signalfd registered with @sig_tag. Returns 0 or -errno; on
 * failure fg_evloop_exit() is still safe.
 */
int fg_evloop_init(struct fg_evloop *l, const int *signals, int n, void *sig_tag);

/* Closes the fds; the signals stay blocked. Safe on a zeroed or failed loop. */
void fg_evloop_exit(struct fg_evloop *l);

/* EPOLL_CTL_ADD / MOD / DEL of @fd with @events and @tag. 0 or -errno. */
int fg_evloop_add(struct fg_evloop *l, int fd, uint32_t events, void *tag);
int fg_evloop_mod(struct fg_evloop *l, int fd, uint32_t events, void *tag);
void fg_evloop_del(struct fg_evloop *l, int fd);

/* Waits up to @timeout_ms (-1: forever). Returns the number of events, 0 on EINTR, or -errno. */
int fg_evloop_wait(struct fg_evloop *l, struct epoll_event *evs, int max, int timeout_ms);

/* The next pending signal's number, or 0 when none is pending. */
int fg_evloop_signal(struct fg_evloop *l);

/*
 * Outside a loop, for the few blocking exchanges of a command (`fedgate
 * status`, a takeover): waits until @fd is ready for @events (poll(2) bits)
 * or CLOCK_MONOTONIC passes @deadline_ms (fg_mono_ms()). 0, -ETIMEDOUT, or
 * -errno.
 */
int fg_wait_fd(int fd, short events, int64_t deadline_ms);

#endif
