/*
 * test_envelope.c - decoding client envelopes and encoding server ones.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vartalap/error.h>

#include "envelope.h"
#include "json.h"

/* Decode a NUL-terminated literal; the struct is large, so it lives here. */
static struct vt_env env;
static const char *why;

static int dec(const char *s)
{
	return vt_env_decode(s, strlen(s), &env, &why);
}

/* A message envelope around @body. */
static int dec_body(const char *body)
{
	static char s[512]; /* env.body points into it */

	snprintf(s, sizeof(s),
	         "{\"v\":1,\"type\":\"message\",\"id\":\"c-1\",\"to\":\"bob\",\"body\":%s}", body);
	return dec(s);
}

/* A message envelope sent to @to (already quoted or any JSON). */
static int dec_to(const char *to)
{
	static char s[512]; /* env.body points into it */

	snprintf(s, sizeof(s), "{\"type\":\"message\",\"id\":\"c-1\",\"to\":%s,\"body\":1}", to);
	return dec(s);
}

/* A message envelope with client id @id (any JSON). */
static int dec_id(const char *id)
{
	static char s[512]; /* env.body points into it */

	snprintf(s, sizeof(s), "{\"type\":\"message\",\"id\":%s,\"to\":\"bob\",\"body\":1}", id);
	return dec(s);
}

/* An ack naming @ids (the inside of the array). */
static int dec_ack(const char *ids)
{
	static char s[8192];

	snprintf(s, sizeof(s), "{\"v\":1,\"type\":\"ack\",\"ids\":[%s]}", ids);
	return dec(s);
}

/* The body span of the last decode, as a C string. */
static const char *body_text(void)
{
	static char out[512];

	ck_assert_uint_lt(env.body_len, sizeof(out));
	memcpy(out, env.body, env.body_len);
	out[env.body_len] = '\0';
	return out;
}

/* ---- messages ----------------------------------------------------------- */

START_TEST(test_message_decodes)
{
	const char *s = "{\"v\":1,\"type\":\"message\",\"id\":\"c-1\",\"to\":\"bob\","
	                "\"body\":{\"text\":\"hi\",\"n\":[1,2]}}";

	ck_assert_int_eq(dec(s), 0);
	ck_assert_ptr_null(why);
	ck_assert_int_eq(env.type, VT_ENV_MESSAGE);
	ck_assert_str_eq(env.id, "c-1");
	ck_assert_str_eq(env.to, "bob");
	ck_assert_str_eq(body_text(), "{\"text\":\"hi\",\"n\":[1,2]}");
	/* The body is a span of the input, not a copy. */
	ck_assert_ptr_eq(env.body, strstr(s, "{\"text\""));
}
END_TEST

START_TEST(test_message_any_body_type)
{
	const char *bodies[] = {"\"hi\"", "42", "-1.5e3", "[]", "null", "true", "{}"};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		ck_assert_msg(dec_body(bodies[i]) == 0, "refused body %s", bodies[i]);
		ck_assert_str_eq(body_text(), bodies[i]);
	}
}
END_TEST

START_TEST(test_version_optional_and_checked)
{
	ck_assert_int_eq(dec("{\"type\":\"message\",\"id\":\"a\",\"to\":\"b\",\"body\":1}"), 0);
	ck_assert_int_eq(dec("{\"v\":2,\"type\":\"message\",\"id\":\"a\",\"to\":\"b\",\"body\":1}"),
	                 VT_EVERSION);
	ck_assert_int_eq(dec("{\"v\":0,\"type\":\"ack\",\"ids\":[\"1\"]}"), VT_EVERSION);
	ck_assert_int_eq(dec("{\"v\":1.0,\"type\":\"ack\",\"ids\":[\"1\"]}"), VT_EVERSION);
	ck_assert_int_eq(dec("{\"v\":-1,\"type\":\"ack\",\"ids\":[\"1\"]}"), VT_EVERSION);
	ck_assert_int_eq(dec("{\"v\":\"1\",\"type\":\"ack\",\"ids\":[\"1\"]}"), VT_EBADENV);
	ck_assert_str_eq(why, "v: invalid");
	ck_assert_int_eq(dec("{\"v\":null,\"type\":\"ack\",\"ids\":[\"1\"]}"), VT_EBADENV);
}
END_TEST

