/*
 * test_journal.c - mode "always" over LMDB: events held in memory for
 * devices that keep up, journaled before they are pushed, released once
 * acked or stored, and delivered from the journal after a crash. A crash is
 * an engine destroyed without a clean stop, its store opened again by a new
 * one (journal_store.c). test_park.c has the same with --ack-wait.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "journal_store.h"

START_TEST(held_journaled_then_released_by_acks)
{
	uint64_t id;

	online();
	id = send_one("c1");
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	ck_assert_uint_eq(cap_nth_id(&A2, "message", 0), id);
	ck_assert_uint_eq(stored("bob", "") + stored("alice", "laptop"), 0);
	ck_assert_uint_eq(E->stats.journal_open, 2); /* bob's copy, the laptop's */

	send_ack(&B, id);
	turn(E, &H);
	/* alice's laptop owes its ack; bob's receipt is held for alice's two
	 * devices, journaled */
	ck_assert_uint_eq(E->stats.journal_open, 3);
	ck_assert_uint_eq(stored("alice", ""), 0);
	send_ack(&A2, id);
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 2);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_uint_eq(cap_count(&A2, "delivered"), 1);
	send_ack(&A, cap_nth_id(&A, "delivered", 0));
	send_ack(&A2, cap_nth_id(&A2, "delivered", 0));
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 0);

	/* All released: nothing comes twice. */
	crash();
	connect_user(E, &H, "bob", &B);
	connect_device(E, &H, "alice", "", &A);
	connect_device(E, &H, "alice", "laptop", &A2);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	ck_assert_uint_eq(cap_count(&A2, "message"), 0);
	ck_assert_uint_eq(cap_count(&A, "delivered") + cap_count(&A2, "delivered"), 0);
}
END_TEST

/* A receipt held for the sender's devices, journaled, survives a crash. */
START_TEST(crash_delivers_a_held_receipt)
{
	uint64_t id, ids[4];

	online();
	id = send_one("c1");
	send_ack(&B, id);
	send_ack(&A2, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_uint_eq(stored("alice", ""), 0);
	crash();
	ck_assert_uint_eq(stored("alice", ""), 1);
	connect_device(E, &H, "alice", "", &A);
	ck_assert_uint_eq(delivered_refs(&A, ids, 4), 1);
	ck_assert_uint_eq(ids[0], id);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
}
END_TEST

START_TEST(crash_delivers_what_was_held)
{
	uint64_t id;

	online();
	id = send_one("c1");
	ck_assert_uint_eq(stored("bob", ""), 0);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 1);
	ck_assert_uint_eq(stored("alice", ""), 0);

	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	send_ack(&B, id);
	turn(E, &H);
	connect_device(E, &H, "alice", "", &A);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);

	/* New ids stay above what the journal held. */
	connect_device(E, &H, "alice", "laptop", &A2);
	cap_clear(&A);
	ck_assert_uint_gt(send_one("c2"), id);
}
END_TEST

START_TEST(device_gone_stores_then_releases)
{
	uint64_t id;

	online();
	id = send_one("c1");
	vt_conn_close(B.conn);
	B.conn = NULL;
	turn(E, &H);
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(E->stats.journal_open, 1); /* the laptop's copy */
	send_ack(&A2, id);
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 0);

	/* Stored once: the released entry adds no second delivery. */
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 0);
}
END_TEST

/*
 * Bob's copy is written as he goes, and a REST ack of it commits with that
 * write, before its entry's release: the answered ack must not come back.
 */
START_TEST(rest_ack_of_a_copy_written_as_its_device_goes)
{
	struct vt_identity bob = ident(&H, "bob");
	struct reply r = {0};
	char ack[64];
	uint64_t id;

	online();
	id = send_one("c1");
	vt_conn_close(B.conn);
	B.conn = NULL;
	snprintf(ack, sizeof(ack), "{\"ids\":[\"%llu\"]}", (unsigned long long)id);
	vt_engine_ack(E, &bob, ack, strlen(ack), on_reply, &r);
	H.flush_wanted = 0;
	vt_engine_flush(E); /* one commit: the write and the ack */
	ck_assert_int_eq(r.calls, 1);
	ck_assert_ptr_nonnull(strstr(r.body, "\"acked\":[\""));

	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
}
END_TEST

