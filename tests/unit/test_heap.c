/* SPDX-License-Identifier: MIT */
/*
 * The deadline heap (lib/heap.c): the minimum is always the smallest key,
 * removal from anywhere keeps that true, and a removed or never-added node
 * is left alone.
 */
#include <stdlib.h>
#include "fedgate/heap.h"
#include "unit.h"

#define N 2000

static struct fg_heap_node nodes[N];
static uint64_t keys[N];
static int gone[N];

/* Every parent's key is at most its children's, and every node knows its place. */
static int heap_ok(const struct fg_heap *h)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->v[i]->idx != i)
			return 0;
		if (i && h->v[(i - 1) / 2]->key > h->v[i]->key)
			return 0;
	}
	return 1;
}

static uint64_t smallest_left(void)
{
	uint64_t min = UINT64_MAX;

	for (int i = 0; i < N; i++)
		if (!gone[i] && keys[i] < min)
			min = keys[i];
	return min;
}

UNIT_TEST(min_is_smallest_through_random_pushes_and_removals)
{
	struct fg_heap h;

	fg_heap_init(&h);
	srand(7);
	for (int i = 0; i < N; i++) {
		fg_heap_node_init(&nodes[i]);
		keys[i] = (uint64_t)(rand() % 500); /* many equal keys */
		gone[i] = 0;
		CHECK_EQ(fg_heap_push(&h, &nodes[i], keys[i]), 0);
	}
	CHECK(heap_ok(&h));
	CHECK_EQ(fg_heap_min(&h)->key, smallest_left());
	/* Out of the middle, as connections that finish early leave. */
	for (int i = 0; i < N; i += 3) {
		fg_heap_remove(&h, &nodes[i]);
		gone[i] = 1;
		CHECK_EQ(nodes[i].idx, FG_HEAP_NONE);
	}
	CHECK(heap_ok(&h));
	/* Then the minimum, each time the smallest of what is left. */
	while (fg_heap_min(&h)) {
		struct fg_heap_node *m = fg_heap_min(&h);
		int i = (int)(m - nodes);

		CHECK_EQ(m->key, smallest_left());
		fg_heap_remove(&h, m);
		gone[i] = 1;
	}
	CHECK_EQ(h.n, 0);
	fg_heap_exit(&h);
}

UNIT_TEST(removing_a_node_in_no_heap_changes_nothing)
{
	struct fg_heap h;
	struct fg_heap_node a, b;

	fg_heap_init(&h);
	fg_heap_node_init(&a);
	fg_heap_node_init(&b);
	fg_heap_remove(&h, &a);
	CHECK_EQ(h.n, 0);
	CHECK_EQ(fg_heap_push(&h, &a, 5), 0);
	fg_heap_remove(&h, &b);
	fg_heap_remove(&h, &a);
	fg_heap_remove(&h, &a);
	CHECK_EQ(h.n, 0);
	CHECK(fg_heap_min(&h) == NULL);
	fg_heap_exit(&h);
}

UNIT_TEST(exit_leaves_nodes_in_none)
{
	struct fg_heap h;
	struct fg_heap_node a;

	fg_heap_init(&h);
	fg_heap_node_init(&a);
	CHECK_EQ(fg_heap_push(&h, &a, 1), 0);
	fg_heap_exit(&h);
	CHECK_EQ(a.idx, FG_HEAP_NONE);
	CHECK(fg_heap_min(&h) == NULL);
}

UNIT_MAIN("heap", UNIT_CASE(min_is_smallest_through_random_pushes_and_removals),
	  UNIT_CASE(removing_a_node_in_no_heap_changes_nothing), UNIT_CASE(exit_leaves_nodes_in_none))
