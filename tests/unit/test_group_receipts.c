/*
 * test_group_receipts.c - the "delivered" receipts of a group's members: in
 * mode "offline" the acks of held copies of one sender's posts to one group
 * travel as one receipt from the group, gathered for VT_RECEIPT_GATHER_MS
 * from the first (or until full), listing under each ref the devices that
 * acked it.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "receipts.h"
#include "util.h"

/* Members of the large group: more than one receipt's worth of long ids. */
#define CROWD 150

static struct fake_host H;
static struct vt_engine *E;
static struct cap_conn A, B, B2, C;
static struct cap_conn *crowd;

static void setup(void)
{
	struct vt_engine_config c;

	vt_engine_config_init(&c);
	c.durability = VT_DURABLE_OFFLINE;
	c.msgs_per_sec = 0;
	c.window = 128;
	c.max_group_update = 256;
	fake_host_init(&H);
	E = engine_new(&H, &c, NULL);
	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
	memset(&B2, 0, sizeof(B2));
	memset(&C, 0, sizeof(C));
	crowd = calloc(CROWD, sizeof(*crowd));
	ck_assert_ptr_nonnull(crowd);
}

static void teardown(void)
{
	vt_engine_destroy(E);
	cap_free(&A);
	cap_free(&B);
	cap_free(&B2);
	cap_free(&C);
	for (size_t i = 0; i < CROWD; i++) {
		cap_free(&crowd[i]);
	}
	free(crowd);
}

/* Ack every owed frame @c got, in one envelope per frame, and forget them. */
static void ack_all(struct cap_conn *c)
{
	for (size_t i = 0; i < c->nframes; i++) {
		uint64_t id = json_id(c->frames[i], "id");

		if (id != 0 && strstr(c->frames[i], "\"type\":\"accepted\"") == NULL) {
			send_ack(c, id);
		}
	}
	cap_clear(c);
}

/* The body of a pushed event: it is the last member of the frame. */
static const char *body_of(const char *frame, size_t *len)
{
	const char *body;

	ck_assert_ptr_nonnull(frame);
	body = strstr(frame, "\"body\":");
	ck_assert_ptr_nonnull(body);
	body += strlen("\"body\":");
	*len = strlen(body) - 1; /* the frame's closing brace */
	return body;
}

/* alice creates @group with @members (a JSON array). */
static void make_group_named(const char *group, const char *members)
{
	size_t cap = strlen(members) + strlen(group) + 128;
	char *env = malloc(cap);

	ck_assert_ptr_nonnull(env);
	snprintf(env, cap,
		 "{\"type\":\"group_create\",\"id\":\"g1\",\"to\":\"%s\","
		 "\"body\":{\"name\":\"X\",\"members\":%s}}",
		 group, members);
	send_raw(&A, env);
	free(env);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	cap_clear(&A);
}

static void make_group(const char *members)
{
	make_group_named("g:x", members);
}

/* Post "p<i>" for i < @n from alice to g:x; their ids, as bob got them. */
static void post(uint64_t *ids, size_t n)
{
	char cid[24];

	for (size_t i = 0; i < n; i++) {
		snprintf(cid, sizeof(cid), "p%zu", i);
		send_msg(&A, cid, "g:x", "0");
	}
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), n);
	for (size_t i = 0; i < n; i++) {
		ids[i] = cap_nth_id(&B, "message", i);
	}
	cap_clear(&A);
}

