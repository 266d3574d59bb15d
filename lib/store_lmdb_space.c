/*
 * store_lmdb_space.c - room to write: the headroom kept in the map and
 * the disk blocks reserved under the data file (see store_lmdb.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "store_key.h"
#include "store_lmdb_int.h"

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
int vt__lmdb_batch_stores(const struct vt_op *ops, size_t n, const struct batch *b)
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

/*
 * Log the pairs forgotten before their window ended since the last line,
 * at most once a minute (or now, with @force): how many, and how old the
 * youngest of them was, since a re-send older than that is no longer
 * recognised.
 */
static void report_forgotten(struct lmdb *s, int64_t now, int force)
{
	if (s->early_forgot == 0 || (!force && now - s->dedup_warned < 60000)) {
		return;
	}
	vt_log(VT_LOG_WARN,
	       "lmdb: forgot %llu (sender, client id) pairs before their %llds window to make "
	       "room, the youngest %llds old; an older re-send would be delivered again",
	       (unsigned long long)s->early_forgot, (long long)(s->window / 1000),
	       (long long)((now - s->early_ts) / 1000));
	s->dedup_warned = now;
	s->early_forgot = 0;
	s->early_ts = 0;
}

/* Count @forgot pairs, the youngest from @last_ts, toward the next line. */
static void warn_forgotten(struct lmdb *s, uint64_t forgot, int64_t last_ts)
{
	int64_t now = (int64_t)time(NULL) * 1000;

	if (!vt__within_window(now, last_ts, s->window)) {
		return; /* their window was over: the sweep would have taken them */
	}
	s->early_forgot += forgot;
	s->early_ts = last_ts > s->early_ts ? last_ts : s->early_ts;
	report_forgotten(s, now, 0);
}

void vt__lmdb_dedup_report(struct lmdb *s, int force)
{
	report_forgotten(s, (int64_t)time(NULL) * 1000, force);
}

/*
 * Room for messages comes before dedup entries. A (from, cid) pair only
 * keeps a re-send from being delivered twice, and at thousands of messages
 * a second a week of pairs outgrows any map: kept to the end of their window
 * they would have the store refuse every new message instead. So the pairs
 * may hold half of the store, and less when messages need the room: a
 * storing transaction that finds them over that share, or the store within
 * a margin of its limit, also forgets the oldest pairs, as many as take the
 * pages it is over by on average, but at most about twice what it wrote.
 * Sweeps are small and steady, and the half left keeps LMDB the free pages
 * it copies into while the store turns over at full speed. Forgetting in
 * time order frees the time index's pages at once; the pair tree is only
 * thinned (the oldest pairs are spread over all of it), and new pairs fill
 * the holes. A batch that does not fit at all makes room in a transaction
 * of its own first (commit_one). The youngest pairs keep a small share
 * whatever messages need (dedup_keep).
 */
#define FORGET_MIN 32

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
 * of a few like it, up to a quarter of what the map may hold. Each op copies
 * a page or two (the pair tree's keys are random), and the pages a commit
 * frees are taken again only once every reader has moved past it, a few
 * commits later.
 */
static size_t dedup_margin(const struct lmdb *s, size_t nops)
{
	size_t m = s->map_pages / 1024 > s->floor ? s->map_pages / 1024 : s->floor;

	m = 8 * nops > m ? 8 * nops : m;
	return m < s->map_limit / 4 ? m : s->map_limit / 4;
}

/* The pages of the pair tree and its time index, and the pairs. */
static int dedup_size(struct lmdb *s, MDB_txn *txn, size_t *pages, uint64_t *pairs)
{
	MDB_stat d, t;
	int rc = mdb_stat(txn, s->dedup, &d);

	if (rc == 0) {
		rc = mdb_stat(txn, s->dtime, &t);
	}
	*pages = rc ? 0 : d.ms_branch_pages + d.ms_leaf_pages + t.ms_branch_pages + t.ms_leaf_pages;
	*pairs = rc ? 0 : d.ms_entries;
	return rc;
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
		warn_forgotten(s, forgot, last_ts);
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

		rc = mdb_txn_begin(s->env, NULL, 0, &txn);
		if (rc == 0) {
			rc = dedup_give(s, txn, max, &forgot, &last_ts);
		}
		if (rc == 0) {
			rc = mdb_txn_commit(txn);
		} else if (txn) {
			mdb_txn_abort(txn);
		}
	}
	if (rc != 0) {
		return 0;
	}
	if (forgot > 0) {
		warn_forgotten(s, forgot, last_ts);
	}
	return forgot;
}

/*
 * MDB_MAP_FULL when @txn, which stores (vt__lmdb_batch_stores) and holds
 * @nops ops, would eat into the reserve even once dedup pairs made room.
 */
int vt__lmdb_check_headroom(struct lmdb *s, MDB_txn *txn, size_t nops)
{
	size_t used, limit, full, over, pages = 0;
	uint64_t pairs = 0;
	int rc = pages_used(s, txn, &used);

	if (rc == 0) {
		rc = dedup_size(s, txn, &pages, &pairs);
	}
	if (rc != 0) {
		return rc;
	}
	reserve_disk(s, used);
	limit = page_limit(s);
	/* the disk's limit counts only once the disk is full: it is reserved ahead */
	full = s->disk_full ? limit : s->map_limit;
	over = dedup_over(used, full, dedup_margin(s, nops), pages, dedup_keep(s));
	if (over > 0 && pairs > 0) {
		rc = dedup_make_room(s, txn, over, pages, pairs, 2 * (uint64_t)nops + FORGET_MIN);
		if (rc == 0) {
			rc = pages_used(s, txn, &used);
		}
	}
	return rc ? rc : (used > limit ? MDB_MAP_FULL : 0);
}

/* ---- at open ---- */

/*
 * The reserve is a sixteenth of the map, and at least RESERVE_FLOOR pages:
 * what one engine batch of acks needs to copy its paths in every tree and
 * to save the free list (see the tiny map tests).
 */
int vt__lmdb_set_page_limit(struct lmdb *s)
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
int vt__lmdb_reserve_at_open(struct lmdb *s, const char *path)
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
