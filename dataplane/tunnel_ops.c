// SPDX-License-Identifier: MIT
/*
 * The steps both backends take: idling, half-closing, aborting and freeing a
 * tunnel (the operations and chunks they queue and hold are tunnel_io.c's).
 * Each direction has at most one operation in flight and reads again only
 * when its last write completed, which is the backpressure: a slow reader
 * stops reads on the other side. Nothing here calls a backend or the worker.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/dp.h"
#include "fedgate/legs.h"
#include "fedgate/log.h"
#include "fedgate/record.h"

static void tunnel_free(struct dp_tunnel *t)
{
	struct dp_worker *w = t->w;

	if (t->legs)
		fg_legs_close_reader(t->legs, t->plain_fd); /* a reset if bytes are left unread */
	else if (t->plain_fd >= 0)
		close(t->plain_fd);
	if (t->tls_fd >= 0)
		close(t->tls_fd);
	for (int i = 0; i < 2; i++)
		if (t->pipe[i] >= 0)
			close(t->pipe[i]);
	fg_record_exit(&t->tx);
	fg_record_exit(&t->rx);
	dp_pool_put(&w->pool, t->up_in);
	dp_pool_put(&w->pool, t->down_in);
	if (t->prev)
		t->prev->next = t->next;
	else
		w->tunnels = t->next;
	if (t->next)
		t->next->prev = t->prev;
	w->n_tunnels--;
	dp_closed_note(w, t);
	free(t);
}

void dp_tunnel_maybe_finish(struct dp_tunnel *t)
{
	if (t->linger) {
		if (dp_linger_step(t))
			tunnel_free(t);
		return;
	}
	if (t->inflight)
		return;
	if (t->closing) {
		tunnel_free(t);
	} else if (t->up_done && t->down_done) {
		fg_info("tunnel %s: %s closed: %llu bytes to peer, %llu bytes from peer", t->name,
			t->peer, (unsigned long long)t->bytes_up,
			(unsigned long long)t->bytes_down);
		tunnel_free(t);
	}
}

/*
 * A reset, never a FIN, and whatever waits on the socket completes at once.
 * connect(AF_UNSPEC) is tcp_disconnect(): RST, queues dropped, waiters woken;
 * the shutdown() after it wakes whoever is left and sends nothing. A kTLS
 * socket refuses to disconnect (EOPNOTSUPP), and a shutdown() would send a FIN
 * that the peer takes for the end of the stream before the reset comes: it
 * gets a zero linger instead, its pending operations are cancelled, and the
 * close that follows once they completed (tunnel_free) sends the reset.
 */
