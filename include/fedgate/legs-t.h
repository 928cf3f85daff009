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
 * One redirected direction (sender -> fedgate's reader socket). Writers:
 * owner: BPF allocates (0 -> cookie) and frees an unclaimed slot (cookie ->
 * 0), control claims (cookie -> cookie | CLAIMED), whoever holds a claimed
 * slot releases it (store 0) after closing the reader. sent, redirected and
 * tcp_end: the sk_msg program only, under the sender's socket lock.
 * consumed: the reader's owner, one at a time (control, then the data plane
 * after the handoff), a relaxed store. closing: the data plane, before it
 * closes the reader: no byte may be redirected into a closing socket.
 *
 * The redirect runs while consumed >= tcp_end (every byte that went by TCP
 * was read: a redirected one cannot overtake it, the kernel reads redirected
 * bytes first) and sent - consumed + size <= budget; any other message goes
 * by TCP and moves tcp_end, so a direction over budget comes back only once
 * the reader caught up with all of it.
 */
struct fg_legs_slot {
	__u64 owner;
	__u64 sent;	  /* bytes the sender sent since the slot was allocated */
	__u64 redirected; /* ... of them redirected (the rest went by TCP) */
	__u64 tcp_end;	  /* sent at the end of the last message that went by TCP */
	__u64 consumed;	  /* bytes the reader read from its socket */
	__u64 closing;	  /* 1: the reader is closing */
	__u64 pad[2];	  /* one slot per cache line */
};

/* Global counters (a per-CPU array, summed by the loader), for `check`, logs and tests. */
enum fg_legs_stat {
	FG_LEGS_ST_BYTES,	/* bytes redirected */
	FG_LEGS_ST_MSGS,	/* messages redirected */
	FG_LEGS_ST_TCP_BYTES,	/* bytes of tracked directions that went by TCP */
	FG_LEGS_ST_OVER_BUDGET, /* messages sent by TCP for the budget */
	FG_LEGS_ST_STICKY,	/* directions put on TCP for good */
	FG_LEGS_ST_NO_SLOT,	/* readers left on TCP: no free slot */
	FG_LEGS_ST_PAIRS,	/* directions that became redirectable */
	FG_LEGS_ST_N,
};

#endif
