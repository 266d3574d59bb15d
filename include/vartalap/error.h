/*
 * vartalap/error.h - error codes shared by every part of libvartalap.
 *
 * Stable API. Every function that can fail returns 0 on success or one of the
 * negative codes below. Each code also has a short protocol name (the "code"
 * field of an error envelope, see docs/PROTOCOL.md) and a human message.
 */
#ifndef VARTALAP_ERROR_H
#define VARTALAP_ERROR_H

#include <vartalap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * X(symbol, value, protocol name, message, HTTP status). Values are stable and
 * negative. Client-facing codes come first; those named "internal" never reach
 * a client as such.
 */
#define VT_ERRORS(X) \
	X(VT_EBADJSON, -1, "bad_json", "malformed JSON", 400) \
	X(VT_EBADENV, -2, "bad_envelope", "missing or invalid envelope field", 400) \
	X(VT_EBADTYPE, -3, "unknown_type", "unknown event type", 400) \
	X(VT_ETOOBIG, -4, "too_large", "message exceeds the size limit", 413) \
	X(VT_EUTF8, -5, "bad_utf8", "text is not valid UTF-8", 400) \
	X(VT_EAUTH, -6, "unauthorized", "missing or invalid token", 401) \
	X(VT_EEXPIRED, -7, "token_expired", "token has expired", 401) \
	X(VT_EFORBIDDEN, -8, "forbidden", "not allowed for this user", 403) \
	X(VT_EUNKNOWNID, -9, "unknown_id", "no pending message with this id", 404) \
	X(VT_EINBOXFULL, -10, "inbox_full", "recipient's offline inbox is full", 409) \
	X(VT_ESTORAGE, -11, "storage_error", "storage failed; re-send with the same id", 503) \
	X(VT_ERATE, -12, "rate_limited", "too many requests; slow down", 429) \
	X(VT_EBUSY, -13, "busy", "server is overloaded; retry later", 503) \
	X(VT_EVERSION, -14, "bad_version", "unsupported protocol version", 400) \
	X(VT_ENOSPC, -15, "storage_full", "storage is full; nothing accepted", 507) \
	X(VT_ENOTFOUND, -21, "not_found", "no such resource for this user", 404) \
	X(VT_EEXISTS, -22, "group_exists", "another user's group has this id", 409) \
	X(VT_ELIMIT, -23, "limit", "over a configured limit", 400) \
	X(VT_ECONFLICT, -24, "conflict", "the group changed meanwhile; send again", 409) \
	X(VT_EREVOKED, -25, "token_revoked", "token was revoked by a logout", 401) \
	X(VT_ENOMEM, -16, "internal", "out of memory", 500) \
	X(VT_EINVAL, -17, "internal", "invalid argument", 500) \
	X(VT_EAGAIN, -18, "internal", "would block; try again later", 503) \
	X(VT_ECLOSED, -19, "internal", "connection is closed", 500) \
	X(VT_EIO, -20, "internal", "input/output error", 500)

enum vt_error {
	VT_OK = 0,
#define VT__ERR_ENUM(sym, val, name, msg, http) sym = (val),
	VT_ERRORS(VT__ERR_ENUM)
#undef VT__ERR_ENUM
};

/*
 * Human-readable message for an error code; never NULL, also for a code not
 * listed here. The string is static: do not free it. Thread-safe (as are
 * the two functions below).
 */
VT_EXPORT const char *vt_strerror(int err);

/* Protocol name ("bad_json", ...) for an error code; never NULL, static. */
VT_EXPORT const char *vt_error_name(int err);

/* The HTTP status that answers a request failing with @err (200 for 0). */
VT_EXPORT int vt_error_http_status(int err);

#ifdef __cplusplus
}
#endif

#endif /* VARTALAP_ERROR_H */
