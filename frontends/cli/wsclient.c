/*
 * frontends/cli/wsclient.c - a WebSocket client on libevent and wslay.
 *
 * The opening handshake is written and checked here; from the 101 on, wslay
 * frames and unframes, reading from and writing to the bufferevent's
 * buffers. wslay never touches the socket, so "would block" just means the
 * input buffer is empty.
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

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HANDSHAKE_MAX 8192
#define CLOSE_WAIT_MS 2000

struct vt_wsc {
	struct bufferevent *bev;
	wslay_event_context_ptr ws; /* NULL until the handshake is done */
	struct event *close_timer;
	struct vt_wsc_callbacks cb;
	void *arg;
	char accept[64]; /* the Sec-WebSocket-Accept we expect */
	int closed;      /* on_close was called */
	int in_recv;     /* inside wslay_event_recv, which must not be re-entered */
};

/* ---- the URL and the request ---- */

struct url_parts {
	char host[256];
	char port[8];
	char path[512];
};

static int parse_url(const char *url, struct url_parts *u)
{
	const char *hp = url + 5;
	const char *slash;
	const char *colon;
	size_t hlen;

	if (strncmp(url, "ws://", 5) != 0) {
		return -1;
	}
	slash = strchr(hp, '/');
	snprintf(u->path, sizeof(u->path), "%s", slash != NULL ? slash : "/v1/ws");
	if (strcmp(u->path, "/") == 0) {
		snprintf(u->path, sizeof(u->path), "/v1/ws");
	}
	hlen = slash != NULL ? (size_t)(slash - hp) : strlen(hp);
	colon = memchr(hp, ':', hlen);
	if (colon == NULL) {
		snprintf(u->port, sizeof(u->port), "80");
		colon = hp + hlen;
	} else if ((size_t)(hp + hlen - colon - 1) >= sizeof(u->port) || colon + 1 == hp + hlen) {
		return -1;
	} else {
		snprintf(u->port, sizeof(u->port), "%.*s", (int)(hp + hlen - colon - 1), colon + 1);
	}
	if (colon == hp || (size_t)(colon - hp) >= sizeof(u->host)) {
		return -1;
	}
	snprintf(u->host, sizeof(u->host), "%.*s", (int)(colon - hp), hp);
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

static int write_request(struct vt_wsc *c, const struct url_parts *u, const char *token,
                         const char *device)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char key[32];
	const char *sep = strchr(u->path, '?') != NULL ? "&" : "?";

	if (make_key(key, sizeof(key), c->accept, sizeof(c->accept)) != 0) {
		return -1;
	}
	evbuffer_add_printf(out, "GET %s", u->path);
	if (device != NULL) {
		/* Device ids are [A-Za-z0-9._@-]: nothing to escape in a query. */
		evbuffer_add_printf(out, "%sdevice=%s", sep, device);
	}
	evbuffer_add_printf(out,
	                    " HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
	                    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	                    "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
	                    u->host, u->port, key, token);
	return 0;
}

/* ---- endings ---- */

static void finish(struct vt_wsc *c, int code, const char *why)
{
	if (c->closed) {
		return;
	}
	c->closed = 1;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->cb.on_close != NULL) {
		c->cb.on_close(c->arg, code, why);
	}
}

static void on_close_timeout(evutil_socket_t fd, short what, void *arg)
{
	finish(arg, 1000, "closed (the server did not answer the close)");
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

static ssize_t on_ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                          int flags, void *arg)
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
	if (c->closed || c->in_recv) {
		return;
	}
	if (wslay_event_send(c->ws) != 0) {
		finish(c, 0, "connection failed");
		return;
	}
	if (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws)) {
		int code = wslay_event_get_status_code_received(c->ws);

		finish(c, code == WSLAY_CODE_NO_STATUS_RCVD ? 1005 : code, "closed");
	}
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
		finish(c, 0, "connection failed");
		return;
	}
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

/* The response head, checked: 0 when upgraded; -1 with @why otherwise. */
static int check_response(struct vt_wsc *c, const char *head, char *why, size_t cap)
{
	char got[64];

	if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
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

static void on_handshake(struct vt_wsc *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char head[HANDSHAKE_MAX + 1];
	char why[300];

	if (end.pos < 0) {
		if (evbuffer_get_length(in) > HANDSHAKE_MAX) {
			finish(c, 0, "answer to the upgrade too long");
		}
		return;
	}
	if ((size_t)end.pos + 4 > HANDSHAKE_MAX) {
		finish(c, 0, "answer to the upgrade too long");
		return;
	}
	evbuffer_remove(in, head, (size_t)end.pos + 4);
	head[end.pos + 4] = '\0';
	if (check_response(c, head, why, sizeof(why)) != 0) {
		finish(c, 0, why);
		return;
	}
	if (wslay_event_context_client_init(&c->ws, &ws_callbacks, c) != 0) {
		finish(c, 0, "out of memory");
		return;
	}
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

	if (c->ws == NULL) {
		on_handshake(c);
	} else {
		pump(c);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct vt_wsc *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		return;
	}
	if (what & BEV_EVENT_EOF) {
		finish(c, c->ws != NULL ? 1006 : 0, "the server closed the connection");
	} else {
		finish(c, 0, "cannot connect");
	}
}

static int open_socket(struct vt_wsc *c, struct event_base *base, const struct url_parts *u)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	int rc;

	if (getaddrinfo(u->host, u->port, &hints, &ai) != 0 || ai == NULL) {
		fprintf(stderr, "vartalap-cli: cannot resolve %s\n", u->host);
		return -1;
	}
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	rc = c->bev != NULL ? bufferevent_socket_connect(c->bev, ai->ai_addr, (int)ai->ai_addrlen)
	                    : -1;
	freeaddrinfo(ai);
	if (rc != 0) {
		fprintf(stderr, "vartalap-cli: cannot connect to %s:%s\n", u->host, u->port);
		return -1;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	return bufferevent_enable(c->bev, EV_READ);
}

struct vt_wsc *vt_wsc_connect(struct event_base *base, const char *url, const char *token,
                              const char *device, const struct vt_wsc_callbacks *cb,
                              void *arg)
{
	struct url_parts u;
	struct vt_wsc *c;

	if (parse_url(url, &u) != 0) {
		fprintf(stderr, "vartalap-cli: expected a URL ws://HOST:PORT[/PATH], got '%s'\n",
		        url);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return NULL;
	}
	c->cb = *cb;
	c->arg = arg;
	c->close_timer = evtimer_new(base, on_close_timeout, c);
	if (c->close_timer == NULL || open_socket(c, base, &u) != 0 ||
	    write_request(c, &u, token, device) != 0) {
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
	return 0;
}

void vt_wsc_close(struct vt_wsc *c)
{
	struct timeval tv = {CLOSE_WAIT_MS / 1000, (CLOSE_WAIT_MS % 1000) * 1000};

	if (c->closed) {
		return;
	}
	if (c->ws == NULL) {
		finish(c, 1000, "closed before the upgrade");
		return;
	}
	wslay_event_queue_close(c->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
	evtimer_add(c->close_timer, &tv);
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
	free(c);
}
