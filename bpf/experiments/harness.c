// SPDX-License-Identifier: MIT
/*
 * The harness of the sockmap experiments (harness.h): what every run of
 * sockmap_check.c uses. It calls only bpf/sockmap.c and the system, never back
 * into sockmap_check.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/tls.h>

#include "bpf/sockmap.h"
#include "fedgate/ktls-t.h"
#include "harness.h"

void fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

uint8_t pattern(uint64_t i)
{
	return (uint8_t)(((i * 0x9E3779B1u) >> 24) ^ (i >> 13));
}

double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void tcp_pair(int *a, int *b)
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

struct key K[2];

void make_keys(void)
{
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 16; i++) {
			K[k].key[i] = (uint8_t)(0x10 * (k + 1) + i);
			if (i < 12)
				K[k].iv[i] = (uint8_t)(0x40 + 0x20 * k + i);
		}
}

void ktls(int fd, int tx, int rx)
{
	struct tls12_crypto_info_aes_gcm_128 ci;
	const int dir[2] = { tx, rx };

	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		fail("TCP_ULP tls: %s (kTLS needs the VM: tests/vm/run)", strerror(errno));
	for (int d = 0; d < 2; d++) {
		if (dir[d] < 0)
			continue;
		memset(&ci, 0, sizeof(ci));
		ci.info.version = TLS_1_3_VERSION;
		ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(ci.salt, K[dir[d]].iv, 4);
		memcpy(ci.iv, K[dir[d]].iv + 4, 8);
		memcpy(ci.key, K[dir[d]].key, 16);
		if (setsockopt(fd, SOL_TLS, d ? TLS_RX : TLS_TX, &ci, sizeof(ci)))
			fail("%s: %s", d ? "TLS_RX" : "TLS_TX", strerror(errno));
	}
}

ssize_t send_record(int fd, uint8_t type, const void *p, size_t len)
{
	union {
		char buf[CMSG_SPACE(1)];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { (void *)p, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
			      .msg_controllen = sizeof(cb.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_TLS;
	c->cmsg_type = TLS_SET_RECORD_TYPE;
	c->cmsg_len = CMSG_LEN(1);
	*CMSG_DATA(c) = type;
	return sendmsg(fd, &msg, MSG_NOSIGNAL);
}

void send_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0)
			fail("send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* ---- threads ---- */

void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t buf[65536];
	uint64_t off = 0;

	while (off < w->len) {
		size_t n = w->len - off < sizeof(buf) ? (size_t)(w->len - off) : sizeof(buf);
		ssize_t r;

		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		r = send(w->fd, buf, n, MSG_NOSIGNAL);
		if (r < 0) {
			if (w->lax)
				return NULL;
			fail("writer: %s", strerror(errno));
		}
		off += (uint64_t)r;
	}
	shutdown(w->fd, SHUT_WR);
	return NULL;
}

void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint8_t buf[65536];

	for (;;) {
		ssize_t n = recv(r->fd, buf, sizeof(buf), 0);

		if (n == 0)
			return NULL;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			if (r->lax)
				return NULL;
			fail("reader: %s", strerror(errno));
		}
		for (ssize_t i = 0; i < n && !r->bad_at; i++)
			if (buf[i] != pattern(r->got + (uint64_t)i))
				r->bad_at = r->got + (uint64_t)i + 1;
		r->got += (uint64_t)n;
	}
}

static void rx_log(struct tls_rx *t, const char *fmt, ...)
{
	va_list ap;

	if (t->log_len > sizeof(t->log) - 64)
		return;
	va_start(ap, fmt);
	t->log_len += (size_t)vsnprintf(t->log + t->log_len, sizeof(t->log) - t->log_len, fmt, ap);
	va_end(ap);
}

void wait_drained(struct fg_sockmap *m, uint64_t up_extra, uint64_t down_extra)
{
	struct fg_sockmap_counters c;
	double end = now() + 60;

	while (now() < end) {
		if (fg_sockmap_counters(m, TUNNEL, &c))
			fail("counters: %s", strerror(errno));
		if (fg_sockmap_drained(&c, up_extra, down_extra))
			return;
		usleep(1000);
	}
	fail("not drained after 60 s: up %llu/%llu down %llu/%llu", (unsigned long long)c.up_sealed,
	     (unsigned long long)c.up_bytes, (unsigned long long)c.down_sent,
	     (unsigned long long)c.down_bytes);
}

void *tls_rx_main(void *arg)
{
	struct tls_rx *t = arg;
	uint8_t buf[16384 + 1];
	union {
		char buf[CMSG_SPACE(1)];
		struct cmsghdr align;
	} cb;

	for (;;) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
				      .msg_controllen = sizeof(cb.buf) };
		ssize_t n = recvmsg(t->fd, &msg, 0);
		struct cmsghdr *c = msg.msg_controllen ? CMSG_FIRSTHDR(&msg) : NULL;
		int type = c && c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE
				   ? *CMSG_DATA(c)
				   : 0;

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				rx_log(t, "EAGAIN ");
				continue;
			}
			rx_log(t, "error:%s ", strerror(errno));
			return NULL;
		}
		if (n == 0 && type) {
			rx_log(t, "0+type%d ", type);
			t->zero_with_cmsg++;
			continue;
		}
		if (n == 0) {
			rx_log(t, "EOF");
			t->eof = true;
			return NULL;
		}
		rx_log(t, "%zd:type%d ", n, type);
		if (type == CT_ALERT && n == 2) {
			t->alerts++;
			memcpy(t->last_alert, buf, 2);
			if (buf[1] == 0) {
				t->close_notify = true;
				/* The data plane's step 5: drain, then half-close. */
				wait_drained(t->m, 0, 0);
				shutdown(t->plain_fd, SHUT_WR);
			}
		} else if (type == CT_DATA) {
			t->data_bytes += (int)n;
		} else {
			t->others++;
		}
	}
}

