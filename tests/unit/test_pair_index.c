/*
 * test_pair_index.c - SipHash-2-4 against its published vectors, and the
 * fingerprint index: a multiset under linear probing and backward-shift
 * deletion, an undo log, and a reader on another thread.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "pair_index.h"
#include "siphash.h"
#include "util.h"

/* The reference implementation's: key 00 01 .. 0f, message 00 01 .. (n - 1). */
START_TEST(siphash_matches_reference_vectors)
{
	static const struct {
		size_t n;
		uint64_t want;
	} v[] = {
	        {0, 0x726fdb47dd0e0e31ull},  {1, 0x74f839c593dc67fdull},
	        {7, 0xab0200f58b01d137ull},  {8, 0x93f5f5799a932462ull},
	        {9, 0x9e0082df0ba9e4b0ull},  {15, 0xa129ca6149be45e5ull},
	        {16, 0x3f2acc7f57c29bdbull},
	};
	const uint64_t k[2] = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull}; /* little-endian */
	uint8_t msg[16];

	for (int i = 0; i < 16; i++) {
		msg[i] = (uint8_t)i;
	}
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ck_assert_msg(vt__siphash(k, msg, v[i].n) == v[i].want, "n=%zu", v[i].n);
	}
}
END_TEST

/* A fingerprint is the keyed hash (never 0), and each index draws its own key. */
START_TEST(fingerprints_are_keyed_per_index)
{
	struct vt__pair_index a, b;

	ck_assert_int_eq(vt__pairs_init(&a), 0);
	ck_assert_int_eq(vt__pairs_init(&b), 0);
	ck_assert(memcmp(a.key, b.key, sizeof(a.key)) != 0);
	ck_assert_uint_eq(vt__pairs_fp(&a, "alice", 5), vt__siphash(a.key, "alice", 5));
	ck_assert_uint_ne(vt__pairs_fp(&a, "alice", 5), vt__pairs_fp(&b, "alice", 5));
	ck_assert_uint_ne(vt__pairs_fp(&a, "", 0), 0);
	vt__pairs_free(&a);
	vt__pairs_free(&b);
}
END_TEST

START_TEST(add_find_del)
{
	struct vt__pair_index x;
	int64_t ts[4] = {-7, -7, -7, -7};

	ck_assert_int_eq(vt__pairs_init(&x), 0);
	ck_assert_uint_eq(vt__pairs_find(&x, 7, NULL, 0), 0); /* no table yet */
	ck_assert_int_eq(vt__pairs_del(&x, 7, 100), 0);
	ck_assert_int_eq(vt__pairs_add(&x, 7, 100), 0);
	ck_assert_uint_eq(vt__pairs_find(&x, 7, ts, 4), 1);
	ck_assert_int_eq(ts[0], 100);
	ck_assert_uint_eq(vt__pairs_find(&x, 8, ts, 4), 0);
	ck_assert_int_eq(vt__pairs_del(&x, 7, 101), 0); /* same fingerprint, other time */
	ck_assert_int_eq(vt__pairs_del(&x, 7, 100), 1);
	ck_assert_uint_eq(vt__pairs_find(&x, 7, ts, 4), 0);
	ck_assert_int_eq(vt__pairs_del(&x, 7, 100), 0);
	ck_assert_uint_eq(vt__pairs_count(&x), 0);

	/* more entries than room: all are counted, @max copied, nothing past it */
	for (int64_t t = 1; t <= 5; t++) {
		ck_assert_int_eq(vt__pairs_add(&x, 9, t), 0);
	}
	ts[0] = ts[1] = ts[2] = ts[3] = -7;
	ck_assert_uint_eq(vt__pairs_find(&x, 9, ts, 2), 5);
	ck_assert(ts[0] >= 1 && ts[0] <= 5 && ts[1] >= 1 && ts[1] <= 5 && ts[0] != ts[1]);
	ck_assert(ts[2] == -7 && ts[3] == -7);
	ck_assert_uint_eq(vt__pairs_find(&x, 9, NULL, 0), 5);
	ck_assert_uint_eq(vt__pairs_count(&x), 5);
	vt__pairs_free(&x);
}
END_TEST

