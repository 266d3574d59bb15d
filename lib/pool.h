/*
 * pool.h - blocks of one size, kept when freed for the next allocation.
 *
 * Internal. What a server allocates and frees per delivery, in bursts of
 * thousands (a queue entry per member of a group post, a node per queued
 * frame), overflows malloc's small per-thread caches and costs it a trip
 * through its bins each time. A pool keeps up to @max_free freed blocks on
 * a list and hands them out again. Not thread-safe: one per thread or loop.
 *
 * Built with AddressSanitizer, a pool keeps nothing: every block goes to
 * malloc and free, so the sanitizer still sees each use after free.
 */
#ifndef VARTALAP_POOL_H
#define VARTALAP_POOL_H

#include <stddef.h>

/*
 * 1 when memory freed may be kept for reuse: 0 under AddressSanitizer, so
 * that what is freed is freed and each use after it is seen.
 */
#if defined(__SANITIZE_ADDRESS__)
#define VT_KEEP_FREED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VT_KEEP_FREED 0
#endif
#endif
#ifndef VT_KEEP_FREED
#define VT_KEEP_FREED 1
#endif

struct vt_pool {
	void *free;      /* freed blocks, linked through their first bytes */
	size_t nfree;
	size_t max_free;
	size_t size;     /* of a block, at least a pointer's */
};

void vt_pool_init(struct vt_pool *p, size_t size, size_t max_free);

/* A block of the pool's size, not cleared; NULL when out of memory. */
void *vt_pool_get(struct vt_pool *p);

/* As vt_pool_get(), with every byte zero. */
void *vt_pool_zget(struct vt_pool *p);

/* Give back @block (NULL is fine): kept, or freed when the pool is full. */
void vt_pool_put(struct vt_pool *p, void *block);

/* Free every block the pool keeps. */
void vt_pool_drain(struct vt_pool *p);

#endif /* VARTALAP_POOL_H */
