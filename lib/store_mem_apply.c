/*
 * store_mem_apply.c - the second phase of a commit: apply each op
 * with what prepare set aside, which cannot fail.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "store_key.h"
#include "store_mem_int.h"
#include "store_targets.h"

/* ---- commit: apply (cannot fail) ---- */

/* The earlier record id when @op duplicates one within the window, else 0. */
static uint64_t dedup_hit(struct mem *m, const struct vt_op *op, struct prep *p)
{
	struct mdedup *e;

	if (!p->dd) {
		return 0;
	}
	e = vt__mem_map_get(&m->dedup, p->dd->key, p->dd->klen);
	if (!e || e->id == op->rec->id || !vt__within_window(op->rec->ts, e->ts, m->window)) {
		return 0;
	}
	return e->id;
}

/* Remember (from, cid) -> (id, ts), replacing a stale entry. */
static void dedup_record(struct mem *m, const struct vt_op *op, struct prep *p)
{
	struct hslot *s;
	struct mdedup *e = p->dd;

	if (!e) {
		return;
	}
	s = vt__mem_hm_find(&m->dedup, e->key, e->klen);
	if (s && ((struct mdedup *)s->val)->id == op->rec->id) {
		return; /* the same record stored again */
	}
	if (s) {
		((struct mdedup *)s->val)->dead = 1;
		vt__mem_hm_remove(&m->dedup, s);
	}
	e->id = op->rec->id;
	e->ts = op->rec->ts;
	vt__mem_hm_insert(&m->dedup, e->key, e->klen, e);
	vt__mem_heap_push(&m->dtime, (struct hitem){e->ts, 0, e});
	p->dd = NULL;
}

/* A walk over the inboxes a PUT reaches, as registered at this point. */
struct walk {
	struct mem *m;
	struct vt_op *op;
	struct prep *p;
	int full; /* cap check: a recipient is full */
	void (*fn)(struct walk *w, struct mbox *b, int own);
};

static void walk_key(struct walk *w, const uint8_t *key, size_t klen, int own)
{
	struct mbox *b = klen ? vt__mem_box_find(w->m, key, klen) : NULL;

	/* every inbox reached was held by prepare, so b is there */
	if (b) {
		w->fn(w, b, own);
	}
}

static void walk_user(struct walk *w, const char *user)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	struct muser *u = vt__mem_user_find(w->m, user);

	if (u && u->devs) {
		for (struct mdev *d = u->devs; d; d = d->next) {
			walk_key(w, d->key, d->klen, 0);
		}
	} else {
		walk_key(w, key, vt__holding_key(user, key), 0);
	}
}

static void walk_own(struct walk *w, const struct vt_inbox *own)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__inbox_key(own, key);
	struct muser *u = vt__mem_user_find(w->m, own->user);

	for (struct mdev *d = u ? u->devs : NULL; d; d = d->next) {
		if (d->klen != klen || memcmp(d->key, key, klen) != 0) {
			walk_key(w, d->key, d->klen, 1);
		}
	}
}

/* Recipients first (to, then users), then the sender's own devices. */
static void walk_put(struct walk *w, int with_own)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	const struct vt_op *op = w->op;

	for (uint32_t i = 0; i < op->nto; i++) {
		walk_key(w, key, vt__inbox_key(&op->to[i], key), 0);
	}
	for (uint32_t i = 0; i < op->nusers; i++) {
		walk_user(w, op->users[i]);
	}
	if (op->also_own && with_own) {
		walk_own(w, op->also_own);
	}
}

/* An inbox is full when at the cap and not already holding this record. */
static int box_full(const struct vt_op *op, const struct mbox *b)
{
	return op->inbox_cap && b->count >= op->inbox_cap && !vt__mem_box_get(b, op->rec->id);
}

static void check_cap(struct walk *w, struct mbox *b, int own)
{
	w->full |= box_full(w->op, b);
}

static void deliver(struct walk *w, struct mbox *b, int own)
{
	struct mem *m = w->m;
	struct prep *p = w->p;
	struct mrec *r;
	struct mdlv *d;

	if (b->mark == m->stamp || vt__mem_box_get(b, w->op->rec->id)) {
		b->mark = m->stamp;
		return; /* reached before, or holds the record already */
	}
	b->mark = m->stamp;
	if (box_full(w->op, b)) {
		w->op->out_skipped += !own;
		return;
	}
	r = vt__mem_rec_find(m, w->op->rec->id);
	if (!r) {
		r = p->rec;
		p->rec = NULL;
		vt__mem_hm_insert(&m->recs, r->idkey, sizeof(r->idkey), r);
		vt__mem_heap_push(&m->rtime, (struct hitem){r->r.ts, r->r.id, NULL});
	}
	if (p->npool == 0) {
		return; /* cannot happen: each inbox reached was a candidate */
	}
	d = p->pool[--p->npool];
	vt__mem_dlv_link(r, b, d);
	vt__out_push(p->out, b->key, b->klen);
}

