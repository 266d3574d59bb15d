/*
 * vartalap/notifier.h - the push hook: waking a device that went offline.
 *
 * Stable API. When an event becomes offline for a device (the device is not
 * connected when it is accepted, or its retries ran out, or its connection
 * dropped before the ack), the engine calls the notifier once for that
 * device and event: never on a retry, never after the ack, never again when
 * the stored event is pushed and dropped once more. Only messages and group
 * events notify; receipts do not.
 *
 * A notifier must not block: it queues what it sends (a webhook) and copies
 * what it keeps. It is called from the engine's thread.
 */
#ifndef VARTALAP_NOTIFIER_H
#define VARTALAP_NOTIFIER_H

#include <stddef.h>
#include <stdint.h>

#include <vartalap/export.h>
#include <vartalap/storage.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What went offline, and for whom. Valid only during the call. */
struct vt_notice {
	const char *user;   /* the recipient */
	const char *device; /* its device: "" for the default device, "*" when the
			       user has no registered device yet */
	uint64_t id;        /* the event's server id */
	uint32_t kind;      /* enum vt_kind: VT_KIND_MESSAGE or VT_KIND_GROUP */
	const char *from;   /* the sender */
	const char *group;  /* the group id ("g:...") of a group event, or NULL */
	const char *body;   /* the raw JSON body, for notifiers configured to send it */
	size_t body_len;
};

struct vt_notifier_ops {
	/* One event went offline for one device. */
	void (*notify)(void *self, const struct vt_notice *n);
	/* Release the notifier. Accepts being called with pending work. */
	void (*destroy)(void *self);
};

struct vt_notifier {
	const struct vt_notifier_ops *ops;
	void *self;
};

/*
 * A notifier that logs one info line per notice (user, device, id, sender;
 * never the body). Returns 0 and fills *@out, or VT_ENOMEM. The caller owns
 * *@out until vt_engine_set_notifier() takes it.
 */
VT_EXPORT int vt_notifier_log_create(struct vt_notifier *out);

#ifdef __cplusplus
}
#endif

#endif /* VARTALAP_NOTIFIER_H */