START_TEST(test_type_checked)
{
	ck_assert_int_eq(dec("{\"v\":1,\"id\":\"a\",\"to\":\"b\",\"body\":1}"), VT_EBADENV);
	ck_assert_str_eq(why, "missing field: type");
	ck_assert_int_eq(dec("{\"type\":\"wave\",\"id\":\"a\",\"to\":\"b\",\"body\":1}"),
	                 VT_EBADTYPE);
	ck_assert_int_eq(dec("{\"type\":\"messagexxxxxxxxxxxxxxxxxx\"}"), VT_EBADTYPE);
	ck_assert_int_eq(dec("{\"type\":\"Message\"}"), VT_EBADTYPE);
	ck_assert_int_eq(dec("{\"type\":\"mess\\u0000age\"}"), VT_EBADTYPE);
	ck_assert_int_eq(dec("{\"type\":7}"), VT_EBADENV);
	ck_assert_str_eq(why, "type: invalid");
	/* An escaped spelling of a known name is the same name. */
	ck_assert_int_eq(dec("{\"type\":\"\\u0061ck\",\"ids\":[\"1\"]}"), 0);
	ck_assert_int_eq(env.type, VT_ENV_ACK);
}
END_TEST

START_TEST(test_missing_fields_named)
{
	ck_assert_int_eq(dec("{\"type\":\"message\",\"to\":\"bob\",\"body\":1}"), VT_EBADENV);
	ck_assert_str_eq(why, "missing field: id");
	ck_assert_int_eq(dec("{\"type\":\"message\",\"id\":\"c-9\",\"body\":1}"), VT_EBADENV);
	ck_assert_str_eq(why, "missing field: to");
	ck_assert_str_eq(env.id, "c-9"); /* so the error can name the message */
	ck_assert_int_eq(dec("{\"type\":\"message\",\"id\":\"c-9\",\"to\":\"bob\"}"), VT_EBADENV);
	ck_assert_str_eq(why, "missing field: body");
	ck_assert_str_eq(env.id, "c-9");
}
END_TEST

START_TEST(test_client_id_checked)
{
	char long_id[80];
	const char *bad[] = {"\"\"", "\"a b\"", "\"a:b\"", "\"a/b\"",      "\"\xc3\xa9\"",
	                     "1",    "null",    "[\"a\"]", "\"a\\u0000b\""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(dec_id(bad[i]) == VT_EBADENV, "accepted id %s", bad[i]);
		ck_assert_str_eq(why, "id: invalid");
		ck_assert_str_eq(env.id, "");
	}

	ck_assert_int_eq(dec_id("\"A.z_0@-9\""), 0);
	snprintf(long_id, sizeof(long_id), "\"%064d\"", 0);
	ck_assert_int_eq(dec_id(long_id), 0);
	snprintf(long_id, sizeof(long_id), "\"%065d\"", 0);
	ck_assert_int_eq(dec_id(long_id), VT_EBADENV);
}
END_TEST

START_TEST(test_to_user_and_namespaced)
{
	char s[128];

	ck_assert_int_eq(dec_to("\"bob\""), 0);
	ck_assert_int_eq(dec_to("\"g:team1\""), 0);
	ck_assert_str_eq(env.to, "g:team1");
	ck_assert_int_eq(dec_to("\"group12:x\""), 0); /* 7-byte namespace */

	/* The longest: a 7-byte namespace, a colon and a 64-byte id. */
	snprintf(s, sizeof(s), "\"abcdefg:%064d\"", 0);
	ck_assert_int_eq(dec_to(s), 0);
	ck_assert_uint_eq(strlen(env.to), VT_TO_MAX);
}
END_TEST

