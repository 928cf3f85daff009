// SPDX-License-Identifier: MIT
/*
 * The data plane's tunnels by handoff id and by name (dptrack.h): a chained
 * hash of ids, each naming a slot of a short array of names with their
 * counts. Names are few (the config's tunnels, and those of configs before a
 * reload), so a slot is found by a walk; ids are many, so they are hashed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/dptrack.h"
#include "control/proof.h"

#define BUCKETS 4096 /* a power of two; ids are sequential, so the low bits spread them */

struct track_rec {
	struct track_rec *next;
	uint32_t id;
	unsigned int name; /* index into names */
	int running;
	int worker;  /* once running */
	int revoked; /* asked to close: its peer no longer passes (revalidate.c) */
	struct gw_proof *proof;
	int legs_slot; /* -1: none */
	uint64_t legs_owner;
	char peer[]; /* its verified identity, as the handoff names it */
};

struct track_name {
	char name[64];
	size_t n;
	uint64_t up, down;
};

struct gw_dptrack {
	struct track_rec *bucket[BUCKETS];
	struct track_name *names;
	size_t n_names, cap_names;
	size_t total;
	unsigned long epoch; /* of the last revalidation */
};

int gw_dptrack_new(struct gw_dptrack **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void gw_dptrack_free(struct gw_dptrack *tr)
{
	if (!tr)
		return;
	for (size_t b = 0; b < BUCKETS; b++)
		for (struct track_rec *r = tr->bucket[b], *next; r; r = next) {
			next = r->next;
			gw_proof_free(r->proof);
			free(r);
		}
	free(tr->names);
	free(tr);
}

/* The slot of @tunnel (compared as a handoff carries it: 63 bytes at most), or -1. */
static long lookup(const struct gw_dptrack *tr, const char *tunnel)
{
	for (size_t i = 0; i < tr->n_names; i++)
		if (!strncmp(tr->names[i].name, tunnel, sizeof(tr->names[i].name) - 1))
			return (long)i;
	return -1;
}

/* The slot of @tunnel, added if new; -1: no memory. */
static long name_slot(struct gw_dptrack *tr, const char *tunnel)
{
	struct track_name *grown;
	long slot = lookup(tr, tunnel);
	size_t cap;

	if (slot >= 0)
		return slot;
	if (tr->n_names == tr->cap_names) {
		cap = tr->cap_names ? tr->cap_names * 2 : 8;
		grown = realloc(tr->names, cap * sizeof(*grown));
		if (!grown)
			return -1;
		tr->names = grown;
		tr->cap_names = cap;
	}
	snprintf(tr->names[tr->n_names].name, sizeof(tr->names[0].name), "%s", tunnel);
	tr->names[tr->n_names].n = 0;
	tr->names[tr->n_names].up = tr->names[tr->n_names].down = 0;
	return (long)tr->n_names++;
}

static struct track_rec **find(struct gw_dptrack *tr, uint32_t id)
{
	struct track_rec **pp = &tr->bucket[id & (BUCKETS - 1)];

	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

int gw_dptrack_add(struct gw_dptrack *tr, uint32_t id, const char *tunnel, const char *peer,
		   int legs_slot, uint64_t legs_owner, struct gw_proof *proof)
{
	size_t plen = strlen(peer);
	struct track_rec *r = calloc(1, sizeof(*r) + plen + 1);
	struct track_rec **pp;
	long slot;

	if (!r)
		return -ENOMEM;
	slot = name_slot(tr, tunnel);
	if (slot < 0) {
		free(r);
		return -ENOMEM;
	}
	r->id = id;
	memcpy(r->peer, peer, plen + 1);
	r->name = (unsigned int)slot;
	r->legs_slot = legs_slot;
	r->legs_owner = legs_owner;
	r->proof = proof;
	pp = &tr->bucket[id & (BUCKETS - 1)];
	r->next = *pp;
	*pp = r;
	tr->names[slot].n++;
	tr->total++;
	return 0;
}

int gw_dptrack_running(struct gw_dptrack *tr, uint32_t id, int worker)
{
	struct track_rec *r = *find(tr, id);

	if (!r)
		return 0;
	r->running = 1;
	r->worker = worker;
	return r->proof && r->proof->epoch < tr->epoch;
}

static void unlink_rec(struct gw_dptrack *tr, struct track_rec **pp)
{
	struct track_rec *r = *pp;

	*pp = r->next;
	tr->names[r->name].n--;
	tr->total--;
	gw_proof_free(r->proof);
	free(r);
}

int gw_dptrack_del(struct gw_dptrack *tr, uint32_t id)
{
	struct track_rec **pp = find(tr, id);

	if (!*pp)
		return -ENOENT;
	unlink_rec(tr, pp);
	return 0;
}

size_t gw_dptrack_lost(struct gw_dptrack *tr, void (*drop)(int legs_slot, uint64_t legs_owner))
{
	size_t lost = 0;

	for (size_t b = 0; b < BUCKETS; b++) {
		struct track_rec **pp = &tr->bucket[b];

		while (*pp) {
			if ((*pp)->running) {
				if ((*pp)->legs_slot >= 0 && drop)
					drop((*pp)->legs_slot, (*pp)->legs_owner);
				unlink_rec(tr, pp);
				lost++;
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	return lost;
}

size_t gw_dptrack_count(const struct gw_dptrack *tr, const char *tunnel)
{
	long slot;

	if (!tunnel)
		return tr->total;
	slot = lookup(tr, tunnel);
	return slot < 0 ? 0 : tr->names[slot].n;
}

void gw_dptrack_each(const struct gw_dptrack *tr,
		     void (*fn)(void *ctx, const char *tunnel, const char *peer, int running),
		     void *ctx)
{
	for (size_t b = 0; b < BUCKETS; b++)
		for (const struct track_rec *r = tr->bucket[b]; r; r = r->next)
			fn(ctx, tr->names[r->name].name, r->peer, r->running);
}

void gw_dptrack_revalidate(struct gw_dptrack *tr, unsigned long epoch,
			   int (*fn)(void *ctx, uint32_t id, int worker, const char *tunnel,
				     const char *peer, const struct gw_proof *proof),
			   void *ctx)
{
	int ret;

	tr->epoch = epoch;
	for (size_t b = 0; b < BUCKETS; b++)
		for (struct track_rec *r = tr->bucket[b]; r; r = r->next) {
			if (!r->running || !r->proof || r->revoked || r->proof->epoch >= epoch)
				continue;
			ret = fn(ctx, r->id, r->worker, tr->names[r->name].name, r->peer, r->proof);
			if (ret > 0)
				r->revoked = 1;
			else if (!ret)
				r->proof->epoch = epoch;
		}
}

int gw_dptrack_bytes(struct gw_dptrack *tr, uint32_t id, uint64_t up, uint64_t down)
{
	struct track_rec *r = *find(tr, id);

	if (!r)
		return -ENOENT;
	tr->names[r->name].up += up;
	tr->names[r->name].down += down;
	return 0;
}

void gw_dptrack_bytes_of(const struct gw_dptrack *tr, const char *tunnel, uint64_t *up,
			 uint64_t *down)
{
	long slot = lookup(tr, tunnel);

	*up = slot < 0 ? 0 : tr->names[slot].up;
	*down = slot < 0 ? 0 : tr->names[slot].down;
}
