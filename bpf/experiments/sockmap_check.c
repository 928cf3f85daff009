// SPDX-License-Identifier: MIT
/*
 * The sockmap experiments of bpf/README.md and the fixture of
 * tests/test_sockmap.py and tests/vm/test_sockmap_ktls.py.
 *
 * One tunnel on loopback: app <-> plain (the plaintext socket) and
 * tls <-> peer (the wire), with fixed AES-128-GCM keys where kTLS is used.
 *
 *   sockmap_check load               the programs load and attach
 *   sockmap_check plain BYTES        RAW redirect both ways at once (no kTLS)
 *   sockmap_check ktls-up BYTES      (a) app -> kTLS TX; peer decrypts raw records
 *   sockmap_check ktls-down BYTES    (b) peer kTLS TX -> kTLS RX -> app
 *   sockmap_check ktls-alert         (c) alerts and a handshake record between data
 *   sockmap_check ktls-remove BYTES  (d) remove and close mid-transfer
 *   sockmap_check naive [ingress]    a verdict redirecting kTLS RX skbs as they are
 *
 * Prints key=value lines, then "OK" (exit 0) or "FAIL: why" (exit 1).
 * The sockets, keys, threads and reports they share are in harness.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/tls.h>
#include <bpf/bpf.h>
#include <openssl/evp.h>

#include "bpf/sockmap.h"
#include "fedgate/ktls-t.h"
#include "../redirect.h"
#include "naive.skel.h"
#include "harness.h"

/* Both directions at once through a RAW tunnel: sockmap redirect on any kernel. */
static void run_plain(uint64_t n)
{
	struct tunnel t;
	struct writer up = { .len = n }, down = { .len = n };
	struct reader at_peer = { 0 }, at_app = { 0 };
	struct plain_eof pe = { 0 }, te = { 0 };
	double t0;

	tunnel_up(&t, false, -1, -1);
	up.fd = t.app;
	down.fd = t.peer;
	at_peer.fd = t.peer;
	at_app.fd = t.app;
	pe.fd = t.plain;
	te.fd = t.tls;
	t0 = now();
	start(&at_peer.th, reader_main, &at_peer);
	start(&at_app.th, reader_main, &at_app);
	start(&pe.th, plain_eof_main, &pe);
	start(&te.th, plain_eof_main, &te);
	start(&up.th, writer_main, &up);
	start(&down.th, writer_main, &down);
	join(up.th);
	join(down.th);
	/* EOF on either side: drain, then pass the half-close on. */
	join(pe.th);
	if (pe.ret != 0)
		fail("plaintext socket: recv returned %zd (%s), expected EOF", pe.ret,
		     strerror(pe.err));
	join(te.th);
	if (te.ret != 0)
		fail("tls socket: recv returned %zd (%s), expected EOF", te.ret, strerror(te.err));
	wait_drained(t.m, 0, 0);
	shutdown(t.tls, SHUT_WR);
	shutdown(t.plain, SHUT_WR);
	join(at_peer.th);
	join(at_app.th);
	printf("seconds=%.3f MiB_per_s=%.1f\n", now() - t0, 2 * n / 1048576.0 / (now() - t0));
	print_counters(t.m);
	result(&at_peer, n, "up");
	result(&at_app, n, "down");
	{
		struct fg_sockmap_counters c;

		fg_sockmap_counters(t.m, TUNNEL, &c);
		check_counter("up_bytes", c.up_bytes, n);
		check_counter("up_sealed", c.up_sealed, n);
		check_counter("down_bytes", c.down_bytes, n);
		check_counter("down_sent", c.down_sent, n);
		check_counter("dropped", c.dropped, 0);
	}
	tunnel_close(&t);
}

/* ---- (a): the peer reads raw records and opens them itself ---- */

struct raw_peer {
	pthread_t th;
	int fd;
	uint64_t plain_bytes, records, bad_at;
	int alerts;
	uint8_t last_type, alert[2];
	char why[128];
};

