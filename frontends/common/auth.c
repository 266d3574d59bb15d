/*
 * frontends/common/auth.c - bearer token extraction and verification.
 */
#include "auth.h"

#include <strings.h>
#include <string.h>

#include <vartalap/error.h>

#include "host.h"

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

int vt_fe_authenticate(const struct vt_fe_config *cfg, const char *token, size_t len,
                       struct vt_identity *id)
{
	int64_t now_s = vt_evhost_wall_ms() / 1000;

	if (token == NULL || len == 0 || len > VT_TOKEN_MAX) {
		return VT_EAUTH;
	}
	return vt_token_verify(cfg->key, cfg->key_len, token, len, now_s, id);
}