START_TEST(acks_of_one_turn_make_one_receipt_from_the_group)
{
	uint64_t ids[2];
	const char *body;
	size_t len;
	char want[1024];

	connect_user(E, &H, "alice", &A);
	connect_device(E, &H, "bob", "phone", &B);
	connect_device(E, &H, "bob", "laptop", &B2);
	connect_user(E, &H, "carol", &C);
	make_group("[\"bob\",\"carol\"]");
	ack_all(&B);
	ack_all(&B2);
	ack_all(&C);
	turn(E, &H);
	post(ids, 2);

	/* Out of order, over three connections, in one turn. */
	send_ack(&B, ids[1]);
	send_ack(&C, ids[0]);
	send_ack(&B2, ids[0]);
	send_ack(&B, ids[0]);
	send_ack(&C, ids[1]);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 0);
	advance(E, &H, VT_RECEIPT_GATHER_MS);

	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 0), "\"from\":\"g:x\""));
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 0), "\"to\":\"alice\""));
	snprintf(want, sizeof(want),
		 "{\"refs\":["
		 "{\"ref\":\"%llu\",\"cid\":\"p1\",\"by\":[{\"user\":\"bob\",\"device\":\"phone\"},"
		 "{\"user\":\"carol\",\"device\":\"\"}]},"
		 "{\"ref\":\"%llu\",\"cid\":\"p0\",\"by\":[{\"user\":\"carol\",\"device\":\"\"},"
		 "{\"user\":\"bob\",\"device\":\"laptop\"},"
		 "{\"user\":\"bob\",\"device\":\"phone\"}]}"
		 "]}",
		 (unsigned long long)ids[1], (unsigned long long)ids[0]);
	body = body_of(cap_nth(&A, "delivered", 0), &len);
	ck_assert_msg(len == strlen(want) && memcmp(body, want, len) == 0, "body %.*s, want %s",
		      (int)len, body, want);

	/* Owed like any receipt: alice acks it, and nothing more comes. */
	ack_all(&A);
	advance(E, &H, 60000);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 0);
}
END_TEST

/*
 * A one-to-one ack's receipt goes with the turn; a group's gathers the acks
 * of later turns until VT_RECEIPT_GATHER_MS after its first.
 */
START_TEST(a_group_receipt_gathers_over_turns_until_due)
{
	uint64_t ids[1], direct;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	connect_user(E, &H, "carol", &C);
	make_group("[\"bob\",\"carol\"]");
	ack_all(&B);
	ack_all(&C);
	turn(E, &H);
	post(ids, 1);
	send_msg(&A, "d0", "bob", "0");
	turn(E, &H);
	direct = cap_nth_id(&B, "message", 1);

	send_ack(&B, ids[0]);
	send_ack(&B, direct);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 0), "\"from\":\"bob\""));
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 0), "\"body\":{\"device\":\"\""));

	advance(E, &H, 20);
	send_ack(&C, ids[0]);
	turn(E, &H);
	advance(E, &H, VT_RECEIPT_GATHER_MS - 21);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_int_eq(vt_engine_next_timeout(E), 1);

	advance(E, &H, 1);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 2);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 1), "\"from\":\"g:x\""));
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 1),
				     "\"by\":[{\"user\":\"bob\",\"device\":\"\"},"
				     "{\"user\":\"carol\",\"device\":\"\"}]"));
	ck_assert_uint_eq(frame_refs(cap_nth(&A, "delivered", 1), NULL, 0), 1);
}
END_TEST

/* A member whose copy was stored (offline when it was posted) acks it: a device receipt. */
START_TEST(a_stored_copy_gets_a_device_receipt)
{
	uint64_t ids[1];

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	make_group("[\"bob\",\"carol\"]");
	ack_all(&B);
	turn(E, &H);
	post(ids, 1);

	connect_user(E, &H, "carol", &C);
	ck_assert_uint_eq(cap_nth_id(&C, "message", 0), ids[0]);
	send_ack(&C, ids[0]);
	turn(E, &H);

	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 0), "\"from\":\"carol\""));
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 0), "\"device\":\"\""));
	ck_assert_ptr_null(strstr(cap_nth(&A, "delivered", 0), "\"by\""));
}
END_TEST

/* The longest group id a post may name: the receipt comes from all of it. */
START_TEST(a_long_group_id_is_the_receipt_s_whole_sender)
{
	const char *group = "g:0123456789012345678901234567890123456789012345678901234567890123";
	char from[128];
	uint64_t id;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	make_group_named(group, "[\"bob\"]");
	ack_all(&B);
	turn(E, &H);
	send_msg(&A, "p0", group, "0");
	turn(E, &H);
	id = cap_nth_id(&B, "message", 0);
	send_ack(&B, id);
	turn(E, &H);
	advance(E, &H, VT_RECEIPT_GATHER_MS);

	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_int_eq(json_field(cap_nth(&A, "delivered", 0), "from", from, sizeof(from)), 0);
	ck_assert_str_eq(from, group);
}
END_TEST

/* "m<i>" padded with 'x' to VT_ID_MAX: the longest ids make the fullest receipts. */
static void long_id(char *out, char tag, size_t i)
{
	int n = snprintf(out, VT_ID_MAX + 1, "%c%zu", tag, i);

	memset(out + n, 'x', VT_ID_MAX - (size_t)n);
	out[VT_ID_MAX] = '\0';
}

