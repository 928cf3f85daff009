/* SPDX-License-Identifier: MIT */
/*
 * BPF sockmap redirect (bpf/redirect.bpf.c, bpf/README.md): tunnel bytes move
 * between the plaintext socket and the kTLS socket inside the kernel.
 *
 * WARNING, measured (bpf/README.md): Debian's 6.1.190+ kernels (and any kernel
 * with the CVE-2026-93824 fix) refuse kTLS and sockmap on the same socket: after
 * step 1, TLS_TX and TLS_RX fail with EINVAL, and a socket with the TLS ULP
 * cannot be added (EINVAL). There, only FG_SOCKMAP_RAW tunnels (plaintext to
 * plaintext) work, and kTLS tunnels must stay on io_uring. Steps 2-5 below
 * follow the 6.1 source for kernels without that fix; they have not run.
 *
 * Lifecycle of one tunnel, in this order:
 *
 *  1. fg_sockmap_add_tls(tls_fd) BEFORE setsockopt(TCP_ULP, "tls"): the kernel
 *     refuses (EINVAL) to put a socket that already has a ULP into a sockmap.
 *  2. Install kTLS: TCP_ULP, TLS_TX, TLS_RX (fg_ktls_install()). Records the
 *     peer sends between 1 and the end of 2 are met by the sockmap's stream
 *     parser, not by kTLS: the programs drop them and step 3 fails with
 *     -EPROTO. Keep 1-3 back to back.
 *  3. Write what must reach the application first (plaintext OpenSSL already
 *     read) to plain_fd, then fg_sockmap_arm(plain_fd): the plaintext socket
 *     joins the map only now, after TLS_TX, so no plaintext can leave
 *     unencrypted.
 *  4. Keep a recvmsg() with a control buffer (CMSG_SPACE(1)) pending on tls_fd
 *     for the whole tunnel: on 6.1 the verdict runs on decrypted records only
 *     inside recvmsg(). It does not return for redirected data records. It
 *     returns:
 *       > 0 with TLS_GET_RECORD_TYPE != 23: a non-data record (alert,
 *           NewSessionTicket, KeyUpdate) for userspace to handle;
 *       0 with a TLS_GET_RECORD_TYPE cmsg: records went to the plaintext
 *           socket and a record of another type, or EOF, is next: call again;
 *       0 without a cmsg: EOF (the peer's FIN);
 *       -EAGAIN: nothing left for userspace now (non-blocking or io_uring's
 *           first try): call again when readable.
 *     Also keep a recv() pending on plain_fd: with FG_SOCKMAP_UP it returns
 *     only 0 (EOF) or an error, because the bytes go to the kTLS socket; it may
 *     return -EAGAIN even on a blocking socket while the parser is busy.
 *  5. Before acting on an EOF or close_notify, wait until
 *     fg_sockmap_drained(): the redirected bytes sit in kernel queues until
 *     the other socket took them, and close_notify, shutdown() or
 *     fg_sockmap_remove() must not overtake them.
 *  6. fg_sockmap_remove(), then close the sockets. Closing alone also removes
 *     them from the map; remove() also forgets the counters.
 *
 * After fg_sockmap_open() no privilege is needed: map updates need only the
 * map's file descriptor. All functions return 0 or a negative errno.
 */
#ifndef FEDGATE_SOCKMAP_H
#define FEDGATE_SOCKMAP_H

#include <stdbool.h>
#include <stdint.h>

struct fg_sockmap;

/* Directions for fg_sockmap_arm(); a direction not given stays with userspace. */
#define FG_SOCKMAP_UP 0x1u   /* plaintext socket -> kTLS socket (the kernel seals) */
#define FG_SOCKMAP_DOWN 0x2u /* kTLS socket (decrypted) -> plaintext socket */
/* Test fixture only: tls_fd is plain TCP and bytes are forwarded as they come. */
#define FG_SOCKMAP_RAW 0x100u

/* Per tunnel; see struct fg_sock_stats in bpf/redirect.h for each field. */
struct fg_sockmap_counters {
	uint64_t up_bytes, up_skbs;	    /* redirected plaintext -> kTLS */
	uint64_t up_sealed, up_records;	    /* taken in and sealed by the kTLS socket */
	uint64_t down_bytes, down_records;  /* decrypted data records redirected */
	uint64_t down_sent, down_sends;	    /* sent by the plaintext socket */
	uint64_t passed;		    /* records left to userspace (non-data) */
	uint64_t dropped;		    /* redirects without a target socket */
	uint64_t unarmed;		    /* bytes dropped before arm: tunnel broken */
};

/*
 * Loads bpf/redirect.bpf.c and attaches its stream parser, stream verdict and
 * sk_msg programs to the sockhash. On failure @why says what to do: -EPERM
 * means the process lacks CAP_BPF and CAP_NET_ADMIN (run as root or grant
 * them). @why is a static string.
 */
int fg_sockmap_open(struct fg_sockmap **out, const char **why);
void fg_sockmap_free(struct fg_sockmap *m);

/*
 * Step 1: puts @tls_fd (established TCP, no ULP yet) into the map as tunnel
 * @tunnel_id's TLS socket and zeroes its counters. -EEXIST: the id is in use;
 * -EINVAL: the socket already has a ULP or is not an established TCP socket.
 */
int fg_sockmap_add_tls(struct fg_sockmap *m, uint32_t tunnel_id, int tls_fd, const char **why);

/*
 * Step 3: checks that kTLS TX and RX are on @tls_fd (unless FG_SOCKMAP_RAW),
 * puts @plain_fd into the map and starts redirecting @dirs. -EPROTO: peer
 * records arrived before kTLS was installed and were dropped: abort the
 * tunnel. -ENOENT: no fg_sockmap_add_tls() for @tunnel_id.
 */
int fg_sockmap_arm(struct fg_sockmap *m, uint32_t tunnel_id, int plain_fd, int tls_fd,
		   unsigned int dirs, const char **why);

/* Step 6: takes both sockets out of the map and forgets the counters. -ENOENT if unknown. */
int fg_sockmap_remove(struct fg_sockmap *m, uint32_t tunnel_id);

int fg_sockmap_counters(struct fg_sockmap *m, uint32_t tunnel_id, struct fg_sockmap_counters *c);

/*
 * True when no redirected byte is still queued in the kernel: each socket took
 * in everything the verdict sent its way. @up_extra is what userspace itself
 * wrote into the kTLS socket (a close_notify: 2), @down_extra what it wrote
 * into the plaintext socket after arming.
 */
static inline bool fg_sockmap_drained(const struct fg_sockmap_counters *c, uint64_t up_extra,
				      uint64_t down_extra)
{
	return c->up_sealed == c->up_bytes + up_extra && c->down_sent == c->down_bytes + down_extra;
}

/* Sockets in the map (both roles, all tunnels): for tests and leak checks. */
int fg_sockmap_count(struct fg_sockmap *m, unsigned int *n);

#endif
