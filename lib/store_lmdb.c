/*
 * store_lmdb.c - the durable storage backend, on LMDB.
 *
 * One environment in the configured directory, with these named databases
 * (BE = big-endian, IK = inbox key of store_key.h, DK = dedup key):
 *
 *   records      id BE                 -> record in the format below
 *   deliveries   IK + id BE            -> u32 flags, or empty for 0; lists an
 *                                         inbox in order
 *   by_record    id BE + IK            -> (empty)  the inboxes of a record
 *   rec_count    id BE                 -> u32 deliveries left, ts (8 bytes)
 *   by_time      ts + id BE            -> (empty)  expiry, oldest first
 *   dedup        DK                    -> id BE, ts
 *   dedup_time   ts + DK               -> id BE    dedup expiry, oldest first
 *   inbox_count  IK                    -> u32 deliveries in the inbox
 *   meta         "max_id", "format"    -> u64 BE
 *   devices      IK                    -> ts last seen; the IKs of one user
 *                                         share their first bytes, so a user's
 *                                         devices are one cursor range
 *   device_time  ts + IK               -> (empty)  device expiry, oldest first
 *   groups       group id              -> the group's state blob
 *
 * Times are stored with vt__put_ts so byte order is time order. A commit is
 * one write transaction: any LMDB error aborts it, so a batch is written
 * whole or not at all. Callbacks run before the call returns.
 *
 * Headroom. LMDB copies pages on write, so even a delete needs free pages:
 * a map filled to the last page could not take the acks that would empty
 * it. What would grow the store is therefore refused (VT_ENOSPC, op by op)
 * once the live pages would pass the map size less a reserve; acks, expiry
 * and a user's first device may use the reserve. The same holds for the
 * disk: the data file's blocks are reserved ahead of use (fallocate), and
 * when the disk has no more, the store is held at what it has, so the
 * pages an ack copies into always have blocks under them.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "store_key.h"
#include "store_targets.h"

#define DEFAULT_MAP_SIZE ((uint64_t)1 << 30)
#define MIN_MAP_SIZE     ((uint64_t)1 << 20)
#define DEFAULT_DEDUP_MS ((int64_t)7 * 24 * 3600 * 1000)

/*
 * The smallest reserve, in pages. Measured on a full 1 MB map: a batch of
 * 100 acks of one inbox, in id order as a client acks what it listed, needs
 * about 40 pages across the trees and the free list; a single ack anywhere
 * needs fewer. The minimum map keeps three quarters of itself for data.
 */
#define RESERVE_FLOOR 64

/* LMDB's own databases: its free-page list and the table of named ones. */
#define FREE_DBI 0
#define MAIN_DBI 1

/*
 * Version of the record encoding and of the database layout. Format 2 added
 * devices, device_time, groups and delivery flags.
 */
#define REC_VERSION    1
#define FORMAT_VERSION 2

/* version u8, kind u32, ts 8, four u32 lengths (from, to, cid, body) */
#define REC_HEADER 29

struct lmdb {
	MDB_env *env;
	MDB_dbi recs, dlv, byrec, rcnt, bytime, dedup, dtime, icnt, meta;
	MDB_dbi devs, devtime, groups;
	struct vt__tset targets; /* scratch of a PUT, kept for the next one */
	int64_t window;
	size_t psize;       /* bytes per page */
	size_t map_pages;   /* pages the map holds */
	size_t map_limit;   /* live pages a batch that stores may leave in the map */
	size_t floor;       /* the smallest reserve, in pages */
	size_t chunk;       /* pages the data file is reserved ahead, at a time */
	size_t alloc_pages; /* pages of the data file known to have disk blocks */
	int fd;             /* the data file */
	int fd_ok;          /* the file system can reserve blocks (fallocate) */
	int disk_full;      /* the last reservation fell short */
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
	if (rc == ENOMEM) {
		vt_log(VT_LOG_ERROR, "lmdb: %s: out of memory", what);
		return VT_ENOMEM;
	}
	if (rc == MDB_MAP_FULL || rc == ENOSPC) {
		vt_log(VT_LOG_WARN, "lmdb: %s: storage full (%s)", what, mdb_strerror(rc));
		return VT_ENOSPC;
	}
	vt_log(VT_LOG_ERROR, "lmdb: %s failed: %s", what, mdb_strerror(rc));
	return VT_ESTORAGE;
}

/* ---- disk space ---- */

/*
 * Give the data file disk blocks for its first @pages pages. A file system
 * that cannot is logged once and no longer asked: the store then runs as
 * before, limited by the map alone. Returns 0 or an errno.
 */
static int file_alloc(struct lmdb *s, size_t pages)
{
	int rc = posix_fallocate(s->fd, 0, (off_t)(pages * s->psize));

	if (rc == 0) {
		s->alloc_pages = pages;
	} else if (rc != ENOSPC) {
		vt_log(VT_LOG_WARN,
		       "lmdb: cannot reserve disk space for the store (%s); "
		       "a full disk may then refuse acks too",
		       strerror(rc));
		s->fd_ok = 0;
	}
	return rc;
}

