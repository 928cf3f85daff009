/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_METRICS_H
#define FEDGATE_CONTROL_METRICS_H

/*
 * What /metrics shows (control/admin.c serves it), in the Prometheus text
 * format. The counts no other module keeps live here, per tunnel name:
 * connections accepted (handed to the data plane and taken) and refused (every
 * refusal line, and those counted past 100 a second); reloads, renewals and
 * limit hits. They are
 * counted on the control loop, which is one thread, so the state is the
 * process's own, like the loop. Names are the first config's: a reload keeps
 * the tunnels (reload.c refuses one that changes them).
 */
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

struct gw_pool_count;

struct fg_config;

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
/* What @tunnel counted so far (zeros for a name not in the first config). */
void gw_metrics_counts(const char *tunnel, unsigned long long *accepted,
		       unsigned long long *refused);
/* An enrollment (@enroll) or a renewal at the CA ended, @ok or not. */
void gw_metrics_renewal(int enroll, int ok);
/*
 * A limit was hit: @limit is its config key ("handshakes", "max_tunnels",
 * ...; a fixed text, at most 8 kinds) and one connection was shed or refused.
 */
void gw_metrics_limit(const char *limit);

/*
 * What the caller (admin.c) reads from the rest of the gateway for one
 * render: this module only counts, so that the data plane's control can
 * count here without this calling back into it.
 */
struct gw_metrics_now {
	const char *backend;   /* the data plane's record backend, in words */
	int local_redirect;    /* dataplane.local_redirect is on */
	unsigned int restarts; /* of the data plane */
	size_t handshakes;     /* accepted, not yet handed over or refused */
	const size_t *open;    /* tunnels open, per tunnel in config order */
	const uint64_t (*bytes)[2]; /* to and from the peer, per tunnel in config order */
	size_t n_open;
	const struct gw_pool_count *pool; /* the warm pool's, per tunnel in config order */
	const X509 *leaf; /* the own certificate, or NULL */
	int n_roots;	  /* in the trust bundle */
	long long roots_expiry; /* the first notAfter of those roots, Unix time; 0: none */
};

/* The exposition now: *@out (malloc'd, the caller frees), *@len bytes. 0 or -ENOMEM. */
int gw_metrics_render(const struct gw_metrics_now *now, char **out, size_t *len);

#endif
