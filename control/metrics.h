/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_METRICS_H
#define FEDGATE_CONTROL_METRICS_H

/*
 * What /metrics shows (control/admin.c serves it), in the Prometheus text
 * format. The counts no other module keeps live here, per tunnel name:
 * connections accepted (handed to the data plane and taken) and refused (every
 * refusal line, and those counted past 100 a second); and reloads. They are
 * counted on the control loop, which is one thread, so the state is the
 * process's own, like the loop. Names are the first config's: a reload keeps
 * the tunnels (reload.c refuses one that changes them).
 */
#include <stddef.h>

struct fg_config;
struct gw;

/* Slots for @cfg's tunnels. 0 or -ENOMEM (then nothing is counted, all else works). */
int gw_metrics_init(const struct fg_config *cfg);
void gw_metrics_exit(void);

void gw_metrics_accepted(const char *tunnel);
/*
 * One refusal on @tunnel, for @reason: a short fixed text (the start of a
 * refusal's format, "TLS handshake failed"), never an address or a name, so
 * that the series stay few. Past 64 reasons, the rest count as "other".
 */
void gw_metrics_refused(const char *tunnel, const char *reason);
void gw_metrics_reloaded(int ok);

/*
 * The exposition of @gw's state now: *@out (malloc'd, the caller frees),
 * *@len bytes. 0 or -ENOMEM.
 */
int gw_metrics_render(struct gw *gw, char **out, size_t *len);

#endif
