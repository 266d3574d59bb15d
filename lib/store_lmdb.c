/*
 * store_lmdb.c - the durable storage backend, on LMDB.
 *
 * One environment in the configured directory, with these named databases
 * (BE = big-endian, IK = inbox key of store_key.h, DK = dedup key):
 *
 *   records      id BE                 -> record in the format below
 *   deliveries   IK + id BE            -> (empty)  lists an inbox in order
 *   by_record    id BE + IK            -> (empty)  the inboxes of a record
 *   rec_count    id BE                 -> u32 deliveries left, ts (8 bytes)
 *   by_time      ts + id BE            -> (empty)  expiry, oldest first
 *   dedup        DK                    -> id BE, ts
 *   dedup_time   ts + DK               -> id BE    dedup expiry, oldest first
 *   inbox_count  IK                    -> u32 deliveries in the inbox
 *   meta         "max_id", "format"    -> u64 BE
 *
 * Times are stored with vt__put_ts so byte order is time order. A commit is
 * one write transaction: any LMDB error aborts it, so a batch is written
 * whole or not at all. Callbacks run before the call returns.
 *
 * Headroom. LMDB copies pages on write, so even a delete needs free pages:
 * a map filled to the last page could not take the acks that would empty
 * it. A batch that stores anything is therefore refused (VT_ENOSPC) once
 * the live pages would pass the map size less a reserve; acks and expiry
 * may use the reserve.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "store_key.h"

#define DEFAULT_MAP_SIZE ((uint64_t)1 << 30)
#define MIN_MAP_SIZE     ((uint64_t)256 << 10)
#define DEFAULT_DEDUP_MS ((int64_t)7 * 24 * 3600 * 1000)

/* LMDB's own databases: its free-page list and the table of named ones. */
#define FREE_DBI 0
#define MAIN_DBI 1

/* Version of the record encoding and of the database layout. */
#define REC_VERSION    1
#define FORMAT_VERSION 1

/* version u8, kind u32, ts 8, four u32 lengths (from, to, cid, body) */
#define REC_HEADER 29

struct lmdb {
	MDB_env *env;
	MDB_dbi recs, dlv, byrec, rcnt, bytime, dedup, dtime, icnt, meta;
	int64_t window;
	size_t page_limit; /* live pages a batch that stores may leave */
};

/* ---- small helpers ---- */

