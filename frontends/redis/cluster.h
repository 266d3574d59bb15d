/*
 * frontends/redis/cluster.h - the cluster of vartalapd nodes on one Redis.
 *
 * Implements include/vartalap/cluster.h with Redis pub/sub: each node
 * subscribes one channel per device connected to it, and a delivery for a
 * device held elsewhere is a PUBLISH of the record id on that channel. The
 * reply counts the nodes that hold the device; none means the push hook.
 * Group changes, and logouts, go out on a channel each that every node
 * subscribes. The record itself is always in the shared store first: a
 * wake-up only says "list again", so a lost one delays a message, it never
 * loses one.
 *
 * Two connections of its own: a subscriber and one for PUBLISH, both
 * reconnecting by themselves. docs/CLUSTER.md has the design.
 */
#ifndef VARTALAP_REDIS_CLUSTER_H
#define VARTALAP_REDIS_CLUSTER_H

#include <stdint.h>

#include <event2/event.h>
#include <vartalap/cluster.h>
#include <vartalap/engine.h>

struct vt_redis_cluster;

/* Where the cluster meets; zero fields take the storage backend's defaults. */
struct vt_redis_cluster_options {
	const char *host;            /* default "127.0.0.1" */
	int port;                    /* default 6379 */
	const char *prefix;          /* of every channel; default "vt:" */
	uint32_t connect_timeout_ms; /* default 1000 */
	uint32_t command_timeout_ms; /* a PUBLISH reply, a liveness echo; default 2000 */
	uint64_t node_id;            /* 0: a random one */
};

/*
 * Start the cluster of @engine on @base and fill @out for
 * vt_engine_set_cluster, which takes ownership. @handle (may be NULL)
 * receives a pointer for vt_redis_cluster_healthy, valid until the engine
 * is destroyed. Connects asynchronously: an unreachable Redis is retried,
 * not an error. Returns 0, VT_EINVAL or VT_ENOMEM.
 */
int vt_redis_cluster_create(struct event_base *base, struct vt_engine *engine,
                            const struct vt_redis_cluster_options *o, struct vt_cluster *out,
                            struct vt_redis_cluster **handle);

/*
 * Nonzero while both connections are up and the node's own liveness probe,
 * published on one and received on the other, came back in time.
 */
int vt_redis_cluster_healthy(const struct vt_redis_cluster *c);

#endif /* VARTALAP_REDIS_CLUSTER_H */
