/*
 * test_engine.c - the delivery engine on the memory backend and a fake
 * clock: delivery, acks, retries, the offline store, tokens, bad input, the
 * REST calls, mode offline and the transport's pace. Rate limits are in
 * test_engine_rate.c, storage that fails or holds its batches in
 * test_engine_storage.c.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"

START_TEST(online_ack_gives_accepted_then_delivered)
{
	uint64_t id;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "c-1", "bob", "\"hi\"");

	/* Nothing is promised before the batch commits. */
	ck_assert_uint_eq(cap_count(&A, "accepted"), 0);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);

	id = json_id(cap_nth(&B, "message", 0), "id");
	ck_assert_uint_eq(id, json_id(cap_nth(&A, "accepted", 0), "id"));
	ck_assert_ptr_nonnull(strstr(cap_nth(&B, "message", 0), "\"from\":\"alice\""));
	ck_assert_ptr_nonnull(strstr(cap_nth(&B, "message", 0), "\"body\":\"hi\""));

	send_ack(&B, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 0), "\"cid\":\"c-1\""));
}
END_TEST

START_TEST(from_is_never_the_clients)
{
	static const char forged[] = "{\"type\":\"message\",\"id\":\"x\",\"to\":\"bob\","
				     "\"from\":\"mallory\",\"body\":1}";

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	vt_conn_receive(A.conn, forged, strlen(forged));
	turn(E, &H);
	ck_assert_ptr_nonnull(strstr(cap_nth(&B, "message", 0), "\"from\":\"alice\""));
	ck_assert_ptr_null(strstr(cap_nth(&B, "message", 0), "mallory"));
}
END_TEST

START_TEST(unacked_is_retried_with_backoff_then_offline)
{
	uint64_t id;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "c-1", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	id = json_id(cap_nth(&B, "message", 0), "id");

	advance(E, &H, 999);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	advance(E, &H, 1);
	ck_assert_uint_eq(cap_count(&B, "message"), 2);
	advance(E, &H, 1999);
	ck_assert_uint_eq(cap_count(&B, "message"), 2);
	advance(E, &H, 1);
	ck_assert_uint_eq(cap_count(&B, "message"), 3);
	advance(E, &H, 10000);
	ck_assert_uint_eq(cap_count(&B, "message"), 3);
	ck_assert_uint_eq(json_id(cap_nth(&B, "message", 2), "id"), id);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 0);

	/* Offline now: the next connection gets it again. */
	vt_conn_close(B.conn);
	cap_clear(&B);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(json_id(cap_nth(&B, "message", 0), "id"), id);
}
END_TEST

START_TEST(late_ack_deletes_the_stored_copy)
{
	uint64_t id;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "c-1", "bob", "1");
	turn(E, &H);
	id = json_id(cap_nth(&B, "message", 0), "id");
	advance(E, &H, 20000);

	send_ack(&B, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);

	vt_conn_close(B.conn);
	cap_clear(&B);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
}
END_TEST

START_TEST(offline_then_connect_in_order)
{
	uint64_t refs[10];
	char cid[16];

	connect_user(E, &H, "alice", &A);
	for (int i = 0; i < 10; i++) {
		snprintf(cid, sizeof(cid), "m%d", i);
		send_msg(&A, cid, "bob", "0");
	}
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 10);

	connect_user(E, &H, "bob", &B);
	/* window is 4 */
	ck_assert_uint_eq(cap_count(&B, "message"), 4);
	for (int round = 0; round < 10; round++) {
		size_t n = cap_count(&B, "message");
		size_t d = cap_count(&A, "delivered");

		for (size_t i = 0; i < n; i++) {
			send_ack(&B, json_id(cap_nth(&B, "message", i), "id"));
		}
		for (size_t i = 0; i < d; i++) {
			send_ack(&A, json_id(cap_nth(&A, "delivered", i), "id"));
		}
		turn(E, &H);
	}
	ck_assert_uint_eq(cap_count(&B, "message"), 10);
	for (int i = 0; i < 10; i++) {
		char want[16];

		snprintf(want, sizeof(want), "m%d", i);
		json_field(cap_nth(&B, "message", (size_t)i), "cid", cid, sizeof(cid));
		ck_assert_str_eq(cid, want);
		if (i > 0) {
			ck_assert_uint_gt(json_id(cap_nth(&B, "message", (size_t)i), "id"),
					  json_id(cap_nth(&B, "message", (size_t)i - 1), "id"));
		}
	}

	/* Acks taken in one turn share a receipt: ten refs, in order. */
	ck_assert_uint_eq(delivered_refs(&A, refs, 10), 10);
	for (int i = 0; i < 10; i++) {
		ck_assert_uint_eq(refs[i], json_id(cap_nth(&B, "message", (size_t)i), "id"));
	}
}
END_TEST

