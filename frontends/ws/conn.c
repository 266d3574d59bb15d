/*
 * frontends/ws/conn.c - one WebSocket connection: its socket, its frames,
 * and the engine connection it carries.
 *
 * After the upgrade the socket is taken from evhttp and driven by one
 * struct event, kept in the connection's own allocation: EV_READ while
 * reading, EV_WRITE only while the kernel refuses output. Input is read
 * into the gateway's buffer and parsed there (reader.h); output is framed
 * here, a pushed event's shared envelope by reference, and written with
 * one writev() per connection per loop turn: queueing a frame makes the
 * event active, and it runs after the callbacks already due this turn. A
 * TLS socket keeps its bufferevent, which encrypts; the event then only
 * carries those flushes.
 *
 * TODO: an idle TLS connection still holds OpenSSL's session and the
 * bufferevent with its buffers, about 16 KB; only plain sockets meet the
 * 1 KiB idle budget. Driving OpenSSL on the bare socket would remove the
 * bufferevent.
 *
 * Lifetime. The engine may call send() and close() at any time, also from
 * inside vt_conn_receive(); those ops only queue frames and make the event
 * active. Everything that can free the connection (a socket error, the end
 * of the close handshake, a keepalive deadline) runs from a libevent
 * callback of this connection or of the keepalive timer, and nothing
 * touches @wc after vt_ws_conn_drop().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>

#include <vartalap/log.h>

#include "../common/host.h"
#include "../common/http_reply.h"
#include "frame.h"
#include "handoff.h"
#include "internal.h"

/*
 * The engine numbers its connections but does not say with which number, so
 * each WebSocket gets its own ws=N; the "ws: open" line names both it and
 * the user and device, which the engine's "connected" line also names.
 */
static unsigned long long ws_serial;

static void on_io(evutil_socket_t fd, short what, void *arg);

static struct event *conn_ev(struct vt_ws_conn *wc)
{
	return (struct event *)(void *)wc->ev;
}

/* The largest WebSocket message: --max-frame, else the envelope limit. */
static uint32_t frame_limit(const struct vt_fe_config *cfg)
{
	return cfg->max_frame != 0 ? cfg->max_frame : cfg->max_message;
}

/* Bytes waiting to reach the socket: queued here and, for TLS, encrypted. */
static size_t queued_bytes(struct vt_ws_conn *wc)
{
	size_t n = wc->out.bytes;

	if (wc->tls != NULL) {
		n += evbuffer_get_length(bufferevent_get_output(wc->tls));
	}
	return n;
}

void vt_ws_conn_drop(struct vt_ws_conn *wc)
{
	struct vt_conn *c = wc->conn;

	/* The engine must not reach this connection through its ops any more. */
	wc->conn = NULL;
	wc->state = VT_WS_DONE;
	if (c != NULL) {
		vt_conn_close(c);
	}

	vt_ws_keepalive_remove(wc);
	wc->gw->count--;
	if (wc->user != NULL) {
		vt_ws_users_release(&wc->gw->users, wc->user);
	}
	vt_ws_outq_clear(&wc->out, &wc->gw->outs);
	vt_ws_rx_free(wc->rx);

	/* The socket: deregistered before it is closed, closed once. */
	event_del(conn_ev(wc));
	if (wc->tls != NULL) {
		bufferevent_free(wc->tls);
	} else {
		close(event_get_fd(conn_ev(wc)));
	}
	vt_slab_free(&wc->gw->conns, wc);
}

/* --- output --- */

/* Frames were queued: write them once this turn's due callbacks have run. */
static void want_flush(struct vt_ws_conn *wc)
{
	if (!wc->flush_queued) {
		wc->flush_queued = 1;
		event_active(conn_ev(wc), EV_WRITE, 0);
	}
}

/* Queue a frame with a copy of its payload; failure breaks the connection. */
static void queue_copy(struct vt_ws_conn *wc, unsigned opcode, const void *data, size_t len)
{
	if (vt_ws_outq_copy(&wc->out, &wc->gw->outs, opcode, data, len) != 0) {
		wc->broken = 1;
	}
	want_flush(wc);
}

