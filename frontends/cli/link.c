/*
 * frontends/cli/link.c - the connection of vartalap-cli, kept up.
 *
 * Every envelope that gets an answer goes through the outbox and is sent
 * again, as it was, until `accepted` or an error that sending again cannot
 * fix comes back. The server deduplicates by (user, client id), so a copy
 * that reaches it twice is taken once.
 *
 * - A retryable error (rate_limited, storage_error, storage_full, busy,
 *   internal, conflict) puts the envelope back and holds all sending back for a
 *   while: RESEND_FIRST_MS,
 *   doubling while such errors go on, at most RESEND_MAX_MS, with jitter.
 *   An envelope sent again may so arrive after one made later.
 * - A dropped connection puts back everything sent on it; the client
 *   connects again after a backoff of the same kind, up to CONNECT_TRIES
 *   failures in a row, and re-sends in the order the envelopes were made.
 *   A connection that carried an event or lived STABLE_MS ends the row.
 * - Events the server owes are acked as they come, also a copy pushed again
 *   because its ack was lost, and shown once (struct vt_seen).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vartalap/transport.h>

#include "../common/backoff.h"
#include "cli.h"
#include "events.h"

#define CONNECT_FIRST_MS 250
#define CONNECT_MAX_MS   8000
#define CONNECT_TRIES    10
#define RESEND_FIRST_MS  250
#define RESEND_MAX_MS    8000
#define STABLE_MS        10000 /* a connection that lived this long worked */

static void on_open(void *arg);
static void on_text(void *arg, const char *text, size_t len);
static void on_close(void *arg, int code, int retry, const char *why);

static const struct vt_wsc_callbacks callbacks = {on_open, on_text, on_close};

static struct timeval tv_ms(uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	return tv;
}

/* ---- sending ---- */

static int send_text(void *arg, const char *text, size_t len)
{
	struct cli *c = arg;

	return c->open ? vt_wsc_send(c->ws, text, len) : -1;
}

/* Send what waits, unless the connection is down or sending holds back. */
static void flush_outbox(struct cli *c)
{
	if (c->open && !evtimer_pending(c->resend_timer, NULL)) {
		vt_outbox_flush(&c->out, send_text, c);
	}
}

static void on_resend_timer(evutil_socket_t fd, short what, void *arg)
{
	flush_outbox(arg);
}

int cli_submit(struct cli *c, const char *id, struct evbuffer *env)
{
	size_t len = evbuffer_get_length(env);
	const char *p = (const char *)evbuffer_pullup(env, -1);
	int rc = vt_outbox_add(&c->out, id, p != NULL ? p : "", len);

	evbuffer_free(env);
	if (rc != 0) {
		return -1;
	}
	flush_outbox(c);
	cli_input_update(c);
	return 0;
}

/*
 * What is never answered when taken (typing) must not draw a too_large
 * either, which would be taken for the answer to an envelope (outbox.h):
 * a frame longer than the outbox knows to fit is not sent. Only a target
 * no server takes makes a typing frame that long; acks are shorter still.
 */
void cli_send_once(struct cli *c, struct evbuffer *env)
{
	size_t len = evbuffer_get_length(env);
	const char *p = (const char *)evbuffer_pullup(env, -1);

	if (len <= c->out.fits) {
		send_text(c, p != NULL ? p : "", len);
	}
	evbuffer_free(env);
}

static void ack(struct cli *c, const char *id)
{
	char frame[96];
	int n = snprintf(frame, sizeof(frame), "{\"v\":1,\"type\":\"ack\",\"ids\":[\"%s\"]}", id);

	send_text(c, frame, (size_t)n);
}

/* ---- answers ---- */

