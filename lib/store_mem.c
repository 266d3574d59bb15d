/*
 * store_mem.c - the in-memory storage backend.
 *
 * Same semantics as the LMDB backend, no durability. Records live in a hash
 * table by id; each inbox keeps its deliveries in an array sorted by id
 * (ids mostly arrive in increasing order, so inserts are appends); a record
 * links its deliveries so expiry and the last ack find them without a scan.
 * Two min-heaps order records and dedup entries by time for expiry.
 *
 * A batch is applied in two phases: prepare allocates everything the batch
 * could need (and may fail with nothing changed), apply then cannot fail.
 * That is how a batch stays atomic without an undo log.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "store_key.h"

/* ---- hash table: byte keys owned by the values, open addressing ---- */

struct hslot {
	uint64_t hash;
	const void *key;
	size_t klen;
	void *val; /* NULL: empty slot */
};

struct hmap {
	struct hslot *slots;
	size_t cap; /* power of two, or 0 */
	size_t len;
	uint64_t seed;
};

/* FNV-1a, seeded per table so colliding keys cannot be prepared offline. */
static uint64_t hm_hash(const struct hmap *m, const void *key, size_t klen)
{
	const uint8_t *p = key;
	uint64_t h = 14695981039346656037ULL ^ m->seed;

	for (size_t i = 0; i < klen; i++) {
		h = (h ^ p[i]) * 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

static struct hslot *hm_find(const struct hmap *m, const void *key, size_t klen)
{
	uint64_t h;
	size_t mask, i;

	if (m->cap == 0) {
		return NULL;
	}
	h = hm_hash(m, key, klen);
	mask = m->cap - 1;
	for (i = h & mask; m->slots[i].val; i = (i + 1) & mask) {
		struct hslot *s = &m->slots[i];

		if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0) {
			return s;
		}
	}
	return NULL;
}

static void hm_place(struct hslot *slots, size_t cap, const struct hslot *e)
{
	size_t i = e->hash & (cap - 1);

	while (slots[i].val) {
		i = (i + 1) & (cap - 1);
	}
	slots[i] = *e;
}

/* Make room for @extra more keys at a load of at most 3/4. */
static int hm_reserve(struct hmap *m, size_t extra)
{
	size_t want = m->cap ? m->cap : 16;
	struct hslot *slots;

	while ((m->len + extra) * 4 > want * 3) {
		if (want > SIZE_MAX / 2 / sizeof(*slots)) {
			return VT_ENOMEM;
		}
		want *= 2;
	}
	if (want == m->cap) {
		return 0;
	}
	slots = calloc(want, sizeof(*slots));
	if (!slots) {
		return VT_ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].val) {
			hm_place(slots, want, &m->slots[i]);
		}
	}
	free(m->slots);
	m->slots = slots;
	m->cap = want;
	return 0;
}

/* Insert a key known to be absent; room was made by hm_reserve. */
static void hm_insert(struct hmap *m, const void *key, size_t klen, void *val)
{
	struct hslot e = {hm_hash(m, key, klen), key, klen, val};

	hm_place(m->slots, m->cap, &e);
	m->len++;
}

/* Remove a slot, shifting later members of its run back so lookups hold. */
static void hm_remove(struct hmap *m, struct hslot *s)
{
	size_t mask = m->cap - 1;
	size_t i = (size_t)(s - m->slots);
	size_t j = i;

	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (!m->slots[j].val) {
			break;
		}
		k = m->slots[j].hash & mask;
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].val = NULL;
	m->len--;
}

/* ---- min-heap of (ts, id, pointer) ---- */

struct hitem {
	int64_t ts;
	uint64_t id;
	void *p;
};

struct heap {
	struct hitem *v;
	size_t len, cap;
};

static int hitem_less(const struct hitem *a, const struct hitem *b)
{
	return a->ts < b->ts || (a->ts == b->ts && a->id < b->id);
}