static MDB_val val(const void *p, size_t n)
{
	MDB_val v = {n, (void *)p};

	return v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Map an LMDB failure of a write to the error a caller sees. */
static int write_error(int rc, const char *what)
{
	if (rc == MDB_MAP_FULL || rc == ENOSPC) {
		vt_log(VT_LOG_WARN, "lmdb: %s: storage full (%s)", what, mdb_strerror(rc));
		return VT_ENOSPC;
	}
	vt_log(VT_LOG_ERROR, "lmdb: %s failed: %s", what, mdb_strerror(rc));
	return VT_ESTORAGE;
}

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
static size_t rec_size(const struct vt_record *r)
{
	size_t f = str_len(r->from), t = str_len(r->to), c = str_len(r->cid);

	if (f > UINT32_MAX || t > UINT32_MAX || c > UINT32_MAX || r->body_len > UINT32_MAX) {
		return 0;
	}
	return REC_HEADER + f + t + c + 3 + r->body_len;
}

/* Write @r into @p, rec_size(r) bytes. Strings keep their NUL. */
static void rec_encode(const struct vt_record *r, uint8_t *p)
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
static int rec_decode(const MDB_val *v, uint64_t id, struct vt_record *r)
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
static int count_get(MDB_txn *txn, MDB_dbi dbi, MDB_val key, uint32_t *out)
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

/* Add @delta to the inbox count at @key; a count of 0 is deleted. */
static int inbox_count_add(struct lmdb *s, MDB_txn *txn, MDB_val key, int delta)
{
	uint32_t n;
	uint8_t buf[4];
	MDB_val v = val(buf, sizeof(buf));
	int rc = count_get(txn, s->icnt, key, &n);

	if (rc != 0) {
		return rc;
	}
	n = delta < 0 ? (n > 0 ? n - 1 : 0) : n + 1;
	if (n == 0) {
		rc = mdb_del(txn, s->icnt, &key, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	put_u32(buf, n);
	return mdb_put(txn, s->icnt, &key, &v, 0);
}

/* The deliveries left of record @idk and its ts; absent means 0. */
static int rcnt_get(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, uint32_t *n, int64_t *ts)
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

static int rcnt_put(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, uint32_t n, int64_t ts)
{
	uint8_t buf[12];
	MDB_val k = val(idk, 8), v = val(buf, sizeof(buf));

	put_u32(buf, n);
	vt__put_ts(buf + 4, ts);
	return mdb_put(txn, s->rcnt, &k, &v, 0);
}

static int del_quiet(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen)
{
	MDB_val k = val(key, klen);
	int rc = mdb_del(txn, dbi, &k, NULL);

	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Delete record @idk with its count and time index entry. */
static int rec_delete(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, int64_t ts)
{
	uint8_t tk[16];
	int rc;

	vt__put_ts(tk, ts);
	memcpy(tk + 8, idk, 8);
	rc = del_quiet(txn, s->recs, idk, 8);
	if (rc == 0) {
		rc = del_quiet(txn, s->rcnt, idk, 8);
	}
	if (rc == 0) {
		rc = del_quiet(txn, s->bytime, tk, sizeof(tk));
	}
	return rc;
}

/* ---- deliveries ---- */

/*
 * Remove the delivery (inbox @ik, @id) and update both counts; the record
 * goes with its last delivery. MDB_NOTFOUND when there is no such delivery.
 */
static int dlv_remove(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id)
{
	uint8_t dk[VT__INBOX_KEY_MAX + 8], rk[VT__INBOX_KEY_MAX + 8];
	MDB_val k = val(dk, iklen + 8);
	uint32_t n;
	int64_t ts;
	int rc;

	memcpy(dk, ik, iklen);
	vt__put_be64(dk + iklen, id);
	rc = mdb_del(txn, s->dlv, &k, NULL);
	if (rc != 0) {
		return rc;
	}
	vt__put_be64(rk, id);
	memcpy(rk + 8, ik, iklen);
	rc = del_quiet(txn, s->byrec, rk, iklen + 8);
	if (rc == 0) {
		rc = inbox_count_add(s, txn, val(ik, iklen), -1);
	}
	if (rc == 0) {
		rc = rcnt_get(s, txn, rk, &n, &ts);
	}
	if (rc != 0) {
		return rc;
	}
	return n > 1 ? rcnt_put(s, txn, rk, n - 1, ts) : rec_delete(s, txn, rk, ts);
}

static int dlv_exists(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                      int *exists)
{
	uint8_t dk[VT__INBOX_KEY_MAX + 8];
	MDB_val k = val(dk, iklen + 8), v;
	int rc;

	memcpy(dk, ik, iklen);
	vt__put_be64(dk + iklen, id);
	rc = mdb_get(txn, s->dlv, &k, &v);
	*exists = rc == 0;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Add the delivery (inbox @ik, @id), known to be absent, to both indexes. */
static int dlv_add(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id)
{
	uint8_t dk[VT__INBOX_KEY_MAX + 8], rk[VT__INBOX_KEY_MAX + 8];
	MDB_val k = val(dk, iklen + 8), empty = val("", 0);
	int rc;

	memcpy(dk, ik, iklen);
	vt__put_be64(dk + iklen, id);
	vt__put_be64(rk, id);
	memcpy(rk + 8, ik, iklen);
	rc = mdb_put(txn, s->dlv, &k, &empty, 0);
	if (rc == 0) {
		k = val(rk, iklen + 8);
		rc = mdb_put(txn, s->byrec, &k, &empty, 0);
	}
	if (rc == 0) {
		rc = inbox_count_add(s, txn, val(ik, iklen), +1);
	}
	return rc;
}

/* ---- PUT ---- */

static int put_valid(const struct vt_op *op)
{
	uint8_t ik[VT__INBOX_KEY_MAX];

	if (!op->rec || op->rec->id == 0 || (op->nto > 0 && !op->to)) {
		return 0;
	}
	if ((op->rec->body_len > 0 && !op->rec->body) || rec_size(op->rec) == 0) {
		return 0;
	}
	for (uint32_t i = 0; i < op->nto; i++) {
		if (vt__inbox_key(&op->to[i], ik) == 0) {
			return 0;
		}
	}
	return 1;
}

/* Set op->dup_of when (from, cid) names another record inside the window. */
static int put_dedup_check(struct lmdb *s, MDB_txn *txn, struct vt_op *op)
{
	uint8_t dk[VT__DEDUP_KEY_MAX];
	size_t dklen = op->dedup ? vt__dedup_key(op->rec, dk) : 0;
	MDB_val k = val(dk, dklen), v;
	uint64_t id;
	int rc;

	if (dklen == 0 || op->rec->cid[0] == 0) {
		return 0;
	}
	rc = mdb_get(txn, s->dedup, &k, &v);
	if (rc != 0 || v.mv_size != 16) {
		return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
	}
	id = vt__get_be64(v.mv_data);
	if (id != op->rec->id &&
	    vt__within_window(op->rec->ts, vt__get_ts((const uint8_t *)v.mv_data + 8), s->window)) {
		op->dup_of = id;
	}
	return 0;
}

/* Remember (from, cid) -> (id, ts) and index it by time for the sweep. */
static int put_dedup_record(struct lmdb *s, MDB_txn *txn, const struct vt_op *op)
{
	uint8_t dk[VT__DEDUP_KEY_MAX], tk[8 + VT__DEDUP_KEY_MAX], v16[16];
	size_t dklen = op->dedup ? vt__dedup_key(op->rec, dk) : 0;
	MDB_val k = val(dk, dklen), v = val(v16, 16);
	int rc;

	if (dklen == 0 || op->rec->cid[0] == 0) {
		return 0;
	}
	vt__put_be64(v16, op->rec->id);
	vt__put_ts(v16 + 8, op->rec->ts);
	rc = mdb_put(txn, s->dedup, &k, &v, 0);
	if (rc != 0) {
		return rc;
	}
	vt__put_ts(tk, op->rec->ts);
	memcpy(tk + 8, dk, dklen);
	k = val(tk, dklen + 8);
	v = val(v16, 8);
	return mdb_put(txn, s->dtime, &k, &v, 0);
}

/* Nonzero (in *full) when an inbox that needs a new delivery is at the cap. */
static int put_cap_check(struct lmdb *s, MDB_txn *txn, const struct vt_op *op, int *full)
{
	uint8_t ik[VT__INBOX_KEY_MAX];
	int rc = 0;

	*full = 0;
	for (uint32_t i = 0; op->inbox_cap && i < op->nto && rc == 0 && !*full; i++) {
		size_t iklen = vt__inbox_key(&op->to[i], ik);
		uint32_t n;
		int exists;

		rc = dlv_exists(s, txn, ik, iklen, op->rec->id, &exists);
		if (rc == 0 && !exists) {
			rc = count_get(txn, s->icnt, val(ik, iklen), &n);
			*full = rc == 0 && n >= op->inbox_cap;
		}
	}
	return rc;
}

/* Store the record itself and its time index entry. */
static int rec_store(struct lmdb *s, MDB_txn *txn, const struct vt_record *r, const uint8_t *idk)
{
	uint8_t tk[16];
	MDB_val k = val(idk, 8), v = {rec_size(r), NULL}, empty = val("", 0);
	int rc = mdb_put(txn, s->recs, &k, &v, MDB_RESERVE);

	if (rc != 0) {
		return rc;
	}
	rec_encode(r, v.mv_data);
	vt__put_ts(tk, r->ts);
	memcpy(tk + 8, idk, 8);
	k = val(tk, sizeof(tk));
	return mdb_put(txn, s->bytime, &k, &empty, 0);
}

/* Add the deliveries of @op that do not exist yet, storing the record if new. */
static int put_deliveries(struct lmdb *s, MDB_txn *txn, const struct vt_op *op)
{
	uint8_t ik[VT__INBOX_KEY_MAX], idk[8];
	uint32_t n;
	int64_t ts;
	uint32_t added = 0;
	int rc;

	vt__put_be64(idk, op->rec->id);
	rc = rcnt_get(s, txn, idk, &n, &ts);
	for (uint32_t i = 0; i < op->nto && rc == 0; i++) {
		size_t iklen = vt__inbox_key(&op->to[i], ik);
		int exists;

		rc = dlv_exists(s, txn, ik, iklen, op->rec->id, &exists);
		if (rc == 0 && !exists) {
			rc = dlv_add(s, txn, ik, iklen, op->rec->id);
			added++;
		}
	}
	if (rc != 0 || added == 0) {
		return rc;
	}
	if (n == 0) {
		ts = op->rec->ts;
		rc = rec_store(s, txn, op->rec, idk);
	}
	return rc ? rc : rcnt_put(s, txn, idk, n + added, ts);
}

static int max_id_get(struct lmdb *s, MDB_txn *txn, uint64_t *out)
{
	MDB_val k = val("max_id", 6), v;
	int rc = mdb_get(txn, s->meta, &k, &v);

	*out = 0;
	if (rc == 0 && v.mv_size == 8) {
		*out = vt__get_be64(v.mv_data);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int max_id_raise(struct lmdb *s, MDB_txn *txn, uint64_t id)
{
	uint8_t buf[8];
	MDB_val k = val("max_id", 6), v = val(buf, 8);
	uint64_t cur;
	int rc = max_id_get(s, txn, &cur);

	if (rc != 0 || id <= cur) {
		return rc;
	}
	vt__put_be64(buf, id);
	return mdb_put(txn, s->meta, &k, &v, 0);
}

/* Apply one PUT. Returns an LMDB error (the batch then aborts) or 0. */
static int apply_put(struct lmdb *s, MDB_txn *txn, struct vt_op *op)
{
	int full, rc;

	if (!put_valid(op)) {
		op->status = VT_EINVAL;
		return 0;
	}
	rc = put_dedup_check(s, txn, op);
	if (rc != 0 || op->dup_of) {
		return rc;
	}
	rc = put_cap_check(s, txn, op, &full);
	if (rc != 0 || full) {
		op->status = full ? VT_EINBOXFULL : 0;
		return rc;
	}
	rc = put_deliveries(s, txn, op);
	if (rc == 0) {
		rc = put_dedup_record(s, txn, op);
	}
	return rc ? rc : max_id_raise(s, txn, op->rec->id);
}

/* Report what record @id was, before its last delivery may delete it. */
static int ack_report(struct lmdb *s, MDB_txn *txn, struct vt_op *op)
{
	uint8_t idk[8];
	MDB_val k = val(idk, 8), v;
	struct vt_record r;
	int rc;

	vt__put_be64(idk, op->id);
	rc = mdb_get(txn, s->recs, &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && rec_decode(&v, op->id, &r) != 0)) {
		vt_log(VT_LOG_WARN, "lmdb: acked record id=%llu is %s", (unsigned long long)op->id,
		       rc ? "missing" : "damaged");
		return 0;
	}
	if (rc == 0) {
		vt__ack_report(op, &r);
	}
	return rc;
}

static int apply_ack(struct lmdb *s, MDB_txn *txn, struct vt_op *op)
{
	uint8_t ik[VT__INBOX_KEY_MAX];
	size_t iklen = vt__inbox_key(&op->inbox, ik);
	int exists, rc;

	if (iklen == 0) {
		op->status = VT_EUNKNOWNID;
		return 0;
	}
	rc = dlv_exists(s, txn, ik, iklen, op->id, &exists);
	if (rc == 0 && !exists) {
		op->status = VT_EUNKNOWNID;
		return 0;
	}
	if (rc == 0) {
		rc = ack_report(s, txn, op);
	}
	return rc ? rc : dlv_remove(s, txn, ik, iklen, op->id);
}

static int apply_ops(struct lmdb *s, MDB_txn *txn, struct vt_op *ops, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		vt__op_reset(&ops[i]);
		if (ops[i].kind == VT_OP_PUT) {
			rc = apply_put(s, txn, &ops[i]);
		} else if (ops[i].kind == VT_OP_ACK) {
			rc = apply_ack(s, txn, &ops[i]);
		} else {
			ops[i].status = VT_EINVAL;
		}
	}
	return rc;
}

/* Pages held by every tree, as @txn sees them (its own writes included). */
static int pages_used(struct lmdb *s, MDB_txn *txn, size_t *out)
{
	const MDB_dbi all[] = {FREE_DBI,  MAIN_DBI, s->recs,  s->dlv,  s->byrec, s->rcnt,
	                       s->bytime, s->dedup, s->dtime, s->icnt, s->meta};
	MDB_stat st;
	size_t n = 2; /* the two meta pages */

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		int rc = mdb_stat(txn, all[i], &st);

		if (rc != 0) {
			return rc;
		}
		n += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
	}
	*out = n;
	return 0;
}

/* Nonzero when some PUT of the batch wrote something. */
static int batch_stores(const struct vt_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ops[i].kind == VT_OP_PUT && ops[i].status == 0 && !ops[i].dup_of) {
			return 1;
		}
	}
	return 0;
}

/* MDB_MAP_FULL when a storing batch would eat into the reserve. */
static int check_headroom(struct lmdb *s, MDB_txn *txn, const struct vt_op *ops, size_t n)
{
	size_t used;
	int rc;

	if (!batch_stores(ops, n)) {
		return 0;
	}
	rc = pages_used(s, txn, &used);
	return rc ? rc : (used > s->page_limit ? MDB_MAP_FULL : 0);
}

static void lmdb_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	struct lmdb *s = self;
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

	if (rc != 0) {
		done(arg, write_error(rc, "begin"));
		return;
	}
	rc = apply_ops(s, txn, ops, n);
	if (rc == 0) {
		rc = check_headroom(s, txn, ops, n);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		done(arg, write_error(rc, "commit"));
		return;
	}
	rc = mdb_txn_commit(txn);
	done(arg, rc ? write_error(rc, "commit") : 0);
}

/* ---- list ---- */

struct listing {
	struct vt_record *recs;
	size_t n, cap;
};

static int listing_push(struct listing *l, const struct vt_record *r)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct vt_record *v = realloc(l->recs, cap * sizeof(*v));

		if (!v) {
			return VT_ENOMEM;
		}
		l->recs = v;
		l->cap = cap;
	}
	l->recs[l->n++] = *r;
	return 0;
}

