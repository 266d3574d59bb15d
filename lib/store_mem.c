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
#include "store_targets.h"

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
	uint32_t flags; /* VT_REC_* */
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
	uint64_t mark;    /* the PUT that last reached it, against double visits */
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

struct muser;

/* A registered device; its key is the inbox key of (user, device). */
struct mdev {
	struct muser *user;
	struct mdev *prev, *next; /* the user's devices */
	int64_t seen;             /* last seen, wall ms */
	size_t klen;
	uint8_t key[];
};

/* A user with at least one registered device; keyed by vt__user_key. */
struct muser {
	struct mdev *devs;
	uint32_t ndev;
	size_t klen;
	uint8_t key[];
};

struct mgroup {
	size_t klen, len;
	char *data;
	char key[]; /* the group id and its NUL, then the data */
};

struct mem {
	struct hmap recs, boxes, dedup, devs, users, groups;
	struct heap rtime;  /* (ts, id): records, stale once deleted */
	struct heap dtime;  /* (ts, 0, mdedup*): owns every dedup entry */
	struct heap dvtime; /* (seen, serial, mdev*): one item per device */
	uint64_t max_id;
	uint64_t stamp, serial;
	int64_t window;
};

static void *map_get(const struct hmap *h, const void *key, size_t klen)
{
	struct hslot *s = hm_find(h, key, klen);

	return s ? s->val : NULL;
}

static struct mrec *rec_find(struct mem *m, uint64_t id)
{
	uint8_t k[8];

	vt__put_be64(k, id);
	return map_get(&m->recs, k, sizeof(k));
}

static struct mbox *box_find(struct mem *m, const uint8_t *key, size_t klen)
{
	return map_get(&m->boxes, key, klen);
}

static struct mbox *box_of(struct mem *m, const struct vt_inbox *in)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__inbox_key(in, key);

	return klen ? box_find(m, key, klen) : NULL;
}

static struct muser *user_find(struct mem *m, const char *user)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__user_key(user, key);

	return klen ? map_get(&m->users, key, klen) : NULL;
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

/* Clear slot @i without compacting, so a walk over the slots can go on. */
static void box_clear(struct mbox *b, size_t i)
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
	box_clear(b, box_lower(b, id));
	if (b->dead > 16 && b->dead * 2 > b->len) {
		box_compact(b);
	}
}

/* Free an inbox nobody needs: no deliveries, and none a batch reserved. */
static void box_free_if_empty(struct mem *m, struct mbox *b)
{
	if (b->count > 0 || b->pending > 0) {
		return;
	}
	hm_remove(&m->boxes, hm_find(&m->boxes, b->key, b->klen));
	free(b->v);
	free(b);
}

static void rec_delete(struct mem *m, struct mrec *r)
{
	hm_remove(&m->recs, hm_find(&m->recs, r->idkey, sizeof(r->idkey)));
	free(r);
}

/* Unlink @d from its record; the record goes with its last delivery. */
static void dlv_detach(struct mem *m, struct mdlv *d)
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
static void dlv_remove(struct mem *m, struct mdlv *d)
{
	struct mbox *b = d->box;

	box_del(b, d->rec->r.id);
	dlv_detach(m, d);
	box_free_if_empty(m, b);
}

static void dlv_link(struct mrec *r, struct mbox *b, struct mdlv *d)
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
	box_add(b, r->r.id, d);
}

/* ---- commit: prepare ---- */

/*
 * What prepare set aside for one op. A PUT's targets depend on devices
 * registered earlier in the same batch, so prepare reserves for a superset:
 * every inbox the PUT could reach whatever the batch's TOUCHes do.
 */
