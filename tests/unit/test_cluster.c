/*
 * test_cluster.c - two engines sharing one store through the cluster hooks:
 * cross-node delivery, receipts back, the push hook when no node holds the
 * device, group changes seen by every node, an ack taken on one node for a
 * push waiting on the other, one device connected to both nodes, and writes
 * taken from a group that changed meanwhile on the other node, which the
 * store refuses.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "util.h"

/* Both engines reach one memory store; only the first destroys it. */
static struct vt_storage shared;

/*
 * Group versions, checked as a store shared by several engines must (the
 * memory store leaves that to the one engine it serves): an op derived from
 * another version than the stored one gets VT_ECONFLICT and is not applied.
 */
#define MAXG 8

static struct {
	char group[VT_ID_MAX + 8];
	uint64_t version;
} vers[MAXG];
static int nvers, conflicts;

static uint64_t *version_of(const char *group)
{
	for (int i = 0; i < nvers; i++) {
		if (strcmp(vers[i].group, group) == 0) {
			return &vers[i].version;
		}
	}
	ck_assert_int_lt(nvers, MAXG);
	snprintf(vers[nvers].group, sizeof(vers[0].group), "%s", group);
	vers[nvers].version = 0;
	return &vers[nvers++].version;
}

/* Check @op's precondition; on success note the version a GROUP op makes. */
static int version_ok(const struct vt_op *op)
{
	uint64_t *v;

	if (op->kind != VT_OP_GROUP && (op->kind != VT_OP_PUT || !op->check_base)) {
		return 1;
	}
	v = version_of(op->group);
	if (op->check_base && *v != op->base) {
		conflicts++;
		return 0;
	}
	if (op->kind == VT_OP_GROUP) {
		*v = op->len > 0 ? op->version : 0;
	}
	return 1;
}

/* A batch: the ops that passed go to the memory store, the rest are refused. */
struct sh_call {
	struct vt_op *ops, *sub;
	size_t *at, nsub;
	vt_commit_cb done;
	void *arg;
};

/* Set: the next batch is applied, but reported failed (a timeout). */
static int lie_once;

static void sh_committed(void *arg, int status)
{
	struct sh_call *k = arg;

	/* The memory store completes inside commit: out_to is still valid. */
	for (size_t i = 0; i < k->nsub; i++) {
		k->ops[k->at[i]] = k->sub[i];
	}
	if (lie_once) {
		lie_once = 0;
		status = VT_ESTORAGE;
	}
	k->done(k->arg, status);
}

static void sh_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	struct vt_op sub[64];
	size_t at[64];
	struct sh_call k = {ops, sub, at, 0, done, arg};

	ck_assert_uint_le(n, 64);
	for (size_t i = 0; i < n; i++) {
		if (version_ok(&ops[i])) {
			at[k.nsub] = i;
			sub[k.nsub++] = ops[i];
		} else {
			ops[i].status = VT_ECONFLICT;
		}
	}
	if (k.nsub == 0) {
		done(arg, 0);
		return;
	}
	shared.ops->commit(shared.self, sub, k.nsub, sh_committed, &k);
}

/*
 * With hold_lists set, a listing reads the store at once but answers only
 * when release_list() is called: an ack may commit in between, as it can
 * when storage is a server and the two calls travel separately.
 */
#define HELD_MAX 64

static int hold_lists;
static int fail_lists; /* the next listings of bob's inbox that fail */
static struct {
	vt_list_cb done;
	void *arg;
	size_t n;
	struct vt_record recs[HELD_MAX];
	char strs[HELD_MAX][4][VT_ID_MAX + 9];
} held;

static void keep_listed(void *arg, int status, const struct vt_record *recs, size_t n)
{
	ck_assert_int_eq(status, 0);
	ck_assert_uint_le(n, HELD_MAX);
	held.n = n;
	for (size_t i = 0; i < n; i++) {
		struct vt_record *r = &held.recs[i];

		*r = recs[i];
		ck_assert_uint_lt(r->body_len, sizeof(held.strs[i][3]));
		r->from = strcpy(held.strs[i][0], recs[i].from);
		r->to = strcpy(held.strs[i][1], recs[i].to);
		r->cid = strcpy(held.strs[i][2], recs[i].cid);
		r->body = memcpy(held.strs[i][3], recs[i].body, recs[i].body_len);
	}
}

/* The id each listing of bob's inbox went on after, in order. */
#define LISTS_MAX 64

static uint64_t listed_after[LISTS_MAX];
static int nlists;

static void sh_list(void *self, const struct vt_inbox *in, uint64_t after, uint32_t limit,
		    vt_list_cb done, void *arg)
{
	if (strcmp(in->user, "bob") == 0) {
		ck_assert_int_lt(nlists, LISTS_MAX);
		listed_after[nlists++] = after;
		if (fail_lists > 0) {
			fail_lists--;
			done(arg, VT_ESTORAGE, NULL, 0);
			return;
		}
	}
	if (!hold_lists) {
		shared.ops->list(shared.self, in, after, limit, done, arg);
		return;
	}
	ck_assert_ptr_null(held.done);
	shared.ops->list(shared.self, in, after, limit < HELD_MAX ? limit : HELD_MAX,
			 keep_listed, NULL);
	held.done = done;
	held.arg = arg;
}

/* Answer the held listing with what the store held when it was asked. */
static void release_list(void)
{
	vt_list_cb done = held.done;

	ck_assert_ptr_nonnull(done);
	held.done = NULL;
	hold_lists = 0;
	fail_lists = 0;
	done(held.arg, 0, held.recs, held.n);
}

static void sh_expire(void *self, int64_t now, int64_t before, int64_t dev_before, uint64_t max,
		      vt_expire_cb done, void *arg)
{
	shared.ops->expire(shared.self, now, before, dev_before, max, done, arg);
}

