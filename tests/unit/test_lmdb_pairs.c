/*
 * test_lmdb_pairs.c - the LMDB backend's (sender, client id) pairs: kept in
 * their time-ordered tree alone and found through the index in memory.
 * That index must follow every transaction (aborted ones too), be rebuilt
 * the same at open, find the right pair among colliding fingerprints, and
 * take over the pairs of a store written by an older layout.
 *
 * Each test runs on both LMDB variants (inline and with the writer thread).
 */
#include <check.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

static struct lmdb *store(void)
{
	return fx.st.self;
}

/* PUT record @id from alice under @cid at @ts, deduplicated; what it is a re-send of. */
static uint64_t send_pair(uint64_t id, const char *cid, int64_t ts)
{
	uint64_t dup = 0;

	ck_assert_int_eq(put1(id, cid, ts, "1", TO("bob"), 1, 0, &dup), 0);
	return dup;
}

/*
 * The pairs survive a restart: the index is rebuilt from the tree, and a
 * pair written again past its window keeps one key, its newest.
 */
START_TEST(pairs_survive_reopen)
{
	struct vt_storage_pairs reported;
	char cid[16];

	st_open(_i);
	for (uint64_t i = 1; i <= 150; i++) {
		snprintf(cid, sizeof(cid), "c%llu", (unsigned long long)i);
		ck_assert_uint_eq(send_pair(i, cid, 1000 + (int64_t)i), 0);
	}
	ck_assert_uint_eq(send_pair(100, "c7", 1007 + WINDOW_MS), 0);
	reported = (struct vt_storage_pairs){0};
	fx.st.ops->pairs(fx.st.self, &reported);
	ck_assert_uint_eq(reported.kept, 150);
	ck_assert_uint_eq(reported.forgotten, 0);
	st_close();
	ck_assert_uint_eq(raw_entries("dedup_time"), 150);

	st_open(_i);
	ck_assert_uint_eq(vt__pairs_count(&store()->pairs), 150);
	ck_assert_uint_eq(send_pair(101, "c7", 1008 + WINDOW_MS), 100);
	ck_assert_uint_eq(send_pair(102, "c8", 1010), 8);
	ck_assert_uint_eq(send_pair(105, "c150", 1200), 150);
	ck_assert_uint_eq(send_pair(103, "c151", 1010), 0);
	ck_assert_uint_eq(send_pair(104, "c151", 1011), 103);
}
END_TEST

/*
 * Fingerprints that collide: other entries under a pair's fingerprint, as
 * other pairs with the same fingerprint would leave, do not hide it, and
 * do not make another pair a re-send.
 */
START_TEST(pairs_colliding_fingerprints)
{
	uint8_t dk[VT__DEDUP_KEY_MAX];
	struct vt_record r = {0, VT_KIND_MESSAGE, "alice", "bob", "c1", 1000, "1", 1};
	size_t dklen = vt__dedup_key(&r, dk);
	uint64_t fp;

	st_open(_i);
	fp = vt__pairs_fp(&store()->pairs, dk, dklen);
	ck_assert_int_eq(vt__pairs_add(&store()->pairs, fp, 999), 0);
	ck_assert_int_eq(vt__pairs_add(&store()->pairs, fp, 1000), 0);
	ck_assert_uint_eq(send_pair(1, "c1", 1000), 0);
	ck_assert_int_eq(vt__pairs_add(&store()->pairs, fp, 1001), 0);
	ck_assert_uint_eq(send_pair(2, "c1", 1002), 1);
	ck_assert_uint_eq(send_pair(3, "c2", 1002), 0);
	ck_assert_uint_eq(send_pair(4, "c2", 1003), 3);
}
END_TEST

