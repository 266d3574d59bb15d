/*
 * frontends/redis/cluster_logout.c - logouts across the nodes.
 *
 * A logout committed here is published on the logouts channel, which every
 * node subscribes; each node applies it (vt_engine_remote_logout): it closes
 * the connections the revoked tokens opened there and refuses the tokens
 * from then on, which on the node that committed it changes nothing. What
 * the channel carries (cluster_int.h):
 *   NODE ":" TS ":" LEN ":" USER DEVICE   a logout: TS in decimal seconds,
 *                                         DEVICE "*" for every device
 *   NODE ":*"                             reload every revocation
 *
 * A lost notice would leave a revoked token accepted on a node until it
 * restarts, so gaps close as they do for groups: a node that could not
 * publish a logout asks the others, once Redis answers again, to reload
 * every revocation from the store, and a node whose subscription of the
 * channel is confirmed (at start, after any reconnect) reloads them itself.
 * A reload is harmless: a revocation the engine knows changes nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "cluster_int.h"
#include "encode.h"

/* Room for NODE ":" TS ":" LEN ":" USER DEVICE. */
#define NOTICE_MAX (16 + 1 + 20 + 1 + 4 + 2 * VT_ID_MAX)

/* ---- telling ---- */

struct logout_call {
	struct vt_redis_cluster *c;
	size_t len;
	char msg[NOTICE_MAX + 1];
};

static void on_logout_told(void *arg, int status, const redisReply *r)
{
	struct logout_call *k = arg;

	if (status != 0) {
		/* the others reload every revocation once this node is back */
		k->c->logouts_dirty = 1;
		vt__cl_outage(k->c, "a logout could not be published");
	}
	free(k);
}

void vt__cl_logged_out(void *self, const struct vt_inbox *scope, int64_t ts)
{
	struct vt_redis_cluster *c = self;
	size_t ulen = strlen(scope->user), dlen = strlen(scope->device);
	struct logout_call *k = NULL;
	int n = -1;

	if (ts > 0 && ulen > 0 && ulen <= VT_ID_MAX && dlen <= VT_ID_MAX) {
		k = malloc(sizeof(*k));
	}
	if (k) {
		n = snprintf(k->msg, sizeof(k->msg), "%s:%" PRId64 ":%zu:%s%s", c->node_hex, ts,
		             ulen, scope->user, scope->device);
	}
	if (n < 0 || (size_t)n >= sizeof(k->msg)) {
		/* not a scope the engine makes, or out of memory: the others
		 * reload what the store holds */
		vt_log(VT_LOG_ERROR, "cluster: logout of user=%.*s not told directly",
		       VT_ID_MAX, scope->user);
		c->logouts_dirty = 1;
		free(k);
		return;
	}
	k->c = c;
	k->len = (size_t)n;
	vt__cl_publish_raw(c, c->logouts_chan, strlen(c->logouts_chan), k->msg, k->len,
	                   on_logout_told, k);
}

static void on_reload_asked(void *arg, int status, const redisReply *r)
{
	struct vt_redis_cluster *c = arg;

	if (status == 0) {
		c->logouts_dirty = 0;
	}
}

void vt__cl_logouts_tick(struct vt_redis_cluster *c)
{
	if (c->probe_ok && c->logouts_dirty) {
		snprintf(c->logouts_msg, sizeof(c->logouts_msg), "%s:*", c->node_hex);
		vt__cl_publish_raw(c, c->logouts_chan, strlen(c->logouts_chan), c->logouts_msg,
		                   strlen(c->logouts_msg), on_reload_asked, c);
	}
	vt__cl_revoked_step(c);
}

/* ---- hearing ---- */

/*
 * A decimal number of at most @max_digits digits without a leading zero,
 * up to the next ':' of @msg (@len bytes) from *@at, which moves past the
 * ':'. 0 when it is one and at most @limit.
 */
static int number(const char *msg, size_t len, size_t *at, size_t max_digits, uint64_t limit,
                  uint64_t *out)
{
	size_t i = *at;
	uint64_t v = 0;

	if (i >= len || msg[i] == '0') {
		return -1;
	}
	for (; i < len && msg[i] >= '0' && msg[i] <= '9' && i - *at < max_digits; i++) {
		v = v * 10 + (uint64_t)(msg[i] - '0');
	}
	if (i == *at || i >= len || msg[i] != ':' || v > limit) {
		return -1;
	}
	*at = i + 1;
	*out = v;
	return 0;
}

