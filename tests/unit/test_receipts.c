/*
 * test_receipts.c - "delivered" receipts: the acks that end in one turn for
 * the same acking device and sender travel as one receipt listing their refs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "receipts.h"
#include "util.h"

/* Enough messages in flight to fill two receipts and start a third. */
#define MANY (2 * VT_RECEIPT_REFS_MAX + 1)

static struct fake_host H;
static struct vt_engine *E;
static struct cap_conn A, A2, B, B2, C;

static struct vt_engine_config cfg_roomy(void)
{
	struct vt_engine_config c;

	vt_engine_config_init(&c);
	c.window = MANY;     /* every message pushed at once */
	c.msgs_per_sec = 0;  /* sent in one go */
	return c;
}

static void setup(void)
{
	struct vt_engine_config c = cfg_roomy();

	fake_host_init(&H);
	E = engine_new(&H, &c, NULL);
	memset(&A, 0, sizeof(A));
	memset(&A2, 0, sizeof(A2));
	memset(&B, 0, sizeof(B));
	memset(&B2, 0, sizeof(B2));
	memset(&C, 0, sizeof(C));
}

static void teardown(void)
{
	vt_engine_destroy(E);
	cap_free(&A);
	cap_free(&A2);
	cap_free(&B);
	cap_free(&B2);
	cap_free(&C);
}

/* One ack envelope naming @n ids. */
static void ack_ids(struct cap_conn *c, const uint64_t *ids, size_t n)
{
	size_t cap = 32 + n * 24, len;
	char *buf = malloc(cap);

	ck_assert_ptr_nonnull(buf);
	len = (size_t)snprintf(buf, cap, "{\"type\":\"ack\",\"ids\":[");
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(buf + len, cap - len, "%s\"%llu\"", i ? "," : "",
					(unsigned long long)ids[i]);
	}
	len += (size_t)snprintf(buf + len, cap - len, "]}");
	vt_conn_receive(c->conn, buf, len);
	free(buf);
}

/* Send "m0".."m<n-1>" from @from to @to, and return their ids in @ids. */
static void send_n(struct cap_conn *from, const char *to, struct cap_conn *rcpt, uint64_t *ids,
		   size_t n)
{
	size_t had = cap_count(rcpt, "message");
	char cid[24];

	for (size_t i = 0; i < n; i++) {
		snprintf(cid, sizeof(cid), "m%zu", i);
		send_msg(from, cid, to, "0");
	}
	turn(E, &H);
	ck_assert_uint_eq(cap_count(rcpt, "message"), had + n);
	for (size_t i = 0; i < n; i++) {
		ids[i] = cap_nth_id(rcpt, "message", had + i);
	}
}

/* The body of a pushed event: it is the last member of the frame. */
static void assert_body(const char *frame, const char *want)
{
	const char *body;
	size_t len;

	ck_assert_ptr_nonnull(frame);
	body = strstr(frame, "\"body\":");
	ck_assert_ptr_nonnull(body);
	body += strlen("\"body\":");
	len = strlen(body) - 1; /* the frame's closing brace */
	ck_assert_msg(len == strlen(want) && memcmp(body, want, len) == 0,
		      "body %.*s, want %s", (int)len, body, want);
}

/* {"device":@device,"refs":[...]} for refs @ids with client ids "m<@cids[i]>". */
static void want_body(char *out, size_t cap, const char *device, const uint64_t *ids,
		      const size_t *cids, size_t n)
{
	size_t len = (size_t)snprintf(out, cap, "{\"device\":\"%s\",\"refs\":[", device);

	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(out + len, cap - len,
					"%s{\"ref\":\"%llu\",\"cid\":\"m%zu\"}", i ? "," : "",
					(unsigned long long)ids[i], cids[i]);
		ck_assert_uint_lt(len, cap);
	}
	snprintf(out + len, cap - len, "]}");
}

START_TEST(one_ack_envelope_gives_one_receipt_in_ack_order)
{
	uint64_t ids[3], acked[3];
	const size_t order[3] = {2, 0, 1};
	char want[512];

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_n(&A, "bob", &B, ids, 3);

	/* Acked out of id order: the refs keep the order of the acks. */
	for (size_t i = 0; i < 3; i++) {
		acked[i] = ids[order[i]];
	}
	ack_ids(&B, acked, 3);
	turn(E, &H);

	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 0), "\"from\":\"bob\""));
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "delivered", 0), "\"to\":\"alice\""));
	want_body(want, sizeof(want), "", acked, order, 3);
	assert_body(cap_nth(&A, "delivered", 0), want);
}
END_TEST

