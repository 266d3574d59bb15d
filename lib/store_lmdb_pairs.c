/*
 * store_lmdb_pairs.c - the (sender, client id) pairs that recognise a
 * re-send: finding one, writing one, and building their index when the
 * store opens.
 *
 * A pair lives in one tree, dedup_time, keyed by the time it was written
 * and the pair, and is found through the index in memory (pair_index.h).
 * Keyed by the pair, as it once was, the tree took each new pair into a
 * random leaf page: a commit of a thousand pairs copied and wrote a
 * thousand pages. Keyed by time, a commit appends to the last few pages,
 * and the oldest pairs are forgotten from the front. Each pair has one key
 * in the tree: writing it again removes the older one, so the tree and the
 * index always hold the same pairs.
 */
#include <errno.h>
#include <lmdb.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "store_key.h"
#include "store_lmdb_int.h"

/*
 * Candidates looked at for one fingerprint. More than one means a collision
 * of random 64-bit fingerprints; more than this many is not to be expected
 * of any store that fits a disk.
 */
#define MAX_CANDIDATES 16

/* The dedup_time key of pair @dk written at @ts, in @tk. */
static MDB_val time_key(uint8_t *tk, int64_t ts, const uint8_t *dk, size_t dklen)
{
	vt__put_ts(tk, ts);
	memcpy(tk + 8, dk, dklen);
	return val(tk, 8 + dklen);
}

static int pairs_errno(int rc)
{
	return rc == VT_ENOMEM ? ENOMEM : rc;
}

/* Pair @dk in @txn, among the index's candidates (@committed: vt__pairs_find_committed's). */
static int find(struct lmdb *s, MDB_txn *txn, const uint8_t *dk, size_t dklen,
                struct vt__lmdb_pair *p, int committed)
{
	uint8_t tk[8 + VT__DEDUP_KEY_MAX];
	int64_t ts[MAX_CANDIDATES];
	size_t n;

	p->fp = vt__pairs_fp(&s->pairs, dk, dklen);
	p->found = 0;
	n = committed ? vt__pairs_find_committed(&s->pairs, p->fp, ts, MAX_CANDIDATES)
	              : vt__pairs_find(&s->pairs, p->fp, ts, MAX_CANDIDATES);
	for (size_t i = 0; i < n && i < MAX_CANDIDATES; i++) {
		MDB_val k = time_key(tk, ts[i], dk, dklen), v;
		int rc = mdb_get(txn, s->dtime, &k, &v);

		if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 8)) {
			continue; /* another pair's fingerprint, or not committed yet */
		}
		if (rc != 0) {
			return rc;
		}
		p->found = 1;
		p->ts = ts[i];
		p->id = vt__get_be64(v.mv_data);
		return 0;
	}
	return 0;
}

int vt__lmdb_pair_find(struct lmdb *s, MDB_txn *txn, const uint8_t *dk, size_t dklen,
                       struct vt__lmdb_pair *p)
{
	return find(s, txn, dk, dklen, p, 0);
}

int vt__lmdb_pair_peek(struct lmdb *s, MDB_txn *txn, const uint8_t *dk, size_t dklen,
                       struct vt__lmdb_pair *p)
{
	return find(s, txn, dk, dklen, p, 1);
}

void vt__lmdb_pair_prefetch(struct lmdb *s, const uint8_t *dk, size_t dklen)
{
	vt__pairs_prefetch(&s->pairs, vt__pairs_fp(&s->pairs, dk, dklen));
}

