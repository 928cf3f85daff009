// SPDX-License-Identifier: MIT
/*
 * The normalized connection key of bpf/tuple.h from socket addresses
 * (contract: bpf/tuple-api.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "bpf/tuple-api.h"

/* One end: address words and host-order port. Families are checked by the caller. */
static void end_of(const struct sockaddr *sa, __u32 ip[4], __u16 *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		ip[0] = in->sin_addr.s_addr;
		*port = ntohs(in->sin_port);
		return;
	}
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

	memcpy(ip, &in6->sin6_addr, 16);
	*port = ntohs(in6->sin6_port);
}

int fg_tuple_from(const struct sockaddr *local, const struct sockaddr *remote, struct fg_tuple *t)
{
	memset(t, 0, sizeof(*t));
	if (local->sa_family != remote->sa_family ||
	    (local->sa_family != AF_INET && local->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	t->family = local->sa_family == AF_INET ? FG_AF_INET : FG_AF_INET6;
	end_of(local, t->lip, &t->lport);
	end_of(remote, t->rip, &t->rport);
	fg_tuple_normalize(t);
	return 0;
}

int fg_tuple_of_fd(int fd, struct fg_tuple *t)
{
	struct sockaddr_storage l, r;
	socklen_t ll = sizeof(l), rl = sizeof(r);

	if (getsockname(fd, (struct sockaddr *)&l, &ll) < 0 ||
	    getpeername(fd, (struct sockaddr *)&r, &rl) < 0)
		return -errno;
	return fg_tuple_from((struct sockaddr *)&l, (struct sockaddr *)&r, t);
}
