/*
 * json.h - a strict JSON scanner for hostile input.
 *
 * Internal. The engine keeps a message body as the client's own validated
 * JSON text, so it is stored and relayed without a copy per recipient and
 * without re-encoding. General-purpose parsers are unfit here: they cut
 * strings at an escaped NUL, turn large integers into doubles, and recurse
 * without a bound. This scanner follows RFC 8259 and also refuses invalid
 * UTF-8 (overlong forms, encoded surrogates, code points above U+10FFFF),
 * lone surrogate escapes (\ud800 without its pair), raw control characters
 * in strings, and nesting deeper than a limit. It never allocates.
 */
#ifndef VARTALAP_JSON_H
#define VARTALAP_JSON_H

#include <stddef.h>
#include <stdint.h>

#define VT_JSON_MAX_DEPTH 32

enum vt_json_type {
	VT_JSON_NULL = 1,
	VT_JSON_FALSE,
	VT_JSON_TRUE,
	VT_JSON_NUMBER,
	VT_JSON_STRING,
	VT_JSON_ARRAY,
	VT_JSON_OBJECT,
};

/* A value inside the input: its type and exact text span (strings keep
 * their quotes). */
struct vt_json_val {
	enum vt_json_type type;
	const char *p;
	size_t len;
};

/*
 * Nonzero when all @n bytes of @s are UTF-8: no overlong form, encoded
 * surrogate, code point above U+10FFFF or truncated sequence.
 */
int vt_utf8_valid(const void *s, size_t n);

/*
 * How many of the @n bytes at @s come before the first one a JSON string
 * cannot hold as it is: a quote, a backslash or a control character. Runs
 * of plain text are stepped over a word at a time.
 */
size_t vt_json_plain_run(const void *s, size_t n);

/*
 * Check that @s (@len bytes; may hold NUL bytes, which are refused outside
 * strings and raw inside them) is exactly one JSON value with optional
 * surrounding white space, nested at most @max_depth deep (a scalar is at
 * depth 0, "[]" at depth 1; a @max_depth above 1024 counts as 1024). Returns
 * 0, VT_EUTF8 when any byte of @s is not UTF-8 (checked first, wherever it
 * is), or VT_EBADJSON for anything else.
 */
int vt_json_validate(const char *s, size_t len, unsigned max_depth);

/*
 * As vt_json_validate(), and on success describe the value @s holds in
 * @out (its span without the white space around it), as
 * vt_json_parse_value() would, without reading the text a second time.
 */
int vt_json_validate_value(const char *s, size_t len, unsigned max_depth,
			   struct vt_json_val *out);

/* Told of one member of the top-level object by vt_json_validate_members(). */
typedef void vt_json_member_fn(void *arg, const struct vt_json_val *key,
			       const struct vt_json_val *val);

/*
 * As vt_json_validate_value(), and in the same pass call @fn for each
 * member of the top-level value when it is an object, in order, with the
 * key and value vt_json_next_member() would give. A member is reported as
 * soon as it is read, before the rest of the text is checked: @fn only
 * takes note, and what it noted counts only when this returns 0.
 */
int vt_json_validate_members(const char *s, size_t len, unsigned max_depth,
			     struct vt_json_val *out, vt_json_member_fn *fn, void *arg);

/*
 * Iterate the members of a validated object @obj. @pos starts at 0 and is
 * advanced; each call yields the next key (still escaped, without quotes)
 * and value. Returns 1 for a member, 0 at the end.
 */
int vt_json_next_member(const struct vt_json_val *obj, size_t *pos, struct vt_json_val *key,
			struct vt_json_val *val);

/* Iterate the elements of a validated array; as vt_json_next_member(). */
int vt_json_next_elem(const struct vt_json_val *arr, size_t *pos, struct vt_json_val *val);

/* Parse the first value of validated text @s; 0 or VT_EBADJSON. */
int vt_json_parse_value(const char *s, size_t len, struct vt_json_val *out);

/*
 * Compare an (escaped, unquoted) key span with @name. Keys with escapes are
 * decoded for the comparison. Returns nonzero when equal.
 */
int vt_json_key_is(const struct vt_json_val *key, const char *name);

/*
 * Decode a validated string value (with quotes) into @out (size @cap, always
 * NUL-terminated on success). Returns the decoded byte length; VT_ETOOBIG
 * when it does not fit; VT_EBADENV when it contains U+0000 and so cannot be
 * a C string, or when @v is not a string.
 */
int vt_json_str_decode(const struct vt_json_val *v, char *out, size_t cap);

/*
 * Read a validated number as a non-negative integer no larger than @max,
 * written without fraction or exponent and without a minus sign (so "-0",
 * "1.5", "1e3" and 2^53 + 1 with max 2^53 - 1 are refused). 0 or VT_EBADENV.
 */
int vt_json_u64(const struct vt_json_val *v, uint64_t max, uint64_t *out);

#endif /* VARTALAP_JSON_H */