/*
 * Fetch and decode record @id into the listing. A missing or damaged record
 * is logged and left out. Returns an LMDB error, or 0 with *err set to a
 * vt_error when the listing could not grow.
 */
static int list_one(struct lmdb *s, MDB_txn *txn, uint64_t id, struct listing *l, int *err)
{
	uint8_t idk[8];
	MDB_val k = val(idk, 8), v;
	struct vt_record r;
	int rc;

	vt__put_be64(idk, id);
	rc = mdb_get(txn, s->recs, &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && rec_decode(&v, id, &r) != 0)) {
		vt_log(VT_LOG_WARN, "lmdb: record id=%llu is %s; skipped", (unsigned long long)id,
		       rc ? "missing" : "damaged");
		return 0;
	}
	if (rc == 0) {
		*err = listing_push(l, &r);
	}
	return rc;
}

/* Collect up to @limit records of inbox @ik after @after; a vt_error or 0. */
static int list_scan(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t after,
                     uint32_t limit, struct listing *l)
{
	uint8_t dk[VT__INBOX_KEY_MAX + 8];
	MDB_val k = val(dk, iklen + 8), v;
	MDB_cursor *cur;
	int err = 0, rc = mdb_cursor_open(txn, s->dlv, &cur);

	if (rc != 0) {
		return VT_ESTORAGE;
	}
	memcpy(dk, ik, iklen);
	vt__put_be64(dk + iklen, after + 1);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && err == 0 && l->n < limit) {
		if (k.mv_size != iklen + 8 || memcmp(k.mv_data, ik, iklen) != 0) {
			break;
		}
		rc = list_one(s, txn, vt__get_be64((const uint8_t *)k.mv_data + iklen), l, &err);
		if (rc == 0 && err == 0) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		vt_log(VT_LOG_ERROR, "lmdb: list: %s", mdb_strerror(rc));
		return VT_ESTORAGE;
	}
	return err;
}