/*
 * Bob connects again while his copy is held: the old connection's copy is
 * written, and the new one acks at once what the old one was pushed. The
 * ack commits with that write, before its entry's release.
 */
START_TEST(ack_on_a_new_connection_of_a_copy_held_for_the_old)
{
	static struct cap_conn B2;
	struct vt_identity bob = ident(&H, "bob");
	uint64_t id;

	online();
	id = send_one("c1");
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	memset(&B2, 0, sizeof(B2));
	ck_assert_int_eq(vt_conn_open(E, &bob, &cap_ops, &B2, &B2.conn), 0);
	send_ack(&B2, id);
	H.flush_wanted = 0;
	vt_engine_flush(E); /* one commit: the write and the ack */
	ck_assert_uint_eq(cap_count(&B2, "error"), 0);

	vt_conn_close(B2.conn);
	cap_free(&B2);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
}
END_TEST

/* bob's laptop registers in the commit of a message held for his phone. */
START_TEST(device_registered_with_the_commit_gets_nothing)
{
	static struct cap_conn L;
	struct vt_identity laptop = ident(&H, "bob");

	online();
	send_msg(&A, "c1", "bob", "\"hi\"");
	vt__copy(laptop.device, sizeof(laptop.device), "laptop");
	memset(&L, 0, sizeof(L));
	ck_assert_int_eq(vt_conn_open(E, &laptop, &cap_ops, &L, &L.conn), 0);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	ck_assert_uint_eq(stored("bob", "laptop"), 0);
	ck_assert_uint_eq(cap_count(&L, "message"), 0);
	vt_conn_close(L.conn);
	cap_free(&L);
}
END_TEST

/* alice sends a message of 20 kB to carol, who has no device. */
static void send_big(int i)
{
	static char body[20001], json[20100];

	memset(body, 'x', sizeof(body) - 1);
	snprintf(json, sizeof(json), "{\"v\":1,\"type\":\"message\",\"id\":\"big-%d\","
		 "\"to\":\"carol\",\"body\":\"%s\"}", i, body);
	send_raw(&A, json);
}

/* alice sends to carol until the store is full. */
static void fill_store(void)
{
	size_t n = cap_count(&A, "accepted");

	for (int i = 0; i < 1000; i++) {
		send_big(i);
		turn(E, &H);
		if (cap_count(&A, "accepted") == n + (size_t)i) {
			return;
		}
	}
	ck_abort_msg("the store never filled");
}

/*
 * On a store of 1 MiB, alice's message held for bob (the id), then the
 * store filled.
 */
static uint64_t held_then_full(void)
{
	uint64_t id;

	vt_engine_destroy(E);
	map_size = 1 << 20;
	E = journal_engine_open();
	online();
	id = send_one("c1");
	fill_store();
	return id;
}

/*
 * A full store refuses what would grow it op by op, and takes the rest of
 * the commit. Bob's copy, written as he goes, shares a commit with a
 * refused message, and is written all the same: the journal keeps the room
 * its write takes. Once, also after a crash.
 */
START_TEST(device_gone_on_full_store_gets_its_copy_written)
{
	uint64_t id, open;

	id = held_then_full();
	open = E->stats.journal_open; /* the laptop's copies too */
	send_big(1000);
	vt_conn_close(B.conn);
	B.conn = NULL;
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "error"), 2);
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(E->stats.journal_open, open - 1);
	ck_assert_uint_eq(E->nunwritten, 0);

	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
}
END_TEST

/* bob goes while the store refuses his copy's write: it is kept to write again. */
static void bob_gone_with_a_refused_write(void)
{
	refuse_to = "bob";
	vt_conn_close(B.conn);
	B.conn = NULL;
	cap_free(&B);
	turn(E, &H);
	ck_assert_uint_eq(stored("bob", ""), 0);
	ck_assert_uint_eq(E->nunwritten, 1);
}

/*
 * A refused copy is written again each second until the store takes it,
 * with no restart: bob, offline, finds it stored, and its entry goes.
 */
