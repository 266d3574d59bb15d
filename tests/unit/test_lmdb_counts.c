/*
 * test_lmdb_counts.c - the LMDB backend's count of the deliveries each
 * stored record has left, kept in the record's by_time entry: a record
 * lives until its last delivery goes, and a store of an older layout, which
 * kept the counts in a tree of their own, has them moved at open, also when
 * an earlier open was stopped part way through.
 *
 * Each test runs on both LMDB variants (inline and with the writer thread).
 */
#include <check.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "lmdb_fixture.h"
#include "storage_cases.h"
#include "store_key.h"
#include "store_lmdb_int.h"

const struct storage_backend storage_backends[] = {
        {"lmdb", open_lmdb, 1, 0, NULL},
        {"lmdb-writer", open_lmdb, 1, 0, NULL},
};

const int storage_nbackends = 2;

/* The count in the by_time entry of record @id of the closed store; -1 when absent. */
static int64_t raw_count(uint64_t id)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_dbi dbi;
	MDB_val k, v;
	int64_t n = -1;
	int rc;

	raw_open(1, &env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "by_time", 0, &dbi), 0);
	ck_assert_int_eq(mdb_cursor_open(txn, dbi, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		ck_assert_uint_eq(k.mv_size, 16);
		if (vt__get_be64((const uint8_t *)k.mv_data + 8) == id) {
			ck_assert_uint_eq(v.mv_size, 4);
			n = get_u32(v.mv_data);
		}
	}
	mdb_cursor_close(cur);
	raw_close(env, txn);
	return n;
}

/* Whether the closed store still has the tree "rec_count" of the older layout. */
static int raw_has_old_counts(void)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	raw_open(1, &env, &txn);
	rc = mdb_dbi_open(txn, "rec_count", 0, &dbi);
	raw_close(env, txn);
	ck_assert(rc == 0 || rc == MDB_NOTFOUND);
	return rc == 0;
}

/*
 * Commit PUTs of records @first to @first + @n - 1, each at time 1000 + its
 * id, to every device of @user, up to BATCH a transaction.
 */
#define BATCH 500

static void put_devices(uint64_t first, uint64_t n, const char *user)
{
	static struct put p[BATCH];
	static struct vt_op ops[BATCH];
	static const char *users[2];

	users[0] = user;
	for (uint64_t done = 0; done < n;) {
		size_t k;

		for (k = 0; k < BATCH && done + k < n; k++) {
			uput_init(&p[k], first + done + k, users);
			p[k].rec.ts = 1000 + (int64_t)(first + done + k);
			ops[k] = p[k].op;
		}
		ck_assert_int_eq(commit(ops, k), 0);
		for (size_t i = 0; i < k; i++) {
			ck_assert_int_eq(ops[i].status, 0);
		}
		done += k;
	}
}

/* Commit acks of records @first to @first + @n - 1 by (@user, @device), BATCH at a time. */
static void ack_many(uint64_t first, uint64_t n, const char *user, const char *device)
{
	static struct vt_op ops[BATCH];

	for (uint64_t done = 0; done < n;) {
		size_t k;

		for (k = 0; k < BATCH && done + k < n; k++) {
			ops[k] = (struct vt_op){.kind = VT_OP_ACK, .inbox = {user, device},
			                        .id = first + done + k};
		}
		ck_assert_int_eq(commit(ops, k), 0);
		for (size_t i = 0; i < k; i++) {
			ck_assert_int_eq(ops[i].status, 0);
		}
		done += k;
	}
}

/* Open backend @backend, give bob devices d1 and d2, store records 1 to @n for them, close. */
static void store_on_two_devices(int backend, uint64_t n)
{
	st_open(backend);
	ck_assert_int_eq(touch("bob", "d1", 100, NULL), 0);
	ck_assert_int_eq(touch("bob", "d2", 100, NULL), 0);
	put_devices(1, n, "bob");
	st_close();
}

/* Bob with devices d1 to d3; record 1 to him (3 deliveries), record 2 to carol's one. */
static void store_two(void)
{
	ck_assert_int_eq(touch("bob", "d1", 100, NULL), 0);
	ck_assert_int_eq(touch("bob", "d2", 100, NULL), 0);
	ck_assert_int_eq(touch("bob", "d3", 100, NULL), 0);
	ck_assert_int_eq(touch("carol", "c1", 100, NULL), 0);
	put_devices(1, 1, "bob");
	put_devices(2, 1, "carol");
}

