/*
 * vartalap/cluster.h - the cluster vtable: several engines sharing one store.
 *
 * Stable API. When several engines (nodes) share a storage backend, an event
 * committed on one node may be owed to a device connected to another. The
 * engine hands such deliveries to the cluster, which wakes the node holding
 * the device (it then lists the device's inbox from the shared store) or,
 * when no node holds it, tells the engine to call the push hook. Group
 * changes are passed around the same way, so every node's groups stay
 * current. Two more notices keep a device's state on one node: an ack taken
 * by another node, and the same device connecting to another node. A single
 * node needs no cluster.
 *
 * The engine calls these ops from its thread; a cluster calls back into the
 * engine (vt_engine_wake, vt_engine_notify_offline, vt_engine_group_reload,
 * vt_engine_remote_ack, vt_engine_replace, vt_engine_remote_logout) from
 * that same thread, never from inside one of these ops. The one exception
 * is the @done callback of group_stale, which may run inside it.
 *
 * Group changes reach the other nodes only after they committed, so a node
 * may take a post or a change against a group that is already older than
 * the store's. With a cluster set, the engine therefore stamps every such
 * write with the group version it was derived from, and the shared store
 * refuses a stale one (VT_ECONFLICT, see vartalap/storage.h); the engine
 * then asks the cluster for a fresh copy of the group (group_stale).
 */
#ifndef VARTALAP_CLUSTER_H
#define VARTALAP_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <vartalap/export.h>
#include <vartalap/storage.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The answer to group_stale: @status 0 with the group's stored state
 * (@data, @len bytes; 0 when no such group is stored), or a negative error
 * (VT_ESTORAGE, VT_ENOMEM). @arg is the one group_stale was given.
 */
typedef void (*vt_group_fetched_cb)(void *arg, const char *group, int status, const char *data,
                                    size_t len);

struct vt_cluster_ops {
	/*
	 * @rec was committed for @in, a device not connected to this node.
	 * Wake the node that holds it; when none does, call
	 * vt_engine_notify_offline() (for records the push hook is for).
	 * Copy what is kept: both are valid only during the call.
	 */
	void (*deliver)(void *self, const struct vt_inbox *in, const struct vt_record *rec);

	/*
	 * @in connected to this node, or went away from it. After an attach,
	 * tell the other nodes that @in is held here since
	 * vt_engine_attached_since(): each calls vt_engine_replace(), which
	 * closes an older connection of @in there. A node whose connection
	 * is the newer answers the same way, so one connection remains.
	 */
	void (*attach)(void *self, const struct vt_inbox *in);
	void (*detach)(void *self, const struct vt_inbox *in);

	/*
	 * Group @group's state is now @data (@len bytes; 0 when deleted), as
	 * committed by this node: tell the other nodes.
	 */
	void (*group_changed)(void *self, const char *group, const char *data, size_t len);

	/*
	 * The store holds a newer state of group @group than this node: read
	 * it from the store and call @done once with it, also when the read
	 * fails (then with an error). @done may run before this returns. A
	 * read still pending when the cluster is destroyed ends without
	 * @done. May be NULL: the engine then only answers the conflict.
	 */
	void (*group_stale)(void *self, const char *group, vt_group_fetched_cb done, void *arg);

	/* Release the cluster. */
	void (*destroy)(void *self);

	/*
	 * An ack committed here removed event @id from @in's inbox, and no
	 * connection of @in on this node held the event: a node holding @in
	 * may have it pushed and be waiting for this very ack. Tell that node
	 * (vt_engine_remote_ack there), or it pushes the event again until
	 * its retries run out and then calls the push hook for a device that
	 * has the event already. May be NULL: then it does exactly that.
	 */
	void (*acked)(void *self, const struct vt_inbox *in, uint64_t id);

	/*
	 * A logout committed here revoked the tokens of @scope (its device
	 * VT_ALL_DEVICES: every device of its user) issued up to @ts, in
	 * seconds: tell the other nodes (vt_engine_remote_logout there), which
	 * close the connections those tokens opened and refuse the tokens from
	 * then on. May be NULL: other nodes then learn of it only when they
	 * start again.
	 */
	void (*logged_out)(void *self, const struct vt_inbox *scope, int64_t ts);
};

struct vt_cluster {
	const struct vt_cluster_ops *ops;
	void *self;
	/*
	 * This node's id: nonzero and unique in the cluster. It orders two
	 * connections of one device that attached to two nodes in the same
	 * millisecond (the higher id is the newer).
	 */
	uint64_t node;
};

#ifdef __cplusplus
}
#endif

#endif /* VARTALAP_CLUSTER_H */
