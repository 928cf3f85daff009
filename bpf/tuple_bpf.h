/* SPDX-License-Identifier: MIT */
/*
 * For BPF programs only: the normalized 4-tuple (bpf/tuple.h) of a sock_ops
 * socket, and the remote_port decoding sock_ops and sk_msg share. One copy for
 * bpf/capture.bpf.c and bpf/legs.bpf.c.
 */
#ifndef FEDGATE_BPF_TUPLE_BPF_H
#define FEDGATE_BPF_TUPLE_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "tuple.h"

/*
 * A remote_port as sock_ops and sk_msg give it: network order in a u32, in its
 * upper half on little-endian kernels (the verifier shifts it there).
 */
static __always_inline __u16 fg_port_of(__u32 remote_port)
{
	if (remote_port > 0xffff)
		remote_port >>= 16;
	return bpf_ntohs((__u16)remote_port);
}

/* The socket's own normalized tuple: 0, or -1 for a family other than IPv4/IPv6. */
static __always_inline int fg_tuple_of_ops(struct bpf_sock_ops *ops, struct fg_tuple *t)
{
	__builtin_memset(t, 0, sizeof(*t));
	if (ops->family == FG_AF_INET) {
		t->lip[0] = ops->local_ip4;
		t->rip[0] = ops->remote_ip4;
	} else if (ops->family == FG_AF_INET6) {
		t->lip[0] = ops->local_ip6[0];
		t->lip[1] = ops->local_ip6[1];
		t->lip[2] = ops->local_ip6[2];
		t->lip[3] = ops->local_ip6[3];
		t->rip[0] = ops->remote_ip6[0];
		t->rip[1] = ops->remote_ip6[1];
		t->rip[2] = ops->remote_ip6[2];
		t->rip[3] = ops->remote_ip6[3];
	} else {
		return -1;
	}
	t->family = (__u16)ops->family;
	t->lport = (__u16)ops->local_port;
	t->rport = fg_port_of(ops->remote_port);
	fg_tuple_normalize(t);
	return 0;
}

#endif
