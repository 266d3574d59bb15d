/*
 * frontends/ws/outq.c - a WebSocket's frames waiting for the socket.
 */
#include "outq.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <vartalap/error.h>
#include <vartalap/transport.h>

#include "frame.h"

/* Frames one writev() carries at most: two iovecs each. */
#define WRITE_BATCH 64

/* Payloads copied into a node from the small pool: answers, receipts of a few acks. */
#define SMALL_COPY_MAX 200

/* Where a node came from, and goes back to. */
enum { FROM_MALLOC, FROM_SHARED, FROM_SMALL };

/*
 * One queued frame. Its header sits at the end of @hdr, so that a copied
 * payload in @copy follows it directly and the two go out as one piece.
 */
struct vt_ws_out {
	struct vt_ws_out *next;
	struct vt_frame *shared; /* the payload's owner, or NULL for a copy */
	const uint8_t *body;     /* the payload (in @copy for a copy) */
	size_t body_len;
	size_t done; /* bytes of header and payload written */
	uint8_t from; /* FROM_*: its pool, if any */
	uint8_t hdr_len;
	uint8_t hdr[VT_WS_SERVER_HDR_MAX];
	uint8_t copy[];
};

_Static_assert(offsetof(struct vt_ws_out, copy) ==
                       offsetof(struct vt_ws_out, hdr) + VT_WS_SERVER_HDR_MAX,
               "a copied payload must follow its header");

static const uint8_t *out_start(const struct vt_ws_out *o)
{
	return o->hdr + VT_WS_SERVER_HDR_MAX - o->hdr_len;
}

static size_t out_size(const struct vt_ws_out *o)
{
	return o->hdr_len + o->body_len;
}

static void push(struct vt_ws_outq *q, struct vt_ws_out *o)
{
	o->next = NULL;
	if (q->tail != NULL) {
		q->tail->next = o;
	} else {
		q->head = o;
	}
	q->tail = o;
	q->bytes += out_size(o);
}

/* A node for @copy_len copied bytes (0: a shared frame's), from @pools when they serve it. */
static struct vt_ws_out *out_alloc(size_t copy_len, struct vt_ws_outq_pools *pools)
{
	struct vt_ws_out *o;
	uint8_t from = FROM_MALLOC;

	if (pools != NULL && copy_len == 0) {
		o = vt_pool_get(&pools->shared);
		from = FROM_SHARED;
	} else if (pools != NULL && copy_len <= SMALL_COPY_MAX) {
		o = vt_pool_get(&pools->small);
		from = FROM_SMALL;
	} else {
		o = malloc(sizeof(*o) + copy_len);
	}
	if (o != NULL) {
		o->from = from;
	}
	return o;
}

/* A frame of @copy_len copied bytes after a header for @opcode (-1: none). */
static struct vt_ws_out *out_new(int opcode, size_t body_len, size_t copy_len,
				 struct vt_ws_outq_pools *pools)
{
	struct vt_ws_out *o = out_alloc(copy_len, pools);
	uint8_t hdr[VT_WS_SERVER_HDR_MAX];

	if (o == NULL) {
		return NULL;
	}
	o->shared = NULL;
	o->body = o->copy;
	o->body_len = body_len;
	o->done = 0;
	o->hdr_len = 0;
	if (opcode >= 0) {
		o->hdr_len = (uint8_t)vt_ws_hdr_write(hdr, (unsigned)opcode, body_len);
		memcpy(o->hdr + VT_WS_SERVER_HDR_MAX - o->hdr_len, hdr, o->hdr_len);
	}
	return o;
}

static void out_free(struct vt_ws_out *o, struct vt_ws_outq_pools *pools)
{
	vt_frame_release(o->shared);
	switch (o->from) {
	case FROM_SHARED:
		vt_pool_put(&pools->shared, o);
		break;
	case FROM_SMALL:
		vt_pool_put(&pools->small, o);
		break;
	default:
		free(o);
	}
}

void vt_ws_outq_pools_init(struct vt_ws_outq_pools *pools)
{
	/* The nodes of about a thousand connections' windows of pushes, and
	 * as many answers. */
	vt_pool_init(&pools->shared, sizeof(struct vt_ws_out), 16384);
	vt_pool_init(&pools->small, sizeof(struct vt_ws_out) + SMALL_COPY_MAX, 4096);
}

void vt_ws_outq_pools_drain(struct vt_ws_outq_pools *pools)
{
	vt_pool_drain(&pools->shared);
	vt_pool_drain(&pools->small);
}

int vt_ws_outq_bytes(struct vt_ws_outq *q, const void *data, size_t len)
{
	struct vt_ws_out *o = out_new(-1, len, len, NULL);

	if (o == NULL) {
		return VT_ENOMEM;
	}
	memcpy(o->copy, data, len);
	push(q, o);
	return 0;
}

