/*
 * test_engine_storage.c - the engine over storage that fails, answers
 * inline, or holds its batches: nothing falsely accepted, health, batches
 * in flight in order, and connections made busy while answers are owed.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"

/* A storage that fails every commit, to prove nothing is falsely accepted. */
static struct vt_storage_ops failing_ops;
static int fail_commits;

static void failing_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	if (fail_commits) {
		done(arg, fail_commits);
		return;
	}
	wrap_inner.ops->commit(wrap_inner.self, ops, n, done, arg);
}

static int fail_lists;
static unsigned list_calls;

static void failing_list(void *self, const struct vt_inbox *in, uint64_t after, uint32_t limit,
			 vt_list_cb done, void *arg)
{
	list_calls++;
	if (fail_lists) {
		done(arg, VT_ESTORAGE, NULL, 0);
		return;
	}
	wrap_inner.ops->list(wrap_inner.self, in, after, limit, done, arg);
}

/* A fresh engine on storage @ops with @in_flight commits at a time, alice connected. */
/* A fresh engine with @c on @ops, alice connected. */
static void engine_with(const struct vt_storage_ops *ops, const struct vt_engine_config *c)
{
	struct vt_storage st = {.ops = ops};

	vt_engine_destroy(E);
	E = engine_new(&H, c, &st);
	connect_user(E, &H, "alice", &A);
}

static void engine_on(const struct vt_storage_ops *ops, uint32_t in_flight)
{
	struct vt_engine_config c = cfg_short();

	c.commits_in_flight = in_flight;
	engine_with(ops, &c);
}

/* A fresh engine on the failing storage, alice connected, commits failing with @err. */
static void failing_engine(int err)
{
	wrap_ops_init(&failing_ops, 86400000);
	failing_ops.commit = failing_commit;
	failing_ops.list = failing_list;
	engine_on(&failing_ops, 1);
	fail_commits = err;
	fail_lists = 0;
	list_calls = 0;
}

/* A listing that fails is tried again once a second, not on every turn. */
START_TEST(failed_listing_waits_for_the_sweep)
{
	unsigned calls;

	failing_engine(0);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);

	fail_lists = 1;
	connect_user(E, &H, "bob", &B);
	calls = list_calls;
	ck_assert_uint_ge(calls, 1);
	for (int i = 0; i < 20; i++) {
		advance(E, &H, 10);
	}
	ck_assert_uint_eq(list_calls, calls);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);

	fail_lists = 0;
	advance(E, &H, 1000);
	ck_assert_uint_eq(list_calls, calls + 1);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
}
END_TEST

/* A store that answers inside the commit call, as an inline writer does, 30 ms later. */
static struct vt_storage_ops inline_ops;

static void inline_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	H.mono += 30;
	H.wall += 30;
	wrap_inner.ops->commit(wrap_inner.self, ops, n, done, arg);
}

/*
 * A commit answered within the flush that made it still takes its time:
 * the histogram counts it, and a push it completes waits a whole ack
 * timeout from the moment it was made.
 */
START_TEST(inline_commit_takes_its_time)
{
	struct vt_engine_stats st;

	wrap_ops_init(&inline_ops, 86400000);
	inline_ops.commit = inline_commit;
	engine_on(&inline_ops, 1);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "c-1", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);

	vt_engine_stats(E, &st);
	ck_assert_uint_ge(st.commit_ms_sum, 30 * st.batches);

	advance(E, &H, 999);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	advance(E, &H, 1);
	ck_assert_uint_eq(cap_count(&B, "message"), 2);
}
END_TEST

START_TEST(full_storage_never_accepts_and_recovers)
{
	failing_engine(VT_ENOSPC);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 0);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "error", 0), "storage_full"));
	ck_assert_int_eq(vt_engine_healthy(E), 0);

	/* Full is not unreachable: health waits for a batch that commits. */
	advance(E, &H, 1500);
	ck_assert_int_eq(vt_engine_healthy(E), 0);

	fail_commits = 0;
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	ck_assert_int_eq(vt_engine_healthy(E), 1);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
}
END_TEST

