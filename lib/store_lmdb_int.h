/*
 * store_lmdb_int.h - what the files of the LMDB backend share.
 *
 * Internal. store_lmdb.c: opening, the vtable and the commit driver.
 * store_lmdb_writer.c: the writer thread that commits while the loop runs.
 * store_lmdb_rec.c: the record encoding and the counts kept per record.
 * store_lmdb_dlv.c: deliveries and devices. store_lmdb_ops.c: how each op
 * of a batch is applied. store_lmdb_space.c: headroom in the map and blocks
 * on the disk. store_lmdb_pairs.c: finding and writing (sender, client id)
 * pairs; store_lmdb_dedup.c: forgetting them. store_lmdb_journal.c: the
 * journal of events held in memory in mode "always".
 * store_lmdb_read.c: list, expire, load_groups and max_id.
 * The layout of the databases is described at the top of store_lmdb.c.
 * Receipts made with acks come from store_receipts.c, shared with memory.
 */
#ifndef VARTALAP_STORE_LMDB_INT_H
#define VARTALAP_STORE_LMDB_INT_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include <vartalap/storage.h>

#include "log_limit.h"
#include "pair_index.h"
#include "store_forgot.h"
#include "store_receipts.h"
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
 * devices, device_time, groups and delivery flags; format 3 keeps the pairs
 * in dedup_time alone, without the tree "dedup" keyed by the pair; format 4
 * counts a record's deliveries in its by_time value, without the tree
 * "rec_count"; format 5 adds the logouts, "revoked" and "revoked_time",
 * format 6 the journal of held events, "journal", and format 7 its entries
 * of several devices, "journal_posts": each so that an older build, which
 * would not see them, does not open it.
 */
#define REC_VERSION    1
#define FORMAT_VERSION VT_LMDB_FORMAT

/* version u8, kind u32, ts 8, four u32 lengths (from, to, cid, body) */
#define REC_HEADER 29

struct vt__release_run;

struct lmdb {
	MDB_env *env;
	MDB_dbi recs, dlv, byrec, bytime, dtime, icnt, meta;
	MDB_dbi devs, devtime, groups;
	MDB_dbi revoked, revtime; /* logouts: store_lmdb_revoke.c */
	MDB_dbi journal;          /* held events: store_lmdb_journal.c */
	MDB_dbi posts;            /* ... held for several devices: store_lmdb_posts.c */
	struct vt__tset targets; /* scratch of a PUT, kept for the next one */
	struct vt__release_run *releases; /* scratch of a run of RELEASEs, kept too */
	uint8_t *post_scratch;            /* of store_lmdb_posts.c, kept too */
	size_t post_scratch_cap;
	struct vt__ik_slot *post_set;
	size_t post_set_cap;
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
	int lock_fd;        /* the directory, locked while the store is open */
	struct vt__pair_index pairs; /* the pairs of dedup_time, by fingerprint */
	struct vt__forgot forgot; /* pairs forgotten early, for the log */
	struct vt__log_limit full_log, part_log; /* batches refused, whole or in part */
	int over_limit;     /* the last commit went past the store's limit (headroom),
			       an MDB_MAP_FULL that is not LMDB's own */

	/*
	 * With a writer thread (NULL: every call completes inside it), the
	 * engine's thread reads through @view: the store as of the last
	 * callback it ran (see store_lmdb_writer.c).
	 */
	struct vt__lmdb_writer *w;
	MDB_txn *view;
};

/* ---- small helpers ---- */

/*
 * val() only takes the address of a key that is often filled after it:
 * told so, GCC stops warning that the key may be read uninitialized.
 */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define VT__ADDRESS_ONLY __attribute__((access(none, 1)))
#else
#define VT__ADDRESS_ONLY
#endif