static void reset_socket(struct dp_tunnel *t, int fd)
{
	static const struct sockaddr unspec = {.sa_family = AF_UNSPEC};
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct io_uring_sqe *sqe;

	if (!connect(fd, &unspec, sizeof(unspec))) {
		shutdown(fd, SHUT_RDWR);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	sqe = dp_get_sqe(t->w);
	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	dp_set_data(sqe, t, DP_OP_POLL); /* its result is not needed */
	t->inflight++;
}

/*
 * An aborted stream must not look complete to the application: the plaintext
 * side always gets a reset. The TLS peer gets one when the plaintext side
 * broke (so its application sees the reset too, as over a VPN); when the TLS
 * peer itself broke the protocol, it gets its alert and a FIN, then the
 * linger (linger.c); otherwise its connection is closed (FIN) as before.
 */
void dp_tunnel_abort(struct dp_tunnel *t, const char *why)
{
	if (!t->closing) {
		fg_warn("tunnel %s: %s closed: %s", t->name, t->peer, why);
		reset_socket(t, t->plain_fd);
		if (t->reset_tls)
			reset_socket(t, t->tls_fd);
		else if (!t->alert_due || dp_linger_start(t))
			shutdown(t->tls_fd, SHUT_RDWR);
	}
	t->closing = true;
	dp_tunnel_maybe_finish(t);
}

void dp_tunnel_abort_plain(struct dp_tunnel *t, const char *what, int err)
{
	t->reset_tls = true;
	dp_tunnel_abort_errno(t, what, err);
}

void dp_tunnel_abort_errno(struct dp_tunnel *t, const char *what, int err)
{
	char why[256];

	snprintf(why, sizeof(why), "%s: %s", what, strerror(err));
	dp_tunnel_abort(t, why);
}

void dp_tunnel_abort_record(struct dp_tunnel *t, int err, const uint8_t *hdr)
{
	int alert = dp_record_alert(err, hdr);
	char why[128];

	if (alert >= 0)
		dp_peer_error(t, (uint8_t)alert);
	snprintf(why, sizeof(why), "from peer: %s", dp_record_error(err));
	dp_tunnel_abort(t, why);
}

/* Its chunk goes back, and with userspace records its cipher context: an idle direction needs neither. */
static void release(struct dp_tunnel *t, bool up)
{
	if (up)
		dp_up_release(t);
	else
		dp_down_release(t);
	if (!t->kernel)
		fg_record_park(up ? &t->tx : &t->rx);
}

/* A ring to read into, and a direction read by recv: kTLS's records need recvmsg. */
static bool can_arm(const struct dp_tunnel *t, bool up)
{
	return t->w->br && (up || !t->kernel);
}

bool dp_idle(struct dp_tunnel *t, enum dp_op op, int res)
{
	struct io_uring_sqe *sqe;
	bool up = op == DP_OP_UP_READY;

	if (res != -EAGAIN && res != -ENOBUFS)
		return false;
	release(t, up);
	/* -ENOBUFS: the ring ran dry in one batch; a poll this time, not another try at once. */
	if (res == -EAGAIN && can_arm(t, up)) {
		dp_queue_armed(t, up ? DP_OP_PLAIN_RECV : DP_OP_TLS_RECV, up ? t->plain_fd : t->tls_fd);
		return true;
	}
	sqe = dp_get_sqe(t->w);
	io_uring_prep_poll_add(sqe, up ? t->plain_fd : t->tls_fd, POLLIN | POLLRDHUP);
	dp_set_data(sqe, t, op);
	t->inflight++;
	return true;
}

bool dp_rest(struct dp_tunnel *t, enum dp_op op)
{
	bool up = op == DP_OP_PLAIN_RECV;

	if (!can_arm(t, up) || !(up ? t->up_drained : t->down_drained))
		return false;
	if (!up && (t->down_in_len || t->down_out_len))
		return false;
	release(t, up);
	dp_queue_armed(t, op, up ? t->plain_fd : t->tls_fd);
	return true;
}

void dp_up_recv(struct dp_tunnel *t)
{
	if (dp_rest(t, DP_OP_PLAIN_RECV))
		return;
	if (dp_up_hold(t)) {
		dp_tunnel_abort(t, "out of memory for buffers");
		return;
	}
	dp_queue_recv(t, DP_OP_PLAIN_RECV, t->plain_fd, t->up_in, DP_UP_IN, MSG_DONTWAIT);
}

void dp_up_finish(struct dp_tunnel *t)
{
	dp_up_release(t);
	shutdown(t->tls_fd, SHUT_WR);
	t->up_done = true;
	dp_tunnel_maybe_finish(t);
}

void dp_down_send(struct dp_tunnel *t)
{
	dp_queue_send(t, DP_OP_PLAIN_SEND, t->plain_fd, t->down_out + t->down_out_off,
		      t->down_out_len - t->down_out_off);
}

bool dp_down_sent(struct dp_tunnel *t, int res)
{
	if (res < 0) {
		dp_tunnel_abort_plain(t, "sending plaintext", -res);
		return false;
	}
	t->down_out_off += (size_t)res;
	if (t->down_out_off < t->down_out_len) {
		dp_down_send(t);
		return false;
	}
	t->down_out_len = t->down_out_off = 0;
	return true;
}

void dp_down_closed(struct dp_tunnel *t)
{
	/* A cut record is a truncated stream: the plaintext side must see a reset, not a FIN. */
	if (t->down_in_len) {
		fg_warn("tunnel %s: peer closed inside a record (%zu bytes dropped)", t->name,
			t->down_in_len);
		dp_tunnel_abort(t, "the stream was cut inside a record");
		return;
	}
	fg_info("tunnel %s: peer closed without close_notify", t->name);
	dp_down_finish(t);
}

void dp_down_finish(struct dp_tunnel *t)
{
	t->down_eof = true;
	dp_down_release(t);
	shutdown(t->plain_fd, SHUT_WR);
	t->down_done = true;
	dp_tunnel_maybe_finish(t);
}
