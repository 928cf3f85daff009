// SPDX-License-Identifier: MIT
/* One data plane worker: an io_uring, a handoff socket, and the tunnels it was given. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "dataplane/dp.h"
#include "fedgate/handoff.h"
#include "fedgate/log.h"
#include "dataplane/worker.h"

#define RING_ENTRIES 1024

static void queue_handoff(struct dp_worker *w)
{
	struct io_uring_sqe *sqe = dp_get_sqe(w);

	dp_prep_msg(&w->msg, &w->iov, w->h, sizeof(*w->h), w->cmsg.buf, sizeof(w->cmsg.buf));
	io_uring_prep_recvmsg(sqe, w->handoff_fd, &w->msg, MSG_CMSG_CLOEXEC);
	dp_set_data(sqe, w, DP_OP_HANDOFF);
}

static int send_answer(struct dp_worker *w, uint32_t id, int err)
{
	struct fg_handoff_ack a = {
	    .magic = FG_HANDOFF_ACK_MAGIC,
	    .id = id,
	    .err = err,
	    .n_tunnels = (uint32_t)w->n_tunnels,
	};
	int ret = fg_handoff_send_small(w->handoff_fd, &a, sizeof(a));

	if (!ret)
		w->n_reported = w->n_tunnels;
	return ret;
}

/*
 * Tells the control process what became of handoff @id (0: only the tunnel
 * count). A full socket (the control loop busy while tunnels come and go)
 * keeps the answer for when it has room: an answer lost would make the
 * control process take this worker for wedged and kill the data plane.
 */
static void answer(struct dp_worker *w, uint32_t id, int err)
{
	int ret = w->n_acks ? -EAGAIN : send_answer(w, id, err);

	if (!ret || !id) /* a count that did not go is sent with the next batch */
		return;
	if (ret == -EAGAIN && w->n_acks < sizeof(w->acks) / sizeof(w->acks[0])) {
		w->acks[w->n_acks].id = id;
		w->acks[w->n_acks++].err = err;
		return;
	}
	fg_error("worker %d: cannot answer handoff %u: %s", w->index, id, strerror(-ret));
}

/*
 * After each batch of completions: the answers that waited, then the close
 * reports, then the count; what still finds no room waits for a POLLOUT.
 */
static void report(struct dp_worker *w)
{
	size_t done = 0;
	int ret = 0;

	while (done < w->n_acks && !(ret = send_answer(w, w->acks[done].id, w->acks[done].err)))
		done++;
	if (ret && ret != -EAGAIN) {
		fg_error("worker %d: cannot answer handoff %u: %s", w->index, w->acks[done].id,
			 strerror(-ret));
		done++;
	}
	memmove(w->acks, w->acks + done, (w->n_acks - done) * sizeof(w->acks[0]));
	w->n_acks -= done;
	if (!w->n_acks && w->n_closed)
		dp_closed_flush(w, false);
	if (!w->n_acks && w->n_tunnels != w->n_reported && !w->n_closed)
		send_answer(w, 0, 0);
	if ((w->n_acks || w->n_closed) && !w->report_poll && w->handoff_open) {
		struct io_uring_sqe *sqe = dp_get_sqe(w);

		io_uring_prep_poll_add(sqe, w->handoff_fd, POLLOUT);
		dp_set_data(sqe, w, DP_OP_REPORT);
		w->report_poll = true;
	}
}

/*
 * The control process revoked handoff @r->id: its peer no longer passes. Its
 * TLS peer gets the alert, its plaintext side a reset (dp_tunnel_abort). The
 * linger waits for every operation first, and an idle tunnel's wait for the
 * peer's next record would never end: those are cancelled (a send is not,
 * so that the alert never lands inside a record).
 */
static void revoke_tunnel(struct dp_worker *w, const struct fg_handoff_revoke *r)
{
	static const enum dp_op waits[] = {DP_OP_DOWN_READY, DP_OP_TLS_RECV};

	for (struct dp_tunnel *t = w->tunnels; t; t = t->next) {
		if (t->id != r->id || t->closing)
			continue;
		for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
			struct io_uring_sqe *sqe = dp_get_sqe(w);

			io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)t | waits[i],
					       IORING_ASYNC_CANCEL_ALL);
			dp_set_data(sqe, t, DP_OP_POLL); /* its result is not needed */
			t->inflight++;
		}
		dp_peer_error(t, (uint8_t)r->alert);
		dp_tunnel_abort(t, "revoked by the control process: its peer no longer passes "
				   "(the control process's log names the rule)");
		return;
	}
}