static void lmdb_list(void *self, const struct vt_inbox *inbox, uint64_t after, uint32_t limit,
                      vt_list_cb done, void *arg)
{
	struct lmdb *s = self;
	uint8_t ik[VT__INBOX_KEY_MAX];
	size_t iklen = vt__inbox_key(inbox, ik);
	struct listing l = {NULL, 0, 0};
	MDB_txn *txn;
	int rc;

	if (iklen == 0 || after == UINT64_MAX || limit == 0) {
		done(arg, 0, NULL, 0);
		return;
	}
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "lmdb: list: %s", mdb_strerror(rc));
		done(arg, VT_ESTORAGE, NULL, 0);
		return;
	}
	rc = list_scan(s, txn, ik, iklen, after, limit, &l);
	/* The records point into the map: call back before the txn ends. */
	if (rc != 0) {
		done(arg, rc, NULL, 0);
	} else {
		done(arg, 0, l.recs, l.n);
	}
	mdb_txn_abort(txn);
	free(l.recs);
}

/* ---- expire ---- */

/*
 * Remove deliveries of record @idk until *removed reaches @budget; when none
 * are left, the record and its index entries go too.
 */
static int expire_record(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, int64_t ts,
                         uint64_t budget, uint64_t *removed)
{
	uint8_t ik[VT__INBOX_KEY_MAX];
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, s->byrec, &cur);

	while (rc == 0 && *removed < budget) {
		size_t iklen;

		k = val(idk, 8);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 || k.mv_size <= 8 || k.mv_size > 8 + sizeof(ik) ||
		    memcmp(k.mv_data, idk, 8) != 0) {
			/* no deliveries left: drop what remains of the record */
			rc = rc == 0 || rc == MDB_NOTFOUND ? rec_delete(s, txn, idk, ts) : rc;
			break;
		}
		iklen = k.mv_size - 8;
		memcpy(ik, (const uint8_t *)k.mv_data + 8, iklen);
		rc = dlv_remove(s, txn, ik, iklen, vt__get_be64(idk));
		if (rc == MDB_NOTFOUND) {
			/* an index entry without its delivery: repair and go on */
			rc = mdb_cursor_del(cur, 0);
			continue;
		}
		(*removed)++;
	}
	if (cur) {
		mdb_cursor_close(cur);
	}
	return rc;
}

