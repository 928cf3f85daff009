/* SPDX-License-Identifier: MIT */
/*
 * Handoff message tests: fg_handoff_check on the bytes (each refusal alone),
 * then fg_handoff_send and fg_handoff_parse over a SOCK_SEQPACKET pair: two
 * fds arrive, and a message with the wrong fds, a truncated control buffer or
 * bad bytes is refused with its fds closed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "fedgate/handoff.h"
#include "fedgate/legs-t.h"
#include "unit.h"

#define HEADER offsetof(struct fg_handoff, preread)

static struct fg_handoff *good(uint32_t preread_len)
{
	static struct fg_handoff h;

	memset(&h, 0, sizeof(h));
	h.magic = FG_HANDOFF_MAGIC;
	h.id = 7;
	h.preread_len = preread_len;
	h.keys.cipher = FG_AES_256_GCM;
	snprintf(h.tunnel, sizeof(h.tunnel), "t");
	snprintf(h.peer, sizeof(h.peer), "foo.internal");
	memset(h.preread, 'x', preread_len);
	return &h;
}

UNIT_TEST(check_accepts)
{
	struct fg_handoff *h = good(0);

	CHECK_EQ(fg_handoff_check(h, HEADER), 0);
	h = good(FG_HANDOFF_PREREAD_MAX);
	CHECK_EQ(fg_handoff_check(h, HEADER + FG_HANDOFF_PREREAD_MAX), 0);
	/* names that fill their arrays but for the NUL */
	memset(h->tunnel, 'a', sizeof(h->tunnel) - 1);
	memset(h->peer, 'b', sizeof(h->peer) - 1);
	CHECK_EQ(fg_handoff_check(h, HEADER + FG_HANDOFF_PREREAD_MAX), 0);
	h->keys.cipher = FG_AES_128_GCM;
	CHECK_EQ(fg_handoff_check(h, HEADER + FG_HANDOFF_PREREAD_MAX), 0);
	h->keys.cipher = FG_CHACHA20_POLY1305;
	CHECK_EQ(fg_handoff_check(h, HEADER + FG_HANDOFF_PREREAD_MAX), 0);
	/* an idle limit: off, or up to the longest the config allows */
	h->idle_s = 1;
	CHECK_EQ(fg_handoff_check(h, HEADER + FG_HANDOFF_PREREAD_MAX), 0);
	h->idle_s = FG_HANDOFF_IDLE_MAX_S;
	CHECK_EQ(fg_handoff_check(h, HEADER + FG_HANDOFF_PREREAD_MAX), 0);
}

UNIT_TEST(check_refuses)
{
	struct fg_handoff *h;

	CHECK_EQ(fg_handoff_check(good(0), 0), -EPROTO);
	CHECK_EQ(fg_handoff_check(good(0), HEADER - 1), -EPROTO);
	CHECK_EQ(fg_handoff_check(good(0), HEADER + 1), -EPROTO);
	CHECK_EQ(fg_handoff_check(good(10), HEADER + 9), -EPROTO);
	CHECK_EQ(fg_handoff_check(good(10), HEADER + 11), -EPROTO);
	CHECK_EQ(fg_handoff_check(good(0), sizeof(struct fg_handoff)), -EPROTO);
	h = good(0);
	h->magic ^= 1;
	CHECK_EQ(fg_handoff_check(h, HEADER), -EPROTO);
	h = good(0);
	h->preread_len = FG_HANDOFF_PREREAD_MAX + 1;
	CHECK_EQ(fg_handoff_check(h, HEADER + FG_HANDOFF_PREREAD_MAX + 1), -EPROTO);
	h->preread_len = UINT32_MAX;
	CHECK_EQ(fg_handoff_check(h, HEADER + UINT32_MAX), -EPROTO);
	CHECK_EQ(fg_handoff_check(h, HEADER - 1), -EPROTO);
	h = good(0);
	h->keys.cipher = FG_CIPHER_NONE;
	CHECK_EQ(fg_handoff_check(h, HEADER), -EPROTO);
	h->keys.cipher = 0x1304; /* TLS_AES_128_CCM_SHA256: not carried */
	CHECK_EQ(fg_handoff_check(h, HEADER), -EPROTO);
	h = good(0);
	memset(h->tunnel, 'a', sizeof(h->tunnel));
	CHECK_EQ(fg_handoff_check(h, HEADER), -EPROTO);
	h = good(0);
	memset(h->peer, 'b', sizeof(h->peer));
	CHECK_EQ(fg_handoff_check(h, HEADER), -EPROTO);
	h = good(0);
	h->idle_s = FG_HANDOFF_IDLE_MAX_S + 1;
	CHECK_EQ(fg_handoff_check(h, HEADER), -EPROTO);
	h->idle_s = UINT32_MAX;
	CHECK_EQ(fg_handoff_check(h, HEADER), -EPROTO);
}

