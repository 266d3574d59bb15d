/*
 * frontends/ws/gateway.c - the upgrade request: handshake, token, device.
 *
 * Everything is decided while evhttp still owns the connection, so each
 * refusal is an ordinary HTTP reply with a JSON error envelope.
 */
#include "gateway.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <vartalap/log.h>

#include "../common/auth.h"
#include "../common/device.h"
#include "../common/http_reply.h"
#include "internal.h"

/* Every read lands here first; a frame cut short is all a connection keeps. */
#define SCRATCH_LEN (64 * 1024)

int vt_ws_gateway_create(struct event_base *base, struct vt_engine *engine,
                         const struct vt_fe_config *cfg, struct vt_ws_gateway **out)
{
	struct vt_ws_gateway *gw = calloc(1, sizeof(*gw));

	if (gw == NULL) {
		return VT_ENOMEM;
	}
	gw->base = base;
	gw->engine = engine;
	gw->cfg = *cfg;
	vt_ws_outq_pools_init(&gw->outs);
	vt_slab_init(&gw->conns, vt_ws_conn_size());
	gw->stand_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	gw->scratch_len = SCRATCH_LEN;
	gw->scratch = malloc(gw->scratch_len);
	if (gw->stand_in < 0 || gw->scratch == NULL || vt_ws_keepalive_init(gw) != 0 ||
	    vt_ws_users_init(&gw->users) != 0) {
		vt_ws_keepalive_finish(gw);
		free(gw->scratch);
		if (gw->stand_in >= 0) {
			close(gw->stand_in);
		}
		free(gw);
		return VT_ENOMEM;
	}
	*out = gw;
	return 0;
}

size_t vt_ws_gateway_count(const struct vt_ws_gateway *gw)
{
	return gw->count;
}

void vt_ws_gateway_destroy(struct vt_ws_gateway *gw)
{
	struct vt_ws_conn_q *lists[3];

	if (gw == NULL) {
		return;
	}
	lists[0] = &gw->live;
	lists[1] = &gw->pinged;
	lists[2] = &gw->closing;
	for (size_t i = 0; i < 3; i++) {
		while (!TAILQ_EMPTY(lists[i])) {
			vt_ws_conn_drop(TAILQ_FIRST(lists[i]));
		}
	}
	vt_ws_users_finish(&gw->users);
	vt_ws_keepalive_finish(gw);
	vt_ws_outq_pools_drain(&gw->outs);
	vt_slab_destroy(&gw->conns);
	free(gw->scratch);
	close(gw->stand_in);
	free(gw);
}

/*
 * The token, in order of preference: the Authorization header, the query's
 * "token", a "bearer.<t>" subprotocol (browsers cannot set headers).
 */
static const char *find_token(struct evhttp_request *req, const struct evkeyvalq *query,
                              const struct vt_ws_handshake *hs, size_t *len)
{
	const char *authz =
	        evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	const char *t = vt_fe_bearer(authz, len);

	if (t != NULL) {
		return t;
	}

	t = evhttp_find_header(query, "token");
	if (t != NULL) {
		*len = strlen(t);
		return t;
	}

	*len = hs->token_len;
	return hs->token;
}

/* Refuse a handshake: 426 must name the version this server speaks. */
static void refuse_handshake(struct evhttp_request *req, int status)
{
	if (status == 426) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Sec-WebSocket-Version",
		                  "13");
		vt_fe_reply_error(req, 426, "bad_version", "Sec-WebSocket-Version 13 is required");
		return;
	}
	vt_fe_reply_error(req, 400, "bad_handshake", "not a valid WebSocket upgrade request");
}

/* Answer a refused token with 401 and the challenge RFC 6750 asks for, as REST does. */
static void refuse_token(struct evhttp_request *req, int rc)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
	vt_fe_reply_vt_error(req, rc);
}

/* Authenticate and pick the device; answers @req and returns -1 on refusal. */
static int identify(struct evhttp_request *req, const struct vt_ws_gateway *gw,
                    const struct vt_ws_handshake *hs, struct vt_identity *id)
{
	struct evkeyvalq query;
	const char *token;
	size_t len = 0;
	int rc;

	if (vt_fe_query_parse(req, &query) != 0) {
		evhttp_clear_headers(&query);
		vt_fe_reply_error(req, 400, "bad_request", "malformed query string");
		return -1;
	}

	token = find_token(req, &query, hs, &len);
	rc = vt_fe_authenticate(&gw->cfg, token, len, id);
	if (rc != 0) {
		evhttp_clear_headers(&query);
		refuse_token(req, rc);
		return -1;
	}

	rc = vt_fe_pick_device(id, &query);
	evhttp_clear_headers(&query);
	if (rc != 0) {
		vt_fe_reply_error(req, 400, "bad_request", "invalid device id");
		return -1;
	}
	/* The device decides which logouts apply, so this comes after it. */
	rc = vt_engine_revoked(gw->engine, id);
	if (rc != 0) {
		vt_log(VT_LOG_DEBUG, "ws: token revoked req=%llu user=%s device=%s",
		       vt_fe_req_id(), id->user, id->device);
		refuse_token(req, rc);
		return -1;
	}
	return 0;
}

void vt_ws_gateway_upgrade(struct vt_ws_gateway *gw, struct evhttp_request *req)
{
	struct vt_ws_handshake hs;
	struct vt_identity id;
	int rc;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
		vt_fe_reply_error(req, 405, "method_not_allowed", "use GET to upgrade");
		return;
	}

	rc = vt_ws_handshake_check(evhttp_request_get_input_headers(req), &hs);
	if (rc != 0) {
		refuse_handshake(req, rc);
		return;
	}

	if (identify(req, gw, &hs, &id) != 0) {
		return;
	}

	/* On success the connection logs "ws: open" with its ws=N. */
	rc = vt_ws_conn_start(gw, evhttp_request_get_connection(req), &id, &hs);
	if (rc != 0) {
		vt_fe_reply_vt_error(req, rc);
	}
}
