/*
 * dedup.c - which (sender, client id) pairs were taken, for events that
 * durability mode "offline" keeps only in memory.
 *
 * In mode "always" the storage backend dedups inside the same write that
 * stores the event. In mode "offline" an event for a connected recipient is
 * never written, so a re-send must be caught here. The table is bounded: the
 * oldest pair is forgotten first, so a re-send after max_entries newer events
 * is no longer recognised (documented in docs/PROTOCOL.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

struct vt_dedup {
	struct vt_map map;   /* "from\ncid" -> id, stored as a pointer-sized value */
	char **ring;         /* keys in insertion order, for eviction */
	uint32_t cap, head, len;
};

struct vt_dedup *vt_dedup_new(uint32_t max_entries)
{
	struct vt_dedup *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		return NULL;
	}
	d->ring = calloc(max_entries, sizeof(*d->ring));
	if (d->ring == NULL) {
		free(d);
		return NULL;
	}
	d->cap = max_entries;
	vt_map_init(&d->map);
	return d;
}

void vt_dedup_free(struct vt_dedup *d)
{
	if (d == NULL) {
		return;
	}
	for (uint32_t i = 0; i < d->cap; i++) {
		free(d->ring[i]);
	}
	free(d->ring);
	vt_map_free(&d->map);
	free(d);
}

/* Ids never contain a newline, so "from\ncid" is unambiguous. */
static void make_key(char *key, size_t cap, const char *from, const char *cid)
{
	snprintf(key, cap, "%s\n%s", from, cid);
}

uint64_t vt_dedup_get(struct vt_dedup *d, const char *from, const char *cid)
{
	char key[2 * VT_ID_MAX + 2];

	make_key(key, sizeof(key), from, cid);
	return (uint64_t)(uintptr_t)vt_map_get(&d->map, key);
}

void vt_dedup_put(struct vt_dedup *d, const char *from, const char *cid, uint64_t id)
{
	char key[2 * VT_ID_MAX + 2];
	uint32_t slot = (d->head + d->len) % d->cap;

	make_key(key, sizeof(key), from, cid);
	if (d->len == d->cap) {
		/* Full: forget the oldest pair to make room. */
		vt_map_del(&d->map, d->ring[d->head]);
		free(d->ring[d->head]);
		d->ring[d->head] = NULL;
		d->head = (d->head + 1) % d->cap;
		d->len--;
		slot = (d->head + d->len) % d->cap;
	}
	d->ring[slot] = strdup(key);
	if (d->ring[slot] == NULL || vt_map_put(&d->map, key, (void *)(uintptr_t)id) != 0) {
		free(d->ring[slot]);
		d->ring[slot] = NULL;
		return;
	}
	d->len++;
}
