/*
 * envelope.c - decoding client envelopes and encoding server ones.
 *
 * Decoding is strict: the whole text goes through the JSON scanner, which
 * reports the top-level members as it reads them, and the members the
 * protocol knows are picked out once each.
 * A known member given twice is refused, because two parsers reading the
 * same text (a proxy, a logger, this one) could each pick a different copy.
 * The message body is never decoded: it stays a span of the input and is
 * relayed byte for byte.
 */
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/token.h>

#include "envelope.h"
#include "json.h"

/* The top-level members the protocol knows. */
enum env_field {
	F_V,
	F_TYPE,
	F_ID,
	F_TO,
	F_BODY,
	F_IDS,
	F_COUNT,
};

static const char *const field_names[F_COUNT] = {"v", "type", "id", "to", "body", "ids"};
static const size_t field_lens[F_COUNT] = {1, 4, 2, 2, 4, 3};

/* The known members of one envelope, by field. */
struct env_fields {
	struct vt_json_val val[F_COUNT];
	unsigned char seen[F_COUNT];
	unsigned char twice; /* a known member came more than once */
};

/* Longest namespace in a "to" such as "g:team1", colon excluded. */
#define TO_NS_MAX (VT_TO_MAX - VT_ID_MAX - 1)

/* Most digits of a server id: VT_ID_LIMIT has 16. */
#define SERVER_ID_DIGITS 16

static void set_reason(const char **reason, const char *text)
{
	if (reason != NULL) {
		*reason = text;
	}
}

static vt_json_member_fn env_note;

/*
 * Validate @data, and pick out the known members of its top-level object
 * into @f as it is read; unknown members are skipped.
 */
static int env_object(const char *data, size_t len, struct env_fields *f, const char **reason)
{
	struct vt_json_val obj;
	int rc;

	memset(f, 0, sizeof(*f));
	rc = vt_json_validate_members(data, len, VT_JSON_MAX_DEPTH, &obj, env_note, f);

	if (rc == VT_EUTF8) {
		set_reason(reason, "invalid UTF-8");
		return rc;
	}
	if (rc != 0) {
		set_reason(reason, "malformed JSON");
		return VT_EBADJSON;
	}
	if (obj.type != VT_JSON_OBJECT) {
		set_reason(reason, "not an object");
		return VT_EBADENV;
	}
	if (f->twice) {
		set_reason(reason, "duplicate key");
		return VT_EBADENV;
	}
	return 0;
}

/* Which known field @key names, or F_COUNT for none. */
static enum env_field field_of(const struct vt_json_val *key)
{
	/* A key without escapes, nearly every one, is compared as it is. */
	int plain = memchr(key->p, '\\', key->len) == NULL;

	for (int f = 0; f < F_COUNT; f++) {
		size_t n = field_lens[f];

		if (plain ? key->len == n && memcmp(key->p, field_names[f], n) == 0
			  : vt_json_key_is(key, field_names[f])) {
			return (enum env_field)f;
		}
	}
	return F_COUNT;
}

/* Note member @key, @val of an envelope being validated in @arg. */
static void env_note(void *arg, const struct vt_json_val *key, const struct vt_json_val *val)
{
	struct env_fields *f = arg;
	enum env_field which = field_of(key);

	if (which == F_COUNT) {
		return;
	}
	f->twice |= f->seen[which];
	f->seen[which] = 1;
	f->val[which] = *val;
}

/* "v" is optional; when present it must be the integer 1. */
static int env_check_version(const struct env_fields *f, const char **reason)
{
	uint64_t v;

	if (!f->seen[F_V]) {
		return 0;
	}
	if (f->val[F_V].type != VT_JSON_NUMBER) {
		set_reason(reason, "v: invalid");
		return VT_EBADENV;
	}
	if (vt_json_u64(&f->val[F_V], UINT64_MAX, &v) != 0 || v != VT_PROTO_VERSION) {
		set_reason(reason, "v: unsupported");
		return VT_EVERSION;
	}
	return 0;
}

/* Each client event type and the members it requires. */
struct env_kind {
	const char *name;
	enum vt_env_type type;
	unsigned need; /* bits (1 << F_*) */
};

#define NEED(f) (1u << (f))

static const struct env_kind env_kinds[] = {
	{"message", VT_ENV_MESSAGE, NEED(F_ID) | NEED(F_TO) | NEED(F_BODY)},
	{"ack", VT_ENV_ACK, NEED(F_IDS)},
	{"read", VT_ENV_READ, NEED(F_ID) | NEED(F_TO) | NEED(F_IDS)},
	{"typing", VT_ENV_TYPING, NEED(F_TO)},
	{"group_create", VT_ENV_GROUP_CREATE, NEED(F_ID) | NEED(F_TO) | NEED(F_BODY)},
	{"group_update", VT_ENV_GROUP_UPDATE, NEED(F_ID) | NEED(F_TO) | NEED(F_BODY)},
	{"group_leave", VT_ENV_GROUP_LEAVE, NEED(F_ID) | NEED(F_TO)},
};

