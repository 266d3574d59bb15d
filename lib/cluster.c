/*
 * cluster.c - the engine's side of a cluster of nodes sharing one store:
 * what it tells the cluster, and what the cluster tells it of the others.
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

void vt__cluster_acked(struct vt_engine *e, const char *user, const char *device, uint64_t id)
{
	struct vt_inbox in = {.user = user, .device = device};

	if (e->cluster.ops != NULL && e->cluster.ops->acked != NULL) {
		e->cluster.ops->acked(e->cluster.self, &in, id);
	}
}

void vt_engine_wake(struct vt_engine *e, const struct vt_inbox *in, uint64_t id)
{
	struct vt_conn *c = vt__conn_find(e, in->user, in->device);

	if (c == NULL || c->closing) {
		return;
	}

	/* What is new sits in the shared store: list it like a backlog, from
	 * the start when it may sit below what was listed already. */
	if (id == 0 || id <= c->cursor) {
		vt__conn_rewind(c, id > 0 ? id - 1 : 0);
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
		vt_groups_load_newer(&e->groups, group, data, len);
	} else if ((g = vt_groups_find(&e->groups, group)) != NULL) {
		vt_groups_delete(&e->groups, g);
	}
}

/*
 * A listing sent to storage before the ack committed may still return the
 * acked event: on_list() skips it when it was the only one, and lists again
 * when there were more (the new listing starts after the commit).
 */
void vt_engine_remote_ack(struct vt_engine *e, const struct vt_inbox *in, uint64_t id)
{
	struct vt_conn *c = vt__conn_find(e, in->user, in->device);
	struct vt_msg *m = NULL;
	int held;

	if (c == NULL || c->closing) {
		return;
	}
	if (c->fetching) {
		c->remote_acks++;
		c->remote_id = id;
	}
	if (!vt__conn_ack(c, id, &m, &held, NULL)) {
		return;
	}
	vt_log(VT_LOG_DEBUG, "acked on another node id=%llu conn=%llu", (unsigned long long)id,
	       (unsigned long long)c->serial);
	vt_msg_unref(m);

	/* The window has room again. */
	vt__conn_pump(c);
}

int vt_engine_attached_since(const struct vt_engine *e, const struct vt_inbox *in,
			     int64_t *since_ms)
{
	const struct vt_conn *c = vt__conn_find(e, in->user, in->device);

	if (c == NULL || c->closing) {
		return VT_ENOTFOUND;
	}
	*since_ms = c->since_ms;
	return 0;
}

/*
 * Of two connections of one device, the one that attached later is the
 * newer; in the same millisecond, the one on the node with the higher id.
 * Both nodes reach the same answer, so exactly one connection stays.
 */
static int newer(int64_t a_ms, uint64_t a_node, int64_t b_ms, uint64_t b_node)
{
	return a_ms != b_ms ? a_ms > b_ms : a_node > b_node;
}

int vt_engine_replace(struct vt_engine *e, const struct vt_inbox *in, int64_t since_ms,
		      uint64_t node)
{
	struct vt_conn *c = vt__conn_find(e, in->user, in->device);

	if (c == NULL || c->closing || node == e->cluster.node) {
		return 0;
	}
	if (newer(c->since_ms, e->cluster.node, since_ms, node)) {
		return 1;
	}
	vt_log(VT_LOG_INFO, "user=%s device=%s connected to node %016llx since %lld",
	       in->user, in->device, (unsigned long long)node, (long long)since_ms);
	vt__conn_replace(c);
	return 0;
}
