/*
 * frontends/ws/internal.h - state shared by the gateway and its connections.
 */
#ifndef VARTALAP_WS_INTERNAL_H
#define VARTALAP_WS_INTERNAL_H

#include <sys/queue.h>

#include <event2/event.h>
#include <vartalap/engine.h>

#include "../common/frontend.h"
#include "handshake.h"
#include "users.h"

struct evhttp_connection;
struct vt_ws_conn;

LIST_HEAD(vt_ws_conn_list, vt_ws_conn);

struct vt_ws_gateway {
	struct event_base *base;
	struct vt_engine *engine;
	struct vt_fe_config cfg;
	struct vt_ws_conn_list conns; /* of struct vt_ws_conn */
	size_t count;
	struct vt_ws_users users; /* sockets per user, for max_user_conns */
};

/*
 * Open the engine connection for @id and, on success, take @evcon from
 * evhttp and answer 101 on it. A user already at max_user_conns gets the
 * 101 too, then close 1008 with the reason, which a browser can show.
 * Returns 0, or a vt_error (the caller still owns the request and answers
 * it).
 */
int vt_ws_conn_start(struct vt_ws_gateway *gw, struct evhttp_connection *evcon,
                     const struct vt_identity *id, const struct vt_ws_handshake *hs);

/* Free @wc at once: engine connection, wslay context, socket. */
void vt_ws_conn_drop(struct vt_ws_conn *wc);

#endif /* VARTALAP_WS_INTERNAL_H */
