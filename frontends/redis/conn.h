/*
 * frontends/redis/conn.h - one asynchronous Redis connection that runs
 * scripts and never leaves a caller waiting.
 *
 * Every call ends in exactly one callback: with the reply, or with
 * VT_ESTORAGE when the connection is down, breaks, or a reply takes longer
 * than the command timeout. A timeout drops the connection (Redis answers
 * in order, so every later reply is stuck behind the late one), and a
 * dropped connection is opened again with a growing delay. Each new
 * connection loads the scripts before anything else, so calls keep their
 * order after a server restart emptied its script cache; a script the
 * server forgot all the same (SCRIPT FLUSH) is sent again in full. A script
 * the server refuses for being over maxmemory is sent again as its oom
 * variant, when it has one.
 *
 * Everything runs on the thread of the event base.
 */
#ifndef VARTALAP_REDIS_CONN_H
#define VARTALAP_REDIS_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "scripts.h"

struct vt__rconn;

/*
 * The arguments of one script call, after the EVALSHA/EVAL, script and
 * key count that the connection puts first. argv[i] need not be
 * NUL-terminated; the strings must stay valid until the call's callback
 * has returned. Allocate with vt__rargs_new; the connection frees it.
 */
struct vt__rargs {
	int argc;          /* used */
	int cap;           /* room in argv, the first 3 slots included */
	const char **argv; /* argv[0..2] are the connection's */
	size_t *lens;
	char *num;         /* room for numbers written by vt__rargs_num */
	size_t num_used, num_cap;
};

/* Room for @nargs arguments and @nnums numbers of up to 24 bytes; or NULL. */
struct vt__rargs *vt__rargs_new(size_t nargs, size_t nnums);

/* Append @len bytes at @s (not copied); a NULL @s is the empty string. */
void vt__rargs_add(struct vt__rargs *a, const char *s, size_t len);

/* Append a NUL-terminated string, NULL read as "". */
void vt__rargs_str(struct vt__rargs *a, const char *s);

/* Append a number, written in decimal into the numbers' room. */
void vt__rargs_i64(struct vt__rargs *a, int64_t v);
void vt__rargs_u64(struct vt__rargs *a, uint64_t v);

/* Append an id as 16 lowercase hex digits. */
void vt__rargs_id(struct vt__rargs *a, uint64_t id);

void vt__rargs_free(struct vt__rargs *a);

/*
 * A call's end: @status 0 with a reply that is not an error (valid during
 * the call only), VT_ENOSPC when Redis is out of memory, or VT_ESTORAGE with
 * @reply NULL.
 */
typedef void (*vt__rconn_cb)(void *arg, int status, const redisReply *reply);

struct vt__rconn_config {
	const char *host;
	int port;
	uint32_t connect_timeout_ms;
	uint32_t command_timeout_ms;
	/* loaded first on every connection, so that EVALSHA finds them */
	struct vt__rscript *const *scripts;
	size_t nscripts;
};

/* Start connecting; returns NULL when out of memory. */
struct vt__rconn *vt__rconn_new(struct event_base *base, const struct vt__rconn_config *cfg);

/*
 * Run @script with @args (owned by the connection from here on) and call
 * @cb once, perhaps before this returns when the connection is down.
 */
void vt__rconn_eval(struct vt__rconn *c, struct vt__rscript *script, struct vt__rargs *args,
                    vt__rconn_cb cb, void *arg);

/* Nonzero while the connection is established. */
int vt__rconn_up(const struct vt__rconn *c);

/*
 * Close and free. Pending calls end with VT_ESTORAGE. Not from inside a
 * callback of this connection.
 */
void vt__rconn_free(struct vt__rconn *c);

#endif /* VARTALAP_REDIS_CONN_H */
