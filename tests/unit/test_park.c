/*
 * test_park.c - mode "always" over LMDB with ack_wait_ms (--ack-wait): a
 * held one-to-one event is pushed when it is taken, and its PUT waits out of
 * the batches for its acks (park.c); a copy acked in time takes no journal
 * entry, one not acked in time does. Crashes lose nothing accepted, and an
 * id pushed before one is never handed out again. Events whose user has
 * something ahead in a batch ride on it, and keep their order.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "journal_store.h"

static void setup(void)
{
	journal_setup();
	vt_engine_destroy(E);
	ack_wait = 50;
	E = journal_engine_open();
}

/* The position of @c's @i-th frame of @type among all its frames. */
static size_t frame_at(const struct cap_conn *c, const char *type, size_t i)
{
	const char *f = cap_nth(c, type, i);

	ck_assert_ptr_nonnull(f);
	for (size_t k = 0; k < c->nframes; k++) {
		if (c->frames[k] == f) {
			return k;
		}
	}
	ck_abort_msg("frame not found");
	return 0;
}

/*
 * online(), and a first message, acked, with its receipt: the first event
 * after a start is journaled and pushed after its commit, which records
 * the ids the start skipped (early.c); the next ones are pushed early.
 */
static void online_warm(void)
{
	uint64_t id;

	online();
	id = send_one("c0");
	send_ack(&B, id);
	send_ack(&A2, id);
	turn(E, &H);
	send_ack(&A, cap_nth_id(&A, "delivered", 0));
	send_ack(&A2, cap_nth_id(&A2, "delivered", 0));
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 0);
	cap_clear(&A);
	cap_clear(&A2);
	cap_clear(&B);
}

/* alice sends @cid to bob: pushed to bob and her laptop at once, not accepted yet. */
static uint64_t send_waiting(const char *cid)
{
	size_t acc = cap_count(&A, "accepted"), n = cap_count(&B, "message");

	send_msg(&A, cid, "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), n + 1);
	ck_assert_uint_eq(cap_count(&A, "accepted"), acc);
	return cap_nth_id(&B, "message", n);
}

START_TEST(acked_in_time_takes_no_entry)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	ck_assert_uint_eq(cap_nth_id(&A2, "message", 0), id);
	ck_assert_uint_eq(E->stats.ack_waiting, 1);
	send_ack(&A2, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 0); /* bob owes his ack */
	send_ack(&B, id);
	turn(E, &H);

	/* Accepted under the id pushed, before the receipt; the receipt alone
	 * is journaled (held for alice's two devices). */
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_lt(frame_at(&A, "accepted", 0), frame_at(&A, "delivered", 0));
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
	ck_assert_uint_eq(E->stats.journal_open, 2);
	send_ack(&A, cap_nth_id(&A, "delivered", 0));
	send_ack(&A2, cap_nth_id(&A2, "delivered", 0));
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 0);

	/* Nothing was left to deliver again; the pair was written. */
	crash();
	ck_assert_uint_eq(stored("bob", "") + stored("alice", "laptop"), 0);
	online();
	send_msg(&A, "c1", "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
}
END_TEST

/* Copies not acked by the due time are journaled, and survive a crash. */
START_TEST(not_acked_in_time_journaled)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	advance(E, &H, 49);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 0);
	advance(E, &H, 1);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
	ck_assert_uint_eq(E->stats.journal_open, 2); /* bob's, the laptop's */

	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 1);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
}
END_TEST

/* The sender's laptop acks in time, bob does not: his copy alone is journaled. */
START_TEST(own_device_acked_in_time_bob_journaled)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	send_ack(&A2, id);
	advance(E, &H, 50);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(E->stats.journal_open, 1);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 0);
}
END_TEST

/* bob's ack makes a receipt: the PUT goes at once, the laptop's entry with it. */
START_TEST(recipient_ack_sends_the_put_at_once)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	send_ack(&B, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_lt(frame_at(&A, "accepted", 0), frame_at(&A, "delivered", 0));
	ck_assert_uint_eq(E->stats.journal_open, 1 + 2); /* the laptop's; the receipt's */
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
	ck_assert_uint_eq(stored("alice", "laptop"), 2); /* the message, the receipt */
}
END_TEST

/* A crash before the pair commits loses nothing accepted: nothing was. The
 * re-send is delivered again, under a new id with the same cid. */
