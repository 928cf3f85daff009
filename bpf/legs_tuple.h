/* SPDX-License-Identifier: MIT */
/*
 * The normalized 4-tuple (SPEC16 "Key"), for bpf/legs.bpf.c until it shares
 * bpf/tuple.h with the capture programs: the same struct and the same include
 * guard, so both may be included and the lead can drop this one at merge.
 *
 * Normal form: IPv4, and IPv4-mapped IPv6 on both ends, is FG_AF_INET with the
 * addresses in lip[0]/rip[0] (network order), the other words 0; any other
 * IPv6 is FG_AF_INET6. Ports host order. "l" is the socket's own end.
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

static inline int fg_tuple_is_mapped(const __u32 w[4])
{
	return w[0] == 0 && w[1] == 0 && w[2] == FG_TUPLE_MAPPED_W2;
}

/* A tuple filled raw (as the socket has it) to the normal form. */
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

/* The same connection seen from the peer's socket. */
static inline void fg_tuple_swap(const struct fg_tuple *in, struct fg_tuple *out)
{
	for (int i = 0; i < 4; i++) {
		out->lip[i] = in->rip[i];
		out->rip[i] = in->lip[i];
	}
	out->lport = in->rport;
	out->rport = in->lport;
	out->family = in->family;
	out->pad = 0;
}

#endif
