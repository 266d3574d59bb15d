/*
 * examples/libevent_app.c - the engine inside an application's own libevent loop.
 *
 * The application owns the loop and a TCP listener of its own on 127.0.0.1. It
 * speaks a line protocol there: the first line of a connection is
 * "LOGIN <token>", a line "PING" is the application's own business (answered
 * "PONG" without the engine), and any other line is one envelope handed to
 * vt_conn_receive(). Each frame the engine sends goes out as one line.
 *
 * The engine needs three things from the loop, all shown here:
 *   - want_flush activates a flush event, so writes taken during a loop turn
 *     commit as one batch once the turn's callbacks have run;
 *   - a timer armed from vt_engine_next_timeout(), re-armed when the engine
 *     says its timers changed and after each vt_engine_run_timers();
 *   - the clocks, read here with clock_gettime().
 *
 * To check itself, the program connects two clients to its own port. Alice
 * pings, then sends bob a message. Bob leaves the first push unacked, so the
 * ack timeout (300 ms) fires through the timer and the engine pushes again
 * with the same id; bob acks that one, and alice receives the "delivered"
 * receipt naming her message. Exit 0 only when all of that was seen within
 * ten seconds.
 *
 * Framing caveat: a message body may hold a raw newline between JSON tokens,
 * which this line protocol cannot carry. Real transports (WebSocket) frame
 * messages; this one is kept small on purpose.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <vartalap/vartalap.h>

/* Bytes queued to one connection before send answers VT_EAGAIN. */
#define OUT_MAX (256 * 1024)

/* Longest line read; a longer one ends the connection. */
#define LINE_MAX_BYTES (128 * 1024)

#define MAX_CONNS 8

/* Short, so the retry shows within the run. */
#define ACK_TIMEOUT_MS 300

/* The token key; a real server reads one of at least 32 random bytes. */
static const unsigned char example_key[32] = "example key, never use this one";

struct app;

/* The server side of one line-protocol connection. */
struct line_conn {
	struct app *app;
	struct bufferevent *bev;
	struct vt_conn *conn;   /* NULL until LOGIN */
	struct event *close_ev; /* deferred close asked for by the engine */
	int blocked;            /* send answered VT_EAGAIN: tell the engine when drained */
};

/* One of the two clients the program runs against itself. */
struct client {
	struct app *app;
	const char *user;
	struct bufferevent *bev;
	char first_msg_id[32];
	char accepted_id[32];             /* server id of the message it sent */
	unsigned pushes;                  /* "message" frames seen */
	unsigned same_pushes;             /* of them, carrying first_msg_id */
	uint64_t first_push_ms, retry_ms; /* monotonic times of the first two */
	int accepted, delivered, pong;    /* delivered: a receipt named accepted_id */
};

struct app {
	struct event_base *base;
	struct vt_engine *engine;
	struct event *flush_ev;
	struct event *timer_ev;
	struct event *deadline_ev;
	struct evconnlistener *listener;
	struct line_conn *conns[MAX_CONNS];
	struct client alice, bob;
	uint16_t port;
	int passed;
};

/* ---- the host hooks ---- */

static uint64_t now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t host_mono(void *arg)
{
	return now_ms(CLOCK_MONOTONIC);
}

static int64_t host_wall(void *arg)
{
	return (int64_t)now_ms(CLOCK_REALTIME);
}

/*
 * An fd-less event made active runs after the I/O callbacks already queued
 * for this turn, so every envelope they fed the engine lands in one batch.
 */
static void host_want_flush(void *arg)
{
	struct app *a = arg;

	event_active(a->flush_ev, EV_TIMEOUT, 0);
}