/* A retryable error for @it: back into the outbox, and sending pauses a while. */
static void hold_back(struct cli *c, struct vt_outbox_item *it, const char *code)
{
	struct timeval tv;
	uint64_t ms;

	it->sent = 0;
	if (evtimer_pending(c->resend_timer, NULL)) {
		return;
	}
	c->refusals++;
	ms = vt_fe_backoff_ms(RESEND_FIRST_MS, RESEND_MAX_MS, c->refusals, &c->rng);
	fprintf(stderr, "vartalap-cli: the server answered %s; sending again in %.1f s\n", code,
	        (double)ms / 1000);
	tv = tv_ms(ms);
	evtimer_add(c->resend_timer, &tv);
}

static int too_large(const struct vt_cli_event *e)
{
	return strcmp(e->type, "error") == 0 && strcmp(e->code, "too_large") == 0;
}

/*
 * The envelope an error without a ref is about, with its client id put in
 * @e's ref; or NULL. The server leaves the ref out when it did not read the
 * envelope's id: too_large is found before anything of it is read. Its
 * answers do not come in the order of sending (an error found at once
 * overtakes the `accepted` of an envelope sent before, which waits for
 * storage), so the oldest envelope unanswered need not be the one. But
 * only the envelope the outbox let go as maybe over the limit can be over
 * it, and there is one such at a time (outbox.h): the refusal is its.
 */
static struct vt_outbox_item *unnamed(struct cli *c, struct vt_cli_event *e)
{
	struct vt_outbox_item *it = c->out.unsure;

	if (it == NULL || !too_large(e)) {
		return NULL;
	}
	snprintf(e->ref, sizeof(e->ref), "%s", it->id);
	return it;
}

/* The envelope answer @e is about, or NULL; one it names was read whole. */
static struct vt_outbox_item *answered(struct cli *c, struct vt_cli_event *e)
{
	struct vt_outbox_item *it;

	if (e->ref[0] == '\0') {
		return unnamed(c, e);
	}
	it = vt_outbox_find(&c->out, e->ref);
	if (it != NULL && !too_large(e)) {
		vt_outbox_read(&c->out, it);
	}
	return it;
}

/*
 * An answer: `accepted` or an error, whose ref is the client id of one of
 * our envelopes when it is about one. Returns 1 when it is to be shown: a
 * final answer, or an error about no envelope of ours (an ack of an
 * unknown id, say). Retryable errors only hold sending back, and an answer
 * to an envelope answered already is a copy.
 */
static int take_answer(struct cli *c, struct vt_cli_event *e)
{
	struct vt_outbox_item *it = answered(c, e);

	if (vt_cli_event_retryable(e)) {
		if (it != NULL) {
			hold_back(c, it, e->code);
		} else {
			/* A typing, or whatever came in as the server stopped. */
			fprintf(stderr, "vartalap-cli: the server answered %s\n", e->code);
		}
		return 0;
	}
	if (it == NULL) {
		return strcmp(e->type, "error") == 0;
	}
	if (strcmp(e->type, "accepted") == 0) {
		c->refusals = 0;
	}
	vt_outbox_remove(&c->out, it);
	flush_outbox(c); /* what waited behind it, if it may have been too large */
	return 1;
}

static void on_text(void *arg, const char *text, size_t len)
{
	struct cli *c = arg;
	struct vt_cli_event e;
	int answer;

	if (vt_cli_event_parse(text, len, &e) != 0) {
		return;
	}
	c->heard = 1;

	/* A copy pushed again is acked again: the first ack may be what was lost. */
	if (e.owed) {
		ack(c, e.id);
		if (vt_seen_check(&c->seen, e.id)) {
			return;
		}
	}
	answer = strcmp(e.type, "accepted") == 0 || strcmp(e.type, "error") == 0;
	if (answer && !take_answer(c, &e)) {
		return;
	}
	vt_cli_event_print(text, len, &e);
	if (strcmp(e.type, "message") == 0 && e.owed) {
		snprintf(c->last_id, sizeof(c->last_id), "%s", e.id);
		snprintf(c->last_from, sizeof(c->last_from), "%s", e.from);
	}
	if (answer) {
		cli_progress(c);
	}
}

/* ---- the connection ---- */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * An open connection is not yet a working one: a server that upgrades and
 * drops at once, again and again, must still run out of tries.
 */
