/*
 * store_lmdb_ops.c - applying each op of a batch inside its write
 * transaction: TOUCH, PUT, ACK, NOTIFIED and GROUP.
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
#include "store_targets.h"

/* ---- TOUCH ---- */

/*
 * Register or refresh a device. A clock that went back must not make a
 * device look older than it was, so last-seen never decreases. A user's
 * first device adds only its registry rows and moves the held deliveries
 * to itself, so it may use the reserve; a further device grows the store.
 */
int vt__lmdb_apply_touch(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b)
{
	uint8_t ik[VT__INBOX_KEY_MAX];
	size_t iklen = vt__inbox_key(&op->inbox, ik);
	MDB_val k = val(ik, iklen), v;
	int64_t old;
	uint32_t n = 0;
	int rc;

	if (!vt__touch_valid(op)) {
		op->status = VT_EINVAL;
		return 0;
	}
	rc = mdb_get(txn, s->devs, &k, &v);
	if (rc == 0) {
		old = v.mv_size == 8 ? vt__get_ts(v.mv_data) : INT64_MIN;
		rc = op->ts > old ? vt__lmdb_device_set(s, txn, ik, iklen, &old, op->ts) : 0;
		return rc ? rc : vt__lmdb_devices_count(s, txn, op->inbox.user, &op->out_ndevices);
	}
	if (rc == MDB_NOTFOUND) {
		rc = vt__lmdb_devices_count(s, txn, op->inbox.user, &n);
	}
	if (rc == 0 && n > 0 && b->refuse) {
		op->status = VT_ENOSPC;
		return 0;
	}
	if (rc == 0) {
		rc = vt__lmdb_device_set(s, txn, ik, iklen, NULL, op->ts);
	}
	if (rc == 0 && n == 0) {
		rc = vt__lmdb_claim_holding(s, txn, op->inbox.user, ik, iklen);
	}
	b->grows |= n > 0;
	op->out_ndevices = n + 1;
	return rc;
}

/* ---- PUT ---- */

/*
 * Tags of the target set: whose the inbox is, what it holds before the PUT
 * (probed once: its count is the target's value), and whether it got the
 * record.
 */
#define T_RECIPIENT 0
#define T_OWN       1
#define T_NEW       2
#define T_HAS       4 /* holds a delivery of this record already */
#define T_FULL      8 /* at the inbox cap without it */

static int put_valid(const struct vt_op *op)
{
	if (!op->rec || op->rec->id == 0) {
		return 0;
	}
	if ((op->rec->body_len > 0 && !op->rec->body) || vt__lmdb_rec_size(op->rec) == 0) {
		return 0;
	}
	return vt__put_inboxes_valid(op) && (!op->journal || vt__journal_valid(op));
}

/* The dedup key of @op into @dk; 0 when the PUT does not dedup. */
static size_t put_dedup_key(const struct vt_op *op, uint8_t *dk)
{
	return op->dedup && op->rec->cid && op->rec->cid[0] ? vt__dedup_key(op->rec, dk) : 0;
}

void vt__lmdb_put_prefetch(struct lmdb *s, const struct vt_op *op)
{
	uint8_t dk[VT__DEDUP_KEY_MAX];
	size_t dklen = op->kind == VT_OP_PUT && op->rec ? put_dedup_key(op, dk) : 0;

	if (dklen > 0) {
		vt__lmdb_pair_prefetch(s, dk, dklen);
	}
}

/*
 * Look up the pair (from, cid) of @op, key @dk, into @pair, and set
 * op->dup_of when it names another record inside the window. With @insert
 * a pair not known yet is written at once, and *written set: for a PUT
 * that names no inbox (mode offline's held event), which nothing after
 * this can refuse.
 */
static int put_dedup_check(struct lmdb *s, MDB_txn *txn, struct vt_op *op, const uint8_t *dk,
                           size_t dklen, struct vt__lmdb_pair *pair, int insert, int *written)
{
	int rc;

	*written = 0;
	if (dklen == 0) {
		return 0;
	}
	rc = vt__lmdb_pair_find(s, txn, dk, dklen, pair);
	if (rc != 0) {
		return rc;
	}
	if (pair->found && pair->id != op->rec->id &&
	    vt__within_window(op->rec->ts, pair->ts, s->window)) {
		op->dup_of = pair->id;
		return 0;
	}
	if (!insert) {
		return 0;
	}
	*written = 1;
	return vt__lmdb_pair_write(s, txn, dk, dklen, pair, op->rec->id, op->rec->ts);
}

