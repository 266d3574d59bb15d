/*
 * token.c - HS256 bearer tokens in JWT compact form.
 *
 * Verification order matters: the shape and the signature are checked
 * before any JSON is read, so an unsigned token never reaches the parser.
 * Only then are the header (the algorithm must be HS256) and the claims
 * read, with the same strict scanner as client envelopes: a claim holding
 * an escaped NUL or a fractional expiry is refused rather than cut short or
 * rounded.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <vartalap/error.h>
#include <vartalap/token.h>

#include "json.h"

/* HMAC-SHA-256 output size. */
#define MAC_LEN 32

/* The one header this library issues: {"alg":"HS256","typ":"JWT"}. */
static const char token_header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/* Room for the decoded header or payload of the longest token accepted. */
#define PART_MAX (VT_TOKEN_MAX / 4 * 3 + 3)

/* Room for the claims this library writes: two ids and two integers. */
#define CLAIMS_MAX (2 * VT_ID_MAX + 2 * 20 + 64)

static const char b64url_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int vt_user_id_valid(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > VT_ID_MAX) {
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' || c == '-';

		if (!ok) {
			return 0;
		}
	}
	return 1;
}

/* ---- base64url without padding --------------------------------------- */

/* Encode @n bytes into @out (room for 4 * ceil(n / 3) + 1); the length. */
static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8 | in[i]) & 0xffffu;
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64url_alphabet[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0) {
		out[o++] = b64url_alphabet[(acc << (6 - bits)) & 0x3f];
	}
	out[o] = '\0';
	return o;
}

/* The 6-bit value of a base64url character, or -1 (padding included). */
static int b64url_value(unsigned char c)
{
	const char *p;

	if (c == '\0') {
		return -1;
	}
	p = strchr(b64url_alphabet, c);
	return p != NULL ? (int)(p - b64url_alphabet) : -1;
}

/*
 * Decode @n characters into @out (size @cap). Refuses padding, characters
 * outside the alphabet, an impossible length, and unused low bits that are
 * not zero: every byte string then has exactly one accepted encoding.
 * Returns the decoded length or -1.
 */
static long b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (n % 4 == 1 || n / 4 * 3 + 2 > cap) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value((unsigned char)in[i]);

		if (v < 0) {
			return -1;
		}
		acc = (acc << 6 | (uint32_t)v) & 0xffffu;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if ((acc & ((1u << bits) - 1)) != 0) {
		return -1;
	}
	return (long)o;
}

/* ---- signature -------------------------------------------------------- */

static int hmac_sha256(const unsigned char *key, size_t key_len, const char *data, size_t n,
                       unsigned char mac[MAC_LEN])
{
	const unsigned char *in = (const unsigned char *)data;
	unsigned int mac_len = 0;

	if (HMAC(EVP_sha256(), key, (int)key_len, in, n, mac, &mac_len) == NULL) {
		return -1;
	}
	return mac_len == MAC_LEN ? 0 : -1;
}

/* Check the signature @sig (base64url) of @signed_part in constant time. */
static int check_signature(const unsigned char *key, size_t key_len, const char *signed_part,
                           size_t signed_len, const char *sig, size_t sig_len)
{
	unsigned char want[MAC_LEN];
	unsigned char got[MAC_LEN + 3];

	if (b64url_decode(sig, sig_len, got, sizeof(got)) != MAC_LEN) {
		return VT_EAUTH;
	}
	if (hmac_sha256(key, key_len, signed_part, signed_len, want) != 0) {
		return VT_EAUTH;
	}
	return CRYPTO_memcmp(want, got, MAC_LEN) == 0 ? 0 : VT_EAUTH;
}

/* ---- header and claims ------------------------------------------------ */

/*
 * Decode a base64url part and return its top-level JSON object. Headers and
 * claims are flat in practice, so nesting deeper than 4 levels is refused.
 */
static int part_object(const char *b64, size_t n, unsigned char *buf, size_t cap,
                       struct vt_json_val *obj)
{
	long len = b64url_decode(b64, n, buf, cap);

	if (len < 0 || vt_json_validate_value((const char *)buf, (size_t)len, 4, obj) != 0 ||
	    obj->type != VT_JSON_OBJECT) {
		return VT_EAUTH;
	}
	return 0;
}