/* Hand what is queued to the socket (or to TLS). */
static void flush(struct vt_ws_conn *wc)
{
	int rc;

	wc->flush_queued = 0;
	if (wc->tls != NULL) {
		rc = vt_ws_outq_move(&wc->out, &wc->gw->outs, bufferevent_get_output(wc->tls));
	} else {
		rc = vt_ws_outq_write(&wc->out, &wc->gw->outs, event_get_fd(conn_ev(wc)));
	}
	if (rc != 0 && !wc->broken) {
		vt_log(VT_LOG_DEBUG, "ws: socket failed ws=%llu error=%d", wc->log_id, errno);
		wc->broken = 1;
	}
}

/* Queue a close frame with @code (0: none) and @reason, and stop talking. */
static void queue_close(struct vt_ws_conn *wc, unsigned code, const char *reason)
{
	uint8_t payload[2 + VT_WS_REASON_MAX];
	size_t len = reason != NULL ? strlen(reason) : 0;

	/* A close reason is at most 123 bytes on the wire. */
	if (len > VT_WS_REASON_MAX) {
		len = VT_WS_REASON_MAX;
	}
	payload[0] = (uint8_t)(code >> 8);
	payload[1] = (uint8_t)code;
	if (len > 0) {
		memcpy(payload + 2, reason, len);
	}
	queue_copy(wc, VT_WS_CLOSE, payload, code != 0 ? 2 + len : 0);
}

/* Leave the open state: the linger bounds what is left of the connection. */
static void set_state(struct vt_ws_conn *wc, enum vt_ws_state state)
{
	wc->state = (uint8_t)state;
	vt_ws_keepalive_move(wc, VT_WS_ON_CLOSING, vt_evhost_coarse_ms());
}

void vt_ws_conn_close(struct vt_ws_conn *wc, int code, const char *reason)
{
	if (wc->state != VT_WS_OPEN) {
		return;
	}
	queue_close(wc, (unsigned)code, reason);
	set_state(wc, VT_WS_CLOSING);
}

/*
 * Fail the connection with close @code: say why, unless our close frame
 * went out already, and neither read nor say anything more.
 */
static void fail(struct vt_ws_conn *wc, int code)
{
	if (code == VT_CLOSE_TOO_BIG) {
		vt_log(VT_LOG_INFO, "ws: frame too big ws=%llu max=%lu; closing code=%d",
		       wc->log_id, (unsigned long)frame_limit(&wc->gw->cfg), code);
	} else {
		vt_log(VT_LOG_DEBUG, "ws: failing ws=%llu code=%d", wc->log_id, code);
	}
	if (wc->state == VT_WS_OPEN) {
		queue_close(wc, (unsigned)code, NULL);
	}
	if (wc->state != VT_WS_DONE) {
		set_state(wc, VT_WS_DONE);
	}
}

void vt_ws_conn_ping(struct vt_ws_conn *wc)
{
	queue_copy(wc, VT_WS_PING, NULL, 0);
}

/* --- transport ops: called by the engine; they only queue --- */

/* Whether the engine may queue a message now: 0, VT_ECLOSED or VT_EAGAIN. */
static int admit(struct vt_ws_conn *wc)
{
	if (wc->state != VT_WS_OPEN || wc->broken) {
		return VT_ECLOSED;
	}
	if (queued_bytes(wc) > wc->gw->cfg.out_limit) {
		wc->blocked = 1;
		return VT_EAGAIN;
	}
	return 0;
}

/* A message was queued (@rc 0) or memory ran out. */
static int note_sent(struct vt_ws_conn *wc, int rc)
{
	if (rc != 0) {
		return VT_ENOMEM;
	}
	vt_ws_keepalive_message(wc, vt_evhost_coarse_ms());
	want_flush(wc);
	return 0;
}

static int op_send(void *ctx, const char *data, size_t len)
{
	struct vt_ws_conn *wc = ctx;
	int rc = admit(wc);

	if (rc != 0) {
		return rc;
	}
	return note_sent(wc, vt_ws_outq_copy(&wc->out, &wc->gw->outs, VT_WS_TEXT, data, len));
}

static int op_send_frame(void *ctx, struct vt_frame *f)
{
	struct vt_ws_conn *wc = ctx;
	int rc = admit(wc);

	if (rc != 0) {
		return rc;
	}
	return note_sent(wc, vt_ws_outq_shared(&wc->out, &wc->gw->outs, f));
}

static void op_close(void *ctx, int code, const char *reason)
{
	vt_ws_conn_close(ctx, code, reason);
}

static const struct vt_transport_ops ws_ops = {
        .send = op_send,
        .close = op_close,
        .send_frame = op_send_frame,
};

/* --- input --- */

