/*
 * vmem.h - memory mapped straight from the kernel, for what malloc's heap
 * serves badly.
 *
 * Internal. A slab wants chunks aligned to their size, apart from the heap.
 * A table far larger than the caches and probed at random (the pair index
 * holds millions of entries) misses the TLB on nearly every lookup when it
 * lies on 4 KiB pages: mapped on 2 MiB boundaries with huge pages asked
 * for, the same lookups walk no page tables. Where the kernel gives no huge
 * pages (transparent huge pages off), the table works as before.
 */
#ifndef VARTALAP_VMEM_H
#define VARTALAP_VMEM_H

#include <stddef.h>

/*
 * @size bytes of zeroed memory at a multiple of @align, a power of two of
 * at least a page; NULL when out of memory. Give back with munmap(p, size).
 */
void *vt__map_aligned(size_t size, size_t align);

/*
 * Room for a table of @size zeroed bytes looked up at random; NULL when out
 * of memory. From 2 MiB on it is mapped on huge-page boundaries and asks
 * for huge pages; smaller, and under AddressSanitizer (which then still
 * sees an access past its end), it is calloc's.
 */
void *vt__table_alloc(size_t size);

/* Give back a table of vt__table_alloc (@size as asked for; NULL is fine). */
void vt__table_free(void *p, size_t size);

#endif /* VARTALAP_VMEM_H */
