// SPDX-License-Identifier: MIT
/*
 * Per-worker buffer chunks for tunnels that are moving bytes. Only the owning
 * worker thread touches its pool, so there is no lock.
 */
#include <stdlib.h>
#include <openssl/crypto.h>

#include "dataplane/dp.h"

void *dp_pool_get(struct dp_pool *p)
{
	void *chunk = p->free;

	if (chunk) {
		p->free = *(void **)chunk;
		p->n_free--;
	} else {
		chunk = malloc(DP_CHUNK);
		if (!chunk)
			return NULL;
	}
	p->n_out++;
	return chunk;
}

void dp_pool_put(struct dp_pool *p, void *chunk)
{
	if (!chunk)
		return;
	p->n_out--;
	if (p->n_free >= DP_POOL_KEEP) {
		/* Leaves the process's reach through malloc: no plaintext may stay in it. */
		OPENSSL_cleanse(chunk, DP_CHUNK);
		free(chunk);
		return;
	}
	*(void **)chunk = p->free;
	p->free = chunk;
	p->n_free++;
}

void dp_pool_exit(struct dp_pool *p)
{
	while (p->free) {
		void *chunk = p->free;

		p->free = *(void **)chunk;
		OPENSSL_cleanse(chunk, DP_CHUNK);
		free(chunk);
	}
	p->n_free = 0;
}
