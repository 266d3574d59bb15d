/*
 * envelope.h - the wire envelope: decoding what clients send, encoding what
 * the server sends. See docs/PROTOCOL.md for the format.
 *
 * Internal. Decoding validates the whole input with the strict JSON scanner
 * and keeps the body as a span of the input (no copy).
 */
#ifndef VARTALAP_ENVELOPE_H
#define VARTALAP_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <vartalap/storage.h>
#include <vartalap/token.h>

#include "buf.h"

#define VT_PROTO_VERSION 1

/* Longest "to": a user id, or a namespaced id such as a group's. */
#define VT_TO_MAX (VT_ID_MAX + 8)

/* Most ids one ack may name. */
#define VT_ACK_MAX 256

/* Server ids fit a double exactly, so clients that parse numbers as doubles
 * (JavaScript) can compare them. They travel as decimal strings anyway. */
#define VT_ID_LIMIT ((UINT64_C(1) << 53) - 1)

enum vt_env_type {
	VT_ENV_MESSAGE = 1,   /* client -> server -> client */
	VT_ENV_ACK,           /* client -> server */
	VT_ENV_READ,          /* client -> server -> the sender's devices */
	VT_ENV_TYPING,        /* client -> server -> connected devices only */
	VT_ENV_GROUP_CREATE,  /* client -> server -> members */
	VT_ENV_GROUP_UPDATE,
	VT_ENV_GROUP_LEAVE,
};

/* A decoded client envelope. Strings are copies; @body points into the input. */
struct vt_env {
	enum vt_env_type type;
	char id[VT_ID_MAX + 1];  /* client id of a message; "" if absent */
	char to[VT_TO_MAX + 1];
	const char *body;        /* raw JSON value, validated */
	size_t body_len;
	uint64_t ids[VT_ACK_MAX]; /* ack: server ids */
	uint32_t nids;
};

/*
 * Decode one client envelope. On failure returns a negative vt_error and,
 * when the input got that far, leaves the client id in @out->id so the error
 * can name it, and a short static reason in *@reason ("missing field: to").
 * Checks: strict JSON, an object, "v" == 1 when present, a known "type",
 * and the members that type requires: message: "id" (vt_user_id_valid
 * rules), "to", "body" of any JSON type; ack: a non-empty "ids" array of at
 * most VT_ACK_MAX decimal id strings; read: "id", "to", "ids"; typing: "to"
 * ("id" optional); group_create and group_update: "id", "to", "body" (its
 * meaning is the group module's); group_leave: "id", "to". Unknown
 * members are ignored; a known member given twice is refused (VT_EBADENV,
 * "duplicate key"). A valid "to" is a
 * user id or "<ns>:<id>": a namespace of 1 to VT_TO_MAX - VT_ID_MAX - 1 bytes
 * and a user id, both of the id charset. A server id in "ids" is a string
 * "1".."9007199254740991" (VT_ID_LIMIT) with no sign or leading zero.
 */
int vt_env_decode(const char *data, size_t len, struct vt_env *out, const char **reason);

/*
 * Decode {"ids":["1","2"]} (the REST ack body) into @ids (room for
 * VT_ACK_MAX), with the rules of vt_env_decode(). Returns the count (>= 1)
 * or a negative vt_error.
 */
int vt_env_decode_ids(const char *data, size_t len, uint64_t *ids, const char **reason);

/*
 * A stored record as the client sees it:
 * {"v":1,"type":"message","id":"42","from":"alice","to":"bob","cid":"c-1",
 *  "ts":1700000000000,"body":...}; "delivered" records likewise. "cid" is
 * left out when it is "" (server events such as receipts). The body is
 * copied verbatim ("null" when empty).
 */
void vt_env_encode_record(struct vt_buf *b, const struct vt_record *rec);

/* {"v":1,"type":"accepted","ref":"<cid>","id":"<server id>","ts":...} */
void vt_env_encode_accepted(struct vt_buf *b, const char *cid, uint64_t id, int64_t ts);

/*
 * {"v":1,"type":"error","code":"<vt_error_name>","reason":"...","ref":"<cid>"}
 * with "ref" left out when @ref is NULL or "".
 */
void vt_env_encode_error(struct vt_buf *b, int err, const char *reason, const char *ref);

/* The protocol name of a record kind ("message", "delivered"); "unknown" for
 * any other value, never NULL. */
const char *vt_env_kind_name(uint32_t kind);

#endif /* VARTALAP_ENVELOPE_H */
