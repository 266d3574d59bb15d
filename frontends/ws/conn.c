/*
 * frontends/ws/conn.c - one WebSocket connection: wslay framing over a
 * bufferevent taken from evhttp, bound to one engine connection.
 *
 * Lifetime. The engine may call send() and close() at any time, also from
 * inside vt_conn_receive(); those ops only queue frames and schedule the
 * service event. Everything that can free the connection (socket errors, the
 * end of the close handshake, the ping deadline) runs from a libevent
 * callback of this connection, and nothing touches @wc after ws_drop().
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <wslay/wslay.h>

#include <vartalap/log.h>

#include "../common/host.h"
#include "../common/http_reply.h"
#include "frame_scan.h"
#include "internal.h"

enum ws_state {
	WS_OPEN,    /* messages flow both ways */
	WS_CLOSING, /* our close frame is queued; waiting for the peer's */
	WS_DONE,    /* nothing more to say: free once the output drained */
};

/*
 * The engine numbers its connections but does not say with which number, so
 * each WebSocket gets its own ws=N; the "ws: open" line names both it and
 * the user and device, which the engine's "connected" line also names.
 */
static unsigned long long ws_serial;

struct vt_ws_conn {
	struct vt_ws_gateway *gw;
	unsigned long long log_id; /* ws=N in log lines */
	LIST_ENTRY(vt_ws_conn) link;
	struct evhttp_connection *evcon; /* owns the socket and @bev */
	struct bufferevent *bev;
	wslay_event_context_ptr ws;
	struct vt_conn *conn;     /* NULL once closed in the engine */
	struct event *service_ev; /* no fd: pump input and output, finish */
	struct event *timer_ev;   /* ping interval, pong deadline, close linger */
	enum ws_state state;
	struct vt_ws_user *user;      /* this socket's count for its user */
	struct vt_ws_frame_scan scan; /* frame sizes, before wslay reads them */
	uint64_t last_rx_ms;          /* monotonic time of the last bytes received */
	uint64_t last_msg_ms;         /* last text message either way, for the idle timeout */
	uint64_t ping_sent_ms;        /* when the outstanding ping went out */
	unsigned awaiting_pong : 1;
	unsigned blocked : 1;       /* send() answered VT_EAGAIN */
	unsigned paused : 1;        /* reading stopped while the output is full */
	unsigned broken : 1;        /* the socket failed inside an op */
	unsigned proto_error : 1;   /* a close frame with a 1-byte payload came */
	unsigned close_pending : 1; /* begin_close() ran; frame not queued yet */
	unsigned too_big : 1;       /* a frame header claimed more than max_frame */
	uint16_t close_code;
	uint8_t close_len;
	char close_reason[123];
};

static void ws_pump(struct vt_ws_conn *wc);
static uint32_t frame_limit(const struct vt_fe_config *cfg);

static void arm_timer(struct vt_ws_conn *wc, uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(wc->timer_ev, &tv);
}

static void schedule(struct vt_ws_conn *wc)
{
	event_active(wc->service_ev, EV_TIMEOUT, 0);
}

/* Bytes waiting to reach the socket: in wslay's queue and in the output. */
static size_t queued_bytes(const struct vt_ws_conn *wc)
{
	return wslay_event_get_queued_msg_length(wc->ws) +
	       evbuffer_get_length(bufferevent_get_output(wc->bev));
}

void vt_ws_conn_drop(struct vt_ws_conn *wc)
{
	struct vt_conn *c = wc->conn;

	/* The engine must not reach this connection through its ops any more. */
	wc->conn = NULL;
	wc->state = WS_DONE;
	if (c != NULL) {
		vt_conn_close(c);
	}

	LIST_REMOVE(wc, link);
	wc->gw->count--;
	if (wc->user != NULL) {
		vt_ws_users_release(&wc->gw->users, wc->user);
	}
	event_free(wc->service_ev);
	event_free(wc->timer_ev);
	wslay_event_context_free(wc->ws);

	/* Frees the bufferevent and closes the socket. */
	evhttp_connection_free(wc->evcon);
	free(wc);
}

/*
 * Start the close handshake with @code; the linger timer bounds the wait.
 * The close frame is queued by ws_pump() once the messages before it are
 * out, because wslay sends control frames ahead of queued data.
 */
