/*
 * frontends/http/metrics.c - the engine's counters in Prometheus text format.
 *
 * Names follow Prometheus conventions: one "vartalap_" prefix, counters end in
 * "_total", and each series has its HELP and TYPE lines. The page is built
 * from one vt_engine_stats() snapshot, so its numbers agree with each other.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <vartalap/error.h>
#include <vartalap/version.h>

#include "../common/http_reply.h"

struct series {
	const char *name;
	const char *type; /* "counter" or "gauge" */
	const char *help;
	size_t offset; /* of the uint64_t in struct vt_engine_stats */
};

#define STAT(field) offsetof(struct vt_engine_stats, field)

static const struct series series[] = {
        {"vartalap_connections", "gauge", "Client connections open now.", STAT(connections)},
        {"vartalap_messages_accepted_total", "counter",
         "Events accepted from senders (answered \"accepted\").", STAT(accepted)},
        {"vartalap_messages_duplicates_total", "counter",
         "Re-sent client ids answered again without storing.", STAT(duplicates)},
        {"vartalap_messages_pushed_total", "counter",
         "Event frames pushed to devices, retries included.", STAT(pushed)},
        {"vartalap_messages_retried_total", "counter", "Pushes repeated after an ack timeout.",
         STAT(retried)},
        {"vartalap_messages_acked_total", "counter", "Deliveries completed by the recipient's ack.",
         STAT(acked)},
        {"vartalap_messages_offline_total", "counter",
         "Deliveries that went offline: device not connected, retries ran out or it dropped.",
         STAT(offline)},
        {"vartalap_messages_notified_total", "counter", "Push hook calls for offline devices.",
         STAT(notified)},
        {"vartalap_messages_expired_total", "counter",
         "Stored deliveries removed by age (offline TTL).", STAT(expired)},
        {"vartalap_typing_events_total", "counter", "Typing events relayed.", STAT(typing)},
        {"vartalap_storage_batches_total", "counter", "Storage batches committed.", STAT(batches)},
        {"vartalap_storage_batch_ops_total", "counter",
         "Operations in the committed storage batches.", STAT(batch_ops)},
        {"vartalap_storage_errors_total", "counter", "Storage batches that failed.",
         STAT(storage_errors)},
        {"vartalap_queue_high_water", "gauge",
         "Most events queued for one device at once since start.", STAT(queue_high_water)},
        {"vartalap_held_bytes", "gauge",
         "Memory counted for events held in memory, against --hold-memory.",
         STAT(held_bytes)},
        {"vartalap_journal_open", "gauge",
         "Copies held in memory with durability always whose journal entry is kept.",
         STAT(journal_open)},
        {"vartalap_ack_waiting", "gauge",
         "Messages pushed with durability always that wait for their acks before any "
         "journal entry is written (--ack-wait).",
         STAT(ack_waiting)},
        {"vartalap_logouts_total", "counter", "Logouts written by this server since start.",
         STAT(logouts)},
        {"vartalap_revoked_scopes", "gauge",
         "Devices and users whose tokens a logout revoked, remembered now.",
         STAT(revoked_scopes)},
};

/* Reported by storage backends that keep their pairs themselves (not Redis's). */
static const struct series pairs_kept = {
        "vartalap_dedup_pairs", "gauge",
        "(sender, client id) pairs remembered to answer re-sends.", 0};
static const struct series pairs_forgotten = {
        "vartalap_dedup_pairs_forgotten_total", "counter",
        "Pairs forgotten before their dedup window ended, to make room for messages.", 0};

static void add_series(struct evbuffer *out, const struct series *s, uint64_t value)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", s->name, s->help,
	                    s->name, s->type, s->name, value);
}

/*
 * Commit latency. The engine counts each batch in one bucket; Prometheus
 * wants each bucket to count every batch at or under its bound.
 */
