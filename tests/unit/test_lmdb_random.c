/*
 * test_lmdb_random.c - the LMDB backend under random batches of device
 * registrations, PUTs to users (their devices, or the holding inbox of a
 * user with none) and to single devices again, and ACKs known, repeated and
 * unknown, with message expiry, a store put back in format 3 now and then,
 * and device expiry at the end. A model says what each device owes: every
 * device lists exactly that, and in the store itself every record counts
 * as many deliveries as it has, every inbox count is right, and nothing is
 * left once all went.
 *
 * Each seed runs on both LMDB variants (inline and with the writer thread).
 */
#include <check.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdlib.h>
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

#define NU     4  /* users */
#define ND     3  /* devices a user may register */
#define HOLD   ND /* the model's slot for a user's holding inbox */
#define MAXID  2000
#define STEPS  600
#define MAXOPS 6 /* ops a batch */

static const char *const user[NU] = {"u0", "u1", "u2", "u3"};
static const char *const device[ND] = {"d0", "d1", "d2"};

static struct {
	unsigned char owed[NU][ND + 1][MAXID];
	unsigned char reg[NU][ND];
	int64_t ts[MAXID];
	uint64_t next;
} m;

/* Room for the ops of one batch, which point into it. */
static struct put rec_puts[MAXOPS];
static const char *users[MAXOPS][NU + 1];
static struct vt_inbox own[MAXOPS];

static int devices_of(int u)
{
	return m.reg[u][0] + m.reg[u][1] + m.reg[u][2];
}

/* Whether any inbox owes record @id, so that it is stored. */
static int stored(uint64_t id)
{
	for (int u = 0; u < NU; u++) {
		for (int d = 0; d <= HOLD; d++) {
			if (m.owed[u][d][id]) {
				return 1;
			}
		}
	}
	return 0;
}

/* ---- the store itself ---- */

