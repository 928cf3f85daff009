// SPDX-License-Identifier: MIT
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fedgate/dataplane.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

static const char *ulp_why(int err)
{
	switch (err) {
	case ENOENT:
		return "TCP_ULP \"tls\": ENOENT, the kernel has no tls module (CONFIG_TLS)";
	case ENOTCONN:
		return "TCP_ULP \"tls\": ENOTCONN, socket not established";
	case EPERM:
		return "TCP_ULP \"tls\": EPERM, loading the tls module is not permitted";
	}
	return "TCP_ULP \"tls\" failed";
}

int fg_ktls_probe(const char **why)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l, c = -1, s = -1, ret;

	*why = "cannot set up a loopback socket pair";
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len)) {
		ret = -errno;
		goto close_listener;
	}
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a))) {
		ret = -errno;
		goto close_client;
	}
	s = accept(l, NULL, NULL);
	if (s < 0) {
		ret = -errno;
		goto close_client;
	}
	ret = setsockopt(c, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) ? -errno : 0;
	*why = ret ? ulp_why(-ret) : "TCP_ULP \"tls\" accepted";
	close(s);
close_client:
	if (c >= 0)
		close(c);
close_listener:
	close(l);
	return ret;
}
