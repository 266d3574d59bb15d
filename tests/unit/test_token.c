/*
 * test_token.c - HS256 tokens: signing, verifying, and every way a token is
 * refused. Hostile tokens are built here with their own header and claims
 * and signed with OpenSSL directly, so the refusals are of well-signed
 * tokens unless the test says otherwise.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <vartalap/error.h>
#include <vartalap/token.h>

#define NOW   1700000000
#define LATER (NOW + 3600)

static const unsigned char key[] = "0123456789abcdef0123456789abcdef";
#define KEY_LEN (sizeof(key) - 1)

static const char hs256_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* base64url without padding, written here independently of the library. */
static size_t b64url(const unsigned char *in, size_t n, char *out)
{
	static const char abc[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		size_t left = n - i;

		v |= left > 1 ? (unsigned)in[i + 1] << 8 : 0;
		v |= left > 2 ? in[i + 2] : 0;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		if (left > 1) {
			out[o++] = abc[v >> 6 & 63];
		}
		if (left > 2) {
			out[o++] = abc[v & 63];
		}
	}
	out[o] = '\0';
	return o;
}

/* A token with header @hdr and claims @claims, signed with @k. */
static char *make_token_key(const unsigned char *k, size_t klen, const char *hdr,
                            const char *claims)
{
	size_t cap = 2 * (strlen(hdr) + strlen(claims)) + 128;
	char *t = malloc(cap);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;
	size_t n;

	ck_assert_ptr_nonnull(t);
	n = b64url((const unsigned char *)hdr, strlen(hdr), t);
	t[n++] = '.';
	n += b64url((const unsigned char *)claims, strlen(claims), t + n);
	ck_assert_ptr_nonnull(
	        HMAC(EVP_sha256(), k, (int)klen, (unsigned char *)t, n, mac, &mac_len));
	t[n++] = '.';
	b64url(mac, mac_len, t + n);
	return t;
}

static char *make_token(const char *hdr, const char *claims)
{
	return make_token_key(key, KEY_LEN, hdr, claims);
}

static int verify(const char *t, struct vt_identity *id)
{
	return vt_token_verify(key, KEY_LEN, t, strlen(t), NOW, id);
}

/* Verify a token built from @hdr and @claims with the test key. */
static int verify_parts(const char *hdr, const char *claims)
{
	struct vt_identity id;
	char *t = make_token(hdr, claims);
	int rc = verify(t, &id);

	free(t);
	return rc;
}

/* Verify hand-made claims under the HS256 header. */
static int verify_claims(const char *claims)
{
	return verify_parts(hs256_header, claims);
}

/* ---- user ids ------------------------------------------------------------ */

START_TEST(test_user_id_valid)
{
	char max[VT_ID_MAX + 2];

	ck_assert_int_eq(vt_user_id_valid("alice", 5), 1);
	ck_assert_int_eq(vt_user_id_valid("A.z_0@-9", 8), 1);
	ck_assert_int_eq(vt_user_id_valid("", 0), 0);
	ck_assert_int_eq(vt_user_id_valid(NULL, 3), 0);
	ck_assert_int_eq(vt_user_id_valid("g:team", 6), 0);
	ck_assert_int_eq(vt_user_id_valid("a b", 3), 0);
	ck_assert_int_eq(vt_user_id_valid("a\0b", 3), 0);
	ck_assert_int_eq(vt_user_id_valid("\xc3\xa9", 2), 0);
	ck_assert_int_eq(vt_user_id_valid("a/b", 3), 0);
	memset(max, 'x', sizeof(max));
	ck_assert_int_eq(vt_user_id_valid(max, VT_ID_MAX), 1);
	ck_assert_int_eq(vt_user_id_valid(max, VT_ID_MAX + 1), 0);
}
END_TEST

/* ---- sign and verify --------------------------------------------------- */

