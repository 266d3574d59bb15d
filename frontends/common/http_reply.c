/*
 * frontends/common/http_reply.c - JSON replies and error envelopes.
 */
#include "http_reply.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <vartalap/error.h>

#include "json_str.h"

static const char *status_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 507:
		return "Insufficient Storage";
	default:
		return "Unknown";
	}
}

void vt_fe_reply_json(struct evhttp_request *req, int status, const char *json, size_t len)
{
	struct evbuffer *body = evbuffer_new();
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	evhttp_add_header(out, "Content-Type", "application/json");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (body != NULL) {
		evbuffer_add(body, json, len);
	}
	evhttp_send_reply(req, status, status_phrase(status), body);
	if (body != NULL) {
		evbuffer_free(body);
	}
}

void vt_fe_reply_error(struct evhttp_request *req, int status, const char *code, const char *reason)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, status, NULL);
		return;
	}

	evbuffer_add_printf(b, "{\"v\":1,\"type\":\"error\",\"code\":\"");
	vt_fe_json_escape(b, code);
	evbuffer_add_printf(b, "\",\"reason\":\"");
	vt_fe_json_escape(b, reason);
	evbuffer_add_printf(b, "\"}");

	vt_fe_reply_json(req, status, (const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
}

void vt_fe_reply_vt_error(struct evhttp_request *req, int err)
{
	vt_fe_reply_error(req, vt_error_http_status(err), vt_error_name(err), vt_strerror(err));
}
