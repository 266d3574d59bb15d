/*
 * store_mem_heap.h - the min-heap of (ts, id, pointer) the memory
 * backend orders its expiry by.
 *
 * Internal.
 */
#ifndef VARTALAP_STORE_MEM_HEAP_H
#define VARTALAP_STORE_MEM_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct hitem {
	int64_t ts;
	uint64_t id;
	void *p;
};

struct heap {
	struct hitem *v;
	size_t len, cap;
};

int vt__mem_heap_reserve(struct heap *h, size_t extra);
void vt__mem_heap_down(struct heap *h, size_t i);
void vt__mem_heap_push(struct heap *h, struct hitem it);
void vt__mem_heap_pop(struct heap *h);
void vt__mem_heapify(struct heap *h);

#endif
