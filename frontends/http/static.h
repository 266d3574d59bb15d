/*
 * frontends/http/static.h - the chat page's files, and dev-mode sign-in.
 *
 * Internal to vartalapd. Serves GET and HEAD of the files under a web root
 * (only regular files of known types, no listings, nothing outside the root)
 * and, only when the server runs with --dev, POST /v1/dev/token.
 */
#ifndef VARTALAP_HTTP_STATIC_H
#define VARTALAP_HTTP_STATIC_H

#include "../common/frontend.h"

struct evhttp_request;

/*
 * Answer @req for @path (the raw request path) when it is a page file or
 * the dev token route. Returns 1 when @req was answered, 0 when @path is
 * not handled here (the caller answers 404).
 */
int vt_http_static_serve(const struct vt_fe_config *cfg, struct evhttp_request *req,
                         const char *path);

/*
 * The web directory to serve when none is given: the installed one, else
 * the one in the source tree, whichever holds an index.html. NULL if none.
 */
const char *vt_http_static_default_root(void);

#endif /* VARTALAP_HTTP_STATIC_H */
