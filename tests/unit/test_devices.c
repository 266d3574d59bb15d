/*
 * test_devices.c - several devices per user, receipts, typing, and the push
 * hook, through the engine on the memory backend.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static struct fake_host H;
static struct vt_engine *E;
static struct cap_conn A1, A2, B1, B2, C1;

/* A notifier that counts its calls per (user, device, id). */
static struct {
	int calls;
	char last[256];
} pushed;

static void count_notify(void *self, const struct vt_notice *n)
{
	pushed.calls++;
	snprintf(pushed.last, sizeof(pushed.last), "%s/%s/%llu", n->user, n->device,
		 (unsigned long long)n->id);
}

static void count_destroy(void *self)
{
}

static const struct vt_notifier_ops count_ops = {.notify = count_notify,
						 .destroy = count_destroy};

static void setup(void)
{
	struct vt_engine_config c;

	vt_engine_config_init(&c);
	c.ack_timeout_ms = 1000;
	c.max_retries = 1;
	c.device_ttl_ms = 3600 * 1000;
	fake_host_init(&H);
	E = engine_new(&H, &c, NULL);
	vt_engine_set_notifier(E, (struct vt_notifier){.ops = &count_ops});
	memset(&pushed, 0, sizeof(pushed));
}

static void teardown(void)
{
	vt_engine_destroy(E);
	cap_free(&A1);
	cap_free(&A2);
	cap_free(&B1);
	cap_free(&B2);
	cap_free(&C1);
}

static void reconnect(struct cap_conn *c, const char *user, const char *device)
{
	if (c->conn != NULL && !c->closed) {
		vt_conn_close(c->conn);
	}
	turn(E, &H);
	cap_free(c);
	connect_device(E, &H, user, device, c);
}

/* A transport that keeps pushed envelopes by reference, as the WebSocket gateway does. */
struct ref_conn {
	struct vt_conn *conn;
	struct vt_frame *held[8];
	size_t n;
};

static int ref_send(void *ctx, const char *data, size_t len)
{
	return 0; /* answers (accepted, errors) come as copies; not looked at here */
}

static int ref_send_frame(void *ctx, struct vt_frame *f)
{
	struct ref_conn *rc = ctx;

	ck_assert_uint_lt(rc->n, 8);
	rc->held[rc->n++] = vt_frame_hold(f);
	return 0;
}

static void ref_close(void *ctx, int code, const char *reason)
{
}

static const struct vt_transport_ops ref_ops = {
	.send = ref_send, .close = ref_close, .send_frame = ref_send_frame};

static void ref_open(struct ref_conn *rc, const char *user, const char *device)
{
	struct vt_identity id = ident(&H, user);

	snprintf(id.device, sizeof(id.device), "%s", device);
	memset(rc, 0, sizeof(*rc));
	ck_assert_int_eq(vt_conn_open(E, &id, &ref_ops, rc, &rc->conn), 0);
	turn(E, &H);
}

START_TEST(devices_share_one_envelope_by_reference)
{
	struct ref_conn phone, laptop;
	const char *data;
	char copy[512];
	size_t len;

	connect_device(E, &H, "alice", "phone", &A1);
	ref_open(&phone, "bob", "phone");
	ref_open(&laptop, "bob", "laptop");
	send_msg(&A1, "m1", "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(phone.n, 1);
	ck_assert_uint_eq(laptop.n, 1);
	ck_assert_ptr_eq(phone.held[0], laptop.held[0]);

	data = vt_frame_data(phone.held[0], &len);
	ck_assert_uint_lt(len, sizeof(copy));
	memcpy(copy, data, len);
	copy[len] = '\0';
	ck_assert_ptr_nonnull(strstr(copy, "\"type\":\"message\""));
	ck_assert_ptr_nonnull(strstr(copy, "\"cid\":\"m1\""));

	/* The bytes outlive the engine's interest in them while held. */
	vt_conn_close(phone.conn);
	vt_conn_close(laptop.conn);
	turn(E, &H);
	data = vt_frame_data(phone.held[0], &len);
	ck_assert_mem_eq(data, copy, len);
	vt_frame_release(phone.held[0]);
	vt_frame_release(laptop.held[0]);
	vt_frame_release(NULL);
}
END_TEST

START_TEST(each_device_gets_each_message_and_acks_on_its_own)
{
	uint64_t id;

	connect_device(E, &H, "alice", "phone", &A1);
	connect_device(E, &H, "bob", "phone", &B1);
	connect_device(E, &H, "bob", "laptop", &B2);
	send_msg(&A1, "m1", "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B1, "message"), 1);
	ck_assert_uint_eq(cap_count(&B2, "message"), 1);
	id = json_id(cap_nth(&B1, "message", 0), "id");
	ck_assert_uint_eq(json_id(cap_nth(&B2, "message", 0), "id"), id);

	send_ack(&B1, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A1, "delivered"), 1);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A1, "delivered", 0), "\"device\":\"phone\""));

	/* The laptop still owes its ack: after a reconnect it comes again. */
	reconnect(&B2, "bob", "laptop");
	ck_assert_uint_eq(cap_count(&B2, "message"), 1);
	send_ack(&B2, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A1, "delivered"), 2);
	reconnect(&B2, "bob", "laptop");
	ck_assert_uint_eq(cap_count(&B2, "message"), 0);
}
END_TEST

