// SPDX-License-Identifier: MIT
/*
 * The data plane's life, from the control process (dpctl.h): its process,
 * restarted with back-off; the queue of handoffs; the answers; the drain.
 *
 * Every handoff waits in one FIFO from gw_dp_handoff() until the data plane
 * answers it: unsent first (its message kept), then sent to a worker (its
 * message wiped). The control process keeps its copies of the two sockets
 * until the answer, so a handoff the data plane could not take (its fds did
 * not arrive, the tunnel did not start, the process died) is closed here with
 * a reset and a log line, never "accepted" and then silence. Nothing here
 * waits on the data plane: sends are non-blocking, a full socket waits for
 * EPOLLOUT, and a full queue refuses new connections (gw_dp_room).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "control/dpctl.h"
#include "control/dptrack.h"
#include "control/gateway-t.h"
#include "control/spawn.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/handoff.h"
#include "fedgate/log.h"

#define QUEUE_MAX 256	    /* handoffs waiting for the data plane, all workers */
#define INFLIGHT_MAX 64	    /* sent and not answered, per worker: its acks always fit */
#define ANSWER_MS 3000	    /* a sent handoff unanswered this long: the data plane is wedged */
#define QUEUED_MS 5000	    /* an unsent one waiting this long is refused */
#define BACKOFF_MIN_MS 100  /* the second restart in a row waits this long, then doubles */
#define BACKOFF_MAX_MS 5000 /* ... up to this */
#define STABLE_MS 30000	    /* up this long, the next restart is immediate again */
#define DRAIN_EXTRA_MS 5000 /* past the drain deadline and the data plane's grace: SIGKILL */
#define DRAIN_GRACE_MS 2000 /* dataplane/drain.c's */
#define TICK_MS 100

struct dp_pend {
	struct dp_pend *next;
	uint32_t id;
	int worker; /* -1 while unsent */
	int plain_fd, tls_fd;
	struct fg_handoff *h; /* until sent */
	int64_t since;	      /* queued, then sent: ms on fg_mono_ms() */
	char *accepted;
	char tunnel[64], peer[256];
};

struct dp_sock {
	struct gw_src src; /* first: the loop's tag */
	int fd;		   /* -1 while the data plane is down */
	int want_out;	   /* EPOLLOUT registered: the socket was full */
	size_t n_tunnels;  /* as the worker last reported */
	size_t inflight;
};

struct gw_dp {
	struct fg_dp_opts opts;
	uint32_t drain_ms;
	struct fg_evloop *loop;
	pid_t pid;
	int64_t up_since, restart_at; /* restart_at 0: none pending */
	unsigned int backoff_ms, restarts;
	struct dp_sock w[FG_DP_WORKERS_MAX];
	int next_w;
	struct dp_pend *head, *tail;
	size_t n_pend;
	uint32_t next_id;
	struct gw_src timer_src;
	int timerfd;
	int draining, done;
	int64_t kill_at;
	unsigned long n_refused;  /* handoffs the data plane did not take: for the log */
	struct gw_dptrack *track; /* queued and running tunnels, by id and name */
};

/* A reset for the client rather than a FIN that looks like a clean end. */
static void close_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void pend_free(struct dp_pend *p)
{
	if (p->h) {
		OPENSSL_cleanse(p->h, sizeof(*p->h));
		free(p->h);
	}
	free(p->accepted);
	free(p);
}

/* Unlinks @p (found by walking from the head: the queue is short). */
static void pend_unlink(struct gw_dp *dp, struct dp_pend *p)
{
	struct dp_pend **pp = &dp->head, *prev = NULL;

	while (*pp && *pp != p) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = p->next;
	if (dp->tail == p)
		dp->tail = prev;
	dp->n_pend--;
	if (p->worker >= 0)
		dp->w[p->worker].inflight--;
}

/* @p ends without a tunnel: the client gets a reset, the log says why. */
static void pend_refuse(struct gw_dp *dp, struct dp_pend *p, const char *why)
{
	dp->n_refused++;
	gw_dptrack_del(dp->track, p->id);
	fg_warn("refused %s on tunnel %s: %s; closed with a reset (%lu refused at handoff so far)",
		p->peer, p->tunnel, why, dp->n_refused);
	pend_unlink(dp, p);
	close_reset(p->plain_fd);
	close_reset(p->tls_fd);
	pend_free(p);
}