/* Storage that stopped answering is seen healthy again without traffic. */
START_TEST(health_returns_when_storage_answers_again)
{
	failing_engine(VT_ESTORAGE);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "error", 0), "storage_error"));
	ck_assert_int_eq(vt_engine_healthy(E), 0);

	fail_commits = 0;
	advance(E, &H, 1500);
	ck_assert_int_eq(vt_engine_healthy(E), 1);
}
END_TEST

/* A store that holds every commit until the test completes it, in any order. */
struct held {
	struct vt_op *ops;
	size_t n;
	vt_commit_cb done;
	void *arg;
};

static struct held held[4];
static int nheld;
static char calls[16]; /* the store's calls in order: c commit, e expire */

static void held_called(char what)
{
	size_t n = strlen(calls);

	ck_assert_uint_lt(n + 1, sizeof(calls));
	calls[n] = what;
	calls[n + 1] = '\0';
}

static void held_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	ck_assert_int_lt(nheld, 4);
	held[nheld++] = (struct held){ops, n, done, arg};
	held_called('c');
}

static void held_list(void *self, const struct vt_inbox *in, uint64_t after, uint32_t limit,
		      vt_list_cb done, void *arg)
{
	done(arg, 0, NULL, 0);
}

static void held_expire(void *self, int64_t now, int64_t before, int64_t dev_before,
			uint64_t max, vt_expire_cb done, void *arg)
{
	held_called('e');
	done(arg, 0, 0);
}

static uint64_t held_max_id(void *self)
{
	return 0;
}

static void held_destroy(void *self)
{
}

static const struct vt_storage_ops held_ops = {
	.commit = held_commit,
	.list = held_list,
	.expire = held_expire,
	.max_id = held_max_id,
	.destroy = held_destroy,
};

/* Complete held commit @i (0: the oldest still held): every op stored, none routed. */
static void held_complete(int i)
{
	struct held h = held[i];

	ck_assert_int_lt(i, nheld);
	memmove(&held[i], &held[i + 1], (size_t)(nheld - i - 1) * sizeof(held[0]));
	nheld--;
	for (size_t k = 0; k < h.n; k++) {
		h.ops[k].status = 0;
		h.ops[k].out_ndevices = 1;
	}
	h.done(h.arg, 0);
}

/* A fresh engine with @c on the holding store, with alice connected. */
static void held_engine_with(const struct vt_engine_config *c)
{
	nheld = 0;
	engine_with(&held_ops, c);
	ck_assert_int_eq(nheld, 1); /* alice's device */
	held_complete(0);
	calls[0] = '\0';
}

static void held_engine(uint32_t in_flight)
{
	struct vt_engine_config c = cfg_short();

	c.commits_in_flight = in_flight;
	held_engine_with(&c);
}

/* The cid of the @i-th "accepted" alice heard. */
static const char *accepted_cid(size_t i)
{
	static char cid[32];

	ck_assert_int_eq(json_field(cap_nth(&A, "accepted", i), "ref", cid, sizeof(cid)), 0);
	return cid;
}

START_TEST(next_batch_commits_while_one_is_in_flight)
{
	held_engine(2);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	send_msg(&A, "m2", "bob", "2");
	turn(E, &H);
	ck_assert_int_eq(nheld, 2); /* the second went before the first completed */
	send_msg(&A, "m3", "bob", "3");
	turn(E, &H);
	ck_assert_int_eq(nheld, 2); /* no more than two at a time */
	ck_assert_uint_eq(cap_count(&A, "accepted"), 0);

	/* The second completes first, but is answered after the first. */
	held_complete(1);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 0);
	held_complete(0);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);
	ck_assert_str_eq(accepted_cid(0), "m1");
	ck_assert_str_eq(accepted_cid(1), "m2");
	ck_assert_uint_lt(json_id(cap_nth(&A, "accepted", 0), "id"),
			  json_id(cap_nth(&A, "accepted", 1), "id"));

	/* What waited goes at the next turn. */
	turn(E, &H);
	ck_assert_int_eq(nheld, 1);
	held_complete(0);
	ck_assert_str_eq(accepted_cid(2), "m3");
	ck_assert_int_eq(vt_engine_idle(E), 1);
}
END_TEST

