/*
 * frontends/common/backoff.h - growing, jittered delays between attempts.
 *
 * Whatever waits before trying again (a webhook notice, a client envelope,
 * a reconnect) waits the same way: a first delay that doubles with each
 * failed attempt up to a ceiling, plus up to half again of jitter, so that
 * many waiters that failed together do not all return together.
 */
#ifndef VARTALAP_FE_BACKOFF_H
#define VARTALAP_FE_BACKOFF_H

#include <stdint.h>

/*
 * Milliseconds to wait before the attempt after @attempts failed ones:
 * @first_ms after the first (and when @attempts is 0), doubling from there,
 * at most @max_ms, plus up to half of that drawn from @rng. @rng is the
 * state of a xorshift generator and must not be 0.
 */
uint64_t vt_fe_backoff_ms(uint64_t first_ms, uint64_t max_ms, uint32_t attempts, uint64_t *rng);

#endif /* VARTALAP_FE_BACKOFF_H */
