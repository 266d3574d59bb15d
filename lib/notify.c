/*
 * notify.c - the push hook: the engine side, and the built-in log notifier.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

/*
 * @rec went offline for (user, device): call the push hook for it, if it is
 * an event the hook is for, and mark the delivery so it is never called for
 * it again. Returns nonzero when the hook was due (whether or not one is set).
 */
int vt__notify(struct vt_engine *e, const struct vt_record *rec, const char *user,
	       const char *device)
{
	struct vt_notice n = {
		.user = user,
		.device = device,
		.id = rec->id,
		.kind = rec->kind,
		.from = rec->from,
		.group = strncmp(rec->to, "g:", 2) == 0 ? rec->to : NULL,
		.body = rec->body,
		.body_len = rec->body_len,
	};

	/* Receipts wake nobody: only messages and group events do. */
	if (rec->kind != VT_KIND_MESSAGE && rec->kind != VT_KIND_GROUP) {
		return 0;
	}
	/* Without a hook nobody was told, so there is nothing to remember;
	 * the mark would cost a storage write per offline event. */
	if (e->notifier.ops == NULL) {
		return 1;
	}
	vt__batch_notified(e, user, device, rec->id);
	e->stats.notified++;
	e->notifier.ops->notify(e->notifier.self, &n);
	return 1;
}

static void log_notify(void *self, const struct vt_notice *n)
{
	vt_log(VT_LOG_INFO, "push user=%s device=%s id=%llu from=%s group=%s", n->user, n->device,
	       (unsigned long long)n->id, n->from, n->group ? n->group : "-");
}

static void log_destroy(void *self)
{
}

static const struct vt_notifier_ops log_ops = {
	.notify = log_notify,
	.destroy = log_destroy,
};

int vt_notifier_log_create(struct vt_notifier *out)
{
	out->ops = &log_ops;
	out->self = NULL;
	return 0;
}