static void rearm_timer(struct app *a)
{
	int64_t ms;
	struct timeval tv;

	if (a->engine == NULL) {
		return;
	}
	ms = vt_engine_next_timeout(a->engine);
	if (ms < 0) {
		evtimer_del(a->timer_ev);
		return;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(a->timer_ev, &tv);
}

static void host_timers_changed(void *arg)
{
	rearm_timer(arg);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;

	if (a->engine != NULL) {
		vt_engine_flush(a->engine);
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;

	vt_engine_run_timers(a->engine);
	rearm_timer(a);
}

/* ---- the transport: one line per frame ---- */

static void line_conn_free(struct line_conn *lc)
{
	struct app *a = lc->app;

	for (size_t i = 0; i < MAX_CONNS; i++) {
		if (a->conns[i] == lc) {
			a->conns[i] = NULL;
		}
	}
	vt_conn_close(lc->conn);
	event_free(lc->close_ev);
	bufferevent_free(lc->bev);
	free(lc);
}

static int lc_send(void *ctx, const char *data, size_t len)
{
	struct line_conn *lc = ctx;
	struct evbuffer *out = bufferevent_get_output(lc->bev);

	if (evbuffer_get_length(out) > OUT_MAX) {
		lc->blocked = 1;
		return VT_EAGAIN;
	}
	if (evbuffer_add(out, data, len) != 0 || evbuffer_add(out, "\n", 1) != 0) {
		return VT_ENOMEM;
	}
	return 0;
}

/* Called from inside the engine: the close itself waits for the next turn. */
static void lc_close(void *ctx, int code, const char *reason)
{
	struct line_conn *lc = ctx;

	evbuffer_add_printf(bufferevent_get_output(lc->bev), "BYE %d %s\n", code, reason);
	event_active(lc->close_ev, EV_TIMEOUT, 0);
}

static const struct vt_transport_ops line_transport = {.send = lc_send, .close = lc_close};

static void on_deferred_close(evutil_socket_t fd, short what, void *arg)
{
	line_conn_free(arg);
}

/* "LOGIN <token>": verify, then open the engine's side of the connection. */
static int line_login(struct line_conn *lc, const char *line)
{
	struct vt_identity id;
	int rc;

	if (strncmp(line, "LOGIN ", 6) != 0) {
		return VT_EAUTH;
	}
	rc = vt_token_verify(example_key, sizeof(example_key), line + 6, strlen(line + 6),
	                     host_wall(NULL) / 1000, &id);
	if (rc == 0) {
		rc = vt_conn_open(lc->app->engine, &id, &line_transport, lc, &lc->conn);
	}
	return rc;
}

/* One line from a client; returns -1 when the connection must end. */
static int line_handle(struct line_conn *lc, const char *line, size_t len)
{
	int rc;

	if (lc->conn == NULL) {
		rc = line_login(lc, line);
		if (rc != 0) {
			evbuffer_add_printf(bufferevent_get_output(lc->bev), "ERR %s\n",
			                    vt_strerror(rc));
		}
		return rc == 0 ? 0 : -1;
	}
	if (strcmp(line, "PING") == 0) {
		bufferevent_write(lc->bev, "PONG\n", 5);
		return 0;
	}
	vt_conn_receive(lc->conn, line, len);
	return 0;
}

static void lc_on_read(struct bufferevent *bev, void *arg)
{
	struct line_conn *lc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		int rc = line_handle(lc, line, len);

		free(line);
		if (rc != 0) {
			event_active(lc->close_ev, EV_TIMEOUT, 0);
			return;
		}
	}
	if (evbuffer_get_length(in) > LINE_MAX_BYTES) {
		line_conn_free(lc);
	}
}

/* The output drained below the low watermark: the engine may send again. */
static void lc_on_write(struct bufferevent *bev, void *arg)
{
	struct line_conn *lc = arg;

	if (lc->blocked && lc->conn != NULL) {
		lc->blocked = 0;
		vt_conn_writable(lc->conn);
	}
}

static void lc_on_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		line_conn_free(arg);
	}
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
	struct app *a = arg;
	struct line_conn *lc = calloc(1, sizeof(*lc));
	size_t slot = 0;

	while (slot < MAX_CONNS && a->conns[slot] != NULL) {
		slot++;
	}
	if (lc == NULL || slot == MAX_CONNS) {
		free(lc);
		evutil_closesocket(fd);
		return;
	}
	lc->app = a;
	lc->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE);
	lc->close_ev = event_new(a->base, -1, 0, on_deferred_close, lc);
	a->conns[slot] = lc;
	bufferevent_setcb(lc->bev, lc_on_read, lc_on_write, lc_on_event, lc);
	bufferevent_setwatermark(lc->bev, EV_WRITE, OUT_MAX / 2, 0);
	bufferevent_enable(lc->bev, EV_READ | EV_WRITE);
}

