/*
 * fuzz/fuzz_json.c - the strict JSON scanner and its readers.
 *
 * Any input goes through vt_json_validate(). Valid text is then walked to
 * every value with vt_json_next_member() and vt_json_next_elem(), and each
 * value is checked on its own: a member or element must validate alone,
 * every string must decode (or be refused only for U+0000), and a decoded
 * string written back with vt_buf_json_str() must validate and decode to
 * the same bytes. Keys must match their own decoded text. The one-pass
 * reading of the top-level members must agree with all of it.
 */
#include <inttypes.h>
#include <string.h>

#include <vartalap/error.h>

#include "buf.h"
#include "json.h"

#include "fuzz.h"

static char scratch[1 << 20];
static char again[1 << 20];

/* Nonzero when @p holds the escape \u0000 (a necessary sign of U+0000). */
static int has_nul_escape(const char *p, size_t len)
{
	for (size_t i = 0; i + 6 <= len; i++) {
		if (memcmp(p + i, "\\u0000", 6) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Decode the string @v and check the round trip through the encoder. */
static void check_string(const struct vt_json_val *v, struct vt_buf *b)
{
	struct vt_json_val back;
	size_t cap = v->len < sizeof(scratch) ? v->len : sizeof(scratch);
	int n = vt_json_str_decode(v, scratch, cap);
	int m;

	FUZZ_CHECK(v->len >= 2 && v->p[0] == '"' && v->p[v->len - 1] == '"',
	           "string span without its quotes");
	if (v->len > sizeof(scratch)) {
		return; /* too long for the scratch buffer: nothing to compare */
	}
	/* Escapes only shrink: the decoded text fits in len - 2 bytes plus NUL. */
	FUZZ_CHECK(n != VT_ETOOBIG, "decoded string longer than its source");
	if (n == VT_EBADENV) {
		FUZZ_CHECK(has_nul_escape(v->p, v->len), "refused a string without U+0000");
		return;
	}
	FUZZ_CHECK(n >= 0 && (size_t)n <= v->len - 2, "bad decoded length");
	FUZZ_CHECK(scratch[n] == '\0', "decoded string not terminated");
	FUZZ_CHECK(memchr(scratch, '\0', (size_t)n) == NULL, "NUL inside a decoded string");

	vt_buf_reset(b);
	vt_buf_json_str(b, scratch, (size_t)n);
	FUZZ_CHECK(!vt_buf_failed(b), "buffer failed");
	FUZZ_CHECK(vt_json_validate(b->data, b->len, 0) == 0, "re-encoded string is not valid");
	FUZZ_CHECK(vt_json_parse_value(b->data, b->len, &back) == 0, "re-encoded string unparsed");
	FUZZ_CHECK(back.type == VT_JSON_STRING, "re-encoded value is not a string");
	m = vt_json_str_decode(&back, again, sizeof(again));
	FUZZ_CHECK(m == n && memcmp(scratch, again, (size_t)n) == 0,
	           "string changed through decode and encode");
}

/* A number that reads as an integer must print back as the same text. */
static void check_number(const struct vt_json_val *v)
{
	char text[24];
	uint64_t u;

	if (vt_json_u64(v, UINT64_MAX, &u) != 0) {
		return;
	}
	snprintf(text, sizeof(text), "%" PRIu64, u);
	FUZZ_CHECK(strlen(text) == v->len && memcmp(text, v->p, v->len) == 0,
	           "integer read differs from its text");
}

static void walk(const struct vt_json_val *v, unsigned depth, struct vt_buf *b)
{
	struct vt_json_val key;
	struct vt_json_val item;
	size_t pos = 0;

	FUZZ_CHECK(depth <= VT_JSON_MAX_DEPTH, "walked deeper than the limit");
	FUZZ_CHECK(vt_json_validate(v->p, v->len, VT_JSON_MAX_DEPTH) == 0,
	           "a value does not validate on its own");

	switch (v->type) {
	case VT_JSON_STRING:
		check_string(v, b);
		break;
	case VT_JSON_NUMBER:
		check_number(v);
		break;
	case VT_JSON_OBJECT:
		while (vt_json_next_member(v, &pos, &key, &item)) {
			struct vt_json_val quoted = {VT_JSON_STRING, key.p - 1, key.len + 2};
			int n;

			FUZZ_CHECK(key.p > v->p && key.p + key.len < v->p + v->len,
			           "key outside its object");
			check_string(&quoted, b);
			n = vt_json_str_decode(&quoted, scratch, sizeof(scratch));
			if (n >= 0) {
				FUZZ_CHECK(vt_json_key_is(&key, scratch),
					   "key differs from its text");
			}
			FUZZ_CHECK(item.p > v->p && item.p + item.len < v->p + v->len,
			           "member outside its object");
			walk(&item, depth + 1, b);
		}
		break;
	case VT_JSON_ARRAY:
		while (vt_json_next_elem(v, &pos, &item)) {
			FUZZ_CHECK(item.p > v->p && item.p + item.len < v->p + v->len,
			           "element outside its array");
			walk(&item, depth + 1, b);
		}
		break;
	case VT_JSON_NULL:
	case VT_JSON_FALSE:
	case VT_JSON_TRUE:
		break;
	default:
		FUZZ_CHECK(0, "unknown value type");
	}
}

/* The first members vt_json_validate_members() reported, and how many in all. */
struct reported {
	size_t n;
	struct vt_json_val key[64], val[64];
};

static void note(void *arg, const struct vt_json_val *key, const struct vt_json_val *val)
{
	struct reported *r = arg;

	if (r->n < 64) {
		r->key[r->n] = *key;
		r->val[r->n] = *val;
	}
	r->n++;
}

static int same_span(const struct vt_json_val *a, const struct vt_json_val *b)
{
	return a->type == b->type && a->p == b->p && a->len == b->len;
}

/*
 * The one-pass reading must agree with validation (@rc) and, on valid
 * text, report exactly the members the walk of @top finds.
 */
static void check_members(const char *s, size_t size, int rc, const struct vt_json_val *top)
{
	struct vt_json_val t, key, val;
	struct reported r = {0};
	size_t pos = 0, i = 0;

	FUZZ_CHECK(vt_json_validate_members(s, size, VT_JSON_MAX_DEPTH, &t, note, &r) == rc,
		   "one-pass validation disagrees");
	if (rc != 0) {
		return;
	}
	FUZZ_CHECK(same_span(&t, top), "one-pass value differs");
	while (top->type == VT_JSON_OBJECT && vt_json_next_member(top, &pos, &key, &val)) {
		if (i < 64) {
			FUZZ_CHECK(r.key[i].p == key.p && r.key[i].len == key.len,
				   "one-pass key differs");
			FUZZ_CHECK(same_span(&r.val[i], &val), "one-pass member value differs");
		}
		i++;
	}
	FUZZ_CHECK(i == r.n, "one-pass member count differs");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct vt_json_val top;
	struct vt_buf b;
	int rc = vt_json_validate(s, size, VT_JSON_MAX_DEPTH);

	FUZZ_CHECK(rc == 0 || rc == VT_EBADJSON || rc == VT_EUTF8, "unexpected validate result");
	if (rc != 0) {
		check_members(s, size, rc, NULL);
		return 0;
	}
	/* A deeper limit never refuses what a shallower one accepts. */
	FUZZ_CHECK(vt_json_validate(s, size, 1024) == 0, "deeper limit refused valid text");
	FUZZ_CHECK(vt_json_parse_value(s, size, &top) == 0, "valid text did not parse");
	FUZZ_CHECK(top.p >= s && top.p + top.len <= s + size, "value outside the input");
	check_members(s, size, rc, &top);

	vt_buf_init(&b);
	walk(&top, 0, &b);
	vt_buf_free(&b);
	return 0;
}