START_TEST(refused_copy_written_again)
{
	uint64_t id, open;

	online();
	id = send_one("c1");
	send_ack(&A2, cap_nth_id(&A2, "message", 0));
	turn(E, &H);
	open = E->stats.journal_open;
	ck_assert_uint_eq(open, 1);
	bob_gone_with_a_refused_write();
	advance(E, &H, 3500);
	ck_assert_uint_eq(stored("bob", ""), 0);
	ck_assert_uint_eq(E->nunwritten, 1);
	ck_assert_uint_eq(E->stats.journal_open, open);

	refuse_to = NULL;
	advance(E, &H, 1100);
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(E->stats.journal_open, open - 1);
	ck_assert_uint_eq(E->nunwritten, 0);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
}
END_TEST

/* bob is back before his refused copy is written again: it is pushed once it is. */
START_TEST(refused_copy_pushed_to_its_device_back_online)
{
	uint64_t id;

	online();
	id = send_one("c1");
	bob_gone_with_a_refused_write();
	connect_user(E, &H, "bob", &B);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);

	refuse_to = NULL;
	advance(E, &H, 1100);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	send_ack(&B, id);
	turn(E, &H);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
}
END_TEST

/*
 * bob is back, and the store takes writes again, before his refused copy
 * is written again: a message alice sends him then is not pushed ahead of it.
 */
START_TEST(refused_copy_pushed_before_later_messages)
{
	uint64_t ids[2];

	online();
	ids[0] = send_one("c1");
	bob_gone_with_a_refused_write();
	refuse_to = NULL;
	connect_user(E, &H, "bob", &B);
	turn(E, &H);
	ids[1] = send_one("c2");
	advance(E, &H, 1100);
	ck_assert_uint_eq(E->nunwritten, 0);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), ids[0]);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 1), ids[1]);
	ck_assert_uint_eq(cap_count(&B, "message"), 2);
	send_ack(&B, ids[0]);
	send_ack(&B, ids[1]);
	turn(E, &H);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
}
END_TEST

START_TEST(retries_out_store_then_release)
{
	online();
	send_one("c1");
	send_ack(&A2, cap_nth_id(&A2, "message", 0));
	advance(E, &H, 10000); /* bob never acks: offline after the retry */
	ck_assert_uint_eq(E->stats.journal_open, 0);
	ck_assert_uint_eq(stored("bob", ""), 1);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
}
END_TEST

START_TEST(clean_stop_stores_then_releases)
{
	online();
	send_one("c1");
	send_one("c2");
	vt_engine_shutdown(E);
	for (int i = 0; i < 10 && !vt_engine_idle(E); i++) {
		turn(E, &H);
	}
	ck_assert(vt_engine_idle(E));
	ck_assert_uint_eq(E->stats.journal_open, 0);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 2);
	ck_assert_uint_eq(stored("alice", "laptop"), 2);
}
END_TEST

