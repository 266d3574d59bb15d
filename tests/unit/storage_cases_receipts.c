/*
 * storage_cases_receipts.c - the storage contract's cases of the receipts a
 * backend makes with acks (VT_OP_ACK with a receipt id), for the backends
 * that make them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "storage_cases.h"

/* A receipt reported on an op, copied while the commit's callback runs. */
struct seen_receipt {
	uint64_t id;
	uint32_t kind;
	int64_t ts;
	char from[16], to[16], dev[16];
	char body[2048]; /* a full receipt's */
	uint32_t nto;
};

struct receipt_commit {
	struct done d;
	const struct vt_op *ops;
	size_t n;
	struct seen_receipt *seen; /* one per op; id 0: none reported */
};

static void on_receipt_commit(void *arg, int status)
{
	struct receipt_commit *rc = arg;

	on_commit(&rc->d, status);
	for (size_t i = 0; i < rc->n; i++) {
		const struct vt_op *op = &rc->ops[i];
		const struct vt_record *r = op->out_receipt;
		struct seen_receipt *s = &rc->seen[i];

		memset(s, 0, sizeof(*s));
		if (r == NULL) {
			continue;
		}
		ck_assert_uint_lt(r->body_len, sizeof(s->body));
		*s = (struct seen_receipt){r->id, r->kind, r->ts, "", "", "", "", op->out_nto};
		snprintf(s->from, sizeof(s->from), "%s", r->from);
		snprintf(s->to, sizeof(s->to), "%s", r->to);
		memcpy(s->body, r->body, r->body_len);
		if (op->out_nto > 0) {
			snprintf(s->dev, sizeof(s->dev), "%s", op->out_to[0].device);
		}
	}
}

/* Commit the @n ops of @ops, which succeeds, noting the receipts reported. */
static void commit_receipts(struct vt_op *ops, size_t n, struct seen_receipt *seen)
{
	struct receipt_commit rc = {{0}, ops, n, seen};

	fx.st.ops->commit(fx.st.self, ops, n, on_receipt_commit, &rc);
	storage_wait(&rc.d.calls);
	ck_assert_int_eq(rc.d.calls, 1);
	ck_assert_int_eq(rc.d.status, 0);
}

/* A batch of @n ACKs of bob's inbox @device, each asking for a receipt. */
static void acks_with_receipts(struct vt_op *ops, const char *device, const uint64_t *ids,
			       size_t n, struct seen_receipt *seen)
{
	for (size_t i = 0; i < n; i++) {
		ack_init(&ops[i], "bob", ids[i]);
		ops[i].inbox.device = device;
		ops[i].receipt_id = 100 + i;
		ops[i].ts = 7000 + (int64_t)i;
	}
	commit_receipts(ops, n, seen);
}

/*
 * ACKs asking for receipts: the store makes them in the ack's commit, one
 * per sender, with the refs of the acks that removed a message; an unknown
 * id, a second ack of an id and one's own message add none.
 */
