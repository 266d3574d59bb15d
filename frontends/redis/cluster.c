/*
 * frontends/redis/cluster.c - the cluster vtable on Redis pub/sub, and the
 * liveness probe behind /healthz.
 *
 * The engine calls these ops from its thread; every call back into it
 * (notify_offline, wake, group_reload, remote_ack, replace, remote_logout)
 * comes later, from a reply or a message read by the event loop, never from
 * inside an op.
 * A failed PUBLISH therefore ends in no engine call at all: without a reply
 * this node cannot know whether another holds the device, so it neither
 * pushes nor retries. The record is stored either way, and a device lists
 * its inbox when it connects.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "cluster_int.h"
#include "startup.h"

#define TICK_MS 1000

/* Bodies up to this size travel to the push hook; bigger ones are left out. */
#define BODY_COPY_MAX 4096

struct vt__rscript vt__cl_publish = {
        "publish", "return redis.call('PUBLISH', ARGV[1], ARGV[2])\n", ""};

struct vt__rscript vt__cl_groups = {"groups", "return redis.call('HGETALL', ARGV[1])\n", ""};

struct vt__rscript vt__cl_group = {"group", "return redis.call('HGET', ARGV[1], ARGV[2])\n", ""};

/* The last reads the revocations back (cluster_logout.c). */
static struct vt__rscript *const scripts[] = {&vt__cl_publish, &vt__cl_groups, &vt__cl_group,
                                              &vt__rscript_revoked};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vt__cl_outage(struct vt_redis_cluster *c, const char *what)
{
	/* Before the first answer the connections are still being made. */
	if (c->warned || c->closing || !c->answered_once) {
		return;
	}
	c->warned = 1;
	vt_log(VT_LOG_WARN, "cluster: %s; wake-ups and push decisions wait for Redis", what);
}

size_t vt__cl_inbox_chan(const struct vt_redis_cluster *c, const char *user,
                         const char *device, char *out)
{
	/* The user's length first: no user/device pair reads as another. */
	int n = snprintf(out, VT__CL_CHAN_MAX, "%sw:%zu:%s%s", c->prefix, strlen(user), user,
	                 device);

	return n > 0 && n < VT__CL_CHAN_MAX ? (size_t)n : 0;
}

void vt__cl_publish_raw(struct vt_redis_cluster *c, const char *chan, size_t clen,
                        const char *msg, size_t len, vt__rconn_cb cb, void *arg)
{
	struct vt__rargs *a = vt__rargs_new(2, 0);

	if (!a) {
		cb(arg, VT_ENOMEM, NULL);
		return;
	}
	vt__rargs_add(a, chan, clen);
	vt__rargs_add(a, msg, len);
	vt__rconn_eval(c->cmd, &vt__cl_publish, a, cb, arg);
}

/* ---- deliver ---- */

/* What the PUBLISH reply needs: the inbox and the record, copied. */
struct wake_call {
	struct vt_redis_cluster *c;
	struct vt_inbox in;
	struct vt_record rec;
	char id[17];
	size_t clen;
	char chan[VT__CL_CHAN_MAX];
	char strings[]; /* user, device, from, to, cid, body: NUL-terminated */
};

static char *put(char **p, const char *s, size_t len)
{
	char *at = *p;

	memcpy(at, s ? s : "", s ? len : 0);
	at[s ? len : 0] = '\0';
	*p = at + (s ? len : 0) + 1;
	return at;
}

