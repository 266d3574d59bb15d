/*
 * storage_cases_journal.c - the storage contract's cases of the journal:
 * journaled PUTs, RELEASE, and replay() at the next open. Only a backend
 * that offers replay() takes them; the others skip these cases.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "storage_cases.h"

/* Inboxes "user/device", parsed into @in (at most 4); how many. */
static uint32_t inboxes(const char *const *names, struct vt_inbox *in, char (*buf)[64])
{
	uint32_t n = 0;

	for (; names[n] != NULL; n++) {
		char *slash;

		ck_assert_uint_lt(n, 4);
		snprintf(buf[n], 64, "%s", names[n]);
		slash = strchr(buf[n], '/');
		ck_assert_ptr_nonnull(slash);
		*slash = 0;
		in[n] = (struct vt_inbox){buf[n], slash + 1};
	}
	return n;
}

/* A journaled PUT of @id from alice, a copy held for each of @held ("user/device"). */
struct jput {
	struct put p;
	struct vt_inbox held[4];
	char buf[4][64];
};

static void jput_init(struct jput *j, uint64_t id, const char *cid, const char *const *held)
{
	put_init(&j->p, id, cid, 100, "\"held\"", TO(NULL));
	j->p.op.dedup = cid[0] != 0;
	j->p.op.journal = 1;
	j->p.op.held_to = j->held;
	j->p.op.nheld_to = inboxes(held, j->held, j->buf);
}

static int jput(uint64_t id, const char *cid, const char *const *held)
{
	struct jput j;
	int rc;

	jput_init(&j, id, cid, held);
	rc = commit(&j.p.op, 1);
	return rc != 0 ? rc : j.p.op.status;
}

/* RELEASE the entry of @id for @inbox ("user/device"). */
static int release(uint64_t id, const char *inbox)
{
	struct vt_op op = {.kind = VT_OP_RELEASE, .id = id};
	char buf[1][64];
	int rc;

	inboxes(TO(inbox), &op.inbox, buf);
	rc = commit(&op, 1);
	return rc != 0 ? rc : op.status;
}

/* Close and open again, as after a crash; returns what replay() delivered. */
uint64_t reopen_replay(void)
{
	uint64_t n = 99;

	st_close();
	st_open(fx.backend);
	ck_assert_int_eq(fx.st.ops->replay(fx.st.self, &n), 0);
	return n;
}

/* Open backend @i; 0 when it keeps no journal (the case is skipped). */
int jopen(int i)
{
	st_open(i);
	return fx.st.ops->replay != NULL && storage_backends[i].durable;
}

int jopen_full(int i)
{
	fx.map_size = 1 << 20;
	return jopen(i) && storage_backends[i].fill != NULL;
}

/* Whether inbox (@user, @device) lists exactly @id. */
static int lists_only(const char *user, const char *device, uint64_t id)
{
	uint64_t ids[64];
	struct done d;
	size_t n = list_in(user, device, ids, &d);

	return n == 1 && ids[0] == id;
}

size_t count_in(const char *user, const char *device)
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
	ck_assert_int_eq(jput(7, "c-7", TO("bob/phone", "bob/tab", "alice/laptop")), 0);
	ck_assert_uint_eq(count_in("bob", "phone") + count_in("alice", "laptop"), 0);
	ck_assert_uint_eq(fx.st.ops->max_id(fx.st.self), 7);

	ck_assert_uint_eq(reopen_replay(), 3);
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

/*
 * A released entry is not replayed, and a release frees one device's copy
 * only; releasing an entry that does not exist is no error.
 */
START_TEST(journal_release_forgets)
{
	if (!jopen(_i)) {
		return;
	}
	touch("bob", "", 10, NULL);
	touch("bob", "tab", 10, NULL);
	ck_assert_int_eq(jput(8, "c-8", TO("bob/")), 0);
	ck_assert_int_eq(jput(9, "c-9", TO("bob/", "bob/tab")), 0);
	ck_assert_int_eq(release(8, "bob/"), 0);
	ck_assert_int_eq(release(8, "bob/"), 0);
	ck_assert_int_eq(release(9, "bob/tab"), 0);
	ck_assert_int_eq(release(9, "carol/"), 0);
	ck_assert_int_eq(release(1234, "bob/"), 0);
	ck_assert_uint_eq(reopen_replay(), 1);
	ck_assert(lists_only("bob", "", 9));
	ck_assert_uint_eq(count_in("bob", "tab"), 0);
}
END_TEST

