/*
 * frontends/common/frontend.h - settings shared by the libevent frontends.
 *
 * Internal to vartalapd, the gateways and vartalap-cli: not installed, not a
 * stable API.
 */
#ifndef VARTALAP_FRONTEND_H
#define VARTALAP_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

/*
 * The most --max-message and --max-frame may be set to: 16 MiB. A client
 * sizes the messages it takes from the server by it.
 */
#define VT_FE_MAX_MESSAGE_CAP (16u << 20)

/* What both gateways need to know; filled by the server from its options. */
struct vt_fe_config {
	const unsigned char *key; /* HMAC key of bearer tokens (not owned) */
	size_t key_len;
	uint32_t max_message;      /* bytes of one WebSocket message or HTTP body */
	uint32_t ping_interval_ms; /* idle time before the server pings */
	uint32_t ping_timeout_ms;  /* wait for any data after a ping */
	uint32_t close_linger_ms;  /* wait for the peer's close frame */
	size_t out_limit;          /* bytes queued per WebSocket before VT_EAGAIN */
	uint32_t http_timeout_s;   /* read/write timeout of an HTTP connection */
	size_t max_headers;        /* bytes of request line plus headers */
	uint32_t fetch_limit_max;  /* largest page of GET /v1/messages */
	uint32_t max_connections;  /* open HTTP and WebSocket sockets; more get 503 */
	uint32_t max_user_conns;   /* WebSockets per user; more are closed 1008 */
	uint32_t request_deadline_ms; /* accept to complete request (and upgrade) */
	uint32_t idle_timeout_ms;  /* WebSocket without messages either way; 0: none */
	uint32_t max_frame;        /* bytes of one WebSocket message; 0: max_message */
	const char *web_root;      /* directory of the chat page; NULL: no page */
	int dev_tokens;            /* --dev only: POST /v1/dev/token mints tokens */
	/* /healthz: a part outside the engine (the cluster); NULL: none */
	int (*healthy)(const void *arg);
	const void *healthy_arg;
};

/* Fill @cfg with the defaults: 64 KiB messages, ping 30 s / 10 s, 256 KiB. */
void vt_fe_config_init(struct vt_fe_config *cfg);

#endif /* VARTALAP_FRONTEND_H */
