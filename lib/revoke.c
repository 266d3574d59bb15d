/*
 * revoke.c - logouts: tokens refused before they expire.
 *
 * A logout revokes the tokens of one device, or of all of a user's devices,
 * issued up to the second it was taken (their "iat"), and every token of
 * that scope without an "iat", which cannot tell when it was issued. The
 * engine keeps each revoked scope in memory (e->revoked), so a frontend
 * checks a token with two lookups and no storage call; storage keeps them
 * across restarts (VT_OP_REVOKE, load_revoked) and forgets them with
 * unused devices, and a cluster tells the other nodes.
 *
 * A client picks its device id when its token names none, so one user
 * could fill memory with logouts of made-up devices. Each user keeps at
 * most VT_REVOKED_DEVICES_MAX single-device scopes: past that a logout
 * revokes every device of the user, which replaces them all.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/log.h>

#include "engine_internal.h"
#include "json.h"

/* One revoked scope, the value of its key in e->revoked. */
struct vt_revoked {
	int64_t ts; /* seconds: tokens issued up to this one are refused */
	struct vt_revoked *prev, *next; /* single device: the user's others */
	char user[VT_ID_MAX + 1];
	char device[VT_ID_MAX + 1]; /* VT_ALL_DEVICES: every device */
};

/*
 * A user's single-device scopes, the value of its id in e->revoked_devices:
 * a logout of every device forgets those it covers without looking at
 * other users' scopes, of which there may be millions.
 */
struct vt_revoked_devices {
	size_t n;
	struct vt_revoked *first;
};

/* Room for a scope's key: two ids with their length prefixes. */
#define SCOPE_KEY_MAX (2 * (VT_ID_MAX + 24))

static const char *scope_key(char *key, const char *user, const char *device)
{
	size_t len = vt_key_str(key, SCOPE_KEY_MAX, 0, user);

	vt_key_str(key, SCOPE_KEY_MAX, len, device);
	return key;
}

static int is_all(const char *device)
{
	return strcmp(device, VT_ALL_DEVICES) == 0;
}

/* Up to when (@user, @device) is revoked; 0 when it is not. */
static int64_t scope_ts(const struct vt_engine *e, const char *user, const char *device)
{
	char key[SCOPE_KEY_MAX];
	const struct vt_revoked *r = vt_map_get(&e->revoked, scope_key(key, user, device));

	return r != NULL ? r->ts : 0;
}

int vt_engine_revoked(const struct vt_engine *e, const struct vt_identity *id)
{
	int64_t all, one;

	if (e->revoked.len == 0) {
		return 0;
	}
	all = scope_ts(e, id->user, VT_ALL_DEVICES);
	one = scope_ts(e, id->user, id->device);
	if (one > all) {
		all = one;
	}
	return all > 0 && id->iat <= all ? VT_EREVOKED : 0;
}

/* Add single-device scope @r to its user's list; 0 or VT_ENOMEM. */
static int devices_add(struct vt_engine *e, struct vt_revoked *r)
{
	struct vt_revoked_devices *d = vt_map_get(&e->revoked_devices, r->user);

	if (d == NULL) {
		d = calloc(1, sizeof(*d));
		if (d == NULL || vt_map_put(&e->revoked_devices, r->user, d) != 0) {
			free(d);
			return VT_ENOMEM;
		}
	}
	r->prev = NULL;
	r->next = d->first;
	if (d->first != NULL) {
		d->first->prev = r;
	}
	d->first = r;
	d->n++;
	return 0;
}

static void devices_remove(struct vt_engine *e, struct vt_revoked *r)
{
	struct vt_revoked_devices *d = vt_map_get(&e->revoked_devices, r->user);

	if (r->prev != NULL) {
		r->prev->next = r->next;
	} else {
		d->first = r->next;
	}
	if (r->next != NULL) {
		r->next->prev = r->prev;
	}
	if (--d->n == 0) {
		free(vt_map_del(&e->revoked_devices, r->user));
	}
}