START_TEST(test_round_trip)
{
	char t[VT_TOKEN_MAX];
	struct vt_identity id;
	int n = vt_token_sign(key, KEY_LEN, "alice", "phone-1", NOW, LATER, t, sizeof(t));

	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(strlen(t), (size_t)n);
	ck_assert_int_eq(verify(t, &id), 0);
	ck_assert_str_eq(id.user, "alice");
	ck_assert_str_eq(id.device, "phone-1");
	ck_assert_int_eq(id.exp, LATER);
	ck_assert_int_eq(id.iat, NOW);
}
END_TEST

/* A client reads its own token's claims; the key and the clock do not matter. */
START_TEST(test_claims_without_the_key)
{
	char t[VT_TOKEN_MAX];
	struct vt_identity id;

	ck_assert_int_gt(vt_token_sign(key, KEY_LEN, "alice", "phone", NOW, NOW - 5, t, sizeof(t)),
			 0);
	ck_assert_int_eq(verify(t, &id), VT_EEXPIRED);
	ck_assert_int_eq(vt_token_claims(t, strlen(t), &id), 0);
	ck_assert_str_eq(id.user, "alice");
	ck_assert_str_eq(id.device, "phone");
	ck_assert_int_eq(id.iat, NOW);
	ck_assert_int_eq(vt_token_claims(t, 10, &id), VT_EAUTH);
	ck_assert_int_eq(vt_token_claims("a.b.c", 5, &id), VT_EAUTH);
	ck_assert_int_eq(vt_token_claims(NULL, 0, &id), VT_EAUTH);
}
END_TEST

START_TEST(test_round_trip_without_device)
{
	char t[VT_TOKEN_MAX];
	struct vt_identity id;

	ck_assert_int_gt(vt_token_sign(key, KEY_LEN, "bob", NULL, NOW, LATER, t, sizeof(t)), 0);
	ck_assert_int_eq(verify(t, &id), 0);
	ck_assert_str_eq(id.user, "bob");
	ck_assert_str_eq(id.device, "");
	ck_assert_int_gt(vt_token_sign(key, KEY_LEN, "bob", "", NOW, LATER, t, sizeof(t)), 0);
	ck_assert_int_eq(verify(t, &id), 0);
}
END_TEST

START_TEST(test_sign_refuses_bad_arguments)
{
	char t[VT_TOKEN_MAX];

	ck_assert_int_eq(vt_token_sign(key, KEY_LEN, "a b", NULL, NOW, LATER, t, sizeof(t)),
	                 VT_EINVAL);
	ck_assert_int_eq(vt_token_sign(key, KEY_LEN, "", NULL, NOW, LATER, t, sizeof(t)),
	                 VT_EINVAL);
	ck_assert_int_eq(vt_token_sign(key, KEY_LEN, NULL, NULL, NOW, LATER, t, sizeof(t)),
	                 VT_EINVAL);
	ck_assert_int_eq(vt_token_sign(key, KEY_LEN, "a", "d:1", NOW, LATER, t, sizeof(t)),
	                 VT_EINVAL);
	ck_assert_int_eq(vt_token_sign(key, 0, "a", NULL, NOW, LATER, t, sizeof(t)), VT_EINVAL);
	ck_assert_int_eq(vt_token_sign(NULL, 4, "a", NULL, NOW, LATER, t, sizeof(t)), VT_EINVAL);
	ck_assert_int_eq(vt_token_sign(key, KEY_LEN, "a", NULL, NOW, -1, t, sizeof(t)), VT_EINVAL);
}
END_TEST

START_TEST(test_sign_capacity)
{
	char t[VT_TOKEN_MAX];
	int n = vt_token_sign(key, KEY_LEN, "alice", NULL, NOW, LATER, t, sizeof(t));

	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(vt_token_sign(key, KEY_LEN, "alice", NULL, NOW, LATER, t, (size_t)n + 1),
	                 n);
	ck_assert_int_eq(vt_token_sign(key, KEY_LEN, "alice", NULL, NOW, LATER, t, (size_t)n),
	                 VT_ETOOBIG);
}
END_TEST

