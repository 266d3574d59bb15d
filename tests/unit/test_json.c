/*
 * test_json.c - the strict JSON scanner: what it accepts, what it refuses,
 * and the navigation helpers over validated text.
 */
#include <check.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vartalap/error.h>

#include "json.h"

#define MAXD VT_JSON_MAX_DEPTH

/* Validate a NUL-terminated literal. */
static int val(const char *s)
{
	return vt_json_validate(s, strlen(s), MAXD);
}

/* Validate exactly @n bytes (for inputs holding NUL). */
static int valn(const char *s, size_t n)
{
	return vt_json_validate(s, n, MAXD);
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parse @s (validated first) into @v. */
static void parse(const char *s, struct vt_json_val *v)
{
	ck_assert_int_eq(val(s), 0);
	ck_assert_int_eq(vt_json_parse_value(s, strlen(s), v), 0);
}

/* ---- acceptance ------------------------------------------------------- */

START_TEST(test_accepts_scalars)
{
	const char *ok[] = {
	        "null", "true",      "false", "0",     "-0",   "12",      "-12",
	        "1.5",  "-0.25e+10", "1E-2",  "1e400", "\"\"", "\"abc\"", " \t\r\n 7 \n",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(val(ok[i]) == 0, "refused: %s", ok[i]);
	}
}
END_TEST

START_TEST(test_accepts_containers)
{
	const char *ok[] = {
	        "{}",
	        "[]",
	        "[ ]",
	        "{ }",
	        "[1,2,[3,{\"a\":[]}]]",
	        "{\"a\":{\"b\":{\"c\":[true,false,null]}},\"d\":\"e\"}",
	        "{\"k\" : \"v\" , \"k2\":1}",
	        "[\"]\",\"}\",\"\\\"[\"]",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(val(ok[i]) == 0, "refused: %s", ok[i]);
	}
}
END_TEST

START_TEST(test_accepts_escapes)
{
	ck_assert_int_eq(val("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uFFFF\""), 0);
}
END_TEST

START_TEST(test_accepts_valid_utf8)
{
	ck_assert_int_eq(val("\"\xe2\x82\xac\""), 0);          /* U+20AC */
	ck_assert_int_eq(val("\"\xf4\x8f\xbf\xbf\""), 0);      /* U+10FFFF */
	ck_assert_int_eq(val("\"\xed\x9f\xbf\""), 0);          /* U+D7FF */
	ck_assert_int_eq(val("\"\xee\x80\x80\""), 0);          /* U+E000 */
	ck_assert_int_eq(val("\"\xc2\x80\xdf\xbf\""), 0);      /* two-byte ends */
	ck_assert_int_eq(val("{\"\xc3\xa9t\xc3\xa9\":1}"), 0); /* in a key */
}
END_TEST

/* B21 (a): an escaped NUL is valid JSON and stays accepted. */
START_TEST(test_b21_escaped_nul_accepted)
{
	ck_assert_int_eq(val("\"a\\u0000b\""), 0);
	ck_assert_int_eq(val("{\"body\":\"a\\u0000b\"}"), 0);
}
END_TEST

/* B21 (b): a surrogate pair escape and the raw 4-byte form both pass. */
START_TEST(test_b21_surrogate_pair_and_raw_emoji)
{
	ck_assert_int_eq(val("\"\\ud83d\\ude00\""), 0);
	ck_assert_int_eq(val("\"\\uD83D\\uDE00\""), 0);
	ck_assert_int_eq(val("\"\xf0\x9f\x98\x80\""), 0);
}
END_TEST

/* ---- refusal: JSON grammar ------------------------------------------- */

START_TEST(test_refuses_bad_grammar)
{
	const char *bad[] = {
	        "",      " ",     "{",         "}",      "[",          "]",         "[}",
	        "{]",    "[1,]",  "[,1]",      "[1 2]",  "{\"a\":1,}", "{\"a\" 1}", "{\"a\":}",
	        "{1:2}", "{a:1}", "{\"a\",1}", "tru",    "nul",        "True",      "nulll",
	        "'a'",   "\"abc", "\"a\\\"",   "{} x",   "{}{}",       "1 2",       "[]]",
	        "+1",    ".5",    "1.",        "1e",     "1e+",        "-",         "--1",
	        "0x10",  "NaN",   "Infinity",  "[1,,2]", "\xc2\xa0 1",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(val(bad[i]) == VT_EBADJSON, "accepted: %s", bad[i]);
	}
}
END_TEST

START_TEST(test_refuses_leading_zeros)
{
	ck_assert_int_eq(val("01"), VT_EBADJSON);
	ck_assert_int_eq(val("-01"), VT_EBADJSON);
	ck_assert_int_eq(val("00"), VT_EBADJSON);
	ck_assert_int_eq(val("[007]"), VT_EBADJSON);
	ck_assert_int_eq(val("0.01"), 0);
}
END_TEST

START_TEST(test_refuses_bad_escapes)
{
	const char *bad[] = {
	        "\"\\x\"",     "\"\\a\"", "\"\\u12\"", "\"\\u12G4\"",
	        "\"\\U0041\"", "\"\\\"",  "\"\\'\"",   "\"\\0\"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(val(bad[i]) == VT_EBADJSON, "accepted: %s", bad[i]);
	}
}
END_TEST

/* B21 (c): lone or mis-paired surrogate escapes. */
START_TEST(test_b21_lone_surrogate_refused)
{
	const char *bad[] = {
	        "\"\\ud800\"",        /* lone high */
	        "\"\\udc00\"",        /* lone low */
	        "\"\\ude00\\ud83d\"", /* reversed */
	        "\"\\ud800\\u0041\"", /* high, then not a low */
	        "\"\\ud800\\ud800\"", /* two highs */
	        "\"\\ud800x\"",       /* high, then a plain byte */
	        "\"\\ud800\\n\"",     /* high, then another escape */
	        "\"\\ud800",          /* cut off */
	        "{\"\\udbff\":1}",    /* in a key */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(val(bad[i]) == VT_EBADJSON, "accepted: %s", bad[i]);
	}
}
END_TEST

START_TEST(test_refuses_raw_control_in_string)
{
	ck_assert_int_eq(val("\"a\nb\""), VT_EBADJSON);
	ck_assert_int_eq(val("\"a\tb\""), VT_EBADJSON);
	ck_assert_int_eq(val("\"\x1f\""), VT_EBADJSON);
	ck_assert_int_eq(val("{\"k\x01\":1}"), VT_EBADJSON);
	ck_assert_int_eq(val("\"\x7f\""), 0); /* DEL is not a C0 control */
}
END_TEST

/* B21 (d): a raw NUL byte, inside a string or out. */
START_TEST(test_b21_raw_nul_refused)
{
	ck_assert_int_eq(valn("\"a\0b\"", 5), VT_EBADJSON);
	ck_assert_int_eq(valn("{\"body\":\"a\0\"}", 13), VT_EBADJSON);
	ck_assert_int_eq(valn("{}\0", 3), VT_EBADJSON);
	ck_assert_int_eq(valn("\0{}", 3), VT_EBADJSON);
	ck_assert_int_eq(valn("[1,\0 2]", 7), VT_EBADJSON);
	ck_assert_int_eq(valn("\0", 1), VT_EBADJSON);
}
END_TEST

/* ---- refusal: UTF-8 (B13's byte sequences, B21 (e)) ------------------ */

START_TEST(test_b13_encoded_surrogate)
{
	ck_assert_int_eq(val("\"\xed\xa0\x80\""), VT_EUTF8);
	ck_assert_int_eq(val("\"\xed\xbf\xbf\""), VT_EUTF8);
}
END_TEST

START_TEST(test_b13_overlong)
{
	ck_assert_int_eq(val("\"\xc0\xaf\""), VT_EUTF8);
	ck_assert_int_eq(val("\"\xc1\xbf\""), VT_EUTF8);
	ck_assert_int_eq(val("\"\xe0\x80\xaf\""), VT_EUTF8);
	ck_assert_int_eq(val("\"\xf0\x80\x80\xaf\""), VT_EUTF8);
}
END_TEST

START_TEST(test_b13_above_max)
{
	ck_assert_int_eq(val("\"\xf4\x90\x80\x80\""), VT_EUTF8);
	ck_assert_int_eq(val("\"\xf5\x80\x80\x80\""), VT_EUTF8);
	ck_assert_int_eq(val("\"\xf8\x88\x80\x80\x80\""), VT_EUTF8);
}
END_TEST

START_TEST(test_b13_truncated)
{
	ck_assert_int_eq(val("\"\xe2\x82\""), VT_EUTF8);
	ck_assert_int_eq(valn("\"\xe2\x82", 3), VT_EUTF8); /* at the very end */
	ck_assert_int_eq(val("\"\xf0\x9f\x98\""), VT_EUTF8);
	ck_assert_int_eq(val("\"\xc3\""), VT_EUTF8);
}
END_TEST

START_TEST(test_b21_raw_invalid_utf8_refused)
{
	ck_assert_int_eq(val("\"\xff\xfe\""), VT_EUTF8);
	ck_assert_int_eq(val("\"\x80\""), VT_EUTF8);    /* stray continuation */
	ck_assert_int_eq(val("[1,\xff]"), VT_EUTF8);    /* outside a string */
	ck_assert_int_eq(val("{} \xc0\xaf"), VT_EUTF8); /* in trailing garbage */
	ck_assert_int_eq(val("{\"\xed\xa0\x80\":1}"), VT_EUTF8);
	/* A long ASCII run before the bad byte: the word-at-a-time path. */
	ck_assert_int_eq(val("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xe2\x28\xa1\""), VT_EUTF8);
}
END_TEST

/* ---- depth ------------------------------------------------------------ */

/* @n opening brackets followed by as many closing ones. */
static char *nested(size_t n, char open, char close)
{
	char *s = malloc(2 * n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, open, n);
	memset(s + n, close, n);
	s[2 * n] = '\0';
	return s;
}

START_TEST(test_depth_limit)
{
	char *ok = nested(MAXD, '[', ']');
	char *deep = nested(MAXD + 1, '[', ']');

	ck_assert_int_eq(val(ok), 0);
	ck_assert_int_eq(val(deep), VT_EBADJSON);
	ck_assert_int_eq(vt_json_validate("[]", 2, 0), VT_EBADJSON);
	ck_assert_int_eq(vt_json_validate("1", 1, 0), 0);
	ck_assert_int_eq(vt_json_validate("[[]]", 4, 1), VT_EBADJSON);
	ck_assert_int_eq(vt_json_validate("[[]]", 4, 2), 0);
	free(ok);
	free(deep);
}
END_TEST

START_TEST(test_depth_mixed_containers)
{
	/* Objects and arrays interleaved: each closer must match its opener. */
	ck_assert_int_eq(val("{\"a\":[{\"b\":[{}]}]}"), 0);
	ck_assert_int_eq(val("{\"a\":[{\"b\":[{}}]}]"), VT_EBADJSON);
	ck_assert_int_eq(val("[{\"a\":1]}"), VT_EBADJSON);
}
END_TEST

/* B22 (a): 100,000 '[' are refused quickly and without deep recursion. */
START_TEST(test_b22_hundred_thousand_brackets)
{
	size_t n = 100000;
	char *s = malloc(n);
	char *balanced = nested(n, '[', ']');
	double t0;
	double took;

	ck_assert_ptr_nonnull(s);
	memset(s, '[', n);

	t0 = now_sec();
	ck_assert_int_eq(vt_json_validate(s, n, MAXD), VT_EBADJSON);
	ck_assert_int_eq(vt_json_validate(balanced, 2 * n, MAXD), VT_EBADJSON);
	/* A caller asking for no limit still gets a bounded one. */
	ck_assert_int_eq(vt_json_validate(s, n, UINT_MAX), VT_EBADJSON);
	ck_assert_int_eq(vt_json_validate(balanced, 2 * n, UINT_MAX), VT_EBADJSON);
	took = now_sec() - t0;

	ck_assert_msg(took < 1.0, "took %.3f s", took);
	free(s);
	free(balanced);
}
END_TEST

/* ---- navigation ------------------------------------------------------- */

START_TEST(test_parse_value_types)
{
	struct vt_json_val v;

	parse("  {\"a\":1} ", &v);
	ck_assert_int_eq(v.type, VT_JSON_OBJECT);
	ck_assert_uint_eq(v.len, 7);
	parse("[1]", &v);
	ck_assert_int_eq(v.type, VT_JSON_ARRAY);
	parse("\"x\"", &v);
	ck_assert_int_eq(v.type, VT_JSON_STRING);
	ck_assert_uint_eq(v.len, 3);
	parse("-1.5e3", &v);
	ck_assert_int_eq(v.type, VT_JSON_NUMBER);
	ck_assert_uint_eq(v.len, 6);
	parse("true", &v);
	ck_assert_int_eq(v.type, VT_JSON_TRUE);
	parse("false", &v);
	ck_assert_int_eq(v.type, VT_JSON_FALSE);
	parse("null", &v);
	ck_assert_int_eq(v.type, VT_JSON_NULL);
	ck_assert_int_eq(vt_json_parse_value("", 0, &v), VT_EBADJSON);
	ck_assert_int_eq(vt_json_parse_value("  ", 2, &v), VT_EBADJSON);
}
END_TEST

START_TEST(test_members_in_order)
{
	const char *s = "{ \"a\" : [1,\"]}\",{}] , \"b\\\"c\":{\"x\":\"}\"},\"d\":null }";
	struct vt_json_val obj;
	struct vt_json_val key;
	struct vt_json_val v;
	size_t pos = 0;

	parse(s, &obj);

	ck_assert_int_eq(vt_json_next_member(&obj, &pos, &key, &v), 1);
	ck_assert_int_eq(vt_json_key_is(&key, "a"), 1);
	ck_assert_int_eq(v.type, VT_JSON_ARRAY);
	ck_assert_uint_eq(v.len, strlen("[1,\"]}\",{}]"));

	ck_assert_int_eq(vt_json_next_member(&obj, &pos, &key, &v), 1);
	ck_assert_uint_eq(key.len, 4);
	ck_assert_int_eq(vt_json_key_is(&key, "b\"c"), 1);
	ck_assert_int_eq(v.type, VT_JSON_OBJECT);
	ck_assert_mem_eq(v.p, "{\"x\":\"}\"}", v.len);

	ck_assert_int_eq(vt_json_next_member(&obj, &pos, &key, &v), 1);
	ck_assert_int_eq(vt_json_key_is(&key, "d"), 1);
	ck_assert_int_eq(v.type, VT_JSON_NULL);

	ck_assert_int_eq(vt_json_next_member(&obj, &pos, &key, &v), 0);
	ck_assert_int_eq(vt_json_next_member(&obj, &pos, &key, &v), 0);
}
END_TEST

START_TEST(test_members_of_empty_and_wrong_type)
{
	struct vt_json_val obj;
	struct vt_json_val key;
	struct vt_json_val v;
	size_t pos = 0;

	parse("{}", &obj);
	ck_assert_int_eq(vt_json_next_member(&obj, &pos, &key, &v), 0);
	parse("[1]", &obj);
	pos = 0;
	ck_assert_int_eq(vt_json_next_member(&obj, &pos, &key, &v), 0);
}
END_TEST

START_TEST(test_elements)
{
	struct vt_json_val arr;
	struct vt_json_val v;
	size_t pos = 0;
	int n = 0;

	parse("[ 1 , \"two\" ,[3,[4]], {\"5\":5} ,true ]", &arr);
	while (vt_json_next_elem(&arr, &pos, &v)) {
		n++;
	}
	ck_assert_int_eq(n, 5);

	parse("[]", &arr);
	pos = 0;
	ck_assert_int_eq(vt_json_next_elem(&arr, &pos, &v), 0);
}
END_TEST

START_TEST(test_key_is_with_escapes)
{
	struct vt_json_val obj;
	struct vt_json_val key;
	struct vt_json_val v;
	size_t pos = 0;

	parse("{\"t\\u0079pe\":1,\"\\u00e9\":2,\"typ\":3}", &obj);
	ck_assert_int_eq(vt_json_next_member(&obj, &pos, &key, &v), 1);
	ck_assert_int_eq(vt_json_key_is(&key, "type"), 1);
	ck_assert_int_eq(vt_json_key_is(&key, "typ"), 0);
	ck_assert_int_eq(vt_json_key_is(&key, "types"), 0);
	ck_assert_int_eq(vt_json_next_member(&obj, &pos, &key, &v), 1);
	ck_assert_int_eq(vt_json_key_is(&key, "\xc3\xa9"), 1);
	ck_assert_int_eq(vt_json_next_member(&obj, &pos, &key, &v), 1);
	ck_assert_int_eq(vt_json_key_is(&key, "type"), 0);
	ck_assert_int_eq(vt_json_key_is(&key, "typ"), 1);
}
END_TEST

/* ---- string decoding -------------------------------------------------- */

START_TEST(test_str_decode_escapes)
{
	struct vt_json_val v;
	char out[64];

	parse("\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac\"", &v);
	ck_assert_int_eq(vt_json_str_decode(&v, out, sizeof(out)), 14);
	ck_assert_str_eq(out, "a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac");
}
END_TEST

/* B21 (b): the escaped pair and the raw bytes decode to the same U+1F600. */
START_TEST(test_b21_surrogate_pair_decodes_to_raw)
{
	struct vt_json_val esc;
	struct vt_json_val raw;
	char a[8];
	char b[8];

	parse("\"\\ud83d\\ude00\"", &esc);
	parse("\"\xf0\x9f\x98\x80\"", &raw);
	ck_assert_int_eq(vt_json_str_decode(&esc, a, sizeof(a)), 4);
	ck_assert_int_eq(vt_json_str_decode(&raw, b, sizeof(b)), 4);
	ck_assert_str_eq(a, "\xf0\x9f\x98\x80");
	ck_assert_str_eq(a, b);
}
END_TEST

/* B21 (a): U+0000 cannot become a C string, so decoding says so. */
START_TEST(test_str_decode_nul_refused)
{
	struct vt_json_val v;
	char out[16];

	parse("\"a\\u0000b\"", &v);
	ck_assert_int_eq(vt_json_str_decode(&v, out, sizeof(out)), VT_EBADENV);
}
END_TEST

START_TEST(test_str_decode_capacity)
{
	struct vt_json_val v;
	char out[8];

	parse("\"abc\"", &v);
	ck_assert_int_eq(vt_json_str_decode(&v, out, 4), 3); /* exact fit */
	ck_assert_str_eq(out, "abc");
	ck_assert_int_eq(vt_json_str_decode(&v, out, 3), VT_ETOOBIG);
	ck_assert_int_eq(vt_json_str_decode(&v, out, 0), VT_ETOOBIG);
	parse("\"\"", &v);
	ck_assert_int_eq(vt_json_str_decode(&v, out, 1), 0);
	ck_assert_str_eq(out, "");
	parse("\"\\u20ac\"", &v);
	ck_assert_int_eq(vt_json_str_decode(&v, out, 3), VT_ETOOBIG);
	parse("12", &v);
	ck_assert_int_eq(vt_json_str_decode(&v, out, sizeof(out)), VT_EBADENV);
}
END_TEST

/* ---- integers --------------------------------------------------------- */

/* vt_json_u64 on the text @s; returns its result and sets *@out. */
static int u64_of(const char *s, uint64_t max, uint64_t *out)
{
	struct vt_json_val v;

	parse(s, &v);
	return vt_json_u64(&v, max, out);
}

#define LIMIT53 ((UINT64_C(1) << 53) - 1)

START_TEST(test_u64_accepts)
{
	uint64_t x = 1;

	ck_assert_int_eq(u64_of("0", 10, &x), 0);
	ck_assert_uint_eq(x, 0);
	ck_assert_int_eq(u64_of("42", 42, &x), 0);
	ck_assert_uint_eq(x, 42);
	ck_assert_int_eq(u64_of("9007199254740991", LIMIT53, &x), 0);
	ck_assert_uint_eq(x, LIMIT53);
	ck_assert_int_eq(u64_of("18446744073709551615", UINT64_MAX, &x), 0);
	ck_assert_uint_eq(x, UINT64_MAX);
}
END_TEST

/* B22 (b): 2^53 + 1 is out of range, not rounded. */
START_TEST(test_b22_two_pow_53_plus_one)
{
	uint64_t x = 7;

	ck_assert_int_eq(u64_of("9007199254740993", LIMIT53, &x), VT_EBADENV);
	ck_assert_int_eq(u64_of("9007199254740992", LIMIT53, &x), VT_EBADENV);
	ck_assert_uint_eq(x, 7);
}
END_TEST

/* B22 (c): exponents, negative zero and fractions are not integers. */
START_TEST(test_b22_not_integers)
{
	const char *bad[] = {"1e400", "-0", "1.5", "1e3", "1E3", "-1", "1.0", "0e0", "10.00"};
	uint64_t x;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(u64_of(bad[i], UINT64_MAX, &x) == VT_EBADENV, "accepted: %s", bad[i]);
	}
}
END_TEST

