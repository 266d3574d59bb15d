/*
 * bench/ws.h - the client side of WebSocket (RFC 6455), just what a load
 * generator needs: the upgrade request, masked text frames, and reading
 * small frames back. Frames from a relay arrive masked (it forwards client
 * bytes as they are), so reading unmasks when the mask bit is set.
 */
#ifndef VB_WS_H
#define VB_WS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

enum {
	WS_TEXT = 0x1,
	WS_CLOSE = 0x8,
	WS_PING = 0x9,
	WS_PONG = 0xa,
};

struct vb_frame {
	int opcode;
	char *data;   /* payload, unmasked, inside the input buffer */
	size_t len;
	size_t total; /* header and payload: what to drain afterwards */
};

/* Write the upgrade request for @path, with a bearer @token unless NULL. */
void vb_ws_request(struct evbuffer *out, const char *host, const char *path, const char *token);

/*
 * Consume the upgrade response from @in. Returns 1 once a complete 101
 * response was read, 0 while it is incomplete, -1 for anything else.
 */
int vb_ws_response(struct evbuffer *in);

/* Append a masked frame; @rng is the connection's mask generator state. */
void vb_ws_send(struct evbuffer *out, int opcode, const void *p, size_t n, uint32_t *rng);

/* Read the next whole frame of @in into @f: 1 when one is there, else 0. */
int vb_ws_next(struct evbuffer *in, struct vb_frame *f);

#endif
