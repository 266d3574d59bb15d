/*
 * test_engine_oom.c - the engine running out of memory while a connection
 * opens.
 *
 * The executable is linked with ld's --wrap for malloc, calloc and realloc,
 * so every allocation of the library goes through oom_wrap.c, which can
 * fail the k-th one once armed. An open must then either succeed or
 * fail with VT_ENOMEM, giving back what it took: the connection's record
 * goes back to the slab it came from, and the engine opens, closes and
 * tears down connections as before.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>

#include "engine_fixture.h"
#include "oom_wrap.h"
#include "util.h"

/* ---- opening ---- */

#define USERS 40

/*
 * Each allocation of an open fails in turn, for users new to the engine
 * (their record is made in the open) while others stay connected around
 * them: an open that fails answers VT_ENOMEM and leaves nothing behind; one
 * that got past the failure is closed and the next allocation fails. Then
 * the engine delivers between those connected, and closes them.
 */
START_TEST(a_failed_allocation_fails_the_open_whole)
{
	static struct cap_conn on[USERS];
	int failed = 0;

	for (int u = 0; u < USERS; u++) {
		struct vt_identity id;
		char name[16];
		int rc = VT_ENOMEM;
		int fired = 1;

		snprintf(name, sizeof(name), "u%02d", u);
		id = ident(&H, name);
		for (long k = 0; fired; k++) {
			memset(&on[u], 0, sizeof(on[u]));
			oom_arm(k);
			rc = vt_conn_open(E, &id, &cap_ops, &on[u], &on[u].conn);
			fired = oom_disarm();
			if (rc != 0) {
				ck_assert_int_eq(rc, VT_ENOMEM);
				ck_assert(fired);
				ck_assert_uint_eq(E->stats.connections, (uint64_t)u);
				failed++;
			} else if (fired) {
				/* Past the failure the device is registered, or the
				 * client is told to come back: never open and deaf. */
				turn(E, &H);
				ck_assert(on[u].closed ? on[u].close_code == VT_CLOSE_TRY_AGAIN
						       : on[u].conn->user->ndevices > 0);
				vt_conn_close(on[u].conn);
				turn(E, &H);
				cap_free(&on[u]);
			}
		}
		ck_assert_int_eq(rc, 0);
		turn(E, &H);
	}
	ck_assert_int_gt(failed, 0);
	ck_assert_uint_eq(E->stats.connections, USERS);

	/* What is open works, and closes. */
	send_msg(&on[0], "c-1", "u01", "\"hello\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&on[0], "accepted"), 1);
	ck_assert_uint_eq(cap_count(&on[1], "message"), 1);
	for (int u = 0; u < USERS; u++) {
		vt_conn_close(on[u].conn);
	}
	turn(E, &H);
	ck_assert_uint_eq(E->stats.connections, 0);
	for (int u = 0; u < USERS; u++) {
		cap_free(&on[u]);
	}
}
END_TEST

static Suite *oom_suite(void)
{
	Suite *s = suite_create("engine_oom");
	TCase *tc = tcase_create("open");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_failed_allocation_fails_the_open_whole);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(oom_suite());
}