static struct wake_call *wake_new(struct vt_redis_cluster *c, const struct vt_inbox *in,
                                  const struct vt_record *r)
{
	size_t blen = r->body && r->body_len <= BODY_COPY_MAX ? r->body_len : 0;
	size_t n = strlen(in->user) + strlen(in->device) + strlen(r->from) + strlen(r->to) +
	           (r->cid ? strlen(r->cid) : 0) + blen + 6;
	struct wake_call *k = malloc(sizeof(*k) + n);
	char *p;

	if (!k) {
		return NULL;
	}
	p = k->strings;
	k->c = c;
	k->in.user = put(&p, in->user, strlen(in->user));
	k->in.device = put(&p, in->device, strlen(in->device));
	k->rec = *r;
	k->rec.from = put(&p, r->from, strlen(r->from));
	k->rec.to = put(&p, r->to, strlen(r->to));
	k->rec.cid = put(&p, r->cid, r->cid ? strlen(r->cid) : 0);
	k->rec.body = blen ? put(&p, r->body, blen) : NULL;
	k->rec.body_len = blen;
	snprintf(k->id, sizeof(k->id), "%016" PRIx64, r->id);
	k->clen = vt__cl_inbox_chan(c, in->user, in->device, k->chan);
	return k;
}

/* The number of subscribers that got the wake-up: none holds the device. */
static void on_woken(void *arg, int status, const redisReply *r)
{
	struct wake_call *k = arg;
	struct vt_redis_cluster *c = k->c;

	if (status != 0 || !r || r->type != REDIS_REPLY_INTEGER) {
		vt__cl_outage(c, "a wake-up could not be published");
	} else if (r->integer == 0 && !c->closing && vt_redis_cluster_healthy(c)) {
		/* Only a healthy node trusts a 0: after a Redis restart, the
		 * other nodes may not have subscribed again yet. */
		vt_engine_notify_offline(c->engine, &k->in, &k->rec);
	}
	free(k);
}

static void cl_deliver(void *self, const struct vt_inbox *in, const struct vt_record *rec)
{
	struct vt_redis_cluster *c = self;
	struct wake_call *k = wake_new(c, in, rec);

	if (!k || k->clen == 0) {
		vt_log(VT_LOG_ERROR, "cluster: wake-up dropped (out of memory) id=%" PRIu64,
		       rec->id);
		free(k);
		return;
	}
	vt__cl_publish_raw(c, k->chan, k->clen, k->id, 16, on_woken, k);
}

/* ---- notices on a device's channel ---- */

/* An ack or replace notice, kept until its PUBLISH ends. */
struct notice_call {
	struct vt_redis_cluster *c;
	size_t clen, len;
	char chan[VT__CL_CHAN_MAX];
	char msg[VT__CL_REPLACE_LEN + 1];
};

/*
 * The count of receivers does not matter: a node that does not hold the
 * device has nothing to drop or close. A lost notice costs what it would
 * have spared: pushes again, or an old connection until its ping deadline.
 */
static void on_notice_sent(void *arg, int status, const redisReply *r)
{
	struct notice_call *k = arg;

	if (status != 0) {
		vt__cl_outage(k->c, "a notice to the other nodes could not be published");
	}
	free(k);
}

static void notice(struct vt_redis_cluster *c, const struct vt_inbox *in, const char *msg,
                   size_t len)
{
	struct notice_call *k = malloc(sizeof(*k));

	if (k) {
		k->c = c;
		k->clen = vt__cl_inbox_chan(c, in->user, in->device, k->chan);
	}
	if (!k || k->clen == 0 || len >= sizeof(k->msg)) {
		vt_log(VT_LOG_ERROR, "cluster: notice for %s/%s dropped", in->user, in->device);
		free(k);
		return;
	}
	memcpy(k->msg, msg, len);
	k->len = len;
	vt__cl_publish_raw(c, k->chan, k->clen, k->msg, k->len, on_notice_sent, k);
}

static void cl_acked(void *self, const struct vt_inbox *in, uint64_t id)
{
	char msg[VT__CL_ACK_LEN + 1];

	snprintf(msg, sizeof(msg), "a%016" PRIx64, id);
	notice(self, in, msg, VT__CL_ACK_LEN);
}

void vt__cl_announce(struct vt_redis_cluster *c, const struct vt_inbox *in)
{
	char msg[VT__CL_REPLACE_LEN + 1];
	int64_t since;

	if (vt_engine_attached_since(c->engine, in, &since) != 0) {
		return;
	}
	snprintf(msg, sizeof(msg), "r%s%016" PRIx64, c->node_hex, (uint64_t)since);
	notice(c, in, msg, VT__CL_REPLACE_LEN);
}