static int expire_deliveries(struct lmdb *s, MDB_txn *txn, int64_t before_ts, uint64_t max,
                             uint64_t *removed)
{
	uint8_t tk[16];
	MDB_val k, v;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, s->bytime, &cur);

	if (rc != 0) {
		return rc;
	}
	while (rc == 0 && *removed < max) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc == 0 && k.mv_size != 16) {
			vt_log(VT_LOG_WARN, "lmdb: by_time key of %zu bytes; dropped", k.mv_size);
			rc = mdb_cursor_del(cur, 0);
			continue;
		}
		if (rc != 0 || vt__get_ts(k.mv_data) >= before_ts) {
			break;
		}
		memcpy(tk, k.mv_data, 16);
		rc = expire_record(s, txn, tk + 8, vt__get_ts(tk), max, removed);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Forget dedup entries older than the window, oldest first, at most @max. */
static int expire_dedup(struct lmdb *s, MDB_txn *txn, int64_t now_ts, uint64_t max)
{
	uint8_t tk[8 + VT__DEDUP_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v, dv;
	uint64_t n = 0;
	int rc = mdb_cursor_open(txn, s->dtime, &cur);

	while (rc == 0 && n++ < max) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc != 0 || k.mv_size < 8 || k.mv_size > sizeof(tk) || v.mv_size != 8 ||
		    vt__within_window(now_ts, vt__get_ts(k.mv_data), s->window)) {
			break;
		}
		memcpy(tk, k.mv_data, k.mv_size);
		k = val(tk + 8, k.mv_size - 8);
		/* only if the entry was not replaced by a newer record since */
		rc = mdb_get(txn, s->dedup, &k, &dv);
		if (rc == 0 && dv.mv_size == 16 && memcmp(dv.mv_data, v.mv_data, 8) == 0) {
			rc = mdb_del(txn, s->dedup, &k, NULL);
		}
		rc = rc == MDB_NOTFOUND || rc == 0 ? mdb_cursor_del(cur, 0) : rc;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* One expiry transaction; an LMDB error, after which nothing was removed. */
static int expire_txn(struct lmdb *s, int64_t now_ts, int64_t before_ts, uint64_t max,
                      uint64_t *removed)
{
	MDB_txn *txn = NULL;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

	*removed = 0;
	if (rc == 0) {
		rc = expire_deliveries(s, txn, before_ts, max, removed);
	}
	if (rc == 0) {
		rc = expire_dedup(s, txn, now_ts, max);
	}
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
	} else if (txn) {
		mdb_txn_abort(txn);
	}
	if (rc != 0) {
		*removed = 0;
	}
	return rc;
}

