/* SPDX-License-Identifier: MIT */
/*
 * Shared by bpf/legs.bpf.c and its loader bpf/legs.c: the maps' keys and
 * values of the local legs redirect (README "Local legs redirect"). Fixed-size
 * types only; the slot array itself is include/fedgate/legs-t.h (the data
 * plane maps it too).
 */
#ifndef FEDGATE_BPF_LEGS_H
#define FEDGATE_BPF_LEGS_H

#include <linux/types.h>

#include "fedgate/legs-t.h"
#include "tuple.h"

/* Sockets tracked at once: a sender and a reader per slot. */
#define FG_LEGS_SOCKS (2 * FG_LEGS_SLOTS)
/* Plaintext upstream dials announced and not yet established. */
#define FG_LEGS_EXPECT 16384
/* Originate listeners fedgate registers. */
#define FG_LEGS_LISTEN 1024

/*
 * Key of legs_listen: an originate listener's network namespace and local
 * address. A wildcard listener has the address 0 (FG_AF_INET for 0.0.0.0);
 * family 0 matches any family (a dual-stack [::] listener). The namespace
 * keeps a same address in another namespace from passing for fedgate's.
 */
struct fg_legs_listen_key {
	__u64 netns; /* SO_NETNS_COOKIE */
	__u32 ip[4]; /* network order, IPv4 in ip[0] */
	__u16 port;  /* host order */
	__u16 family;
	__u32 pad;
};

/* Where a direction is (fg_legs_pair.state). */
enum fg_legs_pair_state {
	FG_LEGS_WAIT = 1, /* originate: the app dialed a listener, fedgate's end not yet there */
	FG_LEGS_PENDING,  /* terminate: fedgate's upstream dial is up, the service's end not yet */
	FG_LEGS_ON,	  /* both ends known: the sender's bytes may be redirected */
};

/*
 * Value of legs_pair, keyed by the SENDER's tuple (the app's socket, or the
 * service's accepted socket): the reader it may redirect to.
 */
struct fg_legs_pair {
	struct fg_tuple reader; /* the reader's key in legs_socks */
	__u64 cookie;		/* the reader's socket cookie: the slot's owner */
	__u64 netns;		/* terminate: the reader's netns, the sender's must be it */
	__u32 state;		/* enum fg_legs_pair_state */
	__u32 slot;		/* index into legs_slots */
	__u32 sticky;		/* 1: sent before both ends were known, or no slot: TCP for good */
	__u32 pad;
};

#endif
