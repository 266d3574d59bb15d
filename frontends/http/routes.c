/*
 * frontends/http/routes.c - the authenticated REST endpoints.
 *
 * Each one hands the request to the engine and answers with the JSON the
 * engine gives back; only malformed query strings are refused here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "../common/device.h"
#include "../common/http_reply.h"
#include "internal.h"

/*
 * The body as one contiguous block ("" when empty), or NULL after answering
 * 413 when it is over the message limit.
 */
static const char *request_body(struct vt_http_gateway *gw, struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *data;

	*len = evbuffer_get_length(in);
	if (*len > gw->cfg.max_message) {
		vt_fe_reply_vt_error(req, VT_ETOOBIG);
		return NULL;
	}
	if (*len == 0) {
		return "";
	}
	data = (const char *)evbuffer_pullup(in, -1);
	return data != NULL ? data : "";
}

/* vt_engine_submit, vt_engine_ack, vt_engine_logout: a JSON body in, one reply out. */
typedef void (*body_fn)(struct vt_engine *e, const struct vt_identity *id, const char *json,
                        size_t len, vt_reply_fn reply, void *arg);

/* Hand the request's body to @fn; the reply goes out when the engine gives it. */
static void route_body(struct vt_http_gateway *gw, struct evhttp_request *req,
                       const struct vt_identity *id, body_fn fn)
{
	size_t len;
	const char *body = request_body(gw, req, &len);
	struct vt_http_pending *p;

	if (body == NULL) {
		return;
	}
	p = vt_http_pending_new(gw, req);
	if (p == NULL) {
		return;
	}
	fn(gw->engine, id, body, len, vt_http_on_reply, p);
}

void vt_http_route_send(struct vt_http_gateway *gw, struct evhttp_request *req,
                        const struct vt_identity *id)
{
	route_body(gw, req, id, vt_engine_submit);
}

void vt_http_route_ack(struct vt_http_gateway *gw, struct evhttp_request *req,
                       const struct vt_identity *id)
{
	route_body(gw, req, id, vt_engine_ack);
}

void vt_http_route_logout(struct vt_http_gateway *gw, struct evhttp_request *req,
                          const struct vt_identity *id)
{
	route_body(gw, req, id, vt_engine_logout);
}

/*
 * Parse a plain decimal (no sign, no spaces, no exponent) into @out, at most
 * @max. Returns 0, or -1 for anything else, overflow included.
 */
static int parse_decimal(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0' || strlen(s) > 20) {
		return -1;
	}
	for (; *s != '\0'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10) {
			return -1;
		}
		v = v * 10 + d;
	}
	if (v > max) {
		return -1;
	}
	*out = v;
	return 0;
}

/* Read "after" and "limit" from the query; answers @req and returns -1 on garbage. */
static int fetch_args(struct vt_http_gateway *gw, struct evhttp_request *req, uint64_t *after,
                      uint32_t *limit)
{
	struct evkeyvalq query;
	const char *a;
	const char *l;
	uint64_t lim = 100;
	int bad = vt_fe_query_parse(req, &query) != 0;

	*after = 0;

	a = evhttp_find_header(&query, "after");
	l = evhttp_find_header(&query, "limit");
	if (!bad && a != NULL && parse_decimal(a, UINT64_MAX, after) != 0) {
		bad = 1;
	}
	if (!bad && l != NULL &&
	    (parse_decimal(l, gw->cfg.fetch_limit_max, &lim) != 0 || lim == 0)) {
		bad = 1;
	}
	evhttp_clear_headers(&query);

	if (bad) {
		char reason[128];

		snprintf(reason, sizeof(reason),
		         "after must be a decimal id; limit a number from 1 to %u",
		         (unsigned)gw->cfg.fetch_limit_max);
		vt_fe_reply_error(req, 400, "bad_request", reason);
		return -1;
	}
	*limit = (uint32_t)lim;
	return 0;
}

void vt_http_route_messages(struct vt_http_gateway *gw, struct evhttp_request *req,
                            const struct vt_identity *id)
{
	struct vt_http_pending *p;
	uint64_t after;
	uint32_t limit;

	if (fetch_args(gw, req, &after, &limit) != 0) {
		return;
	}
	p = vt_http_pending_new(gw, req);
	if (p == NULL) {
		return;
	}
	vt_engine_fetch(gw->engine, id, after, limit, vt_http_on_reply, p);
}
