/*
 * frontends/cli/wsclient.c - a WebSocket client on libevent and wslay.
 *
 * The opening handshake is written and checked here; from the 101 on, wslay
 * frames and unframes, reading from and writing to the bufferevent's
 * buffers. wslay never touches the socket, so "would block" just means the
 * input buffer is empty. For wss:// the bufferevent is an OpenSSL one, and
 * nothing above it changes.
 *
 * A connection that goes quiet is probed: after KEEPALIVE_S without a byte
 * from the server a ping goes out, and a server that sends nothing at all
 * within PONG_WAIT_S after it is taken for gone (a network that dropped
 * without a FIN never says so otherwise).
 *
 * When wslay closes on its own, over what the server sent (a message over
 * MAX_RECV_MSG, a protocol error), it reads nothing more: the connection
 * then lingers, throwing away what comes, until the server hangs up or
 * CLOSE_WAIT_MS pass, so that the close frame reaches it.
 */
#include "wsclient.h"

#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>

#include "../common/frontend.h"
#include "json.h"
#include "tlsclient.h"

#define WS_GUID        "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HANDSHAKE_MAX  8192
#define CLOSE_WAIT_MS  2000
#define CONNECT_WAIT_S 10
#define KEEPALIVE_S    30
#define PONG_WAIT_S    10

/*
 * The largest message taken from the server. An event carries the body of
 * an envelope the server took, at most VT_FE_MAX_MESSAGE_CAP bytes (the
 * most vartalapd's --max-message can be), with a few short fields around
 * it; a delivered receipt of 64 refs is some 7 KiB. 16 KiB over the cap
 * leaves room for both. A larger message comes from no conforming server,
 * and buffering it would let a server take all our memory.
 *
 * TODO: a group event lists every member and admin, so with vartalapd's
 * --max-group-members raised above some 100000 (long user ids) it can
 * exceed this, and the client can then not get past it.
 */
#define MAX_RECV_MSG (VT_FE_MAX_MESSAGE_CAP + 16 * 1024)

struct vt_wsc {
	struct event_base *base;
	const struct vt_wsc_config *cfg;
	struct addrinfo *addrs; /* every address of the host */
	struct addrinfo *addr;  /* the one being tried */
	struct bufferevent *bev;
	wslay_event_context_ptr ws; /* NULL until the handshake is done */
	struct event *close_timer;
	struct vt_wsc_callbacks cb;
	void *arg;
	char accept[64]; /* the Sec-WebSocket-Accept we expect */
	int connected;   /* TCP (and TLS) is up */
	int pinged;      /* a keepalive ping is out, nothing came since */
	int closing;     /* vt_wsc_close() was called */
	int closed;      /* on_close was called */
	int lingering;   /* wslay closed on its own: waiting for the server to hang up */
	int in_recv;     /* inside wslay_event_recv, which must not be re-entered */
};

static int open_socket(struct vt_wsc *c);

/* ---- the URL and the request ---- */

/* HOST or [HOST] at @hp (@hlen bytes, up to the path) into @u, and the port. */
static int parse_authority(const char *hp, size_t hlen, struct vt_wsc_url *u)
{
	const char *end = hp + hlen;
	const char *host = hp;
	const char *host_end;
	const char *colon;

	if (hlen > 0 && hp[0] == '[') {
		host = hp + 1;
		host_end = memchr(host, ']', hlen - 1);
		if (host_end == NULL) {
			return -1;
		}
		colon = host_end + 1 < end && host_end[1] == ':' ? host_end + 1 : NULL;
		if (colon == NULL && host_end + 1 != end) {
			return -1;
		}
	} else {
		colon = memchr(hp, ':', hlen);
		host_end = colon != NULL ? colon : end;
	}
	if (host_end == host || (size_t)(host_end - host) >= sizeof(u->host)) {
		return -1;
	}
	snprintf(u->host, sizeof(u->host), "%.*s", (int)(host_end - host), host);
	if (colon == NULL) {
		snprintf(u->port, sizeof(u->port), "%s", u->tls ? "443" : "80");
		return 0;
	}
	if (colon + 1 == end || (size_t)(end - colon - 1) >= sizeof(u->port) ||
	    strspn(colon + 1, "0123456789") < (size_t)(end - colon - 1)) {
		return -1;
	}
	snprintf(u->port, sizeof(u->port), "%.*s", (int)(end - colon - 1), colon + 1);
	return 0;
}

