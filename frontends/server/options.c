/*
 * frontends/server/options.c - parsing and checking vartalapd's options.
 *
 * A bad value is reported on stderr with the option's name and ends the
 * process with status 2 before anything is opened.
 */
#include "options.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <vartalap/storage.h>
#include <vartalap/version.h>

#include "../http/static.h"
#include "config.h"
#include "redis_url.h"

enum {
	OPT_LISTEN = 256,
	OPT_PORT_FILE,
	OPT_DATA_DIR,
	OPT_STORAGE,
	OPT_REDIS,
	OPT_REDIS_TIMEOUT,
	OPT_CLUSTER,
	OPT_NODE_ID,
	OPT_SECRET_FILE,
	OPT_DEV,
	OPT_DURABILITY,
	OPT_PUSH_BEFORE_COMMIT,
	OPT_ACK_WAIT,
	OPT_ACK_TIMEOUT,
	OPT_RETRIES,
	OPT_WINDOW,
	OPT_HOLD_QUEUE,
	OPT_HOLD_MEMORY,
	OPT_MAX_MESSAGE,
	OPT_INBOX_CAP,
	OPT_OFFLINE_TTL,
	OPT_PING_INTERVAL,
	OPT_PING_TIMEOUT,
	OPT_LMDB_MAP,
	OPT_LMDB_WRITER,
	OPT_LOG_LEVEL,
	OPT_DEVICE_TTL,
	OPT_MAX_GROUP_MEMBERS,
	OPT_MAX_GROUP_NAME,
	OPT_MAX_GROUP_UPDATE,
	OPT_TYPING_RATE,
	OPT_NOTIFY,
	OPT_WEBHOOK_URL,
	OPT_WEBHOOK_TIMEOUT,
	OPT_WEBHOOK_RETRIES,
	OPT_WEBHOOK_QUEUE,
	OPT_WEBHOOK_BODY,
	OPT_WEB_ROOT,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_USER_CONNS,
	OPT_HANDSHAKE_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_MAX_HEADER_BYTES,
	OPT_MAX_FRAME,
	OPT_RATE,
	OPT_CONFIG,
	OPT_CHECK_CONFIG,
	OPT_VERSION,
	OPT_HELP,
};

static const struct option long_options[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"port-file", required_argument, NULL, OPT_PORT_FILE},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"storage", required_argument, NULL, OPT_STORAGE},
        {"redis", required_argument, NULL, OPT_REDIS},
        {"redis-timeout", required_argument, NULL, OPT_REDIS_TIMEOUT},
        {"cluster", required_argument, NULL, OPT_CLUSTER},
        {"node-id", required_argument, NULL, OPT_NODE_ID},
        {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
        {"dev", no_argument, NULL, OPT_DEV},
        {"durability", required_argument, NULL, OPT_DURABILITY},
        {"push-before-commit", no_argument, NULL, OPT_PUSH_BEFORE_COMMIT},
        {"ack-wait", required_argument, NULL, OPT_ACK_WAIT},
        {"ack-timeout", required_argument, NULL, OPT_ACK_TIMEOUT},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"hold-queue", required_argument, NULL, OPT_HOLD_QUEUE},
        {"hold-memory", required_argument, NULL, OPT_HOLD_MEMORY},
        {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
        {"inbox-cap", required_argument, NULL, OPT_INBOX_CAP},
        {"offline-ttl", required_argument, NULL, OPT_OFFLINE_TTL},
        {"ping-interval", required_argument, NULL, OPT_PING_INTERVAL},
        {"ping-timeout", required_argument, NULL, OPT_PING_TIMEOUT},
        {"lmdb-map-size", required_argument, NULL, OPT_LMDB_MAP},
        {"lmdb-writer", required_argument, NULL, OPT_LMDB_WRITER},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"device-ttl", required_argument, NULL, OPT_DEVICE_TTL},
        {"max-group-members", required_argument, NULL, OPT_MAX_GROUP_MEMBERS},
        {"max-group-name", required_argument, NULL, OPT_MAX_GROUP_NAME},
        {"max-group-update", required_argument, NULL, OPT_MAX_GROUP_UPDATE},
        {"typing-rate", required_argument, NULL, OPT_TYPING_RATE},
        {"notify", required_argument, NULL, OPT_NOTIFY},
        {"webhook-url", required_argument, NULL, OPT_WEBHOOK_URL},
        {"webhook-timeout", required_argument, NULL, OPT_WEBHOOK_TIMEOUT},
        {"webhook-retries", required_argument, NULL, OPT_WEBHOOK_RETRIES},
        {"webhook-queue", required_argument, NULL, OPT_WEBHOOK_QUEUE},
        {"webhook-body", no_argument, NULL, OPT_WEBHOOK_BODY},
        {"web-root", required_argument, NULL, OPT_WEB_ROOT},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
        {"max-connections-per-user", required_argument, NULL, OPT_MAX_USER_CONNS},
        {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"max-header-bytes", required_argument, NULL, OPT_MAX_HEADER_BYTES},
        {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
        {"rate", required_argument, NULL, OPT_RATE},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
};

