/*
 * store_lmdb_journal.c - the journal of held events, in LMDB.
 *
 * In mode "always" the engine holds an event in memory for recipients whose
 * devices keep up, as mode "offline" does, but its PUT leaves a journal
 * entry: the record and who it is held for, one value under the record's
 * id in the tree "journal". That is one write where a stored event makes a
 * record, a delivery per device, the inboxes' counts and a time index entry,
 * and one delete where they would be deleted again when acked. The engine
 * releases the entry once every copy was acked or stored (VT_OP_RELEASE);
 * what a crash leaves behind, replay turns into deliveries at start.
 *
 * Value: the record's encoding (store_lmdb_rec.c), then u32 count of held
 * users, u8 1 when a held device of the sender follows, and the strings,
 * each with its NUL: the users, then that device's user and device id.
 */
#include <errno.h>
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

static size_t str_size(const char *s)
{
	return strlen(s) + 1;
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
	size_t n = str_size(s);

	memcpy(p, s, n);
	return p + n;
}

/* Nonzero when the held recipients of @op can be stored and replayed. */
int vt__journal_valid(const struct vt_op *op)
{
	uint8_t key[VT__INBOX_KEY_MAX];

	if ((op->nheld_users > 0 && !op->held_users) ||
	    (op->nheld_users == 0 && !op->held_own)) {
		return 0;
	}
	for (uint32_t i = 0; i < op->nheld_users; i++) {
		if (!op->held_users[i] || vt__holding_key(op->held_users[i], key) == 0) {
			return 0;
		}
	}
	return !op->held_own || vt__inbox_key(op->held_own, key) != 0;
}

/* The size of @op's entry, or 0 when it does not fit the format. */
static size_t entry_size(const struct vt_op *op, size_t rec)
{
	size_t n = rec + 4 + 1;

	if (rec == 0 || op->nheld_users > UINT32_MAX / VT__INBOX_KEY_MAX) {
		return 0;
	}
	for (uint32_t i = 0; i < op->nheld_users; i++) {
		n += str_size(op->held_users[i]);
	}
	if (op->held_own) {
		n += str_size(op->held_own->user) + str_size(op->held_own->device);
	}
	return n;
}

int vt__lmdb_journal_put(struct lmdb *s, MDB_txn *txn, const struct vt_op *op)
{
	size_t rec = vt__lmdb_rec_size(op->rec), size = entry_size(op, rec);
	uint8_t idk[8], *p;
	MDB_val k = val(idk, 8), v = val(NULL, size);
	int rc;

	if (size == 0) {
		return MDB_BAD_VALSIZE;
	}
	vt__put_be64(idk, op->rec->id);
	rc = mdb_put(txn, s->journal, &k, &v, MDB_RESERVE);
	if (rc != 0) {
		return rc;
	}
	p = v.mv_data;
	vt__lmdb_rec_encode(op->rec, p);
	p += rec;
	put_u32(p, op->nheld_users);
	p[4] = op->held_own != NULL;
	p += 5;
	for (uint32_t i = 0; i < op->nheld_users; i++) {
		p = put_str(p, op->held_users[i]);
	}
	if (op->held_own) {
		p = put_str(p, op->held_own->user);
		put_str(p, op->held_own->device);
	}
	return 0;
}

int vt__lmdb_apply_release(struct lmdb *s, MDB_txn *txn, struct vt_op *op)
{
	uint8_t idk[8];

	vt__put_be64(idk, op->id);
	return vt__lmdb_del_quiet(txn, s->journal, idk, 8);
}

/* ---- replay ---- */

/* A decoded entry: the record, and the op that replays it. */
struct entry {
	struct vt_record rec;
	struct vt_inbox own;
	const char **users;
	struct vt_op op;
};

/* The string at *@p, within @end; NULL when it has no NUL there. */
static const char *take_str(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *s = *p, *nul = memchr(s, 0, (size_t)(end - s));

	if (nul == NULL) {
		return NULL;
	}
	*p = nul + 1;
	return (const char *)s;
}

