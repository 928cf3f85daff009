/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CAPTURE_CGROUP_H
#define FEDGATE_CAPTURE_CGROUP_H

/*
 * What cgroup capture loads, as data (pure, no I/O): the route map of
 * bpf/capture.bpf.c from $.routes, and where captured connects go (the
 * "cgroup" tunnels' listeners). The type lives here, not in a -t.h: it is
 * made of bpf/capture.h's map types, which no type header may include.
 */
#include <stddef.h>
#include "bpf/capture-api.h"
#include "control/config-t.h"
#include "fedgate/err-t.h"

struct fg_capcg_plan {
	size_t n_tunnels;		 /* "cgroup" capture tunnels; 0: nothing to load */
	struct fg_cap_conf conf;	 /* mark and targets, as the programs take them */
	const struct fg_tunnel_conf *t4; /* the tunnel IPv4 destinations go to; NULL: none */
	const struct fg_tunnel_conf *t6; /* ... IPv6 destinations */
	struct fg_bpfcap_route *routes;	 /* owned; n_routes of them */
	size_t n_routes;
};

/*
 * Fills @plan (zeroed) for @cfg as fg_config_load leaves it. Each distinct
 * prefix of $.routes[].to becomes one entry whose ports are the union of
 * the ports of every route with a prefix holding it (LPM finds the longest
 * prefix only, and fg_route_find takes any route whose prefix and ports
 * match: the union gives the programs the same yes or no). Targets: the
 * first "cgroup" tunnel listening on IPv4 (0.0.0.0 becomes 127.0.0.1) or
 * on [::] (dual-stack: 127.0.0.1 and ::1) takes IPv4; the first on IPv6
 * takes IPv6 (:: becomes ::1). Returns 0; -EINVAL (a cgroup tunnel on port
 * 0, or more than FG_CAP_PORT_RANGES merged ranges over one prefix) or
 * -ENOMEM, with @err set; on error @plan is empty.
 */
int fg_capcg_plan(const struct fg_config *cfg, struct fg_capcg_plan *plan, struct fg_err *err);

/* Frees what @plan owns and zeroes it; NULL and a zeroed plan are fine. */
void fg_capcg_plan_exit(struct fg_capcg_plan *plan);

/*
 * One line (no newline) into @out: what is captured where, e.g. "cgroup
 * capture: connects from cgroup C to 3 prefix(es) of $.routes go to tunnel
 * t (127.0.0.1:15003 for IPv4, [::1]:15003 for IPv6)", naming a family
 * that is not captured and why. @cgroup: the directory, as resolved.
 */
void fg_capcg_describe(const struct fg_capcg_plan *plan, const char *cgroup, char *out, size_t len);

#endif