static const char usage_text[] =
        "Usage: vartalapd [OPTIONS]\n"
        "       vartalapd token USER [--device D] [--ttl SECONDS]\n"
        "                 (--secret-file PATH | --dev [--data-dir DIR])\n"
        "\n"
        "Chat delivery server: WebSocket and REST on one HTTP port.\n"
        "\n"
        "  --listen ADDR:PORT      address to serve (default 127.0.0.1:8080; port 0\n"
        "                          picks a free port)\n"
        "  --port-file PATH        write the bound port to PATH once listening\n"
        "  --data-dir DIR          state directory (default ./vartalap-data)\n"
        "  --storage lmdb|memory|redis\n"
        "                          where undelivered messages live (default lmdb)\n"
        "  --redis URL             redis://HOST[:PORT][/PREFIX] for --storage redis;\n"
        "                          PREFIX starts every key (default vt:)\n"
        "  --redis-timeout MS      limit of one Redis reply (default 2000)\n"
        "  --cluster URL           run as one node of several: the same as\n"
        "                          --storage redis --redis URL\n"
        "  --node-id N             this node's id in the cluster, 1 to 2^64-1\n"
        "                          (default: a random one at each start)\n"
        "  --secret-file PATH      token signing key, at least 32 bytes\n"
        "  --dev                   development mode: generate a key once into\n"
        "                          DATA_DIR/dev-secret and reuse it\n"
        "  --durability always|offline\n"
        "                          when a message is written before \"accepted\"\n"
        "                          (default always)\n"
        "  --push-before-commit    with --durability offline: push a held message\n"
        "                          before its dedup pair is written (lower latency\n"
        "                          at light load, more CPU at the peak)\n"
        "  --ack-wait MS           with --durability always and LMDB: push a held\n"
        "                          message at once and journal it only if it is not\n"
        "                          acked within MS (default 0: journal it first;\n"
        "                          lower latency at light load, more CPU at the peak)\n"
        "  --ack-timeout MS        wait for a client ack before a retry (default 10000)\n"
        "  --retries N             pushes after the first (default 3)\n"
        "  --window N              un-acked pushes per device (default 32)\n"
        "  --hold-queue N          messages held in memory per device, pushed or\n"
        "                          waiting (default 1024); more are written to\n"
        "                          storage. Not with --storage redis, nor with\n"
        "                          --storage memory and --durability always\n"
        "  --hold-memory MIB       memory for held messages, all devices (default\n"
        "                          256 MiB); as --hold-queue\n"
        "  --max-message BYTES     largest envelope (default 65536)\n"
        "  --inbox-cap N           stored messages per device (default 10000)\n"
        "  --offline-ttl SECONDS   age at which stored messages expire (default 30 days)\n"
        "  --ping-interval S       idle time before a WebSocket ping (default 30)\n"
        "  --ping-timeout S        wait for an answer to a ping (default 10)\n"
        "  --lmdb-map-size MB      size of the LMDB map (default 1024)\n"
        "  --lmdb-writer thread|inline\n"
        "                          commit on a thread of its own while the loop\n"
        "                          takes the next batch, or inside the loop\n"
        "                          (default thread)\n"
        "  --device-ttl SECONDS    forget a device unused this long (default 90 days)\n"
        "  --max-group-members N   members of one group (default 1000)\n"
        "  --max-group-name BYTES  longest group name (default 128)\n"
        "  --max-group-update N    users named in one group change (default 100)\n"
        "  --typing-rate N         typing events a second per connection; 0 turns\n"
        "                          typing off (default 5)\n"
        "  --notify none|log|webhook\n"
        "                          push hook for devices that are offline (default none)\n"
        "  --webhook-url URL       http://HOST:PORT/PATH to POST each notice to;\n"
        "                          required with --notify webhook (no https)\n"
        "  --webhook-timeout MS    limit of one POST attempt (default 2000)\n"
        "  --webhook-retries N     attempts after the first, with backoff (default 3)\n"
        "  --webhook-queue N       notices held for sending; more are dropped\n"
        "                          (default 10000)\n"
        "  --webhook-body          include the message body in each POST\n"
        "  --web-root DIR          serve the chat page from DIR at / (default: the\n"
        "                          installed or source web directory; \"\" for none)\n"
        "  --tls-cert PATH         PEM certificate chain: serve HTTPS and wss:// only\n"
        "                          (TLS 1.2 or later); needs --tls-key\n"
        "  --tls-key PATH          PEM private key of --tls-cert\n"
        "  --max-connections N     open sockets of the port; more are answered 503\n"
        "                          with Retry-After (default 10000)\n"
        "  --max-connections-per-user N\n"
        "                          WebSockets of one user; more are closed with\n"
        "                          1008 (default 16)\n"
        "  --handshake-timeout S   time from accept (or the last reply) to a whole\n"
        "                          request, TLS and upgrade included; then the\n"
        "                          socket is closed (default 10)\n"
        "  --idle-timeout S        close a WebSocket after S seconds without a\n"
        "                          message either way; pings do not count; 0 never\n"
        "                          (default 0)\n"
        "  --max-header-bytes N    request line plus headers (default 8192)\n"
        "  --max-frame BYTES       largest WebSocket message; a frame header that\n"
        "                          claims more is closed 1009 at once (default:\n"
        "                          --max-message)\n"
        "  --rate N                events a second per WebSocket connection, and\n"
        "                          per user over REST, also the burst; 0 no limit\n"
        "                          (default 100)\n"
        "  --log-level LEVEL       error, warn, info or debug (default info)\n"
        "  --config PATH           read settings from PATH first (key = value, keys\n"
        "                          named like these options); options given here win\n"
        "  --check-config          check the settings, print ok, and exit\n"
        "  --version               print the version and exit\n"
        "  --help                  print this help and exit\n";

