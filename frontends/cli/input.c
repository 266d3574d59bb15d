/*
 * frontends/cli/input.c - the lines the user types (or pipes in), one
 * command or message each.
 *
 * A line may be as long as the longest message vartalapd can be configured
 * to take, so that the server, not the client, says what is too large for
 * it (error too_large). A line longer still is not sent: an error line says
 * so, the exit status becomes 1, and reading goes on after its newline.
 * Where the search for a newline stopped is kept, so a long line that
 * arrives in many reads is scanned once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/frontend.h"
#include "cli.h"

#define LINE_MAX_BYTES VT_FE_MAX_MESSAGE_CAP

/* The offset of the next newline in c->in at or after c->in_scanned, or -1. */
static ssize_t find_newline(struct cli *c)
{
	struct evbuffer_ptr from, nl;
	size_t len = evbuffer_get_length(c->in);

	if (c->in_scanned >= len ||
	    evbuffer_ptr_set(c->in, &from, c->in_scanned, EVBUFFER_PTR_SET) != 0) {
		c->in_scanned = len;
		return -1;
	}
	nl = evbuffer_search(c->in, "\n", 1, &from);
	if (nl.pos < 0) {
		c->in_scanned = len;
		return -1;
	}
	return nl.pos;
}

/* Take the first @len bytes of c->in, and @skip more, as one line: run it. */
static void take_line(struct cli *c, size_t len, size_t skip)
{
	char *line = malloc(len + 1);

	if (line == NULL) {
		printf("error out_of_memory: a line of %zu bytes was not sent\n", len);
		c->status = 1;
		evbuffer_drain(c->in, len + skip);
	} else {
		evbuffer_remove(c->in, line, len);
		evbuffer_drain(c->in, skip);
		line[len] = '\0';
		line[strcspn(line, "\r")] = '\0';
		cli_command(c, line);
		free(line);
	}
	c->in_scanned = 0;
	fflush(stdout);
}

/* Drop the rest of a line too long to send, up to its newline if it came. */
static void skip_long_line(struct cli *c)
{
	ssize_t nl = find_newline(c);

	evbuffer_drain(c->in, nl >= 0 ? (size_t)nl + 1 : evbuffer_get_length(c->in));
	c->in_scanned = 0;
	c->in_skipping = nl < 0;
}

static void say_too_long(struct cli *c)
{
	printf("error too_long: a line over %u bytes was not sent\n", LINE_MAX_BYTES);
	fflush(stdout);
	c->status = 1;
}

int cli_input_read(struct cli *c, evutil_socket_t fd)
{
	int n = evbuffer_read(c->in, fd, 1 << 16);
	ssize_t nl;

	if (c->in_skipping) {
		skip_long_line(c);
	}
	while (!c->in_skipping && (nl = find_newline(c)) >= 0) {
		if ((size_t)nl > LINE_MAX_BYTES) {
			say_too_long(c);
			evbuffer_drain(c->in, (size_t)nl + 1);
			c->in_scanned = 0;
		} else {
			take_line(c, (size_t)nl, 1);
		}
	}

	/* No newline yet, and already too long: drop it as it comes. */
	if (!c->in_skipping && evbuffer_get_length(c->in) > LINE_MAX_BYTES) {
		say_too_long(c);
		skip_long_line(c);
	}
	if (n <= 0 && evbuffer_get_length(c->in) > 0 && !c->in_skipping) {
		/* EOF: a last line without its newline still counts. */
		take_line(c, evbuffer_get_length(c->in), 0);
	}
	return n;
}
