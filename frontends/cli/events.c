/*
 * frontends/cli/events.c - one line of output per event from the server.
 *
 * The lines are meant for people and for scripts alike: the event type
 * first, then fixed fields, then free text last, with control characters
 * shown as spaces so that one event is always one line.
 */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

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

/* The text of a body: a string, the "text" of an object, else the JSON as sent. */
static void print_body(const struct vt_json_val *body)
{
	struct vt_json_val text = *body;
	char *buf;

	if (body->type == VT_JSON_OBJECT) {
		member(body, "text", &text);
	}
	if (text.p == NULL || text.type != VT_JSON_STRING) {
		printf("%.*s", (int)body->len, body->p != NULL ? body->p : "");
		return;
	}
	buf = malloc(text.len + 1);
	if (buf != NULL) {
		str_of(&text, buf, text.len + 1);
		print_clean(buf);
		free(buf);
	}
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
		printf("%s%s", n ? "," : "", id);
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
	printf("group %s %s %s by %s: ", e->id, sop, e->to, sby);
	print_clean(sname);
}

static void print_event(const struct vt_cli_event *e, const struct vt_json_val *env,
                        const struct vt_json_val *body)
{
	struct vt_json_val v;
	char ref[65], reason[512];

	member(env, "ref", &v);
	str_of(&v, ref, sizeof(ref));
	if (strcmp(e->type, "message") == 0) {
		printf("message %s %s>%s: ", e->id, e->from, e->to);
		print_body(body);
	} else if (strcmp(e->type, "delivered") == 0) {
		char device[65];

		member(body, "ref", &v);
		str_of(&v, ref, sizeof(ref));
		member(body, "device", &v);
		str_of(&v, device, sizeof(device));
		printf("delivered %s to %s%s%s", ref, e->from, device[0] ? "/" : "", device);
	} else if (strcmp(e->type, "read") == 0) {
		printf("read ");
		print_ids(body);
		printf(" by %s", e->from);
	} else if (strcmp(e->type, "typing") == 0) {
		printf("typing %s>%s", e->from, e->to);
	} else if (strcmp(e->type, "accepted") == 0) {
		printf("accepted %s as %s", ref, e->id);
	} else if (strcmp(e->type, "group") == 0) {
		print_group(e, body);
	} else if (strcmp(e->type, "error") == 0) {
		member(env, "reason", &v);
		str_of(&v, reason, sizeof(reason));
		printf("error %s%s%s: ", e->code, ref[0] ? " ref " : "", ref);
		print_clean(reason);
	} else {
		printf("%s %s", e->type, e->id);
	}
	putchar('\n');
	fflush(stdout);
}

/* Codes the protocol answers with "nothing was taken, send it again later". */
static const char *const retryable_codes[] = {"rate_limited", "storage_error", "busy", "internal",
						 "conflict"};

int vt_cli_event_parse(const char *text, size_t len, struct vt_cli_event *e)
{
	struct vt_json_val env, v;

	memset(e, 0, sizeof(*e));
	if (vt_json_validate(text, len, 64) != 0 || vt_json_parse_value(text, len, &env) != 0 ||
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
	e->owed = e->id[0] != '\0' && e->id[strspn(e->id, "0123456789")] == '\0' &&
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