int vt_opt_number(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p == '\0' || strlen(p) > 20) {
		goto bad;
	}
	for (; *p != '\0'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10) {
			goto bad;
		}
		v = v * 10 + d;
	}
	if (v < min || v > max) {
		goto bad;
	}
	*out = v;
	return 0;

bad:
	fprintf(stderr, "vartalapd: --%s: '%s' is not a number from %llu to %llu\n", name, s,
	        (unsigned long long)min, (unsigned long long)max);
	return -1;
}

/* Split "host:port" or "[v6]:port". */
static int parse_listen(const char *s, struct vt_server_options *o)
{
	const char *colon = strrchr(s, ':');
	size_t hlen;
	uint64_t port;

	if (colon == NULL || colon == s) {
		fprintf(stderr, "vartalapd: --listen: expected ADDR:PORT, got '%s'\n", s);
		return -1;
	}
	hlen = (size_t)(colon - s);
	if (s[0] == '[' && hlen >= 2 && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(o->listen_addr)) {
		fprintf(stderr, "vartalapd: --listen: bad address\n");
		return -1;
	}
	if (vt_opt_number("listen", colon + 1, 0, 65535, &port) != 0) {
		return -1;
	}
	memcpy(o->listen_addr, s, hlen);
	o->listen_addr[hlen] = '\0';
	o->listen_port = (uint16_t)port;
	return 0;
}

static int parse_choice(const char *name, const char *s, const char *a, const char *b, int *out)
{
	if (strcmp(s, a) == 0) {
		*out = 0;
		return 0;
	}
	if (strcmp(s, b) == 0) {
		*out = 1;
		return 0;
	}
	fprintf(stderr, "vartalapd: --%s: expected %s or %s, got '%s'\n", name, a, b, s);
	return -1;
}

