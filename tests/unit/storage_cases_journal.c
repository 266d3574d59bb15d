/*
 * storage_cases_journal.c - the storage contract's cases of the journal:
 * journaled PUTs, RELEASE, and replay() at the next open. Only a backend
 * that offers replay() takes them; the others skip these cases.
 */
#include <check.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "storage_cases.h"

/* A journaled PUT of @id from alice, held for @held (NULL-terminated) and,
 * when @own is set, for alice's devices but the default one. */
static void jput_init(struct put *p, uint64_t id, const char *cid, const char *const *held,
		      int own)
{
	put_init(p, id, cid, 100, "\"held\"", TO(NULL));
	p->op.dedup = cid[0] != 0;
	p->op.journal = 1;
	p->op.held_users = held;
	while (held[p->op.nheld_users]) {
		p->op.nheld_users++;
	}
	p->to[0] = (struct vt_inbox){"alice", ""};
	p->op.held_own = own ? &p->to[0] : NULL;
}

static int jput(uint64_t id, const char *cid, const char *const *held, int own)
{
	struct put p;
	int rc;

	jput_init(&p, id, cid, held, own);
	rc = commit(&p.op, 1);
	return rc != 0 ? rc : p.op.status;
}

static int release(uint64_t id)
{
	struct vt_op op = {.kind = VT_OP_RELEASE, .id = id};
	int rc = commit(&op, 1);

	return rc != 0 ? rc : op.status;
}

/* Close and open again, as after a crash; returns what replay() delivered. */
static uint64_t reopen_replay(void)
{
	uint64_t n = 99;

	st_close();
	st_open(fx.backend);
	ck_assert_int_eq(fx.st.ops->replay(fx.st.self, &n), 0);
	return n;
}

/* Open backend @i; 0 when it keeps no journal (the case is skipped). */
static int jopen(int i)
{
	st_open(i);
	return fx.st.ops->replay != NULL && storage_backends[i].durable;
}

/* Whether inbox (@user, @device) lists exactly @id. */
static int lists_only(const char *user, const char *device, uint64_t id)
{
	uint64_t ids[64];
	struct done d;
	size_t n = list_in(user, device, ids, &d);

	return n == 1 && ids[0] == id;
}

static size_t count_in(const char *user, const char *device)
{
	uint64_t ids[64];
	struct done d;

	return list_in(user, device, ids, &d);
}

/* An entry writes no delivery; left at a crash, replay makes them all, once. */
START_TEST(journal_replayed_into_deliveries)
{
	uint64_t ids[64];
	struct done d;

	if (!jopen(_i)) {
		return;
	}
	touch("bob", "phone", 10, NULL);
	touch("bob", "tab", 10, NULL);
	touch("alice", "", 10, NULL);
	touch("alice", "laptop", 10, NULL);
	ck_assert_int_eq(jput(7, "c-7", TO("bob"), 1), 0);
	ck_assert_uint_eq(count_in("bob", "phone") + count_in("alice", "laptop"), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 7);

	ck_assert_uint_eq(reopen_replay(), 1);
	ck_assert(lists_only("bob", "phone", 7));
	ck_assert(lists_only("bob", "tab", 7));
	ck_assert(lists_only("alice", "laptop", 7));
	ck_assert_uint_eq(count_in("alice", ""), 0); /* the sending device */
	ck_assert_uint_eq(list_in("bob", "phone", ids, &d), 1);
	ck_assert_str_eq(d.bodies[0], "\"held\"");
	ck_assert_str_eq(d.recs[0].cid, "c-7");

	/* Replayed once: the entry is gone. */
	ck_assert_uint_eq(reopen_replay(), 0);
	ck_assert(lists_only("bob", "tab", 7));
}
END_TEST

/* A released entry is not replayed; releasing an id without one is no error. */
START_TEST(journal_release_forgets)
{
	if (!jopen(_i)) {
		return;
	}
	touch("bob", "", 10, NULL);
	ck_assert_int_eq(jput(8, "c-8", TO("bob"), 0), 0);
	ck_assert_int_eq(jput(9, "c-9", TO("bob"), 0), 0);
	ck_assert_int_eq(release(8), 0);
	ck_assert_int_eq(release(8), 0);
	ck_assert_int_eq(release(1234), 0);
	ck_assert_uint_eq(reopen_replay(), 1);
	ck_assert(lists_only("bob", "", 9));
}
END_TEST

