/*
 * storage_cases.c - the storage contract, run against every backend.
 *
 * Each case runs once per entry of the executable's backend table (a Check
 * loop test, _i being the entry). Helpers wait through storage_wait, so an
 * asynchronous backend runs the same cases as a synchronous one.
 */
/* nftw() is an XSI interface */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "storage_cases.h"

struct fixture fx;

char full_body[FULL_BODY_LEN + 1];

/* ---- backends, and calls made synchronous ---- */

void st_open(int backend)
{
	fx.backend = backend;
	if (storage_backends[backend].durable && !fx.dir[0]) {
		snprintf(fx.dir, sizeof(fx.dir), "/tmp/vt-storage-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(fx.dir));
	}
	ck_assert_int_eq(storage_backends[backend].open(), 0);
}

void st_close(void)
{
	fx.st.ops->destroy(fx.st.self);
	memset(&fx.st, 0, sizeof(fx.st));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

void teardown(void)
{
	if (fx.st.ops) {
		st_close();
	}
	if (fx.dir[0]) {
		nftw(fx.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
	memset(&fx, 0, sizeof(fx));
}

/* ---- calls, made synchronous ---- */


void on_commit(void *arg, int status)
{
	struct done *d = arg;

	d->calls++;
	d->status = status;
}

int commit(struct vt_op *ops, size_t n)
{
	struct done d = {0};

	fx.st.ops->commit(fx.st.self, ops, n, on_commit, &d);
	storage_wait(&d.calls);
	ck_assert_int_eq(d.calls, 1);
	return d.status;
}

/* Keeps ids and bodies; records are valid only during the callback. */
void on_list(void *arg, int status, const struct vt_record *recs, size_t n)
{
	struct done *d = arg;

	d->calls++;
	d->status = status;
	d->n = n;
	for (size_t i = 0; i < n && i < 64; i++) {
		size_t len = recs[i].body_len < 31 ? recs[i].body_len : 31;

		d->recs[i] = recs[i];
		memcpy(d->bodies[i], recs[i].body, len);
		d->bodies[i][len] = 0;
	}
}

/* List @user's default inbox; returns the count, ids in @ids. */
size_t list(const char *user, uint64_t after, uint32_t limit, uint64_t *ids,
                   struct done *out)
{
	struct vt_inbox in = {user, ""};
	struct done d = {0};

	fx.st.ops->list(fx.st.self, &in, after, limit, on_list, &d);
	storage_wait(&d.calls);
	ck_assert_int_eq(d.calls, 1);
	ck_assert_int_eq(d.status, 0);
	for (size_t i = 0; i < d.n && ids; i++) {
		ids[i] = d.recs[i].id;
	}
	if (out) {
		*out = d;
	}
	return d.n;
}

void on_expire(void *arg, int status, uint64_t removed)
{
	struct done *d = arg;

	d->calls++;
	d->status = status;
	d->removed = removed;
}

/* A sweep that also removes devices last seen before @dev_before. */
uint64_t expire_dev(int64_t now, int64_t before, int64_t dev_before, uint64_t max)
{
	struct done d = {0};

	fx.st.ops->expire(fx.st.self, now, before, dev_before, max, on_expire, &d);
	storage_wait(&d.calls);
	ck_assert_int_eq(d.calls, 1);
	ck_assert_int_eq(d.status, 0);
	return d.removed;
}

/* A sweep by age only: no device is that old. */
uint64_t expire(int64_t now, int64_t before, uint64_t max)
{
	return expire_dev(now, before, INT64_MIN, max);
}

/* ---- ops ---- */


/* A PUT of message @id from alice to the users of @to (NULL-terminated). */
void put_init(struct put *p, uint64_t id, const char *cid, int64_t ts, const char *body,
                     const char *const *to)
{
	memset(p, 0, sizeof(*p));
	p->rec = (struct vt_record){id,   VT_KIND_MESSAGE, "alice", "bob", cid, ts,
	                            body, strlen(body)};
	while (to[p->op.nto]) {
		p->to[p->op.nto].user = to[p->op.nto];
		p->to[p->op.nto].device = "";
		p->op.nto++;
	}
	p->op.kind = VT_OP_PUT;
	p->op.rec = &p->rec;
	p->op.to = p->to;
}

/* PUT alone in a batch; returns the op's status, dup_of in *dup. */
int put1(uint64_t id, const char *cid, int64_t ts, const char *body, const char *const *to,
                uint32_t dedup, uint32_t cap, uint64_t *dup)
{
	struct put p;

	put_init(&p, id, cid, ts, body, to);
	p.op.dedup = dedup;
	p.op.inbox_cap = cap;
	ck_assert_int_eq(commit(&p.op, 1), 0);
	if (dup) {
		*dup = p.op.dup_of;
	}
	return p.op.status;
}

/*
 * Commit @n PUTs of (alice, "c<first>"...) that write only their dedup
 * entry, ids counting up from @first and times from @ts, as one batch. Returns how
 * many were taken; the others were refused for space (VT_ENOSPC).
 */
size_t put_pairs(uint64_t first, int n, int64_t ts)
{
	static struct put p[100];
	static char cids[100][16];
	struct vt_op ops[100];
	size_t taken = 0;
	int rc;

	ck_assert_int_le(n, 100);
	for (int i = 0; i < n; i++) {
		snprintf(cids[i], sizeof(cids[i]), "c%llu", (unsigned long long)(first + i));
		put_init(&p[i], first + i, cids[i], ts + i, "x", TO(NULL));
		p[i].op.dedup = 1;
		ops[i] = p[i].op;
	}
	rc = commit(ops, (size_t)n);
	ck_assert(rc == 0 || rc == VT_ENOSPC);
	for (int i = 0; i < n; i++) {
		ck_assert(ops[i].status == 0 || ops[i].status == VT_ENOSPC);
		ck_assert_uint_eq(ops[i].dup_of, 0);
		taken += rc == 0 && ops[i].status == 0;
	}
	return taken;
}

int put(uint64_t id, int64_t ts, const char *body, const char *const *to)
{
	return put1(id, "", ts, body, to, 0, 0, NULL);
}

void ack_init(struct vt_op *op, const char *user, uint64_t id)
{
	memset(op, 0, sizeof(*op));
	op->kind = VT_OP_ACK;
	op->inbox.user = user;
	op->inbox.device = "";
	op->id = id;
}

int ack(const char *user, uint64_t id)
{
	struct vt_op op;

	ack_init(&op, user, id);
	ck_assert_int_eq(commit(&op, 1), 0);
	return op.status;
}


/* ---- devices, expansion, flags and groups ---- */

/* List inbox (@user, @device); returns the count, ids in @ids. */
size_t list_in(const char *user, const char *device, uint64_t *ids, struct done *out)
{
	struct vt_inbox in = {user, device};
	struct done d = {0};

	fx.st.ops->list(fx.st.self, &in, 0, 64, on_list, &d);
	storage_wait(&d.calls);
	ck_assert_int_eq(d.calls, 1);
	ck_assert_int_eq(d.status, 0);
	for (size_t i = 0; i < d.n && ids; i++) {
		ids[i] = d.recs[i].id;
	}
	if (out) {
		*out = d;
	}
	return d.n;
}

/* TOUCH (@user, @device) at @ts alone; status, device count in *ndev. */
int touch(const char *user, const char *device, int64_t ts, uint32_t *ndev)
{
	struct vt_op op = {.kind = VT_OP_TOUCH, .inbox = {user, device}, .ts = ts};

	ck_assert_int_eq(commit(&op, 1), 0);
	if (ndev) {
		*ndev = op.out_ndevices;
	}
	return op.status;
}

int notified(const char *user, const char *device, uint64_t id)
{
	struct vt_op op = {.kind = VT_OP_NOTIFIED, .inbox = {user, device}, .id = id};

	ck_assert_int_eq(commit(&op, 1), 0);
	return op.status;
}

int ack_in(const char *user, const char *device, uint64_t id)
{
	struct vt_op op = {.kind = VT_OP_ACK, .inbox = {user, device}, .id = id};

	ck_assert_int_eq(commit(&op, 1), 0);
	return op.status;
}

/* A PUT of message @id to the users @users (NULL-terminated). */
void uput_init(struct put *p, uint64_t id, const char *const *users)
{
	put_init(p, id, "", 100, "1", TO(NULL));
	p->op.users = users;
	while (users[p->op.nusers]) {
		p->op.nusers++;
	}
}


void on_commit_routed(void *arg, int status)
{
	struct routed *r = arg;

	ck_assert_int_eq(status, 0);
	r->calls++;
	r->n = r->op->out_nto;
	for (uint32_t i = 0; i < r->n && i < 16; i++) {
		snprintf(r->inbox[i], sizeof(r->inbox[i]), "%s/%s", r->op->out_to[i].user,
		         r->op->out_to[i].device);
	}
}

/* Commit a PUT alone and note its out_to; returns its status. */
int put_routed(struct put *p, struct routed *r)
{
	memset(r, 0, sizeof(*r));
	r->op = &p->op;
	fx.st.ops->commit(fx.st.self, &p->op, 1, on_commit_routed, r);
	storage_wait(&r->calls);
	ck_assert_int_eq(r->calls, 1);
	return p->op.status;
}

/* Nonzero when @r routed to "user/device" @want. */
int routed_to(const struct routed *r, const char *want)
{
	for (uint32_t i = 0; i < r->n; i++) {
		if (strcmp(r->inbox[i], want) == 0) {
			return 1;
		}
	}
	return 0;
}

int set_group(const char *group, const char *data)
{
	struct vt_op op = {.kind = VT_OP_GROUP, .group = group, .data = data};

	op.len = data ? strlen(data) : 0;
	ck_assert_int_eq(commit(&op, 1), 0);
	return op.status;
}


void on_group(void *arg, const char *group, const char *data, size_t len)
{
	struct groups *g = arg;

	ck_assert_int_lt(g->n, 8);
	snprintf(g->text[g->n++], sizeof(g->text[0]), "%s=%.*s", group, (int)len, data);
}

/* Every stored group as "id=data", sorted, joined by spaces. */
const char *load_groups(void)
{
	static char out[512];
	struct groups g = {0};

	ck_assert_int_eq(fx.st.ops->load_groups(fx.st.self, on_group, &g), 0);
	qsort(g.text, (size_t)g.n, sizeof(g.text[0]), (int (*)(const void *, const void *))strcmp);
	out[0] = 0;
	for (int i = 0; i < g.n; i++) {
		strcat(out, i ? " " : "");
		strcat(out, g.text[i]);
	}
	return out;
}

/* ---- the contract ---- */

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
END_TEST

void storage_receipt_cases_add(TCase *tc)
{
	tcase_add_loop_test(tc, ack_makes_receipt, 0, storage_nbackends);
	tcase_add_loop_test(tc, ack_receipts_split_by_sender_and_size, 0, storage_nbackends);
	tcase_add_loop_test(tc, ack_receipt_body_escaped, 0, storage_nbackends);
	tcase_add_loop_test(tc, ack_of_a_record_its_batch_stores, 0, storage_nbackends);
	tcase_add_loop_test(tc, ack_receipts_of_long_devices_apart, 0, storage_nbackends);
}

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
	tcase_add_loop_test(tc, reentrant_callbacks, 0, storage_nbackends);
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
