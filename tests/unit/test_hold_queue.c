/*
 * test_hold_queue.c - mode "offline": how many events a device's queue and
 * the server's memory hold before the rest is written, and that events keep
 * their order and their bytes are given back whichever way they leave.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "hold_store.h"
#include "util.h"

/* ---- how deep a device's held queue may get ------------------------------ */

static uint64_t held_bytes(void)
{
	struct vt_engine_stats s;

	vt_engine_stats(E, &s);
	return s.held_bytes;
}

/* alice sends bob @n messages with bodies of @body_len bytes; their ids into @ids. */
static void send_many(int n, size_t body_len, uint64_t *ids)
{
	char body[3072], cid[16];

	ck_assert_uint_lt(body_len + 3, sizeof(body));
	body[0] = '"';
	memset(body + 1, 'x', body_len);
	memcpy(body + 1 + body_len, "\"", 2);
	for (int i = 0; i < n; i++) {
		snprintf(cid, sizeof(cid), "m%d", i);
		send_msg(&A, cid, "bob", body);
	}
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), (size_t)n);
	for (int i = 0; i < n; i++) {
		ids[i] = cap_nth_id(&A, "accepted", (size_t)i);
	}
}

/* alice and bob connect, and alice sends bob @n messages as send_many() does. */
static void alice_sends_bob(int n, size_t body_len, uint64_t *ids)
{
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_many(n, body_len, ids);
}

/*
 * bob acks until he has @n messages (at most 100 rounds), and they came in
 * @ids' order; alice acks her receipts, also held, so nothing stays held.
 */
static void bob_takes_all(int n, const uint64_t *ids)
{
	for (int round = 0; cap_count(&B, "message") < (size_t)n && round < 100; round++) {
		ack_all(&B);
	}
	ack_all(&B);
	for (int round = 0; held_bytes() > 0 && round < 100; round++) {
		ack_all(&A);
	}
	ck_assert_uint_eq(cap_count(&B, "message"), (size_t)n);
	for (int i = 0; i < n; i++) {
		ck_assert_uint_eq(cap_nth_id(&B, "message", (size_t)i), ids[i]);
	}
	ck_assert_uint_eq(held_bytes(), 0);
}

START_TEST(held_queue_is_deeper_than_the_window)
{
	uint64_t ids[40];

	alice_sends_bob(40, 10, ids);

	/* Four pushed (the window), the other 36 wait in memory: none written. */
	ck_assert_uint_eq(cap_count(&B, "message"), 4);
	for (int i = 0; i < 40; i++) {
		ck_assert_int_eq(written(NULL, ids[i]), 0);
	}
	ck_assert_uint_gt(held_bytes(), 40 * 10);
	bob_takes_all(40, ids);
	ck_assert_int_eq(written_kind(VT_KIND_MESSAGE), 0);
}
END_TEST

START_TEST(held_queue_full_writes_the_rest)
{
	uint64_t ids[20];

	hold_queue = 6;
	vt_engine_destroy(E);
	start_engine();
	alice_sends_bob(20, 10, ids);

	/* Six held, the rest written for bob's device, and all arrive in order. */
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(written("bob/", ids[i]), i >= 6);
	}
	bob_takes_all(20, ids);
}
END_TEST

START_TEST(hold_memory_full_writes_the_rest)
{
	uint64_t ids[30];
	int nwritten = 0;

	hold_memory = 65536;
	vt_engine_destroy(E);
	start_engine();
	alice_sends_bob(30, 3000, ids);

	/* Held while it fits under the bound, then written; each held
	 * message counts at least its body twice. */
	ck_assert_uint_le(held_bytes(), 65536);
	for (int i = 0; i < 30; i++) {
		int w = written("bob/", ids[i]);

		ck_assert(w == 0 || i >= 5);
		nwritten += w;
	}
	ck_assert_int_ge(nwritten, 30 - 65536 / (2 * 3002) - 1);
	ck_assert_int_le(nwritten, 30 - 5);
	bob_takes_all(30, ids);
}
END_TEST

