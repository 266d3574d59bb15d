/*
 * storage_cases.c - the storage contract, run against every backend:
 * records, listings, dedup, caps, expiry and hostile input. The receipts
 * made with acks are in storage_cases_receipts.c, devices, flags and groups
 * in storage_cases_devices.c, the fixture in storage_fixture.c.
 *
 * Each case runs once per entry of the executable's backend table (a Check
 * loop test, _i being the entry).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "storage_cases.h"

START_TEST(put_list_ack)
{
	uint64_t ids[8];
	struct done d;

	st_open(_i);
	ck_assert_int_eq(put(1, 1000, "\"hi\"", TO("bob", "carol")), 0);
	ck_assert_uint_eq(list("bob", 0, 10, ids, &d), 1);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_str_eq(d.bodies[0], "\"hi\"");
	ck_assert_int_eq(d.recs[0].ts, 1000);
	ck_assert_uint_eq(list("carol", 0, 10, ids, NULL), 1);
	ck_assert_uint_eq(list("dave", 0, 10, ids, NULL), 0);

	ck_assert_int_eq(ack("bob", 1), 0);
	ck_assert_int_eq(ack("bob", 1), VT_EUNKNOWNID);
	ck_assert_int_eq(ack("dave", 1), VT_EUNKNOWNID);
	ck_assert_int_eq(ack("bob", 99), VT_EUNKNOWNID);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 0);
	ck_assert_uint_eq(list("carol", 0, 10, ids, NULL), 1);
}
END_TEST

/* What one listed record says: its sender, copied while the callback runs. */
struct listed_from {
	int calls;
	size_t n;
	char from[128];
};

static void on_list_from(void *arg, int status, const struct vt_record *recs, size_t n)
{
	struct listed_from *l = arg;

	l->calls++;
	l->n = status == 0 ? n : 0;
	snprintf(l->from, sizeof(l->from), "%s", l->n > 0 ? recs[0].from : "");
}

/* A group's receipt is "from" the group: an id longer than a user's lists back whole. */
START_TEST(record_from_a_group_id)
{
	const char *group = "g:0123456789012345678901234567890123456789012345678901234567890123";
	struct vt_inbox in = {"alice", ""};
	struct listed_from l = {0};
	struct put p;

	st_open(_i);
	put_init(&p, 1, "", 1000, "{\"refs\":[]}", TO("alice"));
	p.rec.kind = VT_KIND_DELIVERED;
	p.rec.from = group;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_int_eq(p.op.status, 0);

	fx.st.ops->list(fx.st.self, &in, 0, 10, on_list_from, &l);
	storage_wait(&l.calls);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(l.from, group);
}
END_TEST

/* An ACK that found its delivery says what the record was. */
START_TEST(ack_reports_record)
{
	struct put p;
	struct vt_op ops[2];

	st_open(_i);
	put_init(&p, 1, "c-9", 1000, "1", TO("bob"));
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ack_init(&ops[0], "bob", 1);
	ack_init(&ops[1], "bob", 1);
	ck_assert_int_eq(commit(ops, 2), 0);
	ck_assert_int_eq(ops[0].status, 0);
	ck_assert_uint_eq(ops[0].acked_kind, VT_KIND_MESSAGE);
	ck_assert_str_eq(ops[0].acked_from, "alice");
	ck_assert_str_eq(ops[0].acked_cid, "c-9");
	ck_assert_int_eq(ops[1].status, VT_EUNKNOWNID);
	ck_assert_uint_eq(ops[1].acked_kind, 0);
	ck_assert_str_eq(ops[1].acked_from, "");
}
END_TEST

START_TEST(list_order_and_paging)
{
	uint64_t ids[8];
	const uint64_t order[] = {5, 3, 9, 1, 7};

	st_open(_i);
	for (size_t i = 0; i < 5; i++) {
		ck_assert_int_eq(put(order[i], 1000, "1", TO("bob")), 0);
	}
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 5);
	for (size_t i = 0; i < 5; i++) {
		ck_assert_uint_eq(ids[i], 2 * i + 1);
	}
	ck_assert_uint_eq(list("bob", 3, 2, ids, NULL), 2);
	ck_assert_uint_eq(ids[0], 5);
	ck_assert_uint_eq(ids[1], 7);
	ck_assert_uint_eq(list("bob", 9, 10, ids, NULL), 0);
	ck_assert_uint_eq(list("bob", UINT64_MAX, 10, ids, NULL), 0);
	ck_assert_uint_eq(list("bob", 0, 0, ids, NULL), 0);
}
END_TEST