/* How many entries (@fp, @t) the index holds, as find tells. */
static unsigned held(struct vt__pair_index *x, uint64_t fp, int64_t t)
{
	int64_t ts[64];
	size_t n = vt__pairs_find(x, fp, ts, 64);
	unsigned k = 0;

	for (size_t i = 0; i < n && i < 64; i++) {
		k += ts[i] == t;
	}
	return k;
}

/*
 * Runs that share a home, one wrapping from the last slot to the first
 * (low bits all ones: home cap - 1 in any table) into one homed at slot 0:
 * deleting from their middles must leave every other entry reachable.
 */
START_TEST(colliding_runs_survive_deletes)
{
	struct vt__pair_index x;
	const uint64_t last = 0xffffffffull;

	ck_assert_int_eq(vt__pairs_init(&x), 0);
	for (uint64_t k = 1; k <= 60; k++) {
		ck_assert_int_eq(vt__pairs_add(&x, k << 40 | last, (int64_t)k), 0);
		ck_assert_int_eq(vt__pairs_add(&x, k << 40, -(int64_t)k), 0);
	}
	for (uint64_t k = 1; k <= 60; k += 2) {
		ck_assert_int_eq(vt__pairs_del(&x, k << 40 | last, (int64_t)k), 1);
	}
	for (uint64_t k = 2; k <= 60; k += 3) {
		ck_assert_int_eq(vt__pairs_del(&x, k << 40, -(int64_t)k), 1);
	}
	for (uint64_t k = 1; k <= 60; k++) {
		ck_assert_uint_eq(held(&x, k << 40 | last, (int64_t)k), k % 2 == 0);
		ck_assert_uint_eq(held(&x, k << 40, -(int64_t)k), k % 3 != 2);
	}
	ck_assert_uint_eq(vt__pairs_count(&x), 120 - 30 - 20);
	vt__pairs_free(&x);
}
END_TEST

/* The same fingerprint at several times, and the same entry twice. */
START_TEST(equal_entries_are_a_multiset)
{
	struct vt__pair_index x;

	ck_assert_int_eq(vt__pairs_init(&x), 0);
	ck_assert_int_eq(vt__pairs_add(&x, 42, 5), 0);
	ck_assert_int_eq(vt__pairs_add(&x, 42, 6), 0);
	ck_assert_int_eq(vt__pairs_add(&x, 42, 5), 0);
	ck_assert_uint_eq(vt__pairs_find(&x, 42, NULL, 0), 3);
	ck_assert_int_eq(vt__pairs_del(&x, 42, 5), 1);
	ck_assert_uint_eq(held(&x, 42, 5), 1);
	ck_assert_uint_eq(held(&x, 42, 6), 1);
	ck_assert_int_eq(vt__pairs_del(&x, 42, 5), 1);
	ck_assert_int_eq(vt__pairs_del(&x, 42, 5), 0);
	ck_assert_uint_eq(vt__pairs_find(&x, 42, NULL, 0), 1);
	ck_assert_uint_eq(held(&x, 42, 6), 1);
	vt__pairs_free(&x);
}
END_TEST

/* Room made ahead: that many adds move nothing, and a table never shrinks. */
START_TEST(reserve_makes_room_ahead)
{
	struct vt__pair_index x;
	struct vt__pair *slots;
	size_t bad = 0;

	ck_assert_int_eq(vt__pairs_init(&x), 0);
	ck_assert_int_eq(vt__pairs_add(&x, 5, 5), 0);
	ck_assert_int_eq(vt__pairs_reserve(&x, 3072), 0); /* three quarters of 4096 */
	slots = x.slots;
	for (uint64_t i = 1; i < 3072; i++) {
		bad += vt__pairs_add(&x, i << 4, 0) != 0;
	}
	ck_assert_uint_eq(bad, 0);
	ck_assert_int_eq(vt__pairs_reserve(&x, 10), 0);
	ck_assert_ptr_eq(x.slots, slots);
	ck_assert_int_eq(vt__pairs_reserve(&x, SIZE_MAX), VT_ENOMEM);
	ck_assert_uint_eq(held(&x, 5, 5), 1);
	ck_assert_uint_eq(vt__pairs_count(&x), 3072);
	vt__pairs_free(&x);
}
END_TEST

