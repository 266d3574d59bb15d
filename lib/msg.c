/*
 * msg.c - events in memory, shared by reference.
 *
 * One allocation holds the record, its strings and room for the envelope
 * that pushes it, so a group message to a thousand members costs one body,
 * a message costs one allocation, and freeing it is one call.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/*
 * Everything of an envelope but its strings and body takes less than this,
 * the largest id and time and the longest kind's name included: one whose
 * strings need no escapes fits in the room kept for it, one that needs some
 * moves to an allocation of its own, as any buffer does.
 */
#define FRAME_FIXED 128

struct vt_msg *vt_msg_new(uint32_t kind, const char *from, const char *to, const char *cid,
			  int64_t ts, const char *body, size_t body_len)
{
	size_t lf = strlen(from) + 1, lt = strlen(to) + 1, lc = strlen(cid) + 1;
	size_t text = lf + lt + lc + body_len;
	struct vt_msg *m = malloc(sizeof(*m) + text + FRAME_FIXED + text);
	char *p;

	if (m == NULL) {
		return NULL;
	}
	m->refs = 1;
	p = m->text;
	m->rec.from = memcpy(p, from, lf);
	p += lf;
	m->rec.to = memcpy(p, to, lt);
	p += lt;
	m->rec.cid = memcpy(p, cid, lc);
	p += lc;
	/* memcpy with a NULL source is undefined even for zero bytes. */
	m->rec.body = body_len > 0 ? memcpy(p, body, body_len) : p;
	m->rec.body_len = body_len;
	m->rec.id = 0;
	m->rec.kind = kind;
	m->rec.ts = ts;
	m->frame = NULL;
	m->frame_len = 0;
	m->text_len = text;
	m->park = NULL;
	return m;
}

/* The room for the envelope, after the text. */
static char *room_of(struct vt_msg *m)
{
	return m->text + m->text_len;
}

const char *vt_msg_frame(struct vt_msg *m, size_t *len)
{
	struct vt_buf b;

	/* A group message goes to many devices: it is encoded once. */
	if (m->frame == NULL) {
		vt_buf_init_in(&b, room_of(m), FRAME_FIXED + m->text_len);
		vt_env_encode_record(&b, &m->rec);
		if (vt_buf_failed(&b)) {
			vt_buf_free(&b);
			return NULL;
		}
		m->frame = b.data;
		m->frame_len = b.len;
	}
	*len = m->frame_len;
	return m->frame;
}

struct vt_msg *vt_msg_ref(struct vt_msg *m)
{
	m->refs++;
	return m;
}

void vt_msg_unref(struct vt_msg *m)
{
	if (m != NULL && --m->refs == 0) {
		if (m->frame != NULL && m->frame != room_of(m)) {
			free(m->frame); /* it outgrew its room */
		}
		free(m);
	}
}

/* A frontend holds an event by its frame; the two are one object. */
const char *vt_frame_data(const struct vt_frame *f, size_t *len)
{
	const struct vt_msg *m = (const struct vt_msg *)(const void *)f;

	*len = m->frame_len;
	return m->frame;
}

struct vt_frame *vt_frame_hold(struct vt_frame *f)
{
	vt_msg_ref((struct vt_msg *)(void *)f);
	return f;
}

void vt_frame_release(struct vt_frame *f)
{
	vt_msg_unref((struct vt_msg *)(void *)f);
}
