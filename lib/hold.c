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

/* Connected, registered, nothing stored waiting for it, room in its queue. */
static int conn_clear(const struct vt_engine *e, const struct vt_conn *c)
{
	return !c->closing && !c->touching && !c->backlog && !c->fetching && !c->blocked &&
	       c->nqueued < 2 * e->cfg.window;
}

/*
 * Is every registered device of @user, but @skip, connected and keeping up,
 * with no held event of theirs on its way to storage (store_late)? One held
 * now would be pushed ahead of that older one.
 */
static int user_clear(const struct vt_engine *e, const char *user, const struct vt_conn *skip)
{
	const struct vt_user *u = vt__user(e, user);

	if (u == NULL || u->ndevices == 0 || u->nconns != u->ndevices ||
	    (e->late.len > 0 && vt_map_get(&e->late, user) != NULL)) {
		return 0;
	}
	for (const struct vt_conn *c = u->conns; c != NULL; c = c->sib) {
		if (c != skip && !conn_clear(e, c)) {
			return 0;
		}
	}
	return 1;
}

/* Count a late store for @user (@delta 1) or its completion (-1). */
static void count_late(struct vt_engine *e, const char *user, int delta)
{
	uintptr_t n = (uintptr_t)vt_map_get(&e->late, user);

	if (delta < 0 && n <= 1) {
		vt_map_del(&e->late, user);
	} else if (delta > 0 && vt_map_put(&e->late, user, (void *)(n + 1)) != 0) {
		/* Only order is at stake: a later event may be pushed first. */
		vt_log(VT_LOG_WARN, "out of memory counting a late store user=%s", user);
	} else if (delta < 0) {
		vt_map_put(&e->late, user, (void *)(n - 1));
	}
}

int vt__hold_possible(const struct vt_engine *e, const struct vt_conn *from)
{
	return e->cfg.durability == VT_DURABLE_OFFLINE && from != NULL && !from->closing;
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
		if (user_clear(e, vt__pend_user(p, i), NULL)) {
			p->nusers--;
			swap_users(p, i, p->nusers);
		}
	}
	p->nheld = n - p->nusers;

	/* A message to oneself reaches every device as a recipient already. */
	if (p->own_copies && strcmp(p->msg->rec.to, from->id.user) != 0 &&
	    user_clear(e, from->id.user, from)) {
		p->own_copies = 0;
		p->hold_own = 1;
	}
}

/* Offer @m, held, to every device of @u but @skip. */
static void offer_held(struct vt_user *u, const struct vt_conn *skip, struct vt_msg *m)
{
	for (struct vt_conn *c = u->conns, *next; c != NULL; c = next) {
		next = c->sib;
		if (c != skip) {
			vt__conn_hold(c, m);
		}
	}
}

/*
 * The @late held recipients of @p from index nusers on, and the sender's
 * other devices when @own, stopped keeping up before the commit: their
 * deliveries are written now, to the same record, like any stored event's.
 * Until that commits, nothing more is held for them.
 */
static void store_late(struct vt_engine *e, struct vt_pend *p, uint32_t late, int own)
{
	struct vt_pend *st = vt__batch_put(e, VT_PEND_STORE, p->msg);
	const char **list = calloc(late ? late : 1, sizeof(*list));
	int rc = st != NULL && list != NULL ? 0 : VT_ENOMEM;

	for (uint32_t i = 0; rc == 0 && i < late; i++) {
		list[i] = vt__pend_user(p, p->nusers + i);
	}
	if (rc == 0) {
		rc = vt__pend_set_users(st, list, late);
	}
	free((void *)list);
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "held event lost: out of memory id=%llu",
		       (unsigned long long)p->msg->rec.id);
		return;
	}
	vt__copy(st->user, sizeof(st->user), p->user);
	vt__copy(st->device, sizeof(st->device), p->device);
	st->own_copies = own;
	st->late = 1;
	for (uint32_t i = 0; i < st->nusers; i++) {
		count_late(e, vt__pend_user(st, i), 1);
	}
	if (own) {
		count_late(e, st->user, 1);
	}
}

void vt__hold_stored(struct vt_engine *e, struct vt_pend *p)
{
	for (uint32_t i = 0; i < p->nusers; i++) {
		count_late(e, vt__pend_user(p, i), -1);
	}
	if (p->own_copies) {
		count_late(e, p->user, -1);
	}
}

void vt__hold(struct vt_engine *e, struct vt_pend *p)
{
	struct vt_conn *from = vt__conn_find(e, p->user, p->device);
	uint32_t late = 0;
	int own = 0;

	/* Who still keeps up gets it from memory; the others move to the front
	 * of the held ones, to be stored. */
	for (uint32_t i = p->nusers; i < p->nusers + p->nheld; i++) {
		const char *user = vt__pend_user(p, i);

		if (user_clear(e, user, NULL)) {
			offer_held(vt__user(e, user), NULL, p->msg);
		} else {
			swap_users(p, p->nusers + late++, i);
		}
	}
	if (p->hold_own) {
		if (from != NULL && user_clear(e, p->user, from)) {
			offer_held(from->user, from, p->msg);
		} else {
			own = 1;
		}
	}
	if (late > 0 || own) {
		store_late(e, p, late, own);
	}
}
