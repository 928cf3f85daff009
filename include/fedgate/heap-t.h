/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_HEAP_T_H
#define FEDGATE_HEAP_T_H

#include <stddef.h>
#include <stdint.h>

/*
 * A node lives inside its owner (e.g. a connection with a deadline); the heap
 * holds pointers to nodes, never owns them. @idx is the node's place in the
 * heap, FG_HEAP_NONE while it is in none.
 */
#define FG_HEAP_NONE ((size_t)-1)

struct fg_heap_node {
	uint64_t key;
	size_t idx;
};

/* A binary min-heap on key: push, remove and pop are O(log n), the minimum O(1). */
struct fg_heap {
	struct fg_heap_node **v;
	size_t n, cap;
};

#endif