static int parse_storage(const char *arg, struct vt_server_options *o)
{
	snprintf(o->storage_name, sizeof(o->storage_name), "%s", arg);
	o->storage_memory = strcmp(arg, "memory") == 0;
	o->storage_redis = strcmp(arg, "redis") == 0;
	if (!o->storage_memory && !o->storage_redis && strcmp(arg, "lmdb") != 0) {
		fprintf(stderr, "vartalapd: --storage: expected lmdb, memory or redis, got '%s'\n",
		        arg);
		return -1;
	}
#ifndef VT_HAVE_REDIS
	if (o->storage_redis) {
		fprintf(stderr, "vartalapd: --storage redis: this vartalapd was built without "
		                "hiredis; install it (libhiredis-dev) and build again\n");
		return -1;
	}
#endif
	return 0;
}

/* --redis and --redis-timeout. */
static int parse_redis(int opt, const char *arg, struct vt_server_options *o)
{
	uint64_t v;

	if (opt == OPT_REDIS) {
		return vt_redis_url_parse(arg, &o->redis);
	}
	if (vt_opt_number("redis-timeout", arg, 1, 600000, &v) != 0) {
		return -1;
	}
	o->redis_timeout_ms = (uint32_t)v;
	return 0;
}

static void defaults(struct vt_server_options *o)
{
	memset(o, 0, sizeof(*o));
	strcpy(o->listen_addr, "127.0.0.1");
	o->listen_port = 8080;
	o->data_dir = "./vartalap-data";
	o->log_level = VT_LOG_INFO;
	vt_engine_config_init(&o->engine);
	vt_fe_config_init(&o->fe);
	vt_webhook_config_init(&o->webhook);
}

/* Options that take a number, with their bounds. */
static int parse_numeric(int opt, const char *arg, struct vt_server_options *o)
{
	uint64_t v;

	switch (opt) {
	case OPT_ACK_TIMEOUT:
		if (vt_opt_number("ack-timeout", arg, 1, 86400000, &v) != 0) {
			return -1;
		}
		o->engine.ack_timeout_ms = (uint32_t)v;
		return 0;
	case OPT_RETRIES:
		if (vt_opt_number("retries", arg, 0, 100, &v) != 0) {
			return -1;
		}
		o->engine.max_retries = (uint32_t)v;
		return 0;
	case OPT_WINDOW:
		if (vt_opt_number("window", arg, 1, 65536, &v) != 0) {
			return -1;
		}
		o->engine.window = (uint32_t)v;
		return 0;
	case OPT_ACK_WAIT:
		if (vt_opt_number("ack-wait", arg, 0, 60000, &v) != 0) {
			return -1;
		}
		o->engine.ack_wait_ms = (uint32_t)v;
		return 0;
	case OPT_HOLD_QUEUE:
		if (vt_opt_number("hold-queue", arg, 1, 1u << 20, &v) != 0) {
			return -1;
		}
		o->engine.hold_queue = (uint32_t)v;
		o->hold_given = 1;
		return 0;
	case OPT_HOLD_MEMORY:
		if (vt_opt_number("hold-memory", arg, 1, 1u << 20, &v) != 0) {
			return -1;
		}
		o->engine.hold_memory = v << 20;
		o->hold_given = 1;
		return 0;
	case OPT_MAX_MESSAGE:
		if (vt_opt_number("max-message", arg, 256, VT_FE_MAX_MESSAGE_CAP, &v) != 0) {
			return -1;
		}
		o->engine.max_message_bytes = (uint32_t)v;
		return 0;
	case OPT_INBOX_CAP:
		if (vt_opt_number("inbox-cap", arg, 1, UINT32_MAX, &v) != 0) {
			return -1;
		}
		o->engine.inbox_cap = (uint32_t)v;
		return 0;
	case OPT_OFFLINE_TTL:
		if (vt_opt_number("offline-ttl", arg, 1, 100ull * 365 * 86400, &v) != 0) {
			return -1;
		}
		o->engine.offline_ttl_ms = v * 1000;
		return 0;
	case OPT_PING_INTERVAL:
		if (vt_opt_number("ping-interval", arg, 1, 86400, &v) != 0) {
			return -1;
		}
		o->fe.ping_interval_ms = (uint32_t)(v * 1000);
		return 0;
	case OPT_PING_TIMEOUT:
		if (vt_opt_number("ping-timeout", arg, 1, 86400, &v) != 0) {
			return -1;
		}
		o->fe.ping_timeout_ms = (uint32_t)(v * 1000);
		return 0;
	case OPT_LMDB_MAP:
		if (vt_opt_number("lmdb-map-size", arg, 1, 1ull << 30, &v) != 0) {
			return -1;
		}
		o->lmdb_map_mb = v;
		return 0;
	default:
		return -1;
	}
}

