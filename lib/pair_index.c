/*
 * pair_index.c - fingerprints of (sender, client id) pairs, by open
 * addressing with linear probing and deletion by backward shift, so that a
 * table the oldest pairs keep leaving never fills with tombstones.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include <vartalap/error.h>

#include "pair_index.h"
#include "siphash.h"

#define FIRST_CAP 1024

/*
 * Slots of the old table each add moves while the table grows. The new
 * table, twice the old one's size, takes at least three quarters of the
 * old one's size in adds before it is full in turn; at 32 slots an add the
 * old table is gone after a thirty-second. Fewer would make each add a
 * little cheaper but leave lookups probing two tables for longer.
 */
#define MOVE_PER_ADD 32

int vt__pairs_init(struct vt__pair_index *x)
{
	memset(x, 0, sizeof(*x));
	if (RAND_bytes((unsigned char *)x->key, sizeof(x->key)) != 1) {
		return VT_EIO;
	}
	pthread_mutex_init(&x->lock, NULL);
	return 0;
}

void vt__pairs_free(struct vt__pair_index *x)
{
	pthread_mutex_destroy(&x->lock);
	free(x->slots);
	free(x->old);
	free(x->undo);
	memset(x, 0, sizeof(*x));
}

uint64_t vt__pairs_fp(const struct vt__pair_index *x, const void *p, size_t len)
{
	uint64_t fp = vt__siphash(x->key, p, len);

	return fp ? fp : 1;
}

size_t vt__pairs_count(struct vt__pair_index *x)
{
	size_t n;

	pthread_mutex_lock(&x->lock);
	n = x->len;
	pthread_mutex_unlock(&x->lock);
	return n;
}

/* Put @p in the first free slot from its home; the table has one. */
static void place(struct vt__pair *slots, size_t cap, struct vt__pair p)
{
	size_t i = p.fp & (cap - 1);

	while (slots[i].fp != 0) {
		i = (i + 1) & (cap - 1);
	}
	slots[i] = p;
}

/*
 * Move old slots to the new table under the lock: @budget of them, then on
 * to the end of the run, so that a run never lies on both sides of
 * old_next. Every entry of a run has its home in that run, so an entry
 * still in the old table is found there from its home, and a delete there
 * shifts entries only inside their run. The old table, once empty, is
 * returned for the caller to free outside the lock.
 */
static struct vt__pair *move_some(struct vt__pair_index *x, size_t budget)
{
	size_t mask = x->old_cap - 1;
	struct vt__pair *done;

	while (x->old_left > 0 && (budget > 0 || x->old[x->old_next].fp != 0)) {
		struct vt__pair *s = &x->old[x->old_next];

		if (s->fp != 0) {
			place(x->slots, x->cap, *s);
			s->fp = 0;
		}
		x->old_next = (x->old_next + 1) & mask;
		x->old_left--;
		budget -= budget > 0;
	}
	if (x->old_left > 0) {
		return NULL;
	}
	done = x->old;
	x->old = NULL;
	return done;
}

/* Move what is left of the old table, if there is one. */
static void move_all(struct vt__pair_index *x)
{
	struct vt__pair *done = NULL;

	pthread_mutex_lock(&x->lock);
	if (x->old != NULL) {
		done = move_some(x, x->old_left);
	}
	pthread_mutex_unlock(&x->lock);
	free(done);
}

/* A zeroed table of @cap slots; NULL when out of memory. */
static struct vt__pair *table_new(size_t cap)
{
	if (cap > SIZE_MAX / sizeof(struct vt__pair)) {
		return NULL;
	}
	return calloc(cap, sizeof(struct vt__pair));
}

/*
 * Move the entries to a table of @cap slots at once; called without the
 * lock. Only the changing thread calls it and readers do not change the
 * table, so the copy needs no lock, and a reader waits for the swap alone.
 * For loading, reserving and shrinking, where no add waits on it.
 */
static int resize(struct vt__pair_index *x, size_t cap)
{
	struct vt__pair *slots, *old;

	move_all(x);
	slots = table_new(cap);
	if (!slots) {
		return VT_ENOMEM;
	}
	for (size_t i = 0; i < x->cap; i++) {
		if (x->slots[i].fp != 0) {
			place(slots, cap, x->slots[i]);
		}
	}
	pthread_mutex_lock(&x->lock);
	old = x->slots;
	x->slots = slots;
	x->cap = cap;
	pthread_mutex_unlock(&x->lock);
	free(old);
	return 0;
}

