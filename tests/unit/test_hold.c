/*
 * test_hold.c - mode "offline": what is held in memory, what is written, and
 * that nothing held is lost when a device goes or the server stops; group
 * posts, receipts, a clean stop and pushes before the commit. The fixture,
 * a recording store that notes every delivery a commit writes, is in
 * hold_store.c: each test checks what was NOT written as well as what
 * arrived.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "hold_store.h"
#include "receipts.h"
#include "util.h"

/* alice makes g:team with @members (a JSON array), and everyone acks the news. */
static void make_team(const char *members)
{
	char env[512];

	snprintf(env, sizeof(env),
		 "{\"type\":\"group_create\",\"id\":\"g1\",\"to\":\"g:team\","
		 "\"body\":{\"name\":\"Team\",\"members\":%s}}",
		 members);
	send_raw(&A, env);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	ack_all(&B);
	ack_all(&C);
	ack_all(&D);
	cap_clear(&B);
	cap_clear(&C);
	cap_clear(&D);
}

/* alice, bob and carol connected, in g:team together. */
static void online_team(void)
{
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	connect_user(E, &H, "carol", &C);
	make_team("[\"bob\",\"carol\"]");
}

/* ---- group messages ------------------------------------------------------ */

START_TEST(group_post_held_for_online_members_stored_for_offline)
{
	uint64_t id;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	connect_user(E, &H, "carol", &C);
	make_team("[\"bob\",\"carol\",\"dave\"]");

	send_msg(&A, "p1", "g:team", "\"hello\"");
	turn(E, &H);
	id = cap_nth_id(&A, "accepted", 1);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	ck_assert_uint_eq(cap_nth_id(&C, "message", 0), id);

	/* One record, with a delivery for dave alone (his holding inbox). */
	ck_assert_int_eq(written(NULL, id), 1);
	ck_assert_int_eq(written("dave/*", id), 1);

	/* dave gets it when he comes. */
	connect_user(E, &H, "dave", &D);
	ck_assert_uint_eq(cap_nth_id(&D, "message", 0), id);

	/* Acks of held copies end in memory; their receipt gathers, then goes. */
	ack_all(&B);
	ack_all(&C);
	ck_assert_uint_eq(cap_count(&B, "error"), 0);
	ck_assert_uint_eq(cap_count(&C, "error"), 0);
	advance(E, &H, VT_RECEIPT_GATHER_MS);
	ck_assert_uint_eq(delivered_refs(&A, NULL, 0), 1);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 0), "\"user\":\"carol\""));
}
END_TEST

START_TEST(group_post_to_members_all_online_writes_no_delivery)
{
	uint64_t id;

	online_team();

	send_msg(&A, "p1", "g:team", "1");
	turn(E, &H);
	id = cap_nth_id(&A, "accepted", 1);
	ck_assert_int_eq(written(NULL, id), 0);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(cap_count(&C, "message"), 1);

	/* The (from, cid) pair was written all the same: a re-send is known. */
	send_msg(&A, "p1", "g:team", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 2), id);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
}
END_TEST

/* A member who leaves with held posts un-acked gets them when back. */
START_TEST(member_disconnecting_gets_held_posts_after_reconnect)
{
	uint64_t id[3];

	online_team();
	for (int i = 0; i < 3; i++) {
		char cid[8];

		snprintf(cid, sizeof(cid), "p%d", i);
		send_msg(&A, cid, "g:team", "1");
	}
	turn(E, &H);
	for (int i = 0; i < 3; i++) {
		id[i] = cap_nth_id(&A, "accepted", (size_t)i + 1);
		ck_assert_int_eq(written(NULL, id[i]), 0);
	}
	ck_assert_uint_eq(cap_count(&B, "message"), 3);

	/* bob acks the first only, then drops: the other two are written for him. */
	send_ack(&B, id[0]);
	turn(E, &H);
	vt_conn_close(B.conn);
	turn(E, &H);
	ck_assert_int_eq(written("bob/", id[0]), 0);
	ck_assert_int_eq(written("bob/", id[1]), 1);
	ck_assert_int_eq(written("bob/", id[2]), 1);

	/* carol's copies stay held: the record written for bob is not hers. */
	ck_assert_int_eq(written("carol/", id[1]), 0);
	ack_all(&C);
	ck_assert_uint_eq(cap_count(&C, "error"), 0);
	advance(E, &H, VT_RECEIPT_GATHER_MS);
	ck_assert_uint_eq(delivered_refs(&A, NULL, 0), 3);

	cap_clear(&B);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 2);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id[1]);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 1), id[2]);
}
END_TEST

