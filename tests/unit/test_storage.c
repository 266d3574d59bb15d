/*
 * test_storage.c - the storage contract (storage_cases.h) on the memory and
 * LMDB backends, LMDB with and without its writer thread, and the tests that
 * need LMDB itself (the writer thread's own are in test_lmdb_writer.c).
 *
 * The LMDB backend gets a fresh directory per test. Tests that need
 * durability or LMDB internals (reopen, a full map, a damaged value) run on
 * LMDB only, both ways (loop tests over LMDB and LMDB_WRITER).
 */
/* nftw() is an XSI interface */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "lmdb_fixture.h"
#include "storage_cases.h"
#include "store_mem_int.h"

/* ---- backends ---- */

static int open_memory(void)
{
	return vt_storage_memory_create(WINDOW_MS, &fx.st);
}

/* Indexes in storage_backends */
#define LMDB        1
#define LMDB_WRITER 2

/* Fill the map with PUTs of full_body until one is refused. */
static void fill_lmdb(void)
{
	struct put p;
	uint64_t id = 1 << 20;
	int rc = 0;

	for (; id < (1 << 20) + 1000 && rc == 0; id++) {
		put_init(&p, id, "", FILL_TS, full_body, TO("f1", "f2"));
		rc = commit(&p.op, 1);
	}
	ck_assert_int_eq(rc, VT_ENOSPC);
}

const struct storage_backend storage_backends[] = {
        {"memory", open_memory, 0, 0, NULL},
        {"lmdb", open_lmdb, 1, 0, fill_lmdb},
        {"lmdb-writer", open_lmdb, 1, 0, fill_lmdb},
};

const int storage_nbackends = 3;

/* ---- LMDB only ---- */

START_TEST(lmdb_reopen)
{
	uint64_t ids[8];
	struct done d;
	struct stat sb;

	st_open(_i);
	ck_assert_int_eq(stat(fx.dir, &sb), 0);
	ck_assert_int_eq(put(1, 100, "\"A\"", TO("bob", "carol")), 0);
	ck_assert_int_eq(put(2, 100, "2", TO("bob")), 0);
	ck_assert_int_eq(put(9, 100, "9", TO("bob")), 0);
	ck_assert_int_eq(ack("bob", 9), 0);
	ck_assert_int_eq(ack("carol", 1), 0);
	st_close();

	st_open(_i);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 9);
	ck_assert_uint_eq(list("bob", 0, 10, ids, &d), 2);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_str_eq(d.bodies[0], "\"A\"");
	ck_assert_uint_eq(list("carol", 0, 10, ids, NULL), 0);
	ck_assert_int_eq(ack("bob", 1), 0);
	ck_assert_int_eq(ack("bob", 1), VT_EUNKNOWNID);
}
END_TEST

/* Dies inside a listing, so its read transaction is never ended. */
static void die_in_list(void *arg, int status, const struct vt_record *recs, size_t n)
{
	_exit(n == 3 ? 0 : 1);
}

/* A process that dies without closing leaves a store that opens as is. */
START_TEST(lmdb_reopen_after_crash)
{
	struct vt_inbox bob = {"bob", ""};
	uint64_t ids[8];
	int wstatus;
	pid_t pid;

	fx.sync = 1;
	st_open(_i);
	st_close();
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		st_open(_i);
		put(1, 100, "1", TO("bob"));
		put(2, 100, "2", TO("bob"));
		put(3, 100, "3", TO("bob"));
		fx.st.ops->list(fx.st.self, &bob, 0, 10, die_in_list, NULL);
		_exit(2);
	}
	ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
	ck_assert(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);

	st_open(_i);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 3);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 3);
	ck_assert_int_eq(ack("bob", 2), 0);
	ck_assert_int_eq(put(4, 100, "4", TO("bob")), 0);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 3);
}
END_TEST

