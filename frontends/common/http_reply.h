/*
 * frontends/common/http_reply.h - JSON replies on evhttp requests.
 *
 * Every HTTP answer of the gateways is JSON, errors included: an error
 * envelope {"v":1,"type":"error","code":...,"reason":...}.
 */
#ifndef VARTALAP_FE_HTTP_REPLY_H
#define VARTALAP_FE_HTTP_REPLY_H

#include <stddef.h>

struct evhttp_request;

/* Send @status with the JSON body @json (@len bytes) and finish @req. */
void vt_fe_reply_json(struct evhttp_request *req, int status, const char *json, size_t len);

/*
 * Send @status with an error envelope naming @code (a protocol name) and a
 * human @reason (escaped here), and finish @req.
 */
void vt_fe_reply_error(struct evhttp_request *req, int status, const char *code,
                       const char *reason);

/* Answer @req with the error envelope, and the HTTP status, of vt_error @err. */
void vt_fe_reply_vt_error(struct evhttp_request *req, int err);

#endif /* VARTALAP_FE_HTTP_REPLY_H */