static void set_tick(struct gw_dp *dp)
{
	int busy = dp->n_pend || dp->restart_at || (dp->draining && !dp->done);
	struct itimerspec its = {0};

	if (dp->timerfd < 0)
		return;
	if (busy) {
		its.it_interval.tv_nsec = TICK_MS * 1000000L;
		its.it_value.tv_nsec = TICK_MS * 1000000L;
	}
	timerfd_settime(dp->timerfd, 0, &its, NULL);
}

static void watch_out(struct gw_dp *dp, struct dp_sock *s, int on)
{
	if (s->want_out == on || !dp->loop || s->fd < 0)
		return;
	s->want_out = on;
	fg_evloop_mod(dp->loop, s->fd, EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), &s->src);
}

/* Sends what is unsent, in order, round robin over workers with room. */
static void flush(struct gw_dp *dp)
{
	for (struct dp_pend *p = dp->head, *next; p; p = next) {
		int tried = 0, ret = -EAGAIN;

		next = p->next;
		if (p->worker >= 0)
			continue;
		if (dp->pid < 0 || dp->draining)
			break;
		for (; tried < dp->opts.workers; tried++) {
			int i = (dp->next_w + tried) % dp->opts.workers;
			struct dp_sock *s = &dp->w[i];

			if (s->fd < 0 || s->want_out || s->inflight >= INFLIGHT_MAX)
				continue;
			ret = fg_handoff_send(s->fd, p->h, p->plain_fd, p->tls_fd);
			if (ret == -EAGAIN) {
				watch_out(dp, s, 1);
				continue;
			}
			if (ret)
				break;
			p->worker = i;
			p->since = fg_mono_ms();
			s->inflight++;
			dp->next_w = (i + 1) % dp->opts.workers;
			OPENSSL_cleanse(p->h, sizeof(*p->h));
			free(p->h);
			p->h = NULL;
			break;
		}
		/* No worker has room, or the data plane is going: the rest wait, in order. */
		if (ret == -EAGAIN || ret == -EPIPE || ret == -ECONNRESET)
			break;
		if (ret) {
			char why[128];

			snprintf(why, sizeof(why), "handoff to the data plane failed: %s",
				 strerror(-ret));
			pend_refuse(dp, p, why);
		}
	}
}

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
		s->want_out = 0;
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
	}
	for (struct dp_pend *p = dp->head, *next; p; p = next) {
		next = p->next;
		if (p->worker >= 0)
			pend_refuse(dp, p, "the data plane exited before it answered the handoff");
	}
	/* Their close reports will never come: the caps count them no more. */
	gw_dptrack_lost(dp->track);
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
	set_tick(dp);
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
	flush(dp);
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
		pend_refuse(dp, dp->head, "the gateway is stopping");
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
	free(dp);
}

