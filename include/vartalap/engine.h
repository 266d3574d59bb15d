/*
 * vartalap/engine.h - the delivery engine.
 *
 * Stable API. The engine is a state machine: frames, requests and time go in;
 * transport and storage calls come out. It never opens a socket, reads a clock
 * by itself, or blocks (but for vt_engine_create(), which reads the storage's
 * largest id). One engine is driven from one thread; no function here is
 * thread-safe.
 *
 * The host (a frontend, or an embedding program) owes the engine three things:
 *   1. time, through struct vt_host's clocks;
 *   2. a call to vt_engine_flush() once per loop turn after host->want_flush
 *      asked for it: all writes taken during the turn commit as one batch;
 *   3. a call to vt_engine_run_timers() when vt_engine_next_timeout() says,
 *      re-read after host->timers_changed.
 */
#ifndef VARTALAP_ENGINE_H
#define VARTALAP_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <vartalap/cluster.h>
#include <vartalap/error.h>
#include <vartalap/notifier.h>
#include <vartalap/storage.h>
#include <vartalap/token.h>
#include <vartalap/transport.h>

#include <vartalap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vt_engine;
struct vt_conn;

/* When the sender hears "accepted". See docs/PROTOCOL.md, "Durability". */
enum vt_durability {
	/* Every message is durable before "accepted"; a crash loses nothing. */
	VT_DURABLE_ALWAYS = 0,
	/*
	 * A message, read or delivered receipt for a recipient whose devices
	 * are all connected and keeping up is held in memory (per member, for
	 * a group) and written only when it goes offline for a device, or at
	 * shutdown; a crash loses what was in flight.
	 */
	VT_DURABLE_OFFLINE = 1,
};

struct vt_engine_config {
	enum vt_durability durability; /* default VT_DURABLE_ALWAYS */
	uint32_t ack_timeout_ms;       /* first push to first retry; default 10000 */
	uint32_t max_retries;          /* pushes after the first; default 3 */
	uint32_t backoff_max_ms;       /* cap of the doubling timeout; default 60000 */
	uint32_t window;               /* pushed, un-acked events per device; 32 */
	uint32_t max_message_bytes;    /* whole envelope; default 65536 */
	uint32_t inbox_cap;            /* deliveries per inbox; default 10000 */
	uint64_t offline_ttl_ms;       /* age at which stored events expire; 30 d */
	uint64_t device_ttl_ms;        /* unused device forgotten after; 90 d */
	uint32_t fetch_limit_max;      /* largest REST page; default 500 */
	uint32_t max_group_members;    /* default 1000 */
	uint32_t max_group_name;       /* bytes; default 128 */
	uint32_t max_group_update;     /* users named in one change; default 100 */
	uint32_t typing_per_sec;       /* typing events per connection (0: off); 5 */
	uint32_t msgs_per_sec;         /* events (not acks) per connection, also the
					  burst; 0 = no limit; default 100 */
	/* With VT_DURABLE_OFFLINE, and a store with dedup_peek: push a held
	 * event when it is taken, before its (from, cid) pair commits. Less
	 * latency at light load, about a fifth more CPU per message at the
	 * peak; "accepted" still waits for the commit (docs/PROTOCOL.md).
	 * Default 0. */
	int push_before_commit;
	uint32_t commits_in_flight;    /* batches handed to storage and not yet
					  complete, up to VT_COMMITS_MAX; default 1
					  (0 means 1). With more, a batch is handed
					  over while the one before it still commits
					  (see storage.h, "Order") */
	/* With VT_DURABLE_OFFLINE: events held in memory may wait in one
	 * device's queue, pushed or not, up to this many (default 1024; at
	 * least 1). Past it an event for that device's user is written. A
	 * queue deeper than the window lets a device that is briefly behind
	 * take its events from memory, not from storage, a slower path. */
	uint32_t hold_queue;
	/* With VT_DURABLE_OFFLINE: bytes of held events in memory, every
	 * queue together, bodies and push frames included, counted per copy
	 * (a group post once for each device it is held for); an event is
	 * held only if a copy for each device fits, else it is written.
	 * Default 256 MiB, at least 64 KiB. */
	uint64_t hold_memory;
	/* With VT_DURABLE_ALWAYS over a store that keeps a journal (LMDB), on
	 * a single node: a held one-to-one event is pushed when it is taken,
	 * and its journal entries are written only for the copies not acked
	 * within this many ms; "accepted" waits for those acks, or for the
	 * entries, and for the commit of its (from, cid) pair. A crash before
	 * that commit loses nothing accepted, but the sender's re-send is
	 * delivered once more, under a new id (docs/PROTOCOL.md). 0: the
	 * entries are written with the pair, and the copies pushed after that
	 * commit. Lower latency at light load; more CPU per message at the
	 * peak, and latency past a quarter of it (docs/PERFORMANCE.md).
	 * Default 0, at most 60000. */
	uint32_t ack_wait_ms;
};

