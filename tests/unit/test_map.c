/*
 * test_map.c - the string-keyed hash map.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "pool.h"
#include "slab.h"
#include "tally.h"
#include "util.h"

START_TEST(deleted_keys_are_gone)
{
	struct vt_map m;
	int a, b;

	vt_map_init(&m);
	ck_assert_int_eq(vt_map_put(&m, "alice", &a), 0);
	ck_assert_int_eq(vt_map_put(&m, "bob", &b), 0);
	ck_assert_ptr_eq(vt_map_del(&m, "bob"), &b);
	ck_assert_ptr_null(vt_map_get(&m, "bob"));
	ck_assert_ptr_null(vt_map_del(&m, "bob"));
	ck_assert_ptr_eq(vt_map_get(&m, "alice"), &a);
	vt_map_free(&m);
}
END_TEST

/* Many inserts and deletes across growth keep every survivor findable. */
START_TEST(survivors_found_after_churn)
{
	static int vals[5000];
	struct vt_map m;
	char key[32];

	vt_map_init(&m);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "user%d", i);
		ck_assert_int_eq(vt_map_put(&m, key, &vals[i]), 0);
	}
	for (int i = 0; i < 5000; i += 3) {
		snprintf(key, sizeof(key), "user%d", i);
		ck_assert_ptr_eq(vt_map_del(&m, key), &vals[i]);
	}
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "user%d", i);
		if (i % 3 == 0) {
			ck_assert_ptr_null(vt_map_get(&m, key));
		} else {
			ck_assert_ptr_eq(vt_map_get(&m, key), &vals[i]);
		}
	}
	ck_assert_uint_eq(m.len, 5000 - 1667);
	vt_map_free(&m);
}
END_TEST

/* A counted set: a key stays while its count is above 0. */
START_TEST(counts_go_up_and_down_to_gone)
{
	struct vt_map m;

	vt_map_init(&m);
	vt_map_decr(&m, "alice"); /* absent, on an empty map: nothing */
	ck_assert_int_eq(vt_map_incr(&m, "alice"), 0);
	ck_assert_int_eq(vt_map_incr(&m, "alice"), 0);
	ck_assert_int_eq(vt_map_incr(&m, "bob"), 0);
	ck_assert_uint_eq((uintptr_t)vt_map_get(&m, "alice"), 2);
	vt_map_decr(&m, "alice");
	ck_assert_uint_eq((uintptr_t)vt_map_get(&m, "alice"), 1);
	vt_map_decr(&m, "alice");
	ck_assert_ptr_null(vt_map_get(&m, "alice"));
	vt_map_decr(&m, "alice");
	ck_assert_ptr_null(vt_map_get(&m, "alice"));
	ck_assert_uint_eq((uintptr_t)vt_map_get(&m, "bob"), 1);
	ck_assert_uint_eq(m.len, 1);
	vt_map_free(&m);
}
END_TEST

/* A tally never forgets a key counted and not taken back. */
START_TEST(tally_counts_every_key_until_taken_back)
{
	struct vt_tally t;
	char key[16];

	ck_assert_int_eq(vt_tally_init(&t), 0);
	ck_assert(!vt_tally_has(&t, vt_tally_hash(VT_TALLY_SEED, "u0")));
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "u%d", i);
		vt_tally_add(&t, vt_tally_hash(VT_TALLY_SEED, key));
	}
	vt_tally_add(&t, vt_tally_hash(VT_TALLY_SEED, "u7"));
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "u%d", i);
		vt_tally_sub(&t, vt_tally_hash(VT_TALLY_SEED, key));
	}
	ck_assert_uint_eq(t.total, 1);
	ck_assert(vt_tally_has(&t, vt_tally_hash(VT_TALLY_SEED, "u7")));
	vt_tally_sub(&t, vt_tally_hash(VT_TALLY_SEED, "u7"));
	ck_assert(!vt_tally_has(&t, vt_tally_hash(VT_TALLY_SEED, "u7")));
	vt_tally_free(&t);
}
END_TEST

/* Keeps the even counts (values are counts in the pointer). */
static int keep_even(void *value, void *arg)
{
	(*(int *)arg)++;
	return (uintptr_t)value % 2 == 0;
}

/* Removals in the middle of probe runs, wrapping ones too, skip nobody. */
START_TEST(filter_removes_exactly_the_refused)
{
	struct vt_map m;
	char key[16];
	int seen = 0;

	vt_map_init(&m);
	for (uintptr_t i = 1; i <= 5000; i++) {
		snprintf(key, sizeof(key), "k%u", (unsigned)i);
		ck_assert_int_eq(vt_map_put(&m, key, (void *)i), 0);
	}
	vt_map_filter(&m, keep_even, &seen);
	ck_assert_int_ge(seen, 5000);
	ck_assert_uint_eq(m.len, 2500);
	for (uintptr_t i = 1; i <= 5000; i++) {
		snprintf(key, sizeof(key), "k%u", (unsigned)i);
		ck_assert_ptr_eq(vt_map_get(&m, key), i % 2 == 0 ? (void *)i : NULL);
	}
	vt_map_free(&m);
}
END_TEST

