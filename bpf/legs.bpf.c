// SPDX-License-Identifier: MIT
/*
 * The local legs redirect (README "Local legs redirect"): what a local process
 * sends to one of fedgate's plaintext sockets goes straight into that socket's
 * receive queue (sk_msg + sockhash, BPF_F_INGRESS), skipping the TCP stack.
 * Only directions in which fedgate itself reads: the app's socket to an
 * originate listener's accepted socket, and a service's accepted socket to
 * fedgate's plaintext upstream dial. Bounded by the slot of each direction
 * (include/fedgate/legs-t.h): at most @budget bytes redirected and unread;
 * past it the direction goes by TCP for good, so nothing is reordered.
 *
 * - fg_legs_sockops (cgroup sock_ops): pairs the two ends as they establish
 *   (legs_pair, keyed by the sender's tuple), puts both into legs_socks,
 *   allocates the reader's slot, and forgets them at TCP_CLOSE.
 * - fg_legs_msg (sk_msg on legs_socks): each message of a sender, redirected
 *   or left to TCP.
 *
 * UAPI context types only (no vmlinux.h, no CO-RE): loads on 6.1 and later.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "legs.h"
#include "tuple_bpf.h"

/* Bytes redirected and not yet read, per direction; the loader sets it from the config. */
const volatile __u64 budget = FG_LEGS_BUDGET_DEFAULT;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FG_LEGS_SLOTS);
	__type(key, __u32);
	__type(value, struct fg_legs_slot);
} legs_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, FG_LEGS_SOCKS);
	__type(key, struct fg_tuple);
	__type(value, __u64);
} legs_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_LEGS_SOCKS);
	__type(key, struct fg_tuple);
	__type(value, struct fg_legs_pair);
} legs_pair SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_LEGS_LISTEN);
	__type(key, struct fg_legs_listen_key);
	__type(value, __u32);
} legs_listen SEC(".maps");

/* SO_COOKIE of a plaintext upstream socket fedgate is about to connect. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_LEGS_EXPECT);
	__type(key, __u64);
	__type(value, __u32);
} legs_expect SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FG_LEGS_ST_N);
	__type(key, __u32);
	__type(value, __u64);
} legs_stats SEC(".maps");

#define READ_ONCE_U64(x) (*(volatile __u64 *)&(x))

static __always_inline void stat(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&legs_stats, &idx);

	if (v)
		*v += n;
}

static __always_inline int tuple_of_msg(struct sk_msg_md *msg, struct fg_tuple *t)
{
	__builtin_memset(t, 0, sizeof(*t));
	if (msg->family == FG_AF_INET) {
		t->lip[0] = msg->local_ip4;
		t->rip[0] = msg->remote_ip4;
	} else if (msg->family == FG_AF_INET6) {
		t->lip[0] = msg->local_ip6[0];
		t->lip[1] = msg->local_ip6[1];
		t->lip[2] = msg->local_ip6[2];
		t->lip[3] = msg->local_ip6[3];
		t->rip[0] = msg->remote_ip6[0];
		t->rip[1] = msg->remote_ip6[1];
		t->rip[2] = msg->remote_ip6[2];
		t->rip[3] = msg->remote_ip6[3];
	} else {
		return -1;
	}
	t->family = (__u16)msg->family;
	t->lport = (__u16)msg->local_port;
	t->rport = fg_port_of(msg->remote_port);
	fg_tuple_normalize(t);
	return 0;
}

/* Is (family, ip, port) one of fedgate's originate listeners? Exact, then wildcards. */
static __always_inline int is_listener(struct bpf_sock_ops *ops, const struct fg_tuple *t,
				       int remote)
{
	struct fg_legs_listen_key k = {};
	const __u32 *ip = remote ? t->rip : t->lip;

	k.netns = bpf_get_netns_cookie(ops);
	k.port = remote ? t->rport : t->lport;
	k.family = t->family;
	k.ip[0] = ip[0];
	k.ip[1] = ip[1];
	k.ip[2] = ip[2];
	k.ip[3] = ip[3];
	if (bpf_map_lookup_elem(&legs_listen, &k))
		return 1;
	k.ip[0] = k.ip[1] = k.ip[2] = k.ip[3] = 0;
	if (bpf_map_lookup_elem(&legs_listen, &k))
		return 1;
	k.family = 0;
	return bpf_map_lookup_elem(&legs_listen, &k) != NULL;
}