static int heap_reserve(struct heap *h, size_t extra)
{
	size_t want = h->cap ? h->cap : 16;
	struct hitem *v;

	while (h->len + extra > want) {
		if (want > SIZE_MAX / 2 / sizeof(*v)) {
			return VT_ENOMEM;
		}
		want *= 2;
	}
	if (want == h->cap) {
		return 0;
	}
	v = realloc(h->v, want * sizeof(*v));
	if (!v) {
		return VT_ENOMEM;
	}
	h->v = v;
	h->cap = want;
	return 0;
}

static void heap_down(struct heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct hitem t;

		if (l < h->len && hitem_less(&h->v[l], &h->v[m])) {
			m = l;
		}
		if (r < h->len && hitem_less(&h->v[r], &h->v[m])) {
			m = r;
		}
		if (m == i) {
			return;
		}
		t = h->v[i];
		h->v[i] = h->v[m];
		h->v[m] = t;
		i = m;
	}
}

/* Push onto a heap with room reserved. */
static void heap_push(struct heap *h, struct hitem it)
{
	size_t i = h->len++;

	while (i > 0 && hitem_less(&it, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = it;
}

static void heap_pop(struct heap *h)
{
	h->v[0] = h->v[--h->len];
	heap_down(h, 0);
}

static void heapify(struct heap *h)
{
	for (size_t i = h->len / 2; i-- > 0;) {
		heap_down(h, i);
	}
}

/* ---- records, inboxes, deliveries, dedup entries ---- */

struct mrec;
struct mbox;

/* One delivery, linked into its record's list. */
struct mdlv {
	struct mrec *rec;
	struct mbox *box;
	struct mdlv *prev, *next;
};

struct mrec {
	struct vt_record r; /* strings point into data[] */
	uint32_t ndeliv;
	struct mdlv *dlv;
	uint8_t idkey[8];
	char data[];
};

/* An inbox slot; d == NULL marks a removed delivery awaiting compaction. */
struct mslot {
	uint64_t id;
	struct mdlv *d;
};

struct mbox {
	uint32_t count;   /* live deliveries */
	uint32_t pending; /* prepare: slots a batch may add */
	size_t len, cap, dead;
	struct mslot *v;
	size_t klen;
	uint8_t key[];
};

struct mdedup {
	uint64_t id;
	int64_t ts;
	int dead; /* replaced or swept; freed when its heap item pops */
	size_t klen;
	uint8_t key[];
};

struct mem {
	struct hmap recs, boxes, dedup;
	struct heap rtime; /* (ts, id): records, stale once deleted */
	struct heap dtime; /* (ts, 0, mdedup*): owns every dedup entry */
	uint64_t max_id;
	int64_t window;
};

static struct mrec *rec_find(struct mem *m, uint64_t id)
{
	uint8_t k[8];
	struct hslot *s;

	vt__put_be64(k, id);
	s = hm_find(&m->recs, k, sizeof(k));
	return s ? s->val : NULL;
}

static struct mbox *box_find(struct mem *m, const uint8_t *key, size_t klen)
{
	struct hslot *s = hm_find(&m->boxes, key, klen);

	return s ? s->val : NULL;
}

/* Index of the first slot with id >= @id. */
static size_t box_lower(const struct mbox *b, uint64_t id)
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

static struct mdlv *box_get(const struct mbox *b, uint64_t id)
{
	size_t i = box_lower(b, id);

	return i < b->len && b->v[i].id == id ? b->v[i].d : NULL;
}

static int box_reserve(struct mbox *b, size_t want)
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
static void box_add(struct mbox *b, uint64_t id, struct mdlv *d)
{
	size_t i = box_lower(b, id);

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
static void box_compact(struct mbox *b)
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

/*
 * Mark the delivery of @id removed. Compacting only when half the slots are
 * dead keeps removal O(1) amortized, also when acks come oldest first.
 */
static void box_del(struct mbox *b, uint64_t id)
{
	size_t i = box_lower(b, id);

	b->v[i].d = NULL;
	b->dead++;
	b->count--;
	if (b->dead > 16 && b->dead * 2 > b->len) {
		box_compact(b);
	}
}

static void box_free_if_empty(struct mem *m, struct mbox *b)
{
	struct hslot *s;

	if (b->count > 0 || b->pending > 0) {
		return;
	}
	s = hm_find(&m->boxes, b->key, b->klen);
	hm_remove(&m->boxes, s);
	free(b->v);
	free(b);
}

static void rec_delete(struct mem *m, struct mrec *r)
{
	hm_remove(&m->recs, hm_find(&m->recs, r->idkey, sizeof(r->idkey)));
	free(r);
}

/*
 * Remove one delivery; the record goes with its last one. Empty inboxes
 * are freed only when @free_box is set: during a batch, prepared deliveries
 * of later ops still point at them.
 */
static void dlv_remove(struct mem *m, struct mdlv *d, int free_box)
{
	struct mrec *r = d->rec;
	struct mbox *b = d->box;

	if (d->prev) {
		d->prev->next = d->next;
	} else {
		r->dlv = d->next;
	}
	if (d->next) {
		d->next->prev = d->prev;
	}
	box_del(b, r->r.id);
	free(d);
	if (--r->ndeliv == 0) {
		rec_delete(m, r);
	}
	if (free_box) {
		box_free_if_empty(m, b);
	}
}

/* ---- commit: prepare ---- */

/* What prepare allocated for one PUT. */
struct prep {
	struct mrec *rec;  /* a copy, used if the id is new */
	struct mdedup *dd; /* used if the (from, cid) pair is recorded */
	struct mdlv **dlv; /* one per inbox in to[], box already found */
};

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

/* One allocation holding the record and its strings. */
static struct mrec *rec_copy(const struct vt_record *src)
{
	size_t n = str_size(src->from) + str_size(src->to) + str_size(src->cid) + src->body_len;
	struct mrec *r = calloc(1, sizeof(*r) + n + 1);
	char *p;

	if (!r) {
		return NULL;
	}
	r->r = *src;
	p = copy_str(r->data, src->from, &r->r.from);
	p = copy_str(p, src->to, &r->r.to);
	p = copy_str(p, src->cid, &r->r.cid);
	if (src->body_len) {
		memcpy(p, src->body, src->body_len);
	}
	r->r.body = p;
	vt__put_be64(r->idkey, src->id);
	return r;
}

static struct mbox *box_get_or_create(struct mem *m, const uint8_t *key, size_t klen)
{
	struct mbox *b = box_find(m, key, klen);

	if (b) {
		return b;
	}
	if (hm_reserve(&m->boxes, 1) != 0) {
		return NULL;
	}
	b = calloc(1, sizeof(*b) + klen);
	if (!b) {
		return NULL;
	}
	memcpy(b->key, key, klen);
	b->klen = klen;
	hm_insert(&m->boxes, b->key, b->klen, b);
	return b;
}

/* An op whose input cannot be stored fails alone, before anything moves. */
static int put_valid(const struct vt_op *op)
{
	uint8_t key[VT__INBOX_KEY_MAX];

	if (!op->rec || op->rec->id == 0 || (op->nto > 0 && !op->to)) {
		return 0;
	}
	if (op->rec->body_len > 0 && !op->rec->body) {
		return 0;
	}
	for (uint32_t i = 0; i < op->nto; i++) {
		if (vt__inbox_key(&op->to[i], key) == 0) {
			return 0;
		}
	}
	return 1;
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

static int prep_put(struct mem *m, struct vt_op *op, struct prep *p)
{
	uint8_t key[VT__INBOX_KEY_MAX];

	p->rec = rec_copy(op->rec);
	p->dlv = calloc(op->nto ? op->nto : 1, sizeof(*p->dlv));
	if (!p->rec || !p->dlv || prep_dedup(op, p) != 0) {
		return VT_ENOMEM;
	}
	for (uint32_t i = 0; i < op->nto; i++) {
		size_t klen = vt__inbox_key(&op->to[i], key);
		struct mbox *b = box_get_or_create(m, key, klen);

		p->dlv[i] = b ? calloc(1, sizeof(*p->dlv[i])) : NULL;
		if (!p->dlv[i]) {
			if (b) {
				box_free_if_empty(m, b); /* created just now, for nothing */
			}
			return VT_ENOMEM;
		}
		p->dlv[i]->box = b;
		b->pending++;
		if (box_reserve(b, b->len + b->pending) != 0) {
			return VT_ENOMEM;
		}
	}
	return 0;
}

static void prep_release(struct mem *m, struct vt_op *op, struct prep *p)
{
	free(p->rec);
	free(p->dd);
	for (uint32_t i = 0; p->dlv && i < op->nto; i++) {
		if (p->dlv[i]) {
			struct mbox *b = p->dlv[i]->box;

			free(p->dlv[i]);
			if (b) {
				b->pending--;
				box_free_if_empty(m, b);
			}
		}
	}
	free(p->dlv);
}

static int prep_tables(struct mem *m, size_t nput)
{
	if (hm_reserve(&m->recs, nput) || hm_reserve(&m->dedup, nput) ||
	    heap_reserve(&m->rtime, nput) || heap_reserve(&m->dtime, nput)) {
		return VT_ENOMEM;
	}
	return 0;
}

/* Allocate all a batch could need; on failure release it all again. */
static int prepare(struct mem *m, struct vt_op *ops, size_t n, struct prep *preps)
{
	size_t nput = 0;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		vt__op_reset(&ops[i]);
		if (ops[i].kind == VT_OP_PUT && put_valid(&ops[i])) {
			rc = prep_put(m, &ops[i], &preps[i]);
			nput++;
		}
	}
	if (rc == 0) {
		rc = prep_tables(m, nput);
	}
	if (rc != 0) {
		for (size_t i = 0; i < n; i++) {
			prep_release(m, &ops[i], &preps[i]);
		}
	}
	return rc;
}

/* ---- commit: apply (cannot fail) ---- */

/* The earlier record id when @op duplicates one within the window, else 0. */
static uint64_t dedup_hit(struct mem *m, const struct vt_op *op, struct prep *p)
{
	struct hslot *s;
	struct mdedup *e;

	if (!p->dd) {
		return 0;
	}
	s = hm_find(&m->dedup, p->dd->key, p->dd->klen);
	if (!s) {
		return 0;
	}
	e = s->val;
	if (e->id == op->rec->id || !vt__within_window(op->rec->ts, e->ts, m->window)) {
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
	s = hm_find(&m->dedup, e->key, e->klen);
	if (s && ((struct mdedup *)s->val)->id == op->rec->id) {
		return; /* the same record stored again */
	}
	if (s) {
		((struct mdedup *)s->val)->dead = 1;
		hm_remove(&m->dedup, s);
	}
	e->id = op->rec->id;
	e->ts = op->rec->ts;
	hm_insert(&m->dedup, e->key, e->klen, e);
	heap_push(&m->dtime, (struct hitem){e->ts, 0, e});
	p->dd = NULL;
}

/* Nonzero when an inbox that would get a new delivery is at its cap. */
static int put_over_cap(struct mem *m, const struct vt_op *op, struct prep *p)
{
	struct mrec *r = rec_find(m, op->rec->id);

	if (op->inbox_cap == 0) {
		return 0;
	}
	for (uint32_t i = 0; i < op->nto; i++) {
		struct mbox *b = p->dlv[i]->box;

		if (b->count >= op->inbox_cap && !(r && box_get(b, r->r.id))) {
			return 1;
		}
	}
	return 0;
}

static void dlv_link(struct mrec *r, struct mdlv *d)
{
	d->rec = r;
	d->prev = NULL;
	d->next = r->dlv;
	if (r->dlv) {
		r->dlv->prev = d;
	}
	r->dlv = d;
	r->ndeliv++;
	box_add(d->box, r->r.id, d);
}

/* Add the deliveries of @op that do not exist yet. */
static void put_deliveries(struct mem *m, const struct vt_op *op, struct prep *p)
{
	struct mrec *r = rec_find(m, op->rec->id);

	for (uint32_t i = 0; i < op->nto; i++) {
		struct mdlv *d = p->dlv[i];

		if (box_get(d->box, op->rec->id)) {
			continue;
		}
		if (!r) {
			r = p->rec;
			p->rec = NULL;
			hm_insert(&m->recs, r->idkey, sizeof(r->idkey), r);
			heap_push(&m->rtime, (struct hitem){r->r.ts, r->r.id, NULL});
		}
		d->box->pending--;
		p->dlv[i] = NULL;
		dlv_link(r, d);
	}
}

static void apply_put(struct mem *m, struct vt_op *op, struct prep *p)
{
	if (!put_valid(op)) {
		op->status = VT_EINVAL;
		return;
	}
	op->dup_of = dedup_hit(m, op, p);
	if (op->dup_of) {
		return;
	}
	if (put_over_cap(m, op, p)) {
		op->status = VT_EINBOXFULL;
		return;
	}
	put_deliveries(m, op, p);
	dedup_record(m, op, p);
	if (op->rec->id > m->max_id) {
		m->max_id = op->rec->id;
	}
}

static void apply_ack(struct mem *m, struct vt_op *op)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__inbox_key(&op->inbox, key);
	struct mbox *b = klen ? box_find(m, key, klen) : NULL;
	struct mdlv *d = b ? box_get(b, op->id) : NULL;

	if (!d) {
		op->status = VT_EUNKNOWNID;
		return;
	}
	vt__ack_report(op, &d->rec->r);
	dlv_remove(m, d, 0);
}

/* After a batch: free inboxes its acks emptied. */
static void sweep_acked_boxes(struct mem *m, struct vt_op *ops, size_t n)
{
	uint8_t key[VT__INBOX_KEY_MAX];

	for (size_t i = 0; i < n; i++) {
		size_t klen;
		struct mbox *b;

		if (ops[i].kind != VT_OP_ACK) {
			continue;
		}
		klen = vt__inbox_key(&ops[i].inbox, key);
		b = klen ? box_find(m, key, klen) : NULL;
		if (b) {
			box_free_if_empty(m, b);
		}
	}
}

static void mem_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	struct mem *m = self;
	struct prep *preps = calloc(n ? n : 1, sizeof(*preps));

	if (!preps || prepare(m, ops, n, preps) != 0) {
		free(preps);
		done(arg, VT_ENOMEM);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (ops[i].kind == VT_OP_PUT) {
			apply_put(m, &ops[i], &preps[i]);
		} else if (ops[i].kind == VT_OP_ACK) {
			apply_ack(m, &ops[i]);
		} else {
			ops[i].status = VT_EINVAL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		prep_release(m, &ops[i], &preps[i]);
	}
	sweep_acked_boxes(m, ops, n);
	free(preps);
	done(arg, 0);
}

/* ---- list ---- */

static void mem_list(void *self, const struct vt_inbox *inbox, uint64_t after, uint32_t limit,
                     vt_list_cb done, void *arg)
{
	struct mem *m = self;
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__inbox_key(inbox, key);
	struct mbox *b = klen ? box_find(m, key, klen) : NULL;
	struct vt_record *out;
	size_t n = 0, want;

	if (!b || after == UINT64_MAX || limit == 0) {
		done(arg, 0, NULL, 0);
		return;
	}
	want = b->count < limit ? b->count : limit;
	out = calloc(want ? want : 1, sizeof(*out));
	if (!out) {
		done(arg, VT_ENOMEM, NULL, 0);
		return;
	}
	for (size_t i = box_lower(b, after + 1); i < b->len && n < want; i++) {
		if (b->v[i].d) {
			out[n++] = b->v[i].d->rec->r;
		}
	}
	done(arg, 0, out, n);
	free(out);
}

/* ---- expire ---- */

/* Drop the heap's dead dedup entries and deleted records once they dominate. */
static void heaps_trim(struct mem *m)
{
	size_t j = 0;

	if (m->rtime.len > 2 * m->recs.len + 1024) {
		for (size_t i = 0; i < m->rtime.len; i++) {
			if (rec_find(m, m->rtime.v[i].id)) {
				m->rtime.v[j++] = m->rtime.v[i];
			}
		}
		m->rtime.len = j;
		heapify(&m->rtime);
	}
	j = 0;
	if (m->dtime.len > 2 * m->dedup.len + 1024) {
		for (size_t i = 0; i < m->dtime.len; i++) {
			struct mdedup *e = m->dtime.v[i].p;

			if (e->dead) {
				free(e);
			} else {
				m->dtime.v[j++] = m->dtime.v[i];
			}
		}
		m->dtime.len = j;
		heapify(&m->dtime);
	}
}

static void expire_dedup(struct mem *m, int64_t now_ts)
{
	while (m->dtime.len > 0) {
		struct mdedup *e = m->dtime.v[0].p;

		if (!e->dead && vt__within_window(now_ts, e->ts, m->window)) {
			break;
		}
		if (!e->dead) {
			hm_remove(&m->dedup, hm_find(&m->dedup, e->key, e->klen));
		}
		heap_pop(&m->dtime);
		free(e);
	}
}

static uint64_t expire_records(struct mem *m, int64_t before_ts, uint64_t max)
{
	uint64_t removed = 0;

	while (m->rtime.len > 0 && m->rtime.v[0].ts < before_ts && removed < max) {
		struct mrec *r = rec_find(m, m->rtime.v[0].id);

		if (!r) {
			heap_pop(&m->rtime); /* acked away earlier */
			continue;
		}
		while (r->ndeliv > 1 && removed < max) {
			dlv_remove(m, r->dlv, 1);
			removed++;
		}
		if (removed < max) {
			dlv_remove(m, r->dlv, 1); /* the last one frees the record */
			removed++;
			heap_pop(&m->rtime);
		}
	}
	return removed;
}

static void mem_expire(void *self, int64_t now_ts, int64_t before_ts, uint64_t max,
                       vt_expire_cb done, void *arg)
{
	struct mem *m = self;
	uint64_t removed = expire_records(m, before_ts, max);

	expire_dedup(m, now_ts);
	heaps_trim(m);
	done(arg, 0, removed);
}

/* ---- lifetime ---- */

static uint64_t mem_max_id(void *self)
{
	return ((struct mem *)self)->max_id;
}

static void mem_destroy(void *self)
{
	struct mem *m = self;

	if (!m) {
		return;
	}
	for (size_t i = 0; i < m->recs.cap; i++) {
		struct mrec *r = m->recs.slots[i].val;

		for (struct mdlv *d = r ? r->dlv : NULL, *next; d; d = next) {
			next = d->next;
			free(d);
		}
		free(r);
	}
	for (size_t i = 0; i < m->boxes.cap; i++) {
		struct mbox *b = m->boxes.slots[i].val;

		if (b) {
			free(b->v);
			free(b);
		}
	}
	for (size_t i = 0; i < m->dtime.len; i++) {
		free(m->dtime.v[i].p);
	}
	free(m->recs.slots);
	free(m->boxes.slots);
	free(m->dedup.slots);
	free(m->rtime.v);
	free(m->dtime.v);
	free(m);
}

static const struct vt_storage_ops mem_ops = {
        .commit = mem_commit,
        .list = mem_list,
        .expire = mem_expire,
        .max_id = mem_max_id,
        .destroy = mem_destroy,
};

int vt_storage_memory_create(int64_t dedup_window_ms, struct vt_storage *out)
{
	struct mem *m = calloc(1, sizeof(*m));

	if (!m) {
		return VT_ENOMEM;
	}
	m->window = dedup_window_ms;
	m->recs.seed = (uint64_t)(uintptr_t)m * 0x9e3779b97f4a7c15ULL;
	m->boxes.seed = m->recs.seed ^ 0x5bd1e995;
	m->dedup.seed = m->recs.seed ^ 0xc2b2ae35;
	out->ops = &mem_ops;
	out->self = m;
	return 0;
}
