/*
 * store_lmdb_dedup.c - forgetting the (sender, client id) pairs that
 * recognise a re-send (store_lmdb_pairs.c), oldest first, when their window
 * ends (expiry) or when the store needs their room, and saying so in the log.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdint.h>

#include <vartalap/error.h>

#include "store_forgot.h"
#include "store_key.h"
#include "store_lmdb_int.h"

/*
 * Forget pairs, oldest first, at most @max, and stop at the first still
 * inside @window at @now_ts (a window of 0 keeps none). Sets *forgot to how
 * many went and *last_ts to the time of the last.
 */
int vt__lmdb_dedup_forget(struct lmdb *s, MDB_txn *txn, int64_t now_ts, int64_t window,
                          uint64_t max, uint64_t *forgot, int64_t *last_ts)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, s->dtime, &cur);

	*forgot = 0;
	for (uint64_t n = 0; rc == 0 && n < max; n++) {
		uint64_t fp;
		int64_t ts;
		int gone = 0;

		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc != 0 || k.mv_size <= 8 ||
		    vt__within_window(now_ts, vt__get_ts(k.mv_data), window)) {
			break;
		}
		ts = vt__get_ts(k.mv_data);
		fp = vt__pairs_fp(&s->pairs, (const uint8_t *)k.mv_data + 8, k.mv_size - 8);
		rc = mdb_cursor_del(cur, 0);
		if (rc == 0) {
			gone = vt__pairs_del(&s->pairs, fp, ts);
			rc = gone == VT_ENOMEM ? ENOMEM : 0;
		}
		*forgot += rc == 0 && gone == 1;
		*last_ts = ts;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

void vt__lmdb_dedup_report(struct lmdb *s, int force)
{
	vt__forgot_report(&s->forgot, force);
}

/*
 * Room for messages comes before dedup entries. A (from, cid) pair only
 * keeps a re-send from being delivered twice, and at thousands of messages
 * a second a week of pairs outgrows any map: kept to the end of their window
 * they would have the store refuse every new message instead. So the pairs
 * may hold half of the store, and less when messages need the room: a
 * storing transaction that finds them over that share, or the store within
 * a margin of its limit, also forgets the oldest pairs, as many as take the
 * pages it is over by on average, but at most FORGET_PER_OP for each op it
 * holds: a stored message with its body takes the room of several pairs.
 * Sweeps are small and steady, and the half left keeps LMDB the free pages
 * it copies into while the store turns over at full speed. The pairs are
 * kept in time order, so forgetting the oldest frees whole pages at once.
 * A batch that does not fit at all makes room in a transaction of its own
 * first (commit_one). The youngest pairs keep a small share whatever
 * messages need (dedup_keep).
 */
#define FORGET_PER_OP 16
#define FORGET_MIN    256

/*
 * Pages the pairs keep even when messages need them: a sixty-fourth of the
 * map, at least the reserve's floor, at most an eighth of what the map may
 * hold. Without it a store full of messages forgot each pair in the
 * transaction that wrote it, for room the pair never took, and a re-send a
 * moment later was delivered again.
 */
static size_t dedup_keep(const struct lmdb *s)
{
	size_t k = s->map_pages / 64 > s->floor ? s->map_pages / 64 : s->floor;

	return k < s->map_limit / 8 ? k : s->map_limit / 8;
}

/*
 * Pages kept free below the limit for a transaction of @nops ops: a
 * thousandth of the map, or, for a large transaction, room for the copies
 * of a few like it, up to a quarter of what the map may hold. An op that
 * stores a message copies a page or two of each tree it writes (an inbox's
 * keys are anywhere), and the pages a commit frees are taken again only
 * once every reader has moved past it, a few commits later.
 */
static size_t dedup_margin(const struct lmdb *s, size_t nops)
{
	size_t m = s->map_pages / 1024 > s->floor ? s->map_pages / 1024 : s->floor;

	m = 8 * nops > m ? 8 * nops : m;
	return m < s->map_limit / 4 ? m : s->map_limit / 4;
}

/*
 * Bytes of the map a pair is counted at, at least. Each pair also costs 16
 * to 32 bytes of memory in the index that finds it (store_lmdb_pairs.c);
 * counted at 64, pairs of the shortest ids (some 33 bytes in the tree) can
 * no longer hold the index to half of the map's size, but a quarter.
 */