/*
 * Start growing into a table of @cap slots: the full table becomes the old
 * one, to be moved from one of its empty slots on (at most three quarters
 * of its slots are used). An old table still there is moved first.
 */
static int grow(struct vt__pair_index *x, size_t cap)
{
	struct vt__pair *slots;

	move_all(x);
	if (x->cap == 0) {
		return resize(x, cap);
	}
	slots = table_new(cap);
	if (!slots) {
		return VT_ENOMEM;
	}
	pthread_mutex_lock(&x->lock);
	x->old = x->slots;
	x->old_cap = x->cap;
	x->old_next = 0;
	while (x->old[x->old_next].fp != 0) {
		x->old_next++;
	}
	x->old_left = x->old_cap;
	x->slots = slots;
	x->cap = cap;
	pthread_mutex_unlock(&x->lock);
	return 0;
}

/* The smallest table that holds @n entries at most three quarters full. */
static size_t cap_for(size_t n)
{
	size_t cap = FIRST_CAP;

	while (cap < SIZE_MAX / 4 && cap / 4 * 3 < n) {
		cap *= 2;
	}
	return cap;
}

int vt__pairs_reserve(struct vt__pair_index *x, size_t n)
{
	size_t cap = cap_for(n);

	return cap > x->cap ? resize(x, cap) : 0;
}

/* Room for one more entry in the undo log, when logging. Under the lock: readers scan it. */
static int undo_room(struct vt__pair_index *x)
{
	size_t cap = x->undo_cap ? 2 * x->undo_cap : 256;
	struct vt__pair_undo *u;

	if (!x->logging || x->nundo < x->undo_cap) {
		return 0;
	}
	u = realloc(x->undo, cap * sizeof(*u));
	if (!u) {
		return VT_ENOMEM;
	}
	x->undo = u;
	x->undo_cap = cap;
	return 0;
}

static void log_change(struct vt__pair_index *x, struct vt__pair p, int added)
{
	if (x->logging) {
		x->undo[x->nundo++] = (struct vt__pair_undo){p, added};
	}
}

/* The slot of @slots holding an entry equal to @p, or @cap when none does. */
static size_t slot_in(const struct vt__pair *slots, size_t cap, struct vt__pair p)
{
	size_t mask = cap - 1;

	if (cap == 0) {
		return 0;
	}
	for (size_t i = p.fp & mask; slots[i].fp != 0; i = (i + 1) & mask) {
		if (slots[i].fp == p.fp && slots[i].ts == p.ts) {
			return i;
		}
	}
	return cap;
}

/*
 * Empty slot @i and close the gap: each entry after it in the run moves
 * back into the hole unless its home lies after the hole, so every entry
 * stays reachable from its home without tombstones.
 */
static void remove_at(struct vt__pair *slots, size_t cap, size_t i)
{
	size_t mask = cap - 1;

	for (size_t j = (i + 1) & mask; slots[j].fp != 0; j = (j + 1) & mask) {
		size_t home = slots[j].fp & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			slots[i] = slots[j];
			i = j;
		}
	}
	slots[i].fp = 0;
}

/* Remove one entry equal to @p from either table, under the lock: 1, or 0 when none. */
static int remove_one(struct vt__pair_index *x, struct vt__pair p)
{
	size_t i = slot_in(x->slots, x->cap, p);

	if (i < x->cap) {
		remove_at(x->slots, x->cap, i);
	} else if (x->old != NULL && (i = slot_in(x->old, x->old_cap, p)) < x->old_cap) {
		remove_at(x->old, x->old_cap, i);
	} else {
		return 0;
	}
	x->len--;
	return 1;
}

/* Count the entries of @slots with fingerprint @fp, copying times to @ts from the @n-th on. */
static size_t find_in(const struct vt__pair *slots, size_t cap, uint64_t fp, int64_t *ts,
		      size_t max, size_t n)
{
	size_t mask = cap - 1;

	if (cap == 0) {
		return n;
	}
	for (size_t i = fp & mask; slots[i].fp != 0; i = (i + 1) & mask) {
		if (slots[i].fp == fp && n++ < max) {
			ts[n - 1] = slots[i].ts;
		}
	}
	return n;
}

/* vt__pairs_find under the lock. */
static size_t find_slots(const struct vt__pair_index *x, uint64_t fp, int64_t *ts, size_t max)
{
	size_t n = find_in(x->slots, x->cap, fp, ts, max, 0);

	return x->old != NULL ? find_in(x->old, x->old_cap, fp, ts, max, n) : n;
}

