/*
 * json_read.c - reading text the scanner (json.c) has validated: values'
 * spans, an object's members, an array's elements, strings decoded and
 * integers read.
 *
 * These assume validated text but still stay inside the spans they are
 * given, so a caller's mistake yields "not found" rather than a read out
 * of bounds.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <vartalap/error.h>

#include "json.h"
#include "json_text.h"

/* Returned by the span helpers when the text is not what they expect. */
#define JSON_NPOS SIZE_MAX

/* ---- navigation in validated text ----------------------------------- */

static size_t ws_at(const unsigned char *s, size_t n, size_t i)
{
	while (i < n && is_ws(s[i])) {
		i++;
	}
	return i;
}

/* The index just past the string whose quote is at @i, or JSON_NPOS. */
static size_t string_end(const unsigned char *s, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (s[i] == '"') {
			return i + 1;
		}
		if (s[i] == '\\') {
			i++;
		}
	}
	return JSON_NPOS;
}

/* The index just past the container opened at @i, or JSON_NPOS. */
static size_t container_end(const unsigned char *s, size_t n, size_t i)
{
	size_t depth = 0;

	while (i < n) {
		unsigned char c = s[i];

		if (c == '"') {
			i = string_end(s, n, i);
			if (i == JSON_NPOS) {
				return JSON_NPOS;
			}
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if ((c == '}' || c == ']') && --depth == 0) {
			return i + 1;
		}
		i++;
	}
	return JSON_NPOS;
}

/* The index just past a number or literal at @i. */
static size_t atom_end(const unsigned char *s, size_t n, size_t i)
{
	while (i < n && !is_ws(s[i]) && s[i] != ',' && s[i] != ']' && s[i] != '}') {
		i++;
	}
	return i;
}


/* Describe the value starting at @i into @out; returns the index past it. */
static size_t value_at(const unsigned char *s, size_t n, size_t i, struct vt_json_val *out)
{
	enum vt_json_type t;
	size_t end;

	if (i >= n || (t = type_of(s[i])) == 0) {
		return JSON_NPOS;
	}
	if (t == VT_JSON_STRING) {
		end = string_end(s, n, i);
	} else if (t == VT_JSON_OBJECT || t == VT_JSON_ARRAY) {
		end = container_end(s, n, i);
	} else {
		end = atom_end(s, n, i);
	}
	if (end == JSON_NPOS) {
		return JSON_NPOS;
	}

	out->type = t;
	out->p = (const char *)s + i;
	out->len = end - i;
	return end;
}

int vt_json_parse_value(const char *s, size_t len, struct vt_json_val *out)
{
	const unsigned char *u = (const unsigned char *)s;

	if (s == NULL) {
		return VT_EBADJSON;
	}
	return value_at(u, len, ws_at(u, len, 0), out) == JSON_NPOS ? VT_EBADJSON : 0;
}

/*
 * Step to the next item of a container span: past the opening bracket on
 * the first call, past a comma on later ones. Returns the index of the
 * item, or JSON_NPOS at the closing bracket.
 */
static size_t next_item(const unsigned char *s, size_t n, size_t pos)
{
	size_t i = ws_at(s, n, pos == 0 ? 1 : pos);

	if (pos != 0) {
		if (i >= n || s[i] != ',') {
			return JSON_NPOS;
		}
		i = ws_at(s, n, i + 1);
	}
	if (i >= n || s[i] == '}' || s[i] == ']') {
		return JSON_NPOS;
	}
	return i;
}

int vt_json_next_member(const struct vt_json_val *obj, size_t *pos, struct vt_json_val *key,
                        struct vt_json_val *val)
{
	const unsigned char *s = (const unsigned char *)obj->p;
	size_t n = obj->len;
	size_t i;
	size_t end;

	if (obj->type != VT_JSON_OBJECT || n < 2) {
		return 0;
	}
	i = next_item(s, n, *pos);
	if (i == JSON_NPOS || s[i] != '"' || (end = string_end(s, n, i)) == JSON_NPOS) {
		return 0;
	}
	key->type = VT_JSON_STRING;
	key->p = (const char *)s + i + 1;
	key->len = end - i - 2;

	i = ws_at(s, n, end);
	if (i >= n || s[i] != ':') {
		return 0;
	}
	end = value_at(s, n, ws_at(s, n, i + 1), val);
	if (end == JSON_NPOS) {
		return 0;
	}
	*pos = end;
	return 1;
}

int vt_json_next_elem(const struct vt_json_val *arr, size_t *pos, struct vt_json_val *val)
{
	const unsigned char *s = (const unsigned char *)arr->p;
	size_t n = arr->len;
	size_t i;
	size_t end;

	if (arr->type != VT_JSON_ARRAY || n < 2) {
		return 0;
	}
	i = next_item(s, n, *pos);
	if (i == JSON_NPOS || (end = value_at(s, n, i, val)) == JSON_NPOS) {
		return 0;
	}
	*pos = end;
	return 1;
}

/* ---- string decoding ------------------------------------------------- */

/* Write code point @cp as UTF-8 into @out; returns the byte count. */
static size_t utf8_put(unsigned cp, unsigned char out[4])
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The byte a one-letter escape stands for, or -1. */
static int short_unescape(unsigned char c)
{
	switch (c) {
	case '"':
	case '\\':
	case '/':
		return c;
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	default:
		return -1;
	}
}

/*
 * Decode the next character of an escaped string body at @s[*i] into @out.
 * Returns the number of bytes written (1 to 4) and advances *@i, or 0 on a
 * malformed escape.
 */
static size_t unescape_next(const unsigned char *s, size_t n, size_t *i, unsigned char out[4])
{
	unsigned cp;
	int c;

	if (s[*i] != '\\') {
		out[0] = s[(*i)++];
		return 1;
	}
	if (n - *i < 2) {
		return 0;
	}
	c = s[*i + 1];
	*i += 2;
	if (c != 'u') {
		c = short_unescape((unsigned char)c);
		out[0] = (unsigned char)c;
		return c < 0 ? 0 : 1;
	}
	if (read_u_escape(s, n, i, &cp) != 0) {
		return 0;
	}
	return utf8_put(cp, out);
}

int vt_json_key_is(const struct vt_json_val *key, const char *name)
{
	const unsigned char *s = (const unsigned char *)key->p;
	size_t nlen = strlen(name);
	size_t i = 0;
	size_t j = 0;

	/* The common case, a key without escapes, is a plain comparison. */
	if (memchr(s, '\\', key->len) == NULL) {
		return key->len == nlen && memcmp(s, name, nlen) == 0;
	}

	while (i < key->len) {
		unsigned char ch[4];
		size_t k = unescape_next(s, key->len, &i, ch);

		if (k == 0 || nlen - j < k || memcmp(name + j, ch, k) != 0) {
			return 0;
		}
		j += k;
	}
	return j == nlen;
}

int vt_json_str_decode(const struct vt_json_val *v, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)v->p + 1;
	size_t n;
	size_t i = 0;
	size_t j = 0;

	if (v->type != VT_JSON_STRING || v->len < 2) {
		return VT_EBADENV;
	}
	n = v->len - 2;

	while (i < n) {
		unsigned char ch[4];
		size_t k = vt_json_plain_run(s + i, n - i);

		/* A run of bytes that stand for themselves goes in one copy. */
		if (k > 0) {
			if (cap - j <= k || j + k > INT_MAX) {
				return VT_ETOOBIG;
			}
			memcpy(out + j, s + i, k);
			i += k;
			j += k;
			continue;
		}

		k = unescape_next(s, n, &i, ch);

		if (k == 0 || (k == 1 && ch[0] == '\0')) {
			return VT_EBADENV; /* no C string can hold U+0000 */
		}
		if (cap - j <= k || j + k > INT_MAX) {
			return VT_ETOOBIG;
		}
		memcpy(out + j, ch, k);
		j += k;
	}
	if (cap == 0) {
		return VT_ETOOBIG;
	}
	out[j] = '\0';
	return (int)j;
}

int vt_json_u64(const struct vt_json_val *v, uint64_t max, uint64_t *out)
{
	const unsigned char *s = (const unsigned char *)v->p;
	uint64_t acc = 0, top = max / 10, last = max % 10;

	if (v->type != VT_JSON_NUMBER || v->len == 0 || (v->len > 1 && s[0] == '0')) {
		return VT_EBADENV;
	}

	/* acc * 10 + d <= max, checked without overflowing: below top any
	 * digit fits, at top only those up to max's last. */
	for (size_t i = 0; i < v->len; i++) {
		uint64_t d = (uint64_t)(s[i] - '0');

		if (!is_digit(s[i]) || acc > top || (acc == top && d > last)) {
			return VT_EBADENV;
		}
		acc = acc * 10 + d;
	}
	*out = acc;
	return 0;
}
