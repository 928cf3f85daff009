// SPDX-License-Identifier: MIT
/*
 * The idle reaper: a tunnel with an idle limit ($.tunnels[].idle_timeout_s)
 * that moved no byte either way for longer than that is closed, cleanly: a
 * close_notify and a FIN toward the TLS peer, a FIN toward the plaintext side.
 *
 * The cost is one timeout a second per worker while it has tunnels (the
 * same tick sends their bytes tallies, worker.c): tunnel.c notes the
 * worker's tick count on every completion that moved bytes. The ticks are relative timeouts
 * re-armed when each completes, so they never run ahead of the clock: a tunnel is never cut early,
 * and one idle for N seconds is closed within N + 1 (and a busy worker's lag).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/tls.h>

#include "dataplane/dp.h"
#include "fedgate/log.h"
#include "fedgate/record.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

static void queue_tick(struct dp_worker *w)
{
	struct io_uring_sqe *sqe = dp_get_sqe(w);

	w->tick_ts.tv_sec = 1;
	w->tick_ts.tv_nsec = 0;
	io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
	dp_set_data(sqe, w, DP_OP_TICK);
	w->tick_armed = true;
}

void dp_idle_arm(struct dp_worker *w)
{
	if (!w->tick_armed)
		queue_tick(w);
}

/*
 * Sends our close_notify now, without waiting: the TLS side is idle, so its
 * send buffer takes a 24-byte record at once. Returns 0 or -errno (nothing
 * was sent, or not all of it: the caller closes without it).
 */
static int send_close_notify(struct dp_tunnel *t)
{
	static const uint8_t alert[2] = {1, TLS_ALERT_CLOSE_NOTIFY};
	struct dp_cmsg cm;
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *c;
	uint8_t rec[64];
	ssize_t n, len;

	if (t->kernel) {
		/* kTLS seals it: an alert record through TLS_SET_RECORD_TYPE. */
		memset(&cm, 0, sizeof(cm));
		dp_prep_msg(&msg, &iov, (void *)alert, sizeof(alert), cm.buf, sizeof(cm.buf));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_TLS;
		c->cmsg_type = TLS_SET_RECORD_TYPE;
		c->cmsg_len = CMSG_LEN(sizeof(uint8_t));
		*CMSG_DATA(c) = FG_CT_ALERT;
		len = sizeof(alert);
		n = sendmsg(t->tls_fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	} else {
		len = fg_record_seal(&t->tx, FG_CT_ALERT, alert, sizeof(alert), rec, sizeof(rec));
		if (len < 0)
			return (int)len;
		n = send(t->tls_fd, rec, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	if (n < 0)
		return -errno;
	return n == len ? 0 : -EAGAIN;
}

/*
 * No record is on its way to the TLS peer and we have not closed that way
 * yet: a close_notify now cannot land inside another record. Both backends
 * and the splice path keep up_out_off < up_out_len while a send is in flight.
 */
static bool up_quiet(const struct dp_tunnel *t)
{
	return !t->up_done && !t->up_closing && t->up_out_off >= t->up_out_len;
}

/*
 * Closes @t as idle: close_notify (if the TLS side is quiet), FINs both ways,
 * then everything still waiting on its sockets is cancelled and the tunnel is
 * freed once those complete (dp_tunnel_maybe_finish with @closing set).
 */
static void reap(struct dp_tunnel *t)
{
	struct io_uring_sqe *sqe;
	const char *how = "";
	int fds[3] = {t->plain_fd, t->tls_fd, t->pipe[1]};
	int ret;

	if (up_quiet(t)) {
		ret = send_close_notify(t);
		if (ret)
			how = ret == -EAGAIN ? " (close_notify did not fit: FIN only)"
					     : " (close_notify not sent: FIN only)";
	} else if (!t->up_done) {
		how = " (a record was in flight: FIN only)";
	}
	fg_info("tunnel %s: %s closed: idle for %u s%s; %llu bytes to peer, %llu bytes from peer",
		t->name, t->peer, t->idle_s, how, (unsigned long long)t->bytes_up,
		(unsigned long long)t->bytes_down);
	shutdown(t->tls_fd, SHUT_WR);
	shutdown(t->plain_fd, SHUT_WR);
	t->closing = true;
	/* The polls of idle directions, a blocked send, a splice (its file is the pipe). */
	for (int i = 0; i < 3; i++) {
		if (fds[i] < 0)
			continue;
		sqe = dp_get_sqe(t->w);
		io_uring_prep_cancel_fd(sqe, fds[i], IORING_ASYNC_CANCEL_ALL);
		dp_set_data(sqe, t, DP_OP_POLL); /* its result is not needed */
		t->inflight++;
	}
	dp_tunnel_maybe_finish(t);
}

void dp_idle_tick(struct dp_worker *w, int res)
{
	/*
	 * -ETIME is the timeout expiring. Any other result (a ring that refuses
	 * timeouts) would come back at once on every retry: the tick stays
	 * "armed" for good, so that nothing re-arms it, and the limits go unenforced.
	 */
	if (res != -ETIME) {
		fg_error("worker %d: idle timer: %s; idle_timeout_s is not enforced and running "
			 "tunnels' bytes are told only at their close",
			 w->index, strerror(-res));
		return;
	}
	w->tick_armed = false;
	w->ticks++;
	for (struct dp_tunnel *t = w->tunnels, *next; t; t = next) {
		next = t->next; /* reap() may free @t */
		if (!t->idle_s || t->closing)
			continue;
		/*
		 * Its last bytes moved during tick active_tick, which has since
		 * ended: the whole ticks after it are a lower bound on the idle time.
		 */
		if (w->ticks - t->active_tick > t->idle_s)
			reap(t);
	}
	if (w->n_tunnels && w->handoff_open)
		queue_tick(w);
}
