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
 *
 * The backend's other files, one concern each, are listed in store_mem_int.h.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>

#include "store_key.h"
#include "store_mem_int.h"
#include "store_targets.h"

/* ---- dedup entries ---- */

/* Forget the oldest dedup entry of the heap (a dead one, or the pair it names). */
static void pop_dedup(struct mem *m)
{
	struct mdedup *e = m->dtime.v[0].p;

	if (!e->dead) {
		vt__mem_hm_remove(&m->dedup, vt__mem_hm_find(&m->dedup, e->key, e->klen));
	}
	vt__mem_heap_pop(&m->dtime);
	free(e);
}

/*
 * Keep at most m->dedup_max pairs, forgetting the oldest first, and count
 * those still inside their window for the log: without a bound a week of
 * pairs at a busy rate would take all the memory there is.
 */
static void bound_dedup(struct mem *m)
{
	uint64_t n = 0;
	int64_t young = 0;

	while (m->dedup.len > m->dedup_max && m->dtime.len > 0) {
		struct mdedup *e = m->dtime.v[0].p;

		if (!e->dead) {
			n++;
			young = e->ts;
		}
		pop_dedup(m);
	}
	vt__forgot_add(&m->forgot, n, young);
}

void vt__mem_set_dedup_max(struct vt_storage *st, size_t max)
{
	struct mem *m = st->self;

	m->dedup_max = max;
}

/* ---- commit ---- */

/*
 * Prepare the @n ops and the PUTs of the receipts they may owe (@mr), then
 * apply the ops and store the receipts: 0, or VT_ENOMEM with nothing
 * changed. The out_to arrays live in *@preps, released after done.
 */
static int apply_all(struct mem *m, struct vt_op *ops, size_t n, struct mem_rcpts *mr,
		     struct prep **preps)
{
	struct batch bt = {ops, n, mr->puts, mr->rs.nall, 0, NULL, 0, 0};
	size_t all = n + mr->rs.nall;

	*preps = calloc(all ? all : 1, sizeof(**preps));
	if (!*preps || vt__mem_prepare(m, &bt, *preps) != 0) {
		free(*preps);
		free(bt.touch);
		*preps = NULL;
		return VT_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		vt__mem_apply_op(m, &ops[i], &(*preps)[i]);
	}
	vt__mem_rcpts_store(m, ops, n, mr, *preps + n);
	free(bt.touch);
	return 0;
}

static void release_all(struct mem *m, struct prep *preps, size_t n)
{
	for (size_t i = 0; preps && i < n; i++) {
		vt__mem_prep_release(m, &preps[i]);
	}
	free(preps);
}

/*
 * The receipts the batch's acks owe (storage.h, VT_OP_ACK) are stored as
 * PUTs after the batch's ops, before done, with memory set aside before any
 * op ran (store_mem_rcpt.c): running out of it fails the batch whole.
 */
static void mem_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	struct mem *m = self;
	struct mem_rcpts mr;
	struct prep *preps = NULL;
	int rc = vt__mem_rcpts_plan(m, ops, n, &mr);

	if (rc == 0) {
		rc = apply_all(m, ops, n, &mr, &preps);
	}
	if (rc != 0) {
		for (size_t i = 0; i < n; i++) {
			vt__op_reset(&ops[i]);
		}
	}
	bound_dedup(m);
	done(arg, rc);
	release_all(m, preps, n + mr.rs.nall);
	vt__mem_rcpts_free(&mr);
}

/* ---- list ---- */

static void mem_list(void *self, const struct vt_inbox *inbox, uint64_t after, uint32_t limit,
                     vt_list_cb done, void *arg)
{
	struct mem *m = self;
	struct mbox *b = vt__mem_box_of(m, inbox);
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
	for (size_t i = vt__mem_box_lower(b, after + 1); i < b->len && n < want; i++) {
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
			if (vt__mem_rec_find(m, m->rtime.v[i].id)) {
				m->rtime.v[j++] = m->rtime.v[i];
			}
		}
		m->rtime.len = j;
		vt__mem_heapify(&m->rtime);
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
		vt__mem_heapify(&m->dtime);
	}
}

static void expire_dedup(struct mem *m, int64_t now_ts)
{
	while (m->dtime.len > 0) {
		struct mdedup *e = m->dtime.v[0].p;

		if (!e->dead && vt__within_window(now_ts, e->ts, m->window)) {
			break;
		}
		pop_dedup(m);
	}
}