START_TEST(ack_makes_receipt)
{
	static const uint64_t ids[] = {99, 1, 1, 3, 2};
	static const char body[] = "{\"device\":\"\",\"refs\":[{\"ref\":\"1\",\"cid\":\"c-1\"},"
				   "{\"ref\":\"2\",\"cid\":\"c-2\"}]}";
	struct seen_receipt seen[5];
	struct vt_op ops[5];
	struct put p;
	struct done d;

	st_open(_i);
	put_init(&p, 1, "c-1", 1000, "1", TO("bob"));
	ck_assert_int_eq(commit(&p.op, 1), 0);
	put_init(&p, 2, "c-2", 1000, "1", TO("bob"));
	ck_assert_int_eq(commit(&p.op, 1), 0);
	put_init(&p, 3, "c-3", 1000, "1", TO("bob"));
	p.rec.from = "bob"; /* a copy of bob's own */
	ck_assert_int_eq(commit(&p.op, 1), 0);

	acks_with_receipts(ops, "", ids, 5, seen);
	ck_assert_int_eq(ops[0].status, VT_EUNKNOWNID);
	ck_assert_int_eq(ops[2].status, VT_EUNKNOWNID);
	ck_assert_uint_eq(ops[0].out_receipt_id, 0);
	ck_assert_uint_eq(ops[1].out_receipt_id, 100);
	ck_assert_uint_eq(ops[2].out_receipt_id, 0);
	ck_assert_uint_eq(ops[3].out_receipt_id, 0);
	ck_assert_uint_eq(ops[4].out_receipt_id, 100);

	/* The first receipt of the inbox takes the first op's id, reported there. */
	ck_assert_uint_eq(seen[0].id, 100);
	ck_assert_uint_eq(seen[0].kind, VT_KIND_DELIVERED);
	ck_assert_str_eq(seen[0].from, "bob");
	ck_assert_str_eq(seen[0].to, "alice");
	ck_assert_int_eq(seen[0].ts, 7000);
	ck_assert_str_eq(seen[0].body, body);
	ck_assert_uint_eq(seen[0].nto, 1);
	ck_assert_str_eq(seen[0].dev, VT_HOLDING_DEVICE);
	for (size_t i = 1; i < 5; i++) {
		ck_assert_uint_eq(seen[i].id, 0);
	}

	/* Stored for alice, who has no device yet; bob's inbox is empty. */
	ck_assert_uint_eq(list_in("alice", VT_HOLDING_DEVICE, NULL, &d), 1);
	ck_assert_uint_eq(d.recs[0].id, 100);
	ck_assert_uint_eq(d.recs[0].body_len, strlen(body));
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 0);
}
END_TEST

/* Two senders and more refs than one receipt holds: the k-th takes the k-th id. */
START_TEST(ack_receipts_split_by_sender_and_size)
{
	enum { N = VT_RECEIPT_REFS_MAX + 2 };
	struct seen_receipt seen[N];
	struct vt_op ops[N];
	uint64_t ids[N];
	struct put p;

	st_open(_i);
	for (size_t i = 0; i < N; i++) {
		ids[i] = i + 1;
		put_init(&p, ids[i], "c", 1000, "1", TO("bob"));
		p.rec.from = i == 1 ? "carol" : "alice";
		ck_assert_int_eq(commit(&p.op, 1), 0);
	}
	acks_with_receipts(ops, "", ids, N, seen);

	/* alice's first (ops 0, 2..64), carol's (op 1), alice's second (op 65) */
	ck_assert_uint_eq(ops[0].out_receipt_id, 100);
	ck_assert_uint_eq(ops[1].out_receipt_id, 101);
	ck_assert_uint_eq(ops[N - 2].out_receipt_id, 100);
	ck_assert_uint_eq(ops[N - 1].out_receipt_id, 102);
	ck_assert_uint_eq(seen[0].id, 100);
	ck_assert_str_eq(seen[1].to, "carol");
	ck_assert_uint_eq(seen[2].id, 102);
	ck_assert_int_eq(seen[2].ts, 7002);
	ck_assert_uint_eq(seen[3].id, 0);
	ck_assert_uint_eq(list_in("alice", VT_HOLDING_DEVICE, NULL, NULL), 2);
	ck_assert_uint_eq(list_in("carol", VT_HOLDING_DEVICE, NULL, NULL), 1);
}
END_TEST

/*
 * The body names the device and client id as JSON strings, escaped as the
 * engine escapes them: quotes, backslashes and C0 controls; DEL and UTF-8
 * pass as they are.
 */
START_TEST(ack_receipt_body_escaped)
{
	static const char dev[] = "d\"\\\x01\n\x7f";
	static const char body[] = "{\"device\":\"d\\\"\\\\\\u0001\\n\x7f\",\"refs\":"
				   "[{\"ref\":\"1\",\"cid\":\"c\\t\\u001f\xc3\xa9\"}]}";
	struct seen_receipt seen[1];
	struct vt_op op;
	struct put p;

	st_open(_i);
	ck_assert_int_eq(touch("bob", dev, 1000, NULL), 0);
	put_init(&p, 1, "c\t\x1f\xc3\xa9", 1000, "1", TO("bob"));
	p.to[0].device = dev;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	acks_with_receipts(&op, dev, (const uint64_t[]){1}, 1, seen);
	ck_assert_int_eq(op.status, 0);
	ck_assert_uint_eq(seen[0].id, 100);
	ck_assert_str_eq(seen[0].body, body);
}
END_TEST

