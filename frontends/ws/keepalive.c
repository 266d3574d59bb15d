/*
 * frontends/ws/keepalive.c - pings, pong deadlines, close lingers and idle
 * timeouts of every WebSocket on one timer.
 *
 * Each deadline is a fixed delay after some moment, so connections sit on
 * lists ordered by that moment and only ever join at the tail: activity is
 * O(1) (a connection moves to the tail), and the earliest deadline is
 * always at a head. A connection is on exactly one of three lists:
 *
 *   live     open; by its last bytes in. ping_interval later: a ping.
 *   pinged   open; by its ping. ping_timeout later without bytes: dropped.
 *   closing  by the start of its close. close_linger later: dropped.
 *
 * With an idle timeout an open connection is also on the quiet list, by its
 * last text message either way; idle_timeout later it is closed. One timer serves all
 * lists, armed for the earliest head; an idle connection holds no timer.
 */
#include <stdlib.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "../common/host.h"
#include "internal.h"

/* Deadlines are met this late at most, so that one wake-up serves many. */
#define TICK_MIN_MS 50

/* Connections one wake-up acts on; the rest wait for the next turn. */
#define TICK_BUDGET 4096

static struct vt_ws_conn_q *list_of(struct vt_ws_gateway *gw, enum vt_ws_list list)
{
	switch (list) {
	case VT_WS_ON_PINGED:
		return &gw->pinged;
	case VT_WS_ON_CLOSING:
		return &gw->closing;
	default:
		return &gw->live;
	}
}

static uint64_t delay_of(const struct vt_ws_gateway *gw, enum vt_ws_list list)
{
	switch (list) {
	case VT_WS_ON_PINGED:
		return gw->cfg.ping_timeout_ms;
	case VT_WS_ON_CLOSING:
		return gw->cfg.close_linger_ms;
	default:
		return gw->cfg.ping_interval_ms;
	}
}

/* Have the timer fire by @due (monotonic ms). */
static void arm(struct vt_ws_gateway *gw, uint64_t due, uint64_t now)
{
	uint64_t ms;
	struct timeval tv;

	if (gw->tick_due != 0 && gw->tick_due <= due) {
		return;
	}
	ms = due > now ? due - now : 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(gw->tick_ev, &tv);
	gw->tick_due = now + ms;
}

/* A connection that became the head of @list: its deadline may be the first. */
static void joined(struct vt_ws_conn *wc, enum vt_ws_list list, uint64_t now)
{
	struct vt_ws_gateway *gw = wc->gw;

	if (TAILQ_FIRST(list_of(gw, list)) == wc) {
		arm(gw, wc->tick_ms + delay_of(gw, list), now);
	}
}

void vt_ws_keepalive_add(struct vt_ws_conn *wc, uint64_t now)
{
	struct vt_ws_gateway *gw = wc->gw;

	wc->list = VT_WS_ON_LIVE;
	wc->tick_ms = now;
	wc->msg_ms = now;
	TAILQ_INSERT_TAIL(&gw->live, wc, tick);
	joined(wc, VT_WS_ON_LIVE, now);
	if (gw->cfg.idle_timeout_ms != 0) {
		TAILQ_INSERT_TAIL(&gw->quiet, wc, idle);
		if (TAILQ_FIRST(&gw->quiet) == wc) {
			arm(gw, now + gw->cfg.idle_timeout_ms, now);
		}
	}
}

/* Only a connection that is not closing can go idle. */
static int on_quiet(const struct vt_ws_conn *wc)
{
	return wc->gw->cfg.idle_timeout_ms != 0 && wc->list != VT_WS_ON_CLOSING;
}

void vt_ws_keepalive_remove(struct vt_ws_conn *wc)
{
	struct vt_ws_gateway *gw = wc->gw;

	TAILQ_REMOVE(list_of(gw, (enum vt_ws_list)wc->list), wc, tick);
	if (on_quiet(wc)) {
		TAILQ_REMOVE(&gw->quiet, wc, idle);
	}
}

void vt_ws_keepalive_move(struct vt_ws_conn *wc, enum vt_ws_list list, uint64_t now)
{
	struct vt_ws_gateway *gw = wc->gw;

	if (list == VT_WS_ON_CLOSING && on_quiet(wc)) {
		TAILQ_REMOVE(&gw->quiet, wc, idle);
	}
	TAILQ_REMOVE(list_of(gw, (enum vt_ws_list)wc->list), wc, tick);
	wc->list = (uint8_t)list;
	wc->tick_ms = now;
	TAILQ_INSERT_TAIL(list_of(gw, list), wc, tick);
	joined(wc, list, now);
}

void vt_ws_keepalive_heard(struct vt_ws_conn *wc, uint64_t now)
{
	if (wc->list != VT_WS_ON_CLOSING) {
		vt_ws_keepalive_move(wc, VT_WS_ON_LIVE, now);
	}
}