/* Devices of the copies journal_releases_in_one_batch journals. */
static const char *const run_devs[] = {"bob/phone", "bob/tab", "carol/a"};

/*
 * Many releases in one batch, in no order of their keys, with one twice,
 * one of an entry that does not exist and one no key can hold, and an ACK
 * between them: each released entry is gone and the others stay.
 */
START_TEST(journal_releases_in_one_batch)
{
	static char long_user[600]; /* longer than any inbox key */
	struct vt_op ops[40];
	char buf[40][64];
	size_t n = 0;

	if (!jopen(_i)) {
		return;
	}
	touch("bob", "phone", 10, NULL);
	touch("bob", "tab", 10, NULL);
	touch("carol", "a", 10, NULL);
	for (uint64_t id = 20; id < 30; id++) {
		ck_assert_int_eq(jput(id, "", TO(run_devs[0], run_devs[1], run_devs[2])), 0);
	}

	/* Every copy of the odd ids, newest first, devices turning; even ids stay. */
	for (uint64_t id = 29; id > 20; id -= 2) {
		for (int d = 2; d >= 0; d--) {
			ops[n] = (struct vt_op){.kind = VT_OP_RELEASE, .id = id};
			inboxes(TO(run_devs[(d + id) % 3]), &ops[n].inbox, &buf[n]);
			n++;
		}
		if (id == 25) {
			ops[n++] = (struct vt_op){.kind = VT_OP_ACK, .id = 999, .inbox = {"bob", "tab"}};
		}
	}
	ops[n] = (struct vt_op){.kind = VT_OP_RELEASE, .id = 21};
	inboxes(TO("bob/tab"), &ops[n].inbox, &buf[n]);
	n++;
	ops[n] = (struct vt_op){.kind = VT_OP_RELEASE, .id = 1234};
	inboxes(TO("bob/tab"), &ops[n].inbox, &buf[n]);
	n++;
	memset(long_user, 'u', sizeof(long_user) - 1);
	ops[n++] = (struct vt_op){.kind = VT_OP_RELEASE, .id = 22, .inbox = {long_user, ""}};
	ck_assert_int_eq(commit(ops, n), 0);
	for (size_t i = 0; i + 1 < n; i++) {
		ck_assert_int_eq(ops[i].kind == VT_OP_RELEASE ? ops[i].status : 0, 0);
	}
	ck_assert_int_eq(ops[n - 1].status, VT_EINVAL);

	ck_assert_uint_eq(reopen_replay(), 15);
	for (int d = 0; d < 3; d++) {
		struct vt_inbox in;
		char one[1][64];

		inboxes(TO(run_devs[d]), &in, one);
		ck_assert_uint_eq(count_in(in.user, in.device), 5);
	}
}
END_TEST

/* Devices of the copies journal_release_runs_across_pages journals. */
static const char *const wide_devs[] = {"bob/phone", "bob/tab", "carol/a", "dave/b"};

#define WIDE_IDS 1000
#define WIDE_ROUNDS 4

/* Whether round @r releases the copy of @id for device @d: all over the tree. */
static int wide_pick(uint64_t id, int d, int r)
{
	uint64_t h = ((id * 4 + (uint64_t)d) * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)r << 40);

	return (h * 0xbf58476d1ce4e5b9ull >> 61) < 3;
}

/*
 * Runs of releases that span many leaf pages, newest first, each after a
 * release of an entry that does not exist (bob/q sorts among the others):
 * the deletes empty and merge pages under the cursor. Exactly the copies
 * never released are replayed.
 */