/* Gathers devices into the target set. */
struct gather {
	struct vt__tset *t;
	uint8_t tag;
	const uint8_t *skip; /* an inbox key to leave out, or NULL */
	size_t skiplen;
	uint32_t seen;
};

static int gather_device(void *ctx, const uint8_t *ik, size_t iklen)
{
	struct gather *g = ctx;

	if (g->skip && iklen == g->skiplen && memcmp(ik, g->skip, iklen) == 0) {
		return 0;
	}
	g->seen++;
	return vt__tset_add(g->t, ik, iklen, g->tag) < 0 ? ENOMEM : 0;
}

/* A user's devices, or its holding inbox when it has none. */
static int gather_user(struct lmdb *s, MDB_txn *txn, struct gather *g, const char *user)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__user_key(user, key);
	int rc;

	g->seen = 0;
	rc = vt__lmdb_devices_each(s, txn, key, klen, gather_device, g);
	if (rc != 0 || g->seen > 0) {
		return rc;
	}
	return vt__tset_add(g->t, key, vt__holding_key(user, key), T_RECIPIENT) < 0 ? ENOMEM : 0;
}

/*
 * Gather every inbox @op reaches into s->targets, each once: recipients
 * first (to, then users), so an inbox both names counts as a recipient.
 */
static int put_targets(struct lmdb *s, MDB_txn *txn, const struct vt_op *op)
{
	uint8_t key[VT__INBOX_KEY_MAX], own[VT__INBOX_KEY_MAX];
	struct gather g = {&s->targets, T_RECIPIENT, NULL, 0, 0};
	int rc = 0;

	vt__tset_clear(g.t);
	for (uint32_t i = 0; i < op->nto && rc == 0; i++) {
		rc = vt__tset_add(g.t, key, vt__inbox_key(&op->to[i], key), T_RECIPIENT) < 0;
	}
	if (rc != 0) {
		return ENOMEM;
	}
	for (uint32_t i = 0; i < op->nusers && rc == 0; i++) {
		rc = gather_user(s, txn, &g, op->users[i]);
	}
	if (rc == 0 && op->also_own) {
		g.tag = T_OWN;
		g.skip = own;
		g.skiplen = vt__inbox_key(op->also_own, own);
		rc = vt__lmdb_devices_each(s, txn, key, vt__user_key(op->also_own->user, key),
		                           gather_device, &g);
	}
	return rc;
}

/*
 * Read what each target holds before the PUT: whether it has this record
 * (only possible when the record is @stored already) and, if not, how many
 * deliveries, against the cap. Each inbox is read once, and the count is
 * what the new delivery adds to.
 */
static int put_probe(struct lmdb *s, MDB_txn *txn, const struct vt_op *op, int stored)
{
	struct vt__tset *t = &s->targets;
	int exists = 0, rc = 0;

	for (uint32_t i = 0; i < t->n && rc == 0; i++) {
		size_t iklen;
		const uint8_t *ik = vt__tset_key(t, i, &iklen);

		if (stored) {
			rc = vt__lmdb_dlv_exists(s, txn, ik, iklen, op->rec->id, &exists);
		}
		if (rc != 0 || exists) {
			t->tag[i] |= exists ? T_HAS : 0;
			continue;
		}
		rc = vt__lmdb_count_get(txn, s->icnt, val(ik, iklen), &t->val[i]);
		if (rc == 0 && op->inbox_cap > 0 && t->val[i] >= op->inbox_cap) {
			t->tag[i] |= T_FULL;
		}
	}
	return rc;
}

/* Nonzero when a recipient that needs a new delivery is full, unless full ones are skipped. */
static int put_full(const struct vt_op *op, const struct vt__tset *t)
{
	for (uint32_t i = 0; !op->cap_skip && i < t->n; i++) {
		if ((t->tag[i] & (T_OWN | T_HAS | T_FULL)) == T_FULL) {
			return 1;
		}
	}
	return 0;
}

/* Store the record itself and its by_time entry, which counts its @n deliveries. */
static int rec_store(struct lmdb *s, MDB_txn *txn, const struct vt_record *r, const uint8_t *idk,
                     uint32_t n)
{
	MDB_val k = val(idk, 8), v = {vt__lmdb_rec_size(r), NULL};
	int rc = vt__lmdb_put_last(txn, s->recs, &k, &v, MDB_RESERVE);

	if (rc != 0) {
		return rc;
	}
	vt__lmdb_rec_encode(r, v.mv_data);
	return vt__lmdb_rec_count_set(s, txn, idk, r->ts, n);
}

/*
 * Add the deliveries of @op that do not exist yet, to inboxes not full,
 * storing the record if new (@n deliveries of it so far, since @ts).
 */
