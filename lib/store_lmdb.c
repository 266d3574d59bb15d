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
 *   by_time      ts + id BE            -> u32 deliveries left; expiry,
 *                                         oldest first
 *   dedup_time   ts + DK               -> id BE    the (sender, client id)
 *                                         pairs, oldest first; found by
 *                                         fingerprint in memory
 *   inbox_count  IK                    -> u32 deliveries in the inbox
 *   meta         "max_id", "format"    -> u64 BE
 *   devices      IK                    -> ts last seen; the IKs of one user
 *                                         share their first bytes, so a user's
 *                                         devices are one cursor range
 *   device_time  ts + IK               -> (empty)  device expiry, oldest first
 *   groups       group id              -> the group's state blob
 *   revoked      IK                    -> ts (seconds): logouts, a user's
 *                                         scopes one cursor range; device
 *                                         VT_ALL_DEVICES for all of them
 *   revoked_time ts + IK               -> (empty)  logout expiry, oldest first
 *   journal      id BE + IK            -> record: a copy held in memory in
 *                                         mode "always", until released
 *                                         (store_lmdb_journal.c)
 *                id BE                 -> record of an event held for
 *                                         several devices
 *   journal_posts id BE                -> IKs: the devices of that event
 *                                         whose copies are not released
 *                                         (store_lmdb_posts.c)
 *
 * Times are stored with vt__put_ts so byte order is time order. A commit is
 * one write transaction: any LMDB error aborts it, so a batch is written
 * whole or not at all. Callbacks run before the call returns, unless the
 * options ask for a writer thread (store_lmdb_writer.c): commits and expiry
 * then run there, and their callbacks from vt_storage_lmdb_dispatch().
 *
 * Headroom. LMDB copies pages on write, so even a delete needs free pages:
 * a map filled to the last page could not take the acks that would empty
 * it. What would grow the store is therefore refused (VT_ENOSPC, op by op)
 * once the live pages would pass the map size less a reserve; acks, expiry,
 * a user's first device and a logout of all of a user's devices may use the
 * reserve. The same holds for the disk: the data file's blocks are reserved
 * ahead of use (fallocate), and when the disk has no more, the store is
 * held at what it has, so the pages an ack copies into always have blocks
 * under them.
 *
 * The backend's other files, one concern each, are listed in store_lmdb_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "store_key.h"
#include "store_lmdb_int.h"

/* Map an LMDB failure of a write to the error a caller sees. */
int vt__lmdb_write_error(int rc, const char *what)
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

/* ---- commit ---- */

static int apply_op(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b)
{
	switch (op->kind) {
	case VT_OP_PUT:
		return vt__lmdb_apply_put(s, txn, op, b);
	case VT_OP_ACK:
		return vt__lmdb_apply_ack(s, txn, op);
	case VT_OP_TOUCH:
		return vt__lmdb_apply_touch(s, txn, op, b);
	case VT_OP_NOTIFIED:
		return vt__lmdb_apply_notified(s, txn, op);
	case VT_OP_GROUP:
		return vt__lmdb_apply_group(s, txn, op, b);
	case VT_OP_REVOKE:
		return vt__lmdb_apply_revoke(s, txn, op, b);
	case VT_OP_RELEASE:
		return vt__lmdb_apply_release(s, txn, op);
	}
	op->status = VT_EINVAL;
	return 0;
}

/* How many ops from @ops on, at most @n, are RELEASEs. */
static size_t releases_at(const struct vt_op *ops, size_t n)
{
	size_t k = 0;

	while (k < n && ops[k].kind == VT_OP_RELEASE) {
		k++;
	}
	return k;
}

/*
 * Ops ahead of the one applied whose pair lookups are started: the pairs'
 * index is far larger than the caches, and a lookup is a miss to memory
 * that an op's other work can hide.
 */
#define PREFETCH_AHEAD 4

static int apply_ops(struct lmdb *s, MDB_txn *txn, struct vt_op *ops, size_t n, struct batch *b)
{
	int rc = 0;

	for (size_t i = 0; i < n && i < PREFETCH_AHEAD; i++) {
		vt__lmdb_put_prefetch(s, &ops[i]);
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t run = releases_at(ops + i, n - i);

		if (i + PREFETCH_AHEAD < n) {
			vt__lmdb_put_prefetch(s, &ops[i + PREFETCH_AHEAD]);
		}

		/* Releases in a row go together, in the order of their keys:
		 * they delete only, so that order is as good as the batch's. */
		if (run > 1) {
			for (size_t j = i; j < i + run; j++) {
				vt__op_reset(&ops[j]);
			}
			rc = vt__lmdb_apply_releases(s, txn, ops + i, run);
			if (rc != VT_ENOMEM) {
				i += run - 1;
				continue;
			}
			rc = 0;
		}
		vt__op_reset(&ops[i]);
		rc = apply_op(s, txn, &ops[i], b);
	}
	return rc;
}