static uint64_t sh_max_id(void *self)
{
	/* Each node takes ids from its own range, as a real cluster must. */
	return (uint64_t)(uintptr_t)self;
}

static int sh_load_groups(void *self, void (*each)(void *, const char *, const char *, size_t),
			  void *arg)
{
	return shared.ops->load_groups(shared.self, each, arg);
}

static void sh_destroy(void *self)
{
	if ((uintptr_t)self == 0) {
		shared.ops->destroy(shared.self);
	}
}

static const struct vt_storage_ops sh_ops = {
	.commit = sh_commit,
	.list = sh_list,
	.expire = sh_expire,
	.max_id = sh_max_id,
	.load_groups = sh_load_groups,
	.destroy = sh_destroy,
};

/* The fake cluster: who is attached where, and work queued for after the turn. */
#define NODES 2
#define MAXQ 256

static struct fake_host H;
static struct vt_engine *node[NODES];
static char attached[NODES][16][VT_ID_MAX * 2 + 2];
static int nattached[NODES];

enum job_kind { WAKE, NOTIFY, GROUP, REMOTE_ACK, ANNOUNCE, READ };

struct job {
	enum job_kind kind;
	int node; /* where it runs; ANNOUNCE: the node that holds the device */
	vt_group_fetched_cb done; /* READ */
	void *arg;
	char user[VT_ID_MAX + 1], device[VT_ID_MAX + 1];
	struct vt_record rec;
	char from[VT_ID_MAX + 1], to[VT_ID_MAX + 9], data[4096];
	size_t len;
};

static struct job q[MAXQ];
static int nq;
static int pushes;

/* What the engines asked of the cluster's acked op. */
static int nacked;
static struct job last_acked;

/* Group changes held back (a slow pub/sub), and group reads that fail. */
static struct job late[MAXQ];
static int nlate, hold_groups, reads_fail;

static void key_of(char *out, const struct vt_inbox *in)
{
	snprintf(out, VT_ID_MAX * 2 + 2, "%s/%s", in->user, in->device);
}

static int holder(const struct vt_inbox *in)
{
	char k[VT_ID_MAX * 2 + 2];

	key_of(k, in);
	for (int n = 0; n < NODES; n++) {
		for (int i = 0; i < nattached[n]; i++) {
			if (strcmp(attached[n][i], k) == 0) {
				return n;
			}
		}
	}
	return -1;
}

/* A job about device @in, queued for after the turn. */
static struct job *job_add(enum job_kind kind, int n, const struct vt_inbox *in)
{
	struct job *j = &q[nq++];

	ck_assert_int_lt(nq, MAXQ);
	memset(j, 0, sizeof(*j));
	j->kind = kind;
	j->node = n;
	if (in != NULL) {
		snprintf(j->user, sizeof(j->user), "%s", in->user);
		snprintf(j->device, sizeof(j->device), "%s", in->device);
	}
	return j;
}

static void cl_deliver(void *self, const struct vt_inbox *in, const struct vt_record *rec)
{
	int h = holder(in);
	struct job *j = job_add(h >= 0 ? WAKE : NOTIFY, h >= 0 ? h : (int)(uintptr_t)self, in);

	j->rec = *rec;
	snprintf(j->from, sizeof(j->from), "%s", rec->from);
	snprintf(j->to, sizeof(j->to), "%s", rec->to);
	j->rec.from = j->from;
	j->rec.to = j->to;
	j->rec.cid = "";
	j->rec.body = NULL;
	j->rec.body_len = 0;
}

/* Like the Redis cluster: once attached, the other nodes hear of it. */
static void cl_attach(void *self, const struct vt_inbox *in)
{
	int n = (int)(uintptr_t)self;

	key_of(attached[n][nattached[n]++], in);
	job_add(ANNOUNCE, n, in);
}

static void cl_detach(void *self, const struct vt_inbox *in)
{
	int n = (int)(uintptr_t)self;
	char k[VT_ID_MAX * 2 + 2];

	key_of(k, in);
	for (int i = 0; i < nattached[n]; i++) {
		if (strcmp(attached[n][i], k) == 0) {
			memmove(attached[n][i], attached[n][i + 1],
				(size_t)(nattached[n] - i - 1) * sizeof(attached[n][0]));
			nattached[n]--;
			return;
		}
	}
}

static void cl_group(void *self, const char *group, const char *data, size_t len)
{
	for (int n = 0; n < NODES; n++) {
		struct job *j;

		if (n == (int)(uintptr_t)self) {
			continue;
		}
		if (hold_groups) {
			j = &late[nlate++];
			memset(j, 0, sizeof(*j));
			j->kind = GROUP;
			j->node = n;
		} else {
			j = job_add(GROUP, n, NULL);
		}
		snprintf(j->to, sizeof(j->to), "%s", group);
		memcpy(j->data, data, len);
		j->len = len;
	}
}

/* Told to every node that holds the device, as a publish would be. */
static void cl_acked(void *self, const struct vt_inbox *in, uint64_t id)
{
	int h = holder(in);

	nacked++;
	memset(&last_acked, 0, sizeof(last_acked));
	last_acked.node = (int)(uintptr_t)self;
	snprintf(last_acked.user, sizeof(last_acked.user), "%s", in->user);
	snprintf(last_acked.device, sizeof(last_acked.device), "%s", in->device);
	last_acked.rec.id = id;
	if (h >= 0) {
		job_add(REMOTE_ACK, h, in)->rec.id = id;
	}
}

static void cl_group_stale(void *self, const char *group, vt_group_fetched_cb done, void *arg)
{
	struct job *j = job_add(READ, (int)(uintptr_t)self, NULL);

	snprintf(j->to, sizeof(j->to), "%s", group);
	j->done = done;
	j->arg = arg;
}