/* Forget the single-device scopes of @user that a logout of all up to @ts covers. */
static void forget_covered(struct vt_engine *e, const char *user, int64_t ts)
{
	struct vt_revoked_devices *d = vt_map_get(&e->revoked_devices, user);
	char key[SCOPE_KEY_MAX];

	for (struct vt_revoked *r = d != NULL ? d->first : NULL, *next; r != NULL; r = next) {
		next = r->next;
		if (r->ts <= ts) {
			devices_remove(e, r);
			vt_map_del(&e->revoked, scope_key(key, r->user, r->device));
			free(r);
		}
	}
}

/*
 * Remember that (@user, @device) is revoked up to @ts: 1 when that is news,
 * 0 when it was known, or VT_ENOMEM when it cannot be kept, and this node
 * goes on taking the tokens until it reads the stored logout again at its
 * next start.
 */
static int scope_note(struct vt_engine *e, const char *user, const char *device, int64_t ts)
{
	char key[SCOPE_KEY_MAX];
	struct vt_revoked *r = vt_map_get(&e->revoked, scope_key(key, user, device));

	if (is_all(device)) {
		forget_covered(e, user, ts);
	}
	if (r != NULL) {
		if (r->ts >= ts) {
			return 0;
		}
		r->ts = ts;
		return 1;
	}
	r = calloc(1, sizeof(*r));
	if (r != NULL) {
		r->ts = ts;
		vt__copy(r->user, sizeof(r->user), user);
		vt__copy(r->device, sizeof(r->device), device);
	}
	if (r == NULL || vt_map_put(&e->revoked, key, r) != 0 ||
	    (!is_all(device) && devices_add(e, r) != 0)) {
		if (r != NULL && vt_map_get(&e->revoked, key) == r) {
			vt_map_del(&e->revoked, key);
		}
		free(r);
		vt_log(VT_LOG_ERROR,
		       "logout of user=%s device=%s not kept in memory: out of memory", user,
		       device);
		return VT_ENOMEM;
	}
	return 1;
}

/* Close the connections here whose tokens (@user, @device) up to @ts revoked. */
static void close_revoked(struct vt_engine *e, const char *user, const char *device, int64_t ts)
{
	struct vt_user *u = vt__user(e, user);

	for (struct vt_conn *c = u != NULL ? u->conns : NULL, *next; c != NULL; c = next) {
		next = c->sib;
		if (!c->closing && c->id.iat <= ts &&
		    (is_all(device) || strcmp(c->id.device, device) == 0)) {
			vt_log(VT_LOG_INFO, "logged out conn=%llu user=%s device=%s",
			       (unsigned long long)c->serial, user, c->id.device);
			vt__conn_kill(c, VT_CLOSE_LOGGED_OUT, "logged out");
		}
	}
}

/* Close what the logout revoked in any case: those sockets must not stay. */
static int apply_logout(struct vt_engine *e, const char *user, const char *device, int64_t ts)
{
	int rc = scope_note(e, user, device, ts);

	close_revoked(e, user, device, ts);
	return rc;
}

/*
 * A scope a logout here could have made. What storage or another node hands
 * over is checked as a client's ids are: other bytes (a newline) would reach
 * the log, and scopes that no token can name would only take up memory.
 */
static int scope_valid(const struct vt_inbox *scope, int64_t ts)
{
	return scope->user != NULL && scope->device != NULL && ts > 0 &&
	       vt_user_id_valid(scope->user, strlen(scope->user)) &&
	       (is_all(scope->device) || scope->device[0] == '\0' ||
		vt_user_id_valid(scope->device, strlen(scope->device)));
}

static void on_loaded(void *arg, const struct vt_inbox *scope, int64_t ts)
{
	struct vt_engine *e = arg;

	if (scope_valid(scope, ts)) {
		(void)scope_note(e, scope->user, scope->device, ts); /* logged */
	} else {
		vt_log(VT_LOG_WARN, "stored logout ignored: not a valid scope");
	}
}

