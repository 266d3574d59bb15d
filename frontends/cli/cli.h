/*
 * frontends/cli/cli.h - the state of vartalap-cli, shared by its parts.
 *
 * main.c reads options and stdin and decides when to stop; commands.c turns
 * lines into envelopes; link.c keeps the connection (reconnecting when it
 * drops), sends the envelopes until each is answered, and shows what the
 * server sends.
 */
#ifndef VARTALAP_CLI_CLI_H
#define VARTALAP_CLI_CLI_H

#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "outbox.h"
#include "seen.h"
#include "wsclient.h"

/*
 * Reading stdin pauses while this many envelopes, or envelopes of this many
 * bytes in all, wait for their answers: long lines typed (or piped) faster
 * than a server answers, or while it is away, are not all held at once.
 */
#define CLI_OUTBOX_MAX   256
#define CLI_OUTBOX_BYTES (64u << 20)

struct cli {
	struct event_base *base;

	/* The connection (link.c). */
	struct vt_wsc_url url;
	struct vt_wsc_config wsc;
	int reconnect;               /* connect again when the connection drops */
	struct vt_wsc *ws;           /* NULL between a failed connect and the next */
	int open;                    /* ws is upgraded and not closed */
	struct event *connect_timer; /* the next connect, after a backoff */
	struct event *resend_timer;  /* pending: sending holds back after a retryable error */
	uint32_t failures;           /* connects failed in a row */
	uint64_t opened_ms;          /* monotonic time of the last upgrade */
	int heard;                   /* an event came on the open connection */
	uint32_t refusals;           /* retryable errors in a row */
	uint64_t rng;                /* jitter */
	struct vt_outbox out;
	struct vt_seen seen;

	/* What the user does (main.c, commands.c). */
	struct event *stdin_ev;
	struct evbuffer *in; /* the line being read, up to its newline */
	int in_skipping;     /* dropping the rest of a line too long to send */
	struct event *drain_timer;
	int reading;   /* stdin_ev is added */
	int started;   /* connected once: stdin is read from then on */
	int closing;   /* EOF or a signal: stop once nothing is unanswered */
	int giving_up; /* the wait for answers is over */
	char target[73]; /* a user id, or a group id of up to 72 bytes */
	char last_id[32]; /* last message received: what /read marks */
	char last_from[73];
	unsigned long seq;
	int status; /* the exit status */
};

/* ---- input.c ---- */

/*
 * Read what stdin has and run each whole line (cli_command). Returns what
 * the read returned: 0 at EOF, after running a last line without a newline;
 * a read that would block or was interrupted is not the end (1).
 */
int cli_input_read(struct cli *c, evutil_socket_t fd);

/* ---- main.c ---- */

/* An envelope was answered: a closing client waits on. */
void cli_progress(struct cli *c);

/* Read stdin when there is room for more envelopes and no reason to stop. */
void cli_input_update(struct cli *c);

/* Stop reading stdin and close once everything sent is answered. */
void cli_start_close(struct cli *c);

/* ---- commands.c ---- */

/*
 * Carry out one line typed by the user: @len bytes at @line, followed by a
 * NUL. A message is sent whole, NUL bytes in it too (as \u0000); a command
 * holding a NUL byte is refused.
 */
void cli_command(struct cli *c, char *line, size_t len);

/* ---- link.c ---- */

/* Make the first connection. Returns 0, or -1 when the client cannot start. */
int cli_link_start(struct cli *c);

/*
 * Hand over the envelope @env (freed here) with client id @id: kept until
 * it is answered, sent now if the connection allows. -1 when out of memory.
 */
int cli_submit(struct cli *c, const char *id, struct evbuffer *env);

/* Send @env (freed here) now if connected, else drop it: for what is never answered. */
void cli_send_once(struct cli *c, struct evbuffer *env);

/* Close the connection cleanly, or end at once when there is none. */
void cli_link_close(struct cli *c);

/* Free the connection and its timers. */
void cli_link_free(struct cli *c);

#endif /* VARTALAP_CLI_CLI_H */
