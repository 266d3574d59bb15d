/*
 * frontends/ws/frame.c - the WebSocket frame format (RFC 6455, section 5.2).
 */
#include "frame.h"

#include <string.h>

size_t vt_ws_hdr_parse(const uint8_t *p, size_t n, struct vt_ws_hdr *h)
{
	uint8_t len7;
	size_t size = 2;

	if (n < 2) {
		return 0;
	}
	len7 = p[1] & 0x7f;
	size += len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
	size += (p[1] & 0x80) ? 4 : 0;
	if (n < size) {
		return 0;
	}

	h->fin = (p[0] & 0x80) != 0;
	h->rsv = (p[0] >> 4) & 0x7;
	h->opcode = p[0] & 0x0f;
	h->masked = (p[1] & 0x80) != 0;
	h->size = (uint8_t)size;
	h->len = len7;
	if (len7 >= 126) {
		size_t nlen = len7 == 126 ? 2 : 8;

		h->len = 0;
		for (size_t i = 0; i < nlen; i++) {
			h->len = (h->len << 8) | p[2 + i];
		}
	}
	if (h->masked) {
		memcpy(h->mask, p + size - 4, 4);
	}
	return size;
}

size_t vt_ws_hdr_write(uint8_t *out, unsigned opcode, uint64_t len)
{
	size_t n = 2;

	out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (uint8_t)len;
		return n;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++) {
		out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	}
	return 10;
}

void vt_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t pos)
{
	uint8_t key[8];
	size_t i = 0;
	uint64_t k;

	/* The mask rotated to @pos, twice over: 8 bytes at a time. */
	for (int j = 0; j < 8; j++) {
		key[j] = mask[(pos + (uint64_t)j) & 3];
	}
	memcpy(&k, key, sizeof(k));
	for (; n - i >= sizeof(k); i += sizeof(k)) {
		uint64_t w;

		memcpy(&w, p + i, sizeof(w));
		w ^= k;
		memcpy(p + i, &w, sizeof(w));
	}
	for (; i < n; i++) {
		p[i] ^= key[i & 7];
	}
}

int vt_ws_close_code_valid(unsigned code)
{
	if (code >= 1000 && code <= 1014) {
		return code < 1004 || code > 1006;
	}
	return code >= 3000 && code <= 4999;
}