/* The length of the record encoding at the start of @v, or 0. */
static size_t rec_len(const MDB_val *v)
{
	const uint8_t *p = v->mv_data;
	uint64_t n;

	if (v->mv_size < REC_HEADER) {
		return 0;
	}
	n = (uint64_t)REC_HEADER + get_u32(p + 13) + get_u32(p + 17) + get_u32(p + 21) + 3 +
	    get_u32(p + 25);
	return n + 5 <= v->mv_size ? (size_t)n : 0;
}

/* The users and the sender's device after the record; -1 if malformed. */
static int decode_held(struct entry *en, const uint8_t *p, const uint8_t *end)
{
	uint32_t n = get_u32(p);
	int own = p[4];

	p += 5;
	if (n > (size_t)(end - p) / 2) {
		return -1;
	}
	en->users = calloc(n + 1, sizeof(*en->users));
	if (en->users == NULL) {
		return VT_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		if ((en->users[i] = take_str(&p, end)) == NULL) {
			return -1;
		}
	}
	if (own && ((en->own.user = take_str(&p, end)) == NULL ||
		    (en->own.device = take_str(&p, end)) == NULL)) {
		return -1;
	}
	en->op.users = en->users;
	en->op.nusers = n;
	en->op.also_own = own ? &en->own : NULL;
	return p == end ? 0 : -1;
}

/* Decode the entry of @k, @v into @en; its users must be freed. */
static int decode(struct entry *en, const MDB_val *k, const MDB_val *v)
{
	size_t rlen = rec_len(v);
	MDB_val rv = val(v->mv_data, rlen);

	memset(en, 0, sizeof(*en));
	if (k->mv_size != 8 || rlen == 0 ||
	    vt__lmdb_rec_decode(&rv, vt__get_be64(k->mv_data), &en->rec) != 0) {
		return -1;
	}
	en->op.kind = VT_OP_PUT;
	en->op.rec = &en->rec;
	return decode_held(en, (const uint8_t *)v->mv_data + rlen,
			   (const uint8_t *)v->mv_data + v->mv_size);
}

/*
 * Deliver the entry under @cur and delete it. One that cannot be read is
 * logged and dropped: keeping it would replay it at every start.
 */
static int replay_one(struct lmdb *s, MDB_txn *txn, MDB_cursor *cur, const MDB_val *k,
		      const MDB_val *v)
{
	struct batch b = {0};
	struct entry en;
	int bad = decode(&en, k, v), rc = 0;

	if (bad == VT_ENOMEM) {
		free(en.users);
		return ENOMEM;
	}
	if (bad) {
		vt_log(VT_LOG_ERROR, "lmdb: journal: damaged entry dropped");
	} else {
		rc = vt__lmdb_apply_put(s, txn, &en.op, &b);
	}
	if (!bad && rc == 0 && en.op.status != 0) {
		vt_log(VT_LOG_ERROR, "lmdb: journal: event id=%llu not delivered: %s",
		       (unsigned long long)en.rec.id, vt_strerror(en.op.status));
	}
	vt__lmdb_batch_free(&b);
	free(en.users);
	return rc == 0 ? mdb_cursor_del(cur, 0) : rc;
}

/* Replay up to @per entries in one transaction; *@left when more remain. */
static int replay_txn(struct lmdb *s, int per, uint64_t *done, int *left)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc = vt__lmdb_wtxn_begin(s, &txn), n = 0;

	if (rc == 0) {
		rc = mdb_cursor_open(txn, s->journal, &cur);
	}
	while (rc == 0 && n < per &&
	       (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
		rc = replay_one(s, txn, cur, &k, &v);
		n++;
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
		*done += (uint64_t)n;
	}
	return rc;
}

int vt__lmdb_replay(void *self, uint64_t *events)
{
	struct lmdb *s = self;
	int per = REPLAY_PER_TXN, left = 1, rc = 0;

	*events = 0;
	while ((rc == 0 || (rc == MDB_MAP_FULL && per > 1)) && left) {
		if (rc == MDB_MAP_FULL) {
			per /= 2;
		}
		rc = replay_txn(s, per, events, &left);
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
		vt_log(VT_LOG_INFO, "lmdb: journal: %llu held events delivered from the journal",
		       (unsigned long long)*events);
	}
	return 0;
}
