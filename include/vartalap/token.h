/*
 * vartalap/token.h - bearer tokens: JWT compact form, HS256 only.
 *
 * Stable API. A token is header.payload.signature in base64url without
 * padding. The header must be {"alg":"HS256","typ":"JWT"} (typ optional); any
 * other algorithm, "none" included, is refused. The payload must carry "sub"
 * (the user id, see vt_user_id_valid) and "exp" (seconds since the epoch, an
 * integer); "dev" (a device id) and "iat" are optional. Functions here are
 * pure and thread-safe.
 */
#ifndef VARTALAP_TOKEN_H
#define VARTALAP_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include <vartalap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest user or device id, in bytes. */
#define VT_ID_MAX 64

/* Longest token accepted, in bytes. */
#define VT_TOKEN_MAX 4096

/* Who a verified token speaks for. */
struct vt_identity {
	char user[VT_ID_MAX + 1];   /* "sub" */
	char device[VT_ID_MAX + 1]; /* "dev", or "" when absent */
	int64_t exp;                /* expiry, seconds since the epoch */
	/* issue time ("iat"), seconds since the epoch; 0 when absent. A
	 * logout revokes the tokens issued at or before it, and every token
	 * without "iat" (see vt_engine_logout). */
	int64_t iat;
};

/*
 * True when @s (length @len) is a valid user, device or client id: 1 to
 * VT_ID_MAX bytes of [A-Za-z0-9._@-]. Colons are reserved for namespaces
 * (group ids), so a user id never contains one.
 */
VT_EXPORT int vt_user_id_valid(const char *s, size_t len);

/*
 * Sign a token for @user (and @device, which may be NULL or "") that expires
 * at @exp seconds since the epoch, issued at @iat. Writes a NUL-terminated
 * token into @out (size @cap). Returns its length, VT_EINVAL for a bad id or
 * key, or VT_ETOOBIG when @cap is too small.
 */
VT_EXPORT int vt_token_sign(const unsigned char *key, size_t key_len, const char *user,
                            const char *device, int64_t iat, int64_t exp, char *out, size_t cap);

/*
 * Read the claims of @token (length @len) without checking its signature or
 * its expiry, for a client that wants to know whom its token names. Fills
 * @id and returns 0, or VT_EAUTH for a token that is malformed. A server
 * must never act on what this returns: use vt_token_verify().
 */
VT_EXPORT int vt_token_claims(const char *token, size_t len, struct vt_identity *id);

/*
 * Verify @token (length @len, need not be NUL-terminated) against @key at
 * wall time @now (seconds since the epoch). On success fills @id and returns
 * 0. Returns VT_EAUTH for anything malformed, unsigned, wrongly signed or of
 * another algorithm, and VT_EEXPIRED when exp <= now. The signature is
 * compared in constant time.
 */
VT_EXPORT int vt_token_verify(const unsigned char *key, size_t key_len, const char *token,
                              size_t len, int64_t now, struct vt_identity *id);

#ifdef __cplusplus
}
#endif

#endif /* VARTALAP_TOKEN_H */
