/* SPDX-License-Identifier: MIT */
/*
 * The one key of a TCP connection that BPF programs and the control process
 * agree on (SPEC16 "Key"): shared by bpf/capture.bpf.c and bpf/legs.bpf.c and
 * by their loaders. Fixed-size types only, so clang -target bpf and the host
 * compiler lay it out the same. The helpers below are pure arithmetic on a
 * struct on the stack: they compile for both.
 *
 * Normal form: an IPv4 connection, and an IPv6 socket's connection to an
 * IPv4-mapped peer (::ffff:a.b.c.d on both ends), is family FG_AF_INET with
 * the addresses in lip[0]/rip[0] (network order) and the other words 0. Any
 * other IPv6 connection is FG_AF_INET6 with all four words (network order).
 * Ports are host order. "l" is the socket's own end, "r" its peer.
 */
#ifndef FEDGATE_BPF_TUPLE_H
#define FEDGATE_BPF_TUPLE_H

#include <linux/types.h>

#define FG_AF_INET 2
#define FG_AF_INET6 10

struct fg_tuple {
	__u32 lip[4], rip[4];
	__u16 lport, rport; /* host order */
	__u16 family, pad;  /* FG_AF_INET or FG_AF_INET6; pad 0 */
};

/* Word 2 of ::ffff:0:0/96 as it lies in memory (network order). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FG_TUPLE_MAPPED_W2 0xffff0000u
#else
#define FG_TUPLE_MAPPED_W2 0x0000ffffu
#endif

/* True if the four words (network order) are an IPv4-mapped IPv6 address. */
static inline int fg_tuple_is_mapped(const __u32 w[4])
{
	return w[0] == 0 && w[1] == 0 && w[2] == FG_TUPLE_MAPPED_W2;
}

/*
 * Brings a tuple filled raw (FG_AF_INET: address in word 0; FG_AF_INET6: all
 * four words as the socket has them) to the normal form above.
 */
static inline void fg_tuple_normalize(struct fg_tuple *t)
{
	if (t->family == FG_AF_INET6 && fg_tuple_is_mapped(t->lip) && fg_tuple_is_mapped(t->rip)) {
		t->family = FG_AF_INET;
		t->lip[0] = t->lip[3];
		t->rip[0] = t->rip[3];
	}
	if (t->family == FG_AF_INET) {
		t->lip[1] = t->lip[2] = t->lip[3] = 0;
		t->rip[1] = t->rip[2] = t->rip[3] = 0;
	}
	t->pad = 0;
}

/* The same connection seen from the peer's socket: local and remote swapped. */
static inline void fg_tuple_swap(const struct fg_tuple *in, struct fg_tuple *out)
{
	int i;

	for (i = 0; i < 4; i++) {
		out->lip[i] = in->rip[i];
		out->rip[i] = in->lip[i];
	}
	out->lport = in->rport;
	out->rport = in->lport;
	out->family = in->family;
	out->pad = 0;
}

#endif