/* Pairs written in a transaction that aborts leave the index as it was. */
START_TEST(pairs_follow_an_aborted_transaction)
{
	struct vt_record r = {0, VT_KIND_MESSAGE, "alice", "bob", "", 2000, "1", 1};
	struct vt__lmdb_pair found;
	uint8_t dk[VT__DEDUP_KEY_MAX];
	char cid[16];
	MDB_txn *txn;

	st_open(_i);
	ck_assert_uint_eq(send_pair(1, "c0", 1000), 0);
	ck_assert_int_eq(vt__lmdb_wtxn_begin(store(), &txn), 0);
	for (int i = 0; i < 5000; i++) {
		size_t dklen;

		snprintf(cid, sizeof(cid), "a%d", i);
		r.cid = cid;
		dklen = vt__dedup_key(&r, dk);
		ck_assert_int_eq(vt__lmdb_pair_find(store(), txn, dk, dklen, &found), 0);
		ck_assert_int_eq(found.found, 0);
		ck_assert_int_eq(vt__lmdb_pair_write(store(), txn, dk, dklen, &found, 10 + i, 2000),
		                 0);
	}
	ck_assert_int_eq(
	        vt__lmdb_dedup_forget(store(), txn, 0, 0, 1, &(uint64_t){0}, &(int64_t){0}), 0);
	ck_assert_uint_eq(vt__pairs_count(&store()->pairs), 5000);
	ck_assert_int_eq(vt__lmdb_wtxn_end(store(), txn, VT_EIO), VT_EIO);

	ck_assert_uint_eq(vt__pairs_count(&store()->pairs), 1);
	ck_assert_uint_eq(send_pair(2, "c0", 1001), 1);
	ck_assert_uint_eq(send_pair(3, "a7", 2001), 0);
	st_close();
	ck_assert_uint_eq(raw_entries("dedup_time"), 2);
}
END_TEST

/*
 * Through a store too small for the pairs, with transactions that do not
 * fit and are tried again, the index holds exactly the pairs of the tree,
 * and no more than half of the map at 64 bytes a pair.
 */
START_TEST(pairs_index_matches_tree_when_full)
{
	const uint64_t pairs = 20000;
	size_t indexed;

	fx.map_size = 1 << 20;
	st_open(_i);
	for (uint64_t id = 1; id < pairs; id += 100) {
		put_pairs(id, 100, 1000 + (int64_t)id);
	}
	indexed = vt__pairs_count(&store()->pairs);
	ck_assert_uint_lt(indexed, pairs);
	/* short ids (some 40 bytes a pair) are counted at 64 bytes: the index stays bounded */
	ck_assert_uint_le(indexed, (1 << 20) / 2 / 64);
	st_close();
	ck_assert_uint_eq(raw_entries("dedup_time"), indexed);
}
END_TEST

/*
 * Commit a batch of @n messages of 300 bytes to carol, who is offline,
 * each with a client id; how many were taken.
 */
static size_t put_burst(uint64_t first, size_t n)
{
	static struct put p[100];
	static char cids[100][16], body[303];
	struct vt_op ops[100];
	size_t taken = 0;
	int rc;

	memset(body, 'y', sizeof(body) - 1);
	body[0] = body[sizeof(body) - 2] = '"';
	for (size_t i = 0; i < n; i++) {
		snprintf(cids[i], sizeof(cids[i]), "b%llu", (unsigned long long)(first + i));
		put_init(&p[i], first + i, cids[i], 3000, body, TO("carol"));
		p[i].op.dedup = 1;
		ops[i] = p[i].op;
	}
	rc = commit(ops, n);
	for (size_t i = 0; i < n; i++) {
		taken += rc == 0 && ops[i].status == 0;
	}
	return taken;
}

/*
 * A store whose pairs took their half gives their room to a burst of
 * stored messages: batches are taken until the pairs are down to what they
 * keep, not refused while pairs could still make room. A batch forgot no
 * more pairs than a few for each op and was refused, a few batches out of
 * three, long before the store was full of messages.
 */
START_TEST(pairs_give_way_to_a_burst)
{
	uint64_t id = 1;
	size_t taken = 0, first_refusal = 0;

	fx.map_size = 4 << 20;
	st_open(_i);
	for (; id < 60000; id += 100) {
		put_pairs(id, 100, 1000 + (int64_t)id);
	}
	for (int b = 0; b < 200; b++, id += 100) {
		size_t t = put_burst(id, 100);

		if (t < 100 && first_refusal == 0) {
			first_refusal = taken + t;
		}
		taken += t;
	}
	ck_assert_uint_gt(first_refusal, 0);
	ck_assert_uint_ge(first_refusal, taken * 9 / 10);
}
END_TEST

/*
 * The engine's thread peeks at the pairs of the last commit while the
 * writer's transaction may forget some and then abort: a pair that
 * transaction took out of the index is still the last commit's, and a
 * re-send of it must not look new (its held copies would be pushed early,
 * then the commit would find the pair and answer the first id).
 */
