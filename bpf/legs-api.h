/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_BPF_LEGS_API_H
#define FEDGATE_BPF_LEGS_API_H

/*
 * The loader of bpf/legs.bpf.c, run by the control process (root): loads the
 * programs, attaches the sock_ops program to a cgroup (a BPF link: detached
 * when fg_legs_free or the process exit drops it; nothing is pinned), and
 * gives the control process its side of the protocol (README "Local legs
 * redirect"). Errors are negative errnos; @why is a static phrase.
 */
#include <stdint.h>
#include <sys/socket.h>
#include "fedgate/legs-t.h"

struct fg_legs;

/*
 * Loads the programs with @budget (bytes) and, if @attach, attaches them to
 * cgroup @cgroup (NULL: the cgroup2 root; relative: to the cgroup2 mount).
 * The attached cgroup's path is written to @cg (@cg_len bytes). 0 with *@out,
 * or -errno with *@why.
 */
int fg_legs_new(struct fg_legs **out, const char *cgroup, uint64_t budget, int attach, char *cg,
		size_t cg_len, const char **why);

/* Detaches and frees everything (NULL is fine). Sockets drop out of the sockhash. */
void fg_legs_free(struct fg_legs *l);

/* Registers originate listener @fd (bound: its address, a wildcard too, and netns). 0 or -errno. */
int fg_legs_listen(struct fg_legs *l, int fd);

/*
 * Announces plaintext upstream socket @fd before its connect, so that its
 * reads may be redirected; *@cookie is its SO_COOKIE (for fg_legs_unexpect).
 */
int fg_legs_expect(struct fg_legs *l, int fd, uint64_t *cookie);

/* Forgets an announcement that never became a connection (0 is fine). */
void fg_legs_unexpect(struct fg_legs *l, uint64_t cookie);

/*
 * Claims the slot of reader socket @fd (an accepted originate connection, or
 * an announced upstream once connected): *@slot is its index, or -1 with
 * -ENOENT when the connection is not redirected.
 */
int fg_legs_claim(struct fg_legs *l, int fd, int *slot);

/* Slot @slot of our mapping (fedgate/legs.h says what to do with it); NULL for -1. */
struct fg_legs_slot *fg_legs_slot(struct fg_legs *l, int slot);

/* The slot array's map fd, for the data plane (owned by @l). */
int fg_legs_slots_fd(const struct fg_legs *l);

/* The global counters, summed over CPUs (enum fg_legs_stat). 0 or -errno. */
int fg_legs_stats(const struct fg_legs *l, uint64_t st[FG_LEGS_ST_N]);

#endif
