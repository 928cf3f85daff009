// SPDX-License-Identifier: MIT
/*
 * cgroup capture (maps and contract: bpf/capture.h): an application in the
 * cgroup connects to a routed address; the connect goes to fedgate's
 * listener instead, and fedgate learns the address from fg_cap_orig.
 *
 * Only UAPI context types (struct bpf_sock_addr, struct bpf_sock_ops, struct
 * bpf_sock): the verifier rewrites their accesses for the running kernel, so
 * one object loads on 6.1 and later without vmlinux.h or CO-RE. Helpers used
 * and where 6.1 has them (net/core/filter.c): sk_storage_get/delete in
 * sock_addr and sock_ops programs; sock_ops_cb_flags_set in sock_ops;
 * ctx->sk is a full socket in sock_addr (PTR_TO_SOCKET, its mark readable)
 * and may be NULL in sock_ops.
 *
 * Byte orders: bpf_sock_addr.user_port is the __be16 in the low half of a
 * u32; bpf_sock_ops.remote_port is network order over the whole u32,
 * local_port host order.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "capture.h"
#include "tuple_bpf.h"

#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define TCP_CLOSE 7

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile struct fg_cap_conf fg_cap_cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1); /* the loader sets the planned number */
	__type(key, struct fg_cap_key);
	__type(value, struct fg_cap_ports);
} fg_cap_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct fg_cap_sock);
} fg_cap_sk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_CAP_ORIG_MAX);
	__type(key, struct fg_tuple);
	__type(value, struct fg_cap_dst);
} fg_cap_orig SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FG_CAP_STAT_N);
	__type(key, __u32);
	__type(value, __u64);
} fg_cap_stats SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&fg_cap_stats, &which);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* True if some route holds @k's address (prefixlen set for a full lookup) and @port. */
static __always_inline int routed(struct fg_cap_key *k, __u16 port)
{
	struct fg_cap_ports *p = bpf_map_lookup_elem(&fg_cap_routes, k);
	int i;

	if (!p)
		return 0;
	if (p->n == 0)
		return 1;
	for (i = 0; i < FG_CAP_PORT_RANGES; i++) {
		if (i >= p->n)
			break;
		if (port >= p->r[i].lo && port <= p->r[i].hi)
			return 1;
	}
	return 0;
}

/* Our own dials, and anything but TCP, are never captured. */
static __always_inline int eligible(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;

	return ctx->type == SOCK_STREAM && ctx->protocol == IPPROTO_TCP && sk &&
	       sk->mark != fg_cap_cfg.mark;
}

/*
 * NULL: the connect goes on as it is (@k, its destination, and its port are
 * not routed; or the socket is connected already; or the kernel has no
 * socket storage to give, and then it is left alone rather than captured
 * blind). Else the destination in the socket's storage, its port set, for
 * the caller to fill and rewrite the connect.
 */
static __always_inline struct fg_cap_dst *capture(struct bpf_sock_addr *ctx, struct fg_cap_key *k)
{
	struct fg_cap_sock *s = bpf_sk_storage_get(&fg_cap_sk, ctx->sk, 0, 0);

	/* Connected already (this connect fails, EISCONN): it keeps its entry's key. */
	if (s && s->keyed)
		return NULL;
	if (!routed(k, bpf_ntohs((__u16)ctx->user_port))) {
		/* A socket that connects again must not keep an old destination. */
		if (s)
			bpf_sk_storage_delete(&fg_cap_sk, ctx->sk);
		return NULL;
	}
	if (!s)
		s = bpf_sk_storage_get(&fg_cap_sk, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s) {
		count(FG_CAP_STAT_NO_STORAGE);
		return NULL;
	}
	s->keyed = 0;
	s->dst.port = (__u16)ctx->user_port;
	count(FG_CAP_STAT_REWRITTEN);
	return &s->dst;
}

SEC("cgroup/connect4")
int fg_cap_connect4(struct bpf_sock_addr *ctx)
{
	struct fg_cap_key k = {.prefixlen = 64, .family = FG_AF_INET};
	struct fg_cap_dst *d;

	if (!fg_cap_cfg.has4 || !eligible(ctx))
		return 1;
	k.addr[0] = ctx->user_ip4;
	d = capture(ctx, &k);
	if (!d)
		return 1;
	d->family = FG_AF_INET;
	d->ip[0] = k.addr[0];
	d->ip[1] = d->ip[2] = d->ip[3] = 0;
	ctx->user_ip4 = fg_cap_cfg.ip4;
	ctx->user_port = fg_cap_cfg.port4;
	return 1;
}

