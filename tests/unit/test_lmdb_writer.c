/*
 * test_lmdb_writer.c - the LMDB backend's writer thread: what it lists, the
 * order of its answers, what a close writes, and its descriptor.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "lmdb_fixture.h"
#include "storage_cases.h"

const struct storage_backend storage_backends[] = {
        {"lmdb", open_lmdb, 1, 0, NULL},
        {"lmdb-writer", open_lmdb, 1, 0, NULL},
};

const int storage_nbackends = 2;

/* Indexes in storage_backends */
#define PLAIN  0
#define WRITER 1

static int warnings;

static void count_warnings(enum vt_log_level level, const char *line, void *arg)
{
	warnings += level <= VT_LOG_WARN;
}

/* Callback order: each commit's arg is its number. */
static int answered[8], nanswered;

static void on_commit_in_order(void *arg, int status)
{
	ck_assert_int_eq(status, 0);
	ck_assert_int_lt(nanswered, 8);
	answered[nanswered++] = (int)(intptr_t)arg;
}

/* Run what the writer answers until @n commits were answered. */
static void wait_answered(int n)
{
	for (int waited = 0; nanswered < n && waited < 10000; waited += 10) {
		if (writer_ready(10)) {
			vt_storage_lmdb_dispatch(&fx.st);
		}
	}
	ck_assert_int_eq(nanswered, n);
}

/* A commit written and synced is not listed before its callback has run. */
START_TEST(writer_lists_what_was_answered)
{
	uint64_t ids[4];
	struct done d = {0};
	struct put p;

	st_open(WRITER);
	put_init(&p, 1, "", 100, "1", TO("bob"));
	fx.st.ops->commit(fx.st.self, &p.op, 1, on_commit, &d);
	ck_assert(writer_ready(10000));
	ck_assert_int_eq(d.calls, 0);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 0);

	ck_assert_int_eq(vt_storage_lmdb_dispatch(&fx.st), 1);
	ck_assert_int_eq(d.calls, 1);
	ck_assert_int_eq(d.status, 0);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 1);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 1);
	ck_assert_int_eq(vt_storage_lmdb_dispatch(&fx.st), 0);
}
END_TEST

/* Commits handed over before any answer are written in order and answered in order. */
START_TEST(writer_commits_in_order)
{
	uint64_t ids[8];
	struct put p[4];

	st_open(WRITER);
	nanswered = 0;
	for (int i = 0; i < 4; i++) {
		put_init(&p[i], (uint64_t)i + 1, i < 2 ? "same" : "", 100, "1", TO("bob"));
		p[i].op.dedup = 1;
		fx.st.ops->commit(fx.st.self, &p[i].op, 1, on_commit_in_order, (void *)(intptr_t)i);
	}
	wait_answered(4);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(answered[i], i);
	}
	ck_assert_uint_eq(p[1].op.dup_of, 1); /* the second saw what the first wrote */
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 3);
	ck_assert_uint_eq(ids[2], 4);
}
END_TEST

/* Closed before its answers were taken: what it was given is stored. */
START_TEST(writer_close_writes_what_it_was_given)
{
	uint64_t ids[4];
	struct put p[2];

	fx.sync = 1;
	st_open(WRITER);
	nanswered = 0;
	for (int i = 0; i < 2; i++) {
		put_init(&p[i], (uint64_t)i + 1, "", 100, "1", TO("bob"));
		fx.st.ops->commit(fx.st.self, &p[i].op, 1, on_commit_in_order, (void *)(intptr_t)i);
	}
	warnings = 0;
	vt_log_set(count_warnings, NULL, VT_LOG_WARN);
	st_close();
	ck_assert_int_eq(nanswered, 0);
	ck_assert_int_eq(warnings, 1); /* the answers it dropped */

	st_open(WRITER);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 2);
}
END_TEST

/* A sweep handed over after a commit sees what the commit wrote. */
START_TEST(writer_sweeps_after_commits)
{
	struct done d = {0};
	struct put p;

	st_open(WRITER);
	nanswered = 0;
	put_init(&p, 1, "", 100, "1", TO("bob"));
	fx.st.ops->commit(fx.st.self, &p.op, 1, on_commit_in_order, NULL);
	fx.st.ops->expire(fx.st.self, 1000, 200, INT64_MIN, 10, on_expire, &d);
	storage_wait(&d.calls);
	ck_assert_int_eq(nanswered, 1);
	ck_assert_int_eq(d.status, 0);
	ck_assert_uint_eq(d.removed, 1);
}
END_TEST

/* Another storage, or LMDB without the thread, has no descriptor. */
START_TEST(writer_fd_only_with_the_thread)
{
	st_open(PLAIN);
	ck_assert_int_eq(vt_storage_lmdb_fd(&fx.st), -1);
	ck_assert_int_eq(vt_storage_lmdb_dispatch(&fx.st), 0);
	st_close();
	ck_assert_int_eq(vt_storage_memory_create(WINDOW_MS, &fx.st), 0);
	ck_assert_int_eq(vt_storage_lmdb_fd(&fx.st), -1);
	ck_assert_int_eq(vt_storage_lmdb_fd(NULL), -1);
}
END_TEST

static Suite *lmdb_writer_suite(void)
{
	Suite *s = suite_create("lmdb_writer");
	TCase *tc = tcase_create("writer");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, writer_lists_what_was_answered);
	tcase_add_test(tc, writer_commits_in_order);
	tcase_add_test(tc, writer_close_writes_what_it_was_given);
	tcase_add_test(tc, writer_sweeps_after_commits);
	tcase_add_test(tc, writer_fd_only_with_the_thread);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(lmdb_writer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
