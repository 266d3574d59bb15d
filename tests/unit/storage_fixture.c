/*
 * storage_fixture.c - the fixture of the storage contract suite: opening
 * the backend under test on a fresh directory, and calls made synchronous
 * (each helper starts a call and waits for its callback through
 * storage_wait, so an asynchronous backend runs the same cases).
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
/* List inbox @in after @after, up to @limit; the count, ids in @ids. */
static size_t list_inbox(struct vt_inbox in, uint64_t after, uint32_t limit, uint64_t *ids,
                         struct done *out)
{
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

size_t list(const char *user, uint64_t after, uint32_t limit, uint64_t *ids,
                   struct done *out)
{
	return list_inbox((struct vt_inbox){user, ""}, after, limit, ids, out);
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
	return list_inbox((struct vt_inbox){user, device}, 0, 64, ids, out);
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

const char *rows_joined(char *rows, size_t n, size_t width, char *out, size_t cap)
{
	size_t len = 0;

	qsort(rows, n, width, (int (*)(const void *, const void *))strcmp);
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "", rows + i * width);
		ck_assert_uint_lt(len, cap);
	}
	return out;
}

/* Every stored group as "id=data", sorted, joined by spaces. */
const char *load_groups(void)
{
	static char out[512];
	struct groups g = {0};

	ck_assert_int_eq(fx.st.ops->load_groups(fx.st.self, on_group, &g), 0);
	return rows_joined(g.text[0], (size_t)g.n, sizeof(g.text[0]), out, sizeof(out));
}