SEC("cgroup/connect6")
int fg_cap_connect6(struct bpf_sock_addr *ctx)
{
	struct fg_cap_key k = {.family = FG_AF_INET6};
	__u32 w[4], to[4] = {0, 0, FG_TUPLE_MAPPED_W2, 0};
	struct fg_cap_dst *d;
	__u16 to_port;
	int i;

	if (!eligible(ctx))
		return 1;
	w[0] = ctx->user_ip6[0];
	w[1] = ctx->user_ip6[1];
	w[2] = ctx->user_ip6[2];
	w[3] = ctx->user_ip6[3];
	if (fg_tuple_is_mapped(w)) {
		if (!fg_cap_cfg.has4)
			return 1;
		k.family = FG_AF_INET;
		k.prefixlen = 64;
		k.addr[0] = w[3];
		to[3] = fg_cap_cfg.ip4;
		to_port = fg_cap_cfg.port4;
	} else {
		if (!fg_cap_cfg.has6)
			return 1;
		k.prefixlen = 160;
		for (i = 0; i < 4; i++) {
			k.addr[i] = w[i];
			to[i] = fg_cap_cfg.ip6[i];
		}
		to_port = fg_cap_cfg.port6;
	}
	d = capture(ctx, &k);
	if (!d)
		return 1;
	d->family = FG_AF_INET6;
	for (i = 0; i < 4; i++)
		d->ip[i] = w[i];
	ctx->user_ip6[0] = to[0];
	ctx->user_ip6[1] = to[1];
	ctx->user_ip6[2] = to[2];
	ctx->user_ip6[3] = to[3];
	ctx->user_port = to_port;
	return 1;
}

/* The application sees the address it dialed, not the listener's. */
SEC("cgroup/getpeername4")
int fg_cap_getpeername4(struct bpf_sock_addr *ctx)
{
	struct fg_cap_sock *s = bpf_sk_storage_get(&fg_cap_sk, ctx->sk, 0, 0);

	if (s && s->dst.family == FG_AF_INET) {
		ctx->user_ip4 = s->dst.ip[0];
		ctx->user_port = s->dst.port;
	}
	return 1;
}

SEC("cgroup/getpeername6")
int fg_cap_getpeername6(struct bpf_sock_addr *ctx)
{
	struct fg_cap_sock *s = bpf_sk_storage_get(&fg_cap_sk, ctx->sk, 0, 0);

	if (s && s->dst.family == FG_AF_INET6) {
		ctx->user_ip6[0] = s->dst.ip[0];
		ctx->user_ip6[1] = s->dst.ip[1];
		ctx->user_ip6[2] = s->dst.ip[2];
		ctx->user_ip6[3] = s->dst.ip[3];
		ctx->user_port = s->dst.port;
	}
	return 1;
}

/* A captured socket's entry of fg_cap_orig, if it still has one, goes. */
static __always_inline void forget(struct fg_cap_sock *s)
{
	if (!s->keyed)
		return;
	s->keyed = 0;
	if (bpf_map_delete_elem(&fg_cap_orig, &s->key) == 0)
		count(FG_CAP_STAT_CLOSED);
}

SEC("sockops")
int fg_cap_sockops(struct bpf_sock_ops *ctx)
{
	struct fg_cap_sock *s;
	struct bpf_sock *sk;
	__u32 op = ctx->op;

	if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_STATE_CB)
		return 1;
	if (op == BPF_SOCK_OPS_STATE_CB && ctx->args[1] != TCP_CLOSE)
		return 1;
	sk = ctx->sk;
	if (!sk)
		return 1;
	s = bpf_sk_storage_get(&fg_cap_sk, sk, 0, 0);
	if (!s)
		return 1; /* not a socket we captured */
	if (op == BPF_SOCK_OPS_STATE_CB) {
		forget(s); /* reset, or closed before the application let go of it */
		return 1;
	}
	if (fg_tuple_of_ops(ctx, &s->key))
		return 1;
	if (bpf_map_update_elem(&fg_cap_orig, &s->key, &s->dst, BPF_ANY)) {
		count(FG_CAP_STAT_ORIG_FULL);
		return 1;
	}
	s->keyed = 1;
	count(FG_CAP_STAT_ESTABLISHED);
	bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	return 1;
}

/*
 * The application let go of a captured socket (close(), or its exit): the
 * entry goes now, whatever TCP does next. TCP_CLOSE alone is not enough: an
 * orphan whose FIN the peer ACKed stays a full socket in FIN_WAIT2, on the
 * FIN_WAIT2 timer, when tcp_fin_timeout is over 60 s, or when that ACK met the
 * socket still locked by close() (tcp_rcv_state_process then arms the timer
 * instead of going to TIME_WAIT); TCP_CLOSE comes only when the timer fires.
 */
SEC("cgroup/sock_release")
int fg_cap_release(struct bpf_sock *ctx)
{
	struct fg_cap_sock *s = bpf_sk_storage_get(&fg_cap_sk, ctx, 0, 0);

	if (s)
		forget(s);
	return 1;
}
