/*
 * test_storage_redis.c - the storage contract (storage_cases.h) on the Redis
 * backend, and what only Redis can do: lose its server and get it back.
 *
 * The server, its backend and the loop come from redis_fixture.h; each
 * test flushes the server first. Redis's own logout tests are in
 * test_redis_logouts.c.
 */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "redis_fixture.h"
#include "storage_cases.h"
#include "store.h"

/* ---- failures and restarts ---- */

/* Commit without waiting; the caller drives the loop. */
static void commit_start(struct put *p, uint64_t id, struct done *d)
{
	memset(d, 0, sizeof(*d));
	put_init(p, id, "", 100, "1", TO("bob"));
	fx.st.ops->commit(fx.st.self, &p->op, 1, on_commit, d);
}

/* Commit a PUT of @id to bob until Redis takes it; nonzero on success. */
static int commit_until_ok(uint64_t id, long long ms)
{
	long long deadline = now_ms() + ms;
	struct put p;
	struct done d;

	while (now_ms() < deadline) {
		commit_start(&p, id, &d);
		if (wait_ms(&d.calls, 3000) && d.status == 0 && p.op.status == 0) {
			return 1;
		}
		d.calls = 0;
		wait_ms(&d.calls, 100); /* let the reconnect timer run */
	}
	return 0;
}

static int warnings, errors;

static void count_warnings(enum vt_log_level level, const char *line, void *arg)
{
	warnings += level <= VT_LOG_WARN;
	errors += level <= VT_LOG_ERROR;
}

/*
 * A server that stops answering fails the call at the command timeout; one
 * killed during a batch fails it at once; calls while it is down fail at
 * once; and once it is back, batches work again (its script cache is empty
 * then, so this also covers sending a script in full after NOSCRIPT).
 */
START_TEST(redis_lost_and_back)
{
	int port = free_port();
	pid_t pid = server_start(port, NULL);
	struct put p;
	struct done d;
	long long t0;

	ck_assert_int_gt(pid, 0);
	vt_log_set(count_warnings, NULL, VT_LOG_WARN);
	ck_assert_int_eq(open_on(port, 300), 0);
	ck_assert_int_eq(put(1, 100, "1", TO("bob")), 0);

	server_kill(pid, SIGSTOP);
	t0 = now_ms();
	commit_start(&p, 2, &d);
	ck_assert(wait_ms(&d.calls, 5000));
	ck_assert_int_eq(d.status, VT_ESTORAGE);
	ck_assert_int_lt(now_ms() - t0, 2000);
	ck_assert_int_ge(warnings, 1);
	server_kill(pid, SIGCONT);
	ck_assert(commit_until_ok(3, 10000));

	commit_start(&p, 4, &d);
	server_kill(pid, SIGKILL);
	t0 = now_ms();
	ck_assert(wait_ms(&d.calls, 5000));
	ck_assert_int_eq(d.status, VT_ESTORAGE);
	ck_assert_int_lt(now_ms() - t0, 2000);
	commit_start(&p, 5, &d);
	ck_assert(wait_ms(&d.calls, 1000));
	ck_assert_int_eq(d.status, VT_ESTORAGE);

	pid = server_start(port, NULL);
	ck_assert_int_gt(pid, 0);
	ck_assert(commit_until_ok(6, 10000));
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 1);
	ck_assert_uint_eq(expire(1000, 1000, 100), 1);
	st_close();
	server_kill(pid, SIGKILL);
}
END_TEST

