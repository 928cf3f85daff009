// SPDX-License-Identifier: MIT
/* "host:port" and "[v6]:port" to a socket address: the config's and the CA's listeners. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "fedgate/addr.h"

/* An IPv4 or IPv6 address in text: nothing to re-resolve. */
static int is_literal(const char *host)
{
	struct in6_addr a6;

	return inet_pton(AF_INET, host, &a6) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

int fg_addr_parse(const char *text, int passive, struct fg_addr *addr, const char **why)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	char host[256], *end;
	const char *colon, *h = text;
	struct addrinfo *res = NULL;
	size_t hlen;
	long port;
	int ret;

	if (text[0] == '[') {
		const char *rb = strchr(text, ']');

		if (!rb || rb[1] != ':') {
			*why = "expected \"[ipv6]:port\"";
			return -EINVAL;
		}
		h = text + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon) {
			*why = "expected \"host:port\"";
			return -EINVAL;
		}
		hlen = (size_t)(colon - text);
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		*why = "missing or overlong host";
		return -EINVAL;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5)
		end = (char *)"x";
	if (!colon[1] || *end || errno || port < 0 || port > 65535 || (!passive && port == 0)) {
		*why = passive ? "port must be 0..65535" : "port must be 1..65535";
		return -EINVAL;
	}
	if (passive)
		hints.ai_flags |= AI_PASSIVE;
	ret = getaddrinfo(host, colon + 1, &hints, &res);
	if (ret || !res) {
		*why = ret == EAI_NONAME ? "host name does not resolve" : gai_strerror(ret);
		return -EINVAL;
	}
	memcpy(&addr->sa, res->ai_addr, res->ai_addrlen);
	addr->len = res->ai_addrlen;
	freeaddrinfo(res);
	addr->name = !is_literal(host);
	addr->text = strdup(text);
	if (!addr->text)
		return -ENOMEM;
	return 0;
}

void fg_addr_exit(struct fg_addr *addr)
{
	if (!addr)
		return;
	free(addr->text);
	addr->text = NULL;
}

unsigned fg_addr_host(const struct sockaddr_storage *ss, char *host, size_t size)
{
	snprintf(host, size, "?");
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;

		inet_ntop(AF_INET, &s->sin_addr, host, (socklen_t)size);
		return ntohs(s->sin_port);
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, host, (socklen_t)size);
		return ntohs(s->sin6_port);
	}
	return 0;
}

void fg_addr_text(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port = fg_addr_host(ss, host, sizeof(host));

	if (ss->ss_family == AF_INET)
		snprintf(out, len, "%s:%u", host, port);
	else if (ss->ss_family == AF_INET6)
		snprintf(out, len, "[%s]:%u", host, port);
	else
		snprintf(out, len, "?");
}
