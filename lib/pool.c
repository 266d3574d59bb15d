/*
 * pool.c - blocks of one size, kept when freed (pool.h).
 */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

void vt_pool_init(struct vt_pool *p, size_t size, size_t max_free)
{
	p->free = NULL;
	p->nfree = 0;
	p->max_free = VT_KEEP_FREED ? max_free : 0;
	p->size = size < sizeof(void *) ? sizeof(void *) : size;
}

void *vt_pool_get(struct vt_pool *p)
{
	void *b = p->free;

	if (b == NULL) {
		return malloc(p->size);
	}
	memcpy(&p->free, b, sizeof(void *));
	p->nfree--;

	/* Blocks come back long after they went out, mostly no longer in the
	 * caches, and are taken in bursts (a copy per member of a group post):
	 * fetching the next one's link now overlaps its miss with the caller's
	 * use of this one. Its last byte too: a block may span two lines. */
	if (p->free != NULL) {
		__builtin_prefetch(p->free, 1);
		__builtin_prefetch((const char *)p->free + p->size - 1, 1);
	}
	return b;
}

void *vt_pool_zget(struct vt_pool *p)
{
	void *b = vt_pool_get(p);

	if (b != NULL) {
		memset(b, 0, p->size);
	}
	return b;
}

void vt_pool_put(struct vt_pool *p, void *block)
{
	if (block == NULL) {
		return;
	}
	if (p->nfree >= p->max_free) {
		free(block);
		return;
	}
	memcpy(block, &p->free, sizeof(void *));
	p->free = block;
	p->nfree++;
}

void vt_pool_drain(struct vt_pool *p)
{
	while (p->free != NULL) {
		void *b = p->free;

		memcpy(&p->free, b, sizeof(void *));
		free(b);
	}
	p->nfree = 0;
}