/*
 * One device of a user drops with held events, another keeps them: the
 * written copies are the first one's, so the second's acks still end in
 * memory, and what it was not pushed yet is written for it when it drops.
 */
START_TEST(each_device_keeps_its_own_held_copies)
{
	uint64_t first, last;

	connect_user(E, &H, "alice", &A);
	connect_device(E, &H, "bob", "phone", &B);
	connect_device(E, &H, "bob", "laptop", &B2);
	for (int i = 0; i < 6; i++) {
		char cid[8];

		snprintf(cid, sizeof(cid), "m%d", i);
		send_msg(&A, cid, "bob", "1");
	}
	turn(E, &H);
	first = cap_nth_id(&A, "accepted", 0);
	last = cap_nth_id(&A, "accepted", 5);
	ck_assert_uint_eq(cap_count(&B2, "message"), 4); /* the window */
	ck_assert_int_eq(written(NULL, first), 0);

	vt_conn_close(B.conn);
	turn(E, &H);
	ck_assert_int_eq(written("bob/phone", first), 1);
	ck_assert_int_eq(written("bob/laptop", first), 0);

	send_ack(&B2, first);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B2, "error"), 0);
	ck_assert_uint_eq(delivered_refs(&A, NULL, 0), 1);

	/* Five left on the laptop, one of them never pushed: all are written. */
	vt_conn_close(B2.conn);
	turn(E, &H);
	ck_assert_int_eq(written("bob/laptop", last), 1);
	cap_clear(&B2);
	connect_device(E, &H, "bob", "laptop", &B2);
	ack_all(&B2);
	ack_all(&B2);
	ck_assert_uint_eq(cap_count(&B2, "message"), 5);
	ck_assert_uint_eq(cap_nth_id(&B2, "message", 4), last);
}
END_TEST

/* Recipients are the members when the post was taken, in whatever order things commit. */
START_TEST(group_change_racing_a_post_keeps_the_post_recipients)
{
	uint64_t post;

	online_team();
	connect_user(E, &H, "dave", &D);

	/* The post's commit is kept back while carol goes and dave comes. */
	defer = 1;
	send_msg(&A, "p1", "g:team", "\"before\"");
	turn(E, &H);
	send_raw(&A, "{\"type\":\"group_update\",\"id\":\"g2\",\"to\":\"g:team\","
		     "\"body\":{\"remove\":[\"carol\"],\"add\":[\"dave\"]}}");
	turn(E, &H);
	ck_assert_int_eq(ndeferred, 2);
	release();

	post = cap_nth_id(&A, "accepted", 1);
	ck_assert_int_eq(written(NULL, post), 0);
	ck_assert_int_eq(count_with(&B, "\"before\""), 1);
	ck_assert_int_eq(count_with(&C, "\"before\""), 1);
	ck_assert_int_eq(count_with(&D, "\"before\""), 0);
	ck_assert_uint_eq(cap_count(&C, "group"), 1);
	ck_assert_uint_eq(cap_count(&D, "group"), 1);

	/* After the change, the other way round. */
	send_msg(&A, "p2", "g:team", "\"after\"");
	turn(E, &H);
	ck_assert_int_eq(count_with(&C, "\"after\""), 0);
	ck_assert_int_eq(count_with(&D, "\"after\""), 1);
}
END_TEST

/* A member who stops keeping up between the post and its commit is stored for. */
START_TEST(member_gone_before_the_commit_is_stored_for)
{
	uint64_t id;

	online_team();

	defer = 1;
	send_msg(&A, "p1", "g:team", "1");
	turn(E, &H);
	vt_conn_close(C.conn);
	release();
	id = cap_nth_id(&A, "accepted", 1);
	ck_assert_int_eq(written("bob/", id), 0);
	ck_assert_int_eq(written("carol/", id), 1);

	cap_clear(&C);
	connect_user(E, &H, "carol", &C);
	ck_assert_uint_eq(cap_nth_id(&C, "message", 0), id);
}
END_TEST