/* How many times @needle occurs in @s. */
static size_t occurrences(const char *s, const char *needle)
{
	size_t n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

START_TEST(a_receipt_ends_at_its_byte_limit_and_loses_no_ack)
{
	size_t cap = CROWD * (VT_ID_MAX + 4) + 16, len = 1, acks = 0;
	char *members = malloc(cap), user[VT_ID_MAX + 1], device[VT_ID_MAX + 1];
	uint64_t ids[1];

	ck_assert_ptr_nonnull(members);
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	strcpy(members, "[\"bob\"");
	for (size_t i = 0; i < CROWD; i++) {
		long_id(user, 'u', i);
		long_id(device, 'd', i);
		connect_device(E, &H, user, device, &crowd[i]);
		len = strlen(members);
		snprintf(members + len, cap - len, ",\"%s\"", user);
	}
	strcat(members, "]");
	make_group(members);
	free(members);
	for (size_t i = 0; i < CROWD; i++) {
		ack_all(&crowd[i]);
	}
	ack_all(&B);
	turn(E, &H);
	post(ids, 1);

	for (size_t i = 0; i < CROWD; i++) {
		ck_assert_uint_eq(cap_nth_id(&crowd[i], "message", 0), ids[0]);
		send_ack(&crowd[i], ids[0]);
	}
	turn(E, &H);

	/* A full one goes at once; the rest when due. */
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	advance(E, &H, VT_RECEIPT_GATHER_MS);

	/* Each receipt within the limit and one ack's length; together, every ack once. */
	ck_assert_uint_eq(cap_count(&A, "delivered"), 2);
	for (size_t i = 0; i < cap_count(&A, "delivered"); i++) {
		const char *f = cap_nth(&A, "delivered", i);
		size_t most = VT_RECEIPT_BODY_SOFT + 2 * VT_ID_MAX + 64;

		ck_assert_uint_lt(strlen(body_of(f, &len)), most);
		ck_assert_uint_eq(frame_refs(f, NULL, 0), 1);
		acks += occurrences(f, "\"user\":\"u");
	}
	ck_assert_uint_eq(acks, CROWD);
	for (size_t i = 0; i < CROWD; i++) {
		char needle[2 * VT_ID_MAX + 32];
		size_t found = 0;

		long_id(user, 'u', i);
		long_id(device, 'd', i);
		snprintf(needle, sizeof(needle), "{\"user\":\"%s\",\"device\":\"%s\"}", user,
			 device);
		for (size_t j = 0; j < cap_count(&A, "delivered"); j++) {
			found += occurrences(cap_nth(&A, "delivered", j), needle);
		}
		ck_assert_uint_eq(found, 1);
	}
}
END_TEST

START_TEST(a_receipt_names_at_most_the_limit_of_refs)
{
	uint64_t ids[VT_RECEIPT_REFS_MAX + 1];
	size_t n = VT_RECEIPT_REFS_MAX + 1;

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	make_group("[\"bob\"]");
	ack_all(&B);
	turn(E, &H);
	post(ids, n);
	for (size_t i = 0; i < n; i++) {
		send_ack(&B, ids[i]);
	}
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	advance(E, &H, VT_RECEIPT_GATHER_MS);

	ck_assert_uint_eq(cap_count(&A, "delivered"), 2);
	ck_assert_uint_eq(frame_refs(cap_nth(&A, "delivered", 0), NULL, 0), VT_RECEIPT_REFS_MAX);
	ck_assert_uint_eq(frame_refs(cap_nth(&A, "delivered", 1), NULL, 0), 1);
	ck_assert_uint_eq(json_id(strstr(cap_nth(&A, "delivered", 1), "\"refs\""), "ref"),
			  ids[VT_RECEIPT_REFS_MAX]);
}
END_TEST

static Suite *group_receipts_suite(void)
{
	Suite *s = suite_create("group_receipts");
	TCase *t = tcase_create("delivered");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, acks_of_one_turn_make_one_receipt_from_the_group);
	tcase_add_test(t, a_group_receipt_gathers_over_turns_until_due);
	tcase_add_test(t, a_stored_copy_gets_a_device_receipt);
	tcase_add_test(t, a_long_group_id_is_the_receipt_s_whole_sender);
	tcase_add_test(t, a_receipt_ends_at_its_byte_limit_and_loses_no_ack);
	tcase_add_test(t, a_receipt_names_at_most_the_limit_of_refs);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return run_suite(group_receipts_suite());
}
