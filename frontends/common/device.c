/*
 * frontends/common/device.c - the device rule shared by both gateways.
 */
#include "device.h"

#include <string.h>
#include <sys/queue.h>

#include <event2/keyvalq_struct.h>

#include "http_reply.h"

static int hex_digit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int vt_fe_escapes_valid(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s != '%') {
			continue;
		}
		if (!hex_digit(s[1]) || !hex_digit(s[2]) || (s[1] == '0' && s[2] == '0')) {
			return 0;
		}
		s += 2;
	}
	return 1;
}

int vt_fe_query_parse(struct evhttp_request *req, struct evkeyvalq *query)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri != NULL ? evhttp_uri_get_query(uri) : NULL;

	TAILQ_INIT(query);
	if (q == NULL) {
		return 0;
	}
	/*
	 * evhttp keeps a bad escape as it is and decodes %00 into a C string,
	 * which would cut "a%00b" to "a" unseen: refuse both before decoding.
	 */
	if (!vt_fe_escapes_valid(q) || evhttp_parse_query_str(q, query) != 0) {
		return -1;
	}
	return 0;
}

int vt_fe_pick_device(struct vt_identity *id, const struct evkeyvalq *query)
{
	const char *dev;
	size_t len;

	/* A device bound into the signed token cannot be overridden. */
	if (id->device[0] != '\0') {
		return 0;
	}

	dev = evhttp_find_header(query, "device");
	if (dev == NULL) {
		return 0;
	}
	len = strlen(dev);
	if (!vt_user_id_valid(dev, len)) {
		return -1;
	}
	memcpy(id->device, dev, len + 1);
	return 0;
}

int vt_fe_request_device(struct evhttp_request *req, struct vt_identity *id)
{
	struct evkeyvalq query;
	int rc = vt_fe_query_parse(req, &query);

	if (rc != 0) {
		evhttp_clear_headers(&query);
		vt_fe_reply_error(req, 400, "bad_request", "malformed query string");
		return -1;
	}
	rc = vt_fe_pick_device(id, &query);
	evhttp_clear_headers(&query);
	if (rc != 0) {
		vt_fe_reply_error(req, 400, "bad_request", "invalid device id");
		return -1;
	}
	return 0;
}