int vt_wsc_url_parse(const char *url, struct vt_wsc_url *u)
{
	const char *hp;
	const char *slash;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, "ws://", 5) == 0) {
		hp = url + 5;
	} else if (strncmp(url, "wss://", 6) == 0) {
		hp = url + 6;
		u->tls = 1;
	} else {
		return -1;
	}
	slash = strchr(hp, '/');
	if (slash == NULL || strcmp(slash, "/") == 0) {
		snprintf(u->path, sizeof(u->path), "/v1/ws");
	} else if (strlen(slash) >= sizeof(u->path) || strpbrk(slash, " \t\r\n") != NULL) {
		return -1;
	} else {
		snprintf(u->path, sizeof(u->path), "%s", slash);
	}
	if (parse_authority(hp, slash != NULL ? (size_t)(slash - hp) : strlen(hp), u) != 0) {
		return -1;
	}
	if (strchr(u->host, ':') != NULL) {
		snprintf(u->where, sizeof(u->where), "[%s]:%s", u->host, u->port);
	} else {
		snprintf(u->where, sizeof(u->where), "%s:%s", u->host, u->port);
	}
	return 0;
}

/* A fresh Sec-WebSocket-Key in @key, and the answer the server must give in @accept. */
static int make_key(char *key, size_t key_cap, char *accept, size_t acc_cap)
{
	unsigned char raw[16];
	unsigned char sha[EVP_MAX_MD_SIZE];
	unsigned int sha_len = 0;
	char both[128];

	if (key_cap < 25 || acc_cap < 29 || RAND_bytes(raw, sizeof(raw)) != 1) {
		return -1;
	}
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	snprintf(both, sizeof(both), "%s%s", key, WS_GUID);
	if (EVP_Digest(both, strlen(both), sha, &sha_len, EVP_sha1(), NULL) != 1) {
		return -1;
	}
	EVP_EncodeBlock((unsigned char *)accept, sha, (int)sha_len);
	return 0;
}

static int write_request(struct vt_wsc *c)
{
	const struct vt_wsc_url *u = c->cfg->url;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const char *sep = strchr(u->path, '?') != NULL ? "&" : "?";
	char key[32];

	if (make_key(key, sizeof(key), c->accept, sizeof(c->accept)) != 0) {
		return -1;
	}
	evbuffer_add_printf(out, "GET %s", u->path);
	if (c->cfg->device != NULL) {
		/* Device ids are [A-Za-z0-9._@-]: nothing to escape in a query. */
		evbuffer_add_printf(out, "%sdevice=%s", sep, c->cfg->device);
	}
	evbuffer_add_printf(out,
	                    " HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	                    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	                    "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
	                    u->where, key, c->cfg->token);
	return 0;
}

/* ---- endings ---- */

static void finish(struct vt_wsc *c, int code, int retry, const char *why)
{
	if (c->closed) {
		return;
	}
	c->closed = 1;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->cb.on_close != NULL) {
		c->cb.on_close(c->arg, code, retry && !c->closing, why);
	}
}

/* Close codes after which the protocol says to connect again (docs/PROTOCOL.md). */
static int close_code_retries(int code)
{
	switch (code) {
	case 1001: /* going away: the server is shutting down */
	case 1005: /* no code given */
	case 1006: /* no close frame */
	case 1011: /* internal server error */
	case 1012: /* service restart */
	case 1013: /* try again later */
	case 1014: /* bad gateway */
		return 1;
	default:
		return 0;
	}
}

/* Why the server closed, for the codes that end the client (docs/PROTOCOL.md). */
static const char *close_code_said(int code)
{
	switch (code) {
	case 1008:
		return "the server closed the connection (policy)";
	case 4001:
		return "the server closed the connection (token expired)";
	case 4002:
		return "the server closed the connection (the same device connected again)";
	case 4003:
		return "the server closed the connection (logged out)";
	default:
		return "the server closed the connection";
	}
}

/*
 * The end of a connection wslay closed on its own, over what the server
 * sent: connecting again would only bring the same again.
 */