/* One message or control frame from the peer. Returns 1 to stop reading. */
static int on_frame(void *ctx, unsigned opcode, uint8_t *data, size_t len)
{
	struct vt_ws_conn *wc = ctx;

	switch (opcode) {
	case VT_WS_TEXT:
		/* Late text after our close is dropped. */
		if (wc->state == VT_WS_OPEN && wc->conn != NULL) {
			vt_ws_keepalive_message(wc, vt_evhost_coarse_ms());
			vt_conn_receive(wc->conn, (const char *)data, len);
		}
		return 0;
	case VT_WS_BINARY:
		if (wc->state == VT_WS_OPEN) {
			vt_log(VT_LOG_DEBUG, "ws: binary frame ws=%llu; closing code=%d",
			       wc->log_id, VT_CLOSE_UNSUPPORTED);
			vt_ws_conn_close(wc, VT_CLOSE_UNSUPPORTED,
			                 "binary frames are not supported");
		}
		return 0;
	case VT_WS_PING:
		/* Nothing follows our close frame, not even a pong. */
		if (wc->state == VT_WS_OPEN) {
			queue_copy(wc, VT_WS_PONG, data, len);
		}
		return 0;
	case VT_WS_CLOSE:
		/* Echo the code (without the reason), unless we closed first. */
		if (wc->state == VT_WS_OPEN) {
			queue_copy(wc, VT_WS_CLOSE, data, len < 2 ? len : 2);
		}
		set_state(wc, VT_WS_DONE);
		return 1;
	default:
		return 0; /* a pong: hearing it was the point */
	}
}

/* Parse @n bytes the peer sent, now in the gateway's buffer. */
static void take(struct vt_ws_conn *wc, size_t n)
{
	int rc;

	vt_ws_keepalive_heard(wc, vt_evhost_coarse_ms());
	if (wc->state == VT_WS_DONE) {
		return; /* after the close handshake, bytes mean nothing */
	}
	rc = vt_ws_read(&wc->rx, wc->gw->scratch, n, frame_limit(&wc->gw->cfg), on_frame, wc);
	if (rc == VT_WS_READ_OK) {
		return;
	}

	vt_ws_rx_free(wc->rx);
	wc->rx = NULL;
	if (rc == VT_ENOMEM) {
		vt_log(VT_LOG_WARN, "ws: out of memory ws=%llu; dropping", wc->log_id);
		wc->broken = 1;
	} else if (rc != VT_WS_READ_STOPPED) {
		fail(wc, rc);
	}
}

/* Take what @in holds (TLS input, or what evhttp read past the request). */
static void take_buffered(struct vt_ws_conn *wc, struct evbuffer *in)
{
	struct vt_ws_gateway *gw = wc->gw;
	int n;

	while (!wc->broken && !wc->paused && wc->state != VT_WS_DONE &&
	       (n = evbuffer_remove(in, gw->scratch, gw->scratch_len)) > 0) {
		take(wc, (size_t)n);
	}
}