size_t vt__pairs_find(struct vt__pair_index *x, uint64_t fp, int64_t *ts, size_t max)
{
	size_t n;

	pthread_mutex_lock(&x->lock);
	n = find_slots(x, fp, ts, max);
	pthread_mutex_unlock(&x->lock);
	return n;
}

void vt__pairs_prefetch(const struct vt__pair_index *x, uint64_t fp)
{
	if (x->cap > 0) {
		__builtin_prefetch(&x->slots[fp & (x->cap - 1)]);
	}
	if (x->old != NULL) {
		__builtin_prefetch(&x->old[fp & (x->old_cap - 1)]);
	}
}

size_t vt__pairs_find_committed(struct vt__pair_index *x, uint64_t fp, int64_t *ts, size_t max)
{
	size_t n;

	pthread_mutex_lock(&x->lock);
	n = find_slots(x, fp, ts, max);
	for (size_t i = 0; i < x->nundo; i++) {
		if (!x->undo[i].added && x->undo[i].p.fp == fp && n++ < max) {
			ts[n - 1] = x->undo[i].p.ts;
		}
	}
	pthread_mutex_unlock(&x->lock);
	return n;
}

int vt__pairs_add(struct vt__pair_index *x, uint64_t fp, int64_t ts)
{
	struct vt__pair p = {fp, ts};
	struct vt__pair *done = NULL;
	int rc = 0;

	if (x->len + 1 > x->cap / 4 * 3) {
		rc = grow(x, cap_for(x->len + 1));
	}
	pthread_mutex_lock(&x->lock);
	if (rc == 0) {
		rc = undo_room(x);
	}
	if (rc == 0) {
		place(x->slots, x->cap, p);
		x->len++;
		log_change(x, p, 1);
		if (x->old != NULL) {
			done = move_some(x, MOVE_PER_ADD);
		}
	}
	pthread_mutex_unlock(&x->lock);
	free(done);
	return rc;
}

int vt__pairs_load(struct vt__pair_index *x, const struct vt__pair *p, size_t n)
{
	int rc = 0;

	move_all(x);
	if (n > x->cap / 4 * 3 - x->len) {
		rc = resize(x, cap_for(x->len + n));
	}
	pthread_mutex_lock(&x->lock);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		__builtin_prefetch(&x->slots[p[i].fp & (x->cap - 1)], 1);
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		place(x->slots, x->cap, p[i]);
	}
	x->len += rc == 0 ? n : 0;
	pthread_mutex_unlock(&x->lock);
	return rc;
}

int vt__pairs_del(struct vt__pair_index *x, uint64_t fp, int64_t ts)
{
	struct vt__pair p = {fp, ts};
	int rc;

	pthread_mutex_lock(&x->lock);
	rc = undo_room(x);
	if (rc != 0) {
		pthread_mutex_unlock(&x->lock);
		return rc;
	}
	rc = remove_one(x, p);
	if (rc) {
		log_change(x, p, 0);
	}
	pthread_mutex_unlock(&x->lock);
	return rc;
}

/* Under the lock: a reader of the last commit looks at the log too. */
void vt__pairs_begin(struct vt__pair_index *x)
{
	pthread_mutex_lock(&x->lock);
	x->logging = 1;
	x->nundo = 0;
	pthread_mutex_unlock(&x->lock);
}

/*
 * A table grown for a burst would keep its size for good: once under an
 * eighth full it moves to one at most three eighths full, so the next adds
 * do not grow it back at once. Only between transactions, where no
 * rollback needs the room; out of memory, it stays as large as it was.
 */
static void shrink(struct vt__pair_index *x)
{
	size_t cap = cap_for(2 * x->len);

	if (x->len < x->cap / 8 && cap < x->cap) {
		(void)resize(x, cap);
	}
}

void vt__pairs_commit(struct vt__pair_index *x)
{
	pthread_mutex_lock(&x->lock);
	x->logging = 0;
	x->nundo = 0;
	pthread_mutex_unlock(&x->lock);
	shrink(x);
}

/*
 * Newest first, so the table never holds more than it did at some point
 * since begin, and it never shrinks: every entry added back has a slot in
 * the new table, which holds at most all the entries.
 */
void vt__pairs_rollback(struct vt__pair_index *x)
{
	pthread_mutex_lock(&x->lock);
	while (x->nundo > 0) {
		struct vt__pair_undo *u = &x->undo[--x->nundo];

		if (!u->added) {
			place(x->slots, x->cap, u->p);
			x->len++;
		} else {
			(void)remove_one(x, u->p);
		}
	}
	x->logging = 0;
	pthread_mutex_unlock(&x->lock);
}
