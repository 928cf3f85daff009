// SPDX-License-Identifier: MIT
/*
 * The data plane's handoff queue, from the control process (dpctl.h): the
 * handoffs, their sends to the workers and the answers. Its process life
 * (start, restart with back-off, the drain, what the timer runs) is
 * dpctl_life.c's, which calls this file and never the other way round; the
 * timer is armed here (gw_dp_set_tick), as the queue's length decides.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "control/dpctl.h"
#include "control/local_redirect.h"
#include "control/dpctl_int.h"
#include "control/dptrack.h"
#include "control/alert.h"
#include "control/metrics.h"
#include "control/proof.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/handoff.h"
#include "fedgate/log.h"

#define QUEUE_MAX 256	/* handoffs waiting for the data plane, all workers */
#define INFLIGHT_MAX 64 /* sent and not answered, per worker: its acks always fit */
#define TICK_MS 100

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
void gw_dp_refuse(struct gw_dp *dp, struct dp_pend *p, const char *why)
{
	dp->n_refused++;
	gw_metrics_refused(p->tunnel, "handoff to the data plane failed");
	gw_dptrack_del(dp->track, p->id);
	fg_warn("refused %s on tunnel %s: %s; closed with a reset (%lu refused at handoff so far)",
		p->peer, p->tunnel, why, dp->n_refused);
	pend_unlink(dp, p);
	close_reset(p->plain_fd);
	/* The data plane never had the reader: its slot is ours to free. */
	if (p->legs_slot >= 0)
		gw_lr_drop(p->legs_slot, p->legs_owner);
	close_reset(p->tls_fd);
	pend_free(p);
}

void gw_dp_set_tick(struct gw_dp *dp)
{
	int busy = dp->n_pend || dp->restart_at || (dp->draining && !dp->done);
	struct itimerspec its = {0};

	/*
	 * Only on a change: arming it again on every handoff and answer would
	 * push the first tick back for as long as events come faster than it,
	 * and a wedged worker among busy ones would never be seen.
	 */
	if (dp->timerfd < 0 || busy == dp->tick_armed)
		return;
	if (busy) {
		its.it_interval.tv_nsec = TICK_MS * 1000000L;
		its.it_value.tv_nsec = TICK_MS * 1000000L;
	}
	if (!timerfd_settime(dp->timerfd, 0, &its, NULL))
		dp->tick_armed = busy;
}

static void watch_out(struct gw_dp *dp, struct dp_sock *s, int on)
{
	if (s->want_out == on || !dp->loop || s->fd < 0)
		return;
	s->want_out = on;
	fg_evloop_mod(dp->loop, s->fd, EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), &s->src);
}

/* Sends what is unsent, in order, round robin over workers with room. */
/* A worker's drain request, once its socket has room (a full one waits for EPOLLOUT). */
static void send_drain(struct gw_dp *dp, struct dp_sock *s, int i)
{
	struct fg_handoff_drain d = {.magic = FG_HANDOFF_DRAIN_MAGIC, .deadline_ms = dp->drain_ms};
	int ret = fg_handoff_send_small(s->fd, &d, sizeof(d));

	if (ret == -EAGAIN) {
		watch_out(dp, s, 1);
		return;
	}
	s->drain_due = 0;
	if (ret)
		fg_error("data plane worker %d: cannot ask it to drain: %s", i, strerror(-ret));
}

/* Worker @i's revocations, in order, while its socket has room. */
static void send_revokes(struct gw_dp *dp, struct dp_sock *s, int i)
{
	size_t done = 0;
	int ret = 0;

	while (done < s->n_revoke &&
	       !(ret = fg_handoff_send_small(s->fd, &s->revoke[done], sizeof(s->revoke[0]))))
		done++;
	if (ret == -EAGAIN)
		watch_out(dp, s, 1);
	else if (ret)
		fg_error("data plane worker %d: cannot ask it to close revoked tunnels: %s", i,
			 strerror(-ret));
	/* Another error means the socket is going: the data plane's death forgets them all. */
	if (ret && ret != -EAGAIN)
		done = s->n_revoke;
	memmove(s->revoke, s->revoke + done, (s->n_revoke - done) * sizeof(s->revoke[0]));
	s->n_revoke -= done;
}

void gw_dp_flush(struct gw_dp *dp)
{
	for (int i = 0; i < dp->opts.workers; i++) {
		if (dp->w[i].drain_due && dp->w[i].fd >= 0)
			send_drain(dp, &dp->w[i], i);
		if (dp->w[i].n_revoke && dp->w[i].fd >= 0)
			send_revokes(dp, &dp->w[i], i);
	}
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
			gw_dp_refuse(dp, p, why);
		}
	}
}

struct revalidation {
	struct gw_dp *dp;
	int (*check)(void *ctx, const char *tunnel, const char *peer, const struct gw_proof *p,
		     uint8_t *alert);
	void *ctx;
	size_t n;
};

