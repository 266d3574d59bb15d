/*
 * store_lmdb_revoke.c - logouts in LMDB: the tokens each scope revoked.
 *
 * Two trees, as for devices: "revoked" maps a scope's inbox key (user and
 * device, VT_ALL_DEVICES for all of them) to the time up to which its
 * tokens are revoked, and "revoked_time" holds (time, inbox key) so that
 * expiry reads the oldest first and stops at the first one it keeps. Times
 * are seconds, as tokens' "iat". Both key layouts sort a user's scopes
 * together, which lets a logout of every device find the ones it covers.
 */
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "store_key.h"
#include "store_lmdb_int.h"

/* Delete (@ts, @ik) from the time index; absent is fine. */
static int time_del(struct lmdb *s, MDB_txn *txn, int64_t ts, const uint8_t *ik, size_t iklen)
{
	uint8_t tk[8 + VT__INBOX_KEY_MAX];

	vt__put_ts(tk, ts);
	memcpy(tk + 8, ik, iklen);
	return vt__lmdb_del_quiet(txn, s->revtime, tk, 8 + iklen);
}

static int time_put(struct lmdb *s, MDB_txn *txn, int64_t ts, const uint8_t *ik, size_t iklen)
{
	uint8_t tk[8 + VT__INBOX_KEY_MAX];
	MDB_val k = val(tk, 8 + iklen), v = val("", 0);

	vt__put_ts(tk, ts);
	memcpy(tk + 8, ik, iklen);
	return mdb_put(txn, s->revtime, &k, &v, 0);
}

/* Set scope @ik to @ts unless it holds a later time already. */
static int scope_set(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, int64_t ts)
{
	uint8_t tv[8];
	MDB_val k = val(ik, iklen), v;
	int rc = mdb_get(txn, s->revoked, &k, &v);

	if (rc == 0 && v.mv_size == 8) {
		int64_t old = vt__get_ts(v.mv_data);

		if (old >= ts) {
			return 0;
		}
		rc = time_del(s, txn, old, ik, iklen);
	} else if (rc == MDB_NOTFOUND || rc == 0) {
		rc = 0; /* new, or a damaged value written over */
	}
	if (rc != 0) {
		return rc;
	}

	vt__put_ts(tv, ts);
	v = val(tv, sizeof(tv));
	rc = mdb_put(txn, s->revoked, &k, &v, 0);
	return rc ? rc : time_put(s, txn, ts, ik, iklen);
}

/*
 * Forget the single-device scopes of user @uk revoked up to @ts: @ts covers
 * them. Each step seeks again from the last key seen, since a cursor that
 * deleted the last entry of a tree points nowhere.
 */
static int forget_covered(struct lmdb *s, MDB_txn *txn, const uint8_t *uk, size_t uklen,
			  int64_t ts)
{
	uint8_t from[VT__INBOX_KEY_MAX + 1];
	size_t fromlen = uklen;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, s->revoked, &cur);

	memcpy(from, uk, uklen);
	while (rc == 0) {
		k = val(from, fromlen);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 || k.mv_size < uklen || k.mv_size > VT__INBOX_KEY_MAX ||
		    memcmp(k.mv_data, uk, uklen) != 0) {
			break;
		}
		memcpy(from, k.mv_data, k.mv_size);
		fromlen = k.mv_size;
		if (vt__revoke_covers(from, fromlen, uk, uklen) && v.mv_size == 8 &&
		    vt__get_ts(v.mv_data) <= ts) {
			rc = time_del(s, txn, vt__get_ts(v.mv_data), from, fromlen);
			rc = rc ? rc : mdb_cursor_del(cur, 0);
		} else {
			from[fromlen++] = 0; /* the least key after it */
		}
	}
	if (rc == 0 || rc == MDB_NOTFOUND) {
		rc = 0;
	}
	if (cur != NULL) {
		mdb_cursor_close(cur);
	}
	return rc;
}

/*
 * A new scope of one device grows the store: each user may have dozens, and
 * users without end could eat the reserve that acks need, so a full store
 * refuses it (VT_ENOSPC). A logout of every device is one entry a user and
 * replaces that user's single ones: like a user's first device it may use
 * the reserve, so that a logout does not wait for acks to make room.
 */
int vt__lmdb_apply_revoke(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b)
{
	uint8_t ik[VT__INBOX_KEY_MAX];
	size_t iklen;
	MDB_val k, v;
	int rc = 0;

	if (!vt__revoke_valid(op, ik, &iklen)) {
		op->status = VT_EINVAL;
		return 0;
	}
	if (vt__revoke_all(&op->inbox)) {
		rc = forget_covered(s, txn, ik, 2 + strlen(op->inbox.user), op->ts);
	} else {
		k = val(ik, iklen);
		rc = mdb_get(txn, s->revoked, &k, &v);
		if (rc == MDB_NOTFOUND && b->refuse) {
			op->status = VT_ENOSPC;
			return 0;
		}
		b->grows |= rc == MDB_NOTFOUND;
		rc = rc == MDB_NOTFOUND ? 0 : rc;
	}
	return rc ? rc : scope_set(s, txn, ik, iklen, op->ts);
}

/*
 * Forget scopes revoked before @before_ms (wall ms), oldest first, at most
 * @max of them.
 */
int vt__lmdb_revoked_expire(struct lmdb *s, MDB_txn *txn, int64_t before_ms, uint64_t max)
{
	/* The first second whose scopes stay: a time in ms is not before it. */
	int64_t keep = before_ms / 1000 + (before_ms % 1000 > 0);
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t n = 0;
	int rc = mdb_cursor_open(txn, s->revtime, &cur);

	if (rc != 0) {
		return rc;
	}
	while (n++ < max && (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
		if (k.mv_size > 8 && vt__get_ts(k.mv_data) >= keep) {
			break;
		}
		if (k.mv_size > 8) {
			rc = vt__lmdb_del_quiet(txn, s->revoked, (const uint8_t *)k.mv_data + 8,
						k.mv_size - 8);
		}
		rc = rc ? rc : mdb_cursor_del(cur, 0);
		if (rc != 0) {
			break;
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

struct revoked_walk {
	void (*each)(void *arg, const struct vt_inbox *scope, int64_t ts);
	void *arg;
};

/* Call @each for every scope of the cursor's tree; damaged entries are skipped. */
static int revoked_scan(MDB_cursor *cur, void *ctx)
{
	const struct revoked_walk *w = ctx;
	char user[VT__INBOX_KEY_MAX], device[VT__INBOX_KEY_MAX];
	struct vt_inbox scope = {user, device};
	MDB_val k, v;
	int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);

	while (rc == 0) {
		if (v.mv_size != 8 || vt__inbox_key_split(k.mv_data, k.mv_size, user, device) != 0) {
			vt_log(VT_LOG_WARN, "lmdb: revocation of %zu bytes is damaged; skipped",
			       k.mv_size);
		} else {
			w->each(w->arg, &scope, vt__get_ts(v.mv_data));
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int vt__lmdb_load_revoked(void *self,
			  void (*each)(void *arg, const struct vt_inbox *scope, int64_t ts),
			  void *arg)
{
	struct lmdb *s = self;
	struct revoked_walk w = {each, arg};

	return vt__lmdb_read_tree(s, s->revoked, revoked_scan, &w, "revocations");
}