static void cl_destroy(void *self)
{
}

static const struct vt_cluster_ops cl_ops = {
	.deliver = cl_deliver,
	.attach = cl_attach,
	.detach = cl_detach,
	.group_changed = cl_group,
	.group_stale = cl_group_stale,
	.destroy = cl_destroy,
	.acked = cl_acked,
};

/* Node n's id in the cluster; 0 is no node's. */
static uint64_t node_id(int n)
{
	return (uint64_t)n + 1;
}

/* Node @from holds @in: every other node closes an older connection of it. */
static void announce(int from, const struct vt_inbox *in)
{
	int64_t since;

	if (vt_engine_attached_since(node[from], in, &since) != 0) {
		return;
	}
	for (int n = 0; n < NODES; n++) {
		if (n != from && vt_engine_replace(node[n], in, since, node_id(from))) {
			job_add(ANNOUNCE, n, in);
		}
	}
}

/* The stored state of one group, as the cluster reads it for a node. */
static void find_group(void *arg, const char *group, const char *data, size_t len)
{
	struct job *j = arg;

	if (strcmp(group, j->to) == 0) {
		ck_assert_uint_lt(len, sizeof(j->data));
		memcpy(j->data, data, len);
		j->len = len;
	}
}

static void serve_read(struct job *j)
{
	if (reads_fail) {
		j->done(j->arg, j->to, VT_ESTORAGE, NULL, 0);
		return;
	}
	ck_assert_int_eq(shared.ops->load_groups(shared.self, find_group, j), 0);
	j->done(j->arg, j->to, 0, j->data, j->len);
}

/* The held-back group changes arrive now. */
static void release_groups(void)
{
	memcpy(&q[nq], late, (size_t)nlate * sizeof(late[0]));
	nq += nlate;
	nlate = 0;
	hold_groups = 0;
}

static void count_notify(void *self, const struct vt_notice *n)
{
	pushes++;
}

static void no_destroy(void *self)
{
}

static const struct vt_notifier_ops count_ops = {.notify = count_notify, .destroy = no_destroy};

static void run_job(struct job *j)
{
	struct vt_inbox in = {.user = j->user, .device = j->device};

	switch (j->kind) {
	case WAKE:
		vt_engine_wake(node[j->node], &in, j->rec.id);
		break;
	case NOTIFY:
		vt_engine_notify_offline(node[j->node], &in, &j->rec);
		break;
	case GROUP:
		vt_engine_group_reload(node[j->node], j->to, j->data, j->len);
		break;
	case REMOTE_ACK:
		vt_engine_remote_ack(node[j->node], &in, j->rec.id);
		break;
	case ANNOUNCE:
		announce(j->node, &in);
		break;
	case READ:
		serve_read(j);
		break;
	}
}

/* Turns on every node until no work is left. */
static void settle(void)
{
	static struct job run[MAXQ];

	for (int round = 0; round < 20; round++) {
		int n;

		/* The nodes share one fake host: flush each of them every time. */
		for (int k = 0; k < 3; k++) {
			for (int i = 0; i < NODES; i++) {
				H.flush_wanted = 0;
				vt_engine_flush(node[i]);
			}
		}
		if (nq == 0) {
			return;
		}

		/* Jobs may queue more jobs: those run in the next round. */
		n = nq;
		memcpy(run, q, (size_t)n * sizeof(q[0]));
		nq = 0;
		for (int i = 0; i < n; i++) {
			run_job(&run[i]);
		}
	}
}

/* Move the shared clocks by @ms, running every node's due timers. */
static void advance_all(uint64_t ms)
{
	uint64_t end = H.mono + ms;

	settle();
	while (H.mono < end) {
		uint64_t step = end - H.mono;

		for (int n = 0; n < NODES; n++) {
			int64_t t = vt_engine_next_timeout(node[n]);

			if (t >= 0 && (uint64_t)t < step) {
				step = (uint64_t)t;
			}
		}
		H.mono += step;
		H.wall += (int64_t)step;
		for (int n = 0; n < NODES; n++) {
			vt_engine_run_timers(node[n]);
		}
		settle();
	}
}

static struct cap_conn A, B, B2, C, D, X;

static void setup(void)
{
	struct vt_engine_config c;

	hold_lists = 0;
	nlists = 0;
	memset(&held, 0, sizeof(held));
	vt_engine_config_init(&c);
	fake_host_init(&H);
	ck_assert_int_eq(vt_storage_memory_create(86400000, &shared), 0);
	for (int n = 0; n < NODES; n++) {
		struct vt_storage st = {.ops = &sh_ops, .self = (void *)(uintptr_t)(n << 30)};

		ck_assert_int_eq(vt_engine_create(&c, &H.host, st, &node[n]), 0);
		vt_engine_set_cluster(node[n], (struct vt_cluster){.ops = &cl_ops,
								   .self = (void *)(uintptr_t)n,
								   .node = node_id(n)});
		vt_engine_set_notifier(node[n], (struct vt_notifier){.ops = &count_ops});
		nattached[n] = 0;
	}
	nq = 0;
	pushes = 0;
	nacked = 0;
	nvers = conflicts = 0;
	lie_once = 0;
	nlate = hold_groups = reads_fail = 0;
	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
	memset(&B2, 0, sizeof(B2));
	memset(&C, 0, sizeof(C));
	memset(&D, 0, sizeof(D));
	memset(&X, 0, sizeof(X));
}

static void teardown(void)
{
	for (int n = NODES; n-- > 0;) {
		vt_engine_destroy(node[n]);
	}
	cap_free(&A);
	cap_free(&B);
	cap_free(&B2);
	cap_free(&C);
	cap_free(&D);
	cap_free(&X);
}

