/*
 * frontends/cli/main.c - vartalap-cli, a terminal chat client.
 *
 * Lines from stdin are commands ("/to bob", "/group create ...", "/read",
 * "/typing") or messages to the current target; every event from the server
 * is printed as one line on stdout and acked at once. On EOF or Ctrl-C the
 * client waits a moment for answers to what it sent, closes the WebSocket
 * cleanly and exits.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "../common/json_str.h"
#include "events.h"
#include "wsclient.h"

#define LINE_MAX_BYTES 60000
#define DRAIN_WAIT_S 5

struct cli {
	struct event_base *base;
	struct vt_wsc *ws;
	struct event *stdin_ev;
	struct event *drain_timer;
	struct evbuffer *in;
	char target[66];
	char last_id[32];  /* last message received: what /read marks */
	char last_from[65];
	unsigned long seq;
	int unanswered;    /* sent envelopes still waiting for accepted or error */
	int closing;       /* EOF or a signal: close once nothing is unanswered */
	int status;
};

static const char usage[] =
        "Usage: vartalap-cli --url ws://HOST:PORT --token TOKEN [--device D]\n"
        "\n"
        "A terminal chat client. The token may also come from $VARTALAP_TOKEN.\n"
        "Lines read from stdin:\n"
        "  /to bob | /to g:team          pick who the next lines go to\n"
        "  /group create g:team NAME [MEMBER...]\n"
        "  /read                         mark the last message received as read\n"
        "  /typing                       tell the target you are typing\n"
        "  anything else                 send it as a message\n"
        "Prints one line per event: message, accepted, delivered, read, typing,\n"
        "group, error. Every message and receipt is acked automatically.\n";

static void start_close(struct cli *c);

/* ---- sending ---- */

/* Send @b (one envelope) and forget it; counts it when an answer is due. */
static void send_env(struct cli *c, struct evbuffer *b, int answered)
{
	size_t len = evbuffer_get_length(b);
	const char *p = (const char *)evbuffer_pullup(b, -1);

	if (vt_wsc_send(c->ws, p != NULL ? p : "", len) == 0 && answered) {
		c->unanswered++;
	}
	evbuffer_free(b);
}

/* A new envelope {"v":1,"type":T,"id":CID,"to":TO with the object left open. */
static struct evbuffer *env_start(struct cli *c, const char *type, const char *to)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		return NULL;
	}
	c->seq++;
	evbuffer_add_printf(b, "{\"v\":1,\"type\":\"%s\",\"id\":\"cli-%ld-%ld-%lu\",\"to\":", type,
	                    (long)getpid(), (long)time(NULL), c->seq);
	vt_fe_json_string(b, to);
	return b;
}

static void send_message(struct cli *c, const char *line)
{
	struct evbuffer *b;

	if (c->target[0] == '\0') {
		printf("error no_target: pick one first with /to USER or /to g:GROUP\n");
		return;
	}
	b = env_start(c, "message", c->target);
	if (b != NULL) {
		evbuffer_add_printf(b, ",\"body\":{\"text\":");
		vt_fe_json_string(b, line);
		evbuffer_add_printf(b, "}}");
		send_env(c, b, 1);
	}
}

/* /group create g:team Team bob carol */
static void group_create(struct cli *c, char *args)
{
	char *save = NULL;
	char *id = strtok_r(args, " \t", &save);
	char *name = strtok_r(NULL, " \t", &save);
	struct evbuffer *b;
	int n = 0;

	if (id == NULL || name == NULL) {
		printf("error usage: /group create g:ID NAME [MEMBER...]\n");
		return;
	}
	b = env_start(c, "group_create", id);
	if (b == NULL) {
		return;
	}
	evbuffer_add_printf(b, ",\"body\":{\"name\":");
	vt_fe_json_string(b, name);
	evbuffer_add_printf(b, ",\"members\":[");
	for (char *m; (m = strtok_r(NULL, " \t", &save)) != NULL; n++) {
		evbuffer_add_printf(b, n ? "," : "");
		vt_fe_json_string(b, m);
	}
	evbuffer_add_printf(b, "]}}");
	send_env(c, b, 1);
	snprintf(c->target, sizeof(c->target), "%s", id);
}

static void send_read(struct cli *c)
{
	struct evbuffer *b;

	if (c->last_id[0] == '\0') {
		printf("error nothing_to_read: no message received yet\n");
		return;
	}
	b = env_start(c, "read", c->last_from);
	if (b != NULL) {
		evbuffer_add_printf(b, ",\"ids\":[\"%s\"]}", c->last_id);
		send_env(c, b, 1);
	}
}

static void send_typing(struct cli *c)
{
	struct evbuffer *b = evbuffer_new();

	if (b != NULL && c->target[0] != '\0') {
		evbuffer_add_printf(b, "{\"v\":1,\"type\":\"typing\",\"to\":");
		vt_fe_json_string(b, c->target);
		evbuffer_add_printf(b, "}");
		send_env(c, b, 0);
	} else if (b != NULL) {
		evbuffer_free(b);
	}
}

static void on_line(struct cli *c, char *line)
{
	if (strncmp(line, "/to ", 4) == 0) {
		snprintf(c->target, sizeof(c->target), "%s", line + 4 + strspn(line + 4, " "));
	} else if (strncmp(line, "/group create ", 14) == 0) {
		group_create(c, line + 14);
	} else if (strcmp(line, "/read") == 0) {
		send_read(c);
	} else if (strcmp(line, "/typing") == 0) {
		send_typing(c);
	} else if (strcmp(line, "/quit") == 0) {
		start_close(c);
	} else if (line[0] == '/') {
		printf("error unknown_command: %s\n", line);
	} else if (line[0] != '\0') {
		send_message(c, line);
	}
	fflush(stdout);
}