static void finish_own_close(struct vt_wsc *c)
{
	int code = wslay_event_get_status_code_sent(c->ws);
	char why[200];

	switch (code) {
	case WSLAY_CODE_NORMAL_CLOSURE: /* vt_wsc_close() had sent its close first */
		snprintf(why, sizeof(why), "closed");
		break;
	case WSLAY_CODE_MESSAGE_TOO_BIG:
		snprintf(why, sizeof(why),
		         "closed the connection: the server sent a message over %u bytes, "
		         "larger than any event (message too big)",
		         MAX_RECV_MSG);
		break;
	case WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA:
		snprintf(why, sizeof(why),
		         "closed the connection: the server sent text that is not UTF-8");
		break;
	default:
		snprintf(why, sizeof(why),
		         "closed the connection: the server broke the WebSocket protocol");
		break;
	}
	finish(c, code, 0, why);
}

static void on_close_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct vt_wsc *c = arg;

	if (c->lingering) {
		finish_own_close(c);
		return;
	}
	finish(c, 1000, 0, "closed (the server did not answer the close)");
}

/* Give the server CLOSE_WAIT_MS to answer or hang up after our close. */
static void arm_close_timer(struct vt_wsc *c)
{
	struct timeval tv = {CLOSE_WAIT_MS / 1000, (CLOSE_WAIT_MS % 1000) * 1000};

	evtimer_add(c->close_timer, &tv);
}

/* wslay sent a close of its own and reads no more: wait for the server to hang up. */
static void linger(struct vt_wsc *c)
{
	if (!c->lingering) {
		c->lingering = 1;
		arm_close_timer(c);
	}
}

/* ---- wslay callbacks ---- */

static ssize_t on_ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *arg)
{
	struct vt_wsc *c = arg;
	int n = evbuffer_remove(bufferevent_get_input(c->bev), buf, len);

	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return n;
}

static ssize_t on_ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *arg)
{
	struct vt_wsc *c = arg;

	if (bufferevent_write(c->bev, data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static int on_ws_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *arg)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void on_ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m,
                      void *arg)
{
	struct vt_wsc *c = arg;

	if (m->opcode == WSLAY_TEXT_FRAME && c->cb.on_text != NULL && !c->closed) {
		c->cb.on_text(c->arg, (const char *)m->msg, m->msg_length);
	}
}

static const struct wslay_event_callbacks ws_callbacks = {
        .recv_callback = on_ws_recv,
        .send_callback = on_ws_send,
        .genmask_callback = on_ws_genmask,
        .on_msg_recv_callback = on_ws_msg,
};

/* Write what wslay queued; report the end once both directions are closed. */
static void flush(struct vt_wsc *c)
{
	int code;

	if (c->closed || c->in_recv) {
		return;
	}
	if (wslay_event_send(c->ws) != 0) {
		finish(c, 1006, 1, "the connection failed while sending");
		return;
	}
	if (wslay_event_want_read(c->ws) || wslay_event_want_write(c->ws)) {
		return;
	}
	if (!wslay_event_get_close_received(c->ws)) {
		linger(c);
		return;
	}
	code = wslay_event_get_status_code_received(c->ws);
	if (code == WSLAY_CODE_NO_STATUS_RCVD) {
		code = 1005;
	}
	finish(c, code, close_code_retries(code), close_code_said(code));
}

/* Read what came in (callbacks may queue answers meanwhile), then write. */
static void pump(struct vt_wsc *c)
{
	int rc;

	if (c->closed) {
		return;
	}
	c->in_recv = 1;
	rc = wslay_event_recv(c->ws);
	c->in_recv = 0;
	if (rc != 0) {
		finish(c, 1006, 1, "the connection failed while reading");
		return;
	}
	flush(c);
}

/* ---- keeping an open connection honest ---- */

static void set_timeouts(struct vt_wsc *c, int seconds)
{
	struct timeval tv = {seconds, 0};

	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

/* Nothing came for a while: ping once, and give up if that brings nothing either. */
static void on_quiet(struct vt_wsc *c)
{
	struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};

	if (c->pinged || c->ws == NULL || wslay_event_queue_msg(c->ws, &ping) != 0) {
		finish(c, c->ws != NULL ? 1006 : 0, 1, "no answer from the server");
		return;
	}
	c->pinged = 1;
	set_timeouts(c, PONG_WAIT_S);

	/* A timeout disables its direction; the ping must get out, the pong in. */
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	flush(c);
}

/* ---- the handshake ---- */

/* Find header @name in the response head @h (NUL-terminated); value into @out. */
static int find_header(const char *h, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name);

	for (const char *l = strstr(h, "\r\n"); l != NULL; l = strstr(l + 2, "\r\n")) {
		const char *v = l + 2;

		if (strncasecmp(v, name, nlen) == 0 && v[nlen] == ':') {
			v += nlen + 1;
			v += strspn(v, " \t");
			snprintf(out, cap, "%.*s", (int)strcspn(v, " \t\r\n"), v);
			return 0;
		}
	}
	return -1;
}

