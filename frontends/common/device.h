/*
 * frontends/common/device.h - which device of a user a request speaks for.
 *
 * One rule for the WebSocket upgrade and every REST route, so a client that
 * syncs over REST sees the same inbox its socket would: the token's "dev"
 * claim wins, then a ?device= query parameter, else the default device "".
 */
#ifndef VARTALAP_FE_DEVICE_H
#define VARTALAP_FE_DEVICE_H

#include <event2/http.h>
#include <vartalap/token.h>

/*
 * Whether every '%' in @s starts an escape of two hex digits and none of
 * them encodes NUL: 1 if so, 0 otherwise.
 */
int vt_fe_escapes_valid(const char *s);

/*
 * Parse the query string of @req into @query (left empty when there is
 * none). Returns 0, or -1 for a malformed query (vt_fe_escapes_valid()
 * included); either way the caller frees @query with evhttp_clear_headers().
 */
int vt_fe_query_parse(struct evhttp_request *req, struct evkeyvalq *query);

/*
 * Fill @id->device from @query's "device" when the token named none.
 * Returns 0, or -1 when the parameter is not a valid id (vt_user_id_valid);
 * @id is then unchanged.
 */
int vt_fe_pick_device(struct vt_identity *id, const struct evkeyvalq *query);

/*
 * Both steps on @req: answers 400 with a JSON error and returns -1 for a
 * malformed query or an invalid device id; returns 0 otherwise.
 */
int vt_fe_request_device(struct evhttp_request *req, struct vt_identity *id);

#endif /* VARTALAP_FE_DEVICE_H */
