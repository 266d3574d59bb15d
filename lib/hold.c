/*
 * hold.c - mode "offline": events held in memory for devices that keep up.
 *
 * With --durability offline an event need not be written while every
 * registered device of its recipient is connected and keeping up: it is
 * offered to them from memory, acked there, and written for a device only
 * when it goes offline for that device (retries exhausted, connection lost,
 * a clean stop: item_offline in conn.c). A client event's (from, cid) pair
 * is still written before "accepted", so a re-send is recognised after a
 * restart.
 *
 * The rule is per recipient user. A group post is held for the members whose
 * devices all keep up and stored, as one record, for the others. Recipients
 * are fixed when the post is taken, as for a stored post, so a group change
 * taken after the post does not move them, even one that commits first.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

/*
 * Connected, registered, nothing stored waiting for it, its output not
 * blocked, room in its queue. The queue may be deeper than the window: a
 * device behind by a burst takes it from memory, while a slower path
 * through storage would only put it further behind (docs/PERFORMANCE.md,
 * "Past the peak").
 */
static int conn_clear(const struct vt_engine *e, const struct vt_conn *c)
{
	return !c->closing && !c->touching && !c->backlog && !c->fetching && !c->blocked &&
	       c->nqueued < e->cfg.hold_queue;
}

/*
 * Is every registered device of @user, but @skip, connected and keeping up,
 * with no held event of theirs on its way to storage (store_late)? One held
 * now would be pushed ahead of that older one. And is there room in the
 * held memory for a copy with a body of @body_len on each device? Counting
 * every copy, not one, a user with many devices does not pass the bound by
 * all of them at once. Returns the user when all of that holds, else NULL.
 */
static struct vt_user *user_clear(const struct vt_engine *e, const char *user,
				  const struct vt_conn *skip, size_t body_len)
{
	struct vt_user *u = vt__user(e, user);

	if (u == NULL || u->ndevices == 0 || u->nconns != u->ndevices || vt__hold_late(e, user) ||
	    e->stats.held_bytes + (uint64_t)u->nconns * vt__held_cost(body_len) >
		    e->cfg.hold_memory) {
		return NULL;
	}
	for (const struct vt_conn *c = u->conns; c != NULL; c = c->sib) {
		if (c != skip && !conn_clear(e, c)) {
			return NULL;
		}
	}
	return u;
}

int vt__hold_still_clear(const struct vt_engine *e, const struct vt_pend *p)
{
	const struct vt_conn *from = p->origin.conn;

	for (uint32_t i = p->nusers; i < p->nusers + p->nheld; i++) {
		if (user_clear(e, vt__pend_user(p, i), NULL, p->msg->rec.body_len) == NULL) {
			return 0;
		}
	}
	return !p->hold_own || (from != NULL && from->user != NULL && !from->closing &&
				user_clear(e, p->user, from, p->msg->rec.body_len) != NULL);
}

int vt__hold_late(const struct vt_engine *e, const char *user)
{
	return e->late.len > 0 && vt_map_get(&e->late, user) != NULL;
}

/* Count a late store for @user (@delta 1) or its completion (-1). */
static void count_late(struct vt_engine *e, const char *user, int delta)
{
	if (delta < 0) {
		vt_map_decr(&e->late, user);
	} else if (vt_map_incr(&e->late, user) != 0) {
		/* Only order is at stake: a later event may be pushed first. */
		vt_log(VT_LOG_WARN, "out of memory counting a late store user=%s", user);
	}
}

int vt__hold_possible(const struct vt_engine *e, const struct vt_conn *from)
{
	return (e->cfg.durability == VT_DURABLE_OFFLINE || vt__journal_on(e)) && from != NULL &&
	       !from->closing;
}

static void swap_users(struct vt_pend *p, uint32_t i, uint32_t j)
{
	char tmp[VT_ID_MAX + 1];

	if (i == j || p->users == NULL) {
		return;
	}
	memcpy(tmp, p->users[i], sizeof(tmp));
	memcpy(p->users[i], p->users[j], sizeof(tmp));
	memcpy(p->users[j], tmp, sizeof(tmp));
}

void vt__hold_split(struct vt_engine *e, struct vt_pend *p, const struct vt_conn *from)
{
	uint32_t n = p->nusers;

	/* Held recipients move behind the stored ones. */
	for (uint32_t i = n; i-- > 0;) {
		if (user_clear(e, vt__pend_user(p, i), NULL, p->msg->rec.body_len)) {
			p->nusers--;
			swap_users(p, i, p->nusers);
		}
	}
	p->nheld = n - p->nusers;

	/* A message to oneself reaches every device as a recipient already. */
	if (p->own_copies && strcmp(p->msg->rec.to, from->id.user) != 0 &&
	    user_clear(e, from->id.user, from, p->msg->rec.body_len)) {
		p->own_copies = 0;
		p->hold_own = 1;
	}
	if (e->cfg.durability != VT_DURABLE_OFFLINE && (p->nheld > 0 || p->hold_own)) {
		vt__journal_devices(e, p, from);
	}
}