/* A free slot for reader @cookie, owned by it (reset); or -1: the direction stays on TCP. */
static __always_inline int slot_alloc(__u64 cookie)
{
	for (__u32 i = 0; i < FG_LEGS_PROBE; i++) {
		__u32 idx = (__u32)((cookie + i) % FG_LEGS_SLOTS);
		struct fg_legs_slot *s = bpf_map_lookup_elem(&legs_slots, &idx);

		if (!s)
			return -1;
		if (__sync_val_compare_and_swap(&s->owner, 0, cookie) != 0)
			continue;
		s->redirected = s->consumed = s->sticky = 0;
		return (int)idx;
	}
	stat(FG_LEGS_ST_NO_SLOT, 1);
	return -1;
}

/* Frees the slot of reader @cookie unless fedgate claimed it (then fedgate frees it). */
static __always_inline void slot_free_unclaimed(__u64 cookie)
{
	for (__u32 i = 0; i < FG_LEGS_PROBE; i++) {
		__u32 idx = (__u32)((cookie + i) % FG_LEGS_SLOTS);
		struct fg_legs_slot *s = bpf_map_lookup_elem(&legs_slots, &idx);

		if (s && s->owner == cookie) {
			__sync_val_compare_and_swap(&s->owner, cookie, 0);
			return;
		}
	}
}