static int put_deliveries(struct lmdb *s, MDB_txn *txn, struct vt_op *op, uint32_t n, int64_t ts)
{
	struct vt__tset *t = &s->targets;
	uint8_t idk[8];
	uint32_t added = 0;
	int rc = 0;

	for (uint32_t i = 0; i < t->n && rc == 0; i++) {
		size_t iklen;
		const uint8_t *ik = vt__tset_key(t, i, &iklen);

		if (t->tag[i] & T_HAS) {
			continue;
		}
		if (t->tag[i] & T_FULL) {
			op->out_skipped += (t->tag[i] & T_OWN) == 0;
			continue;
		}
		t->tag[i] |= T_NEW;
		added++;
		rc = vt__lmdb_dlv_add_counted(s, txn, ik, iklen, op->rec->id, t->val[i]);
	}
	if (rc != 0 || added == 0) {
		return rc;
	}
	vt__put_be64(idk, op->rec->id);
	if (n == 0) {
		return rec_store(s, txn, op->rec, idk, added);
	}
	return vt__lmdb_rec_count_set(s, txn, idk, ts, n + added);
}

/* Fill out_to with the targets that got a new delivery. */
static int put_out(struct lmdb *s, struct vt_op *op, struct vt__out **chain)
{
	const struct vt__tset *t = &s->targets;
	uint32_t n = 0;
	size_t bytes = 0, klen;
	struct vt__out *o;

	for (uint32_t i = 0; i < t->n; i++) {
		if (t->tag[i] & T_NEW) {
			vt__tset_key(t, i, &klen);
			bytes += klen;
			n++;
		}
	}
	if (n == 0) {
		return 0;
	}
	o = vt__out_new(chain, n, bytes);
	if (!o) {
		return ENOMEM;
	}
	for (uint32_t i = 0; i < t->n; i++) {
		const uint8_t *k = vt__tset_key(t, i, &klen);

		if (t->tag[i] & T_NEW) {
			vt__out_push(o, k, klen);
		}
	}
	op->out_to = o->v;
	op->out_nto = o->n;
	return 0;
}

