/*
 * frontends/http/gateway.c - the evhttp server: limits, routing, auth.
 */
#include "gateway.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <vartalap/log.h>

#include "../common/auth.h"
#include "../common/device.h"
#include "../common/http_reply.h"
#include "../ws/gateway.h"
#include "accept.h"
#include "conns.h"
#include "internal.h"
#include "metrics.h"
#include "static.h"

/*
 * evhttp refuses a body over its cap with an HTML 413 before reading it. The
 * cap sits well above the message limit, so a body that is merely too large
 * is read (bounded) and answered here with a JSON "too_large"; only absurd
 * lengths meet evhttp's refusal.
 */
#define BODY_SLACK (256 * 1024)

typedef void (*route_fn)(struct vt_http_gateway *gw, struct evhttp_request *req,
                         const struct vt_identity *id);

struct route {
	const char *path;
	enum evhttp_cmd_type method;
	route_fn fn;
	int prefix; /* @path ends in '/' and names a family: /v1/groups/{id} */
};

static const struct route routes[] = {
        {"/v1/send", EVHTTP_REQ_POST, vt_http_route_send, 0},
        {"/v1/messages", EVHTTP_REQ_GET, vt_http_route_messages, 0},
        {"/v1/ack", EVHTTP_REQ_POST, vt_http_route_ack, 0},
        {"/v1/logout", EVHTTP_REQ_POST, vt_http_route_logout, 0},
        {"/v1/groups", EVHTTP_REQ_GET, vt_http_route_groups, 0},
        {"/v1/groups/", EVHTTP_REQ_GET, vt_http_route_group, 1},
};

static int route_matches(const struct route *r, const char *path)
{
	if (r->prefix) {
		return strncmp(path, r->path, strlen(r->path)) == 0;
	}
	return strcmp(path, r->path) == 0;
}

/* What /healthz answers: the engine's storage, and the host's own check. */
static int healthy(const struct vt_http_gateway *gw)
{
	return vt_engine_healthy(gw->engine) &&
	       (gw->cfg.healthy == NULL || gw->cfg.healthy(gw->cfg.healthy_arg));
}

static void serve_health(struct vt_http_gateway *gw, struct evhttp_request *req)
{
	static const char ok[] = "{\"status\":\"ok\"}";
	static const char degraded[] = "{\"status\":\"degraded\"}";

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		vt_fe_reply_error(req, 405, "method_not_allowed", "use GET");
		return;
	}
	if (healthy(gw)) {
		vt_fe_reply_json(req, 200, ok, sizeof(ok) - 1);
	} else {
		vt_fe_reply_json(req, 503, degraded, sizeof(degraded) - 1);
	}
}

/* Verify the bearer token; answers 401 and returns -1 without a good one. */
static int authenticate(struct vt_http_gateway *gw, struct evhttp_request *req,
                        struct vt_identity *id)
{
	const char *authz =
	        evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	size_t len = 0;
	const char *token = vt_fe_bearer(authz, &len);
	int rc = vt_fe_authenticate(&gw->cfg, token, len, id);

	if (rc != 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		                  "Bearer");
		vt_fe_reply_vt_error(req, rc);
		return -1;
	}
	return 0;
}

/*
 * Answer 401 and return -1 when a logout revoked the token. The device
 * decides which logouts apply, so this comes after it was picked.
 */
static int refuse_revoked(struct vt_http_gateway *gw, struct evhttp_request *req,
                          const struct vt_identity *id)
{
	int rc = vt_engine_revoked(gw->engine, id);

	if (rc != 0) {
		vt_log(VT_LOG_DEBUG, "http: token revoked req=%llu user=%s device=%s",
		       vt_fe_req_id(), id->user, id->device);
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		                  "Bearer");
		vt_fe_reply_vt_error(req, rc);
	}
	return rc;
}

static void serve_route(struct vt_http_gateway *gw, struct evhttp_request *req,
                        const struct route *r)
{
	struct vt_identity id;

	if (evhttp_request_get_command(req) != r->method) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
		                  r->method == EVHTTP_REQ_GET ? "GET" : "POST");
		vt_fe_reply_error(req, 405, "method_not_allowed", "method not allowed here");
		return;
	}
	if (authenticate(gw, req, &id) != 0 || vt_fe_request_device(req, &id) != 0 ||
	    refuse_revoked(gw, req, &id) != 0) {
		return;
	}
	vt_log(VT_LOG_DEBUG, "http: request req=%llu path=%s user=%s device=%s", vt_fe_req_id(),
	       r->path, id.user, id.device);
	r->fn(gw, req, &id);
}