START_TEST(message_crosses_nodes_and_receipt_comes_back)
{
	connect_user(node[0], &H, "alice", &A);
	connect_user(node[1], &H, "bob", &B);
	send_msg(&A, "m1", "bob", "\"hi\"");
	settle();
	ck_assert_uint_eq(cap_count(&A, "accepted"), 1);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);

	send_ack(&B, json_id(cap_nth(&B, "message", 0), "id"));
	settle();
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_int_eq(pushes, 0);
}
END_TEST

START_TEST(no_node_holds_the_device_so_the_hook_is_called_once)
{
	connect_user(node[0], &H, "alice", &A);
	send_msg(&A, "m1", "bob", "1");
	settle();
	ck_assert_int_eq(pushes, 1);

	/* Bob comes to the other node: it is there, and no second push. */
	connect_user(node[1], &H, "bob", &B);
	settle();
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_int_eq(pushes, 1);
}
END_TEST

START_TEST(group_changes_reach_every_node)
{
	connect_user(node[0], &H, "alice", &A);
	connect_user(node[1], &H, "bob", &B);
	send_raw(&A, "{\"type\":\"group_create\",\"id\":\"c\",\"to\":\"g:x\","
		     "\"body\":{\"name\":\"X\",\"members\":[\"bob\"]}}");
	settle();
	ck_assert_uint_eq(cap_count(&B, "group"), 1);

	/* Node 1 knows the group now: bob may post from there. */
	send_msg(&B, "b1", "g:x", "\"from bob\"");
	settle();
	ck_assert_uint_eq(cap_count(&B, "accepted"), 1);
	ck_assert_uint_eq(cap_count(&A, "message"), 1);
}
END_TEST

/* Ack @id for @user's default device by REST on node @n. */
static void rest_ack(int n, const char *user, uint64_t id, struct reply *r)
{
	struct vt_identity who = ident(&H, user);
	char body[64];

	snprintf(body, sizeof(body), "{\"ids\":[\"%llu\"]}", (unsigned long long)id);
	vt_engine_ack(node[n], &who, body, strlen(body), on_reply, r);
	settle();
}

START_TEST(ack_on_one_node_ends_the_push_on_the_other)
{
	struct reply r = {0};
	uint64_t id;

	connect_user(node[0], &H, "alice", &A);
	connect_user(node[1], &H, "bob", &B);
	send_msg(&A, "m1", "bob", "1");
	settle();
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	id = json_id(cap_nth(&B, "message", 0), "id");

	/* Bob acks through REST on node 0, not on his socket on node 1. */
	rest_ack(0, "bob", id, &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.body, "\"acked\":[\""));
	ck_assert_int_eq(nacked, 1);
	ck_assert_int_eq(last_acked.node, 0);
	ck_assert_str_eq(last_acked.user, "bob");
	ck_assert_str_eq(last_acked.device, "");
	ck_assert_uint_eq(last_acked.rec.id, id);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	send_ack(&A, json_id(cap_nth(&A, "delivered", 0), "id"));

	/* Past every retry: node 1 pushed it once, and nobody was woken. */
	advance_all(200000);
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);
	ck_assert_int_eq(nacked, 1);
	ck_assert_int_eq(pushes, 0);
	ck_assert_int_eq(B.closed, 0);
}
END_TEST

START_TEST(ack_of_what_the_local_connection_held_is_not_told)
{
	connect_user(node[0], &H, "alice", &A);
	connect_user(node[1], &H, "bob", &B);
	send_msg(&A, "m1", "bob", "1");
	settle();
	send_ack(&B, json_id(cap_nth(&B, "message", 0), "id"));
	settle();
	ck_assert_uint_eq(cap_count(&A, "delivered"), 1);

	/* Alice acks her receipt on her own node: nobody else held either. */
	send_ack(&A, json_id(cap_nth(&A, "delivered", 0), "id"));
	settle();
	ck_assert_int_eq(nacked, 0);
}
END_TEST

START_TEST(remote_ack_frees_the_window_and_ignores_strangers)
{
	struct vt_inbox bob = {.user = "bob", .device = ""};
	struct vt_inbox eve = {.user = "eve", .device = ""};
	uint64_t first;

	connect_user(node[0], &H, "alice", &A);
	connect_user(node[0], &H, "bob", &B);
	for (int i = 0; i < 40; i++) {
		char cid[8];

		snprintf(cid, sizeof(cid), "m%d", i);
		send_msg(&A, cid, "bob", "1");
	}
	settle();
	ck_assert_uint_eq(cap_count(&B, "message"), 32);
	first = json_id(cap_nth(&B, "message", 0), "id");

	/* Unknown ids and devices not held here change nothing. */
	vt_engine_remote_ack(node[0], &bob, first + 1000);
	vt_engine_remote_ack(node[0], &eve, first);
	settle();
	ck_assert_uint_eq(cap_count(&B, "message"), 32);

	/* One acked elsewhere: the next one is pushed in its place. */
	vt_engine_remote_ack(node[0], &bob, first);
	settle();
	ck_assert_uint_eq(cap_count(&B, "message"), 33);
	ck_assert_uint_eq(cap_count(&A, "delivered"), 0);
}
END_TEST

