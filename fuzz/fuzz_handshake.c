/*
 * fuzz/fuzz_handshake.c - the WebSocket opening handshake checks.
 *
 * The input is a header block, one "Name: value" a line (CR before LF is
 * dropped, bytes from a NUL to the end of the line are ignored), added to an
 * evkeyvalq with libevent's public API as evhttp would have parsed it. Lines
 * evhttp would refuse (CR or LF inside, no colon) are skipped. The result of
 * vt_ws_handshake_check() must be 0, 400 or 426, and an accepted request
 * must name what was accepted: the upgrade tokens, one version "13", one
 * well-formed key whose accept value is the RFC 6455 hash, and a bearer
 * token, when found, inside one of the protocol header values.
 */
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "../frontends/ws/handshake.h"

#include "fuzz.h"

/* The example of RFC 6455, section 1.3. */
static void check_known_answer(void)
{
	static int done;
	char out[32];

	if (done) {
		return;
	}
	done = 1;
	FUZZ_CHECK(vt_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out) == 0, "accept key failed");
	FUZZ_CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0, "accept key differs from RFC");
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) {
		(*n)--;
	}
}

/* Add one "Name: value" line to @h; a line evhttp would refuse is skipped. */
static void add_line(struct evkeyvalq *h, const char *line, size_t len)
{
	char name[256];
	char value[4096];
	const char *colon;
	const char *v;
	size_t nlen;
	size_t vlen;

	if (len > 0 && line[len - 1] == '\r') {
		len--;
	}
	colon = memchr(line, ':', len);
	if (colon == NULL) {
		return;
	}
	nlen = (size_t)(colon - line);
	v = colon + 1;
	vlen = len - nlen - 1;
	trim(&v, &vlen);
	if (nlen == 0 || nlen >= sizeof(name) || vlen >= sizeof(value)) {
		return;
	}
	memcpy(name, line, nlen);
	name[nlen] = '\0';
	memcpy(value, v, vlen);
	value[vlen] = '\0';
	evhttp_add_header(h, name, value);
}

/* The value of the one header named @name; NULL when absent or repeated. */
static const char *only(const struct evkeyvalq *h, const char *name)
{
	const struct evkeyval *kv;
	const char *found = NULL;

	TAILQ_FOREACH(kv, h, next) {
		if (strcasecmp(kv->key, name) == 0) {
			if (found != NULL) {
				return NULL;
			}
			found = kv->value;
		}
	}
	return found;
}

/* Do the @len bytes at @p end in a space or a tab? */
static int ends_in_blank(const char *p, size_t len)
{
	return len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t');
}

/* Nonzero when @p lies inside some Sec-WebSocket-Protocol value. */
static int inside_protocol_value(const struct evkeyvalq *h, const char *p, size_t len)
{
	const struct evkeyval *kv;

	TAILQ_FOREACH(kv, h, next) {
		size_t vlen = strlen(kv->value);

		if (strcasecmp(kv->key, "Sec-WebSocket-Protocol") == 0 && p >= kv->value &&
		    p + len <= kv->value + vlen) {
			return 1;
		}
	}
	return 0;
}

static void check_accepted(const struct evkeyvalq *h, const struct vt_ws_handshake *hs)
{
	const char *key = only(h, "Sec-WebSocket-Key");
	const char *version = only(h, "Sec-WebSocket-Version");
	char want[32];

	FUZZ_CHECK(vt_ws_header_has_token(h, "Upgrade", "websocket"), "accepted without Upgrade");
	FUZZ_CHECK(vt_ws_header_has_token(h, "Connection", "upgrade"),
	           "accepted without Connection: upgrade");
	FUZZ_CHECK(version != NULL && strcmp(version, "13") == 0, "accepted another version");
	FUZZ_CHECK(key != NULL && strlen(key) == 24 && strcmp(key + 22, "==") == 0,
	           "accepted a malformed key");
	FUZZ_CHECK(vt_ws_accept_key(key, 24, want) == 0, "accept key failed");
	FUZZ_CHECK(strlen(hs->accept) == 28 && strcmp(hs->accept, want) == 0,
	           "accept value is not the key's");
	FUZZ_CHECK(hs->offers_protocol == 0 || hs->offers_protocol == 1, "bad protocol flag");
	if (hs->token != NULL) {
		FUZZ_CHECK(hs->token_len > 0, "empty bearer token");
		FUZZ_CHECK(inside_protocol_value(h, hs->token, hs->token_len),
		           "bearer token outside the protocol header");
		FUZZ_CHECK(memchr(hs->token, ',', hs->token_len) == NULL,
		           "bearer token holds a comma");
		FUZZ_CHECK(!ends_in_blank(hs->token, hs->token_len),
		           "bearer token ends in white space");
	} else {
		FUZZ_CHECK(hs->token_len == 0, "token length without a token");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct evkeyvalq headers;
	struct vt_ws_handshake hs;
	size_t start = 0;
	int rc;

	check_known_answer();
	TAILQ_INIT(&headers);
	while (start < size) {
		const char *nl = memchr(s + start, '\n', size - start);
		size_t end = nl != NULL ? (size_t)(nl - s) : size;
		const char *nul = memchr(s + start, '\0', end - start);
		size_t stop = nul != NULL ? (size_t)(nul - s) : end;

		add_line(&headers, s + start, stop - start);
		start = end + 1;
	}

	rc = vt_ws_handshake_check(&headers, &hs);
	FUZZ_CHECK(rc == 0 || rc == 400 || rc == 426, "unexpected handshake result");
	if (rc == 0) {
		check_accepted(&headers, &hs);
	}

	evhttp_clear_headers(&headers);
	return 0;
}
