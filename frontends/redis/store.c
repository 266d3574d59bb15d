/*
 * frontends/redis/store.c - the Redis storage backend: the vtable.
 *
 * commit, list and expire each send one script on the asynchronous
 * connection and finish in its reply callback (a listing that passed over
 * records it cannot read may send more, see struct list_call). max_id,
 * load_groups and load_revoked run once, before the loop, on a synchronous
 * connection that open() made for loading the scripts and keeps for them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "conn.h"
#include "encode.h"
#include "scripts.h"
#include "startup.h"
#include "store.h"
#include "store_key.h"

static struct vt__rscript *const scripts[] = {
        &vt__rscript_commit,
        &vt__rscript_commit_full,
        &vt__rscript_list,
        &vt__rscript_expire,
};

#define DEFAULT_WINDOW_MS ((int64_t)7 * 24 * 3600 * 1000)

/* Unreadable records logged lately: each is logged once, not per listing. */
#define BAD_SEEN 32

struct rstore {
	struct vt__rconn *conn;
	struct vt__rsync sync;
	char *prefix;
	char window[24]; /* the dedup window, in decimal for the scripts */
	uint64_t id_base; /* shared_ids: the block taken at open; else 0 */
	uint64_t bad_seen[BAD_SEEN]; /* hashes of their inbox entries */
	unsigned bad_next;
};

/* ---- commit ---- */

struct commit_call {
	struct vt_op *ops;
	size_t n;
	vt_commit_cb done;
	void *arg;
};

/*
 * How many ops Redis refused for being over maxmemory. When it was all of
 * them, nothing was written, and the batch fails as a whole.
 */
static size_t count_refused(const struct vt_op *ops, size_t n)
{
	size_t refused = 0;

	for (size_t i = 0; i < n; i++) {
		refused += ops[i].status == VT_ENOSPC;
	}
	return refused;
}

static void on_commit(void *arg, int status, const redisReply *r)
{
	struct commit_call *k = arg;
	struct vt__rout out = {NULL, NULL};
	size_t refused;

	if (status == 0) {
		status = vt__decode_batch(k->ops, k->n, r, &out);
		if (status != 0) {
			vt_log(VT_LOG_ERROR, "redis: commit: reply of an unexpected shape");
		}
	}
	if (status == 0 && (refused = count_refused(k->ops, k->n)) > 0) {
		if (refused == k->n) {
			status = VT_ENOSPC;
		} else {
			vt_log(VT_LOG_WARN, "redis: commit: over maxmemory; what would grow the "
			       "store was refused, the rest committed, and the oldest (sender, "
			       "client id) pairs forgotten if they held over 1/64 of it");
		}
	}
	if (status != 0) {
		for (size_t i = 0; i < k->n; i++) {
			k->ops[i].out_to = NULL;
			k->ops[i].out_nto = 0;
			k->ops[i].out_receipt = NULL;
			k->ops[i].out_receipt_id = 0;
		}
	}
	k->done(k->arg, status);
	vt__rout_free(&out);
	free(k);
}

static void rs_commit(void *self, struct vt_op *ops, size_t n, vt_commit_cb done, void *arg)
{
	struct rstore *s = self;
	struct commit_call *k;
	struct vt__rargs *a;
	size_t nsent;

	a = vt__encode_batch(ops, n, s->prefix, s->window, &nsent);
	if (a && nsent == 0) {
		vt__rargs_free(a);
		done(arg, 0); /* nothing storable: answered without Redis */
		return;
	}
	k = a ? calloc(1, sizeof(*k)) : NULL;
	if (!k) {
		vt__rargs_free(a);
		done(arg, VT_ENOMEM);
		return;
	}
	*k = (struct commit_call){ops, n, done, arg};
	vt__rconn_eval(s->conn, &vt__rscript_commit, a, on_commit, k);
}

/* ---- list ---- */

