/*
 * cluster.c - the engine's side of a cluster of nodes sharing one store.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

void vt_engine_set_cluster(struct vt_engine *e, struct vt_cluster cluster)
{
	if (e->cluster.ops != NULL) {
		/* Its pending reads of groups end unanswered: so do the posts. */
		e->cluster.ops->destroy(e->cluster.self);
		vt__group_waiting_fail(e, VT_ECONFLICT, vt_strerror(VT_ECONFLICT));
	}
	e->cluster = cluster;
}

void vt__cluster_attach(struct vt_engine *e, const struct vt_conn *c, int attached)
{
	if (e->cluster.ops == NULL) {
		return;
	}
	if (attached) {
		e->cluster.ops->attach(e->cluster.self, &c->inbox);
	} else {
		e->cluster.ops->detach(e->cluster.self, &c->inbox);
	}
}

/*
 * TODO: an ack taken by one node is not told to the node whose connection
 * holds the event in its queue; that node pushes it again until its retries
 * run out, and then calls the push hook. The cluster needs an "acked" call.
 */
void vt_engine_wake(struct vt_engine *e, const struct vt_inbox *in, uint64_t id)
{
	struct vt_conn *c = vt__conn_find(e, in->user, in->device);

	if (c == NULL || c->closing) {
		return;
	}

	/* What is new sits in the shared store: list it like a backlog, from
	 * the start when it may sit below what was listed already. */
	if (id == 0 || id <= c->cursor) {
		c->rewind = 1;
	}
	c->backlog = 1;
	c->backlog_gen++;
	vt__conn_pump(c);
}

void vt_engine_notify_offline(struct vt_engine *e, const struct vt_inbox *in,
			      const struct vt_record *rec)
{
	e->stats.offline++;
	vt__notify(e, rec, in->user, in->device);
}

void vt_engine_group_reload(struct vt_engine *e, const char *group, const char *data, size_t len)
{
	struct vt_group *g;

	if (len > 0) {
		vt_groups_load(&e->groups, group, data, len);
	} else if ((g = vt_groups_find(&e->groups, group)) != NULL) {
		vt_groups_delete(&e->groups, g);
	}
}