/* Nonzero when string value @v decodes to exactly @want. */
static int str_equals(const struct vt_json_val *v, const char *want)
{
	char tmp[16];

	return v->type == VT_JSON_STRING && vt_json_str_decode(v, tmp, sizeof(tmp)) >= 0 &&
	       strcmp(tmp, want) == 0;
}

/*
 * Index of the name in @names (@n of them) that @key spells, or @n. A name
 * seen before, per the bit mask @seen, is reported as -1.
 */
static int member_index(const struct vt_json_val *key, const char *const *names, int n,
                        unsigned *seen)
{
	for (int i = 0; i < n; i++) {
		if (vt_json_key_is(key, names[i])) {
			if (*seen & (1u << i)) {
				return -1;
			}
			*seen |= 1u << i;
			return i;
		}
	}
	return n;
}

/*
 * The header: "alg" must be "HS256"; "typ", when present, "JWT". Other
 * members are ignored, except "crit", which asks for extensions we lack.
 */
static int check_header(const struct vt_json_val *obj)
{
	static const char *const names[] = {"alg", "typ", "crit"};
	struct vt_json_val key;
	struct vt_json_val val;
	unsigned seen = 0;
	size_t pos = 0;

	while (vt_json_next_member(obj, &pos, &key, &val)) {
		int i = member_index(&key, names, 3, &seen);

		if (i < 0 || i == 2 || (i == 0 && !str_equals(&val, "HS256")) ||
		    (i == 1 && !str_equals(&val, "JWT"))) {
			return VT_EAUTH;
		}
	}
	return (seen & 1u) ? 0 : VT_EAUTH;
}

/* Decode an id claim into @out (VT_ID_MAX + 1 bytes) and check it. */
static int id_claim(const struct vt_json_val *v, char *out)
{
	int n = vt_json_str_decode(v, out, VT_ID_MAX + 1);

	if (n < 0 || !vt_user_id_valid(out, (size_t)n)) {
		out[0] = '\0';
		return VT_EAUTH;
	}
	return 0;
}

/* An integer claim of seconds: no sign, fraction or exponent. */
static int time_claim(const struct vt_json_val *v, int64_t *out)
{
	uint64_t t;

	if (vt_json_u64(v, INT64_MAX, &t) != 0) {
		return VT_EAUTH;
	}
	*out = (int64_t)t;
	return 0;
}

/* One claim, by its index in the names of read_claims(). */
static int read_claim(int i, const struct vt_json_val *val, struct vt_identity *id)
{
	switch (i) {
	case 0:
		return id_claim(val, id->user);
	case 1:
		return time_claim(val, &id->exp);
	case 2:
		return id_claim(val, id->device);
	case 3:
		return time_claim(val, &id->iat);
	default:
		return 0; /* a claim we do not use */
	}
}

/* The claims: "sub" and "exp" required, "dev" and "iat" optional. */
static int read_claims(const struct vt_json_val *obj, struct vt_identity *id)
{
	static const char *const names[] = {"sub", "exp", "dev", "iat"};
	struct vt_json_val key;
	struct vt_json_val val;
	unsigned seen = 0;
	size_t pos = 0;

	while (vt_json_next_member(obj, &pos, &key, &val)) {
		int i = member_index(&key, names, 4, &seen);

		if (i < 0 || read_claim(i, &val, id) != 0) {
			return VT_EAUTH;
		}
	}
	return (seen & 3u) == 3u ? 0 : VT_EAUTH;
}

/* ---- verify ------------------------------------------------------------ */

/* The three parts of a compact token, split at its two dots. */
struct token_parts {
	const char *head;
	size_t head_len;
	const char *body;
	size_t body_len;
	const char *sig;
	size_t sig_len;
};

static int split_token(const char *t, size_t len, struct token_parts *p)
{
	const char *dot1 = memchr(t, '.', len);
	const char *dot2;
	const char *end = t + len;

	if (dot1 == NULL) {
		return VT_EAUTH;
	}
	dot2 = memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1));
	if (dot2 == NULL) {
		return VT_EAUTH;
	}

	/* A third dot lands in the signature, which the decoder refuses. */
	p->head = t;
	p->head_len = (size_t)(dot1 - t);
	p->body = dot1 + 1;
	p->body_len = (size_t)(dot2 - dot1 - 1);
	p->sig = dot2 + 1;
	p->sig_len = (size_t)(end - dot2 - 1);
	return 0;
}

