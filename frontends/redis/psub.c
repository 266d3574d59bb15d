/*
 * frontends/redis/psub.c - the subscriber connection of the cluster.
 *
 * hiredis 0.14 keeps one callback per subscribed channel and forgets it
 * when an UNSUBSCRIBE reply for that channel arrives. A SUBSCRIBE sent while
 * an UNSUBSCRIBE of the same channel is on its way would therefore lose its
 * callback, and every later message on it, without a word. Each channel
 * thus keeps its state on the server, and one whose last reference went
 * away and came back while unsubscribing is subscribed again only once the
 * UNSUBSCRIBE is answered.
 *
 * The set always holds at least one channel (the caller's own), so the
 * context never leaves subscribe mode; hiredis asserts on a message that
 * arrives outside it.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include <vartalap/error.h>
#include <vartalap/log.h>

#include "psub.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define BUCKETS_FIRST 64

enum chan_state {
	CH_NONE,        /* not asked of this connection */
	CH_SUBSCRIBING, /* SUBSCRIBE sent */
	CH_SUBSCRIBED,  /* confirmed */
	CH_LEAVING,     /* UNSUBSCRIBE sent */
};

struct chan {
	struct chan *next;
	uint32_t refs;
	enum chan_state state;
	size_t len;
	char name[];
};

struct vt__psub {
	struct event_base *base;
	char *host;
	int port;
	struct timeval connect_tv;
	struct vt__psub_hooks hooks;
	void *arg;
	redisAsyncContext *ac; /* NULL while down */
	int up;
	struct event *retry, *connect_timer;
	uint32_t backoff_ms;
	struct chan **buckets;
	size_t nbuckets, nchans;
};

static void conn_start(struct vt__psub *s);

/* ---- the channel set ---- */

static size_t hash(const char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++) {
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	}
	return (size_t)h;
}

static struct chan **slot(struct vt__psub *s, const char *name, size_t len)
{
	struct chan **pp = &s->buckets[hash(name, len) & (s->nbuckets - 1)];

	while (*pp && ((*pp)->len != len || memcmp((*pp)->name, name, len) != 0)) {
		pp = &(*pp)->next;
	}
	return pp;
}

/* Double the buckets once the chains grow long; a failure keeps the old. */
static void grow(struct vt__psub *s)
{
	size_t n = s->nbuckets * 2;
	struct chan **b = calloc(n, sizeof(*b));

	if (!b) {
		return;
	}
	for (size_t i = 0; i < s->nbuckets; i++) {
		while (s->buckets[i]) {
			struct chan *c = s->buckets[i];
			size_t k = hash(c->name, c->len) & (n - 1);

			s->buckets[i] = c->next;
			c->next = b[k];
			b[k] = c;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

static void chan_unlink(struct vt__psub *s, struct chan *c)
{
	struct chan **pp = slot(s, c->name, c->len);

	*pp = c->next;
	s->nchans--;
	free(c);
}

/* ---- commands ---- */

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv);

static void send_cmd(struct vt__psub *s, struct chan *c, const char *verb)
{
	const char *argv[2] = {verb, c->name};
	size_t lens[2] = {strlen(verb), c->len};

	if (redisAsyncCommandArgv(s->ac, on_sub_reply, s, 2, argv, lens) != REDIS_OK) {
		/* only a context already failing refuses: its drop resubscribes */
		return;
	}
	c->state = verb[0] == 'S' ? CH_SUBSCRIBING : CH_LEAVING;
}

static void subscribe_all(struct vt__psub *s)
{
	for (size_t i = 0; i < s->nbuckets; i++) {
		for (struct chan *c = s->buckets[i]; c; c = c->next) {
			if (c->refs > 0) {
				send_cmd(s, c, "SUBSCRIBE");
			}
		}
	}
}

/* The connection went: nothing is subscribed; forget what nobody wants. */
static void forget_state(struct vt__psub *s)
{
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct chan **pp = &s->buckets[i];

		while (*pp) {
			struct chan *c = *pp;

			if (c->refs == 0) {
				*pp = c->next;
				s->nchans--;
				free(c);
				continue;
			}
			c->state = CH_NONE;
			pp = &c->next;
		}
	}
}

int vt__psub_add(struct vt__psub *s, const char *chan, size_t len)
{
	struct chan **pp = slot(s, chan, len);
	struct chan *c = *pp;

	if (!c) {
		c = calloc(1, sizeof(*c) + len + 1);
		if (!c) {
			return VT_ENOMEM;
		}
		c->len = len;
		memcpy(c->name, chan, len);
		*pp = c;
		if (++s->nchans > s->nbuckets * 2) {
			grow(s);
		}
	}
	/* CH_LEAVING: subscribed again when the UNSUBSCRIBE is answered */
	if (c->refs++ == 0 && s->ac && c->state == CH_NONE) {
		send_cmd(s, c, "SUBSCRIBE");
	}
	return 0;
}

void vt__psub_remove(struct vt__psub *s, const char *chan, size_t len)
{
	struct chan *c = *slot(s, chan, len);

	if (!c || c->refs == 0 || --c->refs > 0) {
		return;
	}
	if (s->ac && (c->state == CH_SUBSCRIBING || c->state == CH_SUBSCRIBED)) {
		send_cmd(s, c, "UNSUBSCRIBE");
	} else if (c->state == CH_NONE) {
		chan_unlink(s, c);
	}
}

/* ---- replies ---- */

static int is_word(const redisReply *r, const char *w)
{
	return r->type == REDIS_REPLY_STRING && r->len == strlen(w) &&
	       strncasecmp(r->str, w, r->len) == 0;
}

static void on_confirm(struct vt__psub *s, const redisReply *name, int subscribed)
{
	struct chan *c = *slot(s, name->str, name->len);

	if (!c) {
		return;
	}
	if (subscribed && c->state == CH_SUBSCRIBING) {
		c->state = CH_SUBSCRIBED;
		if (c->refs > 0) {
			s->hooks.subscribed(s->arg, c->name, c->len);
		}
	} else if (!subscribed && c->state == CH_LEAVING) {
		c->state = CH_NONE;
		if (c->refs > 0) {
			send_cmd(s, c, "SUBSCRIBE");
		} else {
			chan_unlink(s, c);
		}
	}
}

/* Every reply of the subscriber: confirmations and messages. */
static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct vt__psub *s = priv;
	const redisReply *r = reply;

	if (!r || s->ac != ac || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->element[1]->type != REDIS_REPLY_STRING) {
		return; /* NULL: the context is going away */
	}
	if (is_word(r->element[0], "message") && r->element[2]->type == REDIS_REPLY_STRING) {
		s->hooks.message(s->arg, r->element[1]->str, r->element[1]->len,
		                 r->element[2]->str, r->element[2]->len);
	} else if (is_word(r->element[0], "subscribe")) {
		on_confirm(s, r->element[1], 1);
	} else if (is_word(r->element[0], "unsubscribe")) {
		on_confirm(s, r->element[1], 0);
	}
}

