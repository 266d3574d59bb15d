/*
 * store_mem_prep.c - the first phase of a commit: set aside all a
 * batch could need, or fail with nothing changed.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "store_key.h"
#include "store_mem_int.h"
#include "store_targets.h"

/* ---- commit: prepare ---- */

static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 1;
}

static char *copy_str(char *dst, const char *s, const char **out)
{
	size_t n = str_size(s);

	if (s) {
		memcpy(dst, s, n);
	} else {
		dst[0] = 0;
	}
	*out = dst;
	return dst + n;
}

void vt__mem_rec_fill(struct mrec *r, const struct vt_record *src)
{
	char *p;

	r->r = *src;
	r->r.flags = 0;
	p = copy_str(r->data, src->from, &r->r.from);
	p = copy_str(p, src->to, &r->r.to);
	p = copy_str(p, src->cid, &r->r.cid);
	if (src->body_len) {
		memcpy(p, src->body, src->body_len);
	}
	r->r.body = p;
	vt__put_be64(r->idkey, src->id);
}

/* One allocation holding the record and its strings. */
static struct mrec *rec_copy(const struct vt_record *src)
{
	size_t n = str_size(src->from) + str_size(src->to) + str_size(src->cid) + src->body_len;
	struct mrec *r = calloc(1, sizeof(*r) + n + 1);

	if (r) {
		vt__mem_rec_fill(r, src);
	}
	return r;
}

static struct mbox *box_get_or_create(struct mem *m, const uint8_t *key, size_t klen)
{
	struct mbox *b = vt__mem_box_find(m, key, klen);

	if (b) {
		return b;
	}
	if (vt__mem_hm_reserve(&m->boxes, 1) != 0) {
		return NULL;
	}
	b = calloc(1, sizeof(*b) + klen);
	if (!b) {
		return NULL;
	}
	memcpy(b->key, key, klen);
	b->klen = klen;
	vt__mem_hm_insert(&m->boxes, b->key, b->klen, b);
	return b;
}

/* Hold @nslots more slots of the inbox at @key for this batch. */
static struct mbox *box_hold(struct mem *m, const uint8_t *key, size_t klen, uint32_t nslots)
{
	struct mbox *b = box_get_or_create(m, key, klen);

	if (!b) {
		return NULL;
	}
	b->pending += nslots;
	if (vt__mem_box_reserve(b, b->len + b->pending) != 0) {
		b->pending -= nslots;
		vt__mem_box_free_if_empty(m, b);
		return NULL;
	}
	return b;
}

static void box_unhold(struct mem *m, struct mbox *b, uint32_t nslots)
{
	b->pending -= nslots;
	vt__mem_box_free_if_empty(m, b);
}

/* An op whose input cannot be stored fails alone, before anything moves. */
int vt__mem_put_valid(const struct vt_op *op)
{
	if (!op->rec || op->rec->id == 0 || (op->rec->body_len > 0 && !op->rec->body)) {
		return 0;
	}
	return vt__put_inboxes_valid(op);
}

/* Op @i of the batch, the backend's own PUTs counted after its ops. */
static struct vt_op *batch_op(const struct batch *bt, size_t i)
{
	return i < bt->n ? &bt->ops[i] : &bt->more[i - bt->n];
}

/* Called for each inbox key a PUT may reach; nonzero stops the walk. */
typedef int (*cand_fn)(struct mem *m, struct prep *p, const uint8_t *key, size_t klen);

/* The devices of @user now and those the batch's TOUCHes may add. */
static int cand_devices(struct mem *m, const struct batch *bt, struct prep *p, const char *user,
                        cand_fn fn)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	struct muser *u = vt__mem_user_find(m, user);
	int rc = 0;

	for (struct mdev *d = u ? u->devs : NULL; d && rc == 0; d = d->next) {
		rc = fn(m, p, d->key, d->klen);
	}
	for (size_t i = 0; i < bt->ntouch && rc == 0; i++) {
		const struct vt_inbox *in = &batch_op(bt, bt->touch[i])->inbox;

		if (strcmp(in->user, user) == 0) {
			rc = fn(m, p, key, vt__inbox_key(in, key));
		}
	}
	return rc;
}