struct prep {
	struct mrec *rec;   /* PUT: a copy, used if the id is new */
	struct mdedup *dd;  /* PUT: used if the (from, cid) pair is recorded */
	struct mbox **cand; /* PUT: inboxes it may reach, each pending once */
	struct mdlv **pool; /* PUT: a spare delivery per candidate */
	uint32_t ncand, npool;
	size_t keybytes;     /* PUT: key bytes of the candidates */
	struct vt__out *out; /* PUT: out_to */
	struct mdev *dev;    /* TOUCH: the entry of a new device */
	struct muser *user;  /* TOUCH: the entry of a new user */
	struct mbox *claim;  /* TOUCH: the device's inbox, room for a claim */
	uint32_t nclaim;     /* TOUCH: pending slots taken on claim */
	struct mgroup *grp;  /* GROUP: the new state */
};

/* What prepare knows of the whole batch. */
struct batch {
	struct vt_op *ops;
	size_t n, nput;
	size_t *touch; /* indexes of the valid TOUCH ops */
	size_t ntouch, ngroup;
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
	r->r.flags = 0;
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

/* Hold @nslots more slots of the inbox at @key for this batch. */
static struct mbox *box_hold(struct mem *m, const uint8_t *key, size_t klen, uint32_t nslots)
{
	struct mbox *b = box_get_or_create(m, key, klen);

	if (!b) {
		return NULL;
	}
	b->pending += nslots;
	if (box_reserve(b, b->len + b->pending) != 0) {
		b->pending -= nslots;
		box_free_if_empty(m, b);
		return NULL;
	}
	return b;
}

static void box_unhold(struct mem *m, struct mbox *b, uint32_t nslots)
{
	b->pending -= nslots;
	box_free_if_empty(m, b);
}

/* An op whose input cannot be stored fails alone, before anything moves. */
static int put_valid(const struct vt_op *op)
{
	if (!op->rec || op->rec->id == 0 || (op->rec->body_len > 0 && !op->rec->body)) {
		return 0;
	}
	return vt__put_inboxes_valid(op);
}

/* Called for each inbox key a PUT may reach; nonzero stops the walk. */
typedef int (*cand_fn)(struct mem *m, struct prep *p, const uint8_t *key, size_t klen);

/* The devices of @user now and those the batch's TOUCHes may add. */
static int cand_devices(struct mem *m, const struct batch *bt, struct prep *p, const char *user,
                        cand_fn fn)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	struct muser *u = user_find(m, user);
	int rc = 0;