START_TEST(test_u64_overflow_and_max)
{
	uint64_t x;

	ck_assert_int_eq(u64_of("18446744073709551616", UINT64_MAX, &x), VT_EBADENV);
	ck_assert_int_eq(u64_of("99999999999999999999999", UINT64_MAX, &x), VT_EBADENV);
	ck_assert_int_eq(u64_of("43", 42, &x), VT_EBADENV);
	ck_assert_int_eq(u64_of("1", 0, &x), VT_EBADENV);
	ck_assert_int_eq(u64_of("\"1\"", 10, &x), VT_EBADENV);
	ck_assert_int_eq(u64_of("true", 10, &x), VT_EBADENV);
}
END_TEST

/* The bound is checked digit by digit: every max with a neighbour each side. */
START_TEST(test_u64_bound_each_side)
{
	const uint64_t maxes[] = {0, 1, 9, 10, 15, 99, 100, 123, 1000, 9007199254740991u,
				  UINT64_MAX / 10, UINT64_MAX - 1, UINT64_MAX};
	char text[32];
	uint64_t x;

	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		uint64_t m = maxes[i];

		snprintf(text, sizeof(text), "%" PRIu64, m);
		ck_assert_int_eq(u64_of(text, m, &x), 0);
		ck_assert_uint_eq(x, m);
		if (m > 0) {
			snprintf(text, sizeof(text), "%" PRIu64, m - 1);
			ck_assert_int_eq(u64_of(text, m, &x), 0);
			ck_assert_uint_eq(x, m - 1);
			ck_assert_int_eq(u64_of(text, m - 1, &x), 0);
		}
		if (m < UINT64_MAX) {
			snprintf(text, sizeof(text), "%" PRIu64, m + 1);
			ck_assert_int_eq(u64_of(text, m, &x), VT_EBADENV);
		}
		if (m > 0) { /* "00" is not a number at all */
			snprintf(text, sizeof(text), "%" PRIu64 "0", m);
			ck_assert_int_eq(u64_of(text, m, &x), VT_EBADENV);
		}
	}
}
END_TEST

