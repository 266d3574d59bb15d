/*
 * store_mem_box.c - records, inboxes and the deliveries that link
 * them, in the memory backend.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>

#include "store_key.h"
#include "store_mem_int.h"

struct mrec *vt__mem_rec_find(struct mem *m, uint64_t id)
{
	uint8_t k[8];

	vt__put_be64(k, id);
	return vt__mem_map_get(&m->recs, k, sizeof(k));
}

struct mbox *vt__mem_box_find(struct mem *m, const uint8_t *key, size_t klen)
{
	return vt__mem_map_get(&m->boxes, key, klen);
}

struct mbox *vt__mem_box_of(struct mem *m, const struct vt_inbox *in)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__inbox_key(in, key);

	return klen ? vt__mem_box_find(m, key, klen) : NULL;
}

struct muser *vt__mem_user_find(struct mem *m, const char *user)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__user_key(user, key);

	return klen ? vt__mem_map_get(&m->users, key, klen) : NULL;
}

/* Index of the first slot with id >= @id. */
size_t vt__mem_box_lower(const struct mbox *b, uint64_t id)
{
	size_t lo = 0, hi = b->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->v[mid].id < id) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo;
}

struct mdlv *vt__mem_box_get(const struct mbox *b, uint64_t id)
{
	size_t i = vt__mem_box_lower(b, id);

	return i < b->len && b->v[i].id == id ? b->v[i].d : NULL;
}

int vt__mem_box_reserve(struct mbox *b, size_t want)
{
	size_t cap = b->cap ? b->cap : 8;
	struct mslot *v;

	if (want <= b->cap) {
		return 0;
	}
	while (cap < want) {
		if (cap > SIZE_MAX / 2 / sizeof(*v)) {
			return VT_ENOMEM;
		}
		cap *= 2;
	}
	v = realloc(b->v, cap * sizeof(*v));
	if (!v) {
		return VT_ENOMEM;
	}
	b->v = v;
	b->cap = cap;
	return 0;
}

/* Add a delivery that is not in @b yet; room was reserved. */
void vt__mem_box_add(struct mbox *b, uint64_t id, struct mdlv *d)
{
	size_t i = vt__mem_box_lower(b, id);

	d->box = b;
	if (i < b->len && b->v[i].id == id) {
		b->v[i].d = d; /* revive a removed slot */
		b->dead--;
	} else {
		memmove(&b->v[i + 1], &b->v[i], (b->len - i) * sizeof(b->v[0]));
		b->v[i].id = id;
		b->v[i].d = d;
		b->len++;
	}
	b->count++;
}

/* Squeeze removed slots out, keeping order; needs no memory. */
void vt__mem_box_compact(struct mbox *b)
{
	size_t j = 0;

	for (size_t i = 0; i < b->len; i++) {
		if (b->v[i].d) {
			b->v[j++] = b->v[i];
		}
	}
	b->len = j;
	b->dead = 0;
}

/* Clear slot @i without compacting, so a walk over the slots can go on. */
void vt__mem_box_clear(struct mbox *b, size_t i)
{
	b->v[i].d = NULL;
	b->dead++;
	b->count--;
}

/*
 * Mark the delivery of @id removed. Compacting only when half the slots are
 * dead keeps removal O(1) amortized, also when acks come oldest first.
 */
static void box_del(struct mbox *b, uint64_t id)
{
	vt__mem_box_clear(b, vt__mem_box_lower(b, id));
	if (b->dead > 16 && b->dead * 2 > b->len) {
		vt__mem_box_compact(b);
	}
}

/* Free an inbox nobody needs: no deliveries, and none a batch reserved. */
void vt__mem_box_free_if_empty(struct mem *m, struct mbox *b)
{
	if (b->count > 0 || b->pending > 0) {
		return;
	}
	vt__mem_hm_remove(&m->boxes, vt__mem_hm_find(&m->boxes, b->key, b->klen));
	free(b->v);
	free(b);
}

static void rec_delete(struct mem *m, struct mrec *r)
{
	vt__mem_hm_remove(&m->recs, vt__mem_hm_find(&m->recs, r->idkey, sizeof(r->idkey)));
	free(r);
}

/* Unlink @d from its record; the record goes with its last delivery. */
void vt__mem_dlv_detach(struct mem *m, struct mdlv *d)
{
	struct mrec *r = d->rec;

	if (d->prev) {
		d->prev->next = d->next;
	} else {
		r->dlv = d->next;
	}
	if (d->next) {
		d->next->prev = d->prev;
	}
	free(d);
	if (--r->ndeliv == 0) {
		rec_delete(m, r);
	}
}

/* Remove one delivery, and its inbox when that empties. */
void vt__mem_dlv_remove(struct mem *m, struct mdlv *d)
{
	struct mbox *b = d->box;

	box_del(b, d->rec->r.id);
	vt__mem_dlv_detach(m, d);
	vt__mem_box_free_if_empty(m, b);
}

void vt__mem_dlv_link(struct mrec *r, struct mbox *b, struct mdlv *d)
{
	d->rec = r;
	d->flags = 0;
	d->prev = NULL;
	d->next = r->dlv;
	if (r->dlv) {
		r->dlv->prev = d;
	}
	r->dlv = d;
	r->ndeliv++;
	vt__mem_box_add(b, r->r.id, d);
}
