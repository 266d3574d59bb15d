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

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

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

/*
 * The pages replaying the journal would take, kept from the start so that
 * replay after a crash, or the write of a held copy as its device goes
 * (vt__lmdb_journal_covers), fits in a full store. An entry, key id +
 * inbox key (IK) and a record of R bytes, is IK + R + 18 bytes with LMDB's
 * node header and pointer. It turns into a record (R + 18), a delivery
 * (IK + 22), a by_record (IK + 18), a by_time (30) and at most one inbox
 * count (IK + 14): no more than three times the entry, R being at least
 * REC_HEADER. Written into the middle of their trees, their pages may be
 * half full: six times the journal's pages in the tree. A record in
 * overflow pages takes as many again as its entry, and its nodes about three
 * times the entry's leaf node (a few bytes more, well within the reserve).
 */
static size_t journal_room(const MDB_stat *st)
{
	return 6 * (st->ms_branch_pages + st->ms_leaf_pages) + st->ms_overflow_pages;
}

/*
 * The same for the entries of several devices (store_lmdb_posts.c), whose
 * records are in the journal and counted above: a device there is its
 * inbox key alone, IK bytes, at least 5 (a user's name has a byte or
 * more), and its replay writes a delivery, a by_record and an inbox count,
 * 3 IK + 54 bytes, with the record's by_time entry 3 IK + 84 at most:
 * under 24 times its share of the entry. Half-full pages again: 48 times
 * the tree's pages, overflow pages included.
 */
static size_t posts_room(const MDB_stat *st)
{
	return 48 * (st->ms_branch_pages + st->ms_leaf_pages + st->ms_overflow_pages);
}

/* Pages held by every tree, as @txn sees them (its own writes included). */
static int pages_used(struct lmdb *s, MDB_txn *txn, size_t *out)
{
	const MDB_dbi all[] = {FREE_DBI,   MAIN_DBI,  s->recs,    s->dlv,     s->byrec,
	                       s->bytime,  s->dtime,  s->icnt,    s->meta,    s->devs,
	                       s->devtime, s->groups, s->revoked, s->revtime, s->journal,
	                       s->posts};
	MDB_stat st;
	size_t n = 2; /* the two meta pages */

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		int rc = mdb_stat(txn, all[i], &st);

		if (rc != 0) {
			return rc;
		}
		n += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
		n += all[i] == s->journal ? journal_room(&st) : 0;
		n += all[i] == s->posts ? posts_room(&st) : 0;
	}
	*out = n;
	return 0;
}

/*
 * Nonzero when the batch stored something new: a PUT that wrote, a device
 * registered, a group state set or a device's first logout. Acks,
 * refreshes, NOTIFIED and group deletes may use the reserve, so space can
 * always be freed, and so may a PUT that wrote journaled copies only (the
 * journal keeps their room: vt__lmdb_journal_covers) or a receipt (it
 * comes with the acks it reports, which free more).
 */
int vt__lmdb_batch_stores(const struct vt_op *ops, size_t n, const struct batch *b)
{
	size_t wrote = 0;

	for (size_t i = 0; i < n; i++) {
		wrote += ops[i].kind == VT_OP_PUT && ops[i].status == 0 && !ops[i].dup_of;
	}
	return wrote > b->reserved || b->grows;
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
 * MDB_MAP_FULL when @txn, which stores (vt__lmdb_batch_stores) and holds
 * @nops ops, would eat into the reserve even once dedup pairs made room
 * (store_lmdb_dedup.c).
 */
int vt__lmdb_check_headroom(struct lmdb *s, MDB_txn *txn, size_t nops)
{
	size_t used, limit, full;
	int forgot = 0, rc = pages_used(s, txn, &used);

	if (rc != 0) {
		return rc;
	}
	reserve_disk(s, used);
	limit = page_limit(s);
	/* the disk's limit counts only once the disk is full: it is reserved ahead */
	full = s->disk_full ? limit : s->map_limit;
	rc = vt__lmdb_dedup_bound(s, txn, used, full, nops, &forgot);
	if (rc == 0 && forgot) {
		rc = pages_used(s, txn, &used);
	}
	s->over_limit = rc == 0 && used > limit;
	return rc ? rc : (s->over_limit ? MDB_MAP_FULL : 0);
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
