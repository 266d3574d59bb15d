/*
 * frontends/cli/events.h - reading what the server sends, and printing it
 * one line each.
 */
#ifndef VARTALAP_CLI_EVENTS_H
#define VARTALAP_CLI_EVENTS_H

#include <stddef.h>

/* What the client needs of an event to act on it. */
struct vt_cli_event {
	char type[32];
	char id[32]; /* server id ("" when none) */
	/* A user id (64 bytes at most) or a group id, "g:" and a user id, as a
	 * group's receipt is from: 72 bytes at most (a namespace of up to 7). */
	char from[73];
	char to[73];
	char ref[65];  /* the client id an answer is for */
	char code[32]; /* of an error */
	int owed;      /* a message, receipt or group event to ack, id a server id */
};

/*
 * Read the envelope @text (@len bytes) into @e. Returns 0, or -1 (after
 * printing an error line) when it is not a JSON object.
 */
int vt_cli_event_parse(const char *text, size_t len, struct vt_cli_event *e);

/*
 * Print the envelope @text, read into @e by vt_cli_event_parse(), on stdout:
 * one line, or for a `delivered` receipt one per message it names.
 */
void vt_cli_event_print(const char *text, size_t len, const struct vt_cli_event *e);

/*
 * 1 when @e is an error that says nothing was taken and the same envelope
 * (same client id) should be sent again later: rate_limited, storage_error,
 * busy, internal.
 */
int vt_cli_event_retryable(const struct vt_cli_event *e);

#endif /* VARTALAP_CLI_EVENTS_H */