/* With appendonly and fsync always, a crash right after commits keeps them. */
START_TEST(redis_appendonly_survives_crash)
{
	char dir[] = "/tmp/vt-redis-XXXXXX";
	int port = free_port();
	pid_t pid;
	uint64_t ids[4];
	uint32_t ndev;
	struct done d;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(fx.dir, sizeof(fx.dir), "%s", dir); /* removed by the teardown */
	pid = server_start(port, dir);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(open_on(port, 2000), 0);
	ck_assert_int_eq(touch("bob", "d1", 100, NULL), 0);
	ck_assert_int_eq(set_group("g1", "state"), 0);
	ck_assert_int_eq(put(1, 100, "\"A\"", TO("carol")), 0);
	ck_assert_int_eq(put(3, 100, "3", TO("carol")), 0);
	ck_assert_int_eq(notified("carol", "", 3), 0);
	st_close();
	server_kill(pid, SIGKILL);

	pid = server_start(port, dir);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(open_on(port, 2000), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 3);
	ck_assert_str_eq(load_groups(), "g1=state");
	ck_assert_uint_eq(list("carol", 0, 10, ids, &d), 2);
	ck_assert_str_eq(d.bodies[0], "\"A\"");
	ck_assert_uint_eq(d.recs[1].flags, VT_REC_NOTIFIED);
	ck_assert_int_eq(touch("bob", "d2", 100, &ndev), 0);
	ck_assert_uint_eq(ndev, 2); /* d1 was still registered */
	st_close();
	server_kill(pid, SIGKILL);
}
END_TEST

/*
 * Over maxmemory (the contract's full store runs in the contract suite) a
 * batch of nothing but a PUT is refused whole and reads work; acks are
 * taken; an engine still opens the store and gets its block of ids; and
 * once under maxmemory again, PUTs are taken again.
 */
START_TEST(redis_full_store_opens_and_drains)
{
	struct vt_redis_options o = {"127.0.0.1", server_port, "vt:", 500, 2000, WINDOW_MS, 1};
	struct put p;
	struct done d;

	ck_assert_int_eq(open_redis(), 0);
	ck_assert_int_eq(put(1, 100, "1", TO("bob")), 0);
	ck_assert_int_eq(put(2, 100, "2", TO("bob")), 0);
	st_close();
	ck_assert(server_cmd(server_port, "CONFIG SET maxmemory 1"));
	ck_assert_int_eq(vt_storage_redis_open(base, &o, &fx.st), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), (uint64_t)1 << 32);

	commit_start(&p, 3, &d);
	storage_wait(&d.calls);
	ck_assert_int_eq(d.status, VT_ENOSPC);
	ck_assert_int_eq(p.op.status, VT_ENOSPC);
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 2);
	ck_assert_int_eq(ack("bob", 1), 0);
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 1);

	ck_assert(server_cmd(server_port, "CONFIG SET maxmemory 0"));
	ck_assert_int_eq(put(3, 100, "3", TO("bob")), 0);
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 2);
}
END_TEST

/* The server's used_memory (INFO memory), or -1. */
static long long used_memory(int port)
{
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	redisReply *r = c && !c->err ? redisCommand(c, "INFO memory") : NULL;
	const char *at = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "used_memory:") : NULL;
	long long n = at ? atoll(at + strlen("used_memory:")) : -1;

	if (r) {
		freeReplyObject(r);
	}
	if (c) {
		redisFree(c);
	}
	return n;
}

/*
 * (sender, client id) pairs give way over maxmemory: with room for about a
 * tenth of the pairs sent, batches are refused only until the oldest pairs
 * are forgotten, and the last ones are taken and the newest still found
 * (whether the very last batch met the limit depends on the allocator).
 */
