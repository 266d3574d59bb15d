/*
 * frontends/notify/webhook.h - the push hook as an HTTP POST per notice.
 *
 * A struct vt_notifier that never blocks the engine: notify() copies the
 * notice into a bounded queue, and senders on the event loop POST one JSON
 * object per notice to a configured http:// URL, a few at a time, retrying
 * failures with a growing, jittered delay. A slow or dead receiver costs at
 * most the queue's memory and a fixed number of sockets; when the queue is
 * full, new notices are dropped and counted.
 *
 * Body of each POST (Content-Type: application/json):
 *   {"user":"bob","device":"","id":"42","from":"alice","group":null,
 *    "kind":"message"}
 * with "group" the group id of a group event, "kind" "message" or "group",
 * and "body" (the message's raw JSON) only when send_body is set. "device"
 * is the device to wake: "" the default one, "*" (VT_HOLDING_DEVICE) for a
 * user with no known device yet, so any of them.
 *
 * Everything here runs on the loop's thread.
 */
#ifndef VARTALAP_NOTIFY_WEBHOOK_H
#define VARTALAP_NOTIFY_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <vartalap/notifier.h>

struct vt_webhook;

struct vt_webhook_config {
	const char *url;     /* http://HOST[:PORT][/PATH[?QUERY]]; copied */
	uint32_t timeout_ms; /* one attempt, connect to answer; default 2000 */
	uint32_t retries;    /* attempts after the first; default 3 */
	uint32_t queue_cap;  /* notices held, in flight included; default 10000 */
	int send_body;       /* add "body" to each POST; default off */
};

/* Counters since creation. */
struct vt_webhook_stats {
	uint64_t queued;          /* notices taken into the queue */
	uint64_t sent;            /* notices answered with a 2xx */
	uint64_t failed;          /* attempts that failed: non-2xx, timeout, socket error */
	uint64_t dropped_full;    /* notices refused because the queue was full */
	uint64_t dropped_retries; /* notices given up after their last retry */
	uint64_t unsent;          /* notices held or arriving after vt_webhook_stop() */
	uint64_t held;            /* notices queued, waiting or in flight now */
};

/* Where a webhook URL points, split for the request. */
struct vt_webhook_url {
	char host[256];    /* as written, without IPv6 brackets */
	uint16_t port;     /* 80 when the URL names none */
	char target[2048]; /* path and query of the request line; "/" at least */
};

/* Fill @cfg with the defaults named above; url is NULL. */
void vt_webhook_config_init(struct vt_webhook_config *cfg);

/*
 * Split @url into @out. Returns 0, or -1 with a sentence for the operator
 * in *@why: not http:// (https is refused by name), no host, too long.
 */
int vt_webhook_url_parse(const char *url, struct vt_webhook_url *out, const char **why);

/*
 * Create the webhook on @base and fill @out with a notifier that owns it
 * (give it to vt_engine_set_notifier(); the engine destroys it). The host
 * name is resolved once, here, so that no later call can block on DNS.
 * Sets *@wh to a borrowed handle for vt_webhook_stats() and
 * vt_webhook_stop(), valid until the notifier is destroyed. Returns 0,
 * VT_EINVAL (bad URL or config, with the reason logged), VT_EIO (host not
 * resolved) or VT_ENOMEM.
 */
int vt_webhook_create(struct event_base *base, const struct vt_webhook_config *cfg,
                      struct vt_webhook **wh, struct vt_notifier *out);

/* Copy the counters of @wh into @out. */
void vt_webhook_stats(const struct vt_webhook *wh, struct vt_webhook_stats *out);

/*
 * Stop sending: abandon requests in flight and pending retries, and count
 * what is held, and every later notice, as unsent. Memory is released by
 * the notifier's destroy, which also logs the counters. Idempotent.
 */
void vt_webhook_stop(struct vt_webhook *wh);

#endif /* VARTALAP_NOTIFY_WEBHOOK_H */
