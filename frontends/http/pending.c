/*
 * frontends/http/pending.c - requests that wait for the engine.
 *
 * The engine may answer inside the call or in a later loop turn (after the
 * batch is durable). If the client closes first, libevent 2.1 either frees
 * the request with its connection, or detaches it and leaves it to the
 * reply to free. The connection's close callback (the registry's, see
 * conns.c) tells the two apart while the request still exists, so the reply
 * never touches freed memory and a detached request is still released.
 */
#include <stdlib.h>

#include <vartalap/error.h>

#include "../common/http_reply.h"
#include "conns.h"
#include "internal.h"

void vt_http_pending_conn_closed(struct vt_http_gateway *gw, struct evhttp_connection *evcon)
{
	struct vt_http_pending *p;

	LIST_FOREACH(p, &gw->pending, link)
	{
		if (p->evcon != evcon || p->req == NULL) {
			continue;
		}
		/* Still attached: freed with the connection right after this. */
		if (evhttp_request_get_connection(p->req) == evcon) {
			p->req = NULL;
		}
	}
}

/* For a socket the registry could not track (it ran out of memory). */
static void on_untracked_close(struct evhttp_connection *evcon, void *arg)
{
	vt_http_pending_conn_closed(arg, evcon);
}

struct vt_http_pending *vt_http_pending_new(struct vt_http_gateway *gw, struct evhttp_request *req)
{
	struct vt_http_pending *p = malloc(sizeof(*p));

	if (p == NULL) {
		vt_fe_reply_vt_error(req, VT_ENOMEM);
		return NULL;
	}
	p->req = req;
	p->evcon = evhttp_request_get_connection(req);
	p->log_id = vt_fe_req_id();
	if (!vt_http_conns_tracked(gw, p->evcon)) {
		evhttp_connection_set_closecb(p->evcon, on_untracked_close, gw);
	}
	LIST_INSERT_HEAD(&gw->pending, p, link);
	return p;
}

/* A refusal the client should retry says when, as a REST client expects. */
static void add_retry_after(struct evhttp_request *req, int status)
{
	const char *s = status == VT_ERATE ? VT_HTTP_RETRY_RATE_S
		      : status == VT_EBUSY ? VT_HTTP_RETRY_BUSY_S
					   : NULL;

	if (s != NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", s);
	}
}

void vt_http_on_reply(void *arg, int status, const char *json, size_t len)
{
	struct vt_http_pending *p = arg;
	unsigned long long outer = vt_fe_req_id();

	LIST_REMOVE(p, link);
	if (p->req != NULL) {
		/* The engine may answer in a later loop turn: name the request. */
		vt_fe_req_resume(p->log_id);
		add_retry_after(p->req, status);
		vt_fe_reply_json(p->req, vt_error_http_status(status), json, len);
		vt_fe_req_resume(outer);
	}
	free(p);
}