/* Devices are separate inboxes, and user/device boundaries are unambiguous. */
START_TEST(inbox_keys_distinct)
{
	struct put p;
	struct vt_inbox a = {"ab", "c"}, b = {"a", "bc"};
	struct done d = {0};

	st_open(_i);
	put_init(&p, 1, "", 1000, "1", TO("x"));
	p.to[0] = a;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	fx.st.ops->list(fx.st.self, &b, 0, 10, on_list, &d);
	storage_wait(&d.calls);
	ck_assert_uint_eq(d.n, 0);
	d.calls = 0;
	fx.st.ops->list(fx.st.self, &a, 0, 10, on_list, &d);
	storage_wait(&d.calls);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_uint_eq(list("ab", 0, 10, NULL, NULL), 0);
}
END_TEST

/* Stored once: a later PUT of the same record adds its new deliveries. */
START_TEST(record_stored_once)
{
	struct done d;

	st_open(_i);
	ck_assert_int_eq(put(1, 1000, "\"A\"", TO("bob")), 0);
	ck_assert_int_eq(put(1, 1500, "\"A\"", TO("bob", "carol")), 0);
	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 1);
	list("carol", 0, 10, NULL, &d);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_str_eq(d.bodies[0], "\"A\"");
	ck_assert_int_eq(d.recs[0].ts, 1000);
}
END_TEST

/* The record goes with its last delivery: a new PUT of the id stores anew. */
START_TEST(record_deleted_with_last_delivery)
{
	struct done d;

	st_open(_i);
	ck_assert_int_eq(put(1, 1000, "\"A\"", TO("bob", "carol")), 0);
	ck_assert_int_eq(ack("bob", 1), 0);
	ck_assert_int_eq(put(1, 1000, "\"A\"", TO("dave")), 0);
	list("dave", 0, 10, NULL, &d);
	ck_assert_str_eq(d.bodies[0], "\"A\"");

	ck_assert_int_eq(ack("carol", 1), 0);
	ck_assert_int_eq(ack("dave", 1), 0);
	ck_assert_int_eq(put(1, 1000, "\"C\"", TO("erin")), 0);
	list("erin", 0, 10, NULL, &d);
	ck_assert_str_eq(d.bodies[0], "\"C\"");
}
END_TEST

/* Adding a delivery twice counts it once: one ack then frees the record. */
START_TEST(repeat_delivery_no_double_count)
{
	struct done d;
	uint64_t ids[4];

	st_open(_i);
	ck_assert_int_eq(put(1, 1000, "\"A\"", TO("bob")), 0);
	ck_assert_int_eq(put(1, 1000, "\"A\"", TO("bob", "bob")), 0);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 1);
	ck_assert_int_eq(ack("bob", 1), 0);
	ck_assert_int_eq(ack("bob", 1), VT_EUNKNOWNID);
	ck_assert_int_eq(put(1, 1000, "\"C\"", TO("erin")), 0);
	list("erin", 0, 10, NULL, &d);
	ck_assert_str_eq(d.bodies[0], "\"C\"");
}
END_TEST

