/*
 * test_buf.c - the growable output buffer and its JSON string escaping.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* The buffer's contents as a C string, "" when nothing was appended. */
static const char *text(const struct vt_buf *b)
{
	return b->len > 0 ? b->data : "";
}

START_TEST(test_init_is_empty)
{
	struct vt_buf b;

	vt_buf_init(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_ptr_null(b.data);
	ck_assert_int_eq(vt_buf_failed(&b), 0);
	vt_buf_free(&b);
	vt_buf_free(&b); /* freeing twice is harmless */
}
END_TEST

START_TEST(test_append_and_terminate)
{
	struct vt_buf b;

	vt_buf_init(&b);
	vt_buf_puts(&b, "ab");
	vt_buf_putc(&b, 'c');
	vt_buf_append(&b, "d\0e", 3);
	ck_assert_uint_eq(b.len, 6);
	ck_assert_mem_eq(b.data, "abcd\0e", 6);
	ck_assert_int_eq(b.data[b.len], '\0');
	vt_buf_free(&b);
}
END_TEST

START_TEST(test_grows_past_many_reallocs)
{
	struct vt_buf b;

	vt_buf_init(&b);
	for (int i = 0; i < 100000; i++) {
		vt_buf_putc(&b, (char)('a' + i % 26));
	}
	ck_assert_uint_eq(b.len, 100000);
	ck_assert_uint_ge(b.cap, b.len + 1);
	ck_assert_int_eq(b.data[99999], 'a' + 99999 % 26);
	ck_assert_int_eq(b.data[100000], '\0');
	ck_assert_int_eq(vt_buf_failed(&b), 0);
	vt_buf_free(&b);
}
END_TEST

START_TEST(test_reset_keeps_storage)
{
	struct vt_buf b;
	char *before;

	vt_buf_init(&b);
	vt_buf_puts(&b, "hello");
	before = b.data;
	vt_buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_ptr_eq(b.data, before);
	vt_buf_puts(&b, "x");
	ck_assert_str_eq(b.data, "x");
	vt_buf_free(&b);
}
END_TEST

START_TEST(test_integers)
{
	struct vt_buf b;

	vt_buf_init(&b);
	vt_buf_u64(&b, 0);
	vt_buf_putc(&b, ' ');
	vt_buf_u64(&b, UINT64_MAX);
	vt_buf_putc(&b, ' ');
	vt_buf_i64(&b, -42);
	vt_buf_putc(&b, ' ');
	vt_buf_i64(&b, INT64_MIN);
	vt_buf_putc(&b, ' ');
	vt_buf_i64(&b, INT64_MAX);
	ck_assert_str_eq(text(&b),
	                 "0 18446744073709551615 -42 -9223372036854775808 9223372036854775807");
	vt_buf_free(&b);
}
END_TEST

START_TEST(test_json_str_plain_and_utf8)
{
	struct vt_buf b;
	const char *s = "h\xc3\xa9llo \xf0\x9f\x98\x80/";

	vt_buf_init(&b);
	vt_buf_json_str(&b, s, strlen(s));
	/* Bytes >= 0x80 and '/' are copied as they are. */
	ck_assert_str_eq(text(&b), "\"h\xc3\xa9llo \xf0\x9f\x98\x80/\"");
	vt_buf_free(&b);
}
END_TEST

START_TEST(test_json_str_escapes)
{
	struct vt_buf b;
	const char s[] = "q\"b\\n\nr\rt\tb\bf\fe\x1b\x01\x7f";

	vt_buf_init(&b);
	vt_buf_json_str(&b, s, sizeof(s) - 1);
	ck_assert_str_eq(text(&b), "\"q\\\"b\\\\n\\nr\\rt\\tb\\bf\\fe\\u001b\\u0001\x7f\"");
	vt_buf_free(&b);
}
END_TEST

/* B21 (a): a string holding U+0000 is escaped, never cut at the NUL. */
START_TEST(test_json_str_nul_escaped)
{
	struct vt_buf b;

	vt_buf_init(&b);
	vt_buf_json_str(&b, "a\0b", 3);
	ck_assert_uint_eq(b.len, 10);
	ck_assert_str_eq(text(&b), "\"a\\u0000b\"");
	vt_buf_free(&b);
}
END_TEST

START_TEST(test_json_str_empty)
{
	struct vt_buf b;

	vt_buf_init(&b);
	vt_buf_json_str(&b, "", 0);
	ck_assert_str_eq(text(&b), "\"\"");
	vt_buf_free(&b);
}
END_TEST

/* A buffer that failed stays failed, ignores appends, and reset clears it. */
START_TEST(test_failed_is_sticky)
{
	struct vt_buf b;

	vt_buf_init(&b);
	vt_buf_puts(&b, "abc");
	b.failed = 1;
	vt_buf_puts(&b, "def");
	ck_assert_uint_eq(b.len, 3);
	ck_assert_int_ne(vt_buf_failed(&b), 0);
	vt_buf_reset(&b);
	ck_assert_int_eq(vt_buf_failed(&b), 0);
	vt_buf_free(&b);
}
END_TEST

/* A length that cannot fit in memory fails cleanly rather than wrapping. */
START_TEST(test_huge_append_fails)
{
	/* Read at run time, as a length is: a constant this large makes the
	 * compiler warn about the copy it can see but never reaches. */
	volatile size_t huge = SIZE_MAX - 1;
	struct vt_buf b;

	vt_buf_init(&b);
	vt_buf_puts(&b, "abc");
	vt_buf_append(&b, "x", huge);
	ck_assert_int_ne(vt_buf_failed(&b), 0);
	ck_assert_uint_eq(b.len, 3);
	vt_buf_free(&b);
}
END_TEST

static Suite *buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_init_is_empty);
	tcase_add_test(tc, test_append_and_terminate);
	tcase_add_test(tc, test_grows_past_many_reallocs);
	tcase_add_test(tc, test_reset_keeps_storage);
	tcase_add_test(tc, test_integers);
	tcase_add_test(tc, test_json_str_plain_and_utf8);
	tcase_add_test(tc, test_json_str_escapes);
	tcase_add_test(tc, test_json_str_nul_escaped);
	tcase_add_test(tc, test_json_str_empty);
	tcase_add_test(tc, test_failed_is_sticky);
	tcase_add_test(tc, test_huge_append_fails);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(buf_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
