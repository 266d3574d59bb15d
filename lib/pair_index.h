/*
 * pair_index.h - the (sender, client id) pairs of a store, in memory.
 *
 * Internal. The LMDB backend keeps each pair on disk in one tree ordered by
 * time, which a commit only appends to and the oldest are forgotten from
 * the front of; this index finds a pair in it. It holds no pair, only a
 * keyed 64-bit fingerprint of the pair and the time it was written, 16
 * bytes; the time and the pair name the one key of the tree that confirms
 * a match. The pairs a client chooses cannot crowd one chain: the hash key
 * is drawn at random when the index is made and never leaves the process.
 *
 * Between vt__pairs_begin and vt__pairs_commit or vt__pairs_rollback the
 * changes are logged, so that the index follows a write transaction that
 * aborts. One thread changes the index; any other may call vt__pairs_find
 * and vt__pairs_find_committed, which wait for no growth of the table.
 *
 * The table grows a little at a time: a full one becomes the old table,
 * and each add after that moves the entries of a few of its slots to the
 * new one, twice its size, until none is left. So no add stalls the thread
 * that changes the index (its commits) for a copy of millions of entries,
 * and the new table's pages are faulted in over many adds. While both
 * exist a lookup probes both: an entry lies in one of them.
 */
#ifndef VARTALAP_PAIR_INDEX_H
#define VARTALAP_PAIR_INDEX_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* A fingerprint and a time. A fingerprint is never 0: 0 marks a free slot. */
struct vt__pair {
	uint64_t fp;
	int64_t ts;
};

struct vt__pair_undo {
	struct vt__pair p;
	int added; /* 1: taken back by removing it; 0: by adding it again */
};

struct vt__pair_index {
	pthread_mutex_t lock;   /* held while the table changes, and by a reader */
	struct vt__pair *slots; /* linear probing from fp & (cap - 1) */
	size_t cap;             /* a power of two, or 0 */
	size_t len;             /* entries in both tables */
	struct vt__pair *old;   /* the table being moved into slots, or NULL */
	size_t old_cap;
	size_t old_next;        /* old's next slot to move; the one before is empty */
	size_t old_left;        /* old's slots not moved yet */
	uint64_t key[2];
	int logging; /* inside begin ... commit or rollback */
	struct vt__pair_undo *undo;
	size_t nundo, undo_cap;
};

/* An empty index with a fresh random key. 0, or VT_EIO when no randomness. */
int vt__pairs_init(struct vt__pair_index *x);

void vt__pairs_free(struct vt__pair_index *x);

/* The fingerprint of the @len bytes at @p. */
uint64_t vt__pairs_fp(const struct vt__pair_index *x, const void *p, size_t len);

/*
 * The times of the entries with fingerprint @fp: up to @max of them copied
 * to @ts; returns how many there are. Several mean pairs whose fingerprints
 * collide, which a random 64-bit key makes about as likely as a 2^-64 event
 * per pair held. Safe from any thread.
 */
size_t vt__pairs_find(struct vt__pair_index *x, uint64_t fp, int64_t *ts, size_t max);

/*
 * As vt__pairs_find, for a reader of the last commit while a transaction
 * may be open: the entries removed since begin count too. Their pairs are
 * still the last commit's, and come back if the transaction aborts; a
 * reader that missed them would take a re-send for a new message. Costs a
 * look at every change since begin.
 */
size_t vt__pairs_find_committed(struct vt__pair_index *x, uint64_t fp, int64_t *ts, size_t max);

/* Make room for @n entries in all, so that adding them moves none. 0, or VT_ENOMEM. */
int vt__pairs_reserve(struct vt__pair_index *x, size_t n);

/* Add an entry. 0, or VT_ENOMEM and nothing changed. */
int vt__pairs_add(struct vt__pair_index *x, uint64_t fp, int64_t ts);

/*
 * Add the @n entries at @p, outside begin ... commit: for loading. Their
 * home slots are fetched from memory together, so a table far larger than
 * the caches loads at the memory's speed rather than one miss at a time.
 * 0, or VT_ENOMEM and nothing changed.
 */
int vt__pairs_load(struct vt__pair_index *x, const struct vt__pair *p, size_t n);

/*
 * Start fetching the slot where entries with fingerprint @fp begin, for a
 * vt__pairs_find a little later. Only on the thread that changes the index.
 */
void vt__pairs_prefetch(const struct vt__pair_index *x, uint64_t fp);

/* Remove one entry equal to (@fp, @ts): 1, 0 when there is none, or VT_ENOMEM. */
int vt__pairs_del(struct vt__pair_index *x, uint64_t fp, int64_t ts);

/* The entries now; under the lock, so any thread may ask. */
size_t vt__pairs_count(struct vt__pair_index *x);

/* Log the changes from here on. */
void vt__pairs_begin(struct vt__pair_index *x);

/* Keep the changes since begin. */
void vt__pairs_commit(struct vt__pair_index *x);

/* Take back the changes since begin, newest first. Never allocates. */
void vt__pairs_rollback(struct vt__pair_index *x);

#endif
