/*
 * test_engine_logout.c - logouts: which tokens they revoke, which sockets
 * they close, and what stays owed.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine_fixture.h"

static struct cap_conn C;

static void setup_logout(void)
{
	setup();
	memset(&C, 0, sizeof(C));
}

static void teardown_logout(void)
{
	teardown();
	cap_free(&C);
}

/* @user's token for @device, issued at @iat seconds (0: no "iat"). */
static struct vt_identity token(const char *user, const char *device, int64_t iat)
{
	struct vt_identity id = ident(&H, user);

	snprintf(id.device, sizeof(id.device), "%s", device);
	id.iat = iat;
	return id;
}

static void open_as(const struct vt_identity *id, struct cap_conn *c)
{
	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(vt_conn_open(E, id, &cap_ops, c, &c->conn), 0);
	turn(E, &H);
}

/* Log @id out (@body as the request's); the reply in @r. */
static void logout(const struct vt_identity *id, const char *body, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	vt_engine_logout(E, id, body, strlen(body), on_reply, r);
	turn(E, &H);
	ck_assert_int_eq(r->calls, 1);
}

static int64_t now_s(void)
{
	return (int64_t)(H.wall / 1000);
}

/* A fresh engine without a rate limit, or with @rate events a second. */
static void engine_at_rate(uint32_t rate)
{
	struct vt_engine_config c = cfg_short();

	vt_engine_destroy(E);
	c.msgs_per_sec = rate;
	E = engine_new(&H, &c, NULL);
}

