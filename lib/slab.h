/*
 * slab.h - objects of one size that live as long as a connection.
 *
 * Internal. A connection's records (the engine's, the gateway's) are made
 * while its handshake's buffers come and go; from malloc each takes a
 * header and sits between the holes those leave, about 70 bytes of an
 * idle connection's thousand. A slab carves such objects from chunks of
 * its own, mapped apart from malloc's heap and aligned to their size so
 * that an object finds its chunk by its address, and unmaps a chunk once
 * none of its objects is in use (keeping one empty chunk), so a burst of
 * connections does not keep its memory. Not thread-safe: one per thread
 * or loop.
 *
 * Built with AddressSanitizer, each object is its own calloc, so that the
 * sanitizer still sees every use after free.
 */
#ifndef VARTALAP_SLAB_H
#define VARTALAP_SLAB_H

#include <stddef.h>
#include <sys/queue.h>

struct vt_slab_chunk;
LIST_HEAD(vt_slab_chunks, vt_slab_chunk);

struct vt_slab {
	size_t size;                  /* of an object, rounded up to 16 bytes */
	size_t per_chunk;             /* objects a chunk holds */
	struct vt_slab_chunks chunks; /* every chunk but the spare */
	struct vt_slab_chunks room;   /* the chunks with a free object */
	struct vt_slab_chunk *spare;  /* an empty chunk kept for the next object */
};

/* A slab of objects of @size bytes; @size must leave room for a few in a chunk. */
void vt_slab_init(struct vt_slab *s, size_t size);

/* A zeroed object; NULL when out of memory. */
void *vt_slab_zalloc(struct vt_slab *s);

/* Give back @obj (NULL is fine), an object of @s. */
void vt_slab_free(struct vt_slab *s, void *obj);

/*
 * Free every chunk. Every object must have been given back: one that was
 * not goes with its chunk (a leak the sanitizer reports, in its build).
 */
void vt_slab_destroy(struct vt_slab *s);

#endif /* VARTALAP_SLAB_H */
