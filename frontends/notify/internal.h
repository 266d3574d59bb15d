/*
 * frontends/notify/internal.h - the webhook's queue and senders.
 */
#ifndef VARTALAP_NOTIFY_INTERNAL_H
#define VARTALAP_NOTIFY_INTERNAL_H

#include <sys/queue.h>

#include <event2/http.h>

#include "webhook.h"

/*
 * Requests in flight at once. Small and fixed, so a receiver that never
 * answers holds at most this many sockets.
 */
#define VT_WH_SLOTS 4

struct vt_webhook;

/* One notice, its POST body built once at notify() time. */
struct vt_wh_item {
	TAILQ_ENTRY(vt_wh_item) link; /* in ready or waiting; unlinked in flight */
	struct vt_webhook *wh;
	struct event *retry_ev; /* while waiting for the next attempt */
	uint32_t attempts;      /* made so far */
	size_t len;
	char json[];
};

TAILQ_HEAD(vt_wh_queue, vt_wh_item);

/* One concurrent request: a kept-alive connection and what it carries. */
struct vt_wh_slot {
	struct vt_webhook *wh;
	struct evhttp_connection *evcon; /* made on first use, dropped on timeout */
	struct evhttp_request *req;      /* in flight, or NULL */
	struct vt_wh_item *item;         /* carried by req */
	struct event *deadline_ev;       /* the attempt's whole time limit */
};

struct vt_webhook {
	struct event_base *base;
	struct vt_webhook_config cfg;
	struct vt_webhook_url url;
	char addr[64];              /* the host resolved to a numeric address */
	char host_header[300];      /* Host: as the URL names it */
	struct vt_wh_queue ready;   /* oldest first; retries go to the front */
	struct vt_wh_queue waiting; /* sleeping until their retry_ev fires */
	size_t held;                /* items in ready, waiting and slots */
	size_t held_bytes;          /* their JSON bytes */
	struct vt_wh_slot slots[VT_WH_SLOTS];
	struct event *kick_ev;    /* deferred start of sends */
	struct evbuffer *scratch; /* where a notice's JSON is built */
	struct vt_webhook_stats stats;
	uint64_t rng;              /* jitter state */
	uint64_t warn_at_ms;       /* last drop warning */
	uint64_t dropped_unlogged; /* drops since that warning */
	int stopped;
};

/* Prepare the slots' timers. Returns 0 or VT_ENOMEM. */
int vt_wh_slots_init(struct vt_webhook *wh);

/* Start as many ready items as there are idle slots. */
void vt_wh_send_ready(struct vt_webhook *wh);

/* Abandon every request in flight, putting its item back in ready. */
void vt_wh_slots_cancel(struct vt_webhook *wh);

/* Free the slots' connections and timers; after vt_wh_slots_cancel(). */
void vt_wh_slots_finish(struct vt_webhook *wh);

/* Forget @it (no longer in any list or slot) and free it. */
void vt_wh_item_free(struct vt_webhook *wh, struct vt_wh_item *it);

/* A notice was dropped: count it and warn, at most once a second. */
void vt_wh_note_drop(struct vt_webhook *wh, const char *why);

#endif /* VARTALAP_NOTIFY_INTERNAL_H */
