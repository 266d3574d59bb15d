/*
 * test_cli_input.c - how vartalap-cli cuts its standard input into lines
 * (frontends/cli/input.c): the longest line, CRLF, NUL bytes, a line too long
 * to send, the end of input, and a long line that comes in small reads.
 * Bytes go through a pipe; the lines are recorded instead of run.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../frontends/cli/cli.h"
#include "../../frontends/common/frontend.h"
#include "util.h"

#define MAX_LINE VT_FE_MAX_MESSAGE_CAP

/* The lines cli_command got: their lengths, and the first bytes of each. */
#define KEEP 32
static struct {
	size_t n;
	size_t len[16];
	char head[16][KEEP];
} got;

void cli_command(struct cli *c, char *line, size_t len)
{
	(void)c;
	ck_assert_uint_lt(got.n, 16);
	ck_assert_int_eq(line[len], '\0');
	got.len[got.n] = len;
	memcpy(got.head[got.n], line, len < KEEP ? len : KEEP);
	got.n++;
}

static struct cli cli;
static int fds[2];

static void setup(void)
{
	memset(&got, 0, sizeof(got));
	memset(&cli, 0, sizeof(cli));
	cli.in = evbuffer_new();
	ck_assert_ptr_nonnull(cli.in);
	ck_assert_int_eq(pipe(fds), 0);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
}

static void teardown(void)
{
	evbuffer_free(cli.in);
	close(fds[0]);
	if (fds[1] >= 0) {
		close(fds[1]);
	}
}

/* Write @len bytes of @p, reading as the pipe fills; every read goes on. */
static void feed(const void *p, size_t len)
{
	const char *b = p;

	while (len > 0) {
		ssize_t n = write(fds[1], b, len < 4096 ? len : 4096);

		ck_assert_int_gt(n, 0);
		b += n;
		len -= (size_t)n;
		ck_assert_int_gt(cli_input_read(&cli, fds[0]), 0);
	}
}

/* @n copies of byte @ch. */
static void feed_run(int ch, size_t n)
{
	static char block[1 << 16];

	memset(block, ch, sizeof(block));
	while (n > 0) {
		size_t k = n < sizeof(block) ? n : sizeof(block);

		feed(block, k);
		n -= k;
	}
}

/* Close the pipe: the reader sees the end of input. */
static void end_input(void)
{
	close(fds[1]);
	fds[1] = -1;
	ck_assert_int_eq(cli_input_read(&cli, fds[0]), 0);
}

/* Line @i is @len bytes long and starts with the bytes of literal @head. */
#define expect_line(i, head, len) expect_head(i, head, sizeof(head) - 1, len)

static void expect_head(size_t i, const char *head, size_t head_len, size_t len)
{
	ck_assert_uint_gt(got.n, i);
	ck_assert_uint_eq(got.len[i], len);
	ck_assert_uint_le(head_len, KEEP);
	ck_assert_int_eq(memcmp(got.head[i], head, head_len), 0);
}

START_TEST(lines_crlf_and_nul)
{
	static const char text[] = "one\ntwo\r\nin\rside\nnul\0byte\n\nlast";

	feed(text, sizeof(text) - 1);
	ck_assert_uint_eq(got.n, 5);
	expect_line(0, "one", 3);
	expect_line(1, "two", 3);
	expect_line(2, "in\rside", 7);
	expect_line(3, "nul\0byte", 8);
	expect_line(4, "", 0);
	end_input();
	ck_assert_uint_eq(got.n, 6);
	expect_line(5, "last", 4);
	ck_assert_int_eq(cli.status, 0);
}
END_TEST

/* The longest line is taken, with LF or CRLF; a byte more is not. */
START_TEST(longest_line)
{
	feed_run('x', MAX_LINE);
	feed("\n", 1);
	feed_run('y', MAX_LINE);
	feed("\r\n", 2);
	ck_assert_uint_eq(got.n, 2);
	expect_line(0, "xxxx", MAX_LINE);
	expect_line(1, "yyyy", MAX_LINE);
	ck_assert_int_eq(cli.status, 0);

	feed_run('z', MAX_LINE + 1);
	feed("\r\nafter\n", 8);
	ck_assert_uint_eq(got.n, 3);
	expect_line(2, "after", 5);
	ck_assert_int_eq(cli.status, 1);
	feed_run('w', MAX_LINE + 1);
	feed("\nafter\n", 7);
	ck_assert_uint_eq(got.n, 4);
	expect_line(3, "after", 5);
}
END_TEST

/* A line too long is dropped as it comes, not kept whole, and what follows
 * its newline is read; at the end of input its rest is no line either. */
START_TEST(too_long_is_dropped_as_it_comes)
{
	feed_run('q', MAX_LINE + 2);
	ck_assert_int_eq(cli.status, 1);
	feed_run('q', 3 << 20);
	ck_assert_uint_le(evbuffer_get_length(cli.in), 1u << 16);
	feed("\n/to bob\nrest", 13);
	ck_assert_uint_eq(got.n, 1);
	expect_line(0, "/to bob", 7);
	feed_run('r', MAX_LINE);
	end_input();
	ck_assert_uint_eq(got.n, 1);

	/* ...while a last line short enough, without its newline, is one. */
	teardown();
	setup();
	feed_run('s', MAX_LINE);
	end_input();
	ck_assert_uint_eq(got.n, 1);
	expect_line(0, "ssss", MAX_LINE);
	ck_assert_int_eq(cli.status, 0);
}
END_TEST

/*
 * A line that arrives in many small reads costs time in proportion to its
 * length: 16 MiB in reads of 64 bytes each, 262,144 of them, takes well under
 * a second of CPU (mostly the system calls), even under the sanitizers;
 * walking the buffered line from its start on each read takes about 8 s,
 * optimized.
 */
START_TEST(small_reads_take_linear_time)
{
	char piece[64];
	clock_t t0 = clock();
	double cpu;

	memset(piece, 'p', sizeof(piece));
	for (size_t sent = 0; sent < MAX_LINE; sent += sizeof(piece)) {
		ck_assert_int_eq(write(fds[1], piece, sizeof(piece)), (ssize_t)sizeof(piece));
		ck_assert_int_gt(cli_input_read(&cli, fds[0]), 0);
	}
	feed("\n", 1);
	cpu = (double)(clock() - t0) / CLOCKS_PER_SEC;
	ck_assert_uint_eq(got.n, 1);
	expect_line(0, "pppp", MAX_LINE);
	ck_assert_msg(cpu < 4, "16 MiB in 64-byte reads took %.1f s of CPU", cpu);
}
END_TEST

static Suite *cli_input_suite(void)
{
	Suite *s = suite_create("cli_input");
	TCase *tc = tcase_create("input");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, lines_crlf_and_nul);
	tcase_add_test(tc, longest_line);
	tcase_add_test(tc, too_long_is_dropped_as_it_comes);
	tcase_add_test(tc, small_reads_take_linear_time);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(cli_input_suite());
}
