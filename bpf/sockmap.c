// SPDX-License-Identifier: MIT
/*
 * The data plane's side of bpf/redirect.bpf.c: load and attach the programs,
 * put a tunnel's sockets into the sockhash in the order the kernel needs, read
 * the counters. Contract and ordering: bpf/sockmap.h.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/tls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/sockmap.h"
#include "bpf/redirect.h"
#include "fedgate/ktls-t.h"
#include "redirect.skel.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

_Static_assert(sizeof(struct fg_sockmap_counters) == sizeof(struct fg_sock_stats),
	       "fg_sockmap_counters mirrors struct fg_sock_stats");

struct fg_sockmap {
	struct redirect *skel;
	int socks, cookies, sk_info, stats; /* map fds, owned by skel */
};

/* libbpf's own messages go to the debug level of whoever sets FEDGATE_DEBUG. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || !getenv("FEDGATE_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static const char *load_why(int err)
{
	switch (err) {
	case -EPERM:
	case -EACCES:
		return "loading the sockmap BPF programs is not permitted: the data plane needs "
		       "CAP_BPF and CAP_NET_ADMIN (or root) at start";
	case -EINVAL:
	case -524: /* the kernel's ENOTSUPP: a helper or attach type it lacks */
	case -EOPNOTSUPP:
		return "the kernel refused the sockmap BPF programs (CONFIG_BPF_STREAM_PARSER, "
		       "CONFIG_NET_SOCK_MSG?); FEDGATE_DEBUG=1 shows the verifier log";
	case -ENOMEM:
		return "out of memory while loading the sockmap BPF programs";
	}
	return "cannot load the sockmap BPF programs; FEDGATE_DEBUG=1 shows libbpf's reason";
}

static int attach(struct fg_sockmap *m, struct bpf_program *p, enum bpf_attach_type type)
{
	return bpf_prog_attach(bpf_program__fd(p), m->socks, type, 0);
}

int fg_sockmap_open(struct fg_sockmap **out, const char **why)
{
	struct fg_sockmap *m;
	int ret;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m) {
		*why = "out of memory";
		return -ENOMEM;
	}
	libbpf_set_print(libbpf_print);
	m->skel = redirect__open();
	if (!m->skel) {
		ret = -errno;
		*why = "cannot open the embedded sockmap BPF object";
		goto free_map;
	}
	ret = redirect__load(m->skel);
	if (ret) {
		*why = load_why(ret);
		goto destroy_skel;
	}
	m->socks = bpf_map__fd(m->skel->maps.fg_socks);
	m->cookies = bpf_map__fd(m->skel->maps.fg_cookies);
	m->sk_info = bpf_map__fd(m->skel->maps.fg_sk_info);
	m->stats = bpf_map__fd(m->skel->maps.fg_stats);
	/* Stream parser + stream verdict, never BPF_SK_SKB_VERDICT: see bpf/README.md. */
	ret = attach(m, m->skel->progs.fg_parser, BPF_SK_SKB_STREAM_PARSER);
	if (!ret)
		ret = attach(m, m->skel->progs.fg_verdict, BPF_SK_SKB_STREAM_VERDICT);
	if (!ret)
		ret = attach(m, m->skel->progs.fg_msg, BPF_SK_MSG_VERDICT);
	if (ret) {
		*why = ret == -EPERM ? load_why(ret) : "cannot attach the sockmap BPF programs";
		goto destroy_skel;
	}
	*why = "loaded";
	*out = m;
	return 0;

destroy_skel:
	redirect__destroy(m->skel);
free_map:
	free(m);
	return ret;
}

void fg_sockmap_free(struct fg_sockmap *m)
{
	if (!m)
		return;
	/* The map goes with its last fd: the kernel drops every socket from it. */
	redirect__destroy(m->skel);
	free(m);
}

static int cookie_of(int fd, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);

	return getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len) ? -errno : 0;
}

