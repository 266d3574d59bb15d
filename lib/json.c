/*
 * json.c - the strict JSON scanner (RFC 8259) used on everything a client
 * sends.
 *
 * Validation runs in two passes. The first checks that the whole input is
 * UTF-8, so a bad byte is reported as VT_EUTF8 wherever it sits. The second
 * is a loop over a small state (position, depth and one bit per open
 * container saying object or array): it never recurses, so nesting cannot
 * exhaust the stack, and it stops at the first byte past the depth limit.
 *
 * The navigation functions (members, elements, decoding) assume validated
 * text but still stay inside the spans they are given, so a caller's mistake
 * yields "not found" rather than a read out of bounds.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <vartalap/error.h>

#include "json.h"

/* Deepest nesting the scanner can track, whatever the caller asks for. */
#define JSON_DEPTH_CAP 1024

/* Returned by the span helpers when the text is not what they expect. */
#define JSON_NPOS SIZE_MAX

/* ---- UTF-8 ---------------------------------------------------------- */

/*
 * Length of the UTF-8 sequence at @s (@n bytes left), or 0 when it is not
 * one: a stray continuation byte, an overlong form, an encoded surrogate
 * (ED A0..BF), a code point above U+10FFFF, or a truncated sequence. The
 * second byte's range depends on the lead byte (Unicode table 3-7).
 */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80;
	unsigned char hi = 0xbf;
	size_t need;

	if (c < 0x80) {
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		lo = c == 0xe0 ? 0xa0 : 0x80;
		hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		lo = c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}

	if (n < need || s[1] < lo || s[1] > hi) {
		return 0;
	}
	for (size_t i = 2; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
	}
	return need;
}

/* ASCII runs are skipped by words. */
int vt_utf8_valid(const void *text, size_t n)
{
	const unsigned char *s = text;
	size_t i = 0;

	while (i < n) {
		uint64_t w;
		size_t k;

		if (n - i >= sizeof(w)) {
			memcpy(&w, s + i, sizeof(w));
			if ((w & UINT64_C(0x8080808080808080)) == 0) {
				i += sizeof(w);
				continue;
			}
		}
		k = utf8_seq_len(s + i, n - i);
		if (k == 0) {
			return 0;
		}
		i += k;
	}
	return 1;
}

/* ---- the validating scanner ------------------------------------------ */

struct scan {
	const unsigned char *s;
	size_t len;
	size_t pos;
	unsigned depth;
	unsigned max;
	unsigned char is_obj[JSON_DEPTH_CAP / 8]; /* one bit per open level */

	/* With a member callback: where the top-level member being read
	 * has its key (without quotes) and its value. */
	vt_json_member_fn *fn;
	void *arg;
	size_t key_at, key_len, val_at;
};

static enum vt_json_type type_of(unsigned char c);

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Value of a hex digit, or -1. */
static int hex_val(unsigned char c)
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
static int read_hex4(const unsigned char *s, size_t n, size_t *i, unsigned *out)
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
static int read_u_escape(const unsigned char *s, size_t n, size_t *i, unsigned *cp)
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

static void skip_ws(struct scan *sc)
{
	while (sc->pos < sc->len && is_ws(sc->s[sc->pos])) {
		sc->pos++;
	}
}

/* One escape after its backslash. */
static int scan_escape(struct scan *sc)
{
	unsigned cp;

	if (sc->pos >= sc->len) {
		return VT_EBADJSON;
	}
	switch (sc->s[sc->pos++]) {
	case '"':
	case '\\':
	case '/':
	case 'b':
	case 'f':
	case 'n':
	case 'r':
	case 't':
		return 0;
	case 'u':
		return read_u_escape(sc->s, sc->len, &sc->pos, &cp) == 0 ? 0 : VT_EBADJSON;
	default:
		return VT_EBADJSON;
	}
}

/* Eight bytes with @c in each. */
#define BYTES(c) (UINT64_C(0x0101010101010101) * (c))

/* The top bit set in the first byte of @w below @n (at most 0x80); later ones are unsure. */
static uint64_t word_below(uint64_t w, unsigned char n)
{
	return (w - BYTES(n)) & ~w & BYTES(0x80);
}

/*
 * Flags for the bytes of @w a string scan must stop at: quotes, backslashes
 * and control characters. The flag of the first such byte is exact; a later
 * one may be missed or set wrongly, so only the first is used.
 */
static uint64_t word_stops(uint64_t w)
{
	return word_below(w ^ BYTES('"'), 1) | word_below(w ^ BYTES('\\'), 1) |
	       word_below(w, 0x20);
}

