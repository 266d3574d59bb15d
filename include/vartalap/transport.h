/*
 * vartalap/transport.h - the transport vtable: how the engine talks to a client.
 *
 * Stable API. A frontend (WebSocket, or anything that carries whole text
 * messages both ways) authenticates a client, opens a vt_conn for it with
 * vt_conn_open() (see engine.h), and passes these ops. The engine calls them
 * from the thread that drives it.
 *
 * Re-entrancy: an op must not call back into the engine for the same
 * connection (no vt_conn_close() from inside send()); a frontend that finds
 * the socket dead defers the close to its next loop turn.
 */
#ifndef VARTALAP_TRANSPORT_H
#define VARTALAP_TRANSPORT_H

#include <stddef.h>

#include <vartalap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* WebSocket close codes the engine asks for. */
enum vt_close_code {
	VT_CLOSE_NORMAL = 1000,
	VT_CLOSE_GOING_AWAY = 1001,   /* server shutting down */
	VT_CLOSE_PROTOCOL = 1002,
	VT_CLOSE_UNSUPPORTED = 1003,  /* binary frame where text is expected */
	VT_CLOSE_BAD_DATA = 1007,     /* invalid UTF-8 */
	VT_CLOSE_POLICY = 1008,
	VT_CLOSE_TOO_BIG = 1009,
	VT_CLOSE_INTERNAL = 1011,
	VT_CLOSE_TRY_AGAIN = 1013,
	VT_CLOSE_TOKEN_EXPIRED = 4001, /* re-authenticate and reconnect */
	VT_CLOSE_REPLACED = 4002,      /* same device connected again */
	VT_CLOSE_LOGGED_OUT = 4003,    /* its token was revoked by a logout */
};

/*
 * The envelope that pushes one event, encoded once and shared by every
 * connection it goes to (a group message is one body for all members).
 * Reference-counted, not thread-safe: hold and release it on the thread
 * that drives the engine. It does not need the engine to stay alive.
 */
struct vt_frame;

/* The envelope's bytes (UTF-8 JSON, not NUL-terminated), @len of them. */
VT_EXPORT const char *vt_frame_data(const struct vt_frame *f, size_t *len);

/* Keep @f (and its bytes) until the matching vt_frame_release(). */
VT_EXPORT struct vt_frame *vt_frame_hold(struct vt_frame *f);

/* Give back a reference taken with vt_frame_hold(). Accepts NULL. */
VT_EXPORT void vt_frame_release(struct vt_frame *f);

struct vt_transport_ops {
	/*
	 * Queue one whole text message of @len bytes (UTF-8 JSON, not
	 * NUL-terminated; copy it, it is not valid after the call). Returns 0;
	 * VT_EAGAIN when the connection's outbound queue is at its bound (the
	 * message was not queued; the engine keeps it and waits for
	 * vt_conn_writable()); or VT_ECLOSED when the connection is going away.
	 */
	int (*send)(void *ctx, const char *data, size_t len);

	/*
	 * Close the connection with a WebSocket close @code and a short ASCII
	 * @reason. The engine sends nothing more on it afterwards; the frontend
	 * still calls vt_conn_close() once the socket is gone.
	 */
	void (*close)(void *ctx, int code, const char *reason);

	/*
	 * Optional; when NULL, pushed events go through send() as copies.
	 * Queue the shared envelope @f as one text message without copying
	 * it: vt_frame_hold() it for as long as its bytes are needed, and
	 * vt_frame_release() it once written. Returns as send().
	 */
	int (*send_frame)(void *ctx, struct vt_frame *f);
};

#ifdef __cplusplus
}
#endif

#endif /* VARTALAP_TRANSPORT_H */
