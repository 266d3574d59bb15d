/*
 * frontends/cli/outbox.c - the envelopes sent and not answered yet.
 *
 * Answers come mostly in the order of sending, so a search from the oldest
 * end finds them at once; the list stays short because reading stdin pauses
 * while it is long.
 */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vt_outbox_init(struct vt_outbox *o)
{
	TAILQ_INIT(&o->items);
	o->count = 0;
	o->bytes = 0;
	o->fits = VT_OUTBOX_FITS_MIN;
	o->unsure = NULL;
}

int vt_outbox_add(struct vt_outbox *o, const char *id, const char *text, size_t len)
{
	struct vt_outbox_item *it = malloc(sizeof(*it) + len);

	if (it == NULL) {
		return -1;
	}
	snprintf(it->id, sizeof(it->id), "%s", id);
	it->sent = 0;
	it->len = len;
	memcpy(it->text, text, len);
	TAILQ_INSERT_TAIL(&o->items, it, link);
	o->count++;
	o->bytes += len;
	return 0;
}

struct vt_outbox_item *vt_outbox_find(struct vt_outbox *o, const char *id)
{
	struct vt_outbox_item *it;

	TAILQ_FOREACH(it, &o->items, link) {
		if (strcmp(it->id, id) == 0) {
			return it;
		}
	}
	return NULL;
}

void vt_outbox_remove(struct vt_outbox *o, struct vt_outbox_item *it)
{
	if (o->unsure == it) {
		o->unsure = NULL;
	}
	TAILQ_REMOVE(&o->items, it, link);
	o->count--;
	o->bytes -= it->len;
	free(it);
}

void vt_outbox_read(struct vt_outbox *o, struct vt_outbox_item *it)
{
	if (it->len > o->fits) {
		o->fits = it->len;
	}
	if (o->unsure == it) {
		o->unsure = NULL;
	}
}

size_t vt_outbox_flush(struct vt_outbox *o, int (*send)(void *arg, const char *text, size_t len),
                       void *arg)
{
	struct vt_outbox_item *it;
	size_t n = 0;

	TAILQ_FOREACH(it, &o->items, link) {
		int unsure = it->len > o->fits;

		if (it->sent) {
			continue;
		}
		if ((unsure && o->unsure != NULL) || send(arg, it->text, it->len) != 0) {
			break;
		}
		it->sent = 1;
		if (unsure) {
			o->unsure = it;
		}
		n++;
	}
	return n;
}

void vt_outbox_unsend_all(struct vt_outbox *o)
{
	struct vt_outbox_item *it;

	TAILQ_FOREACH(it, &o->items, link) {
		it->sent = 0;
	}
	o->unsure = NULL;
	o->fits = VT_OUTBOX_FITS_MIN;
}

void vt_outbox_clear(struct vt_outbox *o)
{
	struct vt_outbox_item *it;

	while ((it = TAILQ_FIRST(&o->items)) != NULL) {
		vt_outbox_remove(o, it);
	}
}
