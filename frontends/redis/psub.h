/*
 * frontends/redis/psub.h - a subscriber connection that keeps a set of
 * channels subscribed across reconnects.
 *
 * The caller adds and removes channels (counted: a channel added twice is
 * removed twice); the connection sends SUBSCRIBE and UNSUBSCRIBE as the set
 * changes and, after any reconnect, subscribes the whole set again. A lost
 * connection is opened again with the storage backend's growing delay.
 *
 * Each confirmed SUBSCRIBE is reported: from then on, messages published on
 * that channel arrive, so anything the caller may have missed before (while
 * down, or before the first subscription) can be looked up at that point.
 *
 * Hooks run from the event loop, never from inside a call of this API.
 */
#ifndef VARTALAP_REDIS_PSUB_H
#define VARTALAP_REDIS_PSUB_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct vt__psub;

struct vt__psub_hooks {
	/* @msg (@len bytes) arrived on channel @chan (@clen bytes). */
	void (*message)(void *arg, const char *chan, size_t clen, const char *msg, size_t len);
	/* The server confirmed the subscription of @chan. */
	void (*subscribed)(void *arg, const char *chan, size_t clen);
};

/* Start connecting to @host:@port; returns NULL when out of memory. */
struct vt__psub *vt__psub_new(struct event_base *base, const char *host, int port,
                              uint32_t connect_timeout_ms, const struct vt__psub_hooks *hooks,
                              void *arg);

/* Add one reference to @chan (@len bytes, copied). Returns 0 or VT_ENOMEM. */
int vt__psub_add(struct vt__psub *s, const char *chan, size_t len);

/* Drop one reference to @chan; the last one unsubscribes. */
void vt__psub_remove(struct vt__psub *s, const char *chan, size_t len);

/* Nonzero while connected (subscriptions may still be on their way). */
int vt__psub_up(const struct vt__psub *s);

/* Give up the current connection (it stopped answering) and reconnect. */
void vt__psub_drop(struct vt__psub *s, const char *why);

/* Close and free; no hook runs from here on. Accepts NULL. */
void vt__psub_free(struct vt__psub *s);

#endif /* VARTALAP_REDIS_PSUB_H */