/*
 * A table grown for a burst shrinks once a commit leaves it under an eighth
 * full, to one at most three eighths full, with every entry still found;
 * not while a transaction may roll back.
 */
START_TEST(commit_shrinks_what_a_burst_grew)
{
	struct vt__pair_index x;
	size_t big, bad = 0;

	ck_assert_int_eq(vt__pairs_init(&x), 0);
	vt__pairs_begin(&x);
	for (uint64_t i = 1; i <= 100000; i++) {
		bad += vt__pairs_add(&x, i << 4, (int64_t)i) != 0;
	}
	vt__pairs_commit(&x);
	big = x.cap;
	vt__pairs_begin(&x);
	for (uint64_t i = 1001; i <= 100000; i++) {
		bad += vt__pairs_del(&x, i << 4, (int64_t)i) != 1;
	}
	ck_assert_uint_eq(x.cap, big); /* a rollback may need it all */
	vt__pairs_commit(&x);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_lt(x.cap, big);
	ck_assert_uint_le(vt__pairs_count(&x) * 8, x.cap * 3);
	for (uint64_t i = 1; i <= 1000; i++) {
		bad += held(&x, i << 4, (int64_t)i) != 1;
	}
	ck_assert_uint_eq(bad, 0);
	vt__pairs_free(&x);
}
END_TEST

/*
 * Loading in batches: tables grown inside a batch, entries that collide
 * within one batch and with those already there, all found afterwards.
 */
START_TEST(load_in_batches)
{
	struct vt__pair_index x;
	struct vt__pair batch[64];
	size_t missing = 0;

	ck_assert_int_eq(vt__pairs_init(&x), 0);
	ck_assert_int_eq(vt__pairs_add(&x, 7 << 4, 1), 0);
	for (uint64_t i = 0; i < 5000; i += 50) {
		for (uint64_t j = 0; j < 50; j++) {
			batch[j] = (struct vt__pair){((i + j) % 700 + 1) << 4, (int64_t)(i + j)};
		}
		ck_assert_int_eq(vt__pairs_load(&x, batch, 50), 0);
	}
	ck_assert_int_eq(vt__pairs_load(&x, batch, 0), 0);
	ck_assert_uint_eq(vt__pairs_count(&x), 5001);
	for (uint64_t i = 0; i < 5000; i++) {
		missing += held(&x, (i % 700 + 1) << 4, (int64_t)i) != 1;
	}
	ck_assert_uint_eq(missing, 0);
	ck_assert_uint_eq(held(&x, 7 << 4, 1), 1);
	ck_assert_uint_le(vt__pairs_count(&x), x.cap / 4 * 3);
	vt__pairs_free(&x);
}
END_TEST

/*
 * ---- a reference model: how many of each (fingerprint, time) -------------
 * Its loops fail through ck_abort_msg alone: a ck_assert that passes still
 * writes its line to the runner, which made 200,000 changes take seconds.
 */

#define NFP 16384
#define NTS 4

static const int64_t tsv[NTS] = {INT64_MIN, -1, 0, INT64_MAX};
static unsigned cnt[NFP][NTS];
static size_t total;
static uint64_t seed = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

/*
 * Homes on every 16th slot only, and fingerprints congruent modulo a table
 * share one: runs are long and cross each other's homes.
 */
static uint64_t fp_of(size_t f)
{
	return (uint64_t)(f + 1) << 4;
}

/*
 * The same, but one fingerprint in 64 has its low bits all ones (home: the
 * last slot of any table), so a run wraps from the last slot to the first.
 */
static uint64_t fp_wrap(size_t f)
{
	return f % 64 ? fp_of(f) : ((uint64_t)(f + 1) << 32) | 0xfffffu;
}