START_TEST(test_to_refused)
{
	char s[128];
	const char *bad[] = {"\"\"",  "\":x\"",      "\"g:\"",         "\"g:a:b\"",
	                     "\":\"", "\"g x:a\"",   "\"groupxyz:x\"", "\"g:a b\"",
	                     "5",     "\"b\\u0000\""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(dec_to(bad[i]) == VT_EBADENV, "accepted to %s", bad[i]);
		ck_assert_str_eq(why, "to: invalid");
	}
	snprintf(s, sizeof(s), "\"g:%065d\"", 0);
	ck_assert_int_eq(dec_to(s), VT_EBADENV);
}
END_TEST

START_TEST(test_duplicate_keys_refused)
{
	ck_assert_int_eq(dec("{\"type\":\"message\",\"type\":\"ack\",\"ids\":[\"1\"]}"),
	                 VT_EBADENV);
	ck_assert_str_eq(why, "duplicate key");
	ck_assert_int_eq(dec("{\"type\":\"message\",\"id\":\"a\",\"to\":\"bob\",\"to\":\"eve\","
	                     "\"body\":1}"),
	                 VT_EBADENV);
	ck_assert_str_eq(why, "duplicate key");
	/* An escaped spelling of the same key is still the same key. */
	ck_assert_int_eq(dec("{\"type\":\"ack\",\"ids\":[\"1\"],\"\\u0069ds\":[\"2\"]}"),
	                 VT_EBADENV);
	ck_assert_str_eq(why, "duplicate key");
}
END_TEST

/*
 * Keys are matched by their decoded text: an escaped spelling names the same
 * member, a near miss (prefix, longer, other case, trailing NUL) names none,
 * and a known key inside a nested value is not an envelope member.
 */
START_TEST(test_key_spellings)
{
	const char *near[] = {"typ", "types", "Type", "type\\u0000"};

	ck_assert_int_eq(dec("{\"\\u0074ype\":\"typing\",\"t\\u006f\":\"bob\"}"), 0);
	ck_assert_int_eq(env.type, VT_ENV_TYPING);
	ck_assert_str_eq(env.to, "bob");

	/* Near misses name no member. */
	for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
		char text[64];

		snprintf(text, sizeof(text), "{\"%s\":\"typing\",\"to\":\"bob\"}", near[i]);
		ck_assert_int_eq(dec(text), VT_EBADENV);
		ck_assert_str_eq(why, "missing field: type");
	}
	ck_assert_int_eq(dec("{\"\":\"typing\",\"type\":\"typing\",\"t\":\"x\",\"to\":\"bob\"}"), 0);

	/* Known keys one level down are the body's business. */
	ck_assert_int_eq(dec("{\"type\":\"typing\",\"to\":\"bob\",\"x\":{\"to\":\"eve\",\"to\":1},"
			     "\"y\":[{\"type\":\"ack\"}]}"),
			 0);
	ck_assert_str_eq(env.to, "bob");

	/* The second copy may come late, escaped, or after the body. */
	ck_assert_int_eq(dec("{\"type\":\"message\",\"id\":\"a\",\"to\":\"bob\",\"body\":{},"
			     "\"\\u0074\\u006F\":\"eve\"}"),
			 VT_EBADENV);
	ck_assert_str_eq(why, "duplicate key");
	ck_assert_int_eq(dec("{\"type\":\"message\",\"id\":\"a\",\"to\":\"bob\",\"body\":1,"
			     "\"body\":[1,{\"body\":2}]}"),
			 VT_EBADENV);
	ck_assert_str_eq(why, "duplicate key");
	ck_assert_int_eq(dec("{\"v\":1,\"type\":\"typing\",\"to\":\"bob\",\"\\u0076\":1}"), VT_EBADENV);
	ck_assert_str_eq(why, "duplicate key");

	/* Malformed text is reported as such, even after a duplicate. */
	ck_assert_int_eq(dec("{\"to\":\"a\",\"to\":\"b\",\"type\":\"typing\""), VT_EBADJSON);
	ck_assert_str_eq(why, "malformed JSON");
}
END_TEST

START_TEST(test_unknown_members_ignored)
{
	ck_assert_int_eq(dec("{\"x\":1,\"x\":2,\"type\":\"message\",\"id\":\"a\",\"to\":\"b\","
	                     "\"body\":1,\"from\":\"mallory\"}"),
	                 0);
}
END_TEST