/* gw_dptrack_revalidate()'s callback: 1 once the revocation is queued, 0 passed, -1 later. */
static int revalidate_one(void *ctx, uint32_t id, int worker, const char *tunnel, const char *peer,
			  const struct gw_proof *proof)
{
	struct revalidation *v = ctx;
	struct dp_sock *s = &v->dp->w[worker];
	struct fg_handoff_revoke *grown;
	uint8_t alert = 0;
	size_t cap;

	int verdict = v->check(v->ctx, tunnel, peer, proof, &alert);

	if (verdict <= 0) {
		if (verdict < 0)
			v->dp->stale = 1; /* checked again at the next pass */
		return verdict;
	}
	if (s->n_revoke == s->cap_revoke) {
		cap = s->cap_revoke ? s->cap_revoke * 2 : 16;
		grown = realloc(s->revoke, cap * sizeof(*grown));
		if (!grown) {
			fg_error("tunnel %s: %s: no memory to close it yet; trying again", tunnel,
				 peer);
			v->dp->stale = 1;
			return -1;
		}
		s->revoke = grown;
		s->cap_revoke = cap;
	}
	s->revoke[s->n_revoke++] = (struct fg_handoff_revoke){
	    .magic = FG_HANDOFF_REVOKE_MAGIC,
	    .id = id,
	    .alert = alert ? alert : FG_ALERT_ACCESS_DENIED,
	};
	v->n++;
	return 1;
}

size_t gw_dp_revalidate(struct gw_dp *dp, unsigned long epoch,
			int (*check)(void *ctx, const char *tunnel, const char *peer,
				     const struct gw_proof *p, uint8_t *alert),
			void *ctx)
{
	struct revalidation v = {.dp = dp, .check = check, .ctx = ctx};
	int64_t t0 = fg_mono_ms(), now;

	dp->stale = 0;
	gw_dptrack_revalidate(dp->track, epoch, revalidate_one, &v);
	/*
	 * A long pass kept the loop from reading the workers' answers: that was
	 * the loop's doing, not theirs, so the wedge check starts over from now.
	 */
	now = fg_mono_ms();
	if (now - t0 >= 1000)
		for (int i = 0; i < dp->opts.workers; i++)
			dp->w[i].heard = now;
	if (v.n)
		gw_dp_flush(dp);
	return v.n;
}

int gw_dp_stale(const struct gw_dp *dp)
{
	return dp->stale;
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

void gw_dp_each(const struct gw_dp *dp,
		void (*fn)(void *ctx, const char *tunnel, const char *peer, int running), void *ctx)
{
	gw_dptrack_each(dp->track, fn, ctx);
}

void gw_dp_bytes(const struct gw_dp *dp, const char *tunnel, uint64_t *up, uint64_t *down)
{
	gw_dptrack_bytes_of(dp->track, tunnel, up, down);
}

int gw_dp_handoff(struct gw_dp *dp, struct fg_handoff *h, int plain_fd, int tls_fd,
		  const char *accepted, struct gw_proof *proof)
{
	struct dp_pend *p = calloc(1, sizeof(*p));
	uint32_t id = dp->next_id;
	uint64_t owner = h->legs_slot >= 0 ? gw_lr_owner(h->legs_slot) : 0;

	if (!p || !(p->accepted = strdup(accepted)) ||
	    gw_dptrack_add(dp->track, id, h->tunnel, h->peer, h->legs_slot, owner, proof)) {
		gw_proof_free(proof);
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
	p->legs_slot = h->legs_slot;
	p->legs_owner = owner;
	p->since = fg_mono_ms();
	snprintf(p->tunnel, sizeof(p->tunnel), "%s", h->tunnel);
	snprintf(p->peer, sizeof(p->peer), "%s", h->peer);
	if (dp->tail)
		dp->tail->next = p;
	else
		dp->head = p;
	dp->tail = p;
	dp->n_pend++;
	gw_dp_flush(dp);
	gw_dp_set_tick(dp);
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
		gw_dp_refuse(dp, p, why);
		return;
	}
	fg_info("%s", p->accepted);
	gw_metrics_accepted(p->tunnel);
	if (gw_dptrack_running(dp->track, p->id, i))
		dp->stale = 1;
	pend_unlink(dp, p);
	close(p->plain_fd);
	close(p->tls_fd);
	pend_free(p);
}

/* Worker @i tallied the bytes of @c's handoffs, and freed their tunnels if @c is a close report. */
static void closed(struct gw_dp *dp, int i, const struct fg_handoff_closed *c)
{
	int freed = c->magic == FG_HANDOFF_CLOSED_MAGIC;

	dp->w[i].n_tunnels = c->n_tunnels;
	for (uint32_t k = 0; k < c->n; k++) {
		uint32_t id = c->t[k].id;

		if (gw_dptrack_bytes(dp->track, id, c->t[k].up, c->t[k].down) ||
		    (freed && gw_dptrack_del(dp->track, id)))
			fg_warn("data plane worker %d reported handoff %u %s, which it did "
				"not run",
				i, id, freed ? "closed" : "moving bytes");
	}
}

/*
 * Reads what worker @i sent. 0, or -EPIPE: its socket is closed or broken, so
 * the data plane is down, @why (@len bytes) says how, and the caller takes it
 * down (dpctl_life.c) with nothing flushed.
 */
int gw_dp_sock_ready(struct gw_dp *dp, int i, char *why, size_t len)
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
			snprintf(why, len, "%s",
				 n ? strerror(errno) : "its handoff socket closed first");
			return -EPIPE;
		}
		s->heard = fg_mono_ms();
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
	gw_dp_flush(dp);
	return 0;
}