START_TEST(duplicate_id_delivered_once_answered_twice)
{
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "same", "bob", "1");
	send_msg(&A, "same", "bob", "1");
	turn(E, &H);
	send_msg(&A, "same", "bob", "1");
	turn(E, &H);

	ck_assert_uint_eq(cap_count(&A, "accepted"), 3);
	ck_assert_uint_eq(json_id(cap_nth(&A, "accepted", 0), "id"),
			  json_id(cap_nth(&A, "accepted", 1), "id"));
	ck_assert_uint_eq(json_id(cap_nth(&A, "accepted", 0), "id"),
			  json_id(cap_nth(&A, "accepted", 2), "id"));
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
}
END_TEST

START_TEST(inbox_cap_refuses_with_error)
{
	struct vt_engine_config c = cfg_short();

	vt_engine_destroy(E);
	c.inbox_cap = 2;
	E = engine_new(&H, &c, NULL);
	connect_user(E, &H, "alice", &A);
	send_msg(&A, "a", "bob", "1");
	send_msg(&A, "b", "bob", "1");
	send_msg(&A, "c", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);
	ck_assert_uint_eq(cap_count(&A, "error"), 1);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "error", 0), "\"code\":\"inbox_full\""));
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "error", 0), "\"ref\":\"c\""));
}
END_TEST

START_TEST(stored_events_expire_by_age)
{
	struct vt_engine_config c = cfg_short();

	vt_engine_destroy(E);
	c.offline_ttl_ms = 3600 * 1000;
	E = engine_new(&H, &c, NULL);
	connect_user(E, &H, "alice", &A);
	send_msg(&A, "old", "bob", "1");
	turn(E, &H);

	/* A young event survives a sweep; an old one does not. */
	advance(E, &H, 120000);
	H.wall += INT64_C(2) * 3600 * 1000;
	advance(E, &H, 61000);
	A.closed = 1;
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
}
END_TEST

START_TEST(expired_token_gets_nothing_and_is_closed)
{
	struct vt_identity id = ident(&H, "bob");

	connect_user(E, &H, "alice", &A);
	id.exp = H.wall / 1000 + 5;
	ck_assert_int_eq(vt_conn_open(E, &id, &cap_ops, &B, &B.conn), 0);
	advance(E, &H, 6000);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	ck_assert_int_eq(B.closed, 1);
	ck_assert_int_eq(B.close_code, VT_CLOSE_TOKEN_EXPIRED);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	vt_conn_close(B.conn);
	cap_clear(&B);

	/* m1 waits in storage for a fresh token. */
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
}
END_TEST

/* A retry due after the token ran out is not pushed: the connection closes. */
START_TEST(expired_token_gets_no_retry)
{
	struct vt_identity id = ident(&H, "bob");

	connect_user(E, &H, "alice", &A);
	id.exp = H.wall / 1000 + 1;
	ck_assert_int_eq(vt_conn_open(E, &id, &cap_ops, &B, &B.conn), 0);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);

	advance(E, &H, 1000);
	ck_assert_int_eq(B.closed, 1);
	ck_assert_int_eq(B.close_code, VT_CLOSE_TOKEN_EXPIRED);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
}
END_TEST

