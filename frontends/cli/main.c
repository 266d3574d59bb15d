/*
 * frontends/cli/main.c - vartalap-cli, a terminal chat client.
 *
 * Lines from stdin are commands ("/to bob", "/group create ...", "/read",
 * "/typing") or messages to the current target; every event from the server
 * is printed as one line on stdout and acked at once. What is sent is kept
 * until the server answers it, through reconnects (link.c). On EOF or
 * Ctrl-C the client waits for answers to what it sent, closes the
 * WebSocket cleanly and exits; it gives up after DRAIN_WAIT_S without an
 * answer, naming what went unanswered.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vartalap/token.h>

#include "cli.h"
#include "tlsclient.h"

#define DRAIN_WAIT_S   5

static const char usage[] =
        "Usage: vartalap-cli [--url ws[s]://HOST:PORT[/PATH]] --token TOKEN [--device D]\n"
        "                    [--ca-file PATH] [--no-reconnect]\n"
        "\n"
        "A terminal chat client. The URL defaults to ws://127.0.0.1:8080; the token\n"
        "may also come from $VARTALAP_TOKEN.\n"
        "  --device D       the device to connect as, when the token names none (a\n"
        "                   token's own device wins, with a warning)\n"
        "  --ca-file PATH   trust the CA (or self-signed) certificates in PATH for\n"
        "                   wss://, instead of the system's roots\n"
        "  --no-reconnect   exit when the connection drops instead of connecting again\n"
        "Lines read from stdin:\n"
        "  /to bob | /to g:team          pick who the next lines go to\n"
        "  /group create g:team NAME [MEMBER...]\n"
        "  /read                         mark the last message received as read\n"
        "  /typing                       tell the target you are typing\n"
        "  /quit                         wait for answers, then exit\n"
        "  anything else                 send it as a message\n"
        "Prints one line per event: message, accepted, delivered (one line per\n"
        "message and device a receipt names), read, typing, group, error. Every\n"
        "message and receipt is acked automatically, and shown once even when the\n"
        "server pushes it again. What is sent is kept until the server answers it:\n"
        "re-sent with the same id after a retryable error and after a reconnect.\n"
        "Exits 1 when something sent stayed unanswered.\n";

/* ---- closing ---- */

static void maybe_close(struct cli *c)
{
	if (c->closing && (c->out.count == 0 || c->giving_up)) {
		cli_link_close(c);
	}
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cli *c = arg;

	c->giving_up = 1;
	maybe_close(c);
}

static void arm_drain(struct cli *c)
{
	struct timeval tv = {DRAIN_WAIT_S, 0};

	evtimer_add(c->drain_timer, &tv);
}

void cli_start_close(struct cli *c)
{
	if (c->closing) {
		return;
	}
	c->closing = 1;
	cli_input_update(c);
	arm_drain(c);
	maybe_close(c);
}

void cli_progress(struct cli *c)
{
	if (c->closing) {
		arm_drain(c);
	}
	cli_input_update(c);
	maybe_close(c);
}

/* Name what stayed unanswered: the user must not take it as sent. */
static void report_unanswered(struct cli *c)
{
	struct vt_outbox_item *it;

	if (c->out.count == 0) {
		return;
	}
	fprintf(stderr,
	        "vartalap-cli: %zu sent without an answer, maybe not delivered:", c->out.count);
	TAILQ_FOREACH(it, &c->out.items, link) {
		fprintf(stderr, " %s", it->id);
	}
	fputc('\n', stderr);
	c->status = 1;
}

/* ---- stdin ---- */

void cli_input_update(struct cli *c)
{
	int want = c->started && !c->closing && c->out.count < CLI_OUTBOX_MAX &&
	           c->out.bytes < CLI_OUTBOX_BYTES;

	if (want && !c->reading) {
		event_add(c->stdin_ev, NULL);
	} else if (!want && c->reading) {
		event_del(c->stdin_ev);
	}
	c->reading = want;
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct cli *c = arg;

	if (cli_input_read(c, fd) <= 0) {
		cli_start_close(c);
	}
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct cli *c = arg;

	/* A second Ctrl-C means now. */
	if (c->closing) {
		event_base_loopbreak(c->base);
		return;
	}
	cli_start_close(c);
}

/* ---- setup ---- */

struct args {
	const char *url;
	const char *token;
	const char *device;
	const char *ca_file;
	int reconnect;
};

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
	        {"url", required_argument, NULL, 'u'},
	        {"token", required_argument, NULL, 't'},
	        {"device", required_argument, NULL, 'd'},
	        {"ca-file", required_argument, NULL, 'c'},
	        {"no-reconnect", no_argument, NULL, 'n'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int opt;

	a->url = "ws://127.0.0.1:8080";
	a->token = getenv("VARTALAP_TOKEN");
	a->device = NULL;
	a->ca_file = NULL;
	a->reconnect = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'u' || opt == 't' || opt == 'd' || opt == 'c') {
			*(opt == 'u'   ? &a->url
			  : opt == 't' ? &a->token
			  : opt == 'd' ? &a->device
			               : &a->ca_file) = optarg;
		} else if (opt == 'n') {
			a->reconnect = 0;
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

/*
 * The server takes the device a token names over the one asked for: say so,
 * rather than let a user believe the client is connected as another.
 */
static void warn_ignored_device(const struct args *a)
{
	struct vt_identity id;

	if (a->device != NULL && vt_token_claims(a->token, strlen(a->token), &id) == 0 &&
	    id.device[0] != '\0' && strcmp(id.device, a->device) != 0) {
		fprintf(stderr, "vartalap-cli: --device %s is ignored: the token names device %s\n",
		        a->device, id.device);
	}
}

/* The URL and, for wss://, the TLS context: 0, or the exit status. */
static int configure(struct cli *c, const struct args *a)
{
	char why[512];

	if (vt_wsc_url_parse(a->url, &c->url) != 0) {
		fprintf(stderr,
		        "vartalap-cli: expected a URL ws[s]://HOST[:PORT][/PATH], got '%s'\n",
		        a->url);
		return 2;
	}
	if (a->ca_file != NULL && !c->url.tls) {
		fprintf(stderr, "vartalap-cli: --ca-file is for wss:// URLs\n");
		return 2;
	}
	c->wsc.token = a->token;
	c->wsc.device = a->device;
	warn_ignored_device(a);
	c->reconnect = a->reconnect;
	if (c->url.tls) {
		c->wsc.tls = vt_cli_tls_ctx_new(a->ca_file, why, sizeof(why));
		if (c->wsc.tls == NULL) {
			fprintf(stderr, "vartalap-cli: %s\n", why);
			return 1;
		}
	}
	return 0;
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
	static struct cli c;
	struct event *sigint, *sigterm;
	struct args a;
	int rc = parse_args(argc, argv, &a);

	if (rc >= 0) {
		return rc;
	}
	rc = configure(&c, &a);
	if (rc != 0) {
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
	if (cli_link_start(&c) != 0) {
		return 1;
	}
	event_base_dispatch(c.base);
	report_unanswered(&c);
	cli_link_free(&c);
	vt_cli_tls_ctx_free(c.wsc.tls);
	event_free(sigint);
	event_free(sigterm);
	event_free(c.stdin_ev);
	event_free(c.drain_timer);
	evbuffer_free(c.in);
	event_base_free(c.base);
	return c.status;
}
