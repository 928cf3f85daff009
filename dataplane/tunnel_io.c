// SPDX-License-Identifier: MIT
/*
 * The lowest layer of a tunnel's life: a submission entry, a message header,
 * one queued send or receive (counted in @inflight), and a direction's chunk
 * held from the worker's pool and released. It calls nothing above it, so the
 * end of a tunnel (tunnel_ops.c) and its linger (linger.c) both build on it.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "dataplane/dp.h"

struct io_uring_sqe *dp_get_sqe(struct dp_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	while (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

void dp_prep_msg(struct msghdr *msg, struct iovec *iov, void *buf, size_t len, void *control,
		 size_t control_len)
{
	iov->iov_base = buf;
	iov->iov_len = len;
	memset(msg, 0, sizeof(*msg));
	msg->msg_iov = iov;
	msg->msg_iovlen = 1;
	msg->msg_control = control;
	msg->msg_controllen = control_len;
}

void dp_queue_recv(struct dp_tunnel *t, enum dp_op op, int fd, void *buf, size_t len, int flags)
{
	struct io_uring_sqe *sqe = dp_get_sqe(t->w);

	io_uring_prep_recv(sqe, fd, buf, len, flags);
	dp_set_data(sqe, t, op);
	t->inflight++;
	if (op == DP_OP_PLAIN_RECV)
		t->up_want = (uint32_t)len;
	else if (op == DP_OP_TLS_RECV)
		t->down_want = (uint32_t)len;
}

void dp_queue_armed(struct dp_tunnel *t, enum dp_op op, int fd)
{
	struct io_uring_sqe *sqe = dp_get_sqe(t->w);

	io_uring_prep_recv(sqe, fd, NULL, DP_RING_BUF, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = DP_RING_BGID;
	dp_set_data(sqe, t, op);
	t->inflight++;
	if (op == DP_OP_PLAIN_RECV) {
		t->up_want = DP_RING_BUF;
		t->up_armed = true;
	} else {
		t->down_want = DP_RING_BUF;
		t->down_armed = true;
	}
}

void dp_queue_send(struct dp_tunnel *t, enum dp_op op, int fd, const void *buf, size_t len)
{
	struct io_uring_sqe *sqe = dp_get_sqe(t->w);

	io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
	dp_set_data(sqe, t, op);
	t->inflight++;
}

/* A chunk for one direction: @in at its start, @out @in_len bytes on. 0 or -ENOMEM. */
static int hold(struct dp_tunnel *t, uint8_t **in, uint8_t **out, size_t in_len)
{
	if (!*in) {
		*in = dp_pool_get(&t->w->pool);
		if (!*in)
			return -ENOMEM;
		*out = *in + in_len;
	}
	return 0;
}

int dp_up_hold(struct dp_tunnel *t)
{
	return hold(t, &t->up_in, &t->up_out, DP_UP_IN);
}

int dp_down_hold(struct dp_tunnel *t)
{
	return hold(t, &t->down_in, &t->down_out, DP_DOWN_IN);
}

void dp_up_release(struct dp_tunnel *t)
{
	dp_pool_put(&t->w->pool, t->up_in);
	t->up_in = t->up_out = NULL;
}

void dp_down_release(struct dp_tunnel *t)
{
	dp_pool_put(&t->w->pool, t->down_in);
	t->down_in = t->down_out = NULL;
}