static __always_inline void track(struct bpf_sock_ops *ops)
{
	bpf_sock_ops_cb_flags_set(ops, ops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

/* fedgate's announced upstream dial @self is up: a terminate reader, waiting for its sender. */
static __always_inline void terminate_reader(struct bpf_sock_ops *ops, const struct fg_tuple *self,
					     __u64 cookie)
{
	struct fg_legs_pair pair = {};
	struct fg_tuple peer;
	int slot;

	slot = slot_alloc(cookie);
	if (slot < 0)
		return;
	pair.reader = *self;
	pair.cookie = cookie;
	pair.netns = bpf_get_netns_cookie(ops);
	pair.slot = (__u32)slot;
	pair.state = FG_LEGS_PENDING;
	fg_tuple_swap(self, &peer);
	if (bpf_map_update_elem(&legs_pair, &peer, &pair, BPF_NOEXIST))
		goto free_slot;
	if (bpf_sock_hash_update(ops, &legs_socks, &pair.reader, BPF_NOEXIST))
		goto delete_pair;
	track(ops);
	return;

delete_pair:
	bpf_map_delete_elem(&legs_pair, &peer);
free_slot:
	slot_free_unclaimed(cookie);
}

/* An active open: fedgate's announced upstream dial, or an app dialing an originate listener. */
static __always_inline void active_established(struct bpf_sock_ops *ops)
{
	struct fg_legs_pair pair = {};
	__u64 cookie = bpf_get_socket_cookie(ops);
	struct fg_tuple self;

	if (fg_tuple_of_ops(ops, &self))
		return;
	if (bpf_map_lookup_elem(&legs_expect, &cookie)) {
		bpf_map_delete_elem(&legs_expect, &cookie);
		terminate_reader(ops, &self, cookie);
		return;
	}
	if (!is_listener(ops, &self, 1))
		return;
	pair.state = FG_LEGS_WAIT;
	if (bpf_map_update_elem(&legs_pair, &self, &pair, BPF_NOEXIST))
		return;
	if (bpf_sock_hash_update(ops, &legs_socks, &self, BPF_NOEXIST)) {
		bpf_map_delete_elem(&legs_pair, &self);
		return;
	}
	track(ops);
}

/* A passive open: a service took fedgate's upstream dial (terminate sender), or fedgate an app. */
static __always_inline void passive_established(struct bpf_sock_ops *ops)
{
	struct fg_tuple self, peer;
	struct fg_legs_pair *p;
	__u64 cookie;
	int slot;

	if (fg_tuple_of_ops(ops, &self))
		return;
	p = bpf_map_lookup_elem(&legs_pair, &self);
	/* Only a service in fedgate's own namespace: no redirect past a veth and its rules. */
	if (p && p->state == FG_LEGS_PENDING && p->netns == bpf_get_netns_cookie(ops)) {
		if (bpf_sock_hash_update(ops, &legs_socks, &self, BPF_NOEXIST)) {
			bpf_map_delete_elem(&legs_pair, &self);
			return;
		}
		__sync_val_compare_and_swap(&p->state, FG_LEGS_PENDING, FG_LEGS_ON);
		stat(FG_LEGS_ST_PAIRS, 1);
		track(ops);
		return;
	}
	if (!is_listener(ops, &self, 0))
		return;
	fg_tuple_swap(&self, &peer);
	p = bpf_map_lookup_elem(&legs_pair, &peer);
	if (!p || p->state != FG_LEGS_WAIT)
		return;
	cookie = bpf_get_socket_cookie(ops);
	slot = slot_alloc(cookie);
	if (slot < 0)
		return;
	if (bpf_sock_hash_update(ops, &legs_socks, &self, BPF_NOEXIST)) {
		slot_free_unclaimed(cookie);
		return;
	}
	p->reader = self;
	p->cookie = cookie;
	p->slot = (__u32)slot;
	/* Last, and ordered: the sender's sk_msg reads the fields above once it sees ON. */
	__sync_val_compare_and_swap(&p->state, FG_LEGS_WAIT, FG_LEGS_ON);
	stat(FG_LEGS_ST_PAIRS, 1);
	track(ops);
}

/* A tracked socket is gone: its pair entry, and its slot if fedgate never claimed it. */
static __always_inline void closed(struct bpf_sock_ops *ops)
{
	struct fg_tuple self, peer;
	struct fg_legs_pair *p;
	__u64 cookie = bpf_get_socket_cookie(ops);

	if (fg_tuple_of_ops(ops, &self))
		return;
	bpf_map_delete_elem(&legs_pair, &self);
	fg_tuple_swap(&self, &peer);
	p = bpf_map_lookup_elem(&legs_pair, &peer);
	if (p && p->cookie == cookie)
		bpf_map_delete_elem(&legs_pair, &peer);
	slot_free_unclaimed(cookie);
}

SEC("sockops")
int fg_legs_sockops(struct bpf_sock_ops *ops)
{
	switch (ops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		active_established(ops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		passive_established(ops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (ops->args[1] == BPF_TCP_CLOSE)
			closed(ops);
		break;
	}
	return 1;
}

/* @size bytes go by TCP, and every later byte of this direction: nothing may overtake them. */
static __always_inline int by_tcp(struct fg_legs_slot *s, __u64 size, __u32 why)
{
	if (!s->sticky) {
		s->sticky = 1;
		stat(why, 1);
	}
	stat(FG_LEGS_ST_TCP_BYTES, size);
	return SK_PASS;
}

SEC("sk_msg")
int fg_legs_msg(struct sk_msg_md *msg)
{
	struct fg_tuple self, reader;
	struct fg_legs_pair *p;
	struct fg_legs_slot *s;
	__u64 size = msg->size, redirected, consumed;
	__u32 slot;

	if (tuple_of_msg(msg, &self))
		return SK_PASS;
	p = bpf_map_lookup_elem(&legs_pair, &self);
	if (!p || p->sticky)
		return SK_PASS;
	if (__sync_fetch_and_add(&p->state, 0) != FG_LEGS_ON) {
		/* Sent before fedgate's end was there: a later redirect would overtake it. */
		p->sticky = 1;
		stat(FG_LEGS_ST_STICKY, 1);
		stat(FG_LEGS_ST_TCP_BYTES, size);
		return SK_PASS;
	}
	slot = p->slot;
	s = bpf_map_lookup_elem(&legs_slots, &slot);
	if (!s)
		return SK_PASS;
	if ((READ_ONCE_U64(s->owner) & ~FG_LEGS_CLAIMED) != p->cookie) {
		p->sticky = 1; /* the reader is gone and its slot with it: TCP tells the sender */
		return SK_PASS;
	}
	if (READ_ONCE_U64(s->sticky))
		return by_tcp(s, size, FG_LEGS_ST_STICKY); /* the reader is closing */
	redirected = s->redirected;
	consumed = READ_ONCE_U64(s->consumed);
	/* consumed > redirected cannot happen (every byte read was redirected): deny on doubt. */
	if (consumed > redirected)
		return by_tcp(s, size, FG_LEGS_ST_STICKY);
	if (redirected - consumed + size > budget)
		return by_tcp(s, size, FG_LEGS_ST_OVER_BUDGET);
	reader = p->reader;
	if (bpf_msg_redirect_hash(msg, &legs_socks, &reader, BPF_F_INGRESS) != SK_PASS)
		return by_tcp(s, size, FG_LEGS_ST_STICKY); /* the reader left legs_socks: closed */
	s->redirected = redirected + size;
	stat(FG_LEGS_ST_BYTES, size);
	stat(FG_LEGS_ST_MSGS, 1);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