/* The most batches an engine keeps in flight. */
#define VT_COMMITS_MAX 16

/* Fill @cfg with the defaults named above. Never fails; thread-safe. */
VT_EXPORT void vt_engine_config_init(struct vt_engine_config *cfg);

/*
 * What the engine needs from its host. Copied at vt_engine_create(); @arg is
 * passed to each hook. Within one call into the engine (a frame received, a
 * flush, a commit completed, the timers) each clock is read once and held:
 * what the call does happens at one instant. A storage commit completed
 * inside the call reads them again; otherwise a clock that moves while a
 * call runs is seen at the next call.
 */
struct vt_host {
	/* Monotonic milliseconds: timers, retries, deadlines. Required. */
	uint64_t (*mono_ms)(void *arg);
	/* Wall-clock milliseconds since the epoch: timestamps, token and
	 * message expiry. Required. */
	int64_t (*wall_ms)(void *arg);
	/* The engine holds writes: call vt_engine_flush() before the loop
	 * sleeps. Called once per batch. Required. */
	void (*want_flush)(void *arg);
	/* The earliest deadline moved: re-read vt_engine_next_timeout(). May
	 * be NULL for a host that polls. */
	void (*timers_changed)(void *arg);
	void *arg;
};

/*
 * Create an engine on @storage (which it owns from now on: destroyed with the
 * engine, also on failure). @cfg and @host are copied; @host->arg must stay
 * valid until vt_engine_destroy() returns. Hooks may be called during this
 * call, before *@out is set (a host then flushes on its next turn). On
 * success sets *@out and returns 0; otherwise leaves *@out alone and returns
 * VT_EINVAL (a bad config or a missing required hook) or VT_ENOMEM.
 */
VT_EXPORT int vt_engine_create(const struct vt_engine_config *cfg, const struct vt_host *host,
                               struct vt_storage storage, struct vt_engine **out);

/*
 * Give the engine a push hook (see notifier.h); it owns it from now on and
 * destroys any earlier one. A notifier with NULL ops removes the hook.
 * Without one, offline events notify nobody. Cannot fail.
 */
VT_EXPORT void vt_engine_set_notifier(struct vt_engine *e, struct vt_notifier notifier);

/*
 * Join a cluster of engines sharing one store (see cluster.h); the engine
 * owns it from now on and destroys any earlier one. Group posts waiting on
 * the earlier one's group reads are answered "conflict" (retryable).
 */
VT_EXPORT void vt_engine_set_cluster(struct vt_engine *e, struct vt_cluster cluster);

/*
 * Another node committed event @id for @in (0: events, ids unknown): if that
 * device is connected here, list its inbox again and push what is new.
 * Nodes take ids from blocks of their own, so @id may be lower than what the
 * connection was pushed already; the listing then starts from the beginning.
 * Harmless when the device is not connected here.
 */
VT_EXPORT void vt_engine_wake(struct vt_engine *e, const struct vt_inbox *in, uint64_t id);

/*
 * No node holds @in: call the push hook for @rec (once; the delivery is
 * marked so it never is again). @rec need only carry id, kind, from and to
 * (and the body for notifiers configured to send it).
 */
VT_EXPORT void vt_engine_notify_offline(struct vt_engine *e, const struct vt_inbox *in,
					const struct vt_record *rec);

/*
 * Another node changed group @group: its state is now @data (@len bytes,
 * the blob storage holds; 0 when deleted). News may arrive out of order: a
 * state older than the one this engine holds (by the count of changes the
 * blob carries) is ignored.
 */
VT_EXPORT void vt_engine_group_reload(struct vt_engine *e, const char *group, const char *data,
				      size_t len);

/*
 * Another node committed an ack of event @id by device @in (its cluster's
 * acked op). A connection of @in here that holds @id in its queue, pushed or
 * not, drops it: no retry, no push hook, and no receipt (the acking node
 * sent that). Harmless when @in is not connected here or @id is not queued.
 */
