/*
 * group_queue.c - a group change waits for the one before it to commit.
 *
 * A change is applied to the group in memory when it is taken, and the new
 * state is written by a batch. Were a second change to the same group taken
 * before the first committed, its state would contain the first: if storage
 * then refused the first, the second would write it all the same, or,
 * refused too, put it back in memory when undone (each undo restores the
 * state its own change was taken on). So while a change to a group is on
 * its way to storage, later changes to that group wait here, in order, and
 * are taken when it completes, on the state storage holds. A re-sent change
 * waits too, and is then answered by the group's recent changes.
 *
 * A post does not wait for a change being written: it names the members of
 * the pending state, as it would once that commits. It waits only behind a
 * change that waits, so that it is taken after it, as it was sent. At most
 * PARKED_MAX events wait at a time, over all groups, and PARKED_PER_USER of
 * one sender; beyond that one is refused as busy, to be sent again.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

#define PARKED_MAX 1024
#define PARKED_PER_USER 64 /* so one sender cannot fill the room of all */

/* A change that waits, as it came: it is decoded again when taken. */
struct vt_parked {
	struct vt_parked *next;
	struct vt_identity from;
	struct vt_origin origin;
	char group[VT_TO_MAX + 1];
	char cid[VT_ID_MAX + 1];     /* its client id, for a refusal */
	int change;                  /* a change, not a post behind one */
	size_t len;
	char data[];
};

int vt__group_changing(const struct vt_engine *e, const char *group)
{
	return e->changing.len > 0 && vt_map_get(&e->changing, group) != NULL;
}

int vt__group_parked(const struct vt_engine *e, const char *group)
{
	if (e->nparked == 0) {
		return 0;
	}
	for (const struct vt_parked *w = e->parked; w != NULL; w = w->next) {
		if (strcmp(w->group, group) == 0) {
			return 1;
		}
	}
	return 0;
}

int vt__group_park(struct vt_engine *e, const struct vt_identity *from, const char *group,
		   const char *cid, int change, const char *data, size_t len,
		   struct vt_origin *o)
{
	struct vt_parked *w, **tail;

	if (e->nparked >= PARKED_MAX ||
	    (uintptr_t)vt_map_get(&e->parked_by, from->user) >= PARKED_PER_USER) {
		return VT_EBUSY;
	}
	w = malloc(sizeof(*w) + len);
	if (w == NULL || vt_map_incr(&e->parked_by, from->user) != 0) {
		free(w);
		return VT_ENOMEM;
	}
	w->next = NULL;
	w->from = *from;
	w->origin = *o;
	o->conn = NULL;
	vt__copy(w->group, sizeof(w->group), group);
	vt__copy(w->cid, sizeof(w->cid), cid);
	w->change = change;
	w->len = len;
	memcpy(w->data, data, len);

	for (tail = &e->parked; *tail != NULL; tail = &(*tail)->next) {
	}
	*tail = w;
	e->nparked++;
	return 0;
}

void vt__group_change_started(struct vt_engine *e, const char *group)
{
	if (vt_map_incr(&e->changing, group) != 0) {
		/* Only a later change's wait is lost: the old way, chained. */
		vt_log(VT_LOG_WARN, "out of memory noting a group change group=%s", group);
	}
}

/* Take what waits for @group, oldest first, until a change must wait again. */
static void resume(struct vt_engine *e, const char *group)
{
	struct vt_parked **pp = &e->parked;

	while (*pp != NULL) {
		struct vt_parked *w = *pp;

		if (strcmp(w->group, group) != 0) {
			pp = &w->next;
			continue;
		}
		if (w->change && vt__group_changing(e, group)) {
			break;
		}
		*pp = w->next;
		e->nparked--;
		vt_map_decr(&e->parked_by, w->from.user);
		vt__take_parked(e, &w->from, w->data, w->len, w->origin);
		free(w);
	}
}

void vt__group_change_done(struct vt_engine *e, const char *group)
{
	char id[VT_TO_MAX + 1];

	/* @group may be freed by what resumes: keep its name. */
	vt__copy(id, sizeof(id), group);
	vt_map_decr(&e->changing, id);
	if (e->nparked > 0) {
		resume(e, id);
	}
}

void vt__group_parked_fail(struct vt_engine *e, int err, const char *reason)
{
	while (e->parked != NULL) {
		struct vt_parked *w = e->parked;

		e->parked = w->next;
		e->nparked--;
		vt_map_decr(&e->parked_by, w->from.user);
		vt__reply_error(e, &w->origin, err, reason, w->cid);
		free(w);
	}
}
