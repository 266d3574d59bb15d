/*
 * stale.c - group posts that met a newer group in the store.
 *
 * With a cluster, every node keeps the groups in memory and hears of the
 * other nodes' changes only after they committed. A post taken in that
 * moment names the members of the old state; the shared store refuses it
 * (VT_ECONFLICT) because the group's version moved on. Such a post is not
 * answered yet: it waits here while the cluster reads the group from the
 * store, and is then taken again, once, with the fresh members, under a
 * new id. Posts to the same group that come meanwhile wait behind it, so
 * the posts this node takes keep their order. Only a second conflict, or
 * a group that could not be read, reaches the client, as the retryable
 * "conflict" error. The wait is bounded: the cluster answers every read,
 * at the latest when its command times out.
 *
 * A post from a sender this node does not know as a member waits the same
 * way, once: the sender may have been added through another node a moment
 * ago. So that posts to groups nobody may post to cannot pile up reads,
 * at most WAITING_MAX posts wait at a time; beyond that a non-member is
 * refused from memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

#define WAITING_MAX 1024

int vt__group_may_reread(const struct vt_engine *e)
{
	return e->cluster.ops != NULL && e->cluster.ops->group_stale != NULL &&
	       e->nwaiting < WAITING_MAX;
}

int vt__group_waited_on(const struct vt_engine *e, const char *group)
{
	for (const struct vt_waiting_post *w = e->waiting; w != NULL; w = w->next) {
		if (strcmp(w->msg->rec.to, group) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Take every post waiting on @group out of the queue, in order. */
static struct vt_waiting_post *unqueue(struct vt_engine *e, const char *group)
{
	struct vt_waiting_post *out = NULL, **tail = &out, **at = &e->waiting;

	while (*at != NULL) {
		struct vt_waiting_post *w = *at;

		if (strcmp(w->msg->rec.to, group) != 0) {
			at = &w->next;
			continue;
		}
		*at = w->next;
		e->nwaiting--;
		w->next = NULL;
		*tail = w;
		tail = &w->next;
	}
	return out;
}

static void waiting_free(struct vt_waiting_post *w)
{
	vt__origin_release(&w->origin);
	vt_msg_unref(w->msg);
	free(w);
}

/* The post again, as a new event: a new id, accepted now. */
static void take_again(struct vt_engine *e, struct vt_waiting_post *w)
{
	const struct vt_record *r = &w->msg->rec;
	struct vt_msg *m = vt_msg_new(r->kind, r->from, r->to, r->cid, vt__wall(e), r->body,
				      r->body_len);
	struct vt_identity from = {.exp = 0};

	if (m == NULL) {
		vt__reply_error(e, &w->origin, VT_ENOMEM, "out of memory", r->cid);
		return;
	}
	m->rec.id = vt__new_id(e);
	snprintf(from.user, sizeof(from.user), "%s", r->from);
	snprintf(from.device, sizeof(from.device), "%s", w->device);
	vt__take_group_post(e, &from, m, &w->origin, w->retried);
	vt_msg_unref(m);
}

/*
 * Take the posts waiting on @group again, now that memory holds what the
 * store does (@status 0). A post that met a conflict is taken again only
 * then; one that merely waited behind it is taken again in any case, and
 * meets the check itself.
 */
static void resume(struct vt_engine *e, const char *group, int status)
{
	struct vt_waiting_post *w = unqueue(e, group), *next;

	for (; w != NULL; w = next) {
		next = w->next;
		if (status != 0 && w->retried) {
			vt__reply_error(e, &w->origin, VT_ECONFLICT, vt_strerror(VT_ECONFLICT),
					w->msg->rec.cid);
		} else {
			take_again(e, w);
		}
		waiting_free(w);
	}
}

/* The cluster's answer to group_stale: the group as stored. */
static void on_fetched(void *arg, const char *group, int status, const char *data, size_t len)
{
	struct vt_engine *e = arg;
	char id[VT_TO_MAX + 1];

	/* @group may live in a waiting post, freed on the way. */
	snprintf(id, sizeof(id), "%s", group);
	if (status == 0 && len > 0) {
		/* Newer than memory: tell the others as well. This node may be
		 * the one whose commit timed out yet was applied, which no other
		 * node has heard of. They ignore a state they hold already. */
		if (vt_groups_load_newer(&e->groups, id, data, len) == 1) {
			e->cluster.ops->group_changed(e->cluster.self, id, data, len);
		}
	} else if (status == 0) {
		vt_engine_group_reload(e, id, data, len);
	} else {
		vt_log(VT_LOG_WARN, "group %s: fresh copy not read: %s", id, vt_error_name(status));
	}
	resume(e, id, status);
}

void vt__group_stale(struct vt_engine *e, const char *group)
{
	if (e->cluster.ops == NULL || e->cluster.ops->group_stale == NULL) {
		resume(e, group, VT_ECONFLICT); /* nothing to refresh from */
		return;
	}
	e->cluster.ops->group_stale(e->cluster.self, group, on_fetched, e);
}

void vt__group_wait(struct vt_engine *e, struct vt_msg *m, const char *device,
		    struct vt_origin *o, int retried)
{
	struct vt_waiting_post *w = calloc(1, sizeof(*w)), **tail = &e->waiting;
	int asked = vt__group_waited_on(e, m->rec.to);

	if (w == NULL) {
		vt__reply_error(e, o, VT_ENOMEM, "out of memory", m->rec.cid);
		return;
	}
	w->msg = vt_msg_ref(m);
	w->origin = *o;
	o->conn = NULL;
	o->reply = NULL;
	snprintf(w->device, sizeof(w->device), "%s", device);
	w->retried = retried;
	vt_log(VT_LOG_DEBUG, "group %s: post cid=%s from=%s waits for the group as stored",
	       m->rec.to, m->rec.cid, m->rec.from);
	while (*tail != NULL) {
		tail = &(*tail)->next;
	}
	*tail = w;
	e->nwaiting++;

	/* One read of the group at a time: its answer serves every waiter. */
	if (!asked) {
		vt__group_stale(e, m->rec.to);
	}
}

void vt__group_waiting_fail(struct vt_engine *e, int err, const char *reason)
{
	while (e->waiting != NULL) {
		struct vt_waiting_post *w = e->waiting;

		e->waiting = w->next;
		e->nwaiting--;
		vt__reply_error(e, &w->origin, err, reason, w->msg->rec.cid);
		waiting_free(w);
	}
}