START_TEST(each_acking_device_gets_its_own_receipt)
{
	const size_t cids[2] = {0, 1};
	uint64_t ids[2];
	char want[512];

	connect_device(E, &H, "alice", "", &A);
	connect_device(E, &H, "bob", "phone", &B);
	connect_device(E, &H, "bob", "laptop", &B2);
	send_n(&A, "bob", &B, ids, 2);
	ck_assert_uint_eq(cap_count(&B2, "message"), 2);

	ack_ids(&B, ids, 2);
	ack_ids(&B2, ids, 2);
	turn(E, &H);

	ck_assert_uint_eq(cap_count(&A, "delivered"), 2);
	want_body(want, sizeof(want), "phone", ids, cids, 2);
	assert_body(cap_nth(&A, "delivered", 0), want);
	want_body(want, sizeof(want), "laptop", ids, cids, 2);
	assert_body(cap_nth(&A, "delivered", 1), want);
}
END_TEST

START_TEST(each_sender_gets_its_own_receipt)
{
	const size_t cids[2] = {0, 1};
	uint64_t from_a[2], from_c[2], both[4];
	char want[512];

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "carol", &C);
	connect_user(E, &H, "bob", &B);
	send_n(&A, "bob", &B, from_a, 2);
	send_n(&C, "bob", &B, from_c, 2);

	/* Interleaved in one envelope. */
	both[0] = from_a[0];
	both[1] = from_c[0];
	both[2] = from_a[1];
	both[3] = from_c[1];
	ack_ids(&B, both, 4);
	turn(E, &H);

	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_uint_eq(cap_count(&C, "delivered"), 1);
	want_body(want, sizeof(want), "", from_a, cids, 2);
	assert_body(cap_nth(&A, "delivered", 0), want);
	want_body(want, sizeof(want), "", from_c, cids, 2);
	assert_body(cap_nth(&C, "delivered", 0), want);
}
END_TEST

START_TEST(a_receipt_carries_at_most_the_limit)
{
	uint64_t ids[MANY], refs[MANY];
	size_t cids[VT_RECEIPT_REFS_MAX];
	char *want = malloc(VT_RECEIPT_REFS_MAX * 64 + 64);

	ck_assert_ptr_nonnull(want);
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_n(&A, "bob", &B, ids, MANY);
	ack_ids(&B, ids, MANY);
	turn(E, &H);

	/* Full, full, and the one that did not fit. */
	ck_assert_uint_eq(cap_count(&A, "delivered"), 3);
	ck_assert_uint_eq(frame_refs(cap_nth(&A, "delivered", 0), NULL, 0), VT_RECEIPT_REFS_MAX);
	ck_assert_uint_eq(frame_refs(cap_nth(&A, "delivered", 1), NULL, 0), VT_RECEIPT_REFS_MAX);
	ck_assert_uint_eq(frame_refs(cap_nth(&A, "delivered", 2), NULL, 0), 1);
	ck_assert_uint_eq(delivered_refs(&A, refs, MANY), MANY);
	for (size_t i = 0; i < MANY; i++) {
		ck_assert_uint_eq(refs[i], ids[i]);
	}

	for (size_t i = 0; i < VT_RECEIPT_REFS_MAX; i++) {
		cids[i] = VT_RECEIPT_REFS_MAX + i;
	}
	want_body(want, VT_RECEIPT_REFS_MAX * 64 + 64, "", ids + VT_RECEIPT_REFS_MAX, cids,
		  VT_RECEIPT_REFS_MAX);
	assert_body(cap_nth(&A, "delivered", 1), want);
	free(want);
}
END_TEST

/*
 * alice's laptop acks, in one envelope: her own copy of what her phone sent,
 * a group event, a read receipt, a message and a group message from bob.
 * Only the two messages are news to bob: one receipt with their refs.
 */