START_TEST(journal_release_runs_across_pages)
{
	static struct vt_op ops[WIDE_IDS * 4 * 2];
	static char buf[WIDE_IDS * 4 * 2][64];
	static unsigned char held[WIDE_IDS][4];
	uint64_t left = WIDE_IDS * 4;

	if (!jopen(_i)) {
		return;
	}
	for (int d = 0; d < 4; d++) {
		struct vt_inbox in;
		char one[1][64];

		inboxes(TO(wide_devs[d]), &in, one);
		touch(in.user, in.device, 10, NULL);
	}
	for (uint64_t id = 1; id <= WIDE_IDS; id++) {
		ck_assert_int_eq(jput(id, "", TO(wide_devs[0], wide_devs[1], wide_devs[2],
		                                 wide_devs[3])), 0);
	}
	memset(held, 1, sizeof(held));
	for (int r = 0; r < WIDE_ROUNDS; r++) {
		size_t n = 0;

		for (uint64_t id = WIDE_IDS; id > 0; id--) {
			for (int d = 3; d >= 0; d--) {
				if (!held[id - 1][d] || !wide_pick(id, d, r)) {
					continue;
				}
				held[id - 1][d] = 0;
				left--;
				ops[n] = (struct vt_op){.kind = VT_OP_RELEASE, .id = id};
				inboxes(TO("bob/q"), &ops[n].inbox, &buf[n]);
				n++;
				ops[n] = (struct vt_op){.kind = VT_OP_RELEASE, .id = id};
				inboxes(TO(wide_devs[d]), &ops[n].inbox, &buf[n]);
				n++;
			}
		}
		ck_assert_uint_gt(n, 100);
		ck_assert_int_eq(commit(ops, n), 0);
		for (size_t i = 0; i < n; i++) {
			ck_assert_int_eq(ops[i].status, 0);
		}
	}
	ck_assert_uint_gt(left, 100);
	ck_assert_uint_eq(reopen_replay(), left);
}
END_TEST

/* A re-send found by dedup journals nothing; stored recipients are stored at once. */
START_TEST(journal_with_dedup_and_stored_users)
{
	struct jput j;

	if (!jopen(_i)) {
		return;
	}
	touch("bob", "", 10, NULL);
	touch("carol", "", 10, NULL);
	ck_assert_int_eq(jput(10, "c-10", TO("bob/")), 0);
	jput_init(&j, 11, "c-10", TO("bob/"));
	ck_assert_int_eq(commit(&j.p.op, 1), 0);
	ck_assert_uint_eq(j.p.op.dup_of, 10);

	/* carol stored now, bob journaled, in one op */
	jput_init(&j, 12, "c-12", TO("bob/"));
	j.p.op.users = TO("carol");
	j.p.op.nusers = 1;
	ck_assert_int_eq(commit(&j.p.op, 1), 0);
	ck_assert_int_eq(j.p.op.status, 0);
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
	ck_assert_int_eq(jput(20, "c-20", TO("bob/phone", "bob/tab")), 0);
	{
		struct put p;

		put_init(&p, 20, "c-20", 100, "\"held\"", TO(NULL));
		p.to[0] = (struct vt_inbox){"bob", "phone"};
		p.op.nto = 1;
		ck_assert_int_eq(commit(&p.op, 1), 0);
		ck_assert_int_eq(p.op.status, 0);
	}
	ck_assert(lists_only("bob", "phone", 20));
	ck_assert_uint_eq(reopen_replay(), 2);
	ck_assert(lists_only("bob", "phone", 20));
	ck_assert(lists_only("bob", "tab", 20));
}
END_TEST