/* An ACK of a record its own batch stores: the receipt comes with it all the same. */
START_TEST(ack_of_a_record_its_batch_stores)
{
	struct seen_receipt seen[4];
	struct vt_op ops[4];
	struct put p1, p2;
	struct receipt_commit rc = {{0}, ops, 4, seen};

	st_open(_i);
	put_init(&p1, 1, "c-1", 1000, "1", TO("bob"));
	put_init(&p2, 2, "c-2", 1000, "1", TO("bob"));
	p2.rec.from = "carol";
	ops[0] = p1.op;
	ack_init(&ops[1], "bob", 1);
	ops[2] = p2.op;
	ack_init(&ops[3], "bob", 2);
	ops[1].receipt_id = 100;
	ops[3].receipt_id = 101;
	fx.st.ops->commit(fx.st.self, ops, 4, on_receipt_commit, &rc);
	storage_wait(&rc.d.calls);
	ck_assert_int_eq(rc.d.status, 0);

	ck_assert_uint_eq(ops[1].out_receipt_id, 100);
	ck_assert_uint_eq(ops[3].out_receipt_id, 101);
	ck_assert_str_eq(seen[1].to, "alice");
	ck_assert_str_eq(seen[3].to, "carol");
	ck_assert_uint_eq(list_in("alice", VT_HOLDING_DEVICE, NULL, NULL), 1);
	ck_assert_uint_eq(list_in("carol", VT_HOLDING_DEVICE, NULL, NULL), 1);
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 0);
}
END_TEST

/*
 * Inboxes are told apart by their whole key, as long as a store takes it:
 * two devices of bob, alike but for their last byte, ack one message, and
 * each gets a receipt of its own that names it.
 */
START_TEST(ack_receipts_of_long_devices_apart)
{
	char dev[2][301], body[700];
	struct seen_receipt seen[2];
	struct vt_op ops[2];
	struct put p;

	memset(dev, 'd', sizeof(dev));
	dev[0][300] = dev[1][300] = '\0';
	dev[1][299] = 'e';
	st_open(_i);
	put_init(&p, 1, "c-1", 1000, "1", TO("bob", "bob"));
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(touch("bob", dev[i], 1000, NULL), 0);
		p.to[i].device = dev[i];
	}
	ck_assert_int_eq(commit(&p.op, 1), 0);
	for (int i = 0; i < 2; i++) {
		ack_init(&ops[i], "bob", 1);
		ops[i].inbox.device = dev[i];
		ops[i].receipt_id = 100 + (uint64_t)i;
		ops[i].ts = 7000;
	}
	commit_receipts(ops, 2, seen);
	for (int i = 0; i < 2; i++) {
		snprintf(body, sizeof(body),
			 "{\"device\":\"%s\",\"refs\":[{\"ref\":\"1\",\"cid\":\"c-1\"}]}", dev[i]);
		ck_assert_int_eq(ops[i].status, 0);
		ck_assert_uint_eq(ops[i].out_receipt_id, 100 + (uint64_t)i);
		ck_assert_uint_eq(seen[i].id, 100 + (uint64_t)i);
		ck_assert_str_eq(seen[i].body, body);
	}
}
END_TEST

void storage_receipt_cases_add(TCase *tc)
{
	tcase_add_loop_test(tc, ack_makes_receipt, 0, storage_nbackends);
	tcase_add_loop_test(tc, ack_receipts_split_by_sender_and_size, 0, storage_nbackends);
	tcase_add_loop_test(tc, ack_receipt_body_escaped, 0, storage_nbackends);
	tcase_add_loop_test(tc, ack_of_a_record_its_batch_stores, 0, storage_nbackends);
	tcase_add_loop_test(tc, ack_receipts_of_long_devices_apart, 0, storage_nbackends);
}
