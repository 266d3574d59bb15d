/*
 * frontends/tls/tls.c - a strict server TLS context on OpenSSL 3.
 *
 * Clients of a chat service are current browsers and mobile stacks, so the
 * context can afford to refuse everything older than TLS 1.2 and every suite
 * without forward secrecy or authenticated encryption.
 */
#include "tls.h"

#include <stdio.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <errno.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <vartalap/error.h>

/*
 * TLS 1.2 suites: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 only.
 * TLS 1.3 suites are all AEAD and keep OpenSSL's defaults.
 */
static const char cipher_list[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* Put "@what: <first OpenSSL error>" into @why and clear OpenSSL's queue. */
static void explain(char *why, size_t len, const char *what, const char *path)
{
	char detail[256] = "unknown error";
	unsigned long e = ERR_peek_last_error();

	if (e != 0) {
		ERR_error_string_n(e, detail, sizeof(detail));
	}
	ERR_clear_error();
	snprintf(why, len, "%s %s: %s", what, path, detail);
}

/* Protocol floor, suites and options that do not depend on the files. */
static int harden(SSL_CTX *ctx)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, cipher_list) != 1) {
		return -1;
	}

	/* Level 2: at least 112-bit security, so no RSA keys under 2048 bits. */
	SSL_CTX_set_security_level(ctx, 2);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
	                                 SSL_OP_NO_RENEGOTIATION);

	/*
	 * The WebSocket code writes from buffers that move between calls. An
	 * idle connection gives its record buffers (about 16 KB each way) back.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

/* A file that cannot be opened is said plainly, not as an OpenSSL code. */
static int readable(const char *what, const char *path, char *why, size_t len)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(why, len, "cannot read the %s %s: %s", what, path, strerror(errno));
		return -1;
	}
	fclose(f);
	return 0;
}

static int load_files(SSL_CTX *ctx, const char *cert, const char *key, char *why, size_t len)
{
	if (readable("certificate", cert, why, len) != 0 ||
	    readable("private key", key, why, len) != 0) {
		return -1;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		explain(why, len, "cannot use the certificate", cert);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		/* OpenSSL compares the key with the certificate while loading it. */
		if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
			snprintf(why, len, "the private key %s does not match the certificate %s",
				 key, cert);
		} else {
			explain(why, len, "cannot use the private key", key);
		}
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(why, len, "the private key %s does not match the certificate %s", key,
			 cert);
		return -1;
	}
	return 0;
}

int vt_tls_ctx_new(const char *cert_path, const char *key_path, struct ssl_ctx_st **out, char *why,
                   size_t why_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		explain(why, why_len, "cannot create a TLS context for", cert_path);
		return VT_ENOMEM;
	}
	if (harden(ctx) != 0) {
		explain(why, why_len, "cannot set the TLS protocol and suites for", cert_path);
		SSL_CTX_free(ctx);
		return VT_EINVAL;
	}
	if (load_files(ctx, cert_path, key_path, why, why_len) != 0) {
		SSL_CTX_free(ctx);
		return VT_EINVAL;
	}
	*out = ctx;
	return 0;
}

void vt_tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

struct bufferevent *vt_tls_bev_new(struct event_base *base, struct ssl_ctx_st *ctx)
{
	SSL *ssl = SSL_new(ctx);
	struct bufferevent *bev;

	if (ssl == NULL) {
		ERR_clear_error();
		return NULL;
	}

	/* With BEV_OPT_CLOSE_ON_FREE the bufferevent frees @ssl and the socket. */
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		/* libevent 2.1 frees @ssl itself on this path (close-on-free). */
		return NULL;
	}

	/* A peer that drops TCP without close_notify has simply gone away. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}