/* The fingerprints churn() and check_model() use: fp_of unless a test says. */
static uint64_t (*model_fp)(size_t) = fp_of;

/* @n random adds (@pct_add percent) and dels, on the index and the model alike. */
static void churn(struct vt__pair_index *x, int n, unsigned pct_add)
{
	for (int i = 0; i < n; i++) {
		size_t f = rnd() % NFP, t = rnd() % NTS;
		int rc, want = 0;

		if (rnd() % 100 < pct_add) {
			rc = vt__pairs_add(x, model_fp(f), tsv[t]);
			cnt[f][t]++;
			total++;
		} else {
			rc = vt__pairs_del(x, model_fp(f), tsv[t]);
			want = cnt[f][t] > 0;
			cnt[f][t] -= want;
			total -= want;
		}
		if (rc != want) {
			ck_abort_msg("change %d of fp %zu ts %zu: %d, not %d", i, f, t, rc, want);
		}
	}
}

/* The index holds exactly the model's multiset. */
static void check_model(struct vt__pair_index *x)
{
	for (size_t f = 0; f < NFP; f++) {
		unsigned all = 0;

		for (size_t t = 0; t < NTS; t++) {
			unsigned k = held(x, model_fp(f), tsv[t]);

			if (k != cnt[f][t]) {
				ck_abort_msg("fp %zu ts %zu: %u, not %u", f, t, k, cnt[f][t]);
			}
			all += k;
		}
		if (vt__pairs_find(x, model_fp(f), NULL, 0) != all) {
			ck_abort_msg("fp %zu: more entries than the model's %u", f, all);
		}
	}
	ck_assert_uint_eq(vt__pairs_count(x), total);
}

/* 200,000 changes through growing and shrinking, checked after each phase. */
START_TEST(churn_matches_model)
{
	static const unsigned pct[] = {90, 90, 30, 90, 95, 20, 90, 50};
	struct vt__pair_index x;

	ck_assert_int_eq(vt__pairs_init(&x), 0);
	for (size_t p = 0; p < sizeof(pct) / sizeof(pct[0]); p++) {
		churn(&x, 25000, pct[p]);
		check_model(&x);
	}
	ck_assert_uint_ge(x.cap, 65536); /* doubled from the first table six times or more */
	vt__pairs_free(&x);
}
END_TEST

/* A rollback gives back the multiset of begin, whatever happened in between. */
START_TEST(rollback_restores_and_commit_keeps)
{
	static unsigned saved[NFP][NTS];
	struct vt__pair_index x;
	size_t saved_total, cap, gone = 0;

	ck_assert_int_eq(vt__pairs_init(&x), 0);
	churn(&x, 600, 100);
	memcpy(saved, cnt, sizeof(cnt));
	saved_total = total;
	cap = x.cap;

	vt__pairs_begin(&x);
	for (size_t f = 0; f < NFP && gone < 200; f++) { /* entries from before begin */
		for (size_t t = 0; t < NTS; t++) {
			for (; cnt[f][t] > 0; cnt[f][t]--, total--, gone++) {
				ck_assert_int_eq(vt__pairs_del(&x, fp_of(f), tsv[t]), 1);
			}
		}
	}
	churn(&x, 8000, 85);
	ck_assert_uint_gt(x.cap, cap); /* it grew inside the transaction */
	vt__pairs_rollback(&x);
	memcpy(cnt, saved, sizeof(cnt));
	total = saved_total;
	check_model(&x);

	vt__pairs_begin(&x);
	churn(&x, 8000, 60);
	vt__pairs_commit(&x);
	churn(&x, 1000, 50); /* after a commit: kept, and no longer logged */
	ck_assert_uint_eq(x.nundo, 0);
	check_model(&x);

	vt__pairs_begin(&x); /* nothing done: nothing to take back */
	vt__pairs_rollback(&x);
	churn(&x, 1000, 50); /* after a rollback, no longer logged either */
	ck_assert_uint_eq(x.nundo, 0);
	check_model(&x);
	vt__pairs_free(&x);
}
END_TEST