/* Entries it cannot store or replay are refused whole. */
START_TEST(journal_refuses_bad_entries)
{
	struct jput j;
	char long_user[600];

	if (!jopen(_i)) {
		return;
	}
	jput_init(&j, 30, "c-30", TO("bob/")); /* no one held */
	j.p.op.nheld_to = 0;
	ck_assert_int_eq(commit(&j.p.op, 1), 0);
	ck_assert_int_eq(j.p.op.status, VT_EINVAL);
	jput_init(&j, 31, "c-31", TO("bob/"));
	j.p.op.held_to = NULL;
	ck_assert_int_eq(commit(&j.p.op, 1), 0);
	ck_assert_int_eq(j.p.op.status, VT_EINVAL);
	memset(long_user, 'u', sizeof(long_user) - 1);
	long_user[sizeof(long_user) - 1] = 0;
	jput_init(&j, 32, "c-32", TO("bob/"));
	j.held[0].user = long_user; /* no inbox key fits it */
	ck_assert_int_eq(commit(&j.p.op, 1), 0);
	ck_assert_int_eq(j.p.op.status, VT_EINVAL);
	ck_assert_uint_eq(reopen_replay(), 0);
}
END_TEST

/*
 * A PUT of @id with a body of FULL_BODY_LEN bytes for bob: journaled, or
 * (@late) the write of the copy held for his device, as when it goes
 * offline; its status.
 */
static int put_full(uint64_t id, int late)
{
	struct jput j;
	int rc;

	jput_init(&j, id, "", TO("bob/"));
	j.p.rec.body = full_body;
	j.p.rec.body_len = FULL_BODY_LEN;
	if (late) {
		j.p.op.journal = 0;
		j.p.op.held_to = NULL;
		j.p.op.nheld_to = 0;
		j.p.op.to = j.held;
		j.p.op.nto = 1;
	}
	rc = commit(&j.p.op, 1);
	return rc != 0 ? rc : j.p.op.status;
}

/* A PUT of @id of @kind from alice to carol, alone in a batch: its status. */
static int put_kind(uint64_t id, enum vt_kind kind)
{
	struct put p;
	int rc;

	put_init(&p, id, "", 100, "{\"refs\":[]}", TO("carol"));
	p.rec.kind = kind;
	rc = commit(&p.op, 1);
	return rc != 0 ? rc : p.op.status;
}

static int jput_full(uint64_t id)
{
	return put_full(id, 0);
}

static int late_put_full(uint64_t id)
{
	return put_full(id, 1);
}

/* Bodies of journaled copies: each listed whole, in order. */
struct listed_bodies {
	int calls;
	int status;
	size_t n;
	int whole; /* every body as its id's */
};

/* The body of message @id, @len bytes: a JSON string whose letters depend on @id. */
static void around_body(char *buf, uint64_t id, size_t len)
{
	buf[0] = '"';
	for (size_t i = 1; i + 1 < len; i++) {
		buf[i] = (char)('a' + (id + i) % 26);
	}
	buf[len - 1] = '"';
	buf[len] = 0;
}

/* Body lengths of journal_bodies_around_a_kilobyte: records either side of 1 KiB. */
#define AROUND_FIRST 940
#define AROUND_LAST 1060
#define AROUND_STEP 3

static void on_list_bodies(void *arg, int status, const struct vt_record *recs, size_t n)
{
	struct listed_bodies *l = arg;
	char want[AROUND_LAST + 1];

	l->calls++;
	l->status = status;
	l->n = n;
	l->whole = 1;
	for (size_t i = 0; i < n; i++) {
		size_t len = AROUND_FIRST + (size_t)(recs[i].id - 100) * AROUND_STEP;

		around_body(want, recs[i].id, len);
		l->whole &= recs[i].body_len == len && memcmp(recs[i].body, want, len) == 0;
	}
}

/*
 * Posts of every size around a kilobyte, each journaled for three devices
 * as a group post is: replay gives every device each post whole, its own
 * body, once.
 */