START_TEST(own_copies_group_events_and_receipts_are_left_out)
{
	uint64_t ids[5];
	char want[512], read[256];

	connect_device(E, &H, "alice", "phone", &A);
	connect_device(E, &H, "alice", "laptop", &A2);
	connect_device(E, &H, "bob", "", &B);
	send_msg(&A, "own", "bob", "0");
	send_raw(&B, "{\"type\":\"group_create\",\"id\":\"g1\",\"to\":\"g:x\","
		     "\"body\":{\"name\":\"X\",\"members\":[\"alice\"]}}");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A2, "message"), 1);
	ck_assert_uint_eq(cap_count(&A2, "group"), 1);

	snprintf(read, sizeof(read), "{\"type\":\"read\",\"id\":\"r1\",\"to\":\"alice\","
				     "\"ids\":[\"%llu\"]}",
		 (unsigned long long)cap_nth_id(&B, "message", 0));
	send_raw(&B, read);
	send_msg(&B, "m0", "alice", "0");
	send_msg(&B, "m1", "g:x", "0");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A2, "read"), 1);
	ck_assert_uint_eq(cap_count(&A2, "message"), 3);

	ids[0] = cap_nth_id(&A2, "message", 0);
	ids[1] = cap_nth_id(&A2, "group", 0);
	ids[2] = cap_nth_id(&A2, "read", 0);
	ids[3] = cap_nth_id(&A2, "message", 1);
	ids[4] = cap_nth_id(&A2, "message", 2);
	ack_ids(&A2, ids, 5);
	turn(E, &H);

	ck_assert_uint_eq(cap_count(&A, "delivered"), 0);
	ck_assert_uint_eq(cap_count(&B, "delivered"), 1);
	want_body(want, sizeof(want), "laptop", ids + 3, (const size_t[]){0, 1}, 2);
	assert_body(cap_nth(&B, "delivered", 0), want);
}
END_TEST

/* Mode "offline": acks of messages held in memory end at once, and gather too. */
START_TEST(held_acks_in_mode_offline_share_a_receipt)
{
	struct vt_engine_config c = cfg_roomy();
	const size_t cids[3] = {0, 1, 2};
	struct vt_identity bob;
	struct reply r = {0};
	uint64_t ids[3];
	char want[512];

	vt_engine_destroy(E);
	c.durability = VT_DURABLE_OFFLINE;
	E = engine_new(&H, &c, NULL);
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_n(&A, "bob", &B, ids, 3);

	/* Held: bob's stored inbox is empty. */
	bob = ident(&H, "bob");
	vt_engine_fetch(E, &bob, 0, 0, on_reply, &r);
	turn(E, &H);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_ptr_null(strstr(r.body, "\"cid\""));

	ack_ids(&B, ids, 3);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	want_body(want, sizeof(want), "", ids, cids, 3);
	assert_body(cap_nth(&A, "delivered", 0), want);
}
END_TEST

START_TEST(acks_of_different_turns_get_their_own_receipts)
{
	uint64_t ids[2];
	char want[512];

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_n(&A, "bob", &B, ids, 2);
	ack_ids(&B, ids, 1);
	turn(E, &H);
	ack_ids(&B, ids + 1, 1);
	turn(E, &H);

	ck_assert_uint_eq(cap_count(&A, "delivered"), 2);
	want_body(want, sizeof(want), "", ids, (const size_t[]){0}, 1);
	assert_body(cap_nth(&A, "delivered", 0), want);
	want_body(want, sizeof(want), "", ids + 1, (const size_t[]){1}, 1);
	assert_body(cap_nth(&A, "delivered", 1), want);
}
END_TEST

/* ---- a store that answers when the test says: the memory one, delayed --- */

struct late_call {
	struct vt_op *ops;
	size_t n;
	vt_commit_cb done;
	void *arg;
};

static struct vt_storage_ops late_ops;
static struct late_call late[4];
static int nlate;

static void late_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	ck_assert_int_lt(nlate, 4);
	late[nlate++] = (struct late_call){ops, n, done, arg};
}

/* The oldest held commit goes to the memory store now. */
static struct late_call late_answer(void)
{
	struct late_call c = late[0];

	ck_assert_int_gt(nlate, 0);
	memmove(&late[0], &late[1], (size_t)(nlate - 1) * sizeof(late[0]));
	nlate--;
	wrap_inner.ops->commit(wrap_inner.self, c.ops, c.n, c.done, c.arg);
	return c;
}

/* Answer every commit, those it leads to as well. */
static void late_settle(void)
{
	turn(E, &H);
	while (nlate > 0) {
		late_answer();
		turn(E, &H);
	}
}

static void late_engine(void)
{
	struct vt_engine_config c = cfg_roomy();
	struct vt_storage st = {&late_ops, NULL};

	vt_engine_destroy(E);
	nlate = 0;
	wrap_ops_init(&late_ops, INT64_C(7) * 86400000);
	late_ops.commit = late_commit;
	E = engine_new(&H, &c, &st);
	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	late_settle();
}

struct listed {
	int calls;
	size_t n;
	uint32_t *kinds;
	size_t cap;
};