START_TEST(crash_while_waiting_resend_delivered_again)
{
	char cid[16];
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	crash();
	ck_assert_uint_eq(stored("bob", "") + stored("alice", "laptop"), 0);
	online();
	send_msg(&A, "c1", "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_ne(cap_nth_id(&B, "message", 0), id);
	ck_assert_int_eq(json_field(cap_nth(&B, "message", 0), "cid", cid, sizeof(cid)), 0);
	ck_assert_str_eq(cid, "c1");
}
END_TEST

/* A re-send while the first waits: storage sees the first first, and answers
 * the re-send with its id; bob gets one copy. */
START_TEST(resent_while_waiting_is_a_duplicate)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	send_msg(&A, "c1", "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 1), id);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(E->stats.journal_open, 2); /* bob's, the laptop's */
}
END_TEST

/* bob goes while his copy waits: its entry, then his stored copy, then the
 * entry's release; the sender hears "accepted" with the first. */
START_TEST(device_gone_while_waiting_stored)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	vt_conn_close(B.conn);
	B.conn = NULL;
	turn(E, &H);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(stored("bob", ""), 1);
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 1); /* the laptop's copy */
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 1);
}
END_TEST

/* A REST ack of a waiting copy is answered once its release commits. */
START_TEST(rest_ack_while_waiting)
{
	struct vt_identity bob = ident(&H, "bob");
	struct reply r = {0};
	char ack[64];
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	snprintf(ack, sizeof(ack), "{\"ids\":[\"%llu\"]}", (unsigned long long)id);
	vt_engine_ack(E, &bob, ack, strlen(ack), on_reply, &r);
	ck_assert_int_eq(r.calls, 0);
	turn(E, &H);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_ptr_nonnull(strstr(r.body, "\"acked\":[\""));
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
	ck_assert_uint_eq(stored("alice", "laptop"), 2); /* the message, bob's receipt */
}
END_TEST

/* A clean stop writes what waits: each copy once. */
START_TEST(clean_stop_while_waiting)
{
	online_warm();
	send_waiting("c1");
	send_waiting("c2");
	send_ack(&B, cap_nth_id(&B, "message", 0));
	turn(E, &H);
	vt_engine_shutdown(E);
	for (int i = 0; i < 10 && !vt_engine_idle(E); i++) {
		turn(E, &H);
	}
	ck_assert(vt_engine_idle(E));
	ck_assert_uint_eq(E->stats.journal_open, 0);
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 3); /* two messages, bob's receipt */
}
END_TEST

/* A message to a user with a stored message on its way is not pushed past it. */
START_TEST(behind_a_stored_one_not_pushed_early)
{
	online_warm();
	vt_conn_close(B.conn);
	B.conn = NULL;
	send_msg(&A, "c1", "bob", "\"stored\"");
	connect_user(E, &H, "bob", &B);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
}
END_TEST

/*
 * A re-send of a committed message waits for its batch (storage decides it
 * is one). The next message, taken before that batch completes, rides
 * behind it: pushed once it completes, and still journaled only if not
 * acked in time.
 */
START_TEST(behind_an_unpushed_one_rides_then_waits)
{
	uint64_t id;

	online_warm();
	send_msg(&A, "c0", "bob", "\"again\"");
	send_msg(&A, "c1", "bob", "\"next\"");
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	ck_assert_uint_eq(E->stats.ack_waiting, 1);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	id = cap_nth_id(&B, "message", 0);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1); /* the re-send, a duplicate */
	ck_assert_uint_lt(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(E->stats.journal_open, 0);

	send_ack(&A2, cap_nth_id(&A2, "message", 0));
	send_ack(&B, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 1), id);
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
	ck_assert_uint_eq(E->stats.journal_open, 2); /* the receipt's */
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
}
END_TEST

/* bob goes before the batch his riding copy waits for completes: it is
 * stored for him, and accepted. */
START_TEST(riding_copy_of_a_device_gone_stored)
{
	online_warm();
	send_msg(&A, "c0", "bob", "\"again\"");
	send_msg(&A, "c1", "bob", "\"next\"");
	ck_assert_uint_eq(E->stats.ack_waiting, 1);
	vt_conn_close(B.conn);
	B.conn = NULL;
	turn(E, &H);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
	ck_assert_uint_eq(stored("bob", ""), 1);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), cap_nth_id(&A, "accepted", 1));
}
END_TEST

/* Are @c's messages in ascending id order? */
/* The ids of @c's frames of @type rise. */
static int ids_in_order(const struct cap_conn *c, const char *type)
{
	for (size_t i = 1; i < cap_count(c, type); i++) {
		if (cap_nth_id(c, type, i) <= cap_nth_id(c, type, i - 1)) {
			return 0;
		}
	}
	return 1;
}

