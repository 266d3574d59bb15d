/*
 * test_store_oom.c - the memory backend running out of memory in a commit.
 *
 * The executable is linked with ld's --wrap for malloc, calloc and realloc,
 * so every allocation of the library goes through oom_wrap.c, which can
 * fail the k-th one once armed. A commit must then either complete, all
 * of it, or fail with VT_ENOMEM having changed nothing (storage.h,
 * vt_commit_cb): the memory backend has no undo, so all a batch needs,
 * the receipts its acks owe included, is allocated before any op runs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "oom_wrap.h"
#include "storage_cases.h"

/* ---- the backend ---- */

static int open_memory(void)
{
	return vt_storage_memory_create(WINDOW_MS, &fx.st);
}

const struct storage_backend storage_backends[] = {
        {"memory", open_memory, 0, 0, NULL},
};

const int storage_nbackends = 1;

void storage_wait(int *calls)
{
	(void)calls; /* the memory backend answers inside each call */
}

/* ---- acks owing receipts ---- */

#define NOPS 5

/* What a batch is made of; its ops point into it. */
struct batch {
	struct put p4;
	struct vt_op ops[NOPS];
};

/*
 * A fresh store: alice has a device, bob's inbox holds 1 and 2 from alice
 * and 3 from carol.
 */
static void store_fresh(void)
{
	struct put p;

	if (fx.st.ops != NULL) {
		st_close();
	}
	st_open(0);
	ck_assert_int_eq(touch("alice", "phone", 1000, NULL), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		char cid[8];

		snprintf(cid, sizeof(cid), "c-%llu", (unsigned long long)id);
		put_init(&p, id, cid, 1000, "1", TO("bob"));
		p.rec.from = id == 3 ? "carol" : "alice";
		ck_assert_int_eq(commit(&p.op, 1), 0);
	}
}

/* Bob acks 1 and 3, gets 4 from alice and acks it, acks 2; each ack asks for a receipt. */
static void batch_init(struct batch *b)
{
	static const uint64_t acked[NOPS] = {1, 3, 0, 4, 2};

	for (size_t i = 0; i < NOPS; i++) {
		ack_init(&b->ops[i], "bob", acked[i]);
		b->ops[i].receipt_id = 100 + i;
		b->ops[i].ts = 7000;
	}
	put_init(&b->p4, 4, "c-4", 1000, "1", TO("bob"));
	b->ops[2] = b->p4.op;
}

/* The batch was applied whole: bob's inbox is empty, the receipts stored. */
static void check_applied(const struct batch *b)
{
	uint64_t ids[8];

	ck_assert_uint_eq(list("bob", 0, 10, NULL, NULL), 0);
	for (size_t i = 0; i < NOPS; i++) {
		ck_assert_int_eq(b->ops[i].status, 0);
	}

	/* alice's receipt (refs 1, 4, 2) takes the first id, carol's the second */
	ck_assert_uint_eq(b->ops[0].out_receipt_id, 100);
	ck_assert_uint_eq(b->ops[1].out_receipt_id, 101);
	ck_assert_uint_eq(b->ops[3].out_receipt_id, 100);
	ck_assert_uint_eq(b->ops[4].out_receipt_id, 100);
	ck_assert_uint_eq(list_in("alice", "phone", ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 100);
	ck_assert_uint_eq(list_in("carol", VT_HOLDING_DEVICE, ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 101);
}

/* The batch failed whole: what bob was sent is there, no receipt is. */
static void check_untouched(const struct batch *b)
{
	uint64_t ids[8];

	ck_assert_uint_eq(list("bob", 0, 10, ids, NULL), 3);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[2], 3);
	for (size_t i = 0; i < NOPS; i++) {
		ck_assert_uint_eq(b->ops[i].out_receipt_id, 0);
		ck_assert_ptr_null(b->ops[i].out_receipt);
	}
	ck_assert_uint_eq(list_in("alice", "phone", NULL, NULL), 0);
	ck_assert_uint_eq(list_in("carol", VT_HOLDING_DEVICE, NULL, NULL), 0);
}

/*
 * Each allocation of the commit in turn fails, the receipts' own among
 * them: the batch then fails whole, and the same batch again succeeds,
 * receipts and all; or it succeeds whole all the same.
 */
START_TEST(a_failed_allocation_fails_the_batch_whole)
{
	struct batch b;
	long failed = 0;

	for (long k = 0;; k++) {
		struct done d = {0};
		int status, fired;

		store_fresh();
		batch_init(&b);
		oom_arm(k);
		fx.st.ops->commit(fx.st.self, b.ops, NOPS, on_commit, &d);
		fired = oom_disarm();
		ck_assert_int_eq(d.calls, 1);
		status = d.status;
		if (!fired || status == 0) {
			ck_assert_int_eq(status, 0);
			check_applied(&b);
			if (!fired) {
				break; /* the commit needed fewer than k + 1 */
			}
			continue;
		}
		ck_assert_int_eq(status, VT_ENOMEM);
		check_untouched(&b);
		failed++;

		batch_init(&b);
		ck_assert_int_eq(commit(b.ops, NOPS), 0);
		check_applied(&b);
	}
	ck_assert_int_gt(failed, 0);
}
END_TEST

/*
 * Logouts: a batch that revokes every device of alice, then one of them
 * again (removed by the first, after prepare saw it), and one of bob's.
 * Each allocation in turn fails: the batch is then applied whole or not at
 * all.
 */
START_TEST(a_failed_allocation_leaves_logouts_whole)
{
	struct vt_op ops[3];
	long failed = 0;

	for (long k = 0;; k++) {
		struct done d = {0};
		int fired;

		if (fx.st.ops != NULL) {
			st_close();
		}
		st_open(0);
		revoke_init(&ops[0], "alice", "phone", 100);
		ck_assert_int_eq(commit(ops, 1), 0);
		revoke_init(&ops[0], "alice", VT_ALL_DEVICES, 200);
		revoke_init(&ops[1], "alice", "phone", 300);
		revoke_init(&ops[2], "bob", "", 50);
		oom_arm(k);
		fx.st.ops->commit(fx.st.self, ops, 3, on_commit, &d);
		fired = oom_disarm();
		ck_assert_int_eq(d.calls, 1);
		if (fired && d.status != 0) {
			ck_assert_int_eq(d.status, VT_ENOMEM);
			ck_assert_str_eq(load_revoked(), "alice/phone=100");
			failed++;
			continue;
		}
		ck_assert_str_eq(load_revoked(), "alice/*=200 alice/phone=300 bob/=50");
		if (!fired) {
			break;
		}
	}
	ck_assert_int_gt(failed, 0);
}
END_TEST

static Suite *oom_suite(void)
{
	Suite *s = suite_create("store_oom");
	TCase *tc = tcase_create("memory");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_failed_allocation_fails_the_batch_whole);
	tcase_add_test(tc, a_failed_allocation_leaves_logouts_whole);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(oom_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