VT_EXPORT void vt_engine_remote_ack(struct vt_engine *e, const struct vt_inbox *in, uint64_t id);

/*
 * When the connection of @in on this node attached, by host->wall_ms: sets
 * *@since_ms and returns 0, or returns VT_ENOTFOUND when @in has no open
 * connection here. A cluster tells the other nodes this after an attach.
 */
VT_EXPORT int vt_engine_attached_since(const struct vt_engine *e, const struct vt_inbox *in,
				       int64_t *since_ms);

/*
 * Device @in attached to node @node at @since_ms (by that node's wall clock).
 * A connection of @in here is closed with VT_CLOSE_REPLACED, as when one
 * device connects twice to one node, unless it is the newer: it attached
 * later, or in the same millisecond on a node with a higher id (the node of
 * vt_engine_set_cluster()). Returns 1 when a connection here is the newer
 * and stays: the cluster then tells @node of it, so that the older one is
 * closed there. Returns 0 otherwise: none here, closed now, or @node is this
 * node (its own notice, ignored).
 */
VT_EXPORT int vt_engine_replace(struct vt_engine *e, const struct vt_inbox *in, int64_t since_ms,
				uint64_t node);

/*
 * Another node logged out @scope (its device VT_ALL_DEVICES: every device
 * of its user), revoking tokens issued up to @ts seconds (its cluster's
 * logged_out op): as vt_engine_logout() does here once written. Harmless
 * when this node knew of it already. A scope whose ids a token could not
 * hold is logged and ignored.
 */
VT_EXPORT void vt_engine_remote_logout(struct vt_engine *e, const struct vt_inbox *scope,
				       int64_t ts);

/*
 * Flush what is pending, close every connection with VT_CLOSE_GOING_AWAY,
 * and free the engine, its storage and its notifier. Accepts NULL. Pending
 * request callbacks are answered with VT_EBUSY before this returns. A
 * connection still open is freed too (its ops->close is called first): do
 * not call vt_conn_close() on it afterwards; a host that wants to close its
 * sockets itself does so, with vt_conn_close(), before this call. With an
 * asynchronous storage, call vt_engine_shutdown() first and let the loop run
 * until vt_engine_idle() is true. Host hooks may be called during the call.
 */
VT_EXPORT void vt_engine_destroy(struct vt_engine *e);

/*
 * Begin a clean stop: refuse new work with VT_EBUSY, flush what was taken,
 * and close every connection with VT_CLOSE_GOING_AWAY (through ops->close;
 * the host still calls vt_conn_close() for each). Calling it again does
 * nothing more.
 */
VT_EXPORT void vt_engine_shutdown(struct vt_engine *e);

/*
 * Nonzero when no storage call is pending, no write waits for a flush and no
 * group post waits for the cluster's fresh copy of its group: safe to
 * vt_engine_destroy().
 */
VT_EXPORT int vt_engine_idle(const struct vt_engine *e);

/*
 * Commit every write taken since the last flush as one batch. Harmless when
 * nothing is pending. With a synchronous storage, replies, pushes and
 * transport calls caused by the commit happen inside this call; the engine
 * may ask for another flush (want_flush) from here.
 */
VT_EXPORT void vt_engine_flush(struct vt_engine *e);

/*
 * Milliseconds until the earliest deadline (0: due now), or -1 for none.
 * Read it again after vt_engine_run_timers() and after timers_changed.
 */
VT_EXPORT int64_t vt_engine_next_timeout(const struct vt_engine *e);

/*
 * Run every timer that is due by host->mono_ms(): retries, token expiry,
 * offline expiry. Early or extra calls are harmless. May send, close
 * connections and ask for a flush.
 */
VT_EXPORT void vt_engine_run_timers(struct vt_engine *e);

/*
 * Open a connection for an authenticated @id (the frontend verified the
 * token; @id is copied). Events owed to that device are pushed through @ops
 * soon after, with @ctx as their first argument. @ops must outlive the
 * connection. On success sets *@out, which stays valid until the host calls
 * vt_conn_close() or the engine is destroyed; returns 0, VT_EEXPIRED (the
 * token's exp has passed by host->wall_ms), VT_EREVOKED (a logout revoked
 * it), VT_EBUSY during shutdown, or VT_ENOMEM. A device already connected
 * is closed with VT_CLOSE_REPLACED (on another node of a cluster, once that
 * node hears of it: vt_engine_replace()).
 */