void vt__lmdb_batch_free(struct batch *b)
{
	vt__out_free(b->out);
	vt__rcpts_free(&b->rcpts);
	memset(b, 0, sizeof(*b));
}

/*
 * The receipts the batch's acks owe (storage.h, VT_OP_ACK), each stored
 * by a PUT of its own after the batch's ops. A full store takes them too:
 * each comes with an ack, which may always run, and nothing would make it
 * again. An LMDB error, or running out of memory, aborts the transaction.
 */
static int store_receipts(struct lmdb *s, MDB_txn *txn, struct vt_op *ops, size_t n,
			  struct batch *b)
{
	int refuse = b->refuse, rc = vt__rcpts_build(ops, n, &b->rcpts);

	b->refuse = 0;
	for (size_t i = 0; i < b->rcpts.n && rc == 0; i++) {
		struct vt__rcpt *r = b->rcpts.v[i];
		struct vt_op put;

		vt__rcpt_put_op(r, &put);
		rc = vt__lmdb_apply_put(s, txn, &put, b);
		if (rc == 0 && put.status != 0) {
			/* Only input the engine never stores is refused (a sender
			 * no inbox can hold): the acks must go on regardless. */
			vt_log(VT_LOG_ERROR, "lmdb: receipt id=%llu to=%s not storable: %s",
			       (unsigned long long)r->rec.id, r->rec.to, vt_strerror(put.status));
		} else if (rc == 0) {
			vt__rcpt_report(ops, r, &put);
		}
	}
	b->refuse = refuse;
	return rc == VT_ENOMEM ? ENOMEM : rc;
}

/* A batch that failed reports no routing: its out_to arrays describe nothing. */
static void clear_out(struct vt_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ops[i].out_to = NULL;
		ops[i].out_nto = 0;
		ops[i].out_receipt = NULL;
		ops[i].out_receipt_id = 0;
	}
}

/* Begin a write transaction; the pair index logs its changes until it ends. */
int vt__lmdb_wtxn_begin(struct lmdb *s, MDB_txn **txn)
{
	int rc = mdb_txn_begin(s->env, NULL, 0, txn);

	if (rc == 0) {
		vt__pairs_begin(&s->pairs);
	}
	return rc;
}

/*
 * Commit @txn when @rc is 0, else abort it; the pair index keeps its
 * changes or takes them back to match. Returns the outcome.
 */
int vt__lmdb_wtxn_end(struct lmdb *s, MDB_txn *txn, int rc)
{
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
	} else {
		mdb_txn_abort(txn);
	}
	if (rc == 0) {
		vt__pairs_commit(&s->pairs);
	} else {
		vt__pairs_rollback(&s->pairs);
	}
	return rc;
}

/*
 * One try at @np batches in one write transaction, what would grow the store
 * refused when @refuse; an LMDB error or 0. max_id is raised once for all.
 */
