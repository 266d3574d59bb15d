/*
 * storage_cases_devices.c - the storage contract's cases of devices: a
 * user's devices and holding inbox, the expansion of a PUT to them, caps,
 * a full store, delivery flags, group state and device expiry.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "storage_cases.h"

/* A PUT to a user reaches every registered device, and only those. */
START_TEST(users_reach_every_device)
{
	struct put p;
	struct routed r;
	uint32_t ndev;
	uint64_t ids[4];

	st_open(_i);
	ck_assert_int_eq(touch("bob", "d1", 100, &ndev), 0);
	ck_assert_uint_eq(ndev, 1);
	ck_assert_int_eq(touch("bob", "d2", 100, &ndev), 0);
	ck_assert_uint_eq(ndev, 2);
	ck_assert_int_eq(touch("bob", "d1", 200, &ndev), 0); /* a refresh adds none */
	ck_assert_uint_eq(ndev, 2);
	ck_assert_int_eq(touch("bob", VT_HOLDING_DEVICE, 100, NULL), VT_EINVAL);
	ck_assert_int_eq(touch(NULL, "d1", 100, NULL), VT_EINVAL);

	uput_init(&p, 1, TO("bob"));
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(r.n, 2);
	ck_assert(routed_to(&r, "bob/d1") && routed_to(&r, "bob/d2"));
	ck_assert_uint_eq(list_in("bob", "d1", ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(list_in("bob", "d2", ids, NULL), 1);
	ck_assert_uint_eq(list_in("bob", VT_HOLDING_DEVICE, ids, NULL), 0);
	ck_assert_uint_eq(list_in("bob", "", ids, NULL), 0);

	/* one record, two deliveries: acking both frees it */
	ck_assert_int_eq(ack_in("bob", "d1", 1), 0);
	ck_assert_int_eq(ack_in("bob", "d2", 1), 0);
	ck_assert_int_eq(put(1, 100, "\"new\"", TO("erin")), 0);
}
END_TEST

/* No device: the holding inbox; the first device claims it, the second does not. */
START_TEST(holding_claimed_by_first_device)
{
	struct put p;
	struct routed r;
	struct done d;
	uint64_t ids[8];

	st_open(_i);
	uput_init(&p, 1, TO("bob"));
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.inbox[0], "bob/" VT_HOLDING_DEVICE);
	uput_init(&p, 2, TO("bob", "carol"));
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(list_in("bob", VT_HOLDING_DEVICE, ids, NULL), 2);
	ck_assert_int_eq(notified("bob", VT_HOLDING_DEVICE, 2), 0);

	ck_assert_int_eq(touch("bob", "d1", 100, NULL), 0);
	ck_assert_uint_eq(list_in("bob", VT_HOLDING_DEVICE, ids, NULL), 0);
	ck_assert_uint_eq(list_in("bob", "d1", ids, &d), 2);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 2);
	ck_assert_uint_eq(d.recs[0].flags, 0);
	ck_assert_uint_eq(d.recs[1].flags, VT_REC_NOTIFIED);
	ck_assert_uint_eq(list_in("carol", VT_HOLDING_DEVICE, ids, NULL), 1);

	/* the second device claims nothing; new PUTs reach both */
	ck_assert_int_eq(touch("bob", "d2", 100, NULL), 0);
	ck_assert_uint_eq(list_in("bob", "d2", ids, NULL), 0);
	uput_init(&p, 3, TO("bob"));
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_uint_eq(list_in("bob", VT_HOLDING_DEVICE, ids, NULL), 0);

	/* counts moved too: d1 holds 3, so a cap of 3 is full */
	uput_init(&p, 4, TO("bob"));
	p.op.inbox_cap = 3;
	ck_assert_int_eq(put_routed(&p, &r), VT_EINBOXFULL);
	ck_assert_uint_eq(r.n, 0);

	/* the moved deliveries are the record's: acking frees record 1 */
	ck_assert_int_eq(ack_in("bob", VT_HOLDING_DEVICE, 1), VT_EUNKNOWNID);
	ck_assert_int_eq(ack_in("bob", "d1", 1), 0);
	ck_assert_int_eq(put(1, 100, "\"again\"", TO("erin")), 0);
	list_in("erin", "", NULL, &d);
	ck_assert_str_eq(d.bodies[0], "\"again\"");
}
END_TEST