/*
 * Expiry need not be one transaction: when a large sweep does not fit the
 * free pages, a smaller one still frees space, so halve it and try again.
 */
static void lmdb_expire(void *self, int64_t now_ts, int64_t before_ts, uint64_t max,
                        vt_expire_cb done, void *arg)
{
	struct lmdb *s = self;
	uint64_t removed;
	int rc = expire_txn(s, now_ts, before_ts, max, &removed);

	while (rc == MDB_MAP_FULL && max > 1) {
		max /= 2;
		rc = expire_txn(s, now_ts, before_ts, max, &removed);
	}
	if (rc != 0) {
		done(arg, write_error(rc, "expire"), 0);
		return;
	}
	done(arg, 0, removed);
}

/* ---- lifetime ---- */

static uint64_t lmdb_max_id(void *self)
{
	struct lmdb *s = self;
	uint64_t id = 0;
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);

	if (rc == 0) {
		rc = max_id_get(s, txn, &id);
		mdb_txn_abort(txn);
	}
	if (rc != 0) {
		/* The vtable has no error path here; ids may repeat, so say it loudly. */
		vt_log(VT_LOG_ERROR, "lmdb: cannot read max_id: %s", mdb_strerror(rc));
	}
	return id;
}

static void lmdb_destroy(void *self)
{
	struct lmdb *s = self;

	if (!s) {
		return;
	}
	mdb_env_close(s->env);
	free(s);
}

