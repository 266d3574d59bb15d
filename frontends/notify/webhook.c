/*
 * frontends/notify/webhook.c - the webhook notifier: queue, lifetime, counters.
 *
 * notify() runs inside engine calls, so it only builds the POST body,
 * appends it to the queue and schedules the senders; the network is
 * touched later, from the loop (webhook_send.c).
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "../common/host.h"
#include "../common/json_str.h"
#include "internal.h"

/*
 * Besides the count, the queue holds at most this many bytes, so a burst of
 * large bodies with send_body cannot take the memory the count allows.
 */
#define QUEUE_MAX_BYTES (64u << 20)

/* At most one drop warning per this many milliseconds. */
#define WARN_EVERY_MS 1000

void vt_webhook_config_init(struct vt_webhook_config *cfg)
{
	cfg->url = NULL;
	cfg->timeout_ms = 2000;
	cfg->retries = 3;
	cfg->queue_cap = 10000;
	cfg->send_body = 0;
}

void vt_webhook_stats(const struct vt_webhook *wh, struct vt_webhook_stats *out)
{
	*out = wh->stats;
	out->held = wh->held;
}

void vt_wh_note_drop(struct vt_webhook *wh, const char *why)
{
	uint64_t now = vt_evhost_mono_ms();

	wh->dropped_unlogged++;
	if (wh->warn_at_ms != 0 && now - wh->warn_at_ms < WARN_EVERY_MS) {
		return;
	}
	vt_log(VT_LOG_WARN,
	       "webhook: dropped count=%llu reason=\"%s\" total_queue_full=%llu "
	       "total_retries_exhausted=%llu held=%zu",
	       (unsigned long long)wh->dropped_unlogged, why,
	       (unsigned long long)wh->stats.dropped_full,
	       (unsigned long long)wh->stats.dropped_retries, wh->held);
	wh->warn_at_ms = now;
	wh->dropped_unlogged = 0;
}

void vt_wh_item_free(struct vt_webhook *wh, struct vt_wh_item *it)
{
	if (it->retry_ev != NULL) {
		event_free(it->retry_ev);
	}
	wh->held--;
	wh->held_bytes -= it->len;
	free(it);
}

/* Build the POST body of @n in wh->scratch. */
static void build_json(struct vt_webhook *wh, const struct vt_notice *n)
{
	struct evbuffer *b = wh->scratch;

	evbuffer_drain(b, evbuffer_get_length(b));
	evbuffer_add_printf(b, "{\"user\":");
	vt_fe_json_string(b, n->user);
	evbuffer_add_printf(b, ",\"device\":");
	vt_fe_json_string(b, n->device != NULL ? n->device : "");
	evbuffer_add_printf(b, ",\"id\":\"%llu\",\"from\":", (unsigned long long)n->id);
	vt_fe_json_string(b, n->from);
	evbuffer_add_printf(b, ",\"group\":");
	vt_fe_json_string(b, n->group);
	evbuffer_add_printf(b, ",\"kind\":\"%s\"", n->kind == VT_KIND_GROUP ? "group" : "message");
	if (wh->cfg.send_body) {
		/* The engine validated the body as JSON when it took the message. */
		evbuffer_add_printf(b, ",\"body\":");
		if (n->body != NULL && n->body_len > 0) {
			evbuffer_add(b, n->body, n->body_len);
		} else {
			evbuffer_add(b, "null", 4);
		}
	}
	evbuffer_add(b, "}", 1);
}

static int queue_has_room(const struct vt_webhook *wh, size_t len)
{
	return wh->held < wh->cfg.queue_cap && wh->held_bytes + len <= QUEUE_MAX_BYTES;
}

static void on_notify(void *self, const struct vt_notice *n)
{
	struct vt_webhook *wh = self;
	struct vt_wh_item *it;
	size_t len;

	if (wh->stopped) {
		wh->stats.unsent++;
		return;
	}
	build_json(wh, n);
	len = evbuffer_get_length(wh->scratch);
	it = queue_has_room(wh, len) ? calloc(1, sizeof(*it) + len) : NULL;
	if (it == NULL) {
		wh->stats.dropped_full++;
		vt_wh_note_drop(wh, "queue full");
		return;
	}
	it->wh = wh;
	it->len = len;
	evbuffer_remove(wh->scratch, it->json, len);
	TAILQ_INSERT_TAIL(&wh->ready, it, link);
	wh->held++;
	wh->held_bytes += len;
	wh->stats.queued++;

	/* Not from inside the engine's call: the next loop turn sends. */
	event_active(wh->kick_ev, 0, 0);
}

static void free_queue(struct vt_webhook *wh, struct vt_wh_queue *q)
{
	while (!TAILQ_EMPTY(q)) {
		struct vt_wh_item *it = TAILQ_FIRST(q);

		TAILQ_REMOVE(q, it, link);
		vt_wh_item_free(wh, it);
	}
}

