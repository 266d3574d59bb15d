/*
 * frontends/server/serve.c - wire storage, engine and gateways on one loop.
 *
 * Start-up order: options, key, storage, engine, gateways, listener. Stop
 * order is the reverse, with the engine told first so it can flush and send
 * close frames while the loop still runs.
 */
#include "commands.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <vartalap/engine.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "../common/host.h"
#include "../http/gateway.h"
#include "../notify/webhook.h"
#ifdef VT_HAVE_REDIS
#include "../redis/cluster.h"
#include "../redis/store.h"
#endif
#include "../tls/tls.h"
#include "../ws/gateway.h"
#include "dirs.h"
#include "options.h"
#include "secret.h"

/* How long close frames get to go out after a signal. */
#define DRAIN_MS 2000

/* Step of the drain check. */
#define DRAIN_STEP_MS 50

/* How much longer the storage gets to answer what the engine handed it. */
#define STORAGE_DRAIN_MS 30000

/* Memory backend: how long a (sender, client id) pair is remembered. */
#define MEM_DEDUP_WINDOW_MS (7LL * 24 * 3600 * 1000)

/*
 * Batches with the LMDB writer thread at once. One: the next batch builds
 * while the last one syncs, and goes whole when it is done. With two, each
 * loop turn's batch went at once, and the writer synced more and smaller
 * transactions: on one core that was slower (docs/PERFORMANCE.md).
 */
#define LMDB_COMMITS_IN_FLIGHT 1

struct server {
	struct vt_server_options opt;
	struct vt_secret secret;
	struct event_base *base;
	struct vt_evhost host;
	struct vt_storage st;       /* borrowed: the engine owns it */
	struct event *storage_ev;   /* the LMDB writer thread's answers are ready */
	struct vt_engine *engine;
	struct vt_ws_gateway *ws;
	struct vt_http_gateway *http;
	struct vt_webhook *webhook; /* borrowed: the engine owns the notifier */
	struct ssl_ctx_st *tls;     /* --tls-cert: HTTPS and wss:// only */
	int bad_setting;            /* start-up failed on a setting: exit 2 */
	struct event *sigterm_ev;
	struct event *sigint_ev;
	struct event *drain_ev;
	uint64_t drain_deadline_ms;
	int stopping;
};

#ifdef VT_HAVE_REDIS
/* Every node of a deployment opens the same store: ids come in blocks. */
static int open_redis(struct event_base *base, const struct vt_server_options *o,
                      struct vt_storage *st)
{
	struct vt_redis_options ro;
	int rc;

	memset(&ro, 0, sizeof(ro));
	ro.host = o->redis.host;
	ro.port = o->redis.port;
	ro.prefix = o->redis.prefix[0] != '\0' ? o->redis.prefix : NULL;
	ro.command_timeout_ms = o->redis_timeout_ms;
	ro.shared_ids = 1;
	rc = vt_storage_redis_open(base, &ro, st);
	if (rc != 0) {
		return rc; /* an unreachable server is logged by the backend */
	}
	vt_log(VT_LOG_INFO, "storage: redis at %s:%d, key prefix %s", ro.host, ro.port,
	       ro.prefix != NULL ? ro.prefix : "vt:");
	return 0;
}

static int cluster_healthy(const void *arg)
{
	return vt_redis_cluster_healthy(arg);
}

/*
 * Nodes sharing a Redis store wake each other through it, and /healthz
 * reports the cluster's connections too.
 */
static int start_cluster(struct server *s)
{
	struct vt_redis_cluster_options co;
	struct vt_redis_cluster *handle;
	struct vt_cluster cl;
	int rc;

	memset(&co, 0, sizeof(co));
	co.host = s->opt.redis.host;
	co.port = s->opt.redis.port;
	co.prefix = s->opt.redis.prefix[0] != '\0' ? s->opt.redis.prefix : NULL;
	co.command_timeout_ms = s->opt.redis_timeout_ms;
	co.node_id = s->opt.node_id;
	rc = vt_redis_cluster_create(s->base, s->engine, &co, &cl, &handle);
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "cannot start the cluster: %s", vt_strerror(rc));
		return -1;
	}
	vt_engine_set_cluster(s->engine, cl);
	s->opt.fe.healthy = cluster_healthy;
	s->opt.fe.healthy_arg = handle;
	return 0;
}
#endif

static int open_storage(struct event_base *base, const struct vt_server_options *o,
                        struct vt_storage *st)
{
	struct vt_lmdb_options lo;
	char path[4096];

#ifdef VT_HAVE_REDIS
	if (o->storage_redis) {
		return open_redis(base, o, st);
	}
#else
	(void)base; /* --storage redis was refused while parsing */
#endif
	if (o->storage_memory) {
		return vt_storage_memory_create(MEM_DEDUP_WINDOW_MS, st);
	}
	if (vt_make_dirs(o->data_dir) != 0) {
		return VT_EIO;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/lmdb", o->data_dir) >= sizeof(path)) {
		return VT_EINVAL;
	}

