/*
 * inflight.c - the deadline heap of pushed, un-acked items.
 *
 * A binary min-heap on the monotonic deadline. Each item knows its index, so
 * an ack removes it in O(log n) without a search.
 */
#include <stdlib.h>

#include <vartalap/error.h>

#include "engine_internal.h"

static void place(struct vt_heap *h, size_t i, struct vt_item *it)
{
	h->items[i] = it;
	it->heap_idx = i;
}

static void sift_up(struct vt_heap *h, size_t i)
{
	struct vt_item *it = h->items[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->items[parent]->deadline <= it->deadline) {
			break;
		}
		place(h, i, h->items[parent]);
		i = parent;
	}
	place(h, i, it);
}

static void sift_down(struct vt_heap *h, size_t i)
{
	struct vt_item *it = h->items[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= h->len) {
			break;
		}
		if (child + 1 < h->len && h->items[child + 1]->deadline < h->items[child]->deadline) {
			child++;
		}
		if (it->deadline <= h->items[child]->deadline) {
			break;
		}
		place(h, i, h->items[child]);
		i = child;
	}
	place(h, i, it);
}

void vt_heap_free(struct vt_heap *h)
{
	free(h->items);
	h->items = NULL;
	h->len = h->cap = 0;
}

int vt_heap_push(struct vt_heap *h, struct vt_item *it)
{
	if (h->len == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 64;
		struct vt_item **n = realloc(h->items, ncap * sizeof(*n));

		if (n == NULL) {
			return VT_ENOMEM;
		}
		h->items = n;
		h->cap = ncap;
	}
	h->items[h->len] = it;
	sift_up(h, h->len++);
	return 0;
}

void vt_heap_remove(struct vt_heap *h, struct vt_item *it)
{
	size_t i = it->heap_idx;
	struct vt_item *last;

	if (i == VT_HEAP_NONE) {
		return;
	}
	it->heap_idx = VT_HEAP_NONE;
	last = h->items[--h->len];
	if (i == h->len) {
		return;
	}

	/* The last item fills the hole and moves whichever way it must. */
	place(h, i, last);
	if (i > 0 && h->items[(i - 1) / 2]->deadline > last->deadline) {
		sift_up(h, i);
	} else {
		sift_down(h, i);
	}
}

struct vt_item *vt_heap_top(const struct vt_heap *h)
{
	return h->len ? h->items[0] : NULL;
}