/* ---- the two clients the program runs against itself ---- */

/* Copy the string member @key of a flat frame into @out, or "" when absent. */
static void field(const char *frame, const char *key, char *out, size_t cap)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(frame, pat);
	out[0] = '\0';
	if (p != NULL) {
		p += strlen(pat);
		snprintf(out, cap, "%.*s", (int)strcspn(p, "\""), p);
	}
}

/*
 * Does the receipt @frame name the message @id? Its body lists what one
 * device of the recipient acked together, up to 64 messages:
 * {"device":"","refs":[{"ref":"42","cid":"c-1"},...]}. A quote inside a JSON
 * string is escaped, so the quoted pattern can only be a member of a ref.
 */
static int receipt_names(const char *frame, const char *id)
{
	const char *refs = strstr(frame, "\"refs\":[");
	char pat[48];

	snprintf(pat, sizeof(pat), "\"ref\":\"%s\"", id);
	return id[0] != '\0' && refs != NULL && strstr(refs, pat) != NULL;
}

static void client_ack(struct client *c, const char *id)
{
	evbuffer_add_printf(bufferevent_get_output(c->bev), "{\"type\":\"ack\",\"ids\":[\"%s\"]}\n",
	                    id);
}

/* Bob keeps quiet about the first push, to make the engine retry it. */
static void client_on_message(struct client *c, const char *id)
{
	if (c->pushes++ == 0) {
		c->first_push_ms = host_mono(NULL);
	} else if (c->retry_ms == 0) {
		c->retry_ms = host_mono(NULL);
	}
	if (c->first_msg_id[0] == '\0') {
		snprintf(c->first_msg_id, sizeof(c->first_msg_id), "%s", id);
	}
	if (strcmp(id, c->first_msg_id) == 0) {
		c->same_pushes++;
	}
	if (c->pushes >= 2) {
		client_ack(c, id);
	}
}

static void alice_start(struct app *a);

static void client_line(struct app *a, struct client *c, const char *line)
{
	char type[32], id[32];

	printf("%s <- %s\n", c->user, line);
	if (strcmp(line, "PONG") == 0) {
		c->pong = 1;
		if (c == &a->bob) {
			alice_start(a);
		}
		return;
	}
	field(line, "type", type, sizeof(type));
	field(line, "id", id, sizeof(id));
	if (strcmp(type, "message") == 0) {
		client_on_message(c, id);
	} else if (strcmp(type, "accepted") == 0) {
		c->accepted = 1;
		snprintf(c->accepted_id, sizeof(c->accepted_id), "%s", id);
	} else if (strcmp(type, "delivered") == 0) {
		if (receipt_names(line, c->accepted_id)) {
			c->delivered = 1;
		}
		client_ack(c, id);
	}
}

/*
 * Done when alice heard the receipt and bob saw his retry, which the timer
 * brought no sooner than the ack timeout after the first push.
 */
static void check_done(struct app *a)
{
	if (a->alice.delivered && a->alice.accepted && a->alice.pong && a->bob.same_pushes >= 2 &&
	    a->bob.retry_ms - a->bob.first_push_ms >= ACK_TIMEOUT_MS) {
		a->passed = 1;
		event_base_loopexit(a->base, NULL);
	}
}

static void client_on_read(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct app *a = c->app;
	char *line;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_LF)) !=
	       NULL) {
		client_line(a, c, line);
		free(line);
	}
	check_done(a);
}

