/*
 * frontends/ws/outq.h - a WebSocket's frames waiting for the socket.
 *
 * Each queued frame is its header and a payload: either a pushed event's
 * shared envelope, held by reference and never copied, or a copy of a
 * small answer or control payload kept right behind its header. Writing
 * gathers many frames into one writev(). The queue is empty, and costs
 * nothing, whenever the kernel took everything.
 */
#ifndef VARTALAP_WS_OUTQ_H
#define VARTALAP_WS_OUTQ_H

#include <stddef.h>

#include <event2/util.h>

#include "pool.h"

struct evbuffer;
struct vt_frame;
struct vt_ws_out;

struct vt_ws_outq {
	struct vt_ws_out *head;
	struct vt_ws_out *tail;
	size_t bytes; /* still to write, headers included */
};

/*
 * The nodes of queued frames come from pools of the caller's (pool.h), one
 * set per event loop, made with vt_ws_outq_pools_init(); the functions that
 * queue, write or drop frames take the set. Every message costs a node or two
 * (its push, its answer), which malloc would serve and free each time.
 */
struct vt_ws_outq_pools {
	struct vt_pool shared; /* a shared frame's node */
	struct vt_pool small;  /* a node with room for a copied payload of 200 bytes */
};

void vt_ws_outq_pools_init(struct vt_ws_outq_pools *pools);

/* Free every node the pools keep. */
void vt_ws_outq_pools_drain(struct vt_ws_outq_pools *pools);

/* Queue @len bytes as they are (the 101 response). 0 or VT_ENOMEM. */
int vt_ws_outq_bytes(struct vt_ws_outq *q, const void *data, size_t len);

/* Queue a frame of @opcode whose payload (@len bytes) is copied. */
int vt_ws_outq_copy(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools, unsigned opcode,
		    const void *data, size_t len);

/* Queue a text frame whose payload is @f's envelope, held until written. */
int vt_ws_outq_shared(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools, struct vt_frame *f);

/*
 * Write from the head with writev() until the queue is empty or the socket
 * is full. Returns 0, or -1 when the socket failed (errno says why).
 */
int vt_ws_outq_write(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools, evutil_socket_t fd);

/*
 * Move everything into @buf (a TLS bufferevent's output): headers and
 * copies by value, shared envelopes by reference. 0 or VT_ENOMEM; on
 * failure what was not moved stays queued.
 */
int vt_ws_outq_move(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools, struct evbuffer *buf);

/* Drop everything queued. */
void vt_ws_outq_clear(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools);

#endif /* VARTALAP_WS_OUTQ_H */
