/*
 * fuzz/fuzz_envelope.c - client envelopes and the REST ack body.
 *
 * Every input goes through vt_env_decode() and vt_env_decode_ids(). What a
 * successful decode returns is checked against the rules of envelope.h, then
 * fed to the encoders the server would answer with (accepted, record, error);
 * their output must always be valid JSON. A refusal must carry a reason and
 * an error code, and the error envelope naming it must be valid JSON too.
 */
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/storage.h>
#include <vartalap/token.h>

#include "buf.h"
#include "envelope.h"
#include "json.h"

#include "fuzz.h"

/* Encoder output must be one valid JSON object, built without a failed grow. */
static void check_output(struct vt_buf *b, const char *what)
{
	struct vt_json_val v;

	FUZZ_CHECK(!vt_buf_failed(b), what);
	FUZZ_CHECK(b->len > 0, what);
	FUZZ_CHECK(vt_json_validate(b->data, b->len, VT_JSON_MAX_DEPTH + 1) == 0, what);
	FUZZ_CHECK(vt_json_parse_value(b->data, b->len, &v) == 0, what);
	FUZZ_CHECK(v.type == VT_JSON_OBJECT, what);
	vt_buf_reset(b);
}

/* A "to" is a user id or "<ns>:<id>" (envelope.h). */
static int to_ok(const char *s)
{
	const char *colon = strchr(s, ':');

	if (colon == NULL) {
		return vt_user_id_valid(s, strlen(s));
	}
	return colon > s && vt_user_id_valid(s, (size_t)(colon - s)) &&
	       vt_user_id_valid(colon + 1, strlen(colon + 1));
}

static void check_ids(const uint64_t *ids, int n)
{
	FUZZ_CHECK(n >= 1 && n <= VT_ACK_MAX, "id count out of range");
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(ids[i] >= 1 && ids[i] <= VT_ID_LIMIT, "server id out of range");
	}
}

/* What a decoded envelope promises, then the replies built from it. */
static void check_decoded(const uint8_t *data, size_t size, const struct vt_env *env,
                          struct vt_buf *b)
{
	struct vt_record rec;

	FUZZ_CHECK(env->type >= VT_ENV_MESSAGE && env->type <= VT_ENV_GROUP_LEAVE,
	           "unknown envelope type");
	FUZZ_CHECK(env->id[0] == '\0' || vt_user_id_valid(env->id, strlen(env->id)),
	           "invalid client id accepted");
	if (env->type != VT_ENV_ACK) {
		FUZZ_CHECK(to_ok(env->to), "invalid to accepted");
	}
	if (env->type == VT_ENV_MESSAGE || env->type == VT_ENV_READ ||
	    env->type >= VT_ENV_GROUP_CREATE) {
		FUZZ_CHECK(env->id[0] != '\0', "required id missing");
	}
	if (env->body != NULL) {
		FUZZ_CHECK(env->body >= (const char *)data &&
		                   env->body + env->body_len <= (const char *)data + size,
		           "body outside the input");
		FUZZ_CHECK(vt_json_validate(env->body, env->body_len, VT_JSON_MAX_DEPTH) == 0,
		           "body is not valid JSON on its own");
	}
	if (env->type == VT_ENV_ACK || env->type == VT_ENV_READ) {
		check_ids(env->ids, (int)env->nids);
	}

	vt_env_encode_accepted(b, env->id, env->nids > 0 ? env->ids[0] : 1, INT64_MIN);
	check_output(b, "accepted envelope is not valid JSON");

	memset(&rec, 0, sizeof(rec));
	rec.id = env->nids > 0 ? env->ids[env->nids - 1] : VT_ID_LIMIT;
	rec.kind = VT_KIND_MESSAGE;
	rec.from = env->id[0] != '\0' ? env->id : "someone";
	rec.to = env->to;
	rec.cid = env->id;
	rec.ts = INT64_MAX;
	rec.body = env->body;
	rec.body_len = env->body_len;
	vt_env_encode_record(b, &rec);
	check_output(b, "record envelope is not valid JSON");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t ids[VT_ACK_MAX];
	static struct vt_env env;
	const char *text = (const char *)data;
	const char *reason = NULL;
	struct vt_buf b;
	int rc;
	int n;

	vt_buf_init(&b);

	rc = vt_env_decode(text, size, &env, &reason);
	if (rc == 0) {
		check_decoded(data, size, &env, &b);
	} else {
		FUZZ_CHECK(rc < 0, "positive error from vt_env_decode");
		FUZZ_CHECK(reason != NULL, "refusal without a reason");
		FUZZ_CHECK(env.id[0] == '\0' || vt_user_id_valid(env.id, strlen(env.id)),
		           "invalid client id left for the error reply");
		vt_env_encode_error(&b, rc, reason, env.id);
		check_output(&b, "error envelope is not valid JSON");
	}

	n = vt_env_decode_ids(text, size, ids, &reason);
	if (n > 0) {
		check_ids(ids, n);
		/* Both decoders read "ids" with the same rules. */
		if (rc == 0 && env.type == VT_ENV_ACK) {
			FUZZ_CHECK((uint32_t)n == env.nids, "ids count differs between decoders");
			FUZZ_CHECK(memcmp(ids, env.ids, (size_t)n * sizeof(ids[0])) == 0,
			           "ids differ between decoders");
		}
		vt_env_encode_accepted(&b, "", ids[n - 1], 0);
		check_output(&b, "accepted envelope is not valid JSON");
	} else {
		FUZZ_CHECK(n < 0, "vt_env_decode_ids returned 0");
		FUZZ_CHECK(reason != NULL, "ids refusal without a reason");
		if (rc == 0 && env.type == VT_ENV_ACK) {
			FUZZ_CHECK(0, "ack accepted by vt_env_decode, "
				      "refused by vt_env_decode_ids");
		}
		vt_env_encode_error(&b, n, reason, NULL);
		check_output(&b, "error envelope is not valid JSON");
	}

	vt_buf_free(&b);
	return 0;
}
