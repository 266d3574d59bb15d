/*
 * tally.h - counts by key hash, for "might anything be pending under this key?".
 *
 * Internal. A fixed table of counters indexed by a 64-bit hash: adding and
 * taking back never allocate, and a test costs one memory access. Keys that
 * share a counter are counted together, so a test may say yes for a key
 * never added (it never says no for one added and not taken back): fit for
 * callers that only lose speed on a false yes.
 */
#ifndef VARTALAP_TALLY_H
#define VARTALAP_TALLY_H

#include <stdint.h>

#define VT_TALLY_SLOTS 65536u /* a power of two */

struct vt_tally {
	uint32_t *count; /* VT_TALLY_SLOTS counters; NULL: not made */
	uint64_t total;  /* sum of the counters */
};

/* Make the table: 0, or VT_ENOMEM (and the tally stays unusable). */
int vt_tally_init(struct vt_tally *t);

/* FNV-1a over @s, continuing from @h (start with VT_TALLY_SEED). */
#define VT_TALLY_SEED 14695981039346656037ull
uint64_t vt_tally_hash(uint64_t h, const char *s);

/* Count @h once more. */
void vt_tally_add(struct vt_tally *t, uint64_t h);

/* Take back one count of @h, which must have been added. */
void vt_tally_sub(struct vt_tally *t, uint64_t h);

/* Is @h (or a key sharing its counter) counted now? */
int vt_tally_has(const struct vt_tally *t, uint64_t h);

void vt_tally_free(struct vt_tally *t);

#endif /* VARTALAP_TALLY_H */
