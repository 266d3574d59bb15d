/*
 * test_journal.c - mode "always" over LMDB: events held in memory for
 * devices that keep up, journaled, released once acked or stored, and
 * delivered from the journal after a crash. A crash is an engine destroyed
 * without a clean stop, its store opened again by a new one.
 *
 * The case "always" journals each held copy before it is pushed
 * (ack_wait_ms 0); the case "ack_wait" pushes at the take and journals only
 * the copies not acked in time (park.c).
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "util.h"

static struct fake_host H;
static struct vt_engine *E;
static struct cap_conn A, A2, B, C;
static char dir[64];

static uint64_t map_size; /* 0: the default */
static uint32_t ack_wait; /* the engine's ack_wait_ms */

/*
 * A store that fails: while refuse_to names a user, every PUT to one of its
 * inboxes is answered VT_ENOSPC without reaching LMDB, as a full disk or a
 * map full to its last page would answer it (the room a full store keeps
 * for journaled copies makes LMDB itself take them). The op goes through
 * as a NOTIFIED of an absent delivery, which changes nothing, and is made a
 * PUT again for the engine.
 */
static const char *refuse_to;
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

static struct vt_engine *engine_open(void)
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

static void setup(void)
{
	ack_wait = 0;
	map_size = 0;
	refuse_to = NULL;
	fake_host_init(&H);
	snprintf(dir, sizeof(dir), "/tmp/vt-journal-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	E = engine_open();
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void teardown(void)
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
static void crash(void)
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
	E = engine_open();
}

static void on_listed(void *arg, int status, const struct vt_record *recs, size_t n)
{
	size_t *out = arg;

	(void)recs;
	ck_assert_int_eq(status, 0);
	*out = n;
}

/* Deliveries stored for (@user, @device): listed by REST, not held. */
static size_t stored(const char *user, const char *device)
{
	struct vt_inbox in = {user, device};
	size_t n = 999;

	E->st.ops->list(E->st.self, &in, 0, 100, on_listed, &n);
	ck_assert_uint_ne(n, 999);
	return n;
}

/* alice's phone and laptop, and bob, connected; bob's device registered. */
static void online(void)
{
	connect_device(E, &H, "alice", "", &A);
	connect_device(E, &H, "alice", "laptop", &A2);
	connect_user(E, &H, "bob", &B);
	turn(E, &H);
}

/* alice sends @cid to bob; the id it was accepted under. */
static uint64_t send_one(const char *cid)
{
	size_t n = cap_count(&A, "accepted");

	send_msg(&A, cid, "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), n + 1);
	return cap_nth_id(&A, "accepted", n);
}

START_TEST(held_journaled_then_released_by_acks)
{
	uint64_t id;

	online();
	id = send_one("c1");
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	ck_assert_uint_eq(cap_nth_id(&A2, "message", 0), id);
	ck_assert_uint_eq(stored("bob", "") + stored("alice", "laptop"), 0);
	ck_assert_uint_eq(E->stats.journal_open, 2); /* bob's copy, the laptop's */

	send_ack(&B, id);
	turn(E, &H);
	/* alice's laptop owes its ack; bob's receipt is held for alice's two
	 * devices, journaled */
	ck_assert_uint_eq(E->stats.journal_open, 3);
	ck_assert_uint_eq(stored("alice", ""), 0);
	send_ack(&A2, id);
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 2);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_uint_eq(cap_count(&A2, "delivered"), 1);
	send_ack(&A, cap_nth_id(&A, "delivered", 0));
	send_ack(&A2, cap_nth_id(&A2, "delivered", 0));
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 0);

	/* All released: nothing comes twice. */
	crash();
	connect_user(E, &H, "bob", &B);
	connect_device(E, &H, "alice", "", &A);
	connect_device(E, &H, "alice", "laptop", &A2);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	ck_assert_uint_eq(cap_count(&A2, "message"), 0);
	ck_assert_uint_eq(cap_count(&A, "delivered") + cap_count(&A2, "delivered"), 0);
}
END_TEST