static uint64_t expire_records(struct mem *m, int64_t before_ts, uint64_t max)
{
	uint64_t removed = 0;

	while (m->rtime.len > 0 && m->rtime.v[0].ts < before_ts && removed < max) {
		struct mrec *r = vt__mem_rec_find(m, m->rtime.v[0].id);

		if (!r) {
			vt__mem_heap_pop(&m->rtime); /* acked away earlier */
			continue;
		}
		while (r->ndeliv > 1 && removed < max) {
			vt__mem_dlv_remove(m, r->dlv);
			removed++;
		}
		if (removed < max) {
			vt__mem_dlv_remove(m, r->dlv); /* the last one frees the record */
			removed++;
			vt__mem_heap_pop(&m->rtime);
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
		vt__mem_hm_remove(&m->users, vt__mem_hm_find(&m->users, u->key, u->klen));
		free(u);
	}
	vt__mem_hm_remove(&m->devs, vt__mem_hm_find(&m->devs, d->key, d->klen));
	vt__mem_heap_pop(&m->dvtime);
	free(d);
}

/* Remove up to @max deliveries of inbox @b; how many went. */
static uint64_t box_drain(struct mem *m, struct mbox *b, uint64_t max)
{
	uint64_t removed = 0;

	for (size_t i = 0; i < b->len && removed < max; i++) {
		struct mdlv *d = b->v[i].d;

		if (d) {
			vt__mem_box_clear(b, i);
			vt__mem_dlv_detach(m, d);
			removed++;
		}
	}
	vt__mem_box_compact(b);
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
			vt__mem_heap_down(&m->dvtime, 0);
			continue;
		}
		b = vt__mem_box_find(m, d->key, d->klen);
		if (b) {
			removed += box_drain(m, b, max - removed);
			if (b->count > 0) {
				break;
			}
			vt__mem_box_free_if_empty(m, b);
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
	vt__mem_revoked_expire(m, device_before_ts);
	heaps_trim(m);
	vt__forgot_report(&m->forgot, 0); /* what the last minute's commits forgot */
	done(arg, 0, removed);
}

/* ---- lifetime ---- */

static uint64_t mem_max_id(void *self)
{
	return ((struct mem *)self)->max_id;
}

static int mem_dedup_peek(void *self, const struct vt_record *rec, uint64_t *id)
{
	struct mem *m = self;
	uint8_t key[VT__DEDUP_KEY_MAX];
	size_t klen = vt__dedup_key(rec, key);
	const struct mdedup *e = klen ? vt__mem_map_get(&m->dedup, key, klen) : NULL;

	if (e == NULL || e->id == rec->id || !vt__within_window(rec->ts, e->ts, m->window)) {
		return 0;
	}
	*id = e->id;
	return 1;
}

/* Free every value of @h and its slots. */
static void map_free_all(struct hmap *h)
{
	for (size_t i = 0; i < h->cap; i++) {
		free(h->slots[i].val);
	}
	free(h->slots);
}

static void mem_pairs(void *self, struct vt_storage_pairs *out)
{
	struct mem *m = self;

	out->kept = m->dedup.len;
	out->forgotten = vt__forgot_total(&m->forgot);
}

static void mem_destroy(void *self)
{
	struct mem *m = self;

	if (!m) {
		return;
	}
	vt__forgot_report(&m->forgot, 1);
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
	map_free_all(&m->revoked);
	map_free_all(&m->revusers);
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
        .dedup_peek = mem_dedup_peek,
        .pairs = mem_pairs,
        .load_revoked = vt__mem_load_revoked,
};

int vt_storage_memory_create(int64_t dedup_window_ms, struct vt_storage *out)
{
	struct mem *m = calloc(1, sizeof(*m));

	if (!m) {
		return VT_ENOMEM;
	}
	m->window = dedup_window_ms;
	m->dedup_max = MEM_DEDUP_MAX;
	m->forgot = (struct vt__forgot){.who = "memory store", .window = dedup_window_ms};
	m->recs.seed = (uint64_t)(uintptr_t)m * 0x9e3779b97f4a7c15ULL;
	m->boxes.seed = m->recs.seed ^ 0x5bd1e995;
	m->dedup.seed = m->recs.seed ^ 0xc2b2ae35;
	m->devs.seed = m->recs.seed ^ 0x27d4eb2f;
	m->users.seed = m->recs.seed ^ 0x165667b1;
	m->groups.seed = m->recs.seed ^ 0x85ebca6b;
	m->revoked.seed = m->recs.seed ^ 0x9e3779b1;
	m->revusers.seed = m->recs.seed ^ 0x7f4a7c15;
	out->ops = &mem_ops;
	out->self = m;
	return 0;
}
