/*
 * frontends/ws/internal.h - state shared by the gateway and its connections.
 */
#ifndef VARTALAP_WS_INTERNAL_H
#define VARTALAP_WS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <vartalap/engine.h>

#include "../common/frontend.h"
#include "handshake.h"
#include "outq.h"
#include "slab.h"
#include "reader.h"
#include "users.h"

struct bufferevent;
struct evhttp_connection;
struct vt_ws_conn;

TAILQ_HEAD(vt_ws_conn_q, vt_ws_conn);

/* Which keepalive list a connection is on (see keepalive.c). */
enum vt_ws_list {
	VT_WS_ON_LIVE,    /* open; by the time of its last bytes in */
	VT_WS_ON_PINGED,  /* open, a ping unanswered; by the time of the ping */
	VT_WS_ON_CLOSING, /* closing; by the time the close began */
};

enum vt_ws_state {
	VT_WS_OPEN,    /* messages flow both ways */
	VT_WS_CLOSING, /* our close frame is queued; waiting for the peer's */
	VT_WS_DONE,    /* nothing more to read or say: end once the output drained */
};

struct vt_ws_gateway {
	struct event_base *base;
	struct vt_engine *engine;
	struct vt_fe_config cfg;
	size_t count;
	struct vt_ws_users users; /* sockets per user, for max_user_conns */
	struct vt_ws_conn_q live; /* the keepalive lists, oldest first */
	struct vt_ws_conn_q pinged;
	struct vt_ws_conn_q closing;
	struct vt_ws_conn_q quiet; /* by the last message; with an idle timeout only */
	struct event *tick_ev;     /* the one timer of every connection */
	uint64_t tick_due;         /* when it is armed for; 0: not armed */
	struct vt_ws_outq_pools outs; /* nodes of queued frames (outq.h) */
	struct vt_slab conns;      /* of struct vt_ws_conn with its struct event */
	uint8_t *scratch;          /* every read lands here first */
	size_t scratch_len;
	evutil_socket_t stand_in; /* /dev/null, lent during a hand-off */
};

/*
 * One WebSocket. While idle it holds no buffer and no timer: input is
 * parsed where it was read (only a partial frame is kept, in @rx), output
 * is queued only while the kernel refuses it, and the gateway's keepalive
 * lists stand in for per-connection timers.
 */
struct vt_ws_conn {
	struct vt_ws_gateway *gw;
	struct vt_conn *conn;         /* the engine's side; NULL once closed */
	struct vt_ws_user *user;      /* this socket's count for its user */
	TAILQ_ENTRY(vt_ws_conn) tick; /* on the keepalive list @list */
	TAILQ_ENTRY(vt_ws_conn) idle; /* on gw->quiet, with an idle timeout */
	uint64_t tick_ms;             /* monotonic ms it took its place on @list */
	uint64_t msg_ms;              /* the last text message either way */
	struct vt_ws_rx *rx;          /* partial input; NULL while none */
	struct vt_ws_outq out;        /* frames the socket has not taken */
	struct bufferevent *tls;      /* a TLS socket's bufferevent; NULL: plain */
	unsigned long long log_id;    /* ws=N in log lines */
	uint8_t state;                /* enum vt_ws_state */
	uint8_t list;                 /* enum vt_ws_list */
	uint8_t watching;             /* EV_READ and EV_WRITE the socket waits for */
	unsigned flush_queued : 1;    /* the event is active to write this turn */
	unsigned blocked : 1;         /* a send was refused with VT_EAGAIN */
	unsigned paused : 1;          /* reading stopped while the output is full */
	unsigned broken : 1;          /* the socket failed or memory ran out */
	max_align_t ev[];             /* the struct event: socket, and flush */
};

/*
 * Take the connection of an upgrade request from evhttp and open the
 * engine connection for @id on it, answering 101. A user already at
 * max_user_conns gets the 101 too, then close 1008 with the reason, which a
 * browser can show. Returns 0, or a vt_error (evhttp still owns the
 * request, and the caller answers it).
 */
int vt_ws_conn_start(struct vt_ws_gateway *gw, struct evhttp_connection *evcon,
                     const struct vt_identity *id, const struct vt_ws_handshake *hs);

/* The bytes of a connection's record, its struct event included. */
size_t vt_ws_conn_size(void);

/* Free @wc at once: engine connection, buffers, socket. */
void vt_ws_conn_drop(struct vt_ws_conn *wc);

/* Queue a ping; the answer (any bytes) moves @wc back to the live list. */
void vt_ws_conn_ping(struct vt_ws_conn *wc);

/* Start the close handshake with @code and a short ASCII @reason. */
void vt_ws_conn_close(struct vt_ws_conn *wc, int code, const char *reason);

/* --- keepalive.c: one timer for every connection --- */

/* Set up the lists and the timer. 0 or VT_ENOMEM. */
int vt_ws_keepalive_init(struct vt_ws_gateway *gw);
void vt_ws_keepalive_finish(struct vt_ws_gateway *gw);

/* @wc joins: on the live and quiet lists, as of @now. */
void vt_ws_keepalive_add(struct vt_ws_conn *wc, uint64_t now);

/* @wc leaves every list. */
void vt_ws_keepalive_remove(struct vt_ws_conn *wc);

/* Bytes came from the peer: @wc is alive (unless it is closing). */
void vt_ws_keepalive_heard(struct vt_ws_conn *wc, uint64_t now);

/* A text message went either way: @wc is not idle. */
void vt_ws_keepalive_message(struct vt_ws_conn *wc, uint64_t now);

/* @wc moves to @list (pinged or closing) as of @now. */
void vt_ws_keepalive_move(struct vt_ws_conn *wc, enum vt_ws_list list, uint64_t now);

#endif /* VARTALAP_WS_INTERNAL_H */
