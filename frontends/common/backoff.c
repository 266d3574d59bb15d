/*
 * frontends/common/backoff.c - growing, jittered delays between attempts.
 */
#include "backoff.h"

/* xorshift64: jitter only needs to spread retries, not to be secret. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

uint64_t vt_fe_backoff_ms(uint64_t first_ms, uint64_t max_ms, uint32_t attempts, uint64_t *rng)
{
	uint64_t d = first_ms;

	while (attempts > 1 && d < max_ms) {
		d *= 2;
		attempts--;
	}
	if (d > max_ms) {
		d = max_ms;
	}
	return d + next_random(rng) % (d / 2 + 1);
}
