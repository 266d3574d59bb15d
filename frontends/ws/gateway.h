/*
 * frontends/ws/gateway.h - the WebSocket gateway on the HTTP port.
 *
 * A client upgrades with GET /v1/ws on the evhttp listener; the gateway
 * checks the handshake and the token, takes the socket away from evhttp,
 * and carries whole text messages between the socket and the engine with
 * its own framing (frame.h, reader.h, outq.h).
 */
#ifndef VARTALAP_WS_GATEWAY_H
#define VARTALAP_WS_GATEWAY_H

#include <stddef.h>

#include <event2/event.h>
#include <vartalap/engine.h>

#include "../common/frontend.h"

struct evhttp_request;
struct vt_ws_gateway;

/*
 * Create a gateway on @base for @engine. @cfg is copied (its key is not:
 * the key must outlive the gateway). Returns 0 or VT_ENOMEM (also when
 * /dev/null cannot be opened).
 */
int vt_ws_gateway_create(struct event_base *base, struct vt_engine *engine,
                         const struct vt_fe_config *cfg, struct vt_ws_gateway **out);

/*
 * Handle an upgrade request: answer it with an HTTP error (400, 401, 405,
 * 426, 503), or take over its connection and answer 101.
 */
void vt_ws_gateway_upgrade(struct vt_ws_gateway *gw, struct evhttp_request *req);

/* How many WebSocket connections are open. */
size_t vt_ws_gateway_count(const struct vt_ws_gateway *gw);

/*
 * Drop every connection (each is closed in the engine first, and its
 * socket closed) and free the gateway. Accepts NULL.
 */
void vt_ws_gateway_destroy(struct vt_ws_gateway *gw);

#endif /* VARTALAP_WS_GATEWAY_H */