static int client_start(struct app *a, struct client *c, uint16_t port)
{
	struct sockaddr_in sin;
	char token[VT_TOKEN_MAX];
	int64_t now = host_wall(NULL) / 1000;

	if (vt_token_sign(example_key, sizeof(example_key), c->user, NULL, now, now + 60, token,
	                  sizeof(token)) < 0) {
		return -1;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);

	c->app = a;
	c->bev = bufferevent_socket_new(a->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL ||
	    bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		return -1;
	}
	bufferevent_setcb(c->bev, client_on_read, NULL, NULL, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	evbuffer_add_printf(bufferevent_get_output(c->bev), "LOGIN %s\n", token);
	return 0;
}

/* The application's own traffic (PING) shares the loop with the engine's. */
static void alice_start(struct app *a)
{
	static const char hello[] = "{\"type\":\"message\",\"id\":\"c-1\",\"to\":\"bob\","
	                            "\"body\":\"hi\"}";

	if (a->alice.bev != NULL || client_start(a, &a->alice, a->port) != 0) {
		return;
	}
	evbuffer_add_printf(bufferevent_get_output(a->alice.bev), "PING\n%s\n", hello);
}

/* ---- wiring ---- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;

	fprintf(stderr, "libevent_app: timed out\n");
	event_base_loopexit(a->base, NULL);
}

static int start_engine(struct app *a)
{
	struct vt_host host = {host_mono, host_wall, host_want_flush, host_timers_changed, a};
	struct vt_engine_config cfg;
	struct vt_storage st;

	vt_engine_config_init(&cfg);
	cfg.ack_timeout_ms = ACK_TIMEOUT_MS;

	a->flush_ev = event_new(a->base, -1, 0, on_flush, a);
	a->timer_ev = evtimer_new(a->base, on_timer, a);
	if (a->flush_ev == NULL || a->timer_ev == NULL ||
	    vt_storage_memory_create(INT64_C(86400000), &st) != 0 ||
	    vt_engine_create(&cfg, &host, st, &a->engine) != 0) {
		return -1;
	}

	/* Hooks called during vt_engine_create() saw no engine yet. */
	event_active(a->flush_ev, EV_TIMEOUT, 0);
	rearm_timer(a);
	return 0;
}

/* Listen on 127.0.0.1 with a port the kernel picks; returns it, or 0. */
static uint16_t start_listener(struct app *a)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->listener = evconnlistener_new_bind(a->base, on_accept, a,
	                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	                                      (struct sockaddr *)&sin, sizeof(sin));
	if (a->listener == NULL ||
	    getsockname(evconnlistener_get_fd(a->listener), (struct sockaddr *)&sin, &len) != 0) {
		return 0;
	}
	return ntohs(sin.sin_port);
}

/* Sockets first, so each connection is closed in the engine exactly once. */
static void stop(struct app *a)
{
	for (size_t i = 0; i < MAX_CONNS; i++) {
		if (a->conns[i] != NULL) {
			line_conn_free(a->conns[i]);
		}
	}
	if (a->alice.bev != NULL) {
		bufferevent_free(a->alice.bev);
	}
	if (a->bob.bev != NULL) {
		bufferevent_free(a->bob.bev);
	}
	vt_engine_destroy(a->engine);
	a->engine = NULL;
	if (a->listener != NULL) {
		evconnlistener_free(a->listener);
	}
	event_free(a->flush_ev);
	event_free(a->timer_ev);
	event_free(a->deadline_ev);
	event_base_free(a->base);
}

int main(void)
{
	static struct app a = {.alice = {.user = "alice"}, .bob = {.user = "bob"}};
	struct timeval ten_s = {10, 0};
	uint16_t port;

	a.base = event_base_new();
	a.deadline_ev = evtimer_new(a.base, on_deadline, &a);
	if (a.base == NULL || a.deadline_ev == NULL || start_engine(&a) != 0) {
		fprintf(stderr, "libevent_app: cannot start\n");
		return 1;
	}
	port = start_listener(&a);
	a.port = port;
	if (port == 0 || client_start(&a, &a.bob, port) != 0) {
		fprintf(stderr, "libevent_app: cannot listen or connect\n");
		stop(&a);
		return 1;
	}
	evtimer_add(a.deadline_ev, &ten_s);

	/* Bob's PONG says he is logged in; alice starts then (alice_start). */
	bufferevent_write(a.bob.bev, "PING\n", 5);

	event_base_dispatch(a.base);
	printf("bob: pushes=%u of the first id=%u, retry after %llu ms; "
	       "alice: accepted=%d delivered=%d pong=%d\n",
	       a.bob.pushes, a.bob.same_pushes,
	       (unsigned long long)(a.bob.retry_ms - a.bob.first_push_ms), a.alice.accepted,
	       a.alice.delivered, a.alice.pong);
	stop(&a);

	puts(a.passed ? "libevent_app: ok" : "libevent_app: FAILED");
	return a.passed ? 0 : 1;
}
