/*
 * storage_cases_revoke.c - the storage contract's cases of logouts: REVOKE
 * ops, read back by load_revoked and forgotten by expiry.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "storage_cases.h"

void revoke_init(struct vt_op *op, const char *user, const char *device, int64_t ts)
{
	*op = (struct vt_op){.kind = VT_OP_REVOKE, .inbox = {user, device}, .ts = ts};
}

int commit_revoke(const char *user, const char *device, int64_t ts)
{
	struct vt_op op;
	int rc;

	revoke_init(&op, user, device, ts);
	rc = commit(&op, 1);
	return rc != 0 ? rc : op.status;
}

struct revoked {
	int n;
	char text[16][160];
};

static void on_revoked(void *arg, const struct vt_inbox *scope, int64_t ts)
{
	struct revoked *r = arg;

	ck_assert_int_lt(r->n, 16);
	snprintf(r->text[r->n++], sizeof(r->text[0]), "%s/%s=%lld", scope->user, scope->device,
		 (long long)ts);
}

const char *load_revoked(void)
{
	static char out[16 * 160];
	struct revoked r = {0};

	ck_assert_ptr_nonnull(fx.st.ops->load_revoked);
	ck_assert_int_eq(fx.st.ops->load_revoked(fx.st.self, on_revoked, &r), 0);
	return rows_joined(r.text[0], (size_t)r.n, sizeof(r.text[0]), out, sizeof(out));
}

/* A scope keeps its latest time; scopes of one user and of others stay apart. */
START_TEST(revoke_kept_per_scope)
{
	st_open(_i);
	ck_assert_str_eq(load_revoked(), "");
	ck_assert_int_eq(commit_revoke("alice", "phone", 100), 0);
	ck_assert_int_eq(commit_revoke("alice", "phone", 50), 0); /* older: 100 stays */
	ck_assert_int_eq(commit_revoke("alice", "", 70), 0);       /* the default device */
	ck_assert_int_eq(commit_revoke("bob", VT_ALL_DEVICES, 200), 0);
	ck_assert_int_eq(commit_revoke("alicephone", "", 10), 0);  /* no key runs into another */
	ck_assert_str_eq(load_revoked(),
			 "alice/=70 alice/phone=100 alicephone/=10 bob/*=200");
	ck_assert_int_eq(commit_revoke("alice", "phone", 150), 0);
	ck_assert_int_eq(commit_revoke("bob", VT_ALL_DEVICES, 150), 0);
	ck_assert_str_eq(load_revoked(),
			 "alice/=70 alice/phone=150 alicephone/=10 bob/*=200");
}
END_TEST

/* A revocation of every device forgets the user's single ones it covers. */
START_TEST(revoke_all_covers_devices)
{
	st_open(_i);
	ck_assert_int_eq(commit_revoke("alice", "phone", 100), 0);
	ck_assert_int_eq(commit_revoke("alice", "laptop", 300), 0);
	ck_assert_int_eq(commit_revoke("carol", "phone", 100), 0);
	ck_assert_int_eq(commit_revoke("alice", VT_ALL_DEVICES, 200), 0);
	ck_assert_str_eq(load_revoked(), "alice/*=200 alice/laptop=300 carol/phone=100");

	/* a user's last scope, and then the store's last entry, can go too */
	ck_assert_int_eq(commit_revoke("zed", "phone", 100), 0);
	ck_assert_int_eq(commit_revoke("zed", VT_ALL_DEVICES, 100), 0);
	ck_assert_str_eq(load_revoked(), "alice/*=200 alice/laptop=300 carol/phone=100 zed/*=100");
}
END_TEST

/* The only scope in the store, covered by a revocation of all devices. */
START_TEST(revoke_all_covers_the_only_scope)
{
	st_open(_i);
	ck_assert_int_eq(commit_revoke("alice", "phone", 100), 0);
	ck_assert_int_eq(commit_revoke("alice", VT_ALL_DEVICES, 100), 0);
	ck_assert_str_eq(load_revoked(), "alice/*=100");
}
END_TEST

/* Expiry forgets what is older than an unused device, by its time in ms. */
START_TEST(revoke_expiry)
{
	st_open(_i);
	ck_assert_int_eq(commit_revoke("alice", "phone", 100), 0);
	ck_assert_int_eq(commit_revoke("bob", VT_ALL_DEVICES, 500), 0);
	ck_assert_int_eq(commit_revoke("carol", "", 300), 0);
	expire_dev(1000000, 0, 300000, 1000);
	ck_assert_str_eq(load_revoked(), "bob/*=500 carol/=300");
	expire_dev(1000000, 0, 300001, 1000);
	ck_assert_str_eq(load_revoked(), "bob/*=500");
}
END_TEST

START_TEST(revoke_refuses_bad_scopes)
{
	st_open(_i);
	ck_assert_int_eq(commit_revoke(NULL, "phone", 100), VT_EINVAL);
	ck_assert_int_eq(commit_revoke("", "phone", 100), VT_EINVAL);
	ck_assert_int_eq(commit_revoke("alice", NULL, 100), VT_EINVAL);
	ck_assert_int_eq(commit_revoke("alice", "phone", 0), VT_EINVAL);
	ck_assert_str_eq(load_revoked(), "");
}
END_TEST

/*
 * On a full store a logout of every device is written, and so is a later
 * time for a scope already stored. A new scope of one device may be
 * refused there (VT_ENOSPC) by a backend whose room for acks it would eat
 * (LMDB: see test_storage.c). A durable store keeps what was written.
 */
START_TEST(revoke_on_a_full_store_and_reopened)
{
	char device[16];
	int rc = 0;

	memset(full_body, 'x', FULL_BODY_LEN);
	full_body[0] = full_body[FULL_BODY_LEN - 1] = '"';
	fx.map_size = 1 << 20;
	st_open(_i);
	ck_assert_int_eq(commit_revoke("bob", "phone", 50), 0);
	if (storage_backends[_i].fill) {
		storage_backends[_i].fill();
	}
	for (int i = 0; i < 1000 && rc == 0; i++) {
		snprintf(device, sizeof(device), "d%d", i);
		rc = commit_revoke("carol", device, 100);
		ck_assert_msg(rc == 0 || rc == VT_ENOSPC, "%s: %d", device, rc);
	}
	ck_assert_int_eq(commit_revoke("carol", VT_ALL_DEVICES, 100), 0);
	ck_assert_int_eq(commit_revoke("alice", VT_ALL_DEVICES, 100), 0);
	ck_assert_int_eq(commit_revoke("bob", "phone", 200), 0);
	if (storage_backends[_i].durable) {
		st_close();
		st_open(_i);
	}
	ck_assert_str_eq(load_revoked(), "alice/*=100 bob/phone=200 carol/*=100");
}
END_TEST

void storage_revoke_cases_add(TCase *tc)
{
	tcase_add_loop_test(tc, revoke_kept_per_scope, 0, storage_nbackends);
	tcase_add_loop_test(tc, revoke_all_covers_devices, 0, storage_nbackends);
	tcase_add_loop_test(tc, revoke_all_covers_the_only_scope, 0, storage_nbackends);
	tcase_add_loop_test(tc, revoke_expiry, 0, storage_nbackends);
	tcase_add_loop_test(tc, revoke_refuses_bad_scopes, 0, storage_nbackends);
	tcase_add_loop_test(tc, revoke_on_a_full_store_and_reopened, 0, storage_nbackends);
}
