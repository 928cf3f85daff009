/* SPDX-License-Identifier: MIT */
/*
 * The loader of bpf/capture.bpf.c (maps and programs: bpf/capture.h), called
 * by the control process at `run` start: load, fill the route map, attach
 * to one cgroup (BPF links: multi-attach, so another fedgate on the host
 * attaches its own beside), and detach when freed. Nothing is pinned: the
 * programs and maps go with the process.
 */
#ifndef FEDGATE_BPF_CAPTURE_API_H
#define FEDGATE_BPF_CAPTURE_API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bpf/capture.h"

struct fg_bpfcap;

/* One prefix of the route map: what the planner (control) computes from $.routes. */
struct fg_bpfcap_route {
	struct fg_cap_key key;
	struct fg_cap_ports ports;
};

/*
 * Loads the programs with @conf, puts @routes (@n, at least 1) into the
 * route map and attaches to the cgroup v2 directory @cgroup (NULL: attached
 * nowhere, a probe of whether this kernel and process can load them). 0, or a
 * negative errno with @why (@why_len bytes) saying what failed and what to
 * do. On failure nothing stays attached.
 */
int fg_bpfcap_new(struct fg_bpfcap **out, const char *cgroup, const struct fg_cap_conf *conf,
		  const struct fg_bpfcap_route *routes, size_t n, char *why, size_t why_len);

/* Detaches and unloads; NULL is fine. */
void fg_bpfcap_free(struct fg_bpfcap *cap);

/*
 * The destination the application of accepted socket @fd dialed, taken out
 * of the map (its peer's 4-tuple is the key): each is given once.
 * IPv4-mapped comes back AF_INET. 0; -ENOENT: not captured by these
 * programs (or already taken); another negative errno of getsockname etc.
 */
int fg_bpfcap_original(struct fg_bpfcap *cap, int fd, struct sockaddr_storage *dst);

/* The counters of enum fg_cap_stat into @v; 0 or a negative errno. */
int fg_bpfcap_stats(struct fg_bpfcap *cap, uint64_t v[FG_CAP_STAT_N]);

/* Entries now in the original-destination map (tests, leak checks); 0 or a negative errno. */
int fg_bpfcap_pending(struct fg_bpfcap *cap, unsigned int *n);

#endif
