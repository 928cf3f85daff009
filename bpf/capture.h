/* SPDX-License-Identifier: MIT */
/*
 * Shared by bpf/capture.bpf.c and its loader bpf/capture.c: the maps of
 * cgroup capture (SPEC16 1). Fixed-size types only (linux/types.h), so the
 * layout is the same for clang -target bpf and for the control process.
 *
 * The programs, attached to one cgroup v2 directory:
 *  - cgroup/connect4, cgroup/connect6: a TCP connect from a socket without
 *    fedgate's mark whose destination matches fg_cap_routes is rewritten to
 *    the tunnel's listener (struct fg_cap_conf), the destination kept in the
 *    socket's storage (fg_cap_sk);
 *  - cgroup/getpeername4/6: such a socket's peer name is the destination it
 *    dialed, not the listener;
 *  - sockops: once it is established, the destination is copied into
 *    fg_cap_orig under the socket's own 4-tuple (bpf/tuple.h), where the
 *    control process takes it (lookup and delete) when it accepts;
 *  - cgroup/sock_release, and sockops at TCP_CLOSE: when the application
 *    closes the socket (or TCP closes it first), its entry goes too,
 *    accepted or not.
 */
#ifndef FEDGATE_BPF_CAPTURE_H
#define FEDGATE_BPF_CAPTURE_H

#include <linux/types.h>

#include "tuple.h"

/* Port ranges one prefix of fg_cap_routes holds (the routes over it, merged). */
#define FG_CAP_PORT_RANGES 16
/* Connections established and not yet accepted (or closed) at one time. */
#define FG_CAP_ORIG_MAX 65536

/*
 * Key of fg_cap_routes (BPF_MAP_TYPE_LPM_TRIE): the family word, then the
 * address. @prefixlen counts bits of both: 32 + the route's prefix length;
 * a lookup uses 32 + 32 (IPv4) or 32 + 128 (IPv6).
 */
struct fg_cap_key {
	__u32 prefixlen;
	__u32 family;  /* FG_AF_INET or FG_AF_INET6 */
	__u32 addr[4]; /* network order; IPv4 in addr[0], the rest 0 */
};

struct fg_cap_range {
	__u16 lo, hi; /* host order, both included */
};

/*
 * Value of fg_cap_routes: the ports captured at addresses whose longest
 * prefix in the map is this key: the union of the port ranges of every
 * route with a prefix holding the key's (so the one lookup answers "does
 * some route match"). @n 0: any port.
 */
struct fg_cap_ports {
	__u32 n;
	__u32 pad;
	struct fg_cap_range r[FG_CAP_PORT_RANGES];
};

/*
 * The destination a captured socket dialed, as that socket has it: an IPv4
 * socket in ip[0]; an IPv6 socket all four words (IPv4-mapped when it
 * dialed IPv4). Value of fg_cap_orig.
 */
struct fg_cap_dst {
	__u32 ip[4];  /* network order */
	__u16 port;   /* network order */
	__u16 family; /* FG_AF_INET or FG_AF_INET6: the socket's family */
};

/*
 * Value of fg_cap_sk (socket storage): a captured socket's destination and,
 * once @keyed, the key of its entry in fg_cap_orig, so that the entry can go
 * when the socket is released (the release program cannot read the
 * socket's own address and port).
 */
struct fg_cap_sock {
	struct fg_cap_dst dst;
	struct fg_tuple key;
	__u32 keyed;
};

/*
 * Where captured connections go and what the programs skip; a read-only
 * global, set by the loader before load. An IPv4 destination needs an IPv4
 * target (an IPv6 socket gets it IPv4-mapped), an IPv6 one an IPv6 target.
 */
struct fg_cap_conf {
	__u32 mark;	    /* sockets with this SO_MARK (fedgate's own) are left alone */
	__u32 has4, has6;   /* 1: that target is set */
	__u32 ip4;	    /* the IPv4 target, network order */
	__u32 ip6[4];	    /* the IPv6 target, network order */
	__u16 port4, port6; /* network order */
};

/* Counters, in fg_cap_stats (an array of __u64 indexed by these). */
enum fg_cap_stat {
	FG_CAP_STAT_REWRITTEN = 0, /* connects sent to a listener */
	FG_CAP_STAT_NO_STORAGE,	   /* captured, but no socket storage: left alone */
	FG_CAP_STAT_ESTABLISHED,   /* entries put in fg_cap_orig */
	FG_CAP_STAT_ORIG_FULL,	   /* fg_cap_orig full: fedgate will refuse that one */
	FG_CAP_STAT_CLOSED,	   /* entries deleted at close or TCP_CLOSE (never accepted) */
	FG_CAP_STAT_N,
};

#endif