/* Only the first @len bytes are read: a buffer of exactly @len bytes is enough. */
UNIT_TEST(check_reads_only_len)
{
	for (size_t len = 0; len < HEADER; len += 7) {
		unsigned char *buf = malloc(len ? len : 1);

		memcpy(buf, good(0), len);
		CHECK_EQ(fg_handoff_check((const struct fg_handoff *)buf, len), -EPROTO);
		free(buf);
	}
}

static int is_open(int fd)
{
	return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

/* Receives one message as the data plane worker does; returns fg_handoff_parse's result. */
static int receive(int sock, struct fg_handoff *h, size_t cmsg_len, int fds[2])
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = h, .iov_len = sizeof(*h)};
	struct msghdr msg = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = u.buf,
	    .msg_controllen = cmsg_len,
	};
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);

	CHECK(n > 0);
	if (n <= 0)
		return -EIO;
	return fg_handoff_parse(&msg, (size_t)n, h, fds);
}

/* Sends @h's header and @preread bytes with @n_fds fds, bypassing fg_handoff_send's shape. */
static void send_raw(int sock, const struct fg_handoff *h, size_t len, const int *fds, int n_fds)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)h, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	if (n_fds) {
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)n_fds * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)n_fds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)n_fds * sizeof(int));
	}
	CHECK_EQ(sendmsg(sock, &msg, 0), (ssize_t)len);
}

/* How many fds the process has open. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	CHECK(d != NULL);
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

#define CMSG_ROOM CMSG_SPACE(4 * sizeof(int))

/* Refused, fds[] emptied, and the fds that came closed again. */
#define REFUSED_AS(sock, cmsg_len, err)                                                            \
	do {                                                                                       \
		int _before = count_fds();                                                         \
		CHECK_EQ(receive((sock), &in, (cmsg_len), fds), (err));                            \
		CHECK_EQ(fds[0], -1);                                                              \
		CHECK_EQ(fds[1], -1);                                                              \
		CHECK_EQ(count_fds(), _before);                                                    \
	} while (0)
#define REFUSED(sock, cmsg_len) REFUSED_AS(sock, cmsg_len, -EPROTO)

