/*
 * bench/client.c - opening client connections and reading what they get.
 *
 * Every socket is bound to its own loopback source address (127.0.0.2 to
 * 127.0.0.251) before it connects: one source address has only the
 * ephemeral port range (about 28,000 ports) to offer, and a run may hold
 * more connections than that to one server port.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "bench.h"
#include "mqtt.h"
#include "vt.h"
#include "ws.h"

/* Connections in the middle of connecting at once: more only adds SYN drops. */
#define MAX_CONNECTING 200

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static int make_socket(int i)
{
	struct sockaddr_in src = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0) {
		return -1;
	}
	src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(2 + i % 250));
	/* Let connect() pick the port, knowing the destination: more ports. */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void fail(struct vb_conn *c, const char *why)
{
	struct vb_bench *b = c->b;

	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->ready) {
		b->st.closed++;
		c->ready = 0;
		b->nready--;
	} else {
		b->failed++;
		b->connecting--;
	}
	if (b->st.closed + (uint64_t)b->failed <= 3) {
		fprintf(stderr, "vtbench: connection %d: %s\n", c->idx, why);
	}
}

static void open_one(struct vb_bench *b, struct vb_conn *c)
{
	int port = c->port > 0 ? c->port : b->o.port;
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = make_socket(c->idx);

	inet_pton(AF_INET, b->o.host, &dst.sin_addr);
	b->opened++;
	b->connecting++;
	if (fd < 0) {
		fail(c, strerror(errno));
		return;
	}
	c->b = b;
	c->rng = 0x9e3779b9u ^ (uint32_t)c->idx * 2654435761u;
	c->rng = c->rng ? c->rng : 1;
	c->bev = bufferevent_socket_new(b->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		fail(c, "connect failed");
	}
}

/* Keep up to MAX_CONNECTING connects going; start the scenario when all are done. */
static void pump(struct vb_bench *b)
{
	while (b->open_next < b->open_end && b->connecting < MAX_CONNECTING) {
		open_one(b, &b->conns[b->open_next++]);
	}
	if (b->open_next == b->open_end && b->connecting == 0 && b->h.start != NULL) {
		b->open_end = -1; /* start once per batch */
		b->h.start(b);
	}
}

void vb_open(struct vb_bench *b, int first, int n, const char *path)
{
	(void)path;
	b->open_next = first;
	b->open_end = first + n;
	pump(b);
}

void vb_close_all(struct vb_bench *b, int first, int n)
{
	for (int i = first; i < first + n; i++) {
		struct vb_conn *c = &b->conns[i];

		if (c->bev != NULL) {
			bufferevent_free(c->bev);
			c->bev = NULL;
			b->nready -= c->ready;
			c->ready = 0;
		}
	}
}

static void became_ready(struct vb_conn *c)
{
	c->ready = 1;
	c->b->nready++;
	c->b->connecting--;
	pump(c->b);
}

static void greet(struct vb_conn *c)
{
	struct vb_bench *b = c->b;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char path[64], token[1024];

	if (b->o.proto == VB_MQTT) {
		vb_mqtt_connect(out, c->user);
		vb_mqtt_subscribe(out, 1, c->user);
		return;
	}
	if (b->o.proto == VB_RELAY) {
		snprintf(path, sizeof(path), "/pair/%d", c->idx / 2);
		vb_ws_request(out, b->o.host, path, NULL);
		return;
	}
	if (vb_token(b, c->user, token, sizeof(token)) < 0) {
		fail(c, "cannot sign a token");
		return;
	}
	vb_ws_request(out, b->o.host, "/v1/ws", token);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct vb_conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		greet(c);
		return;
	}
	fail(c, (what & BEV_EVENT_EOF) ? "closed by the server" : strerror(errno));
	pump(c->b);
}

static void read_ws(struct vb_conn *c, struct evbuffer *in)
{
	struct vb_frame f;

	if (!c->ready) {
		int r = vb_ws_response(in);

		if (r < 0) {
			fail(c, "upgrade refused");
			pump(c->b);
			return;
		}
		if (r == 0) {
			return;
		}
		became_ready(c);
	}
	vb_ack_begin(c);
	while (c->bev != NULL && vb_ws_next(in, &f)) {
		c->b->st.frames_out++;
		if (f.opcode == WS_TEXT) {
			vb_vt_text(c, f.data, f.len);
		} else if (f.opcode == WS_PING) {
			vb_ws_send(bufferevent_get_output(c->bev), WS_PONG, f.data, f.len, &c->rng);
		}
		evbuffer_drain(in, f.total);
	}
	if (c->bev != NULL) {
		vb_ack_flush(c);
	}
}

static void read_mqtt(struct vb_conn *c, struct evbuffer *in)
{
	struct vb_mqtt_packet p;

	while (vb_mqtt_next(in, &p)) {
		c->b->st.frames_out++;
		if (p.type == MQTT_SUBACK && !c->ready) {
			became_ready(c);
		} else if (p.type == MQTT_PUBACK) {
			c->b->st.accepted++;
			c->b->h.accepted(c);
		} else if (p.type == MQTT_PUBLISH) {
			vb_mqtt_puback(bufferevent_get_output(c->bev), p.id);
			c->b->st.frames_in++;
			vb_vt_body(c, p.payload, p.len);
		}
		evbuffer_drain(in, p.total);
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct vb_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->b->o.proto == VB_MQTT) {
		read_mqtt(c, in);
	} else {
		read_ws(c, in);
	}
}
