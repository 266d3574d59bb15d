/*
 * frontends/ws/frame_scan.c - frame header scanning (RFC 6455, section 5.2).
 */
#include "frame_scan.h"

#include <string.h>

void vt_ws_frame_scan_init(struct vt_ws_frame_scan *s, uint64_t limit)
{
	memset(s, 0, sizeof(*s));
	s->limit = limit;
	s->hdr_need = 2;
}

/* Header length from its first two bytes: extended length, then the mask. */
static uint8_t header_need(const uint8_t *hdr)
{
	uint8_t len7 = hdr[1] & 0x7f;
	uint8_t need = 2;

	if (len7 == 126) {
		need += 2;
	} else if (len7 == 127) {
		need += 8;
	}
	if (hdr[1] & 0x80) {
		need += 4;
	}
	return need;
}

static uint64_t header_length(const uint8_t *hdr)
{
	uint8_t len7 = hdr[1] & 0x7f;
	uint64_t v = 0;
	int i;

	if (len7 < 126) {
		return len7;
	}
	if (len7 == 126) {
		return ((uint64_t)hdr[2] << 8) | hdr[3];
	}
	for (i = 0; i < 8; i++) {
		v = (v << 8) | hdr[2 + i];
	}
	return v;
}

/* A whole header was read: check it and start skipping its payload. */
static int header_done(struct vt_ws_frame_scan *s)
{
	uint8_t opcode = s->hdr[0] & 0x0f;
	int fin = (s->hdr[0] & 0x80) != 0;
	uint64_t len = header_length(s->hdr);

	s->hdr_len = 0;
	s->hdr_need = 2;

	/* A 64-bit length with the top bit set is a protocol error for wslay. */
	if (len >> 63) {
		return 0;
	}
	s->payload_left = len;

	/* Control frames (0x8 and up) are small and checked by wslay. */
	if (opcode >= 0x8) {
		return 0;
	}
	if (opcode != 0x0) {
		s->msg_len = 0; /* a new message; wslay refuses one mid-message */
	}
	if (len > s->limit || s->msg_len > s->limit - len) {
		return -1;
	}
	s->msg_len = fin ? 0 : s->msg_len + len;
	return 0;
}

int vt_ws_frame_scan_feed(struct vt_ws_frame_scan *s, const uint8_t *data, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (s->payload_left > 0) {
			size_t take = len - i;

			if ((uint64_t)take > s->payload_left) {
				take = (size_t)s->payload_left;
			}
			s->payload_left -= take;
			i += take;
			continue;
		}

		s->hdr[s->hdr_len++] = data[i++];
		if (s->hdr_len == 2) {
			s->hdr_need = header_need(s->hdr);
		}
		if (s->hdr_len == s->hdr_need && header_done(s) != 0) {
			return -1;
		}
	}
	return 0;
}
