/*
 * frontends/http/metrics.h - GET /metrics: the engine's counters for Prometheus.
 */
#ifndef VARTALAP_HTTP_METRICS_H
#define VARTALAP_HTTP_METRICS_H

#include <vartalap/engine.h>

struct evhttp_request;

/*
 * Answer @req with @e's counters in the Prometheus text exposition format
 * (version 0.0.4), or with 405 for a method other than GET or HEAD. Needs no
 * token: the counters say nothing of users or messages, and whoever can
 * reach the listening address may read them. @healthy is what /healthz
 * says now (the engine's storage and, on several nodes, the cluster's).
 */
void vt_http_serve_metrics(struct vt_engine *e, int healthy, struct evhttp_request *req);

#endif /* VARTALAP_HTTP_METRICS_H */