START_TEST(test_not_an_object)
{
	ck_assert_int_eq(dec("[]"), VT_EBADENV);
	ck_assert_str_eq(why, "not an object");
	ck_assert_int_eq(dec("\"message\""), VT_EBADENV);
	ck_assert_int_eq(dec(""), VT_EBADJSON);
	ck_assert_int_eq(dec("{\"type\":\"message\""), VT_EBADJSON);
	ck_assert_str_eq(why, "malformed JSON");
	/* A NULL reason pointer is allowed. */
	ck_assert_int_eq(vt_env_decode("[]", 2, &env, NULL), VT_EBADENV);
}
END_TEST

/* ---- field cases -------------------------------------------------------- */

/* B21 (a): the body keeps its escaped NUL and is re-sent with it intact. */
START_TEST(test_b21_nul_body_kept_and_reescaped)
{
	struct vt_record rec = {.id = 7,
	                        .kind = VT_KIND_MESSAGE,
	                        .from = "alice",
	                        .to = "bob",
	                        .cid = "c-1",
	                        .ts = 1};
	struct vt_buf b;

	ck_assert_int_eq(dec_body("\"a\\u0000b\""), 0);
	ck_assert_uint_eq(env.body_len, 10);
	ck_assert_str_eq(body_text(), "\"a\\u0000b\"");

	rec.body = env.body;
	rec.body_len = env.body_len;
	vt_buf_init(&b);
	vt_env_encode_record(&b, &rec);
	ck_assert_ptr_nonnull(strstr(b.data, ",\"body\":\"a\\u0000b\"}"));
	vt_buf_free(&b);
}
END_TEST

/* B21 (b): the escaped pair and the raw 4-byte form both pass unchanged. */
START_TEST(test_b21_surrogate_pair_and_raw)
{
	ck_assert_int_eq(dec_body("\"\\ud83d\\ude00\""), 0);
	ck_assert_str_eq(body_text(), "\"\\ud83d\\ude00\"");
	ck_assert_int_eq(dec_body("\"\xf0\x9f\x98\x80\""), 0);
	ck_assert_str_eq(body_text(), "\"\xf0\x9f\x98\x80\"");
}
END_TEST

/* B21 (c): a lone surrogate escape anywhere refuses the envelope. */
START_TEST(test_b21_lone_surrogate_body)
{
	ck_assert_int_eq(dec_body("\"\\ud800\""), VT_EBADJSON);
	ck_assert_int_eq(dec_body("{\"t\":\"x\\udfff\"}"), VT_EBADJSON);
}
END_TEST

/* B21 (d) and (e): raw NUL and raw invalid UTF-8 in the text. */
START_TEST(test_b21_raw_nul_and_bad_utf8)
{
	const char nul[] = "{\"type\":\"message\",\"id\":\"c\",\"to\":\"b\",\"body\":\"a\0\"}";

	ck_assert_int_eq(vt_env_decode(nul, sizeof(nul) - 1, &env, &why), VT_EBADJSON);
	ck_assert_int_eq(dec_body("\"\xff\xfe\""), VT_EUTF8);
	ck_assert_str_eq(why, "invalid UTF-8");
	ck_assert_int_eq(dec_body("\"\xed\xa0\x80\""), VT_EUTF8);
	ck_assert_int_eq(dec_body("\"\xc0\xaf\""), VT_EUTF8);
	ck_assert_int_eq(dec_body("\"\xf4\x90\x80\x80\""), VT_EUTF8);
	ck_assert_int_eq(dec_body("\"\xe2\x82\""), VT_EUTF8);
}
END_TEST

/* B22 (a): a body of 100,000 '[' is refused at once. */
START_TEST(test_b22_deep_body)
{
	const char *head = "{\"type\":\"message\",\"id\":\"c\",\"to\":\"b\",\"body\":";
	size_t hl = strlen(head);
	size_t n = 100000;
	char *s = malloc(hl + n);
	clock_t t0;

	ck_assert_ptr_nonnull(s);
	memcpy(s, head, hl);
	memset(s + hl, '[', n);
	t0 = clock();
	ck_assert_int_eq(vt_env_decode(s, hl + n, &env, &why), VT_EBADJSON);
	ck_assert_msg(clock() - t0 < CLOCKS_PER_SEC, "too slow");
	free(s);
}
END_TEST

