/*
 * store_lmdb_read.c - what reads or sweeps the store outside a commit:
 * list, expire, load_groups, max_id and dedup_peek.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "store_key.h"
#include "store_lmdb_int.h"

/* ---- reading on the engine's thread ---- */

/*
 * A read transaction for the engine's thread: the view, with a writer
 * thread (it shows what the engine has heard of, no more), or a fresh one.
 */
int vt__lmdb_read_begin(struct lmdb *s, MDB_txn **txn)
{
	if (s->view) {
		*txn = s->view;
		return 0;
	}
	return mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
}

void vt__lmdb_read_end(struct lmdb *s, MDB_txn *txn)
{
	if (txn != s->view) {
		mdb_txn_abort(txn);
	}
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
	if (rc == MDB_NOTFOUND || (rc == 0 && vt__lmdb_rec_decode(&v, id, &r) != 0)) {
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
		              vt__lmdb_dlv_flags(&v), l, &err);
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

void vt__lmdb_list(void *self, const struct vt_inbox *inbox, uint64_t after, uint32_t limit,
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
	rc = vt__lmdb_read_begin(s, &txn);
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
	vt__lmdb_read_end(s, txn);
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
			rc = rc == 0 || rc == MDB_NOTFOUND ? vt__lmdb_rec_delete(s, txn, idk, ts)
			                                   : rc;
			break;
		}
		iklen = k.mv_size - 8;
		memcpy(ik, (const uint8_t *)k.mv_data + 8, iklen);
		rc = vt__lmdb_dlv_remove(s, txn, ik, iklen, vt__get_be64(idk));
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
		rc = vt__lmdb_dlv_remove(s, txn, ik, iklen,
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
		return vt__lmdb_del_quiet(txn, s->devtime, tk, tklen);
	}
	rc = mdb_get(txn, s->devs, &k, &v);
	if (rc == MDB_NOTFOUND ||
	    (rc == 0 && v.mv_size == 8 && vt__get_ts(v.mv_data) != vt__get_ts(tk))) {
		return vt__lmdb_del_quiet(txn, s->devtime, tk, tklen); /* a stale index entry */
	}
	if (rc == 0) {
		rc = inbox_drain(s, txn, ik, iklen, max, removed, &empty);
	}
	if (rc != 0 || !empty) {
		*stop = 1;
		return rc;
	}
	rc = vt__lmdb_del_quiet(txn, s->devs, ik, iklen);
	return rc ? rc : vt__lmdb_del_quiet(txn, s->devtime, tk, tklen);
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

/* One expiry transaction; an LMDB error, after which nothing was removed. */
static int expire_txn(struct lmdb *s, int64_t now_ts, int64_t before_ts, int64_t device_before_ts,
                      uint64_t max, uint64_t *removed)
{
	MDB_txn *txn = NULL;
	int rc = vt__lmdb_wtxn_begin(s, &txn);

	*removed = 0;
	if (rc != 0) {
		return rc;
	}
	rc = expire_deliveries(s, txn, before_ts, max, removed);
	if (rc == 0) {
		rc = expire_devices(s, txn, device_before_ts, max, removed);
	}
	if (rc == 0) {
		rc = vt__lmdb_revoked_expire(s, txn, device_before_ts, max);
	}
	if (rc == 0) {
		uint64_t forgot;
		int64_t last_ts;

		rc = vt__lmdb_dedup_forget(s, txn, now_ts, s->window, max, &forgot, &last_ts);
	}
	rc = vt__lmdb_wtxn_end(s, txn, rc);
	if (rc != 0) {
		*removed = 0;
	}
	return rc;
}

/*
 * Expiry need not be one transaction: when a large sweep does not fit the
 * free pages, a smaller one still frees space, so halve it and try again.
 */
void vt__lmdb_expire(void *self, int64_t now_ts, int64_t before_ts, int64_t device_before_ts,
                     uint64_t max, vt_expire_cb done, void *arg)
{
	struct lmdb *s = self;
	uint64_t removed;
	int rc = expire_txn(s, now_ts, before_ts, device_before_ts, max, &removed);

	while (rc == MDB_MAP_FULL && max > 1) {
		max /= 2;
		rc = expire_txn(s, now_ts, before_ts, device_before_ts, max, &removed);
	}
	vt__lmdb_dedup_report(s, 0); /* what the last minute's commits forgot */
	if (rc != 0) {
		done(arg, vt__lmdb_write_error(rc, "expire"), 0);
		return;
	}
	done(arg, 0, removed);
}

/* ---- groups ---- */

struct groups_walk {
	void (*each)(void *arg, const char *group, const char *data, size_t len);
	void *arg;
};

/* Call @each for every group in the cursor's database; damaged keys are skipped. */
static int groups_scan(MDB_cursor *cur, void *ctx)
{
	const struct groups_walk *w = ctx;
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
			w->each(w->arg, id, v.mv_data, v.mv_size);
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int vt__lmdb_read_tree(struct lmdb *s, MDB_dbi dbi, int (*scan)(MDB_cursor *cur, void *ctx),
		       void *ctx, const char *what)
{
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	int rc = vt__lmdb_read_begin(s, &txn);

	if (rc == 0) {
		rc = mdb_cursor_open(txn, dbi, &cur);
	}
	if (rc == 0) {
		rc = scan(cur, ctx);
		mdb_cursor_close(cur);
	}
	if (txn) {
		vt__lmdb_read_end(s, txn);
	}
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "lmdb: load %s: %s", what, mdb_strerror(rc));
		return VT_ESTORAGE;
	}
	return 0;
}

int vt__lmdb_load_groups(void *self,
                         void (*each)(void *arg, const char *group, const char *data,
                                      size_t len),
                         void *arg)
{
	struct lmdb *s = self;
	struct groups_walk w = {each, arg};

	return vt__lmdb_read_tree(s, s->groups, groups_scan, &w, "groups");
}

/* ---- lifetime ---- */

uint64_t vt__lmdb_max_id(void *self)
{
	struct lmdb *s = self;
	uint64_t id = 0;
	MDB_txn *txn;
	int rc = vt__lmdb_read_begin(s, &txn);

	if (rc == 0) {
		rc = vt__lmdb_max_id_get(s, txn, &id);
		vt__lmdb_read_end(s, txn);
	}
	if (rc != 0) {
		/* The vtable has no error path here; ids may repeat, so say it loudly. */
		vt_log(VT_LOG_ERROR, "lmdb: cannot read max_id: %s", mdb_strerror(rc));
	}
	return id;
}

/* ---- dedup_peek ---- */

int vt__lmdb_dedup_peek(void *self, const struct vt_record *rec, uint64_t *id)
{
	struct lmdb *s = self;
	uint8_t dk[VT__DEDUP_KEY_MAX];
	size_t dklen = vt__dedup_key(rec, dk);
	struct vt__lmdb_pair pair;
	MDB_txn *txn;
	int rc;

	if (dklen == 0) {
		return 0; /* a PUT would not dedup it either */
	}
	rc = vt__lmdb_read_begin(s, &txn);
	if (rc != 0) {
		return VT_ESTORAGE;
	}
	rc = vt__lmdb_pair_peek(s, txn, dk, dklen, &pair);
	vt__lmdb_read_end(s, txn);
	if (rc != 0) {
		return VT_ESTORAGE;
	}
	if (!pair.found || pair.id == rec->id || !vt__within_window(rec->ts, pair.ts, s->window)) {
		return 0;
	}
	*id = pair.id;
	return 1;
}