/*
 * TS ":" LEN ":" USER DEVICE from @at on into @user, @device (VT_ID_MAX + 1
 * bytes each) and *@ts; 0 when it reads as a logout the engine can make.
 */
static int parse_logout(const char *msg, size_t len, size_t at, char *user, char *device,
                        int64_t *ts)
{
	uint64_t t, ulen;
	size_t dlen;

	/* 19 digits hold every time up to INT64_MAX and no overflow */
	if (number(msg, len, &at, 19, INT64_MAX, &t) ||
	    number(msg, len, &at, 2, VT_ID_MAX, &ulen) || len - at < ulen) {
		return -1;
	}
	dlen = len - at - (size_t)ulen;
	if (dlen > VT_ID_MAX || memchr(msg + at, 0, len - at)) {
		return -1;
	}
	memcpy(user, msg + at, (size_t)ulen);
	user[ulen] = '\0';
	memcpy(device, msg + at + ulen, dlen);
	device[dlen] = '\0';
	*ts = (int64_t)t;
	return 0;
}

/*
 * A notice in this node's own name is applied too, though the echo of its
 * own changes nothing: one from a second node started with the same id, or
 * from anyone who can publish, must not leave a token working here alone
 * that the other nodes refuse.
 */
void vt__cl_on_logout_msg(struct vt_redis_cluster *c, const char *msg, size_t len)
{
	char user[VT_ID_MAX + 1], device[VT_ID_MAX + 1];
	struct vt_inbox scope = {user, device};
	uint64_t node;
	int64_t ts;

	if (len < 18 || msg[16] != ':' || !vt__cl_hex16(msg, &node)) {
		vt_log(VT_LOG_WARN, "cluster: malformed logout notice ignored (%zu bytes)", len);
		return;
	}
	if (len == 18 && msg[17] == '*') {
		c->revoked_wanted = 1;
		vt__cl_revoked_step(c);
		return;
	}
	if (parse_logout(msg, len, 17, user, device, &ts) != 0) {
		vt_log(VT_LOG_WARN, "cluster: malformed logout notice ignored (%zu bytes)", len);
		return;
	}
	vt_engine_remote_logout(c->engine, &scope, ts);
}

/* ---- reloading every revocation ---- */

struct reload_call {
	struct vt_redis_cluster *c;
	char cursor[32];
};

static void reload_send(struct reload_call *k);

static void apply_revoked(void *arg, const struct vt_inbox *scope, int64_t ts)
{
	struct vt_redis_cluster *c = arg;

	vt_engine_remote_logout(c->engine, scope, ts);
}

/* A page of the index of revocations; the next one, until the cursor ends. */
static void on_reload_page(void *arg, int status, const redisReply *r)
{
	struct reload_call *k = arg;
	struct vt_redis_cluster *c = k->c;

	if (c->closing) {
		free(k);
		return;
	}
	if (status == 0 && vt__decode_revoked(r, k->cursor, sizeof(k->cursor), apply_revoked,
	                                      c) != 0) {
		vt_log(VT_LOG_ERROR, "cluster: revocations: reply of an unexpected shape");
		status = VT_ESTORAGE;
	}
	if (status == 0 && strcmp(k->cursor, "0") != 0) {
		reload_send(k);
		return;
	}
	if (status != 0) {
		c->revoked_wanted = 1; /* the next tick starts again */
		vt__cl_outage(c, "the revocations could not be reloaded");
	}
	c->revoked_running = 0;
	free(k);
}

static void reload_send(struct reload_call *k)
{
	struct vt_redis_cluster *c = k->c;
	struct vt__rargs *a = vt__rargs_new(3, 0);

	if (!a) {
		on_reload_page(k, VT_ENOMEM, NULL);
		return;
	}
	vt__rargs_add(a, c->prefix, c->plen); /* the store's prefix: the channels' */
	vt__rargs_str(a, "0");
	vt__rargs_str(a, k->cursor);
	vt__rconn_eval(c->cmd, &vt__rscript_revoked, a, on_reload_page, k);
}

void vt__cl_revoked_step(struct vt_redis_cluster *c)
{
	struct reload_call *k;

	if (!c->revoked_wanted || c->revoked_running || !vt__rconn_up(c->cmd)) {
		return;
	}
	k = malloc(sizeof(*k));
	if (!k) {
		return; /* still wanted: the next tick tries again */
	}
	k->c = c;
	strcpy(k->cursor, "0");
	c->revoked_wanted = 0;
	c->revoked_running = 1;
	reload_send(k);
}