static void apply_put(struct mem *m, struct vt_op *op, struct prep *p)
{
	struct walk w = {m, op, p, 0, check_cap};

	if (!vt__mem_put_valid(op)) {
		op->status = VT_EINVAL;
		return;
	}
	op->dup_of = dedup_hit(m, op, p);
	if (op->dup_of) {
		return;
	}
	if (!op->cap_skip) {
		walk_put(&w, 0);
	}
	if (w.full) {
		op->status = VT_EINBOXFULL;
		return;
	}
	m->stamp++;
	w.fn = deliver;
	walk_put(&w, 1);
	dedup_record(m, op, p);
	if (op->rec->id > m->max_id) {
		m->max_id = op->rec->id;
	}
	op->out_to = p->out->n ? p->out->v : NULL;
	op->out_nto = p->out->n;
}

static void apply_ack(struct mem *m, struct vt_op *op)
{
	struct mbox *b = vt__mem_box_of(m, &op->inbox);
	struct mdlv *d = b ? vt__mem_box_get(b, op->id) : NULL;

	if (!d) {
		op->status = VT_EUNKNOWNID;
		return;
	}
	vt__ack_report(op, &d->rec->r);
	vt__mem_dlv_remove(m, d);
}

static void apply_notified(struct mem *m, struct vt_op *op)
{
	struct mbox *b = vt__mem_box_of(m, &op->inbox);
	struct mdlv *d = b ? vt__mem_box_get(b, op->id) : NULL;

	if (!d) {
		op->status = VT_EUNKNOWNID;
		return;
	}
	d->flags |= VT_REC_NOTIFIED;
}

/*
 * Move every delivery of @user's holding inbox into @to, keeping its flags.
 * One that @to holds already is dropped instead, so each record keeps one
 * delivery per inbox.
 */
static void claim_holding(struct mem *m, const char *user, struct mbox *to)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__holding_key(user, key);
	struct mbox *h = klen ? vt__mem_box_find(m, key, klen) : NULL;

	if (!h || !to) {
		return;
	}
	for (size_t i = 0; i < h->len; i++) {
		struct mdlv *d = h->v[i].d;

		if (!d) {
			continue;
		}
		vt__mem_box_clear(h, i);
		if (vt__mem_box_get(to, h->v[i].id)) {
			vt__mem_dlv_detach(m, d);
		} else {
			vt__mem_box_add(to, h->v[i].id, d);
		}
	}
	vt__mem_box_compact(h);
	vt__mem_box_free_if_empty(m, h);
}

static void dev_link(struct mem *m, struct muser *u, struct mdev *d, int64_t ts)
{
	d->user = u;
	d->seen = ts;
	d->prev = NULL;
	d->next = u->devs;
	if (u->devs) {
		u->devs->prev = d;
	}
	u->devs = d;
	u->ndev++;
	vt__mem_hm_insert(&m->devs, d->key, d->klen, d);
	vt__mem_heap_push(&m->dvtime, (struct hitem){ts, ++m->serial, d});
}

/* A clock that went back must not make a device look older than it was. */
static void apply_touch(struct mem *m, struct vt_op *op, struct prep *p)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__inbox_key(&op->inbox, key);
	struct mdev *d = klen && vt__touch_valid(op) ? vt__mem_map_get(&m->devs, key, klen) : NULL;
	struct muser *u;
	int claim;

	if (!klen || !vt__touch_valid(op) || (!d && !p->dev)) {
		op->status = VT_EINVAL;
		return;
	}
	if (d) {
		d->seen = op->ts > d->seen ? op->ts : d->seen;
		op->out_ndevices = d->user->ndev;
		return;
	}
	u = vt__mem_user_find(m, op->inbox.user);
	claim = !u || !u->devs;
	if (!u) {
		u = p->user;
		p->user = NULL;
		vt__mem_hm_insert(&m->users, u->key, u->klen, u);
	}
	dev_link(m, u, p->dev, op->ts);
	p->dev = NULL;
	op->out_ndevices = u->ndev;
	if (claim) {
		claim_holding(m, op->inbox.user, p->claim);
	}
}

static void apply_group(struct mem *m, struct vt_op *op, struct prep *p)
{
	struct hslot *s;

	if (!vt__group_valid(op)) {
		op->status = VT_EINVAL;
		return;
	}
	s = vt__mem_hm_find(&m->groups, op->group, strlen(op->group));
	if (s) {
		free(s->val);
		vt__mem_hm_remove(&m->groups, s);
	}
	if (p->grp) {
		vt__mem_hm_insert(&m->groups, p->grp->key, p->grp->klen, p->grp);
		p->grp = NULL;
	}
}

void vt__mem_apply_op(struct mem *m, struct vt_op *op, struct prep *p)
{
	switch (op->kind) {
	case VT_OP_PUT:
		apply_put(m, op, p);
		break;
	case VT_OP_ACK:
		apply_ack(m, op);
		break;
	case VT_OP_TOUCH:
		apply_touch(m, op, p);
		break;
	case VT_OP_NOTIFIED:
		apply_notified(m, op);
		break;
	case VT_OP_GROUP:
		apply_group(m, op, p);
		break;
	case VT_OP_REVOKE:
		vt__mem_apply_revoke(m, op, p);
		break;
	default:
		op->status = VT_EINVAL;
	}
}
