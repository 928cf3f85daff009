// SPDX-License-Identifier: MIT
/*
 * The worker's provided-buffer ring (io_uring_register_buf_ring, kernel
 * 5.19+): DP_RING_BUFS buffers of DP_RING_BUF bytes that armed reads
 * (dp_queue_armed) complete into. An idle tunnel thereby waits with one
 * read in flight and no buffer of its own, as it did with a poll, but wakes
 * with its bytes: one completion per message instead of a poll completion
 * and then a read (bench/latency-profile.md). Each buffer is copied into its
 * tunnel's chunk as soon as its completion is seen and goes straight back,
 * so a small ring serves many tunnels. Only the owning worker touches it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <openssl/crypto.h>

#include "dataplane/dp.h"
#include "fedgate/log.h"

#define RING_BYTES (DP_RING_BUFS * sizeof(struct io_uring_buf))

int dp_bufring_init(struct dp_worker *w)
{
	struct io_uring_buf_reg reg = {0};
	void *mem;
	int ret;

	mem = mmap(NULL, RING_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -ENOMEM;
	w->br_bufs = malloc((size_t)DP_RING_BUFS * DP_RING_BUF);
	if (!w->br_bufs) {
		ret = -ENOMEM;
		goto unmap;
	}
	w->br = mem;
	io_uring_buf_ring_init(w->br);
	reg.ring_addr = (unsigned long)(uintptr_t)mem;
	reg.ring_entries = DP_RING_BUFS;
	reg.bgid = DP_RING_BGID;
	ret = io_uring_register_buf_ring(&w->ring, &reg, 0);
	if (ret) {
		/* Not fatal: idle directions poll, as they did before. */
		fg_info("worker %d: no provided-buffer ring (%s): idle tunnels wait on polls",
			w->index, strerror(-ret));
		ret = 0;
		goto free_bufs;
	}
	for (unsigned int i = 0; i < DP_RING_BUFS; i++)
		io_uring_buf_ring_add(w->br, w->br_bufs + (size_t)i * DP_RING_BUF, DP_RING_BUF,
				      (unsigned short)i, io_uring_buf_ring_mask(DP_RING_BUFS),
				      (int)i);
	io_uring_buf_ring_advance(w->br, DP_RING_BUFS);
	return 0;

free_bufs:
	free(w->br_bufs);
	w->br_bufs = NULL;
	w->br = NULL;
unmap:
	munmap(mem, RING_BYTES);
	return ret;
}

void dp_bufring_exit(struct dp_worker *w)
{
	if (!w->br)
		return;
	io_uring_unregister_buf_ring(&w->ring, DP_RING_BGID);
	munmap(w->br, RING_BYTES);
	w->br = NULL;
	/* Plaintext and records passed through them. */
	OPENSSL_cleanse(w->br_bufs, (size_t)DP_RING_BUFS * DP_RING_BUF);
	free(w->br_bufs);
	w->br_bufs = NULL;
}

void dp_bufring_take(struct dp_worker *w, struct dp_tunnel *t, enum dp_op op, int *res,
		     unsigned int cqe_flags)
{
	unsigned int bid = (cqe_flags >> IORING_CQE_BUFFER_SHIFT) % DP_RING_BUFS;
	bool has_buf = cqe_flags & IORING_CQE_F_BUFFER, up = op == DP_OP_PLAIN_RECV;
	uint8_t *buf = w->br_bufs ? w->br_bufs + (size_t)bid * DP_RING_BUF : NULL;
	size_t n = *res > 0 ? (size_t)*res : 0;
	bool *armed = up ? &t->up_armed : &t->down_armed;

	/*
	 * Other reads of these ops (into the chunk, or a splice) need nothing
	 * here. An armed one's bytes, or its end of stream (0: the close_notify
	 * that follows is sealed into the chunk), get a chunk. A closing
	 * tunnel's are dropped.
	 */
	if (!*armed)
		goto recycle;
	*armed = false;
	if (*res >= 0 && !t->closing && !(up ? t->up_in : t->down_in)) {
		if (up ? dp_up_hold(t) : dp_down_hold(t))
			*res = -ENOMEM;
		else if (n && has_buf && n <= DP_RING_BUF)
			memcpy(up ? t->up_in : t->down_in, buf, n);
		else if (n)
			*res = -EIO; /* bytes without a ring buffer: never, as io_uring works */
	}
recycle:
	if (!has_buf || !buf)
		return;
	io_uring_buf_ring_add(w->br, buf, DP_RING_BUF, (unsigned short)bid,
			      io_uring_buf_ring_mask(DP_RING_BUFS), 0);
	io_uring_buf_ring_advance(w->br, 1);
}