static const struct vt_storage_ops lmdb_ops = {
        .commit = lmdb_commit,
        .list = lmdb_list,
        .expire = lmdb_expire,
        .max_id = lmdb_max_id,
        .destroy = lmdb_destroy,
};

/* Record the layout version in a new store; refuse a store of another one. */
static int check_format(struct lmdb *s, MDB_txn *txn)
{
	uint8_t buf[8];
	MDB_val k = val("format", 6), v;
	int rc = mdb_get(txn, s->meta, &k, &v);

	if (rc == MDB_NOTFOUND) {
		vt__put_be64(buf, FORMAT_VERSION);
		v = val(buf, 8);
		return mdb_put(txn, s->meta, &k, &v, 0);
	}
	if (rc == 0 && (v.mv_size != 8 || vt__get_be64(v.mv_data) != FORMAT_VERSION)) {
		vt_log(VT_LOG_ERROR, "lmdb: unknown storage format");
		return MDB_INCOMPATIBLE;
	}
	return rc;
}

static int open_dbs(struct lmdb *s)
{
	struct {
		const char *name;
		MDB_dbi *dbi;
	} t[] = {
	        {"records", &s->recs},     {"deliveries", &s->dlv},   {"by_record", &s->byrec},
	        {"rec_count", &s->rcnt},   {"by_time", &s->bytime},   {"dedup", &s->dedup},
	        {"dedup_time", &s->dtime}, {"inbox_count", &s->icnt}, {"meta", &s->meta},
	};
	MDB_txn *txn = NULL;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

	for (size_t i = 0; rc == 0 && i < sizeof(t) / sizeof(t[0]); i++) {
		rc = mdb_dbi_open(txn, t[i].name, MDB_CREATE, t[i].dbi);
	}
	if (rc == 0) {
		rc = check_format(s, txn);
	}
	if (rc == 0) {
		return mdb_txn_commit(txn);
	}
	if (txn) {
		mdb_txn_abort(txn);
	}
	return rc;
}