static int open_record(uint64_t seq, const uint8_t *hdr, uint8_t *ct, size_t len, uint8_t *out,
		       size_t *out_len, uint8_t *type)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t nonce[12];
	int l = 0, l2 = 0, ok;

	memcpy(nonce, K[0].iv, 12);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= (uint8_t)(seq >> (56 - 8 * i));
	ok = c && EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, K[0].key, nonce) &&
	     EVP_DecryptUpdate(c, NULL, &l, hdr, 5) &&
	     EVP_DecryptUpdate(c, out, &l, ct, (int)(len - 16)) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, ct + len - 16) &&
	     EVP_DecryptFinal_ex(c, out + l, &l2);
	EVP_CIPHER_CTX_free(c);
	if (!ok)
		return -EBADMSG;
	*out_len = (size_t)(l + l2);
	while (*out_len && !out[*out_len - 1])
		(*out_len)--;
	if (!*out_len)
		return -EPROTO;
	*type = out[--*out_len];
	return 0;
}

static int recv_exact(int fd, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n <= 0)
			return n == 0 ? 0 : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

static void *raw_peer_main(void *arg)
{
	struct raw_peer *p = arg;
	static uint8_t ct[16384 + 256 + 16], pt[sizeof(ct)];
	uint8_t hdr[5];

	for (;;) {
		size_t len, plen;
		uint8_t type;
		int r = recv_exact(p->fd, hdr, 5);

		if (r <= 0) {
			if (r < 0)
				snprintf(p->why, sizeof(p->why), "recv: %s", strerror(-r));
			return NULL;
		}
		len = (size_t)hdr[3] << 8 | hdr[4];
		if (hdr[0] != CT_DATA || hdr[1] != 3 || hdr[2] != 3 || len < 17 || len > sizeof(ct)) {
			snprintf(p->why, sizeof(p->why),
				 "record %llu: not a TLS 1.3 record header: %02x %02x %02x len %zu "
				 "(plaintext on the wire?)",
				 (unsigned long long)p->records, hdr[0], hdr[1], hdr[2], len);
			return NULL;
		}
		if (recv_exact(p->fd, ct, len) <= 0) {
			snprintf(p->why, sizeof(p->why), "truncated record");
			return NULL;
		}
		if (open_record(p->records, hdr, ct, len, pt, &plen, &type)) {
			snprintf(p->why, sizeof(p->why), "record %llu does not decrypt",
				 (unsigned long long)p->records);
			return NULL;
		}
		p->records++;
		p->last_type = type;
		if (type == CT_ALERT) {
			p->alerts++;
			memcpy(p->alert, pt, 2);
			continue;
		}
		for (size_t i = 0; i < plen && !p->bad_at; i++)
			if (pt[i] != pattern(p->plain_bytes + i))
				p->bad_at = p->plain_bytes + i + 1;
		p->plain_bytes += plen;
	}
}

static void run_ktls_up(uint64_t n)
{
	static const uint8_t close_notify[2] = { 1, 0 };
	struct tunnel t;
	struct writer w = { .len = n };
	struct raw_peer rp = { 0 };
	struct plain_eof pe = { 0 };
	struct fg_sockmap_counters c;
	long tx0 = tls_stat("TlsTxSw");
	double t0;

	tunnel_up(&t, true, -1, -1); /* the peer stays raw: it opens records itself */
	w.fd = t.app;
	rp.fd = t.peer;
	pe.fd = t.plain;
	t0 = now();
	start(&rp.th, raw_peer_main, &rp);
	start(&pe.th, plain_eof_main, &pe);
	start(&w.th, writer_main, &w);
	join(w.th);
	join(pe.th);
	printf("plain_recv_at_eof=%zd eagain_retries=%d\n", pe.ret, pe.eagain);
	if (pe.ret != 0)
		fail("plaintext socket: recv returned %zd (%s), expected EOF", pe.ret,
		     strerror(pe.err));
	wait_drained(t.m, 0, 0);
	if (send_record(t.tls, CT_ALERT, close_notify, 2) != 2)
		fail("close_notify: %s", strerror(errno));
	shutdown(t.tls, SHUT_WR);
	join(rp.th);
	printf("seconds=%.3f records_on_wire=%llu plaintext_bytes=%llu last_type=%u alert=%u,%u "
	       "TlsTxSw_delta=%ld\n",
	       now() - t0, (unsigned long long)rp.records, (unsigned long long)rp.plain_bytes,
	       rp.last_type, rp.alert[0], rp.alert[1], tls_stat("TlsTxSw") - tx0);
	print_counters(t.m);
	if (rp.why[0])
		fail("peer: %s", rp.why);
	if (rp.bad_at)
		fail("peer: decrypted byte %llu differs", (unsigned long long)(rp.bad_at - 1));
	if (rp.plain_bytes != n)
		fail("peer decrypted %llu bytes, %llu sent", (unsigned long long)rp.plain_bytes,
		     (unsigned long long)n);
	if (rp.last_type != CT_ALERT || rp.alert[1] != 0)
		fail("the last record is not close_notify: data overtook it or it was lost");
	fg_sockmap_counters(t.m, TUNNEL, &c);
	check_counter("up_bytes", c.up_bytes, n);
	check_counter("up_sealed", c.up_sealed, n + 2);
	check_counter("up_records", c.up_records, rp.records);
	tunnel_close(&t);
}