/* Registers @fd as @role of the tunnel: its cookie for sk_skb, its storage for sk_msg. */
static int set_info(struct fg_sockmap *m, int fd, const struct fg_sock_info *si, uint64_t flags)
{
	uint64_t cookie;
	int ret;

	ret = cookie_of(fd, &cookie);
	if (ret)
		return ret;
	if (bpf_map_update_elem(m->cookies, &cookie, si, flags))
		return -errno;
	if (bpf_map_update_elem(m->sk_info, &fd, si, flags)) {
		ret = -errno;
		if (flags == BPF_NOEXIST)
			bpf_map_delete_elem(m->cookies, &cookie);
		return ret;
	}
	return 0;
}

static void clear_info(struct fg_sockmap *m, int fd)
{
	uint64_t cookie;

	if (!cookie_of(fd, &cookie))
		bpf_map_delete_elem(m->cookies, &cookie);
	bpf_map_delete_elem(m->sk_info, &fd);
}

int fg_sockmap_add_tls(struct fg_sockmap *m, uint32_t tunnel_id, int tls_fd, const char **why)
{
	struct fg_sock_key key = { .tunnel = tunnel_id, .role = FG_ROLE_TLS };
	struct fg_sock_info si = { .tunnel = tunnel_id, .role = FG_ROLE_TLS };
	struct fg_sock_stats zero = { 0 };
	uint64_t fd = (uint64_t)tls_fd;
	int ret;

	if (bpf_map_update_elem(m->stats, &tunnel_id, &zero, BPF_NOEXIST)) {
		ret = -errno;
		*why = ret == -EEXIST ? "tunnel id already in the sockmap" : "cannot add counters";
		return ret;
	}
	ret = set_info(m, tls_fd, &si, BPF_NOEXIST);
	if (ret) {
		*why = "cannot register the TLS socket (not a socket? already registered?)";
		goto del_stats;
	}
	if (bpf_map_update_elem(m->socks, &key, &fd, BPF_NOEXIST)) {
		ret = -errno;
		*why = ret == -EINVAL ? "the kernel refused the TLS socket: it already has a ULP "
					"(kTLS must come after the sockmap) or is not established TCP"
				      : "cannot put the TLS socket into the sockmap";
		goto clear_info;
	}
	*why = "added";
	return 0;

clear_info:
	clear_info(m, tls_fd);
del_stats:
	bpf_map_delete_elem(m->stats, &tunnel_id);
	return ret;
}

/* kTLS is on @fd in the directions @dirs needs: ULP "tls" and the crypto state. */
static int check_ktls(int fd, unsigned int dirs, const char **why)
{
	struct tls12_crypto_info_aes_gcm_256 ci; /* the largest one fedgate installs */
	char ulp[16] = "";
	socklen_t len = sizeof(ulp);

	if (getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &len) || strcmp(ulp, "tls")) {
		*why = "the TLS socket has no kernel TLS (TCP_ULP is not \"tls\")";
		return -EINVAL;
	}
	len = sizeof(ci);
	if ((dirs & FG_SOCKMAP_UP) && getsockopt(fd, SOL_TLS, TLS_TX, &ci, &len)) {
		*why = "the TLS socket has no kernel TLS TX key";
		return -EINVAL;
	}
	len = sizeof(ci);
	if ((dirs & FG_SOCKMAP_DOWN) && getsockopt(fd, SOL_TLS, TLS_RX, &ci, &len)) {
		*why = "the TLS socket has no kernel TLS RX key";
		return -EINVAL;
	}
	return 0;
}