/* A device that already holds a held record keeps one delivery of it. */
START_TEST(claim_keeps_one_delivery)
{
	struct put p;
	uint64_t ids[4];

	st_open(_i);
	put_init(&p, 1, "", 100, "1", TO("bob"));
	p.to[0].device = "d1";
	p.op.users = TO("bob");
	p.op.nusers = 1;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_uint_eq(list_in("bob", "d1", ids, NULL), 1);
	ck_assert_uint_eq(list_in("bob", VT_HOLDING_DEVICE, ids, NULL), 1);
	ck_assert_int_eq(touch("bob", "d1", 100, NULL), 0);
	ck_assert_uint_eq(list_in("bob", "d1", ids, NULL), 1);
	ck_assert_uint_eq(list_in("bob", VT_HOLDING_DEVICE, ids, NULL), 0);
	ck_assert_int_eq(ack_in("bob", "d1", 1), 0);
	ck_assert_int_eq(put(1, 100, "\"new\"", TO("erin")), 0);
}
END_TEST

/* Own copies go to the sender's other devices, never the sending one. */
START_TEST(also_own_excludes_sender)
{
	struct put p;
	struct routed r;
	struct vt_inbox own = {"alice", "a1"}, lone = {"zed", "z1"};
	uint64_t ids[4];

	st_open(_i);
	ck_assert_int_eq(touch("alice", "a1", 100, NULL), 0);
	ck_assert_int_eq(touch("alice", "a2", 100, NULL), 0);
	ck_assert_int_eq(touch("alice", "a3", 100, NULL), 0);
	ck_assert_int_eq(touch("bob", "b1", 100, NULL), 0);
	uput_init(&p, 1, TO("bob"));
	p.op.also_own = &own;
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(r.n, 3);
	ck_assert(routed_to(&r, "bob/b1") && routed_to(&r, "alice/a2") &&
	          routed_to(&r, "alice/a3"));
	ck_assert_uint_eq(list_in("alice", "a1", ids, NULL), 0);
	ck_assert_uint_eq(list_in("alice", "a2", ids, NULL), 1);

	/* a sender with no other device gets no copy, and no holding one */
	ck_assert_int_eq(touch("zed", "z1", 100, NULL), 0);
	uput_init(&p, 2, TO("bob"));
	p.op.also_own = &lone;
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_uint_eq(list_in("zed", VT_HOLDING_DEVICE, ids, NULL), 0);
	ck_assert_uint_eq(list_in("zed", "z1", ids, NULL), 0);
}
END_TEST

/* An inbox named directly and through its user gets one delivery. */
START_TEST(same_inbox_once)
{
	struct put p;
	struct routed r;
	struct vt_inbox own = {"bob", "d2"};
	uint64_t ids[4];

	st_open(_i);
	ck_assert_int_eq(touch("bob", "d1", 100, NULL), 0);
	ck_assert_int_eq(touch("bob", "d2", 100, NULL), 0);
	put_init(&p, 1, "", 100, "1", TO("bob"));
	p.to[0].device = "d1";
	p.op.users = TO("bob", "bob");
	p.op.nusers = 2;
	p.op.also_own = &own;
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_uint_eq(list_in("bob", "d1", ids, NULL), 1);
	ck_assert_uint_eq(list_in("bob", "d2", ids, NULL), 1);
	ck_assert_int_eq(ack_in("bob", "d1", 1), 0);
	ck_assert_int_eq(ack_in("bob", "d1", 1), VT_EUNKNOWNID);
	ck_assert_int_eq(ack_in("bob", "d2", 1), 0);
	ck_assert_int_eq(put(1, 100, "\"new\"", TO("erin")), 0); /* the record was freed */
}
END_TEST