VT_EXPORT int vt_conn_open(struct vt_engine *e, const struct vt_identity *id,
                           const struct vt_transport_ops *ops, void *ctx, struct vt_conn **out);

/*
 * Hand the engine one whole text message received on @c. Errors go back to
 * the client as error envelopes; a message that breaks the connection's
 * contract (for instance an expired token) closes it through ops->close.
 * @data need not be NUL-terminated, may be any bytes (hostile input is
 * answered, never trusted), and is not kept. Ops of @c (and of other
 * connections, for a recipient online) may be called inside this call.
 */
VT_EXPORT void vt_conn_receive(struct vt_conn *c, const char *data, size_t len);

/*
 * The connection's outbound queue has room again after a VT_EAGAIN: the
 * engine resumes pushing, from inside this call.
 */
VT_EXPORT void vt_conn_writable(struct vt_conn *c);

/* Events one connection may have taken and not yet answered. */
#define VT_CONN_OWED_MAX 256
/* The same while events pushed to the connection wait for its acks. */
#define VT_CONN_OWED_ACKING_MAX (4 * VT_CONN_OWED_MAX)

/*
 * Nonzero while the engine owes the connection VT_CONN_OWED_MAX answers or
 * more: events it took and has not answered (`accepted` or an error), most
 * often because storage is behind. A transport should stop reading from the
 * connection meanwhile, so the load waits in the peer's socket rather than
 * in the engine's memory and its next commit. Every answer is a send to the
 * connection, so the transport can look again after each send.
 *
 * While events pushed to the connection wait for its acks the bound is
 * VT_CONN_OWED_ACKING_MAX: those acks come in on the same socket, and
 * holding them back would stop the connection's own deliveries too, which
 * under load turned a server past its peak into one that accepted much and
 * delivered little.
 */
VT_EXPORT int vt_conn_busy(const struct vt_conn *c);

/*
 * The transport is gone. Events pushed and not acked stay owed to the device
 * (they go offline); @c is freed and its ops are not called again. Call it
 * exactly once per connection, also after ops->close, never from inside an
 * op of @c. Accepts NULL.
 */
VT_EXPORT void vt_conn_close(struct vt_conn *c);

/*
 * Answer to a request. @status is 0 or a negative vt_error; @json (len bytes,
 * not NUL-terminated, valid only during the call) is the response body: an
 * envelope, a listing, or an error envelope. vt_error_http_status(status)
 * gives the HTTP status. May be called before the request function returns.
 */
typedef void (*vt_reply_fn)(void *arg, int status, const char *json, size_t len);

/*
 * Take one envelope from @id as if sent on a connection of that device
 * (REST send). @id and @data are copied. Exactly one reply: "accepted"
 * after the write is durable, or an error envelope; @arg must stay valid
 * until then (at the latest during vt_engine_destroy(), with VT_EBUSY).
 */
VT_EXPORT void vt_engine_submit(struct vt_engine *e, const struct vt_identity *id, const char *data,
                                size_t len, vt_reply_fn reply, void *arg);

/*
 * List events owed to @id's device with server id > @after, oldest first, at
 * most @limit (capped by fetch_limit_max; 0 means that cap). Reply body:
 * {"messages":[envelope, ...],"next":"<cursor>","more":bool}. Listing does
 * not ack. Exactly one reply, as for vt_engine_submit().
 */
VT_EXPORT void vt_engine_fetch(struct vt_engine *e, const struct vt_identity *id, uint64_t after,
                               uint32_t limit, vt_reply_fn reply, void *arg);

/*
 * Acknowledge events by server id. @json is {"ids":["<id>", ...]} (@len
 * bytes, copied). Reply body: {"acked":[...],"unknown":[...]}; acking twice
 * is harmless. Exactly one reply, as for vt_engine_submit().
 */
VT_EXPORT void vt_engine_ack(struct vt_engine *e, const struct vt_identity *id, const char *json,
                             size_t len, vt_reply_fn reply, void *arg);

/*
 * The state of group @group ("g:<id>") as {"id":..,"name":..,"members":[..],
 * "admins":[..]}, for members only: others get VT_ENOTFOUND, as for a group
 * that does not exist.
 */
VT_EXPORT void vt_engine_group_info(struct vt_engine *e, const struct vt_identity *id,
				    const char *group, vt_reply_fn reply, void *arg);

/*
 * The groups @id belongs to: {"groups":[<as vt_engine_group_info>, ...]},
 * sorted by group id (byte order). Costs what those groups cost, not what
 * the node holds. Both group calls reply exactly once, as for
 * vt_engine_submit().
 */
