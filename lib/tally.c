/*
 * tally.c - counts by key hash (see tally.h).
 */
#include <stdlib.h>

#include <vartalap/error.h>

#include "tally.h"

uint64_t vt_tally_hash(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

/* FNV's low bits mix poorly: fold the high ones in. */
static size_t slot(uint64_t h)
{
	return (size_t)((h ^ (h >> 29) ^ (h >> 47)) & (VT_TALLY_SLOTS - 1));
}

int vt_tally_init(struct vt_tally *t)
{
	t->count = calloc(VT_TALLY_SLOTS, sizeof(*t->count));
	t->total = 0;
	return t->count != NULL ? 0 : VT_ENOMEM;
}

void vt_tally_add(struct vt_tally *t, uint64_t h)
{
	t->count[slot(h)]++;
	t->total++;
}

void vt_tally_sub(struct vt_tally *t, uint64_t h)
{
	uint32_t *c = &t->count[slot(h)];

	if (*c > 0) {
		(*c)--;
		t->total--;
	}
}

int vt_tally_has(const struct vt_tally *t, uint64_t h)
{
	return t->total > 0 && t->count[slot(h)] > 0;
}

void vt_tally_free(struct vt_tally *t)
{
	free(t->count);
	t->count = NULL;
	t->total = 0;
}