/* A listing that was on its way while the ack committed does not bring it back. */
static void listing_raced_by(int nacks)
{
	struct reply r = {0};
	uint64_t ids[2];

	connect_user(node[0], &H, "alice", &A);
	for (int i = 0; i < 3; i++) {
		char cid[8];

		snprintf(cid, sizeof(cid), "m%d", i);
		send_msg(&A, cid, "bob", "1");
	}
	settle();

	/* Bob connects on node 1 while his inbox is being listed ... */
	hold_lists = 1;
	connect_user(node[1], &H, "bob", &B);
	settle();
	ck_assert_ptr_nonnull(held.done);
	ck_assert_uint_eq(held.n, 3);
	ids[0] = held.recs[0].id;
	ids[1] = held.recs[1].id;

	/* ... and acks through REST on node 0 before that listing answers. */
	for (int i = 0; i < nacks; i++) {
		rest_ack(0, "bob", ids[i], &r);
		ck_assert_int_eq(r.status, 0);
	}
	release_list();
	settle();

	ck_assert_uint_eq(cap_count(&B, "message"), 3 - (unsigned)nacks);
	for (size_t i = 0; i < cap_count(&B, "message"); i++) {
		uint64_t got = json_id(cap_nth(&B, "message", i), "id");

		ck_assert_uint_ne(got, ids[0]);
		ck_assert_uint_ne(got, nacks > 1 ? ids[1] : 0);
	}
}

START_TEST(ack_during_a_listing_is_not_queued_again)
{
	listing_raced_by(1);
}
END_TEST

START_TEST(acks_during_a_listing_make_it_list_again)
{
	listing_raced_by(2);
}
END_TEST

/* Run the cluster's queued work without flushing any node first. */
static void run_jobs(void)
{
	static struct job run[MAXQ];
	int n = nq;

	memcpy(run, q, (size_t)n * sizeof(q[0]));
	nq = 0;
	for (int i = 0; i < n; i++) {
		run_job(&run[i]);
	}
}

/*
 * A wake-up below bob's cursor lists his inbox from below the new message
 * while his ack of an earlier push is taken but not committed: that push is
 * not queued and pushed again, whether the ack is found in the index of acks
 * in flight or, when it could not be indexed (@unindexed), in the batches.
 */
static void relisting_skips_acked(int unindexed)
{
	uint64_t c1;

	connect_user(node[0], &H, "alice", &A);
	connect_user(node[1], &H, "bob", &B);
	connect_user(node[1], &H, "carol", &C);
	send_msg(&C, "c1", "bob", "1");
	settle();
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	c1 = json_id(cap_nth(&B, "message", 0), "id");

	/* Alice's message has an id from node 0's lower block. */
	send_msg(&A, "a1", "bob", "2");
	H.flush_wanted = 0;
	vt_engine_flush(node[0]);
	ck_assert_int_eq(nq, 1);
	send_ack(&B, c1);
	ck_assert_uint_eq(acking_count(node[1]), 1);
	if (unindexed) {
		acking_unindex(node[1]);
	}
	run_jobs();
	settle();

	ck_assert_uint_eq(cap_count(&B, "message"), 2);
	ck_assert_uint_eq(json_id(cap_nth(&B, "message", 1), "id"),
			  json_id(cap_nth(&A, "accepted", 0), "id"));
	ck_assert_uint_eq(cap_count(&B, "error"), 0);

	/* Committed: neither the index nor the count of ops outside it holds it. */
	ck_assert_uint_eq(acking_count(node[1]), 0);
	ck_assert_uint_eq(node[1]->acking_unindexed, 0);
}

START_TEST(relisting_skips_what_was_just_acked)
{
	relisting_skips_acked(0);
}
END_TEST

START_TEST(relisting_skips_what_was_just_acked_unindexed)
{
	relisting_skips_acked(1);
}
END_TEST

#define PAST_QUEUE 80 /* more than bob's queue holds (twice the window) */

/*
 * A message stored by the other node below bob's cursor while his queue is
 * full is listed, once the queue has room, from just below its id rather
 * than from the start of his inbox. Everything owed reaches him once.
 */
START_TEST(message_below_the_cursor_is_listed_from_just_below_it)
{
	uint64_t a1, ids[PAST_QUEUE + 1];
	size_t n = 0;

	connect_user(node[0], &H, "alice", &A);
	connect_user(node[1], &H, "bob", &B);
	connect_user(node[1], &H, "carol", &C);
	send_msg(&A, "a0", "dave", "0"); /* a1 is not the first id of node 0 */
	for (int i = 0; i < PAST_QUEUE; i++) {
		char cid[8];

		snprintf(cid, sizeof(cid), "c%d", i);
		send_msg(&C, cid, "bob", "1");
		if (i % 32 == 31) {
			settle(); /* batches of at most 64 ops */
		}
	}
	settle();
	ck_assert_uint_eq(cap_count(&B, "message"), 32); /* the window; the queue is full */

	nlists = 0;
	send_msg(&A, "a1", "bob", "2");
	settle();
	a1 = json_id(cap_nth(&A, "accepted", 1), "id");
	ck_assert_uint_gt(a1, 1);
	ck_assert_uint_lt(a1, json_id(cap_nth(&B, "message", 0), "id"));
	ck_assert_int_eq(nlists, 0); /* nothing is listed until the queue has room */

	/* Bob acks every push, one at a time, until no more come. */
	while (n < cap_count(&B, "message")) {
		ck_assert_uint_lt(n, PAST_QUEUE + 1);
		ids[n] = json_id(cap_nth(&B, "message", n), "id");
		send_ack(&B, ids[n++]);
		settle();
	}
	ck_assert_uint_eq(n, PAST_QUEUE + 1);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = i + 1; k < n; k++) {
			ck_assert_uint_ne(ids[i], ids[k]);
		}
	}
	ck_assert_int_ge(nlists, 1);
	ck_assert_uint_eq(listed_after[0], a1 - 1);
	for (int i = 0; i < nlists; i++) {
		ck_assert_uint_ne(listed_after[i], 0);
	}
	ck_assert_uint_eq(cap_count(&B, "error"), 0);
	ck_assert_uint_eq(acking_count(node[1]), 0);
}
END_TEST

