/*
 * frontends/ws/handshake.h - the server side of the RFC 6455 opening handshake.
 *
 * Pure functions over parsed request headers: no I/O, so every variant a
 * client sends can be checked without a socket.
 */
#ifndef VARTALAP_WS_HANDSHAKE_H
#define VARTALAP_WS_HANDSHAKE_H

#include <stddef.h>

struct evkeyvalq;

/* The subprotocol this server speaks. */
#define VT_WS_PROTOCOL "vartalap.v1"

/* Prefix of a subprotocol that carries a bearer token. */
#define VT_WS_BEARER_PREFIX "bearer."

/* What a valid handshake request asked for. */
struct vt_ws_handshake {
	char accept[32];     /* Sec-WebSocket-Accept value, NUL-terminated */
	int offers_protocol; /* VT_WS_PROTOCOL was among the subprotocols */
	const char *token;   /* a "bearer.<t>" subprotocol's <t>, or NULL; */
	size_t token_len;    /* points into the headers, valid as long as they */
};

/*
 * True when some header line named @name (case-insensitive; the header may
 * repeat) holds @token in its comma-separated list, case-insensitively.
 */
int vt_ws_header_has_token(const struct evkeyvalq *headers, const char *name, const char *token);

/*
 * Compute the Sec-WebSocket-Accept value for @key (@len bytes) into @out
 * (at least 29 bytes). Returns 0, or -1 when hashing fails.
 */
int vt_ws_accept_key(const char *key, size_t len, char *out);

/*
 * Check the upgrade headers of a GET request. Returns 0 and fills @hs; 400
 * when it is no WebSocket upgrade or the key is missing or malformed; 426
 * when Sec-WebSocket-Version is not 13 (the reply must then carry
 * "Sec-WebSocket-Version: 13").
 */
int vt_ws_handshake_check(const struct evkeyvalq *headers, struct vt_ws_handshake *hs);

#endif /* VARTALAP_WS_HANDSHAKE_H */