void *plain_eof_main(void *arg)
{
	struct plain_eof *p = arg;
	char b[4096];

	for (;;) {
		p->ret = recv(p->fd, b, sizeof(b), 0);
		if (p->ret < 0 && (errno == EAGAIN || errno == EINTR)) {
			p->eagain++;
			usleep(1000);
			continue;
		}
		p->err = p->ret < 0 ? errno : 0;
		return NULL;
	}
}

void start(pthread_t *th, void *(*fn)(void *), void *arg)
{
	if (pthread_create(th, NULL, fn, arg))
		fail("pthread_create");
}

void join(pthread_t th)
{
	pthread_join(th, NULL);
}

/* ---- reports ---- */

void print_counters(struct fg_sockmap *m)
{
	struct fg_sockmap_counters c;

	if (fg_sockmap_counters(m, TUNNEL, &c))
		fail("counters: %s", strerror(errno));
	printf("counters: up_bytes=%llu up_skbs=%llu up_sealed=%llu up_records=%llu "
	       "down_bytes=%llu down_records=%llu down_sent=%llu down_sends=%llu passed=%llu "
	       "dropped=%llu unarmed=%llu\n",
	       (unsigned long long)c.up_bytes, (unsigned long long)c.up_skbs,
	       (unsigned long long)c.up_sealed, (unsigned long long)c.up_records,
	       (unsigned long long)c.down_bytes, (unsigned long long)c.down_records,
	       (unsigned long long)c.down_sent, (unsigned long long)c.down_sends,
	       (unsigned long long)c.passed, (unsigned long long)c.dropped,
	       (unsigned long long)c.unarmed);
}

long tls_stat(const char *name)
{
	FILE *f = fopen("/proc/net/tls_stat", "r");
	char k[64];
	long v, ret = -1;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", k, &v) == 2)
		if (!strcmp(k, name))
			ret = v;
	fclose(f);
	return ret;
}

struct fg_sockmap *open_map(void)
{
	struct fg_sockmap *m;
	const char *why;
	int ret = fg_sockmap_open(&m, &why);

	if (ret)
		fail("fg_sockmap_open: %s (%s)", why, strerror(-ret));
	return m;
}

void check_counter(const char *name, uint64_t got, uint64_t want)
{
	if (got != want)
		fail("counter %s is %llu, expected %llu", name, (unsigned long long)got,
		     (unsigned long long)want);
}

void check_gone(struct fg_sockmap *m)
{
	unsigned int n;
	int ret = fg_sockmap_count(m, &n);

	if (ret)
		fail("count: %s", strerror(-ret));
	printf("map_entries_after=%u\n", n);
	if (n)
		fail("%u sockets still in the map", n);
}

/* ---- the tunnel ---- */

/* Steps 1-3 of bpf/sockmap.h; @peer_tx/@peer_rx < 0: the peer stays raw TCP. */
void tunnel_up(struct tunnel *t, bool use_ktls, int peer_tx, int peer_rx)
{
	unsigned int dirs = FG_SOCKMAP_UP | FG_SOCKMAP_DOWN;
	const char *why;
	int ret;

	t->m = open_map();
	tcp_pair(&t->app, &t->plain);
	tcp_pair(&t->tls, &t->peer);
	ret = fg_sockmap_add_tls(t->m, TUNNEL, t->tls, &why);
	if (ret)
		fail("add_tls: %s (%s)", why, strerror(-ret));
	if (use_ktls) {
		ktls(t->tls, 0, 1);
		if (peer_tx >= 0 || peer_rx >= 0)
			ktls(t->peer, peer_tx, peer_rx);
	} else {
		dirs |= FG_SOCKMAP_RAW;
	}
	ret = fg_sockmap_arm(t->m, TUNNEL, t->plain, t->tls, dirs, &why);
	if (ret)
		fail("arm: %s (%s)", why, strerror(-ret));
}

void tunnel_close(struct tunnel *t)
{
	int ret = fg_sockmap_remove(t->m, TUNNEL);

	if (ret)
		fail("remove: %s", strerror(-ret));
	close(t->app);
	close(t->plain);
	close(t->tls);
	close(t->peer);
	check_gone(t->m);
	fg_sockmap_free(t->m);
}

void result(struct reader *r, uint64_t want, const char *what)
{
	printf("%s_bytes=%llu\n", what, (unsigned long long)r->got);
	if (r->bad_at)
		fail("%s: byte %llu differs", what, (unsigned long long)(r->bad_at - 1));
	if (r->got != want)
		fail("%s: %llu bytes arrived, %llu sent", what, (unsigned long long)r->got,
		     (unsigned long long)want);
}