START_TEST(logout_of_a_device_closes_it_alone)
{
	struct vt_identity phone = token("alice", "phone", now_s() - 10);
	struct vt_identity laptop = token("alice", "laptop", now_s() - 10);
	struct reply r;
	char want[64];

	open_as(&phone, &A);
	open_as(&laptop, &B);
	connect_user(E, &H, "bob", &C);
	logout(&phone, "", &r);
	ck_assert_int_eq(r.status, 0);
	snprintf(want, sizeof(want), "{\"revoked\":\"device\",\"before\":%lld}",
		 (long long)now_s());
	ck_assert_str_eq(r.body, want);
	ck_assert_int_eq(A.closed, 1);
	ck_assert_int_eq(A.close_code, VT_CLOSE_LOGGED_OUT);
	ck_assert_int_eq(B.closed, 0);

	/* The laptop still gets what bob sends; the phone's copy stays owed. */
	send_msg(&C, "m1", "alice", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(cap_count(&A, "message"), 0);
	vt_conn_close(A.conn);
	cap_free(&A);

	/* The old token is refused everywhere; one issued later works. */
	ck_assert_int_eq(vt_engine_revoked(E, &phone), VT_EREVOKED);
	ck_assert_int_eq(vt_engine_revoked(E, &laptop), 0);
	ck_assert_int_eq(vt_conn_open(E, &phone, &cap_ops, &A, &A.conn), VT_EREVOKED);
	vt_engine_fetch(E, &phone, 0, 0, on_reply, &r);
	ck_assert_int_eq(r.status, VT_EREVOKED);
	advance(E, &H, 1000);
	phone.iat = now_s();
	ck_assert_int_eq(vt_engine_revoked(E, &phone), 0);
	open_as(&phone, &A);
	ck_assert_uint_eq(cap_count(&A, "message"), 1);
}
END_TEST

START_TEST(logout_of_all_devices)
{
	struct vt_identity phone = token("alice", "phone", now_s());
	struct vt_identity laptop = token("alice", "laptop", now_s());
	struct vt_identity bob = token("bob", "", now_s());
	struct reply r;

	open_as(&phone, &A);
	open_as(&laptop, &B);
	open_as(&bob, &C);
	logout(&laptop, "{\"all\":true}", &r);
	ck_assert_ptr_nonnull(strstr(r.body, "\"revoked\":\"user\""));
	ck_assert_int_eq(A.close_code, VT_CLOSE_LOGGED_OUT);
	ck_assert_int_eq(B.close_code, VT_CLOSE_LOGGED_OUT);
	ck_assert_int_eq(C.closed, 0);
	ck_assert_int_eq(vt_engine_revoked(E, &phone), VT_EREVOKED);
	ck_assert_int_eq(vt_engine_revoked(E, &bob), 0);

	/* A token issued in the second of the logout is revoked too. */
	ck_assert_int_eq(vt_engine_revoked(E, &(struct vt_identity){.user = "alice",
								    .iat = now_s()}),
			 VT_EREVOKED);
	phone.iat = now_s() + 1;
	ck_assert_int_eq(vt_engine_revoked(E, &phone), 0);
}
END_TEST

/* A token without "iat" cannot tell when it was issued: any logout of its scope ends it. */
START_TEST(logout_revokes_tokens_without_iat)
{
	struct vt_identity old = token("alice", "", 0);
	struct vt_identity now = token("alice", "", now_s());
	struct vt_identity later = token("alice", "", now_s() + 1);
	struct reply r;

	ck_assert_int_eq(vt_engine_revoked(E, &old), 0);
	logout(&now, "{\"all\":false}", &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(vt_engine_revoked(E, &old), VT_EREVOKED);
	ck_assert_int_eq(vt_engine_revoked(E, &later), 0);
}
END_TEST

START_TEST(logout_bodies_are_checked)
{
	struct vt_identity id = token("alice", "", now_s());
	static const char *const bad[] = {
	        "[]", "{\"all\":1}", "{\"all\":\"true\"}", "{\"devices\":\"all\"}", "{", "null",
	        "{\"all\":true}x", "{\"all\":false,\"all\":true}", "{\"all\":true,\"all\":false}",
	};
	struct reply r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		logout(&id, bad[i], &r);
		ck_assert_msg(r.status == VT_EBADJSON || r.status == VT_EBADENV, "%s: %d", bad[i],
			      r.status);
	}
	ck_assert_int_eq(vt_engine_revoked(E, &id), 0);
	logout(&id, " {} \n", &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(vt_engine_revoked(E, &id), VT_EREVOKED);

	/* A revoked token cannot log out again. */
	logout(&id, "", &r);
	ck_assert_int_eq(r.status, VT_EREVOKED);
}
END_TEST

/* Logouts of made-up devices stop at a bound: the next one is of every device. */
START_TEST(device_logouts_per_user_are_bounded)
{
	struct vt_identity more = token("mallory", "one-more", now_s());
	struct reply r;
	char dev[16];

	engine_at_rate(0);
	for (int i = 0; i < VT_REVOKED_DEVICES_MAX; i++) {
		struct vt_identity id;

		snprintf(dev, sizeof(dev), "d%d", i);
		id = token("mallory", dev, now_s());
		logout(&id, "", &r);
		ck_assert_ptr_nonnull(strstr(r.body, "\"device\""));
	}
	ck_assert_uint_eq(E->revoked.len, VT_REVOKED_DEVICES_MAX);
	logout(&more, "", &r);
	ck_assert_ptr_nonnull(strstr(r.body, "\"revoked\":\"user\""));
	ck_assert_uint_eq(E->revoked.len, 1);
	ck_assert_ptr_null(vt_map_get(&E->revoked_devices, "mallory"));
	ck_assert_int_eq(vt_engine_revoked(E, &more), VT_EREVOKED);
}
END_TEST

/*
 * Logouts taken before any of them is written count against the bound too:
 * many at once (a client with many requests open) make no more single ones.
 */
START_TEST(device_logouts_in_flight_are_bounded)
{
	static struct reply r[2 * VT_REVOKED_DEVICES_MAX];
	int users = 0;
	char dev[16];

	engine_at_rate(0);
	for (int i = 0; i < 2 * VT_REVOKED_DEVICES_MAX; i++) {
		struct vt_identity id;

		snprintf(dev, sizeof(dev), "d%d", i);
		id = token("mallory", dev, now_s());
		memset(&r[i], 0, sizeof(r[i]));
		vt_engine_logout(E, &id, "", 0, on_reply, &r[i]);
	}
	turn(E, &H);
	for (int i = 0; i < 2 * VT_REVOKED_DEVICES_MAX; i++) {
		ck_assert_int_eq(r[i].calls, 1);
		ck_assert_int_eq(r[i].status, 0);
		users += strstr(r[i].body, "\"revoked\":\"user\"") != NULL;
	}
	ck_assert_int_eq(users, VT_REVOKED_DEVICES_MAX);
	ck_assert_uint_eq(E->revoked.len, 1);
	ck_assert_ptr_null(vt_map_get(&E->revoked_devices, "mallory"));
}
END_TEST

/*
 * A logout of every device forgets that user's single-device scopes, found
 * through the user's own list (so it costs what the user has, not what
 * every user has), and leaves every other user's alone.
 */
START_TEST(logout_of_all_devices_keeps_other_users)
{
	struct vt_inbox scope = {NULL, "phone"};
	struct vt_inbox all = {"mallory", VT_ALL_DEVICES};
	struct vt_inbox one = {"mallory", "phone"}, two = {"mallory", "tab"};
	char user[16];

	for (int i = 0; i < 1000; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		scope.user = user;
		vt_engine_remote_logout(E, &scope, now_s());
	}
	for (int i = 0; i < 3; i++) {
		vt_engine_remote_logout(E, &one, now_s());
		vt_engine_remote_logout(E, &two, now_s());
		ck_assert_uint_eq(E->revoked.len, 1002 + (i > 0));
		vt_engine_remote_logout(E, &all, now_s());
		ck_assert_uint_eq(E->revoked.len, 1001);
		advance(E, &H, 1000);
	}
	for (int i = 0; i < 1000; i++) {
		struct vt_identity id;

		snprintf(user, sizeof(user), "u%d", i);
		id = token(user, "phone", now_s() - 10);
		ck_assert_int_eq(vt_engine_revoked(E, &id), VT_EREVOKED);
		id = token(user, "tab", now_s() - 10);
		ck_assert_int_eq(vt_engine_revoked(E, &id), 0);
	}
}
END_TEST

/* A logout is a write: it draws on its user's rate of REST requests. */
START_TEST(logouts_draw_on_the_rate)
{
	struct vt_identity id = token("alice", "", now_s());
	struct vt_identity a = token("alice", "a", now_s()), b = token("alice", "b", now_s());
	struct vt_identity bob = token("bob", "", now_s());
	struct reply r;

	engine_at_rate(2);
	logout(&a, "", &r);
	ck_assert_int_eq(r.status, 0);
	logout(&b, "", &r);
	ck_assert_int_eq(r.status, 0);
	logout(&id, "", &r);
	ck_assert_int_eq(r.status, VT_ERATE);
	ck_assert_int_eq(vt_engine_revoked(E, &id), 0);
	logout(&bob, "", &r);
	ck_assert_int_eq(r.status, 0);
	advance(E, &H, 1000);
	logout(&id, "", &r);
	ck_assert_int_eq(r.status, 0);
}
END_TEST

/* Another node's logout closes and refuses here as a local one does. */
START_TEST(remote_logout_applies_here)
{
	struct vt_identity phone = token("alice", "phone", now_s());
	struct vt_inbox scope = {"alice", "phone"};
	struct vt_inbox bad = {"alice", NULL};

	open_as(&phone, &A);
	vt_engine_remote_logout(E, &bad, now_s());
	vt_engine_remote_logout(E, &scope, 0);
	ck_assert_int_eq(A.closed, 0);
	vt_engine_remote_logout(E, &scope, now_s());
	ck_assert_int_eq(A.close_code, VT_CLOSE_LOGGED_OUT);
	ck_assert_int_eq(vt_engine_revoked(E, &phone), VT_EREVOKED);
}
END_TEST

/*
 * A notice is read as hostile: a scope no token can name (bytes a client id
 * may not hold, a newline that would reach the log) is not kept.
 */
START_TEST(remote_logout_of_scopes_no_token_names_is_ignored)
{
	struct vt_inbox bad[] = {{"ali\nce", "phone"}, {"alice", "ph one"}, {"", "phone"},
				 {"alice", "**"}, {"a:b", VT_ALL_DEVICES}};
	struct vt_inbox good = {"alice", ""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vt_engine_remote_logout(E, &bad[i], now_s());
	}
	ck_assert_uint_eq(E->revoked.len, 0);
	vt_engine_remote_logout(E, &good, now_s());
	ck_assert_uint_eq(E->revoked.len, 1);
}
END_TEST

/* Expiry compares seconds: a time far ahead, up to INT64_MAX, stays and overflows nothing. */
START_TEST(logout_dated_far_ahead_outlives_expiry)
{
	struct vt_inbox scope = {"alice", VT_ALL_DEVICES};
	struct vt_identity id = token("alice", "", now_s());

	/* A login service's clock may run ahead: no time overflows in expiry. */
	vt_engine_remote_logout(E, &scope, INT64_MAX);
	advance(E, &H, 120000);
	ck_assert_uint_eq(E->revoked.len, 1);
	ck_assert_int_eq(vt_engine_revoked(E, &id), VT_EREVOKED);
}
END_TEST

/* A token dated ahead of the clock ends with its own logout. */
START_TEST(logout_of_a_token_dated_ahead)
{
	struct vt_identity id = token("alice", "", now_s() + 30);
	struct reply r;
	char want[64];

	logout(&id, "", &r);
	snprintf(want, sizeof(want), "{\"revoked\":\"device\",\"before\":%lld}",
		 (long long)id.iat);
	ck_assert_str_eq(r.body, want);
	ck_assert_int_eq(vt_engine_revoked(E, &id), VT_EREVOKED);
}
END_TEST

/* A logout is forgotten with unused devices: by then its tokens are long expired. */
START_TEST(logouts_expire_with_unused_devices)
{
	struct vt_engine_config c = cfg_short();
	struct vt_identity id;
	struct reply r;

	vt_engine_destroy(E);
	c.device_ttl_ms = 120000;
	E = engine_new(&H, &c, NULL);
	id = token("alice", "", now_s());
	logout(&id, "", &r);
	advance(E, &H, 90000);
	ck_assert_int_eq(vt_engine_revoked(E, &id), VT_EREVOKED);
	advance(E, &H, 120000);
	ck_assert_uint_eq(E->revoked.len, 0);
	ck_assert_int_eq(vt_engine_revoked(E, &id), 0);
}
END_TEST

static Suite *engine_logout_suite(void)
{
	Suite *s = suite_create("engine_logout");
	TCase *t = tcase_create("core");

	tcase_add_checked_fixture(t, setup_logout, teardown_logout);
	tcase_add_test(t, logout_of_a_device_closes_it_alone);
	tcase_add_test(t, logout_of_all_devices);
	tcase_add_test(t, logout_revokes_tokens_without_iat);
	tcase_add_test(t, logout_bodies_are_checked);
	tcase_add_test(t, device_logouts_per_user_are_bounded);
	tcase_add_test(t, device_logouts_in_flight_are_bounded);
	tcase_add_test(t, logout_of_all_devices_keeps_other_users);
	tcase_add_test(t, logouts_draw_on_the_rate);
	tcase_add_test(t, remote_logout_applies_here);
	tcase_add_test(t, remote_logout_of_scopes_no_token_names_is_ignored);
	tcase_add_test(t, logout_dated_far_ahead_outlives_expiry);
	tcase_add_test(t, logout_of_a_token_dated_ahead);
	tcase_add_test(t, logouts_expire_with_unused_devices);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return run_suite(engine_logout_suite());
}