int vt_ws_outq_copy(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools, unsigned opcode,
		    const void *data, size_t len)
{
	struct vt_ws_out *o = out_new((int)opcode, len, len, pools);

	if (o == NULL) {
		return VT_ENOMEM;
	}
	if (len > 0) {
		memcpy(o->copy, data, len);
	}
	push(q, o);
	return 0;
}

int vt_ws_outq_shared(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools, struct vt_frame *f)
{
	size_t len;
	const char *data = vt_frame_data(f, &len);
	struct vt_ws_out *o = out_new(VT_WS_TEXT, len, 0, pools);

	if (o == NULL) {
		return VT_ENOMEM;
	}
	o->shared = vt_frame_hold(f);
	o->body = (const uint8_t *)data;
	push(q, o);
	return 0;
}

/* The unwritten bytes of up to WRITE_BATCH frames from the head, @want in all. */
static int gather(const struct vt_ws_outq *q, struct iovec *iov, size_t *want)
{
	int n = 0;

	*want = 0;
	for (const struct vt_ws_out *o = q->head; o != NULL && n + 2 <= 2 * WRITE_BATCH;
	     o = o->next) {
		size_t done = o->done;

		/* Frames queued in a burst to many connections have mostly left
		 * the caches by the time each connection is written. */
		if (o->next != NULL) {
			__builtin_prefetch(o->next);
		}
		*want += out_size(o) - done;
		if (o->shared == NULL) {
			iov[n].iov_base = (void *)(out_start(o) + done);
			iov[n++].iov_len = out_size(o) - done;
			continue;
		}

		/* A shared payload lies elsewhere: header and payload apart. */
		if (done < o->hdr_len) {
			iov[n].iov_base = (void *)(out_start(o) + done);
			iov[n++].iov_len = o->hdr_len - done;
			done = o->hdr_len;
		}
		iov[n].iov_base = (void *)(o->body + (done - o->hdr_len));
		iov[n++].iov_len = out_size(o) - done;
	}
	return n;
}

/* The kernel took @n bytes from the head: free the frames it finished. */
static void consume(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools, size_t n)
{
	q->bytes -= n;
	while (n > 0) {
		struct vt_ws_out *o = q->head;
		size_t left = out_size(o) - o->done;

		if (n < left) {
			o->done += n;
			return;
		}
		n -= left;
		q->head = o->next;
		if (q->head == NULL) {
			q->tail = NULL;
		}
		out_free(o, pools);
	}
}

int vt_ws_outq_write(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools, evutil_socket_t fd)
{
	struct iovec iov[2 * WRITE_BATCH];

	while (q->head != NULL) {
		size_t want;
		int n = gather(q, iov, &want);
		ssize_t w = writev(fd, iov, n);

		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w < 0) {
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		consume(q, pools, (size_t)w);

		/* Taking less than offered means the socket is full. */
		if ((size_t)w < want) {
			return 0;
		}
	}
	return 0;
}

static void release_shared(const void *data, size_t len, void *arg)
{
	vt_frame_release(arg);
}

/* Append the unwritten part of @o to @buf. */
static int move_one(struct vt_ws_out *o, struct evbuffer *buf)
{
	size_t done = o->done;

	if (o->shared == NULL) {
		return evbuffer_add(buf, out_start(o) + done, out_size(o) - done);
	}
	if (done < o->hdr_len) {
		if (evbuffer_add(buf, out_start(o) + done, o->hdr_len - done) != 0) {
			return -1;
		}
		o->done = done = o->hdr_len;
	}
	if (evbuffer_add_reference(buf, o->body + (done - o->hdr_len), out_size(o) - done,
	                           release_shared, o->shared) != 0) {
		return -1;
	}
	o->shared = NULL; /* the evbuffer releases it now */
	return 0;
}

int vt_ws_outq_move(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools, struct evbuffer *buf)
{
	while (q->head != NULL) {
		struct vt_ws_out *o = q->head;
		size_t done = o->done;

		if (move_one(o, buf) != 0) {
			q->bytes -= o->done - done;
			return VT_ENOMEM;
		}
		q->bytes -= out_size(o) - done;
		q->head = o->next;
		if (q->head == NULL) {
			q->tail = NULL;
		}
		out_free(o, pools);
	}
	return 0;
}

void vt_ws_outq_clear(struct vt_ws_outq *q, struct vt_ws_outq_pools *pools)
{
	while (q->head != NULL) {
		struct vt_ws_out *o = q->head;

		q->head = o->next;
		out_free(o, pools);
	}
	q->tail = NULL;
	q->bytes = 0;
}
