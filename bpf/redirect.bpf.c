// SPDX-License-Identifier: MIT
/*
 * Tunnel bytes that never enter userspace: a sockhash holds each tunnel's
 * plaintext socket and its kTLS socket (see bpf/README.md for what each path
 * does on which kernel, and bpf/sockmap.h for the ordering rules).
 *
 * - fg_parser + fg_verdict (sk_skb stream parser + stream verdict) run on the
 *   plaintext socket's ingress and redirect it to the kTLS socket's egress,
 *   where the kernel seals it. On the kTLS socket the same verdict runs inside
 *   recvmsg() on each decrypted record; data records are redirected to the
 *   plaintext socket's egress, every other record (alert, NewSessionTicket,
 *   KeyUpdate) is left to the recvmsg() caller with its record type.
 * - fg_msg (sk_msg) only counts: it runs for every sendmsg into a socket of
 *   the map, so it sees what the kTLS socket really sealed and what the
 *   plaintext socket really sent. Comparing those with the verdict's counters
 *   tells the data plane when the redirect queues are empty.
 *
 * Only UAPI types (struct __sk_buff, struct sk_msg_md): the verifier rewrites
 * their accesses for the running kernel, so one object loads on 6.1 and later
 * without vmlinux.h or CO-RE relocations.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "redirect.h"

/* TLS 1.3 record framing (RFC 8446 5.2), as the kernel hands it to the verdict. */
#define TLS_HDR 5
#define TLS_TAG 16
#define TLS_CT_APPLICATION_DATA 23
/* Padding bytes the verdict looks through for the inner content type. */
#define PAD_SCAN 32

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, FG_SOCKMAP_MAX_SOCKS);
	__type(key, struct fg_sock_key);
	__type(value, __u64);
} fg_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_SOCKMAP_MAX_SOCKS);
	__type(key, __u64); /* SO_COOKIE */
	__type(value, struct fg_sock_info);
} fg_cookies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct fg_sock_info);
} fg_sk_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_SOCKMAP_MAX_TUNNELS);
	__type(key, __u32);
	__type(value, struct fg_sock_stats);
} fg_stats SEC(".maps");

#define ADD(field, n) __sync_fetch_and_add(&(field), (n))

/* Each skb is a message: the plaintext stream has no framing to respect. */
SEC("sk_skb/stream_parser")
int fg_parser(struct __sk_buff *skb)
{
	return skb->len;
}

/*
 * The inner content type of a decrypted TLS 1.3 record and the length of its
 * content: on 6.1 the verdict gets the whole record buffer, 5 header bytes,
 * the content, the type byte, zero padding, and 16 bytes where the tag was.
 * Returns the type, or 0 when it is not found within PAD_SCAN bytes.
 */
static __always_inline int inner_type(struct __sk_buff *skb, __u32 *content_len)
{
	__u32 len = skb->len;
	__u32 off;
	__u8 b;

	if (len < TLS_HDR + 1 + TLS_TAG)
		return 0;
	off = len - TLS_TAG - 1;
	for (int i = 0; i < PAD_SCAN; i++) {
		if (off < TLS_HDR)
			return 0;
		if (bpf_skb_load_bytes(skb, off, &b, 1))
			return 0;
		if (b) {
			*content_len = off - TLS_HDR;
			return b;
		}
		off--;
	}
	return 0;
}

static __always_inline int redirect(struct __sk_buff *skb, const struct fg_sock_info *si,
				    struct fg_sock_stats *st, __u32 to_role, __u32 len)
{
	struct fg_sock_key key = { .tunnel = si->tunnel, .role = to_role };
	int verdict = bpf_sk_redirect_hash(skb, &fg_socks, &key, 0);

	if (verdict != SK_PASS) {
		ADD(st->dropped, 1);
		return verdict;
	}
	if (to_role == FG_ROLE_TLS) {
		ADD(st->up_bytes, len);
		ADD(st->up_skbs, 1);
	} else {
		ADD(st->down_bytes, len);
		ADD(st->down_records, 1);
	}
	return SK_PASS;
}

/* A decrypted record on the kTLS socket, inside recvmsg(). */
static __always_inline int verdict_tls_record(struct __sk_buff *skb, const struct fg_sock_info *si,
					      struct fg_sock_stats *st)
{
	__u32 content_len = 0;
	int type = inner_type(skb, &content_len);

	if (type != TLS_CT_APPLICATION_DATA) {
		/* recvmsg() returns it with its TLS_GET_RECORD_TYPE cmsg. */
		ADD(st->passed, 1);
		return SK_PASS;
	}
	if (!content_len) {
		/* An empty data record carries nothing: consume it here. */
		ADD(st->down_records, 1);
		return SK_DROP;
	}
	/*
	 * Cut the buffer down to the content: the redirect sends skb->len bytes
	 * from the start of the skb, not the record's offset and length.
	 */
	if (bpf_skb_change_tail(skb, TLS_HDR + content_len, 0) ||
	    bpf_skb_adjust_room(skb, -TLS_HDR, 0, 0)) {
		ADD(st->passed, 1);
		return SK_PASS; /* cannot happen with the record intact: userspace copes */
	}
	return redirect(skb, si, st, FG_ROLE_PLAIN, content_len);
}

SEC("sk_skb/stream_verdict")
int fg_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct fg_sock_info *si = bpf_map_lookup_elem(&fg_cookies, &cookie);
	struct fg_sock_stats *st;

	if (!si)
		return SK_DROP; /* not registered: never forward bytes of unknown origin */
	st = bpf_map_lookup_elem(&fg_stats, &si->tunnel);
	if (!st)
		return SK_DROP;
	if (!(si->flags & FG_SI_ARMED)) {
		/*
		 * The kTLS socket got bytes between joining the map and TLS_RX:
		 * they are ciphertext no one may see. Dropping them breaks the
		 * tunnel, and fg_sockmap_arm() reports it.
		 */
		ADD(st->unarmed, skb->len);
		return SK_DROP;
	}
	if (si->role == FG_ROLE_PLAIN) {
		if (!(si->flags & FG_SI_UP))
			return SK_PASS;
		return redirect(skb, si, st, FG_ROLE_TLS, skb->len);
	}
	if (!(si->flags & FG_SI_DOWN))
		return SK_PASS;
	if (si->flags & FG_SI_RAW)
		return redirect(skb, si, st, FG_ROLE_PLAIN, skb->len);
	return verdict_tls_record(skb, si, st);
}

SEC("sk_msg")
int fg_msg(struct sk_msg_md *msg)
{
	struct fg_sock_info *si;
	struct fg_sock_stats *st;

	if (!msg->sk)
		return SK_PASS;
	si = bpf_sk_storage_get(&fg_sk_info, msg->sk, 0, 0);
	if (!si)
		return SK_PASS;
	st = bpf_map_lookup_elem(&fg_stats, &si->tunnel);
	if (!st)
		return SK_PASS;
	if (si->role == FG_ROLE_TLS) {
		ADD(st->up_sealed, msg->size);
		ADD(st->up_records, 1);
	} else {
		ADD(st->down_sent, msg->size);
		ADD(st->down_sends, 1);
	}
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
