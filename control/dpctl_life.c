// SPDX-License-Identifier: MIT
/*
 * The data plane's life, from the control process (dpctl.h): its process,
 * restarted with back-off; the drain; the timer that runs both and the
 * handoff queue's timeouts. The queue itself, and the answers, are dpctl.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control/dpctl.h"
#include "control/local_redirect.h"
#include "control/dpctl_int.h"
#include "control/dptrack.h"
#include "control/spawn.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/handoff.h"
#include "fedgate/log.h"

/*
 * A sent handoff unanswered this long, by a worker that said nothing else
 * meanwhile: wedged. Generous: the kill costs every tunnel, and a data plane
 * just started (OpenSSL warmed up before its filter) or on a slow machine
 * may take seconds to answer its first.
 */
#define ANSWER_MS 10000
#define QUEUED_MS 5000	    /* an unsent one waiting this long is refused */
#define BACKOFF_MIN_MS 100  /* the second restart in a row waits this long, then doubles */
#define BACKOFF_MAX_MS 5000 /* ... up to this */
#define STABLE_MS 30000	    /* up this long, the next restart is immediate again */
#define DRAIN_EXTRA_MS 5000 /* past the drain deadline and the data plane's grace: SIGKILL */

static int start(struct gw_dp *dp)
{
	int socks[FG_DP_WORKERS_MAX], ret;

	ret = fg_dataplane_spawn(&dp->opts, &dp->pid, socks);
	if (ret) {
		dp->pid = -1;
		return ret;
	}
	dp->up_since = fg_mono_ms();
	for (int i = 0; i < dp->opts.workers; i++) {
		struct dp_sock *s = &dp->w[i];

		s->src.kind = SRC_DATAPLANE;
		s->fd = socks[i];
		s->want_out = s->drain_due = 0;
		s->heard = dp->up_since;
		s->n_tunnels = s->inflight = 0;
		fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
		if (dp->loop)
			fg_evloop_add(dp->loop, s->fd, EPOLLIN | EPOLLRDHUP, &s->src);
	}
	return 0;
}

static void restart(struct gw_dp *dp);

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

/*
 * The data plane is gone (reaped with @status) or must go (@status -1: it is
 * killed and reaped here, a matter of milliseconds once SIGKILL is sent).
 * Its tunnels are lost; what it had not answered is refused; what was not
 * sent waits for the next one, which starts now or after the back-off.
 */
