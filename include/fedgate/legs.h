/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_LEGS_H
#define FEDGATE_LEGS_H

/*
 * The slot array of the local legs redirect (fedgate/legs-t.h) as userspace
 * sees it: mapped from the BPF array's fd by the control process (bpf/legs.c)
 * and by the data plane (from the fd it inherits), and the few stores each
 * owner of a slot makes. The BPF program writes the same memory at once: the
 * owner field changes only by compare-and-swap or by the release store.
 */
#include <stddef.h>
#include <stdint.h>
#include "fedgate/legs-t.h"

/* Bytes of the mapping: FG_LEGS_SLOTS slots, page-rounded. */
size_t fg_legs_map_len(void);

/* Maps the slot array of map fd @fd read-write. Returns it, or NULL with errno set. */
struct fg_legs_slot *fg_legs_map(int fd);

/* Unmaps @slots (NULL is fine). */
void fg_legs_unmap(struct fg_legs_slot *slots);

/*
 * Claims the slot the kernel allocated for the reader socket with cookie
 * @cookie: owner @cookie -> @cookie | FG_LEGS_CLAIMED. Returns its index, or
 * -ENOENT when the connection is not redirected (no slot, or already closed).
 */
int fg_legs_claim_cookie(struct fg_legs_slot *slots, uint64_t cookie);

/* The reader read @n more bytes from its socket. Only the slot's current reader calls it. */
void fg_legs_consumed(struct fg_legs_slot *s, uint64_t n);

/* The reader is about to close its socket: nothing may be redirected into it any more. */
void fg_legs_closing(struct fg_legs_slot *s);

/* The reader's socket is closed: the slot is free for the next connection. */
void fg_legs_release(struct fg_legs_slot *s);

/*
 * Frees @s only if its owner word is still @owner (a claimed reader's, as read
 * when it was handed away): 0, or -ESTALE when its reader released it already
 * and it may be another connection's now. For readers that died with their
 * process, which nobody else will release.
 */
int fg_legs_release_owned(struct fg_legs_slot *s, uint64_t owner);

/*
 * Closes reader socket @fd of slot @s: marked closing first, then with unread
 * bytes (redirected ones included: the slot knows them) closed with a reset,
 * as TCP does, then the slot released. Returns 1 if it reset, 0 if it closed cleanly.
 */
int fg_legs_close_reader(struct fg_legs_slot *s, int fd);

#endif