void vt__hold_offer(struct vt_user *u, const struct vt_conn *skip, struct vt_msg *m)
{
	for (struct vt_conn *c = u->conns, *next; c != NULL; c = next) {
		next = c->sib;
		if (c != skip) {
			vt__conn_hold(c, m, 0);
		}
	}
}

/*
 * Store @m, held so far, for the @n users in @users (an array it takes; NULL
 * names the event's own "to") that stopped keeping up before it was
 * offered, and for the other devices of the sender of @own unless it is
 * NULL: like any stored event's deliveries, to the same record. It reaches
 * storage after events taken later, so until it commits nothing more is
 * held for those users. The journal entries of @jp's copies not offered
 * (NULL: none) are released once it is written, not before (journal.c);
 * with @jp it writes those copies, to the devices named at the take, and
 * none to a device registered since (batch.c, prepare_put).
 */
static void store_late(struct vt_engine *e, struct vt_msg *m, char (*users)[VT_ID_MAX + 1],
		       uint32_t n, const struct vt_pend *own, struct vt_pend *jp)
{
	struct vt_pend *st = vt__batch_put(e, VT_PEND_STORE, m);

	if (st == NULL) {
		free(users);
		vt_log(VT_LOG_ERROR, "held event lost: out of memory id=%llu",
		       (unsigned long long)m->rec.id);
		return;
	}
	st->users = users;
	st->nusers = n;
	if (own != NULL) {
		vt__copy(st->user, sizeof(st->user), own->user);
		vt__copy(st->device, sizeof(st->device), own->device);
		st->own_copies = 1;
	}
	st->late = 1;
	if (jp != NULL) {
		st->held_to = jp->held_to;
		st->nheld_to = jp->nheld_to;
		st->held_pooled = jp->held_pooled;
		st->release = 1;
		jp->held_to = NULL;
		jp->nheld_to = 0;
		jp->held_pooled = 0;
	}
	for (uint32_t i = 0; i < st->nusers; i++) {
		count_late(e, vt__pend_user(st, i), 1);
	}
	if (own != NULL) {
		count_late(e, st->user, 1);
	}
}

/*
 * A late store for @user completed. With none left, @user's devices list
 * what was stored while it was on its way (vt__conn_offer left it there).
 */
static void late_done(struct vt_engine *e, const char *user)
{
	struct vt_user *u;

	count_late(e, user, -1);
	if (vt__hold_late(e, user) || (u = vt__user(e, user)) == NULL) {
		return;
	}
	for (struct vt_conn *c = u->conns, *next; c != NULL; c = next) {
		next = c->sib;
		vt__conn_pump(c);
	}
}

void vt__hold_late_begin(struct vt_engine *e, const char *user)
{
	count_late(e, user, 1);
}

void vt__hold_late_done(struct vt_engine *e, const char *user)
{
	late_done(e, user);
}

void vt__hold_stored(struct vt_engine *e, struct vt_pend *p)
{
	for (uint32_t i = 0; i < p->nusers; i++) {
		late_done(e, vt__pend_user(p, i));
	}
	if (p->own_copies) {
		late_done(e, p->user);
	}
}

/*
 * A journaled @p is offered only to the devices it has entries for, named
 * when it was taken: a device registered since gets nothing, as it would get
 * nothing stored.
 */
void vt__hold_offer_copies(struct vt_pend *const *ops, size_t at, struct vt_user *u,
			   const struct vt_conn *skip)
{
	struct vt_msg *m = (*ops)[at].msg;

	if (!(*ops)[at].journal) {
		vt__hold_offer(u, skip, m);
		return;
	}
	for (struct vt_conn *c = u->conns, *next; c != NULL; c = next) {
		/* Read again after each offer: see engine_internal.h. */
		struct vt_dev *d = c != skip ? vt__journal_dev(&(*ops)[at], c) : NULL;

		next = c->sib;
		if (d != NULL) {
			d->offered = (uint8_t)vt__conn_hold(c, m, 1);
		}
	}
}

/* Offer @p's held copies; store the ones whose users stopped keeping up. */
static void hold_copies(struct vt_engine *e, struct vt_pend *p)
{
	struct vt_pend *const op = p; /* of a completed batch: it does not move */
	struct vt_conn *from = vt__conn_find(e, p->user, p->device);
	uint32_t late = 0;
	int own = 0;

	/* Who still keeps up gets it from memory; the others move to the front
	 * of the held ones, to be stored. */
	for (uint32_t i = p->nusers; i < p->nusers + p->nheld; i++) {
		const char *user = vt__pend_user(p, i);
		struct vt_user *u = user_clear(e, user, NULL, p->msg->rec.body_len);

		if (u != NULL) {
			vt__hold_offer_copies(&op, 0, u, NULL);
		} else {
			swap_users(p, p->nusers + late++, i);
		}
	}
	if (p->hold_own) {
		if (from != NULL && user_clear(e, p->user, from, p->msg->rec.body_len)) {
			vt__hold_offer_copies(&op, 0, from->user, from);
		} else {
			own = 1;
		}
	}
	if (late == 0 && !own) {
		return;
	}
	/* @p is done with its list: the late ones move to its front, and the
	 * list to the new op (a thousand members' names are not copied). */
	if (p->users != NULL && late > 0) {
		memmove(p->users, p->users + p->nusers, late * sizeof(*p->users));
	}
	store_late(e, p->msg, late > 0 ? p->users : NULL, late, own ? p : NULL,
		   p->journal ? p : NULL);
	if (late > 0) {
		p->users = NULL;
	}
}