/* ---- presence ---- */

static void cl_attach(void *self, const struct vt_inbox *in)
{
	struct vt_redis_cluster *c = self;
	char chan[VT__CL_CHAN_MAX];
	size_t n = vt__cl_inbox_chan(c, in->user, in->device, chan);

	if (n == 0 || vt__psub_add(c->sub, chan, n) != 0) {
		vt_log(VT_LOG_ERROR, "cluster: cannot subscribe for %s/%s: out of memory",
		       in->user, in->device);
	}
}

static void cl_detach(void *self, const struct vt_inbox *in)
{
	struct vt_redis_cluster *c = self;
	char chan[VT__CL_CHAN_MAX];
	size_t n = vt__cl_inbox_chan(c, in->user, in->device, chan);

	if (n != 0) {
		vt__psub_remove(c->sub, chan, n);
	}
}

/* ---- groups ---- */

struct group_call {
	struct vt_redis_cluster *c;
	size_t len;
	char msg[];
};

static void on_group_told(void *arg, int status, const redisReply *r)
{
	struct group_call *k = arg;

	if (status != 0) {
		/* the others reload everything once this node is back */
		k->c->groups_dirty = 1;
		vt__cl_outage(k->c, "a group change could not be published");
	}
	free(k);
}

/*
 * NODE ":" LEN ":" GROUP DATA; a lone "*" after NODE asks for a resync.
 *
 * The change is published after its client was answered, so another node
 * may take a post against the old members for a moment. The store refuses
 * that post (the group's version moved on), and the node reads the group
 * afresh (cl_group_stale) before taking the post again.
 */
static void cl_group_changed(void *self, const char *group, const char *data, size_t len)
{
	struct vt_redis_cluster *c = self;
	size_t glen = strlen(group), cap = 16 + 1 + 24 + glen + len + 1;
	struct group_call *k = malloc(sizeof(*k) + cap);
	int n;

	if (!k) {
		c->groups_dirty = 1;
		return;
	}
	k->c = c;
	n = snprintf(k->msg, cap, "%s:%zu:%s", c->node_hex, glen, group);
	memcpy(k->msg + n, data, len);
	k->len = (size_t)n + len;
	vt__cl_publish_raw(c, c->groups_chan, strlen(c->groups_chan), k->msg, k->len,
	                   on_group_told, k);
}

/* A read of one group for an engine that found its copy stale. */
struct stale_call {
	struct vt_redis_cluster *c;
	vt_group_fetched_cb done;
	void *arg;
	char group[];
};

static void on_group_read(void *arg, int status, const redisReply *r)
{
	struct stale_call *k = arg;

	if (k->c->closing) {
		free(k); /* the engine is going: it answers its waiting posts */
		return;
	}
	if (status == 0 && r && r->type == REDIS_REPLY_STRING) {
		k->done(k->arg, k->group, 0, r->str, r->len);
	} else if (status == 0 && r && r->type == REDIS_REPLY_NIL) {
		k->done(k->arg, k->group, 0, NULL, 0);
	} else {
		vt__cl_outage(k->c, "a group could not be read");
		k->done(k->arg, k->group, status != 0 ? status : VT_ESTORAGE, NULL, 0);
	}
	free(k);
}

static void cl_group_stale(void *self, const char *group, vt_group_fetched_cb done, void *arg)
{
	struct vt_redis_cluster *c = self;
	size_t glen = strlen(group);
	struct stale_call *k = malloc(sizeof(*k) + glen + 1);
	struct vt__rargs *a = vt__rargs_new(2, 0);

	if (!k || !a) {
		free(k);
		vt__rargs_free(a);
		done(arg, group, VT_ENOMEM, NULL, 0);
		return;
	}
	*k = (struct stale_call){c, done, arg};
	memcpy(k->group, group, glen + 1);
	vt__rargs_str(a, c->groups_chan); /* the HASH of groups shares its name */
	vt__rargs_add(a, k->group, glen);
	vt__rconn_eval(c->cmd, &vt__cl_group, a, on_group_read, k);
}