/* A full recipient fails the op, or is skipped with cap_skip; own copies never fail. */
START_TEST(cap_and_cap_skip)
{
	struct put p;
	struct routed r;
	struct vt_inbox own = {"alice", "a1"};
	uint64_t ids[4];

	st_open(_i);
	ck_assert_int_eq(touch("bob", "b1", 100, NULL), 0);
	ck_assert_int_eq(touch("carol", "c1", 100, NULL), 0);
	ck_assert_int_eq(touch("alice", "a1", 100, NULL), 0);
	ck_assert_int_eq(touch("alice", "a2", 100, NULL), 0);
	uput_init(&p, 1, TO("bob", "alice"));
	ck_assert_int_eq(put_routed(&p, &r), 0); /* b1, a1 and a2 hold one each */

	uput_init(&p, 2, TO("carol", "bob"));
	p.op.inbox_cap = 1;
	ck_assert_int_eq(put_routed(&p, &r), VT_EINBOXFULL);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_uint_eq(list_in("carol", "c1", ids, NULL), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 1);

	p.op.cap_skip = 1;
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(p.op.out_skipped, 1);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.inbox[0], "carol/c1");
	ck_assert_uint_eq(list_in("bob", "b1", ids, NULL), 1);

	/* a2 is full: the own copy is skipped, the op succeeds, skips count recipients */
	uput_init(&p, 3, TO("dave"));
	p.op.inbox_cap = 1;
	p.op.also_own = &own;
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(p.op.out_skipped, 0);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.inbox[0], "dave/" VT_HOLDING_DEVICE);
	ck_assert_uint_eq(list_in("alice", "a2", ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 1);
}
END_TEST

/*
 * out_to lists only new deliveries. A dedup hit lists none, or, from a
 * store shared by several engines, the original's unnotified deliveries.
 */
START_TEST(out_to_new_only)
{
	struct put p;
	struct routed r;

	st_open(_i);
	ck_assert_int_eq(touch("bob", "d1", 100, NULL), 0);
	ck_assert_int_eq(touch("bob", "d2", 100, NULL), 0);
	put_init(&p, 1, "c1", 100, "1", TO("bob"));
	p.to[0].device = "d1";
	p.op.dedup = 1;
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.inbox[0], "bob/d1");

	/* the same record again, now to the user: only d2 is new */
	uput_init(&p, 1, TO("bob"));
	p.rec.cid = "c1";
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.inbox[0], "bob/d2");
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(r.n, 0);

	/* another id with the same (from, cid) */
	ck_assert_int_eq(notified("bob", "d1", 1), 0);
	uput_init(&p, 2, TO("bob"));
	p.rec.cid = "c1";
	p.op.dedup = 1;
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(p.op.dup_of, 1);
	ck_assert_uint_eq(r.n, storage_backends[_i].shared ? 1 : 0);
	ck_assert(r.n == 0 || routed_to(&r, "bob/d2"));
}
END_TEST

/* An op of a batch: a TOUCH of (@user, @device) at @ts. */
static struct vt_op touch_op(const char *user, const char *device, int64_t ts)
{
	return (struct vt_op){.kind = VT_OP_TOUCH, .inbox = {user, device}, .ts = ts};
}

/*
 * A full store commits what does not grow it: acks, NOTIFIED, refreshes, a
 * user's first device with its claim, and duplicates found by dedup (or,
 * where the pair made room for the fill, refuses the PUT as new); and
 * its expiry runs. A PUT, a second device and a group state in the same
 * batch are refused op by op, and a batch of nothing else fails whole.
 */