START_TEST(bad_input_answers_errors)
{
	static const char *cases[][2] = {
		{"{", "bad_json"},
		{"[]", "bad_envelope"},
		{"{\"type\":\"nope\"}", "unknown_type"},
		{"{\"type\":\"message\",\"id\":\"x\",\"body\":1}", "bad_envelope"},
		{"{\"type\":\"message\",\"id\":\"x\",\"to\":\"a:b:c\",\"body\":1}", "bad_envelope"},
		{"{\"v\":2,\"type\":\"message\",\"id\":\"x\",\"to\":\"bob\",\"body\":1}",
		 "bad_version"},
	};

	connect_user(E, &H, "alice", &A);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[64];

		vt_conn_receive(A.conn, cases[i][0], strlen(cases[i][0]));
		turn(E, &H);
		snprintf(want, sizeof(want), "\"code\":\"%s\"", cases[i][1]);
		ck_assert_msg(cap_nth(&A, "error", i) && strstr(cap_nth(&A, "error", i), want),
			      "case %zu: %s", i, cases[i][0]);
	}
	ck_assert_int_eq(A.closed, 0);
}
END_TEST

START_TEST(oversize_envelope_refused)
{
	struct vt_engine_config c = cfg_short();
	char *big = malloc(2000);

	vt_engine_destroy(E);
	c.max_message_bytes = 1024;
	E = engine_new(&H, &c, NULL);
	connect_user(E, &H, "alice", &A);
	memset(big, ' ', 1999);
	big[1999] = '\0';
	memcpy(big, "{\"type\":\"message\",\"id\":\"x\",\"to\":\"bob\",\"body\":1}", 46);
	vt_conn_receive(A.conn, big, 1999);
	turn(E, &H);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "error", 0), "too_large"));
	free(big);
}
END_TEST

START_TEST(ack_of_someone_elses_id_is_harmless)
{
	uint64_t id;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "m", "bob", "1");
	turn(E, &H);
	id = json_id(cap_nth(&B, "message", 0), "id");

	send_ack(&A, id);
	turn(E, &H);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "error", 0), "unknown_id"));
	ck_assert_uint_eq(cap_count(&A, "delivered"), 0);

	/* Bob still owns it. */
	send_ack(&B, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
}
END_TEST

START_TEST(rest_fetch_and_ack_remove_exactly_the_named_ids)
{
	struct vt_identity bob = ident(&H, "bob");
	struct reply r = {0};
	char ack[256];
	uint64_t first, third;

	connect_user(E, &H, "alice", &A);
	for (int i = 0; i < 5; i++) {
		char cid[8];

		snprintf(cid, sizeof(cid), "m%d", i);
		send_msg(&A, cid, "bob", "1");
	}
	turn(E, &H);

	vt_engine_fetch(E, &bob, 0, 2, on_reply, &r);
	turn(E, &H);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_ptr_nonnull(strstr(r.body, "\"more\":true"));
	first = json_id(r.body, "id");

	vt_engine_fetch(E, &bob, 0, 0, on_reply, &r);
	turn(E, &H);
	ck_assert_ptr_nonnull(strstr(r.body, "\"more\":false"));
	third = json_id(strstr(r.body, "m2") - 80, "id");
	(void)third;

	snprintf(ack, sizeof(ack), "{\"ids\":[\"%llu\",\"999999\"]}", (unsigned long long)first);
	vt_engine_ack(E, &bob, ack, strlen(ack), on_reply, &r);
	turn(E, &H);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.body, "\"unknown\":[\"999999\"]"));

	/* A sixth message arrives between fetch and ack: it survives. */
	send_msg(&A, "m5", "bob", "1");
	turn(E, &H);
	vt_engine_fetch(E, &bob, 0, 0, on_reply, &r);
	turn(E, &H);
	ck_assert_ptr_null(strstr(r.body, "\"cid\":\"m0\""));
	ck_assert_ptr_nonnull(strstr(r.body, "\"cid\":\"m1\""));
	ck_assert_ptr_nonnull(strstr(r.body, "\"cid\":\"m5\""));
}
END_TEST

