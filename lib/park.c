/*
 * park.c - mode "always": a held event's PUT waits for the acks of its copies.
 *
 * A one-to-one event held for devices that keep up (hold.c) is journaled:
 * its PUT writes its (from, cid) pair and an entry per copy, and each ack
 * deletes an entry again (journal.c). Most acks come a millisecond after
 * the push, so most entries are written only to be deleted. Here such a PUT
 * is pushed when it is taken (early.c) and parked, out of the batches. An
 * ack of a copy settles it: the copy takes no entry. Once every copy is
 * acked, or one by a recipient (whose receipt must not reach the sender
 * before "accepted"), or at its due time (ack_wait_ms after its take), the
 * PUT goes to the current batch, with entries for the copies still owed;
 * "accepted" follows its commit as for any PUT. So an event acked in time costs its
 * pair alone, as in mode "offline", and nothing accepted is lost: by then
 * each copy is acked or journaled.
 *
 * The pair must not commit before the entries of the copies not acked: a
 * crash in between would leave a pair that answers the sender's re-send as
 * a duplicate of an event nothing holds any more. So the PUT carries both.
 * A crash before it commits leaves neither: the sender's re-send is
 * delivered again, under a new id with the same cid (docs/PROTOCOL.md).
 *
 * Whatever else touches a parked event's copies (a release that is not a
 * WebSocket ack, a copy written for a device gone offline, a re-send of its
 * pair, a clean stop) sends its PUT to the batch first, entries and all, so
 * that storage sees the PUT before what follows from it.
 *
 * A sender hears "accepted" in the order of ids (docs/PROTOCOL.md,
 * Ordering), and batches answer in their order: so a PUT goes to a batch
 * only after every PUT its sender parked before it, and one that is not
 * parked only after all of them. The parked are chained by sender, in
 * buckets: a PUT of another sender in the same bucket may go early, which
 * costs it its wait, never an order.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

int vt__park_init(struct vt_engine *e)
{
	if (e->cfg.durability != VT_DURABLE_ALWAYS || e->cfg.ack_wait_ms == 0 ||
	    e->st.ops->replay == NULL) {
		return 0;
	}
	e->park_by = calloc(2 * VT_PARK_BUCKETS, sizeof(*e->park_by));
	e->park_from = e->park_by != NULL ? e->park_by + VT_PARK_BUCKETS : NULL;
	return e->park_by != NULL ? 0 : VT_ENOMEM;
}

void vt__park_free(struct vt_engine *e)
{
	free(e->park_by);
	e->park_by = NULL;
	e->park_from = NULL;
}

static struct vt_park **bucket(struct vt_engine *e, uint64_t pair)
{
	return &e->park_by[pair & (VT_PARK_BUCKETS - 1)];
}

static struct vt_park **from_bucket(struct vt_engine *e, const char *from)
{
	return &e->park_from[vt_tally_hash(VT_TALLY_SEED, from) & (VT_PARK_BUCKETS - 1)];
}

static int has_pair(const struct vt_pend *p)
{
	return p->dedup && p->msg->rec.cid[0] != '\0';
}

/* The list @k is on: waiting for acks, by due, or riding. */
static struct vt_park **head_of(struct vt_engine *e, const struct vt_park *k)
{
	return k->riding ? &e->ride_head : &e->park_head;
}

static struct vt_park **tail_of(struct vt_engine *e, const struct vt_park *k)
{
	return k->riding ? &e->ride_tail : &e->park_tail;
}

static void list_add(struct vt_engine *e, struct vt_park *k)
{
	struct vt_park **head = head_of(e, k), **tail = tail_of(e, k);

	k->prev = *tail;
	k->next = NULL;
	if (*tail != NULL) {
		(*tail)->next = k;
	} else {
		*head = k;
	}
	*tail = k;
}

static void list_del(struct vt_engine *e, struct vt_park *k)
{
	if (k->prev != NULL) {
		k->prev->next = k->next;
	} else {
		*head_of(e, k) = k->next;
	}
	if (k->next != NULL) {
		k->next->prev = k->prev;
	} else {
		*tail_of(e, k) = k->prev;
	}
}

/* @k takes its place among the parked, by its pair; its list is the caller's. */
static void link_park(struct vt_engine *e, struct vt_park *k)
{
	struct vt_park **f;

	if (has_pair(&k->pend)) {
		struct vt_park **b = bucket(e, k->pair);

		k->same = *b;
		*b = k;
	}

	/* Parked as taken, so in the order of ids: the newest. */
	f = from_bucket(e, k->pend.msg->rec.from);
	k->older = *f;
	k->newer = NULL;
	if (*f != NULL) {
		(*f)->newer = k;
	}
	*f = k;
	k->pend.msg->park = k;
	e->stats.ack_waiting++;
}