/* A receipt held for the sender's devices, journaled, survives a crash. */
START_TEST(crash_delivers_a_held_receipt)
{
	uint64_t id, ids[4];

	online();
	id = send_one("c1");
	send_ack(&B, id);
	send_ack(&A2, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_uint_eq(stored("alice", ""), 0);
	crash();
	ck_assert_uint_eq(stored("alice", ""), 1);
	connect_device(E, &H, "alice", "", &A);
	ck_assert_uint_eq(delivered_refs(&A, ids, 4), 1);
	ck_assert_uint_eq(ids[0], id);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
}
END_TEST

START_TEST(crash_delivers_what_was_held)
{
	uint64_t id;

	online();
	id = send_one("c1");
	ck_assert_uint_eq(stored("bob", ""), 0);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 1);
	ck_assert_uint_eq(stored("alice", ""), 0);

	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	send_ack(&B, id);
	turn(E, &H);
	connect_device(E, &H, "alice", "", &A);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);

	/* New ids stay above what the journal held. */
	connect_device(E, &H, "alice", "laptop", &A2);
	cap_clear(&A);
	ck_assert_uint_gt(send_one("c2"), id);
}
END_TEST

START_TEST(device_gone_stores_then_releases)
{
	uint64_t id;

	online();
	id = send_one("c1");
	vt_conn_close(B.conn);
	B.conn = NULL;
	turn(E, &H);
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(E->stats.journal_open, 1); /* the laptop's copy */
	send_ack(&A2, id);
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 0);

	/* Stored once: the released entry adds no second delivery. */
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 0);
}
END_TEST

/*
 * Bob's copy is written as he goes, and a REST ack of it commits with that
 * write, before its entry's release: the answered ack must not come back.
 */
START_TEST(rest_ack_of_a_copy_written_as_its_device_goes)
{
	struct vt_identity bob = ident(&H, "bob");
	struct reply r = {0};
	char ack[64];
	uint64_t id;

	online();
	id = send_one("c1");
	vt_conn_close(B.conn);
	B.conn = NULL;
	snprintf(ack, sizeof(ack), "{\"ids\":[\"%llu\"]}", (unsigned long long)id);
	vt_engine_ack(E, &bob, ack, strlen(ack), on_reply, &r);
	H.flush_wanted = 0;
	vt_engine_flush(E); /* one commit: the write and the ack */
	ck_assert_int_eq(r.calls, 1);
	ck_assert_ptr_nonnull(strstr(r.body, "\"acked\":[\""));

	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
}
END_TEST

/*
 * Bob connects again while his copy is held: the old connection's copy is
 * written, and the new one acks at once what the old one was pushed. The
 * ack commits with that write, before its entry's release.
 */
START_TEST(ack_on_a_new_connection_of_a_copy_held_for_the_old)
{
	static struct cap_conn B2;
	struct vt_identity bob = ident(&H, "bob");
	uint64_t id;

	online();
	id = send_one("c1");
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	memset(&B2, 0, sizeof(B2));
	ck_assert_int_eq(vt_conn_open(E, &bob, &cap_ops, &B2, &B2.conn), 0);
	send_ack(&B2, id);
	H.flush_wanted = 0;
	vt_engine_flush(E); /* one commit: the write and the ack */
	ck_assert_uint_eq(cap_count(&B2, "error"), 0);

	vt_conn_close(B2.conn);
	cap_free(&B2);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
}
END_TEST

/* bob's laptop registers in the commit of a message held for his phone. */
START_TEST(device_registered_with_the_commit_gets_nothing)
{
	static struct cap_conn L;
	struct vt_identity laptop = ident(&H, "bob");

	online();
	send_msg(&A, "c1", "bob", "\"hi\"");
	vt__copy(laptop.device, sizeof(laptop.device), "laptop");
	memset(&L, 0, sizeof(L));
	ck_assert_int_eq(vt_conn_open(E, &laptop, &cap_ops, &L, &L.conn), 0);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	ck_assert_uint_eq(stored("bob", "laptop"), 0);
	ck_assert_uint_eq(cap_count(&L, "message"), 0);
	vt_conn_close(L.conn);
	cap_free(&L);
}
END_TEST

/* alice sends a message of 20 kB to carol, who has no device. */
static void send_big(int i)
{
	static char body[20001], json[20100];

	memset(body, 'x', sizeof(body) - 1);
	snprintf(json, sizeof(json), "{\"v\":1,\"type\":\"message\",\"id\":\"big-%d\","
		 "\"to\":\"carol\",\"body\":\"%s\"}", i, body);
	send_raw(&A, json);
}

