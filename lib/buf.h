/*
 * buf.h - a growable byte buffer for building output (envelopes, listings).
 *
 * Internal. A buffer that failed to grow remembers it: later appends do
 * nothing and vt_buf_failed() says so, so a caller checks once at the end.
 */
#ifndef VARTALAP_BUF_H
#define VARTALAP_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct vt_buf {
	char *data;  /* NUL-terminated whenever len > 0 */
	size_t len;
	size_t cap;
	int failed;  /* an allocation failed */
	int borrowed; /* data is the caller's (vt_buf_init_in): never freed here */
};

/* A buffer ready for appends (no allocation yet). */
void vt_buf_init(struct vt_buf *b);

/*
 * A buffer that starts in @cap bytes of @mem, which it does not own: what
 * fits is built there, without an allocation; a buffer that outgrows them
 * moves to storage of its own, which vt_buf_free() frees.
 */
void vt_buf_init_in(struct vt_buf *b, char *mem, size_t cap);

/* Free the storage; the buffer is empty and usable again. */
void vt_buf_free(struct vt_buf *b);

/* Drop the contents, keep the storage. */
void vt_buf_reset(struct vt_buf *b);

/*
 * Make room for @extra more bytes and the NUL, so that appends of that many
 * bytes allocate nothing. 0, or -1 when the buffer failed now or before.
 */
int vt_buf_reserve(struct vt_buf *b, size_t extra);

/* vt_buf_append() when the buffer must grow first, or has failed. */
void vt_buf_append_grow(struct vt_buf *b, const void *data, size_t len);

/*
 * Append @len bytes of @data. Inline: envelopes are built from many short
 * pieces, and most fit in the room the buffer already has.
 */
static inline void vt_buf_append(struct vt_buf *b, const void *data, size_t len)
{
	if (len != 0 && len < b->cap - b->len && !b->failed) {
		memcpy(b->data + b->len, data, len);
		b->len += len;
		b->data[b->len] = '\0';
		return;
	}
	vt_buf_append_grow(b, data, len);
}

/* Append the string @s (its length is known at compile time for a literal). */
static inline void vt_buf_puts(struct vt_buf *b, const char *s)
{
	vt_buf_append(b, s, strlen(s));
}

/* Append the byte @c. */
static inline void vt_buf_putc(struct vt_buf *b, char c)
{
	vt_buf_append(b, &c, 1);
}

void vt_buf_u64(struct vt_buf *b, uint64_t v);
void vt_buf_i64(struct vt_buf *b, int64_t v);

/*
 * Append @s (@len bytes of valid UTF-8) as a JSON string with its quotes,
 * escaping '"', '\\' and control characters (U+0000 as \u0000).
 */
void vt_buf_json_str(struct vt_buf *b, const char *s, size_t len);

/* Nonzero when an allocation failed since the last init, free or reset. */
int vt_buf_failed(const struct vt_buf *b);

#endif /* VARTALAP_BUF_H */
