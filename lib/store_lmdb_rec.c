/*
 * store_lmdb_rec.c - stored records: their encoding, the count of
 * deliveries each has left (kept in its by_time entry), and their removal.
 */
#include <errno.h>
#include <lmdb.h>
#include <string.h>

#include <vartalap/log.h>

#include "store_key.h"
#include "store_lmdb_int.h"

/* ---- record encoding ---- */

static size_t str_len(const char *s)
{
	return s ? strlen(s) : 0;
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t n)
{
	if (n) {
		memcpy(p, s, n);
	}
	p[n] = 0;
	return p + n + 1;
}

/* Encoded size of @r, or 0 when a length does not fit the format. */
size_t vt__lmdb_rec_size(const struct vt_record *r)
{
	size_t f = str_len(r->from), t = str_len(r->to), c = str_len(r->cid);

	if (f > UINT32_MAX || t > UINT32_MAX || c > UINT32_MAX || r->body_len > UINT32_MAX) {
		return 0;
	}
	return REC_HEADER + f + t + c + 3 + r->body_len;
}

/* Write @r into @p, rec_size(r) bytes. Strings keep their NUL. */
void vt__lmdb_rec_encode(const struct vt_record *r, uint8_t *p)
{
	size_t f = str_len(r->from), t = str_len(r->to), c = str_len(r->cid);

	p[0] = REC_VERSION;
	put_u32(p + 1, r->kind);
	vt__put_ts(p + 5, r->ts);
	put_u32(p + 13, (uint32_t)f);
	put_u32(p + 17, (uint32_t)t);
	put_u32(p + 21, (uint32_t)c);
	put_u32(p + 25, (uint32_t)r->body_len);
	p = put_str(p + REC_HEADER, r->from, f);
	p = put_str(p, r->to, t);
	p = put_str(p, r->cid, c);
	if (r->body_len) {
		memcpy(p, r->body, r->body_len);
	}
}

/* Point @s at a string of @n bytes plus NUL at @p, if it is one. */
static int take_str(const uint8_t *p, uint32_t n, const char **s)
{
	if (p[n] != 0 || memchr(p, 0, n)) {
		return -1;
	}
	*s = (const char *)p;
	return 0;
}

/*
 * Decode a stored value into @r, pointing into it. Returns 0, or -1 for a
 * value of another version, a wrong size or strings without their NUL.
 */
int vt__lmdb_rec_decode(const MDB_val *v, uint64_t id, struct vt_record *r)
{
	const uint8_t *p = v->mv_data;
	uint64_t f, t, c, b;

	if (v->mv_size < REC_HEADER || p[0] != REC_VERSION) {
		return -1;
	}
	f = get_u32(p + 13);
	t = get_u32(p + 17);
	c = get_u32(p + 21);
	b = get_u32(p + 25);
	if (REC_HEADER + f + t + c + 3 + b != v->mv_size) {
		return -1;
	}
	r->id = id;
	r->flags = 0;
	r->kind = get_u32(p + 1);
	r->ts = vt__get_ts(p + 5);
	p += REC_HEADER;
	if (take_str(p, f, &r->from) || take_str(p + f + 1, t, &r->to) ||
	    take_str(p + f + t + 2, c, &r->cid)) {
		return -1;
	}
	r->body = (const char *)p + f + t + c + 3;
	r->body_len = b;
	return 0;
}

/* ---- counters ---- */

/* The u32 count at @key (0 when absent); LMDB errors other than absence fail. */
int vt__lmdb_count_get(MDB_txn *txn, MDB_dbi dbi, MDB_val key, uint32_t *out)
{
	MDB_val v;
	int rc = mdb_get(txn, dbi, &key, &v);

	*out = 0;
	if (rc == MDB_NOTFOUND) {
		return 0;
	}
	if (rc == 0 && v.mv_size >= 4) {
		*out = get_u32(v.mv_data);
	}
	return rc;
}