/* alice sends to carol until the store is full. */
static void fill_store(void)
{
	size_t n = cap_count(&A, "accepted");

	for (int i = 0; i < 1000; i++) {
		send_big(i);
		turn(E, &H);
		if (cap_count(&A, "accepted") == n + (size_t)i) {
			return;
		}
	}
	ck_abort_msg("the store never filled");
}

/*
 * On a store of 1 MiB, alice's message held for bob (the id), then the
 * store filled.
 */
static uint64_t held_then_full(void)
{
	uint64_t id;

	vt_engine_destroy(E);
	map_size = 1 << 20;
	E = engine_open();
	online();
	id = send_one("c1");
	fill_store();
	return id;
}

/*
 * A full store refuses what would grow it op by op, and takes the rest of
 * the commit. Bob's copy, written as he goes, shares a commit with a
 * refused message, and is written all the same: the journal keeps the room
 * its write takes. Once, also after a crash.
 */
START_TEST(device_gone_on_full_store_gets_its_copy_written)
{
	uint64_t id, open;

	id = held_then_full();
	open = E->stats.journal_open; /* the laptop's copies too */
	send_big(1000);
	vt_conn_close(B.conn);
	B.conn = NULL;
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "error"), 2);
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(E->stats.journal_open, open - 1);
	ck_assert_uint_eq(E->nunwritten, 0);

	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
}
END_TEST

/* bob goes while the store refuses his copy's write: it is kept to write again. */
static void bob_gone_with_a_refused_write(void)
{
	refuse_to = "bob";
	vt_conn_close(B.conn);
	B.conn = NULL;
	cap_free(&B);
	turn(E, &H);
	ck_assert_uint_eq(stored("bob", ""), 0);
	ck_assert_uint_eq(E->nunwritten, 1);
}

/*
 * A refused copy is written again each second until the store takes it,
 * with no restart: bob, offline, finds it stored, and its entry goes.
 */
START_TEST(refused_copy_written_again)
{
	uint64_t id, open;

	online();
	id = send_one("c1");
	send_ack(&A2, cap_nth_id(&A2, "message", 0));
	turn(E, &H);
	open = E->stats.journal_open;
	ck_assert_uint_eq(open, 1);
	bob_gone_with_a_refused_write();
	advance(E, &H, 3500);
	ck_assert_uint_eq(stored("bob", ""), 0);
	ck_assert_uint_eq(E->nunwritten, 1);
	ck_assert_uint_eq(E->stats.journal_open, open);

	refuse_to = NULL;
	advance(E, &H, 1100);
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(E->stats.journal_open, open - 1);
	ck_assert_uint_eq(E->nunwritten, 0);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
}
END_TEST

/* bob is back before his refused copy is written again: it is pushed once it is. */
START_TEST(refused_copy_pushed_to_its_device_back_online)
{
	uint64_t id;

	online();
	id = send_one("c1");
	bob_gone_with_a_refused_write();
	connect_user(E, &H, "bob", &B);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);

	refuse_to = NULL;
	advance(E, &H, 1100);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	send_ack(&B, id);
	turn(E, &H);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
}
END_TEST

/*
 * bob is back, and the store takes writes again, before his refused copy
 * is written again: a message alice sends him then is not pushed ahead of it.
 */
START_TEST(refused_copy_pushed_before_later_messages)
{
	uint64_t ids[2];

	online();
	ids[0] = send_one("c1");
	bob_gone_with_a_refused_write();
	refuse_to = NULL;
	connect_user(E, &H, "bob", &B);
	turn(E, &H);
	ids[1] = send_one("c2");
	advance(E, &H, 1100);
	ck_assert_uint_eq(E->nunwritten, 0);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), ids[0]);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 1), ids[1]);
	ck_assert_uint_eq(cap_count(&B, "message"), 2);
	send_ack(&B, ids[0]);
	send_ack(&B, ids[1]);
	turn(E, &H);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
}
END_TEST

START_TEST(retries_out_store_then_release)
{
	online();
	send_one("c1");
	send_ack(&A2, cap_nth_id(&A2, "message", 0));
	advance(E, &H, 10000); /* bob never acks: offline after the retry */
	ck_assert_uint_eq(E->stats.journal_open, 0);
	ck_assert_uint_eq(stored("bob", ""), 1);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
}
END_TEST