START_TEST(one_batch_in_flight_by_default)
{
	held_engine(0);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	send_msg(&A, "m2", "bob", "2");
	turn(E, &H);
	ck_assert_int_eq(nheld, 1);
	held_complete(0);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	turn(E, &H);
	ck_assert_int_eq(nheld, 1);
	held_complete(0);
	ck_assert_str_eq(accepted_cid(1), "m2");
}
END_TEST

/*
 * The expiry sweep sees connected devices again first. When a batch is in
 * flight, the sweep waits until the batch with those sightings is handed
 * over: storage applies calls in order.
 */
START_TEST(expiry_sweep_follows_its_touches)
{
	held_engine(1);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	advance(E, &H, 10);
	ck_assert_str_eq(calls, "c");
	held_complete(0);
	turn(E, &H);
	ck_assert_str_eq(calls, "cce");
	held_complete(0);
	ck_assert_int_eq(vt_engine_idle(E), 1);
}
END_TEST

/*
 * The acks in flight are known until their batch completes: an id acked in
 * two batches stays known until both have, and one that could not be
 * indexed is counted until its batch completes.
 */
START_TEST(acks_in_flight_are_forgotten_as_their_batches_complete)
{
	held_engine(2);
	send_ack(&A, 7);
	send_ack(&A, 8);
	turn(E, &H);
	send_ack(&A, 7);
	turn(E, &H);
	ck_assert_int_eq(nheld, 2);
	ck_assert_uint_eq(acking_count(E), 2); /* 7 (twice) and 8 */
	held_complete(0);
	ck_assert_uint_eq(acking_count(E), 1); /* 7, in the second batch */

	send_ack(&A, 9);
	acking_unindex(E); /* the ack of 7 in flight and this one */
	ck_assert_uint_eq(acking_count(E), 2);
	send_ack(&A, 9);
	ck_assert_uint_eq(acking_count(E), 3);
	held_complete(0);
	ck_assert_uint_eq(acking_count(E), 2);
	turn(E, &H);
	held_complete(0);
	ck_assert_uint_eq(acking_count(E), 0);
	ck_assert_int_eq(vt_engine_idle(E), 1);
}
END_TEST

/*
 * Destroyed with batches in flight: nothing is answered as accepted, and
 * the acks of the abandoned batches leave the index before it is freed.
 */
START_TEST(destroy_with_batches_in_flight)
{
	held_engine(2);
	send_msg(&A, "m1", "bob", "1");
	send_ack(&A, 7);
	turn(E, &H);
	acking_unindex(E);
	send_msg(&A, "m2", "bob", "2");
	send_ack(&A, 8);
	turn(E, &H);
	send_ack(&A, 9);
	ck_assert_uint_eq(acking_count(E), 3);
	ck_assert_int_eq(vt_engine_idle(E), 0);
	vt_engine_destroy(E);
	E = NULL;
	ck_assert_uint_eq(cap_count(&A, "accepted"), 0);
}
END_TEST

/* Alice sends @n messages to bob, m<start>, m<start + 1>, ... */
static void send_many(int start, int n)
{
	char cid[16];

	for (int i = start; i < start + n; i++) {
		snprintf(cid, sizeof(cid), "m%d", i);
		send_msg(&A, cid, "bob", "1");
	}
}

/*
 * An ack, a typing and a refused envelope are answered, or need no answer,
 * when taken: none of them is owed, however many come.
 */
static void send_unowed(int n)
{
	for (int i = 0; i < n; i++) {
		send_ack(&A, 1000000 + (uint64_t)i);
		send_raw(&A, "{\"v\":1,\"type\":\"typing\",\"to\":\"bob\"}");
		send_raw(&A, "{");
		send_raw(&A, "{\"type\":\"nope\"}");
	}
}

/*
 * A connection is busy while the engine owes it VT_CONN_OWED_MAX answers,
 * here because the commit that holds its messages has not completed.
 */