/* ---- a reader on another thread ------------------------------------------ */

#define NSTABLE 500

struct reader {
	struct vt__pair_index *x;
	int committed; /* looks with vt__pairs_find_committed */
	atomic_int stop;
	atomic_long passes;
	long misses;
};

/* The reader's entries share homes with the writer's, so shifts and growth move both. */
#define stable_fp(i) ((uint64_t)((i) + 1) << 40 | (uint64_t)(i) << 4)
#define moving_fp(i) ((uint64_t)((i) + 1) << 20 | (uint64_t)((i) % 4096) << 4)

static void *read_stable(void *arg)
{
	struct reader *r = arg;
	int64_t ts[4];

	do {
		for (size_t i = 0; i < NSTABLE; i++) {
			uint64_t fp = stable_fp(i);
			size_t n = r->committed ? vt__pairs_find_committed(r->x, fp, ts, 4)
			                        : vt__pairs_find(r->x, fp, ts, 4);

			r->misses += n != 1 || ts[0] != (int64_t)i;
		}
		atomic_fetch_add(&r->passes, 1);
	} while (!atomic_load(&r->stop));
	return NULL;
}

/* Adds (or deletes) the moving entries @from, @from + @step, ... below 20,000: fails. */
static size_t move(struct vt__pair_index *x, size_t from, size_t step, int del)
{
	size_t bad = 0;

	for (size_t i = from; i < 20000; i += step) {
		uint64_t fp = moving_fp(i);
		int rc = del ? vt__pairs_del(x, fp, -1) : vt__pairs_add(x, fp, -1);

		bad += rc != del; /* a del answers 1, an add 0 */
	}
	return bad;
}

/* The stable entries in @r->x, then the reader on its thread, once it has made a pass. */
static void reader_start(struct reader *r, pthread_t *th)
{
	ck_assert_int_eq(vt__pairs_init(r->x), 0);
	for (size_t i = 0; i < NSTABLE; i++) {
		ck_assert_int_eq(vt__pairs_add(r->x, stable_fp(i), (int64_t)i), 0);
	}
	ck_assert_int_eq(pthread_create(th, NULL, read_stable, r), 0);
	while (atomic_load(&r->passes) == 0) { /* so that the table changes under it */
		sched_yield();
	}
}

/* Stop the reader: it missed nothing, the writer's changes did not fail (@bad). */
static void reader_stop(struct reader *r, pthread_t th, size_t bad)
{
	atomic_store(&r->stop, 1);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_uint_eq(bad, 0);
	ck_assert_int_eq(r->misses, 0);
	ck_assert_int_gt(atomic_load(&r->passes), 1);
	ck_assert_uint_eq(vt__pairs_count(r->x), NSTABLE);
	vt__pairs_free(r->x);
}

/* Entries added before the reader starts and never deleted are always found. */
START_TEST(reader_sees_stable_entries_during_changes)
{
	struct vt__pair_index x;
	struct reader r = {.x = &x};
	pthread_t th;
	size_t bad = 0;

	reader_start(&r, &th);
	for (int round = 0; round < 6; round++) { /* growth, shifts, undo, commit */
		vt__pairs_begin(&x);
		bad += move(&x, 0, 1, 0) + move(&x, 0, 2, 1);
		if (round % 2 == 0) {
			vt__pairs_rollback(&x);
		} else {
			vt__pairs_commit(&x);
			bad += move(&x, 1, 2, 1);
		}
	}
	reader_stop(&r, th, bad);
}
END_TEST

/*
 * A reader of the last commit finds its entries while a transaction
 * deletes them, grows the table and its log, and is taken back.
 */
