/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_DPCTL_H
#define FEDGATE_CONTROL_DPCTL_H

/*
 * The data plane as the control process sees it (README "The data plane's
 * life"): the process, restarted with back-off when it dies or wedges; its
 * workers' sockets, never written with a wait; the handoffs sent and not yet
 * answered, whose sockets the control process keeps until the answer; and
 * the drain of a graceful stop.
 */
#include <stdint.h>
#include <sys/types.h>
#include "fedgate/dataplane-t.h"
#include "fedgate/handoff-t.h"

struct gw_dp;
struct gw_proof;
struct gw_src;
struct fg_evloop;

/*
 * Starts the data plane (control/spawn.c) for @o; a drain gives its tunnels
 * @drain_ms. 0 with *@dp, or -errno (nothing started).
 */
int gw_dp_new(struct gw_dp **dp, const struct fg_dp_opts *o, uint32_t drain_ms);

/* Stops the data plane if it runs (SIGTERM, then waits), closes what is pending. NULL is fine. */
void gw_dp_free(struct gw_dp *dp);

/* The data plane's pid, or -1 while it is down. */
pid_t gw_dp_pid(const struct gw_dp *dp);

/* How many times it died and was started again (/metrics). */
unsigned int gw_dp_restarts(const struct gw_dp *dp);

/* Its record backend, in words (/metrics): "userspace", "kernel TLS", ... */
const char *gw_dp_backend_name(const struct gw_dp *dp);

/* Registers its sockets and timer in @loop, as sources of kind SRC_DATAPLANE. 0 or -errno. */
int gw_dp_attach(struct gw_dp *dp, struct fg_evloop *loop);

/*
 * Whether a handoff would be taken now: 0, or -ENOBUFS (too many waiting for
 * the data plane) or -ESHUTDOWN (draining), for the caller to refuse with.
 */
int gw_dp_room(const struct gw_dp *dp);

/*
 * Tunnels of @tunnel the data plane runs or is being handed (control/dptrack.h);
 * @tunnel NULL: of every tunnel.
 */
size_t gw_dp_tunnels(const struct gw_dp *dp, const char *tunnel);

/* Each tunnel carried or being handed, as gw_dptrack_each() (control/dptrack.h) gives it. */
void gw_dp_each(const struct gw_dp *dp,
		void (*fn)(void *ctx, const char *tunnel, const char *peer, int running),
		void *ctx);

/*
 * Plaintext bytes @tunnel's tunnels moved toward the TLS peer (*@up) and from
 * it (*@down), as the data plane told (running ones up to a second behind;
 * those lost with a dead data plane only up to their last tally).
 */
void gw_dp_bytes(const struct gw_dp *dp, const char *tunnel, uint64_t *up, uint64_t *down);

/*
 * Offers each running tunnel whose proof (control/proof.h) is of an epoch
 * older than @epoch to @check; one it returns 1 for, with *@alert set, is
 * closed: its worker is asked to (when its socket has room, before any
 * handoff), its TLS peer gets the alert, and it is not offered again; 0: it
 * passes for @epoch; -1: not checked (no memory), offered again at the next
 * pass (gw_dp_stale() says one is due). Returns how many were asked to close.
 */
size_t gw_dp_revalidate(struct gw_dp *dp, unsigned long epoch,
			int (*check)(void *ctx, const char *tunnel, const char *peer,
				     const struct gw_proof *p, uint8_t *alert),
			void *ctx);

/* Whether a tunnel accepted under an epoch older than the last gw_dp_revalidate()'s began to run
 * since. */
int gw_dp_stale(const struct gw_dp *dp);

/*
 * Queues @h (taken: wiped and freed here, whatever happens) with the two
 * sockets (taken: the control process's copies, closed once the data plane
 * answered) and @proof (taken whatever happens: kept while the tunnel runs,
 * for gw_dp_revalidate(); may be NULL). @accepted is logged when it says the
 * tunnel runs; a refusal or a loss is logged instead and the client gets a
 * reset. Returns 0; on -errno (no memory) nothing but @h and @proof was taken.
 */
int gw_dp_handoff(struct gw_dp *dp, struct fg_handoff *h, int plain_fd, int tls_fd,
		  const char *accepted, struct gw_proof *proof);

/* One of its sources (@s) is ready. */
void gw_dp_event(struct gw_dp *dp, struct gw_src *s);

/* SIGCHLD: reaps the data plane if it exited, and has it restarted. */
void gw_dp_child(struct gw_dp *dp);

/*
 * SIGTERM: handoffs not yet sent are refused, and every worker is told to
 * drain. gw_dp_done() says when it is over.
 */
void gw_dp_drain(struct gw_dp *dp);

/*
 * 1: a drain was asked and the data plane has exited (or was killed at the
 * hard deadline); -ENOTRECOVERABLE: its seccomp filter killed it, and the
 * gateway stops (not restarted); 0: it runs, or is being restarted.
 */
int gw_dp_done(const struct gw_dp *dp);

#endif