START_TEST(lmdb_creates_private_dir)
{
	char sub[96];
	struct vt_lmdb_options o = {sub, 0, 0, 1};
	struct stat sb;

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/vt-storage-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx.dir));
	snprintf(sub, sizeof(sub), "%s/db", fx.dir);
	ck_assert_int_eq(vt_storage_lmdb_open(&o, &fx.st), 0);
	ck_assert_int_eq(stat(sub, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);

	o.path = NULL;
	ck_assert_int_eq(vt_storage_lmdb_open(&o, &fx.st), VT_EINVAL);
	o.path = sub;
	o.map_size = 1024;
	ck_assert_int_eq(vt_storage_lmdb_open(&o, &fx.st), VT_EINVAL);
	o.map_size = 0;
	o.path = "/proc/no/such/dir";
	ck_assert_int_eq(vt_storage_lmdb_open(&o, &fx.st), VT_EIO);
}
END_TEST

/* One store a directory: a second open is refused until the first is closed. */
START_TEST(lmdb_one_store_a_directory)
{
	struct vt_lmdb_options o = {fx.dir, 0, 0, 1};
	struct vt_storage second;
	int wstatus;
	pid_t pid;

	st_open(_i);
	ck_assert_int_eq(vt_storage_lmdb_open(&o, &second), VT_EBUSY);

	/* Another process too: the lock is on the directory, not this process. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		_exit(vt_storage_lmdb_open(&o, &second) == VT_EBUSY ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
	ck_assert(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);

	st_close();
	ck_assert_int_eq(vt_storage_lmdb_open(&o, &second), 0);
	second.ops->destroy(second.self);
}
END_TEST

/*
 * The lock is the directory's own: no file in it can be removed, replaced
 * or planted to let a second store in, or to keep the first one out.
 */
START_TEST(lmdb_lock_is_the_directory)
{
	struct vt_lmdb_options o = {fx.dir, 0, 0, 1};
	struct vt_storage second;
	char path[160], target[160];
	struct stat sb;

	/* Removing what looks like a stale lock file lets no second store in. */
	st_open(_i);
	snprintf(path, sizeof(path), "%s/vartalap.lock", fx.dir);
	unlink(path);
	ck_assert_int_eq(vt_storage_lmdb_open(&o, &second), VT_EBUSY);
	st_close();

	/* Neither a directory nor a dangling symbolic link of that name keeps
	 * a store out, and the link is not followed to create its target. */
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(vt_storage_lmdb_open(&o, &second), 0);
	second.ops->destroy(second.self);
	ck_assert_int_eq(rmdir(path), 0);
	snprintf(target, sizeof(target), "%s/elsewhere", fx.dir);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(vt_storage_lmdb_open(&o, &second), 0);
	second.ops->destroy(second.self);
	ck_assert_int_ne(lstat(target, &sb), 0);
}
END_TEST

static char big_body[4000];

static int put_big(uint64_t id)
{
	struct put p;

	put_init(&p, id, "", 100, big_body, TO("bob", "carol"));
	return commit(&p.op, 1);
}

START_TEST(lmdb_map_full)
{
	uint64_t ids[64], id, max;
	struct put p[2];
	struct vt_op ops[2];
	int rc = 0;

	memset(big_body, 'x', sizeof(big_body) - 1);
	fx.map_size = 1 << 20;
	st_open(_i);
	for (id = 1; id < 1000 && (rc = put_big(id)) == 0; id++) {
	}
	ck_assert_int_eq(rc, VT_ENOSPC);
	ck_assert_uint_gt(id, 1);
	max = fx.st.ops->max_id(fx.st.self);
	ck_assert_uint_eq(max, id - 1);

	/* the failed PUT again, after a small one: all refused, no trace */
	put_init(&p[0], id + 100, "", 100, "1", TO("dave"));
	put_init(&p[1], id, "", 100, big_body, TO("bob", "carol"));
	ops[0] = p[0].op;
	ops[1] = p[1].op;
	ck_assert_int_eq(commit(ops, 2), VT_ENOSPC);
	ck_assert_uint_eq(list("dave", 0, 10, ids, NULL), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), max);
	ck_assert_uint_eq(list("bob", max - 10, 64, ids, NULL), 10);

	/* acks free space; new PUTs work again */
	for (uint64_t i = 1; i <= max; i++) {
		ck_assert_int_eq(ack("bob", i), 0);
		ck_assert_int_eq(ack("carol", i), 0);
	}
	ck_assert_int_eq(put_big(id), 0);
	ck_assert_uint_eq(list("bob", 0, 64, ids, NULL), 1);
}
END_TEST