START_TEST(reader_of_the_commit_sees_entries_a_transaction_deletes)
{
	struct vt__pair_index x;
	struct reader r = {.x = &x, .committed = 1};
	pthread_t th;
	size_t bad = 0;

	reader_start(&r, &th);
	for (int round = 0; round < 4; round++) {
		vt__pairs_begin(&x);
		for (size_t i = 0; i < NSTABLE; i++) {
			bad += vt__pairs_del(&x, stable_fp(i), (int64_t)i) != 1;
		}
		bad += move(&x, 0, 8, 0);
		vt__pairs_rollback(&x);
	}
	reader_stop(&r, th, bad);
}
END_TEST

struct finder {
	struct vt__pair_index *x;
	atomic_int stop;
	atomic_long finds;
};

static void *find_one(void *arg)
{
	struct finder *f = arg;
	int64_t ts;

	while (!atomic_load(&f->stop)) {
		vt__pairs_find(f->x, stable_fp(0), &ts, 1);
		atomic_fetch_add(&f->finds, 1);
		sched_yield(); /* leaves the writer the lock between finds */
	}
	return NULL;
}

/*
 * A reader does not wait while the table is resized at once (reserving
 * room ahead, loading, shrinking): the copy of millions of entries takes a
 * good part of a second, which the engine's thread must not stall for.
 * Counted, not timed: finds go on during the copy, even on a busy machine.
 */
START_TEST(reader_does_not_wait_for_a_resize)
{
	struct vt__pair_index x;
	struct finder f = {.x = &x};
	long during = 0;
	pthread_t th;

	ck_assert_int_eq(vt__pairs_init(&x), 0);
	ck_assert_int_eq(vt__pairs_add(&x, stable_fp(0), 0), 0);
	for (uint64_t i = 1; i < 100000; i++) {
		ck_assert_int_eq(vt__pairs_add(&x, vt__pairs_fp(&x, &i, sizeof(i)), 0), 0);
	}
	ck_assert_int_eq(pthread_create(&th, NULL, find_one, &f), 0);
	for (size_t n = 400000; n <= 1600000; n *= 2) {
		long before = atomic_load(&f.finds);

		ck_assert_int_eq(vt__pairs_reserve(&x, n), 0);
		if (atomic_load(&f.finds) - before > during) {
			during = atomic_load(&f.finds) - before; /* the most of three resizes */
		}
	}
	atomic_store(&f.stop, 1);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_uint_eq(x.cap, (size_t)1 << 22);
	ck_assert_int_gt(during, 4); /* waiting, it would see two at most */
	vt__pairs_free(&x);
}
END_TEST

/* Every entry added so far (fingerprints of 1 to @n, time = i) is found once. */
static size_t missing_of(struct vt__pair_index *x, uint64_t n)
{
	size_t missing = 0;

	for (uint64_t i = 1; i <= n; i++) {
		missing += held(x, vt__pairs_fp(x, &i, sizeof(i)), (int64_t)i) != 1;
	}
	return missing;
}

/*
 * Growing moves a few slots of the old table an add: no add copies the
 * table, the old one is gone within a quarter of its size in adds, and
 * every entry is found all along, half way through a move too.
 */
START_TEST(growth_moves_a_few_slots_an_add)
{
	struct vt__pair_index x;
	size_t growths = 0, adds = 0, moving_cap = 0, missing = 0, midway = 0;

	ck_assert_int_eq(vt__pairs_init(&x), 0);
	for (uint64_t i = 1; i <= 200000; i++) {
		size_t cap = x.cap;

		ck_assert_int_eq(vt__pairs_add(&x, vt__pairs_fp(&x, &i, sizeof(i)), (int64_t)i), 0);
		if (x.cap != cap && cap > 0) {
			ck_assert_ptr_nonnull(x.old); /* it moves later, not now */
			ck_assert_uint_eq(x.old_cap, cap);
			ck_assert_uint_gt(x.old_left, cap / 2);
			growths++;
			moving_cap = cap;
			adds = 0;
		} else if (moving_cap > 0 && x.old != NULL && ++adds == moving_cap / 256) {
			missing += missing_of(&x, i);
			midway++;
		} else if (moving_cap > 0 && x.old == NULL) {
			ck_assert_uint_gt(adds, moving_cap / 256); /* spread over many adds */
			ck_assert_uint_le(adds, moving_cap / 4 + 1);
			moving_cap = 0;
		}
	}
	ck_assert_uint_eq(missing, 0);
	ck_assert_uint_eq(midway, growths);
	ck_assert_uint_ge(growths, 8); /* from 1,024 slots to 262,144 */
	ck_assert_uint_eq(missing_of(&x, 200000), 0);
	ck_assert_uint_eq(vt__pairs_count(&x), 200000);
	vt__pairs_free(&x);
}
END_TEST

