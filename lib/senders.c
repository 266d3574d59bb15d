/*
 * senders.c - the rate of events sent without a connection, per user.
 *
 * A WebSocket connection carries its own token bucket. An event sent over
 * REST has no connection, so its bucket is kept here, by user: every
 * device and every request of one user draw from the same --rate. A
 * connection's bucket is kept here too when it closes, and the user's next
 * connection takes it up, so reconnecting buys no fresh burst.
 *
 * A bucket that has refilled is the same as no bucket, so the sweep drops
 * it: the table holds only users who sent in about the last second. It
 * never holds more than VT_SENDERS_MAX of them, whatever a caller with
 * tokens for many users does; past that a new sender is refused as busy
 * until the next sweep makes room, at no cost beyond a lookup.
 */
#include <stdlib.h>

#include <vartalap/error.h>

#include "engine_internal.h"

/* Would @b, left alone until @now, be full again? */
static int bucket_full(const struct vt_bucket *b, uint32_t rate, uint64_t now)
{
	return vt_bucket_level(b, rate, now) >= rate;
}

int vt__sender_take(struct vt_engine *e, const char *user)
{
	uint32_t rate = e->cfg.msgs_per_sec;
	struct vt_bucket *b;

	if (rate == 0) {
		return 1;
	}
	b = vt_map_get(&e->senders, user);
	if (b == NULL) {
		if (e->senders.len >= VT_SENDERS_MAX) {
			return VT_EBUSY;
		}
		b = calloc(1, sizeof(*b));
		if (b == NULL) {
			return VT_ENOMEM;
		}
		if (vt_map_put(&e->senders, user, b) != 0) {
			free(b);
			return VT_ENOMEM;
		}
	}
	return vt_bucket_take(b, rate, vt__now(e));
}

/*
 * A connection's bucket outlives it, so that closing and opening again is no
 * way around --rate: the user's next connection starts from where this one
 * left off. One that would be full again keeps nothing; past the table's
 * bound the state is dropped, as a REST sender would be refused.
 */
void vt__sender_keep(struct vt_engine *e, const char *user, const struct vt_bucket *b)
{
	uint32_t rate = e->cfg.msgs_per_sec;
	uint64_t now = vt__now(e);
	struct vt_bucket *kept;

	if (rate == 0 || b->at == 0 || bucket_full(b, rate, now)) {
		return;
	}
	kept = vt_map_get(&e->senders, user);
	if (kept == NULL && e->senders.len < VT_SENDERS_MAX && (kept = malloc(sizeof(*kept)))) {
		if (vt_map_put(&e->senders, user, kept) != 0) {
			free(kept);
			return;
		}
		*kept = *b;
	} else if (kept != NULL &&
		   vt_bucket_level(b, rate, now) < vt_bucket_level(kept, rate, now)) {
		*kept = *b; /* of two, the emptier */
	}
}

void vt__sender_resume(struct vt_engine *e, const char *user, struct vt_bucket *b)
{
	const struct vt_bucket *kept = vt_map_get(&e->senders, user);

	if (kept != NULL) {
		*b = *kept;
	}
}

struct sweep {
	uint32_t rate;
	uint64_t now;
};

static int keep_bucket(void *value, void *arg)
{
	const struct sweep *s = arg;

	if (bucket_full(value, s->rate, s->now)) {
		free(value);
		return 0;
	}
	return 1;
}

void vt__senders_sweep(struct vt_engine *e, uint64_t now)
{
	struct sweep s = {e->cfg.msgs_per_sec, now};

	vt_map_filter(&e->senders, keep_bucket, &s);
}

void vt__senders_free(struct vt_engine *e)
{
	vt_map_free_all(&e->senders);
}