/* Entries under @prefix in @dbi; with @exact, only keys @extra bytes longer. */
static uint32_t entries_under(MDB_txn *txn, MDB_dbi dbi, const MDB_val *prefix, size_t extra)
{
	MDB_cursor *cur;
	MDB_val k = *prefix, v;
	uint32_t n = 0;
	int rc;

	ck_assert_int_eq(mdb_cursor_open(txn, dbi, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size >= prefix->mv_size &&
	     memcmp(k.mv_data, prefix->mv_data, prefix->mv_size) == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		n += extra == 0 || k.mv_size == prefix->mv_size + extra;
	}
	mdb_cursor_close(cur);
	return n;
}

static MDB_dbi dbi_of(MDB_txn *txn, const char *name)
{
	MDB_dbi dbi;

	ck_assert_int_eq(mdb_dbi_open(txn, name, 0, &dbi), 0);
	return dbi;
}

/* Each record counts in by_time as many deliveries as by_record lists, at least one. */
static void check_record_counts(MDB_txn *txn)
{
	MDB_dbi recs = dbi_of(txn, "records"), byrec = dbi_of(txn, "by_record");
	MDB_cursor *cur;
	MDB_val k, v, idk, rec;
	int rc;

	ck_assert_int_eq(mdb_cursor_open(txn, dbi_of(txn, "by_time"), &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint32_t n;

		idk = (MDB_val){8, (uint8_t *)k.mv_data + 8};
		n = entries_under(txn, byrec, &idk, 0);
		ck_assert_uint_eq(v.mv_size, 4);
		if (get_u32(v.mv_data) != n || n == 0) {
			ck_abort_msg("record %llu counts %u deliveries, has %u",
			             (unsigned long long)vt__get_be64(idk.mv_data),
			             get_u32(v.mv_data), n);
		}
		ck_assert_int_eq(mdb_get(txn, recs, &idk, &rec), 0);
	}
	mdb_cursor_close(cur);
}

/* Each inbox count is the deliveries of its inbox, and they are all of them. */
static void check_inbox_counts(MDB_txn *txn)
{
	MDB_dbi dlv = dbi_of(txn, "deliveries");
	MDB_cursor *cur;
	MDB_val k, v;
	MDB_stat st;
	size_t all = 0;
	int rc;

	ck_assert_int_eq(mdb_cursor_open(txn, dbi_of(txn, "inbox_count"), &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint32_t n = entries_under(txn, dlv, &k, 8);

		ck_assert_uint_gt(n, 0);
		ck_assert_uint_eq(get_u32(v.mv_data), n);
		all += n;
	}
	mdb_cursor_close(cur);
	ck_assert_int_eq(mdb_stat(txn, dlv, &st), 0);
	ck_assert_uint_eq(all, st.ms_entries);
}

/* Check the closed store's counts against what it holds. */
static void check_store(void)
{
	MDB_env *env;
	MDB_txn *txn;

	ck_assert_uint_eq(raw_entries("records"), raw_entries("by_time"));
	ck_assert_uint_eq(raw_entries("deliveries"), raw_entries("by_record"));
	raw_open(1, &env, &txn);
	check_record_counts(txn);
	check_inbox_counts(txn);
	raw_close(env, txn);
}

/* Every registered device lists the first 64 of what the model says it owes. */
static void check_lists(void)
{
	uint64_t ids[64];

	for (int u = 0; u < NU; u++) {
		for (int d = 0; d < ND; d++) {
			size_t n = m.reg[u][d] ? list_in(user[u], device[d], ids, NULL) : 0, i = 0;

			for (uint64_t id = 1; m.reg[u][d] && id < m.next && i < 64; id++) {
				if (m.owed[u][d][id] && (i >= n || ids[i++] != id)) {
					ck_abort_msg("%s/%s does not list record %llu", user[u],
					             device[d], (unsigned long long)id);
				}
			}
			ck_assert_uint_eq(n, i);
		}
	}
}

static void check_all(void)
{
	check_lists();
	st_close();
	check_store();
	st_open(fx.backend);
}

/* ---- random ops, applied to the model as they are made ---- */

/* Register a device; a user's first takes the holding inbox. */
static void make_touch(struct vt_op *op, int u, int d, int64_t now)
{
	*op = (struct vt_op){.kind = VT_OP_TOUCH, .inbox = {user[u], device[d]}, .ts = now};
	if (!m.reg[u][d] && devices_of(u) == 0) {
		for (uint64_t id = 1; id < m.next; id++) {
			m.owed[u][d][id] = m.owed[u][HOLD][id];
			m.owed[u][HOLD][id] = 0;
		}
	}
	m.reg[u][d] = 1;
}

/* A new record to some users, and at times to its sender's other devices. */
static void make_put(struct vt_op *op, int slot, int u, int d, int64_t now)
{
	uint64_t id = m.next++;
	int n = 0;

	for (int w = 0; w < NU; w++) {
		if (rand() % 3 == 0 || (n == 0 && w == NU - 1)) {
			users[slot][n++] = user[w];
			for (int e = 0; e < ND; e++) {
				m.owed[w][e][id] = m.reg[w][e];
			}
			m.owed[w][HOLD][id] = devices_of(w) == 0;
		}
	}
	users[slot][n] = NULL;
	uput_init(&rec_puts[slot], id, users[slot]);
	rec_puts[slot].rec.ts = m.ts[id] = now;
	if (rand() % 2) {
		own[slot] = (struct vt_inbox){user[u], device[d]};
		rec_puts[slot].op.also_own = &own[slot];
		for (int e = 0; e < ND; e++) {
			m.owed[u][e][id] |= e != d && m.reg[u][e];
		}
	}
	*op = rec_puts[slot].op;
}

/*
 * An earlier record to one device, as a held message is written for a
 * device that went offline: counted on a stored record, stored anew (at
 * the time it gives) when all its deliveries went.
 */
static void make_put_again(struct vt_op *op, int slot, int u, int d, int64_t now)
{
	uint64_t id = 1 + (uint64_t)rand() % (m.next - 1);
	int64_t ts = rand() % 2 ? m.ts[id] : now;

	put_init(&rec_puts[slot], id, "", ts, "again", TO(NULL));
	rec_puts[slot].to[0] = (struct vt_inbox){user[u], device[d]};
	rec_puts[slot].op.nto = 1;
	if (!stored(id)) {
		m.ts[id] = ts;
	}
	m.owed[u][d][id] = 1;
	*op = rec_puts[slot].op;
}

/* An ACK of a record owed, acked already, never stored or never sent; its status in *@want. */
static void make_ack(struct vt_op *op, int u, int d, int *want)
{
	uint64_t id = rand() % 10 ? 1 + (uint64_t)rand() % m.next : MAXID + 1;
	int owes = id < MAXID && m.owed[u][d][id];

	*op = (struct vt_op){.kind = VT_OP_ACK, .inbox = {user[u], device[d]}, .id = id};
	*want = m.reg[u][d] && owes ? 0 : VT_EUNKNOWNID;
	if (*want == 0) {
		m.owed[u][d][id] = 0;
	}
}

static void make_op(struct vt_op *op, int slot, int64_t now, int *want)
{
	int r = rand() % 100, u = rand() % NU, d = rand() % ND;

	*want = 0;
	if (r < 12) {
		make_touch(op, u, d, now);
	} else if (r < 20 && m.next > 1 && m.reg[u][d]) {
		make_put_again(op, slot, u, d, now);
	} else if (r < 50 && m.next < MAXID) {
		make_put(op, slot, u, d, now);
	} else {
		make_ack(op, u, d, want);
	}
}

/* Expire the records stored before @before, @max deliveries a sweep. */
static void expire_all(int64_t now, int64_t before, uint64_t max)
{
	while (expire(now, before, max) == max) {
	}
	for (uint64_t id = 1; id < m.next; id++) {
		for (int u = 0; u < NU && m.ts[id] < before; u++) {
			for (int d = 0; d <= HOLD; d++) {
				m.owed[u][d][id] = 0;
			}
		}
	}
}

static void run_batch(int64_t now)
{
	struct vt_op ops[MAXOPS];
	int want[MAXOPS], n = 1 + rand() % MAXOPS;

	for (int i = 0; i < n; i++) {
		make_op(&ops[i], i, now, &want[i]);
	}
	ck_assert_int_eq(commit(ops, (size_t)n), 0);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(ops[i].status, want[i]);
	}
}

START_TEST(random_batches)
{
	int64_t now = 1000;

	memset(&m, 0, sizeof(m));
	m.next = 1;
	srand(1 + (unsigned)_i / 2);
	st_open(_i % 2);
	for (int step = 1; step <= STEPS; step++) {
		run_batch(++now);
		if (rand() % 40 == 0) {
			expire_all(now, now - rand() % 100, 1 + (uint64_t)rand() % 4);
		}
		if (step % 25 == 0) {
			check_all();
		}
		if (step % 150 == 0) {
			st_close();
			raw_format3(rand() % 2);
			st_open(fx.backend);
		}
	}
	/* every device goes, a few deliveries a sweep; the holding inboxes stay */
	while (expire_dev(now + 1, INT64_MIN, now + 1, 2) == 2) {
	}
	memset(m.reg, 0, sizeof(m.reg));
	check_all();
	expire_all(now + 1, now + 1, 3);
	st_close();
	check_store();
	ck_assert_uint_eq(raw_entries("records"), 0);
	ck_assert_uint_eq(raw_entries("deliveries"), 0);
	ck_assert_uint_eq(raw_entries("inbox_count"), 0);
}
END_TEST

static Suite *random_suite(void)
{
	Suite *s = suite_create("lmdb_random");
	TCase *tc = tcase_create("lmdb");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, random_batches, 0, 4);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(random_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