/*
 * A listing. A record that cannot be read is passed over; when one was, the
 * listing goes on after the last entry Redis returned, until it has @limit
 * records or the inbox has no more, so that a short answer still means "no
 * more" to the engine. What earlier pages kept is copied then.
 */
struct list_call {
	struct rstore *s;
	vt_list_cb done;
	void *arg;
	uint32_t limit;         /* asked in all */
	uint32_t want;          /* asked of the page on its way */
	struct vt_record *kept; /* copies from earlier pages; each from holds
	                           the record's strings and body in one block */
	size_t nkept;
	char *after;            /* the entry the page on its way starts after */
	const char *device;     /* points into user */
	char user[];
};

static void list_free(struct list_call *k)
{
	for (size_t i = 0; i < k->nkept; i++) {
		free((char *)k->kept[i].from);
	}
	free(k->kept);
	free(k->after);
	free(k);
}

static void on_list(void *arg, int status, const redisReply *r);

/* Ask for a page after id @after, or after the entry k->after when set. */
static void list_send(struct list_call *k, uint64_t after, size_t after_len)
{
	struct rstore *s = k->s;
	struct vt__rargs *a = vt__rargs_new(6, 2);

	if (!a) {
		on_list(k, VT_ENOMEM, NULL);
		return;
	}
	vt__rargs_str(a, s->prefix);
	vt__rargs_str(a, s->window);
	vt__rargs_str(a, k->user);
	vt__rargs_str(a, k->device);
	if (k->after) {
		vt__rargs_add(a, k->after, after_len);
	} else {
		vt__rargs_id(a, after);
	}
	vt__rargs_u64(a, k->want);
	vt__rconn_eval(s->conn, &vt__rscript_list, a, on_list, k);
}

/* 64-bit FNV-1a, to remember entries without keeping them. */
static uint64_t hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;

	for (size_t i = 0; i < n; i++) {
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3u;
	}
	return h;
}

/* A record that cannot be read: logged once while it stays among the last few. */
static void on_bad(void *arg, const redisReply *entry, const char *why)
{
	struct list_call *k = arg;
	struct rstore *s = k->s;
	uint64_t h = entry ? hash(entry->str, entry->len) : 0;

	for (unsigned i = 0; i < BAD_SEEN; i++) {
		if (s->bad_seen[i] == h) {
			return;
		}
	}
	s->bad_seen[s->bad_next++ % BAD_SEEN] = h;
	if (entry && vt__decode_id(entry->str, entry->len)) {
		vt_log(VT_LOG_ERROR, "redis: record %.16s in an inbox of user=%s: %s; skipped",
		       entry->str, k->user, why);
	} else {
		vt_log(VT_LOG_ERROR, "redis: an entry of %zu bytes in an inbox of user=%s: %s; "
		       "skipped", entry ? entry->len : 0, k->user, why);
	}
}

/* Copy @n records after those kept; 0 or VT_ENOMEM. */
static int keep(struct list_call *k, const struct vt_record *recs, size_t n)
{
	struct vt_record *m = n ? realloc(k->kept, (k->nkept + n) * sizeof(*m)) : k->kept;

	if (n && !m) {
		return VT_ENOMEM;
	}
	k->kept = m;
	for (size_t i = 0; i < n; i++) {
		const struct vt_record *r = &recs[i];
		size_t f = strlen(r->from) + 1, t = strlen(r->to) + 1, c = strlen(r->cid) + 1;
		char *p = malloc(f + t + c + r->body_len);

		if (!p) {
			return VT_ENOMEM;
		}
		m[k->nkept] = *r;
		m[k->nkept].from = memcpy(p, r->from, f);
		m[k->nkept].to = memcpy(p + f, r->to, t);
		m[k->nkept].cid = memcpy(p + f + t, r->cid, c);
		m[k->nkept].body = memcpy(p + f + t + c, r->body, r->body_len);
		k->nkept++;
	}
	return 0;
}

