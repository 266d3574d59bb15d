/*
 * bench/hist.h - a log-linear latency histogram.
 *
 * Values are nanoseconds. Below 2^HIST_SUB each value has its own bucket;
 * above, every power of two is split into 2^(HIST_SUB-1) equal buckets, so a
 * recorded value is off by less than 1/128 of itself (0.8%) at any scale.
 * Recording is an index computation and an increment: cheap enough to run
 * for every delivered message without skewing what it measures.
 */
#ifndef VB_HIST_H
#define VB_HIST_H

#include <stdint.h>

#define HIST_SUB 8
#define HIST_SHIFTS 40 /* up to 2^48 ns, about three days */
#define HIST_BUCKETS ((1u << HIST_SUB) + HIST_SHIFTS * (1u << (HIST_SUB - 1)))

struct vb_hist {
	uint64_t count;
	uint64_t max;
	uint64_t b[HIST_BUCKETS];
};

void vb_hist_reset(struct vb_hist *h);
void vb_hist_add(struct vb_hist *h, uint64_t ns);

/* The value at quantile @q (0..1), as the top of its bucket; 0 when empty. */
uint64_t vb_hist_quantile(const struct vb_hist *h, double q);

#endif