/* Limits of devices, groups and typing. */
static int parse_limit(int opt, const char *arg, struct vt_server_options *o)
{
	uint64_t v;

	switch (opt) {
	case OPT_DEVICE_TTL:
		if (vt_opt_number("device-ttl", arg, 1, 100ull * 365 * 86400, &v) != 0) {
			return -1;
		}
		o->engine.device_ttl_ms = v * 1000;
		return 0;
	case OPT_MAX_GROUP_MEMBERS:
		/* A group of one is no group: the engine needs room for two. */
		if (vt_opt_number("max-group-members", arg, 2, 1000000, &v) != 0) {
			return -1;
		}
		o->engine.max_group_members = (uint32_t)v;
		return 0;
	case OPT_MAX_GROUP_NAME:
		if (vt_opt_number("max-group-name", arg, 1, 511, &v) != 0) {
			return -1;
		}
		o->engine.max_group_name = (uint32_t)v;
		return 0;
	case OPT_MAX_GROUP_UPDATE:
		if (vt_opt_number("max-group-update", arg, 1, 1000000, &v) != 0) {
			return -1;
		}
		o->engine.max_group_update = (uint32_t)v;
		return 0;
	case OPT_TYPING_RATE:
		if (vt_opt_number("typing-rate", arg, 0, 1000, &v) != 0) {
			return -1;
		}
		o->engine.typing_per_sec = (uint32_t)v;
		return 0;
	default:
		return -1;
	}
}

static int parse_notify_mode(const char *arg, enum vt_notify_mode *out)
{
	if (strcmp(arg, "none") == 0) {
		*out = VT_NOTIFY_NONE;
	} else if (strcmp(arg, "log") == 0) {
		*out = VT_NOTIFY_LOG;
	} else if (strcmp(arg, "webhook") == 0) {
		*out = VT_NOTIFY_WEBHOOK;
	} else {
		fprintf(stderr, "vartalapd: --notify: expected none, log or webhook, got '%s'\n",
		        arg);
		return -1;
	}
	return 0;
}

static int parse_webhook_url(const char *arg, struct vt_server_options *o)
{
	struct vt_webhook_url url;
	const char *why = NULL;

	if (vt_webhook_url_parse(arg, &url, &why) != 0) {
		fprintf(stderr, "vartalapd: --webhook-url: '%s': %s\n", arg, why);
		return -1;
	}
	o->webhook.url = arg;
	return 0;
}

/* The push hook and its webhook settings. */
static int parse_notify(int opt, const char *arg, struct vt_server_options *o)
{
	uint64_t v;

	switch (opt) {
	case OPT_NOTIFY:
		return parse_notify_mode(arg, &o->notify);
	case OPT_WEBHOOK_URL:
		return parse_webhook_url(arg, o);
	case OPT_WEBHOOK_BODY:
		o->webhook.send_body = 1;
		return 0;
	case OPT_WEBHOOK_TIMEOUT:
		if (vt_opt_number("webhook-timeout", arg, 1, 600000, &v) != 0) {
			return -1;
		}
		o->webhook.timeout_ms = (uint32_t)v;
		return 0;
	case OPT_WEBHOOK_RETRIES:
		if (vt_opt_number("webhook-retries", arg, 0, 100, &v) != 0) {
			return -1;
		}
		o->webhook.retries = (uint32_t)v;
		return 0;
	case OPT_WEBHOOK_QUEUE:
		if (vt_opt_number("webhook-queue", arg, 1, 10000000, &v) != 0) {
			return -1;
		}
		o->webhook.queue_cap = (uint32_t)v;
		return 0;
	default:
		return -1;
	}
}