/*
 * Past --max-connections: say when to come back and hang up, so a
 * reconnecting crowd spreads out instead of holding sockets open.
 */
static void refuse_over_cap(struct evhttp_request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	evhttp_add_header(out, "Retry-After", VT_HTTP_RETRY_BUSY_S);
	evhttp_add_header(out, "Connection", "close");
	vt_fe_reply_error(req, 503, "busy", "too many connections; retry later");
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct vt_http_gateway *gw = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	size_t i;

	vt_fe_req_begin();
	if (vt_http_conns_request_in(gw, req)) {
		refuse_over_cap(req);
		return;
	}
	if (path == NULL) {
		vt_fe_reply_error(req, 400, "bad_request", "malformed request target");
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		serve_health(gw, req);
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		vt_http_serve_metrics(gw->engine, healthy(gw), req);
		return;
	}
	if (strcmp(path, "/v1/ws") == 0 && gw->ws != NULL) {
		vt_ws_gateway_upgrade(gw->ws, req);
		return;
	}
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (route_matches(&routes[i], path)) {
			serve_route(gw, req, &routes[i]);
			return;
		}
	}
	if (vt_http_static_serve(&gw->cfg, req, path)) {
		return;
	}
	vt_fe_reply_error(req, 404, "not_found", "no such endpoint");
}

int vt_http_gateway_create(struct event_base *base, struct vt_engine *engine,
                           const struct vt_fe_config *cfg, struct vt_ws_gateway *ws,
                           struct vt_http_gateway **out)
{
	struct vt_http_gateway *gw = calloc(1, sizeof(*gw));

	if (gw == NULL) {
		return VT_ENOMEM;
	}
	gw->http = evhttp_new(base);
	if (gw->http == NULL) {
		free(gw);
		return VT_ENOMEM;
	}
	gw->base = base;
	gw->engine = engine;
	gw->cfg = *cfg;
	gw->ws = ws;
	LIST_INIT(&gw->pending);
	if (vt_http_conns_init(gw) != 0) {
		evhttp_free(gw->http);
		free(gw);
		return VT_ENOMEM;
	}

	/* Every method reaches the router, so a wrong one gets a JSON 405. */
	evhttp_set_allowed_methods(gw->http, 0x1ff);
	evhttp_set_max_headers_size(gw->http, (ev_ssize_t)cfg->max_headers);
	evhttp_set_max_body_size(gw->http, (ev_ssize_t)cfg->max_message + BODY_SLACK);
	evhttp_set_timeout(gw->http, (int)cfg->http_timeout_s);
	evhttp_set_gencb(gw->http, on_request, gw);
	*out = gw;
	return 0;
}

/* The port a bound socket got (the kernel's choice for port 0). */
static uint16_t bound_port(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		return 0;
	}
	if (ss.ss_family == AF_INET6) {
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void vt_http_gateway_use_tls(struct vt_http_gateway *gw, struct ssl_ctx_st *ctx)
{
	gw->tls = ctx;
}

int vt_http_gateway_listen(struct vt_http_gateway *gw, const char *addr, uint16_t port,
                           uint16_t *bound)
{
	gw->bound = evhttp_bind_socket_with_handle(gw->http, addr, port);
	if (gw->bound == NULL) {
		vt_log(VT_LOG_ERROR, "cannot listen addr=%s port=%u", addr, (unsigned)port);
		return VT_EIO;
	}
	*bound = bound_port(evhttp_bound_socket_get_fd(gw->bound));
	gw->guard = vt_accept_guard_new(gw->base, gw->bound);
	return 0;
}

void vt_http_gateway_stop_accepting(struct vt_http_gateway *gw)
{
	if (gw->bound != NULL) {
		vt_accept_guard_free(gw->guard);
		gw->guard = NULL;
		evhttp_del_accept_socket(gw->http, gw->bound);
		gw->bound = NULL;
	}
}

void vt_http_gateway_destroy(struct vt_http_gateway *gw)
{
	if (gw == NULL) {
		return;
	}
	vt_accept_guard_free(gw->guard);
	evhttp_free(gw->http);

	/* Records left here belonged to requests libevent has just freed. */
	while (!LIST_EMPTY(&gw->pending)) {
		struct vt_http_pending *p = LIST_FIRST(&gw->pending);

		LIST_REMOVE(p, link);
		free(p);
	}
	vt_http_conns_finish(gw);
	free(gw);
}