static void down(struct gw_dp *dp, int status, const char *why)
{
	size_t lost = 0;
	char how[96];
	int64_t now = fg_mono_ms();
	unsigned int delay;

	if (dp->pid < 0)
		return;
	if (status == -1) {
		kill(dp->pid, SIGKILL);
		while (waitpid(dp->pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	describe_status(status, how, sizeof(how));
	for (int i = 0; i < dp->opts.workers; i++) {
		struct dp_sock *s = &dp->w[i];

		lost += s->n_tunnels;
		if (s->fd >= 0) {
			if (dp->loop)
				fg_evloop_del(dp->loop, s->fd);
			close(s->fd);
		}
		s->fd = -1;
		s->n_revoke = 0; /* their tunnels are gone with it */
	}
	for (struct dp_pend *p = dp->head, *next; p; p = next) {
		next = p->next;
		if (p->worker >= 0)
			gw_dp_refuse(dp, p, "the data plane exited before it answered the handoff");
	}
	/*
	 * Their close reports will never come: the caps count them no more, and
	 * the local redirect slots their readers held (which the dead data plane
	 * will not release) are freed.
	 */
	gw_dptrack_lost(dp->track, gw_lr_drop);
	if (dp->draining) {
		fg_info("the data plane (pid %d) %s; %zu tunnel(s) left", (int)dp->pid, how, lost);
		dp->pid = -1;
		dp->done = 1;
		return;
	}
	/*
	 * Its seccomp filter killed it: a call fedgate never makes, so a bug or
	 * a compromise. A new one would do the same (or let an attacker retry):
	 * the gateway stops and says why.
	 */
	if (status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
		fg_error("the data plane (pid %d) %s: a system call outside its seccomp filter; "
			 "%zu tunnel(s) lost; not restarted, stopping",
			 (int)dp->pid, how, lost);
		dp->pid = -1;
		dp->done = -ENOTRECOVERABLE;
		return;
	}
	if (now - dp->up_since >= STABLE_MS)
		dp->backoff_ms = 0;
	delay = dp->backoff_ms;
	dp->backoff_ms =
	    delay ? (delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2) : BACKOFF_MIN_MS;
	fg_error("the data plane (pid %d) %s%s%s: %zu tunnel(s) lost; restarting it in %u ms",
		 (int)dp->pid, how, why ? ": " : "", why ? why : "", lost, delay);
	dp->pid = -1;
	dp->restart_at = now + delay;
	gw_dp_set_tick(dp);
	if (!delay)
		restart(dp);
}

static void restart(struct gw_dp *dp)
{
	int ret;

	dp->restart_at = 0;
	ret = start(dp);
	if (ret) {
		fg_error("cannot restart the data plane: %s; trying again in %u ms", strerror(-ret),
			 dp->backoff_ms);
		dp->restart_at = fg_mono_ms() + dp->backoff_ms;
		return;
	}
	dp->restarts++;
	fg_info("data plane restarted: pid %d (restart %u)", (int)dp->pid, dp->restarts);
	gw_dp_flush(dp);
}

int gw_dp_new(struct gw_dp **out, const struct fg_dp_opts *o, uint32_t drain_ms)
{
	struct gw_dp *dp = calloc(1, sizeof(*dp));
	int ret;

	if (!dp)
		return -ENOMEM;
	dp->opts = *o;
	dp->drain_ms = drain_ms;
	dp->next_id = 1;
	dp->timerfd = -1;
	dp->restart_at = 0;
	for (int i = 0; i < FG_DP_WORKERS_MAX; i++)
		dp->w[i].fd = -1;
	ret = gw_dptrack_new(&dp->track);
	if (!ret)
		ret = start(dp);
	if (ret) {
		gw_dptrack_free(dp->track);
		free(dp);
		return ret;
	}
	*out = dp;
	return 0;
}

void gw_dp_free(struct gw_dp *dp)
{
	int status;

	if (!dp)
		return;
	while (dp->head)
		gw_dp_refuse(dp, dp->head, "the gateway is stopping");
	for (int i = 0; i < dp->opts.workers; i++)
		if (dp->w[i].fd >= 0)
			close(dp->w[i].fd);
	/* Its handoff sockets closed, the data plane stops by itself; SIGTERM makes sure. */
	if (dp->pid > 0) {
		kill(dp->pid, SIGTERM);
		while (waitpid(dp->pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (dp->timerfd >= 0)
		close(dp->timerfd);
	gw_dptrack_free(dp->track);
	for (int i = 0; i < FG_DP_WORKERS_MAX; i++)
		free(dp->w[i].revoke);
	free(dp);
}

pid_t gw_dp_pid(const struct gw_dp *dp)
{
	return dp->pid;
}

unsigned int gw_dp_restarts(const struct gw_dp *dp)
{
	return dp->restarts;
}

const char *gw_dp_backend_name(const struct gw_dp *dp)
{
	switch (dp->opts.backend) {
	case FG_DP_USERSPACE:
		return "userspace";
	case FG_DP_KERNEL:
		return "kernel TLS, userspace where a socket takes no key";
	case FG_DP_KERNEL_ONLY:
		return "kernel TLS";
	}
	return "unknown";
}

int gw_dp_attach(struct gw_dp *dp, struct fg_evloop *loop)
{
	int ret;

	dp->loop = loop;
	dp->timer_src.kind = SRC_DATAPLANE;
	dp->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (dp->timerfd < 0)
		return -errno;
	ret = fg_evloop_add(loop, dp->timerfd, EPOLLIN, &dp->timer_src);
	for (int i = 0; i < dp->opts.workers && !ret; i++)
		if (dp->w[i].fd >= 0)
			ret = fg_evloop_add(loop, dp->w[i].fd, EPOLLIN | EPOLLRDHUP, &dp->w[i].src);
	return ret;
}

/* Every TICK_MS while something waits: restarts, timeouts, the drain's hard stop. */
static void tick(struct gw_dp *dp)
{
	int64_t now = fg_mono_ms();
	uint64_t n;

	if (read(dp->timerfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		fg_debug("data plane timer: %s", strerror(errno));
	if (dp->restart_at && now >= dp->restart_at && !dp->draining)
		restart(dp);
	for (struct dp_pend *p = dp->head, *next; p; p = next) {
		next = p->next;
		if (p->worker < 0 && now - p->since >= QUEUED_MS) {
			gw_dp_refuse(dp, p, "timed out waiting for the data plane to take it");
		} else if (p->worker >= 0 && now - p->since >= ANSWER_MS &&
			   now - dp->w[p->worker].heard >= ANSWER_MS && dp->pid > 0) {
			fg_error("the data plane has not answered handoff %u for %d ms: wedged",
				 p->id, ANSWER_MS);
			down(dp, -1, "wedged, killed");
			break;
		}
	}
	if (dp->draining && !dp->done && dp->pid > 0 && now >= dp->kill_at) {
		fg_error("the data plane did not finish its drain in time: killing it");
		down(dp, -1, NULL);
	}
	gw_dp_flush(dp);
	gw_dp_set_tick(dp);
}

void gw_dp_event(struct gw_dp *dp, struct gw_src *s)
{
	char why[128];

	if (s == &dp->timer_src) {
		tick(dp);
		return;
	}
	for (int i = 0; i < dp->opts.workers; i++)
		if (s == &dp->w[i].src && gw_dp_sock_ready(dp, i, why, sizeof(why)))
			down(dp, -1, why);
	gw_dp_set_tick(dp);
}

void gw_dp_child(struct gw_dp *dp)
{
	int status;
	pid_t r;

	if (dp->pid < 0)
		return;
	do
		r = waitpid(dp->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == dp->pid)
		down(dp, status, NULL);
}

void gw_dp_drain(struct gw_dp *dp)
{
	size_t tunnels = 0;

	if (dp->draining)
		return;
	dp->draining = 1;
	dp->restart_at = 0;
	for (struct dp_pend *p = dp->head, *next; p; p = next) {
		next = p->next;
		if (p->worker < 0)
			gw_dp_refuse(dp, p, "the gateway is stopping");
	}
	if (dp->pid < 0) {
		dp->done = 1;
		return;
	}
	/* Sent by gw_dp_flush(), now or, on a full socket, once it has room. */
	for (int i = 0; i < dp->opts.workers; i++) {
		dp->w[i].drain_due = dp->w[i].fd >= 0;
		tunnels += dp->w[i].n_tunnels;
	}
	gw_dp_flush(dp);
	fg_info("draining the data plane: %zu tunnel(s) may run for up to %u ms", tunnels,
		dp->drain_ms);
	dp->kill_at = fg_mono_ms() + dp->drain_ms + FG_DRAIN_GRACE_MS + DRAIN_EXTRA_MS;
	gw_dp_set_tick(dp);
}

int gw_dp_done(const struct gw_dp *dp)
{
	return dp->done;
}