static void begin_close(struct vt_ws_conn *wc, int code, const char *reason)
{
	size_t len = reason != NULL ? strlen(reason) : 0;

	if (wc->state != WS_OPEN) {
		return;
	}

	/* A close reason is at most 123 bytes on the wire. */
	if (len > sizeof(wc->close_reason)) {
		len = sizeof(wc->close_reason);
	}
	memcpy(wc->close_reason, reason, len);
	wc->close_len = (uint8_t)len;
	wc->close_code = (uint16_t)code;
	wc->close_pending = 1;
	wc->state = WS_CLOSING;
	arm_timer(wc, wc->gw->cfg.close_linger_ms);
	schedule(wc);
}

/* Flush queued messages, then the close frame begin_close() asked for. */
static int ws_send(struct vt_ws_conn *wc)
{
	if (wslay_event_want_write(wc->ws) && wslay_event_send(wc->ws) != 0) {
		return -1;
	}
	if (!wc->close_pending) {
		return 0;
	}

	wc->close_pending = 0;
	wslay_event_queue_close(wc->ws, wc->close_code, (const uint8_t *)wc->close_reason,
	                        wc->close_len);
	return wslay_event_want_write(wc->ws) ? wslay_event_send(wc->ws) : 0;
}

/* --- transport ops: called by the engine; they only queue and schedule --- */

static int op_send(void *ctx, const char *data, size_t len)
{
	struct vt_ws_conn *wc = ctx;
	struct wslay_event_msg msg;
	int r;

	if (wc->state != WS_OPEN || wc->broken) {
		return VT_ECLOSED;
	}
	if (queued_bytes(wc) > wc->gw->cfg.out_limit) {
		wc->blocked = 1;
		return VT_EAGAIN;
	}

	msg.opcode = WSLAY_TEXT_FRAME;
	msg.msg = (const uint8_t *)data;
	msg.msg_length = len;
	r = wslay_event_queue_msg(wc->ws, &msg);
	if (r != 0) {
		return r == WSLAY_ERR_NOMEM ? VT_ENOMEM : VT_ECLOSED;
	}

	wc->last_msg_ms = vt_evhost_mono_ms();
	schedule(wc);
	return 0;
}

static void op_close(void *ctx, int code, const char *reason)
{
	begin_close(ctx, code, reason);
}

static const struct vt_transport_ops ws_ops = {
        .send = op_send,
        .close = op_close,
};

/* --- wslay callbacks --- */

static ssize_t on_ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user)
{
	struct vt_ws_conn *wc = user;
	struct evbuffer *in = bufferevent_get_input(wc->bev);
	ev_ssize_t n = wc->too_big ? 0 : evbuffer_copyout(in, buf, len);

	/* A header claiming too much is never handed on: wslay would wait for it. */
	if (n > 0 && vt_ws_frame_scan_feed(&wc->scan, buf, (size_t)n) != 0) {
		wc->too_big = 1;
		n = 0;
	}
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	evbuffer_drain(in, (size_t)n);
	return n;
}