/*
 * The response head, checked: 0 when upgraded; -1 with @why otherwise, and
 * @retry set when the refusal is one that may pass (overloaded, too many
 * requests).
 */
static int check_response(struct vt_wsc *c, const char *head, char *why, size_t cap, int *retry)
{
	char got[64];
	int status = 0;

	*retry = 0;
	if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
		if (sscanf(head, "HTTP/1.%*d %3d", &status) == 1) {
			*retry = status == 429 || (status >= 500 && status <= 599);
		}
		snprintf(why, cap, "refused: %.*s", (int)strcspn(head, "\r\n"), head);
		return -1;
	}
	if (find_header(head, "Sec-WebSocket-Accept", got, sizeof(got)) != 0 ||
	    strcmp(got, c->accept) != 0) {
		snprintf(why, cap, "bad Sec-WebSocket-Accept in the answer");
		return -1;
	}
	return 0;
}

/*
 * Append the error code of a refused upgrade's body to @why, when the body
 * came with the head: "401 Unauthorized" alone does not tell a token that
 * a logout revoked from an expired or a forged one.
 */
static void add_refusal_code(struct evbuffer *in, char *why, size_t cap)
{
	size_t len = evbuffer_get_length(in) < 1024 ? evbuffer_get_length(in) : 1024;
	const char *body = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	struct vt_json_val obj, key, v;
	size_t pos = 0, at = strlen(why);
	char code[32];

	if (body == NULL || vt_json_validate_value(body, len, 2, &obj) != 0 ||
	    obj.type != VT_JSON_OBJECT) {
		return;
	}
	while (vt_json_next_member(&obj, &pos, &key, &v)) {
		if (!vt_json_key_is(&key, "code")) {
			continue;
		}
		/* lowercase letters and '_' only: nothing else reaches the terminal */
		if (vt_json_str_decode(&v, code, sizeof(code)) > 0 &&
		    strspn(code, "abcdefghijklmnopqrstuvwxyz_") == strlen(code)) {
			snprintf(why + at, cap - at, " (%s)", code);
		}
		return;
	}
}

static void on_handshake(struct vt_wsc *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char head[HANDSHAKE_MAX + 1];
	char why[300];
	int retry;

	if (end.pos < 0) {
		if (evbuffer_get_length(in) > HANDSHAKE_MAX) {
			finish(c, 0, 0, "answer to the upgrade too long");
		}
		return;
	}
	if ((size_t)end.pos + 4 > HANDSHAKE_MAX) {
		finish(c, 0, 0, "answer to the upgrade too long");
		return;
	}
	evbuffer_remove(in, head, (size_t)end.pos + 4);
	head[end.pos + 4] = '\0';
	if (check_response(c, head, why, sizeof(why), &retry) != 0) {
		add_refusal_code(in, why, sizeof(why));
		finish(c, 0, retry, why);
		return;
	}
	if (wslay_event_context_client_init(&c->ws, &ws_callbacks, c) != 0) {
		finish(c, 0, 0, "out of memory");
		return;
	}
	wslay_event_config_set_max_recv_msg_length(c->ws, MAX_RECV_MSG);
	set_timeouts(c, KEEPALIVE_S);
	if (c->cb.on_open != NULL) {
		c->cb.on_open(c->arg);
	}
	/* Frames may have come in the same read as the 101. */
	pump(c);
}

/* ---- libevent callbacks ---- */

static void on_read(struct bufferevent *bev, void *arg)
{
	struct vt_wsc *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->ws == NULL) {
		on_handshake(c);
		return;
	}
	if (c->lingering) {
		/* wslay takes nothing more: what still comes is thrown away. */
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (c->pinged) {
		c->pinged = 0;
		set_timeouts(c, KEEPALIVE_S);
	}
	pump(c);
}

