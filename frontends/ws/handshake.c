/*
 * frontends/ws/handshake.c - RFC 6455 opening handshake checks.
 *
 * Header names, the "websocket" and "upgrade" tokens are case-insensitive,
 * and Connection is a list that may span several header lines: browsers send
 * "keep-alive, Upgrade", and exact string matching refuses them.
 */
#include "handshake.h"

#include <string.h>
#include <strings.h>

#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

/* The fixed GUID of RFC 6455, section 1.3. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Find the next list element of @s at or after *@pos; returns its length. */
static size_t next_element(const char *s, size_t *pos, const char **start)
{
	size_t i = *pos;
	size_t end;

	while (s[i] != '\0' && (is_ows(s[i]) || s[i] == ',')) {
		i++;
	}
	*start = s + i;
	end = i;
	while (s[end] != '\0' && s[end] != ',') {
		end++;
	}
	*pos = end;
	while (end > i && is_ows(s[end - 1])) {
		end--;
	}
	return end - i;
}

static int list_has_token(const char *list, const char *token)
{
	size_t tlen = strlen(token);
	size_t pos = 0;
	const char *el;
	size_t n;

	while ((n = next_element(list, &pos, &el)) > 0) {
		if (n == tlen && strncasecmp(el, token, tlen) == 0) {
			return 1;
		}
	}
	return 0;
}

int vt_ws_header_has_token(const struct evkeyvalq *headers, const char *name, const char *token)
{
	const struct evkeyval *kv;

	for (kv = headers->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, name) == 0 && list_has_token(kv->value, token)) {
			return 1;
		}
	}
	return 0;
}

/* The value of the only header line named @name; NULL if absent or repeated. */
static const char *single_header(const struct evkeyvalq *headers, const char *name)
{
	const struct evkeyval *kv;
	const char *found = NULL;

	for (kv = headers->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, name) != 0) {
			continue;
		}
		if (found != NULL) {
			return NULL;
		}
		found = kv->value;
	}
	return found;
}

static int is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* A valid key is the base64 form of 16 bytes: 22 symbols and "==". */
static int key_valid(const char *key, size_t len)
{
	size_t i;

	if (len != 24 || key[22] != '=' || key[23] != '=') {
		return 0;
	}
	for (i = 0; i < 22; i++) {
		if (!is_b64(key[i])) {
			return 0;
		}
	}
	return 1;
}

int vt_ws_accept_key(const char *key, size_t len, char *out)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	if (md == NULL) {
		return -1;
	}
	ok = EVP_DigestInit_ex(md, EVP_sha1(), NULL) && EVP_DigestUpdate(md, key, len) &&
	     EVP_DigestUpdate(md, ws_guid, sizeof(ws_guid) - 1) &&
	     EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	if (!ok || dlen != 20) {
		return -1;
	}

	EVP_EncodeBlock((unsigned char *)out, digest, 20);
	return 0;
}

/* Walk every Sec-WebSocket-Protocol line for our protocol and a bearer token. */
static void scan_protocols(const struct evkeyvalq *headers, struct vt_ws_handshake *hs)
{
	const size_t plen = strlen(VT_WS_BEARER_PREFIX);
	const struct evkeyval *kv;

	for (kv = headers->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		size_t pos = 0;
		const char *el;
		size_t n;

		if (strcasecmp(kv->key, "Sec-WebSocket-Protocol") != 0) {
			continue;
		}
		while ((n = next_element(kv->value, &pos, &el)) > 0) {
			if (n == strlen(VT_WS_PROTOCOL) && strncmp(el, VT_WS_PROTOCOL, n) == 0) {
				hs->offers_protocol = 1;
			} else if (n > plen && strncmp(el, VT_WS_BEARER_PREFIX, plen) == 0) {
				hs->token = el + plen;
				hs->token_len = n - plen;
			}
		}
	}
}

int vt_ws_handshake_check(const struct evkeyvalq *headers, struct vt_ws_handshake *hs)
{
	const char *version;
	const char *key;
	size_t klen;

	memset(hs, 0, sizeof(*hs));
	if (!vt_ws_header_has_token(headers, "Upgrade", "websocket") ||
	    !vt_ws_header_has_token(headers, "Connection", "upgrade")) {
		return 400;
	}

	version = single_header(headers, "Sec-WebSocket-Version");
	if (version == NULL || strcmp(version, "13") != 0) {
		return 426;
	}

	key = single_header(headers, "Sec-WebSocket-Key");
	if (key == NULL) {
		return 400;
	}
	klen = strlen(key);
	if (!key_valid(key, klen) || vt_ws_accept_key(key, klen, hs->accept) != 0) {
		return 400;
	}

	scan_protocols(headers, hs);
	return 0;
}