static ssize_t on_ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *user)
{
	struct vt_ws_conn *wc = user;

	if (bufferevent_write(wc->bev, data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void on_ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user)
{
	struct vt_ws_conn *wc = user;

	if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->msg_length == 1) {
		wc->proto_error = 1;
		return;
	}
	if (arg->opcode == WSLAY_BINARY_FRAME) {
		vt_log(VT_LOG_DEBUG, "ws: binary frame ws=%llu; closing code=%d", wc->log_id,
		       VT_CLOSE_UNSUPPORTED);
		begin_close(wc, VT_CLOSE_UNSUPPORTED, "binary frames are not supported");
		return;
	}

	/* Control frames are wslay's business; late text after our close is dropped. */
	if (arg->opcode != WSLAY_TEXT_FRAME || wc->state != WS_OPEN || wc->conn == NULL) {
		return;
	}
	wc->last_msg_ms = vt_evhost_mono_ms();
	vt_conn_receive(wc->conn, (const char *)arg->msg, arg->msg_length);
}

static const struct wslay_event_callbacks ws_callbacks = {
        .recv_callback = on_ws_recv,
        .send_callback = on_ws_send,
        .on_msg_recv_callback = on_ws_msg,
};

/* --- progress --- */

/* Stop reading from a peer whose output is full, so its requests stop too. */
static void flow_control(struct vt_ws_conn *wc)
{
	size_t q = queued_bytes(wc);
	size_t limit = wc->gw->cfg.out_limit;

	if (q > limit && !wc->paused) {
		wc->paused = 1;
		bufferevent_disable(wc->bev, EV_READ);
	} else if (q <= limit / 2 && wc->paused) {
		wc->paused = 0;
		bufferevent_enable(wc->bev, EV_READ);
	}

	if (wc->blocked && q <= limit / 2 && wc->conn != NULL && wc->state == WS_OPEN) {
		wc->blocked = 0;
		vt_conn_writable(wc->conn);
	}
}

/*
 * Fail the connection with close @code and stop both directions. wslay
 * answers some framing errors (a length with the top bit set, an oversized
 * control frame) with an empty close, and a 1-byte close payload with an
 * empty one too; RFC 6455 wants 1002 there. A frame header over max_frame
 * gets 1009. A server frame is never masked, so the close frame is written
 * as is, in place of the one wslay queued.
 */
static void fail_connection(struct vt_ws_conn *wc, uint16_t code)
{
	unsigned char close[4] = {0x88, 0x02, (unsigned char)(code >> 8), (unsigned char)code};

	vt_log(VT_LOG_DEBUG, "ws: failing ws=%llu code=%u", wc->log_id, (unsigned)code);
	if (!wslay_event_get_close_sent(wc->ws)) {
		bufferevent_write(wc->bev, close, sizeof(close));
	}
	wslay_event_shutdown_read(wc->ws);
	wslay_event_shutdown_write(wc->ws);
	wc->proto_error = 0;
}

/* Feed what the socket gave to wslay. Returns 0, or -1 when memory ran out. */
static int ws_read(struct vt_ws_conn *wc)
{
	int r;

	if (evbuffer_get_length(bufferevent_get_input(wc->bev)) == 0) {
		return 0;
	}

	wc->last_rx_ms = vt_evhost_mono_ms();
	if (!wslay_event_want_read(wc->ws)) {
		/* After the close handshake, bytes from the peer mean nothing. */
		evbuffer_drain(bufferevent_get_input(wc->bev), (size_t)-1);
		return 0;
	}

	/* Our recv callback never fails, so any other error is the peer's framing. */
	r = wslay_event_recv(wc->ws);
	if (r == WSLAY_ERR_NOMEM) {
		return -1;
	}
	if (wc->too_big) {
		vt_log(VT_LOG_INFO, "ws: frame too big ws=%llu max=%lu; closing code=%d",
		       wc->log_id, (unsigned long)frame_limit(&wc->gw->cfg), VT_CLOSE_TOO_BIG);
		fail_connection(wc, VT_CLOSE_TOO_BIG);
	} else if (r != 0 || wc->proto_error) {
		fail_connection(wc, VT_CLOSE_PROTOCOL);
	}
	return 0;
}

/*
 * Make progress: write what wslay queued, end the connection when both
 * directions are closed, and apply flow control. May free @wc.
 */
static void ws_pump(struct vt_ws_conn *wc)
{
	if (wc->broken) {
		vt_ws_conn_drop(wc);
		return;
	}

	if (ws_send(wc) != 0) {
		vt_ws_conn_drop(wc);
		return;
	}

	if (!wslay_event_want_read(wc->ws) && !wslay_event_want_write(wc->ws)) {
		if (evbuffer_get_length(bufferevent_get_output(wc->bev)) == 0) {
			vt_ws_conn_drop(wc);
			return;
		}

		/* The write callback finishes once the close went out; a peer
		 * that reads nothing more is cut when the linger ends. */
		if (wc->state != WS_DONE) {
			wc->state = WS_DONE;
			bufferevent_disable(wc->bev, EV_READ);
			arm_timer(wc, wc->gw->cfg.close_linger_ms);
		}
		return;
	}

	flow_control(wc);

	/* vt_conn_writable() may have queued more; the service event sends it. */
}

static void on_service(evutil_socket_t fd, short what, void *arg)
{
	struct vt_ws_conn *wc = arg;

	if (ws_read(wc) != 0) {
		/* Out of memory inside wslay: nothing sensible can be sent. */
		vt_log(VT_LOG_WARN, "ws: out of memory ws=%llu; dropping", wc->log_id);
		vt_ws_conn_drop(wc);
		return;
	}
	ws_pump(wc);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	on_service(-1, 0, arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct vt_ws_conn *wc = arg;

	if (wc->state == WS_DONE && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		vt_ws_conn_drop(wc);
		return;
	}
	ws_pump(wc);
}

/*
 * Forget any read or write timeout of the socket: the keepalive alone
 * decides when a WebSocket is dead. evhttp stopped reading before it handed
 * the request over, and libevent keeps a stopped event's old timeout (and
 * re-arms it on each read) when the timeouts are merely cleared: a healthy
 * peer that went quiet for the HTTP timeout after a frame would be cut.
 * Clearing a timeout that is armed erases it, hence the two steps; both
 * events must be pending, so this runs after bufferevent_enable().
 */
static void clear_timeouts(struct bufferevent *bev)
{
	static const struct timeval day = {86400, 0};

	bufferevent_set_timeouts(bev, &day, &day);
	bufferevent_set_timeouts(bev, NULL, NULL);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct vt_ws_conn *wc = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		vt_log(VT_LOG_DEBUG, "ws: socket %s ws=%llu",
		       what & BEV_EVENT_EOF ? "closed" : "failed", wc->log_id);
		vt_ws_conn_drop(wc);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		/* Not ours to act on: libevent stopped that direction, so resume it. */
		vt_log(VT_LOG_WARN, "ws: unexpected socket timeout ws=%llu; resumed", wc->log_id);
		clear_timeouts(bev);
		if ((what & BEV_EVENT_READING) && !wc->paused && wc->state != WS_DONE) {
			bufferevent_enable(bev, EV_READ);
		}
		if (what & BEV_EVENT_WRITING) {
			bufferevent_enable(bev, EV_WRITE);
		}
	}
}

/* Milliseconds until the idle timeout, or UINT32_MAX when there is none. */
static uint64_t idle_left(const struct vt_ws_conn *wc, uint64_t now)
{
	uint64_t limit = wc->gw->cfg.idle_timeout_ms;
	uint64_t idle = now - wc->last_msg_ms;

	if (limit == 0) {
		return UINT32_MAX;
	}
	return idle >= limit ? 0 : limit - idle;
}

static uint64_t min_ms(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * Decide the ping after a wake-up: returns the wait until the next check, or
 * 0 after dropping a peer that never answered the last ping (@wc is freed).
 */
static uint64_t keepalive(struct vt_ws_conn *wc, uint64_t now)
{
	static const struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
	const struct vt_fe_config *cfg = &wc->gw->cfg;
	uint64_t quiet = now - wc->last_rx_ms;

	if (wc->awaiting_pong && wc->last_rx_ms < wc->ping_sent_ms) {
		if (now - wc->ping_sent_ms < cfg->ping_timeout_ms) {
			return cfg->ping_timeout_ms - (now - wc->ping_sent_ms);
		}
		vt_log(VT_LOG_INFO, "ws: ping unanswered ws=%llu after_ms=%llu; dropping",
		       wc->log_id, (unsigned long long)(now - wc->ping_sent_ms));
		vt_ws_conn_drop(wc);
		return 0;
	}
	wc->awaiting_pong = 0;
	if (quiet < cfg->ping_interval_ms) {
		return cfg->ping_interval_ms - quiet;
	}

	wslay_event_queue_msg(wc->ws, &ping);
	wc->awaiting_pong = 1;
	wc->ping_sent_ms = now;
	schedule(wc);
	return cfg->ping_timeout_ms;
}

/*
 * Keep-alive and idle timeout. Any bytes from the peer (a pong too) keep
 * the socket alive; only text messages, either way, keep it from being idle.
 */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct vt_ws_conn *wc = arg;
	uint64_t now = vt_evhost_mono_ms();
	uint64_t wait;

	if (wc->state != WS_OPEN) {
		/* The peer never answered our close frame. */
		vt_log(VT_LOG_DEBUG, "ws: close unanswered ws=%llu; dropping", wc->log_id);
		vt_ws_conn_drop(wc);
		return;
	}

	if (idle_left(wc, now) == 0) {
		vt_log(VT_LOG_DEBUG, "ws: idle ws=%llu idle_ms=%llu; closing", wc->log_id,
		       (unsigned long long)(now - wc->last_msg_ms));
		begin_close(wc, VT_CLOSE_NORMAL, "idle timeout");
		return;
	}

	wait = keepalive(wc, now);
	if (wait == 0) {
		return;
	}
	arm_timer(wc, min_ms(wait, idle_left(wc, now)));
}

/* --- start --- */

/* The largest WebSocket message: --max-frame, else the envelope limit. */
static uint32_t frame_limit(const struct vt_fe_config *cfg)
{
	return cfg->max_frame != 0 ? cfg->max_frame : cfg->max_message;
}

static struct vt_ws_conn *conn_new(struct vt_ws_gateway *gw)
{
	struct vt_ws_conn *wc = calloc(1, sizeof(*wc));

	if (wc == NULL) {
		return NULL;
	}
	wc->gw = gw;
	wc->service_ev = event_new(gw->base, -1, 0, on_service, wc);
	wc->timer_ev = evtimer_new(gw->base, on_timer, wc);
	if (wc->service_ev == NULL || wc->timer_ev == NULL ||
	    wslay_event_context_server_init(&wc->ws, &ws_callbacks, wc) != 0) {
		if (wc->service_ev != NULL) {
			event_free(wc->service_ev);
		}
		if (wc->timer_ev != NULL) {
			event_free(wc->timer_ev);
		}
		free(wc);
		return NULL;
	}

	/*
	 * wslay checks this limit only once payload arrives; the scanner in
	 * on_ws_recv() answers an oversized header at once with 1009.
	 */
	wslay_event_config_set_max_recv_msg_length(wc->ws, frame_limit(&gw->cfg));
	vt_ws_frame_scan_init(&wc->scan, frame_limit(&gw->cfg));
	return wc;
}

/* Take the socket from evhttp and answer 101 on it. */
static void take_over(struct vt_ws_conn *wc, const struct vt_ws_handshake *hs)
{
	struct evbuffer *out = bufferevent_get_output(wc->bev);

	bufferevent_setcb(wc->bev, on_read, on_write, on_event, wc);
	bufferevent_setwatermark(wc->bev, EV_READ, 0, 0);
	bufferevent_setwatermark(wc->bev, EV_WRITE, wc->gw->cfg.out_limit / 2, 0);

	evbuffer_add_printf(out,
	                    "HTTP/1.1 101 Switching Protocols\r\n"
	                    "Upgrade: websocket\r\n"
	                    "Connection: Upgrade\r\n"
	                    "Sec-WebSocket-Accept: %s\r\n",
	                    hs->accept);
	if (hs->offers_protocol) {
		evbuffer_add_printf(out, "Sec-WebSocket-Protocol: %s\r\n", VT_WS_PROTOCOL);
	}
	evbuffer_add(out, "\r\n", 2);

	/* evhttp's read and write timeouts would cut an idle chat connection. */
	bufferevent_enable(wc->bev, EV_READ | EV_WRITE);
	clear_timeouts(wc->bev);
	wc->last_rx_ms = vt_evhost_mono_ms();
	wc->last_msg_ms = wc->last_rx_ms;
	arm_timer(wc, min_ms(wc->gw->cfg.ping_interval_ms, idle_left(wc, wc->last_rx_ms)));

	/* Frames the client sent right behind its request are already buffered. */
	schedule(wc);
}

/* Undo conn_new() for a connection the engine never saw. */
static void conn_discard(struct vt_ws_conn *wc)
{
	LIST_REMOVE(wc, link);
	wc->gw->count--;
	if (wc->user != NULL) {
		vt_ws_users_release(&wc->gw->users, wc->user);
	}
	event_free(wc->service_ev);
	event_free(wc->timer_ev);
	wslay_event_context_free(wc->ws);
	free(wc);
}

int vt_ws_conn_start(struct vt_ws_gateway *gw, struct evhttp_connection *evcon,
                     const struct vt_identity *id, const struct vt_ws_handshake *hs)
{
	struct vt_ws_conn *wc = conn_new(gw);
	int rc;

	if (wc == NULL) {
		return VT_ENOMEM;
	}
	wc->log_id = ++ws_serial;
	wc->evcon = evcon;
	wc->bev = evhttp_connection_get_bufferevent(evcon);
	LIST_INSERT_HEAD(&gw->conns, wc, link);
	gw->count++;

	rc = vt_ws_users_acquire(&gw->users, id->user, gw->cfg.max_user_conns, &wc->user);
	if (rc == VT_ELIMIT) {
		/* No engine connection: the socket only carries the close. */
		vt_log(VT_LOG_INFO,
		       "ws: refused ws=%llu req=%llu user=%s device=%s max=%u; closing code=%d",
		       wc->log_id, vt_fe_req_id(), id->user, id->device,
		       (unsigned)gw->cfg.max_user_conns, VT_CLOSE_POLICY);
		take_over(wc, hs);
		begin_close(wc, VT_CLOSE_POLICY, "too many connections for this user");
		return 0;
	}

	/*
	 * Frames the engine pushes from inside vt_conn_open() wait in wslay's
	 * queue and go out behind the 101, from the service event.
	 */
	if (rc == 0) {
		rc = vt_conn_open(gw->engine, id, &ws_ops, wc, &wc->conn);
	}
	if (rc != 0) {
		conn_discard(wc);
		return rc;
	}

	vt_log(VT_LOG_INFO, "ws: open ws=%llu req=%llu user=%s device=%s", wc->log_id,
	       vt_fe_req_id(), id->user, id->device);
	take_over(wc, hs);
	return 0;
}