static void on_resync_asked(void *arg, int status, const redisReply *r)
{
	struct vt_redis_cluster *c = arg;

	if (status == 0) {
		c->groups_dirty = 0;
	}
}

/* ---- the liveness probe ---- */

/*
 * The echo, or its absence, is what counts for health. The count of
 * receivers tells one more thing: a second node listening on this node's
 * channel runs with the same id (started at the same moment as this one,
 * past the check at start). Said once a minute until it is gone.
 */
static void on_probe_sent(void *arg, int status, const redisReply *r)
{
	struct vt_redis_cluster *c = arg;
	int64_t now = mono_ms();

	if (status != 0 || !r || r->type != REDIS_REPLY_INTEGER || r->integer <= 1 ||
	    c->closing) {
		return;
	}
	if (c->dup_logged_ms == 0 || now - c->dup_logged_ms >= 60000) {
		c->dup_logged_ms = now;
		vt_log(VT_LOG_ERROR, "cluster: %lld nodes run with node id %s; give each node its "
		       "own --node-id", (long long)r->integer, c->node_hex);
	}
}

/*
 * Publish on the node's own channel and expect the echo on the subscriber
 * within the command timeout. A server that accepts connections but never
 * answers (SIGSTOP) keeps both sockets open: only this notices it.
 */
static void probe(struct vt_redis_cluster *c)
{
	int64_t now = mono_ms();

	if (!vt__psub_up(c->sub) || !vt__rconn_up(c->cmd)) {
		c->probe_ok = 0;
		c->probe_sent_ms = 0;
		vt__cl_outage(c, "a Redis connection is down");
		return;
	}
	if (c->probe_sent_ms != 0 && now - c->probe_sent_ms > (int64_t)c->timeout_ms) {
		c->probe_ok = 0;
		c->probe_sent_ms = 0;
		vt__cl_outage(c, "Redis stopped answering");
		vt__psub_drop(c->sub, "no answer to the liveness probe");
		return;
	}
	if (c->probe_sent_ms == 0) {
		c->probe_sent_ms = now;
		vt__cl_publish_raw(c, c->probe_chan, strlen(c->probe_chan), c->node_hex, 16,
		                   on_probe_sent, c);
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct vt_redis_cluster *c = arg;
	struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};

	probe(c);
	if (c->probe_ok && c->groups_dirty) {
		snprintf(c->resync_msg, sizeof(c->resync_msg), "%s:*", c->node_hex);
		vt__cl_publish_raw(c, c->groups_chan, strlen(c->groups_chan), c->resync_msg,
		                   strlen(c->resync_msg), on_resync_asked, c);
	}
	vt__cl_resync_step(c);
	vt__cl_logouts_tick(c);
	evtimer_add(c->tick, &tv);
}

int vt_redis_cluster_healthy(const struct vt_redis_cluster *c)
{
	return vt__psub_up(c->sub) && vt__rconn_up(c->cmd) && c->probe_ok;
}

/* ---- lifetime ---- */

static void cl_destroy(void *self)
{
	struct vt_redis_cluster *c = self;

	c->closing = 1;
	if (c->tick) {
		event_free(c->tick);
	}
	vt__psub_free(c->sub);
	vt__rconn_free(c->cmd); /* pending calls end now, without the engine */
	free(c);
}

static const struct vt_cluster_ops ops = {
        .deliver = cl_deliver,
        .attach = cl_attach,
        .detach = cl_detach,
        .group_changed = cl_group_changed,
        .group_stale = cl_group_stale,
        .destroy = cl_destroy,
        .acked = cl_acked,
        .logged_out = vt__cl_logged_out,
};

static uint64_t random_id(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v) || v == 0) {
		v = (uint64_t)mono_ms() << 20 ^ (uint64_t)getpid() ^ (uint64_t)time(NULL) << 40;
	}
	return v;
}

/*
 * Load the scripts (EVALSHA needs their hashes; without them every call is
 * an EVAL), and refuse a node id another running node listens on: two
 * nodes with one id would take each other's notices for their own.
 */
