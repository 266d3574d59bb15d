/*
 * fuzz/fuzz_token.c - bearer token verification and signing.
 *
 * Three checks per input:
 *  1. The input as a token, verified with the seed key at a fixed time.
 *     An accepted token must carry valid ids and an expiry after "now".
 *  2. The input as claims (and, after a newline, header first) signed here
 *     with the same key, so the header and claim readers behind the
 *     signature check see arbitrary JSON the fuzzer could never sign.
 *  3. A token signed by vt_token_sign() for ids derived from the input must
 *     verify to the same identity, expire at its exp, fail under another
 *     key, and fail after any one byte of it is changed.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <vartalap/error.h>
#include <vartalap/token.h>

#include "fuzz.h"

static const unsigned char key[] = FUZZ_TOKEN_KEY;
#define KEY_LEN (sizeof(key) - 1)

static const char id_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-";

/* Room for a token built from a whole input: base64 grows by a third. */
static char token[4 * VT_TOKEN_MAX];

static void check_identity(const struct vt_identity *id, int64_t now)
{
	FUZZ_CHECK(vt_user_id_valid(id->user, strlen(id->user)), "accepted an invalid sub");
	FUZZ_CHECK(id->device[0] == '\0' || vt_user_id_valid(id->device, strlen(id->device)),
	           "accepted an invalid dev");
	FUZZ_CHECK(id->exp > now, "accepted an expired token");
}

static void verify_input(const uint8_t *data, size_t size)
{
	struct vt_identity id;
	int rc = vt_token_verify(key, KEY_LEN, (const char *)data, size, FUZZ_NOW, &id);

	FUZZ_CHECK(rc == 0 || rc == VT_EAUTH || rc == VT_EEXPIRED, "unexpected verify result");
	if (rc == 0) {
		check_identity(&id, FUZZ_NOW);
	}
}

/* base64url without padding; returns the length written at @out. */
static size_t b64url(const uint8_t *in, size_t n, char *out)
{
	static const char abc[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 1) {
		out[o++] = abc[in[i] >> 2];
		out[o++] = abc[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

		out[o++] = abc[v >> 10 & 63];
		out[o++] = abc[v >> 4 & 63];
		out[o++] = abc[(v & 15) << 2];
	}
	return o;
}

/* Sign "<header>\n<claims>" (or just claims) as a token and verify it. */
static void sign_input(const uint8_t *data, size_t size)
{
	static const char std_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	const uint8_t *nl = memchr(data, '\n', size);
	const uint8_t *head = (const uint8_t *)std_header;
	size_t head_len = sizeof(std_header) - 1;
	const uint8_t *body = data;
	size_t body_len = size;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	struct vt_identity id;
	size_t n;
	int rc;

	if (size > VT_TOKEN_MAX) {
		return;
	}
	if (nl != NULL) {
		head = data;
		head_len = (size_t)(nl - data);
		body = nl + 1;
		body_len = size - head_len - 1;
	}

	n = b64url(head, head_len, token);
	token[n++] = '.';
	n += b64url(body, body_len, token + n);
	FUZZ_CHECK(HMAC(EVP_sha256(), key, (int)KEY_LEN, (const unsigned char *)token, n, mac,
	                &mac_len) != NULL,
	           "HMAC failed");
	token[n++] = '.';
	n += b64url(mac, mac_len, token + n);

	rc = vt_token_verify(key, KEY_LEN, token, n, FUZZ_NOW, &id);
	FUZZ_CHECK(rc == 0 || rc == VT_EAUTH || rc == VT_EEXPIRED, "unexpected verify result");
	if (rc == 0) {
		FUZZ_CHECK(n <= VT_TOKEN_MAX, "accepted a token over VT_TOKEN_MAX");
		check_identity(&id, FUZZ_NOW);
	}
}

/* Map input bytes onto the id charset: 1 to VT_ID_MAX characters. */
static size_t make_id(const uint8_t *data, size_t size, char *out)
{
	size_t n = size == 0 ? 1 : (data[0] % VT_ID_MAX) + 1;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = i + 1 < size ? data[i + 1] : (uint8_t)i;

		out[i] = id_chars[c % (sizeof(id_chars) - 1)];
	}
	out[n] = '\0';
	return n;
}

static void round_trip(const uint8_t *data, size_t size)
{
	static const unsigned char other[] = "vartalap-fuzz-kez";
	char user[VT_ID_MAX + 1];
	char device[VT_ID_MAX + 1];
	struct vt_identity id;
	int64_t exp = FUZZ_NOW + 1;
	size_t half = size / 2;
	int len;

	make_id(data, half, user);
	device[0] = '\0';
	if (size > 0 && data[size - 1] & 1) {
		make_id(data + half, size - half, device);
	}
	for (size_t i = 0; i < size && i < 4; i++) {
		exp += (int64_t)data[i] << (8 * i);
	}

	len = vt_token_sign(key, KEY_LEN, user, device, FUZZ_NOW, exp, token, sizeof(token));
	FUZZ_CHECK(len > 0 && (size_t)len == strlen(token), "signing valid ids failed");
	FUZZ_CHECK(len <= VT_TOKEN_MAX, "signed token over VT_TOKEN_MAX");

	FUZZ_CHECK(vt_token_verify(key, KEY_LEN, token, (size_t)len, FUZZ_NOW, &id) == 0,
	           "a fresh token did not verify");
	FUZZ_CHECK(strcmp(id.user, user) == 0 && strcmp(id.device, device) == 0 && id.exp == exp,
	           "identity changed through sign and verify");
	FUZZ_CHECK(vt_token_verify(key, KEY_LEN, token, (size_t)len, exp, &id) == VT_EEXPIRED,
	           "a token verified at its expiry");
	FUZZ_CHECK(vt_token_verify(other, sizeof(other) - 1, token, (size_t)len, FUZZ_NOW, &id) ==
	                   VT_EAUTH,
	           "a token verified under another key");

	/* One changed byte anywhere: every byte string has one encoding only. */
	if (size > 0) {
		size_t at = (size_t)data[0] * 257u % (size_t)len;
		char was = token[at];
		uint8_t to = size > 1 ? data[1] : 1;

		token[at] = to != (uint8_t)was ? (char)to : (char)(to ^ 1);
		FUZZ_CHECK(vt_token_verify(key, KEY_LEN, token, (size_t)len, FUZZ_NOW, &id) != 0,
		           "a token changed in one byte still verified");
		token[at] = was;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	verify_input(data, size);
	sign_input(data, size);
	round_trip(data, size);
	return 0;
}
