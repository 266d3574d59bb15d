/*
 * frontends/cli/wsclient.h - a WebSocket client on libevent and wslay.
 *
 * Internal to vartalap-cli: one connection, text messages only, the token in
 * the Authorization header, plain (ws://) or over TLS (wss://). Everything is
 * driven by the caller's event base. A connection is used once: after its
 * on_close the caller frees it and connects anew.
 */
#ifndef VARTALAP_CLI_WSCLIENT_H
#define VARTALAP_CLI_WSCLIENT_H

#include <stddef.h>

#include <event2/event.h>

struct vt_wsc;
struct ssl_ctx_st;

/* A parsed ws:// or wss:// URL. */
struct vt_wsc_url {
	char host[256]; /* a name, or an IP address (IPv6 without its brackets) */
	char port[8];
	char path[512];  /* with the query, if any; /v1/ws when the URL has none */
	char where[272]; /* "HOST:PORT", "[HOST]:PORT" for IPv6: the Host header */
	int tls;         /* wss:// */
};

/* What to connect to, and as whom. */
struct vt_wsc_config {
	const struct vt_wsc_url *url;
	const char *token;
	const char *device;     /* "?device=" to add, or NULL */
	struct ssl_ctx_st *tls; /* the client context for a wss:// URL; NULL for ws:// */
};

struct vt_wsc_callbacks {
	void (*on_open)(void *arg);
	void (*on_text)(void *arg, const char *text, size_t len);
	/*
	 * The connection is gone: @code is the close code, or 0 when it failed
	 * before or without a close frame; @retry is 1 when connecting again
	 * later may work (the network, a server that restarts or is busy) and
	 * 0 when it cannot (a refused token or certificate, a close the server
	 * means for good, or vt_wsc_close()); @why says what happened.
	 */
	void (*on_close)(void *arg, int code, int retry, const char *why);
};

/*
 * Parse @url: "ws://HOST[:PORT][/PATH]" or "wss://...", the port defaulting
 * to 80 or 443, the path to /v1/ws, an IPv6 host in brackets. Returns 0, or
 * -1 when it is none of these.
 */
int vt_wsc_url_parse(const char *url, struct vt_wsc_url *out);

/*
 * Start connecting as @cfg says; @cfg and what it points to must stay
 * valid until the connection is freed. Name resolution blocks. Each
 * address the name has is tried in turn. Returns NULL with the reason on
 * stderr when the name does not resolve or memory runs out; every later
 * failure comes through on_close.
 */
struct vt_wsc *vt_wsc_connect(struct event_base *base, const struct vt_wsc_config *cfg,
                              const struct vt_wsc_callbacks *cb, void *arg);

/*
 * Queue one text message. Returns 0, or -1 when the connection is not open
 * (not yet upgraded, or gone, also while sending this).
 */
int vt_wsc_send(struct vt_wsc *c, const char *text, size_t len);

/* Start a clean close (code 1000); on_close follows once it is done. */
void vt_wsc_close(struct vt_wsc *c);

/* Free the connection at once, without callbacks. Accepts NULL. */
void vt_wsc_free(struct vt_wsc *c);

#endif /* VARTALAP_CLI_WSCLIENT_H */