int vt__revoked_load(struct vt_engine *e)
{
	int rc;

	if (e->st.ops->load_revoked == NULL) {
		return 0;
	}
	rc = e->st.ops->load_revoked(e->st.self, on_loaded, e);
	if (rc == 0 && e->revoked.len > 0) {
		vt_log(VT_LOG_INFO, "logouts loaded count=%zu", e->revoked.len);
	}
	return rc;
}

struct aging {
	struct vt_engine *e;
	int64_t keep; /* the first second whose scopes stay */
};

static int keep_recent(void *value, void *arg)
{
	struct vt_revoked *r = value;
	const struct aging *a = arg;

	if (r->ts >= a->keep) {
		return 1;
	}
	if (!is_all(r->device)) {
		devices_remove(a->e, r);
	}
	free(r);
	return 0;
}

void vt__revoked_expire(struct vt_engine *e, int64_t device_before_ms)
{
	/* In seconds, as the stores compare: a scope's time in ms could overflow
	 * (another node or a store may name any time up to INT64_MAX). */
	struct aging a = {e, device_before_ms / 1000 + (device_before_ms % 1000 > 0)};

	if (e->revoked.len > 0) {
		vt_map_filter(&e->revoked, keep_recent, &a);
	}
}

void vt__revoked_free(struct vt_engine *e)
{
	vt_map_free_all(&e->revoked);
	vt_map_free_all(&e->revoked_devices);
	vt_map_free(&e->revoking);
}

/* ---- the logout request ------------------------------------------------ */

/*
 * The scope a logout of @id's device takes: that device, or every device
 * once the user has as many single ones as it may keep. Those still being
 * written count too, or many requests at once would all pass the bound.
 */
static const char *logout_scope(const struct vt_engine *e, const struct vt_identity *id, int all)
{
	const struct vt_revoked_devices *d = vt_map_get(&e->revoked_devices, id->user);
	size_t ndev = (d != NULL ? d->n : 0) + (uintptr_t)vt_map_get(&e->revoking, id->user);

	if (all || (ndev >= VT_REVOKED_DEVICES_MAX && scope_ts(e, id->user, id->device) == 0)) {
		return VT_ALL_DEVICES;
	}
	return id->device;
}

/*
 * Read a logout's body into *@all: empty, or an object whose one member
 * may be "all", a boolean. 0, or an error with *@reason set. "all" twice
 * is refused, as in an envelope: readers that take the first and the last
 * would disagree on what was revoked.
 */
static int logout_body(const char *json, size_t len, int *all, const char **reason)
{
	struct vt_json_val obj, key, v;
	size_t pos = 0;
	int rc, seen = 0;

	*all = 0;
	while (len > 0 && (*json == ' ' || *json == '\t' || *json == '\r' || *json == '\n')) {
		json++;
		len--;
	}
	if (len == 0) {
		return 0;
	}
	rc = vt_json_validate_value(json, len, 2, &obj);
	if (rc != 0 || obj.type != VT_JSON_OBJECT) {
		*reason = "the body must be empty or a JSON object";
		return rc != 0 ? rc : VT_EBADENV;
	}
	while (vt_json_next_member(&obj, &pos, &key, &v)) {
		if (!vt_json_key_is(&key, "all") ||
		    (v.type != VT_JSON_TRUE && v.type != VT_JSON_FALSE)) {
			*reason = "the one member a logout takes is \"all\", true or false";
			return VT_EBADENV;
		}
		if (seen++) {
			*reason = "duplicate key";
			return VT_EBADENV;
		}
		*all = v.type == VT_JSON_TRUE;
	}
	return 0;
}

