// SPDX-License-Identifier: MIT
/*
 * Loads and attaches bpf/capture.bpf.c (contract: bpf/capture-api.h):
 * open -> set the configuration and map sizes -> load -> fill the routes ->
 * attach each program to the cgroup. libbpf errors (-errno) are the return.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/bpflog.h"
#include "bpf/capture-api.h"
#include "bpf/tuple-api.h"
#include "fedgate/net.h"
#include "capture.skel.h"

#define WHAT "the cgroup capture BPF programs"

struct fg_bpfcap {
	struct capture *skel;
	int orig, stats; /* map fds, owned by skel */
};

static int fill_routes(struct fg_bpfcap *cap, const struct fg_bpfcap_route *routes, size_t n)
{
	int fd = bpf_map__fd(cap->skel->maps.fg_cap_routes);

	for (size_t i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, &routes[i].key, &routes[i].ports, BPF_NOEXIST))
			return -errno;
	return 0;
}

/* Each program gets its own link; the skeleton destroys them with itself. */
static int attach_all(struct fg_bpfcap *cap, int cg)
{
	struct capture *s = cap->skel;
	struct {
		struct bpf_program *prog;
		struct bpf_link **link;
	} v[] = {
	    {s->progs.fg_cap_connect4, &s->links.fg_cap_connect4},
	    {s->progs.fg_cap_connect6, &s->links.fg_cap_connect6},
	    {s->progs.fg_cap_getpeername4, &s->links.fg_cap_getpeername4},
	    {s->progs.fg_cap_getpeername6, &s->links.fg_cap_getpeername6},
	    {s->progs.fg_cap_release, &s->links.fg_cap_release},
	    {s->progs.fg_cap_sockops, &s->links.fg_cap_sockops},
	};

	/*
	 * Backwards, the sockops and release programs first: a connect rewritten
	 * before they are there would be lost, or its entry left behind.
	 */
	for (int i = (int)(sizeof(v) / sizeof(v[0])) - 1; i >= 0; i--) {
		*v[i].link = bpf_program__attach_cgroup(v[i].prog, cg);
		if (!*v[i].link) {
			*v[i].link = NULL;
			return -errno;
		}
	}
	return 0;
}

int fg_bpfcap_new(struct fg_bpfcap **out, const char *cgroup, const struct fg_cap_conf *conf,
		  const struct fg_bpfcap_route *routes, size_t n, char *why, size_t why_len)
{
	struct fg_bpfcap *cap;
	int ret, cg = -1;

	*out = NULL;
	cap = calloc(1, sizeof(*cap));
	if (!cap) {
		ret = -ENOMEM;
		fg_bpf_why(ret, WHAT, why, why_len);
		return ret;
	}
	fg_bpf_log_init();
	cap->skel = capture__open();
	if (!cap->skel) {
		ret = -errno;
		fg_bpf_why(ret, WHAT, why, why_len);
		goto free_cap;
	}
	cap->skel->rodata->fg_cap_cfg = *conf;
	ret = bpf_map__set_max_entries(cap->skel->maps.fg_cap_routes, n ? (__u32)n : 1);
	if (!ret)
		ret = capture__load(cap->skel);
	if (ret) {
		fg_bpf_why(ret, WHAT, why, why_len);
		goto destroy_skel;
	}
	cap->orig = bpf_map__fd(cap->skel->maps.fg_cap_orig);
	cap->stats = bpf_map__fd(cap->skel->maps.fg_cap_stats);
	ret = fill_routes(cap, routes, n);
	if (ret) {
		snprintf(why, why_len, "cannot fill the cgroup capture route map: %s",
			 strerror(-ret));
		goto destroy_skel;
	}
	if (!cgroup)
		goto done; /* a probe: loaded, attached nowhere */
	cg = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		ret = -errno;
		snprintf(why, why_len, "cannot open cgroup %s: %s", cgroup, strerror(errno));
		goto destroy_skel;
	}
	ret = attach_all(cap, cg);
	if (ret) {
		snprintf(why, why_len, "cannot attach %s to cgroup %s: %s%s", WHAT, cgroup,
			 strerror(-ret), ret == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN)" : "");
		goto close_cg;
	}
	close(cg); /* the links hold the cgroup */
done:
	*out = cap;
	return 0;

close_cg:
	close(cg);
destroy_skel:
	capture__destroy(cap->skel);
free_cap:
	free(cap);
	return ret;
}

void fg_bpfcap_free(struct fg_bpfcap *cap)
{
	if (!cap)
		return;
	capture__destroy(cap->skel); /* links first, then programs and maps */
	free(cap);
}

/* @d (as the application's socket had it) as a socket address, IPv4-mapped unmapped. */
static void dst_addr(const struct fg_cap_dst *d, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (d->family == FG_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = d->ip[0];
		in->sin_port = d->port;
		return;
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	in6->sin6_family = AF_INET6;
	memcpy(&in6->sin6_addr, d->ip, 16);
	in6->sin6_port = d->port;
	fg_sockaddr_unmap(ss);
}

int fg_bpfcap_original(struct fg_bpfcap *cap, int fd, struct sockaddr_storage *dst)
{
	struct fg_tuple self, key;
	struct fg_cap_dst d;
	int ret;

	memset(dst, 0, sizeof(*dst));
	if (!cap)
		return -ENOENT;
	ret = fg_tuple_of_fd(fd, &self);
	if (ret)
		return ret;
	/* The application's socket: its end is our peer, its peer our end. */
	fg_tuple_swap(&self, &key);
	if (bpf_map_lookup_and_delete_elem(cap->orig, &key, &d))
		return -errno;
	dst_addr(&d, dst);
	return 0;
}

int fg_bpfcap_stats(struct fg_bpfcap *cap, uint64_t v[FG_CAP_STAT_N])
{
	for (__u32 i = 0; i < FG_CAP_STAT_N; i++)
		if (bpf_map_lookup_elem(cap->stats, &i, &v[i]))
			return -errno;
	return 0;
}

int fg_bpfcap_pending(struct fg_bpfcap *cap, unsigned int *n)
{
	struct fg_tuple k, next;
	void *prev = NULL;

	*n = 0;
	while (!bpf_map_get_next_key(cap->orig, prev, &next)) {
		k = next;
		prev = &k;
		(*n)++;
	}
	return errno == ENOENT ? 0 : -errno;
}