START_TEST(rest_submit_answers_after_commit)
{
	struct vt_identity alice = ident(&H, "alice");
	struct reply r = {0};
	const char *env = "{\"type\":\"message\",\"id\":\"r1\",\"to\":\"bob\",\"body\":\"x\"}";

	vt_engine_submit(E, &alice, env, strlen(env), on_reply, &r);
	ck_assert_int_eq(r.calls, 0);
	turn(E, &H);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.body, "\"type\":\"accepted\""));

	vt_engine_submit(E, &alice, env, strlen(env), on_reply, &r);
	turn(E, &H);
	ck_assert_int_eq(r.calls, 2);
	ck_assert_ptr_nonnull(strstr(r.body, "\"type\":\"accepted\""));
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
}
END_TEST

START_TEST(durability_offline_holds_in_memory_until_it_goes_offline)
{
	struct vt_engine_config c = cfg_short();
	struct vt_identity bob;
	struct reply r = {0};

	vt_engine_destroy(E);
	c.durability = VT_DURABLE_OFFLINE;
	E = engine_new(&H, &c, NULL);
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "m", "bob", "1");

	/* Accepted once its (sender, id) pair is written; the body is not. */
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	bob = ident(&H, "bob");
	vt_engine_fetch(E, &bob, 0, 0, on_reply, &r);
	turn(E, &H);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_ptr_null(strstr(r.body, "\"cid\":\"m\""));

	/* The connection drops: it goes to storage and comes back. */
	vt_conn_close(B.conn);
	turn(E, &H);
	cap_clear(&B);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);

	/* A re-send is still recognised. */
	send_msg(&A, "m", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
}
END_TEST

START_TEST(stats_count_what_happened)
{
	struct vt_engine_stats st;
	uint64_t batches = 0;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_msg(&A, "m", "bob", "1");
	vt_conn_receive(A.conn, "{", 1);
	turn(E, &H);
	send_ack(&B, json_id(cap_nth(&B, "message", 0), "id"));
	turn(E, &H);

	vt_engine_stats(E, &st);
	ck_assert_uint_eq(st.connections, 2);
	ck_assert_uint_eq(st.accepted, 1);
	ck_assert_uint_eq(st.acked, 1);
	ck_assert_uint_eq(st.errors[-VT_EBADJSON], 1);
	ck_assert_uint_ge(st.queue_high_water, 1);
	for (int i = 0; i < VT_COMMIT_BUCKETS; i++) {
		batches += st.commit_ms_le[i];
	}
	ck_assert_uint_eq(batches, st.batches);
}
END_TEST


/* Past the per-connection rate, events are refused with a code to act on. */

/* A re-send is recognised in mode "offline" whether the first was stored or held. */
START_TEST(durability_offline_dedups_stored_and_held)
{
	struct vt_engine_config c = cfg_short();
	uint64_t stored_id, held_id;

	vt_engine_destroy(E);
	c.durability = VT_DURABLE_OFFLINE;
	E = engine_new(&H, &c, NULL);
	connect_user(E, &H, "alice", &A);
	send_msg(&A, "c-1", "bob", "1");
	turn(E, &H);
	stored_id = json_id(cap_nth(&A, "accepted", 0), "id");

	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	send_msg(&A, "c-1", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(json_id(cap_nth(&A, "accepted", 1), "id"), stored_id);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);

	send_msg(&A, "c-2", "bob", "2");
	turn(E, &H);
	held_id = json_id(cap_nth(&A, "accepted", 2), "id");
	send_msg(&A, "c-2", "bob", "2");
	turn(E, &H);
	ck_assert_uint_eq(json_id(cap_nth(&A, "accepted", 3), "id"), held_id);
	ck_assert_uint_eq(cap_count(&B, "message"), 2);
}
END_TEST

START_TEST(full_transport_pauses_pushes)
{
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	B.full = 1;
	send_msg(&A, "a", "bob", "1");
	send_msg(&A, "b", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);

	B.full = 0;
	vt_conn_writable(B.conn);
	ck_assert_uint_eq(cap_count(&B, "message"), 2);
}
END_TEST