static void unlink_park(struct vt_engine *e, struct vt_park *k)
{
	if (has_pair(&k->pend)) {
		struct vt_park **at = bucket(e, k->pair);

		while (*at != k) {
			at = &(*at)->same;
		}
		*at = k->same;
	}
	if (k->newer != NULL) {
		k->newer->older = k->older;
	} else {
		*from_bucket(e, k->pend.msg->rec.from) = k->older;
	}
	if (k->older != NULL) {
		k->older->newer = k->newer;
	}
	list_del(e, k);
	k->pend.msg->park = NULL;
	e->stats.ack_waiting--;
}

/* The copies of @p that take an entry: offered, not settled. */
static uint32_t owed(const struct vt_pend *p)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->nheld_to; i++) {
		n += !p->held_to[i].settled;
	}
	return n;
}

/*
 * @p goes to storage with the entries of its offered copies: count them
 * open until released, as vt__hold() counts a PUT's. Each is released
 * later, by an ack or a write.
 */
static void entries_open(struct vt_engine *e, const struct vt_pend *p)
{
	e->stats.journal_open += owed(p);
}

/* Settle the copies of @p that were not offered: a device held the event
 * already. Returns how many were offered. */
static uint32_t settle_unoffered(struct vt_pend *p)
{
	uint32_t left = 0;

	for (uint32_t i = 0; i < p->nheld_to; i++) {
		p->held_to[i].settled = !p->held_to[i].offered;
		left += p->held_to[i].offered;
	}
	return left;
}

/*
 * Parked @k goes to the current batch: its pair and the entries of the
 * copies not acked, or, if its copies still ride, the PUT as taken (they
 * are offered when it commits, as for any held event). Returns the op, or
 * NULL when out of memory: then its sender hears an error, and neither its
 * pair nor its entries are written.
 */
static struct vt_pend *unpark_one(struct vt_engine *e, struct vt_park *k)
{
	struct vt_pend *p;

	unlink_park(e, k);
	p = vt__batch_add(e, VT_PEND_ACCEPT);
	if (!k->riding) {
		entries_open(e, &k->pend);
	}
	if (p != NULL) {
		*p = k->pend;
		free(k);
		return p;
	}
	vt_log(VT_LOG_ERROR, "event not written: out of memory id=%llu",
	       (unsigned long long)k->pend.msg->rec.id);
	vt__reply_error(e, &k->pend.origin, VT_ENOMEM, "out of memory", k->pend.msg->rec.cid);
	vt__early_done(e, &k->pend);
	if (k->pend.fell) {
		vt__park_fell_done(e, &k->pend);
	}
	vt_msg_unref(k->pend.msg);
	vt__journal_devices_free(e, &k->pend);
	free(k->pend.users);
	free(k);
	return NULL;
}

/* The oldest parked PUT chained before @k, or @k. */
static struct vt_park *oldest_before(struct vt_park *k)
{
	while (k->older != NULL) {
		k = k->older;
	}
	return k;
}

/* Parked @k goes to the current batch, after those parked before it in its chain. */
static struct vt_pend *unpark(struct vt_engine *e, struct vt_park *k)
{
	struct vt_park *o = oldest_before(k);

	while (o != k) {
		struct vt_park *next = o->newer;

		unpark_one(e, o);
		o = next;
	}
	return unpark_one(e, k);
}

/* Reverse the ops [@from, @to) of the current batch. */
static void reverse(struct vt_engine *e, size_t from, size_t to)
{
	struct vt_pend tmp;

	while (from + 1 < to) {
		tmp = e->cur.pend[from];
		e->cur.pend[from++] = e->cur.pend[--to];
		e->cur.pend[to] = tmp;
	}
}

struct vt_pend *vt__park_before(struct vt_engine *e, size_t at)
{
	struct vt_pend *p = &e->cur.pend[at];
	struct vt_park *newest;
	size_t end = e->cur.len;

	if (e->park_from == NULL || (newest = *from_bucket(e, p->msg->rec.from)) == NULL) {
		return p;
	}

	/* They join the batch after @p and what followed it; turning the
	 * two runs around in place puts them first, with nothing to allocate. */
	unpark(e, newest);
	reverse(e, at, end);
	reverse(e, end, e->cur.len);
	reverse(e, at, e->cur.len);
	return &e->cur.pend[at + (e->cur.len - end)];
}

/* @k's copies were pushed: it waits for their acks until its due time. */
static void wait_acks(struct vt_engine *e, struct vt_park *k, uint32_t left)
{
	k->left = left;
	k->due = vt__now(e) + e->cfg.ack_wait_ms;
	k->riding = 0;
	list_add(e, k);
	if (k->prev == NULL) {
		vt__timers_changed(e); /* the first due; later ones fall due after it */
	}
}

struct vt_pend *vt__park(struct vt_engine *e, struct vt_pend *p, int ride)
{
	uint32_t left = ride ? 0 : settle_unoffered(p);
	struct vt_msg *m = p->msg;
	struct vt_park *k;
	int rc;

