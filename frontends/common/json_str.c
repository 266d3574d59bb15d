/*
 * frontends/common/json_str.c - JSON string escaping for replies and hooks.
 */
#include "json_str.h"

#include <string.h>

#include <event2/buffer.h>

void vt_fe_json_escape_n(struct evbuffer *b, const char *s, size_t len)
{
	size_t run = 0; /* bytes before s[i] that go out as they are */

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c != '"' && c != '\\' && c >= 0x20) {
			continue;
		}
		evbuffer_add(b, s + run, i - run);
		if (c == '"' || c == '\\') {
			evbuffer_add_printf(b, "\\%c", c);
		} else {
			evbuffer_add_printf(b, "\\u%04x", c);
		}
		run = i + 1;
	}
	evbuffer_add(b, s + run, len - run);
}

void vt_fe_json_escape(struct evbuffer *b, const char *s)
{
	vt_fe_json_escape_n(b, s, strlen(s));
}

void vt_fe_json_string(struct evbuffer *b, const char *s)
{
	if (s == NULL) {
		evbuffer_add(b, "null", 4);
		return;
	}
	evbuffer_add(b, "\"", 1);
	vt_fe_json_escape(b, s);
	evbuffer_add(b, "\"", 1);
}
