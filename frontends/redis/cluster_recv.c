/*
 * frontends/redis/cluster_recv.c - what the cluster's subscriber receives:
 * wake-ups, ack and replace notices for devices held here, group changes and
 * logouts of other nodes (the latter read by cluster_logout.c), the echo of
 * the liveness probe, and confirmations of subscriptions.
 *
 * A confirmed subscription is where missed messages are made good. A
 * device's channel confirmed (first attach, or again after a reconnect)
 * wakes the device: whatever was committed while nobody listened is in
 * the store and gets listed. It is also where the device is announced: a
 * replace notice published once this node listens is heard by every node
 * that subscribed before, and any that subscribes later announces its own
 * connection to this one, so of two racing connects neither goes unheard.
 * The groups channel confirmed reloads every group from the store, for the
 * changes published while this node did not listen; the logouts channel
 * confirmed, every revocation.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "cluster_int.h"

/* Resyncs that keep racing group messages are applied after this many. */
#define RESYNC_TRIES_MAX 3

static int is_chan(const char *chan, size_t clen, const char *name)
{
	return clen == strlen(name) && memcmp(chan, name, clen) == 0;
}

/* PREFIX "w:" LEN ":" USER DEVICE back into its two ids; 0 when malformed. */
static int parse_inbox(const struct vt_redis_cluster *c, const char *chan, size_t clen,
                       char *user, char *device)
{
	size_t i = c->plen + 2, ulen = 0;

	if (clen < i || memcmp(chan, c->prefix, c->plen) != 0 || chan[c->plen] != 'w' ||
	    chan[c->plen + 1] != ':') {
		return 0;
	}
	while (i < clen && chan[i] >= '0' && chan[i] <= '9' && ulen <= VT_ID_MAX) {
		ulen = ulen * 10 + (size_t)(chan[i++] - '0');
	}
	if (i >= clen || chan[i++] != ':' || ulen > VT_ID_MAX || clen - i < ulen ||
	    clen - i - ulen > VT_ID_MAX) {
		return 0;
	}
	memcpy(user, chan + i, ulen);
	user[ulen] = '\0';
	memcpy(device, chan + i + ulen, clen - i - ulen);
	device[clen - i - ulen] = '\0';
	return 1;
}