START_TEST(clean_stop_stores_then_releases)
{
	online();
	send_one("c1");
	send_one("c2");
	vt_engine_shutdown(E);
	for (int i = 0; i < 10 && !vt_engine_idle(E); i++) {
		turn(E, &H);
	}
	ck_assert(vt_engine_idle(E));
	ck_assert_uint_eq(E->stats.journal_open, 0);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 2);
	ck_assert_uint_eq(stored("alice", "laptop"), 2);
}
END_TEST

/* alice makes g:t with bob and posts to it; the post's id. */
static uint64_t group_post(void)
{
	send_raw(&A, "{\"type\":\"group_create\",\"id\":\"g1\",\"to\":\"g:t\","
		     "\"body\":{\"name\":\"T\",\"members\":[\"bob\"]}}");
	turn(E, &H);
	send_msg(&A, "p1", "g:t", "\"all\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	return cap_nth_id(&B, "message", 0);
}

/*
 * A group post is held and journaled like a message to one user; a
 * member's ack is released with the group's receipt, which gathers for a
 * while, not before it.
 */
START_TEST(group_post_held_and_released_with_its_receipt)
{
	uint64_t id, ids[4];

	online();
	id = group_post();
	ck_assert_uint_eq(cap_nth_id(&A2, "message", 0), id);
	ck_assert_uint_eq(E->stats.journal_open, 2); /* bob's copy, the laptop's */
	ck_assert_uint_eq(stored("bob", ""), 1);     /* the group's news alone */

	send_ack(&B, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 0);
	ck_assert_uint_eq(E->stats.journal_open, 2);
	advance(E, &H, VT_RECEIPT_GATHER_MS + 10);
	ck_assert_uint_eq(delivered_refs(&A, ids, 4), 1);
	ck_assert_uint_eq(ids[0], id);
	/* bob's entry released; the receipt held for alice's two devices */
	ck_assert_uint_eq(E->stats.journal_open, 3);

	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	/* the group's news, the post, the receipt */
	ck_assert_uint_eq(stored("alice", "laptop"), 3);
	connect_device(E, &H, "alice", "", &A);
	ck_assert_uint_eq(delivered_refs(&A, ids, 4), 1);
	ck_assert_uint_eq(ids[0], id);
}
END_TEST

/*
 * A crash while the receipt gathers delivers the acked copy once more; its
 * ack then makes the receipt, which is not lost.
 */
START_TEST(crash_before_a_group_receipt_delivers_again)
{
	uint64_t id, ids[4];

	online();
	id = group_post();
	send_ack(&B, id);
	turn(E, &H);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 2);

	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
	send_ack(&B, id);
	turn(E, &H);
	advance(E, &H, VT_RECEIPT_GATHER_MS + 10);
	connect_device(E, &H, "alice", "", &A);
	ck_assert_uint_eq(delivered_refs(&A, ids, 4), 1);
	ck_assert_uint_eq(ids[0], id);
}
END_TEST

/*
 * A POST /v1/ack of a held group copy is answered once its release commits:
 * the receipt goes in the same commit, without gathering.
 */
START_TEST(rest_ack_of_a_group_copy_sends_the_receipt_at_once)
{
	struct vt_identity bob = ident(&H, "bob");
	struct reply r = {0};
	uint64_t id, ids[4];
	char ack[64];

	online();
	id = group_post();
	snprintf(ack, sizeof(ack), "{\"ids\":[\"%llu\"]}", (unsigned long long)id);
	vt_engine_ack(E, &bob, ack, strlen(ack), on_reply, &r);
	turn(E, &H);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_ptr_nonnull(strstr(r.body, "\"acked\":[\""));
	ck_assert_uint_eq(delivered_refs(&A, ids, 4), 1);
	ck_assert_uint_eq(ids[0], id);

	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", ""), 1); /* the receipt */
}
END_TEST

/* The sender's own device's ack makes no receipt: released at once. */
START_TEST(own_device_ack_of_a_group_post_released_at_once)
{
	uint64_t id;

	online();
	id = group_post();
	send_ack(&A2, id);
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 1); /* bob's copy */
	crash();
	ck_assert_uint_eq(stored("alice", "laptop"), 1); /* the group's news */
	ck_assert_uint_eq(stored("bob", ""), 2);
}
END_TEST