static int commit_txn(struct lmdb *s, struct vt__lmdb_part *const *parts, size_t np, int refuse)
{
	MDB_txn *txn = NULL;
	uint64_t max_id = 0;
	size_t nops = 0;
	int stores = 0, rc = vt__lmdb_wtxn_begin(s, &txn);

	if (rc != 0) {
		return rc;
	}
	s->over_limit = 0;
	for (size_t i = 0; i < np && rc == 0; i++) {
		struct vt__lmdb_part *p = parts[i];

		vt__lmdb_batch_free(&p->b);
		p->b.refuse = refuse;
		rc = apply_ops(s, txn, p->ops, p->n, &p->b);
		if (rc == 0) {
			rc = store_receipts(s, txn, p->ops, p->n, &p->b);
		}
		max_id = p->b.max_id > max_id ? p->b.max_id : max_id;
		stores |= vt__lmdb_batch_stores(p->ops, p->n, &p->b);
		nops += p->n;
	}
	if (rc == 0) {
		rc = vt__lmdb_max_id_raise(s, txn, max_id);
	}
	if (rc == 0 && stores) {
		rc = vt__lmdb_check_headroom(s, txn, nops);
	}
	return vt__lmdb_wtxn_end(s, txn, rc);
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

/* Times a batch that does not fit has pairs make room and is tried again. */
#define YIELD_TRIES 4

/*
 * Commit one batch and set its status. When it does not fit, the oldest
 * dedup pairs make room first (store_lmdb_dedup.c) and it is tried again,
 * with four times as many gone each time, while any are left to give.
 * A full store must still take acks, since they are what frees it. So when
 * the batch still does not fit, it runs again with whatever would grow the
 * store refused op by op (VT_ENOSPC), and the rest is committed. The batch
 * fails whole only when nothing of it is left to write, or when even that
 * does not fit.
 */
static void commit_one(struct lmdb *s, struct vt__lmdb_part *p)
{
	uint64_t give = 4 * (uint64_t)p->n + 256;
	int rc = commit_txn(s, &p, 1, 0), over_limit;

	for (int i = 0; i < YIELD_TRIES && rc == MDB_MAP_FULL; i++, give *= 4) {
		if (vt__lmdb_dedup_yield(s, give) == 0) {
			break;
		}
		rc = commit_txn(s, &p, 1, 0);
	}
	over_limit = s->over_limit;
	if (rc == MDB_MAP_FULL) {
		rc = commit_txn(s, &p, 1, 1);
		if (rc == 0 && all_refused(p->ops, p->n)) {
			rc = MDB_MAP_FULL;
		} else if (rc == 0) {
			vt__log_limited(&s->part_log, VT_LOG_WARN, "lmdb: commit: storage full; "
			                "what would grow it was refused, the rest committed");
		}
	}
	if (rc != 0) {
		clear_out(p->ops, p->n);
	}
	if (rc == MDB_MAP_FULL) {
		/* as often as senders try: one line a second */
		vt__log_limited(&s->full_log, VT_LOG_WARN, "lmdb: commit: storage full (%s)",
		                over_limit ? "past the store's limit, less the room kept for "
		                "acks and held copies" : mdb_strerror(rc));
		p->status = VT_ENOSPC;
		return;
	}
	p->status = rc ? vt__lmdb_write_error(rc, "commit") : 0;
}

/*
 * Commit @np batches, in order, as one transaction: one sync for all. When
 * that fails (a full store, an error), each is committed alone as above, so
 * every batch gets the answer it would have had by itself.
 */
void vt__lmdb_commit_parts(struct lmdb *s, struct vt__lmdb_part *const *parts, size_t np)
{
	if (np > 1 && commit_txn(s, parts, np, 0) == 0) {
		for (size_t i = 0; i < np; i++) {
			parts[i]->status = 0;
		}
		return;
	}
	for (size_t i = 0; i < np; i++) {
		commit_one(s, parts[i]);
	}
}

static void lmdb_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	struct lmdb *s = self;
	struct vt__lmdb_part p = {ops, n, {.out = NULL}, 0};
	struct vt__lmdb_part *one = &p;

	if (s->w) {
		vt__lmdb_writer_commit(s, ops, n, done, arg);
		return;
	}
	vt__lmdb_commit_parts(s, &one, 1);
	done(arg, p.status);
	vt__lmdb_batch_free(&p.b);
}

/* ---- lifetime ---- */

static void lmdb_expire(void *self, int64_t now_ts, int64_t before_ts, int64_t device_before_ts,
                        uint64_t max, vt_expire_cb done, void *arg)
{
	struct lmdb *s = self;

	if (s->w) {
		vt__lmdb_writer_expire(s, now_ts, before_ts, device_before_ts, max, done, arg);
		return;
	}
	vt__lmdb_expire(s, now_ts, before_ts, device_before_ts, max, done, arg);
}

static void lmdb_destroy(void *self)
{
	struct lmdb *s = self;

	if (!s) {
		return;
	}
	if (s->w) {
		vt__lmdb_writer_stop(s);
	}
	vt__lmdb_dedup_report(s, 1);
	mdb_env_close(s->env);
	vt__pairs_free(&s->pairs);
	close(s->lock_fd); /* after the store is closed: the next owner finds it whole */
	vt__tset_free(&s->targets);
	vt__lmdb_releases_free(s);
	vt__lmdb_posts_free(s);
	free(s);
}

/* The pairs the index holds (under its lock), and those forgotten early. */
static void lmdb_pairs(void *self, struct vt_storage_pairs *out)
{
	struct lmdb *s = self;

	out->kept = vt__pairs_count(&s->pairs);
	out->forgotten = vt__forgot_total(&s->forgot);
}