static void add_commit_histogram(struct evbuffer *out, const struct vt_engine_stats *st)
{
	static const uint64_t bounds[] = VT_COMMIT_BOUNDS_MS;
	uint64_t seen = 0;

	evbuffer_add_printf(out, "# HELP vartalap_storage_commit_seconds Time from a flush to "
	                         "its batch being committed.\n"
	                         "# TYPE vartalap_storage_commit_seconds histogram\n");
	for (size_t i = 0; i < VT_COMMIT_BUCKETS; i++) {
		seen += st->commit_ms_le[i];
		if (i + 1 < VT_COMMIT_BUCKETS) {
			evbuffer_add_printf(
			        out,
			        "vartalap_storage_commit_seconds_bucket{le=\"%.3f\"} %" PRIu64 "\n",
			        (double)bounds[i] / 1000.0, seen);
		}
	}
	evbuffer_add_printf(out,
	                    "vartalap_storage_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
	                    "vartalap_storage_commit_seconds_sum %.3f\n"
	                    "vartalap_storage_commit_seconds_count %" PRIu64 "\n",
	                    seen, (double)st->commit_ms_sum / 1000.0, seen);
}

/*
 * Error answers by protocol name. Several internal codes share the name
 * "internal"; a label value may appear once, so they are summed.
 */
static void add_errors(struct evbuffer *out, const struct vt_engine_stats *st)
{
	const char *names[VT_ERROR_SLOTS];
	uint64_t counts[VT_ERROR_SLOTS];
	size_t n = 0;

	for (int code = 1; code < VT_ERROR_SLOTS; code++) {
		const char *name = vt_error_name(-code);
		size_t k = 0;

		while (k < n && strcmp(names[k], name) != 0) {
			k++;
		}
		if (k == n) {
			names[n] = name;
			counts[n++] = 0;
		}
		counts[k] += st->errors[code];
	}
	evbuffer_add_printf(out, "# HELP vartalap_errors_total Error answers sent, by code.\n"
	                         "# TYPE vartalap_errors_total counter\n");
	for (size_t k = 0; k < n; k++) {
		evbuffer_add_printf(out, "vartalap_errors_total{code=\"%s\"} %" PRIu64 "\n",
		                    names[k], counts[k]);
	}
}

/* What is not a counter of the engine: health and the version. */
static void add_state(struct evbuffer *out, struct vt_engine *e, int healthy)
{
	evbuffer_add_printf(out,
	                    "# HELP vartalap_healthy 1 when /healthz answers 200: storage and, "
	                    "on several nodes, Redis pub/sub work.\n"
	                    "# TYPE vartalap_healthy gauge\n"
	                    "vartalap_healthy %d\n",
	                    healthy ? 1 : 0);
	evbuffer_add_printf(out,
	                    "# HELP vartalap_storage_healthy 1 when the last storage batch "
	                    "succeeded, 0 while storage fails.\n"
	                    "# TYPE vartalap_storage_healthy gauge\n"
	                    "vartalap_storage_healthy %d\n",
	                    vt_engine_healthy(e) ? 1 : 0);
	evbuffer_add_printf(out,
	                    "# HELP vartalap_build_info The running version, as a label.\n"
	                    "# TYPE vartalap_build_info gauge\n"
	                    "vartalap_build_info{version=\"%s\"} 1\n",
	                    VT_VERSION);
}

void vt_http_serve_metrics(struct vt_engine *e, int healthy, struct evhttp_request *req)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct vt_engine_stats st;
	struct evbuffer *out;

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		vt_fe_reply_error(req, 405, "method_not_allowed", "use GET");
		return;
	}
	out = evbuffer_new();
	if (out == NULL) {
		vt_fe_reply_error(req, 500, "internal", "out of memory");
		return;
	}

	vt_engine_stats(e, &st);
	for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++) {
		add_series(out, &series[i],
		           *(const uint64_t *)(const void *)((const char *)&st + series[i].offset));
	}
	if (st.pairs_known) {
		add_series(out, &pairs_kept, st.pairs_kept);
		add_series(out, &pairs_forgotten, st.pairs_forgotten);
	}
	add_commit_histogram(out, &st);
	add_errors(out, &st);
	add_state(out, e, healthy);

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}
