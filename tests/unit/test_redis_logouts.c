/*
 * test_redis_logouts.c - logouts in the Redis backend beyond the contract:
 * exact times, the index that expiry and loading page through, and damaged
 * entries. The contract's own cases run in test_storage_redis.c.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "redis_fixture.h"
#include "storage_cases.h"
#include "store.h"

/* REVOKE (@user, @device) up to @ts seconds, alone in a batch; the op's status. */
static int revoke1(const char *user, const char *device, int64_t ts)
{
	struct vt_op op = {.kind = VT_OP_REVOKE, .inbox = {user, device}, .ts = ts};

	ck_assert_int_eq(commit(&op, 1), 0);
	return op.status;
}

/* What load_revoked reported: a count, and the time of alice's "*" if any. */
struct revoked {
	int n;
	int64_t alice_all;
};

static void count_revoked(void *arg, const struct vt_inbox *scope, int64_t ts)
{
	struct revoked *r = arg;

	r->n++;
	if (strcmp(scope->user, "alice") == 0 && strcmp(scope->device, VT_ALL_DEVICES) == 0) {
		r->alice_all = ts;
	}
}

static struct revoked load_revoked_all(void)
{
	struct revoked r = {0, 0};

	ck_assert_int_eq(fx.st.ops->load_revoked(fx.st.self, count_revoked, &r), 0);
	return r;
}

/*
 * Times past what a double holds exactly are kept and compared exactly, and
 * the keys are where docs/CLUSTER.md says.
 */
START_TEST(redis_revoke_exact_times)
{
	ck_assert_int_eq(open_redis(), 0);
	/* 2^53 + 1 is later than 2^53, though no double tells them apart */
	ck_assert_int_eq(revoke1("alice", VT_ALL_DEVICES, 9007199254740992), 0);
	ck_assert_int_eq(revoke1("alice", VT_ALL_DEVICES, 9007199254740993), 0);
	ck_assert_int_eq(revoke1("alice", VT_ALL_DEVICES, 9007199254740992), 0);
	ck_assert_int_eq(load_revoked_all().alice_all, 9007199254740993);
	ck_assert_int_eq(revoke1("alice", VT_ALL_DEVICES, INT64_MAX), 0);
	ck_assert_int_eq(load_revoked_all().alice_all, INT64_MAX);
	ck_assert_int_eq(revoke1("bob", "phone", 100), 0);
	ck_assert(server_answers_with("100", "HGET vt:{u:3:bob}:rv phone"));
	ck_assert(server_answers_with("100", "ZSCORE vt:rvts 3:bobphone"));
	ck_assert(server_cmd(server_port, "DEL vt:{u:3:bob}:rv"));
	ck_assert_int_eq(load_revoked_all().n, 1);
}
END_TEST

/*
 * More revocations than one page of the index are all read back; expiry
 * forgets at most its limit a sweep, oldest first.
 */
START_TEST(redis_revoke_many_and_bounded_expiry)
{
	enum { N = 600 };
	struct vt_op ops[N];
	char users[N][16];

	ck_assert_int_eq(open_redis(), 0);
	for (int i = 0; i < N; i++) {
		snprintf(users[i], sizeof(users[i]), "u%d", i);
		ops[i] = (struct vt_op){.kind = VT_OP_REVOKE, .inbox = {users[i], ""}, .ts = 1 + i};
	}
	ck_assert_int_eq(commit(ops, N), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(ops[i].status, 0);
	}
	ck_assert_int_eq(load_revoked_all().n, N);
	expire_dev(1000000, 0, 1000000, 100);
	ck_assert_int_eq(load_revoked_all().n, N - 100);
	ck_assert(server_answers_with("101", "HGET vt:{u:4:u100}:rv %s", ""));
	ck_assert(server_answers_with("0", "HEXISTS vt:{u:4:u99}:rv %s", ""));
	expire_dev(1000000, 0, INT64_MAX, 1000);
	ck_assert_int_eq(load_revoked_all().n, 0);
}
END_TEST

static int log_errors;

static void count_errors(enum vt_log_level level, const char *line, void *arg)
{
	log_errors += level <= VT_LOG_ERROR;
}

/*
 * What another program left in the index or the hashes is logged and
 * passed over at load; a logout writes over a stored time that is not one.
 */
START_TEST(redis_revoke_bad_entries_skipped)
{
	struct revoked r;

	ck_assert_int_eq(open_redis(), 0);
	vt_log_set(count_errors, NULL, VT_LOG_WARN);
	ck_assert_int_eq(revoke1("alice", "phone", 100), 0);
	ck_assert(server_cmd(server_port, "ZADD vt:rvts 5 nolength"));
	ck_assert(server_cmd(server_port, "ZADD vt:rvts 5 3:bobgone"));
	ck_assert(server_cmd(server_port, "ZADD vt:rvts 5 0:phone"));
	ck_assert(server_cmd(server_port, "HSET vt:{u:5:carol}:rv tab 12abc"));
	ck_assert(server_cmd(server_port, "ZADD vt:rvts 5 5:caroltab"));
	ck_assert(server_cmd(server_port, "HSET vt:{u:5:alice}:rv * -4"));
	ck_assert(server_cmd(server_port, "ZADD vt:rvts 5 5:alice*"));
	r = load_revoked_all();
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(log_errors, 5);
	ck_assert_int_eq(revoke1("alice", VT_ALL_DEVICES, 50), 0);
	r = load_revoked_all();
	ck_assert_int_eq(r.alice_all, 50);
	ck_assert_int_eq(r.n, 2); /* alice's phone, at 100, is not covered */
}
END_TEST

static Suite *redis_logouts_suite(void)
{
	Suite *s = suite_create("redis_logouts");
	TCase *rd = tcase_create("redis");

	tcase_add_checked_fixture(rd, NULL, redis_teardown);
	tcase_set_timeout(rd, 60);
	tcase_add_test(rd, redis_revoke_exact_times);
	tcase_add_test(rd, redis_revoke_many_and_bounded_expiry);
	tcase_add_test(rd, redis_revoke_bad_entries_skipped);
	suite_add_tcase(s, rd);
	return s;
}

int main(void)
{
	return redis_fixture_main(redis_logouts_suite(), "test_redis_logouts");
}