/* The library's tokens and independently built ones agree byte for byte. */
START_TEST(test_sign_matches_independent_build)
{
	char t[VT_TOKEN_MAX];
	char *want = make_token(hs256_header, "{\"sub\":\"alice\",\"iat\":1700000000,"
	                                      "\"exp\":1700003600}");

	ck_assert_int_gt(vt_token_sign(key, KEY_LEN, "alice", NULL, NOW, LATER, t, sizeof(t)), 0);
	ck_assert_str_eq(t, want);
	free(want);
}
END_TEST

START_TEST(test_not_nul_terminated)
{
	char t[VT_TOKEN_MAX + 8];
	struct vt_identity id;
	int n = vt_token_sign(key, KEY_LEN, "alice", NULL, NOW, LATER, t, sizeof(t));

	t[n] = 'x'; /* garbage right after the token */
	ck_assert_int_eq(vt_token_verify(key, KEY_LEN, t, (size_t)n, NOW, &id), 0);
	ck_assert_int_eq(vt_token_verify(key, KEY_LEN, t, (size_t)n + 1, NOW, &id), VT_EAUTH);
}
END_TEST

/* ---- signature and algorithm ------------------------------------------ */

START_TEST(test_wrong_key)
{
	char t[VT_TOKEN_MAX];
	struct vt_identity id;
	const unsigned char other[] = "another key of the same length!!";

	vt_token_sign(key, KEY_LEN, "alice", NULL, NOW, LATER, t, sizeof(t));
	ck_assert_int_eq(vt_token_verify(other, sizeof(other) - 1, t, strlen(t), NOW, &id),
	                 VT_EAUTH);
	ck_assert_int_eq(vt_token_verify(key, 0, t, strlen(t), NOW, &id), VT_EAUTH);
}
END_TEST

START_TEST(test_tampered_payload)
{
	char t[VT_TOKEN_MAX];
	char *forged;
	struct vt_identity id;
	char *dot1;
	char *dot2;
	char *evil;

	vt_token_sign(key, KEY_LEN, "alice", NULL, NOW, LATER, t, sizeof(t));

	/* Swap in claims for another user, keeping alice's signature. */
	forged = make_token(hs256_header, "{\"sub\":\"mallory\",\"exp\":1700003600}");
	dot1 = strchr(forged, '.');
	dot2 = strchr(dot1 + 1, '.');
	evil = malloc(strlen(t) + strlen(forged));
	ck_assert_ptr_nonnull(evil);
	memcpy(evil, forged, (size_t)(dot2 - forged));
	strcpy(evil + (dot2 - forged), strrchr(t, '.'));
	ck_assert_int_eq(verify(evil, &id), VT_EAUTH);

	/* Flip one character of the payload. */
	dot1 = strchr(t, '.');
	dot1[3] = dot1[3] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(verify(t, &id), VT_EAUTH);
	free(forged);
	free(evil);
}
END_TEST

START_TEST(test_tampered_signature)
{
	char t[VT_TOKEN_MAX];
	struct vt_identity id;
	char *sig;

	vt_token_sign(key, KEY_LEN, "alice", NULL, NOW, LATER, t, sizeof(t));
	sig = strrchr(t, '.') + 1;
	sig[0] = sig[0] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(verify(t, &id), VT_EAUTH);
}
END_TEST

START_TEST(test_alg_none)
{
	const char *claims = "{\"sub\":\"alice\",\"exp\":1700003600}";
	char t[512];
	size_t n;
	struct vt_identity id;

	/* The classic forgery: alg none and an empty signature. */
	n = b64url((const unsigned char *)"{\"alg\":\"none\",\"typ\":\"JWT\"}", 27, t);
	t[n++] = '.';
	n += b64url((const unsigned char *)claims, strlen(claims), t + n);
	strcpy(t + n, ".");
	ck_assert_int_eq(verify(t, &id), VT_EAUTH);

	/* Even correctly signed, a header naming another algorithm fails. */
	ck_assert_int_eq(verify_parts("{\"alg\":\"none\"}", claims), VT_EAUTH);
	ck_assert_int_eq(verify_parts("{\"alg\":\"HS512\"}", claims), VT_EAUTH);
	ck_assert_int_eq(verify_parts("{\"alg\":\"hs256\"}", claims), VT_EAUTH);
	ck_assert_int_eq(verify_parts("{\"alg\":\"RS256\"}", claims), VT_EAUTH);
	ck_assert_int_eq(verify_parts("{\"typ\":\"JWT\"}", claims), VT_EAUTH);
	ck_assert_int_eq(verify_parts("{\"alg\":[\"HS256\"]}", claims), VT_EAUTH);
}
END_TEST

