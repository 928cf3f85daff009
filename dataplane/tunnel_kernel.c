// SPDX-License-Identifier: MIT
/*
 * The kernel backend: kTLS on the TLS socket seals and opens records; the data
 * plane moves plaintext both ways. Reads use recvmsg with a control buffer:
 * without one, a non-data record (alert, NewSessionTicket) fails with EIO.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/tls.h>

#include "dataplane/dp.h"
#include "fedgate/log.h"
#include "fedgate/record-t.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* ---- plaintext -> kernel ---- */

static void up_send(struct dp_tunnel *t)
{
	dp_queue_send(t, DP_OP_TLS_SEND, t->tls_fd, t->up_in + t->up_out_off,
		      t->up_out_len - t->up_out_off);
}

/* close_notify: a 2-byte record of type alert, through TLS_SET_RECORD_TYPE. */
static void up_close_notify(struct dp_tunnel *t)
{
	static const uint8_t close_notify[2] = { 1, TLS_ALERT_CLOSE_NOTIFY };
	struct io_uring_sqe *sqe = dp_get_sqe(t->w);
	struct cmsghdr *c;

	/* The kernel only reads it; the plaintext side is done with its chunk. */
	dp_up_release(t);
	memset(&t->up_cmsg, 0, sizeof(t->up_cmsg));
	dp_prep_msg(&t->up_msg, &t->up_iov, (void *)close_notify, sizeof(close_notify),
		    t->up_cmsg.buf, sizeof(t->up_cmsg.buf));
	c = CMSG_FIRSTHDR(&t->up_msg);
	c->cmsg_level = SOL_TLS;
	c->cmsg_type = TLS_SET_RECORD_TYPE;
	c->cmsg_len = CMSG_LEN(sizeof(uint8_t));
	*CMSG_DATA(c) = FG_CT_ALERT;
	io_uring_prep_sendmsg(sqe, t->tls_fd, &t->up_msg, MSG_NOSIGNAL);
	dp_set_data(sqe, t, DP_OP_TLS_SEND);
	t->inflight++;
	t->up_closing = true;
	t->up_out_len = sizeof(close_notify);
	t->up_out_off = 0;
}

/* A plaintext read's result: true when @res bytes now wait to go out, else handled. */
static bool up_took(struct dp_tunnel *t, int res, const char *what)
{
	if (res < 0) {
		dp_tunnel_abort_plain(t, what, -res);
		return false;
	}
	if (res == 0) {
		up_close_notify(t);
		return false;
	}
	t->up_out_len = (size_t)res;
	t->up_out_off = 0;
	t->bytes_up += (uint64_t)res;
	return true;
}

static void handle_plain_recv(struct dp_tunnel *t, int res)
{
	if (!dp_idle(t, DP_OP_UP_READY, res) && up_took(t, res, "reading plaintext"))
		up_send(t);
}

static void handle_tls_send(struct dp_tunnel *t, int res)
{
	if (res < 0) {
		dp_tunnel_abort_errno(t, "sending to the kTLS socket", -res);
		return;
	}
	t->up_out_off += (size_t)res;
	if (t->up_out_off < t->up_out_len) {
		if (t->up_closing) /* a record is atomic: a short alert never happens */
			dp_tunnel_abort(t, "close_notify not sent whole");
		else
			up_send(t);
	} else if (t->up_closing) {
		dp_up_finish(t); /* its chunk went back with the close_notify */
	} else {
		dp_up_recv(t);
	}
}

/* ---- kernel -> plaintext ---- */

/* A record is opened whole by the kernel, so nothing is pending while this waits. */
static void down_recv(struct dp_tunnel *t)
{
	struct io_uring_sqe *sqe;

	if (dp_down_hold(t)) {
		dp_tunnel_abort(t, "out of memory for buffers");
		return;
	}
	sqe = dp_get_sqe(t->w);
	dp_prep_msg(&t->down_msg, &t->down_iov, t->down_out, DP_DOWN_OUT, t->down_cmsg.buf,
		    sizeof(t->down_cmsg.buf));
	io_uring_prep_recvmsg(sqe, t->tls_fd, &t->down_msg, MSG_DONTWAIT);
	dp_set_data(sqe, t, DP_OP_TLS_RECV);
	t->inflight++;
}

static int record_type(const struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c))
		if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE)
			return *CMSG_DATA(c);
	return FG_CT_APPLICATION_DATA;
}

/* A non-data record the kernel decrypted. Returns 1 to read on, 0 at close_notify, <0 to abort. */
static int down_control(struct dp_tunnel *t, int type, const uint8_t *p, size_t len)
{
	switch (type) {
	case FG_CT_ALERT:
		return dp_down_alert(t, p, len);
	case FG_CT_HANDSHAKE:
		if (len >= 4 && p[0] == TLS_HS_NEW_SESSION_TICKET) {
			fg_debug("tunnel %s: ignored a NewSessionTicket", t->name);
			return 1;
		}
		if (len >= 4 && p[0] == TLS_HS_KEY_UPDATE) {
			/*
			 * Linux before 6.14 cannot take a second TLS_RX key (EBUSY),
			 * and the records after this one are under it. Our TX key is
			 * still the peer's RX key: internal_error (RFC 8446 6.2, a
			 * failure of ours, not the peer's) tells it why the stream ends.
			 */
			fg_warn("tunnel %s: peer sent KeyUpdate, and kernel TLS on this kernel "
				"cannot rekey; closing the tunnel with internal_error",
				t->name);
			dp_peer_error(t, TLS_ALERT_INTERNAL_ERROR);
			return -EKEYEXPIRED;
		}
		fg_warn("tunnel %s: unexpected post-handshake message type %u", t->name,
			len ? p[0] : 0);
		return dp_peer_error(t, TLS_ALERT_UNEXPECTED_MESSAGE);
	}
	fg_warn("tunnel %s: unexpected record type %d", t->name, type);
	return dp_peer_error(t, TLS_ALERT_UNEXPECTED_MESSAGE);
}

