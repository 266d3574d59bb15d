/*
 * frontends/server/options.h - vartalapd's command line.
 */
#ifndef VARTALAP_SERVER_OPTIONS_H
#define VARTALAP_SERVER_OPTIONS_H

#include <stdint.h>

#include <vartalap/engine.h>
#include <vartalap/log.h>

#include "../common/frontend.h"
#include "../notify/webhook.h"

/* Where --redis points: redis://HOST[:PORT][/PREFIX]. */
struct vt_redis_url {
	char host[256];  /* brackets of an IPv6 address removed */
	int port;        /* 6379 when the URL names none */
	char prefix[65]; /* of every key; "" for the backend's default */
};

/* Which push hook tells offline devices to wake (--notify). */
enum vt_notify_mode {
	VT_NOTIFY_NONE = 0,
	VT_NOTIFY_LOG,
	VT_NOTIFY_WEBHOOK,
};

struct vt_server_options {
	char listen_addr[256]; /* host part of --listen, brackets removed */
	uint16_t listen_port;  /* 0: the kernel picks */
	const char *port_file; /* NULL: none */
	const char *data_dir;
	const char *secret_file; /* NULL: none */
	int dev;                 /* --dev: generated development secret */
	int hold_given;          /* --hold-queue or --hold-memory: need mode offline */
	int storage_memory;      /* --storage memory */
	int storage_redis;       /* --storage redis */
	struct vt_redis_url redis; /* --redis; host[0] == '\0' when not given */
	struct vt_redis_url cluster; /* --cluster, the same way */
	char storage_name[16];     /* --storage as given; "" when not */
	uint32_t redis_timeout_ms; /* --redis-timeout; 0: the backend's default */
	uint64_t node_id;          /* --node-id; 0: a random one */
	uint64_t lmdb_map_mb;    /* 0: the backend's default */
	int lmdb_inline;         /* --lmdb-writer inline: commit inside the loop */
	enum vt_log_level log_level;
	struct vt_engine_config engine;
	struct vt_fe_config fe; /* key filled later, from the secret */
	enum vt_notify_mode notify;
	struct vt_webhook_config webhook; /* used with VT_NOTIFY_WEBHOOK */
	const char *tls_cert;             /* --tls-cert; NULL: plain HTTP */
	const char *tls_key;              /* --tls-key; set with tls_cert */
	int check_config;                 /* --check-config: validate, then exit */
};

/* Outcome of parsing: run, or exit with the given status. */
enum vt_opt_result {
	VT_OPT_RUN = -1,
	VT_OPT_EXIT_OK = 0,  /* --help or --version printed */
	VT_OPT_EXIT_BAD = 2, /* a message went to stderr */
};

/* Parse the server's arguments into @o (defaults first). */
enum vt_opt_result vt_server_options_parse(int argc, char **argv, struct vt_server_options *o);

/*
 * How a configuration file may use long option @name: 1 takes a value, 0 is
 * a flag, -1 no such option or not one for a file (config, help, version).
 */
int vt_server_option_kind(const char *name);

/*
 * Apply long option @name as if given on the command line, @value NULL for a
 * flag. Returns 0, or -1 after printing why (an unknown name prints nothing).
 */
int vt_server_option_set(const char *name, const char *value, struct vt_server_options *o);

/*
 * Parse a strict decimal in [@min, @max] for option @name; on failure print
 * why to stderr and return -1.
 */
int vt_opt_number(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif /* VARTALAP_SERVER_OPTIONS_H */