/* Whether byte @c stops a string scan. */
static int is_stop(unsigned char c)
{
	return c == '"' || c == '\\' || c < 0x20;
}

size_t vt_json_plain_run(const void *text, size_t n)
{
	const unsigned char *p = text;
	size_t i = 0;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* Eight bytes at a time: the first byte in memory is the word's lowest. */
	while (n - i >= sizeof(uint64_t)) {
		uint64_t w, stops;

		memcpy(&w, p + i, sizeof(w));
		stops = word_stops(w);
		if (stops != 0) {
			return i + (size_t)__builtin_ctzll(stops) / 8;
		}
		i += sizeof(w);
	}
#endif
	while (i < n && !is_stop(p[i])) {
		i++;
	}
	return i;
}

/*
 * A string, from its opening quote. Bytes >= 0x80 pass: the UTF-8 pass has
 * checked them. Raw control characters, NUL included, are refused. The
 * plain runs between stops, most of a message body, are passed in words.
 */
static int scan_string(struct scan *sc)
{
	sc->pos++;
	while (sc->pos < sc->len) {
		unsigned char c;

		sc->pos += vt_json_plain_run(sc->s + sc->pos, sc->len - sc->pos);
		if (sc->pos >= sc->len) {
			break;
		}
		c = sc->s[sc->pos++];
		if (c == '"') {
			return 0;
		}
		if (c < 0x20) {
			return VT_EBADJSON;
		}
		if (c == '\\' && scan_escape(sc) != 0) {
			return VT_EBADJSON;
		}
	}
	return VT_EBADJSON;
}

/* One or more digits; 0 or VT_EBADJSON. */
static int scan_digits(struct scan *sc)
{
	size_t start = sc->pos;

	while (sc->pos < sc->len && is_digit(sc->s[sc->pos])) {
		sc->pos++;
	}
	return sc->pos > start ? 0 : VT_EBADJSON;
}

/* Nonzero when the next byte is @c; it is then consumed. */
static int eat(struct scan *sc, unsigned char c)
{
	if (sc->pos < sc->len && sc->s[sc->pos] == c) {
		sc->pos++;
		return 1;
	}
	return 0;
}

/* A number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int scan_number(struct scan *sc)
{
	eat(sc, '-');
	if (eat(sc, '0')) {
		/* A leading zero stands alone: "01" is not a number. */
		if (sc->pos < sc->len && is_digit(sc->s[sc->pos])) {
			return VT_EBADJSON;
		}
	} else if (scan_digits(sc) != 0) {
		return VT_EBADJSON;
	}

	if (eat(sc, '.') && scan_digits(sc) != 0) {
		return VT_EBADJSON;
	}
	if (eat(sc, 'e') || eat(sc, 'E')) {
		if (!eat(sc, '+')) {
			eat(sc, '-');
		}
		return scan_digits(sc);
	}
	return 0;
}

static int scan_literal(struct scan *sc, const char *word)
{
	size_t n = strlen(word);

	if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n) != 0) {
		return VT_EBADJSON;
	}
	sc->pos += n;
	return 0;
}

/* Open a container one level deeper, unless that passes the limit. */
static int scan_push(struct scan *sc, int is_obj)
{
	unsigned d = sc->depth;
	unsigned char bit = (unsigned char)(1u << (d % 8));

	if (d >= sc->max) {
		return VT_EBADJSON;
	}
	if (is_obj) {
		sc->is_obj[d / 8] |= bit;
	} else {
		sc->is_obj[d / 8] &= (unsigned char)~bit;
	}
	sc->depth = d + 1;
	sc->pos++;
	return 0;
}

/* Nonzero when the innermost open container is an object. */
static int scan_in_obj(const struct scan *sc)
{
	unsigned d = sc->depth - 1;

	return (sc->is_obj[d / 8] >> (d % 8)) & 1;
}

/* A value has just ended: when it was a top-level member, report it. */
static void scan_member_done(const struct scan *sc)
{
	struct vt_json_val key, val;

	if (sc->fn == NULL || sc->depth != 1 || !scan_in_obj(sc)) {
		return;
	}
	key.type = VT_JSON_STRING;
	key.p = (const char *)sc->s + sc->key_at;
	key.len = sc->key_len;
	val.type = type_of(sc->s[sc->val_at]);
	val.p = (const char *)sc->s + sc->val_at;
	val.len = sc->pos - sc->val_at;
	sc->fn(sc->arg, &key, &val);
}

/*
 * The start of a value: a scalar is consumed whole (returns 0), a container
 * is opened (returns 1).
 */
