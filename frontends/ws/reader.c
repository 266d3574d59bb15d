/*
 * frontends/ws/reader.c - turn a client's byte stream into whole messages.
 *
 * Frames are taken whole. Bytes that arrive as whole frames are unmasked
 * and handed on where they lie (the caller's read buffer); only the tail of
 * a frame cut short is copied, into *rx, and joined with the next bytes.
 * The space for it is sized from the header once that is known, so a large
 * frame arriving in many reads is not copied again and again.
 */
#include "reader.h"

#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/transport.h>

#include "frame.h"
#include "json.h"

struct vt_ws_rx {
	uint8_t *raw; /* a frame not yet whole, as received, and what follows */
	size_t raw_len;
	size_t raw_cap;
	uint8_t *msg; /* the payload of a message's fragments so far, unmasked */
	size_t msg_len;
	size_t msg_cap;
	uint8_t msg_op; /* that message's opcode; 0 when none is open */
};

void vt_ws_rx_free(struct vt_ws_rx *rx)
{
	if (rx == NULL) {
		return;
	}
	free(rx->raw);
	free(rx->msg);
	free(rx);
}

size_t vt_ws_rx_size(const struct vt_ws_rx *rx)
{
	return rx != NULL ? rx->raw_cap + rx->msg_cap : 0;
}

/* Append @n bytes to a buffer, making room for at least @want in all. */
static int append(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *p, size_t n, size_t want)
{
	if (want < *len + n) {
		want = *len + n;
	}
	if (want > *cap) {
		size_t grown = *cap * 2;
		uint8_t *b;

		if (grown < want) {
			grown = want;
		}
		b = realloc(*buf, grown);
		if (b == NULL) {
			return VT_ENOMEM;
		}
		*buf = b;
		*cap = grown;
	}
	if (n > 0) {
		memcpy(*buf + *len, p, n);
	}
	*len += n;
	return 0;
}

/*
 * A header's verdict, as soon as it is whole: 0, or the close code it
 * earns. A data frame or the message it extends that claims more than
 * @limit is refused before any of its payload comes.
 */
static int check_header(const struct vt_ws_rx *rx, const struct vt_ws_hdr *h, uint64_t limit)
{
	int open = rx != NULL && rx->msg_op != 0;
	uint64_t so_far = open ? rx->msg_len : 0;

	if (h->rsv != 0 || !h->masked) {
		return VT_CLOSE_PROTOCOL;
	}
	if (h->opcode >= VT_WS_CLOSE) {
		if (h->opcode > VT_WS_PONG || !h->fin || h->len > VT_WS_CONTROL_MAX) {
			return VT_CLOSE_PROTOCOL;
		}
		return 0;
	}
	if (h->opcode > VT_WS_BINARY || (h->len >> 63) != 0) {
		return VT_CLOSE_PROTOCOL;
	}

	/* A continuation continues something; a new message waits for the last. */
	if ((h->opcode == VT_WS_CONT) != open) {
		return VT_CLOSE_PROTOCOL;
	}
	if (h->len > limit || so_far > limit - h->len) {
		return VT_CLOSE_TOO_BIG;
	}
	return 0;
}

/* A close payload is empty, or a code a peer may send and a UTF-8 reason. */
static int check_close(const uint8_t *p, size_t len)
{
	if (len == 0) {
		return 0;
	}
	if (len == 1 || !vt_ws_close_code_valid(((unsigned)p[0] << 8) | p[1])) {
		return VT_CLOSE_PROTOCOL;
	}
	return vt_utf8_valid(p + 2, len - 2) ? 0 : VT_CLOSE_BAD_DATA;
}

static int deliver(vt_ws_frame_fn fn, void *ctx, unsigned opcode, uint8_t *p, size_t len)
{
	if (opcode == VT_WS_TEXT && !vt_utf8_valid(p, len)) {
		return VT_CLOSE_BAD_DATA;
	}
	if (opcode == VT_WS_CLOSE) {
		int rc = check_close(p, len);

		if (rc != 0) {
			return rc;
		}
	}
	return fn(ctx, opcode, p, len) != 0 ? VT_WS_READ_STOPPED : VT_WS_READ_OK;
}