/* B22 (b): 2^53 + 1 as a server id is out of range. */
START_TEST(test_b22_id_above_2_53)
{
	ck_assert_int_eq(dec_ack("\"9007199254740993\""), VT_EBADENV);
	ck_assert_str_eq(why, "ids: invalid");
	ck_assert_int_eq(dec_ack("\"9007199254740992\""), VT_EBADENV);
	ck_assert_int_eq(dec_ack("\"9007199254740991\""), 0);
	ck_assert_uint_eq(env.ids[0], VT_ID_LIMIT);
}
END_TEST

/* B22 (c): 1e400, -0 and 1.5 are not integers where one is expected. */
START_TEST(test_b22_not_integers)
{
	ck_assert_int_eq(dec_ack("\"1e400\""), VT_EBADENV);
	ck_assert_int_eq(dec_ack("\"-0\""), VT_EBADENV);
	ck_assert_int_eq(dec_ack("\"1.5\""), VT_EBADENV);
	ck_assert_int_eq(dec_ack("1e400"), VT_EBADENV);
	ck_assert_int_eq(dec_ack("-0"), VT_EBADENV);
	ck_assert_int_eq(dec_ack("1.5"), VT_EBADENV);
	ck_assert_int_eq(dec("{\"v\":1e400,\"type\":\"ack\",\"ids\":[\"1\"]}"), VT_EVERSION);
	ck_assert_int_eq(dec("{\"v\":1.5,\"type\":\"ack\",\"ids\":[\"1\"]}"), VT_EVERSION);
}
END_TEST

/* ---- acks --------------------------------------------------------------- */

START_TEST(test_ack_decodes)
{
	ck_assert_int_eq(dec("{\"v\":1,\"type\":\"ack\",\"ids\":[\"42\",\"43\"]}"), 0);
	ck_assert_int_eq(env.type, VT_ENV_ACK);
	ck_assert_uint_eq(env.nids, 2);
	ck_assert_uint_eq(env.ids[0], 42);
	ck_assert_uint_eq(env.ids[1], 43);
	ck_assert_int_eq(dec_ack("\"\\u0031\""), 0); /* "1", escaped */
	ck_assert_uint_eq(env.ids[0], 1);
	ck_assert_int_eq(dec_ack("\"1\\u00302\""), 0); /* "102": an escape inside */
	ck_assert_uint_eq(env.ids[0], 102);
	ck_assert_int_eq(dec_ack("\"9007199254740991\""), 0); /* the largest id */
	ck_assert_uint_eq(env.ids[0], UINT64_C(9007199254740991));
	ck_assert_int_eq(dec_ack("\"1000000000000000\""), 0); /* 16 digits */
	ck_assert_uint_eq(env.ids[0], UINT64_C(1000000000000000));
}
END_TEST

START_TEST(test_ack_ids_refused)
{
	const char *bad[] = {"\"0\"",
	                     "\"01\"",
	                     "\"-1\"",
	                     "\"+1\"",
	                     "\"\"",
	                     "\" 1\"",
	                     "\"1 \"",
	                     "\"0x1\"",
	                     "42",
	                     "null",
	                     "[\"1\"]",
	                     "\"1\\u0000\"",
	                     "\"9007199254740992\"",  /* one past the largest id */
	                     "\"00000000000000001\"", /* 17 digits */
	                     "\"\\u0030\"",         /* "0", escaped */
	                     "\"1\\u002e5\"",       /* "1.5", escaped */
	                     "\"99999999999999999999\""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(dec_ack(bad[i]) == VT_EBADENV, "accepted id %s", bad[i]);
		ck_assert_str_eq(why, "ids: invalid");
	}
}
END_TEST