/* Set the inbox count at @key to @n; a count of 0 is deleted. */
int vt__lmdb_inbox_count_set(struct lmdb *s, MDB_txn *txn, MDB_val key, uint32_t n)
{
	uint8_t buf[4];
	MDB_val v = val(buf, sizeof(buf));
	int rc;

	if (n == 0) {
		rc = mdb_del(txn, s->icnt, &key, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	put_u32(buf, n);
	return mdb_put(txn, s->icnt, &key, &v, 0);
}

/*
 * Add @delta (+1 or -1) to the inbox count at @key; a count of 0 is
 * deleted. Read and written through one cursor: the tree is searched once.
 */
int vt__lmdb_inbox_count_add(struct lmdb *s, MDB_txn *txn, MDB_val key, int delta)
{
	uint8_t buf[4];
	MDB_cursor *cur;
	MDB_val v;
	uint32_t n = 0;
	int found, rc = mdb_cursor_open(txn, s->icnt, &cur);

	if (rc != 0) {
		return rc;
	}
	rc = mdb_cursor_get(cur, &key, &v, MDB_SET);
	found = rc == 0;
	if (found && v.mv_size >= 4) {
		n = get_u32(v.mv_data);
	}
	n = delta < 0 ? (n > 0 ? n - 1 : 0) : n + 1;
	put_u32(buf, n);
	v = val(buf, sizeof(buf));
	if (rc == 0 || rc == MDB_NOTFOUND) {
		rc = n == 0 ? (found ? mdb_cursor_del(cur, 0) : 0)
		            : mdb_cursor_put(cur, &key, &v, found ? MDB_CURRENT : 0);
	}
	mdb_cursor_close(cur);
	return rc;
}

/*
 * The time of the stored value @v of a record, at a fixed place in its
 * header; -1 when the value is not a record.
 */
static int rec_ts(const MDB_val *v, int64_t *ts)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size < REC_HEADER || p[0] != REC_VERSION) {
		return -1;
	}
	*ts = vt__get_ts(p + 5);
	return 0;
}

/* The by_time key of record @idk stored at @ts. */
static MDB_val time_key(uint8_t tk[16], const uint8_t *idk, int64_t ts)
{
	vt__put_ts(tk, ts);
	memcpy(tk + 8, idk, 8);
	return val(tk, 16);
}

/*
 * The deliveries a by_time value counts. A value of another size was not
 * written by this format; it counts one, so the record goes with the next
 * delivery removed rather than never.
 */
static uint32_t count_of(const MDB_val *v)
{
	return v->mv_size == 4 ? get_u32(v->mv_data) : 1;
}

/* Set the deliveries left of record @idk, stored at @ts, to @n. */
int vt__lmdb_rec_count_set(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, int64_t ts, uint32_t n)
{
	uint8_t tk[16], buf[4];
	MDB_val k = time_key(tk, idk, ts), v = val(buf, sizeof(buf));

	put_u32(buf, n);
	return vt__lmdb_put_last(txn, s->bytime, &k, &v, 0);
}

/*
 * The deliveries left of record @idk and its ts: the time from the record,
 * the count from its by_time entry. A record not stored has 0.
 */
