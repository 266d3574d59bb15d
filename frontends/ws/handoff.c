/*
 * frontends/ws/handoff.c - take an upgraded socket away from evhttp.
 *
 * libevent 2.1 has no call that detaches a socket from an evhttp
 * connection: evhttp_connection_free() always shuts down the writing side
 * of the descriptor it was given. So the socket is kept under a second
 * descriptor while the first one points at /dev/null (where the shutdown
 * does nothing), the record is freed, and the socket goes back to its
 * first number. The bufferevent is held by a reference across the free,
 * so it neither closes that number nor disappears; a TLS one keeps its
 * session that way. No event of the socket is registered while its
 * descriptor points elsewhere.
 */
#include "handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <vartalap/error.h>
#include <vartalap/log.h>

int vt_ws_handoff_begin(struct vt_ws_handoff *h, struct evhttp_connection *evcon)
{
	h->evcon = evcon;
	h->bev = evhttp_connection_get_bufferevent(evcon);
	h->fd = bufferevent_getfd(h->bev);
	h->spare = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
	if (h->spare < 0) {
		vt_log(VT_LOG_WARN, "ws: no descriptor for the hand-off fd=%d error=%d", (int)h->fd,
		       errno);
		return VT_EBUSY;
	}
	return 0;
}

void vt_ws_handoff_cancel(struct vt_ws_handoff *h)
{
	close(h->spare);
	h->spare = -1;
}

/* Point @fd at @file's open file; dup2() fails only on a signal here. */
static void point(evutil_socket_t file, evutil_socket_t fd)
{
	while (dup2(file, fd) < 0 && errno == EINTR) {
	}
}

void vt_ws_handoff_finish(struct vt_ws_handoff *h, evutil_socket_t stand_in)
{
	/* Deregister the socket while the descriptor still names it. */
	bufferevent_disable(h->bev, EV_READ | EV_WRITE);
	bufferevent_incref(h->bev);

	point(stand_in, h->fd);
	evhttp_connection_free(h->evcon);
	point(h->spare, h->fd);

	close(h->spare);
	h->spare = -1;
	h->evcon = NULL;
}

void vt_ws_handoff_unbind(struct bufferevent *bev)
{
	/* Without a descriptor, freeing it closes nothing. */
	bufferevent_setfd(bev, -1);
	bufferevent_decref(bev);
}
