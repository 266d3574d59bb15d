/*
 * frontends/redis/startup.h - the synchronous calls of the Redis backend.
 *
 * Loading the scripts, max_id, load_groups and load_revoked happen once, before the event
 * loop runs, so they may block; they use their own blocking connection,
 * bounded by the connect and command timeouts.
 */
#ifndef VARTALAP_REDIS_STARTUP_H
#define VARTALAP_REDIS_STARTUP_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "conn.h"
#include "encode.h"

struct vt__rsync {
	redisContext *rc; /* NULL once closed, or after a failure */
	struct vt__rconn_config cfg;
	char *host;
};

/*
 * Connect and load every script (which sets its sha). Returns 0, VT_ENOMEM,
 * or VT_EIO with the reason logged.
 */
int vt__rsync_open(struct vt__rsync *s, const struct vt__rconn_config *cfg);

/* The largest record id stored under @prefix, or 0 (logged) on an error. */
uint64_t vt__rsync_max_id(struct vt__rsync *s, const char *prefix);

/*
 * Take a block of 2^VT__ID_BLOCK_BITS ids no other caller gets, above every
 * id stored under @prefix. Sets *@base to the id before the block's first;
 * returns 0 or VT_EIO (logged).
 */
#define VT__ID_BLOCK_BITS 32
int vt__rsync_lease_ids(struct vt__rsync *s, const char *prefix, uint64_t *base);

/* Call @each per stored group; returns 0 or VT_EIO (logged). */
int vt__rsync_groups(struct vt__rsync *s, const char *prefix,
                     void (*each)(void *arg, const char *group, const char *data, size_t len),
                     void *arg);

/*
 * Call @each per stored revocation, passing over (and logging) any that
 * cannot be read; returns 0 or VT_EIO (logged).
 */
int vt__rsync_revoked(struct vt__rsync *s, const char *prefix, vt__revoked_cb each, void *arg);

/* How many subscribers @chan has now, in *@n; 0, or VT_EIO (logged). */
int vt__rsync_subscribers(struct vt__rsync *s, const char *chan, long long *n);

/*
 * Warn when the server is not configured for the no-loss promise
 * (appendonly yes, appendfsync always). Never fails: a server that hides
 * its configuration is taken as it is.
 */
void vt__rsync_check_durability(struct vt__rsync *s);

void vt__rsync_close(struct vt__rsync *s);

#endif /* VARTALAP_REDIS_STARTUP_H */