	for (struct mdev *d = u ? u->devs : NULL; d && rc == 0; d = d->next) {
		rc = fn(m, p, d->key, d->klen);
	}
	for (size_t i = 0; i < bt->ntouch && rc == 0; i++) {
		const struct vt_inbox *in = &bt->ops[bt->touch[i]].inbox;

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
	struct mbox *h = klen ? box_find(m, key, klen) : NULL;
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

	if (map_get(&m->devs, key, klen)) {
		return 0; /* a refresh needs nothing */
	}
	p->dev = calloc(1, sizeof(*p->dev) + klen);
	if (!p->dev) {
		return VT_ENOMEM;
	}
	memcpy(p->dev->key, key, klen);
	p->dev->klen = klen;
	u = user_find(m, op->inbox.user);
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

static void prep_release(struct mem *m, struct prep *p)
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
}

static int prep_tables(struct mem *m, const struct batch *bt)
{
	if (hm_reserve(&m->recs, bt->nput) || hm_reserve(&m->dedup, bt->nput) ||
	    heap_reserve(&m->rtime, bt->nput) || heap_reserve(&m->dtime, bt->nput) ||
	    hm_reserve(&m->devs, bt->ntouch) || hm_reserve(&m->users, bt->ntouch) ||
	    heap_reserve(&m->dvtime, bt->ntouch) || hm_reserve(&m->groups, bt->ngroup)) {
		return VT_ENOMEM;
	}
	return 0;
}

/* Count the batch's ops by kind and note its TOUCHes for PUT candidates. */
static int batch_scan(struct batch *bt)
{
	bt->touch = calloc(bt->n ? bt->n : 1, sizeof(*bt->touch));
	if (!bt->touch) {
		return VT_ENOMEM;
	}
	for (size_t i = 0; i < bt->n; i++) {
		struct vt_op *op = &bt->ops[i];

		vt__op_reset(op);
		if (op->kind == VT_OP_PUT && put_valid(op)) {
			bt->nput++;
		} else if (op->kind == VT_OP_TOUCH && vt__touch_valid(op)) {
			bt->touch[bt->ntouch++] = i;
		} else if (op->kind == VT_OP_GROUP && vt__group_valid(op)) {
			bt->ngroup++;
		}
	}
	return 0;
}

static int prep_op(struct mem *m, const struct batch *bt, struct vt_op *op, struct prep *p)
{
	if (op->kind == VT_OP_PUT && put_valid(op)) {
		return prep_put(m, bt, op, p);
	}
	if (op->kind == VT_OP_TOUCH && vt__touch_valid(op)) {
		return prep_touch(m, bt, op, p);
	}
	if (op->kind == VT_OP_GROUP && vt__group_valid(op)) {
		return prep_group(op, p);
	}
	return 0;
}

/* Allocate all a batch could need; on failure release it all again. */
static int prepare(struct mem *m, struct batch *bt, struct prep *preps)
{
	int rc = batch_scan(bt);

	for (size_t i = 0; i < bt->n && rc == 0; i++) {
		rc = prep_op(m, bt, &bt->ops[i], &preps[i]);
	}
	if (rc == 0) {
		rc = prep_tables(m, bt);
	}
	if (rc != 0) {
		for (size_t i = 0; i < bt->n; i++) {
			prep_release(m, &preps[i]);
		}
	}
	return rc;
}

/* ---- commit: apply (cannot fail) ---- */

/* The earlier record id when @op duplicates one within the window, else 0. */
static uint64_t dedup_hit(struct mem *m, const struct vt_op *op, struct prep *p)
{
	struct mdedup *e;

	if (!p->dd) {
		return 0;
	}
	e = map_get(&m->dedup, p->dd->key, p->dd->klen);
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
	struct mbox *b = klen ? box_find(w->m, key, klen) : NULL;

	/* every inbox reached was held by prepare, so b is there */
	if (b) {
		w->fn(w, b, own);
	}
}

static void walk_user(struct walk *w, const char *user)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	struct muser *u = user_find(w->m, user);

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
	struct muser *u = user_find(w->m, own->user);

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
	return op->inbox_cap && b->count >= op->inbox_cap && !box_get(b, op->rec->id);
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

	if (b->mark == m->stamp || box_get(b, w->op->rec->id)) {
		b->mark = m->stamp;
		return; /* reached before, or holds the record already */
	}
	b->mark = m->stamp;
	if (box_full(w->op, b)) {
		w->op->out_skipped += !own;
		return;
	}
	r = rec_find(m, w->op->rec->id);
	if (!r) {
		r = p->rec;
		p->rec = NULL;
		hm_insert(&m->recs, r->idkey, sizeof(r->idkey), r);
		heap_push(&m->rtime, (struct hitem){r->r.ts, r->r.id, NULL});
	}
	if (p->npool == 0) {
		return; /* cannot happen: each inbox reached was a candidate */
	}
	d = p->pool[--p->npool];
	dlv_link(r, b, d);
	vt__out_push(p->out, b->key, b->klen);
}