/* TLS files, connection limits and the message rate. */
static int parse_transport(int opt, const char *arg, struct vt_server_options *o)
{
	uint64_t v;

	switch (opt) {
	case OPT_TLS_CERT:
		o->tls_cert = arg;
		return 0;
	case OPT_TLS_KEY:
		o->tls_key = arg;
		return 0;
	case OPT_MAX_CONNECTIONS:
		if (vt_opt_number("max-connections", arg, 1, 1000000, &v) != 0) {
			return -1;
		}
		o->fe.max_connections = (uint32_t)v;
		return 0;
	case OPT_MAX_USER_CONNS:
		if (vt_opt_number("max-connections-per-user", arg, 1, 100000, &v) != 0) {
			return -1;
		}
		o->fe.max_user_conns = (uint32_t)v;
		return 0;
	case OPT_HANDSHAKE_TIMEOUT:
		if (vt_opt_number("handshake-timeout", arg, 1, 3600, &v) != 0) {
			return -1;
		}
		o->fe.request_deadline_ms = (uint32_t)(v * 1000);
		return 0;
	case OPT_IDLE_TIMEOUT:
		if (vt_opt_number("idle-timeout", arg, 0, 30 * 86400, &v) != 0) {
			return -1;
		}
		o->fe.idle_timeout_ms = (uint32_t)(v * 1000);
		return 0;
	case OPT_MAX_HEADER_BYTES:
		if (vt_opt_number("max-header-bytes", arg, 1024, 1u << 20, &v) != 0) {
			return -1;
		}
		o->fe.max_headers = (size_t)v;
		return 0;
	case OPT_MAX_FRAME:
		if (vt_opt_number("max-frame", arg, 256, VT_FE_MAX_MESSAGE_CAP, &v) != 0) {
			return -1;
		}
		o->fe.max_frame = (uint32_t)v;
		return 0;
	case OPT_RATE:
		if (vt_opt_number("rate", arg, 0, 1000000, &v) != 0) {
			return -1;
		}
		o->engine.msgs_per_sec = (uint32_t)v;
		return 0;
	default:
		return -1;
	}
}

/* One option; returns 0, -1 on a bad value, or 1 for --help / --version. */
static int parse_one(int opt, const char *arg, struct vt_server_options *o)
{
	int choice;

	switch (opt) {
	case OPT_LISTEN:
		return parse_listen(arg, o);
	case OPT_PORT_FILE:
		o->port_file = arg;
		return 0;
	case OPT_DATA_DIR:
		o->data_dir = arg;
		return 0;
	case OPT_SECRET_FILE:
		o->secret_file = arg;
		return 0;
	case OPT_DEV:
		o->dev = 1;
		return 0;
	case OPT_CONFIG:
		return 0; /* read before any other option */
	case OPT_CHECK_CONFIG:
		o->check_config = 1;
		return 0;
	case OPT_WEB_ROOT:
		o->fe.web_root = arg;
		return 0;
	case OPT_STORAGE:
		return parse_storage(arg, o);
	case OPT_REDIS:
	case OPT_REDIS_TIMEOUT:
		return parse_redis(opt, arg, o);
	case OPT_CLUSTER:
		return vt_redis_url_parse(arg, &o->cluster);
	case OPT_NODE_ID:
		return vt_opt_number("node-id", arg, 1, UINT64_MAX, &o->node_id);
	case OPT_DURABILITY:
		if (parse_choice("durability", arg, "always", "offline", &choice) != 0) {
			return -1;
		}
		o->engine.durability = choice ? VT_DURABLE_OFFLINE : VT_DURABLE_ALWAYS;
		return 0;
	case OPT_PUSH_BEFORE_COMMIT:
		o->engine.push_before_commit = 1;
		return 0;
	case OPT_LMDB_WRITER:
		return parse_choice("lmdb-writer", arg, "thread", "inline", &o->lmdb_inline);
	case OPT_LOG_LEVEL:
		if (vt_log_level_parse(arg, &o->log_level) != 0) {
			fprintf(stderr,
			        "vartalapd: --log-level: expected error, warn, info or "
			        "debug, got '%s'\n",
			        arg);
			return -1;
		}
		return 0;
	case OPT_VERSION:
		printf("vartalapd %s (LMDB store format %d)\n", VT_VERSION, VT_LMDB_FORMAT);
		return 1;
	case OPT_HELP:
		fputs(usage_text, stdout);
		return 1;
	case OPT_NOTIFY:
	case OPT_WEBHOOK_URL:
	case OPT_WEBHOOK_TIMEOUT:
	case OPT_WEBHOOK_RETRIES:
	case OPT_WEBHOOK_QUEUE:
	case OPT_WEBHOOK_BODY:
		return parse_notify(opt, arg, o);
	case OPT_DEVICE_TTL:
	case OPT_MAX_GROUP_MEMBERS:
	case OPT_MAX_GROUP_NAME:
	case OPT_MAX_GROUP_UPDATE:
	case OPT_TYPING_RATE:
		return parse_limit(opt, arg, o);
	case OPT_TLS_CERT:
	case OPT_TLS_KEY:
	case OPT_MAX_CONNECTIONS:
	case OPT_MAX_USER_CONNS:
	case OPT_HANDSHAKE_TIMEOUT:
	case OPT_IDLE_TIMEOUT:
	case OPT_MAX_HEADER_BYTES:
	case OPT_MAX_FRAME:
	case OPT_RATE:
		return parse_transport(opt, arg, o);
	default:
		return parse_numeric(opt, arg, o);
	}
}

