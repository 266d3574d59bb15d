/*
 * frontends/notify/webhook_send.c - POSTing queued notices from the loop.
 *
 * VT_WH_SLOTS requests run at once, each on its own kept-alive evhttp
 * connection and under its own deadline. A failed attempt frees its slot at
 * once and the notice sleeps on a timer (200 ms, doubling, plus up to half
 * again of jitter so many failed notices do not return together), then goes
 * to the front of the queue. After the last retry it is dropped.
 */
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <vartalap/error.h>
#include <vartalap/log.h>

#include "../common/backoff.h"
#include "internal.h"

#define BACKOFF_FIRST_MS 200
#define BACKOFF_MAX_MS   60000

/* An answer larger than this is a misbehaving receiver: the attempt fails. */
#define MAX_ANSWER_BYTES (64 * 1024)
#define MAX_ANSWER_HEAD  8192

/*
 * evhttp's own timeout is only a backstop behind the slot's deadline: it
 * measures idleness, not the whole attempt.
 */
#define EVHTTP_BACKSTOP_MS 1000

static struct timeval ms_to_tv(uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	return tv;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct vt_wh_item *it = arg;
	struct vt_webhook *wh = it->wh;

	TAILQ_REMOVE(&wh->waiting, it, link);
	event_free(it->retry_ev);
	it->retry_ev = NULL;

	/* It waited its turn once already. */
	TAILQ_INSERT_HEAD(&wh->ready, it, link);
	vt_wh_send_ready(wh);
}

/* A failed attempt of @it: sleep before the next one, or give up. */
static void retry_or_drop(struct vt_webhook *wh, struct vt_wh_item *it)
{
	struct timeval tv;

	wh->stats.failed++;
	if (it->attempts <= wh->cfg.retries) {
		it->retry_ev = evtimer_new(wh->base, on_retry, it);
	}
	if (it->retry_ev == NULL) {
		wh->stats.dropped_retries++;
		vt_wh_item_free(wh, it);
		vt_wh_note_drop(wh, "retries ran out");
		return;
	}
	tv = ms_to_tv(vt_fe_backoff_ms(BACKOFF_FIRST_MS, BACKOFF_MAX_MS, it->attempts, &wh->rng));
	evtimer_add(it->retry_ev, &tv);
	TAILQ_INSERT_TAIL(&wh->waiting, it, link);
}

/* The attempt on @s is over; @ok when the receiver answered 2xx. */
static void finish_attempt(struct vt_wh_slot *s, int ok)
{
	struct vt_webhook *wh = s->wh;
	struct vt_wh_item *it = s->item;

	evtimer_del(s->deadline_ev);
	s->item = NULL;
	s->req = NULL;
	if (ok) {
		wh->stats.sent++;
		vt_wh_item_free(wh, it);
	} else {
		retry_or_drop(wh, it);
	}

	/* Not from inside libevent's callback: the next loop turn sends. */
	event_active(wh->kick_ev, 0, 0);
}

static void on_answer(struct evhttp_request *req, void *arg)
{
	struct vt_wh_slot *s = arg;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;

	if (code < 200 || code > 299) {
		vt_log(VT_LOG_DEBUG, "webhook: attempt failed attempt=%u status=%d%s",
		       (unsigned)s->item->attempts, code, code == 0 ? " reason=\"no answer\"" : "");
	}
	/* libevent frees @req after this returns. */
	finish_attempt(s, code >= 200 && code <= 299);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct vt_wh_slot *s = arg;

	/*
	 * Freeing the connection frees its request without calling on_answer,
	 * and closes the socket the receiver is sitting on.
	 */
	vt_log(VT_LOG_DEBUG, "webhook: attempt timed out attempt=%u timeout_ms=%u",
	       (unsigned)s->item->attempts, (unsigned)s->wh->cfg.timeout_ms);
	evhttp_connection_free(s->evcon);
	s->evcon = NULL;
	finish_attempt(s, 0);
}

static int slot_connect(struct vt_wh_slot *s)
{
	struct vt_webhook *wh = s->wh;
	struct timeval tv = ms_to_tv((uint64_t)wh->cfg.timeout_ms + EVHTTP_BACKSTOP_MS);

	s->evcon = evhttp_connection_base_new(wh->base, NULL, wh->addr, wh->url.port);
	if (s->evcon == NULL) {
		return -1;
	}
	evhttp_connection_set_retries(s->evcon, 0);
	evhttp_connection_set_timeout_tv(s->evcon, &tv);
	evhttp_connection_set_max_headers_size(s->evcon, MAX_ANSWER_HEAD);
	evhttp_connection_set_max_body_size(s->evcon, MAX_ANSWER_BYTES);
	return 0;
}

