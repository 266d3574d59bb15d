/*
 * frontends/common/auth.h - bearer tokens as the gateways receive them.
 */
#ifndef VARTALAP_FE_AUTH_H
#define VARTALAP_FE_AUTH_H

#include <stddef.h>

#include <vartalap/token.h>

#include "frontend.h"

/*
 * Find the token in an Authorization header value ("Bearer <t>", scheme
 * case-insensitive). Returns a pointer into @value and sets @len, or NULL
 * when @value is NULL or of another scheme.
 */
const char *vt_fe_bearer(const char *value, size_t *len);

/*
 * Verify @token (@len bytes) with the configured key at the current wall
 * time. Fills @id and returns 0, or VT_EAUTH / VT_EEXPIRED.
 */
int vt_fe_authenticate(const struct vt_fe_config *cfg, const char *token, size_t len,
                       struct vt_identity *id);

#endif /* VARTALAP_FE_AUTH_H */