static void on_open(void *arg)
{
	struct cli *c = arg;

	c->open = 1;
	c->opened_ms = mono_ms();
	c->heard = 0;
	printf("connected\n");
	fflush(stdout);
	c->started = 1;
	flush_outbox(c);
	cli_input_update(c);
}

/* Connect now; a name that does not resolve counts as one more failure. */
static void connect_now(struct cli *c)
{
	vt_wsc_free(c->ws);
	c->ws = vt_wsc_connect(c->base, &c->wsc, &callbacks, c);
	if (c->ws == NULL) {
		on_close(c, 0, 1, "cannot connect");
	}
}

static void on_connect_timer(evutil_socket_t fd, short what, void *arg)
{
	connect_now(arg);
}

/* Connect again later, or give up: 0 when a connect is scheduled. */
static int schedule_connect(struct cli *c, const char *why)
{
	struct timeval tv;
	uint64_t ms;

	if (!c->reconnect || c->failures >= CONNECT_TRIES) {
		return -1;
	}
	c->failures++;
	ms = vt_fe_backoff_ms(CONNECT_FIRST_MS, CONNECT_MAX_MS, c->failures, &c->rng);
	fprintf(stderr, "vartalap-cli: %s; connecting again in %.1f s\n", why, (double)ms / 1000);
	tv = tv_ms(ms);
	return evtimer_add(c->connect_timer, &tv);
}

/*
 * A close 1009 (message too big) is about the one envelope in flight that
 * may be over the server's limit (outbox.h): refused for good, as with
 * too_large. 1 when there was one; the others go again on a new connection.
 */
static int refuse_too_big(struct cli *c, int code)
{
	struct vt_outbox_item *it = c->out.unsure;

	if (code != VT_CLOSE_TOO_BIG || it == NULL) {
		return 0;
	}
	printf("error too_large ref %s: the server closed the connection over it, code 1009\n",
	       it->id);
	fflush(stdout);
	vt_outbox_remove(&c->out, it);
	cli_progress(c);
	return 1;
}

static void on_close(void *arg, int code, int retry, const char *why)
{
	struct cli *c = arg;
	char msg[700];

	/* The connection worked: the count of failures starts again. */
	if (c->open && (c->heard || mono_ms() - c->opened_ms >= STABLE_MS)) {
		c->failures = 0;
	}
	c->open = 0;
	if (refuse_too_big(c, code)) {
		retry = 1;
	}
	vt_outbox_unsend_all(&c->out);
	if (c->closing && (c->out.count == 0 || c->giving_up)) {
		event_base_loopexit(c->base, NULL);
		return;
	}
	if (code != 0) {
		snprintf(msg, sizeof(msg), "%s, code %d", why, code);
	} else {
		snprintf(msg, sizeof(msg), "%s", why);
	}
	if (retry && !c->giving_up && schedule_connect(c, msg) == 0) {
		return;
	}
	fprintf(stderr, "vartalap-cli: %s\n", msg);
	c->status = 1;
	event_base_loopexit(c->base, NULL);
}

int cli_link_start(struct cli *c)
{
	c->wsc.url = &c->url;
	c->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15u;
	vt_outbox_init(&c->out);
	c->connect_timer = evtimer_new(c->base, on_connect_timer, c);
	c->resend_timer = evtimer_new(c->base, on_resend_timer, c);
	if (c->connect_timer == NULL || c->resend_timer == NULL) {
		return -1;
	}
	connect_now(c);
	return 0;
}

void cli_link_close(struct cli *c)
{
	if (c->open) {
		vt_wsc_close(c->ws);
	} else {
		event_base_loopexit(c->base, NULL);
	}
}

void cli_link_free(struct cli *c)
{
	vt_wsc_free(c->ws);
	c->ws = NULL;
	if (c->connect_timer != NULL) {
		event_free(c->connect_timer);
	}
	if (c->resend_timer != NULL) {
		event_free(c->resend_timer);
	}
	vt_outbox_clear(&c->out);
}
