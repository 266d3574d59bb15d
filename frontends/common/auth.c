/*
 * frontends/common/auth.c - bearer token extraction and verification.
 */
#include "auth.h"

#include <strings.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "host.h"
#include "http_reply.h"

/* Characters of a refused token a debug line shows: enough to tell two apart. */
#define TOKEN_SHOWN 8

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

const char *vt_fe_bearer(const char *value, size_t *len)
{
	const char *end;

	if (value == NULL || strncasecmp(value, "Bearer", 6) != 0 || !is_space(value[6])) {
		return NULL;
	}

	value += 7;
	while (is_space(*value)) {
		value++;
	}
	end = value + strlen(value);
	while (end > value && is_space(end[-1])) {
		end--;
	}
	if (end == value) {
		return NULL;
	}

	*len = (size_t)(end - value);
	return value;
}

/* One debug line per refusal, with at most the token's first characters. */
static void log_refusal(const char *token, size_t len, const char *why)
{
	char head[TOKEN_SHOWN + 1] = "-";

	if (vt_log_level() < VT_LOG_DEBUG) {
		return;
	}
	if (token != NULL && len > 0) {
		size_t n = len < TOKEN_SHOWN ? len : TOKEN_SHOWN;
		char copy[TOKEN_SHOWN + 1];

		memcpy(copy, token, n);
		copy[n] = '\0';
		vt_fe_log_text(head, TOKEN_SHOWN, copy);
	}
	vt_log(VT_LOG_DEBUG, "http: auth failed req=%llu reason=\"%s\" token=%s len=%zu",
	       vt_fe_req_id(), why, head, token != NULL ? len : 0);
}

int vt_fe_authenticate(const struct vt_fe_config *cfg, const char *token, size_t len,
                       struct vt_identity *id)
{
	int64_t now_s = vt_evhost_wall_ms() / 1000;
	int rc;

	if (token == NULL || len == 0) {
		log_refusal(token, len, "no token");
		return VT_EAUTH;
	}
	if (len > VT_TOKEN_MAX) {
		log_refusal(token, len, "token too long");
		return VT_EAUTH;
	}
	rc = vt_token_verify(cfg->key, cfg->key_len, token, len, now_s, id);
	if (rc != 0) {
		log_refusal(token, len, vt_strerror(rc));
	}
	return rc;
}