	/* An offer that failed for memory wrote its copy, by an op after @p:
	 * @p keeps its place, and its entries, before that op. */
	if ((!ride && left == 0) || p != &e->cur.pend[e->cur.len - 1] ||
	    (k = calloc(1, sizeof(*k))) == NULL) {
		if (!ride) {
			entries_open(e, p);
		}
		return vt__park_before(e, (size_t)(p - e->cur.pend));
	}
	k->pend = *p;
	k->pair = has_pair(p) ? vt__early_pair(&p->msg->rec) : 0;
	e->cur.len--;
	link_park(e, k);
	if (!ride) {
		wait_acks(e, k, left);
		return &k->pend;
	}

	/* Its copies ride on the last batch, if one is pending, after what it
	 * holds: the events ahead of them. */
	k->riding = 1;
	list_add(e, k);
	rc = vt__hold_rider(e, m, 1);
	if (rc < 0) {
		return unpark(e, k);
	}
	if (rc > 0) {
		return &k->pend;
	}

	/* No batch is pending: nothing is ahead after all (a shared count). */
	vt__park_ride(e, m);
	if (m->park != NULL) {
		return &m->park->pend;
	}
	return e->cur.len > 0 && e->cur.pend[e->cur.len - 1].msg == m ?
		       &e->cur.pend[e->cur.len - 1] : NULL;
}

typedef void late_fn(struct vt_engine *e, const char *user);

/* @fn for each user @p holds copies for, its sender's too. */
static void each_held_user(struct vt_engine *e, const struct vt_pend *p, late_fn *fn)
{
	for (uint32_t i = p->nusers; i < p->nusers + p->nheld; i++) {
		fn(e, vt__pend_user(p, i));
	}
	if (p->hold_own) {
		fn(e, p->user);
	}
}

/*
 * Riding @k cannot be held now (a user stopped keeping up, or its sender's
 * connection went): its batch offers what it can and stores the rest, as
 * for any held event. Until that completes its users count as late (hold.c),
 * so the copies riding behind it for them go the same way, after it, and
 * none passes it.
 */
static void fall_back(struct vt_engine *e, struct vt_park *k)
{
	each_held_user(e, &k->pend, vt__hold_late_begin);
	k->pend.fell = 1;
	unpark(e, k);
}

void vt__park_fell_done(struct vt_engine *e, struct vt_pend *p)
{
	p->fell = 0;
	each_held_user(e, p, vt__hold_late_done);
}

void vt__park_ride(struct vt_engine *e, struct vt_msg *m)
{
	struct vt_park *k = m->park;
	uint32_t left;

	if (k == NULL || !k->riding) {
		return; /* it went to a batch meanwhile, copies and all */
	}
	if (!vt__hold_still_clear(e, &k->pend)) {
		fall_back(e, k);
		return;
	}
	list_del(e, k);
	k->riding = 0;

	/* A copy that cannot be queued is written now, and its release finds
	 * the PUT still parked: it is not parked while its copies are offered. */
	m->park = NULL;
	vt__early_ride(e, &k->pend);
	m->park = k;
	left = settle_unoffered(&k->pend);
	if (left == 0) {
		list_add(e, k); /* to leave it as any parked PUT does */
		unpark(e, k);
		return;
	}
	wait_acks(e, k, left);
}

int vt__park_acked(struct vt_engine *e, struct vt_msg *m, const struct vt_identity *who)
{
	struct vt_park *k = m->park;

	for (uint32_t i = 0; k != NULL && !k->riding && i < k->pend.nheld_to; i++) {
		struct vt_dev *d = &k->pend.held_to[i];

		if (d->settled || strcmp(d->user, who->user) != 0 ||
		    strcmp(d->device, who->device) != 0) {
			continue;
		}
		/* Its sender hears "accepted" before the receipt this ack makes:
		 * the PUT goes ahead of it, the other copies' entries with it. */
		d->settled = 1;
		if (--k->left == 0 || strcmp(who->user, m->rec.from) != 0) {
			unpark(e, k);
		}
		return 1;
	}
	return 0;
}

void vt__park_out(struct vt_engine *e, struct vt_msg *m)
{
	if (m->park != NULL) {
		unpark(e, m->park);
	}
}

void vt__park_resent(struct vt_engine *e, const struct vt_record *rec)
{
	uint64_t pair;
	struct vt_park *k;

	if ((e->park_head == NULL && e->ride_head == NULL) || rec->cid[0] == '\0') {
		return;
	}
	pair = vt__early_pair(rec);
	for (k = *bucket(e, pair); k != NULL; k = k->same) {
		const struct vt_record *r = &k->pend.msg->rec;

		if (k->pair == pair && strcmp(r->from, rec->from) == 0 &&
		    strcmp(r->cid, rec->cid) == 0) {
			unpark(e, k);
			return;
		}
	}
}

void vt__park_due(struct vt_engine *e, uint64_t now)
{
	while (e->park_head != NULL && e->park_head->due <= now) {
		unpark(e, e->park_head);
	}
}

uint64_t vt__park_next_due(const struct vt_engine *e)
{
	return e->park_head != NULL ? e->park_head->due : UINT64_MAX;
}

void vt__park_all_out(struct vt_engine *e)
{
	while (e->ride_head != NULL) {
		unpark(e, e->ride_head);
	}
	while (e->park_head != NULL) {
		unpark(e, e->park_head);
	}
}