/* Validating and describing in one pass gives what the two steps give. */
START_TEST(test_validate_value_matches_parse)
{
	const char *docs[] = {"{}", " {\"a\":[1,{\"b\":\"}\"}]} ", "\t[ ]\n", "\"s\\\"\"",
			      " -1.5e3 ", "true", "null"};
	struct vt_json_val a, b;

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		const char *d = docs[i];

		ck_assert_int_eq(vt_json_validate_value(d, strlen(d), 8, &a), 0);
		ck_assert_int_eq(vt_json_parse_value(d, strlen(d), &b), 0);
		ck_assert_int_eq(a.type, b.type);
		ck_assert_ptr_eq(a.p, b.p);
		ck_assert_uint_eq(a.len, b.len);
	}

	memset(&a, 0x5a, sizeof(a));
	b = a;
	ck_assert_int_eq(vt_json_validate_value("{} x", 4, 8, &a), VT_EBADJSON);
	ck_assert_int_eq(vt_json_validate_value("\xff", 1, 8, &a), VT_EUTF8);
	ck_assert_int_eq(vt_json_validate_value("[[1]]", 5, 1, &a), VT_EBADJSON);
	ck_assert_int_eq(vt_json_validate_value("  ", 2, 8, &a), VT_EBADJSON);
	ck_assert_mem_eq(&a, &b, sizeof(a));
}
END_TEST