START_TEST(test_header_shapes)
{
	const char *claims = "{\"sub\":\"alice\",\"exp\":1700003600}";

	ck_assert_int_eq(verify_parts("{\"alg\":\"HS256\"}", claims), 0);
	ck_assert_int_eq(verify_parts("{\"typ\":\"JWT\",\"alg\":\"HS256\",\"kid\":\"k1\"}", claims),
	                 0);
	ck_assert_int_eq(verify_parts("{\"alg\":\"HS256\",\"typ\":\"JOSE+x\"}", claims), VT_EAUTH);
	ck_assert_int_eq(verify_parts("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", claims), VT_EAUTH);
	ck_assert_int_eq(verify_parts("{\"alg\":\"HS256\",\"alg\":\"none\"}", claims), VT_EAUTH);
	ck_assert_int_eq(verify_parts("[\"HS256\"]", claims), VT_EAUTH);
	ck_assert_int_eq(verify_parts("{\"alg\":\"HS256\"", claims), VT_EAUTH);
}
END_TEST

/* ---- claims ----------------------------------------------------------- */

START_TEST(test_expired)
{
	char t[VT_TOKEN_MAX];
	struct vt_identity id;

	vt_token_sign(key, KEY_LEN, "alice", NULL, NOW - 100, NOW, t, sizeof(t));
	ck_assert_int_eq(verify(t, &id), VT_EEXPIRED); /* exp == now */
	vt_token_sign(key, KEY_LEN, "alice", NULL, NOW - 100, NOW - 1, t, sizeof(t));
	ck_assert_int_eq(verify(t, &id), VT_EEXPIRED);
	vt_token_sign(key, KEY_LEN, "alice", NULL, NOW - 100, NOW + 1, t, sizeof(t));
	ck_assert_int_eq(verify(t, &id), 0);
	ck_assert_int_eq(verify_claims("{\"sub\":\"a\",\"exp\":0}"), VT_EEXPIRED);
}
END_TEST

START_TEST(test_missing_claims)
{
	ck_assert_int_eq(verify_claims("{\"sub\":\"alice\"}"), VT_EAUTH);
	ck_assert_int_eq(verify_claims("{\"sub\":\"alice\",\"iat\":1700000000}"), VT_EAUTH);
	ck_assert_int_eq(verify_claims("{\"exp\":1700003600}"), VT_EAUTH);
	ck_assert_int_eq(verify_claims("{}"), VT_EAUTH);
	ck_assert_int_eq(verify_claims("[]"), VT_EAUTH);
	ck_assert_int_eq(verify_claims("\"alice\""), VT_EAUTH);
}
END_TEST

START_TEST(test_exp_must_be_integer)
{
	const char *bad[] = {
	        "{\"sub\":\"a\",\"exp\":1.5}",
	        "{\"sub\":\"a\",\"exp\":1e3}",
	        "{\"sub\":\"a\",\"exp\":1e400}",
	        "{\"sub\":\"a\",\"exp\":-5}",
	        "{\"sub\":\"a\",\"exp\":-0}",
	        "{\"sub\":\"a\",\"exp\":\"1700003600\"}",
	        "{\"sub\":\"a\",\"exp\":null}",
	        "{\"sub\":\"a\",\"exp\":1800000000.0}",
	        "{\"sub\":\"a\",\"exp\":99999999999999999999}",
	        "{\"sub\":\"a\",\"exp\":9223372036854775808}",
	        "{\"sub\":\"a\",\"exp\":1800000000,\"iat\":1.5}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(verify_claims(bad[i]) == VT_EAUTH, "accepted %s", bad[i]);
	}
	ck_assert_int_eq(verify_claims("{\"sub\":\"a\",\"exp\":9223372036854775807}"), 0);
}
END_TEST

