/*
 * test_buf.c - the growable output buffer and its JSON string escaping.
 */
#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
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

/* Digits are made two at a time: each side of every power of ten. */
START_TEST(test_integers_every_length)
{
	char want[24];
	uint64_t p = 1;

	for (int digits = 1; digits <= 20; digits++) {
		uint64_t vs[] = {p, p - 1, p + 1, p * 9 + (p - 1)};

		for (size_t k = 0; k < 4; k++) {
			struct vt_buf b;

			if (digits == 20 && k == 3) {
				continue; /* 10^20 - 1 does not fit */
			}
			vt_buf_init(&b);
			vt_buf_u64(&b, vs[k]);
			snprintf(want, sizeof(want), "%" PRIu64, vs[k]);
			ck_assert_str_eq(text(&b), want);
			vt_buf_free(&b);
		}
		if (digits < 20) {
			p *= 10;
		}
	}
}
END_TEST

/*
 * Plain runs are found a word at a time: put each byte that needs an
 * escape at every offset of strings around a word's length, and compare
 * with the escapes made one byte at a time.
 */
START_TEST(test_json_str_escape_every_offset)
{
	const char special[] = {'"', '\\', '\n', '\x01', '\x1f', 0};
	const char *escaped[] = {"\\\"", "\\\\", "\\n", "\\u0001", "\\u001f", "\\u0000"};

	for (size_t len = 1; len <= 20; len++) {
		for (size_t at = 0; at < len; at++) {
			for (size_t k = 0; k < sizeof(special); k++) {
				char in[24], want[64];
				struct vt_buf b;

				memset(in, 'a', len);
				in[at] = special[k];
				snprintf(want, sizeof(want), "\"%.*s%s%.*s\"", (int)at, in, escaped[k],
					 (int)(len - at - 1), in + at + 1);
				vt_buf_init(&b);
				vt_buf_json_str(&b, in, len);
				ck_assert_str_eq(text(&b), want);
				vt_buf_free(&b);
			}
		}
	}
}
END_TEST

/* What fits stays in the caller's memory; growing moves it out, intact. */
START_TEST(test_borrowed_memory)
{
	char mem[16];
	struct vt_buf b;

	memset(mem, '#', sizeof(mem));
	vt_buf_init_in(&b, mem, sizeof(mem));
	vt_buf_puts(&b, "0123456789");
	ck_assert_ptr_eq(b.data, mem);
	ck_assert_str_eq(mem, "0123456789");

	vt_buf_puts(&b, "abcdefghij");
	ck_assert(!vt_buf_failed(&b));
	ck_assert_ptr_ne(b.data, mem);
	ck_assert_str_eq(b.data, "0123456789abcdefghij");
	ck_assert_str_eq(mem, "0123456789"); /* left as it was */

	vt_buf_free(&b);
	ck_assert_ptr_null(b.data);

	/* Freed while still borrowed: the caller's memory is not freed (a
	 * free of the stack would abort). */
	vt_buf_init_in(&b, mem, sizeof(mem));
	vt_buf_puts(&b, "x");
	vt_buf_free(&b);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

/* Borrowed memory too small for even the first append moves at once. */
START_TEST(test_borrowed_too_small)
{
	char mem[4];
	struct vt_buf b;

	vt_buf_init_in(&b, mem, sizeof(mem));
	vt_buf_puts(&b, "four");
	ck_assert_ptr_ne(b.data, mem);
	ck_assert_str_eq(b.data, "four");
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
	tcase_add_test(tc, test_integers_every_length);
	tcase_add_test(tc, test_json_str_plain_and_utf8);
	tcase_add_test(tc, test_json_str_escapes);
	tcase_add_test(tc, test_json_str_escape_every_offset);
	tcase_add_test(tc, test_json_str_nul_escaped);
	tcase_add_test(tc, test_json_str_empty);
	tcase_add_test(tc, test_failed_is_sticky);
	tcase_add_test(tc, test_huge_append_fails);
	tcase_add_test(tc, test_borrowed_memory);
	tcase_add_test(tc, test_borrowed_too_small);
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
