/*
 * frontends/server/redis_url.h - the redis:// URLs of --redis and --cluster.
 */
#ifndef VARTALAP_SERVER_REDIS_URL_H
#define VARTALAP_SERVER_REDIS_URL_H

#include "options.h"

/*
 * Parse @url, redis://HOST[:PORT][/PREFIX], into @u: 0, or -1 with the
 * reason on stderr (the option is named --redis) and u->host empty.
 */
int vt_redis_url_parse(const char *url, struct vt_redis_url *u);

#endif /* VARTALAP_SERVER_REDIS_URL_H */