/* Ask for the page after the last entry of @r; 0, or an error. */
static int list_next(struct list_call *k, const redisReply *r)
{
	const redisReply *e = r->element[r->elements - 1];
	const redisReply *id = e && e->type == REDIS_REPLY_ARRAY && e->elements > 0 ?
	                               e->element[0] : NULL;

	if (!id || id->type != REDIS_REPLY_STRING) {
		return VT_ESTORAGE;
	}
	free(k->after);
	k->after = malloc(id->len + 1);
	if (!k->after) {
		return VT_ENOMEM;
	}
	memcpy(k->after, id->str, id->len);
	k->want = k->limit - (uint32_t)k->nkept;
	list_send(k, 0, id->len);
	return 0;
}

static void on_list(void *arg, int status, const redisReply *r)
{
	struct list_call *k = arg;
	struct vt_record *recs = NULL;
	long n = status == 0 ? vt__decode_list(r, &recs, on_bad, k) : status;

	if (n == VT_ESTORAGE && status == 0) {
		vt_log(VT_LOG_ERROR, "redis: list: reply of an unexpected shape");
	}
	if (n >= 0 && k->nkept == 0 && (size_t)n == r->elements) {
		k->done(k->arg, 0, recs, (size_t)n); /* all read: as Redis answered */
		free(recs);
		list_free(k);
		return;
	}
	if (n >= 0) {
		n = keep(k, recs, (size_t)n);
	}
	free(recs);
	if (n >= 0 && r->elements == k->want && k->nkept < k->limit) {
		n = list_next(k, r);
		if (n == 0) {
			return;
		}
	}
	if (n < 0) {
		k->done(k->arg, (int)n, NULL, 0);
	} else {
		k->done(k->arg, 0, k->kept, k->nkept);
	}
	list_free(k);
}

static void rs_list(void *self, const struct vt_inbox *inbox, uint64_t after, uint32_t limit,
                    vt_list_cb done, void *arg)
{
	struct rstore *s = self;
	uint8_t key[VT__INBOX_KEY_MAX];
	struct list_call *k;
	size_t ul;

	if (!inbox || vt__inbox_key(inbox, key) == 0 || after == UINT64_MAX ||
	    limit == 0) {
		done(arg, 0, NULL, 0);
		return;
	}
	ul = strlen(inbox->user) + 1;
	k = calloc(1, sizeof(*k) + ul + strlen(vt__inbox_device(inbox)) + 1);
	if (!k) {
		done(arg, VT_ENOMEM, NULL, 0);
		return;
	}
	*k = (struct list_call){s, done, arg, limit, limit, NULL, 0, NULL, NULL};
	memcpy(k->user, inbox->user, ul);
	k->device = strcpy(k->user + ul, vt__inbox_device(inbox));
	list_send(k, after, 0);
}

/* ---- expire ---- */

struct expire_call {
	vt_expire_cb done;
	void *arg;
};

static void on_expire(void *arg, int status, const redisReply *r)
{
	struct expire_call *k = arg;

	if (status == 0 && (r->type != REDIS_REPLY_INTEGER || r->integer < 0)) {
		vt_log(VT_LOG_ERROR, "redis: expire: reply of an unexpected shape");
		status = VT_ESTORAGE;
	}
	k->done(k->arg, status, status == 0 ? (uint64_t)r->integer : 0);
	free(k);
}

/*
 * Revocations are kept in seconds and forgotten when older than @ms: those
 * of a time before the second this returns (ts * 1000 < ms, exactly).
 */
static int64_t revoked_before(int64_t ms)
{
	return ms / 1000 + (ms % 1000 > 0);
}

