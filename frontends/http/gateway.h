/*
 * frontends/http/gateway.h - the REST gateway (evhttp) and the shared port.
 *
 * Routes: POST /v1/send, GET /v1/messages, POST /v1/ack, GET /v1/groups,
 * GET /v1/groups/{id}, GET /healthz, and GET /v1/ws handed to the WebSocket
 * gateway. Every body is JSON. A REST request acts for the device of its
 * token's "dev" claim, else of ?device=, else the default device.
 */
#ifndef VARTALAP_HTTP_GATEWAY_H
#define VARTALAP_HTTP_GATEWAY_H

#include <stdint.h>

#include <event2/event.h>
#include <vartalap/engine.h>

#include "../common/frontend.h"

struct ssl_ctx_st;
struct vt_http_gateway;
struct vt_ws_gateway;

/*
 * Create the evhttp server on @base for @engine, with upgrades going to @ws
 * (may be NULL: then /v1/ws answers 404). @cfg is copied; its key must
 * outlive the gateway. Returns 0 or VT_ENOMEM.
 */
int vt_http_gateway_create(struct event_base *base, struct vt_engine *engine,
                           const struct vt_fe_config *cfg, struct vt_ws_gateway *ws,
                           struct vt_http_gateway **out);

/*
 * Serve TLS only, with @ctx (see tls/tls.h), on every connection accepted
 * from now on. @ctx must outlive the gateway. Call before listening.
 */
void vt_http_gateway_use_tls(struct vt_http_gateway *gw, struct ssl_ctx_st *ctx);

/*
 * Listen on @addr:@port (port 0 picks a free one) and store the bound port
 * in @bound. Returns 0, or VT_EIO with the reason logged.
 */
int vt_http_gateway_listen(struct vt_http_gateway *gw, const char *addr, uint16_t port,
                           uint16_t *bound);

/* Close the listening socket; open connections are served on. */
void vt_http_gateway_stop_accepting(struct vt_http_gateway *gw);

/*
 * Free the server and every connection it still holds. Destroy the
 * WebSocket gateway and the engine first: no reply may be pending. Accepts
 * NULL.
 */
void vt_http_gateway_destroy(struct vt_http_gateway *gw);

#endif /* VARTALAP_HTTP_GATEWAY_H */