/* The long option named @name, or NULL. */
static const struct option *find_option(const char *name)
{
	for (const struct option *lo = long_options; lo->name != NULL; lo++) {
		if (strcmp(lo->name, name) == 0) {
			return lo;
		}
	}
	return NULL;
}

int vt_server_option_kind(const char *name)
{
	const struct option *lo = find_option(name);

	if (lo == NULL || lo->val == OPT_CONFIG || lo->val == OPT_CHECK_CONFIG ||
	    lo->val == OPT_VERSION || lo->val == OPT_HELP) {
		return -1;
	}
	return lo->has_arg == no_argument ? 0 : 1;
}

int vt_server_option_set(const char *name, const char *value, struct vt_server_options *o)
{
	return vt_server_option_kind(name) < 0 ? -1 : parse_one(find_option(name)->val, value, o);
}

/* The last --config on the command line, or NULL; a first pass of its own. */
static const char *config_path(int argc, char **argv)
{
	const char *path = NULL;
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		if (opt == OPT_CONFIG) {
			path = optarg;
		}
	}
	return path;
}

/* Settings that only make sense together; after every option is read. */
static int check_notify(const struct vt_server_options *o)
{
	if (o->notify == VT_NOTIFY_WEBHOOK && o->webhook.url == NULL) {
		fprintf(stderr, "vartalapd: --notify webhook needs --webhook-url\n");
		return -1;
	}
	if (o->notify != VT_NOTIFY_WEBHOOK && o->webhook.url != NULL) {
		fprintf(stderr, "vartalapd: --webhook-url is only used with --notify webhook\n");
		return -1;
	}
	return 0;
}

/*
 * --dev serves tokens to anyone who asks; with a real key that would sign
 * them with it. The two never go together.
 */
static int check_secret(const struct vt_server_options *o)
{
	if (o->dev && o->secret_file != NULL) {
		fprintf(stderr, "vartalapd: --dev and --secret-file exclude each other: --dev "
				"makes its own key and hands out tokens signed with it\n");
		return -1;
	}
	return 0;
}

static int same_redis(const struct vt_redis_url *a, const struct vt_redis_url *b)
{
	return strcmp(a->host, b->host) == 0 && a->port == b->port &&
	       strcmp(a->prefix, b->prefix) == 0;
}

/*
 * --cluster URL is --storage redis --redis URL. Given with either of those,
 * in any order or from the config file, they must say the same: a node
 * that silently took another prefix would run as a cluster of its own.
 */
static int check_cluster(struct vt_server_options *o)
{
	if (o->cluster.host[0] == '\0') {
		return 0;
	}
	if (o->storage_name[0] != '\0' && strcmp(o->storage_name, "redis") != 0) {
		fprintf(stderr, "vartalapd: --cluster keeps everything in Redis; it does not go "
		                "with --storage %s\n", o->storage_name);
		return -1;
	}
	if (o->redis.host[0] != '\0' && !same_redis(&o->redis, &o->cluster)) {
		fprintf(stderr, "vartalapd: --cluster and --redis name different Redis servers "
		                "or key prefixes; give one of them\n");
		return -1;
	}
	o->redis = o->cluster;
	o->storage_redis = 1;
	o->storage_memory = 0;
	return 0;
}

