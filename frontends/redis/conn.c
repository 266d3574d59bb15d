/*
 * frontends/redis/conn.c - the asynchronous connection behind the Redis
 * storage backend.
 *
 * hiredis calls each reply callback exactly once: with the reply, or with
 * NULL when its context is freed (by us after a timeout, or by itself after
 * a broken socket). A call is therefore freed only in that callback, and a
 * timeout or a lost connection ends calls by freeing the context. hiredis
 * 0.14 has no timeouts of its own, so the connect and command timeouts are
 * libevent timers here.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "conn.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000

struct rcall {
	struct vt__rconn *c;
	struct vt__rscript *script;
	struct vt__rargs *args;
	vt__rconn_cb cb;
	void *arg;
	struct event *timer;
	int sent_source; /* sent with EVAL already: no second NOSCRIPT retry */
};

struct vt__rconn {
	struct event_base *base;
	char *host;
	int port;
	struct timeval connect_tv, command_tv;
	struct vt__rscript *const *scripts;
	size_t nscripts;
	redisAsyncContext *ac; /* NULL while down */
	int up;                /* the connect callback said yes */
	struct event *retry;   /* reconnect after a delay */
	struct event *connect_timer;
	uint32_t backoff_ms;
};

static void conn_start(struct vt__rconn *c);

static struct timeval tv_ms(uint32_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	return tv;
}

/* Try again after the current delay, then wait twice as long next time. */
static void schedule_retry(struct vt__rconn *c)
{
	struct timeval tv = tv_ms(c->backoff_ms);

	evtimer_add(c->retry, &tv);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/*
 * Give up the current context. Its pending calls end with NULL replies
 * inside redisAsyncFree (or after the hiredis callback that is running).
 */
static void conn_drop(struct vt__rconn *c, const char *why)
{
	redisAsyncContext *ac = c->ac;

	if (!ac) {
		return;
	}
	vt_log(VT_LOG_WARN, "redis: %s:%d: %s; reconnecting", c->host, c->port, why);
	c->ac = NULL;
	c->up = 0;
	evtimer_del(c->connect_timer);
	schedule_retry(c);
	redisAsyncFree(ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct vt__rconn *c = ac->data;

	if (c->ac != ac) {
		return;
	}
	if (status != REDIS_OK) {
		/* hiredis frees the context after this returns */
		evtimer_del(c->connect_timer);
		vt_log(VT_LOG_WARN, "redis: %s:%d: cannot connect: %s", c->host, c->port,
		       ac->errstr);
		c->ac = NULL;
		schedule_retry(c);
		return;
	}
	/* Connected is not answering: a stopped server's kernel still accepts.
	 * The connection is up once the PING queued behind the scripts comes
	 * back, within the connect timeout. */
}

static void on_ready(redisAsyncContext *ac, void *reply, void *priv)
{
	struct vt__rconn *c = priv;

	if (reply == NULL || c->ac != ac) {
		return; /* the context is going away */
	}
	evtimer_del(c->connect_timer);
	if (c->backoff_ms > BACKOFF_FIRST_MS) {
		vt_log(VT_LOG_INFO, "redis: %s:%d: connected again", c->host, c->port);
	}
	c->up = 1;
	c->backoff_ms = BACKOFF_FIRST_MS;
}

/* A context we did not free ourselves broke; hiredis frees it. */
static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct vt__rconn *c = ac->data;

	if (c->ac != ac) {
		return;
	}
	vt_log(VT_LOG_WARN, "redis: %s:%d: connection lost: %s; reconnecting", c->host, c->port,
	       ac->errstr[0] ? ac->errstr : "closed");
	c->ac = NULL;
	c->up = 0;
	schedule_retry(c);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	conn_drop(arg, "connect timed out");
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	conn_start(arg);
}

static void on_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
	const redisReply *r = reply;
	const struct vt__rscript *s = priv;

	if (r && r->type == REDIS_REPLY_ERROR) {
		vt_log(VT_LOG_ERROR, "redis: SCRIPT LOAD %s: %.*s", s->name, (int)r->len, r->str);
	}
}

/*
 * Queue SCRIPT LOAD of every script ahead of any call. Were a call to find
 * its script missing instead, its second try (EVAL) would run after calls
 * sent later, out of order.
 */
static void load_scripts(struct vt__rconn *c, redisAsyncContext *ac)
{
	for (size_t i = 0; i < c->nscripts; i++) {
		struct vt__rscript *s = c->scripts[i];

		redisAsyncCommand(ac, on_loaded, s, "SCRIPT LOAD %b", s->src, strlen(s->src));
	}
}