#define PAIR_MIN_BYTES 64

/* The pages the pairs take, or are counted at, and how many they are. */
static int dedup_size(struct lmdb *s, MDB_txn *txn, size_t *pages, uint64_t *pairs)
{
	MDB_stat t;
	size_t least;
	int rc = mdb_stat(txn, s->dtime, &t);

	if (rc != 0) {
		*pages = 0;
		*pairs = 0;
		return rc;
	}
	*pages = t.ms_branch_pages + t.ms_leaf_pages + t.ms_overflow_pages;
	*pairs = t.ms_entries;
	least = (size_t)(*pairs * PAIR_MIN_BYTES / s->psize);
	*pages = least > *pages ? least : *pages;
	return 0;
}

/*
 * How many pages the pairs should give up: what takes the store past its
 * @full limit less @margin, or what they hold past half of it; never what
 * takes them below @keep.
 */
static size_t dedup_over(size_t used, size_t full, size_t margin, size_t pages, size_t keep)
{
	size_t over = used + margin > full ? used + margin - full : 0;
	size_t give = pages > keep ? pages - keep : 0;

	if (pages > full / 2 && pages - full / 2 > over) {
		over = pages - full / 2;
	}
	return over < give ? over : give;
}

/* Forget, in @txn, the oldest pairs that take @over of their @pages, at most @max. */
static int dedup_make_room(struct lmdb *s, MDB_txn *txn, size_t over, size_t pages,
                           uint64_t pairs, uint64_t max)
{
	uint64_t want = pairs * over / pages + 1, forgot = 0;
	int64_t last_ts = 0;
	int rc = vt__lmdb_dedup_forget(s, txn, 0, 0, want < max ? want : max, &forgot, &last_ts);

	if (rc == 0 && forgot > 0) {
		vt__forgot_add(&s->forgot, forgot, last_ts);
	}
	return rc;
}

/* Forget, in @txn, up to @max of the oldest pairs, but none of what they keep. */
static int dedup_give(struct lmdb *s, MDB_txn *txn, uint64_t max, uint64_t *forgot,
                      int64_t *last_ts)
{
	size_t pages, keep = dedup_keep(s);
	uint64_t pairs, give;
	int rc = dedup_size(s, txn, &pages, &pairs);

	*forgot = 0;
	if (rc != 0 || pages <= keep) {
		return rc;
	}
	give = pairs * (pages - keep) / pages + 1;
	return vt__lmdb_dedup_forget(s, txn, 0, 0, give < max ? give : max, forgot, last_ts);
}

/*
 * Forget up to @max of the oldest pairs in a transaction of their own,
 * fewer if even that does not fit. Returns how many went.
 */
uint64_t vt__lmdb_dedup_yield(struct lmdb *s, uint64_t max)
{
	uint64_t forgot = 0;
	int64_t last_ts = 0;
	int rc = MDB_MAP_FULL;

	for (; rc == MDB_MAP_FULL && max > 0; max /= 2) {
		MDB_txn *txn = NULL;

		rc = vt__lmdb_wtxn_begin(s, &txn);
		if (rc == 0) {
			rc = vt__lmdb_wtxn_end(s, txn, dedup_give(s, txn, max, &forgot, &last_ts));
		}
	}
	if (rc != 0) {
		return 0;
	}
	if (forgot > 0) {
		vt__forgot_add(&s->forgot, forgot, last_ts);
	}
	return forgot;
}

/*
 * Make room from the pairs in @txn, which holds @nops ops, with @used pages
 * live against a store limit of @full; *@forgot is set when any went.
 */
int vt__lmdb_dedup_bound(struct lmdb *s, MDB_txn *txn, size_t used, size_t full, size_t nops,
                         int *forgot)
{
	size_t over, pages;
	uint64_t pairs;
	int rc = dedup_size(s, txn, &pages, &pairs);

	*forgot = 0;
	if (rc != 0) {
		return rc;
	}
	over = dedup_over(used, full, dedup_margin(s, nops), pages, dedup_keep(s));
	if (over == 0 || pairs == 0) {
		return 0;
	}
	*forgot = 1;
	return dedup_make_room(s, txn, over, pages, pairs,
	                       FORGET_PER_OP * (uint64_t)nops + FORGET_MIN);
}
