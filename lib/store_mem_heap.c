/*
 * store_mem_heap.c - the min-heap of the memory backend.
 */
#include <stdlib.h>

#include <vartalap/error.h>

#include "store_mem_heap.h"

static int hitem_less(const struct hitem *a, const struct hitem *b)
{
	return a->ts < b->ts || (a->ts == b->ts && a->id < b->id);
}

int vt__mem_heap_reserve(struct heap *h, size_t extra)
{
	size_t want = h->cap ? h->cap : 16;
	struct hitem *v;

	while (h->len + extra > want) {
		if (want > SIZE_MAX / 2 / sizeof(*v)) {
			return VT_ENOMEM;
		}
		want *= 2;
	}
	if (want == h->cap) {
		return 0;
	}
	v = realloc(h->v, want * sizeof(*v));
	if (!v) {
		return VT_ENOMEM;
	}
	h->v = v;
	h->cap = want;
	return 0;
}

void vt__mem_heap_down(struct heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct hitem t;

		if (l < h->len && hitem_less(&h->v[l], &h->v[m])) {
			m = l;
		}
		if (r < h->len && hitem_less(&h->v[r], &h->v[m])) {
			m = r;
		}
		if (m == i) {
			return;
		}
		t = h->v[i];
		h->v[i] = h->v[m];
		h->v[m] = t;
		i = m;
	}
}

/* Push onto a heap with room reserved. */
void vt__mem_heap_push(struct heap *h, struct hitem it)
{
	size_t i = h->len++;

	while (i > 0 && hitem_less(&it, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = it;
}

void vt__mem_heap_pop(struct heap *h)
{
	h->v[0] = h->v[--h->len];
	vt__mem_heap_down(h, 0);
}

void vt__mem_heapify(struct heap *h)
{
	for (size_t i = h->len / 2; i-- > 0;) {
		vt__mem_heap_down(h, i);
	}
}