/* ---- (b) and (c): the peer seals with kTLS, our kTLS RX redirects ---- */

static void run_ktls_down(uint64_t n, bool alerts)
{
	static const uint8_t user_canceled[2] = { 1, 90 }, close_notify[2] = { 1, 0 };
	static const uint8_t ticket[12] = { 4, 0, 0, 8, 0, 0, 0, 0, 1, 2, 3, 4 };
	struct tunnel t;
	struct reader at_app = { 0 };
	struct tls_rx rx = { 0 };
	struct fg_sockmap_counters c;
	uint8_t *buf = malloc(n);
	uint64_t sent = 0, records = 0;
	long rx0 = tls_stat("TlsRxSw");
	double t0;

	if (!buf)
		fail("malloc");
	for (uint64_t i = 0; i < n; i++)
		buf[i] = pattern(i);
	tunnel_up(&t, true, 1, 0);
	at_app.fd = t.app;
	rx.fd = t.tls;
	rx.m = t.m;
	rx.plain_fd = t.plain;
	t0 = now();
	start(&at_app.th, reader_main, &at_app);
	start(&rx.th, tls_rx_main, &rx);
	if (!alerts) {
		send_all(t.peer, buf, n);
		records = (n + 16383) / 16384;
	} else {
		/* data, warning alert, data, handshake record, data */
		uint64_t part = n / 3;

		send_all(t.peer, buf, part);
		if (send_record(t.peer, CT_ALERT, user_canceled, 2) != 2 ||
		    (send_all(t.peer, buf + part, part), 0) ||
		    send_record(t.peer, CT_HANDSHAKE, ticket, sizeof(ticket)) != sizeof(ticket))
			fail("peer sendmsg: %s", strerror(errno));
		send_all(t.peer, buf + 2 * part, n - 2 * part);
	}
	sent = n;
	if (send_record(t.peer, CT_ALERT, close_notify, 2) != 2)
		fail("close_notify: %s", strerror(errno));
	shutdown(t.peer, SHUT_WR);
	join(rx.th);
	join(at_app.th);
	printf("seconds=%.3f TlsRxSw_delta=%ld\n", now() - t0, tls_stat("TlsRxSw") - rx0);
	printf("tls_recvmsg_log: %s\n", rx.log);
	print_counters(t.m);
	result(&at_app, sent, "down");
	if (!rx.close_notify || !rx.eof)
		fail("recvmsg on the kTLS socket did not see close_notify then EOF");
	if (rx.data_bytes)
		fail("%d data bytes reached userspace instead of the plaintext socket",
		     rx.data_bytes);
	fg_sockmap_counters(t.m, TUNNEL, &c);
	check_counter("down_bytes", c.down_bytes, n);
	check_counter("down_sent", c.down_sent, n);
	if (alerts) {
		if (rx.alerts != 2 || rx.others != 1)
			fail("userspace got %d alerts and %d other records, expected 2 and 1",
			     rx.alerts, rx.others);
		check_counter("passed", c.passed, 3);
	} else {
		check_counter("passed", c.passed, 1);
		if (c.down_records < records)
			fail("%llu records redirected, at least %llu expected",
			     (unsigned long long)c.down_records, (unsigned long long)records);
	}
	free(buf);
	tunnel_close(&t);
}

/* ---- (d): out of the map mid-transfer ---- */