/* One read from a plain socket. */
static void take_socket(struct vt_ws_conn *wc)
{
	struct vt_ws_gateway *gw = wc->gw;
	ssize_t n = read(event_get_fd(conn_ev(wc)), gw->scratch, gw->scratch_len);

	if (n > 0) {
		take(wc, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		return;
	}
	vt_log(VT_LOG_DEBUG, "ws: socket %s ws=%llu", n == 0 ? "closed" : "failed", wc->log_id);
	wc->broken = 1;
}

/* --- progress --- */

/*
 * Stop reading from a peer whose output is full, so its requests stop too,
 * and from one the engine owes many answers (storage is behind): the
 * answers are sends, each followed by a look here.
 */
static void flow_control(struct vt_ws_conn *wc)
{
	size_t q = queued_bytes(wc);
	size_t limit = wc->gw->cfg.out_limit;

	if (q > limit || (wc->conn != NULL && vt_conn_busy(wc->conn))) {
		wc->paused = 1;
	} else if (q <= limit / 2) {
		wc->paused = 0;
	}
	if (wc->blocked && q <= limit / 2 && wc->conn != NULL && wc->state == VT_WS_OPEN) {
		wc->blocked = 0;
		vt_conn_writable(wc->conn);
	}
}

/* A TLS socket reads through its bufferevent; the event carries flushes. */
static void watch_tls(struct vt_ws_conn *wc, short want)
{
	if ((want & EV_READ) && !(wc->watching & EV_READ)) {
		bufferevent_enable(wc->tls, EV_READ);

		/* What it decrypted while reading was off raises no callback. */
		if (evbuffer_get_length(bufferevent_get_input(wc->tls)) > 0) {
			event_active(conn_ev(wc), EV_READ, 0);
		}
	} else if (!(want & EV_READ) && (wc->watching & EV_READ)) {
		bufferevent_disable(wc->tls, EV_READ);
	}
	wc->watching = (uint8_t)want;
}

/*
 * Wait for what is needed: to read unless paused or done, and to write
 * only while the kernel refuses output. Changing the set re-registers the
 * event, which forgets an activation: that is made again.
 */
static void watch(struct vt_ws_conn *wc)
{
	struct event *ev = conn_ev(wc);
	short want = 0;

	if (!wc->paused && wc->state != VT_WS_DONE) {
		want |= EV_READ;
	}
	if (wc->tls != NULL) {
		watch_tls(wc, want);
		return;
	}
	if (wc->out.bytes > 0 && !wc->flush_queued) {
		want |= EV_WRITE;
	}
	if (want == wc->watching) {
		return;
	}

	event_del(ev);
	event_assign(ev, wc->gw->base, event_get_fd(ev), want | EV_PERSIST, on_io, wc);
	if (want != 0) {
		event_add(ev, NULL);
	}
	wc->watching = (uint8_t)want;
	if (wc->flush_queued) {
		event_active(ev, EV_WRITE, 0);
	}
}

/*
 * After every callback: end the connection once it failed, or once it is
 * done and everything went out; otherwise apply flow control and wait for
 * what comes next. May free @wc.
 */
static void settle(struct vt_ws_conn *wc)
{
	if (wc->broken || (wc->state == VT_WS_DONE && queued_bytes(wc) == 0)) {
		vt_ws_conn_drop(wc);
		return;
	}
	flow_control(wc);
	watch(wc);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	struct vt_ws_conn *wc = arg;

	if (what & EV_READ) {
		if (wc->tls != NULL) {
			take_buffered(wc, bufferevent_get_input(wc->tls));
		} else {
			take_socket(wc);
		}
	}
	if (what & EV_WRITE) {
		flush(wc);
	}
	settle(wc);
}

/* --- TLS: the bufferevent's callbacks --- */

static void on_tls_read(struct bufferevent *bev, void *arg)
{
	struct vt_ws_conn *wc = arg;

	take_buffered(wc, bufferevent_get_input(bev));
	settle(wc);
}

/* Output fell to half the limit, or drained: flow control, or the end. */
static void on_tls_write(struct bufferevent *bev, void *arg)
{
	settle(arg);
}

/*
 * Forget any read or write timeout of the socket: the keepalive alone
 * decides when a WebSocket is dead. libevent keeps a stopped event's old
 * timeout (and re-arms it on each read) when the timeouts are merely
 * cleared, so a healthy peer that went quiet for evhttp's timeout would be
 * cut. Clearing a timeout that is armed erases it, hence the two steps;
 * both events must be pending, so this runs after bufferevent_enable().
 */
static void clear_timeouts(struct bufferevent *bev)
{
	static const struct timeval day = {86400, 0};

	bufferevent_set_timeouts(bev, &day, &day);
	bufferevent_set_timeouts(bev, NULL, NULL);
}

static void on_tls_event(struct bufferevent *bev, short what, void *arg)
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
		if (what & BEV_EVENT_READING) {
			wc->watching &= (uint8_t)~EV_READ;
		}
		if (what & BEV_EVENT_WRITING) {
			bufferevent_enable(bev, EV_WRITE);
		}
		settle(wc);
	}
}

/* --- start --- */

size_t vt_ws_conn_size(void)
{
	return sizeof(struct vt_ws_conn) + event_get_struct_event_size();
}

static struct vt_ws_conn *conn_new(struct vt_ws_gateway *gw, evutil_socket_t fd, int tls)
{
	struct vt_ws_conn *wc = vt_slab_zalloc(&gw->conns);

	if (wc == NULL) {
		return NULL;
	}
	wc->gw = gw;
	wc->log_id = ++ws_serial;

	/* A TLS socket is read by its bufferevent: this event only flushes. */
	event_assign(conn_ev(wc), gw->base, tls ? -1 : fd, 0, on_io, wc);
	vt_ws_keepalive_add(wc, vt_evhost_coarse_ms());
	gw->count++;
	return wc;
}