START_TEST(sent_messages_reach_the_senders_other_devices)
{
	connect_device(E, &H, "alice", "phone", &A1);
	connect_device(E, &H, "alice", "laptop", &A2);
	connect_device(E, &H, "bob", "", &B1);
	send_msg(&A1, "m1", "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A2, "message"), 1);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A2, "message", 0), "\"from\":\"alice\""));
	ck_assert_ptr_nonnull(strstr(cap_nth(&A2, "message", 0), "\"to\":\"bob\""));
	ck_assert_uint_eq(cap_count(&A1, "message"), 0);

	/* Acking one's own copy makes no receipt. */
	send_ack(&A2, json_id(cap_nth(&A2, "message", 0), "id"));
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A1, "delivered"), 0);
}
END_TEST

START_TEST(first_device_claims_what_waited_for_a_new_user)
{
	connect_device(E, &H, "alice", "", &A1);
	send_msg(&A1, "m1", "carol", "\"welcome\"");
	turn(E, &H);
	ck_assert_uint_eq(pushed.calls, 1);
	ck_assert_str_eq(pushed.last, "carol/*/1");

	connect_device(E, &H, "carol", "tablet", &C1);
	ck_assert_uint_eq(cap_count(&C1, "message"), 1);
	send_ack(&C1, json_id(cap_nth(&C1, "message", 0), "id"));
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A1, "delivered"), 1);
}
END_TEST

START_TEST(read_receipts_reach_every_device_of_the_sender)
{
	char read[256];
	uint64_t id;

	connect_device(E, &H, "alice", "phone", &A1);
	connect_device(E, &H, "alice", "laptop", &A2);
	connect_device(E, &H, "bob", "", &B1);
	send_msg(&A1, "m1", "bob", "\"hi\"");
	turn(E, &H);
	id = json_id(cap_nth(&B1, "message", 0), "id");

	snprintf(read, sizeof(read), "{\"type\":\"read\",\"id\":\"r1\",\"to\":\"alice\","
				     "\"ids\":[\"%llu\"]}", (unsigned long long)id);
	send_raw(&B1, read);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B1, "accepted"), 1);
	ck_assert_uint_eq(cap_count(&A1, "read"), 1);
	ck_assert_uint_eq(cap_count(&A2, "read"), 1);

	/* A read receipt is never receipted itself. */
	send_ack(&A1, json_id(cap_nth(&A1, "read", 0), "id"));
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B1, "delivered"), 0);
}
END_TEST

START_TEST(typing_goes_to_connected_devices_only_and_is_limited)
{
	connect_device(E, &H, "alice", "", &A1);
	connect_device(E, &H, "bob", "phone", &B1);
	vt_conn_close(B1.conn);
	turn(E, &H);
	cap_free(&B1);
	connect_device(E, &H, "bob", "laptop", &B2);

	for (int i = 0; i < 7; i++) {
		send_raw(&A1, "{\"type\":\"typing\",\"to\":\"bob\"}");
	}
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B2, "typing"), 5);
	ck_assert_uint_eq(cap_count(&A1, "error"), 2);
	ck_assert_ptr_nonnull(strstr(cap_nth(&A1, "error", 0), "rate_limited"));

	/* Never stored: the phone comes back to nothing. */
	connect_device(E, &H, "bob", "phone", &B1);
	ck_assert_uint_eq(cap_count(&B1, "typing"), 0);
	ck_assert_uint_eq(cap_count(&B1, "message"), 0);
}
END_TEST