VT__ADDRESS_ONLY static inline MDB_val val(const void *p, size_t n)
{
	MDB_val v = {n, (void *)p};

	return v;
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* What a batch leaves behind besides its writes, and how it runs. */
struct batch {
	struct vt__out *out; /* out_to arrays, freed after done */
	int grows;           /* a TOUCH, GROUP or REVOKE stored something new */
	int refuse;          /* the store is full: what would grow gets VT_ENOSPC */
	size_t reserved;     /* PUTs that may use the reserve: receipts, and held
				copies written in the room the journal keeps for
				them (store_lmdb_journal.c) */
	uint64_t max_id;     /* the highest id a PUT stored: max_id is raised once */
	struct vt__rcpts rcpts; /* the receipts its acks made, reported until done */
};

/* Free what a batch left behind, once its callback returned or it is run again. */
void vt__lmdb_batch_free(struct batch *b);

/* One engine batch within a write transaction, and its answer. */
struct vt__lmdb_part {
	struct vt_op *ops;
	size_t n;
	struct batch b; /* b.out lives until the batch's callback returned */
	int status;     /* 0, or the error the whole batch failed with */
};

/* Called for each registered device (its inbox key); nonzero stops. */
typedef int (*dev_fn)(void *ctx, const uint8_t *ik, size_t iklen);

/* store_lmdb.c */
int vt__lmdb_write_error(int rc, const char *what);
int vt__lmdb_wtxn_begin(struct lmdb *s, MDB_txn **txn);
int vt__lmdb_wtxn_end(struct lmdb *s, MDB_txn *txn, int rc);
void vt__lmdb_commit_parts(struct lmdb *s, struct vt__lmdb_part *const *parts, size_t np);

/* store_lmdb_writer.c: the writer thread, when the options ask for one */
int vt__lmdb_writer_start(struct lmdb *s);
void vt__lmdb_writer_stop(struct lmdb *s);
int vt__lmdb_writer_fd(const struct lmdb *s);
int vt__lmdb_writer_dispatch(struct lmdb *s);
void vt__lmdb_writer_commit(struct lmdb *s, struct vt_op *ops, size_t n, vt_commit_cb done,
                            void *arg);
void vt__lmdb_writer_expire(struct lmdb *s, int64_t now_ts, int64_t before_ts,
                            int64_t device_before_ts, uint64_t max, vt_expire_cb done, void *arg);
int vt__lmdb_read_begin(struct lmdb *s, MDB_txn **txn);
void vt__lmdb_read_end(struct lmdb *s, MDB_txn *txn);

/* store_lmdb_rec.c */
size_t vt__lmdb_rec_size(const struct vt_record *r);
void vt__lmdb_rec_encode(const struct vt_record *r, uint8_t *p);
int vt__lmdb_rec_decode(const MDB_val *v, uint64_t id, struct vt_record *r);
int vt__lmdb_count_get(MDB_txn *txn, MDB_dbi dbi, MDB_val key, uint32_t *out);
int vt__lmdb_inbox_count_set(struct lmdb *s, MDB_txn *txn, MDB_val key, uint32_t n);
int vt__lmdb_inbox_count_add(struct lmdb *s, MDB_txn *txn, MDB_val key, int delta);
int vt__lmdb_rec_count_get(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, uint32_t *n,
                           int64_t *ts);
int vt__lmdb_rec_count_set(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, int64_t ts,
                           uint32_t n);
int vt__lmdb_rec_release(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, const int64_t *known);
int vt__lmdb_counts_upgrade(struct lmdb *s);
int vt__lmdb_del_quiet(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen);
/*
 * mdb_put of a key that usually sorts after every key of @dbi, as ids and
 * times that only grow do: appended, it fills its page instead of splitting
 * the last one in half. Any other key is put as mdb_put would.
 */
int vt__lmdb_put_last(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags);
int vt__lmdb_rec_delete(struct lmdb *s, MDB_txn *txn, const uint8_t *idk, int64_t ts);

/* store_lmdb_dlv.c */
uint32_t vt__lmdb_dlv_flags(const MDB_val *v);
int vt__lmdb_dlv_remove(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id);
int vt__lmdb_dlv_seek(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                      MDB_cursor **at);
int vt__lmdb_dlv_remove_at(struct lmdb *s, MDB_txn *txn, MDB_cursor *at, const uint8_t *ik,
                           size_t iklen, uint64_t id, const int64_t *ts);
int vt__lmdb_dlv_get(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                     int *exists, uint32_t *flags);
int vt__lmdb_dlv_exists(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                        int *exists);
int vt__lmdb_dlv_put(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                     uint32_t flags);
int vt__lmdb_dlv_add(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen, uint64_t id,
                     uint32_t flags);
int vt__lmdb_dlv_add_counted(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen,
                             uint64_t id, uint32_t count);
int vt__lmdb_devices_each(struct lmdb *s, MDB_txn *txn, const uint8_t *uk, size_t uklen, dev_fn fn,
                          void *ctx);
int vt__lmdb_devices_count(struct lmdb *s, MDB_txn *txn, const char *user, uint32_t *n);
int vt__lmdb_device_set(struct lmdb *s, MDB_txn *txn, const uint8_t *ik, size_t iklen,
                        const int64_t *old_ts, int64_t ts);
int vt__lmdb_claim_holding(struct lmdb *s, MDB_txn *txn, const char *user, const uint8_t *ik,
                           size_t iklen);

/* store_lmdb_ops.c */
int vt__lmdb_apply_touch(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b);
int vt__lmdb_max_id_get(struct lmdb *s, MDB_txn *txn, uint64_t *out);
int vt__lmdb_max_id_raise(struct lmdb *s, MDB_txn *txn, uint64_t id);
int vt__lmdb_apply_put(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b);
/* Start fetching what applying @op will look up first, when it is a PUT. */
void vt__lmdb_put_prefetch(struct lmdb *s, const struct vt_op *op);
int vt__lmdb_apply_ack(struct lmdb *s, MDB_txn *txn, struct vt_op *op);
int vt__lmdb_apply_notified(struct lmdb *s, MDB_txn *txn, struct vt_op *op);
int vt__lmdb_apply_group(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b);

/* store_lmdb_revoke.c */
/* store_lmdb_journal.c */
int vt__journal_valid(const struct vt_op *op);
int vt__lmdb_journal_put(struct lmdb *s, MDB_txn *txn, const struct vt_op *op);
int vt__lmdb_journal_forget(struct lmdb *s, MDB_txn *txn, uint64_t id,
			    const struct vt_inbox *in);
int vt__lmdb_journal_covers(struct lmdb *s, MDB_txn *txn, const struct vt_op *op,
			    int *covers);
int vt__lmdb_apply_release(struct lmdb *s, MDB_txn *txn, struct vt_op *op);

/*
 * The @n RELEASEs at @ops, one after another in a batch, in the order of
 * their keys through one cursor. 0 or an LMDB error; VT_ENOMEM when out of
 * memory, perhaps with some of them applied: the caller applies the first
 * alone and tries the rest again, which a release applied twice allows.
 */
int vt__lmdb_apply_releases(struct lmdb *s, MDB_txn *txn, struct vt_op *ops, size_t n);

/* Free the scratch of vt__lmdb_apply_releases. */
void vt__lmdb_releases_free(struct lmdb *s);
int vt__lmdb_replay(void *self, uint64_t *events);

/*
 * Grow @v, of *@cap elements of @size, to at least @n (doubling from 64):
 * scratch a writer keeps between batches. 0 or VT_ENOMEM, @v unchanged.
 */
int vt__lmdb_grow(void **v, size_t *cap, size_t n, size_t size);

/* store_lmdb_posts.c */

/* A journal key, id BE + inbox key, in a run of releases. */
struct vt__jkey {
	const uint8_t *key;
	size_t len;
	size_t off;  /* in the run's buffer, while it grows; the order they came */
	uint64_t id; /* the key's first 8 bytes */
};

/* Journal PUT @op's held copies, for more than one device, as one entry. */
int vt__lmdb_posts_put(struct lmdb *s, MDB_txn *txn, const struct vt_op *op);

/*
 * Release the @n copies of one event at @keys (one id) from its entry;
 * *@held says whether it had one (else they are entries a copy). 0 or an
 * LMDB error.
 */
int vt__lmdb_posts_release(struct lmdb *s, MDB_txn *txn, const struct vt__jkey *keys, size_t n,
			   int *held);

/* Whether the entry of @id holds the copy for inbox key @ik (@len bytes). */
int vt__lmdb_posts_holds(struct lmdb *s, MDB_txn *txn, uint64_t id, const uint8_t *ik, size_t len,
			 int *holds);

/*
 * Make the deliveries of entry @k, @v (not deleted here); *@copies says
 * how many. A damaged entry is logged and makes none. 0 or an error.
 */
int vt__lmdb_posts_replay_one(struct lmdb *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v,
			      uint64_t *copies);
void vt__lmdb_posts_free(struct lmdb *s);

int vt__lmdb_apply_revoke(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b);
int vt__lmdb_revoked_expire(struct lmdb *s, MDB_txn *txn, int64_t before_ms, uint64_t max);
int vt__lmdb_load_revoked(void *self,
                          void (*each)(void *arg, const struct vt_inbox *scope, int64_t ts),
                          void *arg);

/* store_lmdb_space.c */
int vt__lmdb_batch_stores(const struct vt_op *ops, size_t n, const struct batch *b);
int vt__lmdb_check_headroom(struct lmdb *s, MDB_txn *txn, size_t nops);
int vt__lmdb_set_page_limit(struct lmdb *s);
int vt__lmdb_reserve_at_open(struct lmdb *s, const char *path);

/* store_lmdb_pairs.c: a pair looked up, and what was found */
struct vt__lmdb_pair {
	uint64_t fp; /* its fingerprint */
	int found;   /* the store holds it: */
	int64_t ts;  /* written at */
	uint64_t id; /* for the record */
};

/* Look pair @dk up as @txn, the write transaction, sees it; 0 or an LMDB error. */
int vt__lmdb_pair_find(struct lmdb *s, MDB_txn *txn, const uint8_t *dk, size_t dklen,
                       struct vt__lmdb_pair *p);

/*
 * The same in @txn, a read transaction, while the writer may be inside
 * one of its own that changes the index (vt__pairs_find_committed).
 */
int vt__lmdb_pair_peek(struct lmdb *s, MDB_txn *txn, const uint8_t *dk, size_t dklen,
                       struct vt__lmdb_pair *p);

/* Start fetching what looking pair @dk up will read (vt__pairs_prefetch). */
void vt__lmdb_pair_prefetch(struct lmdb *s, const uint8_t *dk, size_t dklen);

/* Write pair @dk for record @id at @ts, in place of @old as found. */
int vt__lmdb_pair_write(struct lmdb *s, MDB_txn *txn, const uint8_t *dk, size_t dklen,
                        const struct vt__lmdb_pair *old, uint64_t id, int64_t ts);

/* Index the stored pairs, at open; @upgrade drops a format 2 store's pair tree. */
int vt__lmdb_pairs_load(struct lmdb *s, MDB_txn *txn, int upgrade);

/* store_lmdb_dedup.c */
int vt__lmdb_dedup_forget(struct lmdb *s, MDB_txn *txn, int64_t now_ts, int64_t window,
                          uint64_t max, uint64_t *forgot, int64_t *last_ts);
int vt__lmdb_dedup_bound(struct lmdb *s, MDB_txn *txn, size_t used, size_t full, size_t nops,
                         int *forgot);
uint64_t vt__lmdb_dedup_yield(struct lmdb *s, uint64_t max);
void vt__lmdb_dedup_report(struct lmdb *s, int force);

/* store_lmdb_read.c */
void vt__lmdb_list(void *self, const struct vt_inbox *inbox, uint64_t after, uint32_t limit,
                   vt_list_cb done, void *arg);
void vt__lmdb_expire(void *self, int64_t now_ts, int64_t before_ts, int64_t device_before_ts,
                     uint64_t max, vt_expire_cb done, void *arg);
/* Run @scan over a cursor on @dbi in a read transaction; 0, or VT_ESTORAGE
 * logged as a failure to load @what. */
int vt__lmdb_read_tree(struct lmdb *s, MDB_dbi dbi, int (*scan)(MDB_cursor *cur, void *ctx),
                       void *ctx, const char *what);
int vt__lmdb_load_groups(void *self,
                         void (*each)(void *arg, const char *group, const char *data,
                                      size_t len),
                         void *arg);
uint64_t vt__lmdb_max_id(void *self);
int vt__lmdb_dedup_peek(void *self, const struct vt_record *rec, uint64_t *id);

#endif
