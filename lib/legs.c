// SPDX-License-Identifier: MIT
/* The local legs redirect's slot array from userspace: see fedgate/legs.h. */
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fedgate/legs.h"

size_t fg_legs_map_len(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = sizeof(struct fg_legs_slot) * FG_LEGS_SLOTS;

	return (len + page - 1) / page * page;
}

struct fg_legs_slot *fg_legs_map(int fd)
{
	void *p = mmap(NULL, fg_legs_map_len(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

void fg_legs_unmap(struct fg_legs_slot *slots)
{
	if (slots)
		munmap(slots, fg_legs_map_len());
}

/* The same probe sequence as the BPF allocation (bpf/legs.bpf.c slot_alloc). */
int fg_legs_claim_cookie(struct fg_legs_slot *slots, uint64_t cookie)
{
	for (uint32_t i = 0; i < FG_LEGS_PROBE; i++) {
		uint32_t idx = (uint32_t)((cookie + i) % FG_LEGS_SLOTS);
		__u64 want = cookie;

		if (__atomic_load_n(&slots[idx].owner, __ATOMIC_ACQUIRE) != cookie)
			continue;
		/* Loses only to the kernel freeing it: the socket closed before we claimed. */
		if (__atomic_compare_exchange_n(&slots[idx].owner, &want, cookie | FG_LEGS_CLAIMED,
						0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return (int)idx;
		return -ENOENT;
	}
	return -ENOENT;
}

void fg_legs_consumed(struct fg_legs_slot *s, uint64_t n)
{
	/* One writer at a time: a plain add, published with a relaxed store. */
	__atomic_store_n(&s->consumed, s->consumed + n, __ATOMIC_RELAXED);
}

void fg_legs_closing(struct fg_legs_slot *s)
{
	__atomic_store_n(&s->sticky, 1, __ATOMIC_SEQ_CST);
}

void fg_legs_release(struct fg_legs_slot *s)
{
	__atomic_store_n(&s->owner, 0, __ATOMIC_RELEASE);
}

int fg_legs_release_owned(struct fg_legs_slot *s, uint64_t owner)
{
	__u64 want = owner;

	if (!owner)
		return -ESTALE;
	return __atomic_compare_exchange_n(&s->owner, &want, 0, 0, __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE)
		   ? 0
		   : -ESTALE;
}

int fg_legs_close_reader(struct fg_legs_slot *s, int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	int unread = 0, reset = 0;

	fg_legs_closing(s);
	/*
	 * TCP resets a close with unread bytes; the kernel forgets that for
	 * redirected ones (they are not on the TCP receive queue, and FIONREAD
	 * may not count them): every redirected byte comes before any that
	 * went by TCP, so fewer read than redirected means some wait unread.
	 */
	if ((!ioctl(fd, FIONREAD, &unread) && unread > 0) ||
	    __atomic_load_n(&s->redirected, __ATOMIC_ACQUIRE) > s->consumed) {
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		reset = 1;
	}
	close(fd);
	fg_legs_release(s);
	return reset;
}
