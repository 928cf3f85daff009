/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_STATUS_H
#define FEDGATE_CONTROL_STATUS_H

/*
 * GET /status (control/admin.c serves it; README "Status"): the gateway now
 * as JSON: version, uptime, the data plane (pid, offload, restarts), the own
 * certificate and its expiry, the trust bundle's sources with their roots
 * and ages, and per tunnel its listener, target, open, accepted and refused
 * counts, bytes each way and the peers of its open tunnels.
 */
#include <stddef.h>
#include <stdint.h>

struct gw;

/*
 * Renders @gw's status, its admin listener up since wall clock @started_ms,
 * into *@out (malloc'd, the caller frees) of *@len bytes. 0 or -ENOMEM.
 */
int gw_status_render(struct gw *gw, int64_t started_ms, char **out, size_t *len);

#endif