/* ---- stdin ---- */

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct cli *c = arg;
	int n = evbuffer_read(c->in, fd, 4096);
	char *line;

	while ((line = evbuffer_readln(c->in, NULL, EVBUFFER_EOL_LF)) != NULL) {
		line[strcspn(line, "\r")] = '\0';
		on_line(c, line);
		free(line);
	}
	if (n <= 0 || evbuffer_get_length(c->in) > LINE_MAX_BYTES) {
		/* EOF: a last line without its newline still counts. */
		size_t rest = evbuffer_get_length(c->in);

		if (rest > 0 && rest <= LINE_MAX_BYTES) {
			char *last = calloc(1, rest + 1);

			if (last != NULL) {
				evbuffer_remove(c->in, last, rest);
				on_line(c, last);
				free(last);
			}
		}
		start_close(c);
	}
}

/* ---- the connection ---- */

static void maybe_close(struct cli *c)
{
	if (c->closing && c->unanswered <= 0) {
		vt_wsc_close(c->ws);
	}
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cli *c = arg;

	c->unanswered = 0;
	maybe_close(c);
}

static void start_close(struct cli *c)
{
	struct timeval tv = {DRAIN_WAIT_S, 0};

	if (c->closing) {
		return;
	}
	c->closing = 1;
	event_del(c->stdin_ev);
	evtimer_add(c->drain_timer, &tv);
	maybe_close(c);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct cli *c = arg;

	/* A second Ctrl-C means now. */
	if (c->closing) {
		event_base_loopbreak(c->base);
		return;
	}
	start_close(c);
}

static void on_open(void *arg)
{
	struct cli *c = arg;

	printf("connected\n");
	fflush(stdout);
	event_add(c->stdin_ev, NULL);
}

static void ack(struct cli *c, const char *id)
{
	char frame[96];
	int n = snprintf(frame, sizeof(frame), "{\"v\":1,\"type\":\"ack\",\"ids\":[\"%s\"]}", id);

	vt_wsc_send(c->ws, frame, (size_t)n);
}

static void on_text(void *arg, const char *text, size_t len)
{
	struct cli *c = arg;
	struct vt_cli_event e;

	if (vt_cli_event_take(text, len, &e) != 0) {
		return;
	}
	if (e.owed) {
		ack(c, e.id);
	}
	if (strcmp(e.type, "message") == 0) {
		snprintf(c->last_id, sizeof(c->last_id), "%s", e.id);
		snprintf(c->last_from, sizeof(c->last_from), "%s", e.from);
	}
	/* Answers to our own envelopes: their refs are our client ids. */
	if ((strcmp(e.type, "accepted") == 0 || strcmp(e.type, "error") == 0) &&
	    strncmp(e.ref, "cli-", 4) == 0) {
		c->unanswered--;
		maybe_close(c);
	}
}

static void on_close(void *arg, int code, const char *why)
{
	struct cli *c = arg;

	if (!c->closing || code != 1000) {
		if (code != 0) {
			fprintf(stderr, "vartalap-cli: %s, code %d\n", why, code);
		} else {
			fprintf(stderr, "vartalap-cli: %s\n", why);
		}
		c->status = 1;
	}
	event_base_loopexit(c->base, NULL);
}

/* ---- setup ---- */

struct args {
	const char *url;
	const char *token;
	const char *device;
};

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
	        {"url", required_argument, NULL, 'u'},   {"token", required_argument, NULL, 't'},
	        {"device", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int opt;

	a->url = "ws://127.0.0.1:8080";
	a->token = getenv("VARTALAP_TOKEN");
	a->device = NULL;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'u' || opt == 't' || opt == 'd') {
			*(opt == 'u' ? &a->url : opt == 't' ? &a->token : &a->device) = optarg;
		} else {
			fputs(usage, opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (optind != argc || a->token == NULL || a->token[0] == '\0') {
		fputs(usage, stderr);
		return 2;
	}
	return -1;
}

/* poll, not epoll: epoll refuses a regular file, and stdin may be one. */
static struct event_base *make_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL) {
		return NULL;
	}
	event_config_avoid_method(cfg, "epoll");
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

int main(int argc, char **argv)
{
	static const struct vt_wsc_callbacks cbs = {on_open, on_text, on_close};
	static struct cli c;
	struct event *sigint, *sigterm;
	struct args a;
	int rc = parse_args(argc, argv, &a);

	if (rc >= 0) {
		return rc;
	}
	signal(SIGPIPE, SIG_IGN);
	c.base = make_base();
	c.in = evbuffer_new();
	if (c.base == NULL || c.in == NULL) {
		return 1;
	}
	c.stdin_ev = event_new(c.base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, &c);
	c.drain_timer = evtimer_new(c.base, on_drain_timeout, &c);
	sigint = evsignal_new(c.base, SIGINT, on_signal, &c);
	sigterm = evsignal_new(c.base, SIGTERM, on_signal, &c);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	c.ws = vt_wsc_connect(c.base, a.url, a.token, a.device, &cbs, &c);
	if (c.ws == NULL) {
		return 1;
	}
	event_base_dispatch(c.base);
	vt_wsc_free(c.ws);
	event_free(sigint);
	event_free(sigterm);
	event_free(c.stdin_ev);
	event_free(c.drain_timer);
	evbuffer_free(c.in);
	event_base_free(c.base);
	return c.status;
}
