// SPDX-License-Identifier: MIT
/*
 * The deadlines of the control loop (a flood holds thousands at once): a
 * binary min-heap of nodes that their owners embed, so that an owner leaving
 * early takes its node out in O(log n) and nothing is ever walked whole.
 */
#include <errno.h>
#include <stdlib.h>

#include "fedgate/heap.h"

void fg_heap_init(struct fg_heap *h)
{
	h->v = NULL;
	h->n = h->cap = 0;
}

void fg_heap_exit(struct fg_heap *h)
{
	for (size_t i = 0; i < h->n; i++)
		h->v[i]->idx = FG_HEAP_NONE;
	free(h->v);
	fg_heap_init(h);
}

static void place(struct fg_heap *h, size_t i, struct fg_heap_node *n)
{
	h->v[i] = n;
	n->idx = i;
}

/* Moves the node at @i toward the root while it is smaller than its parent. */
static void sift_up(struct fg_heap *h, size_t i)
{
	struct fg_heap_node *n = h->v[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->v[parent]->key <= n->key)
			break;
		place(h, i, h->v[parent]);
		i = parent;
	}
	place(h, i, n);
}

/* Moves the node at @i toward the leaves while a child is smaller. */
static void sift_down(struct fg_heap *h, size_t i)
{
	struct fg_heap_node *n = h->v[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= h->n)
			break;
		if (child + 1 < h->n && h->v[child + 1]->key < h->v[child]->key)
			child++;
		if (n->key <= h->v[child]->key)
			break;
		place(h, i, h->v[child]);
		i = child;
	}
	place(h, i, n);
}

int fg_heap_push(struct fg_heap *h, struct fg_heap_node *n, uint64_t key)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 64;
		struct fg_heap_node **v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	n->key = key;
	place(h, h->n++, n);
	sift_up(h, n->idx);
	return 0;
}

void fg_heap_remove(struct fg_heap *h, struct fg_heap_node *n)
{
	size_t i = n->idx;
	struct fg_heap_node *last;

	if (i == FG_HEAP_NONE || i >= h->n || h->v[i] != n)
		return;
	n->idx = FG_HEAP_NONE;
	last = h->v[--h->n];
	if (last == n)
		return;
	place(h, i, last);
	/* The moved node may belong above or below where it landed. */
	if (i > 0 && h->v[(i - 1) / 2]->key > last->key)
		sift_up(h, i);
	else
		sift_down(h, i);
}