/* ---- ack_wait: pushed at the take, journaled only if not acked in time ---- */

static void setup_wait(void)
{
	setup();
	vt_engine_destroy(E);
	ack_wait = 50;
	E = engine_open();
}

/* The position of @c's @i-th frame of @type among all its frames. */
static size_t frame_at(const struct cap_conn *c, const char *type, size_t i)
{
	const char *f = cap_nth(c, type, i);

	ck_assert_ptr_nonnull(f);
	for (size_t k = 0; k < c->nframes; k++) {
		if (c->frames[k] == f) {
			return k;
		}
	}
	ck_abort_msg("frame not found");
	return 0;
}

/*
 * online(), and a first message, acked, with its receipt: the first event
 * after a start is journaled and pushed after its commit, which records
 * the ids the start skipped (early.c); the next ones are pushed early.
 */
static void online_warm(void)
{
	uint64_t id;

	online();
	id = send_one("c0");
	send_ack(&B, id);
	send_ack(&A2, id);
	turn(E, &H);
	send_ack(&A, cap_nth_id(&A, "delivered", 0));
	send_ack(&A2, cap_nth_id(&A2, "delivered", 0));
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 0);
	cap_clear(&A);
	cap_clear(&A2);
	cap_clear(&B);
}

/* alice sends @cid to bob: pushed to bob and her laptop at once, not accepted yet. */
static uint64_t send_waiting(const char *cid)
{
	size_t acc = cap_count(&A, "accepted"), n = cap_count(&B, "message");

	send_msg(&A, cid, "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), n + 1);
	ck_assert_uint_eq(cap_count(&A, "accepted"), acc);
	return cap_nth_id(&B, "message", n);
}

START_TEST(acked_in_time_takes_no_entry)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	ck_assert_uint_eq(cap_nth_id(&A2, "message", 0), id);
	ck_assert_uint_eq(E->stats.ack_waiting, 1);
	send_ack(&A2, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 0); /* bob owes his ack */
	send_ack(&B, id);
	turn(E, &H);

	/* Accepted under the id pushed, before the receipt; the receipt alone
	 * is journaled (held for alice's two devices). */
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_lt(frame_at(&A, "accepted", 0), frame_at(&A, "delivered", 0));
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
	ck_assert_uint_eq(E->stats.journal_open, 2);
	send_ack(&A, cap_nth_id(&A, "delivered", 0));
	send_ack(&A2, cap_nth_id(&A2, "delivered", 0));
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 0);

	/* Nothing was left to deliver again; the pair was written. */
	crash();
	ck_assert_uint_eq(stored("bob", "") + stored("alice", "laptop"), 0);
	online();
	send_msg(&A, "c1", "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
}
END_TEST

/* Copies not acked by the due time are journaled, and survive a crash. */
START_TEST(not_acked_in_time_journaled)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	advance(E, &H, 49);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 0);
	advance(E, &H, 1);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
	ck_assert_uint_eq(E->stats.journal_open, 2); /* bob's, the laptop's */

	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 1);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), id);
}
END_TEST

/* The sender's laptop acks in time, bob does not: his copy alone is journaled. */
START_TEST(own_device_acked_in_time_bob_journaled)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	send_ack(&A2, id);
	advance(E, &H, 50);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(E->stats.journal_open, 1);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 0);
}
END_TEST

/* bob's ack makes a receipt: the PUT goes at once, the laptop's entry with it. */
START_TEST(recipient_ack_sends_the_put_at_once)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	send_ack(&B, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_lt(frame_at(&A, "accepted", 0), frame_at(&A, "delivered", 0));
	ck_assert_uint_eq(E->stats.journal_open, 1 + 2); /* the laptop's; the receipt's */
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
	ck_assert_uint_eq(stored("alice", "laptop"), 2); /* the message, the receipt */
}
END_TEST

/* A crash before the pair commits loses nothing accepted: nothing was. The
 * re-send is delivered again, under a new id with the same cid. */