START_TEST(held_bytes_return_when_the_device_goes)
{
	uint64_t ids[12];

	alice_sends_bob(12, 100, ids);
	ck_assert_uint_gt(held_bytes(), 0);

	/* Every held message is written as bob goes, and the memory is free. */
	vt_conn_close(B.conn);
	B.conn = NULL;
	turn(E, &H);
	ck_assert_uint_eq(held_bytes(), 0);
	for (int i = 0; i < 12; i++) {
		ck_assert_int_eq(written("bob/", ids[i]), 1);
	}
}
END_TEST

/*
 * bob's m1 is held at its take; before its commit carol's messages fill the
 * held memory, so m1 is stored late and m2, taken meanwhile, stored at
 * once. m2 must not reach bob ahead of m1.
 */
START_TEST(held_memory_filling_before_a_commit_keeps_order)
{
	char body[3072], m1[2080], m2[2080], cid[8]; /* m1, m2: "m1" before the last 2000 bytes */

	hold_memory = 65536;
	vt_engine_destroy(E);
	start_engine();
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	connect_user(E, &H, "carol", &C);
	body[0] = '"';
	memset(body + 1, 'x', 3000);
	memcpy(body + 3001, "\"", 2);
	snprintf(m1, sizeof(m1), "\"m1%s", body + 1002);
	snprintf(m2, sizeof(m2), "\"m2%s", body + 1002);

	defer = 1;
	for (int i = 0; i < 12; i++) {
		snprintf(cid, sizeof(cid), "c%d", i);
		send_msg(&A, cid, "carol", body);
	}
	turn(E, &H);
	send_msg(&A, "m1", "bob", m1);
	turn(E, &H);
	ck_assert_int_eq(ndeferred, 2);
	release_one();               /* carol's: no room left for bob's */
	ck_assert_uint_gt(held_bytes() + vt__held_cost(strlen(m2)), 65536);
	send_msg(&A, "m2", "bob", m2);
	turn(E, &H);
	release();
	ack_all(&B);
	ack_all(&B);

	ck_assert_int_ge(first_with(&B, "\"m1x"), 0);
	ck_assert_int_lt(first_with(&B, "\"m1x"), first_with(&B, "\"m2x"));
}
END_TEST

/*
 * bob, not acking, has 40 messages held: 4 pushed, 36 waiting. An ack of one
 * waiting past twice the window, whose id he has not seen, is unknown: an
 * ack does not walk the whole queue. The message still comes, in order.
 */
START_TEST(ack_looks_no_deeper_than_twice_the_window)
{
	uint64_t ids[40];

	alice_sends_bob(40, 10, ids);
	ck_assert_uint_eq(cap_count(&B, "message"), 4);

	send_ack(&B, ids[30]);
	turn(E, &H);
	ck_assert_int_eq(count_with(&B, "unknown_id"), 1);
	bob_takes_all(40, ids);
}
END_TEST

/*
 * bob has two devices: a message held for him is two copies. Each is held
 * only while both copies fit: the bound is not passed by all of a user's
 * copies at once.
 */
START_TEST(hold_memory_counts_every_copy_before_holding)
{
	uint64_t ids[30];

	hold_memory = 65536;
	vt_engine_destroy(E);
	start_engine();
	connect_user(E, &H, "alice", &A);
	connect_device(E, &H, "bob", "phone", &B);
	connect_device(E, &H, "bob", "laptop", &B2);
	send_many(30, 3000, ids);

	ck_assert_uint_le(held_bytes(), 65536);
	ck_assert_uint_gt(held_bytes(), 65536 - 2 * (2 * 3002 + 1024));
	ck_assert_int_eq(written("bob/phone", ids[0]), 0);
	ck_assert_int_eq(written("bob/phone", ids[29]), 1);
}
END_TEST

static void add_all(TCase *t)
{
	tcase_add_test(t, held_queue_is_deeper_than_the_window);
	tcase_add_test(t, held_queue_full_writes_the_rest);
	tcase_add_test(t, hold_memory_full_writes_the_rest);
	tcase_add_test(t, held_bytes_return_when_the_device_goes);
	tcase_add_test(t, held_memory_filling_before_a_commit_keeps_order);
	tcase_add_test(t, ack_looks_no_deeper_than_twice_the_window);
	tcase_add_test(t, hold_memory_counts_every_copy_before_holding);
}

int main(void)
{
	return run_suite(hold_suite_new("hold_queue", add_all, NULL));
}