int vt__cl_hex16(const char *p, uint64_t *out)
{
	uint64_t v = 0;

	for (size_t i = 0; i < 16; i++) {
		int d = p[i] >= '0' && p[i] <= '9'   ? p[i] - '0'
			: p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10
						     : -1;

		if (d < 0) {
			return 0;
		}
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 1;
}

/* Another node holds @in since @since: the older connection is closed. */
static void on_replace(struct vt_redis_cluster *c, const struct vt_inbox *in, uint64_t node,
		       uint64_t since)
{
	if (node == c->node_id) {
		return; /* this node's own notice, echoed */
	}
	if (vt_engine_replace(c->engine, in, (int64_t)since, node)) {
		/* Ours is the newer: tell that node, which may not have heard. */
		vt__cl_announce(c, in);
	}
}

/* A wake-up, an ack notice or a replace notice (cluster_int.h). */
static void on_device_msg(struct vt_redis_cluster *c, const struct vt_inbox *in,
			  const char *msg, size_t len)
{
	uint64_t a, b;

	if (len == VT__CL_WAKE_LEN && vt__cl_hex16(msg, &a)) {
		vt_engine_wake(c->engine, in, a);
	} else if (len == VT__CL_ACK_LEN && msg[0] == 'a' && vt__cl_hex16(msg + 1, &a)) {
		vt_engine_remote_ack(c->engine, in, a);
	} else if (len == VT__CL_REPLACE_LEN && msg[0] == 'r' && vt__cl_hex16(msg + 1, &a) &&
		   vt__cl_hex16(msg + 17, &b)) {
		on_replace(c, in, a, b);
	} else {
		vt_log(VT_LOG_WARN, "cluster: malformed notice for user=%s device=%s ignored "
		       "(%zu bytes)", in->user, in->device, len);
	}
}

/* NODE ":" LEN ":" GROUP DATA, or NODE ":*" for "reload everything". */
static void on_group_msg(struct vt_redis_cluster *c, const char *msg, size_t len)
{
	size_t i = 17, glen = 0;
	char *group;

	if (len < 18 || msg[16] != ':' || memcmp(msg, c->node_hex, 16) == 0) {
		return; /* this node applied its own change already */
	}
	c->group_msgs++;
	if (len == 18 && msg[17] == '*') {
		c->resync_wanted = 1;
		vt__cl_resync_step(c);
		return;
	}
	while (i < len && msg[i] >= '0' && msg[i] <= '9' && glen <= len) {
		glen = glen * 10 + (size_t)(msg[i++] - '0');
	}
	if (i >= len || msg[i++] != ':' || len - i < glen || glen == 0) {
		vt_log(VT_LOG_WARN, "cluster: malformed group message ignored");
		return;
	}
	group = malloc(glen + 1);
	if (!group) {
		c->resync_wanted = 1; /* try the whole set again later */
		return;
	}
	memcpy(group, msg + i, glen);
	group[glen] = '\0';
	vt_engine_group_reload(c->engine, group, msg + i + glen, len - i - glen);
	free(group);
}

/* The subscriber heard from Redis; so did the command connection, if up. */
static void answered(struct vt_redis_cluster *c)
{
	if (!vt__rconn_up(c->cmd)) {
		return;
	}
	if (c->warned) {
		vt_log(VT_LOG_INFO, "cluster: Redis answers again");
	}
	c->probe_ok = 1;
	c->probe_sent_ms = 0;
	c->warned = 0;
	c->answered_once = 1;
}

void vt__cl_on_message(void *arg, const char *chan, size_t clen, const char *msg, size_t len)
{
	struct vt_redis_cluster *c = arg;
	char user[VT_ID_MAX + 1], device[VT_ID_MAX + 1];
	struct vt_inbox in = {user, device};

	if (c->closing) {
		return;
	}
	if (is_chan(chan, clen, c->probe_chan)) {
		answered(c);
	} else if (is_chan(chan, clen, c->groups_chan)) {
		on_group_msg(c, msg, len);
	} else if (is_chan(chan, clen, c->logouts_chan)) {
		vt__cl_on_logout_msg(c, msg, len);
	} else if (parse_inbox(c, chan, clen, user, device)) {
		on_device_msg(c, &in, msg, len);
	}
}

void vt__cl_on_subscribed(void *arg, const char *chan, size_t clen)
{
	struct vt_redis_cluster *c = arg;
	char user[VT_ID_MAX + 1], device[VT_ID_MAX + 1];
	struct vt_inbox in = {user, device};

	if (c->closing) {
		return;
	}
	if (is_chan(chan, clen, c->probe_chan)) {
		answered(c); /* healthy without waiting for the next probe */
		return;
	}
	if (is_chan(chan, clen, c->groups_chan)) {
		c->resync_wanted = 1;
		vt__cl_resync_step(c);
		return;
	}
	if (is_chan(chan, clen, c->logouts_chan)) {
		c->revoked_wanted = 1;
		vt__cl_revoked_step(c);
		return;
	}
	/* A new subscription: anything may have been missed, ids unknown; and
	 * the other nodes may hold an older connection of the device. */
	if (parse_inbox(c, chan, clen, user, device)) {
		vt_engine_wake(c->engine, &in, 0);
		vt__cl_announce(c, &in);
	}
}

/* ---- reloading the groups ---- */

static void apply_groups(struct vt_redis_cluster *c, const redisReply *r)
{
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];
		char *group;

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
			continue;
		}
		group = malloc(k->len + 1);
		if (!group) {
			c->resync_wanted = 1;
			return;
		}
		memcpy(group, k->str, k->len);
		group[k->len] = '\0';
		vt_engine_group_reload(c->engine, group, v->str, v->len);
		free(group);
	}
}

struct resync_call {
	struct vt_redis_cluster *c;
	uint32_t msgs_at_send;
};

/*
 * A group message that arrived while the HGETALL was on its way may be
 * newer than the snapshot (they travel on different connections): the
 * snapshot is then read again instead of undoing that change.
 */
static void on_groups(void *arg, int status, const redisReply *r)
{
	struct resync_call *k = arg;
	struct vt_redis_cluster *c = k->c;
	int raced = c->group_msgs != k->msgs_at_send;

	free(k);
	c->resync_running = 0;
	if (c->closing) {
		return;
	}
	if (status != 0 || !r || r->type != REDIS_REPLY_ARRAY) {
		c->resync_wanted = 1; /* the next tick tries again */
		vt__cl_outage(c, "the groups could not be reloaded");
		return;
	}
	if (raced && ++c->resync_tries < RESYNC_TRIES_MAX) {
		c->resync_wanted = 1;
		vt__cl_resync_step(c);
		return;
	}
	c->resync_tries = 0;
	apply_groups(c, r);
}

void vt__cl_resync_step(struct vt_redis_cluster *c)
{
	struct resync_call *k;
	struct vt__rargs *a;

	if (!c->resync_wanted || c->resync_running || !vt__rconn_up(c->cmd)) {
		return;
	}
	k = malloc(sizeof(*k));
	a = vt__rargs_new(1, 0);
	if (!k || !a) {
		free(k);
		vt__rargs_free(a);
		return;
	}
	*k = (struct resync_call){c, c->group_msgs};
	c->resync_wanted = 0;
	c->resync_running = 1;
	vt__rargs_str(a, c->groups_chan); /* the HASH of groups shares its name */
	vt__rconn_eval(c->cmd, &vt__cl_groups, a, on_groups, k);
}
