/*
 * frontends/tls/tls.h - the server's TLS context and its bufferevents.
 *
 * One SSL_CTX serves the shared HTTP and WebSocket port: TLS 1.2 at least,
 * forward-secret AEAD suites only, the server's order of preference.
 */
#ifndef VARTALAP_TLS_H
#define VARTALAP_TLS_H

#include <stddef.h>

#include <event2/event.h>

struct bufferevent;
struct ssl_ctx_st;

/*
 * Load the PEM certificate chain @cert_path and private key @key_path into a
 * new server context, stored in @out. On failure returns VT_EINVAL (bad or
 * unreadable file, key not matching the certificate) or VT_ENOMEM, with a
 * sentence saying which file and why in @why (@why_len bytes).
 */
int vt_tls_ctx_new(const char *cert_path, const char *key_path, struct ssl_ctx_st **out, char *why,
                   size_t why_len);

/* Free a context made by vt_tls_ctx_new(). Accepts NULL. */
void vt_tls_ctx_free(struct ssl_ctx_st *ctx);

/*
 * A bufferevent on @base with no socket yet that will run the server side
 * of a TLS handshake once evhttp gives it its socket; freeing it closes the
 * socket and frees the TLS state. NULL when out of memory.
 */
struct bufferevent *vt_tls_bev_new(struct event_base *base, struct ssl_ctx_st *ctx);

#endif /* VARTALAP_TLS_H */
