/*
 * frontends/common/json_str.h - writing JSON strings into an evbuffer.
 */
#ifndef VARTALAP_FE_JSON_STR_H
#define VARTALAP_FE_JSON_STR_H

#include <stddef.h>

struct evbuffer;

/*
 * Append @s (NUL-terminated) as the inside of a JSON string: quotes and
 * backslashes escaped, control bytes as \u00XX, everything else as is.
 */
void vt_fe_json_escape(struct evbuffer *b, const char *s);

/* The same for the @len bytes at @s, NUL bytes included (as \u0000). */
void vt_fe_json_escape_n(struct evbuffer *b, const char *s, size_t len);

/* Append @s as a quoted JSON string, or null when @s is NULL. */
void vt_fe_json_string(struct evbuffer *b, const char *s);

#endif /* VARTALAP_FE_JSON_STR_H */
