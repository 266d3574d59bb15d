/*
 * frontends/redis/store.c - the Redis storage backend: the vtable.
 *
 * commit, list and expire each send one script on the asynchronous
 * connection and finish in its reply callback. max_id and load_groups run
 * once, before the loop, on a synchronous connection that open() made for
 * loading the scripts and keeps for them.
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
        &vt__rscript_list,
        &vt__rscript_expire,
};

#define DEFAULT_WINDOW_MS ((int64_t)7 * 24 * 3600 * 1000)

struct rstore {
	struct vt__rconn *conn;
	struct vt__rsync sync;
	char *prefix;
	char window[24]; /* the dedup window, in decimal for the scripts */
	uint64_t id_base; /* shared_ids: the block taken at open; else 0 */
};

/* ---- commit ---- */

struct commit_call {
	struct vt_op *ops;
	size_t n;
	vt_commit_cb done;
	void *arg;
};

static void on_commit(void *arg, int status, const redisReply *r)
{
	struct commit_call *k = arg;
	struct vt_inbox *inboxes = NULL;

	if (status == 0) {
		status = vt__decode_batch(k->ops, k->n, r, &inboxes);
		if (status != 0) {
			vt_log(VT_LOG_ERROR, "redis: commit: reply of an unexpected shape");
		}
	}
	if (status != 0) {
		for (size_t i = 0; i < k->n; i++) {
			k->ops[i].out_to = NULL;
			k->ops[i].out_nto = 0;
		}
	}
	k->done(k->arg, status);
	free(inboxes);
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

struct list_call {
	vt_list_cb done;
	void *arg;
};

static void on_list(void *arg, int status, const redisReply *r)
{
	struct list_call *k = arg;
	struct vt_record *recs = NULL;
	long n = status == 0 ? vt__decode_list(r, &recs) : status;

	if (n < 0) {
		if (status == 0) {
			vt_log(VT_LOG_ERROR, "redis: list: reply of an unexpected shape");
		}
		k->done(k->arg, (int)n, NULL, 0);
	} else {
		k->done(k->arg, 0, recs, (size_t)n);
	}
	free(recs);
	free(k);
}

static void rs_list(void *self, const struct vt_inbox *inbox, uint64_t after, uint32_t limit,
                    vt_list_cb done, void *arg)
{
	struct rstore *s = self;
	uint8_t key[VT__INBOX_KEY_MAX];
	struct list_call *k;
	struct vt__rargs *a;

	if (!inbox || vt__inbox_key(inbox, key) == 0 || after == UINT64_MAX ||
	    limit == 0) {
		done(arg, 0, NULL, 0);
		return;
	}
	a = vt__rargs_new(6, 2);
	k = a ? calloc(1, sizeof(*k)) : NULL;
	if (!k) {
		vt__rargs_free(a);
		done(arg, VT_ENOMEM, NULL, 0);
		return;
	}
	*k = (struct list_call){done, arg};
	vt__rargs_str(a, s->prefix);
	vt__rargs_str(a, s->window);
	vt__rargs_str(a, inbox->user);
	vt__rargs_str(a, inbox->device ? inbox->device : "");
	vt__rargs_id(a, after);
	vt__rargs_u64(a, limit);
	vt__rconn_eval(s->conn, &vt__rscript_list, a, on_list, k);
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

static void rs_expire(void *self, int64_t now_ts, int64_t before_ts, int64_t device_before_ts,
                      uint64_t max, vt_expire_cb done, void *arg)
{
	struct rstore *s = self;
	struct vt__rargs *a = vt__rargs_new(6, 4);
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