int vt__lmdb_max_id_get(struct lmdb *s, MDB_txn *txn, uint64_t *out)
{
	MDB_val k = val("max_id", 6), v;
	int rc = mdb_get(txn, s->meta, &k, &v);

	*out = 0;
	if (rc == 0 && v.mv_size == 8) {
		*out = vt__get_be64(v.mv_data);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Raise the stored max_id to @id; once per transaction, for all its PUTs. */
int vt__lmdb_max_id_raise(struct lmdb *s, MDB_txn *txn, uint64_t id)
{
	uint8_t buf[8];
	MDB_val k = val("max_id", 6), v = val(buf, 8);
	uint64_t cur;
	int rc = id ? vt__lmdb_max_id_get(s, txn, &cur) : 0;

	if (rc != 0 || id <= cur) {
		return rc;
	}
	vt__put_be64(buf, id);
	return mdb_put(txn, s->meta, &k, &v, 0);
}

/*
 * Apply one PUT. Returns an LMDB error (the batch then aborts) or 0. On a
 * full store a PUT that would write is refused; a duplicate is still
 * answered, so a sender retrying what was accepted learns its id. The
 * record's count is read first: a record not stored yet has no delivery
 * anywhere, so no inbox needs to be asked for one.
 */
int vt__lmdb_apply_put(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b)
{
	uint8_t dk[VT__DEDUP_KEY_MAX], idk[8];
	struct vt__lmdb_pair pair;
	size_t dklen;
	uint32_t n = 0;
	int64_t ts = 0;
	int pair_only, written, covered, rc;

	if (!put_valid(op)) {
		op->status = VT_EINVAL;
		return 0;
	}
	dklen = put_dedup_key(op, dk);
	pair_only = op->nto == 0 && op->nusers == 0 && !op->also_own && !b->refuse;
	rc = put_dedup_check(s, txn, op, dk, dklen, &pair, pair_only, &written);
	if (rc != 0 || op->dup_of) {
		return rc;
	}
	vt__put_be64(idk, op->rec->id);
	rc = put_targets(s, txn, op);
	if (rc == 0 && s->targets.n > 0) {
		rc = vt__lmdb_rec_count_get(s, txn, idk, &n, &ts);
		if (rc == 0) {
			rc = put_probe(s, txn, op, n > 0);
		}
	}
	if (rc != 0 || put_full(op, &s->targets)) {
		op->status = rc ? 0 : VT_EINBOXFULL;
		return rc;
	}
	rc = vt__lmdb_journal_covers(s, txn, op, &covered);
	if (rc != 0) {
		return rc;
	}
	/* A receipt comes with the acks it reports (VT_OP_PUT): taken when full. */
	covered |= op->rec->kind == VT_KIND_DELIVERED;
	if (b->refuse && !covered) {
		op->status = VT_ENOSPC;
		return 0;
	}
	b->reserved += (size_t)covered;
	rc = put_deliveries(s, txn, op, n, ts);
	if (rc == 0 && !written && dklen > 0) {
		rc = vt__lmdb_pair_write(s, txn, dk, dklen, &pair, op->rec->id, op->rec->ts);
	}
	if (rc == 0 && op->journal) {
		rc = vt__lmdb_journal_put(s, txn, op);
	}
	if (rc == 0 && op->rec->id > b->max_id) {
		b->max_id = op->rec->id;
	}
	return rc ? rc : put_out(s, op, &b->out);
}

/* ---- ACK, NOTIFIED, GROUP ---- */

/*
 * Report what record @id was, before its last delivery may delete it, and
 * the time it was stored in *@ts, with *@known set (0 when it is missing).
 */
static int ack_report(struct lmdb *s, MDB_txn *txn, struct vt_op *op, int64_t *ts, int *known)
{
	uint8_t idk[8];
	MDB_val k = val(idk, 8), v;
	struct vt_record r;
	int rc;

	*known = 0;
	vt__put_be64(idk, op->id);
	rc = mdb_get(txn, s->recs, &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && vt__lmdb_rec_decode(&v, op->id, &r) != 0)) {
		vt_log(VT_LOG_WARN, "lmdb: acked record id=%llu is %s", (unsigned long long)op->id,
		       rc ? "missing" : "damaged");
		return 0;
	}
	if (rc == 0) {
		vt__ack_report(op, &r);
		*ts = r.ts;
		*known = 1;
	}
	return rc;
}

/*
 * Apply one ACK: the delivery is found once, and the record read once for
 * both the report and its time.
 */
int vt__lmdb_apply_ack(struct lmdb *s, MDB_txn *txn, struct vt_op *op)
{
	uint8_t ik[VT__INBOX_KEY_MAX];
	size_t iklen = vt__inbox_key(&op->inbox, ik);
	MDB_cursor *at = NULL;
	int64_t ts;
	int known = 0, rc = MDB_NOTFOUND;

	if (iklen) {
		rc = vt__lmdb_dlv_seek(s, txn, ik, iklen, op->id, &at);
	}
	if (rc == MDB_NOTFOUND) {
		op->status = VT_EUNKNOWNID;
		return 0;
	}
	if (rc == 0) {
		rc = ack_report(s, txn, op, &ts, &known);
	}
	if (rc == 0) {
		rc = vt__lmdb_dlv_remove_at(s, txn, at, ik, iklen, op->id, known ? &ts : NULL);
	}
	if (rc == 0) {
		rc = vt__lmdb_journal_forget(s, txn, op->id, &op->inbox);
	}
	if (at) {
		mdb_cursor_close(at);
	}
	return rc;
}

int vt__lmdb_apply_notified(struct lmdb *s, MDB_txn *txn, struct vt_op *op)
{
	uint8_t ik[VT__INBOX_KEY_MAX];
	size_t iklen = vt__inbox_key(&op->inbox, ik);
	uint32_t flags;
	int exists, rc;

	if (iklen == 0) {
		op->status = VT_EUNKNOWNID;
		return 0;
	}
	rc = vt__lmdb_dlv_get(s, txn, ik, iklen, op->id, &exists, &flags);
	if (rc != 0 || !exists) {
		op->status = rc ? 0 : VT_EUNKNOWNID;
		return rc;
	}
	if (flags & VT_REC_NOTIFIED) {
		return 0;
	}
	return vt__lmdb_dlv_put(s, txn, ik, iklen, op->id, flags | VT_REC_NOTIFIED);
}

/*
 * Set or delete a group's state. On a full store even a delete is refused:
 * a change travels with the events that announce it, and those are refused.
 */
int vt__lmdb_apply_group(struct lmdb *s, MDB_txn *txn, struct vt_op *op, struct batch *b)
{
	MDB_val k, v;

	if (!vt__group_valid(op)) {
		op->status = VT_EINVAL;
		return 0;
	}
	if (b->refuse) {
		op->status = VT_ENOSPC;
		return 0;
	}
	k = val(op->group, strlen(op->group));
	if (op->len == 0) {
		return vt__lmdb_del_quiet(txn, s->groups, k.mv_data, k.mv_size);
	}
	b->grows = 1;
	v = val(op->data, op->len);
	return mdb_put(txn, s->groups, &k, &v, 0);
}