/* Read "type" into @type, and what it requires into @need. */
static int env_type(const struct env_fields *f, enum vt_env_type *type, unsigned *need,
		    const char **reason)
{
	char name[16];

	if (!f->seen[F_TYPE]) {
		set_reason(reason, "missing field: type");
		return VT_EBADENV;
	}
	if (f->val[F_TYPE].type != VT_JSON_STRING) {
		set_reason(reason, "type: invalid");
		return VT_EBADENV;
	}
	if (vt_json_str_decode(&f->val[F_TYPE], name, sizeof(name)) >= 0) {
		for (size_t i = 0; i < sizeof(env_kinds) / sizeof(env_kinds[0]); i++) {
			if (strcmp(name, env_kinds[i].name) == 0) {
				*type = env_kinds[i].type;
				*need = env_kinds[i].need;
				return 0;
			}
		}
	}
	set_reason(reason, "type: unknown");
	return VT_EBADTYPE;
}

/* Nonzero when @s is a user id or a namespaced id "<ns>:<id>". */
static int to_valid(const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len);
	size_t ns_len;

	if (colon == NULL) {
		return vt_user_id_valid(s, len);
	}
	ns_len = (size_t)(colon - s);
	return ns_len >= 1 && ns_len <= TO_NS_MAX && vt_user_id_valid(s, ns_len) &&
	       vt_user_id_valid(colon + 1, len - ns_len - 1);
}

/*
 * Decode the string member @which into @out (size @cap) and check it with
 * @valid. The reasons name the field: @missing and @invalid.
 */
static int env_string(const struct env_fields *f, enum env_field which, char *out, size_t cap,
                      int (*valid)(const char *, size_t), const char *missing, const char *invalid,
                      const char **reason)
{
	int n;

	if (!f->seen[which]) {
		set_reason(reason, missing);
		return VT_EBADENV;
	}
	n = vt_json_str_decode(&f->val[which], out, cap);
	if (n < 0 || !valid(out, (size_t)n)) {
		out[0] = '\0';
		set_reason(reason, invalid);
		return VT_EBADENV;
	}
	return 0;
}

static int env_ids(const struct env_fields *f, uint64_t *ids, const char **reason);

/*
 * The members @need names, "id" first so later errors can name it. An "id"
 * or "to" that is present but not required is still checked.
 */
static int env_members(const struct env_fields *f, unsigned need, struct vt_env *out,
		       const char **reason)
{
	int rc;

	if ((need & NEED(F_ID)) || f->seen[F_ID]) {
		rc = env_string(f, F_ID, out->id, sizeof(out->id), vt_user_id_valid,
				"missing field: id", "id: invalid", reason);
		if (rc != 0) {
			return rc;
		}
	}
	if (need & NEED(F_TO)) {
		rc = env_string(f, F_TO, out->to, sizeof(out->to), to_valid, "missing field: to",
				"to: invalid", reason);
		if (rc != 0) {
			return rc;
		}
	}
	if (need & NEED(F_BODY)) {
		if (!f->seen[F_BODY]) {
			set_reason(reason, "missing field: body");
			return VT_EBADENV;
		}
		out->body = f->val[F_BODY].p;
		out->body_len = f->val[F_BODY].len;
	}
	if (need & NEED(F_IDS)) {
		rc = env_ids(f, out->ids, reason);
		if (rc < 0) {
			return rc;
		}
		out->nids = (uint32_t)rc;
	}
	return 0;
}

/*
 * A server id as a client writes it: a decimal string from "1" to
 * VT_ID_LIMIT, without sign, leading zeros or any other character.
 */
static int server_id(const struct vt_json_val *v, uint64_t *id)
{
	char digits[SERVER_ID_DIGITS + 1];
	struct vt_json_val num;
	int n;

	if (v->type != VT_JSON_STRING || v->len < 2) {
		return VT_EBADENV;
	}

	/* Without escapes, nearly always, the digits are read where they are. */
	num.type = VT_JSON_NUMBER;
	num.p = v->p + 1;
	num.len = v->len - 2;
	if (memchr(num.p, '\\', num.len) != NULL) {
		n = vt_json_str_decode(v, digits, sizeof(digits));
		num.p = digits;
		num.len = n > 0 ? (size_t)n : 0;
	}
	if (num.len == 0 || num.len > SERVER_ID_DIGITS) {
		return VT_EBADENV;
	}

	/* The digits read as a JSON number: the same strict rules. */
	if (vt_json_u64(&num, VT_ID_LIMIT, id) != 0 || *id == 0) {
		return VT_EBADENV;
	}
	return 0;
}