/*
 * A member held for at the post, but not at its commit, is stored for in
 * a later batch. A post after it, held again once the member keeps up, must
 * not be pushed ahead of it.
 */
START_TEST(post_stored_late_is_not_overtaken)
{
	online_team();
	send_msg(&A, "p0", "g:team", "\"p0\"");
	turn(E, &H);
	ck_assert_int_eq(count_with(&C, "\"p0\""), 1);

	defer = 1;
	send_msg(&A, "p1", "g:team", "\"p1\"");
	turn(E, &H);
	send_msg(&A, "p2", "g:team", "\"p2\"");
	turn(E, &H);
	ck_assert_int_eq(ndeferred, 2);

	/* carol's transport fills: the retry of p0 finds it full. */
	C.full = 1;
	advance(E, &H, 1000);
	release_one();               /* p1: carol does not keep up, stored for her */
	C.full = 0;
	vt_conn_writable(C.conn);    /* she does again before that commits */
	release();

	ck_assert_int_ge(first_with(&C, "\"p1\""), 0);
	ck_assert_int_lt(first_with(&C, "\"p1\""), first_with(&C, "\"p2\""));
	ck_assert_int_lt(first_with(&B, "\"p1\""), first_with(&B, "\"p2\""));
}
END_TEST

/* ---- who counts as keeping up -------------------------------------------- */

/* A device registered over REST, never connected, is stored for. */
START_TEST(device_registered_over_rest_is_not_skipped)
{
	struct vt_identity laptop = ident(&H, "bob");
	struct reply r = {0};
	uint64_t id;

	connect_user(E, &H, "alice", &A);
	connect_device(E, &H, "bob", "phone", &B);
	snprintf(laptop.device, sizeof(laptop.device), "laptop");
	vt_engine_fetch(E, &laptop, 0, 0, on_reply, &r);
	turn(E, &H);
	ck_assert_int_eq(r.calls, 1);

	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	id = cap_nth_id(&A, "accepted", 0);
	ck_assert_int_eq(written("bob/laptop", id), 1);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
}
END_TEST

/* The recipient held, the sender's other device (offline) stored for. */
START_TEST(sender_copies_stored_while_recipient_is_held)
{
	uint64_t id;

	connect_device(E, &H, "alice", "laptop", &A2);
	vt_conn_close(A2.conn);
	turn(E, &H);
	connect_device(E, &H, "alice", "phone", &A);
	connect_user(E, &H, "bob", &B);

	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	id = cap_nth_id(&A, "accepted", 0);
	ck_assert_int_eq(written("bob/", id), 0);
	ck_assert_int_eq(written("alice/laptop", id), 1);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
}
END_TEST

/* The sender's other device, held for at the send, drops before the commit. */
START_TEST(sender_device_gone_before_the_commit_is_stored_for)
{
	uint64_t id;

	connect_device(E, &H, "alice", "phone", &A);
	connect_device(E, &H, "alice", "laptop", &A2);
	connect_user(E, &H, "bob", &B);

	defer = 1;
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	vt_conn_close(A2.conn);
	release();
	id = cap_nth_id(&A, "accepted", 0);
	ck_assert_int_eq(written("bob/", id), 0);
	ck_assert_int_eq(written("alice/laptop", id), 1);
	ck_assert_int_eq(written("alice/phone", id), 0);

	cap_clear(&A2);
	connect_device(E, &H, "alice", "laptop", &A2);
	ck_assert_uint_eq(cap_nth_id(&A2, "message", 0), id);
}
END_TEST

/* ---- receipts ----------------------------------------------------------- */

/* bob tells alice he read her message @id, as client id @cid. */
static void send_read(const char *cid, uint64_t id)
{
	char env[160];

	snprintf(env, sizeof(env), "{\"type\":\"read\",\"id\":\"%s\",\"to\":\"alice\","
		 "\"ids\":[\"%llu\"]}", cid, (unsigned long long)id);
	send_raw(&B, env);
	turn(E, &H);
}

