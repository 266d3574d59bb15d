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
};

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
};

#ifdef __cplusplus
}
#endif

#endif /* VARTALAP_TRANSPORT_H */