/*
 * Two messages to bob ride behind the same unpushed one: alice's, then
 * carol's. alice's connection goes before that batch completes, so her
 * copy for her laptop can no longer be held, and her message goes to a
 * batch of its own; carol's, taken after it, must not reach bob first.
 */
START_TEST(riders_behind_one_that_cannot_be_held_keep_their_order)
{
	online_warm();
	connect_user(E, &H, "carol", &C);
	send_msg(&A, "c0", "bob", "\"again\"");
	send_msg(&A, "c1", "bob", "\"alice rides\"");
	send_msg(&C, "d1", "bob", "\"carol rides\"");
	ck_assert_uint_eq(E->stats.ack_waiting, 2);
	vt_conn_close(A.conn);
	A.conn = NULL;
	turn(E, &H);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 2);
	ck_assert_msg(ids_in_order(&B, "message"), "bob got %llu before %llu",
		      (unsigned long long)cap_nth_id(&B, "message", 0),
		      (unsigned long long)cap_nth_id(&B, "message", 1));
}
END_TEST

/*
 * bob acks the second of two waiting messages: its PUT goes to the batch
 * at once, and the first, still owed his ack, goes with it, ahead of it:
 * alice hears "accepted" in the order bob got them.
 */
START_TEST(later_acked_first_answers_keep_id_order)
{
	uint64_t id1, id2;

	online_warm();
	id1 = send_waiting("c1");
	id2 = send_waiting("c2");
	ck_assert_uint_eq(E->stats.ack_waiting, 2);
	send_ack(&B, id2);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id1);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 1), id2);
	ck_assert_uint_eq(E->stats.ack_waiting, 0);

	/* bob's copy of the first, not acked, has its entry. */
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
}
END_TEST

/*
 * A message that is not parked (carol is offline) goes to the batch behind
 * the ones its sender parked before it: "accepted" keeps the order of ids.
 */
START_TEST(unparked_one_goes_behind_the_waiting)
{
	uint64_t id1;

	online_warm();
	id1 = send_waiting("c1");
	send_msg(&A, "c2", "carol", "\"to storage\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id1);
	ck_assert(ids_in_order(&A, "accepted"));
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
}
END_TEST

/*
 * bob's token has run out, and the sweep has not closed his connection yet:
 * the offer of alice's message ends it, and his copy is written at once, by
 * an op that grows the batch's full array. The message goes on from where
 * the array moved to (AddressSanitizer saw the old one used before).
 */
START_TEST(offer_that_ends_a_connection_moves_the_batch)
{
	online_warm();
	connect_user(E, &H, "carol", &C);
	B.conn->id.exp = H.wall / 1000 + 1;
	fill_batch_but_one(E, &C, "dave");
	H.wall += 2000;
	send_msg(&A, "c1", "bob", "\"hi\"");
	ck_assert_ptr_null(B.conn->user); /* closed by the offer */
	turn(E, &H);
	advance(E, &H, 50);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
}
END_TEST

static Suite *park_suite(void)
{
	Suite *s = suite_create("park");
	TCase *t = tcase_create("ack_wait");

	tcase_add_checked_fixture(t, setup, journal_teardown);
	tcase_add_test(t, acked_in_time_takes_no_entry);
	tcase_add_test(t, not_acked_in_time_journaled);
	tcase_add_test(t, own_device_acked_in_time_bob_journaled);
	tcase_add_test(t, recipient_ack_sends_the_put_at_once);
	tcase_add_test(t, crash_while_waiting_resend_delivered_again);
	tcase_add_test(t, resent_while_waiting_is_a_duplicate);
	tcase_add_test(t, device_gone_while_waiting_stored);
	tcase_add_test(t, rest_ack_while_waiting);
	tcase_add_test(t, clean_stop_while_waiting);
	tcase_add_test(t, behind_a_stored_one_not_pushed_early);
	tcase_add_test(t, behind_an_unpushed_one_rides_then_waits);
	tcase_add_test(t, riding_copy_of_a_device_gone_stored);
	tcase_add_test(t, riders_behind_one_that_cannot_be_held_keep_their_order);
	tcase_add_test(t, later_acked_first_answers_keep_id_order);
	tcase_add_test(t, unparked_one_goes_behind_the_waiting);
	tcase_add_test(t, offer_that_ends_a_connection_moves_the_batch);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return run_suite(park_suite());
}
