/*
 * fuzz/fuzz_http.c - what the REST gateway reads from a request.
 *
 * The input is three parts split at the first two newlines: a query string,
 * an Authorization header value, and a body. The query goes through
 * evhttp_parse_query_str() and vt_fe_pick_device() as the gateways do; the
 * header through vt_fe_bearer() and vt_fe_authenticate() (with the seed key
 * and a fixed clock); the body through vt_env_decode_ids(), the ack body.
 *
 * Not covered: "after" and "limit" of GET /v1/messages are read by static
 * functions of frontends/http/routes.c that need a live evhttp request; see
 * fuzz/README.md for the split that would make them reachable.
 */
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <vartalap/error.h>
#include <vartalap/token.h>

#include "../frontends/common/auth.h"
#include "../frontends/common/device.h"
#include "../frontends/common/host.h"
#include "envelope.h"

#include "fuzz.h"

static const unsigned char key[] = FUZZ_TOKEN_KEY;

/* auth.c reads the wall clock through the host glue; here it is fixed. */
int64_t vt_evhost_wall_ms(void)
{
	return (int64_t)FUZZ_NOW * 1000;
}

/* Copy @n bytes of @s into a NUL-terminated string, cut at any NUL. */
static char *cstr(const uint8_t *s, size_t n)
{
	char *out = malloc(n + 1);

	FUZZ_CHECK(out != NULL, "out of memory");
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

static void check_query(const char *q)
{
	struct evkeyvalq query;
	struct vt_identity id;
	const char *dev;
	int rc;

	TAILQ_INIT(&query);
	if (evhttp_parse_query_str(q, &query) != 0) {
		evhttp_clear_headers(&query);
		return;
	}

	/* No device in the token: the query may name one, if valid. */
	memset(&id, 0, sizeof(id));
	rc = vt_fe_pick_device(&id, &query);
	dev = evhttp_find_header(&query, "device");
	if (rc == 0) {
		FUZZ_CHECK(dev == NULL ? id.device[0] == '\0' : strcmp(id.device, dev) == 0,
		           "device differs from the query");
		FUZZ_CHECK(id.device[0] == '\0' || vt_user_id_valid(id.device, strlen(id.device)),
		           "invalid device picked");
	} else {
		FUZZ_CHECK(rc == -1 && dev != NULL, "unexpected pick_device result");
		FUZZ_CHECK(!vt_user_id_valid(dev, strlen(dev)), "valid device refused");
		FUZZ_CHECK(id.device[0] == '\0', "device changed on refusal");
	}

	/* A device bound into the token wins over the query. */
	strcpy(id.device, "token-device");
	FUZZ_CHECK(vt_fe_pick_device(&id, &query) == 0 && strcmp(id.device, "token-device") == 0,
	           "query overrode the token's device");

	evhttp_clear_headers(&query);
}

static void check_authorization(const char *value)
{
	struct vt_fe_config cfg;
	struct vt_identity id;
	size_t len = 0;
	const char *t = vt_fe_bearer(value, &len);
	int rc;

	if (t == NULL) {
		return;
	}
	FUZZ_CHECK(t > value && t + len <= value + strlen(value), "token outside the header");
	FUZZ_CHECK(len > 0, "empty token");
	FUZZ_CHECK(t[0] != ' ' && t[0] != '\t' && t[len - 1] != ' ' && t[len - 1] != '\t',
	           "token keeps white space");

	vt_fe_config_init(&cfg);
	cfg.key = key;
	cfg.key_len = sizeof(key) - 1;
	rc = vt_fe_authenticate(&cfg, t, len, &id);
	FUZZ_CHECK(rc == 0 || rc == VT_EAUTH || rc == VT_EEXPIRED, "unexpected auth result");
	if (rc == 0) {
		FUZZ_CHECK(vt_user_id_valid(id.user, strlen(id.user)), "accepted an invalid sub");
		FUZZ_CHECK(id.exp > FUZZ_NOW, "accepted an expired token");
	}
}

static void check_body(const uint8_t *body, size_t len)
{
	static uint64_t ids[VT_ACK_MAX];
	const char *reason = NULL;
	int n = vt_env_decode_ids((const char *)body, len, ids, &reason);

	if (n < 0) {
		FUZZ_CHECK(reason != NULL, "refusal without a reason");
		FUZZ_CHECK(vt_error_http_status(n) == 400, "an ids refusal is not a 400");
		return;
	}
	FUZZ_CHECK(n >= 1 && n <= VT_ACK_MAX, "id count out of range");
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(ids[i] >= 1 && ids[i] <= VT_ID_LIMIT, "server id out of range");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl1 = memchr(data, '\n', size);
	const uint8_t *rest = nl1 != NULL ? nl1 + 1 : data + size;
	size_t rest_len = (size_t)(data + size - rest);
	const uint8_t *nl2 = memchr(rest, '\n', rest_len);
	const uint8_t *body = nl2 != NULL ? nl2 + 1 : data + size;
	char *query = cstr(data, nl1 != NULL ? (size_t)(nl1 - data) : size);
	char *authz = cstr(rest, nl2 != NULL ? (size_t)(nl2 - rest) : rest_len);

	check_query(query);
	check_authorization(authz);
	check_body(body, (size_t)(data + size - body));

	free(query);
	free(authz);
	return 0;
}
