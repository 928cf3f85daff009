// SPDX-License-Identifier: MIT
/*
 * The slot array from userspace (lib/legs.c) on plain memory: the claim's
 * probe sequence and its race with the kernel's free, and the close of a
 * reader with and without unread redirected bytes. No BPF needed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fedgate/legs.h"
#include "unit.h"

static struct fg_legs_slot *slots(void)
{
	static struct fg_legs_slot *s;

	if (!s)
		s = calloc(FG_LEGS_SLOTS, sizeof(*s));
	memset(s, 0, FG_LEGS_SLOTS * sizeof(*s));
	return s;
}

UNIT_TEST(claim_follows_the_probe_sequence)
{
	struct fg_legs_slot *s = slots();
	uint64_t cookie = 3ull * FG_LEGS_SLOTS + 5;

	/* Where the kernel put it: the first free slot from cookie % FG_LEGS_SLOTS. */
	s[5].owner = 77;
	s[6].owner = cookie;
	CHECK_EQ(fg_legs_claim_cookie(s, cookie), 6);
	CHECK(s[6].owner == (cookie | FG_LEGS_CLAIMED));
	/* Claimed once: a second claim finds no unclaimed owner. */
	CHECK_EQ(fg_legs_claim_cookie(s, cookie), -ENOENT);
	fg_legs_release(&s[6]);
	CHECK(s[6].owner == 0);
	/* Past the probe window, or freed by the kernel first: not redirected. */
	s[5 + FG_LEGS_PROBE].owner = cookie;
	CHECK_EQ(fg_legs_claim_cookie(s, cookie), -ENOENT);
	CHECK_EQ(fg_legs_claim_cookie(s, 12345), -ENOENT);
	/* The window wraps at the end of the array. */
	s[1].owner = FG_LEGS_SLOTS - 2;
	CHECK_EQ(fg_legs_claim_cookie(s, FG_LEGS_SLOTS - 2), 1);
}

UNIT_TEST(consumed_and_closing)
{
	struct fg_legs_slot *s = slots();

	fg_legs_consumed(&s[0], 10);
	fg_legs_consumed(&s[0], 5);
	CHECK(s[0].consumed == 15);
	fg_legs_closing(&s[0]);
	CHECK(s[0].sticky == 1);
}

/* 1 if @fd's peer sees a reset, 0 for a clean end. */
static int peer_reset(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, 0);

	return n < 0 && errno == ECONNRESET;
}

static void tcp_pair(int *a, int *b)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(0x7f000001);
	CHECK_EQ(bind(l, (struct sockaddr *)&ss, sizeof(*in)), 0);
	CHECK_EQ(listen(l, 1), 0);
	CHECK_EQ(getsockname(l, (struct sockaddr *)&ss, &sl), 0);
	*a = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_EQ(connect(*a, (struct sockaddr *)&ss, sl), 0);
	*b = accept(l, NULL, NULL);
	CHECK(*b >= 0);
	close(l);
}

UNIT_TEST(close_reader_resets_with_unread_bytes)
{
	struct fg_legs_slot *s = slots();
	int app, reader;

	/* Everything redirected was read: a clean end, and the slot is free. */
	tcp_pair(&app, &reader);
	s[0].owner = 9 | FG_LEGS_CLAIMED;
	s[0].redirected = s[0].consumed = 100;
	CHECK_EQ(fg_legs_close_reader(&s[0], reader), 0);
	CHECK(s[0].owner == 0 && s[0].sticky == 1);
	CHECK_EQ(peer_reset(app), 0);
	close(app);
	/* Redirected bytes wait unread (the kernel holds them off the TCP queue): a reset. */
	tcp_pair(&app, &reader);
	s[0].owner = 9 | FG_LEGS_CLAIMED;
	s[0].redirected = 100;
	s[0].consumed = 60;
	CHECK_EQ(fg_legs_close_reader(&s[0], reader), 1);
	CHECK_EQ(peer_reset(app), 1);
	close(app);
	/* Bytes on the TCP queue: a reset too. */
	tcp_pair(&app, &reader);
	memset(&s[0], 0, sizeof(s[0]));
	CHECK_EQ(send(app, "x", 1, 0), 1);
	usleep(20000);
	CHECK_EQ(fg_legs_close_reader(&s[0], reader), 1);
	CHECK_EQ(peer_reset(app), 1);
	close(app);
}

UNIT_TEST(map_len_is_page_rounded)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	CHECK(fg_legs_map_len() % page == 0);
	CHECK(fg_legs_map_len() >= FG_LEGS_SLOTS * sizeof(struct fg_legs_slot));
}

UNIT_MAIN("legs", UNIT_CASE(claim_follows_the_probe_sequence), UNIT_CASE(consumed_and_closing),
	  UNIT_CASE(close_reader_resets_with_unread_bytes), UNIT_CASE(map_len_is_page_rounded))
