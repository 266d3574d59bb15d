/*
 * test_timers.c - the retry deadlines of pushed items (inflight.c).
 */
#include <check.h>
#include <string.h>

#include "engine_internal.h"
#include "util.h"

static struct vt_timers t;
static struct vt_item items[8];

static struct vt_item *item(int i, uint32_t attempts, uint64_t deadline)
{
	items[i].attempts = attempts;
	items[i].deadline = deadline;
	return &items[i];
}

static void setup(void)
{
	memset(&t, 0, sizeof(t));
	memset(items, 0, sizeof(items));
}

/* The earliest is found across the lists of different attempts. */
START_TEST(first_across_attempts)
{
	ck_assert_ptr_null(vt_timers_first(&t));
	vt_timers_add(&t, item(0, 1, 1000));
	vt_timers_add(&t, item(1, 1, 1005));
	vt_timers_add(&t, item(2, 3, 900));  /* a retry due before both */
	vt_timers_add(&t, item(3, 70, 950)); /* a later word of the busy bits */
	ck_assert_ptr_eq(vt_timers_first(&t), &items[2]);
	ck_assert(vt_timers_is_first(&t, &items[2]));
	ck_assert(!vt_timers_is_first(&t, &items[0]));

	vt_timers_remove(&t, &items[2]);
	ck_assert_ptr_eq(vt_timers_first(&t), &items[3]);
	vt_timers_remove(&t, &items[3]);
	ck_assert_ptr_eq(vt_timers_first(&t), &items[0]);
	vt_timers_remove(&t, &items[0]);
	ck_assert_ptr_eq(vt_timers_first(&t), &items[1]);
	vt_timers_remove(&t, &items[1]);
	ck_assert_ptr_null(vt_timers_first(&t));
	ck_assert_uint_eq(t.busy[0] | t.busy[1], 0);
}
END_TEST

/* Removing from the middle, twice, or what was never added, keeps the rest in order. */
START_TEST(remove_anywhere)
{
	for (int i = 0; i < 5; i++) {
		vt_timers_add(&t, item(i, 2, 100 + (uint64_t)i));
	}
	vt_timers_remove(&t, &items[2]);
	vt_timers_remove(&t, &items[2]);
	vt_timers_remove(&t, item(6, 2, 1));
	vt_timers_remove(&t, &items[4]);
	vt_timers_remove(&t, &items[0]);
	ck_assert_ptr_eq(vt_timers_first(&t), &items[1]);
	ck_assert_ptr_eq(items[1].tnext, &items[3]);
	ck_assert_ptr_null(items[3].tnext);
	ck_assert_ptr_eq(t.tail[1], &items[3]);
}
END_TEST

/* A deadline before the tail's (a clock set back) still goes in order. */
START_TEST(out_of_order_deadline_sorted_in)
{
	vt_timers_add(&t, item(0, 1, 500));
	vt_timers_add(&t, item(1, 1, 700));
	vt_timers_add(&t, item(2, 1, 600));
	vt_timers_add(&t, item(3, 1, 100));
	ck_assert_ptr_eq(t.head[0], &items[3]);
	ck_assert_ptr_eq(items[3].tnext, &items[0]);
	ck_assert_ptr_eq(items[0].tnext, &items[2]);
	ck_assert_ptr_eq(items[2].tnext, &items[1]);
	ck_assert_ptr_eq(t.tail[0], &items[1]);
}
END_TEST

/* Attempts past the last list share it. */
START_TEST(attempts_past_the_lists_share_the_last)
{
	vt_timers_add(&t, item(0, VT_TIMER_LISTS + 5, 10));
	ck_assert_uint_eq(items[0].timer, VT_TIMER_LISTS);
	ck_assert_ptr_eq(vt_timers_first(&t), &items[0]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("timers");
	TCase *tc = tcase_create("timers");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, first_across_attempts);
	tcase_add_test(tc, remove_anywhere);
	tcase_add_test(tc, out_of_order_deadline_sorted_in);
	tcase_add_test(tc, attempts_past_the_lists_share_the_last);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
