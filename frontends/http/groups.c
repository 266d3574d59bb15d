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

/*
 * Decode the path segment @seg into @out as an envelope group id, adding
 * "g:" to a bare id. Returns -1 for what cannot name a group: empty, a
 * further '/', an encoded NUL, or too long.
 */
static int group_from_segment(const char *seg, char out[GROUP_ID_MAX + 1])
{
	size_t len = 0;
	char *dec;
	int bare;

	if (*seg == '\0' || strchr(seg, '/') != NULL) {
		return -1;
	}
	dec = evhttp_uridecode(seg, 0, &len);
	if (dec == NULL) {
		return -1;
	}
	bare = strchr(dec, ':') == NULL;
	if (len == 0 || strlen(dec) != len || len + (bare ? 2 : 0) > GROUP_ID_MAX) {
		free(dec);
		return -1;
	}
	strcpy(out, bare ? GROUP_PREFIX : "");
	strcat(out, dec);
	free(dec);
	return 0;
}

void vt_http_route_group(struct vt_http_gateway *gw, struct evhttp_request *req,
                         const struct vt_identity *id)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = evhttp_uri_get_path(uri);
	char group[GROUP_ID_MAX + 1];
	struct vt_http_pending *p;

	/* The router matched the prefix, so the segment follows it. */
	if (group_from_segment(path + strlen(ROUTE_PREFIX), group) != 0) {
		vt_fe_reply_vt_error(req, VT_ENOTFOUND);
		return;
	}
	p = vt_http_pending_new(gw, req);
	if (p == NULL) {
		return;
	}
	vt_engine_group_info(gw->engine, id, group, vt_http_on_reply, p);
}