/* A listing from below the cursor that fails is asked again from there. */
START_TEST(failed_listing_below_the_cursor_is_asked_again_from_there)
{
	uint64_t a1;
	size_t n = 0;

	connect_user(node[0], &H, "alice", &A);
	connect_user(node[1], &H, "bob", &B);
	connect_user(node[1], &H, "carol", &C);
	send_msg(&A, "a0", "dave", "0");
	for (int i = 0; i < PAST_QUEUE; i++) {
		char cid[8];

		snprintf(cid, sizeof(cid), "c%d", i);
		send_msg(&C, cid, "bob", "1");
		if (i % 32 == 31) {
			settle();
		}
	}
	settle();
	send_msg(&A, "a1", "bob", "2");
	settle();
	a1 = json_id(cap_nth(&A, "accepted", 1), "id");

	/* The first listing, from just below a1, fails; the sweep asks again. */
	nlists = 0;
	fail_lists = 1;
	while (n < cap_count(&B, "message") || fail_lists == 0) {
		if (n == cap_count(&B, "message")) {
			advance_all(1100);
			if (n == cap_count(&B, "message")) {
				break;
			}
		}
		send_ack(&B, json_id(cap_nth(&B, "message", n++), "id"));
		settle();
	}
	ck_assert_int_ge(nlists, 2);
	ck_assert_uint_eq(listed_after[0], a1 - 1);
	ck_assert_uint_eq(listed_after[1], a1 - 1);
	ck_assert_uint_eq(n, PAST_QUEUE + 1);
}
END_TEST

START_TEST(second_node_replaces_the_first)
{
	connect_user(node[0], &H, "alice", &A);
	connect_user(node[0], &H, "bob", &B);
	settle();
	H.wall += 5;
	connect_user(node[1], &H, "bob", &B2);
	settle();
	ck_assert_int_eq(B.closed, 1);
	ck_assert_int_eq(B.close_code, VT_CLOSE_REPLACED);
	ck_assert_int_eq(B2.closed, 0);
	vt_conn_close(B.conn);

	send_msg(&A, "m1", "bob", "1");
	settle();
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	ck_assert_uint_eq(cap_count(&B2, "message"), 1);
	ck_assert_int_eq(pushes, 0);
}
END_TEST

START_TEST(own_and_older_notices_are_ignored)
{
	struct vt_inbox bob = {.user = "bob", .device = ""};
	int64_t since;

	connect_user(node[1], &H, "bob", &B);
	ck_assert_int_eq(vt_engine_attached_since(node[1], &bob, &since), 0);
	ck_assert_int_eq(since, H.wall);

	/* Older, or the same ms on a lower node: kept, and said so. */
	ck_assert_int_eq(vt_engine_replace(node[1], &bob, since - 1, node_id(0)), 1);
	ck_assert_int_eq(vt_engine_replace(node[1], &bob, since, node_id(0)), 1);
	/* Its own node's notice, even a later one. */
	ck_assert_int_eq(vt_engine_replace(node[1], &bob, since + 1, node_id(1)), 0);
	ck_assert_int_eq(B.closed, 0);

	/* The same ms on a higher node wins. */
	ck_assert_int_eq(vt_engine_replace(node[0], &bob, since, node_id(1)), 0);
	ck_assert_int_eq(vt_engine_replace(node[1], &bob, since, node_id(1) + 1), 0);
	ck_assert_int_eq(B.closed, 1);
	ck_assert_int_eq(B.close_code, VT_CLOSE_REPLACED);
	ck_assert_int_eq(vt_engine_attached_since(node[1], &bob, &since), VT_ENOTFOUND);
}
END_TEST

START_TEST(simultaneous_connects_leave_exactly_one)
{
	/* Both attach in one ms, and each node hears the other's notice. */
	connect_user(node[0], &H, "bob", &B);
	connect_user(node[1], &H, "bob", &B2);
	settle();
	ck_assert_int_eq(B.closed + B2.closed, 1);
	ck_assert_int_eq(B.closed, 1);
	ck_assert_int_eq(B.close_code, VT_CLOSE_REPLACED);
}
END_TEST

START_TEST(replaced_connection_wakes_nobody)
{
	/* Node 0's connection holds a push; the device comes back on node 1. */
	connect_user(node[0], &H, "alice", &A);
	connect_user(node[0], &H, "bob", &B);
	send_msg(&A, "m1", "bob", "1");
	settle();
	ck_assert_uint_eq(cap_count(&B, "message"), 1);
	H.wall += 1;
	connect_user(node[1], &H, "bob", &B2);
	settle();
	ck_assert_int_eq(B.close_code, VT_CLOSE_REPLACED);
	ck_assert_uint_eq(cap_count(&B2, "message"), 1);
	ck_assert_int_eq(pushes, 0);
}
END_TEST

/* ---- a group changed on one node while the other still had the old one ---- */

static char info[512];

static void on_info(void *arg, int status, const char *json, size_t len)
{
	snprintf(info, sizeof(info), "%d %.*s", status, (int)len, json);
}

/* The group as node @n has it in memory, read by its member @user. */
static const char *group_on(int n, const char *user, const char *group)
{
	struct vt_identity id = ident(&H, user);

	info[0] = 0;
	vt_engine_group_info(node[n], &id, group, on_info, NULL);
	return info;
}

/* Alice (node 0) runs g:x with bob and carol (node 1); both nodes know it. */
static void team(void)
{
	connect_user(node[0], &H, "alice", &A);
	connect_user(node[1], &H, "bob", &B);
	connect_user(node[1], &H, "carol", &C);
	send_raw(&A, "{\"type\":\"group_create\",\"id\":\"c\",\"to\":\"g:x\","
		     "\"body\":{\"name\":\"X\",\"members\":[\"bob\",\"carol\"]}}");
	settle();
	ck_assert_uint_eq(cap_count(&C, "group"), 1);
	ck_assert_ptr_nonnull(strstr(group_on(1, "carol", "g:x"), "\"bob\",\"carol\"]"));
}

