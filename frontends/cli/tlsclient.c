/*
 * frontends/cli/tlsclient.c - the client side of TLS for wss:// URLs.
 *
 * OpenSSL checks the chain and the name during the handshake
 * (SSL_VERIFY_PEER), so a server that fails either is never sent the token.
 */
#include "tlsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* "@what: <the last OpenSSL error>" into @why; OpenSSL's queue is cleared. */
static void explain_openssl(char *why, size_t len, const char *what)
{
	char detail[256] = "unknown error";
	unsigned long e = ERR_peek_last_error();

	if (e != 0) {
		ERR_error_string_n(e, detail, sizeof(detail));
	}
	ERR_clear_error();
	snprintf(why, len, "%s: %s", what, detail);
}

static int load_roots(SSL_CTX *ctx, const char *ca_file, char *why, size_t len)
{
	FILE *f;

	if (ca_file == NULL) {
		if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			explain_openssl(why, len, "cannot load the system's root certificates");
			return -1;
		}
		return 0;
	}

	/* A file that cannot be opened is said plainly, not as an OpenSSL code. */
	f = fopen(ca_file, "r");
	if (f == NULL) {
		snprintf(why, len, "cannot read the CA file %s: %s", ca_file, strerror(errno));
		return -1;
	}
	fclose(f);
	if (SSL_CTX_load_verify_file(ctx, ca_file) != 1) {
		char what[300];

		snprintf(what, sizeof(what), "no usable certificate in the CA file %s", ca_file);
		explain_openssl(why, len, what);
		return -1;
	}
	return 0;
}

struct ssl_ctx_st *vt_cli_tls_ctx_new(const char *ca_file, char *why, size_t why_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		explain_openssl(why, why_len, "cannot create a TLS context");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		explain_openssl(why, why_len, "cannot require TLS 1.2");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (load_roots(ctx, ca_file, why, why_len) != 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

	/* The WebSocket code writes from buffers that move between calls. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

void vt_cli_tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

/* The name the certificate must carry: an IP address, or a DNS name (also sent as SNI). */
static int expect_name(SSL *ssl, const char *host)
{
	unsigned char addr[16];

	if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1) {
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -1;
	}
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1) {
		return -1;
	}
	return 0;
}

struct bufferevent *vt_cli_tls_bev_new(struct event_base *base, struct ssl_ctx_st *ctx,
                                       const char *host)
{
	SSL *ssl = SSL_new(ctx);
	struct bufferevent *bev;

	if (ssl == NULL || expect_name(ssl, host) != 0) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}

	/* With BEV_OPT_CLOSE_ON_FREE the bufferevent frees @ssl and the socket. */
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		/* libevent 2.1 frees @ssl itself on this path (close-on-free). */
		return NULL;
	}

	/* A server that drops TCP without close_notify has simply gone away. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* What to do about a certificate OpenSSL did not accept. */
static const char *verify_hint(long v)
{
	switch (v) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
		return " (to trust it, give its CA certificate with --ca-file)";
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return " (the certificate is for another name than the URL's host)";
	default:
		return "";
	}
}

int vt_cli_tls_explain(struct bufferevent *bev, char *why, size_t why_len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	unsigned long first = 0;
	unsigned long e;
	char detail[256];

	/*
	 * libevent queues the SSL_get_error() code (SSL_ERROR_SYSCALL for a
	 * socket that failed) among OpenSSL's own errors; only the latter,
	 * which name a library, are failures of TLS.
	 */
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		if (first == 0 && ERR_GET_LIB(e) != 0) {
			first = e;
		}
	}
	ERR_clear_error();
	if (v != X509_V_OK) {
		snprintf(why, why_len, "the server's certificate was refused: %s%s",
		         X509_verify_cert_error_string(v), verify_hint(v));
		return 1;
	}
	if (first != 0) {
		ERR_error_string_n(first, detail, sizeof(detail));
		snprintf(why, why_len, "the TLS handshake failed: %s", detail);
		return 1;
	}
	return 0;
}
