/*
 * frontends/http/conns.c - count, find and time every HTTP connection.
 *
 * A connection is seen three times. evhttp asks for its bufferevent (the
 * socket is accepted but evhttp's own record does not exist yet): it is
 * counted and a zero-delay event is queued. That event runs before any byte
 * of the socket is read; by then evhttp has made its record and installed
 * itself as the bufferevent's callback argument, which is how the record is
 * found. The close callback of that record ends the count; a WebSocket
 * leaves evhttp that way too, and the WebSocket gateway counts it from then.
 *
 * Between a request's arrival and its reply the deadline is stopped; the
 * reply's completion starts it again, so an idle kept-alive connection also
 * has that long to send its next request.
 */
#include "conns.h"

#include <stdint.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <vartalap/log.h>

#include "../tls/tls.h"
#include "../ws/gateway.h"
#include "internal.h"

struct vt_http_conn {
	struct vt_http_gateway *gw;
	LIST_ENTRY(vt_http_conn) link;
	struct vt_http_conn *hnext;      /* in the table by @evcon */
	struct bufferevent *bev;         /* evhttp owns it */
	struct evhttp_connection *evcon; /* NULL until bound */
	struct event *timer;             /* binding, then the request deadline */
	unsigned over_cap : 1;           /* answer its request 503, then close */
};

static size_t slot(const struct vt_http_gateway *gw, const void *evcon)
{
	uintptr_t h = (uintptr_t)evcon;

	/* Records are at least 16-byte aligned; mix the upper bits down. */
	h ^= h >> 17;
	h *= (uintptr_t)0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 7) & (gw->conn_slots - 1);
}

/* Double the table once it holds more records than slots. */
static void grow(struct vt_http_gateway *gw)
{
	size_t old = gw->conn_slots;
	struct vt_http_conn **prev = gw->conn_table;
	struct vt_http_conn **table = calloc(old * 2, sizeof(*table));
	size_t i;

	if (table == NULL) {
		return; /* longer chains, still correct */
	}
	gw->conn_table = table;
	gw->conn_slots = old * 2;
	for (i = 0; i < old; i++) {
		while (prev[i] != NULL) {
			struct vt_http_conn *c = prev[i];
			size_t s = slot(gw, c->evcon);

			prev[i] = c->hnext;
			c->hnext = table[s];
			table[s] = c;
		}
	}
	free(prev);
}

static void table_add(struct vt_http_conn *c)
{
	struct vt_http_gateway *gw = c->gw;
	size_t s;

	if (gw->conn_bound >= gw->conn_slots) {
		grow(gw);
	}
	s = slot(gw, c->evcon);
	c->hnext = gw->conn_table[s];
	gw->conn_table[s] = c;
	gw->conn_bound++;
}

static struct vt_http_conn *table_find(struct vt_http_gateway *gw,
                                       const struct evhttp_connection *evcon)
{
	struct vt_http_conn *c = gw->conn_table[slot(gw, evcon)];

	while (c != NULL && c->evcon != evcon) {
		c = c->hnext;
	}
	return c;
}

static void table_remove(struct vt_http_conn *c)
{
	struct vt_http_conn **pp = &c->gw->conn_table[slot(c->gw, c->evcon)];

	while (*pp != NULL && *pp != c) {
		pp = &(*pp)->hnext;
	}
	if (*pp == c) {
		*pp = c->hnext;
		c->gw->conn_bound--;
	}
}

/* Forget @c; the socket is evhttp's (or already gone). */
static void conn_free(struct vt_http_conn *c)
{
	if (c->evcon != NULL) {
		table_remove(c);
	}
	LIST_REMOVE(c, link);
	c->gw->conn_count--;
	event_free(c->timer);
	free(c);
}

static void arm_deadline(struct vt_http_conn *c)
{
	uint32_t ms = c->gw->cfg.request_deadline_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(c->timer, &tv);
}

/* evhttp frees the connection: requests waiting on it learn, then we forget it. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct vt_http_conn *c = arg;

	vt_http_pending_conn_closed(c->gw, evcon);
	conn_free(c);
}

/* Sockets of the port: HTTP connections, and WebSockets taken from evhttp. */
static size_t sockets(const struct vt_http_gateway *gw)
{
	return gw->conn_count + (gw->ws != NULL ? vt_ws_gateway_count(gw->ws) : 0);
}

/*
 * Far over the cap, answering costs more than it helps: such sockets are
 * closed at once instead of being read for a 503.
 */