START_TEST(dedup_within_window)
{
	uint64_t dup, ids[4];

	st_open(_i);
	ck_assert_int_eq(put1(1, "c1", 1000, "1", TO("bob"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 0);
	ck_assert_int_eq(put1(2, "c1", 1000 + WINDOW_MS - 1, "2", TO("bob"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 1);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 1);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 1);

	/* another cid, or no dedup asked: stored */
	ck_assert_int_eq(put1(3, "c2", 2000, "3", TO("bob"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 0);
	ck_assert_int_eq(put1(4, "c1", 2000, "4", TO("bob"), 0, 0, &dup), 0);
	ck_assert_uint_eq(dup, 0);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 3);

	/* past the window: stored, and now the pair names the new id */
	ck_assert_int_eq(put1(5, "c1", 1000 + WINDOW_MS, "5", TO("bob"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 0);
	ck_assert_int_eq(put1(6, "c1", 1000 + WINDOW_MS + 1, "6", TO("bob"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 5);
}
END_TEST

START_TEST(dedup_in_one_batch)
{
	struct put p[2];
	struct vt_op ops[2];
	uint64_t ids[4];

	st_open(_i);
	put_init(&p[0], 1, "c1", 1000, "1", TO("bob"));
	put_init(&p[1], 2, "c1", 1000, "2", TO("bob"));
	ops[0] = p[0].op;
	ops[1] = p[1].op;
	ops[0].dedup = ops[1].dedup = 1;
	ck_assert_int_eq(commit(ops, 2), 0);
	ck_assert_int_eq(ops[0].status, 0);
	ck_assert_uint_eq(ops[0].dup_of, 0);
	ck_assert_int_eq(ops[1].status, 0);
	ck_assert_uint_eq(ops[1].dup_of, 1);
	ck_assert_uint_eq(ops[1].out_nto, 0); /* op 0 routes them */
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 1);
}
END_TEST

/* The same record stored again (held in memory, then offline) is no dup. */
START_TEST(dedup_same_id_is_not_dup)
{
	uint64_t dup, ids[4];

	st_open(_i);
	ck_assert_int_eq(put1(1, "c1", 1000, "1", TO("bob"), 1, 0, &dup), 0);
	ck_assert_int_eq(put1(1, "c1", 1000, "1", TO("carol"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 0);
	ck_assert_uint_eq(list("carol", 0, 10, ids, NULL), 1);
}
END_TEST

/* A peek at dedup answers what a PUT with dedup would find. */
START_TEST(dedup_peek_answers_as_a_put_would)
{
	struct vt_record r = {2, VT_KIND_MESSAGE, "alice", "bob", "c1", 1000, "2", 1};
	uint64_t dup, id = 0;

	st_open(_i);
	if (fx.st.ops->dedup_peek == NULL) {
		return; /* a backend shared by several engines offers none */
	}
	ck_assert_int_eq(fx.st.ops->dedup_peek(fx.st.self, &r, &id), 0);
	ck_assert_int_eq(put1(1, "c1", 1000, "1", TO("bob"), 1, 0, &dup), 0);

	r.ts = 1000 + WINDOW_MS - 1;
	ck_assert_int_eq(fx.st.ops->dedup_peek(fx.st.self, &r, &id), 1);
	ck_assert_uint_eq(id, 1);

	/* the record itself, past the window, another cid, no cid: none */
	r.id = 1;
	ck_assert_int_eq(fx.st.ops->dedup_peek(fx.st.self, &r, &id), 0);
	r.id = 2;
	r.ts = 1000 + WINDOW_MS;
	ck_assert_int_eq(fx.st.ops->dedup_peek(fx.st.self, &r, &id), 0);
	r.ts = 1000;
	r.cid = "c2";
	ck_assert_int_eq(fx.st.ops->dedup_peek(fx.st.self, &r, &id), 0);
	r.cid = "";
	ck_assert_int_eq(fx.st.ops->dedup_peek(fx.st.self, &r, &id), 0);
}
END_TEST

/* Expiry forgets a dedup pair once it is older than the window at now. */
START_TEST(dedup_expiry)
{
	uint64_t dup;

	st_open(_i);
	ck_assert_int_eq(put1(1, "c1", 1000, "1", TO("bob"), 1, 0, &dup), 0);
	expire(1000 + WINDOW_MS - 1, 0, 100);
	ck_assert_int_eq(put1(2, "c1", 1500, "2", TO("bob"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 1);

	expire(1000 + WINDOW_MS + 10, 0, 100);
	ck_assert_int_eq(put1(3, "c1", 1500, "3", TO("bob"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 0);
}
END_TEST

START_TEST(inbox_cap)
{
	uint64_t ids[8];
	struct put p[2];
	struct vt_op ops[3];

	st_open(_i);
	ck_assert_int_eq(put1(1, "", 1000, "1", TO("bob"), 0, 2, NULL), 0);
	ck_assert_int_eq(put1(2, "", 1000, "2", TO("bob"), 0, 2, NULL), 0);
	ck_assert_int_eq(put1(3, "", 1000, "3", TO("carol", "bob"), 0, 2, NULL), VT_EINBOXFULL);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 2);
	ck_assert_uint_eq(list("carol", 0, 10, ids, NULL), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 2);

	/* a full op fails alone; the rest of its batch applies */
	put_init(&p[0], 4, "", 1000, "4", TO("bob"));
	put_init(&p[1], 5, "", 1000, "5", TO("carol"));
	ops[0] = p[0].op;
	ops[1] = p[1].op;
	ops[0].inbox_cap = ops[1].inbox_cap = 2;
	ack_init(&ops[2], "bob", 1);
	ck_assert_int_eq(commit(ops, 3), 0);
	ck_assert_int_eq(ops[0].status, VT_EINBOXFULL);
	ck_assert_int_eq(ops[1].status, 0);
	ck_assert_int_eq(ops[2].status, 0);
	ck_assert_int_eq(put1(6, "", 1000, "6", TO("bob"), 0, 2, NULL), 0);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 2);
	ck_assert_uint_eq(ids[0], 2);
	ck_assert_uint_eq(ids[1], 6);

	/* an existing delivery needs no room: re-storing it is not "full" */
	ck_assert_int_eq(put1(6, "", 1000, "6", TO("bob"), 0, 2, NULL), 0);
}
END_TEST

START_TEST(expire_by_time)
{
	uint64_t ids[8];

	st_open(_i);
	ck_assert_int_eq(put(1, 100, "1", TO("bob", "carol")), 0);
	ck_assert_int_eq(put(2, 200, "2", TO("bob")), 0);
	ck_assert_int_eq(put(3, 300, "3", TO("bob")), 0);
	ck_assert_int_eq(ack("carol", 1), 0);

	ck_assert_uint_eq(expire(1000, 250, 100), 2);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 3);
	ck_assert_uint_eq(expire(1000, 250, 100), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 3);
}
END_TEST

START_TEST(expire_at_most_max)
{
	uint64_t ids[8];
	struct done d;

	st_open(_i);
	ck_assert_int_eq(put(1, 100, "\"A\"", TO("bob", "carol", "dave")), 0);
	ck_assert_int_eq(put(2, 100, "2", TO("bob")), 0);
	ck_assert_uint_eq(expire(1000, 250, 2), 2);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL) + list("carol", 0, 10, ids, NULL) +
	                          list("dave", 0, 10, ids, NULL),
	                  2);
	/* the record of a partly expired message is still whole */
	ck_assert_int_eq(put(1, 150, "\"A\"", TO("erin")), 0);
	list("erin", 0, 10, NULL, &d);
	ck_assert_str_eq(d.bodies[0], "\"A\"");
	ck_assert_int_eq(d.recs[0].ts, 100);
	ck_assert_uint_eq(expire(1000, 250, 0), 0);
	ck_assert_uint_eq(expire(1000, 250, 100), 3);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 0);
}
END_TEST

START_TEST(max_id_never_goes_back)
{
	st_open(_i);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 0);
	ck_assert_int_eq(put(5, 100, "5", TO("bob")), 0);
	ck_assert_int_eq(ack("bob", 5), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 5);
	ck_assert_int_eq(put(3, 100, "3", TO("bob")), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 5);
}
END_TEST

/* Input the backend cannot store fails its op alone and crashes nothing. */
START_TEST(hostile_input)
{
	char big[1024];
	struct put p[2];
	struct vt_op ops[3];
	struct vt_inbox none = {NULL, NULL};
	struct done d = {0};

	st_open(_i);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	put_init(&p[0], 0, "", 100, "1", TO("bob"));
	put_init(&p[1], 2, "", 100, "2", TO(big));
	ops[0] = p[0].op;
	ops[1] = p[1].op;
	ack_init(&ops[2], NULL, 7);
	ops[2].inbox.user = NULL;
	ck_assert_int_eq(commit(ops, 3), 0);
	ck_assert_int_eq(ops[0].status, VT_EINVAL);
	ck_assert_int_eq(ops[1].status, VT_EINVAL);
	ck_assert_int_eq(ops[2].status, VT_EUNKNOWNID);
	fx.st.ops->list(fx.st.self, &none, 0, 10, on_list, &d);
	storage_wait(&d.calls);
	ck_assert_int_eq(d.calls, 1);
	ck_assert_uint_eq(d.n, 0);
	ck_assert_int_eq(commit(NULL, 0), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 0);
}
END_TEST

/* 100k records in one inbox: stored, paged through and acked in order. */
START_TEST(many_records)
{
	enum { N = 100000, B = 1000 };
	static struct put p[B];
	static struct vt_op ops[B];
	uint64_t ids[64], after = 0, seen = 0;
	size_t n;

	st_open(_i);
	for (uint64_t base = 0; base < N; base += B) {
		for (size_t i = 0; i < B; i++) {
			put_init(&p[i], base + i + 1, "", 100, "1", TO("bob"));
			ops[i] = p[i].op;
		}
		ck_assert_int_eq(commit(ops, B), 0);
	}
	while ((n = list("bob", after, 64, ids, NULL)) > 0) {
		ck_assert_uint_eq(ids[0], after + 1);
		seen += n;
		after = ids[n - 1];
	}
	ck_assert_uint_eq(seen, N);
	for (uint64_t base = 0; base < N; base += B) {
		for (size_t i = 0; i < B; i++) {
			ack_init(&ops[i], "bob", base + i + 1);
		}
		ck_assert_int_eq(commit(ops, B), 0);
		ck_assert_int_eq(ops[B - 1].status, 0);
	}
	ck_assert_uint_eq(list("bob", 0, 64, ids, NULL), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), N);
}
END_TEST

/*
 * Ids and times usually only grow, and a backend may count on it to fill
 * its pages; they also come out of order (a store rolled back, a clock set
 * back, several senders in one millisecond), and are then kept all the same.
 */
START_TEST(keys_out_of_order)
{
	static const uint64_t order[] = {50, 40, 60, 45, 10, 70, 55};
	enum { N = sizeof(order) / sizeof(order[0]) };
	struct put p[N];
	struct vt_op ops[N];
	uint64_t dup, ids[16];
	struct done d;
	char cid[N][16], body[N][16];

	st_open(_i);
	for (size_t i = 0; i < N; i++) {
		snprintf(cid[i], sizeof(cid[i]), "c%llu", (unsigned long long)order[i]);
		snprintf(body[i], sizeof(body[i]), "%llu", (unsigned long long)order[i]);
		put_init(&p[i], order[i], cid[i], 5000 - (int64_t)order[i], body[i], TO("bob"));
		ops[i] = p[i].op;
		ops[i].dedup = 1;
	}
	ck_assert_int_eq(commit(ops, 4), 0);     /* 50, 40, 60, 45 in one batch */
	ck_assert_int_eq(commit(ops + 4, 1), 0); /* then older and newer alone */
	ck_assert_int_eq(commit(ops + 5, 1), 0);
	ck_assert_int_eq(commit(ops + 6, 1), 0);
	for (size_t i = 0; i < N; i++) {
		ck_assert_int_eq(ops[i].status, 0);
		ck_assert_uint_eq(ops[i].dup_of, 0);
	}

	ck_assert_uint_eq(list("bob", 0, 16, ids, &d), N);
	for (size_t i = 1; i < N; i++) {
		ck_assert_uint_lt(ids[i - 1], ids[i]);
	}
	ck_assert_str_eq(d.bodies[0], "10");
	ck_assert_str_eq(d.bodies[N - 1], "70");

	/* each pair recognises its re-send, whatever order it was written in */
	ck_assert_int_eq(put1(80, "c40", 5000, "x", TO("bob"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 40);
	ck_assert_int_eq(put1(81, "c10", 5000, "x", TO("bob"), 1, 0, &dup), 0);
	ck_assert_uint_eq(dup, 10);

	for (size_t i = 0; i < N; i++) {
		ck_assert_int_eq(ack("bob", order[i]), 0);
	}
	ck_assert_uint_eq(list("bob", 0, 16, ids, NULL), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 70);
}
END_TEST

/* Calls made from inside a listing, and how they ended. */
struct reenter {
	int calls;
	struct vt_op ack;
	struct put put;
	struct done acked, stored;
};

static void ack_inside_list(void *arg, int status, const struct vt_record *recs, size_t n)
{
	struct reenter *r = arg;

	ck_assert_uint_eq(n, 2);
	ack_init(&r->ack, "bob", recs[0].id);
	fx.st.ops->commit(fx.st.self, &r->ack, 1, on_commit, &r->acked);
	put_init(&r->put, 7, "", 100, "7", TO("bob"));
	fx.st.ops->commit(fx.st.self, &r->put.op, 1, on_commit, &r->stored);
	r->calls++;
}

/*
 * A callback may call the backend again (the engine acks from a listing).
 * An asynchronous backend completes those calls later, so they are checked
 * once the listing has returned.
 */
START_TEST(reentrant_callbacks)
{
	struct vt_inbox bob = {"bob", ""};
	uint64_t ids[8];
	static struct reenter r;

	st_open(_i);
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(put(1, 100, "1", TO("bob")), 0);
	ck_assert_int_eq(put(2, 100, "2", TO("bob")), 0);
	fx.st.ops->list(fx.st.self, &bob, 0, 10, ack_inside_list, &r);
	storage_wait(&r.calls);
	storage_wait(&r.acked.calls);
	storage_wait(&r.stored.calls);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(r.acked.status, 0);
	ck_assert_int_eq(r.ack.status, 0);
	ck_assert_int_eq(r.stored.status, 0);
	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 2);
	ck_assert_uint_eq(ids[0], 2);
	ck_assert_uint_eq(ids[1], 7);
}
END_TEST

void storage_cases_add(TCase *tc)
{
	tcase_add_loop_test(tc, put_list_ack, 0, storage_nbackends);
	tcase_add_loop_test(tc, record_from_a_group_id, 0, storage_nbackends);
	tcase_add_loop_test(tc, ack_reports_record, 0, storage_nbackends);
	tcase_add_loop_test(tc, list_order_and_paging, 0, storage_nbackends);
	tcase_add_loop_test(tc, inbox_keys_distinct, 0, storage_nbackends);
	tcase_add_loop_test(tc, record_stored_once, 0, storage_nbackends);
	tcase_add_loop_test(tc, record_deleted_with_last_delivery, 0, storage_nbackends);
	tcase_add_loop_test(tc, repeat_delivery_no_double_count, 0, storage_nbackends);
	tcase_add_loop_test(tc, dedup_within_window, 0, storage_nbackends);
	tcase_add_loop_test(tc, dedup_in_one_batch, 0, storage_nbackends);
	tcase_add_loop_test(tc, dedup_same_id_is_not_dup, 0, storage_nbackends);
	tcase_add_loop_test(tc, dedup_expiry, 0, storage_nbackends);
	tcase_add_loop_test(tc, dedup_peek_answers_as_a_put_would, 0, storage_nbackends);
	tcase_add_loop_test(tc, inbox_cap, 0, storage_nbackends);
	tcase_add_loop_test(tc, expire_by_time, 0, storage_nbackends);
	tcase_add_loop_test(tc, expire_at_most_max, 0, storage_nbackends);
	tcase_add_loop_test(tc, max_id_never_goes_back, 0, storage_nbackends);
	tcase_add_loop_test(tc, hostile_input, 0, storage_nbackends);
	tcase_add_loop_test(tc, many_records, 0, storage_nbackends);
	tcase_add_loop_test(tc, keys_out_of_order, 0, storage_nbackends);
	tcase_add_loop_test(tc, reentrant_callbacks, 0, storage_nbackends);
	storage_device_cases_add(tc);
	storage_revoke_cases_add(tc);
	storage_journal_cases_add(tc);
	storage_posts_cases_add(tc);
}
