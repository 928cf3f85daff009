/* SPDX-License-Identifier: MIT */
/*
 * The local legs redirect's slot array (README "Local legs redirect"), shared
 * by bpf/legs.bpf.c (the kernel side), bpf/legs.c (the control process) and
 * the data plane, which all map the same BPF_F_MMAPABLE array. linux/types.h
 * types only: clang -target bpf and the host compiler lay it out the same.
 */
#ifndef FEDGATE_LEGS_T_H
#define FEDGATE_LEGS_T_H

#include <linux/types.h>

/* Redirected connections at once; more stay plain TCP. */
#define FG_LEGS_SLOTS 65536
/* Slots tried from cookie % FG_LEGS_SLOTS, by the BPF allocation and the claim alike. */
#define FG_LEGS_PROBE 8
/* In owner: the control process claimed the slot; only fedgate frees it then. */
#define FG_LEGS_CLAIMED (1ull << 63)
/* The budget's bounds and default, bytes redirected but not yet read (config checks them). */
#define FG_LEGS_BUDGET_MIN (16u * 1024)
#define FG_LEGS_BUDGET_MAX (64u * 1024 * 1024)
#define FG_LEGS_BUDGET_DEFAULT (256u * 1024)

/*
 * One redirected direction (sender -> fedgate's reader socket), in a
 * BPF_F_MMAPABLE array. Writers: owner: BPF allocates (0 -> cookie) and
 * frees an unclaimed slot (cookie -> 0), control claims (cookie -> cookie |
 * CLAIMED), whoever holds a claimed slot releases it (store 0) after closing
 * the reader. redirected: the sk_msg program, under the sender's socket lock.
 * consumed: the reader's owner, one at a time (control, then the data plane
 * after the handoff), a relaxed store. sticky: the sk_msg program, and the
 * reader's owner before it closes the reader (both only ever store 1).
 *
 * The sender's bytes are redirected while redirected - consumed + size stays
 * within the budget; the first message that would not goes by TCP, and so
 * does every later one (sticky): the kernel reads redirected bytes before
 * TCP's, so going back could reorder, and a failed TCP push even leaves the
 * kernel's verdict stale for the next send, unseen by the program.
 */
struct fg_legs_slot {
	__u64 owner;	  /* 0 free; the reader's socket cookie; | FG_LEGS_CLAIMED */
	__u64 redirected; /* bytes the sk_msg program redirected */
	__u64 consumed;	  /* bytes the reader read from its socket */
	__u64 sticky;	  /* 1: this direction is on TCP for good */
};

/* Global counters (a per-CPU array, summed by the loader), for `check`, logs and tests. */
enum fg_legs_stat {
	FG_LEGS_ST_BYTES,	/* bytes redirected */
	FG_LEGS_ST_MSGS,	/* messages redirected */
	FG_LEGS_ST_TCP_BYTES,	/* bytes of tracked directions that went by TCP */
	FG_LEGS_ST_OVER_BUDGET, /* directions put on TCP for the budget */
	FG_LEGS_ST_STICKY,	/* directions put on TCP for another reason (early, closing) */
	FG_LEGS_ST_NO_SLOT,	/* readers left on TCP: no free slot */
	FG_LEGS_ST_PAIRS,	/* directions that became redirectable */
	FG_LEGS_ST_N,
};

#endif
