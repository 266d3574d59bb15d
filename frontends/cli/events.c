/*
 * frontends/cli/events.c - one line of output per event from the server,
 * and per message and device a `delivered` receipt names.
 *
 * The lines are meant for people and for scripts alike: the event type
 * first, then fixed fields, then free text last, with control characters
 * shown as spaces so that one event is always one line (a receipt: one per
 * message and device).
 */
#include "events.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/*
 * The most messages one `delivered` receipt names (docs/PROTOCOL.md). A
 * longer list breaks the protocol: its first refs are shown, and a line
 * says how many were not.
 */
#define DELIVERED_REFS_MAX 64

/*
 * The most lines one receipt is shown as. A group's receipt from vartalapd
 * names fewer than 600 devices (its body stops near 16 KiB).
 */
#define DELIVERED_LINES_MAX 1024

/* Decode a JSON string value into @out, or "" when @v is absent or not a string. */
static void str_of(const struct vt_json_val *v, char *out, size_t cap)
{
	out[0] = '\0';
	if (v->p != NULL && v->type == VT_JSON_STRING && vt_json_str_decode(v, out, cap) < 0) {
		out[0] = '\0';
	}
}

static void member(const struct vt_json_val *obj, const char *name, struct vt_json_val *out)
{
	struct vt_json_val key, val;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	while (obj->type == VT_JSON_OBJECT && vt_json_next_member(obj, &pos, &key, &val)) {
		if (vt_json_key_is(&key, name)) {
			*out = val;
			return;
		}
	}
}

static void print_clean(const char *s)
{
	for (; *s != '\0'; s++) {
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
	}
}

