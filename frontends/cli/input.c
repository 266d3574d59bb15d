/*
 * frontends/cli/input.c - the lines the user types (or pipes in), one
 * command or message each.
 *
 * A line may be as long as the longest message vartalapd can be configured
 * to take, so that the server, not the client, says what is too large for
 * it (error too_large). A line longer still is not sent: an error line says
 * so, the exit status becomes 1, and reading goes on after its newline.
 *
 * Each read is searched for newlines where it lies, before its bytes join
 * the line being gathered, so a long line that arrives in many small reads
 * costs time in proportion to its length, and no more of it is kept than a
 * line may hold. A line ends at a newline; a carriage return just before it
 * (CRLF) is not part of the line, any other byte is, NUL included.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/frontend.h"
#include "cli.h"

#define LINE_MAX_BYTES VT_FE_MAX_MESSAGE_CAP

/* The most bytes taken from stdin at a time. */
#define READ_BYTES (1 << 16)

static void say_too_long(struct cli *c)
{
	printf("error too_long: a line over %u bytes was not sent\n", LINE_MAX_BYTES);
	fflush(stdout);
	c->status = 1;
}

/* Run the line gathered in c->in (its newline not included) and empty it. */
static void take_line(struct cli *c)
{
	size_t len = evbuffer_get_length(c->in);
	char *line;

	/* A NUL after the line: commands read it as a string. */
	line = evbuffer_add(c->in, "", 1) == 0 ? (char *)evbuffer_pullup(c->in, -1) : NULL;
	if (line == NULL) {
		printf("error out_of_memory: a line of %zu bytes was not sent\n", len);
		c->status = 1;
	} else {
		if (len > 0 && line[len - 1] == '\r') {
			line[--len] = '\0';
		}
		if (len > LINE_MAX_BYTES) {
			say_too_long(c);
		} else {
			cli_command(c, line, len);
		}
	}
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	fflush(stdout);
}

/*
 * Add @n bytes read from stdin to the line being gathered, running each line
 * they complete. A line may hold LINE_MAX_BYTES and the carriage return of a
 * CRLF; past that, what it has is dropped and the rest of it skipped.
 */
static void add_bytes(struct cli *c, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t len = nl != NULL ? (size_t)(nl - p) : n;

		if (!c->in_skipping) {
			if (evbuffer_get_length(c->in) + len > (size_t)LINE_MAX_BYTES + 1) {
				say_too_long(c);
				c->in_skipping = 1;
			} else if (evbuffer_add(c->in, p, len) != 0) {
				printf("error out_of_memory: a line was not sent\n");
				c->status = 1;
				c->in_skipping = 1;
			}
			if (c->in_skipping) {
				evbuffer_drain(c->in, evbuffer_get_length(c->in));
			}
		}
		if (nl != NULL) {
			if (c->in_skipping) {
				c->in_skipping = 0;
			} else {
				take_line(c);
			}
			len++;
		}
		p += len;
		n -= len;
	}
}

int cli_input_read(struct cli *c, evutil_socket_t fd)
{
	static char buf[READ_BYTES];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
		return 1; /* nothing this time; not the end */
	}
	if (n > 0) {
		add_bytes(c, buf, (size_t)n);
	} else if (evbuffer_get_length(c->in) > 0 && !c->in_skipping) {
		/* EOF: a last line without its newline still counts. */
		take_line(c);
	}
	return (int)n;
}
