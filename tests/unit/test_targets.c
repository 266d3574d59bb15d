/*
 * test_targets.c - the inbox key sets a PUT gathers its devices in
 * (store_targets.c): membership, and a clear that leaves the table empty
 * whether it clears the whole table or slot by slot.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_targets.h"
#include "util.h"

static void add_keys(struct vt__tset *t, const char *prefix, int n, int want)
{
	char key[32];

	for (int i = 0; i < n; i++) {
		int len = snprintf(key, sizeof(key), "%s%d", prefix, i);

		ck_assert_int_eq(vt__tset_add(t, (const uint8_t *)key, (size_t)len, 0), want);
	}
}

static void assert_empty_table(const struct vt__tset *t)
{
	ck_assert_uint_eq(t->n, 0);
	for (uint32_t i = 0; i < t->nslot; i++) {
		ck_assert_uint_eq(t->slot[i], 0);
	}
}

START_TEST(test_a_key_once)
{
	struct vt__tset t = {0};

	add_keys(&t, "alice\ndev", 3, 1);
	add_keys(&t, "alice\ndev", 3, 0);
	ck_assert_uint_eq(t.n, 3);
	vt__tset_free(&t);
}
END_TEST

/*
 * After a set of thousands (a group's devices) the table stays large; the
 * small sets after it are cleared slot by slot, keys that probed past each
 * other's slots included, and each clear leaves nothing behind.
 */
START_TEST(test_clear_after_a_large_set)
{
	struct vt__tset t = {0};

	add_keys(&t, "member", 3000, 1);
	vt__tset_clear(&t);
	assert_empty_table(&t);
	ck_assert_uint_ge(t.nslot, 4096);

	for (int round = 0; round < 200; round++) {
		char prefix[16];

		snprintf(prefix, sizeof(prefix), "r%d-", round);
		add_keys(&t, prefix, 1 + round % 7, 1);
		add_keys(&t, prefix, 1 + round % 7, 0);
		vt__tset_clear(&t);
		assert_empty_table(&t);
	}
	add_keys(&t, "member", 3000, 1); /* all new again */
	vt__tset_free(&t);
}
END_TEST

/*
 * A table of 64 slots and sets of three keys that differ in their middle:
 * in about one set of twenty-five a key is placed past another's slot.
 */
START_TEST(test_clear_colliding_keys)
{
	struct vt__tset t = {0};
	char key[32];

	add_keys(&t, "k", 20, 1);
	ck_assert_uint_eq(t.nslot, 64);
	vt__tset_clear(&t);
	for (int round = 0; round < 3000; round++) {
		for (int i = 0; i < 3; i++) {
			int len = snprintf(key, sizeof(key), "%d-c%d", i, round);

			ck_assert_int_eq(vt__tset_add(&t, (const uint8_t *)key, (size_t)len, 0), 1);
		}
		vt__tset_clear(&t);
		assert_empty_table(&t);
	}
	vt__tset_free(&t);
}
END_TEST

static Suite *targets_suite(void)
{
	Suite *s = suite_create("targets");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_a_key_once);
	tcase_add_test(tc, test_clear_after_a_large_set);
	tcase_add_test(tc, test_clear_colliding_keys);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(targets_suite());
}