static void apply_put(struct mem *m, struct vt_op *op, struct prep *p)
{
	struct walk w = {m, op, p, 0, check_cap};

	if (!put_valid(op)) {
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
	struct mbox *b = box_of(m, &op->inbox);
	struct mdlv *d = b ? box_get(b, op->id) : NULL;

	if (!d) {
		op->status = VT_EUNKNOWNID;
		return;
	}
	vt__ack_report(op, &d->rec->r);
	dlv_remove(m, d);
}

static void apply_notified(struct mem *m, struct vt_op *op)
{
	struct mbox *b = box_of(m, &op->inbox);
	struct mdlv *d = b ? box_get(b, op->id) : NULL;

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
	struct mbox *h = klen ? box_find(m, key, klen) : NULL;

	if (!h || !to) {
		return;
	}
	for (size_t i = 0; i < h->len; i++) {
		struct mdlv *d = h->v[i].d;

		if (!d) {
			continue;
		}
		box_clear(h, i);
		if (box_get(to, h->v[i].id)) {
			dlv_detach(m, d);
		} else {
			box_add(to, h->v[i].id, d);
		}
	}
	box_compact(h);
	box_free_if_empty(m, h);
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
	hm_insert(&m->devs, d->key, d->klen, d);
	heap_push(&m->dvtime, (struct hitem){ts, ++m->serial, d});
}

/* A clock that went back must not make a device look older than it was. */
static void apply_touch(struct mem *m, struct vt_op *op, struct prep *p)
{
	uint8_t key[VT__INBOX_KEY_MAX];
	size_t klen = vt__inbox_key(&op->inbox, key);
	struct mdev *d = klen && vt__touch_valid(op) ? map_get(&m->devs, key, klen) : NULL;
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
	u = user_find(m, op->inbox.user);
	claim = !u || !u->devs;
	if (!u) {
		u = p->user;
		p->user = NULL;
		hm_insert(&m->users, u->key, u->klen, u);
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
	s = hm_find(&m->groups, op->group, strlen(op->group));
	if (s) {
		free(s->val);
		hm_remove(&m->groups, s);
	}
	if (p->grp) {
		hm_insert(&m->groups, p->grp->key, p->grp->klen, p->grp);
		p->grp = NULL;
	}
}

static void apply_op(struct mem *m, struct vt_op *op, struct prep *p)
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
	default:
		op->status = VT_EINVAL;
	}
}

/* The out_to arrays live in preps, so they are released after done. */
static void mem_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	struct mem *m = self;
	struct batch bt = {ops, n, 0, NULL, 0, 0};
	struct prep *preps = calloc(n ? n : 1, sizeof(*preps));

	if (!preps || prepare(m, &bt, preps) != 0) {
		free(preps);
		free(bt.touch);
		done(arg, VT_ENOMEM);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		apply_op(m, &ops[i], &preps[i]);
	}
	done(arg, 0);
	for (size_t i = 0; i < n; i++) {
		prep_release(m, &preps[i]);
	}
	free(preps);
	free(bt.touch);
}

/* ---- list ---- */

static void mem_list(void *self, const struct vt_inbox *inbox, uint64_t after, uint32_t limit,
                     vt_list_cb done, void *arg)
{
	struct mem *m = self;
	struct mbox *b = box_of(m, inbox);
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
			out[n] = b->v[i].d->rec->r;
			out[n++].flags = b->v[i].d->flags;
		}
	}
	done(arg, 0, out, n);
	free(out);
}

/* ---- groups ---- */

static int mem_load_groups(void *self,
                           void (*each)(void *arg, const char *group, const char *data, size_t len),
                           void *arg)
{
	struct mem *m = self;

	for (size_t i = 0; i < m->groups.cap; i++) {
		struct mgroup *g = m->groups.slots[i].val;

		if (g) {
			each(arg, g->key, g->data, g->len);
		}
	}
	return 0;
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
			dlv_remove(m, r->dlv);
			removed++;
		}
		if (removed < max) {
			dlv_remove(m, r->dlv); /* the last one frees the record */
			removed++;
			heap_pop(&m->rtime);
		}
	}
	return removed;
}