/* --redis goes with --storage redis, both ways; so does --node-id. */
static int check_storage(struct vt_server_options *o)
{
	int have_url;

	if (check_cluster(o) != 0) {
		return -1;
	}
	have_url = o->redis.host[0] != '\0';
	if (!o->storage_redis && o->node_id != 0) {
		fprintf(stderr, "vartalapd: --node-id is only used with --cluster\n");
		return -1;
	}
	if (o->engine.push_before_commit && o->engine.durability != VT_DURABLE_OFFLINE) {
		/* Mode always writes each event before any push: nothing to gain. */
		fprintf(stderr, "vartalapd: --push-before-commit needs --durability offline\n");
		return -1;
	}
	if (o->engine.ack_wait_ms > 0 &&
	    (o->engine.durability != VT_DURABLE_ALWAYS || o->storage_memory || o->storage_redis)) {
		/* Only a store with a journal, on one node, holds such events. */
		fprintf(stderr, "vartalapd: --ack-wait needs --durability always with "
		                "--storage lmdb\n");
		return -1;
	}
	if (o->hold_given && (o->storage_redis || (o->storage_memory &&
	                                           o->engine.durability != VT_DURABLE_OFFLINE))) {
		/* Mode always holds events only over a store with a journal
		 * (LMDB); a cluster holds none: the bounds would be void. */
		fprintf(stderr, "vartalapd: --hold-queue and --hold-memory need --storage lmdb, "
		                "or --durability offline with --storage memory\n");
		return -1;
	}
	if (o->storage_redis && o->engine.durability == VT_DURABLE_OFFLINE) {
		/* What mode offline holds lives in one node's memory: a device
		 * that moves to another node would wait for its old node to let
		 * go of it, and a node killed would lose it. */
		fprintf(stderr, "vartalapd: --durability offline keeps messages in one node's "
		                "memory; with --cluster use --durability always\n");
		return -1;
	}

	if (o->storage_redis && !have_url) {
		fprintf(stderr, "vartalapd: --storage redis needs --redis URL\n");
		return -1;
	}
	if (!o->storage_redis && (have_url || o->redis_timeout_ms != 0)) {
		fprintf(stderr, "vartalapd: --redis and --redis-timeout are only used with "
		                "--storage redis\n");
		return -1;
	}
	return 0;
}

enum vt_opt_result vt_server_options_parse(int argc, char **argv, struct vt_server_options *o)
{
	const char *path;
	int opt;

	defaults(o);
	path = config_path(argc, argv);
	if (path != NULL && vt_config_load(path, o) != 0) {
		return VT_OPT_EXIT_BAD;
	}
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		int r;

		if (opt == '?' || opt == ':') {
			fprintf(stderr,
			        "vartalapd: unknown option or missing value: %s\n"
			        "Try 'vartalapd --help'.\n",
			        argv[optind - 1]);
			return VT_OPT_EXIT_BAD;
		}
		r = parse_one(opt, optarg, o);
		if (r != 0) {
			return r > 0 ? VT_OPT_EXIT_OK : VT_OPT_EXIT_BAD;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vartalapd: unexpected argument '%s'\n", argv[optind]);
		return VT_OPT_EXIT_BAD;
	}
	if (check_notify(o) != 0 || check_storage(o) != 0 || check_secret(o) != 0) {
		return VT_OPT_EXIT_BAD;
	}
	if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
		fprintf(stderr, "vartalapd: --tls-cert and --tls-key go together\n");
		return VT_OPT_EXIT_BAD;
	}

	/* The frontends mirror the engine's limits. */
	o->fe.max_message = o->engine.max_message_bytes;
	o->fe.fetch_limit_max = o->engine.fetch_limit_max;
	if (o->fe.web_root == NULL) {
		o->fe.web_root = vt_http_static_default_root();
	} else if (o->fe.web_root[0] == '\0') {
		o->fe.web_root = NULL;
	}
	/* Only a dev server, whose key is a throwaway, hands out tokens. */
	o->fe.dev_tokens = o->dev;
	if (o->check_config) {
		return vt_config_check(o);
	}
	return VT_OPT_RUN;
}