static void rs_expire(void *self, int64_t now_ts, int64_t before_ts, int64_t device_before_ts,
                      uint64_t max, vt_expire_cb done, void *arg)
{
	struct rstore *s = self;
	struct vt__rargs *a = vt__rargs_new(7, 5);
	struct expire_call *k = a ? calloc(1, sizeof(*k)) : NULL;

	if (!k) {
		vt__rargs_free(a);
		done(arg, VT_ENOMEM, 0);
		return;
	}
	*k = (struct expire_call){done, arg};
	vt__rargs_str(a, s->prefix);
	vt__rargs_str(a, s->window);
	vt__rargs_i64(a, now_ts);
	vt__rargs_i64(a, before_ts);
	vt__rargs_i64(a, device_before_ts);
	vt__rargs_u64(a, max);
	vt__rargs_i64(a, revoked_before(device_before_ts));
	vt__rconn_eval(s->conn, &vt__rscript_expire, a, on_expire, k);
}

/* ---- start and lifetime ---- */

static int rs_load_groups(void *self,
                          void (*each)(void *arg, const char *group, const char *data, size_t len),
                          void *arg)
{
	struct rstore *s = self;

	return vt__rsync_groups(&s->sync, s->prefix, each, arg);
}

static int rs_load_revoked(void *self,
                           void (*each)(void *arg, const struct vt_inbox *scope, int64_t ts),
                           void *arg)
{
	struct rstore *s = self;

	return vt__rsync_revoked(&s->sync, s->prefix, each, arg);
}

static uint64_t rs_max_id(void *self)
{
	struct rstore *s = self;

	/* An engine counts ids up from here on its own: with a shared store,
	 * only a block no other engine took keeps them apart. */
	if (s->id_base != 0) {
		return s->id_base;
	}
	return vt__rsync_max_id(&s->sync, s->prefix);
}

static void rs_destroy(void *self)
{
	struct rstore *s = self;

	if (!s) {
		return;
	}
	vt__rconn_free(s->conn);
	vt__rsync_close(&s->sync);
	free(s->prefix);
	free(s);
}

static const struct vt_storage_ops redis_ops = {
        .commit = rs_commit,
        .list = rs_list,
        .expire = rs_expire,
        .load_groups = rs_load_groups,
        .max_id = rs_max_id,
        .destroy = rs_destroy,
        .load_revoked = rs_load_revoked,
};

static int options_ok(const struct vt_redis_options *o)
{
	if (!o || o->port < 0 || o->port > 65535 || o->dedup_window_ms < 0) {
		return 0;
	}
	return !o->prefix || (!strchr(o->prefix, '{') && !strchr(o->prefix, '}'));
}

int vt_storage_redis_open(struct event_base *base, const struct vt_redis_options *o,
                          struct vt_storage *out)
{
	struct vt__rconn_config cfg;
	struct rstore *s;
	int rc;

	if (!base || !out || !options_ok(o)) {
		return VT_EINVAL;
	}
	cfg = (struct vt__rconn_config){o->host ? o->host : "127.0.0.1", o->port ? o->port : 6379,
	                                o->connect_timeout_ms ? o->connect_timeout_ms : 1000,
	                                o->command_timeout_ms ? o->command_timeout_ms : 2000,
	                                scripts, sizeof(scripts) / sizeof(scripts[0])};
	s = calloc(1, sizeof(*s));
	if (!s || !(s->prefix = strdup(o->prefix ? o->prefix : "vt:"))) {
		free(s);
		return VT_ENOMEM;
	}
	snprintf(s->window, sizeof(s->window), "%" PRId64,
	         o->dedup_window_ms ? o->dedup_window_ms : DEFAULT_WINDOW_MS);
	rc = vt__rsync_open(&s->sync, &cfg);
	if (rc == 0) {
		vt__rsync_check_durability(&s->sync);
	}
	if (rc == 0 && o->shared_ids) {
		rc = vt__rsync_lease_ids(&s->sync, s->prefix, &s->id_base);
	}
	if (rc == 0) {
		s->conn = vt__rconn_new(base, &cfg);
		rc = s->conn ? 0 : VT_ENOMEM;
	}
	if (rc != 0) {
		rs_destroy(s);
		return rc;
	}
	out->ops = &redis_ops;
	out->self = s;
	return 0;
}