/* Alice removes bob; node 1 does not hear of it yet. */
static void remove_bob_quietly(void)
{
	hold_groups = 1;
	send_raw(&A, "{\"type\":\"group_update\",\"id\":\"rm\",\"to\":\"g:x\","
		     "\"body\":{\"remove\":[\"bob\"]}}");
	settle();
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);
	ck_assert_ptr_nonnull(strstr(group_on(1, "carol", "g:x"), "\"bob\""));
}

/*
 * Carol posts through node 1, which still counts bob in: the store refuses
 * the post, node 1 reads the group again and takes the post again, without
 * bob. Carol hears "accepted" once; bob gets nothing.
 */
START_TEST(post_from_a_stale_group_is_taken_again_without_the_removed)
{
	team();
	remove_bob_quietly();
	cap_clear(&B);

	send_msg(&C, "m1", "g:x", "\"after\"");
	settle();
	ck_assert_int_eq(conflicts, 1);
	ck_assert_uint_eq(cap_count(&C, "accepted"), 1);
	ck_assert_uint_eq(cap_count(&C, "error"), 0);
	ck_assert_uint_eq(cap_count(&A, "message"), 1);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	ck_assert_ptr_null(strstr(group_on(1, "carol", "g:x"), "\"bob\""));

	/* The late news changes nothing more. */
	release_groups();
	settle();
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	ck_assert_uint_eq(cap_count(&C, "accepted"), 1);
}
END_TEST

/*
 * Alice adds dave; node 1 has not heard of it when dave posts there. It
 * reads the group once before refusing, and finds him in it. A stranger is
 * still refused after that one read.
 */
START_TEST(member_added_elsewhere_may_post_at_once)
{
	team();
	connect_user(node[1], &H, "dave", &D);
	connect_user(node[1], &H, "eve", &X);
	hold_groups = 1;
	send_raw(&A, "{\"type\":\"group_update\",\"id\":\"add\",\"to\":\"g:x\","
		     "\"body\":{\"add\":[\"dave\"]}}");
	settle();
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);
	ck_assert_ptr_null(strstr(group_on(1, "carol", "g:x"), "\"dave\""));

	send_msg(&D, "d1", "g:x", "\"hi\"");
	send_msg(&X, "e1", "g:x", "\"me too\"");
	settle();
	ck_assert_uint_eq(cap_count(&D, "accepted"), 1);
	ck_assert_uint_eq(cap_count(&D, "error"), 0);
	ck_assert_uint_eq(cap_count(&A, "message"), 1);
	ck_assert_uint_eq(cap_count(&X, "accepted"), 0);
	ck_assert_ptr_nonnull(strstr(cap_nth(&X, "error", 0), "\"forbidden\""));
	ck_assert(vt_engine_idle(node[1]));
}
END_TEST

/*
 * Alice's removal of bob times out on node 0 but the store applied it. Node
 * 0 reads the group back, and tells node 1; alice's resend is answered.
 */
START_TEST(change_applied_despite_a_timeout_reaches_every_node)
{
	team();
	lie_once = 1;
	send_raw(&A, "{\"type\":\"group_update\",\"id\":\"rm\",\"to\":\"g:x\","
		     "\"body\":{\"remove\":[\"bob\"]}}");
	settle();
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "error", 0), "\"storage_error\""));
	ck_assert_ptr_null(strstr(group_on(0, "alice", "g:x"), "\"bob\""));
	ck_assert_ptr_null(strstr(group_on(1, "carol", "g:x"), "\"bob\""));

	send_raw(&A, "{\"type\":\"group_update\",\"id\":\"rm\",\"to\":\"g:x\","
		     "\"body\":{\"remove\":[\"bob\"]}}");
	settle();
	ck_assert_uint_eq(cap_count(&A, "accepted"), 2);
	ck_assert_int_eq(conflicts, 0);
}
END_TEST

/*
 * Posts that come while one waits for the fresh group wait behind it and
 * keep their order; each is answered once.
 */
START_TEST(posts_meanwhile_wait_behind_and_keep_their_order)
{
	team();
	remove_bob_quietly();
	cap_clear(&B);

	send_msg(&C, "m1", "g:x", "1");
	H.flush_wanted = 0;
	vt_engine_flush(node[1]); /* refused: m1 now waits for the group */
	ck_assert_int_eq(conflicts, 1);
	ck_assert_uint_eq(cap_count(&C, "accepted"), 0);
	ck_assert(!vt_engine_idle(node[1]));
	send_msg(&C, "m2", "g:x", "2");
	settle();
	ck_assert_int_eq(conflicts, 1); /* m2 never went out stale */
	ck_assert_uint_eq(cap_count(&C, "accepted"), 2);
	ck_assert_uint_lt(json_id(cap_nth(&C, "accepted", 0), "id"),
			  json_id(cap_nth(&C, "accepted", 1), "id"));
	ck_assert_ptr_nonnull(strstr(cap_nth(&C, "accepted", 0), "\"m1\""));
	ck_assert_uint_eq(cap_count(&A, "message"), 2);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	ck_assert(vt_engine_idle(node[1]));
}
END_TEST

/*
 * When the fresh group cannot be read, the refused post is answered with
 * the retryable conflict; sent again once the group can be read, it goes.
 */
