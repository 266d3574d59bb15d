/*
 * store_lmdb_journal.c - the journal of held events, in LMDB.
 *
 * In mode "always" the engine holds an event in memory for devices that
 * keep up, as mode "offline" does, but its PUT leaves a journal entry per
 * held copy: the record, under (id, inbox) in the tree "journal". That is
 * one write a copy where a stored event makes a record, a delivery per
 * device, the inboxes' counts and a time index entry, and one delete where
 * those would be deleted again when acked. The engine releases each entry
 * once its copy was acked or stored (VT_OP_RELEASE), and an ACK of a
 * stored copy takes its entry too; what a crash leaves behind, replay
 * turns into deliveries to exactly those inboxes at start.
 *
 * Key: id BE + inbox key (store_key.h). Value: the record's encoding
 * (store_lmdb_rec.c). A device with several copies of one event (none:
 * the engine holds one copy per device) would share one entry. A PUT that
 * holds copies for several devices, a group post above all, writes its
 * record here under the bare id instead, once, and the devices in the
 * tree "journal_posts" (store_lmdb_posts.c); a release, an ACK and replay
 * look in both trees.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "store_key.h"
#include "store_lmdb_int.h"

/*
 * Entries replayed in one write transaction at first, so that a large
 * journal does not need a transaction as large as itself. A transaction
 * cannot reuse the pages its own deletes free, so on a store filled to its
 * limit fewer are tried at a time, down to one.
 */
#define REPLAY_PER_TXN 1024

/* The entry key of (@id, @in) into @key; its length, or 0. */
static size_t entry_key(uint64_t id, const struct vt_inbox *in, uint8_t *key)
{
	size_t n = vt__inbox_key(in, key + 8);

	vt__put_be64(key, id);
	return n > 0 ? 8 + n : 0;
}

/* Nonzero when the held copies of @op can be stored and replayed. */
int vt__journal_valid(const struct vt_op *op)
{
	uint8_t key[8 + VT__INBOX_KEY_MAX];

	if (op->nheld_to == 0 || !op->held_to) {
		return 0;
	}
	for (uint32_t i = 0; i < op->nheld_to; i++) {
		if (entry_key(op->rec->id, &op->held_to[i], key) == 0) {
			return 0;
		}
	}
	return 1;
}

int vt__lmdb_journal_put(struct lmdb *s, MDB_txn *txn, const struct vt_op *op)
{
	uint8_t key[8 + VT__INBOX_KEY_MAX];
	MDB_val k, v;
	int rc;

	if (op->nheld_to > 1) {
		return vt__lmdb_posts_put(s, txn, op);
	}
	k = val(key, entry_key(op->rec->id, &op->held_to[0], key));
	v = val(NULL, vt__lmdb_rec_size(op->rec));
	rc = vt__lmdb_put_last(txn, s->journal, &k, &v, MDB_RESERVE);
	if (rc == 0) {
		vt__lmdb_rec_encode(op->rec, v.mv_data);
	}
	return rc;
}

/*
 * Whether PUT @op writes only copies that have journal entries: held copies
 * written as their device went offline, or their user stopped keeping up.
 * A full store keeps the room its journal's replay takes
 * (store_lmdb_space.c, journal_room) for just this write, which replay would
 * make after a crash, so such a PUT is not refused for space: the device
 * gets its copy now, not at the next start.
 */
int vt__lmdb_journal_covers(struct lmdb *s, MDB_txn *txn, const struct vt_op *op,
			    int *covers)
{
	uint8_t key[8 + VT__INBOX_KEY_MAX];

	*covers = 0;
	if (op->nto == 0 || op->nusers > 0 || op->also_own || op->journal) {
		return 0;
	}
	for (uint32_t i = 0; i < op->nto; i++) {
		MDB_val k = val(key, entry_key(op->rec->id, &op->to[i], key)), v;
		int holds = 0, rc = k.mv_size > 0 ? mdb_get(txn, s->journal, &k, &v) : MDB_NOTFOUND;

		if (rc == MDB_NOTFOUND && k.mv_size > 0) {
			rc = vt__lmdb_posts_holds(s, txn, op->rec->id, key + 8, k.mv_size - 8, &holds);
			rc = rc != 0 ? rc : holds ? 0 : MDB_NOTFOUND;
		}
		if (rc != 0) {
			return rc == MDB_NOTFOUND ? 0 : rc;
		}
	}
	*covers = 1;
	return 0;
}