UNIT_TEST(send_and_parse)
{
	static struct fg_handoff in;
	int sv[2], p[2], q[2], fds[2];
	struct fg_handoff *h;
	char c = 0;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(pipe(q), 0);

	/* a good message: the two fds arrive, in order, and work */
	CHECK_EQ(fg_handoff_send(sv[0], good(5), p[1], q[1]), 0);
	CHECK_EQ(receive(sv[1], &in, CMSG_ROOM, fds), 0);
	CHECK_EQ(in.preread_len, 5);
	CHECK_MEM(in.preread, "xxxxx", 5);
	CHECK(is_open(fds[0]) && is_open(fds[1]));
	CHECK_EQ(write(fds[0], "p", 1), 1);
	CHECK_EQ(read(p[0], &c, 1), 1);
	CHECK_EQ(c, 'p');
	CHECK_EQ(write(fds[1], "q", 1), 1);
	CHECK_EQ(read(q[0], &c, 1), 1);
	CHECK_EQ(c, 'q');
	close(fds[0]);
	close(fds[1]);

	/* bad bytes with two fds */
	h = good(0);
	h->magic = 0;
	CHECK_EQ(fg_handoff_send(sv[0], h, p[1], q[1]), 0);
	REFUSED(sv[1], CMSG_ROOM);
	h = good(0);
	memset(h->peer, 'x', sizeof(h->peer));
	CHECK_EQ(fg_handoff_send(sv[0], h, p[1], q[1]), 0);
	REFUSED(sv[1], CMSG_ROOM);

	/* one fd, three fds, none */
	send_raw(sv[0], good(0), HEADER, (int[]){p[1]}, 1);
	REFUSED(sv[1], CMSG_ROOM);
	send_raw(sv[0], good(0), HEADER, (int[]){p[1], q[1], p[1]}, 3);
	REFUSED(sv[1], CMSG_ROOM);
	send_raw(sv[0], good(0), HEADER, NULL, 0);
	REFUSED(sv[1], CMSG_ROOM);

	/* a control buffer too short for two fds: MSG_CTRUNC, told apart, id still readable */
	CHECK_EQ(fg_handoff_send(sv[0], good(0), p[1], q[1]), 0);
	REFUSED_AS(sv[1], CMSG_LEN(sizeof(int)), -EMFILE);
	CHECK_EQ(fg_handoff_id(&in, HEADER), 7);

	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

/* The local redirect slot travels as an index the data plane maps: -1 or inside the array. */
UNIT_TEST(check_legs_slot)
{
	struct fg_handoff *h = good(0);

	h->legs_slot = -1;
	CHECK_EQ(fg_handoff_check(h, HEADER), 0);
	h->legs_slot = FG_LEGS_SLOTS - 1;
	CHECK_EQ(fg_handoff_check(h, HEADER), 0);
	h->legs_slot = FG_LEGS_SLOTS;
	CHECK_EQ(fg_handoff_check(h, HEADER), -EPROTO);
	h->legs_slot = -2;
	CHECK_EQ(fg_handoff_check(h, HEADER), -EPROTO);
}

/* The receiver out of descriptors: the kernel drops the fds with MSG_CTRUNC (issue 14). */
UNIT_TEST(parse_emfile)
{
	static struct fg_handoff in;
	struct rlimit old, low;
	int sv[2], p[2], q[2], fds[2], hold[64], n = 0;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(pipe(q), 0);
	CHECK_EQ(fg_handoff_send(sv[0], good(3), p[1], q[1]), 0);
	CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
	/* every descriptor below the limit taken: the two fds cannot be installed */
	low = old;
	low.rlim_cur = (rlim_t)count_fds() + 8;
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (n < 64 && (hold[n] = dup(0)) >= 0)
		n++;
	CHECK(n < 64);
	CHECK_EQ(receive(sv[1], &in, CMSG_ROOM, fds), -EMFILE);
	CHECK_EQ(fds[0], -1);
	CHECK_EQ(fds[1], -1);
	CHECK_EQ(fg_handoff_id(&in, HEADER + 3), 7);
	while (n > 0)
		close(hold[--n]);
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

/* A handoff with id 0 cannot be answered: refused; fg_handoff_id needs the magic and a header. */
UNIT_TEST(check_id)
{
	struct fg_handoff *h = good(0);

	CHECK_EQ(fg_handoff_id(h, HEADER), 7);
	CHECK_EQ(fg_handoff_id(h, HEADER - 1), 0);
	h->id = 0;
	CHECK_EQ(fg_handoff_check(h, HEADER), -EPROTO);
	h = good(0);
	h->magic ^= 1;
	CHECK_EQ(fg_handoff_id(h, HEADER), 0);
}

UNIT_TEST(ack_and_drain_check)
{
	struct fg_handoff_ack a = {FG_HANDOFF_ACK_MAGIC, 3, -EMFILE, 10}, out;
	struct fg_handoff_drain d = {FG_HANDOFF_DRAIN_MAGIC, 10000}, dout;
	int sv[2];
	uint8_t buf[64];

	CHECK_EQ(fg_handoff_ack_check(&a, sizeof(a), &out), 0);
	CHECK_EQ(out.id, 3);
	CHECK_EQ(out.err, -EMFILE);
	CHECK_EQ(out.n_tunnels, 10);
	CHECK_EQ(fg_handoff_ack_check(&a, sizeof(a) - 1, &out), -EPROTO);
	a.err = 5; /* a positive errno is not what the data plane sends */
	CHECK_EQ(fg_handoff_ack_check(&a, sizeof(a), &out), -EPROTO);
	a.err = -100000;
	CHECK_EQ(fg_handoff_ack_check(&a, sizeof(a), &out), -EPROTO);
	a.err = -EIO;
	a.id = 0; /* a status report carries no error */
	CHECK_EQ(fg_handoff_ack_check(&a, sizeof(a), &out), -EPROTO);
	a.err = 0;
	CHECK_EQ(fg_handoff_ack_check(&a, sizeof(a), &out), 0);
	a.magic = FG_HANDOFF_MAGIC;
	CHECK_EQ(fg_handoff_ack_check(&a, sizeof(a), &out), -EPROTO);

	CHECK_EQ(fg_handoff_drain_check(&d, sizeof(d), &dout), 0);
	CHECK_EQ(dout.deadline_ms, 10000);
	CHECK_EQ(fg_handoff_drain_check(&d, sizeof(d) + 1, &dout), -EPROTO);
	d.deadline_ms = 86400u * 1000u + 1;
	CHECK_EQ(fg_handoff_drain_check(&d, sizeof(d), &dout), -EPROTO);
	/* a drain is no handoff, and no handoff is a drain */
	d.deadline_ms = 0;
	CHECK_EQ(fg_handoff_check((const struct fg_handoff *)&d, sizeof(d)), -EPROTO);
	CHECK_EQ(fg_handoff_drain_check(good(0), sizeof(d), &dout), -EPROTO);

	/* both travel whole over the pair, without waiting */
	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	a.magic = FG_HANDOFF_ACK_MAGIC;
	CHECK_EQ(fg_handoff_send_small(sv[1], &a, sizeof(a)), 0);
	CHECK_EQ(recv(sv[0], buf, sizeof(buf), 0), (ssize_t)sizeof(a));
	CHECK_EQ(fg_handoff_ack_check(buf, sizeof(a), &out), 0);
	close(sv[0]);
	close(sv[1]);
}

UNIT_TEST(closed_check)
{
	struct fg_handoff_closed c = {FG_HANDOFF_CLOSED_MAGIC,
				      3,
				      7,
				      0,
				      {{11, 0, 0, 0}, {12, 0, 0, 0}, {13, 0, 5, 6}}},
				 out;
	const size_t hdr = offsetof(struct fg_handoff_closed, t), one = sizeof(c.t[0]);
	int sv[2];
	uint8_t buf[sizeof(c)];

	CHECK_EQ(fg_handoff_closed_check(&c, hdr + 3 * one, &out), 0);
	CHECK_EQ(out.n, 3);
	CHECK_EQ(out.n_tunnels, 7);
	CHECK_EQ(out.t[2].id, 13);
	CHECK_EQ(out.t[2].up, 5);
	CHECK_EQ(out.t[2].down, 6);
	/* the length is the count's, neither more nor less */
	CHECK_EQ(fg_handoff_closed_check(&c, hdr + 2 * one, &out), -EPROTO);
	CHECK_EQ(fg_handoff_closed_check(&c, hdr + 4 * one, &out), -EPROTO);
	CHECK_EQ(fg_handoff_closed_check(&c, hdr + 3 * one - 1, &out), -EPROTO);
	CHECK_EQ(fg_handoff_closed_check(&c, hdr - 1, &out), -EPROTO);
	CHECK_EQ(fg_handoff_closed_check(&c, sizeof(c) + 1, &out), -EPROTO);
	c.n = 0;
	CHECK_EQ(fg_handoff_closed_check(&c, hdr, &out), -EPROTO);
	c.n = FG_HANDOFF_CLOSED_MAX + 1;
	CHECK_EQ(fg_handoff_closed_check(&c, hdr + one * c.n, &out), -EPROTO);
	c.n = FG_HANDOFF_CLOSED_MAX;
	for (uint32_t i = 0; i < c.n; i++)
		c.t[i].id = i + 1;
	CHECK_EQ(fg_handoff_closed_check(&c, sizeof(c), &out), 0);
	/* a bytes tally has the same layout and its own magic */
	c.magic = FG_HANDOFF_BYTES_MAGIC;
	CHECK_EQ(fg_handoff_closed_check(&c, sizeof(c), &out), 0);
	CHECK_EQ(out.magic, FG_HANDOFF_BYTES_MAGIC);
	c.magic = FG_HANDOFF_CLOSED_MAGIC;
	c.t[59].id = 0; /* no handoff has id 0 */
	CHECK_EQ(fg_handoff_closed_check(&c, sizeof(c), &out), -EPROTO);
	c.t[59].id = 60;
	c.magic = FG_HANDOFF_ACK_MAGIC;
	CHECK_EQ(fg_handoff_closed_check(&c, sizeof(c), &out), -EPROTO);
	/* an ack is no close report, and a close report of one tunnel is no ack */
	c.magic = FG_HANDOFF_CLOSED_MAGIC;
	c.n = 1;
	CHECK_EQ(fg_handoff_ack_check(&c, hdr + one, (struct fg_handoff_ack *)buf), -EPROTO);

	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	CHECK_EQ(fg_handoff_send_small(sv[1], &c, hdr + one), 0);
	CHECK_EQ(recv(sv[0], buf, sizeof(buf), 0), (ssize_t)(hdr + one));
	CHECK_EQ(fg_handoff_closed_check(buf, hdr + one, &out), 0);
	CHECK_EQ(out.t[0].id, 1);
	close(sv[0]);
	close(sv[1]);
}

UNIT_TEST(revoke_check)
{
	struct fg_handoff_revoke r = {FG_HANDOFF_REVOKE_MAGIC, 7, 49}, out;

	CHECK_EQ(fg_handoff_revoke_check(&r, sizeof(r), &out), 0);
	CHECK_EQ(out.id, 7);
	CHECK_EQ(out.alert, 49);
	CHECK_EQ(fg_handoff_revoke_check(&r, sizeof(r) - 1, &out), -EPROTO);
	CHECK_EQ(fg_handoff_revoke_check(&r, sizeof(r) + 1, &out), -EPROTO);
	r.id = 0; /* no handoff has id 0 */
	CHECK_EQ(fg_handoff_revoke_check(&r, sizeof(r), &out), -EPROTO);
	r.id = 7;
	r.alert = 0; /* not an alert: the tunnel would close with none */
	CHECK_EQ(fg_handoff_revoke_check(&r, sizeof(r), &out), -EPROTO);
	r.alert = 256;
	CHECK_EQ(fg_handoff_revoke_check(&r, sizeof(r), &out), -EPROTO);
	r.alert = 49;
	r.magic = FG_HANDOFF_DRAIN_MAGIC;
	CHECK_EQ(fg_handoff_revoke_check(&r, sizeof(r), &out), -EPROTO);
}

UNIT_MAIN("handoff", UNIT_CASE(check_accepts), UNIT_CASE(check_refuses),
	  UNIT_CASE(check_reads_only_len), UNIT_CASE(send_and_parse), UNIT_CASE(check_legs_slot),
	  UNIT_CASE(parse_emfile), UNIT_CASE(check_id), UNIT_CASE(ack_and_drain_check),
	  UNIT_CASE(closed_check), UNIT_CASE(revoke_check))
