/*
 * storage_cases_posts.c - the storage contract's cases of events journaled
 * for many devices at once, as a group post is: releases of its copies in
 * many batches, an ack of a copy written as its device went, and a store
 * filled by such events. Only a backend that offers replay() takes them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "storage_cases.h"

/* Members m0, m1, ... of a post, each with the device "d". */
#define MEMBERS_MAX 64

struct post {
	struct put p;
	struct vt_inbox held[MEMBERS_MAX];
	char names[MEMBERS_MAX][8];
};

static void member(char *name, uint32_t i)
{
	snprintf(name, 8, "m%u", (unsigned)i);
}

/* A journaled PUT of @id from alice, a copy held for each of members 0 to @n - 1. */
static void post_init(struct post *w, uint64_t id, uint32_t n)
{
	ck_assert_uint_le(n, MEMBERS_MAX);
	put_init(&w->p, id, "", 100, "\"to the group\"", TO(NULL));
	w->p.op.journal = 1;
	for (uint32_t i = 0; i < n; i++) {
		member(w->names[i], i);
		w->held[i] = (struct vt_inbox){w->names[i], "d"};
	}
	w->p.op.held_to = w->held;
	w->p.op.nheld_to = n;
}

static int post_put(uint64_t id, uint32_t n)
{
	struct post w;
	int rc;

	post_init(&w, id, n);
	rc = commit(&w.p.op, 1);
	return rc != 0 ? rc : w.p.op.status;
}

/* Register members 0 to @n - 1. */
static void members_touch(uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		char name[8];

		member(name, i);
		ck_assert_int_eq(touch(name, "d", 10, NULL), 0);
	}
}

/* Copies listed by members 0 to @n - 1, in all. */
static size_t members_count(uint32_t n)
{
	size_t all = 0;

	for (uint32_t i = 0; i < n; i++) {
		char name[8];

		member(name, i);
		all += count_in(name, "d");
	}
	return all;
}

/* Ops of one batch, with their inboxes' names. */
struct batch_ops {
	struct vt_op ops[4 * MEMBERS_MAX];
	char names[4 * MEMBERS_MAX][8];
	size_t n;
};

/* Add an op of @kind for the copy of @id held for member @m (-1: one never held). */
static void add_op(struct batch_ops *b, enum vt_op_kind kind, uint64_t id, int m)
{
	ck_assert_uint_lt(b->n, 4 * MEMBERS_MAX);
	if (m < 0) {
		snprintf(b->names[b->n], 8, "zz");
	} else {
		member(b->names[b->n], (uint32_t)m);
	}
	b->ops[b->n] = (struct vt_op){.kind = kind, .id = id, .inbox = {b->names[b->n], "d"}};
	b->n++;
}

/* Commit @b; every op answered 0. */
static void batch_commit(struct batch_ops *b)
{
	ck_assert_int_eq(commit(b->ops, b->n), 0);
	for (size_t i = 0; i < b->n; i++) {
		ck_assert_int_eq(b->ops[i].status, 0);
	}
	b->n = 0;
}

/*
 * Two posts to 60 members, their copies released over batches that mix
 * them, newest member first, with a copy released twice and one of a device
 * the post never held; then one alone. A crash replays exactly the copies
 * never released, of the post that has some left, once.
 */
START_TEST(post_released_over_batches)
{
	static struct batch_ops b;

	if (!jopen(_i)) {
		return;
	}
	members_touch(60);
	ck_assert_int_eq(post_put(80, 60), 0);
	ck_assert_int_eq(post_put(81, 60), 0);
	ck_assert_uint_eq(members_count(60), 0);

	for (int round = 0; round < 2; round++) {
		for (int m = 59; m >= 0; m--) {
			if (m % 3 == round) {
				add_op(&b, VT_OP_RELEASE, 80, m);
			}
			if (m % 2 == round) {
				add_op(&b, VT_OP_RELEASE, 81, m);
			}
		}
		add_op(&b, VT_OP_RELEASE, 80, round); /* again */
		add_op(&b, VT_OP_RELEASE, 80, -1);
		batch_commit(&b);
	}
	add_op(&b, VT_OP_RELEASE, 80, 2);
	batch_commit(&b);

	ck_assert_uint_eq(reopen_replay(), 19); /* members 5, 8, ... 59 of post 80 */
	ck_assert_uint_eq(members_count(60), 19);
	ck_assert_uint_eq(count_in("m2", "d"), 0);
	ck_assert_uint_eq(count_in("m4", "d"), 0);
	ck_assert_uint_eq(count_in("m5", "d"), 1);
	ck_assert_uint_eq(count_in("m59", "d"), 1);
	ck_assert_uint_eq(reopen_replay(), 0);
}
END_TEST

