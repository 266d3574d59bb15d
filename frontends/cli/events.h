/*
 * frontends/cli/events.h - printing what the server sends, one line each.
 */
#ifndef VARTALAP_CLI_EVENTS_H
#define VARTALAP_CLI_EVENTS_H

#include <stddef.h>

/* What the client needs to remember of an event after printing it. */
struct vt_cli_event {
	char type[32];
	char id[32];   /* server id ("" when none) */
	char from[65];
	char to[65];
	char ref[65];  /* the client id an answer is for */
	int owed;      /* a message or receipt to ack */
};

/*
 * Print the envelope @text (@len bytes) as one line on stdout and fill @e.
 * Returns 0, or -1 (after printing an error line) when it is not JSON.
 */
int vt_cli_event_take(const char *text, size_t len, struct vt_cli_event *e);

#endif /* VARTALAP_CLI_EVENTS_H */
