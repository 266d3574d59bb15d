/*
 * hold_store.c - the fixture of the mode "offline" suites: an engine on the
 * memory backend behind a recording store, which notes every delivery a
 * commit writes and can keep commits back, so a test checks what was NOT
 * written as well as what arrived.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "hold_store.h"

struct fake_host H;
struct vt_engine *E;
struct cap_conn A, A2, B, B2, C, D;

/* ---- the recording store ------------------------------------------------ */

#define WRITES_MAX 512
#define DEFERRED_MAX 8

/* One delivery a commit wrote. */
struct write {
	char inbox[2 * VT_ID_MAX + 2]; /* "user/device" */
	uint64_t id;
	uint32_t kind;
};

/* A commit on its way through the recording store. */
struct call {
	struct vt_op *ops;
	size_t n;
	vt_commit_cb done;
	void *arg;
};

static struct vt_storage_ops rec_ops;
static struct write writes[WRITES_MAX];
static size_t nwrites;
int defer;                       /* commits wait for release() */
static struct call deferred[DEFERRED_MAX];
int ndeferred;

static void note_writes(const struct vt_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct vt_op *op = &ops[i];

		if (op->kind != VT_OP_PUT || op->status != 0 || op->dup_of != 0) {
			continue;
		}
		for (uint32_t k = 0; k < op->out_nto; k++) {
			struct write *w = &writes[nwrites++];

			ck_assert_uint_lt(nwrites, WRITES_MAX);
			snprintf(w->inbox, sizeof(w->inbox), "%s/%s", op->out_to[k].user,
				 op->out_to[k].device);
			w->id = op->rec->id;
			w->kind = op->rec->kind;
		}
	}
}

static void on_inner_commit(void *arg, int status)
{
	struct call *c = arg;

	if (status == 0) {
		note_writes(c->ops, c->n);
	}
	c->done(c->arg, status);
}

static void pass_commit(struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	struct call c = {ops, n, done, arg};

	/* The memory backend completes inside the call. */
	wrap_inner.ops->commit(wrap_inner.self, ops, n, on_inner_commit, &c);
}

static void rec_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	if (defer) {
		ck_assert_int_lt(ndeferred, DEFERRED_MAX);
		deferred[ndeferred++] = (struct call){ops, n, done, arg};
		return;
	}
	pass_commit(ops, n, done, arg);
}

/* Apply and complete the oldest commit kept back; later ones stay back. */
void release_one(void)
{
	struct call c = deferred[0];

	ck_assert_int_gt(ndeferred, 0);
	ndeferred--;
	memmove(&deferred[0], &deferred[1], (size_t)ndeferred * sizeof(deferred[0]));
	pass_commit(c.ops, c.n, c.done, c.arg);
	turn(E, &H);
}

/*
 * Apply and complete every commit kept back, and those they lead to, oldest
 * first. A commit never completes ahead of an older one: the memory store's
 * answers are valid only inside its callback.
 */
void release(void)
{
	while (ndeferred > 0) {
		release_one();
	}
	defer = 0;
}

/* The memory store outlives its engines: a restart sees what was written. */
static void rec_destroy(void *self)
{
}

/* Deliveries of record @id written for @inbox ("user/device"), or for any inbox (NULL). */
int written(const char *inbox, uint64_t id)
{
	int n = 0;

	for (size_t i = 0; i < nwrites; i++) {
		n += writes[i].id == id && (inbox == NULL || strcmp(writes[i].inbox, inbox) == 0);
	}
	return n;
}

/* Deliveries of @kind written since the test began. */
int written_kind(uint32_t kind)
{
	int n = 0;

	for (size_t i = 0; i < nwrites; i++) {
		n += writes[i].kind == kind;
	}
	return n;
}

/* ---- fixture --------------------------------------------------------------- */

int early;                       /* push_before_commit, on a store that peeks */
uint32_t hold_queue;             /* nonzero: the engine's hold_queue */
uint64_t hold_memory;            /* nonzero: the engine's hold_memory */

static struct vt_engine_config cfg_offline(void)
{
	struct vt_engine_config c;

	vt_engine_config_init(&c);
	c.ack_timeout_ms = 1000;
	c.max_retries = 2;
	c.window = 4;
	c.commits_in_flight = 2;
	c.durability = VT_DURABLE_OFFLINE;
	c.push_before_commit = early;
	if (hold_queue != 0) {
		c.hold_queue = hold_queue;
	}
	if (hold_memory != 0) {
		c.hold_memory = hold_memory;
	}
	return c;
}

void start_engine(void)
{
	struct vt_engine_config c = cfg_offline();
	struct vt_storage st = {.ops = &rec_ops};

	E = engine_new(&H, &c, &st);
}

static void setup(void)
{
	fake_host_init(&H);
	wrap_ops_init(&rec_ops, INT64_C(7) * 86400000);
	rec_ops.commit = rec_commit;
	rec_ops.destroy = rec_destroy;
	rec_ops.dedup_peek = early ? wrap_dedup_peek : NULL;
	nwrites = 0;
	hold_queue = 0;
	hold_memory = 0;
	defer = 0;
	ndeferred = 0;
	start_engine();
	memset(&A, 0, sizeof(A));
	memset(&A2, 0, sizeof(A2));
	memset(&B, 0, sizeof(B));
	memset(&B2, 0, sizeof(B2));
	memset(&C, 0, sizeof(C));
	memset(&D, 0, sizeof(D));
}

static void teardown(void)
{
	vt_engine_destroy(E);
	wrap_inner.ops->destroy(wrap_inner.self);
	cap_free(&A);
	cap_free(&A2);
	cap_free(&B);
	cap_free(&B2);
	cap_free(&C);
	cap_free(&D);
}

/* Ack every event pushed to @c so far. */
void ack_all(struct cap_conn *c)
{
	for (size_t i = 0; i < c->nframes; i++) {
		uint64_t id = json_id(c->frames[i], "id");
		char type[16];

		if (json_field(c->frames[i], "type", type, sizeof(type)) == 0 &&
		    strcmp(type, "accepted") != 0 && strcmp(type, "error") != 0 && id != 0) {
			send_ack(c, id);
		}
	}
	turn(E, &H);
}

/* How many frames of @c carry @needle. */
int count_with(const struct cap_conn *c, const char *needle)
{
	int n = 0;

	for (size_t i = 0; i < c->nframes; i++) {
		n += strstr(c->frames[i], needle) != NULL;
	}
	return n;
}

/* The position of the first frame on @c that carries @needle, or -1. */
int first_with(const struct cap_conn *c, const char *needle)
{
	for (size_t i = 0; i < c->nframes; i++) {
		if (strstr(c->frames[i], needle) != NULL) {
			return (int)i;
		}
	}
	return -1;
}

static void setup_early(void)
{
	early = 1;
	setup();
}

static void teardown_early(void)
{
	teardown();
	early = 0;
}

Suite *hold_suite_new(const char *name, void (*add)(TCase *t), void (*add_early)(TCase *t))
{
	Suite *s = suite_create(name);
	TCase *t = tcase_create("offline");

	tcase_add_checked_fixture(t, setup, teardown);
	add(t);
	suite_add_tcase(s, t);

	/* The same, on a store that can peek at dedup: held events go out
	 * before their commit. */
	t = tcase_create("early");
	tcase_add_checked_fixture(t, setup_early, teardown_early);
	add(t);
	if (add_early != NULL) {
		add_early(t);
	}
	suite_add_tcase(s, t);
	return s;
}