static void on_alice_list(void *arg, int status, const struct vt_record *recs, size_t n)
{
	struct listed *l = arg;

	ck_assert_int_eq(status, 0);
	l->calls++;
	l->n = n;
	for (size_t i = 0; i < n && i < l->cap; i++) {
		l->kinds[i] = recs[i].kind;
	}
}

/* What the store holds for alice's default device: kinds in @kinds. */
static size_t alice_stored(uint32_t *kinds, size_t cap)
{
	struct listed l = {0, 0, kinds, cap};
	struct vt_inbox in = {"alice", ""};

	wrap_inner.ops->list(wrap_inner.self, &in, 0, 64, on_alice_list, &l);
	ck_assert_int_eq(l.calls, 1);
	return l.n;
}

/*
 * The receipts of acks are in the acks' own commit: once it is answered
 * nothing more is written for them, and a store that never answered
 * another commit would hold them all the same.
 */
START_TEST(receipts_commit_with_their_acks)
{
	uint64_t ids[3];
	uint32_t kinds[8];
	char body[4096];

	late_engine();
	send_msg(&A, "m0", "bob", "0");
	send_msg(&A, "m1", "bob", "0");
	late_settle();
	ids[0] = cap_nth_id(&B, "message", 0);
	ids[1] = cap_nth_id(&B, "message", 1);
	ids[2] = ids[1] + 1000; /* unknown: no receipt */

	ack_ids(&B, ids, 3);
	turn(E, &H);
	ck_assert_int_eq(nlate, 1);
	ck_assert_uint_eq(late[0].n, 3);
	late_answer();

	/* Nothing is left to write: the engine is idle, and the store has it. */
	ck_assert_int_eq(vt_engine_idle(E), 1);
	turn(E, &H);
	ck_assert_int_eq(nlate, 0);
	ck_assert_uint_eq(alice_stored(kinds, 8), 1);
	ck_assert_uint_eq(kinds[0], VT_KIND_DELIVERED);

	/* Pushed once, with the two refs and not the unknown id. */
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	snprintf(body, sizeof(body), "%s", cap_nth(&A, "delivered", 0));
	ck_assert_uint_eq(frame_refs(body, NULL, 0), 2);
}
END_TEST

/* An id acked twice, in one envelope and again in the next turn: one ref. */
START_TEST(an_id_acked_twice_gives_one_receipt)
{
	uint64_t ids[2];

	connect_user(E, &H, "alice", &A);
	connect_user(E, &H, "bob", &B);
	send_n(&A, "bob", &B, ids, 1);
	ids[1] = ids[0];
	ack_ids(&B, ids, 2);
	turn(E, &H);
	ack_ids(&B, ids, 1);
	turn(E, &H);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_uint_eq(frame_refs(cap_nth(&A, "delivered", 0), NULL, 0), 1);
}
END_TEST

/* Shutting down: an ack that commits while it drains brings its receipt along. */
START_TEST(receipts_of_acks_while_shutting_down_are_stored)
{
	uint64_t id;
	uint32_t kinds[8];

	late_engine();
	send_msg(&A, "m0", "bob", "0");
	late_settle();
	id = cap_nth_id(&B, "message", 0);
	ack_ids(&B, &id, 1);
	turn(E, &H);
	ck_assert_int_eq(nlate, 1);

	vt_engine_shutdown(E);
	late_answer();
	ck_assert_int_eq(vt_engine_idle(E), 1);
	ck_assert_uint_eq(alice_stored(kinds, 8), 1);
	ck_assert_uint_eq(kinds[0], VT_KIND_DELIVERED);
}
END_TEST

static Suite *receipts_suite(void)
{
	Suite *s = suite_create("receipts");
	TCase *t = tcase_create("delivered");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, one_ack_envelope_gives_one_receipt_in_ack_order);
	tcase_add_test(t, each_acking_device_gets_its_own_receipt);
	tcase_add_test(t, each_sender_gets_its_own_receipt);
	tcase_add_test(t, a_receipt_carries_at_most_the_limit);
	tcase_add_test(t, own_copies_group_events_and_receipts_are_left_out);
	tcase_add_test(t, held_acks_in_mode_offline_share_a_receipt);
	tcase_add_test(t, acks_of_different_turns_get_their_own_receipts);
	tcase_add_test(t, receipts_commit_with_their_acks);
	tcase_add_test(t, an_id_acked_twice_gives_one_receipt);
	tcase_add_test(t, receipts_of_acks_while_shutting_down_are_stored);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return run_suite(receipts_suite());
}