static void run_ktls_remove(uint64_t n, bool use_ktls)
{
	struct tunnel t;
	struct writer w = { .len = n, .lax = true };
	struct reader r = { .lax = true };
	struct fg_sockmap_counters c;
	unsigned int count;
	double end;

	tunnel_up(&t, use_ktls, -1, -1);
	w.fd = t.app;
	r.fd = t.peer;
	start(&r.th, reader_main, &r);
	start(&w.th, writer_main, &w);
	end = now() + 60;
	do {
		usleep(1000);
		fg_sockmap_counters(t.m, TUNNEL, &c);
	} while (c.up_bytes < n / 4 && now() < end);
	if (c.up_bytes >= n)
		fail("the transfer ended before the removal: raise BYTES");
	fg_sockmap_count(t.m, &count);
	printf("removed_at_up_bytes=%llu map_entries_before=%u\n", (unsigned long long)c.up_bytes,
	       count);
	if (fg_sockmap_remove(t.m, TUNNEL))
		fail("remove: %s", strerror(errno));
	if (fg_sockmap_counters(t.m, TUNNEL, &c) != -ENOENT)
		fail("counters still there after remove");
	close(t.plain);
	close(t.tls);
	close(t.app);
	close(t.peer);
	join(w.th);
	join(r.th);
	check_gone(t.m);
	fg_sockmap_free(t.m);

	/* Closing without remove(): the kernel takes the sockets out by itself. */
	tunnel_up(&t, use_ktls, -1, -1);
	close(t.plain);
	close(t.tls);
	check_gone(t.m);
	if (fg_sockmap_remove(t.m, TUNNEL))
		fail("remove after close: %s", strerror(errno));
	close(t.app);
	close(t.peer);
	fg_sockmap_free(t.m);
}

/* ---- which order of sockmap and kTLS the kernel accepts ---- */

static struct tls12_crypto_info_aes_gcm_128 crypto(int k)
{
	struct tls12_crypto_info_aes_gcm_128 ci = { .info.version = TLS_1_3_VERSION,
						    .info.cipher_type = TLS_CIPHER_AES_GCM_128 };

	memcpy(ci.salt, K[k].iv, 4);
	memcpy(ci.iv, K[k].iv + 4, 8);
	memcpy(ci.key, K[k].key, 16);
	return ci;
}

static const char *try(int ret)
{
	return ret ? strerror(errno) : "ok";
}

/*
 * Prints what each step returns; exits 0 either way: the caller (the VM test)
 * decides what the kernel must do.
 */
