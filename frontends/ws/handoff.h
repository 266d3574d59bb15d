/*
 * frontends/ws/handoff.h - take an upgraded socket away from evhttp.
 *
 * After the 101 a WebSocket needs none of evhttp's state for its
 * connection (about 2 KB with its bufferevent), so that state is freed and
 * the socket lives on alone.
 */
#ifndef VARTALAP_WS_HANDOFF_H
#define VARTALAP_WS_HANDOFF_H

#include <event2/util.h>

struct bufferevent;
struct evhttp_connection;

struct vt_ws_handoff {
	struct evhttp_connection *evcon;
	struct bufferevent *bev; /* evhttp's, on the socket, holding what it read */
	evutil_socket_t fd;      /* the socket */
	evutil_socket_t spare;   /* a second descriptor of it, made in advance */
};

/*
 * Reserve what the hand-off needs for @evcon, so that it cannot fail once
 * decided. Returns 0, or VT_EBUSY when the process is out of descriptors
 * (evhttp still owns everything and can answer the request).
 */
int vt_ws_handoff_begin(struct vt_ws_handoff *h, struct evhttp_connection *evcon);

/* Give up a hand-off that was begun: the connection stays evhttp's. */
void vt_ws_handoff_cancel(struct vt_ws_handoff *h);

/*
 * Free evhttp's connection and its request, and keep the socket (@h->fd)
 * open and unharmed. @stand_in is an open descriptor of /dev/null, lent
 * for the moment. Afterwards @h->bev is the caller's alone (one reference;
 * no callbacks; reading and writing off), still on the socket, its input
 * holding any bytes the client sent behind its request. A plain socket's
 * bufferevent goes with vt_ws_handoff_unbind(); a TLS one carries on.
 */
void vt_ws_handoff_finish(struct vt_ws_handoff *h, evutil_socket_t stand_in);

/* Free a plain socket's bufferevent and leave the socket open. */
void vt_ws_handoff_unbind(struct bufferevent *bev);

#endif /* VARTALAP_WS_HANDOFF_H */