pid_t gw_dp_pid(const struct gw_dp *dp)
{
	return dp->pid;
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

int gw_dp_room(const struct gw_dp *dp)
{
	if (dp->draining)
		return -ESHUTDOWN;
	return dp->n_pend >= QUEUE_MAX ? -ENOBUFS : 0;
}

size_t gw_dp_tunnels(const struct gw_dp *dp, const char *tunnel)
{
	return gw_dptrack_count(dp->track, tunnel);
}

int gw_dp_handoff(struct gw_dp *dp, struct fg_handoff *h, int plain_fd, int tls_fd,
		  const char *accepted)
{
	struct dp_pend *p = calloc(1, sizeof(*p));
	uint32_t id = dp->next_id;

	if (!p || !(p->accepted = strdup(accepted)) || gw_dptrack_add(dp->track, id, h->tunnel)) {
		if (p)
			free(p->accepted);
		free(p);
		OPENSSL_cleanse(h, sizeof(*h));
		free(h);
		return -ENOMEM;
	}
	p->id = id;
	dp->next_id++;
	if (!dp->next_id)
		dp->next_id = 1; /* 0 is a status report's */
	h->id = p->id;
	p->h = h;
	p->worker = -1;
	p->plain_fd = plain_fd;
	p->tls_fd = tls_fd;
	p->since = fg_mono_ms();
	snprintf(p->tunnel, sizeof(p->tunnel), "%s", h->tunnel);
	snprintf(p->peer, sizeof(p->peer), "%s", h->peer);
	if (dp->tail)
		dp->tail->next = p;
	else
		dp->head = p;
	dp->tail = p;
	dp->n_pend++;
	flush(dp);
	set_tick(dp);
	return 0;
}

/* The answer to handoff @a->id from worker @i. */
static void answered(struct gw_dp *dp, int i, const struct fg_handoff_ack *a)
{
	struct dp_pend *p;
	char why[160];

	for (p = dp->head; p && !(p->id == a->id && p->worker == i); p = p->next)
		;
	if (!p) {
		fg_warn("data plane worker %d answered handoff %u, which it was not sent", i,
			a->id);
		return;
	}
	if (a->err) {
		snprintf(why, sizeof(why), "the data plane could not take the tunnel: %s",
			 a->err == -EMFILE ? "its sockets did not arrive (out of file descriptors)"
					   : strerror(-a->err));
		pend_refuse(dp, p, why);
		return;
	}
	fg_info("%s", p->accepted);
	gw_dptrack_running(dp->track, p->id);
	pend_unlink(dp, p);
	close(p->plain_fd);
	close(p->tls_fd);
	pend_free(p);
}

/* Worker @i freed the tunnels of @c's handoffs. */
static void closed(struct gw_dp *dp, int i, const struct fg_handoff_closed *c)
{
	dp->w[i].n_tunnels = c->n_tunnels;
	for (uint32_t k = 0; k < c->n; k++)
		if (gw_dptrack_del(dp->track, c->id[k]))
			fg_warn("data plane worker %d reported handoff %u closed, which it did "
				"not run",
				i, c->id[k]);
}

/* Reads what worker @i sent; a closed or broken socket means the data plane is down. */
static void sock_ready(struct gw_dp *dp, int i)
{
	struct dp_sock *s = &dp->w[i];
	struct fg_handoff_closed c;
	struct fg_handoff_ack a;
	uint8_t buf[sizeof(c)];
	ssize_t n;

	watch_out(dp, s, 0);
	while (s->fd >= 0) {
		n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			down(dp, -1, n ? strerror(errno) : "its handoff socket closed first");
			return;
		}
		if (!fg_handoff_closed_check(buf, (size_t)n, &c)) {
			closed(dp, i, &c);
			continue;
		}
		if (fg_handoff_ack_check(buf, (size_t)n, &a)) {
			fg_error("data plane worker %d sent a malformed answer (%zd bytes)", i, n);
			continue;
		}
		s->n_tunnels = a.n_tunnels;
		if (a.id)
			answered(dp, i, &a);
	}
	flush(dp);
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
			pend_refuse(dp, p, "timed out waiting for the data plane to take it");
		} else if (p->worker >= 0 && now - p->since >= ANSWER_MS && dp->pid > 0) {
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
	flush(dp);
	set_tick(dp);
}

void gw_dp_event(struct gw_dp *dp, struct gw_src *s)
{
	if (s == &dp->timer_src) {
		tick(dp);
		return;
	}
	for (int i = 0; i < dp->opts.workers; i++)
		if (s == &dp->w[i].src)
			sock_ready(dp, i);
	set_tick(dp);
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
	struct fg_handoff_drain d = {.magic = FG_HANDOFF_DRAIN_MAGIC, .deadline_ms = dp->drain_ms};
	size_t tunnels = 0;

	if (dp->draining)
		return;
	dp->draining = 1;
	dp->restart_at = 0;
	for (struct dp_pend *p = dp->head, *next; p; p = next) {
		next = p->next;
		if (p->worker < 0)
			pend_refuse(dp, p, "the gateway is stopping");
	}
	if (dp->pid < 0) {
		dp->done = 1;
		return;
	}
	for (int i = 0; i < dp->opts.workers; i++) {
		/* 8 bytes on a socket the control process keeps drained of answers. */
		int ret = dp->w[i].fd >= 0 ? fg_handoff_send_small(dp->w[i].fd, &d, sizeof(d)) : 0;

		if (ret)
			fg_error("data plane worker %d: cannot ask it to drain: %s", i,
				 strerror(-ret));
		tunnels += dp->w[i].n_tunnels;
	}
	fg_info("draining the data plane: %zu tunnel(s) may run for up to %u ms", tunnels,
		dp->drain_ms);
	dp->kill_at = fg_mono_ms() + dp->drain_ms + DRAIN_GRACE_MS + DRAIN_EXTRA_MS;
	set_tick(dp);
}

int gw_dp_done(const struct gw_dp *dp)
{
	return dp->done;
}
