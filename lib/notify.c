/*
 * notify.c - the push hook: the engine side, and the built-in log notifier.
 */
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"

int vt__notifiable(const struct vt_msg *m)
{
	return m->rec.kind == VT_KIND_MESSAGE || m->rec.kind == VT_KIND_GROUP;
}

void vt__notify(struct vt_engine *e, const struct vt_msg *m, const char *user,
		const char *device)
{
	struct vt_notice n = {
		.user = user,
		.device = device,
		.id = m->rec.id,
		.kind = m->rec.kind,
		.from = m->rec.from,
		.group = strncmp(m->rec.to, "g:", 2) == 0 ? m->rec.to : NULL,
		.body = m->rec.body,
		.body_len = m->rec.body_len,
	};

	if (e->notifier.ops == NULL) {
		return;
	}
	e->stats.notified++;
	e->notifier.ops->notify(e->notifier.self, &n);
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