START_TEST(crash_while_waiting_resend_delivered_again)
{
	char cid[16];
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	crash();
	ck_assert_uint_eq(stored("bob", "") + stored("alice", "laptop"), 0);
	online();
	send_msg(&A, "c1", "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_ne(cap_nth_id(&B, "message", 0), id);
	ck_assert_int_eq(json_field(cap_nth(&B, "message", 0), "cid", cid, sizeof(cid)), 0);
	ck_assert_str_eq(cid, "c1");
}
END_TEST

/* A re-send while the first waits: storage sees the first first, and answers
 * the re-send with its id; bob gets one copy. */
START_TEST(resent_while_waiting_is_a_duplicate)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	send_msg(&A, "c1", "bob", "\"hi\"");
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 1), id);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(E->stats.journal_open, 2); /* bob's, the laptop's */
}
END_TEST

/* bob goes while his copy waits: its entry, then his stored copy, then the
 * entry's release; the sender hears "accepted" with the first. */
START_TEST(device_gone_while_waiting_stored)
{
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	vt_conn_close(B.conn);
	B.conn = NULL;
	turn(E, &H);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(stored("bob", ""), 1);
	turn(E, &H);
	ck_assert_uint_eq(E->stats.journal_open, 1); /* the laptop's copy */
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 1);
}
END_TEST

/* A REST ack of a waiting copy is answered once its release commits. */
START_TEST(rest_ack_while_waiting)
{
	struct vt_identity bob = ident(&H, "bob");
	struct reply r = {0};
	char ack[64];
	uint64_t id;

	online_warm();
	id = send_waiting("c1");
	snprintf(ack, sizeof(ack), "{\"ids\":[\"%llu\"]}", (unsigned long long)id);
	vt_engine_ack(E, &bob, ack, strlen(ack), on_reply, &r);
	ck_assert_int_eq(r.calls, 0);
	turn(E, &H);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_ptr_nonnull(strstr(r.body, "\"acked\":[\""));
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 0), id);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
	ck_assert_uint_eq(stored("alice", "laptop"), 2); /* the message, bob's receipt */
}
END_TEST

/* A clean stop writes what waits: each copy once. */
START_TEST(clean_stop_while_waiting)
{
	online_warm();
	send_waiting("c1");
	send_waiting("c2");
	send_ack(&B, cap_nth_id(&B, "message", 0));
	turn(E, &H);
	vt_engine_shutdown(E);
	for (int i = 0; i < 10 && !vt_engine_idle(E); i++) {
		turn(E, &H);
	}
	ck_assert(vt_engine_idle(E));
	ck_assert_uint_eq(E->stats.journal_open, 0);
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
	crash();
	ck_assert_uint_eq(stored("bob", ""), 1);
	ck_assert_uint_eq(stored("alice", "laptop"), 3); /* two messages, bob's receipt */
}
END_TEST

/* A message to a user with a stored message on its way is not pushed past it. */
START_TEST(behind_a_stored_one_not_pushed_early)
{
	online_warm();
	vt_conn_close(B.conn);
	B.conn = NULL;
	send_msg(&A, "c1", "bob", "\"stored\"");
	connect_user(E, &H, "bob", &B);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
}
END_TEST

/*
 * A re-send of a committed message waits for its batch (storage decides it
 * is one). The next message, taken before that batch completes, rides
 * behind it: pushed once it completes, and still journaled only if not
 * acked in time.
 */
START_TEST(behind_an_unpushed_one_rides_then_waits)
{
	uint64_t id;

	online_warm();
	send_msg(&A, "c0", "bob", "\"again\"");
	send_msg(&A, "c1", "bob", "\"next\"");
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	ck_assert_uint_eq(E->stats.ack_waiting, 1);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	id = cap_nth_id(&B, "message", 0);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1); /* the re-send, a duplicate */
	ck_assert_uint_lt(cap_nth_id(&A, "accepted", 0), id);
	ck_assert_uint_eq(E->stats.journal_open, 0);

	send_ack(&A2, cap_nth_id(&A2, "message", 0));
	send_ack(&B, id);
	turn(E, &H);
	ck_assert_uint_eq(cap_nth_id(&A, "accepted", 1), id);
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
	ck_assert_uint_eq(E->stats.journal_open, 2); /* the receipt's */
	crash();
	ck_assert_uint_eq(stored("bob", ""), 0);
}
END_TEST

/* bob goes before the batch his riding copy waits for completes: it is
 * stored for him, and accepted. */