static const struct vt_storage_ops lmdb_ops = {
        .commit = lmdb_commit,
        .list = vt__lmdb_list,
        .expire = lmdb_expire,
        .load_groups = vt__lmdb_load_groups,
        .max_id = vt__lmdb_max_id,
        .destroy = lmdb_destroy,
        .dedup_peek = vt__lmdb_dedup_peek,
        .pairs = lmdb_pairs,
        .load_revoked = vt__lmdb_load_revoked,
        .replay = vt__lmdb_replay,
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
 * newer one; *@upgrade is set for an older one. Format 1 needs nothing
 * else: its empty delivery values read as no flags, and it had no devices
 * or groups to convert. Formats 1 and 2 also drop their pair tree when the
 * pairs are indexed (vt__lmdb_pairs_load); formats 1 to 3 move their
 * records' counts into by_time after this transaction
 * (vt__lmdb_counts_upgrade). The format is raised first, so that an older
 * build never opens a store part way through.
 */
static int check_format(struct lmdb *s, MDB_txn *txn, int *upgrade)
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
	if (version >= 1 && version < FORMAT_VERSION) {
		vt_log(VT_LOG_INFO, "lmdb: upgrading storage format %llu to %d",
		       (unsigned long long)version, FORMAT_VERSION);
		*upgrade = 1;
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
	        {"records", &s->recs},     {"deliveries", &s->dlv},   {"by_record", &s->byrec},
	        {"by_time", &s->bytime},   {"dedup_time", &s->dtime}, {"inbox_count", &s->icnt},
	        {"meta", &s->meta},        {"devices", &s->devs},     {"device_time", &s->devtime},
	        {"groups", &s->groups},    {"revoked", &s->revoked},  {"revoked_time", &s->revtime},
	        {"journal", &s->journal},  {"journal_posts", &s->posts},
	};
	MDB_txn *txn = NULL;
	int upgrade = 0, rc = mdb_txn_begin(s->env, NULL, 0, &txn);

	for (size_t i = 0; rc == 0 && i < sizeof(t) / sizeof(t[0]); i++) {
		rc = mdb_dbi_open(txn, t[i].name, MDB_CREATE, t[i].dbi);
	}
	if (rc == 0) {
		rc = check_format(s, txn, &upgrade);
	}
	if (rc == 0) {
		rc = vt__lmdb_pairs_load(s, txn, upgrade);
	}
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		return rc ? rc : vt__lmdb_counts_upgrade(s);
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
 * Claim directory @path for this backend: an exclusive lock on the directory
 * itself, held while the backend is open. Two backends on one store would
 * hand out the same server ids from the largest each read at start, and one's
 * records would overwrite the other's. The lock goes with the process, so a
 * crash leaves nothing to clean up; and being the directory's own, it leaves
 * no file that could be removed (taken for a stale lock) to let a second
 * backend in, or be replaced by a link, and it needs no write access. The
 * descriptor, or -1 with *@err VT_EBUSY (held by another) or VT_EIO, logged.
 */
static int lock_dir(const char *path, int *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		vt_log(VT_LOG_ERROR, "lmdb: cannot open %s: %s", path, strerror(errno));
		*err = VT_EIO;
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			vt_log(VT_LOG_ERROR, "lmdb: %s is in use by another process or store",
			       path);
			*err = VT_EBUSY;
		} else {
			vt_log(VT_LOG_ERROR, "lmdb: cannot lock %s: %s", path, strerror(errno));
			*err = VT_EIO;
		}
		close(fd);
		return -1;
	}
	return fd;
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
	s->lock_fd = lock_dir(opts->path, &rc);
	if (s->lock_fd < 0) {
		free(s);
		return rc;
	}
	s->window = opts->dedup_window_ms ? opts->dedup_window_ms : DEFAULT_DEDUP_MS;
	s->forgot = (struct vt__forgot){.who = "lmdb", .window = s->window};
	rc = vt__pairs_init(&s->pairs);
	if (rc != 0) {
		close(s->lock_fd);
		free(s);
		return rc;
	}
	rc = open_env(s, opts);
	if (rc == 0) {
		rc = vt__lmdb_set_page_limit(s);
	}
	if (rc == 0) {
		rc = vt__lmdb_reserve_at_open(s, opts->path);
	}
	if (rc == 0 && opts->writer_thread) {
		rc = vt__lmdb_writer_start(s);
	}
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "lmdb: cannot open %s: %s", opts->path, mdb_strerror(rc));
		mdb_env_close(s->env);
		vt__pairs_free(&s->pairs);
		close(s->lock_fd);
		free(s);
		return VT_EIO;
	}
	out->ops = &lmdb_ops;
	out->self = s;
	return 0;
}

/* The LMDB backend behind @st, or NULL when it is another. */
static struct lmdb *lmdb_of(const struct vt_storage *st)
{
	return st && st->ops == &lmdb_ops ? st->self : NULL;
}

int vt_storage_lmdb_fd(const struct vt_storage *st)
{
	struct lmdb *s = lmdb_of(st);

	return s && s->w ? vt__lmdb_writer_fd(s) : -1;
}

int vt_storage_lmdb_dispatch(const struct vt_storage *st)
{
	struct lmdb *s = lmdb_of(st);

	return s && s->w ? vt__lmdb_writer_dispatch(s) : 0;
}
