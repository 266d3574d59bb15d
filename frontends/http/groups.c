/*
 * frontends/http/groups.c - read-only group endpoints.
 *
 * Groups change through envelopes (group_create, group_update); these
 * routes only let a member read the state the engine keeps, for instance
 * after a reinstall.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <vartalap/token.h>

#include "../common/device.h"
#include "../common/http_reply.h"
#include "internal.h"

#define GROUP_PREFIX "g:"
#define ROUTE_PREFIX "/v1/groups/"

/* "g:" and an id of the user id charset; anything longer is no group. */
#define GROUP_ID_MAX (sizeof(GROUP_PREFIX) - 1 + VT_ID_MAX)

void vt_http_route_groups(struct vt_http_gateway *gw, struct evhttp_request *req,
                          const struct vt_identity *id)
{
	struct vt_http_pending *p = vt_http_pending_new(gw, req);

	if (p == NULL) {
		return;
	}
	vt_engine_groups(gw->engine, id, vt_http_on_reply, p);
}

/* What a path segment names, as group_from_segment() sees it. */
enum segment {
	SEG_GROUP,     /* a group id, maybe one that does not exist */
	SEG_NO_GROUP,  /* empty, a further '/', or too long: no group */
	SEG_MALFORMED, /* a '%' without two hex digits, or an encoded NUL */
};

/*
 * Decode the path segment @seg into @out as an envelope group id, adding
 * "g:" to a bare id. A bad escape makes the request itself unusable, which
 * is not the same answer as a group that does not exist.
 */
static enum segment group_from_segment(const char *seg, char out[GROUP_ID_MAX + 1])
{
	size_t len = 0;
	char *dec;
	int bare;

	if (!vt_fe_escapes_valid(seg)) {
		return SEG_MALFORMED;
	}
	if (*seg == '\0' || strchr(seg, '/') != NULL) {
		return SEG_NO_GROUP;
	}
	dec = evhttp_uridecode(seg, 0, &len);
	if (dec == NULL) {
		return SEG_NO_GROUP;
	}
	bare = strchr(dec, ':') == NULL;
	if (len == 0 || strlen(dec) != len || len + (bare ? 2 : 0) > GROUP_ID_MAX) {
		free(dec);
		return SEG_NO_GROUP;
	}
	strcpy(out, bare ? GROUP_PREFIX : "");
	strcat(out, dec);
	free(dec);
	return SEG_GROUP;
}

void vt_http_route_group(struct vt_http_gateway *gw, struct evhttp_request *req,
                         const struct vt_identity *id)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = evhttp_uri_get_path(uri);
	char group[GROUP_ID_MAX + 1];
	struct vt_http_pending *p;

	/* The router matched the prefix, so the segment follows it. */
	switch (group_from_segment(path + strlen(ROUTE_PREFIX), group)) {
	case SEG_MALFORMED:
		vt_fe_reply_error(req, 400, "bad_request", "invalid percent escape in the path");
		return;
	case SEG_NO_GROUP:
		vt_fe_reply_vt_error(req, VT_ENOTFOUND);
		return;
	case SEG_GROUP:
		break;
	}
	p = vt_http_pending_new(gw, req);
	if (p == NULL) {
		return;
	}
	vt_engine_group_info(gw->engine, id, group, vt_http_on_reply, p);
}