/* A re-send found by dedup journals nothing; stored recipients are stored at once. */
START_TEST(journal_with_dedup_and_stored_users)
{
	struct put p;

	if (!jopen(_i)) {
		return;
	}
	touch("bob", "", 10, NULL);
	touch("carol", "", 10, NULL);
	ck_assert_int_eq(jput(10, "c-10", TO("bob"), 0), 0);
	jput_init(&p, 11, "c-10", TO("bob"), 0);
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_uint_eq(p.op.dup_of, 10);

	/* carol stored now, bob journaled, in one op */
	jput_init(&p, 12, "c-12", TO("bob"), 0);
	p.op.users = TO("carol");
	p.op.nusers = 1;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_int_eq(p.op.status, 0);
	ck_assert(lists_only("carol", "", 12));
	ck_assert_uint_eq(count_in("bob", ""), 0);

	ck_assert_uint_eq(reopen_replay(), 2);
	ck_assert_uint_eq(count_in("bob", ""), 2);
	ck_assert(lists_only("carol", "", 12));
}
END_TEST

/*
 * A copy stored late (a device went offline) and an entry left behind by a
 * crash before its release: replay adds no second delivery. One acked
 * after it was stored comes back: at least once.
 */
START_TEST(journal_replay_after_late_store)
{
	if (!jopen(_i)) {
		return;
	}
	touch("bob", "phone", 10, NULL);
	touch("bob", "tab", 10, NULL);
	ck_assert_int_eq(jput(20, "c-20", TO("bob"), 0), 0);
	{
		struct put p;

		put_init(&p, 20, "c-20", 100, "\"held\"", TO(NULL));
		p.to[0] = (struct vt_inbox){"bob", "phone"};
		p.op.nto = 1;
		ck_assert_int_eq(commit(&p.op, 1), 0);
		ck_assert_int_eq(p.op.status, 0);
	}
	ck_assert(lists_only("bob", "phone", 20));
	ck_assert_uint_eq(reopen_replay(), 1);
	ck_assert(lists_only("bob", "phone", 20));
	ck_assert(lists_only("bob", "tab", 20));
}
END_TEST

/* Entries it cannot store or replay are refused whole. */
START_TEST(journal_refuses_bad_entries)
{
	struct put p;
	const char *none[] = {NULL};
	char long_user[600];

	if (!jopen(_i)) {
		return;
	}
	jput_init(&p, 30, "c-30", none, 0); /* no one held */
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_int_eq(p.op.status, VT_EINVAL);
	jput_init(&p, 31, "c-31", TO("bob"), 0);
	p.op.held_users = NULL;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_int_eq(p.op.status, VT_EINVAL);
	memset(long_user, 'u', sizeof(long_user) - 1);
	long_user[sizeof(long_user) - 1] = 0;
	jput_init(&p, 32, "c-32", TO(long_user), 0); /* no inbox key fits it */
	ck_assert_int_eq(commit(&p.op, 1), 0);
	ck_assert_int_eq(p.op.status, VT_EINVAL);
	ck_assert_uint_eq(reopen_replay(), 0);
}
END_TEST

/* A journaled PUT of a body of FULL_BODY_LEN bytes for bob; its status. */
static int jput_full(uint64_t id)
{
	struct put p;
	int rc;

	jput_init(&p, id, "", TO("bob"), 0);
	p.rec.body = full_body;
	p.rec.body_len = FULL_BODY_LEN;
	rc = commit(&p.op, 1);
	return rc != 0 ? rc : p.op.status;
}

/*
 * Entries journaled, then the store filled by stored messages: the room
 * their replay takes was kept, so a crash then loses none. A full store
 * refuses a journaled PUT and takes a RELEASE.
 */
START_TEST(journal_on_a_full_store)
{
	memset(full_body, 'x', FULL_BODY_LEN);
	full_body[0] = full_body[FULL_BODY_LEN - 1] = '"';
	fx.map_size = 1 << 20;
	if (!jopen(_i) || storage_backends[_i].fill == NULL) {
		return;
	}
	touch("bob", "", 10, NULL);
	for (uint64_t id = 40; id < 60; id++) {
		ck_assert_int_eq(jput_full(id), 0);
	}
	storage_backends[_i].fill();
	ck_assert_int_eq(jput_full(60), VT_ENOSPC);
	ck_assert_int_eq(release(40), 0);
	ck_assert_uint_eq(reopen_replay(), 19);
	ck_assert_uint_eq(count_in("bob", ""), 19);
}
END_TEST

void storage_journal_cases_add(TCase *tc)
{
	tcase_add_loop_test(tc, journal_replayed_into_deliveries, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_release_forgets, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_with_dedup_and_stored_users, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_replay_after_late_store, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_refuses_bad_entries, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_on_a_full_store, 0, storage_nbackends);
}