static int open_env(struct lmdb *s, const struct vt_lmdb_options *o)
{
	uint64_t map = o->map_size ? o->map_size : DEFAULT_MAP_SIZE;
	unsigned flags = MDB_NOTLS | (o->no_sync ? MDB_NOSYNC : 0);
	int dead, rc = mdb_env_create(&s->env);

	if (rc == 0) {
		rc = mdb_env_set_maxdbs(s->env, 16);
	}
	if (rc == 0) {
		rc = mdb_env_set_mapsize(s->env, (size_t)map);
	}
	if (rc == 0) {
		rc = mdb_env_open(s->env, o->path, flags, 0600);
	}
	if (rc == 0) {
		/* slots of readers that died with a crashed process */
		rc = mdb_reader_check(s->env, &dead);
	}
	return rc == 0 ? open_dbs(s) : rc;
}

/*
 * The reserve is a sixteenth of the map, and at least enough pages for an
 * ack to copy a path in each tree and save the free list.
 */
static int set_page_limit(struct lmdb *s)
{
	MDB_envinfo info;
	MDB_stat st;
	size_t pages, reserve;
	int rc = mdb_env_info(s->env, &info);

	if (rc == 0) {
		rc = mdb_env_stat(s->env, &st);
	}
	if (rc != 0) {
		return rc;
	}
	pages = info.me_mapsize / st.ms_psize;
	reserve = pages / 16 > 24 ? pages / 16 : 24;
	s->page_limit = pages > reserve ? pages - reserve : 0;
	return 0;
}

static int make_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0 ||
	    (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
		return 0;
	}
	vt_log(VT_LOG_ERROR, "lmdb: cannot create directory %s: %s", path, strerror(errno));
	return VT_EIO;
}

int vt_storage_lmdb_open(const struct vt_lmdb_options *opts, struct vt_storage *out)
{
	struct lmdb *s;
	int rc;

	if (!opts || !opts->path || !opts->path[0] || !out || opts->dedup_window_ms < 0 ||
	    (opts->map_size && opts->map_size < MIN_MAP_SIZE) || opts->map_size > SIZE_MAX) {
		return VT_EINVAL;
	}
	if (make_dir(opts->path) != 0) {
		return VT_EIO;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		return VT_ENOMEM;
	}
	s->window = opts->dedup_window_ms ? opts->dedup_window_ms : DEFAULT_DEDUP_MS;
	rc = open_env(s, opts);
	if (rc == 0) {
		rc = set_page_limit(s);
	}
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "lmdb: cannot open %s: %s", opts->path, mdb_strerror(rc));
		mdb_env_close(s->env);
		free(s);
		return VT_EIO;
	}
	out->ops = &lmdb_ops;
	out->self = s;
	return 0;
}