static void handle_tls_recv(struct dp_tunnel *t, int res)
{
	int type, ret;

	if (dp_idle(t, DP_OP_DOWN_READY, res))
		return;
	if (res < 0) {
		dp_tunnel_abort_record(t, res, NULL);
		return;
	}
	if (res == 0) { /* down_in_len is 0: the kernel holds partial records */
		dp_down_closed(t);
		return;
	}
	type = record_type(&t->down_msg);
	if (type == FG_CT_APPLICATION_DATA) {
		t->down_out_len = (size_t)res;
		t->down_out_off = 0;
		t->bytes_down += (uint64_t)res;
		dp_down_send(t);
		return;
	}
	ret = down_control(t, type, t->down_out, (size_t)res);
	if (ret < 0)
		dp_tunnel_abort(t, dp_down_error(ret));
	else if (ret == 0)
		dp_down_finish(t);
	else
		down_recv(t);
}

static void handle_plain_send(struct dp_tunnel *t, int res)
{
	if (dp_down_sent(t, res))
		down_recv(t);
}

/*
 * ---- plaintext -> kernel by splice ----
 * io_uring runs every splice in an io-wq worker thread, where it may block, so
 * a read waits for readiness first (a linked poll): an idle tunnel then parks
 * no kernel thread. The write end may block on a full socket buffer, which is
 * the backpressure. Bytes move plain socket -> pipe -> kTLS without a copy into
 * userspace; the pipe is empty whenever a read is queued.
 */

static void up_splice_in(struct dp_tunnel *t)
{
	struct io_uring_sqe *sqe;

	/* A link must not straddle a submit: the splice would run unlinked and block. */
	if (io_uring_sq_space_left(&t->w->ring) < 2)
		io_uring_submit(&t->w->ring);
	sqe = dp_get_sqe(t->w);

	io_uring_prep_poll_add(sqe, t->plain_fd, POLLIN | POLLRDHUP);
	sqe->flags |= IOSQE_IO_LINK;
	dp_set_data(sqe, t, DP_OP_POLL);
	t->inflight++;
	sqe = dp_get_sqe(t->w);
	io_uring_prep_splice(sqe, t->plain_fd, -1, t->pipe[1], -1, DP_SPLICE_LEN,
			     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	dp_set_data(sqe, t, DP_OP_PLAIN_RECV);
	t->inflight++;
}

static void up_splice_out(struct dp_tunnel *t)
{
	struct io_uring_sqe *sqe = dp_get_sqe(t->w);

	io_uring_prep_splice(sqe, t->pipe[0], -1, t->tls_fd, -1,
			     (unsigned int)(t->up_out_len - t->up_out_off), SPLICE_F_MOVE);
	dp_set_data(sqe, t, DP_OP_TLS_SEND);
	t->inflight++;
}

static void handle_splice_in(struct dp_tunnel *t, int res)
{
	if (res == -EAGAIN) /* readiness was spurious */
		up_splice_in(t);
	else if (up_took(t, res, "splicing plaintext into the pipe"))
		up_splice_out(t);
}

static void handle_splice_out(struct dp_tunnel *t, int res)
{
	if (t->up_closing) { /* the close_notify went by sendmsg */
		handle_tls_send(t, res);
		return;
	}
	if (res <= 0) {
		dp_tunnel_abort_errno(t, "splicing into the kTLS socket", res ? -res : EPIPE);
		return;
	}
	t->up_out_off += (size_t)res;
	if (t->up_out_off < t->up_out_len)
		up_splice_out(t);
	else
		up_splice_in(t);
}

static void start(struct dp_tunnel *t)
{
	if (t->splice)
		up_splice_in(t);
	else
		dp_up_recv(t);
	if (t->down_out_len)
		dp_down_send(t);
	else
		down_recv(t);
}

const struct dp_backend dp_kernel_backend = {
	.name = "kernel TLS",
	.start = start,
	.up_recv = dp_up_recv,
	.down_recv = down_recv,
	.plain_recv = handle_plain_recv,
	.tls_send = handle_tls_send,
	.tls_recv = handle_tls_recv,
	.plain_send = handle_plain_send,
};

const struct dp_backend dp_kernel_splice_backend = {
	.name = "kernel TLS, TX by splice",
	.start = start,
	.up_recv = up_splice_in,
	.down_recv = down_recv,
	.plain_recv = handle_splice_in,
	.tls_send = handle_splice_out,
	.tls_recv = handle_tls_recv,
	.plain_send = handle_plain_send,
};