START_TEST(busy_while_many_answers_are_owed)
{
	struct vt_engine_config c = cfg_short();

	c.msgs_per_sec = 0;
	held_engine_with(&c);
	send_unowed(VT_CONN_OWED_MAX);
	ck_assert_uint_eq(cap_count(&A, "error"), 2 * VT_CONN_OWED_MAX + (VT_CONN_OWED_MAX - 5));
	ck_assert_int_eq(vt_conn_busy(A.conn), 0);

	send_many(0, VT_CONN_OWED_MAX - 1);
	ck_assert_int_eq(vt_conn_busy(A.conn), 0);
	send_many(VT_CONN_OWED_MAX - 1, 1);
	ck_assert_int_eq(vt_conn_busy(A.conn), 1);
	send_unowed(1);
	ck_assert_int_eq(vt_conn_busy(A.conn), 1);

	/* Answered: accepted, each of them, and nothing is owed any more. */
	turn(E, &H);
	ck_assert_int_eq(nheld, 1);
	ck_assert_int_eq(vt_conn_busy(A.conn), 1);
	held_complete(0);
	ck_assert_uint_eq(cap_count(&A, "accepted"), VT_CONN_OWED_MAX);
	ck_assert_int_eq(vt_conn_busy(A.conn), 0);
	send_many(VT_CONN_OWED_MAX, VT_CONN_OWED_MAX - 1);
	ck_assert_int_eq(vt_conn_busy(A.conn), 0);
	send_many(2 * VT_CONN_OWED_MAX - 1, 1);
	ck_assert_int_eq(vt_conn_busy(A.conn), 1);
}
END_TEST

/*
 * While a push waits for the connection's ack, it may owe more answers
 * before it is busy: reading on lets that ack in.
 */
START_TEST(busy_later_while_a_push_waits_for_its_ack)
{
	struct vt_engine_config c = cfg_short();
	uint64_t id;

	c.msgs_per_sec = 0;
	c.durability = VT_DURABLE_OFFLINE;
	held_engine_with(&c);
	connect_user(E, &H, "bob", &B);
	turn(E, &H);
	held_complete(0); /* bob's device */

	/* Held for alice, who keeps up: pushed once its dedup pair commits. */
	send_msg(&B, "b0", "alice", "1");
	turn(E, &H);
	held_complete(0);
	ck_assert_uint_eq(cap_count(&A, "message"), 1);
	id = json_id(cap_nth(&A, "message", 0), "id");

	send_many(0, VT_CONN_OWED_ACKING_MAX - 1);
	ck_assert_int_eq(vt_conn_busy(A.conn), 0);
	send_many(VT_CONN_OWED_ACKING_MAX - 1, 1);
	ck_assert_int_eq(vt_conn_busy(A.conn), 1);

	/* Acked: the lower bound again, and alice still owes more than it. */
	send_ack(&A, id);
	ck_assert_int_eq(vt_conn_busy(A.conn), 1);
	turn(E, &H);
	while (nheld > 0) {
		held_complete(0);
	}
	ck_assert_uint_eq(cap_count(&A, "accepted"), VT_CONN_OWED_ACKING_MAX);
	ck_assert_int_eq(vt_conn_busy(A.conn), 0);
	send_many(VT_CONN_OWED_ACKING_MAX, VT_CONN_OWED_MAX);
	ck_assert_int_eq(vt_conn_busy(A.conn), 1);
}
END_TEST

static Suite *engine_storage_suite(void)
{
	Suite *s = suite_create("engine_storage");
	TCase *t = tcase_create("core");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, full_storage_never_accepts_and_recovers);
	tcase_add_test(t, health_returns_when_storage_answers_again);
	tcase_add_test(t, failed_listing_waits_for_the_sweep);
	tcase_add_test(t, inline_commit_takes_its_time);
	tcase_add_test(t, next_batch_commits_while_one_is_in_flight);
	tcase_add_test(t, one_batch_in_flight_by_default);
	tcase_add_test(t, expiry_sweep_follows_its_touches);
	tcase_add_test(t, acks_in_flight_are_forgotten_as_their_batches_complete);
	tcase_add_test(t, destroy_with_batches_in_flight);
	tcase_add_test(t, busy_while_many_answers_are_owed);
	tcase_add_test(t, busy_later_while_a_push_waits_for_its_ack);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return run_suite(engine_storage_suite());
}