START_TEST(test_sub_and_dev_checked)
{
	const char *bad[] = {
	        "{\"sub\":\"a:b\",\"exp\":1800000000}",
	        "{\"sub\":\"\",\"exp\":1800000000}",
	        "{\"sub\":\"a\\u0000b\",\"exp\":1800000000}",
	        "{\"sub\":7,\"exp\":1800000000}",
	        "{\"sub\":\"a\",\"dev\":\"x y\",\"exp\":1800000000}",
	        "{\"sub\":\"a\",\"dev\":\"\",\"exp\":1800000000}",
	        "{\"sub\":\"a\",\"sub\":\"b\",\"exp\":1800000000}",
	        "{\"sub\":\"a\",\"exp\":1800000000,\"exp\":1}",
	};
	struct vt_identity id;
	char *t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(verify_claims(bad[i]) == VT_EAUTH, "accepted %s", bad[i]);
	}

	/* An escaped spelling decodes to the id it stands for; other claims pass. */
	t = make_token(hs256_header, "{\"s\\u0075b\":\"\\u0061lice\",\"exp\":1800000000,"
	                             "\"nbf\":1,\"roles\":[\"x\"]}");
	ck_assert_int_eq(verify(t, &id), 0);
	ck_assert_str_eq(id.user, "alice");
	free(t);
}
END_TEST

START_TEST(test_claims_strict_json)
{
	ck_assert_int_eq(verify_claims("{\"sub\":\"a\",\"exp\":1800000000,}"), VT_EAUTH);
	ck_assert_int_eq(verify_claims("{\"sub\":\"a\",\"exp\":1800000000} x"), VT_EAUTH);
	ck_assert_int_eq(verify_claims("{\"sub\":\"a\",\"exp\":1800000000,\"n\":\"\xff\"}"),
	                 VT_EAUTH);
	ck_assert_int_eq(verify_claims("{\"sub\":\"a\",\"exp\":1800000000,\"n\":\"\\ud800\"}"),
	                 VT_EAUTH);
}
END_TEST

/* ---- encoding and size -------------------------------------------------- */

START_TEST(test_bad_base64url)
{
	char t[VT_TOKEN_MAX];
	char u[VT_TOKEN_MAX + 8];
	struct vt_identity id;
	int n = vt_token_sign(key, KEY_LEN, "alice", NULL, NOW, LATER, t, sizeof(t));
	char *sig = strrchr(t, '.') + 1;

	/* Padding, even where the length would allow it. */
	snprintf(u, sizeof(u), "%s=", t);
	ck_assert_int_eq(verify(u, &id), VT_EAUTH);

	/* Characters of standard base64, or outside any alphabet. */
	strcpy(u, t);
	strchr(u, '.')[1] = '+';
	ck_assert_int_eq(verify(u, &id), VT_EAUTH);
	strcpy(u, t);
	u[strlen(u) - 1] = '/';
	ck_assert_int_eq(verify(u, &id), VT_EAUTH);
	strcpy(u, t);
	u[2] = '*';
	ck_assert_int_eq(verify(u, &id), VT_EAUTH);
	strcpy(u, t);
	u[2] = '\0';
	ck_assert_int_eq(vt_token_verify(key, KEY_LEN, u, (size_t)n, NOW, &id), VT_EAUTH);

	/* A 43-character signature leaves 2 unused bits: they must be zero. */
	ck_assert_uint_eq(strlen(sig), 43);
	strcpy(u, t);
	{
		char *last = u + strlen(u) - 1;
		const char *abc =
		        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		int v = (int)(strchr(abc, *last) - abc);

		*last = abc[v ^ 1];
	}
	ck_assert_int_eq(verify(u, &id), VT_EAUTH);
}
END_TEST