/* Acks of record 1 by bob's devices go one by one; the record with the last. */
static void ack_bob_devices(void)
{
	uint64_t ids[64];

	ck_assert_int_eq(ack_in("bob", "d1", 1), 0);
	ck_assert_int_eq(ack_in("bob", "d1", 1), VT_EUNKNOWNID);
	ck_assert_uint_eq(list_in("bob", "d2", ids, NULL), 1);
	ck_assert_int_eq(ack_in("bob", "d2", 1), 0);
	ck_assert_uint_eq(list_in("bob", "d3", ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 1);
	st_close();
	ck_assert_int_eq(raw_count(1), 1);
	st_open(fx.backend);
	ck_assert_int_eq(ack_in("bob", "d3", 1), 0);
	ck_assert_uint_eq(list_in("bob", "d3", ids, NULL), 0);
	ck_assert_int_eq(ack_in("carol", "c1", 2), 0);
	st_close();
	ck_assert_uint_eq(raw_entries("records"), 0);
	ck_assert_uint_eq(raw_entries("by_time"), 0);
	ck_assert_uint_eq(raw_entries("by_record"), 0);
	ck_assert_uint_eq(raw_entries("deliveries"), 0);
	ck_assert_uint_eq(raw_entries("inbox_count"), 0);
}

/* A record counts its deliveries in by_time and goes with the last of them. */
START_TEST(counts_follow_deliveries)
{
	st_open(_i);
	store_two();
	st_close();
	ck_assert_int_eq(raw_count(1), 3);
	ck_assert_int_eq(raw_count(2), 1);
	ck_assert_int_eq(raw_has_old_counts(), 0);
	st_open(_i);
	ack_bob_devices();
}
END_TEST

/* Expiry removes a record's deliveries and the record with its count. */
START_TEST(counts_follow_expiry)
{
	st_open(_i);
	store_two();
	ck_assert_int_eq(ack_in("bob", "d2", 1), 0);
	ck_assert_uint_eq(expire(5000, 1002, 100), 2);
	st_close();
	ck_assert_int_eq(raw_count(1), -1);
	ck_assert_int_eq(raw_count(2), 1);
	ck_assert_uint_eq(raw_entries("records"), 1);
	ck_assert_uint_eq(raw_entries("by_record"), 1);
}
END_TEST

/* Give record @id of the closed store a record version no build writes. */
static void raw_damage(uint64_t id)
{
	uint8_t idk[8], copy[256];
	MDB_val k = {8, idk}, v;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	vt__put_be64(idk, id);
	raw_open(0, &env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "records", 0, &dbi), 0);
	ck_assert_int_eq(mdb_get(txn, dbi, &k, &v), 0);
	ck_assert_uint_le(v.mv_size, sizeof(copy));
	memcpy(copy, v.mv_data, v.mv_size);
	copy[0] = 9;
	v.mv_data = copy;
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	raw_close(env, txn);
}

/*
 * A damaged record, which no listing shows, goes with the first ack of it;
 * its other deliveries and its by_time entry go with expiry.
 */
START_TEST(counts_damaged_record_goes)
{
	st_open(_i);
	store_two();
	st_close();
	raw_damage(1);
	st_open(_i);
	ck_assert_int_eq(ack_in("bob", "d1", 1), 0);
	st_close();
	ck_assert_uint_eq(raw_entries("records"), 1);
	ck_assert_int_eq(raw_count(1), 3);
	st_open(_i);
	ck_assert_uint_eq(expire(5000, 1002, 100), 2);
	st_close();
	ck_assert_int_eq(raw_count(1), -1);
	ck_assert_uint_eq(raw_entries("by_record"), 1);
	ck_assert_uint_eq(raw_entries("deliveries"), 1);
}
END_TEST

/* A store of format 3 opens with its counts moved, and acks go on as before. */
START_TEST(counts_upgrade_from_format_3)
{
	st_open(_i);
	store_two();
	st_close();
	raw_format3(0);
	ck_assert_int_eq(raw_has_old_counts(), 1);
	ck_assert_uint_eq(raw_entries("rec_count"), 2);

	st_open(_i);
	st_close();
	ck_assert_int_eq(raw_has_old_counts(), 0);
	ck_assert_int_eq(raw_count(1), 3);
	ck_assert_int_eq(raw_count(2), 1);
	st_open(_i);
	ack_bob_devices();
}
END_TEST