/* A client that stopped reading holds what it was pushed, not what is new. */
START_TEST(stalled_reader_queue_stays_small)
{
	struct vt_engine_stats st;
	char cid[16];
	size_t seen = 0;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	B.full = 1;
	for (int i = 0; i < 20; i++) {
		snprintf(cid, sizeof(cid), "m%d", i);
		send_msg(&A, cid, "bob", "1");
		turn(E, &H);
	}
	vt_engine_stats(E, &st);
	ck_assert_uint_le(st.queue_high_water, 1);

	/* Reading again, bob gets all twenty, in order. */
	B.full = 0;
	vt_conn_writable(B.conn);
	turn(E, &H);
	while (seen < cap_count(&B, "message")) {
		send_ack(&B, json_id(cap_nth(&B, "message", seen), "id"));
		turn(E, &H);
		seen++;
	}
	ck_assert_uint_eq(seen, 20);
}
END_TEST

START_TEST(newer_connection_replaces_older)
{
	static struct cap_conn B2;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	connect_user(E, &H, "bob", &B2);
	ck_assert_int_eq(B.closed, 1);
	ck_assert_int_eq(B.close_code, VT_CLOSE_REPLACED);
	vt_conn_close(B.conn);

	send_msg(&A, "m", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	ck_assert_uint_eq(cap_count(&B2, "message"), 1);
}
END_TEST

START_TEST(backlog_larger_than_window_arrives_in_order)
{
	uint64_t last = 0;
	size_t seen = 0;

	connect_user(E, &H, "alice", &A);
	for (int i = 0; i < 100; i++) {
		char cid[16];

		snprintf(cid, sizeof(cid), "m%d", i);
		send_msg(&A, cid, "bob", "1");
		if (i % 7 == 0) {
			turn(E, &H);
		}
	}
	turn(E, &H);
	connect_user(E, &H, "bob", &B);

	while (seen < cap_count(&B, "message")) {
		uint64_t id = json_id(cap_nth(&B, "message", seen), "id");

		ck_assert_uint_gt(id, last);
		last = id;
		send_ack(&B, id);
		turn(E, &H);
		seen++;
	}
	ck_assert_uint_eq(seen, 100);
}
END_TEST

/*
 * A device that connects in the same batch as a message to it: its listing
 * runs when its registration completes, and sees the message, whose own
 * completion (the route) comes after. It is pushed once.
 */
START_TEST(listed_and_routed_in_one_batch_pushed_once)
{
	struct vt_identity bob = ident(&H, "bob");

	connect_user(E, &H, "alice", &A);
	memset(&B, 0, sizeof(B));
	ck_assert_int_eq(vt_conn_open(E, &bob, &cap_ops, &B, &B.conn), 0);
	send_msg(&A, "m1", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
}
END_TEST

static Suite *engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *t = tcase_create("core");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, online_ack_gives_accepted_then_delivered);
	tcase_add_test(t, from_is_never_the_clients);
	tcase_add_test(t, unacked_is_retried_with_backoff_then_offline);
	tcase_add_test(t, late_ack_deletes_the_stored_copy);
	tcase_add_test(t, offline_then_connect_in_order);
	tcase_add_test(t, duplicate_id_delivered_once_answered_twice);
	tcase_add_test(t, inbox_cap_refuses_with_error);
	tcase_add_test(t, stored_events_expire_by_age);
	tcase_add_test(t, expired_token_gets_nothing_and_is_closed);
	tcase_add_test(t, expired_token_gets_no_retry);
	tcase_add_test(t, bad_input_answers_errors);
	tcase_add_test(t, oversize_envelope_refused);
	tcase_add_test(t, ack_of_someone_elses_id_is_harmless);
	tcase_add_test(t, rest_fetch_and_ack_remove_exactly_the_named_ids);
	tcase_add_test(t, rest_submit_answers_after_commit);
	tcase_add_test(t, durability_offline_holds_in_memory_until_it_goes_offline);
	tcase_add_test(t, durability_offline_dedups_stored_and_held);
	tcase_add_test(t, stats_count_what_happened);
	tcase_add_test(t, full_transport_pauses_pushes);
	tcase_add_test(t, newer_connection_replaces_older);
	tcase_add_test(t, stalled_reader_queue_stays_small);
	tcase_add_test(t, backlog_larger_than_window_arrives_in_order);
	tcase_add_test(t, listed_and_routed_in_one_batch_pushed_once);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return run_suite(engine_suite());
}