START_TEST(riding_copy_of_a_device_gone_stored)
{
	online_warm();
	send_msg(&A, "c0", "bob", "\"again\"");
	send_msg(&A, "c1", "bob", "\"next\"");
	ck_assert_uint_eq(E->stats.ack_waiting, 1);
	vt_conn_close(B.conn);
	B.conn = NULL;
	turn(E, &H);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);
	ck_assert_uint_eq(E->stats.ack_waiting, 0);
	ck_assert_uint_eq(stored("bob", ""), 1);
	connect_user(E, &H, "bob", &B);
	ck_assert_uint_eq(cap_nth_id(&B, "message", 0), cap_nth_id(&A, "accepted", 1));
}
END_TEST

/* Are @c's messages in ascending id order? */
static int messages_in_order(const struct cap_conn *c)
{
	for (size_t i = 1; i < cap_count(c, "message"); i++) {
		if (cap_nth_id(c, "message", i) <= cap_nth_id(c, "message", i - 1)) {
			return 0;
		}
	}
	return 1;
}

/*
 * Two messages to bob ride behind the same unpushed one: alice's, then
 * carol's. alice's connection goes before that batch completes, so her
 * copy for her laptop can no longer be held, and her message goes to a
 * batch of its own; carol's, taken after it, must not reach bob first.
 */
START_TEST(riders_behind_one_that_cannot_be_held_keep_their_order)
{
	online_warm();
	connect_user(E, &H, "carol", &C);
	send_msg(&A, "c0", "bob", "\"again\"");
	send_msg(&A, "c1", "bob", "\"alice rides\"");
	send_msg(&C, "d1", "bob", "\"carol rides\"");
	ck_assert_uint_eq(E->stats.ack_waiting, 2);
	vt_conn_close(A.conn);
	A.conn = NULL;
	turn(E, &H);
	turn(E, &H);
	ck_assert_uint_eq(cap_count(&B, "message"), 2);
	ck_assert_msg(messages_in_order(&B), "bob got %llu before %llu",
		      (unsigned long long)cap_nth_id(&B, "message", 0),
		      (unsigned long long)cap_nth_id(&B, "message", 1));
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *t = tcase_create("always");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, held_journaled_then_released_by_acks);
	tcase_add_test(t, crash_delivers_what_was_held);
	tcase_add_test(t, crash_delivers_a_held_receipt);
	tcase_add_test(t, device_gone_stores_then_releases);
	tcase_add_test(t, rest_ack_of_a_copy_written_as_its_device_goes);
	tcase_add_test(t, ack_on_a_new_connection_of_a_copy_held_for_the_old);
	tcase_add_test(t, device_registered_with_the_commit_gets_nothing);
	tcase_add_test(t, device_gone_on_full_store_gets_its_copy_written);
	tcase_add_test(t, refused_copy_written_again);
	tcase_add_test(t, refused_copy_pushed_to_its_device_back_online);
	tcase_add_test(t, refused_copy_pushed_before_later_messages);
	tcase_add_test(t, retries_out_store_then_release);
	tcase_add_test(t, clean_stop_stores_then_releases);
	tcase_add_test(t, group_post_held_and_released_with_its_receipt);
	tcase_add_test(t, crash_before_a_group_receipt_delivers_again);
	tcase_add_test(t, rest_ack_of_a_group_copy_sends_the_receipt_at_once);
	tcase_add_test(t, own_device_ack_of_a_group_post_released_at_once);
	suite_add_tcase(s, t);

	t = tcase_create("ack_wait");
	tcase_add_checked_fixture(t, setup_wait, teardown);
	tcase_add_test(t, acked_in_time_takes_no_entry);
	tcase_add_test(t, not_acked_in_time_journaled);
	tcase_add_test(t, own_device_acked_in_time_bob_journaled);
	tcase_add_test(t, recipient_ack_sends_the_put_at_once);
	tcase_add_test(t, crash_while_waiting_resend_delivered_again);
	tcase_add_test(t, resent_while_waiting_is_a_duplicate);
	tcase_add_test(t, device_gone_while_waiting_stored);
	tcase_add_test(t, rest_ack_while_waiting);
	tcase_add_test(t, clean_stop_while_waiting);
	tcase_add_test(t, behind_a_stored_one_not_pushed_early);
	tcase_add_test(t, behind_an_unpushed_one_rides_then_waits);
	tcase_add_test(t, riding_copy_of_a_device_gone_stored);
	tcase_add_test(t, riders_behind_one_that_cannot_be_held_keep_their_order);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return run_suite(journal_suite());
}