/* Undo conn_new() for a connection the engine never saw; evhttp keeps the socket. */
static void conn_discard(struct vt_ws_conn *wc)
{
	event_del(conn_ev(wc));
	vt_ws_keepalive_remove(wc);
	wc->gw->count--;
	if (wc->user != NULL) {
		vt_ws_users_release(&wc->gw->users, wc->user);
	}
	vt_ws_outq_clear(&wc->out, &wc->gw->outs);
	vt_slab_free(&wc->gw->conns, wc);
}

/* The 101 goes first in the queue, ahead of anything the engine pushes. */
static int queue_101(struct vt_ws_conn *wc, const struct vt_ws_handshake *hs)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 101 Switching Protocols\r\n"
	                 "Upgrade: websocket\r\n"
	                 "Connection: Upgrade\r\n"
	                 "Sec-WebSocket-Accept: %s\r\n"
	                 "%s\r\n",
	                 hs->accept,
	                 hs->offers_protocol ? "Sec-WebSocket-Protocol: " VT_WS_PROTOCOL "\r\n"
	                                     : "");

	if (n < 0 || (size_t)n >= sizeof(head)) {
		return VT_EINVAL;
	}
	return vt_ws_outq_bytes(&wc->out, head, (size_t)n);
}

/*
 * The socket is ours now. What the client sent right behind its request
 * is parsed at once; a plain socket drops evhttp's bufferevent after that.
 */
static void take_over(struct vt_ws_conn *wc, struct bufferevent *bev)
{
	take_buffered(wc, bufferevent_get_input(bev));
	if (bufferevent_openssl_get_ssl(bev) == NULL) {
		vt_ws_handoff_unbind(bev);
	} else {
		wc->tls = bev;
		bufferevent_setcb(bev, on_tls_read, on_tls_write, on_tls_event, wc);
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
		bufferevent_setwatermark(bev, EV_WRITE, wc->gw->cfg.out_limit / 2, 0);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
		clear_timeouts(bev);
		wc->watching = EV_READ;
	}
	want_flush(wc);
	watch(wc);
}

/* Count the socket for its user and open the engine connection. */
static int open_conn(struct vt_ws_conn *wc, const struct vt_identity *id)
{
	struct vt_ws_gateway *gw = wc->gw;
	int rc = vt_ws_users_acquire(&gw->users, id->user, gw->cfg.max_user_conns, &wc->user);

	if (rc == VT_ELIMIT) {
		/* No engine connection: the socket only carries the close. */
		vt_log(VT_LOG_INFO,
		       "ws: refused ws=%llu req=%llu user=%s device=%s max=%u; closing code=%d",
		       wc->log_id, vt_fe_req_id(), id->user, id->device,
		       (unsigned)gw->cfg.max_user_conns, VT_CLOSE_POLICY);
		vt_ws_conn_close(wc, VT_CLOSE_POLICY, "too many connections for this user");
		return 0;
	}
	if (rc != 0) {
		return rc;
	}

	/* Frames the engine pushes from inside vt_conn_open() queue behind the 101. */
	rc = vt_conn_open(gw->engine, id, &ws_ops, wc, &wc->conn);
	if (rc == 0) {
		vt_log(VT_LOG_INFO, "ws: open ws=%llu req=%llu user=%s device=%s", wc->log_id,
		       vt_fe_req_id(), id->user, id->device);
	}
	return rc;
}

int vt_ws_conn_start(struct vt_ws_gateway *gw, struct evhttp_connection *evcon,
                     const struct vt_identity *id, const struct vt_ws_handshake *hs)
{
	struct vt_ws_handoff h;
	struct vt_ws_conn *wc;
	int rc = vt_ws_handoff_begin(&h, evcon);

	if (rc != 0) {
		return rc;
	}
	wc = conn_new(gw, h.fd, bufferevent_openssl_get_ssl(h.bev) != NULL);
	if (wc == NULL) {
		vt_ws_handoff_cancel(&h);
		return VT_ENOMEM;
	}
	rc = queue_101(wc, hs);
	if (rc == 0) {
		rc = open_conn(wc, id);
	}
	if (rc != 0) {
		conn_discard(wc);
		vt_ws_handoff_cancel(&h);
		return rc;
	}

	vt_ws_handoff_finish(&h, gw->stand_in);
	take_over(wc, h.bev);
	return 0;
}