START_TEST(journal_bodies_around_a_kilobyte)
{
	static const char *const devices[] = {"phone", "tab", "desk"};
	char body[AROUND_LAST + 1];
	uint64_t id = 100;
	uint64_t n;

	if (!jopen(_i)) {
		return;
	}
	for (size_t i = 0; i < 3; i++) {
		touch("bob", devices[i], 10, NULL);
	}
	for (size_t len = AROUND_FIRST; len <= AROUND_LAST; len += AROUND_STEP, id++) {
		struct jput j;
		char cid[16];

		snprintf(cid, sizeof(cid), "c-%llu", (unsigned long long)id);
		around_body(body, id, len);
		jput_init(&j, id, cid, TO("bob/phone", "bob/tab", "bob/desk"));
		j.p.rec.body = body;
		j.p.rec.body_len = len;
		ck_assert_int_eq(commit(&j.p.op, 1), 0);
		ck_assert_int_eq(j.p.op.status, 0);
	}
	n = id - 100;
	ck_assert_uint_eq(reopen_replay(), 3 * n);
	for (size_t i = 0; i < 3; i++) {
		struct listed_bodies l = {0};
		struct vt_inbox in = {"bob", devices[i]};

		fx.st.ops->list(fx.st.self, &in, 0, 64, on_list_bodies, &l);
		storage_wait(&l.calls);
		ck_assert_int_eq(l.status, 0);
		ck_assert_uint_eq(l.n, n);
		ck_assert(l.whole);
	}
}
END_TEST

/* Entries of older ids after newer ones, and copies named in any order, all replay. */
START_TEST(journal_entries_out_of_order)
{
	if (!jopen(_i)) {
		return;
	}
	touch("bob", "phone", 10, NULL);
	touch("bob", "tab", 10, NULL);
	touch("carol", "a", 10, NULL);
	ck_assert_int_eq(jput(9, "c-9", TO("carol/a", "bob/tab", "bob/phone")), 0);
	ck_assert_int_eq(jput(3, "c-3", TO("bob/tab")), 0);
	ck_assert_int_eq(jput(5, "c-5", TO("carol/a")), 0);
	ck_assert_int_eq(release(9, "bob/tab"), 0);

	ck_assert_uint_eq(reopen_replay(), 4);
	ck_assert(lists_only("bob", "phone", 9));
	ck_assert_uint_eq(count_in("bob", "tab"), 1);
	ck_assert(lists_only("bob", "tab", 3));
	ck_assert_uint_eq(count_in("carol", "a"), 2);
	ck_assert_uint_eq(reopen_replay(), 0);
}
END_TEST

/*
 * Entries journaled, then the store filled by stored messages: the room
 * their replay takes was kept, so a crash then loses none. A full store
 * refuses a journaled PUT and takes a RELEASE; it takes the write of a
 * journaled copy to its device too, which that room is for, and refuses
 * the same write of a copy with no entry; and a receipt.
 */
START_TEST(journal_on_a_full_store)
{
	memset(full_body, 'x', FULL_BODY_LEN);
	full_body[0] = full_body[FULL_BODY_LEN - 1] = '"';
	if (!jopen_full(_i)) {
		return;
	}
	touch("bob", "", 10, NULL);
	for (uint64_t id = 40; id < 60; id++) {
		ck_assert_int_eq(jput_full(id), 0);
	}
	storage_backends[_i].fill();
	ck_assert_int_eq(jput_full(60), VT_ENOSPC);
	ck_assert_int_eq(late_put_full(60), VT_ENOSPC); /* no entry */
	/* A receipt the engine made for held copies' acks: nothing makes it again. */
	ck_assert_int_eq(put_kind(61, VT_KIND_MESSAGE), VT_ENOSPC);
	ck_assert_int_eq(put_kind(61, VT_KIND_DELIVERED), 0);
	ck_assert_uint_eq(count_in("carol", ""), 1);
	ck_assert_int_eq(late_put_full(41), 0);
	ck_assert_int_eq(release(41, "bob/"), 0);
	ck_assert_int_eq(release(40, "bob/"), 0);
	ck_assert_uint_eq(count_in("bob", ""), 1);
	ck_assert_uint_eq(reopen_replay(), 18);
	ck_assert_uint_eq(count_in("bob", ""), 19);
}
END_TEST

/* Devices of bob whose copies fill the store in turn. */
static const char *const small_held[] = {"bob/a", "bob/b", "bob/c", "bob/d"};

/*
 * Journal copies of a small message, each held for one of bob's devices in
 * turn, until a full store refuses one; how many it took. The first id is 1.
 */