void vt_ws_keepalive_message(struct vt_ws_conn *wc, uint64_t now)
{
	struct vt_ws_gateway *gw = wc->gw;

	wc->msg_ms = now;
	if (on_quiet(wc)) {
		TAILQ_REMOVE(&gw->quiet, wc, idle);
		TAILQ_INSERT_TAIL(&gw->quiet, wc, idle);
	}
}

/* The head of @list, when its deadline has come. */
static struct vt_ws_conn *due(struct vt_ws_gateway *gw, enum vt_ws_list list, uint64_t now)
{
	struct vt_ws_conn *wc = TAILQ_FIRST(list_of(gw, list));

	return wc != NULL && now - wc->tick_ms >= delay_of(gw, list) ? wc : NULL;
}

static struct vt_ws_conn *idle_due(struct vt_ws_gateway *gw, uint64_t now)
{
	struct vt_ws_conn *wc = TAILQ_FIRST(&gw->quiet);

	if (gw->cfg.idle_timeout_ms == 0 || wc == NULL) {
		return NULL;
	}
	return now - wc->msg_ms >= gw->cfg.idle_timeout_ms ? wc : NULL;
}

/* Act on what is due, at most @budget connections. Returns what is left. */
static int run_due(struct vt_ws_gateway *gw, uint64_t now, int budget)
{
	struct vt_ws_conn *wc;

	while (budget > 0 && (wc = due(gw, VT_WS_ON_PINGED, now)) != NULL) {
		vt_log(VT_LOG_INFO, "ws: ping unanswered ws=%llu after_ms=%llu; dropping",
		       wc->log_id, (unsigned long long)(now - wc->tick_ms));
		vt_ws_conn_drop(wc);
		budget--;
	}
	while (budget > 0 && (wc = due(gw, VT_WS_ON_CLOSING, now)) != NULL) {
		vt_log(VT_LOG_DEBUG, "ws: close unanswered ws=%llu; dropping", wc->log_id);
		vt_ws_conn_drop(wc);
		budget--;
	}
	while (budget > 0 && (wc = idle_due(gw, now)) != NULL) {
		vt_log(VT_LOG_DEBUG, "ws: idle ws=%llu idle_ms=%llu; closing", wc->log_id,
		       (unsigned long long)(now - wc->msg_ms));
		/* Moves it to the closing list, and off the quiet one. */
		vt_ws_conn_close(wc, VT_CLOSE_NORMAL, "idle timeout");
		budget--;
	}
	while (budget > 0 && (wc = due(gw, VT_WS_ON_LIVE, now)) != NULL) {
		vt_ws_conn_ping(wc);
		vt_ws_keepalive_move(wc, VT_WS_ON_PINGED, now);
		budget--;
	}
	return budget;
}

/* The earliest deadline of any list, or 0 when every list is empty. */
static uint64_t next_due(struct vt_ws_gateway *gw)
{
	static const enum vt_ws_list lists[] = {VT_WS_ON_LIVE, VT_WS_ON_PINGED, VT_WS_ON_CLOSING};
	uint64_t first = 0;
	struct vt_ws_conn *wc;

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		wc = TAILQ_FIRST(list_of(gw, lists[i]));
		if (wc != NULL) {
			uint64_t t = wc->tick_ms + delay_of(gw, lists[i]);

			first = first == 0 || t < first ? t : first;
		}
	}
	wc = TAILQ_FIRST(&gw->quiet);
	if (gw->cfg.idle_timeout_ms != 0 && wc != NULL) {
		uint64_t t = wc->msg_ms + gw->cfg.idle_timeout_ms;

		first = first == 0 || t < first ? t : first;
	}
	return first;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct vt_ws_gateway *gw = arg;
	uint64_t now = vt_evhost_coarse_ms();
	uint64_t next;

	gw->tick_due = 0;
	if (run_due(gw, now, TICK_BUDGET) == 0) {
		arm(gw, now, now); /* more is due: carry on next turn */
		return;
	}
	next = next_due(gw);
	if (next != 0) {
		arm(gw, next < now + TICK_MIN_MS ? now + TICK_MIN_MS : next, now);
	}
}

int vt_ws_keepalive_init(struct vt_ws_gateway *gw)
{
	TAILQ_INIT(&gw->live);
	TAILQ_INIT(&gw->pinged);
	TAILQ_INIT(&gw->closing);
	TAILQ_INIT(&gw->quiet);
	gw->tick_due = 0;
	gw->tick_ev = evtimer_new(gw->base, on_tick, gw);
	return gw->tick_ev != NULL ? 0 : VT_ENOMEM;
}

void vt_ws_keepalive_finish(struct vt_ws_gateway *gw)
{
	if (gw->tick_ev != NULL) {
		event_free(gw->tick_ev);
		gw->tick_ev = NULL;
	}
}
