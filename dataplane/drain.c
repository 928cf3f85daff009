// SPDX-License-Identifier: MIT
/*
 * A drain (the control process got SIGTERM): the worker takes no more
 * tunnels; those running may finish until the deadline. Then each stops
 * cleanly: its next plaintext read is taken for the end of the stream, so
 * the backend's own path sends close_notify and a FIN to the TLS peer; the
 * plaintext side gets what was already opened, and then a FIN. Whatever has not ended a grace later
 * is aborted. The worker's loop ends once it has no tunnel left (worker.c).
 */
#include <errno.h>
#include <sys/socket.h>

#include "dataplane/dp.h"
#include "fedgate/log.h"


static void arm(struct dp_worker *w, uint32_t ms)
{
	struct io_uring_sqe *sqe = dp_get_sqe(w);

	w->drain_ts.tv_sec = ms / 1000;
	w->drain_ts.tv_nsec = (long long)(ms % 1000) * 1000000;
	io_uring_prep_timeout(sqe, &w->drain_ts, 0, 0);
	dp_set_data(sqe, w, DP_OP_DRAIN);
}

static void stop_all(struct dp_worker *w)
{
	for (struct dp_tunnel *t = w->tunnels; t; t = t->next) {
		if (t->closing || t->stopping)
			continue;
		t->stopping = true;
		shutdown(t->plain_fd, SHUT_RD);
		shutdown(t->tls_fd, SHUT_RD);
	}
}

void dp_drain_start(struct dp_worker *w, uint32_t deadline_ms)
{
	if (w->drain_phase)
		return;
	fg_info("worker %d: draining: %zu tunnel(s) may run for %u ms", w->index, w->n_tunnels,
		deadline_ms);
	w->drain_phase = 1;
	arm(w, deadline_ms);
}

void dp_drain_timeout(struct dp_worker *w)
{
	struct dp_tunnel *t, *next;

	if (w->drain_phase == 1) {
		if (w->n_tunnels)
			fg_info(
			    "worker %d: drain deadline: closing %zu tunnel(s) with close_notify",
			    w->index, w->n_tunnels);
		w->drain_phase = 2;
		stop_all(w);
		arm(w, FG_DRAIN_GRACE_MS);
		return;
	}
	for (t = w->tunnels; t; t = next) {
		next = t->next;
		dp_tunnel_abort(t, "drain: did not close in time");
	}
}

bool dp_drain_step(struct dp_tunnel *t, enum dp_op op, int *res)
{
	/*
	 * A plaintext side shut for reading still returns what keeps arriving:
	 * the read that completes is taken for its end, and the backend sends
	 * close_notify (what it read is dropped: the deadline cuts the stream).
	 * So is an error: once the other direction has sent its FIN, the
	 * kernel resets a socket shut both ways that still receives data (RFC
	 * 1122 4.2.2.13; TCPAbortOnData), and the service that kept writing
	 * gets that reset, while the TLS peer must still get close_notify.
	 */
	if (op == DP_OP_PLAIN_RECV) {
		if (*res > 0 || (*res < 0 && *res != -EAGAIN))
			*res = 0;
		return false;
	}
	if (t->down_done)
		return false;
	switch (op) {
	case DP_OP_PLAIN_SEND:
		/* Aborted, or the rest of down_out queued: nothing more here. */
		if (!dp_down_sent(t, *res))
			return true;
		break;
	case DP_OP_TLS_RECV:
		/* What came is opened and delivered first; 0 is the shutdown. */
		if (*res != 0)
			return false;
		break;
	case DP_OP_DOWN_READY:
		break;
	default:
		return false;
	}
	dp_down_finish(t);
	return true;
}