static uint64_t fill_with_small_copies(void)
{
	uint64_t id = 1;

	touch("bob", "a", 10, NULL);
	touch("bob", "b", 10, NULL);
	touch("bob", "c", 10, NULL);
	touch("bob", "d", 10, NULL);
	for (; id < 100000; id++) {
		int rc = jput(id, "", TO(small_held[id % 4]));

		if (rc == VT_ENOSPC) {
			break;
		}
		ck_assert_int_eq(rc, 0);
	}
	ck_assert_uint_gt(id, 100);
	return id - 1;
}

/* Ack the copies of ids 1 to @n, each on its device, 64 to a batch. */
static void ack_small_copies(uint64_t n)
{
	struct vt_op ops[64];
	char buf[64][64];
	size_t k = 0;

	for (uint64_t id = 1; id <= n; id++) {
		ops[k] = (struct vt_op){.kind = VT_OP_ACK, .id = id};
		inboxes(TO(small_held[id % 4]), &ops[k].inbox, &buf[k]);
		if (++k == 64 || id == n) {
			ck_assert_int_eq(commit(ops, k), 0);
			for (size_t i = 0; i < k; i++) {
				ck_assert_int_eq(ops[i].status, 0);
			}
			k = 0;
		}
	}
}

/*
 * Write the copies of ids 1 to @n, each to its device, in one batch, as the
 * engine does when the devices all go at once; then release their entries.
 */
static void write_small_copies(uint64_t n)
{
	struct jput *j = calloc(n, sizeof(*j));
	struct vt_op *ops = calloc(n, sizeof(*ops)), *rel = calloc(n, sizeof(*rel));

	ck_assert(j != NULL && ops != NULL && rel != NULL);
	for (uint64_t i = 0; i < n; i++) {
		jput_init(&j[i], i + 1, "", TO(small_held[(i + 1) % 4]));
		ops[i] = j[i].p.op;
		ops[i].journal = 0;
		ops[i].held_to = NULL;
		ops[i].nheld_to = 0;
		ops[i].to = j[i].held;
		ops[i].nto = 1;
		rel[i] = (struct vt_op){.kind = VT_OP_RELEASE, .id = i + 1, .inbox = j[i].held[0]};
	}
	ck_assert_int_eq(commit(ops, n), 0);
	for (uint64_t i = 0; i < n; i++) {
		ck_assert_int_eq(ops[i].status, 0);
	}
	ck_assert_int_eq(commit(rel, n), 0);
	free(j);
	free(ops);
	free(rel);
}

/*
 * A store filled by journaled copies of small messages alone, as devices
 * that keep up but ack nothing fill it. A copy's write, a record with a
 * delivery and its indexes, takes more room than its entry: the store keeps
 * that room, so it takes the write of every copy as the devices go, with no
 * error of the map itself, and the acks that follow.
 */
START_TEST(small_copies_written_on_a_full_store)
{
	uint64_t n;

	if (!jopen_full(_i)) {
		return;
	}
	n = fill_with_small_copies();
	write_small_copies(n);
	ack_small_copies(n);
	ck_assert_uint_eq(reopen_replay(), 0);
}
END_TEST

/* The same store after a crash: replay fits every copy in it. */
START_TEST(small_copies_replayed_on_a_full_store)
{
	uint64_t n;

	if (!jopen_full(_i)) {
		return;
	}
	n = fill_with_small_copies();
	ck_assert_uint_eq(reopen_replay(), n);
	ack_small_copies(n);
}
END_TEST

void storage_journal_cases_add(TCase *tc)
{
	tcase_add_loop_test(tc, journal_replayed_into_deliveries, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_release_forgets, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_releases_in_one_batch, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_release_runs_across_pages, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_with_dedup_and_stored_users, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_replay_after_late_store, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_refuses_bad_entries, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_on_a_full_store, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_entries_out_of_order, 0, storage_nbackends);
	tcase_add_loop_test(tc, journal_bodies_around_a_kilobyte, 0, storage_nbackends);
	tcase_add_loop_test(tc, small_copies_written_on_a_full_store, 0, storage_nbackends);
	tcase_add_loop_test(tc, small_copies_replayed_on_a_full_store, 0, storage_nbackends);
}
