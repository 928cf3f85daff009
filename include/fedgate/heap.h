/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_HEAP_H
#define FEDGATE_HEAP_H

#include "fedgate/heap-t.h"

/* A node not in any heap yet. */
static inline void fg_heap_node_init(struct fg_heap_node *n)
{
	n->idx = FG_HEAP_NONE;
}

void fg_heap_init(struct fg_heap *h);
void fg_heap_exit(struct fg_heap *h); /* frees the array, never the nodes */
/* Adds @n (not in a heap) with @key. 0, or -ENOMEM (then @n is still in none). */
int fg_heap_push(struct fg_heap *h, struct fg_heap_node *n, uint64_t key);
/* Takes @n out of @h; a node in none is left alone. */
void fg_heap_remove(struct fg_heap *h, struct fg_heap_node *n);
/* The node with the smallest key, or NULL if @h is empty. */
static inline struct fg_heap_node *fg_heap_min(const struct fg_heap *h)
{
	return h->n ? h->v[0] : NULL;
}

#endif