/* Parts that concatenate alike still make different keys. */
START_TEST(keys_of_parts_never_collide)
{
	char a[32], b[32];
	size_t n;

	n = vt_key_str(a, sizeof(a), 0, "a");
	vt_key_str(a, sizeof(a), n, "bc");
	n = vt_key_str(b, sizeof(b), 0, "ab");
	vt_key_str(b, sizeof(b), n, "c");
	ck_assert_str_ne(a, b);
	ck_assert_str_eq(a, "1:a2:bc");

	n = vt_key_u64(a, sizeof(a), 0, 12);
	vt_key_str(a, sizeof(a), n, "3");
	n = vt_key_u64(b, sizeof(b), 0, 1);
	vt_key_str(b, sizeof(b), n, "23");
	ck_assert_str_ne(a, b);
	ck_assert_str_eq(a, "12 1:3");

	n = vt_key_u64(a, sizeof(a), 0, UINT64_MAX);
	ck_assert_str_eq(a, "18446744073709551615 ");
	ck_assert_uint_eq(n, 21);
	ck_assert_uint_eq(vt_key_u64(a, sizeof(a), 0, 0), 2);
	ck_assert_str_eq(a, "0 ");
}
END_TEST

/* A key that does not fit is cut, always NUL-terminated within its room. */
START_TEST(keys_are_cut_to_fit)
{
	char k[8];
	size_t n;

	memset(k, 'x', sizeof(k));
	n = vt_key_str(k, sizeof(k), 0, "abcdefghij");
	ck_assert_uint_eq(n, 7);
	ck_assert_str_eq(k, "10:abcd");
	n = vt_key_str(k, sizeof(k), n, "z");
	ck_assert_uint_eq(n, 7);
	ck_assert_str_eq(k, "10:abcd");
}
END_TEST

/* Blocks come back for reuse up to the bound, zeroed when asked, and all go at the drain. */
/* Every byte of the @size at @o is @v. */
static int all_bytes(const unsigned char *o, size_t size, unsigned char v)
{
	for (size_t k = 0; k < size; k++) {
		if (o[k] != v) {
			return 0;
		}
	}
	return 1;
}

/*
 * Objects over several chunks come zeroed, aligned and apart, also when
 * given back in a scattered order and taken again; once all are back the
 * chunks go, but one kept for the next object.
 */
START_TEST(slab_objects_zeroed_apart_and_chunks_given_back)
{
	enum { N = 600, SIZE = 200 };
	static unsigned char *o[N];
	struct vt_slab s;

	vt_slab_init(&s, SIZE);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			if (o[i] != NULL) {
				continue;
			}
			o[i] = vt_slab_zalloc(&s);
			ck_assert_ptr_nonnull(o[i]);
			ck_assert_uint_eq((uintptr_t)o[i] % 16, 0);
			ck_assert(all_bytes(o[i], SIZE, 0));
			memset(o[i], i % 250 + 1, SIZE);
		}
		for (int i = 0; i < N; i++) {
			ck_assert(all_bytes(o[i], SIZE, (unsigned char)(i % 250 + 1)));
		}

		/* Every third back, then taken again in the next round. */
		for (int i = round; i < N; i += 3) {
			vt_slab_free(&s, o[i]);
			o[i] = NULL;
		}
	}
	for (int i = 0; i < N; i++) {
		vt_slab_free(&s, o[i]);
		o[i] = NULL;
	}
	vt_slab_free(&s, NULL);
	if (VT_KEEP_FREED) {
		ck_assert(LIST_EMPTY(&s.chunks));
		ck_assert(LIST_EMPTY(&s.room));
		ck_assert_ptr_nonnull(s.spare);
	}

	/* One object comes from the spare and goes back to it. */
	o[0] = vt_slab_zalloc(&s);
	ck_assert(all_bytes(o[0], SIZE, 0));
	vt_slab_free(&s, o[0]);
	vt_slab_destroy(&s);
}
END_TEST

START_TEST(pool_keeps_up_to_its_bound)
{
	struct vt_pool p;
	unsigned char *b[4];

	vt_pool_init(&p, 40, 2);
	for (int i = 0; i < 4; i++) {
		b[i] = vt_pool_get(&p);
		ck_assert_ptr_nonnull(b[i]);
		memset(b[i], 0xab, 40);
	}
	for (int i = 0; i < 4; i++) {
		vt_pool_put(&p, b[i]);
	}
	ck_assert_uint_le(p.nfree, 2);
	vt_pool_put(&p, NULL);

	b[0] = vt_pool_zget(&p);
	for (int i = 0; i < 40; i++) {
		ck_assert_uint_eq(b[0][i], 0);
	}
	vt_pool_put(&p, b[0]);
	vt_pool_drain(&p);
	ck_assert_uint_eq(p.nfree, 0);
	ck_assert_ptr_null(p.free);

	vt_pool_init(&p, 1, 8); /* a block holds at least the list's link */
	ck_assert_uint_ge(p.size, sizeof(void *));
	vt_pool_put(&p, vt_pool_get(&p));
	vt_pool_drain(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("map");
	TCase *t = tcase_create("map");

	tcase_add_test(t, deleted_keys_are_gone);
	tcase_add_test(t, survivors_found_after_churn);
	tcase_add_test(t, counts_go_up_and_down_to_gone);
	tcase_add_test(t, tally_counts_every_key_until_taken_back);
	tcase_add_test(t, filter_removes_exactly_the_refused);
	tcase_add_test(t, keys_of_parts_never_collide);
	tcase_add_test(t, keys_are_cut_to_fit);
	tcase_add_test(t, pool_keeps_up_to_its_bound);
	tcase_add_test(t, slab_objects_zeroed_apart_and_chunks_given_back);
	suite_add_tcase(s, t);
	return run_suite(s);
}