START_TEST(test_bad_shape)
{
	char t[VT_TOKEN_MAX];
	char u[VT_TOKEN_MAX + 8];
	struct vt_identity id;

	vt_token_sign(key, KEY_LEN, "alice", NULL, NOW, LATER, t, sizeof(t));
	ck_assert_int_eq(verify("", &id), VT_EAUTH);
	ck_assert_int_eq(verify(".", &id), VT_EAUTH);
	ck_assert_int_eq(verify("..", &id), VT_EAUTH);
	ck_assert_int_eq(verify("abc", &id), VT_EAUTH);
	ck_assert_int_eq(verify("a.b", &id), VT_EAUTH);
	ck_assert_int_eq(vt_token_verify(key, KEY_LEN, NULL, 0, NOW, &id), VT_EAUTH);
	snprintf(u, sizeof(u), "%s.", t);
	ck_assert_int_eq(verify(u, &id), VT_EAUTH);
	snprintf(u, sizeof(u), "%s.AAAA", t);
	ck_assert_int_eq(verify(u, &id), VT_EAUTH);
	/* Signature only, no claims. */
	strcpy(u, t);
	memmove(strchr(u, '.') + 1, strrchr(u, '.'), strlen(strrchr(u, '.')) + 1);
	ck_assert_int_eq(verify(u, &id), VT_EAUTH);
}
END_TEST

/* A well-signed token whose claims are padded to @total bytes of token. */
static char *padded_token(size_t total)
{
	char *claims = malloc(total);
	char *t;
	size_t fill;
	size_t base = strlen("{\"sub\":\"a\",\"exp\":1800000000,\"pad\":\"\"}");

	ck_assert_ptr_nonnull(claims);
	/* 36 header chars, 2 dots, 43 signature chars; claims grow by 4/3. */
	fill = (total - 36 - 2 - 43) * 3 / 4 - base;
	snprintf(claims, total, "{\"sub\":\"a\",\"exp\":1800000000,\"pad\":\"%*s\"}", (int)fill,
	         "");
	t = make_token(hs256_header, claims);
	free(claims);
	return t;
}

START_TEST(test_oversize)
{
	struct vt_identity id;
	char *fits = padded_token(VT_TOKEN_MAX);
	char *big = padded_token(VT_TOKEN_MAX + 8);

	ck_assert_uint_le(strlen(fits), VT_TOKEN_MAX);
	ck_assert_uint_gt(strlen(fits), VT_TOKEN_MAX - 4);
	ck_assert_int_eq(verify(fits, &id), 0);
	ck_assert_uint_gt(strlen(big), VT_TOKEN_MAX);
	ck_assert_int_eq(verify(big, &id), VT_EAUTH);
	free(fits);
	free(big);
}
END_TEST

static Suite *token_suite(void)
{
	Suite *s = suite_create("token");
	TCase *ok = tcase_create("sign and verify");
	TCase *bad = tcase_create("refusals");

	tcase_add_test(ok, test_user_id_valid);
	tcase_add_test(ok, test_round_trip);
	tcase_add_test(ok, test_round_trip_without_device);
	tcase_add_test(ok, test_claims_without_the_key);
	tcase_add_test(ok, test_sign_refuses_bad_arguments);
	tcase_add_test(ok, test_sign_capacity);
	tcase_add_test(ok, test_sign_matches_independent_build);
	tcase_add_test(ok, test_not_nul_terminated);
	suite_add_tcase(s, ok);

	tcase_add_test(bad, test_wrong_key);
	tcase_add_test(bad, test_tampered_payload);
	tcase_add_test(bad, test_tampered_signature);
	tcase_add_test(bad, test_alg_none);
	tcase_add_test(bad, test_header_shapes);
	tcase_add_test(bad, test_expired);
	tcase_add_test(bad, test_missing_claims);
	tcase_add_test(bad, test_exp_must_be_integer);
	tcase_add_test(bad, test_sub_and_dev_checked);
	tcase_add_test(bad, test_claims_strict_json);
	tcase_add_test(bad, test_bad_base64url);
	tcase_add_test(bad, test_bad_shape);
	tcase_add_test(bad, test_oversize);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(token_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
