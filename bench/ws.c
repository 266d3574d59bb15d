/*
 * bench/ws.c - client WebSocket framing.
 */
#include "ws.h"

#include <string.h>

/*
 * The server's Sec-WebSocket-Accept is not checked: the peer is a server
 * we started ourselves, and checking it would cost a SHA-1 per connection
 * in the load core for no information.
 */
#define WS_KEY "dmFydGFsYXAtYmVuY2gtMQ=="

void vb_ws_request(struct evbuffer *out, const char *host, const char *path, const char *token)
{
	evbuffer_add_printf(out,
	                    "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	                    "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
	                    "Sec-WebSocket-Version: 13\r\n",
	                    path, host);
	if (token != NULL) {
		evbuffer_add_printf(out, "Authorization: Bearer %s\r\n", token);
	}
	evbuffer_add(out, "\r\n", 2);
}

int vb_ws_response(struct evbuffer *in)
{
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char status[13];

	if (end.pos < 0) {
		return evbuffer_get_length(in) > 8192 ? -1 : 0;
	}
	if (evbuffer_copyout(in, status, 12) != 12) {
		return -1;
	}
	status[12] = '\0';
	evbuffer_drain(in, (size_t)end.pos + 4);
	return strncmp(status + 9, "101", 3) == 0 ? 1 : -1;
}

static uint32_t next_mask(uint32_t *rng)
{
	/* xorshift32: masks only need to vary, not to be unpredictable here. */
	uint32_t x = *rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*rng = x;
	return x;
}

static size_t put_header(unsigned char *h, int opcode, size_t n)
{
	h[0] = (unsigned char)(0x80 | opcode);
	if (n < 126) {
		h[1] = (unsigned char)(0x80 | n);
		return 2;
	}
	if (n <= 0xffff) {
		h[1] = 0x80 | 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		return 4;
	}
	h[1] = 0x80 | 127;
	for (int i = 0; i < 8; i++) {
		h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
	}
	return 10;
}

void vb_ws_send(struct evbuffer *out, int opcode, const void *p, size_t n, uint32_t *rng)
{
	unsigned char stack[512];
	unsigned char *f = stack;
	const unsigned char *src = p;
	struct evbuffer_iovec v;
	unsigned char mask[4];
	uint32_t m = next_mask(rng);
	size_t hl;

	/* Build the frame in place at the buffer's tail: one copy, no malloc. */
	if (evbuffer_reserve_space(out, n + 14, &v, 1) == 1) {
		f = v.iov_base;
	} else if (n + 14 > sizeof(stack)) {
		return;
	}
	hl = put_header(f, opcode, n);
	memcpy(mask, &m, 4);
	memcpy(f + hl, mask, 4);
	hl += 4;
	for (size_t i = 0; i < n; i++) {
		f[hl + i] = src[i] ^ mask[i & 3];
	}
	if (f == stack) {
		evbuffer_add(out, f, hl + n);
		return;
	}
	v.iov_len = hl + n;
	evbuffer_commit_space(out, &v, 1);
}

int vb_ws_next(struct evbuffer *in, struct vb_frame *f)
{
	size_t have = evbuffer_get_length(in), hl = 2, n;
	unsigned char h[14], *p;
	int masked;

	if (have < 2 || evbuffer_copyout(in, h, have < 14 ? have : 14) < 2) {
		return 0;
	}
	masked = (h[1] & 0x80) != 0;
	n = h[1] & 0x7f;
	if (n == 126) {
		hl = 4;
		n = have < 4 ? 0 : ((size_t)h[2] << 8) | h[3];
	} else if (n == 127) {
		hl = 10;
		n = 0;
		for (int i = 0; i < 8 && have >= 10; i++) {
			n = (n << 8) | h[2 + i];
		}
	}
	hl += masked ? 4 : 0;
	if (have < hl || have < hl + n) {
		return 0;
	}
	p = evbuffer_pullup(in, (ev_ssize_t)(hl + n));
	f->opcode = h[0] & 0x0f;
	f->data = (char *)p + hl;
	f->len = n;
	f->total = hl + n;
	for (size_t i = 0; masked && i < n; i++) {
		p[hl + i] ^= p[hl - 4 + (i & 3)];
	}
	return 1;
}