START_TEST(post_answered_conflict_when_the_group_cannot_be_read)
{
	team();
	remove_bob_quietly();
	cap_clear(&B);

	reads_fail = 1;
	send_msg(&C, "m1", "g:x", "1");
	settle();
	ck_assert_uint_eq(cap_count(&C, "accepted"), 0);
	ck_assert_uint_eq(cap_count(&C, "error"), 1);
	ck_assert_ptr_nonnull(strstr(cap_nth(&C, "error", 0), "\"code\":\"conflict\""));
	ck_assert_ptr_nonnull(strstr(cap_nth(&C, "error", 0), "\"ref\":\"m1\""));

	reads_fail = 0;
	send_msg(&C, "m1", "g:x", "1");
	settle();
	ck_assert_uint_eq(cap_count(&C, "accepted"), 1);
	ck_assert_uint_eq(cap_count(&B, "message"), 0);
	ck_assert_uint_eq(cap_count(&A, "message"), 1);
}
END_TEST

/*
 * Two admins change the group at once through two nodes: the first commit
 * wins, the second is answered conflict and undone, and no node loses the
 * change that was accepted.
 */
START_TEST(concurrent_changes_one_refused_and_undone)
{
	team();
	send_raw(&A, "{\"type\":\"group_update\",\"id\":\"adm\",\"to\":\"g:x\","
		     "\"body\":{\"admins\":[\"bob\"]}}");
	settle();

	hold_groups = 1;
	reads_fail = 1;
	send_raw(&A, "{\"type\":\"group_update\",\"id\":\"ax\",\"to\":\"g:x\","
		     "\"body\":{\"add\":[\"xavier\"]}}");
	send_raw(&B, "{\"type\":\"group_update\",\"id\":\"by\",\"to\":\"g:x\","
		     "\"body\":{\"add\":[\"yvonne\"]}}");
	settle(); /* node 0 commits first */
	ck_assert_ptr_nonnull(strstr(cap_nth(&A, "accepted", 2), "\"ax\""));
	ck_assert_uint_eq(cap_count(&B, "accepted"), 0);
	ck_assert_ptr_nonnull(strstr(cap_nth(&B, "error", 0), "\"code\":\"conflict\""));
	ck_assert_int_eq(conflicts, 2); /* the state write and its announcement */

	/* Node 1 is back where it was, neither half-changed nor ahead. */
	ck_assert_ptr_nonnull(strstr(group_on(1, "bob", "g:x"),
				     "\"members\":[\"alice\",\"bob\",\"carol\"]"));
	ck_assert_ptr_null(strstr(group_on(0, "alice", "g:x"), "yvonne"));
	ck_assert_uint_eq(cap_count(&C, "group"), 3); /* create, promotion, ax */

	release_groups();
	reads_fail = 0;
	settle();
	ck_assert_ptr_nonnull(strstr(group_on(1, "bob", "g:x"), "\"xavier\""));
	send_raw(&B, "{\"type\":\"group_update\",\"id\":\"by\",\"to\":\"g:x\","
		     "\"body\":{\"add\":[\"yvonne\"]}}");
	settle();
	ck_assert_uint_eq(cap_count(&B, "accepted"), 1);
	for (int n = 0; n < NODES; n++) {
		ck_assert_ptr_nonnull(strstr(group_on(n, "alice", "g:x"),
					     "\"members\":[\"alice\",\"bob\",\"carol\","
					     "\"xavier\",\"yvonne\"]"));
	}
}
END_TEST

/* A node destroyed while a REST post waits answers it busy, leaking nothing. */
START_TEST(waiting_post_answered_at_destroy)
{
	static const char post[] = "{\"type\":\"message\",\"id\":\"m1\",\"to\":\"g:x\","
				   "\"body\":1}";
	struct vt_identity carol;

	team();
	remove_bob_quietly();

	carol = ident(&H, "carol");
	info[0] = 0;
	vt_engine_submit(node[1], &carol, post, strlen(post), on_info, NULL);
	H.flush_wanted = 0;
	vt_engine_flush(node[1]); /* refused: the post waits for the group */
	ck_assert_str_eq(info, "");
	vt_engine_destroy(node[1]);
	node[1] = NULL;
	nq = 0; /* its read of the group is never served */
	ck_assert_ptr_nonnull(strstr(info, "\"code\":\"busy\""));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cluster");
	TCase *t = tcase_create("cluster");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, message_crosses_nodes_and_receipt_comes_back);
	tcase_add_test(t, no_node_holds_the_device_so_the_hook_is_called_once);
	tcase_add_test(t, group_changes_reach_every_node);
	tcase_add_test(t, ack_on_one_node_ends_the_push_on_the_other);
	tcase_add_test(t, ack_of_what_the_local_connection_held_is_not_told);
	tcase_add_test(t, remote_ack_frees_the_window_and_ignores_strangers);
	tcase_add_test(t, ack_during_a_listing_is_not_queued_again);
	tcase_add_test(t, acks_during_a_listing_make_it_list_again);
	tcase_add_test(t, relisting_skips_what_was_just_acked);
	tcase_add_test(t, relisting_skips_what_was_just_acked_unindexed);
	tcase_add_test(t, message_below_the_cursor_is_listed_from_just_below_it);
	tcase_add_test(t, failed_listing_below_the_cursor_is_asked_again_from_there);
	tcase_add_test(t, second_node_replaces_the_first);
	tcase_add_test(t, own_and_older_notices_are_ignored);
	tcase_add_test(t, simultaneous_connects_leave_exactly_one);
	tcase_add_test(t, replaced_connection_wakes_nobody);
	tcase_add_test(t, post_from_a_stale_group_is_taken_again_without_the_removed);
	tcase_add_test(t, posts_meanwhile_wait_behind_and_keep_their_order);
	tcase_add_test(t, member_added_elsewhere_may_post_at_once);
	tcase_add_test(t, change_applied_despite_a_timeout_reaches_every_node);
	tcase_add_test(t, post_answered_conflict_when_the_group_cannot_be_read);
	tcase_add_test(t, concurrent_changes_one_refused_and_undone);
	tcase_add_test(t, waiting_post_answered_at_destroy);
	suite_add_tcase(s, t);
	return run_suite(s);
}