/* The socket failed or ended: why, and whether it is worth another try. */
static void on_failure(struct vt_wsc *c, short what)
{
	const struct vt_wsc_url *u = c->cfg->url;
	int err = EVUTIL_SOCKET_ERROR();
	char why[640];
	char tls_why[300];

	if (c->cfg->tls != NULL && c->ws == NULL &&
	    vt_cli_tls_explain(c->bev, tls_why, sizeof(tls_why))) {
		snprintf(why, sizeof(why), "TLS with %s: %s", u->where, tls_why);
		finish(c, 0, 0, why);
		return;
	}
	if (!c->connected && c->addr->ai_next != NULL) {
		/* Refused on this address (say IPv6 ::1): the next one may serve. */
		c->addr = c->addr->ai_next;
		bufferevent_free(c->bev);
		c->bev = NULL;
		if (open_socket(c) != 0) {
			finish(c, 0, 1, "cannot connect");
		}
		return;
	}
	if (!c->connected) {
		snprintf(why, sizeof(why), "cannot connect to %s: %s", u->where,
		         err != 0 ? evutil_socket_error_to_string(err) : "closed at once");
	} else if (what & BEV_EVENT_EOF) {
		snprintf(why, sizeof(why), "the server closed the connection%s",
		         c->ws == NULL ? " before answering the upgrade" : "");
	} else {
		snprintf(why, sizeof(why), "the connection to %s failed: %s", u->where,
		         evutil_socket_error_to_string(err));
	}
	finish(c, c->ws != NULL ? 1006 : 0, 1, why);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct vt_wsc *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		c->connected = 1;
	} else if (c->lingering) {
		/* The server hung up after our close (or went quiet, or failed): done. */
		finish_own_close(c);
	} else if ((what & BEV_EVENT_TIMEOUT) && c->ws != NULL) {
		on_quiet(c);
	} else if (what & BEV_EVENT_TIMEOUT) {
		finish(c, 0, 1, "no answer to the upgrade in time");
	} else {
		on_failure(c, what);
	}
}

/* A bufferevent connecting to c->addr, with the upgrade request queued. */
static int open_socket(struct vt_wsc *c)
{
	if (c->cfg->tls != NULL) {
		c->bev = vt_cli_tls_bev_new(c->base, c->cfg->tls, c->cfg->url->host);
	} else {
		c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (c->bev == NULL) {
		return -1;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	set_timeouts(c, CONNECT_WAIT_S);
	if (write_request(c) != 0 || bufferevent_enable(c->bev, EV_READ) != 0) {
		return -1;
	}

	/* A refusal seen at once is still reported through on_event. */
	return bufferevent_socket_connect(c->bev, c->addr->ai_addr, (int)c->addr->ai_addrlen);
}

struct vt_wsc *vt_wsc_connect(struct event_base *base, const struct vt_wsc_config *cfg,
                              const struct vt_wsc_callbacks *cb, void *arg)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct vt_wsc *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL) {
		return NULL;
	}
	c->base = base;
	c->cfg = cfg;
	c->cb = *cb;
	c->arg = arg;
	rc = getaddrinfo(cfg->url->host, cfg->url->port, &hints, &c->addrs);
	if (rc != 0 || c->addrs == NULL) {
		fprintf(stderr, "vartalap-cli: cannot resolve %s: %s\n", cfg->url->host,
		        gai_strerror(rc));
		vt_wsc_free(c);
		return NULL;
	}
	c->addr = c->addrs;
	c->close_timer = evtimer_new(base, on_close_timeout, c);
	if (c->close_timer == NULL || open_socket(c) != 0) {
		fprintf(stderr, "vartalap-cli: cannot connect to %s\n", cfg->url->where);
		vt_wsc_free(c);
		return NULL;
	}
	return c;
}

int vt_wsc_send(struct vt_wsc *c, const char *text, size_t len)
{
	struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};

	if (c->ws == NULL || c->closed || wslay_event_queue_msg(c->ws, &m) != 0) {
		return -1;
	}
	flush(c);
	return c->closed ? -1 : 0;
}

void vt_wsc_close(struct vt_wsc *c)
{
	if (c->closed || c->closing) {
		return;
	}
	c->closing = 1;
	if (c->ws == NULL) {
		finish(c, 1000, 0, "closed before the upgrade");
		return;
	}
	wslay_event_queue_close(c->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
	arm_close_timer(c);
	flush(c);
}

void vt_wsc_free(struct vt_wsc *c)
{
	if (c == NULL) {
		return;
	}
	if (c->ws != NULL) {
		wslay_event_context_free(c->ws);
	}
	if (c->close_timer != NULL) {
		event_free(c->close_timer);
	}
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
	}
	if (c->addrs != NULL) {
		freeaddrinfo(c->addrs);
	}
	free(c);
}
