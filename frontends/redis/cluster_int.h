/*
 * frontends/redis/cluster_int.h - the state shared by the cluster's files:
 * cluster.c (the vtable, the liveness probe), cluster_recv.c (what the
 * subscriber receives) and cluster_logout.c (logouts across the nodes).
 */
#ifndef VARTALAP_REDIS_CLUSTER_INT_H
#define VARTALAP_REDIS_CLUSTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <vartalap/engine.h>

#include "cluster.h"
#include "conn.h"
#include "psub.h"

/* Longest prefix: channel names then stay well within a small buffer. */
#define VT__CL_PREFIX_MAX 200

/* Room for PREFIX "w:" LEN ":" USER DEVICE and a NUL. */
#define VT__CL_CHAN_MAX (VT__CL_PREFIX_MAX + 2 + 4 + 2 * VT_ID_MAX + 1)

/*
 * What a device's channel carries, told apart by length and first byte:
 *   ID             a wake-up: event ID was committed, list the inbox again
 *   "a" ID         an ack notice: another node committed the ack of ID
 *   "r" NODE MS    a replace notice: node NODE holds the device since MS
 * ID, NODE and MS (wall-clock ms) are 16 lowercase hex digits each. A node
 * of an older version reads a notice as a wake-up with no id: one listing
 * more, nothing else.
 */
#define VT__CL_WAKE_LEN 16
#define VT__CL_ACK_LEN 17
#define VT__CL_REPLACE_LEN 33

struct vt_redis_cluster {
	struct event_base *base;
	struct vt_engine *engine;
	struct vt__psub *sub;      /* SUBSCRIBE: wake-ups, groups, the probe */
	struct vt__rconn *cmd;     /* PUBLISH, and reading groups back */
	char prefix[VT__CL_PREFIX_MAX + 1];
	size_t plen;
	uint64_t node_id;
	char node_hex[17];
	char groups_chan[VT__CL_CHAN_MAX];
	char probe_chan[VT__CL_CHAN_MAX];
	struct event *tick;        /* the probe, and retries of group work */
	uint32_t timeout_ms;
	int64_t probe_sent_ms;     /* 0: no probe waiting for its echo */
	int probe_ok;              /* the last probe came back in time */
	int warned;                /* this outage was logged */
	int answered_once;         /* Redis answered since start: outages count */
	int closing;               /* being destroyed: never call the engine */
	int groups_dirty;          /* a change could not be told: ask for a resync */
	char resync_msg[20];       /* NODE ":*", kept until its PUBLISH ends */
	int resync_wanted;         /* reload every group from the store */
	int resync_running;
	int resync_tries;
	uint32_t group_msgs;       /* group messages received, to spot a racing one */
	char logouts_chan[VT__CL_CHAN_MAX];
	int logouts_dirty;         /* a logout could not be told: ask for a reload */
	char logouts_msg[20];      /* NODE ":*", kept until its PUBLISH ends */
	int revoked_wanted;        /* reload every revocation from the store */
	int revoked_running;
	int64_t dup_logged_ms;     /* when a second node with this id was last logged */
};

/* The PUBLISH, HGETALL and HGET scripts the command connection loads. */
extern struct vt__rscript vt__cl_publish;
extern struct vt__rscript vt__cl_groups;
extern struct vt__rscript vt__cl_group;

/* Write the wake-up channel of @in into @out; returns its length or 0. */
size_t vt__cl_inbox_chan(const struct vt_redis_cluster *c, const char *user,
                         const char *device, char *out);

/* PUBLISH @msg on @chan; @cb as for vt__rconn_eval. @chan and @msg must
 * live until @cb. */
void vt__cl_publish_raw(struct vt_redis_cluster *c, const char *chan, size_t clen,
                        const char *msg, size_t len, vt__rconn_cb cb, void *arg);

/*
 * Tell the other nodes that @in is held here, since when its connection
 * attached; nothing when it has no open connection here.
 */
void vt__cl_announce(struct vt_redis_cluster *c, const struct vt_inbox *in);

/* Log the first failure of an outage at warn level, and only that one. */
void vt__cl_outage(struct vt_redis_cluster *c, const char *what);

/* The subscriber's hooks. */
void vt__cl_on_message(void *arg, const char *chan, size_t clen, const char *msg,
                       size_t len);
void vt__cl_on_subscribed(void *arg, const char *chan, size_t clen);

/* Start reloading the groups when wanted and nothing is running. */
void vt__cl_resync_step(struct vt_redis_cluster *c);

/* 16 lowercase hex digits at @p into *@out; 0 when they are not that. */
int vt__cl_hex16(const char *p, uint64_t *out);

/* The logged_out op: tell the other nodes (cluster_logout.c). */
void vt__cl_logged_out(void *self, const struct vt_inbox *scope, int64_t ts);

/* A message on the logouts channel. */
void vt__cl_on_logout_msg(struct vt_redis_cluster *c, const char *msg, size_t len);

/* Start reloading every revocation when wanted and nothing is running. */
void vt__cl_revoked_step(struct vt_redis_cluster *c);

/* Each tick: ask for a reload if a logout could not be told, and go on with one. */
void vt__cl_logouts_tick(struct vt_redis_cluster *c);

#endif /* VARTALAP_REDIS_CLUSTER_INT_H */