static void handle_handoff(struct dp_worker *w, int res)
{
	struct fg_handoff_revoke r;
	struct fg_handoff_drain d;
	int fds[2], ret;
	uint32_t id;

	if (res <= 0) {
		if (res < 0 && res != -EINTR && res != -EAGAIN)
			fg_error("worker %d: handoff socket: %s", w->index, strerror(-res));
		if (res == 0 || (res != -EINTR && res != -EAGAIN)) {
			w->handoff_open = false;
			return;
		}
		queue_handoff(w);
		return;
	}
	if (!fg_handoff_drain_check(w->h, (size_t)res, &d)) {
		dp_drain_start(w, d.deadline_ms);
		queue_handoff(w);
		return;
	}
	if (!fg_handoff_revoke_check(w->h, (size_t)res, &r)) {
		revoke_tunnel(w, &r);
		queue_handoff(w);
		return;
	}
	id = fg_handoff_id(w->h, (size_t)res);
	ret = fg_handoff_parse(&w->msg, (size_t)res, w->h, fds);
	if (ret == -EMFILE) {
		fg_error("worker %d: handoff %u (tunnel %.63s): its sockets did not arrive "
			 "(MSG_CTRUNC: out of file descriptors?); refused",
			 w->index, id, w->h->tunnel);
	} else if (ret) {
		fg_error("worker %d: malformed handoff message dropped", w->index);
	} else if (w->drain_phase) {
		/* The control process stops handing off before it drains: never reached. */
		close(fds[0]);
		close(fds[1]);
		ret = -ESHUTDOWN;
	} else {
		ret = dp_tunnel_start(w, w->h, fds[0], fds[1]);
		if (ret)
			fg_error("worker %d: tunnel %s: cannot start: %s", w->index, w->h->tunnel,
				 strerror(-ret));
	}
	if (id)
		answer(w, id, ret);
	OPENSSL_cleanse(w->h, (size_t)res);
	queue_handoff(w);
}

static void handle_cqe(struct dp_worker *w, const struct io_uring_cqe *cqe)
{
	uint64_t data = io_uring_cqe_get_data64(cqe);
	enum dp_op op = (enum dp_op)(data & DP_OP_MASK);
	void *owner = (void *)(uintptr_t)(data & ~(uint64_t)DP_OP_MASK);

	switch (op) {
	case DP_OP_HANDOFF:
		handle_handoff(w, cqe->res);
		break;
	case DP_OP_DRAIN:
		dp_drain_timeout(w);
		break;
	case DP_OP_PLAIN_RECV:
	case DP_OP_TLS_RECV:
	{
		int res = cqe->res;

		dp_bufring_take(w, owner, op, &res, cqe->flags);
		dp_tunnel_complete(owner, op, res);
		break;
	}
	case DP_OP_TLS_SEND:
	case DP_OP_PLAIN_SEND:
	case DP_OP_POLL:
	case DP_OP_UP_READY:
	case DP_OP_DOWN_READY:
		dp_tunnel_complete(owner, op, cqe->res);
		break;
	case DP_OP_TICK:
		dp_idle_tick(owner, cqe->res);
		/* Answers and close reports wait: they go first, and the socket is full. */
		if (cqe->res == -ETIME && !w->n_acks && !w->n_closed)
			dp_bytes_report(w);
		break;
	case DP_OP_REPORT: /* report() runs after the batch */
		w->report_poll = false;
		break;
	}
}

int dp_worker_run(int index, int handoff_fd, const struct fg_dp_opts *o, struct fg_legs_slot *legs)
{
	struct dp_worker *w;
	int ret;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->index = index;
	w->handoff_fd = handoff_fd;
	w->kernel = o->backend != FG_DP_USERSPACE;
	w->kernel_required = o->backend == FG_DP_KERNEL_ONLY;
	w->splice_tx = o->splice_tx;
	w->legs = legs;
	w->h = malloc(sizeof(*w->h));
	if (!w->h) {
		ret = -ENOMEM;
		goto free_worker;
	}
	/*
	 * One thread submits and reaps, always waiting in io_uring_enter: task
	 * work may run there only (DEFER_TASKRUN, kernel 6.1+), at no cost to a
	 * completion's latency. Older kernels refuse the flags: then none.
	 */
	ret = io_uring_queue_init(RING_ENTRIES, &w->ring,
				  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
	if (ret == -EINVAL)
		ret = io_uring_queue_init(RING_ENTRIES, &w->ring, 0);
	if (ret) {
		fg_error("worker %d: io_uring_queue_init: %s", index, strerror(-ret));
		goto free_buf;
	}
	ret = dp_bufring_init(w);
	if (ret) {
		fg_error("worker %d: provided-buffer ring: %s", index, strerror(-ret));
		io_uring_queue_exit(&w->ring);
		goto free_buf;
	}
	w->handoff_open = true;
	queue_handoff(w);
	/* A drained worker is done once its last tunnel is. */
	while (w->handoff_open && !(w->drain_phase && !w->n_tunnels)) {
		struct io_uring_cqe *cqe;
		unsigned int head, seen = 0;

		ret = io_uring_submit_and_wait(&w->ring, 1);
		if (ret < 0 && ret != -EINTR) {
			fg_error("worker %d: io_uring_submit_and_wait: %s", index, strerror(-ret));
			break;
		}
		io_uring_for_each_cqe(&w->ring, head, cqe)
		{
			handle_cqe(w, cqe);
			seen++;
		}
		io_uring_cq_advance(&w->ring, seen);
		/* Tunnels that ended are named, then counted, for the control process. */
		report(w);
	}
	ret = ret < 0 && ret != -EINTR ? ret : 0;
	/*
	 * The control process is gone: nothing hands us work any more. Tunnels
	 * with operations in flight are closed by the process exit.
	 */
	for (struct dp_tunnel *t = w->tunnels, *next; t; t = next) {
		next = t->next;
		dp_tunnel_abort(t, "data plane stopping");
	}
	dp_closed_flush(w, true);
	dp_bufring_exit(w);
	io_uring_queue_exit(&w->ring);
	dp_pool_exit(&w->pool);
free_buf:
	OPENSSL_cleanse(w->h, sizeof(*w->h));
	free(w->h);
free_worker:
	free(w);
	return ret;
}