/* Release the copy of entry key @key (@n bytes) from whichever tree holds it. */
static int release_key(struct lmdb *s, MDB_txn *txn, const uint8_t *key, size_t n)
{
	struct vt__jkey k = {key, n, 0, vt__get_be64(key)};
	int held, rc = vt__lmdb_posts_release(s, txn, &k, 1, &held);

	return rc != 0 || held ? rc : vt__lmdb_del_quiet(txn, s->journal, key, n);
}

int vt__lmdb_apply_release(struct lmdb *s, MDB_txn *txn, struct vt_op *op)
{
	uint8_t key[8 + VT__INBOX_KEY_MAX];
	size_t n = entry_key(op->id, &op->inbox, key);

	if (n == 0) {
		op->status = VT_EINVAL;
		return 0;
	}
	return release_key(s, txn, key, n);
}

/*
 * A run of releases, sorted by event id, the releases of one event in the
 * order they came. A batch's releases are mostly the acks of a few group
 * posts' members, named in ack order: one event's are applied to its entry
 * together (store_lmdb_posts.c), and entries a copy, in the order of their
 * ids, lie side by side in the tree, each found on the leaf page of the one
 * before (LMDB's cursor looks there before it descends from the root).
 */
struct vt__release_run {
	struct vt__jkey *v;
	size_t cap;
	uint8_t *keys;
	size_t keys_cap;
};

int vt__lmdb_grow(void **v, size_t *cap, size_t n, size_t size)
{
	size_t ncap = *cap ? *cap : 64;
	void *nv;

	if (n <= *cap) {
		return 0;
	}
	while (ncap < n) {
		ncap *= 2;
	}
	nv = realloc(*v, ncap * size);
	if (nv == NULL) {
		return VT_ENOMEM;
	}
	*v = nv;
	*cap = ncap;
	return 0;
}

/* How far ahead run_keys fetches the names of the releases. */
#define RELEASE_AHEAD 8

/* By id, then in the order they came: integers only, where keys' bytes cost a call each. */
static int release_cmp(const void *a, const void *b)
{
	const struct vt__jkey *x = a, *y = b;

	if (x->id != y->id) {
		return x->id < y->id ? -1 : 1;
	}
	return (x->off > y->off) - (x->off < y->off);
}

/*
 * The run's keys in @r, sorted; an op with none a key can hold is answered
 * VT_EINVAL. 0 or VT_ENOMEM.
 */
static int run_keys(struct vt__release_run *r, struct vt_op *ops, size_t n, size_t *m)
{
	size_t off = 0;

	*m = 0;
	if (vt__lmdb_grow((void **)&r->v, &r->cap, n, sizeof(*r->v)) != 0) {
		return VT_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		size_t len, need = off + 8 + VT__INBOX_KEY_MAX;

		/* The names live in the engine's records of the batch, written
		 * on another thread and out of this one's caches. */
		if (i + RELEASE_AHEAD < n) {
			__builtin_prefetch(ops[i + RELEASE_AHEAD].inbox.user);
			__builtin_prefetch(ops[i + RELEASE_AHEAD].inbox.device);
		}

		if (vt__lmdb_grow((void **)&r->keys, &r->keys_cap, need, 1) != 0) {
			return VT_ENOMEM;
		}
		len = entry_key(ops[i].id, &ops[i].inbox, r->keys + off);
		if (len == 0) {
			ops[i].status = VT_EINVAL;
			continue;
		}
		r->v[(*m)++] = (struct vt__jkey){NULL, len, off, ops[i].id};
		off += len;
	}

	/* The keys moved while they grew: point at them only now. */
	for (size_t i = 0; i < *m; i++) {
		r->v[i].key = r->keys + r->v[i].off;
	}
	qsort(r->v, *m, sizeof(*r->v), release_cmp);
	return 0;
}