/*
 * A copy of a post written as its device went (a PUT naming its inbox),
 * then acked there: the ack takes its copy out of the post's entry, so a
 * crash replays the one copy neither written nor released.
 */
START_TEST(post_copy_written_then_acked)
{
	static struct batch_ops b;
	struct post w;

	if (!jopen(_i)) {
		return;
	}
	members_touch(3);
	ck_assert_int_eq(post_put(90, 3), 0);

	post_init(&w, 90, 3);
	w.p.op.journal = 0;
	w.p.op.held_to = NULL;
	w.p.op.nheld_to = 0;
	w.p.op.to = w.held;
	w.p.op.nto = 1;
	ck_assert_int_eq(commit(&w.p.op, 1), 0);
	ck_assert_int_eq(w.p.op.status, 0);
	ck_assert_uint_eq(count_in("m0", "d"), 1);

	add_op(&b, VT_OP_ACK, 90, 0);
	add_op(&b, VT_OP_RELEASE, 90, 1);
	batch_commit(&b);
	ck_assert_uint_eq(reopen_replay(), 1);
	ck_assert_uint_eq(count_in("m0", "d"), 0);
	ck_assert_uint_eq(count_in("m1", "d"), 0);
	ck_assert_uint_eq(count_in("m2", "d"), 1);
}
END_TEST

#define FULL_MEMBERS 40

/* Journal posts to FULL_MEMBERS members until a full store refuses one; how many it took. */
static uint64_t fill_with_posts(void)
{
	uint64_t id = 1;

	members_touch(FULL_MEMBERS);
	for (; id < 100000; id++) {
		int rc = post_put(id, FULL_MEMBERS);

		if (rc == VT_ENOSPC) {
			break;
		}
		ck_assert_int_eq(rc, 0);
	}
	ck_assert_uint_gt(id, 10);
	return id - 1;
}

/*
 * A store filled by posts journaled for many devices: the room their
 * replay takes, far more than their entries, was kept, so a crash replays
 * every copy into it.
 */
START_TEST(posts_replayed_on_a_full_store)
{
	uint64_t n;

	if (!jopen_full(_i)) {
		return;
	}
	n = fill_with_posts();
	ck_assert_uint_eq(reopen_replay(), n * FULL_MEMBERS);
	ck_assert_uint_eq(count_in("m0", "d"), n);
}
END_TEST

/*
 * The same store without a crash: every copy is written to its device as
 * the devices go, a post's copies in one PUT, and released.
 */
START_TEST(posts_written_on_a_full_store)
{
	static struct batch_ops b;
	uint64_t n;

	if (!jopen_full(_i)) {
		return;
	}
	n = fill_with_posts();
	for (uint64_t id = 1; id <= n; id++) {
		struct post w;

		post_init(&w, id, FULL_MEMBERS);
		w.p.op.journal = 0;
		w.p.op.held_to = NULL;
		w.p.op.nheld_to = 0;
		w.p.op.to = w.held;
		w.p.op.nto = FULL_MEMBERS;
		ck_assert_int_eq(commit(&w.p.op, 1), 0);
		ck_assert_int_eq(w.p.op.status, 0);
		for (int m = 0; m < FULL_MEMBERS; m++) {
			add_op(&b, VT_OP_RELEASE, id, m);
		}
		batch_commit(&b);
	}
	ck_assert_uint_eq(count_in("m39", "d"), n);
	ck_assert_uint_eq(reopen_replay(), 0);
}
END_TEST

void storage_posts_cases_add(TCase *tc)
{
	tcase_add_loop_test(tc, post_released_over_batches, 0, storage_nbackends);
	tcase_add_loop_test(tc, post_copy_written_then_acked, 0, storage_nbackends);
	tcase_add_loop_test(tc, posts_replayed_on_a_full_store, 0, storage_nbackends);
	tcase_add_loop_test(tc, posts_written_on_a_full_store, 0, storage_nbackends);
}
