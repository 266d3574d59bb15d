/*
 * store_lmdb_dlv.c - deliveries of records to inboxes, and the devices
 * whose inboxes they are.
 */
#include <errno.h>
#include <lmdb.h>
#include <string.h>

#include "store_key.h"
#include "store_lmdb_int.h"

/* ---- deliveries ---- */

/* The flags of a delivery value; an empty one (format 1) has none. */
uint32_t vt__lmdb_dlv_flags(const MDB_val *v)
{
	return v->mv_size == 4 ? get_u32(v->mv_data) : 0;
}

/* The deliveries key of (inbox @ik, @id) in @dk. */
static MDB_val dlv_key(uint8_t *dk, const uint8_t *ik, size_t iklen, uint64_t id)
{
	memcpy(dk, ik, iklen);
	vt__put_be64(dk + iklen, id);
	return val(dk, iklen + 8);
}

/*
 * Remove the delivery (inbox @ik, @id) from both indexes and the inbox
 * count, leaving the record's count to the caller: through @at, a cursor on
 * it, or found here when @at is NULL. MDB_NOTFOUND when there is no such
 * delivery.
 */
static int dlv_unindex(struct lmdb *s, MDB_txn *txn, MDB_cursor *at, const uint8_t *ik,
                       size_t iklen, uint64_t id)
{
	uint8_t dk[VT__INBOX_KEY_MAX + 8], rk[VT__INBOX_KEY_MAX + 8];
	MDB_val k = dlv_key(dk, ik, iklen, id);
	int rc = at ? mdb_cursor_del(at, 0) : mdb_del(txn, s->dlv, &k, NULL);

	if (rc != 0) {
		return rc;
	}
	vt__put_be64(rk, id);
	memcpy(rk + 8, ik, iklen);
	rc = vt__lmdb_del_quiet(txn, s->byrec, rk, iklen + 8);
	return rc ? rc : vt__lmdb_inbox_count_add(s, txn, val(ik, iklen), -1);
}

/*
 * Remove the delivery (inbox @ik, @id) and update both counts; the record
 * goes with its last delivery. MDB_NOTFOUND when there is no such delivery.
 */
int vt__lmdb_dlv_remove(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id)
{
	return vt__lmdb_dlv_remove_at(s, txn, NULL, ik, iklen, id, NULL);
}

/*
 * A cursor on the delivery (inbox @ik, @id) in *@at, for
 * vt__lmdb_dlv_remove_at; MDB_NOTFOUND, and no cursor, when it is absent.
 */
int vt__lmdb_dlv_seek(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                      MDB_cursor **at)
{
	uint8_t dk[VT__INBOX_KEY_MAX + 8];
	MDB_val k = dlv_key(dk, ik, iklen, id), v;
	int rc = mdb_cursor_open(txn, s->dlv, at);

	if (rc == 0) {
		rc = mdb_cursor_get(*at, &k, &v, MDB_SET);
	}
	if (rc != 0 && *at) {
		mdb_cursor_close(*at);
		*at = NULL;
	}
	return rc;
}

/*
 * vt__lmdb_dlv_remove for the delivery under cursor @at (which the caller
 * closes), of a record stored at *@ts: what is known is not searched for
 * again. Either may be NULL: not known.
 */
int vt__lmdb_dlv_remove_at(struct lmdb *s, MDB_txn *txn, MDB_cursor *at, const uint8_t *ik,
                           size_t iklen, uint64_t id, const int64_t *ts)
{
	uint8_t idk[8];
	int rc = dlv_unindex(s, txn, at, ik, iklen, id);

	vt__put_be64(idk, id);
	return rc ? rc : vt__lmdb_rec_release(s, txn, idk, ts);
}