START_TEST(read_receipt_held_for_online_sender_stored_for_offline)
{
	uint64_t msg, r1, r2;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	msg = cap_nth_id(&B, "message", 0);

	send_read("r1", msg);
	r1 = cap_nth_id(&B, "accepted", 0);
	ck_assert_uint_eq(cap_nth_id(&A, "read", 0), r1);
	ck_assert_int_eq(written(NULL, r1), 0);
	send_ack(&A, r1);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "error"), 0);

	vt_conn_close(A.conn);
	turn(E, &H);
	send_read("r2", msg);
	r2 = cap_nth_id(&B, "accepted", 1);
	ck_assert_int_eq(written("alice/", r2), 1);
	cap_clear(&A);
	connect_user(E, &H, "alice", &A);
	ck_assert_uint_eq(cap_count(&A, "read"), 1);
	ck_assert_uint_eq(cap_nth_id(&A, "read", 0), r2);
}
END_TEST

START_TEST(delivered_receipt_held_for_online_sender_stored_for_offline)
{
	uint64_t m1, m2, r1, r2, refs[2];

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "m1", "bob", "1");
	send_msg(&A, "m2", "bob", "2");
	turn(E, &H);
	m1 = cap_nth_id(&B, "message", 0);
	m2 = cap_nth_id(&B, "message", 1);

	/* alice keeps up: her receipt is not written, and her ack ends it. */
	send_ack(&B, m1);
	turn(E, &H);
	r1 = cap_nth_id(&A, "delivered", 0);
	ck_assert_int_eq(written(NULL, r1), 0);
	send_ack(&A, r1);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "error"), 0);

	/* alice is away: the next is stored, and comes when she is back. */
	vt_conn_close(A.conn);
	turn(E, &H);
	send_ack(&B, m2);
	turn(E, &H);
	ck_assert_int_eq(written_kind(VT_KIND_DELIVERED), 1);
	cap_clear(&A);
	connect_user(E, &H, "alice", &A);
	r2 = cap_nth_id(&A, "delivered", 0);
	ck_assert_int_eq(written("alice/", r2), 1);
	ck_assert_uint_eq(delivered_refs(&A, refs, 2), 1);
	ck_assert_uint_eq(refs[0], m2);
}
END_TEST

/* A held receipt alice drops un-acked is written for her, and comes again. */
START_TEST(held_receipt_written_when_its_device_drops)
{
	uint64_t r;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	send_ack(&B, cap_nth_id(&B, "message", 0));
	turn(E, &H);
	r = cap_nth_id(&A, "delivered", 0);
	ck_assert_int_eq(written(NULL, r), 0);

	vt_conn_close(A.conn);
	turn(E, &H);
	ck_assert_int_eq(written("alice/", r), 1);
	cap_clear(&A);
	connect_user(E, &H, "alice", &A);
	ck_assert_uint_eq(cap_nth_id(&A, "delivered", 0), r);
}
END_TEST

/*
 * A held receipt is offered once what was taken before it completes: not
 * ahead of an older event for the same device still on its way to storage
 * (a message over REST, which is never held).
 */
START_TEST(held_receipt_does_not_pass_an_older_stored_event)
{
	struct vt_identity bob = ident(&H, "bob");
	const char *env = "{\"type\":\"message\",\"id\":\"x1\",\"to\":\"alice\","
			  "\"body\":\"over-rest\"}";
	struct reply r = {0};

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);

	defer = 1;
	vt_engine_submit(E, &bob, env, strlen(env), on_reply, &r);
	turn(E, &H);
	send_ack(&B, cap_nth_id(&B, "message", 0));
	turn(E, &H);
	ck_assert_int_eq(ndeferred, 1);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 0);
	release();

	ck_assert_int_eq(r.status, 0);
	ck_assert_int_ge(first_with(&A, "\"over-rest\""), 0);
	ck_assert_int_lt(first_with(&A, "\"over-rest\""), first_with(&A, "\"delivered\""));
	ck_assert_int_eq(written_kind(VT_KIND_DELIVERED), 0);
}
END_TEST

