/*
 * frontends/cli/tlsclient.h - the client side of TLS for wss:// URLs.
 *
 * The server's certificate chain is verified, against the system's roots or
 * against one given CA file, and so is its name: the host of the URL, a DNS
 * name or an IP address, must be in the certificate.
 */
#ifndef VARTALAP_CLI_TLSCLIENT_H
#define VARTALAP_CLI_TLSCLIENT_H

#include <stddef.h>

#include <event2/event.h>

struct bufferevent;
struct ssl_ctx_st;

/*
 * A client context trusting the PEM certificates in @ca_file only, or the
 * system's roots when @ca_file is NULL. NULL with the reason in @why
 * (@why_len bytes) when the file cannot be used.
 */
struct ssl_ctx_st *vt_cli_tls_ctx_new(const char *ca_file, char *why, size_t why_len);

/* Free a context made by vt_cli_tls_ctx_new(). Accepts NULL. */
void vt_cli_tls_ctx_free(struct ssl_ctx_st *ctx);

/*
 * A bufferevent on @base, no socket yet, that runs the client side of a
 * handshake with @host once bufferevent_socket_connect() gives it one.
 * Freeing it closes the socket. NULL when out of memory.
 */
struct bufferevent *vt_cli_tls_bev_new(struct event_base *base, struct ssl_ctx_st *ctx,
                                       const char *host);

/*
 * Whether the TLS connection @bev failed for a reason of TLS's own: 1, with
 * the reason in @why (@why_len bytes), when trying again cannot help (the
 * certificate was refused, the handshake failed); 0 when the failure was
 * the network's, and @why is left alone. Clears OpenSSL's error queues.
 */
int vt_cli_tls_explain(struct bufferevent *bev, char *why, size_t why_len);

#endif /* VARTALAP_CLI_TLSCLIENT_H */
