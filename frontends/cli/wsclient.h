/*
 * frontends/cli/wsclient.h - a WebSocket client on libevent and wslay.
 *
 * Internal to vartalap-cli: one connection, text messages only, the token in
 * the Authorization header. Everything is driven by the caller's event base.
 */
#ifndef VARTALAP_CLI_WSCLIENT_H
#define VARTALAP_CLI_WSCLIENT_H

#include <stddef.h>

#include <event2/event.h>

struct vt_wsc;

struct vt_wsc_callbacks {
	void (*on_open)(void *arg);
	void (*on_text)(void *arg, const char *text, size_t len);
	/* The connection is gone: @code is the close code, or 0 when it failed
	 * before or without a close frame; @why says what happened. */
	void (*on_close)(void *arg, int code, const char *why);
};

/*
 * Connect to @url ("ws://HOST:PORT[/PATH]", path defaulting to /v1/ws) as
 * @token, with "?device=" @device when not NULL. Name resolution blocks.
 * Returns NULL with the reason on stderr.
 */
struct vt_wsc *vt_wsc_connect(struct event_base *base, const char *url, const char *token,
                              const char *device, const struct vt_wsc_callbacks *cb,
                              void *arg);

/* Queue one text message. Returns 0, or -1 when the connection is not open. */
int vt_wsc_send(struct vt_wsc *c, const char *text, size_t len);

/* Start a clean close (code 1000); on_close follows once it is done. */
void vt_wsc_close(struct vt_wsc *c);

/* Free the connection at once, without callbacks. Accepts NULL. */
void vt_wsc_free(struct vt_wsc *c);

#endif /* VARTALAP_CLI_WSCLIENT_H */