START_TEST(redis_dedup_pairs_make_room)
{
	const uint64_t first = 1000, batches = 400;
	size_t late = 0;
	uint64_t dup, newest = 0;
	char cid[24];
	long long used;

	ck_assert_int_eq(open_redis(), 0);
	ck_assert_uint_eq(put_pairs(first, 100, (int64_t)first), 100);
	used = used_memory(server_port);
	ck_assert_int_gt(used, 0);
	ck_assert(server_cmd(server_port, "CONFIG SET maxmemory %lld", used + (1 << 20)));
	for (uint64_t b = 1; b < batches; b++) {
		size_t taken = put_pairs(first + 100 * b, 100, (int64_t)(first + 100 * b));

		late += b >= batches - 50 ? taken : 0;
		newest = taken == 100 ? first + 100 * b + 99 : newest;
	}
	ck_assert_uint_gt(late, 50 * 100 / 2);
	ck_assert_uint_gt(newest, first + 100 * (batches - 5)); /* one of the last batches */
	snprintf(cid, sizeof(cid), "c%llu", (unsigned long long)newest);
	ck_assert_int_eq(put1(first + 100 * batches, cid, 100, "x", TO(NULL), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, newest);
}
END_TEST

/*
 * Over maxmemory with room taken by something else than pairs, refused
 * batches do not wipe the pairs: giving them up would free next to
 * nothing, and the youngest must still recognise a re-send afterwards.
 */
START_TEST(redis_full_store_keeps_few_pairs)
{
	uint64_t dup;

	ck_assert_int_eq(open_redis(), 0);
	ck_assert_int_eq(put1(1, "c-1", 100, "1", TO("bob"), 1, 0, NULL), 0);
	ck_assert_uint_eq(put_pairs(1000, 100, 1000), 100);
	ck_assert(server_cmd(server_port, "CONFIG SET maxmemory %lld",
	                     used_memory(server_port) / 2));
	for (uint64_t b = 0; b < 10; b++) {
		ck_assert_uint_eq(put_pairs(2000 + 100 * b, 100, 2000), 0);
	}
	ck_assert(server_cmd(server_port, "CONFIG SET maxmemory 0"));
	ck_assert_int_eq(put1(3000, "c-1", 100, "1", TO("bob"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 1);
	ck_assert_int_eq(put1(3001, "c1099", 2000, "x", TO(NULL), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 1099);
}
END_TEST

/*
 * A batch over maxmemory that forgets pairs still answers its own re-sends
 * with the first id, even of the oldest pair, rather than refusing them.
 */
START_TEST(redis_full_batch_finds_its_resends)
{
	uint64_t dup;

	ck_assert_int_eq(open_redis(), 0);
	ck_assert_uint_eq(put_pairs(1000, 100, 1000), 100);
	ck_assert(server_cmd(server_port, "CONFIG SET maxmemory 1"));
	ck_assert_int_eq(put1(2000, "c1000", 1500, "x", TO(NULL), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 1000);
}
END_TEST

/*
 * A PUT whose id another record holds (two engines given one block of
 * ids, after Redis lost writes) writes nothing and is logged: the record's
 * recipients never see another user's message. The same record sent
 * again still adds what it lacks.
 */
START_TEST(redis_id_taken_refused)
{
	static const char *const diffs[][3] = {
	        {"carol", "c-1", "\"A\""}, {"alice", "c-2", "\"A\""}, {"alice", "c-1", "\"B\""}};
	struct put p;
	struct done d;
	uint64_t dup;

	ck_assert_int_eq(open_redis(), 0);
	vt_log_set(count_warnings, NULL, VT_LOG_WARN);
	ck_assert_int_eq(put1(7, "c-1", 100, "\"A\"", TO("bob"), 1, 0, NULL), 0);
	for (size_t i = 0; i < 3; i++) {
		errors = 0;
		put_init(&p, 7, diffs[i][1], 100, diffs[i][2], TO("dave"));
		p.rec.from = diffs[i][0];
		ck_assert_int_eq(commit(&p.op, 1), 0);
		ck_assert_int_eq(p.op.status, VT_ESTORAGE);
		ck_assert_uint_eq(p.op.out_nto, 0);
		ck_assert_int_eq(errors, 1);
		ck_assert_uint_eq(list("dave", 0, 10, NULL, NULL), 0);
	}
	/* nothing of them was kept, not even a dedup entry */
	ck_assert_int_eq(put1(8, "c-9", 100, "1", TO("dave"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 0);

	put_init(&p, 7, "c-1", 100, "\"A\"", TO("bob", "erin"));
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_int_eq(p.op.status, 0);
	ck_assert_uint_eq(p.op.out_nto, 1);
	ck_assert_uint_eq(list("erin", 0, 10, NULL, &d), 1);
	ck_assert_str_eq(d.bodies[0], "\"A\"");
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 1);
}
END_TEST

/*
 * A receipt whose id another record holds is not stored: its ack reports
 * no receipt, so the engine makes one itself, and the record is untouched.
 */
START_TEST(redis_receipt_id_taken_left_to_engine)
{
	struct vt_op op;
	struct done d;

	ck_assert_int_eq(open_redis(), 0);
	ck_assert_int_eq(put(7, 100, "\"A\"", TO("dave")), 0);
	ck_assert_int_eq(put(8, 100, "1", TO("bob")), 0);
	ack_init(&op, "bob", 8);
	op.receipt_id = 7;
	ck_assert_int_eq(commit(&op, 1), 0);
	ck_assert_int_eq(op.status, 0);
	ck_assert_uint_eq(op.out_receipt_id, 0);
	ck_assert_ptr_null(op.out_receipt);
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 0);
	ck_assert_uint_eq(list_in("alice", VT_HOLDING_DEVICE, NULL, NULL), 0);
	ck_assert_uint_eq(list("dave", 0, 10, NULL, &d), 1);
	ck_assert_str_eq(d.bodies[0], "\"A\"");
}
END_TEST

/* Plant record @id in bob's inbox, its fields as given (%b: the from). */
static void plant(const char *id, const char *kind, const char *from, size_t from_len,
                  const char *ts, const char *body)
{
	ck_assert(server_cmd(server_port, "HSET vt:{r:%s} k %s f %b t bob c %s ts %s b %s", id,
	                     kind, from, from_len, "", ts, body));
	ck_assert(server_cmd(server_port, "SADD vt:{r:%s}:d 3:bob", id));
	ck_assert(server_cmd(server_port, "ZADD vt:{u:3:bob}:b: 0 %s", id));
}

/*
 * Records another program wrote are passed over, each logged once, and the
 * rest is listed: a page still holds as many as asked while more are
 * stored, so the engine never takes a short page for the end.
 */
START_TEST(redis_bad_records_skipped)
{
	static char longer[5000];
	uint64_t ids[16];
	struct done d;

	ck_assert_int_eq(open_redis(), 0);
	vt_log_set(count_warnings, NULL, VT_LOG_WARN);
	errors = 0;
	for (uint64_t id = 2; id <= 20; id += 2) {
		ck_assert_int_eq(put(id, 100, "1", TO("bob")), 0);
	}
	memset(longer, 'E', sizeof(longer));
	plant("0000000000000001", "99", "alice", 5, "100", "1");
	plant("0000000000000003", "1", longer, sizeof(longer), "100", "1");
	plant("0000000000000005", "1", "alice", 5, "12abc", "1");
	plant("0000000000000007", "1", "alice", 5, "100", "}{not json");
	plant("0000000000000009", "1", "al\0ce", 5, "100", "1");
	plant("zzzz", "1", "alice", 5, "100", "1");
	ck_assert(server_cmd(server_port, "ZADD vt:{u:3:bob}:b: 0 000000000000000b"));

	ck_assert_uint_eq(list("bob", 0, 4, ids, NULL), 4);
	ck_assert_uint_eq(ids[0], 2);
	ck_assert_uint_eq(ids[3], 8);
	ck_assert_uint_eq(list("bob", 8, 4, ids, NULL), 4);
	ck_assert_uint_eq(ids[0], 10);
	ck_assert_uint_eq(list("bob", 16, 4, ids, &d), 2);
	ck_assert_uint_eq(ids[1], 20);
	ck_assert_str_eq(d.bodies[1], "1");
	ck_assert_int_eq(errors, 6);
	ck_assert_uint_eq(list("bob", 0, 64, ids, NULL), 10);
	ck_assert_int_eq(errors, 6);
}
END_TEST

/* No server: open fails at once instead of failing every later call. */
START_TEST(redis_open_unreachable)
{
	ck_assert_int_eq(open_on(free_port(), 500), VT_EIO);
	ck_assert_ptr_null(fx.st.ops);
}
END_TEST

/* A server that forgot the scripts gets them again in full (NOSCRIPT). */
START_TEST(redis_script_flushed)
{
	uint64_t ids[4];

	ck_assert_int_eq(open_redis(), 0);
	ck_assert_int_eq(put(1, 100, "1", TO("bob")), 0);
	ck_assert(server_cmd(server_port, "SCRIPT FLUSH"));
	ck_assert_int_eq(put(2, 100, "2", TO("bob")), 0);
	ck_assert(server_cmd(server_port, "SCRIPT FLUSH"));
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 2);
	ck_assert(server_cmd(server_port, "SCRIPT FLUSH"));
	ck_assert_uint_eq(expire(1000, 1000, 100), 2);
}
END_TEST

/* Keys of two prefixes never meet. */
START_TEST(redis_prefixes_apart)
{
	struct vt_redis_options o = {"127.0.0.1", server_port, "other:", 500, 2000, WINDOW_MS, 0};
	struct vt_storage mine;

	ck_assert_int_eq(open_redis(), 0);
	ck_assert_int_eq(put(1, 100, "1", TO("bob")), 0);
	mine = fx.st;
	ck_assert_int_eq(vt_storage_redis_open(base, &o, &fx.st), 0);
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 0);
	st_close();
	fx.st = mine;
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 1);
	o.prefix = "a{b}";
	ck_assert_int_eq(vt_storage_redis_open(base, &o, &mine), VT_EINVAL);
}
END_TEST

/* ---- group versions (only a store shared by several engines checks them) ---- */

/* A GROUP op writing @data at @version, derived from version @from (-1: unchecked). */
static void group_init(struct vt_op *op, const char *group, const char *data, uint64_t version,
                       int64_t from)
{
	memset(op, 0, sizeof(*op));
	op->kind = VT_OP_GROUP;
	op->group = group;
	op->data = data;
	op->len = data ? strlen(data) : 0;
	op->version = version;
	op->check_base = from >= 0;
	op->base = from >= 0 ? (uint64_t)from : 0;
}

/* A GROUP op alone in a batch; returns its status. */
static int group1(const char *group, const char *data, uint64_t version, int64_t from)
{
	struct vt_op op;

	group_init(&op, group, data, version, from);
	ck_assert_int_eq(commit(&op, 1), 0);
	return op.status;
}

/*
 * A stale base refuses that op alone, writing nothing; the rest of its
 * batch commits, and a later op of the batch sees an earlier one's version.
 */
START_TEST(redis_group_version_checked)
{
	struct vt_op ops[3];
	struct put p;

	ck_assert_int_eq(open_redis(), 0);
	ck_assert_int_eq(group1("g1", "v10", 10, 0), 0);
	ck_assert_int_eq(group1("g1", "again", 11, 0), VT_ECONFLICT); /* exists already */
	ck_assert_str_eq(load_groups(), "g1=v10");

	group_init(&ops[0], "g1", "v12", 12, 5);
	put_init(&p, 2, "", 100, "2", TO("bob"));
	ops[1] = p.op;
	group_init(&ops[2], "g2", "x", 13, 0);
	ck_assert_int_eq(commit(ops, 3), 0);
	ck_assert_int_eq(ops[0].status, VT_ECONFLICT);
	ck_assert_int_eq(ops[1].status, 0);
	ck_assert_int_eq(ops[2].status, 0);
	ck_assert_str_eq(load_groups(), "g1=v10 g2=x");
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 1);

	group_init(&ops[0], "g1", "v14", 14, 10);
	group_init(&ops[1], "g1", "v15", 15, 10); /* derived from what op 0 replaced */
	group_init(&ops[2], "g1", "v16", 16, 14);
	ck_assert_int_eq(commit(ops, 3), 0);
	ck_assert_int_eq(ops[0].status, 0);
	ck_assert_int_eq(ops[1].status, VT_ECONFLICT);
	ck_assert_int_eq(ops[2].status, 0);
	ck_assert_str_eq(load_groups(), "g1=v16 g2=x");

	/* Deleted, the group takes a create (base 0) again; unchecked ops pass. */
	ck_assert_int_eq(group1("g2", NULL, 17, 12), VT_ECONFLICT);
	ck_assert_int_eq(group1("g2", NULL, 17, 13), 0);
	ck_assert_int_eq(group1("g2", "y", 18, 0), 0);
	ck_assert_int_eq(group1("g2", "z", 19, -1), 0);
	ck_assert_str_eq(load_groups(), "g1=v16 g2=z");
}
END_TEST

/* A PUT taken from a stale group writes nothing, not even its dedup entry. */
START_TEST(redis_group_put_version_checked)
{
	struct put p;
	uint64_t ids[4];

	ck_assert_int_eq(open_redis(), 0);
	ck_assert_int_eq(group1("g:team", "v10", 10, 0), 0);
	put_init(&p, 20, "c-1", 100, "1", TO("bob", "carol"));
	p.op.dedup = 1;
	p.op.group = "g:team";
	p.op.check_base = 1;
	p.op.base = 9;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_int_eq(p.op.status, VT_ECONFLICT);
	ck_assert_uint_eq(p.op.out_nto, 0);
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 0);
	ck_assert_uint_eq(list("carol", 0, 10, NULL, NULL), 0);

	/* Taken again from the current version, with the same client id. */
	p.op.base = 10;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_int_eq(p.op.status, 0);
	ck_assert_uint_eq(p.op.dup_of, 0);
	ck_assert_uint_eq(p.op.out_nto, 2);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 20);

	/* A group that no longer exists refuses any version but 0. */
	ck_assert_int_eq(group1("g:team", NULL, 11, 10), 0);
	put_init(&p, 21, "", 100, "2", TO("bob"));
	p.op.group = "g:team";
	p.op.check_base = 1;
	p.op.base = 10;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_int_eq(p.op.status, VT_ECONFLICT);
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 1);
}
END_TEST

