/*
 * test_engine_rate.c - the engine's rate limits: events per WebSocket
 * connection, across its reconnects, and REST sends per user.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"

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

static Suite *engine_rate_suite(void)
{
	Suite *s = suite_create("engine_rate");
	TCase *t = tcase_create("core");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, event_rate_is_limited_per_connection);
	tcase_add_test(t, event_rate_survives_a_reconnect);
	tcase_add_test(t, rest_rate_is_limited_per_user);
	tcase_add_test(t, rest_rate_zero_is_no_limit);
	tcase_add_test(t, rest_senders_stay_bounded);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return run_suite(engine_rate_suite());
}
