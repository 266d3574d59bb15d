/*
 * store_lmdb_rec.c - stored records: their encoding, the count of
 * deliveries each has left, and their removal.
 */
#include <errno.h>
#include <lmdb.h>
#include <string.h>

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

/* Add @delta to the inbox count at @key; a count of 0 is deleted. */
int vt__lmdb_inbox_count_add(struct lmdb *s, MDB_txn *txn, MDB_val key, int delta)
{
	uint32_t n;
	int rc = vt__lmdb_count_get(txn, s->icnt, key, &n);

	if (rc != 0) {
		return rc;
	}
	return vt__lmdb_inbox_count_set(s, txn, key, delta < 0 ? (n > 0 ? n - 1 : 0) : n + 1);
}

/* The deliveries left of record @idk and its ts; absent means 0. */
int vt__lmdb_rcnt_get(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, uint32_t *n, int64_t *ts)
{
	MDB_val k = val(idk, 8), v;
	int rc = mdb_get(txn, s->rcnt, &k, &v);

	*n = 0;
	*ts = 0;
	if (rc == MDB_NOTFOUND) {
		return 0;
	}
	if (rc == 0 && v.mv_size == 12) {
		*n = get_u32(v.mv_data);
		*ts = vt__get_ts((const uint8_t *)v.mv_data + 4);
	}
	return rc;
}

int vt__lmdb_rcnt_put(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, uint32_t n, int64_t ts)
{
	uint8_t buf[12];
	MDB_val k = val(idk, 8), v = val(buf, sizeof(buf));

	put_u32(buf, n);
	vt__put_ts(buf + 4, ts);
	return mdb_put(txn, s->rcnt, &k, &v, 0);
}

int vt__lmdb_del_quiet(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen)
{
	MDB_val k = val(key, klen);
	int rc = mdb_del(txn, dbi, &k, NULL);

	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Delete record @idk with its count and time index entry. */
int vt__lmdb_rec_delete(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, int64_t ts)
{
	uint8_t tk[16];
	int rc;

	vt__put_ts(tk, ts);
	memcpy(tk + 8, idk, 8);
	rc = vt__lmdb_del_quiet(txn, s->recs, idk, 8);
	if (rc == 0) {
		rc = vt__lmdb_del_quiet(txn, s->rcnt, idk, 8);
	}
	if (rc == 0) {
		rc = vt__lmdb_del_quiet(txn, s->bytime, tk, sizeof(tk));
	}
	return rc;
}
