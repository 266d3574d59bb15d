/*
 * bench/hist.c - the log-linear histogram (see hist.h for the layout).
 */
#include "hist.h"

#include <string.h>

#define HALF (1u << (HIST_SUB - 1))

void vb_hist_reset(struct vb_hist *h)
{
	memset(h, 0, sizeof(*h));
}

static unsigned msb(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

static uint32_t index_of(uint64_t v)
{
	unsigned shift;

	if (v < (1u << HIST_SUB)) {
		return (uint32_t)v;
	}
	/* v >> shift lands in [HALF, 2 * HALF): the sub-bucket within the octave. */
	shift = msb(v) - HIST_SUB + 1;
	if (shift > HIST_SHIFTS) {
		return HIST_BUCKETS - 1;
	}
	return (1u << HIST_SUB) + (shift - 1) * HALF + (uint32_t)((v >> shift) - HALF);
}

/* The largest value that falls into bucket @i. */
static uint64_t top_of(uint32_t i)
{
	uint32_t shift, sub;

	if (i < (1u << HIST_SUB)) {
		return i;
	}
	shift = (i - (1u << HIST_SUB)) / HALF + 1;
	sub = (i - (1u << HIST_SUB)) % HALF + HALF;
	return (((uint64_t)sub + 1) << shift) - 1;
}

void vb_hist_add(struct vb_hist *h, uint64_t ns)
{
	h->b[index_of(ns)]++;
	h->count++;
	if (ns > h->max) {
		h->max = ns;
	}
}

uint64_t vb_hist_quantile(const struct vb_hist *h, double q)
{
	uint64_t want, seen = 0;
	uint32_t i;

	if (h->count == 0) {
		return 0;
	}
	want = (uint64_t)(q * (double)h->count);
	if (want >= h->count) {
		want = h->count - 1;
	}
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > want) {
			uint64_t top = top_of(i);

			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}