void vt__hold(struct vt_engine *e, struct vt_pend *p)
{
	if (p->journal) {
		/* Its entries are written: each is released when its copy is
		 * acked or written. One neither offered nor written stays for
		 * the next start to deliver. */
		e->stats.journal_open += p->nheld_to;
	}
	hold_copies(e, p);
	if (p->journal && p->held_to != NULL) {
		/* No late store took the entries over: a copy not offered
		 * found its device holding the event already. */
		vt__journal_unoffered(e, p);
	}
}

/* ---- receipts: held with no write at all -------------------------------- */

/* The batch that completes once everything taken so far has; NULL: none is pending. */
static struct vt_batch *last_batch(struct vt_engine *e)
{
	if (e->cur.len > 0) {
		return &e->cur;
	}
	if (e->nflight > 0) {
		return &e->flight[(e->flight_head + e->nflight - 1) % VT_COMMITS_MAX];
	}
	return NULL;
}

/* A receipt rider counts its user behind until offered: nothing passes it. */
static int add_rider(struct vt_engine *e, struct vt_batch *b, struct vt_msg *m, int park)
{
	if (b->nriders == b->riders_cap) {
		size_t ncap = b->riders_cap ? 2 * b->riders_cap : 8;
		struct vt_rider *r = realloc(b->riders, ncap * sizeof(*r));

		if (r == NULL) {
			return VT_ENOMEM;
		}
		b->riders = r;
		b->riders_cap = ncap;
	}
	b->riders[b->nriders].msg = vt_msg_ref(m);
	b->riders[b->nriders].at = b->len;
	b->riders[b->nriders].park = park;
	b->nriders++;
	if (!park) {
		vt__early_behind(e, m->rec.to, 1);
	}
	return 0;
}

/* Offer held receipt @m now, or store it if its recipient stopped keeping up. */
static void offer_receipt(struct vt_engine *e, struct vt_msg *m)
{
	struct vt_user *u = user_clear(e, m->rec.to, NULL, m->rec.body_len);

	if (u != NULL) {
		vt__hold_offer(u, NULL, m);
	} else {
		store_late(e, m, NULL, 1, NULL, NULL);
	}
}

int vt__hold_receipt_likely(const struct vt_engine *e, const char *user)
{
	return e->cfg.durability == VT_DURABLE_OFFLINE && user_clear(e, user, NULL, 0);
}

/*
 * Mode "always": a receipt for a sender whose devices keep up is journaled
 * by a PUT of its own and held once that commits (vt__hold), as a message
 * is. It joins the batch of the release of the copies its acks ended, or
 * a later one (journal.c).
 */
static int journal_receipt(struct vt_engine *e, struct vt_msg *m)
{
	struct vt_pend *p;

	if (!user_clear(e, m->rec.to, NULL, m->rec.body_len) ||
	    (p = vt__batch_put(e, VT_PEND_STORE, m)) == NULL) {
		return 0;
	}
	p->nheld = 1; /* no list: the receipt's own "to" */
	if (vt__journal_devices(e, p, NULL) != 0) {
		p->nusers = 1; /* stored after all */
	}
	vt__early_note(e, p); /* nothing is pushed early past it */
	return 1;
}

int vt__hold_receipt(struct vt_engine *e, struct vt_msg *m)
{
	struct vt_batch *b;

	if (vt__journal_on(e)) {
		return journal_receipt(e, m);
	}
	if (e->cfg.durability != VT_DURABLE_OFFLINE ||
	    !user_clear(e, m->rec.to, NULL, m->rec.body_len)) {
		return 0;
	}
	/* Offered now, it could pass an older event still on its way to
	 * storage for the same device; so it rides on the last batch. */
	b = last_batch(e);
	if (b == NULL) {
		vt__hold_offer(vt__user(e, m->rec.to), NULL, m);
		return 1;
	}
	return add_rider(e, b, m, 0) == 0;
}

int vt__hold_rider(struct vt_engine *e, struct vt_msg *m, int park)
{
	struct vt_batch *b = last_batch(e);

	if (b == NULL) {
		return 0;
	}
	return add_rider(e, b, m, park) == 0 ? 1 : VT_ENOMEM;
}

void vt__hold_ride(struct vt_engine *e, struct vt_batch *b, size_t done)
{
	while (b->riders_done < b->nriders && b->riders[b->riders_done].at <= done) {
		const struct vt_rider *r = &b->riders[b->riders_done++];

		if (r->park) {
			vt__park_ride(e, r->msg);
		} else {
			offer_receipt(e, r->msg);
			vt__early_behind(e, r->msg->rec.to, -1);
		}
		vt_msg_unref(r->msg);
	}
}