VT_EXPORT void vt_engine_groups(struct vt_engine *e, const struct vt_identity *id,
				vt_reply_fn reply, void *arg);

/*
 * Log out: revoke every token of @id's device, or with @json (@len bytes,
 * copied) {"all":true} of every device of @id's user, issued at or before
 * the current second by host->wall_ms, and every such token without
 * "iat". @json may be empty (len 0), {} or {"all":false} for the device
 * alone; anything else is answered VT_EBADJSON or VT_EBADENV. Once the
 * revocation is written, connections opened with those tokens are closed
 * with VT_CLOSE_LOGGED_OUT, here and, through the cluster, on the other
 * nodes; then the reply: {"revoked":"device"|"user","before":<seconds>}.
 * Events owed to the devices stay owed. A user who logs out more than
 * VT_REVOKED_DEVICES_MAX devices within the device TTL, one by one or at
 * once, has the next one made a logout of every device, so that what one
 * user can make the server keep stays bounded. Exactly one reply, as for
 * vt_engine_submit().
 */
VT_EXPORT void vt_engine_logout(struct vt_engine *e, const struct vt_identity *id,
				const char *json, size_t len, vt_reply_fn reply, void *arg);

/* The most single-device revocations one user keeps (see vt_engine_logout). */
#define VT_REVOKED_DEVICES_MAX 64

/*
 * VT_EREVOKED when a logout revoked the token @id was read from (its user,
 * device and iat), else 0. A frontend asks after it picked the device, and
 * refuses the request; vt_conn_open() asks too. Costs two hash lookups.
 */
VT_EXPORT int vt_engine_revoked(const struct vt_engine *e, const struct vt_identity *id);

/* Upper bounds (ms) of the commit latency buckets; the last is unbounded. */
#define VT_COMMIT_BOUNDS_MS {1, 2, 5, 10, 25, 50, 100, 250, 1000, 0}
#define VT_COMMIT_BUCKETS 10

/* Room for every error code: errors[-code]. */
#define VT_ERROR_SLOTS 32

/* Counters for health and metrics. */
struct vt_engine_stats {
	uint64_t connections;    /* open now */
	uint64_t accepted;       /* events accepted since start */
	uint64_t duplicates;     /* re-sent ids answered again */
	uint64_t pushed;         /* frames pushed, retries included */
	uint64_t retried;        /* pushes after the first */
	uint64_t acked;          /* deliveries removed by an ack */
	uint64_t offline;        /* deliveries gone offline: not connected, retried out, dropped */
	uint64_t notified;       /* push hook calls */
	uint64_t typing;         /* typing events relayed */
	uint64_t expired;        /* deliveries removed by age */
	uint64_t storage_errors; /* failed batches */
	uint64_t batches;        /* committed batches */
	uint64_t batch_ops;      /* ops in them */
	uint64_t commit_ms_sum;       /* time from flush to commit done, summed */
	uint64_t commit_ms_le[VT_COMMIT_BUCKETS]; /* batches per upper bound below */
	uint64_t queue_high_water;    /* most events queued for one device at once */
	uint64_t errors[VT_ERROR_SLOTS]; /* error answers by -code (errors[1] bad_json) */
	uint64_t held_bytes;          /* counted against hold_memory now (a gauge) */
	uint64_t journal_open;        /* mode always: held copies whose journal entry
					 is not released yet, or whose release has
					 not committed (a gauge) */
	uint64_t ack_waiting;         /* mode always: pushed events waiting for
					 their acks before any entry is written
					 (ack_wait_ms; a gauge) */
	/* (sender, client id) pairs, when storage reports them (pairs_known) */
	int pairs_known;
	uint64_t pairs_kept;      /* remembered now (a gauge) */
	uint64_t pairs_forgotten; /* forgotten inside their window to make room */
	uint64_t logouts;         /* logouts written here since start */
	uint64_t revoked_scopes;  /* devices and users with revoked tokens (a gauge) */
};

/* Copy the counters into @out. Counters only grow, but for the gauges. */
VT_EXPORT void vt_engine_stats(const struct vt_engine *e, struct vt_engine_stats *out);

/* 1 when the last storage batch succeeded, 0 while storage is failing. */
VT_EXPORT int vt_engine_healthy(const struct vt_engine *e);

#ifdef __cplusplus
}
#endif

#endif /* VARTALAP_ENGINE_H */
