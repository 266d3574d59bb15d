/*
 * test_cluster.c - two engines sharing one store through the cluster hooks:
 * cross-node delivery, receipts back, the push hook when no node holds the
 * device, group changes seen by every node, and writes taken from a group
 * that changed meanwhile on the other node, which the store refuses.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void sh_committed(void *arg, int status)
{
	struct sh_call *k = arg;

	/* The memory store completes inside commit: out_to is still valid. */
	for (size_t i = 0; i < k->nsub; i++) {
		k->ops[k->at[i]] = k->sub[i];
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

static void sh_list(void *self, const struct vt_inbox *in, uint64_t after, uint32_t limit,
		    vt_list_cb done, void *arg)
{
	shared.ops->list(shared.self, in, after, limit, done, arg);
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

struct job {
	int kind; /* 0 wake, 1 notify, 2 group, 3 read a group for a node */
	int node;
	vt_group_fetched_cb done;
	void *arg;
	char user[VT_ID_MAX + 1], device[VT_ID_MAX + 1];
	struct vt_record rec;
	char from[VT_ID_MAX + 1], to[VT_ID_MAX + 9], data[4096];
	size_t len;
};

static struct job q[MAXQ];
static int nq;
static int pushes;

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

static void cl_deliver(void *self, const struct vt_inbox *in, const struct vt_record *rec)
{
	struct job *j = &q[nq++];
	int h = holder(in);

	ck_assert_int_lt(nq, MAXQ);
	memset(j, 0, sizeof(*j));
	j->kind = h >= 0 ? 0 : 1;
	j->node = h >= 0 ? h : (int)(uintptr_t)self;
	snprintf(j->user, sizeof(j->user), "%s", in->user);
	snprintf(j->device, sizeof(j->device), "%s", in->device);
	j->rec = *rec;
	snprintf(j->from, sizeof(j->from), "%s", rec->from);
	snprintf(j->to, sizeof(j->to), "%s", rec->to);
	j->rec.from = j->from;
	j->rec.to = j->to;
	j->rec.cid = "";
	j->rec.body = NULL;
	j->rec.body_len = 0;
}

static void cl_attach(void *self, const struct vt_inbox *in)
{
	int n = (int)(uintptr_t)self;

	key_of(attached[n][nattached[n]++], in);
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
		j = hold_groups ? &late[nlate++] : &q[nq++];
		memset(j, 0, sizeof(*j));
		j->kind = 2;
		j->node = n;
		snprintf(j->to, sizeof(j->to), "%s", group);
		memcpy(j->data, data, len);
		j->len = len;
	}
}

static void cl_group_stale(void *self, const char *group, vt_group_fetched_cb done, void *arg)
{
	struct job *j = &q[nq++];

	ck_assert_int_lt(nq, MAXQ);
	memset(j, 0, sizeof(*j));
	j->kind = 3;
	j->node = (int)(uintptr_t)self;
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
};

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

/* Turns on every node until no work is left. */
static void settle(void)
{
	for (int round = 0; round < 20; round++) {
		int i;

		/* The nodes share one fake host: flush each of them every time. */
		for (int k = 0; k < 3; k++) {
			for (int n = 0; n < NODES; n++) {
				H.flush_wanted = 0;
				vt_engine_flush(node[n]);
			}
		}
		if (nq == 0) {
			return;
		}
		/* Jobs may queue more jobs: take this round's first. */
		struct job *round_q = malloc((size_t)nq * sizeof(*round_q));
		int n = nq;

		ck_assert_ptr_nonnull(round_q);
		memcpy(round_q, q, (size_t)n * sizeof(*q));
		nq = 0;
		for (i = 0; i < n; i++) {
			struct job *j = &round_q[i];
			struct vt_inbox in = {.user = j->user, .device = j->device};

			if (j->kind == 0) {
				vt_engine_wake(node[j->node], &in, j->rec.id);
			} else if (j->kind == 1) {
				vt_engine_notify_offline(node[j->node], &in, &j->rec);
			} else if (j->kind == 2) {
				vt_engine_group_reload(node[j->node], j->to, j->data, j->len);
			} else {
				serve_read(j);
			}
		}
		free(round_q);
	}
}

static struct cap_conn A, B, C;

static void setup(void)
{
	struct vt_engine_config c;

	vt_engine_config_init(&c);
	fake_host_init(&H);
	ck_assert_int_eq(vt_storage_memory_create(86400000, &shared), 0);
	for (int n = 0; n < NODES; n++) {
		struct vt_storage st = {.ops = &sh_ops, .self = (void *)(uintptr_t)(n << 30)};

		ck_assert_int_eq(vt_engine_create(&c, &H.host, st, &node[n]), 0);
		vt_engine_set_cluster(node[n], (struct vt_cluster){.ops = &cl_ops,
								   .self = (void *)(uintptr_t)n});
		vt_engine_set_notifier(node[n], (struct vt_notifier){.ops = &count_ops});
		nattached[n] = 0;
	}
	nq = 0;
	pushes = 0;
	nvers = conflicts = 0;
	nlate = hold_groups = reads_fail = 0;
	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
	memset(&C, 0, sizeof(C));
}

static void teardown(void)
{
	for (int n = NODES; n-- > 0;) {
		vt_engine_destroy(node[n]);
	}
	cap_free(&A);
	cap_free(&B);
	cap_free(&C);
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
	tcase_add_test(t, post_from_a_stale_group_is_taken_again_without_the_removed);
	tcase_add_test(t, posts_meanwhile_wait_behind_and_keep_their_order);
	tcase_add_test(t, post_answered_conflict_when_the_group_cannot_be_read);
	tcase_add_test(t, concurrent_changes_one_refused_and_undone);
	tcase_add_test(t, waiting_post_answered_at_destroy);
	suite_add_tcase(s, t);
	return run_suite(s);
}
