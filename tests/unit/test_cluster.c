/*
 * test_cluster.c - two engines sharing one store through the cluster hooks:
 * cross-node delivery, receipts back, the push hook when no node holds the
 * device, and group changes seen by every node.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Both engines reach one memory store; only the first destroys it. */
static struct vt_storage shared;

static void sh_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	shared.ops->commit(shared.self, ops, n, done, arg);
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
	int kind; /* 0 wake, 1 notify, 2 group */
	int node;
	char user[VT_ID_MAX + 1], device[VT_ID_MAX + 1];
	struct vt_record rec;
	char from[VT_ID_MAX + 1], to[VT_ID_MAX + 9], data[4096];
	size_t len;
};

static struct job q[MAXQ];
static int nq;
static int pushes;

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
		j = &q[nq++];
		memset(j, 0, sizeof(*j));
		j->kind = 2;
		j->node = n;
		snprintf(j->to, sizeof(j->to), "%s", group);
		memcpy(j->data, data, len);
		j->len = len;
	}
}

static void cl_destroy(void *self)
{
}

static const struct vt_cluster_ops cl_ops = {
	.deliver = cl_deliver,
	.attach = cl_attach,
	.detach = cl_detach,
	.group_changed = cl_group,
	.destroy = cl_destroy,
};

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
		for (i = 0; i < nq; i++) {
			struct vt_inbox in = {.user = q[i].user, .device = q[i].device};

			if (q[i].kind == 0) {
				vt_engine_wake(node[q[i].node], &in, q[i].rec.id);
			} else if (q[i].kind == 1) {
				vt_engine_notify_offline(node[q[i].node], &in, &q[i].rec);
			} else {
				vt_engine_group_reload(node[q[i].node], q[i].to, q[i].data, q[i].len);
			}
		}
		nq = 0;
	}
}

static struct cap_conn A, B;

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
	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
}

static void teardown(void)
{
	for (int n = NODES; n-- > 0;) {
		vt_engine_destroy(node[n]);
	}
	cap_free(&A);
	cap_free(&B);
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

int main(void)
{
	Suite *s = suite_create("cluster");
	TCase *t = tcase_create("cluster");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, message_crosses_nodes_and_receipt_comes_back);
	tcase_add_test(t, no_node_holds_the_device_so_the_hook_is_called_once);
	tcase_add_test(t, group_changes_reach_every_node);
	suite_add_tcase(s, t);
	return run_suite(s);
}
