/*
 * frontends/notify/webhook_url.c - checking and splitting the webhook URL.
 *
 * Only plain http is spoken: TLS would bring certificates and their
 * failures into the server for a hook that usually points at a local
 * relay. An https URL is refused by name so the operator knows why.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "webhook.h"

static int split_host(const struct evhttp_uri *u, struct vt_webhook_url *out, const char **why)
{
	const char *host = evhttp_uri_get_host(u);
	size_t len = host != NULL ? strlen(host) : 0;
	int port = evhttp_uri_get_port(u);

	/* libevent keeps the brackets of an IPv6 literal; the resolver does not want them. */
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len == 0) {
		*why = "the URL names no host";
		return -1;
	}
	if (len >= sizeof(out->host)) {
		*why = "the host name is too long";
		return -1;
	}
	memcpy(out->host, host, len);
	out->host[len] = '\0';

	if (port == 0 || port > 65535) {
		*why = "the port must be from 1 to 65535";
		return -1;
	}
	out->port = port < 0 ? 80 : (uint16_t)port;
	return 0;
}

static int split_target(const struct evhttp_uri *u, struct vt_webhook_url *out, const char **why)
{
	const char *path = evhttp_uri_get_path(u);
	const char *query = evhttp_uri_get_query(u);
	int n;

	if (path == NULL || *path == '\0') {
		path = "/";
	}
	n = snprintf(out->target, sizeof(out->target), "%s%s%s", path, query ? "?" : "",
	             query ? query : "");
	if (n < 0 || (size_t)n >= sizeof(out->target)) {
		*why = "the path is too long";
		return -1;
	}
	return 0;
}

int vt_webhook_url_parse(const char *url, struct vt_webhook_url *out, const char **why)
{
	struct evhttp_uri *u;
	const char *scheme;
	int rc = -1;

	if (strncasecmp(url, "https:", 6) == 0) {
		*why = "https is not supported; give an http:// URL (for TLS, point it at a "
		       "local proxy that forwards to the https endpoint)";
		return -1;
	}
	u = evhttp_uri_parse(url);
	if (u == NULL) {
		*why = "not a valid URL; expected http://HOST:PORT/PATH";
		return -1;
	}

	scheme = evhttp_uri_get_scheme(u);
	memset(out, 0, sizeof(*out));
	if (scheme == NULL || strcasecmp(scheme, "http") != 0) {
		*why = "only http:// URLs are supported";
	} else if (evhttp_uri_get_userinfo(u) != NULL) {
		*why = "credentials in the URL are not supported";
	} else if (split_host(u, out, why) == 0 && split_target(u, out, why) == 0) {
		rc = 0;
	}
	evhttp_uri_free(u);
	return rc;
}