/* Whether the delivery (inbox @ik, @id) exists, and its flags. */
int vt__lmdb_dlv_get(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                     int *exists, uint32_t *flags)
{
	uint8_t dk[VT__INBOX_KEY_MAX + 8];
	MDB_val k = dlv_key(dk, ik, iklen, id), v;
	int rc = mdb_get(txn, s->dlv, &k, &v);
	*exists = rc == 0;
	*flags = rc == 0 ? vt__lmdb_dlv_flags(&v) : 0;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int vt__lmdb_dlv_exists(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                        int *exists)
{
	uint32_t flags;

	return vt__lmdb_dlv_get(s, txn, ik, iklen, id, exists, &flags);
}

/* Write the delivery (inbox @ik, @id) with @flags; no flags take no bytes. */
int vt__lmdb_dlv_put(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                     uint32_t flags)
{
	uint8_t dk[VT__INBOX_KEY_MAX + 8], fb[4];
	MDB_val k = dlv_key(dk, ik, iklen, id), v = val(fb, flags ? 4 : 0);

	put_u32(fb, flags);
	return mdb_put(txn, s->dlv, &k, &v, 0);
}

/* Write the delivery (inbox @ik, @id), known to be absent, in both indexes. */
static int dlv_index(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                     uint32_t flags)
{
	uint8_t rk[VT__INBOX_KEY_MAX + 8];
	MDB_val k = val(rk, iklen + 8), empty = val("", 0);
	int rc = vt__lmdb_dlv_put(s, txn, ik, iklen, id, flags);

	vt__put_be64(rk, id);
	memcpy(rk + 8, ik, iklen);
	return rc ? rc : vt__lmdb_put_last(txn, s->byrec, &k, &empty, 0);
}

/* Add the delivery (inbox @ik, @id), known to be absent, and count it. */
int vt__lmdb_dlv_add(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                     uint32_t flags)
{
	int rc = dlv_index(s, txn, ik, iklen, id, flags);

	return rc ? rc : vt__lmdb_inbox_count_add(s, txn, val(ik, iklen), +1);
}

/* The same, for an inbox known to hold @count deliveries before it. */
int vt__lmdb_dlv_add_counted(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen,
                             uint64_t id, uint32_t count)
{
	int rc = dlv_index(s, txn, ik, iklen, id, 0);

	return rc ? rc : vt__lmdb_inbox_count_set(s, txn, val(ik, iklen), count + 1);
}

/* ---- devices ---- */

/*
 * Call @fn for each registered device of the user whose user key is @uk.
 * Keys read back are checked, so a damaged one is passed over. @fn must
 * not write to the devices database.
 */
int vt__lmdb_devices_each(struct lmdb *s, MDB_txn *txn, const uint8_t *uk, size_t uklen, dev_fn fn,
                          void *ctx)
{
	MDB_cursor *cur;
	MDB_val k = val(uk, uklen), v;
	int rc = mdb_cursor_open(txn, s->devs, &cur);

	if (rc != 0) {
		return rc;
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size > uklen && memcmp(k.mv_data, uk, uklen) == 0) {
		size_t ul, dl;

		if (vt__inbox_key_parse(k.mv_data, k.mv_size, &ul, &dl) == 0 && ul + 2 == uklen) {
			rc = fn(ctx, k.mv_data, k.mv_size);
		}
		if (rc == 0) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int count_device(void *ctx, const uint8_t *ik, size_t iklen)
{
	(*(uint32_t *)ctx)++;
	return 0;
}

/* How many devices @user has registered. */
int vt__lmdb_devices_count(struct lmdb *s, MDB_txn *txn, const char *user, uint32_t *n)
{
	uint8_t uk[VT__INBOX_KEY_MAX];
	size_t uklen = vt__user_key(user, uk);

	*n = 0;
	return uklen ? vt__lmdb_devices_each(s, txn, uk, uklen, count_device, n) : 0;
}

/* Set device @ik's last-seen time, moving its expiry index entry. */
int vt__lmdb_device_set(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen,
                        const int64_t *old_ts, int64_t ts)
{
	uint8_t tk[8 + VT__INBOX_KEY_MAX];
	MDB_val k = val(ik, iklen), v = val(tk, 8), empty = val("", 0);
	int rc = 0;

	memcpy(tk + 8, ik, iklen);
	if (old_ts) {
		vt__put_ts(tk, *old_ts);
		rc = vt__lmdb_del_quiet(txn, s->devtime, tk, 8 + iklen);
	}
	vt__put_ts(tk, ts);
	if (rc == 0) {
		rc = mdb_put(txn, s->devs, &k, &v, 0);
	}
	if (rc == 0) {
		k = val(tk, 8 + iklen);
		rc = mdb_put(txn, s->devtime, &k, &empty, 0);
	}
	return rc;
}

/*
 * Move the delivery @id from inbox @from to inbox @to with its flags; when
 * @to holds it already, drop it instead, so a record keeps one delivery
 * per inbox and its count stays right.
 */
static int dlv_move(struct lmdb *s, MDB_txn *txn, const uint8_t *from, size_t flen,
                    const uint8_t *to, size_t tlen, uint64_t id, uint32_t flags)
{
	int exists, rc = vt__lmdb_dlv_exists(s, txn, to, tlen, id, &exists);

	if (rc != 0 || exists) {
		return rc ? rc : vt__lmdb_dlv_remove(s, txn, from, flen, id);
	}
	rc = vt__lmdb_dlv_add(s, txn, to, tlen, id, flags);
	return rc ? rc : dlv_unindex(s, txn, NULL, from, flen, id);
}

/* Move all of @user's holding inbox into the inbox @ik. */
int vt__lmdb_claim_holding(struct lmdb *s, MDB_txn *txn, const char *user, const uint8_t *ik,
                           size_t iklen)
{
	uint8_t hk[VT__INBOX_KEY_MAX];
	size_t hklen = vt__holding_key(user, hk);
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = hklen ? mdb_cursor_open(txn, s->dlv, &cur) : EINVAL;

	if (rc != 0) {
		return rc;
	}
	while (rc == 0) {
		k = val(hk, hklen);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 || k.mv_size != hklen + 8 || memcmp(k.mv_data, hk, hklen) != 0) {
			break;
		}
		rc = dlv_move(s, txn, hk, hklen, ik, iklen,
		              vt__get_be64((const uint8_t *)k.mv_data + hklen),
		              vt__lmdb_dlv_flags(&v));
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}