static struct evhttp_request *make_request(struct vt_wh_slot *s, const struct vt_wh_item *it)
{
	struct evhttp_request *req = evhttp_request_new(on_answer, s);
	struct evkeyvalq *h;

	if (req == NULL) {
		return NULL;
	}
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", s->wh->host_header);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "User-Agent", "vartalapd");
	if (evbuffer_add(evhttp_request_get_output_buffer(req), it->json, it->len) != 0) {
		evhttp_request_free(req);
		return NULL;
	}
	return req;
}

/* Start @it on the idle slot @s. Returns 0, or -1 with nothing started. */
static int slot_start(struct vt_wh_slot *s, struct vt_wh_item *it)
{
	struct vt_webhook *wh = s->wh;
	struct timeval tv = ms_to_tv(wh->cfg.timeout_ms);
	struct evhttp_request *req;

	if (s->evcon == NULL && slot_connect(s) != 0) {
		return -1;
	}
	req = make_request(s, it);
	if (req == NULL) {
		return -1;
	}

	/*
	 * Busy before the call: a refused local connect answers on_answer
	 * from inside evhttp_make_request(), which then finds the slot set.
	 */
	s->req = req;
	s->item = it;
	evtimer_add(s->deadline_ev, &tv);
	if (evhttp_make_request(s->evcon, req, EVHTTP_REQ_POST, wh->url.target) != 0) {
		/*
		 * libevent 2.1 frees the request on some of these failures
		 * and not on others (no socket left); leaking it beats freeing
		 * it twice. A fresh connection is made next time.
		 */
		evtimer_del(s->deadline_ev);
		s->req = NULL;
		s->item = NULL;
		evhttp_connection_free(s->evcon);
		s->evcon = NULL;
		return -1;
	}
	return 0;
}

void vt_wh_send_ready(struct vt_webhook *wh)
{
	size_t i;

	for (i = 0; i < VT_WH_SLOTS && !wh->stopped && !TAILQ_EMPTY(&wh->ready); i++) {
		struct vt_wh_slot *s = &wh->slots[i];
		struct vt_wh_item *it;

		if (s->item != NULL) {
			continue;
		}
		it = TAILQ_FIRST(&wh->ready);
		TAILQ_REMOVE(&wh->ready, it, link);
		it->attempts++;
		if (slot_start(s, it) != 0) {
			vt_log(VT_LOG_DEBUG, "webhook: attempt not started attempt=%u",
			       (unsigned)it->attempts);
			retry_or_drop(wh, it);
		}
	}
}

int vt_wh_slots_init(struct vt_webhook *wh)
{
	size_t i;

	for (i = 0; i < VT_WH_SLOTS; i++) {
		struct vt_wh_slot *s = &wh->slots[i];

		s->wh = wh;
		s->deadline_ev = evtimer_new(wh->base, on_deadline, s);
		if (s->deadline_ev == NULL) {
			return VT_ENOMEM;
		}
	}
	return 0;
}

void vt_wh_slots_cancel(struct vt_webhook *wh)
{
	size_t i;

	for (i = 0; i < VT_WH_SLOTS; i++) {
		struct vt_wh_slot *s = &wh->slots[i];

		/* No callback: freeing the connection drops its request. */
		if (s->evcon != NULL) {
			evhttp_connection_free(s->evcon);
			s->evcon = NULL;
		}
		if (s->deadline_ev != NULL) {
			evtimer_del(s->deadline_ev);
		}
		s->req = NULL;
		if (s->item != NULL) {
			TAILQ_INSERT_HEAD(&wh->ready, s->item, link);
			s->item = NULL;
		}
	}
}

void vt_wh_slots_finish(struct vt_webhook *wh)
{
	size_t i;

	vt_wh_slots_cancel(wh);
	for (i = 0; i < VT_WH_SLOTS; i++) {
		if (wh->slots[i].deadline_ev != NULL) {
			event_free(wh->slots[i].deadline_ev);
			wh->slots[i].deadline_ev = NULL;
		}
	}
}
