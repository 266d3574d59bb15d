/*
 * test_engine.c - the delivery engine on the memory backend and a fake clock.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "util.h"

static struct fake_host H;
static struct vt_engine *E;
static struct cap_conn A, B;

static struct vt_engine_config cfg_short(void)
{
	struct vt_engine_config c;

	vt_engine_config_init(&c);
	c.ack_timeout_ms = 1000;
	c.max_retries = 2;
	c.window = 4;
	return c;
}

static void setup(void)
{
	struct vt_engine_config c = cfg_short();

	fake_host_init(&H);
	E = engine_new(&H, &c, NULL);
	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
}

static void teardown(void)
{
	vt_engine_destroy(E);
	cap_free(&A);
	cap_free(&B);
}

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
START_TEST(event_rate_is_limited_per_connection)
{
	struct vt_engine_config c = cfg_short();
	char cid[16];

	vt_engine_destroy(E);
	c.msgs_per_sec = 3;
	E = engine_new(&H, &c, NULL);
	connect_user(E, &H, "alice", &A);
	for (int i = 0; i < 5; i++) {
		snprintf(cid, sizeof(cid), "m%d", i);
		send_msg(&A, cid, "bob", "1");
	}
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 3);
	ck_assert_uint_eq(cap_count(&A, "error"), 2);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "error", 0), "rate_limited"));
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "error", 0), "\"ref\":\"m3\""));

	/* A second later the bucket has refilled. */
	advance(E, &H, 1000);
	send_msg(&A, "m3", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 4);
}
END_TEST

/* Send three messages from @c, round @round; how many were accepted. */
static size_t three_sent(struct cap_conn *c, int round)
{
	char cid[16];

	for (int i = 0; i < 3; i++) {
		snprintf(cid, sizeof(cid), "m%d-%d", round, i);
		send_msg(c, cid, "bob", "1");
	}
	turn(E, &H);
	return cap_count(c, "accepted");
}

/* Closing and opening the connection again buys no fresh burst. */
START_TEST(event_rate_survives_a_reconnect)
{
	struct vt_engine_config c = cfg_short();
	static struct cap_conn A2;

	vt_engine_destroy(E);
	c.msgs_per_sec = 3;
	E = engine_new(&H, &c, NULL);
	connect_user(E, &H, "alice", &A);
	ck_assert_uint_eq(three_sent(&A, 0), 3);
	vt_conn_close(A.conn);
	turn(E, &H);
	cap_free(&A);

	connect_user(E, &H, "alice", &A);
	ck_assert_uint_eq(three_sent(&A, 1), 0);

	/* A connection replacing a live one of the same device takes its bucket. */
	connect_user(E, &H, "alice", &A2);
	ck_assert_uint_eq(three_sent(&A2, 2), 0);

	advance(E, &H, 1000);
	ck_assert_uint_eq(three_sent(&A2, 3), 3);
	cap_free(&A2);
}
END_TEST

/* Send message @cid from @user over REST and run the turn that answers it. */
static void rest_send(struct vt_identity *user, const char *cid, struct reply *r)
{
	char env[128];

	snprintf(env, sizeof(env), "{\"type\":\"message\",\"id\":\"%s\",\"to\":\"bob\","
		 "\"body\":\"x\"}", cid);
	vt_engine_submit(E, user, env, strlen(env), on_reply, r);
	turn(E, &H);
}

static void engine_with_rate(uint32_t rate)
{
	struct vt_engine_config c = cfg_short();

	vt_engine_destroy(E);
	c.msgs_per_sec = rate;
	c.window = 8;
	E = engine_new(&H, &c, NULL);
}

/*
 * REST sends have no connection: their rate is kept per user, over all of
 * the user's requests, and a refused one is taken when re-sent later.
 */
START_TEST(rest_rate_is_limited_per_user)
{
	struct vt_identity alice = ident(&H, "alice");
	struct vt_identity carol = ident(&H, "carol");
	struct reply r = {0};
	char cid[16];

	engine_with_rate(3);
	for (int i = 0; i < 3; i++) {
		snprintf(cid, sizeof(cid), "m%d", i);
		rest_send(&alice, cid, &r);
		ck_assert_int_eq(r.status, 0);
	}
	rest_send(&alice, "m3", &r);
	ck_assert_int_eq(r.status, VT_ERATE);
	ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"rate_limited\""));
	ck_assert_ptr_nonnull(strstr(r.body, "\"ref\":\"m3\""));

	/* Another user has a bucket of its own. */
	rest_send(&carol, "c0", &r);
	ck_assert_int_eq(r.status, 0);

	/* A third of a second earns alice one event back: the re-send goes in. */
	advance(E, &H, 334);
	rest_send(&alice, "m3", &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.body, "\"type\":\"accepted\""));
	rest_send(&alice, "m4", &r);
	ck_assert_int_eq(r.status, VT_ERATE);

	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 5);
}
END_TEST

/* A rate of 0 means no limit, over REST as on a connection, and keeps nothing. */
START_TEST(rest_rate_zero_is_no_limit)
{
	struct vt_identity alice = ident(&H, "alice");
	struct reply r = {0};
	char cid[16];

	engine_with_rate(0);
	for (int i = 0; i < 300; i++) {
		snprintf(cid, sizeof(cid), "m%d", i);
		rest_send(&alice, cid, &r);
		ck_assert_int_eq(r.status, 0);
	}
	ck_assert_uint_eq(senders_count(E), 0);
}
END_TEST

/*
 * The table of REST senders stays bounded: full buckets are dropped by the
 * sweep, and while it is full of users sending, a new one is refused as
 * busy (nothing taken), then let in once the sweep made room.
 */
START_TEST(rest_senders_stay_bounded)
{
	struct vt_identity alice = ident(&H, "alice");
	struct reply r = {0};

	engine_with_rate(2);
	rest_send(&alice, "m0", &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(senders_count(E), 1);
	advance(E, &H, 2100);
	ck_assert_uint_eq(senders_count(E), 0);

	senders_fill(E, VT_SENDERS_MAX);
	rest_send(&alice, "m1", &r);
	ck_assert_int_eq(r.status, VT_EBUSY);
	ck_assert_ptr_nonnull(strstr(r.body, "\"ref\":\"m1\""));
	ck_assert_uint_eq(senders_count(E), VT_SENDERS_MAX);

	advance(E, &H, 2100);
	ck_assert_uint_eq(senders_count(E), 0);
	rest_send(&alice, "m1", &r);
	ck_assert_int_eq(r.status, 0);

	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 2);
}
END_TEST

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
	tcase_add_test(t, event_rate_is_limited_per_connection);
	tcase_add_test(t, event_rate_survives_a_reconnect);
	tcase_add_test(t, rest_rate_is_limited_per_user);
	tcase_add_test(t, rest_rate_zero_is_no_limit);
	tcase_add_test(t, rest_senders_stay_bounded);
	tcase_add_test(t, stats_count_what_happened);
	tcase_add_test(t, full_storage_never_accepts_and_recovers);
	tcase_add_test(t, health_returns_when_storage_answers_again);
	tcase_add_test(t, failed_listing_waits_for_the_sweep);
	tcase_add_test(t, inline_commit_takes_its_time);
	tcase_add_test(t, full_transport_pauses_pushes);
	tcase_add_test(t, newer_connection_replaces_older);
	tcase_add_test(t, stalled_reader_queue_stays_small);
	tcase_add_test(t, backlog_larger_than_window_arrives_in_order);
	tcase_add_test(t, listed_and_routed_in_one_batch_pushed_once);
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
	return run_suite(engine_suite());
}