/* Join a fragment to its message; hand the message on after the last one. */
static int take_fragment(struct vt_ws_rx **rxp, const struct vt_ws_hdr *h, const uint8_t *p,
                         vt_ws_frame_fn fn, void *ctx)
{
	struct vt_ws_rx *rx = *rxp;
	unsigned opcode;
	int rc;

	if (rx == NULL && (rx = *rxp = calloc(1, sizeof(*rx))) == NULL) {
		return VT_ENOMEM;
	}
	if (h->opcode != VT_WS_CONT) {
		rx->msg_op = h->opcode;
	}
	if (append(&rx->msg, &rx->msg_len, &rx->msg_cap, p, (size_t)h->len, 0) != 0) {
		return VT_ENOMEM;
	}
	if (!h->fin) {
		return VT_WS_READ_OK;
	}

	opcode = rx->msg_op;
	rx->msg_op = 0;
	rc = deliver(fn, ctx, opcode, rx->msg, rx->msg_len);
	free(rx->msg);
	rx->msg = NULL;
	rx->msg_len = rx->msg_cap = 0;
	return rc;
}

/*
 * Take the whole frames at the start of @p (@n bytes). *@used is how many
 * bytes they took; *@need is the size of the frame cut short after them
 * when its header is known, else 0.
 */
static int parse(struct vt_ws_rx **rxp, uint8_t *p, size_t n, uint64_t limit, vt_ws_frame_fn fn,
                 void *ctx, size_t *used, size_t *need)
{
	size_t pos = 0;

	*need = 0;
	while (pos < n) {
		struct vt_ws_hdr h;
		size_t size = vt_ws_hdr_parse(p + pos, n - pos, &h);
		uint8_t *payload = p + pos + size;
		int rc;

		if (size == 0) {
			break;
		}
		rc = check_header(*rxp, &h, limit);
		if (rc != 0) {
			return rc;
		}
		if (h.len > n - pos - size) {
			*need = size + (size_t)h.len;
			break;
		}

		vt_ws_unmask(payload, (size_t)h.len, h.mask, 0);
		pos += size + (size_t)h.len;
		if (h.opcode == VT_WS_CONT || !h.fin) {
			rc = take_fragment(rxp, &h, payload, fn, ctx);
		} else {
			rc = deliver(fn, ctx, h.opcode, payload, (size_t)h.len);
		}
		if (rc != VT_WS_READ_OK) {
			return rc;
		}
	}
	*used = pos;
	return VT_WS_READ_OK;
}

/*
 * Keep the bytes of @base (@n) past the first @used, which no whole frame
 * took, with room for @need in all; free *rx once nothing is partial.
 */
static int keep(struct vt_ws_rx **rxp, const uint8_t *base, size_t n, size_t used, size_t need)
{
	struct vt_ws_rx *rx = *rxp;
	size_t rest = n - used;

	if (rx != NULL && base == rx->raw) {
		memmove(rx->raw, base + used, rest);
		rx->raw_len = rest;
		if (rest > 0 && append(&rx->raw, &rx->raw_len, &rx->raw_cap, NULL, 0, need) != 0) {
			return VT_ENOMEM;
		}
	} else if (rest > 0) {
		if (rx == NULL && (rx = *rxp = calloc(1, sizeof(*rx))) == NULL) {
			return VT_ENOMEM;
		}
		if (append(&rx->raw, &rx->raw_len, &rx->raw_cap, base + used, rest, need) != 0) {
			return VT_ENOMEM;
		}
	}

	if (rx != NULL && rx->raw_len == 0) {
		free(rx->raw);
		rx->raw = NULL;
		rx->raw_cap = 0;
		if (rx->msg_op == 0) {
			vt_ws_rx_free(rx);
			*rxp = NULL;
		}
	}
	return VT_WS_READ_OK;
}

int vt_ws_read(struct vt_ws_rx **rxp, uint8_t *data, size_t len, uint64_t limit, vt_ws_frame_fn fn,
               void *ctx)
{
	struct vt_ws_rx *rx = *rxp;
	uint8_t *p = data;
	size_t n = len;
	size_t used = 0;
	size_t need = 0;
	int rc;

	/* A frame cut short last time: the new bytes join it. */
	if (rx != NULL && rx->raw_len > 0) {
		if (append(&rx->raw, &rx->raw_len, &rx->raw_cap, data, len, 0) != 0) {
			return VT_ENOMEM;
		}
		p = rx->raw;
		n = rx->raw_len;
	}

	rc = parse(rxp, p, n, limit, fn, ctx, &used, &need);
	if (rc != VT_WS_READ_OK) {
		return rc;
	}
	return keep(rxp, p, n, used, need);
}