int fg_sockmap_arm(struct fg_sockmap *m, uint32_t tunnel_id, int plain_fd, int tls_fd,
		   unsigned int dirs, const char **why)
{
	struct fg_sock_key key = { .tunnel = tunnel_id, .role = FG_ROLE_PLAIN };
	uint32_t flags = FG_SI_ARMED;
	struct fg_sock_info si;
	struct fg_sock_stats st;
	uint64_t fd = (uint64_t)plain_fd, cookie, tls_cookie;
	int ret;

	if (bpf_map_lookup_elem(m->stats, &tunnel_id, &st)) {
		*why = "tunnel not in the sockmap: fg_sockmap_add_tls() first";
		return -ENOENT;
	}
	ret = cookie_of(tls_fd, &tls_cookie);
	if (!ret && (bpf_map_lookup_elem(m->cookies, &tls_cookie, &si) || si.tunnel != tunnel_id))
		ret = -ENOENT;
	if (ret) {
		*why = "this TLS socket was not added for this tunnel";
		return ret;
	}
	if (!(dirs & FG_SOCKMAP_RAW)) {
		ret = check_ktls(tls_fd, dirs, why);
		if (ret)
			return ret;
	}
	/*
	 * After TLS_RX the stream parser no longer sees this socket's bytes, so
	 * what it dropped until now is all it will ever drop.
	 */
	if (st.unarmed) {
		*why = "the peer's records arrived while kernel TLS was being installed and were "
		       "lost";
		return -EPROTO;
	}
	flags |= (dirs & FG_SOCKMAP_UP ? FG_SI_UP : 0) | (dirs & FG_SOCKMAP_DOWN ? FG_SI_DOWN : 0) |
		 (dirs & FG_SOCKMAP_RAW ? FG_SI_RAW : 0);
	si = (struct fg_sock_info){ .tunnel = tunnel_id, .role = FG_ROLE_PLAIN, .flags = flags };
	ret = set_info(m, plain_fd, &si, BPF_NOEXIST);
	if (ret) {
		*why = "cannot register the plaintext socket";
		return ret;
	}
	if (bpf_map_update_elem(m->socks, &key, &fd, BPF_NOEXIST)) {
		ret = -errno;
		*why = "cannot put the plaintext socket into the sockmap";
		goto clear_plain;
	}
	/* Last: the kTLS socket's records may go to the plaintext socket now. */
	si = (struct fg_sock_info){ .tunnel = tunnel_id, .role = FG_ROLE_TLS, .flags = flags };
	ret = set_info(m, tls_fd, &si, BPF_EXIST);
	if (ret) {
		*why = "cannot arm the TLS socket";
		goto del_plain;
	}
	*why = "armed";
	return 0;

del_plain:
	bpf_map_delete_elem(m->socks, &key);
clear_plain:
	if (!cookie_of(plain_fd, &cookie))
		bpf_map_delete_elem(m->cookies, &cookie);
	bpf_map_delete_elem(m->sk_info, &plain_fd);
	return ret;
}

/* Removes the cookie entries of @tunnel_id: the fds may be gone, the cookies stay unique. */
static void forget_cookies(struct fg_sockmap *m, uint32_t tunnel_id)
{
	uint64_t key, next, doomed[2];
	struct fg_sock_info si;
	int n = 0;
	void *prev = NULL;

	while (n < 2 && !bpf_map_get_next_key(m->cookies, prev, &next)) {
		if (!bpf_map_lookup_elem(m->cookies, &next, &si) && si.tunnel == tunnel_id)
			doomed[n++] = next;
		key = next;
		prev = &key;
	}
	while (n--)
		bpf_map_delete_elem(m->cookies, &doomed[n]);
}

int fg_sockmap_remove(struct fg_sockmap *m, uint32_t tunnel_id)
{
	struct fg_sock_key key = { .tunnel = tunnel_id };
	int ret = 0;

	if (bpf_map_delete_elem(m->stats, &tunnel_id))
		ret = -errno;
	/* Either may be gone already: closing a socket takes it out of the map. */
	key.role = FG_ROLE_PLAIN;
	bpf_map_delete_elem(m->socks, &key);
	key.role = FG_ROLE_TLS;
	bpf_map_delete_elem(m->socks, &key);
	forget_cookies(m, tunnel_id);
	/* Socket storage goes with the socket itself. */
	return ret;
}

int fg_sockmap_counters(struct fg_sockmap *m, uint32_t tunnel_id, struct fg_sockmap_counters *c)
{
	struct fg_sock_stats st;

	if (bpf_map_lookup_elem(m->stats, &tunnel_id, &st))
		return -errno;
	memcpy(c, &st, sizeof(*c));
	return 0;
}

int fg_sockmap_count(struct fg_sockmap *m, unsigned int *n)
{
	struct fg_sock_key key, next;
	void *prev = NULL;

	*n = 0;
	while (!bpf_map_get_next_key(m->socks, prev, &next)) {
		(*n)++;
		key = next;
		prev = &key;
	}
	return errno == ENOENT ? 0 : -errno;
}