/* What vt_json_validate_members() reported. */
struct reported {
	size_t n;
	struct vt_json_val key[8], val[8];
};

static void note(void *arg, const struct vt_json_val *key, const struct vt_json_val *val)
{
	struct reported *r = arg;

	ck_assert_uint_lt(r->n, 8);
	r->key[r->n] = *key;
	r->val[r->n] = *val;
	r->n++;
}

/* Check that the members reported for @d are those vt_json_next_member() walks. */
static size_t members_match_walk(const char *d)
{
	struct vt_json_val top, key, val;
	struct reported r = {0};
	size_t pos = 0, i = 0;

	ck_assert_int_eq(vt_json_validate_members(d, strlen(d), 8, &top, note, &r), 0);
	while (vt_json_next_member(&top, &pos, &key, &val)) {
		ck_assert_uint_lt(i, r.n);
		ck_assert_ptr_eq(r.key[i].p, key.p);
		ck_assert_uint_eq(r.key[i].len, key.len);
		ck_assert_int_eq(r.val[i].type, val.type);
		ck_assert_ptr_eq(r.val[i].p, val.p);
		ck_assert_uint_eq(r.val[i].len, val.len);
		i++;
	}
	ck_assert_uint_eq(i, r.n);
	return r.n;
}

START_TEST(test_validate_members_as_walked)
{
	ck_assert_uint_eq(members_match_walk(" { \"a\" : [1,\"]}\",{}] , \"b\\\"c\":{\"x\":\"}\"},"
					     "\"d\":null ,\"e\":{},\"f\":[],\"g\":-1.5e3,"
					     "\"h\":\"x\"} "),
			 7);
	ck_assert_uint_eq(members_match_walk("{\"\":{\"in\":{\"deeper\":[{\"k\":1}]}}}"), 1);
	ck_assert_uint_eq(members_match_walk("{}"), 0);

	/* Only the top-level object has members to report. */
	ck_assert_uint_eq(members_match_walk("[{\"a\":1},{\"b\":2}]"), 0);
	ck_assert_uint_eq(members_match_walk("\"{\\\"a\\\":1}\""), 0);
	ck_assert_uint_eq(members_match_walk("7"), 0);
}
END_TEST