int vt__lmdb_rec_count_get(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, uint32_t *n,
                           int64_t *ts)
{
	uint8_t tk[16];
	MDB_val k = val(idk, 8), v;
	int rc = mdb_get(txn, s->recs, &k, &v);

	*n = 0;
	*ts = 0;
	if (rc != 0 || rec_ts(&v, ts) != 0) {
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	k = time_key(tk, idk, *ts);
	rc = mdb_get(txn, s->bytime, &k, &v);
	if (rc == 0) {
		*n = count_of(&v);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * One delivery of record @idk is gone: count it down, and delete the record
 * with its last. Its time is *@known, or read from the record when NULL.
 * The count is read and written through one cursor, so the by_time tree is
 * searched once.
 */
int vt__lmdb_rec_release(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, const int64_t *known)
{
	uint8_t tk[16], buf[4];
	MDB_val k = val(idk, 8), v;
	MDB_cursor *cur;
	int64_t ts = known ? *known : 0;
	uint32_t n;
	int rc = known ? 0 : mdb_get(txn, s->recs, &k, &v);

	if (rc == 0 && !known && rec_ts(&v, &ts) != 0) {
		/*
		 * Damaged: no listing shows it and its by_time entry cannot be
		 * found, so it goes now; its other deliveries and that entry go
		 * with expiry.
		 */
		return vt__lmdb_del_quiet(txn, s->recs, idk, 8);
	}
	if (rc != 0) {
		/* a delivery outlived its record: nothing left to count */
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	rc = mdb_cursor_open(txn, s->bytime, &cur);
	if (rc != 0) {
		return rc;
	}
	k = time_key(tk, idk, ts);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
	n = rc == 0 ? count_of(&v) : 0;
	if (n > 1) {
		put_u32(buf, n - 1);
		v = val(buf, sizeof(buf));
		rc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
	} else if (rc == 0 || rc == MDB_NOTFOUND) {
		rc = rc == 0 ? mdb_cursor_del(cur, 0) : 0;
		if (rc == 0) {
			rc = vt__lmdb_del_quiet(txn, s->recs, idk, 8);
		}
	}
	mdb_cursor_close(cur);
	return rc;
}

int vt__lmdb_del_quiet(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen)
{
	MDB_val k = val(key, klen);
	int rc = mdb_del(txn, dbi, &k, NULL);

	return rc == MDB_NOTFOUND ? 0 : rc;
}

int vt__lmdb_put_last(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags)
{
	int rc = mdb_put(txn, dbi, k, v, flags | MDB_APPEND);

	return rc == MDB_KEYEXIST ? mdb_put(txn, dbi, k, v, flags) : rc;
}

/* Delete record @idk, stored at @ts, with its by_time entry and count. */
int vt__lmdb_rec_delete(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, int64_t ts)
{
	uint8_t tk[16];
	int rc = vt__lmdb_del_quiet(txn, s->recs, idk, 8);

	time_key(tk, idk, ts);
	return rc ? rc : vt__lmdb_del_quiet(txn, s->bytime, tk, sizeof(tk));
}

/* ---- the counts of formats 1 to 3 ---- */

/* Counts moved a transaction at most: the pages it copies stay few in a full map. */
#define COUNTS_PER_TXN 10000

/*
 * Move up to @per entries of the old tree @old (id -> u32 count, ts) into
 * by_time, counting them in *@moved; a damaged entry is dropped. *@left is
 * set while some remain; once none do, the tree is deleted.
 */
static int counts_move(struct lmdb *s, MDB_txn *txn, MDB_dbi old, size_t per, size_t *moved,
                       int *left)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, old, &cur);

	for (size_t n = 0; rc == 0 && n < per; n++) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc == 0 && k.mv_size == 8 && v.mv_size == 12) {
			const uint8_t *p = v.mv_data;

			rc = vt__lmdb_rec_count_set(s, txn, k.mv_data, vt__get_ts(p + 4),
			                            get_u32(p));
			*moved += rc == 0;
		}
		if (rc == 0) {
			rc = mdb_cursor_del(cur, 0);
		}
	}
	if (cur) {
		mdb_cursor_close(cur);
	}
	*left = rc == 0;
	if (rc == MDB_NOTFOUND) {
		rc = mdb_drop(txn, old, 1);
	}
	return rc;
}

/* One transaction of the move, of up to @per counts, committed. */
static int counts_txn(struct lmdb *s, size_t per, size_t *moved, int *left)
{
	MDB_txn *txn;
	MDB_dbi old;
	size_t n = 0;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

	if (rc != 0) {
		return rc;
	}
	rc = mdb_dbi_open(txn, "rec_count", 0, &old);
	if (rc == 0) {
		rc = counts_move(s, txn, old, per, &n, left);
	}
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
	} else {
		mdb_txn_abort(txn);
	}
	*moved += rc == 0 ? n : 0;
	return rc;
}

/*
 * Formats 1 to 3 kept each record's count in a tree of its own,
 * "rec_count". Move them into by_time, a transaction at a time so that a
 * full map has room for it: in a map too full for one, each try after
 * takes half as many, down to one a transaction. An open after a crash
 * part way through goes on where the last commit left off.
 */
int vt__lmdb_counts_upgrade(struct lmdb *s)
{
	size_t moved = 0, per = COUNTS_PER_TXN;
	int left = 1, rc = 0;

	while (rc == 0 && left) {
		rc = counts_txn(s, per, &moved, &left);
		if (rc == MDB_MAP_FULL && per > 1) {
			per /= 2;
			left = 1;
			rc = 0;
		}
	}
	if (rc == MDB_NOTFOUND) {
		rc = 0; /* no such tree: nothing to move */
	}
	if (moved > 0 && rc == 0) {
		vt_log(VT_LOG_INFO, "lmdb: %zu record counts moved into by_time", moved);
	}
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "lmdb: moving the record counts into by_time failed: %s%s",
		       mdb_strerror(rc),
		       rc == MDB_MAP_FULL ? " (open it once with a larger map)" : "");
	}
	return rc;
}