START_TEST(full_store_commits_the_rest)
{
	struct put held, big, dup;
	struct vt_op ops[8];
	uint64_t ids[8];
	struct done d;

	if (!storage_backends[_i].fill) {
		return; /* no limit to reach */
	}
	memset(full_body, 'x', FULL_BODY_LEN);
	full_body[0] = full_body[FULL_BODY_LEN - 1] = '"';
	fx.map_size = 1 << 20;
	st_open(_i);
	ck_assert_int_eq(touch("carol", "c1", 100, NULL), 0);
	uput_init(&held, 1, TO("erin"));
	ck_assert_int_eq(commit(&held.op, 1), 0);
	ck_assert_int_eq(put1(2, "c-2", 100, "2", TO("bob"), 1, 0, NULL), 0);
	ck_assert_int_eq(put(3, 100, "3", TO("bob")), 0);
	storage_backends[_i].fill();

	ops[0] = touch_op("erin", "e1", 100);
	ops[1] = (struct vt_op){.kind = VT_OP_GROUP, .group = "g1", .data = "s", .len = 1};
	ops[2] = (struct vt_op){.kind = VT_OP_NOTIFIED, .inbox = {"erin", "e1"}, .id = 1};
	put_init(&big, 100, "", 100, full_body, TO("bob", "carol"));
	ops[3] = big.op;
	ack_init(&ops[4], "bob", 2);
	ops[4].receipt_id = 200; /* a full store takes the receipt with its ack */
	ops[4].ts = 200;
	ops[5] = touch_op("carol", "c2", 100);
	ops[6] = touch_op("carol", "c1", 200);
	put_init(&dup, 101, "c-2", 100, "2", TO("bob"));
	dup.op.dedup = 1;
	ops[7] = dup.op;
	ck_assert_int_eq(commit(ops, 8), 0);
	ck_assert_int_eq(ops[0].status, 0);
	ck_assert_uint_eq(ops[0].out_ndevices, 1);
	ck_assert_int_eq(ops[1].status, VT_ENOSPC);
	ck_assert_int_eq(ops[2].status, 0);
	ck_assert_int_eq(ops[3].status, VT_ENOSPC);
	ck_assert_uint_eq(ops[3].out_nto, 0);
	ck_assert_int_eq(ops[4].status, 0);
	ck_assert_uint_eq(ops[4].acked_kind, VT_KIND_MESSAGE);
	ck_assert_uint_eq(ops[4].out_receipt_id, 200);
	ck_assert_int_eq(ops[5].status, VT_ENOSPC);
	ck_assert_int_eq(ops[6].status, 0);
	ck_assert_uint_eq(ops[6].out_ndevices, 1);
	if (ops[7].dup_of == 0) {
		/* its pair gave way to the fill (storage.h): a new PUT, refused */
		ck_assert_int_eq(ops[7].status, VT_ENOSPC);
	} else {
		ck_assert_int_eq(ops[7].status, 0);
		ck_assert_uint_eq(ops[7].dup_of, 2);
	}

	ck_assert_str_eq(load_groups(), "");
	ck_assert_uint_eq(list_in("erin", "e1", ids, &d), 1);
	ck_assert_uint_eq(d.recs[0].flags, VT_REC_NOTIFIED);
	ck_assert_uint_eq(list_in("erin", VT_HOLDING_DEVICE, ids, NULL), 0);
	ck_assert_uint_eq(list("bob", 0, 8, ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 3);
	ck_assert_uint_eq(list("carol", 0, 8, ids, NULL), 0);
	ck_assert_uint_eq(list_in("carol", "c2", ids, NULL), 0);
	ck_assert_uint_eq(list_in("alice", VT_HOLDING_DEVICE, ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 200);

	/* nothing in it would shrink the store: refused whole */
	ops[0] = big.op;
	ops[1] = touch_op("carol", "c3", 100);
	ck_assert_int_eq(commit(ops, 2), VT_ENOSPC);
	ck_assert_int_eq(ops[0].status, VT_ENOSPC);
	ck_assert_int_eq(ops[1].status, VT_ENOSPC);

	/* expiry runs on a full store: erin's and bob's are older than 150 */
	ck_assert_uint_eq(expire(1000, 150, 100), 2);
	ck_assert_uint_eq(list("bob", 0, 8, ids, NULL), 0);
}
END_TEST

START_TEST(notified_flag)
{
	struct done d;
	uint64_t ids[4];

	st_open(_i);
	ck_assert_int_eq(put(1, 100, "1", TO("bob", "carol")), 0);
	ck_assert_int_eq(put(2, 100, "2", TO("bob")), 0);
	list_in("bob", "", ids, &d);
	ck_assert_uint_eq(d.recs[0].flags, 0);
	ck_assert_int_eq(notified("bob", "", 1), 0);
	ck_assert_int_eq(notified("bob", "", 1), 0);
	ck_assert_int_eq(notified("bob", "", 9), VT_EUNKNOWNID);
	ck_assert_int_eq(notified("dave", "", 1), VT_EUNKNOWNID);
	ck_assert_int_eq(notified(NULL, "", 1), VT_EUNKNOWNID);
	ck_assert_uint_eq(list_in("bob", "", ids, &d), 2);
	ck_assert_uint_eq(d.recs[0].flags, VT_REC_NOTIFIED);
	ck_assert_uint_eq(d.recs[1].flags, 0);
	list_in("carol", "", ids, &d);
	ck_assert_uint_eq(d.recs[0].flags, 0); /* the flag is the delivery's */
	ck_assert_int_eq(ack("bob", 1), 0);
	ck_assert_int_eq(notified("bob", "", 1), VT_EUNKNOWNID);
}
END_TEST

START_TEST(group_state)
{
	st_open(_i);
	ck_assert_str_eq(load_groups(), "");
	ck_assert_int_eq(set_group("g1", "A"), 0);
	ck_assert_int_eq(set_group("g2", "B"), 0);
	ck_assert_str_eq(load_groups(), "g1=A g2=B");
	ck_assert_int_eq(set_group("g1", "CC"), 0);
	ck_assert_int_eq(set_group("g2", NULL), 0);
	ck_assert_int_eq(set_group("g3", NULL), 0); /* deleting an absent group is fine */
	ck_assert_str_eq(load_groups(), "g1=CC");
	ck_assert_int_eq(set_group(NULL, "X"), VT_EINVAL);
	ck_assert_int_eq(set_group("", "X"), VT_EINVAL);
	ck_assert_str_eq(load_groups(), "g1=CC");
}
END_TEST

/* Devices last seen too long ago go with their deliveries; the holding inbox stays. */
START_TEST(device_expiry)
{
	struct put p;
	struct routed r;
	uint32_t ndev;
	uint64_t ids[8];

	st_open(_i);
	ck_assert_int_eq(touch("bob", "old", 100, NULL), 0);
	ck_assert_int_eq(touch("bob", "new", 100, NULL), 0);
	ck_assert_int_eq(touch("bob", "new", 500, NULL), 0); /* refreshed */
	ck_assert_int_eq(touch("bob", "new", 50, NULL), 0);  /* an older time keeps 500 */
	ck_assert_int_eq(touch("carol", "c1", 100, NULL), 0);
	uput_init(&p, 1, TO("bob", "carol", "dave"));
	ck_assert_int_eq(put_routed(&p, &r), 0);
	uput_init(&p, 2, TO("bob", "carol"));
	ck_assert_int_eq(put_routed(&p, &r), 0);

	/* a bounded sweep removes part of a device's inbox and keeps the device */
	ck_assert_uint_eq(expire_dev(1000, 0, 300, 1), 1);
	ck_assert_uint_eq(expire_dev(1000, 0, 300, 100), 3);
	ck_assert_uint_eq(list_in("bob", "old", ids, NULL), 0);
	ck_assert_uint_eq(list_in("carol", "c1", ids, NULL), 0);
	ck_assert_uint_eq(list_in("bob", "new", ids, NULL), 2);
	ck_assert_uint_eq(list_in("dave", VT_HOLDING_DEVICE, ids, NULL), 1);
	ck_assert_uint_eq(expire_dev(1000, 0, 300, 100), 0);

	/* forgotten: a PUT skips them, carol is back to her holding inbox */
	uput_init(&p, 3, TO("bob", "carol"));
	ck_assert_int_eq(put_routed(&p, &r), 0);
	ck_assert_uint_eq(r.n, 2);
	ck_assert(routed_to(&r, "bob/new") && routed_to(&r, "carol/" VT_HOLDING_DEVICE));
	ck_assert_int_eq(touch("bob", "old", 1000, &ndev), 0);
	ck_assert_uint_eq(ndev, 2);
	ck_assert_uint_eq(list_in("bob", "old", ids, NULL), 0); /* bob had a device: no claim */

	/* records freed with their last delivery: record 2 lives on bob/new only */
	ck_assert_int_eq(ack_in("bob", "new", 2), 0);
	ck_assert_int_eq(put(2, 100, "\"new\"", TO("erin")), 0);
	ck_assert_uint_eq(expire_dev(1000, 0, 600, 100), 2); /* bob/new: 1 and 3 */
	ck_assert_uint_eq(list_in("bob", "new", ids, NULL), 0);
	ck_assert_uint_eq(list_in("dave", VT_HOLDING_DEVICE, ids, NULL), 1);
	ck_assert_uint_eq(list_in("carol", VT_HOLDING_DEVICE, ids, NULL), 1);
}
END_TEST

/* A batch's later ops see its earlier TOUCH, and input it cannot store fails alone. */
START_TEST(touch_in_batch)
{
	struct put p;
	struct vt_op ops[4];
	const char *const bad_users[] = {"bob", NULL};
	uint64_t ids[4];

	st_open(_i);
	uput_init(&p, 1, TO("bob"));
	ck_assert_int_eq(commit(&p.op, 1), 0);
	memset(ops, 0, sizeof(ops));
	ops[0] = (struct vt_op){.kind = VT_OP_TOUCH, .inbox = {"bob", "d1"}, .ts = 100};
	uput_init(&p, 2, TO("bob"));
	ops[1] = p.op;
	ops[2] = (struct vt_op){.kind = VT_OP_NOTIFIED, .inbox = {"bob", "d1"}, .id = 1};
	ops[3] = p.op;
	ops[3].users = bad_users;
	ops[3].nusers = 2;
	ck_assert_int_eq(commit(ops, 4), 0);
	ck_assert_int_eq(ops[0].status, 0);
	ck_assert_int_eq(ops[1].status, 0);
	ck_assert_int_eq(ops[2].status, 0);
	ck_assert_int_eq(ops[3].status, VT_EINVAL);
	ck_assert_uint_eq(list_in("bob", "d1", ids, NULL), 2);
	ck_assert_uint_eq(list_in("bob", VT_HOLDING_DEVICE, ids, NULL), 0);
}

void storage_device_cases_add(TCase *tc)
{
	tcase_add_loop_test(tc, users_reach_every_device, 0, storage_nbackends);
	tcase_add_loop_test(tc, holding_claimed_by_first_device, 0, storage_nbackends);
	tcase_add_loop_test(tc, claim_keeps_one_delivery, 0, storage_nbackends);
	tcase_add_loop_test(tc, also_own_excludes_sender, 0, storage_nbackends);
	tcase_add_loop_test(tc, same_inbox_once, 0, storage_nbackends);
	tcase_add_loop_test(tc, cap_and_cap_skip, 0, storage_nbackends);
	tcase_add_loop_test(tc, out_to_new_only, 0, storage_nbackends);
	tcase_add_loop_test(tc, full_store_commits_the_rest, 0, storage_nbackends);
	tcase_add_loop_test(tc, notified_flag, 0, storage_nbackends);
	tcase_add_loop_test(tc, group_state, 0, storage_nbackends);
	tcase_add_loop_test(tc, device_expiry, 0, storage_nbackends);
	tcase_add_loop_test(tc, touch_in_batch, 0, storage_nbackends);
}