void vt_webhook_stop(struct vt_webhook *wh)
{
	if (wh->stopped) {
		return;
	}
	wh->stopped = 1;
	event_del(wh->kick_ev);
	vt_wh_slots_cancel(wh);
	wh->stats.unsent += wh->held;
	free_queue(wh, &wh->waiting);
	free_queue(wh, &wh->ready);
}

/* Free @wh and what it owns; safe on a partly created one. */
static void release(struct vt_webhook *wh)
{
	vt_wh_slots_finish(wh);
	if (wh->kick_ev != NULL) {
		event_free(wh->kick_ev);
	}
	if (wh->scratch != NULL) {
		evbuffer_free(wh->scratch);
	}
	free(wh);
}

static void on_destroy(void *self)
{
	struct vt_webhook *wh = self;
	struct vt_webhook_stats st;

	vt_webhook_stop(wh);
	vt_webhook_stats(wh, &st);
	vt_log(VT_LOG_INFO,
	       "webhook: stopped sent=%llu failed_attempts=%llu dropped=%llu queue_full=%llu "
	       "retries_exhausted=%llu unsent=%llu",
	       (unsigned long long)st.sent, (unsigned long long)st.failed,
	       (unsigned long long)(st.dropped_full + st.dropped_retries),
	       (unsigned long long)st.dropped_full, (unsigned long long)st.dropped_retries,
	       (unsigned long long)st.unsent);
	release(wh);
}

static const struct vt_notifier_ops webhook_ops = {
        .notify = on_notify,
        .destroy = on_destroy,
};

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	vt_wh_send_ready(arg);
}

/*
 * Resolve the host once, at start-up, to a numeric address: libevent
 * without a DNS base would otherwise resolve in a blocking call on every
 * reconnect.
 */
static int resolve(struct vt_webhook *wh)
{
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(wh->url.host, NULL, &hints, &res);
	if (rc == 0) {
		rc = getnameinfo(res->ai_addr, res->ai_addrlen, wh->addr, sizeof(wh->addr), NULL, 0,
		                 NI_NUMERICHOST);
	}
	if (res != NULL) {
		freeaddrinfo(res);
	}
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "webhook: cannot resolve host=%s error=\"%s\"", wh->url.host,
		       gai_strerror(rc));
		return VT_EIO;
	}
	return 0;
}

/* The Host header: the name as written, bracketed again if it is IPv6. */
static void make_host_header(struct vt_webhook *wh)
{
	int v6 = strchr(wh->url.host, ':') != NULL;

	snprintf(wh->host_header, sizeof(wh->host_header), "%s%s%s:%u", v6 ? "[" : "", wh->url.host,
	         v6 ? "]" : "", (unsigned)wh->url.port);
}

static int check_config(const struct vt_webhook_config *cfg, struct vt_webhook_url *url)
{
	const char *why = NULL;

	if (cfg->url == NULL || vt_webhook_url_parse(cfg->url, url, &why) != 0) {
		vt_log(VT_LOG_ERROR, "webhook: bad url reason=\"%s\"",
		       why != NULL ? why : "none given");
		return VT_EINVAL;
	}
	if (cfg->timeout_ms == 0 || cfg->queue_cap == 0) {
		vt_log(VT_LOG_ERROR,
		       "webhook: bad config timeout_ms=%u queue=%u; both must be positive",
		       (unsigned)cfg->timeout_ms, (unsigned)cfg->queue_cap);
		return VT_EINVAL;
	}
	return 0;
}

int vt_webhook_create(struct event_base *base, const struct vt_webhook_config *cfg,
                      struct vt_webhook **wh_out, struct vt_notifier *out)
{
	struct vt_webhook *wh = calloc(1, sizeof(*wh));
	int rc;

	if (wh == NULL) {
		return VT_ENOMEM;
	}
	wh->base = base;
	wh->cfg = *cfg;
	wh->cfg.url = NULL; /* the split copy in wh->url is what is kept */
	TAILQ_INIT(&wh->ready);
	TAILQ_INIT(&wh->waiting);
	wh->rng = vt_evhost_mono_ms() | 1;

	rc = check_config(cfg, &wh->url);
	if (rc == 0) {
		rc = resolve(wh);
	}
	if (rc == 0) {
		make_host_header(wh);
		wh->scratch = evbuffer_new();
		wh->kick_ev = event_new(base, -1, 0, on_kick, wh);
		rc = wh->scratch != NULL && wh->kick_ev != NULL ? vt_wh_slots_init(wh) : VT_ENOMEM;
	}
	if (rc != 0) {
		release(wh);
		return rc;
	}
	vt_log(VT_LOG_INFO, "webhook: ready url=http://%s%s addr=%s queue=%u retries=%u",
	       wh->host_header, wh->url.target, wh->addr, (unsigned)cfg->queue_cap,
	       (unsigned)cfg->retries);
	out->ops = &webhook_ops;
	out->self = wh;
	*wh_out = wh;
	return 0;
}
