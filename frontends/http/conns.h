/*
 * frontends/http/conns.h - every socket of the HTTP port, from accept on.
 *
 * evhttp in libevent 2.1 tells nothing about a connection until a whole
 * request has arrived, so a peer that never finishes its headers would be
 * invisible. The registry sees each socket when evhttp asks for its
 * bufferevent, counts it until evhttp frees it, and cuts it when it has not
 * delivered a complete request in time.
 */
#ifndef VARTALAP_HTTP_CONNS_H
#define VARTALAP_HTTP_CONNS_H

#include <stddef.h>

struct evhttp_connection;
struct evhttp_request;
struct vt_http_gateway;

/*
 * Make evhttp create each connection's bufferevent here (TLS when the
 * gateway has a context). Returns 0 or VT_ENOMEM.
 */
int vt_http_conns_init(struct vt_http_gateway *gw);

/*
 * Forget every connection evhttp did not free; call after evhttp_free().
 */
void vt_http_conns_finish(struct vt_http_gateway *gw);

/*
 * A complete request arrived on its connection: stop that connection's
 * deadline until the reply is out. Returns 1 when the connection is over the
 * connection cap and must be answered 503, else 0.
 */
int vt_http_conns_request_in(struct vt_http_gateway *gw, struct evhttp_request *req);

/* True when the registry knows @evcon (and so owns its close callback). */
int vt_http_conns_tracked(struct vt_http_gateway *gw, struct evhttp_connection *evcon);

/* How many sockets the port holds, WebSockets included (the cap counts these). */
size_t vt_http_conns_count(const struct vt_http_gateway *gw);

#endif /* VARTALAP_HTTP_CONNS_H */
