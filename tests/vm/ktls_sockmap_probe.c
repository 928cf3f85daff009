// SPDX-License-Identifier: MIT
/*
 * ktls_sockmap_probe: which order of sockmap and kernel TLS the running kernel accepts, the
 * record of bpf/README.md; run by tests/vm/test_sockmap_ktls.py inside Debian's kernel.
 *
 * The map is a plain BPF_MAP_TYPE_SOCKMAP from bpf_map_create(), with no program attached:
 * joining any sockmap gives the socket a psock, and the psock is all that the kernel's
 * "TLS and sockmap are mutually exclusive" checks look at.
 *
 * Output: "kernel=RELEASE", "plain_socket: sockmap_add=ok" (the map takes a socket without
 * TLS), then the four lines of bpf/README.md and "OK", exit 0, whatever the kernel refused:
 * the caller decides what must hold. Without kernel TLS (TCP_ULP "tls" unknown, as on a
 * kernel without CONFIG_TLS): "no kTLS: ..." and exit 3. A setup failure: "FAIL: why", exit 1.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/tls.h>
#include <bpf/bpf.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define EXIT_NO_KTLS 3

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	exit(1);
}

/* A connected TCP pair on loopback: *@a connected, *@b accepted. */
static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &len))
		fail("listen: %s", strerror(errno));
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sizeof(sa)))
		fail("connect: %s", strerror(errno));
	*b = accept(l, NULL, NULL);
	if (*b < 0)
		fail("accept: %s", strerror(errno));
	close(l);
}

/* "ok" or the error of the call that just returned @ret (0 or -1 with errno). */
static const char *try(int ret)
{
	return ret ? strerror(errno) : "ok";
}

static int ulp(int fd)
{
	return setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"));
}

/* TLS 1.3 AES-128-GCM with fixed key bytes: only whether the kernel takes them matters. */
static int keys(int fd, int dir)
{
	struct tls12_crypto_info_aes_gcm_128 ci = { .info.version = TLS_1_3_VERSION,
						    .info.cipher_type = TLS_CIPHER_AES_GCM_128 };

	memset(ci.key, 0x11, sizeof(ci.key));
	memset(ci.iv, 0x22, sizeof(ci.iv));
	memset(ci.salt, 0x33, sizeof(ci.salt));
	return setsockopt(fd, SOL_TLS, dir, &ci, sizeof(ci));
}

static const char *map_add(int map, int fd)
{
	uint32_t key = 0;
	uint64_t val = (uint64_t)fd;

	return try(bpf_map_update_elem(map, &key, &val, BPF_ANY));
}

static void map_del(int map)
{
	uint32_t key = 0;

	bpf_map_delete_elem(map, &key); /* ENOENT when the add was refused: fine */
}

/* Exits EXIT_NO_KTLS when this kernel has no TLS ULP at all. */
static void need_ktls(void)
{
	int a, b, ret;

	tcp_pair(&a, &b);
	ret = ulp(a);
	if (ret) {
		printf("no kTLS: TCP_ULP tls: %s (this kernel has no kernel TLS; run it in the VM: "
		       "tests/vm/run)\n",
		       strerror(errno));
		exit(EXIT_NO_KTLS);
	}
	close(a);
	close(b);
}

int main(void)
{
	struct utsname u;
	int map, a, b;

	setvbuf(stdout, NULL, _IOLBF, 0);
	uname(&u);
	printf("kernel=%s\n", u.release);
	map = bpf_map_create(BPF_MAP_TYPE_SOCKMAP, "probe", sizeof(uint32_t), sizeof(uint64_t), 1,
			     NULL);
	if (map < 0)
		fail("sockmap: %s (BPF not permitted?)", strerror(-map));

	tcp_pair(&a, &b);
	printf("plain_socket: sockmap_add=%s\n", map_add(map, a));
	map_del(map);
	close(a);
	close(b);
	need_ktls();

	/* 1: into the map first (as the 6.1 selftest sockmap_ktls.c and the kTLS notes say). */
	tcp_pair(&a, &b);
	printf("map_then_ulp: sockmap_add=%s", map_add(map, a));
	printf(" TCP_ULP=%s", try(ulp(a)));
	printf(" TLS_TX=%s", try(keys(a, TLS_TX)));
	printf(" TLS_RX=%s\n", try(keys(a, TLS_RX)));
	map_del(map);
	printf("map_then_ulp: after removal from the map: TLS_TX=%s\n", try(keys(a, TLS_TX)));
	close(a);
	close(b);

	/* 2: kernel TLS first, then the map. */
	tcp_pair(&a, &b);
	printf("ulp_then_map: TCP_ULP=%s", try(ulp(a)));
	printf(" TLS_TX=%s", try(keys(a, TLS_TX)));
	printf(" sockmap_add=%s\n", map_add(map, a));
	map_del(map);
	close(a);
	close(b);

	/* 3: the ULP only (no keys yet), then the map. */
	tcp_pair(&a, &b);
	printf("ulp_no_keys_then_map: TCP_ULP=%s", try(ulp(a)));
	printf(" sockmap_add=%s\n", map_add(map, a));
	map_del(map);
	close(a);
	close(b);
	close(map);
	printf("OK\n");
	return 0;
}