START_TEST(pairs_peek_sees_what_an_unfinished_transaction_forgot)
{
	struct vt_record r = {2, VT_KIND_MESSAGE, "alice", "bob", "c1", 1001, "1", 1};
	uint64_t id = 0;
	MDB_txn *txn;

	st_open(_i);
	ck_assert_uint_eq(send_pair(1, "c1", 1000), 0);
	ck_assert_int_eq(vt__lmdb_wtxn_begin(store(), &txn), 0);
	ck_assert_int_eq(
	        vt__lmdb_dedup_forget(store(), txn, 0, 0, 1, &(uint64_t){0}, &(int64_t){0}), 0);
	ck_assert_uint_eq(vt__pairs_count(&store()->pairs), 0);
	ck_assert_int_eq(fx.st.ops->dedup_peek(fx.st.self, &r, &id), 1);
	ck_assert_uint_eq(id, 1);
	ck_assert_int_eq(vt__lmdb_wtxn_end(store(), txn, VT_EIO), VT_EIO);
	ck_assert_uint_eq(send_pair(2, "c1", 1001), 1);
}
END_TEST

/* Write one pair of format 2's pair tree: @cid -> (@id, @ts). */
static void legacy_pair(MDB_txn *txn, MDB_dbi dbi, const char *cid, uint64_t id, int64_t ts)
{
	struct vt_record r = {id, VT_KIND_MESSAGE, "alice", "bob", cid, ts, "1", 1};
	uint8_t dk[VT__DEDUP_KEY_MAX], v16[16];
	MDB_val k = {vt__dedup_key(&r, dk), dk}, v = {16, v16};

	vt__put_be64(v16, id);
	vt__put_ts(v16 + 8, ts);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
}

/* Write a time index key of format 2 (kept in format 3): (@ts, @cid) -> @id. */
static void time_pair(MDB_txn *txn, MDB_dbi dbi, const char *cid, uint64_t id, int64_t ts)
{
	struct vt_record r = {id, VT_KIND_MESSAGE, "alice", "bob", cid, ts, "1", 1};
	uint8_t tk[8 + VT__DEDUP_KEY_MAX], v8[8];
	MDB_val k = {8 + vt__dedup_key(&r, tk + 8), tk}, v = {8, v8};

	vt__put_ts(tk, ts);
	vt__put_be64(v8, id);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
}

/*
 * Make the closed store in fx.dir look as format 2 left it after c1 (id 1)
 * and c2 (id 2, written over id 9 of an older window) at 1000: a pair tree
 * beside the time index, whose key of id 9 is stale.
 */
static void make_format2(void)
{
	uint8_t v8[8];
	MDB_val fk = {6, "format"}, fv = {8, v8};
	MDB_dbi legacy, dtime, meta;
	MDB_env *env;
	MDB_txn *txn;

	raw_open(0, &env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "dedup", MDB_CREATE, &legacy), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "dedup_time", 0, &dtime), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	legacy_pair(txn, legacy, "c1", 1, 1000);
	legacy_pair(txn, legacy, "c2", 2, 1000);
	time_pair(txn, dtime, "c2", 9, 500);
	vt__put_be64(v8, 2);
	ck_assert_int_eq(mdb_put(txn, meta, &fk, &fv, 0), 0);
	raw_close(env, txn);
}

/* A store of format 2 opens with its pairs, its stale keys and pair tree gone. */
START_TEST(pairs_upgrade_from_format_2)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	st_open(_i);
	ck_assert_uint_eq(send_pair(1, "c1", 1000), 0);
	ck_assert_uint_eq(send_pair(2, "c2", 1000), 0);
	st_close();
	make_format2();
	ck_assert_uint_eq(raw_entries("dedup_time"), 3);

	st_open(_i);
	ck_assert_uint_eq(send_pair(3, "c2", 1100), 2);
	ck_assert_uint_eq(send_pair(4, "c1", 1100), 1);
	ck_assert_uint_eq(send_pair(5, "c3", 1100), 0);
	st_close();
	ck_assert_uint_eq(raw_entries("dedup_time"), 3);
	raw_open(1, &env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "dedup", 0, &dbi), MDB_NOTFOUND);
	raw_close(env, txn);
}
END_TEST

static Suite *pairs_suite(void)
{
	Suite *s = suite_create("lmdb_pairs");
	TCase *tc = tcase_create("lmdb");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, pairs_survive_reopen, 0, 2);
	tcase_add_loop_test(tc, pairs_colliding_fingerprints, 0, 2);
	tcase_add_loop_test(tc, pairs_follow_an_aborted_transaction, 0, 2);
	tcase_add_loop_test(tc, pairs_index_matches_tree_when_full, 0, 2);
	tcase_add_loop_test(tc, pairs_give_way_to_a_burst, 0, 2);
	tcase_add_loop_test(tc, pairs_upgrade_from_format_2, 0, 2);
	tcase_add_loop_test(tc, pairs_peek_sees_what_an_unfinished_transaction_forgot, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(pairs_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
