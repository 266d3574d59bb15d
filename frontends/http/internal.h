/*
 * frontends/http/internal.h - state shared by the REST routes.
 */
#ifndef VARTALAP_HTTP_INTERNAL_H
#define VARTALAP_HTTP_INTERNAL_H

#include <sys/queue.h>

#include <event2/http.h>
#include <vartalap/engine.h>

#include "../common/frontend.h"

/* Seconds a client refused as busy (503) should wait before trying again. */
#define VT_HTTP_RETRY_BUSY_S "5"

/*
 * Seconds a client over its rate (429) should wait: at --rate 1 or more a
 * bucket earns a token back within one.
 */
#define VT_HTTP_RETRY_RATE_S "1"

struct vt_http_pending;
struct vt_http_conn;
struct ssl_ctx_st;

LIST_HEAD(vt_http_pending_list, vt_http_pending);
LIST_HEAD(vt_http_conn_list, vt_http_conn);

struct vt_http_gateway {
	struct event_base *base;
	struct vt_engine *engine;
	struct vt_fe_config cfg;
	struct vt_ws_gateway *ws;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;   /* NULL once accepting stopped */
	struct vt_accept_guard *guard;       /* pauses accepting when out of fds */
	struct vt_http_pending_list pending; /* requests the engine owes a reply */
	struct ssl_ctx_st *tls;              /* NULL: plain HTTP (not owned) */
	struct vt_http_conn_list conns;      /* every socket, see conns.c */
	size_t conn_count;                   /* entries of @conns */
	struct vt_http_conn **conn_table;    /* bound entries by evhttp record */
	size_t conn_slots;                   /* a power of two */
	size_t conn_bound;                   /* entries of @conn_table */
};

/*
 * A request waiting for the engine's reply. The client may go away first;
 * the record then learns whether libevent freed the request or kept it
 * detached for the reply to release.
 */
struct vt_http_pending {
	LIST_ENTRY(vt_http_pending) link;
	struct evhttp_request *req; /* NULL when libevent freed it */
	struct evhttp_connection *evcon;
	unsigned long long log_id; /* the request's id in log lines */
};

/*
 * Track @req until its reply. Returns the record (the arg of
 * vt_http_on_reply), or NULL after answering 500 when memory ran out.
 */
struct vt_http_pending *vt_http_pending_new(struct vt_http_gateway *gw, struct evhttp_request *req);

/*
 * @evcon is being freed: requests on it that wait for the engine must not
 * touch it any more. Called by the connection registry.
 */
void vt_http_pending_conn_closed(struct vt_http_gateway *gw, struct evhttp_connection *evcon);

/* The vt_reply_fn of every engine request: answer, then forget the record. */
void vt_http_on_reply(void *arg, int status, const char *json, size_t len);

/* POST /v1/send, GET /v1/messages, POST /v1/ack for an authenticated @id. */
void vt_http_route_send(struct vt_http_gateway *gw, struct evhttp_request *req,
                        const struct vt_identity *id);
void vt_http_route_messages(struct vt_http_gateway *gw, struct evhttp_request *req,
                            const struct vt_identity *id);
void vt_http_route_ack(struct vt_http_gateway *gw, struct evhttp_request *req,
                       const struct vt_identity *id);
void vt_http_route_logout(struct vt_http_gateway *gw, struct evhttp_request *req,
                          const struct vt_identity *id);

/* GET /v1/groups: the groups @id belongs to. */
void vt_http_route_groups(struct vt_http_gateway *gw, struct evhttp_request *req,
                          const struct vt_identity *id);

/* GET /v1/groups/{id}: one group, "g:team1" or the bare "team1", URL-encoded. */
void vt_http_route_group(struct vt_http_gateway *gw, struct evhttp_request *req,
                         const struct vt_identity *id);

#endif /* VARTALAP_HTTP_INTERNAL_H */
