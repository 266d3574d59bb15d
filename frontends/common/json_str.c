/*
 * frontends/common/json_str.c - JSON string escaping for replies and hooks.
 */
#include "json_str.h"

#include <event2/buffer.h>

void vt_fe_json_escape(struct evbuffer *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			evbuffer_add_printf(b, "\\%c", c);
		} else if (c < 0x20) {
			evbuffer_add_printf(b, "\\u%04x", c);
		} else {
			evbuffer_add(b, s, 1);
		}
	}
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