/* alice makes g:t with bob and posts to it; the post's id. */
static uint64_t group_post(void)
{
	send_raw(&A, "{\"type\":\"group_create\",\"id\":\"g1\",\"to\":\"g:t\","
		     "\"body\":{\"name\":\"T\",\"members\":[\"bob\"]}}");
	turn(E, &H);
	send_msg(&A, "p1", "g:t", "\"all\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	return cap_nth_id(&B, "message", 0);
}

/*
 * A group post is held and journaled like a message to one user; a
 * member's ack is released with the group's receipt, which gathers for a
 * while, not before it.
 */
START_TEST(group_post_held_and_released_with_its_receipt)
{
	uint64_t id, ids[4];

	online();
	id = group_post();
	ck_assert_uint_eq(cap_nth_id(&A2, "message", 0), id);
	ck_assert_uint_eq(E->stats.journal_open, 2); /* bob's copy, the laptop's */
	ck_assert_uint_eq(stored("bob", ""), 1);     /* the group's news alone */

	send_ack(&B, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 0);
	ck_assert_uint_eq(E->stats.journal_open, 2);
	advance(E, &H, VT_RECEIPT_GATHER_MS + 10);
	ck_assert_uint_eq(delivered_refs(&A, ids, 4), 1);
	ck_assert_uint_eq(ids[0], id);
	/* bob's entry released; the receipt held for alice's two devices */
	ck_assert_uint_eq(E->stats.journal_open, 3);

	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	/* the group's news, the post, the receipt */
	ck_assert_uint_eq(stored("alice", "laptop"), 3);
	connect_device(E, &H, "alice", "", &A);
	ck_assert_uint_eq(delivered_refs(&A, ids, 4), 1);
	ck_assert_uint_eq(ids[0], id);
}
END_TEST

/*
 * A crash while the receipt gathers delivers the acked copy once more; its
 * ack then makes the receipt, which is not lost.
 */
START_TEST(crash_before_a_group_receipt_delivers_again)
{
	uint64_t id, ids[4];

	online();
	id = group_post();
	send_ack(&B, id);
	turn(E, &H);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 2);

	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	send_ack(&B, id);
	turn(E, &H);
	advance(E, &H, VT_RECEIPT_GATHER_MS + 10);
	connect_device(E, &H, "alice", "", &A);
	ck_assert_uint_eq(delivered_refs(&A, ids, 4), 1);
	ck_assert_uint_eq(ids[0], id);
}
END_TEST

/*
 * A POST /v1/ack of a held group copy is answered once its release commits:
 * the receipt goes in the same commit, without gathering.
 */
START_TEST(rest_ack_of_a_group_copy_sends_the_receipt_at_once)
{
	struct vt_identity bob = ident(&H, "bob");
	struct reply r = {0};
	uint64_t id, ids[4];
	char ack[64];

	online();
	id = group_post();
	snprintf(ack, sizeof(ack), "{\"ids\":[\"%llu\"]}", (unsigned long long)id);
	vt_engine_ack(E, &bob, ack, strlen(ack), on_reply, &r);
	turn(E, &H);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_ptr_nonnull(strstr(r.body, "\"acked\":[\""));
	ck_assert_uint_eq(delivered_refs(&A, ids, 4), 1);
	ck_assert_uint_eq(ids[0], id);

	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", ""), 1); /* the receipt */
}
END_TEST

/* The sender's own device's ack makes no receipt: released at once. */
START_TEST(own_device_ack_of_a_group_post_released_at_once)
{
	uint64_t id;

	online();
	id = group_post();
	send_ack(&A2, id);
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 1); /* bob's copy */
	crash();
	ck_assert_uint_eq(stored("alice", "laptop"), 1); /* the group's news */
	ck_assert_uint_eq(stored("bob", ""), 2);
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *t = tcase_create("always");

	tcase_add_checked_fixture(t, journal_setup, journal_teardown);
	tcase_add_test(t, held_journaled_then_released_by_acks);
	tcase_add_test(t, crash_delivers_what_was_held);
	tcase_add_test(t, crash_delivers_a_held_receipt);
	tcase_add_test(t, device_gone_stores_then_releases);
	tcase_add_test(t, rest_ack_of_a_copy_written_as_its_device_goes);
	tcase_add_test(t, ack_on_a_new_connection_of_a_copy_held_for_the_old);
	tcase_add_test(t, device_registered_with_the_commit_gets_nothing);
	tcase_add_test(t, device_gone_on_full_store_gets_its_copy_written);
	tcase_add_test(t, refused_copy_written_again);
	tcase_add_test(t, refused_copy_pushed_to_its_device_back_online);
	tcase_add_test(t, refused_copy_pushed_before_later_messages);
	tcase_add_test(t, retries_out_store_then_release);
	tcase_add_test(t, clean_stop_stores_then_releases);
	tcase_add_test(t, group_post_held_and_released_with_its_receipt);
	tcase_add_test(t, crash_before_a_group_receipt_delivers_again);
	tcase_add_test(t, rest_ack_of_a_group_copy_sends_the_receipt_at_once);
	tcase_add_test(t, own_device_ack_of_a_group_post_released_at_once);
	suite_add_tcase(s, t);

	return s;
}

int main(void)
{
	return run_suite(journal_suite());
}