/* ---- the connection ---- */

static struct timeval tv_ms(uint32_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	return tv;
}

static void schedule_retry(struct vt__psub *s)
{
	struct timeval tv = tv_ms(s->backoff_ms);

	evtimer_add(s->retry, &tv);
	s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
}

/* The context is gone (or going): mark everything down, try again later. */
static void went_down(struct vt__psub *s)
{
	s->ac = NULL;
	s->up = 0;
	evtimer_del(s->connect_timer);
	forget_state(s);
	schedule_retry(s);
}

void vt__psub_drop(struct vt__psub *s, const char *why)
{
	redisAsyncContext *ac = s->ac;

	if (!ac) {
		return;
	}
	vt_log(VT_LOG_WARN, "redis subscriber: %s:%d: %s; reconnecting", s->host, s->port, why);
	went_down(s);
	redisAsyncFree(ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct vt__psub *s = ac->data;

	if (s->ac != ac) {
		return;
	}
	if (status != REDIS_OK) {
		/* hiredis frees the context after this returns */
		vt_log(VT_LOG_WARN, "redis subscriber: %s:%d: cannot connect: %s", s->host,
		       s->port, ac->errstr);
		went_down(s);
		return;
	}
	evtimer_del(s->connect_timer);
	if (s->backoff_ms > BACKOFF_FIRST_MS) {
		vt_log(VT_LOG_INFO, "redis subscriber: %s:%d: connected again", s->host, s->port);
	}
	s->up = 1;
	s->backoff_ms = BACKOFF_FIRST_MS;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct vt__psub *s = ac->data;

	if (s->ac != ac) {
		return;
	}
	vt_log(VT_LOG_WARN, "redis subscriber: %s:%d: connection lost: %s; reconnecting",
	       s->host, s->port, ac->errstr[0] ? ac->errstr : "closed");
	went_down(s);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	vt__psub_drop(arg, "connect timed out");
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	conn_start(arg);
}

/* Connect; the SUBSCRIBEs wait in hiredis's buffer until the socket is up. */
static void conn_start(struct vt__psub *s)
{
	redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);

	if (!ac || ac->err) {
		vt_log(VT_LOG_WARN, "redis subscriber: %s:%d: cannot connect: %s", s->host,
		       s->port, ac ? ac->errstr : "out of memory");
		if (ac) {
			redisAsyncFree(ac);
		}
		schedule_retry(s);
		return;
	}
	ac->data = s;
	if (redisLibeventAttach(ac, s->base) != REDIS_OK) {
		redisAsyncFree(ac);
		schedule_retry(s);
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	s->ac = ac;
	subscribe_all(s);
	evtimer_add(s->connect_timer, &s->connect_tv);
}

int vt__psub_up(const struct vt__psub *s)
{
	return s->up;
}

struct vt__psub *vt__psub_new(struct event_base *base, const char *host, int port,
                              uint32_t connect_timeout_ms, const struct vt__psub_hooks *hooks,
                              void *arg)
{
	struct vt__psub *s = calloc(1, sizeof(*s));

	if (!s) {
		return NULL;
	}
	s->base = base;
	s->host = strdup(host);
	s->port = port;
	s->connect_tv = tv_ms(connect_timeout_ms);
	s->hooks = *hooks;
	s->arg = arg;
	s->backoff_ms = BACKOFF_FIRST_MS;
	s->nbuckets = BUCKETS_FIRST;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	s->retry = evtimer_new(base, on_retry, s);
	s->connect_timer = evtimer_new(base, on_connect_timeout, s);
	if (!s->host || !s->buckets || !s->retry || !s->connect_timer) {
		vt__psub_free(s);
		return NULL;
	}
	conn_start(s);
	return s;
}

void vt__psub_free(struct vt__psub *s)
{
	redisAsyncContext *ac;

	if (!s) {
		return;
	}
	ac = s->ac;
	s->ac = NULL;
	if (ac) {
		redisAsyncFree(ac); /* its callbacks see s->ac != ac and return */
	}
	for (size_t i = 0; s->buckets && i < s->nbuckets; i++) {
		while (s->buckets[i]) {
			struct chan *c = s->buckets[i];

			s->buckets[i] = c->next;
			free(c);
		}
	}
	free(s->buckets);
	if (s->retry) {
		event_free(s->retry);
	}
	if (s->connect_timer) {
		event_free(s->connect_timer);
	}
	free(s->host);
	free(s);
}
