// SPDX-License-Identifier: MIT
/*
 * A tunnel whose peer broke the protocol (a record that fails authentication,
 * is too long or malformed), once dp_tunnel_abort() reset its plaintext side:
 * the fatal alert RFC 8446 names goes out after whatever TX had in flight,
 * then our FIN, then what the peer still sends is read and dropped until its
 * EOF, an error or DP_LINGER_MS from the abort, then the tunnel is freed. A
 * close over unread bytes is a reset, and a peer that wrote before it read
 * would lose the alert to it.
 *
 * With kTLS the receive side is unusable after a bad record: every read fails
 * again on the record the kernel keeps (EBADMSG), and the error it set on the
 * socket (sk_err) fails the next send too. So the error is taken off the
 * socket (SO_ERROR) before the alert goes out through TX, and instead of
 * reading, the linger waits for the peer's FIN (POLLRDHUP); the close after it
 * resets only a peer that has finished.
 *
 * One deadline covers it all: an IORING_OP_TIMEOUT, completing as DP_OP_POLL
 * with -ETIME when it fires; then every operation on the TLS socket is
 * cancelled and the tunnel freed once they have all completed.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/tls.h>

#include "dataplane/dp.h"
#include "fedgate/log.h"
#include "fedgate/record.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

enum dp_linger_state {
	LINGER_TX = 1, /* what TX had in flight completes (and, userspace, is sent whole) */
	LINGER_ALERT,  /* the alert goes out */
	LINGER_DRAIN,  /* FIN sent; the peer's bytes are read and dropped, or its FIN awaited */
	LINGER_DONE,   /* waiting for the operations left, the deadline's removal included */
};

int dp_linger_start(struct dp_tunnel *t)
{
	const uint8_t alert[2] = {2, t->alert_desc};
	struct io_uring_sqe *sqe;
	ssize_t n;

	if (t->up_closing || t->up_done)
		return -EPIPE; /* close_notify went first: the peer reads nothing after it */
	if (t->kernel) {
		memcpy(t->alert_rec, alert, sizeof(alert));
		n = sizeof(alert);
	} else {
		/* Sealed now, after every record in up_out: its sequence number follows theirs. */
		n = fg_record_seal(&t->tx, FG_CT_ALERT, alert, sizeof(alert), t->alert_rec,
				   sizeof(t->alert_rec));
		if (n < 0)
			return (int)n;
	}
	t->alert_len = (uint8_t)n;
	t->alert_off = 0;
	t->linger_ts.tv_sec = DP_LINGER_MS / 1000;
	t->linger_ts.tv_nsec = (DP_LINGER_MS % 1000) * 1000000LL;
	sqe = dp_get_sqe(t->w);
	io_uring_prep_timeout(sqe, &t->linger_ts, 0, 0);
	dp_set_data(sqe, t, DP_OP_POLL);
	t->inflight++;
	t->linger_timer = true;
	t->linger = LINGER_TX;
	return 0;
}

/* The deadline passed: whatever still waits on the TLS socket completes now. */
static void expire(struct dp_tunnel *t)
{
	struct io_uring_sqe *sqe;

	t->linger_timer = false;
	if (t->linger != LINGER_DONE)
		fg_info("tunnel %s: %s did not finish within %d ms of its alert; closing", t->name,
			t->peer, DP_LINGER_MS);
	t->linger = LINGER_DONE;
	shutdown(t->tls_fd, SHUT_RDWR);
	sqe = dp_get_sqe(t->w);
	io_uring_prep_cancel_fd(sqe, t->tls_fd, IORING_ASYNC_CANCEL_ALL);
	dp_set_data(sqe, t, DP_OP_POLL);
	t->inflight++;
}