/* Every inbox the PUT @op might reach, some perhaps twice. */
static int cand_walk(struct mem *m, const struct batch *bt, const struct vt_op *op, struct prep *p,
                     cand_fn fn)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	int rc = 0;

	for (uint32_t i = 0; i < op->nto && rc == 0; i++) {
		rc = fn(m, p, key, vt__inbox_key(&op->to[i], key));
	}
	for (uint32_t i = 0; i < op->nusers && rc == 0; i++) {
		rc = cand_devices(m, bt, p, op->users[i], fn);
		if (rc == 0) {
			rc = fn(m, p, key, vt__holding_key(op->users[i], key));
		}
	}
	if (op->also_own && rc == 0) {
		rc = cand_devices(m, bt, p, op->also_own->user, fn);
	}
	return rc;
}

static int cand_count(struct mem *m, struct prep *p, const uint8_t *key, size_t klen)
{
	p->ncand++;
	p->keybytes += klen;
	return 0;
}

static int cand_add(struct mem *m, struct prep *p, const uint8_t *key, size_t klen)
{
	struct mdlv *d = calloc(1, sizeof(*d));
	struct mbox *b = d ? box_hold(m, key, klen, 1) : NULL;

	if (!b) {
		free(d);
		return VT_ENOMEM;
	}
	p->cand[p->ncand++] = b;
	p->pool[p->npool++] = d;
	return 0;
}

static int prep_dedup(struct vt_op *op, struct prep *p)
{
	uint8_t key[VT__DEDUP_KEY_MAX];
	size_t klen = vt__dedup_key(op->rec, key);

	if (!op->dedup || klen == 0 || op->rec->cid[0] == 0) {
		return 0;
	}
	p->dd = calloc(1, sizeof(*p->dd) + klen);
	if (!p->dd) {
		return VT_ENOMEM;
	}
	memcpy(p->dd->key, key, klen);
	p->dd->klen = klen;
	return 0;
}

static int prep_put(struct mem *m, const struct batch *bt, struct vt_op *op, struct prep *p)
{
	uint32_t n;

	cand_walk(m, bt, op, p, cand_count);
	n = p->ncand;
	p->ncand = 0;
	p->rec = rec_copy(op->rec);
	p->cand = calloc(n ? n : 1, sizeof(*p->cand));
	p->pool = calloc(n ? n : 1, sizeof(*p->pool));
	if (!p->rec || !p->cand || !p->pool || prep_dedup(op, p) != 0) {
		return VT_ENOMEM;
	}
	if (!vt__out_new(&p->out, n, p->keybytes)) {
		return VT_ENOMEM;
	}
	return cand_walk(m, bt, op, p, cand_add);
}

/*
 * A new device of a user with none claims the holding inbox: room for all
 * it holds now and for one delivery per PUT of the batch, which may add to
 * it before this TOUCH runs.
 */
static int prep_claim(struct mem *m, const struct batch *bt, struct vt_op *op, struct prep *p)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__holding_key(op->inbox.user, key);
	struct mbox *h = klen ? vt__mem_box_find(m, key, klen) : NULL;
	uint64_t want;

	want = (uint64_t)(h ? h->count : 0) + bt->nput;
	if (want == 0) {
		return 0;
	}
	if (want > UINT32_MAX / 2) {
		return VT_ENOMEM;
	}
	klen = vt__inbox_key(&op->inbox, key);
	p->claim = box_hold(m, key, klen, (uint32_t)want);
	p->nclaim = (uint32_t)want;
	return p->claim ? 0 : VT_ENOMEM;
}

static int prep_touch(struct mem *m, const struct batch *bt, struct vt_op *op, struct prep *p)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__inbox_key(&op->inbox, key);
	struct muser *u;

	if (vt__mem_map_get(&m->devs, key, klen)) {
		return 0; /* a refresh needs nothing */
	}
	p->dev = calloc(1, sizeof(*p->dev) + klen);
	if (!p->dev) {
		return VT_ENOMEM;
	}
	memcpy(p->dev->key, key, klen);
	p->dev->klen = klen;
	u = vt__mem_user_find(m, op->inbox.user);
	if (!u) {
		klen = vt__user_key(op->inbox.user, key);
		p->user = calloc(1, sizeof(*p->user) + klen);
		if (!p->user) {
			return VT_ENOMEM;
		}
		memcpy(p->user->key, key, klen);
		p->user->klen = klen;
	}
	return !u || !u->devs ? prep_claim(m, bt, op, p) : 0;
}

