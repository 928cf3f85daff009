/* SPDX-License-Identifier: MIT */
/* Socket addresses for tests, from numeric text (include after unit.h). */
#ifndef FEDGATE_TESTS_UNIT_SA_H
#define FEDGATE_TESTS_UNIT_SA_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

static struct sockaddr_storage sa4(const char *ip, unsigned port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s = (void *)&ss;

	s->sin_family = AF_INET;
	s->sin_port = htons((uint16_t)port);
	CHECK_EQ(inet_pton(AF_INET, ip, &s->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage sa6(const char *ip, unsigned port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *s = (void *)&ss;

	s->sin6_family = AF_INET6;
	s->sin6_port = htons((uint16_t)port);
	CHECK_EQ(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
	return ss;
}

#endif