static int scan_value(struct scan *sc)
{
	int rc;

	skip_ws(sc);
	if (sc->pos >= sc->len) {
		return VT_EBADJSON;
	}
	sc->val_at = sc->depth == 1 ? sc->pos : sc->val_at;
	switch (sc->s[sc->pos]) {
	case '{':
		rc = scan_push(sc, 1);
		return rc < 0 ? rc : 1;
	case '[':
		rc = scan_push(sc, 0);
		return rc < 0 ? rc : 1;
	case '"':
		return scan_string(sc);
	case 't':
		return scan_literal(sc, "true");
	case 'f':
		return scan_literal(sc, "false");
	case 'n':
		return scan_literal(sc, "null");
	default:
		return scan_number(sc);
	}
}

/* A member's key and its colon, so that a value comes next. */
static int scan_key(struct scan *sc)
{
	size_t at;

	skip_ws(sc);
	at = sc->pos + 1;
	if (sc->pos >= sc->len || sc->s[sc->pos] != '"' || scan_string(sc) != 0) {
		return VT_EBADJSON;
	}
	if (sc->depth == 1) {
		sc->key_at = at;
		sc->key_len = sc->pos - 1 - at;
	}
	skip_ws(sc);
	return eat(sc, ':') ? 0 : VT_EBADJSON;
}

/*
 * Just after an opening bracket: returns 1 when the container is empty and
 * closed at once, 0 when a value is expected next.
 */
static int scan_after_open(struct scan *sc)
{
	int obj = scan_in_obj(sc);

	skip_ws(sc);
	if (eat(sc, obj ? '}' : ']')) {
		sc->depth--;
		return 1;
	}
	return obj ? scan_key(sc) : 0;
}

/*
 * After a complete value: close as many containers as the text closes.
 * Returns 1 when the top-level value is complete, 0 when another value is
 * expected (after a comma, and for objects the next key).
 */
static int scan_after_value(struct scan *sc)
{
	while (sc->depth > 0) {
		int obj = scan_in_obj(sc);

		skip_ws(sc);
		if (eat(sc, ',')) {
			return obj ? scan_key(sc) : 0;
		}
		if (!eat(sc, obj ? '}' : ']')) {
			return VT_EBADJSON;
		}
		sc->depth--;
		scan_member_done(sc);
	}
	return 1;
}

/* One complete value of any nesting, without recursion. */
static int scan_document(struct scan *sc)
{
	for (;;) {
		int rc = scan_value(sc);

		if (rc == 1) {
			rc = scan_after_open(sc);
			if (rc == 0) {
				continue;
			}
		}
		if (rc < 0) {
			return rc;
		}
		scan_member_done(sc);

		rc = scan_after_value(sc);
		if (rc != 0) {
			return rc < 0 ? rc : 0;
		}
	}
}

int vt_json_validate_members(const char *s, size_t len, unsigned max_depth,
			     struct vt_json_val *out, vt_json_member_fn *fn, void *arg)
{
	struct scan sc;
	size_t start, end;
	int rc;

	if (s == NULL) {
		return VT_EBADJSON;
	}
	if (!vt_utf8_valid(s, len)) {
		return VT_EUTF8;
	}

	/* is_obj is left as it is: a level's bit is written as it opens. */
	sc.s = (const unsigned char *)s;
	sc.len = len;
	sc.pos = 0;
	sc.depth = 0;
	sc.max = max_depth < JSON_DEPTH_CAP ? max_depth : JSON_DEPTH_CAP;
	sc.fn = fn;
	sc.arg = arg;
	sc.key_at = sc.key_len = sc.val_at = 0;

	skip_ws(&sc);
	start = sc.pos;
	rc = scan_document(&sc);
	if (rc != 0) {
		return rc;
	}
	end = sc.pos;
	skip_ws(&sc);
	if (sc.pos != sc.len) {
		return VT_EBADJSON;
	}

	if (out != NULL) {
		out->type = type_of(sc.s[start]);
		out->p = s + start;
		out->len = end - start;
	}
	return 0;
}

int vt_json_validate_value(const char *s, size_t len, unsigned max_depth,
			   struct vt_json_val *out)
{
	return vt_json_validate_members(s, len, max_depth, out, NULL, NULL);
}

int vt_json_validate(const char *s, size_t len, unsigned max_depth)
{
	return vt_json_validate_value(s, len, max_depth, NULL);
}

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

/* The type of the value whose first byte is @c, or 0 when none starts so. */
static enum vt_json_type type_of(unsigned char c)
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