static void conn_start(struct vt__rconn *c)
{
	redisAsyncContext *ac = redisAsyncConnect(c->host, c->port);

	if (!ac || ac->err) {
		vt_log(VT_LOG_WARN, "redis: %s:%d: cannot connect: %s", c->host, c->port,
		       ac ? ac->errstr : "out of memory");
		if (ac) {
			redisAsyncFree(ac);
		}
		schedule_retry(c);
		return;
	}
	ac->data = c;
	if (redisLibeventAttach(ac, c->base) != REDIS_OK) {
		redisAsyncFree(ac);
		schedule_retry(c);
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	load_scripts(c, ac);
	redisAsyncCommand(ac, on_ready, c, "PING");
	c->ac = ac;
	evtimer_add(c->connect_timer, &c->connect_tv);
}

int vt__rconn_up(const struct vt__rconn *c)
{
	return c->up;
}

/* ---- calls ---- */

static void call_free(struct rcall *k)
{
	if (k->timer) {
		event_free(k->timer);
	}
	vt__rargs_free(k->args);
	free(k);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv);

/* Hand the call to hiredis; nonzero when the context refused it. */
static int call_send(struct rcall *k, int with_source)
{
	struct vt__rargs *a = k->args;

	a->argv[0] = with_source ? "EVAL" : "EVALSHA";
	a->argv[1] = with_source ? k->script->src : k->script->sha;
	a->argv[2] = "0";
	for (int i = 0; i < 3; i++) {
		a->lens[i] = strlen(a->argv[i]);
	}
	k->sent_source = with_source;
	return redisAsyncCommandArgv(k->c->ac, on_reply, k, a->argc, a->argv, a->lens) !=
	       REDIS_OK;
}

static int starts_with(const redisReply *r, const char *word)
{
	size_t n = strlen(word);

	return r->len >= n && memcmp(r->str, word, n) == 0;
}

/* The status a reply gives its call, logging what is unexpected. */
static int reply_status(struct rcall *k, const redisReply *r)
{
	if (!r) {
		return VT_ESTORAGE;
	}
	if (r->type != REDIS_REPLY_ERROR) {
		return 0;
	}
	if (starts_with(r, "OOM")) {
		vt_log(VT_LOG_WARN, "redis: %s: out of memory: %.*s", k->script->name,
		       (int)r->len, r->str);
		return VT_ENOSPC;
	}
	vt_log(VT_LOG_ERROR, "redis: %s: %.*s", k->script->name, (int)r->len, r->str);
	return VT_ESTORAGE;
}

/*
 * Send the call again when its error reply asks for it; nonzero when sent.
 * Either way the server ran nothing of it.
 */
static int call_again(struct rcall *k, redisAsyncContext *ac, const redisReply *r)
{
	if (!r || r->type != REDIS_REPLY_ERROR || k->c->ac != ac) {
		return 0;
	}
	if (starts_with(r, "NOSCRIPT") && !k->sent_source) {
		/* the server restarted and lost the script: sent in full */
		return call_send(k, 1) == 0;
	}
	if (starts_with(r, "OOM") && k->script->oom) {
		/* over maxmemory: the variant that takes what frees memory */
		k->script = k->script->oom;
		return call_send(k, k->script->sha[0] == 0) == 0;
	}
	return 0;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rcall *k = priv;
	const redisReply *r = reply;

	if (call_again(k, ac, r)) {
		return;
	}
	k->cb(k->arg, reply_status(k, r), r && r->type != REDIS_REPLY_ERROR ? r : NULL);
	call_free(k);
}

static void on_call_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rcall *k = arg;

	/* the late reply blocks every later one: start afresh */
	conn_drop(k->c, "command timed out");
}

void vt__rconn_eval(struct vt__rconn *c, struct vt__rscript *script, struct vt__rargs *args,
                    vt__rconn_cb cb, void *arg)
{
	struct rcall *k = calloc(1, sizeof(*k));

	if (!k || !c->ac) {
		free(k);
		vt__rargs_free(args);
		cb(arg, VT_ESTORAGE, NULL);
		return;
	}
	*k = (struct rcall){c, script, args, cb, arg, NULL, 0};
	k->timer = evtimer_new(c->base, on_call_timeout, k);
	if (!k->timer || call_send(k, script->sha[0] == 0) != 0) {
		call_free(k);
		cb(arg, VT_ESTORAGE, NULL);
		return;
	}
	evtimer_add(k->timer, &c->command_tv);
}

/* ---- lifetime ---- */

struct vt__rconn *vt__rconn_new(struct event_base *base, const struct vt__rconn_config *cfg)
{
	struct vt__rconn *c = calloc(1, sizeof(*c));

	if (!c) {
		return NULL;
	}
	c->base = base;
	c->host = strdup(cfg->host);
	c->port = cfg->port;
	c->connect_tv = tv_ms(cfg->connect_timeout_ms);
	c->command_tv = tv_ms(cfg->command_timeout_ms);
	c->backoff_ms = BACKOFF_FIRST_MS;
	c->scripts = cfg->scripts;
	c->nscripts = cfg->nscripts;
	c->retry = evtimer_new(base, on_retry, c);
	c->connect_timer = evtimer_new(base, on_connect_timeout, c);
	if (!c->host || !c->retry || !c->connect_timer) {
		vt__rconn_free(c);
		return NULL;
	}
	conn_start(c);
	return c;
}

void vt__rconn_free(struct vt__rconn *c)
{
	redisAsyncContext *ac;

	if (!c) {
		return;
	}
	ac = c->ac;
	c->ac = NULL;
	if (ac) {
		redisAsyncFree(ac); /* ends pending calls; on_disconnect ignores it */
	}
	if (c->retry) {
		event_free(c->retry);
	}
	if (c->connect_timer) {
		event_free(c->connect_timer);
	}
	free(c->host);
	free(c);
}
