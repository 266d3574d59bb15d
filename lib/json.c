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
 * Reading validated text (members, elements, decoding) is json_read.c.
 */
#include <stdint.h>
#include <string.h>

#include <vartalap/error.h>

#include "json.h"
#include "json_text.h"

/* Deepest nesting the scanner can track, whatever the caller asks for. */
#define JSON_DEPTH_CAP 1024

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