/*
 * Growth under transactions: random changes in transactions that commit or
 * roll back, the model checked whenever a table is part way through its
 * move, with loads and reserves landing in a move too. Runs wrap
 * from the last slot to the first (fp_wrap), across where a move starts.
 */
START_TEST(growth_under_transactions_matches_model)
{
	static unsigned saved[NFP][NTS];
	struct vt__pair_index x;
	size_t saved_total, midway = 0, rollbacks = 0, moving_back = 0;

	memset(cnt, 0, sizeof(cnt));
	total = 0;
	model_fp = fp_wrap;
	ck_assert_int_eq(vt__pairs_init(&x), 0);
	for (int round = 0; round < 400; round++) {
		int back = rnd() % 3 == 0;
		unsigned pct = round < 300 ? 75 : 25;

		memcpy(saved, cnt, sizeof(cnt));
		saved_total = total;
		vt__pairs_begin(&x);
		for (int step = 0, seen = 0; step < 8; step++) {
			churn(&x, 1 + (int)(rnd() % 200), pct);
			if (x.old != NULL && !seen++) {
				check_model(&x);
				midway++;
			}
		}
		if (back) {
			moving_back += x.old != NULL;
			vt__pairs_rollback(&x);
			memcpy(cnt, saved, sizeof(cnt));
			total = saved_total;
			rollbacks++;
		} else {
			vt__pairs_commit(&x);
		}
		check_model(&x);
		if (x.old != NULL && round % 5 == 0) {
			struct vt__pair b[8];

			for (int i = 0; i < 8; i++) {
				size_t f = rnd() % NFP, t = rnd() % NTS;

				b[i] = (struct vt__pair){fp_wrap(f), tsv[t]};
				cnt[f][t]++;
				total++;
			}
			ck_assert_int_eq(vt__pairs_load(&x, b, 8), 0);
			ck_assert_ptr_null(x.old);
			check_model(&x);
		} else if (x.old != NULL && round % 5 == 1) {
			ck_assert_int_eq(vt__pairs_reserve(&x, total + 1), 0);
			ck_assert_ptr_null(x.old);
			check_model(&x);
		}
	}
	ck_assert_uint_gt(midway, 5);
	ck_assert_uint_gt(moving_back, 0);
	ck_assert_uint_gt(rollbacks, 50);
	vt__pairs_free(&x);
	model_fp = fp_of;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pair_index");
	TCase *t = tcase_create("pair_index");

	tcase_set_timeout(t, 60);
	tcase_add_test(t, siphash_matches_reference_vectors);
	tcase_add_test(t, fingerprints_are_keyed_per_index);
	tcase_add_test(t, add_find_del);
	tcase_add_test(t, colliding_runs_survive_deletes);
	tcase_add_test(t, equal_entries_are_a_multiset);
	tcase_add_test(t, reserve_makes_room_ahead);
	tcase_add_test(t, commit_shrinks_what_a_burst_grew);
	tcase_add_test(t, load_in_batches);
	tcase_add_test(t, churn_matches_model);
	tcase_add_test(t, rollback_restores_and_commit_keeps);
	tcase_add_test(t, reader_sees_stable_entries_during_changes);
	tcase_add_test(t, reader_of_the_commit_sees_entries_a_transaction_deletes);
	tcase_add_test(t, reader_does_not_wait_for_a_resize);
	tcase_add_test(t, growth_moves_a_few_slots_an_add);
	tcase_add_test(t, growth_under_transactions_matches_model);
	suite_add_tcase(s, t);
	return run_suite(s);
}