/* Delete the entry a copy of @k through @cur, if there is one. */
static int del_at(MDB_cursor *cur, const struct vt__jkey *k)
{
	MDB_val kv = val((void *)k->key, k->len), v;
	int rc = mdb_cursor_get(cur, &kv, &v, MDB_SET);

	if (rc == 0) {
		return mdb_cursor_del(cur, 0);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int vt__lmdb_apply_releases(struct lmdb *s, MDB_txn *txn, struct vt_op *ops, size_t n)
{
	struct vt__release_run *r = s->releases;
	MDB_cursor *cur = NULL;
	size_t m;
	int rc;

	if (r == NULL && (r = s->releases = calloc(1, sizeof(*r))) == NULL) {
		return VT_ENOMEM;
	}
	if (run_keys(r, ops, n, &m) != 0) {
		return VT_ENOMEM;
	}

	rc = mdb_cursor_open(txn, s->journal, &cur);
	for (size_t i = 0, j; i < m && rc == 0; i = j) {
		int held = 0;

		/* The releases of one event: out of its entry, if it has one. */
		for (j = i + 1; j < m && r->v[j].id == r->v[i].id; j++) {
		}
		rc = vt__lmdb_posts_release(s, txn, r->v + i, j - i, &held);
		if (held || rc != 0) {
			continue;
		}
		for (size_t x = i; x < j && rc == 0; x++) {
			rc = del_at(cur, &r->v[x]);
		}
	}
	if (cur != NULL) {
		mdb_cursor_close(cur);
	}
	return rc;
}

void vt__lmdb_releases_free(struct lmdb *s)
{
	if (s->releases != NULL) {
		free(s->releases->v);
		free(s->releases->keys);
		free(s->releases);
		s->releases = NULL;
	}
}

/*
 * An ACK removed the delivery of @id to @in: a journal entry of that copy
 * goes in the same transaction. A held copy written as its device went is
 * released only once that write commits (journal.c), and an ack of the
 * stored copy may commit with the write or before the release: the entry
 * would then deliver again, after a crash, a copy whose ack was answered.
 */
int vt__lmdb_journal_forget(struct lmdb *s, MDB_txn *txn, uint64_t id,
			    const struct vt_inbox *in)
{
	uint8_t key[8 + VT__INBOX_KEY_MAX];
	size_t n = entry_key(id, in, key);

	return n > 0 ? release_key(s, txn, key, n) : 0;
}

/* ---- replay ---- */

/* Decode the entry @k, @v into @rec and @in (strings in @user, @device). */
static int decode(const MDB_val *k, const MDB_val *v, struct vt_record *rec,
		  struct vt_inbox *in, char *user, char *device)
{
	const uint8_t *key = k->mv_data;

	if (k->mv_size <= 8 || !vt__inbox_key_clean(key + 8, k->mv_size - 8) ||
	    vt__inbox_key_split(key + 8, k->mv_size - 8, user, device) != 0 ||
	    vt__lmdb_rec_decode(v, vt__get_be64(key), rec) != 0) {
		return -1;
	}
	in->user = user;
	in->device = device;
	return 0;
}

/*
 * Deliver the entry under @cur and delete it; *@stored counts the copy
 * stored. One that cannot be read is logged and dropped: keeping it would
 * replay it at every start.
 */
static int replay_one(struct lmdb *s, MDB_txn *txn, MDB_cursor *cur, const MDB_val *k,
		      const MDB_val *v, uint64_t *stored)
{
	char user[VT__INBOX_KEY_MAX], device[VT__INBOX_KEY_MAX];
	struct vt_record rec;
	struct vt_inbox in;
	struct vt_op op = {.kind = VT_OP_PUT, .rec = &rec, .to = &in, .nto = 1};
	struct batch b = {0};
	int rc = 0;

	if (decode(k, v, &rec, &in, user, device) != 0) {
		vt_log(VT_LOG_ERROR, "lmdb: journal: damaged entry of event id=%llu dropped",
		       (unsigned long long)(k->mv_size >= 8 ? vt__get_be64(k->mv_data) : 0));
		op.status = VT_EINVAL;
	} else {
		rc = vt__lmdb_apply_put(s, txn, &op, &b);
		if (rc == 0 && op.status != 0) {
			vt_log(VT_LOG_ERROR, "lmdb: journal: event id=%llu not delivered to %s/%s: "
			       "%s", (unsigned long long)rec.id, user, device,
			       vt_strerror(op.status));
		}
	}
	*stored += rc == 0 && op.status == 0;
	vt__lmdb_batch_free(&b);
	return rc == 0 ? mdb_cursor_del(cur, 0) : rc;
}

/* Deliver the entry of several devices under @cur and delete it; *@stored counts its copies. */
static int replay_post(struct lmdb *s, MDB_txn *txn, MDB_cursor *cur, const MDB_val *k,
		       const MDB_val *v, uint64_t *stored)
{
	uint64_t copies = 0;
	int rc = vt__lmdb_posts_replay_one(s, txn, k, v, &copies);

	*stored += copies;
	return rc == 0 ? mdb_cursor_del(cur, 0) : rc;
}

/*
 * Replay the entries of tree @dbi, about @per copies in one transaction
 * (an entry's copies are never split; each entry counts one more, so that
 * damaged ones count too); *@left when more remain.
 */
static int replay_txn(struct lmdb *s, MDB_dbi dbi, uint64_t per, uint64_t *done, int *left)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint64_t n = 0, stored = 0;
	int rc = vt__lmdb_wtxn_begin(s, &txn);

	if (rc == 0) {
		rc = mdb_cursor_open(txn, dbi, &cur);
	}
	while (rc == 0 && n < per &&
	       (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
		uint64_t before = stored;

		if (dbi == s->posts) {
			rc = replay_post(s, txn, cur, &k, &v, &stored);
		} else {
			rc = replay_one(s, txn, cur, &k, &v, &stored);
		}
		n += 1 + (stored - before);
	}
	*left = rc != MDB_NOTFOUND;
	if (rc == MDB_NOTFOUND) {
		rc = 0;
	}
	if (cur != NULL) {
		mdb_cursor_close(cur);
	}
	if (txn == NULL) {
		return rc;
	}
	rc = vt__lmdb_wtxn_end(s, txn, rc);
	if (rc == 0) {
		*done += stored;
	}
	return rc;
}

/* Replay every entry of @dbi, in smaller transactions when the store is full. */
static int replay_tree(struct lmdb *s, MDB_dbi dbi, uint64_t *events)
{
	uint64_t per = REPLAY_PER_TXN;
	int left = 1, rc = 0;

	while ((rc == 0 || (rc == MDB_MAP_FULL && per > 1)) && left) {
		if (rc == MDB_MAP_FULL) {
			per /= 2;
		}
		rc = replay_txn(s, dbi, per, events, &left);
	}
	return rc;
}

int vt__lmdb_replay(void *self, uint64_t *events)
{
	struct lmdb *s = self;
	int rc;

	/* The entries of several devices first: their records are in the journal too. */
	*events = 0;
	rc = replay_tree(s, s->posts, events);
	if (rc == 0) {
		rc = replay_tree(s, s->journal, events);
	}
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "lmdb: journal: replay failed: %s", mdb_strerror(rc));
		return VT_ESTORAGE;
	}
	if (s->view != NULL && *events > 0) {
		/* The engine's reads see the deliveries made here. */
		mdb_txn_reset(s->view);
		if (mdb_txn_renew(s->view) != 0) {
			mdb_txn_abort(s->view);
			s->view = NULL;
		}
	}
	if (*events > 0) {
		vt_log(VT_LOG_INFO, "lmdb: journal: %llu held %s stored from the journal",
		       (unsigned long long)*events, *events == 1 ? "copy" : "copies");
	}
	return 0;
}
