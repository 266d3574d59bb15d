/*
 * slab.c - objects of one size that live as long as a connection (slab.h).
 */
#include "slab.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pool.h" /* VT_KEEP_FREED */

/*
 * A chunk's bytes, and its alignment: its header, then its objects. Chunks
 * are mapped on their own: aligned allocations from malloc's heap leave a
 * hole before each, which a server's short-lived buffers then dirty.
 */
#define CHUNK_SIZE 65536

struct vt_slab_chunk {
	LIST_ENTRY(vt_slab_chunk) all;  /* on the slab's chunks */
	LIST_ENTRY(vt_slab_chunk) room; /* on its chunks with room, while it has some */
	void *free;    /* objects given back, linked through their first bytes */
	size_t used;   /* objects in use */
	size_t carved; /* objects taken from the fresh space so far */
	int has_room;  /* on the list of chunks with room */
};

#define HEADER (((sizeof(struct vt_slab_chunk) + 15) / 16) * 16)

void vt_slab_init(struct vt_slab *s, size_t size)
{
	s->size = size < sizeof(void *) ? 16 : ((size + 15) / 16) * 16;
	s->per_chunk = (CHUNK_SIZE - HEADER) / s->size;
	assert(s->per_chunk >= 4);
	LIST_INIT(&s->chunks);
	LIST_INIT(&s->room);
	s->spare = NULL;
}

static void room_add(struct vt_slab *s, struct vt_slab_chunk *c)
{
	LIST_INSERT_HEAD(&s->room, c, room);
	c->has_room = 1;
}

static void room_remove(struct vt_slab_chunk *c)
{
	LIST_REMOVE(c, room);
	c->has_room = 0;
}

/* A zeroed chunk mapped at a multiple of its size; NULL when out of memory. */
static struct vt_slab_chunk *chunk_map(void)
{
	size_t span = 2 * CHUNK_SIZE;
	char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *c;

	if (p == MAP_FAILED) {
		return NULL;
	}

	/* Keep the aligned chunk inside the span; unmap what is before and after. */
	c = (char *)(((uintptr_t)p + CHUNK_SIZE - 1) & ~(uintptr_t)(CHUNK_SIZE - 1));
	if (c > p) {
		munmap(p, (size_t)(c - p));
	}
	if (c + CHUNK_SIZE < p + span) {
		munmap(c + CHUNK_SIZE, (size_t)(p + span - (c + CHUNK_SIZE)));
	}
	return (struct vt_slab_chunk *)c;
}

/* The spare, or a new chunk; empty, not on any list. NULL when out of memory. */
static struct vt_slab_chunk *chunk_get(struct vt_slab *s)
{
	struct vt_slab_chunk *c = s->spare;

	if (c != NULL) {
		s->spare = NULL;
		return c;
	}
	return chunk_map();
}

void *vt_slab_zalloc(struct vt_slab *s)
{
	struct vt_slab_chunk *c = LIST_FIRST(&s->room);
	void *obj;

	if (!VT_KEEP_FREED) {
		return calloc(1, s->size);
	}
	if (c == NULL) {
		c = chunk_get(s);
		if (c == NULL) {
			return NULL;
		}
		LIST_INSERT_HEAD(&s->chunks, c, all);
		room_add(s, c);
	}

	if (c->free != NULL) {
		obj = c->free;
		memcpy(&c->free, obj, sizeof(void *));
	} else {
		obj = (char *)c + HEADER + c->carved++ * s->size;
	}
	if (++c->used == s->per_chunk) {
		room_remove(c);
	}
	memset(obj, 0, s->size);
	return obj;
}

void vt_slab_free(struct vt_slab *s, void *obj)
{
	struct vt_slab_chunk *c;

	if (obj == NULL) {
		return;
	}
	if (!VT_KEEP_FREED) {
		free(obj);
		return;
	}
	c = (struct vt_slab_chunk *)((uintptr_t)obj & ~(uintptr_t)(CHUNK_SIZE - 1));
	memcpy(obj, &c->free, sizeof(void *));
	c->free = obj;
	if (!c->has_room) {
		room_add(s, c);
	}
	if (--c->used > 0) {
		return;
	}

	/* Empty: kept as the spare if there is none, so that one connection
	 * coming and going does not allocate a chunk each time. */
	room_remove(c);
	LIST_REMOVE(c, all);
	if (s->spare != NULL) {
		munmap(c, CHUNK_SIZE);
		return;
	}
	memset(c, 0, sizeof(*c));
	s->spare = c;
}

void vt_slab_destroy(struct vt_slab *s)
{
	while (!LIST_EMPTY(&s->chunks)) {
		struct vt_slab_chunk *c = LIST_FIRST(&s->chunks);

		LIST_REMOVE(c, all);
		munmap(c, CHUNK_SIZE);
	}
	if (s->spare != NULL) {
		munmap(s->spare, CHUNK_SIZE);
	}
	LIST_INIT(&s->room);
	s->spare = NULL;
}
