// SPDX-License-Identifier: MIT
/*
 * The control process's side of bpf/legs.bpf.c: load, attach, the listener
 * and expected-dial maps, and the slot claims (contract: bpf/legs-api.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/legs-api.h"
#include "bpf/bpflog.h"
#include "bpf/cgroup.h"
#include "bpf/legs.h"
#include "fedgate/legs.h"
#include "legs.skel.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

struct fg_legs {
	struct legs *skel;
	struct bpf_link *link;	    /* sock_ops on the cgroup */
	int socks_fd;		    /* the sk_msg program is attached to it */
	struct fg_legs_slot *slots; /* our mapping of legs_slots */
};

static const char *load_why(int err)
{
	switch (err) {
	case -EPERM:
	case -EACCES:
		return "loading BPF programs is not permitted (fedgate run needs root, or "
		       "CAP_BPF + CAP_NET_ADMIN)";
	case -EINVAL:
	case -524: /* the kernel's ENOTSUPP: a helper or program type it lacks */
	case -EOPNOTSUPP:
		return "the kernel refused the local redirect programs (CONFIG_BPF_SYSCALL, "
		       "CONFIG_CGROUP_BPF, CONFIG_NET_SOCK_MSG?); FEDGATE_DEBUG=1 shows the "
		       "verifier log";
	case -ENOMEM:
		return "out of memory (or locked memory) while loading the local redirect programs";
	}
	return "cannot load the local redirect programs; FEDGATE_DEBUG=1 shows libbpf's reason";
}

/*
 * The cgroup to attach to: @cgroup absolute, or relative to the cgroup2 mount,
 * or that mount itself when NULL (bpf/cgroup.h).
 */
static int cgroup_path(const char *cgroup, char *buf, size_t len, const char **why)
{
	int ret = cgroup ? fg_cgroup2_resolve(cgroup, buf, len) : fg_cgroup2_root(buf, len);

	if (ret)
		*why = fg_cgroup2_strerror(ret);
	return ret;
}

static int attach(struct fg_legs *l, const char *cg, const char **why)
{
	int fd, ret;

	/* The sk_msg program first: a socket gets the programs its map has when it joins. */
	ret = bpf_prog_attach(bpf_program__fd(l->skel->progs.fg_legs_msg), l->socks_fd,
			      BPF_SK_MSG_VERDICT, 0);
	if (ret) {
		*why = ret == -EPERM ? load_why(ret) : "cannot attach the sk_msg program";
		return ret;
	}
	fd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*why = "cannot open the cgroup";
		return -errno;
	}
	/* A link, never a plain attach: it goes with us, and other programs stay (multi). */
	l->link = bpf_program__attach_cgroup(l->skel->progs.fg_legs_sockops, fd);
	ret = l->link ? 0 : -errno;
	close(fd);
	if (ret)
		*why = ret == -EPERM ? load_why(ret) : "cannot attach the sock_ops program";
	return ret;
}

int fg_legs_new(struct fg_legs **out, const char *cgroup, uint64_t budget, int attach_now, char *cg,
		size_t cg_len, const char **why)
{
	struct fg_legs *l;
	int ret;

	*out = NULL;
	ret = cgroup_path(cgroup, cg, cg_len, why);
	if (ret)
		return ret;
	l = calloc(1, sizeof(*l));
	if (!l) {
		*why = "out of memory";
		return -ENOMEM;
	}
	fg_bpf_log_init();
	l->skel = legs__open();
	if (!l->skel) {
		ret = -errno;
		*why = "cannot open the embedded local redirect BPF object";
		goto free_legs;
	}
	l->skel->rodata->budget = budget;
	ret = legs__load(l->skel);
	if (ret) {
		*why = load_why(ret);
		goto destroy_skel;
	}
	l->socks_fd = bpf_map__fd(l->skel->maps.legs_socks);
	l->slots = fg_legs_map(bpf_map__fd(l->skel->maps.legs_slots));
	if (!l->slots) {
		ret = -errno;
		*why = "cannot map the slot array";
		goto destroy_skel;
	}
	if (attach_now) {
		ret = attach(l, cg, why);
		if (ret)
			goto unmap;
	}
	*why = attach_now ? "attached" : "loaded";
	*out = l;
	return 0;

unmap:
	fg_legs_unmap(l->slots);
destroy_skel:
	legs__destroy(l->skel);
free_legs:
	free(l);
	return ret;
}

