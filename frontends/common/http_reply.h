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

/*
 * Request ids for the log. Each reply above logs one "http: reply req=N"
 * line: at debug, or at warn for a 5xx. The id is that of the request being
 * handled now; a reply that comes later (from the engine) sets it again.
 */

/* Number a new request and make it the current one; returns its id. */
unsigned long long vt_fe_req_begin(void);

/* The id of the request being handled, or 0 outside one. */
unsigned long long vt_fe_req_id(void);

/* Make @id current again, for a reply given after its request returned. */
void vt_fe_req_resume(unsigned long long id);

/*
 * Copy at most @max characters of @s (NULL logs as "-") into @out for a log
 * line, with anything that is not printable, a space or a quote as '?', so a
 * client cannot forge or split lines. @out holds @max + 1 bytes.
 */
void vt_fe_log_text(char *out, size_t max, const char *s);

#endif /* VARTALAP_FE_HTTP_REPLY_H */