/* Read the "ids" array into @ids (room for VT_ACK_MAX); the count or an error. */
static int env_ids(const struct env_fields *f, uint64_t *ids, const char **reason)
{
	struct vt_json_val elem;
	size_t pos = 0;
	int n = 0;

	if (!f->seen[F_IDS]) {
		set_reason(reason, "missing field: ids");
		return VT_EBADENV;
	}
	if (f->val[F_IDS].type != VT_JSON_ARRAY) {
		set_reason(reason, "ids: invalid");
		return VT_EBADENV;
	}

	while (vt_json_next_elem(&f->val[F_IDS], &pos, &elem)) {
		if (n == VT_ACK_MAX) {
			set_reason(reason, "ids: too many");
			return VT_EBADENV;
		}
		if (server_id(&elem, &ids[n]) != 0) {
			set_reason(reason, "ids: invalid");
			return VT_EBADENV;
		}
		n++;
	}
	if (n == 0) {
		set_reason(reason, "ids: empty");
		return VT_EBADENV;
	}
	return n;
}

static void env_clear(struct vt_env *out)
{
	out->type = 0;
	out->id[0] = '\0';
	out->to[0] = '\0';
	out->body = NULL;
	out->body_len = 0;
	out->nids = 0;
}

int vt_env_decode(const char *data, size_t len, struct vt_env *out, const char **reason)
{
	struct env_fields f;
	unsigned need = 0;
	int rc;

	env_clear(out);
	set_reason(reason, NULL);

	rc = env_object(data, len, &f, reason);
	if (rc == 0) {
		rc = env_check_version(&f, reason);
	}
	if (rc == 0) {
		rc = env_type(&f, &out->type, &need, reason);
	}
	if (rc != 0) {
		return rc;
	}
	return env_members(&f, need, out, reason);
}

int vt_env_decode_ids(const char *data, size_t len, uint64_t *ids, const char **reason)
{
	struct env_fields f;
	int rc;

	set_reason(reason, NULL);

	rc = env_object(data, len, &f, reason);
	if (rc != 0) {
		return rc;
	}
	return env_ids(&f, ids, reason);
}

const char *vt_env_kind_name(uint32_t kind)
{
	switch (kind) {
	case VT_KIND_MESSAGE:
		return "message";
	case VT_KIND_DELIVERED:
		return "delivered";
	case VT_KIND_READ:
		return "read";
	case VT_KIND_GROUP:
		return "group";
	default:
		return "unknown";
	}
}

/* Append ,"<name>": and a JSON string; NULL counts as "". */
static void put_str_member(struct vt_buf *b, const char *name, const char *value)
{
	const char *v = value != NULL ? value : "";

	vt_buf_puts(b, ",\"");
	vt_buf_puts(b, name);
	vt_buf_puts(b, "\":");
	vt_buf_json_str(b, v, strlen(v));
}

/* Append ,"<name>":"<decimal>": server ids travel as strings. */
static void put_id_member(struct vt_buf *b, const char *name, uint64_t id)
{
	vt_buf_puts(b, ",\"");
	vt_buf_puts(b, name);
	vt_buf_puts(b, "\":\"");
	vt_buf_u64(b, id);
	vt_buf_putc(b, '"');
}

/* The start every server envelope shares: {"v":1,"type":"<type>" */
static void put_head(struct vt_buf *b, const char *type)
{
	vt_buf_puts(b, "{\"v\":");
	vt_buf_u64(b, VT_PROTO_VERSION);
	vt_buf_puts(b, ",\"type\":");
	vt_buf_json_str(b, type, strlen(type));
}

void vt_env_encode_record(struct vt_buf *b, const struct vt_record *rec)
{
	put_head(b, vt_env_kind_name(rec->kind));
	put_id_member(b, "id", rec->id);
	put_str_member(b, "from", rec->from);
	put_str_member(b, "to", rec->to);
	/* Server events (receipts) have no client id: "cid" is left out. */
	if (rec->cid != NULL && rec->cid[0] != '\0') {
		put_str_member(b, "cid", rec->cid);
	}
	vt_buf_puts(b, ",\"ts\":");
	vt_buf_i64(b, rec->ts);

	/* The body was validated on the way in: copy it as it came. */
	vt_buf_puts(b, ",\"body\":");
	if (rec->body != NULL && rec->body_len > 0) {
		vt_buf_append(b, rec->body, rec->body_len);
	} else {
		vt_buf_puts(b, "null");
	}
	vt_buf_putc(b, '}');
}

void vt_env_encode_accepted(struct vt_buf *b, const char *cid, uint64_t id, int64_t ts)
{
	put_head(b, "accepted");
	put_str_member(b, "ref", cid);
	put_id_member(b, "id", id);
	vt_buf_puts(b, ",\"ts\":");
	vt_buf_i64(b, ts);
	vt_buf_putc(b, '}');
}

void vt_env_encode_error(struct vt_buf *b, int err, const char *reason, const char *ref)
{
	put_head(b, "error");
	put_str_member(b, "code", vt_error_name(err));
	put_str_member(b, "reason", reason != NULL ? reason : vt_strerror(err));
	if (ref != NULL && ref[0] != '\0') {
		put_str_member(b, "ref", ref);
	}
	vt_buf_putc(b, '}');
}
