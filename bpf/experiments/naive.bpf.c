// SPDX-License-Identifier: MIT
/*
 * Experiment only (bpf/README.md): a verdict that redirects every skb of the
 * kTLS socket as it is, the way the sockmap selftests do, to show what 6.1
 * hands a stream verdict on kTLS RX. Not used by the data plane.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "redirect.h"

/* BPF_F_INGRESS to queue on the target's receive side instead of sending. */
const volatile __u64 redirect_flags = 0;

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4);
	__type(key, struct fg_sock_key);
	__type(value, __u64);
} naive_socks SEC(".maps");

/* Bytes and runs of the verdict, for the experiment's report. */
__u64 seen_bytes, seen_runs;

SEC("sk_skb/stream_parser")
int naive_parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int naive_verdict(struct __sk_buff *skb)
{
	struct fg_sock_key key = { .tunnel = 1, .role = FG_ROLE_PLAIN };

	__sync_fetch_and_add(&seen_bytes, skb->len);
	__sync_fetch_and_add(&seen_runs, 1);
	return bpf_sk_redirect_hash(skb, &naive_socks, &key, redirect_flags);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