START_TEST(test_ack_count_bounds)
{
	char ids[VT_ACK_MAX * 8 + 16];
	size_t n = 0;

	ck_assert_int_eq(dec_ack(""), VT_EBADENV);
	ck_assert_str_eq(why, "ids: empty");
	ck_assert_int_eq(dec("{\"type\":\"ack\"}"), VT_EBADENV);
	ck_assert_str_eq(why, "missing field: ids");
	ck_assert_int_eq(dec("{\"type\":\"ack\",\"ids\":\"1\"}"), VT_EBADENV);
	ck_assert_str_eq(why, "ids: invalid");

	for (int i = 1; i <= VT_ACK_MAX; i++) {
		n += (size_t)snprintf(ids + n, sizeof(ids) - n, "%s\"%d\"", i > 1 ? "," : "", i);
	}
	ck_assert_int_eq(dec_ack(ids), 0);
	ck_assert_uint_eq(env.nids, VT_ACK_MAX);
	ck_assert_uint_eq(env.ids[VT_ACK_MAX - 1], VT_ACK_MAX);

	snprintf(ids + n, sizeof(ids) - n, ",\"1\"");
	ck_assert_int_eq(dec_ack(ids), VT_EBADENV);
	ck_assert_str_eq(why, "ids: too many");
}
END_TEST

START_TEST(test_decode_ids_rest_body)
{
	uint64_t ids[VT_ACK_MAX];
	const char *s;

	s = "{\"ids\":[\"5\",\"6\",\"7\"]}";
	ck_assert_int_eq(vt_env_decode_ids(s, strlen(s), ids, &why), 3);
	ck_assert_uint_eq(ids[2], 7);
	s = "{}";
	ck_assert_int_eq(vt_env_decode_ids(s, strlen(s), ids, &why), VT_EBADENV);
	s = "{\"ids\":[]}";
	ck_assert_int_eq(vt_env_decode_ids(s, strlen(s), ids, &why), VT_EBADENV);
	s = "{\"ids\":[\"1\"],\"ids\":[\"2\"]}";
	ck_assert_int_eq(vt_env_decode_ids(s, strlen(s), ids, &why), VT_EBADENV);
	ck_assert_str_eq(why, "duplicate key");
	s = "[\"1\"]";
	ck_assert_int_eq(vt_env_decode_ids(s, strlen(s), ids, &why), VT_EBADENV);
	s = "{\"ids\":[\"1\"]";
	ck_assert_int_eq(vt_env_decode_ids(s, strlen(s), ids, &why), VT_EBADJSON);
}
END_TEST

/* ---- encoders ----------------------------------------------------------- */

START_TEST(test_encode_record)
{
	struct vt_record rec = {.id = 42,
	                        .kind = VT_KIND_MESSAGE,
	                        .from = "alice",
	                        .to = "bob",
	                        .cid = "c-1",
	                        .ts = 1700000000000,
	                        .body = "{\"t\":\"hi\"}",
	                        .body_len = 10};
	struct vt_buf b;

	vt_buf_init(&b);
	vt_env_encode_record(&b, &rec);
	ck_assert_int_eq(vt_buf_failed(&b), 0);
	ck_assert_str_eq(b.data, "{\"v\":1,\"type\":\"message\",\"id\":\"42\",\"from\":\"alice\","
	                         "\"to\":\"bob\",\"cid\":\"c-1\",\"ts\":1700000000000,"
	                         "\"body\":{\"t\":\"hi\"}}");
	ck_assert_int_eq(vt_json_validate(b.data, b.len, VT_JSON_MAX_DEPTH), 0);

	vt_buf_reset(&b);
	rec.kind = VT_KIND_DELIVERED;
	rec.id = VT_ID_LIMIT;
	rec.cid = "";
	rec.body = "{\"device\":\"\",\"refs\":[{\"ref\":\"41\",\"cid\":\"c-0\"}]}";
	rec.body_len = strlen(rec.body);
	vt_env_encode_record(&b, &rec);
	ck_assert_str_eq(b.data, "{\"v\":1,\"type\":\"delivered\",\"id\":\"9007199254740991\","
	                         "\"from\":\"alice\",\"to\":\"bob\","
	                         "\"ts\":1700000000000,\"body\":{\"device\":\"\","
	                         "\"refs\":[{\"ref\":\"41\",\"cid\":\"c-0\"}]}}");
	vt_buf_free(&b);
}
END_TEST

