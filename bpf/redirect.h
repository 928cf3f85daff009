/* SPDX-License-Identifier: MIT */
/*
 * Shared by bpf/redirect.bpf.c and bpf/sockmap.c: the keys and values of
 * the sockmap programs' maps. Fixed-size types only (linux/types.h), so the
 * layout is the same for clang -target bpf and for the data plane.
 */
#ifndef FEDGATE_BPF_REDIRECT_H
#define FEDGATE_BPF_REDIRECT_H

#include <linux/types.h>

/* Sockets the programs may hold: a plaintext and a kTLS socket per tunnel. */
#define FG_SOCKMAP_MAX_TUNNELS 65536
#define FG_SOCKMAP_MAX_SOCKS (2 * FG_SOCKMAP_MAX_TUNNELS)

enum fg_sock_role {
	FG_ROLE_PLAIN = 0, /* the application's plaintext socket */
	FG_ROLE_TLS = 1,   /* the peer gateway's socket, kTLS installed */
};

/* Key of fg_socks (BPF_MAP_TYPE_SOCKHASH): which socket of which tunnel. */
struct fg_sock_key {
	__u32 tunnel;
	__u32 role; /* enum fg_sock_role */
};

/* Flags of struct fg_sock_info. */
#define FG_SI_ARMED 0x1u /* kTLS TX and RX are installed: redirect */
#define FG_SI_UP 0x2u	 /* plaintext socket ingress -> kTLS socket egress */
#define FG_SI_DOWN 0x4u	 /* kTLS decrypted records -> plaintext socket egress */
/*
 * Test fixture only: the "TLS" socket is plain TCP, so its verdict forwards
 * raw bytes instead of decrypted records. Never set on a kTLS socket.
 */
#define FG_SI_RAW 0x8u

/*
 * Per socket, in fg_cookies (keyed by SO_COOKIE, for the sk_skb programs) and
 * fg_sk_info (socket storage, for the sk_msg program: it has no cookie helper).
 */
struct fg_sock_info {
	__u32 tunnel;
	__u32 role; /* enum fg_sock_role */
	__u32 flags; /* FG_SI_* */
	__u32 pad;
};

/*
 * Per tunnel, in fg_stats (hash keyed by tunnel id). "up": plaintext socket to
 * kTLS socket; "down": kTLS socket to plaintext socket. Updated atomically.
 */
struct fg_sock_stats {
	__u64 up_bytes;	      /* plaintext the verdict redirected to the kTLS socket */
	__u64 up_skbs;	      /* ... in this many skbs */
	__u64 up_sealed;      /* plaintext the kTLS socket took in (sk_msg), alerts included */
	__u64 up_records;     /* ... in this many records (one sk_msg run per record) */
	__u64 down_bytes;     /* decrypted data redirected to the plaintext socket */
	__u64 down_records;   /* ... in this many records */
	__u64 down_sent;      /* bytes the plaintext socket sent (sk_msg) */
	__u64 down_sends;     /* ... in this many sends */
	__u64 passed;	      /* records or skbs left to userspace: alerts, tickets */
	__u64 dropped;	      /* redirects that failed: the other socket was not in the map */
	__u64 unarmed;	      /* bytes seen before kTLS was installed: dropped, tunnel broken */
};

#endif