void dp_linger_complete(struct dp_tunnel *t, enum dp_op op, int res)
{
	if (op == DP_OP_POLL && res == -ETIME && t->linger_timer) {
		expire(t);
		return;
	}
	switch (t->linger) {
	case LINGER_TX:
		/*
		 * The userspace layer must finish a record it started, or the
		 * alert would land inside it; kTLS frames records itself (a
		 * failed send there may be the receive side's error, cleared
		 * before the alert).
		 */
		if (op == DP_OP_TLS_SEND && !t->kernel) {
			if (res < 0)
				t->linger = LINGER_DONE;
			else
				t->up_out_off += (size_t)res;
		}
		break;
	case LINGER_ALERT:
		if (op != DP_OP_TLS_SEND)
			break;
		if (res <= 0) {
			fg_info("tunnel %s: alert %s not sent: %s", t->name,
				dp_alert_name(t->alert_desc), res ? strerror(-res) : "closed");
			t->linger = LINGER_DONE;
			break;
		}
		t->alert_off += (uint8_t)res;
		if (t->alert_off < t->alert_len)
			break;
		fg_info("tunnel %s: sent fatal alert %s (%u) to %s", t->name,
			dp_alert_name(t->alert_desc), t->alert_desc, t->peer);
		shutdown(t->tls_fd, SHUT_WR);
		t->linger = LINGER_DRAIN;
		break;
	case LINGER_DRAIN:
		/* Userspace: bytes read, read on; EOF or an error ends it. kTLS: the FIN came. */
		if ((op == DP_OP_TLS_RECV && res <= 0) || op == DP_OP_DOWN_READY)
			t->linger = LINGER_DONE;
		break;
	}
}

/* The alert, through kTLS: a record of type alert by TLS_SET_RECORD_TYPE. */
static void send_kernel_alert(struct dp_tunnel *t)
{
	struct io_uring_sqe *sqe;
	struct cmsghdr *c;
	int err;
	socklen_t len = sizeof(err);

	/* A bad record left its error on the socket; TCP would refuse to send with it (EPIPE). */
	getsockopt(t->tls_fd, SOL_SOCKET, SO_ERROR, &err, &len);
	memset(&t->up_cmsg, 0, sizeof(t->up_cmsg));
	dp_prep_msg(&t->up_msg, &t->up_iov, t->alert_rec, t->alert_len, t->up_cmsg.buf,
		    sizeof(t->up_cmsg.buf));
	c = CMSG_FIRSTHDR(&t->up_msg);
	c->cmsg_level = SOL_TLS;
	c->cmsg_type = TLS_SET_RECORD_TYPE;
	c->cmsg_len = CMSG_LEN(sizeof(uint8_t));
	*CMSG_DATA(c) = FG_CT_ALERT;
	sqe = dp_get_sqe(t->w);
	io_uring_prep_sendmsg(sqe, t->tls_fd, &t->up_msg, MSG_NOSIGNAL);
	dp_set_data(sqe, t, DP_OP_TLS_SEND);
	t->inflight++;
}

/* What the peer still sends: read into the receive chunk and dropped, or (kTLS) its FIN. */
static void drain(struct dp_tunnel *t)
{
	struct io_uring_sqe *sqe;

	if (t->kernel) {
		sqe = dp_get_sqe(t->w);
		io_uring_prep_poll_add(sqe, t->tls_fd, POLLRDHUP);
		dp_set_data(sqe, t, DP_OP_DOWN_READY);
		t->inflight++;
		return;
	}
	if (dp_down_hold(t)) {
		t->linger = LINGER_DONE;
		return;
	}
	dp_queue_recv(t, DP_OP_TLS_RECV, t->tls_fd, t->down_in, DP_DOWN_IN, 0);
}

bool dp_linger_step(struct dp_tunnel *t)
{
	struct io_uring_sqe *sqe;

	/* Each step waits for every operation but the deadline. */
	if (t->inflight > (t->linger_timer ? 1u : 0u))
		return false;
	switch (t->linger) {
	case LINGER_TX:
		if (!t->kernel && t->up_out && t->up_out_off < t->up_out_len) {
			dp_queue_send(t, DP_OP_TLS_SEND, t->tls_fd, t->up_out + t->up_out_off,
				      t->up_out_len - t->up_out_off);
			return false;
		}
		t->linger = LINGER_ALERT;
		/* fall through */
	case LINGER_ALERT:
		if (t->kernel)
			send_kernel_alert(t);
		else
			dp_queue_send(t, DP_OP_TLS_SEND, t->tls_fd, t->alert_rec + t->alert_off,
				      t->alert_len - t->alert_off);
		return false;
	case LINGER_DRAIN:
		drain(t);
		if (t->linger == LINGER_DRAIN)
			return false;
		break;
	}
	if (t->linger_timer) {
		sqe = dp_get_sqe(t->w);
		io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)t | DP_OP_POLL, 0);
		dp_set_data(sqe, t, DP_OP_POLL);
		t->inflight++;
		t->linger_timer = false; /* its completion (-ECANCELED) is only counted */
	}
	return t->inflight == 0;
}