static int startup_checks(struct vt_redis_cluster *c, const struct vt__rconn_config *cfg)
{
	struct vt__rsync s;
	long long n = 0;

	if (vt__rsync_open(&s, cfg) != 0) {
		return 0; /* Redis is not there yet: the node waits for it */
	}
	if (vt__rsync_subscribers(&s, c->probe_chan, &n) == 0 && n > 0) {
		vt_log(VT_LOG_ERROR, "cluster: node id %s is in use by a running node; give each "
		       "node its own --node-id", c->node_hex);
		vt__rsync_close(&s);
		return VT_EINVAL;
	}
	vt__rsync_close(&s);
	return 0;
}

static int fill(struct vt_redis_cluster *c, const struct vt_redis_cluster_options *o)
{
	const char *prefix = o->prefix ? o->prefix : "vt:";

	if (strlen(prefix) > VT__CL_PREFIX_MAX) {
		return VT_EINVAL;
	}
	c->plen = strlen(prefix);
	memcpy(c->prefix, prefix, c->plen + 1);
	c->node_id = o->node_id ? o->node_id : random_id();
	snprintf(c->node_hex, sizeof(c->node_hex), "%016" PRIx64, c->node_id);
	snprintf(c->groups_chan, sizeof(c->groups_chan), "%sgroups", prefix);
	snprintf(c->logouts_chan, sizeof(c->logouts_chan), "%slogouts", prefix);
	snprintf(c->probe_chan, sizeof(c->probe_chan), "%sn:%s", prefix, c->node_hex);
	c->timeout_ms = o->command_timeout_ms ? o->command_timeout_ms : 2000;
	return 0;
}

static int start(struct vt_redis_cluster *c, const struct vt_redis_cluster_options *o)
{
	static const struct vt__psub_hooks hooks = {vt__cl_on_message, vt__cl_on_subscribed};
	struct vt__rconn_config cfg = {
	        .host = o->host ? o->host : "127.0.0.1",
	        .port = o->port ? o->port : 6379,
	        .connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 1000,
	        .command_timeout_ms = c->timeout_ms,
	        .scripts = scripts,
	        .nscripts = sizeof(scripts) / sizeof(scripts[0]),
	};
	struct timeval tv = {0, 0};
	int rc = startup_checks(c, &cfg);

	if (rc != 0) {
		return rc;
	}
	c->cmd = vt__rconn_new(c->base, &cfg);
	c->sub = vt__psub_new(c->base, cfg.host, cfg.port, cfg.connect_timeout_ms, &hooks, c);
	c->tick = evtimer_new(c->base, on_tick, c);
	if (!c->cmd || !c->sub || !c->tick ||
	    vt__psub_add(c->sub, c->groups_chan, strlen(c->groups_chan)) != 0 ||
	    vt__psub_add(c->sub, c->logouts_chan, strlen(c->logouts_chan)) != 0 ||
	    vt__psub_add(c->sub, c->probe_chan, strlen(c->probe_chan)) != 0) {
		return VT_ENOMEM;
	}
	evtimer_add(c->tick, &tv);
	return 0;
}

int vt_redis_cluster_create(struct event_base *base, struct vt_engine *engine,
                            const struct vt_redis_cluster_options *o, struct vt_cluster *out,
                            struct vt_redis_cluster **handle)
{
	struct vt_redis_cluster *c = calloc(1, sizeof(*c));
	int rc;

	if (!c) {
		return VT_ENOMEM;
	}
	c->base = base;
	c->engine = engine;
	rc = fill(c, o);
	if (rc == 0) {
		rc = start(c, o);
	}
	if (rc != 0) {
		cl_destroy(c);
		return rc;
	}
	vt_log(VT_LOG_INFO, "cluster: node %s on redis pub/sub, channels %s*", c->node_hex,
	       c->prefix);
	out->ops = &ops;
	out->self = c;
	out->node = c->node_id;
	if (handle) {
		*handle = c;
	}
	return 0;
}