/* ---- a clean stop ----------------------------------------------------------- */

/* A group's receipt still gathering at a clean stop is written, and comes on return. */
START_TEST(shutdown_writes_gathering_group_receipts)
{
	uint64_t id, refs[2];

	online_team();
	send_msg(&A, "p1", "g:team", "1");
	turn(E, &H);
	id = cap_nth_id(&A, "accepted", 1);
	send_ack(&C, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 0);

	vt_engine_shutdown(E);
	turn(E, &H);
	ck_assert_int_eq(vt_engine_idle(E), 1);
	vt_engine_destroy(E);
	ck_assert_int_eq(written_kind(VT_KIND_DELIVERED), 1);

	start_engine();
	cap_clear(&A);
	connect_user(E, &H, "alice", &A);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_uint_eq(delivered_refs(&A, refs, 2), 1);
	ck_assert_uint_eq(refs[0], id);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 0), "\"from\":\"g:team\""));
}
END_TEST

START_TEST(shutdown_writes_held_posts_and_receipts)
{
	uint64_t id, receipt, refs[2];

	online_team();
	send_msg(&A, "p1", "g:team", "1");
	turn(E, &H);
	id = cap_nth_id(&A, "accepted", 1);
	ck_assert_int_eq(written(NULL, id), 0);
	send_ack(&C, id);
	turn(E, &H);
	advance(E, &H, VT_RECEIPT_GATHER_MS);
	receipt = cap_nth_id(&A, "delivered", 0);
	ck_assert_int_eq(written(NULL, receipt), 0);

	vt_engine_shutdown(E);
	turn(E, &H);
	ck_assert_int_eq(vt_engine_idle(E), 1);
	vt_engine_destroy(E);
	ck_assert_int_eq(written("bob/", id), 1);
	ck_assert_int_eq(written("carol/", id), 0);
	ck_assert_int_eq(written("alice/", receipt), 1);

	/* The same store, a new engine: bob gets the post, carol (who acked)
	 * does not, alice gets her receipt. */
	start_engine();
	cap_clear(&A);
	cap_clear(&B);
	cap_clear(&C);
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	connect_user(E, &H, "carol", &C);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	ck_assert_uint_eq(cap_count(&C, "message"), 0);
	ck_assert_int_eq(written_kind(VT_KIND_MESSAGE), 1);
	ck_assert_uint_eq(cap_nth_id(&A, "delivered", 0), receipt);
	ck_assert_uint_eq(delivered_refs(&A, refs, 2), 1);
	ck_assert_uint_eq(refs[0], id);
}
END_TEST


/* ---- pushed before the commit (a store that can peek at dedup) ---------- */


START_TEST(held_message_reaches_recipient_before_its_commit)
{
	uint64_t id;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);

	defer = 1;
	send_msg(&A, "m1", "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 0);
	id = cap_nth_id(&B, "message", 0);

	/* bob acks at once: the receipt still waits for "accepted". */
	ack_all(&B);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 0);
	release();
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(delivered_refs(&A, NULL, 0), 1);
	ck_assert_int_lt(first_with(&A, "\"accepted\""), first_with(&A, "\"delivered\""));
	ck_assert_int_eq(written(NULL, id), 0);
}
END_TEST

/*
 * bob's token has run out, and the sweep has not closed his connection yet:
 * the early offer of alice's message ends it, and his copy is written at
 * once, by an op that grows the batch's full array. The message goes on
 * from where the array moved to (AddressSanitizer saw the old one used).
 */
START_TEST(early_offer_that_ends_a_connection_moves_the_batch)
{
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	connect_user(E, &H, "carol", &C);
	B.conn->id.exp = H.wall / 1000 + 1;
	fill_batch_but_one(E, &C, "dave");
	H.wall += 2000;
	send_msg(&A, "m1", "bob", "\"hi\"");
	ck_assert_ptr_null(B.conn->user); /* closed by the offer */
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	ck_assert_int_eq(written("bob/", cap_nth_id(&A, "accepted", 0)), 1);
}
END_TEST

