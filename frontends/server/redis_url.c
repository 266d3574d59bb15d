/*
 * frontends/server/redis_url.c - the redis:// URLs of --redis and --cluster.
 *
 * Only what vartalapd can use is accepted: a host (an IPv6 address in
 * brackets), a port, and a key prefix as the path. A user, password, query,
 * another scheme or a database number is refused with the reason, since
 * each would otherwise be silently ignored or misread.
 */
#include "redis_url.h"

#include <stdio.h>
#include <string.h>

/*
 * The port of a --redis URL, from @p up to @end; 6379 when @p == @end. The
 * caller has seen a ':' before @p.
 */
static int redis_port(const char *url, const char *p, const char *end, int *port)
{
	char buf[8];
	uint64_t v;

	if ((size_t)(end - p) >= sizeof(buf) || p == end) {
		fprintf(stderr, "vartalapd: --redis: '%s': bad port\n", url);
		return -1;
	}
	memcpy(buf, p, (size_t)(end - p));
	buf[end - p] = '\0';
	if (vt_opt_number("redis", buf, 1, 65535, &v) != 0) {
		return -1;
	}
	*port = (int)v;
	return 0;
}

/* HOST[:PORT] or [V6][:PORT], from @p up to @end. */
static int redis_authority(const char *url, const char *p, const char *end,
                           struct vt_redis_url *u)
{
	const char *hend, *colon = NULL;

	if (*p == '[') {
		hend = memchr(p, ']', (size_t)(end - p));
		if (hend == NULL || (hend + 1 != end && hend[1] != ':')) {
			fprintf(stderr, "vartalapd: --redis: '%s': bad [address]\n", url);
			return -1;
		}
		colon = hend + 1 != end ? hend + 1 : NULL;
		p++;
	} else {
		for (const char *q = p; q < end; q++) {
			if (*q == ':' && colon != NULL) {
				fprintf(stderr, "vartalapd: --redis: '%s': an IPv6 address goes "
				                "in brackets\n", url);
				return -1;
			}
			colon = *q == ':' ? q : colon;
		}
		hend = colon != NULL ? colon : end;
	}
	if (hend == p || (size_t)(hend - p) >= sizeof(u->host)) {
		fprintf(stderr, "vartalapd: --redis: '%s': no host, or one too long\n", url);
		return -1;
	}
	memcpy(u->host, p, (size_t)(hend - p));
	u->host[hend - p] = '\0';
	u->port = 6379;
	return colon != NULL ? redis_port(url, colon + 1, end, &u->port) : 0;
}

/* The key prefix after the URL's '/': printable, and no hash tag braces,
 * which would move keys between Redis Cluster slots. */
static int redis_prefix(const char *url, const char *p, struct vt_redis_url *u)
{
	size_t n = strlen(p);

	if (n >= sizeof(u->prefix) || strpbrk(p, "{}") != NULL) {
		fprintf(stderr, "vartalapd: --redis: '%s': the prefix must be at most %zu "
		                "bytes, without '{' or '}'\n", url, sizeof(u->prefix) - 1);
		return -1;
	}
	for (const char *q = p; *q != '\0'; q++) {
		if (*q <= ' ' || *q > '~') {
			fprintf(stderr, "vartalapd: --redis: '%s': the prefix must be "
			                "printable ASCII without spaces\n", url);
			return -1;
		}
	}
	if (n > 0 && strspn(p, "0123456789") == n) {
		fprintf(stderr, "vartalapd: --redis: '%s': the path is a key prefix, not a "
		                "database number; write a prefix such as /vt%s:\n", url, p);
		return -1;
	}
	memcpy(u->prefix, p, n + 1);
	return 0;
}

int vt_redis_url_parse(const char *url, struct vt_redis_url *u)
{
	const char *p = url + 8, *slash;

	if (strncmp(url, "redis://", 8) != 0) {
		fprintf(stderr,
		        "vartalapd: --redis: '%s': expected redis://HOST[:PORT][/PREFIX]%s\n", url,
		        strstr(url, "://") != NULL ? " (no other scheme is supported)" : "");
		return -1;
	}
	slash = strchr(p, '/');
	if (slash == NULL) {
		slash = p + strlen(p);
	}
	if (memchr(p, '@', (size_t)(slash - p)) != NULL || strpbrk(url, "?#") != NULL) {
		fprintf(stderr, "vartalapd: --redis: '%s': a user, password or query is not "
		                "supported\n", url);
		return -1;
	}
	memset(u, 0, sizeof(*u));
	if (redis_authority(url, p, slash, u) != 0) {
		u->host[0] = '\0';
		return -1;
	}
	if (*slash == '/' && redis_prefix(url, slash + 1, u) != 0) {
		u->host[0] = '\0';
		return -1;
	}
	return 0;
}