/*
 * (sender, client id) pairs yield to messages: a map they fill still takes
 * new ones, forgetting the oldest pairs, while the newest are still found
 * and a message stored for an offline recipient stays.
 */
START_TEST(lmdb_dedup_pairs_make_room)
{
	const uint64_t first = 1000, pairs = 40000; /* about four maps of them */
	uint64_t ids[4], dup;

	fx.map_size = 1 << 20;
	st_open(_i);
	ck_assert_int_eq(put(1, 100, "1", TO("bob")), 0);
	for (uint64_t id = first; id < first + pairs; id += 100) {
		ck_assert_uint_eq(put_pairs(id, 100, (int64_t)id), 100);
	}

	ck_assert_int_eq(put1(first + pairs + 1, "c40999", 100, "x", TO("carol"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, first + pairs - 1);
	ck_assert_int_eq(put1(first + pairs + 2, "c1000", 100, "x", TO("carol"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 0);
	ck_assert_uint_eq(list("carol", 0, 4, ids, NULL), 1);
	ck_assert_uint_eq(list("bob", 0, 4, ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 1);
}
END_TEST

static uint64_t forgot_logged;
static int forgot_lines;

static void count_forgotten(enum vt_log_level level, const char *line, void *arg)
{
	const char *p = strstr(line, "forgot ");

	if (p) {
		forgot_lines++;
		forgot_logged += strtoull(p + strlen("forgot "), NULL, 10);
	}
}

/*
 * Put @pairs pairs from id @first, at times from @now, 100 a batch, each
 * taken, with the lines about forgotten pairs counted from here on.
 */
static void put_pairs_counted(uint64_t first, uint64_t pairs, int64_t now)
{
	forgot_logged = 0;
	forgot_lines = 0;
	vt_log_set(count_forgotten, NULL, VT_LOG_WARN);
	for (uint64_t id = first; id < first + pairs; id += 100) {
		ck_assert_uint_eq(put_pairs(id, 100, now + (int64_t)(id - first)), 100);
	}
}

/*
 * Pairs forgotten inside their window are logged at most once a minute,
 * and what is left when the store closes: the lines add up to every pair
 * that went.
 */
START_TEST(lmdb_forgotten_pairs_all_logged)
{
	const uint64_t first = 1000, pairs = 40000;
	int64_t now = (int64_t)time(NULL) * 1000;

	fx.map_size = 1 << 20;
	st_open(_i);
	put_pairs_counted(first, pairs, now);
	ck_assert_int_eq(forgot_lines, 1);
	st_close();
	vt_log_set(NULL, NULL, VT_LOG_WARN);
	ck_assert_int_eq(forgot_lines, 2);
	ck_assert_uint_eq(forgot_logged + raw_entries("dedup_time"), pairs);
}
END_TEST

/*
 * The memory backend keeps at most MEM_DEDUP_MAX pairs (here 10,000),
 * whatever their window: past that the oldest go first, the newest are
 * still found, and the log says so once a minute, and when the store
 * closes: the lines add up to every pair that went.
 */
START_TEST(memory_dedup_pairs_bounded)
{
	const uint64_t first = 1000, pairs = 12000;
	int64_t now = (int64_t)time(NULL) * 1000;
	uint64_t dup;

	st_open(_i);
	vt__mem_set_dedup_max(&fx.st, 10000);
	put_pairs_counted(first, pairs, now);
	ck_assert_int_eq(forgot_lines, 1);
	ck_assert_uint_eq(forgot_logged, 100);
	ck_assert_int_eq(put1(first + pairs, "c2999", now, "x", TO(NULL), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 0);
	ck_assert_int_eq(put1(first + pairs + 1, "c3000", now, "x", TO(NULL), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 3000);
	ck_assert_int_eq(put1(first + pairs + 2, "c12999", now, "x", TO(NULL), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, first + pairs - 1);
	st_close();
	vt_log_set(NULL, NULL, VT_LOG_WARN);
	ck_assert_int_eq(forgot_lines, 2);
	ck_assert_uint_eq(forgot_logged, pairs + 1 - 10000); /* and c2999 again, the oldest */
}
END_TEST

/*
 * A value larger than the whole map fails inside LMDB itself; the batch
 * runs again with its PUTs refused, so the ack in it is still taken.
 */
/* Each user's list of single-device logouts goes with its last scope. */
START_TEST(memory_logouts_listed_per_user)
{
	struct mem *m;
	struct vt_op ops[4];

	st_open(_i);
	m = fx.st.self;
	revoke_init(&ops[0], "alice", "phone", 100);
	revoke_init(&ops[1], "alice", "tab", 300);
	revoke_init(&ops[2], "bob", "phone", 100);
	revoke_init(&ops[3], "carol", VT_ALL_DEVICES, 100);
	ck_assert_int_eq(commit(ops, 4), 0);
	ck_assert_uint_eq(m->revusers.len, 2); /* alice, bob; carol has no single one */

	revoke_init(&ops[0], "alice", VT_ALL_DEVICES, 200); /* covers phone, not tab */
	revoke_init(&ops[1], "bob", VT_ALL_DEVICES, 200);   /* covers bob's one */
	revoke_init(&ops[2], "bob", "phone", 250);          /* and a new one after */
	ck_assert_int_eq(commit(ops, 3), 0);
	ck_assert_str_eq(load_revoked(), "alice/*=200 alice/tab=300 bob/*=200 bob/phone=250 "
					 "carol/*=100");
	ck_assert_uint_eq(m->revusers.len, 2);

	expire_dev(1000000, 0, 260000, 1000);
	ck_assert_str_eq(load_revoked(), "alice/tab=300");
	ck_assert_uint_eq(m->revusers.len, 1);
	expire_dev(1000000, 0, 400000, 1000);
	ck_assert_uint_eq(m->revusers.len, 0);
	ck_assert_uint_eq(m->revoked.len, 0);
}
END_TEST

START_TEST(lmdb_value_beyond_map)
{
	static char huge[2 << 20];
	uint64_t ids[8];
	struct put p[2];
	struct vt_op ops[3];

	memset(huge, 'x', sizeof(huge) - 1);
	fx.map_size = 1 << 20;
	st_open(_i);
	ck_assert_int_eq(put(1, 100, "1", TO("bob")), 0);
	put_init(&p[0], 2, "", 100, "2", TO("bob"));
	put_init(&p[1], 3, "", 100, huge, TO("bob"));
	ops[0] = p[0].op;
	ack_init(&ops[1], "bob", 1);
	ops[2] = p[1].op;
	ck_assert_int_eq(commit(ops, 3), 0);
	ck_assert_int_eq(ops[0].status, VT_ENOSPC);
	ck_assert_int_eq(ops[1].status, 0);
	ck_assert_int_eq(ops[2].status, VT_ENOSPC);
	ck_assert_uint_eq(ops[0].out_nto + ops[2].out_nto, 0);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 1);
	ck_assert_int_eq(put(2, 100, "2", TO("bob")), 0);
}
END_TEST

/* probe: near-full store of messages; is a pair written a moment ago still known? */
/* PUT @id from alice to dave under @cid, deduplicated; its status, dup_of in *dup. */
static int put_pair(uint64_t id, const char *cid, uint64_t *dup)
{
	struct put p;
	int rc;

	put_init(&p, id, cid, 10000, "y", TO("dave"));
	p.op.dedup = 1;
	rc = commit(&p.op, 1);
	*dup = p.op.dup_of;
	return rc ? rc : p.op.status;
}

/*
 * A store full of messages, not pairs, still recognises a re-send a moment
 * after the first: the pairs keep a small share of the map. They were
 * forgotten in the transaction that wrote them.
 */
START_TEST(lmdb_full_of_messages_keeps_new_pairs)
{
	uint64_t id, dup;
	int rc = 0, taken = 0;
	char cid[16];

	memset(big_body, 'x', sizeof(big_body) - 1);
	fx.map_size = 4 << 20;
	st_open(_i);
	for (id = 1; id < 2000 && (rc = put_big(id)) == 0; id++) {
	}
	ck_assert_int_eq(rc, VT_ENOSPC);
	for (uint64_t i = 1; i <= 8; i++) {
		ck_assert_int_eq(ack("bob", i), 0);
		ck_assert_int_eq(ack("carol", i), 0);
	}
	for (int i = 0; i < 400; i++, id += 2) {
		snprintf(cid, sizeof(cid), "p%d", i);
		if (put_pair(id, cid, &dup) != 0) {
			continue;
		}
		taken++;
		ck_assert_int_eq(put_pair(id + 1, cid, &dup), 0);
		ck_assert_uint_eq(dup, id);
	}
	ck_assert_int_gt(taken, 50);
}
END_TEST

static int warnings;

static void count_warnings(enum vt_log_level level, const char *line, void *arg)
{
	warnings += level <= VT_LOG_WARN;
}

/* Overwrite record @id's stored value with @len bytes of @data. */
static void damage(uint64_t id, const void *data, size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t k[8];
	MDB_val key = {8, k}, v = {len, (void *)data};
	static char copy[8192];

	for (int i = 0; i < 8; i++) {
		k[i] = (uint8_t)(id >> (56 - 8 * i));
	}
	raw_open(0, &env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "records", 0, &dbi), 0);
	if (!data) {
		ck_assert_int_eq(mdb_get(txn, dbi, &key, &v), 0);
		ck_assert_uint_le(v.mv_size, sizeof(copy));
		memcpy(copy, v.mv_data, v.mv_size);
		v.mv_data = copy;
		v.mv_size /= 2; /* truncate the value to its first half */
	}
	ck_assert_int_eq(mdb_put(txn, dbi, &key, &v, 0), 0);
	raw_close(env, txn);
}

START_TEST(lmdb_damaged_record_skipped)
{
	uint64_t ids[8];
	struct done d;
	struct vt_op op;

	st_open(_i);
	for (uint64_t id = 1; id <= 4; id++) {
		ck_assert_int_eq(put(id, 100, "\"body\"", TO("bob")), 0);
	}
	st_close();
	damage(2, "garbage", 7);
	damage(3, NULL, 0);

	warnings = 0;
	vt_log_set(count_warnings, NULL, VT_LOG_WARN);
	st_open(_i);
	ck_assert_uint_eq(list("bob", 0, 10, ids, &d), 2);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 4);
	ck_assert_str_eq(d.bodies[1], "\"body\"");
	ck_assert_int_eq(warnings, 2);

	/* the damaged ones can still be acked (reporting nothing) and expired */
	ack_init(&op, "bob", 2);
	ck_assert_int_eq(commit(&op, 1), 0);
	ck_assert_int_eq(op.status, 0);
	ck_assert_uint_eq(op.acked_kind, 0);
	ck_assert_uint_eq(expire(1000, 200, 100), 3);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 0);
}
END_TEST

/* Devices, flags and groups survive a reopen. */
START_TEST(lmdb_reopen_devices_groups)
{
	struct put p;
	struct routed r;
	struct done d;
	uint32_t ndev;
	uint64_t ids[4];

	st_open(_i);
	ck_assert_int_eq(touch("bob", "d1", 100, NULL), 0);
	ck_assert_int_eq(set_group("g1", "state"), 0);
	uput_init(&p, 1, TO("bob", "carol"));
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_int_eq(notified("bob", "d1", 1), 0);
	st_close();

	st_open(_i);
	ck_assert_str_eq(load_groups(), "g1=state");
	ck_assert_uint_eq(list_in("bob", "d1", ids, &d), 1);
	ck_assert_uint_eq(d.recs[0].flags, VT_REC_NOTIFIED);
	ck_assert_int_eq(touch("bob", "d2", 100, &ndev), 0);
	ck_assert_uint_eq(ndev, 2);
	ck_assert_int_eq(touch("carol", "c1", 100, NULL), 0);
	ck_assert_uint_eq(list_in("carol", "c1", ids, NULL), 1);
	ck_assert_uint_eq(expire_dev(1000, 0, 200, 100), 2); /* bob/d1 and carol/c1 */
	ck_assert_uint_eq(list_in("bob", "d1", ids, NULL), 0);
}
END_TEST

/*
 * A full map (the contract's full store runs on LMDB as well): a group state
 * alone is refused past the reserve, and once acks made room, what was
 * refused goes through.
 */
START_TEST(lmdb_full_then_room_again)
{
	static char blob[12000];
	struct vt_op op = {.kind = VT_OP_GROUP, .group = "g1", .data = blob, .len = sizeof(blob)};
	uint64_t id;
	int rc = 0;

	memset(big_body, 'x', sizeof(big_body) - 1);
	memset(blob, 'y', sizeof(blob));
	fx.map_size = 1 << 20;
	st_open(_i);
	for (id = 1; id < 1000 && (rc = put_big(id)) == 0; id++) {
	}
	ck_assert_int_eq(rc, VT_ENOSPC);
	ck_assert_int_eq(commit(&op, 1), VT_ENOSPC);
	ck_assert_int_eq(op.status, VT_ENOSPC);
	ck_assert_str_eq(load_groups(), "");

	for (uint64_t i = 1; i < id; i++) {
		ck_assert_int_eq(ack_in("bob", "", i), 0);
		ck_assert_int_eq(ack_in("carol", "", i), 0);
	}
	ck_assert_int_eq(commit(&op, 1), 0);
	ck_assert_int_eq(op.status, 0);
	ck_assert_int_eq(strncmp(load_groups(), "g1=yyy", 6), 0);
	ck_assert_int_eq(put_big(id), 0);
}
END_TEST

/*
 * A user who never connected while the store filled up: his first device
 * still registers and claims everything held for him, so he can drain it.
 */
START_TEST(lmdb_full_first_device_claims)
{
	struct put p;
	uint64_t ids[64], id;
	uint32_t ndev;
	int rc = 0;

	memset(big_body, 'x', sizeof(big_body) - 1);
	fx.map_size = 1 << 20;
	st_open(_i);
	for (id = 1; id < 1000 && rc == 0; id++) {
		put_init(&p, id, "", 100, big_body, TO(NULL));
		p.op.users = TO("bob");
		p.op.nusers = 1;
		rc = commit(&p.op, 1);
	}
	ck_assert_int_eq(rc, VT_ENOSPC);
	id -= 2; /* the last one stored */
	ck_assert_uint_gt(id, 10);
	ck_assert_uint_eq(list_in("bob", VT_HOLDING_DEVICE, ids, NULL), id < 64 ? id : 64);

	ck_assert_int_eq(touch("bob", "b1", 100, &ndev), 0);
	ck_assert_uint_eq(ndev, 1);
	ck_assert_uint_eq(list_in("bob", VT_HOLDING_DEVICE, ids, NULL), 0);
	ck_assert_uint_eq(list_in("bob", "b1", ids, NULL), id < 64 ? id : 64);
	for (uint64_t i = 1; i <= id; i++) {
		ck_assert_int_eq(ack_in("bob", "b1", i), 0);
	}
	ck_assert_uint_eq(list_in("bob", "b1", ids, NULL), 0);
	put_init(&p, id + 1, "", 100, big_body, TO("bob"));
	ck_assert_int_eq(commit(&p.op, 1), 0);
}
END_TEST

/* ---- a full store: what still runs ---- */

static const char *const fill_users[] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"};

/* PUT @id to one to three of fill_users, with a body of 100 to 3000 bytes. */
static int put_fill(uint64_t id)
{
	struct put p;
	const char *to[4] = {NULL};
	uint32_t nto = 1 + id % 3;

	for (uint32_t i = 0; i < nto; i++) {
		to[i] = fill_users[(id * 5 + i * 3) % 8];
	}
	put_init(&p, id, "", 100, big_body + sizeof(big_body) - 1 - (100 + id * 337 % 2900), to);
	return commit(&p.op, 1);
}

/* Fill the store until a PUT is refused; returns the first refused id. */
static uint64_t fill_store(void)
{
	uint64_t id;
	int rc = 0;

	memset(big_body, 'x', sizeof(big_body) - 1);
	for (id = 1; id < 100000 && (rc = put_fill(id)) == 0; id++) {
	}
	ck_assert_int_eq(rc, VT_ENOSPC);
	ck_assert_uint_gt(id, 10);
	return id;
}

/*
 * Ack every delivery of the filled store in batches of @per acks. With
 * @stride 1 a batch takes one user's ids in order, as a client acks what
 * it listed; a larger stride scatters each batch over the whole store.
 */
static void drain_store(uint64_t end, uint32_t per, uint64_t stride)
{
	static struct vt_op ops[256];
	uint32_t n = 0;

	ck_assert_uint_le(per, 256);
	for (uint64_t i = 0; i < 8 * end; i++) {
		uint64_t id = 1 + (i * stride) % end;
		const char *user = fill_users[i / end];

		ack_init(&ops[n++], user, id);
		if (n == per || i + 1 == 8 * end) {
			ck_assert_int_eq(commit(ops, n), 0);
			n = 0;
		}
	}
	for (int u = 0; u < 8; u++) {
		ck_assert_uint_eq(list(fill_users[u], 0, 10, NULL, NULL), 0);
	}
}

/*
 * The reserve of the smallest maps holds an engine batch of acks spread
 * over every tree; after the drain the map takes as much as before.
 */
START_TEST(lmdb_tiny_map_drains)
{
	static const uint64_t sizes[] = {1 << 20, 4 << 20};
	uint64_t end, again;

	fx.map_size = sizes[_i / 2];
	st_open(LMDB);
	end = fill_store();
	if (_i % 2) {
		drain_store(end, 1, 7919);
	} else {
		drain_store(end, 100, 1);
	}
	for (again = 1; put_fill(end + again) == 0; again++) {
	}
	ck_assert_uint_ge(again, (end - 1) * 3 / 4);
}
END_TEST

/*
 * Logouts of many users on a full store: each would add a scope of one
 * device, which grows the store, so each is refused, and the reserve is
 * still there for the acks that empty it. A logout of every device is
 * one entry a user, which may use the reserve as a first device does.
 */
START_TEST(lmdb_full_logouts_leave_room_for_acks)
{
	char user[16];
	uint64_t end;

	fx.map_size = 1 << 20;
	st_open(_i);
	end = fill_store();
	for (int i = 0; i < 5000; i++) {
		snprintf(user, sizeof(user), "m%d", i);
		ck_assert_int_eq(commit_revoke(user, "phone", 100), VT_ENOSPC);
	}
	ck_assert_int_eq(commit_revoke("u0", VT_ALL_DEVICES, 100), 0);
	ck_assert_str_eq(load_revoked(), "u0/*=100");
	drain_store(end, 100, 1);
	ck_assert_int_eq(commit_revoke("m0", "phone", 100), 0);
}
END_TEST

/* Write the meta "format" value of the closed store in fx.dir. */
static void set_format(uint64_t version)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t v8[8];
	MDB_val key = {6, "format"}, v = {8, v8};

	for (int i = 0; i < 8; i++) {
		v8[i] = (uint8_t)(version >> (56 - 8 * i));
	}
	raw_open(0, &env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &key, &v, 0), 0);
	raw_close(env, txn);
}

/* A newer format is refused and logged; format 1 opens and works. */
START_TEST(lmdb_format_versions)
{
	uint64_t ids[4];

	st_open(_i);
	ck_assert_int_eq(put(1, 100, "1", TO("bob")), 0);
	st_close();
	set_format(99); /* a format from a later build */
	warnings = 0;
	vt_log_set(count_warnings, NULL, VT_LOG_WARN);
	ck_assert_int_eq(open_lmdb(), VT_EIO);
	ck_assert_int_ge(warnings, 1);

	set_format(1);
	st_open(_i);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 1);
	ck_assert_int_eq(touch("bob", "d1", 100, NULL), 0);
	st_close();
	set_format(0);
	ck_assert_int_eq(open_lmdb(), VT_EIO);
}
END_TEST

/* A journaled PUT of @id from alice, held for inbox (@user, "d") alone: its status. */
static int held_for_one(uint64_t id, const char *user)
{
	struct vt_inbox in = {user, "d"};
	struct put p;
	int rc;

	put_init(&p, id, "", 100, "\"held\"", TO(NULL));
	p.op.journal = 1;
	p.op.held_to = &in;
	p.op.nheld_to = 1;
	rc = commit(&p.op, 1);
	return rc != 0 ? rc : p.op.status;
}

/*
 * A format 6 store kept a message held for several devices as an entry a
 * device (as a PUT holding it for one device still writes it): after the
 * upgrade, a run of releases of some of them and replay find them there.
 */
START_TEST(lmdb_journal_of_format_6)
{
	struct vt_op rel[2] = {{.kind = VT_OP_RELEASE, .id = 7, .inbox = {"m1", "d"}},
	                       {.kind = VT_OP_RELEASE, .id = 7, .inbox = {"m0", "d"}}};
	uint64_t n = 0;

	st_open(_i);
	ck_assert_int_eq(touch("m0", "d", 100, NULL), 0);
	ck_assert_int_eq(touch("m1", "d", 100, NULL), 0);
	ck_assert_int_eq(touch("m2", "d", 100, NULL), 0);
	for (int m = 0; m < 3; m++) {
		char user[4] = {'m', (char)('0' + m), 0};

		ck_assert_int_eq(held_for_one(7, user), 0);
	}
	st_close();
	ck_assert_uint_eq(raw_entries("journal"), 3);
	set_format(6);

	st_open(_i);
	ck_assert_int_eq(commit(rel, 2), 0);
	ck_assert_int_eq(rel[0].status, 0);
	ck_assert_int_eq(rel[1].status, 0);
	st_close();
	st_open(_i);
	ck_assert_int_eq(fx.st.ops->replay(fx.st.self, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(count_in("m2", "d"), 1);
	ck_assert_uint_eq(count_in("m0", "d") + count_in("m1", "d"), 0);
}
END_TEST

static Suite *storage_suite(void)
{
	Suite *s = suite_create("storage");
	TCase *tc = tcase_create("contract");
	TCase *lm = tcase_create("lmdb");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	storage_cases_add(tc);
	storage_receipt_cases_add(tc);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(lm, NULL, teardown);
	tcase_add_loop_test(lm, lmdb_reopen, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, lmdb_reopen_after_crash, LMDB, LMDB_WRITER + 1);
	tcase_add_test(lm, lmdb_creates_private_dir);
	tcase_add_loop_test(lm, lmdb_one_store_a_directory, LMDB, LMDB + 1);
	tcase_add_loop_test(lm, lmdb_lock_is_the_directory, LMDB, LMDB + 1);
	tcase_add_loop_test(lm, lmdb_map_full, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, lmdb_value_beyond_map, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, lmdb_dedup_pairs_make_room, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, lmdb_forgotten_pairs_all_logged, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, memory_dedup_pairs_bounded, 0, 1);
	tcase_add_loop_test(lm, memory_logouts_listed_per_user, 0, 1);
	tcase_add_loop_test(lm, lmdb_full_of_messages_keeps_new_pairs, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, lmdb_damaged_record_skipped, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, lmdb_reopen_devices_groups, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, lmdb_full_then_room_again, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, lmdb_full_first_device_claims, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, lmdb_format_versions, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, lmdb_journal_of_format_6, LMDB, LMDB_WRITER + 1);
	tcase_add_loop_test(lm, lmdb_tiny_map_drains, 0, 4);
	tcase_add_loop_test(lm, lmdb_full_logouts_leave_room_for_acks, LMDB, LMDB_WRITER + 1);
	suite_add_tcase(s, lm);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(storage_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