START_TEST(test_validate_members_refuses_as_validate)
{
	const char *bad[] = {"{\"a\":1", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1} x", "{\"a\":\"\x01\"}",
			     "{\"a\":\"\xc0\xaf\"}", "{\"a\":[[[[[[[[[1]]]]]]]]]}"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct reported r = {0};
		struct vt_json_val top;
		int want = vt_json_validate(bad[i], strlen(bad[i]), 8);

		ck_assert_int_ne(want, 0);
		ck_assert_int_eq(vt_json_validate_members(bad[i], strlen(bad[i]), 8, &top, note, &r),
				 want);
	}
}
END_TEST

/* @len copies of @fill in quotes, @stop in place of the one at @at, into @s; its length. */
static size_t quoted_run(char *s, const char *fill, size_t len, size_t at, const char *stop)
{
	size_t n = 0;

	s[n++] = '"';
	for (size_t i = 0; i < len; i++) {
		const char *piece = i == at ? stop : fill;

		memcpy(s + n, piece, strlen(piece));
		n += strlen(piece);
	}
	s[n++] = '"';
	return n;
}

/*
 * Strings are stepped over eight bytes at a time: put each byte that must
 * stop the step (a quote, a backslash, a control character) at every
 * offset of strings of every length around the step, among bytes of
 * multi-byte characters too, and check each verdict.
 */