/* Forget device @d; its inbox is empty. Its heap item is the top one. */
static void dev_delete(struct mem *m, struct mdev *d)
{
	struct muser *u = d->user;

	if (d->prev) {
		d->prev->next = d->next;
	} else {
		u->devs = d->next;
	}
	if (d->next) {
		d->next->prev = d->prev;
	}
	u->ndev--;
	if (!u->devs) {
		hm_remove(&m->users, hm_find(&m->users, u->key, u->klen));
		free(u);
	}
	hm_remove(&m->devs, hm_find(&m->devs, d->key, d->klen));
	heap_pop(&m->dvtime);
	free(d);
}

/* Remove up to @max deliveries of inbox @b; how many went. */
static uint64_t box_drain(struct mem *m, struct mbox *b, uint64_t max)
{
	uint64_t removed = 0;

	for (size_t i = 0; i < b->len && removed < max; i++) {
		struct mdlv *d = b->v[i].d;

		if (d) {
			box_clear(b, i);
			dlv_detach(m, d);
			removed++;
		}
	}
	box_compact(b);
	return removed;
}

/*
 * Remove devices last seen before @before_ts, oldest first, with their
 * deliveries, until @max deliveries went. A device whose deliveries did not
 * all fit stays registered, for the next sweep to finish.
 */
static uint64_t expire_devices(struct mem *m, int64_t before_ts, uint64_t max)
{
	uint64_t removed = 0, forgotten = 0;

	/* devices without deliveries count too, so one sweep stays bounded */
	while (m->dvtime.len > 0 && m->dvtime.v[0].ts < before_ts && removed < max &&
	       forgotten < max) {
		struct mdev *d = m->dvtime.v[0].p;
		struct mbox *b;

		if (d->seen > m->dvtime.v[0].ts) {
			m->dvtime.v[0].ts = d->seen; /* refreshed since: requeue */
			heap_down(&m->dvtime, 0);
			continue;
		}
		b = box_find(m, d->key, d->klen);
		if (b) {
			removed += box_drain(m, b, max - removed);
			if (b->count > 0) {
				break;
			}
			box_free_if_empty(m, b);
		}
		dev_delete(m, d);
		forgotten++;
	}
	return removed;
}

static void mem_expire(void *self, int64_t now_ts, int64_t before_ts, int64_t device_before_ts,
                       uint64_t max, vt_expire_cb done, void *arg)
{
	struct mem *m = self;
	uint64_t removed = expire_records(m, before_ts, max);

	removed += expire_devices(m, device_before_ts, max - removed);
	expire_dedup(m, now_ts);
	heaps_trim(m);
	done(arg, 0, removed);
}

/* ---- lifetime ---- */

static uint64_t mem_max_id(void *self)
{
	return ((struct mem *)self)->max_id;
}

/* Free every value of @h and its slots. */
static void map_free_all(struct hmap *h)
{
	for (size_t i = 0; i < h->cap; i++) {
		free(h->slots[i].val);
	}
	free(h->slots);
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
	}
	for (size_t i = 0; i < m->boxes.cap; i++) {
		struct mbox *b = m->boxes.slots[i].val;

		if (b) {
			free(b->v);
		}
	}
	for (size_t i = 0; i < m->dtime.len; i++) {
		free(m->dtime.v[i].p);
	}
	map_free_all(&m->recs);
	map_free_all(&m->boxes);
	map_free_all(&m->devs);
	map_free_all(&m->users);
	map_free_all(&m->groups);
	free(m->dedup.slots);
	free(m->rtime.v);
	free(m->dtime.v);
	free(m->dvtime.v);
	free(m);
}

static const struct vt_storage_ops mem_ops = {
        .commit = mem_commit,
        .list = mem_list,
        .expire = mem_expire,
        .load_groups = mem_load_groups,
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
	m->devs.seed = m->recs.seed ^ 0x27d4eb2f;
	m->users.seed = m->recs.seed ^ 0x165667b1;
	m->groups.seed = m->recs.seed ^ 0x85ebca6b;
	out->ops = &mem_ops;
	out->self = m;
	return 0;
}