/* Check header and claims of a token whose signature is good. */
static int read_token(const struct token_parts *p, struct vt_identity *id)
{
	unsigned char buf[PART_MAX];
	struct vt_json_val obj;

	if (part_object(p->head, p->head_len, buf, sizeof(buf), &obj) != 0 ||
	    check_header(&obj) != 0) {
		return VT_EAUTH;
	}
	if (part_object(p->body, p->body_len, buf, sizeof(buf), &obj) != 0) {
		return VT_EAUTH;
	}
	return read_claims(&obj, id);
}

int vt_token_verify(const unsigned char *key, size_t key_len, const char *token, size_t len,
                    int64_t now, struct vt_identity *id)
{
	struct vt_identity got;
	struct token_parts p;
	int rc;

	/* An empty key would let anyone sign: refuse rather than accept. */
	if (key == NULL || key_len == 0 || key_len > INT_MAX || token == NULL ||
	    len > VT_TOKEN_MAX) {
		return VT_EAUTH;
	}

	rc = split_token(token, len, &p);
	if (rc == 0) {
		rc = check_signature(key, key_len, token, (size_t)(p.sig - 1 - token), p.sig,
		                     p.sig_len);
	}
	if (rc != 0) {
		return rc;
	}

	memset(&got, 0, sizeof(got));
	rc = read_token(&p, &got);
	if (rc != 0) {
		return rc;
	}
	if (got.exp <= now) {
		return VT_EEXPIRED;
	}
	*id = got;
	return 0;
}

int vt_token_claims(const char *token, size_t len, struct vt_identity *id)
{
	struct vt_identity got;
	struct token_parts p;

	if (token == NULL || len > VT_TOKEN_MAX || split_token(token, len, &p) != 0) {
		return VT_EAUTH;
	}
	memset(&got, 0, sizeof(got));
	if (read_token(&p, &got) != 0) {
		return VT_EAUTH;
	}
	*id = got;
	return 0;
}

/* ---- sign --------------------------------------------------------------- */

/* Write the claims JSON into @out; its length, or -1. */
static int write_claims(const char *user, const char *device, int64_t iat, int64_t exp, char *out,
                        size_t cap)
{
	int n;

	if (device != NULL && device[0] != '\0') {
		n = snprintf(out, cap,
		             "{\"sub\":\"%s\",\"dev\":\"%s\",\"iat\":%" PRId64 ",\"exp\":%" PRId64
		             "}",
		             user, device, iat, exp);
	} else {
		n = snprintf(out, cap, "{\"sub\":\"%s\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}",
		             user, iat, exp);
	}
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

static int sign_args_valid(const unsigned char *key, size_t key_len, const char *user,
                           const char *device, int64_t iat, int64_t exp)
{
	if (key == NULL || key_len == 0 || key_len > INT_MAX || iat < 0 || exp < 0) {
		return 0;
	}
	if (user == NULL || !vt_user_id_valid(user, strlen(user))) {
		return 0;
	}
	return device == NULL || device[0] == '\0' || vt_user_id_valid(device, strlen(device));
}

int vt_token_sign(const unsigned char *key, size_t key_len, const char *user, const char *device,
                  int64_t iat, int64_t exp, char *out, size_t cap)
{
	char claims[CLAIMS_MAX];
	char tok[sizeof(token_header_b64) + CLAIMS_MAX / 3 * 4 + 8 + MAC_LEN / 3 * 4 + 8];
	unsigned char mac[MAC_LEN];
	size_t n;
	int clen;

	if (!sign_args_valid(key, key_len, user, device, iat, exp)) {
		return VT_EINVAL;
	}
	clen = write_claims(user, device, iat, exp, claims, sizeof(claims));
	if (clen < 0) {
		return VT_EINVAL;
	}

	/* header "." claims, then sign that text and append "." signature. */
	n = sizeof(token_header_b64) - 1;
	memcpy(tok, token_header_b64, n);
	tok[n++] = '.';
	n += b64url_encode((const unsigned char *)claims, (size_t)clen, tok + n);
	if (hmac_sha256(key, key_len, tok, n, mac) != 0) {
		return VT_EINVAL;
	}
	tok[n++] = '.';
	n += b64url_encode(mac, MAC_LEN, tok + n);

	if (out == NULL || n + 1 > cap) {
		return VT_ETOOBIG;
	}
	memcpy(out, tok, n + 1);
	return (int)n;
}