/* Whole pages free for an unprivileged writer on the data file's disk. */
static size_t disk_free_pages(const struct lmdb *s)
{
	struct statvfs v;

	if (fstatvfs(s->fd, &v) != 0) {
		return 0;
	}
	return (size_t)((uint64_t)v.f_bavail * v.f_frsize / s->psize);
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

/* The flags of a delivery value; an empty one (format 1) has none. */
static uint32_t dlv_flags(const MDB_val *v)
{
	return v->mv_size == 4 ? get_u32(v->mv_data) : 0;
}

/*
 * Remove the delivery (inbox @ik, @id) from both indexes and the inbox
 * count, leaving the record's count to the caller. MDB_NOTFOUND when there
 * is no such delivery.
 */
static int dlv_unindex(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id)
{
	uint8_t dk[VT__INBOX_KEY_MAX + 8], rk[VT__INBOX_KEY_MAX + 8];
	MDB_val k = val(dk, iklen + 8);
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
	return rc ? rc : inbox_count_add(s, txn, val(ik, iklen), -1);
}

/*
 * Remove the delivery (inbox @ik, @id) and update both counts; the record
 * goes with its last delivery. MDB_NOTFOUND when there is no such delivery.
 */
static int dlv_remove(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id)
{
	uint8_t idk[8];
	uint32_t n;
	int64_t ts;
	int rc = dlv_unindex(s, txn, ik, iklen, id);

	vt__put_be64(idk, id);
	if (rc == 0) {
		rc = rcnt_get(s, txn, idk, &n, &ts);
	}
	if (rc != 0) {
		return rc;
	}
	return n > 1 ? rcnt_put(s, txn, idk, n - 1, ts) : rec_delete(s, txn, idk, ts);
}

/* Whether the delivery (inbox @ik, @id) exists, and its flags. */
static int dlv_get(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                   int *exists, uint32_t *flags)
{
	uint8_t dk[VT__INBOX_KEY_MAX + 8];
	MDB_val k = val(dk, iklen + 8), v;
	int rc;

	memcpy(dk, ik, iklen);
	vt__put_be64(dk + iklen, id);
	rc = mdb_get(txn, s->dlv, &k, &v);
	*exists = rc == 0;
	*flags = rc == 0 ? dlv_flags(&v) : 0;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int dlv_exists(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                      int *exists)
{
	uint32_t flags;

	return dlv_get(s, txn, ik, iklen, id, exists, &flags);
}

/* Write the delivery (inbox @ik, @id) with @flags; no flags take no bytes. */
static int dlv_put(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                   uint32_t flags)
{
	uint8_t dk[VT__INBOX_KEY_MAX + 8], fb[4];
	MDB_val k = val(dk, iklen + 8), v = val(fb, flags ? 4 : 0);

	memcpy(dk, ik, iklen);
	vt__put_be64(dk + iklen, id);
	put_u32(fb, flags);
	return mdb_put(txn, s->dlv, &k, &v, 0);
}

/* Add the delivery (inbox @ik, @id), known to be absent, to both indexes. */
static int dlv_add(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                   uint32_t flags)
{
	uint8_t rk[VT__INBOX_KEY_MAX + 8];
	MDB_val k = val(rk, iklen + 8), empty = val("", 0);
	int rc = dlv_put(s, txn, ik, iklen, id, flags);

	vt__put_be64(rk, id);
	memcpy(rk + 8, ik, iklen);
	if (rc == 0) {
		rc = mdb_put(txn, s->byrec, &k, &empty, 0);
	}
	if (rc == 0) {
		rc = inbox_count_add(s, txn, val(ik, iklen), +1);
	}
	return rc;
}

/* What a batch leaves behind besides its writes, and how it runs. */
struct batch {
	struct vt__out *out; /* out_to arrays, freed after done */
	int grows;           /* a TOUCH or GROUP stored something new */
	int refuse;          /* the store is full: what would grow gets VT_ENOSPC */
};

/* ---- devices ---- */

/* Called for each registered device (its inbox key); nonzero stops. */
typedef int (*dev_fn)(void *ctx, const uint8_t *ik, size_t iklen);

/*
 * Call @fn for each registered device of the user whose user key is @uk.
 * Keys read back are checked, so a damaged one is passed over. @fn must
 * not write to the devices database.
 */
static int devices_each(struct lmdb *s, MDB_txn *txn, const uint8_t *uk, size_t uklen, dev_fn fn,
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
static int devices_count(struct lmdb *s, MDB_txn *txn, const char *user, uint32_t *n)
{
	uint8_t uk[VT__INBOX_KEY_MAX];
	size_t uklen = vt__user_key(user, uk);

	*n = 0;
	return uklen ? devices_each(s, txn, uk, uklen, count_device, n) : 0;
}

/* Set device @ik's last-seen time, moving its expiry index entry. */
static int device_set(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen,
                      const int64_t *old_ts, int64_t ts)
{
	uint8_t tk[8 + VT__INBOX_KEY_MAX];
	MDB_val k = val(ik, iklen), v = val(tk, 8), empty = val("", 0);
	int rc = 0;

	memcpy(tk + 8, ik, iklen);
	if (old_ts) {
		vt__put_ts(tk, *old_ts);
		rc = del_quiet(txn, s->devtime, tk, 8 + iklen);
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
	int exists, rc = dlv_exists(s, txn, to, tlen, id, &exists);

	if (rc != 0 || exists) {
		return rc ? rc : dlv_remove(s, txn, from, flen, id);
	}
	rc = dlv_add(s, txn, to, tlen, id, flags);
	return rc ? rc : dlv_unindex(s, txn, from, flen, id);
}

/* Move all of @user's holding inbox into the inbox @ik. */
static int claim_holding(struct lmdb *s, MDB_txn *txn, const char *user, const uint8_t *ik,
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
		              vt__get_be64((const uint8_t *)k.mv_data + hklen), dlv_flags(&v));
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Register or refresh a device. A clock that went back must not make a
 * device look older than it was, so last-seen never decreases. A user's
 * first device adds only its registry rows and moves the held deliveries
 * to itself, so it may use the reserve; a further device grows the store.
 */
static int apply_touch(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b)
{
	uint8_t ik[VT__INBOX_KEY_MAX];
	size_t iklen = vt__inbox_key(&op->inbox, ik);
	MDB_val k = val(ik, iklen), v;
	int64_t old;
	uint32_t n = 0;
	int rc;

	if (!vt__touch_valid(op)) {
		op->status = VT_EINVAL;
		return 0;
	}
	rc = mdb_get(txn, s->devs, &k, &v);
	if (rc == 0) {
		old = v.mv_size == 8 ? vt__get_ts(v.mv_data) : INT64_MIN;
		rc = op->ts > old ? device_set(s, txn, ik, iklen, &old, op->ts) : 0;
		return rc ? rc : devices_count(s, txn, op->inbox.user, &op->out_ndevices);
	}
	if (rc == MDB_NOTFOUND) {
		rc = devices_count(s, txn, op->inbox.user, &n);
	}
	if (rc == 0 && n > 0 && b->refuse) {
		op->status = VT_ENOSPC;
		return 0;
	}
	if (rc == 0) {
		rc = device_set(s, txn, ik, iklen, NULL, op->ts);
	}
	if (rc == 0 && n == 0) {
		rc = claim_holding(s, txn, op->inbox.user, ik, iklen);
	}
	b->grows |= n > 0;
	op->out_ndevices = n + 1;
	return rc;
}

/* ---- PUT ---- */

/* Tags of the target set: whose the inbox is, and whether it got the record. */
#define T_RECIPIENT 0
#define T_OWN       1
#define T_NEW       2

static int put_valid(const struct vt_op *op)
{
	if (!op->rec || op->rec->id == 0) {
		return 0;
	}
	if ((op->rec->body_len > 0 && !op->rec->body) || rec_size(op->rec) == 0) {
		return 0;
	}
	return vt__put_inboxes_valid(op);
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

/* Gathers devices into the target set. */
struct gather {
	struct vt__tset *t;
	uint8_t tag;
	const uint8_t *skip; /* an inbox key to leave out, or NULL */
	size_t skiplen;
	uint32_t seen;
};

static int gather_device(void *ctx, const uint8_t *ik, size_t iklen)
{
	struct gather *g = ctx;

	if (g->skip && iklen == g->skiplen && memcmp(ik, g->skip, iklen) == 0) {
		return 0;
	}
	g->seen++;
	return vt__tset_add(g->t, ik, iklen, g->tag) < 0 ? ENOMEM : 0;
}

/* A user's devices, or its holding inbox when it has none. */
static int gather_user(struct lmdb *s, MDB_txn *txn, struct gather *g, const char *user)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__user_key(user, key);
	int rc;

	g->seen = 0;
	rc = devices_each(s, txn, key, klen, gather_device, g);
	if (rc != 0 || g->seen > 0) {
		return rc;
	}
	return vt__tset_add(g->t, key, vt__holding_key(user, key), T_RECIPIENT) < 0 ? ENOMEM : 0;
}

/*
 * Gather every inbox @op reaches into s->targets, each once: recipients
 * first (to, then users), so an inbox both names counts as a recipient.
 */
static int put_targets(struct lmdb *s, MDB_txn *txn, const struct vt_op *op)
{
	uint8_t key[VT__INBOX_KEY_MAX], own[VT__INBOX_KEY_MAX];
	struct gather g = {&s->targets, T_RECIPIENT, NULL, 0, 0};
	int rc = 0;

	vt__tset_clear(g.t);
	for (uint32_t i = 0; i < op->nto && rc == 0; i++) {
		rc = vt__tset_add(g.t, key, vt__inbox_key(&op->to[i], key), T_RECIPIENT) < 0;
	}
	if (rc != 0) {
		return ENOMEM;
	}
	for (uint32_t i = 0; i < op->nusers && rc == 0; i++) {
		rc = gather_user(s, txn, &g, op->users[i]);
	}
	if (rc == 0 && op->also_own) {
		g.tag = T_OWN;
		g.skip = own;
		g.skiplen = vt__inbox_key(op->also_own, own);
		rc = devices_each(s, txn, key, vt__user_key(op->also_own->user, key), gather_device,
		                  &g);
	}
	return rc;
}

/* Whether inbox @ik is at the cap without already holding this record. */
static int inbox_full(struct lmdb *s, MDB_txn *txn, const struct vt_op *op, const uint8_t *ik,
                      size_t iklen, int *full)
{
	uint32_t n;
	int exists, rc;

	*full = 0;
	if (op->inbox_cap == 0) {
		return 0;
	}
	rc = dlv_exists(s, txn, ik, iklen, op->rec->id, &exists);
	if (rc == 0 && !exists) {
		rc = count_get(txn, s->icnt, val(ik, iklen), &n);
		*full = rc == 0 && n >= op->inbox_cap;
	}
	return rc;
}

/* Nonzero (in *full) when a recipient that needs a new delivery is full. */
static int put_cap_check(struct lmdb *s, MDB_txn *txn, const struct vt_op *op, int *full)
{
	const struct vt__tset *t = &s->targets;
	int rc = 0;

	*full = 0;
	for (uint32_t i = 0; !op->cap_skip && i < t->n && rc == 0 && !*full; i++) {
		size_t iklen;
		const uint8_t *ik = vt__tset_key(t, i, &iklen);

		if (t->tag[i] == T_RECIPIENT) {
			rc = inbox_full(s, txn, op, ik, iklen, full);
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

/* Add one target's delivery unless it exists or the inbox is full. */
static int put_target(struct lmdb *s, MDB_txn *txn, struct vt_op *op, uint32_t i, uint32_t *added)
{
	struct vt__tset *t = &s->targets;
	size_t iklen;
	const uint8_t *ik = vt__tset_key(t, i, &iklen);
	int exists, full, rc = dlv_exists(s, txn, ik, iklen, op->rec->id, &exists);

	if (rc != 0 || exists) {
		return rc;
	}
	rc = inbox_full(s, txn, op, ik, iklen, &full);
	if (rc != 0 || full) {
		op->out_skipped += full && t->tag[i] == T_RECIPIENT;
		return rc;
	}
	t->tag[i] |= T_NEW;
	(*added)++;
	return dlv_add(s, txn, ik, iklen, op->rec->id, 0);
}

/* Add the deliveries of @op that do not exist yet, storing the record if new. */
static int put_deliveries(struct lmdb *s, MDB_txn *txn, struct vt_op *op)
{
	uint8_t idk[8];
	uint32_t n, added = 0;
	int64_t ts;
	int rc;

	vt__put_be64(idk, op->rec->id);
	rc = rcnt_get(s, txn, idk, &n, &ts);
	for (uint32_t i = 0; i < s->targets.n && rc == 0; i++) {
		rc = put_target(s, txn, op, i, &added);
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

/* Fill out_to with the targets that got a new delivery. */
static int put_out(struct lmdb *s, struct vt_op *op, struct vt__out **chain)
{
	const struct vt__tset *t = &s->targets;
	uint32_t n = 0;
	size_t bytes = 0, klen;
	struct vt__out *o;

	for (uint32_t i = 0; i < t->n; i++) {
		if (t->tag[i] & T_NEW) {
			vt__tset_key(t, i, &klen);
			bytes += klen;
			n++;
		}
	}
	if (n == 0) {
		return 0;
	}
	o = vt__out_new(chain, n, bytes);
	if (!o) {
		return ENOMEM;
	}
	for (uint32_t i = 0; i < t->n; i++) {
		const uint8_t *k = vt__tset_key(t, i, &klen);

		if (t->tag[i] & T_NEW) {
			vt__out_push(o, k, klen);
		}
	}
	op->out_to = o->v;
	op->out_nto = o->n;
	return 0;
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

/*
 * Apply one PUT. Returns an LMDB error (the batch then aborts) or 0. On a
 * full store a PUT that would write is refused; a duplicate is still
 * answered, so a sender retrying what was accepted learns its id.
 */
static int apply_put(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b)
{
	int full = 0, rc;

	if (!put_valid(op)) {
		op->status = VT_EINVAL;
		return 0;
	}
	rc = put_dedup_check(s, txn, op);
	if (rc != 0 || op->dup_of) {
		return rc;
	}
	rc = put_targets(s, txn, op);
	if (rc == 0) {
		rc = put_cap_check(s, txn, op, &full);
	}
	if (rc != 0 || full) {
		op->status = full ? VT_EINBOXFULL : 0;
		return rc;
	}
	if (b->refuse) {
		op->status = VT_ENOSPC;
		return 0;
	}
	rc = put_deliveries(s, txn, op);
	if (rc == 0) {
		rc = put_dedup_record(s, txn, op);
	}
	if (rc == 0) {
		rc = max_id_raise(s, txn, op->rec->id);
	}
	return rc ? rc : put_out(s, op, &b->out);
}

/* ---- ACK, NOTIFIED, GROUP ---- */

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

static int apply_notified(struct lmdb *s, MDB_txn *txn, struct vt_op *op)
{
	uint8_t ik[VT__INBOX_KEY_MAX];
	size_t iklen = vt__inbox_key(&op->inbox, ik);
	uint32_t flags;
	int exists, rc;

	if (iklen == 0) {
		op->status = VT_EUNKNOWNID;
		return 0;
	}
	rc = dlv_get(s, txn, ik, iklen, op->id, &exists, &flags);
	if (rc != 0 || !exists) {
		op->status = rc ? 0 : VT_EUNKNOWNID;
		return rc;
	}
	if (flags & VT_REC_NOTIFIED) {
		return 0;
	}
	return dlv_put(s, txn, ik, iklen, op->id, flags | VT_REC_NOTIFIED);
}

/*
 * Set or delete a group's state. On a full store even a delete is refused:
 * a change travels with the events that announce it, and those are refused.
 */
static int apply_group(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b)
{
	MDB_val k, v;

	if (!vt__group_valid(op)) {
		op->status = VT_EINVAL;
		return 0;
	}
	if (b->refuse) {
		op->status = VT_ENOSPC;
		return 0;
	}
	k = val(op->group, strlen(op->group));
	if (op->len == 0) {
		return del_quiet(txn, s->groups, k.mv_data, k.mv_size);
	}
	b->grows = 1;
	v = val(op->data, op->len);
	return mdb_put(txn, s->groups, &k, &v, 0);
}

/* ---- commit ---- */

static int apply_op(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b)
{
	switch (op->kind) {
	case VT_OP_PUT:
		return apply_put(s, txn, op, b);
	case VT_OP_ACK:
		return apply_ack(s, txn, op);
	case VT_OP_TOUCH:
		return apply_touch(s, txn, op, b);
	case VT_OP_NOTIFIED:
		return apply_notified(s, txn, op);
	case VT_OP_GROUP:
		return apply_group(s, txn, op, b);
	}
	op->status = VT_EINVAL;
	return 0;
}

static int apply_ops(struct lmdb *s, MDB_txn *txn, struct vt_op *ops, size_t n, struct batch *b)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		vt__op_reset(&ops[i]);
		rc = apply_op(s, txn, &ops[i], b);
	}
	return rc;
}

/* Pages held by every tree, as @txn sees them (its own writes included). */
static int pages_used(struct lmdb *s, MDB_txn *txn, size_t *out)
{
	const MDB_dbi all[] = {FREE_DBI, MAIN_DBI,  s->recs,    s->dlv,   s->byrec,
	                       s->rcnt,  s->bytime, s->dedup,   s->dtime, s->icnt,
	                       s->meta,  s->devs,   s->devtime, s->groups};
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

/*
 * Nonzero when the batch stored something new: a PUT that wrote, a device
 * registered or a group state set. Acks, refreshes, NOTIFIED and group
 * deletes may use the reserve, so space can always be freed.
 */
static int batch_stores(const struct vt_op *ops, size_t n, const struct batch *b)
{
	for (size_t i = 0; i < n; i++) {
		if (ops[i].kind == VT_OP_PUT && ops[i].status == 0 && !ops[i].dup_of) {
			return 1;
		}
	}
	return b->grows;
}

/*
 * Make sure the data file has disk blocks for @live pages plus the reserve,
 * a chunk ahead, so that an ack on a full disk finds the blocks its copies
 * need. When the disk cannot give a whole chunk, take what it has: the
 * store is then limited by the disk, not the map (see page_limit).
 */
static void reserve_disk(struct lmdb *s, size_t live)
{
	size_t want = live + 2 * s->floor, target;
	int rc;

	if (!s->fd_ok || want <= s->alloc_pages || s->alloc_pages >= s->map_pages) {
		return;
	}
	target = want + s->chunk < s->map_pages ? want + s->chunk : s->map_pages;
	rc = file_alloc(s, target);
	if (rc == ENOSPC) {
		size_t fits = s->alloc_pages + disk_free_pages(s);

		if (fits > s->alloc_pages && fits < target) {
			file_alloc(s, fits);
		}
		if (!s->disk_full) {
			vt_log(VT_LOG_WARN,
			       "lmdb: disk full: the store is held at %zu KB until "
			       "space is freed",
			       s->alloc_pages * s->psize / 1024);
		}
		s->disk_full = 1;
		return;
	}
	s->disk_full = 0;
}

/* Live pages a storing batch may leave: the map's limit, or the disk's. */
static size_t page_limit(const struct lmdb *s)
{
	size_t disk = s->alloc_pages > s->floor ? s->alloc_pages - s->floor : 0;

	return s->fd_ok && disk < s->map_limit ? disk : s->map_limit;
}

/* MDB_MAP_FULL when a storing batch would eat into the reserve. */
static int check_headroom(struct lmdb *s, MDB_txn *txn, const struct vt_op *ops, size_t n,
                          const struct batch *b)
{
	size_t used;
	int rc;

	if (!batch_stores(ops, n, b)) {
		return 0;
	}
	rc = pages_used(s, txn, &used);
	if (rc == 0) {
		reserve_disk(s, used);
	}
	return rc ? rc : (used > page_limit(s) ? MDB_MAP_FULL : 0);
}

/* A batch that failed reports no routing: its out_to arrays describe nothing. */
static void clear_out(struct vt_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ops[i].out_to = NULL;
		ops[i].out_nto = 0;
	}
}

/* One try at the batch in one write transaction; an LMDB error or 0. */
static int commit_txn(struct lmdb *s, struct vt_op *ops, size_t n, struct batch *b)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

	if (rc != 0) {
		return rc;
	}
	rc = apply_ops(s, txn, ops, n, b);
	if (rc == 0) {
		rc = check_headroom(s, txn, ops, n, b);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/* Whether every op of the batch was refused for space: nothing was written. */
static int all_refused(const struct vt_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ops[i].status != VT_ENOSPC) {
			return 0;
		}
	}
	return 1;
}

/*
 * A full store must still take acks, since they are what frees it. So when
 * the batch does not fit, it runs again with whatever would grow the store
 * refused op by op (VT_ENOSPC), and the rest is committed. The batch fails
 * whole only when nothing of it is left to write, or when even that does
 * not fit.
 */
static void lmdb_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	struct lmdb *s = self;
	struct batch b = {NULL, 0, 0};
	int rc = commit_txn(s, ops, n, &b);

	if (rc == MDB_MAP_FULL) {
		vt__out_free(b.out);
		b = (struct batch){NULL, 0, 1};
		rc = commit_txn(s, ops, n, &b);
		if (rc == 0 && all_refused(ops, n)) {
			rc = MDB_MAP_FULL;
		} else if (rc == 0) {
			vt_log(VT_LOG_WARN, "lmdb: commit: storage full; what would grow it "
			                    "was refused, the rest committed");
		}
	}
	if (rc != 0) {
		clear_out(ops, n);
	}
	done(arg, rc ? write_error(rc, "commit") : 0);
	vt__out_free(b.out);
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
static int list_one(struct lmdb *s, MDB_txn *txn, uint64_t id, uint32_t flags, struct listing *l,
                    int *err)
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
		r.flags = flags;
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
		rc = list_one(s, txn, vt__get_be64((const uint8_t *)k.mv_data + iklen),
		              dlv_flags(&v), l, &err);
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

/*
 * Remove deliveries of inbox @ik, first to last, until *removed reaches
 * @budget; *empty says whether none are left.
 */
static int inbox_drain(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen,
                       uint64_t budget, uint64_t *removed, int *empty)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, s->dlv, &cur);

	*empty = 0;
	if (rc != 0) {
		return rc;
	}
	while (rc == 0) {
		k = val(ik, iklen);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 || k.mv_size != iklen + 8 || memcmp(k.mv_data, ik, iklen) != 0) {
			*empty = rc == 0 || rc == MDB_NOTFOUND;
			rc = rc == MDB_NOTFOUND ? 0 : rc;
			break;
		}
		if (*removed >= budget) {
			break;
		}
		rc = dlv_remove(s, txn, ik, iklen,
		                vt__get_be64((const uint8_t *)k.mv_data + iklen));
		(*removed)++;
	}
	mdb_cursor_close(cur);
	return rc;
}

/*
 * Forget the oldest device, @tk (its device_time key, @tklen bytes), once
 * its inbox is drained. *stop is set when the budget ran out first.
 */
static int expire_device(struct lmdb *s, MDB_txn *txn, const uint8_t *tk, size_t tklen,
                         uint64_t max, uint64_t *removed, int *stop)
{
	const uint8_t *ik = tk + 8;
	size_t iklen = tklen - 8, ul, dl;
	MDB_val k = val(ik, iklen), v;
	int empty = 1, rc = 0;

	*stop = 0;
	if (vt__inbox_key_parse(ik, iklen, &ul, &dl) != 0) {
		vt_log(VT_LOG_WARN, "lmdb: device_time key of %zu bytes is damaged; dropped",
		       tklen);
		return del_quiet(txn, s->devtime, tk, tklen);
	}
	rc = mdb_get(txn, s->devs, &k, &v);
	if (rc == MDB_NOTFOUND ||
	    (rc == 0 && v.mv_size == 8 && vt__get_ts(v.mv_data) != vt__get_ts(tk))) {
		return del_quiet(txn, s->devtime, tk, tklen); /* a stale index entry */
	}
	if (rc == 0) {
		rc = inbox_drain(s, txn, ik, iklen, max, removed, &empty);
	}
	if (rc != 0 || !empty) {
		*stop = 1;
		return rc;
	}
	rc = del_quiet(txn, s->devs, ik, iklen);
	return rc ? rc : del_quiet(txn, s->devtime, tk, tklen);
}

/*
 * Remove devices last seen before @before_ts, oldest first, with their
 * deliveries, until @max deliveries went. Devices without deliveries count
 * against @max too, so one sweep stays bounded. A device whose deliveries
 * did not all fit stays registered for the next sweep.
 */
static int expire_devices(struct lmdb *s, MDB_txn *txn, int64_t before_ts, uint64_t max,
                          uint64_t *removed)
{
	uint8_t tk[8 + VT__INBOX_KEY_MAX];
	uint64_t forgotten = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	int stop = 0, rc = mdb_cursor_open(txn, s->devtime, &cur);

	if (rc != 0) {
		return rc;
	}
	while (rc == 0 && !stop && *removed < max && forgotten++ < max) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc == 0 && (k.mv_size <= 8 || k.mv_size > sizeof(tk))) {
			vt_log(VT_LOG_WARN, "lmdb: device_time key of %zu bytes; dropped",
			       k.mv_size);
			rc = mdb_cursor_del(cur, 0);
			continue;
		}
		if (rc != 0 || vt__get_ts(k.mv_data) >= before_ts) {
			break;
		}
		memcpy(tk, k.mv_data, k.mv_size);
		rc = expire_device(s, txn, tk, k.mv_size, max, removed, &stop);
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
static int expire_txn(struct lmdb *s, int64_t now_ts, int64_t before_ts, int64_t device_before_ts,
                      uint64_t max, uint64_t *removed)
{
	MDB_txn *txn = NULL;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

	*removed = 0;
	if (rc == 0) {
		rc = expire_deliveries(s, txn, before_ts, max, removed);
	}
	if (rc == 0) {
		rc = expire_devices(s, txn, device_before_ts, max, removed);
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
static void lmdb_expire(void *self, int64_t now_ts, int64_t before_ts, int64_t device_before_ts,
                        uint64_t max, vt_expire_cb done, void *arg)
{
	struct lmdb *s = self;
	uint64_t removed;
	int rc = expire_txn(s, now_ts, before_ts, device_before_ts, max, &removed);

	while (rc == MDB_MAP_FULL && max > 1) {
		max /= 2;
		rc = expire_txn(s, now_ts, before_ts, device_before_ts, max, &removed);
	}
	if (rc != 0) {
		done(arg, write_error(rc, "expire"), 0);
		return;
	}
	done(arg, 0, removed);
}

/* ---- groups ---- */

/* Call @each for every group in the cursor's database; damaged keys are skipped. */
static int groups_scan(MDB_cursor *cur,
                       void (*each)(void *arg, const char *group, const char *data, size_t len),
                       void *arg)
{
	char id[VT__GROUP_KEY_MAX + 1];
	MDB_val k, v;
	int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);

	while (rc == 0) {
		if (k.mv_size == 0 || k.mv_size > VT__GROUP_KEY_MAX ||
		    memchr(k.mv_data, 0, k.mv_size)) {
			vt_log(VT_LOG_WARN, "lmdb: group key of %zu bytes is damaged; skipped",
			       k.mv_size);
		} else {
			memcpy(id, k.mv_data, k.mv_size);
			id[k.mv_size] = 0;
			each(arg, id, v.mv_data, v.mv_size);
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int lmdb_load_groups(void *self,
                            void (*each)(void *arg, const char *group, const char *data,
                                         size_t len),
                            void *arg)
{
	struct lmdb *s = self;
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);

	if (rc == 0) {
		rc = mdb_cursor_open(txn, s->groups, &cur);
	}
	if (rc == 0) {
		rc = groups_scan(cur, each, arg);
		mdb_cursor_close(cur);
	}
	if (txn) {
		mdb_txn_abort(txn);
	}
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "lmdb: load groups: %s", mdb_strerror(rc));
		return VT_ESTORAGE;
	}
	return 0;
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
	vt__tset_free(&s->targets);
	free(s);
}

static const struct vt_storage_ops lmdb_ops = {
        .commit = lmdb_commit,
        .list = lmdb_list,
        .expire = lmdb_expire,
        .load_groups = lmdb_load_groups,
        .max_id = lmdb_max_id,
        .destroy = lmdb_destroy,
};

static int format_put(struct lmdb *s, MDB_txn *txn)
{
	uint8_t buf[8];
	MDB_val k = val("format", 6), v = val(buf, 8);

	vt__put_be64(buf, FORMAT_VERSION);
	return mdb_put(txn, s->meta, &k, &v, 0);
}

/*
 * Record the layout version in a new store, upgrade an older one, refuse a
 * newer one. Format 1 upgrades by its number alone: its empty delivery
 * values read as no flags, and it had no devices or groups to convert.
 */
static int check_format(struct lmdb *s, MDB_txn *txn)
{
	MDB_val k = val("format", 6), v;
	uint64_t version;
	int rc = mdb_get(txn, s->meta, &k, &v);

	if (rc == MDB_NOTFOUND) {
		return format_put(s, txn);
	}
	if (rc != 0) {
		return rc;
	}
	version = v.mv_size == 8 ? vt__get_be64(v.mv_data) : 0;
	if (version == FORMAT_VERSION) {
		return 0;
	}
	if (version == 1) {
		vt_log(VT_LOG_INFO, "lmdb: upgrading storage format 1 to %d", FORMAT_VERSION);
		return format_put(s, txn);
	}
	if (version > FORMAT_VERSION) {
		vt_log(VT_LOG_ERROR,
		       "lmdb: storage format %llu is newer than this build reads (%d)",
		       (unsigned long long)version, FORMAT_VERSION);
	} else {
		vt_log(VT_LOG_ERROR, "lmdb: unknown storage format");
	}
	return MDB_INCOMPATIBLE;
}

static int open_dbs(struct lmdb *s)
{
	struct {
		const char *name;
		MDB_dbi *dbi;
	} t[] = {
	        {"records", &s->recs},     {"deliveries", &s->dlv},      {"by_record", &s->byrec},
	        {"rec_count", &s->rcnt},   {"by_time", &s->bytime},      {"dedup", &s->dedup},
	        {"dedup_time", &s->dtime}, {"inbox_count", &s->icnt},    {"meta", &s->meta},
	        {"devices", &s->devs},     {"device_time", &s->devtime}, {"groups", &s->groups},
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
 * The reserve is a sixteenth of the map, and at least RESERVE_FLOOR pages:
 * what one engine batch of acks needs to copy its paths in every tree and
 * to save the free list (see the tiny map tests).
 */
static int set_page_limit(struct lmdb *s)
{
	MDB_envinfo info;
	MDB_stat st;
	size_t reserve;
	int rc = mdb_env_info(s->env, &info);

	if (rc == 0) {
		rc = mdb_env_stat(s->env, &st);
	}
	if (rc != 0) {
		return rc;
	}
	s->psize = st.ms_psize;
	s->map_pages = info.me_mapsize / st.ms_psize;
	s->floor = RESERVE_FLOOR;
	reserve = s->map_pages / 16 > s->floor ? s->map_pages / 16 : s->floor;
	s->chunk = reserve;
	s->map_limit = s->map_pages > reserve ? s->map_pages - reserve : 0;
	return 0;
}

/* Live pages of the store as it is on disk. */
static int pages_at_open(struct lmdb *s, size_t *live)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);

	if (rc == 0) {
		rc = pages_used(s, txn, live);
		mdb_txn_abort(txn);
	}
	return rc;
}

/*
 * Reserve the data file's disk blocks for what is stored plus the reserve,
 * so that a disk that fills up later can still take acks. Refused (ENOSPC)
 * when the disk has not even room for the reserve.
 */
static int reserve_at_open(struct lmdb *s, const char *path)
{
	struct stat st;
	size_t live;
	int rc = mdb_env_get_fd(s->env, &s->fd);

	if (rc == 0) {
		rc = pages_at_open(s, &live);
	}
	if (rc != 0 || fstat(s->fd, &st) != 0) {
		return rc ? rc : errno;
	}
	s->fd_ok = 1;
	s->alloc_pages = (size_t)st.st_blocks * 512 / s->psize;
	if (s->alloc_pages > (size_t)st.st_size / s->psize) {
		s->alloc_pages = (size_t)st.st_size / s->psize;
	}
	reserve_disk(s, live);
	if (s->fd_ok && s->disk_full && s->alloc_pages < live + s->floor) {
		vt_log(VT_LOG_ERROR,
		       "lmdb: %s: no disk space for the store: a %llu KB map "
		       "needs at least %zu KB more, %zu KB free",
		       path, (unsigned long long)(s->map_pages * s->psize / 1024),
		       (live + s->floor - s->alloc_pages) * s->psize / 1024,
		       disk_free_pages(s) * s->psize / 1024);
		return ENOSPC;
	}
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
	if (rc == 0) {
		rc = reserve_at_open(s, opts->path);
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
