/*
 * frontends/common/http_reply.c - JSON replies and error envelopes.
 */
#include "http_reply.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <vartalap/error.h>
#include <vartalap/log.h>

#include "json_str.h"

/* Longest request path a log line shows. */
#define LOG_PATH_MAX 64

static unsigned long long req_serial; /* ids handed out so far */
static unsigned long long req_now;    /* the request being handled */

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

unsigned long long vt_fe_req_begin(void)
{
	req_now = ++req_serial;
	return req_now;
}

unsigned long long vt_fe_req_id(void)
{
	return req_now;
}

void vt_fe_req_resume(unsigned long long id)
{
	req_now = id;
}

void vt_fe_log_text(char *out, size_t max, const char *s)
{
	size_t i = 0;

	if (s == NULL) {
		s = "-";
	}
	for (; i < max && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = c > ' ' && c < 0x7f && c != '"' ? (char)c : '?';
	}
	out[i] = '\0';
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	default:
		return "other";
	}
}

/*
 * One line per reply. A 5xx is the server's failure and goes out at warn,
 * except 503 and 507: load shedding, a degraded store or a full one, each
 * logged where it failed (a full store once a second), and a line per
 * refused request would flood the log just when the server is busiest.
 * The query is never logged: it may hold a token.
 */
static void log_reply(struct evhttp_request *req, int status, const char *code)
{
	enum vt_log_level level = status >= 500 && status != 503 && status != 507 ? VT_LOG_WARN
	                                                                          : VT_LOG_DEBUG;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	char path[LOG_PATH_MAX + 1];

	if (level > vt_log_level()) {
		return;
	}
	vt_fe_log_text(path, LOG_PATH_MAX, uri != NULL ? evhttp_uri_get_path(uri) : NULL);
	vt_log(level, "http: reply req=%llu status=%d method=%s path=%s%s%s", req_now, status,
	       method_name(evhttp_request_get_command(req)), path, code != NULL ? " code=" : "",
	       code != NULL ? code : "");
}

/* @json ends with a newline on the wire, so that a terminal showing it (curl) ends the line. */
static void send_json(struct evhttp_request *req, int status, const char *json, size_t len)
{
	struct evbuffer *body = evbuffer_new();
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	evhttp_add_header(out, "Content-Type", "application/json");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (body != NULL) {
		evbuffer_add(body, json, len);
		evbuffer_add(body, "\n", 1);
	}
	evhttp_send_reply(req, status, status_phrase(status), body);
	if (body != NULL) {
		evbuffer_free(body);
	}
}

void vt_fe_reply_json(struct evhttp_request *req, int status, const char *json, size_t len)
{
	log_reply(req, status, NULL);
	send_json(req, status, json, len);
}

void vt_fe_reply_error(struct evhttp_request *req, int status, const char *code, const char *reason)
{
	struct evbuffer *b = evbuffer_new();

	log_reply(req, status, code);
	if (b == NULL) {
		evhttp_send_error(req, status, NULL);
		return;
	}

	evbuffer_add_printf(b, "{\"v\":1,\"type\":\"error\",\"code\":\"");
	vt_fe_json_escape(b, code);
	evbuffer_add_printf(b, "\",\"reason\":\"");
	vt_fe_json_escape(b, reason);
	evbuffer_add_printf(b, "\"}");

	send_json(req, status, (const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
}

void vt_fe_reply_vt_error(struct evhttp_request *req, int err)
{
	vt_fe_reply_error(req, vt_error_http_status(err), vt_error_name(err), vt_strerror(err));
}