START_TEST(resend_of_a_committed_message_is_not_pushed_again)
{
	uint64_t id;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	id = cap_nth_id(&A, "accepted", 0);

	/* After a reconnect the client sends what it has no "accepted" for. */
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 1), id);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
}
END_TEST

START_TEST(resend_while_the_first_is_in_flight_is_not_pushed_again)
{
	uint64_t id;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);

	defer = 1;
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	release();
	id = cap_nth_id(&B, "message", 0);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 1), id);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
}
END_TEST

/*
 * A message stored for bob while his queue was full, still on its way to
 * storage when he catches up: the next one waits for it rather than
 * passing it.
 */
START_TEST(early_push_does_not_pass_an_older_stored_message)
{
	char cid[8], body[16];
	int i;

	hold_queue = 8;
	vt_engine_destroy(E);
	start_engine();
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);

	/* window 4, a held queue of 8: the 9th is stored for bob. */
	defer = 1;
	for (i = 0; i < 9; i++) {
		snprintf(cid, sizeof(cid), "m%d", i);
		snprintf(body, sizeof(body), "\"%s\"", cid);
		send_msg(&A, cid, "bob", body);
		turn(E, &H);
	}
	ck_assert_uint_eq(cap_count(&B, "message"), 4);
	ack_all(&B);
	ack_all(&B);
	ck_assert_uint_eq(cap_count(&B, "message"), 8);

	send_msg(&A, "m9", "bob", "\"m9\"");
	turn(E, &H);
	ck_assert_int_eq(first_with(&B, "\"m9\""), -1);
	release();
	ck_assert_int_ge(first_with(&B, "\"m8\""), 0);
	ck_assert_int_lt(first_with(&B, "\"m8\""), first_with(&B, "\"m9\""));
}
END_TEST

START_TEST(group_post_reaches_online_members_before_its_commit)
{
	uint64_t id;

	online_team();
	defer = 1;
	send_msg(&A, "p1", "g:team", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(cap_count(&C, "message"), 1);
	release();
	id = cap_nth_id(&A, "accepted", 1);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	ck_assert_int_eq(written(NULL, id), 0);
}
END_TEST

/* What holds with or without pushing before the commit. */
static void add_common(TCase *t)
{
	tcase_add_test(t, group_post_held_for_online_members_stored_for_offline);
	tcase_add_test(t, group_post_to_members_all_online_writes_no_delivery);
	tcase_add_test(t, member_disconnecting_gets_held_posts_after_reconnect);
	tcase_add_test(t, each_device_keeps_its_own_held_copies);
	tcase_add_test(t, group_change_racing_a_post_keeps_the_post_recipients);
	tcase_add_test(t, member_gone_before_the_commit_is_stored_for);
	tcase_add_test(t, post_stored_late_is_not_overtaken);
	tcase_add_test(t, device_registered_over_rest_is_not_skipped);
	tcase_add_test(t, sender_copies_stored_while_recipient_is_held);
	tcase_add_test(t, read_receipt_held_for_online_sender_stored_for_offline);
	tcase_add_test(t, sender_device_gone_before_the_commit_is_stored_for);
	tcase_add_test(t, delivered_receipt_held_for_online_sender_stored_for_offline);
	tcase_add_test(t, held_receipt_written_when_its_device_drops);
	tcase_add_test(t, held_receipt_does_not_pass_an_older_stored_event);
	tcase_add_test(t, shutdown_writes_held_posts_and_receipts);
	tcase_add_test(t, shutdown_writes_gathering_group_receipts);
}

static void add_early(TCase *t)
{
	tcase_add_test(t, held_message_reaches_recipient_before_its_commit);
	tcase_add_test(t, early_offer_that_ends_a_connection_moves_the_batch);
	tcase_add_test(t, resend_of_a_committed_message_is_not_pushed_again);
	tcase_add_test(t, resend_while_the_first_is_in_flight_is_not_pushed_again);
	tcase_add_test(t, early_push_does_not_pass_an_older_stored_message);
	tcase_add_test(t, group_post_reaches_online_members_before_its_commit);
}

int main(void)
{
	return run_suite(hold_suite_new("hold", add_common, add_early));
}