void fg_legs_free(struct fg_legs *l)
{
	if (!l)
		return;
	bpf_link__destroy(l->link);
	fg_legs_unmap(l->slots);
	/* The maps go with their last reference: the kernel drops every socket from them. */
	legs__destroy(l->skel);
	free(l);
}

int fg_legs_listen(struct fg_legs *l, int fd)
{
	struct fg_legs_listen_key k = { 0 };
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&ss;
	socklen_t sl = sizeof(ss), cl = sizeof(k.netns);
	__u32 one = 1;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &k.netns, &cl))
		return -errno;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		k.family = FG_AF_INET;
		k.ip[0] = in->sin_addr.s_addr;
		k.port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(k.ip, &in6->sin6_addr, sizeof(k.ip));
		k.port = ntohs(in6->sin6_port);
		k.family = FG_AF_INET6;
		if (fg_tuple_is_mapped(k.ip)) {
			k.family = FG_AF_INET;
			k.ip[0] = k.ip[3];
			k.ip[1] = k.ip[2] = k.ip[3] = 0;
		} else if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) {
			int v6only = 0;
			socklen_t vl = sizeof(v6only);

			/* [::] takes IPv4 (mapped) too, unless it is IPv6 only. */
			if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &vl))
				return -errno;
			if (!v6only)
				k.family = 0;
		}
	} else {
		return -EAFNOSUPPORT;
	}
	if (bpf_map_update_elem(bpf_map__fd(l->skel->maps.legs_listen), &k, &one, BPF_ANY))
		return -errno;
	return 0;
}

static int cookie_of(int fd, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len))
		return -errno;
	return 0;
}

int fg_legs_expect(struct fg_legs *l, int fd, uint64_t *cookie)
{
	__u32 one = 1;
	int ret = cookie_of(fd, cookie);

	if (ret)
		return ret;
	if (bpf_map_update_elem(bpf_map__fd(l->skel->maps.legs_expect), cookie, &one, BPF_ANY))
		return -errno;
	return 0;
}

void fg_legs_unexpect(struct fg_legs *l, uint64_t cookie)
{
	if (cookie)
		bpf_map_delete_elem(bpf_map__fd(l->skel->maps.legs_expect), &cookie);
}

int fg_legs_claim(struct fg_legs *l, int fd, int *slot)
{
	uint64_t cookie;
	int ret = cookie_of(fd, &cookie);

	*slot = -1;
	if (ret)
		return ret;
	ret = fg_legs_claim_cookie(l->slots, cookie);
	if (ret < 0)
		return ret;
	*slot = ret;
	return 0;
}

struct fg_legs_slot *fg_legs_slot(struct fg_legs *l, int slot)
{
	return slot >= 0 && slot < FG_LEGS_SLOTS ? &l->slots[slot] : NULL;
}

int fg_legs_slots_fd(const struct fg_legs *l)
{
	return bpf_map__fd(l->skel->maps.legs_slots);
}

int fg_legs_stats(const struct fg_legs *l, uint64_t st[FG_LEGS_ST_N])
{
	int ncpu = libbpf_num_possible_cpus(), fd = bpf_map__fd(l->skel->maps.legs_stats);
	uint64_t *v;
	int ret = 0;

	if (ncpu < 0)
		return ncpu;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 i = 0; i < FG_LEGS_ST_N && !ret; i++) {
		st[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, v)) {
			ret = -errno;
			break;
		}
		for (int c = 0; c < ncpu; c++)
			st[i] += v[c];
	}
	free(v);
	return ret;
}