/* A group stored before versions were kept matches any version but 0, once. */
START_TEST(redis_group_without_version)
{
	struct put p;

	ck_assert_int_eq(open_redis(), 0);
	ck_assert(server_cmd(server_port, "HSET vt:groups g:old old"));
	put_init(&p, 30, "", 100, "1", TO("bob"));
	p.op.group = "g:old";
	p.op.check_base = 1;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_int_eq(p.op.status, VT_ECONFLICT); /* "must not exist" */
	p.op.base = 7;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_int_eq(p.op.status, 0);

	ck_assert_int_eq(group1("g:old", "new", 31, 3), 0);
	ck_assert_int_eq(group1("g:old", "newer", 32, 3), VT_ECONFLICT);
	ck_assert_str_eq(load_groups(), "g:old=new");
}
END_TEST

static Suite *redis_suite(void)
{
	Suite *s = suite_create("storage_redis");
	TCase *tc = tcase_create("contract");
	TCase *rd = tcase_create("redis");

	tcase_add_checked_fixture(tc, NULL, redis_teardown);
	tcase_set_timeout(tc, 120);
	storage_cases_add(tc);
	storage_receipt_cases_add(tc);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(rd, NULL, redis_teardown);
	tcase_set_timeout(rd, 60);
	tcase_add_test(rd, redis_lost_and_back);
	tcase_add_test(rd, redis_appendonly_survives_crash);
	tcase_add_test(rd, redis_full_store_opens_and_drains);
	tcase_add_test(rd, redis_dedup_pairs_make_room);
	tcase_add_test(rd, redis_full_store_keeps_few_pairs);
	tcase_add_test(rd, redis_full_batch_finds_its_resends);
	tcase_add_test(rd, redis_id_taken_refused);
	tcase_add_test(rd, redis_receipt_id_taken_left_to_engine);
	tcase_add_test(rd, redis_bad_records_skipped);
	tcase_add_test(rd, redis_open_unreachable);
	tcase_add_test(rd, redis_prefixes_apart);
	tcase_add_test(rd, redis_script_flushed);
	tcase_add_test(rd, redis_group_version_checked);
	tcase_add_test(rd, redis_group_put_version_checked);
	tcase_add_test(rd, redis_group_without_version);
	suite_add_tcase(s, rd);
	return s;
}

int main(void)
{
	return redis_fixture_main(redis_suite(), "test_storage_redis");
}
