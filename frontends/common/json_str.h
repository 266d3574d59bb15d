/*
 * frontends/common/json_str.h - writing JSON strings into an evbuffer.
 */
#ifndef VARTALAP_FE_JSON_STR_H
#define VARTALAP_FE_JSON_STR_H

struct evbuffer;

/*
 * Append @s (NUL-terminated) as the inside of a JSON string: quotes and
 * backslashes escaped, control bytes as \u00XX, everything else as is.
 */
void vt_fe_json_escape(struct evbuffer *b, const char *s);

/* Append @s as a quoted JSON string, or null when @s is NULL. */
void vt_fe_json_string(struct evbuffer *b, const char *s);

#endif /* VARTALAP_FE_JSON_STR_H */