/* Field case B27: one call per offline message and device, none when acked. */
START_TEST(push_hook_called_once_per_offline_delivery)
{
	uint64_t id;

	connect_device(E, &H, "alice", "", &A1);
	connect_device(E, &H, "bob", "", &B1);

	/* (a) online and acking: no call */
	send_msg(&A1, "a", "bob", "1");
	turn(E, &H);
	send_ack(&B1, json_id(cap_nth(&B1, "message", 0), "id"));
	turn(E, &H);
	ck_assert_int_eq(pushed.calls, 0);

	/* (c) connected but silent: retries, then offline: one call */
	send_msg(&A1, "c", "bob", "1");
	turn(E, &H);
	id = json_id(cap_nth(&B1, "message", 1), "id");
	advance(E, &H, 10000);
	ck_assert_int_eq(pushed.calls, 1);

	/* Pushed again on reconnect and dropped again: no second call. */
	reconnect(&B1, "bob", "");
	ck_assert_uint_eq(json_id(cap_nth(&B1, "message", 0), "id"), id);
	vt_conn_close(B1.conn);
	B1.closed = 1;
	turn(E, &H);
	ck_assert_int_eq(pushed.calls, 1);

	/* (b) offline: one call */
	send_msg(&A1, "b", "bob", "1");
	turn(E, &H);
	ck_assert_int_eq(pushed.calls, 2);
}
END_TEST

START_TEST(push_hook_for_each_offline_group_member)
{
	connect_device(E, &H, "alice", "", &A1);
	send_raw(&A1, "{\"type\":\"group_create\",\"id\":\"c\",\"to\":\"g:t\","
		      "\"body\":{\"name\":\"T\",\"members\":[\"x\",\"y\",\"z\"]}}");
	turn(E, &H);
	pushed.calls = 0;
	send_msg(&A1, "m", "g:t", "1");
	turn(E, &H);
	ck_assert_int_eq(pushed.calls, 3);
}
END_TEST

START_TEST(unused_device_is_forgotten_with_its_messages)
{
	connect_device(E, &H, "alice", "", &A1);
	connect_device(E, &H, "bob", "old", &B1);
	vt_conn_close(B1.conn);
	B1.closed = 1;
	connect_device(E, &H, "bob", "new", &B2);
	send_msg(&A1, "m1", "bob", "1");
	turn(E, &H);

	/* Two hours on, only "new" has been seen: "old" is gone. */
	H.wall += INT64_C(2) * 3600 * 1000;
	reconnect(&B2, "bob", "new");
	advance(E, &H, 61000);
	cap_free(&B1);
	connect_device(E, &H, "bob", "old", &B1);
	ck_assert_uint_eq(cap_count(&B1, "message"), 0);
	ck_assert_uint_ge(cap_count(&B2, "message"), 1);
}
END_TEST

/* A device connected all along is not forgotten, nor what it still owes. */
START_TEST(connected_device_is_never_forgotten)
{
	connect_device(E, &H, "alice", "", &A1);
	connect_device(E, &H, "bob", "phone", &B1);
	send_msg(&A1, "m1", "bob", "1");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B1, "message"), 1);

	/* Two hours pass; bob never acks and never reconnects. */
	H.wall += INT64_C(2) * 3600 * 1000;
	advance(E, &H, 61000);
	reconnect(&B1, "bob", "phone");
	ck_assert_uint_ge(cap_count(&B1, "message"), 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("devices");
	TCase *t = tcase_create("devices");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, each_device_gets_each_message_and_acks_on_its_own);
	tcase_add_test(t, devices_share_one_envelope_by_reference);
	tcase_add_test(t, sent_messages_reach_the_senders_other_devices);
	tcase_add_test(t, first_device_claims_what_waited_for_a_new_user);
	tcase_add_test(t, read_receipts_reach_every_device_of_the_sender);
	tcase_add_test(t, typing_goes_to_connected_devices_only_and_is_limited);
	tcase_add_test(t, push_hook_called_once_per_offline_delivery);
	tcase_add_test(t, push_hook_for_each_offline_group_member);
	tcase_add_test(t, unused_device_is_forgotten_with_its_messages);
	tcase_add_test(t, connected_device_is_never_forgotten);
	suite_add_tcase(s, t);
	return run_suite(s);
}