static void run_ktls_order(void)
{
	struct tls12_crypto_info_aes_gcm_128 ci = crypto(0);
	struct fg_sockmap *m = open_map();
	int a, b;
	const char *why;
	int ret;

	/* 1: into the map first (as the sockmap selftests and the kTLS notes say). */
	tcp_pair(&a, &b);
	ret = fg_sockmap_add_tls(m, TUNNEL, a, &why);
	printf("map_then_ulp: sockmap_add=%s", ret ? strerror(-ret) : "ok");
	printf(" TCP_ULP=%s", try(setsockopt(a, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"))));
	printf(" TLS_TX=%s", try(setsockopt(a, SOL_TLS, TLS_TX, &ci, sizeof(ci))));
	printf(" TLS_RX=%s\n", try(setsockopt(a, SOL_TLS, TLS_RX, &ci, sizeof(ci))));
	fg_sockmap_remove(m, TUNNEL);
	printf("map_then_ulp: after removal from the map: TLS_TX=%s\n",
	       try(setsockopt(a, SOL_TLS, TLS_TX, &ci, sizeof(ci))));
	close(a);
	close(b);

	/* 2: kTLS first, then the map. */
	tcp_pair(&a, &b);
	printf("ulp_then_map: TCP_ULP=%s",
	       try(setsockopt(a, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"))));
	printf(" TLS_TX=%s", try(setsockopt(a, SOL_TLS, TLS_TX, &ci, sizeof(ci))));
	ret = fg_sockmap_add_tls(m, TUNNEL, a, &why);
	printf(" sockmap_add=%s\n", ret ? strerror(-ret) : "ok");
	fg_sockmap_remove(m, TUNNEL);
	close(a);
	close(b);

	/* 3: ULP only (no keys yet), then the map. */
	tcp_pair(&a, &b);
	printf("ulp_no_keys_then_map: TCP_ULP=%s",
	       try(setsockopt(a, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"))));
	ret = fg_sockmap_add_tls(m, TUNNEL, a, &why);
	printf(" sockmap_add=%s\n", ret ? strerror(-ret) : "ok");
	fg_sockmap_remove(m, TUNNEL);
	close(a);
	close(b);
	fg_sockmap_free(m);
}

/* ---- a verdict that redirects kTLS RX skbs untouched ---- */

static void run_naive(bool ingress)
{
	static const char hello[] = "hello, plaintext";
	static const uint8_t user_canceled[2] = { 1, 90 };
	struct fg_sock_key kp = { 1, FG_ROLE_PLAIN }, kt = { 1, FG_ROLE_TLS };
	struct naive *s = naive__open();
	struct tls_rx rx = { 0 };
	int app, plain, tls, peer, mfd;
	uint64_t fd;
	uint8_t got[256];
	ssize_t n;
	struct pollfd pfd;

	if (!s)
		fail("naive open");
	s->rodata->redirect_flags = ingress ? BPF_F_INGRESS : 0;
	if (naive__load(s))
		fail("naive load: %s", strerror(errno));
	mfd = bpf_map__fd(s->maps.naive_socks);
	if (bpf_prog_attach(bpf_program__fd(s->progs.naive_parser), mfd, BPF_SK_SKB_STREAM_PARSER,
			    0) ||
	    bpf_prog_attach(bpf_program__fd(s->progs.naive_verdict), mfd,
			    BPF_SK_SKB_STREAM_VERDICT, 0))
		fail("naive attach: %s", strerror(errno));
	tcp_pair(&app, &plain);
	tcp_pair(&tls, &peer);
	fd = (uint64_t)tls;
	if (bpf_map_update_elem(mfd, &kt, &fd, BPF_NOEXIST))
		fail("naive: add tls: %s", strerror(errno));
	ktls(tls, 0, 1);
	ktls(peer, 1, 0);
	fd = (uint64_t)plain;
	if (bpf_map_update_elem(mfd, &kp, &fd, BPF_NOEXIST))
		fail("naive: add plain: %s", strerror(errno));
	rx.fd = tls;
	start(&rx.th, tls_rx_main, &rx);
	send_all(peer, (const uint8_t *)hello, sizeof(hello) - 1);
	send_record(peer, CT_ALERT, user_canceled, 2);
	sleep(1);
	/* Egress: the app sees it; ingress: it waits on the plaintext socket's own queue. */
	pfd.fd = ingress ? plain : app;
	pfd.events = POLLIN;
	n = poll(&pfd, 1, 2000) == 1 ? recv(pfd.fd, got, sizeof(got), MSG_DONTWAIT) : -1;
	printf("naive_%s: verdict_runs=%llu verdict_bytes=%llu arrived=%zd bytes:",
	       ingress ? "ingress" : "egress", (unsigned long long)s->bss->seen_runs,
	       (unsigned long long)s->bss->seen_bytes, n);
	for (ssize_t i = 0; i < n; i++)
		printf(" %02x", got[i]);
	printf("\nnaive_sent: %zu bytes \"%s\" then alert 01 5a\n", sizeof(hello) - 1, hello);
	shutdown(peer, SHUT_WR);
	sleep(1);
	printf("tls_recvmsg_log: %s\n", rx.log);
	close(app);
	close(plain);
	close(tls);
	close(peer);
	join(rx.th);
	naive__destroy(s);
}

int main(int argc, char **argv)
{
	struct utsname u;
	uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 0) : 4 << 20;

	setvbuf(stdout, NULL, _IOLBF, 0);
	uname(&u);
	printf("kernel=%s\n", u.release);
	make_keys();
	if (argc < 2)
		fail("usage: sockmap_check load|plain|ktls-up|ktls-down|ktls-alert|ktls-remove|"
		     "plain-remove|naive [BYTES|ingress]");
	if (!strcmp(argv[1], "load"))
		fg_sockmap_free(open_map());
	else if (!strcmp(argv[1], "plain"))
		run_plain(n);
	else if (!strcmp(argv[1], "ktls-up"))
		run_ktls_up(n);
	else if (!strcmp(argv[1], "ktls-down"))
		run_ktls_down(n, false);
	else if (!strcmp(argv[1], "ktls-alert"))
		run_ktls_down(argc > 2 ? n : 300000, true);
	else if (!strcmp(argv[1], "ktls-remove"))
		run_ktls_remove(n, true);
	else if (!strcmp(argv[1], "plain-remove"))
		run_ktls_remove(n, false);
	else if (!strcmp(argv[1], "ktls-order"))
		run_ktls_order();
	else if (!strcmp(argv[1], "naive"))
		run_naive(argc > 2 && !strcmp(argv[2], "ingress"));
	else
		fail("unknown experiment %s", argv[1]);
	printf("OK\n");
	return 0;
}
