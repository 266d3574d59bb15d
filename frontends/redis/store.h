/*
 * frontends/redis/store.h - a storage backend on Redis, asynchronous.
 *
 * Every call of the vtable returns at once and completes from the event
 * loop, through a reply callback; a batch is one Lua script, so Redis
 * applies it whole or not at all. max_id, load_groups and load_revoked run
 * once at start and block on a separate synchronous connection. Several engines may share
 * one server: the script checks the group versions of GROUP ops and group
 * PUTs that carry one (check_base), answering a stale op VT_ECONFLICT; it
 * refuses a PUT whose id another record holds (VT_ESTORAGE, logged); and a
 * duplicate found by dedup reports the original's unnotified deliveries in
 * out_to, so the engine wakes them (see vartalap/storage.h). An ACK that
 * asks for the sender's receipt gets it from the same script, made from
 * the record the ACK removes (VT_OP_ACK).
 *
 * Failures: when Redis cannot be reached, a reply takes longer than the
 * command timeout, or the connection breaks, the pending calls complete
 * with VT_ESTORAGE (never later than the timeout), a warning is logged and
 * the backend reconnects with a growing delay; calls made meanwhile fail at
 * once. A timed-out commit may still have been applied: replaying it is
 * harmless, as a PUT of a stored id adds only what it lacks. Over maxmemory
 * a commit takes what does not grow the store and refuses the rest op by op
 * (VT_ENOSPC), as storage.h asks of a full store (a logout is taken); expiry and the block of
 * ids taken at open run over maxmemory too. A listed record that cannot be
 * read (data not written by this backend) is logged and passed over.
 *
 * Durability is Redis's: see docs/CLUSTER.md for the settings that keep the
 * promise (appendonly yes, appendfsync always). Needs Redis 7 or newer.
 */
#ifndef VARTALAP_REDIS_STORE_H
#define VARTALAP_REDIS_STORE_H

#include <stdint.h>

#include <event2/event.h>
#include <vartalap/storage.h>

/* Options of the Redis backend; zero fields take the documented defaults. */
struct vt_redis_options {
	const char *host;            /* default "127.0.0.1"; copied */
	int port;                    /* default 6379 */
	const char *prefix;          /* of every key; default "vt:"; no '{' or '}' */
	uint32_t connect_timeout_ms; /* default 1000 */
	uint32_t command_timeout_ms; /* one reply; default 2000 */
	int64_t dedup_window_ms;     /* default 7 days */
	int shared_ids;              /* nonzero: other engines use the same store;
	                                max_id then hands out a block of ids of
	                                this engine's own (see docs/CLUSTER.md) */
};

/*
 * Open the backend on @base. Connects synchronously once to load the
 * scripts, so an unreachable server fails here (VT_EIO, logged) rather than
 * at the first batch; with @o->shared_ids it also takes its block of ids
 * there. Returns 0, VT_EINVAL, VT_ENOMEM or VT_EIO. The
 * storage's destroy must not be called from inside one of its callbacks.
 */
int vt_storage_redis_open(struct event_base *base, const struct vt_redis_options *o,
                          struct vt_storage *out);

#endif /* VARTALAP_REDIS_STORE_H */