/*
 * More records than one transaction moves, half of them moved already by
 * an open that stopped: the next open moves the rest, and every record
 * still goes with its last delivery.
 */
START_TEST(counts_upgrade_resumes)
{
	const uint64_t n = 12001;
	uint64_t ids[64];

	store_on_two_devices(_i, n);
	raw_format3(1);
	ck_assert_uint_eq(raw_entries("rec_count"), (n + 1) / 2);

	st_open(_i);
	st_close();
	ck_assert_int_eq(raw_has_old_counts(), 0);
	ck_assert_int_eq(raw_count(1), 2);
	ck_assert_int_eq(raw_count(2), 2);
	ck_assert_int_eq(raw_count(n), 2);
	st_open(_i);
	ack_many(1, n, "bob", "d1");
	ck_assert_uint_eq(list_in("bob", "d1", ids, NULL), 0);
	ck_assert_uint_eq(list_in("bob", "d2", ids, NULL), 64);
	ck_assert_uint_eq(ids[0], 1);
	ack_many(1, n, "bob", "d2");
	st_close();
	ck_assert_uint_eq(raw_entries("records"), 0);
	ck_assert_uint_eq(raw_entries("by_time"), 0);
}
END_TEST

/*
 * Leave the closed store without free pages (a compacted copy in place of
 * its data file), and open it next with @room bytes of map beyond them.
 */
static void compact(uint64_t room)
{
	char copy[sizeof(fx.dir) + 16], from[sizeof(copy) + 16], to[sizeof(fx.dir) + 16];
	struct stat st;
	MDB_env *env;
	MDB_txn *txn;

	snprintf(copy, sizeof(copy), "%s/compact", fx.dir);
	snprintf(from, sizeof(from), "%s/data.mdb", copy);
	snprintf(to, sizeof(to), "%s/data.mdb", fx.dir);
	ck_assert_int_eq(mkdir(copy, 0700), 0);
	raw_open(1, &env, &txn);
	mdb_txn_abort(txn); /* the copy reads in a transaction of its own */
	ck_assert_int_eq(mdb_env_copy2(env, copy, MDB_CP_COMPACT), 0);
	mdb_env_close(env);
	ck_assert_int_eq(rename(from, to), 0);
	ck_assert_int_eq(rmdir(copy), 0);
	ck_assert_int_eq(stat(to, &st), 0);
	fx.map_size = (uint64_t)st.st_size + room;
}

/*
 * A store of format 3 in a map with little room left, as a full store
 * keeps (the reserve of store_lmdb_space.c), opens in that map: the counts
 * move in transactions small enough for the room there is.
 */
START_TEST(counts_upgrade_in_a_full_map)
{
	const uint64_t n = 12001;

	store_on_two_devices(_i, n);
	raw_format3(0);
	compact(256 << 10);

	st_open(_i);
	st_close();
	ck_assert_int_eq(raw_has_old_counts(), 0);
	ck_assert_int_eq(raw_count(1), 2);
	ck_assert_int_eq(raw_count(n), 2);
	st_open(_i);
	ack_many(1, n, "bob", "d1");
	ack_many(1, n, "bob", "d2");
	st_close();
	ck_assert_uint_eq(raw_entries("records"), 0);
	ck_assert_uint_eq(raw_entries("by_time"), 0);
}
END_TEST

static Suite *counts_suite(void)
{
	Suite *s = suite_create("lmdb_counts");
	TCase *tc = tcase_create("lmdb");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, counts_follow_deliveries, 0, 2);
	tcase_add_loop_test(tc, counts_follow_expiry, 0, 2);
	tcase_add_loop_test(tc, counts_damaged_record_goes, 0, 2);
	tcase_add_loop_test(tc, counts_upgrade_from_format_3, 0, 2);
	tcase_add_loop_test(tc, counts_upgrade_resumes, 0, 2);
	tcase_add_loop_test(tc, counts_upgrade_in_a_full_map, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(counts_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