static int prep_group(struct vt_op *op, struct prep *p)
{
	size_t klen = strlen(op->group);

	if (op->len == 0) {
		return 0;
	}
	if (op->len > SIZE_MAX - sizeof(*p->grp) - klen - 1) {
		return VT_ENOMEM;
	}
	p->grp = malloc(sizeof(*p->grp) + klen + 1 + op->len);
	if (!p->grp) {
		return VT_ENOMEM;
	}
	memcpy(p->grp->key, op->group, klen + 1);
	p->grp->klen = klen;
	p->grp->data = p->grp->key + klen + 1;
	memcpy(p->grp->data, op->data, op->len);
	p->grp->len = op->len;
	return 0;
}

void vt__mem_prep_release(struct mem *m, struct prep *p)
{
	free(p->rec);
	free(p->dd);
	for (uint32_t i = 0; i < p->npool; i++) {
		free(p->pool[i]);
	}
	for (uint32_t i = 0; i < p->ncand; i++) {
		box_unhold(m, p->cand[i], 1);
	}
	if (p->claim) {
		box_unhold(m, p->claim, p->nclaim);
	}
	free(p->pool);
	free(p->cand);
	vt__out_free(p->out);
	free(p->dev);
	free(p->user);
	free(p->grp);
	free(p->rev);
	free(p->revuser);
}

static int prep_tables(struct mem *m, const struct batch *bt)
{
	if (vt__mem_hm_reserve(&m->recs, bt->nput) || vt__mem_hm_reserve(&m->dedup, bt->nput) ||
	    vt__mem_heap_reserve(&m->rtime, bt->nput) ||
	    vt__mem_heap_reserve(&m->dtime, bt->nput) ||
	    vt__mem_hm_reserve(&m->devs, bt->ntouch) || vt__mem_hm_reserve(&m->users, bt->ntouch) ||
	    vt__mem_heap_reserve(&m->dvtime, bt->ntouch) ||
	    vt__mem_hm_reserve(&m->groups, bt->ngroup) ||
	    vt__mem_hm_reserve(&m->revoked, bt->nrevoke) ||
	    vt__mem_hm_reserve(&m->revusers, bt->nrevoke)) {
		return VT_ENOMEM;
	}
	return 0;
}

/* Count the batch's ops by kind and note its TOUCHes for PUT candidates. */
static int batch_scan(struct batch *bt)
{
	size_t all = bt->n + bt->nmore;

	bt->touch = calloc(all ? all : 1, sizeof(*bt->touch));
	if (!bt->touch) {
		return VT_ENOMEM;
	}
	for (size_t i = 0; i < all; i++) {
		struct vt_op *op = batch_op(bt, i);

		vt__op_reset(op);
		if (op->kind == VT_OP_PUT && vt__mem_put_valid(op)) {
			bt->nput++;
		} else if (op->kind == VT_OP_TOUCH && vt__touch_valid(op)) {
			bt->touch[bt->ntouch++] = i;
		} else if (op->kind == VT_OP_GROUP && vt__group_valid(op)) {
			bt->ngroup++;
		} else if (op->kind == VT_OP_REVOKE) {
			bt->nrevoke++;
		}
	}
	return 0;
}

static int prep_op(struct mem *m, const struct batch *bt, struct vt_op *op, struct prep *p)
{
	if (op->kind == VT_OP_PUT && vt__mem_put_valid(op)) {
		return prep_put(m, bt, op, p);
	}
	if (op->kind == VT_OP_TOUCH && vt__touch_valid(op)) {
		return prep_touch(m, bt, op, p);
	}
	if (op->kind == VT_OP_GROUP && vt__group_valid(op)) {
		return prep_group(op, p);
	}
	if (op->kind == VT_OP_REVOKE) {
		return vt__mem_prep_revoke(op, p);
	}
	return 0;
}

/* Allocate all a batch could need; on failure release it all again. */
int vt__mem_prepare(struct mem *m, struct batch *bt, struct prep *preps)
{
	int rc = batch_scan(bt);

	for (size_t i = 0; i < bt->n + bt->nmore && rc == 0; i++) {
		rc = prep_op(m, bt, batch_op(bt, i), &preps[i]);
	}
	if (rc == 0) {
		rc = prep_tables(m, bt);
	}
	if (rc != 0) {
		for (size_t i = 0; i < bt->n + bt->nmore; i++) {
			vt__mem_prep_release(m, &preps[i]);
		}
	}
	return rc;
}