static int far_over_cap(const struct vt_http_gateway *gw)
{
	size_t cap = gw->cfg.max_connections;

	return sockets(gw) > cap + cap / 8 + 64;
}

/* The zero-delay step after accept: find evhttp's record of the socket. */
/*
 * Chat traffic is small frames in both directions: Nagle's algorithm would
 * hold a receipt back until the client's delayed ACK, tens of milliseconds.
 */
static void no_delay(evutil_socket_t fd)
{
	int one = 1;

	if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
		vt_log(VT_LOG_DEBUG, "http: nodelay failed fd=%d", (int)fd);
	}
}

static void bind_conn(struct vt_http_conn *c)
{
	void *evcon = NULL;

	bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
	if (evcon == NULL) {
		/* evhttp failed to make its record and left the bufferevent to us. */
		bufferevent_free(c->bev);
		conn_free(c);
		return;
	}

	c->evcon = evcon;
	no_delay(bufferevent_getfd(c->bev));
	table_add(c);
	evhttp_connection_set_closecb(c->evcon, on_close, c);
	if (c->over_cap && far_over_cap(c->gw)) {
		evhttp_connection_free(c->evcon);
		return;
	}
	arm_deadline(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct vt_http_conn *c = arg;

	if (c->evcon == NULL) {
		bind_conn(c);
		return;
	}
	vt_log(VT_LOG_DEBUG, "http: request deadline passed; closing fd=%d",
	       (int)bufferevent_getfd(c->bev));

	/* Runs on_close(), which frees @c. */
	evhttp_connection_free(c->evcon);
}

static struct bufferevent *new_bev(struct vt_http_gateway *gw)
{
	if (gw->tls != NULL) {
		return vt_tls_bev_new(gw->base, gw->tls);
	}
	return bufferevent_socket_new(gw->base, -1, BEV_OPT_CLOSE_ON_FREE);
}

/* evhttp accepted a socket and wants its bufferevent. */
static struct bufferevent *on_accept(struct event_base *base, void *arg)
{
	struct vt_http_gateway *gw = arg;
	struct vt_http_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		return NULL; /* evhttp makes a plain one; that socket goes untracked */
	}
	c->gw = gw;
	c->bev = new_bev(gw);
	c->timer = event_new(base, -1, 0, on_timer, c);
	if (c->bev == NULL || c->timer == NULL) {
		if (c->bev != NULL) {
			bufferevent_free(c->bev);
		}
		if (c->timer != NULL) {
			event_free(c->timer);
		}
		free(c);
		return NULL;
	}

	LIST_INSERT_HEAD(&gw->conns, c, link);
	gw->conn_count++;
	c->over_cap = sockets(gw) > gw->cfg.max_connections;
	event_active(c->timer, EV_TIMEOUT, 0);
	return c->bev;
}

/* The reply is out and the connection stays: the next request has a deadline. */
static void on_reply_done(struct evhttp_request *req, void *arg)
{
	struct vt_http_gateway *gw = arg;
	struct vt_http_conn *c = table_find(gw, evhttp_request_get_connection(req));

	if (c != NULL) {
		arm_deadline(c);
	}
}

int vt_http_conns_request_in(struct vt_http_gateway *gw, struct evhttp_request *req)
{
	struct vt_http_conn *c = table_find(gw, evhttp_request_get_connection(req));

	if (c == NULL) {
		return 0;
	}
	evtimer_del(c->timer);
	evhttp_request_set_on_complete_cb(req, on_reply_done, gw);
	return c->over_cap;
}

int vt_http_conns_init(struct vt_http_gateway *gw)
{
	gw->conn_slots = 64;
	gw->conn_table = calloc(gw->conn_slots, sizeof(*gw->conn_table));
	if (gw->conn_table == NULL) {
		return VT_ENOMEM;
	}
	LIST_INIT(&gw->conns);
	evhttp_set_bevcb(gw->http, on_accept, gw);
	return 0;
}

void vt_http_conns_finish(struct vt_http_gateway *gw)
{
	/* Only records whose bind step never ran can be left. */
	while (!LIST_EMPTY(&gw->conns)) {
		struct vt_http_conn *c = LIST_FIRST(&gw->conns);

		if (c->evcon == NULL) {
			bufferevent_free(c->bev);
		}
		conn_free(c);
	}
	free(gw->conn_table);
	gw->conn_table = NULL;
}

int vt_http_conns_tracked(struct vt_http_gateway *gw, struct evhttp_connection *evcon)
{
	return table_find(gw, evcon) != NULL;
}

size_t vt_http_conns_count(const struct vt_http_gateway *gw)
{
	return sockets(gw);
}