	memset(&lo, 0, sizeof(lo));
	lo.path = path;
	lo.map_size = o->lmdb_map_mb << 20;
	lo.writer_thread = !o->lmdb_inline;
	return vt_storage_lmdb_open(&lo, st);
}

static void on_storage_ready(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	vt_storage_lmdb_dispatch(&s->st);
}

/* With the LMDB writer thread, answers come back through its descriptor. */
static int watch_storage(struct server *s)
{
	int fd = vt_storage_lmdb_fd(&s->st);

	if (fd < 0) {
		return 0;
	}
	s->opt.engine.commits_in_flight = LMDB_COMMITS_IN_FLIGHT;
	s->storage_ev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_storage_ready, s);
	if (s->storage_ev == NULL || event_add(s->storage_ev, NULL) != 0) {
		vt_log(VT_LOG_ERROR, "cannot watch the storage writer");
		return -1;
	}
	return 0;
}

/* Write the bound port to a temporary file and rename it, so a reader never
 * sees a half-written number. */
static int write_port_file(const char *path, uint16_t port)
{
	char tmp[4096];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		return -1;
	}
	f = fopen(tmp, "w");
	if (f == NULL) {
		vt_log(VT_LOG_ERROR, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	fprintf(f, "%u\n", (unsigned)port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		vt_log(VT_LOG_ERROR, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void drain_step(struct server *s)
{
	struct timeval tv = {0, DRAIN_STEP_MS * 1000};
	uint64_t now = vt_evhost_mono_ms();
	int closed = vt_ws_gateway_count(s->ws) == 0 || now >= s->drain_deadline_ms;

	/*
	 * An asynchronous store may still owe answers: the engine must not be
	 * destroyed under them, and the senders of what it writes wait for
	 * "accepted". Only a store that stopped answering altogether is left
	 * behind, after STORAGE_DRAIN_MS more.
	 */
	if ((closed && vt_engine_idle(s->engine)) ||
	    now >= s->drain_deadline_ms + STORAGE_DRAIN_MS) {
		event_base_loopexit(s->base, NULL);
		return;
	}
	evtimer_add(s->drain_ev, &tv);
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	drain_step(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	if (s->stopping) {
		return;
	}
	s->stopping = 1;
	vt_log(VT_LOG_INFO, "signal %d: shutting down", (int)sig);

	vt_http_gateway_stop_accepting(s->http);

	/* A receiver that hangs must not hold the exit up. */
	if (s->webhook != NULL) {
		vt_webhook_stop(s->webhook);
	}
	vt_engine_shutdown(s->engine);
	s->drain_deadline_ms = vt_evhost_mono_ms() + DRAIN_MS;
	drain_step(s);
}

static int setup_signals(struct server *s)
{
	signal(SIGPIPE, SIG_IGN);
	s->sigterm_ev = evsignal_new(s->base, SIGTERM, on_signal, s);
	s->sigint_ev = evsignal_new(s->base, SIGINT, on_signal, s);
	s->drain_ev = evtimer_new(s->base, on_drain, s);
	if (s->sigterm_ev == NULL || s->sigint_ev == NULL || s->drain_ev == NULL ||
	    evsignal_add(s->sigterm_ev, NULL) != 0 || evsignal_add(s->sigint_ev, NULL) != 0) {
		vt_log(VT_LOG_ERROR, "cannot install signal handlers");
		return -1;
	}
	return 0;
}

static int start_engine(struct server *s)
{
	struct vt_host host;
	struct vt_storage st;
	int rc;

	rc = open_storage(s->base, &s->opt, &st);
	if (rc != 0) {
		/* A backend that fails with VT_EIO has logged why (a newer format, say). */
		vt_log(VT_LOG_ERROR, "cannot open storage: %s",
		       rc == VT_EBUSY  ? "its directory is in use (another vartalapd?)"
		       : rc == VT_EIO ? "see the error above"
				      : vt_strerror(rc));
		return -1;
	}
	s->st = st;
	if (watch_storage(s) != 0 || vt_evhost_init(&s->host, s->base, &host) != 0) {
		if (s->storage_ev != NULL) {
			event_free(s->storage_ev);
			s->storage_ev = NULL;
		}
		st.ops->destroy(st.self);
		return -1;
	}
	rc = vt_engine_create(&s->opt.engine, &host, st, &s->engine);
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "cannot start the engine: %s", vt_strerror(rc));
		return -1;
	}
	vt_evhost_attach(&s->host, s->engine);
	vt_log(VT_LOG_INFO, "durability %s%s",
	       s->opt.engine.durability == VT_DURABLE_OFFLINE ? "offline" : "always",
	       s->opt.engine.push_before_commit ? ", pushing before the commit" : "");
	if (s->opt.engine.ack_wait_ms > 0) {
		vt_log(VT_LOG_INFO, "pushing before the commit, journaling what is not acked "
		       "within %u ms", s->opt.engine.ack_wait_ms);
	}
#ifdef VT_HAVE_REDIS
	if (s->opt.storage_redis) {
		return start_cluster(s);
	}
#endif
	return 0;
}

/* Give the engine the push hook --notify asks for. */
static int start_notifier(struct server *s)
{
	struct vt_notifier n;
	int rc;

	switch (s->opt.notify) {
	case VT_NOTIFY_LOG:
		rc = vt_notifier_log_create(&n);
		break;
	case VT_NOTIFY_WEBHOOK:
		rc = vt_webhook_create(s->base, &s->opt.webhook, &s->webhook, &n);
		break;
	default:
		return 0;
	}
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "cannot start the push hook: %s", vt_strerror(rc));
		return -1;
	}
	vt_engine_set_notifier(s->engine, n);
	return 0;
}

/* Load --tls-cert and --tls-key; a bad file or a foreign key stops start-up. */
static int start_tls(struct server *s)
{
	char why[512];

	if (vt_tls_ctx_new(s->opt.tls_cert, s->opt.tls_key, &s->tls, why, sizeof(why)) != 0) {
		vt_log(VT_LOG_ERROR, "TLS: %s", why);
		s->bad_setting = 1;
		return -1;
	}
	vt_http_gateway_use_tls(s->http, s->tls);
	vt_log(VT_LOG_INFO, "tls on cert=%s", s->opt.tls_cert);
	return 0;
}

static int start_gateways(struct server *s)
{
	uint16_t port;

	s->opt.fe.key = s->secret.key;
	s->opt.fe.key_len = s->secret.len;
	if (vt_ws_gateway_create(s->base, s->engine, &s->opt.fe, &s->ws) != 0 ||
	    vt_http_gateway_create(s->base, s->engine, &s->opt.fe, s->ws, &s->http) != 0) {
		vt_log(VT_LOG_ERROR, "out of memory");
		return -1;
	}
	if (s->opt.tls_cert != NULL && start_tls(s) != 0) {
		return -1;
	}
	if (vt_http_gateway_listen(s->http, s->opt.listen_addr, s->opt.listen_port, &port) != 0) {
		return -1;
	}
	vt_log(VT_LOG_INFO, "listening on %s:%u", s->opt.listen_addr, (unsigned)port);
	if (s->opt.port_file != NULL && write_port_file(s->opt.port_file, port) != 0) {
		return -1;
	}
	return 0;
}

/* Tear down in reverse order; safe on a partly started server. */
static void stop(struct server *s)
{
	/* Sockets first: each WebSocket is closed in the engine once. */
	vt_ws_gateway_destroy(s->ws);

	/* The engine answers pending HTTP requests while evhttp still exists. */
	vt_evhost_attach(&s->host, NULL);
	if (s->storage_ev != NULL) {
		event_free(s->storage_ev);
	}
	vt_engine_destroy(s->engine);
	s->webhook = NULL;
	vt_evhost_finish(&s->host);
	vt_http_gateway_destroy(s->http);
	vt_tls_ctx_free(s->tls);

	if (s->sigterm_ev != NULL) {
		event_free(s->sigterm_ev);
	}
	if (s->sigint_ev != NULL) {
		event_free(s->sigint_ev);
	}
	if (s->drain_ev != NULL) {
		event_free(s->drain_ev);
	}
	if (s->base != NULL) {
		event_base_free(s->base);
	}
	vt_secret_clear(&s->secret);
}

int vt_cmd_serve(int argc, char **argv)
{
	static struct server s;
	enum vt_opt_result r = vt_server_options_parse(argc, argv, &s.opt);
	int status = 1;

	if (r != VT_OPT_RUN) {
		return (int)r;
	}
	vt_log_set(NULL, NULL, s.opt.log_level);

	if (vt_secret_from_options(s.opt.secret_file, s.opt.dev, 1, s.opt.data_dir,
	                           &s.secret) != 0) {
		return 2;
	}
	s.base = event_base_new();
	if (s.base == NULL || setup_signals(&s) != 0 || start_engine(&s) != 0 ||
	    start_notifier(&s) != 0 || start_gateways(&s) != 0) {
		goto out;
	}

	event_base_dispatch(s.base);
	status = 0;
	vt_log(VT_LOG_INFO, "stopped");
out:
	stop(&s);
	return s.bad_setting ? 2 : status;
}
