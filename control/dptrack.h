/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_DPTRACK_H
#define FEDGATE_CONTROL_DPTRACK_H

/*
 * Which tunnels the data plane carries or is being handed, by handoff id and
 * by tunnel name, for $.limits.tunnels and $.tunnels[].max_tunnels
 * (control/admit.c). A handoff counts from the moment it is queued until its
 * refusal, its close report (fedgate/handoff-t.h struct fg_handoff_closed),
 * or the data plane's death. Names are counted, not configs: a reload keeps
 * the counts of the tunnels it keeps. The bytes each moved are summed by
 * name too, from the data plane's tallies.
 */
#include <stddef.h>
#include <stdint.h>

struct gw_dptrack;
struct gw_proof;

int gw_dptrack_new(struct gw_dptrack **tr);
/* NULL is fine. */
void gw_dptrack_free(struct gw_dptrack *tr);

/*
 * Handoff @id (nonzero, not tracked) of @tunnel with peer identity @peer is
 * queued, its reader in local redirect slot @legs_slot (-1: none) with owner
 * word @legs_owner, @proof (control/proof.h; may be NULL) what its peer
 * showed. 0 with @proof taken (freed with the record), or -ENOMEM: not
 * counted, @proof still the caller's.
 */
int gw_dptrack_add(struct gw_dptrack *tr, uint32_t id, const char *tunnel, const char *peer,
		   int legs_slot, uint64_t legs_owner, struct gw_proof *proof);

/*
 * Worker @worker took handoff @id: it runs until a close report or the data
 * plane's death. Returns 1 when its proof is of an epoch older than the last
 * revalidation's (it is to be checked: gw_dptrack_revalidate), else 0.
 */
int gw_dptrack_running(struct gw_dptrack *tr, uint32_t id, int worker);

/*
 * Calls @fn for each running tunnel whose proof is of an epoch older than
 * @epoch and that is not revoked; where it returns 1, the tunnel is marked
 * revoked (it is not offered again: @fn has asked its worker to close it);
 * 0: its proof is of @epoch now; -1: it could not be checked (no memory) and
 * stays as it was, for a later pass. @fn must not change @tr.
 */
void gw_dptrack_revalidate(struct gw_dptrack *tr, unsigned long epoch,
			   int (*fn)(void *ctx, uint32_t id, int worker, const char *tunnel,
				     const char *peer, const struct gw_proof *proof),
			   void *ctx);

/* Handoff @id is refused, or its tunnel closed: no longer counted. 0, or -ENOENT (unknown). */
int gw_dptrack_del(struct gw_dptrack *tr, uint32_t id);

/*
 * The data plane died: every running tunnel is forgotten (queued ones stay),
 * and @drop is called with the slot and owner of each that had a local
 * redirect slot. Returns how many.
 */
size_t gw_dptrack_lost(struct gw_dptrack *tr, void (*drop)(int legs_slot, uint64_t legs_owner));

/* Tunnels of @tunnel counted now; @tunnel NULL: of all names. */
size_t gw_dptrack_count(const struct gw_dptrack *tr, const char *tunnel);

/*
 * Handoff @id's tunnel moved @up more bytes toward its TLS peer and @down
 * from it: added to its name's totals. 0, or -ENOENT (unknown id: not counted).
 */
int gw_dptrack_bytes(struct gw_dptrack *tr, uint32_t id, uint64_t up, uint64_t down);

/*
 * Calls @fn with each tracked handoff's tunnel name, peer and whether it runs
 * yet (`fedgate status`), in no order. @fn must not change @tr.
 */
void gw_dptrack_each(const struct gw_dptrack *tr,
		     void (*fn)(void *ctx, const char *tunnel, const char *peer, int running),
		     void *ctx);

/*
 * The bytes of @tunnel's tunnels as told so far (those still running, up to
 * a second behind), since the first config: zeros for a name never seen.
 */
void gw_dptrack_bytes_of(const struct gw_dptrack *tr, const char *tunnel, uint64_t *up,
			 uint64_t *down);

#endif