START_TEST(test_string_scan_every_offset)
{
	const char *fill[] = {"x", "\xc3\xa9"};
	const char *stops[] = {"\x01", "\x1f", "\\n", "\\\"", "\""};
	const int valid[] = {0, 0, 1, 1, 0};
	char s[64];

	for (size_t f = 0; f < 2; f++) {
		for (size_t len = 1; len <= 20; len++) {
			for (size_t at = 0; at < len; at++) {
				for (size_t k = 0; k < 5; k++) {
					size_t m = quoted_run(s, fill[f], len, at, stops[k]);

					ck_assert_int_eq(valn(s, m) == 0, valid[k]);
				}
			}
		}
	}
}
END_TEST

/* The first byte of @p[0..n) that a JSON string cannot hold as it is, one byte at a time. */
static size_t plain_run_bytewise(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] != '"' && p[i] != '\\' && p[i] >= 0x20) {
		i++;
	}
	return i;
}

/*
 * The word-at-a-time scan must stop where a byte-at-a-time scan stops: two
 * bytes from either side of each boundary (0x1f/0x20, quote, backslash,
 * 0x7f/0x80, 0xff) at every pair of places in a word and its tail.
 */
START_TEST(test_plain_run_matches_bytewise)
{
	static const unsigned char edge[] = {0x00, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b,
					     0x5c, 0x5d, 0x7f, 0x80, 0x9f, 0xa0, 0xa2, 0xdc,
					     0xe2, 0xfe, 0xff, 'a'};
	const size_t ne = sizeof(edge);

	for (size_t len = 0; len <= 19; len++) {
		unsigned char *w = malloc(len ? len : 1); /* exactly @len: a read past it is caught */

		ck_assert_ptr_nonnull(w);
		for (size_t i = 0; i < len; i++) {
			for (size_t j = i; j < len; j++) {
				for (size_t a = 0; a < ne; a++) {
					for (size_t b = 0; b < ne; b++) {
						memset(w, 'q', len);
						w[i] = edge[a];
						w[j] = edge[b];
						ck_assert_uint_eq(vt_json_plain_run(w, len),
								  plain_run_bytewise(w, len));
					}
				}
			}
		}
		free(w);
	}
	ck_assert_uint_eq(vt_json_plain_run("", 0), 0);
}
END_TEST

static Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *accept = tcase_create("accept");
	TCase *refuse = tcase_create("refuse");
	TCase *nav = tcase_create("navigate");

	tcase_add_test(accept, test_accepts_scalars);
	tcase_add_test(accept, test_accepts_containers);
	tcase_add_test(accept, test_accepts_escapes);
	tcase_add_test(accept, test_accepts_valid_utf8);
	tcase_add_test(accept, test_b21_escaped_nul_accepted);
	tcase_add_test(accept, test_b21_surrogate_pair_and_raw_emoji);
	suite_add_tcase(s, accept);

	tcase_add_test(refuse, test_refuses_bad_grammar);
	tcase_add_test(refuse, test_refuses_leading_zeros);
	tcase_add_test(refuse, test_refuses_bad_escapes);
	tcase_add_test(refuse, test_b21_lone_surrogate_refused);
	tcase_add_test(refuse, test_refuses_raw_control_in_string);
	tcase_add_test(refuse, test_b21_raw_nul_refused);
	tcase_add_test(refuse, test_b13_encoded_surrogate);
	tcase_add_test(refuse, test_b13_overlong);
	tcase_add_test(refuse, test_b13_above_max);
	tcase_add_test(refuse, test_b13_truncated);
	tcase_add_test(refuse, test_b21_raw_invalid_utf8_refused);
	tcase_add_test(refuse, test_depth_limit);
	tcase_add_test(refuse, test_depth_mixed_containers);
	tcase_add_test(refuse, test_b22_hundred_thousand_brackets);
	suite_add_tcase(s, refuse);

	tcase_add_test(nav, test_parse_value_types);
	tcase_add_test(nav, test_validate_value_matches_parse);
	tcase_add_test(nav, test_members_in_order);
	tcase_add_test(nav, test_validate_members_as_walked);
	tcase_add_test(nav, test_validate_members_refuses_as_validate);
	tcase_add_test(nav, test_string_scan_every_offset);
	tcase_add_test(nav, test_plain_run_matches_bytewise);
	tcase_add_test(nav, test_members_of_empty_and_wrong_type);
	tcase_add_test(nav, test_elements);
	tcase_add_test(nav, test_key_is_with_escapes);
	tcase_add_test(nav, test_str_decode_escapes);
	tcase_add_test(nav, test_b21_surrogate_pair_decodes_to_raw);
	tcase_add_test(nav, test_str_decode_nul_refused);
	tcase_add_test(nav, test_str_decode_capacity);
	tcase_add_test(nav, test_u64_accepts);
	tcase_add_test(nav, test_b22_two_pow_53_plus_one);
	tcase_add_test(nav, test_b22_not_integers);
	tcase_add_test(nav, test_u64_overflow_and_max);
	tcase_add_test(nav, test_u64_bound_each_side);
	suite_add_tcase(s, nav);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(json_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