START_TEST(test_encode_accepted)
{
	struct vt_buf b;

	vt_buf_init(&b);
	vt_env_encode_accepted(&b, "c-1", 42, 1700000000123);
	ck_assert_str_eq(b.data, "{\"v\":1,\"type\":\"accepted\",\"ref\":\"c-1\",\"id\":\"42\","
	                         "\"ts\":1700000000123}");
	vt_buf_free(&b);
}
END_TEST

START_TEST(test_encode_error)
{
	struct vt_buf b;

	vt_buf_init(&b);
	vt_env_encode_error(&b, VT_EBADENV, "missing field: to", "c-1");
	ck_assert_str_eq(b.data, "{\"v\":1,\"type\":\"error\",\"code\":\"bad_envelope\","
	                         "\"reason\":\"missing field: to\",\"ref\":\"c-1\"}");

	vt_buf_reset(&b);
	vt_env_encode_error(&b, VT_EBADJSON, "malformed JSON", NULL);
	ck_assert_str_eq(b.data, "{\"v\":1,\"type\":\"error\",\"code\":\"bad_json\","
	                         "\"reason\":\"malformed JSON\"}");

	vt_buf_reset(&b);
	vt_env_encode_error(&b, VT_ERATE, NULL, "");
	ck_assert_str_eq(b.data, "{\"v\":1,\"type\":\"error\",\"code\":\"rate_limited\","
	                         "\"reason\":\"too many requests; slow down\"}");
	vt_buf_free(&b);
}
END_TEST

START_TEST(test_kind_names)
{
	ck_assert_str_eq(vt_env_kind_name(VT_KIND_MESSAGE), "message");
	ck_assert_str_eq(vt_env_kind_name(VT_KIND_DELIVERED), "delivered");
	ck_assert_ptr_nonnull(vt_env_kind_name(99));
}
END_TEST

static Suite *envelope_suite(void)
{
	Suite *s = suite_create("envelope");
	TCase *msg = tcase_create("message");
	TCase *field = tcase_create("field cases");
	TCase *ack = tcase_create("ack");
	TCase *enc = tcase_create("encode");

	tcase_add_test(msg, test_message_decodes);
	tcase_add_test(msg, test_message_any_body_type);
	tcase_add_test(msg, test_version_optional_and_checked);
	tcase_add_test(msg, test_type_checked);
	tcase_add_test(msg, test_missing_fields_named);
	tcase_add_test(msg, test_client_id_checked);
	tcase_add_test(msg, test_to_user_and_namespaced);
	tcase_add_test(msg, test_to_refused);
	tcase_add_test(msg, test_duplicate_keys_refused);
	tcase_add_test(msg, test_key_spellings);
	tcase_add_test(msg, test_unknown_members_ignored);
	tcase_add_test(msg, test_not_an_object);
	suite_add_tcase(s, msg);

	tcase_add_test(field, test_b21_nul_body_kept_and_reescaped);
	tcase_add_test(field, test_b21_surrogate_pair_and_raw);
	tcase_add_test(field, test_b21_lone_surrogate_body);
	tcase_add_test(field, test_b21_raw_nul_and_bad_utf8);
	tcase_add_test(field, test_b22_deep_body);
	tcase_add_test(field, test_b22_id_above_2_53);
	tcase_add_test(field, test_b22_not_integers);
	suite_add_tcase(s, field);

	tcase_add_test(ack, test_ack_decodes);
	tcase_add_test(ack, test_ack_ids_refused);
	tcase_add_test(ack, test_ack_count_bounds);
	tcase_add_test(ack, test_decode_ids_rest_body);
	suite_add_tcase(s, ack);

	tcase_add_test(enc, test_encode_record);
	tcase_add_test(enc, test_encode_accepted);
	tcase_add_test(enc, test_encode_error);
	tcase_add_test(enc, test_kind_names);
	suite_add_tcase(s, enc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(envelope_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
