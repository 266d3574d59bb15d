/*
 * journal_store.c - the fixture of the mode "always" suites over LMDB
 * (test_journal.c, test_park.c): an engine on an LMDB store in a fresh
 * directory, behind a store that can refuse a user's writes, alice (A, A2),
 * bob (B) and carol (C) as clients, and a crash: the store as its last
 * commit left it, opened by a new engine.
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal_store.h"

struct fake_host H;
struct vt_engine *E;
struct cap_conn A, A2, B, C;
static char dir[64];

uint64_t map_size; /* 0: the default */
uint32_t ack_wait; /* the engine's ack_wait_ms */

/*
 * A store that fails: while refuse_to names a user, every PUT to one of its
 * inboxes is answered VT_ENOSPC without reaching LMDB, as a full disk or a
 * map full to its last page would answer it (the room a full store keeps
 * for journaled copies makes LMDB itself take them). The op goes through
 * as a NOTIFIED of an absent delivery, which changes nothing, and is made a
 * PUT again for the engine.
 */
const char *refuse_to;
static struct vt_storage_ops refusing_ops;
static void (*lmdb_commit)(void *self, struct vt_op *ops, size_t n, vt_commit_cb done,
			   void *arg);

struct refusal {
	vt_commit_cb done;
	void *arg;
	struct vt_op *ops;
	size_t n;
	uint8_t refused[256];
};

static int puts_to(const struct vt_op *op, const char *user)
{
	for (uint32_t i = 0; i < op->nto; i++) {
		if (strcmp(op->to[i].user, user) == 0) {
			return 1;
		}
	}
	return 0;
}

static void refusal_done(void *arg, int status)
{
	struct refusal *r = arg;

	for (size_t i = 0; i < r->n; i++) {
		if (r->refused[i]) {
			r->ops[i].kind = VT_OP_PUT;
			r->ops[i].status = VT_ENOSPC;
			r->ops[i].out_to = NULL;
			r->ops[i].out_nto = 0;
		}
	}
	r->done(r->arg, status);
	free(r);
}

static void refusing_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done,
			    void *arg)
{
	struct refusal *r = calloc(1, sizeof(*r));

	ck_assert_ptr_nonnull(r);
	ck_assert_uint_le(n, sizeof(r->refused));
	*r = (struct refusal){.done = done, .arg = arg, .ops = ops, .n = n};
	for (size_t i = 0; i < n && refuse_to != NULL; i++) {
		if (ops[i].kind == VT_OP_PUT && puts_to(&ops[i], refuse_to)) {
			ops[i].kind = VT_OP_NOTIFIED;
			r->refused[i] = 1;
		}
	}
	lmdb_commit(self, ops, n, refusal_done, r);
}

struct vt_engine *journal_engine_open(void)
{
	struct vt_lmdb_options o = {.path = dir, .no_sync = 1, .map_size = map_size};
	struct vt_engine_config c;
	struct vt_storage st;

	vt_engine_config_init(&c);
	c.ack_timeout_ms = 1000;
	c.max_retries = 1;
	c.ack_wait_ms = ack_wait;
	ck_assert_int_eq(vt_storage_lmdb_open(&o, &st), 0);
	refusing_ops = *st.ops;
	lmdb_commit = st.ops->commit;
	refusing_ops.commit = refusing_commit;
	st.ops = &refusing_ops;
	return engine_new(&H, &c, &st);
}

void journal_setup(void)
{
	ack_wait = 0;
	map_size = 0;
	refuse_to = NULL;
	fake_host_init(&H);
	snprintf(dir, sizeof(dir), "/tmp/vt-journal-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	E = journal_engine_open();
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void journal_teardown(void)
{
	vt_engine_destroy(E);
	cap_free(&A);
	cap_free(&A2);
	cap_free(&B);
	cap_free(&C);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Copy file @from to @to. */
static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[65536];
	size_t n;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
	}
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
}

/*
 * kill -9: the store as its last commit left it, and a new engine on it.
 * The data file is taken before the engine goes (its clean stop would
 * write what it held); every commit completed inside its call.
 */
void crash(void)
{
	char from[96], to[96], snap[64];

	snprintf(snap, sizeof(snap), "/tmp/vt-journal-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(snap));
	snprintf(from, sizeof(from), "%s/data.mdb", dir);
	snprintf(to, sizeof(to), "%s/data.mdb", snap);
	copy_file(from, to);

	vt_engine_destroy(E);
	cap_free(&A);
	cap_free(&A2);
	cap_free(&B);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	ck_assert_int_eq(rename(snap, dir), 0);
	E = journal_engine_open();
}

static void on_listed(void *arg, int status, const struct vt_record *recs, size_t n)
{
	size_t *out = arg;

	(void)recs;
	ck_assert_int_eq(status, 0);
	*out = n;
}

/* Deliveries stored for (@user, @device): listed by REST, not held. */
size_t stored(const char *user, const char *device)
{
	struct vt_inbox in = {user, device};
	size_t n = 999;

	E->st.ops->list(E->st.self, &in, 0, 100, on_listed, &n);
	ck_assert_uint_ne(n, 999);
	return n;
}

/* alice's phone and laptop, and bob, connected; bob's device registered. */
void online(void)
{
	connect_device(E, &H, "alice", "", &A);
	connect_device(E, &H, "alice", "laptop", &A2);
	connect_user(E, &H, "bob", &B);
	turn(E, &H);
}

/* alice sends @cid to bob; the id it was accepted under. */
uint64_t send_one(const char *cid)
{
	size_t n = cap_count(&A, "accepted");

	send_msg(&A, cid, "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), n + 1);
	return cap_nth_id(&A, "accepted", n);
}
