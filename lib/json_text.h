/*
 * json_text.h - byte classes and escapes shared by the JSON scanner
 * (json.c) and the readers of validated text (json_read.c).
 *
 * Internal.
 */
#ifndef VARTALAP_JSON_TEXT_H
#define VARTALAP_JSON_TEXT_H

#include <stddef.h>

#include "json.h"

static inline int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Value of a hex digit, or -1. */
static inline int hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Read four hex digits at @s[*i] (bounded by @n) into @out; 0 or -1. */
static inline int read_hex4(const unsigned char *s, size_t n, size_t *i, unsigned *out)
{
	unsigned v = 0;

	if (n - *i < 4) {
		return -1;
	}
	for (size_t k = 0; k < 4; k++) {
		int h = hex_val(s[*i + k]);

		if (h < 0) {
			return -1;
		}
		v = v << 4 | (unsigned)h;
	}
	*i += 4;
	*out = v;
	return 0;
}

/*
 * Read a \u escape whose "\u" is already consumed and combine a surrogate
 * pair into one code point. A lone or reversed surrogate is an error: it
 * has no UTF-8 form, and relaying one would break a browser's socket.
 */
static inline int read_u_escape(const unsigned char *s, size_t n, size_t *i, unsigned *cp)
{
	unsigned hi;
	unsigned lo;

	if (read_hex4(s, n, i, &hi) != 0) {
		return -1;
	}
	if (hi < 0xd800 || hi > 0xdfff) {
		*cp = hi;
		return 0;
	}
	if (hi > 0xdbff) {
		return -1; /* a low surrogate first */
	}

	if (n - *i < 2 || s[*i] != '\\' || s[*i + 1] != 'u') {
		return -1;
	}
	*i += 2;
	if (read_hex4(s, n, i, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
		return -1;
	}
	*cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

/* The type of the value whose first byte is @c, or 0 when none starts so. */
static inline enum vt_json_type type_of(unsigned char c)
{
	switch (c) {
	case '{':
		return VT_JSON_OBJECT;
	case '[':
		return VT_JSON_ARRAY;
	case '"':
		return VT_JSON_STRING;
	case 't':
		return VT_JSON_TRUE;
	case 'f':
		return VT_JSON_FALSE;
	case 'n':
		return VT_JSON_NULL;
	default:
		return c == '-' || is_digit(c) ? VT_JSON_NUMBER : 0;
	}
}

#endif /* VARTALAP_JSON_TEXT_H */
