/*
 * inflight.c - the deadlines of pushed, un-acked items (struct vt_timers).
 *
 * An item pushed for the k-th time waits backoff(k) for its ack, the same
 * delay for every item of that attempt, from a clock that never goes back:
 * so the items of one attempt number come due in the order they were
 * pushed, and a list per attempt number, appended to at its tail, is sorted
 * by deadline for free. Adding and removing are O(1) with no allocation, and
 * the earliest deadline is the earliest of the few lists in use.
 */
#include "engine_internal.h"

static size_t list_of(const struct vt_item *it)
{
	uint32_t a = it->attempts > 0 ? it->attempts : 1;

	return a <= VT_TIMER_LISTS ? a - 1 : VT_TIMER_LISTS - 1;
}

static void set_busy(struct vt_timers *t, size_t l, int busy)
{
	uint64_t bit = (uint64_t)1 << (l % 64);

	if (busy) {
		t->busy[l / 64] |= bit;
	} else {
		t->busy[l / 64] &= ~bit;
	}
}

/* Link @it after @prev (NULL: first) on list @l. */
static void link_after(struct vt_timers *t, size_t l, struct vt_item *prev, struct vt_item *it)
{
	it->tprev = prev;
	it->tnext = prev != NULL ? prev->tnext : t->head[l];
	if (it->tnext != NULL) {
		it->tnext->tprev = it;
	} else {
		t->tail[l] = it;
	}
	if (prev != NULL) {
		prev->tnext = it;
	} else {
		t->head[l] = it;
	}
}

void vt_timers_add(struct vt_timers *t, struct vt_item *it)
{
	size_t l = list_of(it);
	struct vt_item *prev = t->tail[l];

	/* Only a clock set back (a test's, say) puts it anywhere but last. */
	while (prev != NULL && prev->deadline > it->deadline) {
		prev = prev->tprev;
	}
	link_after(t, l, prev, it);
	it->timer = (uint32_t)l + 1;
	set_busy(t, l, 1);
}

void vt_timers_remove(struct vt_timers *t, struct vt_item *it)
{
	size_t l;

	if (it->timer == 0) {
		return;
	}
	l = it->timer - 1;
	if (it->tprev != NULL) {
		it->tprev->tnext = it->tnext;
	} else {
		t->head[l] = it->tnext;
	}
	if (it->tnext != NULL) {
		it->tnext->tprev = it->tprev;
	} else {
		t->tail[l] = it->tprev;
	}
	it->tprev = it->tnext = NULL;
	it->timer = 0;
	if (t->head[l] == NULL) {
		set_busy(t, l, 0);
	}
}

struct vt_item *vt_timers_first(const struct vt_timers *t)
{
	struct vt_item *first = NULL;

	for (size_t w = 0; w < sizeof(t->busy) / sizeof(t->busy[0]); w++) {
		for (uint64_t bits = t->busy[w]; bits != 0; bits &= bits - 1) {
			struct vt_item *h = t->head[w * 64 + (size_t)__builtin_ctzll(bits)];

			if (first == NULL || h->deadline < first->deadline) {
				first = h;
			}
		}
	}
	return first;
}

int vt_timers_is_first(const struct vt_timers *t, const struct vt_item *it)
{
	return it->timer != 0 && it->tprev == NULL && vt_timers_first(t) == it;
}