int vt__lmdb_pair_write(struct lmdb *s, MDB_txn *txn, const uint8_t *dk, size_t dklen,
                        const struct vt__lmdb_pair *old, uint64_t id, int64_t ts)
{
	uint8_t tk[8 + VT__DEDUP_KEY_MAX], idv[8];
	MDB_val k = time_key(tk, ts, dk, dklen), v = val(idv, 8);
	int rc;

	vt__put_be64(idv, id);
	rc = vt__lmdb_put_last(txn, s->dtime, &k, &v, 0);
	if (rc != 0 || (old->found && old->ts == ts)) {
		return rc; /* the same key: its id was replaced */
	}
	if (old->found) {
		k = time_key(tk, old->ts, dk, dklen);
		rc = vt__lmdb_del_quiet(txn, s->dtime, k.mv_data, k.mv_size);
		if (rc == 0) {
			rc = pairs_errno(vt__pairs_del(&s->pairs, old->fp, old->ts));
			rc = rc == 1 ? 0 : rc;
		}
	}
	return rc ? rc : pairs_errno(vt__pairs_add(&s->pairs, old->fp, ts));
}

/*
 * A store of format 2 or older also kept each pair in a tree keyed by the
 * pair, @legacy, and left the time index's key of a pair written again in
 * place: only the key whose id that tree names is the pair's.
 */
static int legacy_live(MDB_txn *txn, MDB_dbi legacy, const MDB_val *k, const MDB_val *v, int *live)
{
	MDB_val dk = val((const uint8_t *)k->mv_data + 8, k->mv_size - 8), dv;
	int rc = mdb_get(txn, legacy, &dk, &dv);

	*live = rc == 0 && dv.mv_size == 16 && v->mv_size == 8 &&
	        memcmp(dv.mv_data, v->mv_data, 8) == 0;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Entries indexed at once while loading (vt__pairs_load). */
#define LOAD_BATCH 64

/* Index every pair of dedup_time; with @legacy, drop the keys it shows stale. */
static int load_pairs(struct lmdb *s, MDB_txn *txn, const MDB_dbi *legacy)
{
	struct vt__pair batch[LOAD_BATCH];
	size_t n = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, s->dtime, &cur);

	for (int op = MDB_FIRST; rc == 0; op = MDB_NEXT) {
		int live = 1;

		rc = mdb_cursor_get(cur, &k, &v, op);
		if (rc == 0 && legacy) {
			rc = legacy_live(txn, *legacy, &k, &v, &live);
		}
		if (rc == 0 && (!live || k.mv_size <= 8 || k.mv_size > 8 + VT__DEDUP_KEY_MAX ||
		                v.mv_size != 8)) {
			rc = mdb_cursor_del(cur, 0);
			continue;
		}
		if (rc != 0) {
			break;
		}
		batch[n].fp = vt__pairs_fp(&s->pairs, (uint8_t *)k.mv_data + 8, k.mv_size - 8);
		batch[n++].ts = vt__get_ts(k.mv_data);
		if (n == LOAD_BATCH) {
			rc = pairs_errno(vt__pairs_load(&s->pairs, batch, n));
			n = 0;
		}
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		rc = pairs_errno(vt__pairs_load(&s->pairs, batch, n));
	}
	return rc;
}

int vt__lmdb_pairs_load(struct lmdb *s, MDB_txn *txn, int upgrade)
{
	MDB_dbi legacy;
	MDB_stat st;
	int rc = upgrade ? mdb_dbi_open(txn, "dedup", 0, &legacy) : MDB_NOTFOUND;

	if (rc != 0 && rc != MDB_NOTFOUND) {
		return rc;
	}
	upgrade = rc == 0;
	rc = mdb_stat(txn, s->dtime, &st);
	if (rc == 0) {
		rc = pairs_errno(vt__pairs_reserve(&s->pairs, st.ms_entries));
	}
	if (rc == 0) {
		rc = load_pairs(s, txn, upgrade ? &legacy : NULL);
	}
	if (rc == 0 && upgrade) {
		rc = mdb_drop(txn, legacy, 1);
	}
	if (rc == 0 && vt__pairs_count(&s->pairs) > 0) {
		vt_log(VT_LOG_INFO, "lmdb: %zu (sender, client id) pairs indexed",
		       vt__pairs_count(&s->pairs));
	}
	return rc;
}