/* printf() with control characters shown as spaces: the fields of a line. */
static void printf_clean(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void printf_clean(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	print_clean(line);
}

/* @v as sent, control characters as spaces (JSON may hold line breaks). */
static void print_raw(const struct vt_json_val *v)
{
	for (size_t i = 0; v->p != NULL && i < v->len; i++) {
		unsigned char ch = (unsigned char)v->p[i];

		putchar(ch < 0x20 || ch == 0x7f ? ' ' : ch);
	}
}

/*
 * The text of a body: a string, the "text" of an object, else the JSON as
 * sent. A text holding U+0000, which no C string can, is shown as sent
 * (\u0000 and all) between its quotes, rather than cut or left out.
 */
static void print_body(const struct vt_json_val *body)
{
	struct vt_json_val text = *body;
	char *buf;

	if (body->type == VT_JSON_OBJECT) {
		member(body, "text", &text);
	}
	if (text.p == NULL || text.type != VT_JSON_STRING) {
		print_raw(body);
		return;
	}
	buf = malloc(text.len + 1);
	if (buf == NULL) {
		return;
	}
	if (vt_json_str_decode(&text, buf, text.len + 1) >= 0) {
		print_clean(buf);
	} else if (text.len >= 2) {
		text.p++;
		text.len -= 2;
		print_raw(&text);
	}
	free(buf);
}

/* "42,43": the ids of a read receipt. */
static void print_ids(const struct vt_json_val *body)
{
	struct vt_json_val ids, v;
	size_t pos = 0;
	char id[32];

	member(body, "ids", &ids);
	for (int n = 0; ids.type == VT_JSON_ARRAY && vt_json_next_elem(&ids, &pos, &v); n++) {
		str_of(&v, id, sizeof(id));
		printf_clean("%s%s", n ? "," : "", id);
	}
}

static void print_group(const struct vt_cli_event *e, const struct vt_json_val *body)
{
	struct vt_json_val op, by, group, name;
	char sop[16], sby[65], sname[256];

	member(body, "op", &op);
	member(body, "by", &by);
	member(body, "group", &group);
	member(&group, "name", &name);
	str_of(&op, sop, sizeof(sop));
	str_of(&by, sby, sizeof(sby));
	str_of(&name, sname, sizeof(sname));
	printf_clean("group %s %s %s by %s: ", e->id, sop, e->to, sby);
	print_clean(sname);
}

/* Server ids are decimal. */
static int is_server_id(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return n > 0 && s[n] == '\0';
}

/*
 * A receipt the client cannot read in full, said on a line of its own in
 * the form of an error line: the refs that could be read are shown anyway.
 */
static void receipt_error(const struct vt_cli_event *e, const char *fmt, ...)
{
	va_list ap;

	printf("error bad_receipt: delivered ");
	print_clean(e->id);
	printf(" from ");
	print_clean(e->from);
	printf(": ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* "delivered 42 to bob/phone"; just "bob" for a user's default device. */
static void print_to(const char *ref, const char *user, const char *device)
{
	printf("delivered %s to ", ref);
	print_clean(user);
	if (device[0] != '\0') {
		putchar('/');
		print_clean(device);
	}
	putchar('\n');
}

/*
 * The id named @name in @obj into @out (room for a user or device id): ""
 * when absent; -1 when present but not a string of at most 64 bytes that
 * holds no NUL, which no id is.
 */
static int id_of(const struct vt_json_val *obj, const char *name, char *out, size_t cap)
{
	struct vt_json_val v;

	out[0] = '\0';
	member(obj, name, &v);
	if (v.p == NULL) {
		return 0;
	}
	if (v.type != VT_JSON_STRING || vt_json_str_decode(&v, out, cap) < 0) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/*
 * The lines of the @nth ref of the list, element @elem: one, to the
 * receipt's user and @device, or one per entry of the ref's "by" list (a
 * group's receipt names the devices), a delivery or, for an entry that
 * names none, an error. Prints @room lines at most and returns how many it
 * had.
 */
static size_t print_ref(const struct vt_cli_event *e, const char *device,
                        const struct vt_json_val *elem, size_t nth, size_t room)
{
	struct vt_json_val v, by, who;
	char ref[32], user[65], dev[65];
	size_t pos = 0, n = 0;

	member(elem, "ref", &v);
	str_of(&v, ref, sizeof(ref));
	if (!is_server_id(ref)) {
		receipt_error(e, "ref %zu names no server id", nth);
		return 0;
	}
	member(elem, "by", &by);
	if (by.p == NULL) {
		if (room > 0 && e->from[0] == '\0') {
			receipt_error(e, "ref %zu names no user", nth);
		} else if (room > 0) {
			print_to(ref, e->from, device);
		}
		return 1;
	}

	while (by.type == VT_JSON_ARRAY && vt_json_next_elem(&by, &pos, &who)) {
		int bad = id_of(&who, "user", user, sizeof(user)) != 0 ||
		          id_of(&who, "device", dev, sizeof(dev)) != 0;

		if (n++ >= room) {
			continue; /* counted, not shown */
		}
		if (bad) {
			receipt_error(e, "ref %zu names a user or device that is not an id", nth);
		} else if (user[0] == '\0') {
			receipt_error(e, "ref %zu names a device without its user", nth);
		} else {
			print_to(ref, user, dev);
		}
	}
	if (n == 0) {
		receipt_error(e, "ref %zu has no list of devices", nth);
	}
	return n;
}

/*
 * A `delivered` receipt names every message one device of the user acked in
 * one go, or, from a group, the devices that acked each: one line per
 * message and device, the same line a receipt for a single message gets, so
 * that a script matching lines needs no change.
 */
static void print_delivered(const struct vt_cli_event *e, const struct vt_json_val *body)
{
	struct vt_json_val refs, elem;
	char device[65];
	size_t pos = 0, n = 0, lines = 0;

	if (id_of(body, "device", device, sizeof(device)) != 0) {
		receipt_error(e, "a device that is not an id");
		return;
	}
	member(body, "refs", &refs);
	if (refs.type != VT_JSON_ARRAY) {
		receipt_error(e, "no list of refs");
		return;
	}
	while (vt_json_next_elem(&refs, &pos, &elem)) {
		if (++n <= DELIVERED_REFS_MAX) {
			size_t room = lines < DELIVERED_LINES_MAX ? DELIVERED_LINES_MAX - lines : 0;

			lines += print_ref(e, device, &elem, n, room);
		}
	}
	if (n == 0) {
		receipt_error(e, "an empty list of refs");
	} else if (n > DELIVERED_REFS_MAX) {
		receipt_error(e, "%zu refs, over the limit of %d: the last %zu are not shown", n,
		              DELIVERED_REFS_MAX, n - DELIVERED_REFS_MAX);
	}
	if (lines > DELIVERED_LINES_MAX) {
		receipt_error(e, "%zu deliveries, over the limit of %d: the last %zu are not shown",
		              lines, DELIVERED_LINES_MAX, lines - DELIVERED_LINES_MAX);
	}
}

/* Every event but `delivered`: one line. */
static void print_line(const struct vt_cli_event *e, const struct vt_json_val *env,
                       const struct vt_json_val *body)
{
	const char *ref = e->ref;
	struct vt_json_val v;
	char reason[512];

	if (strcmp(e->type, "message") == 0) {
		printf_clean("message %s %s>%s: ", e->id, e->from, e->to);
		print_body(body);
	} else if (strcmp(e->type, "read") == 0) {
		printf("read ");
		print_ids(body);
		printf_clean(" by %s", e->from);
	} else if (strcmp(e->type, "typing") == 0) {
		printf_clean("typing %s>%s", e->from, e->to);
	} else if (strcmp(e->type, "accepted") == 0) {
		printf_clean("accepted %s as %s", ref, e->id);
	} else if (strcmp(e->type, "group") == 0) {
		print_group(e, body);
	} else if (strcmp(e->type, "error") == 0) {
		member(env, "reason", &v);
		str_of(&v, reason, sizeof(reason));
		printf_clean("error %s%s%s: ", e->code, ref[0] ? " ref " : "", ref);
		print_clean(reason);
	} else {
		printf_clean("%s %s", e->type, e->id);
	}
	putchar('\n');
}

static void print_event(const struct vt_cli_event *e, const struct vt_json_val *env,
                        const struct vt_json_val *body)
{
	if (strcmp(e->type, "delivered") == 0) {
		print_delivered(e, body);
	} else {
		print_line(e, env, body);
	}
	fflush(stdout);
}

/*
 * Codes the protocol answers with "nothing was taken, send it again later".
 * Not inbox_full: it is about one recipient, and holding every envelope back
 * until that one has room would stop the others.
 */
static const char *const retryable_codes[] = {
	"rate_limited", "storage_error", "storage_full", "busy", "internal", "conflict",
};

int vt_cli_event_parse(const char *text, size_t len, struct vt_cli_event *e)
{
	struct vt_json_val env, v;

	memset(e, 0, sizeof(*e));
	if (vt_json_validate_value(text, len, 64, &env) != 0 ||
	    env.type != VT_JSON_OBJECT) {
		printf("error bad_json: the server sent something that is not a JSON object\n");
		fflush(stdout);
		return -1;
	}
	member(&env, "type", &v);
	str_of(&v, e->type, sizeof(e->type));
	member(&env, "id", &v);
	str_of(&v, e->id, sizeof(e->id));
	member(&env, "from", &v);
	str_of(&v, e->from, sizeof(e->from));
	member(&env, "to", &v);
	str_of(&v, e->to, sizeof(e->to));
	member(&env, "ref", &v);
	str_of(&v, e->ref, sizeof(e->ref));
	member(&env, "code", &v);
	str_of(&v, e->code, sizeof(e->code));

	/*
	 * Events the server keeps owing until they are acked. Their ids go
	 * back into acks and reads as they are, so only a server id (digits)
	 * is taken.
	 */
	e->owed = is_server_id(e->id) &&
	          (strcmp(e->type, "message") == 0 || strcmp(e->type, "delivered") == 0 ||
	           strcmp(e->type, "read") == 0 || strcmp(e->type, "group") == 0);
	return 0;
}

void vt_cli_event_print(const char *text, size_t len, const struct vt_cli_event *e)
{
	struct vt_json_val env, body;

	/* vt_cli_event_parse() has validated @text already. */
	if (vt_json_parse_value(text, len, &env) != 0) {
		return;
	}
	member(&env, "body", &body);
	print_event(e, &env, &body);
}

int vt_cli_event_retryable(const struct vt_cli_event *e)
{
	if (strcmp(e->type, "error") != 0) {
		return 0;
	}
	for (size_t i = 0; i < sizeof(retryable_codes) / sizeof(retryable_codes[0]); i++) {
		if (strcmp(e->code, retryable_codes[i]) == 0) {
			return 1;
		}
	}
	return 0;
}