void vt_engine_logout(struct vt_engine *e, const struct vt_identity *id, const char *json,
		      size_t len, vt_reply_fn reply, void *arg)
{
	struct vt_origin o = {.reply = reply, .arg = arg};
	const char *reason = NULL, *scope;
	struct vt_pend *p;
	int all, rc;

	if (vt__request_refused(e, id, reply, arg)) {
		return;
	}
	rc = logout_body(json, len, &all, &reason);
	if (rc != 0) {
		vt__reply_error(e, &o, rc, reason, NULL);
		return;
	}
	/* Each logout is a write: it draws on its user's rate, as a REST send. */
	rc = vt__sender_take(e, id->user);
	if (rc != 1) {
		vt__reply_error(e, &o, rc == 0 ? VT_ERATE : rc,
				rc == 0 ? "too many requests; slow down" : "busy; try again later",
				NULL);
		return;
	}
	if (e->st.ops->load_revoked == NULL) {
		vt__reply_error(e, &o, VT_EINVAL, "this storage cannot keep logouts", NULL);
		return;
	}
	scope = logout_scope(e, id, all);
	rc = is_all(scope) ? 0 : vt_map_incr(&e->revoking, id->user);
	p = rc == 0 ? vt__batch_add(e, VT_PEND_REVOKE) : NULL;
	if (p == NULL) {
		if (rc == 0 && !is_all(scope)) {
			vt_map_decr(&e->revoking, id->user);
		}
		vt__reply_error(e, &o, VT_ENOMEM, "out of memory", NULL);
		return;
	}
	vt__copy(p->user, sizeof(p->user), id->user);
	vt__copy(p->device, sizeof(p->device), scope);
	/* A token dated ahead of this clock (a login service whose clock runs
	 * ahead) must still be ended by the logout it asks for. */
	p->ts = vt__wall(e) / 1000;
	if (id->iat > p->ts) {
		p->ts = id->iat;
	}
	p->origin = o;
}

void vt__revoke_done(struct vt_engine *e, struct vt_pend *p, int status, const struct vt_op *op)
{
	char json[96];
	int n, rc;

	if (!is_all(p->device)) {
		vt_map_decr(&e->revoking, p->user);
	}
	if (status == 0) {
		status = op->status;
	}
	if (status < 0) {
		vt__log_limited(&e->revoke_log, VT_LOG_WARN,
				"logout of user=%s device=%s not written: %s", p->user, p->device,
				vt_strerror(status));
		/* A full store still takes a logout of every device (storage.h). */
		vt__reply_error(e, &p->origin, status,
				status == VT_ENOSPC && !is_all(p->device)
					? "storage full: log out every device ({\"all\":true})"
					: "logout not written",
				NULL);
		return;
	}
	vt_log(VT_LOG_INFO, "logout user=%s device=%s before=%" PRId64, p->user, p->device,
	       p->ts);
	e->stats.logouts++;
	rc = apply_logout(e, p->user, p->device, p->ts);
	if (e->cluster.ops != NULL && e->cluster.ops->logged_out != NULL) {
		struct vt_inbox scope = {p->user, p->device};

		e->cluster.ops->logged_out(e->cluster.self, &scope, p->ts);
	}
	if (rc < 0) {
		/* Written, and so applied at the next start and by the other
		 * nodes now, but not here yet: the client must not rely on it. */
		vt__reply_error(e, &p->origin, rc, "logout written, not applied here", NULL);
		return;
	}
	n = snprintf(json, sizeof(json), "{\"revoked\":\"%s\",\"before\":%" PRId64 "}",
		     is_all(p->device) ? "user" : "device", p->ts);
	vt__reply(e, &p->origin, 0, json, (size_t)n);
}

void vt_engine_remote_logout(struct vt_engine *e, const struct vt_inbox *scope, int64_t ts)
{
	if (scope == NULL || !scope_valid(scope, ts)) {
		vt_log(VT_LOG_WARN, "logout on another node ignored: not a valid scope");
		return;
	}
	vt__clock_hold(e);
	if (apply_logout(e, scope->user, scope->device, ts) > 0) {
		vt_log(VT_LOG_INFO, "logout on another node user=%s device=%s before=%" PRId64,
		       scope->user, scope->device, ts);
	}
	vt__clock_release(e);
}
